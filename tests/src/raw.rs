//! A minimal synchronous ZooKeeper wire client: length-prefixed big-endian jute frames over a
//! plain `TcpStream`. It exists for the cases a well-behaved client library will not produce:
//! garbage and oversized frames, invalid paths, wrong session passwords, explicit
//! `setWatches`/`checkWatches`/`removeWatches`. Layouts follow ZooKeeper's `zookeeper.jute`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Opcodes from ZooKeeper's `ZooDefs.OpCode`.
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const MULTI: i32 = 14;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const SET_WATCHES: i32 = 101;
    pub const CLOSE_SESSION: i32 = -11;
    pub const CHECK: i32 = 13;
    pub const ERROR: i32 = -1;
}

/// Notifications arrive with this xid.
pub const XID_NOTIFICATION: i32 = -1;
/// Pings use this xid.
pub const XID_PING: i32 = -2;
/// `setWatches` uses this xid.
pub const XID_SET_WATCHES: i32 = -8;

/// Appends jute primitives (big-endian) to a buffer.
#[derive(Default, Debug, Clone)]
pub struct Jute(pub Vec<u8>);

impl Jute {
    pub fn new() -> Jute {
        Jute(Vec::new())
    }
    pub fn int(mut self, v: i32) -> Jute {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: i64) -> Jute {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn boolean(mut self, v: bool) -> Jute {
        self.0.push(u8::from(v));
        self
    }
    pub fn buffer(self, v: &[u8]) -> Jute {
        let mut s = self.int(v.len() as i32);
        s.0.extend_from_slice(v);
        s
    }
    pub fn string(self, v: &str) -> Jute {
        self.buffer(v.as_bytes())
    }
    pub fn strings(self, vs: &[&str]) -> Jute {
        let mut s = self.int(vs.len() as i32);
        for v in vs {
            s = s.string(v);
        }
        s
    }
    /// Bytes as they are (a string that is not UTF-8, a null written by hand).
    pub fn raw(mut self, bytes: &[u8]) -> Jute {
        self.0.extend_from_slice(bytes);
        self
    }
    /// `vector<ACL>` of one `world:anyone` ACL with all permissions.
    pub fn open_acl(self) -> Jute {
        self.int(1).int(31).string("world").string("anyone")
    }
}

/// Reads jute primitives (big-endian) from a buffer; panics on truncation (a test failure).
pub struct JuteReader<'a> {
    pub buf: &'a [u8],
}

