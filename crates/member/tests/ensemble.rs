//! Ensemble members on one thread: real `Member`s on `MemDevice`s, frames passed between
//! them by a tiny in-order network, time advanced by hand. Scenarios read like scripts:
//! start three, write through a follower, check every member; the same pipeline the server
//! runs, with no process or socket.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use zoocore_member::forward::Forward;
use zoocore_member::msg::{CommitBatch, Committed, CoreOp, CoreRequest, Origin, Outcome, ToCore};
use zoocore_member::{
    Durable, Effect, EnsembleConfig, Input, Latency, LeadershipAsk, Member, MemberConfig, Message,
    Now, Role, ZabConfig,
};
use zoocore_proto::{Acl, CreateMode, ErrorCode, SessionId, Zxid};
use zoocore_storage::{new_log, LogOptions, MemDevice, SyncHandle};
use zoocore_tree::{Op, OpResult, Tree};

const TICK_MS: u64 = 100;
const STEP_MS: u64 = 10;

struct Node {
    member: Member<MemDevice>,
    dev: MemDevice,
    published: Vec<Arc<CommitBatch>>,
    role: Role,
    /// A paused member is neither stepped nor delivered to (a SIGSTOP).
    paused: bool,
    /// The member's role each time it closed every client connection.
    closes: Vec<Role>,
}

struct Cluster {
    nodes: BTreeMap<u64, Node>,
    /// Frames in flight, delivered in order.
    wire: VecDeque<(u64, u64, Vec<u8>)>,
    /// Members cut off from every other: frames from or to them are lost.
    cut: Vec<u64>,
    now: Now,
    next_xid: i32,
    /// Every frame delivered: sender, receiver, whether it was a FORWARD.
    delivered: Vec<(u64, u64, bool)>,
}

fn member_config(id: u64) -> MemberConfig {
    MemberConfig {
        first_session: (id as i64) << 56,
        tick_ms: TICK_MS,
        snap_count: 1_000_000,
        seed: id,
        batch_txns_max: 1024,
        force_sync: true,
        container_check_interval_ms: 500,
        enforce_quota: false,
        purge_interval_ms: 0,
        snap_retain_count: 3,
    }
}

impl Cluster {
    fn new(voters: &[u64], observers: &[u64]) -> Self {
        Self::build(voters, observers, None)
    }

    fn build(voters: &[u64], observers: &[u64], read_only_after_ms: Option<u64>) -> Self {
        Self::build_with(voters, observers, read_only_after_ms, false)
    }

    /// `masters`: every voter is an observer master (`observerMasterPort`).
    fn build_with(
        voters: &[u64],
        observers: &[u64],
        read_only_after_ms: Option<u64>,
        masters: bool,
    ) -> Self {
        let now = Now {
            mono_ms: 0,
            wall_ms: 1_000_000,
        };
        let mut nodes = BTreeMap::new();
        for &id in voters.iter().chain(observers) {
            let ens = EnsembleConfig {
                zab: ZabConfig {
                    myid: id,
                    voters: voters.to_vec(),
                    observers: observers.to_vec(),
                    init_limit_ms: 10 * TICK_MS,
                    sync_limit_ms: 5 * TICK_MS,
                    finalize_wait_ms: 0,
                    history_retain: 64,
                    config_version: Zxid::ZERO,
                    reconfig_of: zoocore_member::reconfig::reconfig_of,
                    observer_masters: masters,
                },
                durable: Durable::default(),
                seed: id,
                time_spacing_ms: STEP_MS / 2,
                read_only_after_ms,
            };
            let dev = MemDevice::new();
            let log = new_log(
                dev.clone(),
                LogOptions {
                    prealloc_bytes: 256 << 10,
                    snap_count: 1_000_000,
                    database_id: 1,
                },
            );
            // Every member writes the ensemble's configuration, as the server does.
            let mut tree = Tree::with_extended_types(true);
            let text: String = voters
                .iter()
                .map(|v| format!("server.{v}=10.0.0.{v}:2888:3888:participant;2181\n"))
                .chain(
                    observers
                        .iter()
                        .map(|o| format!("server.{o}=10.0.0.{o}:2888:3888:observer;2181\n")),
                )
                .chain(["version=0".to_string()])
                .collect();
            tree.set_config_node(text.as_bytes(), 0, now.wall_ms);
            let member = Member::new_ensemble(member_config(id), ens, tree, log, now);
            nodes.insert(
                id,
                Node {
                    member,
                    dev,
                    published: Vec::new(),
                    role: Role::Looking,
                    paused: false,
                    closes: Vec::new(),
                },
            );
        }
        let mut c = Cluster {
            nodes,
            wire: VecDeque::new(),
            cut: Vec::new(),
            now,
            next_xid: 1,
            delivered: Vec::new(),
        };
        c.settle();
        c
    }

