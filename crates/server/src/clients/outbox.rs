//! What a shard has queued for one connection: reply bytes, already framed and ready to be
//! written in one go, the budget permits of the requests those bytes answer, and whether and
//! how to close.
//!
//! Replies are encoded straight into the outbox (one copy of a znode's data between the tree
//! and the socket). The connection task is woken only when the outbox goes from empty to
//! non-empty (or a close is asked), and takes everything queued at once, so a burst of answers
//! costs one wake-up and one write. The permits go with the bytes: the task drops them once
//! the write that carried their answers has completed, which is what returns the budget.
//!
//! The bytes the task has taken and not yet written count as unsent too ([`Outbox::unsent`]),
//! so a connection whose client does not read stops decoding its requests once its unsent
//! answers pass the cap (conn.rs). What it cannot stop that way, the watch notifications of
//! other clients' writes, is bounded by a hard cap: past it the connection is closed at once
//! (its client reconnects with its session and re-registers its watches with setWatches).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use crate::budget::Permit;

/// How a connection is to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// At once, whatever is queued (the session expired, moved, or the member lost its
    /// leader): a client that does not read cannot keep its answers alive.
    Now(Cow<'static, str>),
    /// After what is queued now is written (a last answer the client needs: the reply to
    /// closeSession, a refused handshake's answer), within a short bound.
    AfterFlush(Cow<'static, str>),
}

#[derive(Debug)]
pub struct Outbox {
    bytes: RefCell<Vec<u8>>,
    permits: RefCell<Vec<Permit>>,
    /// Bytes taken by the connection task and not yet written.
    writing: Cell<usize>,
    close: RefCell<Option<Close>>,
    wake: LocalSender<()>,
    /// Unsent bytes past which the connection is closed.
    unsent_hard_max: usize,
}

impl Outbox {
    /// An outbox that closes its connection past `unsent_hard_max` unsent bytes, and the
    /// receiver its connection task waits on.
    pub fn new(unsent_hard_max: usize) -> (Outbox, LocalReceiver<()>) {
        let (wake, woken) = local_channel::new_bounded(1);
        (
            Outbox {
                bytes: RefCell::new(Vec::new()),
                permits: RefCell::new(Vec::new()),
                writing: Cell::new(0),
                close: RefCell::new(None),
                wake,
                unsent_hard_max,
            },
            woken,
        )
    }

    fn wake(&self) {
        // Full means a wake-up is already pending; the task will see this too.
        let _ = self.wake.try_send(());
    }

    /// Appends bytes written by `encode` (one or more whole frames): the answer to the request
    /// that holds `permit`, or, without one, a notification or a handshake answer.
    pub fn encode(&self, permit: Option<Permit>, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = self.bytes.borrow_mut();
        let was_empty = bytes.is_empty();
        encode(&mut bytes);
        if let Some(permit) = permit {
            self.permits.borrow_mut().push(permit);
        }
        let unsent = bytes.len() + self.writing.get();
        drop(bytes);
        if unsent > self.unsent_hard_max && !self.closing_now() {
            self.close(Close::Now(
                format!("the client does not read: {unsent} bytes unsent").into(),
            ));
        } else if was_empty && unsent > self.writing.get() {
            self.wake();
        }
    }

    pub fn push(&self, permit: Option<Permit>, frame: &[u8]) {
        self.encode(permit, |b| b.extend_from_slice(frame));
    }

    /// Asks the connection to close. A close at once overrides a pending flush.
    pub fn close(&self, how: Close) {
        let mut close = self.close.borrow_mut();
        let keep = matches!(&*close, Some(Close::Now(_)))
            || (matches!(&*close, Some(Close::AfterFlush(_)))
                && matches!(how, Close::AfterFlush(_)));
        if !keep {
            *close = Some(how);
        }
        drop(close);
        self.wake();
    }

    /// Whether the connection must end without writing anything more.
    pub fn closing_now(&self) -> bool {
        matches!(&*self.close.borrow(), Some(Close::Now(_)))
    }

    /// The close asked for, if any.
    pub fn close_reason(&self) -> Option<Close> {
        self.close.borrow().clone()
    }

    /// Answers queued or being written and not yet on the socket, in bytes.
    pub fn unsent(&self) -> usize {
        self.bytes.borrow().len() + self.writing.get()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.borrow().is_empty()
    }

    /// Moves the queued bytes into `into` (which must be empty, and keeps its allocation for
    /// the next time) and their permits into `permits`; they count as unsent until
    /// [`Outbox::written`].
    pub fn take(&self, into: &mut Vec<u8>, permits: &mut Vec<Permit>) {
        debug_assert!(into.is_empty(), "the last write was not finished");
        std::mem::swap(&mut *self.bytes.borrow_mut(), into);
        permits.append(&mut self.permits.borrow_mut());
        self.writing.set(into.len());
    }

    /// The bytes last taken are on the socket (or abandoned).
    pub fn written(&self) {
        self.writing.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_now_wins_over_a_flush() {
        let (out, _woken) = Outbox::new(1 << 20);
        out.close(Close::AfterFlush("closed".into()));
        assert!(!out.closing_now());
        out.close(Close::Now("expired".into()));
        assert!(out.closing_now());
        out.close(Close::AfterFlush("later".into()));
        assert_eq!(out.close_reason(), Some(Close::Now("expired".into())));
    }

    #[test]
    fn past_the_hard_cap_the_connection_closes_at_once() {
        let (out, _woken) = Outbox::new(10);
        out.push(None, &[0; 10]);
        assert!(!out.closing_now());
        out.push(None, &[0]);
        assert!(out.closing_now(), "11 bytes unsent of at most 10");
    }

    #[test]
    fn taken_bytes_stay_unsent_until_written() {
        let (out, _woken) = Outbox::new(1 << 20);
        out.push(None, &[1, 2, 3]);
        assert_eq!(out.unsent(), 3);
        let (mut bytes, mut permits) = (Vec::new(), Vec::new());
        out.take(&mut bytes, &mut permits);
        assert_eq!((bytes.len(), out.unsent(), out.is_empty()), (3, 3, true));
        out.push(None, &[4]);
        assert_eq!(out.unsent(), 4);
        out.written();
        assert_eq!(out.unsent(), 1);
    }
}
