# zoocore's container image, a drop-in for the official `zookeeper` image: the same ZOO_*
# variables (configs/docker/docker-entrypoint.sh writes them into /conf/zoo.cfg when it is
# missing), volumes and ports. Build:  docker build -t zoocore .
#
# zoocore runs on io_uring and registers memory for it: give the container
# `--ulimit memlock=-1` (compose: `ulimits: {memlock: -1}`); Docker's default seccomp profile
# must allow io_uring (Docker >= 25 does, or `--security-opt seccomp=unconfined`).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin zoocore \
    && cp target/release/zoocore /zoocore \
    && strip /zoocore

FROM debian:bookworm-slim
# util-linux brings setpriv, with which the entrypoint drops root for the `zoocore` user.
RUN apt-get update \
    && apt-get install -y --no-install-recommends util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system zoocore \
    && useradd --system --gid zoocore --home-dir /data --shell /usr/sbin/nologin zoocore \
    && mkdir -p /conf /data /datalog /logs \
    && chown zoocore:zoocore /conf /data /datalog /logs

ENV ZOO_CONF_DIR=/conf \
    ZOO_DATA_DIR=/data \
    ZOO_DATA_LOG_DIR=/datalog \
    ZOO_LOG_DIR=/logs \
    ZOO_TICK_TIME=2000 \
    ZOO_INIT_LIMIT=5 \
    ZOO_SYNC_LIMIT=2 \
    ZOO_AUTOPURGE_PURGEINTERVAL=0 \
    ZOO_AUTOPURGE_SNAPRETAINCOUNT=3 \
    ZOO_MAX_CLIENT_CNXNS=60 \
    ZOO_STANDALONE_ENABLED=true \
    ZOO_ADMINSERVER_ENABLED=true

COPY --from=build /zoocore /usr/local/bin/zoocore
COPY configs/docker/docker-entrypoint.sh /docker-entrypoint.sh

VOLUME ["/data", "/datalog", "/logs"]
# client, quorum, election (read, unused: zoocore elects over the quorum port), admin, metrics
EXPOSE 2181 2888 3888 8080 7000

ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["zoocore", "/conf/zoo.cfg"]
# zkServer.sh status's answer: 0 when the member serves. It asks `srvr`, which must stay in
# ZOO_4LW_COMMANDS_WHITELIST (it is in the default list).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s CMD ["zoocore", "status", "/conf/zoo.cfg"]
