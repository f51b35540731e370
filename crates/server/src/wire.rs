//! Framing of replies: a 4-byte big-endian length, the ReplyHeader, the body.

use zoocore_proto::records::{ReplyHeader, Response, WatcherEvent};
use zoocore_proto::{ErrorCode, EventType, KeeperState, Record, Writer, Xid, Zxid};

/// Encodes one framed reply.
pub fn reply(xid: i32, zxid: Zxid, err: ErrorCode, body: Option<&Response>) -> Vec<u8> {
    let mut w = Writer::with_buffer(Vec::with_capacity(64));
    w.write_i32(0);
    ReplyHeader {
        xid,
        zxid: zxid.0,
        err: err.0,
    }
    .encode(&mut w);
    if let Some(body) = body {
        body.encode(&mut w);
    }
    seal(w)
}

/// Encodes one framed watch notification.
pub fn notification(event: EventType, path: &str, zxid: Zxid) -> Vec<u8> {
    let mut w = Writer::with_buffer(Vec::with_capacity(32 + path.len()));
    w.write_i32(0);
    ReplyHeader {
        xid: Xid::NOTIFICATION.0,
        zxid: zxid.0,
        err: 0,
    }
    .encode(&mut w);
    WatcherEvent {
        r#type: event.as_i32(),
        state: KeeperState::SyncConnected.as_i32(),
        path: path.to_string(),
    }
    .encode(&mut w);
    seal(w)
}

/// Frames an already encoded body (the handshake answer).
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn seal(w: Writer) -> Vec<u8> {
    let mut buf = w.into_inner();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}
