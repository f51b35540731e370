//! `zoocore-bench`: the command line over the load generator (`load`) and the echo-ceiling
//! server (`echo`). `load` prints a progress line on stderr while it runs and a one-line
//! summary on stdout at the end; `--out DIR` also writes report.json, per_second.csv and
//! latency.hlog; `--json` prints the report as JSON on stdout instead of the summary.
//! `campaign FILE --out DIR` runs a campaign (see `zoocore_bench::campaign`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zoocore_bench::campaign::spec::CampaignSpec;
use zoocore_bench::campaign::Campaign;
use zoocore_bench::echo::{run_echo, EchoConfig};
use zoocore_bench::load::run_load_with_progress;
use zoocore_bench::LoadConfig;

#[derive(Debug, Parser)]
#[command(
    name = "zoocore-bench",
    about = "Load generator for ZooKeeper-protocol servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive servers with a workload and report throughput, latency, errors and CPU.
    Load {
        #[command(flatten)]
        config: LoadConfig,
        /// Directory for report.json, per_second.csv and latency.hlog.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the JSON report on stdout instead of the summary line.
        #[arg(long)]
        json: bool,
        /// No progress line.
        #[arg(long)]
        quiet: bool,
    },
    /// Run a campaign file: a matrix of cells on fresh servers, ceilings, JSON, table, plots.
    Campaign {
        /// The campaign (TOML), e.g. configs/bench/quick.toml.
        file: PathBuf,
        /// Directory for campaign.json, table.md and the SVG plots.
        #[arg(long, default_value = "results/campaign")]
        out: PathBuf,
        #[command(flatten)]
        overrides: CampaignOverrides,
    },
    /// Answer every request with a reply of the real size and nothing else (the ceiling).
    Echo {
        #[command(flatten)]
        config: EchoConfig,
    },
}

/// Campaign-file settings the command line can override (the file's `[warmup]` and
/// `[network]` tables).
#[derive(Debug, clap::Args)]
struct CampaignOverrides {
    /// Warm-up before each measured window: `fixed` ([load] warmup_s) or `steady` (until
    /// three 1 s windows are within ±5%, capped by --warmup-max-s).
    #[arg(long, value_parser = ["fixed", "steady"])]
    warmup: Option<String>,
    /// The cap of a steady warm-up, seconds.
    #[arg(long)]
    warmup_max_s: Option<f64>,
    /// Every member of every locally started cell in its own network namespace (root only).
    #[arg(long)]
    netns: bool,
    /// Emulated round trip in ms for cells in namespaces that name none (implies --netns).
    #[arg(long)]
    rtt_ms: Option<f64>,
    /// CPU quota per member in CPUs, with cgroups (implies --netns).
    #[arg(long)]
    member_cpu: Option<f64>,
    /// Keep each ensemble up across consecutive runs of cells that share its shape.
    #[arg(long)]
    reuse_ensembles: bool,
}

impl CampaignOverrides {
    fn apply(&self, spec: &mut CampaignSpec) {
        use zoocore_bench::campaign::spec::WarmupMode;
        match self.warmup.as_deref() {
            Some("steady") => spec.warmup.mode = WarmupMode::Steady,
            Some("fixed") => spec.warmup.mode = WarmupMode::Fixed,
            _ => {}
        }
        if let Some(m) = self.warmup_max_s {
            spec.warmup.max_s = m;
        }
        spec.servers.reuse_ensembles |= self.reuse_ensembles;
        let n = &mut spec.network;
        n.netns |= self.netns || self.rtt_ms.is_some() || self.member_cpu.is_some();
        if let Some(r) = self.rtt_ms {
            n.rtt_ms = r;
        }
        if self.member_cpu.is_some() {
            n.member_cpu = self.member_cpu;
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Load {
            config,
            out,
            json,
            quiet,
        } => {
            let progress = |p: zoocore_bench::load::Progress| {
                if quiet {
                    return;
                }
                let phase = if p.measuring {
                    "measure"
                } else {
                    "warm-up/drain"
                };
                eprint!(
                    "\r[{phase:>13}] {:6.1}s  {:>9.0} ops/s  ops {:>10}  errors {:>6}   ",
                    p.elapsed_s, p.ops_per_s_last, p.ops, p.errors
                );
                let _ = std::io::stderr().flush();
            };
            let report = match run_load_with_progress(&config, progress) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("\nzoocore-bench load: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if !quiet {
                eprintln!();
            }
            if let Some(dir) = out {
                if let Err(e) = zoocore_bench::output::write_all(&report, &dir) {
                    eprintln!("zoocore-bench load: writing {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("zoocore-bench load: json: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!("{}", report.summary());
            }
            for f in report.connection_failures.iter().take(10) {
                eprintln!("  {f}");
            }
            ExitCode::SUCCESS
        }
        Command::Campaign {
            file,
            out,
            overrides,
        } => campaign(&file, out, &overrides),
        Command::Echo { config } => match run_echo(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zoocore-bench echo: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn campaign(file: &std::path::Path, out: PathBuf, overrides: &CampaignOverrides) -> ExitCode {
    let spec = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| CampaignSpec::parse(&t).map_err(|e| e.to_string()))
        .and_then(|mut s| {
            overrides.apply(&mut s);
            s.validate().map(|()| s).map_err(|e| e.to_string())
        }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("zoocore-bench campaign: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let campaign = Campaign { spec, out, command };
    let mut log = |line: &str| eprintln!("{line}");
    match campaign.run(&mut log) {
        Ok(res) => {
            println!("{}", zoocore_bench::campaign::results::markdown(&res));
            let failed = res.runs.iter().filter(|r| r.failure.is_some()).count();
            let stop = res.runs.iter().filter(|r| r.stop_problem.is_some()).count();
            eprintln!(
                "{} runs, {failed} failed, {stop} with stop problems; results in {}",
                res.runs.len(),
                campaign.out.display()
            );
            if stop > 0 {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zoocore-bench campaign: writing results: {e}");
            ExitCode::FAILURE
        }
    }
}
