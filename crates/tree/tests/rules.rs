//! Scenario tests of the tree's rules, each cross-checked against the ZooKeeper 3.9 Java
//! source it reproduces (DataTree, PrepRequestProcessor, ContainerManager).

use zoocore_proto::{Acl, CreateMode, ErrorCode, EventType, Id, Perms, SessionId, Stat, Zxid};
use zoocore_tree::{digest_of, Op, OpResult, PrepContext, Tree, Trigger, Txn};

/// A tree plus a zxid counter: submit = prepare + apply, like a standalone server.
struct Server {
    tree: Tree,
    zxid: i64,
    now: i64,
    enforce_quota: bool,
}

impl Server {
    fn new() -> Self {
        Server {
            tree: Tree::new(),
            zxid: 0,
            now: 1000,
            enforce_quota: false,
        }
    }

    fn submit_as(&mut self, session: i64, auth: &[Id], op: Op) -> (Txn, OpResult, Vec<Trigger>) {
        self.zxid += 1;
        self.now += 10;
        let ctx = PrepContext {
            session: SessionId(session),
            auth,
            zxid: Zxid(self.zxid),
            time_ms: self.now,
            enforce_quota: self.enforce_quota,
        };
        let txn = self.tree.prepare(&op, &ctx);
        let applied = self.tree.apply(Zxid(self.zxid), self.now, &txn);
        assert!(!applied.stale);
        self.tree.check_invariants();
        (txn, applied.result, applied.triggers.into_vec())
    }

    fn submit(&mut self, op: Op) -> OpResult {
        self.submit_as(1, &[], op).1
    }

    fn stat(&self, path: &str) -> Stat {
        self.tree.get(path).expect("node exists").stat()
    }
}

fn create(path: &str, mode: CreateMode) -> Op {
    Op::Create {
        path: path.into(),
        data: Some(b"d".to_vec().into()),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: -1,
    }
}

fn cr(path: &str, mode: CreateMode, acl: Vec<Acl>, ttl_ms: i64) -> Op {
    Op::Create {
        path: path.into(),
        data: Some(b"d".to_vec().into()),
        acl,
        mode,
        ttl_ms,
    }
}

fn err(code: ErrorCode) -> OpResult {
    OpResult::Error(code)
}

#[test]
fn fresh_tree_matches_datatree_constructor() {
    let t = Tree::new();
    assert_eq!(t.children("/"), Some(vec!["zookeeper".to_owned()]));
    assert_eq!(
        t.children("/zookeeper"),
        Some(vec!["config".to_owned(), "quota".to_owned()])
    );
    let root = t.get("/").unwrap();
    assert_eq!(
        root.stat(),
        Stat {
            num_children: 1,
            // No create counted yet, one child: copyStat reports 0 * 2 - 1 (a fresh
            // ZooKeeper's `stat /` shows cversion = -1 too).
            cversion: -1,
            ..Stat::default()
        }
    );
    assert_eq!(root.acl(), &Acl::open_unsafe()[..]);
    let config = t.get("/zookeeper/config").unwrap();
    assert_eq!(config.acl(), &Acl::read_unsafe()[..]);
    assert_eq!(config.stat().aversion, -1, "addConfigNode: setACL(.., -1)");
    assert_eq!(t.node_count(), 4);
    assert_eq!(
        t.all_children_number("/"),
        Some(3),
        "getAllChildrenNumber(/) = nodes.size() - 2"
    );
    assert_eq!(t.last_zxid(), Zxid(0));
    t.check_invariants();
}

#[test]
fn create_sets_stats_like_create_node() {
    let mut s = Server::new();
    let r = s.submit(create("/a", CreateMode::Persistent));
    let OpResult::Created { path, stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!(path, "/a");
    assert_eq!(
        stat,
        Stat {
            czxid: 1,
            mzxid: 1,
            pzxid: 1,
            ctime: 1010,
            mtime: 1010,
            data_length: 1,
            ..Stat::default()
        }
    );
    let root = s.stat("/");
    // One create counted, two children: reported as 1 * 2 - 2 (DataNode.copyStat).
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 1, 2));
    // setData: version, mzxid, mtime change; czxid/ctime do not.
    let r = s.submit(Op::SetData {
        path: "/a".into(),
        data: Some(b"xyz".to_vec().into()),
        version: 0,
    });
    let OpResult::SetData { stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        (
            stat.version,
            stat.mzxid,
            stat.mtime,
            stat.czxid,
            stat.data_length
        ),
        (1, 2, 1020, 1, 3)
    );
    // Delete changes the parent's pzxid but not its stored cversion (DataTree.deleteNode);
    // clients see creates plus deletes: 1 * 2 - 0.
    s.submit(create("/a/b", CreateMode::Persistent));
    assert_eq!(
        s.submit(Op::Delete {
            path: "/a/b".into(),
            version: -1
        }),
        OpResult::Deleted
    );
    let a = s.stat("/a");
    assert_eq!((a.cversion, a.pzxid, a.num_children, a.mzxid), (2, 4, 0, 2));
    // setACL bumps aversion only.
    let r = s.submit(Op::SetAcl {
        path: "/a".into(),
        acl: Acl::read_unsafe(),
        version: 0,
    });
    let OpResult::SetAcl { stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!((stat.aversion, stat.version, stat.mzxid), (1, 1, 2));
}

