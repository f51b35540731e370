//! The typed messages between the core executor and the shards. They belong to the member
//! (crates/member), which consumes and produces them; this module keeps the server's shard
//! and connection code reading them from where it always did.

pub use zoocore_member::msg::*;
