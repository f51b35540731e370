//! Ensembles of real zoocore processes on loopback (each member on its own 127.x address):
//! writes through any member are visible on every member after `sync`; killing the leader
//! with SIGKILL under write load elects a new leader that serves, and loses no acknowledged
//! write; observers serve reads and forward writes. tickTime is 100 ms so elections and
//! failure detection take a few hundred milliseconds; every wait polls a condition with a
//! generous bound (zoocore_e2e::ensemble), so that a loaded machine makes them slower, not
//! failed.

use std::collections::{BTreeMap, BTreeSet};

use zoocore_e2e::ensemble::{
    self, assert_data_everywhere, assert_holds, await_leader, await_settled, eventually, live,
    mode_of, run, write_until_failover,
};
use zoocore_e2e::{connect, parse_key_values, persistent, Server};

/// The leader's `mntr` once it counts `followers` synced followers (it may count a follower
/// a moment after that follower serves).
async fn mntr_with_synced_followers(leader: &Server, followers: usize) -> BTreeMap<String, String> {
    eventually("the leader counts its synced followers", || {
        let mntr = parse_key_values(&leader.four_letter("mntr"));
        let synced = mntr.get("zk_synced_followers").cloned().unwrap_or_default();
        std::future::ready(if synced == followers.to_string() {
            Ok(mntr)
        } else {
            Err(format!("zk_synced_followers {synced:?}"))
        })
    })
    .await
}

#[test]
fn three_voters_replicate_writes_to_every_member() {
    let servers = Server::start_ensemble(3, 0, ensemble::options());
    run(async {
        let leader = await_settled(&servers).await;
        let modes: BTreeSet<String> = servers.iter().map(mode_of).collect();
        assert_eq!(
            modes,
            BTreeSet::from(["leader".to_string(), "follower".to_string()])
        );
        let mntr = mntr_with_synced_followers(&servers[leader], 2).await;
        assert_eq!(mntr["zk_server_state"], "leader");

        // A write through each member, read back on every member.
        for (i, s) in servers.iter().enumerate() {
            let zk = connect(s).await;
            let path = format!("/via{i}");
            zk.create(&path, format!("data{i}").as_bytes(), &persistent())
                .await
                .unwrap_or_else(|e| panic!("create through {}: {e}", s.connect_string()));
            // Read-your-writes on the member that took the write, without sync.
            let (got, _) = zk.get_data(&path).await.unwrap();
            assert_eq!(got, format!("data{i}").as_bytes());
        }
        for i in 0..servers.len() {
            assert_data_everywhere(&servers, &format!("/via{i}"), format!("data{i}").as_bytes())
                .await;
        }
        let srvr = parse_key_values(&servers[leader].four_letter("srvr"));
        assert!(srvr["Zxid"].starts_with("0x"), "{srvr:?}");
    });
}

#[test]
fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut servers = Server::start_ensemble(3, 0, ensemble::options());
    run(async {
        let leader = await_settled(&servers).await;
        let follower = (leader + 1) % 3;
        let zk = connect(&servers[follower]).await;
        let failover = write_until_failover(&zk, 50, || {
            assert_eq!(mode_of(&servers[leader]), "leader", "still the leader");
            servers[leader].kill9();
        })
        .await;
        eprintln!(
            "failover (kill -9 leader → first write through a survivor): {:?}",
            failover.elapsed
        );
        let mut acked = failover.acked;
        // A few more writes through the new leader's ensemble.
        for i in 0..10 {
            let path = format!("/after{i}");
            zk.create(&path, b"v", &persistent()).await.unwrap();
            acked.push(path);
        }
        let new_leader = await_leader(&servers).await;
        assert_ne!(new_leader, leader);
        for i in live(&servers) {
            assert_holds(&servers[i], &acked).await;
        }
    });
}

#[test]
fn observers_serve_reads_and_forward_writes() {
    let servers = Server::start_ensemble(3, 2, ensemble::options());
    run(async {
        let leader = await_settled(&servers).await;
        let modes: Vec<String> = servers.iter().map(mode_of).collect();
        assert_eq!(&modes[3..], &["observer", "observer"], "{modes:?}");
        let mntr = mntr_with_synced_followers(&servers[leader], 2).await;
        assert_eq!(mntr["zk_learners"], "4", "{mntr:?}");

        let zk = connect(&servers[4]).await;
        zk.create("/from-observer", b"obs", &persistent())
            .await
            .unwrap();
        let (got, _) = zk.get_data("/from-observer").await.unwrap();
        assert_eq!(got, b"obs");
        let voter = connect(&servers[0]).await;
        voter
            .create("/from-voter", b"v", &persistent())
            .await
            .unwrap();
        assert_data_everywhere(&servers, "/from-observer", b"obs").await;
        assert_data_everywhere(&servers, "/from-voter", b"v").await;
    });
}

