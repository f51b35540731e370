//! `zoocore purge <dataDir> <count>` keeps the newest snapshots and the log they need: after
//! many snapshots and segment rolls, it removes the older files, and the server then starts
//! from what is left with every znode in place.

use std::process::Command;

use zoocore_e2e::raw::{self, op, RawConn};
use zoocore_e2e::{zoocore_binary, Options, Server, Target};

fn files(dir: &std::path::Path, prefix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .count()
}

#[test]
fn purge_keeps_the_newest_snapshots_and_what_they_need() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("`zoocore purge` is zoocore's own tool");
        return;
    }
    let mut server = Server::start_with(
        Target::Zoocore,
        Options {
            extra_cfg: vec!["snapCount=40".into()],
            ..Options::default()
        },
    );
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    for i in 0..400 {
        assert_eq!(
            conn.call(op::CREATE, raw::create_body(&format!("/p{i}"), b"x", 0))
                .err,
            0
        );
    }
    // Snapshots are written in the background: give the last one a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.stop();
    let data = server.dir().join("data");
    let (snaps, logs) = (files(&data, "snapshot."), files(&data, "log."));
    assert!(snaps > 3, "many snapshots were taken ({snaps})");
    let out = Command::new(zoocore_binary())
        .arg("purge")
        .arg(&data)
        .arg("3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "purge failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        files(&data, "snapshot."),
        3,
        "the newest three snapshots are kept"
    );
    assert!(
        files(&data, "log.") < logs,
        "log segments the kept snapshots cover are removed"
    );

    server.restart();
    let (mut check, _) = RawConn::open_session(server.addr(), 10_000);
    for i in 0..400 {
        assert_eq!(
            check
                .call(op::EXISTS, raw::path_watch_body(&format!("/p{i}"), false))
                .err,
            0,
            "/p{i} survives the purge"
        );
    }
}
