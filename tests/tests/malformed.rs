//! Proves bad client input closes only the offending connection: a garbage frame, a length
//! prefix beyond jute.maxbuffer and a negative length each get that socket closed while
//! another client's session keeps working; an undecodable request body gets
//! MarshallingError (-5) and an unknown opcode Unimplemented (-6) then a close; invalid paths
//! get BadArguments (-8) or NoNode as Apache orders its checks, without closing anything.

use std::io::Write;
use std::time::Duration;

use zoocore_e2e::raw::{self, op, Jute, RawConn};
use zoocore_e2e::*;

const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A healthy session next to the misbehaving one must keep working.
async fn bystander_still_works(zk: &zookeeper_client::Client, name: &str) {
    let path = format!("/ok-{name}");
    zk.create(&path, b"fine", &persistent()).await.unwrap();
    assert_eq!(zk.get_data(&path).await.unwrap().0, b"fine");
}

#[test]
fn garbage_connect_frame_closes_only_that_connection() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let mut bad = RawConn::connect(server.addr()).unwrap();
        bad.write_frame(b"\xde\xad\xbe\xef this is not a connect request")
            .unwrap();
        assert!(
            bad.is_closed_within(CLOSE_WAIT),
            "garbage connect frame closes the socket"
        );
        bystander_still_works(&zk, "garbage").await;
        assert_eq!(server.four_letter("ruok"), "imok");
    });
}

#[test]
fn oversized_length_prefix_closes_only_that_connection() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        // Before the handshake.
        let mut bad = RawConn::connect(server.addr()).unwrap();
        bad.stream.write_all(&0x7fff_ffffi32.to_be_bytes()).unwrap();
        assert!(
            bad.is_closed_within(CLOSE_WAIT),
            "huge length before handshake"
        );
        // After the handshake, in a session: 0xfffff + 2 is past the default jute.maxbuffer.
        let (mut in_session, _) = RawConn::open_session(server.addr(), 10_000);
        in_session
            .stream
            .write_all(&(0xfffff + 2i32).to_be_bytes())
            .unwrap();
        in_session.stream.write_all(&[0u8; 64]).unwrap();
        assert!(
            in_session.is_closed_within(CLOSE_WAIT),
            "length beyond jute.maxbuffer"
        );
        let mut negative = RawConn::connect(server.addr()).unwrap();
        negative.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
        assert!(negative.is_closed_within(CLOSE_WAIT), "negative length");
        bystander_still_works(&zk, "oversized").await;
    });
}

#[test]
fn undecodable_request_gets_marshalling_error() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
        // A create whose path length claims more bytes than the frame holds.
        let body = Jute::new().int(7).int(op::CREATE).int(1000).int(0);
        conn.write_frame(&body.0).unwrap();
        let reply = conn.read_reply().unwrap();
        assert_eq!(
            (reply.xid, reply.err),
            (7, -5),
            "MarshallingError answers the request"
        );
        assert!(reply.body.is_empty());
        assert_eq!(
            conn.call(op::EXISTS, raw::path_watch_body("/", false)).err,
            0,
            "connection lives"
        );
        bystander_still_works(&zk, "truncated").await;
    });
}

#[test]
fn unknown_opcode_gets_unimplemented_then_close() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
        let reply = conn.call(9999, Jute::new());
        assert_eq!((reply.err, reply.zxid), (-6, -1), "Unimplemented, no zxid");
        assert!(
            conn.is_closed_within(CLOSE_WAIT),
            "then the connection is closed"
        );
        bystander_still_works(&zk, "unknown-op").await;
    });
}

