//! zoo.cfg, as Apache ZooKeeper reads it, plus zoocore's own keys.
//!
//! An existing ZooKeeper config must start: a key zoocore does not use is logged as ignored,
//! naming its line; a bad value of a key it uses stops start-up, naming the line. Keys that
//! ZooKeeper takes as system properties (`jute.maxbuffer`,
//! `DigestAuthenticationProvider.superDigest`, `4lw.commands.whitelist`, ...) are accepted
//! with or without their `zookeeper.` prefix, since ZooKeeper turns unknown zoo.cfg keys into
//! `zookeeper.<key>` properties.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}: {why}")]
    BadValue {
        path: PathBuf,
        line: usize,
        key: String,
        why: String,
    },
    #[error("{path}:{line}: not a key=value line: {text:?}")]
    BadLine {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{0}")]
    Inconsistent(String),
}

/// Which four-letter words are enabled (`4lw.commands.whitelist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    All,
    Only(BTreeSet<String>),
}

impl Whitelist {
    pub fn allows(&self, word: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(words) => words.contains(word),
        }
    }
}

/// One `server.N=host:quorumPort:electionPort[:participant|:observer]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Where the member listens for its peers (zoocore runs election and the leader-learner
    /// sessions over this one port).
    pub quorum_addr: SocketAddr,
    /// Parsed and kept for `conf`, but unused: election notifications travel over the
    /// quorum port.
    pub election_port: u16,
    pub observer: bool,
}

/// The ensemble this server is a member of: present when zoo.cfg has `server.N` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    /// From `myid` in dataDir.
    pub myid: u64,
    pub members: BTreeMap<u64, Member>,
    /// Ticks a learner may take to connect and synchronise with its leader (`initLimit`).
    pub init_limit_ticks: u64,
    /// Ticks of silence after which a leader or learner gives up on the other (`syncLimit`).
    pub sync_limit_ticks: u64,
}

impl Ensemble {
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(_, m)| !m.observer)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn observers(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(_, m)| m.observer)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, for `conf` and messages; `None` for the built-in default.
    pub source: Option<PathBuf>,
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_addr: SocketAddr,
    /// Connections per client IP; 0 means no limit (ZooKeeper's `maxClientCnxns`).
    pub max_client_cnxns: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub global_outstanding_limit: u32,
    pub four_letter_words: Whitelist,
    /// Largest packet a client may send, in bytes (`jute.maxbuffer`).
    pub jute_max_buffer: u32,
    /// `super:<base64 sha1>` as DigestAuthenticationProvider.superDigest takes it.
    pub super_digest: Option<String>,
    /// TTL nodes are refused unless extended types are enabled, as in ZooKeeper.
    pub extended_types_enabled: bool,
    pub container_check_interval_ms: u32,
    /// zoocore: number of session executors; default: CPUs in the affinity mask - 1, at least 1.
    pub shards: Option<usize>,
    /// zoocore: pin executors to CPUs of the process's affinity mask.
    pub pinning: bool,
    pub snap_count: u64,
    pub pre_alloc_size_kb: u64,
    /// `forceSync=no` skips the fdatasync of the log: fast, and UNSAFE (a crash or power loss
    /// loses acknowledged writes).
    pub force_sync: bool,
    /// A log sync slower than this is logged as a warning (`fsync.warningthresholdms`).
    pub fsync_warning_threshold_ms: u64,
    /// Snapshots (and the log they cover) kept by purge (`autopurge.snapRetainCount`, >= 3).
    pub snap_retain_count: usize,
    /// Hours between automatic purges; 0 disables them (`autopurge.purgeInterval`).
    pub purge_interval_hours: u64,
    /// Ensembles: committed transactions a leader keeps in memory to bring a learner up to
    /// date by DIFF; a learner further behind gets a SNAP (ZooKeeper's
    /// `zookeeper.commitLogCount`).
    pub commit_log_count: usize,
    /// `None` runs standalone (no `server.N` lines, or only one voter and no observers, as
    /// ZooKeeper's `standaloneEnabled` default does).
    pub ensemble: Option<Ensemble>,
    /// Whether `client_addr` is served: false when zoo.cfg gives `secureClientPort` and no
    /// `clientPort`, as ZooKeeper then opens only the secure port.
    pub client_plain: bool,
    /// The TLS client port (`secureClientPort`) and its keys; `None` without one.
    pub client_tls: Option<ClientTls>,
}

