//! Quorum math for the voting members of an ensemble: which sets of servers form a quorum,
//! and which zxid a quorum of voters has acknowledged.
//!
//! ZooKeeper's `QuorumMaj`: a quorum is a strict majority of the voters; observers and
//! unknown ids carry no weight. Kept apart from the protocol so that it can be checked
//! against a naive version by property tests (etcd-io/raft:quorum/quick_test.go).

use std::collections::{BTreeMap, BTreeSet};

use smallvec::SmallVec;
use zoocore_proto::Zxid;

use crate::ServerId;

/// The voters of an ensemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    voters: BTreeSet<ServerId>,
}

impl Quorum {
    pub fn new(voters: impl IntoIterator<Item = ServerId>) -> Self {
        let voters: BTreeSet<ServerId> = voters.into_iter().collect();
        assert!(!voters.is_empty(), "an ensemble needs at least one voter");
        Quorum { voters }
    }

    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    pub fn is_voter(&self, id: ServerId) -> bool {
        self.voters.contains(&id)
    }

    /// How many voters make a quorum: a strict majority.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether the distinct voters among `ids` form a quorum.
    pub fn is_quorum<'a>(&self, ids: impl IntoIterator<Item = &'a ServerId>) -> bool {
        let voting: BTreeSet<ServerId> = ids
            .into_iter()
            .copied()
            .filter(|id| self.is_voter(*id))
            .collect();
        voting.len() >= self.majority()
    }

    /// The largest zxid that a quorum of voters has acknowledged (`Zxid::ZERO` if none):
    /// voters missing from `acked` count as having acknowledged nothing.
    pub fn committed(&self, acked: &BTreeMap<ServerId, Zxid>) -> Zxid {
        self.agreed(acked)
    }

    /// The largest value that a quorum of voters has reached (`T::default()` if none), for
    /// any monotonic per-voter value: acknowledged zxids, echoed read rounds. Voters missing
    /// from `reached` count as the default.
    pub fn agreed<T: Ord + Copy + Default>(&self, reached: &BTreeMap<ServerId, T>) -> T {
        // Asked on every acknowledgement a leader receives: ensembles of up to 9 voters
        // sort on the stack.
        let mut values: SmallVec<[T; 9]> = self
            .voters
            .iter()
            .map(|id| reached.get(id).copied().unwrap_or_default())
            .collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[self.majority() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive version: the largest acknowledged value that at least a majority of voters
    /// reached, found by trying every candidate.
    fn committed_naive(voters: &BTreeSet<u64>, acked: &BTreeMap<u64, Zxid>) -> Zxid {
        let mut best = Zxid::ZERO;
        for candidate in acked.values().copied() {
            let reached = voters
                .iter()
                .filter(|v| acked.get(v).is_some_and(|z| *z >= candidate))
                .count();
            if reached * 2 > voters.len() && candidate > best {
                best = candidate;
            }
        }
        best
    }

    fn is_quorum_naive(voters: &BTreeSet<u64>, ids: &[u64]) -> bool {
        let distinct: BTreeSet<u64> = ids.iter().copied().filter(|i| voters.contains(i)).collect();
        distinct.len() * 2 > voters.len()
    }

    proptest! {
        #[test]
        fn committed_matches_naive(
            voters in proptest::collection::btree_set(1u64..10, 1..8),
            acked in proptest::collection::btree_map(1u64..12, 0i64..6, 0..12),
        ) {
            let acked: BTreeMap<u64, Zxid> = acked.into_iter().map(|(k, v)| (k, Zxid(v))).collect();
            let q = Quorum::new(voters.iter().copied());
            prop_assert_eq!(q.committed(&acked), committed_naive(&voters, &acked));
        }

        #[test]
        fn is_quorum_matches_naive(
            voters in proptest::collection::btree_set(1u64..10, 1..8),
            ids in proptest::collection::vec(0u64..12, 0..12),
        ) {
            let q = Quorum::new(voters.iter().copied());
            prop_assert_eq!(q.is_quorum(&ids), is_quorum_naive(&voters, &ids));
        }
    }

    #[test]
    fn three_voters_need_two() {
        let q = Quorum::new([1, 2, 3]);
        assert!(!q.is_quorum(&[1, 4, 5]));
        assert!(q.is_quorum(&[1, 3]));
        assert!(q.is_quorum(&[1, 1, 3]));
        assert!(!q.is_quorum(&[2, 2]));
    }
}
