//! The member: one server's write pipeline, stepped by its driver.
//!
//! The driver feeds [`Input`]s with [`Member::step`] and, once per turn of its reactor,
//! takes the [`Effect`]s with [`Member::ready`] (raft-rs's Ready/advance). What a member
//! decides is the same whatever its quorum: requests are queued here, prepped against the
//! newest tree by one `prep` function, sessions are touched, owned, created, closed and
//! expired by one set of methods, containers and TTL nodes are reaped by one reaper, and
//! every commit goes out through one publication with the same snapshot and segment
//! cadence. Whether a txn is committed is the zab `Replica`'s decision (`ensemble.rs`),
//! for an ensemble and for a standalone server alike: a standalone server is a one-voter
//! ensemble, which elects itself at once and commits each txn when its own fdatasync
//! covers it. Only what it reports differs (`Role::Standalone`). A full disk's refusals
//! are the leader's, whichever ensemble it leads (`room.rs`).
//!
//! Durability ordering is in the types: a batch, or a commit, reaches the shards only
//! through `publish`, which asserts that everything it carries is at or below the zxid this
//! member knows durable (`zxid_durable`), and that zxid moves only on `Input::Synced` (the
//! driver's fdatasync completion), at recovery, or on a snapshot installed durably.
//!
//! Invariants, asserted as the pipeline goes (and in `check_invariants` at the end of each
//! step in debug builds): zxids appended strictly increase; every published entry is at or
//! below the durable zxid and published zxids never go back; at most one fdatasync is in
//! flight.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use thiserror::Error;
use zoocore_proto::{DecodeError, ErrorCode, Id, SessionId, Zxid};
use zoocore_storage::{
    Device, DeviceFile, Log, LogError, LogStats, SnapshotError, SnapshotInfo, SpareJob,
    SpareSegment, SyncRequest,
};
use zoocore_tree::{Op, PrepContext, Tree, Txn};
use zoocore_zab::{Epoch, Frame, Message};

use crate::cadence::Jitter;
use crate::ensemble::{EnsembleConfig, Replicated};
use crate::forward::{Forward, Route};
use crate::msg::{CommitBatch, ConnId, CoreOp, FromCore, Origin, ShardId, ToCore};
use crate::room::Room;
use crate::sessions::ExpiryQueue;
use zoocore_zab::{Config as ZabConfig, Durable};

/// The answer to a write the log had no room for. ZooKeeper's THROTTLEDOP (-127) means
/// "not executed at all, retry with back-off" (KeeperException.Code.THROTTLEDOP), which is
/// exactly the case: nothing was logged or applied. Clients treat it as a plain, definite
/// failure of that one request: the Java client throws ThrottledOpException and keeps the
/// session; the `zookeeper-client` crate returns `Error::Throttled` and counts it among the
/// errors that changed no data, so its lock recipes do not go looking for a node the write
/// might have created. SYSTEMERROR (-1) says nothing about whether the write happened, and
/// CONNECTIONLOSS would be a lie (clients retry it blindly, or must check).
pub const REFUSED_FOR_ROOM: ErrorCode = ErrorCode::THROTTLED_OP;

/// The time an input arrives at, as the driver read it. `mono_ms` is a monotonic clock's
/// milliseconds (session deadlines, timers, the replica's limits); `wall_ms` the Unix time
/// in milliseconds (znodes' ctime and mtime, the log records' time, TTL). The member never
/// reads a clock: a driver that was frozen for ten seconds passes ten seconds more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

/// What a member is told at start, whatever its quorum.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    /// The first session id it hands out (`sessions::first_session_id`).
    pub first_session: i64,
    /// tickTime: the granularity of session deadlines.
    pub tick_ms: u64,
    /// snapCount: a snapshot starts after a random count between half of it and all of it.
    pub snap_count: u64,
    /// Seeds the snapshot points (with the replica's seed, the only randomness a member has).
    pub seed: u64,
    /// The most requests one batch takes.
    pub batch_txns_max: usize,
    /// forceSync: when false, nothing is fdatasynced (ZooKeeper's `zookeeper.forceSync=no`,
    /// for tests and throwaway servers).
    pub force_sync: bool,
    /// znode.container.checkIntervalMs: how often containers and TTL nodes are looked at.
    pub container_check_interval_ms: u64,
    /// autopurge.purgeInterval in milliseconds; 0 never purges.
    pub purge_interval_ms: u64,
    /// autopurge.snapRetainCount.
    pub snap_retain_count: usize,
    /// enforceQuota (ZooKeeper's `zookeeper.enforceQuota`): hard quotas refuse writes.
    pub enforce_quota: bool,
}