#[test]
fn sequential_names_use_parent_cversion() {
    let mut s = Server::new();
    s.submit(create("/q", CreateMode::Persistent));
    let names: Vec<String> = (0..3)
        .map(
            |_| match s.submit(create("/q/n-", CreateMode::PersistentSequential)) {
                OpResult::Created { path, .. } => path,
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(
        names,
        ["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"]
    );
    // Deleting does not reuse numbers: cversion only grows.
    s.submit(Op::Delete {
        path: "/q/n-0000000002".into(),
        version: -1,
    });
    assert_eq!(
        s.submit(create("/q/", CreateMode::PersistentSequential)),
        OpResult::Created {
            path: "/q/0000000003".into(),
            stat: s.tree.get("/q").map(|_| Stat::default()).unwrap()
        }
        .clone()
        .with_stat_of(&s.tree)
    );
}

trait WithStat {
    fn with_stat_of(self, t: &Tree) -> OpResult;
}

impl WithStat for OpResult {
    fn with_stat_of(self, t: &Tree) -> OpResult {
        match self {
            OpResult::Created { path, .. } => {
                let stat = t.get(&path).map(|n| n.stat()).unwrap_or_default();
                OpResult::Created { path, stat }
            }
            other => other,
        }
    }
}

#[test]
fn create_error_order_follows_prep_request_processor() {
    let mut s = Server::new();
    // No slash → BAD_ARGUMENTS before anything else (validatePathForCreate).
    assert_eq!(
        s.submit(cr("a", CreateMode::Persistent, vec![], -1)),
        err(ErrorCode::BAD_ARGUMENTS)
    );
    // ACL is checked (INVALID_ACL) before the parent (NO_NODE).
    assert_eq!(
        s.submit(cr("/x/y", CreateMode::Persistent, vec![], -1)),
        err(ErrorCode::INVALID_ACL)
    );
    assert_eq!(
        s.submit(create("/x/y", CreateMode::Persistent)),
        err(ErrorCode::NO_NODE)
    );
    // Parent missing is reported before the full path's shape ("/x/" → NO_NODE for "/x").
    assert_eq!(
        s.submit(create("/x/", CreateMode::Persistent)),
        err(ErrorCode::NO_NODE)
    );
    s.submit(create("/x", CreateMode::Persistent));
    assert_eq!(
        s.submit(create("/x/", CreateMode::Persistent)),
        err(ErrorCode::BAD_ARGUMENTS)
    );
    assert_eq!(
        s.submit(create("/x", CreateMode::Persistent)),
        err(ErrorCode::NODE_EXISTS)
    );
    // "/" → parent "" is the root; "/" exists.
    assert_eq!(
        s.submit(create("/", CreateMode::Persistent)),
        err(ErrorCode::NODE_EXISTS)
    );
    // NO_AUTH on the parent comes before NODE_EXISTS.
    s.submit(cr("/ro", CreateMode::Persistent, Acl::read_unsafe(), -1));
    s.submit_as(
        1,
        &[Id::new("super", "")],
        create("/ro/c", CreateMode::Persistent),
    );
    assert_eq!(
        s.submit(create("/ro/c", CreateMode::Persistent)),
        err(ErrorCode::NO_AUTH)
    );
    // Ephemeral parents cannot have children; NODE_EXISTS is checked first.
    s.submit(Op::CreateSession {
        session: SessionId(1),
        timeout_ms: 30000,
    });
    s.submit(create("/e", CreateMode::Ephemeral));
    assert_eq!(
        s.submit(create("/e/c", CreateMode::Persistent)),
        err(ErrorCode::NO_CHILDREN_FOR_EPHEMERALS)
    );
    // Ephemeral from an unknown session → SESSION_EXPIRED (checkGlobalSession).
    assert_eq!(
        s.submit_as(99, &[], create("/e2", CreateMode::Ephemeral)).1,
        err(ErrorCode::SESSION_EXPIRED)
    );
    // A ttl with a non-TTL mode is BAD_ARGUMENTS (EphemeralType.validateTTL).
    assert_eq!(
        s.submit(cr("/t", CreateMode::Persistent, Acl::open_unsafe(), 5)),
        err(ErrorCode::BAD_ARGUMENTS)
    );
    // TTL with extended types off → UNIMPLEMENTED (validateCreateRequest).
    assert_eq!(
        s.submit(cr(
            "/t",
            CreateMode::PersistentWithTtl,
            Acl::open_unsafe(),
            5
        )),
        err(ErrorCode::UNIMPLEMENTED)
    );
}

#[test]
fn delete_setdata_check_error_orders() {
    let mut s = Server::new();
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            s.submit(Op::Delete {
                path: p.into(),
                version: -1
            }),
            err(ErrorCode::BAD_ARGUMENTS),
            "{p}"
        );
    }
    assert_eq!(
        s.submit(Op::Delete {
            path: "nope".into(),
            version: -1
        }),
        err(ErrorCode::BAD_ARGUMENTS)
    );
    assert_eq!(
        s.submit(Op::Delete {
            path: "/a/b".into(),
            version: -1
        }),
        err(ErrorCode::NO_NODE)
    );
    s.submit(create("/a", CreateMode::Persistent));
    s.submit(create("/a/b", CreateMode::Persistent));
    // Version is checked before emptiness.
    assert_eq!(
        s.submit(Op::Delete {
            path: "/a".into(),
            version: 5
        }),
        err(ErrorCode::BAD_VERSION)
    );
    assert_eq!(
        s.submit(Op::Delete {
            path: "/a".into(),
            version: 0
        }),
        err(ErrorCode::NOT_EMPTY)
    );
    // Delete checks DELETE on the parent, not the node.
    s.submit(Op::SetAcl {
        path: "/a".into(),
        acl: vec![Acl {
            perms: Perms(31 & !8),
            id: Id::anyone(),
        }],
        version: -1,
    });
    assert_eq!(
        s.submit(Op::Delete {
            path: "/a/b".into(),
            version: -1
        }),
        err(ErrorCode::NO_AUTH)
    );
    // setData validates the path first, then existence, ACL, version.
    assert_eq!(
        s.submit(Op::SetData {
            path: "/a/".into(),
            data: Some(vec![].into()),
            version: -1
        }),
        err(ErrorCode::BAD_ARGUMENTS)
    );
    assert_eq!(
        s.submit(Op::SetData {
            path: "/zz".into(),
            data: Some(vec![].into()),
            version: -1
        }),
        err(ErrorCode::NO_NODE)
    );
    assert_eq!(
        s.submit(Op::SetData {
            path: "/a/b".into(),
            data: Some(vec![].into()),
            version: 3
        }),
        err(ErrorCode::BAD_VERSION)
    );
    assert_eq!(
        s.submit(Op::SetData {
            path: "/zookeeper/config".into(),
            data: Some(vec![].into()),
            version: -1
        }),
        err(ErrorCode::NO_AUTH)
    );
    assert_eq!(
        s.submit(Op::Check {
            path: "/a/b".into(),
            version: 1
        }),
        err(ErrorCode::BAD_VERSION)
    );
    assert_eq!(
        s.submit(Op::Check {
            path: "/a/b".into(),
            version: 0
        }),
        OpResult::Checked
    );
    // setACL: INVALID_ACL before NO_NODE; aversion is the version checked.
    assert_eq!(
        s.submit(Op::SetAcl {
            path: "/zz".into(),
            acl: vec![],
            version: -1
        }),
        err(ErrorCode::INVALID_ACL)
    );
    assert_eq!(
        s.submit(Op::SetAcl {
            path: "/a/b".into(),
            acl: Acl::open_unsafe(),
            version: 1
        }),
        err(ErrorCode::BAD_VERSION)
    );
}

