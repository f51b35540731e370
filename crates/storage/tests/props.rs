//! Property tests: random op sequences with random sync points, snapshots and a crash of a
//! random kind recover exactly the live state at some zxid no older than the last sync; and
//! arbitrary bytes as a segment or snapshot file never make recovery panic (the same
//! harness as the cargo-fuzz target `recovery` in fuzz/).

mod common;

use common::{op_of, small_opts, Driver};
use proptest::prelude::*;
use zoocore_storage::{
    decode_snapshot, format::scan_segment, new_log, recover, write_snapshot, Crash, MemDevice,
    RecoverOptions,
};

#[derive(Clone, Debug)]
enum Step {
    Write(u64),
    Sync,
    Snapshot,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => any::<u64>().prop_map(Step::Write),
        3 => Just(Step::Sync),
        1 => Just(Step::Snapshot),
    ]
}

fn crash() -> impl Strategy<Value = Crash> {
    prop_oneof![
        Just(Crash::LoseUnsynced),
        (0u64..400).prop_map(Crash::KeepPrefix),
        any::<u64>().prop_map(Crash::Random),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_then_crash_recover_a_synced_prefix(
        steps in proptest::collection::vec(step(), 0..80),
        mode in crash(),
    ) {
        let dev = MemDevice::new();
        let mut d = Driver::new(new_log(dev.clone(), small_opts()));
        for s in &steps {
            match s {
                Step::Write(n) => { d.write(&op_of(*n)).expect("append"); }
                Step::Sync => { d.sync().expect("sync"); }
                Step::Snapshot => { write_snapshot(&dev, &d.tree).expect("snapshot"); }
            }
        }
        dev.crash(mode);
        let r = recover(dev.clone(), RecoverOptions { log: small_opts(), extended_types: false })
            .expect("recovers");
        r.tree.check_invariants();
        let z = r.tree.last_zxid();
        prop_assert!(z >= d.synced, "recovered {} lost synced {}", z, d.synced);
        prop_assert_eq!(Some(&r.tree.digest()), d.digests.get(&z));
    }

    #[test]
    fn arbitrary_segment_and_snapshot_bytes_never_panic(
        seg in proptest::collection::vec(any::<u8>(), 0..400),
        snap in proptest::collection::vec(any::<u8>(), 0..400),
        newest in any::<bool>(),
    ) {
        let _ = scan_segment(&seg, newest);
        let _ = decode_snapshot("snapshot.0000000000000001", &snap);
        let dev = MemDevice::new();
        dev.put("log.0000000000000001", &seg);
        dev.put("snapshot.0000000000000001", &snap);
        let _ = recover(dev, RecoverOptions::default());
    }

    #[test]
    fn mutated_valid_files_never_panic(flips in proptest::collection::vec((any::<u16>(), 0u8..8), 1..4)) {
        let dev = MemDevice::new();
        let mut d = Driver::new(new_log(dev.clone(), small_opts()));
        d.batch(1, 3);
        let snap = write_snapshot(&dev, &d.tree).expect("snapshot");
        d.batch(2, 3);
        let seg = d.log.segments()[0].name.clone();
        for (at, bit) in flips {
            dev.flip_bit(&seg, u64::from(at) % 2048, bit);
            dev.flip_bit(&snap.name, u64::from(at) % snap.bytes, bit);
        }
        let _ = recover(dev, RecoverOptions { log: small_opts(), extended_types: false });
    }

    #[test]
    fn checksummed_garbage_txns_are_errors_not_panics(
        txns in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..60), 1..20),
    ) {
        // Valid framing and checksums around arbitrary txn bytes: decode or apply must
        // reject, never panic.
        let dev = MemDevice::new();
        let mut log = new_log(dev.clone(), small_opts());
        for (i, t) in txns.iter().enumerate() {
            log.append(zoocore_proto::Zxid::new(1, i as u32 + 1), 0, t).expect("append");
        }
        log.sync().expect("sync");
        let _ = recover(dev, RecoverOptions { log: small_opts(), extended_types: false });
    }
}
