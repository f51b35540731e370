//! Leadership transfer on three real voters (docs/OPERATIONS.md, rolling maintenance): the
//! 4lw `rqld` on a follower and the admin command `yield_leadership` on the leader move
//! leadership while a client writes back to back; the new leader is the one asked for, every
//! acknowledged write is on every member, and the longest gap between acknowledged writes
//! around the transfer is printed (measured, never asserted: the machine is shared).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zoocore_e2e::ensemble::{self, assert_holds, await_settled, eventually, mode_of, run};
use zoocore_e2e::{persistent, Options, Server};

/// What the writer saw: the acknowledged paths and when each was acknowledged.
struct Writes {
    acked: Vec<(String, Instant)>,
}

impl Writes {
    /// The longest time between two consecutive acknowledgements within `window` of `at`.
    fn longest_gap_around(&self, at: Instant, window: Duration) -> Duration {
        self.acked
            .windows(2)
            .filter(|w| w[1].1 + window >= at && w[0].1 <= at + window)
            .map(|w| w[1].1 - w[0].1)
            .max()
            .unwrap_or_default()
    }
}

/// Creates `/t00000`, ... through a client of every member until `stop`; a create that fails
/// (connection lost while leadership moves) is not counted and the next one is sent.
async fn write_until(servers: &[Server], stop: &AtomicBool) -> Writes {
    let hosts: Vec<String> = servers.iter().map(Server::connect_string).collect();
    let zk = zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&hosts.join(","))
        .await
        .expect("connect");
    let mut acked = Vec::new();
    for n in 0u32.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let path = format!("/t{n:05}");
        let create = zk.create(&path, b"v", &persistent());
        match tokio::time::timeout(Duration::from_secs(5), create).await {
            Ok(Ok(_)) => acked.push((path, Instant::now())),
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
    Writes { acked }
}

/// Waits (polling `srvr`) until `target` leads and the others follow; when it was seen.
/// `ask` is made again every [`ASK_AGAIN`] while it does not: a leader refuses an ask it
/// cannot carry out at that moment (its target not yet synchronised, a transfer under way),
/// and an operator asks again, as on a loaded machine a test must.
fn await_leader_is(servers: &[Server], target: usize, ask: &(impl Fn() + Sync)) -> Instant {
    let deadline = Instant::now() + ensemble::WAIT;
    let mut asked = Instant::now();
    loop {
        let modes: Vec<String> = servers.iter().map(mode_of).collect();
        let done = modes.iter().enumerate().all(|(i, m)| {
            if i == target {
                m == "leader"
            } else {
                m == "follower"
            }
        });
        if done {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{target} not the leader: {modes:?}"
        );
        if asked.elapsed() > ASK_AGAIN {
            eprintln!(
                "{target} not the leader {ASK_AGAIN:?} after the ask ({modes:?}): asking again"
            );
            ask();
            asked = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How long an ask for leadership is given before it is made again.
const ASK_AGAIN: Duration = Duration::from_secs(3);

/// Writes continuously while `transfer` (on another thread) moves leadership to
/// `target`; checks every acknowledged write everywhere and prints the gap.
fn transfer_under_writes(
    servers: &[Server],
    target: usize,
    what: &str,
    transfer: impl Fn() + Send + Sync,
) {
    let stop = AtomicBool::new(false);
    let asked_at = std::sync::Mutex::new(None);
    let writes = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            *asked_at.lock().unwrap() = Some(Instant::now());
            transfer();
            let seen = await_leader_is(servers, target, &transfer);
            eprintln!(
                "{what}: {target} leads {:?} after the ask",
                seen - asked_at.lock().unwrap().expect("set")
            );
            std::thread::sleep(Duration::from_millis(1000));
            stop.store(true, Ordering::Relaxed);
        });
        run(write_until(servers, &stop))
    });
    let at = asked_at.into_inner().unwrap().expect("asked");
    let before = writes.acked.iter().filter(|(_, t)| *t < at).count();
    let after = writes.acked.len() - before;
    assert!(
        before > 0 && after > 0,
        "{before} writes before, {after} after"
    );
    eprintln!(
        "{what}: {} writes acknowledged ({before} before the ask); longest gap between \
         acknowledged writes within 2 s of the ask: {:?}",
        writes.acked.len(),
        writes.longest_gap_around(at, Duration::from_secs(2))
    );
    let paths: Vec<String> = writes.acked.into_iter().map(|(p, _)| p).collect();
    run(async {
        for s in servers {
            assert_holds(s, &paths).await;
        }
    });
}

#[test]
fn rqld_on_a_follower_makes_it_the_leader_under_writes() {
    let servers = Server::start_ensemble(3, 0, ensemble::options());
    let leader = run(await_settled(&servers));
    // The follower with the lowest myid: with equal zxids an ordinary election would pick
    // the other one, so only the hand-over makes it lead.
    let target = (0..3).find(|&i| i != leader).expect("a follower");
    assert!(
        servers[leader]
            .four_letter("rqld")
            .contains("this server leads"),
        "rqld on the leader is refused"
    );
    transfer_under_writes(&servers, target, "rqld", || {
        let answer = servers[target].four_letter("rqld");
        assert_eq!(answer, "Sent leadership request to leader.\n");
    });
    run(async {
        assert_eq!(await_settled(&servers).await, target);
    });
}

#[test]
fn yield_leadership_over_http_hands_over_to_a_follower_under_writes() {
    let options = Options {
        admin: true,
        ..ensemble::options()
    };
    let servers = Server::start_ensemble(3, 0, options);
    let leader = run(await_settled(&servers));
    let target = (0..3).rev().find(|&i| i != leader).expect("a follower");
    let refused = servers[target].admin_get("/commands/yield_leadership");
    assert!(
        refused.body.contains("not the leader"),
        "yield on a follower: {refused:?}"
    );
    // myids are 1-based in server order.
    let path = format!("/commands/yield_leadership?target={}", target + 1);
    transfer_under_writes(&servers, target, "yield_leadership", || {
        let answer = servers[leader].admin_get(&path);
        assert_eq!(answer.status, 200, "{answer:?}");
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        assert_eq!(json["command"], "yield_leadership");
        assert_eq!(json["error"], serde_json::Value::Null, "{json}");
    });
    run(async {
        let modes = eventually("the old leader follows", || {
            let m = mode_of(&servers[leader]);
            std::future::ready(if m == "follower" { Ok(m) } else { Err(m) })
        })
        .await;
        assert_eq!(modes, "follower");
    });
}

#[test]
fn rqld_on_a_standalone_server_is_refused() {
    let server = Server::start_default();
    let answer = server.four_letter("rqld");
    assert!(answer.contains("not a follower"), "{answer}");
    let answer = server.four_letter("ydld");
    assert!(answer.contains("not the leader"), "{answer}");
}

#[test]
fn rqld_and_ydld_obey_the_whitelist() {
    let server = Server::start_with(
        zoocore_e2e::Target::Zoocore,
        Options {
            extra_cfg: vec!["4lw.commands.whitelist=srvr".into()],
            ..Options::default()
        },
    );
    for word in ["rqld", "ydld"] {
        assert_eq!(
            server.four_letter(word),
            format!("{word} is not executed because it is not in the whitelist.\n")
        );
    }
}