#[test]
fn version_skips_minus_one() {
    // checkAndIncVersion (ZOOKEEPER-4743): after i32::MAX comes i32::MIN, after -2 comes 0.
    let mut s = Server::new();
    s.submit(create("/v", CreateMode::Persistent));
    s.zxid += 1;
    let txn = Txn::SetData {
        path: "/v".into(),
        data: Some(b"".as_slice().into()),
        version: -2,
    };
    s.tree.apply(Zxid(s.zxid), 0, &txn);
    let r = s.submit(Op::SetData {
        path: "/v".into(),
        data: Some(vec![].into()),
        version: -2,
    });
    let OpResult::SetData { stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.version, 0);
}

#[test]
fn auth_acl_and_digest() {
    let mut s = Server::new();
    let me = vec![
        Id::new("ip", "127.0.0.1"),
        Id::new("digest", digest_of("u:p")),
    ];
    let op = cr(
        "/p",
        CreateMode::Persistent,
        vec![Acl {
            perms: Perms::ALL,
            id: Id::new("auth", ""),
        }],
        -1,
    );
    assert_eq!(
        s.submit_as(1, &me[..1], op.clone()).1,
        err(ErrorCode::INVALID_ACL)
    );
    let (txn, _, _) = s.submit_as(1, &me, op);
    let Txn::Create { acl, .. } = txn else {
        panic!()
    };
    assert_eq!(
        acl,
        vec![Acl {
            perms: Perms::ALL,
            id: Id::new("digest", digest_of("u:p"))
        }]
    );
    assert_eq!(
        s.submit(Op::SetData {
            path: "/p".into(),
            data: Some(vec![].into()),
            version: -1
        }),
        err(ErrorCode::NO_AUTH)
    );
    assert!(matches!(
        s.submit_as(
            1,
            &me,
            Op::SetData {
                path: "/p".into(),
                data: Some(vec![].into()),
                version: -1
            }
        )
        .1,
        OpResult::SetData { .. }
    ));
}

