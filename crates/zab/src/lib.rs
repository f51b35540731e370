//! ZAB (ZooKeeper Atomic Broadcast) as a sans-IO state machine, in the raft-rs
//! Ready/advance style: the driver feeds [`Input`]s (peer messages, client proposals on the
//! leader, ticks, IO completions) into [`Replica::step`] and executes the [`Action`]s that
//! [`Replica::ready`] hands back, in order.
//!
//! The crate owns fast leader election (phase 0 of the Zab paper), discovery (phase 1),
//! synchronisation (phase 2: DIFF, TRUNC, SNAP) and broadcast (phase 3), for followers and
//! observers. It never does IO, reads a clock, draws randomness or spawns threads: time is
//! ticks, randomness a seed, and every write is an action whose completion comes back as an
//! input. A reply that depends on a write (an ACK, ACKEPOCH, the NEWLEADER ack) is only
//! produced after that write's completion. docs/ZAB.md describes the protocol as built.

pub mod membership;
pub mod msg;
pub mod quorum;
mod replica;

use std::fmt;

pub use membership::{no_reconfig, Members, ReconfigOf};
pub use msg::{Frame, FrameError, Message, NotifiedConfig, Payload, PeerState, Vote};
pub use quorum::Quorum;
pub use replica::{Action, Config, Durable, Input, Replica, RoleKind, StepError};

/// A server's `myid`.
pub type ServerId = u64;

/// A ZAB epoch: the high 32 bits of a zxid; one leader per epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u32);

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
