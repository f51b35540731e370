//! Proves TLS on the secure client port (`secureClientPort`) against real clients nobody here
//! wrote: the `zookeeper-client` crate with its `tls` feature (rustls), Apache's zkCli.sh over
//! Netty with ZooKeeper's `zookeeper.ssl.*` PEM properties, and `openssl s_client` for a
//! four-letter word. Each test makes its own CA, a server certificate naming the server's
//! loopback address, and client certificates with rcgen, so nothing is shipped.
//!
//! Asserted: create/get over TLS, four-letter words over TLS, `ssl.clientAuth=need` refusing a
//! client without a certificate and `want` serving it, an `x509:<subject>` ACL granting the
//! certificate holder and denying another, `auth` ACLs taking the x509 id, the configured
//! `X509AuthenticationProvider.superUser` certificate passing every ACL, new certificate files
//! taken without a restart (`client.certReload`, zoocore only), TLS and plain clients on one
//! port (`client.portUnification`), a plain TCP client
//! on the secure port closed with a logged reason while the server keeps serving, and a bad
//! key file stopping start-up with its name. The same tests run against Apache ZooKeeper 3.8
//! (`ZOOCORE_E2E_TARGET=apache`), which the harness starts with its Netty factory.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use zoocore_e2e::*;
use zookeeper_client::{Acl, AuthId, Client, CreateMode, Error, Permission, TlsOptions};

/// Debian's zookeeper.jar names only some of the Netty jars its TLS client needs; a later
/// `-cp` in CLIENT_JVMFLAGS replaces zkCli.sh's own.
const NETTY_MISSING_JARS: &str =
    "/usr/share/java/netty-resolver.jar:/usr/share/java/netty-codec.jar";
const ALICE: &str = "CN=alice,O=zoocore";

/// A test's CA with the server's and the clients' PEM files, in a directory removed on drop.
struct Pki {
    dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

/// A client certificate: its PEM parts, and one file with both (ZooKeeper's PEM key store).
struct Identity {
    cert_pem: String,
    key_pem: String,
    store: PathBuf,
}

impl Pki {
    /// A CA, and a server certificate for `host` in `server.pem` (key and chain).
    fn new(host: Ipv4Addr) -> Pki {
        Pki::new_named(host, "a")
    }

