//! The simulated network between members: one FIFO link per ordered pair, as a TCP
//! connection is, with a delay drawn per frame (never overtaking the frame before it). A
//! link breaks (a partition, a reset, a crash): what was in flight on it is gone, it stays
//! down for a while, and both ends hear `PeerLost` soon, or (a cut that sends no reset)
//! only when the link comes back, as peer.rs reports a closed connection. Frames sent on a
//! down link are dropped, which is what the real links do with frames of a broken
//! connection.
//!
//! A partition is a set of groups: every link between two groups breaks until the partition
//! heals. The datagram mode (scenario.rs) also loses, duplicates and reorders single ZAB
//! frames while faults are on. After the heal no new frame is lost, duplicated or reordered,
//! but frames delayed before it may still arrive late, as stray datagrams do.

use std::collections::{BTreeMap, VecDeque};

use crate::rng::Rng;
use crate::scenario::Network;

/// One direction of a connection.
#[derive(Default)]
struct Link {
    frames: VecDeque<(u64, Vec<u8>)>,
    down_until: u64,
}

/// What the datagram mode did, for the report.
#[derive(Default, Debug, Clone, Copy)]
pub struct Mischief {
    pub lost: usize,
    pub duplicated: usize,
    pub reordered: usize,
}

pub struct Net {
    links: BTreeMap<(u64, u64), Link>,
    /// Frames delivered out of their link's order: `(due, from, to, frame)`.
    strays: Vec<(u64, u64, u64, Vec<u8>)>,
    /// `(due, member, peer)`: the member hears that its link with `peer` closed.
    notices: Vec<(u64, u64, u64)>,
    network: Network,
    /// After the heal: links deliver in order whatever the mode.
    calm: bool,
    pub mischief: Mischief,
}

/// Milliseconds a frame takes at most, beside the step it is sent in.
const DELAY_MS_MAX: u64 = 5;
/// Milliseconds before a broken link is noticed.
const NOTICE_MS_MAX: u64 = 30;
/// Milliseconds a reordered frame may arrive late.
const STRAY_MS_MAX: u64 = 300;

impl Net {
    pub fn new(network: Network) -> Net {
        Net {
            links: BTreeMap::new(),
            strays: Vec::new(),
            notices: Vec::new(),
            network,
            calm: false,
            mischief: Mischief::default(),
        }
    }

    /// Queues `frame` on the link `from` → `to`. `zab`: a ZAB frame, which the datagram mode
    /// may lose, duplicate or reorder.
    pub fn send(&mut self, rng: &mut Rng, now: u64, from: u64, to: u64, frame: Vec<u8>, zab: bool) {
        let link = self.links.entry((from, to)).or_default();
        if now < link.down_until {
            return;
        }
        let mut copies = 1;
        if let (
            Network::Datagram {
                loss_percent,
                dup_percent,
                reorder_percent,
            },
            true,
            false,
        ) = (self.network, zab, self.calm)
        {
            if rng.percent(loss_percent) {
                self.mischief.lost += 1;
                return;
            }
            if rng.percent(reorder_percent) {
                self.mischief.reordered += 1;
                let due = now + 1 + rng.below(STRAY_MS_MAX);
                self.strays.push((due, from, to, frame));
                return;
            }
            if rng.percent(dup_percent) {
                self.mischief.duplicated += 1;
                copies = 2;
            }
        }
        for _ in 0..copies {
            let after = link.frames.back().map_or(0, |f| f.0);
            let due = (now + 1 + rng.below(DELAY_MS_MAX)).max(after);
            link.frames.push_back((due, frame.clone()));
        }
    }

    /// Frames due by `now`, in link order, except those for members that cannot take them
    /// now (paused): they wait.
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
        let (due, later): (Vec<_>, Vec<_>) = self
            .strays
            .drain(..)
            .partition(|s| s.0 <= now && can_take(s.2));
        self.strays = later;
        out.extend(
            due.into_iter()
                .map(|(_, from, to, frame)| (from, to, frame)),
        );
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
        self.strays
            .retain(|s| (s.1, s.2) != (a, b) && (s.1, s.2) != (b, a));
        for (member, peer) in [(a, b), (b, a)] {
            let due = if silent {
                until
            } else {
                now + 1 + rng.below(NOTICE_MS_MAX)
            };
            self.notices.push((due, member, peer));
        }
    }

    /// Splits the members into `groups` until `until`: every link between two groups
    /// breaks, each silently or not.
    pub fn partition(&mut self, rng: &mut Rng, now: u64, groups: &BTreeMap<u64, u32>, until: u64) {
        for (&a, ga) in groups {
            for (&b, gb) in groups {
                if a < b && ga != gb {
                    self.break_link(rng, now, a, b, until);
                }
            }
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

    /// Everything heals, and frames sent from now on keep their link's order.
    pub fn heal(&mut self, now: u64) {
        self.calm = true;
        for link in self.links.values_mut() {
            link.down_until = link.down_until.min(now);
        }
        for notice in &mut self.notices {
            notice.0 = notice.0.min(now);
        }
    }
}
