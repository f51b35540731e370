//! What members of an ensemble tell each other beside ZAB itself, carried in
//! `zoocore_zab::Message::Forward` frames (which the replica ignores), and the layout of the
//! transaction payloads the replica replicates.
//!
//! A learner forwards its clients' writes to the leader (ZooKeeper's `Leader.REQUEST`), with
//! the route back to the client (origin server, shard, connection, xid). The leader preps
//! them and puts the route into the proposal's payload, so when the transaction commits on
//! the origin server, that server answers its client; no table of outstanding forwards is
//! needed anywhere. Learners also report the sessions that showed life (`Touch`, ZooKeeper's
//! session data in PING replies), and forward `sync`: the leader answers `SyncDone` with the
//! zxid its client must reach once everything before the sync has committed.
//!
//! An observer that learns from an observer master (a follower, docs/ZAB.md "Observer
//! masters") sends these to that follower, which relays them to its leader wrapped in
//! `Relay { member }` (the observer they come from); the leader takes them as the observer's
//! and sends its answers to the observer back the same way, so the observer's traffic
//! costs the leader one link, whatever the number of observers (ZooKeeper's
//! `ObserverMaster` forwards REQUEST and REVALIDATE likewise).
//!
//! All integers are big-endian jute encodings; a znode's null data is jute's -1 buffer. Decoding never panics: bad input is a
//! `DecodeError` and closes the peer link that sent it.

use zoocore_proto::{
    Acl, Bytes, CreateMode, DecodeError, Id, Reader, Record, SessionId, Share, Writer, Zxid,
};
use zoocore_tree::{Op, Txn};
use zoocore_zab::Payload;

use crate::msg::{CoreOp, Origin};

/// Where an answer goes: the member that took the request and the client on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub server: u64,
    pub origin: Origin,
    /// The request's `CoreRequest::barrier`: its commit is published after a cut.
    pub barrier: bool,
}

/// A driver-level message between members.
#[derive(Debug)]
pub enum Forward {
    /// Learner → leader: a client's write (or createSession), to prep and propose.
    Request {
        route: Route,
        session: SessionId,
        auth: Vec<Id>,
        op: CoreOp,
    },
    /// Learner → leader: sessions that showed life since the last report.
    Touch { sessions: Vec<SessionId> },
    /// Leader → learner: the client's `sync` is answered once the learner has applied `zxid`.
    SyncDone {
        route: Route,
        path: String,
        zxid: Zxid,
    },
    /// Learner → leader: a client reconnected here with this session (id and password
    /// valid): the learner owns it now, and writes of the session from any other member are
    /// refused with SESSIONMOVED (ZooKeeper's REVALIDATE and `SessionTracker.setOwner`).
    Attach { session: SessionId },
    /// Leader → learner: the log had no room for the client's write (or createSession), so
    /// nothing was proposed. The learner answers THROTTLEDOP (closes a handshake's
    /// connection, `connect`) once it has applied `zxid`, the leader's last proposal before
    /// it, so the client's earlier writes are answered first.
    Refused {
        route: Route,
        zxid: Zxid,
        connect: bool,
    },
    /// Observer master ↔ leader: `msg` is from (to the leader) or for (from the leader)
    /// `member`, an observer the sender serves; never nested.
    Relay { member: u64, msg: Box<Forward> },
}

mod kind {
    pub const REQUEST: u8 = 1;
    pub const TOUCH: u8 = 2;
    pub const SYNC_DONE: u8 = 3;
    pub const ATTACH: u8 = 4;
    pub const REFUSED: u8 = 5;
    pub const RELAY: u8 = 6;
}

mod op_kind {
    pub const CREATE: u8 = 1;
    pub const DELETE: u8 = 2;
    pub const SET_DATA: u8 = 3;
    pub const SET_ACL: u8 = 4;
    pub const CHECK: u8 = 5;
    pub const MULTI: u8 = 6;
    pub const CLOSE_SESSION: u8 = 7;
    pub const DELETE_CONTAINER: u8 = 8;
    pub const NEW_SESSION: u8 = 9;
    pub const SYNC: u8 = 10;
    pub const RECONFIG: u8 = 11;
}

