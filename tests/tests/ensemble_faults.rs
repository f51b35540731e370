//! Faults of real zoocore ensembles on loopback (each member on its own 127.x address, every
//! process killed when the test ends): a client whose member dies moves to another member with
//! its session, ephemerals and watches (setWatches fires what it missed); a follower killed and
//! restarted catches up by DIFF; a follower whose data is wiped catches up by SNAP; a leader
//! frozen with SIGSTOP is replaced after syncLimit ticks and, resumed, rejoins as a follower
//! with no acknowledged write lost; a write from a moved session's old connection fails
//! (SESSIONMOVED), as in ZooKeeper. tickTime is 100 ms; every wait is bounded.

use std::time::{Duration, Instant};

use zoocore_e2e::raw::{create_body, path_watch_body, Jute, RawConn};
use zoocore_e2e::{connect, mode, parse_key_values, persistent, run, within, Options, Server};
use zookeeper_client::{CreateMode, EventType};

fn options() -> Options {
    Options {
        tick_ms: 100,
        extra_cfg: vec!["initLimit=20".into(), "syncLimit=5".into()],
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

/// The one leader among the members in `among`.
fn leader_among(servers: &[Server], among: &[usize]) -> usize {
    let leaders: Vec<usize> = among
        .iter()
        .copied()
        .filter(|&i| servers[i].is_running() && mode_of(&servers[i]) == "leader")
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    leaders[0]
}

fn all(servers: &[Server]) -> Vec<usize> {
    (0..servers.len()).collect()
}

/// Polls `cond` every 50 ms until it holds, for at most `limit`.
async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The member whose `cons` lists `session`.
fn member_of_session(servers: &[Server], session: i64) -> usize {
    let needle = format!("sid=0x{session:x},");
    let holders: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].is_running() && servers[i].four_letter("cons").contains(&needle))
        .collect();
    assert_eq!(holders.len(), 1, "session 0x{session:x} on {holders:?}");
    holders[0]
}

/// After `sync`, every path of `paths` is on `server`.
async fn assert_holds(server: &Server, paths: &[String]) {
    let zk = connect(server).await;
    within(Duration::from_secs(10), "sync", zk.sync("/"))
        .await
        .unwrap();
    for path in paths {
        zk.get_data(path).await.unwrap_or_else(|e| {
            panic!("{path} missing on {}: {e}", server.connect_string());
        });
    }
}

