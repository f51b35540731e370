//! A shard: the client sessions of one executor, its view of the tree, and the watches of
//! its connections.
//!
//! Everything here runs on one thread and every method is synchronous, so a commit batch is
//! taken in one step: the view is swapped, every entry's watch events and write responses are
//! queued in zxid order, and only then are the reads that waited behind writes answered from
//! the new view. Hence (DESIGN.md §2):
//! - a client never sees data newer than a watch event it has not received: a response
//!   computed from view v is queued after every event up to v;
//! - per-session FIFO: a read waits behind the same session's outstanding writes, and
//!   everything a connection receives is in zxid order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use zoocore_proto::records::Request;
use zoocore_proto::records::*;
use zoocore_proto::{Acl, ErrorCode, EventType, Id, OpCode, Perms, SessionId, Zxid};
use zoocore_tree::{
    check_acl, digest_auth_ids, Applied, NodeCache, Op, OpResult, Tree, WatchKind, WatchTable,
    WatcherType,
};

use crate::config::Config;
use crate::msg::{
    CommitBatch, Committed, ConnId, CoreOp, CoreRequest, Origin, Outcome, Serving, ShardId, ToCore,
};
use glommio::channels::local_channel::LocalSender;
use zoocore_member::reconfig::ReconfigArgs;

use crate::budget::{Budget, Held, Permit};
use crate::outbox::{Close, Outbox};
use crate::sessions::session_password;
use crate::stats::{ConnStats, RequestKind, ShardCounters};
use crate::views::Views;
use crate::wire;
use std::sync::atomic::Ordering::Relaxed;

/// A request waiting for its turn in its session's FIFO. Each holds its unit of the shard's
/// outstanding budget, which moves to the outbox with its answer (budget.rs).
#[derive(Debug)]
enum Pending {
    /// The handshake of a new session, waiting for its createSession to commit.
    Connect {
        read_only: Option<bool>,
        permit: Permit,
    },
    /// A write (or sync) sent to the ZAB core; `done` once its answer arrived.
    Write {
        started: Instant,
        xid: i32,
        op: OpCode,
        multi_ops: Vec<OpCode>,
        close_after: bool,
        done: Option<Vec<u8>>,
        permit: Permit,
    },
    /// A read that arrived behind a write of the same session.
    Read {
        started: Instant,
        xid: i32,
        req: Request,
        permit: Permit,
    },
}

#[derive(Debug)]
pub struct Conn {
    pub session: SessionId,
    pub timeout_ms: i32,
    auth: Arc<[Id]>,
    out: Rc<Outbox>,
    /// The budget units this connection's requests hold (budget.rs).
    pub held: Rc<Held>,
    queue: VecDeque<Pending>,
    pub addr: SocketAddr,
    pub stats: ConnStats,
}

impl Conn {
    /// Queues a frame that answers no request of the budget (a notification, a handshake).
    fn push(&self, frame: &[u8]) {
        self.out.push(None, frame);
    }

    fn close(&self, how: Close) {
        self.out.close(how);
    }
}

pub struct Shard {
    pub id: ShardId,
    pub cfg: Arc<Config>,
    /// The tree as of the last commit batch installed here; replaced only by `on_commit`,
    /// which clears `nodes` with it.
    view: Tree,
    /// The view's nodes by path for getData and exists (zoocore_tree's cache.rs).
    nodes: NodeCache,
    pub conns: HashMap<ConnId, Conn, IdHash>,
    sessions: HashMap<SessionId, ConnId, IdHash>,
    pub watches: WatchTable<ConnId>,
    /// Messages for the core made by the last synchronous call, sent by the connection task
    /// that made them (conn.rs), which waits while the bounded channel to the core is full.
    outgoing: Vec<ToCore>,
    pub to_core: Rc<LocalSender<ToCore>>,
    touched: HashSet<SessionId, IdHash>,
    next_conn: ConnId,
    pub budget: Rc<Budget>,
    pub stats: Arc<ShardCounters>,
    /// Commit batches installed here: the view's number across shards (views.rs).
    pub batches: u64,
    pub views: Arc<Views>,
    /// What this member serves clients (FromCore::Serving): a standalone server always, an
    /// ensemble member once it follows, observes or leads; read-only sessions while it has
    /// no leader under `readonlymode.enabled`.
    pub serving: Serving,
    /// Read-only sessions this shard has handed out, for their ids.
    read_only_sessions: i64,
}

/// Hashing of connection and session ids for the shard's maps, which are looked up several
/// times per request: ids are not chosen by clients in a way that could collide on purpose
/// (connection ids count up; session ids are the server's), so a multiplicative hash
/// (Fibonacci hashing) does, at a fraction of SipHash's cost (perf: `hash_one` was 2% of a
/// shard's reads).
pub type IdHash = std::hash::BuildHasherDefault<IdHasher>;

#[derive(Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }

    fn write_i64(&mut self, v: i64) {
        self.0 ^= v as u64;
    }
}

/// A decision of the shard that ends a connection, with the reason to log.
pub type CloseReason = String;

impl Shard {
    pub fn new(
        id: ShardId,
        cfg: Arc<Config>,
        view: Tree,
        to_core: LocalSender<ToCore>,
        budget: u64,
        stats: Arc<ShardCounters>,
        views: Arc<Views>,
    ) -> Self {
        Shard {
            serving: if cfg.ensemble.is_none() {
                Serving::ReadWrite
            } else {
                Serving::No
            },
            read_only_sessions: 0,
            id,
            cfg,
            view,
            nodes: NodeCache::new(),
            conns: HashMap::default(),
            sessions: HashMap::default(),
            watches: WatchTable::new(),
            outgoing: Vec::new(),
            to_core: Rc::new(to_core),
            touched: HashSet::default(),
            next_conn: 1,
            budget: Budget::new(budget, stats.outstanding.clone()),
            stats,
            batches: 0,
            views,
        }
    }

