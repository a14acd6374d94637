//! Encoding and decoding of the records inside an uncompressed v2 batch.
//!
//! The broker's data path never needs this: it is used by tools (the load
//! generator builds batches with [`BatchBuilder`]), by tests, and by the rare
//! paths that must look inside a batch, such as finding the first record at or
//! after a timestamp.

use super::batch::{
    batch_crc, BatchHeader, Compression, TimestampType, BATCH_LENGTH_AT, CRC_AT, HEADER_BYTES,
    LOG_OVERHEAD_BYTES, RECORD_BYTES_MIN,
};
use super::compression::decompress;

/// One record as a producer hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub timestamp_delta: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Builds one uncompressed v2 batch, the way a Kafka producer does.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    records: Vec<u8>,
    count: i32,
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    // Zig-zag, then unsigned LEB128: Kafka's varint/varlong encoding.
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

impl BatchBuilder {
    /// A batch whose first record has timestamp `base_timestamp`, without a
    /// producer id (a non-idempotent producer).
    pub fn new(base_timestamp: i64) -> Self {
        BatchBuilder {
            base_timestamp,
            max_timestamp: base_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            records: Vec::new(),
            count: 0,
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn idempotent(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    pub fn push(&mut self, record: &Record) {
        let mut body = Vec::with_capacity(
            16 + record.key.as_ref().map_or(0, Vec::len)
                + record.value.as_ref().map_or(0, Vec::len),
        );
        body.push(0); // record attributes: unused
        put_varint(&mut body, record.timestamp_delta);
        put_varint(&mut body, i64::from(self.count));
        put_bytes(&mut body, record.key.as_deref());
        put_bytes(&mut body, record.value.as_deref());
        put_varint(&mut body, record.headers.len() as i64);
        for (key, value) in &record.headers {
            put_bytes(&mut body, Some(key.as_bytes()));
            put_bytes(&mut body, value.as_deref());
        }
        put_varint(&mut self.records, body.len() as i64);
        self.records.extend_from_slice(&body);
        self.max_timestamp = self
            .max_timestamp
            .max(self.base_timestamp + record.timestamp_delta);
        self.count += 1;
    }

    /// Adds a record with just a value, stamped `timestamp_delta` ms after
    /// the batch's base timestamp.
    pub fn push_value(&mut self, timestamp_delta: i64, value: &[u8]) {
        self.push(&Record {
            timestamp_delta,
            key: None,
            value: Some(value.to_vec()),
            headers: Vec::new(),
        });
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Encodes the batch with baseOffset 0, as a producer sends it.
    pub fn build(&self) -> Vec<u8> {
        self.build_compressed(Compression::None)
    }

    /// Encodes the batch with its records compressed by `codec`, as a
    /// producer configured with that compression.type sends it.
    pub fn build_compressed(&self, codec: Compression) -> Vec<u8> {
        assert!(self.count > 0, "a batch holds at least one record");
        let records = compress(codec, &self.records);
        let mut out = Vec::with_capacity(HEADER_BYTES + records.len());
        out.extend_from_slice(&0i64.to_be_bytes());
        let batch_length = (HEADER_BYTES - LOG_OVERHEAD_BYTES + records.len()) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        out.push(2); // magic
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        let transactional: i16 = if self.transactional { 0x10 } else { 0 };
        let attributes = transactional | codec_id(codec);
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(self.count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&records);
        debug_assert_eq!(out.len(), HEADER_BYTES + records.len());
        debug_assert_eq!(
            &out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4],
            &batch_length.to_be_bytes()
        );
        let crc = batch_crc(&out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

fn codec_id(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Compresses a records section the way producers do (raw snappy, as
/// librdkafka writes it; an LZ4 frame; gzip; zstd).
fn compress(codec: Compression, records: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::None => records.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(records).expect("writing to a Vec");
            e.finish().expect("writing to a Vec")
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(records)
            .expect("snappy input within limits"),
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(records).expect("writing to a Vec");
            e.finish().expect("writing to a Vec")
        }
        Compression::Zstd => zstd::stream::encode_all(records, 1).expect("zstd to a Vec"),
    }
}

/// A record decoded from a batch, with absolute offset and
/// timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> Option<i64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<Option<Vec<u8>>> {
        let len = self.varint()?;
        if len < 0 {
            return Some(None);
        }
        let end = self.at.checked_add(len as usize)?;
        let out = self.buf.get(self.at..end)?.to_vec();
        self.at = end;
        Some(Some(out))
    }
}

/// Most bytes a batch's records may decompress to when decoded here.
pub const DECODED_BYTES_MAX: usize = 64 << 20;

/// Decodes the records of a batch, decompressing them first if needed (up
/// to [`DECODED_BYTES_MAX`]). Returns `None` if the batch is malformed or
/// decompresses to more than that.
pub fn decode_records(batch: &[u8]) -> Option<Vec<DecodedRecord>> {
    let header = BatchHeader::parse(batch)?;
    let codec = header.compression().ok()?;
    let section = batch.get(HEADER_BYTES..)?;
    let payload;
    let records: &[u8] = if codec == Compression::None {
        section
    } else {
        payload = decompress(codec, section, DECODED_BYTES_MAX).ok()?;
        &payload
    };
    let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
    let mut cursor = Cursor {
        buf: records,
        at: 0,
    };
    // The count comes from the wire: never reserve more than the bytes
    // could hold.
    let capacity = (header.record_count.max(0) as usize).min(records.len() / RECORD_BYTES_MIN);
    let mut out = Vec::with_capacity(capacity);
    for _ in 0..header.record_count {
        let len = cursor.varint()?;
        let end = cursor.at.checked_add(usize::try_from(len).ok()?)?;
        if end > records.len() {
            return None;
        }
        cursor.at += 1; // attributes
        let timestamp_delta = cursor.varint()?;
        let offset_delta = cursor.varint()?;
        let key = cursor.bytes()?;
        let value = cursor.bytes()?;
        let header_count = cursor.varint()?;
        let mut headers = Vec::new();
        for _ in 0..header_count.max(0) {
            let k = cursor.bytes()?.unwrap_or_default();
            let v = cursor.bytes()?;
            headers.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        if cursor.at != end {
            return None;
        }
        out.push(DecodedRecord {
            offset: header.base_offset + offset_delta,
            timestamp: if log_append {
                header.max_timestamp
            } else {
                header.base_timestamp + timestamp_delta
            },
            key,
            value,
            headers,
        });
    }
    Some(out)
}
