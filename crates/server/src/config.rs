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
    /// The host as the line writes it (a name or an address): what a peer's TLS
    /// certificate must name under `ssl.quorum.hostnameVerification`.
    pub host: String,
    /// Where the member listens for its peers (zoocore runs election and the leader-learner
    /// sessions over this one port).
    pub quorum_addr: SocketAddr,
    /// Parsed and kept for `conf`, but unused: election notifications travel over the
    /// quorum port.
    pub election_port: u16,
    pub observer: bool,
    /// The `;[clientAddress:]clientPort` suffix of ZooKeeper 3.5's dynamic syntax: where this
    /// member serves clients (a bare port means every interface, as ZooKeeper binds it).
    pub client_addr: Option<SocketAddr>,
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
    /// The configuration's version: the zxid of the reconfig that made it, in hex as the
    /// dynamic file's `version=` line says; 0 for a configuration never reconfigured.
    pub config_version: i64,
    /// `observerMasterPort` (ZooKeeper 3.6): every voter listens for observers' links on
    /// this port of its quorum address, and while following serves observers' sync and
    /// commit stream instead of the leader; observers dial the voters there. None (or 0):
    /// observers learn from the leader.
    pub observer_master_port: Option<u16>,
}

impl Ensemble {
    /// The configuration as ZooKeeper writes it in `/zookeeper/config` and in a dynamic file
    /// (QuorumVerifier.toString): `server.N=host:quorumPort:electionPort:role`, with
    /// `;clientAddress:clientPort` when the line gave one, then `version=<hex>`, with no
    /// newline after it.
    pub fn dynamic_text(&self) -> String {
        let mut text = String::new();
        for (id, m) in &self.members {
            let host = if m.host.contains(':') {
                format!("[{}]", m.host)
            } else {
                m.host.clone()
            };
            let role = if m.observer {
                "observer"
            } else {
                "participant"
            };
            text.push_str(&format!(
                "server.{id}={host}:{}:{}:{role}",
                m.quorum_addr.port(),
                m.election_port
            ));
            if let Some(client) = m.client_addr {
                text.push_str(&format!(";{client}"));
            }
            text.push('\n');
        }
        text.push_str(&format!("version={:x}", self.config_version));
        text
    }

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

    /// Whether voters serve observers: when `observerMasterPort` is set (in ZooKeeper every
    /// member's zoo.cfg carries the key). Which voters do is the replica's business: those
    /// of the membership in effect, after every reconfig.
    pub fn observer_masters(&self) -> bool {
        self.observer_master_port.is_some()
    }
}

/// The AdminServer (ZooKeeper's `admin.*` keys): HTTP commands with JSON answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// `admin.enableServer` (default true, as ZooKeeper).
    pub enabled: bool,
    /// `admin.serverAddress` (default 0.0.0.0) and `admin.serverPort` (default 8080).
    pub addr: SocketAddr,
    /// `admin.commandURL` (default `/commands`): the path commands are served under.
    pub command_url: String,
    /// `admin.snapshot.enabled` (default true): the `snapshot` command streams one.
    pub snapshot_enabled: bool,
    /// `admin.rateLimiterIntervalInMS` (default 300000): at most one snapshot, and one
    /// restore, per interval.
    pub rate_limit_interval_ms: u64,
    /// `admin.restore.enabled` (default true; ZooKeeper's `zookeeper.admin.restore.enabled`):
    /// the `restore` command loads one.
    pub restore_enabled: bool,
}

/// ZooKeeper's Prometheus provider class: the only `metricsProvider.className` with an
/// exporter; its short name is accepted too.
const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// ZooKeeper's default provider: metrics only in mntr and the admin `monitor` command.
const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// How the snapshot writer shares the machine with the commits (docs/OPERATIONS.md,
/// "Snapshots"; the measurements behind the defaults are in docs/BENCHMARKS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPacing {
    /// `zoocore.snapshotIdlePriority`: the writer's thread runs under SCHED_IDLE, so it
    /// takes only CPU time that nothing else wants.
    pub idle_priority: bool,
    /// `zoocore.snapshotWriteMBps`: the writer's rate cap in MB/s; 0: no cap.
    pub write_mb_per_s: u64,
    /// `zoocore.snapshotWriteBehindKB`: write back every this many KiB as the file is
    /// written (sync_file_range); 0: leave it to the kernel and the final fdatasync.
    pub write_behind_kb: u64,
    /// `zoocore.snapshotDirectIo`: write the file with O_DIRECT (where the file system
    /// takes it), past the page cache.
    pub direct_io: bool,
}

