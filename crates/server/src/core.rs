//! The ZAB core: the one executor that orders writes, logs them, applies them to the tree and
//! publishes the result. Here it runs the single-voter case (standalone); the ensemble roles
//! plug into the same pipeline.
//!
//! The pipeline of one batch: [`Core::run_batch`] preps (validates against the newest tree,
//! assigns the zxid), applies to the working tree and appends to the log; the driver
//! (topology.rs) then issues one fdatasync for the whole batch through io_uring, completes it
//! with [`Core::sync_end`], and only then publishes the tree version and every entry's results
//! to the shards. Because the working tree is persistent, "apply at prep and
//! publish after sync" gives ZooKeeper's outstanding-changes semantics for free: the next
//! request is checked against every change before it, and no shard sees a change before it is
//! durable.
//!
//! A full disk: each txn is appended to the log before it is applied, so a txn the log
//! refuses for lack of room (`LogError::NoSpace`, which leaves the log usable) is simply not
//! applied; the working tree never holds it, nothing needs undoing, and its zxid goes to the
//! next txn. Its client gets THROTTLEDOP (see [`REFUSED_FOR_ROOM`]), reads go on from the
//! published tree, new sessions are still created from the log's small free-space reserve, and since every write tries the log again, writes resume by themselves as
//! soon as the disk has room. The server keeps running meanwhile: stopping would turn a full
//! disk into an outage of reads too, and a restart would find the same full disk.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use zoocore_proto::{ErrorCode, Record, SessionId, Zxid};
use zoocore_storage::{Device, Log, LogError, SyncRequest};
use zoocore_tree::txn::{Applied, OpResult};
use zoocore_tree::{Op, PrepContext, Tree, Txn};

use crate::limits;
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

/// Writes refused for lack of room since the disk filled, for the rate-limited warning.
#[derive(Debug, Clone, Copy)]
struct Refusing {
    since_warning: u64,
    total: u64,
    warned_ms: u64,
}

/// Counters shown by mntr/srvr.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoreStats {
    pub batches: u64,
    pub txns: u64,
    pub batch_max: usize,
    /// Requests refused because the log had no room on the disk.
    pub refused_for_room: u64,
}

pub struct Core<D: Device> {
    tree: Tree,
    epoch: u32,
    next_session: i64,
    expiry: ExpiryQueue,
    log: Log<D>,
    /// Transactions logged since the last snapshot began, and the count that starts the next.
    since_snapshot: u64,
    snapshot_after: u64,
    queue: VecDeque<CoreRequest>,
    /// Which connection holds each session, so a moved session's old connection is closed.
    owners: HashMap<SessionId, (ShardId, ConnId)>,
    /// Connections whose handshake the log had no room for: the driver closes them.
    refused_connects: Vec<(ShardId, ConnId)>,
    /// Set while the disk is full.
    refusing: Option<Refusing>,
    pub stats: CoreStats,
}

