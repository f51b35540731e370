//! Leadership transfer (docs/ZAB.md, "Leadership transfer"): the leader stops proposing,
//! waits until the target has everything, tells every voter who is next, and steps down; the
//! voters elect the target although the usual order (epoch, zxid, myid) would pick another;
//! a hand-over that cannot complete lapses into an ordinary election.

mod common;

use common::{Net, INIT_LIMIT};
use zoocore_proto::Zxid;
use zoocore_zab::{Message, RoleKind, ServerId, StepError};

/// Three voters established; the leader (3: every zxid equal, the highest myid wins) has
/// committed `n` proposals on every member.
fn established(n: usize) -> (Net, ServerId, Zxid) {
    let mut net = Net::of(&[1, 2, 3], true);
    net.run_until(50, &mut |_, _, _| false, Net::all_serving)
        .expect("established");
    let leader = net.replica(1).leader().expect("a leader");
    assert_eq!(leader, 3, "the highest myid leads an ensemble of equals");
    let mut last = Zxid::ZERO;
    for _ in 0..n {
        last = net.propose(leader);
    }
    net.deliver(&mut |_, _, _| false);
    net.tick();
    net.deliver(&mut |_, _, _| false);
    for id in [1, 2, 3] {
        assert_eq!(net.replica(id).committed(), last, "{id} committed all");
    }
    (net, leader, last)
}

fn leaders(net: &Net) -> Vec<Option<ServerId>> {
    net.roles().into_iter().map(|(_, _, l)| l).collect()
}

fn led_by(target: ServerId) -> impl Fn(&Net) -> bool {
    move |net: &Net| {
        net.all_serving()
            && leaders(net).iter().all(|l| *l == Some(target))
            && net.replica(target).role() == RoleKind::Leading
    }
}

#[test]
fn the_leader_hands_over_to_the_lowest_myid_follower() {
    let (mut net, old, last) = established(5);
    // 1 has the same zxid as 2 and a lower myid: an ordinary election would pick 2.
    let target = net.call(old, |r| r.transfer_leadership(Some(1)));
    assert_eq!(target, Ok(1));
    let ticks = net
        .run_until(INIT_LIMIT, &mut |_, _, _| false, led_by(1))
        .unwrap_or_else(|| panic!("1 never led: {:?}", net.roles()));
    assert!(ticks < 5, "the hand-over took {ticks} ticks");
    // Nothing committed is lost, and the new leader proposes in a later epoch.
    for id in [1, 2, 3] {
        assert!(net.replica(id).has(last), "{id} lost {last}");
        assert!(net.replica(id).committed() >= last);
    }
    let next = net.propose(1);
    assert!(next.epoch() > last.epoch(), "{next} not in a new epoch");
    net.deliver(&mut |_, _, _| false);
    net.tick();
    net.deliver(&mut |_, _, _| false);
    assert_eq!(net.replica(old).committed(), next, "the old leader follows");
}

#[test]
fn the_leader_waits_for_the_target_to_acknowledge_everything() {
    let (mut net, old, _) = established(2);
    // Proposals reach 2 but not 1 yet: 1 must not be handed leadership without them.
    let a = net.propose(old);
    let b = net.propose(old);
    net.deliver(&mut |_, to, m| to == 1 && matches!(m, Message::Proposal { .. }));
    assert_eq!(net.replica(old).committed(), b, "committed by 2 and 3");
    assert!(!net.replica(1).has(a), "1 missed them");
    assert_eq!(net.call(old, |r| r.transfer_leadership(Some(1))), Ok(1));
    // Proposing stops while the transfer waits.
    assert_eq!(net.replica(old).next_zxid(), None);
    assert_eq!(net.replica(old).handover_target(), Some(1));
    net.deliver(&mut |_, _, _| false);
    assert_eq!(
        net.replica(old).role(),
        RoleKind::Leading,
        "1 is still behind"
    );
    // 1 sees no gap (nothing more is proposed), so it never acknowledges them: the
    // transfer lapses after syncLimit and the leader proposes again, still leading.
    let lapsed = net.run_until(INIT_LIMIT + 10, &mut |_, _, _| false, |n| {
        n.replica(old).next_zxid().is_some()
    });
    assert!(
        lapsed.is_some(),
        "the transfer never lapsed: {:?}",
        net.roles()
    );
    assert_eq!(net.replica(old).role(), RoleKind::Leading);
    assert_eq!(net.replica(old).handover_target(), None);
    // The next proposal shows 1 its gap; it resynchronises and has everything.
    let c = net.propose(old);
    net.run_until(INIT_LIMIT, &mut |_, _, _| false, |n| {
        n.replica(1).committed() >= c
    })
    .expect("1 catches up");
    assert!(net.replica(1).has(a) && net.replica(1).has(b));
}

