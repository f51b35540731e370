//! The four-letter words on the client port, in Apache ZooKeeper's output formats so that
//! existing monitoring scripts parse them (FourLetterCommands and the commands under
//! org.apache.zookeeper.server.command).
//!
//! Server-wide figures come from the shared counters; the per-connection and per-watch
//! listings (cons, crst, stat, wchs, wchc, wchp, mntr's watch count) are collected from every
//! shard (reports.rs).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use zoocore_tree::Tree;

use crate::reports::{self, ShardReport};
use crate::shared::Shared;

/// The ZooKeeper version zoocore reports: a 3.9 version, so clients that enable features by
/// server version enable them, with zoocore's own appended.
pub const VERSION: &str = concat!(
    "3.9.3-zoocore-",
    env!("CARGO_PKG_VERSION"),
    ", built on zoocore"
);

const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "wchs", "wchc", "wchp",
    "dirs", "isro", "dump", "gtmk", "stmk", "rqld", "ydld",
];

/// Bytes after `stmk` on the wire: the new trace mask, a big-endian long.
pub const STMK_MASK_BYTES: usize = 8;

/// ZooTrace's initial mask: client requests, server packets, sessions, warnings.
pub const TRACE_MASK_DEFAULT: i64 = 306;

/// The word the first four bytes of a connection spell, if they spell a known one.
pub fn word(first: &[u8]) -> Option<String> {
    let w = std::str::from_utf8(first).ok()?;
    WORDS.contains(&w).then(|| w.to_string())
}

/// The answer to `word`, asked on a connection from `asker`; `view` is the asking shard's
/// tree (for dump), `arg` what followed the word (stmk's mask).
pub async fn answer(
    word: &str,
    asker: SocketAddr,
    shared: &Shared,
    view: &Tree,
    arg: &[u8],
) -> String {
    if !shared.cfg.four_letter_words.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    match word {
        "ruok" => "imok".to_string(),
        "srvr" => server_stats(shared, None),
        "stat" => server_stats(shared, Some((&shared.reports.collect().await, asker))),
        "mntr" => monitor(shared, &shared.reports.collect().await),
        "conf" => conf(shared),
        "cons" => {
            let mut out: String = shared
                .reports
                .collect()
                .await
                .iter()
                .flat_map(|p| &p.cons)
                .map(|l| format!("{l}\n"))
                .collect();
            // ZooKeeper lists the asking connection too, without a session.
            let _ = writeln!(out, " /{asker}[0](queued=0,recved=1,sent=0)");
            out.push('\n');
            out
        }
        "dump" => dump(view, &shared.reports.collect().await),
        // ZooKeeper prints the mask with no newline. zoocore keeps no request trace (its
        // logs are `ZOOCORE_LOG` filters), so the mask is only remembered and reported.
        "gtmk" => shared.stats.trace_mask.load(Relaxed).to_string(),
        "stmk" => match <[u8; STMK_MASK_BYTES]>::try_from(arg) {
            Ok(mask) => {
                let mask = i64::from_be_bytes(mask);
                shared.stats.trace_mask.store(mask, Relaxed);
                mask.to_string()
            }
            Err(_) => String::new(),
        },
        "crst" => {
            shared.reports.reset().await;
            "Connection stats reset.\n".to_string()
        }
        "srst" => {
            for s in &shared.stats.shards {
                s.reset();
            }
            "Server stats reset.\n".to_string()
        }
        "envi" => environment(),
        "wchs" => {
            let (conns, paths, total) = reports::watch_summary(&shared.reports.collect().await);
            format!("{conns} connections watching {paths} paths\nTotal watches:{total}\n")
        }
        "wchc" => {
            let mut out = String::new();
            for (session, paths) in reports::by_session(&shared.reports.collect().await) {
                let _ = writeln!(out, "0x{session:x}");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out
        }
        "wchp" => {
            let mut out = String::new();
            for (path, sessions) in reports::by_path(&shared.reports.collect().await) {
                let _ = writeln!(out, "{path}");
                for session in sessions {
                    let _ = writeln!(out, "\t0x{session:x}");
                }
            }
            out
        }
        "dirs" => {
            let data = dir_size(&shared.cfg.data_dir);
            let log = dir_size(&shared.cfg.data_log_dir);
            format!("datadir_size: {data}\nlogdir_size: {log}\n")
        }
        // IsroCommand: "null" while the server does not serve (an election), which clients
        // use to skip a member that would refuse their handshake; "ro" when read-only.
        "isro" => crate::stats::mode().isro().to_string(),
        // ClickHouse Keeper's words: the answer says whether the ask was passed on.
        "rqld" => {
            let said = crate::leadership::request(&shared.stats.leadership);
            format!("{}\n", said.unwrap_or_else(|e| e))
        }
        "ydld" => {
            let said = crate::leadership::yield_to(&shared.stats.leadership, None);
            format!("{}\n", said.unwrap_or_else(|e| e))
        }
        _ => String::new(),
    }
}

/// dump: sessions with their timeouts (the leader's "Global Sessions" form of ZooKeeper's
/// SessionTracker dump: expiry times live on the core, not in the tree), each session's
/// ephemerals, and the connections.
fn dump(view: &Tree, parts: &[ShardReport]) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    let sessions: Vec<_> = view.sessions().collect();
    let _ = writeln!(out, "Global Sessions({}):", sessions.len());
    for (session, timeout_ms) in &sessions {
        let _ = writeln!(out, "0x{:x}\t{timeout_ms}ms", session.0);
    }
    let with_ephemerals: Vec<_> = sessions
        .iter()
        .map(|(s, _)| (*s, view.ephemerals(*s, "/")))
        .filter(|(_, paths)| !paths.is_empty())
        .collect();
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", with_ephemerals.len());
    for (session, paths) in with_ephemerals {
        let _ = writeln!(out, "0x{:x}:", session.0);
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out.push_str("Connections dump:\n");
    let conns: Vec<_> = parts.iter().flat_map(|p| &p.dump).collect();
    let _ = writeln!(out, "Connections ({}):", conns.len());
    for line in conns {
        let _ = writeln!(out, "{line}");
    }
    out
}

fn server_stats(shared: &Shared, clients: Option<(&[ShardReport], SocketAddr)>) -> String {
    let stats = &shared.stats;
    let mode = crate::stats::mode();
    if !mode.serving() {
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
    }
    let (min, avg, max) = stats.latency_ms();
    let mut out = format!("Zookeeper version: {VERSION}\n");
    if let Some((parts, asker)) = clients {
        out.push_str("Clients:\n");
        for line in parts.iter().flat_map(|p| &p.brief) {
            let _ = writeln!(out, "{line}");
        }
        // ZooKeeper lists the asking connection too, without a session.
        let _ = writeln!(out, " /{asker}[0](queued=0,recved=1,sent=0)");
        out.push('\n');
    }
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{:.4}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        min.round() as u64,
        avg,
        max.round() as u64,
        stats.sum(|s| &s.packets_received),
        stats.sum(|s| &s.packets_sent),
        stats.sum(|s| &s.connections),
        stats.sum(|s| &s.outstanding),
        stats.core.last_zxid.load(Relaxed),
        mode.name(),
        stats.core.node_count.load(Relaxed),
    );
    out
}

