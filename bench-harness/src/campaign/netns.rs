//! The emulated network of a campaign run: every member in its own network namespace, the
//! load generator in one more, all joined by veth pairs to a bridge in a hub namespace, with
//! a netem delay on every endpoint's veth and, optionally, a CPU quota per member (cgroup v2
//! `cpu.max`, or v1 `cpu.cfs_quota_us` where the cpu controller is bound to v1).
//!
//! Addresses: one block, 198.18.0.0/24, out of 198.18.0.0/15, which RFC 2544 sets aside for
//! benchmarking and which nothing on a normal host routes. Members are 198.18.0.<n> (n from
//! 1), the load generator 198.18.0.254. They are assigned only on the `eth0` veths inside the
//! namespaces made here, no namespace has a default route and IPv6 is off in all of them (no
//! router solicitations, no link-local chatter), so every packet of a run goes from one of
//! these addresses to another and nothing leaves the hub. The root namespace gets nothing:
//! no address, no link, no route (the bridge lives in the hub namespace), and the campaign
//! talks to members only from a thread that entered the loader namespace ([`NetLab::in_loader`]).
//!
//! Delay: each endpoint's `eth0` delays what it sends by half the round trip, so every pair
//! (member to member, loader to member) sees the whole round trip, one half each way. Where
//! the kernel has no netem ([`Delay::Auto`] probes for it), each `eth0` is instead a TAP
//! device and the campaign's own userspace switch (`campaign::wire`) carries the frames
//! between them with the same half-round-trip hold; no bridge or veth then.
//!
//! Cleanup: a [`NetLab`] removes every namespace and cgroup it made when dropped, so a
//! failed or panicking run leaves nothing (deleting a namespace deletes its veth, and with
//! it the peer on the bridge); [`remove_stale`] removes what an earlier campaign of the same
//! prefix left when its process was killed outright.

