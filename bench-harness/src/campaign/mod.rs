//! `zoocore-bench campaign`: runs a matrix of cells (system × voters × observers × read
//! percentage × value size × connections × outstanding × rate) from a TOML file, each run on
//! freshly started servers (or on remote ensembles), with the echo and fdatasync ceilings
//! measured in the same campaign, and writes `campaign.json`, `table.md` and SVG plots.
//!
//! A run is: start the members, wait for a leader, drive them with [`crate::run_load`]
//! (which reads every member's CPU over the measured window), stop them and prove they are
//! gone. Anything that goes wrong in a run is recorded as that run's failure and the
//! campaign goes on: a campaign that stops at the first missing feature measures nothing.
//! `campaign.json` is rewritten after every run, so an interrupted campaign keeps what it
//! measured.

pub mod ensemble;
pub mod machine;
pub mod netns;
pub mod plots;
pub mod results;
pub mod spec;
pub mod warmup;
pub mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ensemble::{Ensemble, MemberInfo, CLIENT_PORT};
use netns::{LabSpec, NetLab};
use results::{CampaignResult, CeilingResults, EchoCeiling, NetworkRecord, RunResult};
use spec::{CampaignSpec, Cell, RunId, System, WarmupMode};

use crate::{run_load, LoadConfig};

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Runs `f` with this process's threads (and the threads it creates) on `cpus`, then puts
/// the old affinity back. The load generator runs in this process, so this is how it is
/// pinned apart from the servers.
fn with_affinity<T>(cpus: Option<&str>, f: impl FnOnce() -> T) -> Result<T, String> {
    let Some(cpus) = cpus else { return Ok(f()) };
    let pid = std::process::id().to_string();
    let old = Command::new("taskset")
        .args(["-c", "-p", &pid])
        .output()
        .map_err(|e| format!("taskset: {e}"))?;
    let old = String::from_utf8_lossy(&old.stdout);
    let old = old.rsplit(": ").next().unwrap_or("").trim().to_string();
    let set = |list: &str| {
        Command::new("taskset")
            .args(["-a", "-c", "-p", list, &pid])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("taskset: {e}"))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or(format!("taskset -c {list}: {s}"))
            })
    };
    set(cpus)?;
    let out = f();
    if !old.is_empty() {
        set(&old)?;
    }
    Ok(out)
}

fn load_config(
    spec: &CampaignSpec,
    cell: &Cell,
    servers: Vec<SocketAddr>,
    seq: usize,
) -> LoadConfig {
    let mut cfg = LoadConfig::new(servers);
    cfg.connections = cell.connections;
    cfg.outstanding = cell.outstanding;
    cfg.value_size = cell.value_size;
    cfg.read_pct = cell.read_pct;
    cfg.rate = cell.rate;
    cfg.keys = cell.keys.unwrap_or(spec.load.keys);
    cfg.warmup_s = spec.load.warmup_s;
    cfg.duration_s = cell.duration_s.unwrap_or(spec.load.duration_s);
    cfg.threads = spec.load.threads;
    cfg.prefix = format!("/zoocore-bench-{seq}");
    cfg
}

/// An ensemble kept up between runs (`[servers] reuse_ensembles`).
struct Pooled {
    system: System,
    key: String,
    ensemble: Ensemble,
    dir: PathBuf,
    started_seq: usize,
}

/// Cells whose ensembles are interchangeable share a key. None: never reused — namespaced
/// cells own their network for one run, and a cell with its own key count (a million
/// znodes) would pile its keys onto the next cell's tree.
pub fn reuse_key(cell: &Cell) -> Option<String> {
    if cell.rtt_ms.is_some() || cell.keys.is_some() {
        return None;
    }
    Some(format!(
        "{}v+{}o snap{:?} cpus{:?} obsmaster{}",
        cell.voters, cell.observers, cell.snap_count, cell.server_cpus, cell.observer_master
    ))
}

/// The campaign's progress, one line per event, for the terminal.
pub type Log<'a> = &'a mut dyn FnMut(&str);

pub struct Campaign {
    pub spec: CampaignSpec,
    pub out: PathBuf,
    pub command: String,
}