/// ZooKeeper's four-letter abbreviations of the last operation (Request.op2String).
pub fn op_name(op: zoocore_proto::OpCode) -> &'static str {
    use zoocore_proto::OpCode::*;
    match op {
        Notification => "NA",
        Create | Create2 | CreateContainer | CreateTtl => "CREA",
        Delete | DeleteContainer => "DELE",
        Exists => "EXIS",
        GetData => "GETD",
        SetData => "SETD",
        GetAcl => "GETA",
        SetAcl => "SETA",
        GetChildren | GetChildren2 => "GETC",
        Sync => "SYNC",
        Ping => "PING",
        Check => "CHEC",
        Multi | MultiRead => "MULT",
        CloseSession => "CLOS",
        SetWatches | SetWatches2 => "SETW",
        _ => "UNKN",
    }
}

fn monitor(shared: &Shared, parts: &[ShardReport]) -> String {
    let mut out = String::new();
    for (k, v) in monitor_rows(shared, parts) {
        let _ = writeln!(out, "{k}\t{v}");
    }
    out
}

/// mntr's rows, in its order: also the admin server's `monitor` and the metrics' figures.
pub fn monitor_rows(shared: &Shared, parts: &[ShardReport]) -> Vec<(&'static str, String)> {
    let stats = &shared.stats;
    let (min, avg, max) = stats.latency_ms();
    let watches = reports::watch_summary(parts).2;
    let mode = crate::stats::mode();
    let mut rows: Vec<(&str, String)> = vec![
        ("zk_version", VERSION.to_string()),
        ("zk_server_state", mode.name().to_string()),
        (
            "zk_zxid",
            format!("0x{:x}", stats.core.last_zxid.load(Relaxed)),
        ),
        ("zk_avg_latency", format!("{avg:.4}")),
        ("zk_max_latency", format!("{}", max.round() as u64)),
        ("zk_min_latency", format!("{}", min.round() as u64)),
        (
            "zk_packets_received",
            stats.sum(|s| &s.packets_received).to_string(),
        ),
        (
            "zk_packets_sent",
            stats.sum(|s| &s.packets_sent).to_string(),
        ),
        (
            "zk_num_alive_connections",
            stats.sum(|s| &s.connections).to_string(),
        ),
        (
            "zk_outstanding_requests",
            stats.sum(|s| &s.outstanding).to_string(),
        ),
        (
            "zk_znode_count",
            stats.core.node_count.load(Relaxed).to_string(),
        ),
        ("zk_watch_count", watches.to_string()),
        (
            "zk_ephemerals_count",
            stats.core.ephemerals.load(Relaxed).to_string(),
        ),
        (
            "zk_approximate_data_size",
            stats.core.data_size.load(Relaxed).to_string(),
        ),
        ("zk_open_file_descriptor_count", open_fds().to_string()),
        ("zk_max_file_descriptor_count", max_fds().to_string()),
        (
            "zk_global_sessions",
            stats.core.sessions.load(Relaxed).to_string(),
        ),
        ("zk_last_proposal_size", "-1".to_string()),
        ("zk_uptime", stats.started.elapsed().as_millis().to_string()),
        ("zoocore_txns", stats.core.txns.load(Relaxed).to_string()),
        (
            "zoocore_writes_refused_for_room",
            stats.core.refused_for_room.load(Relaxed).to_string(),
        ),
        (
            "zoocore_commit_batches",
            stats.core.batches.load(Relaxed).to_string(),
        ),
        ("zoocore_shards", shard_executors(shared).to_string()),
        (
            "zoocore_log_records",
            stats.core.log_records.load(Relaxed).to_string(),
        ),
        (
            "zoocore_log_syncs",
            stats.core.log_syncs.load(Relaxed).to_string(),
        ),
        (
            "zk_fsync_threshold_exceed_count",
            stats.core.fsync_slow.load(Relaxed).to_string(),
        ),
        (
            "zoocore_fsync_count",
            stats.core.fsyncs.load(Relaxed).to_string(),
        ),
        (
            "zoocore_fsync_p99_us",
            stats.core.fsync_p99_us.load(Relaxed).to_string(),
        ),
        (
            "zoocore_fsync_max_us",
            stats.core.fsync_max_us.load(Relaxed).to_string(),
        ),
    ];
    if mode == crate::stats::Mode::Leader {
        rows.push(("zk_learners", stats.core.learners.load(Relaxed).to_string()));
        rows.push((
            "zk_followers",
            stats.core.learners.load(Relaxed).to_string(),
        ));
        rows.push((
            "zk_synced_followers",
            stats.core.synced_followers.load(Relaxed).to_string(),
        ));
    }
    // Observer masters (zoocore's names; ZooKeeper shows them over JMX only).
    if mode == crate::stats::Mode::Follower {
        rows.push((
            "zoocore_observers_served",
            stats.core.observers_served.load(Relaxed).to_string(),
        ));
    }
    if mode == crate::stats::Mode::Observer {
        rows.push((
            "zoocore_observer_master",
            stats.core.observer_master.load(Relaxed).to_string(),
        ));
    }
    rows
}

