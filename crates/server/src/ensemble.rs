//! The ZAB driver: on the core executor of an ensemble member, it feeds the `zoocore_zab`
//! replica its inputs (peer messages, ticks, IO completions, client proposals on the leader)
//! and executes the actions it hands back, in order, with the real log, tree and sockets.
//!
//! The pipeline of each role, as same-core calls:
//! - leader: shard request → prep against the working tree (the committed tree plus every
//!   outstanding proposal, ZooKeeper's outstandingChanges) → `Propose` → Append + PROPOSALs
//!   → one fdatasync for everything appended meanwhile → `Persisted` → quorum of ACKs →
//!   `Commit` → apply to the committed tree → publish a `CommitBatch` to the shards, which
//!   answer the clients whose route names this server;
//! - follower / observer: shard request → `Forward::Request` to the leader (with the route
//!   back to the client) → the leader's PROPOSAL/INFORM → `Commit` → apply → publish.
//!
//! Reads never come here: shards serve them from the last published view. A `sync` does: the
//! leader notes its last zxid and answers once a read round started after the sync arrived is
//! confirmed by a quorum (the replica's `read_index`, etcd's ReadIndex) and its tree holds
//! that zxid, so a sync then a read is linearizable even on a leader that was deposed while
//! frozen or cut off. A learner forwards the sync and answers when its tree reaches the zxid
//! the leader sends back.
//!
//! Time is the replica's input: each turn of the loop first feeds the monotonic clock (a
//! `Tick` with the elapsed milliseconds, at most one per sub-tick), then the events that
//! woke it. After a freeze (SIGSTOP) the first thing the replica sees is the whole freeze,
//! so a leader whose followers went silent steps down before anything queued meanwhile (a
//! sync, a forwarded request) is looked at.
//!
//! The leader also runs the container/TTL reaper (ZooKeeper's ContainerManager, which runs on
//! the leader only) every `znode.container.checkIntervalMs`: its deletes go through the
//! normal write path, re-checked at prep.
//!
//! Durability ordering is the replica's (an ACK only after `Persisted`); this file keeps the
//! driver's side of the contract: `Persisted` only after the fdatasync returned, epochs
//! written and fsynced before `EpochPersisted`, a SNAP's snapshot file durable before
//! `SnapshotInstalled`. A failed log write or sync stops the process, as in standalone.
//!
//! The committed tree starts from the newest snapshot only (never the log replayed over it:
//! the log may hold proposals that never committed); the replica re-commits the log's
//! committed prefix through `Commit` actions.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use zoocore_proto::{ErrorCode, Id, Record, SessionId, Zxid};
use zoocore_storage::{FileDevice, FileSync, Log, SyncRequest};
use zoocore_tree::{Op, PrepContext, Tree, Txn};
use zoocore_zab::{Action, Config as ZabConfig, Durable, Epoch, Input, Message, Replica};

use crate::config::{Config, Ensemble};
use crate::durable::Syncer;
use crate::forward::{decode_payload, encode_payload, Forward, Route};
use crate::msg::{CommitBatch, Committed, CoreOp, FromCore, Outcome, ShardId, ToCore};
use crate::peer::Peers;
use crate::sessions::{first_session_id, ExpiryQueue};
use crate::stats::{set_mode, unix_ms, Mode, ServerStats};
use crate::{limits, topology};

/// Everything the driver loop reacts to, in arrival order.
pub enum Event {
    Shard(ToCore),
    Peer {
        from: u64,
        msg: Message,
    },
    Forward {
        from: u64,
        msg: Forward,
    },
    Tick,
    Synced {
        syncer: Box<Syncer>,
        req: SyncRequest<FileSync>,
        token: u64,
        result: std::io::Result<()>,
    },
    /// A link with `peer` closed or was reset, in either direction.
    LinkDown {
        peer: u64,
    },
    /// The next log segment, created ahead on the blocking pool.
    Spare(std::io::Result<zoocore_storage::SpareSegment<zoocore_storage::RealFile>>),
    /// autopurge.purgeInterval elapsed.
    Purge,
    /// The SNAP frame `id` for `to`, serialised on the blocking pool.
    SnapBuilt {
        to: u64,
        id: u64,
        frame: Vec<u8>,
    },
}

/// A frame for a peer that must wait for a SNAP being serialised before it.
enum Outgoing {
    Frame(Vec<u8>),
    Snap { id: u64, frame: Option<Vec<u8>> },
}

/// A request waiting on this member: for prep (leader) or to be forwarded (learner).
struct Queued {
    route: Option<Route>,
    session: SessionId,
    auth: Arc<[Id]>,
    op: CoreOp,
}

/// A `sync` waiting for this member's tree to reach `target` and, on the leader, for read
/// round `round` to be confirmed (0 on a learner: its leader confirmed it).
struct PendingSync {
    target: Zxid,
    round: u64,
    route: Route,
    path: String,
}