impl Default for SnapshotPacing {
    fn default() -> Self {
        SnapshotPacing {
            idle_priority: true,
            write_mb_per_s: 0,
            write_behind_kb: zoocore_storage::WRITE_BEHIND_BYTES >> 10,
            direct_io: true,
        }
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
    /// `enforceQuota` (ZooKeeper's system property `zookeeper.enforceQuota`, which its
    /// zoo.cfg parser also sets from an `enforceQuota` line): hard quotas refuse writes.
    pub enforce_quota: bool,
    /// `readonlymode.enabled`: a member without a quorum serves read-only sessions.
    /// ZooKeeper reads it as a Java system property only (`-Dreadonlymode.enabled=true` in
    /// SERVER_JVMFLAGS or JVMFLAGS, which zoocore reads too); zoo.cfg may say it as well.
    pub read_only_mode: bool,
    pub container_check_interval_ms: u32,
    /// zoocore: number of session executors besides the core's; default: CPUs in the affinity
    /// mask - 1. 0: the sessions live on the core's executor (one thread for the server).
    pub shards: Option<usize>,
    /// zoocore: pin executors to CPUs of the process's affinity mask.
    pub pinning: bool,
    pub snap_count: u64,
    /// zoocore: how a snapshot is written beside the commits (`zoocore.snapshot*` keys).
    pub snapshot_pacing: SnapshotPacing,
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
    pub admin: Admin,
    /// Where `/metrics` is served in Prometheus's text format: present when
    /// `metricsProvider.className` is ZooKeeper's PrometheusMetricsProvider, at
    /// `metricsProvider.httpHost` (default 0.0.0.0) : `metricsProvider.httpPort` (default 7000).
    pub metrics_addr: Option<SocketAddr>,
    /// The zoo.cfg text as read, for the admin `initial_configuration` command.
    pub text: String,
    /// `standaloneEnabled` (default true): false asks a lone server to run as a quorum of
    /// one; zoocore runs it standalone either way (logged).
    pub standalone_enabled: bool,
    /// `reconfigEnabled` (default false): dynamic reconfiguration; without it a reconfig
    /// answers RECONFIGDISABLED.
    pub reconfig_enabled: bool,
    /// `skipACL` (ZooKeeper's `zookeeper.skipACL=yes`): here only a reconfig's permission
    /// check is skipped (ZooKeeper skips every ACL check; zoocore keeps the others).
    pub skip_acl: bool,
    /// `dynamicConfigFile`, where the server lines came from; a reconfig writes a new one
    /// beside zoo.cfg and points zoo.cfg's line at it.
    pub dynamic_file: Option<PathBuf>,
    /// Whether `client_addr` is served: false when zoo.cfg gives `secureClientPort` and no
    /// `clientPort`, as ZooKeeper then opens only the secure port.
    pub client_plain: bool,
    /// The TLS client port (`secureClientPort`) and its keys; `None` without one.
    pub client_tls: Option<ClientTls>,
    /// TLS between members (`sslQuorum`, `portUnification`); `None`: plain TCP.
    pub quorum_tls: Option<QuorumTls>,
}

/// TLS on the links between members (docs/OPERATIONS.md "TLS between members"): ZooKeeper's
/// `sslQuorum` with the `ssl.quorum.*` PEM stores. Both ends show a certificate that chains
/// to the trust store (ZooKeeper's quorum TLS is mutual).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTls {
    /// `sslQuorum`: dial peers over TLS.
    pub dial_tls: bool,
    /// `portUnification`: the quorum port takes plain and TLS links alike, told apart by
    /// their first byte, for ZooKeeper's three-step rolling switch to (or from) TLS.
    /// Without it the port takes only what `sslQuorum` says.
    pub port_unification: bool,
    /// `ssl.quorum.keyStore.location`: this member's key and certificate chain, PEM.
    pub key_store: PathBuf,
    /// `ssl.quorum.trustStore.location`: the CA certificates peers' certificates chain to.
    pub trust_store: PathBuf,
    /// `ssl.quorum.hostnameVerification` (default true): a dialled peer's certificate must
    /// name the host of its `server.N` line.
    pub hostname_verification: bool,
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
            enforce_quota: false,
            read_only_mode: false,
            container_check_interval_ms: 60_000,
            shards: None,
            pinning: true,
            snap_count: 100_000,
            snapshot_pacing: SnapshotPacing::default(),
            pre_alloc_size_kb: 65536,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            commit_log_count: crate::limits::HISTORY_RETAIN,
            ensemble: None,
            // Like the client port, the built-in default stays on loopback.
            admin: Admin {
                enabled: true,
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
                command_url: "/commands".to_string(),
                snapshot_enabled: true,
                rate_limit_interval_ms: 300_000,
                restore_enabled: true,
            },
            metrics_addr: None,
            text: String::new(),
            standalone_enabled: true,
            reconfig_enabled: false,
            skip_acl: false,
            dynamic_file: None,
            client_plain: true,
            client_tls: None,
            quorum_tls: None,
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Self::parse(&text, path)?;
        let flags = ["SERVER_JVMFLAGS", "JVMFLAGS"].map(|v| std::env::var(v).unwrap_or_default());
        if flags.iter().any(|f| read_only_flag(f)) {
            cfg.read_only_mode = true;
        }
        Ok(cfg)
    }

    /// Parses zoo.cfg text; `path` names the file in messages and resolves relative dirs as
    /// ZooKeeper does (relative to the working directory).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut cfg = Config::standalone_default();
        cfg.source = Some(path.to_owned());
        cfg.text = text.to_string();
        cfg.admin.addr.set_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut metrics_provider = false;
        let mut metrics_host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut metrics_port = 7000u16;
        let mut data_log_dir = None;
        let mut min_timeout = None;
        let mut max_timeout = None;
        let mut port = None;
        let mut address = None;
        let mut members = BTreeMap::new();
        let mut init_limit = 10u64;
        let mut observer_master_port: Option<(u16, usize)> = None;
        let mut sync_limit = 5u64;
        // File and line of each server.N, to name it when its client address contradicts
        // clientPort.
        let mut member_lines: BTreeMap<u64, (PathBuf, usize)> = BTreeMap::new();
        let mut dynamic_file: Option<(PathBuf, usize)> = None;
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
                "readonlymode.enabled" | "zookeeper.readonlymode.enabled" => {
                    cfg.read_only_mode = parse_bool(value).map_err(bad)?
                }
                "enforceQuota" | "zookeeper.enforceQuota" => {
                    cfg.enforce_quota = parse_bool(value).map_err(bad)?
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
                "zoocore.shards" => cfg.shards = Some(parse_num(value).map_err(bad)?),
                "zoocore.pinning" => cfg.pinning = parse_bool(value).map_err(bad)?,
                "zoocore.snapshotIdlePriority" => {
                    cfg.snapshot_pacing.idle_priority = parse_bool(value).map_err(bad)?
                }
                "zoocore.snapshotWriteMBps" => {
                    cfg.snapshot_pacing.write_mb_per_s = parse_num(value).map_err(bad)?
                }
                "zoocore.snapshotDirectIo" => {
                    cfg.snapshot_pacing.direct_io = parse_bool(value).map_err(bad)?
                }
                "zoocore.snapshotWriteBehindKB" => {
                    cfg.snapshot_pacing.write_behind_kb = parse_num(value).map_err(bad)?
                }
                "admin.enableServer" => cfg.admin.enabled = parse_bool(value).map_err(bad)?,
                "admin.serverAddress" => cfg.admin.addr.set_ip(parse_ip(value).map_err(bad)?),
                "admin.serverPort" => cfg.admin.addr.set_port(parse_num(value).map_err(bad)?),
                "admin.commandURL" => {
                    if !value.starts_with('/') {
                        return Err(bad(format!("{value:?} does not start with /")));
                    }
                    cfg.admin.command_url = value.trim_end_matches('/').to_string();
                }
                "admin.restore.enabled" => {
                    cfg.admin.restore_enabled = parse_bool(value).map_err(bad)?
                }
                "admin.snapshot.enabled" => {
                    cfg.admin.snapshot_enabled = parse_bool(value).map_err(bad)?
                }
                "admin.rateLimiterIntervalInMS" => {
                    cfg.admin.rate_limit_interval_ms = parse_num(value).map_err(bad)?
                }
                "metricsProvider.className" => {
                    metrics_provider = match value {
                        PROMETHEUS_PROVIDER | "PrometheusMetricsProvider" => true,
                        DEFAULT_PROVIDER => false,
                        other => {
                            return Err(bad(format!(
                            "{other:?}: zoocore has {PROMETHEUS_PROVIDER} and {DEFAULT_PROVIDER}"
                        )))
                        }
                    }
                }
                "metricsProvider.httpHost" => metrics_host = parse_ip(value).map_err(bad)?,
                "metricsProvider.httpPort" => metrics_port = parse_num(value).map_err(bad)?,
                // There is no JVM to report on; the process's own figures are exported anyway.
                "metricsProvider.exportJvmInfo" => {
                    parse_bool(value).map_err(bad)?;
                }
                "standaloneEnabled" => cfg.standalone_enabled = parse_bool(value).map_err(bad)?,
                "reconfigEnabled" => cfg.reconfig_enabled = parse_bool(value).map_err(bad)?,
                // ZooKeeper reads `zookeeper.skipACL` as "yes" or anything else.
                "skipACL" => cfg.skip_acl = value.trim() == "yes",
                // ZooKeeper 3.5's dynamic configuration: the server.N lines live in that file.
                "dynamicConfigFile" => dynamic_file = Some((PathBuf::from(value), line)),
                "initLimit" => init_limit = parse_positive(value).map_err(bad)?,
                // QuorumPeer: a port of 0 (or none) leaves observers with the leader.
                "observerMasterPort" => {
                    let p: u16 = parse_num(value).map_err(bad)?;
                    observer_master_port = (p != 0).then_some((p, line));
                }
                "syncLimit" => sync_limit = parse_positive(value).map_err(bad)?,
                _ if TlsKeys::takes(key_plain) => tls.set(key_plain, value).map_err(bad)?,
                _ if key_plain.starts_with("server.") => {
                    let id: u64 = parse_num(&key_plain["server.".len()..]).map_err(bad)?;
                    let member = parse_member(value).map_err(bad)?;
                    if members.insert(id, member).is_some() {
                        return Err(bad(format!("server.{id} is given twice")));
                    }
                    member_lines.insert(id, (path.to_owned(), line));
                }
                _ => tracing::warn!(
                    "{}:{line}: key {key:?} is not used by zoocore; ignored",
                    path.display()
                ),
            }
        }
        cfg.data_log_dir = data_log_dir.unwrap_or_else(|| cfg.data_dir.clone());
        // A zoo.cfg without clientPortAddress listens on every interface, as ZooKeeper does
        // (only the built-in default, with no file at all, stays on 127.0.0.1).
        cfg.client_addr
            .set_ip(address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        if let Some(port) = port {
            cfg.client_addr.set_port(port);
        }
        cfg.metrics_addr = metrics_provider.then(|| SocketAddr::new(metrics_host, metrics_port));
        if cfg.tick_time_ms == 0 {
            return Err(ConfigError::Inconsistent(
                "tickTime must be positive".into(),
            ));
        }
        let mut config_version = 0;
        cfg.dynamic_file = dynamic_file.as_ref().map(|(p, _)| p.clone());
        if let Some((dynamic, line)) = dynamic_file {
            if let Some((id, _)) = members.iter().next() {
                return Err(ConfigError::BadValue {
                    path: path.to_owned(),
                    line,
                    key: "dynamicConfigFile".into(),
                    why: format!(
                        "server.{id} is given here too: server lines belong in {} only",
                        dynamic.display()
                    ),
                });
            }
            read_dynamic(
                &dynamic,
                &mut members,
                &mut member_lines,
                &mut config_version,
            )?;
        }
        let mut client_port_given = port.is_some();
        let voters = members.values().filter(|m| !m.observer).count();
        let is_ensemble = voters > 1 || members.len() > voters;
        // This server's own line: by myid in an ensemble; a lone server.N line is this
        // server's whatever myid says (ZooKeeper's official image writes
        // `server.1=localhost:2888:3888;2181` and no clientPort for a standalone container).
        let myid = if is_ensemble {
            Some(read_myid(&cfg.data_dir)?)
        } else {
            members.keys().next().copied()
        };
        if let Some(own) = myid.and_then(|id| members.get(&id).map(|m| (id, m))) {
            if let Some(client) = own.1.client_addr {
                if port.is_some_and(|p| p != client.port())
                    || address.is_some_and(|a| a != client.ip())
                {
                    let (file, line) = member_lines[&own.0].clone();
                    return Err(ConfigError::BadValue {
                        path: file,
                        line,
                        key: format!("server.{}", own.0),
                        why: format!(
                            "client address {client} differs from clientPortAddress:clientPort {}",
                            cfg.client_addr
                        ),
                    });
                }
                cfg.client_addr = client;
                client_port_given = true;
            }
        }
        // TLS, once the plain client port is known: with secureClientPort alone only the secure
        // port is open, as in ZooKeeper.
        cfg.client_plain = client_port_given || tls.port.is_none();
        // Without secureClientPortAddress ZooKeeper listens on every interface.
        cfg.quorum_tls = tls.finish_quorum(path)?;
        cfg.client_tls = tls.finish(IpAddr::V4(Ipv4Addr::UNSPECIFIED), path)?;
        if let Some(t) = cfg.client_tls.as_ref().filter(|_| cfg.client_plain) {
            if t.addr == Some(cfg.client_addr) {
                return Err(ConfigError::Inconsistent(format!(
                    "secureClientPort and clientPort are both {} (client.portUnification \
                     serves both on one port)",
                    cfg.client_addr
                )));
            }
        }
        if !cfg.standalone_enabled && !is_ensemble {
            tracing::info!(
                "standaloneEnabled=false with a single server: zoocore runs it standalone (a \
                 quorum of one behaves the same for clients; srvr says standalone)"
            );
        }
        if is_ensemble {
            let myid = myid.expect("read above for an ensemble");
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
            if let Some((p, line)) = observer_master_port {
                let clash = members.iter().find(|(_, m)| {
                    m.quorum_addr.port() == p
                        || m.election_port == p
                        || m.client_addr.is_some_and(|c| c.port() == p)
                });
                if let Some((id, _)) = clash {
                    return Err(ConfigError::BadValue {
                        path: path.to_owned(),
                        line,
                        key: "observerMasterPort".into(),
                        why: format!("{p} is a port of server.{id} already"),
                    });
                }
            }
            cfg.ensemble = Some(Ensemble {
                myid,
                members,
                init_limit_ticks: init_limit,
                sync_limit_ticks: sync_limit,
                config_version,
                observer_master_port: observer_master_port.map(|(p, _)| p),
            });
        } else if let Some((_, line)) = observer_master_port {
            tracing::warn!(
                "{}:{line}: observerMasterPort is for an ensemble; ignored by a standalone server",
                path.display()
            );
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
    ssl_quorum: bool,
    quorum_port_unification: bool,
    quorum_key_store: Option<PathBuf>,
    quorum_key_store_type: Option<String>,
    quorum_trust_store: Option<PathBuf>,
    quorum_trust_store_type: Option<String>,
    quorum_hostname_verification: Option<bool>,
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
                | "portUnification"
                | "ssl.quorum.keyStore.location"
                | "ssl.quorum.keyStore.type"
                | "ssl.quorum.trustStore.location"
                | "ssl.quorum.trustStore.type"
                | "ssl.quorum.hostnameVerification"
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
            "sslQuorum" => self.ssl_quorum = parse_bool(value)?,
            "portUnification" => self.quorum_port_unification = parse_bool(value)?,
            "ssl.quorum.keyStore.location" => self.quorum_key_store = Some(PathBuf::from(value)),
            "ssl.quorum.keyStore.type" => self.quorum_key_store_type = Some(value.to_string()),
            "ssl.quorum.trustStore.location" => {
                self.quorum_trust_store = Some(PathBuf::from(value))
            }
            "ssl.quorum.trustStore.type" => self.quorum_trust_store_type = Some(value.to_string()),
            "ssl.quorum.hostnameVerification" => {
                self.quorum_hostname_verification = Some(parse_bool(value)?)
            }
            _ => unreachable!("TlsKeys::takes({key:?}) without a setter"),
        }
        Ok(())
    }

    /// TLS between members, or `None` with neither `sslQuorum` nor `portUnification`: both
    /// stores are needed (the links are mutual TLS), PEM only.
    fn finish_quorum(&mut self, cfg_path: &Path) -> Result<Option<QuorumTls>, ConfigError> {
        if !self.ssl_quorum && !self.quorum_port_unification {
            return Ok(None);
        }
        let inconsistent = |why: String| {
            ConfigError::Inconsistent(format!("{}: quorum TLS: {why}", cfg_path.display()))
        };
        let key_store = self
            .quorum_key_store
            .take()
            .ok_or_else(|| inconsistent("ssl.quorum.keyStore.location is not set".into()))?;
        let trust_store = self
            .quorum_trust_store
            .take()
            .ok_or_else(|| inconsistent("ssl.quorum.trustStore.location is not set".into()))?;
        check_pem_store(&key_store, self.quorum_key_store_type.as_deref()).map_err(inconsistent)?;
        check_pem_store(&trust_store, self.quorum_trust_store_type.as_deref())
            .map_err(inconsistent)?;
        Ok(Some(QuorumTls {
            dial_tls: self.ssl_quorum,
            port_unification: self.quorum_port_unification,
            key_store,
            trust_store,
            hostname_verification: self.quorum_hostname_verification.unwrap_or(true),
        }))
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
    let (value, client) = match value.split_once(';') {
        Some((server, client)) => (server.trim(), Some(parse_client_addr(client.trim())?)),
        None => (value.trim(), None),
    };
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
        host: host.to_string(),
        quorum_addr,
        election_port,
        observer,
        client_addr: client,
    })
}

