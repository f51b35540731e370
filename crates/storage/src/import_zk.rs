//! Import of an Apache ZooKeeper 3.x data directory: its newest `snapshot.<zxid>` rebuilt
//! into a zoocore `Tree`, the `log.<zxid>` txns after the snapshot's zxid replayed on it,
//! and the result written as a zoocore snapshot. The state is exactly ZooKeeper's: every
//! stored stat field (cversion as the count of child creates, raw `ephemeralOwner`), ACLs,
//! sessions with their timeouts, and the last zxid.
//!
//! The byte layouts are ZooKeeper's (jute, big-endian): `FileSnap`/`SerializeUtils`
//! (FileHeader "ZKSN", sessions, the ACL cache, `path`/`DataNode` records until the path
//! "/", an Adler32 seal, then in 3.6+ an optional `ZxidDigest` and a second seal) and
//! `FileTxnLog` (FileHeader "ZKLG", then `crc`, `txnLen`, txn bytes, an 'B' end-of-record
//! byte; zeros where the file was preallocated). ZooKeeper snapshots are fuzzy, so replay
//! starts after the snapshot's zxid and reproduces `DataTree.processTxn`'s tolerance:
//! a create of an existing node and a delete of a missing one change only what ZooKeeper
//! changes (the parent's cversion/pzxid for a plain `create`, the pzxid for a delete).
//! Everything read is untrusted: lengths are checked before use, nothing panics on bytes.
//! A torn log tail ends the log as ZooKeeper's `FileTxnIterator` does (noted in the
//! report); a bad checksum is an error naming the file and offset. Null data (jute's -1,
//! which `DataNode.serialize` and the create/setData txns write for a null `byte[]`) is
//! imported as null.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use zoocore_proto::{Acl, Bytes, DecodeError, ErrorCode, Reader, SessionId, Zxid};
use zoocore_tree::{
    ttl_owner, NodeState, RestoreError, StoredStat, Tree, TreeBuilder, Txn, CONTAINER_OWNER,
};

use crate::device::Device;
use crate::error::SnapshotError;
use crate::snapshot::{write_snapshot, SnapshotInfo};

/// `FileSnap.SNAP_MAGIC`: "ZKSN".
const ZK_SNAP_MAGIC: i32 = 0x5A4B_534E;
/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG".
const ZK_LOG_MAGIC: i32 = 0x5A4B_4C47;
const ZK_FILE_HEADER_BYTES: usize = 16;
/// `FileTxnLog`'s end-of-record marker.
const ZK_EOR: u8 = b'B';
/// `ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID`: the ACL key meaning OPEN_ACL_UNSAFE.
const ZK_OPEN_UNSAFE_ACL_ID: i64 = -1;

// ZooDefs.OpCode values that appear in txn logs.
const OP_ERROR: i32 = zoocore_proto::OpCode::Error as i32;
const OP_CREATE: i32 = zoocore_proto::OpCode::Create as i32;
const OP_DELETE: i32 = zoocore_proto::OpCode::Delete as i32;
const OP_SET_DATA: i32 = zoocore_proto::OpCode::SetData as i32;
const OP_SET_ACL: i32 = zoocore_proto::OpCode::SetAcl as i32;
const OP_CHECK: i32 = zoocore_proto::OpCode::Check as i32;
const OP_MULTI: i32 = zoocore_proto::OpCode::Multi as i32;
const OP_CREATE2: i32 = zoocore_proto::OpCode::Create2 as i32;
const OP_RECONFIG: i32 = zoocore_proto::OpCode::Reconfig as i32;
const OP_CREATE_CONTAINER: i32 = zoocore_proto::OpCode::CreateContainer as i32;
const OP_DELETE_CONTAINER: i32 = zoocore_proto::OpCode::DeleteContainer as i32;
const OP_CREATE_TTL: i32 = zoocore_proto::OpCode::CreateTtl as i32;
const OP_CREATE_SESSION: i32 = zoocore_proto::OpCode::CreateSession as i32;
const OP_CLOSE_SESSION: i32 = zoocore_proto::OpCode::CloseSession as i32;

/// Where to read from and how to interpret what is read.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// ZooKeeper's `dataLogDir`, when the logs are not in the data directory.
    pub data_log_dir: Option<PathBuf>,
    /// `zookeeper.extendedTypesEnabled` of the source (TTL nodes). `None` detects it: on
    /// when the log has a createTTL txn or a snapshot node carries a TTL owner encoding.
    pub extended_types: Option<bool>,
}

