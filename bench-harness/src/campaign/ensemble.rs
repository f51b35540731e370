//! Members of one run: generated zoo.cfg files, started processes, the wait for a leader,
//! and the stop that proves every process is gone. Each member listens on its own loopback
//! address (127.<octet>.<run>.<member>) with the usual ports (2181 client, 2888 quorum, 3888
//! election), so no port is ever picked at random and members of one run never collide. In
//! the emulated network (`campaign::netns`) member N is 198.18.0.N inside its own namespace
//! instead, started through `nsenter` (and its cgroup), which exec, so the pid is its own.
//!
//! A local [`Ensemble`] owns its children: dropping it kills and reaps them, so a panic or an
//! early return cannot leave a server behind. [`Ensemble::stop`] does the same and then
//! checks /proc and the client port, and says so if anything survived.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::netns::{self, NetLab};
use super::spec::{Cell, RemoteEnsemble, Role, ServerSettings, System};
use crate::four_letter;

pub const CLIENT_PORT: u16 = 2181;
const QUORUM_PORT: u16 = 2888;
const ELECTION_PORT: u16 = 3888;
/// Where followers serve observers when a cell asks for observer masters.
const OBSERVER_MASTER_PORT: u16 = 2191;

/// One member as the run saw it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberInfo {
    /// ZooKeeper's server id (myid), 1-based.
    pub id: u32,
    pub client: SocketAddr,
    pub observer: bool,
    pub role: Option<Role>,
    pub pid: Option<u32>,
}

/// The members of one run, local (owned children) or remote (borrowed addresses).
pub struct Ensemble {
    pub members: Vec<MemberInfo>,
    children: Vec<Child>,
    pub dir: Option<PathBuf>,
    /// Started here (ours to kill and check), not remote.
    local: bool,
}

/// The address of member `index` (0-based) of run `seq`.
pub fn member_ip(octet: u8, seq: usize, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, octet, (seq % 250) as u8, (index + 1) as u8)
}

/// Every member's address for a run: loopback addresses, or the emulated network's block
/// when the cell runs in namespaces.
pub fn member_ips(s: &ServerSettings, cell: &Cell, seq: usize) -> Vec<Ipv4Addr> {
    let n = (cell.voters + cell.observers) as usize;
    (0..n)
        .map(|i| match cell.rtt_ms {
            Some(_) => netns::member_addr(i),
            None => member_ip(s.loopback_octet, seq, i),
        })
        .collect()
}

/// The zoo.cfg of member `index` (`ips` from [`member_ips`]): standalone when there is one
/// voter and no observer, server.N lines (observers marked `:observer`, and
/// `peerType=observer` in their own file) otherwise. The same text serves both systems;
/// zoocore.* keys are ignored by Apache.
pub fn zoo_cfg(
    s: &ServerSettings,
    cell: &Cell,
    ips: &[Ipv4Addr],
    index: usize,
    data: &Path,
) -> String {
    let ip = ips[index];
    let mut cfg = String::new();
    let _ = writeln!(cfg, "tickTime={}", s.tick_time_ms);
    let _ = writeln!(cfg, "dataDir={}", data.display());
    let _ = writeln!(cfg, "clientPort={CLIENT_PORT}");
    let _ = writeln!(cfg, "clientPortAddress={ip}");
    let _ = writeln!(cfg, "maxClientCnxns=0");
    let _ = writeln!(cfg, "4lw.commands.whitelist=*");
    let _ = writeln!(cfg, "admin.enableServer=false");
    let _ = writeln!(cfg, "globalOutstandingLimit={}", s.global_outstanding_limit);
    let _ = writeln!(cfg, "forceSync={}", if s.force_sync { "yes" } else { "no" });
    let _ = writeln!(cfg, "snapCount={}", cell.snap_count(s));
    let _ = writeln!(cfg, "autopurge.purgeInterval=0");
    let _ = writeln!(cfg, "zoocore.pinning=false");
    if !cell.standalone() {
        let _ = writeln!(cfg, "initLimit=10");
        let _ = writeln!(cfg, "syncLimit=5");
        for (m, ip) in ips.iter().enumerate() {
            let observer = m >= cell.voters as usize;
            let _ = writeln!(
                cfg,
                "server.{}={ip}:{QUORUM_PORT}:{ELECTION_PORT}{}",
                m + 1,
                if observer { ":observer" } else { "" }
            );
        }
        if index >= cell.voters as usize {
            let _ = writeln!(cfg, "peerType=observer");
        }
        if cell.observer_master {
            let _ = writeln!(cfg, "observerMasterPort={OBSERVER_MASTER_PORT}");
        }
    }
    for line in &s.extra_cfg {
        let _ = writeln!(cfg, "{line}");
    }
    cfg
}

