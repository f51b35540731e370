//! The client protocol's records (zookeeper.jute, module `org.apache.zookeeper.proto`), and
//! [`Request`] / [`Response`]: a whole request body decoded by its opcode.
//!
//! Field order and types follow zookeeper.jute exactly; a record's Rust field names are the
//! jute names in snake case. Buffers are owned so a decoded request can move to another
//! core. A znode's data is an `Option` wherever it travels (create, setData, getData and
//! their multi forms): ZooKeeper keeps a null buffer (length -1) as null, stores it so and
//! answers getData with -1, so null and empty are different values here too. The data a
//! request writes (create, createTTL, setData) decodes into a shared `Bytes`, the form
//! the core's txn keeps and logs, so the core takes it without copying the bytes again.

use bytes::Bytes;

use crate::codes::{ErrorCode, OpCode};
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::types::{Acl, Id, Stat};

/// Declares a jute record: a struct and its `Record` impl, fields encoded in order.
macro_rules! record {
    ($(#[$m:meta])* $name:ident { $($field:ident : $ty:tt),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $(pub $field: field_type!($ty)),* }

        impl Record for $name {
            #[allow(unused_variables)]
            fn encode(&self, w: &mut Writer) {
                $(field_encode!($ty, w, &self.$field);)*
            }

            #[allow(unused_variables)]
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self { $($field: field_decode!($ty, r)),* })
            }
        }
    };
}

macro_rules! field_type {
    (int) => { i32 };
    (long) => { i64 };
    (bool) => { bool };
    (buffer) => { Vec<u8> };
    (opt_buffer) => { Option<Vec<u8>> };
    (shared_buffer) => { Option<Bytes> };
    (ustring) => { String };
    (nstring) => { String };
    (strings) => { Vec<String> };
    (acls) => { Vec<Acl> };
    (stat) => { Stat };
    (ids) => { Vec<ClientInfo> };
}

macro_rules! field_encode {
    (int, $w:ident, $v:expr) => {
        $w.write_i32(*$v)
    };
    (long, $w:ident, $v:expr) => {
        $w.write_i64(*$v)
    };
    (bool, $w:ident, $v:expr) => {
        $w.write_bool(*$v)
    };
    (buffer, $w:ident, $v:expr) => {
        $w.write_buffer($v)
    };
    (opt_buffer, $w:ident, $v:expr) => {
        $w.write_opt_buffer($v.as_deref())
    };
    (shared_buffer, $w:ident, $v:expr) => {
        $w.write_opt_buffer($v.as_deref())
    };
    (ustring, $w:ident, $v:expr) => {
        $w.write_str($v)
    };
    (nstring, $w:ident, $v:expr) => {
        $w.write_str($v)
    };
    (strings, $w:ident, $v:expr) => {
        $w.write_strings($v)
    };
    (acls, $w:ident, $v:expr) => {
        $w.write_records($v)
    };
    (stat, $w:ident, $v:expr) => {
        $v.encode($w)
    };
    (ids, $w:ident, $v:expr) => {
        $w.write_records($v)
    };
}

macro_rules! field_decode {
    (int, $r:ident) => {
        $r.read_i32()?
    };
    (long, $r:ident) => {
        $r.read_i64()?
    };
    (bool, $r:ident) => {
        $r.read_bool()?
    };
    (buffer, $r:ident) => {
        $r.read_buffer()?.to_vec()
    };
    (opt_buffer, $r:ident) => {
        $r.read_opt_buffer()?.map(<[u8]>::to_vec)
    };
    (shared_buffer, $r:ident) => {
        $r.read_opt_buffer()?.map(Bytes::copy_from_slice)
    };
    (ustring, $r:ident) => {
        $r.read_string()?
    };
    (nstring, $r:ident) => {
        $r.read_string_or_empty()?
    };
    (strings, $r:ident) => {
        $r.read_strings()?
    };
    (acls, $r:ident) => {
        $r.read_records()?
    };
    (stat, $r:ident) => {
        Stat::decode($r)?
    };
    (ids, $r:ident) => {
        $r.read_records()?
    };
}

