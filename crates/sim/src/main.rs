//! The simulator's command line: `--seed N` replays one seed exactly (repeat it for
//! several), `--seeds N` runs seeds 0..N (the long mode), `--ticks T` sets how long faults
//! and load go on per seed (200 by default), `--trace` prints on stderr what elections do
//! (role changes, election and handshake frames with the receiver's state after each, and
//! every member's state on failure). `--members` is accepted and does nothing: the member
//! simulator is the only one now.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds: Vec<u64> = Vec::new();
    let mut ticks = 200;
    let mut trace = false;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--members" {
            i += 1;
            continue;
        }
        if args[i] == "--trace" {
            trace = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--seed", Some(v)) => seeds.push(v),
            ("--seeds", Some(v)) => seeds.extend(0..v),
            ("--ticks", Some(v)) => ticks = v,
            _ => {
                eprintln!("usage: zoocore-sim [--seed N]... [--seeds N] [--ticks T] [--trace]");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    if seeds.is_empty() {
        seeds.extend(0..20);
    }
    let started = Instant::now();
    let count = seeds.len();
    let mut failed = 0;
    for seed in seeds {
        let mut sim = zoocore_sim::Sim::new(zoocore_sim::Scenario::from_seed(seed, ticks));
        if trace {
            sim = sim.with_trace();
        }
        match sim.run() {
            Ok(r) => println!("seed {seed}: ok, {r:?}"),
            Err(f) => {
                failed += 1;
                println!("{f}");
            }
        }
    }
    println!(
        "{count} seeds of {ticks} ticks in {:.1} s: {failed} failed",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
