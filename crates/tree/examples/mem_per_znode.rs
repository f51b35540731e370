//! Measures resident memory per znode: builds N znodes (default 1,000,000) with 100-byte
//! values under /bench (paths like /bench/k0000123456) through prepare + apply, and prints
//! the growth of VmRSS (read from /proc/self/status, so Linux only) divided by N.
//! Run: `cargo run --release -p zoocore-tree --example mem_per_znode [N]`.

use zoocore_proto::{Acl, CreateMode, SessionId, Zxid};
use zoocore_tree::{Op, PrepContext, Tree};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let before = rss_kib().unwrap_or(0);
    let mut tree = Tree::new();
    let mut zxid = 0i64;
    let mut submit = |tree: &mut Tree, op: Op| {
        zxid += 1;
        let ctx = PrepContext {
            session: SessionId(0),
            auth: &[],
            zxid: Zxid(zxid),
            time_ms: zxid,
            enforce_quota: false,
        };
        let txn = tree.prepare(&op, &ctx);
        let applied = tree.apply(Zxid(zxid), zxid, &txn);
        assert!(applied.result.code().is_ok(), "{applied:?}");
    };
    let create = |path: String| Op::Create {
        path,
        data: Some(vec![7u8; 100].into()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    };
    submit(&mut tree, create("/bench".into()));
    let start = std::time::Instant::now();
    for i in 0..n {
        submit(&mut tree, create(format!("/bench/k{i:010}")));
    }
    let elapsed = start.elapsed();
    let after = rss_kib().unwrap_or(0);
    let per_node = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!(
        "{n} znodes: {:.0} bytes RSS per znode, {:.2} s ({:.0} creates/s), digest {:x}",
        per_node,
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        tree.digest()
    );
    assert_eq!(
        tree.all_children_number("/bench"),
        Some(i32::try_from(n).unwrap_or(i32::MAX))
    );
}
