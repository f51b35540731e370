//! One ZAB replica: the role it plays (`Role::{Looking, Leading, Following, Observing}`), its
//! view of the log, its epochs, and the handlers for every input.
//!
//! Dispatch is raft-rs style: [`Replica::step`] routes an input to `on_<message>` of the
//! current role, and every handler only pushes [`Action`]s. Durability is ordered here, not in
//! the driver: an ACK is sent only for a zxid the driver reported `Persisted`, ACKEPOCH only
//! after the accepted epoch is durable (`EpochPersisted`), the current epoch only after the
//! history NEWLEADER closes is durable (ZOOKEEPER-4643), and the NEWLEADER ack only after
//! both are (Zab paper §IV, phases 1 and 2; ZooKeeper's `Learner.syncWithLeader`).
//! `invariants()` runs at the end of every step.
//!
//! Time is an input that says how much time passed: every `Tick` carries the driver's
//! monotonic clock in milliseconds, and every timeout (initLimit, syncLimit, finalizeWait) is
//! a comparison of two such readings. A process frozen for ten seconds (SIGSTOP, a stalled VM)
//! sees ten seconds at its first tick after it resumes, so a leader whose followers have not
//! been heard from for syncLimit steps down at that tick, before the driver answers anything
//! (the driver feeds the time first on wake-up). Counting ticks instead let a frozen leader
//! keep serving stale reads for a whole syncLimit after it resumed (issue 10).
//!
//! Reads that must be linearizable (`sync`) wait for a read round (etcd's ReadIndex): the
//! leader numbers its heartbeats, a `sync` that arrives waits for the first round that starts
//! after it, and the round is confirmed once a quorum of voters (the leader included) has
//! echoed its number, which proves no later epoch was established before the sync arrived.
//! One round serves every sync waiting for it; a lost ping is repeated by the next tick's.
//!
//! Leadership moves on request (docs/ZAB.md, "Leadership transfer"), as Raft's TimeoutNow:
//! the leader stops handing out zxids (requests wait in the member), waits until the target
//! has acknowledged everything proposed and everything is applied here, tells every learner
//! `Handover { target }` and goes Looking. A voter told so votes for the target in the
//! election that follows, whatever the usual order (epoch, zxid, myid) says; the hint
//! lapses after syncLimit, so a target that died leaves an ordinary election behind. A
//! transfer that does not complete within syncLimit is dropped and proposing resumes.
//!
//! The log kept here is a window: every entry after `base` (the zxid of the state the
//! driver's tree holds as committed), trimmed to `history_retain` committed entries like
//! ZooKeeper's `committedLog`; a learner behind the window is synchronised by SNAP.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use thiserror::Error;
use zoocore_proto::Zxid;

use crate::membership::{Members, Membership, ReconfigOf};
use crate::msg::{Message, NotifiedConfig, Payload, PeerState, Vote};
use crate::quorum::Quorum;
use crate::{Epoch, ServerId};

mod learner_master;
use learner_master::ObserverMaster;

/// Static configuration of one replica.
#[derive(Clone, Debug)]
pub struct Config {
    pub myid: ServerId,
    pub voters: Vec<ServerId>,
    pub observers: Vec<ServerId>,
    /// Milliseconds a leader may take to establish, and a learner to synchronise
    /// (`initLimit × tickTime`).
    pub init_limit_ms: u64,
    /// Milliseconds of silence after which a leader or learner gives up
    /// (`syncLimit × tickTime`).
    pub sync_limit_ms: u64,
    /// Milliseconds an elector waits for a better vote once a quorum agrees (`finalizeWait`);
    /// 0 decides at once.
    pub finalize_wait_ms: u64,
    /// Committed entries kept in memory for DIFF; a learner further behind gets SNAP.
    pub history_retain: usize,
    /// The zxid of the reconfig that made `voters` and `observers` (`ZERO`: never
    /// reconfigured); reconfigs in the log at or below it are already in them.
    pub config_version: Zxid,
    /// Recognises a reconfig proposal and reads its membership (docs/ZAB.md, "Dynamic
    /// reconfiguration"); `membership::no_reconfig` where there are none.
    pub reconfig_of: ReconfigOf,
    /// Voters serve observers (ZooKeeper's `observerMasterPort`): while following, each
    /// voter of the membership in effect synchronises observers from its own committed
    /// history and relays its commits to them, so the leader's cost does not grow with
    /// observers. An observer picks one of them (not the leader) at random, and falls back
    /// to the leader when none is there. The voters are those of the membership in effect,
    /// so a voter a reconfig added serves and a removed one stops. `false`: observers learn
    /// from the leader (docs/ZAB.md, "Observer masters").
    pub observer_masters: bool,
}

/// What the driver recovered from disk at start-up.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub accepted_epoch: Epoch,
    pub current_epoch: Epoch,
    /// The zxid of the snapshot the driver's tree was loaded from.
    pub base: Zxid,
    /// The durable log after `base`, ascending.
    pub log: Vec<(Zxid, Payload)>,
}

/// An input to [`Replica::step`].
#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed: `now_ms` is the driver's monotonic clock (never going back). Periodic
    /// work (pings, vote resends) happens once per tick, so the driver spaces ticks (a
    /// fraction of `tickTime`); the timeouts compare `now_ms` readings, so a tick after a long
    /// stall sees the whole stall.
    Tick { now_ms: u64 },
    /// A peer message arrived.
    Receive { from: ServerId, msg: Message },
    /// A client transaction on the leader, prepared at `zxid` (from [`Replica::next_zxid`]).
    Propose { zxid: Zxid, data: Payload },
    /// The driver made the log durable through `upto` for the `Sync` with this `token`.
    Persisted { upto: Zxid, token: u64 },
    /// The driver made these epochs durable.
    EpochPersisted { accepted: Epoch, current: Epoch },
    /// The driver installed the snapshot at `zxid` (tree replaced, log emptied) durably.
    SnapshotInstalled { zxid: Zxid },
    /// The driver's connection from `peer` closed (the peer process died or the network
    /// broke). A learner whose leader it is goes back to Looking at once instead of waiting
    /// out syncLimit, as ZooKeeper's follower does when its leader socket closes. A leader
    /// counts that learner as unheard-from until it hears from it again, and steps down at
    /// once if the voters it still hears from are no quorum.
    PeerLost { peer: ServerId },
}

/// An action for the driver, to execute in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send {
        to: ServerId,
        msg: Message,
    },
    /// Append to the log (not yet durable).
    Append {
        zxid: Zxid,
        data: Payload,
    },
    /// Remove every log record after `after`.
    Truncate {
        after: Zxid,
    },
    /// Make the log durable through `upto`, then feed `Persisted { upto, token }`.
    Sync {
        upto: Zxid,
        token: u64,
    },
    /// Write the epochs durably, then feed `EpochPersisted`.
    PersistEpoch {
        accepted: Epoch,
        current: Epoch,
    },
    /// Apply the transaction to the tree and answer its client.
    Commit {
        zxid: Zxid,
        data: Payload,
    },
    /// Send `Message::Snap { conn, zxid, keep, data }` to `to`, with `data` the tree at
    /// `zxid` (it is at `zxid` when this action is reached), before any later `Send` to `to`.
    SendSnapshot {
        to: ServerId,
        conn: u64,
        zxid: Zxid,
        keep: Zxid,
    },
    /// Replace the tree with this snapshot and drop the log records at or below `zxid`
    /// (those after it stay); then feed `SnapshotInstalled`.
    InstallSnapshot {
        zxid: Zxid,
        data: Payload,
    },
    /// Stop serving clients: an election started. Outstanding proposals have no answer.
    BecameLooking,
    /// This replica leads `epoch` and serves (NEWLEADER acknowledged by a quorum).
    BecameLeader {
        epoch: Epoch,
    },
    /// This replica follows `leader` in `epoch` and serves (UPTODATE received).
    BecameFollower {
        leader: ServerId,
        epoch: Epoch,
    },
    BecameObserver {
        leader: ServerId,
        epoch: Epoch,
    },
    /// Leader: a quorum of voters confirmed this leadership in every read round up to
    /// `round` (see [`Replica::read_index`]); a `sync` that waited for one of them may be
    /// answered once the tree holds the zxid it noted when it arrived.
    LeadershipConfirmed {
        round: u64,
    },
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StepError {
    #[error("not an established leader")]
    NotLeader,
    #[error("proposal zxid {got} is not the next zxid {want}")]
    WrongZxid { got: Zxid, want: Zxid },
    #[error("not a follower in broadcast")]
    NotFollower,
    #[error("no synchronised follower {0} to hand leadership to")]
    NoTarget(String),
    #[error("a leadership transfer to {0} is under way")]
    Transferring(ServerId),
}

/// The role, without its state, for callers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleKind {
    Looking,
    Leading,
    Following,
    Observing,
}

/// The log window: entries after `base`, zxids strictly ascending.
#[derive(Clone, Debug)]
struct Log {
    base: Zxid,
    entries: VecDeque<(Zxid, Payload)>,
}

impl Log {
    fn last(&self) -> Zxid {
        self.entries.back().map_or(self.base, |e| e.0)
    }

    fn position(&self, zxid: Zxid) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.0.cmp(&zxid))
    }

    fn get(&self, zxid: Zxid) -> Option<&Payload> {
        self.position(zxid).ok().map(|i| &self.entries[i].1)
    }

    /// Entries after `zxid` (which must be `base` or in the log).
    fn after(&self, zxid: Zxid) -> impl Iterator<Item = &(Zxid, Payload)> + '_ {
        let start = match self.position(zxid) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.entries.range(start..)
    }

    fn push(&mut self, zxid: Zxid, data: Payload) {
        let last = self.last();
        assert!(zxid > last, "log append {zxid} not after {last}");
        self.entries.push_back((zxid, data));
    }

    fn truncate_after(&mut self, after: Zxid) {
        assert!(
            after >= self.base,
            "truncate to {after} below base {}",
            self.base
        );
        while self.entries.back().is_some_and(|e| e.0 > after) {
            self.entries.pop_back();
        }
    }

    /// The last zxid of each epoch present after `floor`, ascending.
    fn epochs_after(&self, floor: Zxid) -> Vec<Zxid> {
        let mut out: Vec<Zxid> = Vec::new();
        for (z, _) in self.after(floor) {
            match out.last_mut() {
                Some(l) if l.epoch() == z.epoch() => *l = *z,
                _ => out.push(*z),
            }
        }
        out
    }

    fn last_in_epoch(&self, epoch: u32) -> Option<Zxid> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.0.epoch() == epoch)
            .map(|e| e.0)
    }
}

/// How a leader brings one learner to its history (ZooKeeper `LearnerHandler.syncFollower`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SyncPlan {
    Diff { from: Zxid },
    Trunc { after: Zxid },
    Snap { zxid: Zxid, keep: Zxid },
}

