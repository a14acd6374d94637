//! The records inside a v2 batch: encoding one record, building a whole
//! batch, walking records in place and decoding them into owned values.
//!
//! Record layout (varints are zigzag-encoded):
//!
//! ```text
//! length          varint  (bytes after this field)
//! attributes      int8    (unused, 0)
//! timestampDelta  varlong (from the batch's baseTimestamp)
//! offsetDelta     varint  (from the batch's baseOffset)
//! keyLength       varint  (-1: null key)
//! key             bytes
//! valueLength     varint  (-1: null value)
//! value           bytes
//! headerCount     varint
//! headers         (keyLength varint, key, valueLength varint, value)...
//! ```
//!
//! The broker's data path never decodes records; these serve the paths that
//! must look inside a batch (lookups by timestamp, the offsets log), tools,
//! tests, and the load generator's batch template and stamp reader.

use crate::batch::{
    seal, BatchHeader, Compression, TimestampType, ATTR_CONTROL, ATTR_DELETE_HORIZON,
    ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL, HEADER_BYTES, RECORD_BYTES_MIN,
};
use crate::compression::{compress_into_level, decompress};
use crate::varint::{get_varint, put_varint, varint_len};

/// One record as a producer hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub timestamp_delta: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Where [`put_record`] wrote a record's key and value bytes (for a null or
/// empty key or value, where its bytes would have started), so a template
/// can patch them in place later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpans {
    pub key_at: usize,
    pub value_at: usize,
}

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Appends one encoded record, its length prefix included, to `out`.
pub fn put_record(
    out: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(String, Option<Vec<u8>>)],
) -> RecordSpans {
    let headers_len: usize = headers
        .iter()
        .map(|(k, v)| bytes_len(Some(k.as_bytes())) + bytes_len(v.as_deref()))
        .sum();
    let body = 1 // attributes
        + varint_len(timestamp_delta)
        + varint_len(i64::from(offset_delta))
        + bytes_len(key)
        + bytes_len(value)
        + varint_len(headers.len() as i64)
        + headers_len;
    out.reserve(varint_len(body as i64) + body);
    let start = out.len();
    put_varint(out, body as i64);
    out.push(0);
    put_varint(out, timestamp_delta);
    put_varint(out, i64::from(offset_delta));
    let key_at = out.len() + varint_len(key.map_or(-1, |k| k.len() as i64));
    put_bytes(out, key);
    let value_at = out.len() + varint_len(value.map_or(-1, |v| v.len() as i64));
    put_bytes(out, value);
    put_varint(out, headers.len() as i64);
    for (k, v) in headers {
        put_bytes(out, Some(k.as_bytes()));
        put_bytes(out, v.as_deref());
    }
    debug_assert_eq!(out.len() - start, varint_len(body as i64) + body);
    RecordSpans { key_at, value_at }
}

/// Builds one v2 batch, the way a Kafka producer does.
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
        put_record(
            &mut self.records,
            record.timestamp_delta,
            self.count,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        self.max_timestamp = self
            .max_timestamp
            .max(self.base_timestamp + record.timestamp_delta);
        self.count += 1;
    }

    /// Adds a record with just a value, stamped `timestamp_delta` ms after
    /// the batch's base timestamp.
    pub fn push_value(&mut self, timestamp_delta: i64, value: &[u8]) {
        put_record(
            &mut self.records,
            timestamp_delta,
            self.count,
            None,
            Some(value),
            &[],
        );
        self.max_timestamp = self
            .max_timestamp
            .max(self.base_timestamp + timestamp_delta);
        self.count += 1;
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
        self.build_compressed_level(codec, None)
    }

    /// [`BatchBuilder::build_compressed`] at a codec level (see
    /// [`compress_into_level`]).
    pub fn build_compressed_level(&self, codec: Compression, level: Option<i32>) -> Vec<u8> {
        assert!(self.count > 0, "a batch holds at least one record");
        let mut header =
            BatchHeader::for_producer(self.count, codec, self.base_timestamp, self.max_timestamp);
        header.producer_id = self.producer_id;
        header.producer_epoch = self.producer_epoch;
        header.base_sequence = self.base_sequence;
        if self.transactional {
            header.attributes |= ATTR_TRANSACTIONAL;
        }
        let mut out = Vec::with_capacity(HEADER_BYTES + self.records.len());
        out.resize(HEADER_BYTES, 0);
        header.write(&mut out);
        compress_into_level(codec, level, &self.records, &mut out).expect("compressing into a Vec");
        seal(&mut out);
        out
    }
}