#[test]
fn a_follower_that_asks_becomes_the_leader() {
    let (mut net, _, last) = established(3);
    assert_eq!(net.call(1, |r| r.request_leadership()), Ok(3));
    net.run_until(INIT_LIMIT, &mut |_, _, _| false, led_by(1))
        .unwrap_or_else(|| panic!("1 never led: {:?}", net.roles()));
    assert!(net.replica(2).has(last));
    // Asked again, the new leader says it is not a follower.
    assert_eq!(
        net.call(1, |r| r.request_leadership()),
        Err(StepError::NotFollower)
    );
}

#[test]
fn yield_picks_the_most_up_to_date_follower() {
    let (mut net, old, _) = established(1);
    // 2 acknowledges a proposal that 1 never sees: 2 is the most up to date.
    let z = net.propose(old);
    net.deliver(&mut |_, to, m| to == 1 && matches!(m, Message::Proposal { .. }));
    assert!(net.replica(2).has(z) && !net.replica(1).has(z));
    assert_eq!(net.call(old, |r| r.transfer_leadership(None)), Ok(2));
    net.run_until(INIT_LIMIT, &mut |_, _, _| false, led_by(2))
        .unwrap_or_else(|| panic!("2 never led: {:?}", net.roles()));
    assert!(net.replica(2).has(z));
}

#[test]
fn transfers_are_refused_where_they_cannot_be_done() {
    let (mut net, old, _) = established(1);
    assert_eq!(
        net.call(old, |r| r.transfer_leadership(Some(old))),
        Err(StepError::NoTarget(old.to_string()))
    );
    assert_eq!(
        net.call(old, |r| r.transfer_leadership(Some(9))),
        Err(StepError::NoTarget("9".to_string()))
    );
    assert_eq!(
        net.call(1, |r| r.transfer_leadership(Some(2))),
        Err(StepError::NotLeader)
    );
    assert_eq!(
        net.call(old, |r| r.request_leadership()),
        Err(StepError::NotFollower)
    );
}

#[test]
fn a_target_that_dies_leaves_an_ordinary_election() {
    let (mut net, old, last) = established(2);
    assert_eq!(net.call(old, |r| r.transfer_leadership(Some(1))), Ok(1));
    // The hand-over messages go out; then 1 is cut off for good before it can lead.
    net.deliver(&mut |from, to, m| {
        (to == 1 && !matches!(m, Message::Handover { .. })) || from == 1
    });
    let mut cut = |from: ServerId, to: ServerId, _: &Message| from == 1 || to == 1;
    let elected = net.run_until(INIT_LIMIT * 3, &mut cut, |n| {
        n.replica(2).is_serving()
            && n.replica(3).is_serving()
            && n.replica(2).leader() == n.replica(3).leader()
    });
    assert!(
        elected.is_some(),
        "2 and 3 never elected: {:?}",
        net.roles()
    );
    let leader = net.replica(2).leader().expect("a leader");
    assert_ne!(leader, 1);
    assert!(net.replica(leader).has(last));
}
