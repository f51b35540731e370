//! The member: one server's write pipeline, stepped by its driver.
//!
//! The driver feeds [`Input`]s with [`Member::step`] and, once per turn of its reactor,
//! takes the [`Effect`]s with [`Member::ready`] (raft-rs's Ready/advance). `ready` cuts the
//! next batch when none is waiting for its sync: everything queued (up to the batch limit)
//! goes through prep (validated against the working tree, given its zxid), the log append
//! and apply, and the batch is held until the driver reports, with [`Input::Synced`], that
//! the one fdatasync covering it completed. Only then is it published. The batch is held
//! inside the member and handed out only by the sync's completion, so "nothing is published
//! before it is durable" is a matter of types, not of the driver's care.
//!
//! Because the working tree is persistent, "apply at prep, publish after the sync" gives
//! ZooKeeper's outstanding-changes semantics for free: each request is checked against every
//! change before it, and no shard sees a change before it is durable.
//!
//! A full disk: each txn is appended to the log before it is applied, so a txn the log
//! refuses for lack of room (`LogError::NoSpace`, which leaves the log usable) is simply not
//! applied; the working tree never holds it, nothing needs undoing, and its zxid goes to the
//! next txn. Its client gets THROTTLEDOP ([`REFUSED_FOR_ROOM`]), reads go on from the
//! published tree, new sessions are still created from the log's small free-space reserve,
//! and since every write tries the log again, writes resume by themselves as soon as the
//! disk has room. Stopping instead would turn a full disk into an outage of reads too, and a
//! restart would find the same full disk. Any other log error, or a failed fdatasync, stops
//! the member ([`Effect::Stop`]): nothing more may be acknowledged, and the server recovers
//! from disk.
//!
//! Invariants, asserted as the pipeline goes (and in `check_invariants` at the end of each
//! step in debug builds): zxids appended strictly increase; every published entry is at or
//! below the durable zxid; every request taken into a batch is answered exactly once (an
//! entry, or the close of a connection whose handshake the disk had no room for); at most
//! one batch awaits its sync.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use thiserror::Error;
use zoocore_proto::{ErrorCode, Record, SessionId, Zxid};
use zoocore_storage::{
    Device, DeviceFile, Log, LogError, LogStats, SnapshotError, SnapshotInfo, SpareJob,
    SpareSegment, SyncRequest,
};
use zoocore_tree::{Applied, Op, OpResult, PrepContext, Tree, Txn};

use crate::cadence::Jitter;
use crate::msg::{
    CommitBatch, Committed, ConnId, CoreOp, CoreRequest, FromCore, Origin, Outcome, ShardId, ToCore,
};
use crate::sessions::ExpiryQueue;

/// The answer to a write the log had no room for. ZooKeeper's THROTTLEDOP (-127) means
/// "not executed at all, retry with back-off" (KeeperException.Code.THROTTLEDOP), which is
/// exactly the case: nothing was logged or applied. Clients treat it as a plain, definite
/// failure of that one request: the Java client throws ThrottledOpException and keeps the
/// session; the `zookeeper-client` crate returns `Error::Throttled` and counts it among the
/// errors that changed no data, so its lock recipes do not go looking for a node the write
/// might have created. SYSTEMERROR (-1) says nothing about whether the write happened, and
/// CONNECTIONLOSS would be a lie (clients retry it blindly, or must check).
pub const REFUSED_FOR_ROOM: ErrorCode = ErrorCode::THROTTLED_OP;

/// A full disk is reported at once, then at most this often while it lasts.
const REFUSAL_WARN_INTERVAL_MS: u64 = 10_000;

/// The time an input arrives at, as the driver read it. `mono_ms` is a monotonic clock's
/// milliseconds (session deadlines, timers); `wall_ms` the Unix time in milliseconds
/// (znodes' ctime and mtime, the log records' time, TTL). The member never reads a clock:
/// a driver that was frozen for ten seconds passes ten seconds more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

