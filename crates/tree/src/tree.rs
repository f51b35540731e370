//! The znode tree: a persistent (structurally shared) map from path to node, with the
//! indexes ZooKeeper's `DataTree` keeps (ephemerals per session, containers, TTL nodes),
//! the sessions `ZKDatabase` keeps, and an incrementally maintained digest.
//!
//! Shape: one `imbl::OrdSet` of nodes ordered by their key, (depth, path) (see `path.rs`);
//! each node is one allocation holding its stat fields, key and data (see `node.rs`).
//! There is no per-node child collection: the children of a node are one key range, and
//! `num_children` is kept in the node. Cloning a `Tree` is O(1); a clone shares every node.
//! ACL lists are interned (ZooKeeper's `ReferenceCountedACLCache`) in a table that only
//! grows; a node stores the list's `u32` index, so a million nodes with the same ACL share
//! one list and pay four bytes each.
//!
//! Writes are two-phase like ZooKeeper's pipeline: `prepare` (PrepRequestProcessor) checks
//! a request against this tree, in ZooKeeper's order of checks, and resolves it into a
//! `Txn`; `apply` (DataTree.processTxn) changes the tree and reports results and watch
//! triggers. Apply is deterministic and idempotent: a txn whose zxid is not after
//! `last_zxid` changes nothing.
//!
//! Invariants (checked by `check_invariants`, and cheaply after each apply): every node but
//! the root has its parent; `num_children` is the size of the child range; the ephemeral,
//! container and TTL indexes list exactly the nodes with such owners; `digest` is the sum
//! of the node and session digests.

use std::ops::Bound;
use std::sync::Arc;

use imbl::{HashMap as IHashMap, OrdMap, OrdSet, Vector};
use zoocore_proto::{Acl, CreateMode, ErrorCode, EventType, Id, Perms, SessionId, Stat, Zxid};

use crate::acl::{check_acl, fixup_acl};
use crate::cache::WrittenNodes;
use crate::ephemeral::{ephemeral_type, ttl_owner, EphemeralType, CONTAINER_OWNER};
use crate::node::{AclId, Meta, Node};
use crate::path::{
    child_name, children_prefix, depth, join, lookup_key, normalize_parent, parent_of, path_of_key,
    validate_path, DEPTH_BYTES,
};
use crate::quota::{self, LIMITS_NODE};
use crate::txn::{Applied, Op, OpResult, Trigger, Triggers, Txn};

// A child module so that it can read and build the private node representation.
#[path = "snapshot.rs"]
pub(crate) mod snapshot;

/// The context of a request at prep time.
#[derive(Clone, Copy, Debug)]
pub struct PrepContext<'a> {
    pub session: SessionId,
    /// The session's authenticated ids, including ("ip", addr) and ("super", "") when super.
    pub auth: &'a [Id],
    /// The zxid the txn will carry.
    pub zxid: Zxid,
    pub time_ms: i64,
    /// `enforceQuota`: a create or setData over a hard quota is refused (QUOTA_EXCEEDED).
    pub enforce_quota: bool,
}

/// The Stat as clients see it (`DataNode.copyStat`): the stored cversion counts child
/// creates only and is reported as `creates * 2 - numChildren` (creates plus deletes), and
/// container and TTL owners are reported as 0 (`getClientEphemeralOwner`).
fn client_stat(m: &Meta, data_len: usize) -> Stat {
    let ephemeral_owner = match ephemeral_type(m.ephemeral_owner, true) {
        EphemeralType::Normal => m.ephemeral_owner,
        _ => 0,
    };
    Stat {
        czxid: m.czxid,
        mzxid: m.mzxid,
        ctime: m.ctime,
        mtime: m.mtime,
        version: m.version,
        cversion: m.cversion.wrapping_mul(2).wrapping_sub(m.num_children),
        aversion: m.aversion,
        ephemeral_owner,
        data_length: i32::try_from(data_len).expect("data length fits in i32"),
        num_children: m.num_children,
        pzxid: m.pzxid,
    }
}

/// Bytes of data, null counting as 0 as everywhere in ZooKeeper's sizes.
fn data_len(data: Option<&[u8]>) -> usize {
    data.map_or(0, <[u8]>::len)
}

fn stat_of(n: &Node) -> Stat {
    client_stat(&n.meta(), n.data_len())
}

/// A read view of one znode, borrowed from a tree.
#[derive(Clone, Copy, Debug)]
pub struct NodeRef<'a> {
    node: &'a Node,
    acl: &'a [Acl],
}

impl<'a> NodeRef<'a> {
    pub fn stat(&self) -> Stat {
        stat_of(self.node)
    }

    /// The data; `None` when it is null (getData then answers a -1 buffer).
    pub fn data(&self) -> Option<&'a [u8]> {
        self.node.data()
    }

    pub fn acl(&self) -> &'a [Acl] {
        self.acl
    }
}

/// The path a read names: ZooKeeper keeps "" as an alias of the root.
pub(crate) fn read_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// The replicated state: znodes, sessions, indexes and digest.
#[derive(Clone)]
pub struct Tree {
    nodes: OrdSet<Node>,
    ephemerals: OrdMap<SessionId, OrdSet<Arc<str>>>,
    containers: OrdSet<Arc<str>>,
    ttls: OrdSet<Arc<str>>,
    /// Paths with a quota: a `zookeeper_limits` node exists for each (quota.rs).
    quotas: OrdSet<Arc<str>>,
    sessions: OrdMap<SessionId, i32>,
    /// Interned ACL lists, indexed by `AclId`; `acl_ids` is the reverse map.
    acls: Vector<Arc<[Acl]>>,
    acl_ids: IHashMap<Arc<[Acl]>, AclId>,
    last_zxid: Zxid,
    digest: u64,
    /// ZooKeeper's approximate data size: path plus data bytes of every node.
    data_bytes: u64,
    /// Nodes owned by a session (mntr's zk_ephemerals_count).
    ephemeral_nodes: u64,
    extended_types: bool,
    /// The nodes this tree wrote last, for its own lookups (not copied by a clone).
    written: WrittenNodes,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("nodes", &self.nodes.len())
            .field("sessions", &self.sessions.len())
            .field("last_zxid", &self.last_zxid)
            .field("digest", &self.digest)
            .finish()
    }
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// ZooKeeper's special paths (`DataTree.isSpecialPath`); delete refuses them.
fn is_special_path(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

/// `checkAndIncVersion`: -1 matches any version; the next version skips -1 (ZOOKEEPER-4743).
fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BAD_VERSION);
    }
    let next = current.wrapping_add(1);
    Ok(if next == -1 { 0 } else { next })
}

