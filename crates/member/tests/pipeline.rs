//! A standalone member's pipeline driven as the server drives it, on the fault-injecting
//! `MemDevice`: a small synchronous driver carries out each effect (fdatasync through the
//! request's handle, epoch files, snapshots and spare segments inline) or holds a sync back,
//! so a test can look at the member while a batch waits for its disk. A standalone member is
//! a one-voter ensemble: the driver fails a test on any peer frame or role change it asks
//! for. Scenarios read like scripts.

use std::sync::Arc;

use zoocore_member::msg::{
    CommitBatch, Committed, CoreOp, CoreRequest, FromCore, Origin, Outcome, ShardId, ToCore,
};
use zoocore_member::{Effect, Epoch, Input, Member, MemberConfig, Now, Role, StopReason, SyncJob};
use zoocore_proto::{Acl, CreateMode, ErrorCode, Record, SessionId, Zxid};
use zoocore_storage::{
    new_log, recover, Crash, LogError, LogOptions, MemDevice, RecoverOptions, SyncHandle,
};
use zoocore_tree::{Op, OpResult, PrepContext, Tree};

const TICK_MS: u64 = 100;
const REAP_MS: u64 = 1_000;

fn log_options() -> LogOptions {
    LogOptions {
        prealloc_bytes: 64 << 10,
        snap_count: 1_000_000,
        database_id: 1,
    }
}

fn config() -> MemberConfig {
    MemberConfig {
        first_session: 0x100,
        tick_ms: TICK_MS,
        snap_count: 1_000_000,
        seed: 1,
        batch_txns_max: 1024,
        force_sync: true,
        container_check_interval_ms: REAP_MS,
        enforce_quota: false,
        purge_interval_ms: 0,
        snap_retain_count: 3,
    }
}

/// A driver that carries out effects at once, except syncs while `hold_syncs` is set.
struct Driver {
    dev: MemDevice,
    member: Member<MemDevice>,
    now: Now,
    hold_syncs: bool,
    held: Vec<SyncJob<MemDevice>>,
    published: Vec<Arc<CommitBatch>>,
    sent: Vec<(ShardId, FromCore)>,
    snapshots: Vec<Tree>,
    hold_snapshots: bool,
    held_snapshots: Vec<Tree>,
    stopped: Option<StopReason>,
    next_xid: i32,
    /// The epoch files, as written durably (accepted, current).
    epochs: Vec<(Epoch, Epoch)>,
}

impl Driver {
    fn new(cfg: MemberConfig) -> Self {
        Self::on(MemDevice::new(), cfg, Tree::with_extended_types(true))
    }

    fn on(dev: MemDevice, cfg: MemberConfig, tree: Tree) -> Self {
        let now = Now {
            mono_ms: 0,
            wall_ms: 1_000_000,
        };
        let member = Member::new(cfg, tree, new_log(dev.clone(), log_options()), now);
        Self::around(dev, member, now)
    }

    /// Drives `member`, carrying out its first effects as the server does at start.
    fn around(dev: MemDevice, member: Member<MemDevice>, now: Now) -> Self {
        let mut d = Driver {
            dev,
            member,
            now,
            hold_syncs: false,
            held: Vec::new(),
            published: Vec::new(),
            sent: Vec::new(),
            snapshots: Vec::new(),
            hold_snapshots: false,
            held_snapshots: Vec::new(),
            stopped: None,
            next_xid: 1,
            epochs: Vec::new(),
        };
        d.run();
        d
    }

    fn advance(&mut self, ms: u64) {
        self.now.mono_ms += ms;
        self.now.wall_ms += ms as i64;
    }

    fn step(&mut self, input: Input<MemDevice>) {
        self.member.step(self.now, input);
    }

    /// Carries out effects until the member has none.
    fn run(&mut self) {
        loop {
            let effects = self.member.ready(self.now);
            if effects.is_empty() {
                return;
            }
            for effect in effects {
                self.carry_out(effect);
            }
        }
    }

