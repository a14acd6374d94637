//! Ten thousand partitions on one shard: created, each written, shut down
//! cleanly (every partition's clean-shutdown marker written) within the
//! fixture's stop bound, and opened again with every record in place. The
//! times are printed (run with `--nocapture`); they are measured, not
//! asserted beyond the fixture's bounds.

mod common;

use std::time::Instant;

use common::broker::{Broker, BrokerOptions};
use common::raw::{create_topic, topic_name, value_batch, Conn};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse,
};

const TOPICS: usize = 10;
const PARTITIONS_PER_TOPIC: i32 = 1000;

fn topic(i: usize) -> String {
    format!("many-{i}")
}

/// One Produce for every partition of `topic`, a one-record batch each.
fn produce_everywhere(conn: &mut Conn, topic: &str) {
    let batch = value_batch(1, 100);
    let mut t = TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = (0..PARTITIONS_PER_TOPIC)
        .map(|p| {
            let mut d = PartitionProduceData::default();
            d.index = p;
            d.records = Some(batch.clone());
            d
        })
        .collect();
    let req = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![t]);
    let resp: ProduceResponse = conn.call(ApiKey::Produce, 9, &req);
    let parts = &resp.responses[0].partition_responses;
    assert_eq!(parts.len(), PARTITIONS_PER_TOPIC as usize);
    for p in parts {
        assert_eq!(p.error_code, 0, "produce to {topic}-{}", p.index);
        assert_eq!(p.base_offset, 0);
    }
}

/// The latest offset of every partition of `topic`.
fn end_offsets(conn: &mut Conn, topic: &str) -> Vec<i64> {
    let mut t = ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions = (0..PARTITIONS_PER_TOPIC)
        .map(|p| {
            let mut q = ListOffsetsPartition::default();
            q.partition_index = p;
            q.timestamp = -1;
            q
        })
        .collect();
    let req = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![t]);
    let resp: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 5, &req);
    let mut parts: Vec<_> = resp.topics[0].partitions.iter().collect();
    parts.sort_by_key(|p| p.partition_index);
    parts
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            p.offset
        })
        .collect()
}

// Proves ten thousand written partitions shut down cleanly within the
// fixture's bound (SIGTERM to exit 0), each with its clean-shutdown
// marker, and reopen with every record.
#[test]
fn ten_thousand_partitions_shut_down_cleanly() {
    let mut broker = Broker::start(BrokerOptions::single());
    let mut conn = Conn::open(&broker.bootstrap());
    let started = Instant::now();
    for i in 0..TOPICS {
        create_topic(&mut conn, &topic(i), PARTITIONS_PER_TOPIC);
    }
    let created = started.elapsed();
    let started = Instant::now();
    for i in 0..TOPICS {
        produce_everywhere(&mut conn, &topic(i));
    }
    let written = started.elapsed();
    drop(conn);

    let started = Instant::now();
    broker.terminate();
    let shutdown = started.elapsed();
    for line in broker.log().lines() {
        if line.contains("partitions closed") || line.contains("shutting down") {
            eprintln!("{line}");
        }
    }
    let mut markers = 0;
    for i in 0..TOPICS {
        for p in 0..PARTITIONS_PER_TOPIC {
            let dir = broker.data_dir().join(format!("{}-{p}", topic(i)));
            let marker = std::fs::read_to_string(dir.join("clean-shutdown")).unwrap_or_default();
            assert!(
                !marker.trim().is_empty(),
                "no clean-shutdown marker in {}",
                dir.display()
            );
            markers += 1;
        }
    }

    let started = Instant::now();
    broker.restart();
    let reopened = started.elapsed();
    let mut conn = Conn::open(&broker.bootstrap());
    for i in 0..TOPICS {
        let ends = end_offsets(&mut conn, &topic(i));
        assert!(ends.iter().all(|&e| e == 1), "one record in each partition");
    }
    eprintln!(
        "{} partitions: created in {created:?}, written in {written:?}, \
         SIGTERM to exit {shutdown:?} ({markers} clean-shutdown markers), restarted in {reopened:?}",
        TOPICS * PARTITIONS_PER_TOPIC as usize
    );
}
