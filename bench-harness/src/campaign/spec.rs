//! The campaign file (TOML) and what it expands to. A campaign is a list of groups; each
//! group is a cross product of voters × observers × read percentage × value size ×
//! connections × outstanding × open-loop rate, run for every system. Expansion gives the
//! cells (everything but the system); [`schedule`] orders the runs so that the systems
//! alternate A B B A across consecutive cells and repeats, which makes slow drift on a
//! shared machine (other tenants, thermal, page cache) fall on both systems alike.
//!
//! Every field has a default, so a group of one line is a valid campaign; unknown keys are
//! errors (a typo must not silently fall back to a default).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A server implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Zoocore,
    Apache,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Zoocore => "zoocore",
            System::Apache => "apache",
        }
    }
}

/// Which members the load's connections go to (connection i to member i mod n of the set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every member, leader included.
    #[default]
    All,
    Leader,
    /// Voters other than the leader.
    Followers,
    Observers,
    /// Followers and observers (not the leader).
    Learners,
    /// The leader and the followers (no observer): writes "through the voters".
    Voters,
}

/// A role as `srvr` prints it (`Mode:`), or as a remote member is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Standalone,
    Leader,
    Follower,
    Observer,
}

impl Role {
    pub fn parse(mode: &str) -> Option<Role> {
        match mode.trim() {
            "standalone" => Some(Role::Standalone),
            "leader" => Some(Role::Leader),
            "follower" => Some(Role::Follower),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }

    pub fn targeted_by(self, target: Target) -> bool {
        match target {
            Target::All => true,
            Target::Leader => matches!(self, Role::Leader | Role::Standalone),
            Target::Followers => self == Role::Follower,
            Target::Observers => self == Role::Observer,
            Target::Learners => matches!(self, Role::Follower | Role::Observer),
            Target::Voters => matches!(self, Role::Leader | Role::Follower | Role::Standalone),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    pub name: String,
    #[serde(default = "default_systems")]
    pub systems: Vec<System>,
    #[serde(default = "default_one")]
    pub repeats: u32,
    #[serde(default)]
    pub servers: ServerSettings,
    #[serde(default)]
    pub load: LoadSettings,
    #[serde(default)]
    pub ceilings: Ceilings,
    #[serde(default)]
    pub warmup: WarmupSettings,
    #[serde(default)]
    pub network: NetworkSettings,
    #[serde(default, rename = "group")]
    pub groups: Vec<Group>,
    /// Ensembles already running (remote mode): a cell whose system, voters and observers
    /// match one of these drives it instead of starting servers.
    #[serde(default, rename = "remote")]
    pub remotes: Vec<RemoteEnsemble>,
}

/// How local servers are configured and started; the same for both systems where the knob
/// exists in both (fsync, snapshot cadence, tick, limits).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// zoocore binary; default `$CARGO_TARGET_DIR/release/zoocore`, else `target/release/zoocore`.
    pub zoocore_binary: Option<PathBuf>,
    /// zoocore-bench binary for the echo ceiling; default the running executable.
    pub bench_binary: Option<PathBuf>,
    /// Apache's JVM heap, fixed (`-Xms` = `-Xmx`).
    pub apache_heap: String,
    pub apache_classpath: String,
    pub force_sync: bool,
    pub snap_count: u64,
    pub tick_time_ms: u32,
    pub global_outstanding_limit: u32,
    /// Where fresh data directories are made (one per run); default `<out>/work`. Log and
    /// data share it for both systems, so they share one file system.
    pub work_dir: Option<PathBuf>,
    /// Second octet of the loopback addresses members listen on: 127.<this>.<run>.<member>.
    pub loopback_octet: u8,
    pub leader_timeout_s: f64,
    /// Extra zoo.cfg lines, for both systems.
    pub extra_cfg: Vec<String>,
    /// Keep each run's data directory and logs (default: delete them when the run passed).
    pub keep_data: bool,
    /// Keep an ensemble up across consecutive runs of its system whose cells share its
    /// shape (voters, observers, snapCount, CPUs, observer masters), instead of fresh
    /// servers per run. Not for namespaced cells or cells with their own key count.
    pub reuse_ensembles: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            zoocore_binary: None,
            bench_binary: None,
            apache_heap: "1g".into(),
            apache_classpath: "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
                .into(),
            force_sync: true,
            snap_count: 100_000,
            tick_time_ms: 2000,
            global_outstanding_limit: 1000,
            work_dir: None,
            loopback_octet: 120,
            leader_timeout_s: 60.0,
            extra_cfg: Vec::new(),
            keep_data: false,
            reuse_ensembles: false,
        }
    }
}