    fn step(&mut self, id: u64, input: Input<MemDevice>) {
        let now = self.now;
        self.nodes
            .get_mut(&id)
            .expect("a member")
            .member
            .step(now, input);
    }

    /// Carries out every member's effects and delivers every frame until nothing moves.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                if self.nodes[&id].paused {
                    continue;
                }
                loop {
                    let now = self.now;
                    let effects = self.nodes.get_mut(&id).expect("node").member.ready(now);
                    if effects.is_empty() {
                        break;
                    }
                    moved = true;
                    for e in effects {
                        self.carry_out(id, e);
                    }
                }
            }
            while let Some((from, to, frame)) = self.wire.pop_front() {
                if self.nodes[&to].paused || self.cut.contains(&to) || self.cut.contains(&from) {
                    continue; // lost, as on a link of a stopped process that times out
                }
                moved = true;
                let (msg, _) = Message::decode(&frame)
                    .expect("a well-formed frame")
                    .expect("a whole frame");
                self.delivered
                    .push((from, to, matches!(msg, Message::Forward { .. })));
                let input = match msg {
                    Message::Forward { data } => Input::Forward {
                        from,
                        msg: Forward::decode(&data).expect("a forward"),
                    },
                    msg => Input::Peer { from, msg },
                };
                self.step(to, input);
            }
            if !moved {
                return;
            }
        }
    }

    fn carry_out(&mut self, id: u64, effect: Effect<MemDevice>) {
        match effect {
            Effect::Sync(job) => {
                let result = job.request.handle.sync();
                self.step(id, Input::Synced { job, result });
            }
            Effect::Publish(batch) => self.nodes.get_mut(&id).expect("node").published.push(batch),
            Effect::CloseAll => {
                let node = self.nodes.get_mut(&id).expect("node");
                node.closes.push(node.role);
            }
            Effect::Send { .. } | Effect::ResetPeers | Effect::Reconfigured { .. } => {}
            Effect::Snapshot(tree) => {
                let zxid = tree.last_zxid();
                let dev = self.nodes[&id].member.log().device().clone();
                let result = zoocore_storage::write_snapshot(&dev, &tree);
                self.step(id, Input::SnapshotWritten { zxid, result });
            }
            Effect::PrepareSegment(job) => {
                let result = job.run();
                self.step(id, Input::SegmentPrepared(result));
            }
            Effect::SendPeer { to, frame } => self.wire.push_back((id, to, frame.into_vec())),
            Effect::PersistEpochs { accepted, current } => self.step(
                id,
                Input::EpochsPersisted {
                    accepted,
                    current,
                    result: Ok(()),
                },
            ),
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
            Effect::Role(role) => self.nodes.get_mut(&id).expect("node").role = role,
            Effect::Stop(reason) => panic!("member {id} stopped: {reason}"),
        }
    }

    /// Lets `ms` pass in steps, ticking every running member.
    fn advance(&mut self, ms: u64) {
        for _ in 0..ms.div_ceil(STEP_MS) {
            self.now.mono_ms += STEP_MS;
            self.now.wall_ms += STEP_MS as i64;
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                if !self.nodes[&id].paused {
                    self.step(id, Input::Tick);
                }
            }
            self.settle();
        }
    }

    fn leader(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.paused && n.role == Role::Leader)
            .map(|(id, _)| *id)
            .collect();
        assert!(leaders.len() <= 1, "two leaders serving: {leaders:?}");
        leaders.first().copied()
    }

    /// Time passes until a leader serves and every other running voter follows it.
    fn elect(&mut self) -> u64 {
        for _ in 0..300 {
            if let Some(l) = self.leader() {
                let all = self
                    .nodes
                    .values()
                    .filter(|n| !n.paused)
                    .all(|n| n.role != Role::Looking);
                if all {
                    return l;
                }
            }
            self.advance(STEP_MS);
        }
        panic!("no leader after 3 s");
    }

    fn follower(&self) -> u64 {
        *self
            .nodes
            .iter()
            .find(|(_, n)| n.role == Role::Follower && !n.paused)
            .expect("a follower")
            .0
    }

    fn send(&mut self, on: u64, session: SessionId, op: CoreOp) -> Origin {
        let origin = Origin {
            shard: 0,
            conn: 1,
            xid: self.next_xid,
        };
        self.next_xid += 1;
        self.step(
            on,
            Input::Shard(ToCore::Request(CoreRequest {
                origin: Some(origin),
                session,
                auth: Arc::from([]),
                op,
                barrier: false,
            })),
        );
        self.settle();
        origin
    }

    fn answer(&self, on: u64, origin: Origin) -> Option<&Committed> {
        let mut found = self.nodes[&on]
            .published
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.origin == Some(origin));
        let entry = found.next();
        assert!(found.next().is_none(), "answered once");
        entry
    }

    fn session(&mut self, on: u64, timeout_ms: i32) -> SessionId {
        let o = self.send(on, SessionId(0), CoreOp::CreateSession { timeout_ms });
        match self.answer(on, o).expect("session created").outcome {
            Outcome::SessionCreated { session, .. } => session,
            ref other => panic!("not a session: {other:?}"),
        }
    }

    fn write(&mut self, on: u64, session: SessionId, op: Op) -> OpResult {
        let o = self.send(on, session, CoreOp::Tree(op));
        match &self.answer(on, o).expect("answered").outcome {
            Outcome::Applied(a) => a.result.clone(),
            other => panic!("not applied: {other:?}"),
        }
    }

    fn view(&self, id: u64) -> &Tree {
        &self.nodes[&id].published.last().expect("published").view
    }

    /// Every running member shows the same tree (digest) once at the same zxid.
    fn assert_agree(&self) {
        let views: Vec<(u64, &Tree)> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.paused)
            .map(|(id, _)| (*id, self.view(*id)))
            .collect();
        let (first_id, first) = views[0];
        for (id, v) in &views[1..] {
            assert_eq!(v.last_zxid(), first.last_zxid(), "{id} and {first_id}");
            assert_eq!(v.digest(), first.digest(), "{id} and {first_id} differ");
        }
    }
}

