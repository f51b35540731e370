//! Harness for the end-to-end tests: it starts one real server process per test (zoocore, or
//! Apache ZooKeeper as the reference when `ZOOCORE_E2E_TARGET=apache`) on its own loopback
//! address, waits until it answers `ruok`, and kills it when the test ends, pass or fail.
//!
//! Address scheme: every server listens on the fixed port [`PORT`] of its own address in
//! 127.0.0.0/8 (Linux routes the whole block to `lo`): `127.<10 + pid % 200>.<n / 250>.<1 + n % 250>`
//! where `n` is a per-process atomic counter. The pid spreads concurrent test binaries over
//! different second octets; a bind probe before the start skips any address that is taken,
//! so parallel tests and parallel `cargo test` runs do not collide.
//!
//! Both targets get the same generated `zoo.cfg`; Apache additionally gets the few settings
//! it only reads from Java system properties. The server's stdout and stderr go to
//! `server.log` in the test's temp dir, whose tail is printed if the test panics (the dir is
//! then kept for inspection; otherwise it is removed).
//!
//! [`ensemble`] has the steps ensemble scenarios share (modes, waits for a leader and for
//! zxid agreement, the write-until-failover loop).
//!
//! [`raw`] is a minimal synchronous jute client for what the `zookeeper-client` crate cannot
//! express (malformed frames, bad paths, checkWatches/removeWatches, setWatches, passwords).
//!
//! [`probe`] looks at a server process from outside (RSS, the connections it still holds,
//! zoocore's logged close reasons) for the abuse suite.
//!
//! [`zkcli`] runs scripts through Apache's zkCli.sh.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod ensemble;
pub mod kazoo;
pub mod probe;
pub mod raw;
pub mod zkcli;

/// The client port every test server listens on, each on its own loopback address.
pub const PORT: u16 = 21810;
/// The quorum port of ensemble members started by [`Server::start_ensemble`], each on its own
/// loopback address; zoocore runs election over it too.
pub const QUORUM_PORT: u16 = 21811;
/// The TLS client port (`secureClientPort`) of servers started with [`Options::secure_port`],
/// on the same address as [`PORT`].
pub const SECURE_PORT: u16 = 21813;
/// Written into the `server.N` lines; unused by zoocore.
pub const ELECTION_PORT: u16 = 21812;
/// The AdminServer's port when [`Options::admin`] is on, on the server's own address.
pub const ADMIN_PORT: u16 = 21880;
/// The Prometheus exporter's port when [`Options::metrics`] is on (zoocore only: Debian's
/// ZooKeeper 3.8 ships no Prometheus provider).
pub const METRICS_PORT: u16 = 21870;
/// `super:superpass`, as `DigestAuthenticationProvider.superDigest` expects it.
pub const SUPER_DIGEST: &str = "super:DQOvrqPXILAUMtJ0ZGu2ttmUhQs=";
/// The password matching [`SUPER_DIGEST`].
pub const SUPER_AUTH: &[u8] = b"super:superpass";
/// Whole-test bound used by [`run`]; a hung test fails instead of hanging the suite.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Which server implementation the suite drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Zoocore,
    Apache,
}

impl Target {
    /// Reads `ZOOCORE_E2E_TARGET` (`zoocore`, the default, or `apache`).
    pub fn from_env() -> Target {
        match std::env::var("ZOOCORE_E2E_TARGET").as_deref() {
            Err(_) | Ok("") | Ok("zoocore") => Target::Zoocore,
            Ok("apache") => Target::Apache,
            Ok(other) => panic!("ZOOCORE_E2E_TARGET={other:?}: expected `zoocore` or `apache`"),
        }
    }

    /// Apache ZooKeeper 3.8 (the Debian package) lacks some 3.9 behaviour zoocore has.
    pub fn is_apache_38(self) -> bool {
        self == Target::Apache
    }
}

