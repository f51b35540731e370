//! One client connection: framing, the handshake, four-letter words, and moving bytes
//! between the socket and the shard.
//!
//! The task owns the socket. It waits on whichever comes first, bytes from the client or an
//! answer queued by the shard; a glommio read is only a readiness poll until data is there,
//! so dropping the losing side loses nothing.
//!
//! Limits (docs/OPERATIONS.md "Limits"): before it decodes a request the task takes a permit
//! of the shard's budget (budget.rs), which the request carries until its answer is written;
//! when the budget is spent every connection of the shard waits, which pushes back on clients
//! instead of growing memory. A connection also stops decoding, and reading, while it holds its
//! share of the budget or its unsent answers pass a cap in bytes, so a client that does not
//! read costs only its own connection; its session then expires, and an expired session's
//! connection is closed at once, even in the middle of a write. Requests are decoded in slices,
//! yielding between them, so one connection never holds the shard for long.
//!
//! The same task serves the secure client port: there the TCP stream's options are set, the
//! TLS handshake runs within the handshake timeout, and the rest is this same code over the
//! TLS stream ([`ClientStream`]). Writes are flushed, as TLS holds encrypted bytes until then,
//! and the last close is bounded, as a TLS close writes to a client that may not read.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::TcpStream;
use zoocore_proto::records::{ConnectRequest, RequestHeader};
use zoocore_proto::Id;
use zoocore_proto::{Reader, Record};

use crate::budget::{Held, Permit};
use crate::fourlw;
use crate::limits;
use crate::outbox::{Close, Outbox};
use crate::shard::Shard;
use crate::shared::Shared;

/// What ended a connection's wait for a budget unit.
enum Wait {
    /// A unit (`None`: the budget closed, the shard is stopping).
    Unit(Option<Permit>),
    /// Answers were queued or a close asked (`false`: the shard dropped the connection).
    Woken(bool),
}

enum Event {
    Read(std::io::Result<usize>),
    Woken(bool),
}

/// A client connection's byte stream: plain TCP, or TLS over it. The read timeout is the TCP
/// socket's, wherever the stream sits.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()>;
}

impl ClientStream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, timeout).map_err(Into::into)
    }
}

impl ClientStream for TlsStream<TcpStream> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self.get_ref().0, timeout).map_err(Into::into)
    }
}

/// How a port with a TLS acceptor uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// The secure client port: every connection is TLS.
    Always,
    /// `client.portUnification` on the plain port: a connection whose first byte is a TLS
    /// handshake record's (0x16) is TLS, any other is plain, as ZooKeeper's DualModeSslHandler.
    Optional,
}

/// A TLS record's first byte when it carries a handshake (RFC 8446 5.1); no ZooKeeper frame
/// length or four-letter word starts with it.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Serves one accepted connection until either side closes it; `tls` on a port that has it.
pub async fn serve(
    shard: Rc<RefCell<Shard>>,
    shared: Rc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    tls: Option<(TlsAcceptor, Tls)>,
) {
    let handshake_timeout = Duration::from_millis(limits::HANDSHAKE_TIMEOUT_MS);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(handshake_timeout));
    let acceptor = match tls {
        Some((acceptor, Tls::Always)) => acceptor,
        Some((acceptor, Tls::Optional)) if starts_tls(&stream, handshake_timeout).await => acceptor,
        _ => return serve_stream(shard, shared, stream, addr, Vec::new()).await,
    };
    let handshake =
        futures_lite::future::or(async { Some(acceptor.accept(stream).await) }, async {
            glommio::timer::sleep(handshake_timeout).await;
            None
        })
        .await;
    match handshake {
        Some(Ok(stream)) => {
            let super_user = shared.cfg.client_tls.as_ref();
            let super_user = super_user.and_then(|t| t.super_user.as_deref());
            let ids = crate::tls::client_ids(stream.get_ref().1.peer_certificates(), super_user);
            serve_stream(shard, shared, stream, addr, ids).await
        }
        // The socket's read timeout (the same limit) usually fires before the timer.
        Some(Err(e)) if e.kind() != std::io::ErrorKind::TimedOut => {
            tracing::info!("closing connection from {addr}: TLS handshake failed: {e}")
        }
        _ => tracing::info!(
            "closing connection from {addr}: no TLS handshake within {} ms",
            limits::HANDSHAKE_TIMEOUT_MS
        ),
    }
}

