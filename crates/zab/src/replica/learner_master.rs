//! Observer masters (ZooKeeper 3.6's `observerMasterPort`, `ObserverMaster` and
//! `Observer.findLearnerMaster`): a follower that serves observers in place of the leader,
//! so that the leader's cost per write does not grow with the number of observers.
//!
//! Follower side. A voter listed in `Config::observer_masters` that follows a leader in
//! broadcast answers an observer's FOLLOWERINFO as a leader would, with the same frames:
//! LEADERINFO of its leader's epoch; on ACKEPOCH a DIFF, TRUNC or SNAP computed from its own
//! window, followed by the PROPOSALs and NEWLEADER; on the NEWLEADER ack, INFORMs and
//! UPTODATE; then an INFORM for every entry it applies and a PING every tick. It only ever
//! hands an observer what it has *applied* itself (committed and durable here), never what
//! it merely holds: an observer's log is committed history, a prefix of every later
//! leader's, so a master that falls behind or changes leader never has to take anything back.
//! Applied only grows within a following session (a TRUNC never goes below it, a SNAP moves
//! it up), so the master keeps serving while it reconnects to its leader; it stops (and
//! tells each observer with a notification, as ZooKeeper closes the observers' sockets) when
//! it leaves the role.
//!
//! Observer side. An observer that decides on a leader picks its upstream at random among
//! the observer masters that told it they follow that leader, passing over the one it just
//! left for a fault, and falls back to the leader when none is there. Its session (the
//! handshake, INFORMs, pings) runs with the upstream; `Replica::leader` stays the leader,
//! and the member sends its clients' requests through the upstream, which relays them
//! (crates/member/src/forward.rs, `Relay`). It goes Looking, and chooses again, when its
//! link with the upstream or the leader is lost, when the upstream is silent (syncLimit, or
//! initLimit while synchronising), or when the upstream reports that it no longer follows
//! the leader.

use std::collections::BTreeMap;

use zoocore_proto::Zxid;

use super::{Action, Message, PeerState, Replica, Role, ServerId, Sessions, Vote};

/// What a master knows of one observer it serves.
#[derive(Debug)]
struct Served {
    conn: u64,
    phase: ServedPhase,
    last_heard: u64,
    /// The last zxid whose data this observer was sent (PROPOSAL in sync, INFORM after).
    sent_through: Zxid,
}

#[derive(Debug)]
enum ServedPhase {
    /// FOLLOWERINFO received, LEADERINFO sent: waiting for ACKEPOCH.
    Info { base: Zxid, epochs: Vec<Zxid> },
    /// Synchronised and NEWLEADER sent: waiting for its acknowledgement.
    Synced,
    /// UPTODATE sent: an INFORM for every entry applied here.
    Broadcast,
}

/// A follower's observers, by id.
#[derive(Debug, Default)]
pub(super) struct ObserverMaster {
    observers: BTreeMap<ServerId, Served>,
    /// Observer sessions that got past FOLLOWERINFO with this master: a duplicate of one
    /// the observer left starts nothing (as on a leader).
    sessions: Sessions,
}

impl ObserverMaster {
    pub(super) fn serves(&self, id: ServerId) -> bool {
        self.observers.contains_key(&id)
    }

    pub(super) fn lost(&mut self, id: ServerId) {
        self.observers.remove(&id);
    }

    /// Stops serving: the observers it served, to tell.
    pub(super) fn take(&mut self) -> Vec<ServerId> {
        std::mem::take(&mut self.observers).into_keys().collect()
    }

    /// How many observers are in broadcast with this master.
    pub(super) fn in_broadcast(&self) -> usize {
        self.observers
            .values()
            .filter(|s| matches!(s.phase, ServedPhase::Broadcast))
            .count()
    }
}

impl Replica {
    /// This voter may serve observers (masters are configured, and it votes now).
    fn is_observer_master(&self) -> bool {
        self.config.observer_masters && !self.observer
    }

    /// Whether an observer's FOLLOWERINFO is this voter's to answer as a master: it is one,
    /// and it follows (serving once in broadcast) or is looking (it then says so).
    pub(super) fn answers_observers(&self) -> bool {
        self.is_observer_master() && matches!(self.role, Role::Following(_) | Role::Looking(_))
    }

    /// On a master: whether it serves observer `id` (its session is with this member).
    pub fn serves_observer(&self, id: ServerId) -> bool {
        self.master.serves(id)
    }

    /// On a master: the observers in broadcast with it (0 on any other member).
    pub fn observers_served(&self) -> usize {
        self.master.in_broadcast()
    }

    /// On an observer: the member its session is with (its observer master, or the leader).
    pub fn upstream(&self) -> Option<ServerId> {
        match &self.role {
            Role::Following(l) | Role::Observing(l) => Some(l.upstream),
            _ => None,
        }
    }

