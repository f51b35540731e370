#!/usr/bin/env bash
# Snapshots under load, A/B of two zoocore binaries (issue 13): 1,000,000 znodes of 100 B,
# 20,000 setData/s open loop, snapCount=20000 ("on") vs snapshots off, each binary with
# both, in A B B A order (on and off alternating inside each slot). The million znodes are
# created once into a template data directory; every run starts on a fresh copy of it, so a
# run costs ~40 s instead of the campaign's minutes of creates.
#
#   configs/bench/snapshots-ab.sh OUTDIR BIN_A BIN_B [ROUNDS]
#
# Prints one line per run (p50/p90/p99/max over the window, server CPU µs/op) and, at the
# end, the on/off p50 and p90 ratio of every slot's pair and each binary's range. Env: SNAP_DURATION_S (20),
# SNAP_RATE (20000), SNAP_KEYS (1000000), SNAP_COUNT (20000), SNAP_HOST (127.0.0.213),
# SNAP_SLOTS ("A B B A"), SNAP_CFG_A / SNAP_CFG_B (extra zoo.cfg lines for
# each slot: A/B of one binary's settings), SNAP_PERF=1 to `perf record -g` the server of
# every run into OUTDIR/<run>/perf.data.
set -euo pipefail
OUT=$1 A=$2 B=$3 ROUNDS=${4:-1}
BENCH=${CARGO_TARGET_DIR:-target}/release/zoocore-bench
HOST=${SNAP_HOST:-127.0.0.213}
PORT=2181
KEYS=${SNAP_KEYS:-1000000}
RATE=${SNAP_RATE:-20000}
DUR=${SNAP_DURATION_S:-20}
SNAP=${SNAP_COUNT:-20000}
LOAD=(--servers "$HOST:$PORT" --read-pct 0 --connections 32 --outstanding 64 --value-size 100 --keys "$KEYS"
  --prefix /snapab --quiet)
mkdir -p "$OUT"
ulimit -l unlimited || true

four() { timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$PORT && printf $1 >&3 && cat <&3" 2>/dev/null || true; }

wait_ready() {
  for _ in $(seq 600); do
    if [[ $(four srvr) == *Zxid* ]]; then return 0; fi
    sleep 0.1
  done
  echo "server on $HOST:$PORT not ready" >&2
  return 1
}

PID=
stop() {
  [ -n "$PID" ] || return 0
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$PID" 2>/dev/null || true
  PID=
}
trap stop EXIT

start() { # bin dir snapCount [extra zoo.cfg lines]
  cat > "$2/zoo.cfg" <<CFG
tickTime=2000
dataDir=$2/data
clientPort=$PORT
clientPortAddress=$HOST
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
globalOutstandingLimit=5000
forceSync=yes
snapCount=$3
autopurge.purgeInterval=0
zoocore.pinning=false
${4:-}
CFG
  "$1" "$2/zoo.cfg" > "$2/server.log" 2>&1 &
  PID=$!
  wait_ready
}

TEMPLATE=$OUT/template
if [ ! -f "$TEMPLATE/done" ]; then
  rm -rf "$TEMPLATE" && mkdir -p "$TEMPLATE/data"
  start "$A" "$TEMPLATE" 200000
  "$BENCH" load "${LOAD[@]}" --rate "$RATE" --warmup-s 0 --duration-s 1 > "$TEMPLATE/setup.txt"
  stop
  touch "$TEMPLATE/done"
fi

run() { # label bin snapCount [extra zoo.cfg lines]
  local dir=$OUT/$1
  rm -rf "$dir" && mkdir -p "$dir"
  cp -a "$TEMPLATE/data" "$dir/data"
  sync
  start "$2" "$dir" "$3" "${4:-}"
  local perf=
  if [ "${SNAP_PERF:-0}" = 1 ]; then
    perf record -g -o "$dir/perf.data" -p "$PID" -- sleep $((DUR + 3)) > /dev/null 2>&1 &
    perf=$!
  fi
  "$BENCH" load "${LOAD[@]}" --skip-setup --rate "$RATE" --warmup-s 2 --duration-s "$DUR" \
    --server-pid "$PID" --out "$dir" > "$dir/summary.txt"
  [ -z "$perf" ] || wait "$perf" || true
  stop
  rm -rf "$dir/data"
  local snaps
  snaps=$(grep -c "snapshot at" "$dir/server.log" || true)
  python3 - "$dir" "$1" "$(uptime | sed 's/.*load average: //')" "$snaps" <<'PY'
import json, sys
d, label, load, snaps = sys.argv[1:]
r = json.load(open(f"{d}/report.json"))
l = r["latency"]
ps = r["per_second"]
med = lambda xs: sorted(xs)[len(xs) // 2] if xs else 0
cpu = r["servers_cpu"][0].get("cpu_us_per_op") if r["servers_cpu"] else None
print(f"{label:26} p50 {l['p50_us']/1e3:6.2f} p90 {l['p90_us']/1e3:6.2f} p99 {l['p99_us']/1e3:7.2f} "
      f"max {l['max_us']/1e3:7.1f} ms | per-s median p50 {med([x['p50_us'] for x in ps])/1e3:5.2f} "
      f"p90 {med([x['p90_us'] for x in ps])/1e3:5.2f} | {r['writes_per_s']:.0f} w/s "
      f"cpu {cpu if cpu is None else round(cpu, 1)} us/op | {snaps} snapshots | late {r['schedule']['late_sends']} | load {load}")
PY
}

for r in $(seq "$ROUNDS"); do
  i=0
  for slot in ${SNAP_SLOTS:-A B B A}; do
    i=$((i + 1))
    bin=$A extra=${SNAP_CFG_A:-}
    [ "$slot" = B ] && bin=$B extra=${SNAP_CFG_B:-}
    if [ $((r % 2)) = 1 ]; then order="off on"; else order="on off"; fi
    for s in $order; do
      count=2000000000; [ "$s" = on ] && count=$SNAP
      run "r$r-$i$slot-$s" "$bin" "$count" "$extra"
    done
  done
done

# On/off ratios of each slot's pair of runs, over the window and as the median of the
# per-second values.
python3 - "$OUT" <<'PY'
import glob, json, os, re, sys
runs = {}
for f in glob.glob(f"{sys.argv[1]}/r*-*-o*/report.json"):
    m = re.match(r"(r\d+-\d+)([AB])-(on|off)$", os.path.basename(os.path.dirname(f)))
    if m:
        runs.setdefault((m[1], m[2]), {})[m[3]] = json.load(open(f))
med = lambda xs: sorted(xs)[len(xs) // 2] if xs else 0
rows = {"A": [], "B": []}
for (pair, slot), r in sorted(runs.items()):
    if "on" not in r or "off" not in r:
        continue
    q = lambda k, x: r[k]["latency"][x] or 1
    ps = lambda k, x: med([s[x] for s in r[k]["per_second"]]) or 1
    row = (q("on", "p50_us") / q("off", "p50_us"), q("on", "p90_us") / q("off", "p90_us"),
           ps("on", "p50_us") / ps("off", "p50_us"), ps("on", "p90_us") / ps("off", "p90_us"))
    rows[slot].append(row)
    print(f"{pair}{slot}: on/off p50 x{row[0]:.2f} p90 x{row[1]:.2f} | per-second medians p50 x{row[2]:.2f} p90 x{row[3]:.2f}")
for slot, rs in rows.items():
    if rs:
        cols = list(zip(*rs))
        print(f"{slot}: p50 x{min(cols[0]):.2f}-{max(cols[0]):.2f}, p90 x{min(cols[1]):.2f}-{max(cols[1]):.2f} over {len(rs)} pairs")
PY
