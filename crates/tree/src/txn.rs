//! Requests in (`Op`), resolved transactions (`Txn`) and their outcomes (`Applied`).
//!
//! A `Txn` is what `Tree::prepare` decides and what the log stores: every choice is already
//! made (sequential name, expanded ACL, new version, parent cversion, ephemeral owner,
//! ephemerals a closing session loses), so `Tree::apply` needs no context but the zxid and
//! the time. A failed multi is a `Txn::Multi` of `Txn::Error`s, the shape ZooKeeper's
//! `DataTree.processTxn` reduces a failed `MultiTxn` to.
//!
//! Encoding (jute, big-endian): an `i32` type (ZooKeeper's opcode of the matching txn,
//! -1 for error) followed by the fields. Multi nests one level only, as ZooKeeper's
//! `MultiTxn` does; decode rejects deeper nesting so hostile bytes cannot recurse.
//!
//! A znode's data is an `Option` from the request to the log: `None` is ZooKeeper's null
//! (`DataNode.data == null`), written as jute's -1 length as ZooKeeper's `CreateTxn` and
//! `SetDataTxn` write it. Logs written before null was kept never hold a -1 data length
//! (their writer had no null to write), so they decode unchanged (docs/LOG.md).

use bytes::Bytes;

use smallvec::SmallVec;
use zoocore_proto::{
    Acl, CreateMode, DecodeError, ErrorCode, EventType, Reader, Record, SessionId, Share, Stat,
    Writer,
};

/// A write request, as the server decodes it from a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `ttl_ms` is -1 unless `mode` is a TTL mode (ZooKeeper rejects ttl >= 0 otherwise).
    Create {
        path: String,
        /// `None`: null data (a -1 buffer on the wire), kept as null.
        data: Option<Bytes>,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl_ms: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Op>),
    CreateSession {
        session: SessionId,
        timeout_ms: i32,
    },
    CloseSession {
        session: SessionId,
    },
    DeleteContainer {
        path: String,
    },
}

/// A resolved transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Txn {
    /// `ephemeral_owner` is the session, `CONTAINER_OWNER`, a TTL owner, or 0.
    Create {
        path: String,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    /// `version` is the node's new version.
    SetData {
        path: String,
        data: Option<Bytes>,
        version: i32,
    },
    /// `version` is the node's new aversion.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    /// `version` is the checked version plus one (ZooKeeper's CheckVersionTxn); apply ignores it.
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Txn>),
    CreateSession {
        session: SessionId,
        timeout_ms: i32,
    },
    /// `paths` are the session's ephemerals at prep time, in order of deletion.
    CloseSession {
        session: SessionId,
        paths: Vec<String>,
    },
    Error(ErrorCode),
    /// A dynamic reconfiguration: `/zookeeper/config` gets `data` (the new configuration's
    /// text, whose `version=` is this txn's zxid) and the node's new `version`. ZooKeeper
    /// logs it as a `SetDataTxn` of `/zookeeper/config` under the reconfig opcode (16), and
    /// so does this encoding; the replica reads the membership it makes from it.
    Reconfig {
        data: Bytes,
        version: i32,
    },
}

/// The node a reconfig writes.
pub const CONFIG_PATH: &str = "/zookeeper/config";

