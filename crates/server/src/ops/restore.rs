//! The admin `restore` command's way to the core: the HTTP thread decodes the snapshot
//! (off the core), leaves it here with a channel for the answer, and waits; the core takes
//! it at its next wake-up or tick, steps it into the member as `Input::Restore`, and sends
//! back the member's outcome once the restored data is durable and published. One restore
//! at a time: a second one while the first waits is refused (the rate limit makes that
//! rare anyway).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use zoocore_proto::Zxid;
use zoocore_tree::Tree;

/// What the core answers: the zxid the restored data stands at, or why not.
pub type Outcome = Result<Zxid, String>;

/// A snapshot to restore and where its outcome goes.
#[derive(Debug)]
pub struct Job {
    pub tree: Tree,
    pub reply: SyncSender<Outcome>,
}

#[derive(Debug, Default)]
pub struct Mailbox {
    job: Mutex<Option<Job>>,
    /// Set after `job` is filled: what the core looks at on every wake-up.
    pending: AtomicBool,
}

impl Mailbox {
    /// Leaves `tree` for the core; the receiver gets the outcome. `None` if a restore is
    /// already waiting.
    pub fn put(&self, tree: Tree) -> Option<Receiver<Outcome>> {
        let mut slot = self.job.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return None;
        }
        let (reply, outcome) = sync_channel(1);
        *slot = Some(Job { tree, reply });
        self.pending.store(true, Ordering::Release);
        Some(outcome)
    }

    /// The core's side: the job, if any, once.
    pub fn take(&self) -> Option<Job> {
        // A load first: the core looks on every wake-up, and a plain load of a line
        // nobody writes stays in its cache.
        if !self.pending.load(Ordering::Relaxed) || !self.pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.job.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