    /// The tree as of the last commit batch installed here.
    pub fn view(&self) -> &Tree {
        &self.view
    }

    pub fn send_to_core(&mut self, msg: ToCore) {
        self.outgoing.push(msg);
    }

    /// Moves what the last call made for the core into `into`, for its caller to send; both
    /// vectors keep their capacity, so a request allocates nothing here.
    pub fn move_outgoing(&mut self, into: &mut Vec<ToCore>) {
        into.append(&mut self.outgoing);
    }

    pub fn open(&mut self, addr: SocketAddr, out: Rc<Outbox>) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let auth: Arc<[Id]> = Arc::from(vec![Id::new("ip", addr.ip().to_string())]);
        let conn = Conn {
            session: SessionId(0),
            timeout_ms: 0,
            auth,
            out,
            held: Rc::new(Held::default()),
            queue: VecDeque::new(),
            addr,
            stats: ConnStats::new(),
        };
        self.conns.insert(id, conn);
        self.stats.connections.fetch_add(1, Relaxed);
        id
    }

    /// Adds ids the transport proved (a TLS client certificate's `x509` id, tls.rs) to a
    /// connection just opened, as NettyServerCnxnFactory does after the handshake.
    pub fn add_auth(&mut self, id: ConnId, ids: &[Id]) {
        if let Some(conn) = self.conns.get_mut(&id) {
            let mut auth = conn.auth.to_vec();
            auth.extend_from_slice(ids);
            conn.auth = Arc::from(auth);
        }
    }

    /// Forgets a connection whose task ended; its watches go with it, as in ZooKeeper.
    pub fn close(&mut self, id: ConnId) {
        // The connection's pending requests, and their permits, go with it.
        if let Some(conn) = self.conns.remove(&id) {
            if self.sessions.get(&conn.session) == Some(&id) {
                self.sessions.remove(&conn.session);
            }
            self.watches.remove_watcher(id);
            self.stats.connections.fetch_sub(1, Relaxed);
        }
    }

    /// Sessions that showed life since the last call.
    pub fn take_touched(&mut self) -> Vec<SessionId> {
        self.touched.drain().collect()
    }

    pub fn session_of(&self, id: ConnId) -> Option<SessionId> {
        self.conns.get(&id).map(|c| c.session).filter(|s| s.0 != 0)
    }

    pub fn timeout_of(&self, id: ConnId) -> i32 {
        self.conns.get(&id).map_or(0, |c| c.timeout_ms)
    }

    /// The handshake: a new session goes to the core; a known one resumes here if its
    /// password matches and it has not expired. A refused handshake drops its permit with the
    /// error.
    pub fn on_connect(
        &mut self,
        id: ConnId,
        req: ConnectRequest,
        read_only: Option<bool>,
        permit: Permit,
    ) -> Result<(), CloseReason> {
        let server_read_only = match self.serving {
            Serving::No => return Err("this ensemble member has no leader: not serving".into()),
            Serving::ReadOnly if read_only != Some(true) => {
                // ZooKeeperServer.processConnectRequest: "Not read-only client".
                return Err("not a read-only client, and this member has no quorum".into());
            }
            Serving::ReadOnly => true,
            Serving::ReadWrite => false,
        };
        // The answer's readOnly says what the server is (not an echo of the client's flag),
        // and is there only when the client sent one.
        let read_only = read_only.map(|_| server_read_only);
        if req.last_zxid_seen > self.view.last_zxid().0 {
            return Err(format!(
                "client has seen zxid 0x{:x}, our last zxid is {}: refusing the session",
                req.last_zxid_seen,
                self.view.last_zxid()
            ));
        }
        let timeout_ms = self.cfg.negotiate_timeout(req.time_out);
        let shard = self.id;
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        conn.timeout_ms = timeout_ms;
        if req.session_id == 0 && !server_read_only {
            conn.queue.push_back(Pending::Connect { read_only, permit });
            let auth = conn.auth.clone();
            self.send_to_core(ToCore::Request(CoreRequest {
                origin: Some(Origin {
                    shard,
                    conn: id,
                    xid: 0,
                }),
                session: SessionId(0),
                auth,
                op: CoreOp::CreateSession { timeout_ms },
                barrier: false,
            }));
            return Ok(());
        }
        let (session, valid) = if req.session_id == 0 {
            // A read-only member cannot commit a createSession: the session is this
            // member's own (ZooKeeper's local session), never written, gone with its
            // connection. A Java client that has never seen a read-write server asks for
            // a new session again when it finds one.
            (self.read_only_session_id(), true)
        } else {
            let session = SessionId(req.session_id);
            let valid = req.passwd.as_slice() == session_password(session)
                && self.view.session_exists(session);
            (session, valid)
        };
        // Any attempt to reconnect closes the session's current connection, before the
        // password is checked, as ZooKeeperServer.processConnectRequest does. Without a
        // leader there is no owner to move.
        if !server_read_only {
            self.outgoing.push(ToCore::Attach {
                session,
                shard,
                conn: id,
                valid,
            });
        }
        let conn = self.conns.get_mut(&id).expect("connection checked above");
        if !valid {
            tracing::info!(
                "connection from {} asked for session {session}: expired or wrong password",
                conn.addr
            );
            let answer = ConnectResponse {
                protocol_version: 0,
                time_out: 0,
                session_id: 0,
                passwd: vec![0; 16],
            };
            conn.out.push(
                Some(permit),
                &wire::framed(&answer.encode_handshake(read_only)),
            );
            conn.close(Close::AfterFlush("session expired".into()));
            return Ok(());
        }
        conn.session = session;
        self.sessions.insert(session, id);
        if !server_read_only {
            self.touched.insert(session);
        }
        let answer = ConnectResponse {
            protocol_version: 0,
            time_out: timeout_ms,
            session_id: session.0,
            passwd: session_password(session).to_vec(),
        };
        conn.out.push(
            Some(permit),
            &wire::framed(&answer.encode_handshake(read_only)),
        );
        Ok(())
    }

    /// One request packet after the handshake, with the budget unit its connection took for
    /// it. An error closes the connection (after what is queued, as ZooKeeper answers an
    /// unknown opcode before closing).
    pub fn on_packet(
        &mut self,
        id: ConnId,
        header: RequestHeader,
        body: &[u8],
        permit: Permit,
    ) -> Result<(), CloseReason> {
        self.invariants();
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        conn.stats.received += 1;
        self.stats.packets_received.add(1);
        if conn.session.0 != 0 && self.serving != Serving::ReadOnly {
            self.touched.insert(conn.session);
        }
        let xid = header.xid;
        let Some(op) = OpCode::from_i32(header.r#type) else {
            // UnimplementedRequestProcessor: answered without a zxid, then the connection
            // is closed.
            let frame = wire::reply(xid, Zxid(-1), ErrorCode::UNIMPLEMENTED, None);
            self.emit(id, frame, None, RequestKind::Other, permit);
            return Err(format!("unknown opcode {}", header.r#type));
        };
        let req = match Request::decode(op, body) {
            Ok(req) => req,
            Err(e) => {
                // ZooKeeper answers a body it cannot deserialize with MARSHALLINGERROR and
                // keeps the connection.
                tracing::info!("malformed {op:?} request from {}: {e}", conn.addr);
                return self.answer_now(id, xid, ErrorCode::MARSHALLING_ERROR, None, permit);
            }
        };
        conn.stats.last_op = op;
        conn.stats.last_cxid = xid;
        match req {
            Request::Auth(auth) => self.on_auth(id, xid, auth, permit),
            // No SASL is configured: ZooKeeper answers OK with no challenge token, and the
            // session goes on unauthenticated.
            Request::Sasl(_) => {
                let body = Response::Sasl(SetSaslResponse { token: None });
                self.answer_now(id, xid, ErrorCode::OK, Some(&body), permit)
            }
            // PrepRequestProcessor's first check: reconfigEnabled (and a standalone server has
            // no quorum to reconfigure).
            Request::Reconfig(_) if !self.cfg.reconfig_enabled || self.cfg.ensemble.is_none() => {
                self.answer_now(id, xid, ErrorCode::RECONFIG_DISABLED, None, permit)
            }
            _ if (op.is_write() || op == OpCode::Sync) && self.serving == Serving::ReadOnly => {
                self.refuse_read_only(id, xid, op, permit)
            }
            req if op.is_write() || op == OpCode::Sync => {
                self.submit_write(id, xid, op, req, Instant::now(), permit);
                Ok(())
            }
            req => {
                let conn = self.conns.get_mut(&id).expect("connection checked above");
                if conn.queue.is_empty() {
                    // Answered within this call: no clock read for its latency.
                    self.read(id, xid, &req, None, permit);
                } else {
                    conn.queue.push_back(Pending::Read {
                        started: Instant::now(),
                        xid,
                        req,
                        permit,
                    });
                }
                Ok(())
            }
        }
    }

    /// Answers at once, outside the session's FIFO (auth, unsupported opcodes), as ZooKeeper
    /// does for packets that never reach its request pipeline.
    fn answer_now(
        &mut self,
        id: ConnId,
        xid: i32,
        err: ErrorCode,
        body: Option<&Response>,
        permit: Permit,
    ) -> Result<(), CloseReason> {
        let frame = wire::reply(xid, self.view.last_zxid(), err, body);
        self.emit(id, frame, None, RequestKind::Other, permit);
        Ok(())
    }

    /// A write, sync or closeSession on a read-only member (ReadOnlyRequestProcessor):
    /// NOTREADONLY, but the close of a session of this member's own (a read-only one) is
    /// done: answered, and its connection closed. Nothing waits in a read-only session's
    /// FIFO (it never has a write in flight), so answering at once keeps the order.
    fn refuse_read_only(
        &mut self,
        id: ConnId,
        xid: i32,
        op: OpCode,
        permit: Permit,
    ) -> Result<(), CloseReason> {
        let session = self.conns.get(&id).map_or(SessionId(0), |c| c.session);
        if op == OpCode::CloseSession && !self.view.session_exists(session) {
            self.answer_now(id, xid, ErrorCode::OK, None, permit)?;
            if let Some(conn) = self.conns.get(&id) {
                conn.close(Close::AfterFlush("read-only session closed".into()));
            }
            return Ok(());
        }
        self.answer_now(id, xid, ErrorCode::NOT_READ_ONLY, None, permit)
    }

    /// A new read-only session's id: in ZooKeeper's shape (this server's id in the top byte,
    /// then the time in milliseconds, `first_session_id`), then this shard and a count, so
    /// that ids differ across shards and from this member's read-write sessions, which
    /// count up from its start time.
    fn read_only_session_id(&mut self) -> SessionId {
        let myid = self.cfg.ensemble.as_ref().map_or(0, |e| e.myid);
        let base = crate::sessions::first_session_id(myid as u8, crate::stats::unix_ms());
        self.read_only_sessions += 1;
        let shard = (self.id as i64 & 0xf) << 12;
        SessionId(base + shard + (self.read_only_sessions & 0xfff))
    }

    fn on_auth(
        &mut self,
        id: ConnId,
        xid: i32,
        packet: AuthPacket,
        permit: Permit,
    ) -> Result<(), CloseReason> {
        let ids = match packet.scheme.as_str() {
            "digest" => digest_auth_ids(&packet.auth, self.cfg.super_digest.as_deref()),
            "ip" => Ok(Vec::new()),
            _ => Err(ErrorCode::AUTH_FAILED),
        };
        let conn = self.conns.get_mut(&id).expect("auth on a live connection");
        match ids {
            Ok(ids) => {
                let mut auth: Vec<Id> = conn.auth.to_vec();
                for i in ids {
                    if !auth.contains(&i) {
                        auth.push(i);
                    }
                }
                conn.auth = Arc::from(auth);
                // Auth replies carry zxid 0 (ZooKeeperServer.processAuth).
                let frame = wire::reply(xid, Zxid::ZERO, ErrorCode::OK, None);
                self.emit(id, frame, None, RequestKind::Other, permit);
                Ok(())
            }
            Err(_) => {
                tracing::info!(
                    "authentication failed for {} (scheme {:?})",
                    conn.addr,
                    packet.scheme
                );
                let frame = wire::reply(xid, Zxid::ZERO, ErrorCode::AUTH_FAILED, None);
                self.emit(id, frame, None, RequestKind::Other, permit);
                if let Some(conn) = self.conns.get(&id) {
                    conn.close(Close::AfterFlush("authentication failed".into()));
                }
                Ok(())
            }
        }
    }

    fn submit_write(
        &mut self,
        id: ConnId,
        xid: i32,
        op: OpCode,
        req: Request,
        started: Instant,
        permit: Permit,
    ) {
        let shard = self.id;
        let conn = self.conns.get_mut(&id).expect("write on a live connection");
        let mut multi_ops = Vec::new();
        let core_op = match req {
            Request::Sync(r) => CoreOp::Sync { path: r.path },
            Request::CloseSession => CoreOp::Tree(Op::CloseSession {
                session: conn.session,
            }),
            Request::Multi(m) => {
                multi_ops = m.ops.iter().map(|o| o.opcode()).collect();
                CoreOp::Tree(Op::Multi(m.ops.into_iter().map(multi_op).collect()))
            }
            Request::Reconfig(r) => CoreOp::Reconfig(ReconfigArgs {
                joining: r.joining_servers,
                leaving: r.leaving_servers,
                new_members: r.new_members,
                from_version: r.cur_config_id,
                skip_acl: self.cfg.skip_acl,
                standalone_enabled: self.cfg.standalone_enabled,
            }),
            other => CoreOp::Tree(write_op(other)),
        };
        // FIFO client order: a read queued before this write is answered from the view of
        // its turn, which must not hold this write. The write goes to the core at once, as
        // a barrier: the member publishes what commits before it in a batch of its own,
        // and the read is answered from that batch's view (ZooKeeper's CommitProcessor
        // likewise lets the write be proposed and holds only its application).
        let barrier = conn.queue.iter().any(|p| matches!(p, Pending::Read { .. }));
        let req = CoreRequest {
            origin: Some(Origin {
                shard,
                conn: id,
                xid,
            }),
            session: conn.session,
            auth: conn.auth.clone(),
            op: core_op,
            barrier,
        };
        conn.queue.push_back(Pending::Write {
            started,
            xid,
            op,
            multi_ops,
            close_after: op == OpCode::CloseSession,
            done: None,
            permit,
        });
        self.send_to_core(ToCore::Request(req));
    }

    /// A committed batch: swap the view, then deliver every entry in order.
    pub fn on_commit(&mut self, batch: &CommitBatch) {
        self.view = batch.view.clone();
        self.nodes.clear();
        self.batches += 1;
        self.views.installed(self.id, self.batches);
        let mut waiting = Vec::new();
        for entry in &batch.entries {
            self.fire_watches(entry);
            if let Some(origin) = entry.origin.filter(|o| o.shard == self.id) {
                if self.complete(origin, entry) {
                    waiting.push(origin.conn);
                }
            }
            if let Some(session) = entry.closed_session {
                self.session_closed(session, entry.origin);
            }
        }
        for id in waiting {
            self.drain(id);
        }
        self.invariants();
    }

    /// Units out = requests in flight: every permit of the shard's budget is held by one of
    /// its connections (a request in a FIFO, an answer in an outbox or being written).
    fn invariants(&self) {
        if cfg!(debug_assertions) {
            let held: u64 = self.conns.values().map(|c| u64::from(c.held.get())).sum();
            assert_eq!(
                held,
                self.budget.out(),
                "connections hold {held} units, the budget has {} out",
                self.budget.out()
            );
        }
    }

    fn fire_watches(&mut self, entry: &Committed) {
        let Outcome::Applied(applied) = &entry.outcome else {
            return;
        };
        for trigger in &applied.triggers {
            for (watcher, event, path) in self.watches.trigger(&trigger.path, trigger.event) {
                if let Some(conn) = self.conns.get_mut(&watcher) {
                    conn.stats.sent += 1;
                    conn.push(&wire::notification(event, &path, entry.zxid));
                }
            }
        }
    }

    /// Stores an entry's answer in its pending slot and sends what is at the head of the
    /// session's FIFO. Returns whether reads are left waiting at the head.
    fn complete(&mut self, origin: Origin, entry: &Committed) -> bool {
        let id = origin.conn;
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        if let Outcome::SessionCreated {
            session,
            timeout_ms,
        } = &entry.outcome
        {
            let Some(Pending::Connect { read_only, permit }) = conn.queue.pop_front() else {
                tracing::error!(
                    "session {session} created for a connection that is not connecting"
                );
                return false;
            };
            conn.session = *session;
            let answer = ConnectResponse {
                protocol_version: 0,
                time_out: *timeout_ms,
                session_id: session.0,
                passwd: session_password(*session).to_vec(),
            };
            conn.out.push(
                Some(permit),
                &wire::framed(&answer.encode_handshake(read_only)),
            );
            self.sessions.insert(*session, id);
            return self.release_head(id);
        }
        let at = conn.queue.iter().position(
            |p| matches!(p, Pending::Write { xid, done: None, .. } if *xid == origin.xid),
        );
        let Some(Pending::Write {
            op,
            multi_ops,
            done,
            ..
        }) = at.and_then(|at| conn.queue.get_mut(at))
        else {
            tracing::error!(
                "answer for xid {} of {} has no pending write",
                origin.xid,
                conn.session
            );
            return false;
        };
        let (err, body) = write_response(*op, multi_ops, &entry.outcome);
        if err == ErrorCode::SESSION_MOVED {
            // The leader refused a write of this connection's session, which moved to
            // another member: like ZooKeeper's FinalRequestProcessor, close the connection
            // instead of answering (the client sees a connection loss, not -118).
            conn.close(Close::Now("session moved to another member".into()));
            return false;
        }
        let (xid, zxid) = (origin.xid, entry.reply_zxid());
        if at != Some(0) {
            // Behind an unanswered request of the connection: kept until that is answered.
            *done = Some(wire::reply(xid, zxid, err, body.as_ref()));
            return self.release_head(id);
        }
        // At the head (nearly always): encoded straight into the outbox, no frame of its own.
        let Some(Pending::Write {
            started,
            close_after,
            permit,
            ..
        }) = conn.queue.pop_front()
        else {
            unreachable!("the write is at the head")
        };
        if let Some(conn) = self.answered(id, Some(started), RequestKind::Update) {
            conn.out.encode(Some(permit), |b| {
                wire::reply_into(b, xid, zxid, err, body.as_ref())
            });
            if close_after {
                conn.close(Close::AfterFlush("session closed".into()));
            }
        }
        self.release_head(id)
    }

    /// Sends the finished writes at the head of a connection's FIFO; stops at an unfinished
    /// write or a read. Returns whether a read is at the head.
    fn release_head(&mut self, id: ConnId) -> bool {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return false;
            };
            match conn.queue.front() {
                Some(Pending::Write { done: Some(_), .. }) => {
                    let Some(Pending::Write {
                        started,
                        done: Some(frame),
                        close_after,
                        permit,
                        ..
                    }) = conn.queue.pop_front()
                    else {
                        unreachable!("head checked above")
                    };
                    self.emit(id, frame, Some(started), RequestKind::Update, permit);
                    if close_after {
                        if let Some(conn) = self.conns.get(&id) {
                            conn.close(Close::AfterFlush("session closed".into()));
                        }
                    }
                }
                Some(Pending::Read { .. }) => return true,
                _ => return false,
            }
        }
    }

    /// Answers the reads at the head of a connection's FIFO from the current view, and the
    /// finished writes between them, until the connection's unsent answers pass their cap:
    /// the connection task calls [`Shard::resume`] once it has written them.
    fn drain(&mut self, id: ConnId) {
        let unsent_max = crate::limits::unsent_bytes_max(self.cfg.jute_max_buffer as usize);
        while self.release_head(id) {
            let conn = self
                .conns
                .get_mut(&id)
                .expect("release_head saw the connection");
            if conn.out.unsent() > unsent_max {
                return;
            }
            let Some(Pending::Read {
                started,
                xid,
                req,
                permit,
            }) = conn.queue.pop_front()
            else {
                unreachable!("head is a read")
            };
            self.read(id, xid, &req, Some(started), permit);
        }
    }

    /// Answers what waits at the head of a connection's FIFO (reads left by `drain` at the
    /// cap). Returns whether anything was queued.
    pub fn resume(&mut self, id: ConnId) -> bool {
        let Some(before) = self.conns.get(&id).map(|c| c.out.unsent()) else {
            return false;
        };
        self.drain(id);
        self.conns.get(&id).is_some_and(|c| c.out.unsent() > before)
    }

    /// Queues one request's answer with its budget unit, which comes back once the answer is
    /// written; `started` (when the request arrived) feeds the latency figures.
    fn emit(
        &mut self,
        id: ConnId,
        frame: Vec<u8>,
        started: Option<Instant>,
        kind: RequestKind,
        permit: Permit,
    ) {
        if let Some(conn) = self.answered(id, started, kind) {
            conn.out.push(Some(permit), &frame);
        }
    }

    /// The bookkeeping of one answered request: latency (0 for an answer given in the same
    /// call the request arrived in), counters. Returns the connection to deliver to, if it is
    /// still open.
    fn answered(
        &mut self,
        id: ConnId,
        started: Option<Instant>,
        kind: RequestKind,
    ) -> Option<&mut Conn> {
        let us = started.map_or(0, |s| s.elapsed().as_micros() as u64);
        self.stats.record_latency(us, kind);
        self.stats.packets_sent.add(1);
        let conn = self.conns.get_mut(&id)?;
        conn.stats.sent += 1;
        conn.stats.answered();
        Some(conn)
    }

    /// A session ended (closed by its client, or expired): its connection here, if any and
    /// not the one that asked, is closed.
    fn session_closed(&mut self, session: SessionId, origin: Option<Origin>) {
        let Some(&id) = self.sessions.get(&session) else {
            return;
        };
        let asked = origin.is_some_and(|o| o.shard == self.id && o.conn == id);
        if !asked {
            if let Some(conn) = self.conns.get(&id) {
                // At once, whatever is queued for it (DESIGN.md §2).
                conn.close(Close::Now("session expired".into()));
            }
        }
        self.sessions.remove(&session);
    }

    /// The member lost its leader: every connection closes (its task then calls `close`).
    pub fn close_all(&mut self) {
        for conn in self.conns.values() {
            conn.close(Close::Now("this ensemble member lost its leader".into()));
        }
    }

    /// The core says this connection lost its session to a newer connection.
    pub fn close_moved(&mut self, id: ConnId, session: SessionId) {
        if let Some(conn) = self.conns.get(&id) {
            if conn.session == session {
                conn.close(Close::Now("session moved to another connection".into()));
            }
        }
    }

    /// Serves a read from the current view, encoding its answer straight into the
    /// connection's outbox beside the request's permit.
    fn read(
        &mut self,
        id: ConnId,
        xid: i32,
        req: &Request,
        started: Option<Instant>,
        permit: Permit,
    ) {
        let conn = self.conns.get(&id).expect("read on a live connection");
        let auth = conn.auth.clone();
        let session = conn.session;
        let zxid = self.view.last_zxid();
        if let Request::GetData(r) = req {
            // The hot read: the data goes from the tree to the outbox in one copy.
            let Some(out) = self
                .answered(id, started, RequestKind::Read)
                .map(|c| c.out.clone())
            else {
                return;
            };
            let permit = Some(permit);
            match self.nodes.get(&self.view, &r.path) {
                None => out.encode(permit, |b| {
                    wire::reply_into(b, xid, zxid, ErrorCode::NO_NODE, None)
                }),
                Some(node) => match require(node.acl(), Perms::READ, &auth) {
                    Err(code) => out.encode(permit, |b| wire::reply_into(b, xid, zxid, code, None)),
                    Ok(()) => {
                        if r.watch {
                            self.watches.add(&r.path, id, WatchKind::Data);
                        }
                        out.encode(permit, |b| {
                            wire::get_data_into(b, xid, zxid, node.data(), &node.stat())
                        })
                    }
                },
            }
            return;
        }
        let (err, body) = match self.read_result(id, session, &auth, req) {
            Ok(body) => (ErrorCode::OK, body),
            Err(code) => (code, None),
        };
        if let Some(conn) = self.answered(id, started, RequestKind::Read) {
            conn.out.encode(Some(permit), |b| {
                wire::reply_into(b, xid, zxid, err, body.as_ref())
            });
        }
    }

    fn read_result(
        &mut self,
        id: ConnId,
        session: SessionId,
        auth: &[Id],
        req: &Request,
    ) -> Result<Option<Response>, ErrorCode> {
        let view = &self.view;
        Ok(Some(match req {
            Request::Ping => return Ok(None),
            Request::Exists(r) => {
                let stat = self.nodes.get(view, &r.path).map(|n| n.stat());
                if r.watch {
                    let kind = if stat.is_some() {
                        WatchKind::Data
                    } else {
                        WatchKind::Exist
                    };
                    self.watches.add(&r.path, id, kind);
                }
                Response::Stat(StatResponse {
                    stat: stat.ok_or(ErrorCode::NO_NODE)?,
                })
            }
            Request::GetAcl(r) => {
                let node = view.get(&r.path).ok_or(ErrorCode::NO_NODE)?;
                require(node.acl(), Perms(Perms::READ.0 | Perms::ADMIN.0), auth)?;
                let admin = zoocore_tree::check_acl(node.acl(), Perms::ADMIN, auth);
                let acl = if admin {
                    node.acl().to_vec()
                } else {
                    redact_digests(node.acl())
                };
                Response::GetAcl(GetAclResponse {
                    acl,
                    stat: node.stat(),
                })
            }
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                let node = view.get(&r.path).ok_or(ErrorCode::NO_NODE)?;
                require(node.acl(), Perms::READ, auth)?;
                let stat = node.stat();
                let children = view.children(&r.path).unwrap_or_default();
                if r.watch {
                    self.watches.add(&r.path, id, WatchKind::Child);
                }
                if matches!(req, Request::GetChildren2(_)) {
                    Response::GetChildren2(GetChildren2Response { children, stat })
                } else {
                    Response::GetChildren(GetChildrenResponse { children })
                }
            }
            Request::GetAllChildrenNumber(r) => {
                let node = view.get(&r.path).ok_or(ErrorCode::NO_NODE)?;
                require(node.acl(), Perms::READ, auth)?;
                let total_number = view.all_children_number(&r.path).unwrap_or(0);
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number })
            }
            Request::GetEphemerals(r) => {
                let ephemerals = view.ephemerals(session, &r.prefix_path);
                Response::GetEphemerals(GetEphemeralsResponse { ephemerals })
            }
            Request::MultiRead(m) => Response::Multi(MultiResponse {
                results: m.ops.iter().map(|op| multi_read(view, auth, op)).collect(),
            }),
            Request::SetWatches(w) => {
                let sw = SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches.clone(),
                    exist_watches: w.exist_watches.clone(),
                    child_watches: w.child_watches.clone(),
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                };
                self.set_watches(id, &sw);
                return Ok(None);
            }
            Request::SetWatches2(w) => {
                self.set_watches(id, w);
                return Ok(None);
            }
            Request::AddWatch(r) => {
                let kind = match r.mode {
                    ADD_WATCH_PERSISTENT => WatchKind::Persistent,
                    ADD_WATCH_PERSISTENT_RECURSIVE => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::BAD_ARGUMENTS),
                };
                self.watches.add(&r.path, id, kind);
                Response::Error(ErrorResponse { err: 0 })
            }
            // An unknown watcher type: WatcherType.fromInt throws, and FinalRequestProcessor's
            // catch-all answers MARSHALLINGERROR.
            Request::CheckWatches(r) => {
                let kind = WatcherType::from_i32(r.r#type).ok_or(ErrorCode::MARSHALLING_ERROR)?;
                if !self.watches.contains(&r.path, id, kind) {
                    return Err(ErrorCode::NO_WATCHER);
                }
                return Ok(None);
            }
            Request::RemoveWatches(r) => {
                let kind = WatcherType::from_i32(r.r#type).ok_or(ErrorCode::MARSHALLING_ERROR)?;
                if self.watches.remove(&r.path, id, kind).is_empty() {
                    return Err(ErrorCode::NO_WATCHER);
                }
                return Ok(None);
            }
            Request::WhoAmI => Response::WhoAmI(WhoAmIResponse {
                client_info: auth.iter().map(client_info).collect(),
            }),
            other => {
                tracing::error!("request {other:?} reached the read path");
                return Err(ErrorCode::UNIMPLEMENTED);
            }
        }))
    }

    /// setWatches after a reconnect (DataTree.setWatches): fire at once what changed since
    /// the client's last zxid, register the rest.
    fn set_watches(&mut self, id: ConnId, w: &SetWatches2) {
        let relative = w.relative_zxid;
        let mut events: Vec<(EventType, &str)> = Vec::new();
        for path in &w.data_watches {
            match self.view.get(path) {
                None => events.push((EventType::NodeDeleted, path)),
                Some(n) if n.stat().mzxid > relative => {
                    events.push((EventType::NodeDataChanged, path))
                }
                Some(_) => self.watches.add(path, id, WatchKind::Data),
            }
        }
        for path in &w.exist_watches {
            match self.view.get(path) {
                Some(_) => events.push((EventType::NodeCreated, path)),
                None => self.watches.add(path, id, WatchKind::Exist),
            }
        }
        for path in &w.child_watches {
            match self.view.get(path) {
                None => events.push((EventType::NodeDeleted, path)),
                Some(n) if n.stat().pzxid > relative => {
                    events.push((EventType::NodeChildrenChanged, path))
                }
                Some(_) => self.watches.add(path, id, WatchKind::Child),
            }
        }
        for path in &w.persistent_watches {
            self.watches.add(path, id, WatchKind::Persistent);
        }
        for path in &w.persistent_recursive_watches {
            self.watches.add(path, id, WatchKind::PersistentRecursive);
        }
        let zxid = self.view.last_zxid();
        if let Some(conn) = self.conns.get_mut(&id) {
            for (event, path) in events {
                conn.stats.sent += 1;
                conn.push(&wire::notification(event, path, zxid));
            }
        }
    }

    /// Resets per-connection statistics (crst).
    pub fn reset_connection_stats(&mut self) {
        for conn in self.conns.values_mut() {
            conn.stats.reset();
        }
    }

    pub fn queue_len(&self, id: ConnId) -> usize {
        self.conns.get(&id).map_or(0, |c| c.queue.len())
    }
}

