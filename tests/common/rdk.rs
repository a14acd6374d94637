//! librdkafka (the rdkafka crate) against the real broker: records with
//! keys, values and headers (any of them null), a producer whose delivery
//! reports say where each record went, a consumer that reads partitions from
//! explicit offsets with `assign` (no consumer group), and a byte-for-byte
//! comparison of what was read with what was acknowledged.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, Timestamp, TopicPartitionList};

/// Bound on every client call that waits for the broker.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One record as produced or as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub partition: i32,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A record the broker acknowledged, where it said it put it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    pub rec: Rec,
    pub offset: i64,
}

/// A record read back by a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Got {
    pub rec: Rec,
    pub offset: i64,
}

/// `count` varied records for `partitions`, tagged with `tag` so records of
/// different runs differ: partitions round-robin; null keys, null values,
/// empty values, binary bytes, a few large (compressible and not) values;
/// no headers, one header, duplicate header keys, a null header value.
pub fn records(tag: &str, count: usize, partitions: &[i32], base_timestamp: i64) -> Vec<Rec> {
    (0..count)
        .map(|i| {
            let key = match i % 7 {
                3 => None,
                5 => Some(Vec::new()),
                _ => {
                    let mut k = format!("key-{tag}-{i}").into_bytes();
                    k.extend_from_slice(&[0, 0xff, (i % 256) as u8]);
                    Some(k)
                }
            };
            let value = match i % 11 {
                5 => None,
                8 => Some(Vec::new()),
                9 => Some(noise(i as u64, 20_000 + i % 1000)),
                10 => Some(format!("{tag}:{i}:").repeat(500).into_bytes()),
                _ => {
                    let mut v = format!("value-{tag}-{i}-").into_bytes();
                    v.extend((0..(i % 97)).map(|b| (b * 7 + i) as u8));
                    Some(v)
                }
            };
            let headers = match i % 5 {
                0 => Vec::new(),
                1 => vec![("h".to_string(), Some(format!("{i}").into_bytes()))],
                2 => vec![
                    ("dup".to_string(), Some(b"first".to_vec())),
                    ("dup".to_string(), Some(b"second".to_vec())),
                    ("null".to_string(), None),
                ],
                3 => vec![
                    ("empty".to_string(), Some(Vec::new())),
                    ("bin".to_string(), Some(vec![0, 1, 2, 0xfe, 0xff])),
                ],
                _ => vec![(format!("k{i}"), Some(noise(i as u64 + 99, 300)))],
            };
            Rec {
                partition: partitions[i % partitions.len()],
                timestamp: base_timestamp + i as i64,
                key,
                value,
                headers,
            }
        })
        .collect()
}

/// Incompressible bytes, reproducible from `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Runs an rdkafka admin future to completion on this thread (the admin
/// client has its own polling thread; no async runtime is needed).
pub fn block<F: Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}

pub fn base_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "20000")
        .set("log_level", "4");
    c
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    base_config(bootstrap).create().expect("admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

/// Creates a topic and panics unless the broker created it.
pub fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = block(admin.create_topics([&topic], &admin_options()))
        .unwrap_or_else(|e| panic!("create_topics {name}: {e}"));
    assert_eq!(results, vec![Ok(name.to_string())], "create topic {name}");
}

/// One delivery report: the record's index, and its partition and offset
/// or the error.
pub type Report = (usize, Result<(i32, i64), KafkaError>);

/// Collects delivery reports: (index of the record, partition and offset
/// or the error).
#[derive(Default)]
pub struct Reports {
    pub reports: Mutex<Vec<Report>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let r = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        self.reports.lock().expect("reports").push((*index, r));
    }
}

pub type RecProducer = BaseProducer<Reports>;

/// A producer with delivery reports; `settings` override the defaults.
pub fn producer(bootstrap: &str, settings: &[(&str, &str)]) -> RecProducer {
    let mut c = base_config(bootstrap);
    c.set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("topic.metadata.propagation.max.ms", "2000");
    for (k, v) in settings {
        c.set(*k, *v);
    }
    c.create_with_context(Reports::default()).expect("producer")
}

/// An idempotent producer, acks=all.
pub fn idempotent_producer(bootstrap: &str, settings: &[(&str, &str)]) -> RecProducer {
    let mut all = vec![("enable.idempotence", "true"), ("acks", "all")];
    all.extend_from_slice(settings);
    producer(bootstrap, &all)
}

