//! Proves session life cycle behaves like ZooKeeper: timeouts negotiated into
//! [minSessionTimeout, maxSessionTimeout]; pings keep an idle session alive past its timeout;
//! a session resumes on a new connection with id and password, keeping its ephemerals;
//! setWatches after reconnect fires what changed while away; watches survive a server
//! restart; expiry deletes ephemerals and fires watches; a wrong password or an expired
//! session gets the "expired" connect answer (timeout 0, session id 0).

use std::time::Duration;

use zoocore_e2e::raw::{self, op, Jute, Notification, RawConn};
use zoocore_e2e::*;
use zookeeper_client::{Client, CreateMode, Error, EventType, SessionState};

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn negotiated_timeout_is_clamped_to_server_bounds() {
    let server = Server::start_default();
    let (_, low) = RawConn::open_session(server.addr(), 100);
    assert_eq!(low.timeout_ms, 400, "raised to minSessionTimeout");
    let (_, high) = RawConn::open_session(server.addr(), 120_000);
    assert_eq!(high.timeout_ms, 60_000, "lowered to maxSessionTimeout");
    let (_, mid) = RawConn::open_session(server.addr(), 3_000);
    assert_eq!(mid.timeout_ms, 3_000);
    assert_eq!(mid.password.len(), 16, "16-byte session password");
    assert_eq!(mid.protocol_version, 0);
    assert_ne!(mid.session_id, high.session_id);
}

#[test]
fn pings_keep_idle_session_alive_past_its_timeout() {
    run(async {
        let server = Server::start_default();
        let zk = connect_with(&server, Duration::from_millis(1000)).await;
        assert_eq!(zk.session_timeout(), Duration::from_millis(1000));
        zk.create("/alive", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(zk.state(), SessionState::SyncConnected);
        let stat = zk
            .check_stat("/alive")
            .await
            .unwrap()
            .expect("ephemeral survives idle time");
        assert_eq!(stat.ephemeral_owner, zk.session_id().0);
    });
}

#[test]
fn raw_pings_are_answered_with_xid_minus_two() {
    let server = Server::start_default();
    let (mut conn, _) = RawConn::open_session(server.addr(), 800);
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        let reply = conn.call_xid(raw::XID_PING, op::PING, Jute::new());
        assert_eq!(reply.err, 0);
    }
    // 1.8 s of pings on an 800 ms session: still usable.
    assert_eq!(
        conn.call(op::EXISTS, raw::path_watch_body("/", false)).err,
        0
    );
}

