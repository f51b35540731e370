//! A deterministic simulator of whole zoocore ensembles: N replicas of the real `zab` state
//! machine and real `Tree`s on one thread, driven from one seed (TigerBeetle's VOPR).
//!
//! Everything that is nondeterministic in a real deployment is drawn here from the seed: a
//! network that loses, delays, reorders and duplicates messages and partitions servers
//! (isolating the leader, a minority, or splitting so no side has a quorum); disks whose
//! unsynced writes are lost on a crash, with a torn tail that keeps a random part of them;
//! crashes and restarts; members paused as by SIGSTOP (a paused member receives nothing and
//! completes nothing; what was sent to it waits, and when it resumes its clock has jumped by
//! the pause: it feeds that time first, then what waited); peer connections that break (crashes, partitions, spurious
//! disconnects) and feed `PeerLost` to the side that reads them; clients connected to any
//! serving member, which read from its committed tree and write through it, and move between
//! members as ZooKeeper clients do (never to one behind their `lastZxidSeen`). Every message
//! goes through the real frame encoder and decoder. Checkers run after every event (committed
//! prefixes, digests, acknowledged writes, per-client and real-time write order, monotonic
//! reads that equal the global history at the member's zxid; a read after `sync` holds every
//! write acknowledged to any client before the sync was sent), and a failure carries the seed
//! so that `cargo run -p zoocore-sim -- --seed N --ticks T` replays it exactly.
//!
//! Until the tree has a byte-level snapshot codec, a SNAP carries an index into the
//! simulator's table of tree versions instead of the tree's bytes.

pub mod members;

pub use members::{run_member_seed, MemberFailure, MemberReport, MemberScenario, MemberSim};

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use zoocore_proto::{Acl, CreateMode, Reader, Record, SessionId, Zxid};
use zoocore_tree::{Op, PrepContext, Tree, Txn};
use zoocore_zab::{
    Action, Config, Durable, Epoch, Input, Message, Payload, Replica, RoleKind, ServerId,
};

/// Simulated time units (the replicas' milliseconds) in one tick.
const TICK: u64 = 100;

/// A forwarded `sync` (member → leader) and its answer (leader → member), in the sim's own
/// FORWARD payloads: a kind byte, the sync's id, and for the answer the zxid to wait for.
const FORWARD_SYNC: u8 = 1;
const FORWARD_SYNC_DONE: u8 = 2;

/// What one run simulates, all drawn from the seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub voters: usize,
    pub observers: usize,
    /// Ticks of faults and writes before the final heal.
    pub ticks: u64,
    pub loss_percent: u64,
    pub dup_percent: u64,
    pub reorder_percent: u64,
}

impl Scenario {
    pub fn from_seed(seed: u64, ticks: u64) -> Scenario {
        let mut rng = Rng::new(seed ^ 0xA5A5);
        let voters = if rng.below(2) == 0 { 3 } else { 5 };
        let observers = if rng.below(2) == 0 { 0 } else { 2 };
        Scenario {
            seed,
            voters,
            observers,
            ticks,
            loss_percent: rng.below(6),
            dup_percent: rng.below(4),
            reorder_percent: rng.below(4),
        }
    }
}

/// What a finished run reports.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub committed: usize,
    pub acked: usize,
    pub elections: usize,
    pub crashes: usize,
    pub snaps: usize,
    pub truncs: usize,
    /// Reads served to clients and checked.
    pub reads: usize,
    /// Write responses clients received (from the member they are connected to).
    pub answered: usize,
    /// `PeerLost` inputs fed.
    pub peer_lost: usize,
    /// Members paused (frozen) and resumed.
    pub pauses: usize,
    /// Reads after `sync` served to clients and checked.
    pub synced_reads: usize,
}

/// A checker's verdict against a seed.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    /// The run's `--ticks`, needed to replay it.
    pub ticks: u64,
    pub time: u64,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at t={} (tick {}): {}\nreplay: cargo run -p zoocore-sim -- --seed {} --ticks {}",
            self.seed,
            self.time,
            self.time / TICK,
            self.what,
            self.seed,
            self.ticks
        )
    }
}

/// splitmix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Tick(ServerId),
    Deliver {
        from: ServerId,
        to: ServerId,
        from_life: u64,
        to_life: u64,
        /// The connection the frame was sent on; a broken one loses what is in flight.
        link_gen: u64,
        bytes: Vec<u8>,
    },
    /// `node` notices that its connection from `peer` closed.
    PeerLost {
        node: ServerId,
        life: u64,
        peer: ServerId,
    },
    Synced {
        node: ServerId,
        life: u64,
        upto: Zxid,
        token: u64,
        disk_gen: u64,
        entries: usize,
    },
    EpochWritten {
        node: ServerId,
        life: u64,
        accepted: Epoch,
        current: Epoch,
    },
    SnapWritten {
        node: ServerId,
        life: u64,
        zxid: Zxid,
        tree_index: usize,
    },
    Fault,
    /// A link breaks with no partition: a spurious disconnect.
    Blip,
    Restart(ServerId),
    /// A paused member resumes.
    Resume {
        node: ServerId,
        life: u64,
    },
    /// One client operation: a read, a write or a sync.
    Client,
}

impl Event {
    /// The member an event happens on, if it is one a paused member cannot take part in.
    fn member(&self) -> Option<ServerId> {
        match self {
            Event::Tick(id) => Some(*id),
            Event::Deliver { to, .. } => Some(*to),
            Event::PeerLost { node, .. }
            | Event::Synced { node, .. }
            | Event::EpochWritten { node, .. }
            | Event::SnapWritten { node, .. } => Some(*node),
            _ => None,
        }
    }
}

/// A server's disk: what survives a crash.
#[derive(Clone, Debug)]
struct Disk {
    snap_tree: Tree,
    log: Vec<(Zxid, Payload)>,
    /// The first `synced` records of `log` are durable.
    synced: usize,
    /// Bumped by truncation, so a sync issued before it marks nothing after it.
    generation: u64,
    accepted: Epoch,
    current: Epoch,
}

