//! The request guard's cost per request, against kafka-protocol decoding the
//! same body (which the broker does right after the guard).
//!
//! * `produce_v9`: one topic, one partition, one 16 KiB batch (the hot path).
//! * `produce_v9_many`: 10 topics x 10 partitions, 1 KiB batches.
//! * `fetch_v12`: 10 topics x 10 partitions.
//! * `metadata_v12`: 100 topics.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, MetadataRequest, ProduceRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Request, StrBytes};
use shardlog::router::apis::check_request_body;

fn topic(i: usize) -> TopicName {
    TopicName(StrBytes::from_string(format!("topic-{i}")))
}

fn produce(topics: usize, partitions: usize, batch: usize) -> ProduceRequest {
    let mut r = ProduceRequest::default();
    r.transactional_id = None::<TransactionalId>;
    r.acks = -1;
    r.timeout_ms = 30_000;
    r.topic_data = (0..topics)
        .map(|t| {
            let mut td = TopicProduceData::default();
            td.name = topic(t);
            td.partition_data = (0..partitions)
                .map(|p| {
                    let mut pd = PartitionProduceData::default();
                    pd.index = p as i32;
                    pd.records = Some(Bytes::from(vec![7u8; batch]));
                    pd
                })
                .collect();
            td
        })
        .collect();
    r
}

fn fetch(topics: usize, partitions: usize) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.max_wait_ms = 500;
    r.topics = (0..topics)
        .map(|t| {
            let mut ft = FetchTopic::default();
            ft.topic = topic(t);
            ft.partitions = (0..partitions)
                .map(|p| {
                    let mut fp = FetchPartition::default();
                    fp.partition = p as i32;
                    fp.fetch_offset = 12345;
                    fp.partition_max_bytes = 1 << 20;
                    fp
                })
                .collect();
            ft
        })
        .collect();
    r
}

fn metadata(topics: usize) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = Some(
        (0..topics)
            .map(|t| {
                let mut mt = MetadataRequestTopic::default();
                mt.name = Some(topic(t));
                mt
            })
            .collect(),
    );
    r
}

fn bench_one<R: Request>(c: &mut Criterion, name: &str, req: &R, version: i16) {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).unwrap();
    let body = buf.freeze();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.bench_function("guard", |b| {
        b.iter(|| check_request_body(R::KEY, version, black_box(&body)).unwrap())
    });
    g.bench_function("crate_decode", |b| {
        b.iter(|| R::decode(&mut black_box(body.clone()), version).unwrap())
    });
    g.finish();
}

fn bench_guard(c: &mut Criterion) {
    bench_one(c, "produce_v9", &produce(1, 1, 16 << 10), 9);
    bench_one(c, "produce_v9_many", &produce(10, 10, 1 << 10), 9);
    bench_one(c, "fetch_v12", &fetch(10, 10), 12);
    bench_one(c, "metadata_v12", &metadata(100), 12);
}

criterion_group!(benches, bench_guard);
criterion_main!(benches);
