#!/usr/bin/env python3
"""Resident memory per znode, zoocore beside Apache ZooKeeper, measured the same way.

Starts each server on its own loopback address with a fresh data directory, creates N znodes
(default 1,000,000) with 100-byte values under /bench through one pipelined connection, and
reports (RSS after - RSS before) / N from /proc/<pid>/status. Both servers are stopped at the
end. Usage:

    scripts/mem_per_znode.py [--count N] [--systems zoocore,apache] [--zoocore target/release/zoocore]
"""
import argparse, os, shutil, signal, socket, struct, subprocess, sys, tempfile, time

def frame(b):
    return struct.pack('>i', len(b)) + b

def jstr(s):
    b = s.encode()
    return struct.pack('>i', len(b)) + b

OPEN_ACL = struct.pack('>i', 1) + struct.pack('>i', 31) + jstr('world') + jstr('anyone')

def connect(addr):
    deadline = time.time() + 60
    while True:
        try:
            s = socket.create_connection(addr)
            body = struct.pack('>iqiq', 0, 0, 30000, 0) + struct.pack('>i', 16) + b'\0' * 16
            s.sendall(frame(body))
            n = struct.unpack('>i', recv_exact(s, 4))[0]
            recv_exact(s, n)
            return s
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)

def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise OSError('closed')
        buf += d
    return buf

def create_many(s, count, value, window=2000):
    def req(xid, path):
        return frame(struct.pack('>ii', xid, 1) + jstr(path) + struct.pack('>i', len(value)) + value + OPEN_ACL + struct.pack('>i', 0))
    s.sendall(req(1, '/bench'))
    sent, done, xid = 0, 0, 2
    pending = b''
    rbuf = b''
    total = count + 1
    while done < total:
        out = []
        while sent < count and sent - (done - 1) < window:
            out.append(req(xid, '/bench/k%010d' % sent))
            xid += 1
            sent += 1
        if out:
            s.sendall(b''.join(out))
        rbuf += s.recv(1 << 20)
        while len(rbuf) >= 4:
            n = struct.unpack('>i', rbuf[:4])[0]
            if len(rbuf) < 4 + n:
                break
            _, _, err = struct.unpack('>iqi', rbuf[4:20])
            if err != 0:
                raise RuntimeError('create failed with %d' % err)
            rbuf = rbuf[4 + n:]
            done += 1

def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0

def run(system, args, host):
    d = tempfile.mkdtemp(prefix='zc-mem-')
    cfg = os.path.join(d, 'zoo.cfg')
    with open(cfg, 'w') as f:
        f.write('tickTime=2000\ndataDir=%s/data\nclientPort=2181\nclientPortAddress=%s\n'
                'maxClientCnxns=0\nsnapCount=100000000\nadmin.enableServer=false\nzoocore.pinning=false\n' % (d, host))
    log = open(os.path.join(d, 'server.log'), 'w')
    if system == 'zoocore':
        cmd = [args.zoocore, cfg]
    else:
        cmd = ['java', '-Xmx%s' % args.heap, '-Xms%s' % args.heap, '-cp',
               '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar',
               '-Dzookeeper.admin.enableServer=false', 'org.apache.zookeeper.server.ZooKeeperServerMain', cfg]
    p = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=d)
    try:
        s = connect((host, 2181))
        time.sleep(1)
        before = rss_kb(p.pid)
        t0 = time.time()
        create_many(s, args.count, b'v' * 100)
        took = time.time() - t0
        time.sleep(1)
        after = rss_kb(p.pid)
        per = (after - before) * 1024 / args.count
        print('%-8s %9d znodes in %5.1fs  RSS %7.1f MiB -> %7.1f MiB  %6.0f B/znode'
              % (system, args.count, took, before / 1024, after / 1024, per), flush=True)
        s.close()
        return per
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
        shutil.rmtree(d, ignore_errors=True)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--count', type=int, default=1_000_000)
    ap.add_argument('--systems', default='zoocore,apache')
    ap.add_argument('--zoocore', default='target/release/zoocore')
    ap.add_argument('--heap', default='4g', help='Apache ZooKeeper JVM heap (-Xms = -Xmx)')
    args = ap.parse_args()
    args.zoocore = os.path.abspath(args.zoocore)
    results = {}
    for i, system in enumerate(args.systems.split(',')):
        results[system] = run(system, args, '127.0.77.%d' % (i + 1))
    if 'zoocore' in results and 'apache' in results:
        print('zoocore / apache: %.2f' % (results['zoocore'] / results['apache']))

if __name__ == '__main__':
    main()
