//! Server-wide listings for the four-letter words that enumerate connections and watches
//! (cons, stat, crst, wchs, wchc, wchp, mntr's watch count), gathered from every shard.
//!
//! Connections and watches live on their shard's thread, so a listing is collected rather
//! than read: the asking connection bumps a request generation; each shard's reporter (a
//! short timer on the shard) sees it, writes its part under its own mutex and marks the
//! generation done; the asker waits, bounded, for all parts. Nothing here touches the request
//! path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::shard::Shard;

/// How often a shard looks for a request, and how long an asker waits for every part.
pub const POLL: Duration = Duration::from_millis(5);
const WAIT_MAX: Duration = Duration::from_millis(500);

/// One connection's figures, for the admin server's JSON (`connections`, `stats`).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub addr: std::net::SocketAddr,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    pub session: i64,
    pub last_op: &'static str,
    pub established_ms: u64,
    pub timeout_ms: i32,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: u64,
}

/// One shard's part of a listing.
#[derive(Debug, Clone, Default)]
pub struct ShardReport {
    pub generation: u64,
    /// The shard's tree view (a cheap persistent clone), for the admin server's dump and
    /// hash; `None` until the shard first reports.
    pub view: Option<zoocore_tree::Tree>,
    pub conns: Vec<ConnInfo>,
    /// `cons` lines, and the short form `stat` prints.
    pub cons: Vec<String>,
    pub brief: Vec<String>,
    /// dump's connection lines.
    pub dump: Vec<String>,
    /// Watched path → sessions, and session → watched paths.
    pub by_path: BTreeMap<String, Vec<i64>>,
    pub by_session: BTreeMap<i64, Vec<String>>,
    pub watchers: usize,
    pub watches: usize,
}

#[derive(Debug)]
pub struct Reports {
    requested: AtomicU64,
    resets: AtomicU64,
    parts: Vec<Mutex<(u64, ShardReport)>>,
}

impl Reports {
    pub fn new(shards: usize) -> Self {
        Reports {
            requested: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            parts: (0..shards)
                .map(|_| Mutex::new((0, ShardReport::default())))
                .collect(),
        }
    }

    /// On shard `index`'s thread: answer a pending request (and a pending crst) if any.
    pub fn serve(&self, index: usize, shard: &mut Shard) {
        let wanted = self.requested.load(Ordering::Acquire);
        let resets = self.resets.load(Ordering::Acquire);
        let mut part = self.parts[index].lock().unwrap_or_else(|e| e.into_inner());
        if part.0 < resets {
            shard.reset_connection_stats();
            part.0 = resets;
        }
        if part.1.generation < wanted {
            part.1 = build(shard, wanted);
        }
    }

    /// Asks every shard for its part and waits for them (bounded: a shard that does not
    /// answer in time contributes its last part).
    pub async fn collect(&self) -> Vec<ShardReport> {
        let (wanted, deadline) = self.ask();
        loop {
            if let Some(parts) = self.parts_if_done(wanted, deadline) {
                return parts;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    /// `collect` for a thread outside the executors (the admin and metrics servers).
    pub fn collect_blocking(&self) -> Vec<ShardReport> {
        let (wanted, deadline) = self.ask();
        loop {
            if let Some(parts) = self.parts_if_done(wanted, deadline) {
                return parts;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `reset` for a thread outside the executors.
    pub fn reset_blocking(&self) {
        self.resets.fetch_add(1, Ordering::AcqRel);
        let _ = self.collect_blocking();
    }

    fn ask(&self) -> (u64, Instant) {
        let wanted = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        (wanted, Instant::now() + WAIT_MAX)
    }

    fn parts_if_done(&self, wanted: u64, deadline: Instant) -> Option<Vec<ShardReport>> {
        let parts: Vec<ShardReport> = self
            .parts
            .iter()
            .map(|p| p.lock().unwrap_or_else(|e| e.into_inner()).1.clone())
            .collect();
        (parts.iter().all(|p| p.generation >= wanted) || Instant::now() >= deadline)
            .then_some(parts)
    }

    /// crst: every shard resets its connections' figures at its next look.
    pub async fn reset(&self) {
        self.resets.fetch_add(1, Ordering::AcqRel);
        // A listing after the reset shows the reset figures.
        let _ = self.collect().await;
    }
}

fn build(shard: &Shard, generation: u64) -> ShardReport {
    let mut report = ShardReport {
        generation,
        view: Some(shard.view().clone()),
        ..ShardReport::default()
    };
    let mut ids: Vec<_> = shard.conns.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let c = &shard.conns[&id];
        let queued = shard.queue_len(id);
        let mut line = String::new();
        let _ = write!(
            line,
            " /{}[1](queued={queued},recved={},sent={},sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat=0,minlat=0,avglat=0,maxlat=0)",
            c.addr,
            c.stats.received,
            c.stats.sent,
            c.session.0,
            crate::fourlw::op_name(c.stats.last_op),
            c.stats.established_ms,
            c.timeout_ms,
            c.stats.last_cxid,
            shard.view().last_zxid().0,
            c.stats.last_response_ms,
        );
        report.cons.push(line);
        report.conns.push(ConnInfo {
            addr: c.addr,
            queued,
            received: c.stats.received,
            sent: c.stats.sent,
            session: c.session.0,
            last_op: crate::fourlw::op_name(c.stats.last_op),
            established_ms: c.stats.established_ms,
            timeout_ms: c.timeout_ms,
            last_cxid: c.stats.last_cxid,
            last_zxid: shard.view().last_zxid().0,
            last_response_ms: c.stats.last_response_ms,
        });
        report
            .dump
            .push(format!("\tip: /{} sessionId: 0x{:x}", c.addr, c.session.0));
        report.brief.push(format!(
            " /{}[1](queued={queued},recved={},sent={})",
            c.addr, c.stats.received, c.stats.sent
        ));
    }
    let session = |conn| shard.session_of(conn).map_or(0, |s| s.0);
    for (path, conns) in shard.watches.by_path() {
        report
            .by_path
            .insert(path, conns.into_iter().map(session).collect());
    }
    for (conn, paths) in shard.watches.by_watcher() {
        report
            .by_session
            .entry(session(conn))
            .or_default()
            .extend(paths);
    }
    report.watchers = shard.watches.watcher_count();
    report.watches = shard.watches.watch_count();
    report
}

/// The merged `wchs` figures: connections watching, distinct paths, total watches.
pub fn watch_summary(parts: &[ShardReport]) -> (usize, usize, usize) {
    let paths: BTreeSet<&String> = parts.iter().flat_map(|p| p.by_path.keys()).collect();
    (
        parts.iter().map(|p| p.watchers).sum(),
        paths.len(),
        parts.iter().map(|p| p.watches).sum(),
    )
}

/// The merged `wchp` map: path → sessions.
pub fn by_path(parts: &[ShardReport]) -> BTreeMap<String, Vec<i64>> {
    let mut all: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for p in parts {
        for (path, sessions) in &p.by_path {
            all.entry(path.clone()).or_default().extend(sessions);
        }
    }
    all
}

/// The merged `wchc` map: session → paths.
pub fn by_session(parts: &[ShardReport]) -> BTreeMap<i64, Vec<String>> {
    let mut all: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for p in parts {
        for (session, paths) in &p.by_session {
            all.entry(*session)
                .or_default()
                .extend(paths.iter().cloned());
        }
    }
    all
}