    fn carry_out(&mut self, effect: Effect<MemDevice>) {
        match effect {
            Effect::Sync(job) if self.hold_syncs => self.held.push(job),
            Effect::Sync(job) => self.complete(job),
            Effect::Publish(batch) => self.published.push(batch),
            Effect::Send { shard, msg } => self.sent.push((shard, msg)),
            // Only after a restore: recorded as if sent to shard 0.
            Effect::CloseAll => self.sent.push((0, FromCore::CloseAll)),
            Effect::Snapshot(tree) => {
                self.snapshots.push(tree.clone());
                self.held_snapshots.push(tree);
                if !self.hold_snapshots {
                    self.finish_snapshots();
                }
            }
            Effect::PrepareSegment(job) => {
                let result = job.run();
                self.step(Input::SegmentPrepared(result));
            }
            Effect::PersistEpochs { accepted, current } => {
                self.epochs.push((accepted, current));
                self.step(Input::EpochsPersisted {
                    accepted,
                    current,
                    result: Ok(()),
                });
            }
            Effect::Stop(reason) => {
                assert!(self.stopped.is_none(), "stopped once");
                self.stopped = Some(reason);
            }
            other => panic!("a standalone member asked for {other:?}"),
        }
    }

    /// Writes the snapshots asked for and reports them.
    fn finish_snapshots(&mut self) {
        for tree in std::mem::take(&mut self.held_snapshots) {
            let zxid = tree.last_zxid();
            let result = zoocore_storage::write_snapshot(&self.dev, &tree);
            self.step(Input::SnapshotWritten { zxid, result });
        }
    }

    fn complete(&mut self, job: SyncJob<MemDevice>) {
        let result = job.request.handle.sync();
        self.step(Input::Synced { job, result });
    }

    /// Completes the syncs held back, then carries out what follows.
    fn release(&mut self) {
        for job in std::mem::take(&mut self.held) {
            self.complete(job);
        }
        self.run();
    }

    fn send(&mut self, session: SessionId, op: CoreOp) -> Origin {
        let origin = Origin {
            shard: 0,
            conn: 1,
            xid: self.next_xid,
        };
        self.next_xid += 1;
        self.step(Input::Shard(ToCore::Request(CoreRequest {
            origin: Some(origin),
            session,
            auth: Arc::from([]),
            op,
            barrier: false,
        })));
        origin
    }

    fn entry(&self, origin: Origin) -> &Committed {
        let mut found = self
            .published
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.origin == Some(origin));
        let entry = found.next().expect("answered");
        assert!(found.next().is_none(), "answered once");
        entry
    }

    fn session(&mut self, timeout_ms: i32) -> SessionId {
        let o = self.send(SessionId(0), CoreOp::CreateSession { timeout_ms });
        self.run();
        match self.entry(o).outcome {
            Outcome::SessionCreated { session, .. } => session,
            ref other => panic!("not a session: {other:?}"),
        }
    }

    /// Sends a write, runs the pipeline, and returns its result.
    fn write(&mut self, session: SessionId, op: Op) -> OpResult {
        let o = self.send(session, CoreOp::Tree(op));
        self.run();
        result_of(self.entry(o)).clone()
    }

    fn published_tree(&self) -> &Tree {
        &self.published.last().expect("a batch published").view
    }
}

fn result_of(entry: &Committed) -> &OpResult {
    match &entry.outcome {
        Outcome::Applied(a) => &a.result,
        other => panic!("not an applied entry: {other:?}"),
    }
}

fn create(path: &str, bytes: usize, mode: CreateMode) -> Op {
    Op::Create {
        path: path.to_owned(),
        data: Some(vec![7; bytes].into()),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: -1,
    }
}

fn delete(path: &str) -> Op {
    Op::Delete {
        path: path.to_owned(),
        version: -1,
    }
}

