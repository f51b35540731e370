//! Moving leadership on an operator's word: the 4lw `rqld` (a follower asks to lead,
//! ClickHouse Keeper's "request leadership") and `ydld` (the leader yields to its most
//! up-to-date follower), and the admin commands `request_leadership` and
//! `yield_leadership`. The ask is left in a one-slot mailbox that the core executor empties
//! at its next tick (every 50 ms at most) and steps into the member as
//! `Input::Leadership`: the operator surfaces run on other threads and executors. The core
//! also looks at each wake-up, so that under writes the ask is seen at once; that look is
//! one relaxed load of a flag, and the lock is taken only when the flag is up. The answer says the
//! ask was passed on, as ClickHouse Keeper's does; whether leadership moved shows in
//! `srvr`'s Mode a moment later (docs/OPERATIONS.md, rolling maintenance).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use zoocore_member::LeadershipAsk;

use crate::stats::{self, Mode};

/// The ask waiting for the core; a newer one replaces it.
#[derive(Debug, Default)]
pub struct Mailbox {
    ask: Mutex<Option<LeadershipAsk>>,
    /// Set after `ask` is filled: what the core looks at on every wake-up.
    pending: AtomicBool,
}

impl Mailbox {
    fn put(&self, ask: LeadershipAsk) {
        *self.ask.lock().unwrap_or_else(|e| e.into_inner()) = Some(ask);
        self.pending.store(true, Ordering::Release);
    }

    /// The core's side: the ask, if any, once.
    pub fn take(&self) -> Option<LeadershipAsk> {
        // A load first: the core looks on every wake-up, and a plain load of a line
        // nobody writes stays in its cache.
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.ask.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// `rqld`: on a follower, passes the ask on; elsewhere, why not.
pub fn request(mailbox: &Mailbox) -> Result<&'static str, &'static str> {
    match stats::mode() {
        Mode::Follower => {
            mailbox.put(LeadershipAsk::Request);
            Ok("Sent leadership request to leader.")
        }
        Mode::Leader => Err("Failed to send leadership request to leader: this server leads."),
        _ => Err("Failed to send leadership request to leader: this server is not a follower."),
    }
}

/// `ydld`: on the leader, passes the ask on (to `to`, or the most up-to-date follower).
pub fn yield_to(mailbox: &Mailbox, to: Option<u64>) -> Result<&'static str, &'static str> {
    match stats::mode() {
        Mode::Leader => {
            mailbox.put(LeadershipAsk::Yield { to });
            Ok("Sent yield leadership request.")
        }
        _ => Err("Failed to yield leadership: this server is not the leader."),
    }
}