/// whoAmI's entry for an id: digest ids show only the user name, as
/// DigestAuthenticationProvider.getUserName does.
fn client_info(id: &Id) -> ClientInfo {
    let user = match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
        _ => id.id.clone(),
    };
    ClientInfo {
        auth_scheme: id.scheme.clone(),
        user,
    }
}

fn require(acl: &[Acl], perm: Perms, auth: &[Id]) -> Result<(), ErrorCode> {
    if check_acl(acl, perm, auth) {
        Ok(())
    } else {
        Err(ErrorCode::NO_AUTH)
    }
}

/// getACL without ADMIN shows digest ids without their hash, as ZooKeeper 3.9 does.
fn redact_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.id.scheme == "digest" {
                if let Some((user, _)) = a.id.id.split_once(':') {
                    a.id.id = format!("{user}:x");
                }
            }
            a
        })
        .collect()
}

fn multi_read(view: &Tree, auth: &[Id], op: &MultiOp) -> MultiResult {
    let result = (|| match op {
        MultiOp::GetChildren(r) => {
            let node = view.get(&r.path).ok_or(ErrorCode::NO_NODE)?;
            require(node.acl(), Perms::READ, auth)?;
            Ok(MultiResult::GetChildren(
                view.children(&r.path).unwrap_or_default(),
            ))
        }
        MultiOp::GetData(r) => {
            let node = view.get(&r.path).ok_or(ErrorCode::NO_NODE)?;
            require(node.acl(), Perms::READ, auth)?;
            Ok(MultiResult::GetData(
                node.data().map(<[u8]>::to_vec),
                node.stat(),
            ))
        }
        _ => Err(ErrorCode::BAD_ARGUMENTS),
    })();
    result.unwrap_or_else(MultiResult::Error)
}