impl Campaign {
    /// The name prefix of every namespace and cgroup this campaign makes.
    pub fn net_prefix(&self) -> String {
        self.spec.network.prefix.clone().unwrap_or_else(|| {
            let name: String = self
                .spec
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .take(17)
                .collect();
            format!("zb-{name}")
        })
    }

    fn work_dir(&self) -> PathBuf {
        self.spec
            .servers
            .work_dir
            .clone()
            .unwrap_or_else(|| self.out.join("work"))
    }

    /// Runs everything and writes the results; the Err is only for a result file that
    /// could not be written (every measurement problem is inside the result).
    pub fn run(&self, log: Log<'_>) -> std::io::Result<CampaignResult> {
        std::fs::create_dir_all(&self.out)?;
        let work = self.work_dir();
        std::fs::create_dir_all(&work)?;
        let cells = self.spec.cells();
        let runs = spec::schedule(&cells);
        let mut res = CampaignResult {
            tool: "zoocore-bench campaign",
            command: self.command.clone(),
            started_unix_ms: now_ms(),
            finished_unix_ms: 0,
            machine: machine::machine_info(&work),
            spec: self.spec.clone(),
            cells: cells.clone(),
            ceilings: CeilingResults::default(),
            summaries: Vec::new(),
            ratios: Vec::new(),
            plots: Vec::new(),
            runs: Vec::new(),
        };
        let apache_local = runs.iter().any(|r| {
            r.system == System::Apache && self.spec.remote_for(r.system, &cells[r.cell]).is_none()
        });
        let apache_problem = if apache_local {
            ensemble::ensure_apache(&self.spec.servers).err()
        } else {
            None
        };
        log(&format!(
            "campaign {}: {} cells, {} runs; machine {} ({} cores), {} on {}",
            self.spec.name,
            cells.len(),
            runs.len(),
            res.machine.cpu_model,
            res.machine.cores,
            res.machine.data_dir,
            res.machine.data_fs
        ));
        if runs.iter().any(|r| r.system == System::Zoocore) {
            // Which build is measured: a stale `target/release/zoocore` picked up for want of
            // CARGO_TARGET_DIR once went into a table under the wrong commit.
            let bin = ensemble::zoocore_binary(&self.spec.servers);
            let age = std::fs::metadata(&bin)
                .and_then(|m| m.modified())
                .map(|t| match t.elapsed() {
                    Ok(d) => format!("built {} s ago", d.as_secs()),
                    Err(_) => "built in the future".into(),
                })
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            log(&format!("zoocore binary: {} ({age})", bin.display()));
        }
        if cells.iter().any(|c| c.rtt_ms.is_some()) {
            let (removed, problems) = netns::remove_stale(&self.net_prefix());
            for what in removed {
                log(&format!(
                    "removed a leftover of an earlier campaign: {what}"
                ));
            }
            for p in problems {
                log(&format!("could not remove a leftover: {p}"));
            }
        }
        res.ceilings = self.ceilings(&work, log);
        self.write(&res)?;
        let mut pool: Vec<Pooled> = Vec::new();
        for (i, id) in runs.iter().enumerate() {
            let cell = &cells[id.cell];
            let t = Instant::now();
            // The shape of this system's next run decides whether its ensemble stays up.
            let next_key = runs[i + 1..]
                .iter()
                .find(|n| n.system == id.system)
                .filter(|n| self.spec.remote_for(n.system, &cells[n.cell]).is_none())
                .and_then(|n| reuse_key(&cells[n.cell]));
            let mut r = match (&apache_problem, id.system) {
                (Some(p), System::Apache) => RunResult::failed(blank(id, cell), p.clone()),
                _ if self.spec.servers.reuse_ensembles
                    && self.spec.remote_for(id.system, cell).is_none() =>
                {
                    self.run_pooled(id, cell, &work, &mut pool, next_key, blank(id, cell))
                }
                _ => self.one_run(id, cell, &work),
            };
            r.wall_s = t.elapsed().as_secs_f64();
            log(&format!(
                "[{}/{}] {} {} #{}: {}",
                id.seq + 1,
                runs.len(),
                id.system.name(),
                cell.label(),
                id.repeat + 1,
                match (&r.failure, &r.report) {
                    (Some(f), _) => format!("FAILED: {f}"),
                    (None, Some(rep)) => rep.summary(),
                    (None, None) => "no report".into(),
                }
            ));
            if let Some(p) = &r.stop_problem {
                log(&format!("  STOP PROBLEM: {p}"));
            }
            if let Some(w) = r.warmup.as_ref().and_then(|w| w.warning.as_ref()) {
                log(&format!("  WARNING: warm-up {w}"));
            }
            res.runs.push(r);
            self.write(&res)?;
        }
        for p in pool.drain(..) {
            if let Err(e) = self.retire(p) {
                log(&format!("STOP PROBLEM at the end: {e}"));
            }
        }
        res.summaries = results::summarise(&cells, &res.runs);
        res.ratios = results::ratios(&res.summaries);
        res.finished_unix_ms = now_ms();
        match plots::write_all(&res, &self.out) {
            Ok(names) => res.plots = names,
            Err(e) => log(&format!("plots: {e}")),
        }
        std::fs::write(self.out.join("table.md"), results::markdown(&res))?;
        self.write(&res)?;
        Ok(res)
    }

