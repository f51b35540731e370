//! Dynamic reconfiguration in the replica (docs/ZAB.md 5a): a reconfig commits only once a
//! quorum of the old voters AND of the new ones has it, takes effect at its commit, and the
//! new voters decide from then on; a server outside the membership learns as a non-voter.

mod common;

use common::{config, Net};
use zoocore_proto::Zxid;
use zoocore_zab::{Config, Input, Members, Message, Payload, RoleKind, ServerId};

/// Test payloads: `R:<voters, comma-separated>` is a reconfig to those voters.
fn reconfig_of(payload: &[u8]) -> Option<Members> {
    let text = std::str::from_utf8(payload).ok()?.strip_prefix("R:")?;
    let voters: Vec<ServerId> = text.split(',').filter_map(|v| v.parse().ok()).collect();
    Some(Members::new(voters, []))
}

fn cfg(id: ServerId) -> Config {
    Config {
        // Server 4 starts with the ensemble and itself, as a joining server does.
        voters: if id == 4 {
            vec![1, 2, 3, 4]
        } else {
            vec![1, 2, 3]
        },
        reconfig_of,
        ..config(id)
    }
}

fn propose(net: &mut Net, leader: ServerId, data: &str) -> Zxid {
    let zxid = net
        .replica(leader)
        .next_zxid()
        .expect("an established leader");
    let data = Payload::copy_from_slice(data.as_bytes());
    net.step(leader, Input::Propose { zxid, data });
    zxid
}

fn is_ack_from(from: ServerId, id: ServerId, msg: &Message) -> bool {
    from == id
        && matches!(
            msg,
            Message::Ack { .. } | Message::PingReply { .. } | Message::AckNewLeader { .. }
        )
}

#[test]
fn a_reconfig_commits_with_both_quorums_and_the_new_voters_decide_after_it() {
    let mut net = Net::with_config(&[1, 2, 3, 4], true, cfg);
    net.run_until(100, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("no leader: {:?}", net.roles()));
    let leader = net.replica(1).leader().expect("a leader");
    assert_eq!(leader, 3, "the highest myid of the voters leads");
    // 4 is no member of the leader's membership, yet it follows (as a non-voter).
    assert_eq!(net.replica(4).role(), RoleKind::Following);

    // The new voters are 3 and 4: with 4's acknowledgements lost, the old voters alone
    // (1, 2, 3 all acknowledge) must not commit it.
    let r = propose(&mut net, leader, "R:3,4");
    for _ in 0..5 {
        net.deliver(&mut |from, _, msg| is_ack_from(from, 4, msg));
        net.tick();
    }
    for id in [1, 2, 3] {
        assert!(net.replica(id).has(r), "{id} lacks the reconfig");
    }
    assert!(
        net.replica(leader).committed() < r,
        "committed {} without the new voters",
        net.replica(leader).committed()
    );
    assert!(net.replica(leader).reconfig_in_progress());

    // 4's acknowledgements arrive: it commits, and takes effect everywhere.
    net.run_until(20, &mut |_, _, _| false, |n| {
        [1, 2, 3, 4]
            .iter()
            .all(|id| n.replica(*id).membership().0 == r)
    })
    .unwrap_or_else(|| panic!("the reconfig never took effect: {:?}", net.roles()));
    assert!(!net.replica(leader).reconfig_in_progress());
    for id in [1, 2, 3, 4] {
        let (since, members) = net.replica(id).membership();
        assert_eq!(
            (since, members.voters.iter().copied().collect::<Vec<_>>()),
            (r, vec![3, 4])
        );
    }

    // From now on 3 and 4 decide: with 1 and 2 silent, a proposal commits on 3 and 4.
    net.run_until(20, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("not serving after the reconfig: {:?}", net.roles()));
    let leader = net.replica(3).leader().expect("a leader");
    let z = propose(&mut net, leader, "txn");
    for _ in 0..5 {
        net.deliver(&mut |from, _, msg| {
            (from == 1 || from == 2)
                && matches!(msg, Message::Ack { .. } | Message::PingReply { .. })
        });
        net.tick();
    }
    assert!(
        net.replica(leader).committed() >= z,
        "the new voters did not commit {z}"
    );
    // The removed servers go on learning, as observers do.
    net.run_until(20, &mut |_, _, _| false, |n| n.replica(1).committed() >= z)
        .expect("1 learns the commit");
    for id in [1, 2] {
        assert_eq!(net.replica(id).role(), RoleKind::Observing, "{id}");
    }
}

