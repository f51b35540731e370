//! TLS between the members of a real 3-voter zoocore ensemble (`sslQuorum`,
//! `ssl.quorum.*` PEM stores, `portUnification`), each member on its own loopback address
//! with a certificate made here by rcgen for that address.
//!
//! Asserted: an ensemble whose links are all mutual TLS elects and replicates; a process that
//! speaks the plain peer protocol to a TLS-only quorum port is refused with a logged reason;
//! a member whose certificate comes from another CA never joins while the other two serve;
//! with `ssl.quorum.hostnameVerification=false` certificates that name another address are
//! taken, and with the default they are not; and the middle step of ZooKeeper's rolling
//! switch (one member still dialling plain, every port taking both) elects and replicates.

use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use zoocore_e2e::ensemble::{self, assert_data_everywhere, await_settled, mode_of, run};
use zoocore_e2e::{persistent, Server, QUORUM_PORT};

/// A CA and the members' key stores, in a directory removed on drop.
struct Pki {
    dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(label: &str) -> Pki {
        let dir =
            std::env::temp_dir().join(format!("zoocore-quorum-tls-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, format!("zoocore quorum CA {label}"));
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    /// A member's key store: its key and a certificate naming `host`, good for both ends of
    /// a link (it dials and accepts).
    fn member(&self, n: usize, host: Ipv4Addr) -> PathBuf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, format!("member {n}"));
        params.distinguished_name = name;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let path = self.dir.join(format!("member{n}.pem"));
        std::fs::write(&path, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        path
    }

    /// zoo.cfg lines for a member with `store`, trusting this CA.
    fn lines(&self, store: &std::path::Path, extra: &[&str]) -> Vec<String> {
        let mut lines = vec![
            format!("ssl.quorum.keyStore.location={}", store.display()),
            "ssl.quorum.keyStore.type=PEM".into(),
            format!(
                "ssl.quorum.trustStore.location={}",
                self.dir.join("ca.pem").display()
            ),
            "ssl.quorum.trustStore.type=PEM".into(),
        ];
        lines.extend(extra.iter().map(|l| l.to_string()));
        lines
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates `/tls` through a follower and checks every member has it.
fn replicates(servers: &[Server], leader: usize) {
    let follower = (0..servers.len()).find(|&i| i != leader).unwrap();
    run(async {
        let zk = ensemble::synced_client(&servers[follower]).await;
        zk.create("/tls", b"over tls", &persistent()).await.unwrap();
        assert_data_everywhere(servers, "/tls", b"over tls").await;
    });
}

/// Waits up to 20 s for `needle` in `server`'s log.
fn log_shows(server: &Server, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} not logged:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn members_elect_and_replicate_over_mutual_tls_and_refuse_a_plain_peer() {
    let pki = Pki::new("a");
    let hosts = Server::ensemble_hosts(3);
    let own: Vec<Vec<String>> = (0..3)
        .map(|i| pki.lines(&pki.member(i, hosts[i]), &["sslQuorum=true"]))
        .collect();
    let servers = Server::start_ensemble_at(&hosts, 3, ensemble::options(), &own);
    let leader = run(await_settled(&servers));
    replicates(&servers, leader);

    // A process speaking the plain peer protocol (zoocore's hello: ZCZH, version 1, myid 2)
    // to a TLS-only quorum port.
    let mut plain = TcpStream::connect((hosts[0], QUORUM_PORT)).unwrap();
    let mut hello = b"ZCZH".to_vec();
    hello.extend_from_slice(&1u32.to_be_bytes());
    hello.extend_from_slice(&2u64.to_be_bytes());
    plain.write_all(&hello).unwrap();
    log_shows(&servers[0], "sslQuorum requires TLS");
    assert_eq!(
        run(await_settled(&servers)),
        leader,
        "the refused link changed nothing"
    );
}

#[test]
fn a_member_with_another_cas_certificate_never_joins() {
    let pki = Pki::new("b");
    let stranger = Pki::new("b-stranger");
    let hosts = Server::ensemble_hosts(3);
    let own = vec![
        pki.lines(&pki.member(0, hosts[0]), &["sslQuorum=true"]),
        pki.lines(&pki.member(1, hosts[1]), &["sslQuorum=true"]),
        // Its own certificate from another CA, trusting that CA only.
        stranger.lines(&stranger.member(2, hosts[2]), &["sslQuorum=true"]),
    ];
    let servers = Server::spawn_ensemble_at(&hosts, 3, ensemble::options(), &own);
    run(await_settled(&servers[..2]));
    log_shows(&servers[2], "TLS handshake failed");
    for _ in 0..20 {
        let mode = mode_of(&servers[2]);
        assert!(!serves(&mode), "the stranger serves: {mode}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hostname_verification_decides_whether_a_certificate_for_another_address_is_taken() {
    // Every certificate names 127.0.0.1, which no member listens on.
    let pki = Pki::new("c");
    let hosts = Server::ensemble_hosts(3);
    let elsewhere = Ipv4Addr::new(127, 0, 0, 1);
    let own: Vec<Vec<String>> = (0..3)
        .map(|i| {
            pki.lines(
                &pki.member(i, elsewhere),
                &["sslQuorum=true", "ssl.quorum.hostnameVerification=false"],
            )
        })
        .collect();
    let servers = Server::start_ensemble_at(&hosts, 3, ensemble::options(), &own);
    let leader = run(await_settled(&servers));
    replicates(&servers, leader);
    drop(servers);

    let hosts = Server::ensemble_hosts(3);
    let own: Vec<Vec<String>> = (0..3)
        .map(|i| pki.lines(&pki.member(10 + i, elsewhere), &["sslQuorum=true"]))
        .collect();
    let servers = Server::spawn_ensemble_at(&hosts, 3, ensemble::options(), &own);
    log_shows(&servers[0], "TLS handshake failed");
    for _ in 0..20 {
        let modes: Vec<String> = servers.iter().map(mode_of).collect();
        assert!(modes.iter().all(|m| !serves(m)), "{modes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a `mode_of` answer is a member serving clients (a process still starting up
/// answers nothing yet: "unreachable").
fn serves(mode: &str) -> bool {
    matches!(mode, "leader" | "follower" | "observer")
}

#[test]
fn the_rolling_switch_middle_step_mixes_plain_and_tls_links() {
    // Members 0 and 1 already dial TLS; member 2 still dials plain; every port takes both.
    let pki = Pki::new("d");
    let hosts = Server::ensemble_hosts(3);
    let own = vec![
        pki.lines(
            &pki.member(0, hosts[0]),
            &["sslQuorum=true", "portUnification=true"],
        ),
        pki.lines(
            &pki.member(1, hosts[1]),
            &["sslQuorum=true", "portUnification=true"],
        ),
        pki.lines(&pki.member(2, hosts[2]), &["portUnification=true"]),
    ];
    let servers = Server::start_ensemble_at(&hosts, 3, ensemble::options(), &own);
    let leader = run(await_settled(&servers));
    replicates(&servers, leader);
}
