//! The log on a disk with less room than preAllocSize: segments sized to the room there is
//! (with a notice), appends refused with `NoSpace` once the disk is really full without
//! poisoning the log, writes resuming once room returns, a creation that meets ENOSPC
//! although the device reported room, the spare-segment job under the same rules, and
//! recovery of short segments.

mod common;

use common::{op_of, Driver};
use zoocore_proto::{Acl, CreateMode};
use zoocore_storage::{
    free_reserve_bytes, new_log, recover, Crash, Device, LogError, LogNotice, LogOptions,
    MemDevice, RecoverOptions, RESERVE_SEGMENT_BYTES,
};
use zoocore_tree::Op;

fn opts(prealloc_bytes: u64) -> LogOptions {
    LogOptions {
        prealloc_bytes,
        snap_count: 1_000_000,
        database_id: 7,
    }
}

fn recover_opts(prealloc_bytes: u64) -> RecoverOptions {
    RecoverOptions {
        log: opts(prealloc_bytes),
        extended_types: false,
    }
}

/// A create of a node holding `bytes` bytes, named by `n`.
fn big_create(n: u64, bytes: usize) -> Op {
    Op::Create {
        path: format!("/big{n}"),
        data: Some(vec![n as u8; bytes].into()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    }
}

/// Writes `bytes`-byte creates, one per batch, until the log refuses one; returns the
/// number accepted and the refusal.
fn write_until_refused(d: &mut Driver<MemDevice>, from: u64, bytes: usize) -> (u64, LogError) {
    for n in from.. {
        match d.write(&big_create(n, bytes)) {
            Ok(_) => {
                d.sync().expect("sync");
            }
            Err(e) => return (n - from, e),
        }
    }
    unreachable!("the loop returns")
}

fn segment_lengths(dev: &MemDevice) -> Vec<u64> {
    dev.list()
        .expect("list")
        .iter()
        .filter(|n| n.starts_with("log.") && !n.ends_with(".tmp"))
        .map(|n| dev.read(n).expect("read").len() as u64)
        .collect()
}

#[test]
fn a_small_disk_gets_short_segments_and_writes_until_really_full() {
    let prealloc = 8192;
    let capacity = 20_000;
    let dev = MemDevice::new();
    dev.set_capacity(Some(capacity));
    let mut d = Driver::new(new_log(dev.clone(), opts(prealloc)));

    let (accepted, err) = write_until_refused(&mut d, 0, 300);
    assert!(
        matches!(&err, LogError::NoSpace { .. }),
        "refused for lack of room: {err}"
    );
    assert!(err.to_string().contains("no room on the disk"), "{err}");
    assert!(!d.log.is_poisoned());
    // Two full segments and one sized to what was left (less the reserve).
    let lengths = segment_lengths(&dev);
    let short = capacity - 2 * prealloc - free_reserve_bytes(prealloc);
    assert_eq!(lengths, vec![prealloc, prealloc, short]);
    let notice = d.log.next_notice().expect("a notice for the short segment");
    let LogNotice::ShortSegment {
        bytes,
        prealloc_bytes,
        available_bytes,
        ..
    } = &notice;
    assert_eq!((*bytes, *prealloc_bytes), (short, prealloc));
    assert_eq!(*available_bytes, capacity - 2 * prealloc);
    assert!(notice.to_string().contains("less than preAllocSize"));
    assert_eq!(d.log.next_notice(), None);
    // Really full: the disk holds the segments and the reserve, and the segments are full
    // up to less than a record each.
    let room: u64 = lengths.iter().sum();
    assert_eq!(capacity - room, free_reserve_bytes(prealloc));
    assert!(
        accepted * 400 >= room - lengths.len() as u64 * (64 + 400),
        "{accepted} records of at most 400 bytes in {room} bytes of segments"
    );

    // Everything acknowledged survives a crash while the disk is full.
    let synced = d.synced;
    dev.crash(Crash::LoseUnsynced);
    let r = recover(dev.clone(), recover_opts(prealloc)).expect("short segments recover");
    assert_eq!(r.tree.last_zxid(), synced);
    assert_eq!(Some(&r.tree.digest()), d.digests.get(&synced));

    // Room returns: the recovered log rolls by itself and takes the writes.
    dev.set_capacity(None);
    let mut d2 = Driver::new(r.log);
    d2.tree = r.tree;
    d2.counter = synced.counter();
    let before = d2.log.segments().len();
    for n in 0..30 {
        d2.write(&big_create(5_000 + n, 300)).expect("room again");
        d2.sync().expect("sync");
    }
    assert!(d2.log.segments().len() > before, "rolled");
    assert_eq!(d2.log.stats().appends_refused, 0);
    assert!(segment_lengths(&dev).ends_with(&[prealloc]));
}

#[test]
fn writes_resume_in_the_same_log_once_room_returns() {
    let dev = MemDevice::new();
    dev.set_capacity(Some(10_000));
    let mut d = Driver::new(new_log(dev.clone(), opts(4096)));
    let (_, err) = write_until_refused(&mut d, 0, 200);
    assert!(matches!(err, LogError::NoSpace { .. }), "{err}");
    // Refused again and again without poisoning, each time cheaply.
    for n in 0..5 {
        let again = d.write(&big_create(100 + n, 200)).expect_err("still full");
        assert!(matches!(again, LogError::NoSpace { .. }), "{again}");
    }
    assert_eq!(d.log.stats().appends_refused, 6);
    dev.set_capacity(Some(100_000));
    d.batch(7, 5);
    d.write(&big_create(200, 200)).expect("room again");
    d.sync().expect("sync");
    dev.crash(Crash::Random(3));
    let r = recover(dev.clone(), recover_opts(4096)).expect("recovers");
    assert_eq!(r.tree.last_zxid(), d.synced);
    assert_eq!(Some(&r.tree.digest()), d.digests.get(&d.synced));
}

#[test]
fn sessions_may_use_the_reserve_in_small_segments_until_it_is_gone() {
    let prealloc = 1 << 20;
    let reserve = free_reserve_bytes(prealloc);
    let dev = MemDevice::new();
    dev.set_capacity(Some(prealloc + reserve));
    let mut d = Driver::new(new_log(dev.clone(), opts(prealloc)));
    let (_, err) = write_until_refused(&mut d, 0, 3000);
    assert!(matches!(err, LogError::NoSpace { .. }), "{err}");
    let session = |n: u64| Op::CreateSession {
        session: zoocore_proto::SessionId(100 + n as i64),
        timeout_ms: 5000,
    };
    // Sessions first fill the current segment's tail, then roll into the reserve.
    let segments = d.log.segments().len();
    let mut n = 0;
    while d.log.segments().len() == segments {
        d.write_reserved(&session(n))
            .expect("a session takes the reserve");
        d.sync().expect("sync");
        n += 1;
        assert!(n < 1000, "rolled into the reserve");
    }
    assert_eq!(
        segment_lengths(&dev).last(),
        Some(&RESERVE_SEGMENT_BYTES),
        "a small segment from the reserve"
    );
    // Ordinary writes still need room outside it (this one does not fit what is left).
    let big = d.write(&big_create(50_000, 70_000)).expect_err("refused");
    assert!(matches!(big, LogError::NoSpace { .. }), "{big}");
    // Sessions go on until the reserve is gone too.
    let last = loop {
        match d.write_reserved(&session(n)) {
            Ok(_) => d.sync().map(|_| ()).expect("sync"),
            Err(e) => break e,
        }
        n += 1;
        assert!(n < 100_000, "the reserve ran out");
    };
    assert!(matches!(last, LogError::NoSpace { .. }), "{last}");
    assert!(!d.log.is_poisoned());
    let used: u64 = segment_lengths(&dev).iter().sum();
    assert!(prealloc + reserve - used < 200, "reserve used up: {used}");
    let r = recover(dev.clone(), recover_opts(prealloc)).expect("recovers");
    assert_eq!(Some(&r.tree.digest()), d.digests.get(&d.synced));
    assert!(r
        .tree
        .session_exists(zoocore_proto::SessionId(100 + n as i64 - 1)));
}

#[test]
fn enospc_despite_reported_room_refuses_without_poisoning_or_leftovers() {
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), opts(4096)));
    d.batch(0, 3);
    let used: u64 = segment_lengths(&dev).iter().sum();
    // The device claims plenty of room (a stale statvfs) but holds little more.
    dev.set_capacity(Some(used + 1000));
    dev.report_available(Some(1 << 30));
    let (_, err) = write_until_refused(&mut d, 10, 300);
    let LogError::NoSpace { reason, .. } = &err else {
        panic!("expected NoSpace, got {err}");
    };
    assert!(reason.contains("No space left on device"), "{reason}");
    assert!(!d.log.is_poisoned());
    let names = dev.list().expect("list");
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    dev.report_available(None);
    dev.set_capacity(None);
    d.batch(20, 3);
    let r = recover(dev.clone(), recover_opts(4096)).expect("recovers");
    assert_eq!(Some(&r.tree.digest()), d.digests.get(&d.synced));
}