/// `[clientAddress:]clientPort` after a server line's `;`: a bare port, or an address (a
/// host name is resolved) and a port.
fn parse_client_addr(value: &str) -> Result<SocketAddr, String> {
    match value.rsplit_once(':') {
        None => {
            let port: u16 = parse_num(value)?;
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
        }
        Some((host, port)) => {
            let port: u16 = parse_num(port)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host, port)
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve client address {host:?}: {e}"))?
                .next()
                .ok_or_else(|| format!("client address {host:?} resolves to no address"))
        }
    }
}

/// The members and version of a configuration's text (`/zookeeper/config`, a dynamic
/// file), hosts resolved: what a member dials after a reconfig.
pub fn members_from_text(text: &str) -> Result<(BTreeMap<u64, Member>, i64), String> {
    let mut members = BTreeMap::new();
    let mut version = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("not a key=value line: {line:?}"))?;
        if key.trim() == "version" {
            version = i64::from_str_radix(value.trim(), 16)
                .map_err(|e| format!("{value:?} is not a hex version: {e}"))?;
            continue;
        }
        let id = key
            .trim()
            .strip_prefix("server.")
            .ok_or_else(|| format!("{key:?} is not server.N"))?;
        let id: u64 = parse_num(id)?;
        members.insert(id, parse_member(value.trim())?);
    }
    Ok((members, version))
}

