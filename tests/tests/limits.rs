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

#[test]
fn executors_stay_inside_the_affinity_mask() {
    if Target::from_env() != Target::Zoocore {
        eprintln!("pinning is zoocore's own; nothing to check on Apache ZooKeeper");
        return;
    }
    let server = Server::start_with(
        Target::Zoocore,
        Options {
            cpu_list: Some("1".into()),
            extra_cfg: vec!["zoocore.shards=2".into()],
            ..Options::default()
        },
    );
    let pid = server.pid().expect("running");
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let mut seen = 0;
    for task in tasks {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
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
