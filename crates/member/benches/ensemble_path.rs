//! The members' share of a 3-voter setData: a batch of setData requests of 1 KiB values on
//! distinct keys, sent to the three members in turn as the campaign's connections are (a
//! third on the leader, two thirds forwarded by the followers), carried through prep, the
//! proposals, the acks, the commits and publication on every member, with the frames
//! encoded and decoded as the server's peer links do (`Message::decode`, then
//! `Forward::decode` for a FORWARD) and every fdatasync completed at once on the in-memory
//! devices. The three members' work together is what the campaign's "per server
//! CPU-second" counts, less the kernel's (sockets, the disk) and the shards'. Time per write
//! is noisy on a shared machine; the figure to compare before and after a change is the
//! instruction count per write, noise-free under callgrind:
//!
//! ```text
//! cargo bench -p zoocore-member --bench ensemble_path --no-run
//! ENSEMBLE_PATH_BATCHES=100 valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     --toggle-collect='ensemble_path::Ensemble::batch' \
//!     target/release/deps/ensemble_path-<hash> --bench
//! callgrind_annotate cg.out | grep TOTALS     # instructions of 100 x 96 writes
//! ```

use std::collections::VecDeque;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use zoocore_member::forward::Forward;
use zoocore_member::msg::{CoreOp, CoreRequest, Origin, Outcome, ToCore};
use zoocore_member::{
    Durable, Effect, EnsembleConfig, Input, Member, Message, Now, Role, ZabConfig,
};
use zoocore_proto::{SessionId, Zxid};
use zoocore_storage::MemDevice;
use zoocore_tree::Tree;

mod common;
use common::{
    batches_from_env, bench_set_data, create_op, group, mem_log, member_config, run_counted, KEYS,
};

const VOTERS: [u64; 3] = [1, 2, 3];
const TICK_MS: u64 = 100;

struct Ensemble {
    members: Vec<Member<MemDevice>>,
    roles: Vec<Role>,
    /// The effects list the rounds reuse.
    effects: Vec<Effect<MemDevice>>,
    /// Frames in flight: sender index, receiver index, frame.
    wire: VecDeque<(usize, usize, Vec<u8>)>,
    now: Now,
    xid: i32,
    /// One session per member, created through it.
    sessions: Vec<SessionId>,
    /// Entries published with an origin (answers to this bench's requests), per member.
    answered: Vec<usize>,
    /// The last session a published entry created, per member.
    created: Vec<Option<SessionId>>,
}

impl Ensemble {
    fn new() -> Self {
        let now = Now {
            mono_ms: 0,
            wall_ms: 1_000_000,
        };
        let members = VOTERS
            .iter()
            .map(|&id| {
                let ens = EnsembleConfig {
                    zab: ZabConfig {
                        myid: id,
                        voters: VOTERS.to_vec(),
                        observers: Vec::new(),
                        init_limit_ms: 10 * TICK_MS,
                        sync_limit_ms: 5 * TICK_MS,
                        finalize_wait_ms: 0,
                        history_retain: 64,
                        config_version: Zxid::ZERO,
                        reconfig_of: zoocore_member::reconfig::reconfig_of,
                        observer_masters: false,
                    },
                    durable: Durable::default(),
                    seed: id,
                    time_spacing_ms: 5,
                    read_only_after_ms: None,
                };
                let log = mem_log();
                let tree = Tree::with_extended_types(true);
                Member::new_ensemble(member_config((id as i64) << 56, id), ens, tree, log, now)
            })
            .collect();
        let mut e = Ensemble {
            members,
            roles: vec![Role::Looking; VOTERS.len()],
            effects: Vec::new(),
            wire: VecDeque::new(),
            now,
            xid: 1,
            sessions: vec![SessionId(0); VOTERS.len()],
            answered: vec![0; VOTERS.len()],
            created: vec![None; VOTERS.len()],
        };
        e.elect();
        for m in 0..VOTERS.len() {
            e.send(m, CoreOp::CreateSession { timeout_ms: 30_000 });
            e.settle();
            e.sessions[m] = e.created[m].expect("a session created");
        }
        for k in 0..KEYS {
            e.send(k % VOTERS.len(), create_op(k));
        }
        e.settle();
        e
    }

