//! Import of a real Apache ZooKeeper 3.8 data directory (tests/data/zk/version-2, written by
//! Debian's ZooKeeper 3.8 driven by tests/data/zk/MakeData.java with snapCount=20, so it
//! holds three snapshots and three logs, the newest snapshot fuzzy-covered by a log tail).
//! Every znode's data, ACL and stat as ZooKeeper's clients saw them (tests/data/zk/
//! expected.txt), the open session and the last zxid must come out identical; the written
//! zoocore snapshot must decode to the same tree; a torn log tail is tolerated and reported,
//! a bad checksum is an error naming the file and offset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zoocore_proto::{Acl, Id, Perms, SessionId, Stat, Zxid};
use zoocore_storage::{
    decode_snapshot, import_zk, read_zk, Device, FileDevice, ImportError, ImportOptions,
};
use zoocore_tree::{ttl_owner, Tree, CONTAINER_OWNER};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/zk")
}

/// A znode as ZooKeeper's client saw it: data (`None` for null), ACL, stat.
type ExpectedNode = (Option<Vec<u8>>, Vec<Acl>, Stat);

struct Expected {
    session: (SessionId, i32),
    last_zxid: Zxid,
    nodes: BTreeMap<String, ExpectedNode>,
}

/// The nodes MakeData.java creates with null data (`create(path, null, ..)`): expected.txt
/// writes "-" for null and for empty alike, so the script is the record of which is which.
/// /cont comes from a ZooKeeper snapshot, /cont/c2 and /tail/x from log replay.
const NULL_DATA_NODES: [&str; 3] = ["/cont", "/cont/c2", "/tail/x"];

fn data_of(path: &str, s: &str) -> Option<Vec<u8>> {
    if s == "-" {
        return (!NULL_DATA_NODES.contains(&path)).then(Vec::new);
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex byte"))
        .collect();
    Some(bytes)
}

fn parse_acl(s: &str) -> Vec<Acl> {
    s.split(',')
        .map(|a| {
            let mut parts = a.splitn(3, ':');
            let perms = parts.next().expect("perms").parse().expect("perms number");
            let scheme = parts.next().expect("scheme");
            let id = parts.next().expect("id");
            Acl {
                perms: Perms(perms),
                id: Id::new(scheme, id),
            }
        })
        .collect()
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(data_dir().join("expected.txt")).expect("expected.txt");
    let mut session = None;
    let mut last_zxid = None;
    let mut nodes = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "session" => {
                let id = u64::from_str_radix(f[1], 16).expect("session hex") as i64;
                session = Some((SessionId(id), f[2].parse().expect("timeout")));
            }
            "last_zxid" => {
                last_zxid = Some(Zxid(i64::from_str_radix(f[1], 16).expect("zxid hex")));
            }
            "node" => {
                let n: Vec<i64> = f[4..].iter().map(|v| v.parse().expect("number")).collect();
                assert_eq!(n.len(), 11, "{line}");
                let i32_of = |v: i64| i32::try_from(v).expect("i32 field");
                let stat = Stat {
                    czxid: n[0],
                    mzxid: n[1],
                    pzxid: n[2],
                    ctime: n[3],
                    mtime: n[4],
                    version: i32_of(n[5]),
                    cversion: i32_of(n[6]),
                    aversion: i32_of(n[7]),
                    ephemeral_owner: n[8],
                    data_length: i32_of(n[9]),
                    num_children: i32_of(n[10]),
                };
                nodes.insert(
                    f[1].to_owned(),
                    (data_of(f[1], f[2]), parse_acl(f[3]), stat),
                );
            }
            other => panic!("unknown line kind {other:?}"),
        }
    }
    Expected {
        session: session.expect("session line"),
        last_zxid: last_zxid.expect("last_zxid line"),
        nodes,
    }
}