/// What a member does in its ensemble, as srvr/stat/mntr report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Standalone,
    /// An ensemble member without a leader: it serves no client.
    Looking,
    /// An ensemble member without a leader that serves read-only sessions from its last
    /// tree (`readonlymode.enabled`): writes are answered NOTREADONLY.
    ReadOnly,
    Follower,
    Leader,
    Observer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Looking => "looking",
            Role::ReadOnly => "read-only",
            Role::Follower => "follower",
            Role::Leader => "leader",
            Role::Observer => "observer",
        }
    }
}

/// The sync handle of a device's files.
type SyncHandleOf<D> = <<D as Device>::File as DeviceFile>::SyncHandle;

/// One fdatasync for the driver to issue, covering the log up to [`SyncJob::zxid`]. It is
/// given back, with the result, in [`Input::Synced`]: what waited for it is released then.
pub struct SyncJob<D: Device> {
    /// The segment file to fdatasync (the server opens it for io_uring by name).
    pub segment: String,
    /// The same sync as a handle that a synchronous driver (tests, the simulator) may call.
    pub request: SyncRequest<SyncHandleOf<D>>,
    /// The replica's token, on an ensemble member.
    pub(crate) token: Option<u64>,
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
    /// Time passed: session deadlines, the reaper, autopurge and the replica's limits are
    /// checked. The server ticks at least every half tickTime (ensemble: every 50 ms).
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
    /// A ZAB message from another member.
    Peer { from: u64, msg: Message },
    /// A member-level message from another member (forwarded requests, touches, syncs).
    Forward { from: u64, msg: Forward },
    /// The link with `peer` closed or was reset, or a frame for it could not be queued.
    PeerLost { peer: u64 },
    /// The epoch files of an [`Effect::PersistEpochs`] were written durably (or not).
    EpochsPersisted {
        accepted: Epoch,
        current: Epoch,
        result: io::Result<()>,
    },
    /// The SNAP frame of an [`Effect::BuildSnap`], serialised.
    SnapBuilt {
        to: u64,
        id: u64,
        frame: Result<Frame, SnapshotError>,
    },
    /// An operator asks to move leadership (4lw `rqld`/`ydld`, the admin commands).
    Leadership(LeadershipAsk),
    /// An operator's snapshot (the admin `restore` command) replaces this standalone
    /// member's data; its outcome is then in [`Member::take_restored`]. (Not an `Effect`:
    /// the simulator matches every effect, and a restore is an operator's act it never
    /// makes.)
    Restore(Tree),
}

/// Why a restore was not done.
#[derive(Debug, Error)]
pub enum RestoreError {
    #[error("restore is refused on an ensemble member: a snapshot loaded on one member would diverge from the others' (restore a standalone server, then start the ensemble from its data)")]
    Ensemble,
    #[error("cannot write the restored snapshot: {0}")]
    Write(#[from] SnapshotError),
    #[error("cannot stamp the restored data at {zxid}: {why}")]
    Stamp { zxid: Zxid, why: String },
}

/// How an operator wants leadership moved (docs/OPERATIONS.md, rolling maintenance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadershipAsk {
    /// This follower asks its leader to hand over to it (ClickHouse Keeper's `rqld`).
    Request,
    /// This leader hands over to `to`, or to its most up-to-date follower.
    Yield { to: Option<u64> },
}