#[test]
fn the_spare_job_takes_what_room_there_is_and_stops_when_there_is_none() {
    let prealloc = 256 << 10;
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), opts(prealloc)));
    d.write(&big_create(0, 1000)).expect("first segment");
    d.sync().expect("sync");
    // Room for a spare of 100 kB only.
    dev.set_capacity(Some(prealloc + (100 << 10)));
    let job = loop {
        if let Some(job) = d.log.next_segment_job() {
            break job;
        }
        d.write(&big_create(d.counter as u64 + 1, 4000))
            .expect("fits");
        d.sync().expect("sync");
    };
    let spare = job.run().expect("a short spare");
    assert_eq!(spare.len(), (100 << 10) - free_reserve_bytes(prealloc));
    d.log
        .adopt_next_segment(Ok(spare))
        .expect("a short spare is adopted");
    assert!(d.log.has_next_segment());
    let notice = d.log.next_notice().expect("short spare noticed");
    assert!(notice.to_string().contains("log.spare.tmp"), "{notice}");

    // The roll uses it; the next job finds no room, fails, and none is handed out again
    // until the next roll.
    let before = d.log.segments().len();
    while d.log.segments().len() == before {
        d.write(&big_create(d.counter as u64 + 1, 4000))
            .expect("fits");
        d.sync().expect("sync");
    }
    assert!(!d.log.has_next_segment());
    let job = loop {
        if let Some(job) = d.log.next_segment_job() {
            break job;
        }
        d.write(&big_create(d.counter as u64 + 1, 4000))
            .expect("fits");
        d.sync().expect("sync");
    };
    let failed = job.run().expect_err("no room for a spare");
    assert_eq!(failed.kind(), std::io::ErrorKind::StorageFull);
    d.log
        .adopt_next_segment(Err(failed))
        .expect_err("reported to the caller");
    assert!(!d.log.is_poisoned());
    assert!(
        !d.log.wants_next_segment(),
        "no job per batch on a full disk"
    );
    let (_, err) = write_until_refused(&mut d, 1_000, 4000);
    assert!(matches!(err, LogError::NoSpace { .. }), "{err}");
    assert!(!d.log.wants_next_segment());

    // Room returns: the roll creates its own segment and spare jobs are handed out again.
    dev.set_capacity(None);
    let before = d.log.segments().len();
    while d.log.segments().len() == before {
        d.write(&big_create(d.counter as u64 + 1, 4000))
            .expect("room");
        d.sync().expect("sync");
    }
    let mut writes = 0;
    while d.log.next_segment_job().is_none() {
        d.write(&big_create(d.counter as u64 + 1, 4000))
            .expect("room");
        d.sync().expect("sync");
        writes += 1;
        assert!(writes < 100, "a spare job is handed out again");
    }
    let r = recover(dev.clone(), recover_opts(prealloc)).expect("recovers");
    assert_eq!(Some(&r.tree.digest()), d.digests.get(&d.synced));
}

#[test]
fn crash_images_of_a_full_disk_recover_a_synced_prefix() {
    for seed in 0..10 {
        let dev = MemDevice::new();
        dev.set_capacity(Some(12_000));
        let mut d = Driver::new(new_log(dev.clone(), opts(4096)));
        for n in 0..200 {
            if d.write(&op_of(seed * 1000 + n)).is_err() {
                break;
            }
            if n % 3 == 2 {
                d.sync().expect("sync");
            }
        }
        dev.crash(Crash::Random(seed));
        let r = recover(dev.clone(), recover_opts(4096)).expect("recovers");
        let z = r.tree.last_zxid();
        assert!(z >= d.synced, "lost synced {}: recovered {z}", d.synced);
        assert_eq!(Some(&r.tree.digest()), d.digests.get(&z));
    }
}

#[test]
fn file_device_reports_its_room() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = zoocore_storage::FileDevice::open(dir.path()).expect("dir");
    let room = dev.available_bytes().expect("statvfs").expect("a figure");
    assert!(room > 0);
}
