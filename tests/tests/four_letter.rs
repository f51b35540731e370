//! Proves the four-letter words answer in the formats monitoring scripts parse: `ruok` →
//! `imok`; `srvr`/`stat` as `Key: value` lines with `Mode: standalone`; `mntr` as
//! `key<TAB>value` lines with `zk_version`, `zk_server_state`, counters that track the tree;
//! `conf`/`envi` as `key=value`; `cons` one line per connection; `wchs` watch totals; `dirs`;
//! `isro` → `rw`.

use zoocore_e2e::*;
use zookeeper_client::CreateMode;

fn number(map: &std::collections::BTreeMap<String, String>, key: &str) -> i64 {
    let value = map
        .get(key)
        .unwrap_or_else(|| panic!("missing key {key:?} in {map:?}"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {value:?} is not a number"))
}

#[test]
fn ruok_isro_and_srvr() {
    run(async {
        let server = Server::start_default();
        assert_eq!(server.four_letter("ruok"), "imok");
        assert_eq!(server.four_letter("isro"), "rw");
        let srvr = server.four_letter("srvr");
        let kv = parse_key_values(&srvr);
        assert!(
            kv["Zookeeper version"].starts_with("3."),
            "version line: {srvr}"
        );
        assert_eq!(kv["Mode"], "standalone");
        assert!(kv["Latency min/avg/max"].split('/').count() == 3, "{srvr}");
        let nodes_before = number(&kv, "Node count");
        assert!(kv["Zxid"].starts_with("0x"), "hex zxid: {srvr}");

        let zk = connect(&server).await;
        zk.create("/n1", b"", &persistent()).await.unwrap();
        let (stat, _) = zk.create("/n2", b"", &persistent()).await.unwrap();
        let kv = parse_key_values(&server.four_letter("srvr"));
        assert_eq!(number(&kv, "Node count"), nodes_before + 2);
        assert_eq!(
            i64::from_str_radix(kv["Zxid"].trim_start_matches("0x"), 16).unwrap(),
            stat.czxid
        );
        assert!(number(&kv, "Connections") >= 1);
        // A request holds its unit until its answer has been written, which is a moment
        // after the client has read it: with several shards `srvr` may look in between.
        let mut outstanding = number(&kv, "Outstanding");
        for _ in 0..100 {
            if outstanding == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            outstanding = number(
                &parse_key_values(&server.four_letter("srvr")),
                "Outstanding",
            );
        }
        assert_eq!(outstanding, 0, "nothing in flight once the answers are out");
    });
}

#[test]
fn stat_lists_clients_then_server_fields() {
    run(async {
        let server = Server::start_default();
        let _zk = connect(&server).await;
        let stat = server.four_letter("stat");
        let mut lines = stat.lines();
        assert!(
            lines.next().unwrap().starts_with("Zookeeper version: 3."),
            "{stat}"
        );
        assert_eq!(lines.next(), Some("Clients:"));
        let clients: Vec<&str> = lines.take_while(|l| !l.is_empty()).collect();
        // Apache lists the asking four-letter connection too, as `[0]` (no session).
        assert_eq!(
            clients.len(),
            2,
            "session + the stat connection itself: {clients:?}"
        );
        assert!(
            clients.iter().all(|c| c.starts_with(" /127.0.0.1:")),
            "{clients:?}"
        );
        assert!(
            clients.iter().any(|c| c.contains("[1](queued=")),
            "session connection: {clients:?}"
        );
        assert!(
            clients
                .iter()
                .any(|c| c.ends_with("[0](queued=0,recved=1,sent=0)")),
            "4lw connection: {clients:?}"
        );
        let kv = parse_key_values(&stat);
        assert_eq!(kv["Mode"], "standalone");
        assert!(number(&kv, "Node count") >= 4);
    });
}

#[test]
fn mntr_counts_track_the_tree() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let before = parse_key_values(&server.four_letter("mntr"));
        assert!(before["zk_version"].starts_with("3."), "{before:?}");
        assert_eq!(before["zk_server_state"], "standalone");
        zk.create("/e1", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        zk.create("/e2", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        zk.create("/p", b"12345", &persistent()).await.unwrap();
        let _watch = zk.get_and_watch_data("/p").await.unwrap();
        let after = parse_key_values(&server.four_letter("mntr"));
        assert_eq!(
            number(&after, "zk_znode_count"),
            number(&before, "zk_znode_count") + 3
        );
        assert_eq!(number(&after, "zk_ephemerals_count"), 2);
        assert_eq!(number(&after, "zk_watch_count"), 1);
        assert!(number(&after, "zk_num_alive_connections") >= 1);
        assert!(
            number(&after, "zk_approximate_data_size")
                > number(&before, "zk_approximate_data_size")
        );
        for key in [
            "zk_avg_latency",
            "zk_max_latency",
            "zk_min_latency",
            "zk_packets_received",
            "zk_packets_sent",
        ] {
            assert!(after.contains_key(key), "mntr lacks {key}");
        }
        assert_eq!(number(&after, "zk_outstanding_requests"), 0);
    });
}

#[test]
fn conf_envi_dirs_reflect_the_config() {
    let server = Server::start_default();
    let conf = parse_key_values(&server.four_letter("conf"));
    assert_eq!(conf["clientPort"], PORT.to_string());
    assert_eq!(conf["tickTime"], "200");
    assert_eq!(conf["minSessionTimeout"], "400");
    assert_eq!(conf["maxSessionTimeout"], "60000");
    assert!(
        conf["dataDir"].starts_with(server.dir().to_str().unwrap()),
        "dataDir {}",
        conf["dataDir"]
    );
    let envi = server.four_letter("envi");
    assert!(envi.starts_with("Environment:\n"), "{envi}");
    assert!(parse_key_values(&envi)["zookeeper.version"].starts_with("3."));
    let dirs = parse_key_values(&server.four_letter("dirs"));
    assert!(number(&dirs, "datadir_size") >= 0);
    assert!(number(&dirs, "logdir_size") >= 0);
}

#[test]
fn cons_and_wchs_count_connections_and_watches() {
    run(async {
        let server = Server::start_default();
        let a = connect(&server).await;
        let b = connect(&server).await;
        a.create("/w", b"", &persistent()).await.unwrap();
        let _w1 = a.get_and_watch_data("/w").await.unwrap();
        let _w2 = b.get_and_watch_data("/w").await.unwrap();
        let _w3 = b.check_and_watch_stat("/other").await.unwrap();
        let cons = server.four_letter("cons");
        let sessions: Vec<&str> = cons.lines().filter(|l| l.contains("sid=0x")).collect();
        assert_eq!(
            sessions.len(),
            2,
            "one line per session connection:\n{cons}"
        );
        let sid = format!("sid=0x{:x}", a.session_id().0);
        assert!(cons.contains(&sid), "cons shows {sid}:\n{cons}");
        let wchs = server.four_letter("wchs");
        assert_eq!(wchs, "2 connections watching 2 paths\nTotal watches:3\n");
    });
}

/// dump lists sessions and their ephemerals; gtmk and stmk get and set the trace mask (a long
/// after the word); cons lists the asking connection too. Apache answers all of them.
#[test]
fn dump_trace_mask_and_cons_with_the_asker() {
    run(async {
        let server = Server::start(Target::from_env());
        let zk = connect(&server).await;
        zk.create("/e", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        let session = format!("0x{:x}", zk.session_id().0);
        let dump = server.four_letter("dump");
        assert!(dump.starts_with("SessionTracker dump:\n"), "{dump}");
        let ephemerals = dump
            .split("ephemeral nodes dump:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("no ephemerals part: {dump}"));
        assert!(
            ephemerals.contains(&format!("{session}:\n\t/e\n")),
            "session {session} with /e: {dump}"
        );
        assert!(dump.contains("Connections dump:\n"), "{dump}");

        assert_eq!(server.four_letter("gtmk"), "306", "ZooTrace's default mask");
        assert_eq!(server.four_letter("stmk\0\0\0\0\0\0\0\x07"), "7");
        assert_eq!(server.four_letter("gtmk"), "7");

        let cons = server.four_letter("cons");
        let lines: Vec<&str> = cons.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "the client and the asker: {cons}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("[0](queued=0,recved=1,sent=0)")),
            "the asking connection: {cons}"
        );
    });
}