/// Why a member stopped. The server exits and recovers from disk on restart.
#[derive(Debug, Error)]
pub enum StopReason {
    #[error("the transaction log failed: {0}")]
    Log(#[from] LogError),
    #[error("undecodable payload at {zxid}: {source}")]
    Payload { zxid: Zxid, source: DecodeError },
    #[error("undecodable txn at {zxid}: {source}")]
    Txn { zxid: Zxid, source: DecodeError },
    #[error("cannot write the epoch files: {0}")]
    Epochs(io::Error),
    #[error("the leader's SNAP at {zxid}: {source}")]
    Snap { zxid: Zxid, source: SnapshotError },
    #[error("cannot serialise a snapshot for SNAP: {0}")]
    SnapBuild(SnapshotError),
}

/// What a member asks its driver to do, in order.
#[derive(Debug)]
pub enum Effect<D: Device> {
    /// fdatasync the log (one for everything appended) and give the job back as
    /// `Input::Synced`.
    Sync(SyncJob<D>),
    /// Send the batch to every shard. Everything in it is durable on this member.
    Publish(Arc<CommitBatch>),
    /// Send one message to one shard.
    Send { shard: ShardId, msg: FromCore },
    /// Close every client connection (this member lost its leader).
    CloseAll,
    /// Write a snapshot of this pinned version of the tree, off the hot path, and report
    /// with `Input::SnapshotWritten`. Commits continue meanwhile (the version is immutable).
    Snapshot(Tree),
    /// Run the job (it preallocates and syncs the next log segment) off the hot path, and
    /// give its result back as `Input::SegmentPrepared`.
    PrepareSegment(SpareJob<D>),
    /// Queue a frame for a peer; if the link cannot take it, step `Input::PeerLost`.
    SendPeer { to: u64, frame: Frame },
    /// Reset every peer link (a leader stepping down: its learners go Looking at once).
    ResetPeers,
    /// Write the epoch files durably, then step `Input::EpochsPersisted`.
    PersistEpochs { accepted: Epoch, current: Epoch },
    /// Serialise `snap_frame(tree, conn, zxid, keep)` off the hot path and step
    /// `Input::SnapBuilt { to, id, .. }`; frames for `to` wait for it inside the member.
    BuildSnap {
        to: u64,
        id: u64,
        conn: u64,
        zxid: Zxid,
        keep: Zxid,
        tree: Tree,
    },
    /// The member's role changed (for srvr/mntr and the shards' handshakes).
    Role(Role),
    /// A configuration took effect here (a reconfig applied, or a snapshot holding a newer
    /// one installed): `text` as in `/zookeeper/config`. The driver connects to the new
    /// members, drops the removed ones and writes the dynamic configuration file.
    Reconfigured { version: Zxid, text: String },
    /// Stop serving: nothing more may be acknowledged.
    Stop(StopReason),
}

/// A learner's replication latencies, as ZooKeeper measures them (Learner.processPacket,
/// FollowerZooKeeperServer.commit, Observer's INFORM): the learner's wall clock when the
/// txn arrives or commits, minus the leader's wall clock when it prepared it (the time in
/// the txn). Across two machines' clocks, so a sample below zero (clock drift) is dropped,
/// as ZooKeeper drops it. A leader records neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// A follower appended a PROPOSAL in broadcast (ZooKeeper's `proposal_latency`).
    Proposal,
    /// A follower or observer committed a txn in broadcast (`commit_propagation_latency`).
    CommitPropagation,
}

/// Latency samples kept for the driver at most: it drains them after every round, so only a
/// driver that never does (tests, the simulator) reaches this, and later samples are
/// dropped rather than held.
pub const LATENCY_SAMPLES_MAX: usize = 4096;

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
    /// Sessions in the tree.
    pub sessions: usize,
    pub snapshots: u64,
    pub snapshots_failed: u64,
    /// On a leader: learners connected, and followers in broadcast.
    pub learners: usize,
    pub synced_followers: usize,
    /// On an observer master (a follower): observers in broadcast with it.
    pub observers_served: usize,
    /// On an observer: the follower it learns from, 0 when it learns from the leader.
    pub observer_master: u64,
    pub log: LogStats,
}

/// A request waiting on this member: for prep (standalone, leader) or to be forwarded
/// (learner). `route` names the member and client to answer; none for the member's own
/// requests (expiry, the reaper).
#[derive(Debug)]
pub(crate) struct Queued {
    pub route: Option<Route>,
    pub session: SessionId,
    pub auth: Arc<[Id]>,
    pub op: CoreOp,
}

