//! Snapshot files (docs/SNAPSHOT.md): `SnapshotWriter` serialises a pinned, immutable
//! version of the tree chunk by chunk, so the caller can yield between chunks while commits
//! continue on newer versions; `decode_snapshot` validates every checksum and rebuilds the
//! tree exactly, checking the digest the footer recorded.
//!
//! A snapshot becomes visible only complete and durable: written to `<name>.tmp`, synced,
//! renamed (the device makes the rename durable). The decoder takes bytes from disk and
//! never panics on them: every length is checked against what remains before it is used.
//!
//! Version 2 added null data (a data length of `u32::MAX`, [`NULL_DATA`]); it is otherwise
//! version 1, which the reader still takes (a version-1 file has no null: its writer had
//! none to write). A binary from before version 2 refuses a version-2 file by its version,
//! rather than misreading a null as a huge length.

use zoocore_proto::{Acl, Id, Perms, SessionId, Zxid};
use zoocore_tree::{NodeState, StoredStat, Tree, TreeBuilder};

use crate::device::{Device, DeviceFile};
use crate::error::SnapshotError;
use crate::format::parse_name;

pub const SNAPSHOT_MAGIC: u32 = 0x5A43_534E;
pub const SNAPSHOT_FOOTER_MAGIC: u32 = 0x5A43_5346;
pub const SNAPSHOT_VERSION: u32 = 2;
/// The oldest version the reader still loads.
pub const SNAPSHOT_VERSION_MIN: u32 = 1;
/// A node's data length that means null data (version 2 on).
pub const NULL_DATA: u32 = u32::MAX;
pub const SNAPSHOT_HEADER_BYTES: usize = 40;
pub const SNAPSHOT_FOOTER_BYTES: usize = 40;
const CHUNK_NODES: u32 = 1;
const CHUNK_SESSIONS: u32 = 2;
/// Largest chunk payload a reader accepts.
pub const CHUNK_PAYLOAD_BYTES_MAX: u32 = 64 << 20;
/// Target payload of one chunk the writer produces (a chunk holds at least one entry).
pub const CHUNK_PAYLOAD_BYTES_TARGET: usize = 1 << 20;
/// The writer asks the device to write back every this many bytes (`write_behind`), so a
/// snapshot leaves at most two such windows dirty in the page cache.
pub const WRITE_BEHIND_BYTES: u64 = 8 << 20;
const FLAG_EXTENDED_TYPES: u32 = 1;

const _: () = assert!(CHUNK_PAYLOAD_BYTES_TARGET < CHUNK_PAYLOAD_BYTES_MAX as usize);
// No real data length can be the null marker: a node fits in one chunk.
const _: () = assert!(CHUNK_PAYLOAD_BYTES_MAX < NULL_DATA);

/// The name of the snapshot at `zxid`.
pub fn snapshot_name(zxid: Zxid) -> String {
    format!("snapshot.{:016x}", zxid.0)
}

/// The zxid of a snapshot file name, if it is one.
pub fn parse_snapshot_name(name: &str) -> Option<Zxid> {
    parse_name(name, "snapshot")
}

/// A snapshot written and durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub zxid: Zxid,
    pub digest: u64,
    pub bytes: u64,
    pub nodes: u64,
    pub sessions: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Nodes { after: Option<String> },
    Sessions { done: usize },
    Footer,
    Done,
}

/// Writes one snapshot of a pinned tree version, a chunk per `step`.
#[derive(Debug)]
pub struct SnapshotWriter<D: Device> {
    dev: D,
    file: D::File,
    tree: Tree,
    name: String,
    tmp: String,
    phase: Phase,
    offset: u64,
    /// Where the last `write_behind` window ended.
    behind: u64,
    /// The write-behind window; 0: none.
    behind_window: u64,
    crc: u32,
    buf: Vec<u8>,
}

fn snap_io(file: &str) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        file: file.to_owned(),
        source,
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("snapshot field fits in u32");
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(b);
}