/// The dynamic configuration file (`dynamicConfigFile`): `server.N` lines as in zoo.cfg and
/// the configuration's `version` (hex); its other keys (`group.N`, `weight.N`) are logged as
/// ignored with their line.
fn read_dynamic(
    path: &Path,
    members: &mut BTreeMap<u64, Member>,
    lines: &mut BTreeMap<u64, (PathBuf, usize)>,
    version: &mut i64,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
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
        let key = key.trim();
        let bad = |why: String| ConfigError::BadValue {
            path: path.to_owned(),
            line,
            key: key.to_string(),
            why,
        };
        if key == "version" {
            *version = i64::from_str_radix(value.trim(), 16)
                .map_err(|e| bad(format!("{value:?} is not a hex version: {e}")))?;
            continue;
        }
        let Some(id) = key.strip_prefix("server.") else {
            tracing::warn!(
                "{}:{line}: key {key:?} is not used by zoocore; ignored",
                path.display()
            );
            continue;
        };
        let id: u64 = parse_num(id).map_err(bad)?;
        let member = parse_member(value.trim()).map_err(bad)?;
        if members.insert(id, member).is_some() {
            return Err(bad(format!("server.{id} is given twice")));
        }
        lines.insert(id, (path.to_owned(), line));
    }
    Ok(())
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

