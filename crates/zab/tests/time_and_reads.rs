//! Time that cannot lie and reads that cannot be stale, one interleaving each: a leader
//! resumed after a freeze longer than syncLimit steps down at its first tick, before it pings;
//! a leader that loses its links to a quorum of voters steps down at once; a learner that has
//! not heard from its leader for syncLimit of clock time looks again; a read round is confirmed
//! only by a quorum's echo of a round that started after the read arrived, one round serves
//! every read that arrived while the previous one was in flight, and a deposed leader's round
//! is never confirmed.

use zoocore_zab::{Action, Config, Input, Message, RoleKind, ServerId};

mod common;

use common::Net;

const SYNC_LIMIT: u64 = 5;

fn config(myid: ServerId) -> Config {
    Config {
        sync_limit_ms: SYNC_LIMIT,
        ..common::config(myid)
    }
}

/// Members 1, 2 and 3 in broadcast; returns the net and the leader.
fn established() -> (Net, ServerId) {
    let mut net = Net::with_config(&[1, 2, 3], true, config);
    for _ in 0..50 {
        net.deliver(&mut |_, _, _| false);
        if net.all_serving() {
            let leader = net.replicas[0].leader().expect("serving");
            return (net, leader);
        }
        net.tick();
    }
    panic!("not established: {:?}", net.roles());
}

fn followers(leader: ServerId) -> Vec<ServerId> {
    [1, 2, 3].into_iter().filter(|&i| i != leader).collect()
}

/// Steps `id` alone and returns its actions (sends stay queued in the net as well).
fn step_alone(net: &mut Net, id: ServerId, input: Input) -> Vec<Action> {
    let i = net.position(id);
    net.replicas[i].step(input).expect("never refused");
    net.replicas[i].ready()
}

fn role(net: &Net, id: ServerId) -> RoleKind {
    net.replica(id).role()
}

#[test]
fn a_leader_resumed_after_a_freeze_past_sync_limit_steps_down_before_it_pings() {
    let (mut net, leader) = established();
    let t = net.now_ms;
    // Frozen for less than syncLimit: it resumes leading.
    let actions = step_alone(
        &mut net,
        leader,
        Input::Tick {
            now_ms: t + SYNC_LIMIT,
        },
    );
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Send {
            msg: Message::Ping { .. },
            ..
        }
    )));
    assert_eq!(role(&net, leader), RoleKind::Leading);
    // Frozen past it: the first tick after resuming sees the whole freeze.
    let actions = step_alone(
        &mut net,
        leader,
        Input::Tick {
            now_ms: t + 3 * SYNC_LIMIT,
        },
    );
    assert_eq!(role(&net, leader), RoleKind::Looking);
    assert!(actions.contains(&Action::BecameLooking), "{actions:?}");
    let pinged = actions.iter().any(|a| {
        matches!(
            a,
            Action::Send {
                msg: Message::Ping { .. },
                ..
            }
        )
    });
    assert!(!pinged, "a deposed leader pinged: {actions:?}");
}

#[test]
fn a_leader_steps_down_as_soon_as_it_loses_the_links_to_a_quorum() {
    let (mut net, leader) = established();
    let f = followers(leader);
    net.step(leader, Input::PeerLost { peer: f[0] });
    assert_eq!(
        role(&net, leader),
        RoleKind::Leading,
        "it still hears 2 of 3"
    );
    // The lost follower is heard from again (its link was re-dialled): it counts again.
    let t = net.now_ms;
    net.step(leader, Input::Tick { now_ms: t });
    net.deliver(&mut |_, _, _| false);
    net.step(leader, Input::PeerLost { peer: f[1] });
    assert_eq!(
        role(&net, leader),
        RoleKind::Leading,
        "f0 answered its ping"
    );
    net.step(leader, Input::PeerLost { peer: f[0] });
    assert_eq!(role(&net, leader), RoleKind::Looking);
}

#[test]
fn a_learner_that_has_not_heard_from_its_leader_for_sync_limit_looks_again() {
    let (mut net, leader) = established();
    let f = followers(leader)[0];
    let t = net.now_ms;
    step_alone(
        &mut net,
        f,
        Input::Tick {
            now_ms: t + SYNC_LIMIT,
        },
    );
    assert_eq!(role(&net, f), RoleKind::Following);
    step_alone(
        &mut net,
        f,
        Input::Tick {
            now_ms: t + SYNC_LIMIT + 1,
        },
    );
    assert_eq!(role(&net, f), RoleKind::Looking);
}

