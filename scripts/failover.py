#!/usr/bin/env python3
"""Failover time of a 3-voter ensemble, zoocore beside Apache ZooKeeper, measured the same way.

Three members on 127.77.<run>.1-3 (client port 2181, quorum 2888, election 3888), tickTime
2000, initLimit 10, syncLimit 5. A client (a minimal jute client, below) connected to a
follower creates a znode every 10 ms. Once 100 writes have succeeded, the leader is killed
with SIGKILL (`--fault kill`) or frozen with SIGSTOP (`--fault stop`); the failover time is
from that signal to the first successful write sent after it, through the same follower (the
client reconnects to it with its session, as ZooKeeper clients do, every 10 ms until it
serves). `--preload N` creates N znodes (pipelined) first, to see whether failover grows with
the size of the tree.

  scripts/failover.py --target zoocore --zoocore target/release/zoocore --fault kill --runs 5
  scripts/failover.py --target apache --fault stop --runs 2

Apache ZooKeeper runs from the Debian package (`apt-get install zookeeper`):
java -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg, with myid in dataDir.
Prints one line per run and a summary (min, median, max); `--json` writes the runs.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

CLIENT_PORT, QUORUM_PORT, ELECTION_PORT = 2181, 2888, 3888
TICK_MS, INIT_LIMIT, SYNC_LIMIT = 2000, 10, 5
WRITE_EVERY_S = 0.010
REQUEST_TIMEOUT_S = 2.0


# ---- a minimal ZooKeeper client: handshake and create, enough to measure ----

class Conn:
    def __init__(self, addr, session=0, password=b"\0" * 16, timeout_ms=30000, last_zxid=0):
        self.sock = socket.create_connection(addr, timeout=REQUEST_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = struct.pack(">iqiq", 0, last_zxid, timeout_ms, session)
        req += struct.pack(">i", len(password)) + password + b"\0"
        self._send(req)
        resp = self._recv()
        _, self.timeout_ms, self.session = struct.unpack(">iiq", resp[:16])
        (n,) = struct.unpack(">i", resp[16:20])
        self.password = resp[20:20 + n]
        if self.session == 0:
            raise ConnectionError("session refused (expired)")
        self.xid = 0
        self.last_zxid = last_zxid

    def _send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the server")
            buf += chunk
        return buf

    def _recv(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    @staticmethod
    def create_body(path, data):
        p = path.encode()
        acl = struct.pack(">ii", 1, 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
        return struct.pack(">i", len(p)) + p + struct.pack(">i", len(data)) + data + acl + struct.pack(">i", 0)

    def send_create(self, path, data=b""):
        self.xid += 1
        self._send(struct.pack(">ii", self.xid, 1) + self.create_body(path, data))
        return self.xid

    def read_reply(self):
        """(xid, zxid, err), skipping pings and notifications."""
        while True:
            r = self._recv()
            xid, zxid, err = struct.unpack(">iqi", r[:16])
            if xid >= 0:
                if zxid > 0:
                    self.last_zxid = zxid
                return xid, zxid, err

    def create(self, path, data=b""):
        xid = self.send_create(path, data)
        while True:
            rxid, _, err = self.read_reply()
            if rxid == xid:
                return err

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def four_letter(addr, word, timeout=1.0):
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return ""


def mode(addr):
    for line in four_letter(addr, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


# ---- ensembles ----

class Member:
    def __init__(self, target, myid, host, root, args):
        self.target, self.myid, self.host = target, myid, host
        self.dir = os.path.join(root, f"m{myid}")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        with open(os.path.join(self.data, "myid"), "w") as f:
            f.write(f"{myid}\n")
        self.args = args
        self.proc = None

    def write_cfg(self, hosts):
        lines = [
            f"tickTime={TICK_MS}", f"initLimit={INIT_LIMIT}", f"syncLimit={SYNC_LIMIT}",
            f"dataDir={self.data}", f"clientPort={CLIENT_PORT}", f"clientPortAddress={self.host}",
            "4lw.commands.whitelist=*", "maxClientCnxns=0", "admin.enableServer=false",
            "minSessionTimeout=4000", "maxSessionTimeout=60000",
        ]
        if self.target == "zoocore":
            lines += ["zoocore.pinning=false", "zoocore.shards=1"]
        else:
            lines += ["quorumListenOnAllIPs=false"]
        for i, h in enumerate(hosts, start=1):
            lines.append(f"server.{i}={h}:{QUORUM_PORT}:{ELECTION_PORT}:participant")
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "ab")
        if self.target == "zoocore":
            cmd = [self.args.zoocore, self.cfg]
        else:
            cmd = [
                "java", "-Xmx512m", "-Dzookeeper.4lw.commands.whitelist=*",
                "-Dzookeeper.admin.enableServer=false",
                "-cp", "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.cfg,
            ]
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    @property
    def addr(self):
        return (self.host, CLIENT_PORT)

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self):
        if self.proc:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None


def start_ensemble(target, run, root, args):
    hosts = [f"127.77.{run % 250}.{i}" for i in (1, 2, 3)]
    members = [Member(target, i + 1, h, root, args) for i, h in enumerate(hosts)]
    for m in members:
        m.write_cfg(hosts)
        m.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        modes = [mode(m.addr) for m in members]
        if sorted(x or "" for x in modes) == ["follower", "follower", "leader"]:
            return members, modes
        time.sleep(0.1)
    for m in members:
        m.stop()
    raise RuntimeError(f"{target} ensemble did not form: {modes}")


def preload(conn, n):
    """Creates n znodes, up to 1000 in flight."""
    sent = done = 0
    inflight = 0
    while done < n:
        while sent < n and inflight < 1000:
            conn.send_create(f"/p{sent:09d}", b"x" * 100)
            sent += 1
            inflight += 1
        _, _, err = conn.read_reply()
        if err != 0:
            raise RuntimeError(f"preload create failed: {err}")
        done += 1
        inflight -= 1


def measure(target, run, args):
    root = tempfile.mkdtemp(prefix=f"failover-{target}-")
    members, modes = start_ensemble(target, run, root, args)
    try:
        leader = members[modes.index("leader")]
        follower = members[modes.index("follower")]
        conn = Conn(follower.addr)
        if args.preload:
            t = time.monotonic()
            preload(conn, args.preload)
            print(f"  preloaded {args.preload} znodes in {time.monotonic() - t:.1f}s", file=sys.stderr)
        session, password = conn.session, conn.password
        last_zxid = conn.last_zxid
        ok = n = 0
        faulted_at = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            started = time.monotonic()
            n += 1
            try:
                if conn is None:
                    conn = Conn(follower.addr, session, password, last_zxid=last_zxid)
                err = conn.create(f"/w{n:08d}")
            except (OSError, ConnectionError, struct.error):
                err = None
                if conn is not None:
                    last_zxid = conn.last_zxid
                    conn.close()
                conn = None
            if err == 0:
                ok += 1
                if faulted_at is not None and started >= faulted_at:
                    return time.monotonic() - faulted_at
            if conn is not None:
                last_zxid = conn.last_zxid
            if faulted_at is None and ok == 100:
                faulted_at = time.monotonic()
                leader.signal(signal.SIGKILL if args.fault == "kill" else signal.SIGSTOP)
            time.sleep(max(0.0, WRITE_EVERY_S - (time.monotonic() - started)))
        raise RuntimeError("no write succeeded within 120 s of the fault")
    finally:
        for m in members:
            m.stop()
        if args.keep:
            print(f"  kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["zoocore", "apache"], required=True)
    p.add_argument("--zoocore", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "zoocore"))
    p.add_argument("--fault", choices=["kill", "stop"], default="kill")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--preload", type=int, default=0, help="znodes created before measuring")
    p.add_argument("--json", help="write the runs to this file")
    p.add_argument("--keep", action="store_true", help="keep the members' dirs and logs")
    args = p.parse_args()
    if args.target == "zoocore" and not os.path.exists(args.zoocore):
        sys.exit(f"{args.zoocore} not found: cargo build --release -p zoocore-server, or --zoocore PATH")
    times = []
    for run in range(args.runs):
        t = measure(args.target, run + 1 + (100 if args.target == "apache" else 0), args)
        times.append(t)
        print(f"{args.target} {args.fault} run {run + 1}: {t * 1000:.0f} ms", flush=True)
    ms = [t * 1000 for t in times]
    print(f"{args.target} {args.fault} preload={args.preload}: min {min(ms):.0f} ms, "
          f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms over {len(ms)} runs")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"target": args.target, "fault": args.fault, "preload": args.preload, "ms": ms}, f)


if __name__ == "__main__":
    main()
