//! Open-loop send schedule.
//!
//! At `--rate N` records/s the i-th record is *intended* to be sent at
//! `start + i / N`. Latency measured from that intended time, not from when
//! the sender actually got round to it, includes the time a record spent
//! waiting behind a stalled broker: this is the correction for coordinated
//! omission (a closed-loop sender that waits for replies silently sends
//! fewer requests during a stall and so under-reports the stall).

use std::time::Duration;

/// Intended send times for records at a fixed rate, as offsets from the
/// start of the run. A rate of 0 means "as fast as possible": every record
/// is due immediately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    records_per_sec: u64,
}

impl Schedule {
    pub fn new(records_per_sec: u64) -> Self {
        Schedule { records_per_sec }
    }

    /// Splits a total rate over `senders` (for example one per core), so
    /// the sum of their schedules is the total rate.
    pub fn split(records_per_sec: u64, senders: u64, index: u64) -> Self {
        assert!(senders > 0 && index < senders);
        let base = records_per_sec / senders;
        let extra = u64::from(index < records_per_sec % senders);
        Schedule::new(base + extra)
    }

    pub fn records_per_sec(&self) -> u64 {
        self.records_per_sec
    }

    /// When record `i` (0-based) is due, relative to the start.
    pub fn intended(&self, i: u64) -> Duration {
        if self.records_per_sec == 0 {
            return Duration::ZERO;
        }
        let nanos = u128::from(i) * 1_000_000_000 / u128::from(self.records_per_sec);
        Duration::from_nanos(nanos as u64)
    }

    /// When record `i` is due, in whole microseconds since the start (the
    /// generator's per-record form: 64-bit arithmetic while it fits).
    #[inline]
    pub fn intended_us(&self, i: u64) -> u64 {
        if self.records_per_sec == 0 {
            return 0;
        }
        match i.checked_mul(1_000_000) {
            Some(n) => n / self.records_per_sec,
            None => (u128::from(i) * 1_000_000 / u128::from(self.records_per_sec)) as u64,
        }
    }

    /// How many records are due by `elapsed` since the start.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        if self.records_per_sec == 0 {
            return u64::MAX;
        }
        let due = elapsed.as_nanos() * u128::from(self.records_per_sec) / 1_000_000_000;
        (due as u64).saturating_add(1)
    }
}

/// The two latencies of one record: from its intended send time (the
/// coordinated-omission-corrected figure) and from its actual send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub from_intended: Duration,
    pub from_sent: Duration,
}

/// Computes both latencies; times are offsets from the start of the run.
pub fn latency(intended: Duration, sent: Duration, acked: Duration) -> Latency {
    Latency {
        from_intended: acked.saturating_sub(intended),
        from_sent: acked.saturating_sub(sent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves intended times are evenly spaced at the rate and due_by is
    // their inverse.
    #[test]
    fn schedule_spacing() {
        let s = Schedule::new(1_000_000);
        assert_eq!(s.intended(0), Duration::ZERO);
        assert_eq!(s.intended(1), Duration::from_micros(1));
        assert_eq!(s.intended(1_000_000), Duration::from_secs(1));
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(10)), 11);
        for i in [0u64, 7, 999, 123_456] {
            assert_eq!(s.due_by(s.intended(i)), i + 1);
        }
        assert_eq!(Schedule::new(0).intended(99), Duration::ZERO);
        for rate in [1u64, 3, 999_983, 1_000_000, 7_000_000] {
            let s = Schedule::new(rate);
            for i in [0u64, 1, 2, 12_345, 10_000_019, 1_000_000_000] {
                assert_eq!(
                    s.intended_us(i),
                    s.intended(i).as_micros() as u64,
                    "{rate} {i}"
                );
            }
        }
    }

    // Proves splitting a rate over senders loses no records per second.
    #[test]
    fn split_preserves_total() {
        let total: u64 = (0..3)
            .map(|i| Schedule::split(1_000_001, 3, i).records_per_sec())
            .sum();
        assert_eq!(total, 1_000_001);
    }

    // Proves a stall is charged to every record scheduled during it: a
    // record due at 1 ms that could only be sent at 50 ms shows ~49 ms more
    // latency from its intended time than from its send time.
    #[test]
    fn coordinated_omission_correction() {
        let l = latency(
            Duration::from_millis(1),
            Duration::from_millis(50),
            Duration::from_millis(51),
        );
        assert_eq!(l.from_sent, Duration::from_millis(1));
        assert_eq!(l.from_intended, Duration::from_millis(50));
    }
}
