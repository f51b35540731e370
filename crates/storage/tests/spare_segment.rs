//! The next log segment prepared off the hot path: `Log::wants_next_segment`, a `SpareJob`
//! run on another thread, `Log::adopt_next_segment`. A roll then uses the spare file (only
//! the header is written), falls back to creating its own segment when the spare is not
//! ready or its job failed, and recovery is unchanged; a spare left by a crash is removed.
//! A roll by count (snapCount) waits while the spare's job is out, instead of making a
//! whole segment on the caller's thread.

mod common;

use common::{small_opts, Driver};
use zoocore_storage::{
    new_log, recover, Crash, Device, FileDevice, LogOptions, MemDevice, RecoverOptions,
    SPARE_SEGMENT_NAME,
};

fn opts() -> RecoverOptions {
    RecoverOptions {
        log: small_opts(),
        extended_types: false,
    }
}

/// Prepares the spare the way the server does, after a batch, on another thread.
fn prepare<D: Device + Send + 'static>(d: &mut Driver<D>) -> bool
where
    D::File: Send + 'static,
{
    let Some(job) = d.log.next_segment_job() else {
        return false;
    };
    assert!(!d.log.wants_next_segment(), "one job at a time");
    assert!(d.log.next_segment_job().is_none());
    let result = std::thread::spawn(move || job.run()).join().expect("job");
    d.log.adopt_next_segment(result).expect("adopted");
    assert!(d.log.has_next_segment());
    true
}

#[test]
fn rolls_use_the_prepared_segment_and_recovery_is_unchanged() {
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    assert!(d.log.wants_next_segment(), "no current segment yet");
    let (mut prepared, mut used) = (0, 0);
    for b in 0..40 {
        let had = d.log.has_next_segment();
        let segments = d.log.segments().len();
        d.batch(b, 3);
        if had && d.log.segments().len() > segments {
            used += 1;
            assert!(!d.log.has_next_segment(), "a roll consumes the spare");
        }
        if prepare(&mut d) {
            prepared += 1;
        }
    }
    assert!(
        used >= 5 && prepared >= used,
        "used {used}, prepared {prepared}"
    );
    while !d.log.has_next_segment() {
        d.batch(99, 1);
        prepare(&mut d);
    }
    let names = dev.list().expect("list");
    assert!(names.iter().any(|n| n == SPARE_SEGMENT_NAME), "{names:?}");

    // A crash leaves the spare behind: recovery removes it and recovers exactly.
    dev.crash(Crash::LoseUnsynced);
    let r = recover(dev.clone(), opts()).expect("recovers");
    r.tree.check_invariants();
    assert_eq!(r.tree.digest(), d.tree.digest());
    assert!(!dev
        .list()
        .expect("list")
        .iter()
        .any(|n| n == SPARE_SEGMENT_NAME));
}

#[test]
fn a_failed_or_late_job_falls_back_to_creating_the_segment() {
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    d.batch(0, 3);
    // Late: the job is out while the segment rolls.
    let job = loop {
        if let Some(job) = d.log.next_segment_job() {
            break job;
        }
        d.batch(1, 1);
    };
    let before = d.log.segments().len();
    while d.log.segments().len() == before {
        d.batch(2, 2);
    }
    // Its file still serves the roll after.
    d.log.adopt_next_segment(job.run()).expect("adopted");
    let before = d.log.segments().len();
    while d.log.segments().len() == before {
        d.batch(3, 2);
    }
    assert!(!d.log.has_next_segment());

    // Failed: the log is not poisoned and the roll creates its own segment.
    let job = loop {
        if let Some(job) = d.log.next_segment_job() {
            break job;
        }
        d.batch(4, 1);
    };
    drop(job);
    let err = d
        .log
        .adopt_next_segment(Err(std::io::Error::other("disk full")))
        .expect_err("reported");
    assert!(err.to_string().contains("disk full"));
    assert!(!d.log.is_poisoned());
    let before = d.log.segments().len();
    while d.log.segments().len() == before {
        d.batch(5, 2);
    }
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.digest(), d.tree.digest());
}

#[test]
fn file_device_spare_is_renamed_into_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = FileDevice::open(dir.path()).expect("dir");
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    for b in 0..20 {
        d.batch(b, 3);
        prepare(&mut d);
    }
    let segments = d.log.segments().to_vec();
    assert!(segments.len() >= 5);
    for s in &segments {
        let len = std::fs::metadata(dir.path().join(&s.name))
            .expect("segment")
            .len();
        assert_eq!(len, small_opts().prealloc_bytes);
    }
    let digest = d.tree.digest();
    drop(d);
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.digest(), digest);
    assert_eq!(r.log.segments(), &segments[..]);
}

#[test]
fn a_roll_by_count_waits_for_the_spare_being_made() {
    let log_opts = LogOptions {
        prealloc_bytes: 1 << 20,
        ..small_opts()
    };
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), log_opts));
    d.batch(0, 1);
    assert_eq!(d.log.segments().len(), 1);
    // With no job out, the count rolls as before.
    while d.log.segments().len() == 1 {
        d.batch(1, 1);
    }
    let job = loop {
        if let Some(job) = d.log.next_segment_job() {
            break job;
        }
        d.batch(2, 1);
    };
    // The job is out: far more than snapCount records, room left, no roll.
    let segments = d.log.segments().len();
    for b in 0..10 {
        d.batch(3 + b, log_opts.snap_count);
    }
    assert_eq!(
        d.log.segments().len(),
        segments,
        "no roll while the spare is made"
    );
    d.log.adopt_next_segment(job.run()).expect("adopted");
    d.batch(20, 1);
    assert_eq!(
        d.log.segments().len(),
        segments + 1,
        "the spare serves the roll"
    );
    assert!(!d.log.has_next_segment(), "and is used up");
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.digest(), d.tree.digest());
}

/// The spare on the real device is reserved, not written: full-size at once, reading as
/// zeros, and a log whose rolls all used such spares recovers byte for byte, its unused
/// tail read as the end of the log.
#[test]
fn file_device_spares_are_reserved_and_read_as_zeros() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = FileDevice::open(dir.path()).expect("dir");
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    let job = d
        .log
        .next_segment_job()
        .expect("a fresh log wants its spare");
    let spare = job.run().expect("spare made");
    let path = dir.path().join(zoocore_storage::SPARE_SEGMENT_NAME);
    // Reserved blocks are unwritten extents, which ext4 and xfs report as holes: no data.
    let file = std::fs::File::open(&path).expect("spare on disk");
    match rustix::fs::seek(&file, rustix::fs::SeekFrom::Data(0)) {
        Err(rustix::io::Errno::NXIO) => {}
        other => panic!("the spare was written, not only reserved: {other:?}"),
    }
    let bytes = std::fs::read(&path).expect("spare on disk");
    assert_eq!(bytes.len() as u64, small_opts().prealloc_bytes);
    assert!(bytes.iter().all(|&b| b == 0), "reads as zeros");
    d.log.adopt_next_segment(Ok(spare)).expect("adopted");
    while d.log.segments().len() < 3 {
        d.batch(1, 2);
        prepare(&mut d);
    }
    let digest = d.tree.digest();
    let segments = d.log.segments().to_vec();
    drop(d);
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.digest(), digest);
    assert_eq!(r.log.segments(), &segments[..]);
}
