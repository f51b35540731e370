//! Limits a client can run into: maxClientCnxns per client IP, globalOutstandingLimit
//! pushing back on a client that pipelines far more than the limit (every request still
//! answered, in order), and, for zoocore, executors pinned only inside the process's CPU
//! affinity mask.

use std::time::Duration;

use zoocore_e2e::raw::{self, RawConn};
use zoocore_e2e::{Options, Server, Target};

const CLOSE_WAIT: Duration = Duration::from_secs(3);

fn with_cfg(lines: &[&str]) -> Options {
    Options {
        extra_cfg: lines.iter().map(|l| l.to_string()).collect(),
        ..Options::default()
    }
}

#[test]
fn max_client_cnxns_refuses_connections_past_the_limit() {
    let server = Server::start_with(Target::from_env(), with_cfg(&["maxClientCnxns=2"]));
    let (mut a, _) = RawConn::open_session(server.addr(), 10_000);
    let (_b, _) = RawConn::open_session(server.addr(), 10_000);
    let mut third = RawConn::connect(server.addr()).unwrap();
    // The server closes the third connection without answering its handshake.
    let answer = third.handshake(10_000, 0, &[0; 16], 0);
    assert!(
        answer.is_err() || third.is_closed_within(CLOSE_WAIT),
        "third connection refused: {answer:?}"
    );
    assert_eq!(
        a.call(raw::op::EXISTS, raw::path_watch_body("/", false))
            .err,
        0,
        "the first two still work"
    );
    drop(a);
    // Once one goes, a new one is admitted.
    let deadline = std::time::Instant::now() + CLOSE_WAIT;
    loop {
        let mut again = RawConn::connect(server.addr()).unwrap();
        if let Ok(answer) = again.handshake(10_000, 0, &[0; 16], 0) {
            assert!(answer.session_id != 0, "a session for the freed place");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the freed place is given back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pipelining_past_the_outstanding_limit_answers_everything_in_order() {
    let server = Server::start_with(Target::from_env(), with_cfg(&["globalOutstandingLimit=2"]));
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    const N: i32 = 300;
    for i in 0..N {
        let path = format!("/p{i}");
        if i % 2 == 0 {
            conn.send(i + 1, raw::op::CREATE, &raw::create_body(&path, b"x", 0))
                .unwrap();
        } else {
            // A read right behind the write of the same session must see it.
            let prev = format!("/p{}", i - 1);
            conn.send(
                i + 1,
                raw::op::GET_DATA,
                &raw::path_watch_body(&prev, false),
            )
            .unwrap();
        }
    }
    let mut last_zxid = 0;
    for i in 0..N {
        let reply = conn.read_reply().unwrap();
        assert_eq!(reply.xid, i + 1, "answers come back in request order");
        assert_eq!(reply.err, 0, "request {} failed", i + 1);
        assert!(reply.zxid >= last_zxid, "zxids never go back");
        last_zxid = reply.zxid;
    }
}

/// zoocore with CPU 1 as its whole affinity mask.
fn on_cpu_1(extra_cfg: &[&str]) -> Server {
    Server::start_with(
        Target::Zoocore,
        Options {
            cpu_list: Some("1".into()),
            ..with_cfg(extra_cfg)
        },
    )
}

/// `file` of /proc/<pid>/task/<tid>/ for every thread of the server.
fn per_thread(server: &Server, file: &str) -> Vec<String> {
    let pid = server.pid().expect("running");
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|task| std::fs::read_to_string(task.unwrap().path().join(file)).unwrap())
        .collect()
}

#[test]
fn executors_stay_inside_the_affinity_mask() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("pinning is zoocore's own; nothing to check on Apache ZooKeeper");
        return;
    }
    let server = on_cpu_1(&["zoocore.shards=2"]);
    let mut seen = 0;
    for status in per_thread(&server, "status") {
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(cpus, "1", "every thread stays on CPU 1");
        seen += 1;
    }
    assert!(
        seen >= 3,
        "the core and two shards run as threads ({seen} seen)"
    );
    assert!(server.four_letter("srvr").contains("Mode: standalone"));
}

