//! cleanup.policy on user topics: `compact` topics refuse records without
//! a key with INVALID_RECORD and KIP-467's per-record errors (checked
//! field by field against stock Apache Kafka 4.1 on the same request),
//! nothing of a refused batch is appended, librdkafka's, the Java
//! client's, confluent-kafka's and kafka-python's producers get the error,
//! the policy changes at runtime, and without `delete` neither
//! retention nor DeleteRecords removes anything (POLICY_VIOLATION, as in
//! Kafka).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker::{Broker, BrokerOptions};
use common::kafka::StockKafka;
use common::raw::{delete_records, produce_request, Conn};
use common::rdk;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use rdkafka::admin::{AlterConfig, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use shardlog_wire::records::{BatchBuilder, Record};

const INVALID_RECORD: i16 = 87;
const POLICY_VIOLATION: i16 = 44;

/// A batch of records with these keys (values "v0", "v1", ...).
fn keyed_batch(keys: &[Option<&[u8]>]) -> Bytes {
    let mut b = BatchBuilder::new(rdk::now_ms());
    for (i, key) in keys.iter().enumerate() {
        b.push(&Record {
            timestamp_delta: i as i64,
            key: key.map(<[u8]>::to_vec),
            value: Some(format!("v{i}").into_bytes()),
            headers: Vec::new(),
        });
    }
    Bytes::from(b.build())
}

/// What a Produce v9 answer says of the one partition: error code,
/// record errors and error message.
type Answer = (i16, Vec<(i32, String)>, Option<String>);

fn produce(conn: &mut Conn, topic: &str, batch: Bytes) -> Answer {
    let resp: ProduceResponse =
        conn.call(ApiKey::Produce, 9, &produce_request(topic, 0, batch, -1));
    let p = &resp.responses[0].partition_responses[0];
    let errors = p
        .record_errors
        .iter()
        .map(|e| {
            let m = e.batch_index_error_message.as_ref().map(|m| m.to_string());
            (e.batch_index, m.unwrap_or_default())
        })
        .collect();
    (
        p.error_code,
        errors,
        p.error_message.as_ref().map(|m| m.to_string()),
    )
}

fn create(bootstrap: &str, topic: &str, configs: &[(&str, &str)]) {
    rdk::create_topic(&rdk::admin(bootstrap), topic, 1, configs);
}

fn high_watermark(bootstrap: &str, topic: &str) -> i64 {
    let c = rdk::consumer(bootstrap);
    rdk::high_watermarks(&c, topic, &[0])[&0]
}

/// The keyless-record exchange on `bootstrap`: a mixed batch refused with
/// its record errors, nothing appended, then an all-keyed batch taken.
fn keyless_exchange(bootstrap: &str, topic: &str) -> Answer {
    create(bootstrap, topic, &[("cleanup.policy", "compact")]);
    let mut conn = Conn::open(bootstrap);
    let refused = produce(
        &mut conn,
        topic,
        keyed_batch(&[Some(b"a"), None, Some(b""), None, None, None]),
    );
    assert_eq!(high_watermark(bootstrap, topic), 0, "nothing appended");
    let taken = produce(&mut conn, topic, keyed_batch(&[Some(b"a"), Some(b"")]));
    assert_eq!(taken, (0, Vec::new(), None));
    assert_eq!(high_watermark(bootstrap, topic), 2);
    refused
}

// Proves a compacted topic refuses a batch with keyless records exactly as
// stock Kafka does: INVALID_RECORD, one record error per keyless record
// with Kafka's message, Kafka's partition error message, and nothing of
// the batch appended; an empty key is a key.
#[test]
fn keyless_records_are_refused_as_kafka_refuses_them() {
    let broker = Broker::start(BrokerOptions::single());
    let ours = keyless_exchange(&broker.bootstrap(), "compacted");
    let message =
        "Compacted topic cannot accept message without key in topic partition compacted-0";
    assert_eq!(ours.0, INVALID_RECORD);
    let want: Vec<(i32, String)> = [1, 3, 4, 5]
        .iter()
        .map(|&i| (i, message.to_string()))
        .collect();
    assert_eq!(ours.1, want);
    let kafka = StockKafka::start();
    let theirs = keyless_exchange(&kafka.bootstrap(), "compacted");
    assert_eq!(ours, theirs, "shardlog vs stock Kafka");
}

// Proves librdkafka's producer gets INVALID_RECORD for a keyless record
// on a compacted topic, while keyed records go through; and that the
// policy changes at runtime both ways.
#[test]
fn librdkafka_keyless_records_and_runtime_policy_changes() {
    let broker = Broker::start(BrokerOptions::single());
    let bootstrap = broker.bootstrap();
    create(&bootstrap, "changing", &[]);
    let send = |key: Option<&str>| -> Result<(), KafkaError> {
        let p: rdkafka::producer::FutureProducer = rdk::base_config(&bootstrap)
            .set("linger.ms", "0")
            .set("message.timeout.ms", "10000")
            .set("retries", "0")
            .create()
            .expect("producer");
        let mut r = rdkafka::producer::FutureRecord::<str, str>::to("changing").payload("x");
        if let Some(k) = key {
            r = r.key(k);
        }
        rdk::block(p.send(r, Duration::from_secs(10)))
            .map(drop)
            .map_err(|(e, _)| e)
    };
    send(None).expect("keyless records go to a delete topic");
    let admin = rdk::admin(&bootstrap);
    let alter = |policy: &str| {
        let config =
            AlterConfig::new(ResourceSpecifier::Topic("changing")).set("cleanup.policy", policy);
        let r = rdk::block(admin.alter_configs([&config], &rdk::admin_options())).unwrap();
        assert!(r[0].is_ok(), "{r:?}");
    };
    alter("compact");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        match send(None) {
            Err(e) => break e,
            Ok(()) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(()) => panic!("keyless record accepted by a compacted topic"),
        }
    };
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::InvalidRecord),
        "{refused}"
    );
    send(Some("k")).expect("keyed records go to a compacted topic");
    alter("compact,delete");
    assert!(send(None).is_err());
    alter("delete");
    send(None).expect("keyless records go again once the policy is delete");
    // The keyed one of the compacted period and both keyless ones of the
    // delete periods.
    assert!(high_watermark(&bootstrap, "changing") >= 3);
}

