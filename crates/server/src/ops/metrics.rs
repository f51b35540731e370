//! `/metrics` in Prometheus's text format, under the names and types ZooKeeper 3.9's
//! PrometheusMetricsProvider writes, so ZooKeeper's dashboards and alert rules apply.
//!
//! Like ZooKeeper's exporter (simpleclient), counters carry no `_total` suffix, gauges and
//! counters are printed as doubles, and summaries have `_count`, `_sum` and quantiles: 0.5
//! for ZooKeeper's "basic" summaries (fsynctime, snapshottime, election_time), 0.5/0.9/0.99
//! for the "advanced" ones. Times are in milliseconds, as ZooKeeper's. Quantiles of request
//! latency are over the last ten minutes (simpleclient's default window), read from
//! successive copies of the shards' latency buckets.
//!
//! The figures are mntr's (fourlw.rs `monitor_rows`, the same source as the four-letter word
//! and the admin `monitor` command) plus the distributions of stats.rs and zoocore's own
//! gauges under `zoocore_`. The endpoint runs on a thread of its own (`tiny_http`), never on
//! an executor: a scrape costs the request path nothing but the relaxed loads of counters.
//!
//! proposal_latency and commit_propagation_latency are measured where ZooKeeper measures
//! them, on learners (the member's `Latency` samples): on a leader they are exported with a
//! count of 0, as ZooKeeper's are. Their quantiles are over the process's life, not a window.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::shared::Shared;
use crate::stats::{self, Distribution, Mode};

/// simpleclient's summary window (maxAgeSeconds = 10 min).
const WINDOW: Duration = Duration::from_secs(600);

/// mntr rows that are counters in ZooKeeper's exporter (or, for zoocore's, that only grow).
const COUNTERS: &[&str] = &[
    "zoocore_txns",
    "zoocore_writes_refused_for_room",
    "zoocore_commit_batches",
    "zoocore_log_records",
    "zoocore_log_syncs",
    "zoocore_fsync_count",
];

/// Copies of one distribution's buckets taken at scrapes, oldest first, for the window.
#[derive(Default)]
pub struct Window {
    copies: VecDeque<(Instant, Vec<u64>)>,
}

/// The windows of the latency summaries: every request, reads, updates.
#[derive(Default)]
pub struct Windows {
    pub request: Window,
    pub read: Window,
    pub update: Window,
}

impl Window {
    /// The counts of the window that ends now: `now` minus the oldest copy younger than
    /// [`WINDOW`] (everything since start until a copy that old exists).
    fn counts(&mut self, now: Instant, current: Vec<u64>) -> Vec<u64> {
        while self
            .copies
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            self.copies.pop_front();
        }
        let base = self.copies.front().map(|(_, c)| c.clone());
        // One copy per minute is enough to slide a ten-minute window.
        if self
            .copies
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(60))
        {
            self.copies.push_back((now, current.clone()));
        }
        match base {
            // A reset (srst) makes current smaller than the copy: count from zero then.
            Some(base) => current
                .iter()
                .zip(base)
                .map(|(c, b)| c.checked_sub(b).unwrap_or(*c))
                .collect(),
            None => current,
        }
    }
}

