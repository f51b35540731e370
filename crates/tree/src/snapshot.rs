//! The tree's full state, out and back in: what a snapshot file holds (docs/SNAPSHOT.md).
//!
//! `Tree::snapshot_nodes` lists every znode with its stored fields (raw `ephemeral_owner`,
//! `cversion` as the count of child creates), in key order so that every parent comes before
//! its children; `Tree::sessions` lists the sessions. `TreeBuilder` rebuilds a tree from
//! exactly that: it recounts `num_children`, re-interns ACLs, rebuilds the ephemeral,
//! container and TTL indexes and the digest, so a rebuilt tree equals the original
//! (same digest, same stats). The builder takes bytes that came from disk, so it reports
//! bad input as a `RestoreError` and never panics on it.
//!
//! This module is a child of `tree` (declared there) because it needs the node's private
//! representation; it adds no way to change a live tree.

use std::ops::Bound;

use imbl::{HashMap as IHashMap, OrdMap, OrdSet, Vector};
use thiserror::Error;
use zoocore_proto::{Acl, SessionId, Zxid};

use super::{session_digest, Meta, Node, Tree};
use crate::path::{key_of, normalize_parent, parent_of, path_of_key, validate_path};

/// A znode's stored stat fields (ZooKeeper's `StatPersisted`, without `num_children`,
/// which is derived).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    /// Raw owner: a session id, `CONTAINER_OWNER`, a TTL owner encoding, or 0.
    pub ephemeral_owner: i64,
    pub version: i32,
    /// As stored: the number of child creates (clients see `cversion * 2 - num_children`).
    pub cversion: i32,
    pub aversion: i32,
}

/// One znode as a snapshot holds it, borrowed from a tree or from decoded bytes.
#[derive(Clone, Copy, Debug)]
pub struct NodeState<'a> {
    pub path: &'a str,
    /// `None`: null data.
    pub data: Option<&'a [u8]>,
    pub acl: &'a [Acl],
    pub stat: StoredStat,
}

/// Why a tree could not be rebuilt from the given state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    #[error("invalid path {0:?}")]
    BadPath(String),
    #[error("node {0:?} is out of order or repeated")]
    OutOfOrder(String),
    #[error("the first node is {0:?}, not the root")]
    RootNotFirst(String),
    #[error("parent of {0:?} is missing")]
    MissingParent(String),
    #[error("too many children under {0:?}")]
    TooManyChildren(String),
    #[error("session {0} repeated")]
    DuplicateSession(SessionId),
    #[error("no root node")]
    NoRoot,
}

fn node_state<'a>(tree: &'a Tree, node: &'a Node) -> NodeState<'a> {
    let n = node.meta();
    NodeState {
        path: path_of_key(node.key()),
        data: node.data(),
        acl: tree.acl(n.acl),
        stat: StoredStat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            pzxid: n.pzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            ephemeral_owner: n.ephemeral_owner,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
        },
    }
}

impl Tree {
    /// Every znode with its stored fields, in key order (depth, then path): parents first.
    pub fn snapshot_nodes(&self) -> impl Iterator<Item = NodeState<'_>> + '_ {
        self.nodes.iter().map(|n| node_state(self, n))
    }

    /// The nodes after `after` (exclusive; `None` = from the root), in the same order as
    /// `snapshot_nodes`: lets a writer resume between chunks in O(log n) without holding a
    /// borrow across a yield.
    pub fn snapshot_nodes_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = NodeState<'a>> + 'a {
        let lower = match after {
            None => Bound::Unbounded,
            Some(p) => Bound::Excluded(key_of(p)),
        };
        self.nodes
            .range::<_, [u8]>((lower.as_ref().map(|k: &Vec<u8>| &k[..]), Bound::Unbounded))
            .map(|n| node_state(self, n))
    }

    /// Number of sessions (the snapshot header's session count).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

/// Rebuilds a tree from `snapshot_nodes` (in that order) and `sessions`.
#[derive(Debug)]
pub struct TreeBuilder {
    tree: Tree,
    last_key: Option<Vec<u8>>,
    /// The parent whose children are being added, and how many so far. In key order a
    /// node's children are one contiguous run, so each parent is written once, with its final
    /// count, when its run ends (instead of once per child).
    run: Option<(String, i32)>,
}

impl TreeBuilder {
    /// An empty tree at `last_zxid` (not even a root: the snapshot supplies it).
    pub fn new(last_zxid: Zxid, extended_types: bool) -> Self {
        TreeBuilder {
            tree: Tree {
                nodes: OrdSet::new(),
                ephemerals: OrdMap::new(),
                containers: OrdSet::new(),
                ttls: OrdSet::new(),
                quotas: OrdSet::new(),
                sessions: OrdMap::new(),
                acls: Vector::new(),
                acl_ids: IHashMap::new(),
                last_zxid,
                digest: 0,
                data_bytes: 0,
                ephemeral_nodes: 0,
                written: Default::default(),
                extended_types,
            },
            last_key: None,
            run: None,
        }
    }

    /// Writes the finished run's parent with its child count.
    fn end_run(&mut self) {
        if let Some((parent, count)) = self.run.take() {
            let old = self
                .tree
                .node(&parent)
                .expect("a run's parent was checked at its first child");
            let mut meta = old.meta();
            meta.num_children = count;
            let updated = self.tree.with_meta(old, &meta);
            self.tree.put_node(updated);
        }
    }

