//! The snapshot job of the core executor: serialise a pinned tree version to a file without
//! taking CPU time or disk time from the commits (DESIGN.md, "Snapshots never stop writes").
//!
//! A snapshot of a million znodes is ~200 MB and about a second of one CPU. On a two-core
//! machine that is half of it, taken from the core executor, the shard and the clients while
//! they have work (docs/BENCHMARKS.md, "Snapshots under load", has the profile). So the
//! writer runs on a thread of its own at `SCHED_IDLE`: the kernel gives it a CPU only when
//! no ordinary thread wants one, and a commit that wakes up preempts it at once. The thread
//! lives for one snapshot, so its policy never needs to be undone (an unprivileged thread
//! cannot leave `SCHED_IDLE`), and the pinned version is dropped there too: freeing the
//! nodes that only the snapshot still held is part of its cost. The file is written back
//! as it grows (`write_behind`) instead of leaving hundreds of dirty MB for the kernel's
//! flusher or the final fdatasync, where they would queue ahead of the log's fdatasync on
//! the same disk; an optional rate cap spreads the writes further.
//!
//! glommio's blocking pool thread waits for the snapshot's thread, so the core executor sees
//! one future, as for every other blocking job.

use std::time::{Duration, Instant};

use zoocore_storage::{FileDevice, SnapshotError, SnapshotInfo, SnapshotWriter};
use zoocore_tree::Tree;

use crate::config::SnapshotPacing;

/// Writes a snapshot of a pinned tree version beside the core (commits continue meanwhile:
/// the version is immutable).
pub async fn write_off_core(
    dev: FileDevice,
    tree: Tree,
    pacing: SnapshotPacing,
) -> Result<SnapshotInfo, SnapshotError> {
    let zxid = tree.last_zxid();
    let started = Instant::now();
    let result = glommio::executor()
        .spawn_blocking(move || on_own_thread(dev, tree, pacing))
        .await;
    crate::stats::SNAPSHOT_TIME_MS.record(started.elapsed().as_millis() as u64);
    match &result {
        Ok(info) => tracing::info!(
            "snapshot at {zxid} written in {:?}: {info:?}",
            started.elapsed()
        ),
        Err(e) => tracing::error!("snapshot at {zxid} failed: {e}"),
    }
    result
}

/// Runs the writer on a new thread (at idle priority if asked) and waits for it.
fn on_own_thread(
    dev: FileDevice,
    tree: Tree,
    pacing: SnapshotPacing,
) -> Result<SnapshotInfo, SnapshotError> {
    let name = zoocore_storage::snapshot_name(tree.last_zxid());
    let spawned = std::thread::Builder::new()
        .name("zoocore-snapshot".into())
        .spawn(move || {
            if pacing.idle_priority {
                if let Err(e) = idle_priority() {
                    tracing::warn!("snapshot thread keeps its priority: SCHED_IDLE refused: {e}");
                }
            }
            write_paced(dev, tree, pacing)
        });
    match spawned {
        Ok(thread) => thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        // The member retries at its next snapshot point.
        Err(source) => Err(SnapshotError::Io { file: name, source }),
    }
}

/// Writes the whole file, sleeping between chunks while ahead of the rate cap.
fn write_paced(
    dev: FileDevice,
    tree: Tree,
    pacing: SnapshotPacing,
) -> Result<SnapshotInfo, SnapshotError> {
    let mut writer = if pacing.direct_io {
        SnapshotWriter::new(dev, tree)?
    } else {
        SnapshotWriter::new_buffered(dev, tree)?
    };
    writer.set_write_behind(pacing.write_behind_kb << 10);
    let started = Instant::now();
    writer.finish_with(|written| {
        if let Some(wait) = ahead_of_cap(written, pacing.write_mb_per_s, started.elapsed()) {
            std::thread::sleep(wait);
        }
    })
}

/// How long a writer that wrote `written` bytes in `elapsed` is ahead of `mb_per_s`.
fn ahead_of_cap(written: u64, mb_per_s: u64, elapsed: Duration) -> Option<Duration> {
    if mb_per_s == 0 {
        return None;
    }
    let due = Duration::from_secs_f64(written as f64 / (mb_per_s as f64 * 1e6));
    due.checked_sub(elapsed).filter(|d| !d.is_zero())
}

/// Puts the calling thread under `SCHED_IDLE` (sched(7)).
fn idle_priority() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param that outlives the
    // call, which only reads it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_paces_only_a_writer_ahead_of_it() {
        let s = Duration::from_secs;
        assert_eq!(ahead_of_cap(100_000_000, 0, s(0)), None, "no cap");
        assert_eq!(ahead_of_cap(100_000_000, 50, s(1)), Some(s(1)));
        assert_eq!(ahead_of_cap(100_000_000, 50, s(2)), None, "on time");
        assert_eq!(ahead_of_cap(100_000_000, 50, s(3)), None, "behind");
    }

    #[test]
    fn a_snapshot_written_on_its_own_idle_thread_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dev = FileDevice::open(dir.path()).expect("device");
        let tree = Tree::new();
        let pacing = SnapshotPacing {
            idle_priority: true,
            write_mb_per_s: 1,
            write_behind_kb: 1,
            direct_io: true,
        };
        let info = on_own_thread(dev.clone(), tree.clone(), pacing).expect("written");
        let bytes = std::fs::read(dir.path().join(&info.name)).expect("file");
        let loaded = zoocore_storage::decode_snapshot(&info.name, &bytes).expect("decodes");
        assert_eq!(loaded.tree.digest(), tree.digest());
        assert_eq!(loaded.zxid, tree.last_zxid());
    }
}
