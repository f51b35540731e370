//! Nothing acknowledged is lost: a writer pipelines creates and atomic two-node multis while
//! the server is killed with SIGKILL at a varying point; after each restart every create that
//! was answered is there with the zxid it was answered with, every answered multi is whole,
//! and no multi is half-applied. Repeated over several kill/restart rounds on one data
//! directory, so later rounds also check what earlier rounds left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zoocore_e2e::raw::{self, op, Jute, RawConn};
use zoocore_e2e::{Options, Server, Target};

const ROUNDS: u64 = 5;
const WINDOW: usize = 64;

/// What the writer sent: index → (is a multi, answered zxid if acknowledged).
type Sent = BTreeMap<u64, (bool, Option<i64>)>;

fn multi_body(a: &str, b: &str) -> Jute {
    let mut body = Jute::new();
    for path in [a, b] {
        body = body.int(op::CREATE).boolean(false).int(-1);
        body.0.extend_from_slice(&raw::create_body(path, b"m", 0).0);
    }
    body.int(-1).boolean(true).int(-1)
}

/// Writes until the connection dies; returns what was sent and what was answered. `acked`
/// counts answers as they come, so the killer can wait for the stream to be flowing.
fn write_until_killed(mut conn: RawConn, round: u64, acked: Arc<AtomicU64>) -> Sent {
    let mut sent = Sent::new();
    let mut in_flight = std::collections::VecDeque::new();
    let mut next = 0u64;
    loop {
        while in_flight.len() < WINDOW {
            let multi = next % 5 == 4;
            let xid = (next + 1) as i32;
            let result = if multi {
                conn.send(
                    xid,
                    op::MULTI,
                    &multi_body(&format!("/r{round}a{next}"), &format!("/r{round}b{next}")),
                )
            } else {
                conn.send(
                    xid,
                    op::CREATE,
                    &raw::create_body(&format!("/r{round}n{next}"), &next.to_be_bytes(), 0),
                )
            };
            if result.is_err() {
                return sent;
            }
            sent.insert(next, (multi, None));
            in_flight.push_back(next);
            next += 1;
        }
        let Ok(reply) = conn.read_reply() else {
            return sent;
        };
        let Some(i) = in_flight.pop_front() else {
            return sent;
        };
        assert_eq!(reply.xid, (i + 1) as i32, "answers in order");
        assert_eq!(reply.err, 0, "write {i} failed");
        sent.get_mut(&i).expect("sent").1 = Some(reply.zxid);
        acked.fetch_add(1, Ordering::Relaxed);
    }
}

fn exists(conn: &mut RawConn, path: &str) -> Option<raw::Reply> {
    let reply = conn.call(op::EXISTS, raw::path_watch_body(path, false));
    (reply.err == 0).then_some(reply)
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("kill -9 durability is checked on zoocore");
    }
    let mut server = Server::start_with(
        Target::from_env(),
        Options {
            extra_cfg: vec!["snapCount=200".into()],
            ..Options::default()
        },
    );
    let mut history: Vec<(u64, Sent)> = Vec::new();
    for round in 0..ROUNDS {
        let (conn, _) = RawConn::open_session(server.addr(), 30_000);
        let acked = Arc::new(AtomicU64::new(0));
        let writer = {
            let acked = acked.clone();
            thread::spawn(move || write_until_killed(conn, round, acked))
        };
        // Once writes are being answered (a loaded machine can take a while to start), kill
        // at a different point of the stream every round: 0 .. 400 ms later.
        let flowing = Instant::now() + Duration::from_secs(20);
        while acked.load(Ordering::Relaxed) < 10 && Instant::now() < flowing {
            thread::sleep(Duration::from_millis(2));
        }
        thread::sleep(Duration::from_millis((round * 7919) % 400));
        server.kill9();
        let sent = writer.join().expect("writer");
        let acked = sent.values().filter(|(_, z)| z.is_some()).count();
        assert!(
            acked > 0,
            "round {round}: the writer got answers before the kill"
        );
        history.push((round, sent));
        server.restart();

        let (mut check, _) = RawConn::open_session(server.addr(), 30_000);
        for (r, sent) in &history {
            for (&i, &(multi, zxid)) in sent {
                if multi {
                    let a = exists(&mut check, &format!("/r{r}a{i}"));
                    let b = exists(&mut check, &format!("/r{r}b{i}"));
                    assert_eq!(
                        a.is_some(),
                        b.is_some(),
                        "round {r} multi {i} is half-applied"
                    );
                    if zxid.is_some() {
                        assert!(
                            a.is_some(),
                            "round {r}: acknowledged multi {i} lost (checked after round {round})"
                        );
                    }
                } else if let Some(zxid) = zxid {
                    let path = format!("/r{r}n{i}");
                    let reply = check.call(op::GET_DATA, raw::path_watch_body(&path, false));
                    assert_eq!(
                        reply.err, 0,
                        "round {r}: acknowledged create {path} lost (checked after round {round})"
                    );
                    let mut body = raw::JuteReader::new(&reply.body);
                    assert_eq!(body.buffer(), i.to_be_bytes(), "{path} keeps its data");
                    assert_eq!(
                        body.long(),
                        zxid,
                        "{path} keeps the czxid it was answered with"
                    );
                }
            }
        }
    }
}