#[test]
fn triggers_in_order() {
    let mut s = Server::new();
    let (_, _, t) = s.submit_as(1, &[], create("/a", CreateMode::Persistent));
    let tr = |p: &str, e| Trigger {
        path: p.into(),
        event: e,
    };
    assert_eq!(
        t,
        vec![
            tr("/a", EventType::NodeCreated),
            tr("/", EventType::NodeChildrenChanged)
        ]
    );
    let (_, _, t) = s.submit_as(
        1,
        &[],
        Op::SetData {
            path: "/a".into(),
            data: Some(vec![].into()),
            version: -1,
        },
    );
    assert_eq!(t, vec![tr("/a", EventType::NodeDataChanged)]);
    let (_, _, t) = s.submit_as(
        1,
        &[],
        Op::SetAcl {
            path: "/a".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        },
    );
    assert!(t.is_empty(), "setACL triggers nothing");
    let (_, _, t) = s.submit_as(
        1,
        &[],
        Op::Delete {
            path: "/a".into(),
            version: -1,
        },
    );
    assert_eq!(
        t,
        vec![
            tr("/a", EventType::NodeDeleted),
            tr("/", EventType::NodeChildrenChanged)
        ]
    );
}

#[test]
fn sessions_and_ephemerals() {
    let mut s = Server::new();
    assert_eq!(
        s.submit(Op::CreateSession {
            session: SessionId(7),
            timeout_ms: 5000
        }),
        OpResult::SessionCreated
    );
    assert!(s.tree.session_exists(SessionId(7)));
    s.submit(create("/app", CreateMode::Persistent));
    for p in ["/app/z", "/app/a", "/e"] {
        s.submit_as(7, &[], create(p, CreateMode::Ephemeral));
    }
    assert_eq!(s.stat("/e").ephemeral_owner, 7);
    assert_eq!(
        s.tree.ephemerals(SessionId(7), "/"),
        ["/app/a", "/app/z", "/e"]
    );
    assert_eq!(
        s.tree.ephemerals(SessionId(7), " "),
        ["/app/a", "/app/z", "/e"]
    );
    assert_eq!(
        s.tree.ephemerals(SessionId(7), "/app"),
        ["/app/a", "/app/z"]
    );
    assert_eq!(
        s.tree.sessions().collect::<Vec<_>>(),
        vec![(SessionId(7), 5000)]
    );
    let (txn, r, t) = s.submit_as(
        7,
        &[],
        Op::CloseSession {
            session: SessionId(7),
        },
    );
    assert_eq!(
        txn,
        Txn::CloseSession {
            session: SessionId(7),
            paths: vec!["/app/a".into(), "/app/z".into(), "/e".into()]
        }
    );
    assert_eq!(r, OpResult::SessionClosed);
    assert_eq!(t.len(), 6);
    assert_eq!(
        t[0],
        Trigger {
            path: "/app/a".into(),
            event: EventType::NodeDeleted
        }
    );
    assert!(!s.tree.exists("/e"));
    assert!(!s.tree.session_exists(SessionId(7)));
    assert!(s.tree.ephemerals(SessionId(7), "/").is_empty());
}

#[test]
fn multi_success_sees_earlier_ops_and_failure_shape() {
    let mut s = Server::new();
    let ok = s.submit(Op::Multi(vec![
        create("/m", CreateMode::Persistent),
        create("/m/c", CreateMode::Persistent),
        Op::SetData {
            path: "/m/c".into(),
            data: Some(vec![1].into()),
            version: 0,
        },
        Op::Check {
            path: "/m".into(),
            version: 0,
        },
    ]));
    let OpResult::Multi(rs) = ok else {
        panic!("{ok:?}")
    };
    assert_eq!(rs.len(), 4);
    assert!(
        matches!(&rs[1], OpResult::Created { path, stat } if path == "/m/c" && stat.czxid == 1)
    );
    assert!(matches!(&rs[2], OpResult::SetData { stat } if stat.version == 1 && stat.mzxid == 1));
    let before = s.tree.digest();
    let failed = s.submit(Op::Multi(vec![
        create("/n", CreateMode::Persistent),
        Op::Delete {
            path: "/m".into(),
            version: -1,
        },
        create("/o", CreateMode::Persistent),
    ]));
    assert_eq!(
        failed,
        OpResult::Multi(vec![
            err(ErrorCode::OK),
            err(ErrorCode::NOT_EMPTY),
            err(ErrorCode::RUNTIME_INCONSISTENCY)
        ])
    );
    assert_eq!(failed.code(), ErrorCode::NOT_EMPTY);
    assert!(!s.tree.exists("/n"));
    assert_eq!(s.tree.digest(), before, "a failed multi changes nothing");
    // Sequential names inside one multi advance with the parent's cversion.
    let r = s.submit(Op::Multi(vec![
        create("/m/s-", CreateMode::PersistentSequential),
        create("/m/s-", CreateMode::PersistentSequential),
    ]));
    let OpResult::Multi(rs) = r else { panic!() };
    assert!(matches!(&rs[0], OpResult::Created { path, .. } if path == "/m/s-0000000001"));
    assert!(matches!(&rs[1], OpResult::Created { path, .. } if path == "/m/s-0000000002"));
}

