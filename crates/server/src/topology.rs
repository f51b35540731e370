//! The server's shape, declared in one place: which executors run, where they are pinned,
//! and the channels between them, all created before any executor starts
//! (glommio's examples/sharding.rs).
//!
//! One ZAB executor (the core) and `shards` session executors. With pinning on, executors
//! are pinned to CPUs of the process's affinity mask, so `taskset -c 1 zoocore` runs all of it
//! on CPU 1; with pinning off they float, for several servers sharing a small machine.

use std::cell::RefCell;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel;
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;
use zoocore_tree::Tree;

use crate::config::Config;
use crate::core::Core;
use crate::durable::{self, Jitter, Syncer};
use crate::msg::{FromCore, ToCore};
use crate::reports::Reports;
use crate::sessions::first_session_id;
use crate::shard::Shard;
use crate::stats::{unix_ms, ServerStats};
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

/// What every executor of the server shares: configuration and counters.
pub struct Shared {
    pub cfg: Arc<Config>,
    pub stats: Arc<ServerStats>,
    pub reports: Arc<Reports>,
    pub views: Arc<Views>,
    /// Client TLS handshakes as set up at start (`secureClientPort`, `client.portUnification`).
    pub tls: Option<futures_rustls::TlsAcceptor>,
}

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
pub fn run(cfg: Config) -> Result<(), StartError> {
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
    let shards = cfg
        .shards
        .unwrap_or_else(|| cpus.len().saturating_sub(1).max(1));
    let cfg = Arc::new(cfg);
    let stats = Arc::new(ServerStats::new(shards));
    let reports = Arc::new(Reports::new(shards));
    let views = Arc::new(Views::new(shards));
    tracing::info!(
        "zoocore {} on {}: 1 core executor + {shards} shard(s), pinning {}, CPUs {cpus:?}",
        crate::fourlw::VERSION,
        cfg.client_addr,
        if cfg.pinning { "on" } else { "off" }
    );

    let mut to_core_rx = Vec::new();
    let mut from_core_tx = Vec::new();
    let mut shard_ends = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = shared_channel::new_bounded::<ToCore>(limits::CHANNEL_CAPACITY);
        let (ftx, frx) = shared_channel::new_bounded::<FromCore>(limits::CHANNEL_CAPACITY);
        to_core_rx.push(rx);
        from_core_tx.push(ftx);
        shard_ends.push((tx, frx));
    }

    let mut handles = Vec::new();
    let core_cfg = cfg.clone();
    let core_stats = stats.clone();
    let name = "zab-core".to_string();
    let h = LocalExecutorBuilder::new(placement(&cfg, &cpus, 0))
        .name(&name)
        .spawn(move || async move {
            if core_cfg.ensemble.is_some() {
                crate::ensemble::core_main(
                    core_cfg,
                    core_stats,
                    recovered,
                    to_core_rx,
                    from_core_tx,
                )
                .await
            } else {
                core_main(core_cfg, core_stats, recovered, to_core_rx, from_core_tx).await
            }
        })
        .map_err(|e| StartError::Executor {
            name: name.clone(),
            why: e.to_string(),
        })?;
    handles.push((name, h));

    for (i, (tx, frx)) in shard_ends.into_iter().enumerate() {
        let shared = Shared {
            cfg: cfg.clone(),
            stats: stats.clone(),
            reports: reports.clone(),
            views: views.clone(),
            tls: tls.clone(),
        };
        let name = format!("shard-{i}");
        let view = view.clone();
        let h = LocalExecutorBuilder::new(placement(&cfg, &cpus, i + 1))
            .name(&name)
            .spawn(move || shard_main(i, shared, view, tx, frx))
            .map_err(|e| StartError::Executor {
                name: name.clone(),
                why: e.to_string(),
            })?;
        handles.push((name, h));
    }
    // Operations surfaces on threads of their own, off the executors.
    let ops = Arc::new(Shared {
        cfg: cfg.clone(),
        stats: stats.clone(),
        reports: reports.clone(),
        views: views.clone(),
        tls: None,
    });
    crate::admin::spawn(ops.clone());
    crate::metrics::spawn(ops);
    for (name, h) in handles {
        h.join().map_err(|_| StartError::Crashed(name))?;
    }
    Ok(())
}

