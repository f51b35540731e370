//! Steps shared by the ensemble scenarios (tests/tests/ensemble*.rs): the timing every
//! ensemble test runs with, a member's mode read with `srvr`, waits for one leader and for
//! members to agree on their last zxid, reads of acknowledged writes after `sync`, and the
//! write-until-failover loop of the fault tests.
//!
//! These tests run on loaded 2-core machines, next to other suites and with every member a
//! debug build, so nothing here bounds how fast the servers are: a wait polls a condition
//! until it holds, for at most [`WAIT`], which is a hang detector and not a speed limit (an
//! election takes well under a second when idle). Durations are returned for the tests to
//! print, never to assert. A condition that does not hold in time fails with what was last
//! seen, so that a failure tells a hang from a wrong answer.

use std::future::Future;
use std::time::{Duration, Instant};

use zookeeper_client::Client;

use crate::{connect, parse_key_values, persistent, within, Options, Server};

/// The longest any single wait of an ensemble scenario may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);
/// Whole-test bound for ensemble scenarios (see [`run`]); several [`WAIT`]s fit in it, so a
/// stuck step fails with its own message first.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(180);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);
/// One write of [`write_until_failover`] that takes longer is abandoned (its path is then
/// not counted as acknowledged) and the next is sent.
const WRITE_ATTEMPT: Duration = Duration::from_secs(5);

/// The options of every ensemble scenario: tickTime 100 ms keeps elections and failure
/// detection short; syncLimit of 10 ticks (1 s) is short enough for the frozen-leader test and
/// leaves room for a member starved of CPU for a few hundred milliseconds on a loaded machine
/// (a member dropped for that would start an election the scenario did not ask for); initLimit
/// of 50 ticks lets a learner's first sync run slowly.
pub fn options() -> Options {
    Options {
        tick_ms: 100,
        extra_cfg: vec!["initLimit=50".into(), "syncLimit=10".into()],
        ..Options::default()
    }
}

/// Runs an ensemble scenario's body like [`crate::run`], bounded by [`TEST_TIMEOUT`].
pub fn run<T, F: Future<Output = T>>(body: F) -> T {
    crate::run_within(TEST_TIMEOUT, body)
}

/// The member's `Mode` from `srvr` (`leader`, `follower`, `observer`), `not serving` while it
/// is looking, or `unreachable` when it does not answer (killed, frozen, or too slow).
pub fn mode_of(server: &Server) -> String {
    match server.try_four_letter("srvr") {
        Ok(srvr) => parse_key_values(&srvr)
            .get("Mode")
            .cloned()
            .unwrap_or_else(|| "not serving".into()),
        Err(_) => "unreachable".into(),
    }
}

/// The member's last applied zxid from `srvr`, if it answers and serves.
pub fn zxid(server: &Server) -> Option<String> {
    let srvr = server.try_four_letter("srvr").ok()?;
    parse_key_values(&srvr).get("Zxid").cloned()
}

/// The members of `servers` that a test has neither killed, stopped nor frozen.
pub fn live(servers: &[Server]) -> Vec<usize> {
    (0..servers.len())
        .filter(|&i| servers[i].is_running() && !servers[i].is_frozen())
        .collect()
}

/// The member whose `cons` lists `session`.
pub fn member_of_session(servers: &[Server], session: i64) -> usize {
    let needle = format!("sid=0x{session:x},");
    let holders: Vec<usize> = live(servers)
        .into_iter()
        .filter(|&i| servers[i].four_letter("cons").contains(&needle))
        .collect();
    assert_eq!(holders.len(), 1, "session 0x{session:x} on {holders:?}");
    holders[0]
}

