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

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        Some(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
    /// An array count, refused if even `min_element_bytes` per element
    /// would not fit in what is left.
    fn count(&mut self, min_element_bytes: usize) -> Option<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Some(0);
        }
        let n = n as usize;
        (n <= self.buf.len() / min_element_bytes).then_some(n)
    }
}

/// The topics a consumer subscribes to, from its JoinGroup metadata.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { buf: metadata };
    r.i16()?;
    let n = r.count(2)?;
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(r.string()?);
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
        let topic = r.string()?;
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
