//! Times the append that rolls the log to a new segment, with the segment created then
//! (zeros written and synced on the caller's thread) and with a spare prepared beforehand
//! (`Log::next_segment_job`, run here on another thread): what the ZAB core waits at a roll.
//! `cargo run --release -p zoocore-bench --example roll_time -- [dir] [rolls]`.

use std::time::{Duration, Instant};

use zoocore_proto::Zxid;
use zoocore_storage::{new_log, FileDevice, LogOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let rolls: usize = args.next().map_or(5, |r| r.parse().expect("a count"));
    let txn = vec![0x5a_u8; 1000];
    for spare in [false, true] {
        let path = std::path::Path::new(&dir).join(format!("roll-time-{spare}"));
        let _ = std::fs::remove_dir_all(&path);
        let dev = FileDevice::open(&path).expect("dir");
        let opts = LogOptions {
            prealloc_bytes: 64 << 20,
            snap_count: 2000,
            database_id: 1,
        };
        let mut log = new_log(dev, opts);
        let mut zxid = 0u32;
        let mut times: Vec<Duration> = Vec::new();
        while times.len() < rolls {
            if spare {
                if let Some(job) = log.next_segment_job() {
                    let made = std::thread::spawn(move || job.run()).join().expect("job");
                    log.adopt_next_segment(made).expect("spare");
                }
            }
            let before = log.segments().len();
            zxid += 1;
            let started = Instant::now();
            log.append(Zxid::new(1, zxid), 0, &txn).expect("append");
            let took = started.elapsed();
            log.sync().expect("sync");
            if log.segments().len() > before && before > 0 {
                times.push(took);
            }
        }
        times.sort();
        println!(
            "{}: rolling append median {:?}, max {:?} over {rolls} rolls",
            if spare {
                "with a spare"
            } else {
                "created at the roll"
            },
            times[times.len() / 2],
            times[times.len() - 1]
        );
        let _ = std::fs::remove_dir_all(&path);
    }
}
