//! Dynamic reconfiguration end to end, on real voters, with Apache's zkCli 3.8 (`reconfig`,
//! `config`): a follower removed and added back, a follower turned observer and back, the
//! refusals (a `-v` that is not the current version, a client that is not the superuser,
//! reconfigEnabled off), a leader removing itself, a fourth server joining, and clients
//! watching `/zookeeper/config` (the `zookeeper-client` crate, kazoo) seeing the new
//! membership. Every write acknowledged before and during the changes is read back. Each
//! test runs against Apache ZooKeeper 3.8 as well (`ZOOCORE_E2E_TARGET=apache`).

use std::time::Duration;

use zoocore_e2e::ensemble::{self, assert_holds, await_leader, eventually, mode_of, run};
use zoocore_e2e::*;

/// zkCli as the superuser.
fn zkcli_super(server: &Server, commands: &str) -> String {
    zkcli::run(
        server,
        &format!("addauth digest super:superpass\n{commands}"),
    )
}

/// Three voters of the target under test (`ZOOCORE_E2E_TARGET`).
fn start(options: Options) -> Vec<Server> {
    Server::start_ensemble_of(Target::from_env(), &Server::ensemble_hosts(3), 3, options)
}

fn options(enabled: bool) -> Options {
    let mut o = ensemble::options();
    o.super_digest = Some(SUPER_DIGEST.to_string());
    o.extra_cfg.push(format!("reconfigEnabled={enabled}"));
    o
}

/// The `server.N=...` lines of a config text (zkCli's `config` output has them, then
/// `version=`).
fn server_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("server."))
        .map(str::to_owned)
        .collect()
}

fn line_of(text: &str, id: u64) -> Option<String> {
    let prefix = format!("server.{id}=");
    server_lines(text)
        .into_iter()
        .find(|l| l.starts_with(&prefix))
}

/// `/zookeeper/config` as a member serves it (an error while it does not serve).
async fn config_of(server: &Server) -> Result<String, String> {
    let zk = zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&server.connect_string())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (data, _) = zk
        .get_data("/zookeeper/config")
        .await
        .map_err(|e| format!("getData: {e}"))?;
    String::from_utf8(data).map_err(|e| e.to_string())
}

/// Waits until every running member serves a config where `pred` holds.
async fn await_config_everywhere(servers: &[Server], what: &str, pred: impl Fn(&str) -> bool) {
    for s in servers.iter().filter(|s| s.is_running()) {
        eventually(what, || async {
            let text = config_of(s).await?;
            if pred(&text) {
                Ok(())
            } else {
                Err(format!("{}: {text:?}", s.connect_string()))
            }
        })
        .await;
    }
}

/// Waits until `server` reports `mode` in srvr.
async fn await_mode(server: &Server, mode: &str) {
    eventually(
        &format!("{} in mode {mode}", server.connect_string()),
        || async {
            let m = mode_of(server);
            if m == mode {
                Ok(())
            } else {
                Err(m)
            }
        },
    )
    .await;
}

/// The spec of member `i` (0-based) as a `-add` gives it (with its client port).
fn spec(servers: &[Server], i: usize, role: &str) -> String {
    let host = servers[i].addr().ip();
    format!(
        "server.{}={host}:{QUORUM_PORT}:{ELECTION_PORT}:{role};{host}:{PORT}",
        i + 1
    )
}

#[test]
fn zkcli_removes_a_follower_and_adds_it_back() {
    let servers = start(options(true));
    run(async {
        let leader = await_leader(&servers).await;
        let follower = (0..3).find(|i| *i != leader).unwrap();
        let id = follower as u64 + 1;
        let zk = connect(&servers[leader]).await;
        zk.create("/before", b"1", &persistent()).await.unwrap();

        let out = zkcli_super(&servers[leader], &format!("reconfig -remove {id}"));
        assert!(
            out.contains("Committed new configuration"),
            "reconfig -remove {id}:\n{out}"
        );
        await_config_everywhere(&servers, "the removal everywhere", |t| {
            line_of(t, id).is_none() && server_lines(t).len() == 2
        })
        .await;
        // The two voters left keep serving writes.
        zk.create("/after-remove", b"2", &persistent())
            .await
            .unwrap();
        let out = zkcli::run(&servers[leader], "config");
        assert!(
            line_of(&out, id).is_none(),
            "config still lists {id}:\n{out}"
        );

        // Back in, as a participant with its client port.
        let out = zkcli_super(
            &servers[leader],
            &format!("reconfig -add {}", spec(&servers, follower, "participant")),
        );
        assert!(
            out.contains("Committed new configuration"),
            "reconfig -add:\n{out}"
        );
        await_config_everywhere(&servers, "the addition everywhere", |t| {
            line_of(t, id).is_some_and(|l| l.contains(":participant"))
        })
        .await;
        await_mode(&servers[follower], "follower").await;
        zk.create("/after-add", b"3", &persistent()).await.unwrap();
        let paths: Vec<String> = ["/before", "/after-remove", "/after-add"]
            .map(String::from)
            .to_vec();
        for s in &servers {
            assert_holds(s, &paths).await;
        }
    });
}

