//! Bad input on raw TCP connections to the real `shardlog` binary
//! (requests built with kafka-protocol, or by hand where they must be
//! malformed): broken frames and headers close the offending connection;
//! crafted array counts neither crash the broker nor make it allocate;
//! malformed record batches and bad produce/fetch parameters get Kafka's
//! error codes. Throughout, a well-behaved client on its own connections
//! (ApiVersions + Metadata in a loop, on a thread) must keep being served,
//! and after each case the broker is checked to be alive.

mod common;

use std::io::{ErrorKind, Read};
use std::net::Shutdown;
use std::time::Duration;

use bytes::Bytes;
use common::broker::{Broker, BrokerOptions};
use common::raw::{
    decode_response, encode_request, frame_with_body, healthy_exchange, rss_kb, str_bytes, Conn,
    Watchdog,
};
use common::rdk;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    alter_configs_request, describe_configs_request, AlterConfigsRequest, AlterConfigsResponse,
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use shardlog::record::records::{BatchBuilder, Record};

/// How much memory the broker may use after the attacks.
const RSS_LIMIT_KB: u64 = 500 << 10;
/// The frame size limit the brokers here run with.
const MAX_FRAME: usize = 1 << 20;

// Kafka error codes.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_REQUIRED_ACKS: i16 = 21;
const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_CONFIG: i16 = 40;
const INVALID_RECORD: i16 = 87;

fn start(cores: Vec<usize>) -> Broker {
    Broker::start(
        BrokerOptions {
            cores,
            ..BrokerOptions::single()
        }
        .with_override("socket.request.max.bytes", MAX_FRAME)
        .with_override("auto.create.topics.enable", "false"),
    )
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// The broker process is alive, within the memory limit, and serves the
/// well-behaved client.
fn assert_healthy(broker: &mut Broker, watchdog: &Watchdog, after: &str) {
    assert!(
        broker.is_running(),
        "after {after}: the broker died\n{}",
        broker.log_tail()
    );
    watchdog.still_served(after);
    let rss = rss_kb(broker);
    assert!(rss < RSS_LIMIT_KB, "after {after}: broker RSS {rss} kB");
    let mut c = Conn::open(&broker.bootstrap());
    healthy_exchange(&mut c).unwrap_or_else(|e| panic!("after {after}: a fresh connection: {e}"));
}

// ---------------------------------------------------------------------------
// Framing

/// A broken frame closes its connection; the broker and other clients
/// carry on.
#[test]
fn broken_frames_close_the_connection() {
    let mut broker = start(vec![0]);
    let addr = broker.bootstrap();
    let watchdog = Watchdog::start(addr.clone());
    watchdog.still_served("start");

    let too_big = (MAX_FRAME as i32 + 1).to_be_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "frame one byte over socket.request.max.bytes",
            [&too_big[..], &[0u8; 64]].concat(),
        ),
        (
            "frame size 0x7fffffff",
            [&0x7fff_ffffi32.to_be_bytes()[..], &[0u8; 64]].concat(),
        ),
        ("negative frame size", (-1i32).to_be_bytes().to_vec()),
        ("frame size i32::MIN", i32::MIN.to_be_bytes().to_vec()),
        ("empty frame", 0i32.to_be_bytes().to_vec()),
        (
            "frame shorter than a header",
            [&4i32.to_be_bytes()[..], &[0, 18, 0, 0]].concat(),
        ),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "garbage in a well-sized frame",
            [&32i32.to_be_bytes()[..], &rdk::noise(7, 32)].concat(),
        ),
        ("unknown API key 999", frame_with_body_raw(999, 0, &[])),
        ("API key -1", frame_with_body_raw(-1, 0, &[])),
        (
            "Fetch v99",
            frame_with_body_raw(ApiKey::Fetch as i16, 99, &[0; 32]),
        ),
        (
            "Fetch v3 (below the served range)",
            frame_with_body_raw(ApiKey::Fetch as i16, 3, &[0; 32]),
        ),
        (
            "Produce v2 (old message format)",
            frame_with_body_raw(ApiKey::Produce as i16, 2, &[0; 32]),
        ),
        (
            "Metadata v99",
            frame_with_body_raw(ApiKey::Metadata as i16, 99, &[]),
        ),
        ("client id longer than the frame", client_id_overrun()),
        (
            "Metadata v12 with a truncated body",
            frame_with_body(ApiKey::Metadata, 12, 1, &[0x05, 0x01]),
        ),
        (
            "Produce v9 with a truncated body",
            frame_with_body(ApiKey::Produce, 9, 1, &[0x00, 0xff, 0xff]),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = Conn::open(&addr);
        // The broker may close before reading everything.
        let _ = c.send_raw(&bytes);
        c.expect_closed(what);
        assert_healthy(&mut broker, &watchdog, what);
    }

    // A frame cut short: size 100, 10 bytes, then the client half-closes.
    let mut c = Conn::open(&addr);
    c.send_raw(&[&100i32.to_be_bytes()[..], &[0u8; 10]].concat())
        .expect("send");
    c.stream.shutdown(Shutdown::Write).expect("shutdown");
    c.expect_closed("truncated frame");
    assert_healthy(&mut broker, &watchdog, "truncated frame");
    // ... and one whose client goes away entirely.
    let mut c = Conn::open(&addr);
    c.send_raw(&[&100i32.to_be_bytes()[..], &[0u8; 10]].concat())
        .expect("send");
    drop(c);
    assert_healthy(&mut broker, &watchdog, "truncated frame, client gone");

    // Good requests pipelined ahead of a bad frame are answered, in order,
    // before the connection closes.
    let mut c = Conn::open(&addr);
    let mut out = encode_request(ApiKey::ApiVersions, 3, 41, &ApiVersionsRequest::default());
    out.extend(encode_request(
        ApiKey::Metadata,
        12,
        42,
        &MetadataRequest::default().with_topics(None),
    ));
    out.extend(frame_with_body_raw(999, 0, &[]));
    c.send_raw(&out).expect("send");
    let mut f = c.read_frame().expect("ApiVersions answered");
    let v: ApiVersionsResponse = decode_response(ApiKey::ApiVersions, 3, 41, &mut f);
    assert_eq!(v.error_code, NONE);
    let mut f = c.read_frame().expect("Metadata answered");
    let _: MetadataResponse = decode_response(ApiKey::Metadata, 12, 42, &mut f);
    c.expect_closed("bad frame after good ones");
    assert_healthy(&mut broker, &watchdog, "bad frame after good ones");

    // A frame within the limit but larger than what is sent is simply
    // waited for: the connection stays open (the reader must not give up
    // on slow clients), and closing it mid-frame harms nothing.
    let mut c = Conn::open(&addr);
    c.send_raw(&[&(MAX_FRAME as i32).to_be_bytes()[..], &[0u8; 1000]].concat())
        .expect("send");
    c.stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut b = [0u8; 1];
    match c.stream.read(&mut b) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("partial large frame: expected the broker to wait, got {other:?}"),
    }
    drop(c);
    assert_healthy(&mut broker, &watchdog, "partial large frame");

    rdkafka_round_trip(&broker, 0);
}