    /// Adds one node; its parent must have been added before it.
    pub fn add_node(&mut self, n: &NodeState<'_>) -> Result<(), RestoreError> {
        let path = n.path;
        if validate_path(path, false).is_err() {
            return Err(RestoreError::BadPath(path.to_owned()));
        }
        let key = key_of(path);
        match &self.last_key {
            None if path != "/" => return Err(RestoreError::RootNotFirst(path.to_owned())),
            Some(last) if key <= *last => return Err(RestoreError::OutOfOrder(path.to_owned())),
            _ => {}
        }
        if path != "/" {
            let parent = normalize_parent(parent_of(path).unwrap_or("/"));
            match &mut self.run {
                Some((p, count)) if p == parent => {
                    *count = count
                        .checked_add(1)
                        .ok_or_else(|| RestoreError::TooManyChildren(parent.to_owned()))?;
                }
                _ => {
                    self.end_run();
                    if self.tree.node(parent).is_none() {
                        return Err(RestoreError::MissingParent(path.to_owned()));
                    }
                    self.run = Some((parent.to_owned(), 1));
                }
            }
        }
        let s = n.stat;
        let acl = self.tree.intern_acl(n.acl);
        let meta = Meta {
            czxid: s.czxid,
            mzxid: s.mzxid,
            pzxid: s.pzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            ephemeral_owner: s.ephemeral_owner,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            num_children: 0,
            acl,
        };
        self.tree.put_node(self.tree.make_node(&key, &meta, n.data));
        self.tree.index_owner(path, s.ephemeral_owner, true);
        if let Some((target, crate::quota::LIMITS_NODE)) = crate::quota::quota_node(path) {
            self.tree.quotas.insert(std::sync::Arc::from(target));
        }
        self.last_key = Some(key);
        Ok(())
    }

    pub fn add_session(&mut self, session: SessionId, timeout_ms: i32) -> Result<(), RestoreError> {
        if self.tree.sessions.insert(session, timeout_ms).is_some() {
            return Err(RestoreError::DuplicateSession(session));
        }
        self.tree.digest = self
            .tree
            .digest
            .wrapping_add(session_digest(session, timeout_ms));
        Ok(())
    }

    /// The rebuilt tree. Its digest is recomputed from the nodes and sessions given; the
    /// caller compares it with the digest it recorded.
    pub fn finish(mut self) -> Result<Tree, RestoreError> {
        self.end_run();
        if self.tree.node("/").is_none() {
            return Err(RestoreError::NoRoot);
        }
        Ok(self.tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::Txn;
    use zoocore_proto::Id;

    fn rebuild(t: &Tree) -> Tree {
        let mut b = TreeBuilder::new(t.last_zxid(), t.extended_types());
        for n in t.snapshot_nodes() {
            b.add_node(&n).expect("node restores");
        }
        for (s, to) in t.sessions() {
            b.add_session(s, to).expect("session restores");
        }
        b.finish().expect("tree restores")
    }

    #[test]
    fn rebuild_matches_digest_and_stats() {
        let mut t = Tree::with_extended_types(true);
        let mut z = 0;
        let mut apply = |t: &mut Tree, txn: Txn| {
            z += 1;
            let applied = t.apply(Zxid::new(1, z), 1000 + i64::from(z), &txn);
            assert!(!applied.stale);
        };
        apply(
            &mut t,
            Txn::CreateSession {
                session: SessionId(7),
                timeout_ms: 5000,
            },
        );
        let acl = vec![Acl {
            perms: zoocore_proto::Perms::ALL,
            id: Id::anyone(),
        }];
        let nodes = [
            ("/a", 0, Some(&b"xyz"[..])),
            ("/a/b", 7, None),
            ("/c", crate::CONTAINER_OWNER, Some(&b""[..])),
        ];
        for (path, owner, data) in nodes {
            apply(
                &mut t,
                Txn::Create {
                    path: path.into(),
                    data: data.map(bytes::Bytes::copy_from_slice),
                    acl: acl.clone(),
                    ephemeral_owner: owner,
                    parent_cversion: 1,
                },
            );
        }
        let r = rebuild(&t);
        r.check_invariants();
        assert_eq!(r.digest(), t.digest());
        assert_eq!(r.last_zxid(), t.last_zxid());
        for n in t.snapshot_nodes() {
            let got = r.get(n.path).expect("node present");
            assert_eq!(
                got.stat(),
                t.get(n.path).expect("node").stat(),
                "{}",
                n.path
            );
            assert_eq!(got.data(), n.data, "{}: null and empty kept apart", n.path);
        }
        assert_eq!(r.get("/a/b").expect("node").data(), None);
        assert_eq!(r.get("/c").expect("node").data(), Some(&b""[..]));
        assert_eq!(r.ephemerals(SessionId(7), "/"), vec!["/a/b".to_string()]);
        assert_eq!(r.ephemeral_count(), t.ephemeral_count());
        assert_eq!(r.approximate_data_size(), t.approximate_data_size());
    }

    #[test]
    fn resume_after_a_path_continues_in_order() {
        let t = Tree::new();
        let all: Vec<_> = t.snapshot_nodes().map(|n| n.path).collect();
        let rest: Vec<_> = t
            .snapshot_nodes_after(Some(all[1]))
            .map(|n| n.path)
            .collect();
        assert_eq!(rest, all[2..].to_vec());
        assert_eq!(t.snapshot_nodes_after(None).count(), all.len());
    }

    #[test]
    fn bad_order_and_missing_parent_are_errors() {
        let t = Tree::new();
        let nodes: Vec<_> = t.snapshot_nodes().collect();
        let mut b = TreeBuilder::new(Zxid::ZERO, false);
        assert!(matches!(
            b.add_node(&nodes[1]),
            Err(RestoreError::RootNotFirst(_))
        ));
        b.add_node(&nodes[0]).expect("root");
        assert!(b.add_node(&nodes[0]).is_err());
        let orphan = NodeState {
            path: "/x/y",
            ..nodes[0]
        };
        assert!(matches!(
            b.add_node(&orphan),
            Err(RestoreError::MissingParent(_))
        ));
    }
}
