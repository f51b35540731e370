//! The result of a load run: what was measured over the window (throughput, errors by code,
//! latency percentiles), what the whole run caused on the server (transaction accounting),
//! CPU used by the servers and by the generator, whether the generator kept its schedule,
//! and the full config. Serialises to the JSON the CLI writes; the merged histograms ride
//! along (not serialised) for interval logs.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use zoocore_proto::ErrorCode;

use crate::config::LoadConfig;

/// Percentiles of one latency histogram, in microseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Everything the run caused on the server, warm-up and drain included.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Totals {
    /// Transactions of the set-up session: its creates (ok or not), open and close.
    pub setup_txns: u64,
    pub reads: u64,
    pub write_txns_ok: u64,
    pub write_txns_failed: u64,
    pub sessions_opened: u64,
    pub sessions_closed: u64,
    /// Requests whose connection failed before they were answered (outcome unknown).
    pub lost: u64,
}

impl Totals {
    /// Transactions (zxids) the run should have advanced a ZooKeeper server by: every write
    /// request ok or failed (a failed write is an error txn), every session open and close.
    pub fn txns(&self) -> u64 {
        self.setup_txns
            + self.write_txns_ok
            + self.write_txns_failed
            + self.sessions_opened
            + self.sessions_closed
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerCpu {
    pub pid: u32,
    /// CPU seconds over the measured window; None if the process could not be read.
    pub cpu_s: Option<f64>,
    /// Server CPU microseconds per operation completed in the window.
    pub cpu_us_per_op: Option<f64>,
}

/// Whether the generator kept an open-loop schedule.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Schedule {
    pub open_loop: bool,
    pub rate_ops_s: Option<f64>,
    pub sends: u64,
    /// Sends more than `late_ms` behind their intended time (the window was full or the
    /// generator could not keep up); their latency still counts from the intended time.
    pub late_sends: u64,
    /// Sends scheduled before the end that were never made (the backlog at the end).
    pub unsent: u64,
    pub send_lag_ms_max: f64,
    /// More than 1% of the scheduled sends were late or never made: the offered load was
    /// not the configured rate.
    pub fell_behind: bool,
}

/// One row of the per-second CSV.
#[derive(Debug, Clone, Serialize)]
pub struct SecondRow {
    pub second: usize,
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    pub errors: u64,
    pub events: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Watch fan-out over the window (workload watch).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Watch {
    pub watchers: u64,
    pub events: u64,
    pub events_per_s: f64,
    /// Events received / (successful writes × watchers); 1.0 when every change reached
    /// every watcher inside the window.
    pub fanout_ratio: f64,
    /// From the most recent setData sent to the node to the event's arrival.
    pub event_latency: Latency,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub started_unix_ms: u128,
    pub window_s: f64,
    pub ops: u64,
    pub ops_per_s: f64,
    pub reads: u64,
    pub writes: u64,
    pub reads_per_s: f64,
    pub writes_per_s: f64,
    /// Error replies in the window, by ZooKeeper code name.
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    pub latency: Latency,
    pub read_latency: Latency,
    pub write_latency: Latency,
    pub watch: Option<Watch>,
    pub servers_cpu: Vec<ServerCpu>,
    pub generator_cpu_s: Option<f64>,
    pub schedule: Schedule,
    pub totals: Totals,
    pub connection_failures: Vec<String>,
    pub per_second: Vec<SecondRow>,
    pub config: LoadConfig,
    /// The merged latency histogram of each second of the window (all operations).
    #[serde(skip)]
    pub intervals: Vec<Histogram<u64>>,
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

/// A code's name as ZooKeeper prints it, or its number.
pub fn error_name(code: i32) -> String {
    ErrorCode(code)
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| code.to_string())
}

impl Report {
    /// One line for a terminal or a log.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{:.0} ops/s ({:.0} reads/s, {:.0} writes/s) over {:.1}s; latency us p50 {} p90 {} p99 {} p99.9 {} max {}; errors {}",
            self.ops_per_s,
            self.reads_per_s,
            self.writes_per_s,
            self.window_s,
            self.latency.p50_us,
            self.latency.p90_us,
            self.latency.p99_us,
            self.latency.p999_us,
            self.latency.max_us,
            self.errors_total,
        );
        for (name, n) in &self.errors {
            line.push_str(&format!(" {name}={n}"));
        }
        for s in &self.servers_cpu {
            if let (Some(cpu), Some(per_op)) = (s.cpu_s, s.cpu_us_per_op) {
                line.push_str(&format!(
                    "; server {} cpu {cpu:.2}s ({per_op:.2} us/op)",
                    s.pid
                ));
            }
        }
        if let Some(w) = &self.watch {
            line.push_str(&format!(
                "; events {:.0}/s fan-out {:.3} event p99 {} us",
                w.events_per_s, w.fanout_ratio, w.event_latency.p99_us
            ));
        }
        if self.schedule.fell_behind {
            line.push_str(&format!(
                "; FELL BEHIND schedule: {} of {} sends late (max lag {:.1} ms), {} never sent",
                self.schedule.late_sends,
                self.schedule.sends,
                self.schedule.send_lag_ms_max,
                self.schedule.unsent
            ));
        }
        if self.totals.lost > 0 {
            line.push_str(&format!(
                "; {} requests lost with their connection",
                self.totals.lost
            ));
        }
        line
    }
}
