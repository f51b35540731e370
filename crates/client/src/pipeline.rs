//! Xid assignment and reply matching, sans-IO.
//!
//! A ZooKeeper server answers one session's requests in the order it received them, so the
//! client keeps its outstanding requests in a FIFO and every reply must carry the xid of the
//! oldest one (ClientCnxn.readResponse throws "Xid out of order" otherwise). Negative xids
//! are the protocol's own: -1 a watch event, -2 a ping's answer; they are not queued.
//! Each outstanding request carries a caller-chosen tag (a send time, a key index) that comes
//! back with its reply.

use std::collections::VecDeque;
use std::ops::Range;

use zoocore_proto::records::{ReplyHeader, WatcherEvent};
use zoocore_proto::{ErrorCode, OpCode, Reader, Record, Xid};

use crate::ClientError;

#[derive(Debug)]
struct Pending<T> {
    xid: i32,
    op: OpCode,
    tag: T,
}

/// The reply to one request, matched to the request's opcode and tag.
#[derive(Debug)]
pub struct Reply<T> {
    pub xid: i32,
    pub op: OpCode,
    pub tag: T,
    pub zxid: i64,
    pub err: ErrorCode,
    /// The body's range within the frame buffer it was decoded from.
    pub body: Range<usize>,
}

/// One decoded frame from the server.
#[derive(Debug)]
pub enum Incoming<T> {
    Reply(Reply<T>),
    Event { zxid: i64, event: WatcherEvent },
    Pong { zxid: i64 },
}

/// The outstanding requests of one connection.
#[derive(Debug)]
pub struct Pipeline<T> {
    next_xid: i32,
    outstanding: VecDeque<Pending<T>>,
    pings_outstanding: u32,
}

impl<T> Default for Pipeline<T> {
    fn default() -> Self {
        Self {
            next_xid: 1,
            outstanding: VecDeque::new(),
            pings_outstanding: 0,
        }
    }
}

impl<T> Pipeline<T> {
    /// Registers a request and returns the xid to send it with. Xids count up from 1 and
    /// wrap back to 1, never into the negative range the protocol reserves.
    pub fn register(&mut self, op: OpCode, tag: T) -> i32 {
        let xid = self.next_xid;
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        self.outstanding.push_back(Pending { xid, op, tag });
        xid
    }

    /// Notes a ping sent (xid -2); its answer is matched by count, not position.
    pub fn register_ping(&mut self) {
        self.pings_outstanding += 1;
    }

