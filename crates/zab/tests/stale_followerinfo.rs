//! A delayed duplicate FOLLOWERINFO of a session the learner left (only the simulator's
//! datagram mode delays and duplicates frames so) must not restart the handshake of the
//! learner's live session. A duplicate of an older session replaced the live session's
//! handler, then a duplicate of the live session opened a new handshake on it: the learner,
//! in broadcast, ignored its LEADERINFO but answered its pings, so it stayed alive and was
//! never sent another entry (sim seed 2634, 200 ticks, an observer of the leader; the open
//! finding of docs/ZAB.md section 7 since seed 2706). The same holds of an observer master.

mod common;

use common::{config, Net, INIT_LIMIT};
use zoocore_zab::{Config, Input, Message, RoleKind, ServerId};

const OBSERVER: ServerId = 4;

fn with_observer(masters: bool) -> impl Fn(ServerId) -> Config {
    move |id| Config {
        voters: vec![1, 2, 3],
        observers: vec![OBSERVER],
        observer_masters: masters,
        ..config(id)
    }
}

/// The observer's FOLLOWERINFOs, as sent, with their recipient.
fn followerinfos(
    seen: &mut Vec<(ServerId, Message)>,
) -> impl FnMut(ServerId, ServerId, &Message) -> bool + '_ {
    move |from, to, msg| {
        if from == OBSERVER && matches!(msg, Message::FollowerInfo { .. }) {
            seen.push((to, msg.clone()));
        }
        false
    }
}

/// The observer leaves its upstream for a fault until it is back with it on a new session
/// (with masters, it passes over the one it just left, so it goes to the other and back);
/// then that upstream gets, late, a FOLLOWERINFO of the observer's first session and one of
/// its live session, and the leader writes: the observer must learn the writes.
fn stale_duplicates_after_a_reconnect(masters: bool) {
    let mut net = Net::with_config(&[1, 2, 3, OBSERVER], true, with_observer(masters));
    let mut sent = Vec::new();
    net.run_until(100, &mut followerinfos(&mut sent), Net::all_serving)
        .unwrap_or_else(|| panic!("never all serving: {:?}", net.roles()));
    let first = net.replica(OBSERVER).upstream().expect("observing");
    assert_eq!(first == 3, !masters, "the leader is 3");
    let old = sent
        .iter()
        .rev()
        .find(|(to, _)| *to == first)
        .expect("sent")
        .1
        .clone();
    for _ in 0..3 {
        let upstream = net.replica(OBSERVER).upstream().expect("observing");
        net.step(OBSERVER, Input::PeerLost { peer: upstream });
        net.step(upstream, Input::PeerLost { peer: OBSERVER });
        net.run_until(100, &mut followerinfos(&mut sent), Net::all_serving)
            .unwrap_or_else(|| panic!("never all serving again: {:?}", net.roles()));
        if net.replica(OBSERVER).upstream() == Some(first) {
            break;
        }
    }
    assert_eq!(net.replica(OBSERVER).upstream(), Some(first));
    let live = sent
        .iter()
        .rev()
        .find(|(to, _)| *to == first)
        .expect("sent")
        .1
        .clone();
    let conn = |m: &Message| m.conn().expect("a session frame");
    assert_ne!(conn(&old), conn(&live), "a new session");
    for msg in [old, live] {
        net.step(
            first,
            Input::Receive {
                from: OBSERVER,
                msg,
            },
        );
    }
    // Writes over more than syncLimit and initLimit: the observer must have them all.
    let mut last = Default::default();
    for _ in 0..3 * INIT_LIMIT / 100 {
        last = net.propose(3);
        for _ in 0..100 {
            net.deliver(&mut |_, _, _| false);
            net.tick();
        }
    }
    net.deliver(&mut |_, _, _| false);
    assert_eq!(net.replica(OBSERVER).role(), RoleKind::Observing);
    assert!(
        net.replica(OBSERVER).applied() >= last,
        "the observer applied {} of {last}",
        net.replica(OBSERVER).applied()
    );
}

#[test]
fn a_leader_ignores_a_stale_followerinfo_of_an_observer() {
    stale_duplicates_after_a_reconnect(false);
}

#[test]
fn an_observer_master_ignores_a_stale_followerinfo() {
    stale_duplicates_after_a_reconnect(true);
}
