//! Framing of replies: a 4-byte big-endian length, the ReplyHeader, the body. Replies are
//! appended to a buffer (a connection's outbox) rather than built in one of their own.

use zoocore_proto::records::{ReplyHeader, Response, WatcherEvent};
use zoocore_proto::{ErrorCode, EventType, KeeperState, Record, Stat, Writer, Xid, Zxid};

/// Encodes one framed reply.
pub fn reply(xid: i32, zxid: Zxid, err: ErrorCode, body: Option<&Response>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    reply_into(&mut buf, xid, zxid, err, body);
    buf
}

/// Appends one framed reply to `buf`.
pub fn reply_into(
    buf: &mut Vec<u8>,
    xid: i32,
    zxid: Zxid,
    err: ErrorCode,
    body: Option<&Response>,
) {
    framed_into(buf, |w| {
        ReplyHeader {
            xid,
            zxid: zxid.0,
            err: err.0,
        }
        .encode(w);
        if let Some(body) = body {
            body.encode(w);
        }
    });
}

/// Appends a getData answer to `buf`, the data copied once, straight from the tree. Null
/// data goes out as jute's -1 buffer, as ZooKeeper answers it (clients read `null`).
pub fn get_data_into(buf: &mut Vec<u8>, xid: i32, zxid: Zxid, data: Option<&[u8]>, stat: &Stat) {
    framed_into(buf, |w| {
        ReplyHeader {
            xid,
            zxid: zxid.0,
            err: 0,
        }
        .encode(w);
        w.write_opt_buffer(data);
        stat.encode(w);
    });
}

/// Encodes one framed watch notification.
pub fn notification(event: EventType, path: &str, zxid: Zxid) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32 + path.len());
    framed_into(&mut buf, |w| {
        ReplyHeader {
            xid: Xid::NOTIFICATION.0,
            zxid: zxid.0,
            err: 0,
        }
        .encode(w);
        WatcherEvent {
            r#type: event.as_i32(),
            state: KeeperState::SyncConnected.as_i32(),
            path: path.to_string(),
        }
        .encode(w);
    });
    buf
}

/// Frames an already encoded body (the handshake answer).
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4 + body.len());
    framed_into(&mut buf, |w| w.write_raw(body));
    buf
}

/// Appends a frame (length prefix, then what `body` writes) to `buf`.
fn framed_into(buf: &mut Vec<u8>, body: impl FnOnce(&mut Writer)) {
    let start = buf.len();
    let mut w = Writer::with_buffer(std::mem::take(buf));
    w.write_i32(0);
    body(&mut w);
    *buf = w.into_inner();
    let len = i32::try_from(buf.len() - start - 4).expect("a reply fits in a frame");
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_append_with_their_own_length() {
        let mut buf = vec![9, 9];
        reply_into(&mut buf, 7, Zxid(5), ErrorCode::OK, None);
        assert_eq!(&buf[..2], &[9, 9]);
        assert_eq!(&buf[2..6], &16i32.to_be_bytes());
        assert_eq!(buf.len(), 2 + 4 + 16);
        let stat = Stat::default();
        let before = buf.len();
        get_data_into(&mut buf, 8, Zxid(5), Some(b"abc"), &stat);
        assert_eq!(
            &buf[before..before + 4],
            &(16 + 4 + 3 + 68i32).to_be_bytes()
        );
    }

    #[test]
    fn get_data_writes_null_as_minus_one_and_empty_as_zero() {
        let stat = Stat::default();
        for (data, length) in [(None, -1i32), (Some(&b""[..]), 0)] {
            let mut buf = Vec::new();
            get_data_into(&mut buf, 8, Zxid(5), data, &stat);
            assert_eq!(&buf[..4], &(16 + 4 + 68i32).to_be_bytes());
            assert_eq!(&buf[20..24], &length.to_be_bytes(), "{data:?}");
        }
    }
}
