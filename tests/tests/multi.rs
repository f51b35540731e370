//! Proves multi transactions are atomic and report like ZooKeeper: a successful multi returns
//! one result per op in order, a failing op rolls back every op before it and the per-op
//! error list marks ops before the failure OK (0), the failing op with its code and ops after
//! it RuntimeInconsistency (-2); check ops; and multiRead returning per-op errors while the
//! other reads succeed.

use zoocore_e2e::raw::{self, op, Jute, JuteReader, RawConn};
use zoocore_e2e::*;
use zookeeper_client::{Error, MultiReadResult, MultiWriteError, MultiWriteResult};

#[test]
fn multi_applies_all_ops_and_reports_each() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/m", b"", &persistent()).await.unwrap();
        zk.create("/m/old", b"", &persistent()).await.unwrap();
        let mut multi = zk.new_multi_writer();
        multi.add_check_version("/m", 0).unwrap();
        multi.add_create("/m/new", b"n", &persistent()).unwrap();
        multi.add_set_data("/m", b"d", Some(0)).unwrap();
        multi.add_delete("/m/old", None).unwrap();
        let results = multi.commit().await.unwrap();
        assert_eq!(results.len(), 4);
        assert!(matches!(results[0], MultiWriteResult::Check));
        match &results[1] {
            // The Stat of a create inside multi is not asserted: Apache 3.8 sends none
            // (the crate reports Stat::is_invalid, czxid -1).
            MultiWriteResult::Create { path, .. } => assert_eq!(path, "/m/new"),
            other => panic!("expected create result, got {other:?}"),
        }
        let create_zxid = zk.get_data("/m/new").await.unwrap().1.czxid;
        match &results[2] {
            MultiWriteResult::SetData { stat } => {
                assert_eq!(stat.version, 1);
                assert_eq!(stat.mzxid, create_zxid, "all ops of a multi share one zxid");
            }
            other => panic!("expected setData result, got {other:?}"),
        }
        assert!(matches!(results[3], MultiWriteResult::Delete));
        assert_eq!(zk.list_children("/m").await.unwrap(), ["new"]);
        let (_, stat) = zk.get_data("/m").await.unwrap();
        assert_eq!(stat.pzxid, create_zxid);
    });
}

#[test]
fn failed_multi_rolls_back_everything() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/r", b"orig", &persistent()).await.unwrap();
        let mut multi = zk.new_multi_writer();
        multi.add_create("/r/a", b"", &persistent()).unwrap();
        multi.add_set_data("/r", b"changed", None).unwrap();
        multi.add_set_data("/r/missing", b"", None).unwrap();
        multi.add_create("/r/b", b"", &persistent()).unwrap();
        let err = multi.commit().await.unwrap_err();
        assert_eq!(
            err,
            MultiWriteError::OperationFailed {
                index: 2,
                source: Error::NoNode
            }
        );
        assert!(
            zk.list_children("/r").await.unwrap().is_empty(),
            "creates rolled back"
        );
        let (data, stat) = zk.get_data("/r").await.unwrap();
        assert_eq!(data, b"orig", "setData rolled back");
        assert_eq!((stat.version, stat.cversion), (0, 0));

        let mut check = zk.new_multi_writer();
        check.add_check_version("/r", 5).unwrap();
        check.add_delete("/r", None).unwrap();
        let err = check.commit().await.unwrap_err();
        assert_eq!(
            err,
            MultiWriteError::OperationFailed {
                index: 0,
                source: Error::BadVersion
            }
        );
        let mut check = zk.new_multi_writer();
        check.add_check_version("/nope", 0).unwrap();
        let err = check.commit().await.unwrap_err();
        assert_eq!(
            err,
            MultiWriteError::OperationFailed {
                index: 0,
                source: Error::NoNode
            }
        );
        assert!(zk.check_stat("/r").await.unwrap().is_some());
    });
}

/// Appends one multi op header and body.
fn multi_op(body: Jute, op_code: i32, op_body: Jute) -> Jute {
    let mut out = body.int(op_code).boolean(false).int(-1);
    out.0.extend_from_slice(&op_body.0);
    out
}

#[test]
fn failed_multi_per_op_error_codes_on_the_wire() {
    let server = Server::start_default();
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    let request = multi_op(Jute::new(), op::CREATE, raw::create_body("/w1", b"", 0));
    let request = multi_op(request, op::CHECK, Jute::new().string("/w1").int(7));
    let request = multi_op(request, op::CREATE, raw::create_body("/w2", b"", 0));
    let request = request.int(-1).boolean(true).int(-1);
    let reply = conn.call(op::MULTI, request);
    // The reply header says OK: the failure is reported only inside the per-op results.
    assert_eq!(reply.err, 0, "multi reply header err");
    let mut r = JuteReader::new(&reply.body);
    let mut codes = Vec::new();
    loop {
        let (op_type, done, err) = (r.int(), r.boolean(), r.int());
        if done {
            assert_eq!((op_type, err), (-1, -1), "terminating header");
            break;
        }
        assert_eq!(
            op_type,
            op::ERROR,
            "every result of a failed multi is an ErrorResult"
        );
        let body_err = r.int();
        assert_eq!(err, body_err, "header err repeats the ErrorResponse code");
        codes.push(body_err);
    }
    assert_eq!(
        codes,
        [0, -103, -2],
        "OK before, BadVersion at, RuntimeInconsistency after"
    );
    let exists = conn.call(op::EXISTS, raw::path_watch_body("/w1", false));
    assert_eq!(exists.err, -101, "/w1 was rolled back");
}

#[test]
fn multi_read_returns_per_op_results() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/mr", b"root", &persistent()).await.unwrap();
        zk.create("/mr/x", b"", &persistent()).await.unwrap();
        let mut reader = zk.new_multi_reader();
        reader.add_get_data("/mr").unwrap();
        reader.add_get_children("/mr").unwrap();
        reader.add_get_data("/mr/none").unwrap();
        reader.add_get_children("/none").unwrap();
        let results = reader.commit().await.unwrap();
        assert_eq!(results.len(), 4);
        match &results[0] {
            MultiReadResult::Data { data, stat } => {
                assert_eq!(data, b"root");
                assert_eq!(stat.num_children, 1);
            }
            other => panic!("expected data, got {other:?}"),
        }
        match &results[1] {
            MultiReadResult::Children { children } => assert_eq!(children, &["x"]),
            other => panic!("expected children, got {other:?}"),
        }
        assert!(
            matches!(results[2], MultiReadResult::Error { err: Error::NoNode }),
            "{:?}",
            results[2]
        );
        assert!(
            matches!(results[3], MultiReadResult::Error { err: Error::NoNode }),
            "{:?}",
            results[3]
        );
    });
}