/// A request header v1 (key, version, correlation id, client id "t")
/// followed by `body`, for keys and versions kafka-protocol cannot encode.
fn frame_with_body_raw(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.push(b't');
    f.extend_from_slice(body);
    [&(f.len() as i32).to_be_bytes()[..], &f].concat()
}

/// Metadata v1 whose client id claims 30000 bytes in a 20-byte frame.
fn client_id_overrun() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(ApiKey::Metadata as i16).to_be_bytes());
    f.extend_from_slice(&1i16.to_be_bytes());
    f.extend_from_slice(&9i32.to_be_bytes());
    f.extend_from_slice(&30_000i16.to_be_bytes());
    f.extend_from_slice(b"abcdefghij");
    [&(f.len() as i32).to_be_bytes()[..], &f].concat()
}

#[test]
fn api_versions_above_the_served_range_gets_a_v0_answer() {
    let mut broker = start(vec![0]);
    let addr = broker.bootstrap();
    let watchdog = Watchdog::start(addr.clone());
    let mut c = Conn::open(&addr);
    // A client's ApiVersions v99, header v2 (flexible) as a newer client
    // would send it.
    let mut body = Vec::new();
    body.extend_from_slice(&(ApiKey::ApiVersions as i16).to_be_bytes());
    body.extend_from_slice(&99i16.to_be_bytes());
    body.extend_from_slice(&1234i32.to_be_bytes());
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(b"new");
    body.push(0); // header tagged fields
    body.extend_from_slice(&[4, b'n', b'e', b'w', 2, b'9', 0]); // name, version, tags
    c.send_raw(&[&(body.len() as i32).to_be_bytes()[..], &body].concat())
        .expect("send");
    let mut f = c.read_frame().expect("a v0 answer");
    let v: ApiVersionsResponse = decode_response(ApiKey::ApiVersions, 0, 1234, &mut f);
    assert_eq!(v.error_code, UNSUPPORTED_VERSION);
    let range = |key: ApiKey| {
        v.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::ApiVersions).map(|r| r.0), Some(0));
    assert!(range(ApiKey::ApiVersions).is_some_and(|r| r.1 >= 3));
    assert!(range(ApiKey::Produce).is_some_and(|r| r.0 == 0 && r.1 >= 7));
    assert!(range(ApiKey::Fetch).is_some_and(|r| r.1 >= 11));
    assert!(range(ApiKey::Metadata).is_some());
    // The connection stays usable: the client retries with a served
    // version.
    for version in 0..=3 {
        let v: ApiVersionsResponse =
            c.call(ApiKey::ApiVersions, version, &ApiVersionsRequest::default());
        assert_eq!(v.error_code, NONE, "ApiVersions v{version}");
        assert!(!v.api_keys.is_empty());
    }
    assert_healthy(&mut broker, &watchdog, "ApiVersions v99");
}