/// Given one CPU, the server runs one executor thread: the sessions live on the core's
/// executor (`zoocore.shards` resolves to 0), and a real client's session, writes, reads and
/// watches behave as on a shard of their own.
#[test]
fn one_cpu_runs_the_sessions_on_the_core_executor() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("zoocore's executors; nothing to check on Apache ZooKeeper");
        return;
    }
    let server = on_cpu_1(&[]);
    // Thread names: an executor's, and its blocking pool's threads, carry its name.
    let threads: Vec<String> = per_thread(&server, "comm")
        .iter()
        .map(|comm| comm.trim().to_string())
        .collect();
    assert!(
        threads.iter().any(|t| t.starts_with("zab-core"))
            && !threads.iter().any(|t| t.starts_with("shard-")),
        "the core's executor and no shard's: {threads:?}"
    );
    let conf = zoocore_e2e::parse_key_values(&server.four_letter("conf"));
    assert_eq!(conf["zoocore.shards"], "0", "{conf:?}");

    zoocore_e2e::run(async {
        let zk = zoocore_e2e::connect(&server).await;
        let other = zoocore_e2e::connect(&server).await;
        let persistent = zoocore_e2e::mode(zookeeper_client::CreateMode::Persistent);
        zk.create("/one", b"a", &persistent).await.unwrap();
        let (data, _, watch) = other.get_and_watch_data("/one").await.unwrap();
        assert_eq!(data, b"a");
        zk.set_data("/one", b"b", None).await.unwrap();
        let event = watch.changed().await;
        assert_eq!(
            event.event_type,
            zookeeper_client::EventType::NodeDataChanged
        );
        assert_eq!(other.get_data("/one").await.unwrap().0, b"b");
        let ephemeral = zoocore_e2e::mode(zookeeper_client::CreateMode::Ephemeral);
        other.create("/one/e", b"", &ephemeral).await.unwrap();
        drop(other);
        for _ in 0..100 {
            if zk.check_stat("/one/e").await.unwrap().is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the closed session's ephemeral node stays");
    });
}

#[test]
fn mntr_reports_the_log_and_its_fsyncs() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("zoocore's own mntr keys");
        return;
    }
    let server = Server::start_with(Target::Zoocore, Options::default());
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    for i in 0..5 {
        assert_eq!(
            conn.call(
                raw::op::CREATE,
                raw::create_body(&format!("/m{i}"), b"x", 0)
            )
            .err,
            0
        );
    }
    let mntr = zoocore_e2e::parse_key_values(&server.four_letter("mntr"));
    let n = |k: &str| {
        mntr[k]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{k} is a number: {mntr:?}"))
    };
    assert!(
        n("zoocore_log_records") >= 6,
        "the session and five creates are logged"
    );
    assert!(n("zoocore_fsync_count") >= 1, "and synced");
    assert!(n("zoocore_fsync_max_us") >= n("zoocore_fsync_p99_us"));
    assert_eq!(n("zk_fsync_threshold_exceed_count"), 0);
}

/// A client that registers a recursive watch on "/" and never reads: its answers stop at the
/// unsent cap, but other clients' writes keep making notifications for it. Past the hard cap
/// (32 x jute.maxbuffer) zoocore closes that connection with a logged reason, and the writer
/// goes on. Apache ZooKeeper 3.8 queues such notifications without bound (until the silent
/// session expires), so this is zoocore's own limit.
#[test]
fn a_watcher_that_never_reads_is_closed_past_the_hard_cap() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("zoocore's own limit; Apache queues without bound");
        return;
    }
    let server = Server::start_with(Target::Zoocore, with_cfg(&["jute.maxbuffer=65536"]));
    let (mut watcher, _) = RawConn::open_session(server.addr(), 30_000);
    // addWatch (106) "/" PERSISTENT_RECURSIVE (1).
    let add_watch = raw::Jute::new().string("/").int(1);
    assert_eq!(watcher.call(106, add_watch).err, 0);
    let (mut writer, _) = RawConn::open_session(server.addr(), 30_000);
    // Long names make long notifications: 100 nodes of ~200 bytes of path each.
    let paths: Vec<String> = (0..100)
        .map(|i| format!("/{}{i:03}", "n".repeat(200)))
        .collect();
    for p in &paths {
        assert_eq!(
            writer
                .call(raw::op::CREATE, raw::create_body(p, b"", 0))
                .err,
            0
        );
    }
    let hard_cap = 32 * 65536;
    // Well past the hard cap plus what the kernel's socket buffers can hold (a few MB).
    let notification_bytes = 260;
    let rounds = (hard_cap + 12 * 1024 * 1024) / (notification_bytes * paths.len()) + 1;
    let mut closed_at = None;
    for round in 0..rounds {
        let mut multi = raw::Jute::new();
        for p in &paths {
            multi = multi
                .int(raw::op::SET_DATA)
                .boolean(false)
                .int(-1)
                .raw(&raw::set_data_body(p, b"x", -1).0);
        }
        let multi = multi.int(-1).boolean(true).int(-1);
        assert_eq!(
            writer.call(raw::op::MULTI, multi).err,
            0,
            "the writer goes on"
        );
        if server.log_text().contains("the client does not read") {
            closed_at = Some(round);
            break;
        }
    }
    let closed_at = closed_at.unwrap_or_else(|| {
        panic!(
            "no close after {rounds} rounds of 100 notifications\n{}",
            server.log_tail()
        )
    });
    eprintln!("closed after {closed_at} rounds of 100 notifications");
    assert!(
        watcher.is_closed_within(Duration::from_secs(10)),
        "the watcher's connection is closed"
    );
    assert_eq!(
        writer
            .call(raw::op::EXISTS, raw::path_watch_body("/", false))
            .err,
        0,
        "the writer still works"
    );
}