#[test]
fn a_batch_is_published_only_after_its_sync_and_the_next_batch_groups_what_came_meanwhile() {
    let mut d = Driver::new(config());
    let s = d.session(10_000);
    let published = d.published.len();
    d.hold_syncs = true;
    let first = d.send(s, CoreOp::Tree(create("/a", 1, CreateMode::Persistent)));
    d.run();
    assert_eq!(d.held.len(), 1, "one sync for the batch");
    assert_eq!(
        d.published.len(),
        published,
        "nothing published before the sync"
    );
    assert!(
        d.member.tree().get("/a").is_none(),
        "not committed before its sync"
    );
    assert!(
        d.published_tree().get("/a").is_none(),
        "not in what shards see"
    );

    // Requests arriving while the sync is in flight wait for it, then go in one batch.
    let later: Vec<Origin> = ["/b", "/c", "/d"]
        .iter()
        .map(|p| d.send(s, CoreOp::Tree(create(p, 1, CreateMode::Persistent))))
        .collect();
    d.run();
    assert_eq!(d.held.len(), 1, "no second sync while one is in flight");
    assert_eq!(d.published.len(), published);

    d.release();
    assert_eq!(
        d.published.len(),
        published + 1,
        "the first batch, then a held sync"
    );
    assert_eq!(d.held.len(), 1, "the second batch waits for its own sync");
    assert!(matches!(
        result_of(d.entry(first)),
        OpResult::Created { .. }
    ));
    d.release();
    assert_eq!(d.published.len(), published + 2);
    let last = d.published.last().expect("published");
    assert_eq!(last.entries.len(), 3, "one batch for the three");
    for o in later {
        assert!(matches!(result_of(d.entry(o)), OpResult::Created { .. }));
    }
    assert_eq!(d.member.log().synced_zxid(), d.member.tree().last_zxid());
    assert_eq!(
        d.member.counters().log.syncs,
        3,
        "session, first batch, second batch"
    );
}

#[test]
fn a_failed_sync_stops_the_member_and_its_batch_is_never_published() {
    let mut d = Driver::new(config());
    let s = d.session(10_000);
    let published = d.published.len();
    d.dev.fail_sync_after(0);
    let o = d.send(s, CoreOp::Tree(create("/lost", 1, CreateMode::Persistent)));
    d.run();
    match &d.stopped {
        Some(StopReason::Log(LogError::Sync { .. })) => {}
        other => panic!("stopped for the sync: {other:?}"),
    }
    assert!(d.member.is_stopped());
    assert_eq!(d.published.len(), published, "the batch is dropped");
    assert!(
        d.published
            .iter()
            .flat_map(|b| b.entries.iter())
            .all(|e| e.origin != Some(o)),
        "never answered"
    );
    // A stopped member takes nothing more.
    d.send(s, CoreOp::Tree(create("/after", 1, CreateMode::Persistent)));
    d.run();
    assert_eq!(d.published.len(), published);
    assert!(d.held.is_empty());
}

#[test]
fn what_was_published_survives_a_crash_that_loses_unsynced_writes() {
    let mut d = Driver::new(config());
    let s = d.session(10_000);
    for i in 0..20 {
        d.write(s, create(&format!("/n{i}"), 100, CreateMode::Persistent));
    }
    d.hold_syncs = true;
    d.send(
        s,
        CoreOp::Tree(create("/unsynced", 1, CreateMode::Persistent)),
    );
    d.run();
    let published = d.published_tree().clone();
    d.dev.crash(Crash::LoseUnsynced);
    let r = recover(
        d.dev.clone(),
        RecoverOptions {
            log: log_options(),
            extended_types: true,
        },
    )
    .expect("recovers");
    assert_eq!(r.tree.last_zxid(), published.last_zxid());
    assert_eq!(r.tree.digest(), published.digest());
    assert!(r.tree.get("/unsynced").is_none());
}

#[test]
fn sessions_expire_unless_touched_and_their_ephemerals_go() {
    let mut d = Driver::new(config());
    let a = d.session(1_000);
    let b = d.session(1_000);
    d.write(a, create("/a", 0, CreateMode::Ephemeral));
    d.write(b, create("/b", 0, CreateMode::Ephemeral));
    d.advance(600);
    d.step(Input::Shard(ToCore::Touch(vec![b])));
    d.step(Input::Tick);
    d.run();
    assert!(d.published_tree().session_exists(a), "not due yet");
    d.advance(500);
    d.step(Input::Tick);
    d.run();
    let closed: Vec<_> = d
        .published
        .last()
        .expect("a batch")
        .entries
        .iter()
        .filter_map(|e| e.closed_session)
        .collect();
    assert_eq!(closed, vec![a]);
    assert!(d.published_tree().get("/a").is_none(), "a's ephemeral went");
    assert!(d.published_tree().get("/b").is_some(), "b was touched");
    assert_eq!(d.member.counters().sessions, 1);
    // A request of the expired session is answered SESSIONEXPIRED, not applied.
    let r = d.write(a, create("/late", 0, CreateMode::Persistent));
    assert_eq!(r, OpResult::Error(ErrorCode::SESSION_EXPIRED));
    d.advance(1_000);
    d.step(Input::Tick);
    d.run();
    assert!(!d.published_tree().session_exists(b));
    assert!(d.published_tree().get("/b").is_none());
}

