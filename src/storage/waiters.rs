//! Single-threaded wake-up primitives for one shard's tasks.
//!
//! Everything here lives on one shard: plain `Cell`/`RefCell`, no atomics.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Wakes one task that waits for "something changed". A notification sent
/// while nobody waits is remembered, so no wake-up is lost.
#[derive(Default)]
pub struct Signal {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn notify(&self) {
        self.pending.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Resolves after the next (or a remembered) notification.
    pub fn wait(&self) -> SignalWait<'_> {
        SignalWait { signal: self }
    }
}

pub struct SignalWait<'a> {
    signal: &'a Signal,
}

impl Future for SignalWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.pending.replace(false) {
            return Poll::Ready(());
        }
        *self.signal.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The result a waiter receives: `Ok` once the watched offset passed its
/// target, or the error that made the log give up.
pub type WaitResult<E> = Result<(), E>;

struct Slot<E> {
    result: RefCell<Option<WaitResult<E>>>,
    waker: RefCell<Option<Waker>>,
}

/// Waiters on a monotonically increasing offset (written, durable, high
/// watermark). Each waiter resolves once the offset exceeds its target.
pub struct OffsetWaiters<E> {
    // Kept sorted by target so completion pops from the front.
    waiters: RefCell<VecDeque<(i64, Rc<Slot<E>>)>>,
    // Queue length at which abandoned waiters are swept out.
    sweep_at: Cell<usize>,
}

/// Sweeping starts at this many queued waiters, then at twice what a sweep
/// leaves, so sweeping costs O(1) per wait.
const SWEEP_AT_MIN: usize = 64;

impl<E> Default for OffsetWaiters<E> {
    fn default() -> Self {
        OffsetWaiters {
            waiters: RefCell::new(VecDeque::new()),
            sweep_at: Cell::new(SWEEP_AT_MIN),
        }
    }
}

impl<E: Clone> OffsetWaiters<E> {
    /// Registers a waiter that resolves once the offset is greater than
    /// `target`. The caller checks the current value first.
    pub fn wait_beyond(&self, target: i64) -> OffsetWait<E> {
        let slot = Rc::new(Slot {
            result: RefCell::new(None),
            waker: RefCell::new(None),
        });
        let mut waiters = self.waiters.borrow_mut();
        if waiters.len() >= self.sweep_at.get() {
            // A waiter whose future was dropped (a long poll that timed
            // out) holds the only other reference to its slot.
            waiters.retain(|(_, slot)| Rc::strong_count(slot) > 1);
            self.sweep_at.set((2 * waiters.len()).max(SWEEP_AT_MIN));
        }
        let at = waiters.partition_point(|(t, _)| *t <= target);
        waiters.insert(at, (target, slot.clone()));
        OffsetWait { slot }
    }

    /// Completes every waiter whose target is below `offset`.
    pub fn advance_to(&self, offset: i64) {
        let mut done = Vec::new();
        {
            let mut waiters = self.waiters.borrow_mut();
            while waiters.front().is_some_and(|(t, _)| *t < offset) {
                done.push(waiters.pop_front().expect("front exists").1);
            }
        }
        for slot in done {
            complete(&slot, Ok(()));
        }
    }

    /// Fails every waiter with `error`.
    pub fn fail_all(&self, error: E) {
        let all: Vec<_> = self.waiters.borrow_mut().drain(..).collect();
        for (_, slot) in all {
            complete(&slot, Err(error.clone()));
        }
    }

    /// The smallest target still waited for by a live waiter.
    pub fn lowest_target(&self) -> Option<i64> {
        self.waiters
            .borrow()
            .iter()
            .find(|(_, slot)| Rc::strong_count(slot) > 1)
            .map(|(t, _)| *t)
    }

    pub fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }
}

fn complete<E>(slot: &Slot<E>, result: WaitResult<E>) {
    *slot.result.borrow_mut() = Some(result);
    if let Some(waker) = slot.waker.borrow_mut().take() {
        waker.wake();
    }
}

/// Future returned by [`OffsetWaiters::wait_beyond`].
pub struct OffsetWait<E> {
    slot: Rc<Slot<E>>,
}

impl<E> Future for OffsetWait<E> {
    type Output = WaitResult<E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(result) = self.slot.result.borrow_mut().take() {
            return Poll::Ready(result);
        }
        *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Bytes of buffer space handed out strictly in request order: a request
/// that does not fit blocks every later one, so appends that reserve space
/// keep their order, and a large request is never starved by small ones.
/// A request larger than the whole capacity is clamped to it.
pub struct FifoSpace {
    capacity: u64,
    available: Cell<u64>,
    queue: RefCell<VecDeque<(u64, Rc<SpaceSlot>)>>,
    closed: Cell<bool>,
}

#[derive(Default)]
struct SpaceSlot {
    // Some(true): granted; Some(false): refused because the space closed.
    outcome: Cell<Option<bool>>,
    waker: RefCell<Option<Waker>>,
}

impl FifoSpace {
    pub fn new(capacity: u64) -> Rc<Self> {
        Rc::new(FifoSpace {
            capacity,
            available: Cell::new(capacity),
            queue: RefCell::new(VecDeque::new()),
            closed: Cell::new(false),
        })
    }

    pub fn available(&self) -> u64 {
        self.available.get()
    }

