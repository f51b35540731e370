//! The stored form of one znode: a single `Arc<[u8]>` allocation holding the node's stat
//! fields, its ACL id, its tree key and its data.
//!
//! Why one byte allocation: a million znodes of 100-byte values cost ~365 B each when a node
//! was a struct plus a separate data `Arc<[u8]>`, a separate key `Arc<[u8]>` and a fat ACL
//! `Arc`, each with its own allocator overhead and a 24-byte map slot. Here a node is one
//! allocation of key, stat and data (plus the `Arc` counts) and the map slot is the 16-byte
//! fat pointer. Safe Rust cannot build a custom dynamically sized struct, so the stat is
//! encoded in the bytes and decoded into `Meta` on read; decoding is a handful of loads,
//! cheaper than the allocations it replaces.
//!
//! Layout: the key length (LEB128, so one byte for keys under 128 bytes), the key (depth +
//! path, see `path.rs`), the node's digest (8 bytes: its share of the tree's digest, kept so
//! that a setData does not hash the old value again, as ZooKeeper's `DataNode` caches it), a
//! `u16` of presence flags, czxid and ctime, then only the fields
//! that differ from their usual value (mzxid and pzxid from czxid, mtime from ctime, the
//! owner, versions, child count and ACL id from 0), then the data to the end. A node never
//! modified, without children and with the first interned ACL stores 18 bytes of stat
//! instead of 72. Integers are native endian: this form never leaves memory (snapshots and
//! digests read `Meta`). Key first, so ordering reads no flags; the flags give the stat's
//! length in O(1), so the data needs no length of its own. One more flag says the data is
//! null (ZooKeeper's `DataNode.data == null`, from a create or setData with a -1 buffer):
//! then no data bytes follow, and readers get `None`, not an empty slice, at no extra cost.
//!
//! A `Node` orders, compares and borrows (`Borrow<[u8]>`) as its key, so the tree is an
//! `OrdSet<Node>` looked up by key bytes. Every field keeps ZooKeeper's full range.
//!
//! Trade-off: imbl's B+tree copies some keys into its branches as separators, and here a
//! key is the whole node, so a separator keeps the node version it copied (data included)
//! alive after that node is replaced or deleted, until the separator moves. That is at most
//! one stale version per separator (about one node in eight after sequential inserts, one
//! in five at worst), bounded by the data size limit each; the set stays correct because
//! separators are only compared by key.

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

/// Presence flags: a field is stored only when its bit is set.
const F_MZXID: u16 = 1 << 0;
const F_PZXID: u16 = 1 << 1;
const F_MTIME: u16 = 1 << 2;
const F_OWNER: u16 = 1 << 3;
const F_VERSION: u16 = 1 << 4;
const F_CVERSION: u16 = 1 << 5;
const F_AVERSION: u16 = 1 << 6;
const F_NUM_CHILDREN: u16 = 1 << 7;
const F_ACL: u16 = 1 << 8;
/// Not a stat field: the data is null. Outside `F_WIDE` and `F_NARROW`, so it adds no bytes.
const F_NULL_DATA: u16 = 1 << 9;
/// The flags of the 8-byte and of the 4-byte optional fields.
const F_WIDE: u16 = F_MZXID | F_PZXID | F_MTIME | F_OWNER;
const F_NARROW: u16 = F_VERSION | F_CVERSION | F_AVERSION | F_NUM_CHILDREN | F_ACL;
/// Flags, czxid and ctime.
const STAT_FIXED_BYTES: usize = 2 + 8 + 8;
/// The node's digest, between the key and the stat.
const DIGEST_BYTES: usize = 8;

/// Bytes of the stat encoding with these flags.
fn stat_bytes(flags: u16) -> usize {
    STAT_FIXED_BYTES
        + 8 * (flags & F_WIDE).count_ones() as usize
        + 4 * (flags & F_NARROW).count_ones() as usize
}

/// One znode, encoded (see the module comment). Cloning shares the allocation.
#[derive(Clone)]
pub(crate) struct Node(Arc<[u8]>);

/// Reads `N` bytes at `*at` and advances it.
fn take<const N: usize>(b: &[u8], at: &mut usize) -> [u8; N] {
    let out = b[*at..*at + N].try_into().expect("N bytes");
    *at += N;
    out
}

/// (key length, bytes of its LEB128 encoding) at the start of a node.
fn key_len(b: &[u8]) -> (usize, usize) {
    if b[0] < 0x80 {
        return (usize::from(b[0]), 1);
    }
    let mut len = 0usize;
    for (i, &x) in b.iter().enumerate() {
        len |= usize::from(x & 0x7f) << (7 * i);
        if x < 0x80 {
            return (len, i + 1);
        }
    }
    panic!("unterminated key length in a node");
}