/// Server settings a test may change; the defaults suit most scenarios.
#[derive(Clone, Debug)]
pub struct Options {
    pub tick_ms: u32,
    pub session_timeout_ms_min: u32,
    pub session_timeout_ms_max: u32,
    pub container_check_ms: u32,
    /// `user:base64(sha1(user:password))`, e.g. [`SUPER_DIGEST`].
    pub super_digest: Option<String>,
    /// More `key=value` lines for zoo.cfg; a key given here overrides the defaults above.
    pub extra_cfg: Vec<String>,
    /// Run the server under `taskset -c <list>`.
    pub cpu_list: Option<String>,
    /// Also serve TLS on [`SECURE_PORT`]; the test gives the `ssl.*` keys in `extra_cfg`.
    /// Apache gets the Netty connection factory its TLS needs and the x509 provider.
    pub secure_port: bool,
    /// Listen on this address (from [`free_host`]) rather than a fresh one, e.g. one that a
    /// test's server certificate names.
    pub host: Option<Ipv4Addr>,
    /// Serve the AdminServer on the server's address, port [`ADMIN_PORT`].
    pub admin: bool,
    /// Serve Prometheus `/metrics` on the server's address, port [`METRICS_PORT`].
    pub metrics: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tick_ms: 200,
            session_timeout_ms_min: 400,
            session_timeout_ms_max: 60_000,
            container_check_ms: 200,
            super_digest: None,
            extra_cfg: Vec::new(),
            cpu_list: None,
            secure_port: false,
            host: None,
            admin: false,
            metrics: false,
        }
    }
}

/// One running server process with its own temp dir and loopback address.
pub struct Server {
    pub target: Target,
    pub options: Options,
    host: Ipv4Addr,
    dir: PathBuf,
    child: Option<Child>,
    /// Stopped with SIGSTOP by [`Server::freeze`] and not yet resumed.
    frozen: bool,
}

static ADDRESS_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A loopback address no other test of this run uses (and where [`PORT`] is free): a test
/// that starts servers some other way binds only there.
pub fn free_host() -> Ipv4Addr {
    next_free_host()
}

fn next_free_host() -> Ipv4Addr {
    let second = 10 + (std::process::id() % 200) as u8;
    for _ in 0..1000 {
        let n = ADDRESS_COUNTER.fetch_add(1, Ordering::Relaxed);
        let host = Ipv4Addr::new(127, second, (n / 250 % 250) as u8, (1 + n % 250) as u8);
        if TcpListener::bind((host, PORT)).is_ok() {
            return host;
        }
    }
    panic!("no free loopback address with port {PORT} under 127.{second}.0.0/16");
}

fn make_temp_dir(host: Ipv4Addr) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoocore-e2e-{}-{host}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).expect("create temp dir");
    dir
}

impl Server {
    /// Starts the target named by `ZOOCORE_E2E_TARGET` with default options.
    pub fn start_default() -> Server {
        Server::start(Target::from_env())
    }

    pub fn start(target: Target) -> Server {
        Server::start_with(target, Options::default())
    }

    /// Starts a server with `options` and waits until it answers `ruok`.
    pub fn start_with(target: Target, options: Options) -> Server {
        if target == Target::Zoocore {
            zoocore_binary(); // fail before making a temp dir
        }
        let host = options.host.unwrap_or_else(next_free_host);
        let mut server = Server::configured(target, options, host, make_temp_dir(host));
        server.spawn();
        server
    }

    /// A server not started yet, its zoo.cfg written to `dir`.
    fn configured(target: Target, options: Options, host: Ipv4Addr, dir: PathBuf) -> Server {
        let server = Server {
            target,
            options,
            host,
            dir,
            child: None,
            frozen: false,
        };
        std::fs::write(server.cfg_path(), server.zoo_cfg()).expect("write zoo.cfg");
        server
    }

