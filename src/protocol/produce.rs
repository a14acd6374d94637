//! Produce requests decoded and Produce responses encoded by hand, for the
//! broker's hottest path (v3-v12; v9 is the first flexible version).
//!
//! The decoder walks the body once: it checks every length and count
//! against the bytes present as it goes, so it needs no separate guard
//! pass, and it hands each partition's records out as a slice of the
//! request frame. Vectors are never sized from a count on the wire beyond
//! what the remaining bytes can hold. It accepts exactly what the guard
//! and kafka-protocol's decoder accept together (the tests check this on
//! encoded, truncated and mutated requests), except that it does not
//! apply the guard's element budget: a Produce request decodes to a few
//! times its own size at most. Faults are reported as the guard reports
//! them ([`GuardError`]), named by field path.
//!
//! The encoder writes the response in one buffer sized up front.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::TopicName;

use super::body::BodyReader;
use super::FrameError;

/// First flexible Produce version (compact encodings, tagged fields).
const FLEXIBLE_FROM: i16 = 9;

/// One topic of a decoded Produce request: its name and each partition's
/// index and records.
pub type ProduceTopic = (TopicName, Vec<(i32, Option<Bytes>)>);

/// A decoded Produce request. Topic names and records are slices of the
/// request frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceBody {
    pub transactional: bool,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic>,
}

/// Smallest encoding of a topic: its name's length, an empty partition
/// array, and (flexible) its tagged-field count.
const fn topic_bytes_min(flexible: bool) -> usize {
    if flexible {
        3
    } else {
        6
    }
}

/// Smallest encoding of a partition: its index, a null records field and
/// (flexible) its tagged-field count.
const fn partition_bytes_min(flexible: bool) -> usize {
    if flexible {
        6
    } else {
        8
    }
}

/// Decodes a Produce request body at `version` (3-12).
pub fn decode_produce(body: &Bytes, version: i16) -> Result<ProduceBody, FrameError> {
    let flexible = version >= FLEXIBLE_FROM;
    let mut c = BodyReader::new(body, "ProduceRequest", flexible);
    let transactional = c.string("transactional_id")?.is_some();
    let acks = c.i16("acks")?;
    let timeout_ms = c.i32("timeout_ms")?;
    let topic_count = c.count(topic_bytes_min(flexible), "topic_data")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = c.required_string("topic_data.name")?;
        let partition_count = c.count(partition_bytes_min(flexible), "partition_data")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let index = c.i32("partition_data.index")?;
            let records = c.bytes("partition_data.records")?;
            c.tagged_fields("partition_data")?;
            partitions.push((index, records));
        }
        c.tagged_fields("topic_data")?;
        topics.push((TopicName(name), partitions));
    }
    c.tagged_fields("")?;
    Ok(ProduceBody {
        transactional,
        acks,
        timeout_ms,
        topics,
    })
}

/// One partition of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartitionOut {
    pub index: i32,
    pub error_code: i16,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// Sent from v8 on.
    pub error_message: Option<String>,
    /// KIP-467's per-record errors, from v8 on: (index in the batch,
    /// message).
    pub record_errors: Vec<(i32, String)>,
}