/// Polls `cond` every 50 ms until it returns `Ok`, for at most [`WAIT`], and returns what
/// it found. `what` names the condition and the `Err` describes the state last polled, both
/// for the failure message.
pub async fn eventually<T, F, Fut>(what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = match cond().await {
            Ok(found) => return found,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "not within {WAIT:?}: {what}; last seen: {seen}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The one member of `among` that leads, when every other one serves as a follower or
/// observer; otherwise their modes.
fn one_leader(servers: &[Server], among: &[usize]) -> Result<usize, String> {
    let modes: Vec<(usize, String)> = among.iter().map(|&i| (i, mode_of(&servers[i]))).collect();
    let leaders: Vec<usize> = modes
        .iter()
        .filter(|(_, m)| m == "leader")
        .map(|&(i, _)| i)
        .collect();
    let all_serve = modes
        .iter()
        .all(|(_, m)| matches!(m.as_str(), "leader" | "follower" | "observer"));
    match leaders[..] {
        [leader] if all_serve => Ok(leader),
        _ => Err(format!("modes {modes:?}")),
    }
}

/// Waits until exactly one of the live members leads and every other live member follows or
/// observes, and returns the leader.
pub async fn await_leader(servers: &[Server]) -> usize {
    let among = live(servers);
    eventually("one leader, every other live member serving", || {
        std::future::ready(one_leader(servers, &among))
    })
    .await
}

/// Waits until every live member reports the same last zxid: with no write in flight, they
/// have all applied the same prefix.
pub async fn await_zxids_agree(servers: &[Server]) {
    let among = live(servers);
    eventually("every live member at the same zxid", || {
        let zxids: Vec<(usize, Option<String>)> =
            among.iter().map(|&i| (i, zxid(&servers[i]))).collect();
        let agree = zxids[0].1.is_some() && zxids.iter().all(|(_, z)| *z == zxids[0].1);
        std::future::ready(if agree {
            Ok(())
        } else {
            Err(format!("zxids {zxids:?}"))
        })
    })
    .await;
}

/// Waits until the live members have one leader, all serve, and all are at the same zxid;
/// returns the leader. The start of a scenario: nothing is still electing or syncing.
pub async fn await_settled(servers: &[Server]) -> usize {
    let leader = await_leader(servers).await;
    await_zxids_agree(servers).await;
    // A new election between the two waits would show as a different leader here.
    assert_eq!(await_leader(servers).await, leader, "the leader changed");
    leader
}

/// A client of `server` that has caught up with the leader (`sync`): what it reads includes
/// every write acknowledged before the call.
pub async fn synced_client(server: &Server) -> Client {
    let zk = within(WAIT, "connect", connect(server)).await;
    within(WAIT, "sync", zk.sync("/"))
        .await
        .unwrap_or_else(|e| panic!("sync on {}: {e}", server.connect_string()));
    zk
}

/// After `sync`, every path of `paths` exists on `server`.
pub async fn assert_holds(server: &Server, paths: &[String]) {
    let zk = synced_client(server).await;
    for path in paths {
        zk.get_data(path).await.unwrap_or_else(|e| {
            panic!(
                "acknowledged {path} missing on {}: {e}",
                server.connect_string()
            )
        });
    }
}

/// After `sync`, `path` holds `data` on every live member.
pub async fn assert_data_everywhere(servers: &[Server], path: &str, data: &[u8]) {
    for i in live(servers) {
        let s = &servers[i];
        let zk = synced_client(s).await;
        let (got, _) = zk
            .get_data(path)
            .await
            .unwrap_or_else(|e| panic!("{path} on {}: {e}", s.connect_string()));
        assert_eq!(got, data, "{path} on {}", s.connect_string());
    }
}

/// What [`write_until_failover`] saw: the paths whose create was acknowledged, in order, and
/// the time from the fault to the first acknowledged write after it.
pub struct Failover {
    pub acked: Vec<String>,
    pub elapsed: Duration,
}

/// Creates `/w00000`, `/w00001`, ... through `zk` back to back (5 ms apart after a failure),
/// calls `fault` once `writes_before` creates have been acknowledged, and returns at the
/// first create acknowledged after the fault. A create that fails or takes longer than a few
/// seconds is not counted: it may or may not have been applied, and the tests check only what
/// was acknowledged. `fault` must have taken effect when it returns ([`Server::kill9`] reaps
/// the process, [`Server::freeze`] waits until it is stopped): otherwise the first write
/// "after" it may have been committed before it.
pub async fn write_until_failover(
    zk: &Client,
    writes_before: usize,
    fault: impl FnOnce(),
) -> Failover {
    let mut acked = Vec::new();
    let mut fault = Some(fault);
    let started_at = Instant::now();
    let mut faulted_at: Option<Instant> = None;
    for n in 0u32.. {
        match faulted_at {
            None => assert!(
                started_at.elapsed() < WAIT,
                "only {} of {writes_before} writes acknowledged within {WAIT:?}, before any fault",
                acked.len()
            ),
            Some(at) => assert!(
                at.elapsed() < WAIT,
                "no write acknowledged within {WAIT:?} of the fault ({} before it)",
                acked.len()
            ),
        }
        let path = format!("/w{n:05}");
        let result = tokio::time::timeout(WRITE_ATTEMPT, zk.create(&path, b"v", &persistent()));
        match result.await {
            Ok(Ok(_)) => {
                acked.push(path);
                if let Some(at) = faulted_at {
                    return Failover {
                        acked,
                        elapsed: at.elapsed(),
                    };
                }
            }
            Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        if acked.len() == writes_before {
            if let Some(fault) = fault.take() {
                fault();
                faulted_at = Some(Instant::now());
            }
        }
    }
    unreachable!("more than u32::MAX writes")
}
