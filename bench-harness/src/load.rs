//! The load generator: [`run_load`] runs one [`LoadConfig`] and returns its [`Report`].
//!
//! Threads: `threads` OS threads, each a current-thread tokio runtime running its share of
//! the connections as local tasks (thread per core, no work stealing, no locks on the
//! request path: a thread's tasks share its stats through `Rc<RefCell<..>>`). The calling
//! thread samples CPU at the window's edges and reports progress.
//!
//! Closed loop: each connection keeps `outstanding` requests in flight, sending the next as
//! soon as a reply arrives; latency runs from the actual send. Open loop: each connection
//! owns `rate / connections` of the schedule, with sends due at fixed intervals from a
//! common origin (phase-shifted per connection); a due send waits if the window is full, and
//! its latency still runs from the time it was *due*, so a stalled server cannot hide its
//! stall by slowing the generator down (no coordinated omission). Sends more than
//! `late_ms` behind schedule are counted; if over 1% are, the report says the generator fell
//! behind. Due times are kept by a pacer thread per generator thread ([`Pacer`]), not by
//! tokio's timer: that one fires on whole milliseconds, up to a millisecond after a send was
//! due, and the wait counted in every latency (against the echo server at 5,000 writes/s,
//! 32x16: p50 1.31 ms with tokio's timer alone).
//!
//! At the end of the window connections stop sending, wait for what is outstanding and close
//! their sessions, so the report's totals account for every transaction the run caused.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zoocore_client::{ClientError, Conn, ConnectOptions, Incoming, Reply};
use zoocore_proto::records::MultiHeader;
use zoocore_proto::{Acl, ErrorCode, OpCode, Reader, Record};

use crate::config::{LoadConfig, Workload};
use crate::keys::{key_index, key_path, KeyChooser, Rng};
use crate::report::{self, Latency, Report, Schedule, SecondRow, ServerCpu, Watch};
use crate::stats::{Kind, ThreadStats};

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad config: {0}")]
    Config(String),
    #[error("set-up against {addr} failed: {source}")]
    Setup {
        addr: SocketAddr,
        source: ClientError,
    },
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("a generator thread panicked")]
    ThreadPanicked,
}

/// A live view of a run, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub elapsed_s: f64,
    pub measuring: bool,
    pub ops: u64,
    pub errors: u64,
    pub ops_per_s_last: f64,
}

/// What every connection task reads; immutable but for the counters.
struct Shared {
    cfg: LoadConfig,
    origin: Instant,
    window_start_ns: u64,
    window_end_ns: u64,
    late_ns: u64,
    value: Vec<u8>,
    key_paths: Vec<String>,
    keys: KeyChooser,
    /// Per watched node: when the latest setData to it was sent (ns since origin).
    last_write_ns: Vec<AtomicU64>,
    ops: AtomicU64,
    errors: AtomicU64,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn at(&self, ns: u64) -> tokio::time::Instant {
        (self.origin + Duration::from_nanos(ns)).into()
    }

    fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            session_timeout_ms: self.cfg.session_timeout_ms,
            ..ConnectOptions::default()
        }
    }

    fn io_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.session_timeout_ms.max(1000) as u64)
    }

    /// Per-connection interval between scheduled sends (open loop).
    fn interval_ns(&self, connections: usize) -> Option<u64> {
        self.cfg
            .rate
            .map(|rate| ((1e9 * connections as f64 / rate) as u64).max(1))
    }

    /// Connection `conn_id`'s open-loop schedule: its first due time and its interval (ns).
    /// The connections' schedules are spread over one interval so they do not send in
    /// lockstep. `None` in closed loop and for watchers, which send on no schedule.
    fn schedule(&self, conn_id: usize) -> Option<(u64, u64)> {
        let senders = match self.cfg.workload {
            Workload::Watch if conn_id < self.cfg.watchers => return None,
            Workload::Watch => self.cfg.connections - self.cfg.watchers,
            _ => self.cfg.connections,
        };
        let iv = self.interval_ns(senders)?;
        Some((iv / senders as u64 * (conn_id % senders) as u64, iv))
    }
}