struct Node {
    id: ServerId,
    config: Config,
    replica: Option<Replica>,
    life: u64,
    disk: Disk,
    tree: Tree,
    /// Client writes this node proposed as leader, by zxid: (client, seq).
    proposed: BTreeMap<Zxid, (u64, u64)>,
    disk_free_at: u64,
    /// Serves clients, as the server's mode does: from `BecameLeader`/`BecameFollower`/
    /// `BecameObserver` until `BecameLooking` or a crash, through a learner's
    /// resynchronisations with the same leader.
    serving: bool,
    /// Frozen (SIGSTOP): events for it wait in `deferred` until it resumes.
    paused: bool,
    deferred: Vec<Event>,
    /// How far this member's clock is behind the sim's: only with `stale_leader`, where a
    /// paused member's clock stops as one that counts ticks does.
    clock_lag: u64,
    /// Leader: syncs waiting for a read round (round, sync id, zxid to wait for, member
    /// whose client sent it).
    reads: Vec<(u64, u64, Zxid, ServerId)>,
}

/// A client session as ZooKeeper's client keeps one: the member it is connected to and the
/// last zxid it has seen (`lastZxidSeen`), which a member behind it refuses to connect.
#[derive(Clone, Debug, Default)]
struct Client {
    member: Option<ServerId>,
    /// Bumped on every connection: a write is answered only on the connection it was sent on.
    conn: u64,
    seen: Zxid,
    next_seq: u64,
    /// Writes sent on this connection and not answered yet: the session's reads wait behind
    /// them (per-session FIFO), so the sim issues none meanwhile.
    waiting: BTreeSet<Zxid>,
    /// A `sync` sent on this connection and not answered: everything else waits behind it.
    sync: Option<u64>,
}

/// A client's `sync`, then a read once it is answered.
#[derive(Clone, Debug)]
struct PendingSync {
    client: usize,
    conn: u64,
    member: ServerId,
    sent_at: u64,
    /// The largest zxid any client had been answered for when the sync was sent: the read
    /// after it must hold it.
    after: Zxid,
    /// Set by the leader's answer: the member answers once its tree holds this zxid.
    target: Option<Zxid>,
}

/// A client write proposed at `zxid`, to be answered by `member` once it applies it.
#[derive(Clone, Debug)]
struct PendingWrite {
    client: usize,
    seq: u64,
    member: ServerId,
    conn: u64,
    /// The largest zxid any client had been answered for when this write was sent: a
    /// linearizable history commits this write after it.
    after: Zxid,
}

/// One run of the simulator.
pub struct Sim {
    scenario: Scenario,
    rng: Rng,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, Event)>>,
    nodes: BTreeMap<ServerId, Node>,
    /// Partition: servers in different groups cannot talk. Empty means healed.
    groups: BTreeMap<ServerId, u32>,
    link_free_at: BTreeMap<(ServerId, ServerId), u64>,
    /// The connection generation of each directed link `(from, to)`.
    link_gen: BTreeMap<(ServerId, ServerId), u64>,
    /// A broken link is re-dialled: frames sent before this time are lost.
    link_down_until: BTreeMap<(ServerId, ServerId), u64>,
    trees: Vec<Tree>,
    faults_on: bool,
    no_faults: bool,
    /// Clients connect to members behind what they have seen (a broken client, to show
    /// that the read checker notices).
    careless_clients: bool,
    /// The leader answers `sync` from its own state and a paused member's clock stops while it
    /// is frozen, as zoocore did before issue 10: the sync checker must catch it.
    stale_leader: bool,
    trace: bool,
    // checker state
    leaders: BTreeMap<Epoch, ServerId>,
    committed: BTreeMap<Zxid, (Payload, u64)>,
    acked: BTreeMap<Zxid, (u64, u64)>,
    client_last_committed: BTreeMap<u64, u64>,
    clients: Vec<Client>,
    pending: BTreeMap<Zxid, PendingWrite>,
    /// The largest zxid a client has been answered for.
    answered_max: Zxid,
    /// Every committed create, by path: the zxid that created it (the global history reads
    /// are checked against).
    created: BTreeMap<String, Zxid>,
    /// The zxids of committed creates, ascending.
    created_order: Vec<Zxid>,
    syncs: BTreeMap<u64, PendingSync>,
    next_sync: u64,
    report: Report,
}

const CLIENTS: usize = 4;

impl Sim {
    pub fn new(scenario: Scenario) -> Sim {
        let mut rng = Rng::new(scenario.seed);
        let voters: Vec<ServerId> = (1..=scenario.voters as u64).collect();
        let observers: Vec<ServerId> = (0..scenario.observers as u64)
            .map(|i| scenario.voters as u64 + 1 + i)
            .collect();
        let finalize = rng.below(2);
        let mut nodes = BTreeMap::new();
        for id in voters.iter().chain(&observers).copied() {
            let config = Config {
                myid: id,
                voters: voters.clone(),
                observers: observers.clone(),
                init_limit_ms: 10 * TICK,
                sync_limit_ms: 5 * TICK,
                finalize_wait_ms: finalize * TICK,
                history_retain: 8 + rng.below(24) as usize,
            };
            let disk = Disk {
                snap_tree: Tree::new(),
                log: Vec::new(),
                synced: 0,
                generation: 0,
                accepted: Epoch(0),
                current: Epoch(0),
            };
            nodes.insert(
                id,
                Node {
                    id,
                    config,
                    replica: None,
                    life: 0,
                    tree: Tree::new(),
                    disk,
                    proposed: BTreeMap::new(),
                    disk_free_at: 0,
                    serving: false,
                    paused: false,
                    deferred: Vec::new(),
                    clock_lag: 0,
                    reads: Vec::new(),
                },
            );
        }
        let mut sim = Sim {
            scenario,
            rng,
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            nodes,
            groups: BTreeMap::new(),
            link_free_at: BTreeMap::new(),
            link_gen: BTreeMap::new(),
            link_down_until: BTreeMap::new(),
            trees: Vec::new(),
            faults_on: true,
            no_faults: false,
            careless_clients: false,
            stale_leader: false,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            acked: BTreeMap::new(),
            client_last_committed: BTreeMap::new(),
            clients: vec![Client::default(); CLIENTS],
            pending: BTreeMap::new(),
            answered_max: Zxid::ZERO,
            created: BTreeMap::new(),
            created_order: Vec::new(),
            syncs: BTreeMap::new(),
            next_sync: 0,
            report: Report::default(),
        };
        let ids: Vec<ServerId> = sim.nodes.keys().copied().collect();
        for id in ids {
            sim.start(id);
            let offset = sim.rng.below(TICK);
            sim.schedule(offset, Event::Tick(id));
        }
        sim.schedule(TICK * 5, Event::Fault);
        sim.schedule(TICK * 7, Event::Blip);
        sim.schedule(TICK * 3, Event::Client);
        sim
    }

