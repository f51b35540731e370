//! When a member snapshots: a randomised count of transactions, drawn from a seed the
//! driver passes in (nothing here reads the clock or the OS's randomness), so that the
//! servers of an ensemble, seeded differently, do not all snapshot at the same time.

/// A small xorshift generator for the randomised snapshot point.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        // Xorshift has one fixed point, zero; an odd seed never reaches it.
        Jitter(seed | 1)
    }

    /// The txn count at which the next snapshot starts: snapCount/2 plus a random part of
    /// snapCount/2 (ZooKeeper's SyncRequestProcessor.shouldSnapshot).
    pub fn snapshot_after(&mut self, snap_count: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let half = (snap_count / 2).max(1);
        half + self.0 % half
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_points_fall_in_the_second_half() {
        let mut j = Jitter::new(42);
        let points: Vec<u64> = (0..100).map(|_| j.snapshot_after(1000)).collect();
        assert!(points.iter().all(|&p| (500..1000).contains(&p)));
        assert!(points.iter().any(|&p| p != points[0]), "randomised");
    }

    #[test]
    fn the_same_seed_gives_the_same_points() {
        let (mut a, mut b) = (Jitter::new(7), Jitter::new(7));
        for _ in 0..10 {
            assert_eq!(a.snapshot_after(100), b.snapshot_after(100));
        }
    }
}