/// The tree operation of a write request.
fn write_op(req: Request) -> Op {
    match req {
        Request::Create(op, r) => create_op(op, r, -1),
        Request::CreateTtl(r) => {
            let mode = zoocore_proto::CreateMode::from_flags(r.flags);
            create_op_mode(r.path, r.data, r.acl, mode, r.ttl)
        }
        Request::Delete(r) => Op::Delete {
            path: r.path,
            version: r.version,
        },
        Request::DeleteContainer(r) => Op::DeleteContainer { path: r.path },
        Request::SetData(r) => Op::SetData {
            path: r.path,
            data: r.data,
            version: r.version,
        },
        Request::SetAcl(r) => Op::SetAcl {
            path: r.path,
            acl: r.acl,
            version: r.version,
        },
        Request::Check(r) => Op::Check {
            path: r.path,
            version: r.version,
        },
        other => unreachable!("not a write: {other:?}"),
    }
}

fn create_op(op: OpCode, r: CreateRequest, ttl: i64) -> Op {
    let mode = if op == OpCode::CreateContainer {
        Some(zoocore_proto::CreateMode::Container)
    } else {
        zoocore_proto::CreateMode::from_flags(r.flags)
    };
    create_op_mode(r.path, r.data, r.acl, mode, ttl)
}