/// With the whole budget in use, connections that pipeline reads all wait for units at once.
/// None may wait while holding units in answers it has not written (conn.rs writes its
/// answers before it waits), or connections could each hold the units the others wait for.
/// A liveness check: every request of 16 such clients against a budget of 8 is answered.
#[test]
fn a_spent_budget_never_stalls_connections_holding_unwritten_answers() {
    every_pipelined_request_answered(8, 16, raw::op::GET_DATA, |_| {
        raw::path_watch_body("/r", false)
    });
}

/// The same with writes, whose answers arrive while a connection waits for a unit (after
/// their commit, not while it decodes): the wait must end to write them. It did not: 32
/// connections pipelining setData against `globalOutstandingLimit=1000` all stopped, every
/// unit in an answer that its connection, waiting for a unit, never wrote (session 5).
#[test]
fn a_spent_budget_never_stalls_connections_whose_write_answers_arrive_while_they_wait() {
    // A connection stops decoding at a quarter of the budget (limits::conn_permits_max):
    // with 1000 units and 32 connections, some hold units below their share when the
    // budget runs out, and wait; with 8 units and 16 connections they never did.
    every_pipelined_request_answered(1000, 32, raw::op::SET_DATA, |i| {
        raw::Jute::new()
            .string("/r")
            .buffer(&i.to_be_bytes())
            .int(-1)
    });
}

/// `clients` clients each pipeline 300 requests built by `body` (the i-th gets `body(i)`)
/// against a server whose `globalOutstandingLimit` is `budget`, then read every answer, in
/// order and without error, within 60 s of the start.
fn every_pipelined_request_answered(
    budget: u32,
    clients: usize,
    op: i32,
    body: fn(i32) -> raw::Jute,
) {
    let limit = format!("globalOutstandingLimit={budget}");
    let server = Server::start_with(Target::from_env(), with_cfg(&[&limit]));
    let (mut setup, _) = RawConn::open_session(server.addr(), 30_000);
    assert_eq!(
        setup
            .call(raw::op::CREATE, raw::create_body("/r", &[7; 512], 0))
            .err,
        0
    );
    const REQUESTS: i32 = 300;
    let addr = server.addr();
    let clients: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut conn, _) = RawConn::open_session(addr, 30_000);
                let mut batch = raw::Jute::new();
                for i in 0..REQUESTS {
                    let body = body(i);
                    batch = batch
                        .int(8 + body.0.len() as i32)
                        .int(i + 1)
                        .int(op)
                        .raw(&body.0);
                }
                std::io::Write::write_all(&mut conn.stream, &batch.0).expect("requests sent");
                for i in 0..REQUESTS {
                    let reply = conn.read_reply().expect("every request answered");
                    assert_eq!((reply.xid, reply.err), (i + 1, 0));
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for c in clients {
        while !c.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "a client still waits for answers after 60 s: the budget stalled\n{}",
                server.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c.join().expect("client thread");
    }
}