/// What a request was, carried with it and returned with its reply.
#[derive(Debug, Clone, Copy)]
struct Tag {
    intended_ns: u64,
    kind: Kind,
}

/// Runs the load and returns its report, without printing anything.
pub fn run_load(cfg: &LoadConfig) -> Result<Report, LoadError> {
    run_load_with_progress(cfg, |_| {})
}

/// Runs the load, calling `progress` about once a second.
pub fn run_load_with_progress(
    cfg: &LoadConfig,
    mut progress: impl FnMut(Progress),
) -> Result<Report, LoadError> {
    cfg.validate().map_err(LoadError::Config)?;
    let started_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let key_count = match cfg.workload {
        Workload::Watch => cfg.watched_nodes,
        _ => cfg.keys,
    };
    let value = vec![b'v'; cfg.value_size];
    let setup_txns = if cfg.skip_setup || cfg.workload == Workload::Sessions {
        0
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let addr = cfg.servers[0];
        rt.block_on(setup(addr, cfg, key_count, &value))
            .map_err(|source| LoadError::Setup { addr, source })?
    };

    let window_start_ns = (cfg.warmup_s * 1e9) as u64;
    let window_end_ns = window_start_ns + (cfg.duration_s * 1e9) as u64;
    let shared = Arc::new(Shared {
        cfg: cfg.clone(),
        origin: Instant::now(),
        window_start_ns,
        window_end_ns,
        late_ns: (cfg.late_ms * 1e6) as u64,
        value,
        key_paths: (0..key_count).map(|i| key_path(&cfg.prefix, i)).collect(),
        keys: KeyChooser::new(key_count, cfg.distribution, cfg.zipf_theta),
        last_write_ns: (0..cfg.watched_nodes).map(|_| AtomicU64::new(0)).collect(),
        ops: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });

    let threads = cfg.threads.min(cfg.connections);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let shared = shared.clone();
        let conns: Vec<usize> = (t..cfg.connections).step_by(threads).collect();
        handles.push(
            std::thread::Builder::new()
                .name(format!("load-{t}"))
                .spawn(move || generator_thread(shared, conns))?,
        );
    }

    let pids: Vec<String> = cfg.server_pid.iter().map(u32::to_string).collect();
    let sample = |pids: &[String]| -> Vec<Option<f64>> {
        pids.iter().map(|p| crate::cpu::cpu_seconds(p)).collect()
    };
    let (mut cpu_start, mut cpu_end) = (None, None);
    let (mut gen_start, mut gen_end) = (None, None);
    let mut last_progress = (Instant::now(), 0u64);
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(20));
        let now = shared.now_ns();
        if cpu_start.is_none() && now >= window_start_ns {
            cpu_start = Some(sample(&pids));
            gen_start = crate::cpu::cpu_seconds("self");
        }
        if cpu_end.is_none() && now >= window_end_ns {
            cpu_end = Some(sample(&pids));
            gen_end = crate::cpu::cpu_seconds("self");
        }
        if last_progress.0.elapsed() >= Duration::from_secs(1) {
            let ops = shared.ops.load(Ordering::Relaxed);
            let dt = last_progress.0.elapsed().as_secs_f64();
            progress(Progress {
                elapsed_s: now as f64 / 1e9,
                measuring: (window_start_ns..window_end_ns).contains(&now),
                ops,
                errors: shared.errors.load(Ordering::Relaxed),
                ops_per_s_last: (ops - last_progress.1) as f64 / dt,
            });
            last_progress = (Instant::now(), ops);
        }
    }
    let mut merged = ThreadStats::new(window_start_ns, window_end_ns);
    for h in handles {
        let stats = h.join().map_err(|_| LoadError::ThreadPanicked)??;
        merged.merge(&stats);
    }
    let cpu_end = cpu_end.unwrap_or_else(|| sample(&pids));
    let gen_end = gen_end.or_else(|| crate::cpu::cpu_seconds("self"));
    let cpu_start = cpu_start.unwrap_or_else(|| vec![None; pids.len()]);

    Ok(build_report(
        cfg,
        started_unix_ms,
        setup_txns,
        &merged,
        &cpu_start,
        &cpu_end,
        gen_start.zip(gen_end).map(|(a, b)| b - a),
    ))
}

