//! The run loop: the real `zoocore_member::Member` of every server, stepped from one seed on
//! one thread. It is what the server runs minus glommio: the effects the server's driver
//! carries out with io_uring and sockets are carried out here by simulated disks (disk.rs),
//! a network (net.rs) and clients (clients.rs), and checkers (checkers.rs) judge every
//! publication, every read and the end of the run.
//!
//! A run: `ticks` ticks of client load and faults (crashes with torn disks, pauses as by
//! SIGSTOP, broken links, partitions that isolate the leader, a minority, or leave no side
//! a quorum, and in the datagram mode lost, duplicated and reordered ZAB frames), then
//! everything heals, the load goes on quietly, stops, and every member must show the same
//! tree with every acknowledged write, no session that was abandoned, and the containers
//! and TTL nodes reaped. A paused member takes nothing; when it resumes its clock has
//! jumped by the pause, as a real process's does.
//!
//! Three modes break a rule on purpose, to show that a checker notices: careless clients
//! connect to members behind what they have seen (the monotonic-read checker), the stale
//! leader is zoocore before issue 10 (a paused member's clock stopped with it, a leader
//! ignored `PeerLost` and answered `sync` from its own state: the sync checker), and
//! forgetful disks keep no epoch file, so that a restarted quorum proposes an epoch again
//! (the checker of one leader per epoch).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use zoocore_member::forward::Forward;
use zoocore_member::msg::{CommitBatch, CoreOp, CoreRequest, FromCore, Outcome, ToCore};
use zoocore_member::{
    Durable, Effect, EnsembleConfig, Input, Member, MemberConfig, Message, Now, Role, ZabConfig,
};
use zoocore_proto::{CreateMode, ErrorCode, SessionId, Zxid};
use zoocore_storage::MemDevice;
use zoocore_tree::{OpResult, Tree};

use crate::checkers::History;
use crate::clients::{create, delete, succeeded, Ask, Client, Done};
use crate::disk::Disk;
use crate::net::Net;
use crate::reconfig::{members_of, next_change, Memberships};
use crate::rng::Rng;
use crate::scenario::{Failure, Network, Report, Scenario};

/// The members' tickTime, in simulated milliseconds.
const TICK_MS: u64 = 100;
/// One step of the simulation.
const STEP_MS: u64 = 10;
/// The Unix time at the simulation's start.
const WALL_START_MS: i64 = 1_700_000_000_000;
const SESSION_TIMEOUT_MS: i32 = 1_000;
const CLIENTS: u64 = 6;
/// How long a request may stay unanswered on an open connection.
const HANG_MS: u64 = 50 * TICK_MS;
/// How often members' logs are compared with the committed history.
const LOG_CHECK_MS: u64 = 5 * TICK_MS;

/// One server: its disk survives crashes, its member does not.
struct Slot {
    disk: Disk,
    member: Option<Member<MemDevice>>,
    paused_since: u64,
    paused_until: Option<u64>,
    restart_at: Option<u64>,
    role: Role,
    /// What its shards serve from.
    view: Option<Tree>,
    /// How far its monotonic clock is behind the simulation's (the stale-leader mode only).
    clock_lag: u64,
    /// Its log was compared with the committed history up to here.
    checked: Zxid,
}

impl Slot {
    fn running(&self) -> bool {
        self.member.is_some() && self.paused_until.is_none()
    }
}

pub struct Sim {
    sc: Scenario,
    rng: Rng,
    now: u64,
    slots: BTreeMap<u64, Slot>,
    voters: Vec<u64>,
    observers: Vec<u64>,
    /// Voters serve observers (the scenario has observer masters).
    observer_masters: bool,
    net: Net,
    clients: Vec<Client>,
    connections: u64,
    history: History,
    /// The newest persistent writes acknowledged, for the syncs' checks.
    recent_acks: Vec<String>,
    report: Report,
    faults: bool,
    load: bool,
    careless_clients: bool,
    stale_leader: bool,
    forgetful_epochs: bool,
    memberships: Memberships,
    /// `--trace`: print role changes, election and handshake frames with the receiver's
    /// state after each, lost links, reconfigs asked, and every member's state on failure.
    trace: bool,
}

type Step = Result<(), String>;

impl Sim {
    pub fn new(sc: Scenario) -> Self {
        let voters: Vec<u64> = (1..=sc.voters as u64).collect();
        let observers: Vec<u64> = (0..sc.observers as u64)
            .map(|i| sc.voters as u64 + 1 + i)
            .collect();
        let (voters_start, observers_start) = (voters.clone(), observers.clone());
        let observer_masters = sc.observer_masters;
        let mut slots = BTreeMap::new();
        for &id in voters.iter().chain(&observers) {
            slots.insert(
                id,
                Slot {
                    disk: Disk::new(),
                    member: None,
                    paused_since: 0,
                    paused_until: None,
                    restart_at: None,
                    role: Role::Looking,
                    view: None,
                    clock_lag: 0,
                    checked: Zxid::ZERO,
                },
            );
        }
        let report = Report {
            voters: sc.voters,
            observers: sc.observers,
            observer_masters: sc.observer_masters,
            datagram: sc.network != Network::Tcp,
            ..Report::default()
        };
        Sim {
            rng: Rng::new(sc.seed ^ 0x005E_ED0F_4E4B),
            net: Net::new(sc.network),
            sc,
            now: 0,
            slots,
            observer_masters,
            voters,
            observers,
            clients: (1..=CLIENTS).map(Client::new).collect(),
            connections: 0,
            history: History::default(),
            recent_acks: Vec::new(),
            report,
            faults: true,
            load: true,
            careless_clients: false,
            stale_leader: false,
            forgetful_epochs: false,
            memberships: Memberships::new(&voters_start, &observers_start),
            trace: false,
        }
    }

