//! Prometheus `/metrics` (`metricsProvider.className=...PrometheusMetricsProvider`) on a real
//! server, read with a Prometheus text-format parser (the `prometheus-parse` crate): ZooKeeper
//! 3.9's names and types (counters without `_total`, summaries with quantiles), and figures
//! that follow what clients do. zoocore only: Debian's ZooKeeper 3.8 ships no Prometheus
//! provider, so the names are those of ZooKeeper 3.9's ServerMetrics and
//! PrometheusMetricsProvider (and zookeeperMonitor.md's alert rules).

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};
use zoocore_e2e::{mode, persistent, run, Options, Server, Target};
use zookeeper_client::CreateMode;

fn scrape(server: &Server) -> Scrape {
    let answer = server.metrics_get();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer
            .headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{answer:?}"
    );
    let scrape = Scrape::parse(answer.body.lines().map(|l| Ok(l.to_string())))
        .expect("the text format parses");
    // Every sample belongs to a family with HELP (and TYPE) lines.
    for s in &scrape.samples {
        let family = s
            .metric
            .strip_suffix("_count")
            .or_else(|| s.metric.strip_suffix("_sum"))
            .filter(|f| scrape.docs.contains_key(*f))
            .unwrap_or(&s.metric);
        assert!(
            scrape.docs.contains_key(family),
            "{} has no HELP line",
            s.metric
        );
    }
    scrape
}

/// Unlabelled samples by name.
fn plain(scrape: &Scrape) -> BTreeMap<String, Value> {
    scrape
        .samples
        .iter()
        .filter(|s| s.labels.is_empty() || matches!(s.value, Value::Summary(_)))
        .map(|s| (s.metric.clone(), s.value.clone()))
        .collect()
}

fn gauge(samples: &BTreeMap<String, Value>, name: &str) -> f64 {
    match samples.get(name) {
        Some(Value::Gauge(v)) => *v,
        other => panic!("{name}: expected a gauge, got {other:?}"),
    }
}

fn counter(samples: &BTreeMap<String, Value>, name: &str) -> f64 {
    match samples.get(name) {
        Some(Value::Counter(v)) => *v,
        other => panic!("{name}: expected a counter, got {other:?}"),
    }
}

fn start() -> Option<Server> {
    if Target::from_env() == Target::Apache {
        return None;
    }
    Some(Server::start_with(
        Target::Zoocore,
        Options {
            metrics: true,
            ..Options::default()
        },
    ))
}

#[test]
fn metrics_have_zookeepers_names_and_types() {
    let Some(server) = start() else { return };
    let scrape = scrape(&server);
    let samples = plain(&scrape);
    for name in [
        "znode_count",
        "watch_count",
        "ephemerals_count",
        "approximate_data_size",
        "num_alive_connections",
        "outstanding_requests",
        "avg_latency",
        "max_latency",
        "min_latency",
        "packets_received",
        "packets_sent",
        "open_file_descriptor_count",
        "max_file_descriptor_count",
        "global_sessions",
        "uptime",
        "fsync_threshold_exceed_count",
        "zoocore_core_queued_requests",
        "zoocore_txns_per_batch",
        "zoocore_txns_per_fsync",
    ] {
        gauge(&samples, name);
    }
    for name in [
        "unrecoverable_error_count",
        "looking_count",
        "zoocore_txns",
        "zoocore_commit_batches",
        "zoocore_log_syncs",
    ] {
        counter(&samples, name);
        assert!(!samples.contains_key(&format!("{name}_total")), "{name}");
    }
    // Summaries: ZooKeeper's basic ones have the median, the advanced ones three quantiles.
    for (name, quantiles) in [
        ("fsynctime", vec![0.5]),
        ("snapshottime", vec![0.5]),
        ("election_time", vec![0.5]),
        ("zoocore_request_latency", vec![0.5, 0.9, 0.99]),
        ("readlatency", vec![0.5, 0.9, 0.99]),
        ("updatelatency", vec![0.5, 0.9, 0.99]),
    ] {
        match samples.get(name) {
            Some(Value::Summary(counts)) => {
                let qs: Vec<f64> = counts.iter().map(|c| c.quantile).collect();
                assert_eq!(qs, quantiles, "{name}");
            }
            other => panic!("{name}: expected a summary, got {other:?}"),
        }
        assert!(samples.contains_key(&format!("{name}_count")), "{name}");
        assert!(samples.contains_key(&format!("{name}_sum")), "{name}");
    }
    // One queue depth per shard, and the mode as a labelled gauge.
    let shards: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "zoocore_shard_outstanding_requests")
        .collect();
    assert!(!shards.is_empty());
    assert!(shards.iter().all(|s| s.labels.get("shard").is_some()));
    let state = scrape
        .samples
        .iter()
        .find(|s| s.metric == "zoocore_server_state" && s.labels.get("state") == Some("standalone"))
        .expect("state sample");
    assert!(matches!(state.value, Value::Gauge(v) if v == 1.0));
    // A standalone server has no quorum figures.
    assert!(!samples.contains_key("quorum_size"));
}

