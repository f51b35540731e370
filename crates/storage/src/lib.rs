//! Durable storage for zoocore: the transaction log (preallocated segments written with pwrite,
//! group commit), snapshot files of a pinned tree version, and crash recovery. Formats are
//! in docs/LOG.md and docs/SNAPSHOT.md.
//!
//! Everything goes through the narrow synchronous `Device` trait: `FileDevice` on a real
//! directory, `MemDevice` in memory with injected faults (torn and lost unsynced writes,
//! bit flips, ENOSPC, failing fdatasync). No clock, randomness or threads: the server owns
//! time (it measures fsync latency) and IO scheduling (it may issue the fdatasync itself
//! via `Log::sync_begin` / `Log::sync_end`).
//!
//! Server order: `recover` at start; per batch `Log::append`… then `Log::sync` (or the
//! split pair), then publish; every snapCount txns a `SnapshotWriter` on a pinned `Tree`
//! clone, stepped on a low-priority task; after it, `purge`. When `Log::wants_next_segment`,
//! `Log::next_segment_job` is run on a blocking thread and its result handed to
//! `Log::adopt_next_segment`, so a roll does not zero-fill a segment on the ZAB core. After
//! each batch the server logs what `Log::next_notice` reports (segments made shorter than
//! preAllocSize for lack of room); an append refused with `LogError::NoSpace` leaves the log
//! usable, and the txn must then not be applied.

mod device;
mod error;
pub mod format;
mod import_zk;
mod log;
mod mem;
mod recover;
mod snapshot;

pub use device::{Device, DeviceFile, FileBytes, FileDevice, FileSync, Fill, RealFile, SyncHandle};
pub use error::{LogError, RecoveryError, SnapshotError};
pub use import_zk::{import_zk, read_zk, ImportError, ImportOptions, ImportReport, Skipped};
pub use log::{
    free_reserve_bytes, reserve_segment_bytes_for, segment_bytes_for, Log, LogEntry, LogNotice,
    LogOptions, LogStats, SegmentInfo, SpareJob, SpareSegment, SyncRequest, RESERVE_SEGMENT_BYTES,
    SPARE_MIN_BYTES, SPARE_SEGMENT_NAME,
};
pub use mem::{Crash, MemDevice, MemFileHandle, MemSync};
pub use recover::{recover, RecoverOptions, Recovered, SkippedSnapshot, TruncatedTail};
pub use snapshot::{
    decode_snapshot, parse_snapshot_name, snapshot_name, write_snapshot, LoadedSnapshot,
    SnapshotInfo, SnapshotWriter, WRITE_BEHIND_BYTES,
};

/// Keeps the newest `retain` snapshots (at least one), removes older ones, then the log
/// segments the oldest kept snapshot covers. Returns the names removed.
pub fn purge<D: Device>(log: &mut Log<D>, retain: usize) -> Result<Vec<String>, LogError> {
    let dev = log.device().clone();
    let io = |file: &str| {
        let file = file.to_owned();
        move |source| LogError::Io { file, source }
    };
    let mut snaps: Vec<(zoocore_proto::Zxid, String)> = dev
        .list()
        .map_err(io("."))?
        .into_iter()
        .filter_map(|n| parse_snapshot_name(&n).map(|z| (z, n)))
        .collect();
    snaps.sort();
    let retain = retain.max(1);
    let mut removed = Vec::new();
    if snaps.len() <= retain {
        if let Some((oldest, _)) = snaps.first() {
            removed.extend(log.purge(*oldest)?);
        }
        return Ok(removed);
    }
    let cut = snaps.len() - retain;
    for (_, name) in &snaps[..cut] {
        dev.remove(name).map_err(io(name))?;
        removed.push(name.clone());
    }
    removed.extend(log.purge(snaps[cut].0)?);
    Ok(removed)
}

/// An empty log for a new data directory. Prefer `recover`, which also opens an existing
/// one; this is for tests and tools that know the directory is empty.
pub fn new_log<D: Device>(dev: D, opts: LogOptions) -> Log<D> {
    Log::from_parts(dev, opts, Vec::new(), None, zoocore_proto::Zxid::ZERO)
}
