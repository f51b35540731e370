//! Counters the four-letter words and metrics read. Each shard owns one `ShardCounters`
//! (written only by its thread, read by any), and the core owns `CoreCounters`: relaxed
//! atomics, never contended on the request path.
//!
//! A shard's counters are [`Counter`]s: its one writer adds with a plain load and store, no
//! locked instruction (a request used to pay ten `lock xadd`s for its figures), and a reset
//! (srst, crst, from any thread) moves a baseline that readers subtract, so it is never lost
//! to a racing add. Distributions (request latency, election and snapshot times) are
//! `Buckets`: fixed log-linear buckets of counters, and the exporters compute quantiles
//! from a copy, off the request path.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use zoocore_proto::OpCode;

/// A monotonic count read from any thread, reset by a baseline.
#[derive(Debug, Default)]
pub struct Counter {
    value: AtomicU64,
    base: AtomicU64,
}

impl Counter {
    /// Adds `v`. Only one thread may add to a counter this way (a shard's own): a load and a
    /// store, which another writer could interleave with.
    pub fn add(&self, v: u64) {
        self.value
            .store(self.value.load(Relaxed).wrapping_add(v), Relaxed);
    }

    /// Adds `v` from any thread.
    pub fn add_shared(&self, v: u64) {
        self.value.fetch_add(v, Relaxed);
    }

    /// The count since the last reset (0 while a reset races with the read).
    pub fn get(&self) -> u64 {
        let value = self.value.load(Relaxed);
        value.saturating_sub(self.base.load(Relaxed))
    }

    pub fn reset(&self) {
        self.base.store(self.value.load(Relaxed), Relaxed);
    }
}

/// A shard's figure, whichever way it is kept.
pub trait Figure {
    fn figure(&self) -> u64;
}

impl Figure for Counter {
    fn figure(&self) -> u64 {
        self.get()
    }
}

impl Figure for AtomicU64 {
    fn figure(&self) -> u64 {
        self.load(Relaxed)
    }
}

impl Figure for Arc<AtomicU64> {
    fn figure(&self) -> u64 {
        self.load(Relaxed)
    }
}

/// Buckets of a distribution: values below 4 have a bucket each; above, every power of two
/// is split in four, so a bucket's width is at most a quarter of its lower bound and a
/// quantile read at a bucket's midpoint is within 12.5 % of the true value.
pub struct Buckets([Counter; BUCKETS]);

pub const BUCKETS: usize = 4 + 62 * 4;

impl Default for Buckets {
    fn default() -> Self {
        Buckets(std::array::from_fn(|_| Counter::default()))
    }
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buckets({} values)", self.snapshot().iter().sum::<u64>())
    }
}

impl Buckets {
    /// Counts `value`; one writer thread only ([`Counter::add`]).
    pub fn record(&self, value: u64) {
        self.0[bucket_of(value)].add(1);
    }

    /// Counts `value` from any thread.
    pub fn record_shared(&self, value: u64) {
        self.0[bucket_of(value)].add_shared(1);
    }

    pub fn snapshot(&self) -> Vec<u64> {
        self.0.iter().map(Counter::get).collect()
    }

    pub fn reset(&self) {
        for b in &self.0 {
            b.reset();
        }
    }
}

/// What an answered request was, for the latency it is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Served from the shard's view (ZooKeeper's readlatency).
    Read,
    /// Went through the write pipeline: writes, sync, closeSession (updatelatency).
    Update,
    /// Answered outside both (auth, SASL, an unknown opcode).
    Other,
}

/// One kind of request's latencies: count, sum and buckets, in µs; written by one shard.
#[derive(Debug, Default)]
pub struct Latencies {
    pub count: Counter,
    pub total_us: Counter,
    pub buckets: Buckets,
}

impl Latencies {
    pub fn record(&self, us: u64) {
        self.count.add(1);
        self.total_us.add(us);
        self.buckets.record(us);
    }

    pub fn reset(&self) {
        self.count.reset();
        self.total_us.reset();
        self.buckets.reset();
    }
}