/// A file or part of one that the import did not use, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub file: PathBuf,
    pub reason: String,
}

/// What an import read and produced.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    /// The ZooKeeper snapshot the tree was rebuilt from, and its zxid.
    pub snapshot: PathBuf,
    pub snapshot_zxid: Zxid,
    /// The digest ZooKeeper 3.6+ appended to the snapshot (zxid, digest version, digest), if any.
    pub snapshot_digest: Option<(Zxid, i32, i64)>,
    /// The log files read, in order.
    pub logs: Vec<PathBuf>,
    /// Txns replayed (zxid after the snapshot's), and those skipped as already covered.
    pub txns_applied: u64,
    pub txns_before_snapshot: u64,
    /// The state imported: znodes (root included), sessions, the last zxid.
    pub nodes: u64,
    pub sessions: u64,
    pub ephemerals: u64,
    pub last_zxid: Zxid,
    pub extended_types: bool,
    /// Files not used (older snapshots and logs, compressed snapshots, torn tails).
    pub skipped: Vec<Skipped>,
    /// The zoocore snapshot written (`import_zk` only).
    pub written: Option<SnapshotInfo>,
}

/// Why an import failed. Every variant names the file; corruption names the offset.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("no ZooKeeper snapshot (snapshot.<zxid>) in {dir}")]
    NoSnapshot { dir: PathBuf },
    #[error("{file} at offset {offset}: {reason}")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{file}: unsupported: {reason}")]
    Unsupported { file: PathBuf, reason: String },
    #[error("{file}: the snapshot's tree cannot be rebuilt: {source}")]
    Restore { file: PathBuf, source: RestoreError },
    #[error("writing the zoocore snapshot: {0}")]
    Write(#[from] SnapshotError),
}

/// Reads the ZooKeeper data directory into a tree and writes it as a zoocore snapshot on
/// `out` (the zoocore data directory's device).
pub fn import_zk<D: Device>(
    zk_data_dir: &Path,
    opts: &ImportOptions,
    out: &D,
) -> Result<ImportReport, ImportError> {
    let (tree, mut report) = read_zk(zk_data_dir, opts)?;
    report.written = Some(write_snapshot(out, &tree)?);
    Ok(report)
}

/// Reads the ZooKeeper data directory into a tree, without writing anything.
pub fn read_zk(
    zk_data_dir: &Path,
    opts: &ImportOptions,
) -> Result<(Tree, ImportReport), ImportError> {
    let snap_dir = version_dir(zk_data_dir);
    let log_dir = opts
        .data_log_dir
        .as_deref()
        .map_or_else(|| snap_dir.clone(), version_dir);
    let mut report = ImportReport::default();

    let snaps = list_zxid_files(&snap_dir, "snapshot")?;
    let Some((snap_zxid, snap_path)) = snaps.last().cloned() else {
        return Err(ImportError::NoSnapshot { dir: snap_dir });
    };
    for (_, older) in &snaps[..snaps.len() - 1] {
        report.skipped.push(Skipped {
            file: older.clone(),
            reason: "older than the newest snapshot".into(),
        });
    }
    let bytes = read_file(&snap_path)?;
    let snap = parse_snapshot(&bytes).map_err(|e| e.at(&snap_path))?;
    report.snapshot = snap_path.clone();
    report.snapshot_zxid = snap_zxid;
    report.snapshot_digest = snap.digest;

    let entries = read_logs(&log_dir, snap_zxid, &mut report)?;
    let extended_types = opts.extended_types.unwrap_or_else(|| {
        let sessions: Vec<i64> = snap.sessions.iter().map(|s| s.0 .0).collect();
        entries.iter().any(|e| e.has_ttl)
            || snap.nodes.iter().any(|n| {
                is_ttl_owner(n.stat.ephemeral_owner) && !sessions.contains(&n.stat.ephemeral_owner)
            })
    });
    report.extended_types = extended_types;

    let mut tree =
        build_tree(&snap, snap_zxid, extended_types).map_err(|source| ImportError::Restore {
            file: snap_path.clone(),
            source,
        })?;
    for e in &entries {
        if e.zxid <= snap_zxid {
            report.txns_before_snapshot += 1;
            continue;
        }
        if e.zxid <= tree.last_zxid() {
            // ZooKeeper logs "highestZxid > next log" and goes on; a source this broken is
            // not imported silently.
            return Err(ImportError::Corrupt {
                file: report.logs[e.file].clone(),
                offset: e.offset,
                reason: format!("txn zxid {} is not after {}", e.zxid, tree.last_zxid()),
            });
        }
        let txn = replay_form(&tree, e.op, &e.txn);
        let applied = tree.apply(e.zxid, e.time_ms, &txn);
        assert!(!applied.stale, "txn {} replayed out of order", e.zxid);
        report.txns_applied += 1;
    }
    report.nodes = tree.node_count() as u64;
    report.sessions = tree.session_count() as u64;
    report.ephemerals = tree.ephemeral_count();
    report.last_zxid = tree.last_zxid();
    Ok((tree, report))
}