/// Starts the exporter's thread when metricsProvider.className names the Prometheus
/// provider. A port that cannot be bound is logged and the server goes on without it.
pub fn spawn(shared: Arc<Shared>) {
    let Some(addr) = shared.cfg.metrics_addr else {
        return;
    };
    let server = match tiny_http::Server::http(addr) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("Prometheus exporter not started: cannot listen on {addr}: {e}");
            return;
        }
    };
    tracing::info!("Prometheus metrics on http://{addr}/metrics");
    let window = Mutex::new(Windows::default());
    let spawned = std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or_default();
                let (status, body) = if path == "/metrics" {
                    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                    (200, render(&shared, &mut w))
                } else {
                    (404, "Not Found\n".to_string())
                };
                let header = tiny_http::Header::from_bytes(
                    "Content-Type",
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .expect("a static, valid header");
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(status)
                    .with_header(header);
                if let Err(e) = request.respond(response) {
                    tracing::debug!("metrics: answer not sent: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("Prometheus exporter not started: {e}");
    }
}

/// The exposition text of every metric.
pub fn render(shared: &Shared, windows: &mut Windows) -> String {
    let mut out = Exposition::default();
    let parts = shared.reports.collect_blocking();
    for (key, value) in crate::fourlw::monitor_rows(shared, &parts) {
        let name = key.strip_prefix("zk_").unwrap_or(key);
        // Text rows (version, state, zxid) are not samples.
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let kind = if COUNTERS.contains(&name) {
            "counter"
        } else {
            "gauge"
        };
        out.single(name, kind, value);
    }
    let s = &shared.stats;
    let mode = stats::mode();
    if let Some(e) = &shared.cfg.ensemble {
        out.single("quorum_size", "gauge", e.voters().len() as f64);
    }
    if mode == Mode::Leader {
        let uptime = stats::mode_uptime_ms(s.started) as f64;
        out.single("leader_uptime", "gauge", uptime);
    }
    // A zoocore that meets an unrecoverable error stops (exit 3) rather than serve on: a
    // live process has met none.
    out.single("unrecoverable_error_count", "counter", 0.0);
    out.single(
        "looking_count",
        "counter",
        stats::LOOKING_COUNT.load(Relaxed) as f64,
    );

    let fsyncs = s.core.fsyncs.load(Relaxed);
    out.summary(
        "fsynctime",
        &[(0.5, s.core.fsync_p50_us.load(Relaxed) as f64 / 1000.0)],
        fsyncs,
        s.core.fsync_sum_us.load(Relaxed) as f64 / 1000.0,
    );
    out.distribution("snapshottime", &stats::SNAPSHOT_TIME_MS);
    out.distribution("election_time", &stats::ELECTION_TIME_MS);
    out.advanced_distribution("proposal_latency", &stats::PROPOSAL_LATENCY_MS);
    out.advanced_distribution(
        "commit_propagation_latency",
        &stats::COMMIT_PROPAGATION_LATENCY_MS,
    );

    let buckets = s.latency_buckets();
    let (count, total_us) = s.latency_count_total();
    let now = Instant::now();
    let quantiles_of = |counts: Vec<u64>| -> Vec<(f64, f64)> {
        [0.5, 0.9, 0.99]
            .iter()
            .map(|q| (*q, stats::quantile(&counts, *q) / 1000.0))
            .collect()
    };
    out.summary(
        "zoocore_request_latency",
        &quantiles_of(windows.request.counts(now, buckets)),
        count,
        total_us as f64 / 1000.0,
    );
    for (name, window, of) in [
        (
            "readlatency",
            &mut windows.read,
            (|c| &c.read_latency) as fn(&stats::ShardCounters) -> &stats::Latencies,
        ),
        ("updatelatency", &mut windows.update, |c| &c.update_latency),
    ] {
        let mut buckets = vec![0u64; stats::BUCKETS];
        for shard in &s.shards {
            for (total, n) in buckets.iter_mut().zip(of(shard).buckets.snapshot()) {
                *total += n;
            }
        }
        out.summary(
            name,
            &quantiles_of(window.counts(now, buckets)),
            s.shards.iter().map(|c| of(c).count.get()).sum(),
            s.shards.iter().map(|c| of(c).total_us.get()).sum::<u64>() as f64 / 1000.0,
        );
    }

    out.header(
        "zoocore_shard_outstanding_requests",
        "gauge",
        "requests holding a unit of each shard's budget",
    );
    for (i, shard) in s.shards.iter().enumerate() {
        let n = shard.outstanding.load(Relaxed) as f64;
        out.sample(
            "zoocore_shard_outstanding_requests",
            &format!("shard=\"{i}\""),
            n,
        );
    }
    out.header(
        "zoocore_shard_connections",
        "gauge",
        "client connections of each shard",
    );
    for (i, shard) in s.shards.iter().enumerate() {
        let n = shard.connections.load(Relaxed) as f64;
        out.sample("zoocore_shard_connections", &format!("shard=\"{i}\""), n);
    }
    out.single(
        "zoocore_core_queued_requests",
        "gauge",
        s.core.queued.load(Relaxed) as f64,
    );
    let txns = s.core.txns.load(Relaxed) as f64;
    let ratio = |n: u64| if n == 0 { 0.0 } else { txns / n as f64 };
    out.single(
        "zoocore_txns_per_batch",
        "gauge",
        ratio(s.core.batches.load(Relaxed)),
    );
    out.single(
        "zoocore_txns_per_fsync",
        "gauge",
        ratio(s.core.log_syncs.load(Relaxed)),
    );
    out.header(
        "zoocore_server_state",
        "gauge",
        "1 for the mode this server is in",
    );
    for m in [
        Mode::Standalone,
        Mode::Looking,
        Mode::Follower,
        Mode::Leader,
        Mode::Observer,
        Mode::ReadOnly,
    ] {
        let v = if m == mode { 1.0 } else { 0.0 };
        out.sample(
            "zoocore_server_state",
            &format!("state=\"{}\"", m.name()),
            v,
        );
    }
    out.text
}

/// Builds the text, one metric family at a time.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value:?}");
        } else {
            let _ = writeln!(self.text, "{name}{{{labels}}} {value:?}");
        }
    }

    /// A family of one sample; ZooKeeper's help text is the name itself.
    fn single(&mut self, name: &str, kind: &str, value: f64) {
        self.header(name, kind, name);
        self.sample(name, "", value);
    }

    fn summary(&mut self, name: &str, quantiles: &[(f64, f64)], count: u64, sum: f64) {
        self.header(name, "summary", name);
        for (q, v) in quantiles {
            self.sample(name, &format!("quantile=\"{q}\""), *v);
        }
        self.sample(&format!("{name}_count"), "", count as f64);
        self.sample(&format!("{name}_sum"), "", sum);
    }

    /// An advanced summary (0.5, 0.9 and 0.99, count, sum) of a distribution in ms.
    fn advanced_distribution(&mut self, name: &str, d: &Distribution) {
        let counts = d.buckets.snapshot();
        let quantiles: Vec<(f64, f64)> = [0.5, 0.9, 0.99]
            .iter()
            .map(|q| (*q, stats::quantile(&counts, *q)))
            .collect();
        let count = d.count.load(Relaxed);
        let sum = d.sum.load(Relaxed) as f64;
        self.summary(name, &quantiles, count, sum);
    }

    /// A basic summary (median, count, sum) of a distribution in ms.
    fn distribution(&mut self, name: &str, d: &Distribution) {
        let median = stats::quantile(&d.buckets.snapshot(), 0.5);
        let count = d.count.load(Relaxed);
        let sum = d.sum.load(Relaxed) as f64;
        self.summary(name, &[(0.5, median)], count, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_counts_only_the_last_ten_minutes() {
        let mut w = Window::default();
        let t0 = Instant::now();
        assert_eq!(w.counts(t0, vec![5, 0]), vec![5, 0]);
        // Within the window: everything since the first copy.
        assert_eq!(
            w.counts(t0 + Duration::from_secs(120), vec![7, 1]),
            vec![2, 1]
        );
        // Past it, the first copy is dropped and the two-minute one is the base.
        let later = t0 + WINDOW + Duration::from_secs(60);
        assert_eq!(w.counts(later, vec![10, 4]), vec![3, 3]);
        // A reset (counts below the base) counts from zero.
        assert_eq!(
            w.counts(later + Duration::from_secs(1), vec![1, 0]),
            vec![1, 0]
        );
    }

    #[test]
    fn summaries_and_samples_are_in_the_text_format() {
        let mut e = Exposition::default();
        e.single("znode_count", "gauge", 5.0);
        e.summary("fsynctime", &[(0.5, 1.5)], 3, 4.5);
        assert_eq!(
            e.text,
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n\
             # HELP fsynctime fsynctime\n# TYPE fsynctime summary\n\
             fsynctime{quantile=\"0.5\"} 1.5\nfsynctime_count 3.0\nfsynctime_sum 4.5\n"
        );
    }
}
