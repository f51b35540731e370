//! What the campaign ran on, and the raw fdatasync rate of the file system that holds the
//! servers' logs. Both go into the result file, so a number is never read without the
//! machine that produced it. The fdatasync measurement writes 4 KiB blocks sequentially into
//! a preallocated file and fdatasyncs after each, which is a transaction log's pattern with
//! preallocation (ZooKeeper's preAllocSize): the rate is the ceiling of one-sync-per-write.
//!
//! The group-commit ceiling is the latency floor of a write at a fixed rate: what a server
//! that costs no CPU would answer, given this disk. Writes arrive on a schedule (every
//! `1/rate` s); one thread appends every write that has arrived in one `pwrite`, fdatasyncs,
//! and counts each write's latency from its scheduled arrival to the end of its sync (a
//! write that arrives during a sync waits for it and then for its own, as in a group-committed
//! log). Its percentiles are the floor under any server's write latency at that rate on this
//! disk.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    pub hostname: String,
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub mem_total_kib: u64,
    /// File system type of the work (data and log) directory, from `stat -f`.
    pub data_fs: String,
    pub data_dir: String,
    pub load_avg_start: String,
    pub apache_version: String,
    pub zoocore_git: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn run(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The machine as seen now; `data_dir` must exist.
pub fn machine_info(data_dir: &Path) -> MachineInfo {
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    let dir = data_dir.display().to_string();
    MachineInfo {
        hostname: read("/proc/sys/kernel/hostname"),
        cpu_model: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: read("/proc/sys/kernel/osrelease"),
        mem_total_kib: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        data_fs: run("stat", &["-f", "-c", "%T", &dir]),
        data_dir: dir,
        load_avg_start: read("/proc/loadavg"),
        apache_version: run("dpkg-query", &["-W", "-f", "${Version}", "zookeeper"]),
        zoocore_git: run("git", &["rev-parse", "--short", "HEAD"]),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FsyncCeiling {
    pub dir: String,
    pub seconds: f64,
    pub syncs: u64,
    pub syncs_per_s: f64,
    pub mean_us: f64,
    pub max_us: u64,
}

const BLOCK: usize = 4096;
const FILE_BYTES: u64 = 64 << 20;

/// A new file `name` in `dir` of `FILE_BYTES` zeros, written and synced, so that the probes'
/// syncs write data blocks only.
fn zeroed_probe(dir: &Path, name: &str) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES / zeros.len() as u64 {
        f.write_all(&zeros)?;
    }
    f.sync_all()?;
    Ok((path, f))
}

/// 4 KiB write + fdatasync in a loop for `seconds` in `dir` (a preallocated 64 MiB file,
/// wrapped around when full).
pub fn fdatasync_rate(dir: &Path, seconds: f64) -> std::io::Result<FsyncCeiling> {
    let (path, mut f) = zeroed_probe(dir, "fdatasync-probe")?;
    f.seek(SeekFrom::Start(0))?;
    let block = vec![0x5au8; BLOCK];
    let (start, end) = (Instant::now(), Duration::from_secs_f64(seconds));
    let (mut syncs, mut offset, mut max) = (0u64, 0u64, Duration::ZERO);
    while start.elapsed() < end {
        if offset + BLOCK as u64 > FILE_BYTES {
            f.seek(SeekFrom::Start(0))?;
            offset = 0;
        }
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        max = max.max(t.elapsed());
        offset += BLOCK as u64;
        syncs += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(FsyncCeiling {
        dir: dir.display().to_string(),
        seconds: elapsed,
        syncs,
        syncs_per_s: syncs as f64 / elapsed,
        mean_us: elapsed * 1e6 / syncs.max(1) as f64,
        max_us: max.as_micros() as u64,
    })
}

/// The latency floor of writes at `rate` per second of `record_bytes` each (see the module
/// comment).
#[derive(Debug, Clone, Serialize)]
pub struct GroupCommitCeiling {
    pub rate: u32,
    pub record_bytes: usize,
    pub seconds: f64,
    pub writes: u64,
    pub syncs: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// Runs the group-commit ceiling for `seconds` in `dir`, in a zero-filled, synced file of
/// 64 MiB (wrapped around when full), so that each sync writes data blocks only.
pub fn group_commit_floor(
    dir: &Path,
    rate: u32,
    record_bytes: usize,
    seconds: f64,
) -> std::io::Result<GroupCommitCeiling> {
    use std::os::unix::fs::FileExt;
    let (path, f) = zeroed_probe(dir, "group-commit-probe")?;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let record = vec![0x5au8; record_bytes.max(1)];
    let mut batch: Vec<u8> = Vec::new();
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let (start, end) = (Instant::now(), Duration::from_secs_f64(seconds));
    let (mut next, mut offset, mut syncs) = (0u64, 0u64, 0u64);
    let arrival = |i: u64| start + gap.mul_f64(i as f64);
    while start.elapsed() < end {
        let now = Instant::now();
        if arrival(next) > now {
            // Sleep while the next write is far off; spin the last stretch (a sleep
            // overshoots by tens of microseconds, which would be counted as latency).
            let wait = arrival(next) - now;
            if wait > Duration::from_micros(200) {
                std::thread::sleep(wait - Duration::from_micros(150));
            }
            continue;
        }
        let first = next;
        while arrival(next) <= now {
            next += 1;
        }
        batch.clear();
        for _ in first..next {
            batch.extend_from_slice(&record);
        }
        if offset + batch.len() as u64 > FILE_BYTES {
            offset = 0;
        }
        f.write_all_at(&batch, offset)?;
        f.sync_data()?;
        offset += batch.len() as u64;
        syncs += 1;
        let done = Instant::now();
        for i in first..next {
            let _ = hist.record((done - arrival(i)).as_micros().max(1) as u64);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(GroupCommitCeiling {
        rate,
        record_bytes,
        seconds: elapsed,
        writes: hist.len(),
        syncs,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
        p999_us: hist.value_at_quantile(0.999),
        max_us: hist.max(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_commit_floor_counts_every_scheduled_write() {
        let dir = std::env::temp_dir().join(format!("zb-gc-{}", std::process::id()));
        let c = super::group_commit_floor(&dir, 2000, 1100, 0.3).expect("probe");
        // 0.3 s at 2,000/s: at most the ~600 the schedule holds (a few more for the batch
        // that started last), several per sync when a sync takes longer than the gap. A
        // sync stalled on a busy machine ends the window with fewer: a quarter is plenty.
        assert!(c.writes >= 150 && c.writes <= 620, "{c:?}");
        assert!(c.syncs >= 1 && c.syncs <= c.writes, "{c:?}");
        assert!(c.p50_us <= c.p99_us && c.p99_us <= c.p999_us && c.p999_us <= c.max_us);
        assert!(!dir.join("group-commit-probe").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fdatasync_probe_counts_syncs_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("zb-fsync-{}", std::process::id()));
        let c = super::fdatasync_rate(&dir, 0.1).expect("probe");
        assert!(c.syncs > 0 && c.syncs_per_s > 0.0);
        assert!(!dir.join("fdatasync-probe").exists());
        let _ = std::fs::remove_dir_all(&dir);
        let m = super::machine_info(&std::env::temp_dir());
        assert!(m.cores > 0 && !m.kernel.is_empty());
    }
}
