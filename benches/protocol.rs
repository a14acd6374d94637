//! Request decoding and Fetch response encoding as the broker does them,
//! each next to a baseline in the same run (see `benches/README.md`).
//!
//! * `produce_decode/*`: a Produce request frame (v9, real v2 record
//!   batches) through the broker's path: header parse and version check,
//!   the body guard, then kafka-protocol's decode (records stay slices of
//!   the frame). Baselines: kafka-protocol alone (header + body, no guard)
//!   and one memcpy of the frame.
//! * `fetch_request_decode/*`: a Fetch request frame the same way (v12 as
//!   librdkafka sends it, v4 as kafka-python does).
//! * `fetch_response_encode/*`: the hand encoder
//!   (`protocol::fetch_encode`), which references cached batches, against
//!   kafka-protocol's encoder, which needs each partition's records as one
//!   `Bytes` and copies them into the frame.
//!
//! No network, no disk.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use shardlog::handler::produce::Produce;
use shardlog::handler::{Decoded, Limits, PartitionApi};
use shardlog::protocol::fetch_encode::{encode_fetch_response, FetchPartitionOut, FetchTopicOut};
use shardlog::protocol::frame::{encode_response, parse_request, Parsed};
use shardlog::record::records::BatchBuilder;
use shardlog::router::APIS;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn topic_name(i: usize) -> String {
    format!("bench-topic-{i}")
}

/// An uncompressed v2 batch of about `bytes` bytes made of 1000-byte
/// values (records are opaque to the decoder; real batches keep the
/// frame's shape honest).
fn batch(bytes: usize) -> Bytes {
    let value = vec![b'v'; 1000];
    let mut b = BatchBuilder::new(1_700_000_000_000);
    let per_record = 1000 + 12;
    for i in 0..(bytes.saturating_sub(61) / per_record).max(1) {
        b.push_value(i as i64, &value);
    }
    Bytes::from(b.build())
}

/// A request frame as the connection hands it to `parse_request`: header
/// and body, without the size prefix.
fn request_frame<R: Request + Encodable>(request: &R, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bench-client")));
    let mut buf = BytesMut::new();
    header
        .encode(
            &mut buf,
            ApiKey::try_from(R::KEY)
                .unwrap()
                .request_header_version(version),
        )
        .unwrap();
    request.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn produce_request(partitions: usize, batch_bytes: usize) -> ProduceRequest {
    let records = batch(batch_bytes);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic_name(0)));
    td.partition_data = (0..partitions)
        .map(|p| {
            let mut pd = PartitionProduceData::default();
            pd.index = p as i32;
            pd.records = Some(records.clone());
            pd
        })
        .collect();
    let mut r = ProduceRequest::default();
    r.acks = -1;
    r.timeout_ms = 30_000;
    r.topic_data = vec![td];
    r
}

fn fetch_request(topics: usize, partitions: usize) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.replica_id = (-1).into();
    r.max_wait_ms = 500;
    r.min_bytes = 1;
    r.max_bytes = 52_428_800;
    r.topics = (0..topics)
        .map(|t| {
            let mut ft = FetchTopic::default();
            ft.topic = TopicName(StrBytes::from_string(topic_name(t)));
            ft.partitions = (0..partitions)
                .map(|p| {
                    let mut fp = FetchPartition::default();
                    fp.partition = p as i32;
                    fp.current_leader_epoch = 0;
                    fp.fetch_offset = 1_234_567;
                    fp.log_start_offset = -1;
                    fp.partition_max_bytes = MIB as i32;
                    fp
                })
                .collect();
            ft
        })
        .collect();
    r
}

/// The broker's decode path: header and version check, body guard,
/// element budget (`parse_request` with the router's API table), then the
/// decode the API's handler runs (the table's `decode` entry).
fn broker_decode(frame: &Bytes) {
    match parse_request(frame.clone(), APIS).unwrap() {
        Parsed::Request(spec, req) => (spec.decode)(&req).unwrap(),
        Parsed::ApiVersionsTooNew { .. } => unreachable!("not an ApiVersions request"),
    }
}