fn parse_ip(value: &str) -> Result<IpAddr, String> {
    value
        .parse::<IpAddr>()
        .map_err(|e| format!("{value:?} is not an IP address: {e}"))
}

/// Whether JVM flags (zkServer.sh's SERVER_JVMFLAGS) turn read-only mode on, as
/// `Boolean.getBoolean("readonlymode.enabled")` reads `-Dreadonlymode.enabled=true`.
fn read_only_flag(flags: &str) -> bool {
    flags.split_whitespace().any(|f| {
        f.strip_prefix("-Dreadonlymode.enabled=")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
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
    fn read_only_mode_and_enforce_quota_from_zoo_cfg_or_jvm_flags() {
        let cfg = Config::parse("dataDir=/tmp/zk\n", Path::new("zoo.cfg")).unwrap();
        assert!(!cfg.read_only_mode && !cfg.enforce_quota);
        let text = "dataDir=/tmp/zk\nreadonlymode.enabled=true\nzookeeper.enforceQuota=true\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert!(cfg.read_only_mode && cfg.enforce_quota);
        assert!(read_only_flag("-Xmx1g -Dreadonlymode.enabled=true"));
        assert!(!read_only_flag("-Dreadonlymode.enabled=false -Dother=true"));
        assert!(!read_only_flag(""));
    }

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
        // 0: the sessions on the core's executor; not a number: refused with its line.
        let on_core = Config::parse("dataDir=/tmp/zk\nzoocore.shards=0\n", Path::new("zoo.cfg"));
        assert_eq!(on_core.unwrap().shards, Some(0));
        let bad = Config::parse("dataDir=/tmp/zk\nzoocore.shards=-1\n", Path::new("zoo.cfg"));
        assert!(bad.unwrap_err().to_string().contains("zoo.cfg:2"));
    }

    #[test]
    fn snapshot_pacing_keys() {
        let cfg = Config::parse("dataDir=/tmp/zk\n", Path::new("zoo.cfg")).unwrap();
        assert_eq!(cfg.snapshot_pacing, SnapshotPacing::default());
        assert!(cfg.snapshot_pacing.idle_priority && cfg.snapshot_pacing.direct_io);
        let text = "dataDir=/tmp/zk\nzoocore.snapshotIdlePriority=false\n\
                    zoocore.snapshotWriteMBps=40\nzoocore.snapshotWriteBehindKB=0\n\
                    zoocore.snapshotDirectIo=no\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert_eq!(
            cfg.snapshot_pacing,
            SnapshotPacing {
                idle_priority: false,
                write_mb_per_s: 40,
                write_behind_kb: 0,
                direct_io: false,
            }
        );
        let err = Config::parse("zoocore.snapshotWriteMBps=fast\n", Path::new("z.cfg"));
        assert!(err.unwrap_err().to_string().contains("snapshotWriteMBps"));
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
    fn observer_master_port_makes_every_voter_a_master_and_must_not_clash() {
        let dir = std::env::temp_dir().join(format!("zoocore-cfg-om-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "4\n").unwrap();
        let text = |port: u16| {
            format!(
                "dataDir={}\nobserverMasterPort={port}\nserver.1=127.0.0.1:2888:3888\n\
                 server.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\n\
                 server.4=127.0.0.4:2888:3888:observer\n",
                dir.display()
            )
        };
        let ens = Config::parse(&text(2191), Path::new("zoo.cfg"))
            .unwrap()
            .ensemble
            .unwrap();
        assert_eq!(ens.observer_master_port, Some(2191));
        assert!(ens.observer_masters());
        // 0 is ZooKeeper's "off".
        let ens = Config::parse(&text(0), Path::new("zoo.cfg"))
            .unwrap()
            .ensemble
            .unwrap();
        assert!(!ens.observer_masters());
        let msg = Config::parse(&text(3888), Path::new("z.cfg"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("z.cfg:2: observerMasterPort: 3888 is a port of"),
            "{msg}"
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
        // Without secureClientPortAddress it listens on every interface, as ZooKeeper.
        assert_eq!(tls.addr, Some("0.0.0.0:2281".parse().unwrap()));
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
    fn without_client_port_address_every_interface_is_served() {
        let cfg = Config::parse("clientPort=2999\n", Path::new("z.cfg")).unwrap();
        assert_eq!(cfg.client_addr, "0.0.0.0:2999".parse().unwrap());
        // Only the no-file default stays on loopback (README).
        assert_eq!(
            Config::standalone_default().client_addr,
            "127.0.0.1:2181".parse().unwrap()
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
        assert!(
            err.contains("ssl.quorum.keyStore.location is not set"),
            "{err}"
        );
        let err = parse("portUnification=true\nssl.quorum.keyStore.location=/k.pem\n");
        assert!(
            err.contains("ssl.quorum.trustStore.location is not set"),
            "{err}"
        );
        let err = parse(
            "sslQuorum=true\nssl.quorum.keyStore.location=/k.p12\n\
             ssl.quorum.trustStore.location=/t.pem\n",
        );
        assert!(err.contains("PKCS12 stores are not supported"), "{err}");
    }

    #[test]
    fn quorum_tls_keys_with_or_without_their_prefix() {
        let text = "dataDir=/d\nsslQuorum=true\nzookeeper.ssl.quorum.keyStore.location=/k.pem\n\
                    ssl.quorum.trustStore.location=/t.pem\nssl.quorum.trustStore.type=PEM\n\
                    ssl.quorum.hostnameVerification=false\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        let q = cfg.quorum_tls.expect("quorum TLS");
        assert!(q.dial_tls && !q.port_unification && !q.hostname_verification);
        assert_eq!(q.key_store, Path::new("/k.pem"));
        assert_eq!(q.trust_store, Path::new("/t.pem"));
        // The first step of a rolling switch: still dialling plain, accepting both.
        let text = "dataDir=/d\nportUnification=true\nssl.quorum.keyStore.location=/k.pem\n\
                    ssl.quorum.trustStore.location=/t.pem\n";
        let q = Config::parse(text, Path::new("zoo.cfg"))
            .unwrap()
            .quorum_tls
            .unwrap();
        assert!(!q.dial_tls && q.port_unification && q.hostname_verification);
        let cfg = Config::parse("dataDir=/d\n", Path::new("zoo.cfg")).unwrap();
        assert_eq!(cfg.quorum_tls, None);
    }

    #[test]
    fn the_configuration_text_is_zookeepers_dynamic_format() {
        let dir = std::env::temp_dir().join(format!("zoocore-dyn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        let dynamic = dir.join("zoo.cfg.dynamic.100000000");
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:2888:3888:participant;2181\n\
             server.2=localhost:2889:3889:participant;127.0.0.7:2400\n\
             server.3=127.0.0.3:2888:3888:observer\nversion=100000000\n",
        )
        .unwrap();
        let text = format!(
            "dataDir={}\ndynamicConfigFile={}\n",
            dir.display(),
            dynamic.display()
        );
        let cfg = Config::parse(&text, Path::new("zoo.cfg")).unwrap();
        let ens = cfg.ensemble.unwrap();
        assert_eq!(ens.config_version, 0x1_0000_0000);
        assert_eq!(
            ens.dynamic_text(),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=localhost:2889:3889:participant;127.0.0.7:2400\n\
             server.3=127.0.0.3:2888:3888:observer\nversion=100000000"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_docker_image_server_line_gives_the_client_port() {
        // What the official image writes for a standalone container: no clientPort line.
        let text = "dataDir=/data\nserver.1=localhost:2888:3888;2181\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert!(cfg.ensemble.is_none());
        assert_eq!(cfg.client_addr, "0.0.0.0:2181".parse().unwrap());
        let text = "server.1=localhost:2888:3888:participant;127.0.0.7:2400\n";
        let cfg = Config::parse(text, Path::new("zoo.cfg")).unwrap();
        assert_eq!(cfg.client_addr, "127.0.0.7:2400".parse().unwrap());
    }

    #[test]
    fn an_ensemble_member_serves_on_its_own_server_line_client_port() {
        let dir = std::env::temp_dir().join(format!("zoocore-cfg-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "2\n").unwrap();
        let text = format!(
            "dataDir={}\nserver.1=127.0.0.1:2888:3888;2181\n\
             server.2=127.0.0.1:2889:3889;127.0.0.3:2182\nserver.3=127.0.0.1:2890:3890;2183\n",
            dir.display()
        );
        let cfg = Config::parse(&text, Path::new("zoo.cfg")).unwrap();
        assert_eq!(cfg.client_addr, "127.0.0.3:2182".parse().unwrap());
        assert_eq!(cfg.ensemble.unwrap().members.len(), 3);
        // clientPort contradicting the server line is refused, naming the server line.
        let err = Config::parse(&format!("clientPort=2999\n{text}"), Path::new("zoo.cfg"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("zoo.cfg:4: server.2:"), "{err}");
        // An agreeing clientPort is fine.
        let cfg = Config::parse(&format!("clientPort=2182\n{text}"), Path::new("zoo.cfg")).unwrap();
        assert_eq!(cfg.client_addr.port(), 2182);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn server_lines_come_from_the_dynamic_config_file() {
        let dir = std::env::temp_dir().join(format!("zoocore-cfg-dyn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "3\n").unwrap();
        let dynamic = dir.join("zoo.cfg.dynamic.100000000");
        std::fs::write(
            &dynamic,
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
             server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183\nversion=100000000\n",
        )
        .unwrap();
        let text = format!(
            "dataDir={}\ndynamicConfigFile={}\n",
            dir.display(),
            dynamic.display()
        );
        let cfg = Config::parse(&text, Path::new("zoo.cfg")).unwrap();
        let ens = cfg.ensemble.as_ref().unwrap();
        assert_eq!((ens.myid, ens.voters()), (3, vec![1, 2, 3]));
        assert_eq!(cfg.client_addr, "127.0.0.1:2183".parse().unwrap());
        // A contradicting clientPort names the dynamic file's line.
        let err = Config::parse(&format!("clientPort=9\n{text}"), Path::new("zoo.cfg"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("{}:3: server.3:", dynamic.display())),
            "{err}"
        );
        // Server lines in both files are refused.
        let err = Config::parse(
            &format!("{text}server.1=127.0.0.1:2888:3888\n"),
            Path::new("zoo.cfg"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("zoo.cfg:2: dynamicConfigFile:"), "{err}");
        let missing = Config::parse("dynamicConfigFile=/nonexistent/zoo.dyn\n", Path::new("z"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/zoo.dyn: cannot read"),
            "{missing}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_standalone_and_reconfig_keys_are_read() {
        let text = "secureClientPort=2281\nsecureClientPortAddress=127.0.0.2\n\
                    ssl.keyStore.location=/k.pem\nssl.clientAuth=none\n\
                    standaloneEnabled=false\nreconfigEnabled=true\n";
        let cfg = Config::parse(text, Path::new("z.cfg")).unwrap();
        assert_eq!(
            cfg.client_tls.unwrap().addr,
            Some("127.0.0.2:2281".parse().unwrap())
        );
        assert!(!cfg.standalone_enabled);
        assert!(cfg.reconfig_enabled);
        let cfg = Config::parse("", Path::new("z.cfg")).unwrap();
        assert_eq!(cfg.client_tls, None);
        assert!(cfg.standalone_enabled && !cfg.reconfig_enabled);
        let err = Config::parse("standaloneEnabled=maybe\n", Path::new("z.cfg"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("z.cfg:1: standaloneEnabled:"), "{err}");
    }

    #[test]
    fn a_bad_client_suffix_names_its_line() {
        let err = Config::parse("server.1=localhost:2888:3888;port\n", Path::new("z.cfg"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("z.cfg:1: server.1:"), "{err}");
    }

    #[test]
    fn admin_and_metrics_keys_as_zookeeper_reads_them() {
        let cfg = Config::parse("clientPort=2181\n", Path::new("z.cfg")).unwrap();
        assert_eq!(
            cfg.admin,
            Admin {
                enabled: true,
                addr: "0.0.0.0:8080".parse().unwrap(),
                command_url: "/commands".into(),
                snapshot_enabled: true,
                rate_limit_interval_ms: 300_000,
                restore_enabled: true,
            }
        );
        assert_eq!(cfg.metrics_addr, None);
        let text = "admin.enableServer=false\nadmin.serverAddress=127.0.0.4\n\
                    admin.serverPort=9090\nadmin.commandURL=/cmd/\n\
                    metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
                    metricsProvider.httpHost=127.0.0.4\nmetricsProvider.exportJvmInfo=true\n";
        let cfg = Config::parse(text, Path::new("z.cfg")).unwrap();
        assert!(!cfg.admin.enabled);
        assert_eq!(cfg.admin.addr, "127.0.0.4:9090".parse().unwrap());
        assert_eq!(cfg.admin.command_url, "/cmd");
        assert_eq!(cfg.metrics_addr, Some("127.0.0.4:7000".parse().unwrap()));
        let cfg = Config::parse(
            "metricsProvider.className=PrometheusMetricsProvider\nmetricsProvider.httpPort=7100\n",
            Path::new("z.cfg"),
        )
        .unwrap();
        assert_eq!(cfg.metrics_addr, Some("0.0.0.0:7100".parse().unwrap()));
        let err = Config::parse("metricsProvider.className=com.Other\n", Path::new("z.cfg"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("z.cfg:1: metricsProvider.className:"),
            "{err}"
        );
        assert_eq!(
            Config::standalone_default().admin.addr,
            "127.0.0.1:8080".parse().unwrap()
        );
    }

    #[test]
    fn timeouts_are_negotiated_into_bounds() {
        let cfg = Config::standalone_default();
        assert_eq!(cfg.negotiate_timeout(1), 4000);
        assert_eq!(cfg.negotiate_timeout(10_000), 10_000);
        assert_eq!(cfg.negotiate_timeout(1_000_000), 40_000);
    }
}
