//! The AdminServer: ZooKeeper 3.9's HTTP commands (`GET /commands/<name>`, JSON answers),
//! so that the scripts, dashboards and probes written for ZooKeeper's Jetty AdminServer work
//! against zoocore (Commands.java and JettyAdminServer.java are the reference for names,
//! aliases, fields and status codes).
//!
//! It runs on a thread of its own with `tiny_http`, a small synchronous HTTP server: a
//! request never runs on an executor, so a slow or hostile HTTP client costs the request
//! path nothing. What the commands report is what the four-letter words report, read from
//! the same places: the shared counters (stats.rs), mntr's rows (fourlw.rs) and the listings
//! gathered from every shard (reports.rs). A command that needs the shards waits for their
//! parts as a four-letter word does, bounded.
//!
//! Every answer is a JSON object with the data, `command` (the primary name, or the name
//! asked for when unknown) and `error` (null, or the message). As in ZooKeeper, an unknown
//! command and a server that is not serving answer HTTP 200 with the error. `GET /ready`
//! answers 200 once the member serves (standalone, or synced with a leader), 503 otherwise.
//!
//! `snapshot` streams a snapshot of the newest tree version behind the root ACL and a rate
//! limit, as 3.9 does; `restore` (POST) loads one on a standalone server, behind the same
//! checks (restore.rs takes it to the core; an ensemble member refuses it). zoocore's own:
//! `request_leadership` and `yield_leadership` (leadership.rs). Not served:
//! `shed_connections`, and `system_properties` (there is no JVM).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use zoocore_tree::Tree;

use crate::reports::{self, ConnInfo, ShardReport};
use crate::shared::Shared;
use crate::stats::{self, Mode};

/// A command's answer before it is written: its data, the error and the HTTP status.
pub struct Answer {
    pub command: String,
    pub data: Map<String, Value>,
    pub error: Option<String>,
    pub status: u16,
}

impl Answer {
    fn new(command: &str) -> Self {
        Answer {
            command: command.to_string(),
            data: Map::new(),
            error: None,
            status: 200,
        }
    }

    fn failed(command: &str, error: String) -> Self {
        Answer {
            error: Some(error),
            ..Answer::new(command)
        }
    }

    fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.data.insert(key.to_string(), value.into());
    }

    /// ZooKeeper's CommandResponse.toMap: the data, then `command` and `error`.
    pub fn to_json(&self) -> Value {
        let mut map = self.data.clone();
        map.insert("command".into(), Value::from(self.command.clone()));
        map.insert(
            "error".into(),
            self.error.clone().map_or(Value::Null, Value::from),
        );
        Value::Object(map)
    }
}

type Run = fn(&Shared, &BTreeMap<String, String>, &mut Answer);

/// One command: its names (the primary first), whether it needs a serving server, and what
/// it does.
struct Command {
    names: &'static [&'static str],
    server_required: bool,
    run: Run,
}