/// A superuser session of the `zookeeper-client` crate on `server`.
async fn superuser(server: &Server) -> zookeeper_client::Client {
    let zk = connect(server).await;
    zk.auth("digest", SUPER_AUTH).await.expect("addauth super");
    zk
}

/// `update_ensemble` with `-add`-style joiners and `-remove`-style leavers.
async fn update(
    zk: &zookeeper_client::Client,
    joining: &[&str],
    leaving: &[&str],
    version: Option<i64>,
) -> Result<(Vec<u8>, zookeeper_client::Stat), zookeeper_client::Error> {
    let update = zookeeper_client::EnsembleUpdate::Incremental {
        joinings: joining.iter().copied(),
        leavings: leaving.iter().copied(),
    };
    zk.update_ensemble(update, version).await
}

#[test]
fn a_follower_becomes_an_observer_and_back_and_a_config_watcher_sees_each_change() {
    let servers = start(options(true));
    run(async {
        let leader = await_leader(&servers).await;
        let f = (0..3).find(|i| *i != leader).unwrap();
        let id = f as u64 + 1;
        let follower_client = connect(&servers[f]).await;
        let (_, before, watch) = follower_client.get_and_watch_config().await.unwrap();

        let out = zkcli_super(
            &servers[leader],
            &format!("reconfig -add {}", spec(&servers, f, "observer")),
        );
        assert!(out.contains("Committed new configuration"), "{out}");
        let event = within(ensemble::WAIT, "the config watch", watch.changed()).await;
        assert_eq!(
            event.event_type,
            zookeeper_client::EventType::NodeDataChanged
        );
        let (data, after) = follower_client.get_config().await.unwrap();
        let text = String::from_utf8(data).unwrap();
        assert!(
            line_of(&text, id).is_some_and(
                |l| l.ends_with(&format!(":observer;{}:{PORT}", servers[f].addr().ip()))
            ),
            "{text}"
        );
        // The version is the zxid of the reconfig, in hex, as ZooKeeper writes it.
        assert!(after.mzxid > before.mzxid);
        assert!(
            text.ends_with(&format!("version={:x}", after.mzxid)),
            "{text}"
        );
        await_mode(&servers[f], "observer").await;
        let out = zkcli::run(&servers[f], "config");
        assert!(out.contains(&format!("version={:x}", after.mzxid)), "{out}");

        // Back to a voter through the crate: a stale -v is refused, the current one taken.
        let admin = superuser(&servers[leader]).await;
        let joining = spec(&servers, f, "participant");
        let stale = update(&admin, &[&joining], &[], Some(before.mzxid)).await;
        assert!(
            matches!(stale, Err(zookeeper_client::Error::BadVersion)),
            "{stale:?}"
        );
        let (data, stat) = update(&admin, &[&joining], &[], Some(after.mzxid))
            .await
            .expect("reconfig back to participant");
        let text = String::from_utf8(data).unwrap();
        assert!(
            line_of(&text, id).is_some_and(|l| l.contains(":participant;")),
            "{text}"
        );
        assert!(
            text.ends_with(&format!("version={:x}", stat.mzxid)),
            "{text}"
        );
        await_mode(&servers[f], "follower").await;
        admin.create("/after", b"x", &persistent()).await.unwrap();
        for s in &servers {
            assert_holds(s, &["/after".to_string()]).await;
        }
    });
}

