#!/usr/bin/env python3
"""Group commit on a running zoocore, beside the machine's own ceilings, in one run.

1. The disk's ceiling: raw sync rate of a preallocated file in the same file system as the
   server's data directory, one 128-byte record at a time, with p50/p99: pwrite + fdatasync,
   a store into a shared mapping + fdatasync (zoocore's way), and the same + msync.
2. zoocore with forceSync=yes under zoocore-bench's setData load at a few concurrencies
   (1 connection x 1 outstanding is batch 1: one fsync per write), and with forceSync=no at
   the highest one (appends with no fsync: the log's memcpy ceiling).
For every server run: writes/s, p50/p99 (zoocore-bench's report), and the average number of
txns per fsync from mntr (zoocore_log_records / zoocore_log_syncs, counted from server
the measured run only: the keys are created in a first short run). Usage:

    scripts/group_commit.py [--zoocore target/release/zoocore] [--bench target/release/zoocore-bench]
                            [--workdir DIR] [--duration 10] [--out DIR]
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, tempfile, time

HOST = '127.0.79.1'


def four(word):
    try:
        s = socket.create_connection((HOST, 2181), timeout=2)
        s.sendall(word.encode())
        out = b''
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        return out.decode(errors='replace')
    except OSError:
        return ''


def mntr():
    rows = {}
    for line in four('mntr').splitlines():
        k, _, v = line.partition('\t')
        rows[k] = v
    return rows


def raw_sync(dirpath, seconds, how):
    """One 128-byte record at a time, each made durable before the next: `pwrite` +
    fdatasync, or a store into a shared mapping + fdatasync (what zoocore does), or the same
    store + msync of the dirty page."""
    import mmap
    path = os.path.join(dirpath, 'raw-sync-' + how)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        zeros = b'\0' * (1 << 20)
        for i in range(64):
            os.pwrite(fd, zeros, i << 20)
        os.fsync(fd)
        m = mmap.mmap(fd, 64 << 20) if how != 'pwrite+fdatasync' else None
        rec = b'\xa5' * 128
        lat = []
        off = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.monotonic()
            if m is None:
                os.pwrite(fd, rec, off)
                os.fdatasync(fd)
            else:
                m[off:off + len(rec)] = rec
                if how == 'mmap+msync':
                    page = off & ~(mmap.PAGESIZE - 1)
                    m.flush(page, off + len(rec) - page)
                else:
                    os.fdatasync(fd)
            lat.append(time.monotonic() - t)
            off = (off + len(rec)) % (60 << 20)
        if m is not None:
            m.close()
        lat.sort()
        return dict(how=how, ops_per_s=len(lat) / seconds, p50_ms=lat[len(lat) // 2] * 1e3,
                    p99_ms=lat[int(len(lat) * 0.99)] * 1e3, mean_ms=statistics.mean(lat) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)


def run_server(args, force_sync, conns, outstanding, name):
    d = os.path.join(args.out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    data = os.path.join(args.workdir, 'gc-data-' + name)
    shutil.rmtree(data, ignore_errors=True)
    cfg = os.path.join(d, 'zoo.cfg')
    with open(cfg, 'w') as f:
        f.write('tickTime=2000\ndataDir=%s\nclientPort=2181\nclientPortAddress=%s\nmaxClientCnxns=0\n'
                '4lw.commands.whitelist=*\nzoocore.pinning=false\nglobalOutstandingLimit=1000\n'
                'forceSync=%s\n' % (data, HOST, 'yes' if force_sync else 'no'))
    log = open(os.path.join(d, 'server.log'), 'w')
    p = subprocess.Popen([args.zoocore, cfg], stdout=log, stderr=log)
    try:
        for _ in range(200):
            if 'Zxid' in four('srvr'):
                break
            time.sleep(0.05)
        load = [args.bench, 'load', '--servers', '%s:2181' % HOST, '--server-pid', str(p.pid),
                '--read-pct', '0', '--connections', str(conns), '--outstanding', str(outstanding),
                '--value-size', '1024', '--keys', '1000', '--quiet']
        # Set-up (the keys) in a first short run, so that the counters below cover only the
        # measured run.
        subprocess.run(load + ['--warmup-s', '0', '--duration-s', '1', '--out', os.path.join(d, 'setup')],
                       check=True, stdout=subprocess.DEVNULL)
        m0 = mntr()
        subprocess.run(load + ['--skip-setup', '--warmup-s', str(args.warmup), '--duration-s',
                               str(args.duration), '--out', os.path.join(d, 'load')],
                       check=True, stdout=subprocess.DEVNULL)
        m = mntr()
        with open(os.path.join(d, 'load', 'report.json')) as f:
            rep = json.load(f)
        delta = lambda k: int(m.get(k, 0)) - int(m0.get(k, 0))
        records, syncs = delta('zoocore_log_records'), delta('zoocore_log_syncs')
        lat = rep['write_latency']
        cpu = rep['servers_cpu'][0]['cpu_us_per_op'] if rep.get('servers_cpu') else None
        return dict(run=name, force_sync=force_sync, connections=conns, outstanding=outstanding,
                    writes_per_s=rep['writes_per_s'], p50_ms=lat['p50_us'] / 1e3,
                    p99_ms=lat['p99_us'] / 1e3, log_records=records, log_syncs=syncs,
                    txns_per_fsync=(records / syncs) if syncs else None,
                    batches=delta('zoocore_commit_batches'), server_cpu_us_per_op=cpu)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--zoocore', default='target/release/zoocore')
    ap.add_argument('--bench', default='target/release/zoocore-bench')
    ap.add_argument('--workdir', default=tempfile.gettempdir(), help='data directories go here')
    ap.add_argument('--duration', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--out', default='/tmp/zoocore-group-commit')
    args = ap.parse_args()
    args.zoocore, args.bench = os.path.abspath(args.zoocore), os.path.abspath(args.bench)
    os.makedirs(args.out, exist_ok=True)
    raws = []
    for how in ['pwrite+fdatasync', 'mmap+fdatasync', 'mmap+msync']:
        r = raw_sync(args.workdir, 4, how)
        raws.append(r)
        print('raw %-16s on %s: %6.0f/s, p50 %.2f ms, p99 %.2f ms'
              % (how, args.workdir, r['ops_per_s'], r['p50_ms'], r['p99_ms']), flush=True)
    raw = raws[0]
    runs = []
    for force, c, k in [(True, 1, 1), (True, 4, 4), (True, 32, 16), (False, 32, 16)]:
        name = '%s-%dx%d' % ('fsync' if force else 'nosync', c, k)
        r = run_server(args, force, c, k, name)
        runs.append(r)
        print('%-14s %9.0f writes/s  p50 %6.2f ms  p99 %6.2f ms  %7.1f txns/fsync  %5.1f µs CPU/op'
              % (name, r['writes_per_s'], r['p50_ms'], r['p99_ms'], r['txns_per_fsync'] or 0,
                 r['server_cpu_us_per_op'] or 0), flush=True)
    by = {r['run']: r for r in runs}
    top, nosync, one = by['fsync-32x16'], by['nosync-32x16'], by['fsync-1x1']
    ratios = dict(
        mmap_msync_vs_mmap_fdatasync=raws[2]['ops_per_s'] / raws[1]['ops_per_s'],
        fsync_on_vs_raw_fdatasync=top['writes_per_s'] / raw['ops_per_s'],
        fsync_on_vs_no_fsync=top['writes_per_s'] / nosync['writes_per_s'],
        batch1_vs_raw_fdatasync=one['writes_per_s'] / raw['ops_per_s'])
    for k, v in ratios.items():
        print('%s: %.2f' % (k, v))
    with open(os.path.join(args.out, 'group_commit.json'), 'w') as f:
        json.dump(dict(raw=raws, runs=runs, ratios=ratios), f, indent=1)


if __name__ == '__main__':
    main()