/// Queues one record; retries while librdkafka's queue is full.
pub fn send(p: &RecProducer, topic: &str, index: usize, r: &Rec) {
    let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
    for (k, v) in &r.headers {
        headers = headers.insert(Header {
            key: k,
            value: v.as_deref(),
        });
    }
    let mut record: BaseRecord<'_, [u8], [u8], Box<usize>> =
        BaseRecord::with_opaque_to(topic, Box::new(index))
            .partition(r.partition)
            .timestamp(r.timestamp)
            .headers(headers);
    if let Some(k) = &r.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &r.value {
        record = record.payload(v.as_slice());
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((
                KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                r,
            )) if Instant::now() < deadline => {
                record = r;
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("send record {index} to {topic}: {e}"),
        }
    }
}

/// Takes the delivery reports received so far.
pub fn take_reports(p: &RecProducer) -> Vec<Report> {
    std::mem::take(&mut *p.context().reports.lock().expect("reports"))
}

/// Produces `recs`, waits for every delivery report and returns what the
/// broker acknowledged, in `recs` order; panics on any failed delivery.
pub fn produce_all(p: &RecProducer, topic: &str, recs: &[Rec]) -> Vec<Acked> {
    produce_some(p, topic, recs)
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|e| {
                panic!("record {i} to {topic} partition {}: {e}", recs[i].partition)
            })
        })
        .collect()
}

/// Produces `recs` and waits for every delivery report: for each record,
/// in `recs` order, where the broker acknowledged it or the error.
pub fn produce_some(p: &RecProducer, topic: &str, recs: &[Rec]) -> Vec<Result<Acked, KafkaError>> {
    for (i, r) in recs.iter().enumerate() {
        send(p, topic, i, r);
        p.poll(Duration::ZERO);
    }
    let deadline = Instant::now() + TIMEOUT * 4;
    while p.in_flight_count() > 0 {
        assert!(
            Instant::now() < deadline,
            "flush to {topic}: reports missing"
        );
        p.poll(Duration::from_millis(50));
    }
    let reports = take_reports(p);
    assert_eq!(reports.len(), recs.len(), "one delivery report per record");
    let mut out: Vec<Option<Result<Acked, KafkaError>>> = vec![None; recs.len()];
    for (i, r) in reports {
        assert!(out[i].is_none(), "two reports for record {i}");
        out[i] = Some(r.map(|(partition, offset)| {
            assert_eq!(
                partition, recs[i].partition,
                "record {i} delivered to another partition"
            );
            Acked {
                rec: recs[i].clone(),
                offset,
            }
        }));
    }
    out.into_iter()
        .map(|a| a.expect("every record reported"))
        .collect()
}

/// Checks that each partition's acknowledged offsets are contiguous from
/// `first[partition]` (0 if absent) and in the order the records were
/// produced.
pub fn assert_contiguous_in_order(acked: &[Acked], first: &BTreeMap<i32, i64>) {
    let mut next: BTreeMap<i32, i64> = first.clone();
    for a in acked {
        let n = next.entry(a.rec.partition).or_insert(0);
        assert_eq!(
            a.offset, *n,
            "partition {}: acknowledged offsets not contiguous in produce order",
            a.rec.partition
        );
        *n += 1;
    }
}

/// A consumer for `assign` (no group membership, no commits).
/// The broker nodes a Metadata request lists, as (id, host:port), sorted.
pub fn metadata_brokers(bootstrap: &str) -> Vec<(i32, String)> {
    let c = consumer(bootstrap);
    let md = c.fetch_metadata(None, TIMEOUT).expect("metadata");
    let mut nodes: Vec<(i32, String)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect();
    nodes.sort();
    nodes
}