/// Every node, ACL and client-visible stat, the sessions and the last zxid as ZooKeeper had them.
fn check_against_zookeeper(tree: &Tree, want: &Expected) {
    let paths: Vec<&str> = tree.snapshot_nodes().map(|n| n.path).collect();
    let mut got_paths: Vec<&str> = paths.clone();
    got_paths.sort_unstable();
    let want_paths: Vec<&str> = want.nodes.keys().map(String::as_str).collect();
    assert_eq!(got_paths, want_paths, "the set of znodes");
    for (path, (data, acl, stat)) in &want.nodes {
        let node = tree.get(path).expect("node present");
        assert_eq!(node.data(), data.as_deref(), "data of {path}");
        assert_eq!(node.acl(), &acl[..], "ACL of {path}");
        assert_eq!(node.stat(), *stat, "stat of {path}");
    }
    let sessions: Vec<(SessionId, i32)> = tree.sessions().collect();
    assert_eq!(sessions, vec![want.session], "sessions");
    assert_eq!(tree.last_zxid(), want.last_zxid, "last zxid");
    // Clients see 0 as the owner of containers and TTL nodes; the stored owner keeps the kind.
    let owner = |p: &str| {
        tree.snapshot_nodes()
            .find(|n| n.path == p)
            .map(|n| n.stat.ephemeral_owner)
    };
    assert_eq!(owner("/cont"), Some(CONTAINER_OWNER));
    assert_eq!(owner("/ttl"), ttl_owner(3_600_000));
    let mut eph = tree.ephemerals(want.session.0, "/");
    eph.sort();
    assert_eq!(eph, vec!["/app/eph", "/app/eseq-0000000006", "/tail/x"]);
    tree.check_invariants();
}

#[test]
fn imports_zookeeper_38_data_exactly() {
    let want = expected();
    let (tree, report) = read_zk(&data_dir(), &ImportOptions::default()).expect("import");
    check_against_zookeeper(&tree, &want);

    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    assert_eq!(name(&report.snapshot).as_deref(), Some("snapshot.1d"));
    assert_eq!(report.snapshot_zxid, Zxid(0x1d));
    let digest = report.snapshot_digest.expect("3.8 appends a digest");
    assert_eq!(digest.0, Zxid(0x1d));
    let logs: Vec<_> = report.logs.iter().filter_map(|p| name(p)).collect();
    assert_eq!(
        logs,
        vec!["log.12", "log.1f"],
        "the log before the snapshot and after"
    );
    assert_eq!(report.txns_applied, 0x31 - 0x1d);
    assert!(report.txns_before_snapshot > 0);
    assert!(report.extended_types, "TTL nodes detected");
    assert_eq!(report.nodes, want.nodes.len() as u64);
    assert_eq!(report.sessions, 1);
    assert_eq!(report.ephemerals, 3);
    assert_eq!(report.last_zxid, Zxid(0x31));
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .filter_map(|s| name(&s.file))
        .collect();
    assert_eq!(skipped, vec!["snapshot.0", "snapshot.10", "log.1"]);
}

#[test]
fn import_writes_a_zoocore_snapshot_of_the_same_tree() {
    let want = expected();
    let out = tempfile::tempdir().expect("tempdir");
    let dev = FileDevice::open(out.path()).expect("device");
    let report = import_zk(&data_dir(), &ImportOptions::default(), &dev).expect("import");
    let written = report.written.expect("snapshot written");
    assert_eq!(written.zxid, Zxid(0x31));
    assert_eq!(written.name, "snapshot.0000000000000031");
    let bytes = dev.read(&written.name).expect("read back");
    let loaded = decode_snapshot(&written.name, &bytes).expect("decodes");
    assert_eq!(loaded.zxid, Zxid(0x31));
    assert_eq!(loaded.tree.digest(), written.digest);
    check_against_zookeeper(&loaded.tree, &want);
}

/// A copy of the test data in a temporary directory, to damage.
fn scratch_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let v2 = dir.path().join("version-2");
    std::fs::create_dir(&v2).expect("mkdir");
    for e in std::fs::read_dir(data_dir().join("version-2")).expect("list") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), v2.join(e.file_name())).expect("copy");
    }
    dir
}

/// The offset just past the last non-zero byte (the end of the written records).
fn written_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
}

