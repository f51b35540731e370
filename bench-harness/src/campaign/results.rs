//! What a campaign produced: every run (failed ones with their reason), the summary of each
//! (cell, system) over its repeats with the spread, the zoocore / Apache ratio per cell, and
//! the ceilings. Serialised whole to `campaign.json`; [`markdown`] renders the tables that
//! docs/BENCHMARKS.md shows. Aggregation is pure (runs in, summaries out), so it is tested
//! without servers.

use std::fmt::Write as _;

use serde::Serialize;

use super::ensemble::MemberInfo;
use super::machine::{FsyncCeiling, GroupCommitCeiling, MachineInfo};
use super::spec::{CampaignSpec, Cell, Role, System};
use super::warmup::WarmupRecord;
use crate::Report;

/// A cell whose runs' throughput (or throughput per server CPU-second) spreads more than
/// this, (max - min) / mean, is flagged: its mean is not a number to quote alone.
pub const SPREAD_FLAG_PCT: f64 = 10.0;

/// Where a run's members were, when they were in the emulated network.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkRecord {
    pub block: String,
    pub prefix: String,
    pub rtt_ms: f64,
    pub member_cpu: Option<f64>,
    /// "none", "netem" or "userspace" (the campaign's own switch: see campaign::wire).
    pub delay: &'static str,
}

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
    pub warmup: Option<WarmupRecord>,
    pub network: Option<NetworkRecord>,
    pub p90_us: u64,
    pub max_us: u64,
    /// The leader's (or standalone server's) CPU per write in the window, µs.
    pub leader_cpu_us_per_write: Option<f64>,
    /// Set when this run drove an ensemble kept up from an earlier run (its `seq`).
    pub ensemble_from_run: Option<usize>,
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
        self.p90_us = r.latency.p90_us;
        self.max_us = r.latency.max_us;
        let leader = self
            .members
            .iter()
            .find(|m| matches!(m.role, Some(Role::Leader | Role::Standalone)))
            .and_then(|m| m.pid);
        self.leader_cpu_us_per_write = leader
            .and_then(|pid| r.servers_cpu.iter().find(|c| c.pid == pid))
            .and_then(|c| c.cpu_s)
            .filter(|_| r.writes > 0)
            .map(|c| c * 1e6 / r.writes as f64);
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
    pub p90_us: Option<Spread>,
    pub max_us: Option<Spread>,
    pub leader_cpu_us_per_write: Option<Spread>,
    pub fell_behind: bool,
    /// (max - min) / mean of ops/s over the runs, percent (None with fewer than two).
    pub spread_pct: Option<f64>,
    /// The same for ops per server CPU-second.
    pub cpu_spread_pct: Option<f64>,
    /// Either spread above [`SPREAD_FLAG_PCT`].
    pub spread_flag: bool,
    /// Runs whose warm-up hit its cap before the throughput settled.
    pub warmup_capped: usize,
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
    /// Either side's runs spread more than [`SPREAD_FLAG_PCT`].
    pub spread_flag: bool,
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
    pub group_commit: Vec<GroupCommitCeiling>,
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
            let ops = spread(&|r| Some(r.ops_per_s));
            let per_cpu = spread(&|r| r.ops_per_server_cpu_s);
            let pct = |s: Option<Spread>| s.filter(|s| s.n > 1).map(|s| s.range_pct());
            let (spread_pct, cpu_spread_pct) = (pct(ops), pct(per_cpu));
            out.push(CellSummary {
                cell: cell.id,
                label: cell.label(),
                system,
                runs_ok: ok.len(),
                runs_failed: mine.len() - ok.len(),
                failure: mine.iter().find_map(|r| r.failure.clone()),
                ops_per_s: ops,
                reads_per_s: spread(&|r| Some(r.reads_per_s)),
                writes_per_s: spread(&|r| Some(r.writes_per_s)),
                p50_us: spread(&|r| Some(r.p50_us as f64)),
                p99_us: spread(&|r| Some(r.p99_us as f64)),
                p999_us: spread(&|r| Some(r.p999_us as f64)),
                ops_per_server_cpu_s: per_cpu,
                server_cpu_us_per_op: spread(&|r| r.ops_per_server_cpu_s.map(|o| 1e6 / o)),
                p90_us: spread(&|r| Some(r.p90_us as f64)),
                max_us: spread(&|r| Some(r.max_us as f64)),
                leader_cpu_us_per_write: spread(&|r| r.leader_cpu_us_per_write),
                fell_behind: ok.iter().any(|r| r.fell_behind),
                spread_pct,
                cpu_spread_pct,
                spread_flag: [spread_pct, cpu_spread_pct]
                    .into_iter()
                    .flatten()
                    .any(|p| p > SPREAD_FLAG_PCT),
                warmup_capped: ok
                    .iter()
                    .filter(|r| r.warmup.as_ref().is_some_and(|w| !w.steady))
                    .count(),
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
            spread_flag: z.spread_flag || a.spread_flag,
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
    match r {
        None => "—".into(),
        Some(r) if r < 0.1 => format!("{r:.3}x"),
        Some(r) => format!("{r:.2}x"),
    }
}

fn min_max(s: &CellSummary) -> String {
    match (s.ops_per_s, s.spread_pct) {
        (Some(o), Some(p)) => format!("{}–{} ({p:.0}%)", thousands(o.min), thousands(o.max)),
        _ => "—".into(),
    }
}

/// What a reader must know before quoting the row.
fn flags(s: &CellSummary) -> String {
    let mut f = Vec::new();
    if s.spread_flag {
        let worst = [s.spread_pct, s.cpu_spread_pct]
            .into_iter()
            .flatten()
            .fold(0.0, f64::max);
        f.push(format!("⚠ runs spread {worst:.0}% > {SPREAD_FLAG_PCT:.0}%"));
    }
    if s.warmup_capped > 0 {
        f.push(format!(
            "⚠ warm-up capped before steady in {} run(s)",
            s.warmup_capped
        ));
    }
    f.join("; ")
}

/// Per-second latency of a run: the median and the worst second's p99, and the worst max.
fn per_second(runs: &[&RunResult]) -> (Option<u64>, Option<u64>, Option<u64>) {
    let mut p99: Vec<u64> = Vec::new();
    let mut max: Vec<u64> = Vec::new();
    for r in runs {
        if let Some(rep) = &r.report {
            p99.extend(
                rep.per_second
                    .iter()
                    .filter(|s| s.ops > 0)
                    .map(|s| s.p99_us),
            );
            max.extend(
                rep.per_second
                    .iter()
                    .filter(|s| s.ops > 0)
                    .map(|s| s.max_us),
            );
        }
    }
    p99.sort_unstable();
    let median = p99.get(p99.len() / 2).copied();
    (median, p99.last().copied(), max.iter().max().copied())
}

fn ms_u(v: Option<u64>) -> String {
    v.map_or("—".into(), |v| format!("{:.2}", v as f64 / 1000.0))
}

/// Snapshots under load: each cell with snapshots on beside its twin with snapshots off
/// (same group, same everything else), per system: percentiles over the window, per-second
/// p99 (median and worst second), worst per-second max, and the p50 / p90 ratios.
fn snapshot_table(md: &mut String, res: &CampaignResult) {
    let twin = |on: &Cell| {
        res.cells.iter().find(|off| {
            off.snap_count == Some(0)
                && off.group == on.group
                && Cell {
                    id: on.id,
                    snap_count: on.snap_count,
                    ..(*off).clone()
                } == *on
        })
    };
    let pairs: Vec<(&Cell, &Cell)> = res
        .cells
        .iter()
        .filter(|c| c.snap_count.is_some_and(|n| n > 0))
        .filter_map(|on| twin(on).map(|off| (on, off)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| snapshots under load | system | snapshots | p50 ms | p90 ms | p99 ms | max ms | per-second p99 median / worst ms | worst per-second max ms | p50 × | p90 × |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let summary = |cell: usize, system: System| {
        res.summaries
            .iter()
            .find(|s| s.cell == cell && s.system == system)
    };
    let runs = |cell: usize, system: System| -> Vec<&RunResult> {
        res.runs
            .iter()
            .filter(|r| r.cell == cell && r.system == system && r.failure.is_none())
            .collect()
    };
    for (on, off) in pairs {
        for &system in &on.systems {
            let (Some(s_on), Some(s_off)) = (summary(on.id, system), summary(off.id, system))
            else {
                continue;
            };
            let x = |a: Option<Spread>, b: Option<Spread>| match (a, b) {
                (Some(a), Some(b)) if b.mean > 0.0 => format!("{:.1}", a.mean / b.mean),
                _ => "—".into(),
            };
            for (s, label, ratios) in [
                (s_off, "off".to_string(), false),
                (s_on, format!("every {}", on.snap_count.unwrap_or(0)), true),
            ] {
                let (median, worst, max) = per_second(&runs(s.cell, system));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} |",
                    on.label(),
                    system.name(),
                    label,
                    ms(&s.p50_us),
                    ms(&s.p90_us),
                    ms(&s.p99_us),
                    ms(&s.max_us),
                    ms_u(median),
                    ms_u(worst),
                    ms_u(max),
                    if ratios {
                        x(s_on.p50_us, s_off.p50_us)
                    } else {
                        String::new()
                    },
                    if ratios {
                        x(s_on.p90_us, s_off.p90_us)
                    } else {
                        String::new()
                    },
                );
            }
        }
    }
}

/// The leader's CPU per write for ensemble cells that write (the observer group's measure).
fn leader_table(md: &mut String, res: &CampaignResult) {
    let rows: Vec<&CellSummary> = res
        .summaries
        .iter()
        .filter(|s| !res.cells[s.cell].standalone() && s.leader_cpu_us_per_write.is_some())
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| ensemble cell | system | writes/s | leader CPU µs/write | writes per leader CPU-s | flags |"
    );
    let _ = writeln!(md, "| --- | --- | ---: | ---: | ---: | --- |");
    for s in rows {
        let per = s.leader_cpu_us_per_write.map(|c| c.mean);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            s.label,
            s.system.name(),
            spread_ops(&s.writes_per_s),
            per.map_or("—".into(), |c| format!("{c:.2}")),
            per.filter(|c| *c > 0.0)
                .map_or("—".into(), |c| thousands(1e6 / c)),
            flags(s),
        );
    }
}

