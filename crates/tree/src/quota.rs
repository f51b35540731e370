//! Quotas, as ZooKeeper's DataTree keeps them: a path `P` has a quota when the node
//! `/zookeeper/quota/P/zookeeper_limits` exists (zkCli's `setquota` creates it, with
//! `/zookeeper/quota/P/zookeeper_stats` beside it). The tree then keeps the stats node's data
//! equal to `count=N,bytes=M`: the nodes of `P`'s subtree (`P` included) and their data
//! bytes. The stats are recounted when a limits or stats node is created (DataTree
//! `updateQuotaForPath`), and moved by each create, delete and setData below the nearest
//! ancestor with a quota (`updateCountBytes`); paths under /zookeeper never count. The stats
//! node's data changes without a version or mzxid change, as in ZooKeeper.
//!
//! A limits node holds ZooKeeper's StatsTrack text: `count` and `bytes` (soft limits: going
//! over them is only logged) and, from zkCli's `setquota -N`/`-B`, `countHardLimit` and
//! `byteHardLimit`, which refuse the create or setData that would go over them with
//! QUOTAEXCEEDED when the server runs with `enforceQuota=true` (ZooKeeperServer.checkQuota).
//! Every value is -1 when absent: no limit.
//!
//! This file holds the path and text rules; the tree (tree.rs) calls them from apply.

/// Where quota nodes live.
pub const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The node whose existence gives its path a quota.
pub const LIMITS_NODE: &str = "zookeeper_limits";
/// The node whose data the tree keeps as the path's usage.
pub const STATS_NODE: &str = "zookeeper_stats";

/// Which quota node `path` is: `(quota'd path, node name)` for
/// `/zookeeper/quota/<P>/zookeeper_limits` or `.../zookeeper_stats`.
pub fn quota_node(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(QUOTA_ROOT)?;
    if !rest.starts_with('/') {
        return None;
    }
    let (target, name) = rest.rsplit_once('/')?;
    if target.is_empty() || (name != LIMITS_NODE && name != STATS_NODE) {
        return None;
    }
    Some((target, name))
}

/// The stats node of quota'd path `target`.
pub fn stats_path(target: &str) -> String {
    format!("{QUOTA_ROOT}{target}/{STATS_NODE}")
}

/// Whether `path` is one of ZooKeeper's own (never counted in a quota).
pub fn is_system_path(path: &str) -> bool {
    path == "/zookeeper" || path.starts_with("/zookeeper/")
}

/// `path` and its ancestors, longest first, "/" excluded (ZooKeeper's PathTrie never
/// matches the root as a quota prefix).
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = (path != "/").then_some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.rfind('/').filter(|&i| i > 0).map(|i| &current[..i]);
        Some(current)
    })
}

/// Reads `count=N,bytes=M` (ZooKeeper's StatsTrack text); anything unreadable is zero.
pub fn parse_stats(data: &[u8]) -> (i64, i64) {
    let text = String::from_utf8_lossy(data);
    let mut count = 0;
    let mut bytes = 0;
    for part in text.split([',', ';']) {
        match part.split_once('=') {
            Some(("count", v)) => count = v.trim().parse().unwrap_or(0),
            Some(("bytes", v)) => bytes = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    (count, bytes)
}

/// The limits a `zookeeper_limits` node sets; -1 is "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub count: i64,
    pub bytes: i64,
    pub count_hard: i64,
    pub bytes_hard: i64,
}

/// Reads a limits node as StatsTrack does: pairs separated by runs of `,` or `;`, each
/// `key=value` (a trailing `=` after the value, which ZooKeeper writes after `bytes` for old
/// parsers, is ignored); a missing, empty or unreadable value is -1.
pub fn parse_limits(data: &[u8]) -> Limits {
    let text = String::from_utf8_lossy(data);
    let mut limits = Limits {
        count: -1,
        bytes: -1,
        count_hard: -1,
        bytes_hard: -1,
    };
    for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
        let mut kv = pair.split('=');
        let (Some(key), value) = (kv.next(), kv.next()) else {
            continue;
        };
        let value = value.and_then(|v| v.trim().parse().ok()).unwrap_or(-1);
        match key.trim() {
            "count" => limits.count = value,
            "bytes" => limits.bytes = value,
            "countHardLimit" => limits.count_hard = value,
            "byteHardLimit" => limits.bytes_hard = value,
            _ => {}
        }
    }
    limits
}

/// A create or setData that takes a quota'd subtree over one of its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The quota'd path.
    pub prefix: String,
    /// `count` or `bytes`.
    pub what: &'static str,
    /// The usage after the change.
    pub value: i64,
    pub limit: i64,
    /// A hard limit: refused under `enforceQuota`; a soft one is only logged.
    pub hard: bool,
}

impl std::fmt::Display for QuotaExceeded {
    /// ZooKeeper's log line, e.g. `Quota exceeded: /a [current count=4, hardCountLimit=3]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.hard { "hard" } else { "soft" };
        let name = if self.what == "count" {
            "Count"
        } else {
            "Byte"
        };
        write!(
            f,
            "Quota exceeded: {} [current {}={}, {kind}{name}Limit={}]",
            self.prefix, self.what, self.value, self.limit
        )
    }
}