/// A create with flags that name no mode is a bad argument, found at prep.
fn create_op_mode(
    path: String,
    data: Option<zoocore_proto::Bytes>,
    acl: Vec<Acl>,
    mode: Option<zoocore_proto::CreateMode>,
    ttl_ms: i64,
) -> Op {
    match mode {
        Some(mode) => Op::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        },
        None => Op::Create {
            path: String::new(),
            data,
            acl,
            mode: zoocore_proto::CreateMode::Persistent,
            ttl_ms,
        },
    }
}

fn multi_op(op: MultiOp) -> Op {
    match op {
        MultiOp::Create(code, r) => create_op(code, r, -1),
        MultiOp::CreateTtl(r) => create_op_mode(
            r.path,
            r.data,
            r.acl,
            zoocore_proto::CreateMode::from_flags(r.flags),
            r.ttl,
        ),
        MultiOp::Delete(r) => Op::Delete {
            path: r.path,
            version: r.version,
        },
        MultiOp::SetData(r) => Op::SetData {
            path: r.path,
            data: r.data,
            version: r.version,
        },
        MultiOp::Check(r) => Op::Check {
            path: r.path,
            version: r.version,
        },
        // Reads inside a write multi: ZooKeeper rejects the mix.
        MultiOp::GetChildren(GetChildrenRequest { path, .. })
        | MultiOp::GetData(GetDataRequest { path, .. }) => Op::Check {
            path,
            version: i32::MIN,
        },
    }
}

