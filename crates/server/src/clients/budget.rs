//! The outstanding-request budget of a shard as a type (ZooKeeper's `globalOutstandingLimit`,
//! divided between the shards).
//!
//! A connection takes a [`Permit`] before it decodes a request off the wire, and the permit
//! travels with the request: in the session's FIFO while the request waits for the core, then
//! beside its answer's bytes in the connection's outbox, then in the connection task until the
//! write that carried the answer has completed. Dropping the permit gives the unit back, so a
//! refused handshake, a closed connection or an expired session returns what it held simply by
//! dropping what it owned: there is no `signal()` by hand anywhere.
//!
//! Each permit also counts against its connection ([`Held`]), so the connection can stop
//! decoding while it holds its share: one client that pipelines without reading its answers
//! holds at most that share of the shard's budget, never all of it.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use glommio::sync::{Semaphore, StaticPermit};

/// One shard's budget of requests in flight.
#[derive(Debug)]
pub struct Budget {
    units: Rc<Semaphore>,
    total: u64,
    /// Permits alive now: with the semaphore's free units, always `total`.
    out: Cell<u64>,
    /// `out` for other threads (mntr's zk_outstanding_requests): written only here.
    shown: Arc<AtomicU64>,
}

/// The requests in flight of one connection: the permits it took and has not yet given back.
#[derive(Debug, Default)]
pub struct Held(Cell<u32>);

impl Held {
    pub fn get(&self) -> u32 {
        self.0.get()
    }
}

/// One unit of the budget, held by one request until its answer has been written (or the
/// request is dropped). Not `Clone`: a unit is given back exactly once, by `Drop`.
#[derive(Debug)]
pub struct Permit {
    _unit: StaticPermit,
    budget: Rc<Budget>,
    held: Rc<Held>,
}

impl Budget {
    /// A budget of `total` units whose count out is mirrored into `shown`.
    pub fn new(total: u64, shown: Arc<AtomicU64>) -> Rc<Budget> {
        assert!(total > 0, "a budget of zero would never admit a request");
        Rc::new(Budget {
            units: Rc::new(Semaphore::new(total)),
            total,
            out: Cell::new(0),
            shown,
        })
    }

    fn set_out(&self, out: u64) {
        self.out.set(out);
        self.shown.store(out, Relaxed);
    }

    /// Waits for a unit; `None` once the budget is closed (the shard is stopping).
    pub async fn take(self: &Rc<Self>, held: &Rc<Held>) -> Option<Permit> {
        let unit = self.units.acquire_static_permit(1).await.ok()?;
        Some(self.permit(unit, held))
    }

    /// A unit if one is free now (and nobody waits for one).
    pub fn try_take(self: &Rc<Self>, held: &Rc<Held>) -> Option<Permit> {
        let unit = self.units.try_acquire_static_permit(1).ok()?;
        Some(self.permit(unit, held))
    }

    fn permit(self: &Rc<Self>, unit: StaticPermit, held: &Rc<Held>) -> Permit {
        self.set_out(self.out.get() + 1);
        held.0.set(held.0.get() + 1);
        self.invariants();
        Permit {
            _unit: unit,
            budget: self.clone(),
            held: held.clone(),
        }
    }

    /// Requests in flight on this shard.
    pub fn out(&self) -> u64 {
        self.out.get()
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Units out = permits alive: a unit can only come back through a permit's drop.
    fn invariants(&self) {
        debug_assert_eq!(
            self.out.get() + self.units.available(),
            self.total,
            "budget units out {} + free {} != total {}",
            self.out.get(),
            self.units.available(),
            self.total
        );
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let out = self.budget.out.get();
        assert!(out > 0, "a permit dropped with no unit out");
        // `_unit` is dropped after this body: count first, so the invariant holds once the
        // semaphore has its unit back.
        self.budget.set_out(out - 1);
        let held = self.held.0.get();
        assert!(held > 0, "a connection gave back more permits than it took");
        self.held.0.set(held - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::LocalExecutorBuilder;

    #[test]
    fn permits_return_their_unit_on_drop_and_count_per_connection() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let shown = Arc::new(AtomicU64::new(0));
                let budget = Budget::new(2, shown.clone());
                let (a, b) = (Rc::new(Held::default()), Rc::new(Held::default()));
                let p1 = budget.take(&a).await.unwrap();
                let p2 = budget.try_take(&b).unwrap();
                assert_eq!((budget.out(), a.get(), b.get()), (2, 1, 1));
                assert!(budget.try_take(&a).is_none(), "spent");
                assert_eq!(shown.load(Relaxed), 2);
                // Spent: a third request waits until a permit is dropped.
                let waiter = glommio::spawn_local({
                    let (budget, a) = (budget.clone(), a.clone());
                    async move { budget.take(&a).await.unwrap() }
                });
                glommio::yield_if_needed().await;
                drop(p1);
                let p3 = waiter.await;
                assert_eq!((budget.out(), a.get()), (2, 1));
                drop((p2, p3));
                assert_eq!((budget.out(), a.get(), b.get()), (0, 0, 0));
                assert_eq!(shown.load(Relaxed), 0);
                budget.invariants();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
