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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use zoocore_proto::{ErrorCode, Record, SessionId, Zxid};
use zoocore_storage::{Device, Log, LogError, SyncRequest};
use zoocore_tree::{Op, PrepContext, Tree, Txn};

use crate::limits;
use crate::msg::{
    CommitBatch, Committed, ConnId, CoreOp, CoreRequest, FromCore, Outcome, ShardId, ToCore,
};
use crate::sessions::ExpiryQueue;

/// Counters shown by mntr/srvr.
#[derive(Debug, Default, Clone, Copy)]
pub struct CoreStats {
    pub batches: u64,
    pub txns: u64,
    pub batch_max: usize,
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

    /// Takes everything queued (bounded by the batch limit) through prep, apply and the log
    /// append, and returns the batch to publish once the driver has synced it. A log error is
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
            let (entry, record) = self.prep_and_apply(req, now_ms, now_wall_ms);
            if let Some(record) = record {
                self.log.append(entry.zxid, now_wall_ms, &record)?;
                self.since_snapshot += 1;
            }
            entries.push(entry);
        }
        self.stats.batches += 1;
        self.stats.txns += entries.len() as u64;
        self.stats.batch_max = self.stats.batch_max.max(entries.len());
        Ok(Some(CommitBatch {
            view: self.tree.clone(),
            entries,
        }))
    }

    fn next_zxid(&self) -> Zxid {
        let last = self.tree.last_zxid();
        if last.epoch() < self.epoch {
            Zxid::new(self.epoch, 1)
        } else {
            last.next()
        }
    }

    /// One request through prep and apply; returns its entry and the log record, if it is a
    /// transaction.
    fn prep_and_apply(
        &mut self,
        req: CoreRequest,
        now_ms: u64,
        now_wall_ms: i64,
    ) -> (Committed, Option<Vec<u8>>) {
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
                return (entry, None);
            }
            CoreOp::CreateSession { timeout_ms } => {
                let new = SessionId(self.next_session);
                self.next_session += 1;
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
                let record = txn.to_bytes();
                self.tree.apply(zxid, now_wall_ms, &txn);
                self.expiry.add(new, timeout_ms.max(0) as u32, now_ms);
                if let Some(o) = origin {
                    self.owners.insert(new, (o.shard, o.conn));
                }
                let outcome = Outcome::SessionCreated {
                    session: new,
                    timeout_ms,
                };
                return (
                    Committed {
                        zxid,
                        origin,
                        outcome,
                        closed_session: None,
                    },
                    Some(record),
                );
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
        let record = txn.to_bytes();
        let applied = self.tree.apply(zxid, now_wall_ms, &txn);
        let closed_session = match closes {
            Some(s) if !self.tree.session_exists(s) => {
                self.expiry.remove(s);
                self.owners.remove(&s);
                Some(s)
            }
            _ => None,
        };
        let entry = Committed {
            zxid,
            origin,
            outcome: Outcome::Applied(applied),
            closed_session,
        };
        (entry, Some(record))
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
