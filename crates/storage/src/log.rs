//! `Log`: the append side of the transaction log (docs/LOG.md).
//!
//! The ZAB core drives it in batches: `append` every txn of one reactor turn, then one
//! `sync` (or `sync_begin`, an fdatasync the server issues itself, then `sync_end`), then
//! publish. Only a completed sync moves `synced_zxid`, the durability point that releases
//! acks and responses. Any IO error poisons the log: it refuses everything afterwards, and
//! the server stops and recovers from disk rather than retrying on a page cache it can no
//! longer trust.
//!
//! Room on the disk: a new segment is `preAllocSize` bytes, or, when the file system has
//! less room (`Device::available_bytes` less a small reserve), as much as there is, with a
//! `LogNotice` for the server to log. When there is not even room for the record that
//! starts it, or creating it meets ENOSPC, the append fails with `LogError::NoSpace` and the
//! log is *not* poisoned: a roll happens only once everything before it is synced, so
//! nothing unsynced is at risk, and the next append simply tries again (which is how writes
//! resume once room is freed). A failed write or fdatasync of records still poisons.
//!
//! Invariants: zxids strictly increase; bytes before `synced` in the current segment are
//! durable and never rewritten (except by `truncate_after`); a segment is rolled only when
//! all of it is synced, so every segment but the newest is entirely durable — the rule that
//! lets recovery tell a torn tail from corruption.

use std::collections::VecDeque;
use std::io;

use zoocore_proto::Zxid;

use crate::device::{Device, DeviceFile, Fill};
use crate::error::{is_out_of_room, LogError};
use crate::format::{
    encode_record, scan_segment, segment_name, SegmentHeader, RECORD_OVERHEAD_BYTES,
    SEGMENT_HEADER_BYTES,
};

/// How the log lays out segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// `preAllocSize`: bytes of each segment file (at most 4 GiB).
    pub prealloc_bytes: u64,
    /// `snapCount`: a segment rolls after this many records.
    pub snap_count: u64,
    /// Written into every segment header; chosen by the caller when the directory is new.
    pub database_id: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            prealloc_bytes: 64 << 20,
            snap_count: 100_000,
            database_id: 0,
        }
    }
}

/// The room a segment leaves free on the device when it is sized to what is available: a
/// sixteenth of `preAllocSize`, at most 1 MiB. It keeps room for directory entries, the
/// small files beside the log (myid, epoch files) and a segment's temporary name, so the
/// log filling the disk does not make those fail first.
pub fn free_reserve_bytes(prealloc_bytes: u64) -> u64 {
    (prealloc_bytes / 16).min(1 << 20)
}

/// The smallest spare segment worth preparing ahead; with less room the roll sizes its own
/// segment to the record it must hold.
pub const SPARE_MIN_BYTES: u64 = 64 << 10;

/// The length of a new segment: `preAllocSize`, or the room the device has left (less the
/// reserve) when that is less; `None` when that is below `needed` bytes. A device that
/// cannot tell its room (`available` is `None`) gets `preAllocSize`.
pub fn segment_bytes_for(prealloc_bytes: u64, available: Option<u64>, needed: u64) -> Option<u64> {
    let len = match available {
        None => prealloc_bytes,
        Some(avail) => prealloc_bytes.min(avail.saturating_sub(free_reserve_bytes(prealloc_bytes))),
    };
    (len >= needed).then_some(len)
}

/// The length of a segment made from the reserve, for the txns that may use it
/// (`Log::append_may_use_reserve`): small, so the reserve lasts for many of them.
pub const RESERVE_SEGMENT_BYTES: u64 = 64 << 10;

/// The length of a segment for a txn that may use the reserve once `segment_bytes_for`
/// found no room outside it: `RESERVE_SEGMENT_BYTES` (or `needed`, if more), or what is
/// left; `None` when not even `needed` is left.
pub fn reserve_segment_bytes_for(
    prealloc_bytes: u64,
    available: Option<u64>,
    needed: u64,
) -> Option<u64> {
    let avail = available?;
    let len = prealloc_bytes
        .min(avail)
        .min(RESERVE_SEGMENT_BYTES.max(needed));
    (len >= needed).then_some(len)
}

/// Something the log did that the operator should hear of (this crate has no logger; the
/// server takes these with `Log::next_notice` and logs them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogNotice {
    /// A segment was preallocated shorter than `preAllocSize` because the disk had less room.
    ShortSegment {
        file: String,
        bytes: u64,
        prealloc_bytes: u64,
        available_bytes: u64,
    },
}

impl std::fmt::Display for LogNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogNotice::ShortSegment {
                file,
                bytes,
                prealloc_bytes,
                available_bytes,
            } => write!(
                f,
                "log segment {file} preallocated to {bytes} bytes, less than preAllocSize \
                 ({prealloc_bytes} bytes): the disk has {available_bytes} bytes free"
            ),
        }
    }
}