const COMMANDS: &[Command] = &[
    Command {
        names: &["connection_stat_reset", "crst"],
        server_required: true,
        run: crst,
    },
    Command {
        names: &["configuration", "conf", "config"],
        server_required: true,
        run: conf,
    },
    Command {
        names: &["connections", "cons"],
        server_required: true,
        run: cons,
    },
    Command {
        names: &["hash"],
        server_required: true,
        run: hash,
    },
    Command {
        names: &["dirs"],
        server_required: true,
        run: dirs,
    },
    Command {
        names: &["dump"],
        server_required: true,
        run: dump,
    },
    Command {
        names: &["environment", "env", "envi"],
        server_required: false,
        run: envi,
    },
    Command {
        names: &["get_trace_mask", "gtmk"],
        server_required: false,
        run: gtmk,
    },
    Command {
        names: &["initial_configuration", "icfg"],
        server_required: true,
        run: icfg,
    },
    Command {
        names: &["is_read_only", "isro"],
        server_required: true,
        run: isro,
    },
    Command {
        names: &["last_snapshot", "lsnp"],
        server_required: true,
        run: lsnp,
    },
    Command {
        names: &["leader", "lead"],
        server_required: true,
        run: leader,
    },
    Command {
        names: &["monitor", "mntr"],
        server_required: false,
        run: monitor,
    },
    Command {
        names: &["observer_connection_stat_reset", "orst"],
        server_required: true,
        run: orst,
    },
    Command {
        names: &["observers", "obsr"],
        server_required: true,
        run: observers,
    },
    Command {
        names: &["ruok"],
        server_required: true,
        run: |_, _, _| {},
    },
    Command {
        names: &["set_trace_mask", "stmk"],
        server_required: false,
        run: stmk,
    },
    Command {
        names: &["server_stats", "srvr"],
        server_required: true,
        run: srvr,
    },
    Command {
        names: &["stats", "stat"],
        server_required: true,
        run: stat,
    },
    Command {
        names: &["stat_reset", "srst"],
        server_required: true,
        run: srst,
    },
    Command {
        names: &["voting_view"],
        server_required: true,
        run: voting_view,
    },
    Command {
        names: &["watches", "wchc"],
        server_required: true,
        run: wchc,
    },
    Command {
        names: &["watches_by_path", "wchp"],
        server_required: true,
        run: wchp,
    },
    Command {
        names: &["watch_summary", "wchs"],
        server_required: true,
        run: wchs,
    },
    Command {
        names: &["request_leadership", "rqld"],
        server_required: true,
        run: request_leadership,
    },
    Command {
        names: &["yield_leadership", "ydld"],
        server_required: true,
        run: yield_leadership,
    },
    Command {
        names: &["zabstate"],
        server_required: false,
        run: zabstate,
    },
];

/// Every name a command answers to, for tests and docs.
#[cfg(test)]
pub fn all_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().flat_map(|c| c.names.iter().copied())
}

/// The primary names, sorted, as `GET /commands` lists them.
pub fn primary_names() -> Vec<&'static str> {
    let mut names: Vec<_> = COMMANDS.iter().map(|c| c.names[0]).collect();
    names.push(SNAPSHOT_NAMES[0]);
    names.push(RESTORE_NAMES[0]);
    names.sort_unstable();
    names
}

/// Runs command `name` (Commands.runGetCommand).
pub fn run(name: &str, shared: &Shared, kwargs: &BTreeMap<String, String>) -> Answer {
    let Some(command) = COMMANDS.iter().find(|c| c.names.contains(&name)) else {
        return Answer::failed(name, format!("Unknown command: {name}"));
    };
    let primary = command.names[0];
    if command.server_required && !stats::mode().serving() {
        return Answer::failed(
            primary,
            "This ZooKeeper instance is not currently serving requests".into(),
        );
    }
    let mut answer = Answer::new(primary);
    (command.run)(shared, kwargs, &mut answer);
    answer
}

/// Starts the AdminServer's thread if `admin.enableServer` is on. A port that cannot be
/// bound is logged and the server goes on without it, as ZooKeeper does.
pub fn spawn(shared: Arc<Shared>) {
    let admin = shared.cfg.admin.clone();
    if !admin.enabled {
        return;
    }
    let server = match tiny_http::Server::http(admin.addr) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "AdminServer not started: cannot listen on {}: {e}",
                admin.addr
            );
            return;
        }
    };
    tracing::info!(
        "AdminServer on http://{}{}/<command>",
        admin.addr,
        admin.command_url
    );
    let spawned = std::thread::Builder::new()
        .name("admin-http".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                respond(request, &shared, &admin.command_url);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("AdminServer not started: {e}");
    }
}

/// What a request gets: status, content type, extra headers, body.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, content_type: &'static str, body: String) -> Self {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    fn json(answer: &Answer) -> Self {
        let body = serde_json::to_string_pretty(&answer.to_json()).unwrap_or_default() + "\n";
        Reply::text(answer.status, "application/json", body)
    }
}

/// What the router needs of a request.
pub struct Asked<'a> {
    pub method: &'a tiny_http::Method,
    pub url: &'a str,
    /// The `Authorization` header: `<scheme> <auth>` as ZooKeeper's admin auth reads it.
    pub auth: Option<&'a str>,
    pub remote: Option<SocketAddr>,
    /// A POST's body (read for `restore` only); empty otherwise.
    pub body: &'a [u8],
}

