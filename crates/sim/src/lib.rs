//! A deterministic simulator of whole zoocore servers (TigerBeetle's VOPR): the real
//! `zoocore_member::Member` (prep, the payload codec, sessions, expiry, the reaper, snapshots
//! and the zab replica) on the real `storage::Log` over the fault-injecting `MemDevice`,
//! standalone or in ensembles, with clients, a network and disks drawn from one seed on one
//! thread. A failure names its seed and replays from it exactly.
//!
//! The crate is split by job: `scenario` (what a seed draws, what a run reports),
//! `net` (peer links, partitions, the datagram mode), `disk` (a member's `MemDevice`, its
//! fdatasyncs in flight, crashes with torn tails, recovery), `clients` (the workload),
//! `checkers` (what must hold), `sim` (the run loop that carries out members' effects).

mod checkers;
mod clients;
mod disk;
mod net;
mod reconfig;
mod rng;
mod scenario;
mod sim;

pub use rng::Rng;
pub use scenario::{Failure, Network, Report, Scenario};
pub use sim::{run_seed, Sim};