/// Small segments (preAllocSize in KiB) and a small snapCount make every member roll its log
/// and snapshot many times while writes flow: segments are prepared ahead in the background,
/// and every member still ends with every write, before and after a rolling restart.
#[test]
fn members_roll_segments_and_snapshot_under_writes() {
    let mut opts = ensemble::options();
    opts.extra_cfg
        .extend(["preAllocSize=128".to_string(), "snapCount=60".to_string()]);
    let mut servers = Server::start_ensemble(3, 0, opts);
    run(async {
        let leader = await_settled(&servers).await;
        let zk = connect(&servers[leader]).await;
        for i in 0..300 {
            zk.create(&format!("/r{i:03}"), &[7u8; 512], &persistent())
                .await
                .unwrap();
        }
        assert_data_everywhere(&servers, "/r299", &[7u8; 512]).await;
    });
    // A rolling restart: each member recovers from its rolled segments and snapshots while
    // the other two keep the quorum.
    for server in servers.iter_mut() {
        server.stop();
        server.start_again();
    }
    run(async {
        await_settled(&servers).await;
        assert_data_everywhere(&servers, "/r000", &[7u8; 512]).await;
        assert_data_everywhere(&servers, "/r299", &[7u8; 512]).await;
    });
}

/// `/zookeeper/config` holds the ensemble's configuration as ZooKeeper 3.5+ writes it
/// (what zkCli's `config` prints): one `server.N=host:quorumPort:electionPort:role` line per
/// member, with `;clientAddress:clientPort` where the line gives one, then `version=0` with
/// no newline; data version -1 and READ_ACL_UNSAFE, as Apache ZooKeeper 3.8's members show
/// for a configuration never reconfigured. Read through the `getConfig` call of a client
/// nobody here wrote, on every member; `conf` ends with the same membership.
#[test]
fn every_member_serves_the_configuration_in_zookeeper_config() {
    let servers = Server::start_ensemble(2, 1, ensemble::options());
    run(async {
        await_settled(&servers).await;
        let expected: String = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let role = if i < 2 { "participant" } else { "observer" };
                format!(
                    "server.{}={}:{}:{}:{role}\n",
                    i + 1,
                    s.addr().ip(),
                    zoocore_e2e::QUORUM_PORT,
                    zoocore_e2e::ELECTION_PORT
                )
            })
            .collect::<String>()
            + "version=0";
        for s in &servers {
            let zk = connect(s).await;
            let (data, stat) = zk.get_config().await.unwrap();
            assert_eq!(String::from_utf8(data).unwrap(), expected);
            assert_eq!((stat.version, stat.mzxid), (-1, 0));
            assert_eq!(stat.data_length as usize, expected.len());
            // conf ends with the same membership, as Apache's members print it.
            let conf = s.four_letter("conf");
            assert!(
                conf.ends_with(&format!("membership: \n{expected}")),
                "{conf}"
            );
            let conf = parse_key_values(&conf);
            assert_eq!(conf["electionAlg"], "3");
            let observer = conf["serverId"] == "3";
            assert_eq!(conf["peerType"], if observer { "1" } else { "0" });
            let (acl, _) = zk.get_acl("/zookeeper/config").await.unwrap();
            assert_eq!(acl.len(), 1);
            assert_eq!(acl[0].permission(), zookeeper_client::Permission::READ);
            assert_eq!(acl[0].auth_id().scheme(), "world");
        }
    });
}

/// FIFO client order through a follower: a getData pipelined between two setData calls of a
/// session on a follower reads the first write only (the follower cuts its commit batch
/// before the second: `CoreRequest::barrier`), while a session on the leader writes.
#[test]
fn a_pipelined_read_between_two_writes_on_a_follower_sees_the_first_only() {
    let servers = Server::start_ensemble(3, 0, ensemble::options());
    let leader = run(await_settled(&servers));
    let follower = (0..3).find(|&i| i != leader).unwrap();
    zoocore_e2e::raw::pipelined_read_between_writes(
        servers[follower].addr(),
        servers[leader].addr(),
        100,
    );
}
