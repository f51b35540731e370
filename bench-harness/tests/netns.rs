//! The emulated network, as root: tiny campaigns whose members run in their own network
//! namespaces, and proof that every namespace, veth and cgroup the campaign made is gone
//! afterwards: after a run that measured, after a run that failed (a member that exits at
//! once), after a panic inside the loader namespace, and when an earlier campaign left some
//! behind. Nothing here connects to a member from the root namespace: its addresses exist
//! only inside the campaign's namespaces, and a packet to them from here would leave by the
//! default route.
//!
//! These need root (namespaces, veths, cgroups): run as root, or set ZB_NO_NETNS_TESTS=1 to
//! leave them out where root is not available.

use std::path::{Path, PathBuf};
use std::process::Command;

use zoocore_bench::campaign::netns::{self, LabSpec, NetLab};
use zoocore_bench::campaign::spec::CampaignSpec;
use zoocore_bench::campaign::Campaign;

mod common;
use common::zoocore_binary;

fn root_or_opted_out() -> bool {
    if std::env::var_os("ZB_NO_NETNS_TESTS").is_some() {
        eprintln!("ZB_NO_NETNS_TESTS set: not run");
        return false;
    }
    let out = Command::new("id").arg("-u").output().expect("id");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the netns tests need root (or ZB_NO_NETNS_TESTS=1)"
    );
    true
}

/// veth interfaces in the root namespace: the campaign must never add one here.
fn root_veths() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "type", "veth"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn prefix(tag: &str) -> String {
    format!("zbt{}-{tag}", std::process::id() % 100_000)
}

fn assert_clean(prefix: &str, veths_before: &[String]) {
    assert_eq!(netns::leftovers(prefix), Vec::<String>::new());
    assert!(!netns::namespaces().iter().any(|n| n.starts_with(prefix)));
    assert_eq!(
        root_veths(),
        veths_before,
        "a veth appeared in the root namespace"
    );
}

fn campaign(
    name: &str,
    prefix: &str,
    bin: &Path,
    network: &str,
    group: &str,
) -> (serde_json::Value, PathBuf) {
    let out = std::env::temp_dir().join(format!("zb-netns-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let text = format!(
        r#"
name = "{name}"
systems = ["zoocore"]
[servers]
zoocore_binary = "{bin}"
leader_timeout_s = 20
tick_time_ms = 200
[network]
prefix = "{prefix}"
{network}
[load]
connections = 4
outstanding = 2
keys = 50
value_size = 128
warmup_s = 0.3
duration_s = 1
[ceilings]
echo_read_pct = []
fdatasync_s = 0
[[group]]
{group}
"#,
        bin = bin.display()
    );
    let spec = CampaignSpec::parse(&text).expect("spec");
    let c = Campaign {
        spec,
        out: out.clone(),
        command: "test".into(),
    };
    let mut log = |l: &str| eprintln!("{l}");
    c.run(&mut log).expect("campaign");
    let json = serde_json::from_slice(&std::fs::read(out.join("campaign.json")).expect("json"))
        .expect("parse");
    (json, out)
}

fn pids_gone(run: &serde_json::Value) {
    for pid in run["pids_started"].as_array().expect("pids") {
        let pid = pid.as_u64().expect("pid");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} left"
        );
    }
}

