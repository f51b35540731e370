//! Proves Apache's own command-line client, zkCli.sh from the Debian `zookeeper` package,
//! can drive a whole user session against the target: create -s / -e -s with the
//! ten-digit suffixes, get -w and the watch event it prints after set, ls -R, stat's field
//! listing, getAcl, addauth digest with setAcl auth::cdrwa, deleteall, and the error text for
//! a missing node. zkCli is not installed by this test; without it the test fails telling
//! to run `apt-get install zookeeper`.

use zoocore_e2e::raw::{self, op, RawConn};
use zoocore_e2e::*;

fn assert_contains(text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "zkCli output lacks {needle:?}:\n{text}"
    );
}

#[test]
fn zkcli_user_session() {
    let server = Server::start_default();
    let out = zkcli::run(
        &server,
        "create /app\n\
         create -s /app/job- d1\n\
         create -e -s /app/lock- me\n\
         create /app/cfg v1\n\
         get -w /app/cfg\n\
         set /app/cfg v2\n\
         ls -R /app\n\
         stat /app/cfg\n\
         getAcl /app\n\
         addauth digest alice:alicepass\n\
         setAcl /app/cfg auth::cdrwa\n\
         getAcl /app/cfg\n\
         get /app/cfg\n\
         get /nope",
    );
    assert_contains(&out, "Created /app\n");
    assert_contains(&out, "Created /app/job-0000000000\n");
    assert_contains(&out, "Created /app/lock-0000000001\n");
    assert_contains(
        &out,
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/app/cfg",
    );
    assert_contains(
        &out,
        "/app\n/app/cfg\n/app/job-0000000000\n/app/lock-0000000001\n",
    );
    for line in [
        "dataVersion = 1",
        "aclVersion = 0",
        "ephemeralOwner = 0x0",
        "dataLength = 2",
        "numChildren = 0",
    ] {
        assert_contains(&out, line);
    }
    let stat_czxid = out
        .lines()
        .find(|l| l.starts_with("cZxid = 0x"))
        .expect("stat prints cZxid");
    let stat_mzxid = out
        .lines()
        .find(|l| l.starts_with("mZxid = 0x"))
        .expect("stat prints mZxid");
    assert_ne!(stat_czxid[8..], stat_mzxid[8..], "set moved mZxid");
    assert_contains(&out, "'world,'anyone\n: cdrwa\n");
    assert_contains(
        &out,
        "'digest,'alice:k8B+4BwmA/Si3Gj3ZYeOl9g4mtE=\n: cdrwa\n",
    );
    assert_contains(&out, "v2\n");
    assert_contains(&out, "Node does not exist: /nope");

    // The ephemeral went with zkCli's session; the rest is there for another client.
    let (mut conn, _) = RawConn::open_session(server.addr(), 10_000);
    assert_eq!(
        conn.call(
            op::EXISTS,
            raw::path_watch_body("/app/job-0000000000", false)
        )
        .err,
        0
    );
    assert_eq!(
        conn.call(
            op::EXISTS,
            raw::path_watch_body("/app/lock-0000000001", false)
        )
        .err,
        -101
    );
    assert_eq!(
        conn.call(op::GET_DATA, raw::path_watch_body("/app/cfg", false))
            .err,
        -102,
        "NoAuth without alice"
    );

    let out = zkcli::run(
        &server,
        "addauth digest alice:alicepass\ndeleteall /app\nls /",
    );
    assert_contains(&out, "[zookeeper]");
    assert_eq!(
        conn.call(op::EXISTS, raw::path_watch_body("/app", false))
            .err,
        -101,
        "deleteall removed /app"
    );
}

/// zkCli 3.8's addWatch reads ZooKeeper's answer body (an ErrorResponse int); the persistent
/// recursive watch then reports the creation and the change of a node below it.
#[test]
fn add_watch_persistent_recursive_from_zkcli() {
    let server = Server::start(Target::from_env());
    let out = zkcli::run(
        &server,
        "addWatch -m PERSISTENT_RECURSIVE /x\ncreate /x 0\ncreate /x/y 1\nset /x/y 2\nget /x/y",
    );
    assert!(
        !out.contains("ConnectionLoss"),
        "no connection loss:\n{out}"
    );
    assert_contains(&out, "Created /x/y");
    assert_contains(&out, "type:NodeCreated path:/x/y");
    assert_contains(&out, "type:NodeDataChanged path:/x/y");
}

/// zkCli's setquota and listquota: the server counts the quota'd subtree into the stats
/// node (nodes and data bytes, the quota'd path included) and keeps counting as it changes.
#[test]
fn setquota_and_listquota_track_the_subtree() {
    let server = Server::start(Target::from_env());
    let out = zkcli::run(
        &server,
        "create /q\ncreate /q/a 12345\nsetquota -n 2 /q\nlistquota /q\n\
         create /q/b x\ncreate /q/c y\nlistquota /q",
    );
    assert_contains(&out, "Output stat for /q count=2,bytes=5");
    assert_contains(&out, "Output stat for /q count=4,bytes=7");
}

/// zkCli's hard quotas (`setquota -N`/`-B`) under `enforceQuota=true`: the create past the
/// count (the quota'd node counts itself) and the setData past the bytes are refused with
/// QUOTAEXCEEDED, which zkCli prints as "Quota has exceeded", and change nothing.
#[test]
fn hard_quotas_refuse_writes_under_enforce_quota() {
    let options = Options {
        extra_cfg: vec!["enforceQuota=true".to_owned()],
        ..Options::default()
    };
    let server = Server::start_with(Target::from_env(), options);
    let out = zkcli::run(
        &server,
        "create /hq\nsetquota -N 3 /hq\ncreate /hq/a 1\ncreate /hq/b 2\ncreate /hq/c 3\n\
         create /hb\nsetquota -B 4 /hb\ncreate /hb/a 123\nset /hb/a 12345\nget /hb/a\n\
         listquota /hq",
    );
    assert_contains(&out, "Created /hq/b");
    assert_contains(&out, "Quota has exceeded : /hq");
    assert!(
        !out.contains("Created /hq/c"),
        "a create past the hard count:\n{out}"
    );
    assert_contains(&out, "Quota has exceeded : /hb");
    assert_contains(&out, "Output stat for /hq count=3,bytes=2");
    run(async {
        let zk = zookeeper_client::Client::connect(&server.connect_string())
            .await
            .unwrap();
        assert!(zk.check_stat("/hq/c").await.unwrap().is_none());
        assert_eq!(zk.get_data("/hb/a").await.unwrap().0, b"123");
    });
}
