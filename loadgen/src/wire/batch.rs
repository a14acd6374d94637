//! v2 record batches, built from a precomputed template and walked without
//! decoding.
//!
//! Every record the load generator sends has the same shape: an optional
//! 8-byte key, a value of `--record-size` bytes, no headers, timestamp delta
//! 0. So a whole batch of `capacity` records is laid out once (the
//! [`Template`]); building a batch then only patches each record's value
//! stamp (and key), and sealing copies the first `n` records behind a
//! freshly written header and computes the CRC. No record is encoded per
//! send and nothing is allocated per record.
//!
//! Value layout: bytes 0..8 are the record's intended send time in
//! microseconds since the Unix epoch, big-endian (the end-to-end latency
//! stamp); the rest is a fixed pseudo-random payload of capital letters,
//! the same in every record (as kafka-producer-perf-test does).

use std::io::Write;

use super::{put_varint, varint_len, Malformed, Reader};

/// Size of the v2 batch header, up to and including the record count.
pub const HEADER_BYTES: usize = 61;
/// Bytes of a batch not counted by its length field (baseOffset, length).
pub const LOG_OVERHEAD: usize = 12;
/// Bytes of the end-to-end stamp at the start of each value.
pub const STAMP_BYTES: usize = 8;
/// Bytes of a key when a key distribution is used (u64, big-endian).
pub const KEY_BYTES: usize = 8;

const LENGTH_OFFSET: usize = 8;
const LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;
const _: () = assert!(RECORDS_COUNT_OFFSET + 4 == HEADER_BYTES);

/// Java's snappy framing (xerial): what Kafka brokers expect from clients.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_BLOCK_BYTES: usize = 32 << 10;

/// `--compression`: the batch codec (attributes bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn attribute(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    fn from_attributes(attributes: i16) -> Option<Compression> {
        match attributes & 0x7 {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Compresses `plain` into `out` (cleared first), in the framing Kafka
    /// clients use for this codec.
    pub fn compress(self, plain: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        out.clear();
        match self {
            Compression::None => out.extend_from_slice(plain),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                e.write_all(plain)?;
                e.finish()?;
            }
            Compression::Snappy => {
                out.extend_from_slice(&XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                let mut enc = snap::raw::Encoder::new();
                for chunk in plain.chunks(XERIAL_BLOCK_BYTES) {
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
                    let n = enc
                        .compress(chunk, &mut out[at + 4..])
                        .map_err(std::io::Error::other)?;
                    out.truncate(at + 4 + n);
                    out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
                }
            }
            Compression::Lz4 => {
                let mut e = lz4_flex::frame::FrameEncoder::new(out);
                e.write_all(plain)?;
                e.finish().map_err(std::io::Error::other)?;
            }
            Compression::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(out, 1)?;
                e.write_all(plain)?;
                e.finish()?;
            }
        }
        Ok(())
    }

    /// Decompresses a batch's records section into `out` (cleared first).
    pub fn decompress(self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        use std::io::Read;
        out.clear();
        match self {
            Compression::None => out.extend_from_slice(data),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(data).read_to_end(out)?;
            }
            Compression::Snappy => {
                if data.starts_with(&XERIAL_MAGIC) {
                    let mut r = Reader::new(&data[16.min(data.len())..]);
                    let mut dec = snap::raw::Decoder::new();
                    while r.remaining() > 0 {
                        let n = r.i32().map_err(std::io::Error::other)? as usize;
                        let block = r.bytes(n).map_err(std::io::Error::other)?;
                        out.extend(dec.decompress_vec(block).map_err(std::io::Error::other)?);
                    }
                } else {
                    *out = snap::raw::Decoder::new()
                        .decompress_vec(data)
                        .map_err(std::io::Error::other)?;
                }
            }
            Compression::Lz4 => {
                lz4_flex::frame::FrameDecoder::new(data).read_to_end(out)?;
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(data)?.read_to_end(out)?;
            }
        }
        Ok(())
    }
}

