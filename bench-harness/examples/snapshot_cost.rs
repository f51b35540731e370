//! What one snapshot costs the machine, written each way the server can write it: the
//! thread's CPU time (user and system, from getrusage) and the wall time, for a tree of
//! `N` znodes of 100 B, buffered (through the page cache) and direct (O_DIRECT), in A B B A
//! order, `ROUNDS` times. Also the CPU time of making one log segment (zero-filling
//! preAllocSize and syncing it), which a roll costs when its spare is not ready.
//!
//!   cargo run --release -p zoocore-bench --example snapshot_cost -- DIR [N] [ROUNDS]
//!
//! DIR should be on the disk the server uses (not tmpfs). Files are removed as it goes.

use std::time::{Duration, Instant};

use zoocore_proto::{Acl, Zxid};
use zoocore_storage::{Device, FileDevice, Fill, SnapshotWriter};
use zoocore_tree::{Tree, Txn};

/// This thread's user + system CPU time.
fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given, which points at
    // a zeroed rusage of the right size; we read it only after a successful call.
    #[allow(unsafe_code)]
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn tree_of(n: u32) -> Tree {
    let mut t = Tree::new();
    for i in 1..=n {
        let txn = Txn::Create {
            path: format!("/k{i:08}"),
            data: Some(zoocore_proto::Bytes::from(vec![(i % 251) as u8; 100])),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: i as i32,
        };
        t.apply(Zxid::new(1, i), i64::from(i), &txn);
    }
    t
}

fn measure(what: &str, f: impl FnOnce()) -> (Duration, Duration) {
    let (cpu, wall) = (thread_cpu(), Instant::now());
    f();
    let (cpu, wall) = (thread_cpu() - cpu, wall.elapsed());
    println!("{what:10} cpu {:7.1} ms  wall {:7.1} ms", ms(cpu), ms(wall));
    (cpu, wall)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("usage: snapshot_cost DIR [N] [ROUNDS]");
    let n: u32 = args.get(2).map_or(1_000_000, |a| a.parse().expect("N"));
    let rounds: u32 = args.get(3).map_or(2, |a| a.parse().expect("ROUNDS"));
    let dev = FileDevice::open(dir).expect("device");
    let tree = tree_of(n);
    println!("{n} znodes of 100 B");
    let mut cpu = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for direct in [false, true, true, false] {
            let what = if direct { "direct" } else { "buffered" };
            let mut info = None;
            let (c, _) = measure(what, || {
                let w = if direct {
                    SnapshotWriter::new(dev.clone(), tree.clone())
                } else {
                    SnapshotWriter::new_buffered(dev.clone(), tree.clone())
                }
                .expect("started");
                info = Some(w.finish().expect("written"));
            });
            cpu[usize::from(direct)].push(ms(c));
            dev.remove(&info.expect("info").name).expect("removed");
        }
    }
    for (name, v) in ["buffered", "direct"].iter().zip(&mut cpu) {
        v.sort_by(f64::total_cmp);
        println!(
            "{name}: cpu ms min {:.0} median {:.0} max {:.0} over {}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        );
    }
    measure("segment, zero-filled", || {
        dev.create_segment("segment-cost.tmp", 64 << 20, Fill::Zeroes)
            .expect("segment");
    });
    dev.remove("segment-cost.tmp").expect("removed");
    measure("segment, allocated", || {
        dev.create_segment("segment-cost.tmp", 64 << 20, Fill::Allocate)
            .expect("segment");
    });
    dev.remove("segment-cost.tmp").expect("removed");
}