/// `dataDir/version-2` when it exists (`FileTxnSnapLog.VERSION`), else the directory given.
fn version_dir(dir: &Path) -> PathBuf {
    let v = dir.join("version-2");
    if v.is_dir() {
        v
    } else {
        dir.to_path_buf()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|source| ImportError::Io {
        file: path.to_path_buf(),
        source,
    })
}

/// `Util.getZxidFromName`: `<prefix>.<hex zxid>[.suffix]`, sorted by zxid.
fn list_zxid_files(dir: &Path, prefix: &str) -> Result<Vec<(Zxid, PathBuf)>, ImportError> {
    let io = |source| ImportError::Io {
        file: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let mut parts = name.split('.');
        if parts.next() != Some(prefix) {
            continue;
        }
        let Some(zxid) = parts.next().and_then(|z| u64::from_str_radix(z, 16).ok()) else {
            continue;
        };
        out.push((Zxid(zxid as i64), entry.path()));
    }
    out.sort();
    Ok(out)
}

/// A decoding failure before the file is known: an offset and a reason.
#[derive(Debug)]
struct Bad {
    offset: u64,
    reason: String,
    unsupported: bool,
}

impl Bad {
    fn new(offset: usize, reason: impl fmt::Display) -> Self {
        Bad {
            offset: offset as u64,
            reason: reason.to_string(),
            unsupported: false,
        }
    }

    fn at(self, file: &Path) -> ImportError {
        if self.unsupported {
            return ImportError::Unsupported {
                file: file.to_path_buf(),
                reason: self.reason,
            };
        }
        ImportError::Corrupt {
            file: file.to_path_buf(),
            offset: self.offset,
            reason: self.reason,
        }
    }
}

/// A jute decode error at `base` + the reader's offset.
fn decode_bad(base: usize, e: DecodeError) -> Bad {
    let offset = match e {
        DecodeError::Truncated { offset, .. }
        | DecodeError::NegativeLength { offset, .. }
        | DecodeError::NotUtf8 { offset }
        | DecodeError::UnexpectedNull { offset }
        | DecodeError::Unknown { offset, .. } => offset,
        DecodeError::Trailing { .. } => 0,
    };
    Bad::new(base + offset, e)
}

/// `java.util.zip.Adler32`, which both of ZooKeeper's file formats use.
fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that cannot overflow u32 before the modulo (zlib's NMAX).
    for chunk in bytes.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// One znode as the snapshot stores it, its ACL resolved from the cache.
struct ZkNode {
    path: String,
    data: Option<Vec<u8>>,
    acl: Arc<[Acl]>,
    stat: StoredStat,
}

struct ZkSnapshot {
    sessions: Vec<(SessionId, i32)>,
    nodes: Vec<ZkNode>,
    digest: Option<(Zxid, i32, i64)>,
}

/// `FileHeader{magic, version, dbid}`.
fn read_file_header(r: &mut Reader<'_>, magic: i32, what: &str) -> Result<(), Bad> {
    let got = r.read_i32().map_err(|e| decode_bad(0, e))?;
    if got != magic {
        return Err(Bad::new(
            0,
            format!("not a ZooKeeper {what}: magic {got:#x}"),
        ));
    }
    r.read_i32().map_err(|e| decode_bad(0, e))?;
    r.read_i64().map_err(|e| decode_bad(0, e))?;
    Ok(())
}

/// Compressed snapshots (`zookeeper.snapshot.compression.method`) start with the stream's
/// own magic instead of "ZKSN".
fn compression_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Some("gz")
    } else if bytes.starts_with(b"\x82SNAPPY\x00") {
        Some("snappy")
    } else {
        None
    }
}