fn bucket_of(value: u64) -> usize {
    if value < 4 {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros() as usize;
    let sub = ((value >> (msb - 2)) & 3) as usize;
    4 + (msb - 2) * 4 + sub
}

/// The values bucket `index` holds: `[low, high)`.
pub fn bucket_bounds(index: usize) -> (u64, u64) {
    if index < 4 {
        return (index as u64, index as u64 + 1);
    }
    let shift = (index - 4) / 4;
    let sub = ((index - 4) % 4) as u64;
    let high = (u128::from(5 + sub) << shift).min(u128::from(u64::MAX));
    ((4 + sub) << shift, high as u64)
}

/// The `q` quantile (0..=1) of bucket counts, at the midpoint of its bucket; 0 when empty.
pub fn quantile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let (low, high) = bucket_bounds(index);
            return if high - low == 1 {
                low as f64
            } else {
                (low as f64 + high as f64) / 2.0
            };
        }
    }
    0.0
}

/// A distribution with its count and sum, for values recorded off the request path.
#[derive(Debug, Default)]
pub struct Distribution {
    pub buckets: Buckets,
    pub count: AtomicU64,
    pub sum: AtomicU64,
}

impl Distribution {
    pub fn record(&self, value: u64) {
        self.buckets.record_shared(value);
        self.count.fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }
}

/// Leader election times in ms (ZooKeeper's `election_time`): from entering LOOKING to
/// leading, following or observing.
pub static ELECTION_TIME_MS: std::sync::LazyLock<Distribution> =
    std::sync::LazyLock::new(Distribution::default);
/// Snapshot write times in ms (ZooKeeper's `snapshottime`).
pub static SNAPSHOT_TIME_MS: std::sync::LazyLock<Distribution> =
    std::sync::LazyLock::new(Distribution::default);
/// On a follower, ms from the leader's prep of a txn to its PROPOSAL here (ZooKeeper's
/// `proposal_latency`, across the two machines' wall clocks).
pub static PROPOSAL_LATENCY_MS: std::sync::LazyLock<Distribution> =
    std::sync::LazyLock::new(Distribution::default);
/// On a follower or observer, ms from the leader's prep of a txn to its commit here
/// (ZooKeeper's `commit_propagation_latency`).
pub static COMMIT_PROPAGATION_LATENCY_MS: std::sync::LazyLock<Distribution> =
    std::sync::LazyLock::new(Distribution::default);
/// Times this server entered LOOKING (ZooKeeper's `looking_count`).
pub static LOOKING_COUNT: AtomicU64 = AtomicU64::new(0);
/// When the current mode began (Unix ms), for `leader_uptime`.
static MODE_SINCE_MS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Default)]
pub struct ShardCounters {
    pub packets_received: Counter,
    pub packets_sent: Counter,
    pub connections: AtomicU64,
    /// Requests holding a unit of the shard's budget (written by the budget, budget.rs).
    pub outstanding: Arc<AtomicU64>,
    /// Written by the shard alone, with a plain load and compare (a store only when it
    /// moves); a reset racing with it may keep a value of the moment before.
    pub latency_min_us: AtomicU64,
    pub latency_max_us: AtomicU64,
    /// Latencies by kind: reads and updates (ZooKeeper's readlatency and updatelatency) and
    /// the rest; every request's latency is the three together ([`ShardCounters::kinds`]).
    pub read_latency: Latencies,
    pub update_latency: Latencies,
    pub other_latency: Latencies,
}

impl ShardCounters {
    pub fn new() -> Self {
        let c = Self::default();
        c.latency_min_us.store(u64::MAX, Relaxed);
        c
    }

    /// Counts one answered request; the shard's thread only.
    pub fn record_latency(&self, us: u64, kind: RequestKind) {
        match kind {
            RequestKind::Read => self.read_latency.record(us),
            RequestKind::Update => self.update_latency.record(us),
            RequestKind::Other => self.other_latency.record(us),
        }
        if us < self.latency_min_us.load(Relaxed) {
            self.latency_min_us.store(us, Relaxed);
        }
        if us > self.latency_max_us.load(Relaxed) {
            self.latency_max_us.store(us, Relaxed);
        }
    }

    /// Every kind of request's latencies.
    pub fn kinds(&self) -> [&Latencies; 3] {
        [
            &self.read_latency,
            &self.update_latency,
            &self.other_latency,
        ]
    }

