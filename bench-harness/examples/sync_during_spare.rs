//! What creating the next log segment costs the live log's fdatasyncs: one thread appends
//! 1 KiB records to a zero-filled segment and fdatasyncs each at a fixed rate (a server's
//! batches at a low write rate), while another creates a 64 MiB segment the way the spare
//! job does. Prints the live syncs' latency percentiles while the creation runs and while
//! nothing else does, for each way of creating the file:
//! `whole` (write every zero through the page cache, then one fsync: the spare job before
//! this measurement), `direct` (the same zeros with O_DIRECT: the spare job since),
//! `chunked` (write 1 MiB of zeros, wait for it to reach the disk, repeat: the dirty data
//! never exceeds one chunk) and `fallocate` (extents reserved, nothing written).
//! `cargo run --release -p zoocore-bench --example sync_during_spare -- [dir] [rate] [rounds] [whole|fallocate]`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SEGMENT_BYTES: u64 = 64 << 20;
const CHUNK_BYTES: usize = 1 << 20;

fn create(path: &Path, how: &str) {
    let _ = std::fs::remove_file(path);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .expect("create");
    let zeros = vec![0u8; CHUNK_BYTES];
    match how {
        "whole" => {
            for _ in 0..SEGMENT_BYTES / CHUNK_BYTES as u64 {
                f.write_all(&zeros).expect("write");
            }
            f.sync_all().expect("sync");
        }
        "chunked" => {
            let fd = f.as_raw_fd();
            #[allow(unsafe_code)]
            for i in 0..SEGMENT_BYTES / CHUNK_BYTES as u64 {
                f.write_all(&zeros).expect("write");
                let off = (i * CHUNK_BYTES as u64) as i64;
                // SAFETY: fd is a file this function owns and keeps open.
                let rc = unsafe {
                    libc::sync_file_range(
                        fd,
                        off,
                        CHUNK_BYTES as i64,
                        libc::SYNC_FILE_RANGE_WAIT_BEFORE
                            | libc::SYNC_FILE_RANGE_WRITE
                            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                    )
                };
                assert_eq!(rc, 0, "sync_file_range");
            }
            f.sync_all().expect("sync");
        }
        "direct" => {
            use std::os::unix::fs::OpenOptionsExt;
            let direct = OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                .open(path)
                .expect("O_DIRECT");
            let buf = vec![0u8; CHUNK_BYTES + 4096];
            let start = buf.as_ptr().align_offset(4096);
            for i in 0..SEGMENT_BYTES / CHUNK_BYTES as u64 {
                direct
                    .write_all_at(&buf[start..start + CHUNK_BYTES], i * CHUNK_BYTES as u64)
                    .expect("direct write");
            }
            f.sync_all().expect("sync");
        }
        "fallocate" => {
            rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, SEGMENT_BYTES)
                .expect("fallocate");
            f.sync_all().expect("sync");
        }
        other => panic!("unknown way {other}"),
    }
}

/// The calling thread's time on a CPU so far (schedstat's first field, in ns).
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let rate: u64 = args.next().map_or(2000, |r| r.parse().expect("a rate"));
    let rounds: usize = args.next().map_or(3, |r| r.parse().expect("a count"));
    // How the live segment itself was made: `whole` (zeros written) or `fallocate`
    // (unwritten extents, so each sync also converts the extent its record landed in).
    let live_how = args.next().unwrap_or_else(|| "whole".to_owned());
    let dir = Path::new(&dir).join("sync-during-spare");
    std::fs::create_dir_all(&dir).expect("dir");
    let live_path = dir.join("live");
    create(&live_path, &live_how);
    let live = File::options().write(true).open(&live_path).expect("live");
    let record = vec![0x5a_u8; 1024];
    let mut offset = 0u64;
    for round in 0..rounds {
        for how in ["whole", "direct", "chunked", "fallocate"] {
            let busy = Arc::new(AtomicBool::new(false));
            let spare = dir.join("spare");
            let creator = {
                let busy = busy.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(500));
                    busy.store(true, Ordering::SeqCst);
                    let started = Instant::now();
                    let cpu = thread_cpu_ns();
                    create(&spare, how);
                    let cpu = thread_cpu_ns() - cpu;
                    busy.store(false, Ordering::SeqCst);
                    (started.elapsed(), Duration::from_nanos(cpu))
                })
            };
            let (mut during, mut quiet) = (Vec::new(), Vec::new());
            let period = Duration::from_nanos(1_000_000_000 / rate);
            let mut next = Instant::now();
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end || !creator.is_finished() {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep(next - now);
                }
                next += period;
                let was_busy = busy.load(Ordering::SeqCst);
                if offset + 1024 > SEGMENT_BYTES {
                    offset = 0;
                }
                live.write_all_at(&record, offset).expect("write");
                offset += 1024;
                let started = Instant::now();
                live.sync_data().expect("fdatasync");
                let took = started.elapsed();
                if was_busy || busy.load(Ordering::SeqCst) {
                    during.push(took);
                } else {
                    quiet.push(took);
                }
            }
            let (made, cpu) = creator.join().expect("creator");
            during.sort();
            quiet.sort();
            println!(
                "live {live_how} round {round} {how:9}: created in {:>7.1?} ({:>6.1?} CPU); syncs during: n {:>5} p50 {:>8.2?} \
                 p99 {:>8.2?} max {:>8.2?}; quiet: n {:>5} p50 {:>8.2?} p99 {:>8.2?} max {:>8.2?}",
                made,
                cpu,
                during.len(),
                pct(&during, 0.5),
                pct(&during, 0.99),
                during.last().copied().unwrap_or_default(),
                quiet.len(),
                pct(&quiet, 0.5),
                pct(&quiet, 0.99),
                quiet.last().copied().unwrap_or_default(),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
