//! The maintenance commands of the `zoocore` binary: importing an Apache ZooKeeper data
//! directory, and purging old snapshots and log segments by hand (ZooKeeper's
//! zkCleanup.sh / PurgeTxnLog).

use std::path::PathBuf;
use std::process::ExitCode;

use zoocore_storage::{FileDevice, ImportOptions, LogOptions, RecoverOptions};

/// `zoocore import-zk <zkDataDir> [<zoocoreDataDir>] [--data-log-dir <zkDataLogDir>]`
pub fn import_zk(args: &[String]) -> ExitCode {
    let mut positional = Vec::new();
    let mut opts = ImportOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--data-log-dir" {
            let Some(dir) = it.next() else {
                return usage("--data-log-dir needs a directory");
            };
            opts.data_log_dir = Some(PathBuf::from(dir));
        } else {
            positional.push(PathBuf::from(a));
        }
    }
    let (zk_dir, out_dir) = match positional.as_slice() {
        [zk] => (zk.clone(), PathBuf::from("data")),
        [zk, out] => (zk.clone(), out.clone()),
        _ => {
            return usage(
                "import-zk takes a ZooKeeper data directory and an optional output directory",
            )
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        tracing::error!("cannot create {}: {e}", out_dir.display());
        return ExitCode::FAILURE;
    }
    let out = match FileDevice::open(&out_dir) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot open {}: {e}", out_dir.display());
            return ExitCode::FAILURE;
        }
    };
    match zoocore_storage::import_zk(&zk_dir, &opts, &out) {
        Ok(report) => {
            for s in &report.skipped {
                tracing::warn!("skipped {}: {}", s.file.display(), s.reason);
            }
            println!(
                "imported {} znodes, {} sessions ({} ephemerals) at zxid {} from {} into {}",
                report.nodes,
                report.sessions,
                report.ephemerals,
                report.last_zxid,
                zk_dir.display(),
                out_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("import failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `zoocore purge <dataDir> [<count>]`
pub fn purge(args: &[String]) -> ExitCode {
    let (dir, count) = match args {
        [dir] => (PathBuf::from(dir), 3),
        [dir, n] => match n.parse::<usize>() {
            Ok(n) => (PathBuf::from(dir), n.max(3)),
            Err(_) => return usage("purge: <count> must be a number"),
        },
        _ => return usage("purge takes a data directory and an optional count"),
    };
    let dev = match FileDevice::open(&dir) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("cannot open {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    // Recovery opens the log the way the server would (and refuses a corrupt one) before
    // anything is removed.
    let recovered = match zoocore_storage::recover(
        dev,
        RecoverOptions {
            log: LogOptions::default(),
            extended_types: true,
        },
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut log = recovered.log;
    match zoocore_storage::purge(&mut log, count) {
        Ok(removed) => {
            for name in &removed {
                println!("removed {name}");
            }
            println!("kept the newest {count} snapshots and the log after the oldest of them");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("purge failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("{why}\n{}", crate::USAGE);
    ExitCode::from(2)
}
