//! Per-thread measurements. Each generator thread owns one [`ThreadStats`] (its tasks share
//! it through `Rc<RefCell<..>>`: one runtime thread, no locks); the threads' stats are merged
//! once at the end. Latency histograms are in microseconds, 1 µs to 1 h, 3 significant
//! digits. Only completions inside the measured window go into histograms and window
//! counters; the `totals` count the whole run (warm-up and drain included), because they are
//! what the server's zxid advance is compared with.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use zoocore_proto::ErrorCode;

pub const LATENCY_US_MAX: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds")
}

/// What an operation was, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    /// A transaction on the server (create, delete, setData, multi): one zxid, ok or not.
    Write,
    /// A session opened and closed (session storm): two zxids.
    Session,
}

/// One second of the measured window.
#[derive(Debug, Clone)]
pub struct Second {
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    pub errors: u64,
    pub events: u64,
    pub latency: Histogram<u64>,
}

impl Second {
    fn new() -> Self {
        Self {
            ops: 0,
            reads: 0,
            writes: 0,
            errors: 0,
            events: 0,
            latency: histogram(),
        }
    }

    fn merge(&mut self, other: &Second) {
        self.ops += other.ops;
        self.reads += other.reads;
        self.writes += other.writes;
        self.errors += other.errors;
        self.events += other.events;
        self.latency.add(&other.latency).expect("same bounds");
    }
}

/// Whole-run counters, for accounting against the server.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub reads: u64,
    pub write_txns_ok: u64,
    /// Writes answered with an error: still one transaction each (an error txn).
    pub write_txns_failed: u64,
    pub sessions_opened: u64,
    pub sessions_closed: u64,
    /// Requests that got no answer because their connection failed.
    pub lost: u64,
}

#[derive(Debug, Clone)]
pub struct ThreadStats {
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub all: Histogram<u64>,
    pub reads: Histogram<u64>,
    pub writes: Histogram<u64>,
    pub events: Histogram<u64>,
    pub seconds: Vec<Second>,
    pub window_ops: u64,
    pub window_reads: u64,
    pub window_writes: u64,
    pub window_events: u64,
    pub window_write_ok: u64,
    pub errors: BTreeMap<i32, u64>,
    pub totals: Totals,
    pub sends: u64,
    pub late_sends: u64,
    /// Open-loop sends scheduled before the end that were never made.
    pub unsent: u64,
    pub send_lag_ns_max: u64,
    pub connection_failures: Vec<String>,
}

impl ThreadStats {
    pub fn new(window_start_ns: u64, window_end_ns: u64) -> Self {
        let seconds = (window_end_ns - window_start_ns).div_ceil(1_000_000_000) as usize;
        Self {
            window_start_ns,
            window_end_ns,
            all: histogram(),
            reads: histogram(),
            writes: histogram(),
            events: histogram(),
            seconds: (0..seconds).map(|_| Second::new()).collect(),
            window_ops: 0,
            window_reads: 0,
            window_writes: 0,
            window_events: 0,
            window_write_ok: 0,
            errors: BTreeMap::new(),
            totals: Totals::default(),
            sends: 0,
            late_sends: 0,
            unsent: 0,
            send_lag_ns_max: 0,
            connection_failures: Vec::new(),
        }
    }

    fn second(&mut self, now_ns: u64) -> Option<&mut Second> {
        if now_ns < self.window_start_ns || now_ns >= self.window_end_ns {
            return None;
        }
        let i = ((now_ns - self.window_start_ns) / 1_000_000_000) as usize;
        self.seconds.get_mut(i)
    }

    /// Records one completed operation at `now_ns` that was due at `intended_ns`.
    pub fn complete(&mut self, kind: Kind, err: ErrorCode, intended_ns: u64, now_ns: u64) {
        let ok = err == ErrorCode::OK;
        match (kind, ok) {
            (Kind::Read, _) => self.totals.reads += 1,
            (Kind::Write, true) => self.totals.write_txns_ok += 1,
            (Kind::Write, false) => self.totals.write_txns_failed += 1,
            (Kind::Session, _) => {}
        }
        let latency_us = (now_ns.saturating_sub(intended_ns) / 1000).clamp(1, LATENCY_US_MAX);
        let Some(second) = self.second(now_ns) else {
            return;
        };
        second.ops += 1;
        second.errors += u64::from(!ok);
        match kind {
            Kind::Read => second.reads += 1,
            Kind::Write | Kind::Session => second.writes += 1,
        }
        second.latency.saturating_record(latency_us);
        self.window_ops += 1;
        self.all.saturating_record(latency_us);
        match kind {
            Kind::Read => {
                self.window_reads += 1;
                self.reads.saturating_record(latency_us);
            }
            Kind::Write | Kind::Session => {
                self.window_writes += 1;
                self.window_write_ok += u64::from(ok);
                self.writes.saturating_record(latency_us);
            }
        }
        if !ok {
            *self.errors.entry(err.0).or_default() += 1;
        }
    }

    /// Records a request lost with its connection (counted as CONNECTION_LOSS).
    pub fn lost(&mut self, now_ns: u64) {
        self.totals.lost += 1;
        if let Some(second) = self.second(now_ns) {
            second.errors += 1;
            *self.errors.entry(ErrorCode::CONNECTION_LOSS.0).or_default() += 1;
        }
    }

    /// Records a watch event received at `now_ns` for a write sent at `sent_ns`.
    pub fn event(&mut self, sent_ns: u64, now_ns: u64) {
        let Some(second) = self.second(now_ns) else {
            return;
        };
        second.events += 1;
        self.window_events += 1;
        let latency_us = (now_ns.saturating_sub(sent_ns) / 1000).clamp(1, LATENCY_US_MAX);
        self.events.saturating_record(latency_us);
    }

    /// Records a send `lag_ns` behind its schedule (open loop).
    pub fn sent(&mut self, lag_ns: u64, late_ns: u64) {
        self.sends += 1;
        if lag_ns > late_ns {
            self.late_sends += 1;
        }
        self.send_lag_ns_max = self.send_lag_ns_max.max(lag_ns);
    }

    pub fn merge(&mut self, o: &ThreadStats) {
        self.all.add(&o.all).expect("same bounds");
        self.reads.add(&o.reads).expect("same bounds");
        self.writes.add(&o.writes).expect("same bounds");
        self.events.add(&o.events).expect("same bounds");
        for (a, b) in self.seconds.iter_mut().zip(&o.seconds) {
            a.merge(b);
        }
        self.window_ops += o.window_ops;
        self.window_reads += o.window_reads;
        self.window_writes += o.window_writes;
        self.window_events += o.window_events;
        self.window_write_ok += o.window_write_ok;
        for (code, n) in &o.errors {
            *self.errors.entry(*code).or_default() += n;
        }
        let t = &mut self.totals;
        t.reads += o.totals.reads;
        t.write_txns_ok += o.totals.write_txns_ok;
        t.write_txns_failed += o.totals.write_txns_failed;
        t.sessions_opened += o.totals.sessions_opened;
        t.sessions_closed += o.totals.sessions_closed;
        t.lost += o.totals.lost;
        self.sends += o.sends;
        self.late_sends += o.late_sends;
        self.unsent += o.unsent;
        self.send_lag_ns_max = self.send_lag_ns_max.max(o.send_lag_ns_max);
        self.connection_failures
            .extend(o.connection_failures.iter().cloned());
    }
}
