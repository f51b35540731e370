//! Links between ensemble members, on the ZAB core's executor: glommio TCP, one connection
//! per direction per pair. Each member dials every other member's quorum port and only
//! writes on the connections it dialled; it only reads on the ones it accepted. That keeps
//! both directions independent (no duplicate-connection tie-break as in ZooKeeper's
//! QuorumCnxManager) at the cost of two sockets per pair.
//!
//! A dialled connection opens with a hello (`ZCZH`, version, the dialler's myid, all
//! big-endian; version 2 adds the dialler's own quorum address, a u16 length and
//! `host:port`), then carries `zoocore_zab::Message` frames.
//!
//! The set of peers changes at run time (dynamic reconfiguration): `Peers::update` starts
//! dialling the members a reconfig added and stops dialling those it removed. A server that
//! is not a member yet (one joining, started with the ensemble and itself) is accepted, and
//! its hello's address is reported (`Event::Hello`) so that this member dials it back: it
//! must be synchronised as a learner before a reconfig can add it, as ZooKeeper's leader
//! syncs a learner it does not know as a non-voter. Frames queued for a peer wait in
//! a bounded queue. A frame is never dropped from a live connection: a full queue resets the
//! link (the connection is closed and what was queued is discarded), as does the driver when
//! its leader steps down. Either end of a closed or reset link reports it (`LinkDown`), and a
//! learner whose link with its leader is gone in either direction goes Looking, as ZooKeeper's
//! follower does when its one socket to the leader fails: so a forwarded request is always
//! answered or ends with the client's connection, never silently lost. Frames queued while a
//! peer is unreachable wait for the connection (up to the queue's bound); those queued on a
//! connection that broke are discarded with it. A broken link is re-dialled with exponential
//! backoff.
//!
//! With quorum TLS (peer_tls.rs) a dialled link is TLS before its hello, and the quorum port
//! takes TLS links, plain ones, or both (`portUnification`), by the link's first byte.
//!
//! Anything malformed from a peer (bad hello, unknown member, a frame that does not decode,
//! a forwarded request that does not decode, a failed TLS handshake, a plain link where TLS
//! is required) closes that link with a logged reason; it never panics the server.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use futures_lite::future::poll_once;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use zoocore_zab::{Frame, Message, Payload, ServerId};

use crate::ensemble::Event;
use crate::forward::Forward;
use crate::limits;
use crate::peer_tls::{self, PeerTls};

const HELLO_MAGIC: [u8; 4] = *b"ZCZH";
const HELLO_VERSION: u32 = 2;
/// The hello without an address, which members before dynamic reconfiguration send.
const HELLO_VERSION_PLAIN: u32 = 1;
const HELLO_BYTES: usize = 16;
/// The longest `host:port` a hello may carry.
const HELLO_ADDR_MAX: usize = 512;

/// The sending end of one peer link.
struct Link {
    tx: LocalSender<Frame>,
    /// Set to make the dialler close the connection and discard what is queued.
    reset: Rc<Cell<bool>>,
    /// Set when the peer left the configuration: its dialler stops.
    gone: Rc<Cell<bool>>,
    addr: SocketAddr,
}

/// A member's address as its `server.N` line gives it: the resolved quorum address and the
/// host as written (for TLS).
pub type PeerAddr = (SocketAddr, String);

/// The sending ends of every peer link.
pub struct Peers {
    myid: ServerId,
    /// What this member's hello says its quorum address is.
    advertised: String,
    out: BTreeMap<ServerId, Link>,
    /// The members of the configuration in effect (others are dialled because they dialled
    /// this member: servers joining).
    configured: std::collections::BTreeSet<ServerId>,
    /// Where each server that dialled this member said it listens.
    heard: BTreeMap<ServerId, String>,
    tls: Option<Rc<PeerTls>>,
    events: Rc<LocalSender<Event>>,
}

impl Peers {
    /// Dials `id` at `addr` from now on (replacing a link to another address).
    pub fn add(&mut self, id: ServerId, peer: PeerAddr) {
        if id == self.myid || self.out.get(&id).is_some_and(|l| l.addr == peer.0) {
            return;
        }
        self.remove(id);
        let (addr, host) = peer;
        let (tx, rx) = local_channel::new_bounded::<Frame>(limits::PEER_QUEUE_FRAMES);
        let reset = Rc::new(Cell::new(false));
        let gone = Rc::new(Cell::new(false));
        self.out.insert(
            id,
            Link {
                tx,
                reset: reset.clone(),
                gone: gone.clone(),
                addr,
            },
        );
        let events = self.events.clone();
        let link = Dialler {
            myid: self.myid,
            advertised: self.advertised.clone(),
            peer: id,
            addr,
            host,
            tls: self.tls.clone(),
            rx,
            reset,
            gone,
        };
        glommio::spawn_local(async move { link.run(&events).await }).detach();
    }

