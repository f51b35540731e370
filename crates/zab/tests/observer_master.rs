//! Observer masters (docs/ZAB.md, "Observer masters"; ZooKeeper 3.6's `observerMasterPort`):
//! followers synchronise observers from their own applied history and relay their commits,
//! so the leader sends observers nothing; an observer whose master fails moves to another
//! follower (or the leader); without masters configured, observers learn from the leader.

mod common;

use common::{config, Net, INIT_LIMIT};
use zoocore_proto::Zxid;
use zoocore_zab::{Config, Input, Message, RoleKind, ServerId};

const VOTERS: [ServerId; 3] = [1, 2, 3];
const OBSERVERS: [ServerId; 2] = [4, 5];

fn with_observers(masters: bool) -> impl Fn(ServerId) -> Config {
    move |id| Config {
        voters: VOTERS.to_vec(),
        observers: OBSERVERS.to_vec(),
        observer_masters: masters,
        ..config(id)
    }
}

/// 3 voters and 2 observers, all serving; the leader (3: all equal, the highest myid).
fn ensemble(masters: bool) -> (Net, ServerId) {
    let mut net = Net::with_config(&[1, 2, 3, 4, 5], true, with_observers(masters));
    net.run_until(100, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("never all serving: {:?}", net.roles()));
    let leader = net.replica(1).leader().expect("a leader");
    assert_eq!(leader, 3);
    (net, leader)
}

/// `n` proposals, everything delivered and a tick for the pings; the last zxid.
fn write(
    net: &mut Net,
    leader: ServerId,
    n: usize,
    drop: &mut dyn FnMut(ServerId, ServerId, &Message) -> bool,
) -> Zxid {
    let mut last = Zxid::ZERO;
    for _ in 0..n {
        last = net.propose(leader);
        net.deliver(drop);
    }
    net.tick();
    net.deliver(drop);
    last
}

#[test]
fn observers_learn_from_followers_and_the_leader_sends_them_nothing() {
    let (mut net, leader) = ensemble(true);
    for o in OBSERVERS {
        let up = net.replica(o).upstream().expect("observing");
        assert_ne!(up, leader, "observer {o} runs its session with the leader");
        assert!(VOTERS.contains(&up));
        assert_eq!(
            net.replica(o).leader(),
            Some(leader),
            "{o} forwards to the leader"
        );
        assert_eq!(net.replica(o).role(), RoleKind::Observing);
    }
    let served: usize = [1, 2]
        .iter()
        .map(|f| net.replica(*f).observers_served())
        .sum();
    assert_eq!(served, 2, "the followers serve both observers");
    assert_eq!(
        net.replica(leader).learner_counts(),
        (2, 2),
        "the leader has only its followers"
    );

    let mut to_observers_from_leader = 0;
    let last = write(&mut net, leader, 20, &mut |from, to, _| {
        if from == leader && OBSERVERS.contains(&to) {
            to_observers_from_leader += 1;
        }
        false
    });
    assert_eq!(
        to_observers_from_leader, 0,
        "the leader sent observers frames"
    );
    for o in OBSERVERS {
        assert_eq!(
            net.replica(o).committed(),
            last,
            "observer {o} has every commit"
        );
        assert_eq!(net.replica(o).applied(), last);
    }
}

#[test]
fn without_masters_observers_learn_from_the_leader() {
    let (mut net, leader) = ensemble(false);
    for o in OBSERVERS {
        assert_eq!(net.replica(o).upstream(), Some(leader));
    }
    assert_eq!(net.replica(leader).learner_counts().0, 4);
    let mut informs = 0;
    let last = write(&mut net, leader, 5, &mut |from, _, msg| {
        informs += usize::from(from == leader && matches!(msg, Message::Inform { .. }));
        false
    });
    assert_eq!(
        informs, 10,
        "one INFORM per commit per observer from the leader"
    );
    for o in OBSERVERS {
        assert_eq!(net.replica(o).committed(), last);
    }
}