fn respond(mut request: tiny_http::Request, shared: &Shared, command_url: &str) {
    let body = read_body(&mut request);
    let auth = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let asked = Asked {
        method: request.method(),
        url: request.url(),
        auth: auth.as_deref(),
        remote: request.remote_addr().copied(),
        body: &body,
    };
    let reply = route(&asked, shared, command_url);
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let headers =
        std::iter::once(("Content-Type", reply.content_type.to_string())).chain(reply.headers);
    for (name, value) in headers {
        match tiny_http::Header::from_bytes(name, value.as_bytes()) {
            Ok(h) => response.add_header(h),
            Err(()) => tracing::debug!("admin: header {name} not sent: {value:?}"),
        }
    }
    if let Err(e) = request.respond(response) {
        tracing::debug!("admin: answer not sent: {e}");
    }
}

/// Routes one request by method and URL (path and query).
pub fn route(asked: &Asked<'_>, shared: &Shared, command_url: &str) -> Reply {
    let (path, query) = asked.url.split_once('?').unwrap_or((asked.url, ""));
    if path == "/ready" {
        return ready();
    }
    let Some(rest) = path.strip_prefix(command_url) else {
        return Reply::text(404, "text/plain", "Not Found\n".into());
    };
    let name = rest.strip_prefix('/').unwrap_or(rest);
    if RESTORE_NAMES.contains(&name) && *asked.method == tiny_http::Method::Post {
        return restore(asked, shared);
    }
    if !matches!(
        asked.method,
        tiny_http::Method::Get | tiny_http::Method::Head
    ) {
        return Reply::text(405, "text/plain", "Method Not Allowed\n".into());
    }
    if name.is_empty() {
        // JettyAdminServer's listing: a link per primary name, each line then `<br/>`.
        let body = primary_names()
            .into_iter()
            .map(|n| format!("<a href=\"{command_url}/{n}\">{n}</a>\n<br/>\n"))
            .collect();
        return Reply::text(200, "text/html", body);
    }
    let kwargs = parse_query(query);
    if SNAPSHOT_NAMES.contains(&name) {
        return snapshot(asked, shared, &kwargs);
    }
    Reply::json(&run(name, shared, &kwargs))
}

fn ready() -> Reply {
    let mode = stats::mode();
    if mode.serving() {
        Reply::text(200, "text/plain", format!("ready: {}\n", mode.name()))
    } else {
        Reply::text(503, "text/plain", format!("not ready: {}\n", mode.name()))
    }
}

/// `snapshot` and its alias: served apart from the JSON commands, since it streams bytes
/// and is behind authentication.
const SNAPSHOT_NAMES: &[&str] = &["snapshot", "snap"];

/// When the last snapshot was streamed, for the rate limit.
static SNAPSHOT_LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// SnapshotCommand: checks as ZooKeeper's runCommand does (serving, then authentication
/// and ALL permissions on `/`), then the feature flag and the rate limit, then writes a
/// snapshot of the newest tree version in memory (zoocore's own snapshot format, the file
/// zoocore loads from dataDir) and streams it with `last_zxid` and `snapshot_size` headers.
/// `?streaming=false` answers the headers and JSON only.
fn snapshot(asked: &Asked<'_>, shared: &Shared, kwargs: &BTreeMap<String, String>) -> Reply {
    let primary = SNAPSHOT_NAMES[0];
    if !stats::mode().serving() {
        return Reply::json(&Answer::failed(
            primary,
            "This ZooKeeper instance is not currently serving requests".into(),
        ));
    }
    let parts = parts(shared);
    let Some(view) = newest_view(&parts) else {
        return Reply::json(&Answer::failed(
            primary,
            "This ZooKeeper instance is not currently serving requests".into(),
        ));
    };
    if let Err((status, error)) = authorize(asked, shared, &view) {
        let mut answer = Answer::failed(primary, error.into());
        answer.status = status;
        return Reply::json(&answer);
    }
    let mut answer = Answer::new(primary);
    if !shared.cfg.admin.snapshot_enabled {
        answer.status = 503;
        return Reply::json(&answer);
    }
    {
        let mut last = SNAPSHOT_LAST.lock().unwrap_or_else(|e| e.into_inner());
        let interval = std::time::Duration::from_millis(shared.cfg.admin.rate_limit_interval_ms);
        if last.is_some_and(|at| at.elapsed() < interval) {
            answer.status = 429;
            return Reply::json(&answer);
        }
        *last = Some(std::time::Instant::now());
    }
    let bytes = match snapshot_bytes(&view) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!("admin snapshot failed: {e}");
            answer.status = 500;
            return Reply::json(&answer);
        }
    };
    let headers = vec![
        ("last_zxid", format!("0x{:x}", view.last_zxid().0)),
        ("snapshot_size", bytes.len().to_string()),
    ];
    let streaming = kwargs
        .get("streaming")
        .is_none_or(|v| v.eq_ignore_ascii_case("true"));
    if streaming {
        Reply {
            status: 200,
            content_type: "application/octet-stream",
            headers,
            body: bytes,
        }
    } else {
        Reply {
            headers,
            ..Reply::json(&answer)
        }
    }
}