    /// Turns off crashes and partitions (the network's loss and delays stay as scenario
    /// says): for scenario tests that want a calm ensemble.
    pub fn without_faults(mut self) -> Sim {
        self.no_faults = true;
        self
    }

    /// Clients ignore their lastZxidSeen when they connect, as no ZooKeeper client does: the
    /// checkers must then see a client read go back in time.
    pub fn with_careless_clients(mut self) -> Sim {
        self.careless_clients = true;
        self
    }

    /// Leaders answer `sync` without a read round and paused members' clocks stop, as before
    /// issue 10: the sync checker must see a stale read after sync.
    pub fn with_stale_leader(mut self) -> Sim {
        self.stale_leader = true;
        self
    }

    fn fail(&self, what: String) -> Failure {
        Failure {
            seed: self.scenario.seed,
            ticks: self.scenario.ticks,
            time: self.now,
            what,
        }
    }

    fn schedule(&mut self, delay: u64, event: Event) {
        self.seq += 1;
        self.events
            .push(Reverse((self.now + delay, self.seq, event)));
    }

    /// Runs the scenario: faults and writes, then a heal and a quiet period, then the final
    /// convergence checks.
    pub fn run(mut self) -> Result<Report, Failure> {
        let fault_end = self.scenario.ticks * TICK;
        let end = fault_end + 80 * TICK;
        while let Some(Reverse((t, _, event))) = self.events.pop() {
            if t > end {
                break;
            }
            self.now = t;
            if self.faults_on && t >= fault_end {
                self.heal_all();
            }
            self.handle(event)?;
        }
        self.final_checks()?;
        self.report.committed = self.committed.len();
        self.report.acked = self.acked.len();
        Ok(self.report)
    }

    fn heal_all(&mut self) {
        self.faults_on = false;
        self.groups.clear();
        let down: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| n.replica.is_none())
            .map(|n| n.id)
            .collect();
        for id in down {
            self.start(id);
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), Failure> {
        if let Some(id) = event.member() {
            let n = self.nodes.get_mut(&id).expect("node");
            if n.paused {
                // A frozen process's timer keeps no count of what it missed (its first tick
                // after resuming sees the whole pause); everything else waits, in order.
                if let Event::Tick(id) = event {
                    self.schedule(TICK, Event::Tick(id));
                } else {
                    n.deferred.push(event);
                }
                return Ok(());
            }
        }
        match event {
            Event::Tick(id) => {
                self.schedule(TICK, Event::Tick(id));
                self.tick(id)?;
            }
            Event::Resume { node, life } => self.resume(node, life)?,
            Event::Deliver {
                from,
                to,
                from_life,
                to_life,
                link_gen,
                bytes,
            } => {
                if self.nodes[&from].life != from_life
                    || self.nodes[&to].life != to_life
                    || !self.connected(from, to)
                    || self.link_gen.get(&(from, to)).copied().unwrap_or(0) != link_gen
                {
                    return Ok(());
                }
                let msg = match Message::decode(&bytes) {
                    Ok(Some((msg, used))) if used == bytes.len() => msg,
                    other => return Err(self.fail(format!("frame did not decode: {other:?}"))),
                };
                if let Message::Forward { data } = &msg {
                    return self.on_forward(from, to, data);
                }
                self.step(to, Input::Receive { from, msg })?;
            }
            Event::Synced {
                node,
                life,
                upto,
                token,
                disk_gen,
                entries,
            } => {
                let n = self.nodes.get_mut(&node).expect("node");
                if n.life != life {
                    return Ok(());
                }
                if n.disk.generation == disk_gen {
                    n.disk.synced = n.disk.synced.max(entries.min(n.disk.log.len()));
                }
                self.step(node, Input::Persisted { upto, token })?;
            }
            Event::EpochWritten {
                node,
                life,
                accepted,
                current,
            } => {
                let n = self.nodes.get_mut(&node).expect("node");
                if n.life != life {
                    return Ok(());
                }
                n.disk.accepted = n.disk.accepted.max(accepted);
                n.disk.current = n.disk.current.max(current);
                self.step(node, Input::EpochPersisted { accepted, current })?;
            }
            Event::SnapWritten {
                node,
                life,
                zxid,
                tree_index,
            } => {
                let _ = tree_index;
                if self.nodes[&node].life != life {
                    return Ok(());
                }
                self.step(node, Input::SnapshotInstalled { zxid })?;
            }
            Event::PeerLost { node, life, peer } => {
                if self.nodes[&node].life == life && self.nodes[&node].replica.is_some() {
                    self.report.peer_lost += 1;
                    self.step(node, Input::PeerLost { peer })?;
                }
            }
            Event::Fault => self.fault()?,
            Event::Blip => self.blip(),
            Event::Restart(id) => {
                if self.nodes[&id].replica.is_none() {
                    self.start(id);
                }
            }
            Event::Client => {
                let d = TICK / 8 + self.rng.below(TICK / 2);
                if self.now < (self.scenario.ticks + 30) * TICK {
                    self.schedule(d, Event::Client);
                    self.client_op()?;
                }
            }
        }
        Ok(())
    }

    fn connected(&self, a: ServerId, b: ServerId) -> bool {
        self.groups.get(&a).copied().unwrap_or(0) == self.groups.get(&b).copied().unwrap_or(0)
    }

    // ---- servers ----

    fn start(&mut self, id: ServerId) {
        let seed = self.rng.next_u64();
        let n = self.nodes.get_mut(&id).expect("node");
        n.life += 1;
        n.tree = n.disk.snap_tree.clone();
        n.proposed.clear();
        n.serving = false;
        n.paused = false;
        n.deferred.clear();
        n.reads.clear();
        let durable = Durable {
            accepted_epoch: n.disk.accepted,
            current_epoch: n.disk.current,
            base: n.tree.last_zxid(),
            log: n.disk.log.clone(),
        };
        n.disk.synced = n.disk.log.len();
        let mut replica = Replica::new(n.config.clone(), durable, seed);
        let actions = replica.ready();
        n.replica = Some(replica);
        // Start-up actions cannot fail a checker: they are only notifications.
        let _ = self.execute(id, actions);
    }