/// `SnapStream.checkSealIntegrity`: an Adler32 of every byte before it, then the string "/".
fn check_seal(bytes: &[u8], r: &mut Reader<'_>) -> Result<(), Bad> {
    let at = r.offset();
    let want = adler32(&bytes[..at]);
    let got = r.read_i64().map_err(|e| decode_bad(0, e))?;
    if got != i64::from(want) {
        return Err(Bad::new(
            at,
            format!("Adler32 checksum {got:#x} does not match the content's {want:#x}"),
        ));
    }
    let slash = r.read_str().map_err(|e| decode_bad(0, e))?;
    if slash != "/" {
        return Err(Bad::new(
            at + 8,
            format!("seal ends with {slash:?}, not \"/\""),
        ));
    }
    Ok(())
}

fn parse_snapshot(bytes: &[u8]) -> Result<ZkSnapshot, Bad> {
    if let Some(method) = compression_of(bytes) {
        return Err(Bad {
            unsupported: true,
            ..Bad::new(0, format!("{method}-compressed snapshot; decompress it first (or set zookeeper.snapshot.compression.method to none and let ZooKeeper write a new snapshot)"))
        });
    }
    let mut r = Reader::new(bytes);
    let d = |e| decode_bad(0, e);
    read_file_header(&mut r, ZK_SNAP_MAGIC, "snapshot")?;
    // SerializeUtils.deserializeSnapshot: the sessions, then the DataTree.
    let count = r.read_i32().map_err(d)?;
    let mut sessions = Vec::new();
    for _ in 0..count.max(0) {
        let id = r.read_i64().map_err(d)?;
        let timeout = r.read_i32().map_err(d)?;
        sessions.push((SessionId(id), timeout));
    }
    // ReferenceCountedACLCache.deserialize: a map of long → vector<ACL>.
    let count = r.read_i32().map_err(d)?;
    let mut acls: Vec<(i64, Arc<[Acl]>)> = Vec::new();
    for _ in 0..count.max(0) {
        let key = r.read_i64().map_err(d)?;
        let list: Vec<Acl> = r.read_records().map_err(d)?;
        acls.push((key, Arc::from(list)));
    }
    let open: Arc<[Acl]> = Arc::from(Acl::open_unsafe());
    // DataTree.deserialize: path, DataNode until the path "/"; the root's path is "".
    let mut nodes = Vec::new();
    loop {
        let at = r.offset();
        let path = r.read_str().map_err(d)?;
        if path == "/" {
            break;
        }
        let data = r.read_opt_buffer().map_err(d)?.map(<[u8]>::to_vec);
        let acl_key = r.read_i64().map_err(d)?;
        let acl = if acl_key == ZK_OPEN_UNSAFE_ACL_ID {
            open.clone()
        } else {
            match acls.iter().find(|(k, _)| *k == acl_key) {
                Some((_, a)) => a.clone(),
                None => {
                    return Err(Bad::new(
                        at,
                        format!("{path:?} uses ACL {acl_key}, which the ACL cache lacks"),
                    ))
                }
            }
        };
        // StatPersisted field order.
        let czxid = r.read_i64().map_err(d)?;
        let mzxid = r.read_i64().map_err(d)?;
        let ctime = r.read_i64().map_err(d)?;
        let mtime = r.read_i64().map_err(d)?;
        let version = r.read_i32().map_err(d)?;
        let cversion = r.read_i32().map_err(d)?;
        let aversion = r.read_i32().map_err(d)?;
        let ephemeral_owner = r.read_i64().map_err(d)?;
        let pzxid = r.read_i64().map_err(d)?;
        let path = if path.is_empty() { "/" } else { path };
        nodes.push(ZkNode {
            path: path.to_owned(),
            data,
            acl,
            stat: StoredStat {
                czxid,
                mzxid,
                pzxid,
                ctime,
                mtime,
                ephemeral_owner,
                version,
                cversion,
                aversion,
            },
        });
    }
    check_seal(bytes, &mut r)?;
    // DataTree.deserializeZxidDigest (3.6+): absent in older snapshots.
    let mut digest = None;
    if !r.is_empty() {
        let zxid = r.read_i64().map_err(d)?;
        let version = r.read_i32().map_err(d)?;
        let value = r.read_i64().map_err(d)?;
        check_seal(bytes, &mut r)?;
        digest = Some((Zxid(zxid), version, value));
    }
    if !r.is_empty() {
        return Err(Bad::new(
            r.offset(),
            format!("{} unexpected bytes after the snapshot", r.remaining()),
        ));
    }
    Ok(ZkSnapshot {
        sessions,
        nodes,
        digest,
    })
}

