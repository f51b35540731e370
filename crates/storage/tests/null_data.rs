//! Null data (ZooKeeper's `DataNode.data == null`) through the log and snapshots: a create or
//! setData with null data replays as null, a snapshot keeps it, and empty data stays empty
//! beside it. Snapshots of the format before null data (version 1) still load: version 2 is
//! version 1 plus the null marker, so a version-1 file is a version-2 file without nulls
//! with its version field set to 1 (and its checksums recomputed), which is how the test
//! makes one; such a file holding the null marker is refused. And a real data directory
//! written by zoocore before null data (tests/data/v1: a version-1 snapshot and the log
//! segments after it) recovers, then takes null data and recovers again.

mod common;

use common::{small_opts, Driver};
use zoocore_proto::{Acl, CreateMode};
use zoocore_storage::{
    decode_snapshot, new_log, recover, write_snapshot, Device, FileDevice, LogOptions, MemDevice,
    RecoverOptions,
};
use zoocore_tree::{Op, Tree};

fn create(path: &str, data: Option<&[u8]>) -> Op {
    Op::Create {
        path: path.into(),
        data: data.map(<[u8]>::to_vec).map(Into::into),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    }
}

fn set(path: &str, data: Option<&[u8]>) -> Op {
    Op::SetData {
        path: path.into(),
        data: data.map(<[u8]>::to_vec).map(Into::into),
        version: -1,
    }
}

fn opts() -> zoocore_storage::RecoverOptions {
    RecoverOptions {
        log: small_opts(),
        extended_types: false,
    }
}

/// `/null` (created null), `/empty` (created empty), `/set-null` (data, then set to null),
/// `/multi` (created null inside a multi).
fn write_nulls(d: &mut Driver<MemDevice>) {
    for op in [
        create("/null", None),
        create("/empty", Some(b"")),
        create("/set-null", Some(b"abc")),
        set("/set-null", None),
        Op::Multi(vec![create("/multi", None), set("/empty", Some(b""))]),
    ] {
        d.write(&op).expect("append");
    }
    d.sync().expect("sync");
}

fn assert_nulls(tree: &Tree, when: &str) {
    for (path, want) in [
        ("/null", None),
        ("/empty", Some(&b""[..])),
        ("/set-null", None),
        ("/multi", None),
    ] {
        let node = tree
            .get(path)
            .unwrap_or_else(|| panic!("{when}: {path} missing"));
        assert_eq!(node.data(), want, "{when}: data of {path}");
        assert_eq!(node.stat().data_length, 0, "{when}: dataLength of {path}");
    }
}

#[test]
fn null_data_survives_log_replay_and_snapshots() {
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    write_nulls(&mut d);
    let r = recover(dev.clone(), opts()).expect("recovers from the log");
    assert_eq!(r.snapshot_zxid, None);
    assert_eq!(r.tree.digest(), d.tree.digest());
    assert_nulls(&r.tree, "log replay");

    let info = write_snapshot(&dev, &d.tree).expect("snapshot");
    let bytes = dev.read(&info.name).expect("snapshot bytes");
    assert_eq!(&bytes[4..8], &2u32.to_be_bytes(), "written as version 2");
    let loaded = decode_snapshot(&info.name, &bytes).expect("decodes");
    assert_nulls(&loaded.tree, "snapshot");
    assert_eq!(loaded.tree.digest(), d.tree.digest());

    // Past the snapshot: data set back over null, and a new null, replayed on top of it.
    d.write(&set("/null", Some(b"back"))).expect("append");
    d.write(&create("/late", None)).expect("append");
    d.sync().expect("sync");
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.snapshot_zxid, Some(info.zxid));
    assert_eq!(r.tree.digest(), d.tree.digest());
    assert_eq!(r.tree.get("/null").unwrap().data(), Some(&b"back"[..]));
    assert_eq!(r.tree.get("/late").unwrap().data(), None);
    assert_eq!(r.tree.get("/set-null").unwrap().data(), None);
}

/// The snapshot `bytes` with its version field set to `version` and both checksums (header
/// and file) recomputed: what a writer of that version would have produced for these nodes.
fn with_version(bytes: &[u8], version: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[4..8].copy_from_slice(&version.to_be_bytes());
    let header_crc = crc32c::crc32c(&b[..36]);
    b[36..40].copy_from_slice(&header_crc.to_be_bytes());
    let end = b.len() - 4;
    let file_crc = crc32c::crc32c(&b[..end]);
    b[end..].copy_from_slice(&file_crc.to_be_bytes());
    b
}

