//! Every limit of the server, set up front, with the relations between them asserted.

/// Transactions in one group commit (one sync, one published batch).
pub const BATCH_TXNS_MAX: usize = 1024;
/// Messages a shard may have in flight to the ZAB core, and the core to each shard.
pub const CHANNEL_CAPACITY: usize = 4096;
/// Bytes read from a socket at a time.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// A peer link's read buffer (a larger frame gets one of its own size).
pub const PEER_READ_BUFFER_BYTES: usize = 16 * 1024;
/// Whole frames of at least this many bytes in a peer link's buffer after a read are
/// decoded in place (slices of the buffer, no copy); fewer are copied out of it.
pub const PEER_SHARE_READ_MIN_BYTES: usize = 4 * 1024;
/// Bytes read at a time until a connection fills a read (then [`READ_CHUNK_BYTES`]).
pub const READ_CHUNK_BYTES_FIRST: usize = 4096;
/// How often a shard reports the sessions that showed life, at most, in milliseconds.
pub const TOUCH_INTERVAL_MS_MAX: u64 = 500;
/// How long start-up waits for a busy client port to be released, in milliseconds.
pub const PORT_CLAIM_MS_MAX: u64 = 10_000;
/// The handshake must arrive within this many milliseconds of the connection.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Requests a connection decodes and answers before it yields to the shard's other tasks.
pub const SLICE_REQUESTS: usize = 64;
/// A connection's unsent answers, in multiples of jute.maxbuffer, past which it decodes none
/// of its requests until they are written. One answer may pass the cap by at most one frame.
pub const UNSENT_MAXBUFFERS: usize = 2;
/// Unsent bytes, in multiples of jute.maxbuffer, past which a connection is closed: answers
/// stop at the cap above, so only watch notifications of other clients' writes get here.
pub const UNSENT_HARD_MAXBUFFERS: usize = 32;
/// A connection may hold at most this fraction (1/n) of its shard's budget of requests in
/// flight, so one client that pipelines without reading cannot starve the others.
pub const CONN_BUDGET_SHARE_DIVISOR: u64 = 4;
/// How long a closing connection may take to write its last answers (the reply to
/// closeSession, a refused handshake's answer) to a client that does not read them.
pub const CLOSE_FLUSH_MS: u64 = 1000;

/// The cap on a connection's unsent answers, in bytes.
pub fn unsent_bytes_max(jute_max_buffer: usize) -> usize {
    UNSENT_MAXBUFFERS * jute_max_buffer.max(READ_CHUNK_BYTES)
}

/// The unsent bytes past which a connection is closed.
pub fn unsent_bytes_hard_max(jute_max_buffer: usize) -> usize {
    UNSENT_HARD_MAXBUFFERS * jute_max_buffer.max(READ_CHUNK_BYTES)
}

/// The permits one connection may hold, of a shard budget of `budget`.
pub fn conn_permits_max(budget: u64) -> u32 {
    u32::try_from((budget / CONN_BUDGET_SHARE_DIVISOR).max(1)).unwrap_or(u32::MAX)
}

const _: () = assert!(
    BATCH_TXNS_MAX <= CHANNEL_CAPACITY,
    "a batch must fit in a channel"
);
const _: () = assert!(READ_CHUNK_BYTES >= 4096);
// A buffer is renewed before less than READ_CHUNK_BYTES_FIRST is left: a read may always
// reach the size that decodes in place.
const _: () = assert!(PEER_SHARE_READ_MIN_BYTES <= READ_CHUNK_BYTES_FIRST);
const _: () = assert!(READ_CHUNK_BYTES_FIRST < PEER_READ_BUFFER_BYTES);
const _: () = assert!(READ_CHUNK_BYTES_FIRST <= READ_CHUNK_BYTES);
const _: () = assert!(
    UNSENT_MAXBUFFERS >= 1,
    "a connection must be able to queue one answer"
);
const _: () = assert!(
    CONN_BUDGET_SHARE_DIVISOR >= 2,
    "one connection cannot take it all"
);

/// Frames queued for one peer link; past it, the link is reset (peer.rs).
pub const PEER_QUEUE_FRAMES: usize = 65_536;
/// Bytes gathered into one write on a peer link.
pub const PEER_WRITE_BYTES: usize = 256 * 1024;
/// Frames gathered into one write on a peer link: two buffers each, within the 1024 a
/// `sendmsg` takes (IOV_MAX).
pub const PEER_WRITE_FRAMES: usize = 512;
/// A peer dial gives up after this many milliseconds.
pub const PEER_CONNECT_MS: u64 = 1000;
/// Re-dial backoff of a peer link: doubles from the minimum up to the maximum.
pub const PEER_BACKOFF_MS_MIN: u64 = 20;
pub const PEER_BACKOFF_MS_MAX: u64 = 1000;
/// Events (client requests, peer messages, completions) queued for the ZAB core's driver.
pub const CORE_EVENTS_MAX: usize = 16_384;
/// Committed entries a leader keeps in memory to DIFF a learner (ZooKeeper's commitLogCount
/// is 500; entries are small and shared with the log window's `Arc`s).
pub const HISTORY_RETAIN: usize = 10_000;

const _: () = assert!(PEER_BACKOFF_MS_MIN <= PEER_BACKOFF_MS_MAX);

/// The largest snapshot the admin `restore` command reads from a request body (as large as
/// a SNAP frame may carry); a larger body is refused unread.
pub const RESTORE_BYTES_MAX: u64 = 1 << 30;
/// How long the admin `restore` command waits for the core to load and persist a snapshot.
pub const RESTORE_WAIT_MS: u64 = 120_000;