/// Session executors besides the core's, as the server resolved `zoocore.shards` (0: the
/// sessions live on the core's executor).
fn shard_executors(shared: &Shared) -> usize {
    shared.cfg.shards.unwrap_or(shared.stats.shards.len())
}

/// ZooKeeperServer.dumpConf, and on an ensemble member QuorumZooKeeperServer's additions:
/// its id, the limits, the ports, its type (0 participant, 1 observer) and the membership
/// as `/zookeeper/config` holds it, last and with no newline after `version=`.
fn conf(shared: &Shared) -> String {
    let c = &shared.cfg;
    let mut out = format!(
        "clientPort={}\nsecureClientPort={}\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\nzoocore.shards={}\nzoocore.pinning={}\n",
        c.client_addr.port(),
        // ZooKeeper says -1 without a secure port.
        c.client_tls
            .as_ref()
            .and_then(|t| t.addr)
            .map_or(-1, |a| i32::from(a.port())),
        c.data_dir.display(),
        dir_size(&c.data_dir),
        c.data_log_dir.display(),
        dir_size(&c.data_log_dir),
        c.tick_time_ms,
        c.max_client_cnxns,
        c.min_session_timeout_ms,
        c.max_session_timeout_ms,
        c.ensemble.as_ref().map_or(0, |e| e.myid),
        shard_executors(shared),
        c.pinning,
    );
    if let Some(e) = &c.ensemble {
        let me = &e.members[&e.myid];
        let _ = write!(
            out,
            "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={}\nmembership: \n{}",
            e.init_limit_ticks,
            e.sync_limit_ticks,
            me.election_port,
            me.quorum_addr.port(),
            u8::from(me.observer),
            e.dynamic_text(),
        );
    }
    out
}

pub fn environment() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    format!(
        "Environment:\nzookeeper.version={VERSION}\nhost.name={}\nos.name={}\nos.arch={}\nuser.dir={cwd}\nzoocore.pid={}\n",
        host.trim(),
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::process::id(),
    )
}

pub fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

pub fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leadership_words_are_words() {
        assert_eq!(word(b"rqld").as_deref(), Some("rqld"));
        assert_eq!(word(b"ydld").as_deref(), Some("ydld"));
    }

    #[test]
    fn only_known_words_are_words() {
        assert_eq!(word(b"ruok").as_deref(), Some("ruok"));
        assert_eq!(word(b"mntr").as_deref(), Some("mntr"));
        assert_eq!(word(&[0, 0, 0, 44]), None);
        assert_eq!(word(b"abcd"), None);
    }

    #[test]
    fn version_is_a_zookeeper_3_9_version() {
        assert!(VERSION.starts_with("3.9."));
        assert!(VERSION.contains("zoocore"));
    }
}