    fn crash(&mut self, id: ServerId) {
        let keep_extra = {
            let n = &self.nodes[&id];
            let unsynced = n.disk.log.len() - n.disk.synced;
            self.rng.below(unsynced as u64 + 1) as usize
        };
        let n = self.nodes.get_mut(&id).expect("node");
        if n.replica.is_none() {
            return;
        }
        n.replica = None;
        n.serving = false;
        n.paused = false;
        n.deferred.clear();
        n.reads.clear();
        n.life += 1;
        if self.trace {
            println!("{:>7} {id} CRASH", self.now);
        }
        // Unsynced writes are lost, except a torn tail's random prefix the OS had written.
        let keep = n.disk.synced + keep_extra;
        n.disk.log.truncate(keep);
        n.disk.synced = n.disk.log.len();
        self.report.crashes += 1;
        self.disconnect_clients(id);
        // The dead process's sockets close: every peer soon reads the end of its link from
        // `id`. Its own inbound links die with it.
        let others: Vec<ServerId> = self.nodes.keys().copied().filter(|o| *o != id).collect();
        for o in others {
            let notice = self.rng.below(TICK / 2);
            self.break_link(id, o, Some(notice), 0);
            self.break_link(o, id, None, 0);
        }
    }

    /// Breaks the connection `from` -> `to`: frames in flight on it are lost, frames sent in
    /// the next `down_for` are lost while it is re-dialled, and `to` feeds
    /// `PeerLost { peer: from }` after `notice` (never, for `None`: a connection cut by a
    /// partition may go unnoticed until the protocol's own timeouts).
    fn break_link(&mut self, from: ServerId, to: ServerId, notice: Option<u64>, down_for: u64) {
        *self.link_gen.entry((from, to)).or_insert(0) += 1;
        let until = self.now + down_for;
        let slot = self.link_down_until.entry((from, to)).or_insert(0);
        *slot = (*slot).max(until);
        if self.trace {
            println!(
                "{:>7} {from}->{to} LINK BROKEN (notice {notice:?})",
                self.now
            );
        }
        if let Some(delay) = notice {
            let life = self.nodes[&to].life;
            self.schedule(
                delay,
                Event::PeerLost {
                    node: to,
                    life,
                    peer: from,
                },
            );
        }
    }

    /// A member that crashed or stopped serving closes its client connections.
    fn disconnect_clients(&mut self, id: ServerId) {
        for c in &mut self.clients {
            if c.member == Some(id) {
                c.member = None;
                c.waiting.clear();
                c.sync = None;
            }
        }
    }

    fn step(&mut self, id: ServerId, input: Input) -> Result<(), Failure> {
        if self.trace && !matches!(input, Input::Tick { .. }) {
            println!("{:>7} {id} <- {input:?}", self.now);
        }
        let n = self.nodes.get_mut(&id).expect("node");
        let Some(replica) = n.replica.as_mut() else {
            return Ok(());
        };
        if let Err(e) = replica.step(input) {
            return Err(self.fail(format!("server {id} refused an input: {e}")));
        }
        let actions = replica.ready();
        self.execute(id, actions)
    }

    fn execute(&mut self, id: ServerId, actions: Vec<Action>) -> Result<(), Failure> {
        for action in actions {
            self.execute_one(id, action)?;
        }
        Ok(())
    }

    fn disk_delay(&mut self, id: ServerId) -> u64 {
        let d = 5 + self.rng.below(40);
        let n = self.nodes.get_mut(&id).expect("node");
        let at = (self.now + d).max(n.disk_free_at);
        n.disk_free_at = at;
        at - self.now
    }

    fn execute_one(&mut self, id: ServerId, action: Action) -> Result<(), Failure> {
        if self.trace {
            println!("{:>7} {id} -> {action:?}", self.now);
        }
        match action {
            Action::Send { to, msg } => self.send(id, to, &msg),
            Action::Append { zxid, data } => {
                if let Some(last) = self.nodes[&id].disk.log.last() {
                    if last.0 >= zxid {
                        let last = last.0;
                        return Err(self.fail(format!("server {id} appended {zxid} after {last}")));
                    }
                }
                let n = self.nodes.get_mut(&id).expect("node");
                n.disk.log.push((zxid, data));
            }
            Action::Truncate { after } => {
                self.report.truncs += 1;
                let n = self.nodes.get_mut(&id).expect("node");
                n.disk.log.retain(|e| e.0 <= after);
                n.disk.synced = n.disk.synced.min(n.disk.log.len());
                n.disk.generation += 1;
            }
            Action::Sync { upto, token } => {
                let delay = self.disk_delay(id);
                let n = &self.nodes[&id];
                let entries = n.disk.log.iter().take_while(|e| e.0 <= upto).count();
                let event = Event::Synced {
                    node: id,
                    life: n.life,
                    upto,
                    token,
                    disk_gen: n.disk.generation,
                    entries,
                };
                self.schedule(delay, event);
            }
            Action::PersistEpoch { accepted, current } => {
                let delay = self.disk_delay(id);
                let life = self.nodes[&id].life;
                self.schedule(
                    delay,
                    Event::EpochWritten {
                        node: id,
                        life,
                        accepted,
                        current,
                    },
                );
            }
            Action::Commit { zxid, data } => self.apply(id, zxid, &data)?,
            Action::SendSnapshot {
                to,
                conn,
                zxid,
                keep,
            } => {
                self.report.snaps += 1;
                let tree = self.nodes[&id].tree.clone();
                if tree.last_zxid() != zxid {
                    return Err(self.fail(format!(
                        "server {id} asked for a snapshot at {zxid}, tree is at {}",
                        tree.last_zxid()
                    )));
                }
                self.trees.push(tree);
                let index = (self.trees.len() - 1) as u64;
                let data: Payload = Arc::from(index.to_be_bytes().as_slice());
                self.send(
                    id,
                    to,
                    &Message::Snap {
                        conn,
                        zxid,
                        keep,
                        data,
                    },
                );
            }
            Action::InstallSnapshot { zxid, data } => {
                let index = u64::from_be_bytes(data[..8].try_into().expect("8 bytes")) as usize;
                let tree = self.trees[index].clone();
                self.check_state(id, zxid, &tree)?;
                let delay = self.disk_delay(id);
                let n = self.nodes.get_mut(&id).expect("node");
                // The sim installs a snapshot durably at once (a simplification: a real
                // driver writes the snapshot file, then drops the log); the completion comes
                // after the disk's delay.
                n.disk.snap_tree = tree.clone();
                let dropped = n.disk.log.iter().take_while(|e| e.0 <= zxid).count();
                n.disk.log.drain(..dropped);
                n.disk.synced = n.disk.synced.saturating_sub(dropped);
                n.disk.generation += 1;
                n.tree = tree;
                let life = n.life;
                self.schedule(
                    delay,
                    Event::SnapWritten {
                        node: id,
                        life,
                        zxid,
                        tree_index: index,
                    },
                );
            }
            Action::BecameLooking => {
                let n = self.nodes.get_mut(&id).expect("node");
                n.proposed.clear();
                n.serving = false;
                n.reads.clear();
                self.disconnect_clients(id);
            }
            Action::LeadershipConfirmed { round } => self.confirmed(id, round)?,
            Action::BecameLeader { epoch } => {
                self.report.elections += 1;
                self.nodes.get_mut(&id).expect("node").serving = true;
                if let Some(other) = self.leaders.insert(epoch, id) {
                    if other != id {
                        return Err(
                            self.fail(format!("two leaders in epoch {epoch}: {other} and {id}"))
                        );
                    }
                }
                let replica = self.nodes[&id].replica.as_ref().expect("running");
                for (zxid, (client, seq)) in &self.acked {
                    if !replica.has(*zxid) || *zxid > replica.last_zxid() {
                        return Err(self.fail(format!(
                            "leader {id} of epoch {epoch} lacks acknowledged write {zxid} (client {client} seq {seq})"
                        )));
                    }
                }
            }
            Action::BecameFollower { .. } | Action::BecameObserver { .. } => {
                self.nodes.get_mut(&id).expect("node").serving = true;
            }
        }
        Ok(())
    }

