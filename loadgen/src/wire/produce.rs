//! Produce requests written straight into a reused buffer around raw batch
//! bytes, and Produce responses read without allocating.
//!
//! Versions 3 to 8 use the classic encoding, 9 and up the flexible one
//! (compact strings and arrays, tagged fields). The load generator never
//! asks for more than [`PRODUCE_VERSION_MAX`]: later versions add nothing it
//! uses, and version 13 names topics by id.

use shardlog_wire::frame::{finish_frame, start_frame};
use shardlog_wire::varint::put_uvarint;

use super::{Malformed, Reader};

pub const API_KEY: i16 = 0;
pub const PRODUCE_VERSION_MIN: i16 = 3;
pub const PRODUCE_VERSION_MAX: i16 = 9;
const FIRST_FLEXIBLE_VERSION: i16 = 9;

/// Encodes one Produce request for one topic, partition by partition.
#[derive(Debug, Clone)]
pub struct ProduceEncoder {
    version: i16,
    client_id: String,
    acks: i16,
    timeout_ms: i32,
    topic: String,
}

/// A request being written: where its size prefix and partition count go.
pub struct ProduceFrame {
    start: usize,
    count_at: usize,
    partitions: usize,
}

impl ProduceEncoder {
    pub fn new(version: i16, client_id: &str, acks: i16, timeout_ms: i32, topic: &str) -> Self {
        assert!((PRODUCE_VERSION_MIN..=PRODUCE_VERSION_MAX).contains(&version));
        ProduceEncoder {
            version,
            client_id: client_id.to_string(),
            acks,
            timeout_ms,
            topic: topic.to_string(),
        }
    }

    pub fn version(&self) -> i16 {
        self.version
    }

    fn flexible(&self) -> bool {
        self.version >= FIRST_FLEXIBLE_VERSION
    }

    /// Writes the size placeholder, the request header and the body up to
    /// the partition array.
    pub fn begin(&self, out: &mut Vec<u8>, correlation_id: i32) -> ProduceFrame {
        let start = start_frame(out);
        out.extend_from_slice(&API_KEY.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&correlation_id.to_be_bytes());
        out.extend_from_slice(&(self.client_id.len() as i16).to_be_bytes());
        out.extend_from_slice(self.client_id.as_bytes());
        if self.flexible() {
            out.push(0); // header tagged fields
            out.push(0); // transactional_id: null compact string
        } else {
            out.extend_from_slice(&(-1i16).to_be_bytes());
        }
        out.extend_from_slice(&self.acks.to_be_bytes());
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        if self.flexible() {
            put_uvarint(out, 2); // one topic
            put_uvarint(out, self.topic.len() as u64 + 1);
        } else {
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&(self.topic.len() as i16).to_be_bytes());
        }
        out.extend_from_slice(self.topic.as_bytes());
        let count_at = out.len();
        // The partition count is patched in `finish`; the flexible encoding
        // reserves one uvarint byte, enough for 126 partitions per request.
        if self.flexible() {
            out.push(0);
        } else {
            out.extend_from_slice(&[0; 4]);
        }
        ProduceFrame {
            start,
            count_at,
            partitions: 0,
        }
    }

    /// The most partitions one request may carry.
    pub fn partitions_max(&self) -> usize {
        if self.flexible() {
            126
        } else {
            i32::MAX as usize
        }
    }

    /// Starts a partition whose records are `records_bytes` long; the caller
    /// appends exactly that many bytes next.
    pub fn partition(
        &self,
        out: &mut Vec<u8>,
        frame: &mut ProduceFrame,
        index: i32,
        records_bytes: usize,
    ) {
        frame.partitions += 1;
        out.extend_from_slice(&index.to_be_bytes());
        if self.flexible() {
            put_uvarint(out, records_bytes as u64 + 1);
        } else {
            out.extend_from_slice(&(records_bytes as i32).to_be_bytes());
        }
    }

    /// Ends the partition just written (its tagged fields, if flexible).
    pub fn end_partition(&self, out: &mut Vec<u8>) {
        if self.flexible() {
            out.push(0);
        }
    }

    /// Patches the partition count and the size prefix.
    pub fn finish(&self, out: &mut Vec<u8>, frame: ProduceFrame) {
        assert!(frame.partitions <= self.partitions_max());
        if self.flexible() {
            out.push(0); // topic tagged fields
            out.push(0); // body tagged fields
            out[frame.count_at] = frame.partitions as u8 + 1;
        } else {
            out[frame.count_at..frame.count_at + 4]
                .copy_from_slice(&(frame.partitions as i32).to_be_bytes());
        }
        finish_frame(out, frame.start);
    }
}

/// One partition's outcome in a Produce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionResult {
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
}