#[test]
fn a_voter_that_lacks_a_logged_reconfig_rejoins_the_round_its_leader_gave_up() {
    // Voters 1, 2, 3; a reconfig adding 4 (which stays down) is logged on 2 and 3 only. In
    // the next election 1 decides on a quorum of its own membership, {1, 2}, and follows 2;
    // 2 and 3 need three of {1, 2, 3, 4} and 2 switches to 3 in the same round. Member 1
    // must rejoin that round (its vote completes 3's quorum), not wait initLimit for a
    // LEADERINFO from 2, nor start a new round where the same race repeats (sim seed 314).
    let cfg3 = |id| Config {
        voters: vec![1, 2, 3],
        ..cfg(id)
    };
    let mut net = Net::with_config(&[1, 2, 3], true, cfg3);
    net.run_until(100, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("no leader: {:?}", net.roles()));
    assert_eq!(net.replica(1).leader(), Some(3));
    let r = propose(&mut net, 3, "R:1,2,3,4");
    net.deliver(&mut |_, to, _| to == 1);
    assert!(net.replica(2).has(r) && !net.replica(1).has(r));
    assert!(net.replica(2).reconfig_in_progress());

    // Silence until every member gives up its session and looks.
    net.run_until(3 * common::INIT_LIMIT, &mut |_, _, _| true, |n| {
        n.roles()
            .iter()
            .all(|(_, role, _)| *role == RoleKind::Looking)
    })
    .unwrap_or_else(|| panic!("still not all looking: {:?}", net.roles()));
    net.net.clear();
    for id in [1, 2, 3] {
        net.step(id, Input::Tick { now_ms: net.now_ms });
    }

    // The race: 1 hears 2's vote first and follows 2 at once.
    assert!(net.deliver_one(|from, to, m| from == 2
        && to == 1
        && matches!(m, Message::Notification { .. })));
    assert_eq!(
        (net.replica(1).role(), net.replica(1).leader()),
        (RoleKind::Following, Some(2)),
        "the race: 1 follows 2"
    );
    // 2 hears 3 (the same log, a higher id) and votes for 3; it still looks, with two of
    // the four voters of the logged reconfig behind 3.
    assert!(net.deliver_one(|from, to, m| from == 3
        && to == 2
        && matches!(m, Message::Notification { .. })));
    assert_eq!(net.replica(2).role(), RoleKind::Looking);

    let ticks = net
        .run_until(
            common::INIT_LIMIT / 2,
            &mut |_, _, _| false,
            Net::all_serving,
        )
        .unwrap_or_else(|| panic!("not serving: {:?}", net.roles()));
    assert!(ticks < 10, "all serving only after {ticks} ticks");
    for id in [1, 2, 3] {
        assert_eq!(net.replica(id).leader(), Some(3), "{:?}", net.roles());
    }
}