// ---------------------------------------------------------------------------
// Crafted counts

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Tiny requests whose array or byte counts claim billions of elements:
/// the broker must refuse them (close, or answer with an error) without
/// allocating for the claimed count, and keep serving.
#[test]
fn crafted_counts_do_not_crash_or_balloon() {
    let mut broker = start(vec![0, 0]);
    let addr = broker.bootstrap();
    let watchdog = Watchdog::start(addr.clone());
    watchdog.still_served("start");
    let before = rss_kb(&broker);

    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Produce v3: transactional_id null, acks 1, timeout, topic_data count.
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&1000i32.to_be_bytes());
    b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    cases.push((
        "Produce v3, topic_data count 0x7fffffff",
        frame_with_body(ApiKey::Produce, 3, 1, &b),
    ));
    // Produce v3: one topic "t" whose partition_data count is huge.
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&1000i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b't');
    b.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    cases.push((
        "Produce v3, partition_data count 0x7ffffff0",
        frame_with_body(ApiKey::Produce, 3, 1, &b),
    ));
    // Produce v3: one partition whose records claim 2 GB.
    let mut b2 = b.clone();
    b2.truncate(b2.len() - 4);
    b2.extend_from_slice(&1i32.to_be_bytes());
    b2.extend_from_slice(&0i32.to_be_bytes());
    b2.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    b2.extend_from_slice(&[0; 16]);
    cases.push((
        "Produce v3, records length 0x7ffffff0",
        frame_with_body(ApiKey::Produce, 3, 1, &b2),
    ));
    // Produce v9 (flexible): compact array count as a varint.
    let mut b = vec![0u8]; // transactional_id: null compact string
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&1000i32.to_be_bytes());
    uvarint(&mut b, 0xffff_ffff);
    cases.push((
        "Produce v9, compact topic_data count 2^32-2",
        frame_with_body(ApiKey::Produce, 9, 1, &b),
    ));
    // Metadata v1 / v12: topics count.
    cases.push((
        "Metadata v1, topics count 0x7fffffff",
        frame_with_body(ApiKey::Metadata, 1, 1, &0x7fff_ffffi32.to_be_bytes()),
    ));
    let mut b = Vec::new();
    uvarint(&mut b, 0x7fff_ffff);
    cases.push((
        "Metadata v12, compact topics count 0x7ffffffe",
        frame_with_body(ApiKey::Metadata, 12, 1, &b),
    ));
    // Fetch v12: topics count.
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i32).to_be_bytes()); // replica_id
    b.extend_from_slice(&500i32.to_be_bytes()); // max_wait_ms
    b.extend_from_slice(&1i32.to_be_bytes()); // min_bytes
    b.extend_from_slice(&1_000_000i32.to_be_bytes()); // max_bytes
    b.push(0); // isolation_level
    b.extend_from_slice(&0i32.to_be_bytes()); // session_id
    b.extend_from_slice(&(-1i32).to_be_bytes()); // session_epoch
    uvarint(&mut b, 0x7fff_ffff);
    cases.push((
        "Fetch v12, compact topics count 0x7ffffffe",
        frame_with_body(ApiKey::Fetch, 12, 1, &b),
    ));
    // CreateTopics v4 / ListOffsets v1 / DeleteTopics v1.
    cases.push((
        "CreateTopics v4, topics count 0x7fffffff",
        frame_with_body(ApiKey::CreateTopics, 4, 1, &0x7fff_ffffi32.to_be_bytes()),
    ));
    let mut b = Vec::new();
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    cases.push((
        "ListOffsets v1, topics count 0x7fffffff",
        frame_with_body(ApiKey::ListOffsets, 1, 1, &b),
    ));
    cases.push((
        "DeleteTopics v1, topic_names count 0x7fffffff",
        frame_with_body(ApiKey::DeleteTopics, 1, 1, &0x7fff_ffffi32.to_be_bytes()),
    ));
    // The same, padded to the frame limit, so a decoder that trusts the
    // count finds plenty of bytes to keep going.
    let mut b = Vec::new();
    b.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    b.resize(MAX_FRAME - 64, 0);
    cases.push((
        "Metadata v1, huge count, 1 MB of zeros",
        frame_with_body(ApiKey::Metadata, 1, 1, &b),
    ));

    for (what, bytes) in cases {
        let mut c = Conn::open(&addr);
        let _ = c.send_raw(&bytes);
        if c.expect_closed_or_answered(what) {
            // An error answer is fine; the connection must then still work.
            healthy_exchange(&mut c).unwrap_or_else(|e| panic!("{what}: answered, then {e}"));
        }
        assert_healthy(&mut broker, &watchdog, what);
    }
    let after = rss_kb(&broker);
    eprintln!("broker RSS before {before} kB, after {after} kB");
    rdkafka_round_trip(&broker, 0);
}

