//! SVG plots of a campaign, drawn with `plotters` (SVG backend only: no system fonts, no
//! image libraries). Each plot takes the per-(cell, system) summaries, picks the cells that
//! belong to it, and draws means with min–max whiskers over the repeats:
//!
//! - `throughput-vs-reads.svg`: ops/s against read percentage, one line per system and
//!   ensemble size (the shape of Figure 5 of the ZooKeeper paper);
//! - `throughput-vs-ensemble.svg`: ops/s against voters, one line per system and read mix;
//! - `observers.svg`: reads/s and, beside it, writes/s against observers;
//! - `latency-vs-load.svg`: p50 / p99 / p99.9 (log scale) against the offered open-loop
//!   rate, one panel per read mix;
//! - `snapshot-latency.svg`: per-second p99 of the snapshot cells, snapshots on and off;
//! - `ratio.svg`: zoocore / Apache per cell, for throughput and per server CPU-second.
//!
//! A point whose runs spread more than 10% (`results::SPREAD_FLAG_PCT`) gets a black ring
//! and the legend says so; in `ratio.svg` such a cell's label ends in "[spread > 10%]".
//!
//! "Plain" cells (closed loop, default connections and value size, unpinned, all members
//! targeted, on loopback, default snapCount and keys, no observer masters) feed the first
//! three (the observer plot also takes cells that write through the voters only), so a
//! sweep or a pinned group does not bend their lines. `leader-cpu-vs-observers.svg` draws
//! the leader's CPU per write against observers, with and without observer masters.
//! A plot with no data is not written; [`write_all`] returns the names it wrote.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::results::{CampaignResult, CellSummary, Spread, SPREAD_FLAG_PCT};
use super::spec::{Cell, System, Target};

type Series = BTreeMap<String, (System, Vec<(f64, Spread)>)>;

const SIZE: (u32, u32) = (900, 560);

fn plain(res: &CampaignResult, cell: &Cell) -> bool {
    cell.target == Target::All && plain_any_target(res, cell)
}

fn plain_any_target(res: &CampaignResult, cell: &Cell) -> bool {
    let l = &res.spec.load;
    cell.rate.is_none()
        && cell.rtt_ms.is_none()
        && cell.snap_count.is_none()
        && cell.keys.is_none()
        && !cell.observer_master
        && cell.server_cpus.is_none()
        && cell.load_cpus.is_none()
        && cell.connections == l.connections
        && cell.outstanding == l.outstanding
        && cell.value_size == l.value_size
}

fn color(system: System, index: usize) -> RGBColor {
    const ZOOCORE: [RGBColor; 4] = [
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(23, 190, 207),
        RGBColor(148, 103, 189),
    ];
    const APACHE: [RGBColor; 4] = [
        RGBColor(214, 39, 40),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
    ];
    match system {
        System::Zoocore => ZOOCORE[index % 4],
        System::Apache => APACHE[index % 4],
    }
}

