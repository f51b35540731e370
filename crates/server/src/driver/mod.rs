//! The driver around the member (crates/member): what carries out its effects with glommio
//! and io_uring and holds no decision of its own. The core executor's loop is in
//! topology.rs (`core_main`); here are recovery at start and the io_uring fdatasync
//! (durable.rs), an ensemble member's start-up state and epoch files (ensemble.rs), and the
//! links to the other members (peer.rs) and their TLS (peer_tls.rs), and the snapshot's
//! low-priority writer (snapshot.rs).

pub mod durable;
pub mod ensemble;
pub mod peer;
pub mod peer_tls;
pub mod snapshot;
