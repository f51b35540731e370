//! Recovery against crash images of the in-memory device: round trips, a crash at every
//! point of a write sequence (lost and torn unsynced writes), bit flips, ENOSPC, a failed
//! fdatasync, a snapshot taken while writes continue, truncation and purge, and the real
//! file device.

mod common;

use common::{op_of, small_opts, Driver};
use zoocore_proto::Zxid;
use zoocore_storage::{
    new_log, purge, recover, write_snapshot, Crash, Device, FileDevice, LogError, MemDevice,
    RecoverOptions, RecoveryError, SnapshotError, SnapshotWriter,
};

fn opts() -> RecoverOptions {
    RecoverOptions {
        log: small_opts(),
        extended_types: false,
    }
}

fn mem_driver() -> (MemDevice, Driver<MemDevice>) {
    let dev = MemDevice::new();
    let log = new_log(dev.clone(), small_opts());
    (dev, Driver::new(log))
}

/// Recovers and checks the tree is exactly the live state at the recovered zxid.
fn recover_checked(
    dev: &MemDevice,
    d: &Driver<MemDevice>,
) -> zoocore_storage::Recovered<MemDevice> {
    let r = recover(dev.clone(), opts()).expect("recovers");
    r.tree.check_invariants();
    let z = r.tree.last_zxid();
    assert!(z >= d.synced, "recovered {z} lost synced {}", d.synced);
    assert_eq!(
        Some(&r.tree.digest()),
        d.digests.get(&z),
        "digest at recovered zxid {z}"
    );
    r
}

#[test]
fn append_sync_recover_round_trip() {
    let (dev, mut d) = mem_driver();
    for b in 0..20 {
        d.batch(b, 1 + b % 5);
    }
    assert!(d.log.segments().len() > 3, "segments rolled");
    let r = recover_checked(&dev, &d);
    assert_eq!(r.tree.last_zxid(), d.tree.last_zxid());
    assert_eq!(r.replayed, u64::from(d.counter));
    assert!(r.truncated.is_none());

    // Appending after recovery continues the same log.
    let mut d2 = Driver {
        tree: r.tree,
        log: r.log,
        ..d
    };
    d2.batch(99, 4);
    let r2 = recover_checked(&dev, &d2);
    assert_eq!(r2.tree.digest(), d2.tree.digest());
    let entries = r2.log.entries_after(Zxid::new(1, 5)).expect("reads");
    assert_eq!(entries.len() as u32, d2.counter - 5);
    assert_eq!(entries[0].zxid, Zxid::new(1, 6));
}

#[test]
fn crash_at_every_point_recovers_exactly_a_prefix() {
    for batches in 0..6u64 {
        // Count the bytes of one unsynced batch by appending it on a probe device.
        let unsynced_bytes = {
            let (_, mut p) = mem_driver();
            for b in 0..batches {
                p.batch(b, 3);
            }
            let before = p.log.stats().bytes;
            for i in 0..4 {
                p.write(&op_of(1000 + i)).expect("append");
            }
            p.log.stats().bytes - before
        };
        let mut modes = vec![Crash::LoseUnsynced];
        modes.extend((0..=unsynced_bytes + 64).map(Crash::KeepPrefix));
        modes.extend((0..40).map(Crash::Random));
        for mode in modes {
            let (dev, mut d) = mem_driver();
            for b in 0..batches {
                d.batch(b, 3);
            }
            for i in 0..4 {
                d.write(&op_of(1000 + i)).expect("append");
            }
            dev.crash(mode);
            let r = recover_checked(&dev, &d);
            // Recovered again from the recovered (truncated) image: the same state.
            let again = recover(dev.clone(), opts()).expect("recovers twice");
            assert_eq!(again.tree.digest(), r.tree.digest(), "{mode:?}");
            assert!(
                again.truncated.is_none(),
                "{mode:?}: truncation was durable"
            );
        }
    }
}