    /// A reconfig took effect: a served observer it made a voter joins the leader as one
    /// (its own role changed), so it is no longer this master's.
    pub(super) fn master_forget_voters(&mut self) {
        let quorum = &self.quorum;
        self.master.observers.retain(|id, _| !quorum.is_voter(*id));
    }

    /// An observer's FOLLOWERINFO to this master (ObserverMaster's LearnerHandler start).
    pub(super) fn master_on_follower_info(&mut self, from: ServerId, msg: Message) {
        let Message::FollowerInfo {
            conn,
            accepted_epoch,
            base,
            epochs,
            ..
        } = msg
        else {
            return;
        };
        let (epoch, serving) = match &self.role {
            Role::Following(l) => (l.epoch, l.phase == super::LearnerPhase::Broadcast),
            _ => {
                // Looking: no history to serve from. Saying so sends the observer to look
                // again at once instead of after initLimit.
                self.send(from, self.notification());
                return;
            }
        };
        // Not yet in broadcast, an observer ahead of what this master applied, or one that
        // promised a later epoch: no answer; the observer repeats its FOLLOWERINFO every tick
        // and looks for another upstream after initLimit.
        if !serving || base > self.applied || accepted_epoch > epoch {
            return;
        }
        let now = self.now;
        if let Some(s) = self.master.observers.get_mut(&from) {
            if s.conn == conn {
                s.last_heard = now;
                if matches!(s.phase, ServedPhase::Info { .. }) {
                    self.send(from, Message::LeaderInfo { conn, epoch });
                }
                return;
            }
        }
        if self.master.sessions.seen(from, conn) {
            return; // a delayed duplicate of a session the observer left
        }
        self.master.observers.insert(
            from,
            Served {
                conn,
                phase: ServedPhase::Info { base, epochs },
                last_heard: now,
                sent_through: Zxid::ZERO,
            },
        );
        self.send(from, Message::LeaderInfo { conn, epoch });
    }

    /// An observer's session message to this master.
    pub(super) fn master_receive(&mut self, from: ServerId, conn: u64, msg: Message) {
        let now = self.now;
        let Some(s) = self.master.observers.get_mut(&from) else {
            return;
        };
        if s.conn != conn {
            return;
        }
        s.last_heard = now;
        match (&s.phase, msg) {
            (ServedPhase::Info { .. }, Message::AckEpoch { .. }) => {
                self.master.sessions.past_followerinfo(from, conn);
                self.master_sync(from)
            }
            (ServedPhase::Synced, Message::AckNewLeader { epoch, .. }) => {
                let leader_epoch = self.learning_ref().epoch;
                if epoch != leader_epoch {
                    self.master.observers.remove(&from);
                    return;
                }
                self.master_inform_one(from);
                let s = self.master.observers.get_mut(&from).expect("present");
                s.phase = ServedPhase::Broadcast;
                let committed = s.sent_through;
                self.send(from, Message::UpToDate { conn, committed });
            }
            _ => {}
        }
    }

    /// LearnerHandler.syncFollower from this master's window, bounded by what it applied.
    fn master_sync(&mut self, id: ServerId) {
        let epoch = self.learning_ref().epoch;
        let limit = self.applied;
        let s = self.master.observers.get(&id).expect("present");
        let conn = s.conn;
        let ServedPhase::Info { base, epochs } = &s.phase else {
            return;
        };
        let (base, epochs) = (*base, epochs.clone());
        let from = if base < self.log.base {
            // Behind the window: SNAP of the tree, which is at `applied` when this action is
            // reached. The observer drops what it holds past it (all committed history it
            // will be sent again).
            self.actions.push(Action::SendSnapshot {
                to: id,
                conn,
                zxid: limit,
                keep: limit,
            });
            limit
        } else if base > self.log.base && self.log.get(base).is_none() {
            // It applied an entry this master never had: not history this master can serve.
            self.master.observers.remove(&id);
            return;
        } else {
            let common = self.common_point_upto(base, &epochs, limit);
            let observer_last = epochs.last().copied().unwrap_or(base).max(base);
            if common < observer_last {
                self.send(
                    id,
                    Message::Trunc {
                        conn,
                        after: common,
                    },
                );
            } else {
                self.send(id, Message::Diff { conn });
            }
            common
        };
        self.send_proposals(id, conn, from, limit);
        self.send(
            id,
            Message::NewLeader {
                conn,
                epoch,
                last: limit,
            },
        );
        let s = self.master.observers.get_mut(&id).expect("present");
        s.phase = ServedPhase::Synced;
        s.sent_through = limit;
    }

    /// `Replica::common_point` over this log as if it ended at `limit`.
    fn common_point_upto(&self, floor: Zxid, epochs: &[Zxid], limit: Zxid) -> Zxid {
        let mut common = floor;
        for f_last in epochs.iter().copied().filter(|z| *z > floor) {
            let mine = self
                .log
                .entries
                .iter()
                .rev()
                .skip_while(|e| e.0 > limit)
                .find(|e| e.0.epoch() == f_last.epoch())
                .map(|e| e.0);
            match mine {
                Some(l) if l == f_last => common = f_last,
                Some(l) if l > f_last => {
                    common = f_last;
                    break;
                }
                Some(l) => {
                    common = common.max(l);
                    break;
                }
                None => break,
            }
        }
        common.min(limit).max(floor)
    }