    /// Stops dialling `id`. What is queued for it is still written (the COMMIT of the
    /// reconfig that removed it, typically), then its link closes.
    pub fn remove(&mut self, id: ServerId) {
        if let Some(link) = self.out.remove(&id) {
            link.gone.set(true);
            // Wakes a dialler waiting for frames: the channel is closed once `link` drops.
            let _ = link.tx.try_send(Frame::from(Vec::new()));
            tracing::info!("peer {id}: no longer dialled");
        }
    }

    /// Where `id` said it listens when it last dialled this member.
    pub fn heard_at(&self, id: ServerId) -> Option<&str> {
        self.heard.get(&id).map(String::as_str)
    }

    /// Notes where `id` says it listens (its hello).
    pub fn heard(&mut self, id: ServerId, addr: String) {
        self.heard.insert(id, addr);
    }

    /// Whether this member dials `id`.
    pub fn knows(&self, id: ServerId) -> bool {
        self.out.contains_key(&id)
    }

    /// A new configuration: dial every member of it (at its address there), stop dialling
    /// the members of the previous one it left out. A server dialled because it dialled
    /// this member (joining) is kept: a later reconfig may add it.
    pub fn update(&mut self, members: &BTreeMap<ServerId, PeerAddr>) {
        let old: Vec<ServerId> = self.configured.iter().copied().collect();
        for id in old {
            if !members.contains_key(&id) {
                self.remove(id);
            }
        }
        self.configured = members.keys().copied().collect();
        for (id, peer) in members {
            self.add(*id, peer.clone());
        }
    }

    /// Queues `frame` for `to`. When the link's queue is full the link is reset and `false`
    /// returned: the frame and everything queued before it will not arrive.
    pub fn send(&mut self, to: ServerId, frame: Frame) -> bool {
        let Some(link) = self.out.get(&to) else {
            return true;
        };
        if link.tx.try_send(frame).is_ok() {
            return true;
        }
        if !link.reset.get() {
            tracing::warn!("the queue to peer {to} is full: resetting the link");
        }
        link.reset.set(true);
        false
    }

    /// Closes every link this member dialled (their peers see them close) and discards what
    /// is queued on them; they are re-dialled at once.
    pub fn reset_all(&mut self) {
        for link in self.out.values() {
            link.reset.set(true);
            // Wakes a dialler waiting for frames; a full queue's dialler is awake already.
            let _ = link.tx.try_send(Frame::from(Vec::new()));
        }
    }
}

/// Starts a listener on each address of `listen` (the quorum port, and a voter's
/// `observerMasterPort`, where observers dial it: both take the same links) and a dialler
/// for every other member (the address to dial, and its host as zoo.cfg names it, for
/// TLS). Received messages go to `events`. `advertised` is this member's own quorum
/// address as its server line writes it (`host:port`).
pub fn start(
    myid: ServerId,
    listen: &[SocketAddr],
    advertised: String,
    members: &BTreeMap<ServerId, PeerAddr>,
    tls: Option<Rc<PeerTls>>,
    events: Rc<LocalSender<Event>>,
) -> std::io::Result<Peers> {
    for &addr in listen {
        let listener = crate::listen::listen(addr)?;
        let events = events.clone();
        let tls = tls.clone();
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let (events, tls) = (events.clone(), tls.clone());
                        glommio::spawn_local(async move {
                            let addr = stream.peer_addr().ok();
                            let mut from = None;
                            let result =
                                accept_link(myid, stream, tls.as_deref(), &events, &mut from).await;
                            if let Err(why) = result {
                                tracing::info!("peer link from {addr:?} closed: {why}");
                            }
                            if let Some(peer) = from {
                                let _ = events.send(Event::LinkDown { peer }).await;
                            }
                        })
                        .detach();
                    }
                    Err(e) => {
                        tracing::warn!("accept on the peer port {addr} failed: {e}");
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        })
        .detach();
    }
    let mut peers = Peers {
        myid,
        advertised,
        out: BTreeMap::new(),
        configured: Default::default(),
        heard: BTreeMap::new(),
        tls,
        events,
    };
    peers.update(members);
    Ok(peers)
}