/// What a member is told at start.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// The first session id it hands out (`sessions::first_session_id`).
    pub first_session: i64,
    /// tickTime: the granularity of session deadlines.
    pub tick_ms: u64,
    /// snapCount: a snapshot starts after a random count between half of it and all of it.
    pub snap_count: u64,
    /// Seeds the snapshot points (the only randomness a member has).
    pub seed: u64,
    /// The most requests one batch (one fdatasync) takes.
    pub batch_txns_max: usize,
    /// forceSync: when false, batches are published without an fdatasync (ZooKeeper's
    /// `zookeeper.forceSync=no`, for tests and throwaway servers).
    pub force_sync: bool,
    /// znode.container.checkIntervalMs: how often containers and TTL nodes are looked at.
    pub container_check_interval_ms: u64,
    /// autopurge.purgeInterval in milliseconds; 0 never purges.
    pub purge_interval_ms: u64,
    /// autopurge.snapRetainCount.
    pub snap_retain_count: usize,
}

/// The sync handle of a device's files.
type SyncHandleOf<D> = <<D as Device>::File as DeviceFile>::SyncHandle;

/// One fdatasync for the driver to issue, covering the log up to [`SyncJob::zxid`]. It is
/// given back, with the result, in [`Input::Synced`]: the held batch is published then.
pub struct SyncJob<D: Device> {
    /// The segment file to fdatasync (the server opens it for io_uring by name).
    pub segment: String,
    /// The same sync as a handle that a synchronous driver (tests, the simulator) may call.
    pub request: SyncRequest<SyncHandleOf<D>>,
}

impl<D: Device> SyncJob<D> {
    pub fn zxid(&self) -> Zxid {
        self.request.zxid
    }
}

impl<D: Device> std::fmt::Debug for SyncJob<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncJob")
            .field("segment", &self.segment)
            .field("zxid", &self.request.zxid)
            .finish()
    }
}

/// What the driver tells a member.
#[derive(Debug)]
pub enum Input<D: Device> {
    /// A message from a shard.
    Shard(ToCore),
    /// Time passed: session deadlines, the container/TTL reaper and autopurge are checked.
    Tick,
    /// The fdatasync of a [`SyncJob`] completed (or failed: the member stops).
    Synced {
        job: SyncJob<D>,
        result: io::Result<()>,
    },
    /// The snapshot of an [`Effect::Snapshot`] was written (or failed; the next comes after
    /// another snapCount's worth of txns).
    SnapshotWritten {
        zxid: Zxid,
        result: Result<SnapshotInfo, SnapshotError>,
    },
    /// The job of an [`Effect::PrepareSegment`] ran.
    SegmentPrepared(io::Result<SpareSegment<D::File>>),
}

/// Why a member stopped. The server exits and recovers from disk on restart.
#[derive(Debug, Error)]
pub enum StopReason {
    #[error("the transaction log failed: {0}")]
    Log(#[from] LogError),
}

/// What a member asks its driver to do, in order.
#[derive(Debug)]
pub enum Effect<D: Device> {
    /// fdatasync the log (one for the whole batch) and give the job back as `Input::Synced`.
    Sync(SyncJob<D>),
    /// Send the batch to every shard. Everything in it is durable on this member.
    Publish(Arc<CommitBatch>),
    /// Send one message to one shard.
    Send { shard: ShardId, msg: FromCore },
    /// Write a snapshot of this pinned version of the tree, off the hot path, and report
    /// with `Input::SnapshotWritten`. Commits continue meanwhile (the version is immutable).
    Snapshot(Tree),
    /// Run the job (it zero-fills and syncs the next log segment) off the hot path, and
    /// give its result back as `Input::SegmentPrepared`.
    PrepareSegment(SpareJob<D>),
    /// Stop serving: nothing more may be acknowledged.
    Stop(StopReason),
}

/// Counters for mntr and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub batches: u64,
    pub txns: u64,
    pub batch_max: usize,
    /// Requests refused because the log had no room on the disk.
    pub refused_for_room: u64,
    /// Requests waiting for the next batch.
    pub queued: usize,
    /// Sessions whose expiry this member tracks.
    pub sessions: usize,
    pub snapshots: u64,
    pub snapshots_failed: u64,
    pub log: LogStats,
}