fn pings_of_round(net: &Net, round: u64) -> usize {
    net.net
        .iter()
        .filter(|(_, _, m)| matches!(m, Message::Ping { round: r, .. } if *r == round))
        .count()
}

#[test]
fn a_read_round_is_confirmed_by_a_quorum_echo_and_serves_every_read_that_waited() {
    let (mut net, leader) = established();
    let f = followers(leader);
    assert!(
        net.read_index(f[0]).is_err(),
        "a follower has no read rounds"
    );
    let r1 = net.read_index(leader).unwrap();
    assert_eq!(
        pings_of_round(&net, r1),
        2,
        "round {r1} pings both followers"
    );
    assert_eq!(
        net.confirmed.get(&leader),
        None,
        "not confirmed by the leader alone"
    );
    // Two reads arrive while r1 is in flight: they wait for the next round, one for both.
    let r2 = net.read_index(leader).unwrap();
    assert_eq!(r2, r1 + 1);
    assert_eq!(net.read_index(leader).unwrap(), r2);
    assert_eq!(
        pings_of_round(&net, r2),
        0,
        "r2 starts after r1 is confirmed"
    );
    // One follower's echo is a quorum with the leader.
    assert!(net.deliver_one(|_, to, m| to == f[0] && matches!(m, Message::Ping { .. })));
    assert!(net.deliver_one(|from, _, m| from == f[0] && matches!(m, Message::PingReply { .. })));
    assert_eq!(net.confirmed.get(&leader), Some(&r1));
    assert_eq!(
        pings_of_round(&net, r2),
        2,
        "r2 started when r1 was confirmed"
    );
    // An echo of r1 from the other follower confirms nothing more.
    assert!(net.deliver_one(|_, to, m| to == f[1] && matches!(m, Message::Ping { .. })));
    assert!(net.deliver_one(|from, _, m| from == f[1] && matches!(m, Message::PingReply { .. })));
    assert_eq!(net.confirmed.get(&leader), Some(&r1));
    net.deliver(&mut |_, _, _| false);
    assert_eq!(net.confirmed.get(&leader), Some(&r2));
}

#[test]
fn a_lost_round_ping_is_repeated_by_the_next_tick() {
    let (mut net, leader) = established();
    let r = net.read_index(leader).unwrap();
    net.deliver(&mut |_, _, m| matches!(m, Message::Ping { .. }));
    assert_eq!(net.confirmed.get(&leader), None);
    let t = net.now_ms;
    net.step(leader, Input::Tick { now_ms: t });
    net.deliver(&mut |_, _, _| false);
    assert_eq!(net.confirmed.get(&leader), Some(&r));
}

#[test]
fn a_deposed_leader_never_confirms_a_read_round() {
    let (mut net, old) = established();
    // The old leader is cut off (frozen): the others stop hearing it and elect a new one.
    let cut = |from: ServerId, to: ServerId| from == old || to == old;
    for _ in 0..(4 * SYNC_LIMIT) {
        net.now_ms += 1;
        let now_ms = net.now_ms;
        for id in followers(old) {
            net.step(id, Input::Tick { now_ms });
        }
        net.deliver(&mut |from, to, _| cut(from, to));
    }
    let others: Vec<(ServerId, RoleKind)> = followers(old)
        .into_iter()
        .map(|id| (id, role(&net, id)))
        .collect();
    assert!(
        others.iter().any(|(_, r)| *r == RoleKind::Leading),
        "no new leader: {others:?}"
    );
    assert!(others.iter().all(|(id, _)| net.replica(*id).is_serving()));
    // The old leader has not ticked since: it still believes it leads, and a read arrives.
    assert_eq!(role(&net, old), RoleKind::Leading);
    let round = net.read_index(old).unwrap();
    for _ in 0..3 {
        net.deliver(&mut |_, _, _| false);
    }
    assert_ne!(
        net.confirmed.get(&old),
        Some(&round),
        "a stale read was confirmed"
    );
    assert!(net.confirmed.get(&old).is_none_or(|r| *r < round));
}
