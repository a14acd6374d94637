//! Fetch requests decoded by hand (v4-v12; v12 is the first flexible
//! version), in one bounded walk of the body: what the broker needs of each
//! partition, topic names as slices of the request frame, and every other
//! field checked and skipped. It accepts exactly what the guard and
//! kafka-protocol's decoder accept together (the tests check this on
//! encoded, truncated and mutated requests).

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::body::BodyReader;
use super::guard::GuardError;
use super::FrameError;

/// First flexible Fetch version.
const FLEXIBLE_FROM: i16 = 12;

/// One partition of a Fetch request, as the broker uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPartitionIn {
    pub partition: i32,
    /// -1 before v9, where the field does not exist.
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// A follower's own log start (-1 before v5).
    pub log_start_offset: i64,
    pub partition_max_bytes: i32,
}

/// A decoded Fetch request.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchBody {
    /// -1 for consumers; a follower's broker id otherwise.
    pub replica_id: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    /// 0 and -1 (no session) before v7.
    pub session_id: i32,
    pub session_epoch: i32,
    pub topics: Vec<(TopicName, Vec<FetchPartitionIn>)>,
    /// The consumer's rack (v11+, KIP-392); empty: none given.
    pub rack_id: StrBytes,
}

/// Smallest encoding of a partition at `version`.
fn partition_bytes_min(version: i16) -> usize {
    let mut n = 4 + 8 + 4; // partition, fetch_offset, partition_max_bytes
    if version >= 9 {
        n += 4; // current_leader_epoch
    }
    if version >= 12 {
        n += 4 + 1; // last_fetched_epoch, tagged fields
    }
    if version >= 5 {
        n += 8; // log_start_offset
    }
    n
}

/// Smallest encoding of a topic (or forgotten topic): a name's length, an
/// empty array and (flexible) a tagged-field count.
fn topic_bytes_min(flexible: bool) -> usize {
    if flexible {
        3
    } else {
        6
    }
}

/// The error for a tag the protocol defines for later versions only.
fn tag_not_valid(r: &BodyReader<'_>, what: &str, tag: u32, version: i16) -> FrameError {
    GuardError::TaggedFieldNotValid {
        field: r.field(what),
        tag,
        version,
    }
    .into()
}

