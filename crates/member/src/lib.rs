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
//! A standalone server is a member whose quorum is itself: a one-voter ensemble, through
//! the same zab `Replica` and the same leader pipeline (`ensemble.rs`) as any ensemble
//! member, with a full disk's refusals in `room.rs`. Everything else (intake, prep,
//! sessions and their owners, expiry, the reaper, publication, snapshot cadence) is written
//! once, in `member.rs`.

mod cadence;
mod ensemble;
pub mod forward;
mod member;
pub mod msg;
pub mod reconfig;
mod room;
pub mod sessions;

pub use cadence::Jitter;
pub use ensemble::{snap_frame, EnsembleConfig};
pub use member::{
    Counters, Effect, Input, Latency, LeadershipAsk, Member, MemberConfig, Now, RestoreError, Role,
    StopReason, SyncJob, REFUSED_FOR_ROOM,
};
pub use zoocore_zab::{Config as ZabConfig, Durable, Epoch, Frame, Message, Payload};
