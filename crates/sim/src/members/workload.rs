//! The simulated clients: each holds a session on one serving member, as a ZooKeeper client
//! does, sends requests through that member's shard input, and learns the answers from the
//! commit batches the member publishes. A client whose connection closes (its member lost
//! its leader, crashed, or moved it) reconnects to another serving member that is not
//! behind what it has seen, with the same session. Some clients abandon their session (stop
//! touching it): it must expire.

use std::collections::BTreeMap;

use zoocore_member::msg::{Committed, CoreOp, Origin, Outcome};
use zoocore_proto::{Acl, CreateMode, SessionId, Zxid};
use zoocore_tree::{Op, OpResult};

/// What a request was, to judge its answer.
#[derive(Debug, Clone)]
pub enum Ask {
    Connect,
    Write {
        path: String,
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

pub struct Client {
    pub id: u64,
    pub session: Option<SessionId>,
    pub member: Option<u64>,
    /// The connection's id: new for every connection.
    pub conn: u64,
    pub last_zxid: Zxid,
    pub pending: BTreeMap<i32, Ask>,
    pub next_xid: i32,
    pub abandoned: bool,
    pub ephemerals: Vec<String>,
    pub written: u64,
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
            abandoned: false,
            ephemerals: Vec::new(),
            written: 0,
        }
    }

    /// A new connection to `member`: what was pending on the old one has no answer.
    pub fn connect(&mut self, member: u64, generation: u64) {
        self.member = Some(member);
        self.conn = self.id * 1_000_000 + generation;
        self.pending.clear();
    }

    pub fn disconnect(&mut self) {
        self.member = None;
        self.pending.clear();
    }

    pub fn origin(&mut self, ask: Ask) -> Origin {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.pending.insert(xid, ask);
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
        data: Some(b"v".to_vec()),
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
