//! `zoocore import-zk` moves a real Apache ZooKeeper 3.8 data directory (recorded under
//! crates/storage/tests/data/zk) into zoocore: the server then starts from it and serves the
//! same znodes, stats and sessions, at the same zxid.

use std::path::Path;
use std::process::Command;

use zoocore_e2e::raw::{op, path_watch_body, JuteReader, RawConn};
use zoocore_e2e::{parse_key_values, zoocore_binary, Server, Target};

#[test]
fn a_zookeeper_data_directory_is_served_after_import() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("import-zk is zoocore's own tool");
        return;
    }
    let mut server = Server::start_default();
    server.kill9();
    let data = server.dir().join("data");
    std::fs::remove_dir_all(&data).unwrap();
    let zk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/storage/tests/data/zk");
    let out = Command::new(zoocore_binary())
        .arg("import-zk")
        .arg(&zk)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import-zk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("at zxid 0x31"), "{said}");
    server.restart();

    let srvr = parse_key_values(&server.four_letter("srvr"));
    assert_eq!(srvr["Zxid"], "0x31", "serving at ZooKeeper's last zxid");
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    let reply = conn.call(op::GET_DATA, path_watch_body("/app", false));
    assert_eq!(reply.err, 0);
    let mut r = JuteReader::new(&reply.body);
    assert_eq!(r.buffer(), b"hello again");
    // czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid,
    // as Apache ZooKeeper reported them (expected.txt).
    let stat: Vec<i64> = vec![
        r.long(),
        r.long(),
        r.long(),
        r.long(),
        r.int().into(),
        r.int().into(),
        r.int().into(),
        r.long(),
        r.int().into(),
        r.int().into(),
        r.long(),
    ];
    assert_eq!(
        stat,
        vec![2, 41, 1795307421369, 1795307421669, 1, 11, 0, 0, 11, 5, 41]
    );
    // The open session came along with its ephemeral.
    let reply = conn.call(op::EXISTS, path_watch_body("/app/eph", false));
    assert_eq!(reply.err, 0, "the session's ephemeral was imported");
    let mut r = JuteReader::new(&reply.body);
    let owner = {
        for _ in 0..4 {
            r.long();
        }
        for _ in 0..3 {
            r.int();
        }
        r.long()
    };
    assert_eq!(owner, 0x100002009b40000);
}
