//! The "consumer" embedded protocol: what consumers put in JoinGroup
//! metadata (their subscription) and what the leader hands out through
//! SyncGroup (each member's assignment). The coordinator treats both as
//! opaque bytes; it looks inside only to learn which topics a group is
//! subscribed to (OffsetDelete) and to print assignments (`shardlog
//! groups`).
//!
//! ```text
//! subscription: version int16, topics [string], user data bytes, ...
//! assignment:   version int16, [topic string, partitions [int32]], user data bytes
//! ```
//!
//! The bytes come from clients, so parsing is bounded by the bytes present
//! (a count is never trusted beyond them) and gives `None` on anything
//! malformed. The kafka-protocol crate's decoders preallocate from counts
//! and are not used here for that reason.

use super::wire::Reader;

/// The topics a consumer subscribes to, from its JoinGroup metadata.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { buf: metadata };
    r.i16()?;
    let n = r.count(2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.string_lossy()?);
    }
    Some(topics)
}

/// Topic partitions of a consumer's assignment, from SyncGroup bytes.
/// Empty bytes (a member the leader gave nothing) are an empty assignment.
pub fn assigned_partitions(assignment: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if assignment.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader { buf: assignment };
    r.i16()?;
    let n = r.count(6)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let topic = r.string_lossy()?;
        let count = r.count(4)?;
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            partitions.push(r.i32()?);
        }
        out.push((topic, partitions));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encode<T: Encodable>(version: i16, m: &T) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.extend_from_slice(&version.to_be_bytes());
        m.encode(&mut b, version).unwrap();
        b.to_vec()
    }

    // Proves the parsers read what Kafka's own schema encodes (via the
    // kafka-protocol crate), at old and new versions, and refuse counts
    // larger than the bytes could hold.
    #[test]
    fn reads_the_crate_encoding_and_refuses_huge_counts() {
        let sub = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("a"),
            StrBytes::from_static_str("bb"),
        ]);
        for v in [0, 1, 3] {
            assert_eq!(
                subscribed_topics(&encode(v, &sub)),
                Some(vec!["a".to_string(), "bb".to_string()])
            );
        }
        let asg = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![0, 5]),
        ]);
        assert_eq!(
            assigned_partitions(&encode(1, &asg)),
            Some(vec![("t".to_string(), vec![0, 5])])
        );
        assert_eq!(assigned_partitions(&[]), Some(vec![]));
        let mut huge = vec![0, 0];
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(subscribed_topics(&huge), None);
        assert_eq!(assigned_partitions(&huge), None);
        assert_eq!(subscribed_topics(&[0]), None);
    }
}
