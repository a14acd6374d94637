//! A one-way latch many tasks of one shard can wait on (shutdown). Each
//! waiter keeps one slot, replaced on every poll and removed on drop, so
//! waiting costs nothing until the latch is set.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    next_id: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl Latch {
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Sets the latch and wakes every waiter.
    pub fn set(&self) {
        self.set.set(true);
        let waiters: Vec<Waker> = self.waiters.borrow_mut().drain().map(|(_, w)| w).collect();
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once the latch is set.
    pub fn wait(&self) -> LatchWait<'_> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        LatchWait { latch: self, id }
    }
}

pub struct LatchWait<'a> {
    latch: &'a Latch,
    id: u64,
}

impl Future for LatchWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.set.get() {
            return Poll::Ready(());
        }
        self.latch
            .waiters
            .borrow_mut()
            .insert(self.id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for LatchWait<'_> {
    fn drop(&mut self) {
        self.latch.waiters.borrow_mut().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_every_waiter_and_forgets_dropped_ones() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let latch = std::rc::Rc::new(Latch::default());
                let mut tasks = Vec::new();
                for _ in 0..3 {
                    let l = latch.clone();
                    tasks.push(glommio::spawn_local(async move { l.wait().await }));
                }
                {
                    let dropped = latch.wait();
                    let _ = futures_lite::future::poll_once(dropped).await;
                }
                glommio::yield_if_needed().await;
                glommio::executor().yield_task_queue_now().await;
                assert_eq!(latch.waiters.borrow().len(), 3);
                latch.set();
                for t in tasks {
                    t.await;
                }
                assert!(latch.waiters.borrow().is_empty());
                latch.wait().await;
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