record!(
    /// The handshake a client sends first. Clients since 3.3 append a `readOnly` byte; that
    /// byte is not part of this record (see [`ConnectRequest::decode_handshake`]).
    ConnectRequest { protocol_version: int, last_zxid_seen: long, time_out: int, session_id: long, passwd: buffer }
);
record!(
    /// The server's answer to the handshake; `readOnly` follows when the client sent it.
    ConnectResponse { protocol_version: int, time_out: int, session_id: long, passwd: buffer }
);
record!(RequestHeader {
    xid: int,
    r#type: int
});
record!(ReplyHeader {
    xid: int,
    zxid: long,
    err: int
});
record!(WatcherEvent {
    r#type: int,
    state: int,
    path: ustring
});
record!(AuthPacket {
    r#type: int,
    scheme: ustring,
    auth: buffer
});
record!(ClientInfo {
    auth_scheme: ustring,
    user: ustring
});
record!(WhoAmIResponse { client_info: ids });
record!(SetWatches {
    relative_zxid: long,
    data_watches: strings,
    exist_watches: strings,
    child_watches: strings
});
record!(SetWatches2 {
    relative_zxid: long,
    data_watches: strings,
    exist_watches: strings,
    child_watches: strings,
    persistent_watches: strings,
    persistent_recursive_watches: strings,
});
record!(CreateRequest {
    path: ustring,
    data: shared_buffer,
    acl: acls,
    flags: int
});
record!(CreateTtlRequest {
    path: ustring,
    data: shared_buffer,
    acl: acls,
    flags: int,
    ttl: long
});
record!(CreateResponse { path: ustring });
record!(Create2Response {
    path: ustring,
    stat: stat
});
record!(DeleteRequest {
    path: ustring,
    version: int
});
record!(ExistsRequest {
    path: ustring,
    watch: bool
});
record!(StatResponse { stat: stat });
record!(GetDataRequest {
    path: ustring,
    watch: bool
});
record!(GetDataResponse {
    data: opt_buffer,
    stat: stat
});
record!(SetDataRequest {
    path: ustring,
    data: shared_buffer,
    version: int
});
record!(GetAclRequest { path: ustring });
record!(GetAclResponse {
    acl: acls,
    stat: stat
});
record!(SetAclRequest {
    path: ustring,
    acl: acls,
    version: int
});
record!(GetChildrenRequest {
    path: ustring,
    watch: bool
});
record!(GetChildrenResponse { children: strings });
record!(GetChildren2Response {
    children: strings,
    stat: stat
});
record!(SyncRequest { path: ustring });
record!(PathResponse { path: ustring });
record!(CheckVersionRequest {
    path: ustring,
    version: int
});
record!(MultiHeader {
    r#type: int,
    done: bool,
    err: int
});
record!(ErrorResponse { err: int });
record!(CheckWatchesRequest {
    path: ustring,
    r#type: int
});
record!(RemoveWatchesRequest {
    path: ustring,
    r#type: int
});
record!(GetEphemeralsRequest {
    prefix_path: ustring
});
record!(GetEphemeralsResponse {
    ephemerals: strings
});
record!(GetAllChildrenNumberRequest { path: ustring });
record!(GetAllChildrenNumberResponse { total_number: int });
record!(AddWatchRequest {
    path: ustring,
    mode: int
});
// zkCli sends null for the lists it was not given: null reads as empty.
record!(ReconfigRequest {
    joining_servers: nstring,
    leaving_servers: nstring,
    new_members: nstring,
    cur_config_id: long
});
record!(SetSaslRequest { token: buffer });
record!(SetSaslResponse { token: opt_buffer });
record!(PathRequest { path: ustring });

/// Which kind of watch removeWatches / checkWatches name (Watcher.WatcherType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    Children = 1,
    Data = 2,
    Any = 3,
    Persistent = 4,
    PersistentRecursive = 5,
}

impl WatcherType {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            1 => WatcherType::Children,
            2 => WatcherType::Data,
            3 => WatcherType::Any,
            4 => WatcherType::Persistent,
            5 => WatcherType::PersistentRecursive,
            _ => return None,
        })
    }
}

/// addWatch's mode (AddWatchMode).
pub const ADD_WATCH_PERSISTENT: i32 = 0;
pub const ADD_WATCH_PERSISTENT_RECURSIVE: i32 = 1;

