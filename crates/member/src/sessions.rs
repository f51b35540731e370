//! Session bookkeeping of a member: when each session expires, ids for new sessions, and
//! their passwords (which the shards check when a client resumes a session).
//!
//! Expiry works like ZooKeeper's ExpiryQueue: deadlines are rounded up to the next tick, so a
//! tick looks at one bucket instead of every session. Time is passed in (milliseconds of the
//! driver's monotonic clock); nothing here reads the clock.

use std::collections::{BTreeMap, HashMap, HashSet};

use sha1::{Digest, Sha1};
use zoocore_proto::SessionId;

/// The secret mixed into session passwords. Fixed, like ZooKeeper's `superSecret`, so that any
/// server of an ensemble, and the same server after a restart, recognises a session's password.
const PASSWORD_SECRET: u64 = 0x5a6f_6f63_6f72_6521;

/// The 16-byte password a session gets at creation and must present to resume.
pub fn session_password(session: SessionId) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(PASSWORD_SECRET.to_be_bytes());
    h.update(session.0.to_be_bytes());
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The first session id of a server, as ZooKeeper's `initializeNextSessionId`: the server id
/// in the top byte, then the start time in milliseconds, so ids do not repeat across restarts.
pub fn first_session_id(server_id: u8, now_unix_ms: u64) -> i64 {
    let time_part = ((now_unix_ms << 24) >> 8) as i64;
    time_part | (i64::from(server_id) << 56)
}

/// Session deadlines, bucketed by tick.
#[derive(Debug)]
pub struct ExpiryQueue {
    tick_ms: u64,
    deadline: HashMap<SessionId, (u64, u32)>,
    buckets: BTreeMap<u64, HashSet<SessionId>>,
}

impl ExpiryQueue {
    pub fn new(tick_ms: u64) -> Self {
        assert!(tick_ms > 0, "tick must be positive");
        Self {
            tick_ms,
            deadline: HashMap::new(),
            buckets: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.deadline.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadline.is_empty()
    }

    fn bucket_of(&self, time_ms: u64) -> u64 {
        time_ms.div_ceil(self.tick_ms) * self.tick_ms
    }

    /// Starts tracking a session, or renews one already tracked.
    pub fn add(&mut self, session: SessionId, timeout_ms: u32, now_ms: u64) {
        self.remove(session);
        let bucket = self.bucket_of(now_ms + u64::from(timeout_ms));
        self.deadline.insert(session, (bucket, timeout_ms));
        self.buckets.entry(bucket).or_default().insert(session);
    }

    /// The session showed life: push its deadline out by its timeout. Unknown sessions are
    /// ignored (they may have expired meanwhile). A deadline that falls in the bucket the
    /// session is already in changes nothing (ZooKeeper's `ExpiryQueue.update`): with
    /// tick-sized buckets, that is nearly every request of a busy session.
    pub fn touch(&mut self, session: SessionId, now_ms: u64) {
        if let Some(&(bucket, timeout_ms)) = self.deadline.get(&session) {
            if self.bucket_of(now_ms + u64::from(timeout_ms)) != bucket {
                self.add(session, timeout_ms, now_ms);
            }
        }
    }

    pub fn remove(&mut self, session: SessionId) {
        if let Some((bucket, _)) = self.deadline.remove(&session) {
            if let Some(set) = self.buckets.get_mut(&bucket) {
                set.remove(&session);
                if set.is_empty() {
                    self.buckets.remove(&bucket);
                }
            }
        }
    }

    /// Removes and returns the sessions whose deadline has passed, in id order.
    pub fn expire(&mut self, now_ms: u64) -> Vec<SessionId> {
        let mut expired = Vec::new();
        while let Some((&bucket, _)) = self.buckets.first_key_value() {
            if bucket > now_ms {
                break;
            }
            let set = self.buckets.remove(&bucket).unwrap_or_default();
            for s in set {
                self.deadline.remove(&s);
                expired.push(s);
            }
        }
        expired.sort();
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stable_and_distinct() {
        assert_eq!(
            session_password(SessionId(7)),
            session_password(SessionId(7))
        );
        assert_ne!(
            session_password(SessionId(7)),
            session_password(SessionId(8))
        );
    }

    #[test]
    fn first_session_id_carries_server_id() {
        let id = first_session_id(3, 1_700_000_000_000);
        assert_eq!((id >> 56) & 0xff, 3);
        assert!(id > 0);
    }

    #[test]
    fn sessions_expire_after_their_timeout_unless_touched() {
        let mut q = ExpiryQueue::new(100);
        q.add(SessionId(1), 1000, 0);
        q.add(SessionId(2), 1000, 0);
        assert!(q.expire(999).is_empty());
        q.touch(SessionId(2), 500);
        assert_eq!(q.expire(1000), vec![SessionId(1)]);
        assert!(q.expire(1400).is_empty());
        assert_eq!(q.expire(1500), vec![SessionId(2)]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_touch_within_the_same_bucket_keeps_the_deadline_and_a_later_one_moves_it() {
        let mut q = ExpiryQueue::new(100);
        q.add(SessionId(1), 1000, 0);
        q.touch(SessionId(1), 30); // 1030 rounds up to the 1100 bucket
        q.touch(SessionId(1), 60); // 1060: the same bucket, nothing moves
        assert_eq!(q.buckets.len(), 1);
        assert!(q.expire(1099).is_empty());
        q.touch(SessionId(1), 150); // 1150: the 1200 bucket
        assert!(q.expire(1100).is_empty());
        assert_eq!(q.expire(1200), vec![SessionId(1)]);
        assert!(q.is_empty());
    }

    #[test]
    fn touching_an_unknown_session_does_nothing() {
        let mut q = ExpiryQueue::new(100);
        q.touch(SessionId(9), 0);
        assert_eq!(q.len(), 0);
    }
}