/// Who must show a certificate on the secure client port (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// ZooKeeper's default: a client without a certificate the trust store vouches for is
    /// refused in the handshake.
    Need,
    /// A certificate is asked for and checked when sent; a client without one is served.
    Want,
    None,
}

/// TLS for clients and the PEM files it serves with (docs/OPERATIONS.md "TLS").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// The secure client port (`secureClientPort`), if any.
    pub addr: Option<SocketAddr>,
    /// `client.portUnification`: the plain client port serves TLS clients too, told apart by
    /// their first byte, for a switch to TLS without downtime.
    pub port_unification: bool,
    /// `ssl.keyStore.location`: the private key and the certificate chain, PEM.
    pub key_store: PathBuf,
    /// `ssl.trustStore.location`: the CA certificates client certificates must chain to.
    pub trust_store: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// `X509AuthenticationProvider.superUser`: a certificate subject that is super.
    pub super_user: Option<String>,
    /// `client.certReload`: load the stores again when their files change (ZooKeeper 3.8.1+;
    /// off by default there too).
    pub cert_reload: bool,
}

impl Config {
    /// The configuration `zoocore` runs with when given no file: standalone on
    /// 127.0.0.1:2181, data in ./data.
    pub fn standalone_default() -> Self {
        let tick = 2000;
        Config {
            source: None,
            tick_time_ms: tick,
            data_dir: PathBuf::from("data"),
            data_log_dir: PathBuf::from("data"),
            client_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2181),
            max_client_cnxns: 60,
            min_session_timeout_ms: 2 * tick,
            max_session_timeout_ms: 20 * tick,
            global_outstanding_limit: 1000,
            four_letter_words: Whitelist::Only(BTreeSet::from(["srvr".to_string()])),
            jute_max_buffer: 0xfffff,
            super_digest: None,
            extended_types_enabled: false,
            container_check_interval_ms: 60_000,
            shards: None,
            pinning: true,
            snap_count: 100_000,
            pre_alloc_size_kb: 65536,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            commit_log_count: crate::limits::HISTORY_RETAIN,
            ensemble: None,
            client_plain: true,
            client_tls: None,
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses zoo.cfg text; `path` names the file in messages and resolves relative dirs as
    /// ZooKeeper does (relative to the working directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg = Config::standalone_default();
        cfg.source = Some(path.to_owned());
        let mut data_log_dir = None;
        let mut min_timeout = None;
        let mut max_timeout = None;
        let mut port = None;
        let mut address = None;
        let mut members = BTreeMap::new();
        let mut init_limit = 10u64;
        let mut sync_limit = 5u64;
        let mut tls = TlsKeys::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(ConfigError::BadLine {
                    path: path.to_owned(),
                    line,
                    text: raw.to_string(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            let bad = |why: String| ConfigError::BadValue {
                path: path.to_owned(),
                line,
                key: key.to_string(),
                why,
            };
            let key_plain = key.strip_prefix("zookeeper.").unwrap_or(key);
            match key_plain {
                "tickTime" => cfg.tick_time_ms = parse_num(value).map_err(bad)?,
                "dataDir" => cfg.data_dir = PathBuf::from(value),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(value)),
                "clientPort" => port = Some(parse_num::<u16>(value).map_err(bad)?),
                "clientPortAddress" => {
                    address = Some(
                        value
                            .parse::<IpAddr>()
                            .map_err(|e| bad(format!("{value:?}: {e}")))?,
                    )
                }
                "maxClientCnxns" => cfg.max_client_cnxns = parse_num(value).map_err(bad)?,
                "minSessionTimeout" => min_timeout = Some(parse_num(value).map_err(bad)?),
                "maxSessionTimeout" => max_timeout = Some(parse_num(value).map_err(bad)?),
                "globalOutstandingLimit" => {
                    cfg.global_outstanding_limit = parse_num(value).map_err(bad)?
                }
                "4lw.commands.whitelist" => cfg.four_letter_words = parse_whitelist(value),
                "jute.maxbuffer" => cfg.jute_max_buffer = parse_num(value).map_err(bad)?,
                "DigestAuthenticationProvider.superDigest" => {
                    if !value.contains(':') {
                        return Err(bad("expected super:<base64 sha1 digest>".into()));
                    }
                    cfg.super_digest = Some(value.to_string())
                }
                "extendedTypesEnabled" => {
                    cfg.extended_types_enabled = parse_bool(value).map_err(bad)?
                }
                "znode.container.checkIntervalMs" => {
                    cfg.container_check_interval_ms = parse_num(value).map_err(bad)?
                }
                "snapCount" => {
                    cfg.snap_count = parse_num(value).map_err(bad)?;
                    if cfg.snap_count < 2 {
                        return Err(bad("must be at least 2".into()));
                    }
                }
                "forceSync" => cfg.force_sync = parse_bool(value).map_err(bad)?,
                "fsync.warningthresholdms" => {
                    cfg.fsync_warning_threshold_ms = parse_num(value).map_err(bad)?
                }
                "autopurge.snapRetainCount" => {
                    // ZooKeeper keeps at least 3 whatever is asked.
                    cfg.snap_retain_count = parse_num::<usize>(value).map_err(bad)?.max(3)
                }
                "autopurge.purgeInterval" => {
                    cfg.purge_interval_hours = parse_num(value).map_err(bad)?
                }
                "commitLogCount" => {
                    cfg.commit_log_count = parse_positive(value).map_err(bad)? as usize
                }
                "preAllocSize" => cfg.pre_alloc_size_kb = parse_num(value).map_err(bad)?,
                "zoocore.shards" => {
                    let n: usize = parse_num(value).map_err(bad)?;
                    if n == 0 {
                        return Err(bad("must be at least 1".into()));
                    }
                    cfg.shards = Some(n);
                }
                "zoocore.pinning" => cfg.pinning = parse_bool(value).map_err(bad)?,
                "initLimit" => init_limit = parse_positive(value).map_err(bad)?,
                "syncLimit" => sync_limit = parse_positive(value).map_err(bad)?,
                _ if TlsKeys::takes(key_plain) => tls.set(key_plain, value).map_err(bad)?,
                _ if key_plain.starts_with("server.") => {
                    let id: u64 = parse_num(&key_plain["server.".len()..]).map_err(bad)?;
                    let member = parse_member(value).map_err(bad)?;
                    if members.insert(id, member).is_some() {
                        return Err(bad(format!("server.{id} is given twice")));
                    }
                }
                _ => tracing::warn!(
                    "{}:{line}: key {key:?} is not used by zoocore; ignored",
                    path.display()
                ),
            }
        }
        cfg.data_log_dir = data_log_dir.unwrap_or_else(|| cfg.data_dir.clone());
        if let Some(port) = port {
            cfg.client_addr.set_port(port);
        }
        if let Some(address) = address {
            cfg.client_addr.set_ip(address);
        }
        cfg.client_plain = port.is_some() || tls.port.is_none();
        cfg.client_tls = tls.finish(cfg.client_addr.ip(), path)?;
        if let Some(t) = cfg.client_tls.as_ref().filter(|_| cfg.client_plain) {
            if t.addr == Some(cfg.client_addr) {
                return Err(ConfigError::Inconsistent(format!(
                    "secureClientPort and clientPort are both {} (client.portUnification \
                     serves both on one port)",
                    cfg.client_addr
                )));
            }
        }
        if cfg.tick_time_ms == 0 {
            return Err(ConfigError::Inconsistent(
                "tickTime must be positive".into(),
            ));
        }
        let voters = members.values().filter(|m| !m.observer).count();
        if voters > 1 || members.len() > voters {
            let myid = read_myid(&cfg.data_dir)?;
            if !members.contains_key(&myid) {
                return Err(ConfigError::Inconsistent(format!(
                    "myid {myid} in {} has no server.{myid} line",
                    cfg.data_dir.display()
                )));
            }
            if voters == 0 {
                return Err(ConfigError::Inconsistent(
                    "an ensemble needs at least one voter".into(),
                ));
            }
            cfg.ensemble = Some(Ensemble {
                myid,
                members,
                init_limit_ticks: init_limit,
                sync_limit_ticks: sync_limit,
            });
        }
        cfg.min_session_timeout_ms = min_timeout.unwrap_or(2 * cfg.tick_time_ms);
        cfg.max_session_timeout_ms = max_timeout.unwrap_or(20 * cfg.tick_time_ms);
        if cfg.min_session_timeout_ms > cfg.max_session_timeout_ms {
            return Err(ConfigError::Inconsistent(format!(
                "minSessionTimeout {} is larger than maxSessionTimeout {}",
                cfg.min_session_timeout_ms, cfg.max_session_timeout_ms
            )));
        }
        Ok(cfg)
    }

    /// Negotiates a client's requested session timeout into [min, max].
    pub fn negotiate_timeout(&self, requested_ms: i32) -> i32 {
        let min = self.min_session_timeout_ms as i32;
        let max = self.max_session_timeout_ms as i32;
        requested_ms.clamp(min, max)
    }
}

/// The TLS keys as read, checked together once the whole file is read. ZooKeeper takes the
/// `ssl.*` keys as `zookeeper.ssl.*` system properties (X509Util), so both spellings come here
/// with the prefix already stripped.
#[derive(Debug, Default)]
struct TlsKeys {
    port: Option<u16>,
    address: Option<IpAddr>,
    key_store: Option<PathBuf>,
    key_store_type: Option<String>,
    trust_store: Option<PathBuf>,
    trust_store_type: Option<String>,
    client_auth: Option<ClientAuth>,
    super_user: Option<String>,
    cert_reload: bool,
    port_unification: bool,
}

impl TlsKeys {
    fn takes(key: &str) -> bool {
        matches!(
            key,
            "secureClientPort"
                | "secureClientPortAddress"
                | "ssl.keyStore.location"
                | "ssl.keyStore.type"
                | "ssl.trustStore.location"
                | "ssl.trustStore.type"
                | "ssl.clientAuth"
                | "X509AuthenticationProvider.superUser"
                | "client.certReload"
                | "client.portUnification"
                | "sslQuorum"
        )
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "secureClientPort" => self.port = Some(parse_num(value)?),
            "secureClientPortAddress" => {
                self.address = Some(value.parse().map_err(|e| format!("{value:?}: {e}"))?)
            }
            "ssl.keyStore.location" => self.key_store = Some(PathBuf::from(value)),
            "ssl.keyStore.type" => self.key_store_type = Some(value.to_string()),
            "ssl.trustStore.location" => self.trust_store = Some(PathBuf::from(value)),
            "ssl.trustStore.type" => self.trust_store_type = Some(value.to_string()),
            // X509Util.ClientAuth.fromPropertyValue: case-insensitive, empty means need.
            "ssl.clientAuth" => {
                self.client_auth = Some(match value.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Err(format!("{value:?} is not need, want or none")),
                })
            }
            "X509AuthenticationProvider.superUser" => self.super_user = Some(value.to_string()),
            "client.certReload" => self.cert_reload = parse_bool(value)?,
            "client.portUnification" => self.port_unification = parse_bool(value)?,
            // Member links are plain TCP in zoocore: starting as if they were encrypted would
            // be a silent downgrade.
            "sslQuorum" => {
                if parse_bool(value)? {
                    return Err("TLS between members is not supported by zoocore; \
                                only client connections (secureClientPort)"
                        .into());
                }
            }
            _ => unreachable!("TlsKeys::takes({key:?}) without a setter"),
        }
        Ok(())
    }

    /// The TLS settings, or `None` with neither `secureClientPort` nor
    /// `client.portUnification`. Only PEM stores are
    /// read (ZooKeeper 3.5+'s `ssl.*.type=PEM`); a store of another type, named or guessed from
    /// its extension as X509Util does, stops start-up with a request to convert it.
    fn finish(self, default_ip: IpAddr, cfg_path: &Path) -> Result<Option<ClientTls>, ConfigError> {
        if self.port.is_none() && !self.port_unification {
            return Ok(None);
        }
        let inconsistent = |why: String| {
            ConfigError::Inconsistent(format!("{}: client TLS: {why}", cfg_path.display()))
        };
        let key_store = self
            .key_store
            .ok_or_else(|| inconsistent("ssl.keyStore.location is not set".into()))?;
        check_pem_store(&key_store, self.key_store_type.as_deref()).map_err(inconsistent)?;
        if let Some(trust) = &self.trust_store {
            check_pem_store(trust, self.trust_store_type.as_deref()).map_err(inconsistent)?;
        }
        let client_auth = self.client_auth.unwrap_or(ClientAuth::Need);
        if client_auth != ClientAuth::None && self.trust_store.is_none() {
            return Err(inconsistent(
                "ssl.trustStore.location is needed to check client certificates \
                 (or set ssl.clientAuth=none)"
                    .into(),
            ));
        }
        Ok(Some(ClientTls {
            addr: self
                .port
                .map(|port| SocketAddr::new(self.address.unwrap_or(default_ip), port)),
            port_unification: self.port_unification,
            key_store,
            trust_store: self.trust_store,
            client_auth,
            super_user: self.super_user,
            cert_reload: self.cert_reload,
        }))
    }
}

