//! Record batches written by a real librdkafka producer, for every compression
//! codec and with idempotence on and off, must pass shardlog's producer batch
//! validator; damaged copies of those same batches must be refused with the
//! Kafka error code Apache Kafka returns for the fault.
//!
//! No external broker is needed: librdkafka's built-in mock cluster
//! (`rdkafka::mocking::MockCluster`) accepts the produce requests, and the raw
//! stored batches are read back with a hand-encoded Fetch v4 request over a
//! plain `TcpStream`, so the `records` bytes reach the test untouched. The mock
//! stores each batch as the producer sent it and only overwrites baseOffset and
//! partitionLeaderEpoch (both outside the CRC), which the test writes back to
//! the values librdkafka sends (0 and 0) before validating.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;
use rdkafka::config::ClientConfig;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;
use shardlog::error_code::ErrorCode;
use shardlog::handler::errors::ToErrorCode;
use shardlog::record::records::decode_records;
use shardlog::record::{
    patch_base_offset_and_epoch, split_batches, validate_producer_batch, BatchError, BatchHeader,
    Compression, TimestampType,
};

/// Every network read and write gives up after this long.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole read-back of one partition gives up after this long.
const FETCH_DEADLINE: Duration = Duration::from_secs(30);
/// Records produced per run: with `batch.num.messages` = 8 that is at least
/// five batches of several records each.
const RECORDS: usize = 40;
const RECORDS_PER_BATCH: usize = 8;
/// CreateTime of record 0; record i is stamped `BASE_TIMESTAMP + 3 * i`.
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// A max.message.bytes no batch in this test comes near.
const ROOMY_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The Fetch version used to read the mock broker: the oldest kafka-protocol
/// 0.18 encodes, non-flexible, and served by the mock (it supports 0..=16).
const FETCH_VERSION: i16 = 4;
/// Where the CRC starts and the checksummed range begins (see batch.rs).
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const RECORD_COUNT_AT: usize = 57;
const HEADER_BYTES: usize = 61;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

const ALL_CODECS: [Codec; 5] = [
    Codec::None,
    Codec::Gzip,
    Codec::Snappy,
    Codec::Lz4,
    Codec::Zstd,
];

impl Codec {
    /// librdkafka's `compression.codec` value.
    fn librdkafka_name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    /// What shardlog must read from the batch attributes.
    fn expected(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

/// One record as handed to librdkafka.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SentRecord {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The records every run produces: keyed and unkeyed, null and empty keys and
/// values, binary bytes, and headers with present, empty and null values.
/// Values are repetitive text so that every codec actually shrinks each batch
/// (librdkafka sends a batch uncompressed when compression would not help).
fn records_to_send() -> Vec<SentRecord> {
    (0..RECORDS)
        .map(|i| {
            let text = format!("record {i} of the librdkafka batch test; ")
                .repeat(8)
                .into_bytes();
            let binary: Vec<u8> = (0..=255u8).map(|b| b.wrapping_add(i as u8)).collect();
            let (key, value, headers) = match i % 5 {
                0 => (
                    Some(format!("key-{i}").into_bytes()),
                    Some(text),
                    vec![
                        (
                            "trace-id".to_string(),
                            Some(format!("{i:08x}").into_bytes()),
                        ),
                        ("empty".to_string(), Some(Vec::new())),
                        ("absent".to_string(), None),
                    ],
                ),
                1 => (None, Some(text), Vec::new()),
                2 => (
                    Some(format!("tombstone-{i}").into_bytes()),
                    None,
                    Vec::new(),
                ),
                3 => (
                    Some(Vec::new()),
                    Some(Vec::new()),
                    vec![("bin".to_string(), Some(binary))],
                ),
                _ => {
                    let mut value = binary.clone();
                    value.extend_from_slice(&text);
                    (Some(binary), Some(value), Vec::new())
                }
            };
            SentRecord {
                timestamp: BASE_TIMESTAMP + 3 * i as i64,
                key,
                value,
                headers,
            }
        })
        .collect()
}

/// Counts librdkafka's delivery reports so a failed send cannot go unnoticed.
#[derive(Default)]
struct DeliveryTally {
    delivered: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl ClientContext for DeliveryTally {}

impl ProducerContext for DeliveryTally {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::SeqCst);
            }
            Err((error, _)) => self.failures.lock().unwrap().push(error.to_string()),
        }
    }
}

