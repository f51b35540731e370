#!/usr/bin/env python3
"""Restart time and disk use, zoocore beside Apache ZooKeeper, measured the same way.

Two scenarios, each on a fresh data directory per system:

  tree  N znodes (default 1,000,000) of 100-byte values under /bench, snapCount default
        (100000): on restart the server loads its newest snapshot and replays the log after it.
  log   one /bench/k<i> per key (default 1000 keys), then M setData of 1 KiB (default
        1,000,000, about 1 GB of log) with snapCount=100000000 so that no snapshot covers
        them: on restart the whole log is replayed.

For each: load through one pipelined raw connection, note `srvr`'s zxid, stop the server
(SIGTERM, SIGKILL after 10 s), measure the data directory (du), restart, and time from the
launch of the process to (1) the first successful getData of the last key written and (2)
`srvr` answering with at least the zxid it had before the stop. The page cache is warm (the files were just written);
`--drop-caches` drops it before the restart when /proc/sys/vm/drop_caches is writable.
Usage:

    scripts/restart_time.py [--scenarios tree,log] [--systems zoocore,apache]
                            [--zoocore target/release/zoocore] [--count N] [--sets M]
"""
import argparse, json, os, re, shutil, signal, socket, struct, subprocess, sys, tempfile, time

APACHE_CP = '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar'


def frame(b):
    return struct.pack('>i', len(b)) + b


def jstr(s):
    b = s.encode()
    return struct.pack('>i', len(b)) + b


def jbuf(b):
    return struct.pack('>i', len(b)) + b


OPEN_ACL = struct.pack('>i', 1) + struct.pack('>i', 31) + jstr('world') + jstr('anyone')
OP_CREATE, OP_GETDATA, OP_SETDATA = 1, 4, 5


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise OSError('closed')
        buf += d
    return bytes(buf)


def session(addr, timeout=None):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = struct.pack('>iqiq', 0, 0, 30000, 0) + struct.pack('>i', 16) + b'\0' * 16
    s.sendall(frame(body))
    n = struct.unpack('>i', recv_exact(s, 4))[0]
    reply = recv_exact(s, n)
    if n < 20 or struct.unpack('>i', reply[4:8])[0] <= 0:
        raise OSError('session refused')
    return s


def connect(addr):
    deadline = time.time() + 120
    while True:
        try:
            # Apache accepts connections before it serves and may leave the handshake
            # hanging: retry on a timeout, then block as usual.
            s = session(addr, timeout=2)
            s.settimeout(None)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def pipeline(s, bodies, window=2000):
    """Sends (op, body) requests with up to `window` outstanding; every answer must be ok."""
    it = iter(bodies)
    xid, done, sent, more = 1, 0, 0, True
    rbuf = bytearray()
    while more or done < sent:
        out = []
        while more and sent - done < window:
            try:
                op, body = next(it)
            except StopIteration:
                more = False
                break
            out.append(frame(struct.pack('>ii', xid, op) + body))
            xid += 1
            sent += 1
        if out:
            s.sendall(b''.join(out))
        if done == sent:
            continue
        d = s.recv(1 << 20)
        if not d:
            raise OSError('closed')
        rbuf += d
        pos = 0
        while len(rbuf) - pos >= 4:
            n = struct.unpack_from('>i', rbuf, pos)[0]
            if len(rbuf) - pos < 4 + n:
                break
            _, _, err = struct.unpack_from('>iqi', rbuf, pos + 4)
            if err != 0:
                raise RuntimeError('request failed with %d' % err)
            pos += 4 + n
            done += 1
        del rbuf[:pos]


def get_data(s, path):
    s.sendall(frame(struct.pack('>ii', 1, OP_GETDATA) + jstr(path) + b'\0'))
    n = struct.unpack('>i', recv_exact(s, 4))[0]
    reply = recv_exact(s, n)
    _, zxid, err = struct.unpack('>iqi', reply[:16])
    return err


def srvr_zxid(addr):
    try:
        s = socket.create_connection(addr, timeout=5)
        s.sendall(b'srvr')
        out = b''
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
    except OSError:
        return None
    m = re.search(rb'Zxid: (0x[0-9a-fA-F]+)', out)
    return int(m.group(1), 16) if m else None


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total