/// Notices kept until the server takes them; older ones are dropped past this (a driver
/// that never takes them must not grow memory).
const NOTICES_MAX: usize = 16;

/// Counters for mntr and metrics (fsync latency is measured by the caller, who owns time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    pub records: u64,
    pub bytes: u64,
    pub syncs: u64,
    pub segments_created: u64,
    pub segments_removed: u64,
    /// Segments preallocated shorter than `preAllocSize` for lack of room.
    pub segments_short: u64,
    /// Appends refused with `LogError::NoSpace`.
    pub appends_refused: u64,
}

/// A segment the log knows of, oldest first; the last one is the current segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub name: String,
    pub first_zxid: Zxid,
    pub prev_zxid: Zxid,
}

#[derive(Debug)]
pub(crate) struct Current<F> {
    pub(crate) file: F,
    pub(crate) seq: u64,
    pub(crate) len: u64,
    /// The end of what was appended; `synced <= flushed <= written`.
    pub(crate) written: u64,
    /// The end of what was handed to the device (pwrite); `pending` holds the rest.
    pub(crate) flushed: u64,
    pub(crate) synced: u64,
    pub(crate) records: u64,
    /// Records appended since the last flush, written in one call when the batch is synced
    /// (or when they pass `FLUSH_BYTES`): one pwrite per batch instead of one per record.
    pub(crate) pending: Vec<u8>,
}

/// Appended bytes past which they are written at once, before the batch's sync, so a batch
/// of large records does not gather in memory.
pub const FLUSH_BYTES: usize = 256 << 10;

/// One txn read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub zxid: Zxid,
    pub time_ms: i64,
    pub txn: Vec<u8>,
}

/// An fdatasync for the caller to issue (`handle`), covering the log up to `zxid`.
#[derive(Debug)]
pub struct SyncRequest<H> {
    pub handle: H,
    pub zxid: Zxid,
    seq: u64,
    offset: u64,
}

/// The transaction log over a device.
#[derive(Debug)]
pub struct Log<D: Device> {
    dev: D,
    opts: LogOptions,
    segments: Vec<SegmentInfo>,
    current: Option<Current<D::File>>,
    next_seq: u64,
    last_zxid: Zxid,
    synced_zxid: Zxid,
    poisoned: bool,
    stats: LogStats,
    spare: Spare<D::File>,
    /// A spare job failed: no other is handed out until the next roll, so a full disk costs
    /// one failed job (and one warning) per segment, not one per batch.
    spare_blocked: bool,
    notices: VecDeque<LogNotice>,
    /// The segment rolled away last, open until the next roll hands it to `to_forget`. The
    /// log is read back only at recovery and for a DIFF
    /// older than the proposals kept in memory, so the current segment and the one before it
    /// stay cached (what a restart replays after a snapshot) and nothing older: left cached,
    /// the log grew the page cache by every byte written, and on a VM whose host backs guest
    /// memory when it is first touched each new page-cache page made the log's pwrite
    /// several times dearer (a 3-voter ensemble kept up lost 15-40% of its writes/s after a
    /// few GB; docs/BENCHMARKS.md, session 15).
    retired: Option<D::File>,
    /// The segment before `retired`, for the next `SpareJob` to drop from the page cache
    /// (`DeviceFile::forget`, a hint): dropping 64 MiB of pages takes the kernel a
    /// millisecond or more, work for the blocking thread, not the commit path.
    to_forget: Option<D::File>,
}

/// The next segment's file, preallocated and durable, made ready off the hot path.
#[derive(Debug)]
enum Spare<F> {
    None,
    /// A `SpareJob` is out; its result comes back through `adopt_next_segment`.
    Pending,
    Ready(SpareSegment<F>),
}

/// Name of the spare segment file while it has no header: a `.tmp`, so recovery removes
/// one left behind by a crash.
pub const SPARE_SEGMENT_NAME: &str = "log.spare.tmp";

/// A preallocated, durable segment file without a header yet (its blocks reserved, reading
/// as zeros), to become the next segment at the roll (`Log::adopt_next_segment`).
#[derive(Debug)]
pub struct SpareSegment<F> {
    file: F,
    name: String,
    /// The device's free bytes when the file was sized, if it could tell.
    available: Option<u64>,
}

impl<F: DeviceFile> SpareSegment<F> {
    /// The file's length: `preAllocSize`, or less when the disk had less room.
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.is_empty()
    }
}

/// Creating the spare segment: the slow part of a roll (reserving `preAllocSize` bytes and
/// syncing the file and its directory; writing zeros where the file system cannot reserve),
/// made to run on a blocking thread. `Send` for a `Send` device.
#[derive(Debug)]
pub struct SpareJob<D: Device> {
    dev: D,
    len: u64,
    /// An older segment to drop from the page cache on the way (`Log::to_forget`).
    forget: Option<D::File>,
}

