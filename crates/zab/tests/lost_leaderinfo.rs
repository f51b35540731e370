//! A LEADERINFO lost on its way (the link it was queued on broke) must not leave the
//! learner waiting for `initLimit`: the learner repeats FOLLOWERINFO every tick, and the
//! leader answers a repeat with LEADERINFO again. A duplicate that crosses the first answer is
//! ignored, not taken as a lost message.

use std::collections::VecDeque;

use zoocore_zab::{Action, Config, Durable, Input, Message, Replica, RoleKind, ServerId};

const INIT_LIMIT: u64 = 1000;

fn config(myid: ServerId) -> Config {
    Config {
        myid,
        voters: vec![1, 2, 3],
        observers: vec![],
        init_limit_ticks: INIT_LIMIT,
        sync_limit_ticks: INIT_LIMIT,
        finalize_wait_ticks: 0,
        history_retain: 100,
    }
}

/// Members 2 and 3 of a 3-voter ensemble (a quorum), on a perfect network except for the
/// messages `drop` rejects; every IO completes at once.
struct Pair {
    replicas: Vec<Replica>,
    net: VecDeque<(ServerId, ServerId, Message)>,
    /// Every learner session (`conn`) a FOLLOWERINFO was sent for.
    conns: std::collections::BTreeSet<u64>,
}

impl Pair {
    fn new() -> Pair {
        let replicas = [2, 3]
            .into_iter()
            .map(|id| Replica::new(config(id), Durable::default(), id))
            .collect();
        Pair {
            replicas,
            net: VecDeque::new(),
            conns: Default::default(),
        }
    }

    fn index(id: ServerId) -> usize {
        (id - 2) as usize
    }

    fn step(&mut self, id: ServerId, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let r = &mut self.replicas[Pair::index(id)];
            r.step(input).expect("step");
            for action in r.ready() {
                match action {
                    Action::Send { to, msg } if to == 2 || to == 3 => {
                        if let Message::FollowerInfo { conn, .. } = msg {
                            self.conns.insert(conn);
                        }
                        self.net.push_back((id, to, msg))
                    }
                    Action::Sync { upto, token } => {
                        inputs.push_back(Input::Persisted { upto, token })
                    }
                    Action::PersistEpoch { accepted, current } => {
                        inputs.push_back(Input::EpochPersisted { accepted, current })
                    }
                    _ => {}
                }
            }
        }
    }

    /// Delivers everything in flight (and what it causes), dropping what `drop` selects.
    fn deliver(&mut self, drop: &mut dyn FnMut(ServerId, &Message) -> bool) {
        while let Some((from, to, msg)) = self.net.pop_front() {
            if !drop(to, &msg) {
                self.step(to, Input::Receive { from, msg });
            }
        }
    }

    fn tick(&mut self) {
        self.step(2, Input::Tick);
        self.step(3, Input::Tick);
    }

    fn roles(&self) -> Vec<RoleKind> {
        self.replicas.iter().map(Replica::role).collect()
    }
}

fn establish_with(mut drop: impl FnMut(ServerId, &Message) -> bool) -> u64 {
    let mut pair = Pair::new();
    for ticks in 0..INIT_LIMIT / 2 {
        pair.tick();
        pair.deliver(&mut drop);
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
        pair.deliver(&mut |to, msg| {
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
        pair.deliver(&mut |_, _| false);
        pair.tick();
    }
    assert!(
        pair.replicas.iter().all(Replica::is_serving),
        "{:?}",
        pair.roles()
    );
    assert_eq!(pair.conns.len(), 1, "the learner opened a new session");
}