// ---------------------------------------------------------------------------
// Record batches and parameters

fn batch(values: &[&[u8]]) -> Vec<u8> {
    let mut b = BatchBuilder::new(rdk::now_ms());
    for (i, v) in values.iter().enumerate() {
        b.push(&Record {
            timestamp_delta: i as i64,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(v.to_vec()),
            headers: vec![("h".to_string(), Some(b"v".to_vec()))],
        });
    }
    b.build()
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn produce_request(acks: i16, parts: Vec<(&str, i32, Option<Vec<u8>>)>) -> ProduceRequest {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, index, records) in parts {
        let pd = PartitionProduceData::default()
            .with_index(index)
            .with_records(records.map(Bytes::from));
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partition_data.push(pd),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![pd]),
            ),
        }
    }
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(topics)
}

/// (topic, partition, error code, base offset) per partition answered.
fn produce(c: &mut Conn, version: i16, req: &ProduceRequest) -> Vec<(String, i32, i16, i64)> {
    let resp: ProduceResponse = c.call(ApiKey::Produce, version, req);
    let mut out = Vec::new();
    for t in resp.responses {
        for p in t.partition_responses {
            out.push((t.name.0.to_string(), p.index, p.error_code, p.base_offset));
        }
    }
    out
}

fn produce_one(c: &mut Conn, topic: &str, partition: i32, records: Vec<u8>) -> (i16, i64) {
    let r = produce(
        c,
        9,
        &produce_request(-1, vec![(topic, partition, Some(records))]),
    );
    assert_eq!(r.len(), 1, "{r:?}");
    (r[0].2, r[0].3)
}

/// (error, high watermark, record bytes) of one partition at `offset`.
fn fetch(c: &mut Conn, topic: &str, partition: i32, offset: i64) -> (i16, i64, Bytes) {
    let req = common::raw::fetch_request(topic, partition, offset, -1, 1 << 20);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    assert_eq!(resp.error_code, NONE);
    let p = &resp.responses[0].partitions[0];
    (
        p.error_code,
        p.high_watermark,
        p.records.clone().unwrap_or_default(),
    )
}