def listing(path):
    rows = []
    for root, _, files in os.walk(path):
        for f in sorted(files):
            p = os.path.join(root, f)
            rows.append((os.path.relpath(p, path), os.path.getsize(p), os.lstat(p).st_blocks * 512))
    return rows


class Server:
    def __init__(self, system, args, host, scenario):
        self.system, self.args, self.addr = system, args, (host, 2181)
        self.dir = tempfile.mkdtemp(prefix='zc-restart-', dir=args.workdir)
        self.data = os.path.join(self.dir, 'data')
        cfg = ('tickTime=2000\ndataDir=%s\nclientPort=2181\nclientPortAddress=%s\n'
               'maxClientCnxns=0\nadmin.enableServer=false\nzoocore.pinning=false\n'
               '4lw.commands.whitelist=*\nautopurge.purgeInterval=0\n' % (self.data, host))
        if scenario == 'log':
            cfg += 'snapCount=100000000\n'
        self.cfg = os.path.join(self.dir, 'zoo.cfg')
        with open(self.cfg, 'w') as f:
            f.write(cfg)
        self.proc = None
        self.logs = 0

    def launch(self):
        self.logs += 1
        log = open(os.path.join(self.dir, 'server.%d.log' % self.logs), 'w')
        if self.system == 'zoocore':
            cmd = [self.args.zoocore, self.cfg]
        else:
            cmd = ['java', '-Xmx%s' % self.args.heap, '-Xms%s' % self.args.heap, '-cp', APACHE_CP,
                   '-Dzookeeper.admin.enableServer=false',
                   'org.apache.zookeeper.server.ZooKeeperServerMain', self.cfg]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=self.dir)
        return t0

    def log_text(self):
        with open(os.path.join(self.dir, 'server.%d.log' % self.logs), errors='replace') as f:
            return f.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_readable(addr, path, t0, deadline_s=300):
    while True:
        try:
            # Apache accepts connections while it loads and leaves some hanging (an NPE in
            # its close path): a short timeout bounds the error of the measurement by it.
            s = session(addr, timeout=0.2)
            err = get_data(s, path)
            s.close()
            if err == 0:
                return time.monotonic() - t0
        except (OSError, struct.error):
            pass
        if time.monotonic() - t0 > deadline_s:
            raise RuntimeError('not readable after %ds' % deadline_s)
        time.sleep(0.005)


def load(server, scenario, args):
    s = connect(server.addr)
    t = time.time()
    if scenario == 'tree':
        value = b'v' * 100
        s_bodies = [(OP_CREATE, jstr('/bench') + jbuf(b'') + OPEN_ACL + struct.pack('>i', 0))]
        pipeline(s, s_bodies)
        pipeline(s, ((OP_CREATE, jstr('/bench/k%010d' % i) + jbuf(value) + OPEN_ACL
                      + struct.pack('>i', 0)) for i in range(args.count)))
        last = '/bench/k%010d' % (args.count - 1)
    else:
        pipeline(s, [(OP_CREATE, jstr('/bench') + jbuf(b'') + OPEN_ACL + struct.pack('>i', 0))])
        pipeline(s, ((OP_CREATE, jstr('/bench/k%06d' % i) + jbuf(b'') + OPEN_ACL
                      + struct.pack('>i', 0)) for i in range(args.keys)))
        value = b'x' * 1024
        pipeline(s, ((OP_SETDATA, jstr('/bench/k%06d' % (i % args.keys)) + jbuf(value)
                      + struct.pack('>i', -1)) for i in range(args.sets)))
        last = '/bench/k%06d' % ((args.sets - 1) % args.keys)
    took = time.time() - t
    s.close()
    return last, took


def server_breakdown(system, text):
    """The server's own account of its start-up, from its log."""
    if system == 'zoocore':
        m = re.search(r'recovered (\d+) znodes .*?\((snapshot [^,]+), (\d+) txns replayed\) in ([0-9.]+)(ms|s|µs)', text)
        if m:
            t = float(m.group(4)) * {'ms': 1e-3, 's': 1.0, 'µs': 1e-6}[m.group(5)]
            return '%s, %s txns replayed, recovery %.3f s' % (m.group(2), m.group(3), t)
        return ''
    parts = []
    for pat, what in [(r'Snapshot loaded in (\d+) ms', 'snapshot loaded %s ms'),
                      (r'(\d+) txns loaded in (\d+) ms', None),
                      (r'Snapshot taken in (\d+) ms', 'snapshot taken %s ms')]:
        m = re.search(pat, text)
        if m and what:
            parts.append(what % m.group(1))
        elif m:
            parts.append('%s txns replayed in %s ms' % (m.group(1), m.group(2)))
    return ', '.join(parts)


