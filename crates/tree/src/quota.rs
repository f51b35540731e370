//! Quotas, as ZooKeeper's DataTree keeps them: a path `P` has a quota when the node
//! `/zookeeper/quota/P/zookeeper_limits` exists (zkCli's `setquota` creates it, with
//! `/zookeeper/quota/P/zookeeper_stats` beside it). The tree then keeps the stats node's data
//! equal to `count=N,bytes=M`: the nodes of `P`'s subtree (`P` included) and their data
//! bytes. The stats are recounted when a limits or stats node is created (DataTree
//! `updateQuotaForPath`), and moved by each create, delete and setData below the nearest
//! ancestor with a quota (`updateCountBytes`); paths under /zookeeper never count. The stats
//! node's data changes without a version or mzxid change, as in ZooKeeper.
//!
//! Quotas are soft, as ZooKeeper's are by default: nothing is refused (hard limits need
//! `zookeeper.enforceQuota`, which zoocore does not implement; docs/OPERATIONS.md).
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
}
