//! Dynamic reconfiguration on the member's side: the configuration text ZooKeeper keeps in
//! `/zookeeper/config` (QuorumMaj.toString: `server.N=host:quorumPort:electionPort:role`
//! with `;clientHost:clientPort`, then `version=<hex zxid>`), the leader's prep of a
//! `reconfig` request (PrepRequestProcessor's reconfig case, with every refusal it makes),
//! and the reading of a proposal's payload that tells the replica a reconfig is in it.
//!
//! The text is the only form the configuration takes between members: it is the txn's data,
//! the node's data, and the dynamic file's content. Parsing it here is syntax only (no name
//! resolution): the server resolves hosts when it dials its new peers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use zoocore_proto::{Bytes, ErrorCode, Id, Perms, Record, Zxid};
use zoocore_tree::{check_acl, is_reconfig_bytes, Tree, Txn, CONFIG_PATH};
use zoocore_zab::Members;

use crate::forward::decode_payload;

/// One `server.N` line's right-hand side (QuorumServer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
    pub observer: bool,
    /// `clientHost:clientPort`; a bare `;port` is every interface (`0.0.0.0:port`), as
    /// ZooKeeper writes it back.
    pub client: Option<(String, u16)>,
}

impl fmt::Display for ServerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let role = if self.observer {
            "observer"
        } else {
            "participant"
        };
        write!(
            f,
            "{host}:{}:{}:{role}",
            self.quorum_port, self.election_port
        )?;
        if let Some((h, p)) = &self.client {
            write!(f, ";{h}:{p}")?;
        }
        Ok(())
    }
}

/// A whole configuration: its servers and its version (the zxid of the reconfig that made
/// it, 0 for one never reconfigured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    pub servers: BTreeMap<u64, ServerSpec>,
    pub version: Zxid,
}

impl ClusterConfig {
    /// Reads the text of `/zookeeper/config` or a dynamic file: `server.N=` lines and an
    /// optional `version=` line, by newlines or commas (ZooKeeper takes either for
    /// `-members`); blank lines are skipped.
    pub fn parse(text: &str) -> Result<ClusterConfig, String> {
        let mut cfg = ClusterConfig::default();
        for line in text.split(['\n', ',']) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("not a key=value line: {line:?}"))?;
            let (key, value) = (key.trim(), value.trim());
            if key == "version" {
                cfg.version = Zxid(
                    i64::from_str_radix(value, 16).map_err(|e| format!("version={value}: {e}"))?,
                );
                continue;
            }
            let (id, spec) = parse_server(key, value)?;
            if cfg.servers.insert(id, spec).is_some() {
                return Err(format!("server.{id} given twice"));
            }
        }
        Ok(cfg)
    }

    /// The text as ZooKeeper writes it: one line per server in id order, then `version=`
    /// in hex with no newline after it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (id, spec) in &self.servers {
            out.push_str(&format!("server.{id}={spec}\n"));
        }
        out.push_str(&format!("version={:x}", self.version.0));
        out
    }

    pub fn members(&self) -> Members {
        Members::new(
            self.servers
                .iter()
                .filter(|(_, s)| !s.observer)
                .map(|(id, _)| *id),
            self.servers
                .iter()
                .filter(|(_, s)| s.observer)
                .map(|(id, _)| *id),
        )
    }

    fn voters(&self) -> BTreeSet<u64> {
        self.members().voters
    }

    /// QuorumServer.checkAddressDuplicate: no two servers share a quorum or election
    /// address.
    fn check_duplicates(&self) -> Result<(), String> {
        let mut seen: BTreeMap<(String, u16), u64> = BTreeMap::new();
        for (id, s) in &self.servers {
            for port in [s.quorum_port, s.election_port] {
                if let Some(other) = seen.insert((s.host.clone(), port), *id) {
                    if other != *id {
                        return Err(format!(
                            "server.{id} and server.{other} share the address {}:{port}",
                            s.host
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// One `server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort]` (the key
/// and the value of the line).
pub fn parse_server(key: &str, value: &str) -> Result<(u64, ServerSpec), String> {
    let id = key
        .strip_prefix("server.")
        .ok_or_else(|| format!("{key:?} is not server.N"))?
        .parse::<u64>()
        .map_err(|e| format!("{key}: bad server id: {e}"))?;
    let (server, client) = match value.split_once(';') {
        Some((s, c)) => (s.trim(), Some(c.trim())),
        None => (value.trim(), None),
    };
    let (host, rest) = split_host(server)?;
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "{key}={value}: expected host:quorumPort:electionPort[:role]"
        ));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|e| format!("{key}={value}: bad port {p:?}: {e}"))
    };
    let observer = match parts.get(2).copied() {
        None | Some("participant") => false,
        Some("observer") => true,
        Some(other) => return Err(format!("{key}={value}: unrecognised peer type {other:?}")),
    };
    let client = match client {
        None => None,
        Some(c) => Some(match split_host(c) {
            Ok((h, p)) if !p.is_empty() => (h, port(p)?),
            _ => ("0.0.0.0".to_owned(), port(c)?),
        }),
    };
    Ok((
        id,
        ServerSpec {
            host,
            quorum_port: port(parts[0])?,
            election_port: port(parts[1])?,
            observer,
            client,
        },
    ))
}

/// `host:rest` or `[v6]:rest`: the host and what follows its colon (empty when there is no
/// colon after the host).
fn split_host(s: &str) -> Result<(String, &str), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, rest) = inner
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: unclosed ["))?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        return Ok((host.to_owned(), rest));
    }
    match s.split_once(':') {
        Some((h, rest)) if !h.is_empty() => Ok((h.to_owned(), rest)),
        _ => Ok((s.to_owned(), "")),
    }
}

/// A reconfig request as the leader preps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconfigArgs {
    /// `server.N=spec` items, comma-separated (`-add`).
    pub joining: String,
    /// Server ids, comma-separated (`-remove`).
    pub leaving: String,
    /// A whole new membership (`-members`); empty: incremental.
    pub new_members: String,
    /// `-v`: the configuration version the client expects, -1 for any.
    pub from_version: i64,
    /// `skipACL=yes`: no permission check.
    pub skip_acl: bool,
    /// `standaloneEnabled`: a configuration must keep at least two voters.
    pub standalone_enabled: bool,
}