    fn write(&self, res: &CampaignResult) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(res).map_err(std::io::Error::other)?;
        let tmp = self.out.join("campaign.json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, self.out.join("campaign.json"))
    }

    fn one_run(&self, id: &RunId, cell: &Cell, work: &Path) -> RunResult {
        let r = blank(id, cell);
        let remote = self.spec.remote_for(id.system, cell);
        let Some(rtt_ms) = cell.rtt_ms.filter(|_| remote.is_none()) else {
            return self.run_members(id, cell, work, None, r);
        };
        let lab = LabSpec {
            prefix: self.net_prefix(),
            members: (cell.voters + cell.observers) as usize,
            rtt_ms,
            member_cpu: cell.member_cpu,
            delay: self.spec.network.delay,
        };
        let mut record = NetworkRecord {
            block: netns::BLOCK.into(),
            prefix: lab.prefix.clone(),
            rtt_ms,
            member_cpu: cell.member_cpu,
            delay: "none",
        };
        let lab = match NetLab::create(lab) {
            Ok(lab) => lab,
            Err(e) => return RunResult::failed(r, format!("emulated network: {e}")),
        };
        record.delay = lab.delay_used;
        let mut r = match lab.in_loader(|| self.run_members(id, cell, work, Some(&lab), r.clone()))
        {
            Ok(r) => r,
            Err(e) => RunResult::failed(blank(id, cell), format!("emulated network: {e}")),
        };
        r.network = Some(record);
        let mut problems: Vec<String> = r.stop_problem.take().into_iter().collect();
        problems.extend(lab.remove().err());
        let left = netns::leftovers(&self.net_prefix());
        if !left.is_empty() {
            problems.push(format!("left behind: {}", left.join(", ")));
        }
        r.stop_problem = (!problems.is_empty()).then(|| problems.join("; "));
        r
    }

    /// Starts the members (in `lab`'s namespaces if given: then this runs in the loader's),
    /// warms, measures, stops.
    fn run_members(
        &self,
        id: &RunId,
        cell: &Cell,
        work: &Path,
        lab: Option<&NetLab>,
        mut r: RunResult,
    ) -> RunResult {
        let s = &self.spec.servers;
        let remote = self.spec.remote_for(id.system, cell);
        let dir = work.join(format!("{:03}-{}", id.seq, id.system.name()));
        let ensemble = match remote {
            Some(remote) => {
                r.remote = true;
                Ok(Ensemble::remote(remote))
            }
            None => {
                // Write back what earlier runs left dirty first, so that no run pays for the
                // page cache of the one before (A B B A puts each system after the other).
                let _ = std::process::Command::new("sync").status();
                Ensemble::start(s, id.system, cell, id.seq, &dir, lab)
            }
        };
        let ensemble = match ensemble {
            Ok(e) => e,
            Err(why) => return RunResult::failed(r, why),
        };
        let mut r = self.measure(id, cell, &ensemble, r);
        if let Err(p) = ensemble.stop() {
            r.stop_problem = Some(p);
        }
        if r.failure.is_none() && !s.keep_data && !r.remote {
            let _ = std::fs::remove_dir_all(&dir);
        }
        r
    }

