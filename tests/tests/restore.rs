//! The admin `restore` command (ZooKeeper 3.9's RestoreCommand, a POST): a snapshot taken
//! with `snapshot` is loaded back into a running standalone server, replacing what changed
//! since, and the restored data survives a restart. Its checks as 3.9 orders them: the
//! `Authorization` header against the ACL of `/`, a body, the rate limit; an ensemble member
//! refuses it (loading it on one member would make its data diverge from the others').

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;
use zoocore_e2e::{persistent, run, Options, Server, Target, ADMIN_PORT};

/// A POST of `body` to the admin port; the status and the JSON answer.
fn post(server: &Server, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, Value) {
    let addr = SocketAddr::new(server.addr().ip(), ADMIN_PORT);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(body).expect("send body");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

fn start(extra: &[&str]) -> Server {
    Server::start_with(
        Target::Zoocore,
        Options {
            admin: true,
            extra_cfg: extra.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        },
    )
}

#[test]
fn a_snapshot_restored_brings_the_old_data_back_and_it_survives_a_restart() {
    if Target::from_env() == Target::Apache {
        return; // 3.8 has no restore
    }
    let mut server = start(&[]);
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        for i in 0..5 {
            zk.create(&format!("/kept{i}"), b"old", &persistent())
                .await
                .expect("create");
        }
    });
    let auth = Some("digest anyone:pw");
    let snap = server.admin_get_with(
        "/commands/snapshot",
        &[("Authorization", "digest anyone:pw")],
    );
    assert_eq!(snap.status, 200, "{}", snap.body);
    let taken = snap.headers["last_zxid"].clone();
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.set_data("/kept0", b"changed", None).await.expect("set");
        zk.delete("/kept1", None).await.expect("delete");
        zk.create("/later", b"x", &persistent())
            .await
            .expect("create");
    });
    // The checks, before anything is loaded.
    let (status, json) = post(&server, "/commands/restore", None, &snap.bytes);
    assert_eq!(
        (status, json["error"].clone()),
        (401, "Auth info is missing for the command".into())
    );
    let (status, _) = post(&server, "/commands/restore", auth, b"");
    assert_eq!(status, 400, "no body");

    let (status, json) = post(&server, "/commands/restore", auth, &snap.bytes);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["command"], "restore");
    assert_eq!(json["error"], Value::Null);
    let restored_at = json["last_zxid"].as_i64().expect("last_zxid a number");
    let taken_at = i64::from_str_radix(taken.trim_start_matches("0x"), 16).expect("hex");
    assert!(restored_at > taken_at, "{restored_at} after {taken_at}");
    // 3.9's rate limit: one per interval (5 minutes by default), after its other checks.
    let (status, _) = post(&server, "/commands/rest", auth, &snap.bytes);
    assert_eq!(status, 429);

    let check = |server: &Server| {
        run(async {
            let zk = zoocore_e2e::connect(server).await;
            let (data, _) = zk.get_data("/kept0").await.expect("/kept0");
            assert_eq!(data, b"old");
            zk.get_data("/kept1").await.expect("/kept1 is back");
            assert!(zk.get_data("/later").await.is_err(), "/later is gone");
        })
    };
    check(&server);
    // Writes go on after the restore, and all of it survives a restart.
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.create("/after", b"y", &persistent())
            .await
            .expect("create");
    });
    server.restart();
    check(&server);
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.get_data("/after").await.expect("/after survives");
    });
}

#[test]
fn a_garbled_snapshot_is_refused_and_changes_nothing() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let server = start(&["admin.rateLimiterIntervalInMS=0"]);
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.create("/here", b"v", &persistent())
            .await
            .expect("create");
    });
    let (status, json) = post(
        &server,
        "/commands/restore",
        Some("digest anyone:pw"),
        b"not a snapshot at all",
    );
    assert_eq!(status, 500, "{json}");
    assert!(json["error"].is_string(), "{json}");
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.get_data("/here").await.expect("unchanged");
    });
}