/// The driver's state; all methods are synchronous, the async loop is in [`core_main`].
struct Driver {
    myid: u64,
    cfg: Arc<Config>,
    stats: Arc<ServerStats>,
    replica: Replica,
    /// The committed tree: what the shards see.
    tree: Tree,
    /// Leader only: the committed tree plus every outstanding proposal.
    working: Option<Tree>,
    /// Leader only: re-arm every session's expiry when the working tree is first built.
    takeover: bool,
    log: Log<FileDevice>,
    dev: FileDevice,
    mode: Mode,
    leader: Option<u64>,
    queue: VecDeque<Queued>,
    expiry: ExpiryQueue,
    touched: HashSet<SessionId>,
    /// Syncs of this member's clients, answered once the tree reaches their target.
    syncs: Vec<PendingSync>,
    /// Leader only: syncs forwarded by learners, answered with `SyncDone` once committed.
    remote_syncs: Vec<PendingSync>,
    /// Leader only: the last read round a quorum confirmed in this leadership.
    round_confirmed: u64,
    /// When the replica last had the time (ms since `started`).
    ticked_ms: Option<u64>,
    /// Leader only: when the container/TTL reaper runs next (ms since `started`).
    reap_at_ms: u64,
    next_session: i64,
    owners: HashMap<SessionId, (ShardId, u64)>,
    /// Leader only: the member each session is attached to (ZooKeeper's session owner);
    /// a write of a session from another member is refused with SESSIONMOVED. Unknown after
    /// a leader change until the session's first request or reconnection.
    session_owner: HashMap<SessionId, u64>,
    /// Committed entries not yet published, and whether the view changed without entries.
    batch: Vec<Committed>,
    view_changed: bool,
    control: Vec<(ShardId, FromCore)>,
    close_all: bool,
    inputs: VecDeque<Input>,
    sync_wanted: Option<u64>,
    syncer: Option<Box<Syncer>>,
    peers: Peers,
    /// Frames for peers with a SNAP being serialised: they leave in order once it is built.
    held: HashMap<u64, VecDeque<Outgoing>>,
    snaps_built: u64,
    events: Rc<LocalSender<Event>>,
    started: Instant,
    since_snapshot: u64,
}

fn fatal(what: &str, e: &dyn std::fmt::Display) -> ! {
    tracing::error!("stopping: {what}: {e}");
    std::process::exit(3)
}