#[test]
fn apply_is_idempotent() {
    let mut s = Server::new();
    s.submit(create("/a", CreateMode::Persistent));
    let snapshot = s.tree.clone();
    let txn = Txn::Create {
        path: "/a".into(),
        data: Some(b"d".as_slice().into()),
        acl: Acl::open_unsafe(),
        ephemeral_owner: 0,
        parent_cversion: 1,
    };
    let again = s.tree.apply(Zxid(1), 0, &txn);
    assert!(again.stale);
    assert!(again.triggers.is_empty());
    assert!(matches!(again.result, OpResult::Created { ref path, .. } if path == "/a"));
    assert_eq!(s.tree.digest(), snapshot.digest());
    assert_eq!(s.tree.last_zxid(), Zxid(1));
}

#[test]
fn containers_and_ttl_expire_like_container_manager() {
    let mut s = Server {
        tree: Tree::with_extended_types(true),
        zxid: 0,
        now: 0,
        enforce_quota: false,
    };
    s.submit(create("/c", CreateMode::Container));
    // Clients see 0 for a container's owner (DataNode.getClientEphemeralOwner).
    assert_eq!(s.stat("/c").ephemeral_owner, 0);
    assert!(
        s.tree.expired_nodes(i64::MAX / 2).is_empty(),
        "never had a child"
    );
    s.submit(create("/c/x", CreateMode::Persistent));
    assert!(s.tree.expired_nodes(0).is_empty(), "has a child");
    s.submit(Op::Delete {
        path: "/c/x".into(),
        version: -1,
    });
    assert_eq!(s.tree.expired_nodes(0), ["/c"]);
    assert_eq!(s.tree.expired_nodes_with(0, 1), ["/c"]);
    // TTL: expired when now - mtime > ttl, and only without children.
    let ttl = cr("/t", CreateMode::PersistentWithTtl, Acl::open_unsafe(), 100);
    s.submit(ttl);
    let mtime = s.stat("/t").mtime;
    assert!(!s.tree.expired_nodes(mtime + 100).contains(&"/t".to_owned()));
    assert!(s.tree.expired_nodes(mtime + 101).contains(&"/t".to_owned()));
    assert_eq!(
        s.submit(cr(
            "/t0",
            CreateMode::PersistentWithTtl,
            Acl::open_unsafe(),
            0
        )),
        err(ErrorCode::BAD_ARGUMENTS)
    );
    // DeleteContainer re-checks: NOT_EMPTY with children, BAD_VERSION for ephemerals.
    s.submit(create("/c/y", CreateMode::Persistent));
    assert_eq!(
        s.submit(Op::DeleteContainer { path: "/c".into() }),
        err(ErrorCode::NOT_EMPTY)
    );
    s.submit(Op::CreateSession {
        session: SessionId(1),
        timeout_ms: 1,
    });
    s.submit(create("/eph", CreateMode::Ephemeral));
    assert_eq!(
        s.submit(Op::DeleteContainer {
            path: "/eph".into()
        }),
        err(ErrorCode::BAD_VERSION)
    );
    assert_eq!(
        s.submit(Op::DeleteContainer { path: "/t".into() }),
        OpResult::Deleted
    );
    assert!(!s.tree.exists("/t"));
}

#[test]
fn all_children_number_counts_descendants() {
    let mut s = Server::new();
    for p in ["/a", "/a/b", "/a/b/c", "/a/d", "/ab", "/ab/x"] {
        s.submit(create(p, CreateMode::Persistent));
    }
    assert_eq!(s.tree.all_children_number("/a"), Some(3));
    assert_eq!(s.tree.all_children_number("/ab"), Some(1));
    assert_eq!(s.tree.all_children_number("/a/b/c"), Some(0));
    assert_eq!(s.tree.all_children_number("/nope"), None);
    assert_eq!(s.tree.all_children_number("/"), Some(9));
    assert_eq!(s.tree.children("/a"), Some(vec!["b".into(), "d".into()]));
}

#[test]
fn clones_are_independent_and_digest_tracks_state() {
    let mut s = Server::new();
    s.submit(create("/a", CreateMode::Persistent));
    let old = s.tree.clone();
    s.submit(Op::SetData {
        path: "/a".into(),
        data: Some(b"new".to_vec().into()),
        version: -1,
    });
    assert_eq!(old.get("/a").unwrap().data(), Some(&b"d"[..]));
    assert_eq!(s.tree.get("/a").unwrap().data(), Some(&b"new"[..]));
    assert_ne!(old.digest(), s.tree.digest());
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Tree>();
}