#[test]
fn empty_containers_and_expired_ttl_nodes_are_reaped_on_the_check_interval() {
    let mut d = Driver::new(config());
    let s = d.session(60_000);
    d.write(s, create("/box", 0, CreateMode::Container));
    d.write(s, create("/box/item", 0, CreateMode::Persistent));
    d.write(s, create("/never-used", 0, CreateMode::Container));
    let mut ttl = create("/ttl", 0, CreateMode::PersistentWithTtl);
    if let Op::Create { ttl_ms, .. } = &mut ttl {
        *ttl_ms = 500;
    }
    assert!(matches!(d.write(s, ttl), OpResult::Created { .. }));
    d.write(s, create("/ttl-parent", 0, CreateMode::Persistent));

    d.advance(REAP_MS);
    d.step(Input::Tick);
    d.run();
    assert!(d.published_tree().get("/box").is_some(), "has a child");
    assert!(d.published_tree().get("/ttl").is_none(), "past its TTL");
    assert!(
        d.published_tree().get("/ttl-parent").is_some(),
        "not a TTL node"
    );

    d.write(s, delete("/box/item"));
    d.advance(REAP_MS / 2);
    d.step(Input::Tick);
    d.run();
    assert!(
        d.published_tree().get("/box").is_some(),
        "not before the interval"
    );
    d.advance(REAP_MS / 2);
    d.step(Input::Tick);
    d.run();
    assert!(
        d.published_tree().get("/box").is_none(),
        "emptied container reaped"
    );
    assert!(
        d.published_tree().get("/never-used").is_some(),
        "a container that never had a child stays"
    );
}

#[test]
fn a_session_taken_over_closes_its_older_connection() {
    let mut d = Driver::new(config());
    let s = d.session(10_000);
    d.step(Input::Shard(ToCore::Attach {
        session: s,
        shard: 1,
        conn: 9,
        valid: true,
    }));
    d.run();
    assert_eq!(d.sent.len(), 1);
    match &d.sent[0] {
        (0, FromCore::CloseConnection { conn: 1, session }) => assert_eq!(*session, s),
        other => panic!("close of the old connection: {other:?}"),
    }
    // The same connection attaching again closes nothing.
    d.step(Input::Shard(ToCore::Attach {
        session: s,
        shard: 1,
        conn: 9,
        valid: true,
    }));
    d.run();
    assert_eq!(d.sent.len(), 1);
}

#[test]
fn a_snapshot_starts_after_snap_count_txns_and_never_two_at_once() {
    let mut cfg = config();
    cfg.snap_count = 10;
    let mut d = Driver::new(cfg);
    d.hold_snapshots = true;
    let s = d.session(60_000);
    for i in 0..10 {
        d.write(s, create(&format!("/n{i}"), 10, CreateMode::Persistent));
    }
    assert_eq!(d.snapshots.len(), 1, "between 5 and 10 txns in");
    let first = d.snapshots[0].last_zxid();
    assert!(
        first <= d.member.log().synced_zxid(),
        "of a durable version"
    );
    // While it is being written, no other starts, however many txns pass.
    for i in 10..40 {
        d.write(s, create(&format!("/n{i}"), 10, CreateMode::Persistent));
    }
    assert_eq!(d.snapshots.len(), 1);
    d.hold_snapshots = false;
    d.finish_snapshots();
    assert_eq!(d.member.counters().snapshots, 1);
    let names = zoocore_storage::Device::list(&d.dev).expect("list");
    assert!(
        names.iter().any(|n| n.starts_with("snapshot.")),
        "{names:?}"
    );
    // The txns logged meanwhile count toward the next one, which starts at the next batch.
    d.write(s, create("/next", 10, CreateMode::Persistent));
    assert_eq!(d.snapshots.len(), 2);
    assert!(d.snapshots[1].last_zxid() > first);
    // Then every 5 to 10 txns.
    for i in 0..40 {
        d.write(s, create(&format!("/m{i}"), 10, CreateMode::Persistent));
    }
    assert!(
        (6..=10).contains(&d.snapshots.len()),
        "{}",
        d.snapshots.len()
    );
}