impl Driver {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Gives the replica the time, at most once per sub-tick: called first in every turn of
    /// the loop, so that after a stall the replica sees it before any event that waited.
    fn feed_time(&mut self) {
        let now_ms = self.now_ms();
        // Half a sub-tick: the timer's own tick, a little early after an event's, still counts.
        let spacing = sub_tick_ms(self.cfg.tick_time_ms) / 2;
        if self
            .ticked_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < spacing)
        {
            return;
        }
        self.ticked_ms = Some(now_ms);
        self.step(Input::Tick { now_ms });
    }

    fn set_mode(&mut self, mode: Mode) {
        if self.mode != mode {
            tracing::info!("mode: {} → {}", self.mode.name(), mode.name());
        }
        self.mode = mode;
        set_mode(mode);
    }

    // ---- events ----

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Shard(msg) => self.on_shard(msg),
            Event::Peer { from, msg } => {
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
                self.step(Input::Receive { from, msg })
            }
            Event::Forward { from, msg } => self.on_forward(from, msg),
            Event::Tick => self.on_tick(),
            Event::Synced {
                syncer,
                req,
                token,
                result,
            } => {
                syncer.stats.publish(&self.stats.core);
                self.syncer = Some(syncer);
                match self.log.sync_end(req, result) {
                    Ok(upto) => self.inputs.push_back(Input::Persisted { upto, token }),
                    Err(e) => fatal("the transaction log failed", &e),
                }
            }
            Event::LinkDown { peer } => self.step(Input::PeerLost { peer }),
            Event::Spare(result) => {
                if let Err(e) = self.log.adopt_next_segment(result) {
                    tracing::warn!("could not prepare the next log segment ahead: {e}");
                }
            }
            Event::SnapBuilt { to, id, frame } => {
                if let Some(held) = self.held.get_mut(&to) {
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
            }
            Event::Purge => match zoocore_storage::purge(&mut self.log, self.cfg.snap_retain_count)
            {
                Ok(removed) => tracing::info!("autopurge removed {removed:?}"),
                Err(e) => tracing::warn!("autopurge failed: {e}"),
            },
        }
    }

    fn on_shard(&mut self, msg: ToCore) {
        let now = self.now_ms();
        match msg {
            ToCore::Request(req) => {
                if req.session.0 != 0 {
                    self.touch(req.session, now);
                }
                let myid = self.myid;
                self.queue.push_back(Queued {
                    route: req.origin.map(|origin| Route {
                        server: myid,
                        origin,
                    }),
                    session: req.session,
                    auth: req.auth,
                    op: req.op,
                });
            }
            ToCore::Touch(sessions) => {
                for s in sessions {
                    self.touch(s, now);
                }
            }
            ToCore::Attach {
                session,
                shard,
                conn,
                valid,
            } => {
                self.touch(session, now);
                if valid {
                    self.attach(session);
                }
                if let Some(old) = self.owners.insert(session, (shard, conn)) {
                    if old != (shard, conn) {
                        self.control.push((
                            old.0,
                            FromCore::CloseConnection {
                                conn: old.1,
                                session,
                            },
                        ));
                    }
                }
            }
        }
    }

    /// A client reconnected to this member with `session`: tell the leader this member
    /// owns it now (on a learner, before any request of the session it forwards later).
    fn attach(&mut self, session: SessionId) {
        match self.mode {
            Mode::Leader => {
                self.session_owner.insert(session, self.myid);
            }
            Mode::Follower | Mode::Observer => {
                if let Some(leader) = self.leader {
                    self.send_forward(leader, &Forward::Attach { session });
                }
            }
            Mode::Looking | Mode::Standalone => {}
        }
    }

    fn touch(&mut self, session: SessionId, now: u64) {
        if self.mode == Mode::Leader {
            self.expiry.touch(session, now);
        } else {
            self.touched.insert(session);
        }
    }

    fn on_forward(&mut self, from: u64, msg: Forward) {
        match msg {
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
                if self.mode != Mode::Leader {
                    // The learner sent it to a leader that is gone; its client times out
                    // or reconnects, as with ZooKeeper.
                    return;
                }
                if session.0 != 0 {
                    self.expiry.touch(session, self.now_ms());
                }
                self.queue.push_back(Queued {
                    route: Some(route),
                    session,
                    auth: Arc::from(auth),
                    op,
                });
            }
            Forward::Touch { sessions } => {
                let now = self.now_ms();
                for s in sessions {
                    self.touch(s, now);
                }
            }
            Forward::Attach { session } => {
                if self.mode == Mode::Leader && self.tree.session_exists(session) {
                    self.session_owner.insert(session, from);
                }
            }
            Forward::SyncDone { route, path, zxid } => {
                if route.server == self.myid && Some(from) == self.leader {
                    self.syncs.push(PendingSync {
                        target: zxid,
                        round: 0,
                        route,
                        path,
                    });
                }
            }
        }
    }

    fn on_tick(&mut self) {
        self.feed_time();
        let now = self.now_ms();
        match self.mode {
            Mode::Leader => {
                if now >= self.reap_at_ms {
                    self.reap_at_ms = now + u64::from(self.cfg.container_check_interval_ms);
                    self.reap();
                }
                for session in self.expiry.expire(now) {
                    tracing::info!("session {session} expired");
                    self.queue.push_back(Queued {
                        route: None,
                        session,
                        auth: Arc::from([]),
                        op: CoreOp::Tree(Op::CloseSession { session }),
                    });
                }
            }
            Mode::Follower | Mode::Observer => {
                if let Some(leader) = self.leader {
                    if !self.touched.is_empty() {
                        let sessions: Vec<SessionId> = self.touched.drain().collect();
                        self.send_forward(leader, &Forward::Touch { sessions });
                    }
                }
            }
            Mode::Looking | Mode::Standalone => {}
        }
    }

    /// ZooKeeper's ContainerManager on the leader: empty containers that had a child and
    /// expired TTL nodes, from the working tree (so a delete already proposed is not asked
    /// twice), deleted through the write path; prep checks each again.
    fn reap(&mut self) {
        let tree = self.working.as_ref().unwrap_or(&self.tree);
        let paths = tree.expired_nodes(unix_ms() as i64);
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

    // ---- the replica ----

    fn step(&mut self, input: Input) {
        if let Err(e) = self.replica.step(input) {
            // Only Propose can be refused, and the driver proposes only next_zxid().
            panic!("the replica refused an input: {e}");
        }
        self.execute_ready();
    }

    fn execute_ready(&mut self) {
        let actions = self.replica.ready();
        for action in actions {
            self.execute(action);
        }
    }

    /// Feeds completions queued by actions until none is left.
    fn settle(&mut self) {
        while let Some(input) = self.inputs.pop_front() {
            self.step(input);
        }
    }

    /// Queues `msg` for `to`. A full queue resets that link: a learner whose link to its
    /// leader is reset goes Looking at once (its clients' outstanding requests end with
    /// their connections), as it does when the leader closes the link.
    fn send(&mut self, to: u64, msg: &Message) {
        let frame = msg.encode();
        match self.held.get_mut(&to) {
            Some(held) => held.push_back(Outgoing::Frame(frame)),
            None => self.send_frame(to, frame),
        }
    }

    /// A server message to another member, in a FORWARD frame.
    fn send_forward(&mut self, to: u64, msg: &Forward) {
        let data = Arc::from(msg.encode());
        self.send(to, &Message::Forward { data });
    }

    fn send_frame(&mut self, to: u64, frame: Vec<u8>) {
        if !self.peers.send(to, frame) {
            self.inputs.push_back(Input::PeerLost { peer: to });
        }
    }

    /// Sends what waited for `to`'s SNAPs, up to the first one not built yet.
    fn release_held(&mut self, to: u64) {
        let Some(mut held) = self.held.remove(&to) else {
            return;
        };
        while let Some(out) = held.pop_front() {
            match out {
                Outgoing::Frame(frame)
                | Outgoing::Snap {
                    frame: Some(frame), ..
                } => self.send_frame(to, frame),
                Outgoing::Snap { id, frame: None } => {
                    held.push_front(Outgoing::Snap { id, frame: None });
                    self.held.insert(to, held);
                    return;
                }
            }
        }
    }

    /// SNAP for `to`: the committed tree (a persistent structure: cloning it is O(1)) is
    /// serialised on the blocking pool, so the core keeps serving while a large tree is
    /// encoded; later frames for `to` wait for it (the replica sends them after the SNAP).
    fn send_snapshot(&mut self, to: u64, conn: u64, zxid: Zxid, keep: Zxid) {
        self.snaps_built += 1;
        let id = self.snaps_built;
        self.held
            .entry(to)
            .or_default()
            .push_back(Outgoing::Snap { id, frame: None });
        let tree = self.tree.clone();
        let events = self.events.clone();
        glommio::spawn_local(async move {
            let frame = glommio::executor()
                .spawn_blocking(move || {
                    let data = snapshot_bytes(&tree);
                    Message::Snap {
                        conn,
                        zxid,
                        keep,
                        data,
                    }
                    .encode()
                })
                .await;
            let _ = events.send(Event::SnapBuilt { to, id, frame }).await;
        })
        .detach();
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Send { to, msg } => self.send(to, &msg),
            Action::Append { zxid, data } => {
                let (_, time_ms, txn) = match decode_payload(&data) {
                    Ok(p) => p,
                    Err(e) => fatal(&format!("undecodable payload at {zxid}"), &e),
                };
                if let Err(e) = self.log.append(zxid, time_ms, txn) {
                    fatal("the transaction log failed", &e);
                }
            }
            Action::Truncate { after } => {
                tracing::info!("TRUNC: dropping the log after {after}");
                if let Err(e) = self.log.truncate_after(after) {
                    fatal("the transaction log failed", &e);
                }
            }
            Action::Sync { token, .. } => self.sync_wanted = Some(token),
            Action::PersistEpoch { accepted, current } => {
                if let Err(e) = write_epochs(&self.cfg.data_dir, accepted, current) {
                    fatal("cannot write the epoch files", &e);
                }
                self.inputs
                    .push_back(Input::EpochPersisted { accepted, current });
            }
            Action::Commit { zxid, data } => self.commit(zxid, &data),
            Action::SendSnapshot {
                to,
                conn,
                zxid,
                keep,
            } => {
                assert_eq!(
                    self.tree.last_zxid(),
                    zxid,
                    "SNAP asked at {zxid}, tree at {}",
                    self.tree.last_zxid()
                );
                tracing::info!("SNAP at {zxid} to {to}");
                self.send_snapshot(to, conn, zxid, keep);
            }
            Action::InstallSnapshot { zxid, data } => self.install_snapshot(zxid, &data),
            Action::BecameLooking => {
                if self.mode == Mode::Leader {
                    // ZooKeeper's leader closes its learners' sockets when it steps down:
                    // they go Looking at once instead of after syncLimit of silence, and
                    // what they forwarded ends with their clients' connections.
                    self.peers.reset_all();
                }
                self.leader = None;
                self.session_owner.clear();
                self.working = None;
                self.queue.clear();
                self.syncs.clear();
                self.remote_syncs.clear();
                self.round_confirmed = 0;
                if self.mode != Mode::Looking {
                    self.close_all = true;
                }
                self.set_mode(Mode::Looking);
            }
            Action::BecameLeader { epoch } => {
                tracing::info!("leading epoch {epoch}");
                self.leader = Some(self.myid);
                self.session_owner.clear();
                self.working = None;
                self.takeover = true;
                self.round_confirmed = 0;
                self.set_mode(Mode::Leader);
            }
            Action::BecameFollower { leader, epoch } => {
                tracing::info!("following {leader} in epoch {epoch}");
                self.leader = Some(leader);
                self.set_mode(Mode::Follower);
            }
            Action::BecameObserver { leader, epoch } => {
                tracing::info!("observing {leader} in epoch {epoch}");
                self.leader = Some(leader);
                self.set_mode(Mode::Observer);
            }
            Action::LeadershipConfirmed { round } => {
                self.round_confirmed = self.round_confirmed.max(round);
            }
        }
    }

    /// Applies one committed transaction to the tree and queues its entry for the shards.
    fn commit(&mut self, zxid: Zxid, data: &[u8]) {
        let (route, time_ms, txn_bytes) = match decode_payload(data) {
            Ok(p) => p,
            Err(e) => fatal(&format!("undecodable payload at {zxid}"), &e),
        };
        let txn = match Txn::from_bytes(txn_bytes) {
            Ok(t) => t,
            Err(e) => fatal(&format!("undecodable txn at {zxid}"), &e),
        };
        let applied = self.tree.apply(zxid, time_ms, &txn);
        self.since_snapshot += 1;
        let now = self.now_ms();
        let origin = route.filter(|r| r.server == self.myid).map(|r| r.origin);
        let (outcome, closed_session) = match &txn {
            Txn::CreateSession {
                session,
                timeout_ms,
            } => {
                self.expiry.add(*session, (*timeout_ms).max(0) as u32, now);
                if let (Some(r), Mode::Leader) = (route, self.mode) {
                    self.session_owner.insert(*session, r.server);
                }
                if let Some(o) = origin {
                    self.owners.insert(*session, (o.shard, o.conn));
                }
                (
                    Outcome::SessionCreated {
                        session: *session,
                        timeout_ms: *timeout_ms,
                    },
                    None,
                )
            }
            Txn::CloseSession { session, .. } if !self.tree.session_exists(*session) => {
                self.expiry.remove(*session);
                self.owners.remove(session);
                self.session_owner.remove(session);
                (Outcome::Applied(applied), Some(*session))
            }
            _ => (Outcome::Applied(applied), None),
        };
        self.batch.push(Committed {
            zxid,
            origin,
            outcome,
            closed_session,
        });
    }

    fn install_snapshot(&mut self, zxid: Zxid, data: &[u8]) {
        let loaded = match zoocore_storage::decode_snapshot("SNAP", data) {
            Ok(l) => l,
            Err(e) => fatal("the leader's SNAP does not decode", &e),
        };
        assert_eq!(loaded.zxid, zxid, "SNAP at {zxid} holds {}", loaded.zxid);
        if let Err(e) = zoocore_storage::write_snapshot(&self.dev, &loaded.tree) {
            fatal("cannot write the leader's snapshot", &e);
        }
        tracing::info!("installed the leader's snapshot at {zxid}");
        self.tree = loaded.tree;
        self.working = None;
        self.view_changed = true;
        self.inputs.push_back(Input::SnapshotInstalled { zxid });
    }

    // ---- requests ----

    /// Leader: prep, apply to the working tree and propose every queued request. Learner:
    /// forward them to the leader.
    fn drain_queue(&mut self) {
        match self.mode {
            Mode::Leader => self.propose_queued(),
            Mode::Follower | Mode::Observer => self.forward_queued(),
            Mode::Looking | Mode::Standalone => {}
        }
    }

    fn propose_queued(&mut self) {
        if self.replica.next_zxid().is_none() {
            return;
        }
        if self.working.is_none() {
            if self.tree.last_zxid() != self.replica.last_zxid() {
                return; // the establishing commits are not applied yet
            }
            if self.takeover {
                // ZooKeeper's leader gives every session a fresh timeout on taking over.
                self.takeover = false;
                let now = self.now_ms();
                self.expiry = ExpiryQueue::new(u64::from(self.cfg.tick_time_ms));
                let sessions: Vec<(SessionId, i32)> = self.tree.sessions().collect();
                for (s, timeout) in sessions {
                    self.expiry.add(s, timeout.max(0) as u32, now);
                }
            }
            self.working = Some(self.tree.clone());
        }
        let n = self.queue.len().min(limits::BATCH_TXNS_MAX);
        let wall = unix_ms() as i64;
        for q in self.queue.drain(..n).collect::<Vec<_>>() {
            let working = self.working.as_mut().expect("built above");
            if let CoreOp::Sync { path } = q.op {
                let Some(route) = q.route else { continue };
                let target = working.last_zxid();
                // next_zxid() was checked above, so this is an established leader; were it
                // not, the sync would wait for its client's reconnection, never be stale.
                let Ok(round) = self.replica.read_index() else {
                    continue;
                };
                self.execute_ready();
                let sync = PendingSync {
                    target,
                    round,
                    route,
                    path,
                };
                if route.server == self.myid {
                    self.syncs.push(sync);
                } else {
                    self.remote_syncs.push(sync);
                }
                continue;
            }
            let zxid = self.replica.next_zxid().expect("an established leader");
            let moved = moved_session(&mut self.session_owner, working, &q);
            let txn = if moved {
                Txn::Error(ErrorCode::SESSION_MOVED)
            } else {
                prep(working, &mut self.next_session, &q, zxid, wall)
            };
            let bytes = txn.to_bytes();
            working.apply(zxid, wall, &txn);
            let data = encode_payload(q.route.as_ref(), wall, &bytes);
            self.step(Input::Propose { zxid, data });
        }
    }

    fn forward_queued(&mut self) {
        let Some(leader) = self.leader else { return };
        let n = self.queue.len().min(limits::BATCH_TXNS_MAX);
        for q in self.queue.drain(..n).collect::<Vec<_>>() {
            let Some(route) = q.route else { continue };
            let msg = Forward::Request {
                route,
                session: q.session,
                auth: q.auth.to_vec(),
                op: q.op,
            };
            self.send_forward(leader, &msg);
        }
    }

    /// Answers the syncs whose target the tree reached and whose read round a quorum
    /// confirmed.
    fn answer_syncs(&mut self) {
        let at = self.tree.last_zxid();
        let confirmed = self.round_confirmed;
        let ready = |s: &PendingSync| s.target <= at && s.round <= confirmed;
        let (done, wait): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.syncs).into_iter().partition(ready);
        self.syncs = wait;
        for s in done {
            self.batch.push(Committed {
                zxid: at,
                origin: Some(s.route.origin),
                outcome: Outcome::Synced { path: s.path },
                closed_session: None,
            });
        }
        let (done, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.remote_syncs)
            .into_iter()
            .partition(ready);
        self.remote_syncs = wait;
        for s in done {
            let msg = Forward::SyncDone {
                route: s.route,
                path: s.path,
                zxid: s.target,
            };
            self.send_forward(s.route.server, &msg);
        }
    }

    /// What the shards must hear after this round: a commit batch, control messages.
    fn take_outputs(&mut self) -> (Option<Arc<CommitBatch>>, Vec<(ShardId, FromCore)>, bool) {
        let batch = if !self.batch.is_empty() || self.view_changed {
            self.view_changed = false;
            Some(Arc::new(CommitBatch {
                view: self.tree.clone(),
                entries: std::mem::take(&mut self.batch),
            }))
        } else {
            None
        };
        let close_all = std::mem::replace(&mut self.close_all, false);
        (batch, std::mem::take(&mut self.control), close_all)
    }

    fn publish_counters(&self) {
        let c = &self.stats.core;
        c.last_zxid.store(self.tree.last_zxid().0, Relaxed);
        c.node_count
            .store(self.tree.node_count() as u64 + 1, Relaxed);
        c.ephemerals.store(self.tree.ephemeral_count(), Relaxed);
        c.data_size
            .store(self.tree.approximate_data_size(), Relaxed);
        c.sessions
            .store(self.tree.sessions().count() as u64, Relaxed);
        c.queued.store(self.queue.len() as u64, Relaxed);
        let (learners, synced) = self.replica.learner_counts();
        c.learners.store(learners as u64, Relaxed);
        c.synced_followers.store(synced as u64, Relaxed);
        let log = self.log.stats();
        c.log_records.store(log.records, Relaxed);
        c.log_syncs.store(log.syncs, Relaxed);
    }
}

