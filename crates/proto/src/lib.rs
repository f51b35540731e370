//! The ZooKeeper client wire format, as Apache ZooKeeper 3.9 speaks it
//! (zookeeper-jute/src/main/resources/zookeeper.jute).
//!
//! Pure encode and decode over byte slices: no IO, no clock, no allocation beyond the
//! decoded values. Every integer is big-endian (jute's `DataOutput`); a buffer or string is an
//! `i32` length (-1 for null) followed by its bytes. Decoding never panics on input: every
//! malformed record is a [`DecodeError`].

pub mod codes;
pub mod jute;
pub mod records;
pub mod types;

/// The shared buffer a znode's written data travels in, from the request to the txn.
pub use bytes::Bytes;
/// How a decoder makes a buffer field of bytes inside what it decodes: a copy
/// (`Bytes::copy_from_slice`), or a slice of the buffer they lie in (`Bytes::slice_ref`).
pub type Share<'a> = &'a dyn Fn(&[u8]) -> Bytes;
pub use codes::{ErrorCode, EventType, KeeperState, OpCode};
pub use jute::{DecodeError, Reader, Record, Writer};
pub use types::{Acl, CreateMode, Id, Perms, SessionId, Stat, Xid, Zxid};