/// What the leader knows beside the tree when it preps a reconfig.
pub(crate) struct ReconfigContext<'a> {
    pub auth: &'a [Id],
    /// A reconfig is logged and not in effect yet.
    pub in_progress: bool,
    /// The leader and its synchronised followers (Leader.isQuorumSynced).
    pub synced: &'a BTreeSet<u64>,
    pub zxid: Zxid,
}

/// PrepRequestProcessor's reconfig case, in its order: permission (WRITE on
/// `/zookeeper/config`, which only the superuser has, or `skipACL`), a reconfig in
/// progress, the `-v` version, the new configuration's syntax, its voters, and a quorum of
/// them synchronised with this leader.
pub(crate) fn prep_reconfig(tree: &Tree, args: &ReconfigArgs, ctx: &ReconfigContext<'_>) -> Txn {
    match new_config(tree, args, ctx) {
        Ok(cfg) => Txn::Reconfig {
            data: Bytes::from(cfg.text().into_bytes()),
            // ZooKeeper leaves the node's version at -1 (the prep's change record).
            version: -1,
        },
        Err((code, why)) => {
            tracing::info!("reconfig refused ({code:?}): {why}");
            Txn::Error(code)
        }
    }
}

fn new_config(
    tree: &Tree,
    args: &ReconfigArgs,
    ctx: &ReconfigContext<'_>,
) -> Result<ClusterConfig, (ErrorCode, String)> {
    let bad = |why: String| (ErrorCode::BAD_ARGUMENTS, why);
    let node = tree
        .get(CONFIG_PATH)
        .ok_or_else(|| bad("no /zookeeper/config".into()))?;
    if !args.skip_acl && !check_acl(node.acl(), Perms::WRITE, ctx.auth) {
        return Err((ErrorCode::NO_AUTH, "not the superuser".into()));
    }
    if ctx.in_progress {
        return Err((
            ErrorCode::RECONFIG_IN_PROGRESS,
            "another reconfig is not committed yet".into(),
        ));
    }
    let text = std::str::from_utf8(node.data().unwrap_or_default())
        .map_err(|_| bad("/zookeeper/config is not UTF-8".into()))?;
    let current = ClusterConfig::parse(text).map_err(bad)?;
    if args.from_version != -1 && args.from_version != current.version.0 {
        return Err((
            ErrorCode::BAD_VERSION,
            format!(
                "from version {:x}, the last seen is {:x}",
                args.from_version, current.version.0
            ),
        ));
    }
    let mut next = if !args.new_members.trim().is_empty() {
        let mut cfg = ClusterConfig::parse(&args.new_members).map_err(bad)?;
        cfg.version = Zxid::ZERO;
        cfg
    } else {
        let mut cfg = current.clone();
        for id in args
            .leaving
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let id: u64 = id
                .parse()
                .map_err(|e| bad(format!("leaving server {id:?}: {e}")))?;
            cfg.servers.remove(&id);
        }
        for item in args
            .joining
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("wrong format of server string {item:?}")))?;
            let (id, spec) = parse_server(key.trim(), value).map_err(bad)?;
            if spec.client.is_none() {
                return Err(bad(format!(
                    "{item}: each server should have 3 ports specified (the client port too)"
                )));
            }
            cfg.servers.insert(id, spec);
        }
        cfg
    };
    next.check_duplicates().map_err(bad)?;
    let voters = next.voters();
    if args.standalone_enabled && voters.len() < 2 {
        return Err(bad(
            "the new configuration must have at least 2 voters (standaloneEnabled)".into(),
        ));
    }
    if voters.is_empty() {
        return Err(bad("the new configuration has no voter".into()));
    }
    let synced = voters.iter().filter(|v| ctx.synced.contains(v)).count();
    if synced < voters.len() / 2 + 1 {
        return Err((
            ErrorCode::NEW_CONFIG_NO_QUORUM,
            format!("{synced} of the new voters {voters:?} are synchronised with the leader"),
        ));
    }
    next.version = ctx.zxid;
    Ok(next)
}

