//! Shared test driver: a live tree whose writes go through a `Log` the way the ZAB core's
//! do (prepare, apply, append; sync per batch), remembering the digest at every zxid so a
//! recovered tree can be checked against the exact state at its zxid.

#![allow(dead_code)]

use std::collections::BTreeMap;

use zoocore_proto::{Acl, CreateMode, Record, SessionId, Zxid};
use zoocore_storage::{Device, Log, LogOptions};
use zoocore_tree::{Op, PrepContext, Tree};

pub struct Driver<D: Device> {
    pub tree: Tree,
    pub log: Log<D>,
    pub digests: BTreeMap<Zxid, u64>,
    pub counter: u32,
    pub synced: Zxid,
}

pub fn small_opts() -> LogOptions {
    LogOptions {
        prealloc_bytes: 2048,
        snap_count: 7,
        database_id: 42,
    }
}

/// A deterministic op from a number: creates, sets, deletes, sessions and ephemerals; some
/// creates and sets carry null data, which must come back null from the log and snapshots.
pub fn op_of(n: u64) -> Op {
    let path = format!("/n{}", n % 13);
    let session = SessionId(1 + (n % 3) as i64);
    match n % 7 {
        0 | 1 => Op::Create {
            path,
            data: (!n.is_multiple_of(11))
                .then(|| vec![n as u8; (n % 50) as usize])
                .map(Into::into),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: -1,
        },
        2 => Op::SetData {
            path,
            data: (!n.is_multiple_of(4)).then(|| vec![7; (n % 90) as usize].into()),
            version: -1,
        },
        3 => Op::Delete { path, version: -1 },
        4 => Op::CreateSession {
            session,
            timeout_ms: 3000,
        },
        5 => Op::Create {
            path: format!("/e{}", n % 5),
            data: Some(vec![1].into()),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Ephemeral,
            ttl_ms: -1,
        },
        _ => Op::CloseSession { session },
    }
}

impl<D: Device> Driver<D> {
    pub fn new(log: Log<D>) -> Self {
        let tree = Tree::new();
        let mut digests = BTreeMap::new();
        digests.insert(Zxid::ZERO, tree.digest());
        Driver {
            tree,
            log,
            digests,
            counter: 0,
            synced: Zxid::ZERO,
        }
    }

    /// Prepares, applies and appends one op (not yet synced). Ephemerals are owned by
    /// session 1.
    pub fn write(&mut self, op: &Op) -> Result<Zxid, zoocore_storage::LogError> {
        self.write_with(op, false)
    }

    /// `write` through `Log::append_may_use_reserve`.
    pub fn write_reserved(&mut self, op: &Op) -> Result<Zxid, zoocore_storage::LogError> {
        self.write_with(op, true)
    }

    fn write_with(&mut self, op: &Op, reserved: bool) -> Result<Zxid, zoocore_storage::LogError> {
        self.counter += 1;
        let zxid = Zxid::new(1, self.counter);
        let time_ms = 1_000 + i64::from(self.counter);
        let ctx = PrepContext {
            session: SessionId(1),
            auth: &[],
            zxid,
            time_ms,
            enforce_quota: false,
        };
        let txn = self.tree.prepare(op, &ctx);
        if reserved {
            self.log
                .append_may_use_reserve(zxid, time_ms, &txn.to_bytes())?;
        } else {
            self.log.append(zxid, time_ms, &txn.to_bytes())?;
        }
        self.tree.apply(zxid, time_ms, &txn);
        self.digests.insert(zxid, self.tree.digest());
        Ok(zxid)
    }

    pub fn sync(&mut self) -> Result<Zxid, zoocore_storage::LogError> {
        let z = self.log.sync()?;
        self.synced = z;
        Ok(z)
    }

    /// One batch of `n` ops from `seed`, then one sync.
    pub fn batch(&mut self, seed: u64, n: u64) {
        for i in 0..n {
            self.write(&op_of(seed * 31 + i)).expect("append");
        }
        self.sync().expect("sync");
    }
}
