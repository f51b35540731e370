//! Ensembles of real zoocore processes on loopback (each member on its own 127.x address):
//! writes through any member are visible on every member after `sync`; killing the leader
//! with SIGKILL under write load elects a new leader that serves, and loses no acknowledged
//! write; observers serve reads and forward writes. tickTime is 100 ms so elections and
//! failure detection take a few hundred milliseconds; every wait is bounded.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zoocore_e2e::{connect, parse_key_values, persistent, run, within, Options, Server};

fn options() -> Options {
    Options {
        tick_ms: 100,
        extra_cfg: vec!["initLimit=20".into(), "syncLimit=3".into()],
        ..Options::default()
    }
}

fn mode_of(server: &Server) -> String {
    let srvr = server.four_letter("srvr");
    parse_key_values(&srvr)
        .get("Mode")
        .cloned()
        .unwrap_or_else(|| "not serving".into())
}

fn leader_index(servers: &[Server]) -> usize {
    let leaders: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].is_running() && mode_of(&servers[i]) == "leader")
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    leaders[0]
}

/// Reads `path` on every running member after `sync`, and checks it holds `data`.
async fn assert_everywhere(servers: &[Server], path: &str, data: &[u8]) {
    for s in servers.iter().filter(|s| s.is_running()) {
        let zk = connect(s).await;
        within(Duration::from_secs(10), "sync", zk.sync(path))
            .await
            .unwrap();
        let (got, _) = zk.get_data(path).await.unwrap_or_else(|e| {
            panic!("{path} on {}: {e}", s.connect_string());
        });
        assert_eq!(got, data, "{path} on {}", s.connect_string());
    }
}

#[test]
fn three_voters_replicate_writes_to_every_member() {
    let servers = Server::start_ensemble(3, 0, options());
    run(async {
        let leader = leader_index(&servers);
        let modes: BTreeSet<String> = servers.iter().map(mode_of).collect();
        assert_eq!(
            modes,
            BTreeSet::from(["leader".to_string(), "follower".to_string()])
        );
        let mntr = parse_key_values(&servers[leader].four_letter("mntr"));
        assert_eq!(mntr["zk_server_state"], "leader");
        assert_eq!(mntr["zk_synced_followers"], "2", "{mntr:?}");

        // A write through each member, read back on every member.
        for (i, s) in servers.iter().enumerate() {
            let zk = connect(s).await;
            let path = format!("/via{i}");
            zk.create(&path, format!("data{i}").as_bytes(), &persistent())
                .await
                .unwrap_or_else(|e| panic!("create through {}: {e}", s.connect_string()));
            // Read-your-writes on the member that took the write, without sync.
            let (got, _) = zk.get_data(&path).await.unwrap();
            assert_eq!(got, format!("data{i}").as_bytes());
        }
        for i in 0..servers.len() {
            assert_everywhere(&servers, &format!("/via{i}"), format!("data{i}").as_bytes()).await;
        }
        let srvr = parse_key_values(&servers[leader].four_letter("srvr"));
        assert!(srvr["Zxid"].starts_with("0x"), "{srvr:?}");
    });
}

#[test]
fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut servers = Server::start_ensemble(3, 0, options());
    let leader = leader_index(&servers);
    let follower = (leader + 1) % 3;
    let mut acked: Vec<String> = Vec::new();
    let mut failover = None;
    run(async {
        let zk = connect(&servers[follower]).await;
        let mut killed_at: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut n = 0u32;
        loop {
            assert!(
                Instant::now() < deadline,
                "no write succeeded after the leader was killed"
            );
            let path = format!("/w{n:05}");
            n += 1;
            let result = tokio::time::timeout(
                Duration::from_secs(2),
                zk.create(&path, b"v", &persistent()),
            )
            .await;
            match result {
                Ok(Ok(_)) => {
                    acked.push(path);
                    if let Some(at) = killed_at {
                        failover = Some(at.elapsed());
                        break;
                    }
                }
                Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
            if killed_at.is_none() && acked.len() == 50 {
                assert_eq!(mode_of(&servers[leader]), "leader", "still the leader");
                servers[leader].kill9();
                killed_at = Some(Instant::now());
            }
        }
        // A few more writes through the new leader's ensemble.
        for i in 0..10 {
            let path = format!("/after{i}");
            zk.create(&path, b"v", &persistent()).await.unwrap();
            acked.push(path);
        }
        let new_leader = leader_index(&servers);
        assert_ne!(new_leader, leader);
        for s in servers.iter().filter(|s| s.is_running()) {
            let zk = connect(s).await;
            zk.sync("/").await.unwrap();
            for path in &acked {
                zk.get_data(path).await.unwrap_or_else(|e| {
                    panic!("acknowledged {path} missing on {}: {e}", s.connect_string())
                });
            }
        }
    });
    eprintln!(
        "failover (kill -9 leader → first write through a survivor): {:?}",
        failover.expect("measured")
    );
}

#[test]
fn observers_serve_reads_and_forward_writes() {
    let servers = Server::start_ensemble(3, 2, options());
    run(async {
        let modes: Vec<String> = servers.iter().map(mode_of).collect();
        assert_eq!(&modes[3..], &["observer", "observer"], "{modes:?}");
        let leader = leader_index(&servers);
        let mntr = parse_key_values(&servers[leader].four_letter("mntr"));
        assert_eq!(mntr["zk_synced_followers"], "2", "{mntr:?}");
        assert_eq!(mntr["zk_learners"], "4", "{mntr:?}");

        let zk = connect(&servers[4]).await;
        zk.create("/from-observer", b"obs", &persistent())
            .await
            .unwrap();
        let (got, _) = zk.get_data("/from-observer").await.unwrap();
        assert_eq!(got, b"obs");
        let voter = connect(&servers[0]).await;
        voter
            .create("/from-voter", b"v", &persistent())
            .await
            .unwrap();
        assert_everywhere(&servers, "/from-observer", b"obs").await;
        assert_everywhere(&servers, "/from-voter", b"v").await;
    });
}

/// Small segments (preAllocSize in KiB) and a small snapCount make every member roll its log
/// and snapshot many times while writes flow: segments are prepared ahead in the background,
/// and every member still ends with every write, before and after a rolling restart.
#[test]
fn members_roll_segments_and_snapshot_under_writes() {
    let mut opts = options();
    opts.extra_cfg
        .extend(["preAllocSize=128".to_string(), "snapCount=60".to_string()]);
    let mut servers = Server::start_ensemble(3, 0, opts);
    let leader = leader_index(&servers);
    run(async {
        let zk = connect(&servers[leader]).await;
        for i in 0..300 {
            zk.create(&format!("/r{i:03}"), &[7u8; 512], &persistent())
                .await
                .unwrap();
        }
        assert_everywhere(&servers, "/r299", &[7u8; 512]).await;
    });
    // A rolling restart: each member recovers from its rolled segments and snapshots while
    // the other two keep the quorum.
    for server in servers.iter_mut() {
        server.stop();
        server.start_again();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (0..3).filter(|&i| mode_of(&servers[i]) == "leader").count() != 1 {
        assert!(Instant::now() < deadline, "one leader after the restarts");
        std::thread::sleep(Duration::from_millis(50));
    }
    run(async {
        assert_everywhere(&servers, "/r000", &[7u8; 512]).await;
        assert_everywhere(&servers, "/r299", &[7u8; 512]).await;
    });
}