/// What a change of `count_diff` nodes and `bytes_diff` bytes does to a subtree whose usage
/// is `(count, bytes)` under `limits` (checkQuota: a limit is checked only when its side
/// changes; a hard limit, when set, is the one checked). A hard excess comes before a soft
/// one.
pub fn check(
    prefix: &str,
    limits: Limits,
    usage: (i64, i64),
    count_diff: i64,
    bytes_diff: i64,
) -> Option<QuotaExceeded> {
    let side = |what, diff: i64, current: i64, soft: i64, hard: i64| {
        if diff == 0 || (soft < 0 && hard < 0) {
            return None;
        }
        let (limit, hard) = if hard >= 0 {
            (hard, true)
        } else {
            (soft, false)
        };
        let value = current + diff;
        (value > limit).then(|| QuotaExceeded {
            prefix: prefix.to_owned(),
            what,
            value,
            limit,
            hard,
        })
    };
    let count = side(
        "count",
        count_diff,
        usage.0,
        limits.count,
        limits.count_hard,
    );
    let bytes = side(
        "bytes",
        bytes_diff,
        usage.1,
        limits.bytes,
        limits.bytes_hard,
    );
    match (count, bytes) {
        (Some(c), _) if c.hard => Some(c),
        (_, Some(b)) if b.hard => Some(b),
        (c, b) => c.or(b),
    }
}

/// ZooKeeper's StatsTrack text for a usage.
pub fn format_stats(count: i64, bytes: i64) -> Vec<u8> {
    format!("count={count},bytes={bytes}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_nodes_name_their_path() {
        assert_eq!(
            quota_node("/zookeeper/quota/a/b/zookeeper_limits"),
            Some(("/a/b", LIMITS_NODE))
        );
        assert_eq!(
            quota_node("/zookeeper/quota/a/zookeeper_stats"),
            Some(("/a", STATS_NODE))
        );
        assert_eq!(quota_node("/zookeeper/quota/zookeeper_stats"), None);
        assert_eq!(quota_node("/zookeeper/quota/a/other"), None);
        assert_eq!(quota_node("/zookeeper/quotax/a/zookeeper_stats"), None);
        assert_eq!(quota_node("/a/zookeeper_stats"), None);
    }

    #[test]
    fn ancestors_longest_first_without_the_root() {
        let all: Vec<_> = self_and_ancestors("/a/b/c").collect();
        assert_eq!(all, ["/a/b/c", "/a/b", "/a"]);
        assert_eq!(self_and_ancestors("/").count(), 0);
    }

    #[test]
    fn stats_text_round_trips_and_tolerates_zookeepers_variants() {
        assert_eq!(parse_stats(&format_stats(4, 7)), (4, 7));
        assert_eq!(
            parse_stats(b"count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"),
            (2, 0)
        );
        assert_eq!(parse_stats(b"garbage"), (0, 0));
    }

    #[test]
    fn limits_read_as_stats_track_writes_them() {
        // zkCli 3.8's `setquota -n 3 /a` and `setquota -N 3 -B 10 /a`.
        assert_eq!(
            parse_limits(b"count=3,bytes=-1"),
            Limits {
                count: 3,
                bytes: -1,
                count_hard: -1,
                bytes_hard: -1
            }
        );
        assert_eq!(
            parse_limits(b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3"),
            Limits {
                count: -1,
                bytes: -1,
                count_hard: 3,
                bytes_hard: 10
            }
        );
        assert_eq!(
            parse_limits(b"count=,bytes=x;;countHardLimit"),
            Limits {
                count: -1,
                bytes: -1,
                count_hard: -1,
                bytes_hard: -1
            }
        );
    }

    #[test]
    fn a_hard_limit_is_checked_before_a_soft_one_and_only_its_side() {
        let hard_count = Limits {
            count: 1,
            bytes: 5,
            count_hard: 3,
            bytes_hard: -1,
        };
        // At the hard count: one more node is refused, whatever the soft count says.
        let e = check("/a", hard_count, (3, 0), 1, 0).unwrap();
        assert!(e.hard);
        assert_eq!(
            e.to_string(),
            "Quota exceeded: /a [current count=4, hardCountLimit=3]"
        );
        // A setData changes no count: only the bytes side is looked at (soft here).
        let e = check("/a", hard_count, (3, 5), 0, 1).unwrap();
        assert!(!e.hard);
        assert_eq!(
            e.to_string(),
            "Quota exceeded: /a [current bytes=6, softByteLimit=5]"
        );
        // Within every limit: nothing. Still over after a shrink: reported, as ZooKeeper does.
        assert_eq!(check("/a", hard_count, (2, 0), 1, 0), None);
        assert_eq!(check("/a", hard_count, (2, 4), 0, 1), None);
        assert!(check("/a", hard_count, (9, 9), 0, -1).is_some());
        // A soft count over and a hard bytes over: the hard one is reported.
        let both = Limits {
            count: 0,
            bytes: -1,
            count_hard: -1,
            bytes_hard: 2,
        };
        assert!(check("/a", both, (1, 2), 1, 1).unwrap().hard);
    }
}