#[test]
fn an_ensemble_member_refuses_a_restore() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let servers = Server::start_ensemble(
        3,
        0,
        Options {
            admin: true,
            ..zoocore_e2e::ensemble::options()
        },
    );
    let leader = run(zoocore_e2e::ensemble::await_settled(&servers));
    let (status, json) = post(
        &servers[leader],
        "/commands/restore",
        Some("digest anyone:pw"),
        b"anything",
    );
    assert_eq!(status, 503, "{json}");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("ensemble")),
        "{json}"
    );
}

/// The ensemble's restore runbook (docs/OPERATIONS.md, "Back up and restore"): a snapshot
/// taken from one member with `snapshot`, every member stopped, its data directory emptied
/// but for `myid`, the file put there as `snapshot.<zxid>`, every member started again. The
/// members elect a leader from the snapshot's zxid alone, every one of them serves the data
/// as the snapshot had it (what was written after it is gone), and writes go on after it on
/// every member.
#[test]
fn an_ensemble_restored_from_one_members_snapshot_serves_it_everywhere() {
    if Target::from_env() == Target::Apache {
        return;
    }
    use zoocore_e2e::ensemble::{assert_data_everywhere, await_settled};
    let mut servers = Server::start_ensemble(
        3,
        0,
        Options {
            admin: true,
            ..zoocore_e2e::ensemble::options()
        },
    );
    let leader = run(await_settled(&servers));
    let follower = (leader + 1) % servers.len();
    run(async {
        let zk = zoocore_e2e::connect(&servers[leader]).await;
        for i in 0..20 {
            zk.create(&format!("/kept{i}"), b"old", &persistent())
                .await
                .expect("create");
        }
    });
    run(await_settled(&servers));
    // Taken from a follower: any member's tree is the ensemble's up to its zxid.
    let snap = servers[follower].admin_get_with(
        "/commands/snapshot",
        &[("Authorization", "digest anyone:pw")],
    );
    assert_eq!(snap.status, 200, "{}", snap.body);
    let taken = snap.headers["last_zxid"].clone();
    let taken_at = i64::from_str_radix(taken.trim_start_matches("0x"), 16).expect("hex zxid");
    run(async {
        let zk = zoocore_e2e::connect(&servers[leader]).await;
        zk.set_data("/kept0", b"changed", None).await.expect("set");
        zk.create("/later", b"x", &persistent())
            .await
            .expect("create");
    });

    for s in servers.iter_mut() {
        s.stop();
        s.wipe_data();
        std::fs::write(
            s.dir()
                .join("data")
                .join(format!("snapshot.{:0>16}", taken.trim_start_matches("0x"))),
            &snap.bytes,
        )
        .expect("write the snapshot");
    }
    // All at once: none serves before a quorum has elected a leader.
    std::thread::scope(|scope| {
        for s in servers.iter_mut() {
            scope.spawn(move || s.start_again());
        }
    });
    run(async {
        await_settled(&servers).await;
        assert_data_everywhere(&servers, "/kept0", b"old").await;
        assert_data_everywhere(&servers, "/kept19", b"old").await;
        for s in &servers {
            let zk = zoocore_e2e::connect(s).await;
            assert!(
                zk.get_data("/later").await.is_err(),
                "/later (after the snapshot) is gone on {}",
                s.connect_string()
            );
        }
        let zk = zoocore_e2e::connect(&servers[follower]).await;
        zk.create("/after", b"y", &persistent())
            .await
            .expect("a write after the restore");
        assert_data_everywhere(&servers, "/after", b"y").await;
    });
    for s in &servers {
        let zxid = zoocore_e2e::ensemble::zxid(s).expect("serving");
        let at = i64::from_str_radix(zxid.trim_start_matches("0x"), 16).expect("hex zxid");
        assert!(
            at > taken_at,
            "{} at {zxid}, the snapshot at {taken}",
            s.connect_string()
        );
    }
}