/// The FastLeaderElection state of a looking replica.
#[derive(Debug, Default)]
struct Looking {
    /// Votes of this round, by sender (ours included).
    recv: BTreeMap<ServerId, Vote>,
    /// Votes of servers that already follow or lead, with their state and the round they
    /// decided in.
    out_of_election: BTreeMap<ServerId, (Vote, PeerState, u64)>,
    finalize_at: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum HandlerPhase {
    /// FOLLOWERINFO received; LEADERINFO pending or sent.
    Info,
    /// ACKEPOCH received; waiting for the epoch quorum before synchronising.
    EpochAcked,
    /// Synchronisation and NEWLEADER sent.
    Synced,
    /// NEWLEADER acknowledged; waiting for the leader to establish.
    AckedNewLeader,
    /// UPTODATE sent: in broadcast.
    Broadcast,
}

/// The leader's view of one learner (ZooKeeper's `LearnerHandler`).
#[derive(Debug)]
struct Handler {
    conn: u64,
    observer: bool,
    phase: HandlerPhase,
    base: Zxid,
    epochs: Vec<Zxid>,
    leaderinfo_sent: bool,
    /// Its ACKEPOCH promised the epoch to this leader (counts toward the epoch quorum).
    epoch_vote: bool,
    last_heard: u64,
    /// Its link was reported lost (`PeerLost`) and nothing was heard from it since.
    lost: bool,
    /// The highest read round it echoed.
    round: u64,
    acked: Zxid,
    /// The last zxid whose data this learner was sent.
    sent_through: Zxid,
    /// The history NEWLEADER closed for this learner.
    newleader_last: Zxid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeaderPhase {
    /// Phase 1: collecting FOLLOWERINFO from a quorum to fix the new epoch.
    Discovery,
    /// Waiting for a quorum of ACKEPOCH.
    EpochAck,
    /// Phase 2: synchronising; waiting for a quorum of NEWLEADER acks.
    Sync,
    /// Phase 3.
    Broadcast,
}

#[derive(Debug)]
struct Leading {
    phase: LeaderPhase,
    since: u64,
    epoch: Epoch,
    accepted: BTreeMap<ServerId, Epoch>,
    handlers: BTreeMap<ServerId, Handler>,
    next_counter: u32,
    /// The last read round started (0: none yet).
    round: u64,
    /// The last read round a quorum of voters echoed.
    round_confirmed: u64,
    /// A read waits for the round after `round`, to start when `round` is confirmed.
    round_wanted: bool,
    /// A leadership transfer under way: no new zxid is handed out meanwhile.
    transfer: Option<Transfer>,
    /// Learner sessions that got past FOLLOWERINFO with this leader.
    sessions: Sessions,
}

/// How many of a learner's sessions a leader or master remembers: only the simulator's
/// datagram mode delays a frame by more than a session or two.
const SESSIONS_REMEMBERED: usize = 8;

/// The learner sessions (`conn`s) that got past FOLLOWERINFO here (ACKEPOCH came on them),
/// the last few per learner. A learner never goes back to a session it left, so a
/// FOLLOWERINFO naming one that is not the session in course is a delayed duplicate: it
/// must not start a handshake. A duplicate of an older session replaced the live session's
/// handler, then a duplicate of the live session opened a new handshake on it, which the
/// learner, in broadcast, ignored while it answered its pings: alive and never sent another
/// entry (sim seed 2634, 200 ticks, datagram mode; crates/zab/tests/stale_followerinfo.rs).
#[derive(Debug, Default)]
struct Sessions(BTreeMap<ServerId, VecDeque<u64>>);

impl Sessions {
    fn past_followerinfo(&mut self, id: ServerId, conn: u64) {
        let conns = self.0.entry(id).or_default();
        if conns.len() == SESSIONS_REMEMBERED {
            conns.pop_front();
        }
        conns.push_back(conn);
    }

    fn seen(&self, id: ServerId, conn: u64) -> bool {
        self.0.get(&id).is_some_and(|conns| conns.contains(&conn))
    }
}

/// A leader handing over to `target`, given up at `until_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transfer {
    target: ServerId,
    until_ms: u64,
}

/// A voter told that leadership moves to `target` (which holds the history through
/// `last`): it votes for `target` until `until_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Handover {
    target: ServerId,
    last: Zxid,
    until_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LearnerPhase {
    AwaitLeaderInfo,
    AwaitSync,
    Syncing,
    AwaitUpToDate,
    Broadcast,
}

/// A follower's or observer's session with its leader (ZooKeeper `Learner`).
#[derive(Debug)]
struct Learning {
    leader: ServerId,
    /// The member this session is with: the leader, or for an observer the follower that
    /// serves it (an observer master).
    upstream: ServerId,
    /// The election round in which `leader` last voted for itself before leading, as far as
    /// this learner knows: a LOOKING notification from `leader` of a later round means it
    /// has left that leadership.
    leader_round: u64,
    conn: u64,
    phase: LearnerPhase,
    epoch: Epoch,
    last_heard: u64,
    /// When the session last moved to a new phase; synchronisation must progress within
    /// initLimit even while pings keep arriving.
    progress_at: u64,
    ackepoch_pending: bool,
    /// The pending ACKEPOCH promises the epoch now (see `on_leader_info`).
    ackepoch_fresh: bool,
    newleader_pending: Option<Zxid>,
    newleader_acked: bool,
    acked: Zxid,
}

#[derive(Debug)]
enum Role {
    Looking(Looking),
    Leading(Leading),
    Following(Learning),
    Observing(Learning),
}

/// A ZAB replica. See the crate documentation for the driver's contract.
#[derive(Debug)]
pub struct Replica {
    config: Config,
    /// The voters of the membership in effect (`membership.current`).
    quorum: Quorum,
    membership: Membership,
    observer: bool,
    rng: u64,
    now: u64,
    log: Log,
    accepted: Epoch,
    current: Epoch,
    accepted_durable: Epoch,
    current_durable: Epoch,
    persisted: Zxid,
    token: u64,
    snap_pending: Option<Zxid>,
    committed: Zxid,
    applied: Zxid,
    logical_clock: u64,
    /// The highest epoch a learner has told this replica it accepted: an epoch this replica
    /// proposes as leader is above it, so that learner can join (not durable; a hint).
    epoch_floor: Epoch,
    vote: Vote,
    /// The election this replica is in (or about to start) is a hand-over to a known target.
    handover: Option<Handover>,
    /// A follower's observers (it is an observer master); empty in every other role.
    master: ObserverMaster,
    /// An observer: the observer master it last left for a fault, passed over in its next
    /// choice so that it fails over to another follower (or the leader).
    master_failed: Option<ServerId>,
    role: Role,
    /// Why this replica last went Looking, for the driver's log.
    why_looking: String,
    appended: bool,
    actions: Vec<Action>,
}

impl Replica {
    /// A replica starting in Looking from its recovered state; `seed` feeds its connection
    /// ids. The first actions (the election's notifications) are in `ready()`.
    pub fn new(config: Config, durable: Durable, seed: u64) -> Replica {
        let quorum = Quorum::new(config.voters.iter().copied());
        // A server outside the membership (removed by a reconfig) votes for no one and
        // learns as an observer would.
        let observer = !quorum.is_voter(config.myid);
        let mut membership = Membership::new(
            config.config_version,
            Members::new(
                config.voters.iter().copied(),
                config.observers.iter().copied(),
            ),
        );
        for (z, d) in &durable.log {
            if let Some(m) = (config.reconfig_of)(d) {
                membership.logged(*z, m);
            }
        }
        assert!(
            durable.current_epoch <= durable.accepted_epoch,
            "recovered current epoch above accepted"
        );
        let mut log = Log {
            base: durable.base,
            entries: VecDeque::new(),
        };
        for (z, d) in durable.log {
            log.push(z, d);
        }
        let last = log.last();
        let mut r = Replica {
            quorum,
            membership,
            observer,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            now: 0,
            accepted: durable.accepted_epoch,
            current: durable.current_epoch,
            accepted_durable: durable.accepted_epoch,
            current_durable: durable.current_epoch,
            persisted: last,
            token: 0,
            snap_pending: None,
            committed: durable.base,
            applied: durable.base,
            logical_clock: 0,
            epoch_floor: durable.accepted_epoch,
            vote: Vote {
                leader: config.myid,
                zxid: last,
                peer_epoch: durable.current_epoch,
            },
            handover: None,
            master: ObserverMaster::default(),
            master_failed: None,
            role: Role::Looking(Looking::default()),
            why_looking: String::new(),
            appended: false,
            actions: Vec::new(),
            log,
            config,
        };
        r.go_looking("starting");
        r.actions.retain(|a| *a != Action::BecameLooking);
        r.invariants();
        r
    }

    // ---- queries ----

    pub fn id(&self) -> ServerId {
        self.config.myid
    }

    /// Why this replica last went Looking (an election round it started; empty before its
    /// first): what the driver logs beside the role change.
    pub fn why_looking(&self) -> &str {
        &self.why_looking
    }

    pub fn role(&self) -> RoleKind {
        match self.role {
            Role::Looking(_) => RoleKind::Looking,
            Role::Leading(_) => RoleKind::Leading,
            Role::Following(_) => RoleKind::Following,
            Role::Observing(_) => RoleKind::Observing,
        }
    }

