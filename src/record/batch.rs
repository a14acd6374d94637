//! The v2 record batch header: layout, validation and in-place patching.
//!
//! Layout (all integers big-endian), as Apache Kafka defines it:
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset
//!      8     4  batchLength          (bytes after this field)
//!     12     4  partitionLeaderEpoch
//!     16     1  magic (2)
//!     17     4  crc                  (CRC32C of bytes 21..end)
//!     21     2  attributes
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61        records...
//! ```

use bytes::Bytes;

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORD_COUNT_AT: usize = 57;
/// Size of the fixed v2 batch header; records start here.
pub const HEADER_BYTES: usize = 61;
/// baseOffset + batchLength: the bytes of a batch not counted in batchLength.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The CRC covers everything from the attributes to the end of the batch.
pub const CRC_FROM: usize = ATTRIBUTES_AT;
/// The smallest possible encoded record: length, attributes, timestamp delta,
/// offset delta, key length, value length and header count, one byte each.
pub const RECORD_BYTES_MIN: usize = 7;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

const _: () = assert!(HEADER_BYTES == RECORD_COUNT_AT + 4);
const _: () = assert!(CRC_FROM == CRC_AT + 4);

/// The compression codec named by the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & ATTR_COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other as u8)),
        }
    }
}

/// Kafka's two timestamp types (topic config message.timestamp.type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// A parsed copy of a v2 batch header. Parsing reads 61 bytes and checks
/// nothing; validation is done by [`validate_producer_batch`] and
/// [`validate_stored_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

// Field readers. Callers pass constant offsets into slices known to be at
// least a header long, so after inlining the bounds checks fold away.
#[inline(always)]
fn be_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8-byte field"))
}
#[inline(always)]
fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4-byte field"))
}
#[inline(always)]
fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(buf[at..at + 2].try_into().expect("2-byte field"))
}

impl BatchHeader {
    /// Reads the header fields from the first 61 bytes of `buf`, or `None` if
    /// `buf` is shorter than that.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let buf: &[u8; HEADER_BYTES] = buf.get(..HEADER_BYTES)?.try_into().ok()?;
        Some(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_AT),
            batch_length: be_i32(buf, BATCH_LENGTH_AT),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
            magic: buf[MAGIC_AT] as i8,
            crc: be_i32(buf, CRC_AT) as u32,
            attributes: be_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: be_i64(buf, PRODUCER_ID_AT),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(buf, BASE_SEQUENCE_AT),
            record_count: be_i32(buf, RECORD_COUNT_AT),
        })
    }

    /// The batch's size on disk and on the wire, log overhead included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset the batch after this one starts at.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_attributes(self.attributes)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the batch carries an idempotent producer id.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the last record, wrapping past i32::MAX to 0 as
    /// Kafka's `DefaultRecordBatch.incrementSequence` does; -1 when the batch
    /// carries no sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Adds `by` to a producer sequence number, wrapping to 0 after i32::MAX.
pub fn increment_sequence(sequence: i32, by: i32) -> i32 {
    if sequence > i32::MAX - by {
        by - (i32::MAX - sequence) - 1
    } else {
        sequence + by
    }
}

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
    #[error("clients may not write control batches")]
    ControlBatchFromProducer,
}

/// CRC32C of a batch's checksummed range (attributes to end).
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_FROM..])
}

/// Checks framing: header present, batchLength consistent, magic 2.
#[inline]
fn check_frame(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(batch).ok_or(BatchError::TooShort(batch.len()))?;
    // Magic is checked before the length so an old-format message set (whose
    // length field means something else) is reported as such.
    match header.magic {
        2 => {}
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
    let attributes = be_i16(batch, ATTRIBUTES_AT) | ATTR_TIMESTAMP_TYPE;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = batch_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a records field holding concatenated batches into one `Bytes` per
/// batch (zero-copy slices). Stops with an error at the first batch whose
/// length field runs past the end; a v2 header is not otherwise checked.
pub fn split_batches(records: &Bytes) -> Result<Vec<Bytes>, BatchError> {
    let mut batches = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        if rest.len() < LOG_OVERHEAD_BYTES {
            return Err(BatchError::TooShort(rest.len()));
        }
        let declared = be_i32(rest, BATCH_LENGTH_AT);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::records::{decode_records, BatchBuilder, Record};
    // The Kafka codes these faults map to are decided in handler::errors.
    use crate::error_code::ErrorCode;
    use crate::handler::errors::ToErrorCode;

    fn sample() -> Vec<u8> {
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

    // Proves each malformed header is refused with Kafka's error code.
    #[test]
    fn malformed_batches_map_to_kafka_codes() {
        let good = sample();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            validate_producer_batch(&b, 1 << 20)
                .map(|_| ())
                .unwrap_err()
        };
        let recrc = |b: &mut Vec<u8>| {
            let crc = batch_crc(b);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        };
        assert_eq!(
            with(&|b| b.truncate(60)).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(
            with(&|b| b[MAGIC_AT] = 1).error_code(),
            ErrorCode::InvalidRecord
        );
        assert_eq!(
            with(&|b| b[MAGIC_AT] = 3).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(with(&|b| b[7] = 1).error_code(), ErrorCode::InvalidRecord);
        assert_eq!(
            with(&|b| b[BATCH_LENGTH_AT + 3] ^= 1).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(
            with(&|b| *b.last_mut().unwrap() ^= 1).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(
            with(&|b| {
                b[ATTRIBUTES_AT + 1] |= 0x20;
                recrc(b)
            }),
            BatchError::ControlBatchFromProducer
        );
        assert_eq!(
            with(&|b| {
                b[ATTRIBUTES_AT + 1] |= 0x07;
                recrc(b)
            }),
            BatchError::UnknownCompression(7)
        );
        assert_eq!(
            with(&|b| {
                b[RECORD_COUNT_AT + 3] = 3;
                recrc(b)
            })
            .error_code(),
            ErrorCode::InvalidRecord
        );
        assert!(matches!(
            with(&|b| {
                b[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&1000i32.to_be_bytes());
                b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                    .copy_from_slice(&999i32.to_be_bytes());
                recrc(b)
            }),
            BatchError::RecordCountImpossible { .. }
        ));
        let size = good.len();
        assert_eq!(
            validate_producer_batch(&good, size - 1)
                .unwrap_err()
                .error_code(),
            ErrorCode::MessageTooLarge
        );
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