/// `restore` and its alias (PostCommand in 3.9).
const RESTORE_NAMES: &[&str] = &["restore", "rest"];

/// When the last restore was accepted, for its own rate limit (3.9 gives each command one).
static RESTORE_LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// A POST's body, up to `RESTORE_BYTES_MAX` (a longer one reads as empty: refused).
fn read_body(request: &mut tiny_http::Request) -> Vec<u8> {
    use std::io::Read as _;
    if *request.method() != tiny_http::Method::Post {
        return Vec::new();
    }
    let mut body = Vec::new();
    let limit = crate::limits::RESTORE_BYTES_MAX;
    match request.as_reader().take(limit + 1).read_to_end(&mut body) {
        Ok(n) if (n as u64) <= limit => body,
        Ok(_) => {
            tracing::warn!("admin: a POST body over {limit} bytes refused");
            Vec::new()
        }
        Err(e) => {
            tracing::debug!("admin: POST body not read: {e}");
            Vec::new()
        }
    }
}

/// RestoreCommand: the checks of 3.9 in its order (serving, then authentication and ALL on
/// `/`, the feature flag, a body, the rate limit), then the snapshot is decoded here, off
/// the core, and handed to it; the answer waits until the restored data is durable and
/// served. `last_zxid` is the zxid the data stands at (a number, as 3.9 writes it). An
/// ensemble member refuses with 503: ZooKeeper would load the snapshot on this one member
/// only, and its data would silently diverge from the others'.
fn restore(asked: &Asked<'_>, shared: &Shared) -> Reply {
    let primary = RESTORE_NAMES[0];
    let not_serving = || {
        Reply::json(&Answer::failed(
            primary,
            "This ZooKeeper instance is not currently serving requests".into(),
        ))
    };
    if !stats::mode().serving() {
        return not_serving();
    }
    let Some(view) = newest_view(&parts(shared)) else {
        return not_serving();
    };
    if let Err((status, error)) = authorize(asked, shared, &view) {
        let mut answer = Answer::failed(primary, error.into());
        answer.status = status;
        return Reply::json(&answer);
    }
    let mut answer = Answer::new(primary);
    let mut refuse = |status: u16, error: Option<String>| {
        answer.status = status;
        answer.error = error;
        Reply::json(&answer)
    };
    if !shared.cfg.admin.restore_enabled {
        return refuse(503, None);
    }
    if shared.cfg.ensemble.is_some() {
        let e = zoocore_member::RestoreError::Ensemble;
        return refuse(503, Some(e.to_string()));
    }
    if asked.body.is_empty() {
        return refuse(400, Some("no snapshot in the request body".into()));
    }
    {
        let mut last = RESTORE_LAST.lock().unwrap_or_else(|e| e.into_inner());
        let interval = std::time::Duration::from_millis(shared.cfg.admin.rate_limit_interval_ms);
        if last.is_some_and(|at| at.elapsed() < interval) {
            return refuse(429, None);
        }
        *last = Some(std::time::Instant::now());
    }
    let loaded = match zoocore_storage::decode_snapshot("restore request", asked.body) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::warn!("admin restore: {e}");
            return refuse(500, Some(e.to_string()));
        }
    };
    let Some(outcome) = shared.stats.restore.put(loaded.tree) else {
        return refuse(429, Some("a restore is already under way".into()));
    };
    let wait = std::time::Duration::from_millis(crate::limits::RESTORE_WAIT_MS);
    match outcome.recv_timeout(wait) {
        Ok(Ok(zxid)) => {
            tracing::info!("admin restore: the data stands at {zxid}");
            answer.put("last_zxid", zxid.0);
            Reply::json(&answer)
        }
        Ok(Err(e)) => refuse(500, Some(e)),
        Err(_) => refuse(
            500,
            Some("the server did not finish the restore in time".into()),
        ),
    }
}