#[test]
fn refusals_bad_version_not_superuser_no_quorum_bad_arguments() {
    let servers = start(options(true));
    run(async {
        let leader = await_leader(&servers).await;
        let f = (0..3).find(|i| *i != leader).unwrap();
        let (config_before, stat_before) =
            connect(&servers[leader]).await.get_config().await.unwrap();
        // zkCli's texts (CliWrapperException) for each refusal.
        let out = zkcli::run(&servers[f], &format!("reconfig -remove {}", f + 1));
        assert!(
            out.contains("Insufficient permission"),
            "not superuser:\n{out}"
        );
        let out = zkcli_super(&servers[f], &format!("reconfig -remove {} -v 12345", f + 1));
        assert!(
            out.contains("version No is not valid"),
            "-v mismatch:\n{out}"
        );
        // The same through the crate, by error code.
        let plain = connect(&servers[leader]).await;
        let r = update(&plain, &[], &["3"], None).await;
        assert!(matches!(r, Err(zookeeper_client::Error::NoAuth)), "{r:?}");
        let admin = superuser(&servers[leader]).await;
        let r = update(&admin, &["server.9=nohost"], &[], None).await;
        assert!(
            matches!(r, Err(zookeeper_client::Error::BadArguments(_))),
            "{r:?}"
        );
        // A joiner without its client port (ZooKeeper wants all three ports).
        let r = update(&admin, &["server.9=127.0.0.9:1:2"], &[], None).await;
        assert!(
            matches!(r, Err(zookeeper_client::Error::BadArguments(_))),
            "{r:?}"
        );
        // Two voters that are not running: no quorum of the new voters is synchronised.
        let r = update(
            &admin,
            &["server.8=127.0.0.8:1:2;3", "server.9=127.0.0.9:1:2;3"],
            &[&(f + 1).to_string()],
            None,
        )
        .await;
        assert!(
            matches!(r, Err(zookeeper_client::Error::UnexpectedErrorCode(-13))),
            "NEWCONFIGNOQUORUM: {r:?}"
        );
        // Nothing changed.
        let (data, stat) = admin.get_config().await.unwrap();
        assert_eq!(data, config_before);
        assert_eq!(stat.mzxid, stat_before.mzxid);
    });
}

#[test]
fn reconfig_disabled_without_reconfig_enabled() {
    let servers = start(options(false));
    run(async {
        let leader = await_leader(&servers).await;
        let out = zkcli_super(&servers[leader], "reconfig -remove 1");
        assert!(
            out.contains("ReconfigDisabled") || out.contains("disabled"),
            "{out}"
        );
        let admin = superuser(&servers[leader]).await;
        let r = update(&admin, &[], &["1"], None).await;
        assert!(
            matches!(r, Err(zookeeper_client::Error::ReconfigDisabled)),
            "{r:?}"
        );
    });
}

