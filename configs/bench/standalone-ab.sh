#!/usr/bin/env bash
# Standalone zoocore vs Apache ZooKeeper 3.8 (Debian) on this machine, same load generator,
# alternating A B B A, then the echo ceiling. Superseded by the campaign runner
# (scripts/bench-quick, configs/bench/quick.toml); kept as a plain-shell cross-check.
#
#   cargo build --release --bin zoocore -p zoocore-server
#   cargo build --release -p zoocore-bench
#   configs/bench/standalone-ab.sh [OUTDIR]
#
# Each run: 32 connections x 16 outstanding, 1 KiB values, 1000 keys, 5 s warm-up, 10 s
# measured, closed loop, one generator thread. Every server start gets a fresh data dir under
# OUTDIR (same file system for both). zoocore: pinning off, default shards. Apache: heap
# fixed at 2 GiB, forceSync on (its default: the log is fsynced before each ack).
set -euo pipefail
BIN=${CARGO_TARGET_DIR:-target}/release
OUT=${1:-/tmp/zoocore-bench-ab}
HOST=${BENCH_HOST:-127.0.0.201}
PORT=2181
LOAD=(--connections 32 --outstanding 16 --value-size 1024 --keys 1000 --warmup-s 5 --duration-s 10 --threads 1 --quiet)
rm -rf "$OUT" && mkdir -p "$OUT"

four() { timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$PORT && printf $1 >&3 && cat <&3" 2>/dev/null || true; }

wait_ready() {
  for _ in $(seq 200); do
    # Apache answers imok a moment before it serves sessions; srvr tells.
    local srvr; srvr=$(four srvr)
    if [ "$(four ruok)" = imok ] && [[ $srvr == *Zxid* ]]; then return 0; fi
    sleep 0.1
  done
  echo "server on $HOST:$PORT not ready" >&2; return 1
}

start() { # system dir -> echoes pid
  local system=$1 dir=$2
  mkdir -p "$dir/data" "$dir/reads" "$dir/writes"
  cat > "$dir/zoo.cfg" <<CFG
tickTime=2000
dataDir=$dir/data
clientPort=$PORT
clientPortAddress=$HOST
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
globalOutstandingLimit=1000
zoocore.pinning=false
CFG
  if [ "$system" = zoocore ]; then
    "$BIN/zoocore" "$dir/zoo.cfg" > "$dir/server.log" 2>&1 &
  else
    java -Xms2g -Xmx2g -Dzookeeper.4lw.commands.whitelist='*' -Dzookeeper.admin.enableServer=false \
      -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
      org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" > "$dir/server.log" 2>&1 &
  fi
  echo $!
}

stop() { # the server runs outside this shell's job table: poll until it is gone
  kill "$1" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true; sleep 0.5
}

run_system() { # system round
  local system=$1 round=$2 dir="$OUT/$1-$2"
  local pid; pid=$(start "$system" "$dir")
  wait_ready || { stop "$pid"; exit 1; }
  for mix in reads:100 writes:0; do
    local name=${mix%%:*} pct=${mix##*:}
    "$BIN/zoocore-bench" load --servers "$HOST:$PORT" --server-pid "$pid" --read-pct "$pct" \
      "${LOAD[@]}" --out "$dir/$name" | tee "$dir/$name.summary"
  done
  stop "$pid"
}

for step in zoocore:1 apache:1 apache:2 zoocore:2; do
  echo "== ${step%%:*} round ${step##*:}"
  run_system "${step%%:*}" "${step##*:}"
done

echo "== echo ceiling"
mkdir -p "$OUT/echo"
"$BIN/zoocore-bench" echo --listen "$HOST:$PORT" --value-size 1024 &
EPID=$!
sleep 0.5
for mix in reads:100 writes:0; do
  "$BIN/zoocore-bench" load --servers "$HOST:$PORT" --server-pid "$EPID" --read-pct "${mix##*:}" \
    "${LOAD[@]}" --out "$OUT/echo/${mix%%:*}" | tee "$OUT/echo/${mix%%:*}.summary"
done
stop "$EPID"
echo "results in $OUT"
