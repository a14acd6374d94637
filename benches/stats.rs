//! What the metrics cost a request: the shard-local recording done per
//! request (`RequestStats::finished`: an outcome counter and four
//! histogram observations) and per partition append (three counter adds),
//! next to the baseline of reading the clock once, which every request
//! already does several times. See benches/README.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shardlog::stats::{Histogram, Outcome, PartitionCounters, RequestStats, RequestTimes};

fn stats(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    g.bench_function("clock_read_baseline", |b| {
        b.iter(|| black_box(Instant::now()))
    });
    let h = Histogram::default();
    let mut ns = 0u64;
    g.bench_function("histogram_record", |b| {
        b.iter(|| {
            ns = (ns + 7919) % 20_000_000;
            h.record(black_box(Duration::from_nanos(ns)))
        })
    });
    let r = RequestStats::default();
    let t0 = Instant::now();
    let times = RequestTimes {
        read: t0,
        started: t0 + Duration::from_micros(20),
        built: t0 + Duration::from_micros(400),
    };
    let written = t0 + Duration::from_micros(450);
    g.bench_function("request_finished", |b| {
        b.iter(|| {
            r.finished(
                0,
                "Produce",
                Outcome::Answered,
                black_box(Some((times, written))),
            )
        })
    });
    let p = PartitionCounters::default();
    g.bench_function("partition_counters", |b| {
        b.iter(|| {
            p.bytes_in.add(black_box(16_384));
            p.messages_in.add(black_box(160));
            p.bytes_out.add(black_box(16_384));
        })
    });
    g.finish();
}

criterion_group!(benches, stats);
criterion_main!(benches);