fn create_with(path: &str, data: &[u8]) -> Op {
    Op::Create {
        path: path.into(),
        data: Some(data.to_vec().into()),
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    }
}

/// zkCli's `setquota -N 3 -B 8 /h`: with `enforceQuota` on, a create past the hard count
/// or a setData past the hard bytes is refused with QUOTAEXCEEDED and changes nothing (the
/// quota'd node counts itself); shrinking within the limit and writes outside /h go on; with
/// it off, the same writes pass (the limits are then only logged, as ZooKeeper's default).
#[test]
fn hard_quotas_refuse_under_enforce_quota_only() {
    let mut s = Server::new();
    s.enforce_quota = true;
    s.submit(create_with("/h", b""));
    s.submit(create_with("/zookeeper/quota/h", b""));
    s.submit(create_with(
        "/zookeeper/quota/h/zookeeper_limits",
        b"count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=3",
    ));
    s.submit(create_with(
        "/zookeeper/quota/h/zookeeper_stats",
        b"count=0,bytes=0",
    ));
    assert_eq!(quota_stats(&s, "/h"), "count=1,bytes=0");
    assert!(matches!(
        s.submit(create_with("/h/a", b"1234")),
        OpResult::Created { .. }
    ));
    assert!(matches!(
        s.submit(create_with("/h/b", b"")),
        OpResult::Created { .. }
    ));
    let over = s.submit(create_with("/h/c", b""));
    assert_eq!(over.code(), ErrorCode::QUOTA_EXCEEDED);
    assert!(s.tree.get("/h/c").is_none());
    let set = |data: &[u8]| Op::SetData {
        path: "/h/a".into(),
        data: Some(data.to_vec().into()),
        version: -1,
    };
    assert_eq!(
        s.submit(set(b"123456789")).code(),
        ErrorCode::QUOTA_EXCEEDED
    );
    assert_eq!(s.submit(set(b"12345678")).code(), ErrorCode::OK);
    assert_eq!(quota_stats(&s, "/h"), "count=3,bytes=8");
    assert_eq!(s.submit(set(b"1")).code(), ErrorCode::OK);
    // A multi stops at the op that goes over, and applies nothing.
    let multi = s.submit(Op::Multi(vec![
        create_with("/h/b/x", b""),
        create_with("/outside", b""),
    ]));
    let OpResult::Multi(results) = multi else {
        panic!("a multi answers per op: {multi:?}");
    };
    assert_eq!(results[0].code(), ErrorCode::QUOTA_EXCEEDED);
    assert!(s.tree.get("/outside").is_none());
    assert!(matches!(
        s.submit(create_with("/outside", b"")),
        OpResult::Created { .. }
    ));
    assert_eq!(quota_stats(&s, "/h"), "count=3,bytes=1");

    s.enforce_quota = false;
    assert!(matches!(
        s.submit(create_with("/h/c", b"123456789")),
        OpResult::Created { .. }
    ));
    assert_eq!(quota_stats(&s, "/h"), "count=4,bytes=10");
    let excess = s
        .tree
        .quota_excess("/h/d", 1, 0)
        .expect("over the hard count");
    assert_eq!(
        excess.to_string(),
        "Quota exceeded: /h [current count=5, hardCountLimit=3]"
    );
}

fn quota_stats(s: &Server, path: &str) -> String {
    let stats = format!("/zookeeper/quota{path}/zookeeper_stats");
    String::from_utf8(
        s.tree
            .get(&stats)
            .expect("stats node")
            .data()
            .unwrap()
            .to_vec(),
    )
    .unwrap()
}

