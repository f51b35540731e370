//! Proves the basic znode operations behave as ZooKeeper's own clients expect: every create
//! mode (persistent, ephemeral, sequential with the `%010d` suffix taken from the parent's
//! cversion, container, TTL), create2's Stat, versioned delete and setData, every Stat field
//! through create/setData/child changes, the children and ephemerals listings, sync, the
//! error codes of the common failure cases and the built-in `/zookeeper` nodes.

use std::time::Duration;

use zoocore_e2e::*;
use zookeeper_client::{CreateMode, Error};

#[test]
fn create2_returns_full_stat_and_get_data_agrees() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let before = now_ms();
        let (stat, seq) = zk.create("/stat", b"hello", &persistent()).await.unwrap();
        let after = now_ms();
        assert_eq!(seq.into_i64(), -1, "non-sequential create has no sequence");
        assert!(stat.czxid > 0, "czxid {}", stat.czxid);
        assert_eq!(stat.mzxid, stat.czxid, "new node: mzxid == czxid");
        assert_eq!(stat.pzxid, stat.czxid, "new node: pzxid == czxid");
        assert_eq!(stat.ctime, stat.mtime, "new node: mtime == ctime");
        assert!(
            (before - 1000..=after + 1000).contains(&stat.ctime),
            "ctime {} not now",
            stat.ctime
        );
        assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
        assert_eq!(stat.ephemeral_owner, 0, "persistent node has no owner");
        assert_eq!(stat.data_length, 5);
        assert_eq!(stat.num_children, 0);

        let (data, got) = zk.get_data("/stat").await.unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(got, stat, "getData Stat equals create2 Stat");
        assert_eq!(
            zk.check_stat("/stat").await.unwrap(),
            Some(stat),
            "exists Stat equals create2 Stat"
        );
        assert_eq!(
            zk.check_stat("/missing").await.unwrap(),
            None,
            "exists on a missing node"
        );
    });
}

#[test]
fn set_data_and_children_move_each_stat_field() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let (created, _) = zk.create("/p", b"", &persistent()).await.unwrap();

        tokio::time::sleep(Duration::from_millis(20)).await;
        let set = zk.set_data("/p", b"0123456789", Some(0)).await.unwrap();
        assert_eq!(set.czxid, created.czxid, "setData keeps czxid");
        assert!(set.mzxid > created.mzxid, "setData advances mzxid");
        assert_eq!(set.pzxid, created.pzxid, "setData keeps pzxid");
        assert_eq!(set.ctime, created.ctime, "setData keeps ctime");
        assert!(
            set.mtime > created.mtime,
            "setData advances mtime ({} vs {})",
            set.mtime,
            created.mtime
        );
        assert_eq!(set.version, 1);
        assert_eq!((set.cversion, set.aversion), (0, 0));
        assert_eq!(set.data_length, 10);

        let (child, _) = zk.create("/p/c", b"", &persistent()).await.unwrap();
        let (_, parent) = zk.get_data("/p").await.unwrap();
        assert_eq!(parent.cversion, 1, "child create bumps cversion");
        assert_eq!(
            parent.pzxid, child.czxid,
            "pzxid is the child create's zxid"
        );
        assert_eq!(parent.num_children, 1);
        assert_eq!(parent.mzxid, set.mzxid, "child create leaves parent mzxid");
        assert_eq!(parent.version, 1, "child create leaves parent version");

        zk.delete("/p/c", None).await.unwrap();
        let (_, parent) = zk.get_data("/p").await.unwrap();
        assert_eq!(parent.cversion, 2, "child delete bumps cversion");
        assert!(parent.pzxid > child.czxid, "child delete advances pzxid");
        assert_eq!(parent.num_children, 0);
        let (next, _) = zk.create("/q", b"", &persistent()).await.unwrap();
        assert_eq!(
            next.czxid,
            parent.pzxid + 1,
            "the delete was the zxid just before"
        );
    });
}