pub struct Member<D: Device> {
    pub(crate) cfg: MemberConfig,
    /// The committed tree; a leader's working tree is in `Replicated`.
    pub(crate) tree: Tree,
    pub(crate) next_session: i64,
    pub(crate) expiry: ExpiryQueue,
    pub(crate) log: Log<D>,
    jitter: Jitter,
    /// Transactions committed since the last snapshot began, and the count that starts the
    /// next.
    pub(crate) since_snapshot: u64,
    snapshot_after: u64,
    snapshotting: bool,
    pub(crate) queue: VecDeque<Queued>,
    /// Which connection holds each session, so a moved session's old connection is closed.
    pub(crate) owners: HashMap<SessionId, (ShardId, ConnId)>,
    /// The replica and what each role keeps beside it.
    pub(crate) replicated: Box<Replicated<D>>,
    /// A full disk: refusing, and the refusals waiting to be answered.
    pub(crate) room: Room,
    pub(crate) effects: Vec<Effect<D>>,
    stopped: bool,
    pub(crate) now: Now,
    next_reap_ms: u64,
    next_purge_ms: Option<u64>,
    /// Everything up to here is durable on this member: what recovery found, then each
    /// completed sync and each snapshot installed.
    pub(crate) zxid_durable: Zxid,
    /// The highest zxid a published entry carried.
    zxid_published: Zxid,
    pub(crate) counters: Counters,
    /// This member's id in routes (0 standalone).
    pub(crate) myid: u64,
    /// Replication latencies in ms not yet taken by the driver.
    latencies: Vec<(Latency, u64)>,
    /// A restore waiting for the batch in flight to be published, and the outcome of the
    /// last one, for the driver.
    pub(crate) restore: Option<Tree>,
    pub(crate) restored: Option<Result<Zxid, RestoreError>>,
}

impl<D: Device> Member<D> {
    /// A standalone member over a recovered tree and log (the snapshot with the log replayed
    /// over it), its epochs taken from the log's last zxid (a data directory written before
    /// standalone servers kept epoch files). See [`Member::new_standalone`].
    pub fn new(cfg: MemberConfig, tree: Tree, log: Log<D>, now: Now) -> Self {
        let epoch = Epoch(tree.last_zxid().max(log.last_zxid()).epoch());
        Self::new_standalone(cfg, (epoch, epoch), tree, log, now)
    }

    /// A standalone member: a one-voter ensemble of id 0, so the same replica decides its
    /// commits. `epochs` are the accepted and current epochs recovered (the epoch files).
    /// Everything in its log is committed (it was proposed by this member alone, and only
    /// what is durable was acknowledged), so `tree` has the whole log replayed and the
    /// replica starts with an empty window at its zxid; it elects itself at once and serves
    /// once its new epoch is durable (`Effect::PersistEpochs`). Every session in the tree is
    /// given its full timeout then (ZooKeeper does the same after a restart).
    pub fn new_standalone(
        cfg: MemberConfig,
        epochs: (Epoch, Epoch),
        tree: Tree,
        log: Log<D>,
        now: Now,
    ) -> Self {
        let (accepted, current) = epochs;
        let ens = EnsembleConfig {
            zab: ZabConfig {
                myid: 0,
                voters: vec![0],
                observers: Vec::new(),
                // Bounds its own establishment (two epoch writes); no peer to wait for.
                init_limit_ms: 10 * cfg.tick_ms.max(1_000),
                sync_limit_ms: 5 * cfg.tick_ms.max(1_000),
                finalize_wait_ms: 0,
                // No learner will ever ask for a DIFF.
                history_retain: 0,
                config_version: Zxid::ZERO,
                // A standalone server has no reconfig (its payloads carry no txn).
                reconfig_of: zoocore_zab::no_reconfig,
                observer_masters: false,
            },
            durable: Durable {
                accepted_epoch: accepted.max(current),
                current_epoch: current,
                base: tree.last_zxid(),
                log: Vec::new(),
            },
            seed: cfg.seed,
            time_spacing_ms: (cfg.tick_ms / 2).max(1),
            read_only_after_ms: None,
        };
        let replicated = Replicated::new(ens, true);
        Self::with_replica(cfg, tree, log, now, 0, replicated)
    }

    /// An ensemble member: `tree` is the newest snapshot only (never the log replayed over
    /// it: the log may hold proposals that never committed); the replica re-commits the
    /// log's committed prefix. It starts Looking.
    pub fn new_ensemble(
        cfg: MemberConfig,
        ens: EnsembleConfig,
        tree: Tree,
        log: Log<D>,
        now: Now,
    ) -> Self {
        let myid = ens.zab.myid;
        let replicated = Replicated::new(ens, false);
        Self::with_replica(cfg, tree, log, now, myid, replicated)
    }

