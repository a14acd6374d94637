//! The v2 record batch header (message format v2): layout, attributes,
//! parsing, writing and the CRC.
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
//!
//! Parsing checks nothing beyond the header being present: deciding what a
//! malformed batch means (a Kafka error code, a dropped connection) is the
//! caller's business.

use std::fmt;
use std::str::FromStr;

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
/// The magic byte of the v2 format, the only one written here.
pub const MAGIC_V2: i8 = 2;

/// Attribute bits 0-2: the compression codec of the records section.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: set for LogAppendTime, clear for CreateTime.
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
/// Attribute bit 4: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction markers), never from a
/// producer.
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6 (KIP-534): the base timestamp holds the batch's delete
/// horizon, the time after which the log cleaner may remove its tombstones.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

const _: () = assert!(HEADER_BYTES == RECORD_COUNT_AT + 4);
const _: () = assert!(CRC_FROM == CRC_AT + 4);
const _: () = assert!(LOG_OVERHEAD_BYTES == BATCH_LENGTH_AT + 4);

/// The compression codec named by the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

/// Attribute bits naming a codec Kafka does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression codec id {0}")]
pub struct UnknownCodec(pub u8);

/// A `compression.type` name Kafka does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type {0:?} (none, gzip, snappy, lz4 or zstd)")]
pub struct UnknownCodecName(pub String);

impl Compression {
    /// Every codec, in the order of their ids.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec's id in the attribute bits (Kafka's `CompressionType.id`).
    #[inline]
    pub const fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec a batch's attributes name (only the codec bits are read).
    #[inline]
    pub const fn from_attributes(attributes: i16) -> Result<Self, UnknownCodec> {
        // A search over `id` rather than a second match, so each codec's
        // number is written down once.
        let id = attributes & ATTR_COMPRESSION_MASK;
        let mut i = 0;
        while i < Self::ALL.len() {
            if Self::ALL[i].id() == id {
                return Ok(Self::ALL[i]);
            }
            i += 1;
        }
        Err(UnknownCodec(id as u8))
    }

    /// Kafka's name for the codec (the `compression.type` values).
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = UnknownCodecName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownCodecName(s.to_string()))
    }
}

/// Kafka's two timestamp types (topic config message.timestamp.type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// A parsed copy of a v2 batch header.
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

    /// The header a producer writes in front of `record_count` records
    /// whose offset deltas run from 0: base offset 0 and no leader epoch
    /// (the broker assigns both), and no producer id (a non-idempotent
    /// producer). The batch length and CRC depend on the records, so
    /// [`seal`] fills them in once the records follow the header.
    pub fn for_producer(
        record_count: i32,
        compression: Compression,
        base_timestamp: i64,
        max_timestamp: i64,
    ) -> Self {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: MAGIC_V2,
            crc: 0,
            attributes: compression.id(),
            last_offset_delta: record_count - 1,
            base_timestamp,
            max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count,
        }
    }

    /// Writes every field into the first 61 bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_BYTES`].
    #[inline]
    pub fn write(&self, out: &mut [u8]) {
        let out: &mut [u8; HEADER_BYTES] = (&mut out[..HEADER_BYTES])
            .try_into()
            .expect("a header-sized slice");
        out[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&self.base_offset.to_be_bytes());
        out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&self.batch_length.to_be_bytes());
        out[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
            .copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out[MAGIC_AT] = self.magic as u8;
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&self.crc.to_be_bytes());
        out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&self.attributes.to_be_bytes());
        out[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&self.last_offset_delta.to_be_bytes());
        out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8]
            .copy_from_slice(&self.base_timestamp.to_be_bytes());
        out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
            .copy_from_slice(&self.max_timestamp.to_be_bytes());
        out[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&self.producer_id.to_be_bytes());
        out[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2]
            .copy_from_slice(&self.producer_epoch.to_be_bytes());
        out[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4]
            .copy_from_slice(&self.base_sequence.to_be_bytes());
        out[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&self.record_count.to_be_bytes());
    }

    /// The batch's size on disk and on the wire, log overhead included.
    #[inline]
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }

    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset the batch after this one starts at.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// KIP-534: the time after which the log cleaner may remove this
    /// batch's tombstones, when the cleaner has set one.
    #[inline]
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    #[inline]
    pub fn compression(&self) -> Result<Compression, UnknownCodec> {
        Compression::from_attributes(self.attributes)
    }

    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the batch carries an idempotent producer id.
    #[inline]
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the last record, wrapping past i32::MAX to 0 as
    /// Kafka's `DefaultRecordBatch.incrementSequence` does; -1 when the batch
    /// carries no sequence.
    #[inline]
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Adds `by` to a producer sequence number, wrapping to 0 after i32::MAX.
#[inline]
pub fn increment_sequence(sequence: i32, by: i32) -> i32 {
    if sequence > i32::MAX - by {
        by - (i32::MAX - sequence) - 1
    } else {
        sequence + by
    }
}

