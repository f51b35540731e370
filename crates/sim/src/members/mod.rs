//! The simulator of whole servers: the real `zoocore_member::Member` (prep, the payload
//! codec, sessions and their owners, expiry, the reaper, snapshots, the zab replica) on the
//! real `storage::Log` over the fault-injecting `MemDevice`, driven from one seed on one
//! thread. It is what the server runs minus glommio: the effects the server's driver carries
//! out with io_uring and sockets are carried out here by a simulated disk (fdatasyncs that
//! complete after a drawn delay, crashes that keep a random part of what was not synced) and
//! network (net.rs); clients (workload.rs) hold sessions on members and move between them;
//! checkers (checkers.rs) judge every publication and the end of the run.
//!
//! A run: `ticks` ticks of client load and faults (crashes with torn disks, pauses as by
//! SIGSTOP, broken links), then everything heals, the load goes on quietly, stops, and every
//! member must show the same tree with every acknowledged write, no session that was
//! abandoned, and the containers and TTL nodes reaped. Shapes: a standalone server, 3
//! voters, 3 voters and an observer, 5 voters and an observer. A failure names its seed:
//! `cargo run -p zoocore-sim -- --members --seed N --ticks T` replays it exactly.

mod checkers;
mod net;
mod workload;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use zoocore_member::forward::{encode_payload, Forward};
use zoocore_member::msg::{CommitBatch, CoreRequest, FromCore, ToCore};
use zoocore_member::{
    Durable, Effect, EnsembleConfig, Epoch, Input, Member, MemberConfig, Message, Now, Role,
    SyncJob, ZabConfig,
};
use zoocore_proto::{CreateMode, ErrorCode, SessionId};
use zoocore_storage::{recover, Crash, Device, LogOptions, MemDevice, RecoverOptions, SyncHandle};
use zoocore_tree::{OpResult, Tree};

use crate::Rng;
use checkers::History;
use net::Net;
use workload::{create, delete, succeeded, Ask, Client};

/// The members' tickTime, in simulated milliseconds.
const TICK_MS: u64 = 100;
/// One step of the simulation.
const STEP_MS: u64 = 10;
/// The Unix time at the simulation's start.
const WALL_START_MS: i64 = 1_700_000_000_000;
const SESSION_TIMEOUT_MS: i32 = 1_000;
const CLIENTS: u64 = 6;

/// What one run simulates, drawn from the seed.
#[derive(Clone, Debug)]
pub struct MemberScenario {
    pub seed: u64,
    /// 1: a standalone server.
    pub voters: usize,
    pub observers: usize,
    pub ticks: u64,
}

impl MemberScenario {
    pub fn from_seed(seed: u64, ticks: u64) -> Self {
        let (voters, observers) = match seed % 4 {
            0 => (1, 0),
            1 => (3, 0),
            2 => (3, 1),
            _ => (5, 1),
        };
        MemberScenario {
            seed,
            voters,
            observers,
            ticks,
        }
    }
}

/// What a finished run reports.
#[derive(Clone, Debug, Default)]
pub struct MemberReport {
    pub voters: usize,
    pub observers: usize,
    pub acked: usize,
    pub synced_reads: usize,
    pub sessions_closed: usize,
    pub leaders: usize,
    pub crashes: usize,
    pub pauses: usize,
    pub link_breaks: usize,
    pub snapshots: usize,
}

/// A checker's verdict, with what replays it.
#[derive(Clone, Debug)]
pub struct MemberFailure {
    pub seed: u64,
    pub ticks: u64,
    pub time_ms: u64,
    pub what: String,
}

impl std::fmt::Display for MemberFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at t={} ms: {}\nreplay: cargo run -p zoocore-sim -- --members --seed {} --ticks {}",
            self.seed, self.time_ms, self.what, self.seed, self.ticks
        )
    }
}