/// Writes refused for lack of room since the disk filled, for the rate-limited warning.
#[derive(Debug, Clone, Copy)]
struct Refusing {
    since_warning: u64,
    total: u64,
    warned_ms: u64,
}

/// A batch appended and applied, waiting for the sync that covers it.
#[derive(Debug)]
struct Pending {
    batch: CommitBatch,
    /// Connections whose handshake the log had no room for: closed once the batch is out.
    refused_connects: Vec<(ShardId, ConnId)>,
}

pub struct Member<D: Device> {
    cfg: MemberConfig,
    tree: Tree,
    epoch: u32,
    next_session: i64,
    expiry: ExpiryQueue,
    log: Log<D>,
    jitter: Jitter,
    /// Transactions logged since the last snapshot began, and the count that starts the next.
    since_snapshot: u64,
    snapshot_after: u64,
    snapshotting: bool,
    queue: VecDeque<CoreRequest>,
    /// Which connection holds each session, so a moved session's old connection is closed.
    owners: HashMap<SessionId, (ShardId, ConnId)>,
    /// Set while the disk is full.
    refusing: Option<Refusing>,
    /// The batch whose sync is in flight; at most one.
    unsynced: Option<Pending>,
    effects: Vec<Effect<D>>,
    stopped: bool,
    now: Now,
    next_reap_ms: u64,
    next_purge_ms: Option<u64>,
    /// Everything up to here is durable on this member: what recovery found, then each
    /// completed sync.
    zxid_durable: Zxid,
    /// The highest zxid a published entry carried.
    zxid_published: Zxid,
    counters: Counters,
}

impl<D: Device> Member<D> {
    /// A member over a recovered tree and log; every session in the tree is given its full
    /// timeout from `now` (ZooKeeper does the same after a restart).
    pub fn new(cfg: MemberConfig, tree: Tree, log: Log<D>, now: Now) -> Self {
        assert!(cfg.batch_txns_max > 0, "a batch takes at least one request");
        let mut jitter = Jitter::new(cfg.seed);
        let snapshot_after = jitter.snapshot_after(cfg.snap_count);
        let zxid_durable = tree.last_zxid().max(log.synced_zxid());
        let mut member = Member {
            epoch: tree.last_zxid().epoch(),
            next_session: cfg.first_session,
            expiry: ExpiryQueue::new(cfg.tick_ms),
            jitter,
            since_snapshot: 0,
            snapshot_after,
            snapshotting: false,
            queue: VecDeque::new(),
            owners: HashMap::new(),
            refusing: None,
            unsynced: None,
            effects: Vec::new(),
            stopped: false,
            now,
            next_reap_ms: now.mono_ms + cfg.container_check_interval_ms,
            next_purge_ms: (cfg.purge_interval_ms > 0).then(|| now.mono_ms + cfg.purge_interval_ms),
            zxid_durable,
            zxid_published: tree.last_zxid(),
            counters: Counters::default(),
            tree,
            log,
            cfg,
        };
        member.track_all_sessions();
        member
    }

    /// The working tree: every change appended, durable or not.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn log(&self) -> &Log<D> {
        &self.log
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    pub fn counters(&self) -> Counters {
        Counters {
            queued: self.queue.len(),
            sessions: self.expiry.len(),
            log: self.log.stats(),
            ..self.counters
        }
    }

    /// Takes one input. Effects it causes wait for [`Member::ready`]. A stopped member
    /// ignores everything.
    pub fn step(&mut self, now: Now, input: Input<D>) {
        self.advance_time(now);
        if self.stopped {
            return;
        }
        match input {
            Input::Shard(msg) => self.on_shard(msg),
            Input::Tick => self.on_tick(),
            Input::Synced { job, result } => self.on_synced(job, result),
            Input::SnapshotWritten { zxid, result } => self.on_snapshot_written(zxid, result),
            Input::SegmentPrepared(result) => self.on_segment_prepared(result),
        }
        self.check_invariants();
    }

