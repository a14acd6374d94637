//! The broker's view in Prometheus's text exposition format (version
//! 0.0.4), built as metric families of the `prometheus` crate and written
//! by its text encoder. Label cardinality is capped: at most
//! `shardlog.metrics.max.topics` topics, `shardlog.metrics.max.partitions`
//! partitions (and consumer-group lag series) and
//! `shardlog.metrics.max.groups` groups are exported, the first in name
//! order; what is left out is counted.

use std::collections::{BTreeMap, HashMap};

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use super::gather::BrokerView;
use crate::stats::{HistogramSnapshot, Outcome, Phase, DURATION_BUCKETS};

/// How many series of each kind may be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub topics: usize,
    pub partitions: usize,
    pub groups: usize,
}

/// Series left out of one scrape by the caps, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub topics: u64,
    pub partitions: u64,
    pub groups: u64,
}

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Builds families one at a time.
struct Families(Vec<MetricFamily>);

impl Families {
    fn family(&mut self, name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) {
        if metrics.is_empty() {
            return;
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        f.set_metric(metrics);
        self.0.push(f);
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

fn counter(pairs: &[(&str, &str)], value: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels(pairs));
    m.set_gauge(g);
    m
}

fn histogram(pairs: &[(&str, &str)], h: &HistogramSnapshot) -> Metric {
    let mut cumulative = 0;
    let mut buckets = Vec::with_capacity(DURATION_BUCKETS.len());
    for (bound, count) in DURATION_BUCKETS.iter().zip(&h.counts) {
        cumulative += count;
        let mut b = Bucket::default();
        b.set_upper_bound(*bound);
        b.set_cumulative_count(cumulative);
        buckets.push(b);
    }
    let mut out = Histogram::default();
    out.set_bucket(buckets);
    out.set_sample_count(h.count());
    out.set_sample_sum(h.sum_seconds);
    let mut m = Metric::from_label(labels(pairs));
    m.set_histogram(out);
    m
}

/// The exposition of `view`, and what the caps left out.
pub fn encode(view: &BrokerView, caps: Caps, dropped_total: &Dropped) -> (String, Dropped) {
    let (families, dropped) = families(view, caps, dropped_total);
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# encoding failed: {e}\n"));
    (text, dropped)
}

/// Every family of the exposition. `dropped_total` is what earlier
/// scrapes left out; this scrape's share is added to it in the output.
pub fn families(
    view: &BrokerView,
    caps: Caps,
    dropped_total: &Dropped,
) -> (Vec<MetricFamily>, Dropped) {
    let mut out = Families(Vec::new());
    let mut dropped = Dropped::default();
    let shards: Vec<_> = view.shards.iter().flatten().collect();

    // Partitions and topics, first in name order up to the caps.
    let mut partitions: Vec<_> = shards.iter().flat_map(|s| &s.partitions).collect();
    partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut topics: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for p in &partitions {
        let t = topics.entry(&p.topic).or_default();
        t.0 += p.bytes_in;
        t.1 += p.bytes_out;
        t.2 += p.messages_in;
    }
    dropped.topics = topics.len().saturating_sub(caps.topics) as u64;
    let topics: Vec<_> = topics.into_iter().take(caps.topics).collect();
    let topic_metric = |pick: fn(&(u64, u64, u64)) -> u64| {
        topics
            .iter()
            .map(|(t, v)| counter(&[("topic", t)], pick(v)))
            .collect()
    };
    out.family(
        "shardlog_topic_bytes_in_total",
        "Record batch bytes appended to the topic from Produce requests (retries of an idempotent producer's batch not counted).",
        MetricType::COUNTER,
        topic_metric(|v| v.0),
    );
    out.family(
        "shardlog_topic_bytes_out_total",
        "Record batch bytes of the topic returned to Fetch requests.",
        MetricType::COUNTER,
        topic_metric(|v| v.1),
    );
    out.family(
        "shardlog_topic_messages_in_total",
        "Records appended to the topic from Produce requests.",
        MetricType::COUNTER,
        topic_metric(|v| v.2),
    );
    let high_watermarks: HashMap<(&str, i32), i64> = partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.high_watermark))
        .collect();
    dropped.partitions = partitions.len().saturating_sub(caps.partitions) as u64;
    let shown: Vec<_> = partitions.iter().take(caps.partitions).collect();
    let per_partition = |pick: &dyn Fn(&super::gather::PartitionView) -> f64| {
        shown
            .iter()
            .map(|p| {
                let index = p.partition.to_string();
                gauge(&[("topic", &p.topic), ("partition", &index)], pick(p))
            })
            .collect()
    };
    out.family(
        "shardlog_partition_high_watermark",
        "The partition's high watermark: the offset after the last record consumers can read.",
        MetricType::GAUGE,
        per_partition(&|p| p.high_watermark as f64),
    );
    out.family(
        "shardlog_partition_log_start_offset",
        "The partition's first offset still in its log.",
        MetricType::GAUGE,
        per_partition(&|p| p.log_start_offset as f64),
    );
    out.family(
        "shardlog_partition_log_end_offset",
        "The offset the partition's next appended record gets.",
        MetricType::GAUGE,
        per_partition(&|p| p.log_end_offset as f64),
    );
    out.family(
        "shardlog_partition_size_bytes",
        "Bytes of the partition's segments on disk.",
        MetricType::GAUGE,
        per_partition(&|p| p.size_bytes as f64),
    );

