//! A tiny real campaign: one standalone zoocore cell for 1 s, no ceilings. The result file
//! must hold the cell with a non-zero throughput and CPU, and every process the campaign
//! started must be gone afterwards (no /proc entry, nothing listening on its address). A
//! second campaign asks for 3 voters from a binary that may not support ensembles yet: the
//! run either measures or fails with its reason recorded, and leaves nothing behind.

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
