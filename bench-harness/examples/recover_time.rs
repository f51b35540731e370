//! Times `recover` on a data directory (read-only use apart from what recovery itself does:
//! removing `*.tmp` files, truncating a torn tail), for profiling restart time:
//! `cargo run --release -p zoocore-bench --example recover_time -- <dir> [repeat]`.

use std::time::Instant;

use zoocore_storage::{recover, FileDevice, RecoverOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: recover_time <dir> [repeat]");
    let repeat: usize = args.next().map_or(1, |r| r.parse().expect("a count"));
    for _ in 0..repeat {
        let started = Instant::now();
        let dev = FileDevice::open(&dir).expect("data directory");
        let r = recover(dev, RecoverOptions::default()).expect("recovery");
        println!(
            "{} znodes, {} sessions at zxid {} (snapshot {:?}, {} replayed) in {:?}",
            r.tree.node_count(),
            r.tree.session_count(),
            r.last_zxid,
            r.snapshot_zxid,
            r.replayed,
            started.elapsed()
        );
        let dropped = Instant::now();
        drop(r);
        println!("  drop took {:?}", dropped.elapsed());
    }
}