/// The snapshot file of `view`, written on an in-memory device (the data directory is the
/// core's alone).
fn snapshot_bytes(view: &Tree) -> Result<Vec<u8>, String> {
    use zoocore_storage::Device as _;
    let dev = zoocore_storage::MemDevice::new();
    zoocore_storage::write_snapshot(&dev, view).map_err(|e| e.to_string())?;
    let name = zoocore_storage::snapshot_name(view.last_zxid());
    dev.read(&name).map_err(|e| e.to_string())
}

/// Commands.runCommand's auth: the `Authorization` header is `<scheme> [<auth>]`; `digest
/// user:password` (the super digest included) and `ip` are the schemes a default ZooKeeper
/// has. The ids must have every permission on `/`, bit by bit as handleAuthorization checks.
fn authorize(asked: &Asked<'_>, shared: &Shared, view: &Tree) -> Result<(), (u16, &'static str)> {
    let Some(auth) = asked.auth else {
        return Err((401, "Auth info is missing for the command"));
    };
    let not_authenticated = (401, "Not authenticated");
    let parts: Vec<&str> = auth.split(' ').collect();
    let ids = match parts.as_slice() {
        ["digest", user_password] => zoocore_tree::digest_auth_ids(
            user_password.as_bytes(),
            shared.cfg.super_digest.as_deref(),
        )
        .map_err(|_| not_authenticated)?,
        ["ip"] | ["ip", _] => {
            let ip = asked.remote.ok_or(not_authenticated)?.ip();
            vec![zoocore_proto::Id::new("ip", ip.to_string())]
        }
        _ => return Err(not_authenticated),
    };
    let root = view.get("/").ok_or((500, "Error occurred during auth"))?;
    for bit in [1, 2, 4, 8, 16] {
        if !zoocore_tree::check_acl(root.acl(), zoocore_proto::Perms(bit), &ids) {
            return Err((403, "Not authorized"));
        }
    }
    Ok(())
}

/// `a=1&b=2` into its pairs; `%xx` and `+` decoded; the first value of a key wins, as
/// JettyAdminServer takes `getParameterMap()[key][0]`.
fn parse_query(query: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode(k))
            .or_insert_with(|| percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

fn parts(shared: &Shared) -> Vec<ShardReport> {
    shared.reports.collect_blocking()
}

/// The newest tree view any shard reported.
fn newest_view(parts: &[ShardReport]) -> Option<Tree> {
    parts
        .iter()
        .filter_map(|p| p.view.clone())
        .max_by_key(|v| v.last_zxid().0)
}

fn crst(shared: &Shared, _: &BTreeMap<String, String>, _: &mut Answer) {
    shared.reports.reset_blocking();
}

fn srst(shared: &Shared, _: &BTreeMap<String, String>, _: &mut Answer) {
    for s in &shared.stats.shards {
        s.reset();
    }
}

/// zoocore keeps no per-observer connection figures: nothing to reset.
fn orst(_: &Shared, _: &BTreeMap<String, String>, _: &mut Answer) {}

fn server_id(shared: &Shared) -> u64 {
    shared.cfg.ensemble.as_ref().map_or(0, |e| e.myid)
}

fn conf(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let c = &shared.cfg;
    a.put("client_port", c.client_addr.port());
    a.put("data_dir", c.data_dir.display().to_string());
    a.put("data_log_dir", c.data_log_dir.display().to_string());
    a.put("tick_time", c.tick_time_ms);
    a.put("max_client_cnxns", c.max_client_cnxns);
    a.put("min_session_timeout", c.min_session_timeout_ms);
    a.put("max_session_timeout", c.max_session_timeout_ms);
    a.put("server_id", server_id(shared));
    a.put("client_port_listen_backlog", -1);
    if let Some(e) = &c.ensemble {
        a.put("init_limit", e.init_limit_ticks);
        a.put("sync_limit", e.sync_limit_ticks);
        a.put("quorum_size", e.voters().len());
    }
}

/// ServerCnxn.getConnectionInfo: the brief form has the first five fields.
fn conn_json(c: &ConnInfo, brief: bool) -> Value {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), json!(c.addr.to_string()));
    m.insert("interest_ops".into(), json!(1));
    m.insert("outstanding_requests".into(), json!(c.queued));
    m.insert("packets_received".into(), json!(c.received));
    m.insert("packets_sent".into(), json!(c.sent));
    if !brief {
        m.insert("session_id".into(), json!(c.session));
        m.insert("last_operation".into(), json!(c.last_op));
        m.insert("established".into(), json!(c.established_ms));
        m.insert("session_timeout".into(), json!(c.timeout_ms));
        m.insert("last_cxid".into(), json!(c.last_cxid));
        m.insert("last_zxid".into(), json!(c.last_zxid));
        m.insert("last_response_time".into(), json!(c.last_response_ms));
        // Per-connection latency is not tracked (the server-wide figures are).
        for k in ["last_latency", "min_latency", "avg_latency", "max_latency"] {
            m.insert(k.into(), json!(0));
        }
    }
    Value::Object(m)
}