    fn with_replica(
        cfg: MemberConfig,
        tree: Tree,
        log: Log<D>,
        now: Now,
        myid: u64,
        replicated: Replicated<D>,
    ) -> Self {
        assert!(cfg.batch_txns_max > 0, "a batch takes at least one request");
        let mut jitter = Jitter::new(cfg.seed);
        let snapshot_after = jitter.snapshot_after(cfg.snap_count);
        let zxid_durable = tree.last_zxid().max(log.synced_zxid());
        let mut member = Member {
            next_session: cfg.first_session,
            expiry: ExpiryQueue::new(cfg.tick_ms),
            jitter,
            since_snapshot: 0,
            snapshot_after,
            snapshotting: false,
            queue: VecDeque::new(),
            owners: HashMap::new(),
            replicated: Box::new(replicated),
            room: Room::default(),
            effects: Vec::new(),
            stopped: false,
            now,
            next_reap_ms: now.mono_ms + cfg.container_check_interval_ms,
            next_purge_ms: (cfg.purge_interval_ms > 0).then(|| now.mono_ms + cfg.purge_interval_ms),
            zxid_durable,
            zxid_published: tree.last_zxid(),
            counters: Counters::default(),
            myid,
            latencies: Vec::new(),
            restore: None,
            restored: None,
            tree,
            log,
            cfg,
        };
        member.ensemble_start();
        // The next segment at once: a fresh log's first append (an ensemble leader's first
        // write, or the first txn after its election) otherwise finds no spare and makes its
        // segment on this thread.
        if let Some(job) = member.log.next_segment_job() {
            member.effects.push(Effect::PrepareSegment(job));
        }
        member
    }

