//! The AdminServer (`admin.serverAddress:admin.serverPort`, ZooKeeper 3.9's HTTP commands)
//! on a real server. Every check here was first run against Apache ZooKeeper 3.8 with its
//! Jetty AdminServer (`ZOOCORE_E2E_TARGET=apache`): the JSON fields compared are the ones
//! ZooKeeper writes, command by command, under every name and alias.

use std::collections::BTreeSet;

use serde_json::Value;
use zoocore_e2e::{mode, persistent, run, Options, Server, Target};
use zookeeper_client::CreateMode;

/// Primary names, with their aliases, of the commands that apply to zoocore (Commands.java).
const COMMANDS: &[&[&str]] = &[
    &["configuration", "conf", "config"],
    &["connection_stat_reset", "crst"],
    &["connections", "cons"],
    &["dirs"],
    &["dump"],
    &["environment", "env", "envi"],
    &["get_trace_mask", "gtmk"],
    &["hash"],
    &["initial_configuration", "icfg"],
    &["is_read_only", "isro"],
    &["last_snapshot", "lsnp"],
    &["leader", "lead"],
    &["monitor", "mntr"],
    &["observer_connection_stat_reset", "orst"],
    &["observers", "obsr"],
    &["ruok"],
    &["server_stats", "srvr"],
    &["set_trace_mask", "stmk"],
    &["stat_reset", "srst"],
    &["stats", "stat"],
    &["voting_view"],
    &["watch_summary", "wchs"],
    &["watches", "wchc"],
    &["watches_by_path", "wchp"],
    &["zabstate"],
];

fn start() -> Server {
    Server::start_with(
        Target::from_env(),
        Options {
            admin: true,
            ..Options::default()
        },
    )
}

/// `GET /commands/<name>` as JSON, checking what every answer has: HTTP 200, JSON, and
/// `command` and `error` as ZooKeeper writes them.
fn command(server: &Server, name: &str) -> serde_json::Map<String, Value> {
    let answer = server.admin_get(&format!("/commands/{name}"));
    assert_eq!(answer.status, 200, "{name}: {answer:?}");
    assert!(
        answer
            .headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{name}: {answer:?}"
    );
    let json: Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {}", answer.body));
    let Value::Object(map) = json else {
        panic!("{name}: not an object: {json}")
    };
    assert!(map.contains_key("command"), "{name}: {map:?}");
    assert!(map.contains_key("error"), "{name}: {map:?}");
    map
}

/// The fields besides `command` and `error`.
fn fields(map: &serde_json::Map<String, Value>) -> BTreeSet<&str> {
    map.keys()
        .map(String::as_str)
        .filter(|k| *k != "command" && *k != "error")
        .collect()
}