#[test]
fn a_voter_that_missed_a_committed_reconfig_adopts_it_from_notifications() {
    // Voters 1..4; 4 (the leader) is removed by a reconfig that commits while 1 is cut off,
    // and hands over to 2 or 3. Then that new leader goes and 1 comes back: 1 and the other
    // are a quorum of the new voters {1, 2, 3}, but 1 still counts {1, 2, 3, 4}, where it
    // needs three, and 4 votes no more. Only by adopting the configuration the other's
    // notifications carry does 1 elect with it (sim seed 83).
    let cfg4 = |id| Config {
        voters: vec![1, 2, 3, 4],
        ..cfg(id)
    };
    let mut net = Net::with_config(&[1, 2, 3, 4], true, cfg4);
    net.run_until(100, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("no leader: {:?}", net.roles()));
    assert_eq!(net.replica(1).leader(), Some(4));
    let r = propose(&mut net, 4, "R:1,2,3");
    let cut_1 = &mut |from, to, _: &Message| from == 1 || to == 1;
    net.run_until(3 * common::INIT_LIMIT, cut_1, |n| {
        [2, 3, 4]
            .iter()
            .all(|id| n.replica(*id).membership().0 == r)
            && n.all_serving_but(1)
            && n.replica(1).role() == RoleKind::Looking
    })
    .unwrap_or_else(|| panic!("the reconfig never took effect: {:?}", net.roles()));
    assert_eq!(net.replica(1).membership().0, Zxid::ZERO, "1 missed it");
    assert_eq!(
        net.replica(4).role(),
        RoleKind::Observing,
        "4 votes no more"
    );

    // The new leader (2 or 3, to which 4 handed over) goes, 1 comes back.
    let gone = net.replica(2).leader().expect("a leader");
    let other = if gone == 2 { 3 } else { 2 };
    let cut = &mut |from, to, _: &Message| from == gone || to == gone;
    net.run_until(3 * common::INIT_LIMIT, cut, |n| {
        [1, other, 4].iter().all(|id| n.replica(*id).is_serving())
    })
    .unwrap_or_else(|| panic!("1, {other} and 4 never serve: {:?}", net.roles()));
    assert_eq!(net.replica(1).leader(), Some(other), "{:?}", net.roles());
    let (since, members) = net.replica(1).membership();
    assert_eq!(
        (since, members.voters.iter().copied().collect::<Vec<_>>()),
        (r, vec![1, 2, 3])
    );
}

#[test]
fn a_snapshot_does_not_activate_a_deposed_leaders_uncommitted_reconfig() {
    // Leader 3 logs a reconfig removing itself that no one else receives, and is cut off. 1
    // and 2 elect 2 and commit past the history window, so 3 comes back to a SNAP that
    // covers its uncommitted reconfig. That entry is not in the snapshot (whose configuration
    // is still {1, 2, 3}): 3 must stay a voter, not activate its own removal (sim seed 1650,
    // where notifications then spread the wrong configuration to the others).
    let cfg3 = |id| Config {
        voters: vec![1, 2, 3],
        history_retain: 5,
        ..cfg(id)
    };
    let mut net = Net::with_config(&[1, 2, 3], true, cfg3);
    net.run_until(100, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("no leader: {:?}", net.roles()));
    assert_eq!(net.replica(1).leader(), Some(3));
    let r = propose(&mut net, 3, "R:1,2");
    let cut_3 = &mut |from, to, _: &Message| from == 3 || to == 3;
    net.deliver(cut_3);
    assert!(net.replica(3).has(r) && !net.replica(2).has(r));

    net.run_until(3 * common::INIT_LIMIT, cut_3, |n| {
        n.replica(1).is_serving() && n.replica(1).leader() == Some(2)
    })
    .unwrap_or_else(|| panic!("1 and 2 never elect 2: {:?}", net.roles()));
    let mut last = Zxid::ZERO;
    for _ in 0..12 {
        last = propose(&mut net, 2, "txn");
        net.deliver(cut_3);
        net.tick();
    }
    net.run_until(20, cut_3, |n| n.replica(2).committed() >= last)
        .expect("1 and 2 commit");

    let snaps = std::cell::Cell::new(0);
    net.run_until(
        3 * common::INIT_LIMIT,
        &mut |_, to, msg| {
            if to == 3 && matches!(msg, Message::Snap { .. }) {
                snaps.set(snaps.get() + 1);
            }
            false
        },
        |n| n.all_serving() && n.replica(3).committed() >= last,
    )
    .unwrap_or_else(|| panic!("3 never catches up: {:?}", net.roles()));
    assert!(snaps.get() > 0, "3 was synchronised without a SNAP");
    assert_eq!(net.replica(3).role(), RoleKind::Following);
    assert!(!net.replica(3).reconfig_in_progress());
    let (since, members) = net.replica(3).membership();
    assert_eq!(
        (since, members.voters.iter().copied().collect::<Vec<_>>()),
        (Zxid::ZERO, vec![1, 2, 3])
    );
}