/// The part of a server's log written since `from` (a length of its log text).
fn log_since(server: &Server, from: usize) -> String {
    server
        .log_text()
        .get(from..)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_client_whose_member_dies_keeps_its_session_ephemerals_and_watches() {
    let mut servers = Server::start_ensemble(3, 0, options());
    run(async {
        let leader = leader_among(&servers, &all(&servers));
        let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
        let cluster: Vec<String> = followers
            .iter()
            .map(|&i| servers[i].connect_string())
            .collect();
        let zk = zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&cluster.join(","))
            .await
            .unwrap();
        let session = zk.session_id();
        zk.create("/eph", b"e", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        let other = connect(&servers[leader]).await;
        other.create("/watched", b"0", &persistent()).await.unwrap();
        zk.sync("/watched").await.unwrap();
        let (_, _, data_watch) = zk.get_and_watch_data("/watched").await.unwrap();
        let (_, _, child_watch) = zk.get_and_watch_children("/watched").await.unwrap();

        // Freeze the client's member so that it misses the changes, then kill it: the
        // client reconnects to the other follower, whose setWatches fires what it missed.
        let at = member_of_session(&servers, session.0);
        servers[at].freeze();
        other.set_data("/watched", b"1", None).await.unwrap();
        other
            .create("/watched/child", b"", &persistent())
            .await
            .unwrap();
        servers[at].kill9();
        let event = within(
            Duration::from_secs(10),
            "the data watch after the move",
            data_watch.changed(),
        )
        .await;
        assert_eq!(event.event_type, EventType::NodeDataChanged);
        assert_eq!(event.path, "/watched");
        let event = within(
            Duration::from_secs(10),
            "the child watch after the move",
            child_watch.changed(),
        )
        .await;
        assert_eq!(event.event_type, EventType::NodeChildrenChanged);

        // Same session, its ephemeral kept, and it writes through its new member.
        assert_eq!(zk.session_id(), session);
        let (_, stat) = zk.get_data("/eph").await.unwrap();
        assert_eq!(stat.ephemeral_owner, session.0);
        zk.create("/moved", b"m", &persistent()).await.unwrap();
        let survivor = followers.iter().copied().find(|&i| i != at).unwrap();
        assert_eq!(member_of_session(&servers, session.0), survivor);
        let (got, _) = other.get_data("/eph").await.unwrap();
        assert_eq!(got, b"e");

        // Its ephemerals go everywhere when it closes.
        drop(zk);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            other.sync("/").await.unwrap();
            if other.get_data("/eph").await.is_err() {
                break;
            }
            assert!(Instant::now() < deadline, "/eph outlived its session");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn a_restarted_follower_catches_up_by_diff() {
    let mut servers = Server::start_ensemble(3, 0, options());
    let leader = leader_among(&servers, &all(&servers));
    let f = (leader + 1) % 3;
    let mut paths = Vec::new();
    run(async {
        let zk = connect(&servers[leader]).await;
        for i in 0..20 {
            let path = format!("/before{i}");
            zk.create(&path, b"b", &persistent()).await.unwrap();
            paths.push(path);
        }
        servers[f].kill9();
        for i in 0..50 {
            let path = format!("/during{i}");
            zk.create(&path, b"d", &persistent()).await.unwrap();
            paths.push(path);
        }
    });
    let from = servers[f].log_text().len();
    servers[f].start_again();
    run(async {
        assert_holds(&servers[f], &paths).await;
        let zk = connect(&servers[f]).await;
        zk.create("/after", b"a", &persistent()).await.unwrap();
    });
    let log = log_since(&servers[f], from);
    assert!(log.contains("by DIFF"), "not a DIFF:\n{log}");
    assert!(!log.contains("by SNAP"), "a SNAP:\n{log}");
    assert_eq!(mode_of(&servers[f]), "follower");
}

#[test]
fn a_follower_whose_data_is_wiped_catches_up_by_snap() {
    let mut o = options();
    // A small DIFF window, so that a follower starting from nothing is behind it.
    o.extra_cfg.push("commitLogCount=20".into());
    let mut servers = Server::start_ensemble(3, 0, o);
    let leader = leader_among(&servers, &all(&servers));
    let f = (leader + 1) % 3;
    let g = (leader + 2) % 3;
    let mut paths = Vec::new();
    run(async {
        let zk = connect(&servers[leader]).await;
        zk.create("/eph", b"e", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        servers[f].kill9();
        for i in 0..100 {
            let path = format!("/n{i}");
            zk.create(&path, b"v", &persistent()).await.unwrap();
            paths.push(path);
        }
        servers[f].wipe_data();
        let from = servers[f].log_text().len();
        servers[f].start_again();
        assert_holds(&servers[f], &paths).await;
        let log = log_since(&servers[f], from);
        assert!(log.contains("by SNAP"), "not a SNAP:\n{log}");

        // It holds the sessions too, and its log and snapshot are durable: with the other
        // follower gone, the leader commits with it.
        let fz = connect(&servers[f]).await;
        let (_, stat) = fz.get_data("/eph").await.unwrap();
        assert_eq!(stat.ephemeral_owner, zk.session_id().0);
        servers[g].kill9();
        within(
            Duration::from_secs(10),
            "a write with the SNAP'd follower as quorum",
            zk.create("/with-f", b"", &persistent()),
        )
        .await
        .unwrap();
        servers[f].kill9();
        servers[f].start_again();
        paths.push("/with-f".into());
        assert_holds(&servers[f], &paths).await;
    });
}

#[test]
fn a_frozen_leader_is_replaced_and_rejoins_when_resumed() {
    let servers = Server::start_ensemble(3, 0, options());
    let leader = leader_among(&servers, &all(&servers));
    let f = (leader + 1) % 3;
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let mut acked: Vec<String> = Vec::new();
    let mut failover = None;
    run(async {
        let zk = connect(&servers[f]).await;
        let mut frozen_at: Option<Instant> = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0u32;
        loop {
            assert!(
                Instant::now() < deadline,
                "no write succeeded after the leader froze"
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
                    if let Some(at) = frozen_at {
                        failover = Some(at.elapsed());
                        break;
                    }
                }
                Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
            if frozen_at.is_none() && acked.len() == 30 {
                servers[leader].freeze();
                frozen_at = Some(Instant::now());
            }
        }
        let new_leader = leader_among(&servers, &others);
        servers[leader].thaw();
        eventually(
            Duration::from_secs(10),
            "the resumed leader follows",
            || mode_of(&servers[leader]) == "follower",
        )
        .await;
        assert_eq!(leader_among(&servers, &all(&servers)), new_leader);
        for i in 0..5 {
            let path = format!("/after{i}");
            zk.create(&path, b"v", &persistent()).await.unwrap();
            acked.push(path);
        }
        for s in &servers {
            assert_holds(s, &acked).await;
        }
    });
    eprintln!(
        "failover (SIGSTOP leader → first write through a survivor): {:?}",
        failover.expect("measured")
    );
}

#[test]
fn a_write_from_a_moved_sessions_old_connection_fails() {
    let servers = Server::start_ensemble(3, 0, options());
    let leader = leader_among(&servers, &all(&servers));
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut old = RawConn::connect(servers[a].addr()).unwrap();
    let session = old.handshake(10_000, 0, &[0; 16], 0).unwrap();
    assert_ne!(session.session_id, 0);
    let reply = old.call(1, create_body("/by-old", b"", 0));
    assert_eq!(reply.err, 0);

    // The session moves to member b; its connection on a stays open.
    // b refuses the session until it has applied what the client saw (as ZooKeeper does).
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut new, moved) = loop {
        let mut new = RawConn::connect(servers[b].addr()).unwrap();
        match new.handshake(10_000, session.session_id, &session.password, reply.zxid) {
            Ok(moved) => break (new, moved),
            Err(e) => assert!(Instant::now() < deadline, "b refuses the session: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(moved.session_id, session.session_id);
    let reply = new.call(1, create_body("/by-new", b"", 0));
    assert_eq!(reply.err, 0);

    // A write from the old connection is refused with SESSIONMOVED: ZooKeeper commits it as
    // an error and closes the old connection instead of answering.
    old.send(7, 1, &create_body("/by-old-after-move", b"", 0))
        .unwrap();
    assert!(
        old.is_closed_within(Duration::from_secs(5)),
        "the old connection stays open after a write of a moved session"
    );
    let log = servers[a].log_text();
    assert!(
        log.contains("session moved to another member"),
        "the old connection closed for another reason:\n{}",
        servers[a].log_tail()
    );
    let reply = new.call(9, Jute::new().string("/"));
    assert_eq!(reply.err, 0);
    let reply = new.call(3, path_watch_body("/by-old-after-move", false));
    assert_eq!(reply.err, -101, "the moved session's old write was applied");
    let reply = new.call(1, create_body("/by-new-2", b"", 0));
    assert_eq!(reply.err, 0, "the session works on its new member");
}
