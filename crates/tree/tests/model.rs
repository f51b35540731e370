//! Model-based property tests: random op sequences on `Tree` against a plain `BTreeMap`
//! model of paths → (data, version, owner), agreeing on every result code and on reads;
//! and the `Txn` codec: round trips, and arbitrary bytes never panic the decoder.

use std::collections::BTreeMap;

use proptest::prelude::*;
use zoocore_proto::{Acl, CreateMode, ErrorCode, Id, Perms, Record, SessionId, Zxid};
use zoocore_tree::{Op, OpResult, PrepContext, Tree, Txn};

#[derive(Clone, Debug, Default)]
struct MNode {
    data: Option<Vec<u8>>,
    version: i32,
    owner: i64,
    cversion: i32,
}

/// The reference: a map of paths, with the few rules the ops below exercise.
struct Model {
    nodes: BTreeMap<String, MNode>,
    sessions: Vec<i64>,
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => path[..i].into(),
        None => String::new(),
    }
}

impl Model {
    fn new() -> Self {
        let mut nodes = BTreeMap::new();
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            // ZooKeeper's own nodes hold empty data, not null.
            let data = Some(Vec::new());
            nodes.insert(
                p.to_owned(),
                MNode {
                    data,
                    ..MNode::default()
                },
            );
        }
        Model {
            nodes,
            sessions: Vec::new(),
        }
    }

    fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        self.nodes
            .keys()
            .filter(|k| {
                k.len() > prefix.len() && k.starts_with(&prefix) && !k[prefix.len()..].contains('/')
            })
            .map(|k| k[prefix.len()..].to_owned())
            .collect()
    }

    /// Returns the error code, or OK with the model changed.
    fn op(&mut self, op: &MOp, session: i64) -> ErrorCode {
        match op {
            MOp::Create {
                path,
                data,
                ephemeral,
                sequential,
            } => {
                // PrepRequestProcessor: the session check precedes the parent lookup.
                if *ephemeral && !self.sessions.contains(&session) {
                    return ErrorCode::SESSION_EXPIRED;
                }
                let par = parent(path);
                let Some(p) = self.nodes.get(&par) else {
                    return ErrorCode::NO_NODE;
                };
                let full = if *sequential {
                    format!("{path}{:010}", p.cversion)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&full) {
                    return ErrorCode::NODE_EXISTS;
                }
                if p.owner != 0 {
                    return ErrorCode::NO_CHILDREN_FOR_EPHEMERALS;
                }
                if let Some(p) = self.nodes.get_mut(&par) {
                    p.cversion += 1;
                }
                let owner = if *ephemeral { session } else { 0 };
                self.nodes.insert(
                    full,
                    MNode {
                        data: data.clone(),
                        version: 0,
                        owner,
                        cversion: 0,
                    },
                );
                ErrorCode::OK
            }
            MOp::Delete { path, version } => {
                let Some(n) = self.nodes.get(path) else {
                    return ErrorCode::NO_NODE;
                };
                if *version != -1 && *version != n.version {
                    return ErrorCode::BAD_VERSION;
                }
                if !self.children(path).is_empty() {
                    return ErrorCode::NOT_EMPTY;
                }
                self.nodes.remove(path);
                ErrorCode::OK
            }
            MOp::SetData {
                path,
                data,
                version,
            } => {
                let Some(n) = self.nodes.get_mut(path) else {
                    return ErrorCode::NO_NODE;
                };
                if *version != -1 && *version != n.version {
                    return ErrorCode::BAD_VERSION;
                }
                n.version += 1;
                n.data = data.clone();
                ErrorCode::OK
            }
            MOp::Check { path, version } => {
                let Some(n) = self.nodes.get(path) else {
                    return ErrorCode::NO_NODE;
                };
                if *version != -1 && *version != n.version {
                    return ErrorCode::BAD_VERSION;
                }
                ErrorCode::OK
            }
            MOp::Open(s) => {
                if !self.sessions.contains(s) {
                    self.sessions.push(*s);
                }
                ErrorCode::OK
            }
            MOp::Close(s) => {
                self.sessions.retain(|x| x != s);
                self.nodes.retain(|_, n| n.owner != *s);
                ErrorCode::OK
            }
            MOp::Multi(ops) => {
                let saved = (self.nodes.clone(), self.sessions.clone());
                for o in ops {
                    let c = self.op(o, session);
                    if !c.is_ok() {
                        (self.nodes, self.sessions) = saved;
                        return c;
                    }
                }
                ErrorCode::OK
            }
        }
    }
}