/// Produces `records` to partition 0 of `topic` with a real librdkafka
/// producer and waits until every record is acknowledged.
fn produce(bootstrap: &str, topic: &str, codec: Codec, idempotent: bool, records: &[SentRecord]) {
    let producer: BaseProducer<DeliveryTally> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", codec.librdkafka_name())
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("linger.ms", "200")
        .set("batch.num.messages", RECORDS_PER_BATCH.to_string())
        .set("message.timeout.ms", "10000")
        .create_with_context(DeliveryTally::default())
        .expect("create librdkafka producer");

    for record in records {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &record.headers {
            headers = headers.insert(Header {
                key: key.as_str(),
                value: value.as_deref(),
            });
        }
        let base = BaseRecord {
            topic,
            partition: Some(0),
            payload: record.value.as_deref(),
            key: record.key.as_deref(),
            timestamp: Some(record.timestamp),
            headers: Some(headers),
            delivery_opaque: (),
        };
        producer
            .send::<[u8], [u8]>(base)
            .map_err(|(error, _)| error)
            .expect("enqueue record in librdkafka");
    }
    producer
        .flush(Duration::from_secs(15))
        .expect("librdkafka flush");

    let tally = producer.context();
    let failures = tally.failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "delivery failures: {failures:?}");
    assert_eq!(tally.delivered.load(Ordering::SeqCst), records.len());
}

/// Sends one Fetch v4 request for `topic`/0 at `offset` and returns the
/// partition's error code, high watermark and raw `records` bytes.
fn fetch_once(
    stream: &mut TcpStream,
    correlation_id: i32,
    topic: &str,
    offset: i64,
) -> (i16, i64, Bytes) {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(ROOMY_MAX_MESSAGE_BYTES as i32)
        .with_isolation_level(0)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(ROOMY_MAX_MESSAGE_BYTES as i32)])]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("shardlog-librdkafka-test")));

    let mut body = BytesMut::new();
    header
        .encode(&mut body, FetchRequest::header_version(FETCH_VERSION))
        .expect("encode request header");
    request
        .encode(&mut body, FETCH_VERSION)
        .expect("encode fetch request");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).expect("send fetch request");

    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("read response size");
    let size = i32::from_be_bytes(size);
    assert!(
        (4..=64 << 20).contains(&size),
        "implausible response size {size}"
    );
    let mut payload = vec![0u8; size as usize];
    stream.read_exact(&mut payload).expect("read response body");

    let mut buf = Bytes::from(payload);
    let response_header =
        ResponseHeader::decode(&mut buf, FetchResponse::header_version(FETCH_VERSION))
            .expect("decode response header");
    assert_eq!(response_header.correlation_id, correlation_id);
    let response = FetchResponse::decode(&mut buf, FETCH_VERSION).expect("decode fetch response");
    assert!(
        !buf.has_remaining(),
        "{} undecoded bytes after the fetch response",
        buf.remaining()
    );
    assert_eq!(response.error_code, 0, "fetch response error");
    assert_eq!(response.responses.len(), 1);
    let topic_response = &response.responses[0];
    assert_eq!(topic_response.partitions.len(), 1);
    let partition = &topic_response.partitions[0];
    assert_eq!(partition.partition_index, 0);
    (
        partition.error_code,
        partition.high_watermark,
        partition.records.clone().unwrap_or_default(),
    )
}

/// Reads every batch of `topic`/0 back from the mock broker, raw, exactly as
/// stored (with the offsets the mock assigned).
fn fetch_stored_batches(bootstrap: &str, topic: &str) -> Vec<Bytes> {
    let address = bootstrap.split(',').next().expect("a bootstrap address");
    let mut stream = TcpStream::connect(address).expect("connect to the mock broker");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();

    let started = Instant::now();
    let mut batches = Vec::new();
    let mut offset = 0i64;
    let mut correlation_id = 0;
    loop {
        assert!(
            started.elapsed() < FETCH_DEADLINE,
            "fetch loop ran too long"
        );
        correlation_id += 1;
        let (error_code, high_watermark, records) =
            fetch_once(&mut stream, correlation_id, topic, offset);
        assert_eq!(error_code, 0, "partition error fetching offset {offset}");
        if offset >= high_watermark {
            break;
        }
        let fetched = split_batches(&records).expect("split fetched records into batches");
        assert!(
            !fetched.is_empty(),
            "no batch at offset {offset} below high watermark {high_watermark}"
        );
        for batch in fetched {
            let header = BatchHeader::parse(&batch).expect("stored batch has a v2 header");
            assert_eq!(header.base_offset, offset, "batches are contiguous");
            offset = header.next_offset();
            batches.push(batch);
        }
    }
    assert_eq!(
        offset as usize, RECORDS,
        "high watermark counts every record"
    );
    batches
}