/// The digest's hash: CRC-32C (hardware-accelerated on x86 and ARM, so a 1 KiB value costs
/// tens of nanoseconds, not the microsecond a byte-at-a-time hash takes) over the bytes, with
/// their count, spread to 64 bits by splitmix64's finaliser. Stable across builds and
/// platforms, unlike std's hasher. ZooKeeper's own digest is a CRC-32 of the same fields.
///
/// Short inputs are gathered in a buffer and hashed in one call when it fills or at the
/// end: a CRC call costs more in setup than in bytes at the sizes of a node's fields (an
/// ACL entry was five calls of 5-8 bytes). The CRC of the concatenation is the CRC of the
/// pieces appended in turn, so the value is the same as hashing each piece at once.
struct DigestHash {
    crc: u32,
    len: u64,
    buf: [u8; DIGEST_BUF],
    at: usize,
}

const DIGEST_BUF: usize = 64;

impl DigestHash {
    fn new() -> Self {
        DigestHash {
            crc: 0,
            len: 0,
            buf: [0; DIGEST_BUF],
            at: 0,
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len += b.len() as u64;
        if self.at + b.len() <= DIGEST_BUF {
            self.buf[self.at..self.at + b.len()].copy_from_slice(b);
            self.at += b.len();
            return;
        }
        self.flush();
        if b.len() < DIGEST_BUF {
            self.buf[..b.len()].copy_from_slice(b);
            self.at = b.len();
        } else {
            self.crc = crc32c::crc32c_append(self.crc, b);
        }
    }

    fn flush(&mut self) {
        if self.at > 0 {
            self.crc = crc32c::crc32c_append(self.crc, &self.buf[..self.at]);
            self.at = 0;
        }
    }

    fn len_bytes(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_be_bytes());
        self.bytes(b);
    }

    fn i64(&mut self, v: i64) {
        self.bytes(&v.to_be_bytes());
    }