/// Decodes a Fetch request body at `version` (4-12).
pub fn decode_fetch(body: &Bytes, version: i16) -> Result<FetchBody, FrameError> {
    let flexible = version >= FLEXIBLE_FROM;
    let mut r = BodyReader::new(body, "FetchRequest", flexible);
    let replica_id = r.i32("replica_id")?;
    let max_wait_ms = r.i32("max_wait_ms")?;
    let min_bytes = r.i32("min_bytes")?;
    let max_bytes = r.i32("max_bytes")?;
    let isolation_level = r.i8("isolation_level")?;
    let (session_id, session_epoch) = if version >= 7 {
        (r.i32("session_id")?, r.i32("session_epoch")?)
    } else {
        (0, -1)
    };
    let topic_count = r.count(topic_bytes_min(flexible), "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.required_string("topics.topic")?;
        let count = r.count(partition_bytes_min(version), "topics.partitions")?;
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            let partition = r.i32("partitions.partition")?;
            let current_leader_epoch = if version >= 9 {
                r.i32("partitions.current_leader_epoch")?
            } else {
                -1
            };
            let fetch_offset = r.i64("partitions.fetch_offset")?;
            if version >= 12 {
                r.i32("partitions.last_fetched_epoch")?;
            }
            let log_start_offset = if version >= 5 {
                r.i64("partitions.log_start_offset")?
            } else {
                -1
            };
            let partition_max_bytes = r.i32("partitions.partition_max_bytes")?;
            // Tags 0 (replica_directory_id, v17+) and 1 (high_watermark,
            // v18+) are not valid this early.
            r.tagged_fields_with("partitions", |tag, value| match tag {
                0 | 1 => Err(tag_not_valid(value, "partitions", tag, version)),
                _ => Ok(false),
            })?;
            partitions.push(FetchPartitionIn {
                partition,
                current_leader_epoch,
                fetch_offset,
                log_start_offset,
                partition_max_bytes,
            });
        }
        r.tagged_fields("topics")?;
        topics.push((TopicName(name), partitions));
    }
    if version >= 7 {
        let forgotten = r.count(topic_bytes_min(flexible), "forgotten_topics_data")?;
        for _ in 0..forgotten {
            r.required_string("forgotten_topics_data.topic")?;
            let count = r.count(4, "forgotten_topics_data.partitions")?;
            r.take(4 * count, "forgotten_topics_data.partitions")?;
            r.tagged_fields("forgotten_topics_data")?;
        }
    }
    let rack_id = if version >= 11 {
        r.required_string("rack_id")?
    } else {
        StrBytes::default()
    };
    // Tag 0 is the cluster id (a compact nullable string); tag 1
    // (replica_state) is valid from v15 only.
    r.tagged_fields_with("", |tag, value| match tag {
        0 => value.string("cluster_id").map(|_| true),
        1 => Err(tag_not_valid(value, "", tag, version)),
        _ => Ok(false),
    })?;
    Ok(FetchBody {
        replica_id,
        max_wait_ms,
        min_bytes,
        max_bytes,
        isolation_level,
        session_id,
        session_epoch,
        topics,
        rack_id,
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::body::damaged;
    use crate::protocol::guard::{inspect_body, layouts};

    /// A topic to put in a request: name, and per partition its index,
    /// leader epoch, offset and max bytes.
    type TestTopic = (String, Vec<(i32, i32, i64, i32)>);

    fn request(v: i16, topics: &[TestTopic], forgotten: usize) -> FetchRequest {
        let mut r = FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.max_wait_ms = 500;
        r.min_bytes = 1;
        r.max_bytes = 52_428_800;
        r.isolation_level = 1;
        if v >= 7 {
            r.session_id = 3;
            r.session_epoch = 4;
        }
        r.topics = topics
            .iter()
            .map(|(name, parts)| {
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_string(name.clone()));
                t.partitions = parts
                    .iter()
                    .map(|&(partition, epoch, offset, max)| {
                        let mut p = FetchPartition::default();
                        p.partition = partition;
                        if v >= 9 {
                            p.current_leader_epoch = epoch;
                        }
                        p.fetch_offset = offset;
                        p.log_start_offset = -1;
                        p.partition_max_bytes = max;
                        if v >= 12 {
                            p.last_fetched_epoch = 2;
                            p.unknown_tagged_fields.insert(5, Bytes::from_static(b"p"));
                        }
                        p
                    })
                    .collect();
                t
            })
            .collect();
        if v >= 7 {
            r.forgotten_topics_data = (0..forgotten)
                .map(|i| {
                    let mut f = ForgottenTopic::default();
                    f.topic = TopicName(StrBytes::from_string(format!("gone-{i}")));
                    f.partitions = vec![1, 2, 3];
                    f
                })
                .collect();
        }
        if v >= 11 {
            r.rack_id = StrBytes::from_static_str("rack-a");
        }
        if v >= 12 {
            r.cluster_id = Some(StrBytes::from_static_str("cluster"));
            r.unknown_tagged_fields.insert(9, Bytes::from_static(b"x"));
        }
        r
    }

    fn encode(r: &FetchRequest, v: i16) -> Bytes {
        let mut buf = bytes::BytesMut::new();
        r.encode(&mut buf, v).unwrap();
        buf.freeze()
    }

    /// What the guard and kafka-protocol's decoder make of a body.
    fn guard_then_crate(body: &Bytes, v: i16) -> Option<FetchBody> {
        inspect_body(&layouts::FETCH, v, body).ok()?;
        let r = FetchRequest::decode(&mut body.clone(), v).ok()?;
        Some(FetchBody {
            replica_id: r.replica_id.0,
            max_wait_ms: r.max_wait_ms,
            min_bytes: r.min_bytes,
            max_bytes: r.max_bytes,
            isolation_level: r.isolation_level,
            session_id: r.session_id,
            session_epoch: r.session_epoch,
            rack_id: r.rack_id.clone(),
            topics: r
                .topics
                .into_iter()
                .map(|t| {
                    let parts = t
                        .partitions
                        .into_iter()
                        .map(|p| FetchPartitionIn {
                            partition: p.partition,
                            current_leader_epoch: p.current_leader_epoch,
                            fetch_offset: p.fetch_offset,
                            log_start_offset: if v >= 5 { p.log_start_offset } else { -1 },
                            partition_max_bytes: p.partition_max_bytes,
                        })
                        .collect();
                    (t.topic, parts)
                })
                .collect(),
        })
    }

    fn topics_strategy() -> impl Strategy<Value = Vec<TestTopic>> {
        prop::collection::vec(
            (
                "[a-z._-]{1,20}",
                prop::collection::vec(
                    (any::<i32>(), any::<i32>(), any::<i64>(), any::<i32>()),
                    0..4,
                ),
            ),
            0..4,
        )
    }

    proptest! {
        // Proves the hand decoder reads every version exactly as the
        // guard and kafka-protocol do.
        #[test]
        fn decodes_what_the_crate_encodes(
            v in 4i16..=12,
            topics in topics_strategy(),
            forgotten in 0usize..3,
        ) {
            let body = encode(&request(v, &topics, forgotten), v);
            let ours = decode_fetch(&body, v).unwrap();
            prop_assert_eq!(Some(ours), guard_then_crate(&body, v));
        }

        // Proves truncated and mutated bodies are accepted exactly when the
        // guard and the crate accept them, and decoded alike.
        #[test]
        fn agrees_with_guard_and_crate_on_damage(
            v in 4i16..=12,
            topics in topics_strategy(),
            forgotten in 0usize..2,
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let body = encode(&request(v, &topics, forgotten), v);
            for damaged in damaged(&body, cut, &flips) {
                prop_assert_eq!(decode_fetch(&damaged, v).ok(), guard_then_crate(&damaged, v));
            }
        }
    }

    // Proves tags defined for later versions are refused, as the crate
    // refuses them, and a cluster id must fill its tag exactly.
    #[test]
    fn tags_of_later_versions_are_refused() {
        let mut r = request(12, &[], 0);
        r.cluster_id = None;
        r.unknown_tagged_fields.clear();
        let body = encode(&r, 12).to_vec();
        // The body ends with the top-level tagged-field count (0).
        let mut with_tag = body[..body.len() - 1].to_vec();
        with_tag.extend_from_slice(&[1, 1, 1, 0]); // tag 1, size 1
        let err = decode_fetch(&Bytes::from(with_tag), 12).unwrap_err();
        assert!(matches!(
            err,
            FrameError::Guard(GuardError::TaggedFieldNotValid { tag: 1, .. })
        ));
        let mut loose = body[..body.len() - 1].to_vec();
        loose.extend_from_slice(&[1, 0, 3, 2, b'a', b'b']); // "a" in a 3-byte tag
        let err = decode_fetch(&Bytes::from(loose), 12).unwrap_err();
        assert!(matches!(
            err,
            FrameError::Guard(GuardError::TaggedFieldSize { tag: 0, .. })
        ));
    }
}