#[test]
fn version_1_snapshots_load_and_never_hold_null() {
    let dev = MemDevice::new();
    let mut d = Driver::new(new_log(dev.clone(), small_opts()));
    d.write(&create("/a", Some(b"")))
        .and_then(|_| d.write(&create("/b", Some(b"data"))))
        .expect("append");
    d.sync().expect("sync");
    let info = write_snapshot(&dev, &d.tree).expect("snapshot");
    let v1 = with_version(&dev.read(&info.name).expect("bytes"), 1);
    let loaded = decode_snapshot(&info.name, &v1).expect("a version-1 snapshot loads");
    assert_eq!(
        loaded.tree.digest(),
        d.tree.digest(),
        "same tree, same digest"
    );
    assert_eq!(loaded.tree.get("/a").unwrap().data(), Some(&b""[..]));
    assert_eq!(loaded.tree.get("/b").unwrap().data(), Some(&b"data"[..]));

    // The null marker has no meaning in version 1: refused, with the offset named.
    d.write(&create("/n", None)).expect("append");
    d.sync().expect("sync");
    let info = write_snapshot(&dev, &d.tree).expect("snapshot");
    let v1 = with_version(&dev.read(&info.name).expect("bytes"), 1);
    let err = decode_snapshot(&info.name, &v1).expect_err("null in version 1");
    assert!(
        err.to_string()
            .contains("null data in a version 1 snapshot"),
        "{err}"
    );
    // An unknown newer version is refused by its version, not misread.
    let v3 = with_version(&dev.read(&info.name).expect("bytes"), 3);
    let err = decode_snapshot(&info.name, &v3).expect_err("version 3");
    assert!(err.to_string().contains("unknown version 3"), "{err}");
}

/// tests/data/v1 is the data directory of a zoocore built before null data (commit
/// ab7edc7, `preAllocSize=64`, `snapCount=4`), driven by zkCli 3.8: `create /v1-null` (sent
/// as null, stored then as empty), `create /v1-data hello`, `set /v1-data world`, `create
/// /v1-eph e`, `create /f1 1` .. `/f9 9`, stopped with SIGTERM; kept are its snapshot at
/// 0xb and the two segments from 0x9 on, so recovery loads a version-1 snapshot and
/// replays version-1 records after it.
#[test]
fn a_data_dir_written_before_null_data_recovers_and_takes_nulls() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&fixture).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    let opts = || RecoverOptions {
        log: LogOptions {
            prealloc_bytes: 64 << 10,
            snap_count: 4,
            database_id: 1,
        },
        extended_types: true,
    };
    let dev = FileDevice::open(dir.path()).expect("dir");
    let snapshot = dev
        .read("snapshot.000000000000000b")
        .expect("fixture snapshot");
    assert_eq!(
        &snapshot[4..8],
        &1u32.to_be_bytes(),
        "the fixture is version 1"
    );
    let r = recover(dev.clone(), opts()).expect("a version-1 data dir recovers");
    assert_eq!(r.snapshot_zxid, Some(zoocore_proto::Zxid(0xb)));
    assert!(r.replayed > 0, "records after the snapshot replayed");
    assert!(r.skipped_snapshots.is_empty(), "{:?}", r.skipped_snapshots);
    let t = &r.tree;
    assert_eq!(
        t.get("/v1-null").unwrap().data(),
        Some(&b""[..]),
        "null was stored as empty"
    );
    assert_eq!(t.get("/v1-data").unwrap().data(), Some(&b"world"[..]));
    assert_eq!(t.get("/v1-data").unwrap().stat().version, 1);
    for i in 1..=9 {
        let want = i.to_string();
        assert_eq!(
            t.get(&format!("/f{i}"))
                .map(|n| n.data().map(<[u8]>::to_vec)),
            Some(Some(want.into_bytes())),
            "/f{i}"
        );
    }

    // The upgraded server goes on: null data in the old log, then a version-2 snapshot.
    let mut d = Driver {
        digests: [(r.tree.last_zxid(), r.tree.digest())]
            .into_iter()
            .collect(),
        counter: u32::try_from(r.tree.last_zxid().0 & 0xffff_ffff).expect("counter"),
        synced: r.tree.last_zxid(),
        tree: r.tree,
        log: r.log,
    };
    d.write(&create("/v2-null", None)).expect("append");
    d.write(&set("/v1-data", None)).expect("append");
    d.sync().expect("sync");
    drop(d.log);
    let r = recover(dev.clone(), opts()).expect("recovers");
    assert_eq!(r.tree.get("/v2-null").unwrap().data(), None);
    assert_eq!(r.tree.get("/v1-data").unwrap().data(), None);
    let info = write_snapshot(&dev, &r.tree).expect("snapshot");
    let r = recover(dev, opts()).expect("recovers from the version-2 snapshot");
    assert_eq!(r.snapshot_zxid, Some(info.zxid));
    assert_eq!(r.tree.get("/v2-null").unwrap().data(), None);
    assert_eq!(r.tree.get("/v1-null").unwrap().data(), Some(&b""[..]));
}