    /// Prints what elections do on stderr (see `trace`); costs one branch per event when off.
    pub fn with_trace(mut self) -> Self {
        self.trace = true;
        self
    }

    fn trace_state(&self, id: u64) {
        if let Some(m) = self.slots.get(&id).and_then(|s| s.member.as_ref()) {
            eprintln!("t={} {id}| {}", self.now, m.describe_replica());
        }
    }

    /// No crash, pause, broken link or partition (the datagram mode's mischief stays).
    pub fn without_faults(mut self) -> Self {
        self.faults = false;
        self
    }

    /// Clients ignore what they have seen when they pick a member, as no ZooKeeper client
    /// does: the monotonic-read checker must catch one reading the past.
    pub fn with_careless_clients(mut self) -> Self {
        self.careless_clients = true;
        self
    }

    /// zoocore before issue 10: a paused member's clock stops while it is frozen (it counted
    /// ticks), a leader ignores `PeerLost`, and a leader answers `sync` at once from its own
    /// state. The sync checker must catch a resumed old leader's stale answers.
    pub fn with_stale_leader(mut self) -> Self {
        self.stale_leader = true;
        self
    }

    /// A disk that acknowledges the epoch files and keeps none of them (as one that lies
    /// about fsync): a restarted member forgets the epochs it promised, so a later candidate
    /// can propose one again and lead it while the first leader still does. The checker of
    /// one leader per epoch must catch it.
    pub fn with_forgetful_epochs(mut self) -> Self {
        self.forgetful_epochs = true;
        self
    }

    fn standalone(&self) -> bool {
        self.sc.standalone()
    }