fn write_route(w: &mut Writer, r: &Route) {
    w.write_i64(r.server as i64);
    w.write_i64(r.origin.shard as i64);
    w.write_i64(r.origin.conn as i64);
    w.write_i32(r.origin.xid);
    w.write_bool(r.barrier);
}

fn read_route(r: &mut Reader<'_>) -> Result<Route, DecodeError> {
    let server = r.read_i64()? as u64;
    let shard = r.read_i64()?;
    let offset = r.offset();
    let shard = usize::try_from(shard).map_err(|_| DecodeError::Unknown {
        what: "shard",
        value: shard as i32,
        offset,
    })?;
    Ok(Route {
        server,
        origin: Origin {
            shard,
            conn: r.read_i64()? as u64,
            xid: r.read_i32()?,
        },
        barrier: r.read_bool()?,
    })
}

fn write_op(w: &mut Writer, op: &Op) {
    match op {
        Op::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        } => {
            w.write_u8(op_kind::CREATE);
            w.write_str(path);
            w.write_opt_buffer(data.as_deref());
            w.write_records(acl);
            w.write_i32(mode.flags());
            w.write_i64(*ttl_ms);
        }
        Op::Delete { path, version } => {
            w.write_u8(op_kind::DELETE);
            w.write_str(path);
            w.write_i32(*version);
        }
        Op::SetData {
            path,
            data,
            version,
        } => {
            w.write_u8(op_kind::SET_DATA);
            w.write_str(path);
            w.write_opt_buffer(data.as_deref());
            w.write_i32(*version);
        }
        Op::SetAcl { path, acl, version } => {
            w.write_u8(op_kind::SET_ACL);
            w.write_str(path);
            w.write_records(acl);
            w.write_i32(*version);
        }
        Op::Check { path, version } => {
            w.write_u8(op_kind::CHECK);
            w.write_str(path);
            w.write_i32(*version);
        }
        Op::Multi(ops) => {
            w.write_u8(op_kind::MULTI);
            w.write_vec(ops, write_op);
        }
        Op::CloseSession { session } => {
            w.write_u8(op_kind::CLOSE_SESSION);
            w.write_i64(session.0);
        }
        Op::DeleteContainer { path } => {
            w.write_u8(op_kind::DELETE_CONTAINER);
            w.write_str(path);
        }
        Op::CreateSession {
            session,
            timeout_ms,
        } => {
            // Sessions are numbered by the leader; a forwarded one is `NEW_SESSION`.
            w.write_u8(op_kind::NEW_SESSION);
            w.write_i32(*timeout_ms);
            let _ = session;
        }
    }
}

/// `share` makes a znode's data of bytes inside the message: a copy, or a slice of it.
fn read_op(r: &mut Reader<'_>, depth: u32, share: Share<'_>) -> Result<Op, DecodeError> {
    let offset = r.offset();
    let kind = r.read_u8()?;
    Ok(match kind {
        op_kind::CREATE => {
            let path = r.read_string()?;
            let data = r.read_opt_buffer()?.map(share);
            let acl = r.read_records::<Acl>()?;
            let flags = r.read_i32()?;
            let mode = CreateMode::from_flags(flags).ok_or(DecodeError::Unknown {
                what: "create mode",
                value: flags,
                offset,
            })?;
            Op::Create {
                path,
                data,
                acl,
                mode,
                ttl_ms: r.read_i64()?,
            }
        }
        op_kind::DELETE => Op::Delete {
            path: r.read_string()?,
            version: r.read_i32()?,
        },
        op_kind::SET_DATA => Op::SetData {
            path: r.read_string()?,
            data: r.read_opt_buffer()?.map(share),
            version: r.read_i32()?,
        },
        op_kind::SET_ACL => Op::SetAcl {
            path: r.read_string()?,
            acl: r.read_records::<Acl>()?,
            version: r.read_i32()?,
        },
        op_kind::CHECK => Op::Check {
            path: r.read_string()?,
            version: r.read_i32()?,
        },
        op_kind::MULTI if depth == 0 => Op::Multi(r.read_vec(|r| read_op(r, depth + 1, share))?),
        op_kind::CLOSE_SESSION => Op::CloseSession {
            session: SessionId(r.read_i64()?),
        },
        op_kind::DELETE_CONTAINER => Op::DeleteContainer {
            path: r.read_string()?,
        },
        other => {
            return Err(DecodeError::Unknown {
                what: "forwarded op",
                value: i32::from(other),
                offset,
            })
        }
    })
}

