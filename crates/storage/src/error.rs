//! The errors of the storage layer, one `thiserror` enum per part: the log, snapshots and
//! recovery. Each names the file (and offset, where one applies) so an operator can find it.

use std::io;

use thiserror::Error;
use zoocore_proto::Zxid;

/// An error of the running log. After any IO error the log is poisoned: it refuses further
/// appends and syncs, and the server must stop and recover (an fdatasync is never retried).
#[derive(Debug, Error)]
pub enum LogError {
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
