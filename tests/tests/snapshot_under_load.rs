//! A snapshot taken while writes flow: a tree of a few tens of MB is built, then a writer
//! keeps pipelining setData while the server (snapCount small) writes a background
//! snapshot. Writes committed after the snapshot's version was pinned (zxid above the
//! snapshot's) and answered before its file appeared are counted: they must be > 0, i.e. the
//! snapshot does not stall commits. Then the server is killed with SIGKILL and restarted, and
//! every znode's data and stat, read before the kill, must read back identically: recovery
//! from that snapshot plus the log rebuilds the live tree. zoocore only (the snapshot file
//! names are zoocore's).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zoocore_e2e::raw::{self, op, RawConn};
use zoocore_e2e::{Options, Server, Target};

const NODES: usize = 12_000;
const VALUE: usize = 2048;
const WINDOW: usize = 128;

/// Sends `bodies` pipelined, `WINDOW` in flight; returns every reply in order.
fn pipeline(conn: &mut RawConn, reqs: Vec<(i32, raw::Jute)>) -> Vec<raw::Reply> {
    let mut replies = Vec::with_capacity(reqs.len());
    let mut in_flight = 0usize;
    let mut next = 0usize;
    while replies.len() < reqs.len() {
        while in_flight < WINDOW && next < reqs.len() {
            let (code, body) = &reqs[next];
            conn.send(next as i32 + 1_000_000, *code, body)
                .expect("send");
            next += 1;
            in_flight += 1;
        }
        let reply = conn.read_reply().expect("reply");
        assert_eq!(reply.xid, replies.len() as i32 + 1_000_000, "in order");
        in_flight -= 1;
        replies.push(reply);
    }
    replies
}

fn path(i: usize) -> String {
    format!("/load/k{i:06}")
}

/// Every znode under /load: path -> (getData reply body: data and stat).
fn read_all(server: &Server) -> BTreeMap<String, Vec<u8>> {
    let (mut conn, _) = RawConn::open_session(server.addr(), 30_000);
    let reqs = (0..NODES)
        .map(|i| (op::GET_DATA, raw::path_watch_body(&path(i), false)))
        .collect();
    let replies = pipeline(&mut conn, reqs);
    replies
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.err, 0, "getData {}", path(i));
            (path(i), r.body)
        })
        .collect()
}

fn final_snapshots(server: &Server) -> BTreeMap<String, Instant> {
    let now = Instant::now();
    std::fs::read_dir(server.dir().join("data"))
        .expect("data dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("snapshot.") && !n.ends_with(".tmp"))
        .map(|n| (n, now))
        .collect()
}

fn snapshot_zxid(name: &str) -> i64 {
    i64::from_str_radix(name.trim_start_matches("snapshot."), 16).expect("hex zxid")
}

#[test]
fn writes_flow_during_a_snapshot_and_recovery_rebuilds_the_live_tree() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("snapshot under load is checked on zoocore");
        return;
    }
    let mut server = Server::start_with(
        Target::Zoocore,
        Options {
            extra_cfg: vec!["snapCount=8000".into()],
            ..Options::default()
        },
    );
    let (mut conn, _) = RawConn::open_session(server.addr(), 30_000);
    let setup: Vec<_> = std::iter::once((op::CREATE, raw::create_body("/load", b"", 0)))
        .chain((0..NODES).map(|i| {
            let value = vec![(i % 251) as u8; VALUE];
            (op::CREATE, raw::create_body(&path(i), &value, 0))
        }))
        .collect();
    for r in pipeline(&mut conn, setup) {
        assert_eq!(r.err, 0, "create");
    }

    // The writer: setData pipelined, recording when each write was answered and its zxid.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut acked: Vec<(i64, Instant)> = Vec::new();
            let mut in_flight = VecDeque::new();
            let mut n = 0usize;
            loop {
                while in_flight.len() < WINDOW && !stop.load(Ordering::Relaxed) {
                    let body = raw::set_data_body(&path(n % NODES), &n.to_be_bytes(), -1);
                    conn.send(n as i32 + 1, op::SET_DATA, &body).expect("send");
                    in_flight.push_back(n);
                    n += 1;
                }
                let Some(i) = in_flight.pop_front() else {
                    return acked;
                };
                let reply = conn.read_reply().expect("reply");
                assert_eq!(reply.xid, i as i32 + 1, "in order");
                assert_eq!(reply.err, 0, "setData");
                acked.push((reply.zxid, Instant::now()));
            }
        })
    };

    // Watch for a snapshot that starts and completes while the writer runs.
    let before = final_snapshots(&server);
    let started = Instant::now();
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    while started.elapsed() < Duration::from_secs(15) {
        for (name, at) in final_snapshots(&server) {
            if !before.contains_key(&name) {
                seen.entry(name).or_insert(at);
            }
        }
        if !seen.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    // Let the writer run a little past the snapshot, then stop it.
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().expect("writer");
    let (name, done_at) = seen.into_iter().next().unwrap_or_else(|| {
        panic!(
            "no snapshot within 15 s of {} writes\n{}",
            acked.len(),
            server.log_tail()
        )
    });
    let pinned = snapshot_zxid(&name);
    let during = acked
        .iter()
        .filter(|&&(zxid, at)| zxid > pinned && at <= done_at)
        .count();
    eprintln!(
        "{name}: {during} writes answered between its pinned version and its completion; \
         {} writes in all",
        acked.len()
    );
    assert!(
        during > 0,
        "no write completed while {name} was written\n{}",
        server.log_tail()
    );

    let live = read_all(&server);
    server.kill9();
    server.restart();
    let recovered = read_all(&server);
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    if let Some(line) = log.lines().rev().find(|l| l.contains("recovered")) {
        assert!(
            !line.contains("snapshot none"),
            "recovered from a snapshot: {line}"
        );
    }
    assert_eq!(live.len(), recovered.len());
    for (p, body) in &live {
        assert_eq!(Some(body), recovered.get(p), "{p} differs after recovery");
    }
}
