//! The server's shape, declared in one place: which executors run, where they are pinned,
//! and the channels between them, all created before any executor starts
//! (glommio's examples/sharding.rs).
//!
//! One core executor and `shards` session executors. The standalone core executor is a
//! driver around `zoocore_member::Member`: it stamps inputs with the time and carries out the
//! member's effects, deciding nothing itself. With pinning on, executors are pinned to CPUs
//! of the process's affinity mask, so `taskset -c 1 zoocore` runs all of it on CPU 1; with
//! pinning off they float, for several servers sharing a small machine.

use std::cell::RefCell;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;
use zoocore_member::{Effect, Input, Latency, Member, MemberConfig, Now, Role};
use zoocore_storage::FileDevice;
use zoocore_tree::Tree;

use crate::config::Config;
use crate::durable::{self, Syncer};
use crate::ensemble::Event;
use crate::link::{self, CoreLinks, ShardLinks};
use crate::msg::{FromCore, ToCore};
use crate::reports::Reports;
use crate::sessions::first_session_id;
use crate::shard::Shard;
use crate::stats::{set_mode, unix_ms, Mode, ServerStats};
use crate::views::Views;
use crate::{conn, limits};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data directory {dir}: {source}")]
    DataDir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {dir} is not writable: {source}")]
    NotWritable {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start executor {name}: {why}")]
    Executor { name: String, why: String },
    #[error("executor {0} stopped abnormally")]
    Crashed(String),
    #[error("cannot recover the data directory: {0}")]
    Recovery(#[from] zoocore_storage::RecoveryError),
    #[error("cannot set up TLS for clients: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

use crate::listen::listen;
use crate::shared::Shared;

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.sort_unstable();
    cpus
}

fn placement(cfg: &Config, cpus: &[usize], index: usize) -> Placement {
    if cfg.pinning && !cpus.is_empty() {
        Placement::Fixed(cpus[index % cpus.len()])
    } else {
        Placement::Unbound
    }
}

/// The shards listen with SO_REUSEPORT; a plain bind first makes sure no other process
/// already serves this address (it would silently share our clients otherwise). A previous
/// zoocore that just died can hold its listening socket for a moment: io_uring tears a dead
/// process's ring down asynchronously, and a pending accept keeps the socket open until then.
/// So a busy address is retried for a few seconds before giving up.
fn claim_port(addr: std::net::SocketAddr) -> Result<(), StartError> {
    let deadline = Instant::now() + Duration::from_millis(limits::PORT_CLAIM_MS_MAX);
    loop {
        match StdListener::bind(addr) {
            Ok(_probe) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tracing::info!("{addr} is busy, waiting for it to be released");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(source) => return Err(StartError::Listen { addr, source }),
        }
    }
}

/// Starts the server and blocks until it stops.
pub fn run(mut cfg: Config) -> Result<(), StartError> {
    for dir in [&cfg.data_dir, &cfg.data_log_dir] {
        std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
            dir: dir.clone(),
            source,
        })?;
        // Refused here, with the path, rather than at the first client's write.
        durable::check_writable(dir).map_err(|source| StartError::NotWritable {
            dir: dir.clone(),
            source,
        })?;
    }
    if cfg.client_plain {
        claim_port(cfg.client_addr)?;
    }
    // Before anything else starts: a bad key or certificate file stops start-up, naming it.
    let tls = match &cfg.client_tls {
        Some(t) => {
            if let Some(addr) = t.addr {
                claim_port(addr)?;
            }
            let acceptor = crate::tls::acceptor(t)?;
            let secure = t.addr.map(|a| format!(" on {a}")).unwrap_or_default();
            let unified = if t.port_unification {
                " on the client port (client.portUnification)"
            } else {
                ""
            };
            tracing::info!(
                "TLS clients{secure}{unified}: ssl.clientAuth {:?}, key store {}",
                t.client_auth,
                t.key_store.display()
            );
            Some(acceptor)
        }
        None => None,
    };

    let recovered = durable::open(&cfg)?;
    let view = recovered.tree.clone();

    let cpus = allowed_cpus();
    // Session executors besides the core's; none when the process has one CPU, whose
    // sessions then live on the core's executor (one thread, no hand-over between threads).
    let shards = cfg.shards.unwrap_or_else(|| cpus.len().saturating_sub(1));
    cfg.shards = Some(shards);
    // The shard state and counters: one set on the core's executor when it holds the sessions.
    let holders = shards.max(1);
    let cfg = Arc::new(cfg);
    let stats = Arc::new(ServerStats::new(holders));
    let reports = Arc::new(Reports::new(holders));
    let views = Arc::new(Views::new(holders));
    tracing::info!(
        "zoocore {} on {}: 1 core executor + {}, pinning {}, CPUs {cpus:?}",
        crate::fourlw::VERSION,
        cfg.client_addr,
        if shards == 0 {
            "its sessions on the core's executor".to_string()
        } else {
            format!("{shards} shard(s)")
        },
        if cfg.pinning { "on" } else { "off" }
    );
    let shared = |tls| Shared {
        cfg: cfg.clone(),
        stats: stats.clone(),
        reports: reports.clone(),
        views: views.clone(),
        tls,
    };

    let mut handles = Vec::new();
    let core_cfg = cfg.clone();
    let core_stats = stats.clone();
    let name = "zab-core".to_string();
    let (sessions, shard_ends) = if shards == 0 {
        (
            Sessions::OnCore(Box::new((shared(tls.clone()), view.clone()))),
            Vec::new(),
        )
    } else {
        let (core, shards) = link::cross(shards);
        (Sessions::Shards(core), shards)
    };
    let h = LocalExecutorBuilder::new(placement(&cfg, &cpus, 0))
        .name(&name)
        .spawn(move || async move {
            let links = match sessions {
                Sessions::Shards(ends) => ends.connect().await,
                Sessions::OnCore(on_core) => {
                    let (shared, view) = *on_core;
                    let (core, shard) = link::local();
                    glommio::spawn_local(shard_main(0, shared, view, shard)).detach();
                    core
                }
            };
            core_main(core_cfg, core_stats, recovered, links).await
        })
        .map_err(|e| StartError::Executor {
            name: name.clone(),
            why: e.to_string(),
        })?;
    handles.push((name, h));

    for (i, ends) in shard_ends.into_iter().enumerate() {
        let shared = shared(tls.clone());
        let name = format!("shard-{i}");
        let view = view.clone();
        let h = LocalExecutorBuilder::new(placement(&cfg, &cpus, i + 1))
            .name(&name)
            .spawn(move || async move { shard_main(i, shared, view, ends.connect().await).await })
            .map_err(|e| StartError::Executor {
                name: name.clone(),
                why: e.to_string(),
            })?;
        handles.push((name, h));
    }
    // Operations surfaces on threads of their own, off the executors.
    let ops = Arc::new(shared(None));
    crate::admin::spawn(ops.clone());
    crate::metrics::spawn(ops);
    for (name, h) in handles {
        h.join().map_err(|_| StartError::Crashed(name))?;
    }
    Ok(())
}

