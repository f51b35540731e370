//! A data directory written by the standalone pipeline before it ran a one-voter replica
//! (issue 10): zxids of epoch 0 and no epoch files. The fixture in
//! tests/fixtures/standalone-before-epochs was made by that code (commit 2e6b666, zkCli on a
//! standalone server with snapCount=10, so it holds snapshots and the log after them; see
//! its README). Today's server starts from it with every znode, version and sequence counter
//! in place, writes in epoch 1, and keeps both across a restart (then in epoch 2).

use std::path::{Path, PathBuf};

use zoocore_e2e::raw::{self, op, JuteReader, RawConn};
use zoocore_e2e::{Server, Target};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/standalone-before-epochs")
}

/// The data files of the fixture (log segments and snapshots).
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log.0") || n.starts_with("snapshot."))
        })
        .collect();
    files.sort();
    files
}

fn get_data(conn: &mut RawConn, path: &str) -> (Vec<u8>, i32) {
    let reply = conn.call(op::GET_DATA, raw::path_watch_body(path, false));
    assert_eq!(reply.err, 0, "getData {path}");
    let mut r = JuteReader::new(&reply.body);
    let data = r.buffer();
    // Stat: czxid, mzxid, ctime, mtime (longs), then version (int).
    for _ in 0..4 {
        r.long();
    }
    (data, r.int())
}

fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

fn epoch_file(server: &Server, name: &str) -> Option<String> {
    std::fs::read_to_string(server.dir().join("data").join(name))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// What the fixture holds, checked on a live server.
fn check_fixture_data(conn: &mut RawConn) {
    assert_eq!(get_data(conn, "/fixture").0, b"before-issue-10");
    assert_eq!(get_data(conn, "/fixture/a"), (b"a2".to_vec(), 2));
    assert_eq!(get_data(conn, "/fixture/b").0, b"b");
    assert_eq!(get_data(conn, "/fixture/seq-0000000001").0, b"s1");
}

#[test]
fn a_standalone_data_dir_from_before_epochs_starts_with_its_data_and_moves_to_new_epochs() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("the fixture is in zoocore's own format");
        return;
    }
    let files = data_files(&fixture());
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().contains("snapshot.")),
        "the fixture has a snapshot"
    );
    assert!(
        files.iter().any(|f| f.to_string_lossy().contains("log.")),
        "the fixture has a log"
    );
    let mut server = Server::start_default();
    server.stop();
    server.wipe_data();
    let data = server.dir().join("data");
    for f in &files {
        std::fs::copy(f, data.join(f.file_name().expect("name"))).expect("copy fixture");
    }
    assert_eq!(epoch_file(&server, "acceptedEpoch"), None);
    server.start_again();

    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    check_fixture_data(&mut conn);
    let srvr = server.four_letter("srvr");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    // The first start of today's code: epoch 1, written to the epoch files.
    assert_eq!(epoch_file(&server, "acceptedEpoch").as_deref(), Some("1"));
    assert_eq!(epoch_file(&server, "currentEpoch").as_deref(), Some("1"));
    let reply = conn.call(op::SET_DATA, raw::set_data_body("/fixture/a", b"a3", 2));
    assert_eq!(reply.err, 0, "the version carried over");
    assert_eq!(epoch_of(reply.zxid), 1);
    let reply = conn.call(op::CREATE, raw::create_body("/fixture/seq-", b"s2", 2));
    assert_eq!(reply.err, 0);
    assert_eq!(
        JuteReader::new(&reply.body).string(),
        "/fixture/seq-0000000004",
        "the parent's cversion carried over"
    );
    drop(conn);

    server.kill9();
    server.start_again();
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    assert_eq!(get_data(&mut conn, "/fixture").0, b"before-issue-10");
    assert_eq!(get_data(&mut conn, "/fixture/a"), (b"a3".to_vec(), 3));
    assert_eq!(get_data(&mut conn, "/fixture/seq-0000000004").0, b"s2");
    let reply = conn.call(op::CREATE, raw::create_body("/after", b"x", 0));
    assert_eq!(reply.err, 0);
    assert_eq!(epoch_of(reply.zxid), 2, "a new epoch at each start");
    assert_eq!(epoch_file(&server, "acceptedEpoch").as_deref(), Some("2"));
    server.stop();
}