    pub fn reset(&self) {
        self.packets_received.reset();
        self.packets_sent.reset();
        self.latency_min_us.store(u64::MAX, Relaxed);
        self.latency_max_us.store(0, Relaxed);
        for l in self.kinds() {
            l.reset();
        }
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
    /// Looking, and serving read-only sessions (`readonlymode.enabled`).
    ReadOnly = 5,
}

/// The process's mode. One server per process, read by every shard at each handshake; a
/// relaxed atomic is enough (a handshake racing a role change is answered or closed, and
/// a member that loses its leader closes every connection anyway).
static MODE: AtomicU8 = AtomicU8::new(Mode::Standalone as u8);

pub fn set_mode(mode: Mode) {
    let before = MODE.swap(mode as u8, Relaxed);
    if before == mode as u8 {
        return;
    }
    let now = unix_ms();
    // Read-only is a part of looking: the election's time runs from entering looking.
    if before == Mode::Looking as u8 && mode == Mode::ReadOnly {
        return;
    }
    let since = MODE_SINCE_MS.swap(now, Relaxed);
    if mode == Mode::Looking {
        LOOKING_COUNT.fetch_add(1, Relaxed);
    } else if before == Mode::Looking as u8 || before == Mode::ReadOnly as u8 {
        ELECTION_TIME_MS.record(now.saturating_sub(since));
    }
}

/// Milliseconds in the current mode (since start for a standalone server).
pub fn mode_uptime_ms(started: Instant) -> u64 {
    match MODE_SINCE_MS.load(Relaxed) {
        0 => started.elapsed().as_millis() as u64,
        since => unix_ms().saturating_sub(since),
    }
}

pub fn mode() -> Mode {
    match MODE.load(Relaxed) {
        1 => Mode::Looking,
        2 => Mode::Follower,
        3 => Mode::Leader,
        4 => Mode::Observer,
        5 => Mode::ReadOnly,
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
            Mode::ReadOnly => "read-only",
        }
    }

    /// Whether the operator surfaces report this server as running a ZooKeeperServer
    /// (a read-only one included, as ZooKeeper's ReadOnlyZooKeeperServer is).
    pub fn serving(self) -> bool {
        self != Mode::Looking
    }

    /// What the shards let clients do in this mode.
    pub fn clients(self) -> zoocore_member::msg::Serving {
        use zoocore_member::msg::Serving;
        match self {
            Mode::Looking => Serving::No,
            Mode::ReadOnly => Serving::ReadOnly,
            _ => Serving::ReadWrite,
        }
    }

    /// The 4lw `isro`'s answer (IsroCommand): `ro` for a read-only server, `rw` for one
    /// that serves, `null` when none runs.
    pub fn isro(self) -> &'static str {
        match self {
            Mode::Looking => "null",
            Mode::ReadOnly => "ro",
            _ => "rw",
        }
    }
}