/// Where the core executor finds its sessions: on shards of their own, through the shared
/// channels' ends, or on itself (the shard's tasks and the core's on one executor).
enum Sessions {
    Shards(link::CoreEnds),
    OnCore(Box<(Shared, Tree)>),
}

/// The driver's clock: the member reads none, so every input is stamped here.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(self) -> Now {
        Now {
            mono_ms: self.0.elapsed().as_millis() as u64,
            wall_ms: unix_ms() as i64,
        }
    }
}

/// What the core executor's tasks share: the member and the means to carry out effects.
struct CoreDriver {
    member: RefCell<Member<FileDevice>>,
    clock: Clock,
    senders: Vec<link::Sender<FromCore>>,
    dev: FileDevice,
    snapshot_pacing: crate::config::SnapshotPacing,
    stats: Arc<ServerStats>,
    data_dir: std::path::PathBuf,
    /// Taken while its fdatasync is in flight (the member asks for one at a time).
    syncer: RefCell<Option<Syncer>>,
    /// An ensemble member's links to the other members.
    peers: Option<RefCell<crate::peer::Peers>>,
    /// Wakes the effect loop after an input that may have given the member work.
    wake: local_channel::LocalSender<()>,
    /// Where the outcome of the restore being done goes (the admin thread waits on it).
    restore_reply: RefCell<Option<std::sync::mpsc::SyncSender<crate::restore::Outcome>>>,
    cfg: Arc<Config>,
}

impl CoreDriver {
    fn step(&self, input: Input<FileDevice>) {
        self.member.borrow_mut().step(self.clock.now(), input);
        let _ = self.wake.try_send(());
    }
}

