//! The typed messages between a member's pipeline (on the server's core executor) and the
//! shards that hold client connections. They share no memory on the request path except
//! what these carry: requests in, commit batches (with an immutable view of the tree) out.
//! They live here, not in the server, because the member consumes and produces them; the
//! server's shards and connections see them through `zoocore_server::msg`.

use std::sync::Arc;

use zoocore_proto::{Id, SessionId, Zxid};
use zoocore_tree::{Applied, Op, Tree};

pub type ShardId = usize;

/// A connection, unique within its shard for the life of the process.
pub type ConnId = u64;

/// Where a request came from, so its answer finds its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub shard: ShardId,
    pub conn: ConnId,
    pub xid: i32,
}

/// What a shard asks of the ZAB core.
#[derive(Debug)]
pub enum ToCore {
    Request(CoreRequest),
    /// Sessions that showed life (any packet) since the last report.
    Touch(Vec<SessionId>),
    /// A connection took over a session: the core closes the session's older connection,
    /// wherever it is. `valid`: the password matched and the session exists, so in an
    /// ensemble this member now owns the session (ZooKeeper's session owner).
    Attach {
        session: SessionId,
        shard: ShardId,
        conn: ConnId,
        valid: bool,
    },
}

/// A request that goes through the ordered pipeline on the ZAB core.
#[derive(Debug)]
pub struct CoreRequest {
    pub origin: Option<Origin>,
    pub session: SessionId,
    pub auth: Arc<[Id]>,
    pub op: CoreOp,
    /// A read of the same session waits before this write in its shard's FIFO: the member
    /// that answers the client publishes what commits before this write in a batch of its
    /// own, whose view the read is answered from (FIFO client order: the read must not see
    /// a write sent after it), while the write itself goes on at once.
    pub barrier: bool,
}

#[derive(Debug)]
pub enum CoreOp {
    /// A change to the tree (create, delete, setData, setACL, check, multi, closeSession,
    /// deleteContainer).
    Tree(Op),
    /// A new session with a negotiated timeout; the core picks its id.
    CreateSession { timeout_ms: i32 },
    /// sync: answered in order once everything before it has committed.
    Sync { path: String },
    /// reconfig: prepped by the leader against its membership (reconfig.rs).
    Reconfig(crate::reconfig::ReconfigArgs),
}

/// What one pipelined request became.
#[derive(Debug)]
pub enum Outcome {
    Applied(Applied),
    SessionCreated {
        session: SessionId,
        timeout_ms: i32,
    },
    /// A sync's answer: its reply carries `zxid`, the zxid the sync waited for.
    Synced {
        path: String,
        zxid: Zxid,
    },
}

/// One committed (or answered) request of a batch, in zxid order.
#[derive(Debug)]
pub struct Committed {
    /// Where the entry stands in the commit order: the transaction's own zxid, or for a
    /// sync the newest committed one when it was answered.
    pub zxid: Zxid,
    pub origin: Option<Origin>,
    pub outcome: Outcome,
    /// The session this entry closed, if any (closeSession or expiry).
    pub closed_session: Option<SessionId>,
}

impl Committed {
    /// The zxid its reply header carries: the transaction's own, and for a sync the zxid it
    /// waited for, so that a client's answers never go back in zxid (a write the session
    /// sent after the sync may commit before the sync is answered, below the newest zxid).
    pub fn reply_zxid(&self) -> Zxid {
        match &self.outcome {
            Outcome::Synced { zxid, .. } => *zxid,
            _ => self.zxid,
        }
    }
}

/// Published by the core after a group of transactions is durable: the tree as of the last
/// of them, and each entry's results and watch triggers. Shared by every shard.
#[derive(Debug)]
pub struct CommitBatch {
    pub view: Tree,
    pub entries: Vec<Committed>,
}

/// What the ZAB core tells a shard.
#[derive(Debug, Clone)]
pub enum FromCore {
    Commit(Arc<CommitBatch>),
    /// Close this connection: its session moved to another connection.
    CloseConnection {
        conn: ConnId,
        session: SessionId,
    },
    /// Close every connection: this ensemble member lost its leader (ZooKeeper closes its
    /// clients too; they reconnect, to this member once it serves again or to another, and
    /// keep their sessions). Requests in flight get no answer.
    CloseAll,
    /// What this member serves clients now (its role changed): a shard refuses handshakes
    /// while it serves none, and only read-only ones while it is read-only. The shards learn
    /// it here, not from a process-wide global.
    Serving(Serving),
}

/// What a member's clients may do, by its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// No leader: handshakes are refused.
    No,
    /// No leader, `readonlymode.enabled`: clients that allow read-only get sessions that
    /// read the last tree; their writes are answered NOTREADONLY.
    ReadOnly,
    ReadWrite,
}
