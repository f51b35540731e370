//! What a `sync` costs on 3 voters on loopback: sequential `sync("/")` calls through one
//! client of the leader and one of a follower, idle ensemble, latency percentiles printed.
//! docs/ZAB.md quotes it before and after read rounds (run it against each `zoocore` binary in
//! turn, interleaved, on the same machine). A measurement, not a test: nothing is asserted.
//!
//! `cargo build --bin zoocore && cargo run -p zoocore-e2e --example sync_latency [N]`

use std::time::{Duration, Instant};

use zoocore_e2e::ensemble::{self, await_settled};
use zoocore_e2e::{connect, Server};

async fn measure(zk: &zookeeper_client::Client, n: usize) -> Vec<Duration> {
    for _ in 0..n / 10 {
        zk.sync("/").await.expect("warm-up sync");
    }
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        zk.sync("/").await.expect("sync");
        took.push(start.elapsed());
    }
    took.sort();
    took
}

fn summary(took: &[Duration]) -> String {
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    let mean = took.iter().sum::<Duration>() / took.len() as u32;
    format!(
        "n={} mean={:?} p50={:?} p90={:?} p99={:?}",
        took.len(),
        mean,
        at(0.5),
        at(0.9),
        at(0.99)
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let servers = Server::start_ensemble(3, 0, ensemble::options());
    zoocore_e2e::run_within(Duration::from_secs(600), async {
        let leader = await_settled(&servers).await;
        let follower = (leader + 1) % 3;
        let on_leader = connect(&servers[leader]).await;
        let on_follower = connect(&servers[follower]).await;
        println!(
            "sync via leader:   {}",
            summary(&measure(&on_leader, n).await)
        );
        println!(
            "sync via follower: {}",
            summary(&measure(&on_follower, n).await)
        );
    });
}
