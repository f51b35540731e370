//! A member's disk: the fault-injecting `MemDevice` of crates/storage (the files of the real
//! log and snapshots), its epoch files, and the fdatasyncs in flight. The disk outlives the
//! member's process: a crash drops the process and keeps the device, whose unsynced writes
//! survive as `MemDevice`'s crash modes say: all lost, a prefix of the write stream with the
//! last write torn, or a seeded random subset of writes, some torn (out-of-order page
//! writeback). Recovery is the real one: `storage::recover`, then (in an ensemble) only the
//! committed state, the snapshot, is loaded as the tree and the log after it goes to the
//! replica, as the server does.

use zoocore_member::forward::encode_payload;
use zoocore_member::{Epoch, Payload, SyncJob};
use zoocore_proto::Zxid;
use zoocore_storage::{
    recover, Crash, Device, Log, LogOptions, MemDevice, RecoverOptions, SyncHandle,
};
use zoocore_tree::Tree;

use crate::rng::Rng;

pub fn log_options() -> LogOptions {
    LogOptions {
        prealloc_bytes: 64 << 10,
        snap_count: 200,
        database_id: 1,
    }
}

pub struct Disk {
    pub dev: MemDevice,
    /// The epoch files (written durably at once when the member asks).
    pub epochs: (Epoch, Epoch),
    /// fdatasyncs in flight and when they complete.
    syncs: Vec<(u64, SyncJob<MemDevice>)>,
}

/// What recovery hands a new process.
pub struct Recovered {
    /// Standalone: the log replayed over the snapshot. Ensemble: the snapshot only.
    pub tree: Tree,
    pub log: Log<MemDevice>,
    /// Ensemble: the log after the snapshot, for the replica.
    pub entries: Vec<(Zxid, Payload)>,
}

impl Disk {
    pub fn new() -> Disk {
        Disk {
            dev: MemDevice::new(),
            epochs: (Epoch(0), Epoch(0)),
            syncs: Vec::new(),
        }
    }

    /// An fdatasync issued at `now`, completing after a drawn delay.
    pub fn sync_later(&mut self, rng: &mut Rng, now: u64, job: SyncJob<MemDevice>) {
        let at = now + rng.below(25);
        self.syncs.push((at, job));
    }

    /// The fdatasyncs complete by `now`, carried out on the device, with their results.
    pub fn syncs_done(&mut self, now: u64) -> Vec<(SyncJob<MemDevice>, std::io::Result<()>)> {
        let (due, later): (Vec<_>, Vec<_>) = self.syncs.drain(..).partition(|(at, _)| *at <= now);
        self.syncs = later;
        due.into_iter()
            .map(|(_, job)| {
                let result = job.request.handle.sync();
                (job, result)
            })
            .collect()
    }

    /// Power is cut: syncs in flight never complete, and the device keeps what the drawn
    /// crash mode says of its unsynced writes. Returns whether any unsynced write could
    /// survive (a torn tail is possible).
    pub fn crash(&mut self, rng: &mut Rng) -> bool {
        self.syncs.clear();
        let mode = match rng.below(4) {
            0 => Crash::LoseUnsynced,
            1 => Crash::KeepPrefix(rng.below(8 << 10)),
            _ => Crash::Random(rng.next_u64()),
        };
        self.dev.crash(mode);
        mode != Crash::LoseUnsynced
    }

    /// The real recovery, as a restarted server runs it.
    pub fn recover(&self, standalone: bool) -> Result<Recovered, String> {
        let r = recover(
            self.dev.clone(),
            RecoverOptions {
                log: log_options(),
                extended_types: true,
            },
        )
        .map_err(|e| format!("cannot recover: {e}"))?;
        if standalone {
            return Ok(Recovered {
                tree: r.tree,
                log: r.log,
                entries: Vec::new(),
            });
        }
        // The committed state only: the snapshot, never the log replayed over it.
        let tree = match r.snapshot_zxid {
            Some(z) => {
                let name = zoocore_storage::snapshot_name(z);
                let bytes = self.dev.read(&name).map_err(|e| format!("{name}: {e}"))?;
                zoocore_storage::decode_snapshot(&name, &bytes)
                    .map_err(|e| format!("{name}: {e}"))?
                    .tree
            }
            None => Tree::with_extended_types(true),
        };
        let entries = r
            .log
            .entries_after(tree.last_zxid())
            .map_err(|e| format!("cannot read the log: {e}"))?
            .into_iter()
            .map(|e| (e.zxid, encode_payload(None, e.time_ms, &e.txn)))
            .collect();
        Ok(Recovered {
            tree,
            log: r.log,
            entries,
        })
    }
}