    /// The effects to carry out, in order. Cuts the next batch first when no sync is in
    /// flight, so everything that arrived during a sync goes into one batch (group commit).
    /// A driver calls this until it returns nothing, and again after each input it steps.
    pub fn ready(&mut self, now: Now) -> Vec<Effect<D>> {
        self.advance_time(now);
        if !self.stopped && self.unsynced.is_none() && !self.queue.is_empty() {
            self.cut_batch();
        }
        self.check_invariants();
        std::mem::take(&mut self.effects)
    }

    fn advance_time(&mut self, now: Now) {
        // The monotonic clock cannot go back; the wall clock may (NTP), and is only stamped.
        assert!(
            now.mono_ms >= self.now.mono_ms,
            "monotonic time {} before {}",
            now.mono_ms,
            self.now.mono_ms
        );
        self.now = now;
    }

    fn on_shard(&mut self, msg: ToCore) {
        let now_ms = self.now.mono_ms;
        match msg {
            ToCore::Request(req) => {
                if req.session.0 != 0 {
                    self.expiry.touch(req.session, now_ms);
                }
                self.queue.push_back(req);
            }
            ToCore::Touch(sessions) => {
                for s in sessions {
                    self.expiry.touch(s, now_ms);
                }
            }
            ToCore::Attach {
                session,
                shard,
                conn,
                ..
            } => {
                self.expiry.touch(session, now_ms);
                if let Some(old) = self.owners.insert(session, (shard, conn)) {
                    if old != (shard, conn) {
                        self.effects.push(Effect::Send {
                            shard: old.0,
                            msg: FromCore::CloseConnection {
                                conn: old.1,
                                session,
                            },
                        });
                    }
                }
            }
        }
    }

    /// Session expiry as ZooKeeper's SessionTracker, the container/TTL reaper as its
    /// ContainerManager, autopurge as its PurgeTxnLog timer. The expiries and deletions are
    /// queued as requests: they go through prep like any other, which re-checks them.
    fn on_tick(&mut self) {
        let now = self.now;
        for session in self.expiry.expire(now.mono_ms) {
            tracing::info!("session {session} expired");
            self.queue.push_back(CoreRequest {
                origin: None,
                session,
                auth: Arc::from([]),
                op: CoreOp::Tree(Op::CloseSession { session }),
            });
        }
        if now.mono_ms >= self.next_reap_ms {
            for path in self.tree.expired_nodes(now.wall_ms) {
                self.queue.push_back(CoreRequest {
                    origin: None,
                    session: SessionId(0),
                    auth: Arc::from([]),
                    op: CoreOp::Tree(Op::DeleteContainer { path }),
                });
            }
            self.next_reap_ms = now.mono_ms + self.cfg.container_check_interval_ms;
        }
        if self.next_purge_ms.is_some_and(|at| now.mono_ms >= at) {
            // Removals through the device, like the appends: a few unlink calls, and the
            // log's list of segments must change with them.
            match zoocore_storage::purge(&mut self.log, self.cfg.snap_retain_count) {
                Ok(removed) => tracing::info!("autopurge removed {removed:?}"),
                Err(e) => tracing::warn!("autopurge failed: {e}"),
            }
            self.next_purge_ms = Some(now.mono_ms + self.cfg.purge_interval_ms);
        }
    }

    fn on_synced(&mut self, job: SyncJob<D>, result: io::Result<()>) {
        let pending = self
            .unsynced
            .take()
            .expect("a sync completes only while its batch waits");
        match self.log.sync_end(job.request, result) {
            Ok(durable) => {
                self.zxid_durable = self.zxid_durable.max(durable);
                self.publish(pending);
            }
            // The batch is dropped unpublished: none of it may be acknowledged.
            Err(e) => self.stop(e.into()),
        }
    }

    fn on_snapshot_written(&mut self, zxid: Zxid, result: Result<SnapshotInfo, SnapshotError>) {
        assert!(
            self.snapshotting,
            "snapshot at {zxid} completed, none running"
        );
        self.snapshotting = false;
        match result {
            Ok(_) => self.counters.snapshots += 1,
            Err(_) => self.counters.snapshots_failed += 1,
        }
    }