#[test]
fn the_next_segment_is_prepared_ahead_through_a_job() {
    let mut d = Driver::new(config());
    let s = d.session(60_000);
    assert!(!d.member.log().has_next_segment());
    // Past half of a 64 KiB segment.
    for i in 0..40 {
        d.write(s, create(&format!("/n{i}"), 1_000, CreateMode::Persistent));
    }
    assert!(d.member.log().has_next_segment(), "a spare was adopted");
}

#[test]
fn without_force_sync_batches_are_published_without_an_fdatasync() {
    let mut cfg = config();
    cfg.force_sync = false;
    let mut d = Driver::new(cfg);
    d.hold_syncs = true;
    let s = d.session(60_000);
    let syncs = d.dev.syncs();
    d.write(s, create("/a", 1, CreateMode::Persistent));
    assert!(d.held.is_empty());
    assert_eq!(d.dev.syncs(), syncs, "no fdatasync");
    assert!(d.published_tree().get("/a").is_some());
}

#[test]
fn a_sync_request_is_answered_after_the_writes_before_it() {
    let mut d = Driver::new(config());
    let s = d.session(60_000);
    d.hold_syncs = true;
    d.send(s, CoreOp::Tree(create("/a", 1, CreateMode::Persistent)));
    let sync = d.send(
        s,
        CoreOp::Sync {
            path: "/a".to_owned(),
        },
    );
    d.run();
    d.release();
    let entry = d.entry(sync);
    assert!(matches!(entry.outcome, Outcome::Synced { .. }));
    assert_eq!(entry.zxid, d.published_tree().last_zxid());
}

#[test]
fn a_write_without_room_is_refused_unapplied_and_writes_resume_with_room() {
    let mut d = Driver::new(config());
    let s = d.session(10_000);
    d.write(s, create("/a", 10, CreateMode::Persistent));
    d.dev.set_capacity(Some(64 << 10));
    let mut refused = None;
    for i in 0..100 {
        let path = format!("/n{i}");
        let o = d.send(s, CoreOp::Tree(create(&path, 4000, CreateMode::Persistent)));
        d.run();
        if matches!(result_of(d.entry(o)), OpResult::Error(_)) {
            refused = Some((path, o));
            break;
        }
    }
    let (path, o) = refused.expect("the disk filled");
    let entry = d.entry(o);
    assert_eq!(result_of(entry), &OpResult::Error(ErrorCode::THROTTLED_OP));
    assert_eq!(entry.zxid, d.member.tree().last_zxid(), "no zxid taken");
    assert!(d.member.tree().get(&path).is_none(), "not applied");
    assert!(!d.member.log().is_poisoned());
    assert!(!d.member.is_stopped());
    assert_eq!(d.member.counters().refused_for_room, 1);

    // A new session has no room either: its connection is closed, with no entry.
    let handshake = d.send(SessionId(0), CoreOp::CreateSession { timeout_ms: 10_000 });
    d.run();
    assert!(d
        .published
        .iter()
        .flat_map(|b| b.entries.iter())
        .all(|e| e.origin != Some(handshake)));
    match d.sent.last() {
        Some((0, FromCore::CloseConnection { conn: 1, session })) => {
            assert_eq!(*session, SessionId(0))
        }
        other => panic!("the handshake's connection closed: {other:?}"),
    }

    // Room returns: the same write goes through with the next zxid after the last one.
    d.dev.set_capacity(None);
    let last = d.member.tree().last_zxid();
    let o = d.send(s, CoreOp::Tree(create(&path, 4000, CreateMode::Persistent)));
    d.run();
    assert!(matches!(result_of(d.entry(o)), OpResult::Created { .. }));
    assert_eq!(d.entry(o).zxid, last.next());
}

