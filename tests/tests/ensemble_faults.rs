//! Faults of real zoocore ensembles on loopback (each member on its own 127.x address, every
//! process killed when the test ends): a client whose member dies moves to another member with
//! its session, ephemerals and watches (setWatches fires what it missed); a follower killed and
//! restarted catches up by DIFF; a follower whose data is wiped catches up by SNAP; a leader
//! frozen with SIGSTOP is replaced after syncLimit ticks and, resumed, rejoins as a follower
//! with no acknowledged write lost; a write from a moved session's old connection fails
//! (SESSIONMOVED), as in ZooKeeper. tickTime is 100 ms; every wait polls a condition with a
//! generous bound (zoocore_e2e::ensemble), so that a loaded machine makes them slower, not
//! failed.

use std::time::{Duration, Instant};

use zoocore_e2e::ensemble::{
    self, assert_holds, await_leader, await_settled, await_zxids_agree, eventually,
    member_of_session, mode_of, run, write_until_failover, WAIT,
};
use zoocore_e2e::raw::{create_body, path_watch_body, Jute, RawConn};
use zoocore_e2e::{connect, connect_with, mode, persistent, within, Server};
use zookeeper_client::{CreateMode, EventType};

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
    let mut servers = Server::start_ensemble(3, 0, ensemble::options());
    run(async {
        let leader = await_settled(&servers).await;
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
        let event = within(WAIT, "the data watch after the move", data_watch.changed()).await;
        assert_eq!(event.event_type, EventType::NodeDataChanged);
        assert_eq!(event.path, "/watched");
        let event = within(
            WAIT,
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
        eventually("/eph removed when its session closes", || async {
            other.sync("/").await.map_err(|e| e.to_string())?;
            match other.get_data("/eph").await {
                Err(_) => Ok(()),
                Ok(_) => Err("/eph still there".into()),
            }
        })
        .await;
    });
}

#[test]
fn a_restarted_follower_catches_up_by_diff() {
    let mut servers = Server::start_ensemble(3, 0, ensemble::options());
    let (f, paths) = run(async {
        let leader = await_settled(&servers).await;
        let f = (leader + 1) % 3;
        let mut paths = Vec::new();
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
        (f, paths)
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
    let mut o = ensemble::options();
    // A small DIFF window, so that a follower starting from nothing is behind it.
    o.extra_cfg.push("commitLogCount=20".into());
    let mut servers = Server::start_ensemble(3, 0, o);
    run(async {
        let leader = await_settled(&servers).await;
        let f = (leader + 1) % 3;
        let g = (leader + 2) % 3;
        let mut paths = Vec::new();
        // start_again blocks this runtime while the member starts; a long session timeout
        // keeps the session (whose ephemeral is checked below) through that on a slow machine.
        let zk = connect_with(&servers[leader], Duration::from_secs(30)).await;
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
            WAIT,
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
    let mut servers = Server::start_ensemble(3, 0, ensemble::options());
    run(async {
        let leader = await_settled(&servers).await;
        let f = (leader + 1) % 3;
        let zk = connect(&servers[f]).await;
        let failover = write_until_failover(&zk, 30, || servers[leader].freeze()).await;
        eprintln!(
            "failover (SIGSTOP leader → first write through a survivor): {:?}",
            failover.elapsed
        );
        let mut acked = failover.acked;
        // Elected among the two live members: the frozen one answers nothing.
        let new_leader = await_leader(&servers).await;
        assert_ne!(new_leader, leader);
        servers[leader].thaw();
        eventually("the resumed leader follows", || {
            let m = mode_of(&servers[leader]);
            std::future::ready(if m == "follower" { Ok(()) } else { Err(m) })
        })
        .await;
        assert_eq!(await_leader(&servers).await, new_leader);
        for i in 0..5 {
            let path = format!("/after{i}");
            zk.create(&path, b"v", &persistent()).await.unwrap();
            acked.push(path);
        }
        await_zxids_agree(&servers).await;
        for s in &servers {
            assert_holds(s, &acked).await;
        }
    });
}

#[test]
fn a_write_from_a_moved_sessions_old_connection_fails() {
    let servers = Server::start_ensemble(3, 0, ensemble::options());
    let leader = run(await_settled(&servers));
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let mut old = RawConn::connect(servers[a].addr()).unwrap();
    let session = old.handshake(10_000, 0, &[0; 16], 0).unwrap();
    assert_ne!(session.session_id, 0);
    let reply = old.call(1, create_body("/by-old", b"", 0));
    assert_eq!(reply.err, 0);

    // The session moves to member b; its connection on a stays open.
    // b refuses the session until it has applied what the client saw (as ZooKeeper does).
    let deadline = Instant::now() + WAIT;
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
        old.is_closed_within(WAIT),
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