fn create(path: &str, mode: CreateMode) -> Op {
    Op::Create {
        path: path.to_owned(),
        data: Some(b"x".to_vec().into()),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: -1,
    }
}

#[test]
fn three_voters_elect_and_a_write_through_a_follower_reaches_every_member() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let leader = c.elect();
    let f = c.follower();
    assert_ne!(f, leader);
    let s = c.session(f, 10_000);
    let r = c.write(f, s, create("/a", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    for id in [1, 2, 3] {
        assert!(c.view(id).get("/a").is_some(), "on {id}");
    }
    c.assert_agree();
}

#[test]
fn an_observer_learns_commits_and_forwards_writes() {
    let mut c = Cluster::new(&[1, 2, 3], &[4]);
    c.elect();
    assert_eq!(c.nodes[&4].role, Role::Observer);
    let s = c.session(4, 10_000);
    let r = c.write(4, s, create("/via-observer", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    c.assert_agree();
}

/// Observer masters (docs/ZAB.md): each observer learns from a follower and forwards its
/// clients' writes, syncs, session touches and reattachments through it; the follower
/// relays them to the leader and the leader's answers back. No frame passes between the
/// leader and an observer, yet every request is answered and SESSIONMOVED still holds.
#[test]
fn observers_forward_through_their_master_and_get_answers_back() {
    let (observers, voters) = ([4, 5], [1, 2, 3]);
    let mut c = Cluster::build_with(&voters, &observers, None, true);
    let leader = c.elect();
    for o in observers {
        let m = c.nodes[&o].member.observer_master();
        assert!(
            m.is_some_and(|m| m != leader),
            "observer {o} learns from {m:?}"
        );
    }
    let served: usize = voters
        .iter()
        .map(|v| c.nodes[v].member.observers_served())
        .sum();
    assert_eq!(served, 2);
    c.delivered.clear();
    let mut sessions = Vec::new();
    for o in observers {
        let s = c.session(o, 10_000);
        let r = c.write(o, s, create(&format!("/via{o}"), CreateMode::Persistent));
        assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
        let sync = c.send(o, s, CoreOp::Sync { path: "/".into() });
        assert!(c.answer(o, sync).is_some(), "the sync through {o} answered");
        sessions.push(s);
    }
    // Observer 5 takes over observer 4's session (its REVALIDATE goes through 5's master):
    // a write of it from 4 is then refused.
    c.step(
        5,
        Input::Shard(ToCore::Attach {
            session: sessions[0],
            shard: 0,
            conn: 7,
            valid: true,
        }),
    );
    c.settle();
    let r = c.write(4, sessions[0], create("/late", CreateMode::Persistent));
    assert_eq!(r, OpResult::Error(ErrorCode::SESSION_MOVED));
    let r = c.write(5, sessions[0], create("/moved", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    // Session touches reach the leader too: the sessions outlive their timeout while their
    // clients show life on the observers.
    for _ in 0..3 {
        for (o, s) in observers.iter().zip(&sessions) {
            c.step(*o, Input::Shard(ToCore::Touch(vec![*s])));
        }
        c.advance(5_000);
    }
    for s in &sessions {
        assert!(c.view(leader).session_exists(*s), "session {s:?} expired");
    }

    let direct = c
        .delivered
        .iter()
        .filter(|(f, t, _)| {
            (*f == leader && observers.contains(t)) || (*t == leader && observers.contains(f))
        })
        .count();
    assert_eq!(direct, 0, "frames between the leader and an observer");
    let relayed = c
        .delivered
        .iter()
        .filter(|(f, t, fwd)| *fwd && *t == leader && voters.contains(f))
        .count();
    assert!(
        relayed >= 6,
        "only {relayed} forwards relayed to the leader"
    );
    c.assert_agree();
}

#[test]
fn containers_and_ttl_nodes_are_reaped_by_the_leader_of_an_ensemble() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.elect();
    let f = c.follower();
    let s = c.session(f, 60_000);
    c.write(f, s, create("/box", CreateMode::Container));
    c.write(f, s, create("/box/item", CreateMode::Persistent));
    let mut ttl = create("/ttl", CreateMode::PersistentWithTtl);
    if let Op::Create { ttl_ms, .. } = &mut ttl {
        *ttl_ms = 300;
    }
    assert!(matches!(c.write(f, s, ttl), OpResult::Created { .. }));
    c.write(
        f,
        s,
        Op::Delete {
            path: "/box/item".to_owned(),
            version: -1,
        },
    );
    c.advance(1_000);
    for id in [1, 2, 3] {
        assert!(c.view(id).get("/box").is_none(), "container reaped on {id}");
        assert!(c.view(id).get("/ttl").is_none(), "TTL node reaped on {id}");
    }
    c.assert_agree();
}

#[test]
fn the_leader_expires_a_session_of_a_follower_and_its_ephemerals_go_everywhere() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    c.elect();
    let f = c.follower();
    let quiet = c.session(f, 1_000);
    let alive = c.session(f, 1_000);
    c.write(f, quiet, create("/quiet", CreateMode::Ephemeral));
    c.write(f, alive, create("/alive", CreateMode::Ephemeral));
    for _ in 0..20 {
        // The follower hears from `alive` and reports it to the leader on its ticks.
        c.step(f, Input::Shard(ToCore::Touch(vec![alive])));
        c.advance(100);
    }
    for id in [1, 2, 3] {
        let v = c.view(id);
        assert!(!v.session_exists(quiet), "expired on {id}");
        assert!(v.get("/quiet").is_none(), "its ephemeral went on {id}");
        assert!(
            v.session_exists(alive),
            "kept alive through the follower on {id}"
        );
    }
    c.assert_agree();
}

#[test]
fn a_write_from_a_moved_sessions_old_member_is_refused_with_sessionmoved() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let leader = c.elect();
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != leader).collect();
    let (old, new) = (followers[0], followers[1]);
    let s = c.session(old, 10_000);
    c.step(
        new,
        Input::Shard(ToCore::Attach {
            session: s,
            shard: 0,
            conn: 7,
            valid: true,
        }),
    );
    c.settle();
    let r = c.write(old, s, create("/late", CreateMode::Persistent));
    assert_eq!(r, OpResult::Error(ErrorCode::SESSION_MOVED));
    let r = c.write(new, s, create("/here", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
}

#[test]
fn many_writes_on_the_leader_commit_in_order_and_its_own_prep_agrees_with_the_followers() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let leader = c.elect();
    let s = c.session(leader, 10_000);
    let mut origins = Vec::new();
    for i in 0..50 {
        let o = c.send(
            leader,
            s,
            CoreOp::Tree(create(
                &format!("/n{i:02}"),
                CreateMode::PersistentSequential,
            )),
        );
        origins.push(o);
    }
    let mut last = None;
    for o in origins {
        let e = c.answer(leader, o).expect("answered");
        assert!(last < Some(e.zxid), "in zxid order");
        last = Some(e.zxid);
        assert!(
            matches!(&e.outcome, Outcome::Applied(a) if matches!(a.result, OpResult::Created { .. }))
        );
    }
    // The leader's tree (taken from its own prep) and the followers' (applied from the
    // payload) agree to the digest.
    c.assert_agree();
}

#[test]
fn a_frozen_leader_steps_down_when_it_resumes_before_answering_a_sync() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let old = c.elect();
    let s = c.session(old, 30_000);
    c.nodes.get_mut(&old).expect("node").paused = true;
    c.wire.retain(|(from, to, _)| *from != old && *to != old);
    c.advance(2_000);
    let new = c.leader().expect("a new leader");
    assert_ne!(new, old);
    let f = c.follower();
    let s2 = c.session(f, 30_000);
    c.write(f, s2, create("/after", CreateMode::Persistent));

    // The old leader resumes: the first thing it sees is the whole freeze.
    c.nodes.get_mut(&old).expect("node").paused = false;
    let published = c.nodes[&old].published.len();
    let o = c.send(
        old,
        s,
        CoreOp::Sync {
            path: "/".to_owned(),
        },
    );
    assert_ne!(c.nodes[&old].role, Role::Leader, "stepped down at once");
    // Whatever answers the sync (the new leader, once the old one rejoined as its follower)
    // answers it from a tree that holds the write acknowledged before the sync was sent.
    c.advance(1_000);
    let answer = c.nodes[&old].published[published..]
        .iter()
        .find(|b| b.entries.iter().any(|e| e.origin == Some(o)))
        .expect("answered once the old leader follows the new one");
    assert!(answer.view.get("/after").is_some(), "a stale sync answer");
    assert!(
        c.nodes[&old].published[..published]
            .iter()
            .all(|b| b.view.get("/after").is_none()),
        "the write happened after the freeze"
    );
}

/// `readonlymode.enabled`: a follower cut off from the others goes looking, and only after
/// the grace (ZooKeeper's max(2000, tickTime)) serves read-only; when the link is back it
/// follows again and closes every connection, so that read-only clients reconnect
/// read-write. An ordinary election never passes through read-only.
#[test]
fn a_cut_off_member_serves_read_only_after_the_grace_then_follows_again() {
    let mut c = Cluster::build(&[1, 2, 3], &[], Some(2_000));
    let leader = c.elect();
    assert!(c.nodes.values().all(|n| n.role != Role::ReadOnly));
    let f = c.follower();
    c.cut.push(f);
    c.advance(1_000);
    assert_eq!(
        c.nodes[&f].role,
        Role::Looking,
        "no leader, within the grace"
    );
    c.advance(2_000);
    assert_eq!(c.nodes[&f].role, Role::ReadOnly);
    assert_eq!(c.leader(), Some(leader), "the others keep their quorum");
    let closed = c.nodes[&f].closes.len();

    c.cut.clear();
    for _ in 0..300 {
        if c.nodes[&f].role == Role::Follower {
            break;
        }
        c.advance(STEP_MS);
    }
    assert_eq!(c.nodes[&f].role, Role::Follower);
    assert!(
        c.nodes[&f].closes.len() > closed,
        "read-only connections closed on leaving read-only"
    );
}

#[test]
fn a_follower_that_asks_for_leadership_leads_with_every_acknowledged_write() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let old = c.elect();
    // The lowest myid that is not the leader: an ordinary election would never pick it
    // over another follower with the same zxid.
    let target = (1..=3).find(|id| *id != old).expect("a follower");
    let s = c.session(old, 30_000);
    for i in 0..5 {
        let r = c.write(
            old,
            s,
            create(&format!("/before{i}"), CreateMode::Persistent),
        );
        assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    }
    c.step(target, Input::Leadership(LeadershipAsk::Request));
    c.settle();
    // The hand-over is a few messages and one election: no tick is needed.
    assert_eq!(c.leader(), Some(target), "roles: {:?}", roles(&c));
    let leader = c.elect();
    assert_eq!(leader, target);
    for id in [1, 2, 3] {
        for i in 0..5 {
            assert!(c.view(id).get(&format!("/before{i}")).is_some(), "{id}");
        }
    }
    // The session moves to the new leader (its client reconnects) and writes go on.
    c.step(
        target,
        Input::Shard(ToCore::Attach {
            session: s,
            shard: 0,
            conn: 7,
            valid: true,
        }),
    );
    c.settle();
    let r = c.write(target, s, create("/after", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    c.advance(STEP_MS);
    c.assert_agree();
}

#[test]
fn a_leader_yields_and_clients_are_disconnected_only_once_their_member_serves_again() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let old = c.elect();
    let s = c.session(old, 30_000);
    let r = c.write(old, s, create("/kept", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    for n in c.nodes.values_mut() {
        n.closes.clear();
    }
    // Everything is acknowledged already, so the yield hands over at once; a write that
    // arrives in the same turn waits in the former leader while it elects.
    c.step(old, Input::Leadership(LeadershipAsk::Yield { to: None }));
    let origin = Origin {
        shard: 0,
        conn: 1,
        xid: 999,
    };
    c.step(
        old,
        Input::Shard(ToCore::Request(CoreRequest {
            origin: Some(origin),
            session: s,
            auth: Arc::from([]),
            op: CoreOp::Tree(create("/during", CreateMode::Persistent)),
            barrier: false,
        })),
    );
    c.settle();
    let leader = c.elect();
    assert_ne!(leader, old, "leadership moved");
    // Every member closed its clients' connections once, and only when it served again
    // (closing them while all were electing sent reconnecting clients nowhere).
    for (id, n) in &c.nodes {
        assert_eq!(n.closes.len(), 1, "{id}: {:?}", n.closes);
        assert_ne!(n.closes[0], Role::Looking, "{id} closed while electing");
    }
    // The write that waited ended with its connection: never answered, never applied
    // (its client retries, as after any leader change).
    assert!(c.answer(old, origin).is_none());
    c.advance(STEP_MS);
    for id in [1, 2, 3] {
        assert!(c.view(id).get("/kept").is_some(), "{id} lost /kept");
        assert!(c.view(id).get("/during").is_none(), "{id} applied /during");
    }
    c.assert_agree();
}

#[test]
fn leadership_asks_where_they_cannot_be_done_change_nothing() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let old = c.elect();
    let f = c.follower();
    c.step(old, Input::Leadership(LeadershipAsk::Request));
    c.step(f, Input::Leadership(LeadershipAsk::Yield { to: None }));
    c.step(
        old,
        Input::Leadership(LeadershipAsk::Yield { to: Some(old) }),
    );
    c.settle();
    c.advance(10 * STEP_MS);
    assert_eq!(c.leader(), Some(old));
}

fn roles(c: &Cluster) -> Vec<(u64, Role)> {
    c.nodes.iter().map(|(id, n)| (*id, n.role)).collect()
}

#[test]
fn learners_time_proposals_and_commits_from_the_leaders_prep_and_the_leader_does_not() {
    let mut c = Cluster::new(&[1, 2, 3], &[4]);
    let leader = c.elect();
    let drain = |c: &mut Cluster, id: u64| {
        let mut seen = Vec::new();
        let member = &mut c.nodes.get_mut(&id).expect("node").member;
        member.drain_latencies(|kind, ms| seen.push((kind, ms)));
        seen
    };
    for id in [1, 2, 3, 4] {
        drain(&mut c, id); // whatever establishing the session recorded
    }
    let s = c.session(leader, 30_000);
    // The learners see the txn 7 ms after the leader prepared it (one clock here: the
    // time passes between the prep and the delivery).
    let origin = Origin {
        shard: 0,
        conn: 1,
        xid: 77,
    };
    c.step(
        leader,
        Input::Shard(ToCore::Request(CoreRequest {
            origin: Some(origin),
            session: s,
            auth: Arc::from([]),
            op: CoreOp::Tree(create("/timed", CreateMode::Persistent)),
            barrier: false,
        })),
    );
    let effects = c.nodes.get_mut(&leader).expect("node").member.ready(c.now);
    c.now.wall_ms += 7;
    c.now.mono_ms += 7;
    for e in effects {
        c.carry_out(leader, e);
    }
    c.settle();
    assert!(c.answer(leader, origin).is_some(), "committed");
    assert_eq!(drain(&mut c, leader), vec![], "a leader records neither");
    for f in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        let seen = drain(&mut c, f);
        assert!(seen.contains(&(Latency::Proposal, 7)), "{f}: {seen:?}");
        assert!(
            seen.contains(&(Latency::CommitPropagation, 7)),
            "{f}: {seen:?}"
        );
    }
    // An observer gets no PROPOSAL, only the commit (INFORM).
    let seen = drain(&mut c, 4);
    assert!(seen.iter().all(|(k, _)| *k == Latency::CommitPropagation));
    assert!(seen.contains(&(Latency::CommitPropagation, 7)), "{seen:?}");
    // Drained: nothing twice.
    assert_eq!(drain(&mut c, 4), vec![]);
}

#[test]
fn a_hand_over_to_a_member_that_stops_ends_in_an_ordinary_election() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let old = c.elect();
    let target = (1..=3).find(|id| *id != old).expect("a follower");
    let s = c.session(old, 30_000);
    let r = c.write(old, s, create("/kept", CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    // The target stops just as the leader hands over: the others vote for it in vain until
    // the hint lapses (syncLimit), then elect one of themselves.
    c.step(
        old,
        Input::Leadership(LeadershipAsk::Yield { to: Some(target) }),
    );
    c.nodes.get_mut(&target).expect("node").paused = true;
    c.settle();
    assert_eq!(c.leader(), None, "nobody leads while the hint holds");
    let leader = c.elect();
    assert_ne!(leader, target);
    for (id, n) in c.nodes.iter().filter(|(id, _)| **id != target) {
        assert_eq!(
            n.closes.len(),
            1,
            "{id} closed its clients once: {:?}",
            n.closes
        );
    }
    c.advance(STEP_MS);
    for id in (1..=3).filter(|id| *id != target) {
        assert!(c.view(id).get("/kept").is_some(), "{id} lost /kept");
    }
}

fn big(path: &str) -> Op {
    Op::Create {
        path: path.to_owned(),
        data: Some(vec![7; 4000].into()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    }
}

#[test]
fn a_leader_without_room_refuses_its_own_and_forwarded_writes_unproposed_and_resumes() {
    let mut c = Cluster::new(&[1, 2, 3], &[]);
    let leader = c.elect();
    let f = c.follower();
    let on_leader = c.session(leader, 60_000);
    let on_follower = c.session(f, 60_000);
    c.nodes[&leader].dev.set_capacity(Some(300 << 10));
    let mut refused = None;
    for i in 0..200 {
        let path = format!("/n{i}");
        match c.write(leader, on_leader, big(&path)) {
            OpResult::Created { .. } => {}
            other => {
                refused = Some((path, other));
                break;
            }
        }
    }
    let (path, result) = refused.expect("the leader's disk filled");
    assert_eq!(result, OpResult::Error(ErrorCode::THROTTLED_OP));
    // Never proposed: no member has it, and all agree.
    for id in [1, 2, 3] {
        assert!(c.view(id).get(&path).is_none(), "on {id}");
    }
    c.assert_agree();
    // A follower's client is refused too, through its follower, and the follower stays.
    let r = c.write(f, on_follower, big("/from-follower"));
    assert_eq!(r, OpResult::Error(ErrorCode::THROTTLED_OP));
    assert_eq!(c.nodes[&f].role, Role::Follower);
    assert!(!c.nodes[&leader].member.is_stopped());
    assert_eq!(c.nodes[&leader].member.counters().refused_for_room, 2);

    // Room returns: both go through, everywhere.
    c.nodes[&leader].dev.set_capacity(None);
    assert!(matches!(
        c.write(leader, on_leader, big(&path)),
        OpResult::Created { .. }
    ));
    assert!(matches!(
        c.write(f, on_follower, big("/from-follower")),
        OpResult::Created { .. }
    ));
    for id in [1, 2, 3] {
        assert!(c.view(id).get("/from-follower").is_some(), "on {id}");
    }
    c.assert_agree();
}

/// A reconfig request as zkCli's `-add`/`-remove` send it (skipACL: no superuser here).
fn reconfig(joining: &str, leaving: &str) -> CoreOp {
    CoreOp::Reconfig(zoocore_member::reconfig::ReconfigArgs {
        joining: joining.into(),
        leaving: leaving.into(),
        new_members: String::new(),
        from_version: -1,
        skip_acl: true,
        standalone_enabled: true,
    })
}

#[test]
fn a_second_reconfig_before_the_first_commits_is_refused_with_reconfiginprogress() {
    let mut c = Cluster::new(&[1, 2, 3], &[4]);
    let leader = c.elect();
    let s = c.session(leader, 4000);
    // Both in one round of the leader: the second is prepped while the first is only logged.
    let mut origins = Vec::new();
    for op in [
        reconfig("server.4=10.0.0.4:2888:3888:participant;2181", ""),
        reconfig("", "4"),
    ] {
        let origin = Origin {
            shard: 0,
            conn: 1,
            xid: c.next_xid,
        };
        c.next_xid += 1;
        c.step(
            leader,
            Input::Shard(ToCore::Request(CoreRequest {
                origin: Some(origin),
                session: s,
                auth: Arc::from([]),
                op,
                barrier: false,
            })),
        );
        origins.push(origin);
    }
    c.settle();
    let result = |c: &Cluster, o: Origin| match &c.answer(leader, o).expect("answered").outcome {
        Outcome::Applied(a) => a.result.clone(),
        other => panic!("not applied: {other:?}"),
    };
    let OpResult::Reconfigured { data, stat } = result(&c, origins[0]) else {
        panic!("the first reconfig: {:?}", result(&c, origins[0]));
    };
    let text = String::from_utf8(data.to_vec()).unwrap();
    assert!(
        text.contains("server.4=10.0.0.4:2888:3888:participant;0.0.0.0:2181\n"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("version={:x}", stat.mzxid)),
        "{text}"
    );
    assert_eq!(
        result(&c, origins[1]),
        OpResult::Error(ErrorCode::RECONFIG_IN_PROGRESS)
    );
    // Once it committed, the next one is taken: 4 is a voter, then removed again.
    let after = c.send(leader, s, reconfig("", "4"));
    assert!(matches!(
        &c.answer(leader, after).expect("answered").outcome,
        Outcome::Applied(a) if matches!(a.result, OpResult::Reconfigured { .. })
    ));
    c.assert_agree();
}
