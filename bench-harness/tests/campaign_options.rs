//! Tiny real campaigns for the campaign options of issue 13, one each: the steady warm-up
//! (windows recorded, spread reported and flagged), the snapshot-under-load pair (snapshots
//! really written in one run and not the other, the comparison table), the observer group
//! (load only on the voters, the leader's CPU per write), and ensembles kept up across
//! cells of one shape (same pids, fresh ones for another shape), and the group-commit floor
//! beside an open-loop cell. Nothing here asserts a speed; the emulated network has its own
//! file (`netns.rs`, root only).

use std::path::{Path, PathBuf};

use zoocore_bench::campaign::spec::CampaignSpec;
use zoocore_bench::campaign::Campaign;

mod common;
use common::zoocore_binary;

/// Runs a zoocore-only campaign: `top` holds top-level keys, `tables` the [load], [warmup]
/// and [[group]] tables; returns its JSON and output directory.
fn run(name: &str, octet_offset: u8, top: &str, tables: &str) -> (serde_json::Value, PathBuf) {
    let out = std::env::temp_dir().join(format!("zb-opt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // Away from tests/campaign.rs (30..70) and live.rs (60..210 by pid).
    let octet = 220 + octet_offset;
    let text = format!(
        r#"
name = "{name}"
systems = ["zoocore"]
{top}
[servers]
zoocore_binary = "{bin}"
loopback_octet = {octet}
leader_timeout_s = 20
tick_time_ms = 200
keep_data = true
reuse_ensembles = {reuse}
[ceilings]
echo_read_pct = []
fdatasync_s = 0
{floor}
{tables}
"#,
        bin = zoocore_binary().display(),
        reuse = name == "reuse",
        floor = if name == "floor" {
            "group_commit_rates = [500]\ngroup_commit_s = 0.4"
        } else {
            ""
        },
    );
    let spec = CampaignSpec::parse(&text).expect("spec");
    let c = Campaign {
        spec,
        out: out.clone(),
        command: "test".into(),
    };
    let mut log = |l: &str| eprintln!("{l}");
    c.run(&mut log).expect("campaign");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("campaign.json")).expect("json"))
            .expect("parse");
    for r in json["runs"].as_array().expect("runs") {
        assert!(r["stop_problem"].is_null(), "{}", r["stop_problem"]);
        for pid in r["pids_started"].as_array().expect("pids") {
            let pid = pid.as_u64().expect("pid");
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} left"
            );
        }
    }
    (json, out)
}

fn measured(run: &serde_json::Value) {
    assert!(run["failure"].is_null(), "{}", run["failure"]);
    assert!(run["ops_per_s"].as_f64().expect("ops") > 0.0);
}