/// The task that keeps one outgoing connection up and writes its queued frames.
struct Dialler {
    myid: ServerId,
    advertised: String,
    peer: ServerId,
    addr: SocketAddr,
    /// The peer's host as its `server.N` line names it: the name its certificate carries.
    host: String,
    tls: Option<Rc<PeerTls>>,
    rx: LocalReceiver<Frame>,
    reset: Rc<Cell<bool>>,
    gone: Rc<Cell<bool>>,
}

impl Dialler {
    /// Throws away what is queued (frames of a connection that is gone).
    async fn discard_queued(&self) {
        while let Some(Some(_)) = poll_once(self.rx.recv()).await {}
        self.reset.set(false);
    }

    async fn run(self, events: &LocalSender<Event>) {
        let mut backoff = Duration::from_millis(limits::PEER_BACKOFF_MS_MIN);
        loop {
            if self.gone.get() {
                return; // the peer left the configuration
            }
            let connected = TcpStream::connect_timeout(
                self.addr,
                Duration::from_millis(limits::PEER_CONNECT_MS),
            )
            .await;
            let stream = match connected {
                Ok(s) => s,
                Err(_) => {
                    // What is queued waits for the connection (a member starting up listens
                    // a moment after its peers dial it); a full queue resets the link.
                    glommio::timer::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(limits::PEER_BACKOFF_MS_MAX));
                    continue;
                }
            };
            backoff = Duration::from_millis(limits::PEER_BACKOFF_MS_MIN);
            tracing::debug!("connected to peer {} at {}", self.peer, self.addr);
            let _ = stream.set_nodelay(true);
            let written = match self.tls.as_ref().and_then(|t| t.connector.clone()) {
                None => self.write_link(stream).await,
                Some(connector) => match self.tls_handshake(connector, stream).await {
                    Ok(stream) => self.write_link(stream).await,
                    Err(why) => Err(why),
                },
            };
            match written {
                Ok(()) => return, // the driver is gone
                Err(why) => tracing::info!("peer link to {} at {}: {why}", self.peer, self.addr),
            }
            self.discard_queued().await;
            if events
                .send(Event::LinkDown { peer: self.peer })
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// The TLS handshake of a dialled link, bounded like a client's.
    async fn tls_handshake(
        &self,
        connector: futures_rustls::TlsConnector,
        stream: TcpStream,
    ) -> Result<futures_rustls::client::TlsStream<TcpStream>, String> {
        let name = peer_tls::server_name(&self.host)?;
        let limit = Duration::from_millis(limits::HANDSHAKE_TIMEOUT_MS);
        futures_lite::future::or(
            async {
                connector
                    .connect(name, stream)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))
            },
            async {
                glommio::timer::sleep(limit).await;
                Err(format!("no TLS handshake within {limit:?}"))
            },
        )
        .await
    }

    /// Writes the hello and then the queued frames until the link breaks or is reset.
    async fn write_link<S: AsyncWrite + Unpin>(&self, mut stream: S) -> Result<(), String> {
        let mut hello = Vec::with_capacity(HELLO_BYTES);
        hello.extend_from_slice(&HELLO_MAGIC);
        hello.extend_from_slice(&HELLO_VERSION.to_be_bytes());
        hello.extend_from_slice(&self.myid.to_be_bytes());
        let addr = self.advertised.as_bytes();
        hello.extend_from_slice(&(addr.len() as u16).to_be_bytes());
        hello.extend_from_slice(addr);
        stream
            .write_all(&hello)
            .await
            .map_err(|e| format!("hello failed: {e}"))?;
        // Write whatever is queued in one go, straight from the frames (a proposal's txn
        // is the buffer every follower's frame shares); wait for more when the queue is empty.
        let mut frames = Vec::new();
        loop {
            let Some(first) = self.rx.recv().await else {
                return Ok(());
            };
            if first.is_empty() && self.gone.get() {
                return Ok(()); // removed: what was queued before is written
            }
            frames.clear();
            let mut bytes = first.len();
            frames.push(first);
            while bytes < limits::PEER_WRITE_BYTES && frames.len() < limits::PEER_WRITE_FRAMES {
                match poll_once(self.rx.recv()).await {
                    Some(Some(frame)) => {
                        bytes += frame.len();
                        frames.push(frame);
                    }
                    _ => break,
                }
            }
            if self.reset.get() {
                return Err("reset".into());
            }
            write_frames(&mut stream, &frames)
                .await
                .map_err(|e| format!("broke: {e}"))?;
            // A TLS stream may hold records back until flushed; a plain one holds none.
            stream.flush().await.map_err(|e| format!("broke: {e}"))?;
        }
    }
}