fn connections(parts: &[ShardReport], brief: bool) -> Value {
    Value::Array(
        parts
            .iter()
            .flat_map(|p| &p.conns)
            .map(|c| conn_json(c, brief))
            .collect(),
    )
}

fn cons(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    a.put("connections", connections(&parts(shared), false));
    a.put("secure_connections", json!([]));
}

/// ZooKeeper's `hash` lists the digests of recent zxids; zoocore has the digest of the
/// newest version each shard holds.
fn hash(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let digests: Vec<Value> = newest_view(&parts(shared))
        .map(|v| json!({"zxid": v.last_zxid().0, "digest": v.digest()}))
        .into_iter()
        .collect();
    a.put("digests", digests);
}

fn dirs(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    a.put(
        "datadir_size",
        crate::fourlw::dir_size(&shared.cfg.data_dir),
    );
    a.put(
        "logdir_size",
        crate::fourlw::dir_size(&shared.cfg.data_log_dir),
    );
}

/// Sessions by expiry time, and each session's ephemerals. Expiry runs on the core, so the
/// time given is the latest a session can expire if its client goes silent now (now +
/// its timeout), rounded up to the tick as ZooKeeper's expiry buckets are.
fn dump(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let mut expiry: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut ephemerals = Map::new();
    if let Some(view) = newest_view(&parts(shared)) {
        let tick = u64::from(shared.cfg.tick_time_ms).max(1);
        let now = stats::unix_ms();
        for (session, timeout_ms) in view.sessions() {
            let at = (now + timeout_ms.max(0) as u64).div_ceil(tick) * tick;
            expiry.entry(at.to_string()).or_default().push(session.0);
            let paths = view.ephemerals(session, "/");
            if !paths.is_empty() {
                ephemerals.insert(session.0.to_string(), json!(paths));
            }
        }
    }
    a.put("expiry_time_to_session_ids", json!(expiry));
    a.put("session_id_to_ephemeral_paths", ephemerals);
}

fn envi(_: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    for line in crate::fourlw::environment().lines() {
        if let Some((k, v)) = line.split_once('=') {
            a.put(k, v);
        }
    }
}

fn gtmk(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    a.put("tracemask", shared.stats.trace_mask.load(Relaxed));
}

fn stmk(shared: &Shared, kwargs: &BTreeMap<String, String>, a: &mut Answer) {
    let Some(value) = kwargs.get("traceMask") else {
        a.error = Some("setTraceMask requires long traceMask argument".into());
        return;
    };
    match value.parse::<i64>() {
        Ok(mask) => {
            shared.stats.trace_mask.store(mask, Relaxed);
            a.put("tracemask", mask);
        }
        Err(_) => {
            a.error = Some(format!(
                "setTraceMask requires long traceMask argument, got {value}"
            ))
        }
    }
}

fn icfg(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    a.put("initial_configuration", shared.cfg.text.clone());
}

fn isro(_: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    a.put("read_only", stats::mode() == Mode::ReadOnly);
}