/// The replica's `Config::reconfig_of` for this member's payloads: the membership a
/// reconfig proposal makes, `None` for any other proposal (only the txn's type is read).
pub fn reconfig_of(payload: &[u8]) -> Option<Members> {
    let (_, _, txn) = decode_payload(payload).ok()?;
    if !is_reconfig_bytes(txn) {
        return None;
    }
    match Txn::from_bytes(txn) {
        Ok(Txn::Reconfig { data, .. }) => {
            let text = std::str::from_utf8(&data).ok()?;
            ClusterConfig::parse(text).ok().map(|c| c.members())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                        server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                        server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183\n\
                        version=100000003";

    #[test]
    fn the_text_reads_back_as_written() {
        let cfg = ClusterConfig::parse(TEXT).unwrap();
        assert_eq!(cfg.version, Zxid(0x1_0000_0003));
        assert_eq!(cfg.servers.len(), 3);
        assert!(cfg.servers[&3].observer);
        assert_eq!(cfg.text(), TEXT);
        assert_eq!(cfg.members(), Members::new([1, 2], [3]));
    }

    #[test]
    fn server_specs_as_zookeeper_takes_them() {
        let (id, s) = parse_server("server.4", "localhost:2891:3891;2184").unwrap();
        assert_eq!(id, 4);
        assert!(!s.observer);
        assert_eq!(s.client, Some(("0.0.0.0".into(), 2184)));
        assert_eq!(
            s.to_string(),
            "localhost:2891:3891:participant;0.0.0.0:2184"
        );
        let (_, s) = parse_server("server.5", "[::1]:1:2:observer;[::1]:3").unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.client, Some(("::1".into(), 3)));
        assert!(parse_server("server.x", "h:1:2").is_err());
        assert!(parse_server("server.1", "h:1").is_err());
        assert!(parse_server("server.1", "h:1:2:voter").is_err());
        assert!(parse_server("server.1", "h:1:99999").is_err());
    }
}