/// The records of the first partition as Produce's handler decodes them.
fn first_records(frame: &Bytes) -> Bytes {
    let Parsed::Request(_, req) = parse_request(frame.clone(), APIS).unwrap() else {
        unreachable!("a Produce request")
    };
    match Produce::decode(&req, &Limits::default()).unwrap() {
        Decoded::Route { topics, .. } => topics[0].partitions[0].1.clone().unwrap(),
        Decoded::Answer(_) => unreachable!("an accepted Produce request"),
    }
}

/// kafka-protocol alone on the same frame: header, then body.
fn crate_decode<R: Decodable>(frame: &Bytes, key: ApiKey, version: i16) -> R {
    let mut buf = frame.clone();
    RequestHeader::decode(&mut buf, key.request_header_version(version)).unwrap();
    R::decode(&mut buf, version).unwrap()
}

fn bench_produce_decode(c: &mut Criterion) {
    for (name, partitions, batch_bytes) in [("1p_16KiB", 1, 16 * KIB), ("8p_1MiB", 8, MIB)] {
        let version = 9;
        let frame = request_frame(&produce_request(partitions, batch_bytes), version);
        let records = first_records(&frame);
        // Records come out as a slice of the frame, not a copy.
        assert!(frame.as_ptr_range().contains(&records.as_ptr()));

        let mut g = c.benchmark_group(format!("produce_decode/{name}_v{version}"));
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function("broker_path", |b| {
            b.iter(|| broker_decode(black_box(&frame)))
        });
        g.bench_function("crate_decode", |b| {
            b.iter(|| crate_decode::<ProduceRequest>(black_box(&frame), ApiKey::Produce, version))
        });
        let mut copy = vec![0u8; frame.len()];
        g.bench_function("memcpy_frame", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&frame));
                black_box(&copy);
            })
        });
        g.finish();
    }
}

fn bench_fetch_request_decode(c: &mut Criterion) {
    for (name, topics, partitions, version) in [
        ("1p_v12", 1, 1, 12),
        ("100p_v12", 10, 10, 12),
        ("100p_v4", 10, 10, 4),
    ] {
        let frame = request_frame(&fetch_request(topics, partitions), version);
        broker_decode(&frame);
        let decoded: FetchRequest = crate_decode(&frame, ApiKey::Fetch, version);
        assert_eq!(
            decoded.topics.len() * decoded.topics[0].partitions.len(),
            topics * partitions
        );

        let mut g = c.benchmark_group(format!("fetch_request_decode/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("broker_path", |b| {
            b.iter(|| broker_decode(black_box(&frame)))
        });
        g.bench_function("crate_decode", |b| {
            b.iter(|| crate_decode::<FetchRequest>(black_box(&frame), ApiKey::Fetch, version))
        });
        g.finish();
    }
}

/// What the fetch handler has in hand before encoding: per partition, the
/// batches the cache returned.
struct FetchReads {
    topics: Vec<(String, Vec<Vec<Bytes>>)>,
}

impl FetchReads {
    fn new(topics: usize, partitions: usize, batches: usize, batch_bytes: usize) -> Self {
        let one = batch(batch_bytes);
        FetchReads {
            topics: (0..topics)
                .map(|t| {
                    let parts = (0..partitions)
                        .map(|_| (0..batches).map(|_| one.clone()).collect())
                        .collect();
                    (topic_name(t), parts)
                })
                .collect(),
        }
    }

    fn payload_bytes(&self) -> usize {
        self.topics
            .iter()
            .flat_map(|(_, parts)| parts.iter().flatten())
            .map(Bytes::len)
            .sum()
    }

