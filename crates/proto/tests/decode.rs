//! The decoder fed arbitrary bytes: it never panics and never over-allocates, whatever the
//! opcode; and what it accepts re-encodes to the bytes it read (so nothing is dropped or
//! invented on the way through). A znode's null data (length -1) stays null and an empty
//! buffer stays empty, in every record that carries data.

use proptest::prelude::*;
use zoocore_proto::records::{
    ConnectRequest, GetDataResponse, MultiOp, MultiRequest, MultiResponse, MultiResult, Request,
    RequestHeader, Response,
};
use zoocore_proto::{OpCode, Reader, Record, Stat, Writer};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_request_bodies_never_panic(op in prop::sample::select(OpCode::ALL), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(op, &body);
        let _ = Response::decode(op, &body);
    }

    #[test]
    fn arbitrary_frames_never_panic(frame in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ConnectRequest::decode_handshake(&frame);
        let mut r = Reader::new(&frame);
        if let Ok(h) = RequestHeader::decode(&mut r) {
            if let Some(op) = OpCode::from_i32(h.r#type) {
                let _ = Request::decode(op, r.rest());
            }
        }
        let _ = MultiRequest::from_bytes(&frame);
        let _ = MultiResponse::from_bytes(&frame);
    }

    /// A huge vector count in a short buffer is refused before anything is allocated.
    #[test]
    fn hostile_lengths_are_refused(count in 1_000i32..i32::MAX, tail in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut body = vec![0, 0, 0, 1, b'/'];
        body.extend_from_slice(&count.to_be_bytes());
        body.extend_from_slice(&tail);
        // A getChildren response: one string, then a vector whose count is `count`.
        prop_assert!(Response::decode(OpCode::GetChildren2, &body).is_err());
    }

    #[test]
    fn create_requests_round_trip(path in "/[a-z]{1,8}(/[a-z]{1,8}){0,3}", data in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)), flags in 0i32..7) {
        let req = zoocore_proto::records::CreateRequest { path, data: data.map(Into::into), acl: zoocore_proto::Acl::open_unsafe(), flags };
        let bytes = req.to_bytes();
        let Request::Create(op, back) = Request::decode(OpCode::Create, &bytes).unwrap() else { panic!("not a create") };
        prop_assert_eq!(op, OpCode::Create);
        prop_assert_eq!(back.to_bytes(), bytes);
    }
}

/// The body of a create or setData whose data field is `data`, written by hand as zkCli 3.8
/// writes `create /x` without data (a null buffer).
fn body_with_data(op: OpCode, data: Option<&[u8]>) -> Vec<u8> {
    let mut w = Writer::new();
    w.write_str("/x");
    w.write_opt_buffer(data);
    if op == OpCode::SetData {
        w.write_i32(-1);
    } else {
        w.write_records(&zoocore_proto::Acl::open_unsafe());
        w.write_i32(if op == OpCode::CreateTtl { 5 } else { 0 });
        if op == OpCode::CreateTtl {
            w.write_i64(1000);
        }
    }
    w.into_inner()
}

/// The data field of a decoded create, createTTL or setData.
fn data_of(req: Request) -> Option<Vec<u8>> {
    match req {
        Request::Create(_, r) => r.data.map(|d| d.to_vec()),
        Request::CreateTtl(r) => r.data.map(|d| d.to_vec()),
        Request::SetData(r) => r.data.map(|d| d.to_vec()),
        other => panic!("not a data write: {other:?}"),
    }
}

#[test]
fn null_data_decodes_as_null_and_empty_as_empty() {
    for op in [
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::SetData,
    ] {
        let null = body_with_data(op, None);
        assert_eq!(&null[6..10], &[0xff; 4], "{op:?}: the frame carries -1");
        let req = Request::decode(op, &null).unwrap();
        assert_eq!(data_of(req.clone()), None, "{op:?} null");
        let mut again = Writer::new();
        match req {
            Request::Create(_, r) => r.encode(&mut again),
            Request::CreateTtl(r) => r.encode(&mut again),
            Request::SetData(r) => r.encode(&mut again),
            _ => unreachable!(),
        }
        assert_eq!(again.into_inner(), null, "{op:?}: null re-encodes as -1");
        let empty = body_with_data(op, Some(b""));
        let decoded = data_of(Request::decode(op, &empty).unwrap());
        assert_eq!(decoded, Some(Vec::new()), "{op:?} empty");
    }
}

#[test]
fn multi_ops_keep_null_data() {
    let mut body = Vec::new();
    for (op, data) in [
        (OpCode::Create, None),
        (OpCode::SetData, None),
        (OpCode::Create, Some(&b""[..])),
    ] {
        let mut h = Writer::new();
        h.write_i32(op.as_i32());
        h.write_bool(false);
        h.write_i32(-1);
        body.extend_from_slice(&h.into_inner());
        body.extend_from_slice(&body_with_data(op, data));
    }
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff]);
    let Request::Multi(multi) = Request::decode(OpCode::Multi, &body).unwrap() else {
        panic!("not a multi");
    };
    let datas: Vec<_> = multi
        .ops
        .iter()
        .map(|op| match op {
            MultiOp::Create(_, r) => r.data.as_deref().map(<[u8]>::to_vec),
            MultiOp::SetData(r) => r.data.as_deref().map(<[u8]>::to_vec),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(datas, vec![None, None, Some(Vec::new())]);
    assert_eq!(multi.to_bytes(), body, "re-encodes byte for byte");
}

#[test]
fn get_data_answers_write_minus_one_for_null() {
    let stat = Stat::default();
    let null = GetDataResponse { data: None, stat };
    let bytes = null.to_bytes();
    assert_eq!(&bytes[..4], &(-1i32).to_be_bytes());
    assert_eq!(GetDataResponse::from_bytes(&bytes).unwrap().data, None);
    let empty = GetDataResponse {
        data: Some(Vec::new()),
        stat,
    };
    assert_eq!(&empty.to_bytes()[..4], &0i32.to_be_bytes());

    let multi = MultiResponse {
        results: vec![
            MultiResult::GetData(None, stat),
            MultiResult::GetData(Some(Vec::new()), stat),
        ],
    };
    let back = MultiResponse::from_bytes(&multi.to_bytes()).unwrap();
    assert_eq!(
        back, multi,
        "multiRead's null and empty data survive the wire"
    );
}