    /// The tree as this member has it: every change committed (and published).
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn log(&self) -> &Log<D> {
        &self.log
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// What srvr/stat/mntr report: a standalone member is `Standalone` whatever its
    /// replica calls itself.
    /// The replica's membership in effect: the zxid of the reconfig that made it (`ZERO`:
    /// the start's) and its voters.
    pub fn membership(&self) -> (Zxid, Vec<u64>, Vec<u64>) {
        let r = &self.replicated.replica;
        let (since, m) = r.membership();
        let seen = r.last_seen_membership();
        (
            since,
            m.voters.iter().copied().collect(),
            seen.voters.iter().copied().collect(),
        )
    }

    /// The replica's own account of its election state (`Replica::describe`), for traces.
    pub fn describe_replica(&self) -> String {
        self.replicated.replica.describe()
    }

    pub fn role(&self) -> Role {
        if self.replicated.standalone {
            Role::Standalone
        } else {
            self.replicated.role
        }
    }

    /// An observer learning from an observer master (a follower, not its leader): that
    /// follower; None on any other member.
    pub fn observer_master(&self) -> Option<u64> {
        let replica = &self.replicated.replica;
        match (replica.role(), replica.upstream()) {
            (zoocore_zab::RoleKind::Observing, Some(up)) if Some(up) != replica.leader() => {
                Some(up)
            }
            _ => None,
        }
    }

    /// On a follower that is an observer master: the observers in broadcast with it.
    pub fn observers_served(&self) -> usize {
        self.replicated.replica.observers_served()
    }

    /// The outcome of the last `Input::Restore`, once: the zxid the restored data stands at
    /// (its snapshot durable, the new view published), or why it was not done.
    pub fn take_restored(&mut self) -> Option<Result<Zxid, RestoreError>> {
        self.restored.take()
    }

    /// Hands every latency sample recorded since the last call to `f`, in ms.
    pub fn drain_latencies(&mut self, mut f: impl FnMut(Latency, u64)) {
        for (kind, ms) in self.latencies.drain(..) {
            f(kind, ms);
        }
    }

    /// Records a sample of `kind` for a txn the leader prepared at `txn_time_ms` (wall).
    pub(crate) fn record_latency(&mut self, kind: Latency, txn_time_ms: i64) {
        let Ok(ms) = u64::try_from(self.now.wall_ms - txn_time_ms) else {
            return; // the clocks disagree
        };
        if self.latencies.len() < LATENCY_SAMPLES_MAX {
            self.latencies.push((kind, ms));
        }
    }

    pub fn counters(&self) -> Counters {
        let (learners, synced_followers) = self.replicated.replica.learner_counts();
        Counters {
            queued: self.queue.len(),
            sessions: self.tree.sessions().count(),
            learners,
            synced_followers,
            observers_served: self.observers_served(),
            observer_master: self.observer_master().unwrap_or(0),
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
        if let Err(reason) = self.dispatch(input) {
            self.stop(reason);
        }
        self.check_invariants();
    }

    fn dispatch(&mut self, input: Input<D>) -> Result<(), StopReason> {
        // An ensemble member hears the time before anything else: after a freeze, a leader
        // whose followers went silent steps down before it looks at what waited.
        self.feed_time()?;
        match input {
            Input::Shard(msg) => self.on_shard(msg),
            Input::Tick => self.on_tick(),
            Input::Synced { job, result } => return self.on_synced(job, result),
            Input::SnapshotWritten { zxid, result } => self.on_snapshot_written(zxid, result),
            Input::SegmentPrepared(result) => self.on_segment_prepared(result),
            Input::Peer { from, msg } => return self.on_peer(from, msg),
            Input::Forward { from, msg } => self.on_forward(from, msg),
            Input::PeerLost { peer } => return self.on_peer_lost(peer),
            Input::EpochsPersisted {
                accepted,
                current,
                result,
            } => return self.on_epochs_persisted(accepted, current, result),
            Input::SnapBuilt { to, id, frame } => return self.on_snap_built(to, id, frame),
            Input::Leadership(ask) => return self.on_leadership(ask),
            Input::Restore(tree) => {
                if self.replicated.standalone {
                    self.restore = Some(tree);
                } else {
                    self.restored = Some(Err(RestoreError::Ensemble));
                }
            }
        }
        Ok(())
    }

    /// The effects to carry out, in order: the end of a round, with proposals or forwards
    /// of what is queued, the syncs answered, the fdatasync started (one at a time, so
    /// everything appended while one is in flight goes into the next: group commit), the
    /// commits published. A driver calls this until it returns nothing, and again after
    /// the inputs of each turn.
    pub fn ready(&mut self, now: Now) -> Vec<Effect<D>> {
        let mut effects = Vec::new();
        self.ready_into(now, &mut effects);
        effects
    }

    /// `ready`, with the effects appended to `out`. A driver that keeps `out` between
    /// rounds (emptied) trades lists with the member instead of the member growing a new one
    /// every round: a busy leader pushes a few dozen effects a round, and regrowing their
    /// list from nothing was a realloc per doubling, every round.
    pub fn ready_into(&mut self, now: Now, out: &mut Vec<Effect<D>>) {
        self.advance_time(now);
        if !self.stopped {
            if let Err(reason) = self.ensemble_round() {
                self.stop(reason);
            }
        }
        self.check_invariants();
        if out.is_empty() {
            std::mem::swap(out, &mut self.effects);
        } else {
            out.append(&mut self.effects);
        }
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

    /// Whether this member decides for the ensemble: prep, expiry, the reaper.
    pub(crate) fn leads(&self) -> bool {
        self.replicated.role == Role::Leader
    }

    fn on_shard(&mut self, msg: ToCore) {
        match msg {
            ToCore::Request(req) => {
                if req.session.0 != 0 {
                    self.touch(req.session);
                }
                let server = self.myid;
                let barrier = req.barrier;
                self.queue.push_back(Queued {
                    route: req.origin.map(|origin| Route {
                        server,
                        origin,
                        barrier,
                    }),
                    session: req.session,
                    auth: req.auth,
                    op: req.op,
                });
            }
            ToCore::Touch(sessions) => {
                for s in sessions {
                    self.touch(s);
                }
            }
            ToCore::Attach {
                session,
                shard,
                conn,
                valid,
            } => {
                self.touch(session);
                if valid {
                    self.attach(session);
                }
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

    /// A session showed life: the member that tracks expiry (standalone, the leader)
    /// pushes its deadline out; a learner reports it to the leader on its next tick.
    pub(crate) fn touch(&mut self, session: SessionId) {
        if self.leads() {
            self.expiry.touch(session, self.now.mono_ms);
        } else if !self.replicated.standalone {
            // A standalone member not yet leading re-arms every session when it does.
            self.replicated.touched.insert(session);
        }
    }

    /// Session expiry as ZooKeeper's SessionTracker, the container/TTL reaper as its
    /// ContainerManager (both only where this member decides), autopurge as its
    /// PurgeTxnLog timer. The expiries and deletions are queued as requests: they go
    /// through prep like any other, which re-checks them.
    fn on_tick(&mut self) {
        let now = self.now;
        if self.leads() {
            for session in self.expiry.expire(now.mono_ms) {
                tracing::info!("session {session} expired");
                self.queue.push_back(Queued {
                    route: None,
                    session,
                    auth: Arc::from([]),
                    op: CoreOp::Tree(Op::CloseSession { session }),
                });
            }
            if now.mono_ms >= self.next_reap_ms {
                self.next_reap_ms = now.mono_ms + self.cfg.container_check_interval_ms;
                self.reap();
            }
        } else {
            self.report_touched();
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

    /// Empty containers that had a child and expired TTL nodes, from the newest tree (so a
    /// delete already proposed is not asked twice), deleted through the write path.
    fn reap(&mut self) {
        let paths = self.newest_tree().expired_nodes(self.now.wall_ms);
        for path in paths {
            tracing::debug!("reaping {path}");
            self.queue.push_back(Queued {
                route: None,
                session: SessionId(0),
                auth: Arc::from([]),
                op: CoreOp::Tree(Op::DeleteContainer { path }),
            });
        }
    }

    /// The tree with every change this member prepped: what the next request is checked
    /// against.
    pub(crate) fn newest_tree(&self) -> &Tree {
        self.replicated.working.as_ref().unwrap_or(&self.tree)
    }

    fn on_synced(&mut self, job: SyncJob<D>, result: io::Result<()>) -> Result<(), StopReason> {
        let token = job.token;
        // A failed fdatasync stops the member: what waited for it is dropped unanswered.
        let durable = self.log.sync_end(job.request, result)?;
        self.zxid_durable = self.zxid_durable.max(durable);
        self.ensemble_synced(durable, token);
        Ok(())
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

    pub(crate) fn stop(&mut self, reason: StopReason) {
        tracing::error!("stopping: {reason}");
        self.stopped = true;
        self.effects.push(Effect::Stop(reason));
    }

    /// The fdatasync of everything appended so far, unless none is needed. `Ok(None)`:
    /// nothing is unsynced (or forceSync is off and the sync is taken as done), and the
    /// log is durable through `log.synced_zxid()` as far as this member can make it.
    pub(crate) fn begin_sync(&mut self, token: Option<u64>) -> Result<Option<()>, StopReason> {
        let Some(request) = self.log.sync_begin()? else {
            return Ok(None);
        };
        if !self.cfg.force_sync {
            let durable = self.log.sync_end(request, Ok(()))?;
            self.zxid_durable = self.zxid_durable.max(durable);
            return Ok(None);
        }
        let segment = self
            .log
            .segments()
            .last()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.effects.push(Effect::Sync(SyncJob {
            segment,
            request,
            token,
        }));
        Ok(Some(()))
    }

    /// Hands committed entries and the tree they leave to the shards, then whatever the
    /// commit makes due: a snapshot, the next log segment.
    pub(crate) fn publish(&mut self, batch: CommitBatch) {
        for entry in &batch.entries {
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
        self.counters.batches += 1;
        self.counters.txns += batch.entries.len() as u64;
        self.counters.batch_max = self.counters.batch_max.max(batch.entries.len());
        self.effects.push(Effect::Publish(Arc::new(batch)));
        self.after_commit();
    }

    /// What a commit makes due, also when it published nothing (a follower's SNAP).
    pub(crate) fn after_commit(&mut self) {
        self.log_notices();
        self.snapshot_if_due();
        if let Some(job) = self.log.next_segment_job() {
            self.effects.push(Effect::PrepareSegment(job));
        }
    }

    /// A pinned version of the tree to snapshot once enough transactions were committed
    /// since the last one began, and none is being written.
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
    pub(crate) fn log_notices(&mut self) {
        while let Some(notice) = self.log.next_notice() {
            tracing::warn!("{notice}");
        }
    }

    /// A session was created by a committed txn: its expiry is tracked where this member
    /// decides, and the connection that asked for it owns it.
    pub(crate) fn session_created(
        &mut self,
        session: SessionId,
        timeout_ms: i32,
        origin: Option<Origin>,
    ) {
        self.expiry
            .add(session, timeout_ms.max(0) as u32, self.now.mono_ms);
        if let Some(o) = origin {
            self.owners.insert(session, (o.shard, o.conn));
        }
    }

    /// A session was closed by a committed txn (closeSession or expiry).
    pub(crate) fn session_closed(&mut self, session: SessionId) {
        self.expiry.remove(session);
        self.owners.remove(&session);
    }

    /// Arms expiry for every session in the tree (after a restart, or on taking over as
    /// leader: ZooKeeper's leader gives every session a fresh timeout).
    pub(crate) fn track_all_sessions(&mut self) {
        self.expiry = ExpiryQueue::new(self.cfg.tick_ms);
        let sessions: Vec<_> = self.tree.sessions().collect();
        for (s, timeout) in sessions {
            self.expiry.add(s, timeout.max(0) as u32, self.now.mono_ms);
        }
    }

    /// The pipeline's invariants between steps; debug builds only (the per-append and
    /// per-publish assertions stay on in release).
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
            self.zxid_published <= self.newest_tree().last_zxid(),
            "published {} past the newest tree {}",
            self.zxid_published,
            self.newest_tree().last_zxid()
        );
        self.replicated.check_invariants(self);
    }
}

/// When a soft quota was last reported, in wall milliseconds: at most one line a second,
/// as ZooKeeper's RateLogger does. Process-wide, since it only paces a log line.
static SOFT_QUOTA_WARNED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Logs a prepared create or setData that goes over a soft quota (ZooKeeper logs them only
/// under `enforceQuota`; its hard limits refuse the write in prep instead).
fn warn_soft_quota(tree: &Tree, txn: &Txn, wall_ms: i64) {
    use std::sync::atomic::Ordering::Relaxed;
    let Some((path, count, bytes)) = tree.quota_change(txn) else {
        return;
    };
    if let Some(excess) = tree.quota_excess(path, count, bytes) {
        let last = SOFT_QUOTA_WARNED_MS.load(Relaxed);
        if wall_ms - last >= 1000 && SOFT_QUOTA_WARNED_MS.swap(wall_ms, Relaxed) == last {
            tracing::warn!("{excess}");
        }
    }
}

/// One request through ZooKeeper's prep on `tree` (the newest tree: every change prepped
/// before it included), at `zxid`; `new_session` is the id a createSession gets. A client's
/// request of a session that does not exist (expired, or closed) is SESSIONEXPIRED.
/// `enforce_quota` is `enforceQuota`: hard quotas refuse, soft ones are logged.
pub(crate) fn prep(
    tree: &Tree,
    q: &Queued,
    new_session: SessionId,
    zxid: Zxid,
    wall_ms: i64,
    enforce_quota: bool,
) -> Txn {
    match &q.op {
        CoreOp::CreateSession { timeout_ms } => tree.prepare(
            &Op::CreateSession {
                session: new_session,
                timeout_ms: *timeout_ms,
            },
            &PrepContext {
                session: new_session,
                auth: &q.auth,
                zxid,
                time_ms: wall_ms,
                enforce_quota,
            },
        ),
        CoreOp::Tree(op) => {
            if q.route.is_some() && !tree.session_exists(q.session) {
                Txn::Error(ErrorCode::SESSION_EXPIRED)
            } else {
                let txn = tree.prepare(
                    op,
                    &PrepContext {
                        session: q.session,
                        auth: &q.auth,
                        zxid,
                        time_ms: wall_ms,
                        enforce_quota,
                    },
                );
                if enforce_quota {
                    warn_soft_quota(tree, &txn, wall_ms);
                }
                txn
            }
        }
        // Callers answer syncs before prep; were one to get here it changes nothing.
        CoreOp::Sync { .. } => Txn::Error(ErrorCode::BAD_ARGUMENTS),
        // The ensemble leader preps reconfigs itself (it knows the membership).
        CoreOp::Reconfig(_) => Txn::Error(ErrorCode::RECONFIG_DISABLED),
    }
}