    /// The hand encoder's input, as the handler builds it: the batches are
    /// cloned (refcounts) into the output structs.
    fn hand_topics(&self) -> Vec<FetchTopicOut> {
        self.topics
            .iter()
            .map(|(name, parts)| FetchTopicOut {
                name: TopicName(StrBytes::from_string(name.clone())),
                partitions: parts
                    .iter()
                    .enumerate()
                    .map(|(i, batches)| FetchPartitionOut {
                        partition_index: i as i32,
                        error_code: 0,
                        high_watermark: 1_000_000,
                        last_stable_offset: 1_000_000,
                        log_start_offset: 0,
                        aborted_transactions: None,
                        preferred_read_replica: -1,
                        records: batches.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The hand encoder: the frame references the batches.
    fn hand_encode(&self, version: i16) -> Vec<Bytes> {
        encode_fetch_response(version, 7, 0, 0, &self.hand_topics())
    }

    /// kafka-protocol's input: each partition's batches must become one
    /// `Bytes` (a copy when there are several).
    fn crate_response(&self) -> FetchResponse {
        let mut response = FetchResponse::default();
        response.responses = self
            .topics
            .iter()
            .map(|(name, parts)| {
                let mut t = FetchableTopicResponse::default();
                t.topic = TopicName(StrBytes::from_string(name.clone()));
                t.partitions = parts
                    .iter()
                    .enumerate()
                    .map(|(i, batches)| {
                        let mut p = PartitionData::default();
                        p.partition_index = i as i32;
                        p.high_watermark = 1_000_000;
                        p.last_stable_offset = 1_000_000;
                        p.log_start_offset = 0;
                        p.aborted_transactions = None;
                        p.preferred_read_replica = (-1).into();
                        p.records = Some(match batches.len() {
                            1 => batches[0].clone(),
                            _ => {
                                let mut all =
                                    BytesMut::with_capacity(batches.iter().map(Bytes::len).sum());
                                for b in batches {
                                    all.extend_from_slice(b);
                                }
                                all.freeze()
                            }
                        });
                        p
                    })
                    .collect();
                t
            })
            .collect();
        response
    }

    /// kafka-protocol's encoder, which copies the records into the frame.
    fn crate_encode(&self, version: i16) -> Bytes {
        encode_response(ApiKey::Fetch, version, 7, &self.crate_response()).unwrap()
    }
}

fn bench_fetch_response_encode(c: &mut Criterion) {
    for (name, topics, partitions, batches, batch_bytes, version) in [
        ("1p_16x64KiB_v12", 1, 1, 16, 64 * KIB, 12),
        ("1p_1x1MiB_v12", 1, 1, 1, MIB, 12),
        ("100p_16KiB_v12", 10, 10, 1, 16 * KIB, 12),
        ("100p_empty_v12", 10, 10, 0, 0, 12),
        ("1p_16x64KiB_v4", 1, 1, 16, 64 * KIB, 4),
    ] {
        let reads = FetchReads::new(topics, partitions, batches, batch_bytes);
        // Both encoders write the same frame.
        let hand: Vec<u8> = reads.hand_encode(version).concat();
        let by_crate = reads.crate_encode(version);
        assert!(hand[..] == by_crate[..], "{name}: the encoders disagree");

        let mut g = c.benchmark_group(format!("fetch_response_encode/{name}"));
        match reads.payload_bytes() {
            0 => g.throughput(Throughput::Elements(1)),
            n => g.throughput(Throughput::Bytes(n as u64)),
        };
        g.bench_function("hand_encoder", |b| {
            b.iter(|| black_box(&reads).hand_encode(version))
        });
        g.bench_function("crate_encoder", |b| {
            b.iter(|| black_box(&reads).crate_encode(version))
        });
        // The encoders alone, on inputs built once.
        let topics = reads.hand_topics();
        g.bench_function("hand_encoder_only", |b| {
            b.iter(|| encode_fetch_response(version, 7, 0, 0, black_box(&topics)))
        });
        let response = reads.crate_response();
        g.bench_function("crate_encoder_only", |b| {
            b.iter(|| encode_response(ApiKey::Fetch, version, 7, black_box(&response)).unwrap())
        });
        g.finish();
    }
}

criterion_group!(
    benches,
    bench_produce_decode,
    bench_fetch_request_decode,
    bench_fetch_response_encode
);
criterion_main!(benches);