/// Runs `f` while a 1 ms timer keeps this executor's reactor turning. A task waiting for its
/// shared channel's peer to connect is woken only when its own reactor turns, and a reactor
/// with nothing else to do parks: without the timer, start-up could wait forever when the
/// peer connects after this executor parked (seen with three shards).
async fn awake_while<F: std::future::Future>(f: F) -> F::Output {
    let done = Rc::new(std::cell::Cell::new(false));
    let flag = done.clone();
    let ticker = glommio::spawn_local(async move {
        while !flag.get() {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    });
    let out = f.await;
    done.set(true);
    ticker.await;
    out
}

/// The core's ends of the shard channels, connected (senders first, in the order the shards
/// connect theirs).
pub(crate) async fn connect_core_channels(
    rxs: Vec<SharedReceiver<ToCore>>,
    txs: Vec<SharedSender<FromCore>>,
) -> (
    Vec<ConnectedSender<FromCore>>,
    Vec<ConnectedReceiver<ToCore>>,
) {
    awake_while(async move {
        let mut senders: Vec<ConnectedSender<FromCore>> = Vec::new();
        for tx in txs {
            senders.push(tx.connect().await);
        }
        let mut receivers: Vec<ConnectedReceiver<ToCore>> = Vec::new();
        for rx in rxs {
            receivers.push(rx.connect().await);
        }
        (senders, receivers)
    })
    .await
}

/// The standalone ZAB executor: receives from every shard, runs group commits, publishes
/// batches. (An ensemble member runs `ensemble::core_main` instead.)
async fn core_main(
    cfg: Arc<Config>,
    stats: Arc<ServerStats>,
    recovered: zoocore_storage::Recovered<zoocore_storage::FileDevice>,
    rxs: Vec<SharedReceiver<ToCore>>,
    txs: Vec<SharedSender<FromCore>>,
) {
    let started = Instant::now();
    let now_ms = move || started.elapsed().as_millis() as u64;
    let dev = recovered.log.device().clone();
    let mut jitter = Jitter::new(unix_ms());
    let mut core = Core::new(
        recovered.tree,
        recovered.log,
        first_session_id(0, unix_ms()),
        u64::from(cfg.tick_time_ms),
        jitter.snapshot_after(cfg.snap_count),
    );
    core.track_all_sessions(now_ms());
    publish_counters(&core, &stats);
    let core = Rc::new(RefCell::new(core));

    let (senders, rxs) = connect_core_channels(rxs, txs).await;
    let senders = Rc::new(senders);
    let (wake_tx, wake_rx) = local_channel::new_bounded::<()>(1);
    let wake_tx = Rc::new(wake_tx);

    // One receiver task per shard feeds the core's queue and wakes the committer.
    for rx in rxs {
        let (core, senders, wake_tx) = (core.clone(), senders.clone(), wake_tx.clone());
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                let reply = core.borrow_mut().on_message(msg, now_ms());
                if let Some((shard, msg)) = reply {
                    let _ = senders[shard].send(msg).await;
                }
                let _ = wake_tx.try_send(());
            }
        })
        .detach();
    }

    // Session expiry and the container/TTL reaper run on the tick.
    {
        let (core, wake_tx, cfg) = (core.clone(), wake_tx.clone(), cfg.clone());
        glommio::spawn_local(async move {
            let tick = Duration::from_millis(u64::from(cfg.tick_time_ms).clamp(10, 1000) / 2);
            let mut next_reap = now_ms() + u64::from(cfg.container_check_interval_ms);
            loop {
                glommio::timer::sleep(tick).await;
                let mut c = core.borrow_mut();
                let mut woke = c.expire_sessions(now_ms()) > 0;
                if now_ms() >= next_reap {
                    c.reap_containers(unix_ms() as i64);
                    next_reap = now_ms() + u64::from(cfg.container_check_interval_ms);
                    woke = true;
                }
                drop(c);
                if woke {
                    let _ = wake_tx.try_send(());
                }
            }
        })
        .detach();
    }

    // Autopurge, as ZooKeeper's PurgeTxnLog timer: keep the newest snapRetainCount snapshots
    // and the log they need.
    if cfg.purge_interval_hours > 0 {
        let (core, cfg) = (core.clone(), cfg.clone());
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_secs(cfg.purge_interval_hours * 3600)).await;
                match zoocore_storage::purge(core.borrow_mut().log_mut(), cfg.snap_retain_count) {
                    Ok(removed) => tracing::info!("autopurge removed {removed:?}"),
                    Err(e) => tracing::warn!("autopurge failed: {e}"),
                }
            }
        })
        .detach();
    }

    // The committer: one group commit per wake-up, over everything queued. While a batch's
    // fdatasync is in flight the receivers keep queueing, and the next batch takes it all.
    let mut syncer = Syncer::new(&cfg.data_log_dir, cfg.fsync_warning_threshold_ms);
    let snapshotting = Rc::new(std::cell::Cell::new(false));
    while wake_rx.recv().await.is_some() {
        loop {
            let batch = core.borrow_mut().run_batch(now_ms(), unix_ms() as i64);
            let batch = match batch {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(e) => fatal(&e),
            };
            if cfg.force_sync {
                if let Err(e) = sync_log(&core, &mut syncer).await {
                    fatal(&e);
                }
                syncer.stats.publish(&stats.core);
            }
            publish_counters(&core.borrow(), &stats);
            let batch = Arc::new(batch);
            for s in senders.iter() {
                let _ = s.send(FromCore::Commit(batch.clone())).await;
            }
            let refused = core.borrow_mut().take_refused_connects();
            for (shard, conn) in refused {
                // Session 0: the connection is still in its handshake.
                let close = FromCore::CloseConnection {
                    conn,
                    session: zoocore_proto::SessionId(0),
                };
                let _ = senders[shard].send(close).await;
            }
            log_notices(&core);
            if !snapshotting.get() {
                let due = core
                    .borrow_mut()
                    .snapshot_due(jitter.snapshot_after(cfg.snap_count));
                if let Some(tree) = due {
                    snapshotting.set(true);
                    spawn_snapshot(dev.clone(), tree, snapshotting.clone());
                }
            }
            let spare = core.borrow_mut().log_mut().next_segment_job();
            if let Some(job) = spare {
                spawn_spare_segment(core.clone(), job);
            }
            glommio::yield_if_needed().await;
        }
    }
}