    /// With `[servers] reuse_ensembles`: runs on the ensemble of this system kept from an
    /// earlier cell of the same shape, or starts one; keeps it for the next run of this
    /// system if that run's cell has the same shape, else stops it.
    fn run_pooled(
        &self,
        id: &RunId,
        cell: &Cell,
        work: &Path,
        pool: &mut Vec<Pooled>,
        next_key: Option<String>,
        mut r: RunResult,
    ) -> RunResult {
        let Some(key) = reuse_key(cell) else {
            return self.run_members(id, cell, work, None, r);
        };
        let mut problems = Vec::new();
        let mut kept = None;
        if let Some(i) = pool.iter().position(|p| p.system == id.system) {
            let mut p = pool.remove(i);
            if p.key == key && p.ensemble.alive() {
                kept = Some(p);
            } else {
                problems.extend(self.retire(p).err());
            }
        }
        let pooled = match kept {
            Some(p) => {
                r.ensemble_from_run = Some(p.started_seq);
                p
            }
            None => {
                let _ = std::process::Command::new("sync").status();
                let dir = work.join(format!("{:03}-{}", id.seq, id.system.name()));
                let s = &self.spec.servers;
                match Ensemble::start(s, id.system, cell, id.seq, &dir, None) {
                    Ok(ensemble) => Pooled {
                        system: id.system,
                        key: key.clone(),
                        ensemble,
                        dir,
                        started_seq: id.seq,
                    },
                    Err(why) => {
                        let mut r = RunResult::failed(r, why);
                        r.stop_problem = (!problems.is_empty()).then(|| problems.join("; "));
                        return r;
                    }
                }
            }
        };
        let mut r = self.measure(id, cell, &pooled.ensemble, r);
        if next_key.as_deref() == Some(key.as_str()) && r.failure.is_none() {
            pool.push(pooled);
        } else {
            problems.extend(self.retire(pooled).err());
        }
        r.stop_problem = (!problems.is_empty()).then(|| problems.join("; "));
        r
    }

    /// Stops a pooled ensemble and removes its data (unless kept).
    fn retire(&self, p: Pooled) -> Result<(), String> {
        let stopped = p.ensemble.stop();
        if stopped.is_ok() && !self.spec.servers.keep_data {
            let _ = std::fs::remove_dir_all(&p.dir);
        }
        stopped
    }

    /// Warms (if asked) and measures one cell on running members.
    fn measure(&self, id: &RunId, cell: &Cell, ensemble: &Ensemble, mut r: RunResult) -> RunResult {
        r.members = ensemble.members.clone();
        if !r.remote {
            r.pids_started = ensemble.pids();
        }
        let servers: Vec<SocketAddr> = ensemble
            .members
            .iter()
            .filter(|m| m.role.is_some_and(|role| role.targeted_by(cell.target)))
            .map(|m| m.client)
            .collect();
        let outcome = if servers.is_empty() {
            Err(format!(
                "no member has a role that {:?} targets",
                cell.target
            ))
        } else {
            let mut cfg = load_config(&self.spec, cell, servers, id.seq);
            cfg.server_pid = ensemble.pids();
            let warm = &self.spec.warmup;
            with_affinity(cell.load_cpus.as_deref(), || {
                if warm.mode == WarmupMode::Steady {
                    let w = warmup::warm_until_steady(&cfg, warm)
                        .map_err(|e| format!("warm-up: {e}"))?;
                    r.warmup = Some(w);
                    cfg.skip_setup = true;
                    cfg.warmup_s = warmup::RAMP_S;
                }
                run_load(&cfg).map_err(|e| format!("load: {e}"))
            })
            .and_then(|o| o)
        };
        match outcome {
            Ok(report) => {
                r.fill(report);
                r
            }
            Err(why) => RunResult::failed(r, why),
        }
    }

