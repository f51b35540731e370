//! Election races that finalize-wait 0 (decide as soon as a quorum agrees) makes possible.

mod common;

use common::{Net, INIT_LIMIT};
use zoocore_proto::Zxid;
use zoocore_zab::{Epoch, Input, Message, PeerState, RoleKind, Vote};

#[test]
fn a_learner_whose_chosen_leader_follows_another_looks_again_at_once() {
    // Three voters start together. Member 1 hears member 2's first vote before member 3's:
    // {1, 2} vote for 2, a quorum, and 1 decides to follow 2 at once. Member 2 hears 3 before
    // 1 and ends up following 3. Member 1 must not wait initLimit for a LEADERINFO from 2.
    let mut net = Net::of(&[1, 2, 3], true);
    assert!(net.deliver_one(|from, to, m| from == 2
        && to == 1
        && matches!(m, Message::Notification { .. })));
    assert_eq!(
        (net.replica(1).role(), net.replica(1).leader()),
        (RoleKind::Following, Some(2)),
        "the race: 1 follows 2"
    );
    // Member 2 hears 3 next, before any vote of 1's: {2, 3} vote for 3, and 2 follows 3.
    assert!(net.deliver_one(|from, to, m| from == 3
        && to == 2
        && matches!(m, Message::Notification { .. })));
    assert_eq!(
        (net.replica(2).role(), net.replica(2).leader()),
        (RoleKind::Following, Some(3))
    );
    for ticks in 0..INIT_LIMIT / 2 {
        net.deliver(&mut |_, _, _| false);
        if net.all_serving() {
            assert!(ticks < 10, "all serving only after {ticks} ticks");
            let leaders: Vec<_> = net.roles().into_iter().map(|(_, _, l)| l).collect();
            assert!(
                leaders.windows(2).all(|w| w[0] == w[1]),
                "one leader: {:?}",
                net.roles()
            );
            return;
        }
        net.tick();
    }
    panic!(
        "not serving within {} ticks: {:?}",
        INIT_LIMIT / 2,
        net.roles()
    );
}

#[test]
fn a_learner_that_joined_a_stale_leader_looks_again_at_once() {
    // Members 2 and 3 establish (3 leads, 2 follows) while 1 hears nothing. Then 1 gets a
    // stale picture: 3 reports following 2 and 2 reports leading (notifications of an earlier
    // leadership of 2's). A quorum names 2, which says it leads: 1 follows 2. Its FOLLOWERINFO
    // reaches 2, which follows 3: 1 must look again, not wait initLimit.
    let mut net = Net::of(&[1, 2, 3], false);
    for _ in 0..10 {
        net.tick();
        net.deliver(&mut |from, to, _| from == 1 || to == 1);
    }
    let leader = net.replica(3).leader().expect("2 and 3 established");
    let other = 5 - leader;
    assert_eq!(net.replica(other).leader(), Some(leader));
    let stale = Vote {
        leader: other,
        zxid: Zxid(0),
        peer_epoch: Epoch(0),
    };
    for (from, state) in [(leader, PeerState::Following), (other, PeerState::Leading)] {
        net.step(
            1,
            Input::Receive {
                from,
                msg: Message::Notification {
                    vote: stale,
                    round: 1,
                    state,
                    config: Default::default(),
                },
            },
        );
    }
    assert_eq!(
        (net.replica(1).role(), net.replica(1).leader()),
        (RoleKind::Following, Some(other)),
        "the race: 1 follows a member that does not lead"
    );
    for ticks in 0..INIT_LIMIT / 2 {
        net.tick();
        net.deliver(&mut |_, _, _| false);
        if net.all_serving() && net.replica(1).leader() == Some(leader) {
            assert!(ticks < 10, "1 joined the leader only after {ticks} ticks");
            return;
        }
    }
    panic!("1 never joined {leader}: {:?}", net.roles());
}

fn looking_vote(net: &mut Net, to: u64, from: u64, leader: u64, state: PeerState) {
    let vote = Vote {
        leader,
        zxid: Zxid(0),
        peer_epoch: Epoch(0),
    };
    let msg = Message::Notification {
        vote,
        round: 1,
        state,
        config: Default::default(),
    };
    net.step(to, Input::Receive { from, msg });
}

/// 1 leads in discovery on a quorum that includes a vote of 2's for 1 (one 2 no longer
/// holds: in the sim, a vote from before 2 heard a better candidate).
fn one_leads_on_a_stale_vote() -> Net {
    let mut net = Net::of(&[1, 2, 3], false);
    looking_vote(&mut net, 1, 2, 1, PeerState::Looking);
    assert_eq!(
        net.replica(1).role(),
        RoleKind::Leading,
        "the race: 1 leads"
    );
    net
}

#[test]
fn a_leader_in_discovery_rejoins_its_round_when_a_voter_of_it_votes_better() {
    // 2's vote of the same round for 3 (better placed than 1: a higher id) says it will never
    // follow 1 from this round: 1 rejoins the round with that vote rather than wait out
    // initLimit for FOLLOWERINFOs (sim seed 465, where 2 could not decide at all).
    let mut net = one_leads_on_a_stale_vote();
    looking_vote(&mut net, 1, 2, 3, PeerState::Looking);
    // Back in the round, {1, 2} vote for 3: 1 follows 3 at once.
    assert_eq!(
        (net.replica(1).role(), net.replica(1).leader()),
        (RoleKind::Following, Some(3))
    );
    let ticks = net
        .run_until(INIT_LIMIT / 2, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("not serving: {:?}", net.roles()));
    assert!(ticks < 10, "all serving only after {ticks} ticks");
    assert_eq!(net.replica(1).leader(), Some(3));
}

#[test]
fn a_leader_in_discovery_yields_to_a_better_placed_leader() {
    // 3 reports that it leads, with a better vote than 1's: of two leaders waiting for the
    // same voters, the worse placed one yields and votes for the other (sim seed 266).
    let mut net = one_leads_on_a_stale_vote();
    looking_vote(&mut net, 1, 3, 3, PeerState::Leading);
    assert_eq!(
        net.replica(1).role(),
        RoleKind::Looking,
        "{:?}",
        net.roles()
    );
    let ticks = net
        .run_until(INIT_LIMIT / 2, &mut |_, _, _| false, Net::all_serving)
        .unwrap_or_else(|| panic!("not serving: {:?}", net.roles()));
    assert!(ticks < 10, "all serving only after {ticks} ticks");
    assert_eq!(net.replica(1).leader(), Some(3));
}