/// DataTree's quota bookkeeping, as zkCli's setquota drives it: the limits node gives /q a
/// quota; the stats node is recounted (subtree nodes and data bytes, /q included) when it is
/// created, then moved by every create, setData and delete below /q, without changing its
/// stat; nested paths count toward the nearest quota; /zookeeper never counts; a restored
/// snapshot keeps the quota.
#[test]
fn quota_stats_follow_the_subtree_as_datatree_keeps_them() {
    let mut s = Server::new();
    s.submit(create_with("/q", b""));
    s.submit(create_with("/q/a", b"12345"));
    s.submit(create_with("/zookeeper/quota/q", b""));
    s.submit(create_with(
        "/zookeeper/quota/q/zookeeper_limits",
        b"count=2,bytes=-1",
    ));
    s.submit(create_with(
        "/zookeeper/quota/q/zookeeper_stats",
        b"count=0,bytes=0",
    ));
    assert_eq!(quota_stats(&s, "/q"), "count=2,bytes=5");
    assert_eq!(s.tree.quota_paths(), vec!["/q".to_owned()]);
    let stat_before = s.stat("/zookeeper/quota/q/zookeeper_stats");

    s.submit(create_with("/q/b", b"x"));
    s.submit(create_with("/q/b/c", b"yz"));
    assert_eq!(quota_stats(&s, "/q"), "count=4,bytes=8");
    s.submit(Op::SetData {
        path: "/q/a".into(),
        data: Some(b"1".to_vec().into()),
        version: -1,
    });
    assert_eq!(quota_stats(&s, "/q"), "count=4,bytes=4");
    s.submit(Op::Delete {
        path: "/q/b/c".into(),
        version: -1,
    });
    assert_eq!(quota_stats(&s, "/q"), "count=3,bytes=2");
    let stat_after = s.stat("/zookeeper/quota/q/zookeeper_stats");
    assert_eq!(
        (stat_after.version, stat_after.mzxid),
        (stat_before.version, stat_before.mzxid),
        "the stats node's data changes under its stat"
    );
    // Outside /q, and under /zookeeper, nothing moves.
    s.submit(create_with("/other", b"zzz"));
    s.submit(create_with("/zookeeper/x", b"zzz"));
    assert_eq!(quota_stats(&s, "/q"), "count=3,bytes=2");

    // A snapshot round trip keeps the quota, and the usage keeps moving after it.
    let mut b = zoocore_tree::TreeBuilder::new(s.tree.last_zxid(), false);
    for n in s.tree.snapshot_nodes() {
        b.add_node(&n).unwrap();
    }
    for (session, timeout) in s.tree.sessions() {
        b.add_session(session, timeout).unwrap();
    }
    let restored = b.finish().unwrap();
    assert_eq!(restored.digest(), s.tree.digest());
    assert_eq!(restored.quota_paths(), vec!["/q".to_owned()]);
    s.tree = restored;
    s.submit(create_with("/q/d", b"abc"));
    assert_eq!(quota_stats(&s, "/q"), "count=4,bytes=5");

    // Removing the limits node ends the quota.
    s.submit(Op::Delete {
        path: "/zookeeper/quota/q/zookeeper_limits".into(),
        version: -1,
    });
    assert!(s.tree.quota_paths().is_empty());
    s.submit(create_with("/q/e", b"abc"));
    assert_eq!(quota_stats(&s, "/q"), "count=4,bytes=5");
}

fn create_null(path: &str, mode: CreateMode, ttl_ms: i64) -> Op {
    Op::Create {
        path: path.into(),
        data: None,
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms,
    }
}

