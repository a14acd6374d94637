//! Fetch responses encoded by hand as a list of buffers: the fields go
//! into small buffers and each record batch is referenced as the `Bytes`
//! the cache or the disk read returned, so a fetch never copies payload
//! bytes in user space. Covers Fetch v4-v12 (v12 is the first flexible
//! version); tests check the bytes against kafka-protocol's decoder.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::TopicName;

/// One partition of a Fetch response.
#[derive(Debug, Clone)]
pub struct FetchPartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// `Some(())`: an empty aborted-transactions list (READ_COMMITTED);
    /// `None`: null.
    pub aborted_transactions: Option<()>,
    /// The replica the consumer should read from instead (KIP-392);
    /// -1: none.
    pub preferred_read_replica: i32,
    /// Whole batches, sent back to back as the records field.
    pub records: Vec<Bytes>,
}

impl Default for FetchPartitionOut {
    fn default() -> Self {
        FetchPartitionOut {
            partition_index: 0,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FetchTopicOut {
    /// As the request named it (a slice of the request frame).
    pub name: TopicName,
    pub partitions: Vec<FetchPartitionOut>,
}

struct Writer {
    flexible: bool,
    pieces: Vec<Bytes>,
    cur: BytesMut,
}

impl Writer {
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.cur.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.cur.put_u8(v as u8);
    }

    fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u32 + 1);
        } else {
            self.cur.put_i32(n as i32);
        }
    }

    fn null_array(&mut self) {
        if self.flexible {
            self.uvarint(0);
        } else {
            self.cur.put_i32(-1);
        }
    }

    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u32 + 1);
        } else {
            self.cur.put_i16(s.len() as i16);
        }
        self.cur.put_slice(s.as_bytes());
    }

    fn no_tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }

    fn records(&mut self, batches: &[Bytes]) {
        let len: usize = batches.iter().map(Bytes::len).sum();
        if self.flexible {
            self.uvarint(len as u32 + 1);
        } else {
            self.cur.put_i32(len as i32);
        }
        if len == 0 {
            return;
        }
        self.pieces.push(self.cur.split().freeze());
        self.pieces.extend(batches.iter().cloned());
    }
}

/// An upper bound on the bytes of everything but the records, so the
/// fields of all partitions go into one allocation (the pieces split off
/// it share it).
fn field_bytes_max(topics: &[FetchTopicOut]) -> usize {
    /// Size, header, throttle, error, session, array lengths, tags.
    const FRAME_FIELDS_MAX: usize = 32;
    /// Array length, string length, tags.
    const TOPIC_FIELDS_MAX: usize = 16;
    /// Index, error, 3 offsets, aborted, preferred replica, records
    /// length, tags.
    const PARTITION_FIELDS_MAX: usize = 48;
    FRAME_FIELDS_MAX
        + topics
            .iter()
            .map(|t| TOPIC_FIELDS_MAX + t.name.len() + PARTITION_FIELDS_MAX * t.partitions.len())
            .sum::<usize>()
}

