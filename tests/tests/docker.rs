//! The container entrypoint (configs/docker/docker-entrypoint.sh) run directly, without
//! Docker (there is no Docker engine where the tests run; the image build itself is not
//! tested): the zoo.cfg and myid it writes from the official `zookeeper` image's ZOO_*
//! variables, that it keeps what exists, that it execs the command, and that zoocore serves
//! from what it wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zoocore_e2e::{free_host, persistent, run, zoocore_binary, PORT};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/docker/docker-entrypoint.sh")
}

/// A fresh directory standing for the container's filesystem.
fn root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoocore-docker-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs the entrypoint with `vars` (the ZOO_* directories under `root`) and `args` as the
/// command; returns its stdout.
fn entrypoint(root: &Path, vars: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).args(args).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    for (dir, var) in [
        ("conf", "ZOO_CONF_DIR"),
        ("data", "ZOO_DATA_DIR"),
        ("datalog", "ZOO_DATA_LOG_DIR"),
        ("logs", "ZOO_LOG_DIR"),
    ] {
        cmd.env(var, root.join(dir));
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run the entrypoint");
    assert!(
        out.status.success(),
        "entrypoint failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A server process, killed when the test ends however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_defaults_are_the_official_images() {
    let root = root("defaults");
    let out = entrypoint(&root, &[], &["echo", "started", "with", "args"]);
    // The command is exec'd with its arguments.
    assert_eq!(out, "started with args\n");
    let cfg = read(root.join("conf/zoo.cfg"));
    assert_eq!(
        cfg,
        format!(
            "dataDir={0}/data\ndataLogDir={0}/datalog\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n\
             autopurge.snapRetainCount=3\nautopurge.purgeInterval=0\nmaxClientCnxns=60\n\
             standaloneEnabled=true\nadmin.enableServer=true\n\
             server.1=localhost:2888:3888;2181\n",
            root.display()
        )
    );
    assert_eq!(read(root.join("data/myid")), "1\n");
    for dir in ["datalog", "logs"] {
        assert!(root.join(dir).is_dir(), "{dir} not created");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn every_variable_lands_in_zoo_cfg_and_existing_files_are_kept() {
    let root = root("vars");
    let vars = [
        ("ZOO_MY_ID", "3"),
        (
            "ZOO_SERVERS",
            "server.1=zoo1:2888:3888;2181 server.2=zoo2:2888:3888;2181 \
             server.3=zoo3:2888:3888;2181 server.4=zoo4:2888:3888:observer;2181",
        ),
        ("ZOO_TICK_TIME", "500"),
        ("ZOO_INIT_LIMIT", "20"),
        ("ZOO_SYNC_LIMIT", "4"),
        ("ZOO_MAX_CLIENT_CNXNS", "0"),
        ("ZOO_AUTOPURGE_PURGEINTERVAL", "24"),
        ("ZOO_AUTOPURGE_SNAPRETAINCOUNT", "5"),
        ("ZOO_STANDALONE_ENABLED", "false"),
        ("ZOO_ADMINSERVER_ENABLED", "false"),
        ("ZOO_4LW_COMMANDS_WHITELIST", "ruok,srvr,mntr"),
        (
            "ZOO_CFG_EXTRA",
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider \
             metricsProvider.httpPort=7000",
        ),
    ];
    entrypoint(&root, &vars, &["true"]);
    let cfg = read(root.join("conf/zoo.cfg"));
    let keys: BTreeMap<&str, &str> = cfg.lines().filter_map(|l| l.split_once('=')).collect();
    for (key, value) in [
        ("tickTime", "500"),
        ("initLimit", "20"),
        ("syncLimit", "4"),
        ("maxClientCnxns", "0"),
        ("autopurge.purgeInterval", "24"),
        ("autopurge.snapRetainCount", "5"),
        ("standaloneEnabled", "false"),
        ("admin.enableServer", "false"),
        ("4lw.commands.whitelist", "ruok,srvr,mntr"),
        ("server.3", "zoo3:2888:3888;2181"),
        ("server.4", "zoo4:2888:3888:observer;2181"),
        ("metricsProvider.httpPort", "7000"),
    ] {
        assert_eq!(keys.get(key), Some(&value), "{key} in\n{cfg}");
    }
    assert_eq!(cfg.lines().filter(|l| l.starts_with("server.")).count(), 4);
    assert_eq!(read(root.join("data/myid")), "3\n");

    // A second start (a restarted container, or a mounted zoo.cfg) keeps both files.
    entrypoint(
        &root,
        &[("ZOO_MY_ID", "9"), ("ZOO_TICK_TIME", "9999")],
        &["true"],
    );
    assert_eq!(read(root.join("conf/zoo.cfg")), cfg);
    assert_eq!(read(root.join("data/myid")), "3\n");
    let _ = std::fs::remove_dir_all(&root);
}

/// The zoo.cfg the entrypoint writes for a standalone container starts zoocore, which serves
/// on the client port of its `server.1` line (the test's loopback address instead of
/// every interface).
#[test]
fn zoocore_serves_from_the_written_config() {
    let root = root("serve");
    let host = free_host();
    let server = format!("server.1={host}:{}:{};{host}:{PORT}", PORT + 1, PORT + 2);
    entrypoint(
        &root,
        &[
            ("ZOO_SERVERS", server.as_str()),
            ("ZOO_ADMINSERVER_ENABLED", "false"),
            ("ZOO_TICK_TIME", "200"),
            ("ZOO_CFG_EXTRA", "zoocore.pinning=false preAllocSize=4096"),
        ],
        &["true"],
    );
    let log = std::fs::File::create(root.join("server.log")).expect("log");
    let child = Command::new(zoocore_binary())
        .arg(root.join("conf/zoo.cfg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start zoocore");
    let child = Killed(child);
    let addr = std::net::SocketAddr::from((host, PORT));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let out = Command::new(zoocore_binary())
            .arg("status")
            .arg(root.join("conf/zoo.cfg"))
            .output()
            .expect("zoocore status");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if Instant::now() > deadline {
            panic!("not serving within 30 s\n{}", read(root.join("server.log")));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.ends_with("Mode: standalone\n"), "{status}");
    run(async {
        let zk = zookeeper_client::Client::connect(&addr.to_string())
            .await
            .expect("connect");
        zk.create("/from-docker-cfg", b"", &persistent())
            .await
            .expect("create");
    });
    drop(child);
    // The data went where ZOO_DATA_LOG_DIR says.
    let logs = std::fs::read_dir(root.join("datalog"))
        .expect("datalog")
        .filter_map(Result::ok)
        .count();
    assert!(logs > 0, "nothing written in datalog");
    let _ = std::fs::remove_dir_all(&root);
}