    /// The leader this replica follows or is, once decided.
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Looking(_) => None,
            Role::Leading(_) => Some(self.config.myid),
            Role::Following(l) | Role::Observing(l) => Some(l.leader),
        }
    }

    /// Whether this replica serves clients: an established leader, or a learner past UPTODATE.
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Looking(_) => false,
            Role::Leading(l) => l.phase == LeaderPhase::Broadcast,
            Role::Following(l) | Role::Observing(l) => l.phase == LearnerPhase::Broadcast,
        }
    }

    pub fn accepted_epoch(&self) -> Epoch {
        self.accepted
    }

    pub fn current_epoch(&self) -> Epoch {
        self.current
    }

    pub fn last_zxid(&self) -> Zxid {
        self.log.last()
    }

    pub fn committed(&self) -> Zxid {
        self.committed
    }

    /// The last zxid handed out in a `Commit` action (or installed by snapshot).
    pub fn applied(&self) -> Zxid {
        self.applied
    }

    /// Whether `zxid` is in this replica's history: at or below the window's base, or in it.
    pub fn has(&self, zxid: Zxid) -> bool {
        zxid <= self.log.base || self.log.get(zxid).is_some()
    }

    /// On a leader: learners with a session (followers and observers), and followers in
    /// broadcast (ZooKeeper's `zk_followers` / `zk_synced_followers`); zeros otherwise.
    pub fn learner_counts(&self) -> (usize, usize) {
        match &self.role {
            Role::Leading(l) => (
                l.handlers.len(),
                l.handlers
                    .values()
                    .filter(|h| !h.observer && h.phase == HandlerPhase::Broadcast)
                    .count(),
            ),
            _ => (0, 0),
        }
    }

    /// The zxid the next proposal must carry, if this replica is an established leader that
    /// is not handing its leadership over.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.role {
            Role::Leading(l) if l.phase == LeaderPhase::Broadcast && l.transfer.is_none() => {
                Some(Zxid::new(l.epoch.0, l.next_counter))
            }
            _ => None,
        }
    }

    /// The member leadership is being handed to: the target of a transfer this leader runs,
    /// or of the hand-over election this replica is in.
    pub fn handover_target(&self) -> Option<ServerId> {
        match &self.role {
            Role::Leading(Leading {
                transfer: Some(t), ..
            }) => Some(t.target),
            _ => self.handover.map(|h| h.target),
        }
    }

    /// Leader: hand leadership to `target`, or with `None` to the follower that has
    /// acknowledged the most (the lowest myid among equals). Proposing stops until the
    /// transfer completes or is given up after syncLimit. Actions follow in `ready()`.
    pub fn transfer_leadership(&mut self, target: Option<ServerId>) -> Result<ServerId, StepError> {
        let Role::Leading(l) = &self.role else {
            return Err(StepError::NotLeader);
        };
        if l.phase != LeaderPhase::Broadcast {
            return Err(StepError::NotLeader);
        }
        if let Some(t) = l.transfer {
            return Err(StepError::Transferring(t.target));
        }
        let synced = |h: &Handler| !h.observer && h.phase == HandlerPhase::Broadcast && !h.lost;
        let quorum = &self.quorum;
        let target = match target {
            Some(id) => {
                if !quorum.is_voter(id) || !l.handlers.get(&id).is_some_and(synced) {
                    return Err(StepError::NoTarget(id.to_string()));
                }
                id
            }
            None => l
                .handlers
                .iter()
                .filter(|(id, h)| quorum.is_voter(**id) && synced(h))
                .max_by_key(|(id, h)| (h.acked, std::cmp::Reverse(**id)))
                .map(|(id, _)| *id)
                .ok_or_else(|| StepError::NoTarget("at all".to_string()))?,
        };
        let until_ms = self.now + self.config.sync_limit_ms;
        self.leading().transfer = Some(Transfer { target, until_ms });
        self.resend_unacked(target);
        self.check_transfer();
        self.invariants();
        Ok(target)
    }

    /// Sends `id` again every proposal after the last one it acknowledged. A learner sees a
    /// lost PROPOSAL only at the next one, and a leader handing over proposes nothing more:
    /// the repeat shows it the gap (it reconnects and is synchronised) instead of the
    /// transfer waiting out syncLimit. What it already has, it ignores.
    fn resend_unacked(&mut self, id: ServerId) {
        let Some(h) = self.leading_ref().handlers.get(&id) else {
            return;
        };
        let (conn, acked) = (h.conn, h.acked);
        if acked < self.log.base {
            return; // behind the window: only a SNAP brings it back
        }
        let last = self.log.last();
        self.send_proposals(id, conn, acked, last);
    }

    /// Follower: ask the leader to hand leadership to this replica (`rqld`).
    pub fn request_leadership(&mut self) -> Result<ServerId, StepError> {
        let Role::Following(l) = &self.role else {
            return Err(StepError::NotFollower);
        };
        if l.phase != LearnerPhase::Broadcast {
            return Err(StepError::NotFollower);
        }
        let (leader, conn) = (l.leader, l.conn);
        self.send(leader, Message::RequestLeadership { conn });
        Ok(leader)
    }

    /// The membership in effect and the zxid of the reconfig that made it.
    pub fn membership(&self) -> (Zxid, &Members) {
        (self.membership.since, &self.membership.current)
    }

    /// The newest membership in the log, in effect or not.
    pub fn last_seen_membership(&self) -> &Members {
        self.membership.last_seen()
    }

    /// One line on where this replica stands in an election, for traces (the simulator's
    /// `--trace`): its role, epochs, round and vote, and while looking the votes of this
    /// round and the reports of servers out of the election; as leader, its phase and
    /// who has promised the epoch.
    pub fn describe(&self) -> String {
        let head = format!(
            "{:?} config={}{:?} acc={} cur={} last={} round={} vote=({} {} e{})",
            self.role(),
            self.membership.since,
            self.membership.current.voters,
            self.accepted.0,
            self.current.0,
            self.log.last(),
            self.logical_clock,
            self.vote.leader,
            self.vote.zxid,
            self.vote.peer_epoch.0,
        );
        let votes = |m: &BTreeMap<ServerId, Vote>| {
            m.iter()
                .map(|(id, v)| format!("{id}:{}@{}e{}", v.leader, v.zxid, v.peer_epoch.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match &self.role {
            Role::Looking(l) => {
                let ooe = l
                    .out_of_election
                    .iter()
                    .map(|(id, (v, s, r))| {
                        format!("{id}:{s:?}/{}e{}r{r}", v.leader, v.peer_epoch.0)
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                format!(
                    "{head} recv=[{}] ooe=[{ooe}] quorum={}",
                    votes(&l.recv),
                    self.vote_has_quorum()
                )
            }
            Role::Leading(l) => format!(
                "{head} phase={:?} epoch={} promised={:?}",
                l.phase,
                l.epoch.0,
                l.accepted.keys().collect::<Vec<_>>()
            ),
            Role::Following(l) | Role::Observing(l) => {
                format!("{head} leader={} phase={:?}", l.leader, l.phase)
            }
        }
    }

    /// A reconfig is logged and has not taken effect here (RECONFIGINPROGRESS).
    pub fn reconfig_in_progress(&self) -> bool {
        self.membership.in_progress()
    }

    /// Leader: the servers a new configuration may count on (Leader.isQuorumSynced): itself
    /// and every follower (not observer) in broadcast whose link is up. Empty elsewhere.
    pub fn synced_followers(&self) -> BTreeSet<ServerId> {
        let Role::Leading(l) = &self.role else {
            return BTreeSet::new();
        };
        let mut ids: BTreeSet<ServerId> = l
            .handlers
            .iter()
            .filter(|(_, h)| !h.observer && h.phase == HandlerPhase::Broadcast && !h.lost)
            .map(|(id, _)| *id)
            .collect();
        ids.insert(self.config.myid);
        ids
    }

    /// The driver installed a snapshot whose configuration was made at `since` (read from
    /// its `/zookeeper/config`): if that is newer than the membership in effect, it takes
    /// effect now (the reconfig that made it was committed, and this log never had it).
    pub fn adopt_membership(&mut self, since: Zxid, members: Members) {
        if since <= self.membership.since || members.voters.is_empty() {
            return;
        }
        self.membership.reset(since, members);
        self.membership_changed();
        self.invariants();
    }

    /// Takes the actions produced since the last call, to execute in order.
    pub fn ready(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Like [`Replica::ready`], appending the actions to `out`: a driver that keeps `out`
    /// across steps, and the replica its own list, allocate nothing per step.
    pub fn ready_into(&mut self, out: &mut Vec<Action>) {
        out.append(&mut self.actions);
    }

    // ---- step ----

    /// Feeds one input. Only `Propose` can be refused.
    pub fn step(&mut self, input: Input) -> Result<(), StepError> {
        let result = match input {
            Input::Tick { now_ms } => {
                self.on_tick(now_ms);
                Ok(())
            }
            Input::Receive { from, msg } => {
                self.on_receive(from, msg);
                Ok(())
            }
            Input::Propose { zxid, data } => self.on_propose(zxid, data),
            Input::Persisted { upto, token } => {
                self.on_persisted(upto, token);
                Ok(())
            }
            Input::EpochPersisted { accepted, current } => {
                self.accepted_durable = self.accepted_durable.max(accepted);
                self.current_durable = self.current_durable.max(current);
                Ok(())
            }
            Input::PeerLost { peer } => {
                self.on_peer_lost(peer);
                Ok(())
            }
            Input::SnapshotInstalled { zxid } => {
                if self.snap_pending == Some(zxid) {
                    self.snap_pending = None;
                    self.persisted = self.persisted.max(zxid);
                }
                Ok(())
            }
        };
        self.release();
        self.master_inform();
        if self.appended {
            self.appended = false;
            self.actions.push(Action::Sync {
                upto: self.log.last(),
                token: self.token,
            });
        }
        self.invariants();
        result
    }

    fn on_receive(&mut self, from: ServerId, msg: Message) {
        // Any server may talk to this one: a server joining by reconfig connects as a
        // learner before it is a member (ZooKeeper's leader syncs it as a non-voter), and
        // only voters' votes and acknowledgements ever count.
        if from == self.config.myid {
            return;
        }
        if let Message::Notification {
            vote,
            round,
            state,
            config,
        } = msg
        {
            self.on_notified_config(config);
            self.on_notification(from, vote, round, state);
            return;
        }
        if matches!(msg, Message::FollowerInfo { observer: true, .. })
            && !self.quorum.is_voter(from)
            && self.answers_observers()
        {
            // An observer takes this voter for its observer master (learner_master.rs): any
            // non-voter of the membership in effect, also one a reconfig made an observer or
            // removed (it learns as an observer does), not only the observers at start.
            self.master_on_follower_info(from, msg);
            return;
        }
        if matches!(msg, Message::FollowerInfo { .. })
            && matches!(self.role, Role::Following(_) | Role::Observing(_))
        {
            // Taken for a leader while following another: say whom we follow, so the learner
            // looks again instead of waiting out initLimit.
            self.send(from, self.notification());
            return;
        }
        let Some(conn) = msg.conn() else { return };
        match &self.role {
            Role::Looking(_) => {}
            Role::Leading(_) => self.leader_receive(from, conn, msg),
            Role::Following(l) | Role::Observing(l) => {
                if from == l.upstream && conn == l.conn {
                    self.learner_receive(msg);
                } else if self.master.serves(from) {
                    self.master_receive(from, conn, msg);
                }
            }
        }
    }

    fn durable_through(&self) -> Zxid {
        if self.snap_pending.is_some() {
            Zxid::ZERO
        } else {
            self.persisted
        }
    }

    fn send(&mut self, to: ServerId, msg: Message) {
        self.actions.push(Action::Send { to, msg });
    }

    fn next_conn(&mut self) -> u64 {
        // splitmix64: deterministic from the seed, distinct per connection.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn append(&mut self, zxid: Zxid, data: Payload) {
        if let Some(m) = (self.config.reconfig_of)(&data) {
            self.membership.logged(zxid, m);
        }
        self.log.push(zxid, data.clone());
        self.actions.push(Action::Append { zxid, data });
        self.appended = true;
    }

    // ---- phase 0: fast leader election (FastLeaderElection.lookForLeader) ----

    /// This replica's first vote of a round: itself, or the target of a hand-over.
    fn self_vote(&self) -> Vote {
        match self.handover {
            Some(h) if h.target != self.config.myid => Vote {
                leader: h.target,
                zxid: h.last.max(self.log.last()),
                peer_epoch: self.current,
            },
            _ => Vote {
                leader: self.config.myid,
                zxid: self.log.last(),
                peer_epoch: self.current,
            },
        }
    }

    /// FastLeaderElection.totalOrderPredicate: higher epoch, then zxid, then id; a
    /// non-voter is never a candidate.
    fn better(&self, new: Vote, cur: Vote) -> bool {
        if !self.membership.votes_anywhere(&self.quorum, new.leader) {
            return false;
        }
        if let Some(h) = self.handover {
            // A hand-over election: the target first, whatever the usual order says. The
            // target holds every proposal of the old leader, so no vote for another member
            // is for a longer history.
            match (new.leader == h.target, cur.leader == h.target) {
                (true, false) => return true,
                (false, true) => return false,
                _ => {}
            }
        }
        (new.peer_epoch, new.zxid, new.leader) > (cur.peer_epoch, cur.zxid, cur.leader)
    }

    /// The vote this replica reports once it has left the election.
    fn decided_vote(&self) -> Vote {
        Vote {
            leader: self.leader().unwrap_or(self.config.myid),
            zxid: self.log.last(),
            peer_epoch: self.current,
        }
    }

    fn peer_state(&self) -> PeerState {
        match self.role {
            Role::Looking(_) => PeerState::Looking,
            Role::Leading(_) => PeerState::Leading,
            Role::Following(_) => PeerState::Following,
            Role::Observing(_) => PeerState::Observing,
        }
    }

    /// What this replica tells others of itself: its vote while looking, whom it follows or
    /// that it leads once decided.
    fn notification(&self) -> Message {
        let (vote, state) = match self.role {
            Role::Looking(_) => (self.vote, PeerState::Looking),
            _ => (self.decided_vote(), self.peer_state()),
        };
        Message::Notification {
            vote,
            round: self.logical_clock,
            state,
            config: NotifiedConfig {
                since: self.membership.since,
                members: self.membership.current.clone(),
            },
        }
    }

    /// A looking replica adopts a newer configuration a notification carries and elects
    /// again under it (FastLeaderElection's receiver: QuorumPeer.processReconfig with the
    /// sender's `qv`, then a new election). A member that missed committed reconfigs (down,
    /// or cut off, while they committed) otherwise counts the wrong voters: it may wait for
    /// a quorum of servers that no longer vote and never join a leader the others elected
    /// (sim seed 83). The configuration is committed (it is in effect on the sender), so the
    /// history through `since` has it; this replica's log catches up when it synchronises,
    /// and reconfigs logged at or below `since` are in it (as for a snapshot's). Only while
    /// looking, as in ZooKeeper: a learner learns configurations from its leader.
    fn on_notified_config(&mut self, config: NotifiedConfig) {
        if !matches!(self.role, Role::Looking(_))
            || config.since <= self.membership.since
            || config.members.voters.is_empty()
        {
            return;
        }
        let round = self.logical_clock;
        self.membership.reset(config.since, config.members);
        self.membership_changed();
        if self.logical_clock == round && matches!(self.role, Role::Looking(_)) {
            self.go_looking("a newer committed configuration arrived with a notification");
        }
    }

    /// Whether this replica votes in elections: it is a voter of the membership in effect or
    /// of a logged reconfig (ZooKeeper's participants of the last seen configuration).
    fn elects(&self) -> bool {
        self.membership
            .votes_anywhere(&self.quorum, self.config.myid)
    }

    /// Every server this replica knows of hears its votes, observers included: one that
    /// follows the leader answers with whom it follows, which is how a member whose
    /// membership is stale (it missed reconfigs) finds the leader.
    fn broadcast_vote(&mut self) {
        let msg = self.notification();
        let mut voters: BTreeSet<ServerId> = self.quorum.voters().collect();
        for m in [&self.membership.current, self.membership.last_seen()] {
            voters.extend(m.voters.iter().chain(&m.observers).copied());
        }
        for v in voters {
            if v != self.config.myid {
                self.send(v, msg.clone());
            }
        }
    }

    /// A new election round; `why` is kept for the driver's log ([`Replica::why_looking`]).
    fn go_looking(&mut self, why: impl Into<String>) {
        self.why_looking = why.into();
        self.logical_clock += 1;
        self.enter_looking();
    }

    /// The leader's view of its learners for a step-down message: each one's phase and
    /// how long ago it was last heard from.
    fn learners_heard(&self, now: u64) -> String {
        let mut parts: Vec<String> = self
            .leading_ref()
            .handlers
            .iter()
            .map(|(id, h)| {
                format!(
                    "{id} {:?} {} ms ago{}",
                    h.phase,
                    now.saturating_sub(h.last_heard),
                    if h.lost { " (link lost)" } else { "" }
                )
            })
            .collect();
        if parts.is_empty() {
            parts.push("no learner connected".into());
        }
        parts.join(", ")
    }

    /// Looking in the round `logical_clock` names, with this replica's first vote. Observers
    /// this replica served as an observer master are let go (they choose again).
    fn enter_looking(&mut self) {
        self.note_failed_master();
        let served = self.master.take();
        self.vote = self.self_vote();
        let mut looking = Looking::default();
        if self.elects() {
            looking.recv.insert(self.config.myid, self.vote);
        }
        self.role = Role::Looking(looking);
        self.actions.push(Action::BecameLooking);
        self.broadcast_vote();
        self.release_observers(served);
        if self.elects()
            && self
                .membership
                .is_quorum_all(&self.quorum, [&self.config.myid])
        {
            // The only voter (a standalone server): no other vote can come, so there is
            // nothing to wait for and no one to notify.
            let round = self.logical_clock;
            self.decide(self.config.myid, round);
        }
    }

    fn on_notification(&mut self, from: ServerId, vote: Vote, round: u64, state: PeerState) {
        if self.master_left(from, vote, state) {
            self.go_looking("its observer master left");
            self.on_notification(from, vote, round, state);
            return;
        }
        if let Role::Following(l) | Role::Observing(l) = &self.role {
            if from == l.leader && state == PeerState::Looking && round > l.leader_round {
                // Our leader is electing again, so the session with it is over. ZooKeeper's
                // learner learns this when the leader's shutdown closes its socket; peer
                // links here outlive roles, so the notification is the signal. Waiting out
                // initLimit instead let the leader re-elect itself on our stale FOLLOWING
                // vote while a better-placed voter kept unseating it at ACKEPOCH: a livelock
                // (sim seed 82 with 300 ticks).
                self.go_looking("its leader is electing again");
                self.on_notification(from, vote, round, state);
                return;
            }
            if from == l.leader
                && state == PeerState::Looking
                && round == l.leader_round
                && vote.leader != l.leader
            {
                // Our leader is still electing in the round we took it from, and votes for
                // another member: votes only get better within a round, so it will never
                // lead from this round. A replica decides on the quorum of its own
                // membership; the leader, with a reconfig logged that we do not have, needs
                // quorums of both and may never reach them (in 3 voters plus a logged
                // reconfig to 4, {1, 2} decides for 1 while 2 waits for three of four).
                // Rejoin that round, where its vote is one more for its choice: starting a
                // new round instead made every member vote for itself again, and this one
                // decide for the first of them it heard, for ever (sim seed 314, 100 ticks).
                self.enter_looking();
                self.on_notification(from, vote, round, state);
                return;
            }
            if from == l.leader
                && matches!(state, PeerState::Following | PeerState::Observing)
                && round >= l.leader_round
            {
                // The member we took for our leader follows another one (it answers our
                // FOLLOWERINFO so): with no finalize wait, a quorum can name a member that
                // switched to a better vote a moment later. Waiting for a LEADERINFO that
                // never comes cost initLimit (20 s) at start-up, one run in six.
                self.go_looking("the member it took for leader follows another");
                self.on_notification(from, vote, round, state);
                return;
            }
        }
        if let Role::Leading(l) = &self.role {
            if l.phase == LeaderPhase::Discovery
                && self.membership.votes_anywhere(&self.quorum, from)
                && self.better(vote, self.decided_vote())
            {
                if state == PeerState::Looking && round == self.logical_clock {
                    // A voter of the round we lead from votes for a better candidate: it
                    // will never follow us from this round. With members counting different
                    // voters (a reconfig logged on some only), the voters whose votes made
                    // our quorum may never decide; waiting out initLimit and electing again
                    // repeated the same race (sim seed 465, 200 ticks). Rejoin the round
                    // and take that vote.
                    self.enter_looking();
                    self.on_notification(from, vote, round, state);
                    return;
                }
                if state == PeerState::Leading && vote.leader == from {
                    // Another voter leads, still in discovery too, with a better vote: of
                    // two leaders waiting for the same voters one must yield, and the worse
                    // placed one yields to it (sim seed 266, 200 ticks). A new round in
                    // which our vote is for it.
                    self.go_looking("another leader of this round has a better vote");
                    self.vote = vote;
                    let myid = self.config.myid;
                    if self.elects() {
                        self.election().recv.insert(myid, vote);
                    }
                    self.broadcast_vote();
                    self.on_notification(from, vote, round, state);
                    return;
                }
            }
        }
        if !matches!(self.role, Role::Looking(_)) {
            if state == PeerState::Looking {
                self.send(from, self.notification());
            }
            return;
        }
        let sender_votes = self.membership.votes_anywhere(&self.quorum, from);
        if state == PeerState::Looking {
            if !sender_votes || !self.elects() {
                // A voter answers a looking non-voter with its vote; a looking non-voter
                // ignores a voter's, and two looking non-voters have nothing to tell each
                // other (answering, two observers bounced notifications for ever).
                if self.elects() {
                    self.send(from, self.notification());
                }
                return;
            }
            if round < self.logical_clock {
                self.send(from, self.notification());
                return;
            }
            let mut changed = false;
            if round > self.logical_clock {
                self.logical_clock = round;
                self.election().recv.clear();
                let mine = self.self_vote();
                self.vote = if self.better(vote, mine) { vote } else { mine };
                changed = true;
            } else if self.better(vote, self.vote) {
                self.vote = vote;
                changed = true;
            }
            let myid = self.config.myid;
            let current = self.vote;
            let looking = self.election();
            looking.recv.insert(from, vote);
            looking.recv.insert(myid, current);
            if changed {
                looking.finalize_at = None;
                self.broadcast_vote();
            }
            self.check_finalize();
        } else {
            // Anyone's report of whom it follows or that it leads is kept: only voters count
            // toward the quorum, but the leader itself may be no voter in a stale membership
            // (this replica missed the reconfig that made it one).
            if sender_votes && round == self.logical_clock {
                self.election().recv.insert(from, vote);
            }
            self.election()
                .out_of_election
                .insert(from, (vote, state, round));
            let ooe = &self.election_ref().out_of_election;
            let agree: Vec<&ServerId> = ooe
                .iter()
                .filter(|(_, (v, _, _))| v.leader == vote.leader && v.peer_epoch == vote.peer_epoch)
                .map(|(id, _)| id)
                .collect();
            let leader_round = ooe.get(&vote.leader).and_then(|(v, s, r)| {
                (*s == PeerState::Leading && v.peer_epoch == vote.peer_epoch).then_some(*r)
            });
            // A leader of an epoch this replica never accepted, followed by another server,
            // was established by a quorum this replica was not in: its membership may be
            // stale (it missed reconfigs, and ZooKeeper's notifications would carry the newer
            // configuration). Joining is safe (a learner only follows) and brings it the
            // reconfigs; a quorum of its stale voters may never report again.
            let newer = vote.peer_epoch > self.accepted && agree.len() >= 2;
            if let Some(leader_round) = leader_round {
                if vote.leader != self.config.myid
                    && (self.quorum.is_quorum(agree.iter().copied()) || newer)
                {
                    self.logical_clock = self.logical_clock.max(round);
                    self.vote = vote;
                    self.decide(vote.leader, leader_round);
                }
            }
        }
    }

    fn election(&mut self) -> &mut Looking {
        match &mut self.role {
            Role::Looking(l) => l,
            _ => unreachable!("election state outside Looking"),
        }
    }

    fn election_ref(&self) -> &Looking {
        match &self.role {
            Role::Looking(l) => l,
            _ => unreachable!("election state outside Looking"),
        }
    }

    /// termPredicate: a quorum of this round's votes equals ours.
    fn vote_has_quorum(&self) -> bool {
        let vote = self.vote;
        let agree = self
            .election_ref()
            .recv
            .iter()
            .filter(|(_, v)| v.leader == vote.leader && v.peer_epoch == vote.peer_epoch)
            .map(|(id, _)| id);
        self.membership.is_quorum_all(&self.quorum, agree)
    }

    fn check_finalize(&mut self) {
        if !self.elects() || !self.vote_has_quorum() {
            self.election().finalize_at = None;
            return;
        }
        let at = self.now + self.config.finalize_wait_ms;
        let at = *self.election().finalize_at.get_or_insert(at);
        if at <= self.now {
            let leader = self.vote.leader;
            let round = self.logical_clock;
            self.decide(leader, round);
        }
    }

    /// `round`: the round in which `leader` is known to have voted for itself.
    fn decide(&mut self, leader: ServerId, round: u64) {
        self.handover = None;
        if leader == self.config.myid {
            self.become_leader();
        } else {
            let upstream = self.choose_upstream(leader);
            self.become_learner(leader, round, upstream);
        }
    }

    // ---- phase 1 and 2, leader side (Leader.lead, LearnerHandler) ----

    fn become_leader(&mut self) {
        let mut accepted = BTreeMap::new();
        accepted.insert(self.config.myid, self.accepted);
        self.role = Role::Leading(Leading {
            phase: LeaderPhase::Discovery,
            since: self.now,
            epoch: self.accepted,
            accepted,
            handlers: BTreeMap::new(),
            next_counter: 1,
            round: 0,
            round_confirmed: 0,
            round_wanted: false,
            transfer: None,
            sessions: Sessions::default(),
        });
        if self
            .membership
            .is_quorum_all(&self.quorum, self.leading_ref().accepted.keys())
        {
            // Its own FOLLOWERINFO is a quorum: the epoch is decided without learners.
            self.decide_epoch();
        }
    }

    fn leading(&mut self) -> &mut Leading {
        match &mut self.role {
            Role::Leading(l) => l,
            _ => unreachable!("leader state outside Leading"),
        }
    }

    fn leading_ref(&self) -> &Leading {
        match &self.role {
            Role::Leading(l) => l,
            _ => unreachable!("leader state outside Leading"),
        }
    }

    fn leader_receive(&mut self, from: ServerId, conn: u64, msg: Message) {
        let now = self.now;
        if let Message::FollowerInfo {
            conn,
            accepted_epoch,
            base,
            epochs,
            observer,
        } = msg
        {
            self.on_follower_info(from, conn, accepted_epoch, base, epochs, observer);
            return;
        }
        let started = self.leading_ref().round;
        let Some(h) = self.leading().handlers.get_mut(&from) else {
            return;
        };
        if h.conn != conn {
            return;
        }
        h.last_heard = now;
        h.lost = false;
        if let Message::PingReply { round, .. } = msg {
            // A round never started is no confirmation (a confused peer must not panic us).
            h.round = h.round.max(round.min(started));
        }
        match msg {
            Message::AckEpoch {
                current_epoch,
                last,
                fresh,
                ..
            } => self.on_ack_epoch(from, current_epoch, last, fresh),
            Message::AckNewLeader { epoch, .. } => self.on_ack_newleader(from, epoch),
            Message::Ack { zxid, .. } => self.on_ack(from, zxid),
            Message::PingReply { acked, .. } => {
                self.on_ack(from, acked);
                self.check_rounds();
            }
            Message::RequestLeadership { .. } => {
                // Refused quietly when it cannot be done (not synced, a transfer already
                // under way): the operator sees the leader unchanged.
                let _ = self.transfer_leadership(Some(from));
            }
            _ => {}
        }
    }

    fn on_follower_info(
        &mut self,
        from: ServerId,
        conn: u64,
        accepted_epoch: Epoch,
        base: Zxid,
        epochs: Vec<Zxid>,
        observer: bool,
    ) {
        // A learner's declared role is taken as it comes: one whose membership is behind or
        // ahead of this leader's (a reconfig committed on one side first, a server joining)
        // is synchronised as it asks, and only voters' acknowledgements count.
        let now = self.now;
        let voter = !observer && self.membership.votes_anywhere(&self.quorum, from);
        self.epoch_floor = self.epoch_floor.max(accepted_epoch);
        let leading = self.leading();
        if leading.phase != LeaderPhase::Discovery && accepted_epoch > leading.epoch {
            // The learner promised a later epoch (to a leader that gave up) and refuses ours
            // for good (Learner.registerWithLeader), while the rest of the ensemble keeps
            // this leader: it would never serve again. ZooKeeper leaves it out until the
            // next leader change; here the leader gives up so that the next epoch, above
            // `epoch_floor`, takes everyone (sim seed 456 --ticks 600).
            self.go_looking("a learner accepted a later epoch");
            return;
        }
        if let Some(h) = leading.handlers.get_mut(&from) {
            if h.conn == conn {
                // A repeat of the same connection's FOLLOWERINFO: the learner has not seen
                // our LEADERINFO (lost with a link that broke), so it goes again; a learner
                // ignores a second one of the same epoch.
                h.last_heard = now;
                h.lost = false;
                if h.phase == HandlerPhase::Info {
                    h.leaderinfo_sent = false;
                }
                return;
            }
        }
        if leading.sessions.seen(from, conn) {
            return; // a delayed duplicate of a session the learner left (`Sessions`)
        }
        leading.handlers.insert(
            from,
            Handler {
                conn,
                observer,
                phase: HandlerPhase::Info,
                base,
                epochs,
                leaderinfo_sent: false,
                epoch_vote: false,
                last_heard: now,
                lost: false,
                round: 0,
                acked: Zxid::ZERO,
                sent_through: Zxid::ZERO,
                newleader_last: Zxid::ZERO,
            },
        );
        if voter && leading.phase == LeaderPhase::Discovery {
            leading.accepted.insert(from, accepted_epoch);
            if self
                .membership
                .is_quorum_all(&self.quorum, self.leading_ref().accepted.keys())
            {
                self.decide_epoch();
            }
        }
    }

    /// Zab phase 1: the new epoch is one above every accepted epoch of a quorum
    /// (Leader.getEpochToPropose). It is made durable before LEADERINFO goes out.
    fn decide_epoch(&mut self) {
        let max = self
            .leading_ref()
            .accepted
            .values()
            .copied()
            .max()
            .expect("the leader's own epoch is there")
            .max(self.epoch_floor);
        let epoch = Epoch(max.0 + 1);
        let leading = self.leading();
        leading.epoch = epoch;
        leading.phase = LeaderPhase::EpochAck;
        self.accepted = epoch;
        self.actions.push(Action::PersistEpoch {
            accepted: epoch,
            current: self.current,
        });
    }

    fn on_ack_epoch(&mut self, from: ServerId, current_epoch: Epoch, last: Zxid, fresh: bool) {
        let mine = (self.current, self.log.last());
        let leading = self.leading();
        let h = leading.handlers.get_mut(&from).expect("checked by caller");
        if h.phase != HandlerPhase::Info || !h.leaderinfo_sent {
            return;
        }
        if leading.phase == LeaderPhase::EpochAck && fresh && (current_epoch, last) > mine {
            // Leader.waitForEpochAck: a follower of the epoch quorum is ahead of the leader;
            // elect again. Once that quorum is in, a late learner's extra tail cannot be
            // committed, and synchronisation truncates it.
            self.go_looking("a follower of the epoch quorum is ahead of the leader");
            return;
        }
        h.phase = HandlerPhase::EpochAcked;
        h.epoch_vote = fresh;
        let conn = h.conn;
        leading.sessions.past_followerinfo(from, conn);
        match leading.phase {
            LeaderPhase::Discovery => unreachable!("ACKEPOCH before the epoch was sent"),
            LeaderPhase::EpochAck => self.check_epoch_quorum(),
            LeaderPhase::Sync | LeaderPhase::Broadcast => self.sync_learner(from),
        }
    }

    fn check_epoch_quorum(&mut self) {
        let myid = self.config.myid;
        if self.accepted_durable < self.leading_ref().epoch {
            return;
        }
        let acked: Vec<ServerId> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| h.phase >= HandlerPhase::EpochAcked && h.epoch_vote)
            .map(|(id, _)| *id)
            .chain([myid])
            .collect();
        if !self.membership.is_quorum_all(&self.quorum, &acked) {
            return;
        }
        // Phase 2 begins. The leader's own NEWLEADER, its current epoch made durable, waits
        // for its history to be durable (`leader_sync`).
        self.leading().phase = LeaderPhase::Sync;
        for id in acked {
            if id != myid {
                self.sync_learner(id);
            }
        }
        self.leader_sync();
    }

    /// LearnerHandler.syncFollower: the largest zxid both histories hold, from the
    /// learner's per-epoch last zxids (within one epoch, every log is a prefix of that epoch's
    /// leader's proposals).
    fn sync_plan(&self, base: Zxid, epochs: &[Zxid]) -> Option<SyncPlan> {
        if base > self.log.last() {
            return None; // the learner holds committed state this leader lacks: refuse it.
        }
        if base < self.log.base {
            // Behind the window: SNAP at the applied state, keeping what the learner already
            // holds beyond it so that a crash mid-sync loses nothing it acknowledged.
            let zxid = self.applied;
            let keep = self.common_point(zxid, epochs);
            return Some(SyncPlan::Snap { zxid, keep });
        }
        if base > self.log.base && self.log.get(base).is_none() {
            return None; // the learner applied an entry this leader never had: refuse it.
        }
        let common = self.common_point(base, epochs);
        let learner_last = epochs.last().copied().unwrap_or(base).max(base);
        if common < learner_last {
            Some(SyncPlan::Trunc { after: common })
        } else {
            Some(SyncPlan::Diff { from: common })
        }
    }

    /// The largest zxid at or above `floor` that both this log and the learner's hold, from
    /// the learner's per-epoch last zxids. Within one epoch every log holds a contiguous run
    /// of that epoch's leader's proposals, and two logs that share a zxid agree before it
    /// (Zab's primary order), so comparing epoch by epoch finds the divergence point.
    fn common_point(&self, floor: Zxid, epochs: &[Zxid]) -> Zxid {
        let mut common = floor;
        for f_last in epochs.iter().copied().filter(|z| *z > floor) {
            match self.log.last_in_epoch(f_last.epoch()) {
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
        common
    }

    fn sync_learner(&mut self, id: ServerId) {
        let epoch = self.leading_ref().epoch;
        let h = &self.leading_ref().handlers[&id];
        let conn = h.conn;
        let Some(plan) = self.sync_plan(h.base, &h.epochs) else {
            self.leading().handlers.remove(&id);
            return;
        };
        let from = match plan {
            SyncPlan::Diff { from } => {
                self.send(id, Message::Diff { conn });
                from
            }
            SyncPlan::Trunc { after } => {
                self.send(id, Message::Trunc { conn, after });
                after
            }
            SyncPlan::Snap { zxid, keep } => {
                self.actions.push(Action::SendSnapshot {
                    to: id,
                    conn,
                    zxid,
                    keep,
                });
                keep
            }
        };
        let last = self.log.last();
        self.send_proposals(id, conn, from, last);
        self.send(id, Message::NewLeader { conn, epoch, last });
        let h = self.leading().handlers.get_mut(&id).expect("present");
        h.phase = HandlerPhase::Synced;
        h.sent_through = last;
        h.newleader_last = last;
    }

    fn on_ack_newleader(&mut self, from: ServerId, epoch: Epoch) {
        let leading = self.leading();
        let leader_epoch = leading.epoch;
        let phase = leading.phase;
        let h = leading.handlers.get_mut(&from).expect("checked by caller");
        if h.phase != HandlerPhase::Synced || epoch != leader_epoch {
            return;
        }
        h.phase = HandlerPhase::AckedNewLeader;
        if !h.observer {
            h.acked = h.acked.max(h.newleader_last);
        }
        if phase == LeaderPhase::Broadcast {
            self.send_uptodate(from);
            self.advance_commit();
        } else {
            self.check_established();
        }
    }

    /// Zab phase 2 ends when a quorum (the leader included) acknowledged NEWLEADER: the
    /// whole history is committed and the leader serves (Leader.waitForNewLeaderAck).
    fn check_established(&mut self) {
        let myid = self.config.myid;
        let epoch = self.leading_ref().epoch;
        if self.leading_ref().phase != LeaderPhase::Sync {
            return;
        }
        let self_ready = self.current_durable >= epoch && self.durable_through() >= self.log.last();
        if !self_ready {
            return;
        }
        let acked: Vec<ServerId> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| h.phase >= HandlerPhase::AckedNewLeader && !h.observer)
            .map(|(id, _)| *id)
            .chain([myid])
            .collect();
        if !self.membership.is_quorum_all(&self.quorum, &acked) {
            return;
        }
        self.leading().phase = LeaderPhase::Broadcast;
        self.committed = self.log.last();
        self.actions.push(Action::BecameLeader { epoch });
        let ready: Vec<ServerId> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| h.phase == HandlerPhase::AckedNewLeader)
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            self.send_uptodate(id);
        }
    }

    fn send_uptodate(&mut self, id: ServerId) {
        let committed = self.committed;
        let h = self.leading().handlers.get_mut(&id).expect("present");
        h.phase = HandlerPhase::Broadcast;
        let conn = h.conn;
        let observer = h.observer;
        if observer {
            self.inform_observer(id);
        }
        self.send(id, Message::UpToDate { conn, committed });
    }

    /// Observers learn commits only (Leader.sendObserverPacket): INFORM for every committed
    /// entry they were not sent, and a COMMIT for those they had from synchronisation.
    fn inform_observer(&mut self, id: ServerId) {
        let committed = self.committed;
        let h = &self.leading_ref().handlers[&id];
        let conn = h.conn;
        let from = h.sent_through;
        if from >= committed {
            return;
        }
        self.send_informs(id, conn, from, committed);
        self.leading()
            .handlers
            .get_mut(&id)
            .expect("present")
            .sent_through = committed;
    }

    /// PROPOSAL to `id` for every logged entry after `from` up to `through`, each naming
    /// its predecessor (`from` for the first): synchronisation's DIFF, a hand-over's
    /// catch-up and an observer master's sync.
    fn send_proposals(&mut self, id: ServerId, conn: u64, from: Zxid, through: Zxid) {
        self.send_entries(id, from, from, through, |prev, zxid, data| {
            Message::Proposal {
                conn,
                prev,
                zxid,
                data,
            }
        });
    }

    /// INFORM to `id` for every logged entry after `from` up to `through`: a leader's
    /// observers and an observer master's. An observer that stalled between NEWLEADER and
    /// UPTODATE (frozen, slow disk) may be behind the window: what follows `base` then names
    /// `base` as its predecessor, so the observer sees the gap and synchronises again.
    /// Naming `from` hid the gap, and the observer committed past entries it never had (sim
    /// seed 901 with a paused observer).
    fn send_informs(&mut self, id: ServerId, conn: u64, from: Zxid, through: Zxid) {
        let prev = from.max(self.log.base);
        self.send_entries(id, prev, from, through, |prev, zxid, data| {
            Message::Inform {
                conn,
                prev,
                zxid,
                data,
            }
        });
    }

    /// One message per logged entry after `from` up to `through`, made by `frame` from the
    /// entry and its predecessor (`prev` for the first).
    fn send_entries(
        &mut self,
        id: ServerId,
        mut prev: Zxid,
        from: Zxid,
        through: Zxid,
        frame: impl Fn(Zxid, Zxid, Payload) -> Message,
    ) {
        let entries: Vec<(Zxid, Payload)> = self
            .log
            .after(from)
            .take_while(|e| e.0 <= through)
            .cloned()
            .collect();
        for (zxid, data) in entries {
            self.send(id, frame(prev, zxid, data));
            prev = zxid;
        }
    }

    // ---- phase 3, leader side ----

    fn on_propose(&mut self, zxid: Zxid, data: Payload) -> Result<(), StepError> {
        let want = self.next_zxid().ok_or(StepError::NotLeader)?;
        if zxid != want {
            return Err(StepError::WrongZxid { got: zxid, want });
        }
        self.leading().next_counter += 1;
        let prev = self.log.last();
        self.append(zxid, data.clone());
        let followers: Vec<(ServerId, u64)> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| !h.observer && h.phase >= HandlerPhase::Synced)
            .map(|(id, h)| (*id, h.conn))
            .collect();
        for (id, conn) in followers {
            self.send(
                id,
                Message::Proposal {
                    conn,
                    prev,
                    zxid,
                    data: data.clone(),
                },
            );
            self.leading()
                .handlers
                .get_mut(&id)
                .expect("present")
                .sent_through = zxid;
        }
        Ok(())
    }

    fn on_ack(&mut self, from: ServerId, zxid: Zxid) {
        let h = self
            .leading()
            .handlers
            .get_mut(&from)
            .expect("checked by caller");
        if h.observer || h.phase < HandlerPhase::AckedNewLeader {
            return;
        }
        assert!(
            zxid <= h.sent_through,
            "learner {from} acked {zxid} beyond what it was sent"
        );
        h.acked = h.acked.max(zxid);
        self.advance_commit();
    }

    /// COMMIT in zxid order once a quorum of voters, the leader's own durable log included,
    /// has acknowledged (Leader.tryToCommit).
    fn advance_commit(&mut self) {
        if self.leading_ref().phase != LeaderPhase::Broadcast {
            return;
        }
        // What a quorum acknowledged is one of the acknowledgements: if none is past the
        // commit point, nothing moves (every proposal steps here; this spares it the maps).
        let committed = self.committed;
        if self.durable_through() <= committed
            && self
                .leading_ref()
                .handlers
                .values()
                .all(|h| h.observer || h.acked <= committed)
        {
            return;
        }
        let mut acked: BTreeMap<ServerId, Zxid> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| !h.observer && h.phase >= HandlerPhase::AckedNewLeader)
            .map(|(id, h)| (*id, h.acked))
            .collect();
        acked.insert(self.config.myid, self.durable_through());
        let quorum_zxid = self.membership.committed(&self.quorum, &acked);
        if quorum_zxid <= self.committed {
            return;
        }
        self.committed = quorum_zxid;
        let targets: Vec<(ServerId, u64, bool)> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| h.phase == HandlerPhase::Broadcast)
            .map(|(id, h)| (*id, h.conn, h.observer))
            .collect();
        for (id, conn, observer) in targets {
            if observer {
                self.inform_observer(id);
            }
            self.send(
                id,
                Message::Commit {
                    conn,
                    zxid: quorum_zxid,
                },
            );
        }
    }

    // ---- learner side (Learner, Follower, Observer) ----

    fn become_learner(&mut self, leader: ServerId, leader_round: u64, upstream: ServerId) {
        let conn = self.next_conn();
        let learning = Learning {
            leader,
            upstream,
            leader_round,
            conn,
            phase: LearnerPhase::AwaitLeaderInfo,
            epoch: Epoch(0),
            last_heard: self.now,
            progress_at: self.now,
            ackepoch_pending: false,
            ackepoch_fresh: false,
            newleader_pending: None,
            newleader_acked: false,
            acked: Zxid::ZERO,
        };
        self.role = if self.observer {
            Role::Observing(learning)
        } else {
            Role::Following(learning)
        };
        self.send_follower_info();
    }

    fn learning(&mut self) -> &mut Learning {
        match &mut self.role {
            Role::Following(l) | Role::Observing(l) => l,
            _ => unreachable!("learner state outside Following/Observing"),
        }
    }

    fn learning_ref(&self) -> &Learning {
        match &self.role {
            Role::Following(l) | Role::Observing(l) => l,
            _ => unreachable!("learner state outside Following/Observing"),
        }
    }

    fn send_follower_info(&mut self) {
        let msg = Message::FollowerInfo {
            conn: self.learning().conn,
            accepted_epoch: self.accepted,
            base: self.applied,
            epochs: self.log.epochs_after(self.applied),
            observer: self.observer,
        };
        let upstream = self.learning().upstream;
        self.send(upstream, msg);
    }

    /// A message is missing from the session (a gap in the `prev` chain or a step out of
    /// order): start a new connection, as a learner whose TCP connection broke would.
    fn reconnect(&mut self) {
        let l = self.learning_ref();
        let (leader, round, upstream) = (l.leader, l.leader_round, l.upstream);
        self.become_learner(leader, round, upstream);
    }

    fn learner_receive(&mut self, msg: Message) {
        let now = self.now;
        let l = self.learning();
        l.last_heard = now;
        let phase = l.phase;
        self.learner_dispatch(phase, msg);
        if let Role::Following(l) | Role::Observing(l) = &mut self.role {
            if l.phase != phase {
                l.progress_at = now;
            }
        }
    }

    fn learner_dispatch(&mut self, phase: LearnerPhase, msg: Message) {
        match msg {
            Message::LeaderInfo { epoch, .. } if phase == LearnerPhase::AwaitLeaderInfo => {
                self.on_leader_info(epoch)
            }
            // The leader answered a repeated FOLLOWERINFO that crossed its first answer.
            Message::LeaderInfo { epoch, .. }
                if phase > LearnerPhase::AwaitLeaderInfo && epoch == self.learning_ref().epoch => {}
            Message::Diff { .. } if phase == LearnerPhase::AwaitSync => {
                self.learning().phase = LearnerPhase::Syncing;
            }
            Message::Trunc { after, .. } if phase == LearnerPhase::AwaitSync => {
                self.on_trunc(after)
            }
            Message::Snap {
                zxid, keep, data, ..
            } if phase == LearnerPhase::AwaitSync => self.on_snap(zxid, keep, data),
            Message::Proposal {
                prev, zxid, data, ..
            } if phase >= LearnerPhase::Syncing => {
                if self.observer && phase == LearnerPhase::Broadcast {
                    return;
                }
                self.on_proposal(prev, zxid, data);
            }
            Message::Inform {
                prev, zxid, data, ..
            } if self.observer && phase >= LearnerPhase::AwaitUpToDate => {
                self.on_inform(prev, zxid, data)
            }
            Message::NewLeader { epoch, last, .. } if phase == LearnerPhase::Syncing => {
                self.on_newleader(epoch, last)
            }
            Message::UpToDate { committed, .. } if phase == LearnerPhase::AwaitUpToDate => {
                self.on_uptodate(committed)
            }
            Message::Commit { zxid, .. } if phase == LearnerPhase::Broadcast => {
                self.learner_commit(zxid)
            }
            Message::Handover { target, last, .. } if phase == LearnerPhase::Broadcast => {
                self.on_handover(target, last)
            }
            Message::Ping {
                committed, round, ..
            } => {
                if phase == LearnerPhase::Broadcast {
                    self.learner_commit(committed);
                }
                let l = self.learning();
                let acked = if l.newleader_acked {
                    l.acked
                } else {
                    Zxid::ZERO
                };
                let (upstream, conn) = (l.upstream, l.conn);
                self.send(upstream, Message::PingReply { conn, acked, round });
            }
            Message::Diff { .. }
            | Message::Trunc { .. }
            | Message::Snap { .. }
            | Message::NewLeader { .. }
            | Message::UpToDate { .. }
            | Message::LeaderInfo { .. }
                if phase < LearnerPhase::AwaitUpToDate =>
            {
                // A step out of order: the session lost a message.
                self.reconnect();
            }
            _ => {}
        }
    }

    /// Zab phase 1, learner side: accept the new epoch durably before ACKEPOCH.
    fn on_leader_info(&mut self, epoch: Epoch) {
        if epoch < self.accepted {
            self.go_looking("the leader's epoch is below the one accepted");
            return;
        }
        // Zab phase 1: an epoch is promised once. A learner that accepted this epoch before
        // (from another leader that chose the same number, or this one on an earlier
        // connection) still joins, but its ACKEPOCH does not count toward the epoch quorum.
        let fresh = epoch > self.accepted;
        if fresh {
            self.accepted = epoch;
            self.actions.push(Action::PersistEpoch {
                accepted: epoch,
                current: self.current,
            });
        }
        let l = self.learning();
        l.epoch = epoch;
        l.phase = LearnerPhase::AwaitSync;
        l.ackepoch_pending = true;
        l.ackepoch_fresh = fresh;
    }

    fn on_trunc(&mut self, after: Zxid) {
        if after < self.log.base || after < self.applied {
            // The leader would cut committed state: not a leader to follow.
            self.go_looking("the leader would truncate committed state");
            return;
        }
        self.log.truncate_after(after);
        self.membership.truncated(after);
        self.actions.push(Action::Truncate { after });
        self.persisted = self.persisted.min(after);
        self.committed = self.committed.min(after);
        self.new_token();
        self.learning().phase = LearnerPhase::Syncing;
    }

    fn on_snap(&mut self, zxid: Zxid, keep: Zxid, data: Payload) {
        if keep < zxid || zxid < self.applied {
            self.reconnect();
            return;
        }
        if keep < self.log.last() {
            self.log.truncate_after(keep);
            self.membership.truncated(keep);
            self.actions.push(Action::Truncate { after: keep });
        }

        while self.log.entries.front().is_some_and(|e| e.0 <= zxid) {
            self.log.entries.pop_front();
        }
        self.log.base = zxid;
        self.actions.push(Action::InstallSnapshot { zxid, data });
        self.snap_pending = Some(zxid);
        self.persisted = self.persisted.min(self.log.last());
        self.committed = self.committed.min(self.log.last()).max(zxid);
        self.applied = zxid;
        self.new_token();
        self.learning().phase = LearnerPhase::Syncing;
        // The snapshot's configuration is in effect, and the driver tells it from the
        // snapshot's tree (`adopt_membership`). The reconfigs this log holds at or below
        // `zxid` are dropped, not activated: they may be a deposed leader's uncommitted tail
        // (sim seed 1650, 100 ticks: a member activated its own removal of 4 that never
        // committed, and its notifications then spread it).
        self.membership.replaced_through(zxid);
    }

    /// Truncation and snapshots start a new generation of `Sync`s: a completion issued before
    /// them says nothing about the log after them. Ask again for what is already there.
    fn new_token(&mut self) {
        self.token += 1;
        if self.log.last() > self.persisted {
            self.appended = true;
        }
    }

    /// Appends a PROPOSAL (or INFORM) that follows the log; a duplicate is ignored, a gap
    /// reconnects. Returns whether the entry is now in the log.
    fn on_proposal(&mut self, prev: Zxid, zxid: Zxid, data: Payload) -> bool {
        if self.log.get(zxid).is_some() || zxid <= self.log.base {
            return true;
        }
        if prev != self.log.last() || zxid <= prev {
            self.reconnect();
            return false;
        }
        self.append(zxid, data);
        true
    }

    fn on_inform(&mut self, prev: Zxid, zxid: Zxid, data: Payload) {
        if self.on_proposal(prev, zxid, data) {
            self.learner_commit(zxid);
        }
    }

    fn on_newleader(&mut self, epoch: Epoch, last: Zxid) {
        if epoch != self.learning().epoch || last != self.log.last() {
            self.reconnect();
            return;
        }
        // The epoch becomes current once the history is durable (`release_learner`).
        let l = self.learning();
        l.newleader_pending = Some(last);
        l.phase = LearnerPhase::AwaitUpToDate;
    }

    fn on_uptodate(&mut self, committed: Zxid) {
        let l = self.learning();
        if !l.newleader_acked {
            return;
        }
        l.phase = LearnerPhase::Broadcast;
        let (leader, epoch) = (l.leader, l.epoch);
        self.actions.push(if self.observer {
            Action::BecameObserver { leader, epoch }
        } else {
            Action::BecameFollower { leader, epoch }
        });
        self.learner_commit(committed);
    }

    /// The leader hands over: elect again at once, voting for `target` (observers only look
    /// again; they vote for no one).
    fn on_handover(&mut self, target: ServerId, last: Zxid) {
        if self.elects() && self.quorum.is_voter(target) {
            self.handover = Some(Handover {
                target,
                last,
                until_ms: self.now + self.config.sync_limit_ms,
            });
        }
        self.go_looking("leadership handed over");
    }

    fn learner_commit(&mut self, zxid: Zxid) {
        let upto = zxid.min(self.log.last());
        self.committed = self.committed.max(upto);
    }

    // ---- completions, ticks and released replies ----

    fn on_persisted(&mut self, upto: Zxid, token: u64) {
        if token != self.token || upto <= self.persisted {
            return;
        }
        assert!(
            upto <= self.log.last(),
            "persisted {upto} beyond log end {}",
            self.log.last()
        );
        self.persisted = upto;
    }

    /// Emits everything that waited for a completion: LEADERINFO, ACKEPOCH, the NEWLEADER
    /// ack, ACKs, the leader's commits, and local `Commit` actions.
    fn release(&mut self) {
        match &self.role {
            Role::Looking(_) => {}
            Role::Leading(_) => self.release_leader(),
            Role::Following(_) | Role::Observing(_) => self.release_learner(),
        }
        self.advance_apply();
        if matches!(self.role, Role::Leading(_)) {
            self.check_transfer();
        }
    }

    /// The hand-over itself, once the target has acknowledged everything proposed and this
    /// leader has applied it all (so its own clients have their answers first): every
    /// learner hears who is next, and this leader goes Looking, voting for the target.
    fn check_transfer(&mut self) {
        let last = self.log.last();
        let l = self.leading_ref();
        let Some(t) = l.transfer else { return };
        let ready = self.applied >= last
            && l.handlers.get(&t.target).is_some_and(|h| {
                h.phase == HandlerPhase::Broadcast && !h.observer && h.acked >= last
            });
        if !ready {
            return;
        }
        let learners: Vec<(ServerId, u64)> =
            l.handlers.iter().map(|(id, h)| (*id, h.conn)).collect();
        for (id, conn) in learners {
            self.send(
                id,
                Message::Handover {
                    conn,
                    target: t.target,
                    last,
                },
            );
        }
        self.handover = Some(Handover {
            target: t.target,
            last,
            until_ms: self.now + self.config.sync_limit_ms,
        });
        self.go_looking("leadership handed over");
    }

    fn release_leader(&mut self) {
        let epoch = self.leading_ref().epoch;
        let phase = self.leading_ref().phase;
        if phase != LeaderPhase::Discovery && self.accepted_durable >= epoch {
            let pending: Vec<(ServerId, u64)> = self
                .leading_ref()
                .handlers
                .iter()
                .filter(|(_, h)| h.phase == HandlerPhase::Info && !h.leaderinfo_sent)
                .map(|(id, h)| (*id, h.conn))
                .collect();
            for (id, conn) in pending {
                self.leading()
                    .handlers
                    .get_mut(&id)
                    .expect("present")
                    .leaderinfo_sent = true;
                self.send(id, Message::LeaderInfo { conn, epoch });
            }
        }
        match phase {
            LeaderPhase::Discovery => {}
            LeaderPhase::EpochAck => self.check_epoch_quorum(),
            LeaderPhase::Sync => self.leader_sync(),
            LeaderPhase::Broadcast => self.advance_commit(),
        }
    }

    /// Zab phase 2 on the leader: its epoch becomes current once its history is durable (it
    /// appends nothing before it is established: its history is its log), and it is
    /// established once a quorum acknowledged NEWLEADER.
    fn leader_sync(&mut self) {
        let epoch = self.leading_ref().epoch;
        if self.durable_through() >= self.log.last() {
            self.make_current(epoch);
        }
        self.check_established();
    }

    /// Zab phase 2: `epoch` becomes this member's current epoch, written durably, once the
    /// history NEWLEADER closes is durable here, never before (ZOOKEEPER-4643). Elections
    /// rank the current epoch above the last zxid: a member that crashed with the epoch
    /// file written and the log synced only in part would come back as the most up to
    /// date with a log that lacks committed entries, and a leader it became would truncate
    /// them from everyone (sim seed 3373, 200 ticks: a follower synchronised by DIFF
    /// crashed before its log sync, won the next election on its epoch, and an
    /// acknowledged write was lost).
    fn make_current(&mut self, epoch: Epoch) {
        if self.current < epoch {
            self.current = epoch;
            self.actions.push(Action::PersistEpoch {
                accepted: self.accepted,
                current: epoch,
            });
        }
    }

    fn release_learner(&mut self) {
        let durable = self.durable_through();
        let (accepted_durable, current_durable) = (self.accepted_durable, self.current_durable);
        let last = self.log.last();
        let observer = self.observer;
        let l = self.learning();
        let (upstream, conn, epoch) = (l.upstream, l.conn, l.epoch);
        let mut out = Vec::new();
        if l.ackepoch_pending && accepted_durable >= epoch {
            l.ackepoch_pending = false;
            out.push(Message::AckEpoch {
                conn,
                current_epoch: current_durable,
                last,
                fresh: l.ackepoch_fresh,
            });
        }
        let history_durable = l
            .newleader_pending
            .is_some_and(|nl_last| durable >= nl_last);
        if let Some(nl_last) = l.newleader_pending {
            if current_durable >= epoch && durable >= nl_last {
                l.newleader_pending = None;
                l.newleader_acked = true;
                l.acked = nl_last;
                out.push(Message::AckNewLeader { conn, epoch });
            }
        }
        if l.newleader_acked && !observer && durable > l.acked {
            l.acked = durable;
            out.push(Message::Ack {
                conn,
                zxid: durable,
            });
        }
        for msg in out {
            self.send(upstream, msg);
        }
        if history_durable {
            self.make_current(epoch);
        }
    }

    /// Local `Commit` actions: committed and durable here, in zxid order.
    fn advance_apply(&mut self) {
        let limit = self.committed.min(self.durable_through());
        if limit <= self.applied {
            return;
        }
        let entries: Vec<(Zxid, Payload)> = self
            .log
            .after(self.applied)
            .take_while(|e| e.0 <= limit)
            .cloned()
            .collect();
        for (zxid, data) in entries {
            self.actions.push(Action::Commit { zxid, data });
            self.applied = zxid;
        }
        self.trim();
        if self.membership.activate_through(self.applied).is_some() {
            self.membership_changed();
        }
    }

    // ---- dynamic reconfiguration (membership.rs) ----

    /// A reconfig took effect here (QuorumPeer.processReconfig): the new voters count from
    /// now on. A leader that no longer votes hands over to a voter of the new membership
    /// (ZooKeeper's designated leader) instead of leaving an election without a quorum of
    /// its own; a learner whose role changed (voter ↔ observer, or removed) joins again in
    /// its new role, as ZooKeeper's learner restarts its session.
    fn membership_changed(&mut self) {
        let members = self.membership.current.clone();
        self.quorum = Quorum::new(members.voters.iter().copied());
        let was_observer = self.observer;
        self.observer = !self.quorum.is_voter(self.config.myid);
        self.master_forget_voters();
        match &self.role {
            Role::Looking(l) => {
                if l.recv.contains_key(&self.config.myid) != self.elects() {
                    // It votes now, or no longer: a new round with the right ballot.
                    self.go_looking("a reconfig changed whether it votes");
                }
            }
            Role::Leading(l) => {
                if self.observer && l.transfer.is_none() && self.transfer_leadership(None).is_err()
                {
                    // No synchronised voter of the new membership to hand over to: elect.
                    self.go_looking("a reconfig made it a non-voter with no voter to hand over to");
                }
            }
            Role::Following(_) | Role::Observing(_) => {
                if was_observer != self.observer {
                    self.go_looking("a reconfig changed its role");
                }
            }
        }
    }

    fn trim(&mut self) {
        while self.log.entries.len() > self.config.history_retain
            && self
                .log
                .entries
                .front()
                .is_some_and(|e| e.0 <= self.applied)
        {
            let (zxid, _) = self.log.entries.pop_front().expect("non-empty");
            self.log.base = zxid;
        }
    }

    fn on_tick(&mut self, now_ms: u64) {
        // A driver's clock never goes back; a reading that does (a sim bug, a clock that is
        // not monotonic) must not shorten a timeout.
        self.now = self.now.max(now_ms);
        let now = self.now;
        self.lapse_handover(now);
        match &self.role {
            Role::Looking(_) => {
                self.broadcast_vote();
                if self.elects() {
                    self.check_finalize();
                }
            }
            Role::Leading(_) => self.leader_tick(now),
            Role::Following(_) | Role::Observing(_) => {
                self.learner_tick(now);
                self.master_tick(now);
            }
        }
    }

    /// A hand-over that did not complete in time: a leader proposes again; a voter still
    /// looking starts a new round with an ordinary vote, so that a dead target does not hold
    /// the election up.
    fn lapse_handover(&mut self, now: u64) {
        if let Role::Leading(l) = &mut self.role {
            if l.transfer.is_some_and(|t| now > t.until_ms) {
                l.transfer = None;
            }
        }
        if self.handover.is_some_and(|h| now > h.until_ms) {
            self.handover = None;
            if matches!(self.role, Role::Looking(_)) {
                self.logical_clock += 1;
                self.vote = self.self_vote();
                let mut looking = Looking::default();
                if self.elects() {
                    looking.recv.insert(self.config.myid, self.vote);
                }
                self.role = Role::Looking(looking);
            }
        }
    }

    /// Leader.lead's ping loop: ping every learner; step down without a quorum of voters
    /// heard from within syncLimit, or when not established within initLimit.
    fn leader_tick(&mut self, now: u64) {
        // The time first: a leader that was frozen past syncLimit must not ping (and so
        // look alive to its learners) before it sees that it lost its quorum.
        let leading = self.leading_ref();
        if leading.phase != LeaderPhase::Broadcast {
            if now.saturating_sub(leading.since) > self.config.init_limit_ms {
                let why = format!(
                    "not established within initLimit ({} ms): {}",
                    self.config.init_limit_ms,
                    self.learners_heard(now)
                );
                self.go_looking(why);
                return;
            }
        } else if !self.hears_quorum(now) {
            let why = format!(
                "no quorum of synchronised voters heard within syncLimit ({} ms): {}",
                self.config.sync_limit_ms,
                self.learners_heard(now)
            );
            self.go_looking(why);
            return;
        }
        let committed = self.committed;
        let round = self.leading_ref().round;
        let pings: Vec<(ServerId, u64)> = self
            .leading_ref()
            .handlers
            .iter()
            .map(|(id, h)| (*id, h.conn))
            .collect();
        for (id, conn) in pings {
            self.send(
                id,
                Message::Ping {
                    conn,
                    committed,
                    round,
                },
            );
        }
    }

    /// Leader.lead's `syncedAckSet` check: a quorum of voters (the leader included), each
    /// synchronised, heard from within syncLimit, and with its link not reported lost.
    fn hears_quorum(&self, now: u64) -> bool {
        let alive: Vec<ServerId> = self
            .leading_ref()
            .handlers
            .iter()
            .filter(|(_, h)| {
                h.phase >= HandlerPhase::AckedNewLeader
                    && !h.lost
                    && now.saturating_sub(h.last_heard) <= self.config.sync_limit_ms
            })
            .map(|(id, _)| *id)
            .chain([self.config.myid])
            .collect();
        self.quorum.is_quorum(&alive)
    }

    fn on_peer_lost(&mut self, peer: ServerId) {
        match &mut self.role {
            Role::Following(l) | Role::Observing(l) if l.leader == peer || l.upstream == peer => {
                self.go_looking(format!(
                    "the link to {peer}, its leader or master, was lost"
                ))
            }
            Role::Following(_) => self.master.lost(peer),
            Role::Leading(l) => {
                let Some(h) = l.handlers.get_mut(&peer) else {
                    return;
                };
                h.lost = true;
                // During discovery and synchronisation initLimit bounds the wait; once
                // broadcasting, a leader that knows it cannot reach a quorum stops at once
                // instead of serving until syncLimit runs out.
                if l.phase == LeaderPhase::Broadcast && !self.hears_quorum(self.now) {
                    let why = format!(
                        "the link to {peer} was lost, leaving no quorum: {}",
                        self.learners_heard(self.now)
                    );
                    self.go_looking(why);
                }
            }
            _ => {}
        }
    }

    // ---- read rounds (linearizable sync) ----

    /// Leader: the read round a linearizable read that arrives now must wait for: a round
    /// that starts after this call. It is confirmed by [`Action::LeadershipConfirmed`] once a
    /// quorum of voters echoed it; the driver answers the read then, from a tree that holds
    /// the leader's last zxid as of this call. The round starts at once when none is in
    /// flight, else when the one in flight is confirmed, so one round serves every read
    /// that arrived meanwhile. Like `step`, actions follow in `ready()`.
    pub fn read_index(&mut self) -> Result<u64, StepError> {
        let Role::Leading(l) = &mut self.role else {
            return Err(StepError::NotLeader);
        };
        if l.phase != LeaderPhase::Broadcast {
            return Err(StepError::NotLeader);
        }
        let round = if l.round > l.round_confirmed {
            l.round_wanted = true;
            l.round + 1
        } else {
            self.start_round();
            self.leading_ref().round
        };
        self.invariants();
        Ok(round)
    }

    fn start_round(&mut self) {
        let committed = self.committed;
        let l = self.leading();
        l.round += 1;
        l.round_wanted = false;
        let round = l.round;
        let voters: Vec<(ServerId, u64)> = l
            .handlers
            .iter()
            .filter(|(_, h)| !h.observer)
            .map(|(id, h)| (*id, h.conn))
            .collect();
        for (id, conn) in voters {
            self.send(
                id,
                Message::Ping {
                    conn,
                    committed,
                    round,
                },
            );
        }
        // A leader that is its own quorum confirms at once.
        self.check_rounds();
    }

    /// Confirms the read rounds a quorum of voters echoed; starts the round reads wait for.
    fn check_rounds(&mut self) {
        let l = self.leading_ref();
        if l.phase != LeaderPhase::Broadcast {
            return;
        }
        let mut rounds: BTreeMap<ServerId, u64> = l
            .handlers
            .iter()
            .filter(|(_, h)| !h.observer)
            .map(|(id, h)| (*id, h.round))
            .collect();
        rounds.insert(self.config.myid, l.round);
        let confirmed = self.quorum.agreed(&rounds);
        if confirmed <= l.round_confirmed {
            return;
        }
        let l = self.leading();
        l.round_confirmed = confirmed;
        let next = l.round_wanted && confirmed == l.round;
        self.actions
            .push(Action::LeadershipConfirmed { round: confirmed });
        if next {
            self.start_round();
        }
    }

    /// Follower.followLeader's timeouts: initLimit while synchronising, syncLimit after.
    fn learner_tick(&mut self, now: u64) {
        let (init, sync) = (self.config.init_limit_ms, self.config.sync_limit_ms);
        let l = self.learning();
        let limit = if l.phase == LearnerPhase::Broadcast {
            sync
        } else {
            init
        };
        if now.saturating_sub(l.last_heard) > limit {
            let why = format!(
                "nothing from its leader {} for {} ms (limit {limit} ms{})",
                l.leader,
                now.saturating_sub(l.last_heard),
                if l.phase == LearnerPhase::Broadcast {
                    ", syncLimit"
                } else {
                    ", initLimit"
                }
            );
            self.go_looking(why);
            return;
        }
        if l.phase != LearnerPhase::Broadcast && now.saturating_sub(l.progress_at) > init {
            self.reconnect();
            return;
        }
        if l.phase == LearnerPhase::AwaitLeaderInfo {
            self.send_follower_info();
        }
    }

    // ---- invariants ----

    /// The facts every step preserves; on in release builds, except the O(window) one.
    fn invariants(&self) {
        let last = self.log.last();
        assert!(
            self.current <= self.accepted,
            "current epoch {} above accepted {}",
            self.current,
            self.accepted
        );
        assert!(
            self.accepted_durable <= self.accepted,
            "durable accepted epoch ahead of memory"
        );
        assert!(
            self.current_durable <= self.current,
            "durable current epoch ahead of memory"
        );
        assert!(
            self.applied <= self.committed,
            "applied {} above committed {}",
            self.applied,
            self.committed
        );
        assert!(
            self.committed <= last,
            "committed {} above log end {last}",
            self.committed
        );
        assert!(
            self.persisted <= last,
            "persisted {} above log end {last}",
            self.persisted
        );
        assert!(
            self.log.base <= self.applied,
            "log base {} above applied {}",
            self.log.base,
            self.applied
        );
        // The whole window, O(history_retain) per step: debug builds (the sim's fixed seeds)
        // only. In release it was a quarter of the ZAB core's CPU under writes; `Log::push`
        // and `truncate_after` keep the order anyway.
        if cfg!(debug_assertions) {
            let mut prev = self.log.base;
            for (z, _) in &self.log.entries {
                assert!(*z > prev, "log zxid {z} not after {prev}");
                prev = *z;
            }
        }
        self.master_invariants();
        match &self.role {
            Role::Looking(l) => {
                assert!(
                    !self.elects() || l.recv.get(&self.config.myid) == Some(&self.vote),
                    "own vote missing from the round"
                );
            }
            Role::Leading(l) => {
                if l.phase == LeaderPhase::Broadcast {
                    assert!(
                        Zxid::new(l.epoch.0, l.next_counter) > last,
                        "next zxid not after the log"
                    );
                    assert!(self.current == l.epoch, "leading epoch is not current");
                }
                if let Some(t) = l.transfer {
                    assert!(t.target != self.config.myid, "transferring to itself");
                }
                assert!(
                    l.round_confirmed <= l.round,
                    "read round {} confirmed beyond the last started {}",
                    l.round_confirmed,
                    l.round
                );
                for (id, h) in &l.handlers {
                    assert!(
                        h.round <= l.round,
                        "learner {id} echoed read round {} never started ({})",
                        h.round,
                        l.round
                    );
                }
                assert!(
                    !l.handlers.contains_key(&self.config.myid),
                    "leader handles itself"
                );
                for (id, h) in &l.handlers {
                    assert!(
                        h.acked <= h.sent_through || h.observer,
                        "learner {id} acked past what it was sent"
                    );
                }
            }
            Role::Following(l) | Role::Observing(l) => {
                assert!(l.leader != self.config.myid, "following itself");
                assert!(l.acked <= self.persisted.max(l.acked), "ack above durable");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(myid: ServerId) -> Config {
        Config {
            myid,
            voters: vec![1, 2, 3],
            observers: Vec::new(),
            init_limit_ms: 10,
            sync_limit_ms: 5,
            finalize_wait_ms: 0,
            history_retain: 8,
            config_version: Zxid::ZERO,
            reconfig_of: crate::membership::no_reconfig,
            observer_masters: false,
        }
    }

    fn notify(r: &mut Replica, from: ServerId, leader: ServerId, round: u64, state: PeerState) {
        let vote = Vote {
            leader,
            zxid: Zxid::ZERO,
            peer_epoch: Epoch(0),
        };
        let msg = Message::Notification {
            vote,
            round,
            state,
            config: Default::default(),
        };
        r.step(Input::Receive { from, msg }).expect("never refused");
        r.ready();
    }

    #[test]
    fn a_learner_leaves_when_its_leader_elects_again() {
        let mut r = Replica::new(config(3), Durable::default(), 7);
        r.ready();
        // 2 leads (decided in round 5) and 1 follows it: 3 joins them (outofelection).
        notify(&mut r, 2, 2, 5, PeerState::Leading);
        notify(&mut r, 1, 2, 5, PeerState::Following);
        assert_eq!(r.role(), RoleKind::Following);
        assert_eq!(r.leader(), Some(2));
        // A LOOKING vote 2 sent before it led (delayed) says nothing new.
        notify(&mut r, 2, 2, 5, PeerState::Looking);
        assert_eq!(r.role(), RoleKind::Following);
        // From another voter, neither.
        notify(&mut r, 1, 1, 9, PeerState::Looking);
        assert_eq!(r.role(), RoleKind::Following);
        // A LOOKING vote of a later round: 2 gave up leading, so 3 elects again.
        notify(&mut r, 2, 2, 6, PeerState::Looking);
        assert_eq!(r.role(), RoleKind::Looking);
    }

    fn follower_info(r: &mut Replica, from: ServerId, conn: u64, accepted: u32) -> Vec<Action> {
        let msg = Message::FollowerInfo {
            conn,
            accepted_epoch: Epoch(accepted),
            base: Zxid::ZERO,
            epochs: Vec::new(),
            observer: false,
        };
        r.step(Input::Receive { from, msg }).expect("never refused");
        r.ready()
    }

    fn proposed_epoch(actions: &[Action]) -> Option<Epoch> {
        actions.iter().find_map(|a| match a {
            Action::PersistEpoch { accepted, .. } => Some(*accepted),
            _ => None,
        })
    }

    #[test]
    fn a_leader_makes_room_for_a_learner_that_promised_a_later_epoch() {
        let mut r = Replica::new(config(1), Durable::default(), 7);
        r.ready();
        // 2 votes for 1 in round 1: 1 leads, and 2's FOLLOWERINFO fixes epoch 1.
        notify(&mut r, 2, 1, 1, PeerState::Looking);
        assert_eq!(r.role(), RoleKind::Leading);
        let actions = follower_info(&mut r, 2, 10, 0);
        assert_eq!(proposed_epoch(&actions), Some(Epoch(1)));
        // 3 accepted epoch 7 from a leader that gave up: it would refuse epoch 1 forever.
        follower_info(&mut r, 3, 11, 7);
        assert_eq!(r.role(), RoleKind::Looking);
        // Elected again, 1 proposes an epoch 3 can take, though 2's quorum says 2.
        notify(&mut r, 2, 1, 2, PeerState::Looking);
        assert_eq!(r.role(), RoleKind::Leading);
        let actions = follower_info(&mut r, 2, 12, 1);
        assert_eq!(proposed_epoch(&actions), Some(Epoch(8)));
    }

    /// Steps `input` and returns what followed, with the epochs the replica asked for
    /// reported persisted at once (as a driver does once its files are durable).
    fn step_all(r: &mut Replica, input: Input) -> Vec<Action> {
        r.step(input).expect("not refused");
        let mut all = Vec::new();
        let mut pending = r.ready();
        while !pending.is_empty() {
            let mut next = Vec::new();
            for a in pending {
                if let Action::PersistEpoch { accepted, current } = a {
                    r.step(Input::EpochPersisted { accepted, current })
                        .expect("never refused");
                    next.extend(r.ready());
                }
                all.push(a);
            }
            pending = next;
        }
        all
    }

    #[test]
    fn a_lone_voter_leads_at_once_commits_on_its_own_sync_and_never_steps_down() {
        let cfg = Config {
            voters: vec![4],
            init_limit_ms: 1_000,
            sync_limit_ms: 500,
            finalize_wait_ms: 60_000,
            history_retain: 0,
            config_version: Zxid::ZERO,
            reconfig_of: crate::membership::no_reconfig,
            observer_masters: false,
            ..config(4)
        };
        let old = Zxid::new(0, 7);
        let durable = Durable {
            base: old,
            ..Durable::default()
        };
        let mut r = Replica::new(cfg, durable, 7);
        // Elected without a tick, a peer or the finalize wait; the epoch is made durable
        // before it leads (accepted, then current).
        assert_eq!(r.role(), RoleKind::Leading);
        let first = r.ready();
        assert_eq!(
            first,
            vec![Action::PersistEpoch {
                accepted: Epoch(1),
                current: Epoch(0)
            }]
        );
        assert_eq!(r.next_zxid(), None, "not before its epoch is durable");
        let actions = step_all(
            &mut r,
            Input::EpochPersisted {
                accepted: Epoch(1),
                current: Epoch(0),
            },
        );
        assert!(actions.contains(&Action::PersistEpoch {
            accepted: Epoch(1),
            current: Epoch(1)
        }));
        assert!(actions.contains(&Action::BecameLeader { epoch: Epoch(1) }));
        let zxid = r.next_zxid().expect("established");
        assert_eq!(zxid, Zxid::new(1, 1));

        // A proposal: appended and synced, sent to no one, committed once durable here.
        let data = Payload::from_static(b"txn");
        let actions = step_all(&mut r, Input::Propose { zxid, data });
        assert!(
            actions
                .iter()
                .all(|a| matches!(a, Action::Append { .. } | Action::Sync { .. })),
            "{actions:?}"
        );
        let token = actions
            .iter()
            .find_map(|a| match a {
                Action::Sync { token, .. } => Some(*token),
                _ => None,
            })
            .expect("a sync");
        assert_eq!(r.committed(), old, "not committed before it is durable");
        let actions = step_all(&mut r, Input::Persisted { upto: zxid, token });
        assert!(matches!(actions.as_slice(), [Action::Commit { zxid: z, .. }] if *z == zxid));

        // A read round is confirmed by its own echo, and no silence deposes it.
        let round = r.read_index().expect("leader");
        assert!(r.ready().contains(&Action::LeadershipConfirmed { round }));
        let actions = step_all(&mut r, Input::Tick { now_ms: 3_600_000 });
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(r.role(), RoleKind::Leading);
        assert_eq!(r.next_zxid(), Some(Zxid::new(1, 2)));
    }
}
