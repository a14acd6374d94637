//! What each core measures, and the percentiles reported from it.
//!
//! Latencies are recorded in microseconds into HdrHistograms (3 significant
//! digits, 1 us to 60 s; longer values are clamped to 60 s). A core records
//! into its own [`CoreStats`] and hands it to the coordinator once a
//! second, which adds it to the run's totals; no histogram is shared across
//! threads.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// The longest latency a histogram holds; longer values are clamped.
pub const LATENCY_US_MAX: u64 = 60_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
}

/// Records `count` values spaced evenly: the latency of records whose
/// intended send times are given, all acknowledged at `ack_us`. Runs of
/// equal latencies (records due at the same microsecond, or all of an
/// as-fast-as-possible batch) are recorded with one call.
pub fn record_from_intended(h: &mut Histogram<u64>, intended_us: &[u64], ack_us: u64) {
    // Intended times only grow within a batch: equal ends mean all equal.
    if let (Some(&first), Some(&last)) = (intended_us.first(), intended_us.last()) {
        if first == last {
            h.saturating_record_n(ack_us.saturating_sub(first), intended_us.len() as u64);
            return;
        }
    }
    let mut run_value = u64::MAX;
    let mut run_len = 0u64;
    for &t in intended_us {
        let v = ack_us.saturating_sub(t);
        if v == run_value {
            run_len += 1;
        } else {
            if run_len > 0 {
                h.saturating_record_n(run_value, run_len);
            }
            run_value = v;
            run_len = 1;
        }
    }
    if run_len > 0 {
        h.saturating_record_n(run_value, run_len);
    }
}

/// Counters and latency histograms of one core over one interval (or,
/// once merged, of the whole run).
#[derive(Debug, Clone)]
pub struct CoreStats {
    /// Records acknowledged (acks=0: written) that were produced while
    /// measuring.
    pub produced: u64,
    /// Their payload (value) bytes.
    pub produced_bytes: u64,
    /// Records acknowledged that were produced during the warm-up.
    pub warmup_acked: u64,
    /// Records that failed (error responses, disconnects, timeouts, left
    /// unsent at the end), warm-up included.
    pub failed_records: u64,
    /// Failure events by kind: a Kafka error name, `disconnect`, `timeout`,
    /// `unsent at end`.
    pub errors: BTreeMap<String, u64>,
    /// Records consumed (while measuring).
    pub consumed: u64,
    /// Record batch bytes fetched (while measuring).
    pub consumed_bytes: u64,
    /// Produced records and bytes by leader node.
    pub per_node: BTreeMap<i32, (u64, u64)>,
    /// Publish latency from the intended send time (coordinated-omission
    /// corrected).
    pub publish_intended: Histogram<u64>,
    /// Publish latency from the actual send time.
    pub publish_sent: Histogram<u64>,
    /// End-to-end latency: consumer receipt minus the producer's stamp.
    pub e2e: Histogram<u64>,
    /// How late the generator handed batches over against its schedule
    /// (fixed rates only): the load generator's own share of the latency.
    pub schedule_lateness: Histogram<u64>,
}

impl Default for CoreStats {
    fn default() -> Self {
        CoreStats {
            produced: 0,
            produced_bytes: 0,
            warmup_acked: 0,
            failed_records: 0,
            errors: BTreeMap::new(),
            consumed: 0,
            consumed_bytes: 0,
            per_node: BTreeMap::new(),
            publish_intended: new_histogram(),
            publish_sent: new_histogram(),
            e2e: new_histogram(),
            schedule_lateness: new_histogram(),
        }
    }
}

impl CoreStats {
    pub fn error(&mut self, kind: &str, failed_records: u64) {
        *self.errors.entry(kind.to_string()).or_default() += 1;
        self.failed_records += failed_records;
    }

    pub fn error_events(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &CoreStats) {
        self.produced += other.produced;
        self.produced_bytes += other.produced_bytes;
        self.warmup_acked += other.warmup_acked;
        self.failed_records += other.failed_records;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.consumed += other.consumed;
        self.consumed_bytes += other.consumed_bytes;
        for (node, (r, b)) in &other.per_node {
            let e = self.per_node.entry(*node).or_default();
            e.0 += r;
            e.1 += b;
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.publish_intended.add(&other.publish_intended);
        let _ = self.publish_sent.add(&other.publish_sent);
        let _ = self.e2e.add(&other.e2e);
        let _ = self.schedule_lateness.add(&other.schedule_lateness);
    }

    /// Hands over what was gathered and starts afresh.
    pub fn take(&mut self) -> CoreStats {
        std::mem::take(self)
    }
}

/// The reported percentiles of one latency, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    /// Percentiles of `h`; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let q = |q: f64| h.highest_equivalent(h.value_at_quantile(q));
        Percentiles {
            count: h.len(),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: h.highest_equivalent(h.max()),
            mean: h.mean(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the reported percentiles land on the right values for a known
    // distribution, within the histogram's 3-significant-digit precision,
    // and that an empty histogram reports zeros.
    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h);
        let close = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert_eq!(p.count, 10_000);
        assert!(close(p.p50, 5_000), "{p:?}");
        assert!(close(p.p90, 9_000), "{p:?}");
        assert!(close(p.p99, 9_900), "{p:?}");
        assert!(close(p.p999, 9_990), "{p:?}");
        assert!(close(p.p9999, 9_999), "{p:?}");
        assert!(close(p.max, 10_000), "{p:?}");
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max);
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }

    // Proves a single outlier shows at p99.99 and max but not at p99 (one
    // in 100,000), and that values past the bound are clamped, not lost.
    #[test]
    fn outliers_and_clamping() {
        let mut h = new_histogram();
        h.record_n(100, 99_999).unwrap();
        h.saturating_record(LATENCY_US_MAX * 10);
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 100_000);
        assert_eq!(p.p99, 100);
        assert!(p.max >= LATENCY_US_MAX);
    }

    // Proves coordinated-omission accounting charges each record from its
    // own intended time: 1,000 records due 1 us apart, acknowledged
    // together 1 ms after the last was due, span 1.0 to 2.0 ms.
    #[test]
    fn intended_times_each_count() {
        let mut h = new_histogram();
        let intended: Vec<u64> = (0..1000).collect();
        record_from_intended(&mut h, &intended, 1999);
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert_eq!(h.min(), 1000);
        assert!(p.max.abs_diff(1999) <= 2);
        assert!(p.p50.abs_diff(1500) <= 2, "{p:?}");
        // All due at once (as fast as possible): one value, counted 1000 times.
        let mut h = new_histogram();
        record_from_intended(&mut h, &[7; 1000], 10);
        assert_eq!((h.len(), h.min(), h.max()), (1000, 3, 3));
    }

    // Proves merging adds counts, bytes, errors and histograms.
    #[test]
    fn merge_adds_everything() {
        let mut a = CoreStats {
            produced: 5,
            ..Default::default()
        };
        a.error("MESSAGE_TOO_LARGE(10)", 3);
        a.publish_sent.record(10).unwrap();
        let mut b = a.clone();
        b.per_node.insert(1, (5, 500));
        a.merge(&b);
        assert_eq!(a.produced, 10);
        assert_eq!(a.failed_records, 6);
        assert_eq!(a.error_events(), 2);
        assert_eq!(a.publish_sent.len(), 2);
        assert_eq!(a.per_node[&1], (5, 500));
        assert_eq!(a.take().produced, 10);
        assert_eq!(a.produced, 0);
    }
}
