//! The replicated state machine of a ZooKeeper 3.9 server: znodes and their stats,
//! ephemerals, sequence numbers, containers and TTL nodes, ACL checks, the watch trigger
//! rules and a state digest. Pure and deterministic: no IO, clock, randomness or threads;
//! time and zxids come in as arguments.
//!
//! Writes go through `Tree::prepare` (ZooKeeper's PrepRequestProcessor: checks in
//! ZooKeeper's order, resolves a `Txn`) and `Tree::apply` (DataTree.processTxn: changes the
//! tree, reports results and watch triggers). Watches live per shard in `WatchTable`.

pub mod acl;
mod cache;
pub mod ephemeral;
mod node;
pub mod path;
pub mod quota;
mod tree;
pub mod txn;
pub mod watch;

pub use acl::{check_acl, digest_auth_ids, digest_of, fixup_acl};
pub use cache::NodeCache;
pub use ephemeral::{ephemeral_type, ttl_owner, EphemeralType, CONTAINER_OWNER, TTL_MAX_MS};
pub use path::validate_path;
pub use tree::snapshot::{NodeState, RestoreError, StoredStat, TreeBuilder};
pub use tree::{NodeRef, PrepContext, Tree};
pub use txn::{is_reconfig_bytes, Applied, Op, OpResult, Trigger, Triggers, Txn, CONFIG_PATH};
pub use watch::{WatchKind, WatchTable, WatcherType};