/// Null data stays null (DataTree.createNode and setData store the request's `byte[]` as
/// is; getData returns it, so the client reads a -1 buffer), for every create mode and
/// through multi; the Stat's dataLength is 0 (DataNode.copyStat: `data == null ? 0`);
/// setData with null moves the version like any setData (checkAndIncVersion); quota bytes
/// and the approximate data size count null as 0 (`updateCountBytes`, `getNodeSize`). The
/// digest tells null from empty, so replicas that disagree on it are caught.
#[test]
fn null_data_stays_null_and_counts_as_zero_bytes() {
    let mut s = Server::new();
    s.tree = Tree::with_extended_types(true);
    s.submit(Op::CreateSession {
        session: SessionId(1),
        timeout_ms: 30_000,
    });
    let size_before = s.tree.approximate_data_size();
    let r = s.submit(create_null("/n", CreateMode::Persistent, -1));
    let OpResult::Created { stat, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(stat.data_length, 0);
    assert_eq!(s.tree.get("/n").unwrap().data(), None);
    assert_eq!(
        s.tree.approximate_data_size(),
        size_before + "/n".len() as u64,
        "null data adds no bytes"
    );
    for (path, mode, ttl) in [
        ("/e", CreateMode::Ephemeral, -1),
        ("/s-", CreateMode::PersistentSequential, -1),
        ("/c", CreateMode::Container, -1),
        ("/t", CreateMode::PersistentWithTtl, 5000),
    ] {
        let r = s.submit(create_null(path, mode, ttl));
        let OpResult::Created { path, stat } = r else {
            panic!("{mode:?}: {r:?}")
        };
        assert_eq!(stat.data_length, 0, "{path}");
        assert_eq!(s.tree.get(&path).unwrap().data(), None, "{path}");
    }
    s.submit(create_with("/empty", b""));
    assert_eq!(s.tree.get("/empty").unwrap().data(), Some(&b""[..]));

    // setData null over data, then data over null: the version moves each time.
    s.submit(create_with("/v", b"abc"));
    let digest_with_data = s.tree.digest();
    let r = s.submit(Op::SetData {
        path: "/v".into(),
        data: None,
        version: 0,
    });
    let OpResult::SetData { stat } = r else {
        panic!("{r:?}")
    };
    assert_eq!((stat.version, stat.data_length), (1, 0));
    assert_eq!(s.tree.get("/v").unwrap().data(), None);
    let digest_null = s.tree.digest();
    s.submit(Op::SetData {
        path: "/v".into(),
        data: Some(Vec::new().into()),
        version: 1,
    });
    assert_eq!(s.tree.get("/v").unwrap().data(), Some(&b""[..]));
    assert_ne!(s.tree.digest(), digest_null, "null and empty digest apart");
    assert_ne!(digest_null, digest_with_data);
    assert_eq!(s.stat("/v").version, 2);

    // Through multi.
    let r = s.submit(Op::Multi(vec![
        create_null("/m", CreateMode::Persistent, -1),
        Op::SetData {
            path: "/empty".into(),
            data: None,
            version: -1,
        },
    ]));
    assert_eq!(r.code(), ErrorCode::OK, "{r:?}");
    assert_eq!(s.tree.get("/m").unwrap().data(), None);
    assert_eq!(s.tree.get("/empty").unwrap().data(), None);

    // Quota bytes: null counts 0.
    s.submit(create_null("/q", CreateMode::Persistent, -1));
    s.submit(create_with("/q/a", b"12"));
    s.submit(create_with("/zookeeper/quota/q", b""));
    s.submit(create_with(
        "/zookeeper/quota/q/zookeeper_limits",
        b"count=9,bytes=-1",
    ));
    s.submit(create_with(
        "/zookeeper/quota/q/zookeeper_stats",
        b"count=0,bytes=0",
    ));
    assert_eq!(quota_stats(&s, "/q"), "count=2,bytes=2");
    s.submit(Op::SetData {
        path: "/q/a".into(),
        data: None,
        version: -1,
    });
    assert_eq!(quota_stats(&s, "/q"), "count=2,bytes=0");
}

/// The txn codec writes null as jute's -1 (ZooKeeper's CreateTxn/SetDataTxn do the same),
/// and reads txns from logs written before null was kept, whose data lengths are never
/// negative, exactly as before.
#[test]
fn txn_codec_keeps_null_and_reads_old_records() {
    use zoocore_proto::{Record, Writer};
    for data in [None, Some(bytes::Bytes::new())] {
        let txn = Txn::SetData {
            path: "/a".into(),
            data: data.clone(),
            version: 3,
        };
        let bytes = txn.to_bytes();
        assert_eq!(Txn::from_bytes(&bytes).unwrap(), txn);
        let length = &bytes[4 + 4 + 2..4 + 4 + 2 + 4];
        let expected: i32 = if data.is_none() { -1 } else { 0 };
        assert_eq!(length, expected.to_be_bytes());
    }
    // A create as the writer before this change encoded it (`write_buffer`, empty data).
    let mut old = Writer::new();
    old.write_i32(1);
    old.write_str("/old");
    old.write_buffer(b"");
    old.write_records(&Acl::open_unsafe());
    old.write_i64(0);
    old.write_i32(1);
    let Txn::Create { path, data, .. } = Txn::from_bytes(&old.into_inner()).unwrap() else {
        panic!("not a create")
    };
    assert_eq!((path.as_str(), data.as_deref()), ("/old", Some(&b""[..])));
}

/// A txn decoded in place (a follower's, from the proposal its link read) is the txn the
/// copying decoder reads, null and empty data kept apart, and its data lies in the bytes
/// it was decoded from; trailing or missing bytes are errors, as for the copying decoder.
#[test]
fn a_txn_decoded_in_place_shares_its_bytes() {
    use zoocore_proto::Record;
    let value = |n: usize| Some(bytes::Bytes::from(vec![7u8; n]));
    let txns = [
        Txn::Multi(vec![
            Txn::Create {
                path: "/a".into(),
                data: value(100),
                acl: Acl::open_unsafe(),
                ephemeral_owner: 0,
                parent_cversion: 1,
            },
            Txn::SetData {
                path: "/a".into(),
                data: None,
                version: 0,
            },
            Txn::SetData {
                path: "/a".into(),
                data: value(0),
                version: 1,
            },
        ]),
        Txn::SetData {
            path: "/b".into(),
            data: value(1024),
            version: 4,
        },
        Txn::Reconfig {
            data: bytes::Bytes::from_static(b"server.1=127.0.0.1:2888:3888"),
            version: 2,
        },
    ];
    for txn in txns {
        let bytes = bytes::Bytes::from(txn.to_bytes());
        let shared = Txn::from_shared(&bytes).unwrap();
        assert_eq!(shared, Txn::from_bytes(&bytes).unwrap());
        assert_eq!(shared, txn);
        let inside = bytes.as_ptr_range();
        let datas: Vec<&[u8]> = match &shared {
            Txn::Multi(txns) => txns
                .iter()
                .filter_map(|t| match t {
                    Txn::Create { data, .. } | Txn::SetData { data, .. } => data.as_deref(),
                    _ => None,
                })
                .collect(),
            Txn::SetData { data, .. } => data.as_deref().into_iter().collect(),
            Txn::Reconfig { data, .. } => vec![&data[..]],
            _ => unreachable!(),
        };
        for data in datas.into_iter().filter(|d| !d.is_empty()) {
            assert!(inside.contains(&data.as_ptr()), "data copied, not shared");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Txn::from_shared(&bytes::Bytes::from(longer)).is_err());
        assert!(Txn::from_shared(&bytes.slice(..bytes.len() - 1)).is_err());
    }
}
