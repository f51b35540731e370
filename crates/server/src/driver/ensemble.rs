//! The ensemble side of the core executor's driver: what an ensemble member needs from the
//! outside world and nothing it decides. At start: the replica's durable state (the newest
//! snapshot's tree, the log after it, the epoch files) and the peer links; while running:
//! the epoch files written on the member's request, and the events of the peer links
//! (frames and lost links) in the order they arrived.
//!
//! Every decision (prep, forwarding, commit -> apply -> publish, session owners and
//! SESSIONMOVED, expiry and the reaper on the leader, sync answering, SNAP serving) is the
//! member's: crates/member/src/ensemble.rs. docs/ZAB.md describes both.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalReceiver};
use zoocore_member::forward::encode_payload;
use zoocore_member::{Durable, EnsembleConfig, Epoch, Message, ZabConfig};
use zoocore_proto::Zxid;
use zoocore_storage::FileDevice;
use zoocore_tree::Tree;

use crate::config::{Config, Ensemble};
use crate::forward::Forward;
use crate::limits;
use crate::peer::{PeerAddr, Peers};

/// What the peer links report, in arrival order.
pub enum Event {
    Peer {
        from: u64,
        msg: Message,
    },
    Forward {
        from: u64,
        msg: Forward,
    },
    /// A link with `peer` closed or was reset, in either direction.
    LinkDown {
        peer: u64,
    },
    /// `peer` dialled this member and says it listens at `addr` (`host:port`): dialled back
    /// if this member does not know it (a server joining by reconfig).
    Hello {
        from: u64,
        addr: String,
    },
}

/// A start-up failure of an ensemble member: the process stops, naming what failed.
fn fatal(what: &str, e: &dyn std::fmt::Display) -> ! {
    tracing::error!("stopping: {what}: {e}");
    std::process::exit(3)
}

/// The ensemble member's start: its replica's configuration and durable state, the tree it
/// starts from, and its peer links with the channel their events arrive on.
pub struct Start {
    pub ens: EnsembleConfig,
    pub tree: Tree,
    pub peers: Peers,
    pub events: LocalReceiver<Event>,
}

pub fn start(cfg: &Config, recovered: &zoocore_storage::Recovered<FileDevice>, seed: u64) -> Start {
    let mut ens = cfg.ensemble.clone().expect("ensemble config");
    let (mut tree, durable) = durable_state(cfg, recovered);
    let own = ens.members[&ens.myid].clone();
    match tree_config(&tree).filter(|(_, v)| *v > ens.config_version) {
        // A reconfig newer than the files committed before the snapshot: its membership is
        // the one in effect (the files are rewritten when a reconfig takes effect, so this
        // is a data directory restored without them).
        Some((members, version)) => {
            tracing::info!(
                "configuration version {version:x} from the snapshot's /zookeeper/config"
            );
            ens.members = members;
            ens.config_version = version;
        }
        // Each member writes the configuration into its own /zookeeper/config, as
        // ZooKeeper's members do when they load their database (zkCli's `config` reads it).
        None => tree.set_config_node(
            ens.dynamic_text().as_bytes(),
            ens.config_version,
            crate::stats::unix_ms() as i64,
        ),
    }
    let (events_tx, events_rx) = local_channel::new_bounded::<Event>(limits::CORE_EVENTS_MAX);
    // This server listens where its own line said, also when a reconfig removed it, and
    // where observers dial voters (observerMasterPort) whatever its role at start: a
    // reconfig may make an observer a voter, and observers then dial it there.
    let listen = own.quorum_addr;
    let listen_all: Vec<std::net::SocketAddr> = std::iter::once(listen)
        .chain(
            ens.observer_master_port
                .map(|port| std::net::SocketAddr::new(listen.ip(), port)),
        )
        .collect();
    let members = peer_addrs(&ens.members, dial_masters(&ens, &ens.members));
    let advertised = format!("{}:{}", own.host, own.quorum_addr.port());
    let tls = match cfg
        .quorum_tls
        .as_ref()
        .map(crate::peer_tls::build)
        .transpose()
    {
        Ok(tls) => tls.map(Rc::new),
        Err(e) => fatal("quorum TLS", &e),
    };
    let peers = match crate::peer::start(
        ens.myid,
        &listen_all,
        advertised,
        &members,
        tls,
        Rc::new(events_tx),
    ) {
        Ok(p) => p,
        Err(e) => fatal(
            &format!("cannot listen on the peer ports {listen_all:?}"),
            &e,
        ),
    };
    Start {
        ens: EnsembleConfig {
            zab: zab_config(&ens, cfg.commit_log_count, cfg.tick_time_ms),
            durable,
            seed: seed ^ ens.myid.rotate_left(32),
            // Half a sub-tick: the timer's own tick, a little early after an event's, still
            // counts.
            time_spacing_ms: sub_tick_ms(cfg.tick_time_ms) / 2,
            // QuorumPeer's grace before a looking member decides it is partitioned.
            read_only_after_ms: cfg
                .read_only_mode
                .then(|| u64::from(cfg.tick_time_ms).max(2000)),
        },
        tree,
        peers,
        events: events_rx,
    }
}

