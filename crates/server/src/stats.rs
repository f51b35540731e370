//! Counters the four-letter words and metrics read. Each shard owns one `ShardCounters`
//! (written only by its thread, read by any), and the core owns `CoreCounters`: relaxed
//! atomics, never contended on the request path.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use zoocore_proto::OpCode;

#[derive(Debug, Default)]
pub struct ShardCounters {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub connections: AtomicU64,
    /// Requests holding a unit of the shard's budget (written by the budget, budget.rs).
    pub outstanding: Arc<AtomicU64>,
    pub latency_count: AtomicU64,
    pub latency_total_us: AtomicU64,
    pub latency_min_us: AtomicU64,
    pub latency_max_us: AtomicU64,
}

impl ShardCounters {
    pub fn new() -> Self {
        let c = Self::default();
        c.latency_min_us.store(u64::MAX, Relaxed);
        c
    }

    pub fn record_latency(&self, us: u64) {
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_total_us.fetch_add(us, Relaxed);
        self.latency_min_us.fetch_min(us, Relaxed);
        self.latency_max_us.fetch_max(us, Relaxed);
    }

    pub fn reset(&self) {
        self.packets_received.store(0, Relaxed);
        self.packets_sent.store(0, Relaxed);
        self.latency_count.store(0, Relaxed);
        self.latency_total_us.store(0, Relaxed);
        self.latency_min_us.store(u64::MAX, Relaxed);
        self.latency_max_us.store(0, Relaxed);
    }
}

/// What this server is doing in its ensemble, as srvr/stat/mntr report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone = 0,
    /// An ensemble member without a leader: it answers four-letter words only.
    Looking = 1,
    Follower = 2,
    Leader = 3,
    Observer = 4,
}

/// The process's mode. One server per process, read by every shard at each handshake; a
/// relaxed atomic is enough (a handshake racing a role change is answered or closed, and
/// a member that loses its leader closes every connection anyway).
static MODE: AtomicU8 = AtomicU8::new(Mode::Standalone as u8);

pub fn set_mode(mode: Mode) {
    MODE.store(mode as u8, Relaxed);
}

pub fn mode() -> Mode {
    match MODE.load(Relaxed) {
        1 => Mode::Looking,
        2 => Mode::Follower,
        3 => Mode::Leader,
        4 => Mode::Observer,
        _ => Mode::Standalone,
    }
}

impl Mode {
    /// The word ZooKeeper prints after `Mode:` and in `zk_server_state`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Standalone => "standalone",
            Mode::Looking => "looking",
            Mode::Follower => "follower",
            Mode::Leader => "leader",
            Mode::Observer => "observer",
        }
    }

    pub fn serving(self) -> bool {
        self != Mode::Looking
    }
}

#[derive(Debug, Default)]
pub struct CoreCounters {
    /// On a leader: learners connected (followers and observers), and followers in
    /// broadcast (ZooKeeper's zk_followers, zk_synced_followers).
    pub learners: AtomicU64,
    pub synced_followers: AtomicU64,
    pub last_zxid: AtomicI64,
    pub node_count: AtomicU64,
    pub data_size: AtomicU64,
    pub sessions: AtomicU64,
    pub ephemerals: AtomicU64,
    pub txns: AtomicU64,
    pub batches: AtomicU64,
    pub queued: AtomicU64,
    pub log_records: AtomicU64,
    pub log_syncs: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_max_us: AtomicU64,
    pub fsync_p99_us: AtomicU64,
    pub fsync_slow: AtomicU64,
    /// Writes refused because the log had no room on the disk (docs/OPERATIONS.md).
    pub refused_for_room: AtomicU64,
}

/// Everything a four-letter word may report, shared by all executors.
#[derive(Debug)]
pub struct ServerStats {
    pub started: Instant,
    /// gtmk/stmk's trace mask.
    pub trace_mask: AtomicI64,
    pub core: CoreCounters,
    pub shards: Vec<Arc<ShardCounters>>,
}

impl ServerStats {
    pub fn new(shards: usize) -> Self {
        ServerStats {
            started: Instant::now(),
            trace_mask: AtomicI64::new(crate::fourlw::TRACE_MASK_DEFAULT),
            core: CoreCounters::default(),
            shards: (0..shards)
                .map(|_| Arc::new(ShardCounters::new()))
                .collect(),
        }
    }

    pub fn sum(&self, f: impl Fn(&ShardCounters) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| f(s).load(Relaxed)).sum()
    }

    /// (min, avg, max) latency in milliseconds, as ZooKeeper prints them.
    pub fn latency_ms(&self) -> (f64, f64, f64) {
        let count = self.sum(|s| &s.latency_count);
        if count == 0 {
            return (0.0, 0.0, 0.0);
        }
        let total = self.sum(|s| &s.latency_total_us) as f64;
        let min = self
            .shards
            .iter()
            .map(|s| s.latency_min_us.load(Relaxed))
            .min()
            .unwrap_or(0);
        let max = self
            .shards
            .iter()
            .map(|s| s.latency_max_us.load(Relaxed))
            .max()
            .unwrap_or(0);
        (
            min as f64 / 1000.0,
            total / count as f64 / 1000.0,
            max as f64 / 1000.0,
        )
    }
}

/// Per-connection figures for `cons`.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    pub last_op: OpCode,
    pub last_cxid: i32,
    pub established_ms: u64,
    pub last_response_ms: u64,
}

impl ConnStats {
    pub fn new() -> Self {
        ConnStats {
            received: 0,
            sent: 0,
            last_op: OpCode::Notification,
            last_cxid: 0,
            established_ms: unix_ms(),
            last_response_ms: 0,
        }
    }

    pub fn answered(&mut self) {
        self.last_response_ms = unix_ms();
    }

    pub fn reset(&mut self) {
        self.received = 0;
        self.sent = 0;
    }
}

impl Default for ConnStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
