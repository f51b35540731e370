//! Which servers decide each zxid under dynamic reconfiguration (ZooKeeper 3.5+'s
//! `reconfig`): the membership in effect, and the reconfigurations logged after it that
//! have not taken effect yet.
//!
//! A reconfig is an ordinary proposal whose payload the driver recognises
//! (`Config::reconfig_of`); nothing in the frames changes. Its rules are ZooKeeper's
//! (Leader.tryToCommit with the dual ack sets, QuorumPeer.processReconfig):
//! - a zxid at or after a logged, not yet effective reconfig is committed only once a
//!   quorum of the membership in effect AND a quorum of every such reconfig's membership
//!   have acknowledged it; before it, only the membership in effect counts;
//! - a reconfig takes effect on each member when that member applies it (its commit), so
//!   the membership in effect for zxid `z` is the one made by the last reconfig below `z`;
//! - a leader establishes only with quorums of all of them (ZooKeeper's NEWLEADER with the
//!   last seen configuration), so a reconfig that might have committed is never lost to a
//!   leader elected by the old voters alone.
//!
//! The membership in effect is a pure function of the committed log: the starting one (the
//! driver's, from the tree's `/zookeeper/config` or zoo.cfg) and the reconfigs applied since.

use std::collections::{BTreeMap, BTreeSet};

use zoocore_proto::Zxid;

use crate::quorum::Quorum;
use crate::ServerId;

/// One configuration's servers by role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    pub voters: BTreeSet<ServerId>,
    pub observers: BTreeSet<ServerId>,
}

impl Members {
    pub fn new(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
    ) -> Members {
        Members {
            voters: voters.into_iter().collect(),
            observers: observers.into_iter().collect(),
        }
    }

    pub fn contains(&self, id: ServerId) -> bool {
        self.voters.contains(&id) || self.observers.contains(&id)
    }
}

/// Recognises a reconfig in a proposal's payload and reads the membership it makes;
/// `None` for every other payload (the driver owns the payload's format).
pub type ReconfigOf = fn(&[u8]) -> Option<Members>;

/// A payload format without reconfigs.
pub fn no_reconfig(_: &[u8]) -> Option<Members> {
    None
}

/// The membership in effect and the logged reconfigs after it.
#[derive(Clone, Debug)]
pub(crate) struct Membership {
    /// The zxid of the reconfig that made the membership in effect (`ZERO`: the start's).
    pub(crate) since: Zxid,
    pub(crate) current: Members,
    /// Logged reconfigs after `since`, ascending, with their quorums.
    pending: Vec<(Zxid, Members, Quorum)>,
}

impl Membership {
    pub(crate) fn new(since: Zxid, current: Members) -> Membership {
        Membership {
            since,
            current,
            pending: Vec::new(),
        }
    }

    /// A reconfig was appended to the log at `zxid`.
    pub(crate) fn logged(&mut self, zxid: Zxid, members: Members) {
        if zxid <= self.since || members.voters.is_empty() {
            return;
        }
        if let Some(last) = self.pending.last() {
            assert!(zxid > last.0, "reconfig {zxid} logged after {}", last.0);
        }
        let quorum = Quorum::new(members.voters.iter().copied());
        self.pending.push((zxid, members, quorum));
    }

    /// The log lost every entry after `after` (TRUNC, or a SNAP's replacement).
    pub(crate) fn truncated(&mut self, after: Zxid) {
        self.pending.retain(|p| p.0 <= after);
    }

    /// A snapshot through `zxid` replaced the log up to it: the reconfigs logged at or below
    /// it are dropped, not activated. This log's entries there may be a tail the leader never
    /// had (a deposed leader's uncommitted proposals, which `keep` does not cover); the
    /// snapshot's own configuration is the one in effect, and the driver reads it from the
    /// snapshot's tree (`Replica::adopt_membership`).
    pub(crate) fn replaced_through(&mut self, zxid: Zxid) {
        self.pending.retain(|p| p.0 > zxid);
    }