    fn on_segment_prepared(&mut self, result: io::Result<SpareSegment<D::File>>) {
        if let Err(e) = self.log.adopt_next_segment(result) {
            tracing::warn!("could not prepare the next log segment ahead: {e}");
        }
        self.log_notices();
    }

    fn stop(&mut self, reason: StopReason) {
        tracing::error!("stopping: {reason}");
        self.stopped = true;
        self.unsynced = None;
        self.effects.push(Effect::Stop(reason));
    }

    /// The pipeline of one batch: prep, append and apply each request, then hold the batch
    /// for its sync (or publish it when nothing new needs one).
    fn cut_batch(&mut self) {
        assert!(self.unsynced.is_none(), "one batch in flight at a time");
        let n = self.queue.len().min(self.cfg.batch_txns_max);
        let taken: Vec<CoreRequest> = self.queue.drain(..n).collect();
        let asked = taken.iter().filter(|r| r.origin.is_some()).count();
        let mut entries = Vec::with_capacity(n);
        let mut refused_connects = Vec::new();
        for req in taken {
            match self.prep_and_apply(req, &mut refused_connects) {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(e) => return self.stop(e.into()),
            }
        }
        let answered = entries.iter().filter(|e| e.origin.is_some()).count();
        assert_eq!(
            answered + refused_connects.len(),
            asked,
            "every request of a batch is answered once"
        );
        self.counters.batches += 1;
        self.counters.txns += entries.len() as u64;
        self.counters.batch_max = self.counters.batch_max.max(entries.len());
        let pending = Pending {
            batch: CommitBatch {
                view: self.tree.clone(),
                entries,
            },
            refused_connects,
        };
        if !self.cfg.force_sync {
            return self.publish(pending);
        }
        match self.log.sync_begin() {
            Ok(Some(request)) => {
                let segment = self
                    .log
                    .segments()
                    .last()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                self.unsynced = Some(pending);
                self.effects
                    .push(Effect::Sync(SyncJob { segment, request }));
            }
            // Nothing was appended (syncs, refusals): what the entries carry is durable.
            Ok(None) => self.publish(pending),
            Err(e) => self.stop(e.into()),
        }
    }

    /// Hands a durable batch to the shards, then whatever its commit makes due: the
    /// refused handshakes' closes, a snapshot, the next log segment.
    fn publish(&mut self, pending: Pending) {
        for entry in &pending.batch.entries {
            assert!(
                entry.zxid >= self.zxid_published,
                "entry at {} published after {}",
                entry.zxid,
                self.zxid_published
            );
            assert!(
                !self.cfg.force_sync || entry.zxid <= self.zxid_durable,
                "entry at {} published with only {} durable",
                entry.zxid,
                self.zxid_durable
            );
            self.zxid_published = entry.zxid;
        }
        self.effects.push(Effect::Publish(Arc::new(pending.batch)));
        for (shard, conn) in pending.refused_connects {
            // Session 0: the connection is still in its handshake.
            self.effects.push(Effect::Send {
                shard,
                msg: FromCore::CloseConnection {
                    conn,
                    session: SessionId(0),
                },
            });
        }
        self.log_notices();
        self.snapshot_if_due();
        if let Some(job) = self.log.next_segment_job() {
            self.effects.push(Effect::PrepareSegment(job));
        }
    }

    /// A pinned version of the tree to snapshot once enough transactions were logged since
    /// the last one began, and none is being written.
    fn snapshot_if_due(&mut self) {
        if self.snapshotting || self.since_snapshot < self.snapshot_after {
            return;
        }
        self.since_snapshot = 0;
        self.snapshot_after = self.jitter.snapshot_after(self.cfg.snap_count).max(1);
        self.snapshotting = true;
        self.effects.push(Effect::Snapshot(self.tree.clone()));
    }

    /// Logs what the log reports (segments preallocated short for lack of room).
    fn log_notices(&mut self) {
        while let Some(notice) = self.log.next_notice() {
            tracing::warn!("{notice}");
        }
    }