fn write_core_op(w: &mut Writer, op: &CoreOp) {
    match op {
        CoreOp::Tree(op) => write_op(w, op),
        CoreOp::CreateSession { timeout_ms } => {
            w.write_u8(op_kind::NEW_SESSION);
            w.write_i32(*timeout_ms);
        }
        CoreOp::Sync { path } => {
            w.write_u8(op_kind::SYNC);
            w.write_str(path);
        }
        CoreOp::Reconfig(a) => {
            w.write_u8(op_kind::RECONFIG);
            w.write_str(&a.joining);
            w.write_str(&a.leaving);
            w.write_str(&a.new_members);
            w.write_i64(a.from_version);
            w.write_bool(a.skip_acl);
            w.write_bool(a.standalone_enabled);
        }
    }
}

fn read_core_op(r: &mut Reader<'_>, share: Share<'_>) -> Result<CoreOp, DecodeError> {
    let mut peek = r.clone();
    match peek.read_u8()? {
        op_kind::NEW_SESSION => {
            let _ = r.read_u8()?;
            Ok(CoreOp::CreateSession {
                timeout_ms: r.read_i32()?,
            })
        }
        op_kind::SYNC => {
            let _ = r.read_u8()?;
            Ok(CoreOp::Sync {
                path: r.read_string()?,
            })
        }
        op_kind::RECONFIG => {
            let _ = r.read_u8()?;
            Ok(CoreOp::Reconfig(crate::reconfig::ReconfigArgs {
                joining: r.read_string()?,
                leaving: r.read_string()?,
                new_members: r.read_string()?,
                from_version: r.read_i64()?,
                skip_acl: r.read_bool()?,
                standalone_enabled: r.read_bool()?,
            }))
        }
        _ => Ok(CoreOp::Tree(read_op(r, 0, share)?)),
    }
}

/// Bytes of znode data an op writes (its creates and setData, a multi's all together).
fn data_len(op: &Op) -> usize {
    match op {
        Op::Create { data, .. } | Op::SetData { data, .. } => data.as_ref().map_or(0, |d| d.len()),
        Op::Multi(ops) => ops.iter().map(data_len).sum(),
        _ => 0,
    }
}

