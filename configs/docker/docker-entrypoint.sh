#!/usr/bin/env bash
# zoocore's container entrypoint, with the contract of the official `zookeeper` image's:
# the same ZOO_* variables and defaults, zoo.cfg written into $ZOO_CONF_DIR only when it is
# missing (a mounted zoo.cfg wins), myid written into $ZOO_DATA_DIR only when missing, then
# the command is exec'd. Started as root (the image's default), it hands the data, log and
# config directories to the `zoocore` user and drops to it before starting the server.
#
# It is also run directly by the tests (tests/tests/docker.rs), without Docker.
set -euo pipefail

: "${ZOO_CONF_DIR:=/conf}"
: "${ZOO_DATA_DIR:=/data}"
: "${ZOO_DATA_LOG_DIR:=/datalog}"
: "${ZOO_LOG_DIR:=/logs}"
: "${ZOO_TICK_TIME:=2000}"
: "${ZOO_INIT_LIMIT:=5}"
: "${ZOO_SYNC_LIMIT:=2}"
: "${ZOO_AUTOPURGE_PURGEINTERVAL:=0}"
: "${ZOO_AUTOPURGE_SNAPRETAINCOUNT:=3}"
: "${ZOO_MAX_CLIENT_CNXNS:=60}"
: "${ZOO_STANDALONE_ENABLED:=true}"
: "${ZOO_ADMINSERVER_ENABLED:=true}"
: "${ZOO_4LW_COMMANDS_WHITELIST:=}"
: "${ZOO_CFG_EXTRA:=}"
: "${ZOO_SERVERS:=}"
: "${ZOO_MY_ID:=}"

# As root with the server as the command: own the directories, then run as `zoocore`.
if [[ "${1:-}" == zoocore && "$(id -u)" == 0 ]] && id zoocore >/dev/null 2>&1; then
    mkdir -p "$ZOO_CONF_DIR" "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
    chown -R zoocore:zoocore "$ZOO_CONF_DIR" "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"
    exec setpriv --reuid=zoocore --regid=zoocore --init-groups "$0" "$@"
fi

mkdir -p "$ZOO_CONF_DIR" "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR"

config="$ZOO_CONF_DIR/zoo.cfg"
if [[ ! -f "$config" ]]; then
    # Written to a temporary file and renamed, so a container killed half-way does not
    # leave a partial zoo.cfg that a restart would then keep.
    partial="$config.partial"
    {
        printf 'dataDir=%s\n' "$ZOO_DATA_DIR"
        printf 'dataLogDir=%s\n' "$ZOO_DATA_LOG_DIR"
        printf 'tickTime=%s\n' "$ZOO_TICK_TIME"
        printf 'initLimit=%s\n' "$ZOO_INIT_LIMIT"
        printf 'syncLimit=%s\n' "$ZOO_SYNC_LIMIT"
        printf 'autopurge.snapRetainCount=%s\n' "$ZOO_AUTOPURGE_SNAPRETAINCOUNT"
        printf 'autopurge.purgeInterval=%s\n' "$ZOO_AUTOPURGE_PURGEINTERVAL"
        printf 'maxClientCnxns=%s\n' "$ZOO_MAX_CLIENT_CNXNS"
        printf 'standaloneEnabled=%s\n' "$ZOO_STANDALONE_ENABLED"
        printf 'admin.enableServer=%s\n' "$ZOO_ADMINSERVER_ENABLED"
        # One standalone member serving clients on 2181 when no ensemble is given.
        for server in ${ZOO_SERVERS:-server.1=localhost:2888:3888;2181}; do
            printf '%s\n' "$server"
        done
        if [[ -n "$ZOO_4LW_COMMANDS_WHITELIST" ]]; then
            printf '4lw.commands.whitelist=%s\n' "$ZOO_4LW_COMMANDS_WHITELIST"
        fi
        # Space-separated key=value pairs, each a line of its own.
        for entry in $ZOO_CFG_EXTRA; do
            printf '%s\n' "$entry"
        done
    } > "$partial"
    mv "$partial" "$config"
fi

if [[ ! -f "$ZOO_DATA_DIR/myid" ]]; then
    printf '%s\n' "${ZOO_MY_ID:-1}" > "$ZOO_DATA_DIR/myid"
fi

exec "$@"
