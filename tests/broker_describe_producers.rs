//! DescribeProducers against the real broker: a librdkafka idempotent
//! producer writes to two partitions; each partition's leader shows the
//! producer with its epoch, the last sequence it wrote there and the max
//! timestamp of its newest batch, after a clean restart (from the producer
//! snapshot) and after kill -9 (rebuilt from the log) alike; an unknown
//! partition gets UNKNOWN_TOPIC_OR_PARTITION. Kafka's
//! `kafka-transactions describe-producers` reads the same.

mod common;

use common::broker::{Broker, BrokerOptions};
use common::raw::{topic_name, Conn};
use common::rdk;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{ApiKey, DescribeProducersRequest, DescribeProducersResponse};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const TOPIC: &str = "producers";

/// (partition, error, [(producer id, epoch, last sequence, last timestamp,
/// coordinator epoch, transaction start)]) from each partition's leader
/// (each node in per-shard mode answers for the partitions it leads).
type Seen = Vec<(i32, i16, Vec<(i64, i32, i32, i64, i32, i64)>)>;

fn describe(broker: &Broker, partitions: &[i32]) -> Seen {
    let mut out = Vec::new();
    for &p in partitions {
        let leader = rdk::metadata_brokers(&broker.bootstrap())
            .into_iter()
            .find(|(id, _)| *id == leader_of(broker, p))
            .map(|(_, addr)| addr)
            .unwrap_or_else(|| broker.bootstrap());
        let mut conn = Conn::open(&leader);
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(topic_name(TOPIC))
                .with_partition_indexes(vec![p])]);
        let r: DescribeProducersResponse = conn.call(ApiKey::DescribeProducers, 0, &request);
        for t in &r.topics {
            for q in &t.partitions {
                let producers = q
                    .active_producers
                    .iter()
                    .map(|s| {
                        (
                            s.producer_id.0,
                            s.producer_epoch,
                            s.last_sequence,
                            s.last_timestamp,
                            s.coordinator_epoch,
                            s.current_txn_start_offset,
                        )
                    })
                    .collect();
                out.push((q.partition_index, q.error_code, producers));
            }
        }
    }
    out
}

/// The node leading partition `p` (-1 for a partition that does not exist).
fn leader_of(broker: &Broker, p: i32) -> i32 {
    use rdkafka::consumer::Consumer;
    let c = rdk::consumer(&broker.bootstrap());
    let md = c
        .fetch_metadata(Some(TOPIC), rdk::TIMEOUT)
        .expect("metadata");
    md.topics()[0]
        .partitions()
        .iter()
        .find(|q| q.id() == p)
        .map_or(-1, |q| q.leader())
}

#[test]
fn idempotent_producers_are_described_per_partition() {
    let mut broker = Broker::start(BrokerOptions::per_shard(2));
    let admin = rdk::admin(&broker.bootstrap());
    rdk::create_topic(&admin, TOPIC, 2, &[]);
    // 30 records: 15 to each partition, timestamps base + i.
    let base = rdk::now_ms() - 60_000;
    let recs = rdk::records(TOPIC, 30, &[0, 1], base);
    let producer = rdk::idempotent_producer(&broker.bootstrap(), &[]);
    let acked = rdk::produce_all(&producer, TOPIC, &recs);
    assert_eq!(acked.len(), 30);
    drop(producer);
    let last_ts = |p: i32| {
        recs.iter()
            .filter(|r| r.partition == p)
            .map(|r| r.timestamp)
            .max()
            .unwrap()
    };
    let seen = describe(&broker, &[0, 1]);
    assert_eq!(seen.len(), 2, "{seen:?}");
    let pid = seen[0].2[0].0;
    assert!(pid >= 0, "{seen:?}");
    let want: Seen = vec![
        (0, NONE, vec![(pid, 0, 14, last_ts(0), -1, -1)]),
        (1, NONE, vec![(pid, 0, 14, last_ts(1), -1, -1)]),
    ];
    assert_eq!(seen, want);

    // Kept across a clean restart (the producer snapshot) and kill -9 (the
    // table rebuilt from the log's batch headers).
    broker.restart();
    assert_eq!(describe(&broker, &[0, 1]), want);
    broker.kill9();
    broker.restart();
    assert_eq!(describe(&broker, &[0, 1]), want);

    // A partition that does not exist.
    let mut conn = Conn::open(&broker.bootstrap());
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(topic_name(TOPIC))
        .with_partition_indexes(vec![7])]);
    let r: DescribeProducersResponse = conn.call(ApiKey::DescribeProducers, 0, &request);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // Kafka's tool, through the partition's leader.
    let out = common::kafka::tool_ok(
        "kafka-transactions",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "describe-producers",
            "--topic",
            TOPIC,
            "--partition",
            "0",
        ],
    );
    let row = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
        .unwrap_or_else(|| panic!("producer {pid} listed:\n{out}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    // ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence
    // LastTimestamp CurrentTransactionStartOffset
    assert_eq!(fields[1], "0", "{out}");
    assert_eq!(fields[3], "14", "{out}");
    assert_eq!(fields[4], last_ts(0).to_string(), "{out}");
}