#[test]
fn bad_batches_and_parameters_get_kafka_errors() {
    // Two shards behind one port: requests are split across cores.
    let mut broker = start(vec![0, 0]);
    let addr = broker.bootstrap();
    let watchdog = Watchdog::start(addr.clone());
    let mut c = Conn::open(&addr);
    let topic = "raw";

    let create = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(2)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(str_bytes("max.message.bytes"))
                .with_value(Some(str_bytes("10000")))])]);
    let r: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &create);
    assert_eq!(
        r.topics[0].error_code, NONE,
        "{:?}",
        r.topics[0].error_message
    );

    let good = || batch(&[b"one", b"two", b"three"]);
    let mut expected_hw = [0i64; 2];
    for p in 0..2 {
        assert_eq!(produce_one(&mut c, topic, p, good()), (NONE, 0));
        expected_hw[p as usize] = 3;
    }

    let cases: Vec<(&str, Vec<u8>, &[i16])> = {
        let mut v: Vec<(&str, Vec<u8>, &[i16])> = Vec::new();
        let mut b = good();
        let last = b.len() - 1;
        b[last] ^= 0x55;
        v.push(("bad CRC", b, &[CORRUPT_MESSAGE]));
        let mut b = good();
        b[17] ^= 0xff;
        v.push(("bad CRC field", b, &[CORRUPT_MESSAGE]));
        let mut b = good();
        let len = i32::from_be_bytes(b[8..12].try_into().expect("4")) + 5;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        v.push((
            "batchLength 5 past the data",
            b,
            &[CORRUPT_MESSAGE, INVALID_RECORD],
        ));
        let mut b = good();
        let len = i32::from_be_bytes(b[8..12].try_into().expect("4")) - 5;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        v.push((
            "batchLength 5 short of the data",
            b,
            &[CORRUPT_MESSAGE, INVALID_RECORD],
        ));
        let mut b = good();
        b[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        v.push((
            "negative batchLength",
            b,
            &[CORRUPT_MESSAGE, INVALID_RECORD],
        ));
        let mut b = good();
        b.truncate(40);
        v.push((
            "batch shorter than its header",
            b,
            &[CORRUPT_MESSAGE, INVALID_RECORD],
        ));
        v.push((
            "empty records",
            Vec::new(),
            &[CORRUPT_MESSAGE, INVALID_RECORD],
        ));
        let mut b = good();
        b[16] = 1;
        v.push((
            "magic 1 in produce v9",
            b,
            &[INVALID_RECORD, CORRUPT_MESSAGE],
        ));
        let mut b = good();
        b[0..8].copy_from_slice(&5i64.to_be_bytes());
        v.push(("baseOffset 5", b, &[INVALID_RECORD]));
        let mut b = good();
        b[57..61].copy_from_slice(&7i32.to_be_bytes());
        fix_crc(&mut b);
        v.push((
            "recordCount 7 for 3 records",
            b,
            &[INVALID_RECORD, CORRUPT_MESSAGE],
        ));
        let big = vec![b'x'; 12_000];
        v.push((
            "batch over max.message.bytes",
            batch(&[&big]),
            &[MESSAGE_TOO_LARGE],
        ));
        let mut b = good();
        b.extend(good());
        b.extend_from_slice(&[1, 2, 3]);
        v.push((
            "two batches and trailing bytes",
            b,
            &[CORRUPT_MESSAGE, INVALID_RECORD],
        ));
        v
    };
    for (what, records, want) in cases {
        for p in 0..2 {
            let (code, offset) = produce_one(&mut c, topic, p, records.clone());
            assert!(
                want.contains(&code),
                "{what} (partition {p}): error {code}, wanted one of {want:?}"
            );
            assert_eq!(offset, -1, "{what}: base offset");
        }
        assert_healthy(&mut broker, &watchdog, what);
    }

    // A good and a bad partition in one request: only the bad one fails.
    let mut corrupt = good();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let r = produce(
        &mut c,
        9,
        &produce_request(
            -1,
            vec![(topic, 0, Some(good())), (topic, 1, Some(corrupt))],
        ),
    );
    assert_eq!(
        r,
        vec![
            (topic.to_string(), 0, NONE, 3),
            (topic.to_string(), 1, CORRUPT_MESSAGE, -1)
        ]
    );
    expected_hw[0] = 6;

    // acks=5: INVALID_REQUIRED_ACKS for every partition, nothing written.
    let r = produce(
        &mut c,
        9,
        &produce_request(5, vec![(topic, 0, Some(good())), (topic, 1, Some(good()))]),
    );
    assert_eq!(
        r.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(),
        vec![(0, INVALID_REQUIRED_ACKS), (1, INVALID_REQUIRED_ACKS)]
    );
    // Unknown topic and partition.
    let r = produce(
        &mut c,
        9,
        &produce_request(
            -1,
            vec![
                ("no-such-topic", 0, Some(good())),
                (topic, 2, Some(good())),
                (topic, -1, Some(good())),
            ],
        ),
    );
    assert_eq!(
        r.iter().map(|x| x.2).collect::<Vec<_>>(),
        vec![UNKNOWN_TOPIC_OR_PARTITION; 3],
        "{r:?}"
    );
    // Produce v3 (the oldest accepted) too.
    let r = produce(
        &mut c,
        3,
        &produce_request(1, vec![("no-such-topic", 0, Some(good()))]),
    );
    assert_eq!(r[0].2, UNKNOWN_TOPIC_OR_PARTITION);
    assert_healthy(&mut broker, &watchdog, "bad produce parameters");

    // Only the good batches were stored, at contiguous offsets.
    for p in 0..2 {
        let (err, hw, records) = fetch(&mut c, topic, p, 0);
        assert_eq!((err, hw), (NONE, expected_hw[p as usize]), "partition {p}");
        let mut pos = 0usize;
        let mut next = 0i64;
        while pos < records.len() {
            let base = i64::from_be_bytes(records[pos..pos + 8].try_into().expect("8"));
            let len =
                i32::from_be_bytes(records[pos + 8..pos + 12].try_into().expect("4")) as usize;
            let count = i32::from_be_bytes(records[pos + 57..pos + 61].try_into().expect("4"));
            assert_eq!(base, next, "partition {p}: batch base offset");
            next += i64::from(count);
            pos += 12 + len;
        }
        assert_eq!(
            next, expected_hw[p as usize],
            "partition {p}: records fetched"
        );
    }

    // Fetch out of range: past the end, and negative.
    for offset in [expected_hw[1] + 1, 1000, -5] {
        let (err, hw, records) = fetch(&mut c, topic, 1, offset);
        assert_eq!(err, OFFSET_OUT_OF_RANGE, "fetch at {offset}");
        assert!(records.is_empty());
        let _ = hw;
    }
    // At the end exactly: no error, nothing.
    let (err, _, records) = fetch(&mut c, topic, 1, expected_hw[1]);
    assert_eq!(err, NONE);
    assert!(records.is_empty());
    // Unknown topic.
    let (err, _, _) = fetch(&mut c, "no-such-topic", 0, 0);
    assert_eq!(err, UNKNOWN_TOPIC_OR_PARTITION);

    // ListOffsets for an unknown topic.
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name("no-such-topic"))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &req);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // The per-resource config errors librdkafka's Rust binding drops.
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(str_bytes("no-such-topic"))
            .with_configuration_keys(None),
    ]);
    let r: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &req);
    assert_eq!(r.results[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let alter = |name: &str, value: &str| {
        AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes(name))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(str_bytes("retention.ms"))
                    .with_value(Some(str_bytes(value)))]),
        ])
    };
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &alter(topic, "forever"));
    assert_eq!(r.responses[0].error_code, INVALID_CONFIG);
    let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, 2, &alter("no-such-topic", "1000"));
    assert_eq!(r.responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);

    assert_healthy(&mut broker, &watchdog, "bad fetch and admin parameters");
    rdkafka_round_trip(&broker, 1);
}

/// A librdkafka producer and consumer still work end to end.
fn rdkafka_round_trip(broker: &Broker, n: usize) {
    let bootstrap = broker.bootstrap();
    let admin = rdk::admin(&bootstrap);
    let topic = format!("after-bad-input-{n}");
    rdk::create_topic(&admin, &topic, 2, &[]);
    let p = rdk::idempotent_producer(&bootstrap, &[("compression.type", "zstd")]);
    let recs = rdk::records(&topic, 50, &[0, 1], rdk::now_ms());
    let acked = rdk::produce_all(&p, &topic, &recs);
    rdk::assert_contiguous_in_order(&acked, &Default::default());
    let got = rdk::consume_ranges(&bootstrap, &topic, &rdk::full_ranges(&acked));
    rdk::assert_acked_present(&topic, &acked, &got);
}