pub fn consumer(bootstrap: &str) -> BaseConsumer {
    base_config(bootstrap)
        .set("group.id", "shardlog-rdkafka-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

/// Converts a consumed message.
pub fn got<M: Message>(m: &M) -> Got {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    let timestamp = match m.timestamp() {
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
        Timestamp::NotAvailable => -1,
    };
    Got {
        rec: Rec {
            partition: m.partition(),
            timestamp,
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
        },
        offset: m.offset(),
    }
}

/// Polls `c` until every partition in `ends` has delivered offsets below
/// its end; returns them by partition, in delivery order. Panics on a
/// consumer error, on an offset at or past the end, or after `TIMEOUT`.
pub fn poll_until(
    c: &BaseConsumer,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, Vec<Got>> {
    let mut out: BTreeMap<i32, Vec<Got>> = ends.keys().map(|&p| (p, Vec::new())).collect();
    let deadline = Instant::now() + TIMEOUT;
    let done = |out: &BTreeMap<i32, Vec<Got>>| {
        ends.iter()
            .all(|(p, end)| out[p].last().is_some_and(|g| g.offset + 1 >= *end) || *end == 0)
    };
    while !done(&out) {
        assert!(
            Instant::now() < deadline,
            "{topic}: consumed {:?} (last offsets), wanted up to {ends:?}",
            out.iter()
                .map(|(p, v)| (*p, v.last().map(|g| g.offset)))
                .collect::<Vec<_>>()
        );
        match c.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("{topic}: consumer error: {e}"),
            Some(Ok(m)) => {
                assert_eq!(m.topic(), topic);
                let g = got(&m);
                let end = ends.get(&g.rec.partition).unwrap_or_else(|| {
                    panic!("message from unassigned partition {}", g.rec.partition)
                });
                assert!(
                    g.offset < *end,
                    "{topic}/{}: offset {} at or past the end {end}",
                    g.rec.partition,
                    g.offset
                );
                out.get_mut(&g.rec.partition).expect("assigned").push(g);
            }
        }
    }
    out
}

/// Reads `[start, end)` of each partition in `ranges` with a fresh
/// consumer assigned at `start`.
pub fn consume_ranges(
    bootstrap: &str,
    topic: &str,
    ranges: &BTreeMap<i32, (i64, i64)>,
) -> BTreeMap<i32, Vec<Got>> {
    // Empty ranges are not read (an empty partition answers nothing), but
    // are in the result.
    let mut out: BTreeMap<i32, Vec<Got>> = ranges.keys().map(|&p| (p, Vec::new())).collect();
    let wanted: BTreeMap<i32, (i64, i64)> = ranges
        .iter()
        .filter(|(_, (start, end))| start < end)
        .map(|(&p, &r)| (p, r))
        .collect();
    if wanted.is_empty() {
        return out;
    }
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for (&p, &(start, _)) in &wanted {
        tpl.add_partition_offset(topic, p, Offset::Offset(start))
            .expect("add partition");
    }
    c.assign(&tpl).expect("assign");
    let ends = wanted.iter().map(|(&p, &(_, end))| (p, end)).collect();
    out.extend(poll_until(&c, topic, &ends));
    out
}

/// The high watermark of each of `partitions`.
pub fn high_watermarks<C: Consumer>(c: &C, topic: &str, partitions: &[i32]) -> BTreeMap<i32, i64> {
    partitions
        .iter()
        .map(|&p| {
            let (low, high) = c
                .fetch_watermarks(topic, p, TIMEOUT)
                .unwrap_or_else(|e| panic!("watermarks {topic}/{p}: {e}"));
            assert_eq!(low, 0, "{topic}/{p}: log start offset");
            (p, high)
        })
        .collect()
}

/// Asserts that `got` holds, for each partition, exactly the offsets
/// `[first, end)` in order, and that every acknowledged record is at its
/// acknowledged offset byte for byte (key, value, headers, timestamp).
pub fn assert_acked_present(topic: &str, acked: &[Acked], got: &BTreeMap<i32, Vec<Got>>) {
    let mut index: BTreeMap<(i32, i64), &Got> = BTreeMap::new();
    for (p, gs) in got {
        for w in gs.windows(2) {
            assert_eq!(
                w[1].offset,
                w[0].offset + 1,
                "{topic}/{p}: consumed offsets not contiguous"
            );
        }
        for g in gs {
            index.insert((*p, g.offset), g);
        }
    }
    for (i, a) in acked.iter().enumerate() {
        let Some(g) = index.get(&(a.rec.partition, a.offset)) else {
            panic!(
                "{topic}: acknowledged record #{i} at {}/{} was not read back",
                a.rec.partition, a.offset
            );
        };
        assert_same(topic, i, a, g);
    }
}

pub fn assert_same(topic: &str, i: usize, a: &Acked, g: &Got) {
    assert_eq!(
        g.rec, a.rec,
        "{topic}: record #{i} at {}/{} differs from what was produced",
        a.rec.partition, a.offset
    );
}

/// The partition/offset ranges [0, n) that `acked` covers.
pub fn full_ranges(acked: &[Acked]) -> BTreeMap<i32, (i64, i64)> {
    let mut out: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for a in acked {
        let e = out.entry(a.rec.partition).or_insert((0, 0));
        e.1 = e.1.max(a.offset + 1);
    }
    out
}

/// Topic names in the cluster metadata.
pub fn topic_names<C: Consumer>(c: &C) -> KafkaResult<Vec<String>> {
    let md = c.fetch_metadata(None, TIMEOUT)?;
    Ok(md.topics().iter().map(|t| t.name().to_string()).collect())
}

/// The partition count Metadata reports for `topic` (None: not listed or
/// listed with an error).
pub fn partition_count<C: Consumer>(c: &C, topic: &str) -> Option<usize> {
    let md = c.fetch_metadata(None, TIMEOUT).expect("metadata");
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
}