    /// Ticks until one member leads and the others follow it.
    fn elect(&mut self) {
        for _ in 0..1_000 {
            let leaders = self.roles.iter().filter(|r| **r == Role::Leader).count();
            let followers = self.roles.iter().filter(|r| **r == Role::Follower).count();
            if leaders == 1 && followers == VOTERS.len() - 1 {
                return;
            }
            self.now.mono_ms += 10;
            self.now.wall_ms += 10;
            for m in 0..self.members.len() {
                self.members[m].step(self.now, Input::Tick);
            }
            self.settle();
        }
        panic!("no leader elected: {:?}", self.roles);
    }

    fn send(&mut self, m: usize, op: CoreOp) {
        let origin = Origin {
            shard: 0,
            conn: 1,
            xid: self.xid,
        };
        self.xid = self.xid.wrapping_add(1);
        let request = CoreRequest {
            origin: Some(origin),
            session: self.sessions[m],
            auth: Arc::from([]),
            op,
            barrier: false,
        };
        self.members[m].step(self.now, Input::Shard(ToCore::Request(request)));
    }

    /// Carries out every member's effects and delivers every frame until nothing moves.
    fn settle(&mut self) {
        loop {
            let mut moved = false;
            for m in 0..self.members.len() {
                loop {
                    // As the server's core does: one list, emptied and reused every round.
                    let mut effects = std::mem::take(&mut self.effects);
                    self.members[m].ready_into(self.now, &mut effects);
                    if effects.is_empty() {
                        self.effects = effects;
                        break;
                    }
                    moved = true;
                    for effect in effects.drain(..) {
                        self.carry_out(m, effect);
                    }
                    self.effects = effects;
                }
            }
            while let Some((from, to, frame)) = self.wire.pop_front() {
                moved = true;
                let (msg, _) = Message::decode(&frame)
                    .expect("a well-formed frame")
                    .expect("a whole frame");
                let from = VOTERS[from];
                let input = match msg {
                    Message::Forward { data } => Input::Forward {
                        from,
                        msg: Forward::decode(&data).expect("a forward"),
                    },
                    msg => Input::Peer { from, msg },
                };
                self.members[to].step(self.now, input);
            }
            if !moved {
                return;
            }
        }
    }

    fn carry_out(&mut self, m: usize, effect: Effect<MemDevice>) {
        match effect {
            // Completed without the in-memory device's sync: that copies the whole segment
            // into its crash image, a cost of the test device alone.
            Effect::Sync(job) => {
                let result = Ok(());
                self.members[m].step(self.now, Input::Synced { job, result });
            }
            Effect::Publish(batch) => {
                for e in &batch.entries {
                    if e.origin.is_some() {
                        self.answered[m] += 1;
                    }
                    if let Outcome::SessionCreated { session, .. } = e.outcome {
                        if e.origin.is_some() {
                            self.created[m] = Some(session);
                        }
                    }
                }
            }
            Effect::SendPeer { to, frame } => {
                let to = VOTERS.iter().position(|v| *v == to).expect("a voter");
                // One buffer, as the receiver's socket gives it (the kernel's copy).
                self.wire.push_back((m, to, frame.into_vec()));
            }
            Effect::PrepareSegment(job) => {
                let result = job.run();
                self.members[m].step(self.now, Input::SegmentPrepared(result));
            }
            Effect::PersistEpochs { accepted, current } => {
                let persisted = Input::EpochsPersisted {
                    accepted,
                    current,
                    result: Ok(()),
                };
                self.members[m].step(self.now, persisted);
            }
            Effect::Role(role) => self.roles[m] = role,
            Effect::Stop(reason) => panic!("member {} stopped: {reason}", VOTERS[m]),
            _ => {}
        }
    }

    /// One batch through the ensemble, the i-th request to member i mod 3: what the
    /// instruction counts measure.
    #[inline(never)]
    fn batch(&mut self, ops: Vec<CoreOp>) {
        let before: usize = self.answered.iter().sum();
        let n = ops.len();
        for (i, op) in ops.into_iter().enumerate() {
            self.send(i % VOTERS.len(), op);
        }
        self.settle();
        let after: usize = self.answered.iter().sum();
        assert_eq!(after - before, n, "every write answered where it was sent");
    }
}

fn ensemble_path(c: &mut Criterion) {
    if let Some(n) = batches_from_env("ENSEMBLE_PATH_BATCHES") {
        let mut e = Ensemble::new();
        return run_counted(n, 96, |ops| e.batch(ops));
    }
    let mut g = group(c, "member_ensemble_path");
    let mut e = Ensemble::new();
    let id = BenchmarkId::new("setData_1KiB_3_voters", 96);
    bench_set_data(&mut g, id, 96, |ops| e.batch(ops));
    g.finish();
}

criterion_group!(benches, ensemble_path);
criterion_main!(benches);
