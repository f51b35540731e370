//! What a shard has queued for one connection: reply bytes, already framed and ready to be
//! written in one go, and whether to close after them.
//!
//! Replies are encoded straight into the outbox (one copy of a znode's data between the tree
//! and the socket). The connection task is woken only when the outbox goes from empty to
//! non-empty, and takes everything queued at once, so a burst of answers costs one wake-up
//! and one write.

use std::cell::{Cell, RefCell};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

#[derive(Debug)]
pub struct Outbox {
    bytes: RefCell<Vec<u8>>,
    close: Cell<Option<&'static str>>,
    wake: LocalSender<()>,
}

impl Outbox {
    /// An outbox and the receiver its connection task waits on.
    pub fn new() -> (Outbox, LocalReceiver<()>) {
        let (wake, woken) = local_channel::new_bounded(1);
        (
            Outbox {
                bytes: RefCell::new(Vec::new()),
                close: Cell::new(None),
                wake,
            },
            woken,
        )
    }

    /// Appends bytes written by `encode` (one or more whole frames).
    pub fn encode(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = self.bytes.borrow_mut();
        let was_empty = bytes.is_empty();
        encode(&mut bytes);
        if was_empty && !bytes.is_empty() {
            // Full means a wake-up is already pending; the task will see these bytes too.
            let _ = self.wake.try_send(());
        }
    }

    pub fn push(&self, frame: &[u8]) {
        self.encode(|b| b.extend_from_slice(frame));
    }

    /// Closes the connection once what is queued now is written.
    pub fn close(&self, why: &'static str) {
        if self.close.get().is_none() {
            self.close.set(Some(why));
        }
        let _ = self.wake.try_send(());
    }

    /// Swaps the queued bytes into `into` (which must be empty), reusing its allocation.
    pub fn take(&self, into: &mut Vec<u8>) -> Option<&'static str> {
        debug_assert!(into.is_empty(), "the last write was not finished");
        std::mem::swap(&mut *self.bytes.borrow_mut(), into);
        self.close.get()
    }
}