/// The members and version of the tree's `/zookeeper/config`, if it parses.
fn tree_config(tree: &Tree) -> Option<(BTreeMap<u64, crate::config::Member>, i64)> {
    let text = tree.get(zoocore_tree::CONFIG_PATH)?.data()?;
    crate::config::members_from_text(&String::from_utf8_lossy(text)).ok()
}

/// Where each member is dialled.
pub fn peer_addrs(
    members: &BTreeMap<u64, crate::config::Member>,
    master_port: Option<u16>,
) -> BTreeMap<u64, PeerAddr> {
    members
        .iter()
        .map(|(id, m)| {
            let addr = match master_port {
                Some(port) if !m.observer => std::net::SocketAddr::new(m.quorum_addr.ip(), port),
                _ => m.quorum_addr,
            };
            (*id, (addr, m.host.clone()))
        })
        .collect()
}

/// The observerMasterPort this member dials voters at: set when it is an observer of
/// `members` (or not in it: a removed server learns as an observer does), as ZooKeeper's
/// observers connect to their master there; `None` dials every member's quorum port.
fn dial_masters(
    ens: &crate::config::Ensemble,
    members: &BTreeMap<u64, crate::config::Member>,
) -> Option<u16> {
    let observer = members.get(&ens.myid).is_none_or(|m| m.observer);
    ens.observer_master_port.filter(|_| observer)
}

/// A configuration took effect (`Effect::Reconfigured`): the links follow it, and the
/// dynamic file is written as ZooKeeper writes it (QuorumPeer.setLastSeenQuorumVerifier and
/// QuorumPeerConfig.editStaticConfig): `<zoo.cfg>.dynamic.<version>` beside zoo.cfg, and
/// zoo.cfg's `dynamicConfigFile=` pointed at it, its own server lines dropped. A failure to
/// write is logged: the configuration is in the replicated tree either way.
pub fn reconfigured(cfg: &Config, peers: &mut Peers, version: Zxid, text: &str) {
    match crate::config::members_from_text(text) {
        Ok((members, _)) => {
            let masters = cfg
                .ensemble
                .as_ref()
                .and_then(|e| dial_masters(e, &members));
            peers.update(&peer_addrs(&members, masters));
        }
        Err(e) => tracing::warn!("reconfig {version}: cannot dial its members: {e}"),
    }
    let Some(static_file) = &cfg.source else {
        return;
    };
    if let Err(e) = write_dynamic(static_file, version, text) {
        tracing::warn!("reconfig {version}: cannot write the dynamic configuration file: {e}");
    }
}