    fn send(&mut self, from: ServerId, to: ServerId, msg: &Message) {
        let bytes = msg.encode();
        let key = (from, to);
        if self
            .link_down_until
            .get(&key)
            .is_some_and(|t| *t > self.now)
        {
            return;
        }
        if !self.faults_on {
            // The quiet period: a healed network delivers in order.
        } else if self.rng.percent(self.scenario.loss_percent) {
            return;
        }
        let mut delay = 1 + self.rng.below(30);
        let reorder = self.faults_on && self.rng.percent(self.scenario.reorder_percent);
        if reorder {
            delay += self.rng.below(3 * TICK);
        } else {
            let free = self.link_free_at.get(&key).copied().unwrap_or(0);
            let at = (self.now + delay).max(free);
            self.link_free_at.insert(key, at);
            delay = at - self.now;
        }
        let event = Event::Deliver {
            from,
            to,
            from_life: self.nodes[&from].life,
            to_life: self.nodes[&to].life,
            link_gen: self.link_gen.get(&key).copied().unwrap_or(0),
            bytes,
        };
        if self.faults_on && self.rng.percent(self.scenario.dup_percent) {
            self.schedule(delay, event.clone());
        }
        self.schedule(delay, event);
    }

    // ---- the state machine and its checkers ----

    fn apply(&mut self, id: ServerId, zxid: Zxid, data: &Payload) -> Result<(), Failure> {
        let (time_ms, txn) = decode_entry(data);
        let n = self.nodes.get_mut(&id).expect("node");
        let prev = n.tree.last_zxid();
        if zxid <= prev {
            return Err(self.fail(format!("server {id} committed {zxid} after {prev}")));
        }
        n.tree.apply(zxid, time_ms, &txn);
        let digest = n.tree.digest();
        let leading = n
            .replica
            .as_ref()
            .is_some_and(|r| r.role() == RoleKind::Leading);
        let client = n.proposed.remove(&zxid);
        // Committed prefixes agree: no committed zxid skipped, same bytes, same digest.
        if let Some((z, _)) = self.committed.range(prev..zxid).find(|(z, _)| **z > prev) {
            return Err(self.fail(format!(
                "server {id} committed {zxid} after {prev}, skipping committed {z}"
            )));
        }
        match self.committed.get(&zxid) {
            Some((bytes, d)) => {
                if bytes != data {
                    return Err(
                        self.fail(format!("server {id} committed different bytes at {zxid}"))
                    );
                }
                if *d != digest {
                    return Err(self.fail(format!("server {id} digest differs at {zxid}")));
                }
            }
            None => {
                if let Some((z, _)) = self.committed.range(zxid..).next() {
                    return Err(self.fail(format!(
                        "server {id} committed {zxid}, new, below committed {z}"
                    )));
                }
                self.committed.insert(zxid, (data.clone(), digest));
                self.check_pending(zxid, &txn)?;
                if let Txn::Create { path, .. } = &txn {
                    self.created.insert(path.clone(), zxid);
                    self.created_order.push(zxid);
                }
                if let Some((c, seq)) = client_of(&txn) {
                    let last = self.client_last_committed.insert(c, seq);
                    if last.is_some_and(|l| l >= seq) {
                        return Err(self.fail(format!(
                            "client {c}: write {seq} committed after write {last:?}"
                        )));
                    }
                }
            }
        }
        if leading {
            if let Some(cs) = client {
                self.acked.insert(zxid, cs);
            }
        }
        self.answer_write(id, zxid)?;
        self.answer_syncs(id)
    }

    /// The first commit of a client's write, anywhere: it is the transaction proposed at that
    /// zxid, and it comes after every write any client had been answered for before it was
    /// sent (real-time order: writes are linearizable).
    fn check_pending(&self, zxid: Zxid, txn: &Txn) -> Result<(), Failure> {
        let Some(w) = self.pending.get(&zxid) else {
            return Ok(());
        };
        if client_of(txn) != Some((w.client as u64, w.seq)) {
            return Err(self.fail(format!(
                "committed {zxid} is not client {} write {} proposed there",
                w.client, w.seq
            )));
        }
        if zxid <= w.after {
            return Err(self.fail(format!(
                "client {} write {} committed at {zxid}, not after {} that a client had been answered for before it was sent",
                w.client, w.seq, w.after
            )));
        }
        Ok(())
    }

    /// The member a write was sent to answers its client once it applies it, if the
    /// connection it came on is still open (else the client saw a connection loss).
    fn answer_write(&mut self, id: ServerId, zxid: Zxid) -> Result<(), Failure> {
        if self.pending.get(&zxid).is_none_or(|w| w.member != id) {
            return Ok(());
        }
        let w = self.pending.remove(&zxid).expect("present");
        let client = &mut self.clients[w.client];
        if client.conn != w.conn || client.member != Some(id) {
            return Ok(());
        }
        client.waiting.remove(&zxid);
        if zxid < client.seen {
            let seen = client.seen;
            return Err(self.fail(format!(
                "client {} answered for write {zxid} after it had seen {seen}",
                w.client
            )));
        }
        client.seen = zxid;
        self.answered_max = self.answered_max.max(zxid);
        self.report.answered += 1;
        Ok(())
    }

