//! What the campaign ran on, and the raw fdatasync rate of the file system that holds the
//! servers' logs. Both go into the result file, so a number is never read without the
//! machine that produced it. The fdatasync measurement writes 4 KiB blocks sequentially into
//! a preallocated file and fdatasyncs after each, which is a transaction log's pattern with
//! preallocation (ZooKeeper's preAllocSize): the rate is the ceiling of one-sync-per-write.

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

/// 4 KiB write + fdatasync in a loop for `seconds` in `dir` (a preallocated 64 MiB file,
/// wrapped around when full).
pub fn fdatasync_rate(dir: &Path, seconds: f64) -> std::io::Result<FsyncCeiling> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("fdatasync-probe");
    let mut f = std::fs::File::create(&path)?;
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES / zeros.len() as u64 {
        f.write_all(&zeros)?;
    }
    f.sync_all()?;
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

#[cfg(test)]
mod tests {
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