fn build_report(
    cfg: &LoadConfig,
    started_unix_ms: u128,
    setup_txns: u64,
    m: &ThreadStats,
    cpu_start: &[Option<f64>],
    cpu_end: &[Option<f64>],
    generator_cpu_s: Option<f64>,
) -> Report {
    let window_s = cfg.duration_s;
    let errors: std::collections::BTreeMap<String, u64> = m
        .errors
        .iter()
        .map(|(code, n)| (report::error_name(*code), *n))
        .collect();
    let servers_cpu = cfg
        .server_pid
        .iter()
        .zip(cpu_start.iter().zip(cpu_end))
        .map(|(pid, (a, b))| {
            let cpu_s = a.zip(*b).map(|(a, b)| b - a);
            ServerCpu {
                pid: *pid,
                cpu_s,
                cpu_us_per_op: cpu_s
                    .filter(|_| m.window_ops > 0)
                    .map(|c| c * 1e6 / m.window_ops as f64),
            }
        })
        .collect();
    let watch = (cfg.workload == Workload::Watch).then(|| Watch {
        watchers: cfg.watchers as u64,
        events: m.window_events,
        events_per_s: m.window_events as f64 / window_s,
        fanout_ratio: if m.window_write_ok == 0 {
            0.0
        } else {
            m.window_events as f64 / (m.window_write_ok * cfg.watchers as u64) as f64
        },
        event_latency: Latency::of(&m.events),
    });
    let schedule = Schedule {
        open_loop: cfg.rate.is_some(),
        rate_ops_s: cfg.rate,
        sends: m.sends,
        late_sends: m.late_sends,
        unsent: m.unsent,
        send_lag_ms_max: m.send_lag_ns_max as f64 / 1e6,
        fell_behind: (m.late_sends + m.unsent) * 100 > (m.sends + m.unsent).max(1),
    };
    let per_second = m
        .seconds
        .iter()
        .enumerate()
        .map(|(i, s)| SecondRow {
            second: i,
            ops: s.ops,
            reads: s.reads,
            writes: s.writes,
            errors: s.errors,
            events: s.events,
            p50_us: s.latency.value_at_quantile(0.5),
            p90_us: s.latency.value_at_quantile(0.9),
            p99_us: s.latency.value_at_quantile(0.99),
            max_us: s.latency.max(),
        })
        .collect();
    let t = &m.totals;
    Report {
        tool: "zoocore-bench load",
        started_unix_ms,
        window_s,
        ops: m.window_ops,
        ops_per_s: m.window_ops as f64 / window_s,
        reads: m.window_reads,
        writes: m.window_writes,
        reads_per_s: m.window_reads as f64 / window_s,
        writes_per_s: m.window_writes as f64 / window_s,
        errors_total: m.errors.values().sum(),
        errors,
        latency: Latency::of(&m.all),
        read_latency: Latency::of(&m.reads),
        write_latency: Latency::of(&m.writes),
        watch,
        servers_cpu,
        generator_cpu_s,
        schedule,
        totals: report::Totals {
            setup_txns,
            reads: t.reads,
            write_txns_ok: t.write_txns_ok,
            write_txns_failed: t.write_txns_failed,
            sessions_opened: t.sessions_opened,
            sessions_closed: t.sessions_closed,
            lost: t.lost,
        },
        connection_failures: m.connection_failures.clone(),
        per_second,
        config: cfg.clone(),
        intervals: m.seconds.iter().map(|s| s.latency.clone()).collect(),
        histogram: Some(m.all.clone()),
    }
}

