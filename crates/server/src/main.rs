//! `zoocore`: a ZooKeeper-compatible coordination server.
//!
//! `zoocore` alone serves standalone on 127.0.0.1:2181 with ./data; `zoocore zoo.cfg` reads
//! a ZooKeeper configuration.

mod config;
mod conn;
mod core;
mod fourlw;
mod limiter;
mod limits;
mod log;
mod msg;
mod sessions;
mod shard;
mod stats;
mod topology;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// jemalloc: small size classes without a per-allocation header (the tree is millions of
/// small allocations), and thread-local caches for the executors.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
            println!("usage: zoocore [zoo.cfg]\n\nWithout a file: standalone on 127.0.0.1:2181, data in ./data.");
            return ExitCode::SUCCESS;
        }
        [flag] if flag == "--version" => {
            println!("zoocore {}", fourlw::VERSION);
            return ExitCode::SUCCESS;
        }
        [path] => match config::Config::load(&PathBuf::from(path)) {
            Ok(cfg) => cfg,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: zoocore [zoo.cfg]");
            return ExitCode::from(2);
        }
    };
    match topology::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