impl<'a> JuteReader<'a> {
    pub fn new(buf: &'a [u8]) -> JuteReader<'a> {
        JuteReader { buf }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.buf.len() >= n,
            "truncated reply: need {n} bytes, have {}",
            self.buf.len()
        );
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        head
    }
    pub fn int(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    pub fn long(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    pub fn boolean(&mut self) -> bool {
        self.take(1)[0] != 0
    }
    pub fn buffer(&mut self) -> Vec<u8> {
        let n = self.int();
        if n < 0 {
            return Vec::new();
        }
        self.take(n as usize).to_vec()
    }
    pub fn string(&mut self) -> String {
        String::from_utf8(self.buffer()).expect("utf-8 string")
    }
}

/// The server's answer to a connect request.
#[derive(Debug, Clone)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
}

/// A reply header with its body; notifications have xid [`XID_NOTIFICATION`].
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

/// A decoded watch notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

impl Reply {
    pub fn notification(&self) -> Notification {
        assert_eq!(self.xid, XID_NOTIFICATION, "not a notification: {self:?}");
        let mut r = JuteReader::new(&self.body);
        Notification {
            event_type: r.int(),
            state: r.int(),
            path: r.string(),
        }
    }
}

/// One raw connection.
pub struct RawConn {
    pub stream: TcpStream,
    next_xid: i32,
    /// Notifications seen while waiting for a reply, oldest first.
    pub notifications: Vec<Notification>,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            stream,
            next_xid: 1,
            notifications: Vec::new(),
        })
    }

    /// Connects and opens a new session with `timeout_ms`.
    pub fn open_session(addr: SocketAddr, timeout_ms: i32) -> (RawConn, ConnectResponse) {
        let mut conn = RawConn::connect(addr).expect("raw connect");
        let resp = conn
            .handshake(timeout_ms, 0, &[0; 16], 0)
            .expect("raw handshake");
        assert_ne!(resp.session_id, 0, "server refused a new session: {resp:?}");
        (conn, resp)
    }

    /// Sends a ConnectRequest and reads the ConnectResponse.
    pub fn handshake(
        &mut self,
        timeout_ms: i32,
        session_id: i64,
        password: &[u8],
        last_zxid_seen: i64,
    ) -> io::Result<ConnectResponse> {
        let req = Jute::new()
            .int(0)
            .long(last_zxid_seen)
            .int(timeout_ms)
            .long(session_id)
            .buffer(password)
            .boolean(false);
        self.write_frame(&req.0)?;
        let frame = self.read_frame()?;
        let mut r = JuteReader::new(&frame);
        Ok(ConnectResponse {
            protocol_version: r.int(),
            timeout_ms: r.int(),
            session_id: r.long(),
            password: r.buffer(),
        })
    }

    /// Writes `payload` with its 4-byte length prefix.
    pub fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        assert!(
            (0..=16 << 20).contains(&len),
            "implausible frame length {len}"
        );
        let mut payload = vec![0u8; len as usize];
        self.stream.read_exact(&mut payload)?;
        Ok(payload)
    }

    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let frame = self.read_frame()?;
        let mut r = JuteReader::new(&frame);
        let (xid, zxid, err) = (r.int(), r.long(), r.int());
        Ok(Reply {
            xid,
            zxid,
            err,
            body: r.buf.to_vec(),
        })
    }

    /// Sends a request with an explicit xid.
    pub fn send(&mut self, xid: i32, op_code: i32, body: &Jute) -> io::Result<()> {
        let mut payload = Jute::new().int(xid).int(op_code);
        payload.0.extend_from_slice(&body.0);
        self.write_frame(&payload.0)
    }

    /// Sends a request and returns its reply, stashing notifications that arrive first.
    pub fn call_xid(&mut self, xid: i32, op_code: i32, body: Jute) -> Reply {
        self.send(xid, op_code, &body).expect("raw send");
        loop {
            let reply = self.read_reply().expect("raw reply");
            if reply.xid == XID_NOTIFICATION {
                self.notifications.push(reply.notification());
                continue;
            }
            assert_eq!(reply.xid, xid, "reply out of order: {reply:?}");
            return reply;
        }
    }

    /// Sends a request with the next xid and returns its reply.
    pub fn call(&mut self, op_code: i32, body: Jute) -> Reply {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.call_xid(xid, op_code, body)
    }

    /// Reads until a notification arrives (or one was already stashed).
    pub fn next_notification(&mut self) -> Notification {
        if !self.notifications.is_empty() {
            return self.notifications.remove(0);
        }
        loop {
            let reply = self.read_reply().expect("waiting for a notification");
            if reply.xid == XID_NOTIFICATION {
                return reply.notification();
            }
        }
    }

    /// True if the peer has closed the connection (read returns EOF or reset) within `wait`.
    pub fn is_closed_within(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1024];
        let deadline = std::time::Instant::now() + wait;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {
                    if std::time::Instant::now() > deadline {
                        return false;
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

/// `create` request body: path, data, open ACL, flags.
pub fn create_body(path: &str, data: &[u8], flags: i32) -> Jute {
    Jute::new().string(path).buffer(data).open_acl().int(flags)
}

/// `getData`/`exists` request body.
pub fn path_watch_body(path: &str, watch: bool) -> Jute {
    Jute::new().string(path).boolean(watch)
}

/// `setData` request body.
pub fn set_data_body(path: &str, data: &[u8], version: i32) -> Jute {
    Jute::new().string(path).buffer(data).int(version)
}

/// FIFO client order with pipelining, as tests/tests/crud.rs and ensemble.rs check it: on a
/// session at `addr`, `rounds` times, setData `/fifo` to `a<round>`, getData `/fifo`, setData
/// `/fifo` to `second`, all three sent before any answer, while a session at `other` writes
/// `/noise` meanwhile. The read must see the first write and not the second, and the
/// session's answers must never go back in zxid.
pub fn pipelined_read_between_writes(addr: SocketAddr, other: SocketAddr, rounds: i32) {
    let (mut conn, _) = RawConn::open_session(addr, 10_000);
    let created = conn.call(op::CREATE, create_body("/fifo", b"", 0)).err;
    assert!(created == 0 || created == -110, "create /fifo: {created}");
    let (mut noise, _) = RawConn::open_session(other, 10_000);
    let created = noise.call(op::CREATE, create_body("/noise", b"", 0)).err;
    assert!(created == 0 || created == -110, "create /noise: {created}");
    let mut last_zxid = 0;
    for round in 0..rounds {
        let base = 1000 + round * 3;
        let first = format!("a{round}");
        conn.send(
            base,
            op::SET_DATA,
            &set_data_body("/fifo", first.as_bytes(), -1),
        )
        .unwrap();
        noise
            .send(base, op::SET_DATA, &set_data_body("/noise", b"n", -1))
            .unwrap();
        conn.send(base + 1, op::GET_DATA, &path_watch_body("/fifo", false))
            .unwrap();
        conn.send(
            base + 2,
            op::SET_DATA,
            &set_data_body("/fifo", b"second", -1),
        )
        .unwrap();
        for xid in base..base + 3 {
            let reply = conn.read_reply().unwrap();
            assert_eq!((reply.xid, reply.err), (xid, 0), "round {round}");
            assert!(
                reply.zxid >= last_zxid,
                "round {round}: xid {xid} answered at zxid {:#x} after {last_zxid:#x}",
                reply.zxid
            );
            last_zxid = reply.zxid;
            if xid == base + 1 {
                let data = JuteReader::new(&reply.body).buffer();
                assert_eq!(
                    String::from_utf8_lossy(&data),
                    first,
                    "round {round}: the read saw a write sent after it"
                );
            }
        }
        assert_eq!(noise.read_reply().unwrap().err, 0);
    }
}