/// ZooKeeper's `SessionTrackerImpl.checkSession(session, owner)`: whether a client's request
/// comes from a member other than the one its session is attached to. A session with no
/// known owner (after a leader change) is attached to the member of its first request.
fn moved_session(owners: &mut HashMap<SessionId, u64>, tree: &Tree, q: &Queued) -> bool {
    let (Some(route), CoreOp::Tree(_)) = (q.route, &q.op) else {
        return false;
    };
    if q.session.0 == 0 || !tree.session_exists(q.session) {
        return false; // prep answers SESSIONEXPIRED
    }
    match owners.get(&q.session) {
        Some(&owner) => owner != route.server,
        None => {
            owners.insert(q.session, route.server);
            false
        }
    }
}

/// One request through ZooKeeper's prep on `tree` (the leader's working tree).
fn prep(tree: &Tree, next_session: &mut i64, q: &Queued, zxid: Zxid, wall: i64) -> Txn {
    match &q.op {
        CoreOp::CreateSession { timeout_ms } => {
            let session = SessionId(*next_session);
            *next_session += 1;
            tree.prepare(
                &Op::CreateSession {
                    session,
                    timeout_ms: *timeout_ms,
                },
                &PrepContext {
                    session,
                    auth: &q.auth,
                    zxid,
                    time_ms: wall,
                },
            )
        }
        CoreOp::Tree(op) => {
            if q.route.is_some() && !tree.session_exists(q.session) {
                Txn::Error(ErrorCode::SESSION_EXPIRED)
            } else {
                tree.prepare(
                    op,
                    &PrepContext {
                        session: q.session,
                        auth: &q.auth,
                        zxid,
                        time_ms: wall,
                    },
                )
            }
        }
        CoreOp::Sync { .. } => unreachable!("syncs are not prepped"),
    }
}

