//! What the broker does with v2 record batches beyond reading them:
//! validation in Apache Kafka's order, and patching the fields the broker
//! owns. The layout itself (field offsets, attributes, [`BatchHeader`],
//! the CRC) is shardlog-wire's, shared with the load generator, and is
//! re-exported here so the broker names it in one place.

use bytes::Bytes;
// The whole layout, so `record::batch` reads as shardlog-wire's batch
// module plus the broker's validation and patching.
pub use shardlog_wire::batch::*;

/// Why a batch was refused. Each variant maps to the Kafka error code Apache
/// Kafka returns for the same fault (in `handler::errors`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch of {0} bytes is shorter than the 61-byte v2 header")]
    TooShort(usize),
    #[error("batchLength {declared} does not match the {actual} bytes present")]
    LengthMismatch { declared: i32, actual: usize },
    #[error("magic {0} is not accepted here: produce v3+ carries only v2 batches")]
    UnsupportedMagic(i8),
    #[error("unknown record batch magic {0}")]
    UnknownMagic(i8),
    #[error("producer batch has baseOffset {0}; clients must send 0")]
    NonZeroBaseOffset(i64),
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    #[error("recordCount {record_count} is not lastOffsetDelta {last_offset_delta} + 1")]
    RecordCountMismatch {
        record_count: i32,
        last_offset_delta: i32,
    },
    #[error("{record_count} records cannot fit in {records_bytes} uncompressed bytes")]
    RecordCountImpossible {
        record_count: i32,
        records_bytes: usize,
    },
    #[error("Timestamp {timestamp} of message with offset 0 is out of range. The timestamp should be within [{min}, {max}]")]
    TimestampOutOfRange { timestamp: i64, min: i64, max: i64 },
    #[error("clients may not write control batches")]
    ControlBatchFromProducer,
    #[error("replicated batch starts at offset {found}, before the log end {expected}")]
    NotAtLogEnd { expected: i64, found: i64 },
    /// Only looked for when the batch must be recompressed (a topic's
    /// compression.type): its records do not decode.
    #[error("its records do not decode (malformed, or over {0} bytes decompressed)")]
    UndecodableRecords(usize),
}

/// Rebuilds a producer batch with its records compressed by `codec` (a
/// topic whose compression.type names a codec other than the batch's, as
/// Kafka's LogValidator recompresses): the same records, timestamps,
/// producer id, epoch, base sequence and transactional flag.
pub fn recompress(
    batch: &[u8],
    header: &BatchHeader,
    codec: Compression,
    level: Option<i32>,
) -> Result<Vec<u8>, BatchError> {
    use shardlog_wire::records::{decode_records, BatchBuilder, Record, DECODED_BYTES_MAX};
    let records = decode_records(batch)
        .filter(|r| !r.is_empty())
        .ok_or(BatchError::UndecodableRecords(DECODED_BYTES_MAX))?;
    let mut b = BatchBuilder::new(header.base_timestamp).transactional(header.is_transactional());
    if header.has_producer_id() {
        b = b.idempotent(
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
        );
    }
    for r in records {
        b.push(&Record {
            timestamp_delta: r.timestamp - header.base_timestamp,
            key: r.key,
            value: r.value,
            headers: r.headers,
        });
    }
    Ok(b.build_compressed_level(codec, level))
}

impl From<UnknownCodec> for BatchError {
    fn from(UnknownCodec(id): UnknownCodec) -> Self {
        BatchError::UnknownCompression(id)
    }
}

/// Checks framing: header present, batchLength consistent, magic 2.
#[inline]
fn check_frame(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch).ok_or(BatchError::TooShort(batch.len()))?;
    // Magic is checked before the length so an old-format message set (whose
    // length field means something else) is reported as such.
    match header.magic {
        MAGIC_V2 => {}
        0 | 1 => return Err(BatchError::UnsupportedMagic(header.magic)),
        other => return Err(BatchError::UnknownMagic(other)),
    }
    let declared = header.batch_length;
    if declared < (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32
        || declared as usize + LOG_OVERHEAD_BYTES != batch.len()
    {
        return Err(BatchError::LengthMismatch {
            declared,
            actual: batch.len(),
        });
    }
    Ok(header)
}

#[inline]
fn check_crc(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    let computed = batch_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(())
}