#[test]
fn invalid_paths_get_bad_arguments() {
    let server = Server::start_default();
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    assert_eq!(conn.call(op::CREATE, raw::create_body("/p", b"", 0)).err, 0);
    // (path, create error, delete error). The server looks up the parent before it validates
    // the whole path, so a bad path under a missing parent is NoNode (-101), not BadArguments.
    let cases: &[(&str, i32, i32)] = &[
        ("noslash", -8, -8),
        ("", -8, -8),
        ("/p/", -8, -101),
        ("/p/.", -8, -101),
        ("/p/..", -8, -101),
        ("/p/nul\0b", -8, -8),
        ("/nul\0byte", -8, -8),
        ("/missing/", -101, -101),
        ("/p//x", -101, -101),
        ("/", -110, -8),
    ];
    for &(path, create_err, delete_err) in cases {
        let reply = conn.call(op::CREATE, raw::create_body(path, b"", 0));
        assert_eq!(reply.err, create_err, "create {path:?}");
        let reply = conn.call(op::DELETE, Jute::new().string(path).int(-1));
        assert_eq!(reply.err, delete_err, "delete {path:?}");
    }
    // Reads are not validated by the server: "" is the root, as in DataTree.getNode.
    assert_eq!(
        conn.call(op::GET_DATA, raw::path_watch_body("", false)).err,
        0
    );
    assert_eq!(
        conn.call(op::GET_DATA, raw::path_watch_body("noslash", false))
            .err,
        -101
    );
    // The connection survived all of that.
    assert_eq!(
        conn.call(op::EXISTS, raw::path_watch_body("/", false)).err,
        0
    );
}

#[test]
fn reconfig_and_sasl_get_zookeepers_answers() {
    let server = Server::start_default();
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    // reconfig (16): joiningServers, leavingServers, newMembers, curConfigId.
    let reconfig = Jute::new().string("").string("").string("").long(-1);
    let reply = conn.call(16, reconfig);
    assert_eq!(
        reply.err, -123,
        "reconfig on a standalone server: ReconfigDisabled"
    );
    // sasl (102) with no SASL configured: OK, and a null challenge token.
    let reply = conn.call(102, Jute::new().buffer(b""));
    assert_eq!(
        (reply.err, reply.body.as_slice()),
        (0, &[0xff_u8; 4][..]),
        "sasl without SASL"
    );
    assert_eq!(
        conn.call(op::EXISTS, raw::path_watch_body("/", false)).err,
        0,
        "the connection lives on"
    );
}

/// Java's jute reads a string's bytes as UTF-8 with replacement characters, so bytes that are
/// not UTF-8 do not make a request undecodable: a create of such a path fails path
/// validation (BadArguments), and a read of it finds no node.
#[test]
fn a_path_that_is_not_utf8_is_a_bad_argument_not_a_marshalling_error() {
    let server = Server::start(Target::from_env());
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    let bad_path = |body: Jute| body.int(4).raw(b"/a\xff\xfe");
    let acl_and_flags = Jute::new().buffer(b"").open_acl().int(0);
    let create = bad_path(Jute::new()).raw(&acl_and_flags.0);
    assert_eq!(conn.call(op::CREATE, create).err, -8, "create");
    let get = bad_path(Jute::new()).boolean(false);
    assert_eq!(conn.call(op::GET_DATA, get).err, -101, "getData");
    assert_eq!(
        conn.call(op::EXISTS, raw::path_watch_body("/", false)).err,
        0,
        "the connection lives on"
    );
}

/// Clients send a null id (length -1) for the `auth` scheme's ACL entry, whose id ZooKeeper
/// ignores: the create succeeds and the node belongs to the authenticated digest user.
#[test]
fn an_auth_acl_with_a_null_id_is_accepted() {
    let server = Server::start(Target::from_env());
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    let auth = Jute::new().int(0).string("digest").buffer(b"ann:secret");
    assert_eq!(conn.call_xid(-4, 100, auth).err, 0, "addauth digest");
    let null_id_acl = Jute::new().int(1).int(31).string("auth").int(-1);
    let create = Jute::new()
        .string("/owned")
        .buffer(b"v")
        .raw(&null_id_acl.0)
        .int(0);
    assert_eq!(
        conn.call(op::CREATE, create).err,
        0,
        "create with auth:<null>"
    );
    // getACL (6): the entry became the digest user's.
    let reply = conn.call(6, Jute::new().string("/owned"));
    assert_eq!(reply.err, 0);
    let mut r = raw::JuteReader::new(&reply.body);
    assert_eq!(r.int(), 1, "one ACL entry");
    assert_eq!(r.int(), 31);
    assert_eq!(r.string(), "digest");
    assert!(r.string().starts_with("ann:"), "the digest user's id");
}
