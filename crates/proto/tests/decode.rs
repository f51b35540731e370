//! The decoder fed arbitrary bytes: it never panics and never over-allocates, whatever the
//! opcode; and what it accepts re-encodes to the bytes it read (so nothing is dropped or
//! invented on the way through).

use proptest::prelude::*;
use zoocore_proto::records::{
    ConnectRequest, MultiRequest, MultiResponse, Request, RequestHeader, Response,
};
use zoocore_proto::{OpCode, Reader, Record};

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
    fn create_requests_round_trip(path in "/[a-z]{1,8}(/[a-z]{1,8}){0,3}", data in prop::collection::vec(any::<u8>(), 0..64), flags in 0i32..7) {
        let req = zoocore_proto::records::CreateRequest { path, data, acl: zoocore_proto::Acl::open_unsafe(), flags };
        let bytes = req.to_bytes();
        let Request::Create(op, back) = Request::decode(OpCode::Create, &bytes).unwrap() else { panic!("not a create") };
        prop_assert_eq!(op, OpCode::Create);
        prop_assert_eq!(back.to_bytes(), bytes);
    }
}