fn check_pem_store(path: &Path, store_type: Option<&str>) -> Result<(), String> {
    let named = store_type.map(str::to_ascii_uppercase);
    let guessed = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => match ext.to_ascii_lowercase().as_str() {
            "jks" => Some("JKS"),
            "p12" | "pfx" => Some("PKCS12"),
            "bcfks" => Some("BCFKS"),
            _ => None,
        },
        None => None,
    };
    match named.as_deref().or(guessed) {
        None | Some("PEM") => Ok(()),
        Some(other) => Err(format!(
            "{}: {other} stores are not supported; convert it to PEM (e.g. `openssl pkcs12 \
             -in store.p12 -nodes`; a key store is the key and its certificate chain in one \
             file) and set ssl.*.type=PEM",
            path.display()
        )),
    }
}

fn parse_num<T: std::str::FromStr>(value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| format!("{value:?} is not a valid number: {e}"))
}

fn parse_positive(value: &str) -> Result<u64, String> {
    let n: u64 = parse_num(value)?;
    if n == 0 {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

/// `host:quorumPort:electionPort[:participant|:observer][;clientAddress:clientPort]`; the
/// client part of ZooKeeper 3.5's dynamic syntax is ignored (clientPort says it).
fn parse_member(value: &str) -> Result<Member, String> {
    let value = value.split(';').next().unwrap_or_default().trim();
    let parts: Vec<&str> = value.split(':').collect();
    let (host, quorum, election, role) = match parts.as_slice() {
        [h, q, e] => (*h, *q, *e, "participant"),
        [h, q, e, r] => (*h, *q, *e, *r),
        _ => {
            return Err(format!(
                "{value:?}: expected host:quorumPort:electionPort[:role]"
            ))
        }
    };
    let quorum: u16 = parse_num(quorum)?;
    let election_port: u16 = parse_num(election)?;
    let observer = match role {
        "participant" => false,
        "observer" => true,
        other => {
            return Err(format!(
                "role {other:?} is neither participant nor observer"
            ))
        }
    };
    let quorum_addr = (host, quorum)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host:?} resolves to no address"))?;
    Ok(Member {
        quorum_addr,
        election_port,
        observer,
    })
}

/// `myid` in dataDir: the server's id, a number alone on the first line.
fn read_myid(data_dir: &Path) -> Result<u64, ConfigError> {
    let path = data_dir.join("myid");
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    text.trim().parse::<u64>().map_err(|e| {
        ConfigError::Inconsistent(format!(
            "{}: {:?} is not a server id: {e}",
            path.display(),
            text.trim()
        ))
    })
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

fn parse_whitelist(value: &str) -> Whitelist {
    let words: BTreeSet<String> = value
        .split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect();
    if words.contains("*") {
        Whitelist::All
    } else {
        Whitelist::Only(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_zookeeper_config() {
        let text = "# comment\ntickTime=1000\ndataDir=/tmp/zk\nclientPort=2999\n\
                    clientPortAddress=127.0.0.9\ninitLimit=10\n4lw.commands.whitelist=ruok, srvr\n\
                    zoocore.shards=3\nzoocore.pinning=false\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert_eq!(cfg.tick_time_ms, 1000);
        assert_eq!(cfg.data_log_dir, PathBuf::from("/tmp/zk"));
        assert_eq!(cfg.client_addr, "127.0.0.9:2999".parse().unwrap());
        assert_eq!(
            (cfg.min_session_timeout_ms, cfg.max_session_timeout_ms),
            (2000, 20000)
        );
        assert!(cfg.four_letter_words.allows("ruok"));
        assert!(!cfg.four_letter_words.allows("mntr"));
        assert_eq!(cfg.shards, Some(3));
        assert!(!cfg.pinning);
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let err =
            Config::parse("tickTime=2000\nclientPort=eleven\n", Path::new("z.cfg")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("z.cfg:2: clientPort:"), "{msg}");
    }

    #[test]
    fn reads_server_lines_and_myid() {
        let dir = std::env::temp_dir().join(format!("zoocore-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        let text = format!(
            "dataDir={}\ninitLimit=7\nsyncLimit=3\nserver.1=127.0.0.1:2888:3888\n\
             server.2=127.0.0.1:2889:3889:participant\nserver.3=127.0.0.1:2890:3890\n\
             server.4=127.0.0.1:2891:3891:observer;127.0.0.1:2184\n",
            dir.display()
        );
        let cfg = Config::parse(&text, Path::new("zoo.cfg")).unwrap();
        let ens = cfg.ensemble.unwrap();
        assert_eq!(ens.myid, 2);
        assert_eq!(ens.voters(), vec![1, 2, 3]);
        assert_eq!(ens.observers(), vec![4]);
        assert_eq!((ens.init_limit_ticks, ens.sync_limit_ticks), (7, 3));
        assert_eq!(
            ens.members[&3].quorum_addr,
            "127.0.0.1:2890".parse().unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_server_line_is_standalone_and_a_bad_role_names_its_line() {
        let cfg = Config::parse("server.1=127.0.0.1:2888:3888\n", Path::new("z.cfg")).unwrap();
        assert!(cfg.ensemble.is_none());
        let err = Config::parse("server.1=127.0.0.1:2888:3888:boss\n", Path::new("z.cfg"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("z.cfg:1: server.1:"), "{err}");
    }

    #[test]
    fn reads_the_tls_keys_with_or_without_their_prefix() {
        let text = "clientPort=2181\nsecureClientPort=2281\nsecureClientPortAddress=127.0.0.7\n\
                    zookeeper.ssl.keyStore.location=/k.pem\nssl.trustStore.location=/t.pem\n\
                    ssl.clientAuth=WANT\nzookeeper.X509AuthenticationProvider.superUser=CN=root\n\
                    zookeeper.client.certReload=true\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert!(cfg.client_plain);
        let tls = cfg.client_tls.unwrap();
        assert_eq!(tls.addr, Some("127.0.0.7:2281".parse().unwrap()));
        assert!(!tls.port_unification);
        assert_eq!(tls.key_store, PathBuf::from("/k.pem"));
        assert_eq!(tls.trust_store, Some(PathBuf::from("/t.pem")));
        assert_eq!(tls.client_auth, ClientAuth::Want);
        assert_eq!(tls.super_user.as_deref(), Some("CN=root"));
        assert!(tls.cert_reload);
    }

    #[test]
    fn a_secure_port_alone_closes_the_plain_one() {
        let text = "secureClientPort=2281\nssl.keyStore.location=/k.pem\nssl.clientAuth=none\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert!(!cfg.client_plain);
        let tls = cfg.client_tls.unwrap();
        // Without secureClientPortAddress it listens where the plain port would.
        assert_eq!(tls.addr, Some("127.0.0.1:2281".parse().unwrap()));
        // Port unification alone: TLS on the plain port, no secure port.
        let text = "clientPort=2181\nclient.portUnification=true\nssl.keyStore.location=/k.pem\n\
                    ssl.clientAuth=none\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        let tls = cfg.client_tls.unwrap();
        assert!(cfg.client_plain && tls.port_unification);
        assert_eq!(tls.addr, None);
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert!(
            Config::parse("tickTime=2000\n", Path::new("z.cfg"))
                .unwrap()
                .client_plain
        );
    }

    #[test]
    fn tls_settings_that_cannot_work_stop_start_up() {
        let parse = |text: &str| {
            Config::parse(text, Path::new("z.cfg"))
                .unwrap_err()
                .to_string()
        };
        let err =
            parse("secureClientPort=2281\nssl.keyStore.location=/k.jks\nssl.clientAuth=none\n");
        assert!(
            err.contains("/k.jks: JKS stores are not supported; convert it to PEM"),
            "{err}"
        );
        let err =
            parse("secureClientPort=2281\nssl.keyStore.location=/k\nssl.keyStore.type=PKCS12\n");
        assert!(err.contains("PKCS12"), "{err}");
        // clientAuth defaults to need, which needs a trust store.
        let err = parse("secureClientPort=2281\nssl.keyStore.location=/k.pem\n");
        assert!(err.contains("ssl.trustStore.location is needed"), "{err}");
        let err = parse("secureClientPort=2281\n");
        assert!(err.contains("ssl.keyStore.location is not set"), "{err}");
        let err = parse("ssl.clientAuth=maybe\n");
        assert!(err.starts_with("z.cfg:1: ssl.clientAuth:"), "{err}");
        let err = parse("sslQuorum=true\n");
        assert!(err.contains("not supported"), "{err}");
    }

    #[test]
    fn timeouts_are_negotiated_into_bounds() {
        let cfg = Config::standalone_default();
        assert_eq!(cfg.negotiate_timeout(1), 4000);
        assert_eq!(cfg.negotiate_timeout(10_000), 10_000);
        assert_eq!(cfg.negotiate_timeout(1_000_000), 40_000);
    }
}