/// Validates one batch exactly as a producer sent it, in Apache Kafka's
/// order: framing, baseOffset 0, size, CRC, compression codec, count and
/// offset range, and no control batches. Reads only the header and runs the
/// CRC over the bytes; records are not decoded.
#[inline]
pub fn validate_producer_batch(
    batch: &[u8],
    max_message_bytes: usize,
) -> Result<BatchHeader, BatchError> {
    let header = check_frame(batch)?;
    if header.base_offset != 0 {
        return Err(BatchError::NonZeroBaseOffset(header.base_offset));
    }
    if batch.len() > max_message_bytes {
        return Err(BatchError::TooLarge {
            size: batch.len(),
            max: max_message_bytes,
        });
    }
    check_crc(batch, &header)?;
    let compression = header.compression()?;
    if header.record_count <= 0
        || header.last_offset_delta < 0
        || i64::from(header.record_count) != i64::from(header.last_offset_delta) + 1
    {
        return Err(BatchError::RecordCountMismatch {
            record_count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    let records_bytes = batch.len() - HEADER_BYTES;
    if compression == Compression::None
        && (header.record_count as usize).saturating_mul(RECORD_BYTES_MIN) > records_bytes
    {
        return Err(BatchError::RecordCountImpossible {
            record_count: header.record_count,
            records_bytes,
        });
    }
    if header.is_control() {
        return Err(BatchError::ControlBatchFromProducer);
    }
    Ok(header)
}

/// Checks a batch a follower copies from its leader: the frame (magic and
/// length), offsets that go forward, and that it starts at `log_end` or past
/// it (a gap the leader's log cleaner left). The
/// CRC is the leader's to have checked; the bytes are kept as they are.
pub fn validate_replica_batch(batch: &[u8], log_end: i64) -> Result<BatchHeader, BatchError> {
    let header = check_frame(batch)?;
    if header.last_offset_delta < 0 {
        return Err(BatchError::RecordCountMismatch {
            record_count: header.record_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if header.base_offset < log_end {
        return Err(BatchError::NotAtLogEnd {
            expected: log_end,
            found: header.base_offset,
        });
    }
    Ok(header)
}

/// Validates a batch read back from a segment: framing, magic and CRC. Used
/// by recovery and read-back assertions; offsets are checked by the caller.
pub fn validate_stored_batch(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = check_frame(batch)?;
    check_crc(batch, &header)?;
    Ok(header)
}

/// Writes the broker-assigned base offset and leader epoch into a batch.
/// Both fields lie before the CRC range, so the CRC stays valid.
#[inline]
pub fn patch_base_offset_and_epoch(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a batch as LogAppendTime with `now_ms` as its max timestamp, as
/// Kafka does for topics with message.timestamp.type=LogAppendTime, and
/// recomputes the CRC because both fields are inside the checksummed range.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes =
        i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]) | ATTR_TIMESTAMP_TYPE;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    write_crc(batch);
}

/// Splits a records field holding concatenated batches into one `Bytes` per
/// batch (zero-copy slices). Stops with an error at the first batch whose
/// length field runs past the end; a v2 header is not otherwise checked.
pub fn split_batches(records: &Bytes) -> Result<Vec<Bytes>, BatchError> {
    let mut batches = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        let declared = declared_length(rest).ok_or(BatchError::TooShort(rest.len()))?;
        let total = LOG_OVERHEAD_BYTES as i64 + i64::from(declared);
        if declared < 0 || total as usize > rest.len() {
            return Err(BatchError::LengthMismatch {
                declared,
                actual: rest.len(),
            });
        }
        batches.push(records.slice(at..at + total as usize));
        at += total as usize;
    }
    Ok(batches)
}

/// A small idempotent producer batch for unit tests: two records, one
/// with a key, headers and a null value.
#[cfg(test)]
pub(crate) fn sample_batch() -> Vec<u8> {
    use crate::record::records::{BatchBuilder, Record};
    let mut b = BatchBuilder::new(1_700_000_000_000).idempotent(9, 2, 40);
    b.push(&Record {
        timestamp_delta: 0,
        key: Some(b"k".to_vec()),
        value: None,
        headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
    });
    b.push_value(5, b"second");
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::records::decode_records;

    fn sample() -> Vec<u8> {
        sample_batch()
    }

    // Proves a well-formed batch passes and its header fields read back as
    // built, including the wrapped last sequence and the record contents.
    #[test]
    fn valid_batch_round_trips() {
        let bytes = sample();
        let h = validate_producer_batch(&bytes, 1 << 20).unwrap();
        assert_eq!((h.record_count, h.last_offset_delta), (2, 1));
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 2, 40)
        );
        assert_eq!(h.last_sequence(), 41);
        assert_eq!(h.max_timestamp, 1_700_000_000_005);
        let records = decode_records(&bytes).unwrap();
        assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(records[0].value, None);
        assert_eq!(records[0].headers.len(), 2);
        assert_eq!(records[1].offset, 1);
        assert_eq!(records[1].timestamp, 1_700_000_000_005);
    }

    // Proves patching offsets keeps the CRC valid, and LogAppendTime
    // stamping recomputes it.
    #[test]
    fn patching_keeps_the_crc_valid() {
        let mut bytes = sample();
        patch_base_offset_and_epoch(&mut bytes, 1234, 7);
        let h = validate_stored_batch(&bytes).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (1234, 7));
        set_log_append_time(&mut bytes, 99);
        let h = validate_stored_batch(&bytes).unwrap();
        assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(h.max_timestamp, 99);
        assert_eq!(decode_records(&bytes).unwrap()[1].timestamp, 99);
    }

    // Proves a records field is split into whole batches, and a length
    // running past the end is an error.
    #[test]
    fn split_concatenated_batches() {
        let one = sample();
        let mut two = one.clone();
        two.extend_from_slice(&one);
        let bytes = Bytes::from(two.clone());
        let parts = split_batches(&bytes).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[1][..], &one[..]);
        let cut = Bytes::from(two[..two.len() - 1].to_vec());
        assert!(split_batches(&cut).is_err());
    }
}