    /// After every step: an INFORM to each observer in broadcast for what was applied since.
    pub(super) fn master_inform(&mut self) {
        if self.master.observers.is_empty() {
            return;
        }
        let applied = self.applied;
        let behind: Vec<ServerId> = self
            .master
            .observers
            .iter()
            .filter(|(_, s)| matches!(s.phase, ServedPhase::Broadcast) && s.sent_through < applied)
            .map(|(id, _)| *id)
            .collect();
        for id in behind {
            self.master_inform_one(id);
        }
    }

    /// INFORMs to `id` for the entries after what it was sent, up to `applied`
    /// (`send_informs`, as a leader's `inform_observer`).
    fn master_inform_one(&mut self, id: ServerId) {
        let applied = self.applied;
        let s = &self.master.observers[&id];
        let (conn, from) = (s.conn, s.sent_through);
        if from >= applied {
            return;
        }
        self.send_informs(id, conn, from, applied);
        self.master
            .observers
            .get_mut(&id)
            .expect("present")
            .sent_through = applied;
    }

    /// Every tick: forget observers silent for syncLimit (initLimit while synchronising), and
    /// ping the others with what this master applied.
    pub(super) fn master_tick(&mut self, now: u64) {
        if !matches!(self.role, Role::Following(_)) || self.master.observers.is_empty() {
            return;
        }
        let (init, sync) = (self.config.init_limit_ms, self.config.sync_limit_ms);
        self.master.observers.retain(|_, s| {
            let limit = match s.phase {
                ServedPhase::Broadcast => sync,
                _ => init,
            };
            now.saturating_sub(s.last_heard) <= limit
        });
        let committed = self.applied;
        let pings: Vec<(ServerId, u64)> = self
            .master
            .observers
            .iter()
            .map(|(id, s)| (*id, s.conn))
            .collect();
        for (id, conn) in pings {
            self.send(
                id,
                Message::Ping {
                    conn,
                    committed,
                    round: 0,
                },
            );
        }
    }

    /// A master left its role: each observer it served hears this member's notification
    /// (now Looking) and looks for another upstream at once.
    pub(super) fn release_observers(&mut self, served: Vec<ServerId>) {
        if served.is_empty() {
            return;
        }
        let msg = self.notification();
        for id in served {
            self.send(id, msg.clone());
        }
    }

    /// An observer: whom to run its session with, once it decided on `leader`: a random
    /// observer master that told this observer it follows `leader` (not the one it just
    /// left), else the leader itself.
    pub(super) fn choose_upstream(&mut self, leader: ServerId) -> ServerId {
        if !self.observer || !self.config.observer_masters {
            return leader;
        }
        let Role::Looking(looking) = &self.role else {
            return leader;
        };
        let candidates: Vec<ServerId> =
            self.membership
                .current
                .voters
                .iter()
                .copied()
                .filter(|id| {
                    *id != leader
                        && Some(*id) != self.master_failed
                        && looking.out_of_election.get(id).is_some_and(|(v, s, _)| {
                            *s == PeerState::Following && v.leader == leader
                        })
                })
                .collect();
        if candidates.is_empty() {
            return leader;
        }
        let pick = (self.next_conn() % candidates.len() as u64) as usize;
        candidates[pick]
    }

    /// Called as any role ends: an observer leaving its observer master remembers it, to
    /// pass it over in its next choice (and forgets it once it left the leader itself).
    pub(super) fn note_failed_master(&mut self) {
        if let Role::Observing(l) = &self.role {
            self.master_failed = (l.upstream != l.leader).then_some(l.upstream);
        }
    }

    /// An observer hears from its observer master that it no longer follows its leader.
    pub(super) fn master_left(&self, from: ServerId, vote: Vote, state: PeerState) -> bool {
        match &self.role {
            Role::Observing(l) if from == l.upstream && l.upstream != l.leader => {
                state != PeerState::Following || vote.leader != l.leader
            }
            _ => false,
        }
    }

    pub(super) fn master_invariants(&self) {
        if !matches!(self.role, Role::Following(_)) {
            assert!(
                self.master.observers.is_empty(),
                "observers served outside Following"
            );
        }
        for (id, s) in &self.master.observers {
            assert!(
                s.sent_through <= self.applied,
                "observer {id} sent {} beyond applied {}",
                s.sent_through,
                self.applied
            );
            assert!(!self.quorum.is_voter(*id), "serving {id}, a voter");
        }
        if let Role::Observing(l) | Role::Following(l) = &self.role {
            assert!(
                l.upstream == l.leader || self.observer,
                "a follower's session is with its leader"
            );
        }
    }
}
