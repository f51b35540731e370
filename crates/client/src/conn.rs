//! One pipelined ZooKeeper connection over a tokio TCP stream.
//!
//! The caller queues requests with [`Conn::submit`] (encoded straight into the write buffer,
//! no per-request allocation), sends them with [`Conn::flush`], and takes replies, watch
//! events and pongs with [`Conn::next`] or, inside a `select!`, [`Conn::read_some`] (cancel
//! safe: one `read` into the frame buffer) followed by [`Conn::try_next`]. A reply's body is
//! a range into the frame buffer, valid until the next read: [`Conn::body`] borrows it.
//! Nothing here spawns a task or reads the clock beyond the connect timeout, so a load
//! generator can run thousands of these on one current-thread runtime.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zoocore_proto::records::{ConnectRequest, ConnectResponse};
use zoocore_proto::{OpCode, Reader, Record, Writer, Xid};

use crate::frame::{encode_raw, encode_request, FrameDecoder};
use crate::pipeline::{Incoming, Pipeline, Reply};
use crate::ClientError;

/// What the handshake asks for.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub session_timeout_ms: i32,
    /// 0 for a new session; a previous session's id (with its password) to resume it.
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: bool,
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            session_timeout_ms: 30_000,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: false,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The session the server granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub session_id: i64,
    pub timeout_ms: i32,
    pub passwd: Vec<u8>,
}

/// A connected, handshaken session; `T` is the per-request tag returned with each reply.
#[derive(Debug)]
pub struct Conn<T> {
    stream: TcpStream,
    decoder: FrameDecoder,
    out: Vec<u8>,
    pipeline: Pipeline<T>,
    session: Session,
}

impl<T> Conn<T> {
    /// Connects, sends the handshake (with the trailing readOnly byte, as 3.3+ clients do)
    /// and waits for the server's answer.
    pub async fn connect(addr: SocketAddr, opts: &ConnectOptions) -> Result<Self, ClientError> {
        let stream = tokio::time::timeout(opts.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        Self::handshake(stream, opts).await
    }

    /// Runs the handshake on an already connected stream.
    pub async fn handshake(stream: TcpStream, opts: &ConnectOptions) -> Result<Self, ClientError> {
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            decoder: FrameDecoder::default(),
            out: Vec::with_capacity(16 * 1024),
            pipeline: Pipeline::default(),
            session: Session {
                session_id: 0,
                timeout_ms: 0,
                passwd: Vec::new(),
            },
        };
        let mut w = Writer::new();
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: opts.session_timeout_ms,
            session_id: opts.session_id,
            passwd: opts.passwd.clone(),
        }
        .encode(&mut w);
        w.write_bool(opts.read_only);
        encode_raw(&mut conn.out, &w.into_inner());
        conn.flush().await?;
        let frame = loop {
            if let Some(range) = conn.decoder.next_frame()? {
                break range;
            }
            conn.read_some().await?;
        };
        // The trailing readOnly byte is optional; decode the record and ignore the rest.
        let mut r = Reader::new(&conn.decoder.bytes()[frame]);
        let resp = ConnectResponse::decode(&mut r)?;
        if resp.session_id == 0 || resp.time_out <= 0 {
            return Err(ClientError::SessionRefused);
        }
        conn.session = Session {
            session_id: resp.session_id,
            timeout_ms: resp.time_out,
            passwd: resp.passwd,
        };
        Ok(conn)
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Queues a request; `body` writes its record after the header. Returns the xid.
    pub fn submit(&mut self, op: OpCode, tag: T, body: impl FnOnce(&mut Writer)) -> i32 {
        let xid = self.pipeline.register(op, tag);
        encode_request(&mut self.out, xid, op, body);
        xid
    }

    /// Queues a request whose body is a record.
    pub fn submit_record(&mut self, op: OpCode, tag: T, record: &impl Record) -> i32 {
        self.submit(op, tag, |w| record.encode(w))
    }

    /// Queues a ping (xid -2), which keeps an idle session alive.
    pub fn ping(&mut self) {
        self.pipeline.register_ping();
        encode_request(&mut self.out, Xid::PING.0, OpCode::Ping, |_| {});
    }

    /// Requests sent or queued and not yet answered (pings excluded).
    pub fn outstanding(&self) -> usize {
        self.pipeline.outstanding()
    }

    pub fn pipeline(&self) -> &Pipeline<T> {
        &self.pipeline
    }

    /// Bytes queued and not yet written.
    pub fn unflushed(&self) -> usize {
        self.out.len()
    }

    /// Writes every queued request. Not cancel safe: call it outside `select!`.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// One read from the socket into the frame buffer. Cancel safe. Invalidates the body
    /// ranges of replies returned before it.
    pub async fn read_some(&mut self) -> Result<(), ClientError> {
        let n = self.stream.read_buf(self.decoder.read_buffer()).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        Ok(())
    }

    /// The next buffered frame, decoded and matched, without reading the socket.
    pub fn try_next(&mut self) -> Result<Option<Incoming<T>>, ClientError> {
        match self.decoder.next_frame()? {
            None => Ok(None),
            Some(range) => self
                .pipeline
                .on_frame(self.decoder.bytes(), range)
                .map(Some),
        }
    }

    /// The next frame, reading as needed.
    pub async fn next(&mut self) -> Result<Incoming<T>, ClientError> {
        loop {
            if let Some(incoming) = self.try_next()? {
                return Ok(incoming);
            }
            self.read_some().await?;
        }
    }

    /// The body of a reply returned since the last read.
    pub fn body(&self, reply: &Reply<T>) -> &[u8] {
        self.decoder.bytes().get(reply.body.clone()).unwrap_or(&[])
    }

    /// Closes the session (closeSession, one transaction on the server), waits for its
    /// answer while discarding earlier replies and events, then shuts the socket.
    pub async fn close(mut self, tag: T) -> Result<(), ClientError> {
        let xid = self.submit(OpCode::CloseSession, tag, |_| {});
        self.flush().await?;
        loop {
            match self.next().await? {
                Incoming::Reply(r) if r.xid == xid => break,
                _ => {}
            }
        }
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    /// Drops the connection without closing the session (it expires on the server).
    pub fn abandon(self) {}
}