/// The newest snapshot file of dataDir: its zxid in hex (no `0x`, as Long.toHexString) and
/// its time in seconds; -1 for both when there is none.
fn lsnp(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let newest = std::fs::read_dir(&shared.cfg.data_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let zxid = zoocore_storage::parse_snapshot_name(&name)?;
            Some((zxid.0, e))
        })
        .max_by_key(|(zxid, _)| *zxid);
    match newest {
        Some((zxid, entry)) => {
            let secs = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(-1, |d| d.as_secs() as i64);
            a.put("zxid", format!("{zxid:x}"));
            a.put("timestamp", secs);
        }
        None => {
            a.put("zxid", format!("{:x}", -1i64));
            a.put("timestamp", -1);
        }
    }
}

/// `leader`: a standalone server is not a quorum server (ZooKeeper answers this error). A
/// member knows the leader's id when it leads; a learner's view of its leader is inside the
/// ZAB driver and not exported, so it says -1 (the JSON field stays, as ZooKeeper's does
/// before a leader is known).
fn leader(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let Some(ensemble) = &shared.cfg.ensemble else {
        a.error = Some("server is not initialized".into());
        return;
    };
    let leading = stats::mode() == Mode::Leader;
    a.put("is_leader", leading);
    if leading {
        a.put("leader_id", ensemble.myid);
        let ip = ensemble.members[&ensemble.myid]
            .quorum_addr
            .ip()
            .to_string();
        a.put("leader_ip", ip);
    } else {
        a.put("leader_id", -1);
        a.put("leader_ip", "");
    }
}

/// `rqld` over HTTP: `message` says the ask was passed on; `error` why not.
fn request_leadership(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    match crate::leadership::request(&shared.stats.leadership) {
        Ok(m) => a.put("message", m),
        Err(e) => a.error = Some(e.into()),
    }
}

/// `ydld` over HTTP; `?target=N` names the follower, else the most up-to-date one.
fn yield_leadership(shared: &Shared, kwargs: &BTreeMap<String, String>, a: &mut Answer) {
    let to = match kwargs.get("target").map(|t| t.parse::<u64>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            a.error = Some("target must be a server id".into());
            return;
        }
    };
    match crate::leadership::yield_to(&shared.stats.leadership, to) {
        Ok(m) => a.put("message", m),
        Err(e) => a.error = Some(e.into()),
    }
}

/// mntr's rows as JSON: `zk_` dropped (ZooKeeper's mntr adds it to the admin names),
/// numbers as numbers.
fn monitor(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let parts = parts(shared);
    for (key, value) in crate::fourlw::monitor_rows(shared, &parts) {
        let key = key.strip_prefix("zk_").unwrap_or(key);
        a.put(key, typed(&value));
    }
    if let Some(e) = &shared.cfg.ensemble {
        a.put("quorum_size", e.voters().len());
    }
    if stats::mode() == Mode::Leader {
        a.put("leader_uptime", stats::mode_uptime_ms(shared.stats.started));
    }
}

fn typed(value: &str) -> Value {
    if let Ok(n) = value.parse::<i64>() {
        Value::from(n)
    } else if let Ok(n) = value.parse::<u64>() {
        Value::from(n)
    } else if let Ok(f) = value.parse::<f64>() {
        Value::from(f)
    } else {
        Value::from(value)
    }
}

/// Which observers are synced is known only inside the ZAB driver; zoocore reports none
/// rather than a guess.
fn observers(_: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    a.put("synced_observers", 0);
    a.put("observers", json!([]));
}