#[test]
fn an_expiry_without_room_comes_due_again() {
    let mut d = Driver::new(config());
    let s = d.session(1_000);
    // An ephemeral with a long name makes the close txn (which lists it) larger than the
    // filler writes, so it cannot slip into the tail they leave.
    let long = format!("/e{}", "x".repeat(3000));
    d.write(s, create(&long, 0, CreateMode::Ephemeral));
    d.dev.set_capacity(Some(64 << 10));
    for i in 0..100 {
        let r = d.write(s, create(&format!("/n{i}"), 2000, CreateMode::Persistent));
        if matches!(r, OpResult::Error(_)) {
            break;
        }
    }
    d.advance(60_000);
    d.step(Input::Tick);
    d.run();
    assert!(d.member.tree().session_exists(s), "the close was refused");
    d.dev.set_capacity(None);
    d.advance(60_000);
    d.step(Input::Tick);
    d.run();
    let closed = d
        .published
        .last()
        .expect("a batch")
        .entries
        .iter()
        .any(|e| e.closed_session == Some(s));
    assert!(closed, "due again, and closed");
    assert!(!d.published_tree().session_exists(s));
    assert!(
        d.published_tree().get(&long).is_none(),
        "its ephemeral went"
    );
}

#[test]
fn sessions_in_a_recovered_tree_are_given_their_timeout_from_the_start() {
    let dev = MemDevice::new();
    let mut d = Driver::on(dev.clone(), config(), Tree::new());
    let s = d.session(1_000);
    let tree = d.published_tree().clone();
    // A new member over the same state, as after a restart.
    let mut again = Driver::on(MemDevice::new(), config(), tree);
    again.advance(900);
    again.step(Input::Tick);
    again.run();
    assert!(again.published.is_empty(), "not yet due");
    again.advance(200);
    again.step(Input::Tick);
    again.run();
    assert!(!again.published_tree().session_exists(s));
}

#[test]
fn a_restored_snapshot_replaces_the_data_and_survives_recovery() {
    let mut d = Driver::new(config());
    let s = d.session(10_000);
    d.write(s, create("/old", 1, CreateMode::Persistent));
    // The operator's snapshot: the tree as published now.
    let taken = d.published_tree().clone();
    d.write(s, create("/new", 1, CreateMode::Persistent));
    d.write(s, delete("/old"));
    let before = d.published_tree().last_zxid();
    d.hold_syncs = true;
    // A write in flight when the restore arrives: it is published first, then restored over.
    d.send(
        s,
        CoreOp::Tree(create("/inflight", 1, CreateMode::Persistent)),
    );
    d.run();
    d.step(Input::Restore(taken.clone()));
    d.run();
    assert!(
        d.member.take_restored().is_none(),
        "waits for the batch in flight"
    );
    d.hold_syncs = false;
    d.release();
    let zxid = d
        .member
        .take_restored()
        .expect("restored")
        .expect("no error");
    assert!(zxid > before, "restored at {zxid}, after {before}");
    let view = d.published_tree();
    assert_eq!(view.last_zxid(), zxid);
    assert!(view.get("/old").is_some() && view.get("/new").is_none());
    assert!(view.get("/inflight").is_none());
    // Clients reconnect: every connection is closed.
    assert!(d.sent.iter().any(|(_, m)| matches!(m, FromCore::CloseAll)));
    // The session in the snapshot is still valid, and writes go on after the restore.
    let r = d.write(s, create("/after", 1, CreateMode::Persistent));
    assert!(matches!(r, OpResult::Created { .. }), "{r:?}");
    let published = d.published_tree().clone();
    let r = recover(
        d.dev.clone(),
        RecoverOptions {
            log: log_options(),
            extended_types: true,
        },
    )
    .expect("recovers");
    assert_eq!(r.tree.last_zxid(), published.last_zxid());
    assert_eq!(r.tree.digest(), published.digest());
    assert!(r.tree.get("/old").is_some() && r.tree.get("/new").is_none());
    assert!(r.tree.get("/after").is_some());
}

