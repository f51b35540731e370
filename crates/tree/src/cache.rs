//! A shard's cache of one view's nodes by path, in front of the tree's ordered set for the
//! hot single-node reads (getData, exists).
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
        let index = slot_of(path);
        let slot = &mut self.slots[index];
        if !matches!(slot, Some(n) if &n.key()[DEPTH_BYTES..] == path.as_bytes()) {
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

/// The slot of a path: a multiplicative hash of its bytes, eight at a time. Paths come from
/// clients, so one could name paths that collide: a hit compares the whole path, so that
/// only makes reads miss, each costing the tree's lookup, as every read did before.
fn slot_of(path: &str) -> usize {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = path.len() as u64;
    let mut chunks = path.as_bytes().chunks_exact(8);
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
                data: Some(p.as_bytes().to_vec()),
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
            data: Some(b"new".to_vec()),
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
            .map(|i| slot_of(&format!("/bench/key-{i:06}")))
            .collect();
        // A uniform hash puts 1,000 paths into ~790 distinct slots of 4,096.
        assert!(used.len() > 700, "{}", used.len());
    }
}