#[test]
fn metrics_follow_what_clients_do() {
    let Some(server) = start() else { return };
    let before = plain(&scrape(&server));
    let nodes = gauge(&before, "znode_count");
    run(async {
        let zk = zoocore_e2e::connect(&server).await;
        for i in 0..20 {
            zk.create(&format!("/m{i}"), b"0123456789", &persistent())
                .await
                .expect("create");
        }
        zk.create("/eph", b"", &mode(CreateMode::Ephemeral))
            .await
            .expect("ephemeral");
        let (_, _, _watch) = zk.get_and_watch_data("/m0").await.expect("watch");
        let after = plain(&scrape(&server));
        assert_eq!(gauge(&after, "znode_count"), nodes + 21.0);
        assert_eq!(gauge(&after, "ephemerals_count"), 1.0);
        assert_eq!(gauge(&after, "watch_count"), 1.0);
        assert_eq!(gauge(&after, "num_alive_connections"), 1.0);
        assert!(gauge(&after, "packets_received") >= 23.0);
        // Creates, the session and its ephemeral are transactions, each in a synced batch.
        assert!(counter(&after, "zoocore_txns") >= 22.0, "{after:?}");
        assert!(counter(&after, "zoocore_log_syncs") >= 1.0);
        assert!(gauge(&after, "zoocore_txns_per_fsync") >= 1.0);
        match (after.get("fsynctime"), after.get("fsynctime_count")) {
            (Some(Value::Summary(_)), Some(Value::Untyped(n))) => assert!(*n >= 1.0),
            other => panic!("fsynctime: {other:?}"),
        }
        match after.get("zoocore_request_latency_count") {
            Some(Value::Untyped(n)) => assert!(*n >= 23.0, "{n}"),
            other => panic!("request latency count: {other:?}"),
        }
        // The 21 creates are updates; the getData is a read.
        let count = |name: &str| match after.get(name) {
            Some(Value::Untyped(n)) => {
                *n - before.get(name).map_or(0.0, |v| match v {
                    Value::Untyped(n) => *n,
                    _ => 0.0,
                })
            }
            other => panic!("{name}: {other:?}"),
        };
        assert!(count("updatelatency_count") >= 21.0, "{after:?}");
        assert!(count("readlatency_count") >= 1.0, "{after:?}");
    });
}

#[test]
fn only_metrics_is_served() {
    let Some(server) = start() else { return };
    let answer = zoocore_e2e::http_get(
        std::net::SocketAddr::from((server.addr().ip(), zoocore_e2e::METRICS_PORT)),
        "/other",
    );
    assert_eq!(answer.status, 404);
}