/// `EphemeralType`'s TTL encoding: high byte 0xff, the next two bytes 0.
fn is_ttl_owner(owner: i64) -> bool {
    (owner as u64) >> 56 == 0xff && (owner as u64 >> 40) & 0xffff == 0
}

/// ZooKeeper serialises depth-first; the builder takes parents first in key order
/// (depth, then path bytes).
fn build_tree(snap: &ZkSnapshot, zxid: Zxid, extended_types: bool) -> Result<Tree, RestoreError> {
    let mut order: Vec<&ZkNode> = snap.nodes.iter().collect();
    let depth = |p: &str| if p == "/" { 0 } else { p.matches('/').count() };
    order.sort_by(|a, b| {
        (depth(&a.path), a.path.as_bytes()).cmp(&(depth(&b.path), b.path.as_bytes()))
    });
    let mut b = TreeBuilder::new(zxid, extended_types);
    for n in order {
        b.add_node(&NodeState {
            path: &n.path,
            data: n.data.as_deref(),
            acl: &n.acl,
            stat: n.stat,
        })?;
    }
    for &(id, timeout) in &snap.sessions {
        b.add_session(id, timeout)?;
    }
    b.finish()
}

/// One logged txn, mapped to zoocore's form.
struct LogEntry {
    zxid: Zxid,
    time_ms: i64,
    /// The header's opcode (the NodeExists replay rule depends on it).
    op: i32,
    txn: Txn,
    has_ttl: bool,
    /// Where the record starts: an index into `ImportReport::logs` and a file offset.
    file: usize,
    offset: u64,
}

