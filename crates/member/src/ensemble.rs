//! An ensemble member: the zab `Replica` decides what is committed; this file maps its
//! actions to the member's work and effects, and holds the role-specific state. A
//! standalone server is the one-voter case: its replica elects itself at once, sends no
//! frame (it has no learner), and commits each txn as soon as its own fdatasync covers it.
//!
//! The pipeline of each role, as same-core calls:
//! - leader: shard request → prep against the working tree (the committed tree plus every
//!   outstanding proposal, ZooKeeper's outstandingChanges) → append to the log (a full
//!   disk refuses it here, `room.rs`) → `Propose` → PROPOSALs
//!   → one fdatasync for everything appended meanwhile → `Persisted` → quorum of ACKs →
//!   `Commit` → apply to the committed tree → publish a `CommitBatch` to the shards, which
//!   answer the clients whose route names this server;
//! - follower / observer: shard request → `Forward::Request` to the leader (with the route
//!   back to the client) → the leader's PROPOSAL/INFORM → `Commit` → apply → publish. An
//!   observer with an observer master sends its forwards to that follower, which relays
//!   them to the leader (`Forward::Relay`) and the leader's answers back; its INFORMs come
//!   from the follower too.
//!
//! Reads never come here: shards serve them from the last published view. A `sync` does: the
//! leader notes its last zxid and answers once a read round started after the sync arrived is
//! confirmed by a quorum (the replica's `read_index`, etcd's ReadIndex) and its tree holds
//! that zxid, so a sync then a read is linearizable even on a leader that was deposed while
//! frozen or cut off. A learner forwards the sync and answers when its tree reaches the zxid
//! the leader sends back.
//!
//! Time is the replica's input: every step first gives it the monotonic clock (a `Tick`
//! with the elapsed milliseconds, at most one per half sub-tick), then the input. After a
//! freeze (SIGSTOP) the first thing the replica sees is the whole freeze, so a leader whose
//! followers went silent steps down before anything queued meanwhile is looked at.
//!
//! Durability ordering is the replica's (an ACK only after `Persisted`, a `Commit` only of
//! what is durable here); the member keeps its side: `Persisted` only after the fdatasync
//! returned, `EpochPersisted` only after the driver wrote the epoch files, a SNAP's snapshot
//! file durable before `SnapshotInstalled`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use zoocore_proto::{ErrorCode, SessionId, Zxid};
use zoocore_storage::{Device, SnapshotError};
use zoocore_tree::{Applied, Tree, Txn};
use zoocore_zab::{
    Action, Config as ZabConfig, Durable, Epoch, Frame, Input as ZabInput, Message, Payload,
    Replica,
};

use crate::forward::{decode_payload, payload_size_hint, write_payload, Forward, Route};
use crate::member::{
    prep, Effect, Latency, LeadershipAsk, Member, Queued, RestoreError, Role, StopReason,
};
use crate::msg::{CommitBatch, Committed, CoreOp, Outcome};
use crate::reconfig::{prep_reconfig, ClusterConfig, ReconfigContext};

/// What an ensemble member is told at start, beside `MemberConfig`.
#[derive(Debug, Clone)]
pub struct EnsembleConfig {
    pub zab: ZabConfig,
    /// The replica's start state: epochs, the snapshot's zxid, the log after it.
    pub durable: Durable,
    /// Seeds the replica's connection ids.
    pub seed: u64,
    /// How often the replica is given the time: at most once per this many milliseconds
    /// (the driver ticks twice as often).
    pub time_spacing_ms: u64,
    /// `readonlymode.enabled`: after looking for this long, the member serves read-only
    /// sessions from its last tree (`Role::ReadOnly`) until it has a leader again. ZooKeeper
    /// waits `max(2000, tickTime)` (QuorumPeer), so that an ordinary election does not
    /// flip it. None: read-only mode off.
    pub read_only_after_ms: Option<u64>,
}

/// A `sync` waiting for this member's tree to reach `target` and, on the leader, for read
/// round `round` to be confirmed (0 on a learner: its leader confirmed it).
struct PendingSync {
    target: Zxid,
    round: u64,
    route: Route,
    path: String,
}

/// A frame for a peer that must wait for a SNAP being serialised before it.
enum Outgoing {
    Frame(Frame),
    Snap { id: u64, frame: Option<Frame> },
}

