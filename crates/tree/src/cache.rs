//! Tables of nodes by path in front of the tree's ordered set: a shard's [`NodeCache`] of
//! one view's nodes, for the hot single-node reads (getData, exists), and [`WrittenNodes`],
//! a written tree's own table of its last writes (below).
//!
//! Why: a lookup in the `OrdSet` binary-searches branch and leaf chunks by comparing keys,
//! and every key lives at the head of its own node's allocation, so a lookup touches a
//! dozen cold cache lines: profiled with 1,000 znodes of 1 KiB under pinned getData load,
//! the load of a probed node's first byte was half of the lookup's samples and the lookup
//! 11% of the shard's. A hit here costs a hash of the path and one slot, and the one node
//! it finds is the node the answer copies from anyway.
//!
//! Shape: direct mapped (a path's hash picks its one slot; a colliding path replaces it),
//! each slot a clone of the node (the allocation is shared, no bytes are copied). A slot is
//! valid only for the view it was filled from: `clear` empties the slots filled since the
//! last clear, so the cache holds no node the current view does not also hold, and a
//! clear costs what the fills cost, not the table's size. The owner clears it whenever it
//! installs another view (`Shard::on_commit`).

use crate::node::Node;
use crate::path::DEPTH_BYTES;
use crate::tree::{read_path, NodeRef, Tree};

/// Slots of a cache: 64 KiB of fat pointers, within a core's L2.
const SLOTS: usize = 4096;

pub struct NodeCache {
    slots: Box<[Option<Node>]>,
    /// Indexes of the slots filled since the last clear.
    filled: Vec<u32>,
}

impl NodeCache {
    pub fn new() -> Self {
        NodeCache {
            slots: vec![None; SLOTS].into_boxed_slice(),
            filled: Vec::new(),
        }
    }

    /// The node at `path` in `view`, as `view.get(path)` finds it. `view` must be the view
    /// the cache was filled from since its last `clear`.
    pub fn get<'a>(&'a mut self, view: &'a Tree, path: &str) -> Option<NodeRef<'a>> {
        let path = read_path(path);
        let index = slot_of(path.as_bytes());
        let slot = &mut self.slots[index];
        if !matches!(slot, Some(n) if path_of(n) == path.as_bytes()) {
            let before = slot.replace(view.node(path)?.clone());
            if before.is_none() {
                self.filled.push(index as u32);
            }
        }
        slot.as_ref().map(|n| view.node_ref(n))
    }

    /// Forgets every node: the view is about to change.
    pub fn clear(&mut self) {
        for slot in self.filled.drain(..) {
            self.slots[slot as usize] = None;
        }
    }

    /// Nodes held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.filled.len()
    }
}

impl Default for NodeCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The tree's own table of the nodes it wrote last, by path, in front of its ordered set
/// for the lookups of its own writes.
///
/// Why: a setData searched the set three times on the core: prep's lookup of the node, the
/// apply's, and the insert of the new version. The node a write looks up is most often one
/// the tree wrote recently (the same key written again; a parent whose child count the last
/// create moved), and here it is found by a hash of the path and one compare, so prep and
/// apply cost no search when it is. Profiled with 1,000 keys of 1 KiB under pinned setData
/// load, the set's searches were ~7% of the core's samples.
///
/// Shape: direct mapped like [`NodeCache`], filled only by the tree's own writes (`put`
/// with each node it inserts, `forget` with each it removes), so a slot holds exactly the
/// node the set holds at that path and needs no clearing; lookups only read it, so `&self`
/// reads use it as well. A clone of the tree starts without a table (the views the core
/// publishes after every batch would otherwise each copy one): the table is allocated by a
/// tree's first write, and so lives only in trees that are written (the core's).
#[derive(Default)]
pub(crate) struct WrittenNodes {
    slots: Option<Box<[Option<Node>]>>,
}

impl Clone for WrittenNodes {
    fn clone(&self) -> Self {
        WrittenNodes::default()
    }
}

impl WrittenNodes {
    /// The node at `path`, if it is the one in the path's slot.
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        let slots = self.slots.as_ref()?;
        match &slots[slot_of(path.as_bytes())] {
            Some(n) if path_of(n) == path.as_bytes() => Some(n),
            _ => None,
        }
    }

    /// `node` is now the tree's node at its key.
    pub(crate) fn put(&mut self, node: &Node) {
        let slots = self
            .slots
            .get_or_insert_with(|| vec![None; SLOTS].into_boxed_slice());
        slots[slot_of(path_of(node))] = Some(node.clone());
    }

    /// The tree no longer has a node at `path`.
    pub(crate) fn forget(&mut self, path: &str) {
        let Some(slots) = self.slots.as_mut() else {
            return;
        };
        let slot = &mut slots[slot_of(path.as_bytes())];
        if matches!(slot, Some(n) if path_of(n) == path.as_bytes()) {
            *slot = None;
        }
    }

    /// The nodes held, for the tree's invariant check.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Node> {
        self.slots.iter().flat_map(|s| s.iter().flatten())
    }
}

/// A node's path as bytes: its key without the depth prefix (no UTF-8 check, as the tables
/// only compare and hash it).
fn path_of(n: &Node) -> &[u8] {
    &n.key()[DEPTH_BYTES..]
}