/// Load knobs shared by every cell (a group may override the matrix ones).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSettings {
    pub connections: usize,
    pub outstanding: usize,
    pub value_size: usize,
    pub keys: u64,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub threads: usize,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self {
            connections: 32,
            outstanding: 16,
            value_size: 1024,
            keys: 1000,
            warmup_s: 2.0,
            duration_s: 10.0,
            threads: 1,
        }
    }
}

/// How a run is warmed before its measured window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WarmupMode {
    /// `[load] warmup_s` seconds, whatever the throughput does.
    #[default]
    Fixed,
    /// Windows of `window_s` until the last `windows` of them are each within
    /// `tolerance_pct` of their mean, or `max_s` is spent (then the run carries a warning).
    Steady,
}

/// The warm-up before each run's measured window. A fresh JVM is ~40% slower in its first
/// seconds (issue 13), so a fixed 2 s warm-up compares a cold Apache with a warm zoocore.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmupSettings {
    pub mode: WarmupMode,
    pub window_s: f64,
    pub windows: usize,
    pub tolerance_pct: f64,
    /// The cap: a run still unsteady after this many seconds is measured anyway and flagged.
    pub max_s: f64,
}

impl Default for WarmupSettings {
    fn default() -> Self {
        Self {
            mode: WarmupMode::Fixed,
            window_s: 1.0,
            windows: 3,
            tolerance_pct: 5.0,
            max_s: 60.0,
        }
    }
}

/// The emulated network (see `campaign::netns`): where a cell asks for it (`netns` or
/// `rtt_ms` in its group, or these campaign-wide defaults), every member runs in its own
/// network namespace behind a veth with a netem delay, and the load generator in one more.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// Every cell in namespaces (the `--netns` flag).
    pub netns: bool,
    /// Round trip for cells that do not name one (ms; 0: no netem delay).
    pub rtt_ms: f64,
    /// CPU quota per member in CPUs (e.g. 0.5), for cells that do not name one.
    pub member_cpu: Option<f64>,
    /// Namespace and cgroup name prefix; default `zb-<campaign name>`. Anything with this
    /// prefix is removed at the campaign's start as a leftover of an earlier one.
    pub prefix: Option<String>,
    /// What makes the round trip: auto (netem, else the userspace switch), netem, userspace.
    pub delay: super::netns::Delay,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            netns: false,
            rtt_ms: 0.0,
            member_cpu: None,
            prefix: None,
            delay: super::netns::Delay::Auto,
        }
    }
}

/// The machine's limits, measured in the same run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ceilings {
    /// Read percentages to drive the echo server with (empty: no echo ceiling).
    pub echo_read_pct: Vec<u32>,
    /// Seconds of 4 KiB write + fdatasync in the work directory (0: not measured).
    pub fdatasync_s: f64,
    /// Fixed write rates to measure the group-commit latency floor at (`machine.rs`), with
    /// records of the load's value size plus 100 bytes of txn and framing (empty: none).
    pub group_commit_rates: Vec<u32>,
    /// Seconds of each group-commit measurement.
    pub group_commit_s: f64,
    /// CPUs for the echo server (taskset list), like a group's `server_cpus`.
    pub server_cpus: Option<String>,
    pub load_cpus: Option<String>,
}

impl Default for Ceilings {
    fn default() -> Self {
        Self {
            echo_read_pct: vec![100, 0],
            fdatasync_s: 3.0,
            group_commit_rates: Vec::new(),
            group_commit_s: 10.0,
            server_cpus: None,
            load_cpus: None,
        }
    }
}