    /// [`Pki::new`] in a directory of its own for each `label`.
    fn new_named(host: Ipv4Addr, label: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("zoocore-tls-{}-{host}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn(&[(DnType::CommonName, "zoocore test CA")]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let pki = Pki { dir, ca, ca_key };
        let (cert, key) = pki.issue(
            vec![host.to_string()],
            &[(DnType::CommonName, "zoocore server")],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        std::fs::write(pki.dir.join("server.pem"), format!("{key}{cert}")).unwrap();
        pki
    }

    /// A client certificate whose subject is `O=<org>, CN=<cn>` in DER order, which
    /// RFC 2253 writes `CN=<cn>,O=<org>`.
    fn client(&self, cn: &str, org: &str) -> Identity {
        let (cert_pem, key_pem) = self.issue(
            Vec::new(),
            &[(DnType::OrganizationName, org), (DnType::CommonName, cn)],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let store = self.dir.join(format!("{cn}.pem"));
        std::fs::write(&store, format!("{key_pem}{cert_pem}")).unwrap();
        Identity {
            cert_pem,
            key_pem,
            store,
        }
    }

    fn issue(
        &self,
        names: Vec<String>,
        subject: &[(DnType, &str)],
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name = dn(subject);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// zoo.cfg lines for the secure port with `ssl.clientAuth=<client_auth>`.
    fn server_cfg(&self, client_auth: &str) -> Vec<String> {
        vec![
            format!(
                "ssl.keyStore.location={}",
                self.dir.join("server.pem").display()
            ),
            "ssl.keyStore.type=PEM".into(),
            format!("ssl.trustStore.location={}", self.ca_path().display()),
            "ssl.trustStore.type=PEM".into(),
            format!("ssl.clientAuth={client_auth}"),
        ]
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dn(entries: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in entries {
        dn.push(ty.clone(), *value);
    }
    dn
}

/// A server of the suite's target with the secure port, its certificate naming its address.
fn start_secure(client_auth: &str) -> (Server, Pki) {
    start_secure_with(client_auth, &[])
}

/// [`start_secure`] with more zoo.cfg lines.
fn start_secure_with(client_auth: &str, extra: &[&str]) -> (Server, Pki) {
    let host = free_host();
    let pki = Pki::new(host);
    let mut extra_cfg = pki.server_cfg(client_auth);
    extra_cfg.extend(extra.iter().map(|line| line.to_string()));
    let options = Options {
        secure_port: true,
        host: Some(host),
        extra_cfg,
        ..Options::default()
    };
    (Server::start_with(Target::from_env(), options), pki)
}

fn tls_options(pki: &Pki, identity: Option<&Identity>) -> TlsOptions {
    let options = TlsOptions::new().with_pem_ca(&pki.ca_pem()).unwrap();
    match identity {
        Some(id) => options
            .with_pem_identity(&id.cert_pem, &id.key_pem)
            .unwrap(),
        None => options,
    }
}

async fn try_connect_tls(
    server: &Server,
    pki: &Pki,
    identity: Option<&Identity>,
) -> Result<Client, Error> {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
        .with_fail_eagerly()
        .with_tls(tls_options(pki, identity))
        .secure_connect(&server.secure_connect_string())
        .await
}

async fn connect_tls(server: &Server, pki: &Pki, identity: Option<&Identity>) -> Client {
    try_connect_tls(server, pki, identity)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "TLS connect to {}: {e}\n{}",
                server.secure_connect_string(),
                server.log_tail()
            )
        })
}

/// Runs `commands` through zkCli.sh over TLS (Netty) with `identity` as its key store.
fn zkcli_tls(server: &Server, pki: &Pki, identity: &Identity, commands: &str) -> String {
    let flags = [
        format!("-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:{NETTY_MISSING_JARS}"),
        "-Dzookeeper.client.secure=true".to_string(),
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".into(),
        format!(
            "-Dzookeeper.ssl.keyStore.location={}",
            identity.store.display()
        ),
        "-Dzookeeper.ssl.keyStore.type=PEM".into(),
        format!(
            "-Dzookeeper.ssl.trustStore.location={}",
            pki.ca_path().display()
        ),
        "-Dzookeeper.ssl.trustStore.type=PEM".into(),
    ];
    zkcli::run_with(
        &server.secure_connect_string(),
        server.dir(),
        &[("CLIENT_JVMFLAGS", flags.join(" "))],
        commands,
    )
    .text()
}

/// Sends a four-letter word over TLS with `openssl s_client`, presenting `identity`.
fn four_letter_tls(server: &Server, pki: &Pki, identity: &Identity, word: &str) -> String {
    let mut child = Command::new("timeout")
        .arg("20")
        .arg("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(server.secure_connect_string())
        .arg("-CAfile")
        .arg(pki.ca_path())
        .arg("-cert")
        .arg(&identity.store)
        .arg("-key")
        .arg(&identity.store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openssl s_client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(word.as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("openssl output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_contains(text: &str, needle: &str) {
    assert!(text.contains(needle), "output lacks {needle:?}:\n{text}");
}

#[test]
fn create_and_get_over_tls_from_rust_java_and_openssl() {
    let (server, pki) = start_secure("need");
    let alice = pki.client("alice", "zoocore");
    run(async {
        let zk = connect_tls(&server, &pki, Some(&alice)).await;
        zk.create("/tls", b"hello", &persistent()).await.unwrap();
        assert_eq!(zk.get_data("/tls").await.unwrap().0, b"hello");
    });
    let out = zkcli_tls(
        &server,
        &pki,
        &alice,
        "get /tls\ncreate /java world\nget /java",
    );
    assert_contains(&out, "hello");
    assert_contains(&out, "Created /java");
    assert_contains(&out, "world");
    run(async {
        let zk = connect_tls(&server, &pki, Some(&alice)).await;
        assert_eq!(zk.get_data("/java").await.unwrap().0, b"world");
    });
    // Four-letter words are answered on the secure port too, over TLS.
    let srvr = four_letter_tls(&server, &pki, &alice, "srvr");
    assert_contains(&srvr, "Zookeeper version:");
    let conf = four_letter_tls(&server, &pki, &alice, "conf");
    assert_contains(&conf, &format!("secureClientPort={SECURE_PORT}"));
}

#[test]
fn client_auth_need_refuses_a_client_without_a_certificate() {
    let (server, pki) = start_secure("need");
    run(async {
        let refused = try_connect_tls(&server, &pki, None).await;
        assert!(
            refused.is_err(),
            "a client without a certificate was served with clientAuth=need"
        );
        let alice = pki.client("alice", "zoocore");
        let zk = connect_tls(&server, &pki, Some(&alice)).await;
        zk.create("/after", b"", &persistent()).await.unwrap();
    });
    if server.target == Target::Zoocore {
        assert_contains(
            &server.log_text(),
            "TLS handshake failed: peer sent no certificates",
        );
    }
}

#[test]
fn client_auth_want_serves_a_client_without_a_certificate() {
    let (server, pki) = start_secure("want");
    let alice = pki.client("alice", "zoocore");
    run(async {
        let anonymous = connect_tls(&server, &pki, None).await;
        anonymous
            .create("/open", b"1", &persistent())
            .await
            .unwrap();
        assert_eq!(anonymous.get_data("/open").await.unwrap().0, b"1");
        let users = anonymous.list_auth_users().await.unwrap();
        assert!(
            users.iter().all(|u| u.scheme() != "x509"),
            "no certificate, no x509 id: {users:?}"
        );
        let zk = connect_tls(&server, &pki, Some(&alice)).await;
        let users = zk.list_auth_users().await.unwrap();
        assert!(
            users
                .iter()
                .any(|u| u.scheme() == "x509" && u.user() == ALICE),
            "whoAmI lacks x509 {ALICE}: {users:?}"
        );
    });
}

#[test]
fn x509_acl_grants_the_certificate_holder_and_denies_another() {
    let (server, pki) = start_secure_with(
        "need",
        &["X509AuthenticationProvider.superUser=CN=root,O=zoocore"],
    );
    let alice = pki.client("alice", "zoocore");
    let bob = pki.client("bob", "zoocore");
    let root = pki.client("root", "zoocore");
    run(async {
        let a = connect_tls(&server, &pki, Some(&alice)).await;
        let only_alice = vec![Acl::new(Permission::ALL, AuthId::new("x509", ALICE))];
        let options = CreateMode::Persistent.with_acls(only_alice.as_slice().into());
        a.create("/secret", b"s3", &options).await.unwrap();
        assert_eq!(a.get_data("/secret").await.unwrap().0, b"s3");
        // An `auth` ACL takes the creator's x509 id, as for any authenticated provider.
        let creator = vec![Acl::new(Permission::ALL, AuthId::authed())];
        let options = CreateMode::Persistent.with_acls(creator.as_slice().into());
        a.create("/mine", b"", &options).await.unwrap();
        assert_eq!(a.get_acl("/mine").await.unwrap().0, only_alice);

        let b = connect_tls(&server, &pki, Some(&bob)).await;
        assert_eq!(b.get_data("/secret").await.unwrap_err(), Error::NoAuth);
        assert_eq!(
            b.set_data("/secret", b"x", None).await.unwrap_err(),
            Error::NoAuth
        );
        assert_eq!(b.get_data("/mine").await.unwrap_err(), Error::NoAuth);

        // The configured super user's certificate passes every ACL.
        let r = connect_tls(&server, &pki, Some(&root)).await;
        assert_eq!(r.get_data("/secret").await.unwrap().0, b"s3");
        r.set_data("/mine", b"root", None).await.unwrap();
    });
    // The Java client with each certificate sees the same.
    assert_contains(&zkcli_tls(&server, &pki, &alice, "get /secret"), "s3");
    assert_contains(
        &zkcli_tls(&server, &pki, &bob, "get /secret"),
        "Insufficient permission",
    );
}

#[test]
fn a_plain_client_on_the_secure_port_is_closed_and_costs_nothing_else() {
    let (server, pki) = start_secure("need");
    for hello in [&b"ruok"[..], &[0, 0, 0, 44, 0, 0, 0, 0][..]] {
        let mut plain = TcpStream::connect(server.secure_addr()).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        plain.write_all(hello).unwrap();
        let mut answer = Vec::new();
        let started = Instant::now();
        let end = plain.read_to_end(&mut answer);
        let timed_out = matches!(&end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        assert!(
            !timed_out,
            "a plain client on the secure port was left open for {:?}",
            started.elapsed()
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains("imok"),
            "the secure port answered plain text"
        );
    }
    if server.target == Target::Zoocore {
        let log = server.log_text();
        assert_contains(&log, "TLS handshake failed: received corrupt message");
    }
    // The server still serves both ports.
    assert_eq!(server.four_letter("ruok"), "imok");
    let alice = pki.client("alice", "zoocore");
    run(async {
        let zk = connect_tls(&server, &pki, Some(&alice)).await;
        zk.create("/still", b"", &persistent()).await.unwrap();
        connect(&server).await.get_data("/still").await.unwrap();
    });
}

#[test]
fn port_unification_serves_tls_and_plain_clients_on_the_client_port() {
    let (server, pki) = start_secure_with("need", &["client.portUnification=true"]);
    let alice = pki.client("alice", "zoocore");
    run(async {
        let tls = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_fail_eagerly()
            .with_tls(tls_options(&pki, Some(&alice)))
            .secure_connect(&server.connect_string())
            .await
            .unwrap_or_else(|e| panic!("TLS on the client port: {e}\n{}", server.log_tail()));
        tls.create("/unified", b"tls", &persistent()).await.unwrap();
        let users = tls.list_auth_users().await.unwrap();
        assert!(
            users
                .iter()
                .any(|u| u.scheme() == "x509" && u.user() == ALICE),
            "{users:?}"
        );
        let plain = connect(&server).await;
        assert_eq!(plain.get_data("/unified").await.unwrap().0, b"tls");
    });
    // Four-letter words stay plain text there (and are answered over TLS too).
    assert_eq!(server.four_letter("ruok"), "imok");
}

/// zoocore alone (Apache reads `client.certReload` from 3.8.1; Debian ships 3.8.0): new
/// store files are taken without a restart.
#[test]
fn changed_certificate_files_are_reloaded() {
    let host = free_host();
    let old = Pki::new_named(host, "old");
    let mut extra_cfg = old.server_cfg("need");
    extra_cfg.push("client.certReload=true".into());
    let options = Options {
        secure_port: true,
        host: Some(host),
        extra_cfg,
        ..Options::default()
    };
    let server = Server::start_with(Target::Zoocore, options);
    let old_alice = old.client("alice", "zoocore");
    let new = Pki::new_named(host, "new");
    let new_alice = new.client("alice", "zoocore");
    run(async {
        let zk = connect_tls(&server, &old, Some(&old_alice)).await;
        zk.create("/before", b"", &persistent()).await.unwrap();
        // A new CA and server certificate, written over the files the server was started with.
        for file in ["server.pem", "ca.pem"] {
            std::fs::copy(new.dir.join(file), old.dir.join(file)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let reloaded = loop {
            match try_connect_tls(&server, &new, Some(&new_alice)).await {
                Ok(zk) => break zk,
                Err(e) if Instant::now() > deadline => {
                    panic!("new certificates not taken: {e}\n{}", server.log_tail())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        reloaded.get_data("/before").await.unwrap();
        // The old CA vouches for nothing now; the session set up before goes on.
        assert!(try_connect_tls(&server, &old, Some(&old_alice))
            .await
            .is_err());
        zk.get_data("/before").await.unwrap();
    });
    assert_contains(&server.log_text(), "TLS certificates reloaded");
}

#[test]
fn a_silent_client_on_the_secure_port_is_closed_after_the_handshake_limit() {
    let (server, _pki) = start_secure("need");
    let mut silent = TcpStream::connect(server.secure_addr()).unwrap();
    // Well past the 10 s handshake limit both servers have.
    silent
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut answer = Vec::new();
    let end = silent.read_to_end(&mut answer);
    assert!(
        !matches!(&end, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a connection that never starts its TLS handshake was left open"
    );
    if server.target == Target::Zoocore {
        assert_contains(&server.log_text(), "no TLS handshake within 10000 ms");
    }
}

/// zoocore alone: with `secureClientPort` and no `clientPort` only the secure port is open.
#[test]
fn a_secure_port_alone_leaves_no_plain_port() {
    let host = free_host();
    let pki = Pki::new(host);
    let alice = pki.client("alice", "zoocore");
    let cfg = pki.dir.join("zoo.cfg");
    let mut lines = vec![
        format!("dataDir={}", pki.dir.join("data").display()),
        format!("secureClientPort={SECURE_PORT}"),
        format!("secureClientPortAddress={host}"),
        "zoocore.pinning=false".to_string(),
    ];
    lines.extend(pki.server_cfg("need"));
    std::fs::write(&cfg, lines.join("\n") + "\n").unwrap();
    let log = std::fs::File::create(pki.dir.join("server.log")).unwrap();
    let child = Command::new(zoocore_binary())
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn zoocore");
    let _server = KillOnDrop(child, pki.dir.join("server.log"));
    let secure_string = format!("{host}:{SECURE_PORT}");
    run(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let zk = loop {
            let attempt = Client::connector()
                .with_connection_timeout(Duration::from_secs(2))
                .with_fail_eagerly()
                .with_tls(tls_options(&pki, Some(&alice)))
                .secure_connect(&secure_string)
                .await;
            match attempt {
                Ok(zk) => break zk,
                Err(e) if Instant::now() > deadline => panic!("secure port never served: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        zk.create("/only-tls", b"", &persistent()).await.unwrap();
    });
    let plain = TcpStream::connect((host, PORT));
    assert!(plain.is_err(), "the plain client port is open: {plain:?}");
}

/// A zoocore process started by a test itself: killed when the test ends, its log printed if
/// the test failed.
struct KillOnDrop(std::process::Child, PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.1).unwrap_or_default();
            eprintln!("---- {} ----\n{log}", self.1.display());
        }
    }
}

/// zoocore alone: a key store that is not PEM, or not there, stops start-up naming the file.
#[test]
fn a_bad_key_store_stops_start_up_naming_the_file() {
    let host = free_host();
    let pki = Pki::new(host);
    let bad_key = pki.dir.join("broken.pem");
    std::fs::write(&bad_key, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let data = pki.dir.join("data");
    for store in [bad_key.clone(), pki.dir.join("missing.pem")] {
        let cfg = pki.dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "dataDir={}\nclientPort={PORT}\nclientPortAddress={host}\n\
                 secureClientPort={SECURE_PORT}\nssl.keyStore.location={}\n\
                 ssl.trustStore.location={}\nzoocore.pinning=false\n",
                data.display(),
                store.display(),
                pki.ca_path().display()
            ),
        )
        .unwrap();
        let out = Command::new("timeout")
            .arg("30")
            .arg(zoocore_binary())
            .arg(&cfg)
            .stdin(Stdio::null())
            .output()
            .expect("run zoocore");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success() && out.status.code() != Some(124),
            "zoocore started with a bad key store ({}): {text}",
            out.status
        );
        assert_contains(&text, &store.display().to_string());
    }
}
