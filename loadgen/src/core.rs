//! What every load generator core shares: the run's phase, a clock, its
//! statistics, and a tiny single-waiter signal for its tasks.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::Plan;
use crate::stats::CoreStats;
use crate::Config;

/// Cores connect, then wait for the coordinator's start.
pub const PHASE_CONNECTING: u8 = 0;
/// Running, not measured.
pub const PHASE_WARMUP: u8 = 1;
/// Running and measured.
pub const PHASE_MEASURE: u8 = 2;
/// Producers stop, flush and drain; consumers catch up and stop.
pub const PHASE_STOP: u8 = 3;

/// State shared by the coordinator and every core (atomics only).
#[derive(Debug, Default)]
pub struct RunShared {
    pub phase: AtomicU8,
    /// When measuring began and ended, microseconds since the epoch; the
    /// consumers count a record when its stamp lies in between.
    pub measure_start_epoch_us: AtomicU64,
    pub stop_epoch_us: AtomicU64,
    /// Producer cores that have drained.
    pub producers_done: AtomicUsize,
}

impl RunShared {
    pub fn phase(&self) -> u8 {
        self.phase.load(Ordering::Relaxed)
    }
}

/// Microseconds since the core started the run, and the epoch time they
/// correspond to (sampled once, so stamps and receipts use one time base).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    base_epoch_us: u64,
}

impl Clock {
    pub fn start() -> Clock {
        let base_epoch_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Clock {
            base: Instant::now(),
            base_epoch_us,
        }
    }

    #[inline]
    pub fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    #[inline]
    pub fn epoch_us(&self, t_us: u64) -> u64 {
        self.base_epoch_us + t_us
    }

    /// Sleeps until `t_us`: a timer for the bulk of the wait, ending
    /// `precise_us` early; then the task keeps the reactor turning (other
    /// tasks and the sockets still run) until the moment comes, so waking
    /// from an idle CPU does not make the schedule late.
    pub async fn sleep_until(&self, t_us: u64, precise_us: u64) {
        let now = self.now_us();
        if t_us > now + precise_us {
            glommio::timer::sleep(Duration::from_micros(t_us - now - precise_us)).await;
        }
        while precise_us > 0 && self.now_us() < t_us {
            glommio::timer::sleep(Duration::from_micros(1)).await;
        }
    }
}

/// Current epoch time in microseconds.
pub fn epoch_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One core's view of the run.
pub struct CoreCtx {
    pub cfg: Arc<Config>,
    pub plan: Arc<Plan>,
    pub run: Arc<RunShared>,
    /// This core's place in `--cores` (and in the report).
    pub slot: usize,
    /// Set when the run starts (every time below is relative to it).
    pub clock: Cell<Clock>,
    pub stats: RefCell<CoreStats>,
    /// Connections still to be made before the core reports ready.
    pub pending_connections: Cell<usize>,
    /// The coordinator started the run and `clock` is set.
    pub started: Cell<bool>,
}

impl CoreCtx {
    pub fn clock(&self) -> Clock {
        self.clock.get()
    }

    /// Called once per connection when it is first established.
    pub fn connected(&self) {
        self.pending_connections
            .set(self.pending_connections.get().saturating_sub(1));
    }

    /// Waits until the coordinator has started the run.
    pub async fn wait_started(&self) {
        while !self.started.get() {
            glommio::timer::sleep(Duration::from_micros(200)).await;
        }
    }
}

/// Wakes one waiting task; a notification with nobody waiting is kept
/// until the next wait.
#[derive(Default)]
pub struct Signal {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
