//! Group commit on the real file device, in a temp dir on the file system that
//! `TMPDIR` names: txns/s of append + one sync per batch at batch sizes 1, 16 and 256, the
//! sync either an msync of the written range (`Log::sync`) or an fdatasync of the file (what
//! the server issues through io_uring),
//! against the same appends with no sync (the memcpy ceiling) and against the raw fdatasync
//! rate of a plain file in the same directory (the disk's ceiling). The ratio of
//! append+sync at batch 1 to raw fdatasync shows the log's own overhead; batch 256 shows
//! what group commit buys. Run with `cargo bench -p zoocore-storage --bench group_commit`.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zoocore_proto::{Record, Zxid};
use zoocore_storage::{new_log, FileDevice, LogOptions, SyncHandle};
use zoocore_tree::Txn;

fn txn_bytes() -> Vec<u8> {
    Txn::SetData {
        path: "/bench/node".into(),
        data: Some(zoocore_proto::Bytes::from_static(&[0x5a_u8; 100])),
        version: 1,
    }
    .to_bytes()
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let txn = txn_bytes();
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    // How a batch is made durable: none, `Log::sync` (msync of the written range), or
    // `sync_begin` + fdatasync of the file (`SyncHandle::sync`) + `sync_end`, as the server
    // does through io_uring.
    #[derive(Clone, Copy, PartialEq)]
    enum How {
        NoSync,
        Msync,
        Fdatasync,
    }
    for (how, batch) in [
        (How::Msync, 1u64),
        (How::Fdatasync, 1),
        (How::Msync, 16),
        (How::Fdatasync, 16),
        (How::Msync, 256),
        (How::Fdatasync, 256),
        (How::NoSync, 256),
    ] {
        let name = match how {
            How::NoSync => "append_no_sync",
            How::Msync => "append_msync",
            How::Fdatasync => "append_fdatasync",
        };
        let sub = dir.path().join(format!("log-{name}-{batch}"));
        let dev = FileDevice::open(&sub).expect("dir");
        let mut log = new_log(
            dev,
            LogOptions {
                prealloc_bytes: 64 << 20,
                snap_count: u64::MAX,
                database_id: 1,
            },
        );
        let mut counter = 0u32;
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
            b.iter(|| {
                for _ in 0..batch {
                    counter += 1;
                    log.append(Zxid::new(1, counter), 0, &txn).expect("append");
                }
                match how {
                    How::NoSync => {}
                    How::Msync => {
                        log.sync().expect("sync");
                    }
                    How::Fdatasync => {
                        let req = log.sync_begin().expect("begin").expect("unsynced");
                        let result = req.handle.sync();
                        log.sync_end(req, result).expect("sync");
                    }
                }
            })
        });
    }

    let path = dir.path().join("raw");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .expect("raw file");
    // Allocated like a log segment (zeros written, not a sparse set_len), so fdatasync
    // has no block allocation to commit either.
    let zeros = vec![0u8; 1 << 20];
    for mib in 0..64u64 {
        file.write_all_at(&zeros, mib << 20).expect("zero fill");
    }
    file.sync_all().expect("sync_all");
    let record = vec![0xa5_u8; txn.len() + 28];
    let mut offset = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_pwrite_fdatasync", |b| {
        b.iter(|| {
            file.write_all_at(&record, offset).expect("pwrite");
            file.sync_data().expect("fdatasync");
            offset = (offset + record.len() as u64) % (60 << 20);
        })
    });
    g.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