#[test]
fn a_leader_that_removes_itself_hands_over_and_every_acknowledged_write_stays() {
    let servers = start(options(true));
    run(async {
        let leader = await_leader(&servers).await;
        let others: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
        let writer = connect(&servers[others[0]]).await;
        let mut acked = Vec::new();
        for i in 0..20 {
            let p = format!("/w{i}");
            writer.create(&p, b"x", &persistent()).await.unwrap();
            acked.push(p);
        }
        let admin = superuser(&servers[leader]).await;
        let (data, _) = update(&admin, &[], &[&(leader + 1).to_string()], None)
            .await
            .expect("the leader removes itself");
        let text = String::from_utf8(data).unwrap();
        assert!(line_of(&text, leader as u64 + 1).is_none(), "{text}");
        // One of the two left leads, the other follows; they take writes.
        eventually("a new leader among the others", || async {
            let modes: Vec<String> = others.iter().map(|i| mode_of(&servers[*i])).collect();
            let mut sorted = modes.clone();
            sorted.sort();
            if sorted == ["follower", "leader"] {
                Ok(())
            } else {
                Err(format!("{modes:?}"))
            }
        })
        .await;
        for i in 20..30 {
            let p = format!("/w{i}");
            eventually(&format!("create {p}"), || async {
                match writer.create(&p, b"x", &persistent()).await {
                    Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            })
            .await;
            acked.push(p);
        }
        for i in &others {
            assert_holds(&servers[*i], &acked).await;
        }
        await_config_everywhere(&servers[..], "the removal on every member", |t| {
            line_of(t, leader as u64 + 1).is_none()
        })
        .await;
    });
}

#[test]
fn a_new_server_started_with_the_ensemble_and_itself_joins_as_a_voter() {
    let hosts = Server::ensemble_hosts(4);
    let mut servers = Server::start_ensemble_of(Target::from_env(), &hosts[..3], 3, options(true));
    let fourth = Server::start_ensemble_member(Target::from_env(), &hosts, 4, 3, options(true));
    servers.push(fourth);
    run(async {
        let leader = await_leader(&servers[..3]).await;
        let zk = connect(&servers[leader]).await;
        zk.create("/before", b"1", &persistent()).await.unwrap();
        // It learns as a non-voter before the reconfig (the leader syncs it).
        await_mode(&servers[3], "follower").await;
        let out = zkcli_super(
            &servers[leader],
            &format!("reconfig -add {}", spec(&servers, 3, "participant")),
        );
        assert!(out.contains("Committed new configuration"), "{out}");
        await_config_everywhere(&servers, "four voters everywhere", |t| {
            server_lines(t).len() == 4 && line_of(t, 4).is_some()
        })
        .await;
        let (_, stat) = zk.get_config().await.unwrap();
        assert!(stat.mzxid > 0);
        zk.create("/after", b"2", &persistent()).await.unwrap();
        assert_holds(&servers[3], &["/before".to_string(), "/after".to_string()]).await;

        // Every member wrote the dynamic file as ZooKeeper does, and pointed zoo.cfg at it.
        let dynamic = format!("zoo.cfg.dynamic.{:x}", stat.mzxid);
        for s in &servers {
            let cfg = std::fs::read_to_string(s.dir().join("zoo.cfg")).unwrap();
            assert!(
                cfg.contains("dynamicConfigFile=") && cfg.contains(&dynamic),
                "{cfg}"
            );
            assert!(
                !cfg.contains("\nserver."),
                "server lines left in zoo.cfg:\n{cfg}"
            );
            let text = std::fs::read_to_string(s.dir().join(&dynamic)).unwrap();
            assert_eq!(server_lines(&text).len(), 4, "{text}");
        }
    });
    // Four voters make a quorum of three: with the new server and one old follower down,
    // the two left (a quorum of the old three) must not serve.
    let leader = run(await_leader(&servers[..]));
    let old_follower = (0..3).find(|i| *i != leader).unwrap();
    servers[3].stop();
    servers[old_follower].stop();
    run(async {
        eventually("no member serves without a quorum of four", || async {
            let modes: Vec<String> = (0..3)
                .filter(|i| *i != old_follower)
                .map(|i| mode_of(&servers[i]))
                .collect();
            if modes.iter().all(|m| m != "leader" && m != "follower") {
                Ok(())
            } else {
                Err(format!("{modes:?}"))
            }
        })
        .await;
    });
    // Restarted, they read the configuration from the rewritten zoo.cfg and serve again.
    servers[3].start_again();
    servers[old_follower].start_again();
    run(async {
        await_leader(&servers[..]).await;
        let zk = ensemble::synced_client(&servers[3]).await;
        zk.create("/after-restart", b"3", &persistent())
            .await
            .unwrap();
        for s in &servers {
            assert_holds(
                s,
                &["/before", "/after", "/after-restart"].map(String::from),
            )
            .await;
        }
    });
}

#[test]
fn kazoo_reconfigures_as_the_superuser_and_a_watcher_sees_it() {
    let servers = start(options(true));
    let leader = run(await_leader(&servers));
    let f = (0..3).find(|i| *i != leader).unwrap();
    let out = kazoo::run(&[
        "reconfig",
        &servers[leader].connect_string(),
        &(f + 1).to_string(),
        &spec(&servers, f, "observer"),
        &spec(&servers, f, "participant"),
    ]);
    assert!(out.trim_end().ends_with("ok"), "{out}");
    run(await_mode(&servers[f], "follower"));
}

#[test]
fn a_whole_new_membership_with_members() {
    let servers = start(options(true));
    run(async {
        let leader = await_leader(&servers).await;
        let f = (0..3).find(|i| *i != leader).unwrap();
        // The same three servers, `f` as an observer, given as one non-incremental list.
        let members: Vec<String> = (0..3)
            .map(|i| spec(&servers, i, if i == f { "observer" } else { "participant" }))
            .collect();
        let out = zkcli_super(
            &servers[leader],
            &format!("reconfig -members {}", members.join(",")),
        );
        assert!(out.contains("Committed new configuration"), "{out}");
        await_config_everywhere(&servers, "the new membership everywhere", |t| {
            server_lines(t).len() == 3
                && line_of(t, f as u64 + 1).is_some_and(|l| l.contains(":observer;"))
        })
        .await;
        await_mode(&servers[f], "observer").await;
        let zk = connect(&servers[f]).await;
        zk.create("/through-observer", b"x", &persistent())
            .await
            .unwrap();
        for s in &servers {
            assert_holds(s, &["/through-observer".to_string()]).await;
        }
    });
}