/// Rebuilds a stored batch with only `kept` of its records (a subset, in
/// offset order, as [`decode_records`] returned them), as Kafka's log
/// cleaner does: the same base offset and last offset (the removed
/// records' offsets become gaps), producer id, epoch and base sequence
/// (so idempotent producer state survives), partition leader epoch,
/// timestamp type, transactional and control flags, and codec. The base
/// timestamp is the first kept record's, or `delete_horizon_ms` with
/// [`ATTR_DELETE_HORIZON`] set (record timestamps keep their values through
/// their deltas). With nothing kept: Kafka's empty batch, record count 0,
/// uncompressed, stamped with the original's max timestamp.
pub fn rebuild_batch(
    header: &BatchHeader,
    kept: &[DecodedRecord],
    delete_horizon_ms: Option<i64>,
) -> Vec<u8> {
    let flags = header.attributes & (ATTR_TIMESTAMP_TYPE | ATTR_TRANSACTIONAL | ATTR_CONTROL);
    let mut out_header = BatchHeader {
        batch_length: 0,
        crc: 0,
        record_count: kept.len() as i32,
        ..*header
    };
    let codec = header.compression().unwrap_or(Compression::None);
    let mut records = Vec::new();
    if kept.is_empty() {
        out_header.attributes = flags;
        out_header.base_timestamp = header.max_timestamp;
    } else {
        let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
        let base = delete_horizon_ms.unwrap_or(kept[0].timestamp);
        let mut max = i64::MIN;
        for r in kept {
            put_record(
                &mut records,
                r.timestamp - base,
                (r.offset - header.base_offset) as i32,
                r.key.as_deref(),
                r.value.as_deref(),
                &r.headers,
            );
            max = max.max(r.timestamp);
        }
        out_header.attributes = flags | codec.id();
        if delete_horizon_ms.is_some() {
            out_header.attributes |= ATTR_DELETE_HORIZON;
        }
        out_header.base_timestamp = base;
        out_header.max_timestamp = if log_append {
            header.max_timestamp
        } else {
            max
        };
    }
    let mut out = Vec::with_capacity(HEADER_BYTES + records.len());
    out.resize(HEADER_BYTES, 0);
    out_header.write(&mut out);
    if !records.is_empty() {
        compress_into_level(codec, None, &records, &mut out).expect("compressing into a Vec");
    }
    seal(&mut out);
    out
}

/// Why a records section could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed record: {0}")]
pub struct MalformedRecord(pub &'static str);

/// One record, read in place: key, value and headers borrow the records
/// section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub timestamp_delta: i64,
    pub offset_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    header_count: i64,
    /// The record's bytes from its first header to its end.
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The record's headers, read in place. A header that runs past the
    /// record, or bytes left over after the last header, end the walk with
    /// an error.
    pub fn headers(&self) -> impl Iterator<Item = Result<Header<'a>, MalformedRecord>> + 'a {
        let (buf, mut left) = (self.headers, self.header_count.max(0));
        let mut at = 0;
        std::iter::from_fn(move || {
            if left == 0 {
                return (at != buf.len()).then(|| {
                    at = buf.len();
                    Err(MalformedRecord("record length disagrees with its fields"))
                });
            }
            left -= 1;
            let header = get_bytes(buf, &mut at).and_then(|key| {
                let value = get_bytes(buf, &mut at)?;
                Some(Header {
                    key: key.unwrap_or_default(),
                    value,
                })
            });
            if header.is_none() {
                left = 0;
                at = buf.len();
            }
            Some(header.ok_or(MalformedRecord("header runs past its record")))
        })
    }
}