#[test]
fn an_ensemble_exports_its_quorum_and_elections() {
    if Target::from_env() == Target::Apache {
        return;
    }
    use zoocore_e2e::ensemble;
    let servers = Server::start_ensemble(
        3,
        0,
        Options {
            metrics: true,
            ..ensemble::options()
        },
    );
    ensemble::run(async {
        let leader = ensemble::await_settled(&servers).await;
        for (i, s) in servers.iter().enumerate() {
            let samples = plain(&scrape(s));
            assert_eq!(gauge(&samples, "quorum_size"), 3.0);
            assert!(counter(&samples, "looking_count") >= 1.0);
            // Each member left LOOKING at least once: one election timed.
            match samples.get("election_time_count") {
                Some(Value::Untyped(n)) => assert!(*n >= 1.0, "member {i}: {n}"),
                other => panic!("member {i}: election_time_count {other:?}"),
            }
            assert_eq!(
                samples.contains_key("leader_uptime"),
                i == leader,
                "member {i}"
            );
        }
        // Every metric the shipped alert rules and dashboard query is exported by some member.
        let mut exported: std::collections::BTreeSet<String> = ["up".to_string()].into();
        for s in &servers {
            exported.extend(scrape(s).samples.into_iter().map(|s| s.metric));
        }
        for name in shipped_queries() {
            assert!(
                exported.contains(&name),
                "{name} is queried but not exported"
            );
        }
        // The leader counts its followers once they are synced.
        ensemble::eventually("two synced followers on the leader", || {
            let samples = plain(&scrape(&servers[leader]));
            let synced = samples.get("synced_followers").cloned();
            std::future::ready(match synced {
                Some(Value::Gauge(2.0)) => Ok(()),
                other => Err(format!("{other:?}")),
            })
        })
        .await;
        // Replication latencies, where ZooKeeper measures them: each follower times the
        // proposals it receives and the commits it applies; the leader exports both with a
        // count of 0, as ZooKeeper's leader does.
        let zk = zoocore_e2e::connect(&servers[leader]).await;
        for i in 0..20 {
            zk.create(&format!("/lat{i}"), b"v", &zoocore_e2e::persistent())
                .await
                .expect("create");
        }
        let count_of = |samples: &BTreeMap<String, Value>, name: &str| match samples.get(name) {
            Some(Value::Untyped(n)) => *n,
            other => panic!("{name}: {other:?}"),
        };
        for (i, s) in servers.iter().enumerate() {
            for name in ["proposal_latency", "commit_propagation_latency"] {
                let expected = if i == leader { "0" } else { "at least 20" };
                let counted = ensemble::eventually(&format!("{name} on {i}"), || {
                    let samples = plain(&scrape(s));
                    let quantiles: Vec<f64> = match samples.get(name) {
                        Some(Value::Summary(q)) => q.iter().map(|c| c.quantile).collect(),
                        other => panic!("{name}: expected a summary, got {other:?}"),
                    };
                    assert_eq!(quantiles, vec![0.5, 0.9, 0.99], "{name}");
                    let n = count_of(&samples, &format!("{name}_count"));
                    let ok = if i == leader { n == 0.0 } else { n >= 20.0 };
                    std::future::ready(if ok {
                        Ok(n)
                    } else {
                        Err(format!("{n}, expected {expected}"))
                    })
                })
                .await;
                eprintln!("member {i} {name}_count {counted}");
            }
        }
    });
}

/// The metric names in the `expr`s of configs/prometheus/zoocore-alerts.yml and of the
/// Grafana dashboard's queries.
fn shipped_queries() -> std::collections::BTreeSet<String> {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let rules = std::fs::read_to_string(configs.join("prometheus/zoocore-alerts.yml"))
        .expect("alert rules");
    let mut exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.split(" #").next().unwrap_or(e).to_string())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(configs.join("grafana/zoocore-dashboard.json"))
            .expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs.iter().flat_map(|e| metric_names(e)).collect()
}

/// The metric names of a PromQL expression: identifiers outside label matchers, ranges and
/// strings that are neither functions (followed by `(`) nor keywords and grouping labels.
fn metric_names(expr: &str) -> Vec<String> {
    const NOT_METRICS: &[&str] = &[
        "by", "without", "on", "ignoring", "and", "or", "unless", "bool", "instance", "state",
        "job", "sum", "min", "max", "avg", "count", "topk", "bottomk", "stddev",
    ];
    let mut plain = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let mut names = Vec::new();
    let chars: Vec<char> = plain.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if next != Some(&'(') && !NOT_METRICS.contains(&word.as_str()) {
                names.push(word);
            }
        } else if chars[i].is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    assert_eq!(
        metric_names(r#"rate(fsynctime_sum{instance=~"$x"}[1m]) > 100"#),
        vec!["fsynctime_sum"]
    );
    assert_eq!(
        metric_names("max by (instance, state) (zoocore_server_state{a=\"b\"}) == 1"),
        vec!["zoocore_server_state"]
    );
    assert_eq!(
        metric_names("approximate_data_size /1024 /1024 > 1 * 1024"),
        vec!["approximate_data_size"]
    );
}