/// The core executor: a driver around the member, standalone or ensemble alike, that only
/// carries out its effects (timers, the fdatasync through io_uring, the blocking pool for
/// snapshots, segments and SNAPs, channels to shards, peer links, epoch files) and holds no
/// decision.
async fn core_main(
    cfg: Arc<Config>,
    stats: Arc<ServerStats>,
    recovered: zoocore_storage::Recovered<FileDevice>,
    links: CoreLinks,
) {
    let clock = Clock(Instant::now());
    let dev = recovered.log.device().clone();
    let myid = cfg.ensemble.as_ref().map_or(0, |e| e.myid);
    let member_cfg = MemberConfig {
        first_session: first_session_id(myid as u8, unix_ms()),
        tick_ms: u64::from(cfg.tick_time_ms),
        snap_count: cfg.snap_count,
        // ZooKeeper seeds its snapshot point from the clock too.
        seed: unix_ms(),
        batch_txns_max: limits::BATCH_TXNS_MAX,
        force_sync: cfg.force_sync,
        container_check_interval_ms: u64::from(cfg.container_check_interval_ms),
        enforce_quota: cfg.enforce_quota,
        purge_interval_ms: cfg.purge_interval_hours.saturating_mul(3_600_000),
        snap_retain_count: cfg.snap_retain_count,
    };
    let (member, peers, events, tick) = if cfg.ensemble.is_some() {
        let start = crate::ensemble::start(&cfg, &recovered, unix_ms());
        let member = Member::new_ensemble(
            member_cfg,
            start.ens,
            start.tree,
            recovered.log,
            clock.now(),
        );
        let tick = crate::ensemble::sub_tick_ms(cfg.tick_time_ms);
        (member, Some(start.peers), Some(start.events), tick)
    } else {
        // A one-voter ensemble: its epochs as an ensemble member's (a data directory of an
        // older standalone server has no epoch files: the log's last epoch then).
        let epochs = crate::ensemble::standalone_epochs(&cfg, &recovered);
        let member = Member::new_standalone(
            member_cfg,
            epochs,
            recovered.tree,
            recovered.log,
            clock.now(),
        );
        let tick = u64::from(cfg.tick_time_ms).clamp(10, 1000) / 2;
        (member, None, None, tick)
    };
    let mut member = member;
    publish_counters(&mut member, &stats);

    let CoreLinks {
        senders,
        receivers: rxs,
    } = links;
    let (wake_tx, wake_rx) = local_channel::new_bounded::<()>(1);
    let driver = Rc::new(CoreDriver {
        member: RefCell::new(member),
        clock,
        senders,
        dev,
        snapshot_pacing: cfg.snapshot_pacing,
        stats,
        data_dir: cfg.data_dir.clone(),
        syncer: RefCell::new(Some(Syncer::new(
            &cfg.data_log_dir,
            cfg.fsync_warning_threshold_ms,
            cfg.ensemble.is_none(),
        ))),
        peers: peers.map(RefCell::new),
        wake: wake_tx,
        restore_reply: RefCell::new(None),
        cfg: cfg.clone(),
    });

    for rx in rxs {
        let driver = driver.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                driver.step(Input::Shard(msg));
            }
        })
        .detach();
    }
    if let Some(events) = events {
        let driver = driver.clone();
        glommio::spawn_local(async move {
            while let Some(event) = events.recv().await {
                driver.step(match event {
                    Event::Peer { from, msg } => {
                        // A server this member stopped dialling (a reconfig removed it) still
                        // talks to it: it learns as a non-voter, so it is answered.
                        redial(&driver, from);
                        Input::Peer { from, msg }
                    }
                    Event::Forward { from, msg } => Input::Forward { from, msg },
                    Event::LinkDown { peer } => Input::PeerLost { peer },
                    Event::Hello { from, addr } => {
                        if let Some(p) = &driver.peers {
                            p.borrow_mut().heard(from, addr);
                        }
                        redial(&driver, from);
                        continue;
                    }
                });
            }
        })
        .detach();
    }
    {
        let driver = driver.clone();
        let tick = Duration::from_millis(tick);
        glommio::spawn_local(async move {
            // Ticks at fixed instants: sleeping a tick after each one would add the timer's
            // lateness 200 times over an ensemble's sync limit. After a stall (a frozen
            // process), the missed ticks are skipped rather than burst: one tick carries
            // the whole stall.
            let mut next = Instant::now() + tick;
            loop {
                glommio::timer::sleep(next.saturating_duration_since(Instant::now())).await;
                next += tick;
                let now = Instant::now();
                if next <= now {
                    next = now + tick;
                }
                take_operator_asks(&driver);
                driver.step(Input::Tick);
            }
        })
        .detach();
    }

    // One round of effects per wake-up. While an fdatasync is in flight the other tasks
    // keep stepping inputs in, and the member groups what they bring.
    let _ = driver.wake.try_send(());
    // Emptied every round and traded with the member's own list: neither regrows.
    let mut effects = Vec::new();
    while wake_rx.recv().await.is_some() {
        take_operator_asks(&driver);
        loop {
            driver
                .member
                .borrow_mut()
                .ready_into(clock.now(), &mut effects);
            if effects.is_empty() {
                break;
            }
            for effect in effects.drain(..) {
                carry_out(&driver, effect).await;
            }
            publish_counters(&mut driver.member.borrow_mut(), &driver.stats);
            glommio::yield_if_needed().await;
        }
        // The restore's outcome, once the member has it (it waits for a durable marker
        // txn, a wake-up or more after the ask); the reply waits until then.
        if let Some(outcome) = driver.member.borrow_mut().take_restored() {
            if let Some(reply) = driver.restore_reply.take() {
                // The HTTP thread may have given up waiting; nothing else to do then.
                let _ = reply.send(outcome.map_err(|e| e.to_string()));
            }
        }
    }
}