/// Makes the process `cmd` starts get SIGTERM when the campaign ends, however it ends.
/// `Ensemble`'s drop stops its servers when a campaign returns or panics, but a campaign
/// killed by a signal (`timeout`, `kill`) runs no drop, and its servers (and their ports)
/// were left behind. The kernel's parent-death signal survives the wrappers' exec (taskset,
/// `ip netns exec`) and fires when the thread that spawned the child exits: a campaign
/// starts every process from its main thread, which lives as long as the campaign.
pub(crate) fn dies_with_campaign(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: the hook runs in the forked child before exec and makes one prctl(2) call,
    // which is async-signal-safe; it allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

/// The command line that starts one member, with `taskset` in front if CPUs are given.
pub fn member_command(
    s: &ServerSettings,
    system: System,
    standalone: bool,
    zoocore: &Path,
    cfg: &Path,
    cpus: Option<&str>,
) -> Command {
    let argv = member_argv(s, system, standalone, zoocore, cfg, cpus);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// [`member_command`] as a list, for wrapping (namespaces, cgroups).
pub fn member_argv(
    s: &ServerSettings,
    system: System,
    standalone: bool,
    zoocore: &Path,
    cfg: &Path,
    cpus: Option<&str>,
) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(cpus) = cpus {
        argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
    }
    match system {
        System::Zoocore => argv.push(zoocore.display().to_string()),
        System::Apache => {
            let main = if standalone {
                "org.apache.zookeeper.server.ZooKeeperServerMain"
            } else {
                "org.apache.zookeeper.server.quorum.QuorumPeerMain"
            };
            argv.extend([
                "java".into(),
                format!("-Xms{}", s.apache_heap),
                format!("-Xmx{}", s.apache_heap),
                "-Dzookeeper.4lw.commands.whitelist=*".into(),
                "-Dzookeeper.admin.enableServer=false".into(),
                "-cp".into(),
                s.apache_classpath.clone(),
                main.into(),
            ]);
        }
    }
    argv.push(cfg.display().to_string());
    argv
}

/// The zoocore binary a campaign starts.
pub fn zoocore_binary(s: &ServerSettings) -> PathBuf {
    if let Some(p) = &s.zoocore_binary {
        return p.clone();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("release").join("zoocore")
}

/// Installs Debian's `zookeeper` package if Apache's jar is missing.
pub fn ensure_apache(s: &ServerSettings) -> Result<(), String> {
    let jar = s.apache_classpath.split(':').next().unwrap_or_default();
    if Path::new(jar).exists() {
        return Ok(());
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false);
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    };
    cmd.args(["install", "-y", "zookeeper"]);
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    let status = cmd
        .status()
        .map_err(|e| format!("apt-get install zookeeper: {e}"))?;
    if !status.success() || !Path::new(jar).exists() {
        return Err(format!(
            "apt-get install zookeeper: {status}; {jar} still missing"
        ));
    }
    Ok(())
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// The `Mode:` of a `srvr` answer, if the member is serving.
fn srvr_mode(addr: SocketAddr) -> Option<Role> {
    let srvr = four_letter(addr, "srvr").ok()?;
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .and_then(Role::parse)
}

impl Ensemble {
    /// Starts the members of `cell` for `system` in fresh directories under `dir`, each in
    /// its namespace of `lab` when there is one (then this must run in the loader's).
    pub fn start(
        s: &ServerSettings,
        system: System,
        cell: &Cell,
        seq: usize,
        dir: &Path,
        lab: Option<&NetLab>,
    ) -> Result<Ensemble, String> {
        let zoocore = zoocore_binary(s);
        if system == System::Zoocore && !zoocore.exists() {
            return Err(format!(
                "zoocore binary not found at {} (cargo build --release --bin zoocore -p zoocore-server)",
                zoocore.display()
            ));
        }
        let _ = std::fs::remove_dir_all(dir);
        let mut ensemble = Ensemble {
            members: Vec::new(),
            children: Vec::new(),
            dir: Some(dir.to_path_buf()),
            local: true,
        };
        let ips = member_ips(s, cell, seq);
        for (index, &ip) in ips.iter().enumerate() {
            let client = SocketAddr::new(IpAddr::V4(ip), CLIENT_PORT);
            if listening(client) {
                return Err(format!("{client} is already taken before start"));
            }
            let mdir = dir.join(format!("m{}", index + 1));
            let data = mdir.join("data");
            std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
            if !cell.standalone() {
                std::fs::write(data.join("myid"), format!("{}\n", index + 1))
                    .map_err(|e| format!("myid: {e}"))?;
            }
            let cfg_path = mdir.join("zoo.cfg");
            std::fs::write(&cfg_path, zoo_cfg(s, cell, &ips, index, &data))
                .map_err(|e| format!("{}: {e}", cfg_path.display()))?;
            let log = std::fs::File::create(mdir.join("server.log"))
                .map_err(|e| format!("server.log: {e}"))?;
            let log2 = log.try_clone().map_err(|e| format!("server.log: {e}"))?;
            let mut argv = member_argv(
                s,
                system,
                cell.standalone(),
                &zoocore,
                &cfg_path,
                cell.server_cpus.as_deref(),
            );
            if let Some(lab) = lab {
                argv = lab.wrap_argv(index, argv);
            }
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
            dies_with_campaign(&mut cmd);
            let child = cmd
                .spawn()
                .map_err(|e| format!("spawn member {}: {e}", index + 1))?;
            ensemble.members.push(MemberInfo {
                id: index as u32 + 1,
                client,
                observer: index >= cell.voters as usize,
                role: None,
                pid: Some(child.id()),
            });
            ensemble.children.push(child);
        }
        ensemble.wait_ready(cell.standalone(), s.leader_timeout_s)?;
        Ok(ensemble)
    }

    /// Drives members that are already running; roles as declared.
    pub fn remote(r: &RemoteEnsemble) -> Ensemble {
        let members = r
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| MemberInfo {
                id: i as u32 + 1,
                client: m.client,
                observer: m.role == Role::Observer,
                role: Some(m.role),
                pid: m.pid,
            })
            .collect();
        Ensemble {
            members,
            children: Vec::new(),
            dir: None,
            local: false,
        }
    }

    /// A process started elsewhere (the echo server) to be stopped and checked like a member.
    pub fn adopt(child: Child, mut member: MemberInfo) -> Ensemble {
        member.pid = Some(child.id());
        Ensemble {
            members: vec![member],
            children: vec![child],
            dir: None,
            local: true,
        }
    }

    /// Until one member leads and every other serves as follower or observer (or the one
    /// member of a standalone cell serves), a member dies, or the time is up.
    fn wait_ready(&mut self, standalone: bool, timeout_s: f64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs_f64(timeout_s);
        loop {
            for (i, child) in self.children.iter_mut().enumerate() {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = self
                        .dir
                        .as_ref()
                        .map(|d| log_tail(&d.join(format!("m{}/server.log", i + 1))))
                        .unwrap_or_default();
                    return Err(format!("member {} exited ({status}): {log}", i + 1));
                }
            }
            let modes: Vec<Option<Role>> =
                self.members.iter().map(|m| srvr_mode(m.client)).collect();
            let ready = if standalone {
                modes[0] == Some(Role::Standalone)
            } else {
                let leaders = modes.iter().filter(|m| **m == Some(Role::Leader)).count();
                let learners = modes
                    .iter()
                    .filter(|m| matches!(m, Some(Role::Follower | Role::Observer)))
                    .count();
                leaders == 1 && leaders + learners == modes.len()
            };
            if ready {
                for (m, mode) in self.members.iter_mut().zip(modes) {
                    m.role = mode;
                }
                return Ok(());
            }
            // A member of an ensemble that reports standalone ignored its server.N lines:
            // it will never join, so fail now rather than at the deadline.
            if !standalone && modes.iter().all(|m| *m == Some(Role::Standalone)) {
                return Err(
                    "every member reports Mode: standalone: this build ignores server.N lines \
                     (no ensemble support)"
                        .into(),
                );
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no leader within {timeout_s} s; modes {:?}",
                    modes
                        .iter()
                        .map(|m| m.map(|r| format!("{r:?}")).unwrap_or("-".into()))
                        .collect::<Vec<_>>()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every member still running (a kept ensemble is checked before it is reused).
    pub fn alive(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|m| m.pid).collect()
    }

    /// Kills and reaps every child, then checks that none is left: no /proc entry and no
    /// listener on its client address. Remote members are left alone.
    pub fn stop(mut self) -> Result<(), String> {
        self.kill_all();
        let mut survivors = Vec::new();
        for m in &self.members {
            if let Some(pid) = m.pid.filter(|_| self.local) {
                if Path::new(&format!("/proc/{pid}")).exists() {
                    survivors.push(format!("pid {pid} still in /proc"));
                }
                // io_uring tears a dead process's ring (and the sockets it holds) down in
                // a kernel worker after exit, so a listener may outlive the pid briefly.
                let deadline = Instant::now() + Duration::from_secs(5);
                while listening(m.client) {
                    if Instant::now() > deadline {
                        survivors.push(format!("{} still accepting 5 s after exit", m.client));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if survivors.is_empty() {
            Ok(())
        } else {
            Err(survivors.join("; "))
        }
    }

    fn kill_all(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::spec::{Cell, Target};

    fn cell(voters: u32, observers: u32) -> Cell {
        Cell {
            id: 0,
            group: "g".into(),
            systems: vec![System::Zoocore],
            repeats: 1,
            voters,
            observers,
            read_pct: 100,
            value_size: 1024,
            connections: 1,
            outstanding: 1,
            rate: None,
            target: Target::All,
            server_cpus: None,
            load_cpus: None,
            rtt_ms: None,
            member_cpu: None,
            snap_count: None,
            keys: None,
            duration_s: None,
            observer_master: false,
        }
    }

    fn cfg_of(s: &ServerSettings, c: &Cell, seq: usize, index: usize) -> String {
        zoo_cfg(s, c, &member_ips(s, c, seq), index, Path::new("/d"))
    }

    #[test]
    fn standalone_cfg_has_no_server_lines() {
        let s = ServerSettings::default();
        let cfg = cfg_of(&s, &cell(1, 0), 3, 0);
        assert!(cfg.contains("clientPortAddress=127.120.3.1\n"));
        assert!(cfg.contains("forceSync=yes\n") && cfg.contains("snapCount=100000\n"));
        assert!(!cfg.contains("server."));
    }

    #[test]
    fn ensemble_cfg_lists_voters_then_observers() {
        let s = ServerSettings::default();
        let cfg = cfg_of(&s, &cell(3, 1), 7, 3);
        assert!(cfg.contains("server.1=127.120.7.1:2888:3888\n"));
        assert!(cfg.contains("server.3=127.120.7.3:2888:3888\n"));
        assert!(cfg.contains("server.4=127.120.7.4:2888:3888:observer\n"));
        assert!(cfg.contains("peerType=observer\n"));
        let voter = cfg_of(&s, &cell(3, 1), 7, 0);
        assert!(!voter.contains("peerType"));
    }

    #[test]
    fn emulated_network_cells_use_the_block_and_snapshots_can_be_off() {
        let s = ServerSettings::default();
        let mut c = cell(3, 0);
        c.rtt_ms = Some(1.0);
        c.snap_count = Some(0);
        let cfg = cfg_of(&s, &c, 7, 1);
        assert!(cfg.contains("clientPortAddress=198.18.0.2\n"));
        assert!(cfg.contains("server.3=198.18.0.3:2888:3888\n"));
        assert!(!cfg.contains("127."));
        assert!(cfg.contains(&format!(
            "snapCount={}\n",
            crate::campaign::spec::SNAP_COUNT_OFF
        )));
        c.snap_count = Some(20_000);
        assert!(cfg_of(&s, &c, 7, 1).contains("snapCount=20000\n"));
        assert!(!cfg_of(&s, &c, 7, 1).contains("observerMasterPort"));
        c.observer_master = true;
        assert!(cfg_of(&s, &c, 7, 1).contains("observerMasterPort=2191\n"));
    }

    #[test]
    fn apache_command_fixes_the_heap_and_picks_the_main_class() {
        let s = ServerSettings::default();
        let cmd = member_command(
            &s,
            System::Apache,
            false,
            Path::new("z"),
            Path::new("c"),
            Some("0"),
        );
        let args: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(&args[..4], ["taskset", "-c", "0", "java"]);
        assert!(args.contains(&"-Xms1g".to_string()) && args.contains(&"-Xmx1g".to_string()));
        assert!(args.contains(&"org.apache.zookeeper.server.quorum.QuorumPeerMain".to_string()));
    }
}