// Proves a topic without `delete` in its policy keeps its old segments
// past retention.ms and refuses DeleteRecords with POLICY_VIOLATION, while
// a compact,delete topic beside it loses them.
#[test]
fn without_delete_nothing_is_deleted() {
    let broker = Broker::start(
        BrokerOptions::single().with_override("log.retention.check.interval.ms", 200),
    );
    let bootstrap = broker.bootstrap();
    // Each batch older than segment.ms rolls a segment; every record is
    // older than retention.ms.
    let small = [("segment.ms", "100"), ("retention.ms", "1")];
    create(
        &bootstrap,
        "kept",
        &[small[0], small[1], ("cleanup.policy", "compact")],
    );
    create(
        &bootstrap,
        "trimmed",
        &[small[0], small[1], ("cleanup.policy", "compact,delete")],
    );
    let mut conn = Conn::open(&bootstrap);
    for i in 0..6 {
        for topic in ["kept", "trimmed"] {
            let mut b = BatchBuilder::new(rdk::now_ms() - 60_000);
            for j in 0..20 {
                b.push(&Record {
                    timestamp_delta: j,
                    key: Some(format!("k{j}").into_bytes()),
                    value: Some(vec![b'x'; 100]),
                    headers: Vec::new(),
                });
            }
            let (code, errors, _) = produce(&mut conn, topic, Bytes::from(b.build()));
            assert_eq!((code, errors.len()), (0, 0), "{topic} batch {i}");
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let log_start = |topic: &str| -> i64 {
        let c = rdk::consumer(&bootstrap);
        let (low, _) = c
            .fetch_watermarks(topic, 0, Duration::from_secs(10))
            .expect("watermarks");
        low
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_start("trimmed") == 0 {
        assert!(Instant::now() < deadline, "retention never ran on trimmed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Several more retention passes.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        log_start("kept"),
        0,
        "retention removed a compact-only topic's data"
    );
    assert_eq!(delete_records(&mut conn, "kept", 5).0, POLICY_VIOLATION);
    assert_eq!(log_start("kept"), 0);
    let (code, low) = delete_records(&mut conn, "trimmed", 120);
    assert_eq!((code, low), (0, 120));
}

// Proves each client's producer gets the KIP-467 refusal for a keyless
// record on a compacted topic and its keyed records through: the Java
// client (InvalidRecordException), confluent-kafka (INVALID_RECORD in the
// delivery report) and kafka-python (error 87); and that what each wrote
// in six rounds is compacted by the cleaner: a fresh consumer from offset
// 0 gets every key's latest value and nothing older than the last closed
// round.
#[test]
fn every_client_gets_the_keyless_refusal_and_a_compacted_view() {
    let clients = common::clients::ensure_installed();
    let broker =
        Broker::start(BrokerOptions::single().with_override("log.cleaner.backoff.ms", 200));
    let bootstrap = broker.bootstrap();
    let java = common::kafka::java(&[
        common::clients::repo_dir()
            .join("tests/clients/JavaKeyless.java")
            .to_str()
            .unwrap(),
        &bootstrap,
        "keyless-java",
    ]);
    java.assert_success();
    let out = java.stdout_text();
    eprintln!("java: {out}");
    assert!(
        out.contains("keyless refused: InvalidRecordException: ")
            && out.contains("keyed taken at offset 0")
            && out.contains("rounds written"),
        "{out}"
    );
    for client in ["confluent", "kafka-python"] {
        let mut cmd = std::process::Command::new(&clients.venv_python);
        cmd.arg(common::clients::repo_dir().join("tests/clients/py_keyless.py"))
            .args(["--client", client, "--bootstrap", &bootstrap])
            .args(["--topic", &format!("keyless-{client}")]);
        let run = common::clients::run_with_timeout(cmd, Duration::from_secs(120));
        let out = run.output_text();
        assert!(
            run.success()
                && out.contains("keyless refused: ")
                && out.contains("keyed taken at offset 0")
                && out.contains("rounds written"),
            "{client}: {}\n{out}",
            run.describe()
        );
        eprintln!("{client}: {out}");
    }
    // Offset 0 holds key "k"; round r's key k is at 1 + 10r + k. Round 5
    // sits in the active segment; rounds 0-4 are closed and cleaned down
    // to round 4's records, so nothing below 41 is left but "k".
    for topic in ["keyless-java", "keyless-confluent", "keyless-kafka-python"] {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let read = read_from_start(&bootstrap, topic);
            let mut latest = std::collections::BTreeMap::new();
            for (o, k, v) in &read {
                latest.insert(k.clone().unwrap(), (*o, v.clone().unwrap()));
            }
            for k in 0..10 {
                let (o, v) = &latest[format!("k{k}").as_bytes()];
                assert_eq!(
                    (*o, v.as_slice()),
                    (51 + k, format!("r5-{k}").as_bytes()),
                    "{topic}"
                );
            }
            let old = read.iter().filter(|r| r.0 < 41).count();
            if old == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{topic}: {old} records below 41 stayed"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Every record of partition 0 of `topic` read from the start by
/// librdkafka: (offset, key, value).
type Read = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

fn read_from_start(bootstrap: &str, topic: &str) -> Read {
    let c = rdk::consumer(bootstrap);
    let ends = rdk::high_watermarks(&c, topic, &[0]);
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    rdk::poll_until(&c, topic, &ends)[&0]
        .iter()
        .map(|g| (g.offset, g.rec.key.clone(), g.rec.value.clone()))
        .collect()
}

/// Produces one batch of keys k0..k9 (`round`'s values; `deleted` keys
/// get tombstones) to partition 0 of `topic`.
fn produce_round(conn: &mut Conn, topic: &str, round: usize, deleted: &[usize]) {
    let mut b = BatchBuilder::new(rdk::now_ms());
    for k in 0..10 {
        b.push(&Record {
            timestamp_delta: k as i64,
            key: Some(format!("k{k}").into_bytes()),
            value: (!deleted.contains(&k)).then(|| format!("r{round}-{k}").into_bytes()),
            headers: Vec::new(),
        });
    }
    let (code, errors, _) = produce(conn, topic, Bytes::from(b.build()));
    assert_eq!((code, errors.len()), (0, 0), "round {round}");
}

// Proves the log cleaner compacts a topic's closed segments while a real
// consumer reads it: from offset 0, librdkafka gets every key's latest
// value at its original offset (offsets with gaps, strictly increasing),
// the superseded records are gone, a tombstone stays until
// delete.retention.ms after the cleaner first kept it and is then removed,
// and all of it holds across a clean restart and a kill -9.
#[test]
fn the_cleaner_keeps_the_latest_value_of_every_key() {
    let mut broker =
        Broker::start(BrokerOptions::single().with_override("log.cleaner.backoff.ms", 200));
    let bootstrap = broker.bootstrap();
    create(
        &bootstrap,
        "cleaned",
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "3000"),
        ],
    );
    let mut conn = Conn::open(&bootstrap);
    // Eight rounds, each in its own segment (segment.ms rolls on the next
    // append); k3 is deleted in round 5; a last batch closes round 7's
    // segment.
    for round in 0..8 {
        produce_round(
            &mut conn,
            "cleaned",
            round,
            if round == 5 { &[3] } else { &[] },
        );
        std::thread::sleep(Duration::from_millis(150));
    }
    produce_round(&mut conn, "cleaned", 8, &[]);
    let want = |read: &Read| {
        // The latest record per key: round 8's, all in the active segment.
        let mut latest = std::collections::BTreeMap::new();
        for (o, k, v) in read {
            latest.insert(k.clone(), (*o, v.clone()));
        }
        for k in 0..10 {
            let key = Some(format!("k{k}").into_bytes());
            let value = Some(format!("r8-{k}").into_bytes());
            assert_eq!(latest[&key], (80 + k as i64, value), "k{k}");
        }
        let offsets: Vec<i64> = read.iter().map(|r| r.0).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    };
    // Compacted: the closed segments (offsets 0..80) keep at most one
    // record per key, with the tombstone of k3.
    let deadline = Instant::now() + Duration::from_secs(30);
    let compacted = loop {
        let read = read_from_start(&bootstrap, "cleaned");
        want(&read);
        let below: Vec<_> = read.iter().filter(|r| r.0 < 80).collect();
        if below.len() <= 10 {
            break below.into_iter().cloned().collect::<Read>();
        }
        assert!(
            Instant::now() < deadline,
            "not compacted: {} records below 80",
            below.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for (o, k, v) in &compacted {
        let k = String::from_utf8(k.clone().unwrap()).unwrap();
        if k == "k3" {
            assert!(*o == 53 && v.is_none() || *o >= 60, "k3 at {o}: {v:?}");
        } else {
            assert!(*o >= 70, "{k} at {o}: an old value stayed");
        }
    }
    // The tombstone goes once delete.retention.ms has passed since the
    // cleaner first kept it (more records make the log dirty again).
    std::thread::sleep(Duration::from_millis(3500));
    produce_round(&mut conn, "cleaned", 9, &[]);
    std::thread::sleep(Duration::from_millis(150));
    produce_round(&mut conn, "cleaned", 10, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = read_from_start(&bootstrap, "cleaned");
        if !read
            .iter()
            .any(|r| r.1.as_deref() == Some(&b"k3"[..]) && r.2.is_none())
        {
            break;
        }
        assert!(Instant::now() < deadline, "the tombstone stayed: {read:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Once the cleaner has nothing left to do (the same view three times
    // over a second), the view must survive a restart and a kill -9.
    let mut before = read_from_start(&bootstrap, "cleaned");
    let mut same = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while same < 3 {
        assert!(Instant::now() < deadline, "the log kept changing");
        std::thread::sleep(Duration::from_millis(400));
        let now = read_from_start(&bootstrap, "cleaned");
        same = if now == before { same + 1 } else { 0 };
        before = now;
    }
    broker.restart();
    assert_eq!(
        read_from_start(&broker.bootstrap(), "cleaned"),
        before,
        "after a restart"
    );
    broker.kill9();
    broker.restart();
    assert_eq!(
        read_from_start(&broker.bootstrap(), "cleaned"),
        before,
        "after kill -9"
    );
}

// Proves kill -9 in the middle of cleaning loses nothing: a compacted
// topic with many segments is cleaned slowly (log.cleaner.io.max.bytes.per.
// second), the broker is killed while a segment's .cleaned file is being
// written, three times at different points, and after each restart
// librdkafka reads every key's latest value at its offset and no
// .cleaned file is left.
#[test]
fn kill9_during_cleaning_keeps_the_log_consistent() {
    let mut broker = Broker::start(
        BrokerOptions::single()
            .with_override("log.cleaner.backoff.ms", 100)
            .with_override("log.cleaner.io.max.bytes.per.second", 300_000),
    );
    let bootstrap = broker.bootstrap();
    create(
        &bootstrap,
        "slow",
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ],
    );
    let mut conn = Conn::open(&bootstrap);
    // 40 rounds of k0..k9, a segment each: values padded so a pass over
    // the closed segments takes seconds at the throttle.
    for round in 0..40 {
        let mut b = BatchBuilder::new(rdk::now_ms());
        for k in 0..10 {
            let mut value = format!("r{round}-{k}-").into_bytes();
            value.resize(2000, b'x');
            b.push(&Record {
                timestamp_delta: k as i64,
                key: Some(format!("k{k}").into_bytes()),
                value: Some(value),
                headers: Vec::new(),
            });
        }
        let (code, _, _) = produce(&mut conn, "slow", Bytes::from(b.build()));
        assert_eq!(code, 0);
        std::thread::sleep(Duration::from_millis(120));
    }
    drop(conn);
    let dir = broker.data_dir().join("slow-0");
    let check = |bootstrap: &str| {
        let read = read_from_start(bootstrap, "slow");
        let offsets: Vec<i64> = read.iter().map(|r| r.0).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        let mut latest = std::collections::BTreeMap::new();
        for (o, k, v) in &read {
            latest.insert(k.clone(), (*o, v.clone()));
        }
        for k in 0..10 {
            let (o, v) = &latest[&Some(format!("k{k}").into_bytes())];
            assert_eq!(*o, 390 + k, "k{k}");
            assert!(v
                .as_ref()
                .unwrap()
                .starts_with(format!("r39-{k}-").as_bytes()));
        }
        read.len()
    };
    let mut kills = 0;
    for _ in 0..3 {
        // Wait for a segment being rewritten, then kill -9.
        let deadline = Instant::now() + Duration::from_secs(60);
        let caught = loop {
            let cleaning = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().ends_with(".cleaned"))
                })
                .unwrap_or(false);
            if cleaning || Instant::now() > deadline {
                break cleaning;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        broker.kill9();
        kills += caught as usize;
        broker.restart();
        check(&broker.bootstrap());
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned"))
            .collect();
        // Recovery removed what the killed pass left (a new pass may have
        // started since: only its file can be there).
        assert!(left.len() <= 1, "{left:?}");
    }
    assert!(kills >= 1, "no kill landed during a segment rewrite");
    // Left alone, the cleaner finishes: one record per key below the
    // active segment.
    let deadline = Instant::now() + Duration::from_secs(60);
    while check(&broker.bootstrap()) > 20 {
        assert!(Instant::now() < deadline, "cleaning never finished");
        std::thread::sleep(Duration::from_millis(500));
    }
}
