//! A hand-driven network of replicas for targeted protocol tests: members of a 3-voter
//! ensemble on a perfect network except for what a test drops or reorders; every IO completes
//! at once. (crates/sim explores faults at random; these tests pin one interleaving each.)

#![allow(dead_code)] // each test file uses part of it

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use zoocore_zab::{Action, Config, Durable, Epoch, Input, Message, Replica, RoleKind, ServerId};

pub const INIT_LIMIT: u64 = 1000;

pub fn config(myid: ServerId) -> Config {
    Config {
        myid,
        voters: vec![1, 2, 3],
        observers: vec![],
        init_limit_ms: INIT_LIMIT,
        sync_limit_ms: INIT_LIMIT,
        finalize_wait_ms: 0,
        history_retain: 100,
        config_version: zoocore_proto::Zxid::ZERO,
        reconfig_of: zoocore_zab::no_reconfig,
        observer_masters: false,
    }
}

pub struct Net {
    pub replicas: Vec<Replica>,
    pub net: VecDeque<(ServerId, ServerId, Message)>,
    /// Every learner session (`conn`) a FOLLOWERINFO was sent for.
    pub conns: BTreeSet<u64>,
    /// The clock `tick` advances by one millisecond.
    pub now_ms: u64,
    /// The last read round each leader reported confirmed (`LeadershipConfirmed`).
    pub confirmed: BTreeMap<ServerId, u64>,
    /// Members whose log syncs never complete (a disk stalled until they crash): their
    /// `Sync` actions are dropped.
    pub unsynced: BTreeSet<ServerId>,
    /// Each member's epoch files as last written: (accepted, current).
    pub epochs: BTreeMap<ServerId, (Epoch, Epoch)>,
}

/// Members 2 and 3 (a quorum); their first notifications are not sent (ticks repeat them).
pub type Pair = Net;

impl Net {
    pub fn new() -> Net {
        Net::of(&[2, 3], false)
    }

    /// The members `ids`; `first_votes`: their first notifications are in flight.
    pub fn of(ids: &[ServerId], first_votes: bool) -> Net {
        Net::with_config(ids, first_votes, config)
    }

    /// The members `ids`, each configured by `config(id)`.
    pub fn with_config(
        ids: &[ServerId],
        first_votes: bool,
        config: impl Fn(ServerId) -> Config,
    ) -> Net {
        let mut net = Net {
            replicas: ids
                .iter()
                .map(|&id| Replica::new(config(id), Durable::default(), id))
                .collect(),
            net: VecDeque::new(),
            conns: BTreeSet::new(),
            now_ms: 0,
            confirmed: BTreeMap::new(),
            unsynced: BTreeSet::new(),
            epochs: BTreeMap::new(),
        };
        for i in 0..net.replicas.len() {
            let id = net.replicas[i].id();
            let actions = net.replicas[i].ready();
            if first_votes {
                net.execute(id, actions, &mut VecDeque::new());
            }
        }
        net
    }

    pub fn position(&self, id: ServerId) -> usize {
        self.replicas
            .iter()
            .position(|r| r.id() == id)
            .expect("a member")
    }

    pub fn replica(&self, id: ServerId) -> &Replica {
        &self.replicas[self.position(id)]
    }

    fn execute(&mut self, id: ServerId, actions: Vec<Action>, inputs: &mut VecDeque<Input>) {
        for action in actions {
            match action {
                Action::Send { to, msg } => {
                    if let Message::FollowerInfo { conn, .. } = msg {
                        self.conns.insert(conn);
                    }
                    if self.replicas.iter().any(|r| r.id() == to) {
                        self.net.push_back((id, to, msg))
                    }
                }
                Action::Sync { .. } if self.unsynced.contains(&id) => {}
                Action::Sync { upto, token } => inputs.push_back(Input::Persisted { upto, token }),
                // Snapshots carry no tree here: the replica only needs the frame and the
                // install's completion.
                Action::SendSnapshot {
                    to,
                    conn,
                    zxid,
                    keep,
                } if self.replicas.iter().any(|r| r.id() == to) => {
                    let data: zoocore_zab::Payload = zoocore_zab::Payload::from_static(b"");
                    let msg = Message::Snap {
                        conn,
                        zxid,
                        keep,
                        data,
                    };
                    self.net.push_back((id, to, msg))
                }
                Action::InstallSnapshot { zxid, .. } => {
                    inputs.push_back(Input::SnapshotInstalled { zxid })
                }
                Action::PersistEpoch { accepted, current } => {
                    self.epochs.insert(id, (accepted, current));
                    inputs.push_back(Input::EpochPersisted { accepted, current })
                }
                Action::BecameLooking => {
                    self.confirmed.remove(&id);
                }
                Action::LeadershipConfirmed { round } => {
                    let last = self.confirmed.insert(id, round).unwrap_or(0);
                    assert!(round > last, "{id} confirmed round {round} after {last}");
                }
                _ => {}
            }
        }
    }