fn encode_node(buf: &mut Vec<u8>, n: &NodeState<'_>) {
    put_bytes(buf, n.path.as_bytes());
    match n.data {
        Some(data) => put_bytes(buf, data),
        None => buf.extend_from_slice(&NULL_DATA.to_be_bytes()),
    }
    let s = n.stat;
    for v in [
        s.czxid,
        s.mzxid,
        s.pzxid,
        s.ctime,
        s.mtime,
        s.ephemeral_owner,
    ] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    for v in [s.version, s.cversion, s.aversion] {
        buf.extend_from_slice(&v.to_be_bytes());
    }
    let count = u32::try_from(n.acl.len()).expect("acl count fits in u32");
    buf.extend_from_slice(&count.to_be_bytes());
    for a in n.acl {
        buf.extend_from_slice(&a.perms.0.to_be_bytes());
        put_bytes(buf, a.id.scheme.as_bytes());
        put_bytes(buf, a.id.id.as_bytes());
    }
}

/// Frames a chunk around `payload`.
fn frame_chunk(out: &mut Vec<u8>, kind: u32, count: u32, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    let len = u32::try_from(payload.len()).expect("chunk fits in u32");
    assert!(
        len <= CHUNK_PAYLOAD_BYTES_MAX,
        "chunk of {len} bytes over the limit"
    );
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

impl<D: Device> SnapshotWriter<D> {
    /// Starts a snapshot of `tree` (a clone pins the version: O(1), shares every node),
    /// written as a streaming file (`Device::create_streaming`: direct IO on a real disk).
    pub fn new(dev: D, tree: Tree) -> Result<Self, SnapshotError> {
        Self::open(dev, tree, true)
    }

    /// `new`, but written through the page cache (`Device::create`).
    pub fn new_buffered(dev: D, tree: Tree) -> Result<Self, SnapshotError> {
        Self::open(dev, tree, false)
    }

    fn open(dev: D, tree: Tree, streaming: bool) -> Result<Self, SnapshotError> {
        let zxid = tree.last_zxid();
        let name = snapshot_name(zxid);
        let tmp = format!("{name}.tmp");
        let file = if streaming {
            dev.create_streaming(&tmp)
        } else {
            dev.create(&tmp)
        };
        let file = file.map_err(snap_io(&tmp))?;
        let mut w = SnapshotWriter {
            dev,
            file,
            name,
            tmp,
            phase: Phase::Nodes { after: None },
            offset: 0,
            behind: 0,
            behind_window: WRITE_BEHIND_BYTES,
            crc: 0,
            buf: Vec::new(),
            tree,
        };
        let mut h = Vec::with_capacity(SNAPSHOT_HEADER_BYTES);
        h.extend_from_slice(&SNAPSHOT_MAGIC.to_be_bytes());
        h.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        h.extend_from_slice(&zxid.0.to_be_bytes());
        h.extend_from_slice(&(w.tree.node_count() as u64).to_be_bytes());
        h.extend_from_slice(&(w.tree.session_count() as u64).to_be_bytes());
        let flags = if w.tree.extended_types() {
            FLAG_EXTENDED_TYPES
        } else {
            0
        };
        h.extend_from_slice(&flags.to_be_bytes());
        let crc = crc32c::crc32c(&h);
        h.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(h.len(), SNAPSHOT_HEADER_BYTES, "header size");
        if let Err(e) = w.write(&h) {
            let _ = w.dev.remove(&w.tmp);
            return Err(e);
        }
        Ok(w)
    }

    pub fn zxid(&self) -> Zxid {
        self.tree.last_zxid()
    }

    /// Asks the device to write back every `bytes` as the file is written (default
    /// [`WRITE_BEHIND_BYTES`]); 0: never before the final sync.
    pub fn set_write_behind(&mut self, bytes: u64) {
        self.behind_window = bytes;
    }

    /// Bytes written to the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.file
            .write_at(self.offset, bytes)
            .map_err(snap_io(&self.tmp))?;
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Writes the next chunk. Returns `true` once the file is complete, durable and renamed.
    pub fn step(&mut self) -> Result<bool, SnapshotError> {
        let mut payload = std::mem::take(&mut self.buf);
        payload.clear();
        let mut chunk = Vec::new();
        match self.phase.clone() {
            Phase::Nodes { after } => {
                let mut count = 0u32;
                let mut last = None;
                for n in self.tree.snapshot_nodes_after(after.as_deref()) {
                    encode_node(&mut payload, &n);
                    count += 1;
                    last = Some(n.path);
                    if payload.len() >= CHUNK_PAYLOAD_BYTES_TARGET {
                        break;
                    }
                }
                match last {
                    Some(path) => {
                        let after = Some(path.to_owned());
                        frame_chunk(&mut chunk, CHUNK_NODES, count, &payload);
                        self.phase = Phase::Nodes { after };
                    }
                    None => self.phase = Phase::Sessions { done: 0 },
                }
            }
            Phase::Sessions { done } => {
                let mut count = 0u32;
                for (id, timeout) in self.tree.sessions().skip(done) {
                    payload.extend_from_slice(&id.0.to_be_bytes());
                    payload.extend_from_slice(&timeout.to_be_bytes());
                    count += 1;
                    if payload.len() >= CHUNK_PAYLOAD_BYTES_TARGET {
                        break;
                    }
                }
                if count > 0 {
                    frame_chunk(&mut chunk, CHUNK_SESSIONS, count, &payload);
                    self.phase = Phase::Sessions {
                        done: done + count as usize,
                    };
                } else {
                    self.phase = Phase::Footer;
                }
            }
            Phase::Footer => {
                let total = (self.tree.node_count() + self.tree.session_count()) as u64;
                chunk.extend_from_slice(&SNAPSHOT_FOOTER_MAGIC.to_be_bytes());
                chunk.extend_from_slice(&0u32.to_be_bytes());
                chunk.extend_from_slice(&self.tree.last_zxid().0.to_be_bytes());
                chunk.extend_from_slice(&self.tree.digest().to_be_bytes());
                chunk.extend_from_slice(&total.to_be_bytes());
                chunk.extend_from_slice(&0u32.to_be_bytes());
                let crc = crc32c::crc32c_append(self.crc, &chunk);
                chunk.extend_from_slice(&crc.to_be_bytes());
                self.write(&chunk)?;
                self.file.sync(0, self.offset).map_err(snap_io(&self.tmp))?;
                self.dev
                    .rename(&self.tmp, &self.name)
                    .map_err(snap_io(&self.name))?;
                self.phase = Phase::Done;
                return Ok(true);
            }
            Phase::Done => return Ok(true),
        }
        if !chunk.is_empty() {
            self.write(&chunk)?;
        }
        if self.behind_window > 0 && self.offset - self.behind >= self.behind_window {
            self.file
                .write_behind(self.behind, self.offset - self.behind)
                .map_err(snap_io(&self.tmp))?;
            self.behind = self.offset;
        }
        self.buf = payload;
        Ok(false)
    }

    /// Runs the remaining steps. On an error the partial file is removed: on a full disk
    /// it holds room the log needs.
    pub fn finish(self) -> Result<SnapshotInfo, SnapshotError> {
        self.finish_with(|_| {})
    }

    /// `finish`, calling `between(bytes_written)` after every step but the last: the
    /// caller paces the writer there (sleeps, yields) without this crate reading a clock.
    pub fn finish_with(
        mut self,
        mut between: impl FnMut(u64),
    ) -> Result<SnapshotInfo, SnapshotError> {
        loop {
            match self.step() {
                Ok(true) => break,
                Ok(false) => between(self.offset),
                Err(e) => {
                    let _ = self.dev.remove(&self.tmp);
                    return Err(e);
                }
            }
        }
        Ok(SnapshotInfo {
            name: self.name.clone(),
            zxid: self.tree.last_zxid(),
            digest: self.tree.digest(),
            bytes: self.offset,
            nodes: self.tree.node_count() as u64,
            sessions: self.tree.session_count() as u64,
        })
    }
}

/// Writes a whole snapshot of `tree` in one call.
pub fn write_snapshot<D: Device>(dev: &D, tree: &Tree) -> Result<SnapshotInfo, SnapshotError> {
    SnapshotWriter::new(dev.clone(), tree.clone())?.finish()
}

/// A bounds-checked big-endian cursor that reports offsets into the whole file.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: u64,
}

