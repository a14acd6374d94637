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
//!
//! The batch layout, the record encoding, the record walker and the codecs
//! are shardlog-wire's, the same code the broker validates batches with.

use shardlog_wire::batch::{
    seal, BatchHeader, Compression, HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use shardlog_wire::compression::{compress_into, decompress_into};
use shardlog_wire::records::{put_record, records, DECODED_BYTES_MAX};

use super::Malformed;

/// Bytes of the end-to-end stamp at the start of each value.
pub const STAMP_BYTES: usize = 8;
/// Bytes of a key when a key distribution is used (u64, big-endian).
pub const KEY_BYTES: usize = 8;

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
        // Keys are stamped per record; the template holds zeros.
        let key = keyed.then_some([0u8; KEY_BYTES]);
        for k in 0.. {
            let before = bytes.len();
            let spans = put_record(
                &mut bytes,
                0,
                k,
                key.as_ref().map(|k| &k[..]),
                Some(&payload),
                &[],
            );
            if k > 0 && bytes.len() > batch_bytes_max {
                bytes.truncate(before);
                break;
            }
            key_at.push(spans.key_at);
            value_at.push(spans.value_at);
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
    /// `buf`: header, records (compressed straight into `out` unless the
    /// codec is none) and CRC. Returns the batch's size.
    pub fn seal_into(
        &self,
        buf: &[u8],
        n: usize,
        timestamp_ms: i64,
        compression: Compression,
        out: &mut Vec<u8>,
    ) -> std::io::Result<usize> {
        assert!(n >= 1 && n <= self.capacity());
        let records = &buf[HEADER_BYTES..self.end_at[n - 1]];
        let start = out.len();
        out.resize(start + HEADER_BYTES, 0);
        compress_into(compression, records, out)?;
        let batch = &mut out[start..];
        BatchHeader::for_producer(n as i32, compression, timestamp_ms, timestamp_ms).write(batch);
        seal(batch);
        Ok(batch.len())
    }
}

/// The complete batches at the start of `data` (a fetch response's
/// records), in order. A trailing partial batch (Kafka may cut the last one
/// at `max_bytes`) is left out; a batch of another magic, an unknown codec
/// or a negative offset range is an error, and ends the walk.
pub fn batch_headers(data: &[u8]) -> impl Iterator<Item = Result<BatchHeader, Malformed>> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(&data[pos..])?;
        let fault = if header.batch_length < (HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
            Some("batch length too small")
        } else if data.len() - pos < header.total_bytes() {
            return None;
        } else if header.magic != MAGIC_V2 {
            Some("record batch magic is not 2")
        } else if header.compression().is_err() {
            Some("unknown compression codec")
        } else if header.last_offset_delta < 0 {
            Some("negative lastOffsetDelta")
        } else {
            None
        };
        if let Some(fault) = fault {
            pos = data.len();
            return Some(Err(Malformed(fault)));
        }
        pos += header.total_bytes();
        Some(Ok(header))
    })
}

/// Calls `f(value)` for every record of one batch (`batch` is the whole
/// batch, header included, as [`batch_headers`] delimits it; a null value
/// is passed as empty); compressed records are inflated into `scratch`.
/// Returns the number of records walked.
pub fn for_each_value(
    batch: &[u8],
    header: &BatchHeader,
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) -> Result<u64, Malformed> {
    let body = &batch[HEADER_BYTES..header.total_bytes()];
    let compression = header
        .compression()
        .map_err(|_| Malformed("unknown compression codec"))?;
    let section: &[u8] = if compression == Compression::None {
        body
    } else {
        decompress_into(compression, body, DECODED_BYTES_MAX, scratch)
            .map_err(|_| Malformed("cannot decompress a batch"))?;
        scratch
    };
    let mut walked = 0u64;
    for record in records(section, header.record_count) {
        let record = record.map_err(|e| Malformed(e.0))?;
        f(record.value.unwrap_or_default());
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
        let mut out = Vec::new();
        let size = t
            .seal_into(&buf, n, 1_700_000_000_123, compression, &mut out)
            .unwrap();
        assert_eq!(size, out.len());
        out
    }

    // Proves a sealed batch, with every codec, keys or none, is what
    // kafka-protocol's decoder (and so the broker) reads: CRC, count,
    // offsets, timestamps, keys and values with their stamps.
    #[test]
    fn sealed_batches_decode_with_kafka_protocol() {
        for compression in Compression::ALL {
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
                    assert_eq!(h.record_count, n as i32);
                    assert_eq!(h.total_bytes(), out.len());
                    assert_eq!(h.compression(), Ok(compression));
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