impl Forward {
    /// The encoding alone; members write it straight into a peer frame instead
    /// (`Message::encode_forward` with [`Forward::write`]).
    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_inner()
    }

    /// Bytes to allocate for the encoding: a request's fields and the data it writes, so a
    /// forwarded setData's frame is not regrown (and copied) as its data is written.
    pub(crate) fn size_hint(&self) -> usize {
        const FIELDS_BYTES: usize = 256;
        match self {
            Forward::Request {
                op: CoreOp::Tree(op),
                ..
            } => FIELDS_BYTES + data_len(op),
            _ => FIELDS_BYTES,
        }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        match self {
            Forward::Request {
                route,
                session,
                auth,
                op,
            } => {
                w.write_u8(kind::REQUEST);
                write_route(w, route);
                w.write_i64(session.0);
                w.write_records(auth);
                write_core_op(w, op);
            }
            Forward::Touch { sessions } => {
                w.write_u8(kind::TOUCH);
                w.write_vec(sessions, |w, s| w.write_i64(s.0));
            }
            Forward::SyncDone { route, path, zxid } => {
                w.write_u8(kind::SYNC_DONE);
                write_route(w, route);
                w.write_str(path);
                w.write_i64(zxid.0);
            }
            Forward::Attach { session } => {
                w.write_u8(kind::ATTACH);
                w.write_i64(session.0);
            }
            Forward::Refused {
                route,
                zxid,
                connect,
            } => {
                w.write_u8(kind::REFUSED);
                write_route(w, route);
                w.write_i64(zxid.0);
                w.write_bool(*connect);
            }
            Forward::Relay { member, msg } => {
                w.write_u8(kind::RELAY);
                w.write_i64(*member as i64);
                msg.write(w);
            }
        }
    }

    /// Decodes a message, copying a request's data out of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Forward, DecodeError> {
        Forward::decode_with(bytes, &Bytes::copy_from_slice)
    }

    /// Decodes a message whose request's data stays in `bytes`, shared, not copied: the
    /// leader takes a forwarded write's data from the bytes its link read.
    pub fn decode_shared(bytes: &Payload) -> Result<Forward, DecodeError> {
        Forward::decode_with(bytes, &|data| bytes.slice_ref(data))
    }

    fn decode_with(bytes: &[u8], share: Share<'_>) -> Result<Forward, DecodeError> {
        let mut r = Reader::new(bytes);
        let msg = Forward::read(&mut r, true, share)?;
        r.finish()?;
        Ok(msg)
    }

    /// The encoding of `Relay { member, msg }`, without taking `msg`.
    #[cfg(test)]
    pub fn encode_relay(member: u64, msg: &Forward) -> Vec<u8> {
        let mut w = Writer::new();
        Forward::write_relay(member, msg, &mut w);
        w.into_inner()
    }

    /// Writes `msg` in a `Relay` for `member`.
    pub(crate) fn write_relay(member: u64, msg: &Forward, w: &mut Writer) {
        w.write_u8(kind::RELAY);
        w.write_i64(member as i64);
        msg.write(w);
    }

    /// One message; a `Relay` only where `relay` (at the top: a relay holds no relay).
    fn read(r: &mut Reader<'_>, relay: bool, share: Share<'_>) -> Result<Forward, DecodeError> {
        let offset = r.offset();
        let msg = match r.read_u8()? {
            kind::REQUEST => Forward::Request {
                route: read_route(r)?,
                session: SessionId(r.read_i64()?),
                auth: r.read_records::<Id>()?,
                op: read_core_op(r, share)?,
            },
            kind::TOUCH => Forward::Touch {
                sessions: r.read_vec(|r| r.read_i64().map(SessionId))?,
            },
            kind::SYNC_DONE => Forward::SyncDone {
                route: read_route(r)?,
                path: r.read_string()?,
                zxid: Zxid(r.read_i64()?),
            },
            kind::ATTACH => Forward::Attach {
                session: SessionId(r.read_i64()?),
            },
            kind::REFUSED => Forward::Refused {
                route: read_route(r)?,
                zxid: Zxid(r.read_i64()?),
                connect: r.read_bool()?,
            },
            kind::RELAY if relay => Forward::Relay {
                member: r.read_i64()? as u64,
                msg: Box::new(Forward::read(r, false, share)?),
            },
            other => {
                return Err(DecodeError::Unknown {
                    what: "forward kind",
                    value: i32::from(other),
                    offset,
                })
            }
        };
        Ok(msg)
    }
}

/// The bytes ZAB replicates for one transaction: an optional route (flag byte, then the
/// route), the leader's wall-clock time, and the txn as the log stores it.
pub fn encode_payload(route: Option<&Route>, time_ms: i64, txn: &[u8]) -> Payload {
    let mut w = Writer::new();
    write_payload_head(&mut w, route, time_ms);
    w.write_raw(txn);
    Payload::from(w.into_inner())
}

/// What a payload holds before its txn: the route flag, the route, the time.
fn write_payload_head(w: &mut Writer, route: Option<&Route>, time_ms: i64) {
    match route {
        Some(r) => {
            w.write_u8(1);
            write_route(w, r);
        }
        None => w.write_u8(0),
    }
    w.write_i64(time_ms);
}