fn set(names: &[&'static str]) -> BTreeSet<&'static str> {
    names.iter().copied().collect()
}

#[test]
fn the_command_listing_links_every_primary_name() {
    let server = start();
    let answer = server.admin_get("/commands");
    assert_eq!(answer.status, 200);
    let listed: BTreeSet<String> = answer
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("<a href=\"/commands/"))
        .filter_map(|l| l.split_once('"').map(|(name, _)| name.to_string()))
        .collect();
    for names in COMMANDS {
        assert!(
            listed.contains(names[0]),
            "{} not listed: {listed:?}",
            names[0]
        );
    }
    assert_eq!(
        answer.body.lines().filter(|l| *l == "<br/>").count(),
        listed.len(),
        "a <br/> after each link: {}",
        answer.body
    );
    // Aliases are not listed.
    assert!(!listed.contains("mntr"), "{listed:?}");
    if server.target == Target::Zoocore {
        let mut ours: BTreeSet<String> = COMMANDS.iter().map(|n| n[0].to_string()).collect();
        // 3.9's; Apache 3.8 does not have it.
        ours.insert("snapshot".into());
        ours.insert("restore".into());
        // zoocore's own (ClickHouse Keeper's rqld and ydld): not in ZooKeeper.
        ours.insert("request_leadership".into());
        ours.insert("yield_leadership".into());
        assert_eq!(listed, ours);
    }
}

#[test]
fn every_name_and_alias_answers_as_its_primary_command() {
    let server = start();
    for names in COMMANDS {
        for name in *names {
            let map = command(&server, name);
            assert_eq!(map["command"], names[0], "{name}");
        }
    }
    let unknown = command(&server, "nosuch");
    assert_eq!(unknown["command"], "nosuch");
    assert_eq!(unknown["error"], "Unknown command: nosuch");
}

#[test]
fn standalone_commands_have_zookeepers_fields() {
    let server = start();
    let expected: &[(&str, &[&'static str])] = &[
        (
            "configuration",
            &[
                "client_port",
                "data_dir",
                "data_log_dir",
                "tick_time",
                "max_client_cnxns",
                "min_session_timeout",
                "max_session_timeout",
                "server_id",
                "client_port_listen_backlog",
            ],
        ),
        ("connection_stat_reset", &[]),
        ("connections", &["connections", "secure_connections"]),
        ("dirs", &["datadir_size", "logdir_size"]),
        (
            "dump",
            &[
                "expiry_time_to_session_ids",
                "session_id_to_ephemeral_paths",
            ],
        ),
        ("get_trace_mask", &["tracemask"]),
        ("hash", &["digests"]),
        ("initial_configuration", &["initial_configuration"]),
        ("is_read_only", &["read_only"]),
        ("last_snapshot", &["zxid", "timestamp"]),
        ("leader", &[]),
        ("observer_connection_stat_reset", &[]),
        ("observers", &["synced_observers", "observers"]),
        ("ruok", &[]),
        (
            "server_stats",
            &[
                "version",
                "read_only",
                "server_stats",
                "client_response",
                "node_count",
            ],
        ),
        ("stat_reset", &[]),
        (
            "stats",
            &[
                "version",
                "read_only",
                "server_stats",
                "client_response",
                "node_count",
                "connections",
                "secure_connections",
            ],
        ),
        ("voting_view", &["current_config"]),
        (
            "watch_summary",
            &["num_connections", "num_paths", "num_total_watches"],
        ),
        ("watches", &["session_id_to_watched_paths"]),
        ("watches_by_path", &["path_to_session_ids"]),
        ("zabstate", &["voting", "zabstate"]),
    ];
    for (name, want) in expected {
        let map = command(&server, name);
        assert_eq!(fields(&map), set(want), "{name}: {map:?}");
        if *name != "leader" {
            assert_eq!(map["error"], Value::Null, "{name}");
        }
    }
    // A standalone server is not a quorum server.
    assert_eq!(
        command(&server, "leader")["error"],
        "server is not initialized"
    );
    let srvr = command(&server, "server_stats");
    let inner: BTreeSet<&str> = srvr["server_stats"]
        .as_object()
        .expect("server_stats is an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        inner,
        set(&[
            "packets_sent",
            "packets_received",
            "fsync_threshold_exceed_count",
            "client_response_stats",
            "data_dir_size",
            "log_dir_size",
            "provider_null",
            "server_state",
            "last_processed_zxid",
            "outstanding_requests",
            "avg_latency",
            "max_latency",
            "min_latency",
            "num_alive_client_connections",
            "uptime",
            "auth_failed_count",
            "non_mtlsremote_conn_count",
            "non_mtlslocal_conn_count",
        ])
    );
    assert_eq!(srvr["server_stats"]["server_state"], "standalone");
    let conf = command(&server, "configuration");
    assert_eq!(conf["client_port"], zoocore_e2e::PORT);
    assert_eq!(conf["server_id"], 0);
    let icfg = command(&server, "initial_configuration");
    assert!(
        icfg["initial_configuration"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("clientPortAddress={}", server.addr().ip()))),
        "{icfg:?}"
    );
    let env = command(&server, "environment");
    for key in [
        "zookeeper.version",
        "host.name",
        "os.name",
        "os.arch",
        "user.dir",
    ] {
        assert!(env.contains_key(key), "environment lacks {key}: {env:?}");
    }
    let zab = command(&server, "zabstate");
    assert_eq!(
        (&zab["voting"], &zab["zabstate"]),
        (&Value::Bool(false), &"".into())
    );
}

#[test]
fn monitor_has_the_figures_dashboards_read() {
    let server = start();
    let map = command(&server, "monitor");
    for key in [
        "version",
        "server_state",
        "avg_latency",
        "max_latency",
        "min_latency",
        "packets_received",
        "packets_sent",
        "num_alive_connections",
        "outstanding_requests",
        "znode_count",
        "watch_count",
        "ephemerals_count",
        "approximate_data_size",
        "open_file_descriptor_count",
        "max_file_descriptor_count",
        "global_sessions",
        "uptime",
    ] {
        assert!(map.contains_key(key), "monitor lacks {key}");
    }
    assert_eq!(map["server_state"], "standalone");
    assert!(map["znode_count"].is_u64(), "{map:?}");
    assert!(map["avg_latency"].is_number(), "{map:?}");
}

#[test]
fn listings_follow_sessions_watches_and_ephemerals() {
    let server = start();
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        let session = zk.session_id().0;
        zk.create("/eph", b"", &mode(CreateMode::Ephemeral))
            .await
            .expect("create ephemeral");
        zk.create("/watched", b"", &persistent())
            .await
            .expect("create");
        let (_, _watch) = zk.check_and_watch_stat("/watched").await.expect("watch");

        let cons = command(&server, "connections");
        let conns = cons["connections"].as_array().expect("list");
        let mine = conns
            .iter()
            .find(|c| c["session_id"] == session)
            .unwrap_or_else(|| panic!("session {session:x} not in {conns:?}"));
        for key in [
            "remote_socket_address",
            "interest_ops",
            "outstanding_requests",
            "packets_received",
            "packets_sent",
            "session_id",
            "last_operation",
            "established",
            "session_timeout",
            "last_cxid",
            "last_zxid",
            "last_response_time",
            "last_latency",
            "min_latency",
            "avg_latency",
            "max_latency",
        ] {
            assert!(mine.get(key).is_some(), "connection lacks {key}: {mine}");
        }
        assert!(mine["packets_received"].as_u64() >= Some(3), "{mine}");
        // stats lists the brief form.
        let stats = command(&server, "stats");
        let brief = &stats["connections"].as_array().expect("list")[0];
        assert!(brief.get("session_id").is_none(), "{brief}");
        assert!(brief.get("packets_sent").is_some(), "{brief}");

        let wchs = command(&server, "watch_summary");
        assert_eq!(wchs["num_total_watches"], 1, "{wchs:?}");
        assert_eq!(wchs["num_paths"], 1, "{wchs:?}");
        let wchc = command(&server, "watches");
        assert_eq!(
            wchc["session_id_to_watched_paths"][session.to_string()],
            serde_json::json!(["/watched"]),
            "{wchc:?}"
        );
        let wchp = command(&server, "watches_by_path");
        assert_eq!(
            wchp["path_to_session_ids"]["/watched"],
            serde_json::json!([session]),
            "{wchp:?}"
        );
        let dump = command(&server, "dump");
        assert_eq!(
            dump["session_id_to_ephemeral_paths"][session.to_string()],
            serde_json::json!(["/eph"]),
            "{dump:?}"
        );
        let expiring: Vec<i64> = dump["expiry_time_to_session_ids"]
            .as_object()
            .expect("map")
            .values()
            .flat_map(|v| v.as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_i64())
            .collect();
        assert!(expiring.contains(&session), "{dump:?}");
        let monitor = command(&server, "monitor");
        assert_eq!(monitor["ephemerals_count"], 1);
        assert_eq!(monitor["watch_count"], 1);
    });
}