/// Creates the prefix (and the churn parent, and the keys) on one pipelined session.
/// Returns the transactions it caused: every create answered (ok or NodeExists: both are
/// transactions), plus the session's open and close.
async fn setup(
    addr: SocketAddr,
    cfg: &LoadConfig,
    key_count: u64,
    value: &[u8],
) -> Result<u64, ClientError> {
    let opts = ConnectOptions {
        session_timeout_ms: cfg.session_timeout_ms,
        ..ConnectOptions::default()
    };
    let mut conn: Conn<()> = Conn::connect(addr, &opts).await?;
    let mut txns = 1;
    let mut paths = vec![(cfg.prefix.clone(), Vec::new())];
    if cfg.workload == Workload::Churn {
        paths.push((format!("{}/churn", cfg.prefix), Vec::new()));
    } else {
        paths.extend((0..key_count).map(|i| (key_path(&cfg.prefix, i), value.to_vec())));
    }
    // The parents must exist before their children: create them one by one first.
    let parents = if cfg.workload == Workload::Churn {
        2
    } else {
        1
    };
    let mut next = 0;
    while next < paths.len() {
        let window = if next < parents { 1 } else { 256 };
        while next < paths.len() && conn.outstanding() < window {
            let (path, data) = &paths[next];
            conn.submit(OpCode::Create, (), |w| {
                w.write_str(path);
                w.write_buffer(data);
                w.write_records(&Acl::open_unsafe());
                w.write_i32(0);
            });
            next += 1;
        }
        conn.flush().await?;
        while conn.outstanding() > 0 {
            if let Incoming::Reply(r) = conn.next().await? {
                txns += 1;
                if r.err != ErrorCode::OK && r.err != ErrorCode::NODE_EXISTS {
                    return Err(ClientError::Server(r.err));
                }
            }
        }
    }
    conn.close(()).await?;
    Ok(txns + 1)
}

fn generator_thread(shared: Arc<Shared>, conns: Vec<usize>) -> Result<ThreadStats, LoadError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stats = Rc::new(RefCell::new(ThreadStats::new(
        shared.window_start_ns,
        shared.window_end_ns,
    )));
    let pacer = Pacer::start(&shared, &conns)?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|id| {
                let (shared, stats) = (shared.clone(), stats.clone());
                let due = pacer.signal(id);
                tokio::task::spawn_local(async move {
                    match (shared.cfg.workload, id < shared.cfg.watchers) {
                        (Workload::Sessions, _) => session_loop(&shared, &stats, id, due).await,
                        (Workload::Watch, true) => watcher(&shared, &stats, id).await,
                        _ => request_loop(&shared, &stats, id, due).await,
                    }
                })
            })
            .collect();
        for t in tasks {
            if t.await.is_err() {
                stats
                    .borrow_mut()
                    .connection_failures
                    .push("connection task panicked".into());
            }
        }
    });
    drop(pacer);
    let out = stats.borrow().clone();
    Ok(out)
}

