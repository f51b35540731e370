//! Dynamic reconfiguration in the simulator: the configurations the runs start from, the
//! changes an operator asks for while faults run (remove a voter, add it back, turn a voter
//! into an observer and back), and the checker that at most one quorum system decides each
//! zxid.
//!
//! The checker (`Memberships::check_commit`): when a zxid is first published by any member
//! (it is committed), a quorum of the voters of the membership in effect for it (the one
//! made by the last committed reconfig below it) holds it durably, and for a reconfig, a
//! quorum of the voters it makes as well. "Holds durably" is read from each member's log:
//! synced through the zxid, and the entry there (a crashed member counts with what it had
//! synced when it crashed). A leader that counted acknowledgements of the wrong voters, or
//! activated a configuration early, commits without such a quorum.

use std::collections::{BTreeMap, BTreeSet};

use zoocore_member::reconfig::{ClusterConfig, ReconfigArgs};
use zoocore_member::Member;
use zoocore_proto::Zxid;
use zoocore_storage::MemDevice;
use zoocore_zab::Members;

use crate::rng::Rng;

/// The line of server `id` (addresses are never dialled in the simulator).
pub fn spec(id: u64, observer: bool) -> String {
    let role = if observer { "observer" } else { "participant" };
    format!("server.{id}=10.0.0.{id}:2888:3888:{role};2181")
}

/// The configuration a run starts from, as `/zookeeper/config` holds it.
pub fn initial_text(voters: &[u64], observers: &[u64]) -> String {
    let mut text = String::new();
    for id in voters {
        text.push_str(&spec(*id, false));
        text.push('\n');
    }
    for id in observers {
        text.push_str(&spec(*id, true));
        text.push('\n');
    }
    text.push_str("version=0");
    text
}

/// The next change an operator asks for, from the configuration `current` of a run whose
/// servers are `ids`: remove a voter (keeping three), add back a server that is out, or
/// swap a server's role (keeping two voters).
pub fn next_change(rng: &mut Rng, current: &ClusterConfig, ids: &[u64]) -> Option<ReconfigArgs> {
    let members = current.members();
    let out: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !members.contains(*id))
        .collect();
    let voters: Vec<u64> = members.voters.iter().copied().collect();
    let observers: Vec<u64> = members.observers.iter().copied().collect();
    let (joining, leaving) = match rng.below(4) {
        0 if voters.len() > 3 => (String::new(), rng.pick(&voters).to_string()),
        1 if !out.is_empty() => (spec(rng.pick(&out), false), String::new()),
        2 if voters.len() > 2 => (spec(rng.pick(&voters), true), String::new()),
        3 if !observers.is_empty() => (spec(rng.pick(&observers), false), String::new()),
        _ => return None,
    };
    Some(ReconfigArgs {
        joining,
        leaving,
        new_members: String::new(),
        from_version: -1,
        skip_acl: true,
        standalone_enabled: true,
    })
}

/// The committed configurations of a run, and the quorum checker.
#[derive(Debug, Default)]
pub struct Memberships {
    /// By the zxid of the reconfig that made each (`ZERO`: the start's).
    committed: BTreeMap<Zxid, Members>,
    /// The largest zxid seen published.
    published: Zxid,
    /// What each crashed member had synced when it crashed.
    pub synced_at_crash: BTreeMap<u64, Zxid>,
    pub reconfigs: usize,
}

impl Memberships {
    pub fn new(voters: &[u64], observers: &[u64]) -> Memberships {
        let mut committed = BTreeMap::new();
        committed.insert(
            Zxid::ZERO,
            Members::new(voters.iter().copied(), observers.iter().copied()),
        );
        Memberships {
            committed,
            ..Memberships::default()
        }
    }

    /// The membership in effect for `zxid`.
    pub fn in_effect(&self, zxid: Zxid) -> &Members {
        self.committed
            .range(..zxid)
            .next_back()
            .map(|(_, m)| m)
            .expect("the start's membership")
    }

    /// `zxid` was published by a member: if it is the first publication, a quorum of the
    /// membership in effect (and of `made`, the one a reconfig makes) holds it.
    pub fn check_commit(
        &mut self,
        zxid: Zxid,
        made: Option<Members>,
        members: &BTreeMap<u64, Option<&Member<MemDevice>>>,
    ) -> Result<(), String> {
        if zxid <= self.published {
            return Ok(());
        }
        self.published = zxid;
        let holders: BTreeSet<u64> = members
            .iter()
            .filter(|(id, m)| match m {
                Some(m) => holds(m, zxid),
                None => self.synced_at_crash.get(id).is_some_and(|s| *s >= zxid),
            })
            .map(|(id, _)| *id)
            .collect();
        let mut systems = vec![self.in_effect(zxid).clone()];
        systems.extend(made.clone());
        for m in &systems {
            let have = m.voters.intersection(&holders).count();
            if have * 2 <= m.voters.len() {
                return Err(format!(
                    "{zxid} committed, but only {holders:?} hold it: no quorum of the voters {:?}",
                    m.voters
                ));
            }
        }
        if let Some(m) = made {
            self.committed.insert(zxid, m);
            self.reconfigs += 1;
        }
        Ok(())
    }
}

/// Whether `m`'s log holds `zxid` durably.
fn holds(m: &Member<MemDevice>, zxid: Zxid) -> bool {
    let log = m.log();
    if log.synced_zxid() < zxid || log.last_zxid() < zxid {
        return false;
    }
    if log.last_zxid().epoch() == zxid.epoch() {
        // Within an epoch a log holds a contiguous run of its leader's proposals.
        return true;
    }
    log.entries_after(Zxid(zxid.0 - 1))
        .ok()
        .and_then(|e| e.first().map(|e| e.zxid))
        == Some(zxid)
}

/// The membership a committed reconfig's text makes.
pub fn members_of(text: &[u8]) -> Option<Members> {
    ClusterConfig::parse(&String::from_utf8_lossy(text))
        .ok()
        .map(|c| c.members())
}
