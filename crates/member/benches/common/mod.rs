//! What the member's benches share: the keys they write, the batches they send and the
//! member configuration they run with.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use zoocore_member::msg::CoreOp;
use zoocore_member::MemberConfig;
use zoocore_proto::{Acl, CreateMode};
use zoocore_storage::{new_log, Log, LogOptions, MemDevice};
use zoocore_tree::Op;

/// Keys created in set-up, each with a 1 KiB value.
pub const KEYS: usize = 1_000;
/// Bytes of every value written.
pub const VALUE: usize = 1_024;

/// A member as the benches run it: fdatasync on, no snapshot, reaper or purge within a run.
pub fn member_config(first_session: i64, seed: u64) -> MemberConfig {
    MemberConfig {
        first_session,
        tick_ms: 100,
        snap_count: 1_000_000_000,
        seed,
        batch_txns_max: 1024,
        force_sync: true,
        container_check_interval_ms: 60_000,
        enforce_quota: false,
        purge_interval_ms: 0,
        snap_retain_count: 3,
    }
}

/// A log on an in-memory device with segments of the default size, rolled only by size.
pub fn mem_log() -> Log<MemDevice> {
    new_log(
        MemDevice::new(),
        LogOptions {
            prealloc_bytes: 64 << 20,
            snap_count: 1_000_000_000,
            database_id: 1,
        },
    )
}

/// The create of key `k` in set-up.
pub fn create_op(k: usize) -> CoreOp {
    CoreOp::Tree(Op::Create {
        path: format!("/k{k}"),
        data: Some(vec![1; VALUE].into()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    })
}

/// `n` setData of a 1 KiB value, each on its own key.
pub fn set_data_ops(n: usize, round: usize) -> Vec<CoreOp> {
    (0..n)
        .map(|i| {
            CoreOp::Tree(Op::SetData {
                path: format!("/k{}", (round * n + i) % KEYS),
                data: Some(vec![(round & 0xff) as u8; VALUE].into()),
                version: -1,
            })
        })
        .collect()
}

/// The number of batches in `var`: set, the bench runs that many instead of criterion (for
/// callgrind, and for the test script's quick run).
pub fn batches_from_env(var: &str) -> Option<usize> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}

/// `batches` batches of `n` setData through `batch`, without criterion (for callgrind, whose
/// instruction counts are what a change is judged by, and for the test script's quick run).
pub fn run_counted(batches: usize, n: usize, mut batch: impl FnMut(Vec<CoreOp>)) {
    for round in 1..=batches {
        batch(set_data_ops(n, round));
    }
    println!("{} writes", batches * n);
}

/// A group of the benches' settings: short, as each sample is a whole batch.
pub fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g
}

/// Times `batch` on batches of `n` setData (`set_data_ops`), a new round's keys each time.
pub fn bench_set_data(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    n: usize,
    mut batch: impl FnMut(Vec<CoreOp>),
) {
    let mut round = 0;
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(id, |b| {
        b.iter_batched(
            || {
                round += 1;
                set_data_ops(n, round)
            },
            &mut batch,
            BatchSize::SmallInput,
        )
    });
}