/// Encodes a whole Produce response frame (size, header, body) at
/// `version` (3-12).
pub fn encode_produce_response(
    version: i16,
    correlation_id: i32,
    topics: &[(TopicName, Vec<ProducePartitionOut>)],
) -> Bytes {
    let flexible = version >= FLEXIBLE_FROM;
    let partitions: usize = topics.iter().map(|(_, p)| p.len()).sum();
    let names: usize = topics.iter().map(|(n, _)| n.len()).sum();
    let messages: usize = topics
        .iter()
        .flat_map(|(_, p)| p)
        .map(|p| {
            p.error_message.as_ref().map_or(0, String::len)
                + p.record_errors
                    .iter()
                    .map(|(_, m)| 4 + 5 + 1 + m.len())
                    .sum::<usize>()
        })
        .sum();
    // Upper bounds: varints at their widest, every field present.
    let capacity = 4
        + 4
        + 1
        + 5
        + 4
        + 1
        + topics.len() * (5 + 5 + 1)
        + names
        + partitions * (4 + 2 + 8 + 8 + 8 + 5 + 5 + 1)
        + messages;
    let mut out = BytesMut::with_capacity(capacity);
    out.put_i32(0); // size, written last
    out.put_i32(correlation_id);
    let tags = |out: &mut BytesMut| {
        if flexible {
            out.put_u8(0);
        }
    };
    tags(&mut out); // response header v1
    put_array_len(&mut out, flexible, topics.len());
    for (name, parts) in topics {
        put_string_len(&mut out, flexible, name.len());
        out.put_slice(name.as_bytes());
        put_array_len(&mut out, flexible, parts.len());
        for p in parts {
            out.put_i32(p.index);
            out.put_i16(p.error_code);
            out.put_i64(p.base_offset);
            out.put_i64(p.log_append_time_ms);
            if version >= 5 {
                out.put_i64(p.log_start_offset);
            }
            if version >= 8 {
                put_array_len(&mut out, flexible, p.record_errors.len());
                for (index, message) in &p.record_errors {
                    out.put_i32(*index);
                    put_string_len(&mut out, flexible, message.len());
                    out.put_slice(message.as_bytes());
                    tags(&mut out);
                }
                match &p.error_message {
                    Some(m) => {
                        put_string_len(&mut out, flexible, m.len());
                        out.put_slice(m.as_bytes());
                    }
                    None if flexible => out.put_u8(0),
                    None => out.put_i16(-1),
                }
            }
            tags(&mut out);
        }
        tags(&mut out);
    }
    out.put_i32(0); // throttle_time_ms
    tags(&mut out);
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out.freeze()
}

/// An array's length: compact (varint n+1) in flexible versions, else i32.
fn put_array_len(out: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(out, n as u32 + 1);
    } else {
        out.put_i32(n as i32);
    }
}

/// A string's length: compact (varint n+1) in flexible versions, else i16.
fn put_string_len(out: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(out, n as u32 + 1);
    } else {
        out.put_i16(n as i16);
    }
}

fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use proptest::prelude::*;

    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::protocol::body::damaged;
    use crate::protocol::guard::{inspect_body, layouts, GuardError};

    /// A topic to put in a request: name, and per partition its index and
    /// records.
    type TestTopic = (String, Vec<(i32, Option<Vec<u8>>)>);

    fn request(v: i16, transactional: bool, topics: &[TestTopic]) -> ProduceRequest {
        let mut r = ProduceRequest::default();
        r.transactional_id = transactional
            .then(|| TopicName(StrBytes::from_static_str("txn")))
            .map(|t| t.0.into());
        r.acks = -1;
        r.timeout_ms = 1234;
        r.topic_data = topics
            .iter()
            .map(|(name, parts)| {
                let mut t = TopicProduceData::default();
                t.name = TopicName(StrBytes::from_string(name.clone()));
                t.partition_data = parts
                    .iter()
                    .map(|(i, recs)| {
                        let mut p = PartitionProduceData::default();
                        p.index = *i;
                        p.records = recs.clone().map(Bytes::from);
                        p
                    })
                    .collect();
                t
            })
            .collect();
        if v >= FLEXIBLE_FROM {
            r.unknown_tagged_fields
                .insert(7, Bytes::from_static(b"tag"));
        }
        r
    }

    fn encode(r: &ProduceRequest, v: i16) -> Bytes {
        let mut buf = BytesMut::new();
        r.encode(&mut buf, v).unwrap();
        buf.freeze()
    }

    /// What the broker's previous path made of a body: the guard, then
    /// kafka-protocol's decoder.
    fn guard_then_crate(body: &Bytes, v: i16) -> Option<ProduceBody> {
        inspect_body(&layouts::PRODUCE, v, body).ok()?;
        let r = ProduceRequest::decode(&mut body.clone(), v).ok()?;
        Some(ProduceBody {
            transactional: r.transactional_id.is_some(),
            acks: r.acks,
            timeout_ms: r.timeout_ms,
            topics: r
                .topic_data
                .into_iter()
                .map(|t| {
                    let parts = t
                        .partition_data
                        .into_iter()
                        .map(|p| (p.index, p.records))
                        .collect();
                    (t.name, parts)
                })
                .collect(),
        })
    }

    fn topics_strategy() -> impl Strategy<Value = Vec<TestTopic>> {
        prop::collection::vec(
            (
                "[a-z._-]{1,20}",
                prop::collection::vec(
                    (
                        any::<i32>(),
                        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
                    ),
                    0..4,
                ),
            ),
            0..4,
        )
    }

    proptest! {
        // Proves the hand decoder reads every version exactly as the
        // guard and kafka-protocol do, records as slices of the body.
        #[test]
        fn decodes_what_the_crate_encodes(
            v in 3i16..=12,
            transactional in any::<bool>(),
            topics in topics_strategy(),
        ) {
            let body = encode(&request(v, transactional, &topics), v);
            let ours = decode_produce(&body, v).unwrap();
            prop_assert_eq!(Some(ours.clone()), guard_then_crate(&body, v));
            for (_, parts) in &ours.topics {
                for (_, recs) in parts {
                    if let Some(r) = recs.as_ref().filter(|r| !r.is_empty()) {
                        prop_assert!(body.as_ptr_range().contains(&r.as_ptr()));
                    }
                }
            }
        }

        // Proves truncated and mutated bodies are accepted exactly when the
        // guard and the crate accept them, and decoded alike.
        #[test]
        fn agrees_with_guard_and_crate_on_damage(
            v in 3i16..=12,
            topics in topics_strategy(),
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let body = encode(&request(v, false, &topics), v);
            for damaged in damaged(&body, cut, &flips) {
                prop_assert_eq!(decode_produce(&damaged, v).ok(), guard_then_crate(&damaged, v));
            }
        }
    }

    // Proves a count that cannot fit is refused before any allocation.
    #[test]
    fn huge_counts_are_refused() {
        // Null transactional id, acks, timeout, then the topic count.
        let mut v3 = vec![0xff, 0xff, 0, 1, 0, 0, 0, 10];
        v3.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        let mut v9 = vec![0, 0, 1, 0, 0, 0, 10];
        v9.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07, 0]);
        for (v, body) in [(3, v3), (9, v9)] {
            let err = decode_produce(&Bytes::from(body), v).unwrap_err();
            assert!(
                matches!(err, FrameError::Guard(GuardError::ArrayTooLong { .. })),
                "{err}"
            );
        }
    }

    // Proves the hand-encoded response decodes with kafka-protocol to the
    // same fields, in every version.
    #[test]
    fn response_decodes_with_the_crate() {
        let topics = vec![
            (
                TopicName(StrBytes::from_static_str("alpha")),
                vec![
                    ProducePartitionOut {
                        index: 0,
                        error_code: 0,
                        base_offset: 42,
                        log_append_time_ms: -1,
                        log_start_offset: 7,
                        error_message: None,
                        record_errors: Vec::new(),
                    },
                    ProducePartitionOut {
                        index: 3,
                        error_code: 87,
                        base_offset: -1,
                        log_append_time_ms: -1,
                        log_start_offset: -1,
                        error_message: Some("invalid batch".to_string()),
                        record_errors: vec![(1, "no key".to_string()), (4, "no key".to_string())],
                    },
                ],
            ),
            (TopicName(StrBytes::from_static_str("b")), Vec::new()),
        ];
        for v in 3i16..=12 {
            let frame = encode_produce_response(v, 99, &topics);
            let mut buf = frame.slice(4..);
            assert_eq!(
                frame.len() - 4,
                i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize
            );
            let header_version = if v >= FLEXIBLE_FROM { 1 } else { 0 };
            let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
            assert_eq!(header.correlation_id, 99);
            let r = ProduceResponse::decode(&mut buf, v).unwrap();
            assert!(buf.is_empty(), "v{v}: {} bytes left over", buf.len());
            assert_eq!(r.responses.len(), 2);
            assert_eq!(r.responses[0].name.as_str(), "alpha");
            let p = &r.responses[0].partition_responses;
            assert_eq!((p[0].index, p[0].error_code, p[0].base_offset), (0, 0, 42));
            assert_eq!(p[0].log_start_offset, if v >= 5 { 7 } else { -1 });
            assert_eq!((p[1].index, p[1].error_code), (3, 87));
            let message = p[1].error_message.as_ref().map(|m| m.to_string());
            assert_eq!(message, (v >= 8).then(|| "invalid batch".to_string()));
            let record_errors: Vec<(i32, String)> = p[1]
                .record_errors
                .iter()
                .map(|e| {
                    let m = e.batch_index_error_message.as_ref().map(|m| m.to_string());
                    (e.batch_index, m.unwrap_or_default())
                })
                .collect();
            let want = if v >= 8 {
                vec![(1, "no key".to_string()), (4, "no key".to_string())]
            } else {
                Vec::new()
            };
            assert_eq!(record_errors, want, "v{v}");
            assert!(p[0].record_errors.is_empty());
            assert!(r.responses[1].partition_responses.is_empty());
        }
    }
}
