//! What one seed draws (the shape of the ensemble and the kind of network), what a finished
//! run reports, and a checker's verdict with the command that replays it.
//!
//! Shapes cycle with the seed so that any four consecutive seeds cover them all: a
//! standalone server, 3 voters, 3 voters and an observer, 5 voters and an observer. The
//! network of an ensemble is TCP-like (links deliver in order, without duplicates, until
//! they break) or, for one run in three of each shape, datagram-like: ZAB frames are also
//! lost, duplicated and reordered one by one, which no TCP link does but which the replica
//! is written to survive (proposals carry `prev`, acknowledgements are cumulative).

use crate::rng::Rng;

/// How peer links misbehave besides breaking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// As TCP: in order, no duplicates; a fault breaks the connection (what was in flight is
    /// lost) and a new one starts later.
    Tcp,
    /// As TCP, and besides ZAB frames are lost, duplicated and delayed past later ones.
    /// Member-level FORWARD frames (forwarded requests, touches, sync answers) stay on the
    /// ordered path: the member relies on its links' order for them, as on TCP.
    Datagram {
        loss_percent: u64,
        dup_percent: u64,
        reorder_percent: u64,
    },
}

/// What one run simulates, drawn from the seed.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    /// 1 with no observers: a standalone server.
    pub voters: usize,
    pub observers: usize,
    /// Every voter is an observer master (`observerMasterPort`): observers learn from
    /// followers. Drawn for half the runs with observers, both networks included.
    pub observer_masters: bool,
    /// Ticks (of 100 simulated ms) of faults and load before everything heals.
    pub ticks: u64,
    pub network: Network,
    /// An operator reconfigures the ensemble while the faults run (crates/sim/src/reconfig.rs).
    pub reconfig: bool,
}

impl Scenario {
    pub fn from_seed(seed: u64, ticks: u64) -> Scenario {
        let (voters, observers) = match seed % 4 {
            0 => (1, 0),
            1 => (3, 0),
            2 => (3, 1),
            _ => (5, 1),
        };
        // Every third run of each ensemble shape is datagram-like, so that any twelve
        // consecutive seeds cover every shape on both networks.
        let mut rng = Rng::new(seed ^ 0xA5A5_0F0F);
        let network = if voters > 1 && (seed / 4) % 3 == 1 {
            Network::Datagram {
                loss_percent: 1 + rng.below(5),
                dup_percent: 1 + rng.below(3),
                reorder_percent: 1 + rng.below(3),
            }
        } else {
            Network::Tcp
        };
        // Independent of the network mode over any 24 consecutive seeds: (seed / 4) odd.
        let observer_masters = observers > 0 && (seed / 4) % 2 == 1;
        Scenario {
            seed,
            voters,
            observers,
            observer_masters,
            ticks,
            network,
            // Half the runs of each ensemble shape, on both networks, with and without
            // observer masters (the masters are the voters of the membership in effect).
            reconfig: voters > 1 && (seed / 8).is_multiple_of(2),
        }
    }

    pub fn standalone(&self) -> bool {
        self.voters == 1 && self.observers == 0
    }
}

/// What a finished run reports.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub voters: usize,
    pub observers: usize,
    pub observer_masters: bool,
    /// Times an observer started serving with a session that is not with the leader.
    pub observed_through_masters: usize,
    pub datagram: bool,
    /// Persistent writes acknowledged to their client.
    pub acked: usize,
    /// Reads served from a member's view and checked.
    pub reads: usize,
    pub synced_reads: usize,
    pub sessions_closed: usize,
    /// Times a member became leader; epochs seen with a leader.
    pub leaders: usize,
    pub epochs: usize,
    pub crashes: usize,
    /// Crashes that kept part of the unsynced writes (a torn tail, or whole writes).
    pub torn_crashes: usize,
    pub pauses: usize,
    pub link_breaks: usize,
    pub partitions: usize,
    pub frames_lost: usize,
    pub frames_duplicated: usize,
    pub frames_reordered: usize,
    pub snapshots: usize,
    /// Log entries compared with the committed history.
    pub entries_checked: usize,
    /// Reconfigs asked for and committed.
    pub reconfigs_asked: usize,
    pub reconfigs: usize,
    /// NEWLEADERs an observer master sent its observers once it no longer followed (they
    /// waited behind a SNAP being built): no leader's, though the sender did not follow.
    pub newleaders_after_mastering: usize,
}

/// A checker's verdict, with what replays it.
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub ticks: u64,
    pub time_ms: u64,
    pub what: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at t={} ms: {}\nreplay: cargo run -p zoocore-sim -- --seed {} --ticks {}",
            self.seed, self.time_ms, self.what, self.seed, self.ticks
        )
    }
}