/// A full batch of `capacity` identical records, laid out once, with the
/// positions of the per-record fields.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    keyed: bool,
    value_bytes: usize,
    /// Start of record k's key (meaningful when keyed).
    key_at: Vec<usize>,
    /// Start of record k's value.
    value_at: Vec<usize>,
    /// End of record k: the batch of the first k+1 records ends here.
    end_at: Vec<usize>,
}

impl Template {
    /// Lays out as many records as fit in `batch_bytes_max` (Kafka's
    /// `batch.size`), and at least one.
    pub fn new(value_bytes: usize, keyed: bool, batch_bytes_max: usize) -> Template {
        let mut payload = vec![0u8; value_bytes];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for b in payload.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = b'A' + (seed % 26) as u8;
        }
        let mut bytes = vec![0u8; HEADER_BYTES];
        let (mut key_at, mut value_at, mut end_at) = (Vec::new(), Vec::new(), Vec::new());
        let key_len: i64 = if keyed { KEY_BYTES as i64 } else { -1 };
        for k in 0.. {
            let body = 1 // attributes
                + 1 // timestamp delta 0
                + varint_len(k)
                + varint_len(key_len)
                + key_len.max(0) as usize
                + varint_len(value_bytes as i64)
                + value_bytes
                + 1; // header count 0
            let total = varint_len(body as i64) + body;
            if k > 0 && bytes.len() + total > batch_bytes_max {
                break;
            }
            put_varint(&mut bytes, body as i64);
            bytes.push(0);
            put_varint(&mut bytes, 0);
            put_varint(&mut bytes, k);
            put_varint(&mut bytes, key_len);
            key_at.push(bytes.len());
            bytes.resize(bytes.len() + key_len.max(0) as usize, 0);
            put_varint(&mut bytes, value_bytes as i64);
            value_at.push(bytes.len());
            bytes.extend_from_slice(&payload);
            put_varint(&mut bytes, 0);
            end_at.push(bytes.len());
        }
        Template {
            bytes,
            keyed,
            value_bytes,
            key_at,
            value_at,
            end_at,
        }
    }

    /// Records per full batch.
    pub fn capacity(&self) -> usize {
        self.end_at.len()
    }

    pub fn keyed(&self) -> bool {
        self.keyed
    }

    pub fn value_bytes(&self) -> usize {
        self.value_bytes
    }

    /// A fresh batch buffer (a copy of the template) to stamp records into.
    pub fn new_buffer(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Size of an uncompressed batch of `n` records.
    pub fn batch_bytes(&self, n: usize) -> usize {
        self.end_at[n - 1]
    }

    /// Writes record `k`'s end-to-end stamp and key into `buf`.
    #[inline]
    pub fn stamp(&self, buf: &mut [u8], k: usize, stamp_us: u64, key: Option<u64>) {
        if self.value_bytes >= STAMP_BYTES {
            let at = self.value_at[k];
            buf[at..at + STAMP_BYTES].copy_from_slice(&stamp_us.to_be_bytes());
        }
        if let (true, Some(key)) = (self.keyed, key) {
            let at = self.key_at[k];
            buf[at..at + KEY_BYTES].copy_from_slice(&key.to_be_bytes());
        }
    }

    /// Appends to `out` the finished batch of the first `n` records of
    /// `buf`: header, records (compressed through `scratch` unless the codec
    /// is none) and CRC. Returns the batch's size.
    pub fn seal_into(
        &self,
        buf: &[u8],
        n: usize,
        timestamp_ms: i64,
        compression: Compression,
        scratch: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<usize> {
        assert!(n >= 1 && n <= self.capacity());
        let records = &buf[HEADER_BYTES..self.end_at[n - 1]];
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_BYTES]);
        if compression == Compression::None {
            out.extend_from_slice(records);
        } else {
            compression.compress(records, scratch)?;
            out.extend_from_slice(scratch);
        }
        let size = out.len() - start;
        let h = &mut out[start..];
        h[LENGTH_OFFSET..LENGTH_OFFSET + 4]
            .copy_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
        h[LEADER_EPOCH_OFFSET..LEADER_EPOCH_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
        h[MAGIC_OFFSET] = 2;
        h[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
            .copy_from_slice(&compression.attribute().to_be_bytes());
        h[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&((n - 1) as i32).to_be_bytes());
        h[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&timestamp_ms.to_be_bytes());
        h[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
            .copy_from_slice(&timestamp_ms.to_be_bytes());
        h[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&(-1i64).to_be_bytes());
        h[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2].copy_from_slice(&(-1i16).to_be_bytes());
        h[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4].copy_from_slice(&(-1i32).to_be_bytes());
        h[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
            .copy_from_slice(&(n as i32).to_be_bytes());
        let crc = crc32c::crc32c(&h[ATTRIBUTES_OFFSET..]);
        h[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(size)
    }
}

/// What a batch header says, read without touching its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size, including the 12 bytes before the length field.
    pub size: usize,
    pub compression: Compression,
    /// lastOffsetDelta + 1 (a compacted batch may hold fewer).
    pub records: u64,
    pub base_timestamp_ms: i64,
}

impl BatchHeader {
    /// The offset after this batch's last record.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + self.records as i64
    }
}

/// The complete batches at the start of `data` (a fetch response's
/// records), in order. A trailing partial batch (Kafka may cut the last one
/// at `max_bytes`) is left out; a batch of another magic is an error.
pub fn batch_headers(data: &[u8]) -> impl Iterator<Item = Result<BatchHeader, Malformed>> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = &data[pos..];
        if rest.len() < HEADER_BYTES {
            return None;
        }
        let len = i32::from_be_bytes(rest[LENGTH_OFFSET..LENGTH_OFFSET + 4].try_into().unwrap());
        if len < (HEADER_BYTES - LOG_OVERHEAD) as i32 {
            pos = data.len();
            return Some(Err(Malformed("batch length too small")));
        }
        let size = len as usize + LOG_OVERHEAD;
        if rest.len() < size {
            return None;
        }
        if rest[MAGIC_OFFSET] != 2 {
            pos = data.len();
            return Some(Err(Malformed("record batch magic is not 2")));
        }
        let attributes = i16::from_be_bytes([rest[ATTRIBUTES_OFFSET], rest[ATTRIBUTES_OFFSET + 1]]);
        let Some(compression) = Compression::from_attributes(attributes) else {
            pos = data.len();
            return Some(Err(Malformed("unknown compression codec")));
        };
        let base_offset = i64::from_be_bytes(rest[0..8].try_into().unwrap());
        let last_delta = i32::from_be_bytes(
            rest[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
                .try_into()
                .unwrap(),
        );
        let base_timestamp_ms = i64::from_be_bytes(
            rest[BASE_TIMESTAMP_OFFSET..BASE_TIMESTAMP_OFFSET + 8]
                .try_into()
                .unwrap(),
        );
        let header = BatchHeader {
            base_offset,
            size,
            compression,
            records: (i64::from(last_delta) + 1).max(0) as u64,
            base_timestamp_ms,
        };
        pos += size;
        Some(Ok(header))
    })
}