/// Turns a stored batch back into the bytes the producer sent: librdkafka
/// writes baseOffset 0 and partitionLeaderEpoch 0; the mock broker overwrote
/// both, and neither is covered by the CRC.
fn as_sent(stored: &[u8]) -> Vec<u8> {
    let mut batch = stored.to_vec();
    patch_base_offset_and_epoch(&mut batch, 0, 0);
    batch
}

/// One produce-and-read-back run against a fresh mock cluster.
struct Run {
    codec: Codec,
    idempotent: bool,
    /// Batches as the mock broker stored them.
    stored: Vec<Bytes>,
}

fn produce_and_read_back(codec: Codec, idempotent: bool) -> Run {
    let cluster = MockCluster::new(1).expect("start librdkafka mock cluster");
    let bootstrap = cluster.bootstrap_servers();
    let topic = format!(
        "batches-{}-{}",
        codec.librdkafka_name(),
        if idempotent { "idempotent" } else { "plain" }
    );
    cluster.create_topic(&topic, 1, 1).expect("create topic");
    produce(&bootstrap, &topic, codec, idempotent, &records_to_send());
    let stored = fetch_stored_batches(&bootstrap, &topic);
    Run {
        codec,
        idempotent,
        stored,
    }
}

/// Runs for every codec with idempotence on and off, produced once and shared
/// by the damage tests.
fn all_runs() -> &'static [Run] {
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        ALL_CODECS
            .iter()
            .flat_map(|&codec| {
                [false, true].map(|idempotent| produce_and_read_back(codec, idempotent))
            })
            .collect()
    })
}

/// Every batch of every run, as the producer sent it, labelled for messages.
fn all_sent_batches() -> Vec<(String, Vec<u8>)> {
    all_runs()
        .iter()
        .flat_map(|run| {
            run.stored.iter().enumerate().map(move |(i, stored)| {
                (
                    format!("{:?} idempotent={} batch {i}", run.codec, run.idempotent),
                    as_sent(stored),
                )
            })
        })
        .collect()
}

fn decoded_as_sent(
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
) -> SentRecord {
    SentRecord {
        timestamp,
        key,
        value,
        headers,
    }
}

/// The positive check for one codec and idempotence setting.
fn check_accepted(codec: Codec, idempotent: bool) {
    let run = produce_and_read_back(codec, idempotent);
    let sent = records_to_send();
    assert!(
        run.stored.len() >= 2,
        "expected several batches, got {}",
        run.stored.len()
    );

    let mut total_records = 0usize;
    let mut largest_batch = 0usize;
    let mut next_sequence = 0i32;
    let mut decoded_by_shardlog = Vec::new();
    let mut decoded_by_kafka_protocol = Vec::new();
    for (i, stored) in run.stored.iter().enumerate() {
        let batch = as_sent(stored);
        let header = validate_producer_batch(&batch, ROOMY_MAX_MESSAGE_BYTES)
            .unwrap_or_else(|e| panic!("{codec:?} batch {i} refused: {e}"));
        // Exactly the batch's size is still allowed.
        validate_producer_batch(&batch, batch.len()).expect("batch at exactly max.message.bytes");

        assert_eq!(
            header.compression(),
            Ok(codec.expected()),
            "batch {i} codec"
        );
        assert_eq!(header.magic, 2);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert!(!header.is_transactional());
        assert!(!header.is_control());
        assert_eq!(
            header.has_producer_id(),
            idempotent,
            "batch {i} producer id {}",
            header.producer_id
        );
        if idempotent {
            assert!(header.producer_epoch >= 0);
            assert_eq!(header.base_sequence, next_sequence, "batch {i} sequence");
            next_sequence = header.last_sequence() + 1;
        } else {
            assert_eq!(header.producer_epoch, -1);
            assert_eq!(header.base_sequence, -1);
        }
        let count = header.record_count as usize;
        total_records += count;
        largest_batch = largest_batch.max(count);

        // shardlog's own decoder decompresses every codec librdkafka uses
        // (raw snappy included) and must give back what was sent.
        let records = decode_records(stored).expect("shardlog decodes the batch");
        assert_eq!(records.len(), count);
        for record in records {
            assert_eq!(
                record.offset as usize,
                decoded_by_shardlog.len(),
                "record offsets"
            );
            decoded_by_shardlog.push(decoded_as_sent(
                record.timestamp,
                record.key,
                record.value,
                record.headers,
            ));
        }

        // Independent cross-check with kafka-protocol's decoder, which also
        // decompresses: the codec really carries the records that were sent.
        let mut buf = stored.clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes the batch");
        assert!(!buf.has_remaining());
        for record in set.records {
            decoded_by_kafka_protocol.push(decoded_as_sent(
                record.timestamp,
                record.key.map(|b| b.to_vec()),
                record.value.map(|b| b.to_vec()),
                record
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.map(|b| b.to_vec())))
                    .collect(),
            ));
        }
    }

    println!(
        "{codec:?} idempotent={idempotent}: {} batches, records per batch {:?}, bytes per batch {:?}, stored leader epochs {:?}",
        run.stored.len(),
        run.stored
            .iter()
            .map(|b| BatchHeader::parse(b).map_or(0, |h| h.record_count))
            .collect::<Vec<_>>(),
        run.stored.iter().map(Bytes::len).collect::<Vec<_>>(),
        run.stored
            .iter()
            .map(|b| BatchHeader::parse(b).map_or(0, |h| h.partition_leader_epoch))
            .collect::<Vec<_>>(),
    );
    assert_eq!(total_records, RECORDS, "records across all batches");
    assert!(largest_batch > 1, "no batch held more than one record");
    assert_eq!(
        decoded_by_kafka_protocol, sent,
        "records decoded by kafka-protocol"
    );
    assert_eq!(decoded_by_shardlog, sent, "records decoded by shardlog");
}