/// `FileTxnLog.getLogFiles` then `FileTxnIterator`: the newest log starting at or before
/// the snapshot's zxid and every later one, read in order.
fn read_logs(
    dir: &Path,
    snap_zxid: Zxid,
    report: &mut ImportReport,
) -> Result<Vec<LogEntry>, ImportError> {
    let logs = match list_zxid_files(dir, "log") {
        Ok(l) => l,
        Err(ImportError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let first = logs
        .iter()
        .map(|(z, _)| *z)
        .filter(|z| *z <= snap_zxid)
        .max()
        .unwrap_or(Zxid::ZERO);
    let mut entries = Vec::new();
    for (zxid, path) in logs {
        if zxid < first {
            report.skipped.push(Skipped {
                file: path,
                reason: "covered by the snapshot".into(),
            });
            continue;
        }
        let bytes = read_file(&path)?;
        let from = entries.len();
        let tail = parse_log(&bytes, &mut entries).map_err(|e| e.at(&path))?;
        for e in &mut entries[from..] {
            e.file = report.logs.len();
        }
        if let Some(reason) = tail {
            report.skipped.push(Skipped {
                file: path.clone(),
                reason,
            });
        }
        report.logs.push(path);
    }
    Ok(entries)
}

/// Parses one log file's records into `out`. Returns a note when the file ends in a torn
/// record (ZooKeeper's iterator treats that as the end of the file).
fn parse_log(bytes: &[u8], out: &mut Vec<LogEntry>) -> Result<Option<String>, Bad> {
    let mut r = Reader::new(bytes);
    if bytes.len() < ZK_FILE_HEADER_BYTES {
        return Ok(Some(format!(
            "{} bytes: shorter than a log header, ignored",
            bytes.len()
        )));
    }
    read_file_header(&mut r, ZK_LOG_MAGIC, "txn log")?;
    loop {
        let start = r.offset();
        if r.remaining() < 12 {
            return Ok(torn(bytes, start));
        }
        let crc = r.read_i64().map_err(|e| decode_bad(0, e))?;
        let len_at = r.offset();
        let len = r.read_i32().map_err(|e| decode_bad(0, e))?;
        // Preallocated zeros (or a null buffer): the end of the log.
        if len == 0 || len == -1 {
            return Ok(None);
        }
        let Ok(len) = usize::try_from(len) else {
            return Err(Bad::new(len_at, format!("negative txn length {len}")));
        };
        if r.remaining() < len + 1 {
            return Ok(torn(bytes, start));
        }
        let txn_at = r.offset();
        let txn = r.take(len).map_err(|e| decode_bad(0, e))?;
        if r.read_u8().map_err(|e| decode_bad(0, e))? != ZK_EOR {
            return Ok(torn(bytes, start));
        }
        let want = adler32(txn);
        if crc != i64::from(want) {
            return Err(Bad::new(
                start,
                format!("txn Adler32 checksum {crc:#x} does not match the txn's {want:#x}"),
            ));
        }
        let mut entry =
            parse_txn(txn).map_err(|e| Bad::new(txn_at + e.offset as usize, e.reason))?;
        entry.offset = start as u64;
        out.push(entry);
    }
}

fn torn(bytes: &[u8], start: usize) -> Option<String> {
    if bytes[start..].iter().all(|&b| b == 0) {
        return None;
    }
    Some(format!(
        "torn record at offset {start} ignored (the end of the log, as ZooKeeper reads it)"
    ))
}

/// `SerializeUtils.deserializeTxn`: a TxnHeader, then the record its type names; a
/// TxnDigest may follow (3.6+), which zoocore does not need.
fn parse_txn(bytes: &[u8]) -> Result<LogEntry, Bad> {
    let mut r = Reader::new(bytes);
    let d = |e| decode_bad(0, e);
    let client = r.read_i64().map_err(d)?;
    let _cxid = r.read_i32().map_err(d)?;
    let zxid = Zxid(r.read_i64().map_err(d)?);
    let time_ms = r.read_i64().map_err(d)?;
    let op = r.read_i32().map_err(d)?;
    let mut has_ttl = false;
    let txn = match op {
        OP_MULTI => {
            // MultiTxn: vector<Txn{type, buffer}>, each buffer one record.
            let subs = r
                .read_vec(|r| Ok((r.read_i32()?, r.read_buffer()?, r.offset())))
                .map_err(d)?;
            let mut txns = Vec::new();
            for (kind, body, end) in subs {
                let base = end - body.len();
                has_ttl |= kind == OP_CREATE_TTL;
                let mut sub = Reader::new(body);
                txns.push(
                    parse_record(kind, client, &mut sub)
                        .map_err(|b| Bad::new(base + b.offset as usize, b.reason))?,
                );
            }
            Txn::Multi(txns)
        }
        _ => {
            has_ttl = op == OP_CREATE_TTL;
            parse_record(op, client, &mut r)?
        }
    };
    Ok(LogEntry {
        zxid,
        time_ms,
        op,
        txn,
        has_ttl,
        file: 0,
        offset: 0,
    })
}

fn parse_record(op: i32, client: i64, r: &mut Reader<'_>) -> Result<Txn, Bad> {
    let d = |e| decode_bad(0, e);
    let at = r.offset();
    Ok(match op {
        OP_CREATE | OP_CREATE2 => {
            let path = r.read_string().map_err(d)?;
            let data = r.read_opt_buffer().map_err(d)?.map(Bytes::copy_from_slice);
            let acl = r.read_records().map_err(d)?;
            let ephemeral = r.read_bool().map_err(d)?;
            // CreateTxnV0 (no parentCVersion) reads as -1: "fix it up on apply".
            let parent_cversion = if r.is_empty() {
                -1
            } else {
                r.read_i32().map_err(d)?
            };
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner: if ephemeral { client } else { 0 },
                parent_cversion,
            }
        }
        OP_CREATE_CONTAINER | OP_CREATE_TTL => {
            let path = r.read_string().map_err(d)?;
            let data = r.read_opt_buffer().map_err(d)?.map(Bytes::copy_from_slice);
            let acl = r.read_records().map_err(d)?;
            let parent_cversion = r.read_i32().map_err(d)?;
            let ephemeral_owner = if op == OP_CREATE_CONTAINER {
                CONTAINER_OWNER
            } else {
                let ttl = r.read_i64().map_err(d)?;
                ttl_owner(ttl).ok_or_else(|| Bad::new(at, format!("TTL {ttl} ms out of range")))?
            };
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            }
        }
        OP_DELETE | OP_DELETE_CONTAINER => Txn::Delete {
            path: r.read_string().map_err(d)?,
        },
        OP_SET_DATA | OP_RECONFIG => Txn::SetData {
            path: r.read_string().map_err(d)?,
            data: r.read_opt_buffer().map_err(d)?.map(Bytes::copy_from_slice),
            version: r.read_i32().map_err(d)?,
        },
        OP_SET_ACL => Txn::SetAcl {
            path: r.read_string().map_err(d)?,
            acl: r.read_records().map_err(d)?,
            version: r.read_i32().map_err(d)?,
        },
        OP_CHECK => Txn::Check {
            path: r.read_string().map_err(d)?,
            version: r.read_i32().map_err(d)?,
        },
        OP_CREATE_SESSION => Txn::CreateSession {
            session: SessionId(client),
            timeout_ms: r.read_i32().map_err(d)?,
        },
        // CloseSessionTxn{paths2Delete} since 3.6; empty before.
        OP_CLOSE_SESSION => Txn::CloseSession {
            session: SessionId(client),
            paths: if r.is_empty() {
                Vec::new()
            } else {
                r.read_strings().map_err(d)?
            },
        },
        OP_ERROR => Txn::Error(ErrorCode(r.read_i32().map_err(d)?)),
        other => {
            return Err(Bad {
                unsupported: true,
                ..Bad::new(at, format!("txn type {other} at offset {at}"))
            })
        }
    })
}