#[test]
fn session_resumes_on_new_connection_with_its_ephemerals() {
    run(async {
        let server = Server::start_default();
        let first = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_detached()
            .connect(&server.connect_string())
            .await
            .unwrap();
        first
            .create("/mine", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        let session = first.session().clone();
        let id = first.session_id();
        drop(first); // detached: the session is not closed
        let resumed = Client::connector()
            .with_session(session)
            .with_session_timeout(Duration::from_secs(10))
            .connect(&server.connect_string())
            .await
            .unwrap();
        assert_eq!(resumed.session_id(), id, "same session");
        let stat = resumed
            .check_stat("/mine")
            .await
            .unwrap()
            .expect("ephemeral kept");
        assert_eq!(stat.ephemeral_owner, id.0);
        assert_eq!(resumed.list_ephemerals("/").await.unwrap(), ["/mine"]);
        resumed
            .create("/mine2", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
    });
}

#[test]
fn set_watches_after_reconnect_fires_what_changed() {
    let server = Server::start_default();
    let (mut setup, _) = RawConn::open_session(server.addr(), 10_000);
    assert_eq!(
        setup
            .call(op::CREATE, raw::create_body("/changed", b"", 0))
            .err,
        0
    );
    assert_eq!(
        setup
            .call(op::CREATE, raw::create_body("/deleted", b"", 0))
            .err,
        0
    );
    assert_eq!(
        setup
            .call(op::CREATE, raw::create_body("/same", b"", 0))
            .err,
        0
    );
    assert_eq!(
        setup
            .call(op::CREATE, raw::create_body("/parent", b"", 0))
            .err,
        0
    );

    let (mut conn, session) = RawConn::open_session(server.addr(), 10_000);
    let seen = conn.call(op::EXISTS, raw::path_watch_body("/", false)).zxid;
    assert_eq!(
        conn.call(op::CREATE, raw::create_body("/eph", b"", 1)).err,
        0
    );
    drop(conn); // connection lost, session alive

    assert_eq!(
        setup
            .call(op::SET_DATA, raw::set_data_body("/changed", b"x", -1))
            .err,
        0
    );
    assert_eq!(
        setup
            .call(op::DELETE, Jute::new().string("/deleted").int(-1))
            .err,
        0
    );
    assert_eq!(
        setup
            .call(op::CREATE, raw::create_body("/born", b"", 0))
            .err,
        0
    );
    assert_eq!(
        setup
            .call(op::CREATE, raw::create_body("/parent/kid", b"", 0))
            .err,
        0
    );

    let mut conn = RawConn::connect(server.addr()).unwrap();
    let resumed = conn
        .handshake(10_000, session.session_id, &session.password, seen)
        .unwrap();
    assert_eq!(resumed.session_id, session.session_id, "resumed");
    let set_watches = Jute::new()
        .long(seen)
        .strings(&["/changed", "/deleted", "/same"])
        .strings(&["/born", "/unborn"])
        .strings(&["/parent"]);
    let reply = conn.call_xid(raw::XID_SET_WATCHES, op::SET_WATCHES, set_watches);
    assert_eq!(reply.err, 0);
    let mut events = conn.notifications.clone();
    while events.len() < 4 {
        events.push(conn.next_notification());
    }
    events.sort_by(|a, b| a.path.cmp(&b.path));
    let expect = |t: i32, p: &str| Notification {
        event_type: t,
        state: 3,
        path: p.to_string(),
    };
    assert_eq!(
        events,
        [
            expect(1, "/born"),
            expect(3, "/changed"),
            expect(2, "/deleted"),
            expect(4, "/parent"),
        ],
        "created, data changed, deleted, children changed since zxid {seen:#x}"
    );
    // The watches that did not fire are registered: /same fires on its next change.
    conn.notifications.clear();
    assert_eq!(
        setup
            .call(op::SET_DATA, raw::set_data_body("/same", b"y", -1))
            .err,
        0
    );
    assert_eq!(conn.next_notification(), expect(3, "/same"));
    assert_eq!(
        conn.call(op::EXISTS, raw::path_watch_body("/eph", false))
            .err,
        0,
        "ephemeral kept"
    );
}

#[test]
fn watches_survive_server_restart() {
    run(async {
        let mut server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/w", b"", &persistent()).await.unwrap();
        zk.create("/e", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        let (_, _, watch) = zk.get_and_watch_data("/w").await.unwrap();
        let mut state = zk.state_watcher();
        server.restart();
        within(WAIT, "reconnect after restart", async {
            while state.changed().await != SessionState::SyncConnected {}
        })
        .await;
        let writer = connect(&server).await;
        assert!(
            writer.check_stat("/e").await.unwrap().is_some(),
            "session and ephemeral survive restart"
        );
        writer.set_data("/w", b"after", None).await.unwrap();
        let e = within(WAIT, "watch re-registered by setWatches", watch.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDataChanged, "/w")
        );
    });
}

#[test]
fn expiry_removes_ephemerals_and_fires_watches() {
    run(async {
        let server = Server::start_default();
        let doomed = Client::connector()
            .with_session_timeout(Duration::from_millis(800))
            .with_detached()
            .connect(&server.connect_string())
            .await
            .unwrap();
        doomed
            .create("/lease", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        doomed.create("/dir", b"", &persistent()).await.unwrap();
        doomed
            .create("/dir/lease", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        let session = doomed.session().clone();
        let observer = connect(&server).await;
        let (_, _, deleted) = observer.get_and_watch_data("/lease").await.unwrap();
        let (_, children) = observer.list_and_watch_children("/dir").await.unwrap();
        drop(doomed); // stops pinging without closing the session
        let e = within(WAIT, "NodeDeleted on expiry", deleted.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeDeleted, "/lease")
        );
        let e = within(WAIT, "NodeChildrenChanged on expiry", children.changed()).await;
        assert_eq!(
            (e.event_type, e.path.as_str()),
            (EventType::NodeChildrenChanged, "/dir")
        );
        assert!(observer.list_children("/dir").await.unwrap().is_empty());

        let err = Client::connector()
            .with_session(session)
            .connect(&server.connect_string())
            .await
            .unwrap_err();
        assert_eq!(err, Error::SessionExpired, "resuming an expired session");
    });
}

#[test]
fn expired_session_connection_is_closed_and_cannot_resume() {
    let server = Server::start_default();
    let (mut conn, session) = RawConn::open_session(server.addr(), 600);
    assert_eq!(
        conn.call(op::CREATE, raw::create_body("/gone", b"", 1)).err,
        0
    );
    // Silent client: the server expires the session and closes the connection.
    assert!(
        conn.is_closed_within(Duration::from_secs(5)),
        "server closes an expired session's socket"
    );
    let mut again = RawConn::connect(server.addr()).unwrap();
    let answer = again
        .handshake(600, session.session_id, &session.password, 0)
        .unwrap();
    assert_eq!(
        (answer.timeout_ms, answer.session_id),
        (0, 0),
        "expired: timeout 0, id 0"
    );
    assert!(
        again.is_closed_within(Duration::from_secs(3)),
        "then the server closes"
    );
    let (mut check, _) = RawConn::open_session(server.addr(), 10_000);
    assert_eq!(
        check
            .call(op::EXISTS, raw::path_watch_body("/gone", false))
            .err,
        -101
    );
}

#[test]
fn wrong_password_is_answered_as_expired_and_session_lives_on() {
    let server = Server::start_default();
    let (mut conn, session) = RawConn::open_session(server.addr(), 10_000);
    assert_eq!(
        conn.call(op::CREATE, raw::create_body("/still", b"", 1))
            .err,
        0
    );
    let mut bad_password = session.password.clone();
    bad_password[0] ^= 0xff;
    let mut intruder = RawConn::connect(server.addr()).unwrap();
    let answer = intruder
        .handshake(10_000, session.session_id, &bad_password, 0)
        .unwrap();
    assert_eq!(
        (answer.timeout_ms, answer.session_id),
        (0, 0),
        "wrong password: expired answer"
    );
    assert!(intruder.is_closed_within(Duration::from_secs(3)));
    // Apache closes the session's current connection on any reconnect attempt, before it
    // checks the password (ZooKeeperServer.processConnectRequest); the session itself lives.
    assert!(
        conn.is_closed_within(Duration::from_secs(3)),
        "owner's connection closed"
    );
    let mut owner = RawConn::connect(server.addr()).unwrap();
    let answer = owner
        .handshake(10_000, session.session_id, &session.password, 0)
        .unwrap();
    assert_eq!(
        answer.session_id, session.session_id,
        "the right password resumes"
    );
    assert_eq!(answer.password, session.password);
    assert_eq!(
        owner
            .call(op::EXISTS, raw::path_watch_body("/still", false))
            .err,
        0,
        "ephemeral kept"
    );
}