    // Consumer groups: members, and lag where this broker holds the
    // partition (its high watermark minus the committed offset).
    let mut groups: Vec<_> = shards.iter().flat_map(|s| &s.groups).collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    dropped.groups = groups.len().saturating_sub(caps.groups) as u64;
    groups.truncate(caps.groups);
    out.family(
        "shardlog_consumer_group_members",
        "Members of the consumer group.",
        MetricType::GAUGE,
        groups
            .iter()
            .map(|g| gauge(&[("group", &g.group_id)], g.members as f64))
            .collect(),
    );
    let mut lags = Vec::new();
    let mut lag_dropped = 0u64;
    for g in &groups {
        for (topic, partition, offset) in &g.offsets {
            let Some(hw) = high_watermarks.get(&(topic.as_str(), *partition)) else {
                continue;
            };
            if lags.len() >= caps.partitions {
                lag_dropped += 1;
                continue;
            }
            let index = partition.to_string();
            lags.push(gauge(
                &[
                    ("group", &g.group_id),
                    ("topic", topic),
                    ("partition", &index),
                ],
                (hw - offset).max(0) as f64,
            ));
        }
    }
    dropped.partitions += lag_dropped;
    out.family(
        "shardlog_consumer_group_lag",
        "Records between the group's committed offset and the partition's high watermark, for partitions on this broker.",
        MetricType::GAUGE,
        lags,
    );

    // Requests, over all shards.
    let mut apis: BTreeMap<&str, ([u64; 4], Vec<HistogramSnapshot>)> = BTreeMap::new();
    for s in &shards {
        for a in &s.requests {
            let e = apis
                .entry(a.api)
                .or_insert_with(|| ([0; 4], vec![HistogramSnapshot::default(); 4]));
            for (i, n) in a.outcomes.iter().enumerate() {
                e.0[i] += n;
            }
            for (m, h) in e.1.iter_mut().zip(&a.phases) {
                m.merge(h);
            }
        }
    }
    let mut requests = Vec::new();
    let mut durations = Vec::new();
    for (api, (outcomes, phases)) in &apis {
        for o in Outcome::ALL {
            requests.push(counter(
                &[("api", api), ("outcome", o.name())],
                outcomes[o as usize],
            ));
        }
        for p in Phase::ALL {
            durations.push(histogram(
                &[("api", api), ("phase", p.name())],
                &phases[p as usize],
            ));
        }
    }
    out.family(
        "shardlog_requests_total",
        "Requests read, by API and how they ended: answered, no_response (acks=0), refused (connection closed), abandoned (client gone first).",
        MetricType::COUNTER,
        requests,
    );
    out.family(
        "shardlog_request_duration_seconds",
        "Time of served requests on the broker by phase: queue (read to handler start), handler (handler start to response built, including disk and long-poll waits), response (built to written), total.",
        MetricType::HISTOGRAM,
        durations,
    );