impl<D: Device> SpareJob<D> {
    /// Creates the preallocated, durable file (replacing one a failed earlier job left),
    /// `preAllocSize` bytes or what room the disk has; an error of kind `StorageFull` when
    /// that is less than `SPARE_MIN_BYTES`. With `Fill::Allocate`: its blocks are reserved,
    /// not written. Zero-filling them (what spares did until session 7) made each fdatasync
    /// a data-only write, but wrote every segment twice: with three members on one disk it
    /// cost 8% of the write throughput and 6% of the CPU per write, and standalone neither
    /// throughput nor the low-rate p99 was better for it (docs/LOG.md, "Rolling").
    pub fn run(self) -> io::Result<SpareSegment<D::File>> {
        if let Some(mut old) = self.forget {
            let len = old.len();
            // A hint: a failure leaves the pages cached, nothing else changes.
            let _ = old.forget(0, len);
        }
        if self.dev.list()?.iter().any(|n| n == SPARE_SEGMENT_NAME) {
            self.dev.remove(SPARE_SEGMENT_NAME)?;
        }
        let available = self.dev.available_bytes()?;
        let needed = SPARE_MIN_BYTES.min(self.len);
        let Some(len) = segment_bytes_for(self.len, available, needed) else {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "{} bytes free on the disk, not enough for a segment of {needed} bytes \
                     and a reserve of {}",
                    available.unwrap_or(0),
                    free_reserve_bytes(self.len)
                ),
            ));
        };
        let file = self
            .dev
            .create_segment(SPARE_SEGMENT_NAME, len, Fill::Allocate)?;
        Ok(SpareSegment {
            file,
            name: SPARE_SEGMENT_NAME.to_owned(),
            available,
        })
    }
}

impl<D: Device> Log<D> {
    /// A log over a directory known to hold no segments (recovery opens existing ones).
    pub(crate) fn from_parts(
        dev: D,
        opts: LogOptions,
        segments: Vec<SegmentInfo>,
        current: Option<(D::File, u64, u64)>,
        last_zxid: Zxid,
    ) -> Self {
        assert!(
            opts.prealloc_bytes <= u64::from(u32::MAX),
            "preAllocSize {} over 4 GiB",
            opts.prealloc_bytes
        );
        assert!(
            opts.prealloc_bytes > SEGMENT_HEADER_BYTES + RECORD_OVERHEAD_BYTES,
            "preAllocSize {} too small",
            opts.prealloc_bytes
        );
        assert!(opts.snap_count > 0, "snapCount is positive");
        let current = current.map(|(file, end, records)| Current {
            len: file.len(),
            file,
            seq: 0,
            written: end,
            flushed: end,
            synced: end,
            records,
            pending: Vec::new(),
        });
        Log {
            dev,
            opts,
            segments,
            current,
            next_seq: 1,
            last_zxid,
            synced_zxid: last_zxid,
            poisoned: false,
            stats: LogStats::default(),
            spare: Spare::None,
            spare_blocked: false,
            retired: None,
            to_forget: None,
            notices: VecDeque::new(),
        }
    }

    /// The oldest notice not yet taken (for the server to log).
    pub fn next_notice(&mut self) -> Option<LogNotice> {
        self.notices.pop_front()
    }

    fn notice(&mut self, n: LogNotice) {
        if self.notices.len() == NOTICES_MAX {
            self.notices.pop_front();
        }
        self.notices.push_back(n);
    }

    pub fn device(&self) -> &D {
        &self.dev
    }

    pub fn options(&self) -> LogOptions {
        self.opts
    }

    /// The last appended zxid (durable or not).
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Everything up to this zxid is durable.
    pub fn synced_zxid(&self) -> Zxid {
        self.synced_zxid
    }

    pub fn stats(&self) -> LogStats {
        self.stats
    }

