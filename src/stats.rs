//! Shard-local counters and histograms: plain `Cell`s, no atomics, no
//! locks. Each shard records into its own; the metrics endpoint
//! (`crate::metrics`) copies them out by sending each shard a job, so the
//! produce and fetch paths pay a few non-atomic adds and nothing else.

use std::cell::{Cell, RefCell};
use std::time::Duration;

/// Upper bounds (seconds) of the duration histograms' buckets: 25 µs to
/// 10 s, about three per decade. Prometheus adds `+Inf`.
pub const DURATION_BUCKETS: [f64; 19] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Bucket bounds in nanoseconds, for the comparison on the recording path.
const BOUNDS_NS: [u64; 19] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    7_500_000_000,
    10_000_000_000,
];

/// A duration histogram owned by one shard.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    counts: [Cell<u64>; DURATION_BUCKETS.len() + 1],
    sum_ns: Cell<u64>,
}

/// A copy of a [`Histogram`], sendable to another shard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations per bucket, not cumulative; the last is `+Inf`.
    pub counts: Vec<u64>,
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another shard's observations.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_seconds += other.sum_seconds;
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        let c = &self.counts[i];
        c.set(c.get() + 1);
        self.sum_ns.set(self.sum_ns.get().saturating_add(ns));
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().map(Cell::get).collect(),
            sum_seconds: self.sum_ns.get() as f64 / 1e9,
        }
    }
}

/// A counter owned by one shard.
#[derive(Debug, Default)]
pub struct Counter(Cell<u64>);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.set(self.0.get().wrapping_add(n));
    }

    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// How a request ended, as `shardlog_requests_total{outcome}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered: the response was written.
    Answered,
    /// Served without a response (Produce with acks=0).
    NoResponse,
    /// Refused: the request could not be served and the connection was
    /// closed (Kafka's answer to a malformed or unsupported request).
    Refused,
    /// The client went away before the answer was written.
    Abandoned,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Answered,
        Outcome::NoResponse,
        Outcome::Refused,
        Outcome::Abandoned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::NoResponse => "no_response",
            Outcome::Refused => "refused",
            Outcome::Abandoned => "abandoned",
        }
    }
}

/// The phases of a request's time on the broker, as
/// `shardlog_request_duration_seconds{phase}` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// From the whole request frame read to its handler's first step: time
    /// waiting for the shard's CPU.
    Queue,
    /// The handler's work, including waits for other shards, the disk
    /// (acks=all) and long polls (Fetch max.wait.ms).
    Handler,
    /// From the response built to its last byte written: time behind
    /// earlier responses of the connection and in the socket.
    Response,
    /// All of it: frame read to response written.
    Total,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Queue, Phase::Handler, Phase::Response, Phase::Total];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Queue => "queue",
            Phase::Handler => "handler",
            Phase::Response => "response",
            Phase::Total => "total",
        }
    }
}

/// One API's requests on one shard.
#[derive(Debug, Default)]
pub struct ApiStats {
    outcomes: [Counter; 4],
    phases: [Histogram; 4],
}

/// A copy of one API's [`ApiStats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiSnapshot {
    pub api: &'static str,
    /// By [`Outcome::ALL`] order.
    pub outcomes: [u64; 4],
    /// By [`Phase::ALL`] order.
    pub phases: Vec<HistogramSnapshot>,
}

/// Timestamps of one request on its way through a connection.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimes {
    pub read: std::time::Instant,
    pub started: std::time::Instant,
    pub built: std::time::Instant,
}

/// One API's name and statistics.
type NamedApiStats = (&'static str, Box<ApiStats>);

/// The request statistics of one shard, by API key.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// Indexed by API key; created on first use.
    apis: RefCell<Vec<Option<NamedApiStats>>>,
}

impl RequestStats {
    fn with<R>(&self, key: i16, name: &'static str, f: impl FnOnce(&ApiStats) -> R) -> R {
        let i = key.max(0) as usize;
        let mut apis = self.apis.borrow_mut();
        if apis.len() <= i {
            apis.resize_with(i + 1, || None);
        }
        let (_, stats) = apis[i].get_or_insert_with(|| (name, Box::default()));
        f(stats)
    }