/// A cross product of cells.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Group {
    pub name: String,
    /// Overrides the campaign's systems for this group.
    pub systems: Option<Vec<System>>,
    /// Overrides the campaign's repeats for this group.
    pub repeats: Option<u32>,
    pub voters: Vec<u32>,
    pub observers: Vec<u32>,
    pub read_pct: Vec<u32>,
    pub value_size: Vec<usize>,
    pub connections: Vec<usize>,
    pub outstanding: Vec<usize>,
    /// Open-loop rates (total ops/s); empty: closed loop.
    pub rates: Vec<f64>,
    pub target: Target,
    /// taskset CPU list for every server process of the cell (e.g. "0").
    pub server_cpus: Option<String>,
    /// taskset CPU list for the load generator during the cell (e.g. "1").
    pub load_cpus: Option<String>,
    /// Members in network namespaces (with `[network] rtt_ms`), even without `rtt_ms` here.
    pub netns: bool,
    /// Emulated round trips (ms), a matrix dimension; each value puts the cell's members in
    /// namespaces with that netem delay.
    pub rtt_ms: Vec<f64>,
    /// CPU quota per member (CPUs, cgroup), implies namespaces.
    pub member_cpu: Option<f64>,
    /// snapCount values, a matrix dimension; 0 means snapshots off (a count never reached).
    pub snap_count: Vec<u64>,
    /// Overrides `[load] keys` (e.g. a million znodes for the snapshot scenario).
    pub keys: Option<u64>,
    /// Overrides `[load] duration_s`.
    pub duration_s: Option<f64>,
    /// With observer masters or not, a matrix dimension: `true` writes
    /// `observerMasterPort` (ZooKeeper 3.6+: followers feed the observers) into every
    /// member's zoo.cfg.
    pub observer_master: Vec<bool>,
}

impl Default for Group {
    fn default() -> Self {
        Self {
            name: String::new(),
            systems: None,
            repeats: None,
            voters: vec![1],
            observers: vec![0],
            read_pct: vec![100],
            value_size: Vec::new(),
            connections: Vec::new(),
            outstanding: Vec::new(),
            rates: Vec::new(),
            target: Target::All,
            server_cpus: None,
            load_cpus: None,
            netns: false,
            rtt_ms: Vec::new(),
            member_cpu: None,
            snap_count: Vec::new(),
            keys: None,
            duration_s: None,
            observer_master: Vec::new(),
        }
    }
}

/// An ensemble that is already running somewhere.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteEnsemble {
    pub system: System,
    pub members: Vec<RemoteMember>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteMember {
    pub client: SocketAddr,
    pub role: Role,
    /// A pid on this host whose CPU is read from /proc (only for members on this host).
    pub pid: Option<u32>,
}

impl RemoteEnsemble {
    pub fn voters(&self) -> u32 {
        self.members
            .iter()
            .filter(|m| m.role != Role::Observer)
            .count() as u32
    }

    pub fn observers(&self) -> u32 {
        self.members
            .iter()
            .filter(|m| m.role == Role::Observer)
            .count() as u32
    }
}

/// One point of the matrix, without the system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub id: usize,
    pub group: String,
    pub systems: Vec<System>,
    pub repeats: u32,
    pub voters: u32,
    pub observers: u32,
    pub read_pct: u32,
    pub value_size: usize,
    pub connections: usize,
    pub outstanding: usize,
    pub rate: Option<f64>,
    pub target: Target,
    pub server_cpus: Option<String>,
    pub load_cpus: Option<String>,
    /// Some: members in network namespaces with this round trip (ms); None: loopback.
    pub rtt_ms: Option<f64>,
    /// CPU quota per member (CPUs), only with namespaces.
    pub member_cpu: Option<f64>,
    /// None: `[servers] snap_count`; Some(0): snapshots off.
    pub snap_count: Option<u64>,
    pub keys: Option<u64>,
    pub duration_s: Option<f64>,
    pub observer_master: bool,
}

/// The snapCount written for "snapshots off": more transactions than any run makes, and
/// within Apache's int.
pub const SNAP_COUNT_OFF: u64 = 2_000_000_000;

impl Cell {
    pub fn standalone(&self) -> bool {
        self.voters == 1 && self.observers == 0
    }

    /// The snapCount the members get.
    pub fn snap_count(&self, servers: &ServerSettings) -> u64 {
        match self.snap_count {
            None => servers.snap_count,
            Some(0) => SNAP_COUNT_OFF,
            Some(n) => n,
        }
    }