type Bad = (u64, String);

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err((self.offset(), format!("truncated: wanted {n} bytes")));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, Bad> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }

    fn i32(&mut self) -> Result<i32, Bad> {
        Ok(self.u32()? as i32)
    }

    fn u64(&mut self) -> Result<u64, Bad> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn i64(&mut self) -> Result<i64, Bad> {
        Ok(self.u64()? as i64)
    }

    fn bytes(&mut self) -> Result<&'a [u8], Bad> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A node's data: `None` for [`NULL_DATA`], which only version 2 on may hold.
    fn data(&mut self, version: u32) -> Result<Option<&'a [u8]>, Bad> {
        let at = self.offset();
        let n = self.u32()?;
        if n != NULL_DATA {
            return self.take(n as usize).map(Some);
        }
        if version < 2 {
            return Err((at, format!("null data in a version {version} snapshot")));
        }
        Ok(None)
    }

    fn str(&mut self) -> Result<&'a str, Bad> {
        let at = self.offset();
        std::str::from_utf8(self.bytes()?).map_err(|_| (at, "string is not UTF-8".to_string()))
    }
}

/// A snapshot read back: the rebuilt tree (at `zxid`) and the digest its footer recorded,
/// which the rebuilt tree's digest has been checked against.
#[derive(Debug)]
pub struct LoadedSnapshot {
    pub tree: Tree,
    pub zxid: Zxid,
}