    /// Requests sent and not yet answered (pings excluded).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    pub fn pings_outstanding(&self) -> u32 {
        self.pings_outstanding
    }

    /// The tags of unanswered requests, oldest first.
    pub fn tags(&self) -> impl Iterator<Item = &T> {
        self.outstanding.iter().map(|p| &p.tag)
    }

    /// Decodes one frame (`frame` is `bytes[range]`) and matches it.
    pub fn on_frame(
        &mut self,
        bytes: &[u8],
        range: Range<usize>,
    ) -> Result<Incoming<T>, ClientError> {
        let frame = &bytes[range.clone()];
        let mut r = Reader::new(frame);
        let header = ReplyHeader::decode(&mut r)?;
        let body = range.start + r.offset()..range.end;
        match header.xid {
            xid if xid == Xid::NOTIFICATION.0 => {
                let event = WatcherEvent::decode(&mut r)?;
                Ok(Incoming::Event {
                    zxid: header.zxid,
                    event,
                })
            }
            xid if xid == Xid::PING.0 => {
                if self.pings_outstanding == 0 {
                    return Err(ClientError::UnexpectedReply { xid });
                }
                self.pings_outstanding -= 1;
                Ok(Incoming::Pong { zxid: header.zxid })
            }
            xid => {
                let Some(front) = self.outstanding.front() else {
                    return Err(ClientError::UnexpectedReply { xid });
                };
                if front.xid != xid {
                    return Err(ClientError::XidOutOfOrder {
                        expected: front.xid,
                        got: xid,
                    });
                }
                let Some(p) = self.outstanding.pop_front() else {
                    return Err(ClientError::UnexpectedReply { xid });
                };
                Ok(Incoming::Reply(Reply {
                    xid,
                    op: p.op,
                    tag: p.tag,
                    zxid: header.zxid,
                    err: ErrorCode(header.err),
                    body,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zoocore_proto::{EventType, KeeperState, Writer};

    fn reply_frame(xid: i32, err: i32, body: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        ReplyHeader { xid, zxid: 7, err }.encode(&mut w);
        w.write_raw(body);
        w.into_inner()
    }

    #[test]
    fn replies_match_in_order_with_tags_and_bodies() {
        let mut p = Pipeline::default();
        let a = p.register(OpCode::GetData, "a");
        let b = p.register(OpCode::SetData, "b");
        assert_eq!((a, b), (1, 2));
        let f = reply_frame(1, 0, b"xyz");
        let Ok(Incoming::Reply(r)) = p.on_frame(&f, 0..f.len()) else {
            panic!("expected a reply")
        };
        assert_eq!(
            (r.op, r.tag, r.err, &f[r.body]),
            (OpCode::GetData, "a", ErrorCode::OK, &b"xyz"[..])
        );
        let f = reply_frame(2, ErrorCode::BAD_VERSION.0, b"");
        let Ok(Incoming::Reply(r)) = p.on_frame(&f, 0..f.len()) else {
            panic!("expected a reply")
        };
        assert_eq!((r.tag, r.err), ("b", ErrorCode::BAD_VERSION));
        assert_eq!(p.outstanding(), 0);
    }

    #[test]
    fn out_of_order_and_unsolicited_replies_are_errors() {
        let mut p = Pipeline::default();
        p.register(OpCode::GetData, ());
        p.register(OpCode::GetData, ());
        let f = reply_frame(2, 0, b"");
        assert!(matches!(
            p.on_frame(&f, 0..f.len()),
            Err(ClientError::XidOutOfOrder {
                expected: 1,
                got: 2
            })
        ));
        let mut p: Pipeline<()> = Pipeline::default();
        let f = reply_frame(5, 0, b"");
        assert!(matches!(
            p.on_frame(&f, 0..f.len()),
            Err(ClientError::UnexpectedReply { xid: 5 })
        ));
        let f = reply_frame(-2, 0, b"");
        assert!(matches!(
            p.on_frame(&f, 0..f.len()),
            Err(ClientError::UnexpectedReply { xid: -2 })
        ));
    }

    #[test]
    fn events_and_pongs_do_not_disturb_the_queue() {
        let mut p = Pipeline::default();
        p.register(OpCode::Exists, 9u8);
        p.register_ping();
        let mut w = Writer::new();
        WatcherEvent {
            r#type: EventType::NodeDataChanged.as_i32(),
            state: KeeperState::SyncConnected.as_i32(),
            path: "/w".into(),
        }
        .encode(&mut w);
        let f = reply_frame(-1, 0, &w.into_inner());
        assert!(matches!(
            p.on_frame(&f, 0..f.len()),
            Ok(Incoming::Event { ref event, .. }) if event.path == "/w"
        ));
        let f = reply_frame(-2, 0, b"");
        assert!(matches!(
            p.on_frame(&f, 0..f.len()),
            Ok(Incoming::Pong { .. })
        ));
        assert_eq!(p.pings_outstanding(), 0);
        assert_eq!(p.outstanding(), 1);
    }

    #[test]
    fn truncated_header_is_a_decode_error() {
        let mut p: Pipeline<()> = Pipeline::default();
        let f = [0u8; 7];
        assert!(matches!(p.on_frame(&f, 0..7), Err(ClientError::Decode(_))));
    }

    #[test]
    fn xids_wrap_to_one() {
        let mut p: Pipeline<()> = Pipeline {
            next_xid: i32::MAX,
            ..Pipeline::default()
        };
        assert_eq!(p.register(OpCode::Ping, ()), i32::MAX);
        assert_eq!(p.register(OpCode::Ping, ()), 1);
    }
}