#[test]
fn a_standalone_member_leads_its_own_epoch_at_once_and_reports_standalone() {
    let mut d = Driver::new(config());
    // Elected with no tick and no peer: its new epoch durable (accepted, then current)
    // before it serves.
    let one = Epoch(1);
    assert_eq!(d.epochs, vec![(one, Epoch(0)), (one, one)]);
    assert_eq!(d.member.role(), Role::Standalone);
    let s = d.session(10_000);
    let o = d.send(s, CoreOp::Tree(create("/a", 1, CreateMode::Persistent)));
    d.run();
    assert_eq!(d.entry(o).zxid, Zxid::new(1, 2), "the session, then /a");
    assert_eq!(d.member.counters().learners, 0);
    // Its leadership never lapses for want of followers: an hour on, it still decides
    // (the session expires) and takes writes in the same epoch.
    d.advance(3_600_000);
    d.step(Input::Tick);
    d.run();
    assert!(
        !d.published_tree().session_exists(s),
        "expired by its leader"
    );
    let s = d.session(10_000);
    let o = d.send(s, CoreOp::Tree(create("/b", 1, CreateMode::Persistent)));
    d.run();
    assert!(matches!(result_of(d.entry(o)), OpResult::Created { .. }));
    assert_eq!(d.entry(o).zxid.epoch(), 1);
    assert_eq!(d.epochs.len(), 2, "no election since");
}

#[test]
fn a_data_dir_of_the_standalone_code_before_epochs_keeps_its_data_and_starts_epoch_1() {
    // What the standalone pipeline wrote before it ran a replica: zxids of epoch 0, no
    // epoch files (the log is all there is).
    let dev = MemDevice::new();
    let mut log = new_log(dev.clone(), log_options());
    let mut tree = Tree::with_extended_types(true);
    for (i, path) in ["/old", "/old/a", "/old/b"].iter().enumerate() {
        let zxid = Zxid::new(0, i as u32 + 1);
        let ctx = PrepContext {
            session: SessionId(0),
            auth: &[],
            zxid,
            time_ms: 1_000,
            enforce_quota: false,
        };
        let txn = tree.prepare(&create(path, 3, CreateMode::Persistent), &ctx);
        log.append(zxid, 1_000, &txn.to_bytes()).expect("room");
        tree.apply(zxid, 1_000, &txn);
    }
    let request = log.sync_begin().expect("syncs").expect("unsynced");
    let result = request.handle.sync();
    log.sync_end(request, result).expect("synced");
    drop(log);

    let recovered = || {
        recover(
            dev.clone(),
            RecoverOptions {
                log: log_options(),
                extended_types: true,
            },
        )
        .expect("recovers")
    };
    let r = recovered();
    assert_eq!(r.last_zxid, Zxid::new(0, 3));
    let now = Now {
        mono_ms: 0,
        wall_ms: 2_000,
    };
    let mut d = Driver::around(dev.clone(), Member::new(config(), r.tree, r.log, now), now);
    assert_eq!(d.epochs.last(), Some(&(Epoch(1), Epoch(1))));
    assert!(d.member.tree().get("/old/b").is_some(), "its data kept");
    let s = d.session(10_000);
    let o = d.send(s, CoreOp::Tree(create("/old/c", 1, CreateMode::Persistent)));
    d.run();
    assert!(matches!(result_of(d.entry(o)), OpResult::Created { .. }));
    assert_eq!(d.entry(o).zxid, Zxid::new(1, 2));

    // After a crash, the old records and the new ones replay together, and the next run
    // takes the epoch after the log's last.
    dev.crash(Crash::LoseUnsynced);
    let r = recovered();
    assert_eq!(r.last_zxid, Zxid::new(1, 2));
    for path in ["/old", "/old/a", "/old/b", "/old/c"] {
        assert!(r.tree.get(path).is_some(), "{path} survived");
    }
    let d = Driver::around(dev.clone(), Member::new(config(), r.tree, r.log, now), now);
    assert_eq!(d.epochs.last(), Some(&(Epoch(2), Epoch(2))));
}