/// Validates and decodes a whole snapshot file.
pub fn decode_snapshot(file: &str, bytes: &[u8]) -> Result<LoadedSnapshot, SnapshotError> {
    decode(bytes).map_err(|(offset, reason)| SnapshotError::Corrupt {
        file: file.to_owned(),
        offset,
        reason,
    })
}

fn decode(bytes: &[u8]) -> Result<LoadedSnapshot, Bad> {
    let mut c = Cursor {
        bytes,
        pos: 0,
        base: 0,
    };
    let head = c.take(SNAPSHOT_HEADER_BYTES)?;
    let mut h = Cursor {
        bytes: head,
        pos: 0,
        base: 0,
    };
    if h.u32()? != SNAPSHOT_MAGIC {
        return Err((0, "bad magic".into()));
    }
    let version = h.u32()?;
    let zxid = Zxid(h.i64()?);
    let node_count = h.u64()?;
    let session_count = h.u64()?;
    let flags = h.u32()?;
    if h.u32()? != crc32c::crc32c(&head[..SNAPSHOT_HEADER_BYTES - 4]) {
        return Err((0, "header checksum mismatch".into()));
    }
    if !(SNAPSHOT_VERSION_MIN..=SNAPSHOT_VERSION).contains(&version) {
        return Err((4, format!("unknown version {version}")));
    }
    if flags & !FLAG_EXTENDED_TYPES != 0 {
        return Err((32, format!("unknown flags {flags:#x}")));
    }
    let mut builder = TreeBuilder::new(zxid, flags & FLAG_EXTENDED_TYPES != 0);
    let (mut nodes, mut sessions) = (0u64, 0u64);
    // The file CRC is assembled from the header's and each chunk's own CRC
    // (`crc32c_combine`), so the bytes are checksummed once, not twice.
    let mut file_crc_so_far = crc32c::crc32c(head);
    let mut acls = AclCache::default();
    loop {
        let at = c.offset();
        let kind = c.u32()?;
        if kind == SNAPSHOT_FOOTER_MAGIC {
            c.pos -= 4;
            break;
        }
        let count = c.u32()?;
        let len = c.u32()?;
        if len > CHUNK_PAYLOAD_BYTES_MAX {
            return Err((at, format!("chunk of {len} bytes over the limit")));
        }
        let payload = c.take(len as usize)?;
        let crc = c.u32()?;
        let framed_end = (at as usize) + 12 + len as usize;
        let framed_crc = crc32c::crc32c(&bytes[at as usize..framed_end]);
        if crc != framed_crc {
            return Err((at, "chunk checksum mismatch".into()));
        }
        file_crc_so_far = crc32c::crc32c_combine(file_crc_so_far, framed_crc, 12 + len as usize);
        file_crc_so_far = crc32c::crc32c_append(file_crc_so_far, &crc.to_be_bytes());
        if count == 0 {
            return Err((at, "empty chunk".into()));
        }
        let mut p = Cursor {
            bytes: payload,
            pos: 0,
            base: at + 12,
        };
        match kind {
            CHUNK_NODES if sessions == 0 => {
                for _ in 0..count {
                    let entry_at = p.offset();
                    decode_node(&mut p, version, &mut builder, &mut acls)
                        .map_err(|(o, r)| (o.max(entry_at), r))?;
                    nodes += 1;
                }
            }
            CHUNK_SESSIONS => {
                for _ in 0..count {
                    let entry_at = p.offset();
                    let id = SessionId(p.i64()?);
                    let timeout = p.i32()?;
                    builder
                        .add_session(id, timeout)
                        .map_err(|e| (entry_at, e.to_string()))?;
                    sessions += 1;
                }
            }
            _ => return Err((at, format!("unexpected chunk kind {kind}"))),
        }
        if p.pos != payload.len() {
            return Err((p.offset(), "trailing bytes in chunk".into()));
        }
    }
    let footer_at = c.offset();
    let footer = c.take(SNAPSHOT_FOOTER_BYTES)?;
    let mut f = Cursor {
        bytes: footer,
        pos: 0,
        base: footer_at,
    };
    let _magic = f.u32()?;
    let _reserved = f.u32()?;
    let footer_zxid = Zxid(f.i64()?);
    let digest = f.u64()?;
    let total = f.u64()?;
    let _reserved = f.u32()?;
    let file_crc = f.u32()?;
    let footer_crc = crc32c::crc32c(&footer[..SNAPSHOT_FOOTER_BYTES - 4]);
    let whole = crc32c::crc32c_combine(file_crc_so_far, footer_crc, SNAPSHOT_FOOTER_BYTES - 4);
    if file_crc != whole {
        return Err((footer_at, "file checksum mismatch".into()));
    }
    if c.pos != bytes.len() {
        return Err((c.offset(), "bytes after the footer".into()));
    }
    if footer_zxid != zxid {
        return Err((
            footer_at,
            format!("footer zxid {footer_zxid} != header {zxid}"),
        ));
    }
    if nodes != node_count || sessions != session_count || total != nodes + sessions {
        return Err((
            footer_at,
            format!("counts: {nodes} nodes, {sessions} sessions; header says {node_count}, {session_count}"),
        ));
    }
    let tree = builder.finish().map_err(|e| (footer_at, e.to_string()))?;
    if tree.digest() != digest {
        return Err((
            footer_at,
            format!(
                "digest {:#x} of the rebuilt tree != recorded {digest:#x}",
                tree.digest()
            ),
        ));
    }
    Ok(LoadedSnapshot { tree, zxid })
}

