//! What must hold of a run, checked as it goes and at its end.
//!
//! - One leader per epoch: no two members send NEWLEADER for the same epoch on a voter's
//!   connection. Only a leader answers a voter's FOLLOWERINFO (an observer master serves
//!   observers only: ZooKeeper's LearnerHandler refuses all but OBSERVERINFO on an
//!   ObserverMaster), and it sends NEWLEADER only once a quorum promised it the epoch; a
//!   master's NEWLEADER to its observers carries its leader's epoch and names no leader.
//!   The frame, not the sender's role, says it: a member's role is Looking while it leads
//!   an epoch not yet established, and a frame may go out after the role it was made in
//!   ended (in the same step, or held behind a SNAP that was being built).
//! - Committed prefixes agree: every entry of a member's log at or below its committed zxid
//!   is, byte for byte, the entry any other member committed at that zxid.
//! - Every member's tree has the same digest at the same zxid (a restarted member's
//!   recovery rebuilt the same tree, and every read is of a committed state).
//! - Writes are answered in the order their session sent them, each after every write that
//!   had been acknowledged (to anyone) before it was sent: real-time order.
//! - Reads are monotonic: a client never reads a state older than one it has seen (its
//!   answers' zxids, its earlier reads), and it reads its own writes.
//! - Every acknowledged write is in every member's tree at the end, across crashes that
//!   lose unsynced writes.
//! - A read after `sync` holds every write acknowledged to any client before the sync was
//!   sent (the sync is linearizable, docs/ZAB.md).
//! - A request is answered at most once on its connection, and never left unanswered on a
//!   connection that stays open (sim.rs checks both, as it holds the connections and
//!   releases answers in request order as a shard's per-session FIFO does).
//! - The ephemerals of a session that expired are gone; an abandoned session expires.
//! - A container is reaped only once its child is gone, and then it is; a TTL node that is
//!   never touched goes.

use std::collections::{BTreeMap, BTreeSet};

use zoocore_proto::{SessionId, Zxid};
use zoocore_storage::LogEntry;
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
    /// The member that led each epoch.
    pub leaders: BTreeMap<u32, u64>,
    /// The connections of the FOLLOWERINFOs learners sent as voters.
    voter_conns: BTreeSet<u64>,
    /// Every committed log entry seen in a member's log: its time and txn bytes.
    committed: BTreeMap<Zxid, (i64, Vec<u8>)>,
    /// The newest zxid a write was acknowledged at.
    pub acked_max: Zxid,
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

    /// A learner opened connection `conn` with a FOLLOWERINFO, as an observer or a voter.
    pub fn follower_info(&mut self, conn: u64, observer: bool) {
        if !observer {
            self.voter_conns.insert(conn);
        }
    }

    /// Member `id` sent NEWLEADER of `epoch` on learner connection `conn`: on a voter's, it
    /// leads the epoch. Whether it is an observer master's (to an observer, from a member
    /// that does not lead the epoch: a master serves once its leader is established).
    pub fn new_leader(&mut self, id: u64, epoch: u32, conn: u64) -> Result<bool, String> {
        if self.voter_conns.contains(&conn) {
            self.leads(epoch, id)?;
            return Ok(false);
        }
        Ok(self.leaders.get(&epoch).is_some_and(|leader| *leader != id))
    }

    /// Member `id` acts as leader of `epoch`.
    fn leads(&mut self, epoch: u32, id: u64) -> Result<(), String> {
        match self.leaders.insert(epoch, id) {
            Some(other) if other != id => {
                Err(format!("two leaders in epoch {epoch}: {other} and {id}"))
            }
            _ => Ok(()),
        }
    }

    /// Entries of member `id`'s log that are committed on it (at or below its view): each
    /// must be what every other member committed at its zxid.
    pub fn committed_entries(&mut self, id: u64, entries: &[LogEntry]) -> Result<(), String> {
        for e in entries {
            match self.committed.get(&e.zxid) {
                Some((t, txn)) if *t != e.time_ms || *txn != e.txn => {
                    return Err(format!(
                        "member {id} committed another entry at {}: time {} vs {t}, {} vs {} txn bytes",
                        e.zxid,
                        e.time_ms,
                        e.txn.len(),
                        txn.len()
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(e.zxid, (e.time_ms, e.txn.clone()));
                }
            }
        }
        Ok(())
    }

    /// A write sent when `after` was the newest acknowledged was acknowledged at `zxid`.
    pub fn write_acked(&mut self, path: &str, after: Zxid, zxid: Zxid) -> Result<(), String> {
        if zxid <= after {
            return Err(format!(
                "write {path} acknowledged at {zxid}, not after {after}, acknowledged before it was sent"
            ));
        }
        self.acked_max = self.acked_max.max(zxid);
        self.acked.insert(path.to_owned(), zxid);
        Ok(())
    }

    /// Client `c`, having seen `seen`, read `view` on member `id`: not older than what it
    /// saw, a state some member published (same digest), with its own writes.
    pub fn read(
        &mut self,
        c: u64,
        id: u64,
        seen: Zxid,
        view: &Tree,
        own: &[String],
    ) -> Result<(), String> {
        let at = view.last_zxid();
        if at < seen {
            return Err(format!(
                "client {c} read state at {at} from member {id} after seeing {seen}"
            ));
        }
        self.published(id, view)?;
        for path in own {
            if !view.exists(path) {
                return Err(format!(
                    "client {c} read state at {at} from member {id} without its own write {path}"
                ));
            }
        }
        Ok(())
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