#[test]
fn a_master_hands_observers_only_what_it_applied() {
    let (mut net, leader) = ensemble(true);
    let o = 4;
    let master = net.replica(o).upstream().expect("observing");
    // The master hears the proposals but not that they committed.
    let hold = |from: ServerId, to: ServerId, msg: &Message| {
        from == leader
            && to == master
            && matches!(msg, Message::Commit { .. } | Message::Ping { .. })
    };
    let before = net.replica(master).applied();
    let last = write(&mut net, leader, 5, &mut |f, t, m| hold(f, t, m));
    assert_eq!(
        net.replica(leader).committed(),
        last,
        "the other follower made a quorum"
    );
    assert_eq!(
        net.replica(master).last_zxid(),
        last,
        "the master has the proposals"
    );
    assert_eq!(
        net.replica(master).applied(),
        before,
        "but did not apply them"
    );
    assert!(
        net.replica(o).last_zxid() <= before,
        "observer {o} got {} past its master's applied {before}",
        net.replica(o).last_zxid()
    );
    // The next commit reaches the master: it applies all and relays it all.
    let last = write(&mut net, leader, 1, &mut |_, _, _| false);
    assert_eq!(net.replica(master).applied(), last);
    assert_eq!(net.replica(o).committed(), last);
}

#[test]
fn an_observer_fails_over_when_its_master_dies() {
    let (mut net, leader) = ensemble(true);
    let o = 4;
    let dead = net.replica(o).upstream().expect("observing");
    write(&mut net, leader, 3, &mut |_, _, _| false);
    // `dead` crashes: its links close (every member hears PeerLost) and it says nothing more.
    let cut = move |from: ServerId, to: ServerId, _: &Message| from == dead || to == dead;
    net.net.retain(|(f, t, m)| !cut(*f, *t, m));
    for id in [1, 2, 3, 4, 5].into_iter().filter(|id| *id != dead) {
        net.step(id, Input::PeerLost { peer: dead });
    }
    let back = net.run_until(INIT_LIMIT, &mut |f, t, m| cut(f, t, m), |net| {
        net.replica(o).is_serving()
    });
    assert!(
        back.is_some(),
        "observer {o} never served again: {:?}",
        net.roles()
    );
    let up = net.replica(o).upstream().expect("observing");
    assert_ne!(up, dead, "observer {o} went back to the dead master");
    assert_eq!(net.replica(o).leader(), Some(leader));
    let last = write(&mut net, leader, 4, &mut |f, t, m| cut(f, t, m));
    for id in [1, 2, 3, 4, 5].into_iter().filter(|id| *id != dead) {
        assert_eq!(net.replica(id).committed(), last, "{id} has every commit");
    }
}

#[test]
fn an_observer_leaves_a_master_that_stops_following() {
    let (mut net, leader) = ensemble(true);
    let o = 4;
    let master = net.replica(o).upstream().expect("observing");
    // The master loses its leader (only that link): it goes Looking and tells its observers.
    net.step(master, Input::PeerLost { peer: leader });
    assert_eq!(net.replica(master).role(), RoleKind::Looking);
    net.deliver_one(|f, t, m| f == master && t == o && matches!(m, Message::Notification { .. }));
    assert_eq!(
        net.replica(o).role(),
        RoleKind::Looking,
        "observer {o} kept its session with a master that left"
    );
    net.run_until(INIT_LIMIT, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("never all serving again: {:?}", net.roles()));
    let last = write(&mut net, leader, 2, &mut |_, _, _| false);
    assert_eq!(net.replica(o).committed(), last);
}