#[test]
fn trace_mask_and_stat_resets_act_on_the_server() {
    let server = start();
    let set = server.admin_get("/commands/set_trace_mask?traceMask=4");
    assert_eq!(set.status, 200);
    let set: Value = serde_json::from_str(&set.body).expect("json");
    assert_eq!(set["tracemask"], 4);
    assert_eq!(command(&server, "gtmk")["tracemask"], 4);
    assert_eq!(server.four_letter("gtmk"), "4");
    let bad = command(&server, "stmk");
    assert_eq!(
        bad["error"],
        "setTraceMask requires long traceMask argument"
    );

    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.create("/x", b"", &persistent()).await.expect("create");
        let before = command(&server, "server_stats");
        assert!(before["server_stats"]["packets_received"].as_u64() > Some(0));
        command(&server, "stat_reset");
        let after = command(&server, "server_stats");
        // The admin request itself is not a client packet.
        assert_eq!(after["server_stats"]["packets_received"], 0, "{after:?}");
    });
}

/// An ensemble's quorum commands and `/ready` (zoocore only: the harness starts ensembles
/// of zoocore; the fields are those of ZooKeeper 3.9's Commands.java).
#[test]
fn an_ensemble_reports_its_quorum_and_readiness() {
    use zoocore_e2e::ensemble;
    let mut servers = Server::start_ensemble(
        3,
        0,
        Options {
            admin: true,
            ..ensemble::options()
        },
    );
    ensemble::run(async {
        let leader = ensemble::await_settled(&servers).await;
        for (i, s) in servers.iter().enumerate() {
            let myid = i as u64 + 1;
            let zab = command(s, "zabstate");
            assert_eq!(zab["myid"], myid, "{zab:?}");
            assert_eq!(zab["voting"], true);
            assert_eq!(zab["zabstate"], "broadcast");
            assert_eq!(zab["is_leader"], i == leader, "{zab:?}");
            let lead = command(s, "leader");
            assert_eq!(lead["error"], Value::Null);
            assert_eq!(lead["is_leader"], i == leader);
            let view = command(s, "voting_view");
            let config = view["current_config"].as_object().expect("map");
            assert_eq!(config.len(), 3, "{view:?}");
            assert_eq!(config["1"]["learner_type"], "participant");
            let monitor = command(s, "monitor");
            assert_eq!(monitor["quorum_size"], 3);
            assert_eq!(monitor.contains_key("leader_uptime"), i == leader);
            let ready = s.admin_get("/ready");
            assert_eq!(ready.status, 200, "{ready:?}");
        }
        assert_eq!(
            command(&servers[leader], "leader")["leader_id"],
            leader as u64 + 1
        );
    });
    // The last member standing has no quorum: it is not ready, and the commands that need
    // a serving server say so with HTTP 200, as ZooKeeper does.
    let last = servers.len() - 1;
    for s in &mut servers[..last] {
        s.kill9();
    }
    ensemble::run(async {
        ensemble::eventually("the last member not ready", || {
            let ready = servers[last].admin_get("/ready");
            std::future::ready(if ready.status == 503 {
                Ok(())
            } else {
                Err(format!("{ready:?}"))
            })
        })
        .await;
    });
    let srvr = command(&servers[last], "srvr");
    assert_eq!(
        srvr["error"],
        "This ZooKeeper instance is not currently serving requests"
    );
    // monitor and zabstate answer even then.
    assert_eq!(command(&servers[last], "zabstate")["zabstate"], "election");
    assert_eq!(command(&servers[last], "monitor")["error"], Value::Null);
}