    fn check_state(&self, id: ServerId, zxid: Zxid, tree: &Tree) -> Result<(), Failure> {
        if zxid == Zxid::ZERO {
            return Ok(());
        }
        match self.committed.get(&zxid) {
            Some((_, d)) if *d == tree.digest() => Ok(()),
            Some(_) => Err(self.fail(format!(
                "server {id} installed a snapshot at {zxid} with another digest"
            ))),
            None => Err(self.fail(format!(
                "server {id} installed a snapshot at uncommitted {zxid}"
            ))),
        }
    }

    // ---- clients ----

    /// One operation of a random client. A client without a connection (its member crashed
    /// or went Looking) connects first, and now and then one moves on its own, as a client
    /// working through its server list does.
    fn client_op(&mut self) -> Result<(), Failure> {
        let c = self.rng.below(CLIENTS as u64) as usize;
        if self.clients[c].member.is_none() || self.rng.percent(3) {
            self.connect(c);
        }
        let Some(member) = self.clients[c].member else {
            return Ok(());
        };
        if let Some(id) = self.clients[c].sync {
            // Everything of the session waits behind its sync; one never answered (its
            // forward was lost, its leader gave up) ends as the client's session timeout
            // would: with a new connection.
            if self.syncs[&id].sent_at + 30 * TICK < self.now {
                self.syncs.remove(&id);
                self.clients[c].member = None;
                self.clients[c].sync = None;
            }
            return Ok(());
        }
        if self.nodes[&member].paused {
            return Ok(()); // a frozen member answers nothing; the client waits
        }
        match self.rng.below(4) {
            0 | 1 => self.client_write(c, member),
            2 => self.client_read(c, member),
            _ => self.client_sync(c, member),
        }
    }

    /// Connects to a random serving member that has seen everything the client has: a
    /// ZooKeeper server refuses a client whose lastZxidSeen is past its own last zxid.
    fn connect(&mut self, c: usize) {
        let seen = self.clients[c].seen;
        let candidates: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| n.serving && !n.paused)
            .filter(|n| self.careless_clients || n.tree.last_zxid() >= seen)
            .map(|n| n.id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        let member = candidates[self.rng.below(candidates.len() as u64) as usize];
        let client = &mut self.clients[c];
        client.member = Some(member);
        client.conn += 1;
        client.waiting.clear();
        client.sync = None;
        if self.trace {
            println!(
                "{:>7} client {c} connects to {member} (seen {seen})",
                self.now
            );
        }
    }

    /// A create sent to `member`, which forwards it to the leader it follows (or proposes it,
    /// leading); a member that does not serve, or whose leader is unreachable or not
    /// established, never answers it.
    fn client_write(&mut self, c: usize, member: ServerId) -> Result<(), Failure> {
        let Some(r) = self.nodes[&member].replica.as_ref() else {
            return Ok(());
        };
        let serving = self.nodes[&member].serving;
        let Some(leader) = r.leader().filter(|_| serving) else {
            return Ok(());
        };
        if !self.connected(member, leader) {
            return Ok(());
        }
        if self.nodes[&leader].paused {
            return Ok(());
        }
        let Some(zxid) = self.nodes[&leader]
            .replica
            .as_ref()
            .and_then(|r| r.next_zxid())
        else {
            return Ok(());
        };
        let client = &mut self.clients[c];
        client.next_seq += 1;
        client.waiting.insert(zxid);
        let (seq, conn) = (client.next_seq, client.conn);
        let time_ms = (self.now / TICK) as i64;
        let n = self.nodes.get_mut(&leader).expect("node");
        // Prep against the tree plus the outstanding proposals (ZooKeeper's outstanding
        // changes), which are the log entries after the tree.
        let mut spec = n.tree.clone();
        for (z, d) in &n.disk.log {
            if *z > spec.last_zxid() {
                let (t, txn) = decode_entry(d);
                spec.apply(*z, t, &txn);
            }
        }
        let op = Op::Create {
            path: format!("/c{c}-{seq:08}"),
            data: Some(seq.to_be_bytes().to_vec()),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: -1,
        };
        let ctx = PrepContext {
            session: SessionId(0),
            auth: &[],
            zxid,
            time_ms,
            enforce_quota: false,
        };
        let txn = spec.prepare(&op, &ctx);
        let data = encode_entry(time_ms, &txn);
        n.proposed.insert(zxid, (c as u64, seq));
        let after = self.answered_max;
        self.pending.insert(
            zxid,
            PendingWrite {
                client: c,
                seq,
                member,
                conn,
                after,
            },
        );
        self.step(leader, Input::Propose { zxid, data })
    }

    /// A read served by `member` from its committed tree, checked: (a) it is not older than
    /// anything the client has seen; (b) the member's tree is the global committed state at
    /// its last zxid (same digest), and the node read and the node count are what the global
    /// history says they were at that zxid.
    fn client_read(&mut self, c: usize, member: ServerId) -> Result<(), Failure> {
        let n = &self.nodes[&member];
        if !self.clients[c].waiting.is_empty() || !n.serving {
            return Ok(());
        }
        let tree = &n.tree;
        let at = tree.last_zxid();
        let seen = self.clients[c].seen;
        if at < seen {
            return Err(self.fail(format!(
                "client {c} read state at {at} from server {member} after seeing {seen}"
            )));
        }
        if at != Zxid::ZERO {
            match self.committed.get(&at) {
                None => {
                    return Err(self.fail(format!(
                        "client {c} read state at uncommitted {at} from server {member}"
                    )))
                }
                Some((_, d)) if *d != tree.digest() => {
                    return Err(self.fail(format!(
                        "client {c} read state at {at} from server {member} with another digest"
                    )))
                }
                Some(_) => {}
            }
        }
        // The clients' creates are the only transactions, on top of an empty tree's nodes.
        let count = self.created_order.partition_point(|z| *z <= at);
        let nodes = tree.node_count().saturating_sub(Tree::new().node_count());
        if nodes != count {
            return Err(self.fail(format!(
                "client {c} read {nodes} nodes at {at} from server {member}, history says {count}"
            )));
        }
        let k = self.rng.below(CLIENTS as u64) as usize;
        let seq = 1 + self.rng.below(self.clients[k].next_seq.max(1));
        let path = format!("/c{k}-{seq:08}");
        let got = tree
            .get(&path)
            .map(|node| (node.data().map(<[u8]>::to_vec), node.stat().czxid));
        let want = self
            .created
            .get(&path)
            .filter(|z| **z <= at)
            .map(|z| (Some(seq.to_be_bytes().to_vec()), z.0));
        if got != want {
            return Err(self.fail(format!(
                "client {c} read {path} at {at} from server {member}: {got:?}, history says {want:?}"
            )));
        }
        self.clients[c].seen = at;
        self.report.reads += 1;
        Ok(())
    }

