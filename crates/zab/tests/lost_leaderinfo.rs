//! A LEADERINFO lost on its way (the link it was queued on broke) must not leave the
//! learner waiting for `initLimit`: the learner repeats FOLLOWERINFO every tick, and the
//! leader answers a repeat with LEADERINFO again. A duplicate that crosses the first answer is
//! ignored, not taken as a lost message.

use zoocore_zab::{Input, Message, Replica, ServerId};

mod common;

use common::{Pair, INIT_LIMIT};

fn establish_with(mut drop: impl FnMut(ServerId, &Message) -> bool) -> u64 {
    let mut pair = Pair::new();
    for ticks in 0..INIT_LIMIT / 2 {
        pair.tick();
        pair.deliver(&mut |_, to, msg| drop(to, msg));
        if pair.replicas.iter().all(Replica::is_serving) {
            return ticks;
        }
    }
    panic!(
        "not established within {} ticks: {:?}",
        INIT_LIMIT / 2,
        pair.roles()
    );
}

#[test]
fn a_lost_leaderinfo_is_sent_again_on_the_next_followerinfo() {
    let mut dropped = 0;
    let ticks = establish_with(|_, msg| {
        let lose = matches!(msg, Message::LeaderInfo { .. }) && dropped == 0;
        dropped += u32::from(lose);
        lose
    });
    assert_eq!(dropped, 1, "a LEADERINFO was dropped");
    assert!(ticks < 10, "established after {ticks} ticks");
}

#[test]
fn a_leaderinfo_that_crosses_a_repeated_followerinfo_is_ignored() {
    // Hold back LEADERINFO until the learner has repeated FOLLOWERINFO and the leader has
    // answered twice; then the learner gets both, back to back: the second arrives after it
    // took the first (ACKEPOCH sent, waiting for the synchronisation) and must not restart
    // its session.
    let mut pair = Pair::new();
    let mut held: Vec<(ServerId, Message)> = Vec::new();
    for _ in 0..INIT_LIMIT / 2 {
        pair.tick();
        pair.deliver(&mut |_, to, msg| {
            if matches!(msg, Message::LeaderInfo { .. }) && held.len() < 2 {
                held.push((to, msg.clone()));
                return true;
            }
            false
        });
        if held.len() == 2 {
            break;
        }
    }
    assert_eq!(
        held.len(),
        2,
        "the leader answered the repeated FOLLOWERINFO"
    );
    let learner = held[0].0;
    let leader = 5 - learner;
    for (_, msg) in held {
        pair.step(learner, Input::Receive { from: leader, msg });
    }
    for _ in 0..10 {
        pair.deliver(&mut |_, _, _| false);
        pair.tick();
    }
    assert!(
        pair.replicas.iter().all(Replica::is_serving),
        "{:?}",
        pair.roles()
    );
    assert_eq!(pair.conns.len(), 1, "the learner opened a new session");
}