#[derive(Clone, Debug)]
enum MOp {
    Create {
        path: String,
        data: Option<Vec<u8>>,
        ephemeral: bool,
        sequential: bool,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Open(i64),
    Close(i64),
    Multi(Vec<MOp>),
}

impl MOp {
    fn to_op(&self) -> Op {
        match self {
            MOp::Create {
                path,
                data,
                ephemeral,
                sequential,
            } => Op::Create {
                path: path.clone(),
                data: data.clone().map(Into::into),
                acl: Acl::open_unsafe(),
                mode: match (ephemeral, sequential) {
                    (false, false) => CreateMode::Persistent,
                    (true, false) => CreateMode::Ephemeral,
                    (false, true) => CreateMode::PersistentSequential,
                    (true, true) => CreateMode::EphemeralSequential,
                },
                ttl_ms: -1,
            },
            MOp::Delete { path, version } => Op::Delete {
                path: path.clone(),
                version: *version,
            },
            MOp::SetData {
                path,
                data,
                version,
            } => Op::SetData {
                path: path.clone(),
                data: data.clone().map(Into::into),
                version: *version,
            },
            MOp::Check { path, version } => Op::Check {
                path: path.clone(),
                version: *version,
            },
            MOp::Open(s) => Op::CreateSession {
                session: SessionId(*s),
                timeout_ms: 1000,
            },
            MOp::Close(s) => Op::CloseSession {
                session: SessionId(*s),
            },
            MOp::Multi(ops) => Op::Multi(ops.iter().map(MOp::to_op).collect()),
        }
    }
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn simple_op() -> impl Strategy<Value = MOp> {
    // Null data (None) as well as empty: the two must stay apart.
    let data = prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..4));
    let version = prop_oneof![Just(-1), 0..3i32];
    prop_oneof![
        4 => (path_strategy(), data.clone(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(path, data, ephemeral, sequential)| MOp::Create { path, data, ephemeral, sequential }),
        2 => (path_strategy(), version.clone()).prop_map(|(path, version)| MOp::Delete { path, version }),
        2 => (path_strategy(), data, version.clone()).prop_map(|(path, data, version)| MOp::SetData { path, data, version }),
        1 => (path_strategy(), version).prop_map(|(path, version)| MOp::Check { path, version }),
        1 => (1..3i64).prop_map(MOp::Open),
        1 => (1..3i64).prop_map(MOp::Close),
    ]
}

fn op_strategy() -> impl Strategy<Value = (MOp, i64)> {
    let multi_part = simple_op().prop_filter("no sessions in multi", |o| {
        !matches!(o, MOp::Open(_) | MOp::Close(_))
    });
    let op = prop_oneof![
        6 => simple_op(),
        1 => prop::collection::vec(multi_part, 0..4).prop_map(MOp::Multi),
    ];
    (op, 1..3i64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn tree_agrees_with_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        let mut tree = Tree::new();
        let mut model = Model::new();
        let auth: Vec<Id> = Vec::new();
        for (i, (mop, session)) in ops.iter().enumerate() {
            let zxid = Zxid(i as i64 + 1);
            let ctx = PrepContext { session: SessionId(*session), auth: &auth, zxid, time_ms: i as i64, enforce_quota: false };
            let txn = tree.prepare(&mop.to_op(), &ctx);
            let applied = tree.apply(zxid, i as i64, &txn);
            let expected = model.op(mop, *session);
            prop_assert_eq!(applied.result.code(), expected, "op {:?}", mop);
            if let (MOp::Multi(parts), OpResult::Multi(results)) = (mop, &applied.result) {
                prop_assert_eq!(parts.len(), results.len());
            }
            tree.check_invariants();
            // Reads agree.
            prop_assert_eq!(tree.node_count(), model.nodes.len());
            for (path, n) in &model.nodes {
                let node = tree.get(path);
                prop_assert!(node.is_some(), "{} missing", path);
                let node = node.unwrap();
                prop_assert_eq!(node.data(), n.data.as_deref());
                let stat = node.stat();
                prop_assert_eq!(stat.data_length as usize, n.data.as_ref().map_or(0, Vec::len));
                prop_assert_eq!(stat.version, n.version);
                prop_assert_eq!(stat.ephemeral_owner, n.owner);
                // Clients see creates plus deletes (DataNode.copyStat).
                let children = model.children(path).len() as i32;
                prop_assert_eq!(stat.cversion, n.cversion * 2 - children);
                prop_assert_eq!(tree.children(path), Some(model.children(path)));
            }
            for s in 1..3 {
                prop_assert_eq!(tree.session_exists(SessionId(s)), model.sessions.contains(&s));
                let mut eph: Vec<String> = model.nodes.iter().filter(|(_, n)| n.owner == s).map(|(p, _)| p.clone()).collect();
                eph.sort();
                prop_assert_eq!(tree.ephemerals(SessionId(s), "/"), eph);
            }
        }
        // Replaying the same txns from scratch reaches the same digest (determinism).
        prop_assert_eq!(tree.last_zxid(), Zxid(ops.len() as i64));
    }

    #[test]
    fn replay_reaches_same_digest(ops in prop::collection::vec(op_strategy(), 1..30)) {
        let mut tree = Tree::new();
        let mut log = Vec::new();
        let auth: Vec<Id> = Vec::new();
        for (i, (mop, session)) in ops.iter().enumerate() {
            let zxid = Zxid(i as i64 + 1);
            let ctx = PrepContext { session: SessionId(*session), auth: &auth, zxid, time_ms: i as i64, enforce_quota: false };
            let txn = tree.prepare(&mop.to_op(), &ctx);
            tree.apply(zxid, i as i64, &txn);
            log.push((zxid, i as i64, txn.to_bytes()));
        }
        let mut replica = Tree::new();
        for (zxid, time, bytes) in &log {
            let txn = Txn::from_bytes(bytes).expect("log decodes");
            replica.apply(*zxid, *time, &txn);
            // Applying twice is a no-op.
            prop_assert!(replica.apply(*zxid, *time, &txn).stale);
        }
        prop_assert_eq!(replica.digest(), tree.digest());
        prop_assert_eq!(replica.last_zxid(), tree.last_zxid());
    }

    #[test]
    fn txn_round_trips(txn in txn_strategy()) {
        let bytes = txn.to_bytes();
        prop_assert_eq!(Txn::from_bytes(&bytes), Ok(txn));
    }

    #[test]
    fn txn_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Txn::from_bytes(&bytes);
    }

