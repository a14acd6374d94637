//! The group coordinator's timers as glommio tasks: each group's armed
//! deadlines ([`Timers`]) and the coordinator's periodic loops. Lives on
//! the coordinating shard.
//!
//! A timer is a task whose handle its group keeps: re-arming or cancelling
//! it drops the old handle, which cancels the task, so a client that makes
//! a group rebalance in a loop, or members that come and go, leave no
//! sleeping tasks behind. A timer that fires detaches its own handle first
//! ([`Timers::fired`]), so that what it does (re-arming itself, removing a
//! member) cannot cancel it midway.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use glommio::Task;

use super::membership::Timer;

/// Spawns `f` on this shard to run after the current task yields; the
/// task is cancelled if the returned handle is dropped (`detach` it to
/// let it run on its own). glommio's `spawn_local` starts running a new
/// task at once, which would be inside the caller's borrow of the group
/// table: every task spawned here yields first.
pub fn spawn_later(f: impl Future<Output = ()> + 'static) -> Task<()> {
    glommio::spawn_local(async move {
        futures_lite::future::yield_now().await;
        f.await;
    })
}

/// Runs `f` on this shard after `ms` (at once if `ms` is not positive).
pub fn after(ms: i64, f: impl FnOnce() + 'static) -> Task<()> {
    spawn_later(async move {
        glommio::timer::sleep(Duration::from_millis(ms.max(0) as u64)).await;
        f();
    })
}

/// Runs `tick` on this shard every `interval` for as long as it returns
/// true.
pub fn every<F, Fut>(interval: Duration, mut tick: F)
where
    F: FnMut() -> Fut + 'static,
    Fut: Future<Output = bool>,
{
    spawn_later(async move {
        loop {
            glommio::timer::sleep(interval).await;
            if !tick().await {
                return;
            }
        }
    })
    .detach();
}

/// One group's armed timers, by key.
#[derive(Default)]
pub struct Timers {
    armed: HashMap<Timer, Task<()>>,
}

impl Timers {
    /// Arms `timer` as `task`, cancelling the one armed under that key.
    pub fn arm(&mut self, timer: Timer, task: Task<()>) {
        self.armed.insert(timer, task);
    }

    pub fn cancel(&mut self, timer: &Timer) {
        self.armed.remove(timer);
    }

    /// `timer` fired: its task lets go of its own handle, so that the step
    /// it runs may re-arm or cancel the key without cancelling the task
    /// that runs it.
    pub fn fired(&mut self, timer: &Timer) {
        if let Some(own) = self.armed.remove(timer) {
            own.detach();
        }
    }
}