/// Writes `frames` in order, as few `sendmsg` calls as the socket takes them in.
async fn write_frames<S: AsyncWrite + Unpin>(stream: &mut S, frames: &[Frame]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = frames
        .iter()
        .flat_map(Frame::parts)
        .filter(|part| !part.is_empty())
        .map(IoSlice::new)
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = stream.write_vectored(rest).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// An accepted link: TLS or plain as the quorum port takes them (its first byte tells which
/// with `portUnification`), then read as [`read_link`] does.
async fn accept_link(
    myid: ServerId,
    stream: TcpStream,
    tls: Option<&PeerTls>,
    events: &LocalSender<Event>,
    peer: &mut Option<ServerId>,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return read_link(myid, stream, events, peer).await;
    };
    let limit = Duration::from_millis(limits::HANDSHAKE_TIMEOUT_MS);
    let is_tls = crate::conn::starts_tls(&stream, limit).await;
    match (is_tls, tls.accept_tls, tls.accept_plain) {
        (true, true, _) => {
            let accepted = futures_lite::future::or(
                async { tls.acceptor.accept(stream).await.map_err(|e| e.to_string()) },
                async {
                    glommio::timer::sleep(limit).await;
                    Err(format!("no TLS handshake within {limit:?}"))
                },
            )
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
            read_link(myid, accepted, events, peer).await
        }
        (false, _, true) => read_link(myid, stream, events, peer).await,
        (false, _, false) => {
            Err("a plain link, and sslQuorum requires TLS (portUnification is off)".into())
        }
        (true, false, _) => Err("a TLS link, and sslQuorum is off".into()),
    }
}