/// Makes the last batch durable: one fdatasync of the current segment through io_uring.
async fn sync_log(
    core: &Rc<RefCell<Core<zoocore_storage::FileDevice>>>,
    syncer: &mut Syncer,
) -> Result<(), zoocore_storage::LogError> {
    let req = core.borrow_mut().sync_begin()?;
    let Some(req) = req else { return Ok(()) };
    let segment = core
        .borrow()
        .log()
        .segments()
        .last()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let result = syncer.sync(&segment).await;
    core.borrow_mut().sync_end(req, result)?;
    Ok(())
}

/// An error of the log: nothing more may be acknowledged. The server stops; on restart it
/// recovers what was durable.
fn fatal(e: &dyn std::fmt::Display) -> ! {
    tracing::error!("stopping: the transaction log failed: {e}");
    std::process::exit(3)
}

/// Creates the log's next segment (64 MiB of zeros by default, synced) on glommio's blocking
/// pool, so a roll on the core writes only a header instead of stalling commits.
fn spawn_spare_segment(
    core: Rc<RefCell<Core<zoocore_storage::FileDevice>>>,
    job: zoocore_storage::SpareJob<zoocore_storage::FileDevice>,
) {
    glommio::spawn_local(async move {
        let result = glommio::executor().spawn_blocking(move || job.run()).await;
        if let Err(e) = core.borrow_mut().log_mut().adopt_next_segment(result) {
            tracing::warn!("could not prepare the next log segment ahead: {e}");
        }
        log_notices(&core);
    })
    .detach();
}