fn write_dynamic(static_file: &Path, version: Zxid, text: &str) -> std::io::Result<()> {
    let name = format!(
        "{}.dynamic.{:x}",
        static_file
            .file_name()
            .map_or("zoo.cfg".into(), |n| n.to_string_lossy()),
        version.0
    );
    let dynamic = static_file.with_file_name(name);
    // The file holds the server lines and the version, as the node does.
    write_atomically(&dynamic, &format!("{text}\n"))?;
    let old = std::fs::read_to_string(static_file)?;
    let mut new = String::new();
    for line in old.lines() {
        let key = line.split_once('=').map_or("", |(k, _)| k.trim());
        let key = key.strip_prefix("zookeeper.").unwrap_or(key);
        if key.starts_with("server.") || key == "dynamicConfigFile" {
            continue;
        }
        new.push_str(line);
        new.push('\n');
    }
    let dynamic_abs = std::path::absolute(&dynamic)?;
    new.push_str(&format!("dynamicConfigFile={}\n", dynamic_abs.display()));
    write_atomically(static_file, &new)?;
    tracing::info!("wrote {} (version {:x})", dynamic.display(), version.0);
    Ok(())
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

const ACCEPTED_EPOCH: &str = "acceptedEpoch";
const CURRENT_EPOCH: &str = "currentEpoch";

/// ZooKeeper's epoch files: a decimal number each, replaced atomically and durably.
pub fn write_epochs(dir: &Path, accepted: Epoch, current: Epoch) -> std::io::Result<()> {
    for (name, epoch) in [(ACCEPTED_EPOCH, accepted), (CURRENT_EPOCH, current)] {
        let tmp = dir.join(format!("{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{}\n", epoch.0).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    std::fs::File::open(dir)?.sync_all()
}

fn read_epoch(dir: &Path, name: &str, default: Epoch) -> Result<Epoch, String> {
    let path: PathBuf = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .map(Epoch)
            .map_err(|e| format!("{}: {:?}: {e}", path.display(), text.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A standalone server's accepted and current epochs: the epoch files, or the epoch of the
/// log's last zxid where there are none (written before standalone servers kept them).
pub fn standalone_epochs(
    cfg: &Config,
    recovered: &zoocore_storage::Recovered<FileDevice>,
) -> (Epoch, Epoch) {
    let last_epoch = Epoch(recovered.last_zxid.epoch());
    let accepted = read_epoch(&cfg.data_dir, ACCEPTED_EPOCH, last_epoch)
        .unwrap_or_else(|e| fatal("bad epoch file", &e));
    let current = read_epoch(&cfg.data_dir, CURRENT_EPOCH, last_epoch)
        .unwrap_or_else(|e| fatal("bad epoch file", &e));
    (accepted.max(last_epoch), current.min(accepted))
}

/// The replica's start state from the data directory: the snapshot's tree (committed state
/// only), the log after it, the epochs.
fn durable_state(
    cfg: &Config,
    recovered: &zoocore_storage::Recovered<FileDevice>,
) -> (Tree, Durable) {
    let dev = recovered.log.device().clone();
    let tree = match recovered.snapshot_zxid {
        Some(z) => {
            let name = zoocore_storage::snapshot_name(z);
            let bytes = zoocore_storage::Device::read(&dev, &name)
                .unwrap_or_else(|e| fatal(&format!("cannot read {name}"), &e));
            zoocore_storage::decode_snapshot(&name, &bytes)
                .unwrap_or_else(|e| fatal(&format!("cannot decode {name}"), &e))
                .tree
        }
        None => Tree::with_extended_types(cfg.extended_types_enabled),
    };
    let base = tree.last_zxid();
    let log: Vec<(Zxid, zoocore_zab::Payload)> = recovered
        .log
        .entries_after(base)
        .unwrap_or_else(|e| fatal("cannot read the log", &e))
        .into_iter()
        .map(|e| (e.zxid, encode_payload(None, e.time_ms, &e.txn)))
        .collect();
    let last_epoch = Epoch(recovered.last_zxid.epoch());
    let accepted = read_epoch(&cfg.data_dir, ACCEPTED_EPOCH, last_epoch)
        .unwrap_or_else(|e| fatal("bad epoch file", &e));
    let current = read_epoch(&cfg.data_dir, CURRENT_EPOCH, last_epoch)
        .unwrap_or_else(|e| fatal("bad epoch file", &e));
    tracing::info!(
        "ensemble state: tree at {base}, {} log entries after it, epochs accepted {accepted} current {current}",
        log.len()
    );
    (
        tree,
        Durable {
            accepted_epoch: accepted,
            current_epoch: current.min(accepted),
            base,
            log,
        },
    )
}

/// How often the replica gets the time: ZooKeeper's follower notices a silent leader
/// `syncLimit × tickTime` after its last read (a socket timeout), so a tick of `tickTime`
/// would add up to a tick to failure detection (2 s with the default tickTime). The replica
/// ticks every 50 ms (or every tick when it is shorter) instead, and its limits are in
/// milliseconds, so a silent peer is noticed within 50 ms of the limit. The leader pings
/// every sub-tick, which costs a few small frames a second per learner.
pub fn sub_tick_ms(tick_time_ms: u32) -> u64 {
    SUB_TICK_MS.min(u64::from(tick_time_ms)).max(1)
}

const SUB_TICK_MS: u64 = 50;

fn zab_config(ens: &Ensemble, history_retain: usize, tick_time_ms: u32) -> ZabConfig {
    let tick = u64::from(tick_time_ms);
    ZabConfig {
        myid: ens.myid,
        voters: ens.voters(),
        observers: ens.observers(),
        init_limit_ms: ens.init_limit_ticks * tick,
        sync_limit_ms: ens.sync_limit_ticks * tick,
        // Decide as soon as a quorum agrees: a worse choice is corrected in discovery
        // (a follower ahead of its leader makes it step down), and failover stays short.
        finalize_wait_ms: 0,
        history_retain,
        config_version: Zxid(ens.config_version),
        reconfig_of: zoocore_member::reconfig::reconfig_of,
        observer_masters: ens.observer_masters(),
    }
}