impl ConnectRequest {
    /// Decodes a handshake body and whether it carried the trailing `readOnly` byte
    /// (ClientCnxnSocket sends 45 bytes after the length with it, 44 without, for an empty
    /// password: both forms are answered in kind).
    pub fn decode_handshake(body: &[u8]) -> Result<(Self, Option<bool>), DecodeError> {
        let mut r = Reader::new(body);
        let req = Self::decode(&mut r)?;
        let read_only = if r.is_empty() {
            None
        } else {
            Some(r.read_bool()?)
        };
        r.finish()?;
        Ok((req, read_only))
    }
}

impl ConnectResponse {
    /// Encodes the answer in the form the request used.
    pub fn encode_handshake(&self, read_only: Option<bool>) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        if let Some(ro) = read_only {
            w.write_bool(ro);
        }
        w.into_inner()
    }
}

/// One operation inside a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(OpCode, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    /// multiRead's getChildren and getData carry a watch flag, which ZooKeeper ignores.
    GetChildren(GetChildrenRequest),
    GetData(GetDataRequest),
}

impl MultiOp {
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(op, _) => *op,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    fn encode_body(&self, w: &mut Writer) {
        match self {
            MultiOp::Create(_, r) => r.encode(w),
            MultiOp::CreateTtl(r) => r.encode(w),
            MultiOp::Delete(r) => r.encode(w),
            MultiOp::SetData(r) => r.encode(w),
            MultiOp::Check(r) => r.encode(w),
            MultiOp::GetChildren(r) => r.encode(w),
            MultiOp::GetData(r) => r.encode(w),
        }
    }
}

/// A multi (or multiRead) request: MultiHeaders each followed by its op, closed by a header
/// with `done` set (MultiOperationRecord).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    fn encode(&self, w: &mut Writer) {
        for op in &self.ops {
            MultiHeader {
                r#type: op.opcode().as_i32(),
                done: false,
                err: -1,
            }
            .encode(w);
            op.encode_body(w);
        }
        MultiHeader {
            r#type: -1,
            done: true,
            err: -1,
        }
        .encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let offset = r.offset();
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(Self { ops });
            }
            let unknown = DecodeError::Unknown {
                what: "multi op",
                value: h.r#type,
                offset,
            };
            let op = match OpCode::from_i32(h.r#type).ok_or(unknown.clone())? {
                op @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer) => {
                    MultiOp::Create(op, CreateRequest::decode(r)?)
                }
                OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::decode(r)?),
                OpCode::Delete => MultiOp::Delete(DeleteRequest::decode(r)?),
                OpCode::SetData => MultiOp::SetData(SetDataRequest::decode(r)?),
                OpCode::Check => MultiOp::Check(CheckVersionRequest::decode(r)?),
                OpCode::GetChildren => MultiOp::GetChildren(GetChildrenRequest::decode(r)?),
                OpCode::GetData => MultiOp::GetData(GetDataRequest::decode(r)?),
                _ => return Err(unknown),
            };
            ops.push(op);
        }
    }
}

/// One result inside a multi response (OpResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    /// Null data stays null (`GetDataResult` writes jute's -1).
    GetData(Option<Vec<u8>>, Stat),
    Error(ErrorCode),
}