    /// Whether a logged reconfig has not taken effect yet (ZooKeeper's last seen
    /// configuration differs from the one in effect: RECONFIGINPROGRESS).
    pub(crate) fn in_progress(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The newest logged membership, effective or not.
    pub(crate) fn last_seen(&self) -> &Members {
        self.pending.last().map_or(&self.current, |p| &p.1)
    }

    /// Applying through `applied` activates the reconfigs at or below it: the membership
    /// now in effect when it changed.
    pub(crate) fn activate_through(&mut self, applied: Zxid) -> Option<Members> {
        let n = self.pending.iter().take_while(|p| p.0 <= applied).count();
        if n == 0 {
            return None;
        }
        let (zxid, members, _) = self.pending.drain(..n).next_back().expect("n > 0");
        self.since = zxid;
        self.current = members.clone();
        Some(members)
    }

    /// Replaces the membership in effect (a snapshot installed, or the driver's start):
    /// reconfigs at or below `since` are in it.
    pub(crate) fn reset(&mut self, since: Zxid, members: Members) {
        self.pending.retain(|p| p.0 > since);
        self.since = since;
        self.current = members;
    }

    /// Whether `ids` hold a quorum of the membership in effect (`quorum`) and of every
    /// logged reconfig after it.
    pub(crate) fn is_quorum_all<'a>(
        &self,
        quorum: &Quorum,
        ids: impl IntoIterator<Item = &'a ServerId> + Clone,
    ) -> bool {
        quorum.is_quorum(ids.clone()) && self.pending.iter().all(|p| p.2.is_quorum(ids.clone()))
    }

    /// Whether `id` votes in the membership in effect or in a logged reconfig.
    pub(crate) fn votes_anywhere(&self, quorum: &Quorum, id: ServerId) -> bool {
        quorum.is_voter(id) || self.pending.iter().any(|p| p.2.is_voter(id))
    }

    /// The largest zxid the acknowledgements commit (Leader.tryToCommit): up to the first
    /// logged reconfig, a quorum of the membership in effect; from each reconfig on, also a
    /// quorum of it (acknowledgements are cumulative, so each quorum system's agreed zxid
    /// bounds what it lets commit).
    pub(crate) fn committed(&self, quorum: &Quorum, acked: &BTreeMap<ServerId, Zxid>) -> Zxid {
        let mut point = quorum.committed(acked);
        for (zxid, _, q) in &self.pending {
            if point < *zxid {
                break;
            }
            let theirs = q.committed(acked);
            if theirs < *zxid {
                // Everything before the reconfig (a bound, not necessarily a logged zxid).
                return Zxid(zxid.0 - 1);
            }
            point = point.min(theirs);
        }
        point
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(pairs: &[(u64, i64)]) -> BTreeMap<ServerId, Zxid> {
        pairs.iter().map(|(id, z)| (*id, Zxid(*z))).collect()
    }

    #[test]
    fn before_a_reconfig_the_old_quorum_commits() {
        let q = Quorum::new([1, 2, 3]);
        let mut m = Membership::new(Zxid::ZERO, Members::new([1, 2, 3], []));
        m.logged(Zxid(10), Members::new([1, 4, 5], []));
        // 1 and 2 acked through 12; the new voters 4 and 5 nothing: only what is before the
        // reconfig commits.
        assert_eq!(
            m.committed(&q, &acked(&[(1, 12), (2, 12), (3, 0)])),
            Zxid(9)
        );
        // Before any reconfig is reached, the old quorum alone decides.
        assert_eq!(m.committed(&q, &acked(&[(1, 8), (2, 7)])), Zxid(7));
    }

    #[test]
    fn a_reconfig_needs_both_quorums() {
        let q = Quorum::new([1, 2, 3]);
        let mut m = Membership::new(Zxid::ZERO, Members::new([1, 2, 3], []));
        m.logged(Zxid(10), Members::new([1, 4, 5], []));
        // Old quorum {1,2} at 12, new quorum {1,4} at 11: 11 commits.
        let a = acked(&[(1, 12), (2, 12), (4, 11)]);
        assert_eq!(m.committed(&q, &a), Zxid(11));
        // Without a quorum of the new voters at the reconfig, the old one stops before it.
        let a = acked(&[(1, 12), (2, 12), (4, 9)]);
        assert_eq!(m.committed(&q, &a), Zxid(9));
        assert!(!m.is_quorum_all(&q, &[1, 2]));
        assert!(m.is_quorum_all(&q, &[1, 2, 4]));
    }

    #[test]
    fn activation_moves_the_membership_in_effect() {
        let mut m = Membership::new(Zxid::ZERO, Members::new([1, 2, 3], []));
        m.logged(Zxid(10), Members::new([1, 2], [3]));
        assert!(m.in_progress());
        assert_eq!(m.activate_through(Zxid(9)), None);
        assert_eq!(
            m.activate_through(Zxid(10)),
            Some(Members::new([1, 2], [3]))
        );
        assert!(!m.in_progress());
        assert_eq!(m.since, Zxid(10));
        m.logged(Zxid(12), Members::new([1], []));
        m.truncated(Zxid(11));
        assert!(!m.in_progress());
    }
}