/// Writes the payload of `txn` into `buf` (cleared first; its capacity serves the next
/// one) and returns where the txn's bytes start in it: the leader encodes each proposal
/// once, for its log and for the replica, with no allocation once `buf` has grown.
pub fn write_payload<T: Record>(
    buf: &mut Vec<u8>,
    route: Option<&Route>,
    time_ms: i64,
    txn: &T,
) -> usize {
    buf.clear();
    let mut w = Writer::with_buffer(std::mem::take(buf));
    write_payload_head(&mut w, route, time_ms);
    let start = w.len();
    txn.encode(&mut w);
    *buf = w.into_inner();
    start
}

/// Bytes to allocate for a payload: the route, time and a txn's fields, and the data it
/// writes, so that the buffer is not regrown (and copied) as the txn is written, nor holds
/// much more than the payload while the history keeps it.
pub fn payload_size_hint(txn: &Txn) -> usize {
    /// The route, the time, and a txn's fixed fields with their lengths.
    const FIELDS_BYTES: usize = 128;
    /// An ACL entry's perms and lengths.
    const ACL_BYTES: usize = 16;
    let acls = |acl: &[Acl]| -> usize {
        acl.iter()
            .map(|a| ACL_BYTES + a.id.scheme.len() + a.id.id.len())
            .sum()
    };
    let data = |d: &Option<Bytes>| d.as_ref().map_or(0, |d| d.len());
    FIELDS_BYTES
        + match txn {
            Txn::Create {
                path, data: d, acl, ..
            } => path.len() + data(d) + acls(acl),
            Txn::SetData { path, data: d, .. } => path.len() + data(d),
            Txn::SetAcl { path, acl, .. } => path.len() + acls(acl),
            Txn::Delete { path } | Txn::Check { path, .. } => path.len(),
            Txn::CloseSession { paths, .. } => paths.iter().map(|p| 4 + p.len()).sum(),
            Txn::Reconfig { data, .. } => data.len(),
            Txn::Multi(txns) => txns.iter().map(payload_size_hint).sum(),
            Txn::CreateSession { .. } | Txn::Error(_) => 0,
        }
}

