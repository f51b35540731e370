//! Framing: every packet on a ZooKeeper client connection is a 4-byte big-endian length
//! followed by that many bytes (ClientCnxnSocketNIO). [`FrameDecoder`] accumulates bytes as
//! they arrive and hands out whole frames; a length above the limit (jute.maxbuffer plus
//! slack) or below zero is an error, so a broken peer cannot make it allocate without bound.
//! [`encode_request`] appends one request frame (RequestHeader + body) to a write buffer.

use zoocore_proto::records::RequestHeader;
use zoocore_proto::{OpCode, Record, Writer};

use crate::ClientError;

/// ZooKeeper's default jute.maxbuffer (0xfffff) plus room for headers.
pub const FRAME_BYTES_MAX: usize = 0xfffff + 1024;

/// Appends a framed request to `out`: length, RequestHeader{xid, op}, then what `body` writes.
pub fn encode_request(out: &mut Vec<u8>, xid: i32, op: OpCode, body: impl FnOnce(&mut Writer)) {
    let start = out.len();
    let mut w = Writer::with_buffer(std::mem::take(out));
    w.write_i32(0);
    RequestHeader {
        xid,
        r#type: op.as_i32(),
    }
    .encode(&mut w);
    body(&mut w);
    *out = w.into_inner();
    seal(out, start);
}

/// Appends a framed record with no header (the connect handshake).
pub fn encode_raw(out: &mut Vec<u8>, body: &[u8]) {
    let len = i32::try_from(body.len()).expect("handshake fits in i32");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

/// Writes the length of the frame that starts at `start` into its prefix.
fn seal(out: &mut [u8], start: usize) {
    let len = out.len() - start - 4;
    let len = i32::try_from(len).expect("request frame fits in i32");
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Accumulates received bytes and yields whole frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as frames; dropped on the next compaction.
    consumed: usize,
    frame_bytes_max: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(FRAME_BYTES_MAX)
    }
}

impl FrameDecoder {
    pub fn new(frame_bytes_max: usize) -> Self {
        Self {
            buf: Vec::with_capacity(64 * 1024),
            consumed: 0,
            frame_bytes_max,
        }
    }

    /// The buffer to read into: drops consumed bytes first, then guarantees spare capacity.
    pub fn read_buffer(&mut self) -> &mut Vec<u8> {
        if self.consumed > 0 {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        &mut self.buf
    }

    /// Appends bytes (for tests and callers that read elsewhere).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.read_buffer().extend_from_slice(bytes);
    }

    /// The next whole frame's byte range within [`FrameDecoder::bytes`], if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<std::ops::Range<usize>>, ClientError> {
        let avail = &self.buf[self.consumed..];
        let Some(prefix) = avail.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(len).map_err(|_| ClientError::NegativeFrameLength { len })?;
        if len > self.frame_bytes_max {
            return Err(ClientError::FrameTooLarge {
                len,
                max: self.frame_bytes_max,
            });
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let start = self.consumed + 4;
        self.consumed = start + len;
        Ok(Some(start..start + len))
    }

    /// The buffered bytes; frame ranges index into this until the next `read_buffer` call.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_every_byte_come_out_whole() {
        let mut wire = Vec::new();
        encode_request(&mut wire, 1, OpCode::GetData, |w| {
            w.write_str("/a");
            w.write_bool(false);
        });
        encode_request(&mut wire, 2, OpCode::Ping, |_| {});
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for b in &wire {
            d.feed(std::slice::from_ref(b));
            while let Some(r) = d.next_frame().expect("valid") {
                frames.push(d.bytes()[r].to_vec());
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 8 + 4 + 2 + 1);
        assert_eq!(&frames[0][..4], &1i32.to_be_bytes());
        assert_eq!(&frames[1][4..8], &OpCode::Ping.as_i32().to_be_bytes());
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn oversized_and_negative_lengths_are_errors() {
        let mut d = FrameDecoder::new(100);
        d.feed(&101i32.to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(ClientError::FrameTooLarge { len: 101, .. })
        ));
        let mut d = FrameDecoder::new(100);
        d.feed(&(-5i32).to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(ClientError::NegativeFrameLength { len: -5 })
        ));
    }
}