    /// A short name for tables and plots: "standalone r100 1KiB 32x16", "3v+1o r90 ...".
    pub fn label(&self) -> String {
        let shape = if self.standalone() {
            "standalone".to_string()
        } else if self.observers == 0 {
            format!("{}v", self.voters)
        } else {
            format!("{}v+{}o", self.voters, self.observers)
        };
        let size = if self.value_size.is_multiple_of(1024) {
            format!("{}KiB", self.value_size / 1024)
        } else {
            format!("{}B", self.value_size)
        };
        let mut label = format!(
            "{shape} r{} {size} {}x{}",
            self.read_pct, self.connections, self.outstanding
        );
        if let Some(rate) = self.rate {
            label.push_str(&format!(" @{rate:.0}/s"));
        }
        if self.target != Target::All {
            label.push_str(&format!(" to {:?}", self.target).to_lowercase());
        }
        if let Some(cpus) = &self.server_cpus {
            label.push_str(&format!(" srv@{cpus}"));
        }
        if let Some(cpus) = &self.load_cpus {
            label.push_str(&format!(" load@{cpus}"));
        }
        match self.snap_count {
            Some(0) => label.push_str(" nosnap"),
            Some(n) => label.push_str(&format!(" snap{n}")),
            None => {}
        }
        if let Some(keys) = self.keys {
            label.push_str(&format!(" {keys}keys"));
        }
        if self.observer_master {
            label.push_str(" obsmaster");
        }
        match self.rtt_ms {
            Some(rtt) if rtt > 0.0 => label.push_str(&format!(" rtt{rtt}ms")),
            Some(_) => label.push_str(" netns"),
            None => {}
        }
        if let Some(cpu) = self.member_cpu {
            label.push_str(&format!(" cpu{cpu}"));
        }
        label
    }
}

/// One run: a cell, a system, a repeat; `seq` is its place in the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunId {
    pub seq: usize,
    pub cell: usize,
    pub system: System,
    pub repeat: u32,
}

fn default_systems() -> Vec<System> {
    vec![System::Zoocore, System::Apache]
}

fn default_one() -> u32 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("invalid campaign: {0}")]
    Invalid(String),
}

