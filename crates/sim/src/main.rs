//! The simulator's command line: `--seed N` replays one seed exactly, `--seeds N` runs seeds
//! 0..N (the long mode), `--ticks T` sets how long faults and writes go on per seed;
//! `--members` runs the simulator of whole members (crates/sim/src/members) instead of the
//! bare replicas.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut seeds: Vec<u64> = Vec::new();
    let mut ticks = 400;
    let mut members = false;
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--members" {
            members = true;
            i += 1;
            continue;
        }
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--seed", Some(v)) => seeds.push(v),
            ("--seeds", Some(v)) => seeds.extend(0..v),
            ("--ticks", Some(v)) => ticks = v,
            _ => {
                eprintln!("usage: zoocore-sim [--members] [--seed N | --seeds N] [--ticks T]");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    if seeds.is_empty() {
        seeds.extend(0..20);
    }
    let mut failed = 0;
    if members {
        for seed in seeds {
            match zoocore_sim::run_member_seed(seed, ticks) {
                Ok(r) => println!("seed {seed}: ok, {r:?}"),
                Err(f) => {
                    failed += 1;
                    println!("{f}");
                }
            }
        }
        return if failed > 0 {
            println!("{failed} seeds failed");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    for seed in seeds {
        match zoocore_sim::run_seed(seed, ticks) {
            Ok(r) => println!(
                "seed {seed}: ok, {} committed, {} acked, {} answered, {} reads, {} synced reads, {} leaders, {} crashes, {} pauses, {} peer lost, {} snaps, {} truncs",
                r.committed, r.acked, r.answered, r.reads, r.synced_reads, r.elections, r.crashes, r.pauses, r.peer_lost, r.snaps, r.truncs
            ),
            Err(f) => {
                failed += 1;
                println!("{f}");
            }
        }
    }
    if failed > 0 {
        println!("{failed} seeds failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
