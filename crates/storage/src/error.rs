//! The errors of the storage layer, one `thiserror` enum per part: the log, snapshots and
//! recovery. Each names the file (and offset, where one applies) so an operator can find it.

use std::io;

use thiserror::Error;
use zoocore_proto::Zxid;

/// An error of the running log. After any IO error the log is poisoned: it refuses further
/// appends and syncs, and the server must stop and recover (an fdatasync is never retried).
/// The one exception is `NoSpace`: the disk had no room for a new segment, which is found
/// before anything unsynced exists (a roll happens only once the old segment is synced), so
/// the log stays usable and the append can be tried again once room is freed.
#[derive(Debug, Error)]
pub enum LogError {
    #[error(
        "no room on the disk for log segment {file} ({needed_bytes} bytes needed): {reason}; \
         writes are refused until space is freed"
    )]
    NoSpace {
        file: String,
        needed_bytes: u64,
        reason: String,
    },
    #[error("the log failed earlier and refuses further writes; restart to recover")]
    Poisoned,
    #[error(
        "txn at zxid {zxid} of {bytes} bytes does not fit in a segment of {segment_bytes} bytes"
    )]
    RecordTooLarge {
        zxid: Zxid,
        bytes: u64,
        segment_bytes: u64,
    },
    #[error("creating log segment {file}: {source}")]
    Create { file: String, source: io::Error },
    #[error("writing {file} at offset {offset}: {source}")]
    Write {
        file: String,
        offset: u64,
        source: io::Error,
    },
    #[error("fdatasync of {file} failed: {source}; the server must stop and recover from disk")]
    Sync { file: String, source: io::Error },
    #[error("{file}: {source}")]
    Io { file: String, source: io::Error },
    #[error("{file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
}

impl LogError {
    /// The disk had no room for the txn; the log is not poisoned and the txn was not logged.
    pub fn is_no_space(&self) -> bool {
        matches!(self, LogError::NoSpace { .. })
    }
}

/// Whether an IO error says the file system is out of room (ENOSPC, or EDQUOT: a quota is
/// the same to the log).
pub(crate) fn is_out_of_room(e: &io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT)) || e.kind() == io::ErrorKind::StorageFull
}

/// An error writing or reading one snapshot file.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{file}: {source}")]
    Io { file: String, source: io::Error },
    #[error("{file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
}

/// Why the server cannot start from its data directory.
#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error("{file}: {source}")]
    Io { file: String, source: io::Error },
    #[error("corrupt log {file} at offset {offset}: {reason}")]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
    #[error(
        "log gap: recovery starts from zxid {base} but the oldest needed segment {file} \
         starts after zxid {prev_zxid}"
    )]
    LogGap {
        base: Zxid,
        file: String,
        prev_zxid: Zxid,
    },
}
