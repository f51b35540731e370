//! Null data end to end, against both targets: a create or setData whose data buffer is null
//! (length -1, what zkCli 3.8 sends for `create /x` without data) keeps null, and getData
//! answers a -1 buffer (Java clients read `null`, kazoo `None`) with dataLength 0 in the
//! Stat; empty data stays empty (length 0). The same through create2 and containers,
//! through multi (create and setData) and multiRead's getData, after a restart that loads a
//! snapshot and replays the log, with zkCli 3.8 (`get` prints `null`), and, zoocore only
//! (the harness starts zoocore ensembles), through a follower of three voters and a wiped
//! follower that syncs back from the leader.
//!
//! Requests are raw frames: the `zookeeper-client` crate never sends a null buffer, and its
//! getData cannot tell null from empty.

use std::path::Path;
use std::time::Duration;

use zoocore_e2e::ensemble::{self, await_settled};
use zoocore_e2e::raw::{op, Jute, JuteReader, RawConn};
use zoocore_e2e::*;

const CREATE2: i32 = 15;
const SYNC: i32 = 9;
const CREATE_CONTAINER: i32 = 19;
const MULTI_READ: i32 = 22;
/// Offset of `dataLength` in a jute Stat: four longs, three ints, one long.
const STAT_DATA_LENGTH: usize = 8 * 4 + 4 * 3 + 8;
const STAT_BYTES: usize = 68;

/// A data buffer as the request carries it: `None` is jute's null, length -1 and no bytes.
fn data_field(j: Jute, data: Option<&[u8]>) -> Jute {
    match data {
        Some(d) => j.buffer(d),
        None => j.int(-1),
    }
}

fn create_body(path: &str, data: Option<&[u8]>, flags: i32) -> Jute {
    data_field(Jute::new().string(path), data)
        .open_acl()
        .int(flags)
}

fn set_data_body(path: &str, data: Option<&[u8]>, version: i32) -> Jute {
    data_field(Jute::new().string(path), data).int(version)
}

/// A data buffer as a reply carries it: -1 is null.
fn read_data(r: &mut JuteReader<'_>) -> Option<Vec<u8>> {
    let n = r.int();
    if n == -1 {
        return None;
    }
    assert!(n >= 0, "data length {n}");
    let (data, rest) = r.buf.split_at(n as usize);
    r.buf = rest;
    Some(data.to_vec())
}

fn data_length(stat: &[u8]) -> i32 {
    let at = STAT_DATA_LENGTH;
    i32::from_be_bytes(stat[at..at + 4].try_into().unwrap())
}

fn stat_version(stat: &[u8]) -> i32 {
    i32::from_be_bytes(stat[32..36].try_into().unwrap())
}

fn ok(conn: &mut RawConn, op_code: i32, body: Jute, what: &str) -> Vec<u8> {
    let reply = conn.call(op_code, body);
    assert_eq!(reply.err, 0, "{what}: error {}", reply.err);
    reply.body
}

/// getData: the data (`None` for a -1 buffer) and the Stat's (dataLength, version).
fn get_data(conn: &mut RawConn, path: &str) -> (Option<Vec<u8>>, i32, i32) {
    let body = ok(
        conn,
        op::GET_DATA,
        Jute::new().string(path).boolean(false),
        path,
    );
    let mut r = JuteReader::new(&body);
    let data = read_data(&mut r);
    assert_eq!(r.buf.len(), STAT_BYTES, "{path}: a Stat follows the data");
    (data, data_length(r.buf), stat_version(r.buf))
}

fn assert_data(conn: &mut RawConn, path: &str, want: Option<&[u8]>) {
    let (data, length, _) = get_data(conn, path);
    assert_eq!(data.as_deref(), want, "getData {path}");
    assert_eq!(
        length,
        want.map_or(0, |d| d.len() as i32),
        "dataLength of {path}"
    );
}

