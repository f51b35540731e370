//! The simulated network between members: one FIFO link per ordered pair, as a TCP
//! connection is, with a delay drawn per frame (never overtaking the frame before it). A
//! link breaks (a partition, a reset, a crash): what was in flight on it is gone, it stays
//! down for a while, and both ends hear `PeerLost` a little later, as peer.rs reports a
//! closed connection. Frames sent on a down link are dropped (the connection they would
//! have used is gone), which is what the real links do with frames of a broken connection.

use std::collections::{BTreeMap, VecDeque};

use crate::Rng;

/// One direction of a connection.
#[derive(Default)]
struct Link {
    frames: VecDeque<(u64, Vec<u8>)>,
    down_until: u64,
}

#[derive(Default)]
pub struct Net {
    links: BTreeMap<(u64, u64), Link>,
    /// `(due, member, peer)`: the member hears that its link with `peer` closed.
    notices: Vec<(u64, u64, u64)>,
}

/// Milliseconds a frame takes at most, beside the step it is sent in.
const DELAY_MS_MAX: u64 = 5;
/// Milliseconds before a broken link is noticed.
const NOTICE_MS_MAX: u64 = 30;

impl Net {
    pub fn send(&mut self, rng: &mut Rng, now: u64, from: u64, to: u64, frame: Vec<u8>) {
        let link = self.links.entry((from, to)).or_default();
        if now < link.down_until {
            return;
        }
        let after = link.frames.back().map_or(0, |f| f.0);
        let due = (now + 1 + rng.below(DELAY_MS_MAX)).max(after);
        link.frames.push_back((due, frame));
    }

    /// Frames due by `now`, in link order, except those for members that cannot take them
    /// now (paused): they wait in their link.
    pub fn due(&mut self, now: u64, can_take: impl Fn(u64) -> bool) -> Vec<(u64, u64, Vec<u8>)> {
        let mut out = Vec::new();
        for (&(from, to), link) in &mut self.links {
            if !can_take(to) {
                continue;
            }
            while link.frames.front().is_some_and(|f| f.0 <= now) {
                let (_, frame) = link.frames.pop_front().expect("a frame");
                out.push((from, to, frame));
            }
        }
        out
    }

    /// Breaks the connection between `a` and `b` in both directions until `until`. Each end
    /// notices soon, or (a cut that sends no reset) only when the link comes back: then it
    /// hears `PeerLost` before any frame of the new connection, as a real end does when its
    /// next write meets the reset. Meanwhile only ZAB's own timeouts tell.
    pub fn break_link(&mut self, rng: &mut Rng, now: u64, a: u64, b: u64, until: u64) {
        let silent = rng.below(2) == 0;
        self.cut(rng, now, a, b, until, silent);
    }

    fn cut(&mut self, rng: &mut Rng, now: u64, a: u64, b: u64, until: u64, silent: bool) {
        for key in [(a, b), (b, a)] {
            let link = self.links.entry(key).or_default();
            link.frames.clear();
            link.down_until = link.down_until.max(until);
        }
        for (member, peer) in [(a, b), (b, a)] {
            let due = if silent {
                until
            } else {
                now + 1 + rng.below(NOTICE_MS_MAX)
            };
            self.notices.push((due, member, peer));
        }
    }

    /// Every link of `id` (a crash, or a leader resetting its links): the sockets close
    /// with a reset, so the other ends notice soon.
    pub fn isolate(&mut self, rng: &mut Rng, now: u64, id: u64, members: &[u64], until: u64) {
        for &other in members {
            if other != id {
                self.cut(rng, now, id, other, until, false);
            }
        }
    }

    /// Lost links due by `now`, as `(member, peer)`, except for members that cannot take
    /// them now (paused): they wait.
    pub fn notices_due(&mut self, now: u64, can_take: impl Fn(u64) -> bool) -> Vec<(u64, u64)> {
        let (due, later): (Vec<_>, Vec<_>) = self
            .notices
            .drain(..)
            .partition(|n| n.0 <= now && can_take(n.1));
        self.notices = later;
        due.into_iter().map(|(_, m, p)| (m, p)).collect()
    }

    /// Everything heals.
    pub fn heal(&mut self, now: u64) {
        for link in self.links.values_mut() {
            link.down_until = link.down_until.min(now);
        }
        for notice in &mut self.notices {
            notice.0 = notice.0.min(now);
        }
    }
}
