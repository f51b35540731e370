//! A standalone member: its quorum is itself, so a txn is committed once it is durable here.
//!
//! The pipeline of one batch ([`Member::alone_round`]): every queued request (up to the
//! batch limit) is prepped against the working tree, appended to the log and applied, then
//! the batch is held until the one fdatasync covering it completes (`Input::Synced`), and
//! only then published. Because the working tree is persistent, "apply at prep, publish
//! after the sync" gives ZooKeeper's outstanding-changes semantics for free: each request is
//! checked against every change before it, and no shard sees a change before it is durable.
//!
//! A full disk: each txn is appended to the log before it is applied, so a txn the log
//! refuses for lack of room (`LogError::NoSpace`, which leaves the log usable) is simply not
//! applied; the working tree never holds it, nothing needs undoing, and its zxid goes to the
//! next txn. Its client gets THROTTLEDOP ([`REFUSED_FOR_ROOM`]), reads go on from the
//! published tree, new sessions are still created from the log's small free-space reserve,
//! and since every write tries the log again, writes resume by themselves as soon as the
//! disk has room. Stopping instead would turn a full disk into an outage of reads too, and a
//! restart would find the same full disk. Any other log error stops the member.

use zoocore_proto::{Record, SessionId, Zxid};
use zoocore_storage::{Device, LogError};
use zoocore_tree::txn::{Applied, OpResult};
use zoocore_tree::{Op, Txn};

use crate::member::{prep, Effect, Member, Queued, StopReason, REFUSED_FOR_ROOM};
use crate::msg::{CommitBatch, Committed, ConnId, CoreOp, FromCore, Origin, Outcome, ShardId};

/// A full disk is reported at once, then at most this often while it lasts.
const REFUSAL_WARN_INTERVAL_MS: u64 = 10_000;

/// Writes refused for lack of room since the disk filled, for the rate-limited warning.
#[derive(Debug, Clone, Copy)]
struct Refusing {
    since_warning: u64,
    total: u64,
    warned_ms: u64,
}

/// A batch appended and applied, waiting for the sync that covers it.
#[derive(Debug)]
pub(crate) struct Pending {
    batch: CommitBatch,
    /// Connections whose handshake the log had no room for: closed once the batch is out.
    refused_connects: Vec<(ShardId, ConnId)>,
}

/// The standalone pipeline's own state.
#[derive(Debug, Default)]
pub(crate) struct Alone {
    /// The batch whose sync is in flight; at most one.
    pub(crate) unsynced: Option<Box<Pending>>,
    /// Set while the disk is full.
    refusing: Option<Refusing>,
}

impl Alone {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn check_invariants<D: Device>(&self, member: &Member<D>) {
        if let Some(p) = &self.unsynced {
            assert!(member.cfg.force_sync, "a batch awaits a sync that is off");
            assert!(!member.is_stopped(), "a stopped member holds no batch");
            assert_eq!(
                p.batch.view.last_zxid(),
                member.tree.last_zxid(),
                "the working tree moved while a batch awaits its sync"
            );
        }
    }
}

impl<D: Device> Member<D> {
    fn alone(&mut self) -> &mut Alone {
        match &mut self.quorum {
            crate::member::Quorum::Alone(a) => a,
            crate::member::Quorum::Ensemble(_) => unreachable!("a standalone member"),
        }
    }

    /// Cuts the next batch when none waits for its sync; a restore asked for goes first.
    pub(crate) fn alone_round(&mut self) -> Result<(), StopReason> {
        if self.alone().unsynced.is_some() {
            return Ok(());
        }
        if let Some(tree) = self.restore.take() {
            self.restore_now(tree);
        }
        if self.queue.is_empty() {
            return Ok(());
        }
        let n = self.queue.len().min(self.cfg.batch_txns_max);
        let taken: Vec<Queued> = self.queue.drain(..n).collect();
        let asked = taken.iter().filter(|q| q.route.is_some()).count();
        let mut entries = Vec::with_capacity(n);
        let mut refused_connects = Vec::new();
        for q in taken {
            if let Some(entry) = self.prep_and_apply(q, &mut refused_connects)? {
                entries.push(entry);
            }
        }
        let answered = entries.iter().filter(|e| e.origin.is_some()).count();
        assert_eq!(
            answered + refused_connects.len(),
            asked,
            "every request of a batch is answered once"
        );
        let pending = Pending {
            batch: CommitBatch {
                view: self.tree.clone(),
                entries,
            },
            refused_connects,
        };
        match self.begin_sync(None)? {
            Some(()) => self.alone().unsynced = Some(Box::new(pending)),
            // Nothing was appended (syncs, refusals), or forceSync is off.
            None => self.alone_publish(pending),
        }
        Ok(())
    }