/// A multi response: each result behind a MultiHeader carrying its type and error, closed by
/// a `done` header (MultiResponse.serialize).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl Record for MultiResponse {
    fn encode(&self, w: &mut Writer) {
        for result in &self.results {
            let (op, err) = match result {
                MultiResult::Create(_) => (OpCode::Create, 0),
                MultiResult::Create2(..) => (OpCode::Create2, 0),
                MultiResult::Delete => (OpCode::Delete, 0),
                MultiResult::SetData(_) => (OpCode::SetData, 0),
                MultiResult::Check => (OpCode::Check, 0),
                MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
                MultiResult::GetData(..) => (OpCode::GetData, 0),
                MultiResult::Error(code) => (OpCode::Error, code.0),
            };
            MultiHeader {
                r#type: op.as_i32(),
                done: false,
                err,
            }
            .encode(w);
            match result {
                MultiResult::Create(path) => w.write_str(path),
                MultiResult::Create2(path, stat) => {
                    w.write_str(path);
                    stat.encode(w);
                }
                MultiResult::SetData(stat) => stat.encode(w),
                MultiResult::GetChildren(children) => w.write_strings(children),
                MultiResult::GetData(data, stat) => {
                    w.write_opt_buffer(data.as_deref());
                    stat.encode(w);
                }
                MultiResult::Error(code) => w.write_i32(code.0),
                MultiResult::Delete | MultiResult::Check => {}
            }
        }
        MultiHeader {
            r#type: -1,
            done: true,
            err: -1,
        }
        .encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let offset = r.offset();
            let h = MultiHeader::decode(r)?;
            if h.done {
                return Ok(Self { results });
            }
            let unknown = DecodeError::Unknown {
                what: "multi result",
                value: h.r#type,
                offset,
            };
            let result = match OpCode::from_i32(h.r#type).ok_or(unknown.clone())? {
                OpCode::Create => MultiResult::Create(r.read_string()?),
                OpCode::Create2 => MultiResult::Create2(r.read_string()?, Stat::decode(r)?),
                OpCode::Delete => MultiResult::Delete,
                OpCode::SetData => MultiResult::SetData(Stat::decode(r)?),
                OpCode::Check => MultiResult::Check,
                OpCode::GetChildren => MultiResult::GetChildren(r.read_strings()?),
                OpCode::GetData => {
                    MultiResult::GetData(r.read_opt_buffer()?.map(<[u8]>::to_vec), Stat::decode(r)?)
                }
                OpCode::Error => MultiResult::Error(ErrorCode(r.read_i32()?)),
                _ => return Err(unknown),
            };
            results.push(result);
        }
    }
}

/// A request body, decoded according to the opcode of its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(OpCode, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    DeleteContainer(PathRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildrenRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    GetEphemerals(GetEphemeralsRequest),
    Check(CheckVersionRequest),
    Multi(MultiRequest),
    MultiRead(MultiRequest),
    Sync(SyncRequest),
    Ping,
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    AddWatch(AddWatchRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    WhoAmI,
    CloseSession,
    Reconfig(ReconfigRequest),
    Sasl(SetSaslRequest),
}

impl Request {
    /// Decodes the body that follows a [`RequestHeader`] of type `op`. The whole body must be
    /// consumed, except for closeSession whose body clients may leave empty or fill.
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(body);
        let req = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                Request::Create(op, CreateRequest::decode(&mut r)?)
            }
            OpCode::CreateTtl => Request::CreateTtl(CreateTtlRequest::decode(&mut r)?),
            OpCode::Delete => Request::Delete(DeleteRequest::decode(&mut r)?),
            OpCode::DeleteContainer => Request::DeleteContainer(PathRequest::decode(&mut r)?),
            OpCode::Exists => Request::Exists(ExistsRequest::decode(&mut r)?),
            OpCode::GetData => Request::GetData(GetDataRequest::decode(&mut r)?),
            OpCode::SetData => Request::SetData(SetDataRequest::decode(&mut r)?),
            OpCode::GetAcl => Request::GetAcl(GetAclRequest::decode(&mut r)?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest::decode(&mut r)?),
            OpCode::GetChildren => Request::GetChildren(GetChildrenRequest::decode(&mut r)?),
            OpCode::GetChildren2 => Request::GetChildren2(GetChildrenRequest::decode(&mut r)?),
            OpCode::GetAllChildrenNumber => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest::decode(&mut r)?)
            }
            OpCode::GetEphemerals => Request::GetEphemerals(GetEphemeralsRequest::decode(&mut r)?),
            OpCode::Check => Request::Check(CheckVersionRequest::decode(&mut r)?),
            OpCode::Multi => Request::Multi(MultiRequest::decode(&mut r)?),
            OpCode::MultiRead => Request::MultiRead(MultiRequest::decode(&mut r)?),
            OpCode::Sync => Request::Sync(SyncRequest::decode(&mut r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Auth => Request::Auth(AuthPacket::decode(&mut r)?),
            OpCode::SetWatches => Request::SetWatches(SetWatches::decode(&mut r)?),
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches2::decode(&mut r)?),
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest::decode(&mut r)?),
            OpCode::CheckWatches => Request::CheckWatches(CheckWatchesRequest::decode(&mut r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest::decode(&mut r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => return Ok(Request::CloseSession),
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest::decode(&mut r)?),
            OpCode::Sasl => Request::Sasl(SetSaslRequest::decode(&mut r)?),
            OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::Unknown {
                    what: "request opcode",
                    value: op.as_i32(),
                    offset: 0,
                })
            }
        };
        r.finish()?;
        Ok(req)
    }

    /// The path the request names, if any (for logs, cons and watches).
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(_, r) => &r.path,
            Request::CreateTtl(r) => &r.path,
            Request::Delete(r) => &r.path,
            Request::DeleteContainer(r) => &r.path,
            Request::Exists(r) => &r.path,
            Request::GetData(r) => &r.path,
            Request::SetData(r) => &r.path,
            Request::GetAcl(r) => &r.path,
            Request::SetAcl(r) => &r.path,
            Request::GetChildren(r) | Request::GetChildren2(r) => &r.path,
            Request::GetAllChildrenNumber(r) => &r.path,
            Request::GetEphemerals(r) => &r.prefix_path,
            Request::Check(r) => &r.path,
            Request::Sync(r) => &r.path,
            Request::AddWatch(r) => &r.path,
            Request::CheckWatches(r) => &r.path,
            Request::RemoveWatches(r) => &r.path,
            _ => return None,
        })
    }
}

