//! SIGTERM and SIGINT: a clean stop that exits 0, as `zkServer.sh stop` expects of a server.
//!
//! The signals are taken on a thread of their own (signal-hook's self-pipe), never on an
//! executor, so the request path pays nothing for them. A stop loses nothing acknowledged by
//! construction: a write is answered only after its batch's fdatasync. What the stop adds is
//! an fdatasync of every file of the data directories, which matters with `forceSync=no`
//! (writes answered before they are durable); then the process exits and the kernel closes
//! every client connection. Sessions stay, as in ZooKeeper: they are in the log, and their
//! clients reconnect (to another member, or to this one once it is back) within their timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::Config;

/// How long the stop may take before the process exits anyway: a disk that does not answer
/// an fdatasync must not keep an operator's `systemctl stop` waiting forever.
const STOP_MS_MAX: u64 = 10_000;

/// Starts the thread that turns SIGTERM/SIGINT into a clean exit with status 0.
pub fn install(cfg: &Config) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let dirs = vec![cfg.data_log_dir.clone(), cfg.data_dir.clone()];
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                tracing::info!("{name}: stopping");
                stop(&dirs);
            }
        })?;
    Ok(())
}

fn stop(dirs: &[std::path::PathBuf]) -> ! {
    // The watchdog: exit 0 regardless once the bound passes (nothing acknowledged depends on
    // this sync unless forceSync=no, and then the operator chose that risk).
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(STOP_MS_MAX));
        tracing::warn!("stop took longer than {STOP_MS_MAX} ms: exiting without a final sync");
        std::process::exit(0);
    });
    let started = Instant::now();
    let mut synced = 0;
    for dir in dirs {
        synced += sync_dir(dir);
    }
    tracing::info!(
        "stopped: {synced} files synced in {:?}; exiting",
        started.elapsed()
    );
    std::process::exit(0)
}

/// fdatasyncs every regular file in `dir` (log segments, snapshots, epoch files); returns how
/// many were synced. A file that cannot be opened (a snapshot being removed by purge) is
/// skipped: it holds nothing the log does not.
fn sync_dir(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(e.path())
                .and_then(|f| f.sync_data())
                .is_ok()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_dir_counts_the_regular_files() {
        let dir = std::env::temp_dir().join(format!("zoocore-shutdown-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("log.1"), b"x").unwrap();
        std::fs::write(dir.join("snapshot.1"), b"y").unwrap();
        assert_eq!(sync_dir(&dir), 2);
        assert_eq!(sync_dir(&dir.join("missing")), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
