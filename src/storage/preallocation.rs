//! How much disk a shard's partition logs allocate ahead of what they have
//! written.
//!
//! An O_DIRECT append into allocated space needs no block allocation in the
//! write path, so the active segment is fallocated ahead of its end. A
//! partition's steps start small and double with each allocation up to the
//! topic's step (32 MiB), so a partition that has written one record holds
//! 64 KiB and a busy one gets the large steps that keep fallocate calls
//! rare. The bytes held ahead are summed over the shard and capped
//! (`shardlog.preallocate.bytes.max`): past the cap a partition allocates
//! only what its write needs. Apache Kafka preallocates nothing by default
//! (`log.preallocate=false`); here the cap bounds what ten thousand
//! mostly idle partitions can take.
//!
//! The count is conservative: a log is charged what it allocated ahead at
//! its last allocation, and keeps that charge while its writes use the space
//! up, until its next allocation, seal or close.

use std::cell::Cell;

/// A partition's first step; each allocation doubles it.
pub const STEP_MIN_BYTES: u64 = 64 << 10;

/// The shard's budget of bytes allocated ahead of written data.
#[derive(Debug)]
pub struct Preallocation {
    budget: u64,
    ahead: Cell<u64>,
}

impl Preallocation {
    pub fn new(budget: u64) -> Self {
        Preallocation {
            budget,
            ahead: Cell::new(0),
        }
    }

    /// Bytes held ahead by the shard's logs.
    pub fn ahead(&self) -> u64 {
        self.ahead.get()
    }

    /// Bytes the shard may still allocate ahead.
    pub fn room(&self) -> u64 {
        self.budget.saturating_sub(self.ahead.get())
    }

    /// A log that held `charged` asks to hold `wanted` instead: returns what
    /// it may hold (at most `wanted`), which becomes its charge.
    pub fn charge(&self, charged: &mut u64, wanted: u64) -> u64 {
        let others = self.ahead.get() - *charged;
        let granted = wanted.min(self.budget.saturating_sub(others));
        self.ahead.set(others + granted);
        *charged = granted;
        granted
    }

    /// A log gives its charge back (its segment was trimmed or closed).
    pub fn release(&self, charged: &mut u64) {
        self.ahead.set(self.ahead.get() - *charged);
        *charged = 0;
    }
}

/// The next step of a log whose last step was `last` (0: none yet), at
/// most `max`.
pub fn next_step(last: u64, max: u64) -> u64 {
    (last * 2).clamp(STEP_MIN_BYTES, max.max(STEP_MIN_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves steps start small and double to the topic's step.
    #[test]
    fn steps_grow_with_writes() {
        let mut step = 0;
        let mut steps = Vec::new();
        for _ in 0..12 {
            step = next_step(step, 32 << 20);
            steps.push(step >> 10);
        }
        assert_eq!(
            steps,
            [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 32768, 32768]
        );
    }

    // Proves the shard's total ahead never exceeds the budget, a log's new
    // charge replaces its old one, and released charges are reusable.
    #[test]
    fn budget_bounds_the_total() {
        let shard = Preallocation::new(100);
        let (mut a, mut b) = (0, 0);
        assert_eq!(shard.charge(&mut a, 60), 60);
        assert_eq!(shard.charge(&mut b, 60), 40, "only the rest of the budget");
        assert_eq!(shard.ahead(), 100);
        assert_eq!(
            shard.charge(&mut a, 10),
            10,
            "a's new charge replaces its old"
        );
        assert_eq!(shard.ahead(), 50);
        assert_eq!(shard.charge(&mut b, 90), 90);
        assert_eq!(shard.ahead(), 100);
        shard.release(&mut b);
        assert_eq!((b, shard.ahead()), (0, 10));
        assert_eq!(shard.charge(&mut b, 0), 0);
        assert_eq!(shard.ahead(), 10);
    }
}