/// Reads one accepted connection: the hello, then frames until it closes. An error is the
/// reason the link was closed.
async fn read_link<S: AsyncRead + Unpin>(
    myid: ServerId,
    mut stream: S,
    events: &LocalSender<Event>,
    peer: &mut Option<ServerId>,
) -> Result<(), String> {
    let mut hello = [0u8; HELLO_BYTES];
    stream
        .read_exact(&mut hello)
        .await
        .map_err(|e| format!("no hello: {e}"))?;
    if hello[0..4] != HELLO_MAGIC {
        return Err(format!("bad hello magic {:02x?}", &hello[0..4]));
    }
    let version = u32::from_be_bytes([hello[4], hello[5], hello[6], hello[7]]);
    if version != HELLO_VERSION && version != HELLO_VERSION_PLAIN {
        return Err(format!("unsupported peer protocol version {version}"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&hello[8..16]);
    let from = u64::from_be_bytes(id);
    if from == myid {
        return Err(format!("hello from {from}, this server's own id"));
    }
    let mut addr = String::new();
    if version == HELLO_VERSION {
        let mut len = [0u8; 2];
        stream
            .read_exact(&mut len)
            .await
            .map_err(|e| format!("no hello address: {e}"))?;
        let len = usize::from(u16::from_be_bytes(len));
        if len > HELLO_ADDR_MAX {
            return Err(format!("hello address of {len} bytes"));
        }
        let mut bytes = vec![0u8; len];
        stream
            .read_exact(&mut bytes)
            .await
            .map_err(|e| format!("no hello address: {e}"))?;
        addr = String::from_utf8(bytes).map_err(|_| "hello address is not UTF-8".to_string())?;
    }
    *peer = Some(from);
    // Every link's dialler tells where it listens: a server this member does not know yet
    // (one joining by reconfig) is dialled back there.
    if !addr.is_empty() && events.send(Event::Hello { from, addr }).await.is_err() {
        return Ok(());
    }
    // Frames are split off the front of the buffer they were read into. When the whole
    // frames a read brought make at least `PEER_SHARE_READ_MIN_BYTES` they are decoded in
    // place, so under load a proposal's txn is never copied out of the bytes this link
    // read: the buffer is shared by those frames and freed with the last of them. Fewer
    // (a link carrying little) are each copied out first, so that what a member keeps (its
    // history keeps 10,000 proposals) never holds a buffer of pings each: a buffer is held
    // only by frames decoded in place together, at least a quarter of it. A partial frame
    // at a buffer's end moves to the next one.
    let mut buf = BytesMut::zeroed(limits::PEER_READ_BUFFER_BYTES);
    let mut end = 0usize; // buf[..end] is read and not yet decoded
    loop {
        let bad = |e| format!("bad frame from {from}: {e}");
        // The whole frames at the front, and the length of the partial one after them.
        let mut whole = 0usize;
        let need = loop {
            match Message::frame_len(&buf[whole..end]).map_err(bad)? {
                Some(len) if whole + len <= end => whole += len,
                partial => break partial,
            }
        };
        let in_place = whole >= limits::PEER_SHARE_READ_MIN_BYTES;
        while let Some(len) = Message::frame_len(&buf[..whole]).map_err(bad)? {
            let frame = buf.split_to(len).freeze();
            (whole, end) = (whole - len, end - len);
            let frame = if in_place {
                frame
            } else {
                Payload::copy_from_slice(&frame)
            };
            let event = match Message::decode_shared(&frame).map_err(bad)? {
                Message::Forward { data } => {
                    // A forwarded write's data is held only until its proposal is built.
                    let fwd = Forward::decode_shared(&data)
                        .map_err(|e| format!("bad forwarded message from {from}: {e}"))?;
                    Event::Forward { from, msg: fwd }
                }
                msg => Event::Peer { from, msg },
            };
            if events.send(event).await.is_err() {
                return Ok(());
            }
        }
        // A new buffer when the next frame is larger than this one, or when too little room
        // is left to start one (a frame that fits is read to its end here).
        let renew = match need {
            Some(len) => len > buf.len(),
            None => buf.len() - end < limits::READ_CHUNK_BYTES_FIRST,
        };
        if renew {
            let len = need.unwrap_or(0).max(limits::PEER_READ_BUFFER_BYTES);
            let mut next = BytesMut::zeroed(len);
            next[..end].copy_from_slice(&buf[..end]);
            buf = next;
        }
        let n = stream
            .read(&mut buf[end..])
            .await
            .map_err(|e| format!("read from {from} failed: {e}"))?;
        if n == 0 {
            return Err(format!("peer {from} closed the link"));
        }
        end += n;
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use zoocore_proto::Zxid;

    use super::*;

    /// A socket that takes at most `max` bytes a call, over as many buffers as they span.
    struct Trickle {
        max: usize,
        calls: usize,
        written: Vec<u8>,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            let mut room = self.max;
            for b in bufs {
                let n = b.len().min(room);
                self.written.extend_from_slice(&b[..n]);
                room -= n;
            }
            Poll::Ready(Ok(self.max - room))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Frames with shared data reach the socket whole and in order however it splits the
    /// writes: a short write resumes inside a buffer, or at the next one.
    #[test]
    fn frames_are_written_whole_through_short_writes() {
        let txn = Payload::from(vec![5u8; 3000]);
        let frames: Vec<Frame> = (0..4)
            .map(|i| {
                Message::Proposal {
                    conn: i,
                    prev: Zxid(i as i64),
                    zxid: Zxid(i as i64 + 1),
                    data: txn.clone(),
                }
                .encode_frame()
            })
            .chain([Message::Commit {
                conn: 9,
                zxid: Zxid(4),
            }
            .encode_frame()])
            .collect();
        let whole: Vec<u8> = frames.iter().cloned().flat_map(Frame::into_vec).collect();
        for max in [1, 7, 44, 1000, 3044, 1 << 20] {
            let mut socket = Trickle {
                max,
                calls: 0,
                written: Vec::new(),
            };
            futures_lite::future::block_on(write_frames(&mut socket, &frames)).unwrap();
            assert_eq!(socket.written, whole, "{max} bytes a call");
            assert_eq!(
                socket.calls,
                whole.len().div_ceil(max),
                "{max} bytes a call"
            );
        }
    }

    /// A socket that takes nothing is an error, not a loop.
    #[test]
    fn a_socket_that_takes_nothing_is_an_error() {
        let mut socket = Trickle {
            max: 0,
            calls: 0,
            written: Vec::new(),
        };
        let frames = [Message::Commit {
            conn: 1,
            zxid: Zxid(1),
        }
        .encode_frame()];
        let err = futures_lite::future::block_on(write_frames(&mut socket, &frames)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
    }

    /// A socket that gives at most `max` bytes a read, then the end of the stream.
    struct Drip {
        bytes: Vec<u8>,
        at: usize,
        max: usize,
    }

    impl AsyncRead for Drip {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max).min(self.bytes.len() - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Poll::Ready(Ok(n))
        }
    }

    /// Reads `bytes` (after a hello from member 2) through `read_link` at `max` bytes a
    /// read: the messages it reported, and why it closed.
    fn read_all(bytes: &[u8], max: usize) -> (Vec<Message>, String) {
        let mut stream = HELLO_MAGIC.to_vec();
        stream.extend_from_slice(&HELLO_VERSION_PLAIN.to_be_bytes());
        stream.extend_from_slice(&2u64.to_be_bytes());
        stream.extend_from_slice(bytes);
        let drip = Drip {
            bytes: stream,
            at: 0,
            max,
        };
        let (events, received) = local_channel::new_bounded(1024);
        let mut peer = None;
        let closed = futures_lite::future::block_on(read_link(1, drip, &events, &mut peer))
            .expect_err("the stream ends");
        assert_eq!(peer, Some(2));
        drop(events);
        let mut msgs = Vec::new();
        while let Some(event) = futures_lite::future::block_on(received.recv()) {
            match event {
                Event::Peer { from: 2, msg } => msgs.push(msg),
                _ => panic!("only messages from member 2 were sent"),
            }
        }
        (msgs, closed)
    }

    /// Frames of every size reach the core whole and in order however the socket splits
    /// them, a frame larger than the read buffer included; proposals read with enough
    /// others are decoded in place, their txns slices of the bytes read, and one read with
    /// few is a copy that holds no read buffer.
    #[test]
    fn frames_are_read_whole_and_decoded_in_place() {
        let sizes = [0usize, 1, 1100, 1100, 1100, 70_000, 3, 5000, 1100, 1100];
        let msgs: Vec<Message> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, &size)| {
                let zxid = Zxid(i as i64 + 1);
                let data = Payload::from(vec![i as u8; size]);
                [
                    Message::Proposal {
                        conn: 7,
                        prev: Zxid(i as i64),
                        zxid,
                        data,
                    },
                    Message::Commit { conn: 7, zxid },
                ]
            })
            .collect();
        let bytes: Vec<u8> = msgs.iter().flat_map(Message::encode).collect();
        for max in [1, 7, 16, 1000, 4096, 65_536, 1 << 20] {
            let (read, closed) = read_all(&bytes, max);
            assert_eq!(read, msgs, "{max} bytes a read");
            assert_eq!(closed, "peer 2 closed the link");
        }
        fn txn(m: &Message) -> &Payload {
            match m {
                Message::Proposal { data, .. } => data,
                _ => panic!("not a proposal"),
            }
        }
        // Read at once: the last two proposals' txns lie in one buffer, a frame apart.
        let (read, _) = read_all(&bytes, 1 << 20);
        let proposal_and_commit = msgs[16].encode().len() + msgs[17].encode().len();
        let (a, b) = (txn(&read[16]), txn(&read[18]));
        assert_eq!(
            b.as_ptr() as usize - a.as_ptr() as usize,
            proposal_and_commit
        );
        assert!(!a.is_unique(), "shares its read buffer");
        // Read a little at a time: every txn smaller than what is shared is its own copy.
        let (read, _) = read_all(&bytes, 1000);
        for m in read.iter().step_by(2) {
            let data = txn(m);
            if !data.is_empty() && data.len() < limits::PEER_SHARE_READ_MIN_BYTES {
                assert!(data.is_unique(), "a copy, holding no read buffer");
            }
        }
    }

    /// A corrupt frame closes the link with its reason, after the frames before it; a
    /// header that claims more than a frame may hold is refused before anything is read
    /// or allocated for it.
    #[test]
    fn a_bad_frame_closes_the_link() {
        let good = Message::Commit {
            conn: 1,
            zxid: Zxid(1),
        };
        let mut bytes = good.encode();
        let mut corrupt = good.encode();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        bytes.extend_from_slice(&corrupt);
        let (read, closed) = read_all(&bytes, 1 << 20);
        assert_eq!(read, vec![good.clone()]);
        assert!(
            closed.starts_with("bad frame from 2: frame checksum mismatch"),
            "{closed}"
        );

        let mut huge = good.encode();
        huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        let (read, closed) = read_all(&huge[..16], 1 << 20);
        assert!(read.is_empty());
        assert!(closed.contains("exceeds the limit"), "{closed}");
    }
}