#[test]
fn torn_log_tail_is_tolerated_and_reported() {
    let dir = scratch_copy();
    let log = dir.path().join("version-2/log.1f");
    let bytes = std::fs::read(&log).expect("log");
    let end = written_len(&bytes);
    // Cut the last record in half: ZooKeeper stops at the previous record.
    std::fs::write(&log, &bytes[..end - 20]).expect("truncate");
    let (tree, report) = read_zk(dir.path(), &ImportOptions::default()).expect("import");
    assert_eq!(tree.last_zxid(), Zxid(0x30), "the torn txn is not applied");
    assert_eq!(
        tree.get("/tail").expect("/tail").data(),
        Some(&b"after snapshot"[..])
    );
    let torn = report
        .skipped
        .iter()
        .find(|s| s.file == log)
        .expect("the torn tail is reported");
    assert!(torn.reason.contains("torn record"), "{}", torn.reason);
}

#[test]
fn bad_snapshot_checksum_names_file_and_offset() {
    let dir = scratch_copy();
    let snap = dir.path().join("version-2/snapshot.1d");
    let mut bytes = std::fs::read(&snap).expect("snapshot");
    // Change a byte of /secure's data ("\0\x01\x02\xff" → "\0\x01\x03\xff").
    let at = bytes
        .windows(4)
        .position(|w| w == [0, 1, 2, 0xff])
        .expect("/secure's data in the snapshot");
    bytes[at + 2] = 3;
    std::fs::write(&snap, &bytes).expect("write");
    let err = read_zk(dir.path(), &ImportOptions::default()).expect_err("bad checksum");
    match &err {
        ImportError::Corrupt { file, offset, .. } => {
            assert_eq!(file, &snap);
            assert!(*offset > at as u64 && *offset < bytes.len() as u64, "{err}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("snapshot.1d") && msg.contains("offset") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn bad_log_checksum_names_file_and_offset() {
    let dir = scratch_copy();
    let log = dir.path().join("version-2/log.1f");
    let mut bytes = std::fs::read(&log).expect("log");
    let end = written_len(&bytes);
    // The last record ends in its 'B'; a byte inside its txn breaks the Adler32.
    bytes[end - 3] ^= 0x40;
    std::fs::write(&log, &bytes).expect("write");
    match read_zk(dir.path(), &ImportOptions::default()) {
        Err(ImportError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, log);
            assert!(offset > 16 && (offset as usize) < end, "offset {offset}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn compressed_snapshot_is_reported_unsupported() {
    let dir = scratch_copy();
    let snap = dir.path().join("version-2/snapshot.40.gz");
    std::fs::write(&snap, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).expect("write");
    match read_zk(dir.path(), &ImportOptions::default()) {
        Err(ImportError::Unsupported { file, reason }) => {
            assert_eq!(file, snap);
            assert!(reason.contains("gz"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn missing_snapshot_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        read_zk(dir.path(), &ImportOptions::default()),
        Err(ImportError::NoSnapshot { .. })
    ));
}

#[test]
fn every_snapshot_plus_the_log_gives_the_same_state() {
    let want = expected();
    for keep in ["snapshot.0", "snapshot.10"] {
        let dir = scratch_copy();
        for old in ["snapshot.0", "snapshot.10", "snapshot.1d"] {
            if old != keep {
                std::fs::remove_file(dir.path().join("version-2").join(old)).expect("remove");
            }
        }
        let (tree, report) = read_zk(dir.path(), &ImportOptions::default()).expect("import");
        assert!(report.snapshot.ends_with(keep));
        check_against_zookeeper(&tree, &want);
    }
}

/// ZooKeeper's snapshots are fuzzy: they may already hold txns after the zxid in their name.
/// Naming the newest snapshot as if taken earlier makes the import replay txns it already
/// holds, which must change nothing (`DataTree.processTxn`'s NodeExists/NoNode tolerance).
#[test]
fn replay_over_a_fuzzy_snapshot_is_idempotent() {
    let want = expected();
    for name in ["snapshot.1c", "snapshot.18", "snapshot.13"] {
        let dir = scratch_copy();
        let v2 = dir.path().join("version-2");
        std::fs::rename(v2.join("snapshot.1d"), v2.join(name)).expect("rename");
        let (tree, report) = read_zk(dir.path(), &ImportOptions::default()).expect("import");
        assert!(report.snapshot.ends_with(name));
        check_against_zookeeper(&tree, &want);
    }
}
