//! Every limit of the server, set up front, with the relations between them asserted.

/// Transactions in one group commit (one sync, one published batch).
pub const BATCH_TXNS_MAX: usize = 1024;
/// Messages a shard may have in flight to the ZAB core, and the core to each shard.
pub const CHANNEL_CAPACITY: usize = 4096;
/// Bytes read from a socket at a time.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How often a shard reports the sessions that showed life, at most, in milliseconds.
pub const TOUCH_INTERVAL_MS_MAX: u64 = 500;
/// How long start-up waits for a busy client port to be released, in milliseconds.
pub const PORT_CLAIM_MS_MAX: u64 = 10_000;
/// The handshake must arrive within this many milliseconds of the connection.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

const _: () = assert!(
    BATCH_TXNS_MAX <= CHANNEL_CAPACITY,
    "a batch must fit in a channel"
);
const _: () = assert!(READ_CHUNK_BYTES >= 4096);

/// Frames queued for one peer link; past it, the link is reset (peer.rs).
pub const PEER_QUEUE_FRAMES: usize = 65_536;
/// Bytes gathered into one write on a peer link.
pub const PEER_WRITE_BYTES: usize = 256 * 1024;
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