    fn ceilings(&self, work: &Path, log: Log<'_>) -> CeilingResults {
        let c = &self.spec.ceilings;
        let mut out = CeilingResults::default();
        if c.fdatasync_s > 0.0 {
            match machine::fdatasync_rate(&work.join("fdatasync"), c.fdatasync_s) {
                Ok(f) => {
                    log(&format!(
                        "fdatasync ceiling: {:.0} syncs/s (mean {:.0} us, max {} us)",
                        f.syncs_per_s, f.mean_us, f.max_us
                    ));
                    out.fdatasync = Some(f);
                }
                Err(e) => out.problems.push(format!("fdatasync: {e}")),
            }
        }
        let record_bytes = self.spec.load.value_size + 100;
        for &rate in &c.group_commit_rates {
            let dir = work.join("group-commit");
            match machine::group_commit_floor(&dir, rate, record_bytes, c.group_commit_s) {
                Ok(g) => {
                    log(&format!(
                        "group-commit floor at {rate}/s: p50 {} us, p99 {} us, max {} us \
                         ({} syncs)",
                        g.p50_us, g.p99_us, g.max_us, g.syncs
                    ));
                    out.group_commit.push(g);
                }
                Err(e) => out.problems.push(format!("group commit at {rate}/s: {e}")),
            }
        }
        if c.echo_read_pct.is_empty() {
            return out;
        }
        if let Err(e) = self.echo_ceiling(&mut out, log) {
            log(&format!("echo ceiling: {e}"));
            out.problems.push(format!("echo: {e}"));
        }
        out
    }

    fn echo_ceiling(&self, out: &mut CeilingResults, log: Log<'_>) -> Result<(), String> {
        let c = &self.spec.ceilings;
        let bin = match &self.spec.servers.bench_binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        };
        let addr = SocketAddr::from((
            Ipv4Addr::new(127, self.spec.servers.loopback_octet, 251, 1),
            CLIENT_PORT,
        ));
        let mut cmd = match &c.server_cpus {
            Some(cpus) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", cpus]).arg(&bin);
                cmd
            }
            None => Command::new(&bin),
        };
        cmd.args(["echo", "--listen", &addr.to_string()])
            .args(["--value-size", &self.spec.load.value_size.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        ensemble::dies_with_campaign(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        // Owned by an Ensemble so that it is killed, reaped and checked like a server.
        let echo = Ensemble::adopt(
            child,
            MemberInfo {
                id: 1,
                client: addr,
                observer: false,
                role: None,
                pid: None,
            },
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err(format!("echo server on {addr} not listening"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let cell = Cell {
            id: usize::MAX,
            group: "echo".into(),
            systems: Vec::new(),
            repeats: 1,
            voters: 1,
            observers: 0,
            read_pct: 100,
            value_size: self.spec.load.value_size,
            connections: self.spec.load.connections,
            outstanding: self.spec.load.outstanding,
            rate: None,
            target: spec::Target::All,
            server_cpus: c.server_cpus.clone(),
            load_cpus: c.load_cpus.clone(),
            rtt_ms: None,
            member_cpu: None,
            snap_count: None,
            keys: None,
            duration_s: None,
            observer_master: false,
        };
        for &read_pct in &c.echo_read_pct {
            let mut cfg = load_config(
                &self.spec,
                &Cell {
                    read_pct,
                    ..cell.clone()
                },
                vec![addr],
                9999,
            );
            cfg.server_pid = echo.pids();
            let report = with_affinity(c.load_cpus.as_deref(), || run_load(&cfg))?
                .map_err(|e| format!("load: {e}"))?;
            log(&format!("echo ceiling r{read_pct}: {}", report.summary()));
            out.echo.push(EchoCeiling {
                read_pct,
                ops_per_s: report.ops_per_s,
                p99_us: report.latency.p99_us,
                server_cpu_s: report.servers_cpu.first().and_then(|s| s.cpu_s),
                report,
            });
        }
        echo.stop()
    }
}

/// A run with nothing measured yet.
pub(crate) fn blank(id: &RunId, cell: &Cell) -> RunResult {
    RunResult {
        seq: id.seq,
        cell: id.cell,
        label: cell.label(),
        system: id.system,
        repeat: id.repeat,
        remote: false,
        failure: None,
        stop_problem: None,
        members: Vec::new(),
        pids_started: Vec::new(),
        wall_s: 0.0,
        ops_per_s: 0.0,
        reads_per_s: 0.0,
        writes_per_s: 0.0,
        errors_total: 0,
        p50_us: 0,
        p99_us: 0,
        p999_us: 0,
        server_cpu_s: None,
        ops_per_server_cpu_s: None,
        fell_behind: false,
        warmup: None,
        network: None,
        p90_us: 0,
        max_us: 0,
        leader_cpu_us_per_write: None,
        ensemble_from_run: None,
        report: None,
    }
}