/// A reply body, encoded after its [`ReplyHeader`]. Error replies have no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    Stat(StatResponse),
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    GetEphemerals(GetEphemeralsResponse),
    Multi(MultiResponse),
    Path(PathResponse),
    WhoAmI(WhoAmIResponse),
    Sasl(SetSaslResponse),
    /// An int error code as the whole body: ZooKeeper answers addWatch with
    /// `ErrorResponse(0)`, and its Java client reads that int (without it the client fails to
    /// decode the reply and drops the connection).
    Error(ErrorResponse),
}

impl Response {
    /// Decodes the body of a successful reply to a request of type `op` (an error reply has
    /// no body). `op` is the request's opcode: replies do not name their type.
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Response, DecodeError> {
        let mut r = Reader::new(body);
        let resp = match op {
            OpCode::Create => Response::Create(CreateResponse::decode(&mut r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Create2Response::decode(&mut r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
                Response::Stat(StatResponse::decode(&mut r)?)
            }
            OpCode::GetData => Response::GetData(GetDataResponse::decode(&mut r)?),
            OpCode::GetAcl => Response::GetAcl(GetAclResponse::decode(&mut r)?),
            OpCode::GetChildren => Response::GetChildren(GetChildrenResponse::decode(&mut r)?),
            OpCode::GetChildren2 => Response::GetChildren2(GetChildren2Response::decode(&mut r)?),
            OpCode::GetAllChildrenNumber => {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse::decode(&mut r)?)
            }
            OpCode::GetEphemerals => {
                Response::GetEphemerals(GetEphemeralsResponse::decode(&mut r)?)
            }
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResponse::decode(&mut r)?),
            OpCode::Sync => Response::Path(PathResponse::decode(&mut r)?),
            OpCode::WhoAmI => Response::WhoAmI(WhoAmIResponse::decode(&mut r)?),
            OpCode::Sasl => Response::Sasl(SetSaslResponse::decode(&mut r)?),
            OpCode::AddWatch => Response::Error(ErrorResponse::decode(&mut r)?),
            _ => Response::Empty,
        };
        r.finish()?;
        Ok(resp)
    }

    pub fn encode(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.encode(w),
            Response::Create2(r) => r.encode(w),
            Response::Stat(r) => r.encode(w),
            Response::GetData(r) => r.encode(w),
            Response::GetAcl(r) => r.encode(w),
            Response::GetChildren(r) => r.encode(w),
            Response::GetChildren2(r) => r.encode(w),
            Response::GetAllChildrenNumber(r) => r.encode(w),
            Response::GetEphemerals(r) => r.encode(w),
            Response::Multi(r) => r.encode(w),
            Response::Path(r) => r.encode(w),
            Response::WhoAmI(r) => r.encode(w),
            Response::Sasl(r) => r.encode(w),
            Response::Error(r) => r.encode(w),
        }
    }
}

/// Identity helper: the `Id` a `ClientInfo` names.
impl From<&Id> for ClientInfo {
    fn from(id: &Id) -> Self {
        ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: id.id.clone(),
        }
    }
}