fn srvr(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let s = &shared.stats;
    let (min, avg, max) = s.latency_ms();
    let buffers = json!({"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1});
    a.put("version", crate::fourlw::VERSION);
    a.put("read_only", stats::mode() == Mode::ReadOnly);
    a.put(
        "server_stats",
        json!({
            "packets_sent": s.sum(|c| &c.packets_sent),
            "packets_received": s.sum(|c| &c.packets_received),
            "fsync_threshold_exceed_count": s.core.fsync_slow.load(Relaxed),
            "client_response_stats": buffers.clone(),
            "data_dir_size": crate::fourlw::dir_size(&shared.cfg.data_dir),
            "log_dir_size": crate::fourlw::dir_size(&shared.cfg.data_log_dir),
            "provider_null": false,
            "server_state": stats::mode().name(),
            "last_processed_zxid": s.core.last_zxid.load(Relaxed),
            "outstanding_requests": s.sum(|c| &c.outstanding),
            "avg_latency": avg,
            "max_latency": max.round() as u64,
            "min_latency": min.round() as u64,
            "num_alive_client_connections": s.sum(|c| &c.connections),
            "uptime": s.started.elapsed().as_millis() as u64,
            "auth_failed_count": 0,
            "non_mtlsremote_conn_count": 0,
            "non_mtlslocal_conn_count": 0,
        }),
    );
    a.put("client_response", buffers);
    a.put("node_count", s.core.node_count.load(Relaxed));
}

fn stat(shared: &Shared, kwargs: &BTreeMap<String, String>, a: &mut Answer) {
    srvr(shared, kwargs, a);
    a.put("connections", connections(&parts(shared), true));
    a.put("secure_connections", json!([]));
}

fn voting_view(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let mut view = Map::new();
    if let Some(e) = &shared.cfg.ensemble {
        for (id, m) in &e.members {
            let election = std::net::SocketAddr::new(m.quorum_addr.ip(), m.election_port);
            view.insert(
                id.to_string(),
                json!({
                    "server_addresses": [m.quorum_addr.to_string()],
                    "election_addresses": [election.to_string()],
                    "client_address": m.client_addr.map_or(String::new(), |c| c.to_string()),
                    "learner_type": if m.observer { "observer" } else { "participant" },
                }),
            );
        }
    }
    a.put("current_config", view);
}

fn wchc(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let by_session: Map<String, Value> = reports::by_session(&parts(shared))
        .into_iter()
        .map(|(session, paths)| (session.to_string(), json!(paths)))
        .collect();
    a.put("session_id_to_watched_paths", by_session);
}

fn wchp(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let by_path: Map<String, Value> = reports::by_path(&parts(shared))
        .into_iter()
        .map(|(path, sessions)| (path, json!(sessions)))
        .collect();
    a.put("path_to_session_ids", by_path);
}

fn wchs(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let (conns, paths, total) = reports::watch_summary(&parts(shared));
    a.put("num_connections", conns);
    a.put("num_paths", paths);
    a.put("num_total_watches", total);
}

/// ZabStateCommand: a standalone server is not voting and has no ZAB state.
fn zabstate(shared: &Shared, _: &BTreeMap<String, String>, a: &mut Answer) {
    let Some(e) = &shared.cfg.ensemble else {
        a.put("voting", false);
        a.put("zabstate", "");
        return;
    };
    let me = &e.members[&e.myid];
    let mode = stats::mode();
    let zxid = shared.stats.core.last_zxid.load(Relaxed);
    a.put("myid", e.myid);
    a.put("is_leader", mode == Mode::Leader);
    a.put("quorum_address", me.quorum_addr.to_string());
    let election = SocketAddr::new(me.quorum_addr.ip(), me.election_port);
    a.put("election_address", election.to_string());
    a.put("client_address", shared.cfg.client_addr.to_string());
    a.put("voting", !me.observer);
    a.put("last_zxid", format!("0x{zxid:x}"));
    a.put("zab_epoch", zxid >> 32);
    a.put("zab_counter", zxid & 0xffff_ffff);
    a.put(
        "zabstate",
        if mode.serving() {
            "broadcast"
        } else {
            "election"
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_the_listing_has_primaries_only() {
        let mut names: Vec<_> = all_names().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a name is given to two commands");
        let primaries = primary_names();
        assert!(!all_names().any(|n| SNAPSHOT_NAMES.contains(&n)));
        assert!(primaries.contains(&"monitor"));
        assert!(!primaries.contains(&"mntr"));
        assert!(primaries.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_query_is_decoded_and_the_first_value_wins() {
        let q = parse_query("traceMask=306&x=a%20b+c&traceMask=1&flag");
        assert_eq!(q["traceMask"], "306");
        assert_eq!(q["x"], "a b c");
        assert_eq!(q["flag"], "");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("é%C3%A9%"), "éé%");
    }

    #[test]
    fn values_keep_their_json_types() {
        assert_eq!(typed("12"), json!(12));
        assert_eq!(typed("0.5000"), json!(0.5));
        assert_eq!(typed("standalone"), json!("standalone"));
        assert_eq!(typed("0x1f"), json!("0x1f"));
    }
}