#[test]
fn sequential_suffix_counts_child_creates() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/seq", b"", &persistent()).await.unwrap();
        zk.create("/seq/plain", b"", &persistent()).await.unwrap();
        let (_, s1) = zk
            .create("/seq/n-", b"", &mode(CreateMode::PersistentSequential))
            .await
            .unwrap();
        assert_eq!(s1.into_i64(), 1, "one child created before");
        assert_eq!(s1.to_string(), "0000000001");
        zk.delete("/seq/plain", None).await.unwrap();
        let (_, stat) = zk.get_data("/seq").await.unwrap();
        assert_eq!(
            stat.cversion, 3,
            "reported cversion counts creates and deletes"
        );
        // ZooKeeper stores only the count of child creates and reports it as
        // `creates * 2 - numChildren` (DataNode.copyStat); the sequence suffix is the stored
        // count, so a delete does not advance it.
        let (_, s2) = zk
            .create("/seq/e-", b"", &mode(CreateMode::EphemeralSequential))
            .await
            .unwrap();
        assert_eq!(s2.into_i64(), 2, "deletes do not advance the sequence");
        let mut children = zk.list_children("/seq").await.unwrap();
        children.sort();
        assert_eq!(children, ["e-0000000002", "n-0000000001"]);
        // An empty prefix: the name is just the ten digits.
        let (_, s3) = zk
            .create("/seq/", b"", &mode(CreateMode::PersistentSequential))
            .await
            .unwrap();
        assert_eq!(s3.into_i64(), 3);
        assert!(zk.check_stat("/seq/0000000003").await.unwrap().is_some());
        let (_, stat) = zk.get_data("/seq").await.unwrap();
        assert_eq!(
            (stat.cversion, stat.num_children),
            (5, 3),
            "4 creates * 2 - 3 children"
        );
    });
}

#[test]
fn ephemeral_owner_and_no_children_for_ephemerals() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let (stat, _) = zk
            .create("/eph", b"x", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        assert_eq!(
            stat.ephemeral_owner,
            zk.session_id().0,
            "ephemeralOwner is the session id"
        );
        let err = zk
            .create("/eph/child", b"", &persistent())
            .await
            .unwrap_err();
        assert_eq!(err, Error::NoChildrenForEphemerals);
        let err = zk
            .create("/eph/child", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap_err();
        assert_eq!(err, Error::NoChildrenForEphemerals);

        zk.create("/e2", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        zk.create("/dir", b"", &persistent()).await.unwrap();
        zk.create("/dir/e3", b"", &mode(CreateMode::Ephemeral))
            .await
            .unwrap();
        let mut all = zk.list_ephemerals("/").await.unwrap();
        all.sort();
        assert_eq!(
            all,
            ["/dir/e3", "/e2", "/eph"],
            "getEphemerals lists full paths"
        );
        let under = zk.list_ephemerals("/dir").await.unwrap();
        assert_eq!(under, ["/dir/e3"], "getEphemerals filters by prefix");

        let other = connect(&server).await;
        assert!(
            other.list_ephemerals("/").await.unwrap().is_empty(),
            "another session owns none"
        );
        drop(zk);
        // Dropping the last client closes the session: its ephemerals go at once.
        within(
            Duration::from_secs(5),
            "ephemerals gone after close",
            async {
                while other.check_stat("/eph").await.unwrap().is_some() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        )
        .await;
        assert!(other.check_stat("/dir/e3").await.unwrap().is_none());
        assert!(
            other.check_stat("/dir").await.unwrap().is_some(),
            "persistent parent stays"
        );
    });
}

#[test]
fn delete_honours_versions() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/v", b"", &persistent()).await.unwrap();
        zk.set_data("/v", b"1", None).await.unwrap();
        assert_eq!(
            zk.delete("/v", Some(0)).await.unwrap_err(),
            Error::BadVersion
        );
        assert_eq!(
            zk.set_data("/v", b"2", Some(7)).await.unwrap_err(),
            Error::BadVersion
        );
        zk.delete("/v", Some(1)).await.unwrap();
        assert_eq!(zk.delete("/v", None).await.unwrap_err(), Error::NoNode);
        zk.create("/any", b"", &persistent()).await.unwrap();
        zk.delete("/any", None).await.unwrap();
    });
}