impl<D: Device> Core<D> {
    /// `snapshot_after` is the first snapshot's txn count (randomised by the caller, as
    /// ZooKeeper does, so servers of an ensemble do not snapshot together).
    pub fn new(
        tree: Tree,
        log: Log<D>,
        first_session: i64,
        tick_ms: u64,
        snapshot_after: u64,
    ) -> Self {
        Core {
            epoch: tree.last_zxid().epoch(),
            tree,
            next_session: first_session,
            expiry: ExpiryQueue::new(tick_ms),
            log,
            since_snapshot: 0,
            snapshot_after,
            queue: VecDeque::new(),
            owners: HashMap::new(),
            refused_connects: Vec::new(),
            refusing: None,
            stats: CoreStats::default(),
        }
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn log(&self) -> &Log<D> {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut Log<D> {
        &mut self.log
    }

    /// What the driver must make durable before publishing the last batch; `None` when
    /// nothing is unsynced.
    pub fn sync_begin(
        &mut self,
    ) -> Result<Option<SyncRequest<<D::File as zoocore_storage::DeviceFile>::SyncHandle>>, LogError>
    {
        self.log.sync_begin()
    }

    /// Completes the driver's fdatasync; an error poisons the log and must stop the server.
    pub fn sync_end<H>(
        &mut self,
        req: SyncRequest<H>,
        result: std::io::Result<()>,
    ) -> Result<Zxid, LogError> {
        self.log.sync_end(req, result)
    }

    /// A pinned version of the tree to snapshot, once enough transactions were logged since
    /// the last one; `next_after` is the count for the one after (randomised by the caller).
    pub fn snapshot_due(&mut self, next_after: u64) -> Option<Tree> {
        if self.since_snapshot < self.snapshot_after {
            return None;
        }
        self.since_snapshot = 0;
        self.snapshot_after = next_after.max(1);
        Some(self.tree.clone())
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Takes a message from a shard. Returns the messages to send back at once (session
    /// takeovers), if any.
    pub fn on_message(&mut self, msg: ToCore, now_ms: u64) -> Option<(ShardId, FromCore)> {
        match msg {
            ToCore::Request(req) => {
                if let Some(session) = req.session_of_interest() {
                    self.expiry.touch(session, now_ms);
                }
                self.queue.push_back(req);
                None
            }
            ToCore::Touch(sessions) => {
                for s in sessions {
                    self.expiry.touch(s, now_ms);
                }
                None
            }
            ToCore::Attach {
                session,
                shard,
                conn,
                ..
            } => {
                self.expiry.touch(session, now_ms);
                match self.owners.insert(session, (shard, conn)) {
                    Some((old_shard, old_conn)) if (old_shard, old_conn) != (shard, conn) => {
                        Some((
                            old_shard,
                            FromCore::CloseConnection {
                                conn: old_conn,
                                session,
                            },
                        ))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Queues the close of every session whose deadline has passed, as ZooKeeper's
    /// SessionTracker does on the leader. Returns how many expired.
    pub fn expire_sessions(&mut self, now_ms: u64) -> usize {
        let expired = self.expiry.expire(now_ms);
        for &session in &expired {
            tracing::info!("session {session} expired");
            self.queue.push_back(CoreRequest {
                origin: None,
                session,
                auth: Arc::from([]),
                op: CoreOp::Tree(Op::CloseSession { session }),
            });
        }
        expired.len()
    }

    /// Queues deletion of empty containers and expired TTL nodes (ZooKeeper's
    /// ContainerManager); the delete re-checks at prep.
    pub fn reap_containers(&mut self, now_wall_ms: i64) {
        for path in self.tree.expired_nodes(now_wall_ms) {
            self.queue.push_back(CoreRequest {
                origin: None,
                session: SessionId(0),
                auth: Arc::from([]),
                op: CoreOp::Tree(Op::DeleteContainer { path }),
            });
        }
    }

    /// Takes everything queued (bounded by the batch limit) through prep, the log append and
    /// apply, and returns the batch to publish once the driver has synced it. A txn the log
    /// has no room for is not applied and answered THROTTLEDOP; any other log error is
    /// fatal: the caller stops the server rather than answer anything it could not make
    /// durable.
    pub fn run_batch(
        &mut self,
        now_ms: u64,
        now_wall_ms: i64,
    ) -> Result<Option<CommitBatch>, LogError> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        let n = self.queue.len().min(limits::BATCH_TXNS_MAX);
        let mut entries = Vec::with_capacity(n);
        for req in self.queue.drain(..n).collect::<Vec<_>>() {
            if let Some(entry) = self.prep_and_apply(req, now_ms, now_wall_ms)? {
                entries.push(entry);
            }
        }
        self.stats.batches += 1;
        self.stats.txns += entries.len() as u64;
        self.stats.batch_max = self.stats.batch_max.max(entries.len());
        Ok(Some(CommitBatch {
            view: self.tree.clone(),
            entries,
        }))
    }

    /// The connections whose new session the log had no room for, to close (their clients
    /// reconnect and try again).
    pub fn take_refused_connects(&mut self) -> Vec<(ShardId, ConnId)> {
        std::mem::take(&mut self.refused_connects)
    }

    /// Appends a txn's record to the log. `Ok(false)`: the log had no room and the txn must
    /// not be applied. Sessions being created or closed may draw on the log's free-space
    /// reserve (`Log::append_may_use_reserve`): on a full disk clients can still connect
    /// and read, also after a restart, and expired sessions still go.
    fn log_txn(
        &mut self,
        zxid: Zxid,
        now_ms: u64,
        now_wall_ms: i64,
        record: &[u8],
        session_txn: bool,
    ) -> Result<bool, LogError> {
        let appended = if session_txn {
            self.log.append_may_use_reserve(zxid, now_wall_ms, record)
        } else {
            self.log.append(zxid, now_wall_ms, record)
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
                self.refused(&e, now_ms);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts a refusal; warns at the first and then every `REFUSAL_WARN_INTERVAL_MS`.
    fn refused(&mut self, e: &LogError, now_ms: u64) {
        self.stats.refused_for_room += 1;
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
    /// session the log had no room for: its connection is closed instead).
    fn prep_and_apply(
        &mut self,
        req: CoreRequest,
        now_ms: u64,
        now_wall_ms: i64,
    ) -> Result<Option<Committed>, LogError> {
        let CoreRequest {
            origin,
            session,
            auth,
            op,
        } = req;
        let zxid = self.next_zxid();
        let op = match op {
            CoreOp::Sync { path } => {
                let entry = Committed {
                    zxid: self.tree.last_zxid(),
                    origin,
                    outcome: Outcome::Synced { path },
                    closed_session: None,
                };
                return Ok(Some(entry));
            }
            CoreOp::CreateSession { timeout_ms } => {
                let new = SessionId(self.next_session);
                let txn = self.tree.prepare(
                    &Op::CreateSession {
                        session: new,
                        timeout_ms,
                    },
                    &PrepContext {
                        session: new,
                        auth: &auth,
                        zxid,
                        time_ms: now_wall_ms,
                    },
                );
                if !self.log_txn(zxid, now_ms, now_wall_ms, &txn.to_bytes(), true)? {
                    // The handshake has no error code to carry (ConnectResponse has none):
                    // close the connection, as ZooKeeper does with a handshake it cannot
                    // serve; the client reconnects.
                    if let Some(o) = origin {
                        self.refused_connects.push((o.shard, o.conn));
                    }
                    return Ok(None);
                }
                self.next_session += 1;
                self.tree.apply(zxid, now_wall_ms, &txn);
                self.expiry.add(new, timeout_ms.max(0) as u32, now_ms);
                if let Some(o) = origin {
                    self.owners.insert(new, (o.shard, o.conn));
                }
                let outcome = Outcome::SessionCreated {
                    session: new,
                    timeout_ms,
                };
                return Ok(Some(Committed {
                    zxid,
                    origin,
                    outcome,
                    closed_session: None,
                }));
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
                    time_ms: now_wall_ms,
                },
            )
        };
        if !self.log_txn(zxid, now_ms, now_wall_ms, &txn.to_bytes(), closes.is_some())? {
            if let (Some(s), None) = (closes, origin) {
                // An expiry the log had no room for: the session is still in the tree, so
                // it must come due again (its deadline was taken off the queue).
                let timeout = self
                    .tree
                    .sessions()
                    .find(|(id, _)| *id == s)
                    .map(|(_, t)| t);
                if let Some(timeout) = timeout {
                    self.expiry.add(s, timeout.max(0) as u32, now_ms);
                }
            }
            return Ok(Some(self.refused_entry(origin)));
        }
        let applied = self.tree.apply(zxid, now_wall_ms, &txn);
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

    /// Re-arms expiry for every session in the tree (after a restart or on taking over).
    pub fn track_all_sessions(&mut self, now_ms: u64) {
        let sessions: Vec<_> = self.tree.sessions().collect();
        for (s, timeout) in sessions {
            self.expiry.add(s, timeout.max(0) as u32, now_ms);
        }
    }

    pub fn session_count(&self) -> usize {
        self.expiry.len()
    }
}

impl CoreRequest {
    fn session_of_interest(&self) -> Option<SessionId> {
        (self.session.0 != 0).then_some(self.session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoocore_proto::{Acl, CreateMode};
    use zoocore_storage::{new_log, LogOptions, MemDevice};

    fn core_on(dev: &MemDevice) -> Core<MemDevice> {
        let opts = LogOptions {
            prealloc_bytes: 64 << 10,
            snap_count: 1_000_000,
            database_id: 1,
        };
        Core::new(
            Tree::new(),
            new_log(dev.clone(), opts),
            0x100,
            100,
            1_000_000,
        )
    }

    fn request(xid: i32, session: SessionId, op: CoreOp) -> ToCore {
        ToCore::Request(CoreRequest {
            origin: Some(Origin {
                shard: 0,
                conn: 1,
                xid,
            }),
            session,
            auth: Arc::from([]),
            op,
        })
    }

    fn create(path: &str, bytes: usize) -> CoreOp {
        CoreOp::Tree(Op::Create {
            path: path.to_owned(),
            data: vec![7; bytes],
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: -1,
        })
    }

    /// Runs one batch and syncs it, as the driver does.
    fn batch(core: &mut Core<MemDevice>) -> CommitBatch {
        let b = core
            .run_batch(0, 1)
            .expect("no fatal error")
            .expect("a batch");
        core.log_mut().sync().expect("sync");
        b
    }

    fn result_of(entry: &Committed) -> &OpResult {
        match &entry.outcome {
            Outcome::Applied(a) => &a.result,
            other => panic!("not an applied entry: {other:?}"),
        }
    }

    #[test]
    fn a_write_without_room_is_refused_unapplied_and_writes_resume_with_room() {
        let dev = MemDevice::new();
        let mut core = core_on(&dev);
        core.on_message(
            request(
                1,
                SessionId(0),
                CoreOp::CreateSession { timeout_ms: 10_000 },
            ),
            0,
        );
        let b = batch(&mut core);
        let Outcome::SessionCreated { session, .. } = b.entries[0].outcome else {
            panic!("session created");
        };
        // The first segment is made; then the disk has no room for a second.
        core.on_message(request(2, session, create("/a", 10)), 0);
        batch(&mut core);
        dev.set_capacity(Some(64 << 10));
        let mut refused = None;
        for i in 0..100 {
            core.on_message(request(10 + i, session, create(&format!("/n{i}"), 4000)), 0);
            let b = batch(&mut core);
            if matches!(result_of(&b.entries[0]), OpResult::Error(_)) {
                refused = Some((i, b));
                break;
            }
        }
        let (i, b) = refused.expect("the disk filled");
        let entry = &b.entries[0];
        assert_eq!(result_of(entry), &OpResult::Error(ErrorCode::THROTTLED_OP));
        assert_eq!(entry.zxid, core.tree().last_zxid(), "no zxid taken");
        assert!(core.tree().get(&format!("/n{i}")).is_none(), "not applied");
        assert!(!core.log().is_poisoned());
        assert_eq!(core.stats.refused_for_room, 1);

        // A new session has no room either: its connection is to be closed, with no entry.
        core.on_message(
            request(
                99,
                SessionId(0),
                CoreOp::CreateSession { timeout_ms: 10_000 },
            ),
            0,
        );
        let b = batch(&mut core);
        assert!(b.entries.is_empty());
        assert_eq!(core.take_refused_connects(), vec![(0, 1)]);

        // Room returns: the same write goes through with the next zxid after the last one.
        dev.set_capacity(None);
        let last = core.tree().last_zxid();
        core.on_message(request(200, session, create(&format!("/n{i}"), 4000)), 0);
        let b = batch(&mut core);
        assert!(matches!(result_of(&b.entries[0]), OpResult::Created { .. }));
        assert_eq!(b.entries[0].zxid, last.next());
        assert!(core.tree().get(&format!("/n{i}")).is_some());
    }

    #[test]
    fn an_expiry_without_room_comes_due_again() {
        let dev = MemDevice::new();
        let mut core = core_on(&dev);
        core.on_message(
            request(1, SessionId(0), CoreOp::CreateSession { timeout_ms: 1_000 }),
            0,
        );
        let b = batch(&mut core);
        let Outcome::SessionCreated { session, .. } = b.entries[0].outcome else {
            panic!("session created");
        };
        // An ephemeral with a long name makes the close txn (which lists it) larger than
        // the filler writes, so it cannot slip into the tail they leave.
        let long = format!("/e{}", "x".repeat(3000));
        let ephemeral = CoreOp::Tree(Op::Create {
            path: long.clone(),
            data: Vec::new(),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Ephemeral,
            ttl_ms: -1,
        });
        core.on_message(request(2, session, ephemeral), 0);
        batch(&mut core);
        assert!(core.tree().get(&long).is_some());
        // Fill the first segment to its end, with no room for another.
        dev.set_capacity(Some(64 << 10));
        for i in 0..100 {
            core.on_message(request(10 + i, session, create(&format!("/n{i}"), 2000)), 0);
            let b = batch(&mut core);
            if matches!(result_of(&b.entries[0]), OpResult::Error(_)) {
                break;
            }
        }
        assert_eq!(core.expire_sessions(60_000), 1);
        batch(&mut core);
        assert!(core.tree().session_exists(session), "the close was refused");
        dev.set_capacity(None);
        assert_eq!(core.expire_sessions(120_000), 1, "due again");
        let b = batch(&mut core);
        assert_eq!(b.entries[0].closed_session, Some(session));
        assert!(!core.tree().session_exists(session));
        assert!(
            core.tree().get(&long).is_none(),
            "its ephemeral went with it"
        );
    }
}