/// What operators asked of the core from other threads (leadership moves, a restore),
/// stepped into the member. Cheap when nothing was asked: two flag loads.
fn take_operator_asks(driver: &CoreDriver) {
    if let Some(ask) = driver.stats.leadership.take() {
        driver.step(Input::Leadership(ask));
    }
    if let Some(job) = driver.stats.restore.take() {
        driver.restore_reply.replace(Some(job.reply));
        driver.step(Input::Restore(job.tree));
    }
}

/// Carries out one effect of the member.
async fn carry_out(driver: &Rc<CoreDriver>, effect: Effect<FileDevice>) {
    match effect {
        Effect::Sync(job) => {
            let mut syncer = driver
                .syncer
                .borrow_mut()
                .take()
                .expect("the member asks for one fdatasync at a time");
            let driver = driver.clone();
            glommio::spawn_local(async move {
                let result = syncer.sync(&job.segment).await;
                syncer.stats.publish(&driver.stats.core);
                *driver.syncer.borrow_mut() = Some(syncer);
                driver.step(Input::Synced { job, result });
            })
            .detach();
        }
        Effect::Publish(batch) => {
            for s in &driver.senders {
                let _ = s.send(FromCore::Commit(batch.clone())).await;
            }
        }
        Effect::Send { shard, msg } => {
            let _ = driver.senders[shard].send(msg).await;
        }
        Effect::CloseAll => {
            for s in &driver.senders {
                let _ = s.send(FromCore::CloseAll).await;
            }
        }
        Effect::Snapshot(tree) => {
            let driver = driver.clone();
            glommio::spawn_local(async move {
                let zxid = tree.last_zxid();
                let pacing = driver.snapshot_pacing;
                let result =
                    crate::driver::snapshot::write_off_core(driver.dev.clone(), tree, pacing).await;
                driver.step(Input::SnapshotWritten { zxid, result });
            })
            .detach();
        }
        Effect::PrepareSegment(job) => {
            let driver = driver.clone();
            // Zero-filling a segment (64 MiB by default) and syncing it runs beside the
            // core, so a roll on the core writes only a header instead of stalling commits.
            glommio::spawn_local(async move {
                let result = glommio::executor().spawn_blocking(move || job.run()).await;
                driver.step(Input::SegmentPrepared(result));
            })
            .detach();
        }
        Effect::SendPeer { to, frame } => {
            let sent = driver
                .peers
                .as_ref()
                .is_some_and(|p| p.borrow_mut().send(to, frame));
            if !sent {
                // A full queue resets that link: the member hears it lost.
                driver.step(Input::PeerLost { peer: to });
            }
        }
        Effect::ResetPeers => {
            if let Some(p) = &driver.peers {
                p.borrow_mut().reset_all();
            }
        }
        Effect::PersistEpochs { accepted, current } => {
            // A few bytes and an fsync, rare (an election): done here, as ZooKeeper does.
            let result = crate::ensemble::write_epochs(&driver.data_dir, accepted, current);
            driver.step(Input::EpochsPersisted {
                accepted,
                current,
                result,
            });
        }
        Effect::BuildSnap {
            to,
            id,
            conn,
            zxid,
            keep,
            tree,
        } => {
            let driver = driver.clone();
            // A large tree takes a while to serialise: the core keeps serving meanwhile.
            glommio::spawn_local(async move {
                let frame = glommio::executor()
                    .spawn_blocking(move || zoocore_member::snap_frame(&tree, conn, zxid, keep))
                    .await;
                driver.step(Input::SnapBuilt { to, id, frame });
            })
            .detach();
        }
        Effect::Role(role) => {
            let mode = match role {
                Role::Standalone => Mode::Standalone,
                Role::Looking => Mode::Looking,
                Role::ReadOnly => Mode::ReadOnly,
                Role::Follower => Mode::Follower,
                Role::Leader => Mode::Leader,
                Role::Observer => Mode::Observer,
            };
            // The global is for the operator surfaces (srvr, mntr, admin); the request path
            // learns it through its channel.
            set_mode(mode);
            for s in &driver.senders {
                let _ = s.send(FromCore::Serving(mode.clients())).await;
            }
        }
        Effect::Reconfigured { version, text } => {
            if let Some(p) = &driver.peers {
                crate::ensemble::reconfigured(&driver.cfg, &mut p.borrow_mut(), version, &text);
            }
        }
        // The member logged why. Nothing more may be acknowledged; on restart the server
        // recovers what was durable.
        Effect::Stop(_) => std::process::exit(3),
    }
}

