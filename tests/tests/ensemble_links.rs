//! A peer link that breaks while every member stays up (zoocore ensembles only): the
//! followers' connections to the leader's quorum port are destroyed with `ss -K` while a
//! client keeps writes in flight through a follower. Every request must end — answered, or
//! failed with the client's connection — and never hang: a forwarded request lost with the
//! link must not be silently dropped (ZooKeeper's follower goes LOOKING when its socket to the
//! leader fails, closing its clients). Afterwards the ensemble serves writes again and every
//! acknowledged write is on every member.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use zoocore_e2e::ensemble::{assert_holds, await_settled, options, run};
use zoocore_e2e::{connect, connect_with, persistent, Options, Server, QUORUM_PORT};

fn link_options() -> Options {
    Options {
        // The client notices a silent server only after 2/3 of its session timeout (80 s):
        // longer than the 20 s a stalled write is given, so a lost request shows as a stall.
        session_timeout_ms_max: 120_000,
        ..options()
    }
}

/// Destroys every TCP connection to `ip`:QUORUM_PORT on this host (the followers' links to
/// that member); the sockets' owners see ECONNABORTED and their peer a reset.
fn destroy_links_to(ip: IpAddr) -> usize {
    let out = Command::new("ss")
        .args(["-K", "-t", "-n", "dst", &ip.to_string(), "dport", "="])
        .arg(format!(":{QUORUM_PORT}"))
        .output()
        .expect("run ss (iproute2)");
    let listed = String::from_utf8_lossy(&out.stdout);
    listed.lines().filter(|l| l.contains("ESTAB")).count()
}

#[test]
fn requests_forwarded_over_a_broken_link_are_answered_or_end_with_their_connection() {
    let servers = Server::start_ensemble(3, 0, link_options());
    run(async {
        let leader = await_settled(&servers).await;
        let follower = (leader + 1) % 3;
        let zk = connect_with(&servers[follower], Duration::from_secs(120)).await;
        zk.create("/links", b"", &persistent()).await.unwrap();

        // Writes in flight through the follower, 32 at a time, before and after the cut.
        let mut inflight = JoinSet::new();
        let mut acked = Vec::new();
        let (mut issued, mut ended, mut failed) = (0u32, 0u32, 0u32);
        let mut destroyed = None;
        let started = Instant::now();
        while issued < 2000 {
            while inflight.len() < 32 && issued < 2000 {
                let zk = zk.clone();
                let path = format!("/links/w{issued:05}");
                issued += 1;
                inflight.spawn(async move {
                    let result = zk.create(&path, b"v", &persistent()).await;
                    (path, result.is_ok())
                });
            }
            let (path, ok) = tokio::time::timeout(Duration::from_secs(20), inflight.join_next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "a write through the follower neither answered nor failed in 20 s \
                         ({} in flight, {ended} ended, links cut: {destroyed:?})",
                        inflight.len()
                    )
                })
                .expect("a write in flight")
                .expect("the write task");
            ended += 1;
            if ok {
                acked.push(path);
            } else {
                failed += 1;
            }
            if destroyed.is_none() && ended == 200 {
                destroyed = Some(destroy_links_to(servers[leader].addr().ip()));
            }
            if failed > 0 && issued >= 1000 {
                break; // the cut was seen; no need to write all of them
            }
        }
        while let Some(joined) = tokio::time::timeout(Duration::from_secs(20), inflight.join_next())
            .await
            .expect("every write in flight ends within 20 s")
        {
            let (path, ok) = joined.expect("the write task");
            if ok {
                acked.push(path);
            }
        }
        let destroyed = destroyed.expect("the links were cut");
        assert!(destroyed >= 1, "ss -K found no link to the leader");
        eprintln!(
            "{issued} writes, {} acknowledged, {failed} failed; {destroyed} links cut; {:?}",
            acked.len(),
            started.elapsed()
        );

        // The ensemble serves again through the same member, and nothing acknowledged is lost.
        let deadline = Instant::now() + Duration::from_secs(30);
        let zk = loop {
            let zk = connect(&servers[follower]).await;
            if zk.create("/links/after", b"v", &persistent()).await.is_ok() {
                break zk;
            }
            assert!(Instant::now() < deadline, "the follower never served again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        zk.sync("/").await.unwrap();
        for s in &servers {
            assert_holds(s, &acked).await;
        }
    });
}