/// Logs what the log reports (segments preallocated short for lack of room).
fn log_notices(core: &Rc<RefCell<Core<zoocore_storage::FileDevice>>>) {
    while let Some(notice) = core.borrow_mut().log_mut().next_notice() {
        tracing::warn!("{notice}");
    }
}

/// Writes a snapshot of a pinned tree version on glommio's blocking pool: its writes and
/// fsync run beside the core, and commits continue meanwhile (the version is immutable).
pub(crate) fn spawn_snapshot(
    dev: zoocore_storage::FileDevice,
    tree: Tree,
    running: Rc<std::cell::Cell<bool>>,
) {
    glommio::spawn_local(async move {
        let zxid = tree.last_zxid();
        let started = Instant::now();
        let result = glommio::executor()
            .spawn_blocking(move || zoocore_storage::write_snapshot(&dev, &tree))
            .await;
        crate::stats::SNAPSHOT_TIME_MS.record(started.elapsed().as_millis() as u64);
        match result {
            Ok(info) => tracing::info!(
                "snapshot at {zxid} written in {:?}: {info:?}",
                started.elapsed()
            ),
            Err(e) => tracing::error!("snapshot at {zxid} failed: {e}"),
        }
        running.set(false);
    })
    .detach();
}

fn publish_counters<D: zoocore_storage::Device>(core: &Core<D>, stats: &ServerStats) {
    let tree = core.tree();
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
    stats
        .core
        .sessions
        .store(core.session_count() as u64, Relaxed);
    stats.core.txns.store(core.stats.txns, Relaxed);
    stats.core.batches.store(core.stats.batches, Relaxed);
    stats
        .core
        .refused_for_room
        .store(core.stats.refused_for_room, Relaxed);
    stats.core.queued.store(core.queued() as u64, Relaxed);
    let log = core.log().stats();
    stats.core.log_records.store(log.records, Relaxed);
    stats.core.log_syncs.store(log.syncs, Relaxed);
}

/// The client port's listening socket of one shard: SO_REUSEPORT so every shard listens on
/// the same address, and SO_REUSEADDR so a restart can bind while the previous process's
/// connections linger in FIN-WAIT (glommio's own `bind` sets only the first).
pub(crate) fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket that this function created and whose
    // ownership `into_raw_fd` released; the listener becomes its only owner.
    #[allow(unsafe_code)]
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    Ok(listener)
}

/// A session executor: accepts connections, serves reads, applies commit batches.
async fn shard_main(
    id: usize,
    shared: Shared,
    view: Tree,
    tx: SharedSender<ToCore>,
    frx: SharedReceiver<FromCore>,
) {
    // Same order as the core connects its ends (its senders first), or both would wait.
    let (from_core, to_core) =
        awake_while(async move { (frx.connect().await, tx.connect().await) }).await;
    let cfg = shared.cfg.clone();
    let shards = shared.stats.shards.len() as u64;
    let budget = (u64::from(cfg.global_outstanding_limit) / shards).max(1);
    // Bounded: a connection task waits for room before it decodes its next request.
    let (local_tx, local_rx) = local_channel::new_bounded::<ToCore>(limits::CHANNEL_CAPACITY);
    let shard = Rc::new(RefCell::new(Shard::new(
        id,
        cfg.clone(),
        view,
        local_tx,
        budget,
        shared.stats.shards[id].clone(),
        shared.views.clone(),
    )));
    let shared = Rc::new(shared);

    // Forward the shard's requests to the core, waiting when the channel is full.
    glommio::spawn_local(async move {
        while let Some(msg) = local_rx.recv().await {
            if to_core.send(msg).await.is_err() {
                break;
            }
        }
    })
    .detach();

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