/// The batchLength field of the batch starting at `buf`, or `None` if
/// `buf` is shorter than the 12 bytes that hold it. Enough to find where a
/// batch ends among concatenated batches without reading the full header.
#[inline]
pub fn declared_length(buf: &[u8]) -> Option<i32> {
    let prefix = buf.get(..LOG_OVERHEAD_BYTES)?;
    Some(be_i32(prefix, BATCH_LENGTH_AT))
}

/// CRC32C of a batch's checksummed range (attributes to end).
///
/// # Panics
/// If `batch` is shorter than [`CRC_FROM`].
#[inline]
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_FROM..])
}

/// Recomputes a batch's CRC and stores it, after a field inside the
/// checksummed range changed.
#[inline]
pub fn write_crc(batch: &mut [u8]) {
    let crc = batch_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Finishes a batch whose header and records are in place: batchLength
/// from the slice's length, then the CRC over the final bytes. `batch` is
/// exactly one whole batch.
#[inline]
pub fn seal(batch: &mut [u8]) {
    let batch_length =
        i32::try_from(batch.len() - LOG_OVERHEAD_BYTES).expect("a batch shorter than 2 GiB");
    batch[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    write_crc(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves a header written and sealed parses back field for field, with
    // its length and CRC derived from the bytes.
    #[test]
    fn header_write_seal_parse_round_trip() {
        let mut header = BatchHeader::for_producer(3, Compression::Lz4, 1_000, 1_002);
        header.producer_id = 77;
        header.producer_epoch = 2;
        header.base_sequence = i32::MAX - 1;
        header.attributes |= ATTR_TRANSACTIONAL;
        let mut batch = vec![0u8; HEADER_BYTES + 20];
        header.write(&mut batch);
        batch[HEADER_BYTES..].fill(0xab);
        seal(&mut batch);
        let parsed = BatchHeader::parse(&batch).unwrap();
        assert_eq!(
            parsed.batch_length as usize,
            batch.len() - LOG_OVERHEAD_BYTES
        );
        assert_eq!(parsed.total_bytes(), batch.len());
        assert_eq!(parsed.crc, batch_crc(&batch));
        assert_eq!(
            BatchHeader {
                batch_length: parsed.batch_length,
                crc: parsed.crc,
                ..header
            },
            parsed
        );
        assert_eq!(declared_length(&batch), Some(parsed.batch_length));
        assert_eq!(declared_length(&batch[..11]), None);
        assert_eq!(parsed.compression(), Ok(Compression::Lz4));
        assert_eq!(parsed.timestamp_type(), TimestampType::CreateTime);
        assert!(parsed.is_transactional() && !parsed.is_control());
        assert!(parsed.has_producer_id());
        assert_eq!((parsed.next_offset(), parsed.last_sequence()), (3, 0));
        assert_eq!(BatchHeader::parse(&batch[..HEADER_BYTES - 1]), None);
    }

    // Proves codec ids and names are Kafka's, both ways, and unknown ones
    // are refused.
    #[test]
    fn codec_ids_and_names() {
        for (id, c) in Compression::ALL.into_iter().enumerate() {
            assert_eq!(c.id(), id as i16);
            assert_eq!(Compression::from_attributes(id as i16 | 0x18), Ok(c));
            assert_eq!(c.name().parse::<Compression>(), Ok(c));
        }
        assert_eq!(Compression::from_attributes(5), Err(UnknownCodec(5)));
        assert_eq!(Compression::from_attributes(7), Err(UnknownCodec(7)));
        assert!("brotli".parse::<Compression>().is_err());
    }

    // Proves sequence numbers wrap to 0 past i32::MAX, as Kafka's do.
    #[test]
    fn sequences_wrap() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