/// Stores a freshly computed CRC32C over bytes 21..end at 17..21.
fn recompute_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

fn refusal(batch: &[u8], max_message_bytes: usize) -> BatchError {
    match validate_producer_batch(batch, max_message_bytes) {
        Ok(header) => panic!("damaged batch accepted: {header:?}"),
        Err(error) => error,
    }
}

#[test]
fn uncompressed_batches_from_librdkafka_are_accepted() {
    // Proves plain uncompressed librdkafka batches validate and decode back to the sent records byte for byte.
    check_accepted(Codec::None, false);
}

#[test]
fn uncompressed_idempotent_batches_from_librdkafka_are_accepted() {
    // Proves uncompressed idempotent librdkafka batches validate, carry a producer id and contiguous sequences, and decode byte for byte.
    check_accepted(Codec::None, true);
}

#[test]
fn gzip_batches_from_librdkafka_are_accepted() {
    // Proves gzip-compressed librdkafka batches validate and are reported as gzip.
    check_accepted(Codec::Gzip, false);
}

#[test]
fn gzip_idempotent_batches_from_librdkafka_are_accepted() {
    // Proves gzip-compressed idempotent librdkafka batches validate with a producer id and contiguous sequences.
    check_accepted(Codec::Gzip, true);
}

#[test]
fn snappy_batches_from_librdkafka_are_accepted() {
    // Proves snappy-compressed librdkafka batches validate and are reported as snappy.
    check_accepted(Codec::Snappy, false);
}

#[test]
fn snappy_idempotent_batches_from_librdkafka_are_accepted() {
    // Proves snappy-compressed idempotent librdkafka batches validate with a producer id and contiguous sequences.
    check_accepted(Codec::Snappy, true);
}

#[test]
fn lz4_batches_from_librdkafka_are_accepted() {
    // Proves lz4-compressed librdkafka batches validate and are reported as lz4.
    check_accepted(Codec::Lz4, false);
}

#[test]
fn lz4_idempotent_batches_from_librdkafka_are_accepted() {
    // Proves lz4-compressed idempotent librdkafka batches validate with a producer id and contiguous sequences.
    check_accepted(Codec::Lz4, true);
}

#[test]
fn zstd_batches_from_librdkafka_are_accepted() {
    // Proves zstd-compressed librdkafka batches validate and are reported as zstd.
    check_accepted(Codec::Zstd, false);
}

#[test]
fn zstd_idempotent_batches_from_librdkafka_are_accepted() {
    // Proves zstd-compressed idempotent librdkafka batches validate with a producer id and contiguous sequences.
    check_accepted(Codec::Zstd, true);
}

