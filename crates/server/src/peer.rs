//! Links between ensemble members, on the ZAB core's executor: glommio TCP, one connection
//! per direction per pair. Each member dials every other member's quorum port and only
//! writes on the connections it dialled; it only reads on the ones it accepted. That keeps
//! both directions independent (no duplicate-connection tie-break as in ZooKeeper's
//! QuorumCnxManager) at the cost of two sockets per pair.
//!
//! A dialled connection opens with a hello (`ZCZH`, version, the dialler's myid, all
//! big-endian), then carries `zoocore_zab::Message` frames. Frames queued for a peer wait in
//! a bounded queue; when it is full, or a connection breaks, frames are dropped: ZAB treats
//! that as message loss (a gap in a learner session reconnects it, election notifications
//! are re-sent every tick). A broken link is re-dialled with exponential backoff.
//!
//! Anything malformed from a peer (bad hello, unknown member, a frame that does not decode,
//! a forwarded request that does not decode) closes that link with a logged reason; it never
//! panics the server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future::poll_once;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use zoocore_zab::{Message, ServerId};

use crate::ensemble::Event;
use crate::forward::Forward;
use crate::limits;

const HELLO_MAGIC: [u8; 4] = *b"ZCZH";
const HELLO_VERSION: u32 = 1;
const HELLO_BYTES: usize = 16;

/// The sending ends of every peer link.
pub struct Peers {
    out: BTreeMap<ServerId, LocalSender<Vec<u8>>>,
    pub dropped: u64,
}

impl Peers {
    /// Queues `frame` for `to`; drops it when the link's queue is full (message loss).
    pub fn send(&mut self, to: ServerId, frame: Vec<u8>) {
        if let Some(tx) = self.out.get(&to) {
            if tx.try_send(frame).is_err() {
                self.dropped += 1;
            }
        }
    }
}

/// Starts the listener on `listen` and a dialler for every other member. Received messages
/// go to `events`.
pub fn start(
    myid: ServerId,
    listen: SocketAddr,
    members: &BTreeMap<ServerId, SocketAddr>,
    events: Rc<LocalSender<Event>>,
) -> std::io::Result<Peers> {
    let listener = crate::topology::listen(listen)?;
    let known: Vec<ServerId> = members.keys().copied().collect();
    {
        let events = events.clone();
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) => {
                        let (events, known) = (events.clone(), known.clone());
                        glommio::spawn_local(async move {
                            let addr = stream.peer_addr().ok();
                            let mut from = None;
                            let result = read_link(myid, stream, &known, &events, &mut from).await;
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
                        tracing::warn!("accept on the quorum port failed: {e}");
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        })
        .detach();
    }
    let mut out = BTreeMap::new();
    for (&id, &addr) in members {
        if id == myid {
            continue;
        }
        let (tx, rx) = local_channel::new_bounded::<Vec<u8>>(limits::PEER_QUEUE_FRAMES);
        out.insert(id, tx);
        glommio::spawn_local(async move { dial_loop(myid, id, addr, rx).await }).detach();
    }
    Ok(Peers { out, dropped: 0 })
}

/// Keeps one outgoing connection to `peer` up and writes its queued frames.
async fn dial_loop(myid: ServerId, peer: ServerId, addr: SocketAddr, rx: LocalReceiver<Vec<u8>>) {
    let mut backoff = Duration::from_millis(limits::PEER_BACKOFF_MS_MIN);
    loop {
        let connected =
            TcpStream::connect_timeout(addr, Duration::from_millis(limits::PEER_CONNECT_MS)).await;
        let mut stream = match connected {
            Ok(s) => s,
            Err(_) => {
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(limits::PEER_BACKOFF_MS_MAX));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        backoff = Duration::from_millis(limits::PEER_BACKOFF_MS_MIN);
        tracing::debug!("connected to peer {peer} at {addr}");
        let mut hello = Vec::with_capacity(HELLO_BYTES);
        hello.extend_from_slice(&HELLO_MAGIC);
        hello.extend_from_slice(&HELLO_VERSION.to_be_bytes());
        hello.extend_from_slice(&myid.to_be_bytes());
        if stream.write_all(&hello).await.is_err() {
            continue;
        }
        // Write whatever is queued in one go; wait for more when the queue is empty.
        let mut buf = Vec::new();
        loop {
            let Some(first) = rx.recv().await else { return };
            buf.clear();
            buf.extend_from_slice(&first);
            while buf.len() < limits::PEER_WRITE_BYTES {
                match poll_once(rx.recv()).await {
                    Some(Some(frame)) => buf.extend_from_slice(&frame),
                    _ => break,
                }
            }
            if let Err(e) = stream.write_all(&buf).await {
                tracing::info!("peer link to {peer} at {addr} broke: {e}");
                break;
            }
        }
    }
}

/// Reads one accepted connection: the hello, then frames until it closes. An error is the
/// reason the link was closed.
async fn read_link(
    myid: ServerId,
    mut stream: TcpStream,
    known: &[ServerId],
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
    if version != HELLO_VERSION {
        return Err(format!("unsupported peer protocol version {version}"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&hello[8..16]);
    let from = u64::from_be_bytes(id);
    if from == myid || !known.contains(&from) {
        return Err(format!(
            "hello from {from}, not another member of this ensemble"
        ));
    }
    *peer = Some(from);
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; limits::READ_CHUNK_BYTES];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        // Take every whole frame in the buffer.
        loop {
            match Message::decode(&buf[start..end]) {
                Ok(Some((msg, used))) => {
                    start += used;
                    let event = match msg {
                        Message::Forward { data } => {
                            let fwd = Forward::decode(&data)
                                .map_err(|e| format!("bad forwarded message from {from}: {e}"))?;
                            Event::Forward { from, msg: fwd }
                        }
                        msg => Event::Peer { from, msg },
                    };
                    if events.send(event).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(format!("bad frame from {from}: {e}")),
            }
        }
        // Compact, and grow for a frame larger than the buffer.
        if start > 0 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            let need = frame_len(&buf[..end]).unwrap_or(buf.len() * 2);
            buf.resize(need.max(buf.len() * 2), 0);
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

/// The whole length of the frame at the start of `buf`, from its header.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let len = buf.get(8..12)?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    Some(zoocore_zab::msg::FRAME_HEADER_BYTES + len)
}