/// Whether the client's first byte opens a TLS handshake; a client silent for `timeout` is
/// left to the plain path, whose read timeout closes it.
pub(crate) async fn starts_tls(stream: &TcpStream, timeout: Duration) -> bool {
    let mut first = [0u8; 1];
    let peeked = futures_lite::future::or(async { stream.peek(&mut first).await.ok() }, async {
        glommio::timer::sleep(timeout).await;
        None
    })
    .await;
    peeked == Some(1) && first[0] == TLS_HANDSHAKE_RECORD
}

/// Serves a connection whose transport is set up; `proven` are the ids its TLS client
/// certificate proved.
async fn serve_stream<S: ClientStream>(
    shard: Rc<RefCell<Shard>>,
    shared: Rc<Shared>,
    mut stream: S,
    addr: SocketAddr,
    proven: Vec<Id>,
) {
    let mut frames = Frames::default();

    // The first four bytes are either a frame length or a four-letter word.
    while frames.pending().len() < 4 {
        match stream.read(frames.spare()).await {
            Ok(0) => return,
            Ok(n) => frames.filled(n),
            Err(e) => {
                tracing::info!("closing connection from {addr}: no handshake: {e}");
                return;
            }
        }
    }
    if let Some(word) = fourlw::word(&frames.pending()[..4]) {
        let arg_bytes = if word == "stmk" {
            fourlw::STMK_MASK_BYTES
        } else {
            0
        };
        while frames.pending().len() < 4 + arg_bytes {
            match stream.read(frames.spare()).await {
                Ok(n) if n > 0 => frames.filled(n),
                _ => break,
            }
        }
        let arg = frames.pending().get(4..4 + arg_bytes).unwrap_or_default();
        let view = shard.borrow().view().clone();
        let text = fourlw::answer(&word, addr, &shared, &view, arg).await;
        if stream.write_all(text.as_bytes()).await.is_ok() {
            let _ = stream.flush().await;
        }
        close_bounded(&mut stream).await;
        return;
    }

    let jute_max_buffer = shard.borrow().cfg.jute_max_buffer as usize;
    let (outbox, woken) = Outbox::new(limits::unsent_bytes_hard_max(jute_max_buffer));
    let outbox = Rc::new(outbox);
    let id = shard.borrow_mut().open(addr, outbox.clone());
    if !proven.is_empty() {
        shard.borrow_mut().add_auth(id, &proven);
    }
    let held = shard.borrow().conns[&id].held.clone();
    let mut conn = Connection {
        shard: &shard,
        stream: &mut stream,
        frames,
        id,
        outbox: &outbox,
        woken: &woken,
        held,
        connected: false,
    };
    if let Some(reason) = conn.run().await {
        tracing::info!("closing connection from {addr}: {reason}");
    }
    close_bounded(&mut stream).await;
    // The session's pending requests go with the connection, and their permits with them.
    shard.borrow_mut().close(id);
}

/// Closes the stream, giving a TLS close (which writes) at most [`limits::CLOSE_FLUSH_MS`]:
/// a client that does not read cannot hold the connection open.
async fn close_bounded<S: ClientStream>(stream: &mut S) {
    futures_lite::future::or(
        async {
            let _ = stream.close().await;
        },
        glommio::timer::sleep(Duration::from_millis(limits::CLOSE_FLUSH_MS)),
    )
    .await;
}

/// One connection's task state.
struct Connection<'a, S> {
    shard: &'a Rc<RefCell<Shard>>,
    stream: &'a mut S,
    frames: Frames,
    id: u64,
    outbox: &'a Outbox,
    woken: &'a LocalReceiver<()>,
    /// The budget units this connection's requests hold now.
    held: Rc<Held>,
    connected: bool,
}