    /// Waits for `units` (clamped to the capacity); resolves to the units
    /// granted, or `None` once the space is closed.
    pub fn acquire(self: &Rc<Self>, units: u64) -> SpaceWait {
        let units = units.min(self.capacity);
        let slot = Rc::new(SpaceSlot::default());
        if self.closed.get() {
            slot.outcome.set(Some(false));
        } else if self.queue.borrow().is_empty() && self.available.get() >= units {
            self.available.set(self.available.get() - units);
            slot.outcome.set(Some(true));
        } else {
            self.queue.borrow_mut().push_back((units, slot.clone()));
        }
        SpaceWait {
            space: self.clone(),
            slot,
            units,
            taken: false,
        }
    }

    /// Returns units and grants waiting requests, in order, while they fit.
    pub fn release(&self, units: u64) {
        self.available.set(self.available.get() + units);
        debug_assert!(self.available.get() <= self.capacity);
        self.grant();
    }

    fn grant(&self) {
        loop {
            let granted = {
                let mut queue = self.queue.borrow_mut();
                // Requests abandoned before their grant leave the queue.
                while queue.front().is_some_and(|(_, s)| Rc::strong_count(s) == 1) {
                    queue.pop_front();
                }
                match queue.front() {
                    Some(&(units, _)) if units <= self.available.get() => {
                        self.available.set(self.available.get() - units);
                        queue.pop_front().expect("front exists").1
                    }
                    _ => return,
                }
            };
            granted.outcome.set(Some(true));
            let waker = granted.waker.borrow_mut().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Refuses every waiting and future request.
    pub fn close(&self) {
        self.closed.set(true);
        self.refuse_waiting();
    }

    /// Refuses the requests waiting now; later ones are served as usual.
    pub fn refuse_waiting(&self) {
        let waiting: Vec<_> = self.queue.borrow_mut().drain(..).collect();
        for (_, slot) in waiting {
            slot.outcome.set(Some(false));
            if let Some(waker) = slot.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// Future returned by [`FifoSpace::acquire`]. Dropped after its grant but
/// before being polled, it gives the units back.
pub struct SpaceWait {
    space: Rc<FifoSpace>,
    slot: Rc<SpaceSlot>,
    units: u64,
    taken: bool,
}

impl Future for SpaceWait {
    type Output = Option<u64>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u64>> {
        match self.slot.outcome.get() {
            Some(true) => {
                self.taken = true;
                Poll::Ready(Some(self.units))
            }
            Some(false) => {
                self.taken = true;
                Poll::Ready(None)
            }
            None => {
                *self.slot.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for SpaceWait {
    fn drop(&mut self) {
        if !self.taken && self.slot.outcome.get() == Some(true) {
            self.space.release(self.units);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(f).poll(&mut cx)
    }

    // Proves space is granted strictly in request order: a small request
    // behind a large one waits even though it would fit.
    #[test]
    fn fifo_space_grants_in_order() {
        let space = FifoSpace::new(10_000);
        let mut a = space.acquire(4_000);
        let mut b = space.acquire(5_000);
        assert_eq!(poll(&mut a), Poll::Ready(Some(4_000)));
        assert_eq!(poll(&mut b), Poll::Ready(Some(5_000)));
        let mut big = space.acquire(6_000);
        let mut small = space.acquire(500);
        assert_eq!(poll(&mut big), Poll::Pending);
        assert_eq!(poll(&mut small), Poll::Pending, "no overtaking");
        space.release(4_000);
        assert_eq!(poll(&mut big), Poll::Pending, "6000 > 5000 free");
        assert_eq!(poll(&mut small), Poll::Pending, "still no overtaking");
        space.release(5_000);
        assert_eq!(poll(&mut big), Poll::Ready(Some(6_000)));
        assert_eq!(poll(&mut small), Poll::Ready(Some(500)));
        // Clamped to capacity; refused once closed.
        space.release(6_000 + 500);
        let mut huge = space.acquire(1 << 40);
        assert_eq!(poll(&mut huge), Poll::Ready(Some(10_000)));
        space.close();
        assert_eq!(poll(&mut space.acquire(1)), Poll::Ready(None));
    }

    // Proves an abandoned request neither keeps its units nor blocks the
    // queue.
    #[test]
    fn fifo_space_abandoned_requests() {
        let space = FifoSpace::new(100);
        let mut held = space.acquire(100);
        assert!(poll(&mut held).is_ready());
        let queued = space.acquire(50);
        let mut next = space.acquire(60);
        drop(queued);
        space.release(100);
        assert_eq!(poll(&mut next), Poll::Ready(Some(60)));
        let granted_unpolled = space.acquire(40);
        drop(granted_unpolled);
        assert_eq!(space.available(), 40);
    }

    // Proves waiters whose futures were dropped are swept out instead of
    // piling up while the offset does not move.
    #[test]
    fn abandoned_offset_waiters_are_swept() {
        let waiters: OffsetWaiters<()> = OffsetWaiters::default();
        for _ in 0..100_000 {
            drop(waiters.wait_beyond(5));
        }
        assert!(waiters.len() <= 2 * SWEEP_AT_MIN);
        let mut live = waiters.wait_beyond(7);
        assert_eq!(waiters.lowest_target(), Some(7));
        waiters.advance_to(8);
        assert_eq!(poll(&mut live), Poll::Ready(Ok(())));
    }
}