/// Calls `f(value)` for every record of one batch (`batch` is the whole
/// batch, header included); compressed records are inflated into
/// `scratch`. Returns the number of records walked.
pub fn for_each_value(
    batch: &[u8],
    header: &BatchHeader,
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) -> Result<u64, Malformed> {
    let count = i32::from_be_bytes(
        batch[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4]
            .try_into()
            .unwrap(),
    );
    let body = &batch[HEADER_BYTES..header.size];
    let records: &[u8] = if header.compression == Compression::None {
        body
    } else {
        header
            .compression
            .decompress(body, scratch)
            .map_err(|_| Malformed("cannot decompress a batch"))?;
        scratch
    };
    let mut r = Reader::new(records);
    let mut walked = 0u64;
    for _ in 0..count.max(0) {
        let len = r.varint()?;
        if len < 0 {
            return Err(Malformed("negative record length"));
        }
        let end = r.pos() + len as usize;
        r.skip(1)?; // attributes
        r.varint()?; // timestamp delta
        r.varint()?; // offset delta
        let key_len = r.varint()?;
        if key_len > 0 {
            r.skip(key_len as usize)?;
        }
        let value_len = r.varint()?;
        if value_len > 0 {
            f(r.bytes(value_len as usize)?);
        } else {
            f(&[]);
        }
        if end < r.pos() || end > records.len() {
            return Err(Malformed("record length disagrees with its fields"));
        }
        r.skip(end - r.pos())?;
        walked += 1;
    }
    Ok(walked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    fn build(t: &Template, n: usize, compression: Compression, keys: bool) -> Vec<u8> {
        let mut buf = t.new_buffer();
        for k in 0..n {
            t.stamp(
                &mut buf,
                k,
                1_000_000 + k as u64,
                keys.then_some(k as u64 * 7),
            );
        }
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        let size = t
            .seal_into(
                &buf,
                n,
                1_700_000_000_123,
                compression,
                &mut scratch,
                &mut out,
            )
            .unwrap();
        assert_eq!(size, out.len());
        out
    }

    // Proves a sealed batch, with every codec, keys or none, is what
    // kafka-protocol's decoder (and so the broker) reads: CRC, count,
    // offsets, timestamps, keys and values with their stamps.
    #[test]
    fn sealed_batches_decode_with_kafka_protocol() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            for keyed in [false, true] {
                let t = Template::new(100, keyed, 16384);
                assert!(t.capacity() > 100, "{}", t.capacity());
                for n in [1, 2, t.capacity()] {
                    let out = build(&t, n, compression, keyed);
                    let mut bytes = Bytes::from(out.clone());
                    let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
                    let records = set.records;
                    assert_eq!(records.len(), n, "{compression:?} {keyed} {n}");
                    for (k, r) in records.iter().enumerate() {
                        assert_eq!(r.offset, k as i64);
                        assert_eq!(r.timestamp, 1_700_000_000_123);
                        let v = r.value.as_ref().unwrap();
                        assert_eq!(v.len(), 100);
                        assert_eq!(v[..8], (1_000_000 + k as u64).to_be_bytes());
                        match (&r.key, keyed) {
                            (Some(key), true) => assert_eq!(key[..], (k as u64 * 7).to_be_bytes()),
                            (None, false) => {}
                            other => panic!("key {other:?}"),
                        }
                    }
                    let headers: Vec<_> = batch_headers(&out).collect();
                    assert_eq!(headers.len(), 1);
                    let h = headers[0].clone().unwrap();
                    assert_eq!(h.records, n as u64);
                    assert_eq!(h.size, out.len());
                    assert_eq!(h.compression, compression);
                    let mut stamps = Vec::new();
                    let walked = for_each_value(&out, &h, &mut Vec::new(), |v| {
                        stamps.push(u64::from_be_bytes(v[..8].try_into().unwrap()))
                    })
                    .unwrap();
                    assert_eq!(walked, n as u64);
                    assert_eq!(
                        stamps,
                        (0..n as u64).map(|k| 1_000_000 + k).collect::<Vec<_>>()
                    );
                }
            }
        }
    }

    // Proves batch.size is honoured (a full batch fits), a single record
    // bigger than it still makes a batch, and partial trailing batches are
    // not reported.
    #[test]
    fn capacity_and_partial_batches() {
        let t = Template::new(100, false, 16384);
        assert!(t.batch_bytes(t.capacity()) <= 16384);
        let big = Template::new(100_000, false, 16384);
        assert_eq!(big.capacity(), 1);
        let mut two = build(&t, 3, Compression::None, false);
        let one = two.clone();
        two.extend_from_slice(&one);
        assert_eq!(batch_headers(&two).count(), 2);
        assert_eq!(batch_headers(&two[..two.len() - 1]).count(), 1);
        assert_eq!(batch_headers(&two[..10]).count(), 0);
    }
}