def drop_caches():
    try:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return True
    except OSError:
        return False


def run(system, scenario, args, host):
    srv = Server(system, args, host, scenario)
    try:
        srv.launch()
        last, load_s = load(srv, scenario, args)
        time.sleep(args.settle)
        zxid = srvr_zxid(srv.addr)
        srv.stop()
        disk = du_bytes(srv.data)
        files = listing(srv.data)
        cold = drop_caches() if args.drop_caches else False
        t0 = srv.launch()
        read_s = wait_readable(srv.addr, last, t0)
        while True:
            z = srvr_zxid(srv.addr)
            # The probe's own session adds txns after the replay: any zxid from the one
            # recorded before the stop on means the replay is complete.
            if z is not None and z >= zxid:
                srvr_s = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 300:
                raise RuntimeError('srvr zxid %r, expected %#x' % (z, zxid))
            time.sleep(0.005)
        time.sleep(args.settle)
        after = du_bytes(srv.data)
        srv.stop()
        r = dict(system=system, scenario=scenario, load_s=round(load_s, 1), zxid='%#x' % zxid,
                 first_read_s=round(read_s, 3), srvr_s=round(srvr_s, 3), disk_mb=round(disk / 1e6, 1),
                 disk_after_restart_mb=round(after / 1e6, 1), cold_cache=cold,
                 startup=server_breakdown(system, srv.log_text()),
                 files=['%s %d' % (n, sz) for n, sz, _ in files][:40])
        print('%-8s %-4s load %6.1fs  zxid %s  restart: first read %6.3fs, srvr %6.3fs  '
              'disk %7.1f MB (%7.1f MB after restart)  [%s]'
              % (system, scenario, load_s, r['zxid'], read_s, srvr_s, disk / 1e6, after / 1e6,
                 r['startup']), flush=True)
        return r
    finally:
        srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--scenarios', default='tree,log')
    ap.add_argument('--systems', default='zoocore,apache')
    ap.add_argument('--zoocore', default='target/release/zoocore')
    ap.add_argument('--count', type=int, default=1_000_000, help='znodes of the tree scenario')
    ap.add_argument('--keys', type=int, default=1000, help='keys of the log scenario')
    ap.add_argument('--sets', type=int, default=1_000_000, help='1 KiB setData of the log scenario')
    ap.add_argument('--heap', default='4g', help='Apache ZooKeeper JVM heap (-Xms = -Xmx)')
    ap.add_argument('--settle', type=float, default=3.0,
                    help='seconds to wait after loading (lets a background snapshot finish)')
    ap.add_argument('--workdir', default=None, help='where data directories go (default $TMPDIR)')
    ap.add_argument('--drop-caches', action='store_true')
    ap.add_argument('--keep', action='store_true', help='keep the data directories')
    ap.add_argument('--json', default=None, help='write every result to this file')
    args = ap.parse_args()
    args.zoocore = os.path.abspath(args.zoocore)
    results = []
    for scenario in args.scenarios.split(','):
        for i, system in enumerate(args.systems.split(',')):
            results.append(run(system, scenario, args, '127.0.78.%d' % (i + 1)))
    for scenario in args.scenarios.split(','):
        by = {r['system']: r for r in results if r['scenario'] == scenario}
        if 'zoocore' in by and 'apache' in by:
            z, a = by['zoocore'], by['apache']
            print('%-4s zoocore / apache: first read %.3f (%.3fs vs %.3fs), disk %.2f (%.1f vs %.1f MB)'
                  % (scenario, z['first_read_s'] / a['first_read_s'], z['first_read_s'],
                     a['first_read_s'], z['disk_mb'] / a['disk_mb'], z['disk_mb'], a['disk_mb']))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