#[test]
fn children_listings_and_descendant_count() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        zk.create("/t", b"", &persistent()).await.unwrap();
        for name in ["/t/a", "/t/b", "/t/c", "/t/a/x", "/t/a/y", "/t/a/x/deep"] {
            zk.create(name, b"", &persistent()).await.unwrap();
        }
        let mut names = zk.list_children("/t").await.unwrap();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
        let (mut names2, stat) = zk.get_children("/t").await.unwrap();
        names2.sort();
        assert_eq!(names2, names, "getChildren2 lists the same children");
        assert_eq!(stat.num_children, 3);
        assert_eq!(stat.cversion, 3);
        assert_eq!(
            zk.count_descendants_number("/t").await.unwrap(),
            6,
            "all descendants, not self"
        );
        assert_eq!(zk.count_descendants_number("/t/b").await.unwrap(), 0);
        assert!(zk.list_children("/t/b").await.unwrap().is_empty());
        assert_eq!(zk.list_children("/nope").await.unwrap_err(), Error::NoNode);
        assert_eq!(
            zk.count_descendants_number("/nope").await.unwrap_err(),
            Error::NoNode
        );
    });
}

#[test]
fn error_codes_of_common_failures() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        assert_eq!(zk.get_data("/none").await.unwrap_err(), Error::NoNode);
        assert_eq!(
            zk.set_data("/none", b"", None).await.unwrap_err(),
            Error::NoNode
        );
        assert_eq!(
            zk.create("/none/child", b"", &persistent())
                .await
                .unwrap_err(),
            Error::NoNode
        );
        zk.create("/dup", b"", &persistent()).await.unwrap();
        assert_eq!(
            zk.create("/dup", b"", &persistent()).await.unwrap_err(),
            Error::NodeExists
        );
        zk.create("/dup/kid", b"", &persistent()).await.unwrap();
        assert_eq!(zk.delete("/dup", None).await.unwrap_err(), Error::NotEmpty);
        // Failed writes leave no trace: the parent still has one child at cversion 1.
        let (_, stat) = zk.get_data("/dup").await.unwrap();
        assert_eq!((stat.num_children, stat.cversion), (1, 1));
    });
}

#[test]
fn builtin_zookeeper_nodes_exist() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        assert_eq!(
            zk.list_children("/").await.unwrap(),
            ["zookeeper"],
            "a fresh tree"
        );
        let mut system = zk.list_children("/zookeeper").await.unwrap();
        system.sort();
        assert_eq!(system, ["config", "quota"]);
        assert!(zk.check_stat("/zookeeper/quota").await.unwrap().is_some());
        let (config, stat) = zk.get_config().await.unwrap();
        assert_eq!(stat.ephemeral_owner, 0);
        // Standalone without dynamic reconfig: the config node exists and is empty.
        assert!(
            config.is_empty(),
            "standalone /zookeeper/config: {:?}",
            String::from_utf8_lossy(&config)
        );
        let (root, stat) = zk.get_data("/").await.unwrap();
        assert!(root.is_empty());
        assert_eq!(stat.num_children, 1);
    });
}

#[test]
fn sync_then_read_sees_other_sessions_write() {
    run(async {
        let server = Server::start_default();
        let writer = connect(&server).await;
        let reader = connect(&server).await;
        writer.create("/s", b"v1", &persistent()).await.unwrap();
        reader.sync("/s").await.unwrap();
        assert_eq!(reader.get_data("/s").await.unwrap().0, b"v1");
        reader.sync("/").await.unwrap();
    });
}

#[test]
fn container_is_reaped_after_last_child_goes() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let (stat, _) = zk
            .create("/never", b"", &mode(CreateMode::Container))
            .await
            .unwrap();
        // Stored as owner 0x8000000000000000, but reported to clients as 0 (DataNode.copyStat).
        assert_eq!(
            stat.ephemeral_owner, 0,
            "container ephemeralOwner as clients see it"
        );
        assert_eq!(
            zk.check_stat("/never")
                .await
                .unwrap()
                .unwrap()
                .ephemeral_owner,
            0
        );
        zk.create("/box", b"", &mode(CreateMode::Container))
            .await
            .unwrap();
        zk.create("/box/item", b"", &persistent()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            zk.check_stat("/box").await.unwrap().is_some(),
            "a container with a child stays"
        );
        zk.delete("/box/item", None).await.unwrap();
        within(Duration::from_secs(10), "container /box reaped", async {
            while zk.check_stat("/box").await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        // A container that never had a child (cversion 0) is left alone.
        assert!(
            zk.check_stat("/never").await.unwrap().is_some(),
            "childless-from-birth container kept"
        );
    });
}