impl<S: ClientStream> Connection<'_, S> {
    /// The connection's loop: decode a slice of requests while under its caps, write what is
    /// queued, then wait for the client or for answers. Returns why it ended, when that is
    /// worth logging.
    async fn run(&mut self) -> Option<String> {
        let (max_frame, budget, to_core) = {
            let s = self.shard.borrow();
            (
                s.cfg.jute_max_buffer as usize,
                s.budget.clone(),
                s.to_core.clone(),
            )
        };
        let unsent_max = limits::unsent_bytes_max(max_frame);
        let held_max = limits::conn_permits_max(budget.total());
        let mut out_bytes = Vec::new();
        let mut out_permits = Vec::new();
        // What a request makes for the core, moved out of the shard (kept for its capacity:
        // taking the shard's Vec each time allocated one per request).
        let mut for_core = Vec::new();
        // A unit waited for while the budget was spent, for the next request.
        let mut spare: Option<Permit> = None;
        loop {
            // A slice of the requests already buffered, each taking its budget unit first.
            let mut taken = 0;
            let mut starved = false;
            // Nothing more is decoded once a close is asked, whichever kind: ZooKeeper answers
            // an unknown opcode or a closeSession and then reads nothing else.
            while taken < limits::SLICE_REQUESTS
                && !self.over_caps(unsent_max, held_max)
                && self.outbox.close_reason().is_none()
            {
                if !self.frames.ready(max_frame) {
                    break;
                }
                // Never wait for a unit with answers unwritten: they hold units too, and every
                // connection waiting so would wait forever. Write them first (below).
                let Some(permit) = spare.take().or_else(|| budget.try_take(&self.held)) else {
                    starved = true;
                    break;
                };
                let range = match self.frames.next(max_frame) {
                    Ok(Some(range)) => range,
                    Ok(None) => unreachable!("a whole frame or a bad length was buffered"),
                    Err(why) => return Some(why),
                };
                let result = self.handle(range, permit);
                self.shard.borrow_mut().move_outgoing(&mut for_core);
                for msg in for_core.drain(..) {
                    if to_core.send(msg).await.is_err() {
                        return Some("the core stopped".into());
                    }
                }
                if let Err(why) = result {
                    self.outbox.close(Close::AfterFlush(why.into()));
                }
                taken += 1;
            }
            if let Some(reason) = self.flush(&mut out_bytes, &mut out_permits).await {
                return Some(reason);
            }
            // Reads the shard left at the unsent cap can be answered now.
            if self.shard.borrow_mut().resume(self.id) {
                continue;
            }
            if starved {
                // Everything of ours is written: now wait for a unit, and stop waiting as
                // soon as answers of ours are queued (or a close is asked). The answers of
                // writes arrive while we wait (at their commit, not as we decode), each
                // holding its unit: left unwritten while every connection waits for a unit,
                // no unit would ever come back (32 connections pipelining setData against a
                // budget of 1000 all stopped so: tests/tests/limits.rs).
                let woke = futures_lite::future::or(
                    async { Wait::Unit(budget.take(&self.held).await) },
                    async { Wait::Woken(self.woken.recv().await.is_some()) },
                )
                .await;
                match woke {
                    Wait::Unit(Some(permit)) => spare = Some(permit),
                    // The top of the loop writes the answers, or sees the close.
                    Wait::Woken(true) => {}
                    Wait::Unit(None) | Wait::Woken(false) => {
                        return Some(self.close_why().unwrap_or_else(|| "shutting down".into()));
                    }
                }
                continue;
            }
            if taken == limits::SLICE_REQUESTS {
                // Let the shard's other connections have their turn.
                futures_lite::future::yield_now().await;
                continue;
            }
            let may_decode = !self.over_caps(unsent_max, held_max);
            if may_decode && self.frames.ready(max_frame) {
                continue;
            }
            // While over its caps the connection reads nothing more: the client's own socket
            // buffers push back on it, and its session expires if it stays silent.
            let event = if may_decode {
                let (stream, spare, woken) = (&mut *self.stream, self.frames.spare(), self.woken);
                futures_lite::future::or(async { Event::Read(stream.read(spare).await) }, async {
                    Event::Woken(woken.recv().await.is_some())
                })
                .await
            } else {
                Event::Woken(self.woken.recv().await.is_some())
            };
            match event {
                Event::Read(Ok(0)) => return None,
                Event::Read(Ok(n)) => self.frames.filled(n),
                Event::Read(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Some(if self.connected {
                        "no packet within the session timeout".into()
                    } else {
                        format!("no handshake within {} ms", limits::HANDSHAKE_TIMEOUT_MS)
                    })
                }
                // TLS's word for a client that closed without close_notify, as most do.
                Event::Read(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return None
                }
                Event::Read(Err(e)) => return Some(format!("read failed: {e}")),
                // Answers were queued, or a close asked: the top of the loop sees them.
                Event::Woken(true) => {}
                Event::Woken(false) => return Some("shard dropped the connection".into()),
            }
        }
    }

    /// Whether the connection holds its share of the budget or has too many unsent bytes:
    /// then it decodes nothing more until its answers are written.
    fn over_caps(&self, unsent_max: usize, held_max: u32) -> bool {
        self.outbox.unsent() > unsent_max || self.held.get() >= held_max
    }

    fn close_why(&self) -> Option<String> {
        match self.outbox.close_reason()? {
            Close::Now(why) | Close::AfterFlush(why) => Some(why.into_owned()),
        }
    }

    /// One whole frame, with the permit taken for it.
    fn handle(&mut self, range: std::ops::Range<usize>, permit: Permit) -> Result<(), String> {
        let frame = &self.frames.buf[range];
        if self.connected {
            return handle_packet(self.shard, self.id, frame, permit);
        }
        self.connected = true;
        handle_connect(self.shard, self.id, frame, permit)?;
        // The session's expiry (on the core) closes a silent client's connection; this is only
        // a safety net should the core never answer.
        let timeout = self.shard.borrow().timeout_of(self.id).max(1) as u64;
        let _ = self.stream.set_read_timeout(Some(Duration::from_millis(
            2 * timeout + limits::HANDSHAKE_TIMEOUT_MS,
        )));
        Ok(())
    }

    /// Writes everything queued, in one write per wake-up, once every shard has installed the
    /// view these answers were computed from (views.rs); drops the answers' permits once their
    /// bytes are on the socket. A close at once cuts a write short. Returns why the connection
    /// ends, if it does.
    async fn flush(
        &mut self,
        out_bytes: &mut Vec<u8>,
        out_permits: &mut Vec<Permit>,
    ) -> Option<String> {
        loop {
            if self.outbox.closing_now() {
                return self.close_why();
            }
            if self.outbox.is_empty() {
                break;
            }
            self.outbox.take(out_bytes, out_permits);
            let (views, view) = {
                let s = self.shard.borrow();
                (s.views.clone(), s.batches)
            };
            views.wait_for(view).await;
            let (stream, outbox, woken) = (&mut *self.stream, self.outbox, self.woken);
            let written = futures_lite::future::or(
                async {
                    let written = stream.write_all(out_bytes).await;
                    // TLS keeps what it encrypted until flushed; plain TCP has nothing buffered.
                    Some(match written {
                        Ok(()) => stream.flush().await,
                        Err(e) => Err(e),
                    })
                },
                async {
                    wait_close(outbox, woken).await;
                    None
                },
            )
            .await;
            self.outbox.written();
            out_bytes.clear();
            out_permits.clear();
            match written {
                Some(Ok(())) => {}
                Some(Err(e)) => return Some(format!("write failed: {e}")),
                None => return self.close_why(),
            }
        }
        self.close_why()
    }
}