/// One server: its disk survives crashes, its member does not.
struct Slot {
    dev: MemDevice,
    member: Option<Member<MemDevice>>,
    /// The epoch files (written durably at once when the member asks).
    epochs: (Epoch, Epoch),
    /// fdatasyncs in flight and when they complete.
    syncs: Vec<(u64, SyncJob<MemDevice>)>,
    paused_until: Option<u64>,
    restart_at: Option<u64>,
    role: Role,
    /// What its shards serve from.
    view: Option<Tree>,
}

impl Slot {
    fn running(&self) -> bool {
        self.member.is_some() && self.paused_until.is_none()
    }
}

pub struct MemberSim {
    sc: MemberScenario,
    rng: Rng,
    now: u64,
    slots: BTreeMap<u64, Slot>,
    voters: Vec<u64>,
    observers: Vec<u64>,
    net: Net,
    clients: Vec<Client>,
    connections: u64,
    history: History,
    /// The newest persistent writes acknowledged, for the syncs' checks.
    recent_acks: Vec<String>,
    report: MemberReport,
    faults: bool,
    load: bool,
}

type Step = Result<(), String>;

fn log_options() -> LogOptions {
    LogOptions {
        prealloc_bytes: 64 << 10,
        snap_count: 200,
        database_id: 1,
    }
}

impl MemberSim {
    pub fn new(sc: MemberScenario) -> Self {
        let voters: Vec<u64> = (1..=sc.voters as u64).collect();
        let observers: Vec<u64> = (0..sc.observers as u64)
            .map(|i| sc.voters as u64 + 1 + i)
            .collect();
        let mut slots = BTreeMap::new();
        for &id in voters.iter().chain(&observers) {
            slots.insert(
                id,
                Slot {
                    dev: MemDevice::new(),
                    member: None,
                    epochs: (Epoch(0), Epoch(0)),
                    syncs: Vec::new(),
                    paused_until: None,
                    restart_at: None,
                    role: Role::Looking,
                    view: None,
                },
            );
        }
        let report = MemberReport {
            voters: sc.voters,
            observers: sc.observers,
            ..MemberReport::default()
        };
        MemberSim {
            rng: Rng::new(sc.seed ^ 0x005E_ED0F_4E4B),
            sc,
            now: 0,
            slots,
            voters,
            observers,
            net: Net::default(),
            clients: (1..=CLIENTS).map(Client::new).collect(),
            connections: 0,
            history: History::default(),
            recent_acks: Vec::new(),
            report,
            faults: true,
            load: true,
        }
    }

    fn standalone(&self) -> bool {
        self.sc.voters == 1 && self.sc.observers == 0
    }

    fn ids(&self) -> Vec<u64> {
        self.slots.keys().copied().collect()
    }

    fn time(&self) -> Now {
        Now {
            mono_ms: self.now,
            wall_ms: WALL_START_MS + self.now as i64,
        }
    }

    fn fail(&self, what: String) -> MemberFailure {
        MemberFailure {
            seed: self.sc.seed,
            ticks: self.sc.ticks,
            time_ms: self.now,
            what,
        }
    }