    /// Appends a txn's record to the log. `Ok(false)`: the log had no room and the txn must
    /// not be applied. Sessions being created or closed may draw on the log's free-space
    /// reserve (`Log::append_may_use_reserve`): on a full disk clients can still connect
    /// and read, also after a restart, and expired sessions still go.
    fn log_txn(&mut self, zxid: Zxid, record: &[u8], session_txn: bool) -> Result<bool, LogError> {
        assert!(
            zxid > self.log.last_zxid(),
            "zxid {zxid} not after {}",
            self.log.last_zxid()
        );
        let wall_ms = self.now.wall_ms;
        let appended = if session_txn {
            self.log.append_may_use_reserve(zxid, wall_ms, record)
        } else {
            self.log.append(zxid, wall_ms, record)
        };
        match appended {
            Ok(()) => {
                self.since_snapshot += 1;
                if let Some(r) = self.refusing.take() {
                    tracing::warn!(
                        "the log has room again: writes resume ({} refused while the disk was full)",
                        r.total
                    );
                }
                Ok(true)
            }
            Err(e) if e.is_no_space() => {
                self.refused(&e);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts a refusal; warns at the first and then every `REFUSAL_WARN_INTERVAL_MS`.
    fn refused(&mut self, e: &LogError) {
        let now_ms = self.now.mono_ms;
        self.counters.refused_for_room += 1;
        let r = self.refusing.get_or_insert(Refusing {
            since_warning: 0,
            total: 0,
            warned_ms: 0,
        });
        r.since_warning += 1;
        r.total += 1;
        if r.total == 1 || now_ms.saturating_sub(r.warned_ms) >= REFUSAL_WARN_INTERVAL_MS {
            tracing::warn!(
                "refusing writes ({} since the last warning, {} in all) with THROTTLEDOP: {e}",
                r.since_warning,
                r.total
            );
            r.since_warning = 0;
            r.warned_ms = now_ms;
        }
    }

    /// The answer to a request the log had no room for: nothing changed, so it carries the
    /// last zxid and triggers no watch.
    fn refused_entry(&self, origin: Option<Origin>) -> Committed {
        Committed {
            zxid: self.tree.last_zxid(),
            origin,
            outcome: Outcome::Applied(Applied {
                result: OpResult::Error(REFUSED_FOR_ROOM),
                triggers: Vec::new(),
                stale: false,
            }),
            closed_session: None,
        }
    }

    fn next_zxid(&self) -> Zxid {
        let last = self.tree.last_zxid();
        if last.epoch() < self.epoch {
            Zxid::new(self.epoch, 1)
        } else {
            last.next()
        }
    }

    /// One request through prep, the log and apply; returns its entry (none for a new
    /// session the log had no room for: its connection is to be closed instead).
    fn prep_and_apply(
        &mut self,
        req: CoreRequest,
        refused_connects: &mut Vec<(ShardId, ConnId)>,
    ) -> Result<Option<Committed>, LogError> {
        let CoreRequest {
            origin,
            session,
            auth,
            op,
        } = req;
        let zxid = self.next_zxid();
        let wall_ms = self.now.wall_ms;
        let op = match op {
            CoreOp::Sync { path } => {
                return Ok(Some(Committed {
                    zxid: self.tree.last_zxid(),
                    origin,
                    outcome: Outcome::Synced { path },
                    closed_session: None,
                }));
            }
            CoreOp::CreateSession { timeout_ms } => {
                return self.create_session(origin, &auth, timeout_ms, zxid, refused_connects);
            }
            CoreOp::Tree(op) => op,
        };
        let closes = match &op {
            Op::CloseSession { session } => Some(*session),
            _ => None,
        };
        let txn = if origin.is_some() && !self.tree.session_exists(session) {
            Txn::Error(ErrorCode::SESSION_EXPIRED)
        } else {
            self.tree.prepare(
                &op,
                &PrepContext {
                    session,
                    auth: &auth,
                    zxid,
                    time_ms: wall_ms,
                },
            )
        };
        if !self.log_txn(zxid, &txn.to_bytes(), closes.is_some())? {
            if let (Some(s), None) = (closes, origin) {
                self.rearm_refused_expiry(s);
            }
            return Ok(Some(self.refused_entry(origin)));
        }
        let applied = self.tree.apply(zxid, wall_ms, &txn);
        let closed_session = match closes {
            Some(s) if !self.tree.session_exists(s) => {
                self.expiry.remove(s);
                self.owners.remove(&s);
                Some(s)
            }
            _ => None,
        };
        Ok(Some(Committed {
            zxid,
            origin,
            outcome: Outcome::Applied(applied),
            closed_session,
        }))
    }

    fn create_session(
        &mut self,
        origin: Option<Origin>,
        auth: &[zoocore_proto::Id],
        timeout_ms: i32,
        zxid: Zxid,
        refused_connects: &mut Vec<(ShardId, ConnId)>,
    ) -> Result<Option<Committed>, LogError> {
        let new = SessionId(self.next_session);
        let wall_ms = self.now.wall_ms;
        let txn = self.tree.prepare(
            &Op::CreateSession {
                session: new,
                timeout_ms,
            },
            &PrepContext {
                session: new,
                auth,
                zxid,
                time_ms: wall_ms,
            },
        );
        if !self.log_txn(zxid, &txn.to_bytes(), true)? {
            // The handshake has no error code to carry (ConnectResponse has none): close
            // the connection, as ZooKeeper does with a handshake it cannot serve; the
            // client reconnects.
            if let Some(o) = origin {
                refused_connects.push((o.shard, o.conn));
            }
            return Ok(None);
        }
        self.next_session += 1;
        self.tree.apply(zxid, wall_ms, &txn);
        self.expiry
            .add(new, timeout_ms.max(0) as u32, self.now.mono_ms);
        if let Some(o) = origin {
            self.owners.insert(new, (o.shard, o.conn));
        }
        Ok(Some(Committed {
            zxid,
            origin,
            outcome: Outcome::SessionCreated {
                session: new,
                timeout_ms,
            },
            closed_session: None,
        }))
    }

    /// An expiry the log had no room for: the session is still in the tree, so it must come
    /// due again (its deadline was taken off the queue when it expired).
    fn rearm_refused_expiry(&mut self, session: SessionId) {
        let timeout = self
            .tree
            .sessions()
            .find(|(id, _)| *id == session)
            .map(|(_, t)| t);
        if let Some(timeout) = timeout {
            self.expiry
                .add(session, timeout.max(0) as u32, self.now.mono_ms);
        }
    }

    /// Arms expiry for every session in the tree (after a restart).
    fn track_all_sessions(&mut self) {
        let sessions: Vec<_> = self.tree.sessions().collect();
        for (s, timeout) in sessions {
            self.expiry.add(s, timeout.max(0) as u32, self.now.mono_ms);
        }
    }

    /// The pipeline's invariants between steps; a walk over the pending batch, so debug
    /// builds only (the per-append and per-publish assertions stay on in release).
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        assert!(
            self.log.synced_zxid() <= self.log.last_zxid(),
            "synced {} past appended {}",
            self.log.synced_zxid(),
            self.log.last_zxid()
        );
        assert!(
            self.zxid_published <= self.tree.last_zxid(),
            "published {} past the working tree {}",
            self.zxid_published,
            self.tree.last_zxid()
        );
        if let Some(p) = &self.unsynced {
            assert!(self.cfg.force_sync, "a batch awaits a sync that is off");
            assert!(!self.stopped, "a stopped member holds no batch");
            let mut last = self.zxid_published;
            for e in &p.batch.entries {
                assert!(e.zxid >= last, "entry at {} after {last}", e.zxid);
                last = e.zxid;
            }
            assert_eq!(
                p.batch.view.last_zxid(),
                self.tree.last_zxid(),
                "the working tree moved while a batch awaits its sync"
            );
        }
        if self.stopped {
            assert!(
                self.effects.iter().all(|e| !matches!(e, Effect::Sync(_))),
                "a stopped member asks for no sync"
            );
        }
    }
}
