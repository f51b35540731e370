//! `zoocore`: a ZooKeeper-compatible coordination server.
//!
//! `zoocore` alone serves standalone on 127.0.0.1:2181 with ./data; `zoocore zoo.cfg` reads
//! a ZooKeeper configuration.

// The server in groups (docs/ARCHITECTURE.md): the executors and channels (topology), the
// driver around the member, the clients (shards and connections), and what operators use.
mod clients;
mod config;
mod driver;
mod forward;
mod limits;
mod link;
mod listen;
mod msg;
mod ops;
mod sessions;
mod shared;
mod topology;

// Short paths for the modules of each group, used across the crate.
use clients::{budget, conn, limiter, outbox, shard, tls, views, wire};
use driver::{durable, ensemble, peer, peer_tls};
use ops::{admin, fourlw, leadership, metrics, reports, restore, shutdown, stats, status, tools};

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// jemalloc: small size classes without a per-allocation header (the tree is millions of
/// small allocations), and thread-local caches for the executors.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const USAGE: &str = "usage:
  zoocore                         standalone on 127.0.0.1:2181, data in ./data
  zoocore <zoo.cfg>               with a ZooKeeper configuration
  zoocore import-zk <zkDataDir> [<zoocoreDataDir>] [--data-log-dir <zkDataLogDir>]
                                  convert an Apache ZooKeeper 3.x data directory
  zoocore purge <dataDir> [<count>]
                                  keep the newest <count> snapshots (at least 3) and the log they need
  zoocore status [<zoo.cfg>]      the server's mode, as zkServer.sh status prints it (exit 1: not serving)

SIGTERM or SIGINT stops the server cleanly (exit status 0).";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ZOOCORE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match args.as_slice() {
        [] => config::Config::standalone_default(),
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [flag] if flag == "--version" => {
            println!("zoocore {}", fourlw::VERSION);
            return ExitCode::SUCCESS;
        }
        [cmd, rest @ ..] if cmd == "import-zk" => return tools::import_zk(rest),
        [cmd, rest @ ..] if cmd == "purge" => return tools::purge(rest),
        [cmd, rest @ ..] if cmd == "status" => return status::run(rest),
        [path] => match config::Config::load(&PathBuf::from(path)) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Every client is a file descriptor: take the hard limit, as the JVM does for ZooKeeper
    // (-XX:+MaxFDLimit), so a burst of connections meets maxClientCnxns, not EMFILE.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open files limit {n}"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    if let Err(e) = shutdown::install(&cfg) {
        tracing::error!("cannot take SIGTERM/SIGINT: {e}");
        return ExitCode::FAILURE;
    }
    match topology::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
