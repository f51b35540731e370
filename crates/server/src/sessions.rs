//! Session ids, passwords and expiry belong to the member (crates/member); the shards check
//! passwords and the ensemble driver hands out ids through this module.

pub use zoocore_member::sessions::*;