    pub(crate) fn alone_synced(&mut self) {
        let pending = self
            .alone()
            .unsynced
            .take()
            .expect("a sync completes only while its batch waits");
        self.alone_publish(*pending);
    }

    fn alone_publish(&mut self, pending: Pending) {
        self.publish(pending.batch);
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
                if let Some(r) = self.alone().refusing.take() {
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
        let r = self.alone().refusing.get_or_insert(Refusing {
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

    /// One request through prep, the log and apply; returns its entry (none for a new
    /// session the log had no room for: its connection is to be closed instead).
    fn prep_and_apply(
        &mut self,
        q: Queued,
        refused_connects: &mut Vec<(ShardId, ConnId)>,
    ) -> Result<Option<Committed>, LogError> {
        let origin = q.route.map(|r| r.origin);
        let zxid = self.tree.last_zxid().next();
        let wall_ms = self.now.wall_ms;
        if let CoreOp::Sync { path } = q.op {
            return Ok(Some(Committed {
                zxid: self.tree.last_zxid(),
                origin,
                outcome: Outcome::Synced { path },
                closed_session: None,
            }));
        }
        let new_session = SessionId(self.next_session);
        let txn = prep(
            &self.tree,
            &q,
            new_session,
            zxid,
            wall_ms,
            self.cfg.enforce_quota,
        );
        let closes = match (&q.op, &txn) {
            (CoreOp::Tree(Op::CloseSession { session }), _) => Some(*session),
            _ => None,
        };
        let session_txn = closes.is_some() || matches!(txn, Txn::CreateSession { .. });
        if !self.log_txn(zxid, &txn.to_bytes(), session_txn)? {
            if let CoreOp::CreateSession { .. } = q.op {
                // The handshake has no error code to carry (ConnectResponse has none):
                // close the connection, as ZooKeeper does with a handshake it cannot
                // serve; the client reconnects.
                if let Some(o) = origin {
                    refused_connects.push((o.shard, o.conn));
                }
                return Ok(None);
            }
            if let (Some(s), None) = (closes, origin) {
                self.rearm_refused_expiry(s);
            }
            return Ok(Some(self.refused_entry(origin)));
        }
        let applied = self.tree.apply(zxid, wall_ms, &txn);
        let (outcome, closed_session) = match txn {
            Txn::CreateSession {
                session,
                timeout_ms,
            } => {
                self.next_session += 1;
                self.session_created(session, timeout_ms, origin);
                (
                    Outcome::SessionCreated {
                        session,
                        timeout_ms,
                    },
                    None,
                )
            }
            _ => match closes {
                Some(s) if !self.tree.session_exists(s) => {
                    self.session_closed(s);
                    (Outcome::Applied(applied), Some(s))
                }
                _ => (Outcome::Applied(applied), None),
            },
        };
        Ok(Some(Committed {
            zxid,
            origin,
            outcome,
            closed_session,
        }))
    }

    /// ZooKeeperServer.restoreFromSnapshot for a standalone server: the snapshot's tree
    /// replaces this member's, sessions are tracked from it, and clients reconnect (their
    /// connections close: watches and sessions of the old data mean nothing in the new).
    ///
    /// The log only goes forward, so the restored data is stamped with a zxid after
    /// everything this member has logged (an empty txn applied to it) and written as a
    /// snapshot at that zxid, durably, before anything is published or answered: recovery
    /// loads the newest snapshot and replays only what follows it, so the restore survives a
    /// restart and the older records are never replayed over it. ZooKeeper keeps the
    /// snapshot's own zxid and writes nothing (its restore is lost on a restart until the
    /// next snapshot); the zxid answered here is the one the data stands at.
    fn restore_now(&mut self, mut tree: zoocore_tree::Tree) {
        let after = self
            .tree
            .last_zxid()
            .max(self.log.last_zxid())
            .max(tree.last_zxid());
        let zxid = after.next();
        tree.apply(
            zxid,
            self.now.wall_ms,
            &Txn::Error(zoocore_proto::ErrorCode::OK),
        );
        if let Err(e) = zoocore_storage::write_snapshot(self.log.device(), &tree) {
            tracing::warn!("restore failed: {e}");
            self.restored = Some(Err(e.into()));
            return;
        }
        tracing::info!(
            "restored a snapshot: {} nodes, {} sessions, now at {zxid}",
            tree.node_count(),
            tree.sessions().count()
        );
        self.tree = tree;
        self.zxid_durable = self.zxid_durable.max(zxid);
        self.owners.clear();
        self.track_all_sessions();
        self.publish(CommitBatch {
            view: self.tree.clone(),
            entries: Vec::new(),
        });
        self.effects.push(Effect::CloseAll);
        self.restored = Some(Ok(zxid));
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
}
