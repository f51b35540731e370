//! A tiny real campaign: one standalone zoocore cell for 1 s, no ceilings. The result file
//! must hold the cell with a non-zero throughput and CPU, and every process the campaign
//! started must be gone afterwards (no /proc entry, nothing listening on its address). A
//! second campaign asks for 3 voters from a binary that may not support ensembles yet: the
//! run either measures or fails with its reason recorded, and leaves nothing behind. A
//! third, run as a process of its own, is killed with SIGTERM mid-run (as `timeout` and
//! `kill` end one): its server must go with it.

use std::path::{Path, PathBuf};

use zoocore_bench::campaign::spec::CampaignSpec;
use zoocore_bench::campaign::Campaign;

mod common;
use common::zoocore_binary;

fn campaign(name: &str, group: &str) -> (Campaign, PathBuf) {
    let out = std::env::temp_dir().join(format!("zb-campaign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // A loopback octet of our own, away from other tests' and campaigns' addresses.
    let octet = 30 + (std::process::id() % 20) as u8 + if name == "ensemble" { 20 } else { 0 };
    let text = format!(
        r#"
name = "{name}"
systems = ["zoocore"]
[servers]
zoocore_binary = "{bin}"
loopback_octet = {octet}
leader_timeout_s = 10
tick_time_ms = 200
[load]
connections = 4
outstanding = 4
keys = 50
value_size = 128
warmup_s = 0.2
duration_s = 1
[ceilings]
echo_read_pct = []
fdatasync_s = 0
[[group]]
{group}
"#,
        bin = zoocore_binary().display()
    );
    let spec = CampaignSpec::parse(&text).expect("spec");
    let c = Campaign {
        spec,
        out: out.clone(),
        command: "test".into(),
    };
    (c, out)
}

fn assert_all_gone(json: &serde_json::Value) {
    for run in json["runs"].as_array().expect("runs") {
        assert!(run["stop_problem"].is_null(), "{}", run["stop_problem"]);
        for pid in run["pids_started"].as_array().expect("pids") {
            let pid = pid.as_u64().expect("pid");
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} survived the campaign"
            );
        }
        for m in run["members"].as_array().expect("members") {
            let addr: std::net::SocketAddr =
                m["client"].as_str().expect("client").parse().expect("addr");
            assert!(
                std::net::TcpStream::connect(addr).is_err(),
                "{addr} still accepts"
            );
        }
    }
}

#[test]
fn one_standalone_cell_measures_and_cleans_up() {
    let (c, out) = campaign("standalone", "read_pct = [90]");
    let mut log = |l: &str| eprintln!("{l}");
    let res = c.run(&mut log).expect("campaign");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("campaign.json")).expect("json"))
            .expect("parse");
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert!(run["failure"].is_null(), "{}", run["failure"]);
    assert_eq!(run["label"], "standalone r90 128B 4x4");
    assert!(run["ops_per_s"].as_f64().expect("ops") > 0.0);
    assert!(run["server_cpu_s"].as_f64().expect("cpu") > 0.0);
    assert_eq!(run["pids_started"].as_array().expect("pids").len(), 1);
    assert_eq!(json["summaries"][0]["runs_ok"], 1);
    assert!(json["machine"]["cores"].as_u64().expect("cores") > 0);
    assert!(out.join("table.md").exists());
    assert_eq!(res.runs.len(), 1);
    assert_all_gone(&json);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_ensemble_cell_measures_or_fails_with_its_reason() {
    let (c, out) = campaign("ensemble", "voters = [3]\nread_pct = [100]");
    let mut log = |l: &str| eprintln!("{l}");
    c.run(&mut log).expect("campaign");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("campaign.json")).expect("json"))
            .expect("parse");
    let run = &json["runs"][0];
    match run["failure"].as_str() {
        Some(why) => assert!(!why.is_empty()),
        None => assert!(run["ops_per_s"].as_f64().expect("ops") > 0.0),
    }
    assert_eq!(run["pids_started"].as_array().map_or(0, Vec::len) % 3, 0);
    assert_all_gone(&json);
    let _ = std::fs::remove_dir_all(&out);
}

/// The pids of processes whose command line names `needle` (the campaign's output folder).
fn processes_naming(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let alive = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|st| {
                st.rsplit(')')
                    .next()
                    .map(|t| !t.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if alive && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Kills what a failed test left behind, so that it stops what it started either way.
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in processes_naming(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn a_campaign_killed_by_a_signal_takes_its_server_with_it() {
    let out = std::env::temp_dir().join(format!("zb-campaign-killed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("out");
    let octet = 80 + (std::process::id() % 20) as u8;
    let spec = out.join("killed.toml");
    std::fs::write(
        &spec,
        format!(
            r#"
name = "killed"
systems = ["zoocore"]
[servers]
zoocore_binary = "{bin}"
loopback_octet = {octet}
[load]
connections = 2
outstanding = 2
keys = 10
value_size = 16
warmup_s = 0.2
duration_s = 60
[ceilings]
echo_read_pct = []
fdatasync_s = 0
[[group]]
read_pct = [100]
"#,
            bin = zoocore_binary().display()
        ),
    )
    .expect("spec");
    let results = out.join("results");
    let needle = results.display().to_string();
    let _leftovers = Leftovers(needle.clone());
    let mut campaign = std::process::Command::new(env!("CARGO_BIN_EXE_zoocore-bench"))
        .arg("campaign")
        .arg(&spec)
        .arg("--out")
        .arg(&results)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the campaign");
    // Its server, once started: the only process naming the output folder but the campaign.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let server = loop {
        let found: Vec<u32> = processes_naming(&needle)
            .into_iter()
            .filter(|p| *p != campaign.id())
            .collect();
        if let Some(pid) = found.first() {
            break *pid;
        }
        assert!(
            campaign.try_wait().expect("campaign").is_none(),
            "the campaign ended before its server started"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no server within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // Into the measurement, then TERM: no drop of the campaign's runs.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &campaign.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    campaign.wait().expect("campaign exit");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes_naming(&needle).contains(&server) {
        assert!(
            std::time::Instant::now() < deadline,
            "server {server} outlived its campaign by 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&out);
}