/// A server this member does not dial talks to it (one joining by reconfig, or one a
/// reconfig removed that still learns): dial it back where its hello said it listens.
fn redial(driver: &CoreDriver, from: u64) {
    let Some(peers) = &driver.peers else { return };
    let addr = {
        let p = peers.borrow();
        if p.knows(from) {
            return;
        }
        match p.heard_at(from) {
            Some(a) => a.to_owned(),
            None => return,
        }
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        tracing::info!("peer {from}: bad address {addr:?} in its hello");
        return;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let resolved = port
        .parse::<u16>()
        .ok()
        .and_then(|port| std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).ok())
        .and_then(|mut addrs| addrs.next());
    match resolved {
        Some(sock) => {
            tracing::info!(
                "peer {from} (not in the configuration) dialled in: dialling it at {sock}"
            );
            peers.borrow_mut().add(from, (sock, host.to_owned()));
        }
        None => tracing::info!("peer {from}: cannot resolve {addr:?} from its hello"),
    }
}

fn publish_counters(member: &mut Member<FileDevice>, stats: &ServerStats) {
    member.drain_latencies(|kind, ms| match kind {
        Latency::Proposal => crate::stats::PROPOSAL_LATENCY_MS.record(ms),
        Latency::CommitPropagation => crate::stats::COMMIT_PROPAGATION_LATENCY_MS.record(ms),
    });
    let tree = member.tree();
    let counters = member.counters();
    stats.core.last_zxid.store(tree.last_zxid().0, Relaxed);
    // ZooKeeper's node count includes the root twice (its "" alias); report it the same way.
    stats
        .core
        .node_count
        .store(tree.node_count() as u64 + 1, Relaxed);
    stats.core.ephemerals.store(tree.ephemeral_count(), Relaxed);
    stats
        .core
        .data_size
        .store(tree.approximate_data_size(), Relaxed);
    stats.core.sessions.store(counters.sessions as u64, Relaxed);
    stats.core.txns.store(counters.txns, Relaxed);
    stats.core.batches.store(counters.batches, Relaxed);
    stats
        .core
        .refused_for_room
        .store(counters.refused_for_room, Relaxed);
    stats.core.queued.store(counters.queued as u64, Relaxed);
    stats.core.log_records.store(counters.log.records, Relaxed);
    stats.core.log_syncs.store(counters.log.syncs, Relaxed);
    stats.core.learners.store(counters.learners as u64, Relaxed);
    stats
        .core
        .observers_served
        .store(counters.observers_served as u64, Relaxed);
    stats
        .core
        .observer_master
        .store(counters.observer_master, Relaxed);
    stats
        .core
        .synced_followers
        .store(counters.synced_followers as u64, Relaxed);
}