impl Node {
    /// `data` is `None` for null data (stored as a flag, no bytes). `digest` is the node's
    /// share of the tree's digest, kept so that replacing or removing the node does not hash
    /// its data again (ZooKeeper's `DataNode` caches its digest too).
    pub(crate) fn new(key: &[u8], meta: &Meta, data: Option<&[u8]>, digest: u64) -> Self {
        assert!(u32::try_from(key.len()).is_ok(), "key length fits in u32");
        let m = meta;
        let wide = [
            (F_MZXID, m.mzxid, m.czxid),
            (F_PZXID, m.pzxid, m.czxid),
            (F_MTIME, m.mtime, m.ctime),
            (F_OWNER, m.ephemeral_owner, 0),
        ];
        let narrow = [
            (F_VERSION, m.version, 0),
            (F_CVERSION, m.cversion, 0),
            (F_AVERSION, m.aversion, 0),
            (F_NUM_CHILDREN, m.num_children, 0),
            // The id's bits: an i32 only to share the loop; decoded back as u32.
            (F_ACL, i32::from_ne_bytes(m.acl.0.to_ne_bytes()), 0),
        ];
        let mut flags = if data.is_none() { F_NULL_DATA } else { 0 };
        for (f, v, usual) in wide {
            flags |= if v == usual { 0 } else { f };
        }
        for (f, v, usual) in narrow {
            flags |= if v == usual { 0 } else { f };
        }
        let data = data.unwrap_or_default();
        let mut key_len = [0u8; 5];
        let mut key_len_bytes = 0;
        let mut len = key.len();
        while len >= 0x80 {
            key_len[key_len_bytes] = (len & 0x7f) as u8 | 0x80;
            key_len_bytes += 1;
            len >>= 7;
        }
        key_len[key_len_bytes] = len as u8;
        key_len_bytes += 1;
        let total = key_len_bytes + key.len() + DIGEST_BYTES + stat_bytes(flags) + data.len();
        // Allocated once at its final size and filled in place, neither zeroed first (a
        // memset of the whole node, value included: 2% of a member's core under setData of
        // 1 KiB) nor built in a `Vec` that turning into an `Arc` would copy.
        let mut node = Arc::<[u8]>::new_uninit_slice(total);
        let b = Arc::get_mut(&mut node).expect("a new Arc is not shared");
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            b[at..at + bytes.len()].write_copy_of_slice(bytes);
            at += bytes.len();
        };
        put(&key_len[..key_len_bytes]);
        put(key);
        put(&digest.to_ne_bytes());
        put(&flags.to_ne_bytes());
        put(&m.czxid.to_ne_bytes());
        put(&m.ctime.to_ne_bytes());
        for (f, v, _) in wide {
            if flags & f != 0 {
                put(&v.to_ne_bytes());
            }
        }
        for (f, v, _) in narrow {
            if flags & f != 0 {
                put(&v.to_ne_bytes());
            }
        }
        put(data);
        assert_eq!(at, total, "node size");
        // SAFETY: the puts wrote `total` bytes from the start, one after another, and
        // `total` is the slice's length (asserted): every byte is initialised.
        #[allow(unsafe_code)]
        let node = unsafe { node.assume_init() };
        Node(node)
    }

    /// Offset of the digest (just after the key).
    fn digest_start(&self) -> usize {
        let (len, len_bytes) = key_len(&self.0);
        len_bytes + len
    }

    /// Offset of the stat encoding (just after the digest).
    fn stat_start(&self) -> usize {
        self.digest_start() + DIGEST_BYTES
    }

    /// The node's share of the tree's digest, as given when it was made.
    pub(crate) fn digest(&self) -> u64 {
        let mut at = self.digest_start();
        u64::from_ne_bytes(take(&self.0, &mut at))
    }

    pub(crate) fn meta(&self) -> Meta {
        let b = &self.0[..];
        let mut at = self.stat_start();
        let flags = u16::from_ne_bytes(take(b, &mut at));
        let czxid = i64::from_ne_bytes(take(b, &mut at));
        let ctime = i64::from_ne_bytes(take(b, &mut at));
        let mut wide = |f: u16, usual: i64| {
            if flags & f == 0 {
                usual
            } else {
                i64::from_ne_bytes(take(b, &mut at))
            }
        };
        let mzxid = wide(F_MZXID, czxid);
        let pzxid = wide(F_PZXID, czxid);
        let mtime = wide(F_MTIME, ctime);
        let ephemeral_owner = wide(F_OWNER, 0);
        let mut narrow = |f: u16| {
            if flags & f == 0 {
                [0; 4]
            } else {
                take::<4>(b, &mut at)
            }
        };
        Meta {
            czxid,
            mzxid,
            pzxid,
            ctime,
            mtime,
            ephemeral_owner,
            version: i32::from_ne_bytes(narrow(F_VERSION)),
            cversion: i32::from_ne_bytes(narrow(F_CVERSION)),
            aversion: i32::from_ne_bytes(narrow(F_AVERSION)),
            num_children: i32::from_ne_bytes(narrow(F_NUM_CHILDREN)),
            acl: AclId(u32::from_ne_bytes(narrow(F_ACL))),
        }
    }

    /// Whether both are the same allocation (the same version of the node).
    pub(crate) fn ptr_eq(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The tree key: depth then path (`path::key_of`).
    pub(crate) fn key(&self) -> &[u8] {
        let (len, len_bytes) = key_len(&self.0);
        &self.0[len_bytes..len_bytes + len]
    }

    /// The data; `None` when it is null.
    pub(crate) fn data(&self) -> Option<&[u8]> {
        let start = self.stat_start();
        let flags = u16::from_ne_bytes(self.0[start..start + 2].try_into().expect("2 bytes"));
        let data = &self.0[start + stat_bytes(flags)..];
        if flags & F_NULL_DATA == 0 {
            Some(data)
        } else {
            assert!(data.is_empty(), "null data with {} bytes", data.len());
            None
        }
    }

    /// Bytes of data, null counting as 0 (ZooKeeper's `data == null ? 0 : data.length`, in
    /// the stat's dataLength, quotas and the approximate data size).
    pub(crate) fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("key", &self.key())
            .field("meta", &self.meta())
            .field("data_len", &self.data().map(<[u8]>::len))
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
        let n = Node::new(b"\0\0\0\x01/a", &meta, Some(b"xyz"), 0);
        let long_key = vec![b'k'; 70_000];
        let long = Node::new(&long_key, &meta, Some(b"d"), 0);
        assert_eq!(long.key(), &long_key[..]);
        assert_eq!(long.meta(), meta);
        assert_eq!(long.data(), Some(&b"d"[..]));
        let usual = Meta::new(5, 6, 0, AclId(0));
        let plain = Node::new(b"k", &usual, Some(b""), 0);
        assert_eq!(plain.meta(), usual);
        assert_eq!(
            plain.0.len(),
            2 + DIGEST_BYTES + STAT_FIXED_BYTES,
            "only the digest, czxid and ctime stored"
        );
        assert_eq!(n.meta(), meta);
        assert_eq!(n.key(), b"\0\0\0\x01/a");
        assert_eq!(n.data(), Some(&b"xyz"[..]));
        let empty = Node::new(b"", &meta, Some(b""), 0);
        assert_eq!(empty.key(), b"");
        assert_eq!(empty.data(), Some(&b""[..]));
        let kept = Node::new(b"k", &meta, Some(b"v"), 0x0123_4567_89ab_cdef);
        assert_eq!(kept.digest(), 0x0123_4567_89ab_cdef);
        assert_eq!(kept.meta(), meta, "the digest is no stat field");
        assert_eq!(kept.data(), Some(&b"v"[..]));
    }

    #[test]
    fn null_data_is_not_empty_data() {
        let meta = Meta {
            version: 4,
            num_children: 2,
            ..Meta::new(5, 6, 7, AclId(3))
        };
        let null = Node::new(b"\0\0\0\x01/n", &meta, None, 0);
        let empty = Node::new(b"\0\0\0\x01/n", &meta, Some(b""), 0);
        assert_eq!(null.data(), None);
        assert_eq!(null.data_len(), 0);
        assert_eq!(empty.data(), Some(&b""[..]));
        assert_eq!(null.meta(), meta, "the null flag is no stat field");
        assert_eq!(null.0.len(), empty.0.len(), "null costs no byte");
    }

    #[test]
    fn orders_by_key_only() {
        let a = Node::new(b"a", &Meta::new(9, 9, 0, AclId(0)), Some(b"zzz"), 0);
        let b = Node::new(b"b", &Meta::new(1, 1, 0, AclId(1)), Some(b""), 0);
        assert!(a < b);
        assert_eq!(
            a,
            Node::new(b"a", &Meta::new(0, 0, 0, AclId(0)), Some(b""), 0)
        );
    }
}
