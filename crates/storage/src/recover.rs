//! Start-up recovery: the newest snapshot whose checksums hold, then the log replayed after
//! its zxid with the idempotent `Tree::apply`, a torn tail truncated, and corruption
//! reported with its file and offset (docs/LOG.md, docs/SNAPSHOT.md).
//!
//! Snapshots that fail validation are skipped and their reasons returned (this crate has no
//! logger); the log must then reach back far enough (`LogGap` otherwise), so a bad snapshot
//! can cost time but never silently lose state. Recovery returns the open `Log`, positioned
//! to append after the last record, so the server goes straight from recovery to serving.

use zoocore_proto::{Record, Zxid};
use zoocore_tree::{Tree, Txn};

use crate::device::{Device, DeviceFile, FileBytes};
use crate::error::RecoveryError;
use crate::format::{parse_name, scan_segment, SegmentHeader, SegmentScan, Torn};
use crate::log::{Log, LogOptions, SegmentInfo};
use crate::snapshot::{decode_snapshot, parse_snapshot_name};

/// What recovery needs to know that is not on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoverOptions {
    pub log: LogOptions,
    /// For a fresh tree when there is no snapshot (`zookeeper.extendedTypesEnabled`).
    pub extended_types: bool,
}

/// A snapshot that was not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSnapshot {
    pub file: String,
    pub reason: String,
}

/// The torn tail recovery removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    pub file: String,
    pub offset: u64,
    pub bytes: u64,
}

/// The state recovered from a data directory, and the log ready for appends.
#[derive(Debug)]
pub struct Recovered<D: Device> {
    pub tree: Tree,
    pub last_zxid: Zxid,
    /// The snapshot recovery started from, if any.
    pub snapshot_zxid: Option<Zxid>,
    pub skipped_snapshots: Vec<SkippedSnapshot>,
    pub truncated: Option<TruncatedTail>,
    /// Log records applied on top of the snapshot.
    pub replayed: u64,
    pub log: Log<D>,
}

fn io_err(file: &str) -> impl Fn(std::io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError::Io {
        file: file.to_owned(),
        source,
    }
}

fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> RecoveryError {
    RecoveryError::Corrupt {
        file: file.to_owned(),
        offset,
        reason: reason.into(),
    }
}

/// Loads the newest valid snapshot, or a fresh tree when none is valid.
fn load_base<D: Device>(
    dev: &D,
    names: &[String],
    opts: &RecoverOptions,
    skipped: &mut Vec<SkippedSnapshot>,
) -> Result<(Tree, Option<Zxid>), RecoveryError> {
    let mut snaps: Vec<(Zxid, &String)> = names
        .iter()
        .filter_map(|n| parse_snapshot_name(n).map(|z| (z, n)))
        .collect();
    snaps.sort();
    for (zxid, name) in snaps.into_iter().rev() {
        let bytes = dev.read_mapped(name).map_err(io_err(name))?;
        match decode_snapshot(name, &bytes) {
            Ok(s) if s.zxid == zxid => return Ok((s.tree, Some(zxid))),
            Ok(s) => skipped.push(SkippedSnapshot {
                file: name.clone(),
                reason: format!("holds zxid {}, named for {zxid}", s.zxid),
            }),
            Err(e) => skipped.push(SkippedSnapshot {
                file: name.clone(),
                reason: e.to_string(),
            }),
        }
    }
    Ok((Tree::with_extended_types(opts.extended_types), None))
}