#[test]
fn bit_flip_in_a_synced_record_names_file_and_offset() {
    let (dev, mut d) = mem_driver();
    d.batch(0, 2);
    d.batch(1, 2);
    let seg = d.log.segments()[0].name.clone();
    dev.flip_bit(&seg, 64 + 30, 3);
    match recover(dev.clone(), opts()) {
        Err(RecoveryError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, seg);
            assert_eq!(offset, 64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn bit_flip_in_an_older_segment_is_corruption() {
    let (dev, mut d) = mem_driver();
    for b in 0..12 {
        d.batch(b, 3);
    }
    let segs = d.log.segments().to_vec();
    assert!(segs.len() >= 3);
    dev.flip_bit(&segs[1].name, 64 + 5, 0);
    let err = recover(dev.clone(), opts()).expect_err("corrupt");
    assert!(
        matches!(&err, RecoveryError::Corrupt { file, offset: 64, .. } if *file == segs[1].name),
        "{err}"
    );
    assert!(err.to_string().contains(&segs[1].name));
}

#[test]
fn segments_a_snapshot_covers_are_not_scanned_but_their_headers_are_checked() {
    let (dev, mut d) = mem_driver();
    for b in 0..12 {
        d.batch(b, 3);
    }
    let segs = d.log.segments().to_vec();
    assert!(segs.len() >= 3);
    write_snapshot(&dev, &d.tree).expect("snapshot");
    for b in 12..14 {
        d.batch(b, 3);
    }
    // A bad record in a covered segment does not stop recovery: the snapshot holds it.
    dev.flip_bit(&segs[1].name, 64 + 5, 0);
    let r = recover_checked(&dev, &d);
    assert_eq!(r.tree.digest(), d.tree.digest());
    assert_eq!(r.log.segments().len(), d.log.segments().len());
    // A bad header is still corruption.
    dev.flip_bit(&segs[1].name, 9, 0);
    let err = recover(dev.clone(), opts()).expect_err("corrupt header");
    assert!(
        matches!(&err, RecoveryError::Corrupt { file, offset: 0, .. } if *file == segs[1].name),
        "{err}"
    );
}

#[test]
fn bit_flip_in_the_last_synced_batch_reads_as_a_torn_tail() {
    // The documented limitation (docs/LOG.md): nothing after it proves it was synced.
    let (dev, mut d) = mem_driver();
    d.batch(0, 1);
    let seg = d.log.segments()[0].name.clone();
    dev.flip_bit(&seg, 64 + 30, 1);
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.last_zxid(), Zxid::ZERO);
    assert_eq!(r.truncated.as_ref().map(|t| t.offset), Some(64));
}

#[test]
fn enospc_on_roll_refuses_the_append_without_poisoning_and_loses_nothing_acknowledged() {
    let (dev, mut d) = mem_driver();
    d.batch(0, 3);
    dev.set_capacity(Some(2048 + 100));
    let mut err = None;
    for i in 0..50 {
        if let Err(e) = d.write(&op_of(200 + i)).and_then(|_| d.sync()) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("ran out of space");
    assert!(matches!(err, LogError::NoSpace { .. }), "{err}");
    assert!(!d.log.is_poisoned(), "a refused roll leaves the log usable");
    assert_eq!(d.log.stats().appends_refused, 1);
    // Room returns: the next append rolls by itself.
    dev.set_capacity(None);
    d.batch(300, 3);
    dev.crash(Crash::Random(7));
    let r = recover_checked(&dev, &d);
    assert_eq!(r.tree.last_zxid(), d.synced);
}

#[test]
fn enospc_while_writing_a_snapshot_leaves_no_snapshot() {
    let (dev, mut d) = mem_driver();
    for b in 0..4 {
        d.batch(b, 3);
    }
    dev.set_capacity(Some(dev.list().expect("list").len() as u64 * 2048 + 100));
    let err = write_snapshot(&dev, &d.tree).expect_err("no space");
    assert!(matches!(err, SnapshotError::Io { .. }), "{err}");
    // The partial file is gone at once: on a full disk it holds room the log needs.
    let names = dev.list().expect("list");
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    dev.set_capacity(None);
    let r = recover_checked(&dev, &d);
    assert_eq!(r.snapshot_zxid, None);
    assert!(dev
        .list()
        .expect("list")
        .iter()
        .all(|n| !n.ends_with(".tmp")));
}

#[test]
fn failed_fsync_is_sticky_and_loses_nothing_acknowledged() {
    for seed in 0..20 {
        let (dev, mut d) = mem_driver();
        d.batch(0, 3);
        dev.fail_sync_after(2);
        let mut failed = false;
        for b in 1..10 {
            for i in 0..3 {
                if d.write(&op_of(b * 10 + i)).is_err() {
                    failed = true;
                }
            }
            if failed || d.sync().is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "the injected sync failure surfaced");
        assert!(d.log.is_poisoned());
        assert!(matches!(d.log.sync(), Err(LogError::Poisoned)));
        dev.crash(Crash::Random(seed));
        recover_checked(&dev, &d);
    }
}

#[test]
fn split_phase_sync_moves_the_durable_point_only_on_completion() {
    use zoocore_storage::SyncHandle;
    let (dev, mut d) = mem_driver();
    d.write(&op_of(0)).expect("append");
    let z1 = d.write(&op_of(1)).expect("append");
    let req = d.log.sync_begin().expect("ok").expect("something to sync");
    assert_eq!(req.zxid, z1);
    d.write(&op_of(2))
        .expect("append while the sync is in flight");
    assert_eq!(d.log.synced_zxid(), Zxid::ZERO);
    let res = req.handle.sync();
    assert_eq!(d.log.sync_end(req, res).expect("synced"), z1);
    d.synced = z1;
    dev.crash(Crash::LoseUnsynced);
    recover_checked(&dev, &d);
}

#[test]
fn snapshot_while_writes_continue_recovers_the_live_digest() {
    let dev = MemDevice::new();
    let log = new_log(
        dev.clone(),
        zoocore_storage::LogOptions {
            prealloc_bytes: 1 << 20,
            snap_count: 500,
            database_id: 1,
        },
    );
    let mut d = Driver::new(log);
    // Enough data for several 1 MiB chunks.
    for i in 0..3000u32 {
        d.write(&zoocore_tree::Op::Create {
            path: format!("/big{i}"),
            data: Some(vec![i as u8; 1000].into()),
            acl: zoocore_proto::Acl::open_unsafe(),
            mode: zoocore_proto::CreateMode::Persistent,
            ttl_ms: -1,
        })
        .expect("append");
        if i % 100 == 99 {
            d.sync().expect("sync");
        }
    }
    d.sync().expect("sync");
    let pinned = d.tree.clone();
    let mut w = SnapshotWriter::new(dev.clone(), pinned.clone()).expect("starts");
    let mut writes_during = 0;
    let mut steps = 0;
    while !w.step().expect("step") {
        steps += 1;
        d.batch(10_000 + steps, 5);
        writes_during += 5;
    }
    assert!(steps >= 3, "several chunks: {steps}");
    assert!(writes_during > 0);
    for b in 0..5 {
        d.batch(20_000 + b, 4);
    }
    let r = recover_checked(&dev, &d);
    assert_eq!(r.snapshot_zxid, Some(pinned.last_zxid()));
    assert_eq!(r.tree.digest(), d.tree.digest());
    assert_eq!(
        r.replayed,
        u64::from(d.counter) - pinned.last_zxid().counter() as u64
    );

    // Purge removes the segments the snapshot covers; recovery is unchanged.
    let mut log = r.log;
    let before = log.segments().len();
    let removed = purge(&mut log, 1).expect("purges");
    assert!(!removed.is_empty() && log.segments().len() < before);
    let r2 = recover_checked(&dev, &d);
    assert_eq!(r2.tree.digest(), d.tree.digest());
}

#[test]
fn bad_newest_snapshot_is_skipped_with_a_reason() {
    let (dev, mut d) = mem_driver();
    d.batch(0, 3);
    let old = write_snapshot(&dev, &d.tree).expect("snapshot");
    d.batch(1, 3);
    let new = write_snapshot(&dev, &d.tree).expect("snapshot");
    d.batch(2, 3);
    dev.flip_bit(&new.name, 40 + 12 + 30, 2);
    let r = recover_checked(&dev, &d);
    assert_eq!(r.snapshot_zxid, Some(old.zxid));
    assert_eq!(r.skipped_snapshots.len(), 1);
    assert_eq!(r.skipped_snapshots[0].file, new.name);
    assert!(
        r.skipped_snapshots[0].reason.contains("checksum"),
        "{:?}",
        r.skipped_snapshots
    );
}

#[test]
fn log_gap_behind_a_bad_snapshot_is_an_error() {
    let (dev, mut d) = mem_driver();
    for b in 0..5 {
        d.batch(b, 3);
    }
    let snap = write_snapshot(&dev, &d.tree).expect("snapshot");
    d.batch(9, 3);
    let mut log = d.log;
    purge(&mut log, 1).expect("purge");
    dev.flip_bit(&snap.name, 45, 0);
    let err = recover(dev.clone(), opts()).expect_err("gap");
    assert!(matches!(err, RecoveryError::LogGap { .. }), "{err}");
}

#[test]
fn truncate_after_drops_later_records_durably() {
    let (dev, mut d) = mem_driver();
    for b in 0..6 {
        d.batch(b, 3);
    }
    let keep = Zxid::new(1, 8);
    d.log.truncate_after(keep).expect("truncates");
    assert_eq!(d.log.last_zxid(), keep);
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.last_zxid(), keep);
    assert_eq!(Some(&r.tree.digest()), d.digests.get(&keep));
    // The log continues after the truncation point.
    let mut log = r.log;
    log.append(Zxid::new(2, 1), 5, &op_txn()).expect("append");
    log.sync().expect("sync");
    let r2 = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r2.tree.last_zxid(), Zxid::new(2, 1));
}

fn op_txn() -> Vec<u8> {
    use zoocore_proto::Record;
    zoocore_tree::Txn::Error(zoocore_proto::ErrorCode::NO_NODE).to_bytes()
}

#[test]
fn file_device_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = FileDevice::open(dir.path()).expect("dir");
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    for b in 0..10 {
        d.batch(b, 4);
    }
    write_snapshot(&dev, &d.tree).expect("snapshot");
    d.batch(50, 4);
    let digest = d.tree.digest();
    drop(d);
    let r = recover(dev.clone(), opts()).expect("recovers");
    r.tree.check_invariants();
    assert_eq!(r.tree.digest(), digest);
    assert!(r.snapshot_zxid.is_some());
}
