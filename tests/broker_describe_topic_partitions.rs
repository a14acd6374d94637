//! DescribeTopicPartitions (KIP-966) against the real broker: topics in
//! name order with their partitions as Metadata shows them, paged by
//! `response_partition_limit` with a cursor naming where the next page
//! starts, unknown topics answered with UNKNOWN_TOPIC_OR_PARTITION, every
//! topic when none is named, and INVALID_REQUEST for a cursor outside the
//! topics asked, as Kafka answers. Kafka's own `kafka-topics --describe`
//! (which uses it since Kafka 3.8) describes through it too.

mod common;

use common::broker::{Broker, BrokerOptions};
use common::raw::{create_topic, topic_name, Conn};
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::{
    ApiKey, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, MetadataRequest,
    MetadataResponse,
};

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REQUEST: i16 = 42;

fn describe(
    conn: &mut Conn,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> DescribeTopicPartitionsResponse {
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(topic_name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(topic_name(t))
                .with_partition_index(p)
        }));
    conn.call(ApiKey::DescribeTopicPartitions, 0, &request)
}

/// (topic, error, partition indexes) of a response, and its cursor.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

fn page(r: &DescribeTopicPartitionsResponse) -> Page {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                t.error_code,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let cursor = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    (topics, cursor)
}

fn owned(topics: &[(&str, i16, &[i32])]) -> Vec<(String, i16, Vec<i32>)> {
    topics
        .iter()
        .map(|(t, e, p)| (t.to_string(), *e, p.to_vec()))
        .collect()
}

#[test]
fn pages_of_partitions_with_a_cursor() {
    let broker = Broker::start(BrokerOptions::per_shard(2));
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "dtp-a", 5);
    create_topic(&mut conn, "dtp-b", 3);

    // Four partitions per page: topic a's first four, then a cursor.
    let first = describe(&mut conn, &["dtp-b", "dtp-a", "dtp-missing"], 4, None);
    assert_eq!(
        page(&first),
        (
            owned(&[("dtp-a", NONE, &[0, 1, 2, 3])]),
            Some(("dtp-a".to_string(), 4))
        )
    );
    // From the cursor: the rest of a, all of b, the unknown topic.
    let second = describe(
        &mut conn,
        &["dtp-b", "dtp-a", "dtp-missing"],
        10,
        Some(("dtp-a", 4)),
    );
    assert_eq!(
        page(&second),
        (
            owned(&[
                ("dtp-a", NONE, &[4]),
                ("dtp-b", NONE, &[0, 1, 2]),
                ("dtp-missing", UNKNOWN_TOPIC_OR_PARTITION, &[]),
            ]),
            None
        )
    );
    // The limit reached exactly at a topic's end: the cursor names the next.
    let exact = describe(&mut conn, &["dtp-a", "dtp-b"], 5, None);
    assert_eq!(
        page(&exact),
        (
            owned(&[("dtp-a", NONE, &[0, 1, 2, 3, 4])]),
            Some(("dtp-b".to_string(), 0))
        )
    );

    // The same partitions, leaders and topic ids as Metadata.
    let md: MetadataResponse = conn.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    let all = describe(&mut conn, &[], 2000, None);
    let (topics, cursor) = page(&all);
    assert_eq!(cursor, None);
    let names: Vec<&str> = topics.iter().map(|(t, _, _)| t.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "name order");
    for t in &all.topics {
        let name = t.name.as_ref().unwrap();
        let m = md
            .topics
            .iter()
            .find(|m| m.name.as_ref() == Some(name))
            .expect("in Metadata");
        assert_eq!(t.topic_id, m.topic_id, "{name:?}");
        assert_eq!(t.topic_authorized_operations.count_ones(), 8);
        for p in &t.partitions {
            let mp = &m.partitions[p.partition_index as usize];
            assert_eq!(
                (p.leader_id, &p.replica_nodes, &p.isr_nodes),
                (mp.leader_id, &mp.replica_nodes, &mp.isr_nodes)
            );
            assert_eq!(p.error_code, NONE);
        }
    }
    assert!(names.contains(&"dtp-a") && names.contains(&"dtp-b"));

    // A cursor outside the topics asked: INVALID_REQUEST for each.
    let bad = describe(&mut conn, &["dtp-a", "dtp-b"], 10, Some(("dtp-c", 0)));
    assert_eq!(
        page(&bad),
        (
            owned(&[
                ("dtp-a", INVALID_REQUEST, &[]),
                ("dtp-b", INVALID_REQUEST, &[])
            ]),
            None
        )
    );
}

#[test]
fn kafkas_topics_tool_describes_through_it() {
    let broker = Broker::start(BrokerOptions::single());
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "dtp-cli", 3);
    let out = common::kafka::tool_ok(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &broker.bootstrap(),
            "--describe",
            "--topic",
            "dtp-cli",
        ],
    );
    let partitions = out.lines().filter(|l| l.contains("Partition: ")).count();
    assert_eq!(partitions, 3, "{out}");
    assert!(out.contains("PartitionCount: 3"), "{out}");
}