/// The tables for docs: per (cell, system), ratios per cell, ceilings.
pub fn markdown(res: &CampaignResult) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| cell | system | runs | ops/s (mean ±half range) | ops/s min–max (spread) | p50 ms | p99 ms | server CPU µs/op | ops per server CPU-s | flags |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    );
    for s in &res.summaries {
        if s.runs_ok == 0 {
            let why = s.failure.clone().unwrap_or_default();
            let why: String = why.chars().take(90).collect();
            let _ = writeln!(
                md,
                "| {} | {} | 0/{} | failed: {} | | | | | | |",
                s.label,
                s.system.name(),
                s.runs_failed,
                why.replace('|', "/")
            );
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {}/{} | {}{} | {} | {} | {} | {} | {} | {} |",
            s.label,
            s.system.name(),
            s.runs_ok,
            s.runs_ok + s.runs_failed,
            spread_ops(&s.ops_per_s),
            if s.fell_behind { " (fell behind)" } else { "" },
            min_max(s),
            ms(&s.p50_us),
            ms(&s.p99_us),
            s.server_cpu_us_per_op
                .map_or("—".into(), |c| format!("{:.2}", c.mean)),
            spread_ops(&s.ops_per_server_cpu_s),
            flags(s),
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
            "| {}{} | {} | {} | {} |",
            r.label,
            if r.spread_flag {
                " ⚠ runs spread > 10%"
            } else {
                ""
            },
            ratio(r.ops_per_s),
            ratio(r.ops_per_server_cpu_s),
            ratio(r.p99)
        );
    }
    snapshot_table(&mut md, res);
    leader_table(&mut md, res);
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
    if !res.ceilings.group_commit.is_empty() {
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| group-commit floor (one thread, no server) | writes/s | syncs/s | p50 ms | \
             p99 ms | p99.9 ms | max ms |"
        );
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for g in &res.ceilings.group_commit {
            let _ = writeln!(
                md,
                "| {} B records at {}/s | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
                g.record_bytes,
                g.rate,
                thousands(g.writes as f64 / g.seconds),
                thousands(g.syncs as f64 / g.seconds),
                g.p50_us as f64 / 1000.0,
                g.p99_us as f64 / 1000.0,
                g.p999_us as f64 / 1000.0,
                g.max_us as f64 / 1000.0
            );
        }
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
            warmup: None,
            network: None,
            p90_us: 500,
            max_us: 5000,
            leader_cpu_us_per_write: None,
            ensemble_from_run: None,
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
        // 100..300 around 200 is a 100% spread: flagged, and so is the ratio.
        assert_eq!(sums[0].spread_pct, Some(100.0));
        assert!(sums[0].spread_flag && r[0].spread_flag);
        assert_eq!(sums[1].spread_pct, None, "one run has no spread");
        assert!(!sums[1].spread_flag);
    }

    #[test]
    fn spread_flag_is_above_ten_percent_and_shows_in_the_table() {
        let spec = CampaignSpec::parse("name='t'\n[[group]]\n").expect("spec");
        let cells = spec.cells();
        let runs = vec![
            run(0, System::Zoocore, 1000.0, Some(1.0)),
            run(0, System::Zoocore, 1090.0, Some(1.0)),
            run(0, System::Apache, 1000.0, Some(1.0)),
            run(0, System::Apache, 1200.0, Some(1.0)),
        ];
        let sums = summarise(&cells, &runs);
        assert!(!sums[0].spread_flag, "{:?}", sums[0].spread_pct);
        assert!(sums[1].spread_flag, "{:?}", sums[1].spread_pct);
        assert_eq!(min_max(&sums[1]), "1,000–1,200 (18%)");
        assert!(flags(&sums[1]).contains("spread 18% > 10%"));
        assert_eq!(flags(&sums[0]), "");
    }
}
