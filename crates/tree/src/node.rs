//! The stored form of one znode: a single `Arc<[u8]>` allocation holding the node's stat
//! fields, its ACL id, its tree key and its data.
//!
//! Why one byte allocation: a million znodes of 100-byte values cost ~365 B each when a node
//! was a struct plus a separate data `Arc<[u8]>`, a separate key `Arc<[u8]>` and a fat ACL
//! `Arc`, each with its own allocator overhead and a 24-byte map slot. Here a node is one
//! allocation of `HEAD_BYTES + key + data` (plus the `Arc` counts) and the map slot is the
//! 16-byte fat pointer. Safe Rust cannot build a custom dynamically sized struct, so the
//! fixed fields are encoded at fixed offsets and decoded into `Meta` on read; decoding is a
//! handful of loads, cheaper than the allocations it replaces.
//!
//! Layout (native endian: it never leaves memory; snapshots and digests read `Meta`):
//! czxid, mzxid, pzxid, ctime, mtime, ephemeral_owner (i64 each, offsets 0..48), version,
//! cversion, aversion, num_children (i32 each, 48..64), acl id (u32, 64), key length (u32,
//! 68), then the key (depth + path, see `path.rs`), then the data to the end.
//!
//! A `Node` orders, compares and borrows (`Borrow<[u8]>`) as its key, so the tree is an
//! `OrdSet<Node>` looked up by key bytes. Every field keeps ZooKeeper's full range.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

/// Index of an interned ACL list in the tree's ACL table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AclId(pub(crate) u32);

/// The fixed-width fields of a znode (ZooKeeper's `StatPersisted` plus `num_children`), as
/// decoded from a `Node`. `cversion` counts child creates (see `Tree`'s stat rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) pzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    pub(crate) ephemeral_owner: i64,
    pub(crate) version: i32,
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) num_children: i32,
    pub(crate) acl: AclId,
}

impl Meta {
    /// `DataTree.createStat`.
    pub(crate) fn new(zxid: i64, time_ms: i64, owner: i64, acl: AclId) -> Self {
        Meta {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            ephemeral_owner: owner,
            version: 0,
            cversion: 0,
            aversion: 0,
            num_children: 0,
            acl,
        }
    }
}

const OFF_I32: usize = 48;
const OFF_ACL: usize = 64;
const OFF_KEY_LEN: usize = 68;
/// Bytes before the key.
const HEAD_BYTES: usize = 72;

/// One znode, encoded (see the module comment). Cloning shares the allocation.
#[derive(Clone)]
pub(crate) struct Node(Arc<[u8]>);

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl Node {
    pub(crate) fn new(key: &[u8], meta: &Meta, data: &[u8]) -> Self {
        let key_len = u32::try_from(key.len()).expect("key length fits in u32");
        let mut b = Vec::with_capacity(HEAD_BYTES + key.len() + data.len());
        for v in [
            meta.czxid,
            meta.mzxid,
            meta.pzxid,
            meta.ctime,
            meta.mtime,
            meta.ephemeral_owner,
        ] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        for v in [
            meta.version,
            meta.cversion,
            meta.aversion,
            meta.num_children,
        ] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&meta.acl.0.to_ne_bytes());
        b.extend_from_slice(&key_len.to_ne_bytes());
        assert_eq!(b.len(), HEAD_BYTES, "node head size");
        b.extend_from_slice(key);
        b.extend_from_slice(data);
        Node(Arc::from(b))
    }

    /// The same node with other fixed fields (same key and data).
    pub(crate) fn with_meta(&self, meta: &Meta) -> Self {
        Node::new(self.key(), meta, self.data())
    }

    pub(crate) fn meta(&self) -> Meta {
        let b = &self.0[..HEAD_BYTES];
        let i32_at = |i: usize| {
            let at = OFF_I32 + 4 * i;
            i32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
        };
        Meta {
            czxid: i64_at(b, 0),
            mzxid: i64_at(b, 8),
            pzxid: i64_at(b, 16),
            ctime: i64_at(b, 24),
            mtime: i64_at(b, 32),
            ephemeral_owner: i64_at(b, 40),
            version: i32_at(0),
            cversion: i32_at(1),
            aversion: i32_at(2),
            num_children: i32_at(3),
            acl: AclId(u32_at(b, OFF_ACL)),
        }
    }

    fn key_end(&self) -> usize {
        HEAD_BYTES + u32_at(&self.0, OFF_KEY_LEN) as usize
    }

    /// The tree key: depth then path (`path::key_of`).
    pub(crate) fn key(&self) -> &[u8] {
        &self.0[HEAD_BYTES..self.key_end()]
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.0[self.key_end()..]
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &self.key())
            .field("meta", &self.meta())
            .field("data_len", &self.data().len())
            .finish()
    }
}

impl Borrow<[u8]> for Node {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Node {}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extreme_fields() {
        let meta = Meta {
            czxid: i64::MIN,
            mzxid: i64::MAX,
            pzxid: -1,
            ctime: 1,
            mtime: -2,
            ephemeral_owner: i64::MIN + 1,
            version: i32::MIN,
            cversion: i32::MAX,
            aversion: -1,
            num_children: 7,
            acl: AclId(u32::MAX),
        };
        let n = Node::new(b"\0\0\0\x01/a", &meta, b"xyz");
        assert_eq!(n.meta(), meta);
        assert_eq!(n.key(), b"\0\0\0\x01/a");
        assert_eq!(n.data(), b"xyz");
        let empty = Node::new(b"", &meta, b"");
        assert_eq!(empty.key(), b"");
        assert_eq!(empty.data(), b"");
        let moved = n.with_meta(&Meta { version: 3, ..meta });
        assert_eq!(moved.meta().version, 3);
        assert_eq!(moved.data(), b"xyz");
    }

    #[test]
    fn orders_by_key_only() {
        let a = Node::new(b"a", &Meta::new(9, 9, 0, AclId(0)), b"zzz");
        let b = Node::new(b"b", &Meta::new(1, 1, 0, AclId(1)), b"");
        assert!(a < b);
        assert_eq!(a, Node::new(b"a", &Meta::new(0, 0, 0, AclId(0)), b""));
    }
}