#[test]
fn an_observer_cut_off_from_its_master_catches_up_by_diff_on_return() {
    let (mut net, leader) = ensemble(true);
    let o = 5;
    let master = net.replica(o).upstream().expect("observing");
    // A short cut (under syncLimit): INFORMs are lost, the next one shows the gap.
    write(&mut net, leader, 6, &mut |_, t, _| t == o);
    let mut diffs = 0;
    let last = write(&mut net, leader, 1, &mut |f, t, m| {
        diffs += usize::from(f == master && t == o && matches!(m, Message::Diff { .. }));
        false
    });
    net.run_until(
        20,
        &mut |f, t, m| {
            diffs += usize::from(t == o && matches!(m, Message::Diff { .. }) && f == master);
            false
        },
        |net| net.replica(o).committed() == last,
    )
    .unwrap_or_else(|| panic!("observer {o} never caught up: {:?}", net.roles()));
    assert_eq!(diffs, 1, "synchronised again by one DIFF from its master");
}

/// Test payloads: `R:<voters, comma-separated>` is a reconfig to those voters, observer 5
/// kept.
fn reconfig_of(payload: &[u8]) -> Option<zoocore_zab::Members> {
    let text = std::str::from_utf8(payload).ok()?.strip_prefix("R:")?;
    let voters: Vec<ServerId> = text.split(',').filter_map(|v| v.parse().ok()).collect();
    Some(zoocore_zab::Members::new(voters, [5]))
}

/// The masters are the voters of the membership in effect, not those at start: a voter a
/// reconfig added serves observers, one it removed no longer does. Voters 1, 2, 3 and server
/// 4 joining (its own line lists it as a voter, as a joining server's does), observer 5; the
/// reconfig makes the voters 1, 3, 4; then 5 loses its links to 1, and fails over to 4, where
/// with the masters fixed at start (1, 2, 3) it could only fall back to the leader.
#[test]
fn a_voter_a_reconfig_added_serves_observers() {
    let cfg = |id: ServerId| Config {
        voters: if id == 4 {
            vec![1, 2, 3, 4]
        } else {
            vec![1, 2, 3]
        },
        observers: vec![5],
        observer_masters: true,
        reconfig_of,
        ..config(id)
    };
    let mut net = Net::with_config(&[1, 2, 3, 4, 5], true, cfg);
    net.run_until(100, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("never all serving: {:?}", net.roles()));
    let leader = net.replica(1).leader().expect("a leader");
    assert_eq!(leader, 3);
    let zxid = net.replica(leader).next_zxid().expect("established");
    let data: zoocore_zab::Payload = zoocore_zab::Payload::from_static(b"R:1,3,4");
    net.step(leader, Input::Propose { zxid, data });
    net.run_until(40, &mut |_, _, _| false, |n| {
        [1, 2, 3, 4, 5]
            .iter()
            .all(|id| n.replica(*id).membership().0 == zxid)
    })
    .unwrap_or_else(|| panic!("the reconfig never took effect: {:?}", net.roles()));
    net.run_until(40, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| {
            let d: Vec<String> = (1..=5).map(|i| net.replica(i).describe()).collect();
            panic!("not serving after the reconfig: {d:#?}")
        });

    // 1 is cut off from 5 (both ways, and 5 hears the link drop).
    let o = 5;
    let cut = |from: ServerId, to: ServerId, _: &Message| {
        (from == o && to == 1) || (to == o && from == 1)
    };
    net.net.retain(|(f, t, m)| !cut(*f, *t, m));
    net.step(o, Input::PeerLost { peer: 1 });
    net.run_until(INIT_LIMIT, &mut |f, t, m| cut(f, t, m), |n| {
        n.replica(o).is_serving()
    })
    .unwrap_or_else(|| panic!("observer {o} never served again: {:?}", net.roles()));
    assert_eq!(net.replica(o).leader(), Some(leader));
    assert_eq!(
        net.replica(o).upstream(),
        Some(4),
        "observer {o} did not fail over to the voter the reconfig added"
    );
    let last = write(&mut net, leader, 3, &mut |f, t, m| cut(f, t, m));
    assert_eq!(net.replica(o).committed(), last);
}