/// The slot of a path: a multiplicative hash of its bytes, eight at a time. Paths come from
/// clients, so one could name paths that collide: a hit compares the whole path, so that
/// only makes reads miss, each costing the tree's lookup, as every read did before.
fn slot_of(path: &[u8]) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = path.len() as u64;
    let mut chunks = path.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(23) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{Op, Txn};
    use crate::PrepContext;
    use zoocore_proto::{Acl, CreateMode, SessionId, Zxid};

    fn ctx(zxid: i64) -> PrepContext<'static> {
        PrepContext {
            session: SessionId(1),
            auth: &[],
            zxid: Zxid(zxid),
            time_ms: 0,
            enforce_quota: false,
        }
    }

    fn tree_with(paths: &[&str]) -> Tree {
        let mut tree = Tree::new();
        for (i, p) in paths.iter().enumerate() {
            let op = Op::Create {
                path: p.to_string(),
                data: Some(p.as_bytes().to_vec().into()),
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: -1,
            };
            let zxid = i as i64 + 1;
            let txn = tree.prepare(&op, &ctx(zxid));
            assert!(!matches!(txn, Txn::Error(_)), "{p}: {txn:?}");
            tree.apply(Zxid(zxid), 0, &txn);
        }
        tree
    }

    #[test]
    fn answers_as_the_tree_does_hit_or_miss() {
        let paths: Vec<String> = (0..3 * SLOTS).map(|i| format!("/n{i}")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let tree = tree_with(&refs);
        let mut cache = NodeCache::new();
        // Twice over, more paths than slots: collisions replace each other.
        for _ in 0..2 {
            for p in refs
                .iter()
                .chain(["/", "", "/zookeeper", "/absent", "/n1/x"].iter())
            {
                let want = tree
                    .get(p)
                    .map(|n| (n.data().map(<[u8]>::to_vec), n.stat()));
                let got = cache
                    .get(&tree, p)
                    .map(|n| (n.data().map(<[u8]>::to_vec), n.stat()));
                assert_eq!(got, want, "{p}");
            }
        }
        assert!(cache.len() <= SLOTS);
    }

    #[test]
    fn a_clear_forgets_the_old_view() {
        let old = tree_with(&["/a"]);
        let mut cache = NodeCache::new();
        assert_eq!(cache.get(&old, "/a").unwrap().data(), Some(&b"/a"[..]));
        assert_eq!(cache.len(), 1);
        let mut new = old.clone();
        let set = Op::SetData {
            path: "/a".into(),
            data: Some(b"new".to_vec().into()),
            version: -1,
        };
        let txn = new.prepare(&set, &ctx(9));
        new.apply(Zxid(9), 0, &txn);
        cache.clear();
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.get(&new, "/a").unwrap().data(), Some(&b"new"[..]));
        assert_eq!(cache.get(&new, "/a").unwrap().stat().version, 1);
    }

    #[test]
    fn slots_spread_paths_that_differ_only_at_the_end() {
        let used: std::collections::HashSet<usize> = (0..1000)
            .map(|i| slot_of(format!("/bench/key-{i:06}").as_bytes()))
            .collect();
        // A uniform hash puts 1,000 paths into ~790 distinct slots of 4,096.
        assert!(used.len() > 700, "{}", used.len());
    }

    fn run(tree: &mut Tree, op: Op, zxid: i64) {
        let txn = tree.prepare(&op, &ctx(zxid));
        assert!(!matches!(txn, Txn::Error(_)), "{op:?}: {txn:?}");
        tree.apply(Zxid(zxid), 0, &txn);
    }

    fn answer(tree: &Tree, path: &str) -> Option<(Option<Vec<u8>>, zoocore_proto::Stat)> {
        tree.get(path)
            .map(|n| (n.data().map(<[u8]>::to_vec), n.stat()))
    }

    #[test]
    fn a_tree_finds_what_it_wrote_last_and_nothing_it_removed() {
        let paths: Vec<String> = (0..3 * SLOTS).map(|i| format!("/n{i}")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let mut tree = tree_with(&refs);
        let mut zxid = 100_000;
        for (i, p) in refs.iter().enumerate() {
            zxid += 1;
            let op = match i % 3 {
                0 => Op::SetData {
                    path: p.to_string(),
                    data: Some(format!("v{i}").into_bytes().into()),
                    version: -1,
                },
                1 => Op::Delete {
                    path: p.to_string(),
                    version: -1,
                },
                _ => continue,
            };
            run(&mut tree, op, zxid);
        }
        // Deleted, then created again with other data: the new node, not the old.
        zxid += 1;
        run(
            &mut tree,
            Op::Create {
                path: "/n1".into(),
                data: None,
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: -1,
            },
            zxid,
        );
        tree.check_invariants();
        // A clone has no table: it answers from the set alone.
        let set_only = tree.clone();
        assert_eq!(set_only.written_count(), 0);
        assert!(tree.written_count() > SLOTS / 2);
        for p in refs.iter().chain(["/", "", "/zookeeper", "/absent"].iter()) {
            assert_eq!(answer(&tree, p), answer(&set_only, p), "{p}");
        }
        assert_eq!(answer(&tree, "/n0").unwrap().0, Some(b"v0".to_vec()));
        assert_eq!(answer(&tree, "/n0").unwrap().1.version, 1);
        assert_eq!(answer(&tree, "/n1").unwrap().0, None);
        assert!(!tree.exists("/n4"));
        assert_eq!(answer(&tree, "/n5").unwrap().0, Some(b"/n5".to_vec()));
    }
}
