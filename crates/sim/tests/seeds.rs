//! The fixed seeds `cargo test -p zoocore-sim` runs (the CI entry point): the real member,
//! storage and replica of every shape (standalone, 3 voters, 3 voters and an observer, 5
//! voters and an observer), on TCP-like and datagram networks, under crashes with torn
//! disks, pauses, broken links and partitions, half the ensembles reconfigured meanwhile
//! (remove a voter, add it back, swap voter and observer), with every checker on (and, in this debug
//! build, the member's own invariants); and the three modes that break a rule on purpose, to
//! show the checkers that should catch them do. A failure names its seed;
//! `cargo run -p zoocore-sim -- --seed N --ticks T` replays it.

use std::collections::BTreeSet;

use zoocore_sim::{run_seed, Network, Scenario, Sim};

/// Seeds and ticks of the fixed run: every shape six times, datagram seeds among them.
const SEEDS: u64 = 24;
const TICKS: u64 = 100;

#[test]
fn fixed_seeds_hold_every_checker() {
    let mut failures = Vec::new();
    let mut quiet = Vec::new();
    let mut shapes = BTreeSet::new();
    let (mut datagram, mut partitions, mut torn) = (0, 0, 0);
    let mut reconfigured = 0;
    let mut mastered_reconfigured = 0;
    let mut mastered = BTreeSet::new();
    for seed in 0..SEEDS {
        match run_seed(seed, TICKS) {
            Ok(r) => {
                // Every seed exercises what the checkers look at.
                if r.acked == 0
                    || r.reads == 0
                    || r.synced_reads == 0
                    || r.entries_checked == 0
                    || r.crashes + r.pauses == 0
                    || (r.voters > 1 && r.epochs == 0)
                {
                    quiet.push(format!("seed {seed}: {r:?}"));
                }
                shapes.insert((r.voters, r.observers));
                datagram += usize::from(r.datagram && r.frames_lost > 0);
                partitions += r.partitions;
                torn += r.torn_crashes;
                reconfigured += usize::from(r.reconfigs > 0);
                mastered_reconfigured += usize::from(r.reconfigs > 0 && r.observer_masters);
                if r.observer_masters {
                    // With masters, observers learn from followers (on some seeds only from
                    // the leader for a while: the fallback when no follower answered).
                    assert!(
                        r.observed_through_masters > 0 || r.voters == 1,
                        "seed {seed}: {r:?}"
                    );
                    mastered.insert((r.voters, r.datagram));
                }
            }
            Err(f) => failures.push(f.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(quiet.is_empty(), "{}", quiet.join("\n"));
    assert_eq!(
        shapes.into_iter().collect::<Vec<_>>(),
        vec![(1, 0), (3, 0), (3, 1), (5, 1)]
    );
    assert!(datagram >= 2, "only {datagram} seeds lost ZAB frames");
    assert_eq!(
        mastered.into_iter().collect::<Vec<_>>(),
        vec![(3, false), (3, true), (5, false), (5, true)],
        "observer masters on every shape with observers and both networks"
    );
    assert!(partitions >= 6, "only {partitions} partitions");
    assert!(torn >= 6, "only {torn} crashes could tear a tail");
    // Reconfigurations under the faults, with the quorum checker on every commit.
    assert!(
        reconfigured >= 6,
        "only {reconfigured} seeds committed a reconfig"
    );
    // ... also where observers learn from observer masters, which follow the membership.
    assert!(
        mastered_reconfigured >= 2,
        "only {mastered_reconfigured} seeds with observer masters committed a reconfig"
    );
}

#[test]
fn every_shape_and_network_is_drawn() {
    let mut drawn = BTreeSet::new();
    for seed in 0..SEEDS {
        let s = Scenario::from_seed(seed, TICKS);
        drawn.insert((s.voters, s.observers, s.network == Network::Tcp));
    }
    // Standalone is TCP only (it has no peers); each ensemble shape gets both networks.
    assert_eq!(drawn.len(), 7, "{drawn:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let a = run_seed(5, 60).expect("seed 5 passes");
    let b = run_seed(5, 60).expect("seed 5 passes");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn a_quiet_ensemble_elects_once_and_acknowledges_writes() {
    let scenario = Scenario {
        seed: 1,
        voters: 3,
        observers: 1,
        observer_masters: false,
        ticks: 40,
        network: Network::Tcp,
        reconfig: false,
    };
    let r = Sim::new(scenario)
        .without_faults()
        .run()
        .expect("a quiet run");
    assert_eq!(r.crashes + r.pauses + r.link_breaks + r.partitions, 0);
    assert_eq!(r.leaders, 1, "{r:?}");
    assert_eq!(r.epochs, 1, "{r:?}");
    assert!(r.acked > 50, "{r:?}");
    assert!(r.reads > 20, "{r:?}");
}

#[test]
fn the_read_checker_catches_a_client_going_back_in_time() {
    // Clients that connect to members behind what they have seen must be caught reading
    // (or being answered from) an older state on some seed.
    let caught = (0..SEEDS).filter(|s| s % 4 != 0).find_map(|seed| {
        Sim::new(Scenario::from_seed(seed, TICKS))
            .with_careless_clients()
            .run()
            .err()
    });
    let failure = caught.expect("some seed catches a careless client");
    assert!(
        failure.what.contains("after seeing"),
        "caught by another checker: {failure}"
    );
}

#[test]
fn the_sync_checker_catches_a_stale_leader_after_a_pause() {
    // zoocore before issue 10: a paused leader's clock stopped with it, it ignored its lost
    // links and answered sync from its own state, so after resuming it served reads missing
    // writes the new leader had acknowledged. Some seed must show it.
    let caught = (0..2 * SEEDS).filter(|s| s % 4 != 0).find_map(|seed| {
        Sim::new(Scenario::from_seed(seed, TICKS))
            .with_stale_leader()
            .run()
            .err()
    });
    let failure = caught.expect("some seed catches a stale sync");
    assert!(
        failure.what.contains("after sync"),
        "caught by another checker: {failure}"
    );
}

#[test]
fn the_leader_checker_catches_two_leaders_in_one_epoch() {
    // Disks that keep no epoch file: two voters that both crashed forget the epoch they
    // promised, make a quorum and propose it again, and the new candidate leads an epoch
    // another member led (on seed 9: member 3 led epoch 1, then 1 and 3 restarted and 1
    // led epoch 1 again). The one-leader-per-epoch checker must catch it on some seed.
    // (Other seeds of this broken mode fail otherwise, as a liveness check after the heal
    // or a replica's assertion: ZAB without its epoch files is neither safe nor live.)
    let mut others = Vec::new();
    let caught = (0..SEEDS).find_map(|seed| {
        let failure = Sim::new(Scenario::from_seed(seed, TICKS))
            .with_forgetful_epochs()
            .run()
            .err()?;
        if failure.what.contains("two leaders in epoch") {
            return Some(failure);
        }
        others.push(failure.to_string());
        None
    });
    assert!(
        caught.is_some(),
        "no seed caught two leaders; other failures: {others:?}"
    );
}

#[test]
fn observer_masters_name_no_leader() {
    // Seeds 439 and 679 at 200 ticks on c4b2daf (5 voters and an observer, observer masters,
    // reconfigs, datagram network): a master answered its observer's ACKEPOCH with a SNAP,
    // the NEWLEADER of its leader's epoch waited behind the SNAP being built, and the master
    // went Looking (its link to the leader lost) before both went out. The checker counted
    // it as a second leader of that epoch. Since the fix of the current epoch's durability
    // (which changed every course), 679 and 950 at 200 ticks do it; a master's NEWLEADER
    // answers an observer's FOLLOWERINFO, which names no leader.
    for seed in [679, 950] {
        let r = run_seed(seed, 200).unwrap_or_else(|f| panic!("{f}"));
        assert!(r.newleaders_after_mastering > 0, "seed {seed}: {r:?}");
    }
}

#[test]
fn seeds_that_found_bugs_hold() {
    // Seed 65, 200 ticks (3 voters, datagram network): an observer that saw a gap in its
    // leader's INFORMs re-synchronised by SNAP while serving; the entries the snapshot
    // covered were never published, so a forwarded request of its client was never
    // answered on a connection that stayed open. The member now closes its connections.
    let r = run_seed(65, 200).unwrap_or_else(|f| panic!("{f}"));
    assert!(r.datagram && r.frames_lost > 0, "{r:?}");
    // Seed 3373, 200 ticks (3 voters, TCP): a follower synchronised by DIFF wrote its new
    // current epoch before its log was durable, crashed, won the next election on that
    // epoch with a shorter log, and truncated an acknowledged write from the others
    // (crates/zab/tests/current_epoch.rs; the fix changed the run's course).
    run_seed(3373, 200).unwrap_or_else(|f| panic!("{f}"));
    // Seed 2634, 200 ticks (3 voters and an observer, datagram): late duplicates of two of
    // the observer's FOLLOWERINFOs restarted the handshake of its live session, which it
    // ignored while answering the pings: never informed again, it never converged
    // (crates/zab/tests/stale_followerinfo.rs).
    let r = run_seed(2634, 200).unwrap_or_else(|f| panic!("{f}"));
    assert!(r.datagram, "{r:?}");
}

#[test]
fn seeds_that_stalled_after_reconfigs_hold() {
    // Issue 12's liveness stalls (docs/ZAB.md 5a): a voter without a logged reconfig that
    // followed a member still electing (seeds 218, 306, 314, 322, 371 at 100 ticks); a voter
    // that missed a committed reconfig and counted the wrong voters (seed 83, 200 ticks); and
    // the quorum checker's catch once configurations travelled in notifications, a SNAP that
    // activated a deposed leader's uncommitted reconfig (seed 1650, 100 ticks); leaders in
    // discovery that waited for voters which would never follow them (seeds 266 and 465,
    // 200 ticks). Seed 194 (200 ticks) failed the quorum checker before these fixes; the
    // SNAP fix alone makes it pass.
    for (seed, ticks) in [
        (218, 100),
        (306, 100),
        (314, 100),
        (322, 100),
        (371, 100),
        (1650, 100),
        (83, 200),
        (266, 200),
        (465, 200),
        (194, 200),
    ] {
        // (The fixes changed these runs' course: seed 306 now finds no leader to ask at the
        // moments the operator acts, so only the outcome is checked.)
        run_seed(seed, ticks).unwrap_or_else(|f| panic!("{f}"));
    }
}
