//! The echo ceiling: a server that speaks only ZooKeeper's framing. It answers the
//! handshake with a session, and every request frame with a reply of the size a real server
//! would send, at no cost beyond reading and writing: getData gets a GetDataResponse carrying
//! `value_size` bytes, setData and exists a Stat, create its own path, everything else a
//! bare ReplyHeader. Driving it with the same load generator measures the request/response
//! ceiling of the machine (syscalls, loopback, the generator itself).
//!
//! Replies to all the frames found in one read go out in one write. A frame that does not
//! parse closes that connection; nothing here panics on input.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zoocore_client::frame::FrameDecoder;
use zoocore_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use zoocore_proto::{OpCode, Reader, Record, Stat, Writer, Xid};

/// Echo server settings.
#[derive(Debug, Clone, clap::Args)]
pub struct EchoConfig {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Bytes of data in each getData reply.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// Serves until the process is killed.
pub fn run_echo(cfg: &EchoConfig) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(cfg.listen).await?;
        serve(listener, cfg.value_size).await
    })
}

/// Accepts connections on `listener` forever.
pub async fn serve(listener: TcpListener, value_size: usize) -> std::io::Result<()> {
    let value: Arc<[u8]> = vec![b'e'; value_size].into();
    let sessions = Arc::new(AtomicI64::new(1));
    loop {
        let (stream, _) = listener.accept().await?;
        let (value, sessions) = (value.clone(), sessions.clone());
        tokio::spawn(async move {
            let _ = connection(stream, &value, &sessions).await;
        });
    }
}

#[derive(Debug, thiserror::Error)]
enum EchoError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Client(#[from] zoocore_client::ClientError),
    #[error("decode: {0}")]
    Decode(#[from] zoocore_proto::DecodeError),
}

async fn connection(
    mut stream: TcpStream,
    value: &[u8],
    sessions: &AtomicI64,
) -> Result<(), EchoError> {
    stream.set_nodelay(true)?;
    let mut decoder = FrameDecoder::default();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut handshaken = false;
    let mut zxid = 0i64;
    loop {
        if stream.read_buf(decoder.read_buffer()).await? == 0 {
            return Ok(());
        }
        let mut closing = false;
        while let Some(range) = decoder.next_frame()? {
            let frame = &decoder.bytes()[range];
            if !handshaken {
                let (req, read_only) = ConnectRequest::decode_handshake(frame)?;
                let resp = ConnectResponse {
                    protocol_version: 0,
                    time_out: req.time_out,
                    session_id: sessions.fetch_add(1, Ordering::Relaxed),
                    passwd: vec![0; 16],
                };
                zoocore_client::frame::encode_raw(&mut out, &resp.encode_handshake(read_only));
                handshaken = true;
                continue;
            }
            zxid += 1;
            closing |= reply(&mut out, frame, value, zxid)?;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if closing {
            return Ok(());
        }
    }
}

/// Appends the reply to one request frame; true for closeSession.
fn reply(out: &mut Vec<u8>, frame: &[u8], value: &[u8], zxid: i64) -> Result<bool, EchoError> {
    let mut r = Reader::new(frame);
    let h = RequestHeader::decode(&mut r)?;
    let op = OpCode::from_i32(h.r#type);
    let start = out.len();
    let mut w = Writer::with_buffer(std::mem::take(out));
    w.write_i32(0);
    let zxid = if h.xid == Xid::PING.0 { 0 } else { zxid };
    ReplyHeader {
        xid: h.xid,
        zxid,
        err: 0,
    }
    .encode(&mut w);
    match op {
        Some(OpCode::GetData) => {
            w.write_buffer(value);
            Stat::default().encode(&mut w);
        }
        Some(OpCode::SetData | OpCode::Exists) => Stat::default().encode(&mut w),
        Some(OpCode::Create) => w.write_str(r.read_str()?),
        _ => {}
    }
    *out = w.into_inner();
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(op == Some(OpCode::CloseSession))
}
