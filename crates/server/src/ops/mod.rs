//! What operators see and use: the four-letter words, the AdminServer, Prometheus metrics,
//! the counters they read (stats.rs, reports.rs), `zoocore status`, the stop on SIGTERM,
//! and the maintenance commands (import-zk, purge). None of it is on the request path: the
//! request path only bumps relaxed counters.

pub mod admin;
pub mod fourlw;
pub mod leadership;
pub mod metrics;
pub mod reports;
pub mod restore;
pub mod shutdown;
pub mod stats;
pub mod status;
pub mod tools;
