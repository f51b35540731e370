//! The log leaves what it has made durable out of the page cache: after a sync, the synced
//! bytes of the segment below the last whole `FORGET_BYTES` step are no longer resident,
//! while the pages it still appends to are; a segment rolled away leaves nothing resident.
//! Residency is read with mincore(2) over a read-only mapping that is never touched.

use std::path::Path;

use zoocore_proto::Zxid;
use zoocore_storage::{new_log, FileDevice, LogOptions, FORGET_BYTES};

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
fn synced_records_leave_the_page_cache_but_the_page_still_appended_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = FileDevice::open(dir.path()).expect("device");
    let mut log = new_log(
        dev,
        LogOptions {
            prealloc_bytes: 8 << 20,
            snap_count: 1_000_000,
            database_id: 1,
        },
    );
    let txn = vec![7u8; 60_000];
    let mut counter = 0;
    let mut append = |log: &mut zoocore_storage::Log<FileDevice>, n: u32| {
        for _ in 0..n {
            counter += 1;
            log.append(Zxid::new(1, counter), 0, &txn).expect("append");
        }
    };
    // About 3.6 MB, in batches, each synced.
    for _ in 0..6 {
        append(&mut log, 10);
        log.sync().expect("sync");
    }
    let first = log.segments()[0].name.clone();
    let written = 60 * 60_000;
    let pages = resident(&dir.path().join(&first));
    let forgotten = (written / FORGET_BYTES as usize) * FORGET_BYTES as usize / PAGE;
    assert!(
        forgotten >= 3 * (1 << 20) / PAGE,
        "the test writes past 3 MiB"
    );
    let kept: Vec<usize> = (0..forgotten).filter(|&p| pages[p]).collect();
    assert!(kept.is_empty(), "synced pages still cached: {kept:?}");
    let tail = pages[forgotten..written / PAGE]
        .iter()
        .filter(|&&r| r)
        .count();
    assert!(
        tail > 0,
        "the pages after the last whole step stay cached (and mincore sees them)"
    );

    // Past the segment's end: the roll leaves nothing of the first segment cached.
    append(&mut log, 100);
    log.sync().expect("sync");
    assert!(log.segments().len() >= 2, "rolled: {:?}", log.segments());
    let still: Vec<usize> = resident(&dir.path().join(&first))
        .iter()
        .enumerate()
        .filter_map(|(p, &r)| r.then_some(p))
        .collect();
    assert!(still.is_empty(), "pages of the rolled segment still cached: {still:?}");
}
