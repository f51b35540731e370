//! What a campaign produced: every run (failed ones with their reason), the summary of each
//! (cell, system) over its repeats with the spread, the zoocore / Apache ratio per cell, and
//! the ceilings. Serialised whole to `campaign.json`; [`markdown`] renders the tables that
//! docs/BENCHMARKS.md shows. Aggregation is pure (runs in, summaries out), so it is tested
//! without servers.

use std::fmt::Write as _;

use serde::Serialize;

use super::ensemble::MemberInfo;
use super::machine::{FsyncCeiling, MachineInfo};
use super::spec::{CampaignSpec, Cell, System};
use crate::Report;

#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub seq: usize,
    pub cell: usize,
    pub label: String,
    pub system: System,
    pub repeat: u32,
    pub remote: bool,
    /// None: the run measured; Some: why it did not (the campaign went on).
    pub failure: Option<String>,
    /// Something survived the stop (a process or a listener): reported, never hidden.
    pub stop_problem: Option<String>,
    pub members: Vec<MemberInfo>,
    pub pids_started: Vec<u32>,
    pub wall_s: f64,
    pub ops_per_s: f64,
    pub reads_per_s: f64,
    pub writes_per_s: f64,
    pub errors_total: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// Sum over the members' processes (None if any could not be read).
    pub server_cpu_s: Option<f64>,
    pub ops_per_server_cpu_s: Option<f64>,
    pub fell_behind: bool,
    pub report: Option<Report>,
}

impl RunResult {
    pub fn failed(base: RunResult, why: String) -> RunResult {
        RunResult {
            failure: Some(why),
            ..base
        }
    }

    pub fn fill(&mut self, r: Report) {
        self.ops_per_s = r.ops_per_s;
        self.reads_per_s = r.reads_per_s;
        self.writes_per_s = r.writes_per_s;
        self.errors_total = r.errors_total;
        self.p50_us = r.latency.p50_us;
        self.p99_us = r.latency.p99_us;
        self.p999_us = r.latency.p999_us;
        let cpu: Option<f64> = r.servers_cpu.iter().map(|s| s.cpu_s).sum();
        self.server_cpu_s = cpu.filter(|_| !r.servers_cpu.is_empty());
        self.ops_per_server_cpu_s = self
            .server_cpu_s
            .filter(|c| *c > 0.0)
            .map(|c| r.ops as f64 / c);
        self.fell_behind = r.schedule.fell_behind;
        self.report = Some(r);
    }
}