/// Collects (x, spread) points by series name from the summaries of the cells `pick` keeps.
fn collect(
    res: &CampaignResult,
    pick: impl Fn(&Cell, &CellSummary) -> Option<(String, f64, Option<Spread>)>,
) -> Series {
    let mut series: Series = BTreeMap::new();
    for s in &res.summaries {
        let cell = &res.cells[s.cell];
        if let Some((name, x, Some(y))) = pick(cell, s) {
            let entry = series.entry(name).or_insert((s.system, Vec::new()));
            entry.1.push((x, y));
        }
    }
    for (_, points) in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn flagged(s: &Spread) -> bool {
    s.n > 1 && s.range_pct() > SPREAD_FLAG_PCT
}

/// Rings the flagged points of every series (at `y(spread)`) and adds the legend entry.
fn ring_flagged<DB: DrawingBackend, CT>(
    chart: &mut ChartContext<'_, DB, CT>,
    series: &Series,
    y: impl Fn(&Spread) -> f64,
) -> Result<(), String>
where
    CT: CoordTranslate<From = (f64, f64)>,
{
    let rings: Vec<(f64, f64)> = series
        .values()
        .flat_map(|(_, p)| p.iter())
        .filter(|(_, s)| flagged(s))
        .map(|(x, s)| (*x, y(s)))
        .collect();
    if rings.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(
            rings
                .into_iter()
                .map(|p| Circle::new(p, 7, BLACK.stroke_width(2))),
        )
        .map_err(err)?
        .label("ringed: runs spread > 10%")
        .legend(|(x, y)| Circle::new((x + 10, y), 6, BLACK.stroke_width(2)));
    Ok(())
}

fn fmt_si(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e3 && (v / 1e3).fract().abs() > 1e-9 && v.abs() < 1e5 {
        format!("{:.1}k", v / 1e3)
    } else if v.abs() >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Latency (ms, log scale) against offered rate for one read mix: per system, p50 / p99 /
/// p99.9 in three shades of the system's colour.
fn latency_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    series: &Series,
) -> Result<(), String> {
    let points = || series.values().flat_map(|(_, p)| p.iter());
    let (x0, x1) = points().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let pad = (x1 - x0) * 0.05 + 1.0;
    let (y0, y1) = points().fold((f64::INFINITY, 0.0f64), |(a, b), (_, s)| {
        (a.min(s.min / 1e3), b.max(s.max / 1e3))
    });
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (x0 - pad)..(x1 + pad),
            ((y0 * 0.7).max(0.01)..(y1 * 1.5).max(0.1)).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("latency, ms (log)")
        .x_label_formatter(&|v| fmt_si(*v))
        .y_label_formatter(&|v| fmt_si(*v))
        .draw()
        .map_err(err)?;
    let mut per_system: BTreeMap<System, usize> = BTreeMap::new();
    for (name, (system, points)) in series {
        let index = per_system.entry(*system).or_insert(0);
        let c = color(*system, *index);
        *index += 1;
        let style = ShapeStyle::from(&c).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(x, s)| (*x, s.mean / 1e3)),
                style,
            ))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(x, s)| Circle::new((*x, s.mean / 1e3), 3, c.filled())),
            )
            .map_err(err)?;
    }
    ring_flagged(&mut chart, series, |s| s.mean / 1e3)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Draws `series` as lines with points and min–max whiskers into `area`.
fn line_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &Series,
    scale: f64,
) -> Result<(), String> {
    let xs = series.values().flat_map(|(_, p)| p.iter().map(|(x, _)| *x));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let pad = ((x1 - x0) * 0.05).max(0.5);
    let y1 = series
        .values()
        .flat_map(|(_, p)| p.iter().map(|(_, s)| s.max * scale))
        .fold(0.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..y1.max(1e-9))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| fmt_si(*v))
        .y_label_formatter(&|v| fmt_si(*v))
        .draw()
        .map_err(err)?;
    let mut per_system: BTreeMap<System, usize> = BTreeMap::new();
    for (name, (system, points)) in series {
        let index = per_system.entry(*system).or_insert(0);
        let c = color(*system, *index);
        *index += 1;
        let style = ShapeStyle::from(&c).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(x, s)| (*x, s.mean * scale)),
                style,
            ))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(x, s)| Circle::new((*x, s.mean * scale), 3, c.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(
                points.iter().filter(|(_, s)| s.n > 1).map(|(x, s)| {
                    PathElement::new(vec![(*x, s.min * scale), (*x, s.max * scale)], c)
                }),
            )
            .map_err(err)?;
    }
    ring_flagged(&mut chart, series, |s| s.mean * scale)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn write_line(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &Series,
    scale: f64,
) -> Result<(), String> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    line_chart(&root, title, x_desc, y_desc, series, scale)?;
    root.present().map_err(err)
}

fn shape(cell: &Cell) -> String {
    if cell.standalone() {
        "standalone".into()
    } else {
        format!("{} voters", cell.voters)
    }
}

