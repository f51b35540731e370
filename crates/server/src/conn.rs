//! One client connection: framing, the handshake, four-letter words, and moving bytes
//! between the socket and the shard.
//!
//! The task owns the socket. It waits on whichever comes first, bytes from the client or an
//! answer queued by the shard; a glommio read is only a readiness poll until data is there,
//! so dropping the losing side loses nothing. Before it takes the next request off the wire it
//! takes one unit of the shard's outstanding budget: when the budget is spent the shard stops
//! reading sockets, which pushes back on clients instead of growing memory.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::TcpStream;
use zoocore_proto::records::{ConnectRequest, RequestHeader};
use zoocore_proto::{Reader, Record};

use crate::fourlw;
use crate::limits;
use crate::outbox::Outbox;
use crate::shard::Shard;
use crate::topology::Shared;

enum Event {
    Read(std::io::Result<usize>),
    Woken(bool),
}

/// Serves one accepted connection until either side closes it.
pub async fn serve(
    shard: Rc<RefCell<Shard>>,
    shared: Rc<Shared>,
    mut stream: TcpStream,
    addr: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(limits::HANDSHAKE_TIMEOUT_MS)));
    let mut frames = Frames::default();
    let mut chunk = vec![0u8; limits::READ_CHUNK_BYTES];

    // The first four bytes are either a frame length or a four-letter word.
    while frames.pending().len() < 4 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => frames.extend(&chunk[..n]),
        }
    }
    if let Some(word) = fourlw::word(&frames.pending()[..4]) {
        let text = fourlw::answer(&word, addr, &shared).await;
        let _ = stream.write_all(text.as_bytes()).await;
        let _ = stream.close().await;
        return;
    }

    let (outbox, woken) = Outbox::new();
    let outbox = Rc::new(outbox);
    let id = shard.borrow_mut().open(addr, outbox.clone());
    let reason = run(
        &shard,
        &mut stream,
        &mut frames,
        &mut chunk,
        id,
        &outbox,
        &woken,
    )
    .await;
    if let Some(reason) = reason {
        tracing::info!("closing connection from {addr}: {reason}");
    }
    // Flush what the shard queued before the close (an expired answer, a last response).
    let mut tail = Vec::new();
    outbox.take(&mut tail);
    if !tail.is_empty() {
        let _ = stream.write_all(&tail).await;
    }
    let _ = stream.close().await;
    shard.borrow_mut().close(id);
}

/// The connection's loop; returns why it ended, when that is worth logging.
async fn run(
    shard: &Rc<RefCell<Shard>>,
    stream: &mut TcpStream,
    frames: &mut Frames,
    chunk: &mut [u8],
    id: u64,
    outbox: &Outbox,
    woken: &LocalReceiver<()>,
) -> Option<String> {
    let max_frame = shard.borrow().cfg.jute_max_buffer as usize;
    let outstanding = shard.borrow().outstanding.clone();
    let mut connected = false;
    let mut pending_out = Vec::new();
    loop {
        // Take every whole frame already buffered.
        loop {
            let range = match frames.next(max_frame) {
                Ok(Some(range)) => range,
                Ok(None) => break,
                Err(why) => return Some(why),
            };
            if outstanding.acquire(1).await.is_err() {
                return Some("shutting down".into());
            }
            let frame = &frames.buf[range];
            let result = if connected {
                handle_packet(shard, id, frame)
            } else {
                connected = true;
                let r = handle_connect(shard, id, frame);
                if r.is_ok() {
                    // The session's expiry (on the core) closes a silent client's connection;
                    // this is only a safety net should the core never answer.
                    let timeout = shard.borrow().timeout_of(id).max(1) as u64;
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(
                        2 * timeout + limits::HANDSHAKE_TIMEOUT_MS,
                    )));
                }
                r
            };
            if let Err(why) = result {
                return Some(why);
            }
        }
        // Send whatever the shard queued, in one write, once every shard has installed the
        // view these answers were computed from (views.rs).
        let close = outbox.take(&mut pending_out);
        if !pending_out.is_empty() {
            let (views, view) = {
                let s = shard.borrow();
                (s.views.clone(), s.batches)
            };
            views.wait_for(view).await;
            if let Err(e) = stream.write_all(&pending_out).await {
                return Some(format!("write failed: {e}"));
            }
            pending_out.clear();
        }
        if let Some(why) = close {
            return Some(why.to_string());
        }
        let event =
            futures_lite::future::or(async { Event::Read(stream.read(chunk).await) }, async {
                Event::Woken(woken.recv().await.is_some())
            })
            .await;
        match event {
            Event::Read(Ok(0)) => return None,
            Event::Read(Ok(n)) => frames.extend(&chunk[..n]),
            Event::Read(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Some("no packet within the session timeout".into())
            }
            Event::Read(Err(e)) => return Some(format!("read failed: {e}")),
            // Answers were queued: the top of the loop writes them.
            Event::Woken(true) => {}
            Event::Woken(false) => return Some("shard dropped the connection".into()),
        }
    }
}

/// The bytes read from a client and not yet taken as frames. Frames are handed out as ranges
/// of the buffer, without copying; consumed bytes are dropped once per socket read.
#[derive(Debug, Default)]
struct Frames {
    buf: Vec<u8>,
    start: usize,
}

impl Frames {
    fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
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

fn handle_connect(shard: &Rc<RefCell<Shard>>, id: u64, frame: &[u8]) -> Result<(), String> {
    let (req, read_only) = ConnectRequest::decode_handshake(frame)
        .map_err(|e| format!("malformed connect request: {e}"))?;
    shard.borrow_mut().on_connect(id, req, read_only)
}

fn handle_packet(shard: &Rc<RefCell<Shard>>, id: u64, frame: &[u8]) -> Result<(), String> {
    let mut r = Reader::new(frame);
    let header = match RequestHeader::decode(&mut r) {
        Ok(h) => h,
        Err(e) => {
            shard.borrow().outstanding.signal(1);
            return Err(format!("malformed request header: {e}"));
        }
    };
    shard.borrow_mut().on_packet(id, header, r.rest())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(big.next(100).unwrap_err().contains("jute.maxbuffer"));
    }
}