    // Per shard.
    let per_shard = |pick: &dyn Fn(&super::gather::ShardView) -> f64| {
        shards
            .iter()
            .map(|s| gauge(&[("shard", &s.shard.to_string())], pick(s)))
            .collect::<Vec<_>>()
    };
    let per_shard_counter = |pick: &dyn Fn(&super::gather::ShardView) -> u64| {
        shards
            .iter()
            .map(|s| counter(&[("shard", &s.shard.to_string())], pick(s)))
            .collect::<Vec<_>>()
    };
    out.family(
        "shardlog_shard_up",
        "1 when the shard answered and serves clients, else 0.",
        MetricType::GAUGE,
        view.shards
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let up = s.as_ref().is_some_and(|s| s.serving || !view.broker_role);
                gauge(&[("shard", &i.to_string())], if up { 1.0 } else { 0.0 })
            })
            .collect(),
    );
    out.family(
        "shardlog_connections",
        "Client connections open on the shard.",
        MetricType::GAUGE,
        per_shard(&|s| s.connections as f64),
    );
    out.family(
        "shardlog_request_memory_bytes",
        "Bytes of requests read and not yet answered on the shard.",
        MetricType::GAUGE,
        per_shard(&|s| s.request_memory_bytes as f64),
    );
    out.family(
        "shardlog_request_memory_limit_bytes",
        "The shard's limit on request bytes in memory (queued.max.request.bytes).",
        MetricType::GAUGE,
        per_shard(&|s| s.request_memory_limit as f64),
    );
    out.family(
        "shardlog_shard_busy_ratio",
        "Share of the last second the shard's core spent running tasks and polling I/O (not sleeping or spinning).",
        MetricType::GAUGE,
        per_shard(&|s| s.busy_ratio),
    );
    out.family(
        "shardlog_shard_busy_seconds_total",
        "Seconds the shard's core spent running tasks and polling I/O.",
        MetricType::COUNTER,
        shards
            .iter()
            .map(|s| {
                let mut c = Counter::default();
                c.set_value(s.busy_seconds);
                let mut m = Metric::from_label(labels(&[("shard", &s.shard.to_string())]));
                m.set_counter(c);
                m
            })
            .collect(),
    );
    out.family(
        "shardlog_shard_partitions",
        "Partitions the shard owns (user topics).",
        MetricType::GAUGE,
        per_shard(&|s| s.partitions.len() as f64),
    );
    out.family(
        "shardlog_storage_write_duration_seconds",
        "O_DIRECT segment writes, submission to completion.",
        MetricType::HISTOGRAM,
        shards
            .iter()
            .map(|s| histogram(&[("shard", &s.shard.to_string())], &s.storage_write))
            .collect(),
    );
    out.family(
        "shardlog_storage_fsync_duration_seconds",
        "fdatasync of segment files for durable appends (acks=all, flush.messages), call to return.",
        MetricType::HISTOGRAM,
        shards
            .iter()
            .map(|s| histogram(&[("shard", &s.shard.to_string())], &s.storage_fsync))
            .collect(),
    );
    out.family(
        "shardlog_cache_hits_total",
        "Partition reads served from the shard's batch cache.",
        MetricType::COUNTER,
        per_shard_counter(&|s| s.cache_hits),
    );
    out.family(
        "shardlog_cache_misses_total",
        "Partition reads that went to the segment files.",
        MetricType::COUNTER,
        per_shard_counter(&|s| s.cache_misses),
    );
    let total = Dropped {
        topics: dropped_total.topics + dropped.topics,
        partitions: dropped_total.partitions + dropped.partitions,
        groups: dropped_total.groups + dropped.groups,
    };
    out.family(
        "shardlog_metrics_dropped_series_total",
        "Series left out of scrapes by the caps (shardlog.metrics.max.topics, .partitions, .groups), by kind, summed over scrapes.",
        MetricType::COUNTER,
        vec![
            counter(&[("kind", "topic")], total.topics),
            counter(&[("kind", "partition")], total.partitions),
            counter(&[("kind", "group")], total.groups),
        ],
    );
    out.family(
        "shardlog_health",
        "1 when the broker is healthy (as GET /health answers 200), else 0.",
        MetricType::GAUGE,
        vec![gauge(&[], if view.unhealthy.is_none() { 1.0 } else { 0.0 })],
    );
    (out.0, dropped)
}