#[test]
fn ttl_node_expires_when_untouched_and_childless() {
    run(async {
        let server = Server::start_default();
        let zk = connect(&server).await;
        let ttl = mode(CreateMode::Persistent).with_ttl(Duration::from_millis(500));
        let (stat, _) = zk.create("/ttl", b"", &ttl).await.unwrap();
        // Stored as owner 0xFF00000000000000 | ttl, but reported to clients as 0.
        assert_eq!(
            stat.ephemeral_owner, 0,
            "ttl node ephemeralOwner as clients see it"
        );
        assert_eq!(
            zk.check_stat("/ttl")
                .await
                .unwrap()
                .unwrap()
                .ephemeral_owner,
            0
        );
        let keep = mode(CreateMode::Persistent).with_ttl(Duration::from_millis(500));
        zk.create("/ttl-parent", b"", &keep).await.unwrap();
        zk.create("/ttl-parent/child", b"", &persistent())
            .await
            .unwrap();
        within(Duration::from_secs(10), "ttl node /ttl removed", async {
            while zk.check_stat("/ttl").await.unwrap().is_some() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            zk.check_stat("/ttl-parent").await.unwrap().is_some(),
            "ttl node with a child stays"
        );
        let seq_ttl = mode(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(300));
        let (_, n) = zk.create("/ttl-seq-", b"", &seq_ttl).await.unwrap();
        let path = format!("/ttl-seq-{n}");
        within(
            Duration::from_secs(10),
            "sequential ttl node removed",
            async {
                while zk.check_stat(&path).await.unwrap().is_some() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        )
        .await;
    });
}

/// FIFO client order with pipelining: a getData sent between two setData calls of the same
/// session, all three sent before any answer, reads the first write's data, never the
/// second's (ZooKeeper executes a session's requests in the order it sent them), and the
/// session's answers never go back in zxid (zoocore_e2e::raw::pipelined_read_between_writes).
#[test]
fn a_pipelined_read_between_two_writes_sees_the_first_only() {
    let server = Server::start(Target::from_env());
    zoocore_e2e::raw::pipelined_read_between_writes(server.addr(), server.addr(), 200);
}

/// A shard keeps the nodes its getData and exists answers found by path, for the view they
/// came from (zoocore_tree's cache.rs): every read after a write, a delete or a re-create
/// must still see the newest node, from the writer's session and from another one, however
/// warm.
#[test]
fn reads_after_each_change_see_the_newest_node() {
    run(async {
        let server = Server::start_default();
        let writer = connect(&server).await;
        let reader = connect(&server).await;
        writer.create("/c", b"0", &persistent()).await.unwrap();
        for i in 1..=50u32 {
            for _ in 0..3 {
                reader.get_data("/c").await.unwrap();
            }
            let value = i.to_string();
            let stat = writer.set_data("/c", value.as_bytes(), None).await.unwrap();
            let (mine, my_stat) = writer.get_data("/c").await.unwrap();
            assert_eq!((mine, my_stat), (value.clone().into_bytes(), stat));
            reader.sync("/c").await.unwrap();
            let (seen, seen_stat) = reader.get_data("/c").await.unwrap();
            assert_eq!((seen, seen_stat.version), (value.into_bytes(), i as i32));
            let exists = reader.check_stat("/c").await.unwrap().expect("exists");
            assert_eq!(exists, seen_stat);
        }
        writer.delete("/c", None).await.unwrap();
        reader.sync("/c").await.unwrap();
        assert_eq!(reader.check_stat("/c").await.unwrap(), None);
        assert_eq!(reader.get_data("/c").await.unwrap_err(), Error::NoNode);
        writer.create("/c", b"again", &persistent()).await.unwrap();
        reader.sync("/c").await.unwrap();
        let (data, stat) = reader.get_data("/c").await.unwrap();
        assert_eq!((data, stat.version), (b"again".to_vec(), 0));
    });
}
