//! The core's share of a standalone setData: a batch of setData requests of 1 KiB values on
//! distinct keys stepped into a standalone member on the in-memory device, through prep,
//! the log append, the fdatasync completion, apply and publication, as the server's core
//! drives it (the shards' decoding and answering are not here; the fdatasync completes at
//! once). Time per write is noisy on a shared machine; the figure to compare before and
//! after a change is the instruction count per write, noise-free under callgrind:
//!
//! ```text
//! cargo bench -p zoocore-member --bench write_path --no-run
//! WRITE_PATH_BATCHES=200 valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     --toggle-collect='write_path::Bench::batch' target/release/deps/write_path-<hash> --bench
//! callgrind_annotate cg.out | grep TOTALS     # instructions of 200 x 64 writes
//! ```

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use zoocore_member::msg::{CoreOp, CoreRequest, Origin, Outcome, ToCore};
use zoocore_member::{Effect, Input, Member, Now};
use zoocore_proto::SessionId;
use zoocore_storage::MemDevice;
use zoocore_tree::Tree;

mod common;
use common::{
    batches_from_env, bench_set_data, create_op, group, mem_log, member_config, run_counted, KEYS,
};

struct Bench {
    member: Member<MemDevice>,
    /// The effects list the rounds reuse.
    effects: Vec<Effect<MemDevice>>,
    now: Now,
    xid: i32,
    session: SessionId,
    /// Entries published so far.
    published: usize,
    /// The last session a published entry created.
    created: Option<SessionId>,
}

impl Bench {
    fn new() -> Self {
        let cfg = member_config(0x100, 1);
        let log = mem_log();
        let now = Now {
            mono_ms: 0,
            wall_ms: 1_000_000,
        };
        let member = Member::new(cfg, Tree::with_extended_types(true), log, now);
        let mut b = Bench {
            member,
            effects: Vec::new(),
            now,
            xid: 1,
            session: SessionId(0),
            published: 0,
            created: None,
        };
        b.run();
        b.send(CoreOp::CreateSession { timeout_ms: 30_000 });
        b.run();
        b.session = b.created.expect("a session created");
        for k in 0..KEYS {
            b.send(create_op(k));
        }
        b.run();
        b
    }

    fn send(&mut self, op: CoreOp) {
        let origin = Origin {
            shard: 0,
            conn: 1,
            xid: self.xid,
        };
        self.xid = self.xid.wrapping_add(1);
        self.member.step(
            self.now,
            Input::Shard(ToCore::Request(CoreRequest {
                origin: Some(origin),
                session: self.session,
                auth: Arc::from([]),
                op,
                barrier: false,
            })),
        );
    }

    /// Carries out effects (syncs at once, on the in-memory device) until there are none.
    fn run(&mut self) {
        // As the server's core does: one list, emptied and reused every round.
        let mut effects = std::mem::take(&mut self.effects);
        loop {
            self.member.ready_into(self.now, &mut effects);
            if effects.is_empty() {
                self.effects = effects;
                return;
            }
            for effect in effects.drain(..) {
                match effect {
                    // Completed without the in-memory device's sync: that copies the whole
                    // segment into its crash image, a cost of the test device alone.
                    Effect::Sync(job) => {
                        let result = Ok(());
                        self.member.step(self.now, Input::Synced { job, result });
                    }
                    Effect::Publish(batch) => {
                        self.published += batch.entries.len();
                        for e in &batch.entries {
                            if let Outcome::SessionCreated { session, .. } = e.outcome {
                                self.created = Some(session);
                            }
                        }
                    }
                    Effect::PrepareSegment(job) => {
                        let result = job.run();
                        self.member.step(self.now, Input::SegmentPrepared(result));
                    }
                    Effect::PersistEpochs { accepted, current } => {
                        let persisted = Input::EpochsPersisted {
                            accepted,
                            current,
                            result: Ok(()),
                        };
                        self.member.step(self.now, persisted);
                    }
                    Effect::Stop(reason) => panic!("the member stopped: {reason}"),
                    _ => {}
                }
            }
        }
    }

    /// One batch through the member: what the instruction counts measure.
    #[inline(never)]
    fn batch(&mut self, ops: Vec<CoreOp>) {
        let (before, n) = (self.published, ops.len());
        for op in ops {
            self.send(op);
        }
        self.run();
        assert_eq!(self.published - before, n, "every write answered");
    }
}

fn write_path(c: &mut Criterion) {
    if let Some(n) = batches_from_env("WRITE_PATH_BATCHES") {
        let mut b = Bench::new();
        return run_counted(n, 64, |ops| b.batch(ops));
    }
    let mut g = group(c, "member_write_path");
    for n in [1usize, 64] {
        let mut b = Bench::new();
        let id = BenchmarkId::new("setData_1KiB", n);
        bench_set_data(&mut g, id, n, |ops| b.batch(ops));
    }
    g.finish();
}

criterion_group!(benches, write_path);
criterion_main!(benches);