/// The role-specific state of an ensemble member.
pub(crate) struct Replicated<D: Device> {
    pub(crate) replica: Replica,
    /// A one-voter ensemble of a standalone server: it reports `Role::Standalone`.
    pub(crate) standalone: bool,
    pub(crate) role: Role,
    leader: Option<u64>,
    /// A learner: where its forwards go: its leader, or an observer's observer master,
    /// which relays them (docs/ZAB.md, "Observer masters").
    upstream: Option<u64>,
    /// Leader only: the observer master each observer's forwards last came through; the
    /// leader's answers to that observer go back the same way.
    relays: HashMap<u64, u64>,
    /// Leader only: the committed tree plus every outstanding proposal.
    pub(crate) working: Option<Tree>,
    /// Leader only: each outstanding proposal's txn and result, in zxid order, with the
    /// working tree just after it for the last proposal of each round. Its commit takes them
    /// instead of applying the txn again: the leader applies each txn once. Keeping a
    /// version per txn would cost a path copy per txn in the working tree (the next apply
    /// could no longer change shared nodes in place), which measured a quarter more CPU per
    /// standalone write; a quorum's commit point is nearly always a round's last proposal
    /// (always on a standalone server, whose commit points are its syncs).
    proposed: VecDeque<(Zxid, Option<Tree>, Txn, Applied)>,
    /// Committed txns the committed tree does not hold yet, because the version that holds
    /// them is kept with a later proposal of their round; applied (a second time, on the
    /// committed tree) at the end of the step if that one did not commit in it.
    unapplied: Vec<(Zxid, i64, Txn)>,
    /// Leader only: re-arm every session's expiry when the working tree is first built.
    takeover: bool,
    /// Learner: sessions that showed life since the last report to the leader.
    pub(crate) touched: HashSet<SessionId>,
    /// Syncs of this member's clients, answered once the tree reaches their target.
    syncs: Vec<PendingSync>,
    /// Leader only: syncs forwarded by learners, answered with `SyncDone` once committed.
    remote_syncs: Vec<PendingSync>,
    /// Leader only: the last read round a quorum confirmed in this leadership.
    round_confirmed: u64,
    /// When the replica last had the time.
    ticked_ms: Option<u64>,
    read_only_after_ms: Option<u64>,
    /// Since when this member has had no leader (set on entering `Looking`).
    looking_since_ms: u64,
    time_spacing_ms: u64,
    /// Leader only: the member each session is attached to (ZooKeeper's session owner);
    /// a write of a session from another member is refused with SESSIONMOVED. Unknown after
    /// a leader change until the session's first request or reconnection.
    session_owner: HashMap<SessionId, u64>,
    /// Committed entries not yet published, and whether the view changed without entries.
    batch: Vec<Committed>,
    view_changed: bool,
    close_all: bool,
    /// A hand-over election: the clients' connections stay open until this member serves
    /// again (or until this deadline, syncLimit after), then close. Closing them as the
    /// election starts sent every client to members that were all electing: each refused
    /// it, and clients wait hundreds of milliseconds before a second round of attempts.
    close_deferred_until: Option<u64>,
    /// Standalone: the zxid of the marker txn a restore waits on (`propose_restore`).
    restore_at: Option<Zxid>,
    sync_limit_ms: u64,
    /// Completions for the replica, fed before the round ends.
    inputs: VecDeque<ZabInput>,
    sync_wanted: Option<u64>,
    sync_in_flight: bool,
    /// Frames for peers with a SNAP being serialised: they leave in order once it is built.
    held: HashMap<u64, VecDeque<Outgoing>>,
    snaps_built: u64,
    /// Leader: the proposal the member appended to the log itself (`append_proposal`), so
    /// the replica's `Append` of it is already done.
    appended_ahead: Option<Zxid>,
    /// Where a standalone server encodes each proposal, and a leader its first, empty one
    /// (kept for its capacity; a leader gives every other proposal a buffer of its own,
    /// which becomes the payload).
    payload_buf: Vec<u8>,
    /// The replica's actions being executed (kept for its capacity).
    actions: Vec<Action>,
    _device: std::marker::PhantomData<D>,
}

impl<D: Device> Replicated<D> {
    pub(crate) fn new(cfg: EnsembleConfig, standalone: bool) -> Self {
        Replicated {
            sync_limit_ms: cfg.zab.sync_limit_ms,
            replica: Replica::new(cfg.zab, cfg.durable, cfg.seed),
            standalone,
            role: Role::Looking,
            leader: None,
            upstream: None,
            relays: HashMap::new(),
            working: None,
            proposed: VecDeque::new(),
            unapplied: Vec::new(),
            takeover: false,
            touched: HashSet::new(),
            syncs: Vec::new(),
            remote_syncs: Vec::new(),
            round_confirmed: 0,
            ticked_ms: None,
            read_only_after_ms: cfg.read_only_after_ms,
            looking_since_ms: 0,
            time_spacing_ms: cfg.time_spacing_ms,
            session_owner: HashMap::new(),
            batch: Vec::new(),
            view_changed: false,
            close_all: false,
            close_deferred_until: None,
            restore_at: None,
            inputs: VecDeque::new(),
            sync_wanted: None,
            sync_in_flight: false,
            held: HashMap::new(),
            snaps_built: 0,
            appended_ahead: None,
            payload_buf: Vec::new(),
            actions: Vec::new(),
            _device: std::marker::PhantomData,
        }
    }

    pub(crate) fn check_invariants(&self, member: &Member<D>) {
        if self.role != Role::Leader {
            assert!(self.working.is_none(), "only a leader has a working tree");
        }
        if let Some(w) = &self.working {
            assert!(
                w.last_zxid() >= member.tree.last_zxid(),
                "working tree {} behind the committed {}",
                w.last_zxid(),
                member.tree.last_zxid()
            );
        } else {
            assert!(
                self.proposed.is_empty(),
                "proposals kept without a working tree"
            );
        }
        assert!(
            self.unapplied.is_empty() || member.is_stopped(),
            "committed txns left out of the committed tree after a step"
        );
        let mut last = member.tree.last_zxid();
        for (zxid, tree, _, _) in &self.proposed {
            assert!(*zxid > last, "proposal {zxid} not after {last}");
            if let Some(tree) = tree {
                assert_eq!(
                    tree.last_zxid(),
                    *zxid,
                    "the tree kept with proposal {zxid}"
                );
            }
            last = *zxid;
        }
    }
}

/// The frame of a SNAP: the tree in the snapshot file format (docs/SNAPSHOT.md). For the
/// driver to run off the hot path.
pub fn snap_frame(tree: &Tree, conn: u64, zxid: Zxid, keep: Zxid) -> Result<Frame, SnapshotError> {
    let mem = zoocore_storage::MemDevice::new();
    let info = zoocore_storage::write_snapshot(&mem, tree)?;
    let bytes =
        zoocore_storage::Device::read(&mem, &info.name).map_err(|source| SnapshotError::Io {
            file: info.name.clone(),
            source,
        })?;
    Ok(Message::Snap {
        conn,
        zxid,
        keep,
        data: Payload::from(bytes),
    }
    .encode_frame())
}

impl<D: Device> Member<D> {
    fn ens(&mut self) -> &mut Replicated<D> {
        &mut self.replicated
    }

    fn ens_ref(&self) -> &Replicated<D> {
        &self.replicated
    }

    /// The replica's first notifications (a standalone member's: its epoch to persist).
    pub(crate) fn ensemble_start(&mut self) {
        self.ens().looking_since_ms = self.now.mono_ms;
        if !self.ens_ref().standalone {
            self.effects.push(Effect::Role(Role::Looking));
        }
        if let Err(reason) = self.execute_ready() {
            self.stop(reason);
        }
    }