#[test]
fn steady_warmup_records_its_windows_and_cells_report_their_spread() {
    let (json, out) = run(
        "steady",
        0,
        "repeats = 2",
        r#"[warmup]
mode = "steady"
window_s = 0.5
max_s = 6
[load]
connections = 4
outstanding = 4
keys = 50
value_size = 128
duration_s = 1
[[group]]
read_pct = [90]
"#,
    );
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    for r in runs {
        measured(r);
        let w = &r["warmup"];
        let windows: Vec<f64> = w["windows_ops_per_s"]
            .as_array()
            .expect("windows")
            .iter()
            .map(|v| v.as_f64().expect("f64"))
            .collect();
        if w["steady"].as_bool().expect("steady") {
            assert!(windows.len() >= 3, "{windows:?}");
            let tail = &windows[windows.len() - 3..];
            let mean = tail.iter().sum::<f64>() / 3.0;
            assert!(
                tail.iter().all(|x| (x - mean).abs() <= mean * 0.05),
                "{tail:?}"
            );
            assert!(w["warning"].is_null());
        } else {
            assert!(w["seconds"].as_f64().expect("seconds") >= 6.0);
            assert!(w["warning"]
                .as_str()
                .expect("warning")
                .contains("not steady"));
        }
        // The measured run did not create the keys again: the warm-up did.
        assert_eq!(r["report"]["config"]["skip_setup"], true);
        assert_eq!(r["report"]["totals"]["setup_txns"], 0);
    }
    let s = &json["summaries"][0];
    let ops: Vec<f64> = runs
        .iter()
        .map(|r| r["ops_per_s"].as_f64().expect("ops"))
        .collect();
    let mean = (ops[0] + ops[1]) / 2.0;
    let spread = 100.0 * (ops[0] - ops[1]).abs() / mean;
    let reported = s["spread_pct"].as_f64().expect("spread");
    assert!((reported - spread).abs() < 1e-6, "{reported} vs {spread}");
    let cpu = s["cpu_spread_pct"].as_f64().unwrap_or(0.0);
    assert_eq!(
        s["spread_flag"].as_bool().expect("flag"),
        spread > 10.0 || cpu > 10.0
    );
    let table = std::fs::read_to_string(out.join("table.md")).expect("table");
    assert!(table.contains("ops/s min–max (spread)"));
    assert_eq!(
        table.contains("⚠ runs spread"),
        s["spread_flag"].as_bool().expect("flag")
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// `snapshot.<zxid>` files (zoocore) and `version-2/snapshot.<zxid>` (Apache) under `dir`.
fn snapshots(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += snapshots(&p);
        } else if p.file_name().is_some_and(|f| {
            let f = f.to_string_lossy();
            f.starts_with("snapshot.") && !f.ends_with(".tmp")
        }) {
            n += 1;
        }
    }
    n
}

