//! Operations surfaces on real processes (issue 11): zoocore started from the zoo.cfg forms
//! an operator copies from ZooKeeper (the official Docker image's `server.1=...;port` line
//! with no clientPort), SIGTERM ending the process with status 0, and `zoocore status`
//! printing what zkServer.sh status prints.
//!
//! These tests start their own processes (the configs differ from the harness's), each on a
//! loopback address from [`free_host`], and kill them when the test ends however it ends.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use zoocore_e2e::{free_host, parse_key_values, persistent, run, zoocore_binary, PORT};

/// One zoocore process with its temp dir; killed on drop.
struct Proc {
    child: Option<Child>,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Proc {
    /// Starts `zoocore zoo.cfg` in a fresh temp dir for `host`, the cfg written from `cfg`.
    fn start(host: Ipv4Addr, cfg: &str) -> Proc {
        let dir = std::env::temp_dir().join(format!("zoocore-e2e-ops-{host}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        std::fs::write(dir.join("zoo.cfg"), cfg).expect("zoo.cfg");
        let mut proc = Proc {
            child: None,
            dir,
            addr: SocketAddr::from((host, PORT)),
        };
        proc.spawn();
        proc
    }

    /// Starts the process (again) on its dir, cfg and data, and waits until it serves.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("log");
        let child = Command::new(zoocore_binary())
            .arg(self.dir.join("zoo.cfg"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start zoocore");
        self.child = Some(child);
        self.wait_serving();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn wait_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while four_letter(self.addr, "ruok").as_deref() != Some("imok") {
            assert!(
                Instant::now() < deadline,
                "zoocore on {} not serving within 30 s\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` and waits (bounded) for the exit status.
    fn signal_and_wait(&mut self, sig: &str) -> ExitStatus {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        self.wait_exit(sig)
    }

    /// Waits (bounded) for the process to exit after `why`, and returns its status.
    fn wait_exit(&mut self, why: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sig = why;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("zoocore did not exit within 20 s of {sig}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("temp dir kept: {}\n{}", self.dir.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn four_letter(addr: SocketAddr, word: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The zoo.cfg the official `zookeeper` image writes for a standalone container (its
/// docker-entrypoint.sh), with the test's loopback address in the client part.
fn docker_image_cfg(dir: &Path, host: Ipv4Addr) -> String {
    format!(
        "dataDir={}\ndataLogDir={}\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
         autopurge.snapRetainCount=3\nautopurge.purgeInterval=0\nmaxClientCnxns=60\n\
         standaloneEnabled=true\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
         zoocore.pinning=false\npreAllocSize=4096\n\
         server.1={host}:{}:{};{host}:{PORT}\n",
        dir.join("data").display(),
        dir.join("data").display(),
        PORT + 1,
        PORT + 2,
    )
}

#[test]
fn the_docker_image_config_serves_on_its_server_line_client_port() {
    let host = free_host();
    let dir = std::env::temp_dir().join(format!("zoocore-e2e-ops-{host}"));
    let server = Proc::start(host, &docker_image_cfg(&dir, host));
    let srvr = parse_key_values(&four_letter(server.addr, "srvr").expect("srvr"));
    assert_eq!(srvr.get("Mode").map(String::as_str), Some("standalone"));
    let conf = parse_key_values(&four_letter(server.addr, "conf").expect("conf"));
    assert_eq!(conf.get("clientPort"), Some(&PORT.to_string()));
    run(async {
        let zk = zookeeper_client::Client::connect(&server.addr.to_string())
            .await
            .expect("connect on the server line's client port");
        zk.create("/docker", b"cfg", &persistent())
            .await
            .expect("create");
        assert_eq!(zk.get_data("/docker").await.expect("read").0, b"cfg");
    });
}

/// `zoocore status <cfg>`: (stdout, exit code).
fn status(cfg: &Path) -> (String, Option<i32>) {
    let out = Command::new(zoocore_binary())
        .arg("status")
        .arg(cfg)
        .stdin(Stdio::null())
        .output()
        .expect("run zoocore status");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn sigterm_stops_cleanly_with_status_0_and_status_follows_the_server() {
    let host = free_host();
    let dir = std::env::temp_dir().join(format!("zoocore-e2e-ops-{host}"));
    let mut server = Proc::start(host, &docker_image_cfg(&dir, host));
    let cfg = server.dir.join("zoo.cfg");

    let (out, code) = status(&cfg);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out,
        format!(
            "Client port found: {PORT}. Client address: {host}. Client SSL: false.\n\
             Mode: standalone\n"
        )
    );

    run(async {
        let zk = zookeeper_client::Client::connect(&server.addr.to_string())
            .await
            .expect("connect");
        zk.create("/kept", b"before stop", &persistent())
            .await
            .expect("create");
    });
    let exit = server.signal_and_wait("-TERM");
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM exit: {exit}\n{}",
        server.log()
    );
    assert!(
        server.log().contains("SIGTERM: stopping"),
        "{}",
        server.log()
    );

    // zkServer.sh's answer for a server that is down, and its exit code.
    let (out, code) = status(&cfg);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.ends_with("Error contacting service. It is probably not running.\n"),
        "{out}"
    );

    // Restarted on the same data: the acknowledged write is there; SIGINT stops it too.
    server.spawn();
    run(async {
        let zk = zookeeper_client::Client::connect(&server.addr.to_string())
            .await
            .expect("connect after restart");
        assert_eq!(zk.get_data("/kept").await.expect("read").0, b"before stop");
    });
    let exit = server.signal_and_wait("-INT");
    assert_eq!(exit.code(), Some(0), "SIGINT exit: {exit}");
}

#[test]
fn status_reports_leader_and_follower_modes_of_an_ensemble() {
    let servers = zoocore_e2e::Server::start_ensemble(3, 0, zoocore_e2e::Options::default());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let modes: Vec<(String, Option<i32>)> = servers
            .iter()
            .map(|s| status(&s.dir().join("zoo.cfg")))
            .collect();
        let lines: Vec<&str> = modes
            .iter()
            .filter(|(_, code)| *code == Some(0))
            .filter_map(|(out, _)| out.lines().last())
            .collect();
        if lines.iter().filter(|l| **l == "Mode: leader").count() == 1
            && lines.iter().filter(|l| **l == "Mode: follower").count() == 2
        {
            break;
        }
        assert!(Instant::now() < deadline, "modes: {modes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM in the middle of writes: the process exits 0, and after a restart every write
/// that was acknowledged before the stop is there.
#[test]
fn sigterm_under_writes_keeps_every_acknowledged_write() {
    use std::sync::{Arc, Mutex};
    let host = free_host();
    let dir = std::env::temp_dir().join(format!("zoocore-e2e-ops-{host}"));
    let mut server = Proc::start(host, &docker_image_cfg(&dir, host));
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let pid = server.child.as_ref().expect("running").id();
    run(async {
        let zk = zookeeper_client::Client::connect(&server.addr.to_string())
            .await
            .expect("connect");
        let mut writers = Vec::new();
        for w in 0..8 {
            let (zk, acked) = (zk.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let path = format!("/w{w}-{i}");
                    match zk.create(&path, b"x", &persistent()).await {
                        Ok(_) => acked.lock().expect("lock").push(path),
                        Err(_) => break,
                    }
                }
            }));
        }
        // Let writes flow, then stop the server under them.
        while acked.lock().expect("lock").len() < 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(killed.success());
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
        }
    });
    let exit = server.wait_exit("SIGTERM under writes");
    assert_eq!(exit.code(), Some(0), "{exit}\n{}", server.log());
    let acked = acked.lock().expect("lock").clone();
    server.spawn();
    run(async {
        let zk = zookeeper_client::Client::connect(&server.addr.to_string())
            .await
            .expect("connect after restart");
        for path in &acked {
            assert!(
                zk.check_stat(path).await.expect("exists").is_some(),
                "acknowledged {path} lost ({} acknowledged)",
                acked.len()
            );
        }
    });
}