    /// The `host:port` string clients connect to.
    pub fn connect_string(&self) -> String {
        format!("{}:{PORT}", self.host)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, PORT))
    }

    /// The `host:port` string of the TLS client port ([`Options::secure_port`]).
    pub fn secure_connect_string(&self) -> String {
        format!("{}:{SECURE_PORT}", self.host)
    }

    pub fn secure_addr(&self) -> SocketAddr {
        SocketAddr::from((self.host, SECURE_PORT))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn cfg_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    /// The cfg both targets read; zoocore accepts ZooKeeper's zoo.cfg format.
    fn zoo_cfg(&self) -> String {
        let o = &self.options;
        let mut cfg = format!(
            "tickTime={}\ndataDir={}\nclientPort={PORT}\nclientPortAddress={}\n\
             4lw.commands.whitelist=*\nminSessionTimeout={}\nmaxSessionTimeout={}\n\
             znode.container.checkIntervalMs={}\nznode.container.maxPerMinute=100000\n\
             extendedTypesEnabled=true\nadmin.enableServer={}\nadmin.serverAddress={}\n\
             admin.serverPort={ADMIN_PORT}\nmaxClientCnxns=0\npreAllocSize=4096\n",
            o.tick_ms,
            self.dir.join("data").display(),
            self.host,
            o.session_timeout_ms_min,
            o.session_timeout_ms_max,
            o.container_check_ms,
            o.admin,
            self.host,
        );
        if o.metrics {
            cfg.push_str(&format!(
                "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
                 metricsProvider.httpHost={}\nmetricsProvider.httpPort={METRICS_PORT}\n",
                self.host
            ));
        }
        if let Some(digest) = &o.super_digest {
            cfg.push_str(&format!(
                "DigestAuthenticationProvider.superDigest={digest}\n"
            ));
        }
        if o.secure_port {
            cfg.push_str(&format!(
                "secureClientPort={SECURE_PORT}\nsecureClientPortAddress={}\n",
                self.host
            ));
        }
        // ZOOCORE_E2E_SHARDS=n runs zoocore with n session executors, so that sessions,
        // watches and commits cross between shards (Apache ignores the key).
        if let Ok(n) = std::env::var("ZOOCORE_E2E_SHARDS") {
            cfg.push_str(&format!("zoocore.shards={n}\nzoocore.pinning=false\n"));
        }
        for line in &o.extra_cfg {
            cfg.push_str(line);
            cfg.push('\n');
        }
        cfg
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn command(&self) -> Command {
        match self.target {
            Target::Zoocore => {
                let bin = zoocore_binary();
                let mut cmd = Command::new(bin);
                cmd.arg(self.cfg_path());
                cmd
            }
            Target::Apache => {
                let jar = Path::new("/usr/share/java/zookeeper.jar");
                assert!(
                    jar.exists(),
                    "{} is missing: run `apt-get install zookeeper` to test against Apache ZooKeeper",
                    jar.display()
                );
                let o = &self.options;
                let mut cmd = Command::new("java");
                // Several of these settings are read only as system properties, not from zoo.cfg.
                cmd.args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"])
                    .arg("-Dzookeeper.extendedTypesEnabled=true")
                    .arg(format!(
                        "-Dznode.container.checkIntervalMs={}",
                        o.container_check_ms
                    ))
                    .arg("-Dznode.container.maxPerMinute=100000")
                    .arg("-Dzookeeper.4lw.commands.whitelist=*")
                    .arg(format!("-Dzookeeper.admin.enableServer={}", o.admin))
                    .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
                    .arg(format!("-Dzookeeper.log.dir={}", self.dir.display()));
                if let Some(digest) = &o.super_digest {
                    cmd.arg(format!(
                        "-Dzookeeper.DigestAuthenticationProvider.superDigest={digest}"
                    ));
                }
                if o.secure_port {
                    // Only the Netty factory speaks TLS; X509AuthenticationProvider is not
                    // registered unless named.
                    cmd.arg(
                        "-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
                    )
                    .arg(
                        "-Dzookeeper.authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider",
                    );
                }
                // slf4j-simple writes the server log to stderr, which lands in server.log.
                // Jetty (the AdminServer) needs the servlet API, and the TLS (Netty) factory
                // netty-resolver and netty-codec, which the package's classpath leaves out.
                let mut classpath =
                    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:\
                                     /usr/share/java/servlet-api.jar"
                        .to_string();
                if o.secure_port {
                    classpath.push_str(
                        ":/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar",
                    );
                }
                // An ensemble member (server lines in its cfg) runs QuorumPeerMain.
                let main = if o.extra_cfg.iter().any(|l| l.starts_with("server.")) {
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain"
                } else {
                    "org.apache.zookeeper.server.ZooKeeperServerMain"
                };
                cmd.arg("-cp").arg(classpath).arg(main).arg(self.cfg_path());
                cmd
            }
        }
    }

    /// Starts an ensemble of zoocore processes: `voters` participants then `observers`
    /// observers (myids 1, 2, ...), each on its own loopback address with the client port
    /// [`PORT`] and the quorum port [`QUORUM_PORT`] there, and waits until every member
    /// serves. `options.extra_cfg` goes to every member.
    pub fn start_ensemble(voters: usize, observers: usize, options: Options) -> Vec<Server> {
        let hosts = Server::ensemble_hosts(voters + observers);
        Server::start_ensemble_at(&hosts, voters, options, &[])
    }

    /// Free addresses for `n` members, for a test that must know them before they start
    /// (e.g. to name them in certificates).
    pub fn ensemble_hosts(n: usize) -> Vec<Ipv4Addr> {
        (0..n).map(|_| next_free_host()).collect()
    }

    /// [`Server::start_ensemble`] on `hosts` (the first `voters` vote, the rest observe),
    /// with `own[i]` added to member i's zoo.cfg.
    pub fn start_ensemble_at(
        hosts: &[Ipv4Addr],
        voters: usize,
        options: Options,
        own: &[Vec<String>],
    ) -> Vec<Server> {
        let mut servers = Server::spawn_ensemble_at(hosts, voters, options, own);
        for s in &mut servers {
            s.wait_ready();
        }
        servers
    }

    /// [`Server::start_ensemble_at`] without waiting for the members to serve: for a test
    /// where some of them never do.
    pub fn spawn_ensemble_at(
        hosts: &[Ipv4Addr],
        voters: usize,
        options: Options,
        own: &[Vec<String>],
    ) -> Vec<Server> {
        Server::spawn_ensemble_of(Target::Zoocore, hosts, voters, options, own)
    }

    /// [`Server::start_ensemble_at`] of `target` (every member votes but those from
    /// `voters` on): Apache members run QuorumPeerMain.
    pub fn start_ensemble_of(
        target: Target,
        hosts: &[Ipv4Addr],
        voters: usize,
        options: Options,
    ) -> Vec<Server> {
        let mut servers = Server::spawn_ensemble_of(target, hosts, voters, options, &[]);
        for s in &mut servers {
            s.wait_ready();
        }
        servers
    }

    fn spawn_ensemble_of(
        target: Target,
        hosts: &[Ipv4Addr],
        voters: usize,
        options: Options,
        own: &[Vec<String>],
    ) -> Vec<Server> {
        if target == Target::Zoocore {
            zoocore_binary();
        }
        let hosts = hosts.to_vec();
        let mut lines = vec!["zoocore.pinning=false".to_string()];
        for (i, host) in hosts.iter().enumerate() {
            let role = if i < voters {
                "participant"
            } else {
                "observer"
            };
            lines.push(format!(
                "server.{}={host}:{QUORUM_PORT}:{ELECTION_PORT}:{role}",
                i + 1
            ));
        }
        let mut servers = Vec::new();
        for (i, host) in hosts.into_iter().enumerate() {
            let dir = make_temp_dir(host);
            std::fs::write(dir.join("data").join("myid"), format!("{}\n", i + 1))
                .expect("write myid");
            let mut options = options.clone();
            options.extra_cfg.extend(lines.iter().cloned());
            options
                .extra_cfg
                .extend(own.get(i).into_iter().flatten().cloned());
            let mut server = Server::configured(target, options, host, dir);
            server.spawn_process();
            servers.push(server);
        }
        servers
    }

    /// Starts only member `index` (myid `index + 1`) of an ensemble on `hosts`, its zoo.cfg
    /// listing every host (the first `voters` vote), and waits until it serves: a server
    /// joining a running ensemble by reconfig starts with the ensemble and itself.
    pub fn start_ensemble_member(
        target: Target,
        hosts: &[Ipv4Addr],
        voters: usize,
        index: usize,
        options: Options,
    ) -> Server {
        if target == Target::Zoocore {
            zoocore_binary();
        }
        let mut options = options;
        options.extra_cfg.push("zoocore.pinning=false".to_string());
        for (i, host) in hosts.iter().enumerate() {
            let role = if i < voters {
                "participant"
            } else {
                "observer"
            };
            options.extra_cfg.push(format!(
                "server.{}={host}:{QUORUM_PORT}:{ELECTION_PORT}:{role}",
                i + 1
            ));
        }
        let host = hosts[index];
        let dir = make_temp_dir(host);
        std::fs::write(dir.join("data").join("myid"), format!("{}\n", index + 1))
            .expect("write myid");
        let mut server = Server::configured(target, options, host, dir);
        server.spawn();
        server
    }

    /// Whether the process is running (not killed or stopped by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    fn spawn_process(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open server.log");
        let mut cmd = self.command();
        if let Some(cpus) = &self.options.cpu_list {
            let mut pinned = Command::new("taskset");
            pinned
                .arg("-c")
                .arg(cpus)
                .arg(cmd.get_program())
                .args(cmd.get_args());
            cmd = pinned;
        }
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log fd"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut accepted_since: Option<Instant> = None;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "{:?} server exited during startup with {status}\n{}",
                    self.target,
                    self.log_tail()
                );
            }
            match self.try_four_letter("ruok") {
                // Apache answers `imok` a moment before it serves sessions; `srvr` tells.
                Ok(answer) if answer == "imok" => {
                    let srvr = self.try_four_letter("srvr").unwrap_or_default();
                    // Apache binds the secure port after the plain one: a bare connect tells
                    // when it listens (the server logs it as a failed TLS handshake).
                    let secure_up = !self.options.secure_port
                        || TcpStream::connect_timeout(&self.secure_addr(), Duration::from_secs(2))
                            .is_ok();
                    if !srvr.contains("not currently serving") && secure_up {
                        return;
                    }
                }
                // Accepting connections without `imok` counts as ready after a grace period.
                Ok(_) => {
                    let since = *accepted_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(2) {
                        return;
                    }
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                let pid = self.pid().expect("checked running above");
                panic!(
                    "{:?} server on {} not ready within {READY_TIMEOUT:?}; threads (comm, \
                     state, wchan): {}; {}\n{}",
                    self.target,
                    self.connect_string(),
                    thread_report(pid),
                    self.save_backtrace(pid),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes every thread's stack of process `pid` to `hang-backtrace.txt` in the temp dir
    /// (kept, as the test is failing) with gdb, if it is installed; says where, or why not.
    fn save_backtrace(&self, pid: u32) -> String {
        let path = self.dir.join("hang-backtrace.txt");
        let gdb = Command::new("timeout")
            .args(["60", "gdb", "-p", &pid.to_string(), "-batch"])
            .args(["-ex", "thread apply all bt"])
            .stdin(Stdio::null())
            .output();
        match gdb {
            Ok(out) if out.status.success() => match std::fs::write(&path, &out.stdout) {
                Ok(()) => format!("stacks in {}", path.display()),
                Err(e) => format!("stacks not saved: {e}"),
            },
            Ok(out) => format!("no stacks: gdb {}", out.status),
            Err(e) => format!("no stacks: {e}"),
        }
    }

    /// `GET path` on the AdminServer ([`Options::admin`]): (status, headers, body).
    pub fn admin_get(&self, path: &str) -> HttpAnswer {
        http_get(SocketAddr::from((self.host, ADMIN_PORT)), path)
    }

    /// [`Server::admin_get`] with request headers (e.g. `Authorization`).
    pub fn admin_get_with(&self, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
        http_get_with(SocketAddr::from((self.host, ADMIN_PORT)), path, headers)
    }

    /// `GET /metrics` on the exporter ([`Options::metrics`]).
    pub fn metrics_get(&self) -> HttpAnswer {
        http_get(SocketAddr::from((self.host, METRICS_PORT)), "/metrics")
    }

    /// Sends a four-letter word and returns the whole answer (the server closes after it).
    pub fn four_letter(&self, word: &str) -> String {
        self.try_four_letter(word)
            .unwrap_or_else(|e| panic!("four-letter word {word}: {e}"))
    }

    /// Sends a four-letter word; an error if the server does not answer within a few seconds.
    pub fn try_four_letter(&self, word: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(word.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    /// Stops the process: SIGTERM, then SIGKILL after a grace period. Data stays on disk.
    pub fn stop(&mut self) {
        self.frozen = false;
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        self.frozen = false;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again (after [`Server::kill9`] or [`Server::stop`]) on the same
    /// address, cfg and data dir, and waits until it serves.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Freezes the process with SIGSTOP: its sockets stay open but nothing answers, as with
    /// a partition or a long pause. [`Server::thaw`] resumes it.
    ///
    /// Returns once every thread of the process is stopped. `kill` only queues the signal:
    /// one thread has to be scheduled to take it and stop the others, and until then the
    /// rest keep running. On a loaded machine that took long enough for a frozen leader to
    /// commit another write after `kill -STOP` had returned.
    pub fn freeze(&mut self) {
        self.signal("-STOP");
        self.frozen = true;
        let pid = self.pid().expect("server running");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let states = thread_states(pid);
            if !states.is_empty() && states.iter().all(|&s| s == 'T') {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pid {pid} not stopped within {READY_TIMEOUT:?} of SIGSTOP: thread states {states:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Resumes a process frozen by [`Server::freeze`] with SIGCONT.
    pub fn thaw(&mut self) {
        self.signal("-CONT");
        self.frozen = false;
    }

    /// Whether the process is stopped by [`Server::freeze`] (it then answers nothing).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("server running");
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid}: {status}");
    }

    /// Removes everything in the data dir but `myid`, as a replaced disk would; only while
    /// the process is not running.
    pub fn wipe_data(&self) {
        assert!(!self.is_running(), "wipe the data of a stopped server only");
        let data = self.dir.join("data");
        for entry in std::fs::read_dir(&data).expect("read data dir") {
            let path = entry.expect("data dir entry").path();
            if path.file_name().is_some_and(|n| n == "myid") {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("remove data");
            } else {
                std::fs::remove_file(&path).expect("remove data");
            }
        }
    }

    /// The server's log so far (every run of the process appends to it).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops and starts again on the same address, cfg and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "---- tail of {} ----\n{tail}\n----",
            self.log_path().display()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL ends a frozen (SIGSTOPped) process too.
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "{:?} server {} failed test\n{}",
                self.target,
                self.connect_string(),
                self.log_tail()
            );
            eprintln!("temp dir kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The state letter (`R`, `S`, `T`, ...) of each thread of process `pid`, from
/// `/proc/<pid>/task/*/stat`; a thread that exits while being read is skipped.
fn thread_states(pid: u32) -> Vec<char> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // `pid (comm) S ...`: comm may hold spaces and parentheses, the state follows
            // the last `)`.
            stat.rsplit_once(')')?.1.trim_start().chars().next()
        })
        .collect()
}

/// `comm state wchan` of each thread of process `pid`, for the message of a server that does
/// not start: where each thread waits in the kernel.
fn thread_report(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("pid {pid} gone");
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let read = |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
        let stat = read("stat");
        let state = stat
            .rsplit_once(')')
            .map_or("?", |(_, rest)| rest.trim_start());
        out.push(format!(
            "{} {} {}",
            read("comm").trim(),
            state.chars().next().unwrap_or('?'),
            read("wchan").trim()
        ));
    }
    out.join(", ")
}

/// `target/<profile>/zoocore`, found from this test executable at `target/<profile>/deps/x`.
/// The zoocore binary of this build (target/<profile>/zoocore).
pub fn zoocore_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test exe in target/<profile>/deps");
    let bin = profile_dir.join("zoocore");
    assert!(
        bin.exists(),
        "zoocore binary not found at {}: build it first (`cargo build -p zoocore-server` with the \
         same CARGO_TARGET_DIR and profile), or set ZOOCORE_E2E_TARGET=apache",
        bin.display()
    );
    bin
}

/// Parses monitoring output into key/value pairs the way scripts do: `mntr` lines are
/// `key<TAB>value`, `srvr`/`stat` lines are `Key: value`, `conf`/`envi` lines are `key=value`.
/// Lines without a separator are skipped.
pub fn parse_key_values(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let split = line
            .split_once('\t')
            .or_else(|| line.split_once(": "))
            .or_else(|| line.split_once('='));
        if let Some((key, value)) = split {
            map.insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    map
}

/// Runs one test body on a current-thread tokio runtime with a spawner the
/// `zookeeper-client` crate can use, bounded by [`TEST_TIMEOUT`], and returns what it returns.
pub fn run<T, F: Future<Output = T>>(body: F) -> T {
    run_within(TEST_TIMEOUT, body)
}

/// [`run`] with another whole-test bound.
pub fn run_within<T, F: Future<Output = T>>(limit: Duration, body: F) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let spawner = TokioSpawner(runtime.handle().clone());
    // The crate spawns its session task through `spawns-core`, which needs a spawner in scope
    // unless its `tokio` feature is on; entering one here keeps the dependency set unchanged.
    let _scope = spawns_core::enter(&spawner);
    runtime.block_on(async {
        tokio::time::timeout(limit, body)
            .await
            .unwrap_or_else(|_| panic!("test did not finish within {limit:?}"))
    })
}

struct TokioSpawner(tokio::runtime::Handle);

impl spawns_core::Spawn for TokioSpawner {
    fn spawn(&self, task: spawns_core::Task) {
        self.0.spawn(Box::into_pin(task.future));
    }
}

/// Awaits `fut` for at most `limit`, panicking with `what` on timeout.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Asserts that `fut` does not complete within `quiet`, e.g. a watch that must not fire.
pub async fn assert_quiet<T: std::fmt::Debug>(
    quiet: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) {
    if let Ok(value) = tokio::time::timeout(quiet, fut).await {
        panic!("{what}: expected nothing within {quiet:?}, got {value:?}");
    }
}

/// Connects a `zookeeper-client` session to `server` with a 10 s session timeout.
pub async fn connect(server: &Server) -> zookeeper_client::Client {
    connect_with(server, Duration::from_secs(10)).await
}

/// Connects with an explicit session timeout.
pub async fn connect_with(server: &Server, session_timeout: Duration) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(session_timeout)
        .connect(&server.connect_string())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "connect to {}: {e}\n{}",
                server.connect_string(),
                server.log_tail()
            )
        })
}

/// Persistent, open ACL: the options most scenario steps use.
pub fn persistent() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

/// Options for `mode` with the open ACL.
pub fn mode(mode: zookeeper_client::CreateMode) -> zookeeper_client::CreateOptions<'static> {
    mode.with_acls(zookeeper_client::Acls::anyone_all())
}

/// Milliseconds since the Unix epoch, to bound `ctime`/`mtime`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// An HTTP answer: status code, headers (names lowercased), body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced) and as bytes.
    pub body: String,
    pub bytes: Vec<u8>,
}

/// A minimal HTTP/1.0 GET (the server closes the connection after its answer), enough for
/// the admin and metrics endpoints; panics if the server does not answer within 10 s.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpAnswer {
    http_get_with(addr, path, &[])
}

/// [`http_get`] with request headers.
pub fn http_get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read answer of {addr}{path}: {e}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let bytes = raw[end + 4..].to_vec();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body,
        bytes,
    }
}