#[test]
fn snapshot_cells_pair_snapshots_on_with_off() {
    let (json, out) = run(
        "snapshots",
        1,
        "",
        r#"[load]
connections = 4
outstanding = 8
value_size = 100
duration_s = 2
warmup_s = 0.2
[[group]]
name = "snapshot-under-load"
read_pct = [0]
rates = [1000]
keys = 2000
snap_count = [0, 400]
"#,
    );
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    let labels: Vec<&str> = runs
        .iter()
        .map(|r| r["label"].as_str().expect("label"))
        .collect();
    assert!(labels[0].ends_with("nosnap 2000keys"), "{labels:?}");
    assert!(labels[1].ends_with("snap400 2000keys"), "{labels:?}");
    let mut files = Vec::new();
    for r in runs {
        measured(r);
        let rows = r["report"]["per_second"].as_array().expect("per second");
        assert_eq!(rows.len(), 2);
        for row in rows {
            let (p50, p90, p99) = (&row["p50_us"], &row["p90_us"], &row["p99_us"]);
            assert!(p50.as_u64() <= p90.as_u64() && p90.as_u64() <= p99.as_u64());
            assert!(p99.as_u64() <= row["max_us"].as_u64());
        }
        let dir = out.join(format!(
            "work/{:03}-zoocore",
            r["seq"].as_u64().expect("seq")
        ));
        files.push(snapshots(&dir));
    }
    // 2000 creates and ~2000 writes at snapCount 400: several snapshots; with snapshots off
    // at most the one a fresh server may write at start.
    assert!(
        files[1] >= 2 && files[1] > files[0],
        "snapshot files {files:?}"
    );
    let table = std::fs::read_to_string(out.join("table.md")).expect("table");
    assert!(table.contains("| snapshots under load |"), "{table}");
    assert!(table.contains("| every 400 |"), "{table}");
    let svg = std::fs::read_to_string(out.join("snapshot-latency.svg")).expect("plot");
    assert!(svg.contains("zoocore snapCount 400 p99") && svg.contains("zoocore snapshots off p99"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn observer_cells_write_through_the_voters_and_report_the_leaders_cpu() {
    let (json, out) = run(
        "observers",
        2,
        "",
        r#"[load]
connections = 6
outstanding = 4
value_size = 128
keys = 50
duration_s = 1
warmup_s = 0.3
[[group]]
name = "observers"
voters = [3]
observers = [1]
read_pct = [0]
target = "voters"
"#,
    );
    let run = &json["runs"][0];
    measured(run);
    let members = run["members"].as_array().expect("members");
    assert_eq!(members.len(), 4);
    let voters: Vec<&str> = members
        .iter()
        .filter(|m| m["role"] == "leader" || m["role"] == "follower")
        .map(|m| m["client"].as_str().expect("client"))
        .collect();
    assert_eq!(voters.len(), 3);
    let observer = members
        .iter()
        .find(|m| m["role"] == "observer")
        .expect("an observer");
    let servers: Vec<&str> = run["report"]["config"]["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s.as_str().expect("addr"))
        .collect();
    assert_eq!(servers, voters, "the load goes to the voters only");
    assert!(!servers.contains(&observer["client"].as_str().expect("client")));
    assert!(run["leader_cpu_us_per_write"].as_f64().expect("leader cpu") > 0.0);
    let table = std::fs::read_to_string(out.join("table.md")).expect("table");
    assert!(table.contains("| leader CPU µs/write |"), "{table}");
    assert!(table.contains("3v+1o r0 128B 6x4 to voters"), "{table}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn reused_ensembles_carry_over_between_cells_of_one_shape_only() {
    let (json, out) = run(
        "reuse",
        3,
        "",
        r#"[load]
connections = 4
outstanding = 4
keys = 50
value_size = 128
duration_s = 0.5
warmup_s = 0.2
[[group]]
read_pct = [0, 100]
[[group]]
read_pct = [100]
snap_count = [500]
"#,
    );
    // `run` sets reuse_ensembles for the campaign named "reuse".
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    for r in runs {
        measured(r);
    }
    let pids = |r: &serde_json::Value| r["pids_started"].clone();
    assert!(runs[0]["ensemble_from_run"].is_null());
    assert_eq!(runs[1]["ensemble_from_run"], 0, "same shape: kept up");
    assert_eq!(pids(&runs[1]), pids(&runs[0]));
    assert!(
        runs[2]["ensemble_from_run"].is_null(),
        "another snapCount: fresh"
    );
    assert_ne!(pids(&runs[2]), pids(&runs[0]));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_group_commit_floor_is_measured_beside_an_open_loop_cell() {
    let (json, out) = run(
        "floor",
        4,
        "",
        r#"[load]
connections = 4
outstanding = 4
keys = 50
value_size = 1024
duration_s = 1
warmup_s = 0.2
[[group]]
read_pct = [0]
rates = [500]
"#,
    );
    let runs = json["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    measured(&runs[0]);
    // The paced generator sent on its schedule: about 500 a second (wide bounds: a stall on a
    // busy machine moves completions out of a one-second window).
    let ops = runs[0]["ops_per_s"].as_f64().expect("ops");
    assert!((300.0..700.0).contains(&ops), "{ops}");
    let floors = json["ceilings"]["group_commit"].as_array().expect("floors");
    assert_eq!(floors.len(), 1);
    let f = &floors[0];
    assert_eq!(f["rate"], 500);
    // The load's value size plus 100 bytes of txn and framing.
    assert_eq!(f["record_bytes"], 1124);
    // 0.4 s at 500/s: at most the ~200 writes the schedule holds, each in one sync (a sync
    // stalled on a busy machine ends the window with fewer: a quarter is plenty).
    let writes = f["writes"].as_u64().expect("writes");
    let syncs = f["syncs"].as_u64().expect("syncs");
    assert!((50..=205).contains(&writes), "{f}");
    assert!(syncs >= 1 && syncs <= writes, "{f}");
    let q: Vec<u64> = ["p50_us", "p99_us", "p999_us", "max_us"]
        .iter()
        .map(|k| f[*k].as_u64().expect("quantile"))
        .collect();
    assert!(q.windows(2).all(|w| w[0] <= w[1]), "{q:?}");
    let table = std::fs::read_to_string(out.join("table.md")).expect("table");
    assert!(
        table.contains("| 1124 B records at 500/s | "),
        "no floor row in\n{table}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
