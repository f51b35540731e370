//! Fuzz target `jute`: arbitrary bytes as what a client may send — a handshake, or a request
//! header and body of any opcode (the first byte picks the opcode) — and as a reply body, fed
//! to the decoders. Any input may be rejected; none may panic, and whatever decodes must
//! re-encode to bytes that decode to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zoocore_proto::records::{ConnectRequest, MultiRequest, Request, RequestHeader, Response};
use zoocore_proto::{OpCode, Reader, Record};

fuzz_target!(|data: &[u8]| {
    let _ = ConnectRequest::decode_handshake(data);
    let mut r = Reader::new(data);
    if let Ok(h) = RequestHeader::decode(&mut r) {
        if let Some(op) = OpCode::from_i32(h.r#type) {
            let _ = Request::decode(op, r.rest());
        }
    }
    if let Some((&pick, body)) = data.split_first() {
        let op = OpCode::ALL[usize::from(pick) % OpCode::ALL.len()];
        let _ = Request::decode(op, body);
        if let Ok(resp) = Response::decode(op, body) {
            let mut w = zoocore_proto::Writer::new();
            resp.encode(&mut w);
            let again = Response::decode(op, &w.into_inner()).expect("re-encoded reply decodes");
            assert_eq!(again, resp);
        }
    }
    if let Ok(m) = MultiRequest::from_bytes(data) {
        assert_eq!(MultiRequest::from_bytes(&m.to_bytes()).as_ref(), Ok(&m));
    }
});