/// Reads a Produce response body (after the correlation id) and calls `f`
/// for each partition result.
pub fn parse_response(
    body: &[u8],
    version: i16,
    mut f: impl FnMut(PartitionResult),
) -> Result<(), Malformed> {
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    let mut r = Reader::new(body);
    if flexible {
        r.skip_tagged()?; // response header tagged fields
    }
    let topics = r.array_len(flexible)?;
    for _ in 0..topics {
        r.nullable_bytes(flexible, false)?;
        let partitions = r.array_len(flexible)?;
        for _ in 0..partitions {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let base_offset = r.i64()?;
            r.skip(8)?; // log_append_time_ms (v2+)
            if version >= 5 {
                r.skip(8)?; // log_start_offset
            }
            if version >= 8 {
                let errors = r.array_len(flexible)?;
                for _ in 0..errors {
                    r.skip(4)?;
                    r.nullable_bytes(flexible, false)?;
                    if flexible {
                        r.skip_tagged()?;
                    }
                }
                r.nullable_bytes(flexible, false)?;
            }
            if flexible {
                r.skip_tagged()?;
            }
            f(PartitionResult {
                partition,
                error_code,
                base_offset,
            });
        }
        if flexible {
            r.skip_tagged()?;
        }
    }
    r.skip(4)?; // throttle_time_ms
    if flexible {
        r.skip_tagged()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

    // Proves the hand-written request decodes with kafka-protocol, in the
    // classic and flexible encodings: header, acks, timeout, topic, and
    // each partition's records byte for byte.
    #[test]
    fn request_matches_kafka_protocol() {
        for version in PRODUCE_VERSION_MIN..=PRODUCE_VERSION_MAX {
            let enc = ProduceEncoder::new(version, "loadgen-test", -1, 30_000, "bench");
            let mut out = vec![9u8; 3]; // a request need not start the buffer
            let mut frame = enc.begin(&mut out, 77);
            let batches: Vec<Vec<u8>> = vec![vec![1; 10], vec![2; 300]];
            for (i, b) in batches.iter().enumerate() {
                enc.partition(&mut out, &mut frame, i as i32 * 5, b.len());
                out.extend_from_slice(b);
                enc.end_partition(&mut out);
            }
            enc.finish(&mut out, frame);
            let mut buf = Bytes::from(out[3..].to_vec());
            let size = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
            assert_eq!(size, buf.len() - 4);
            let _ = buf.split_to(4);
            let header =
                RequestHeader::decode(&mut buf, ProduceRequest::header_version(version)).unwrap();
            assert_eq!(header.request_api_key, 0);
            assert_eq!(header.request_api_version, version);
            assert_eq!(header.correlation_id, 77);
            assert_eq!(header.client_id.as_deref(), Some("loadgen-test"));
            let req = ProduceRequest::decode(&mut buf, version).unwrap();
            assert!(buf.is_empty(), "v{version}: {} bytes left", buf.len());
            assert_eq!(req.acks, -1);
            assert_eq!(req.timeout_ms, 30_000);
            assert_eq!(req.transactional_id, None);
            assert_eq!(req.topic_data.len(), 1);
            assert_eq!(&*req.topic_data[0].name.0, "bench");
            let parts = &req.topic_data[0].partition_data;
            assert_eq!(parts.len(), 2);
            for (i, p) in parts.iter().enumerate() {
                assert_eq!(p.index, i as i32 * 5);
                assert_eq!(p.records.as_deref(), Some(&batches[i][..]));
            }
        }
    }

    // Proves the response reader finds every partition's error code and
    // base offset in what kafka-protocol encodes, for every version used.
    #[test]
    fn response_matches_kafka_protocol() {
        for version in PRODUCE_VERSION_MIN..=PRODUCE_VERSION_MAX {
            let mut resp = ProduceResponse::default();
            let mut topic = TopicProduceResponse::default();
            topic.name = TopicName(StrBytes::from_static_str("bench"));
            for (i, (code, offset)) in [(0i16, 42i64), (10, -1)].into_iter().enumerate() {
                let mut p = PartitionProduceResponse::default();
                p.index = i as i32 + 3;
                p.error_code = code;
                p.base_offset = offset;
                p.log_start_offset = 0;
                p.error_message = (code != 0).then(|| StrBytes::from_static_str("too large"));
                topic.partition_responses.push(p);
            }
            resp.responses.push(topic);
            resp.throttle_time_ms = 5;
            let mut buf = BytesMut::new();
            if ProduceResponse::header_version(version) >= 1 {
                buf.extend_from_slice(&[0]); // response header tagged fields
            }
            resp.encode(&mut buf, version).unwrap();
            let mut got = Vec::new();
            parse_response(&buf, version, |p| got.push(p)).unwrap();
            assert_eq!(
                got,
                vec![
                    PartitionResult {
                        partition: 3,
                        error_code: 0,
                        base_offset: 42
                    },
                    PartitionResult {
                        partition: 4,
                        error_code: 10,
                        base_offset: -1
                    },
                ],
                "v{version}"
            );
            assert!(parse_response(&buf[..buf.len() - 1], version, |_| {}).is_err());
        }
    }
}
