//! The server's side of durability: recovery at start and the log's fdatasync issued through
//! io_uring on the core executor.
//!
//! crates/storage owns the formats and crates/member decides when to sync, snapshot and
//! purge; this module carries out the IO: the fdatasync of a batch is awaited on the core
//! (which keeps taking requests meanwhile, so the next batch groups everything that arrived
//! during the sync).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glommio::io::BufferedFile;
use hdrhistogram::Histogram;
use zoocore_storage::{recover, FileDevice, LogOptions, RecoverOptions, Recovered, RecoveryError};

use crate::config::Config;

/// Opens the data directory and recovers its state: the newest valid snapshot and the log
/// after it. A torn tail is truncated; corruption stops start-up naming file and offset.
pub fn open(cfg: &Config) -> Result<Recovered<FileDevice>, RecoveryError> {
    let dev = FileDevice::open(&cfg.data_log_dir).map_err(|source| RecoveryError::Io {
        file: cfg.data_log_dir.display().to_string(),
        source,
    })?;
    let opts = RecoverOptions {
        log: LogOptions {
            prealloc_bytes: (cfg.pre_alloc_size_kb * 1024).clamp(64 * 1024, u64::from(u32::MAX)),
            snap_count: cfg.snap_count,
            database_id: crate::stats::unix_ms(),
        },
        extended_types: cfg.extended_types_enabled,
    };
    let started = Instant::now();
    let r = recover(dev, opts)?;
    for s in &r.skipped_snapshots {
        tracing::warn!("snapshot {} skipped: {}", s.file, s.reason);
    }
    if let Some(t) = &r.truncated {
        tracing::warn!(
            "torn log tail truncated: {} bytes at offset {} of {}",
            t.bytes,
            t.offset,
            t.file
        );
    }
    tracing::info!(
        "recovered {} znodes and {} sessions at zxid {} (snapshot {}, {} txns replayed) in {:?}",
        r.tree.node_count(),
        r.tree.sessions().count(),
        r.last_zxid,
        r.snapshot_zxid
            .map_or("none".to_string(), |z| z.to_string()),
        r.replayed,
        started.elapsed()
    );
    Ok(r)
}

/// The file `check_writable` creates and removes.
const WRITE_PROBE_NAME: &str = ".zoocore-write-probe";

/// Whether the server can create and remove files in `dir`: a real probe, not the
/// permission bits, which do not tell about a read-only mount, and which root ignores
/// anyway. ZooKeeper refuses an unwritable data directory at start too (FileTxnSnapLog). The
/// probe writes no bytes, so a disk the log has filled still passes (the server must restart
/// on it with everything acknowledged).
pub fn check_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(WRITE_PROBE_NAME);
    // Not create_new: a probe left by a crash between create and remove must not fail this.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Issues a log segment's fdatasync, on a descriptor of its own on the same inode as the
/// log's writes (an fdatasync on any descriptor of a file writes back its dirty pages).
///
/// A standalone server calls fdatasync on the core's thread; an ensemble member issues it
/// through io_uring. Through io_uring the sync runs on a kernel worker thread, and its
/// start and its completion are two more thread wake-ups in each write's path; at low rates
/// those dominate a write's latency (docs/BENCHMARKS.md, session 12). Called on the thread,
/// the core waits for the disk instead, while the next batch gathers in the channels as it
/// does behind an io_uring sync (one sync in flight either way). An ensemble member keeps the
/// io_uring sync so that its core hears its peers while the disk works.
pub struct Syncer {
    dir: PathBuf,
    open: Option<(String, Segment)>,
    on_thread: bool,
    pub stats: FsyncStats,
    warn_after: Duration,
}

/// The descriptor a segment is synced through.
enum Segment {
    Ring(BufferedFile),
    Thread(std::fs::File),
}

impl Syncer {
    pub fn new(dir: &Path, warn_after_ms: u64, on_thread: bool) -> Self {
        Syncer {
            dir: dir.to_owned(),
            open: None,
            on_thread,
            stats: FsyncStats::new(),
            warn_after: Duration::from_millis(warn_after_ms),
        }
    }