/// The bytes of a snapshot of `tree` in the snapshot file format (docs/SNAPSHOT.md), for SNAP.
fn snapshot_bytes(tree: &Tree) -> Arc<[u8]> {
    let mem = zoocore_storage::MemDevice::new();
    let info = match zoocore_storage::write_snapshot(&mem, tree) {
        Ok(i) => i,
        Err(e) => fatal("cannot serialise a snapshot for SNAP", &e),
    };
    match zoocore_storage::Device::read(&mem, &info.name) {
        Ok(b) => Arc::from(b),
        Err(e) => fatal("cannot serialise a snapshot for SNAP", &e),
    }
}

const ACCEPTED_EPOCH: &str = "acceptedEpoch";
const CURRENT_EPOCH: &str = "currentEpoch";

/// ZooKeeper's epoch files: a decimal number each, replaced atomically and durably.
fn write_epochs(dir: &Path, accepted: Epoch, current: Epoch) -> std::io::Result<()> {
    for (name, epoch) in [(ACCEPTED_EPOCH, accepted), (CURRENT_EPOCH, current)] {
        let tmp = dir.join(format!("{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{}\n", epoch.0).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    std::fs::File::open(dir)?.sync_all()
}

fn read_epoch(dir: &Path, name: &str, default: Epoch) -> Result<Epoch, String> {
    let path: PathBuf = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .map(Epoch)
            .map_err(|e| format!("{}: {:?}: {e}", path.display(), text.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The replica's start state from the data directory: the snapshot's tree (committed state
/// only), the log after it, the epochs.
fn durable_state(
    cfg: &Config,
    recovered: &zoocore_storage::Recovered<FileDevice>,
) -> (Tree, Durable) {
    let dev = recovered.log.device().clone();
    let tree = match recovered.snapshot_zxid {
        Some(z) => {
            let name = zoocore_storage::snapshot_name(z);
            let bytes = zoocore_storage::Device::read(&dev, &name)
                .unwrap_or_else(|e| fatal(&format!("cannot read {name}"), &e));
            zoocore_storage::decode_snapshot(&name, &bytes)
                .unwrap_or_else(|e| fatal(&format!("cannot decode {name}"), &e))
                .tree
        }
        None => Tree::with_extended_types(cfg.extended_types_enabled),
    };
    let base = tree.last_zxid();
    let log: Vec<(Zxid, zoocore_zab::Payload)> = recovered
        .log
        .entries_after(base)
        .unwrap_or_else(|e| fatal("cannot read the log", &e))
        .into_iter()
        .map(|e| (e.zxid, encode_payload(None, e.time_ms, &e.txn)))
        .collect();
    let last_epoch = Epoch(recovered.last_zxid.epoch());
    let accepted = read_epoch(&cfg.data_dir, ACCEPTED_EPOCH, last_epoch)
        .unwrap_or_else(|e| fatal("bad epoch file", &e));
    let current = read_epoch(&cfg.data_dir, CURRENT_EPOCH, last_epoch)
        .unwrap_or_else(|e| fatal("bad epoch file", &e));
    tracing::info!(
        "ensemble state: tree at {base}, {} log entries after it, epochs accepted {accepted} current {current}",
        log.len()
    );
    (
        tree,
        Durable {
            accepted_epoch: accepted,
            current_epoch: current.min(accepted),
            base,
            log,
        },
    )
}

/// How often the replica gets the time: ZooKeeper's follower notices a silent leader
/// `syncLimit × tickTime` after its last read (a socket timeout), so a tick of `tickTime`
/// would add up to a tick to failure detection (2 s with the default tickTime). The replica
/// ticks every 50 ms (or every tick when it is shorter) instead, and its limits are in
/// milliseconds, so a silent peer is noticed within 50 ms of the limit. The leader pings
/// every sub-tick, which costs a few small frames a second per learner.
fn sub_tick_ms(tick_time_ms: u32) -> u64 {
    SUB_TICK_MS.min(u64::from(tick_time_ms)).max(1)
}

const SUB_TICK_MS: u64 = 50;

fn zab_config(ens: &Ensemble, history_retain: usize, tick_time_ms: u32) -> ZabConfig {
    let tick = u64::from(tick_time_ms);
    ZabConfig {
        myid: ens.myid,
        voters: ens.voters(),
        observers: ens.observers(),
        init_limit_ms: ens.init_limit_ticks * tick,
        sync_limit_ms: ens.sync_limit_ticks * tick,
        // Decide as soon as a quorum agrees: a worse choice is corrected in discovery
        // (a follower ahead of its leader makes it step down), and failover stays short.
        finalize_wait_ms: 0,
        history_retain,
    }
}

/// The ZAB executor of an ensemble member.
pub async fn core_main(
    cfg: Arc<Config>,
    stats: Arc<ServerStats>,
    recovered: zoocore_storage::Recovered<FileDevice>,
    rxs: Vec<SharedReceiver<ToCore>>,
    txs: Vec<SharedSender<FromCore>>,
) {
    let ens = cfg.ensemble.clone().expect("ensemble config");
    set_mode(Mode::Looking);
    let (tree, durable) = durable_state(&cfg, &recovered);
    let seed = unix_ms() ^ ens.myid.rotate_left(32);
    let replica = Replica::new(
        zab_config(&ens, cfg.commit_log_count, cfg.tick_time_ms),
        durable,
        seed,
    );

    let (events_tx, events_rx) = local_channel::new_bounded::<Event>(limits::CORE_EVENTS_MAX);
    let events_tx = Rc::new(events_tx);
    let members: BTreeMap<u64, std::net::SocketAddr> = ens
        .members
        .iter()
        .map(|(id, m)| (*id, m.quorum_addr))
        .collect();
    let listen = members[&ens.myid];
    let peers = match crate::peer::start(ens.myid, listen, &members, events_tx.clone()) {
        Ok(p) => p,
        Err(e) => fatal(&format!("cannot listen on the quorum port {listen}"), &e),
    };

    let (senders, receivers) = topology::connect_core_channels(rxs, txs).await;
    for rx in receivers {
        let tx = events_tx.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                if tx.send(Event::Shard(msg)).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
    // Autopurge, as standalone (topology.rs) and ZooKeeper's PurgeTxnLog timer.
    if cfg.purge_interval_hours > 0 {
        let tx = events_tx.clone();
        let every = Duration::from_secs(cfg.purge_interval_hours * 3600);
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(every).await;
                if tx.send(Event::Purge).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }
    {
        let tx = events_tx.clone();
        let tick = Duration::from_millis(sub_tick_ms(cfg.tick_time_ms));
        glommio::spawn_local(async move {
            // Ticks at fixed instants: sleeping a tick after each one would add the timer's
            // lateness 200 times over the sync limit. After a stall (a frozen process), the
            // missed ticks are skipped rather than burst.
            let mut next = Instant::now() + tick;
            loop {
                glommio::timer::sleep(next.saturating_duration_since(Instant::now())).await;
                next += tick;
                let now = Instant::now();
                if next <= now {
                    next = now + tick;
                }
                if tx.send(Event::Tick).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }

    let log = recovered.log;
    let dev = log.device().clone();
    let mut d = Driver {
        myid: ens.myid,
        cfg: cfg.clone(),
        stats: stats.clone(),
        replica,
        tree,
        working: None,
        takeover: false,
        log,
        dev,
        mode: Mode::Looking,
        leader: None,
        queue: VecDeque::new(),
        expiry: ExpiryQueue::new(u64::from(cfg.tick_time_ms)),
        touched: HashSet::new(),
        syncs: Vec::new(),
        remote_syncs: Vec::new(),
        round_confirmed: 0,
        ticked_ms: None,
        reap_at_ms: u64::from(cfg.container_check_interval_ms),
        next_session: first_session_id(ens.myid as u8, unix_ms()),
        owners: HashMap::new(),
        session_owner: HashMap::new(),
        batch: Vec::new(),
        view_changed: false,
        control: Vec::new(),
        close_all: false,
        inputs: VecDeque::new(),
        sync_wanted: None,
        syncer: Some(Box::new(Syncer::new(
            &cfg.data_log_dir,
            cfg.fsync_warning_threshold_ms,
        ))),
        peers,
        held: HashMap::new(),
        snaps_built: 0,
        events: events_tx.clone(),
        started: Instant::now(),
        since_snapshot: 0,
    };
    // The replica's first notifications.
    let first = d.replica.ready();
    for a in first {
        d.execute(a);
    }
    let snapshotting = Rc::new(std::cell::Cell::new(false));
    let mut jitter = zoocore_member::Jitter::new(unix_ms());
    let mut snapshot_after = jitter.snapshot_after(cfg.snap_count);

    while let Some(event) = events_rx.recv().await {
        // The time before anything that woke us: after a freeze, a leader that lost its
        // quorum steps down here, before it looks at a sync that waited.
        d.feed_time();
        d.on_event(event);
        // Take everything else already queued: one round, one group commit.
        let mut taken = 1;
        while taken < limits::BATCH_TXNS_MAX {
            match poll_once(events_rx.recv()).await {
                Some(Some(event)) => {
                    d.feed_time();
                    d.on_event(event)
                }
                _ => break,
            }
            taken += 1;
        }
        d.settle();
        d.drain_queue();
        d.settle();
        d.answer_syncs();
        d.start_sync(&events_tx);
        if let Some(job) = d.log.next_segment_job() {
            // A roll then writes only a header instead of 64 MiB of zeros on this core.
            let tx = events_tx.clone();
            glommio::spawn_local(async move {
                let result = glommio::executor().spawn_blocking(move || job.run()).await;
                let _ = tx.send(Event::Spare(result)).await;
            })
            .detach();
        }
        // What the log reports: segments preallocated short for lack of room (docs/LOG.md).
        while let Some(notice) = d.log.next_notice() {
            tracing::warn!("{notice}");
        }
        let (batch, control, close_all) = d.take_outputs();
        if let Some(batch) = batch {
            for s in senders.iter() {
                let _ = s.send(FromCore::Commit(batch.clone())).await;
            }
        }
        for (shard, msg) in control {
            let _ = senders[shard].send(msg).await;
        }
        if close_all {
            for s in senders.iter() {
                let _ = s.send(FromCore::CloseAll).await;
            }
        }
        d.publish_counters();
        if d.since_snapshot >= snapshot_after && !snapshotting.get() {
            d.since_snapshot = 0;
            snapshot_after = jitter.snapshot_after(cfg.snap_count);
            snapshotting.set(true);
            topology::spawn_snapshot(d.dev.clone(), d.tree.clone(), snapshotting.clone());
        }
        glommio::yield_if_needed().await;
    }
}

impl Driver {
    /// Starts the fdatasync the replica asked for, unless one is in flight (its completion
    /// starts the next one: everything appended meanwhile is grouped into it).
    fn start_sync(&mut self, events: &Rc<LocalSender<Event>>) {
        let Some(token) = self.sync_wanted else {
            return;
        };
        let Some(mut syncer) = self.syncer.take() else {
            return; // in flight
        };
        self.sync_wanted = None;
        let req = match self.log.sync_begin() {
            Ok(Some(req)) => req,
            Ok(None) => {
                // Nothing unsynced: everything appended is durable already.
                self.syncer = Some(syncer);
                let upto = self.log.last_zxid();
                self.step(Input::Persisted { upto, token });
                self.settle();
                return;
            }
            Err(e) => fatal("the transaction log failed", &e),
        };
        let segment = self
            .log
            .segments()
            .last()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let force = self.cfg.force_sync;
        let events = events.clone();
        glommio::spawn_local(async move {
            let result = if force {
                syncer.sync(&segment).await
            } else {
                Ok(())
            };
            let _ = events
                .send(Event::Synced {
                    syncer,
                    req,
                    token,
                    result,
                })
                .await;
        })
        .detach();
    }
}