/// A session executor: accepts connections, serves reads, applies commit batches.
async fn shard_main(id: usize, shared: Shared, view: Tree, links: ShardLinks) {
    let ShardLinks { from_core, to_core } = links;
    let cfg = shared.cfg.clone();
    let shards = shared.stats.shards.len() as u64;
    let budget = (u64::from(cfg.global_outstanding_limit) / shards).max(1);
    let shard = Rc::new(RefCell::new(Shard::new(
        id,
        cfg.clone(),
        view,
        to_core,
        budget,
        shared.stats.shards[id].clone(),
        shared.views.clone(),
    )));
    let shared = Rc::new(shared);

    // Commit batches and control messages from the core.
    {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = from_core.recv().await {
                match msg {
                    FromCore::Commit(batch) => shard.borrow_mut().on_commit(&batch),
                    FromCore::CloseConnection { conn, session } => {
                        shard.borrow_mut().close_moved(conn, session)
                    }
                    FromCore::CloseAll => shard.borrow_mut().close_all(),
                    FromCore::Serving(serving) => shard.borrow_mut().serving = serving,
                }
            }
        })
        .detach();
    }

    // Answer the four-letter words' requests for this shard's connections and watches.
    {
        let (shard, reports) = (shard.clone(), shared.reports.clone());
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(crate::reports::POLL).await;
                reports.serve(id, &mut shard.borrow_mut());
            }
        })
        .detach();
    }

    // Report live sessions to the core's expiry clock.
    {
        let shard = shard.clone();
        let interval = Duration::from_millis(
            (u64::from(cfg.tick_time_ms) / 2).clamp(10, limits::TOUCH_INTERVAL_MS_MAX),
        );
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(interval).await;
                let (touched, to_core) = {
                    let mut s = shard.borrow_mut();
                    (s.take_touched(), s.to_core.clone())
                };
                if !touched.is_empty() && to_core.send(ToCore::Touch(touched)).await.is_err() {
                    break;
                }
            }
        })
        .detach();
    }

    // The plain and the secure client port, each with its own listener on every shard, and
    // one TLS acceptor for both (the plain port uses it with client.portUnification).
    let tls = match (&shared.tls, &cfg.client_tls) {
        (Some(acceptor), Some(t)) => {
            let current = Rc::new(RefCell::new(acceptor.clone()));
            if t.cert_reload {
                let reload = crate::tls::reload_loop(t.clone(), current.clone(), id);
                glommio::spawn_local(reload).detach();
            }
            Some((current, t))
        }
        _ => None,
    };
    let secure = tls.as_ref().and_then(|(_, t)| t.addr);
    let ports = [cfg.client_plain.then_some(cfg.client_addr), secure];
    let mut accepting = Vec::new();
    for addr in ports.into_iter().flatten() {
        let listener = match listen(addr) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("shard {id}: cannot listen on {addr}: {e}");
                std::process::exit(2);
            }
        };
        let port_tls = tls.as_ref().and_then(|(current, t)| {
            let mode = if Some(addr) == secure {
                conn::Tls::Always
            } else if t.port_unification {
                conn::Tls::Optional
            } else {
                return None;
            };
            Some((current.clone(), mode))
        });
        let (shard, shared) = (shard.clone(), shared.clone());
        accepting.push(glommio::spawn_local(accept_loop(
            id, listener, shard, shared, port_tls,
        )));
    }
    for task in accepting {
        task.await;
    }
}

/// Accepts one client port's connections for ever; `tls` holds the acceptor new TLS
/// connections get (replaced by a certificate reload) and whether TLS is the port's only way.
async fn accept_loop(
    id: usize,
    listener: TcpListener,
    shard: Rc<RefCell<Shard>>,
    shared: Rc<Shared>,
    tls: Option<(Rc<RefCell<futures_rustls::TlsAcceptor>>, conn::Tls)>,
) {
    let cfg = shared.cfg.clone();
    let limiter = crate::limiter::ConnectionLimiter::global();
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("shard {id}: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(addr) = stream.peer_addr() else {
            continue;
        };
        let Some(guard) = limiter.admit(addr.ip(), cfg.max_client_cnxns) else {
            tracing::warn!(
                "too many connections from {} - max is {}",
                addr.ip(),
                cfg.max_client_cnxns
            );
            continue;
        };
        let tls = tls
            .as_ref()
            .map(|(current, mode)| (current.borrow().clone(), *mode));
        let (shard, shared) = (shard.clone(), shared.clone());
        glommio::spawn_local(async move {
            conn::serve(shard, shared, stream, addr, tls).await;
            drop(guard);
        })
        .detach();
    }
}