/// Signals open-loop connections when their sends are due, from a thread of its own that
/// sleeps until the next due time with a timer slack of 1 µs (tokio's timer fires on whole
/// milliseconds; see the module comment). A connection waits for its signal or, should the
/// pacer be late, for tokio's timer, whichever comes first; a signal that finds it busy is
/// kept (one), and costs it one look at a schedule with nothing due. The pacer's CPU is the
/// generator's, and is in its report.
struct Pacer {
    signals: Vec<(usize, Arc<tokio::sync::Notify>)>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pacer {
    fn start(sh: &Arc<Shared>, conns: &[usize]) -> std::io::Result<Pacer> {
        let mut signals = Vec::new();
        let mut due = Vec::new();
        for &id in conns {
            if let Some((first, iv)) = sh.schedule(id) {
                let n = Arc::new(tokio::sync::Notify::new());
                signals.push((id, n.clone()));
                due.push((first, iv, n));
            }
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = if due.is_empty() {
            None
        } else {
            let (sh, stop) = (sh.clone(), stop.clone());
            Some(
                std::thread::Builder::new()
                    .name("pacer".into())
                    .spawn(move || pace(&sh, due, &stop))?,
            )
        };
        Ok(Pacer {
            signals,
            stop,
            thread,
        })
    }

    fn signal(&self, conn_id: usize) -> Option<Arc<tokio::sync::Notify>> {
        self.signals
            .iter()
            .find(|(id, _)| *id == conn_id)
            .map(|(_, n)| n.clone())
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pace(
    sh: &Shared,
    due: Vec<(u64, u64, Arc<tokio::sync::Notify>)>,
    stop: &std::sync::atomic::AtomicBool,
) {
    set_fine_timer_slack();
    let mut schedule: Vec<(u64, u64)> = due.iter().map(|(first, iv, _)| (*first, *iv)).collect();
    pace_loop(
        &mut schedule,
        sh.window_end_ns,
        || stop.load(Ordering::Relaxed),
        || sh.now_ns(),
        std::thread::sleep,
        |i| due[i].2.notify_one(),
    );
}

/// The pacer's loop over `(next due, interval)` per connection (ns since the origin): signals
/// each connection whose send is due, once however many it missed (catching up is the
/// connection's), then sleeps until the soonest next due time (10 ms at most, to look at
/// `stopped`), until every next due time is past `end`.
fn pace_loop(
    schedule: &mut [(u64, u64)],
    end: u64,
    stopped: impl Fn() -> bool,
    now_ns: impl Fn() -> u64,
    mut sleep: impl FnMut(Duration),
    mut signal: impl FnMut(usize),
) {
    while !stopped() {
        let now = now_ns();
        let mut soonest = u64::MAX;
        for (i, (next, iv)) in schedule.iter_mut().enumerate() {
            if *next <= now {
                signal(i);
                *next += (now - *next) / *iv * *iv + *iv;
            }
            soonest = soonest.min(*next);
        }
        if soonest >= end {
            break;
        }
        sleep(Duration::from_nanos(soonest - now).min(Duration::from_millis(10)));
    }
}

/// The calling thread's sleeps end within a microsecond of their deadline plus the wake-up
/// (the default slack lets the kernel defer them by 50 µs).
fn set_fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// Until the send due at `due_ns` (ns since the origin) is due: the pacer's signal, or
/// tokio's timer should the pacer be late.
async fn until_due(sh: &Shared, signal: Option<&tokio::sync::Notify>, due_ns: u64) {
    match signal {
        Some(n) => {
            tokio::select! {
                _ = n.notified() => {}
                _ = tokio::time::sleep_until(sh.at(due_ns)) => {}
            }
        }
        None => tokio::time::sleep_until(sh.at(due_ns)).await,
    }
}

/// Chooses and encodes each connection's next request; learns from replies (churn).
struct OpGen {
    rng: Rng,
    conn_id: usize,
    created: u64,
    pending_deletes: VecDeque<String>,
}

impl OpGen {
    fn new(seed: u64, conn_id: usize) -> Self {
        Self {
            rng: Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(conn_id as u64)),
            conn_id,
            created: 0,
            pending_deletes: VecDeque::new(),
        }
    }

    fn submit(&mut self, sh: &Shared, conn: &mut Conn<Tag>, intended_ns: u64) {
        let cfg = &sh.cfg;
        let read = cfg.workload != Workload::Churn
            && cfg.workload != Workload::Watch
            && self.rng.percent(cfg.read_pct);
        let tag = |kind| Tag { intended_ns, kind };
        if read {
            let path = &sh.key_paths[sh.keys.next(&mut self.rng) as usize];
            conn.submit(OpCode::GetData, tag(Kind::Read), |w| {
                w.write_str(path);
                w.write_bool(false);
            });
            return;
        }
        match cfg.workload {
            Workload::Mixed | Workload::Watch | Workload::Sessions => {
                let key = sh.keys.next(&mut self.rng) as usize;
                if cfg.workload == Workload::Watch {
                    sh.last_write_ns[key].store(sh.now_ns(), Ordering::Relaxed);
                }
                conn.submit(OpCode::SetData, tag(Kind::Write), |w| {
                    w.write_str(&sh.key_paths[key]);
                    w.write_buffer(&sh.value);
                    w.write_i32(cfg.set_version);
                });
            }
            Workload::Multi => {
                let keys: Vec<usize> = (0..cfg.multi_ops)
                    .map(|_| sh.keys.next(&mut self.rng) as usize)
                    .collect();
                conn.submit(OpCode::Multi, tag(Kind::Write), |w| {
                    for key in keys {
                        let h = MultiHeader {
                            r#type: OpCode::SetData.as_i32(),
                            done: false,
                            err: -1,
                        };
                        h.encode(w);
                        w.write_str(&sh.key_paths[key]);
                        w.write_buffer(&sh.value);
                        w.write_i32(cfg.set_version);
                    }
                    let done = MultiHeader {
                        r#type: -1,
                        done: true,
                        err: -1,
                    };
                    done.encode(w);
                });
            }
            Workload::Churn => {
                if let Some(path) = self.pending_deletes.pop_front() {
                    conn.submit(OpCode::Delete, tag(Kind::Write), |w| {
                        w.write_str(&path);
                        w.write_i32(-1);
                    });
                    return;
                }
                let path = if cfg.create_mode.is_sequential() {
                    format!("{}/churn/c{}-", cfg.prefix, self.conn_id)
                } else {
                    format!("{}/churn/c{}-{}", cfg.prefix, self.conn_id, self.created)
                };
                self.created += 1;
                conn.submit(OpCode::Create, tag(Kind::Write), |w| {
                    w.write_str(&path);
                    w.write_buffer(&sh.value);
                    w.write_records(&Acl::open_unsafe());
                    w.write_i32(cfg.create_mode.flags());
                });
            }
        }
    }

    /// A created node's path comes back in the reply; it is deleted next.
    fn on_reply(&mut self, reply: &Reply<Tag>, body: &[u8]) {
        if reply.op == OpCode::Create && reply.err == ErrorCode::OK {
            if let Ok(path) = Reader::new(body).read_str() {
                self.pending_deletes.push_back(path.to_string());
            }
        }
    }
}

/// Marks the connection failed: its outstanding requests are lost.
fn fail(stats: &RefCell<ThreadStats>, sh: &Shared, conn_id: usize, what: &str, lost: usize) {
    let now = sh.now_ns();
    let mut s = stats.borrow_mut();
    for _ in 0..lost {
        s.lost(now);
    }
    s.connection_failures
        .push(format!("connection {conn_id}: {what}"));
    sh.errors.fetch_add(lost.max(1) as u64, Ordering::Relaxed);
}

async fn connect<T>(sh: &Shared, stats: &RefCell<ThreadStats>, conn_id: usize) -> Option<Conn<T>> {
    let addr = sh.cfg.servers[conn_id % sh.cfg.servers.len()];
    match Conn::connect(addr, &sh.connect_options()).await {
        Ok(c) => {
            stats.borrow_mut().totals.sessions_opened += 1;
            Some(c)
        }
        Err(e) => {
            fail(stats, sh, conn_id, &format!("connect to {addr}: {e}"), 0);
            None
        }
    }
}

async fn close<T>(
    sh: &Shared,
    stats: &RefCell<ThreadStats>,
    conn_id: usize,
    conn: Conn<T>,
    tag: T,
) {
    match tokio::time::timeout(sh.io_timeout(), conn.close(tag)).await {
        Ok(Ok(())) => stats.borrow_mut().totals.sessions_closed += 1,
        Ok(Err(e)) => fail(stats, sh, conn_id, &format!("close: {e}"), 0),
        Err(_) => fail(stats, sh, conn_id, "close timed out", 0),
    }
}

/// One connection of the mixed, multi, churn workloads and the watch workload's writers.
async fn request_loop(
    sh: &Shared,
    stats: &RefCell<ThreadStats>,
    conn_id: usize,
    due: Option<Arc<tokio::sync::Notify>>,
) {
    let Some(mut conn) = connect::<Tag>(sh, stats, conn_id).await else {
        return;
    };
    let cfg = &sh.cfg;
    let k = cfg.outstanding;
    let end = sh.window_end_ns;
    let schedule = sh.schedule(conn_id);
    let interval = schedule.map(|(_, iv)| iv);
    let mut next_ns = schedule.map_or(0, |(first, _)| first);
    let mut gen = OpGen::new(cfg.seed, conn_id);
    loop {
        let now = sh.now_ns();
        match interval {
            None => {
                while conn.outstanding() < k && now < end {
                    gen.submit(sh, &mut conn, now);
                }
            }
            Some(iv) => {
                let mut s = stats.borrow_mut();
                while next_ns <= now && next_ns < end && now < end && conn.outstanding() < k {
                    gen.submit(sh, &mut conn, next_ns);
                    s.sent(now - next_ns, sh.late_ns);
                    next_ns += iv;
                }
            }
        }
        if let Err(e) = conn.flush().await {
            let lost = conn.outstanding();
            return fail(stats, sh, conn_id, &format!("write: {e}"), lost);
        }
        let sending = match interval {
            None => now < end,
            Some(_) => next_ns < end && now < end,
        };
        if conn.outstanding() == 0 && !sending {
            break;
        }
        let read = if interval.is_some() && sending && conn.outstanding() < k {
            tokio::select! {
                r = conn.read_some() => Some(r),
                _ = until_due(sh, due.as_deref(), next_ns) => None,
            }
        } else {
            tokio::time::timeout(sh.io_timeout(), conn.read_some())
                .await
                .ok()
                .or(Some(Err(ClientError::Io(
                    std::io::ErrorKind::TimedOut.into(),
                ))))
        };
        if let Some(Err(e)) = read {
            let lost = conn.outstanding();
            return fail(stats, sh, conn_id, &format!("read: {e}"), lost);
        }
        let (mut done, mut errors) = (0u64, 0u64);
        {
            let mut s = stats.borrow_mut();
            loop {
                match conn.try_next() {
                    Ok(Some(Incoming::Reply(r))) => {
                        let now = sh.now_ns();
                        gen.on_reply(&r, conn.body(&r));
                        s.complete(r.tag.kind, r.err, r.tag.intended_ns, now);
                        done += 1;
                        errors += u64::from(r.err != ErrorCode::OK);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        drop(s);
                        let lost = conn.outstanding();
                        return fail(stats, sh, conn_id, &format!("reply: {e}"), lost);
                    }
                }
            }
        }
        sh.ops.fetch_add(done, Ordering::Relaxed);
        if errors > 0 {
            sh.errors.fetch_add(errors, Ordering::Relaxed);
        }
    }
    if let Some(iv) = interval {
        // Sends the schedule wanted before the end but the generator never made.
        stats.borrow_mut().unsent += end.saturating_sub(next_ns).div_ceil(iv);
    }
    let tag = Tag {
        intended_ns: 0,
        kind: Kind::Session,
    };
    close(sh, stats, conn_id, conn, tag).await;
}

/// A watch-workload watcher: persistent watches on every watched node, then events until
/// shortly after the window (so events of the window's last writes still arrive).
async fn watcher(sh: &Shared, stats: &RefCell<ThreadStats>, conn_id: usize) {
    let Some(mut conn) = connect::<()>(sh, stats, conn_id).await else {
        return;
    };
    for path in &sh.key_paths {
        conn.submit(OpCode::AddWatch, (), |w| {
            w.write_str(path);
            w.write_i32(zoocore_proto::records::ADD_WATCH_PERSISTENT);
        });
    }
    let stop = sh.at(sh.window_end_ns + 500_000_000);
    let ping_every = Duration::from_millis((sh.cfg.session_timeout_ms / 3).max(100) as u64);
    loop {
        if let Err(e) = conn.flush().await {
            return fail(stats, sh, conn_id, &format!("write: {e}"), 0);
        }
        let read = tokio::select! {
            r = conn.read_some() => Some(r),
            _ = tokio::time::sleep(ping_every) => None,
            _ = tokio::time::sleep_until(stop) => break,
        };
        match read {
            None => conn.ping(),
            Some(Err(e)) => return fail(stats, sh, conn_id, &format!("read: {e}"), 0),
            Some(Ok(())) => {}
        }
        let mut s = stats.borrow_mut();
        loop {
            match conn.try_next() {
                Ok(Some(Incoming::Event { event, .. })) => {
                    let now = sh.now_ns();
                    let sent = key_index(&event.path)
                        .and_then(|i| sh.last_write_ns.get(i))
                        .map_or(now, |t| t.load(Ordering::Relaxed));
                    s.event(sent, now);
                }
                Ok(Some(Incoming::Reply(r))) if r.err != ErrorCode::OK => {
                    s.connection_failures
                        .push(format!("connection {conn_id}: addWatch: {}", r.err));
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    drop(s);
                    return fail(stats, sh, conn_id, &format!("reply: {e}"), 0);
                }
            }
        }
    }
    close(sh, stats, conn_id, conn, ()).await;
}

/// Session storm: open a session, close it, repeat (on a schedule in open loop).
async fn session_loop(
    sh: &Shared,
    stats: &RefCell<ThreadStats>,
    conn_id: usize,
    signal: Option<Arc<tokio::sync::Notify>>,
) {
    let cfg = &sh.cfg;
    let addr = cfg.servers[conn_id % cfg.servers.len()];
    let end = sh.window_end_ns;
    let schedule = sh.schedule(conn_id);
    let interval = schedule.map(|(_, iv)| iv);
    let mut next_ns = schedule.map_or(0, |(first, _)| first);
    let opts = sh.connect_options();
    loop {
        let intended = match interval {
            None => sh.now_ns(),
            Some(iv) => {
                let due = next_ns;
                next_ns += iv;
                while sh.now_ns() < due {
                    until_due(sh, signal.as_deref(), due).await;
                }
                stats
                    .borrow_mut()
                    .sent(sh.now_ns().saturating_sub(due), sh.late_ns);
                due
            }
        };
        if intended >= end || sh.now_ns() >= end {
            if let Some(iv) = interval {
                stats.borrow_mut().unsent += end.saturating_sub(intended).div_ceil(iv);
            }
            break;
        }
        let err = match Conn::<()>::connect(addr, &opts).await {
            Ok(conn) => {
                stats.borrow_mut().totals.sessions_opened += 1;
                match tokio::time::timeout(sh.io_timeout(), conn.close(())).await {
                    Ok(Ok(())) => {
                        stats.borrow_mut().totals.sessions_closed += 1;
                        ErrorCode::OK
                    }
                    Ok(Err(e)) => e.code(),
                    Err(_) => ErrorCode::OPERATION_TIMEOUT,
                }
            }
            Err(e) => e.code(),
        };
        stats
            .borrow_mut()
            .complete(Kind::Session, err, intended, sh.now_ns());
        sh.ops.fetch_add(1, Ordering::Relaxed);
        if err != ErrorCode::OK {
            sh.errors.fetch_add(1, Ordering::Relaxed);
            // A refused or failing server: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    /// Runs the pacer's loop on a clock that its sleeps advance, each sleep also delayed by
    /// `late(call)` ns (a late wake-up); returns the (connection, time) of every signal.
    fn signals(
        schedule: &mut [(u64, u64)],
        end: u64,
        late: impl Fn(usize) -> u64,
    ) -> Vec<(usize, u64)> {
        let clock = Cell::new(0u64);
        let calls = Cell::new(0usize);
        let out = RefCell::new(Vec::new());
        super::pace_loop(
            schedule,
            end,
            || false,
            || clock.get(),
            |d| {
                calls.set(calls.get() + 1);
                clock.set(clock.get() + d.as_nanos() as u64 + late(calls.get()));
            },
            |i| out.borrow_mut().push((i, clock.get())),
        );
        out.into_inner()
    }

    #[test]
    fn the_pacer_signals_each_connection_at_its_due_times() {
        // Two connections every 1 ms, phase-shifted by 0.5 ms, for 5 ms; no late wake-up.
        let mut schedule = [(0, 1_000_000), (500_000, 1_000_000)];
        let got = signals(&mut schedule, 5_000_000, |_| 0);
        let want: Vec<(usize, u64)> = (0..10).map(|k| (k % 2, k as u64 * 500_000)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_late_pacer_signals_once_and_keeps_the_schedule() {
        // One connection every 100 µs; the third sleep wakes 350 µs late: the missed sends
        // get one signal, and the next due time stays on the 100 µs grid.
        let mut schedule = [(0, 100_000)];
        let got = signals(&mut schedule, 1_000_000, |call| {
            if call == 3 {
                350_000
            } else {
                0
            }
        });
        let times: Vec<u64> = got.iter().map(|&(_, t)| t / 1000).collect();
        assert_eq!(times, [0, 100, 200, 650, 700, 800, 900]);
    }
}