use std::fs::File;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::wire::{self, Wire};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The block, as documented above.
pub const BLOCK: &str = "198.18.0.0/24";
/// The load generator's address inside its namespace.
pub const LOADER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// netem's queue: at 1 ms and hundreds of thousands of packets per second the default of
/// 1000 packets would drop, and a drop is a retransmit that the table would call latency.
const NETEM_LIMIT: u32 = 1_000_000;
const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{cmd}` failed: {why}")]
    Command { cmd: String, why: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("enter the loader namespace: {0}")]
    Setns(nix::Error),
    #[error("{0} members: the block has room for 253")]
    TooMany(usize),
    #[error("a CPU quota was asked for, but no cgroup cpu controller is mounted")]
    NoCpuController,
    #[error(
        "this kernel has no netem qdisc (sch_netem; CONFIG_NET_SCH_NETEM): a cell with \
         rtt_ms > 0 needs it; rtt_ms = 0 runs in namespaces without delay"
    )]
    NoNetem,
}

/// Member `index` (0-based).
pub fn member_addr(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, (index + 1) as u8)
}

/// How the round trip is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Delay {
    /// netem where the kernel has it, else the userspace switch.
    #[default]
    Auto,
    /// netem on veths to a bridge; a kernel without netem fails the cell.
    Netem,
    /// TAP devices and the userspace switch, whatever the kernel has.
    Userspace,
}

/// What a run's lab looks like.
#[derive(Debug, Clone)]
pub struct LabSpec {
    pub prefix: String,
    pub members: usize,
    pub rtt_ms: f64,
    pub member_cpu: Option<f64>,
    pub delay: Delay,
}

/// Where per-member CPU quotas are set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cgroups {
    /// A cgroup2 hierarchy (its mount) whose controllers include cpu.
    V2(PathBuf),
    /// The cgroup v1 cpu hierarchy (hybrid hosts bind cpu there, not in the unified tree).
    V1(PathBuf),
}

impl Cgroups {
    fn detect() -> Option<Cgroups> {
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let controllers = std::fs::read_to_string(Path::new(root).join("cgroup.controllers"))
                .unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == "cpu") {
                return Some(Cgroups::V2(root.into()));
            }
        }
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        v1.join("cpu.cfs_quota_us")
            .exists()
            .then(|| Cgroups::V1(v1.into()))
    }

    fn root(&self) -> &Path {
        match self {
            Cgroups::V2(p) | Cgroups::V1(p) => p,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    let what = what.into();
    move |source| NetError::Io { what, source }
}

/// Runs a command to completion; its stderr is the error.
fn run(program: &str, args: &[&str]) -> Result<String, NetError> {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetError::Command {
            cmd: cmd.clone(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd,
            why: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Names of the network namespaces that exist now (`ip netns list`, first word per line).
pub fn namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn ours(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('-'))
}

/// What is left with this prefix: namespaces and cgroup directories. Empty after a clean
/// run; the tests and the campaign's check read it.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let mut left: Vec<String> = namespaces()
        .into_iter()
        .filter(|n| ours(n, prefix))
        .map(|n| format!("netns {n}"))
        .collect();
    if let Some(cg) = Cgroups::detect() {
        let dir = cg.root().join(prefix);
        if dir.exists() {
            left.push(format!("cgroup {}", dir.display()));
        }
    }
    left
}

/// SIGKILLs every process of a cgroup directory (leftovers only: a run's own members are
/// killed and reaped by their `Ensemble` first).
fn kill_cgroup(dir: &Path) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.split_whitespace() {
        let _ = run("kill", &["-9", pid]);
    }
}

/// rmdir, retried briefly: a cgroup stays busy until its last process is reaped.
fn remove_cgroup_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        return Ok(());
    }
    let mut last = String::new();
    for _ in 0..40 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        kill_cgroup(dir);
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("rmdir {}: {last}", dir.display()))
}

fn remove_cgroup_tree(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                kill_cgroup(&e.path());
                problems.extend(remove_cgroup_dir(&e.path()).err());
            }
        }
    }
    problems.extend(remove_cgroup_dir(dir).err());
    problems
}

fn remove_namespace(name: &str) -> Result<(), String> {
    // Processes still inside (a leftover of a killed campaign) would keep it alive unnamed.
    if let Ok(pids) = run("ip", &["netns", "pids", name]) {
        for pid in pids.split_whitespace() {
            let _ = run("kill", &["-9", pid]);
        }
    }
    run("ip", &["netns", "del", name])
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Removes every namespace and cgroup with this prefix; returns what it removed, and
/// what it could not.
pub fn remove_stale(prefix: &str) -> (Vec<String>, Vec<String>) {
    let (mut removed, mut problems) = (Vec::new(), Vec::new());
    for ns in namespaces().into_iter().filter(|n| ours(n, prefix)) {
        match remove_namespace(&ns) {
            Ok(()) => removed.push(format!("netns {ns}")),
            Err(e) => problems.push(e),
        }
    }
    if let Some(cg) = Cgroups::detect() {
        let dir = cg.root().join(prefix);
        if dir.exists() {
            let p = remove_cgroup_tree(&dir);
            if p.is_empty() {
                removed.push(format!("cgroup {}", dir.display()));
            }
            problems.extend(p);
        }
    }
    (removed, problems)
}

/// The namespaces (and cgroups) of one run. Dropping it removes them all.
#[derive(Debug)]
pub struct NetLab {
    spec: LabSpec,
    /// Made so far, in order; removed in reverse.
    namespaces: Vec<String>,
    cgroups: Option<Cgroups>,
    /// Per member: its cgroup directory, if it has a quota.
    member_cgroups: Vec<PathBuf>,
    /// The userspace switch, when it carries the delay.
    wire: Option<Wire>,
    /// "none", "netem" or "userspace": what made the round trip.
    pub delay_used: &'static str,
    removed: bool,
}

impl NetLab {
    fn hub(&self) -> String {
        format!("{}-hub", self.spec.prefix)
    }

    fn loader(&self) -> String {
        format!("{}-ld", self.spec.prefix)
    }

    /// The namespace of member `index`.
    pub fn member_ns(&self, index: usize) -> String {
        format!("{}-m{}", self.spec.prefix, index + 1)
    }

    /// Makes the namespaces, the bridge, the veths, the delays and the cgroups. On an
    /// error, what was made so far is removed before returning.
    pub fn create(spec: LabSpec) -> Result<NetLab, NetError> {
        if spec.members > 253 {
            return Err(NetError::TooMany(spec.members));
        }
        let cgroups = match spec.member_cpu {
            Some(_) => Some(Cgroups::detect().ok_or(NetError::NoCpuController)?),
            None => None,
        };
        let mut lab = NetLab {
            spec,
            namespaces: Vec::new(),
            cgroups,
            member_cgroups: Vec::new(),
            wire: None,
            delay_used: "none",
            removed: false,
        };
        lab.build()?;
        Ok(lab)
    }

    fn add_namespace(&mut self, name: String) -> Result<(), NetError> {
        run("ip", &["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        // Before any veth exists here, so no interface ever gets an IPv6 link-local address.
        // A kernel without IPv6 has nothing to switch off (and no such sysctl).
        if Path::new("/proc/sys/net/ipv6").exists() {
            run(
                "nsenter",
                &[
                    &format!("--net=/run/netns/{name}"),
                    "--",
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
        }
        run("ip", &["-n", &name, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// One endpoint: a veth from the bridge (`hub_side` there) to `eth0` in `ns`, with
    /// `addr`, and half the round trip of delay on what `ns` sends.
    fn add_endpoint(&self, ns: &str, hub_side: &str, addr: Ipv4Addr) -> Result<(), NetError> {
        let hub = self.hub();
        run(
            "ip",
            &[
                "-n", &hub, "link", "add", hub_side, "type", "veth", "peer", "name", "eth0",
                "netns", ns,
            ],
        )?;
        run(
            "ip",
            &["-n", &hub, "link", "set", hub_side, "master", "br0", "up"],
        )?;
        run(
            "ip",
            &[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ],
        )?;
        run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
        let half_us = (self.spec.rtt_ms * 1000.0 / 2.0).round() as u64;
        if half_us > 0 {
            netem(ns, half_us)?;
        }
        Ok(())
    }

    fn half_us(&self) -> u64 {
        (self.spec.rtt_ms * 1000.0 / 2.0).round() as u64
    }

    /// Every endpoint: (namespace, name of its port on the bridge, address).
    fn endpoints(&self) -> Vec<(String, String, Ipv4Addr)> {
        let mut out = vec![(self.loader(), "ld".to_string(), LOADER_ADDR)];
        for i in 0..self.spec.members {
            out.push((self.member_ns(i), format!("m{}", i + 1), member_addr(i)));
        }
        out
    }

    fn build(&mut self) -> Result<(), NetError> {
        let hub = self.hub();
        self.add_namespace(hub.clone())?;
        let userspace = self.half_us() > 0
            && match self.spec.delay {
                Delay::Netem => false,
                Delay::Userspace => true,
                Delay::Auto => !netem_available(&hub),
            };
        if userspace {
            self.build_wire()?;
        } else {
            self.build_bridge()?;
        }
        if let (Some(cg), Some(cpu)) = (self.cgroups.clone(), self.spec.member_cpu) {
            self.build_cgroups(&cg, cpu)?;
        }
        Ok(())
    }

    fn build_bridge(&mut self) -> Result<(), NetError> {
        let hub = self.hub();
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        for (ns, port, addr) in self.endpoints() {
            self.add_namespace(ns.clone())?;
            self.add_endpoint(&ns, &port, addr)?;
        }
        if self.half_us() > 0 {
            self.delay_used = "netem";
        }
        Ok(())
    }

    /// TAPs as `eth0`, made inside each namespace, and the switch between them.
    fn build_wire(&mut self) -> Result<(), NetError> {
        let mut ports = Vec::new();
        for (ns, _, addr) in self.endpoints() {
            self.add_namespace(ns.clone())?;
            let tap = self
                .in_namespace(&ns, || {
                    tun_tap::Iface::without_packet_info("eth0", tun_tap::Mode::Tap)
                })?
                .map_err(io(format!("TAP eth0 in {ns}")))?;
            let mac = wire::mac(addr.octets()[3]);
            let mac_text = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "link",
                    "set",
                    "eth0",
                    "address",
                    &mac_text,
                    "txqueuelen",
                    "10000",
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            ports.push((tap, mac));
        }
        let one_way = Duration::from_micros(self.half_us());
        self.wire = Some(Wire::start(ports, one_way).map_err(io("start the switch"))?);
        self.delay_used = "userspace";
        Ok(())
    }
    fn build_cgroups(&mut self, cg: &Cgroups, cpu: f64) -> Result<(), NetError> {
        let parent = cg.root().join(&self.spec.prefix);
        let quota = ((cpu * CPU_PERIOD_US as f64).round() as u64).max(1000);
        if let Cgroups::V2(root) = cg {
            // cpu.max exists in a child only if its parent delegates the controller.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+cpu");
        }
        std::fs::create_dir(&parent).map_err(io(parent.display().to_string()))?;
        // Recorded before anything can fail, so that Drop removes the parent.
        self.member_cgroups.clear();
        if let Cgroups::V2(_) = cg {
            let ctl = parent.join("cgroup.subtree_control");
            std::fs::write(&ctl, "+cpu").map_err(io(ctl.display().to_string()))?;
        }
        for i in 0..self.spec.members {
            let dir = parent.join(format!("m{}", i + 1));
            std::fs::create_dir(&dir).map_err(io(dir.display().to_string()))?;
            self.member_cgroups.push(dir.clone());
            let writes: Vec<(&str, String)> = match cg {
                Cgroups::V2(_) => vec![("cpu.max", format!("{quota} {CPU_PERIOD_US}"))],
                Cgroups::V1(_) => vec![
                    ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                    ("cpu.cfs_quota_us", quota.to_string()),
                ],
            };
            for (file, value) in writes {
                let path = dir.join(file);
                std::fs::write(&path, value).map_err(io(path.display().to_string()))?;
            }
        }
        Ok(())
    }

    /// `argv` run inside member `index`'s namespace, and in its cgroup if it has a quota;
    /// the wrappers exec, so the pid spawned is the member's own.
    pub fn wrap_argv(&self, index: usize, argv: Vec<String>) -> Vec<String> {
        let mut out = vec![
            "nsenter".to_string(),
            format!("--net=/run/netns/{}", self.member_ns(index)),
            "--".into(),
        ];
        if let Some(dir) = self.member_cgroups.get(index) {
            // The shell moves itself into the cgroup, then becomes the member.
            out.extend([
                "sh".into(),
                "-c".into(),
                r#"echo $$ > "$0" && exec "$@""#.into(),
                dir.join("cgroup.procs").display().to_string(),
            ]);
        }
        out.extend(argv);
        out
    }

    /// The cgroup directory of member `index`, if it has a quota.
    pub fn member_cgroup(&self, index: usize) -> Option<&Path> {
        self.member_cgroups.get(index).map(PathBuf::as_path)
    }

    /// Runs `f` on a thread inside the loader namespace: every socket it (and any thread
    /// it starts, such as the load generator's) opens is there, so the campaign reaches the
    /// members at their block addresses and nothing else. A panic in `f` is passed on to the
    /// caller, whose unwinding then drops this lab.
    pub fn in_loader<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        self.in_namespace(&self.loader(), f)
    }

    /// Runs `f` on a thread inside namespace `name` (see [`NetLab::in_loader`]).
    fn in_namespace<T: Send>(
        &self,
        name: &str,
        f: impl FnOnce() -> T + Send,
    ) -> Result<T, NetError> {
        let path = format!("/run/netns/{name}");
        let ns = File::open(&path).map_err(io(path))?;
        let joined = std::thread::scope(|s| {
            s.spawn(move || -> Result<T, NetError> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(NetError::Setns)?;
                Ok(f())
            })
            .join()
        });
        match joined {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Removes everything and says what could not be removed.
    pub fn remove(mut self) -> Result<(), String> {
        let problems = self.remove_all();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn remove_all(&mut self) -> Vec<String> {
        if self.removed {
            return Vec::new();
        }
        self.removed = true;
        let mut problems = Vec::new();
        // The switch first: its threads hold the TAPs, which go when the last fd closes.
        if let Some(mut w) = self.wire.take() {
            w.stop();
        }
        // Members and the loader first (their veths go with them), the hub last.
        for ns in self.namespaces.drain(..).rev() {
            problems.extend(remove_namespace(&ns).err());
        }
        if let Some(cg) = &self.cgroups {
            let parent = cg.root().join(&self.spec.prefix);
            for dir in self.member_cgroups.drain(..).rev() {
                problems.extend(remove_cgroup_dir(&dir).err());
            }
            problems.extend(remove_cgroup_dir(&parent).err());
        }
        problems
    }
}

/// Whether this kernel has netem: tried on the loopback of a namespace of ours.
fn netem_available(ns: &str) -> bool {
    let added = run(
        "tc",
        &[
            "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1us",
        ],
    )
    .is_ok();
    if added {
        let _ = run("tc", &["-n", ns, "qdisc", "del", "dev", "lo", "root"]);
    }
    added
}

/// Half the round trip of delay on what `ns` sends through its `eth0`.
fn netem(ns: &str, half_us: u64) -> Result<(), NetError> {
    let delay = format!("{half_us}us");
    let limit = NETEM_LIMIT.to_string();
    let args = [
        "-n", ns, "qdisc", "add", "dev", "eth0", "root", "netem", "delay", &delay, "limit", &limit,
    ];
    match run("tc", &args) {
        Err(NetError::Command { why, .. }) if why.contains("qdisc kind is unknown") => {
            Err(NetError::NoNetem)
        }
        other => other.map(drop),
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for p in self.remove_all() {
            eprintln!("netns cleanup: {p}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_block_and_prefixes_match_whole_words() {
        assert_eq!(member_addr(0), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(member_addr(252), Ipv4Addr::new(198, 18, 0, 253));
        assert!(ours("zb-x-m1", "zb-x") && ours("zb-x-hub", "zb-x"));
        assert!(!ours("zb-xy-m1", "zb-x") && !ours("zb-x", "zb-x"));
        let lab = NetLab {
            spec: LabSpec {
                prefix: "zb-t".into(),
                members: 1,
                rtt_ms: 1.0,
                member_cpu: Some(0.5),
                delay: Delay::Auto,
            },
            namespaces: Vec::new(),
            cgroups: None,
            member_cgroups: vec![PathBuf::from("/cg/zb-t/m1")],
            wire: None,
            delay_used: "none",
            removed: true,
        };
        let argv = lab.wrap_argv(0, vec!["zoocore".into(), "zoo.cfg".into()]);
        assert_eq!(argv[0], "nsenter");
        assert_eq!(argv[1], "--net=/run/netns/zb-t-m1");
        assert_eq!(argv[6], "/cg/zb-t/m1/cgroup.procs");
        assert_eq!(&argv[7..], ["zoocore", "zoo.cfg"]);
    }
}
