//! Observer masters on real processes (ZooKeeper 3.6's `observerMasterPort`,
//! docs/ZAB.md "Observer masters"): 3 voters and 2 observers, every zoo.cfg with the key.
//! The observers learn from followers (the leader has its two followers as learners only),
//! writes through every member are answered and read back everywhere; killing the follower
//! an observer learns from leaves that observer serving through another member, with the
//! writes that follow answered through it and on it.

use zoocore_e2e::ensemble::{self, assert_holds, await_settled, eventually, mode_of, run};
use zoocore_e2e::{connect, parse_key_values, persistent, Server};

/// Beside the harness's ports (21810-21813, 21870, 21880), on each member's own address.
const OBSERVER_MASTER_PORT: u16 = 21814;

fn mntr(server: &Server, key: &str) -> Option<String> {
    let text = server.try_four_letter("mntr").ok()?;
    parse_key_values(&text).get(key).cloned()
}

/// The myid of the follower observer `o` (an index) learns from, once it serves through one.
fn master_of(servers: &[Server], o: usize) -> Result<u64, String> {
    let mode = mode_of(&servers[o]);
    let master = mntr(&servers[o], "zoocore_observer_master");
    match (mode.as_str(), master.as_deref().map(str::parse::<u64>)) {
        ("observer", Some(Ok(m))) if m != 0 => Ok(m),
        _ => Err(format!("member {} is {mode}, master {master:?}", o + 1)),
    }
}

/// Creates `/{prefix}{i}` through a fresh client of every member of `via`; the paths.
async fn write_through(servers: &[Server], via: &[usize], prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for &i in via {
        let zk = connect(&servers[i]).await;
        let path = format!("/{prefix}{}", i + 1);
        zk.create(&path, b"v", &persistent())
            .await
            .unwrap_or_else(|e| panic!("create {path} through member {}: {e}", i + 1));
        paths.push(path);
    }
    paths
}

#[test]
fn observers_learn_from_followers_and_fail_over_when_theirs_dies() {
    let mut options = ensemble::options();
    options
        .extra_cfg
        .push(format!("observerMasterPort={OBSERVER_MASTER_PORT}"));
    let mut servers = Server::start_ensemble(3, 2, options);
    run(async {
        let leader = await_settled(&servers).await;
        let leader_id = leader as u64 + 1;
        let mut masters = Vec::new();
        for o in [3, 4] {
            let m = eventually("the observer learns from a follower", || {
                std::future::ready(master_of(&servers, o))
            })
            .await;
            assert_ne!(m, leader_id, "observer {} learns from the leader", o + 1);
            assert!((1..=3).contains(&m), "observer {} master {m}", o + 1);
            masters.push(m);
        }
        // The leader synchronises and feeds its two followers only.
        assert_eq!(mntr(&servers[leader], "zk_learners").as_deref(), Some("2"));
        let served: u64 = (0..3)
            .filter(|&i| i != leader)
            .map(|i| {
                mntr(&servers[i], "zoocore_observers_served")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(served, 2, "the followers serve both observers");

        let every: Vec<usize> = (0..5).collect();
        let written = write_through(&servers, &every, "a").await;
        for &i in &every {
            assert_holds(&servers[i], &written).await;
        }

        // Kill the follower observer 4 (index 3) learns from.
        let dead = masters[0];
        servers[dead as usize - 1].kill9();
        let now = eventually("observer 4 serves through another member", || {
            std::future::ready(match mode_of(&servers[3]).as_str() {
                "observer" => match mntr(&servers[3], "zoocore_observer_master")
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    Some(m) if m != dead => Ok(m),
                    other => Err(format!("master {other:?}")),
                },
                mode => Err(format!("mode {mode}")),
            })
        })
        .await;
        eprintln!("observer 4 moved from follower {dead} to {now} (0: the leader)");
        let live: Vec<usize> = every
            .iter()
            .copied()
            .filter(|&i| i != dead as usize - 1)
            .collect();
        let after = write_through(&servers, &live, "b").await;
        for &i in &live {
            assert_holds(&servers[i], &written).await;
            assert_holds(&servers[i], &after).await;
        }
    });
}