    /// A request of API `key` ended with `outcome`; `times` when it was
    /// served (answered or not).
    pub fn finished(
        &self,
        key: i16,
        name: &'static str,
        outcome: Outcome,
        times: Option<(RequestTimes, std::time::Instant)>,
    ) {
        self.with(key, name, |s| {
            s.outcomes[outcome as usize].add(1);
            if let Some((t, written)) = times {
                let since =
                    |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a);
                s.phases[Phase::Queue as usize].record(since(t.read, t.started));
                s.phases[Phase::Handler as usize].record(since(t.started, t.built));
                s.phases[Phase::Response as usize].record(since(t.built, written));
                s.phases[Phase::Total as usize].record(since(t.read, written));
            }
        })
    }

    pub fn snapshot(&self) -> Vec<ApiSnapshot> {
        self.apis
            .borrow()
            .iter()
            .flatten()
            .map(|(api, s)| ApiSnapshot {
                api,
                outcomes: std::array::from_fn(|i| s.outcomes[i].get()),
                phases: s.phases.iter().map(Histogram::snapshot).collect(),
            })
            .collect()
    }
}

/// The storage statistics of one shard: every partition log of the shard
/// records into the same one.
#[derive(Debug, Default)]
pub struct StorageStats {
    /// O_DIRECT segment writes, submission to completion.
    pub write: Histogram,
    /// fdatasync of a segment file, call to return.
    pub fsync: Histogram,
    /// Reads served from the shard's batch cache.
    pub cache_hits: Counter,
    /// Reads that went to the segment files.
    pub cache_misses: Counter,
}

/// What one partition moved, counted on its shard.
#[derive(Debug, Default)]
pub struct PartitionCounters {
    /// Record batch bytes appended from Produce requests.
    pub bytes_in: Counter,
    /// Records appended from Produce requests.
    pub messages_in: Counter,
    /// Record batch bytes returned to Fetch requests.
    pub bytes_out: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves observations land in the bucket whose bound is the first at
    // or above them, and the snapshot keeps count and sum.
    #[test]
    fn histogram_buckets_and_sum() {
        let h = Histogram::default();
        h.record(Duration::from_micros(10));
        h.record(Duration::from_micros(25));
        h.record(Duration::from_micros(26));
        h.record(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.counts.len(), DURATION_BUCKETS.len() + 1);
        assert_eq!(s.counts[0], 2);
        assert_eq!(s.counts[1], 1);
        assert_eq!(*s.counts.last().unwrap(), 1);
        assert_eq!(s.count(), 4);
        assert!((s.sum_seconds - 60.000_061).abs() < 1e-9);
        for (b, ns) in DURATION_BUCKETS.iter().zip(BOUNDS_NS) {
            assert_eq!((b * 1e9).round() as u64, ns);
        }
    }

    // Proves per-API stats keep outcomes and phases apart.
    #[test]
    fn request_stats_by_api() {
        let r = RequestStats::default();
        let t0 = std::time::Instant::now();
        let times = RequestTimes {
            read: t0,
            started: t0 + Duration::from_micros(30),
            built: t0 + Duration::from_millis(3),
        };
        r.finished(
            0,
            "Produce",
            Outcome::Answered,
            Some((times, t0 + Duration::from_millis(4))),
        );
        r.finished(0, "Produce", Outcome::Abandoned, None);
        r.finished(3, "Metadata", Outcome::Refused, None);
        let s = r.snapshot();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].api, "Produce");
        assert_eq!(s[0].outcomes, [1, 0, 0, 1]);
        assert_eq!(s[0].phases[Phase::Queue as usize].counts[1], 1);
        assert_eq!(s[0].phases[Phase::Handler as usize].counts[7], 1);
        assert_eq!(s[0].phases[Phase::Total as usize].count(), 1);
        assert_eq!(s[1].outcomes, [0, 0, 1, 0]);
    }
}
