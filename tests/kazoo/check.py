"""Drives a ZooKeeper server with kazoo, Python's ZooKeeper client, for the e2e suite
(tests/tests/kazoo.rs): a second client library, in another language, that nobody here
wrote. Each scenario raises on the first difference from what ZooKeeper does and prints
`ok` at the end.

    check.py surface <host:port>          the everyday surface against any server
    check.py readonly <host:port> <path>  a read-only session on a member without quorum
    check.py reconfig <host:port> <id> <observer spec> <participant spec>
                                          server <id> made an observer and a voter again
                                          by the superuser, a watcher of /zookeeper/config
                                          seeing each change; a stale from_config and a
                                          client that is not the superuser refused
"""

import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NotReadOnlyCallError,
)
from kazoo.security import make_digest_acl


def expect(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def raises(what, exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError(f"{what}: no {exc.__name__}")


def surface(hosts):
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=15)
    root = "/kazoo"
    if zk.exists(root):
        zk.delete(root, recursive=True)
    zk.create(root, b"top")

    # Null data stays null (kazoo reads a -1 buffer as None), empty stays empty.
    zk.create(root + "/null", None)
    data, stat = zk.get(root + "/null")
    expect("null data", data, None)
    expect("null dataLength", stat.data_length, 0)
    zk.create(root + "/empty", b"")
    expect("empty data", zk.get(root + "/empty")[0], b"")
    zk.set(root + "/empty", None)
    expect("set to null", zk.get(root + "/empty")[0], None)

    # Versions, existence, children, sequence and ephemeral nodes.
    stat = zk.set(root, b"v1")
    expect("version after set", stat.version, 1)
    raises("stale version", BadVersionError, zk.set, root, b"v2", version=0)
    raises("create twice", NodeExistsError, zk.create, root + "/null")
    raises("delete non-empty", NotEmptyError, zk.delete, root)
    seq = zk.create(root + "/seq-", b"s", sequence=True)
    expect("sequence suffix", len(seq) - len(root + "/seq-"), 10)
    eph = zk.create(root + "/eph", b"e", ephemeral=True)
    expect("ephemeral owner", zk.exists(eph).ephemeralOwner, zk.client_id[0])
    children = sorted(zk.get_children(root))
    expect("children", len(children), 4)

    # A data watch fires once on change.
    fired = threading.Event()
    zk.get(root + "/null", watch=lambda event: fired.set())
    zk.set(root + "/null", b"now")
    if not fired.wait(10):
        raise AssertionError("the data watch did not fire")

    # multi: all or nothing.
    tx = zk.transaction()
    tx.create(root + "/t1", b"1")
    tx.check(root, version=1)
    tx.set_data(root + "/t1", b"2")
    results = tx.commit()
    if any(isinstance(r, Exception) for r in results):
        raise AssertionError(f"multi failed: {results!r}")
    expect("multi applied", zk.get(root + "/t1")[0], b"2")
    tx = zk.transaction()
    tx.create(root + "/t2", b"x")
    tx.check(root, version=99)
    results = tx.commit()
    if not any(isinstance(r, BadVersionError) for r in results):
        raise AssertionError(f"multi with a bad check: {results!r}")
    expect("multi rolled back", zk.exists(root + "/t2"), None)

    # Digest ACLs: the creator reads; another session is refused.
    zk.add_auth("digest", "alice:secret")
    acl = make_digest_acl("alice", "secret", all=True)
    zk.create(root + "/secret", b"hidden", acl=[acl])
    expect("owner reads", zk.get(root + "/secret")[0], b"hidden")
    other = KazooClient(hosts=hosts, timeout=10)
    other.start(timeout=15)
    raises("another session", NoAuthError, other.get, root + "/secret")

    # sync, then the other session reads what was written through the first.
    zk.set(root + "/t1", b"3")
    other.sync(root + "/t1")
    expect("read after sync", other.get(root + "/t1")[0], b"3")
    other.stop()

    zk.delete(root, recursive=True)
    raises("deleted", NoNodeError, zk.get, root)
    zk.stop()
    print("ok")


def config_line(text, server_id):
    prefix = f"server.{server_id}="
    for line in text.decode().splitlines():
        if line.startswith(prefix):
            return line
    return None


def reconfig(hosts, server_id, observer_spec, participant_spec):
    admin = KazooClient(hosts=hosts, timeout=10, auth_data=[("digest", "super:superpass")])
    admin.start(timeout=15)
    plain = KazooClient(hosts=hosts, timeout=10)
    plain.start(timeout=15)
    raises("reconfig by a plain client", NoAuthError, plain.reconfig,
           joining=observer_spec, leaving=None, new_members=None)

    changed = threading.Event()
    seen = []

    def watcher(event):
        seen.append(event.type)
        changed.set()

    before, before_stat = plain.get("/zookeeper/config", watch=watcher)
    data, stat = admin.reconfig(joining=observer_spec, leaving=None, new_members=None)
    line = config_line(data, server_id)
    if line is None or ":observer;" not in line:
        raise AssertionError(f"not an observer: {data!r}")
    expect("version line", data.decode().splitlines()[-1], f"version={stat.mzxid:x}")
    if not changed.wait(15):
        raise AssertionError("no watch event on /zookeeper/config")
    expect("watch event", seen, ["CHANGED"])
    now, _ = plain.get("/zookeeper/config")
    expect("config after", now, data)

    raises("a stale from_config", BadVersionError, admin.reconfig,
           joining=participant_spec, leaving=None, new_members=None,
           from_config=before_stat.mzxid)
    data, _ = admin.reconfig(joining=participant_spec, leaving=None, new_members=None,
                             from_config=stat.mzxid)
    line = config_line(data, server_id)
    if line is None or ":participant;" not in line:
        raise AssertionError(f"not a participant: {data!r}")
    admin.stop()
    plain.stop()
    print("ok")


def readonly(hosts, path):
    zk = KazooClient(hosts=hosts, timeout=10, read_only=True)
    zk.start(timeout=15)
    data, _ = zk.get(path)
    print(f"read {data!r}")
    raises("a write on a read-only session", NotReadOnlyCallError, zk.create, "/from-kazoo", b"")
    zk.stop()
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "surface":
        surface(sys.argv[2])
    elif sys.argv[1] == "readonly":
        readonly(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "reconfig":
        reconfig(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        raise SystemExit(f"unknown scenario {sys.argv[1]!r}")