/// Resolves when the connection must stop writing: at once for a close at once, and for a
/// close after a flush once the flush has had [`limits::CLOSE_FLUSH_MS`] (a client that does
/// not read cannot hold the connection open). Consumes wake-ups: callers look at the outbox
/// again after it.
async fn wait_close(outbox: &Outbox, woken: &LocalReceiver<()>) {
    loop {
        match outbox.close_reason() {
            Some(Close::Now(_)) => return,
            Some(Close::AfterFlush(_)) => {
                glommio::timer::sleep(Duration::from_millis(limits::CLOSE_FLUSH_MS)).await;
                return;
            }
            None => {
                if woken.recv().await.is_none() {
                    return;
                }
            }
        }
    }
}

/// The bytes read from a client and not yet taken as frames. A read lands in the buffer's
/// spare tail (no copy out of a read buffer of its own: that copy was 1.2% of a saturated
/// server's CPU per 1 KiB setData), and frames are handed out as ranges of the buffer,
/// without copying; consumed bytes are dropped once per socket read.
#[derive(Debug)]
struct Frames {
    /// `start..end` is pending; past `end`, room for the next read.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes asked of each read: a page until a read fills it, so that idle and half-open
    /// connections cost a page, not a whole read buffer; then [`limits::READ_CHUNK_BYTES`].
    read_size: usize,
}

impl Default for Frames {
    fn default() -> Self {
        Frames {
            buf: Vec::new(),
            start: 0,
            end: 0,
            read_size: limits::READ_CHUNK_BYTES_FIRST,
        }
    }
}

impl Frames {
    /// Room for the next read, after the pending bytes (moved to the front first).
    fn spare(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.end + self.read_size;
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        &mut self.buf[self.end..want]
    }