    /// Gives the replica the time, at most once per `time_spacing_ms`: called first in
    /// every step, so that after a stall the replica sees it before any input that waited.
    pub(crate) fn feed_time(&mut self) -> Result<(), StopReason> {
        let now_ms = self.now.mono_ms;
        let r = self.ens_ref();
        if r.ticked_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < r.time_spacing_ms)
        {
            return Ok(());
        }
        self.ens().ticked_ms = Some(now_ms);
        self.replica_step(ZabInput::Tick { now_ms })?;
        let r = self.ens();
        if r.role == Role::Looking
            && r.read_only_after_ms
                .is_some_and(|after| now_ms.saturating_sub(r.looking_since_ms) >= after)
        {
            self.set_role(Role::ReadOnly);
        }
        Ok(())
    }

    fn replica_step(&mut self, input: ZabInput) -> Result<(), StopReason> {
        if let Err(e) = self.ens().replica.step(input) {
            // Only Propose can be refused, and the member proposes only next_zxid().
            panic!("the replica refused an input: {e}");
        }
        self.execute_ready()
    }

    fn execute_ready(&mut self) -> Result<(), StopReason> {
        // A buffer kept across steps: every proposal is a step, and each would otherwise
        // allocate its list of actions.
        let mut actions = std::mem::take(&mut self.ens().actions);
        self.ens().replica.ready_into(&mut actions);
        for action in actions.drain(..) {
            self.execute(action)?;
        }
        self.ens().actions = actions;
        self.catch_up();
        Ok(())
    }

    /// Applies the committed txns whose version was not kept (`unapplied`).
    fn catch_up(&mut self) {
        for (zxid, time_ms, txn) in std::mem::take(&mut self.ens().unapplied) {
            self.tree.apply(zxid, time_ms, &txn);
        }
    }

    /// The last committed zxid, also while the committed tree lags behind it in a step.
    pub(crate) fn zxid_committed(&self) -> Zxid {
        self.ens_ref()
            .unapplied
            .last()
            .map_or(self.tree.last_zxid(), |u| u.0)
    }

    /// Feeds completions queued by actions until none is left.
    fn settle(&mut self) -> Result<(), StopReason> {
        while let Some(input) = self.ens().inputs.pop_front() {
            self.replica_step(input)?;
        }
        Ok(())
    }

    pub(crate) fn on_peer(&mut self, from: u64, msg: Message) -> Result<(), StopReason> {
        match &msg {
            Message::Diff { .. } => tracing::info!("synchronising with {from} by DIFF"),
            Message::Trunc { after, .. } => {
                tracing::info!("synchronising with {from} by TRUNC after {after}")
            }
            Message::Snap { zxid, .. } => {
                tracing::info!("synchronising with {from} by SNAP at {zxid}")
            }
            _ => {}
        }
        self.replica_step(ZabInput::Receive { from, msg })
    }

    /// An operator's ask to move leadership. What cannot be done (standalone, not a
    /// follower or not the leader, no synchronised target) is logged and changes nothing.
    pub(crate) fn on_leadership(&mut self, ask: LeadershipAsk) -> Result<(), StopReason> {
        if self.ens_ref().standalone {
            tracing::info!("leadership {ask:?} ignored: a standalone server");
            return Ok(());
        }
        let replica = &mut self.ens().replica;
        let result = match ask {
            LeadershipAsk::Request => replica.request_leadership(),
            LeadershipAsk::Yield { to } => replica.transfer_leadership(to),
        };
        match result {
            Ok(id) => tracing::info!("leadership {ask:?}: asked {id}"),
            Err(e) => tracing::info!("leadership {ask:?} refused: {e}"),
        }
        self.execute_ready()
    }

    pub(crate) fn on_peer_lost(&mut self, peer: u64) -> Result<(), StopReason> {
        self.replica_step(ZabInput::PeerLost { peer })
    }

    pub(crate) fn on_epochs_persisted(
        &mut self,
        accepted: Epoch,
        current: Epoch,
        result: std::io::Result<()>,
    ) -> Result<(), StopReason> {
        result.map_err(StopReason::Epochs)?;
        self.ens()
            .inputs
            .push_back(ZabInput::EpochPersisted { accepted, current });
        self.settle()
    }

    pub(crate) fn on_snap_built(
        &mut self,
        to: u64,
        id: u64,
        frame: Result<Frame, SnapshotError>,
    ) -> Result<(), StopReason> {
        let frame = frame.map_err(StopReason::SnapBuild)?;
        if let Some(held) = self.ens().held.get_mut(&to) {
            for out in held.iter_mut() {
                if let Outgoing::Snap { id: i, frame: f } = out {
                    if *i == id {
                        *f = Some(frame);
                        break;
                    }
                }
            }
        }
        self.release_held(to);
        Ok(())
    }

    pub(crate) fn ensemble_synced(&mut self, upto: Zxid, token: Option<u64>) {
        let r = self.ens();
        r.sync_in_flight = false;
        let token = token.expect("an ensemble sync carries the replica's token");
        r.inputs.push_back(ZabInput::Persisted { upto, token });
    }

    /// A client reconnected to this member with `session`: tell the leader this member
    /// owns it now (on a learner, before any request of the session it forwards later).
    pub(crate) fn attach(&mut self, session: SessionId) {
        let myid = self.myid;
        let r = self.ens_ref();
        match (r.role, r.upstream) {
            (Role::Leader, _) => {
                self.ens().session_owner.insert(session, myid);
            }
            (Role::Follower | Role::Observer, Some(upstream)) => {
                self.send_forward(upstream, &Forward::Attach { session });
            }
            _ => {}
        }
    }

    /// Learner: the sessions that showed life, to the leader.
    pub(crate) fn report_touched(&mut self) {
        let r = self.ens_ref();
        let (Role::Follower | Role::Observer, Some(upstream)) = (r.role, r.upstream) else {
            return;
        };
        if r.touched.is_empty() {
            return;
        }
        let sessions: Vec<SessionId> = self.ens().touched.drain().collect();
        self.send_forward(upstream, &Forward::Touch { sessions });
    }

    pub(crate) fn on_forward(&mut self, from: u64, msg: Forward) {
        let r = self.ens_ref();
        let (role, leader) = (r.role, r.leader);
        match msg {
            Forward::Relay { member, msg } => match role {
                // From a master: its observer's forward, taken as the observer's.
                Role::Leader => {
                    self.ens().relays.insert(member, from);
                    self.on_forward_from(member, *msg);
                }
                // From this follower's leader: an answer for an observer it serves.
                Role::Follower if Some(from) == leader => self.send_forward(member, &msg),
                _ => {}
            },
            Forward::Request { .. } | Forward::Touch { .. } | Forward::Attach { .. }
                if role == Role::Follower && self.ens_ref().replica.serves_observer(from) =>
            {
                // An observer this follower serves as its master: on to the leader.
                if let Some(leader) = leader {
                    let frame = Message::encode_forward(msg.size_hint(), |w| {
                        Forward::write_relay(from, &msg, w)
                    });
                    self.send_frame(leader, Frame::from(frame));
                }
            }
            msg => {
                if role == Role::Leader {
                    // Straight from the member: answers go straight back to it.
                    self.ens().relays.remove(&from);
                }
                self.on_forward_from(from, msg)
            }
        }
    }

    /// A forward from `from` itself (or relayed for it by its observer master).
    fn on_forward_from(&mut self, from: u64, msg: Forward) {
        let myid = self.myid;
        let r = self.ens_ref();
        let (role, leader, upstream) = (r.role, r.leader, r.upstream);
        let from_upstream = Some(from) == leader || Some(from) == upstream;
        match msg {
            // Relays are unwrapped once, in `on_forward`.
            Forward::Relay { .. } => {}
            Forward::Request {
                route,
                session,
                auth,
                op,
            } => {
                if route.server != from {
                    tracing::warn!("member {from} forwarded a request of {}", route.server);
                    return;
                }
                if role != Role::Leader {
                    // The learner sent it to a leader that is gone; its client times out
                    // or reconnects, as with ZooKeeper.
                    return;
                }
                if session.0 != 0 {
                    self.expiry.touch(session, self.now.mono_ms);
                }
                self.queue.push_back(Queued {
                    route: Some(route),
                    session,
                    auth: Arc::from(auth),
                    op,
                });
            }
            Forward::Touch { sessions } => {
                for s in sessions {
                    self.touch(s);
                }
            }
            Forward::Attach { session } => {
                if role == Role::Leader && self.tree.session_exists(session) {
                    self.ens().session_owner.insert(session, from);
                }
            }
            Forward::SyncDone { route, path, zxid } => {
                if route.server == myid && from_upstream {
                    self.ens().syncs.push(PendingSync {
                        target: zxid,
                        round: 0,
                        route,
                        path,
                    });
                }
            }
            Forward::Refused {
                route,
                zxid,
                connect,
            } => {
                if route.server == myid && from_upstream {
                    self.refused_here(route, zxid, connect);
                }
            }
        }
    }

    /// Queues `msg` for `to`, behind a SNAP being built for it if any.
    fn send_peer(&mut self, to: u64, msg: &Message) {
        self.send_frame(to, msg.encode_frame());
    }

    /// Queues an encoded message for `to`, behind the SNAPs it waits for if any.
    fn send_frame(&mut self, to: u64, frame: Frame) {
        match self.ens().held.get_mut(&to) {
            Some(held) => held.push_back(Outgoing::Frame(frame)),
            None => self.effects.push(Effect::SendPeer { to, frame }),
        }
    }

    /// A server message to another member, in a FORWARD frame; on a leader, one for an
    /// observer whose forwards came through an observer master goes back through it.
    pub(crate) fn send_forward(&mut self, to: u64, msg: &Forward) {
        let r = self.ens_ref();
        let via = (r.role == Role::Leader)
            .then(|| r.relays.get(&to).copied())
            .flatten();
        // Written straight into the frame: a forwarded setData's value is copied once here.
        let frame = Message::encode_forward(msg.size_hint(), |w| match via {
            Some(_) => Forward::write_relay(to, msg, w),
            None => msg.write(w),
        });
        self.send_frame(via.unwrap_or(to), Frame::from(frame));
    }

    /// Sends what waited for `to`'s SNAPs, up to the first one not built yet.
    fn release_held(&mut self, to: u64) {
        let Some(mut held) = self.ens().held.remove(&to) else {
            return;
        };
        while let Some(out) = held.pop_front() {
            match out {
                Outgoing::Frame(frame)
                | Outgoing::Snap {
                    frame: Some(frame), ..
                } => self.effects.push(Effect::SendPeer { to, frame }),
                Outgoing::Snap { id, frame: None } => {
                    held.push_front(Outgoing::Snap { id, frame: None });
                    self.ens().held.insert(to, held);
                    return;
                }
            }
        }
    }

    /// SNAP for `to`: the committed tree (cloning it is O(1)) is serialised off the hot
    /// path; later frames for `to` wait for it (the replica sends them after the SNAP).
    fn send_snapshot(&mut self, to: u64, conn: u64, zxid: Zxid, keep: Zxid) {
        let tree = self.tree.clone();
        let r = self.ens();
        r.snaps_built += 1;
        let id = r.snaps_built;
        r.held
            .entry(to)
            .or_default()
            .push_back(Outgoing::Snap { id, frame: None });
        self.effects.push(Effect::BuildSnap {
            to,
            id,
            conn,
            zxid,
            keep,
            tree,
        });
    }

    fn set_role(&mut self, role: Role) {
        let now_ms = self.now.mono_ms;
        let r = self.ens();
        if r.role != role {
            if role == Role::Looking && !r.replica.why_looking().is_empty() {
                tracing::info!(
                    "mode: {} → {}: {}",
                    r.role.name(),
                    role.name(),
                    r.replica.why_looking()
                );
            } else {
                tracing::info!("mode: {} → {}", r.role.name(), role.name());
            }
            if role == Role::Looking {
                r.looking_since_ms = now_ms;
            }
            // Read-only sessions end with read-only mode: clients reconnect read-write
            // (ZooKeeper shuts its ReadOnlyZooKeeperServer down, closing them).
            if r.role == Role::ReadOnly {
                r.close_all = true;
            }
            r.role = role;
            if !r.standalone {
                self.effects.push(Effect::Role(role));
            }
        }
    }

    fn execute(&mut self, action: Action) -> Result<(), StopReason> {
        match action {
            Action::Send { to, msg } => self.send_peer(to, &msg),
            Action::Append { zxid, .. } if self.ens_ref().appended_ahead == Some(zxid) => {
                self.ens().appended_ahead = None;
            }
            Action::Append { zxid, data } => {
                let (_, time_ms, txn) =
                    decode_payload(&data).map_err(|source| StopReason::Payload { zxid, source })?;
                self.drop_empty_stale_segment()?;
                self.log.append(zxid, time_ms, txn)?;
                if self.ens().role == Role::Follower {
                    self.record_latency(Latency::Proposal, time_ms);
                }
            }
            Action::Truncate { after } => {
                tracing::info!("TRUNC: dropping the log after {after}");
                self.log.truncate_after(after)?;
            }
            Action::Sync { token, .. } => self.ens().sync_wanted = Some(token),
            Action::PersistEpoch { accepted, current } => self
                .effects
                .push(Effect::PersistEpochs { accepted, current }),
            Action::Commit { zxid, data } => self.commit(zxid, &data)?,
            Action::SendSnapshot {
                to,
                conn,
                zxid,
                keep,
            } => {
                self.catch_up();
                assert_eq!(
                    self.tree.last_zxid(),
                    zxid,
                    "SNAP asked at {zxid}, tree at {}",
                    self.tree.last_zxid()
                );
                tracing::info!("SNAP at {zxid} to {to}");
                self.send_snapshot(to, conn, zxid, keep);
            }
            Action::InstallSnapshot { zxid, data } => self.install_snapshot(zxid, &data)?,
            Action::BecameLooking => {
                let was = self.ens().role;
                let handing_over = self.ens().replica.handover_target().is_some();
                let now_ms = self.now.mono_ms;
                if was == Role::Leader && !handing_over {
                    // ZooKeeper's leader closes its learners' sockets when it steps down:
                    // they go Looking at once instead of after syncLimit of silence, and
                    // what they forwarded ends with their clients' connections. Not in a
                    // hand-over: the learners go Looking on its message, which a reset could
                    // drop from the links' queues.
                    self.effects.push(Effect::ResetPeers);
                }
                let r = self.ens();
                r.leader = None;
                r.upstream = None;
                r.relays.clear();
                r.session_owner.clear();
                r.working = None;
                r.proposed.clear();
                r.syncs.clear();
                r.remote_syncs.clear();
                r.round_confirmed = 0;
                r.appended_ahead = None;
                self.room.clear_waiting();
                let r = self.ens();
                if !matches!(was, Role::Looking | Role::ReadOnly) {
                    if handing_over {
                        r.close_deferred_until = Some(now_ms + r.sync_limit_ms);
                    } else {
                        r.close_all = true;
                    }
                }
                self.queue.clear();
                // Still without a leader: a read-only member stays read-only.
                if was != Role::ReadOnly {
                    self.set_role(Role::Looking);
                }
            }
            Action::BecameLeader { epoch } => {
                tracing::info!("leading epoch {epoch}");
                let myid = self.myid;
                let r = self.ens();
                r.leader = Some(myid);
                r.upstream = None;
                r.relays.clear();
                r.session_owner.clear();
                r.working = None;
                r.proposed.clear();
                r.takeover = true;
                r.round_confirmed = 0;
                self.close_deferred();
                self.set_role(Role::Leader);
            }
            Action::BecameFollower { leader, epoch } => {
                tracing::info!("following {leader} in epoch {epoch}");
                self.ens().leader = Some(leader);
                self.ens().upstream = Some(leader);
                self.close_deferred();
                self.set_role(Role::Follower);
            }
            Action::BecameObserver { leader, epoch } => {
                match self.observer_master() {
                    Some(master) => tracing::info!(
                        "observing {leader} in epoch {epoch} through observer master {master}"
                    ),
                    None => tracing::info!("observing {leader} in epoch {epoch}"),
                }
                let upstream = self.observer_master().unwrap_or(leader);
                self.ens().leader = Some(leader);
                self.ens().upstream = Some(upstream);
                self.close_deferred();
                self.set_role(Role::Observer);
            }
            Action::LeadershipConfirmed { round } => {
                let r = self.ens();
                r.round_confirmed = r.round_confirmed.max(round);
            }
        }
        Ok(())
    }

    /// The connections kept open through a hand-over election close now: this member serves
    /// again, so their clients find it or another member serving when they reconnect. What
    /// they asked meanwhile is dropped unanswered (ended with the connection, as on any
    /// leader change): requests this member forwarded to the old leader died with its
    /// leadership, and answering only the later ones would break a session's order.
    fn close_deferred(&mut self) {
        if self.ens().close_deferred_until.take().is_some() {
            self.ens().close_all = true;
            self.queue.clear();
        }
    }

    /// A segment is named for the zxid of its first record. A crash that lost every record
    /// of the newest segment (none was synced) leaves it empty, named for a zxid the log no
    /// longer has; a learner's next append may be any zxid (after a SNAP or a new epoch),
    /// and appending it there would make the name lie about the first record, which
    /// recovery refuses (found by the member simulator). Such a segment is dropped, so the
    /// append creates one named for its own zxid.
    pub(crate) fn drop_empty_stale_segment(&mut self) -> Result<(), StopReason> {
        let last = self.log.last_zxid();
        if self
            .log
            .segments()
            .last()
            .is_some_and(|s| s.first_zxid > last)
        {
            self.log.truncate_after(last)?;
        }
        Ok(())
    }

    /// Applies one committed transaction to the tree and queues its entry for the shards.
    fn commit(&mut self, zxid: Zxid, data: &Payload) -> Result<(), StopReason> {
        // Refusals made after the previous commit go out before this one.
        let refused = self.refusals_due();
        self.ens().batch.extend(refused);
        let (route, time_ms, txn_bytes) =
            decode_payload(data).map_err(|source| StopReason::Payload { zxid, source })?;
        if route.is_some_and(|r| r.barrier && r.server == self.myid) {
            self.cut_before(zxid);
        }
        let mut lags = false;
        let (txn, applied) = match self.take_proposed(zxid) {
            Some((Some(tree), txn, applied)) => {
                self.tree = tree;
                self.ens().unapplied.clear();
                (txn, applied)
            }
            Some((None, txn, applied)) => {
                lags = true;
                (txn, applied)
            }
            None => {
                assert!(
                    !self.ens_ref().standalone,
                    "a standalone member commits only its own proposals"
                );
                self.catch_up();
                // The txn's data are slices of the payload, not copies: the tree copies
                // them into its nodes.
                let txn = Txn::from_shared(&data.slice_ref(txn_bytes))
                    .map_err(|source| StopReason::Txn { zxid, source })?;
                let applied = self.tree.apply(zxid, time_ms, &txn);
                (txn, applied)
            }
        };
        self.since_snapshot += 1;
        if matches!(self.ens().role, Role::Follower | Role::Observer) {
            self.record_latency(Latency::CommitPropagation, time_ms);
        }
        let origin = route.filter(|r| r.server == self.myid).map(|r| r.origin);
        let leads = self.leads();
        let (outcome, closed_session) = match &txn {
            Txn::CreateSession {
                session,
                timeout_ms,
            } => {
                self.session_created(*session, *timeout_ms, origin);
                if let (Some(r), true) = (route, leads) {
                    self.ens().session_owner.insert(*session, r.server);
                }
                (
                    Outcome::SessionCreated {
                        session: *session,
                        timeout_ms: *timeout_ms,
                    },
                    None,
                )
            }
            // Applying a closeSession removes the session.
            Txn::CloseSession { session, .. } => {
                self.session_closed(*session);
                self.ens().session_owner.remove(session);
                (Outcome::Applied(applied), Some(*session))
            }
            Txn::Reconfig { data, .. } => {
                self.reconfigured(zxid, data);
                (Outcome::Applied(applied), None)
            }
            _ => (Outcome::Applied(applied), None),
        };
        self.ens().batch.push(Committed {
            zxid,
            origin,
            outcome,
            closed_session,
        });
        if lags {
            self.ens().unapplied.push((zxid, time_ms, txn));
        }
        if self.ens_ref().restore_at == Some(zxid) {
            self.install_restore(zxid);
        }
        Ok(())
    }

    /// A write whose client has a read waiting before it (`CoreRequest::barrier`) commits
    /// at `zxid`: what committed before it goes out now, in a batch whose view is the tree
    /// just before it, so that the shard answers the read from a view without the write (a
    /// read must not see a write its session sent after it). The write itself was proposed
    /// at once; only the publication is cut. The committed tree is brought to `zxid - 1`
    /// first (commits of this step without a kept tree version are applied lazily).
    fn cut_before(&mut self, zxid: Zxid) {
        self.catch_up();
        debug_assert!(self.tree.last_zxid() < zxid, "the tree is past {zxid}");
        let entries = std::mem::take(&mut self.ens().batch);
        if !entries.is_empty() {
            let view = self.tree.clone();
            self.publish(CommitBatch { view, entries });
        }
    }

    /// A standalone member's restore (the admin `restore`, ZooKeeperServer.restoreFromSnapshot)
    /// becomes an event of its log: once nothing is in flight (the queue waits meanwhile), a
    /// no-op txn is proposed, and when it commits (durable) the snapshot's tree replaces the
    /// member's, stamped at that txn's zxid and written durably as a snapshot before it is
    /// published (`install_restore`). Recovery loads the newest snapshot and replays only
    /// what follows it, so the restore survives a restart and the older records are never
    /// replayed over it; the zxids go on from there. ZooKeeper keeps the snapshot's own zxid
    /// and writes nothing (its restore is lost on a restart until the next snapshot).
    fn propose_restore(&mut self) -> Result<(), StopReason> {
        let r = self.ens_ref();
        let idle = r.restore_at.is_none()
            && r.proposed.is_empty()
            && !r.sync_in_flight
            && self.tree.last_zxid() == r.replica.last_zxid();
        let Some(zxid) = r.replica.next_zxid().filter(|_| idle) else {
            return Ok(());
        };
        let wall = self.now.wall_ms;
        let txn = Txn::Error(ErrorCode::OK);
        let marker = Queued {
            route: None,
            session: SessionId(0),
            auth: Arc::from(Vec::new()),
            op: CoreOp::Sync {
                path: "/".to_owned(),
            },
        };
        let mut buf = std::mem::take(&mut self.ens().payload_buf);
        let start = write_payload(&mut buf, None, wall, &txn);
        let appended = self.append_proposal(zxid, &marker, &txn, &buf[start..]);
        let data = Payload::copy_from_slice(&buf[..start]);
        self.ens().payload_buf = buf;
        if !appended? {
            return Ok(()); // no room on the disk: tried again next round
        }
        let mut working = self.tree.clone();
        let applied = working.apply(zxid, wall, &txn);
        let r = self.ens();
        r.appended_ahead = Some(zxid);
        r.restore_at = Some(zxid);
        r.proposed
            .push_back((zxid, Some(working.clone()), txn, applied));
        r.working = Some(working);
        self.replica_step(ZabInput::Propose { zxid, data })
    }

    /// A reconfig at `zxid` was applied: the driver learns the new configuration. The
    /// replica activated it itself when it emitted the commit.
    fn reconfigured(&mut self, zxid: Zxid, text: &[u8]) {
        let text = String::from_utf8_lossy(text).into_owned();
        tracing::info!("reconfig at {zxid} in effect: {}", text.replace('\n', " "));
        self.effects.push(Effect::Reconfigured {
            version: zxid,
            text,
        });
    }

    /// The tree was replaced by a snapshot: a configuration in it newer than the replica's
    /// takes effect (the reconfig that made it committed before the snapshot was taken).
    fn adopt_tree_config(&mut self) {
        let Some(text) = self
            .tree
            .get(zoocore_tree::CONFIG_PATH)
            .and_then(|n| n.data())
        else {
            return;
        };
        let Ok(cfg) = ClusterConfig::parse(&String::from_utf8_lossy(text)) else {
            return;
        };
        if cfg.version > self.ens_ref().replica.membership().0 && !cfg.members().voters.is_empty() {
            self.ens()
                .replica
                .adopt_membership(cfg.version, cfg.members());
            let version = cfg.version;
            self.effects.push(Effect::Reconfigured {
                version,
                text: cfg.text(),
            });
        }
    }

    /// The restore's marker at `zxid` has committed: the snapshot's tree takes its place.
    fn install_restore(&mut self, zxid: Zxid) {
        self.ens().restore_at = None;
        let Some(tree) = self.restore.take() else {
            return;
        };
        let tree = match restamp(tree, zxid, self.now.wall_ms) {
            Ok(tree) => tree,
            Err(why) => {
                tracing::warn!("restore failed: {why}");
                self.restored = Some(Err(RestoreError::Stamp { zxid, why }));
                return;
            }
        };
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
        self.ens().working = None;
        self.owners.clear();
        self.track_all_sessions();
        // Clients reconnect: their watches and sessions meant the old data.
        self.ens().close_all = true;
        self.ens().view_changed = true;
        self.restored = Some(Ok(zxid));
    }

    /// The leader's own result of proposal `zxid`, if it is the next one it proposed.
    /// Anything older left over was never committed by this leadership, so it is dropped.
    fn take_proposed(&mut self, zxid: Zxid) -> Option<(Option<Tree>, Txn, Applied)> {
        let r = self.ens();
        while r.proposed.front().is_some_and(|p| p.0 < zxid) {
            r.proposed.pop_front();
        }
        if r.proposed.front().is_some_and(|p| p.0 == zxid) {
            return r
                .proposed
                .pop_front()
                .map(|(_, tree, txn, a)| (tree, txn, a));
        }
        None
    }

    fn install_snapshot(&mut self, zxid: Zxid, data: &[u8]) -> Result<(), StopReason> {
        let snap = |source| StopReason::Snap { zxid, source };
        let loaded = zoocore_storage::decode_snapshot("SNAP", data).map_err(snap)?;
        assert_eq!(loaded.zxid, zxid, "SNAP at {zxid} holds {}", loaded.zxid);
        // Durable before `SnapshotInstalled`: a device write like the log's appends.
        zoocore_storage::write_snapshot(self.log.device(), &loaded.tree).map_err(snap)?;
        tracing::info!("installed the leader's snapshot at {zxid}");
        self.tree = loaded.tree;
        self.adopt_tree_config();
        self.zxid_durable = self.zxid_durable.max(zxid);
        let r = self.ens();
        r.working = None;
        r.proposed.clear();
        r.view_changed = true;
        if r.role != Role::Looking {
            // A learner that re-synchronises by SNAP while it serves (a gap in what its
            // leader sent) skips the entries the snapshot covers: their answers and watch
            // triggers never reach the shards. Its clients reconnect instead, as ZooKeeper's
            // do when a learner rejoins, rather than wait for ever (found by the simulator,
            // seed 65).
            r.close_all = true;
        }
        r.inputs.push_back(ZabInput::SnapshotInstalled { zxid });
        Ok(())
    }

    /// The end of a round: what is queued is proposed (leader) or forwarded (learner), the
    /// syncs that can be are answered, the fdatasync asked for is started, and what
    /// committed is published.
    pub(crate) fn ensemble_round(&mut self) -> Result<(), StopReason> {
        self.settle()?;
        let now_ms = self.now.mono_ms;
        if self
            .ens()
            .close_deferred_until
            .is_some_and(|at| now_ms >= at)
        {
            // The hand-over election outlived syncLimit: no reason to keep clients waiting.
            self.close_deferred();
        }
        let restoring = self.restore.is_some();
        match self.ens().role {
            Role::Leader if restoring => self.propose_restore()?,
            Role::Leader => self.propose_queued()?,
            Role::Follower | Role::Observer => self.forward_queued(),
            Role::Looking | Role::ReadOnly | Role::Standalone => {}
        }
        self.settle()?;
        self.answer_syncs();
        self.start_sync()?;
        self.ensemble_publish();
        Ok(())
    }

    fn propose_queued(&mut self) -> Result<(), StopReason> {
        if self.ens().replica.next_zxid().is_none() {
            return Ok(());
        }
        let r = self.ens_ref();
        if r.sync_in_flight && r.replica.learner_counts().0 == 0 {
            // No learner to send proposals to (a standalone server): what is proposed now
            // waits for the next fdatasync anyway, so it waits in the queue instead and the
            // round after the sync preps it as one batch, which costs less per txn than a
            // round per wake-up (the group commit of the standalone pipeline before it ran
            // a replica). With learners, proposing at once lets their disks work meanwhile.
            return Ok(());
        }
        if self.ens().working.is_none() {
            if self.tree.last_zxid() != self.ens().replica.last_zxid() {
                return Ok(()); // the establishing commits are not applied yet
            }
            if std::mem::take(&mut self.ens().takeover) {
                // ZooKeeper's leader gives every session a fresh timeout on taking over.
                self.track_all_sessions();
            }
            let tree = self.tree.clone();
            self.ens().working = Some(tree);
        }
        let n = self.queue.len().min(self.cfg.batch_txns_max);
        let wall = self.now.wall_ms;
        for q in self.queue.drain(..n).collect::<Vec<_>>() {
            if let CoreOp::Sync { path } = q.op {
                let Some(route) = q.route else { continue };
                let target = self.newest_tree().last_zxid();
                // next_zxid() was checked above, so this is an established leader; were it
                // not, the sync would wait for its client's reconnection, never be stale.
                let Ok(round) = self.ens().replica.read_index() else {
                    continue;
                };
                self.execute_ready()?;
                let sync = PendingSync {
                    target,
                    round,
                    route,
                    path,
                };
                if route.server == self.myid {
                    self.ens().syncs.push(sync);
                } else {
                    self.ens().remote_syncs.push(sync);
                }
                continue;
            }
            let zxid = self
                .ens()
                .replica
                .next_zxid()
                .expect("an established leader");
            let txn = if self.moved_session(&q) {
                Txn::Error(ErrorCode::SESSION_MOVED)
            } else if let CoreOp::Reconfig(args) = &q.op {
                let r = &self.ens_ref().replica;
                let synced = r.synced_followers();
                let ctx = ReconfigContext {
                    auth: &q.auth,
                    in_progress: r.reconfig_in_progress(),
                    synced: &synced,
                    zxid,
                };
                prep_reconfig(self.newest_tree(), args, &ctx)
            } else {
                let enforce_quota = self.cfg.enforce_quota;
                prep(
                    self.newest_tree(),
                    &q,
                    SessionId(self.next_session),
                    zxid,
                    wall,
                    enforce_quota,
                )
            };
            // A standalone server's replica has no learner to send the txn to, and its
            // commits all take the txn kept with the proposal: the payload carries the route
            // and time only (the txn is in the log), sparing a copy of every txn. A leader's
            // buffer of its own becomes the payload the history keeps and every follower's
            // frame shares: the txn is not copied again after the log's.
            let standalone = self.ens_ref().standalone;
            let mut buf = if standalone {
                std::mem::take(&mut self.ens().payload_buf)
            } else {
                Vec::with_capacity(payload_size_hint(&txn))
            };
            let start = write_payload(&mut buf, q.route.as_ref(), wall, &txn);
            let appended = self.append_proposal(zxid, &q, &txn, &buf[start..]);
            let data = if standalone {
                let data = Payload::copy_from_slice(&buf[..start]);
                self.ens().payload_buf = buf;
                data
            } else {
                Payload::from(buf)
            };
            if !appended? {
                continue;
            }
            if matches!(txn, Txn::CreateSession { .. }) {
                self.next_session += 1;
            }
            let r = self.ens();
            r.appended_ahead = Some(zxid);
            let working = r.working.as_mut().expect("built above");
            let applied = working.apply(zxid, wall, &txn);
            r.proposed.push_back((zxid, None, txn, applied));
            self.replica_step(ZabInput::Propose { zxid, data })?;
            if self.ens().working.is_none() {
                self.ens().proposed.clear();
                // The proposal made this leader step down (its log failed a check, or
                // it heard of a newer epoch): what is left waits for the next leader.
                break;
            }
        }
        // The round's last proposal keeps the working tree (an O(1) clone): its commit
        // brings the committed tree there at once.
        let r = self.ens();
        if let (Some(working), Some(last)) = (&r.working, r.proposed.back_mut()) {
            if last.1.is_none() && last.0 == working.last_zxid() {
                last.1 = Some(working.clone());
            }
        }
        Ok(())
    }

    /// ZooKeeper's `SessionTrackerImpl.checkSession(session, owner)`: whether a client's
    /// request comes from a member other than the one its session is attached to. A session
    /// with no known owner (after a leader change) is attached to the member of its first
    /// request.
    fn moved_session(&mut self, q: &Queued) -> bool {
        let (Some(route), CoreOp::Tree(_)) = (q.route, &q.op) else {
            return false;
        };
        if q.session.0 == 0 || !self.newest_tree().session_exists(q.session) {
            return false; // prep answers SESSIONEXPIRED
        }
        match self.ens().session_owner.get(&q.session) {
            Some(&owner) => owner != route.server,
            None => {
                self.ens().session_owner.insert(q.session, route.server);
                false
            }
        }
    }

    fn forward_queued(&mut self) {
        let Some(upstream) = self.ens().upstream else {
            return;
        };
        let n = self.queue.len().min(self.cfg.batch_txns_max);
        for q in self.queue.drain(..n).collect::<Vec<_>>() {
            let Some(route) = q.route else { continue };
            let msg = Forward::Request {
                route,
                session: q.session,
                auth: q.auth.to_vec(),
                op: q.op,
            };
            self.send_forward(upstream, &msg);
        }
    }

    /// Answers the refusals and syncs whose target the tree reached (and, for a sync, whose
    /// read round a quorum confirmed).
    fn answer_syncs(&mut self) {
        // Refusals first: a sync answers after everything its session asked before it.
        let refused = self.refusals_due();
        self.ens().batch.extend(refused);
        let at = self.tree.last_zxid();
        let r = self.ens();
        let confirmed = r.round_confirmed;
        let ready = |s: &PendingSync| s.target <= at && s.round <= confirmed;
        let (done, wait): (Vec<_>, Vec<_>) =
            std::mem::take(&mut r.syncs).into_iter().partition(ready);
        r.syncs = wait;
        for s in done {
            // The reply carries the zxid the sync waited for, not the newest one: a write
            // the session sent after the sync may have committed meanwhile with a zxid
            // between the two, and a client's answers must not go back in zxid (clients
            // keep the last one as lastZxidSeen for choosing a server to reconnect to).
            r.batch.push(Committed {
                zxid: at,
                origin: Some(s.route.origin),
                outcome: Outcome::Synced {
                    path: s.path,
                    zxid: s.target,
                },
                closed_session: None,
            });
        }
        let (done, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut r.remote_syncs)
            .into_iter()
            .partition(ready);
        r.remote_syncs = wait;
        for s in done {
            let msg = Forward::SyncDone {
                route: s.route,
                path: s.path,
                zxid: s.target,
            };
            self.send_forward(s.route.server, &msg);
        }
    }

    /// Starts the fdatasync the replica asked for, unless one is in flight (its completion
    /// lets the next one start: everything appended meanwhile is grouped into it).
    fn start_sync(&mut self) -> Result<(), StopReason> {
        let r = self.ens();
        if r.sync_in_flight {
            return Ok(());
        }
        let Some(token) = r.sync_wanted.take() else {
            return Ok(());
        };
        match self.begin_sync(Some(token))? {
            Some(()) => self.ens().sync_in_flight = true,
            None => {
                // Nothing unsynced (or forceSync off): everything appended is durable.
                let upto = self.log.last_zxid();
                self.zxid_durable = self.zxid_durable.max(self.log.synced_zxid());
                self.ens()
                    .inputs
                    .push_back(ZabInput::Persisted { upto, token });
                self.settle()?;
                self.answer_syncs();
            }
        }
        Ok(())
    }

    /// What the shards must hear after this round: the commits, and every connection closed
    /// when this member lost its leader.
    fn ensemble_publish(&mut self) {
        let r = self.ens();
        let changed = !r.batch.is_empty() || std::mem::take(&mut r.view_changed);
        // The next batch is likely about as large: one allocation instead of a regrowth
        // per doubling.
        let capacity = r.batch.len();
        let entries = std::mem::replace(&mut r.batch, Vec::with_capacity(capacity));
        let close_all = std::mem::take(&mut r.close_all);
        if changed {
            let view = self.tree.clone();
            self.publish(CommitBatch { view, entries });
        }
        if close_all {
            self.effects.push(Effect::CloseAll);
        }
    }
}

/// `tree` standing at `zxid`: an older tree has an empty txn applied at `zxid`; a tree at or
/// past it (a snapshot from another history) is rebuilt at `zxid` from its nodes and
/// sessions, so that this member's next zxids apply to it.
fn restamp(tree: Tree, zxid: Zxid, wall_ms: i64) -> Result<Tree, String> {
    if tree.last_zxid() < zxid {
        let mut tree = tree;
        tree.apply(zxid, wall_ms, &Txn::Error(ErrorCode::OK));
        return Ok(tree);
    }
    let mut b = zoocore_tree::TreeBuilder::new(zxid, tree.extended_types());
    for node in tree.snapshot_nodes() {
        b.add_node(&node).map_err(|e| e.to_string())?;
    }
    for (session, timeout_ms) in tree.sessions() {
        b.add_session(session, timeout_ms)
            .map_err(|e| e.to_string())?;
    }
    b.finish().map_err(|e| e.to_string())
}
