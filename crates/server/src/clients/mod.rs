//! Clients: the session executors (shards) and their connections. A connection task owns its
//! socket (plain or TLS), frames requests, takes the shard's budget for each and writes the
//! answers the shard queues; a shard owns its sessions' FIFOs, watches and its view of the
//! tree. Nothing here decides a write: writes go to the core (crates/member) and come back
//! in commit batches.

pub mod budget;
pub mod conn;
pub mod limiter;
pub mod outbox;
pub mod shard;
pub mod tls;
pub mod views;
pub mod wire;