/// Recovers the state in `dev`'s directory.
pub fn recover<D: Device>(dev: D, opts: RecoverOptions) -> Result<Recovered<D>, RecoveryError> {
    let mut names = dev.list().map_err(io_err("."))?;
    for tmp in names.iter().filter(|n| n.ends_with(".tmp")) {
        dev.remove(tmp).map_err(io_err(tmp))?;
    }
    names.retain(|n| !n.ends_with(".tmp"));

    let mut skipped = Vec::new();
    let (mut tree, snapshot_zxid) = load_base(&dev, &names, &opts, &mut skipped)?;
    let base = tree.last_zxid();

    let mut segs: Vec<(Zxid, &String)> = names
        .iter()
        .filter_map(|n| parse_name(n, "log").map(|z| (z, n)))
        .collect();
    segs.sort();

    // Map every segment and check its header first: a segment whose records the snapshot
    // covers entirely (the next segment starts at or below the snapshot's zxid) is not
    // scanned; its header is checked, and its last zxid is the next header's `prev_zxid`.
    let mut maps = Vec::with_capacity(segs.len());
    let mut headers = Vec::with_capacity(segs.len());
    for (_, name) in &segs {
        let bytes = dev.read_mapped(name).map_err(io_err(name))?;
        let h = SegmentHeader::decode(&bytes).map_err(|b| corrupt(name, b.offset, b.reason))?;
        maps.push(bytes);
        headers.push(h);
    }

    let mut infos = Vec::new();
    let mut prev_last: Option<Zxid> = None;
    let mut replayed = 0u64;
    let mut newest: Option<(String, SegmentScan)> = None;
    for (i, (zxid, name)) in segs.iter().enumerate() {
        let is_newest = i + 1 == segs.len();
        let bytes = std::mem::replace(&mut maps[i], FileBytes::Empty);
        let h = headers[i];
        if h.first_zxid != *zxid {
            return Err(corrupt(
                name,
                8,
                format!("header first zxid {}", h.first_zxid),
            ));
        }
        if let Some(prev) = prev_last {
            if h.prev_zxid != prev {
                return Err(corrupt(
                    name,
                    16,
                    format!(
                        "prev zxid {} but the previous segment ends at {prev}",
                        h.prev_zxid
                    ),
                ));
            }
        }
        let info = SegmentInfo {
            name: (*name).clone(),
            first_zxid: h.first_zxid,
            prev_zxid: h.prev_zxid,
        };
        if let Some(next) = headers.get(i + 1).filter(|n| n.prev_zxid <= base) {
            prev_last = Some(next.prev_zxid);
            infos.push(info);
            continue;
        }
        let scan =
            scan_segment(&bytes, is_newest).map_err(|b| corrupt(name, b.offset, b.reason))?;
        let needed = scan.records.last().is_some_and(|r| r.zxid > base);
        if needed && replayed == 0 && h.prev_zxid > base {
            return Err(RecoveryError::LogGap {
                base,
                file: (*name).clone(),
                prev_zxid: h.prev_zxid,
            });
        }
        for r in scan.records.iter().filter(|r| r.zxid > base) {
            let txn_bytes = &bytes[r.txn_start as usize..r.txn_end as usize];
            let txn = Txn::from_bytes(txn_bytes)
                .map_err(|e| corrupt(name, r.offset, format!("txn does not decode: {e}")))?;
            let applied = tree.apply(r.zxid, r.time_ms, &txn);
            assert!(
                !applied.stale,
                "replayed zxid {} was not after the tree",
                r.zxid
            );
            replayed += 1;
        }
        prev_last = Some(scan.last_zxid());
        infos.push(info);
        if is_newest {
            newest = Some(((*name).clone(), scan));
        }
    }

    let mut truncated = None;
    let current = match newest {
        None => None,
        Some((name, scan)) => {
            let mut file = dev.open_segment(&name).map_err(io_err(&name))?;
            if let Some(Torn {
                offset,
                nonzero_end,
            }) = scan.torn
            {
                truncate_tail(&mut file, offset, nonzero_end).map_err(io_err(&name))?;
                truncated = Some(TruncatedTail {
                    file: name.clone(),
                    offset,
                    bytes: nonzero_end - offset,
                });
            }
            // Records that survived a process kill may still be only in the page cache:
            // make them durable before anything is served from them.
            file.sync(0, scan.end).map_err(io_err(&name))?;
            Some((file, scan.end, scan.records.len() as u64))
        }
    };
    let last_zxid = tree.last_zxid().max(prev_last.unwrap_or(Zxid::ZERO));
    let log = Log::from_parts(dev, opts.log, infos, current, last_zxid);
    Ok(Recovered {
        last_zxid: tree.last_zxid(),
        tree,
        snapshot_zxid,
        skipped_snapshots: skipped,
        truncated,
        replayed,
        log,
    })
}

fn truncate_tail<F: DeviceFile>(file: &mut F, offset: u64, end: u64) -> std::io::Result<()> {
    assert!(
        offset <= end && end <= file.len(),
        "tail {offset}..{end} in bounds"
    );
    let zeros = vec![0u8; (end - offset) as usize];
    file.write_at(offset, &zeros)?;
    file.sync(offset, end - offset)
}