#[derive(Debug, Default)]
pub struct CoreCounters {
    /// On a leader: learners connected (followers and observers), and followers in
    /// broadcast (ZooKeeper's zk_followers, zk_synced_followers).
    pub learners: AtomicU64,
    pub synced_followers: AtomicU64,
    /// Observer masters: on a follower, the observers it serves; on an observer, the
    /// follower it learns from (0: the leader).
    pub observers_served: AtomicU64,
    pub observer_master: AtomicU64,
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
    pub fsync_p50_us: AtomicU64,
    pub fsync_sum_us: AtomicU64,
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
    /// An operator's leadership ask for the core (leadership.rs).
    pub leadership: crate::leadership::Mailbox,
    /// A snapshot the admin `restore` command hands the core (restore.rs).
    pub restore: crate::restore::Mailbox,
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
            leadership: Default::default(),
            restore: Default::default(),
        }
    }

    pub fn sum<F: Figure + ?Sized>(&self, f: impl Fn(&ShardCounters) -> &F) -> u64 {
        self.shards.iter().map(|s| f(s).figure()).sum()
    }

    /// Requests answered, and their latencies' sum in µs, every kind and shard together.
    pub fn latency_count_total(&self) -> (u64, u64) {
        let kinds = self.shards.iter().flat_map(|s| s.kinds());
        kinds.fold((0, 0), |(n, t), l| {
            (n + l.count.get(), t + l.total_us.get())
        })
    }

    /// Every request's latency buckets, every kind and shard together.
    pub fn latency_buckets(&self) -> Vec<u64> {
        let mut buckets = vec![0u64; BUCKETS];
        for l in self.shards.iter().flat_map(|s| s.kinds()) {
            for (total, n) in buckets.iter_mut().zip(l.buckets.snapshot()) {
                *total += n;
            }
        }
        buckets
    }

    /// (min, avg, max) latency in milliseconds, as ZooKeeper prints them.
    pub fn latency_ms(&self) -> (f64, f64, f64) {
        let (count, total) = self.latency_count_total();
        if count == 0 {
            return (0.0, 0.0, 0.0);
        }
        let total = total as f64;
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
        self.last_response_ms = unix_ms_coarse();
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

/// Wall-clock milliseconds as of the kernel's last timer tick (CLOCK_REALTIME_COARSE: a read
/// of the vDSO's page without reading the clock source, at most a tick behind `unix_ms`),
/// for the stamp of every answer (`cons`'s lresp): perf found the precise clock 2% of a
/// shard's getData.
pub fn unix_ms_coarse() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec that outlives the call, which only writes it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return unix_ms();
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_the_wall_clock_a_little_behind() {
        for _ in 0..100 {
            let before = unix_ms();
            let coarse = unix_ms_coarse();
            let after = unix_ms();
            // A tick is at most 10 ms (HZ >= 100); a second allows for a stalled VM. The
            // coarse clock never runs ahead.
            assert!(
                coarse <= after && coarse + 1000 >= before,
                "{before} {coarse} {after}"
            );
        }
    }

    #[test]
    fn every_value_lands_in_the_bucket_that_bounds_it() {
        for value in [
            0,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            15,
            16,
            1000,
            123_456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let (low, high) = bucket_bounds(bucket_of(value));
            assert!(low <= value, "{value} below {low}");
            assert!(value < high || high == u64::MAX, "{value} not below {high}");
            assert!(
                high - low <= low.max(4) / 4 || low < 4,
                "bucket of {value} too wide"
            );
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_come_within_an_eighth_of_the_values() {
        let b = Buckets::default();
        for v in 1..=1000u64 {
            b.record(v);
        }
        let counts = b.snapshot();
        for (q, exact) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = quantile(&counts, q);
            assert!(
                (got - exact).abs() / exact <= 0.125,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(quantile(&Buckets::default().snapshot(), 0.5), 0.0);
    }

    #[test]
    fn a_reset_is_a_baseline_the_reads_subtract() {
        let c = Counter::default();
        c.add(3);
        c.add_shared(2);
        assert_eq!(c.get(), 5);
        c.reset();
        assert_eq!(c.get(), 0);
        c.add(4);
        assert_eq!(c.get(), 4);
        let s = ShardCounters::new();
        s.record_latency(7, RequestKind::Read);
        s.record_latency(900, RequestKind::Update);
        s.record_latency(2, RequestKind::Other);
        let mut stats = ServerStats::new(0);
        stats.shards.push(Arc::new(s));
        assert_eq!(stats.latency_count_total(), (3, 909));
        assert_eq!(stats.latency_buckets().iter().sum::<u64>(), 3);
        assert_eq!(stats.latency_ms(), (0.002, 0.303, 0.9));
        stats.shards[0].reset();
        assert_eq!(stats.latency_count_total(), (0, 0));
        assert_eq!(stats.latency_buckets().iter().sum::<u64>(), 0);
        assert_eq!(stats.latency_ms(), (0.0, 0.0, 0.0));
    }

    #[test]
    fn leaving_looking_records_an_election() {
        let before = ELECTION_TIME_MS.count.load(Relaxed);
        let looking = LOOKING_COUNT.load(Relaxed);
        set_mode(Mode::Looking);
        set_mode(Mode::Follower);
        assert_eq!(LOOKING_COUNT.load(Relaxed), looking + 1);
        assert_eq!(ELECTION_TIME_MS.count.load(Relaxed), before + 1);
        assert_eq!(mode(), Mode::Follower);
        // Looking then read-only then following is one election.
        set_mode(Mode::Looking);
        set_mode(Mode::ReadOnly);
        assert_eq!(mode().isro(), "ro");
        set_mode(Mode::Leader);
        assert_eq!(LOOKING_COUNT.load(Relaxed), looking + 2);
        assert_eq!(ELECTION_TIME_MS.count.load(Relaxed), before + 2);
        set_mode(Mode::Standalone);
    }
}