fn ratio_chart(path: &Path, res: &CampaignResult) -> Result<(), String> {
    let rows: Vec<_> = res
        .ratios
        .iter()
        .filter(|r| r.ops_per_s.is_some() || r.ops_per_server_cpu_s.is_some())
        .collect();
    let n = rows.len();
    let xmax = rows
        .iter()
        .flat_map(|r| [r.ops_per_s, r.ops_per_server_cpu_s])
        .flatten()
        .fold(1.0, f64::max)
        * 1.1;
    let height = (120 + 34 * n as u32).max(300);
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels: Vec<String> = rows
        .iter()
        .map(|r| {
            if r.spread_flag {
                format!("{} [spread > 10%]", r.label)
            } else {
                r.label.clone()
            }
        })
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "zoocore / Apache ZooKeeper per cell (1.0 = parity)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(300)
        .build_cartesian_2d(0.0..xmax, 0.0..n as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            let i = (*y - 0.5).round();
            if (*y - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[n - 1 - i as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc("ratio")
        .draw()
        .map_err(err)?;
    let blue = color(System::Zoocore, 0);
    let green = color(System::Zoocore, 1);
    for (k, r) in rows.iter().enumerate() {
        let y = (n - 1 - k) as f64;
        if let Some(v) = r.ops_per_s {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.52), (v, y + 0.88)],
                    blue.filled(),
                )))
                .map_err(err)?;
        }
        if let Some(v) = r.ops_per_server_cpu_s {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y + 0.12), (v, y + 0.48)],
                    green.filled(),
                )))
                .map_err(err)?;
        }
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, 0.0), (1.0, n as f64)],
            BLACK.stroke_width(1),
        )))
        .map_err(err)?;
    for (name, c) in [("ops/s", blue), ("ops per server CPU-s", green)] {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Per-second p99 of the snapshot cells (those with a `snap_count`), first measured run of
/// each (cell, system): a snapshot's stall shows as its own seconds, which a percentile
/// over the whole window would average away.
fn snapshot_series(res: &CampaignResult) -> Series {
    let mut series: Series = BTreeMap::new();
    for cell in res.cells.iter().filter(|c| c.snap_count.is_some()) {
        for &system in &cell.systems {
            let Some(report) = res
                .runs
                .iter()
                .find(|r| r.cell == cell.id && r.system == system && r.failure.is_none())
                .and_then(|r| r.report.as_ref())
            else {
                continue;
            };
            let snaps = match cell.snap_count {
                Some(0) => "snapshots off".to_string(),
                Some(n) => format!("snapCount {n}"),
                None => continue,
            };
            let points = report
                .per_second
                .iter()
                .filter(|s| s.ops > 0)
                .filter_map(|s| Spread::of([s.p99_us.max(1) as f64]).map(|v| (s.second as f64, v)))
                .collect();
            series.insert(format!("{} {snaps} p99", system.name()), (system, points));
        }
    }
    series.retain(|_, (_, p)| p.len() > 1);
    series
}

/// Writes every plot that has data into `out`; returns the file names written.
pub fn write_all(res: &CampaignResult, out: &Path) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    let fig5 = collect(res, |cell, s| {
        (plain(res, cell) && cell.observers == 0).then(|| {
            (
                format!("{} {}", s.system.name(), shape(cell)),
                cell.read_pct as f64,
                s.ops_per_s,
            )
        })
    });
    if fig5.values().any(|(_, p)| p.len() > 1) {
        write_line(
            &out.join("throughput-vs-reads.svg"),
            "Throughput vs read percentage (closed loop)",
            "read percentage",
            "operations per second",
            &fig5,
            1.0,
        )?;
        written.push("throughput-vs-reads.svg".into());
    }
    // Lines only: a mix measured at one ensemble size is not a curve against size.
    let lines = |mut s: Series| {
        s.retain(|_, (_, p)| p.len() > 1);
        s
    };
    let ens = lines(collect(res, |cell, s| {
        (plain(res, cell) && cell.observers == 0).then(|| {
            (
                format!("{} r{}", s.system.name(), cell.read_pct),
                cell.voters as f64,
                s.ops_per_s,
            )
        })
    }));
    if !ens.is_empty() {
        write_line(
            &out.join("throughput-vs-ensemble.svg"),
            "Throughput vs voters (closed loop)",
            "voters",
            "operations per second",
            &ens,
            1.0,
        )?;
        written.push("throughput-vs-ensemble.svg".into());
    }
    let obs = |reads: bool| {
        collect(res, move |cell, s| {
            let target_ok = matches!(cell.target, Target::All | Target::Voters);
            (target_ok && plain_any_target(res, cell) && !cell.standalone()).then(|| {
                let to = if cell.target == Target::Voters {
                    " to voters"
                } else {
                    ""
                };
                let name = format!(
                    "{} {}v r{}{to}",
                    s.system.name(),
                    cell.voters,
                    cell.read_pct
                );
                let y = if reads { s.reads_per_s } else { s.writes_per_s };
                (name, cell.observers as f64, y)
            })
        })
    };
    let (obs_reads, obs_writes) = (lines(obs(true)), lines(obs(false)));
    if obs_reads.values().any(|(_, p)| p.len() > 1) {
        let path = out.join("observers.svg");
        let root = SVGBackend::new(&path, (1400, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (left, right) = root.split_horizontally(700);
        line_chart(
            &left,
            "Reads/s vs observers",
            "observers",
            "reads per second",
            &obs_reads,
            1.0,
        )?;
        line_chart(
            &right,
            "Writes/s vs observers",
            "observers",
            "writes per second",
            &obs_writes,
            1.0,
        )?;
        root.present().map_err(err)?;
        written.push("observers.svg".into());
    }
    let leader = lines(collect(res, |cell, s| {
        let base = Cell {
            observer_master: false,
            ..cell.clone()
        };
        (!cell.standalone() && plain_any_target(res, &base)).then(|| {
            let om = if cell.observer_master {
                " obs. masters"
            } else {
                ""
            };
            (
                format!(
                    "{} {}v r{}{om}",
                    s.system.name(),
                    cell.voters,
                    cell.read_pct
                ),
                cell.observers as f64,
                s.leader_cpu_us_per_write,
            )
        })
    }));
    if !leader.is_empty() {
        write_line(
            &out.join("leader-cpu-vs-observers.svg"),
            "Leader CPU per write vs observers",
            "observers",
            "leader CPU µs per write",
            &leader,
            1.0,
        )?;
        written.push("leader-cpu-vs-observers.svg".into());
    }
    // One panel per read mix of the open-loop cells.
    let mut mixes: Vec<u32> = res
        .cells
        .iter()
        .filter(|c| c.rate.is_some())
        .map(|c| c.read_pct)
        .collect();
    mixes.sort_unstable_by(|a, b| b.cmp(a));
    mixes.dedup();
    let panels: Vec<(u32, Series)> = mixes
        .iter()
        .map(|&mix| {
            let mut lat: Series = BTreeMap::new();
            for (q, pick) in [
                (
                    "p50",
                    (|s: &CellSummary| s.p50_us) as fn(&CellSummary) -> Option<Spread>,
                ),
                ("p99", |s: &CellSummary| s.p99_us),
                ("p99.9", |s: &CellSummary| s.p999_us),
            ] {
                lat.extend(collect(res, |cell, s| {
                    (cell.rate.is_some() && cell.read_pct == mix).then(|| {
                        (
                            format!("{} {} {q}", s.system.name(), shape(cell)),
                            cell.rate.unwrap_or_default(),
                            pick(s),
                        )
                    })
                }));
            }
            (mix, lat)
        })
        .filter(|(_, lat)| lat.values().any(|(_, p)| p.len() > 1))
        .collect();
    if !panels.is_empty() {
        let path = out.join("latency-vs-load.svg");
        let root = SVGBackend::new(&path, (700 * panels.len() as u32, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        for (area, (mix, lat)) in root.split_evenly((1, panels.len())).iter().zip(&panels) {
            let title = format!("Latency vs offered load, {mix}% reads (open loop)");
            latency_chart(area, &title, "offered operations per second", lat)?;
        }
        root.present().map_err(err)?;
        written.push("latency-vs-load.svg".into());
    }
    let snap = snapshot_series(res);
    if !snap.is_empty() {
        let path = out.join("snapshot-latency.svg");
        let root = SVGBackend::new(&path, (1100, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        latency_chart(
            &root,
            "Per-second p99 with snapshots on and off (first run of each)",
            "second of the measured window",
            &snap,
        )?;
        root.present().map_err(err)?;
        written.push("snapshot-latency.svg".into());
    }
    if res.ratios.iter().any(|r| r.ops_per_s.is_some()) {
        ratio_chart(&out.join("ratio.svg"), res)?;
        written.push("ratio.svg".into());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::super::results::{self, CampaignResult, CeilingResults, RunResult};
    use super::super::spec::{CampaignSpec, System};
    use super::super::{blank, machine};

    /// A synthetic campaign with every kind of cell renders every plot, flagged points ringed.
    #[test]
    fn every_plot_is_written_from_a_full_matrix() {
        let spec = CampaignSpec::parse(
            "name='p'\nrepeats=2\n[[group]]\nvoters=[1,3]\nread_pct=[0,50,100]\n\
             [[group]]\nvoters=[3]\nobservers=[0,1,2]\nread_pct=[90]\n\
             [[group]]\nread_pct=[0,100]\nrates=[1000,2000,4000]\n",
        )
        .expect("spec");
        let cells = spec.cells();
        let mut runs = Vec::new();
        for id in super::super::spec::schedule(&cells) {
            let c = &cells[id.cell];
            let mut r: RunResult = blank(&id, c);
            let base = if id.system == System::Zoocore {
                3.0
            } else {
                1.0
            };
            r.ops_per_s = base * 1000.0 * (1.0 + c.read_pct as f64 / 10.0) / c.voters as f64
                + id.repeat as f64 * 50.0;
            r.reads_per_s = r.ops_per_s * c.read_pct as f64 / 100.0;
            r.writes_per_s = r.ops_per_s - r.reads_per_s;
            r.p50_us = 500 + c.rate.unwrap_or(0.0) as u64 / base as u64;
            r.p99_us = 4 * r.p50_us;
            r.p999_us = 8 * r.p50_us;
            r.ops_per_server_cpu_s = Some(r.ops_per_s * base);
            if !c.standalone() {
                r.leader_cpu_us_per_write = Some(10.0 / base + c.observers as f64);
            }
            runs.push(r);
        }
        let out = std::env::temp_dir().join(format!("zb-plots-{}", std::process::id()));
        std::fs::create_dir_all(&out).expect("dir");
        let summaries = results::summarise(&cells, &runs);
        let res = CampaignResult {
            tool: "test",
            command: String::new(),
            started_unix_ms: 0,
            finished_unix_ms: 0,
            machine: machine::machine_info(&out),
            ratios: results::ratios(&summaries),
            summaries,
            spec,
            cells,
            ceilings: CeilingResults::default(),
            plots: Vec::new(),
            runs,
        };
        let written = super::write_all(&res, &out).expect("plots");
        assert_eq!(
            written,
            [
                "throughput-vs-reads.svg",
                "throughput-vs-ensemble.svg",
                "observers.svg",
                "leader-cpu-vs-observers.svg",
                "latency-vs-load.svg",
                "ratio.svg"
            ]
        );
        for name in &written {
            let svg = std::fs::read_to_string(out.join(name)).expect("svg");
            assert!(svg.starts_with("<svg") && svg.contains("zoocore"), "{name}");
        }
        // Apache's 3-voter points move by 50 ops/s between repeats on ~350: over 10%.
        let ens = std::fs::read_to_string(out.join("throughput-vs-ensemble.svg")).expect("svg");
        assert!(ens.contains("runs spread &gt; 10%") || ens.contains("runs spread > 10%"));
        let reads = std::fs::read_to_string(out.join("throughput-vs-reads.svg")).expect("svg");
        assert!(reads.contains("ringed"), "standalone Apache r0 spreads too");
        if std::env::var_os("ZB_KEEP_PLOTS").is_none() {
            let _ = std::fs::remove_dir_all(&out);
        }
    }
}