#[test]
fn ready_answers_200_on_a_serving_standalone_server() {
    let server = start();
    if server.target == Target::Apache {
        return; // /ready is zoocore's (ZooKeeper 3.8 has no such endpoint)
    }
    let ready = server.admin_get("/ready");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ready: standalone\n")
    );
    assert_eq!(server.admin_get("/nothing").status, 404);
}

/// `snapshot` (ZooKeeper 3.9; zoocore only, 3.8 has no such command): behind the
/// `Authorization` header checked against the ACL of `/`, then streamed with `last_zxid` and
/// `snapshot_size`; the file restores into a fresh data directory (the backup runbook).
#[test]
fn snapshot_is_authorized_by_the_root_acl_and_restores_elsewhere() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let server = Server::start_with(
        Target::Zoocore,
        Options {
            admin: true,
            super_digest: Some(zoocore_e2e::SUPER_DIGEST.into()),
            extra_cfg: vec!["admin.rateLimiterIntervalInMS=0".into()],
            ..Options::default()
        },
    );
    let status_and_error = |auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let answer = server.admin_get_with("/commands/snapshot?streaming=false", &headers);
        let json: Value = serde_json::from_str(&answer.body).expect("json");
        (answer.status, json["error"].clone())
    };
    assert_eq!(
        status_and_error(None),
        (401, "Auth info is missing for the command".into())
    );
    assert_eq!(
        status_and_error(Some("kerberos x")),
        (401, "Not authenticated".into())
    );
    // The default root ACL (world:anyone, all) lets any authenticated id take one.
    assert_eq!(status_and_error(Some("digest bob:pw")), (200, Value::Null));

    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        zk.auth("digest", zoocore_e2e::SUPER_AUTH)
            .await
            .expect("super auth");
        for i in 0..10 {
            zk.create(
                &format!("/backup{i}"),
                format!("v{i}").as_bytes(),
                &persistent(),
            )
            .await
            .expect("create");
        }
        // Only alice may do everything on / now.
        // digest of alice:secret
        let alice = [zookeeper_client::Acl::new(
            zookeeper_client::Permission::ALL,
            zookeeper_client::AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
        )];
        zk.set_acl("/", &alice, None)
            .await
            .expect("set the root ACL");
    });
    assert_eq!(
        status_and_error(Some("digest bob:pw")),
        (403, "Not authorized".into())
    );
    // The super user passes whatever the ACL.
    assert_eq!(
        status_and_error(Some("digest super:superpass")),
        (200, Value::Null)
    );

    let answer = server.admin_get_with(
        "/commands/snap",
        &[("Authorization", "digest alice:secret")],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/octet-stream")
    );
    let size: usize = answer.headers["snapshot_size"].parse().expect("size");
    assert_eq!(size, answer.bytes.len());
    let zxid = answer.headers["last_zxid"].clone();
    let srvr = zoocore_e2e::parse_key_values(&server.four_letter("srvr"));
    assert_eq!(srvr["Zxid"], zxid);

    // Restore: the file, named by its zxid, in the data directory of a fresh server.
    let mut fresh = Server::start(Target::Zoocore);
    fresh.stop();
    fresh.wipe_data();
    let hex = zxid.trim_start_matches("0x");
    std::fs::write(
        fresh
            .dir()
            .join("data")
            .join(format!("snapshot.{hex:0>16}")),
        &answer.bytes,
    )
    .expect("write the snapshot");
    fresh.start_again();
    run(async {
        let zk = zoocore_e2e::connect(&fresh).await;
        for i in 0..10 {
            let (data, _) = zk.get_data(&format!("/backup{i}")).await.expect("restored");
            assert_eq!(data, format!("v{i}").as_bytes());
        }
    });
}

#[test]
fn snapshots_are_rate_limited() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let server = start(); // ZooKeeper's default interval: 5 minutes
    let auth = [("Authorization", "digest anyone:pw")];
    let first = server.admin_get_with("/commands/snapshot", &auth);
    assert_eq!(first.status, 200);
    assert!(!first.bytes.is_empty());
    let second = server.admin_get_with("/commands/snapshot", &auth);
    assert_eq!(second.status, 429, "{}", second.body);
    let json: Value = serde_json::from_str(&second.body).expect("json");
    assert_eq!(json["command"], "snapshot");
}
