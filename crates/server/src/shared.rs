//! What every executor of the server shares: configuration, counters, the listings the
//! four-letter words gather, the shards' installed views, and the client TLS set-up. Its own
//! file so that connections and operator surfaces need not import the topology that starts
//! them.

use std::sync::Arc;

use crate::config::Config;
use crate::reports::Reports;
use crate::stats::ServerStats;
use crate::views::Views;

pub struct Shared {
    pub cfg: Arc<Config>,
    pub stats: Arc<ServerStats>,
    pub reports: Arc<Reports>,
    pub views: Arc<Views>,
    /// Client TLS handshakes as set up at start (`secureClientPort`, `client.portUnification`).
    pub tls: Option<futures_rustls::TlsAcceptor>,
}