impl CampaignSpec {
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let spec: CampaignSpec = toml::from_str(text)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the knobs against each other (again after command-line overrides).
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if self.systems.is_empty() {
            return bad("systems: at least one".into());
        }
        if self.repeats == 0 {
            return bad("repeats: at least 1".into());
        }
        if self.groups.is_empty() {
            return bad("no [[group]]: nothing to run".into());
        }
        let w = &self.warmup;
        if w.window_s <= 0.0 || w.windows == 0 || w.tolerance_pct <= 0.0 || w.max_s <= 0.0 {
            return bad("warmup: window_s, windows, tolerance_pct, max_s positive".into());
        }
        let n = &self.network;
        if n.rtt_ms < 0.0 || !n.rtt_ms.is_finite() || n.member_cpu.is_some_and(|c| c <= 0.0) {
            return bad("network: rtt_ms >= 0, member_cpu positive".into());
        }
        if let Some(p) = &n.prefix {
            if p.is_empty()
                || p.len() > 20
                || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return bad("network.prefix: 1-20 of [A-Za-z0-9-]".into());
            }
        }
        for (i, g) in self.groups.iter().enumerate() {
            let name = if g.name.is_empty() {
                format!("#{i}")
            } else {
                g.name.clone()
            };
            if g.voters.iter().any(|&v| v == 0 || v.is_multiple_of(2)) {
                return bad(format!("group {name}: voters must be odd and positive"));
            }
            if g.voters.is_empty() || g.observers.is_empty() || g.read_pct.is_empty() {
                return bad(format!(
                    "group {name}: voters, observers, read_pct not empty"
                ));
            }
            if g.read_pct.iter().any(|&p| p > 100) {
                return bad(format!("group {name}: read_pct in 0..=100"));
            }
            if g.rates.iter().any(|&r| r <= 0.0 || !r.is_finite()) {
                return bad(format!("group {name}: rates must be positive"));
            }
            if g.repeats == Some(0) {
                return bad(format!("group {name}: repeats at least 1"));
            }
            if g.systems.as_ref().is_some_and(Vec::is_empty) {
                return bad(format!("group {name}: systems, if given, not empty"));
            }
            if g.rtt_ms.iter().any(|&r| r < 0.0 || !r.is_finite()) {
                return bad(format!("group {name}: rtt_ms must be >= 0"));
            }
            if g.member_cpu.is_some_and(|c| c <= 0.0 || !c.is_finite()) {
                return bad(format!("group {name}: member_cpu must be positive"));
            }
            if g.snap_count.contains(&1) {
                return bad(format!("group {name}: snap_count 0 (off) or at least 2"));
            }
            if g.keys == Some(0) || g.duration_s.is_some_and(|d| d <= 0.0) {
                return bad(format!("group {name}: keys and duration_s positive"));
            }
        }
        Ok(())
    }

    /// Every cell of every group, in file order (group, then the matrix's nesting order).
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for (gi, g) in self.groups.iter().enumerate() {
            let or = |v: &Vec<usize>, d: usize| if v.is_empty() { vec![d] } else { v.clone() };
            let sizes = or(&g.value_size, self.load.value_size);
            let conns = or(&g.connections, self.load.connections);
            let outs = or(&g.outstanding, self.load.outstanding);
            let rates: Vec<Option<f64>> = if g.rates.is_empty() {
                vec![None]
            } else {
                g.rates.iter().copied().map(Some).collect()
            };
            let name = if g.name.is_empty() {
                format!("group{gi}")
            } else {
                g.name.clone()
            };
            let net = &self.network;
            let cpu = g.member_cpu.or(net.member_cpu);
            let rtts: Vec<Option<f64>> = if !g.rtt_ms.is_empty() {
                g.rtt_ms.iter().copied().map(Some).collect()
            } else if g.netns || net.netns || cpu.is_some() {
                vec![Some(net.rtt_ms)]
            } else {
                vec![None]
            };
            let snaps: Vec<Option<u64>> = if g.snap_count.is_empty() {
                vec![None]
            } else {
                g.snap_count.iter().copied().map(Some).collect()
            };
            let masters: Vec<bool> = if g.observer_master.is_empty() {
                vec![false]
            } else {
                g.observer_master.clone()
            };
            for (&voters, &rtt_ms, &snap_count, &observer_master) in g
                .voters
                .iter()
                .flat_map(|v| rtts.iter().map(move |r| (v, r)))
                .flat_map(|(v, r)| snaps.iter().map(move |s| (v, r, s)))
                .flat_map(|(v, r, s)| masters.iter().map(move |m| (v, r, s, m)))
            {
                for &observers in &g.observers {
                    for &value_size in &sizes {
                        for &connections in &conns {
                            for &outstanding in &outs {
                                for &rate in &rates {
                                    for &read_pct in &g.read_pct {
                                        cells.push(Cell {
                                            id: cells.len(),
                                            group: name.clone(),
                                            systems: g
                                                .systems
                                                .clone()
                                                .unwrap_or_else(|| self.systems.clone()),
                                            repeats: g.repeats.unwrap_or(self.repeats),
                                            voters,
                                            observers,
                                            read_pct,
                                            value_size,
                                            connections,
                                            outstanding,
                                            rate,
                                            target: g.target,
                                            server_cpus: g.server_cpus.clone(),
                                            load_cpus: g.load_cpus.clone(),
                                            rtt_ms,
                                            member_cpu: rtt_ms.and(cpu),
                                            snap_count,
                                            keys: g.keys,
                                            duration_s: g.duration_s,
                                            observer_master,
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        cells
    }

    /// The remote ensemble a cell of `system` would drive, if any.
    pub fn remote_for(&self, system: System, cell: &Cell) -> Option<&RemoteEnsemble> {
        self.remotes.iter().find(|r| {
            r.system == system && r.voters() == cell.voters && r.observers() == cell.observers
        })
    }
}

/// The order of all runs: repeats outermost (so repeats are spread over the campaign's
/// time), cells in order, and within each (repeat, cell) pair the systems in forward order
/// on even pairs and reversed on odd ones: A B, B A, A B, ... — A B B A across neighbours.
/// A cell with fewer repeats than the most drops out of the later rounds.
pub fn schedule(cells: &[Cell]) -> Vec<RunId> {
    let mut runs = Vec::new();
    let mut pair = 0usize;
    let rounds = cells.iter().map(|c| c.repeats).max().unwrap_or(0);
    for repeat in 0..rounds {
        for cell in cells.iter().filter(|c| c.repeats > repeat) {
            let mut systems = cell.systems.clone();
            if pair % 2 == 1 {
                systems.reverse();
            }
            pair += 1;
            for system in systems {
                runs.push(RunId {
                    seq: runs.len(),
                    cell: cell.id,
                    system,
                    repeat,
                });
            }
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "t"
repeats = 2
[load]
duration_s = 1
[[group]]
name = "standalone"
read_pct = [0, 50, 90, 100]
[[group]]
name = "ensembles"
voters = [3, 5]
observers = [0, 2]
read_pct = [100]
connections = [8, 16]
target = "learners"
[[group]]
name = "sweep"
systems = ["apache"]
rates = [1000, 2000]
repeats = 1
server_cpus = "0"
load_cpus = "1"
"#;

    #[test]
    fn parses_and_expands_the_matrix() {
        let spec = CampaignSpec::parse(SPEC).expect("parse");
        assert_eq!(spec.systems, vec![System::Zoocore, System::Apache]);
        assert_eq!(spec.load.duration_s, 1.0);
        assert_eq!(spec.load.connections, 32, "default kept");
        let cells = spec.cells();
        assert_eq!(cells.len(), 4 + 2 * 2 * 2 + 2);
        assert!(cells.iter().enumerate().all(|(i, c)| c.id == i));
        assert_eq!(cells[0].label(), "standalone r0 1KiB 32x16");
        let e = &cells[4];
        assert_eq!((e.voters, e.observers, e.connections), (3, 0, 8));
        assert_eq!(e.target, Target::Learners);
        assert_eq!(cells[7].label(), "3v+2o r100 1KiB 16x16 to learners");
        let sweep = &cells[12];
        assert_eq!(sweep.rate, Some(1000.0));
        assert_eq!(sweep.systems, vec![System::Apache]);
        assert_eq!((sweep.repeats, cells[0].repeats), (1, 2));
        assert_eq!(
            sweep.label(),
            "standalone r100 1KiB 32x16 @1000/s srv@0 load@1"
        );
    }

    #[test]
    fn rejects_typos_and_impossible_values() {
        assert!(CampaignSpec::parse("name='x'\n[[group]]\nvoter = [3]\n").is_err());
        assert!(CampaignSpec::parse("name='x'\n[[group]]\nvoters = [2]\n").is_err());
        assert!(CampaignSpec::parse("name='x'\n[[group]]\nread_pct = [101]\n").is_err());
        assert!(CampaignSpec::parse("name='x'\n").is_err(), "no groups");
        assert!(CampaignSpec::parse("name='x'\nsystems=['etcd']\n[[group]]\n").is_err());
    }

    #[test]
    fn systems_alternate_a_b_b_a() {
        let spec = CampaignSpec::parse(SPEC).expect("parse");
        let cells: Vec<Cell> = spec.cells().into_iter().take(3).collect();
        let runs = schedule(&cells);
        let order: Vec<(usize, System, u32)> =
            runs.iter().map(|r| (r.cell, r.system, r.repeat)).collect();
        use System::{Apache as B, Zoocore as A};
        assert_eq!(
            order,
            vec![
                (0, A, 0),
                (0, B, 0),
                (1, B, 0),
                (1, A, 0),
                (2, A, 0),
                (2, B, 0),
                (0, B, 1),
                (0, A, 1),
                (1, A, 1),
                (1, B, 1),
                (2, B, 1),
                (2, A, 1),
            ]
        );
        assert!(runs.iter().enumerate().all(|(i, r)| r.seq == i));

        let mut cells = cells;
        cells[1].repeats = 1;
        let order: Vec<(usize, System)> = schedule(&cells)
            .iter()
            .map(|r| (r.cell, r.system))
            .collect();
        assert_eq!(
            order,
            vec![
                (0, A),
                (0, B),
                (1, B),
                (1, A),
                (2, A),
                (2, B),
                (0, B),
                (0, A),
                (2, A),
                (2, B)
            ]
        );
    }

    #[test]
    fn remote_ensembles_match_by_shape() {
        let text = r#"
name = "r"
[[group]]
voters = [3]
observers = [1]
[[remote]]
system = "zoocore"
members = [
  { client = "10.0.0.1:2181", role = "leader" },
  { client = "10.0.0.2:2181", role = "follower" },
  { client = "10.0.0.3:2181", role = "follower", pid = 42 },
  { client = "10.0.0.4:2181", role = "observer" },
]
"#;
        let spec = CampaignSpec::parse(text).expect("parse");
        let cell = &spec.cells()[0];
        assert!(spec.remote_for(System::Zoocore, cell).is_some());
        assert!(spec.remote_for(System::Apache, cell).is_none());
    }

    /// Every campaign file in configs/bench, read from the directory so that a new one is
    /// covered without a list to keep.
    #[test]
    fn the_shipped_campaigns_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/bench");
        let mut parsed = 0;
        for entry in std::fs::read_dir(&dir).expect("configs/bench") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("read");
                let spec = CampaignSpec::parse(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!spec.cells().is_empty(), "{}", path.display());
                parsed += 1;
            }
        }
        assert!(parsed >= 14, "{parsed} campaign files in {}", dir.display());
    }
}