    fn ids(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    /// The time member `id` reads.
    fn time_of(&self, id: u64) -> Now {
        let lag = self.slots.get(&id).map_or(0, |s| s.clock_lag);
        Now {
            mono_ms: self.now - lag,
            wall_ms: WALL_START_MS + self.now as i64,
        }
    }

    fn fail(&self, what: String) -> Failure {
        if self.trace {
            eprintln!("t={} FAILED: {what}", self.now);
            for id in self.ids() {
                self.trace_state(id);
            }
        }
        Failure {
            seed: self.sc.seed,
            ticks: self.sc.ticks,
            time_ms: self.now,
            what,
        }
    }

    /// The whole run.
    pub fn run(mut self) -> Result<Report, Failure> {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.run_inner()));
        match outcome {
            Ok(Ok(())) => Ok(self.report),
            Ok(Err(what)) => Err(self.fail(what)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(self.fail(format!("a member panicked: {what}")))
            }
        }
    }

    fn run_inner(&mut self) -> Step {
        for id in self.ids() {
            self.start(id)?;
        }
        let end = self.sc.ticks * TICK_MS;
        while self.now < end {
            self.advance()?;
        }
        // Heal, and let the load go on quietly: abandoned sessions expire, emptied
        // containers and TTL nodes go.
        self.faults = false;
        self.net.heal(self.now);
        for id in self.ids() {
            let now = self.now;
            let s = self.slots.get_mut(&id).expect("slot");
            if s.paused_until.is_some() {
                s.paused_until = Some(now);
            }
            if s.restart_at.is_some() {
                s.restart_at = Some(now);
            }
        }
        let quiet = self.now + 40 * TICK_MS;
        while self.now < quiet {
            self.advance()?;
        }
        // Stop writing (what answers start still goes on: a container's child); after a
        // few check intervals and TTLs every member must come to the same tree.
        self.load = false;
        let marks: Vec<Option<i32>> = self
            .clients
            .iter()
            .map(|c| c.member.map(|_| c.next_xid))
            .collect();
        let settled = self.now + 20 * TICK_MS;
        while self.now < settled {
            self.advance()?;
        }
        let deadline = self.now + 60 * TICK_MS;
        loop {
            self.advance()?;
            if self.converged() {
                break;
            }
            if self.now >= deadline {
                return Err(format!("no convergence after the heal: {}", self.views()));
            }
        }
        self.check_logs()?;
        self.unanswered(&marks)?;
        for (id, slot) in &self.slots {
            let view = slot.view.as_ref().expect("converged members have views");
            self.history.final_tree(*id, view)?;
        }
        self.report.acked = self.history.acked.len();
        self.report.sessions_closed = self.history.closed.len();
        self.report.epochs = self.history.leaders.len();
        self.report.frames_lost = self.net.mischief.lost;
        self.report.frames_duplicated = self.net.mischief.duplicated;
        self.report.frames_reordered = self.net.mischief.reordered;
        self.report.reconfigs = self.memberships.reconfigs;
        Ok(())
    }

    /// The end of a healed run: a request sent before the load stopped, on a connection
    /// still open, has been answered (a member may close a connection instead, never keep
    /// it open and drop the answer). Requests still unanswered say nothing of what they did.
    fn unanswered(&mut self, marks: &[Option<i32>]) -> Step {
        for (c, mark) in marks.iter().enumerate() {
            let client = &self.clients[c];
            if let (Some(mark), Some(member)) = (mark, client.member) {
                if let Some((xid, ask)) = client.pending.iter().find(|(x, _)| *x < mark) {
                    return Err(format!(
                        "client {} waits for ever on member {member}: xid {xid} ({ask:?}) of connection {} is not answered",
                        client.id, client.conn
                    ));
                }
            }
            for ask in client.pending.values() {
                if let Ask::Child { parent } | Ask::Empty { parent } = ask {
                    self.history.full_boxes.remove(parent);
                    self.history.emptied_boxes.remove(parent);
                }
            }
        }
        Ok(())
    }

    fn views(&self) -> String {
        self.slots
            .iter()
            .map(|(id, s)| {
                let v = s.view.as_ref().map(|v| v.last_zxid().to_string());
                let m = s.member.as_ref().map(|m| format!(" {:?}", m.membership()));
                format!(
                    "{id}: {:?} {}{}",
                    s.role,
                    v.unwrap_or_default(),
                    m.unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn converged(&self) -> bool {
        let mut views = self.slots.values().map(|s| s.view.as_ref());
        let Some(Some(first)) = views.next() else {
            return false;
        };
        let leaders = self
            .slots
            .values()
            .filter(|s| s.role == Role::Leader)
            .count();
        (self.standalone() || leaders == 1)
            && views.all(|v| {
                v.is_some_and(|v| {
                    v.last_zxid() == first.last_zxid() && v.digest() == first.digest()
                })
            })
    }

    /// One step of simulated time.
    fn advance(&mut self) -> Step {
        self.now += STEP_MS;
        self.wake_up()?;
        let slots = &self.slots;
        let notices = self.net.notices_due(self.now, |m| {
            slots[&m].running() || slots[&m].member.is_none()
        });
        for (member, peer) in notices {
            if !self.slots[&member].running() {
                continue;
            }
            if self.stale_leader && self.slots[&member].role == Role::Leader {
                continue; // the old leader did not listen to its links
            }
            if self.trace {
                eprintln!("t={} {member}: lost its link to {peer}", self.now);
            }
            self.step(member, Input::PeerLost { peer });
        }
        let slots = &self.slots;
        let frames = self.net.due(self.now, |to| {
            slots[&to].running() || slots[&to].member.is_none()
        });
        for (from, to, frame) in frames {
            if self.slots[&to].member.is_none() {
                continue;
            }
            self.deliver(from, to, &frame)?;
        }
        self.complete_syncs();
        for id in self.ids() {
            if self.slots[&id].running() {
                self.step(id, Input::Tick);
            }
        }
        if self.load {
            self.clients_act()?;
        }
        if self.faults && self.now.is_multiple_of(TICK_MS) {
            self.fault();
        }
        if self.sc.reconfig && self.faults && self.now.is_multiple_of(8 * TICK_MS) {
            self.reconfigure();
        }
        self.settle()?;
        if self.now.is_multiple_of(LOG_CHECK_MS) {
            self.check_logs()?;
        }
        Ok(())
    }

    /// An operator's reconfig, sent to the leader as a shard would (no client waits for it:
    /// its outcome is what commits).
    fn reconfigure(&mut self) {
        let Some(leader) = self
            .slots
            .iter()
            .find(|(_, s)| s.running() && s.role == Role::Leader)
            .map(|(id, _)| *id)
        else {
            return;
        };
        let Some(text) = self.slots[&leader]
            .view
            .as_ref()
            .and_then(|v| v.get(zoocore_tree::CONFIG_PATH))
            .and_then(|n| n.data().map(<[u8]>::to_vec))
        else {
            return;
        };
        let Ok(current) =
            zoocore_member::reconfig::ClusterConfig::parse(&String::from_utf8_lossy(&text))
        else {
            return;
        };
        let ids = self.ids();
        let Some(args) = next_change(&mut self.rng, &current, &ids) else {
            return;
        };
        self.report.reconfigs_asked += 1;
        if self.trace {
            eprintln!("t={} reconfig asked of {leader}: {args:?}", self.now);
        }
        self.step(
            leader,
            Input::Shard(ToCore::Request(CoreRequest {
                origin: None,
                session: SessionId(0),
                auth: Arc::from([]),
                op: CoreOp::Reconfig(args),
                barrier: false,
            })),
        );
    }

    fn step(&mut self, id: u64, input: Input<MemDevice>) {
        let now = self.time_of(id);
        if let Some(m) = self.slots.get_mut(&id).and_then(|s| s.member.as_mut()) {
            m.step(now, input);
        }
    }

    fn deliver(&mut self, from: u64, to: u64, frame: &[u8]) -> Step {
        let (msg, _) = Message::decode(frame)
            .map_err(|e| format!("a frame from {from} does not decode: {e:?}"))?
            .ok_or_else(|| format!("a partial frame from {from}"))?;
        let input = match msg {
            Message::Forward { data } => Input::Forward {
                from,
                msg: Forward::decode(&data)
                    .map_err(|e| format!("a FORWARD from {from} does not decode: {e}"))?,
            },
            msg => {
                if let Message::Snap { zxid, .. } = &msg {
                    // What the log holds up to a SNAP's zxid may be history the SNAP
                    // replaced: the log checker starts after it.
                    let slot = self.slots.get_mut(&to).expect("slot");
                    slot.checked = slot.checked.max(*zxid);
                }
                if self.trace {
                    return self.deliver_traced(from, to, msg);
                }
                Input::Peer { from, msg }
            }
        };
        self.step(to, input);
        Ok(())
    }

    /// `deliver` under `--trace`: election and handshake frames are printed with the
    /// receiver's state after them; the broadcast's steady traffic is not.
    fn deliver_traced(&mut self, from: u64, to: u64, msg: Message) -> Step {
        let shown = match &msg {
            Message::Proposal { .. }
            | Message::Ack { .. }
            | Message::Commit { .. }
            | Message::Inform { .. }
            | Message::Ping { .. }
            | Message::PingReply { .. }
            | Message::Forward { .. } => None,
            Message::Snap {
                conn, zxid, keep, ..
            } => Some(format!(
                "Snap {{ conn: {conn}, zxid: {zxid}, keep: {keep} }}"
            )),
            m => Some(format!("{m:?}")),
        };
        self.step(to, Input::Peer { from, msg });
        if let Some(shown) = shown {
            eprintln!("t={} {from}->{to} {shown}", self.now);
            self.trace_state(to);
        }
        Ok(())
    }

    fn complete_syncs(&mut self) {
        for id in self.ids() {
            if !self.slots[&id].running() {
                continue;
            }
            let now = self.now;
            let done = self.slots.get_mut(&id).expect("slot").disk.syncs_done(now);
            for (job, result) in done {
                self.step(id, Input::Synced { job, result });
            }
        }
    }

    /// Carries out every running member's effects until none has any.
    fn settle(&mut self) -> Step {
        loop {
            let mut moved = false;
            for id in self.ids() {
                if !self.slots[&id].running() {
                    continue;
                }
                loop {
                    let now = self.time_of(id);
                    let effects = match self.slots.get_mut(&id).and_then(|s| s.member.as_mut()) {
                        Some(m) => m.ready(now),
                        None => Vec::new(),
                    };
                    if effects.is_empty() {
                        break;
                    }
                    moved = true;
                    for e in effects {
                        self.carry_out(id, e)?;
                    }
                }
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn carry_out(&mut self, id: u64, effect: Effect<MemDevice>) -> Step {
        match effect {
            Effect::Sync(job) => {
                let now = self.now;
                let slot = self.slots.get_mut(&id).expect("slot");
                slot.disk.sync_later(&mut self.rng, now, job);
            }
            Effect::Publish(batch) => self.on_publish(id, &batch)?,
            Effect::Send {
                msg: FromCore::CloseConnection { conn, .. },
                ..
            } => {
                if let Some(c) = self
                    .clients
                    .iter()
                    .position(|c| c.member == Some(id) && c.conn == conn)
                {
                    self.disconnect(c);
                }
            }
            Effect::Send { .. } => {}
            Effect::CloseAll => self.disconnect_all(id),
            Effect::Snapshot(tree) => {
                let zxid = tree.last_zxid();
                let result = zoocore_storage::write_snapshot(&self.slots[&id].disk.dev, &tree);
                self.report.snapshots += 1;
                self.step(id, Input::SnapshotWritten { zxid, result });
            }
            Effect::PrepareSegment(job) => {
                let result = job.run();
                self.step(id, Input::SegmentPrepared(result));
            }
            Effect::SendPeer { to, frame } => self.send_peer(id, to, frame.into_vec())?,
            Effect::ResetPeers => {
                let ids = self.ids();
                let until = self.now + STEP_MS;
                self.net.isolate(&mut self.rng, self.now, id, &ids, until);
            }
            Effect::PersistEpochs { accepted, current } => {
                if !self.forgetful_epochs {
                    self.slots.get_mut(&id).expect("slot").disk.epochs = (accepted, current);
                }
                self.step(
                    id,
                    Input::EpochsPersisted {
                        accepted,
                        current,
                        result: Ok(()),
                    },
                );
            }
            Effect::BuildSnap {
                to,
                id: snap,
                conn,
                zxid,
                keep,
                tree,
            } => {
                let frame = zoocore_member::snap_frame(&tree, conn, zxid, keep);
                self.step(
                    id,
                    Input::SnapBuilt {
                        to,
                        id: snap,
                        frame,
                    },
                );
            }
            Effect::Role(role) => {
                if role == Role::Leader {
                    self.report.leaders += 1;
                }
                if role == Role::Observer {
                    let member = self.slots[&id].member.as_ref().expect("running");
                    if member.observer_master().is_some() {
                        self.report.observed_through_masters += 1;
                    }
                }
                if self.trace {
                    eprintln!("t={} {id}: role {role:?}", self.now);
                }
                self.slots.get_mut(&id).expect("slot").role = role;
            }
            // The simulated network reaches every server whatever the configuration.
            Effect::Reconfigured { .. } => {}
            Effect::Stop(reason) => return Err(format!("member {id} stopped: {reason}")),
        }
        Ok(())
    }

    /// A frame for a peer: the one-leader-per-epoch checker sees the handshakes (a learner's
    /// FOLLOWERINFO, the NEWLEADER that answers it); FORWARDs keep to the ordered path
    /// whatever the network.
    fn send_peer(&mut self, id: u64, to: u64, frame: Vec<u8>) -> Step {
        let (msg, _) = Message::decode(&frame)
            .map_err(|e| format!("member {id} sent a frame that does not decode: {e:?}"))?
            .ok_or_else(|| format!("member {id} sent a partial frame"))?;
        match &msg {
            Message::FollowerInfo { conn, observer, .. } => {
                self.history.follower_info(*conn, *observer);
            }
            Message::NewLeader { conn, epoch, .. } => {
                let following = self.slots[&id]
                    .member
                    .as_ref()
                    .is_some_and(|m| matches!(m.role(), Role::Follower | Role::Observer));
                if self.history.new_leader(id, epoch.0, *conn)? && !following {
                    self.report.newleaders_after_mastering += 1;
                }
            }
            _ => {}
        }
        let zab = !matches!(msg, Message::Forward { .. });
        if self.slots[&to].member.is_some() {
            self.net.send(&mut self.rng, self.now, id, to, frame, zab);
        }
        Ok(())
    }

    /// Every member's log, up to what it has committed, against the committed history.
    fn check_logs(&mut self) -> Step {
        for id in self.ids() {
            let slot = &self.slots[&id];
            let (Some(member), Some(view)) = (slot.member.as_ref(), slot.view.as_ref()) else {
                continue;
            };
            let upto = view.last_zxid();
            if upto <= slot.checked {
                continue;
            }
            let entries: Vec<_> = member
                .log()
                .entries_after(slot.checked)
                .map_err(|e| format!("member {id} cannot read its log: {e}"))?
                .into_iter()
                .filter(|e| e.zxid <= upto)
                .collect();
            self.history.committed_entries(id, &entries)?;
            self.report.entries_checked += entries.len();
            self.slots.get_mut(&id).expect("slot").checked = upto;
        }
        Ok(())
    }

    // ---- servers: start, crash, pause ----

    fn start(&mut self, id: u64) -> Step {
        let standalone = self.standalone();
        let mut r = self.slots[&id]
            .disk
            .recover(standalone)
            .map_err(|e| format!("member {id}: {e}"))?;
        let now = self.time_of(id);
        let cfg = MemberConfig {
            first_session: zoocore_member::sessions::first_session_id(id as u8, now.wall_ms as u64),
            tick_ms: TICK_MS,
            snap_count: 60,
            seed: self.rng.next_u64(),
            batch_txns_max: 64,
            force_sync: true,
            container_check_interval_ms: 3 * TICK_MS,
            enforce_quota: false,
            purge_interval_ms: 30 * TICK_MS,
            snap_retain_count: 3,
        };
        // As the server: the tree's configuration if a reconfig made it, else the start's
        // (written into /zookeeper/config).
        let (voters, observers, config_version) = if standalone {
            (Vec::new(), Vec::new(), Zxid::ZERO)
        } else {
            self.membership_at_start(&mut r.tree)
        };
        // The shards start from the recovered tree, as the server's do.
        let view = r.tree.clone();
        let member = if standalone {
            Member::new(cfg, r.tree, r.log, now)
        } else {
            let (accepted, current) = self.slots[&id].disk.epochs;
            let ens = EnsembleConfig {
                zab: ZabConfig {
                    myid: id,
                    voters,
                    observers,
                    init_limit_ms: 10 * TICK_MS,
                    sync_limit_ms: 5 * TICK_MS,
                    finalize_wait_ms: 0,
                    history_retain: 8 + self.rng.below(24) as usize,
                    config_version,
                    reconfig_of: zoocore_member::reconfig::reconfig_of,
                    observer_masters: self.observer_masters,
                },
                durable: Durable {
                    accepted_epoch: accepted,
                    current_epoch: current.min(accepted),
                    base: r.tree.last_zxid(),
                    log: r.entries,
                },
                seed: self.rng.next_u64(),
                time_spacing_ms: STEP_MS / 2,
                read_only_after_ms: None,
            };
            Member::new_ensemble(cfg, ens, r.tree, r.log, now)
        };
        let role = if standalone {
            Role::Standalone
        } else {
            Role::Looking
        };
        let slot = self.slots.get_mut(&id).expect("slot");
        slot.checked = view.last_zxid();
        slot.member = Some(member);
        slot.view = Some(view);
        slot.role = role;
        slot.restart_at = None;
        Ok(())
    }

    /// The membership a member starts with (ensemble): the one its tree's
    /// `/zookeeper/config` holds when a reconfig made it, else the run's first, which is
    /// written into a tree that has none (as every server does with zoo.cfg's).
    fn membership_at_start(&self, tree: &mut Tree) -> (Vec<u64>, Vec<u64>, Zxid) {
        let text = tree
            .get(zoocore_tree::CONFIG_PATH)
            .and_then(|n| n.data().map(|d| String::from_utf8_lossy(d).into_owned()));
        if let Some(cfg) = text
            .and_then(|t| zoocore_member::reconfig::ClusterConfig::parse(&t).ok())
            .filter(|c| c.version > Zxid::ZERO)
        {
            let m = cfg.members();
            return (
                m.voters.into_iter().collect(),
                m.observers.into_iter().collect(),
                cfg.version,
            );
        }
        // One time for every member, so that their trees' digests agree (a server writes its
        // own start time; the simulator compares digests).
        let text = crate::reconfig::initial_text(&self.voters, &self.observers);
        tree.set_config_node(text.as_bytes(), 0, WALL_START_MS);
        (self.voters.clone(), self.observers.clone(), Zxid::ZERO)
    }

    fn crash(&mut self, id: u64, down_ms: u64) {
        self.report.crashes += 1;
        if let Some(m) = &self.slots[&id].member {
            // What it synced survives the crash (the quorum checker counts it).
            let synced = m.log().synced_zxid();
            self.memberships.synced_at_crash.insert(id, synced);
        }
        let slot = self.slots.get_mut(&id).expect("slot");
        slot.member = None;
        slot.paused_until = None;
        slot.view = None;
        slot.role = Role::Looking;
        slot.restart_at = Some(self.now + down_ms);
        if slot.disk.crash(&mut self.rng) {
            self.report.torn_crashes += 1;
        }
        let ids = self.ids();
        self.net
            .isolate(&mut self.rng, self.now, id, &ids, self.now + down_ms);
        self.disconnect_all(id);
    }

    fn wake_up(&mut self) -> Step {
        for id in self.ids() {
            let now = self.now;
            let stale = self.stale_leader;
            let s = self.slots.get_mut(&id).expect("slot");
            if s.paused_until.is_some_and(|t| t <= now) {
                s.paused_until = None;
                if stale {
                    // A clock that counts ticks missed every tick of the pause.
                    s.clock_lag += now - s.paused_since;
                }
            }
            if s.restart_at.is_some_and(|t| t <= now) {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// The member a fault strikes: the leader half of the time, as its loss is the
    /// interesting case, else anyone.
    fn target(&mut self) -> u64 {
        let leaders: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.role == Role::Leader)
            .map(|(id, _)| *id)
            .collect();
        if !leaders.is_empty() && self.rng.below(2) == 0 {
            return self.rng.pick(&leaders);
        }
        let ids = self.ids();
        self.rng.pick(&ids)
    }

    fn fault(&mut self) {
        let id = self.target();
        match self.rng.below(100) {
            0..4 if self.slots[&id].member.is_some() => {
                let down = 100 + self.rng.below(1_400);
                self.crash(id, down);
            }
            4..8 if self.slots[&id].running() => {
                self.report.pauses += 1;
                let pause = 100 + self.rng.below(1_200);
                let slot = self.slots.get_mut(&id).expect("slot");
                slot.paused_since = self.now;
                slot.paused_until = Some(self.now + pause);
            }
            8..14 if !self.standalone() => {
                let ids = self.ids();
                let other = self.rng.pick(&ids);
                if other != id {
                    self.report.link_breaks += 1;
                    let until = self.now + 20 + self.rng.below(600);
                    self.net
                        .break_link(&mut self.rng, self.now, id, other, until);
                }
            }
            14..17 if !self.standalone() => self.partition(),
            _ => {}
        }
    }

    /// Splits the ensemble for a while: the leader alone, a minority of voters (with some
    /// observers) alone, or three groups of which none holds a quorum of voters.
    fn partition(&mut self) {
        let ids = self.ids();
        let mut groups: BTreeMap<u64, u32> = ids.iter().map(|&id| (id, 0)).collect();
        let leader = self
            .slots
            .iter()
            .find(|(_, s)| s.role == Role::Leader)
            .map(|(id, _)| *id);
        match self.rng.below(3) {
            0 => {
                let alone = leader.unwrap_or_else(|| self.rng.pick(&ids));
                groups.insert(alone, 1);
            }
            1 => {
                let minority = 1 + self.rng.below(self.voters.len() as u64 / 2);
                let mut voters = self.voters.clone();
                for _ in 0..minority {
                    let i = self.rng.below(voters.len() as u64) as usize;
                    groups.insert(voters.swap_remove(i), 1);
                }
                for &o in &self.observers {
                    groups.insert(o, self.rng.below(2) as u32);
                }
            }
            _ => {
                // Voters dealt round the three groups from a random start: at most
                // ceil(n/3) each, never a majority of 3 or 5.
                let mut voters = self.voters.clone();
                let start = self.rng.below(3);
                let mut k = 0;
                while !voters.is_empty() {
                    let i = self.rng.below(voters.len() as u64) as usize;
                    groups.insert(voters.swap_remove(i), ((start + k) % 3) as u32);
                    k += 1;
                }
                for &o in &self.observers {
                    groups.insert(o, self.rng.below(3) as u32);
                }
            }
        }
        self.report.partitions += 1;
        let until = self.now + 300 + self.rng.below(1_700);
        self.net.partition(&mut self.rng, self.now, &groups, until);
    }

    // ---- clients ----

    fn disconnect(&mut self, c: usize) {
        for ask in self.clients[c].pending.values() {
            // What a lost answer did is unknown: the container checks no longer hold.
            match ask {
                Ask::Child { parent } | Ask::Empty { parent } => {
                    self.history.full_boxes.remove(parent);
                    self.history.emptied_boxes.remove(parent);
                }
                _ => {}
            }
        }
        self.clients[c].disconnect();
    }

    fn disconnect_all(&mut self, id: u64) {
        for c in 0..self.clients.len() {
            if self.clients[c].member == Some(id) {
                self.disconnect(c);
            }
        }
    }

    fn request(&mut self, c: usize, ask: Ask, session: SessionId, op: CoreOp) {
        let Some(member) = self.clients[c].member else {
            return;
        };
        let origin = self.clients[c].origin(ask, self.now);
        self.step(
            member,
            Input::Shard(ToCore::Request(CoreRequest {
                origin: Some(origin),
                session,
                auth: Arc::from([]),
                op,
                // A quarter of the requests cut their member's publication before their
                // commit, as a write behind a waiting read does (drawn from the xid, not
                // the seed's random source, so that every seed replays as before).
                barrier: origin.xid % 4 == 0,
            })),
        );
    }

    fn clients_act(&mut self) -> Step {
        for c in 0..self.clients.len() {
            if self.clients[c].abandoned {
                continue;
            }
            if self.clients[c].member.is_none() {
                if self.rng.below(5) == 0 {
                    self.reconnect(c)?;
                }
                continue;
            }
            let Some(session) = self.clients[c].session else {
                continue; // its session is being created
            };
            let member = self.clients[c].member.expect("connected");
            if !self.slots[&member].running() {
                continue; // a paused member's process takes nothing: its client waits
            }
            if let Some(sent) = self.clients[c].oldest_ms() {
                // A member that cannot answer (it lost its leader, or was cut off) closes
                // its connections within about syncLimit; one that keeps a connection open
                // must answer. Pauses and elections take far less than this.
                if self.now - sent > HANG_MS {
                    let client = &self.clients[c];
                    let (xid, ask) = client.pending.iter().next().expect("pending");
                    return Err(format!(
                        "client {} waits on member {member} since t={sent}: xid {xid} ({ask:?}) of connection {} is not answered and the connection stays open",
                        client.id, client.conn
                    ));
                }
            }
            if self.now.is_multiple_of(TICK_MS / 2) {
                self.step(member, Input::Shard(ToCore::Touch(vec![session])));
            }
            let busy = self.faults && self.sc.ticks * TICK_MS > self.now;
            if busy && self.rng.below(4) != 0 {
                continue;
            }
            if !busy && self.rng.below(20) != 0 {
                continue;
            }
            self.client_op(c, session)?;
        }
        Ok(())
    }

    fn client_op(&mut self, c: usize, session: SessionId) -> Step {
        match self.rng.below(100) {
            0..40 => {
                let path = self.clients[c].path("w");
                let op = create(&path, CreateMode::Persistent, -1);
                let after = self.history.acked_max;
                self.request(c, Ask::Write { path, after }, session, op);
            }
            40..50 => {
                let path = self.clients[c].path("e");
                let op = create(&path, CreateMode::Ephemeral, -1);
                self.request(c, Ask::Ephemeral { path }, session, op);
            }
            50..62 => self.sync(c, session)?,
            62..68 => {
                let path = self.clients[c].path("box");
                let op = create(&path, CreateMode::Container, -1);
                self.request(c, Ask::Box { path }, session, op);
            }
            68..72 => {
                let path = self.clients[c].path("ttl");
                let op = create(&path, CreateMode::PersistentWithTtl, 2 * TICK_MS as i64);
                self.request(c, Ask::Ttl { path }, session, op);
            }
            72..74 if self.faults => {
                let abandoned = self.clients.iter().filter(|c| c.abandoned).count();
                if abandoned < 2 {
                    let client = &mut self.clients[c];
                    client.abandoned = true;
                    self.history
                        .abandoned
                        .insert(session, client.ephemerals.clone());
                    self.disconnect(c);
                }
            }
            74..90 => self.read(c)?,
            90..92 if self.clients[c].pending.is_empty() => {
                // The client moves to another member with its session (as a client whose
                // server list is shuffled again does), which takes its session over there.
                self.disconnect(c);
                self.reconnect(c)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A read served by the client's member from its shards' view, as a getData is: only
    /// once the session has nothing pending (per-session FIFO), from a serving member.
    fn read(&mut self, c: usize) -> Step {
        let client = &self.clients[c];
        let Some(id) = client.member else {
            return Ok(());
        };
        let slot = &self.slots[&id];
        if !client.pending.is_empty() || slot.role == Role::Looking {
            return Ok(());
        }
        let Some(view) = slot.view.as_ref() else {
            return Ok(());
        };
        self.history
            .read(client.id, id, client.last_zxid, view, &client.own_acked)?;
        let at = view.last_zxid();
        let client = &mut self.clients[c];
        client.last_zxid = client.last_zxid.max(at);
        self.report.reads += 1;
        Ok(())
    }

    /// A `sync`, whose answer (then a read) must hold every write acknowledged before it
    /// was sent. The stale leader answers it at once from its own state.
    fn sync(&mut self, c: usize, session: SessionId) -> Step {
        let start = self.recent_acks.len().saturating_sub(32);
        let acked_before = self.recent_acks[start..].to_vec();
        let member = self.clients[c].member.expect("connected");
        if self.stale_leader && self.slots[&member].role == Role::Leader {
            if let Some(view) = self.slots[&member].view.as_ref() {
                self.history.synced_read(view, &acked_before)?;
                self.report.synced_reads += 1;
            }
            return Ok(());
        }
        let op = CoreOp::Sync {
            path: "/".to_owned(),
        };
        self.request(c, Ask::Sync { acked_before }, session, op);
        Ok(())
    }

    /// A client without a connection picks a serving member that is not behind what it
    /// has seen, and resumes its session there (or starts one).
    fn reconnect(&mut self, c: usize) -> Step {
        let last = self.clients[c].last_zxid;
        let careless = self.careless_clients;
        let candidates: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.running()
                    && s.role != Role::Looking
                    && s.view
                        .as_ref()
                        .is_some_and(|v| careless || v.last_zxid() >= last)
            })
            .map(|(id, _)| *id)
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let member = if careless {
            // The member furthest behind: the one a careless client gets wrong soonest.
            let behind = |id: &u64| self.slots[id].view.as_ref().map(|v| v.last_zxid());
            *candidates
                .iter()
                .min_by_key(|id| behind(id))
                .expect("a candidate")
        } else {
            self.rng.pick(&candidates)
        };
        self.connections += 1;
        let generation = self.connections;
        self.clients[c].connect(member, generation);
        let view = self.slots[&member].view.as_ref().expect("a serving member");
        match self.clients[c].session {
            Some(session) if view.session_exists(session) => {
                let conn = self.clients[c].conn;
                self.step(
                    member,
                    Input::Shard(ToCore::Attach {
                        session,
                        shard: 0,
                        conn,
                        valid: true,
                    }),
                );
                if careless {
                    // It reads at once, from whatever state the member has.
                    return self.read(c);
                }
            }
            _ => {
                self.clients[c].session = None;
                self.clients[c].ephemerals.clear();
                let op = CoreOp::CreateSession {
                    timeout_ms: SESSION_TIMEOUT_MS,
                };
                self.request(c, Ask::Connect, SessionId(0), op);
            }
        }
        Ok(())
    }

    fn on_publish(&mut self, id: u64, batch: &CommitBatch) -> Step {
        self.history.published(id, &batch.view)?;
        if !self.standalone() {
            for entry in &batch.entries {
                let made = match &entry.outcome {
                    Outcome::Applied(a) => match &a.result {
                        OpResult::Reconfigured { data, .. } => members_of(data),
                        _ => None,
                    },
                    _ => None,
                };
                let members: BTreeMap<u64, Option<&Member<MemDevice>>> = self
                    .slots
                    .iter()
                    .map(|(id, s)| (*id, s.member.as_ref()))
                    .collect();
                if self.trace {
                    if let Some(m) = &made {
                        eprintln!(
                            "t={} {id}: published reconfig {} making {m:?}",
                            self.now, entry.zxid
                        );
                    }
                }
                self.memberships.check_commit(entry.zxid, made, &members)?;
            }
        }
        if self.trace {
            let cfg = |v: Option<&Tree>| {
                v.and_then(|v| v.get(zoocore_tree::CONFIG_PATH))
                    .and_then(|n| n.data().map(|d| String::from_utf8_lossy(d).into_owned()))
                    .and_then(|t| t.lines().last().map(str::to_owned))
            };
            let (old, new) = (cfg(self.slots[&id].view.as_ref()), cfg(Some(&batch.view)));
            if old != new {
                eprintln!(
                    "t={} {id}: view's config {old:?} -> {new:?} at {} (entries {:?})",
                    self.now,
                    batch.view.last_zxid(),
                    batch.entries.iter().map(|e| e.zxid).collect::<Vec<_>>()
                );
            }
        }
        self.slots.get_mut(&id).expect("slot").view = Some(batch.view.clone());
        for entry in &batch.entries {
            if let Some(s) = entry.closed_session {
                self.history.closed.insert(s);
            }
            let Some(origin) = entry.origin else {
                continue;
            };
            let Some(c) = self
                .clients
                .iter()
                .position(|c| c.member == Some(id) && c.conn == origin.conn)
            else {
                continue; // that connection is gone: its answers go nowhere
            };
            let client = &mut self.clients[c];
            if !client.pending.contains_key(&origin.xid) || client.done.contains_key(&origin.xid) {
                return Err(format!(
                    "member {id} answered xid {} of connection {} twice, or unasked",
                    origin.xid, origin.conn
                ));
            }
            let done = Done {
                zxid: entry.reply_zxid(),
                ok: succeeded(entry),
                created: match entry.outcome {
                    Outcome::SessionCreated { session, .. } => Some(session),
                    _ => None,
                },
                expired: matches!(&entry.outcome, Outcome::Applied(a)
                    if a.result == OpResult::Error(ErrorCode::SESSION_EXPIRED)),
                view: batch.view.clone(),
            };
            client.done.insert(origin.xid, done);
            self.release(c, id)?;
        }
        Ok(())
    }

    /// The answers at the head of client `c`'s FIFO go out, in request order.
    fn release(&mut self, c: usize, id: u64) -> Step {
        loop {
            let client = &mut self.clients[c];
            let Some((&xid, _)) = client.pending.first_key_value() else {
                return Ok(());
            };
            let Some(done) = client.done.remove(&xid) else {
                return Ok(());
            };
            let ask = client.pending.remove(&xid).expect("the head");
            client.sent_ms.remove(&xid);
            client.xid_answered = xid;
            if done.zxid < client.last_zxid {
                // Clients keep the last zxid they were answered with (lastZxidSeen) and
                // reconnect only to members that have it: answers must not go back.
                return Err(format!(
                    "member {id} answered client {}'s xid {xid} at {}, after an answer at {}",
                    client.id, done.zxid, client.last_zxid
                ));
            }
            client.last_zxid = client.last_zxid.max(done.zxid);
            if done.expired {
                client.session = None;
                self.disconnect(c);
                return Ok(());
            }
            self.answered(c, id, ask, &done)?;
            if self.clients[c].member != Some(id) {
                return Ok(());
            }
        }
    }

    /// Client `c` got the answer to `ask` from member `id`.
    fn answered(&mut self, c: usize, id: u64, ask: Ask, done: &Done) -> Step {
        let entry_session = self.clients[c].session.unwrap_or(SessionId(0));
        let (ok, zxid) = (done.ok, done.zxid);
        match ask {
            Ask::Connect => {
                if let Some(session) = done.created {
                    self.clients[c].session = Some(session);
                }
            }
            Ask::Write { path, after } if ok => {
                let client = &mut self.clients[c];
                if zxid <= client.zxid_written {
                    return Err(format!(
                        "member {id} acknowledged client {}'s {path} at {zxid}, not after its previous write at {}",
                        client.id, client.zxid_written
                    ));
                }
                client.zxid_written = zxid;
                client.acked(path.clone());
                self.history.write_acked(&path, after, zxid)?;
                self.recent_acks.push(path);
            }
            Ask::Ephemeral { path } if ok => self.clients[c].ephemerals.push(path),
            Ask::Box { path } if ok => {
                let op = create(&format!("{path}/c"), CreateMode::Persistent, -1);
                self.request(c, Ask::Child { parent: path }, entry_session, op);
            }
            Ask::Child { parent } if ok => {
                self.history.full_boxes.insert(parent.clone());
                if self.rng.below(2) == 0 {
                    let op = delete(&format!("{parent}/c"));
                    self.request(c, Ask::Empty { parent }, entry_session, op);
                }
            }
            Ask::Empty { parent } if ok => {
                self.history.full_boxes.remove(&parent);
                self.history.emptied_boxes.insert(parent);
            }
            Ask::Ttl { path } if ok => {
                self.history.ttl_nodes.insert(path);
            }
            Ask::Sync { acked_before } => {
                self.history.synced_read(&done.view, &acked_before)?;
                self.report.synced_reads += 1;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, ticks: u64) -> Result<Report, Failure> {
    Sim::new(Scenario::from_seed(seed, ticks)).run()
}
