//! Read-only mode (`readonlymode.enabled`) on a real 3-voter zoocore ensemble, with clients
//! nobody here wrote: the `zookeeper-client` crate, kazoo (Python) and zkCli.sh's Java
//! client (`-r`).
//!
//! Two members are killed; the survivor has no quorum, and after ZooKeeper's grace
//! (max(2000 ms, tickTime)) it serves read-only: `isro` answers `ro`, srvr says
//! `Mode: read-only`, a client that allows read-only reads the last data and gets
//! NOTREADONLY for writes, a client that does not is refused. When the two come back, the
//! survivor follows again, closes its read-only connections, and zkCli's client reconnects
//! read-write by itself and writes.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zoocore_e2e::ensemble::{self, await_settled, eventually, mode_of, run, synced_client, WAIT};
use zoocore_e2e::{persistent, zkcli, Server};

/// zkCli.sh fed line by line, its output gathered as it comes.
struct Cli {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Cli {
    fn start(args: &[&str], log_dir: &Path) -> Cli {
        zkcli::assert_installed();
        let mut child = Command::new(zkcli::ZKCLI)
            .args(args)
            .env("ZOO_LOG_DIR", log_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zkCli.sh");
        let output = Arc::new(Mutex::new(String::new()));
        for mut pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Cli { child, output }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output holds `needle`, sending `line` again every second while it
    /// does not (a command given while the client reconnects fails; zkCli goes on).
    fn until(&mut self, needle: &str, line: Option<&str>) {
        let deadline = Instant::now() + WAIT;
        let mut sent = None::<Instant>;
        while !self.text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "zkCli output lacks {needle:?} after {WAIT:?}:\n{}",
                self.text()
            );
            if let Some(line) = line {
                if sent.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    self.send(line);
                    sent = Some(Instant::now());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_member_without_quorum_serves_read_only_clients_and_they_upgrade_when_it_returns() {
    let mut options = ensemble::options();
    options.extra_cfg.push("readonlymode.enabled=true".into());
    let mut servers = Server::start_ensemble(3, 0, options);
    let leader = run(await_settled(&servers));
    let survivor = (0..3).find(|&i| i != leader).unwrap();
    run(async {
        let zk = synced_client(&servers[leader]).await;
        zk.create("/ro", b"before", &persistent()).await.unwrap();
        let zk = synced_client(&servers[survivor]).await;
        assert_eq!(zk.get_data("/ro").await.unwrap().0, b"before");
    });
    for (i, server) in servers.iter_mut().enumerate() {
        if i != survivor {
            server.kill9();
        }
    }
    let started_looking = Instant::now();
    run(eventually("the survivor read-only", || {
        let isro = servers[survivor].try_four_letter("isro");
        std::future::ready(match isro {
            Ok(answer) if answer == "ro" => Ok(()),
            other => Err(format!("isro {other:?}")),
        })
    }));
    assert!(
        started_looking.elapsed() >= Duration::from_millis(2000),
        "read-only before the grace"
    );
    assert_eq!(mode_of(&servers[survivor]), "read-only");

    let addr = servers[survivor].connect_string();
    run(async {
        let ro = zookeeper_client::Client::connector()
            .with_readonly(true)
            .connect(&addr)
            .await
            .expect("a read-only session");
        assert_eq!(ro.get_data("/ro").await.unwrap().0, b"before");
        assert_eq!(
            ro.create("/written", b"", &persistent()).await.unwrap_err(),
            zookeeper_client::Error::NotReadOnly
        );
        assert_eq!(
            ro.set_data("/ro", b"x", None).await.unwrap_err(),
            zookeeper_client::Error::NotReadOnly
        );
        // A client that does not allow read-only gets no session here.
        let rw = tokio::time::timeout(
            Duration::from_secs(3),
            zookeeper_client::Client::connector()
                .with_session_timeout(Duration::from_secs(2))
                .connect(&addr),
        )
        .await;
        assert!(
            !matches!(rw, Ok(Ok(_))),
            "a read-write session from a member without quorum"
        );
    });

    // kazoo (Python) with read_only=True: reads, and NotReadOnlyCallError for a write.
    let out = zoocore_e2e::kazoo::run(&["readonly", &addr, "/ro"]);
    assert!(
        out.contains("read b'before'") && out.ends_with("ok\n"),
        "{out}"
    );

    // zkCli's Java client in read-only mode, kept open across the return of the quorum.
    let mut cli = Cli::start(&["-r", "-server", &addr], servers[survivor].dir());
    cli.until("ConnectedReadOnly", None);
    cli.send("get /ro");
    cli.until("before", None);
    cli.send("create /from-cli x");
    cli.until("Not a read-only call", None);

    for (i, server) in servers.iter_mut().enumerate() {
        if i != survivor {
            server.start_again();
        }
    }
    run(await_settled(&servers));
    assert_ne!(mode_of(&servers[survivor]), "read-only");
    assert_eq!(servers[survivor].four_letter("isro"), "rw");
    // The client was moved off the read-only session; it reconnects read-write by itself.
    cli.until("Created /after", Some("create /after y"));
    // Connected read-write this time: the answer's readOnly flag says what the server is.
    let text = cli.text();
    let after = &text[text.find("Not a read-only call").unwrap()..];
    assert!(after.contains("state:SyncConnected"), "{text}");
    assert!(!after.contains("ConnectedReadOnly"), "{text}");
    run(async {
        let zk = synced_client(&servers[leader]).await;
        assert_eq!(zk.get_data("/after").await.unwrap().0, b"y");
        assert!(zk.check_stat("/from-cli").await.unwrap().is_none());
    });
}
