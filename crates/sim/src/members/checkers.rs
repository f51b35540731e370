//! What must hold of a run, checked as it goes and at its end.
//!
//! - Every member's tree has the same digest at the same zxid (committed prefixes agree,
//!   and a restarted member's recovery rebuilt the same tree).
//! - Every acknowledged write is in every member's tree at the end, across crashes that
//!   lose unsynced writes.
//! - A read after `sync` holds every write acknowledged to any client before the sync was
//!   sent (the sync is linearizable, docs/ZAB.md).
//! - A request is answered at most once on its connection.
//! - The ephemerals of a session that expired are gone; an abandoned session expires.
//! - A container is reaped only once its child is gone, and then it is; a TTL node that is
//!   never touched goes.

use std::collections::{BTreeMap, BTreeSet};

use zoocore_proto::{SessionId, Zxid};
use zoocore_tree::Tree;

#[derive(Default)]
pub struct History {
    /// The digest each zxid's tree had, where any member published it.
    digests: BTreeMap<Zxid, (u64, u64)>,
    /// Persistent writes acknowledged to their client, with the zxid of the answer.
    pub acked: BTreeMap<String, Zxid>,
    /// Sessions whose close or expiry some member published.
    pub closed: BTreeSet<SessionId>,
    /// Sessions clients abandoned (they stopped touching them), with their ephemerals.
    pub abandoned: BTreeMap<SessionId, Vec<String>>,
    /// Containers whose only child's delete was acknowledged, and those whose child stays.
    pub emptied_boxes: BTreeSet<String>,
    pub full_boxes: BTreeSet<String>,
    /// TTL nodes created and never touched again.
    pub ttl_nodes: BTreeSet<String>,
}

impl History {
    /// A member published `tree`.
    pub fn published(&mut self, member: u64, tree: &Tree) -> Result<(), String> {
        let zxid = tree.last_zxid();
        let digest = tree.digest();
        match self.digests.get(&zxid) {
            Some(&(d, by)) if d != digest => Err(format!(
                "member {member} has digest {digest:x} at {zxid}, member {by} had {d:x}"
            )),
            Some(_) => Ok(()),
            None => {
                self.digests.insert(zxid, (digest, member));
                Ok(())
            }
        }
    }

    /// A sync answered with `view`: every write in `acked_before` must be in it.
    pub fn synced_read(&self, view: &Tree, acked_before: &[String]) -> Result<(), String> {
        for path in acked_before {
            if !view.exists(path) {
                return Err(format!(
                    "a read after sync at {} misses {path}, acknowledged before the sync",
                    view.last_zxid()
                ));
            }
        }
        Ok(())
    }

    /// The end of a healed, quiet run: `tree` is one member's final tree.
    pub fn final_tree(&self, member: u64, tree: &Tree) -> Result<(), String> {
        for (path, zxid) in &self.acked {
            if !tree.exists(path) {
                return Err(format!(
                    "member {member} lost {path}, acknowledged at {zxid} (tree at {})",
                    tree.last_zxid()
                ));
            }
        }
        for s in self.closed.iter().chain(self.abandoned.keys()) {
            if tree.session_exists(*s) {
                if self.abandoned.contains_key(s) {
                    return Err(format!("abandoned session {s} never expired on {member}"));
                }
                continue;
            }
            let left = tree.ephemerals(*s, "/");
            if !left.is_empty() {
                return Err(format!("session {s} is gone but {left:?} stay on {member}"));
            }
        }
        for (s, paths) in &self.abandoned {
            for p in paths {
                if tree.exists(p) {
                    return Err(format!("{p} of expired session {s} stays on {member}"));
                }
            }
        }
        for b in &self.emptied_boxes {
            if let Some(n) = tree.get(b) {
                return Err(format!(
                    "container {b} lost its child but was not reaped on {member}: {:?}",
                    n.stat()
                ));
            }
        }
        for b in &self.full_boxes {
            if !tree.exists(b) {
                return Err(format!(
                    "container {b} was reaped with its child on {member}"
                ));
            }
        }
        for t in &self.ttl_nodes {
            if let Some(n) = tree.get(t) {
                return Err(format!(
                    "TTL node {t} outlived its TTL on {member}: {:?}",
                    n.stat()
                ));
            }
        }
        Ok(())
    }
}