impl Txn {
    /// The error of a failed request or failed multi, if any.
    pub fn error(&self) -> Option<ErrorCode> {
        match self {
            Txn::Error(code) => Some(*code),
            Txn::Multi(txns) => txns.iter().find_map(|t| match t {
                Txn::Error(c) if !c.is_ok() && *c != ErrorCode::RUNTIME_INCONSISTENCY => Some(*c),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// The outcome of one transaction, which the server turns into a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetData {
        stat: Stat,
    },
    SetAcl {
        stat: Stat,
    },
    Checked,
    Multi(Vec<OpResult>),
    SessionCreated,
    SessionClosed,
    /// A reconfig: the new configuration and the stat of `/zookeeper/config` (the client's
    /// answer is a GetDataResponse of them).
    Reconfigured {
        data: Bytes,
        stat: Stat,
    },
    Error(ErrorCode),
}

impl OpResult {
    /// The error code the response header carries (a multi carries its first error).
    pub fn code(&self) -> ErrorCode {
        match self {
            OpResult::Error(c) => *c,
            OpResult::Multi(rs) => rs
                .iter()
                .map(OpResult::code)
                .find(|c| !c.is_ok())
                .unwrap_or(ErrorCode::OK),
            _ => ErrorCode::OK,
        }
    }
}

/// A watch trigger produced by apply, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub path: String,
    pub event: EventType,
}

/// The triggers of one txn, in order. A create or a delete makes two (the node and its
/// parent's children), a setData one: those stay inline, so applying a txn on every member
/// allocates no list for them.
pub type Triggers = SmallVec<[Trigger; 2]>;

/// What `Tree::apply` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub result: OpResult,
    pub triggers: Triggers,
    /// The txn's zxid was not after the tree's last zxid: nothing changed.
    pub stale: bool,
}

const TYPE_CREATE: i32 = zoocore_proto::OpCode::Create as i32;
const TYPE_DELETE: i32 = zoocore_proto::OpCode::Delete as i32;
const TYPE_SET_DATA: i32 = zoocore_proto::OpCode::SetData as i32;
const TYPE_SET_ACL: i32 = zoocore_proto::OpCode::SetAcl as i32;
const TYPE_CHECK: i32 = zoocore_proto::OpCode::Check as i32;
const TYPE_MULTI: i32 = zoocore_proto::OpCode::Multi as i32;
const TYPE_CREATE_SESSION: i32 = zoocore_proto::OpCode::CreateSession as i32;
const TYPE_CLOSE_SESSION: i32 = zoocore_proto::OpCode::CloseSession as i32;
const TYPE_ERROR: i32 = zoocore_proto::OpCode::Error as i32;
const TYPE_RECONFIG: i32 = zoocore_proto::OpCode::Reconfig as i32;

/// Whether encoded txn bytes are a reconfig (their type), without decoding the rest: the
/// replica asks this of every proposal.
pub fn is_reconfig_bytes(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == TYPE_RECONFIG
}

impl Txn {
    fn encode_into(&self, w: &mut Writer) {
        match self {
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => {
                w.write_i32(TYPE_CREATE);
                w.write_str(path);
                w.write_opt_buffer(data.as_deref());
                w.write_records(acl);
                w.write_i64(*ephemeral_owner);
                w.write_i32(*parent_cversion);
            }
            Txn::Delete { path } => {
                w.write_i32(TYPE_DELETE);
                w.write_str(path);
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                w.write_i32(TYPE_SET_DATA);
                w.write_str(path);
                w.write_opt_buffer(data.as_deref());
                w.write_i32(*version);
            }
            Txn::SetAcl { path, acl, version } => {
                w.write_i32(TYPE_SET_ACL);
                w.write_str(path);
                w.write_records(acl);
                w.write_i32(*version);
            }
            Txn::Check { path, version } => {
                w.write_i32(TYPE_CHECK);
                w.write_str(path);
                w.write_i32(*version);
            }
            Txn::Multi(txns) => {
                w.write_i32(TYPE_MULTI);
                w.write_vec(txns, |w, t| t.encode_into(w));
            }
            Txn::CreateSession {
                session,
                timeout_ms,
            } => {
                w.write_i32(TYPE_CREATE_SESSION);
                w.write_i64(session.0);
                w.write_i32(*timeout_ms);
            }
            Txn::CloseSession { session, paths } => {
                w.write_i32(TYPE_CLOSE_SESSION);
                w.write_i64(session.0);
                w.write_strings(paths);
            }
            Txn::Error(code) => {
                w.write_i32(TYPE_ERROR);
                w.write_i32(code.0);
            }
            Txn::Reconfig { data, version } => {
                w.write_i32(TYPE_RECONFIG);
                w.write_str(CONFIG_PATH);
                w.write_opt_buffer(Some(data));
                w.write_i32(*version);
            }
        }
    }

    /// A txn decoded from `bytes` with its data sharing them, not copied: a follower's txn
    /// is a slice of the proposal its link read.
    pub fn from_shared(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let txn = Txn::decode_from(&mut r, false, &|data| bytes.slice_ref(data))?;
        r.finish()?;
        Ok(txn)
    }

    /// `share` makes a znode's data of bytes inside the record: a copy, or a slice.
    fn decode_from(
        r: &mut Reader<'_>,
        nested: bool,
        share: Share<'_>,
    ) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let kind = r.read_i32()?;
        Ok(match kind {
            TYPE_CREATE => Txn::Create {
                path: r.read_string()?,
                data: r.read_opt_buffer()?.map(share),
                acl: r.read_records()?,
                ephemeral_owner: r.read_i64()?,
                parent_cversion: r.read_i32()?,
            },
            TYPE_DELETE => Txn::Delete {
                path: r.read_string()?,
            },
            TYPE_SET_DATA => Txn::SetData {
                path: r.read_string()?,
                data: r.read_opt_buffer()?.map(share),
                version: r.read_i32()?,
            },
            TYPE_SET_ACL => Txn::SetAcl {
                path: r.read_string()?,
                acl: r.read_records()?,
                version: r.read_i32()?,
            },
            TYPE_CHECK => Txn::Check {
                path: r.read_string()?,
                version: r.read_i32()?,
            },
            TYPE_MULTI if !nested => Txn::Multi(r.read_vec(|r| Txn::decode_from(r, true, share))?),
            TYPE_CREATE_SESSION => Txn::CreateSession {
                session: SessionId(r.read_i64()?),
                timeout_ms: r.read_i32()?,
            },
            TYPE_CLOSE_SESSION => Txn::CloseSession {
                session: SessionId(r.read_i64()?),
                paths: r.read_strings()?,
            },
            TYPE_ERROR => Txn::Error(ErrorCode(r.read_i32()?)),
            TYPE_RECONFIG if !nested => {
                let path_at = r.offset();
                let path = r.read_string()?;
                if path != CONFIG_PATH {
                    return Err(DecodeError::Unknown {
                        what: "reconfig txn path (not /zookeeper/config)",
                        value: path.len() as i32,
                        offset: path_at,
                    });
                }
                Txn::Reconfig {
                    data: share(r.read_opt_buffer()?.unwrap_or_default()),
                    version: r.read_i32()?,
                }
            }
            value => {
                return Err(DecodeError::Unknown {
                    what: "txn type",
                    value,
                    offset,
                })
            }
        })
    }
}

impl Record for Txn {
    fn encode(&self, w: &mut Writer) {
        self.encode_into(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Txn::decode_from(r, false, &Bytes::copy_from_slice)
    }
}