    // ---- sync ----

    /// A `sync` from client `c` to `member`: answered by the member's leader once a read round
    /// confirmed its leadership (the leader's last zxid then is the point to wait for), and
    /// by the member once its tree reached that point; then the client reads.
    fn client_sync(&mut self, c: usize, member: ServerId) -> Result<(), Failure> {
        let n = &self.nodes[&member];
        let Some(leader) = n.replica.as_ref().and_then(|r| r.leader()) else {
            return Ok(());
        };
        if !n.serving {
            return Ok(());
        }
        self.next_sync += 1;
        let id = self.next_sync;
        let client = &mut self.clients[c];
        client.sync = Some(id);
        let sync = PendingSync {
            client: c,
            conn: client.conn,
            member,
            sent_at: self.now,
            after: self.answered_max,
            target: None,
        };
        self.syncs.insert(id, sync);
        if leader == member {
            self.leader_read(member, id, member)
        } else {
            let mut data = vec![FORWARD_SYNC];
            data.extend_from_slice(&id.to_be_bytes());
            let msg = Message::Forward {
                data: Arc::from(data),
            };
            self.send(member, leader, &msg);
            Ok(())
        }
    }

    /// A driver-level FORWARD between members: a sync for the leader, or its answer.
    fn on_forward(&mut self, from: ServerId, to: ServerId, data: &[u8]) -> Result<(), Failure> {
        if self.nodes[&to].replica.is_none() {
            return Ok(());
        }
        let mut r = Reader::new(data);
        let kind = data.first().copied();
        r.read_u8().expect("kind");
        let id = r.read_i64().expect("sync id") as u64;
        match kind {
            Some(FORWARD_SYNC) => self.leader_read(to, id, from),
            Some(FORWARD_SYNC_DONE) => {
                let target = Zxid(r.read_i64().expect("target"));
                let leader = self.nodes[&to].replica.as_ref().and_then(|r| r.leader());
                if leader != Some(from) {
                    return Ok(()); // an answer from a leader this member left
                }
                if let Some(s) = self.syncs.get_mut(&id).filter(|s| s.member == to) {
                    s.target = Some(target);
                }
                self.answer_syncs(to)
            }
            other => Err(self.fail(format!("unknown forward kind {other:?}"))),
        }
    }

    /// Leader `id`: sync `sync` of a client of `origin` waits for a read round, then its
    /// answer carries the leader's last zxid as of now.
    fn leader_read(&mut self, id: ServerId, sync: u64, origin: ServerId) -> Result<(), Failure> {
        let n = self.nodes.get_mut(&id).expect("node");
        let Some(replica) = n.replica.as_mut() else {
            return Ok(());
        };
        let target = replica.last_zxid();
        if self.stale_leader {
            if replica.next_zxid().is_none() {
                return Ok(());
            }
            return self.sync_done(id, sync, target, origin);
        }
        let Ok(round) = replica.read_index() else {
            return Ok(()); // not an established leader: the sync is never answered
        };
        let actions = replica.ready();
        n.reads.push((round, sync, target, origin));
        self.execute(id, actions)
    }

    fn confirmed(&mut self, id: ServerId, round: u64) -> Result<(), Failure> {
        let n = self.nodes.get_mut(&id).expect("node");
        let (done, wait): (Vec<_>, Vec<_>) = n.reads.drain(..).partition(|r| r.0 <= round);
        n.reads = wait;
        for (_, sync, target, origin) in done {
            self.sync_done(id, sync, target, origin)?;
        }
        Ok(())
    }

    fn sync_done(
        &mut self,
        leader: ServerId,
        sync: u64,
        target: Zxid,
        origin: ServerId,
    ) -> Result<(), Failure> {
        if origin != leader {
            let mut data = vec![FORWARD_SYNC_DONE];
            data.extend_from_slice(&sync.to_be_bytes());
            data.extend_from_slice(&target.0.to_be_bytes());
            let msg = Message::Forward {
                data: Arc::from(data),
            };
            self.send(leader, origin, &msg);
            return Ok(());
        }
        if let Some(s) = self.syncs.get_mut(&sync).filter(|s| s.member == leader) {
            s.target = Some(target);
        }
        self.answer_syncs(leader)
    }

    /// Member `id` answers the syncs whose point its tree reached, and their clients read:
    /// the read must hold every write acknowledged before the sync was sent.
    fn answer_syncs(&mut self, id: ServerId) -> Result<(), Failure> {
        let at = self.nodes[&id].tree.last_zxid();
        let ready: Vec<u64> = self
            .syncs
            .iter()
            .filter(|(_, s)| s.member == id && s.target.is_some_and(|t| t <= at))
            .map(|(k, _)| *k)
            .collect();
        for k in ready {
            let s = self.syncs.remove(&k).expect("present");
            let client = &self.clients[s.client];
            if client.conn != s.conn || client.member != Some(id) || client.sync != Some(k) {
                continue;
            }
            self.clients[s.client].sync = None;
            if at < s.after {
                return Err(self.fail(format!(
                    "client {} read at {at} from server {id} after sync, but {} was acknowledged before the sync was sent",
                    s.client, s.after
                )));
            }
            self.report.synced_reads += 1;
            self.client_read(s.client, id)?;
        }
        Ok(())
    }

    // ---- pauses ----

    fn tick(&mut self, id: ServerId) -> Result<(), Failure> {
        let now_ms = self.now - self.nodes[&id].clock_lag;
        self.step(id, Input::Tick { now_ms })
    }

    /// Freezes `id` (SIGSTOP) for `d`.
    fn pause(&mut self, id: ServerId, d: u64) {
        let n = self.nodes.get_mut(&id).expect("node");
        if n.replica.is_none() || n.paused {
            return;
        }
        n.paused = true;
        if self.stale_leader {
            n.clock_lag += d;
        }
        let life = n.life;
        self.report.pauses += 1;
        if self.trace {
            println!("{:>7} {id} PAUSED for {d}", self.now);
        }
        self.schedule(d, Event::Resume { node: id, life });
    }