    pub fn segments(&self) -> &[SegmentInfo] {
        &self.segments
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Whether the next segment should be prepared now: none is ready or being made, no job
    /// failed since the last roll, and the current segment is past half full (by bytes or by
    /// `snapCount` records), or there is no current segment. Then `next_segment_job` hands
    /// out the work.
    pub fn wants_next_segment(&self) -> bool {
        if !matches!(self.spare, Spare::None) || self.poisoned || self.spare_blocked {
            return false;
        }
        self.current
            .as_ref()
            .is_none_or(|c| c.written >= c.len / 2 || c.records >= self.opts.snap_count.div_ceil(2))
    }

    /// The creation of the next segment's file, to run off the hot path (a blocking
    /// thread); `None` unless `wants_next_segment`. Until its result is given to
    /// `adopt_next_segment`, no other job is handed out; a roll by count waits for it, and a
    /// roll by size that comes first creates its segment synchronously, as without a spare.
    pub fn next_segment_job(&mut self) -> Option<SpareJob<D>> {
        if !self.wants_next_segment() {
            return None;
        }
        self.spare = Spare::Pending;
        Some(SpareJob {
            dev: self.dev.clone(),
            len: self.opts.prealloc_bytes,
            forget: self.to_forget.take(),
        })
    }

    /// Takes the result of a `SpareJob`: the next roll uses the file (it then writes only
    /// the header, syncs it and renames the file). A spare shorter than `preAllocSize` (the
    /// disk had less room) is used too, with a `LogNotice`. A failed job is returned as is
    /// and does not poison the log: the roll falls back to creating its segment itself,
    /// which reports the error where it matters; no other job is handed out until then.
    pub fn adopt_next_segment(
        &mut self,
        result: io::Result<SpareSegment<D::File>>,
    ) -> io::Result<()> {
        let min = SEGMENT_HEADER_BYTES + RECORD_OVERHEAD_BYTES + 1;
        match result {
            Ok(spare) if (min..=self.opts.prealloc_bytes).contains(&spare.file.len()) => {
                if spare.file.len() < self.opts.prealloc_bytes {
                    self.stats.segments_short += 1;
                    self.notice(LogNotice::ShortSegment {
                        file: spare.name.clone(),
                        bytes: spare.file.len(),
                        prealloc_bytes: self.opts.prealloc_bytes,
                        available_bytes: spare.available.unwrap_or(0),
                    });
                }
                self.spare = Spare::Ready(spare);
                Ok(())
            }
            Ok(spare) => {
                self.spare = Spare::None;
                self.spare_blocked = true;
                let len = spare.file.len();
                // Not ours to keep: its room belongs to the roll's own segment.
                let _ = self.dev.remove(&spare.name);
                Err(io::Error::other(format!(
                    "spare segment {} is {len} bytes, not between {min} and preAllocSize {}",
                    spare.name, self.opts.prealloc_bytes
                )))
            }
            Err(e) => {
                self.spare = Spare::None;
                self.spare_blocked = true;
                Err(e)
            }
        }
    }

    /// Whether a prepared segment is ready for the next roll.
    pub fn has_next_segment(&self) -> bool {
        matches!(self.spare, Spare::Ready(_))
    }

    /// Whether a txn of `txn_bytes` fits in the current segment without rolling. A caller
    /// that must never block in `append` ends its batch (syncs) when this turns false; the
    /// next append then rolls without a sync of its own.
    pub fn fits(&self, txn_bytes: usize) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| c.written + RECORD_OVERHEAD_BYTES + txn_bytes as u64 <= c.len)
    }

    fn check(&self) -> Result<(), LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        Ok(())
    }

    fn current_name(&self) -> String {
        self.segments
            .last()
            .map_or_else(String::new, |s| s.name.clone())
    }

    /// Appends one txn, applied at `time_ms`. Not durable until a sync covers it.
    pub fn append(&mut self, zxid: Zxid, time_ms: i64, txn: &[u8]) -> Result<(), LogError> {
        self.append_inner(zxid, time_ms, txn, false)
    }

    /// `append` for a txn that may draw on the free-space reserve when the disk has no room
    /// outside it (sessions being created and closed, so that clients can still connect and
    /// read while writes are refused): a roll then makes a segment of
    /// `RESERVE_SEGMENT_BYTES` from the reserve. Other txns may use what such a segment has
    /// left, as they use the tail of any segment.
    pub fn append_may_use_reserve(
        &mut self,
        zxid: Zxid,
        time_ms: i64,
        txn: &[u8],
    ) -> Result<(), LogError> {
        self.append_inner(zxid, time_ms, txn, true)
    }

    fn append_inner(
        &mut self,
        zxid: Zxid,
        time_ms: i64,
        txn: &[u8],
        use_reserve: bool,
    ) -> Result<(), LogError> {
        self.check()?;
        assert!(
            zxid > self.last_zxid,
            "zxid {zxid} not after {}",
            self.last_zxid
        );
        assert!(!txn.is_empty(), "empty txn at zxid {zxid}");
        let record_bytes = RECORD_OVERHEAD_BYTES + txn.len() as u64;
        if SEGMENT_HEADER_BYTES + record_bytes > self.opts.prealloc_bytes {
            return Err(LogError::RecordTooLarge {
                zxid,
                bytes: txn.len() as u64,
                segment_bytes: self.opts.prealloc_bytes,
            });
        }
        if self.needs_roll(record_bytes) {
            let fits_current = self
                .current
                .as_ref()
                .is_some_and(|c| c.written + record_bytes <= c.len);
            if !fits_current && self.current.as_ref().is_some_and(|c| c.written > c.synced) {
                // Full mid-batch: the old segment must be entirely durable before a new one
                // exists (docs/LOG.md). Callers avoid this blocking sync with `fits`.
                self.sync()?;
            }
            match self.roll(zxid, record_bytes, use_reserve) {
                Ok(()) => {}
                // A roll by record count is housekeeping: without room for a new segment
                // the record goes where there still is room.
                Err(e) if e.is_no_space() && fits_current => {}
                Err(e) => {
                    if e.is_no_space() {
                        self.stats.appends_refused += 1;
                    }
                    return Err(e);
                }
            }
        }
        let cur = self.current.as_mut().expect("a current segment after roll");
        let synced = u32::try_from(cur.synced).expect("segment offsets fit in u32");
        let before = cur.pending.len();
        encode_record(&mut cur.pending, synced, zxid, time_ms, txn);
        let record_len = (cur.pending.len() - before) as u64;
        assert!(
            cur.written + record_len <= cur.len,
            "record at {} overruns segment of {}",
            cur.written,
            cur.len
        );
        cur.written += record_len;
        cur.records += 1;
        self.last_zxid = zxid;
        self.stats.records += 1;
        self.stats.bytes += record_len;
        if cur.pending.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the appended records not yet handed to the device, in one call. An error
    /// poisons the log, as any failed write of records.
    fn flush(&mut self) -> Result<(), LogError> {
        let name = self.current_name();
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        if cur.pending.is_empty() {
            return Ok(());
        }
        assert_eq!(
            cur.flushed + cur.pending.len() as u64,
            cur.written,
            "pending bytes end at the written end"
        );
        if let Err(source) = cur.file.write_at(cur.flushed, &cur.pending) {
            self.poisoned = true;
            return Err(LogError::Write {
                file: name,
                offset: cur.flushed,
                source,
            });
        }
        cur.flushed = cur.written;
        cur.pending.clear();
        Ok(())
    }

    fn needs_roll(&self, record_bytes: u64) -> bool {
        match &self.current {
            None => true,
            Some(c) if c.written + record_bytes > c.len => true,
            // Roll by count only at a batch boundary, never mid-batch, and not while the
            // spare is still being made: the segment has room, and a roll now would make a
            // whole new segment on the caller's thread, the ZAB core (docs/BENCHMARKS.md,
            // "Snapshots under load": when that meant zero-filling 64 MiB, at snapCount=8000
            // and 8,000 writes/s it was most of the stall).
            Some(c) => {
                c.written == c.synced
                    && !matches!(self.spare, Spare::Pending)
                    && c.records >= self.opts.snap_count
            }
        }
    }

    /// Creates the segment whose first record is `zxid` (and must hold `record_bytes`) and
    /// makes it current. Out of room, it fails with `NoSpace` and leaves the log as it was.
    fn roll(&mut self, zxid: Zxid, record_bytes: u64, use_reserve: bool) -> Result<(), LogError> {
        if let Some(c) = &self.current {
            assert_eq!(c.written, c.synced, "rolling an unsynced segment");
        }
        let name = segment_name(zxid);
        let tmp = format!("{name}.tmp");
        let needed = SEGMENT_HEADER_BYTES + record_bytes;
        let spare = match std::mem::replace(&mut self.spare, Spare::None) {
            Spare::Ready(spare) if spare.file.len() >= needed => Some(spare),
            // Too short for this record (the disk had little room when it was made): its
            // room goes to a segment sized for the record.
            Spare::Ready(spare) => {
                let SpareSegment {
                    file, name: from, ..
                } = spare;
                drop(file);
                if let Err(source) = self.dev.remove(&from) {
                    self.poisoned = true;
                    return Err(LogError::Io { file: from, source });
                }
                None
            }
            // Not ready in time: this roll creates its own segment, and the job's file,
            // once adopted, serves the roll after.
            Spare::Pending => {
                self.spare = Spare::Pending;
                None
            }
            Spare::None => None,
        };
        let (mut file, from) = match spare {
            Some(s) => (s.file, s.name),
            None => (
                self.create_sized(&name, &tmp, needed, use_reserve)?,
                tmp.clone(),
            ),
        };
        // The header records the length this segment got, which is less than preAllocSize
        // when the disk had less room (docs/LOG.md).
        let header = SegmentHeader {
            first_zxid: zxid,
            prev_zxid: self.last_zxid,
            database_id: self.opts.database_id,
            prealloc_bytes: file.len(),
        };
        let done = file
            .write_at(0, &header.encode())
            .and_then(|()| file.sync(0, SEGMENT_HEADER_BYTES))
            .and_then(|()| self.dev.rename(&from, &name));
        if let Err(source) = done {
            if is_out_of_room(&source) {
                // Nothing acknowledged is in this file: drop it and give its room back.
                drop(file);
                let _ = self.dev.remove(&from);
                return Err(LogError::NoSpace {
                    file: name,
                    needed_bytes: needed,
                    reason: source.to_string(),
                });
            }
            // The device state is unknown: stop like any other IO error.
            self.poisoned = true;
            return Err(LogError::Create { file: name, source });
        }
        let done_with = self.current.replace(Current {
            len: file.len(),
            file,
            seq: self.next_seq,
            written: SEGMENT_HEADER_BYTES,
            flushed: SEGMENT_HEADER_BYTES,
            synced: SEGMENT_HEADER_BYTES,
            records: 0,
            pending: Vec::new(),
        });
        // Only once the roll has succeeded (a failed one goes on appending to the segment):
        // the segment before the one just finished is to leave the page cache, by the next
        // spare job. One still waiting means no job ran for a whole segment (they stop after
        // a failure until a roll): dropped here, the rare case.
        if let Some(done) = done_with {
            if let Some(older) = self.retired.replace(done.file) {
                if let Some(mut missed) = self.to_forget.replace(older) {
                    let len = missed.len();
                    let _ = missed.forget(0, len);
                }
            }
        }
        self.next_seq += 1;
        self.segments.push(SegmentInfo {
            name,
            first_zxid: zxid,
            prev_zxid: self.last_zxid,
        });
        self.stats.segments_created += 1;
        self.spare_blocked = false;
        Ok(())
    }

    /// A new preallocated segment file `tmp` of `preAllocSize` bytes, or of the room the disk
    /// has when that is less (at least `needed`). `NoSpace` when there is not that much room
    /// or the creation meets ENOSPC anyway (the device removes a partial file); any other
    /// error poisons.
    fn create_sized(
        &mut self,
        name: &str,
        tmp: &str,
        needed: u64,
        use_reserve: bool,
    ) -> Result<D::File, LogError> {
        let prealloc = self.opts.prealloc_bytes;
        // The figure only sizes the segment: without it, the creation itself says whether
        // the full size fits.
        let available = self.dev.available_bytes().unwrap_or(None);
        let no_space = |reason: String| LogError::NoSpace {
            file: name.to_owned(),
            needed_bytes: needed,
            reason,
        };
        let len = segment_bytes_for(prealloc, available, needed).or_else(|| {
            use_reserve
                .then(|| reserve_segment_bytes_for(prealloc, available, needed))
                .flatten()
        });
        let Some(len) = len else {
            return Err(no_space(format!(
                "{} bytes free, and the log leaves {} free",
                available.unwrap_or(0),
                free_reserve_bytes(prealloc)
            )));
        };
        match self.dev.create_segment(tmp, len, Fill::Allocate) {
            Ok(file) => {
                if len < prealloc {
                    self.stats.segments_short += 1;
                    self.notice(LogNotice::ShortSegment {
                        file: name.to_owned(),
                        bytes: len,
                        prealloc_bytes: prealloc,
                        available_bytes: available.unwrap_or(0),
                    });
                }
                Ok(file)
            }
            Err(e) if is_out_of_room(&e) => Err(no_space(e.to_string())),
            Err(source) => {
                self.poisoned = true;
                Err(LogError::Create {
                    file: name.to_owned(),
                    source,
                })
            }
        }
    }

    /// Makes every appended txn durable (fdatasync) and returns
    /// the durable zxid. An error poisons the log.
    pub fn sync(&mut self) -> Result<Zxid, LogError> {
        self.check()?;
        self.flush()?;
        let name = self.current_name();
        let Some(cur) = self.current.as_mut() else {
            return Ok(self.synced_zxid);
        };
        if cur.written == cur.synced {
            return Ok(self.synced_zxid);
        }
        if let Err(source) = cur.file.sync(cur.synced, cur.written - cur.synced) {
            self.poisoned = true;
            return Err(LogError::Sync { file: name, source });
        }
        cur.synced = cur.written;
        self.synced_zxid = self.last_zxid;
        self.stats.syncs += 1;
        Ok(self.synced_zxid)
    }

    /// Split-phase sync for a reactor: what to fdatasync, covering everything appended so
    /// far; `None` when nothing is unsynced. Appends may continue while it is in flight.
    pub fn sync_begin(
        &mut self,
    ) -> Result<Option<SyncRequest<<D::File as DeviceFile>::SyncHandle>>, LogError> {
        self.check()?;
        self.flush()?;
        let Some(cur) = self.current.as_ref() else {
            return Ok(None);
        };
        if cur.written == cur.synced {
            return Ok(None);
        }
        Ok(Some(SyncRequest {
            handle: cur.file.sync_handle(),
            zxid: self.last_zxid,
            seq: cur.seq,
            offset: cur.written,
        }))
    }

    /// Completes a `sync_begin` with the fdatasync's result; returns the durable zxid.
    pub fn sync_end<H>(
        &mut self,
        req: SyncRequest<H>,
        result: io::Result<()>,
    ) -> Result<Zxid, LogError> {
        self.check()?;
        if let Err(source) = result {
            self.poisoned = true;
            return Err(LogError::Sync {
                file: self.current_name(),
                source,
            });
        }
        if let Some(cur) = self.current.as_mut() {
            if cur.seq == req.seq {
                assert!(req.offset <= cur.written, "sync past the written end");
                cur.synced = cur.synced.max(req.offset);
            }
        }
        // A segment rolled since the request was synced in full before the roll.
        self.synced_zxid = self.synced_zxid.max(req.zxid);
        self.stats.syncs += 1;
        Ok(self.synced_zxid)
    }

    /// Reads every record with a zxid after `after`, oldest first (for DIFF to a learner and
    /// for tests). Loads one segment at a time.
    pub fn entries_after(&self, after: Zxid) -> Result<Vec<LogEntry>, LogError> {
        let mut out = Vec::new();
        for (i, seg) in self.segments.iter().enumerate() {
            let next_prev = self.segments.get(i + 1).map(|s| s.prev_zxid);
            if next_prev.is_some_and(|p| p <= after) {
                continue;
            }
            let mut bytes = self.read_segment(&seg.name)?;
            let newest = i + 1 == self.segments.len();
            if newest {
                self.overlay_pending(&mut bytes);
            }
            let scan = scan_segment(&bytes, newest).map_err(|bad| LogError::Corrupt {
                file: seg.name.clone(),
                offset: bad.offset,
                reason: bad.reason,
            })?;
            for r in scan.records.iter().filter(|r| r.zxid > after) {
                out.push(LogEntry {
                    zxid: r.zxid,
                    time_ms: r.time_ms,
                    txn: bytes[r.txn_start as usize..r.txn_end as usize].to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Puts the current segment's appended but unflushed records where they will be written,
    /// so a reader sees everything appended.
    fn overlay_pending(&self, bytes: &mut Vec<u8>) {
        let Some(cur) = &self.current else { return };
        if cur.pending.is_empty() {
            return;
        }
        let start = cur.flushed as usize;
        let end = start + cur.pending.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(&cur.pending);
    }

    fn read_segment(&self, name: &str) -> Result<Vec<u8>, LogError> {
        self.dev.read(name).map_err(|source| LogError::Io {
            file: name.to_owned(),
            source,
        })
    }

    /// ZAB TRUNC: drops every record after `zxid` (durably) and makes the log end there.
    pub fn truncate_after(&mut self, zxid: Zxid) -> Result<(), LogError> {
        self.check()?;
        // What is kept must be on the device before the segment is read back.
        self.flush()?;
        self.current = None;
        let mut floor = zxid.min(self.last_zxid);
        while self.segments.last().is_some_and(|s| s.first_zxid > zxid) {
            let seg = self.segments.pop().expect("a segment");
            self.remove_segment(&seg.name)?;
            floor = seg.prev_zxid;
        }
        let Some(seg) = self.segments.last().cloned() else {
            self.last_zxid = floor;
            self.synced_zxid = floor;
            return Ok(());
        };
        let bytes = self.read_segment(&seg.name)?;
        let scan = scan_segment(&bytes, true).map_err(|bad| LogError::Corrupt {
            file: seg.name.clone(),
            offset: bad.offset,
            reason: bad.reason,
        })?;
        let keep: Vec<_> = scan.records.iter().filter(|r| r.zxid <= zxid).collect();
        let end = keep.last().map_or(SEGMENT_HEADER_BYTES, |r| {
            r.txn_end + crate::format::RECORD_CRC_BYTES
        });
        let dirty_end = scan.torn.map_or(scan.end, |t| t.nonzero_end);
        let io_err = |source| LogError::Io {
            file: seg.name.clone(),
            source,
        };
        let mut file = self.dev.open_segment(&seg.name).map_err(io_err)?;
        if dirty_end > end {
            let zeros = vec![0u8; (dirty_end - end) as usize];
            let done = file
                .write_at(end, &zeros)
                .and_then(|()| file.sync(end, dirty_end - end));
            if let Err(source) = done {
                self.poisoned = true;
                return Err(LogError::Sync {
                    file: seg.name.clone(),
                    source,
                });
            }
        }
        self.last_zxid = keep.last().map_or(seg.prev_zxid, |r| r.zxid);
        self.synced_zxid = self.last_zxid;
        self.current = Some(Current {
            len: file.len(),
            file,
            seq: self.next_seq,
            written: end,
            flushed: end,
            synced: end,
            records: keep.len() as u64,
            pending: Vec::new(),
        });
        self.next_seq += 1;
        Ok(())
    }

    fn remove_segment(&mut self, name: &str) -> Result<(), LogError> {
        self.dev.remove(name).map_err(|source| LogError::Io {
            file: name.to_owned(),
            source,
        })?;
        self.stats.segments_removed += 1;
        Ok(())
    }

    /// Removes the segments whose every record is at or below `snapshot_zxid` (a durable
    /// snapshot covers them). The current segment is never removed. Returns the names removed.
    pub fn purge(&mut self, snapshot_zxid: Zxid) -> Result<Vec<String>, LogError> {
        let mut removed = Vec::new();
        while self.segments.len() > 1 && self.segments[1].prev_zxid <= snapshot_zxid {
            let seg = self.segments.remove(0);
            self.remove_segment(&seg.name)?;
            removed.push(seg.name);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::{Crash, MemDevice};

    /// A batch's records reach the device in one write, at its sync; readers see them before.
    #[test]
    fn a_batch_is_written_in_one_call_at_its_sync() {
        let dev = MemDevice::new();
        let mut log = crate::new_log(
            dev.clone(),
            LogOptions {
                prealloc_bytes: 1 << 20,
                ..LogOptions::default()
            },
        );
        for i in 1..=10 {
            log.append(Zxid(i), 0, b"txn").unwrap();
        }
        let cur = log.current.as_ref().unwrap();
        assert_eq!(cur.flushed, SEGMENT_HEADER_BYTES, "nothing written yet");
        assert_eq!(log.entries_after(Zxid::ZERO).unwrap().len(), 10);
        log.sync().unwrap();
        let cur = log.current.as_ref().unwrap();
        assert_eq!((cur.flushed, cur.synced), (cur.written, cur.written));
        assert!(cur.pending.is_empty());
        // Crash: all ten survive, and an eleventh appended after the sync does not.
        log.append(Zxid(11), 0, b"txn").unwrap();
        dev.crash(Crash::LoseUnsynced);
        let got = log.entries_after(Zxid::ZERO).unwrap();
        assert_eq!(got.len(), 11, "the reader still sees what it appended");
        let bytes = dev.read(&log.segments()[0].name).unwrap();
        let scan = scan_segment(&bytes, true).unwrap();
        assert_eq!(scan.records.len(), 10, "the device has the synced ten");
    }

    /// Past `FLUSH_BYTES` appended records are written at once, before the sync.
    #[test]
    fn large_batches_are_written_as_they_grow() {
        let dev = MemDevice::new();
        let mut log = crate::new_log(dev, LogOptions::default());
        let big = vec![7u8; FLUSH_BYTES / 2];
        log.append(Zxid(1), 0, &big).unwrap();
        assert!(!log.current.as_ref().unwrap().pending.is_empty());
        log.append(Zxid(2), 0, &big).unwrap();
        let cur = log.current.as_ref().unwrap();
        assert!(cur.pending.is_empty(), "written once past the bound");
        assert_eq!(cur.flushed, cur.written);
        assert_eq!(cur.synced, SEGMENT_HEADER_BYTES, "but not synced");
    }

    #[test]
    fn segments_are_sized_to_the_room_less_the_reserve() {
        let mib = 1 << 20;
        let prealloc = 64 * mib;
        assert_eq!(free_reserve_bytes(prealloc), mib);
        assert_eq!(free_reserve_bytes(2048), 128);
        // Unknown room, or plenty: preAllocSize.
        assert_eq!(segment_bytes_for(prealloc, None, 100), Some(prealloc));
        assert_eq!(
            segment_bytes_for(prealloc, Some(1 << 40), 100),
            Some(prealloc)
        );
        // Less room: what there is, less the reserve.
        assert_eq!(
            segment_bytes_for(prealloc, Some(20 * mib), 100),
            Some(19 * mib)
        );
        // Not even the record that must start it, or nothing past the reserve.
        assert_eq!(segment_bytes_for(prealloc, Some(mib + 99), 100), None);
        assert_eq!(segment_bytes_for(prealloc, Some(mib / 2), 100), None);
        assert_eq!(segment_bytes_for(prealloc, Some(mib + 100), 100), Some(100));
        // From the reserve: small segments, as long as the record fits what is left.
        let small = RESERVE_SEGMENT_BYTES;
        assert_eq!(
            reserve_segment_bytes_for(prealloc, Some(mib), 100),
            Some(small)
        );
        assert_eq!(
            reserve_segment_bytes_for(prealloc, Some(5000), 100),
            Some(5000)
        );
        assert_eq!(reserve_segment_bytes_for(prealloc, Some(99), 100), None);
        assert_eq!(
            reserve_segment_bytes_for(prealloc, Some(mib), small + 1),
            Some(small + 1)
        );
        assert_eq!(reserve_segment_bytes_for(2048, Some(mib), 100), Some(2048));
        assert_eq!(reserve_segment_bytes_for(prealloc, None, 100), None);
    }
}