    #[test]
    fn txn_decode_of_mutated_encoding_never_panics(txn in txn_strategy(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = txn.to_bytes();
        for (i, b) in flips {
            let n = bytes.len();
            bytes[i % n] = b;
        }
        let _ = Txn::from_bytes(&bytes);
    }
}

fn acl_strategy() -> impl Strategy<Value = Vec<Acl>> {
    prop::collection::vec(
        (0..32i32, "[a-z]{0,5}", "[a-z:]{0,8}").prop_map(|(p, s, i)| Acl {
            perms: Perms(p),
            id: Id::new(s, i),
        }),
        0..3,
    )
}

fn leaf_txn() -> impl Strategy<Value = Txn> {
    let path = "/[a-z/]{0,10}";
    let data =
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16).prop_map(bytes::Bytes::from));
    prop_oneof![
        (
            path,
            data.clone(),
            acl_strategy(),
            any::<i64>(),
            any::<i32>()
        )
            .prop_map(|(path, data, acl, ephemeral_owner, parent_cversion)| {
                Txn::Create {
                    path,
                    data,
                    acl,
                    ephemeral_owner,
                    parent_cversion,
                }
            }),
        path.prop_map(|path| Txn::Delete { path }),
        (path, data, any::<i32>()).prop_map(|(path, data, version)| Txn::SetData {
            path,
            data,
            version
        }),
        (path, acl_strategy(), any::<i32>()).prop_map(|(path, acl, version)| Txn::SetAcl {
            path,
            acl,
            version
        }),
        (path, any::<i32>()).prop_map(|(path, version)| Txn::Check { path, version }),
        (any::<i64>(), any::<i32>()).prop_map(|(s, t)| Txn::CreateSession {
            session: SessionId(s),
            timeout_ms: t
        }),
        (any::<i64>(), prop::collection::vec(path, 0..3)).prop_map(|(s, paths)| {
            Txn::CloseSession {
                session: SessionId(s),
                paths,
            }
        }),
        any::<i32>().prop_map(|c| Txn::Error(ErrorCode(c))),
    ]
}

fn txn_strategy() -> impl Strategy<Value = Txn> {
    prop_oneof![4 => leaf_txn(), 1 => prop::collection::vec(leaf_txn(), 0..4).prop_map(Txn::Multi)]
}
