//! The log keeps its current segment and the one before it in the page cache and drops
//! every older one when it rolls (what a restart replays after a snapshot stays cached, and
//! the cache does not grow with every byte written). Residency is read with mincore(2) over
//! a read-only mapping that is never touched.

use std::path::Path;

use zoocore_proto::Zxid;
use zoocore_storage::{new_log, FileDevice, LogOptions};

const PAGE: usize = 4096;

/// For each page of the file at `path`, whether it is in the page cache.
fn resident(path: &Path) -> Vec<bool> {
    let file = std::fs::File::open(path).expect("open segment");
    // SAFETY: the mapping is read-only and never dereferenced: only its address range is
    // passed to mincore, so a concurrent change of the file cannot be observed through it.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map segment");
    let pages = map.len().div_ceil(PAGE);
    let mut vec = vec![0u8; pages];
    // SAFETY: `map` is a live mapping of `map.len()` bytes at a page-aligned address, and
    // `vec` has one byte for each of its pages, as mincore(2) writes.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::mincore(
            map.as_ptr() as *mut libc::c_void,
            map.len(),
            vec.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
    vec.into_iter().map(|b| b & 1 == 1).collect()
}

#[test]
fn the_log_keeps_two_segments_in_the_page_cache_and_drops_older_ones() {
    // Under the target directory, on the disk the build is on: a tmpfs $TMPDIR keeps its
    // pages whatever the hint says.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let dev = FileDevice::open(dir.path()).expect("device");
    let mut log = new_log(
        dev,
        LogOptions {
            prealloc_bytes: 2 << 20,
            snap_count: 1_000_000,
            database_id: 1,
        },
    );
    let txn = vec![7u8; 60_000];
    let cached = |name: &str| -> usize {
        resident(&dir.path().join(name))
            .iter()
            .filter(|&&r| r)
            .count()
    };
    let mut zxid = 0;
    // Batches of ten records (600 KB), each synced, with the spare segment's job run as the
    // member runs it (on a blocking thread there): until the log has `segments` segments and
    // the spare job after the last roll has run (it drops what that roll retired).
    let mut write_until = |log: &mut zoocore_storage::Log<FileDevice>, segments: usize| {
        while log.segments().len() < segments || !log.has_next_segment() {
            for _ in 0..10 {
                zxid += 1;
                log.append(Zxid::new(1, zxid), 0, &txn).expect("append");
            }
            log.sync().expect("sync");
            if let Some(job) = log.next_segment_job() {
                log.adopt_next_segment(job.run()).expect("spare segment");
            }
        }
    };
    write_until(&mut log, 3);
    let names: Vec<String> = log.segments().iter().map(|s| s.name.clone()).collect();
    // The second roll retired the first segment, and the job after it dropped it; the one it
    // finished and the current stay.
    assert_eq!(cached(&names[0]), 0, "the oldest segment is still cached");
    assert!(cached(&names[1]) > 0, "the previous segment stays cached");
    assert!(cached(&names[2]) > 0, "the current segment stays cached");

    // One more roll: the second goes too, and every record is still read back.
    write_until(&mut log, 4);
    assert_eq!(cached(&names[1]), 0, "the second segment is still cached");
    let entries = log.entries_after(Zxid::ZERO).expect("read back");
    assert_eq!(entries.len(), zxid as usize);
    assert!(entries.iter().all(|e| e.txn == txn));
}
