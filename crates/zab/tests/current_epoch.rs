//! A member's current epoch is written only once the history NEWLEADER closes is durable on
//! it (ZOOKEEPER-4643). Elections rank the current epoch above the last zxid, so a member
//! that crashed with its epoch file written and its log synced only in part came back as the
//! most up to date with a log that lacks committed entries: it won the next election, and as
//! leader truncated those entries from everyone (sim seed 3373, 200 ticks: a follower
//! synchronised by DIFF). Both sides are scripted here, the follower's and the new leader's:
//! a committed entry must survive.

mod common;

use common::{config, Net};
use zoocore_proto::Zxid;
use zoocore_zab::{Epoch, Input, Message, Payload, RoleKind, ServerId};

/// Ticks and delivers with `cut` unreachable until `done`; panics after `ticks`.
fn run_without(net: &mut Net, cut: ServerId, ticks: u64, done: impl Fn(&Net) -> bool) {
    let reached = net.run_until(ticks, &mut |from, to, _| from == cut || to == cut, done);
    assert!(reached.is_some(), "not reached: {:?}", net.roles());
}

/// `cut` loses its links to everyone (each side is told).
fn cut_off(net: &mut Net, cut: ServerId) {
    for id in [1, 2, 3] {
        if id != cut {
            net.step(id, Input::PeerLost { peer: cut });
            net.step(cut, Input::PeerLost { peer: id });
        }
    }
}

fn established() -> Net {
    let mut net = Net::of(&[1, 2, 3], true);
    run_without(&mut net, 0, 50, Net::all_serving);
    assert_eq!(
        net.replica(3).role(),
        RoleKind::Leading,
        "{:?}",
        net.roles()
    );
    net
}

fn txn() -> Payload {
    Payload::from(&b"txn"[..])
}

/// The end of both stories: `a` and `b` restarted, `gone` cut off; whoever leads, the
/// committed `p` must be in both logs.
fn p_survives(mut net: Net, gone: ServerId, p: Zxid, a: ServerId, b: ServerId) {
    run_without(&mut net, gone, 200, |n| n.all_serving_but(gone));
    for id in [a, b] {
        assert!(
            net.replica(id).has(p),
            "{id} lost the committed {p}: {:?}, logs end at {} and {}",
            net.roles(),
            net.replica(a).last_zxid(),
            net.replica(b).last_zxid()
        );
    }
}

#[test]
fn a_follower_synchronised_by_diff_makes_the_epoch_current_only_with_its_log_durable() {
    let mut net = established();
    // 3 is cut off; 1 and 2 elect 2 (epoch 2), which commits p with 1.
    cut_off(&mut net, 3);
    run_without(&mut net, 3, 100, |n| {
        n.all_serving_but(3) && n.replica(2).role() == RoleKind::Leading
    });
    let p = net.propose(2);
    run_without(&mut net, 3, 20, |n| n.replica(1).committed() >= p);
    // Now 1 is cut off and 3 is back: 2 leads again (epoch 3) with 3, which gets p by DIFF
    // and NEWLEADER; 3's disk stalls, so p never becomes durable there.
    cut_off(&mut net, 1);
    net.unsynced.insert(3);
    run_without(&mut net, 1, 100, |n| {
        n.replica(3).has(p) && n.replica(3).role() == RoleKind::Following
    });
    for _ in 0..5 {
        net.deliver(&mut |from, to, _| from == 1 || to == 1);
        net.tick();
    }
    assert_eq!(
        net.epochs[&3].1,
        Epoch(1),
        "3's current epoch was written before its log was durable"
    );
    // 3 crashes (its log as synced: empty) and so does 1 (with p, synced); 2 is cut off.
    net.restart(config(3), vec![]);
    net.restart(config(1), vec![(p, txn())]);
    cut_off(&mut net, 2);
    p_survives(net, 2, p, 1, 3);
}

#[test]
fn a_new_leader_makes_its_epoch_current_only_with_its_log_durable() {
    let mut net = established();
    // 3 commits p with 1; 2 has it in its log, but its disk stalls.
    net.unsynced.insert(2);
    let p = net.propose(3);
    run_without(&mut net, 0, 20, |n| n.replica(1).committed() >= p);
    assert!(net.replica(2).has(p));
    // 3 is gone; 2 (the higher id, same history) leads epoch 2 with 1's epoch promise, and
    // its NEWLEADER to 1 is lost.
    cut_off(&mut net, 3);
    let reached = net.run_until(
        100,
        &mut |from, to, msg| from == 3 || to == 3 || matches!(msg, Message::NewLeader { .. }),
        |n| n.epochs.get(&2).is_some_and(|e| e.0 == Epoch(2)),
    );
    assert!(reached.is_some(), "{:?}", net.roles());
    for _ in 0..5 {
        net.deliver(&mut |from, to, msg| {
            from == 3 || to == 3 || matches!(msg, Message::NewLeader { .. })
        });
        net.tick();
    }
    assert_eq!(
        net.replica(2).role(),
        RoleKind::Leading,
        "{:?}",
        net.roles()
    );
    assert_eq!(
        net.epochs[&2].1,
        Epoch(1),
        "2's current epoch was written before its log was durable"
    );
    // 2 crashes (its log as synced: empty), and so does 1 (with p, synced).
    net.restart(config(2), vec![]);
    net.restart(config(1), vec![(p, txn())]);
    p_survives(net, 3, p, 1, 2);
}