/// The form of a txn that reproduces `DataTree.processTxn` on this tree. A create whose
/// node exists changes nothing in ZooKeeper unless its opcode is a plain `create` (then the
/// parent's cversion/pzxid move forward: `setCversionPzxid` for fuzzy snapshots); zoocore's
/// apply always does the latter, so other creates of an existing node become no-op checks.
/// Inside a multi, existence follows the sub-txns before it.
fn replay_form(tree: &Tree, op: i32, txn: &Txn) -> Txn {
    match txn {
        Txn::Multi(subs) => {
            if subs.iter().any(|t| matches!(t, Txn::Error(_))) {
                return txn.clone();
            }
            let mut changed: Vec<(String, bool)> = Vec::new();
            let exists = |changed: &[(String, bool)], p: &str| {
                changed
                    .iter()
                    .rev()
                    .find(|(q, _)| q == p)
                    .map_or_else(|| tree.exists(p), |(_, e)| *e)
            };
            let out = subs
                .iter()
                .map(|t| match t {
                    Txn::Create { path, .. } => {
                        if exists(&changed, path) {
                            noop_unless_plain_create(t, op_of_sub(t))
                        } else {
                            let parent = parent_path(path);
                            if exists(&changed, parent) {
                                changed.push((path.clone(), true));
                            }
                            t.clone()
                        }
                    }
                    Txn::Delete { path } => {
                        changed.push((path.clone(), false));
                        t.clone()
                    }
                    _ => t.clone(),
                })
                .collect();
            Txn::Multi(out)
        }
        Txn::Create { path, .. } if tree.exists(path) => noop_unless_plain_create(txn, op),
        _ => txn.clone(),
    }
}

/// Sub-txn creates are logged with their own opcode; a plain `create` is the one that
/// ZooKeeper adjusts on NodeExists. Our parsed form lost the opcode for sub-txns, so
/// containers and TTLs are told apart by owner; create and create2 read the same.
fn op_of_sub(t: &Txn) -> i32 {
    match t {
        Txn::Create {
            ephemeral_owner, ..
        } if *ephemeral_owner == CONTAINER_OWNER => OP_CREATE_CONTAINER,
        Txn::Create {
            ephemeral_owner, ..
        } if is_ttl_owner(*ephemeral_owner) => OP_CREATE_TTL,
        _ => OP_CREATE,
    }
}

fn noop_unless_plain_create(txn: &Txn, op: i32) -> Txn {
    match txn {
        Txn::Create { .. } if op == OP_CREATE => txn.clone(),
        Txn::Create { path, .. } => Txn::Check {
            path: path.clone(),
            version: 0,
        },
        _ => txn.clone(),
    }
}

fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        // zlib's adler32("Wikipedia") from the algorithm's description.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let big = vec![0xffu8; 100_000];
        let mut a = 1u64;
        let mut b = 0u64;
        for &x in &big {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&big)), (b << 16) | a);
    }

    #[test]
    fn ttl_owner_detection() {
        assert!(is_ttl_owner(ttl_owner(3_600_000).expect("valid ttl")));
        assert!(!is_ttl_owner(CONTAINER_OWNER));
        assert!(!is_ttl_owner(0x0100_0020_09b4_0000));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("/a"), "/");
        assert_eq!(parent_path("/a/b"), "/a");
    }
}
