//! A deterministic simulator of whole zoocore ensembles: N replicas of the real `zab` state
//! machine and real `Tree`s on one thread, driven from one seed (TigerBeetle's VOPR).
//!
//! Everything that is nondeterministic in a real deployment is drawn here from the seed: a
//! network that loses, delays, reorders and duplicates messages and partitions servers
//! (isolating the leader, a minority, or splitting so no side has a quorum); disks whose
//! unsynced writes are lost on a crash, with a torn tail that keeps a random part of them;
//! crashes and restarts; clients writing to whoever leads. Every message goes through the
//! real frame encoder and decoder. Checkers run after every event, and a failure carries the
//! seed so that `cargo run -p zoocore-sim -- --seed N` replays it exactly.
//!
//! Until the tree has a byte-level snapshot codec, a SNAP carries an index into the
//! simulator's table of tree versions instead of the tree's bytes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use zoocore_proto::{Acl, CreateMode, Reader, Record, SessionId, Zxid};
use zoocore_tree::{Op, PrepContext, Tree, Txn};
use zoocore_zab::{
    Action, Config, Durable, Epoch, Input, Message, Payload, Replica, RoleKind, ServerId,
};

/// Simulated time units in one tick.
const TICK: u64 = 100;

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
}

/// A checker's verdict against a seed.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub time: u64,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at t={} (tick {}): {}\nreplay: cargo run -p zoocore-sim -- --seed {}",
            self.seed,
            self.time,
            self.time / TICK,
            self.what,
            self.seed
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
        bytes: Vec<u8>,
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
    Restart(ServerId),
    Write,
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
    trees: Vec<Tree>,
    faults_on: bool,
    no_faults: bool,
    trace: bool,
    // checker state
    leaders: BTreeMap<Epoch, ServerId>,
    committed: BTreeMap<Zxid, (Payload, u64)>,
    acked: BTreeMap<Zxid, (u64, u64)>,
    client_last_committed: BTreeMap<u64, u64>,
    client_next_seq: BTreeMap<u64, u64>,
    report: Report,
}

const CLIENTS: u64 = 3;

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
                init_limit_ticks: 10,
                sync_limit_ticks: 5,
                finalize_wait_ticks: finalize,
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
            trees: Vec::new(),
            faults_on: true,
            no_faults: false,
            trace: std::env::var_os("SIM_TRACE").is_some(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            acked: BTreeMap::new(),
            client_last_committed: BTreeMap::new(),
            client_next_seq: BTreeMap::new(),
            report: Report::default(),
        };
        let ids: Vec<ServerId> = sim.nodes.keys().copied().collect();
        for id in ids {
            sim.start(id);
            let offset = sim.rng.below(TICK);
            sim.schedule(offset, Event::Tick(id));
        }
        sim.schedule(TICK * 5, Event::Fault);
        sim.schedule(TICK * 3, Event::Write);
        sim
    }

    /// Turns off crashes and partitions (the network's loss and delays stay as scenario
    /// says): for scenario tests that want a calm ensemble.
    pub fn without_faults(mut self) -> Sim {
        self.no_faults = true;
        self
    }

    fn fail(&self, what: String) -> Failure {
        Failure {
            seed: self.scenario.seed,
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
        match event {
            Event::Tick(id) => {
                self.schedule(TICK, Event::Tick(id));
                self.step(id, Input::Tick)?;
            }
            Event::Deliver {
                from,
                to,
                from_life,
                to_life,
                bytes,
            } => {
                if self.nodes[&from].life != from_life
                    || self.nodes[&to].life != to_life
                    || !self.connected(from, to)
                {
                    return Ok(());
                }
                let msg = match Message::decode(&bytes) {
                    Ok(Some((msg, used))) if used == bytes.len() => msg,
                    other => return Err(self.fail(format!("frame did not decode: {other:?}"))),
                };
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
            Event::Fault => self.fault()?,
            Event::Restart(id) => {
                if self.nodes[&id].replica.is_none() {
                    self.start(id);
                }
            }
            Event::Write => {
                let d = TICK / 4 + self.rng.below(TICK);
                if self.now < (self.scenario.ticks + 30) * TICK {
                    self.schedule(d, Event::Write);
                    self.client_write()?;
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
        n.life += 1;
        if self.trace {
            println!("{:>7} {id} CRASH", self.now);
        }
        // Unsynced writes are lost, except a torn tail's random prefix the OS had written.
        let keep = n.disk.synced + keep_extra;
        n.disk.log.truncate(keep);
        n.disk.synced = n.disk.log.len();
        self.report.crashes += 1;
    }

    fn step(&mut self, id: ServerId, input: Input) -> Result<(), Failure> {
        if self.trace && !matches!(input, Input::Tick) {
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
                self.nodes.get_mut(&id).expect("node").proposed.clear();
            }
            Action::BecameLeader { epoch } => {
                self.report.elections += 1;
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
            Action::BecameFollower { .. } | Action::BecameObserver { .. } => {}
        }
        Ok(())
    }

    fn send(&mut self, from: ServerId, to: ServerId, msg: &Message) {
        let bytes = msg.encode();
        if !self.faults_on {
            // The quiet period: a healed network delivers in order.
        } else if self.rng.percent(self.scenario.loss_percent) {
            return;
        }
        let mut delay = 1 + self.rng.below(30);
        let key = (from, to);
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

    fn client_write(&mut self) -> Result<(), Failure> {
        let leaders: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| n.replica.as_ref().is_some_and(|r| r.next_zxid().is_some()))
            .map(|n| n.id)
            .collect();
        if leaders.is_empty() {
            return Ok(());
        }
        let id = leaders[self.rng.below(leaders.len() as u64) as usize];
        let client = self.rng.below(CLIENTS);
        let seq = *self
            .client_next_seq
            .entry(client)
            .and_modify(|s| *s += 1)
            .or_insert(1);
        let time_ms = (self.now / TICK) as i64;
        let n = self.nodes.get_mut(&id).expect("node");
        let replica = n.replica.as_mut().expect("running");
        let zxid = replica.next_zxid().expect("leader");
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
            path: format!("/c{client}-{seq:08}"),
            data: seq.to_be_bytes().to_vec(),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: -1,
        };
        let ctx = PrepContext {
            session: SessionId(0),
            auth: &[],
            zxid,
            time_ms,
        };
        let txn = spec.prepare(&op, &ctx);
        let data = encode_entry(time_ms, &txn);
        n.proposed.insert(zxid, (client, seq));
        self.step(id, Input::Propose { zxid, data })
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
        match self.rng.below(7) {
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
        Ok(())
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
