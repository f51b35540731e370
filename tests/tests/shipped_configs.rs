//! The README's steps with the shipped configs: configs/ensemble-3+2/server1..5.cfg, each
//! started as `zoocore configs/ensemble-3+2/serverN.cfg` from a directory holding
//! `data/ensemble-3+2/N/myid`, form an ensemble of 3 voters (one leader) and 2 observers that a
//! real client writes through and reads from on every member. The files are used as shipped
//! except their address: 127.0.0.1 becomes this test's own loopback address, so that parallel
//! tests do not collide (every port stays as shipped).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zoocore_e2e::{free_host, parse_key_values, persistent, run, zoocore_binary};

const MEMBERS: usize = 5;

/// The members' processes, killed when the test ends however it ends.
struct Members(Vec<Child>);

impl Drop for Members {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn shipped(n: usize) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs/ensemble-3+2")
        .join(format!("server{n}.cfg"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `clientPort` of a config.
fn client_port(cfg: &str) -> u16 {
    parse_key_values(cfg)
        .get("clientPort")
        .and_then(|p| p.parse().ok())
        .expect("clientPort")
}

fn mode(addr: SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    parse_key_values(&out).get("Mode").cloned()
}

#[test]
fn the_shipped_three_voters_and_two_observers_form_an_ensemble() {
    let host: Ipv4Addr = free_host();
    let dir: PathBuf = std::env::temp_dir().join(format!("zoocore-e2e-shipped-{host}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut addrs = Vec::new();
    let mut members = Members(Vec::new());
    for n in 1..=MEMBERS {
        let cfg = shipped(n).replace("127.0.0.1", &host.to_string());
        let cfg_path = dir.join(format!("server{n}.cfg"));
        let data = dir.join(format!("data/ensemble-3+2/{n}"));
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::write(data.join("myid"), format!("{n}\n")).expect("myid");
        std::fs::write(&cfg_path, &cfg).expect("cfg");
        addrs.push(SocketAddr::from((host, client_port(&cfg))));
        let log = std::fs::File::create(dir.join(format!("{n}.log"))).expect("log");
        let child = Command::new(zoocore_binary())
            .arg(&cfg_path)
            .current_dir(&dir) // dataDir is relative, as in the README
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start zoocore");
        members.0.push(child);
    }

    // One leader, two followers among the voters; the last two observe.
    let deadline = Instant::now() + Duration::from_secs(60);
    let modes = loop {
        let modes: Vec<Option<String>> = addrs.iter().map(|a| mode(*a)).collect();
        let voters: Vec<&str> = modes[..3]
            .iter()
            .map(|m| m.as_deref().unwrap_or(""))
            .collect();
        if voters.iter().filter(|m| **m == "leader").count() == 1
            && voters.iter().filter(|m| **m == "follower").count() == 2
            && modes[3..].iter().all(|m| m.as_deref() == Some("observer"))
        {
            break modes;
        }
        assert!(
            Instant::now() < deadline,
            "no 3+2 ensemble within 60 s: {modes:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("modes: {modes:?}");

    run(async {
        // Write through an observer (forwarded to the leader), read it back everywhere.
        let observer = zookeeper_client::Client::connect(&addrs[3].to_string())
            .await
            .expect("connect to an observer");
        observer
            .create("/shipped", b"3+2", &persistent())
            .await
            .expect("create through an observer");
        for addr in &addrs {
            let zk = zookeeper_client::Client::connect(&addr.to_string())
                .await
                .expect("connect");
            zk.sync("/").await.expect("sync");
            let (data, _) = zk.get_data("/shipped").await.expect("read back");
            assert_eq!(data, b"3+2", "on {addr}");
        }
    });
    drop(members);
    let _ = std::fs::remove_dir_all(&dir);
}
