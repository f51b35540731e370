//! A full disk, as the member that decides (a standalone server, an ensemble's leader) meets
//! it: writes are refused while the log has no room, and resume by themselves.
//!
//! The leader appends each of its own proposals to the log before it applies it to the
//! working tree or hands it to the replica, so a txn the log refuses for lack of room
//! (`LogError::NoSpace`, which leaves the log usable) is simply never proposed: the working
//! tree never holds it, nothing needs undoing, no learner hears of it, and its zxid goes to
//! the next txn. Its client gets THROTTLEDOP ([`REFUSED_FOR_ROOM`]), in order: the answer
//! waits behind every proposal made before it, since a connection's answers must come in
//! the order of its requests. Reads go on from the published tree, new sessions are still
//! created (and expired ones closed) from the log's small free-space reserve, and since every
//! write tries the log again, writes resume as soon as the disk has room. Stopping instead
//! would turn a full disk into an outage of reads too, and a restart would find the same full
//! disk. Any other log error stops the member.
//!
//! A request a learner forwarded is refused back to it (`Forward::Refused`), and its
//! learner answers the client once its own tree has what the leader had proposed before it.

use std::collections::VecDeque;

use zoocore_proto::{SessionId, Zxid};
use zoocore_storage::{Device, LogError};
use zoocore_tree::txn::{Applied, OpResult};
use zoocore_tree::{Op, Txn};

use crate::forward::{Forward, Route};
use crate::member::{Effect, Member, Queued, StopReason, REFUSED_FOR_ROOM};
use crate::msg::{Committed, CoreOp, FromCore, Origin, Outcome};

/// A full disk is reported at once, then at most this often while it lasts.
const REFUSAL_WARN_INTERVAL_MS: u64 = 10_000;

/// Writes refused for lack of room since the disk filled, for the rate-limited warning.
#[derive(Debug, Clone, Copy)]
struct Refusing {
    since_warning: u64,
    total: u64,
    warned_ms: u64,
}

/// The full-disk state of a member: whether it is refusing, and the refusals of its own
/// clients waiting for what was proposed before them.
#[derive(Debug, Default)]
pub(crate) struct Room {
    refusing: Option<Refusing>,
    /// `(after, client)`: answered once the committed tree reaches `after`; ascending.
    waiting: VecDeque<(Zxid, Origin)>,
}

impl Room {
    /// Forgets the waiting refusals (the member lost its leader: their connections close).
    pub(crate) fn clear_waiting(&mut self) {
        self.waiting.clear();
    }
}

impl<D: Device> Member<D> {
    /// Appends the record of a proposal at `zxid` to the log, before it is applied or
    /// proposed. `Ok(false)`: the log had no room, the request was answered (or will be, in
    /// order), and the txn must not be proposed. Sessions being created or closed may draw
    /// on the log's free-space reserve (`Log::append_may_use_reserve`): on a full disk
    /// clients can still connect and read, also after a restart, and expired sessions still
    /// go.
    pub(crate) fn append_proposal(
        &mut self,
        zxid: Zxid,
        q: &Queued,
        txn: &Txn,
        record: &[u8],
    ) -> Result<bool, StopReason> {
        assert!(
            zxid > self.log.last_zxid(),
            "zxid {zxid} not after {}",
            self.log.last_zxid()
        );
        self.drop_empty_stale_segment()?;
        let closes = matches!(q.op, CoreOp::Tree(Op::CloseSession { .. }));
        let session_txn = closes || matches!(txn, Txn::CreateSession { .. });
        let wall_ms = self.now.wall_ms;
        let appended = if session_txn {
            self.log.append_may_use_reserve(zxid, wall_ms, record)
        } else {
            self.log.append(zxid, wall_ms, record)
        };
        match appended {
            Ok(()) => {
                if let Some(r) = self.room.refusing.take() {
                    tracing::warn!(
                        "the log has room again: writes resume ({} refused while the disk was full)",
                        r.total
                    );
                }
                Ok(true)
            }
            Err(e) if e.is_no_space() => {
                self.count_refusal(&e);
                self.refuse(q);
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Counts a refusal; warns at the first and then every `REFUSAL_WARN_INTERVAL_MS`.
    fn count_refusal(&mut self, e: &LogError) {
        let now_ms = self.now.mono_ms;
        self.counters.refused_for_room += 1;
        let r = self.room.refusing.get_or_insert(Refusing {
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

    /// Answers a request the log had no room for, after everything proposed before it.
    fn refuse(&mut self, q: &Queued) {
        let after = self.newest_tree().last_zxid();
        let connect = matches!(q.op, CoreOp::CreateSession { .. });
        match q.route {
            Some(route) if route.server != self.myid => {
                let msg = Forward::Refused {
                    route,
                    zxid: after,
                    connect,
                };
                self.send_forward(route.server, &msg);
            }
            Some(route) => self.refused_here(route, after, connect),
            None => {
                if let CoreOp::Tree(Op::CloseSession { session }) = q.op {
                    self.rearm_refused_expiry(session);
                }
                // A reaper's delete is asked again at the next check.
            }
        }
    }

    /// A refusal of this member's client: `after` is the last zxid proposed before it.
    pub(crate) fn refused_here(&mut self, route: Route, after: Zxid, connect: bool) {
        let origin = route.origin;
        if connect {
            // The handshake has no error code to carry (ConnectResponse has none): close
            // the connection, as ZooKeeper does with a handshake it cannot serve; the client
            // reconnects. A connection in its handshake waits for no other answer.
            self.effects.push(Effect::Send {
                shard: origin.shard,
                msg: FromCore::CloseConnection {
                    conn: origin.conn,
                    session: SessionId(0),
                },
            });
            return;
        }
        self.room.waiting.push_back((after, origin));
    }

    /// The answers of refusals whose predecessors are now committed, in order: they carry
    /// the last committed zxid and trigger no watch (nothing changed).
    pub(crate) fn refusals_due(&mut self) -> Vec<Committed> {
        let at = self.zxid_committed();
        let mut due = Vec::new();
        while let Some(&(after, origin)) = self.room.waiting.front() {
            if after > at {
                break;
            }
            self.room.waiting.pop_front();
            due.push(Committed {
                zxid: at,
                origin: Some(origin),
                outcome: Outcome::Applied(Applied {
                    result: OpResult::Error(REFUSED_FOR_ROOM),
                    triggers: Default::default(),
                    stale: false,
                }),
                closed_session: None,
            });
        }
        due
    }

    /// An expiry the log had no room for: the session is still in the tree, so it must come
    /// due again (its deadline was taken off the queue when it expired).
    fn rearm_refused_expiry(&mut self, session: SessionId) {
        let timeout = self
            .newest_tree()
            .sessions()
            .find(|(id, _)| *id == session)
            .map(|(_, t)| t);
        if let Some(timeout) = timeout {
            self.expiry
                .add(session, timeout.max(0) as u32, self.now.mono_ms);
        }
    }
}