#[test]
fn null_data_reads_back_null_and_empty_stays_empty() {
    let server = Server::start_default();
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);

    ok(
        &mut conn,
        op::CREATE,
        create_body("/null", None, 0),
        "create null",
    );
    assert_data(&mut conn, "/null", None);
    ok(
        &mut conn,
        op::CREATE,
        create_body("/empty", Some(b""), 0),
        "create empty",
    );
    assert_data(&mut conn, "/empty", Some(b""));

    // setData null over data: null, and the version moves like any setData.
    ok(
        &mut conn,
        op::CREATE,
        create_body("/d", Some(b"abc"), 0),
        "create",
    );
    let body = ok(
        &mut conn,
        op::SET_DATA,
        set_data_body("/d", None, 0),
        "set null",
    );
    assert_eq!(
        (data_length(&body), stat_version(&body)),
        (0, 1),
        "setData's Stat"
    );
    let (data, length, version) = get_data(&mut conn, "/d");
    assert_eq!((data, length, version), (None, 0, 1));
    // And back: data over null, then empty over null.
    ok(
        &mut conn,
        op::SET_DATA,
        set_data_body("/d", Some(b"x"), 1),
        "set x",
    );
    assert_data(&mut conn, "/d", Some(b"x"));
    ok(
        &mut conn,
        op::SET_DATA,
        set_data_body("/null", Some(b""), -1),
        "set empty",
    );
    assert_data(&mut conn, "/null", Some(b""));

    // create2 answers the Stat (dataLength 0); a container keeps null too.
    let body = ok(&mut conn, CREATE2, create_body("/c2", None, 0), "create2");
    let mut r = JuteReader::new(&body);
    assert_eq!(r.string(), "/c2");
    assert_eq!(data_length(r.buf), 0);
    assert_data(&mut conn, "/c2", None);
    ok(
        &mut conn,
        CREATE_CONTAINER,
        create_body("/box", None, 4),
        "container",
    );
    assert_data(&mut conn, "/box", None);
    // exists reports dataLength 0 for null.
    let body = ok(
        &mut conn,
        op::EXISTS,
        Jute::new().string("/c2").boolean(false),
        "exists",
    );
    assert_eq!(data_length(&body), 0);
}

/// A multi of `ops` (opcode, body), closed by the done header.
fn multi_body(ops: Vec<(i32, Jute)>) -> Jute {
    let mut j = Jute::new();
    for (code, body) in ops {
        j = j.int(code).boolean(false).int(-1).raw(&body.0);
    }
    j.int(-1).boolean(true).int(-1)
}

#[test]
fn null_data_through_multi_and_multi_read() {
    let server = Server::start_default();
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    ok(
        &mut conn,
        op::CREATE,
        create_body("/m", Some(b"abc"), 0),
        "create",
    );
    let body = multi_body(vec![
        (op::CREATE, create_body("/m/null", None, 0)),
        (op::CREATE, create_body("/m/empty", Some(b""), 0)),
        (op::SET_DATA, set_data_body("/m", None, -1)),
    ]);
    ok(&mut conn, op::MULTI, body, "multi");
    assert_data(&mut conn, "/m/null", None);
    assert_data(&mut conn, "/m/empty", Some(b""));
    assert_data(&mut conn, "/m", None);

    let get = |path: &str| (op::GET_DATA, Jute::new().string(path).boolean(false));
    let body = multi_body(vec![get("/m/null"), get("/m/empty"), get("/m")]);
    let reply = ok(&mut conn, MULTI_READ, body, "multiRead");
    let mut r = JuteReader::new(&reply);
    let mut got = Vec::new();
    for _ in 0..3 {
        let (kind, done, err) = (r.int(), r.boolean(), r.int());
        assert_eq!((kind, done, err), (op::GET_DATA, false, 0));
        got.push(read_data(&mut r));
        let (stat, rest) = r.buf.split_at(STAT_BYTES);
        assert_eq!(data_length(stat), 0);
        r.buf = rest;
    }
    assert_eq!(got, vec![None, Some(Vec::new()), None]);
    assert_eq!((r.int(), r.boolean(), r.int()), (-1, true, -1));
}

/// Every file under `dir` whose name starts with `snapshot.` (zoocore's and ZooKeeper's).
fn snapshots(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                if name.starts_with("snapshot.") && !name.ends_with(".tmp") {
                    found.push(name.to_owned());
                }
            }
        }
    }
    found
}

