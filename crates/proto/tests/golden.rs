//! Golden bytes: every frame of a real conversation between zkCli.sh and Apache ZooKeeper 3.8
//! (tests/data/zkcli-3.8.txt, recorded by a TCP proxy) decodes with our records and encodes
//! back to exactly the same bytes, requests and replies alike.

use std::collections::HashMap;

use zoocore_proto::records::{
    ConnectRequest, ConnectResponse, ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};
use zoocore_proto::{OpCode, Reader, Record, Writer, Xid};

fn frames() -> Vec<(char, Vec<u8>)> {
    let text = include_str!("data/zkcli-3.8.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (dir, hex) = l.split_once(' ').expect("direction and hex");
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            (dir.chars().next().unwrap(), bytes)
        })
        .collect()
}

/// Re-encodes a request frame body (header + request) from its decoded form.
fn reencode_request(frame: &[u8]) -> (RequestHeader, Vec<u8>) {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r).unwrap();
    let op = OpCode::from_i32(header.r#type).unwrap();
    let mut w = Writer::new();
    header.encode(&mut w);
    match Request::decode(op, r.rest()).unwrap() {
        Request::Ping | Request::WhoAmI => {}
        Request::CloseSession => {}
        Request::Create(_, x) => x.encode(&mut w),
        Request::CreateTtl(x) => x.encode(&mut w),
        Request::Delete(x) => x.encode(&mut w),
        Request::DeleteContainer(x) => x.encode(&mut w),
        Request::Exists(x) => x.encode(&mut w),
        Request::GetData(x) => x.encode(&mut w),
        Request::SetData(x) => x.encode(&mut w),
        Request::GetAcl(x) => x.encode(&mut w),
        Request::SetAcl(x) => x.encode(&mut w),
        Request::GetChildren(x) | Request::GetChildren2(x) => x.encode(&mut w),
        Request::GetAllChildrenNumber(x) => x.encode(&mut w),
        Request::GetEphemerals(x) => x.encode(&mut w),
        Request::Check(x) => x.encode(&mut w),
        Request::Multi(x) | Request::MultiRead(x) => x.encode(&mut w),
        Request::Sync(x) => x.encode(&mut w),
        Request::Auth(x) => x.encode(&mut w),
        Request::SetWatches(x) => x.encode(&mut w),
        Request::SetWatches2(x) => x.encode(&mut w),
        Request::AddWatch(x) => x.encode(&mut w),
        Request::CheckWatches(x) => x.encode(&mut w),
        Request::RemoveWatches(x) => x.encode(&mut w),
        Request::Reconfig(x) => x.encode(&mut w),
        Request::Sasl(x) => x.encode(&mut w),
    }
    (header, w.into_inner())
}

#[test]
fn a_recorded_zkcli_session_round_trips_byte_for_byte() {
    let frames = frames();
    assert!(frames.len() > 40, "the recording has the whole session");
    let mut ops: HashMap<i32, OpCode> = HashMap::new();
    let mut seen = std::collections::BTreeSet::new();

    let (dir, connect) = &frames[0];
    assert_eq!(*dir, 'C');
    assert_eq!(connect.len(), 45, "a 3.8 client sends the readOnly byte");
    let (req, read_only) = ConnectRequest::decode_handshake(connect).unwrap();
    let mut again = req.to_bytes();
    again.push(u8::from(read_only.unwrap()));
    assert_eq!(&again, connect);

    let (dir, answer) = &frames[1];
    assert_eq!(*dir, 'S');
    let mut r = Reader::new(answer);
    let resp = ConnectResponse::decode(&mut r).unwrap();
    let ro = r.read_bool().unwrap();
    r.finish().unwrap();
    assert_eq!(resp.passwd.len(), 16);
    assert_eq!(&resp.encode_handshake(Some(ro)), answer);

    for (dir, frame) in &frames[2..] {
        match dir {
            'C' => {
                let (header, bytes) = reencode_request(frame);
                assert_eq!(&bytes, frame, "request {header:?}");
                let op = OpCode::from_i32(header.r#type).unwrap();
                ops.insert(header.xid, op);
                seen.insert(format!("{op:?}"));
            }
            'S' => {
                let mut r = Reader::new(frame);
                let header = ReplyHeader::decode(&mut r).unwrap();
                let mut w = Writer::new();
                header.encode(&mut w);
                if header.xid == Xid::NOTIFICATION.0 {
                    WatcherEvent::decode(&mut r).unwrap().encode(&mut w);
                    r.finish().unwrap();
                } else if header.err == 0 {
                    let op = ops[&header.xid];
                    Response::decode(op, r.rest()).unwrap().encode(&mut w);
                } else {
                    r.finish().unwrap();
                }
                assert_eq!(&w.into_inner(), frame, "reply {header:?}");
            }
            other => panic!("unknown direction {other}"),
        }
    }
    for op in [
        "Create",
        "Exists",
        "GetData",
        "SetData",
        "GetAcl",
        "SetAcl",
        "GetChildren",
        "GetChildren2",
        "Auth",
        "Sync",
        "Multi",
        "CloseSession",
    ] {
        assert!(seen.contains(op), "the recording exercises {op}: {seen:?}");
    }
}
