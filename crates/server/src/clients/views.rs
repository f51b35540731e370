//! The cross-shard view barrier: an answer leaves the server only once every shard has
//! installed the view it was computed from.
//!
//! Every shard receives every commit batch, in the same order, so the k-th batch is the same
//! batch on every shard and a shard's count of installed batches names its view. Without the
//! barrier, two clients on different shards of one server could observe each other out of
//! order: A's write is answered on shard 1 while shard 2 still serves the view before it, so
//! B, told by A, reads stale data from a single standalone server. With it, the server keeps
//! the single-server behaviour clients of a standalone ZooKeeper see. With one shard the check
//! always passes at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One shard's installed-batch count, alone on its cache line so shards never contend.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

#[derive(Debug)]
pub struct Views {
    slots: Vec<Slot>,
}

impl Views {
    pub fn new(shards: usize) -> Self {
        Views {
            slots: (0..shards).map(|_| Slot::default()).collect(),
        }
    }

    /// Shard `shard` has installed its `batches`-th view.
    pub fn installed(&self, shard: usize, batches: u64) {
        self.slots[shard].0.store(batches, Ordering::Release);
    }

    /// The newest view every shard has installed.
    pub fn everywhere(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.0.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Waits until every shard has installed view `batches`.
    pub async fn wait_for(&self, batches: u64) {
        while self.everywhere() < batches {
            glommio::timer::sleep(Duration::from_micros(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_shard_sets_the_view_everywhere() {
        let v = Views::new(3);
        v.installed(0, 5);
        v.installed(1, 3);
        assert_eq!(v.everywhere(), 0);
        v.installed(2, 4);
        assert_eq!(v.everywhere(), 3);
    }
}