#[test]
fn flipping_any_checksummed_byte_of_a_librdkafka_batch_is_corrupt_message() {
    // Proves that flipping any single byte from the CRC field to the end of a real batch, for every codec, is refused as CORRUPT_MESSAGE (2).
    for (label, batch) in all_sent_batches() {
        for at in CRC_AT..batch.len() {
            let mut damaged = batch.clone();
            damaged[at] ^= 0xff;
            let error = refusal(&damaged, ROOMY_MAX_MESSAGE_BYTES);
            assert!(
                matches!(error, BatchError::CrcMismatch { .. }),
                "{label}: byte {at} flipped gave {error:?}"
            );
            assert_eq!(error.error_code(), ErrorCode::CorruptMessage);
            assert_eq!(error.error_code().code(), 2);
        }
    }
}

#[test]
fn truncated_librdkafka_batches_are_corrupt_message() {
    // Proves that a real batch cut short, with or without its batchLength patched to match, is refused as CORRUPT_MESSAGE (2).
    for (label, batch) in all_sent_batches() {
        for keep in [
            batch.len() - 1,
            batch.len() / 2,
            HEADER_BYTES,
            HEADER_BYTES - 1,
            12,
            0,
        ] {
            let error = refusal(&batch[..keep], ROOMY_MAX_MESSAGE_BYTES);
            assert_eq!(
                error.error_code(),
                ErrorCode::CorruptMessage,
                "{label}: kept {keep} bytes, got {error:?}"
            );
        }
        // Truncated with a consistent batchLength: the framing passes and the
        // CRC catches the missing bytes.
        let mut cut = batch[..batch.len() - 1].to_vec();
        let batch_length = (cut.len() - 12) as i32;
        cut[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let error = refusal(&cut, ROOMY_MAX_MESSAGE_BYTES);
        assert!(
            matches!(error, BatchError::CrcMismatch { .. }),
            "{label}: {error:?}"
        );
        assert_eq!(error.error_code().code(), 2);
    }
}

#[test]
fn librdkafka_batches_over_max_message_bytes_are_message_too_large() {
    // Proves that a real batch one byte over max.message.bytes is refused as MESSAGE_TOO_LARGE (10) while exactly at the limit it is accepted.
    for (label, batch) in all_sent_batches() {
        validate_producer_batch(&batch, batch.len())
            .unwrap_or_else(|e| panic!("{label}: refused at exactly its size: {e}"));
        let error = refusal(&batch, batch.len() - 1);
        assert!(
            matches!(error, BatchError::TooLarge { .. }),
            "{label}: {error:?}"
        );
        assert_eq!(error.error_code(), ErrorCode::MessageTooLarge);
        assert_eq!(error.error_code().code(), 10);
    }
}

#[test]
fn control_bit_on_librdkafka_batches_is_invalid_record() {
    // Proves that a real batch re-marked as a control batch (with a valid CRC) is refused as INVALID_RECORD (87), and as CORRUPT_MESSAGE without the CRC fix.
    for (label, batch) in all_sent_batches() {
        let mut control = batch.clone();
        control[ATTRIBUTES_AT + 1] |= 0x20;

        let error = refusal(&control, ROOMY_MAX_MESSAGE_BYTES);
        assert_eq!(
            error.error_code(),
            ErrorCode::CorruptMessage,
            "{label}: stale CRC"
        );

        recompute_crc(&mut control);
        let error = refusal(&control, ROOMY_MAX_MESSAGE_BYTES);
        assert_eq!(error, BatchError::ControlBatchFromProducer, "{label}");
        assert_eq!(error.error_code(), ErrorCode::InvalidRecord);
        assert_eq!(error.error_code().code(), 87);
    }
}

#[test]
fn corrupt_record_count_on_librdkafka_batches_is_invalid_record() {
    // Proves that a real batch whose recordCount disagrees with lastOffsetDelta (with a valid CRC) is refused as INVALID_RECORD (87).
    for (label, batch) in all_sent_batches() {
        let count = i32::from_be_bytes(
            batch[RECORD_COUNT_AT..RECORD_COUNT_AT + 4]
                .try_into()
                .unwrap(),
        );
        for wrong in [count + 1, count - 1, 0, -1, i32::MAX] {
            let mut damaged = batch.clone();
            damaged[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&wrong.to_be_bytes());
            recompute_crc(&mut damaged);
            let error = refusal(&damaged, ROOMY_MAX_MESSAGE_BYTES);
            assert!(
                matches!(error, BatchError::RecordCountMismatch { .. }),
                "{label}: recordCount {wrong} (was {count}) gave {error:?}"
            );
            assert_eq!(error.error_code(), ErrorCode::InvalidRecord);
            assert_eq!(error.error_code().code(), 87);
        }
    }
}
