//! Wall-clock time, injected so tests can drive retention, segment.ms rolls
//! and LogAppendTime from a manual clock.

use std::cell::Cell;
use std::rc::Rc;

/// A source of wall-clock milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to. Lives on one shard (`Rc`).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Rc<Cell<i64>>);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        ManualClock(Rc::new(Cell::new(now_ms)))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.set(now_ms);
    }

    pub fn advance(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}
