//! One zoocore server's write pipeline as a sans-IO state machine (docs/ARCHITECTURE.md).
//!
//! A [`Member`] owns what a server decides about writes: prep against the working tree,
//! the log append, apply once, sessions and the connection that owns each, session expiry,
//! the container/TTL reaper, snapshot and purge cadence, the spare-segment hand-off, the
//! commit -> [`msg::CommitBatch`] publication, its counters and a full disk's refusals. It
//! reads no clock, spawns nothing and draws randomness only from a seed passed in: the
//! driver feeds it [`Input`]s (shard messages, ticks, IO completions), each with the time
//! ([`Now`]), and carries out the [`Effect`]s it returns (fdatasync, publish, send,
//! snapshot, prepare a segment, stop). The log's appends are made here, through the
//! synchronous `Device` trait of crates/storage; the fdatasync that makes them durable is
//! the driver's, so that on the server it goes through io_uring and in tests through the
//! fault-injecting `MemDevice`.
//!
//! Today this is the standalone pipeline (a member whose quorum is itself); the ensemble
//! roles still run in the server's ensemble driver (docs/ZAB.md).

mod cadence;
mod member;
pub mod msg;
pub mod sessions;

pub use cadence::Jitter;
pub use member::{
    Counters, Effect, Input, Member, MemberConfig, Now, StopReason, SyncJob, REFUSED_FOR_ROOM,
};