    fn finish(mut self) -> u64 {
        self.flush();
        let mut z = (u64::from(self.crc) << 32 | (self.len & 0xffff_ffff))
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Null data hashes as length -1 with no bytes, so a replica that turned null into empty
/// disagrees; non-null data hashes as it always did, so snapshots from before null was kept
/// still match the digest their footer recorded.
fn node_digest(path: &str, n: &Meta, data: Option<&[u8]>, acl: &[Acl]) -> u64 {
    // The fixed-width fields go through the hash in one call: a CRC call costs more in setup
    // than in bytes at this size (the digest is taken for every node at recovery).
    let mut fixed = [0u8; 12 * 8];
    let fields = [
        path.len() as i64,
        data.map_or(-1, |d| d.len() as i64),
        n.czxid,
        n.mzxid,
        n.pzxid,
        n.ctime,
        n.mtime,
        n.ephemeral_owner,
        i64::from(n.version),
        i64::from(n.cversion),
        i64::from(n.aversion),
        i64::from(n.num_children),
    ];
    for (chunk, v) in fixed.chunks_exact_mut(8).zip(fields) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    let mut h = DigestHash::new();
    h.bytes(&fixed);
    h.bytes(path.as_bytes());
    h.bytes(data.unwrap_or_default());
    for a in acl {
        h.i64(i64::from(a.perms.0));
        h.len_bytes(a.id.scheme.as_bytes());
        h.len_bytes(a.id.id.as_bytes());
    }
    h.finish()
}

fn session_digest(session: SessionId, timeout_ms: i32) -> u64 {
    let mut h = DigestHash::new();
    h.bytes(b"session");
    h.i64(session.0);
    h.i64(i64::from(timeout_ms));
    h.finish()
}

impl Tree {
    /// A fresh ZooKeeper 3.9 tree (DataTree constructor): "/", "/zookeeper",
    /// "/zookeeper/quota" with zeroed stats and OPEN_ACL_UNSAFE, and "/zookeeper/config"
    /// with READ_ACL_UNSAFE and aversion -1 (`addConfigNode` calls `setACL(.., -1)`).
    /// Extended ephemeral types (TTL nodes) are off, ZooKeeper's default.
    pub fn new() -> Self {
        let mut tree = Tree {
            nodes: OrdSet::new(),
            ephemerals: OrdMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            quotas: OrdSet::new(),
            sessions: OrdMap::new(),
            acls: Vector::new(),
            acl_ids: IHashMap::new(),
            last_zxid: Zxid::ZERO,
            digest: 0,
            data_bytes: 0,
            ephemeral_nodes: 0,
            written: WrittenNodes::default(),
            extended_types: false,
        };
        let open = tree.intern_acl(&Acl::open_unsafe());
        let read = tree.intern_acl(&Acl::read_unsafe());
        let blank = |acl: AclId, children: i32| Meta {
            num_children: children,
            ..Meta::new(0, 0, 0, acl)
        };
        // ZooKeeper's own nodes hold empty data (`new byte[0]`), not null.
        tree.put_new("/", &blank(open, 1), Some(&[]));
        tree.put_new("/zookeeper", &blank(open, 2), Some(&[]));
        tree.put_new("/zookeeper/quota", &blank(open, 0), Some(&[]));
        tree.put_new(
            "/zookeeper/config",
            &Meta {
                aversion: -1,
                ..blank(read, 0)
            },
            Some(&[]),
        );
        tree.check_invariants();
        tree
    }

    /// A fresh tree with extended types (TTL nodes) on or off
    /// (`zookeeper.extendedTypesEnabled`).
    pub fn with_extended_types(enabled: bool) -> Self {
        Tree {
            extended_types: enabled,
            ..Tree::new()
        }
    }

    pub fn extended_types(&self) -> bool {
        self.extended_types
    }

    // ---- reads ----

    pub(crate) fn node(&self, path: &str) -> Option<&Node> {
        match self.written.get(path) {
            Some(n) => Some(n),
            None => self.nodes.get(&lookup_key(path)[..]),
        }
    }

    /// Nodes in the table of its last writes (cache.rs).
    #[cfg(test)]
    pub(crate) fn written_count(&self) -> usize {
        self.written.iter().count()
    }

    /// The interned ACL list `id` names.
    fn acl(&self, id: AclId) -> &[Acl] {
        self.acls
            .get(id.0 as usize)
            .expect("every node's ACL id is interned")
    }

    fn node_acl(&self, n: &Node) -> &[Acl] {
        self.acl(n.meta().acl)
    }

    /// Reads are not validated (DataTree.getNode): "" is the root's alias.
    pub fn get(&self, path: &str) -> Option<NodeRef<'_>> {
        self.node(read_path(path)).map(|n| self.node_ref(n))
    }

    /// A read view of `n`, a node of this tree (or a clone of one: cache.rs).
    pub(crate) fn node_ref<'a>(&'a self, n: &'a Node) -> NodeRef<'a> {
        NodeRef {
            node: n,
            acl: self.node_acl(n),
        }
    }

    pub fn exists(&self, path: &str) -> bool {
        self.node(read_path(path)).is_some()
    }

    /// Iterates the nodes whose keys start with `prefix` (the children of a node, given
    /// `children_prefix`).
    fn child_entries<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a Node> + 'a {
        self.nodes
            .range::<_, [u8]>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |n| n.key().starts_with(prefix))
    }

    /// Child names of `path`, sorted (ZooKeeper returns them in hash order).
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        let path = read_path(path);
        self.node(path)?;
        let prefix = children_prefix(path);
        let skip = prefix.len() - DEPTH_BYTES;
        Some(
            self.child_entries(&prefix)
                .map(|n| path_of_key(n.key())[skip..].to_owned())
                .collect(),
        )
    }

    /// `DataTree.getAllChildrenNumber`: the number of descendants.
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        let path = read_path(path);
        self.node(path)?;
        if path == "/" {
            return Some(i32::try_from(self.nodes.len() - 1).unwrap_or(i32::MAX));
        }
        let mut total = 0usize;
        let mut d = depth(path) + 1;
        loop {
            // Descendants at depth d: keys (d, "path/...").
            let mut prefix = d.to_be_bytes().to_vec();
            prefix.extend_from_slice(path.as_bytes());
            prefix.push(b'/');
            let n = self.child_entries(&prefix).count();
            if n == 0 {
                break;
            }
            total += n;
            d += 1;
        }
        Some(i32::try_from(total).unwrap_or(i32::MAX))
    }

    /// getEphemerals: the session's ephemeral paths starting with `prefix` ("", blank or
    /// "/" means all, as FinalRequestProcessor trims and compares), sorted.
    pub fn ephemerals(&self, session: SessionId, prefix: &str) -> Vec<String> {
        let Some(set) = self.ephemerals.get(&session) else {
            return Vec::new();
        };
        let trimmed = prefix.trim();
        let all = trimmed.is_empty() || trimmed == "/";
        set.iter()
            .filter(|p| all || p.starts_with(prefix))
            .map(|p| p.to_string())
            .collect()
    }

    /// Sessions and their timeouts (ZKDatabase.sessionsWithTimeouts), by id.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, i32)> + '_ {
        self.sessions.iter().map(|(s, t)| (*s, *t))
    }

    pub fn session_exists(&self, session: SessionId) -> bool {
        self.sessions.contains_key(&session)
    }

    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Number of znodes, the root included (ZooKeeper's `getNodeCount`, which also counts
    /// the root's "" alias, is this plus one).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Digest of the whole state: wrapping sum of the digests of every node (CRC-32C of
    /// path, data, stat, ACL; each node keeps its own) and every session. Equal states have
    /// equal digests on every platform.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Path plus data bytes of every node (ZooKeeper's `approximateDataSize`).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    /// Nodes owned by sessions.
    pub fn ephemeral_count(&self) -> u64 {
        self.ephemeral_nodes
    }

    /// `ContainerManager.getCandidates` with `maxNeverUsedIntervalMs` = 0 (the default).
    pub fn expired_nodes(&self, now_ms: i64) -> Vec<String> {
        self.expired_nodes_with(now_ms, 0)
    }

    /// `ContainerManager.getCandidates`: empty containers that have had a child
    /// (cversion > 0), or that never had one for more than `max_never_used_ms` (0 = never);
    /// then childless TTL nodes whose `now - mtime > ttl`.
    pub fn expired_nodes_with(&self, now_ms: i64, max_never_used_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        for path in self.containers.iter() {
            let Some(n) = self.node(path).map(Node::meta) else {
                continue;
            };
            if n.num_children != 0 {
                continue;
            }
            let never_used_expired = max_never_used_ms != 0 && now_ms - n.mtime > max_never_used_ms;
            if n.cversion > 0 || never_used_expired {
                out.push(path.to_string());
            }
        }
        for path in self.ttls.iter() {
            let Some(n) = self.node(path).map(Node::meta) else {
                continue;
            };
            if n.num_children != 0 {
                continue;
            }
            if let EphemeralType::Ttl(ttl) = ephemeral_type(n.ephemeral_owner, self.extended_types)
            {
                if ttl != 0 && now_ms - n.mtime > ttl {
                    out.push(path.to_string());
                }
            }
        }
        out
    }

    // ---- prepare ----

    /// Checks `op` against this tree and resolves it into a txn (PrepRequestProcessor).
    pub fn prepare(&self, op: &Op, ctx: &PrepContext<'_>) -> Txn {
        match op {
            Op::Multi(ops) => self.prepare_multi(ops, ctx),
            _ => self.prepare_one(op, ctx).unwrap_or_else(Txn::Error),
        }
    }

    /// A multi: each op is prepared on a scratch copy that has the earlier ops applied. On
    /// the first failure, ops before it report OK, it reports its code, later ops
    /// RUNTIME_INCONSISTENCY, and nothing changes. Ops a multi cannot carry make the whole
    /// request a MARSHALLING_ERROR, as MultiOperationRecord's decoder fails on them.
    fn prepare_multi(&self, ops: &[Op], ctx: &PrepContext<'_>) -> Txn {
        let allowed = |op: &Op| {
            matches!(
                op,
                Op::Create { .. } | Op::Delete { .. } | Op::SetData { .. } | Op::Check { .. }
            )
        };
        if !ops.iter().all(allowed) {
            return Txn::Error(ErrorCode::MARSHALLING_ERROR);
        }
        let mut scratch = self.clone();
        let mut txns = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match scratch.prepare_one(op, ctx) {
                Ok(txn) => {
                    let mut ignored = Triggers::new();
                    let result = scratch.apply_txn(ctx.zxid.0, ctx.time_ms, &txn, &mut ignored);
                    assert!(
                        result.code().is_ok(),
                        "prepared txn {txn:?} failed on apply: {result:?}"
                    );
                    txns.push(txn);
                }
                Err(code) => {
                    let mut failed = vec![Txn::Error(ErrorCode::OK); i];
                    failed.push(Txn::Error(code));
                    failed.resize(ops.len(), Txn::Error(ErrorCode::RUNTIME_INCONSISTENCY));
                    return Txn::Multi(failed);
                }
            }
        }
        Txn::Multi(txns)
    }

    fn prepare_one(&self, op: &Op, ctx: &PrepContext<'_>) -> Result<Txn, ErrorCode> {
        match op {
            Op::Create {
                path,
                data,
                acl,
                mode,
                ttl_ms,
            } => self.prep_create(path, data, acl, *mode, *ttl_ms, ctx),
            Op::Delete { path, version } => {
                let parent = self.parent_for_delete(path)?;
                if !check_acl(self.node_acl(parent), Perms::DELETE, ctx.auth) {
                    return Err(ErrorCode::NO_AUTH);
                }
                let node = self.node(path).ok_or(ErrorCode::NO_NODE)?.meta();
                check_and_inc_version(node.version, *version)?;
                if node.num_children > 0 {
                    return Err(ErrorCode::NOT_EMPTY);
                }
                Ok(Txn::Delete { path: path.clone() })
            }
            Op::SetData {
                path,
                data,
                version,
            } => {
                validate_path(path, false)?;
                let found = self.node(path).ok_or(ErrorCode::NO_NODE)?;
                let node = found.meta();
                if !check_acl(self.acl(node.acl), Perms::WRITE, ctx.auth) {
                    return Err(ErrorCode::NO_AUTH);
                }
                let grown = data_len(data.as_deref()) as i64 - found.data_len() as i64;
                self.enforce_quota(ctx, path, 0, grown)?;
                let version = check_and_inc_version(node.version, *version)?;
                Ok(Txn::SetData {
                    path: path.clone(),
                    data: data.clone(),
                    version,
                })
            }
            Op::SetAcl { path, acl, version } => {
                validate_path(path, false)?;
                let acl = fixup_acl(acl, ctx.auth)?;
                let node = self.node(path).ok_or(ErrorCode::NO_NODE)?.meta();
                if !check_acl(self.acl(node.acl), Perms::ADMIN, ctx.auth) {
                    return Err(ErrorCode::NO_AUTH);
                }
                let version = check_and_inc_version(node.aversion, *version)?;
                Ok(Txn::SetAcl {
                    path: path.clone(),
                    acl,
                    version,
                })
            }
            Op::Check { path, version } => {
                validate_path(path, false)?;
                let node = self.node(path).ok_or(ErrorCode::NO_NODE)?.meta();
                if !check_acl(self.acl(node.acl), Perms::READ, ctx.auth) {
                    return Err(ErrorCode::NO_AUTH);
                }
                let version = check_and_inc_version(node.version, *version)?;
                Ok(Txn::Check {
                    path: path.clone(),
                    version,
                })
            }
            Op::DeleteContainer { path } => {
                // No ACL check: the server itself submits it (ContainerManager).
                let parent_path = Self::parent_path_for_delete(path)?;
                let node = self.node(path).ok_or(ErrorCode::NO_NODE)?.meta();
                if node.num_children > 0 {
                    return Err(ErrorCode::NOT_EMPTY);
                }
                if ephemeral_type(node.ephemeral_owner, self.extended_types)
                    == EphemeralType::Normal
                {
                    return Err(ErrorCode::BAD_VERSION);
                }
                self.node(parent_path).ok_or(ErrorCode::NO_NODE)?;
                Ok(Txn::Delete { path: path.clone() })
            }
            Op::CreateSession {
                session,
                timeout_ms,
            } => Ok(Txn::CreateSession {
                session: *session,
                timeout_ms: *timeout_ms,
            }),
            Op::CloseSession { session } => Ok(Txn::CloseSession {
                session: *session,
                paths: self.ephemerals(*session, "/"),
            }),
            Op::Multi(_) => Err(ErrorCode::MARSHALLING_ERROR),
        }
    }

    /// `getParentPathAndValidate`: BAD_ARGUMENTS without a slash, with a NUL, or for a
    /// special path; the parent path ("" becomes "/").
    fn parent_path_for_delete(path: &str) -> Result<&str, ErrorCode> {
        let parent = parent_of(path).ok_or(ErrorCode::BAD_ARGUMENTS)?;
        if path.contains('\0') || is_special_path(path) {
            return Err(ErrorCode::BAD_ARGUMENTS);
        }
        Ok(normalize_parent(parent))
    }

    fn parent_for_delete(&self, path: &str) -> Result<&Node, ErrorCode> {
        let parent = Self::parent_path_for_delete(path)?;
        self.node(parent).ok_or(ErrorCode::NO_NODE)
    }

    /// `pRequest2TxnCreate`, checks in ZooKeeper's order: TTL support (UNIMPLEMENTED),
    /// TTL range (BAD_ARGUMENTS), ephemeral session (SESSION_EXPIRED), path shape
    /// (BAD_ARGUMENTS), ACL (INVALID_ACL), parent (NO_NODE), parent ACL (NO_AUTH), full
    /// path after the sequence suffix (BAD_ARGUMENTS), existence (NODE_EXISTS), ephemeral
    /// parent (NO_CHILDREN_FOR_EPHEMERALS), a hard quota under `enforceQuota`
    /// (QUOTA_EXCEEDED).
    fn prep_create(
        &self,
        path: &str,
        data: &Option<bytes::Bytes>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
        ctx: &PrepContext<'_>,
    ) -> Result<Txn, ErrorCode> {
        if mode.is_ttl() && !self.extended_types {
            return Err(ErrorCode::UNIMPLEMENTED);
        }
        let owner = if mode.is_ttl() {
            ttl_owner(ttl_ms).ok_or(ErrorCode::BAD_ARGUMENTS)?
        } else if ttl_ms >= 0 {
            return Err(ErrorCode::BAD_ARGUMENTS);
        } else if mode.is_container() {
            CONTAINER_OWNER
        } else if mode.is_ephemeral() {
            ctx.session.0
        } else {
            0
        };
        // checkGlobalSession: a closed or unknown session cannot own ephemerals.
        if mode.is_ephemeral() && !self.session_exists(ctx.session) {
            return Err(ErrorCode::SESSION_EXPIRED);
        }
        let parent_path = parent_of(path).ok_or(ErrorCode::BAD_ARGUMENTS)?;
        if path.contains('\0') {
            return Err(ErrorCode::BAD_ARGUMENTS);
        }
        let acl = fixup_acl(acl, ctx.auth)?;
        let parent = self
            .node(normalize_parent(parent_path))
            .ok_or(ErrorCode::NO_NODE)?
            .meta();
        if !check_acl(self.acl(parent.acl), Perms::CREATE, ctx.auth) {
            return Err(ErrorCode::NO_AUTH);
        }
        let full = if mode.is_sequential() {
            format!("{path}{:010}", parent.cversion)
        } else {
            path.to_owned()
        };
        validate_path(&full, false)?;
        if self.node(&full).is_some() {
            return Err(ErrorCode::NODE_EXISTS);
        }
        if ephemeral_type(parent.ephemeral_owner, self.extended_types) == EphemeralType::Normal {
            return Err(ErrorCode::NO_CHILDREN_FOR_EPHEMERALS);
        }
        self.enforce_quota(ctx, &full, 1, data_len(data.as_deref()) as i64)?;
        Ok(Txn::Create {
            path: full,
            data: data.clone(),
            acl,
            ephemeral_owner: owner,
            parent_cversion: parent.cversion.wrapping_add(1),
        })
    }

    // ---- apply ----

    /// Applies a txn at `zxid` (DataTree.processTxn + ZKDatabase session bookkeeping).
    pub fn apply(&mut self, zxid: Zxid, time_ms: i64, txn: &Txn) -> Applied {
        if zxid <= self.last_zxid {
            return Applied {
                result: self.stale_result(txn),
                triggers: Triggers::new(),
                stale: true,
            };
        }
        let mut triggers = Triggers::new();
        let result = self.apply_txn(zxid.0, time_ms, txn, &mut triggers);
        self.last_zxid = zxid;
        // apply_delete refuses "/", so the root cannot go; checked in debug builds only, as a
        // lookup per txn costs the core a cache miss (the root's slot, then the set's edge).
        debug_assert!(self.node("/").is_some(), "root vanished at zxid {zxid}");
        Applied {
            result,
            triggers,
            stale: false,
        }
    }

    /// The result shape of a txn that is not applied again.
    fn stale_result(&self, txn: &Txn) -> OpResult {
        let stat_of = |p: &str| self.node(p).map(stat_of).unwrap_or_default();
        match txn {
            Txn::Create { path, .. } => OpResult::Created {
                path: path.clone(),
                stat: stat_of(path),
            },
            Txn::Delete { .. } => OpResult::Deleted,
            Txn::SetData { path, .. } => OpResult::SetData {
                stat: stat_of(path),
            },
            Txn::SetAcl { path, .. } => OpResult::SetAcl {
                stat: stat_of(path),
            },
            Txn::Check { .. } => OpResult::Checked,
            Txn::Multi(txns) => match Self::failed_multi(txns) {
                Some(codes) => OpResult::Multi(codes.into_iter().map(OpResult::Error).collect()),
                None => OpResult::Multi(txns.iter().map(|t| self.stale_result(t)).collect()),
            },
            Txn::CreateSession { .. } => OpResult::SessionCreated,
            Txn::CloseSession { .. } => OpResult::SessionClosed,
            Txn::Error(code) => OpResult::Error(*code),
            Txn::Reconfig { data, .. } => OpResult::Reconfigured {
                data: data.clone(),
                stat: stat_of(crate::txn::CONFIG_PATH),
            },
        }
    }

    /// A multi containing an error txn reports per op: OK before the first error, each
    /// error's code, RUNTIME_INCONSISTENCY for non-error txns after it (processTxn's
    /// `post_failed`). `None` when the multi did not fail.
    fn failed_multi(txns: &[Txn]) -> Option<Vec<ErrorCode>> {
        if !txns.iter().any(|t| matches!(t, Txn::Error(_))) {
            return None;
        }
        let mut post_failed = false;
        let codes = txns
            .iter()
            .map(|t| match t {
                Txn::Error(c) => {
                    post_failed = true;
                    *c
                }
                _ if post_failed => ErrorCode::RUNTIME_INCONSISTENCY,
                _ => ErrorCode::OK,
            })
            .collect();
        Some(codes)
    }

    fn apply_txn(
        &mut self,
        zxid: i64,
        time_ms: i64,
        txn: &Txn,
        triggers: &mut Triggers,
    ) -> OpResult {
        match txn {
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => self.apply_create(
                zxid,
                time_ms,
                path,
                data.as_deref(),
                acl,
                *ephemeral_owner,
                *parent_cversion,
                triggers,
            ),
            Txn::Delete { path } => self.apply_delete(zxid, path, triggers),
            Txn::SetData {
                path,
                data,
                version,
            } => {
                let Some(old) = self.node(path) else {
                    return OpResult::Error(ErrorCode::NO_NODE);
                };
                let meta = Meta {
                    mtime: time_ms,
                    mzxid: zxid,
                    version: *version,
                    ..old.meta()
                };
                let bytes_diff = data_len(data.as_deref()) as i64 - old.data_len() as i64;
                let node = self.make_node(old.key(), &meta, data.as_deref());
                let stat = stat_of(&node);
                self.put_node(node);
                self.quota_usage_moved(path, 0, bytes_diff);
                triggers.push(Trigger {
                    path: path.clone(),
                    event: EventType::NodeDataChanged,
                });
                OpResult::SetData { stat }
            }
            Txn::Reconfig { data, version } => {
                // ZooKeeper applies a reconfig as the setData of /zookeeper/config it logs.
                let set = Txn::SetData {
                    path: crate::txn::CONFIG_PATH.to_owned(),
                    data: Some(data.clone()),
                    version: *version,
                };
                match self.apply_txn(zxid, time_ms, &set, triggers) {
                    OpResult::SetData { stat } => OpResult::Reconfigured {
                        data: data.clone(),
                        stat,
                    },
                    other => other,
                }
            }
            Txn::SetAcl { path, acl, version } => {
                let Some(old) = self.node(path).cloned() else {
                    return OpResult::Error(ErrorCode::NO_NODE);
                };
                let acl = self.intern_acl(acl);
                let node = self.with_meta(
                    &old,
                    &Meta {
                        acl,
                        aversion: *version,
                        ..old.meta()
                    },
                );
                let stat = stat_of(&node);
                self.put_node(node);
                OpResult::SetAcl { stat }
            }
            Txn::Check { .. } => OpResult::Checked,
            Txn::Multi(txns) => match Self::failed_multi(txns) {
                Some(codes) => OpResult::Multi(codes.into_iter().map(OpResult::Error).collect()),
                None => OpResult::Multi(
                    txns.iter()
                        .map(|t| self.apply_txn(zxid, time_ms, t, triggers))
                        .collect(),
                ),
            },
            Txn::CreateSession {
                session,
                timeout_ms,
            } => {
                if let Some(old) = self.sessions.insert(*session, *timeout_ms) {
                    self.digest = self.digest.wrapping_sub(session_digest(*session, old));
                }
                self.digest = self
                    .digest
                    .wrapping_add(session_digest(*session, *timeout_ms));
                OpResult::SessionCreated
            }
            Txn::CloseSession { session, paths } => {
                // DataTree.killSession: the txn's paths first, then any ephemerals left.
                for path in paths {
                    self.apply_delete(zxid, path, triggers);
                }
                for path in self.ephemerals(*session, "/") {
                    self.apply_delete(zxid, &path, triggers);
                }
                if let Some(old) = self.sessions.remove(session) {
                    self.digest = self.digest.wrapping_sub(session_digest(*session, old));
                }
                OpResult::SessionClosed
            }
            Txn::Error(code) => OpResult::Error(*code),
        }
    }

    /// `DataTree.createNode`. On NODE_EXISTS the parent's cversion/pzxid still move forward
    /// (`setCversionPzxid`, for replays over a fuzzy snapshot).
    #[allow(clippy::too_many_arguments)]
    fn apply_create(
        &mut self,
        zxid: i64,
        time_ms: i64,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        triggers: &mut Triggers,
    ) -> OpResult {
        // Prep never produces an invalid path; refuse one from a corrupt log rather than
        // break the key layout.
        if validate_path(path, false).is_err() || path == "/" {
            return OpResult::Error(ErrorCode::BAD_ARGUMENTS);
        }
        let parent_path = normalize_parent(parent_of(path).unwrap_or(""));
        let Some(parent_node) = self.node(parent_path).cloned() else {
            return OpResult::Error(ErrorCode::NO_NODE);
        };
        let mut parent = parent_node.meta();
        let new_cversion = if parent_cversion == -1 {
            parent.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        if new_cversion > parent.cversion {
            parent.cversion = new_cversion;
            parent.pzxid = zxid;
        }
        if self.node(path).is_some() {
            self.put_node(self.with_meta(&parent_node, &parent));
            return OpResult::Error(ErrorCode::NODE_EXISTS);
        }
        parent.num_children += 1;
        self.put_node(self.with_meta(&parent_node, &parent));
        let acl = self.intern_acl(acl);
        let meta = Meta::new(zxid, time_ms, owner, acl);
        let stat = client_stat(&meta, data_len(data));
        self.put_new(path, &meta, data);
        self.index_owner(path, owner, true);
        self.quota_node_created(path);
        self.quota_usage_moved(path, 1, data_len(data) as i64);
        triggers.push(Trigger {
            path: path.to_owned(),
            event: EventType::NodeCreated,
        });
        triggers.push(Trigger {
            path: parent_path.to_owned(),
            event: EventType::NodeChildrenChanged,
        });
        OpResult::Created {
            path: path.to_owned(),
            stat,
        }
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves forward even when the child is
    /// already gone (then NO_NODE). Delete never changes the parent's cversion.
    fn apply_delete(&mut self, zxid: i64, path: &str, triggers: &mut Triggers) -> OpResult {
        if path == "/" {
            return OpResult::Error(ErrorCode::BAD_ARGUMENTS);
        }
        let Some(parent_raw) = parent_of(path) else {
            return OpResult::Error(ErrorCode::NO_NODE);
        };
        let parent_path = normalize_parent(parent_raw);
        let Some(parent_node) = self.node(parent_path).cloned() else {
            return OpResult::Error(ErrorCode::NO_NODE);
        };
        let existing = self.node(path).map(Node::meta);
        if let Some(node) = &existing {
            // Prep never deletes a node with children; refuse rather than orphan them.
            if node.num_children > 0 {
                return OpResult::Error(ErrorCode::NOT_EMPTY);
            }
        }
        let mut parent = parent_node.meta();
        if zxid > parent.pzxid {
            parent.pzxid = zxid;
        }
        if existing.is_some() {
            parent.num_children -= 1;
            assert!(
                parent.num_children >= 0,
                "negative num_children under {parent_path}"
            );
        }
        self.put_node(self.with_meta(&parent_node, &parent));
        let Some(node) = existing else {
            return OpResult::Error(ErrorCode::NO_NODE);
        };
        let data_len = self.node(path).map_or(0, Node::data_len) as i64;
        self.remove_node(path);
        self.index_owner(path, node.ephemeral_owner, false);
        if let Some((target, LIMITS_NODE)) = quota::quota_node(path) {
            self.quotas.remove(target);
        }
        self.quota_usage_moved(path, -1, -data_len);
        triggers.push(Trigger {
            path: path.to_owned(),
            event: EventType::NodeDeleted,
        });
        triggers.push(Trigger {
            path: parent_path.to_owned(),
            event: EventType::NodeChildrenChanged,
        });
        OpResult::Deleted
    }

    // ---- quotas (quota.rs) ----

    /// Paths with a quota, sorted.
    pub fn quota_paths(&self) -> Vec<String> {
        self.quotas.iter().map(|p| p.to_string()).collect()
    }

    /// A limits node gives its path a quota; a limits or stats node recounts the path's usage
    /// into its stats node (DataTree.createNode's `updateQuotaForPath`).
    fn quota_node_created(&mut self, path: &str) {
        let Some((target, name)) = quota::quota_node(path) else {
            return;
        };
        if name == LIMITS_NODE {
            self.quotas.insert(Arc::from(target));
        }
        let (count, bytes) = self.subtree_usage(target);
        self.set_quota_stats(target, count, bytes);
    }

    /// A create, delete or setData at `path` moves the usage of the nearest path with a
    /// quota at or above it (`updateCountBytes`).
    fn quota_usage_moved(&mut self, path: &str, count_diff: i64, bytes_diff: i64) {
        if self.quotas.is_empty() || quota::is_system_path(path) {
            return;
        }
        let Some(target) = quota::self_and_ancestors(path)
            .find(|p| self.quotas.contains(*p))
            .map(str::to_owned)
        else {
            return;
        };
        let Some(stats) = self.node(&quota::stats_path(&target)) else {
            return;
        };
        let (count, bytes) = quota::parse_stats(stats.data().unwrap_or_default());
        self.set_quota_stats(&target, count + count_diff, bytes + bytes_diff);
    }

    /// What a change of `count_diff` nodes and `bytes_diff` bytes at `path` does to the
    /// nearest quota at or above it (ZooKeeperServer.checkQuota, against this tree, which at
    /// prep time holds every outstanding change too). Cheap when no path has a quota.
    pub fn quota_excess(
        &self,
        path: &str,
        count_diff: i64,
        bytes_diff: i64,
    ) -> Option<quota::QuotaExceeded> {
        if self.quotas.is_empty() || quota::is_system_path(path) {
            return None;
        }
        let prefix = quota::self_and_ancestors(path).find(|p| self.quotas.contains(*p))?;
        let limits_path = format!("{}{prefix}/{LIMITS_NODE}", quota::QUOTA_ROOT);
        let limits = quota::parse_limits(self.node(&limits_path)?.data().unwrap_or_default());
        let stats = self.node(&quota::stats_path(prefix))?;
        let usage = quota::parse_stats(stats.data().unwrap_or_default());
        quota::check(prefix, limits, usage, count_diff, bytes_diff)
    }

    /// The usage change a prepared create or setData makes, for [`Tree::quota_excess`].
    pub fn quota_change<'t>(&self, txn: &'t Txn) -> Option<(&'t str, i64, i64)> {
        match txn {
            Txn::Create { path, data, .. } => Some((path, 1, data_len(data.as_deref()) as i64)),
            Txn::SetData { path, data, .. } => {
                let old = self.node(path).map_or(0, |n| n.data_len() as i64);
                Some((path, 0, data_len(data.as_deref()) as i64 - old))
            }
            _ => None,
        }
    }

    /// QUOTA_EXCEEDED when `enforceQuota` is on and the change goes over a hard limit.
    fn enforce_quota(
        &self,
        ctx: &PrepContext<'_>,
        path: &str,
        count_diff: i64,
        bytes_diff: i64,
    ) -> Result<(), ErrorCode> {
        match self.quota_excess(path, count_diff, bytes_diff) {
            Some(e) if e.hard && ctx.enforce_quota => Err(ErrorCode::QUOTA_EXCEEDED),
            _ => Ok(()),
        }
    }

    /// Nodes and data bytes of the subtree at `path` (none when it does not exist).
    fn subtree_usage(&self, path: &str) -> (i64, i64) {
        let Some(node) = self.node(path) else {
            return (0, 0);
        };
        let (mut count, mut bytes) = (1, node.data_len() as i64);
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            for child in self.child_entries(&children_prefix(&p)) {
                count += 1;
                bytes += child.data_len() as i64;
                if child.meta().num_children > 0 {
                    stack.push(path_of_key(child.key()).to_owned());
                }
            }
        }
        (count, bytes)
    }

    /// Writes a stats node's data, keeping its stat (ZooKeeper sets `node.data` directly).
    fn set_quota_stats(&mut self, target: &str, count: i64, bytes: i64) {
        let Some(old) = self.node(&quota::stats_path(target)) else {
            return;
        };
        let stats = quota::format_stats(count, bytes);
        let node = self.make_node(old.key(), &old.meta(), Some(&stats));
        self.put_node(node);
    }

    /// Sets `/zookeeper/config` to an ensemble's configuration outside any txn, as each
    /// ZooKeeper member does when it loads its database (ZKDatabase.initConfigInZKDatabase:
    /// `setData(.., version -1, zxid = the configuration's version, now)`): every member
    /// writes the same text, so the node reads alike everywhere but for its mtime.
    pub fn set_config_node(&mut self, text: &[u8], version_zxid: i64, time_ms: i64) {
        // Every tree has the node (Tree::new, and ZooKeeper 3.5+'s snapshots); one built
        // from older data without it is left so.
        let Some(old) = self.node("/zookeeper/config").map(Node::meta) else {
            return;
        };
        let meta = Meta {
            version: -1,
            mzxid: version_zxid,
            mtime: time_ms,
            ..old
        };
        self.put_new("/zookeeper/config", &meta, Some(text));
    }

    // ---- storage helpers ----

    fn intern_acl(&mut self, acl: &[Acl]) -> AclId {
        if let Some(id) = self.acl_ids.get(acl) {
            return *id;
        }
        let id = AclId(u32::try_from(self.acls.len()).expect("fewer than 2^32 distinct ACLs"));
        let list: Arc<[Acl]> = Arc::from(acl);
        self.acls.push_back(list.clone());
        self.acl_ids.insert(list, id);
        id
    }

    /// A node with its digest.
    pub(crate) fn make_node(&self, key: &[u8], meta: &Meta, data: Option<&[u8]>) -> Node {
        let digest = node_digest(path_of_key(key), meta, data, self.acl(meta.acl));
        Node::new(key, meta, data, digest)
    }

    /// The same node with other fixed fields (same key and data).
    pub(crate) fn with_meta(&self, n: &Node, meta: &Meta) -> Node {
        self.make_node(n.key(), meta, n.data())
    }

    /// The digest of a stored node, from its fields (what `Node::digest` keeps).
    fn digest_of(&self, n: &Node) -> u64 {
        let meta = n.meta();
        node_digest(path_of_key(n.key()), &meta, n.data(), self.acl(meta.acl))
    }

    /// What a node adds to `approximate_data_size`: its path and data bytes.
    fn size_of(n: &Node) -> u64 {
        (path_of_key(n.key()).len() + n.data_len()) as u64
    }

    /// Inserts a node at `path` (or replaces the one there), keeping the digest.
    fn put_new(&mut self, path: &str, meta: &Meta, data: Option<&[u8]>) {
        self.put_node(self.make_node(&lookup_key(path), meta, data));
    }

    /// Inserts or replaces a node (by its key), keeping the digest.
    fn put_node(&mut self, node: Node) {
        self.digest = self.digest.wrapping_add(node.digest());
        self.data_bytes += Self::size_of(&node);
        self.written.put(&node);
        if let Some(old) = self.nodes.insert(node) {
            self.digest = self.digest.wrapping_sub(old.digest());
            self.data_bytes -= Self::size_of(&old);
        }
    }

    fn remove_node(&mut self, path: &str) {
        let old = self
            .nodes
            .remove(&lookup_key(path)[..])
            .expect("removed node exists");
        self.written.forget(path);
        self.digest = self.digest.wrapping_sub(old.digest());
        self.data_bytes -= Self::size_of(&old);
    }

    /// Adds or removes `path` in the index its owner selects.
    fn index_owner(&mut self, path: &str, owner: i64, add: bool) {
        let set = match ephemeral_type(owner, self.extended_types) {
            EphemeralType::Void => return,
            EphemeralType::Container => &mut self.containers,
            EphemeralType::Ttl(_) => &mut self.ttls,
            EphemeralType::Normal => self.ephemerals.entry(SessionId(owner)).or_default(),
        };
        let changed = if add {
            set.insert(Arc::from(path)).is_none()
        } else {
            set.remove(path).is_some()
        };
        if changed && ephemeral_type(owner, self.extended_types) == EphemeralType::Normal {
            if add {
                self.ephemeral_nodes += 1;
            } else {
                self.ephemeral_nodes -= 1;
            }
        }
        if let Some(s) = self.ephemerals.get(&SessionId(owner)) {
            if s.is_empty() {
                self.ephemerals.remove(&SessionId(owner));
            }
        }
    }

    /// Full O(n) consistency check; panics on violation. For tests and debug runs.
    pub fn check_invariants(&self) {
        let mut digest = 0u64;
        let mut ephemeral_count = 0usize;
        let mut container_count = 0usize;
        let mut ttl_count = 0usize;
        for n in self.written.iter() {
            let held = self
                .nodes
                .get(n.key())
                .expect("a written node is in the set");
            assert!(
                held.ptr_eq(n),
                "written node {} is the set's",
                path_of_key(n.key())
            );
        }
        for n in self.nodes.iter() {
            let key = n.key();
            let path = path_of_key(key);
            assert_eq!(
                &key[..DEPTH_BYTES],
                &depth(path).to_be_bytes(),
                "key depth of {path}"
            );
            assert_eq!(n.digest(), self.digest_of(n), "kept digest of {path}");
            digest = digest.wrapping_add(n.digest());
            let node = n.meta();
            let prefix = children_prefix(path);
            let children = self.child_entries(&prefix).count();
            assert_eq!(
                children,
                usize::try_from(node.num_children).unwrap_or(usize::MAX),
                "num_children of {path}"
            );
            if path != "/" {
                let parent = normalize_parent(parent_of(path).expect("path has a slash"));
                assert!(self.node(parent).is_some(), "parent of {path} missing");
                assert_eq!(
                    join(parent, child_name(path)),
                    path,
                    "path {path} round-trips"
                );
            }
            match ephemeral_type(node.ephemeral_owner, self.extended_types) {
                EphemeralType::Void => {}
                EphemeralType::Container => {
                    container_count += 1;
                    assert!(self.containers.contains(path), "container {path} indexed");
                }
                EphemeralType::Ttl(_) => {
                    ttl_count += 1;
                    assert!(self.ttls.contains(path), "ttl {path} indexed");
                }
                EphemeralType::Normal => {
                    ephemeral_count += 1;
                    let set = self.ephemerals.get(&SessionId(node.ephemeral_owner));
                    assert!(
                        set.is_some_and(|s| s.contains(path)),
                        "ephemeral {path} indexed"
                    );
                }
            }
        }
        for (s, t) in self.sessions.iter() {
            digest = digest.wrapping_add(session_digest(*s, *t));
        }
        assert_eq!(digest, self.digest, "incremental digest");
        assert_eq!(
            ephemeral_count as u64, self.ephemeral_nodes,
            "ephemeral count"
        );
        assert_eq!(
            self.ephemerals.values().map(|s| s.len()).sum::<usize>(),
            ephemeral_count,
            "ephemeral index size"
        );
        assert!(
            self.ephemerals.values().all(|s| !s.is_empty()),
            "no empty ephemeral sets"
        );
        assert_eq!(
            self.containers.len(),
            container_count,
            "container index size"
        );
        assert_eq!(self.ttls.len(), ttl_count, "ttl index size");
        for target in self.quotas.iter() {
            let limits = format!("{}{target}/{LIMITS_NODE}", quota::QUOTA_ROOT);
            assert!(self.node(&limits).is_some(), "quota of {target} has limits");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DigestHash;

    /// The buffered hash equals one CRC over the concatenation, whatever the pieces' sizes
    /// (below, at and above the buffer's), so digests recorded before it still match.
    #[test]
    fn the_buffered_digest_hash_is_the_hash_of_the_concatenation() {
        let sizes = [0usize, 1, 7, 8, 63, 64, 65, 100, 200, 1024, 3];
        for start in 0..sizes.len() {
            let mut pieces = Vec::new();
            let mut whole = Vec::new();
            for (i, &n) in sizes
                .iter()
                .cycle()
                .skip(start)
                .take(sizes.len())
                .enumerate()
            {
                let piece: Vec<u8> = (0..n).map(|b| (b * 31 + i * 7) as u8).collect();
                whole.extend_from_slice(&piece);
                pieces.push(piece);
            }
            let mut h = DigestHash::new();
            for p in &pieces {
                h.bytes(p);
            }
            let mut one = DigestHash::new();
            one.crc = crc32c::crc32c(&whole);
            one.len = whole.len() as u64;
            assert_eq!(h.finish(), one.finish(), "pieces from {start}");
        }
    }
}