/// The ACL list of the previous node, by its encoded bytes: most znodes share one list, so
/// it is decoded (and its strings allocated) once per run of equal lists, not per node.
#[derive(Default)]
struct AclCache {
    raw: Vec<u8>,
    acl: Vec<Acl>,
}

fn decode_node(
    p: &mut Cursor<'_>,
    version: u32,
    builder: &mut TreeBuilder,
    cache: &mut AclCache,
) -> Result<(), Bad> {
    let at = p.offset();
    let path = p.str()?;
    let data = p.data(version)?;
    let stat = StoredStat {
        czxid: p.i64()?,
        mzxid: p.i64()?,
        pzxid: p.i64()?,
        ctime: p.i64()?,
        mtime: p.i64()?,
        ephemeral_owner: p.i64()?,
        version: p.i32()?,
        cversion: p.i32()?,
        aversion: p.i32()?,
    };
    let acl_start = p.pos;
    let count = p.u32()? as usize;
    let same = |p: &Cursor<'_>, raw: &[u8]| {
        !raw.is_empty() && p.bytes.get(acl_start..acl_start + raw.len()) == Some(raw)
    };
    if same(p, &cache.raw) {
        p.pos = acl_start + cache.raw.len();
    } else {
        // Each ACL takes at least 12 bytes: bound the allocation by what remains.
        let mut acl = Vec::with_capacity(count.min((p.bytes.len() - p.pos) / 12));
        for _ in 0..count {
            let perms = Perms(p.i32()?);
            let scheme = p.str()?.to_owned();
            let id = p.str()?.to_owned();
            acl.push(Acl {
                perms,
                id: Id { scheme, id },
            });
        }
        cache.raw.clear();
        cache.raw.extend_from_slice(&p.bytes[acl_start..p.pos]);
        cache.acl = acl;
    }
    builder
        .add_node(&NodeState {
            path,
            data,
            acl: &cache.acl,
            stat,
        })
        .map_err(|e| (at, e.to_string()))
}
