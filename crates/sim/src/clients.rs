//! The simulated clients: each holds a session on one serving member, as a ZooKeeper client
//! does, sends requests through that member's shard input, and learns the answers from the
//! commit batches the member publishes. A client whose connection closes (its member lost
//! its leader, crashed, or moved it) reconnects to another serving member that is not
//! behind what it has seen, with the same session. Some clients abandon their session (stop
//! touching it): it must expire. A client reads from its member's current view (as a shard
//! serves reads) only when it has nothing pending, as per-session FIFO makes a read wait
//! behind the session's writes.

use std::collections::BTreeMap;

use zoocore_member::msg::{Committed, CoreOp, Origin, Outcome};
use zoocore_proto::{Acl, CreateMode, SessionId, Zxid};
use zoocore_tree::{Op, OpResult, Tree};

/// What a request was, to judge its answer.
#[derive(Debug, Clone)]
pub enum Ask {
    Connect,
    /// `after`: the newest zxid any write had been acknowledged at when this one was sent
    /// (writes are linearizable: it must commit after that).
    Write {
        path: String,
        after: Zxid,
    },
    Ephemeral {
        path: String,
    },
    Box {
        path: String,
    },
    Child {
        parent: String,
    },
    Empty {
        parent: String,
    },
    Ttl {
        path: String,
    },
    /// The persistent writes acknowledged (to anyone) when the sync was sent.
    Sync {
        acked_before: Vec<String>,
    },
}

/// An answer the member published: what the shard sends once it reaches the FIFO's head.
pub struct Done {
    pub zxid: Zxid,
    pub ok: bool,
    pub created: Option<SessionId>,
    pub expired: bool,
    /// The view published with it (a sync's answer is read from it).
    pub view: Tree,
}

pub struct Client {
    pub id: u64,
    pub session: Option<SessionId>,
    pub member: Option<u64>,
    /// The connection's id: new for every connection.
    pub conn: u64,
    pub last_zxid: Zxid,
    pub pending: BTreeMap<i32, Ask>,
    pub next_xid: i32,
    /// Answers given out of order, held until every earlier request of the connection is
    /// answered, as the shard's per-session FIFO holds them.
    pub done: BTreeMap<i32, Done>,
    /// When each pending request was sent.
    pub sent_ms: BTreeMap<i32, u64>,
    pub abandoned: bool,
    pub ephemerals: Vec<String>,
    pub written: u64,
    /// The last xid answered on this connection (answers come in request order).
    pub xid_answered: i32,
    /// The zxid of this session's last acknowledged write.
    pub zxid_written: Zxid,
    /// This client's newest acknowledged writes: its reads must show them.
    pub own_acked: Vec<String>,
}

impl Client {
    pub fn new(id: u64) -> Self {
        Client {
            id,
            session: None,
            member: None,
            conn: 0,
            last_zxid: Zxid::ZERO,
            pending: BTreeMap::new(),
            next_xid: 1,
            done: BTreeMap::new(),
            sent_ms: BTreeMap::new(),
            abandoned: false,
            ephemerals: Vec::new(),
            written: 0,
            xid_answered: 0,
            zxid_written: Zxid::ZERO,
            own_acked: Vec::new(),
        }
    }

    /// A new connection to `member`: what was pending on the old one has no answer.
    pub fn connect(&mut self, member: u64, generation: u64) {
        self.member = Some(member);
        self.conn = self.id * 1_000_000 + generation;
        self.pending.clear();
        self.done.clear();
        self.sent_ms.clear();
        self.xid_answered = 0;
    }

    pub fn disconnect(&mut self) {
        self.member = None;
        self.pending.clear();
        self.done.clear();
        self.sent_ms.clear();
    }

    /// When the oldest unanswered request was sent.
    pub fn oldest_ms(&self) -> Option<u64> {
        self.pending.keys().next().map(|x| self.sent_ms[x])
    }

    /// A write of this client was acknowledged.
    pub fn acked(&mut self, path: String) {
        self.own_acked.push(path);
        if self.own_acked.len() > 8 {
            self.own_acked.remove(0);
        }
    }

    pub fn origin(&mut self, ask: Ask, now: u64) -> Origin {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.pending.insert(xid, ask);
        self.sent_ms.insert(xid, now);
        Origin {
            shard: 0,
            conn: self.conn,
            xid,
        }
    }

    /// The next unique path of this client.
    pub fn path(&mut self, prefix: &str) -> String {
        self.written += 1;
        format!("/{prefix}{}-{}", self.id, self.written)
    }
}

pub fn create(path: &str, mode: CreateMode, ttl_ms: i64) -> CoreOp {
    CoreOp::Tree(Op::Create {
        path: path.to_owned(),
        data: Some(b"v".to_vec().into()),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms,
    })
}

pub fn delete(path: &str) -> CoreOp {
    CoreOp::Tree(Op::Delete {
        path: path.to_owned(),
        version: -1,
    })
}

/// Whether an answer says the write happened.
pub fn succeeded(entry: &Committed) -> bool {
    match &entry.outcome {
        Outcome::Applied(a) => !matches!(a.result, OpResult::Error(_)),
        Outcome::SessionCreated { .. } | Outcome::Synced { .. } => true,
    }
}