#[test]
fn members_in_namespaces_with_a_cpu_quota_measure_and_leave_nothing() {
    if !root_or_opted_out() {
        return;
    }
    let p = prefix("ok");
    let veths = root_veths();
    // A leftover of an earlier campaign with this prefix: removed at the start.
    let status = Command::new("ip")
        .args(["netns", "add", &format!("{p}-m9")])
        .status()
        .expect("ip netns add");
    assert!(status.success());
    let (json, out) = campaign(
        "netns-ok",
        &p,
        &zoocore_binary(),
        "",
        "voters = [3]\nread_pct = [50]\nrtt_ms = [0.0]\nmember_cpu = 0.5",
    );
    let run = &json["runs"][0];
    assert!(run["failure"].is_null(), "{}", run["failure"]);
    assert!(run["stop_problem"].is_null(), "{}", run["stop_problem"]);
    assert!(run["ops_per_s"].as_f64().expect("ops") > 0.0);
    assert_eq!(run["label"], "3v r50 128B 4x2 netns cpu0.5");
    assert_eq!(run["network"]["block"], "198.18.0.0/24");
    let members = run["members"].as_array().expect("members");
    assert_eq!(members.len(), 3);
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m["client"], format!("198.18.0.{}:2181", i + 1));
    }
    pids_gone(run);
    assert_clean(&p, &veths);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_failed_run_and_a_missing_netem_leave_nothing() {
    if !root_or_opted_out() {
        return;
    }
    let p = prefix("fail");
    let veths = root_veths();
    // Injected failure: a "server" that exits at once, so the run fails after the
    // namespaces, veths and cgroups exist.
    let (json, out) = campaign(
        "netns-fail",
        &p,
        Path::new("/bin/false"),
        "",
        "voters = [1]\nrtt_ms = [0.0]\nmember_cpu = 0.5",
    );
    let run = &json["runs"][0];
    let why = run["failure"].as_str().expect("the run fails");
    assert!(why.contains("exited"), "{why}");
    assert!(run["stop_problem"].is_null(), "{}", run["stop_problem"]);
    pids_gone(run);
    assert_clean(&p, &veths);
    let _ = std::fs::remove_dir_all(&out);

    // netem only: measured where the kernel has it (every request then waits at least one
    // round trip), a failure naming netem where it has not; clean either way.
    let (json, out) = campaign(
        "netns-netem",
        &p,
        &zoocore_binary(),
        "delay = \"netem\"",
        "voters = [1]\nread_pct = [100]\nrtt_ms = [2.0]",
    );
    let run = &json["runs"][0];
    match run["failure"].as_str() {
        Some(why) => assert!(why.contains("netem"), "{why}"),
        None => {
            assert_eq!(run["network"]["delay"], "netem");
            let p50 = run["report"]["latency"]["p50_us"].as_u64().expect("p50");
            assert!(p50 >= 2000, "p50 {p50} us under a 2 ms round trip");
        }
    }
    pids_gone(run);
    assert_clean(&p, &veths);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_round_trip_is_made_by_netem_or_the_userspace_switch() {
    if !root_or_opted_out() {
        return;
    }
    let p = prefix("rtt");
    let veths = root_veths();
    // 3 voters: the quorum's traffic crosses the emulated network too (a write waits for a
    // proposal and an ack, each half a round trip, besides the client's own round trip).
    let (json, out) = campaign(
        "netns-rtt",
        &p,
        &zoocore_binary(),
        "",
        "voters = [3]\nread_pct = [50]\nrtt_ms = [2.0]",
    );
    let run = &json["runs"][0];
    assert!(run["failure"].is_null(), "{}", run["failure"]);
    assert!(run["stop_problem"].is_null(), "{}", run["stop_problem"]);
    let delay = run["network"]["delay"].as_str().expect("delay");
    assert!(delay == "netem" || delay == "userspace", "{delay}");
    let report = &run["report"];
    let read_p50 = report["read_latency"]["p50_us"].as_u64().expect("read p50");
    assert!(
        read_p50 >= 2000,
        "read p50 {read_p50} us under a 2 ms round trip"
    );
    // A write from a client of a follower: client to follower, follower to leader,
    // proposal, ack, commit back: at least two round trips.
    let write_p50 = report["write_latency"]["p50_us"]
        .as_u64()
        .expect("write p50");
    assert!(write_p50 >= 4000, "write p50 {write_p50} us");
    pids_gone(run);
    assert_clean(&p, &veths);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_panic_inside_the_loader_namespace_still_removes_the_lab() {
    if !root_or_opted_out() {
        return;
    }
    let p = prefix("panic");
    let veths = root_veths();
    let spec = LabSpec {
        prefix: p.clone(),
        members: 2,
        rtt_ms: 0.0,
        member_cpu: Some(0.25),
        delay: netns::Delay::Auto,
    };
    let caught = std::panic::catch_unwind(|| {
        let lab = NetLab::create(spec).expect("lab");
        assert_eq!(
            netns::leftovers(&p).len(),
            4 + 1,
            "hub, loader, 2 members, cgroup"
        );
        let quota_dir = lab.member_cgroup(1).expect("cgroup").to_path_buf();
        assert!(quota_dir.exists());
        // The loader namespace sees only its own veth and loopback.
        let links = lab
            .in_loader(|| {
                let out = Command::new("ip")
                    .args(["-o", "link"])
                    .output()
                    .expect("ip");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .expect("in loader");
        assert_eq!(links.lines().count(), 2, "{links}");
        assert!(links.contains("eth0@"), "{links}");
        let routes = lab
            .in_loader(|| {
                let out = Command::new("ip").args(["route"]).output().expect("ip");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .expect("in loader");
        assert!(!routes.contains("default"), "{routes}");
        assert!(routes.contains("198.18.0.0/24"), "{routes}");
        let _ = lab.in_loader(|| panic!("injected"));
    });
    assert!(caught.is_err(), "the panic comes back out");
    assert_clean(&p, &veths);
}
