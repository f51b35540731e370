//! The four-letter words on the client port, in Apache ZooKeeper's output formats so that
//! existing monitoring scripts parse them (FourLetterCommands and the commands under
//! org.apache.zookeeper.server.command).
//!
//! Server-wide figures come from the shared counters; the per-connection and per-watch
//! listings (cons, crst, wchs, wchc, wchp) come from the shard that took the command, which is
//! every connection when the server runs one shard (the default on two cores).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use crate::shard::Shard;
use crate::topology::Shared;

/// The ZooKeeper version zoocore reports: a 3.9 version, so clients that enable features by
/// server version enable them, with zoocore's own appended.
pub const VERSION: &str = concat!(
    "3.9.3-zoocore-",
    env!("CARGO_PKG_VERSION"),
    ", built on zoocore"
);

const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "wchs", "wchc", "wchp",
    "dirs", "isro",
];

/// The word the first four bytes of a connection spell, if they spell a known one.
pub fn word(first: &[u8]) -> Option<String> {
    let w = std::str::from_utf8(first).ok()?;
    WORDS.contains(&w).then(|| w.to_string())
}

/// The answer to `word`, asked on a connection from `asker`.
pub fn answer(
    word: &str,
    asker: SocketAddr,
    shard: &Rc<RefCell<Shard>>,
    shared: &Shared,
) -> String {
    if !shared.cfg.four_letter_words.allows(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    match word {
        "ruok" => "imok".to_string(),
        "srvr" => server_stats(shared, None),
        "stat" => server_stats(shared, Some((&shard.borrow(), asker))),
        "mntr" => monitor(shard, shared),
        "conf" => conf(shared),
        "cons" => connections(&shard.borrow(), true),
        "crst" => {
            shard.borrow_mut().reset_connection_stats();
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
            let s = shard.borrow();
            let (conns, paths, total) = (
                s.watches.watcher_count(),
                s.watches.path_count(),
                s.watches.watch_count(),
            );
            format!("{conns} connections watching {paths} paths\nTotal watches:{total}\n")
        }
        "wchc" => {
            let s = shard.borrow();
            let mut out = String::new();
            for (conn, paths) in s.watches.by_watcher() {
                let session = s.session_of(conn).map_or(0, |x| x.0);
                let _ = writeln!(out, "0x{session:x}");
                for p in paths {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            out
        }
        "wchp" => {
            let s = shard.borrow();
            let mut out = String::new();
            for (path, conns) in s.watches.by_path() {
                let _ = writeln!(out, "{path}");
                for c in conns {
                    let session = s.session_of(c).map_or(0, |x| x.0);
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
        "isro" => "rw".to_string(),
        _ => String::new(),
    }
}

fn server_stats(shared: &Shared, clients: Option<(&Shard, SocketAddr)>) -> String {
    let stats = &shared.stats;
    let mode = crate::stats::mode();
    if !mode.serving() {
        return "This ZooKeeper instance is not currently serving requests\n".to_string();
    }
    let (min, avg, max) = stats.latency_ms();
    let mut out = format!("Zookeeper version: {VERSION}\n");
    if let Some((shard, asker)) = clients {
        out.push_str("Clients:\n");
        out.push_str(&connections(shard, false));
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
        stats.core.queued.load(Relaxed),
        stats.core.last_zxid.load(Relaxed),
        mode.name(),
        stats.core.node_count.load(Relaxed),
    );
    out
}

fn connections(shard: &Shard, full: bool) -> String {
    let mut out = String::new();
    let mut ids: Vec<_> = shard.conns.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let c = &shard.conns[&id];
        let queued = shard.queue_len(id);
        if full {
            let _ = writeln!(
                out,
                " /{}[1](queued={queued},recved={},sent={},sid=0x{:x},lop={},est={},to={},lcxid=0x{:x},lzxid=0x{:x},lresp={},llat=0,minlat=0,avglat=0,maxlat=0)",
                c.addr,
                c.stats.received,
                c.stats.sent,
                c.session.0,
                op_name(c.stats.last_op),
                c.stats.established_ms,
                c.timeout_ms,
                c.stats.last_cxid,
                shard.view.last_zxid().0,
                c.stats.last_response_ms,
            );
        } else {
            let _ = writeln!(
                out,
                " /{}[1](queued={queued},recved={},sent={})",
                c.addr, c.stats.received, c.stats.sent
            );
        }
    }
    if full {
        out.push('\n');
    }
    out
}

/// ZooKeeper's four-letter abbreviations of the last operation (Request.op2String).
fn op_name(op: zoocore_proto::OpCode) -> &'static str {
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

fn monitor(shard: &Rc<RefCell<Shard>>, shared: &Shared) -> String {
    let stats = &shared.stats;
    let (min, avg, max) = stats.latency_ms();
    let watches = shard.borrow().watches.watch_count();
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
            stats.core.queued.load(Relaxed).to_string(),
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
            "zoocore_commit_batches",
            stats.core.batches.load(Relaxed).to_string(),
        ),
        ("zoocore_shards", stats.shards.len().to_string()),
        (
            "zoocore_log_records",
            stats.core.log_records.load(Relaxed).to_string(),
        ),
        (
            "zoocore_log_syncs",
            stats.core.log_syncs.load(Relaxed).to_string(),
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
    let mut out = String::new();
    for (k, v) in rows {
        let _ = writeln!(out, "{k}\t{v}");
    }
    out
}

fn conf(shared: &Shared) -> String {
    let c = &shared.cfg;
    format!(
        "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId=0\nzoocore.shards={}\nzoocore.pinning={}\n",
        c.client_addr.port(),
        c.data_dir.display(),
        dir_size(&c.data_dir),
        c.data_log_dir.display(),
        dir_size(&c.data_log_dir),
        c.tick_time_ms,
        c.max_client_cnxns,
        c.min_session_timeout_ms,
        c.max_session_timeout_ms,
        shared.stats.shards.len(),
        c.pinning,
    )
}

fn environment() -> String {
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

fn dir_size(dir: &std::path::Path) -> u64 {
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn max_fds() -> u64 {
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