/// A record header read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// Reads a length-prefixed byte string; a negative length is null.
fn get_bytes<'a>(buf: &'a [u8], at: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = get_varint(buf, at)?;
    if len < 0 {
        return Some(None);
    }
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let bytes = buf.get(*at..end)?;
    *at = end;
    Some(Some(bytes))
}

/// Walks the first `count` records of an uncompressed records section
/// without copying or allocating. Each record must fit inside its length
/// prefix; headers are not read until asked for.
pub fn records(section: &[u8], count: i32) -> Records<'_> {
    Records {
        buf: section,
        at: 0,
        left: count.max(0),
    }
}

/// The iterator [`records`] returns. After an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    at: usize,
    left: i32,
}

impl<'a> Records<'a> {
    fn next_record(&mut self) -> Result<RecordView<'a>, MalformedRecord> {
        let len = get_varint(self.buf, &mut self.at).ok_or(MalformedRecord("truncated length"))?;
        let len = usize::try_from(len).map_err(|_| MalformedRecord("negative record length"))?;
        let record = self
            .at
            .checked_add(len)
            .and_then(|end| self.buf.get(self.at..end))
            .ok_or(MalformedRecord("record runs past the records section"))?;
        self.at += len;
        let short = MalformedRecord("record length disagrees with its fields");
        let mut at = 1; // attributes
        if record.is_empty() {
            return Err(short);
        }
        let timestamp_delta = get_varint(record, &mut at).ok_or(short)?;
        let offset_delta = get_varint(record, &mut at).ok_or(short)?;
        let key = get_bytes(record, &mut at).ok_or(short)?;
        let value = get_bytes(record, &mut at).ok_or(short)?;
        let header_count = get_varint(record, &mut at).ok_or(short)?;
        Ok(RecordView {
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count,
            headers: &record[at..],
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, MalformedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let record = self.next_record();
        if record.is_err() {
            self.left = 0;
        }
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

/// A record decoded from a batch, with absolute offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Calls `visit(offset, key, has_value)` for every record of a batch,
/// reading keys in place (the records section is decompressed first when
/// the batch is compressed, up to [`DECODED_BYTES_MAX`]); nothing else is
/// copied. `None` if the batch is malformed. For the log cleaner, which
/// needs only keys and offsets to decide what stays.
pub fn for_each_key(batch: &[u8], mut visit: impl FnMut(i64, Option<&[u8]>, bool)) -> Option<()> {
    let (header, section) = records_section(batch)?;
    for record in records(&section, header.record_count) {
        let record = record.ok()?;
        visit(
            header.base_offset + record.offset_delta,
            record.key,
            record.value.is_some(),
        );
    }
    Some(())
}

/// A batch's header and its records section, decompressed when the batch
/// is compressed (up to [`DECODED_BYTES_MAX`]).
fn records_section(batch: &[u8]) -> Option<(BatchHeader, std::borrow::Cow<'_, [u8]>)> {
    let header = BatchHeader::parse(batch)?;
    let codec = header.compression().ok()?;
    let section = batch.get(HEADER_BYTES..)?;
    if codec == Compression::None {
        return Some((header, section.into()));
    }
    let payload = decompress(codec, section, DECODED_BYTES_MAX).ok()?;
    Some((header, payload.into()))
}

/// Most bytes a batch's records may decompress to when decoded here.
pub const DECODED_BYTES_MAX: usize = 64 << 20;

/// Decodes the records of a batch, decompressing them first if needed (up
/// to [`DECODED_BYTES_MAX`]). Returns `None` if the batch is malformed or
/// decompresses to more than that.
pub fn decode_records(batch: &[u8]) -> Option<Vec<DecodedRecord>> {
    let (header, section) = records_section(batch)?;
    let section: &[u8] = &section;
    let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
    // The count comes from the wire: never reserve more than the bytes
    // could hold.
    let capacity = (header.record_count.max(0) as usize).min(section.len() / RECORD_BYTES_MIN);
    let mut out = Vec::with_capacity(capacity);
    for record in records(section, header.record_count) {
        let record = record.ok()?;
        let headers = record
            .headers()
            .map(|h| {
                h.map(|h| {
                    (
                        String::from_utf8_lossy(h.key).into_owned(),
                        h.value.map(<[u8]>::to_vec),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        out.push(DecodedRecord {
            offset: header.base_offset + record.offset_delta,
            timestamp: if log_append {
                header.max_timestamp
            } else {
                header.base_timestamp + record.timestamp_delta
            },
            key: record.key.map(<[u8]>::to_vec),
            value: record.value.map(<[u8]>::to_vec),
            headers,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::batch_crc;
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    /// A batch of three records: a key with a null value and two headers
    /// (one null), a plain value, and an empty key with a long value.
    fn sample(codec: Compression) -> Vec<u8> {
        let keyed = Record {
            key: Some(b"k".to_vec()),
            headers: vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)],
            ..Record::default()
        };
        let long = Record {
            timestamp_delta: 3,
            key: Some(Vec::new()),
            value: Some(vec![7; 300]),
            ..Record::default()
        };
        let mut builder = BatchBuilder::new(1_700_000_000_000).idempotent(9, 2, 40);
        builder.push(&keyed);
        builder.push_value(5, b"second");
        builder.push(&long);
        builder.build_compressed(codec)
    }

    // Proves a built batch, with every codec, decodes here and with the
    // kafka-protocol crate to the records pushed: offsets, timestamps,
    // keys, values and headers, with a valid length and CRC.
    #[test]
    fn built_batches_decode_here_and_with_kafka_protocol() {
        for codec in Compression::ALL {
            let bytes = sample(codec);
            let h = BatchHeader::parse(&bytes).unwrap();
            assert_eq!(h.total_bytes(), bytes.len());
            assert_eq!(h.crc, batch_crc(&bytes));
            assert_eq!(h.compression(), Ok(codec));
            assert_eq!((h.record_count, h.last_offset_delta), (3, 2));
            assert_eq!((h.producer_id, h.producer_epoch), (9, 2));
            assert_eq!((h.base_sequence, h.last_sequence()), (40, 42));
            assert_eq!(h.max_timestamp, 1_700_000_000_005);
            let records = decode_records(&bytes).unwrap();
            assert_eq!(records.len(), 3, "{codec}");
            assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(records[0].value, None);
            assert_eq!(
                records[0].headers,
                vec![("h".into(), Some(b"v".to_vec())), ("n".into(), None)]
            );
            assert_eq!(
                (records[1].offset, records[1].timestamp),
                (1, 1_700_000_000_005)
            );
            assert_eq!(records[1].value.as_deref(), Some(&b"second"[..]));
            assert_eq!(records[2].key.as_deref(), Some(&b""[..]));
            assert_eq!(records[2].value.as_deref(), Some(&[7; 300][..]));

            let set = RecordBatchDecoder::decode(&mut Bytes::from(bytes.clone())).unwrap();
            let theirs = set.records;
            assert_eq!(theirs.len(), 3, "{codec}");
            for (ours, theirs) in records.iter().zip(&theirs) {
                assert_eq!(ours.offset, theirs.offset);
                assert_eq!(ours.timestamp, theirs.timestamp);
                assert_eq!(ours.key.as_deref(), theirs.key.as_deref());
                assert_eq!(ours.value.as_deref(), theirs.value.as_deref());
                assert_eq!(ours.headers.len(), theirs.headers.len());
                assert_eq!(theirs.producer_id, 9);
                assert_eq!(theirs.sequence, 40 + ours.offset as i32);
            }
        }
    }

    // Proves a rebuilt batch keeps its offsets (gaps where records went),
    // last offset, producer fields, leader epoch and codec, records keep
    // their timestamps with or without a delete horizon, and the result
    // decodes with kafka-protocol; and that an empty rebuild is Kafka's
    // empty batch.
    #[test]
    fn rebuilt_batches_keep_offsets_and_producer_state() {
        for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mut original = sample(codec);
            let mut header = BatchHeader::parse(&original).unwrap();
            header.base_offset = 1000;
            header.partition_leader_epoch = 7;
            header.write(&mut original);
            seal(&mut original);
            let all = decode_records(&original).unwrap();
            let kept = vec![all[0].clone(), all[2].clone()];
            for horizon in [None, Some(1_600_000_000_000)] {
                let rebuilt = rebuild_batch(&header, &kept, horizon);
                let h = BatchHeader::parse(&rebuilt).unwrap();
                assert_eq!(h.base_offset, 1000);
                assert_eq!(h.last_offset(), header.last_offset(), "{codec}");
                assert_eq!(h.record_count, 2);
                assert_eq!(
                    (h.producer_id, h.producer_epoch, h.base_sequence),
                    (9, 2, 40)
                );
                assert_eq!(h.partition_leader_epoch, 7);
                assert_eq!(h.compression(), Ok(codec));
                assert_eq!(h.delete_horizon(), horizon);
                assert_eq!(batch_crc(&rebuilt), h.crc);
                let back = decode_records(&rebuilt).unwrap();
                assert_eq!(back, kept, "{codec} {horizon:?}");
                let set = RecordBatchDecoder::decode(&mut Bytes::from(rebuilt.clone())).unwrap();
                let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
                assert_eq!(offsets, [1000, 1002]);
                let stamps: Vec<i64> = set.records.iter().map(|r| r.timestamp).collect();
                assert_eq!(stamps, [kept[0].timestamp, kept[1].timestamp]);
            }
            let empty = rebuild_batch(&header, &[], None);
            let h = BatchHeader::parse(&empty).unwrap();
            assert_eq!(
                (h.record_count, h.batch_length as usize + 12),
                (0, empty.len())
            );
            assert_eq!((h.base_offset, h.last_offset()), (1000, 1002));
            assert_eq!(h.compression(), Ok(Compression::None));
            assert_eq!((h.producer_id, h.base_sequence), (9, 40));
            assert_eq!(h.base_timestamp, header.max_timestamp);
            assert_eq!(batch_crc(&empty), h.crc);
        }
    }

    // Proves put_record reports where it wrote the key and value, so a
    // template can patch them in place.
    #[test]
    fn spans_point_at_key_and_value() {
        let mut out = vec![0xee; 5];
        let spans = put_record(&mut out, 0, 3, Some(b"key"), Some(b"value"), &[]);
        assert_eq!(&out[spans.key_at..spans.key_at + 3], b"key");
        assert_eq!(&out[spans.value_at..spans.value_at + 5], b"value");
        let view = records(&out[5..], 1).next().unwrap().unwrap();
        assert_eq!(
            (view.offset_delta, view.key, view.value),
            (3, Some(&b"key"[..]), Some(&b"value"[..]))
        );
        assert_eq!(view.headers().count(), 0);
    }

    // Proves malformed records end the walk with an error instead of a
    // panic or a read past the section: truncation anywhere, a length
    // shorter than the fields, leftovers after the headers.
    #[test]
    fn malformed_records_are_refused() {
        let good = sample(Compression::None);
        let section = &good[HEADER_BYTES..];
        for cut in 0..section.len() {
            let walked: Vec<_> = records(&section[..cut], 3).collect();
            assert!(walked.iter().any(Result::is_err), "cut at {cut}");
            assert!(walked.len() <= 3);
        }
        // A record claiming one byte more than its fields use.
        let mut long = Vec::new();
        put_record(&mut long, 0, 0, None, Some(b"v"), &[]);
        long[0] += 2;
        long.push(0);
        let view = records(&long, 1).next().unwrap().unwrap();
        assert!(view.headers().any(|h| h.is_err()));
        // A record claiming fewer bytes than its fields use.
        let mut short = Vec::new();
        put_record(&mut short, 0, 0, Some(b"key"), None, &[]);
        short[0] -= 2;
        assert!(records(&short, 1).next().unwrap().is_err());
        // A batch cut short loses its last record.
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 1);
        assert_eq!(decode_records(&truncated), None);
    }
}