/// The response frame (size prefix, header, body) as buffers to write in
/// order.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    error_code: i16,
    session_id: i32,
    topics: &[FetchTopicOut],
) -> Vec<Bytes> {
    let flexible = version >= 12;
    let mut w = Writer {
        flexible,
        pieces: Vec::with_capacity(2 + 2 * topics.len()),
        cur: BytesMut::with_capacity(field_bytes_max(topics)),
    };
    // Size prefix and header come first; the size is patched at the end.
    w.cur.put_i32(0);
    w.cur.put_i32(correlation_id);
    w.no_tagged_fields();
    w.cur.put_i32(0); // throttle_time_ms
    if version >= 7 {
        w.cur.put_i16(error_code);
        w.cur.put_i32(session_id);
    }
    w.array_len(topics.len());
    for t in topics {
        w.string(&t.name);
        w.array_len(t.partitions.len());
        for p in &t.partitions {
            w.cur.put_i32(p.partition_index);
            w.cur.put_i16(p.error_code);
            w.cur.put_i64(p.high_watermark);
            w.cur.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.cur.put_i64(p.log_start_offset);
            }
            match p.aborted_transactions {
                Some(()) => w.array_len(0),
                None => w.null_array(),
            }
            if version >= 11 {
                w.cur.put_i32(p.preferred_read_replica);
            }
            w.records(&p.records);
            w.no_tagged_fields();
        }
        w.no_tagged_fields();
    }
    w.no_tagged_fields();
    let rest = w.cur.split().freeze();
    w.pieces.push(rest);
    let total: usize = w.pieces.iter().map(Bytes::len).sum();
    // Patch the size prefix in the first piece.
    let mut first = BytesMut::from(&w.pieces[0][..]);
    first[0..4].copy_from_slice(&((total - 4) as i32).to_be_bytes());
    w.pieces[0] = first.freeze();
    w.pieces.retain(|p| !p.is_empty());
    w.pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn sample() -> Vec<FetchTopicOut> {
        vec![
            FetchTopicOut {
                name: TopicName(StrBytes::from_static_str("alpha")),
                partitions: vec![
                    FetchPartitionOut {
                        partition_index: 0,
                        error_code: 0,
                        high_watermark: 42,
                        last_stable_offset: 42,
                        log_start_offset: 3,
                        aborted_transactions: None,
                        preferred_read_replica: 3,
                        records: vec![Bytes::from(vec![1u8; 300]), Bytes::from(vec![2u8; 5])],
                    },
                    FetchPartitionOut {
                        partition_index: 7,
                        error_code: 1,
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        aborted_transactions: Some(()),
                        preferred_read_replica: -1,
                        records: vec![],
                    },
                ],
            },
            FetchTopicOut {
                name: TopicName(StrBytes::from_string("b".repeat(200))),
                partitions: vec![FetchPartitionOut {
                    partition_index: 2,
                    high_watermark: 9,
                    last_stable_offset: 9,
                    log_start_offset: 0,
                    records: vec![Bytes::from(vec![3u8; 70_000])],
                    ..Default::default()
                }],
            },
        ]
    }

    #[test]
    fn kafka_protocol_decodes_every_version() {
        let topics = sample();
        for version in 4..=12 {
            let pieces = encode_fetch_response(version, 77, 0, 0, &topics);
            let mut frame = BytesMut::new();
            for p in &pieces {
                frame.extend_from_slice(p);
            }
            let mut frame = frame.freeze();
            let size = i32::from_be_bytes(frame[0..4].try_into().unwrap()) as usize;
            assert_eq!(size, frame.len() - 4, "v{version}");
            let _ = frame.split_to(4);
            let header =
                ResponseHeader::decode(&mut frame, ApiKey::Fetch.response_header_version(version))
                    .unwrap();
            assert_eq!(header.correlation_id, 77);
            let r = FetchResponse::decode(&mut frame, version).unwrap();
            assert!(frame.is_empty(), "v{version}: trailing bytes");
            assert_eq!(r.responses.len(), 2);
            for (t, out) in r.responses.iter().zip(&topics) {
                assert_eq!(t.topic.as_str(), out.name.as_str());
                for (p, o) in t.partitions.iter().zip(&out.partitions) {
                    assert_eq!(p.partition_index, o.partition_index);
                    assert_eq!(p.error_code, o.error_code);
                    assert_eq!(p.high_watermark, o.high_watermark);
                    assert_eq!(p.last_stable_offset, o.last_stable_offset);
                    if version >= 5 {
                        assert_eq!(p.log_start_offset, o.log_start_offset);
                    }
                    if version >= 11 {
                        assert_eq!(p.preferred_read_replica.0, o.preferred_read_replica);
                    }
                    assert_eq!(
                        p.aborted_transactions.is_some(),
                        o.aborted_transactions.is_some()
                    );
                    let want: Vec<u8> = o.records.iter().flat_map(|b| b.to_vec()).collect();
                    assert_eq!(p.records.as_deref().unwrap(), &want[..]);
                }
            }
        }
    }

    #[test]
    fn batches_are_referenced_not_copied() {
        let topics = sample();
        let pieces = encode_fetch_response(12, 1, 0, 0, &topics);
        let batch = &topics[1].partitions[0].records[0];
        assert!(pieces.iter().any(|p| p.as_ptr() == batch.as_ptr()));
    }
}