/// Mean, min and max of a measure over the repeats that produced it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let v: Vec<f64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        Some(Spread {
            n: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// (max - min) / mean, in percent.
    pub fn range_pct(&self) -> f64 {
        if self.mean == 0.0 {
            0.0
        } else {
            100.0 * (self.max - self.min) / self.mean
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CellSummary {
    pub cell: usize,
    pub label: String,
    pub system: System,
    pub runs_ok: usize,
    pub runs_failed: usize,
    pub failure: Option<String>,
    pub ops_per_s: Option<Spread>,
    pub reads_per_s: Option<Spread>,
    pub writes_per_s: Option<Spread>,
    pub p50_us: Option<Spread>,
    pub p99_us: Option<Spread>,
    pub p999_us: Option<Spread>,
    pub ops_per_server_cpu_s: Option<Spread>,
    pub server_cpu_us_per_op: Option<Spread>,
    pub fell_behind: bool,
}

/// zoocore / Apache for one cell, from the means; None where either side has no number.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub cell: usize,
    pub label: String,
    pub ops_per_s: Option<f64>,
    pub ops_per_server_cpu_s: Option<f64>,
    /// zoocore's p99 / Apache's (lower is better for zoocore).
    pub p99: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EchoCeiling {
    pub read_pct: u32,
    pub ops_per_s: f64,
    pub p99_us: u64,
    pub server_cpu_s: Option<f64>,
    pub report: Report,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CeilingResults {
    pub echo: Vec<EchoCeiling>,
    pub fdatasync: Option<FsyncCeiling>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignResult {
    pub tool: &'static str,
    pub command: String,
    pub started_unix_ms: u128,
    pub finished_unix_ms: u128,
    pub machine: MachineInfo,
    pub spec: CampaignSpec,
    pub cells: Vec<Cell>,
    pub ceilings: CeilingResults,
    pub summaries: Vec<CellSummary>,
    pub ratios: Vec<Ratio>,
    pub plots: Vec<String>,
    pub runs: Vec<RunResult>,
}

/// One summary per (cell, system) that was scheduled, in cell order then system order.
pub fn summarise(cells: &[Cell], runs: &[RunResult]) -> Vec<CellSummary> {
    let mut out = Vec::new();
    for cell in cells {
        for &system in &cell.systems {
            let mine: Vec<&RunResult> = runs
                .iter()
                .filter(|r| r.cell == cell.id && r.system == system)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let ok: Vec<&RunResult> = mine
                .iter()
                .copied()
                .filter(|r| r.failure.is_none())
                .collect();
            let spread =
                |f: &dyn Fn(&RunResult) -> Option<f64>| Spread::of(ok.iter().filter_map(|r| f(r)));
            out.push(CellSummary {
                cell: cell.id,
                label: cell.label(),
                system,
                runs_ok: ok.len(),
                runs_failed: mine.len() - ok.len(),
                failure: mine.iter().find_map(|r| r.failure.clone()),
                ops_per_s: spread(&|r| Some(r.ops_per_s)),
                reads_per_s: spread(&|r| Some(r.reads_per_s)),
                writes_per_s: spread(&|r| Some(r.writes_per_s)),
                p50_us: spread(&|r| Some(r.p50_us as f64)),
                p99_us: spread(&|r| Some(r.p99_us as f64)),
                p999_us: spread(&|r| Some(r.p999_us as f64)),
                ops_per_server_cpu_s: spread(&|r| r.ops_per_server_cpu_s),
                server_cpu_us_per_op: spread(&|r| r.ops_per_server_cpu_s.map(|o| 1e6 / o)),
                fell_behind: ok.iter().any(|r| r.fell_behind),
            });
        }
    }
    out
}

/// zoocore / Apache per cell where both were scheduled.
pub fn ratios(summaries: &[CellSummary]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for z in summaries.iter().filter(|s| s.system == System::Zoocore) {
        let Some(a) = summaries
            .iter()
            .find(|s| s.cell == z.cell && s.system == System::Apache)
        else {
            continue;
        };
        let div = |x: Option<Spread>, y: Option<Spread>| match (x, y) {
            (Some(x), Some(y)) if y.mean > 0.0 => Some(x.mean / y.mean),
            _ => None,
        };
        out.push(Ratio {
            cell: z.cell,
            label: z.label.clone(),
            ops_per_s: div(z.ops_per_s, a.ops_per_s),
            ops_per_server_cpu_s: div(z.ops_per_server_cpu_s, a.ops_per_server_cpu_s),
            p99: div(z.p99_us, a.p99_us),
        });
    }
    out
}

fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn spread_ops(s: &Option<Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} ±{:.0}%", thousands(s.mean), s.range_pct() / 2.0),
        Some(s) => thousands(s.mean),
        None => "—".into(),
    }
}

fn ms(s: &Option<Spread>) -> String {
    s.map_or("—".into(), |s| format!("{:.2}", s.mean / 1000.0))
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}x"))
}

/// The tables for docs: per (cell, system), ratios per cell, ceilings.
pub fn markdown(res: &CampaignResult) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| cell | system | runs | ops/s (mean ±half range) | p50 ms | p99 ms | server CPU µs/op | ops per server CPU-s |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for s in &res.summaries {
        if s.runs_ok == 0 {
            let why = s.failure.clone().unwrap_or_default();
            let why: String = why.chars().take(90).collect();
            let _ = writeln!(
                md,
                "| {} | {} | 0/{} | failed: {} | | | | |",
                s.label,
                s.system.name(),
                s.runs_failed,
                why.replace('|', "/")
            );
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {}/{} | {}{} | {} | {} | {} | {} |",
            s.label,
            s.system.name(),
            s.runs_ok,
            s.runs_ok + s.runs_failed,
            spread_ops(&s.ops_per_s),
            if s.fell_behind { " (fell behind)" } else { "" },
            ms(&s.p50_us),
            ms(&s.p99_us),
            s.server_cpu_us_per_op
                .map_or("—".into(), |c| format!("{:.2}", c.mean)),
            spread_ops(&s.ops_per_server_cpu_s),
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| cell | zoocore / Apache ops/s | per server CPU-s | p99 (lower is better) |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
    for r in &res.ratios {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            r.label,
            ratio(r.ops_per_s),
            ratio(r.ops_per_server_cpu_s),
            ratio(r.p99)
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "| ceiling | ops/s | p99 ms | server CPU µs/op |");
    let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
    for e in &res.ceilings.echo {
        let per_op = e
            .server_cpu_s
            .filter(|_| e.report.ops > 0)
            .map_or("—".into(), |c| {
                format!("{:.2}", c * 1e6 / e.report.ops as f64)
            });
        let _ = writeln!(
            md,
            "| echo r{} | {} | {:.2} | {} |",
            e.read_pct,
            thousands(e.ops_per_s),
            e.p99_us as f64 / 1000.0,
            per_op
        );
    }
    if let Some(f) = &res.ceilings.fdatasync {
        let _ = writeln!(
            md,
            "| 4 KiB write + fdatasync ({}) | {} | max {:.2} | — |",
            res.machine.data_fs,
            thousands(f.syncs_per_s),
            f.max_us as f64 / 1000.0
        );
    }
    for p in &res.ceilings.problems {
        let _ = writeln!(md, "\nceiling problem: {p}");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cell: usize, system: System, ops: f64, cpu: Option<f64>) -> RunResult {
        RunResult {
            seq: 0,
            cell,
            label: String::new(),
            system,
            repeat: 0,
            remote: false,
            failure: None,
            stop_problem: None,
            members: Vec::new(),
            pids_started: Vec::new(),
            wall_s: 0.0,
            ops_per_s: ops,
            reads_per_s: ops,
            writes_per_s: 0.0,
            errors_total: 0,
            p50_us: 100,
            p99_us: 1000,
            p999_us: 2000,
            server_cpu_s: cpu,
            ops_per_server_cpu_s: cpu.map(|c| ops / c),
            fell_behind: false,
            report: None,
        }
    }

    #[test]
    fn spreads_and_ratios_use_only_measured_runs() {
        let spec = CampaignSpec::parse("name='t'\n[[group]]\n").expect("spec");
        let cells = spec.cells();
        let mut failed = run(0, System::Apache, 0.0, None);
        failed.failure = Some("no leader".into());
        let runs = vec![
            run(0, System::Zoocore, 300.0, Some(1.0)),
            run(0, System::Zoocore, 100.0, Some(1.0)),
            run(0, System::Apache, 50.0, Some(1.0)),
            failed,
        ];
        let sums = summarise(&cells, &runs);
        assert_eq!(sums.len(), 2);
        let z = sums[0].ops_per_s.expect("zoocore ops");
        assert_eq!((z.n, z.mean, z.min, z.max), (2, 200.0, 100.0, 300.0));
        assert_eq!(z.range_pct(), 100.0);
        assert_eq!((sums[1].runs_ok, sums[1].runs_failed), (1, 1));
        let r = ratios(&sums);
        assert_eq!(r[0].ops_per_s, Some(4.0));
        assert_eq!(r[0].p99, Some(1.0));
        assert_eq!(thousands(1234567.4), "1,234,567");
    }
}