/// Null data in a snapshot and in the log after it: a kill -9 and a restart load the
/// snapshot and replay the log, and null is still null, empty still empty.
#[test]
fn null_data_survives_a_restart_from_snapshot_and_log() {
    let options = Options {
        extra_cfg: vec!["snapCount=20".into()],
        ..Options::default()
    };
    let mut server = Server::start_with(Target::from_env(), options);
    let (mut conn, _) = RawConn::open_session(server.addr(), 30_000);
    ok(
        &mut conn,
        op::CREATE,
        create_body("/snap-null", None, 0),
        "create",
    );
    ok(
        &mut conn,
        op::CREATE,
        create_body("/snap-empty", Some(b""), 0),
        "create",
    );
    ok(
        &mut conn,
        op::CREATE,
        create_body("/snap-set", Some(b"x"), 0),
        "create",
    );
    ok(
        &mut conn,
        op::SET_DATA,
        set_data_body("/snap-set", None, -1),
        "set",
    );
    // Enough writes for a snapshot (ZooKeeper takes one between snapCount/2 and snapCount).
    for i in 0..60 {
        let path = format!("/fill{i}");
        ok(
            &mut conn,
            op::CREATE,
            create_body(&path, Some(b"f"), 0),
            "fill",
        );
    }
    let data_dir = server.dir().join("data");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while snapshots(&data_dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot under {}",
            data_dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(
        &mut conn,
        op::CREATE,
        create_body("/log-null", None, 0),
        "create",
    );
    ok(
        &mut conn,
        op::SET_DATA,
        set_data_body("/snap-empty", None, -1),
        "set",
    );
    ok(
        &mut conn,
        op::CREATE,
        create_body("/log-empty", Some(b""), 0),
        "create",
    );
    drop(conn);

    server.kill9();
    server.start_again();
    let (mut conn, _) = RawConn::open_session(server.addr(), 30_000);
    assert_data(&mut conn, "/snap-null", None);
    assert_data(&mut conn, "/snap-set", None);
    assert_data(&mut conn, "/snap-empty", None);
    assert_data(&mut conn, "/log-null", None);
    assert_data(&mut conn, "/log-empty", Some(b""));
    assert_data(&mut conn, "/fill59", Some(b"f"));
}

/// zkCli 3.8's `create /x` sends null data and `get /x` prints `null` for it; `set` to a
/// value prints the value.
#[test]
fn zkcli_create_without_data_gets_null() {
    let server = Server::start_default();
    let output = zkcli::run_with(
        &server.connect_string(),
        server.dir(),
        &[],
        "create /zk-null\nget /zk-null\nset /zk-null v1\nget /zk-null",
    );
    let (text, errors) = (&output.stdout, &output.stderr);
    // zkCli prints `Created` on stderr and what `get` reads on stdout, after the event of
    // its connection.
    assert!(
        errors.contains("Created /zk-null"),
        "create failed:\n{errors}\n{text}"
    );
    let printed: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.contains("state:SyncConnected"))
        .skip(1)
        .filter(|l| !l.is_empty() && !l.starts_with("WATCHER") && !l.starts_with("WatchedEvent"))
        .collect();
    assert_eq!(
        printed,
        vec!["null", "v1"],
        "`get` prints null for a node created without data, then v1 after `set`:\n{text}"
    );
    // The raw reply agrees.
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    assert_data(&mut conn, "/zk-null", Some(b"v1"));
}

/// `sync` then getData on one member: what it answers once it has every committed write.
fn synced_data(server: &Server, path: &str) -> Option<Vec<u8>> {
    let (mut conn, _) = RawConn::open_session(server.addr(), 30_000);
    ok(&mut conn, SYNC, Jute::new().string(path), "sync");
    let (data, length, _) = get_data(&mut conn, path);
    assert_eq!(length, data.as_ref().map_or(0, |d| d.len() as i32));
    data
}

/// zoocore only (the harness starts zoocore ensembles): null written through a follower is
/// null on every member, and on a follower whose data was wiped and that synced back from
/// the leader.
#[test]
fn null_data_through_a_follower_of_three_voters() {
    if Target::from_env() == Target::Apache {
        return;
    }
    let mut servers = Server::start_ensemble(3, 0, ensemble::options());
    let follower = ensemble::run(async {
        let leader = await_settled(&servers).await;
        (leader + 1) % 3
    });
    let (mut conn, _) = RawConn::open_session(servers[follower].addr(), 30_000);
    ok(
        &mut conn,
        op::CREATE,
        create_body("/f-null", None, 0),
        "create",
    );
    ok(
        &mut conn,
        op::CREATE,
        create_body("/f-empty", Some(b""), 0),
        "create",
    );
    ok(
        &mut conn,
        op::CREATE,
        create_body("/f-set", Some(b"x"), 0),
        "create",
    );
    let body = multi_body(vec![(op::SET_DATA, set_data_body("/f-set", None, -1))]);
    ok(&mut conn, op::MULTI, body, "multi setData null");
    drop(conn);
    for (i, server) in servers.iter().enumerate() {
        assert_eq!(synced_data(server, "/f-null"), None, "member {i}");
        assert_eq!(
            synced_data(server, "/f-empty"),
            Some(Vec::new()),
            "member {i}"
        );
        assert_eq!(synced_data(server, "/f-set"), None, "member {i}");
    }

    let wiped = (follower + 1) % 3;
    servers[wiped].stop();
    servers[wiped].wipe_data();
    servers[wiped].start_again();
    ensemble::run(async {
        await_settled(&servers).await;
    });
    assert_eq!(synced_data(&servers[wiped], "/f-null"), None);
    assert_eq!(synced_data(&servers[wiped], "/f-empty"), Some(Vec::new()));
    assert_eq!(synced_data(&servers[wiped], "/f-set"), None);
}