/// The reply of a write, from what it became.
fn write_response(
    op: OpCode,
    multi_ops: &[OpCode],
    outcome: &Outcome,
) -> (ErrorCode, Option<Response>) {
    match outcome {
        Outcome::Synced { path, .. } => (
            ErrorCode::OK,
            Some(Response::Path(PathResponse { path: path.clone() })),
        ),
        Outcome::SessionCreated { .. } => (ErrorCode::OK, None),
        Outcome::Applied(Applied { result, .. }) => match (op, result) {
            (_, OpResult::Error(code)) => (*code, None),
            (OpCode::Multi, OpResult::Multi(results)) => {
                let results = results
                    .iter()
                    .zip(
                        multi_ops
                            .iter()
                            .copied()
                            .chain(std::iter::repeat(OpCode::Error)),
                    )
                    .map(|(r, op)| multi_result(op, r))
                    .collect();
                // Even a failed multi is answered OK: the failure is in the per-op results.
                (
                    ErrorCode::OK,
                    Some(Response::Multi(MultiResponse { results })),
                )
            }
            (OpCode::Create, OpResult::Created { path, .. }) => (
                ErrorCode::OK,
                Some(Response::Create(CreateResponse { path: path.clone() })),
            ),
            (_, OpResult::Created { path, stat }) => (
                ErrorCode::OK,
                Some(Response::Create2(Create2Response {
                    path: path.clone(),
                    stat: *stat,
                })),
            ),
            (_, OpResult::SetData { stat } | OpResult::SetAcl { stat }) => (
                ErrorCode::OK,
                Some(Response::Stat(StatResponse { stat: *stat })),
            ),
            // ZooKeeper answers a reconfig with the new configuration and its node's stat.
            (_, OpResult::Reconfigured { data, stat }) => (
                ErrorCode::OK,
                Some(Response::GetData(GetDataResponse {
                    data: Some(data.to_vec()),
                    stat: *stat,
                })),
            ),
            _ => (ErrorCode::OK, None),
        },
    }
}

fn multi_result(op: OpCode, result: &OpResult) -> MultiResult {
    match result {
        OpResult::Created { path, .. } if op == OpCode::Create => MultiResult::Create(path.clone()),
        OpResult::Created { path, stat } => MultiResult::Create2(path.clone(), *stat),
        OpResult::Deleted => MultiResult::Delete,
        OpResult::SetData { stat } | OpResult::SetAcl { stat } => MultiResult::SetData(*stat),
        OpResult::Checked => MultiResult::Check,
        OpResult::Error(code) => MultiResult::Error(*code),
        _ => MultiResult::Error(ErrorCode::RUNTIME_INCONSISTENCY),
    }
}