/// A payload taken apart: route, time and the txn bytes.
pub fn decode_payload(bytes: &[u8]) -> Result<(Option<Route>, i64, &[u8]), DecodeError> {
    let mut r = Reader::new(bytes);
    let offset = r.offset();
    let route = match r.read_u8()? {
        0 => None,
        1 => Some(read_route(&mut r)?),
        other => {
            return Err(DecodeError::Unknown {
                what: "payload route flag",
                value: i32::from(other),
                offset,
            })
        }
    };
    let time_ms = r.read_i64()?;
    let start = r.offset();
    Ok((route, time_ms, &bytes[start..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoocore_proto::Perms;

    fn route() -> Route {
        Route {
            server: 3,
            origin: Origin {
                shard: 1,
                conn: 42,
                xid: 7,
            },
            barrier: true,
        }
    }

    #[test]
    fn requests_round_trip() {
        let op = CoreOp::Tree(Op::Multi(vec![
            Op::Create {
                path: "/a".into(),
                data: Some(b"x".to_vec().into()),
                acl: vec![Acl {
                    perms: Perms(31),
                    id: Id::new("world", "anyone"),
                }],
                mode: CreateMode::EphemeralSequential,
                ttl_ms: -1,
            },
            Op::Check {
                path: "/b".into(),
                version: 3,
            },
            // Null data is forwarded as null, empty as empty.
            Op::Create {
                path: "/n".into(),
                data: None,
                acl: Acl::open_unsafe(),
                mode: CreateMode::Persistent,
                ttl_ms: -1,
            },
            Op::SetData {
                path: "/n".into(),
                data: None,
                version: -1,
            },
            Op::SetData {
                path: "/e".into(),
                data: Some(Vec::new().into()),
                version: -1,
            },
        ]));
        let msg = Forward::Request {
            route: route(),
            session: SessionId(9),
            auth: vec![Id::new("ip", "127.0.0.1")],
            op,
        };
        let back = Forward::decode(&msg.encode()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{msg:?}"));
        let attach = Forward::Attach {
            session: SessionId(0x0100_0000_0000_0005),
        };
        let back = Forward::decode(&attach.encode()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{attach:?}"));
        let refused = Forward::Refused {
            route: route(),
            zxid: Zxid(0x1_0000_0007),
            connect: true,
        };
        let back = Forward::decode(&refused.encode()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{refused:?}"));
        for op in [
            CoreOp::CreateSession { timeout_ms: 4000 },
            CoreOp::Sync { path: "/".into() },
        ] {
            let msg = Forward::Request {
                route: route(),
                session: SessionId(0),
                auth: vec![],
                op,
            };
            let back = Forward::decode(&msg.encode()).unwrap();
            assert_eq!(format!("{back:?}"), format!("{msg:?}"));
        }
    }

    #[test]
    fn relays_round_trip_once_and_never_nest() {
        let inner = Forward::Refused {
            route: route(),
            zxid: Zxid(7),
            connect: false,
        };
        let bytes = Forward::encode_relay(5, &inner);
        let back = Forward::decode(&bytes).unwrap();
        let want = Forward::Relay {
            member: 5,
            msg: Box::new(inner),
        };
        assert_eq!(format!("{back:?}"), format!("{want:?}"));
        assert_eq!(want.encode(), bytes);
        // A relay of a relay is refused, as is a relay with trailing bytes.
        let nested = Forward::encode_relay(6, &want);
        assert!(Forward::decode(&nested).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(Forward::decode(&long).is_err());
        for cut in 0..bytes.len() {
            assert!(Forward::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = Forward::SyncDone {
            route: route(),
            path: "/x".into(),
            zxid: Zxid(5),
        }
        .encode();
        for cut in 0..good.len() {
            assert!(Forward::decode(&good[..cut]).is_err());
        }
        for b in 0..=255u8 {
            let _ = Forward::decode(&[b, 0, 0, 0, 1, 2, 3]);
        }
    }

    #[test]
    fn a_payload_written_in_place_is_the_encoded_one() {
        let txn = zoocore_tree::Txn::Delete { path: "/x".into() };
        let mut buf = vec![9; 3];
        let start = write_payload(&mut buf, Some(&route()), 1234, &txn);
        assert_eq!(buf, *encode_payload(Some(&route()), 1234, &txn.to_bytes()));
        assert_eq!(&buf[start..], &txn.to_bytes()[..]);
    }

    /// The leader's payload buffer is sized once: its txn is written without regrowing it
    /// (no copy), and it holds little more than the payload while the history keeps it.
    #[test]
    fn a_payload_fits_the_buffer_its_hint_sizes() {
        let data = |n: usize| Some(Bytes::from(vec![7u8; n]));
        let set = |path: &str, n: usize| zoocore_tree::Txn::SetData {
            path: path.into(),
            data: data(n),
            version: 3,
        };
        let txns = [
            set("/k/0000000001", 1024),
            set("/k", 0),
            set(&"/long".repeat(40), 100_000),
            zoocore_tree::Txn::Create {
                path: "/a/b".into(),
                data: data(512),
                acl: Acl::open_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: 1,
            },
            zoocore_tree::Txn::Multi((0..8).map(|i| set(&format!("/m/{i}"), 300)).collect()),
            zoocore_tree::Txn::Reconfig {
                data: Bytes::from_static(b"server.1=127.0.0.1:2888:3888\nversion=1"),
                version: 1,
            },
        ];
        for txn in &txns {
            let hint = payload_size_hint(txn);
            let mut buf = Vec::with_capacity(hint);
            write_payload(&mut buf, Some(&route()), 1234, txn);
            assert_eq!(buf.capacity(), hint, "{txn:?} regrew the buffer");
            assert!(hint - buf.len() <= 1024, "{} spare bytes", hint - buf.len());
        }
    }

    #[test]
    fn payloads_carry_route_time_and_txn() {
        let p = encode_payload(Some(&route()), 1234, b"txn");
        assert_eq!(
            decode_payload(&p).unwrap(),
            (Some(route()), 1234, &b"txn"[..])
        );
        let p = encode_payload(None, 5, b"t");
        assert_eq!(decode_payload(&p).unwrap(), (None, 5, &b"t"[..]));
    }
}