    /// SIGCONT: the time first (the clock jumped by the pause), then what waited, in order.
    fn resume(&mut self, id: ServerId, life: u64) -> Result<(), Failure> {
        let n = self.nodes.get_mut(&id).expect("node");
        if n.life != life || !n.paused {
            return Ok(());
        }
        n.paused = false;
        let deferred = std::mem::take(&mut n.deferred);
        if self.trace {
            println!("{:>7} {id} RESUMED", self.now);
        }
        self.tick(id)?;
        for event in deferred {
            self.handle(event)?;
        }
        Ok(())
    }

    // ---- faults ----

    fn fault(&mut self) -> Result<(), Failure> {
        if !self.faults_on || self.no_faults {
            return Ok(());
        }
        let d = TICK * (3 + self.rng.below(20));
        self.schedule(d, Event::Fault);
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        let leader = self
            .nodes
            .values()
            .find(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.role() == RoleKind::Leading)
            })
            .map(|n| n.id);
        let before = self.groups.clone();
        match self.rng.below(8) {
            7 => {
                // Freeze the leader (or anyone), often for longer than syncLimit.
                let id = if self.rng.below(2) == 0 {
                    leader.unwrap_or(ids[0])
                } else {
                    ids[self.rng.below(ids.len() as u64) as usize]
                };
                let d = TICK * (2 + self.rng.below(14));
                self.pause(id, d);
                return Ok(());
            }
            0 | 1 => {
                let id = if self.rng.below(2) == 0 {
                    leader.unwrap_or(ids[0])
                } else {
                    ids[self.rng.below(ids.len() as u64) as usize]
                };
                self.crash(id);
                let d = TICK * (2 + self.rng.below(30));
                self.schedule(d, Event::Restart(id));
            }
            2 => {
                // Isolate the leader.
                self.groups.clear();
                if let Some(l) = leader {
                    self.groups.insert(l, 1);
                }
            }
            3 => {
                // Isolate a random minority (or, with observers, any subset).
                self.groups.clear();
                let k = 1 + self.rng.below(ids.len() as u64 / 2);
                for _ in 0..k {
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    self.groups.insert(id, 1);
                }
            }
            4 => {
                // Split three ways: no side may have a quorum.
                self.groups.clear();
                for id in &ids {
                    let g = self.rng.below(3) as u32;
                    self.groups.insert(*id, g);
                }
            }
            _ => self.groups.clear(),
        }
        self.cut_links(&before);
        Ok(())
    }

    /// The links a new partition cuts break; each receiver notices or not, at random.
    fn cut_links(&mut self, before: &BTreeMap<ServerId, u32>) {
        let group = |g: &BTreeMap<ServerId, u32>, id: ServerId| g.get(&id).copied().unwrap_or(0);
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for &a in &ids {
            for &b in &ids {
                let was = group(before, a) == group(before, b);
                if a != b && was && !self.connected(a, b) {
                    let notice = (self.rng.below(2) == 0).then(|| self.rng.below(3 * TICK));
                    self.break_link(a, b, notice, 0);
                }
            }
        }
    }

    /// A spurious disconnect: one link breaks with no partition, its receiver notices, and
    /// the link is re-dialled after a while.
    fn blip(&mut self) {
        if !self.faults_on || self.no_faults {
            return;
        }
        let d = TICK * (2 + self.rng.below(25));
        self.schedule(d, Event::Blip);
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        let a = ids[self.rng.below(ids.len() as u64) as usize];
        let b = ids[self.rng.below(ids.len() as u64) as usize];
        if a != b {
            let notice = self.rng.below(TICK);
            let down_for = self.rng.below(2 * TICK);
            self.break_link(a, b, Some(notice), down_for);
        }
    }

    // ---- the end ----

    fn final_checks(&self) -> Result<(), Failure> {
        let serving: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.replica.as_ref().is_some_and(|r| r.is_serving()))
            .collect();
        if serving.len() != self.nodes.len() {
            let states: Vec<String> = self
                .nodes
                .values()
                .map(|n| {
                    let r = n.replica.as_ref().expect("all restarted");
                    format!(
                        "{}:{:?}/{:?}/{}",
                        n.id,
                        r.role(),
                        r.leader(),
                        r.is_serving()
                    )
                })
                .collect();
            return Err(self.fail(format!(
                "after healing, not every server serves: {}",
                states.join(" ")
            )));
        }
        let leaders: BTreeSet<Option<ServerId>> = serving
            .iter()
            .map(|n| n.replica.as_ref().and_then(|r| r.leader()))
            .collect();
        if leaders.len() != 1 {
            return Err(self.fail(format!("after healing, several leaders: {leaders:?}")));
        }
        let first = serving[0];
        for n in &serving {
            if n.tree.last_zxid() != first.tree.last_zxid()
                || n.tree.digest() != first.tree.digest()
            {
                return Err(self.fail(format!(
                    "after healing, server {} is at {} and server {} at {}",
                    n.id,
                    n.tree.last_zxid(),
                    first.id,
                    first.tree.last_zxid()
                )));
            }
            for (zxid, (client, seq)) in &self.acked {
                if !n.tree.exists(&format!("/c{client}-{seq:08}")) {
                    return Err(self.fail(format!(
                        "server {} lost acknowledged write {zxid} (client {client} seq {seq})",
                        n.id
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A log entry as the sim's driver writes it: the leader's time, then the txn.
fn encode_entry(time_ms: i64, txn: &Txn) -> Payload {
    let mut bytes = time_ms.to_be_bytes().to_vec();
    bytes.extend_from_slice(&txn.to_bytes());
    Arc::from(bytes)
}

fn decode_entry(data: &[u8]) -> (i64, Txn) {
    let mut r = Reader::new(data);
    let time_ms = r.read_i64().expect("entry time");
    let txn = Txn::from_bytes(r.rest()).expect("entry txn");
    (time_ms, txn)
}

fn client_of(txn: &Txn) -> Option<(u64, u64)> {
    let Txn::Create { path, .. } = txn else {
        return None;
    };
    let rest = path.strip_prefix("/c")?;
    let (c, s) = rest.split_once('-')?;
    Some((c.parse().ok()?, s.parse().ok()?))
}

/// Runs one seed with the default length.
pub fn run_seed(seed: u64, ticks: u64) -> Result<Report, Failure> {
    Sim::new(Scenario::from_seed(seed, ticks)).run()
}