    /// `n` bytes were read into [`Frames::spare`].
    fn filled(&mut self, n: usize) {
        if n == self.read_size && n < limits::READ_CHUNK_BYTES {
            self.read_size = limits::READ_CHUNK_BYTES;
        }
        self.end += n;
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Whether `next` has something to say without another read: a whole frame, or a length
    /// it will refuse (known as soon as the length is, never after buffering the frame).
    fn ready(&self, max_frame: usize) -> bool {
        let rest = self.pending();
        if rest.len() < 4 {
            return false;
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        len < 0 || len as usize > max_frame || rest.len() >= 4 + len as usize
    }

    /// The next whole length-prefixed frame's body, if buffered. A negative or oversized
    /// length ends the connection, as ZooKeeper's "Len error".
    fn next(&mut self, max_frame: usize) -> Result<Option<std::ops::Range<usize>>, String> {
        let rest = self.pending();
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len < 0 || len as usize > max_frame {
            return Err(format!(
                "packet length {len} is outside 0..={max_frame} (jute.maxbuffer)"
            ));
        }
        let len = len as usize;
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let body = self.start + 4..self.start + 4 + len;
        self.start += 4 + len;
        Ok(Some(body))
    }
}

/// A malformed handshake drops its permit with the error.
fn handle_connect(
    shard: &Rc<RefCell<Shard>>,
    id: u64,
    frame: &[u8],
    permit: Permit,
) -> Result<(), String> {
    let (req, read_only) = ConnectRequest::decode_handshake(frame)
        .map_err(|e| format!("malformed connect request: {e}"))?;
    shard.borrow_mut().on_connect(id, req, read_only, permit)
}

fn handle_packet(
    shard: &Rc<RefCell<Shard>>,
    id: u64,
    frame: &[u8],
    permit: Permit,
) -> Result<(), String> {
    let mut r = Reader::new(frame);
    let header =
        RequestHeader::decode(&mut r).map_err(|e| format!("malformed request header: {e}"))?;
    shard.borrow_mut().on_packet(id, header, r.rest(), permit)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Frames {
        /// What reads of `bytes` leave.
        fn extend(&mut self, mut bytes: &[u8]) {
            while !bytes.is_empty() {
                let spare = self.spare();
                let n = spare.len().min(bytes.len());
                spare[..n].copy_from_slice(&bytes[..n]);
                self.filled(n);
                bytes = &bytes[n..];
            }
        }
    }

    #[test]
    fn frames_split_and_bad_lengths_are_refused() {
        let mut frames = Frames::default();
        frames.extend(&[0, 0, 0, 2, 7, 8, 0, 0]);
        let body = frames.next(100).unwrap().unwrap();
        assert_eq!(&frames.buf[body], &[7, 8]);
        assert_eq!(frames.next(100), Ok(None));
        frames.extend(&[0, 1, 9]);
        let body = frames.next(100).unwrap().unwrap();
        assert_eq!(&frames.buf[body], &[9]);
        let mut neg = Frames::default();
        neg.extend(&(-5i32).to_be_bytes());
        assert!(neg.next(100).is_err());
        let mut big = Frames::default();
        big.extend(&101i32.to_be_bytes());
        assert!(
            big.ready(100),
            "an oversized length is refused before its bytes come"
        );
        assert!(big.next(100).unwrap_err().contains("jute.maxbuffer"));
        let mut part = Frames::default();
        part.extend(&[0, 0, 0, 3, 1]);
        assert!(!part.ready(100));
        part.extend(&[2, 3]);
        assert!(part.ready(100));
    }

    #[test]
    fn reads_start_a_page_long_grow_once_filled_and_keep_what_is_pending() {
        let mut frames = Frames::default();
        assert_eq!(frames.spare().len(), limits::READ_CHUNK_BYTES_FIRST);
        frames.filled(10);
        assert_eq!(frames.spare().len(), limits::READ_CHUNK_BYTES_FIRST);
        // A frame of 5000 bytes arrives over reads that fill the page, then the rest.
        let mut frames = Frames::default();
        let mut wire = 5000i32.to_be_bytes().to_vec();
        wire.extend((0..5000).map(|i| (i % 251) as u8));
        wire.extend([0, 0, 0, 1, 42, 0, 0]);
        frames.extend(&wire);
        assert_eq!(frames.read_size, limits::READ_CHUNK_BYTES);
        let body = frames.next(1 << 20).unwrap().unwrap();
        assert_eq!(&frames.buf[body], &wire[4..5004]);
        let body = frames.next(1 << 20).unwrap().unwrap();
        assert_eq!(&frames.buf[body], &[42]);
        // The partial length stays pending, moved to the front by the next read.
        assert_eq!(frames.pending(), &[0, 0]);
        let spare = frames.spare();
        assert_eq!(spare.len(), limits::READ_CHUNK_BYTES);
        spare[..3].copy_from_slice(&[0, 1, 7]);
        frames.filled(3);
        assert_eq!((frames.start, frames.end), (0, 5));
        let body = frames.next(1 << 20).unwrap().unwrap();
        assert_eq!(&frames.buf[body], &[7]);
    }
}
