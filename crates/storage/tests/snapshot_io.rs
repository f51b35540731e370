//! Snapshot files on a real file system, written the ways the server writes them: direct IO
//! (`create_streaming`: aligned windows plus a buffered tail), and through the page cache
//! with write-behind. Each way must give the same bytes, and the bytes must read back to
//! the same tree.

use zoocore_proto::{Acl, Zxid};
use zoocore_storage::{decode_snapshot, FileDevice, SnapshotWriter};
use zoocore_tree::{Tree, Txn};

/// A tree of `n` znodes of 100 bytes each (a snapshot of a few MB: several 1 MiB direct
/// windows and an unaligned tail).
fn tree_of(n: u32) -> Tree {
    let mut t = Tree::new();
    for i in 1..=n {
        let txn = Txn::Create {
            path: format!("/k{i:08}"),
            data: Some(zoocore_proto::Bytes::from(vec![(i % 251) as u8; 100])),
            acl: Acl::open_unsafe(),
            ephemeral_owner: 0,
            parent_cversion: i as i32,
        };
        let applied = t.apply(Zxid::new(1, i), 1_000 + i64::from(i), &txn);
        assert!(!applied.stale, "create {i} applied");
    }
    t
}

fn written(dir: &std::path::Path, tree: &Tree, direct: bool, behind: u64) -> Vec<u8> {
    let dev = FileDevice::open(dir).expect("device");
    let mut w = if direct {
        SnapshotWriter::new(dev, tree.clone())
    } else {
        SnapshotWriter::new_buffered(dev, tree.clone())
    }
    .expect("snapshot started");
    w.set_write_behind(behind);
    let mut steps = 0;
    let info = w.finish_with(|_| steps += 1).expect("snapshot written");
    assert!(steps > 3, "the writer went chunk by chunk ({steps} steps)");
    let bytes = std::fs::read(dir.join(&info.name)).expect("file read");
    assert_eq!(
        bytes.len() as u64,
        info.bytes,
        "file length is the bytes written"
    );
    assert!(
        !dir.join(format!("{}.tmp", info.name)).exists(),
        "renamed from .tmp"
    );
    let loaded = decode_snapshot(&info.name, &bytes).expect("decodes");
    assert_eq!(loaded.zxid, tree.last_zxid());
    assert_eq!(loaded.tree.digest(), tree.digest());
    assert_eq!(loaded.tree.node_count(), tree.node_count());
    bytes
}

#[test]
fn direct_buffered_and_write_behind_files_are_identical_and_exact() {
    let tree = tree_of(30_000);
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let direct = written(dirs[0].path(), &tree, true, 0);
    assert!(
        direct.len() > 3 << 20,
        "several direct windows: {}",
        direct.len()
    );
    assert_ne!(direct.len() % 4096, 0, "an unaligned tail");
    let buffered = written(dirs[1].path(), &tree, false, 0);
    let behind = written(dirs[2].path(), &tree, false, 256 << 10);
    assert!(direct == buffered, "direct and buffered bytes differ");
    assert!(behind == buffered, "write-behind changed the bytes");
}
