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
}

impl<E> Default for OffsetWaiters<E> {
    fn default() -> Self {
        OffsetWaiters {
            waiters: RefCell::new(VecDeque::new()),
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

    /// The smallest target still waited for.
    pub fn lowest_target(&self) -> Option<i64> {
        self.waiters.borrow().front().map(|(t, _)| *t)
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
