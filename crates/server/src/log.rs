//! The log stage of the ZAB core, behind a narrow device trait.
//!
//! Every transaction is encoded and handed to the device before its batch is published, and
//! the batch is published only after the device's `sync` returns: that is the ordering the
//! durable log (crates/storage, issue 3) will keep. Until it lands, the only device is
//! [`CountingLog`], which keeps nothing: zoocore does not yet survive a restart, and the
//! README says so.

use thiserror::Error;
use zoocore_proto::Zxid;

#[derive(Debug, Error)]
#[expect(
    dead_code,
    reason = "produced by the durable log device, which lands with issue 3"
)]
pub enum LogError {
    #[error("log append failed at zxid {zxid}: {why}")]
    Append { zxid: Zxid, why: String },
    #[error("log sync failed: {0}")]
    Sync(String),
}

/// Where the ZAB core writes transactions. Appends are buffered until `sync`.
pub trait LogDevice {
    fn append(&mut self, zxid: Zxid, record: &[u8]) -> Result<(), LogError>;
    /// Makes everything appended so far durable. An error is fatal to the server.
    fn sync(&mut self) -> Result<(), LogError>;
    fn stats(&self) -> LogStats;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub records: u64,
    pub bytes: u64,
    pub syncs: u64,
    pub last_zxid: Zxid,
}

/// The in-memory stand-in: counts what it is given, keeps nothing.
#[derive(Debug, Default)]
pub struct CountingLog {
    stats: LogStats,
}

impl LogDevice for CountingLog {
    fn append(&mut self, zxid: Zxid, record: &[u8]) -> Result<(), LogError> {
        assert!(
            zxid > self.stats.last_zxid,
            "zxid {zxid} not after {}",
            self.stats.last_zxid
        );
        self.stats.records += 1;
        self.stats.bytes += record.len() as u64;
        self.stats.last_zxid = zxid;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        self.stats.syncs += 1;
        Ok(())
    }

    fn stats(&self) -> LogStats {
        self.stats
    }
}
