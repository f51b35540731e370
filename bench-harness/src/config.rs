//! What a load run does: servers, connections × outstanding, the workload and its knobs,
//! closed or open loop, warm-up and measured window. One struct, parsed by clap in the
//! binary and built directly by a campaign runner; it is serialised whole into the report,
//! so a result file always says exactly what produced it.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use serde::Serialize;

/// The operation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// getData vs setData on `keys` keys, `read_pct` percent reads.
    Mixed,
    /// A multi of `multi_ops` setData ops per write (one transaction); reads are getData.
    Multi,
    /// create then delete, per connection, in `create_mode`.
    Churn,
    /// `watchers` connections hold persistent watches on `watched_nodes` nodes; the other
    /// connections setData those nodes. Event fan-out and latency are measured.
    Watch,
    /// Each connection opens a session and closes it, over and over.
    Sessions,
}

/// How keys are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    Uniform,
    Zipfian,
}

/// The CreateMode of churn nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChurnMode {
    Persistent,
    Ephemeral,
    Sequential,
    EphemeralSequential,
}

impl ChurnMode {
    pub fn flags(self) -> i32 {
        match self {
            ChurnMode::Persistent => 0,
            ChurnMode::Ephemeral => 1,
            ChurnMode::Sequential => 2,
            ChurnMode::EphemeralSequential => 3,
        }
    }

    pub fn is_sequential(self) -> bool {
        matches!(self, ChurnMode::Sequential | ChurnMode::EphemeralSequential)
    }
}

/// A load run.
#[derive(Debug, Clone, Args, Serialize)]
pub struct LoadConfig {
    /// Client addresses, comma separated; connection i goes to server i mod n.
    #[arg(long, value_delimiter = ',', required = true)]
    pub servers: Vec<SocketAddr>,
    /// Connections (sessions), spread over the servers.
    #[arg(long, short = 'c', default_value_t = 32)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, short = 'k', default_value_t = 16)]
    pub outstanding: usize,
    /// Generator threads, one current-thread runtime each; connections are dealt round-robin.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Percent of operations that are reads (getData); the rest are writes.
    #[arg(long, default_value_t = 100)]
    pub read_pct: u32,
    /// Bytes per value (setData, created keys).
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Keys created in set-up and drawn from.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,
    /// Zipfian skew (YCSB's default 0.99).
    #[arg(long, default_value_t = 0.99)]
    pub zipf_theta: f64,
    /// The version setData and multi's setData expect; -1 matches any. Another value makes
    /// writes fail with BadVersion (to check error reporting).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub set_version: i32,
    /// setData ops per multi (workload multi).
    #[arg(long, default_value_t = 4)]
    pub multi_ops: usize,
    #[arg(long, value_enum, default_value_t = ChurnMode::Persistent)]
    pub create_mode: ChurnMode,
    /// Watching connections (workload watch); the remaining connections write.
    #[arg(long, default_value_t = 16)]
    pub watchers: usize,
    /// Nodes every watcher watches (workload watch).
    #[arg(long, default_value_t = 4)]
    pub watched_nodes: u64,
    /// Open loop: total operations per second, sent on a fixed schedule; latency counts from
    /// the intended send time. Absent: closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds before the measured window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_s: f64,
    /// Seconds measured.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration_s: f64,
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout_ms: i32,
    /// Parent znode of everything the run creates.
    #[arg(long, default_value = "/zoocore-bench")]
    pub prefix: String,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Server processes whose CPU time (from /proc/<pid>/stat) is reported over the window.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Do not create the prefix and keys (they exist from an earlier run).
    #[arg(long)]
    pub skip_setup: bool,
    /// A send more than this late against its schedule counts as late (open loop). The
    /// default sits above tokio's 1 ms timer granularity, which every send may pay.
    #[arg(long, default_value_t = 2.0)]
    pub late_ms: f64,
}

impl LoadConfig {
    /// A closed-loop 100%-read config against `servers`, with the CLI's defaults.
    pub fn new(servers: Vec<SocketAddr>) -> Self {
        Self {
            servers,
            connections: 32,
            outstanding: 16,
            threads: 1,
            workload: Workload::Mixed,
            read_pct: 100,
            value_size: 1024,
            keys: 1000,
            distribution: Distribution::Uniform,
            zipf_theta: 0.99,
            set_version: -1,
            multi_ops: 4,
            create_mode: ChurnMode::Persistent,
            watchers: 16,
            watched_nodes: 4,
            rate: None,
            warmup_s: 2.0,
            duration_s: 10.0,
            session_timeout_ms: 30_000,
            prefix: "/zoocore-bench".into(),
            seed: 1,
            server_pid: Vec::new(),
            skip_setup: false,
            late_ms: 2.0,
        }
    }

    /// Checks the knobs against each other; the message names the offending flag.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |m: &str| Err(m.to_string());
        if self.servers.is_empty() {
            return fail("--servers: at least one address");
        }
        if self.connections == 0 || self.outstanding == 0 || self.threads == 0 {
            return fail("--connections, --outstanding and --threads must be at least 1");
        }
        if self.read_pct > 100 {
            return fail("--read-pct: 0..=100");
        }
        if self.keys == 0 || self.watched_nodes == 0 {
            return fail("--keys and --watched-nodes must be at least 1");
        }
        if !(self.zipf_theta > 0.0 && self.zipf_theta < 1.0) {
            return fail("--zipf-theta: in (0, 1)");
        }
        if self.workload == Workload::Watch && self.watchers >= self.connections {
            return fail("--watchers must leave at least one writing connection");
        }
        if self.rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
            return fail("--rate: a positive number of operations per second");
        }
        if self.warmup_s < 0.0 || self.duration_s <= 0.0 {
            return fail("--warmup-s >= 0 and --duration-s > 0");
        }
        if !self.prefix.starts_with('/') || self.prefix.ends_with('/') {
            return fail("--prefix: an absolute znode path without a trailing slash");
        }
        Ok(())
    }
}