    /// `id` crashed and starts again, configured by `config`, from what its disk kept: its
    /// epoch files and the log it had synced (`log`, after an empty base). Frames to and
    /// from it in flight are lost with its connections; its first notifications are sent.
    pub fn restart(
        &mut self,
        config: Config,
        log: Vec<(zoocore_proto::Zxid, zoocore_zab::Payload)>,
    ) {
        let id = config.myid;
        let (accepted_epoch, current_epoch) = self.epochs.get(&id).copied().unwrap_or_default();
        let durable = Durable {
            accepted_epoch,
            current_epoch,
            base: zoocore_proto::Zxid::ZERO,
            log,
        };
        let i = self.position(id);
        self.replicas[i] = Replica::new(config, durable, id + 100);
        self.net.retain(|(from, to, _)| *from != id && *to != id);
        self.unsynced.remove(&id);
        let actions = self.replicas[i].ready();
        let mut inputs = VecDeque::new();
        self.execute(id, actions, &mut inputs);
        while let Some(input) = inputs.pop_front() {
            self.step(id, input);
        }
    }

    pub fn step(&mut self, id: ServerId, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let i = self.position(id);
            self.replicas[i].step(input).expect("step");
            let actions = self.replicas[i].ready();
            self.execute(id, actions, &mut inputs);
        }
    }

    /// `id`'s read round for a read arriving now (`Replica::read_index`), its pings queued.
    pub fn read_index(&mut self, id: ServerId) -> Result<u64, zoocore_zab::StepError> {
        let i = self.position(id);
        let round = self.replicas[i].read_index()?;
        let actions = self.replicas[i].ready();
        let mut inputs = VecDeque::new();
        self.execute(id, actions, &mut inputs);
        assert!(inputs.is_empty(), "a read round wrote nothing");
        Ok(round)
    }

    /// Calls `f` on `id`'s replica outside `step` (an operator's request), then carries out
    /// the actions it produced and the completions they cause.
    pub fn call<T>(&mut self, id: ServerId, f: impl FnOnce(&mut Replica) -> T) -> T {
        let i = self.position(id);
        let out = f(&mut self.replicas[i]);
        let actions = self.replicas[i].ready();
        let mut inputs = VecDeque::new();
        self.execute(id, actions, &mut inputs);
        while let Some(input) = inputs.pop_front() {
            self.step(id, input);
        }
        out
    }

    /// The established leader proposes one transaction; its zxid.
    pub fn propose(&mut self, id: ServerId) -> zoocore_proto::Zxid {
        let zxid = self.replica(id).next_zxid().expect("an established leader");
        let data: zoocore_zab::Payload = zoocore_zab::Payload::from_static(b"txn");
        self.step(id, Input::Propose { zxid, data });
        zxid
    }

    /// Ticks and delivers (dropping what `drop` selects) until `done`, at most `ticks`
    /// times; how many ticks it took.
    pub fn run_until(
        &mut self,
        ticks: u64,
        drop: &mut dyn FnMut(ServerId, ServerId, &Message) -> bool,
        done: impl Fn(&Net) -> bool,
    ) -> Option<u64> {
        for t in 0..ticks {
            self.deliver(drop);
            if done(self) {
                return Some(t);
            }
            self.tick();
        }
        None
    }

    /// Delivers the first message in flight that `pick` selects; whether there was one.
    pub fn deliver_one(&mut self, pick: impl Fn(ServerId, ServerId, &Message) -> bool) -> bool {
        let Some(at) = self.net.iter().position(|(f, t, m)| pick(*f, *t, m)) else {
            return false;
        };
        let (from, to, msg) = self.net.remove(at).expect("present");
        self.step(to, Input::Receive { from, msg });
        true
    }

    /// Delivers everything in flight (and what it causes), dropping what `drop(from, to, msg)`
    /// selects.
    pub fn deliver(&mut self, drop: &mut dyn FnMut(ServerId, ServerId, &Message) -> bool) {
        while let Some((from, to, msg)) = self.net.pop_front() {
            if !drop(from, to, &msg) {
                self.step(to, Input::Receive { from, msg });
            }
        }
    }

    pub fn tick(&mut self) {
        self.now_ms += 1;
        let now_ms = self.now_ms;
        let ids: Vec<ServerId> = self.replicas.iter().map(Replica::id).collect();
        for id in ids {
            self.step(id, Input::Tick { now_ms });
        }
    }

    pub fn roles(&self) -> Vec<(ServerId, RoleKind, Option<ServerId>)> {
        self.replicas
            .iter()
            .map(|r| (r.id(), r.role(), r.leader()))
            .collect()
    }

    pub fn all_serving(&self) -> bool {
        self.replicas.iter().all(Replica::is_serving)
    }

    /// Every member but `id` serves.
    pub fn all_serving_but(&self, id: ServerId) -> bool {
        self.replicas.iter().all(|r| r.id() == id || r.is_serving())
    }
}
