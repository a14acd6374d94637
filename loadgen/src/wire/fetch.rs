//! Fetch v11 requests and responses, hand-rolled over reused buffers so a
//! consumer core reads record batches in place. v11 (Kafka 2.3+) is the
//! last classic encoding and is supported by Kafka, Redpanda and shardlog.

use shardlog_wire::frame::{finish_frame, start_frame};

use super::{Malformed, Reader};

pub const API_KEY: i16 = 1;
pub const FETCH_VERSION: i16 = 11;

/// One partition to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPartition {
    pub partition: i32,
    pub offset: i64,
}

/// Limits of a fetch (Kafka's consumer settings of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
}

/// Appends a whole Fetch v11 request frame (size prefix included).
pub fn encode_request(
    out: &mut Vec<u8>,
    correlation_id: i32,
    client_id: &str,
    topic: &str,
    limits: FetchLimits,
    partitions: &[FetchPartition],
) {
    let start = start_frame(out);
    out.extend_from_slice(&API_KEY.to_be_bytes());
    out.extend_from_slice(&FETCH_VERSION.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    out.extend_from_slice(client_id.as_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id: a consumer
    out.extend_from_slice(&limits.max_wait_ms.to_be_bytes());
    out.extend_from_slice(&limits.min_bytes.to_be_bytes());
    out.extend_from_slice(&limits.max_bytes.to_be_bytes());
    out.push(0); // isolation_level: read_uncommitted
    out.extend_from_slice(&0i32.to_be_bytes()); // session_id
    out.extend_from_slice(&(-1i32).to_be_bytes()); // session_epoch: no session
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
    for p in partitions {
        out.extend_from_slice(&p.partition.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // current_leader_epoch
        out.extend_from_slice(&p.offset.to_be_bytes());
        out.extend_from_slice(&(-1i64).to_be_bytes()); // log_start_offset
        out.extend_from_slice(&limits.partition_max_bytes.to_be_bytes());
    }
    out.extend_from_slice(&0i32.to_be_bytes()); // forgotten topics
    out.extend_from_slice(&0i16.to_be_bytes()); // rack_id ""
    finish_frame(out, start);
}

/// One partition of a Fetch response; `records` borrows the frame.
#[derive(Debug, PartialEq, Eq)]
pub struct FetchedPartition<'a> {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub records: &'a [u8],
}

/// Reads a Fetch v11 response body (after the correlation id): returns the
/// top-level error code and calls `f` for each partition.
pub fn parse_response<'a>(
    body: &'a [u8],
    mut f: impl FnMut(FetchedPartition<'a>),
) -> Result<i16, Malformed> {
    let mut r = Reader::new(body);
    r.skip(4)?; // throttle_time_ms
    let error_code = r.i16()?;
    r.skip(4)?; // session_id
    let topics = r.array_len(false)?;
    for _ in 0..topics {
        r.nullable_bytes(false, false)?;
        let partitions = r.array_len(false)?;
        for _ in 0..partitions {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let high_watermark = r.i64()?;
            r.skip(16)?; // last_stable_offset, log_start_offset
            let aborted = r.i32()?;
            if aborted > 0 {
                r.skip(aborted as usize * 16)?;
            }
            r.skip(4)?; // preferred_read_replica
            let records = r.nullable_bytes(false, true)?.unwrap_or(&[]);
            f(FetchedPartition {
                partition,
                error_code,
                high_watermark,
                records,
            });
        }
    }
    Ok(error_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchRequest, FetchResponse, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

    // Proves the hand-written request decodes with kafka-protocol with
    // every field where it should be.
    #[test]
    fn request_matches_kafka_protocol() {
        let limits = FetchLimits {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 52_428_800,
            partition_max_bytes: 1_048_576,
        };
        let parts = [
            FetchPartition {
                partition: 0,
                offset: 10,
            },
            FetchPartition {
                partition: 7,
                offset: 0,
            },
        ];
        let mut out = Vec::new();
        encode_request(&mut out, 5, "lg", "bench", limits, &parts);
        let mut buf = Bytes::from(out[4..].to_vec());
        let h = RequestHeader::decode(&mut buf, FetchRequest::header_version(11)).unwrap();
        assert_eq!(
            (h.request_api_key, h.request_api_version, h.correlation_id),
            (1, 11, 5)
        );
        let req = FetchRequest::decode(&mut buf, 11).unwrap();
        assert!(buf.is_empty());
        assert_eq!(req.max_wait_ms, 500);
        assert_eq!(req.max_bytes, 52_428_800);
        assert_eq!(req.session_epoch, -1);
        assert_eq!(&*req.topics[0].topic.0, "bench");
        let got: Vec<(i32, i64, i32)> = req.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
            .collect();
        assert_eq!(got, vec![(0, 10, 1_048_576), (7, 0, 1_048_576)]);
    }

    // Proves the response reader returns each partition's error, high
    // watermark and records bytes from what kafka-protocol encodes.
    #[test]
    fn response_matches_kafka_protocol() {
        let mut resp = FetchResponse::default();
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("bench"));
        let mut a = PartitionData::default();
        a.partition_index = 2;
        a.high_watermark = 99;
        a.records = Some(Bytes::from_static(b"batches"));
        let mut b = PartitionData::default();
        b.partition_index = 3;
        b.error_code = 1;
        b.aborted_transactions = Some(vec![Default::default()]);
        topic.partitions = vec![a, b];
        resp.responses.push(topic);
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, 11).unwrap();
        let mut got = Vec::new();
        let top = parse_response(&buf, |p| {
            got.push((
                p.partition,
                p.error_code,
                p.high_watermark,
                p.records.to_vec(),
            ))
        })
        .unwrap();
        assert_eq!(top, 0);
        assert_eq!(
            got,
            vec![(2, 0, 99, b"batches".to_vec()), (3, 1, 0, Vec::new())]
        );
    }
}