    /// The whole run.
    pub fn run(mut self) -> Result<MemberReport, MemberFailure> {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let r = self.run_inner();
            (r, self.now)
        }));
        match outcome {
            Ok((Ok(()), _)) => Ok(self.report),
            Ok((Err(what), now)) => Err(MemberFailure {
                seed: self.sc.seed,
                ticks: self.sc.ticks,
                time_ms: now,
                what,
            }),
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
            let s = self.slots.get_mut(&id).expect("slot");
            if s.paused_until.is_some() {
                s.paused_until = Some(self.now);
            }
            if s.restart_at.is_some() {
                s.restart_at = Some(self.now);
            }
        }
        let quiet = self.now + 40 * TICK_MS;
        while self.now < quiet {
            self.advance()?;
        }
        // Stop writing (what answers start still goes on: a container's child); after a
        // few check intervals and TTLs every member must come to the same tree.
        self.load = false;
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
        for (id, slot) in &self.slots {
            let view = slot.view.as_ref().expect("converged members have views");
            self.history.final_tree(*id, view)?;
        }
        self.report.acked = self.history.acked.len();
        self.report.sessions_closed = self.history.closed.len();
        Ok(())
    }

    fn views(&self) -> String {
        self.slots
            .iter()
            .map(|(id, s)| {
                let v = s.view.as_ref().map(|v| v.last_zxid().to_string());
                format!("{id}: {:?} {}", s.role, v.unwrap_or_default())
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
            if self.slots[&member].running() {
                self.step(member, Input::PeerLost { peer });
            }
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
            self.fault()?;
        }
        self.settle()
    }

    fn step(&mut self, id: u64, input: Input<MemDevice>) {
        let now = self.time();
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
            msg => Input::Peer { from, msg },
        };
        self.step(to, input);
        Ok(())
    }

    fn complete_syncs(&mut self) {
        for id in self.ids() {
            if !self.slots[&id].running() {
                continue;
            }
            let now = self.now;
            let slot = self.slots.get_mut(&id).expect("slot");
            let (due, later): (Vec<_>, Vec<_>) =
                slot.syncs.drain(..).partition(|(at, _)| *at <= now);
            slot.syncs = later;
            for (_, job) in due {
                let result = job.request.handle.sync();
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
                    let now = self.time();
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
                let at = self.now + self.rng.below(25);
                self.slots.get_mut(&id).expect("slot").syncs.push((at, job));
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
                let result = zoocore_storage::write_snapshot(&self.slots[&id].dev, &tree);
                self.report.snapshots += 1;
                self.step(id, Input::SnapshotWritten { zxid, result });
            }
            Effect::PrepareSegment(job) => {
                let result = job.run();
                self.step(id, Input::SegmentPrepared(result));
            }
            Effect::SendPeer { to, frame } => {
                if self.slots[&to].member.is_some() {
                    self.net.send(&mut self.rng, self.now, id, to, frame);
                }
            }
            Effect::ResetPeers => {
                let ids = self.ids();
                let until = self.now + STEP_MS;
                self.net.isolate(&mut self.rng, self.now, id, &ids, until);
            }
            Effect::PersistEpochs { accepted, current } => {
                self.slots.get_mut(&id).expect("slot").epochs = (accepted, current);
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
                self.slots.get_mut(&id).expect("slot").role = role;
            }
            Effect::Stop(reason) => return Err(format!("member {id} stopped: {reason}")),
        }
        Ok(())
    }

    // ---- servers: start, crash, pause ----

    fn start(&mut self, id: u64) -> Step {
        let dev = self.slots[&id].dev.clone();
        let r = recover(
            dev.clone(),
            RecoverOptions {
                log: log_options(),
                extended_types: true,
            },
        )
        .map_err(|e| format!("member {id} cannot recover: {e}"))?;
        let now = self.time();
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
        let (member, view) = if self.standalone() {
            let view = r.tree.clone();
            (Member::new(cfg, r.tree, r.log, now), Some(view))
        } else {
            // The committed state only: the snapshot, never the log replayed over it.
            let tree = match r.snapshot_zxid {
                Some(z) => {
                    let name = zoocore_storage::snapshot_name(z);
                    let bytes = dev.read(&name).map_err(|e| format!("{name}: {e}"))?;
                    zoocore_storage::decode_snapshot(&name, &bytes)
                        .map_err(|e| format!("{name}: {e}"))?
                        .tree
                }
                None => Tree::with_extended_types(true),
            };
            let base = tree.last_zxid();
            let log = r
                .log
                .entries_after(base)
                .map_err(|e| format!("member {id} cannot read its log: {e}"))?
                .into_iter()
                .map(|e| (e.zxid, encode_payload(None, e.time_ms, &e.txn)))
                .collect();
            let (accepted, current) = self.slots[&id].epochs;
            let ens = EnsembleConfig {
                zab: ZabConfig {
                    myid: id,
                    voters: self.voters.clone(),
                    observers: self.observers.clone(),
                    init_limit_ms: 10 * TICK_MS,
                    sync_limit_ms: 5 * TICK_MS,
                    finalize_wait_ms: 0,
                    history_retain: 8 + self.rng.below(24) as usize,
                },
                durable: Durable {
                    accepted_epoch: accepted,
                    current_epoch: current.min(accepted),
                    base,
                    log,
                },
                seed: self.rng.next_u64(),
                time_spacing_ms: STEP_MS / 2,
                read_only_after_ms: None,
            };
            // The shards start from the recovered tree, as the server's do.
            let view = Some(tree.clone());
            (Member::new_ensemble(cfg, ens, tree, r.log, now), view)
        };
        let role = if self.standalone() {
            Role::Standalone
        } else {
            Role::Looking
        };
        let slot = self.slots.get_mut(&id).expect("slot");
        slot.member = Some(member);
        slot.view = view;
        slot.role = role;
        slot.restart_at = None;
        Ok(())
    }

    fn crash(&mut self, id: u64, down_ms: u64) {
        self.report.crashes += 1;
        let seed = self.rng.next_u64();
        let slot = self.slots.get_mut(&id).expect("slot");
        slot.member = None;
        slot.syncs.clear();
        slot.paused_until = None;
        slot.view = None;
        slot.role = Role::Looking;
        slot.restart_at = Some(self.now + down_ms);
        slot.dev.crash(Crash::Random(seed));
        let ids = self.ids();
        self.net
            .isolate(&mut self.rng, self.now, id, &ids, self.now + down_ms);
        self.disconnect_all(id);
    }

    fn wake_up(&mut self) -> Step {
        for id in self.ids() {
            let now = self.now;
            let s = self.slots.get_mut(&id).expect("slot");
            if s.paused_until.is_some_and(|t| t <= now) {
                s.paused_until = None;
            }
            if s.restart_at.is_some_and(|t| t <= now) {
                self.start(id)?;
            }
        }
        Ok(())
    }

    fn fault(&mut self) -> Step {
        let ids = self.ids();
        let id = ids[self.rng.below(ids.len() as u64) as usize];
        match self.rng.below(100) {
            0..4 if self.slots[&id].member.is_some() => {
                let down = 100 + self.rng.below(1_400);
                self.crash(id, down);
            }
            4..8 if self.slots[&id].running() => {
                self.report.pauses += 1;
                let pause = 100 + self.rng.below(1_200);
                self.slots.get_mut(&id).expect("slot").paused_until = Some(self.now + pause);
            }
            8..14 if !self.standalone() => {
                let other = ids[self.rng.below(ids.len() as u64) as usize];
                if other != id {
                    self.report.link_breaks += 1;
                    let until = self.now + 20 + self.rng.below(600);
                    self.net
                        .break_link(&mut self.rng, self.now, id, other, until);
                }
            }
            _ => {}
        }
        Ok(())
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

    fn request(&mut self, c: usize, ask: Ask, session: SessionId, op: zoocore_member::msg::CoreOp) {
        let Some(member) = self.clients[c].member else {
            return;
        };
        let origin = self.clients[c].origin(ask);
        self.step(
            member,
            Input::Shard(ToCore::Request(CoreRequest {
                origin: Some(origin),
                session,
                auth: Arc::from([]),
                op,
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
                    self.reconnect(c);
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
            if self.now.is_multiple_of(TICK_MS / 2) {
                self.step(member, Input::Shard(ToCore::Touch(vec![session])));
            }
            if self.faults && self.rng.below(4) != 0 {
                continue;
            }
            if !self.faults && self.rng.below(20) != 0 {
                continue;
            }
            self.client_op(c, session);
        }
        Ok(())
    }

    fn client_op(&mut self, c: usize, session: SessionId) {
        match self.rng.below(100) {
            0..45 => {
                let path = self.clients[c].path("w");
                let op = create(&path, CreateMode::Persistent, -1);
                self.request(c, Ask::Write { path }, session, op);
            }
            45..55 => {
                let path = self.clients[c].path("e");
                let op = create(&path, CreateMode::Ephemeral, -1);
                self.request(c, Ask::Ephemeral { path }, session, op);
            }
            55..70 => {
                let start = self.recent_acks.len().saturating_sub(32);
                let acked_before = self.recent_acks[start..].to_vec();
                let op = zoocore_member::msg::CoreOp::Sync {
                    path: "/".to_owned(),
                };
                self.request(c, Ask::Sync { acked_before }, session, op);
            }
            70..76 => {
                let path = self.clients[c].path("box");
                let op = create(&path, CreateMode::Container, -1);
                self.request(c, Ask::Box { path }, session, op);
            }
            76..80 => {
                let path = self.clients[c].path("ttl");
                let op = create(&path, CreateMode::PersistentWithTtl, 2 * TICK_MS as i64);
                self.request(c, Ask::Ttl { path }, session, op);
            }
            80..82 if self.faults => {
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
            _ => {}
        }
    }

    /// A client without a connection picks a serving member that is not behind what it
    /// has seen, and resumes its session there (or starts one).
    fn reconnect(&mut self, c: usize) {
        let last = self.clients[c].last_zxid;
        let candidates: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| {
                s.running()
                    && s.role != Role::Looking
                    && s.view.as_ref().is_some_and(|v| v.last_zxid() >= last)
            })
            .map(|(id, _)| *id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let member = candidates[self.rng.below(candidates.len() as u64) as usize];
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
            }
            _ => {
                self.clients[c].session = None;
                self.clients[c].ephemerals.clear();
                let op = zoocore_member::msg::CoreOp::CreateSession {
                    timeout_ms: SESSION_TIMEOUT_MS,
                };
                self.request(c, Ask::Connect, SessionId(0), op);
            }
        }
    }

    fn on_publish(&mut self, id: u64, batch: &CommitBatch) -> Step {
        self.history.published(id, &batch.view)?;
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
            let Some(ask) = self.clients[c].pending.remove(&origin.xid) else {
                return Err(format!(
                    "member {id} answered xid {} of connection {} twice, or unasked",
                    origin.xid, origin.conn
                ));
            };
            let client = &mut self.clients[c];
            client.last_zxid = client.last_zxid.max(entry.zxid);
            if let zoocore_member::msg::Outcome::Applied(a) = &entry.outcome {
                if a.result == OpResult::Error(ErrorCode::SESSION_EXPIRED) {
                    client.session = None;
                    self.disconnect(c);
                    continue;
                }
            }
            let ok = succeeded(entry);
            match ask {
                Ask::Connect => {
                    if let zoocore_member::msg::Outcome::SessionCreated { session, .. } =
                        entry.outcome
                    {
                        self.clients[c].session = Some(session);
                    }
                }
                Ask::Write { path } if ok => {
                    self.history.acked.insert(path.clone(), entry.zxid);
                    self.recent_acks.push(path);
                }
                Ask::Ephemeral { path } if ok => self.clients[c].ephemerals.push(path),
                Ask::Box { path } if ok => {
                    let session = self.clients[c].session.unwrap_or(SessionId(0));
                    let op = create(&format!("{path}/c"), CreateMode::Persistent, -1);
                    self.request(c, Ask::Child { parent: path }, session, op);
                }
                Ask::Child { parent } if ok => {
                    self.history.full_boxes.insert(parent.clone());
                    if self.rng.below(2) == 0 {
                        let session = self.clients[c].session.unwrap_or(SessionId(0));
                        let op = delete(&format!("{parent}/c"));
                        self.request(c, Ask::Empty { parent }, session, op);
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
                    self.history.synced_read(&batch.view, &acked_before)?;
                    self.report.synced_reads += 1;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Runs one seed of the member simulator.
pub fn run_member_seed(seed: u64, ticks: u64) -> Result<MemberReport, MemberFailure> {
    MemberSim::new(MemberScenario::from_seed(seed, ticks)).run()
}
