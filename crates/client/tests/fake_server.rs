//! The client against a fake in-process ZooKeeper server on loopback: handshake, pipelined
//! requests matched by xid with their tags, replies dribbled one byte at a time, watch events
//! and pongs interleaved with replies, server error codes, and a server that answers out of
//! order (which the client must reject, as ClientCnxn does).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zoocore_client::{Client, ClientError, Conn, ConnectOptions, Incoming};
use zoocore_proto::records::{
    ConnectRequest, ConnectResponse, GetDataRequest, GetDataResponse, ReplyHeader, RequestHeader,
    SetDataRequest, WatcherEvent,
};
use zoocore_proto::{ErrorCode, EventType, KeeperState, OpCode, Reader, Record, Stat, Writer};

/// How the fake server misbehaves.
#[derive(Clone, Copy)]
enum Mode {
    /// Answers in order, byte by byte, with an event before every third reply.
    Dribble,
    /// Answers each pair of requests in swapped order.
    Swap,
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

fn framed(body: Vec<u8>) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

fn answer(frame: &[u8], zxid: i64) -> Vec<u8> {
    let mut r = Reader::new(frame);
    let h = RequestHeader::decode(&mut r).expect("header");
    let mut w = Writer::new();
    let op = OpCode::from_i32(h.r#type).expect("opcode");
    match op {
        OpCode::GetData => {
            let req = GetDataRequest::decode(&mut r).expect("getData");
            ReplyHeader {
                xid: h.xid,
                zxid,
                err: 0,
            }
            .encode(&mut w);
            GetDataResponse {
                data: Some(req.path.into_bytes()),
                stat: Stat::default(),
            }
            .encode(&mut w);
        }
        OpCode::SetData => {
            let req = SetDataRequest::decode(&mut r).expect("setData");
            let err = if req.version == 5 {
                ErrorCode::BAD_VERSION.0
            } else {
                0
            };
            ReplyHeader {
                xid: h.xid,
                zxid,
                err,
            }
            .encode(&mut w);
            if err == 0 {
                Stat::default().encode(&mut w);
            }
        }
        _ => ReplyHeader {
            xid: h.xid,
            zxid,
            err: 0,
        }
        .encode(&mut w),
    }
    framed(w.into_inner())
}

fn event(path: &str) -> Vec<u8> {
    let mut w = Writer::new();
    ReplyHeader {
        xid: -1,
        zxid: -1,
        err: 0,
    }
    .encode(&mut w);
    WatcherEvent {
        r#type: EventType::NodeDataChanged.as_i32(),
        state: KeeperState::SyncConnected.as_i32(),
        path: path.into(),
    }
    .encode(&mut w);
    framed(w.into_inner())
}

async fn serve(mut s: TcpStream, mode: Mode) {
    let Some(hello) = read_frame(&mut s).await else {
        return;
    };
    assert_eq!(hello.len(), 45, "handshake with the readOnly byte");
    let (req, ro) = ConnectRequest::decode_handshake(&hello).expect("handshake");
    let resp = ConnectResponse {
        protocol_version: 0,
        time_out: req.time_out,
        session_id: 0x42,
        passwd: vec![1; 16],
    };
    s.write_all(&framed(resp.encode_handshake(ro)))
        .await
        .expect("write");
    let mut held: Option<Vec<u8>> = None;
    let mut n = 0i64;
    while let Some(frame) = read_frame(&mut s).await {
        n += 1;
        let reply = answer(&frame, n);
        match mode {
            Mode::Dribble => {
                let mut bytes = if n % 3 == 0 { event("/e") } else { Vec::new() };
                bytes.extend(reply);
                for b in bytes {
                    if s.write_all(&[b]).await.is_err() {
                        return;
                    }
                }
            }
            Mode::Swap => match held.take() {
                None => held = Some(reply),
                Some(first) => {
                    let _ = s.write_all(&reply).await;
                    let _ = s.write_all(&first).await;
                }
            },
        }
    }
}

async fn fake_server(mode: Mode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s, mode));
        }
    });
    addr
}

#[tokio::test]
async fn pipelined_requests_come_back_matched_to_their_tags() {
    let addr = fake_server(Mode::Dribble).await;
    let mut conn: Conn<usize> = Conn::connect(addr, &ConnectOptions::default())
        .await
        .expect("connect");
    assert_eq!(conn.session().session_id, 0x42);
    for i in 0..50 {
        let path = format!("/k{i}");
        conn.submit(OpCode::GetData, i, |w| {
            w.write_str(&path);
            w.write_bool(false);
        });
    }
    conn.ping();
    conn.flush().await.expect("flush");
    let (mut replies, mut events, mut pongs) = (0, 0, 0);
    while replies < 50 || pongs < 1 {
        match conn.next().await.expect("next") {
            Incoming::Reply(r) => {
                assert_eq!(r.tag, replies);
                assert_eq!(r.op, OpCode::GetData);
                let resp = GetDataResponse::from_bytes(conn.body(&r)).expect("body");
                assert_eq!(resp.data, Some(format!("/k{replies}").into_bytes()));
                replies += 1;
            }
            Incoming::Event { event, .. } => {
                assert_eq!(event.path, "/e");
                events += 1;
            }
            Incoming::Pong { .. } => pongs += 1,
        }
    }
    assert_eq!(events, 17, "an event before every third reply (51 frames)");
    assert_eq!(conn.outstanding(), 0);
}

#[tokio::test]
async fn server_errors_surface_as_error_codes() {
    let addr = fake_server(Mode::Dribble).await;
    let mut client = Client::connect(addr, &ConnectOptions::default())
        .await
        .expect("connect");
    client.set_data("/a", b"v", -1).await.expect("any version");
    let err = client
        .set_data("/a", b"v", 5)
        .await
        .expect_err("bad version");
    assert_eq!(err.code(), ErrorCode::BAD_VERSION);
    let (data, _) = client.get_data("/xyz", false).await.expect("get");
    assert_eq!(data, b"/xyz");
}

#[tokio::test]
async fn replies_out_of_order_are_rejected() {
    let addr = fake_server(Mode::Swap).await;
    let mut conn: Conn<()> = Conn::connect(addr, &ConnectOptions::default())
        .await
        .expect("connect");
    for _ in 0..2 {
        conn.submit(OpCode::SetData, (), |w| {
            w.write_str("/a");
            w.write_buffer(b"");
            w.write_i32(-1);
        });
    }
    conn.flush().await.expect("flush");
    let err = conn.next().await.expect_err("out of order");
    assert!(
        matches!(
            err,
            ClientError::XidOutOfOrder {
                expected: 1,
                got: 2
            }
        ),
        "{err:?}"
    );
}