    /// fdatasync of `segment`, timed.
    pub async fn sync(&mut self, segment: &str) -> std::io::Result<()> {
        if self.open.as_ref().is_none_or(|(name, _)| name != segment) {
            if let Some((_, Segment::Ring(old))) = self.open.take() {
                let _ = old.close().await;
            }
            let path = self.dir.join(segment);
            let file = if self.on_thread {
                Segment::Thread(std::fs::OpenOptions::new().write(true).open(path)?)
            } else {
                Segment::Ring(BufferedFile::open(path).await?)
            };
            self.open = Some((segment.to_string(), file));
        }
        let (_, file) = self.open.as_ref().expect("opened above");
        let started = Instant::now();
        let result = match file {
            Segment::Thread(file) => file.sync_data(),
            Segment::Ring(file) => file.fdatasync().await.map_err(std::io::Error::from),
        };
        let took = started.elapsed();
        self.stats.record(took);
        if took > self.warn_after {
            self.stats.slow += 1;
            tracing::warn!(
                "fsync of the log took {took:?}, past fsync.warningthresholdms ({:?})",
                self.warn_after
            );
        }
        result
    }
}

/// fsync latency figures for mntr and metrics.
pub struct FsyncStats {
    pub histogram_us: Histogram<u64>,
    pub slow: u64,
    /// The sum of every recorded fdatasync, for the exporter's `fsynctime` summary.
    sum_us: u64,
    /// When the quantiles were last published: they walk the histogram's buckets (thousands
    /// of them), which cost more than the fdatasync's own bookkeeping at a thousand syncs
    /// a second, so they are refreshed at most every `QUANTILES_EVERY` (they leave out the
    /// syncs after the last refresh until the next sync comes after that interval).
    quantiles_at: Option<Instant>,
}

const QUANTILES_EVERY: Duration = Duration::from_millis(100);

impl FsyncStats {
    fn new() -> Self {
        FsyncStats {
            histogram_us: Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid bounds"),
            slow: 0,
            sum_us: 0,
            quantiles_at: None,
        }
    }

    /// Publishes the figures for mntr: the count, sum, max and slow count at once, the
    /// median and p99 when they are older than `QUANTILES_EVERY`.
    pub fn publish(&mut self, core: &crate::stats::CoreCounters) {
        use std::sync::atomic::Ordering::Relaxed;
        core.fsyncs.store(self.histogram_us.len(), Relaxed);
        core.fsync_max_us.store(self.histogram_us.max(), Relaxed);
        core.fsync_slow.store(self.slow, Relaxed);
        core.fsync_sum_us.store(self.sum_us, Relaxed);
        if self
            .quantiles_at
            .is_some_and(|at| at.elapsed() < QUANTILES_EVERY)
        {
            return;
        }
        self.quantiles_at = Some(Instant::now());
        core.fsync_p99_us
            .store(self.histogram_us.value_at_quantile(0.99), Relaxed);
        core.fsync_p50_us
            .store(self.histogram_us.value_at_quantile(0.5), Relaxed);
    }

    fn record(&mut self, took: Duration) {
        let us = (took.as_micros() as u64).clamp(1, 60_000_000);
        let _ = self.histogram_us.record(us);
        self.sum_us += us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_the_probe_and_keeps_nothing() {
        let dir = std::env::temp_dir().join(format!("zoocore-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        check_writable(&dir).expect("writable");
        assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 0);
        let err = check_writable(&dir.join("missing")).expect_err("no such directory");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        std::fs::remove_dir(&dir).expect("empty, removed");
    }

    /// Both ways of syncing (on the core's thread, through io_uring) sync the segment they
    /// are named, move to the next one, count every sync, and name a missing segment.
    #[test]
    fn syncs_segments_on_the_thread_and_through_the_ring() {
        for on_thread in [true, false] {
            let dir = std::env::temp_dir()
                .join(format!("zoocore-syncer-{}-{on_thread}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            for name in ["log.1", "log.2"] {
                std::fs::write(dir.join(name), b"record").expect("segment");
            }
            let ex = glommio::LocalExecutorBuilder::default()
                .make()
                .expect("executor");
            let (synced, missing) = ex.run(async {
                let mut syncer = Syncer::new(&dir, 1000, on_thread);
                syncer.sync("log.1").await.expect("first sync");
                syncer.sync("log.1").await.expect("same segment again");
                syncer.sync("log.2").await.expect("the next segment");
                let missing = syncer.sync("log.3").await.expect_err("no such segment");
                (syncer.stats.histogram_us.len(), missing.kind())
            });
            assert_eq!(synced, 3, "on_thread {on_thread}");
            assert_eq!(
                missing,
                std::io::ErrorKind::NotFound,
                "on_thread {on_thread}"
            );
            std::fs::remove_dir_all(&dir).expect("removed");
        }
    }
}
