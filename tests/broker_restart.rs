//! Restarts of the real `shardlog` binary on the same data directory, with
//! librdkafka (the rdkafka crate) as the client:
//!
//! - kill -9 while an idempotent acks=all producer is sending: after the
//!   restart every acknowledged record is at its acknowledged offset, byte
//!   for byte, no record appears twice, and new records continue the
//!   offsets (one shard; two shards behind one port; two shards each
//!   advertised as its own node);
//! - SIGTERM: exit status 0, topics, their configs and their records kept,
//!   offsets continue;
//! - a second broker on the data directory in use exits non-zero naming the
//!   lock, and the first keeps serving.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::broker::{binary, wait_timeout, Broker, BrokerOptions};
use common::rdk::{self, Acked, Got, Rec};
use rdkafka::admin::{AdminClient, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{Producer, PurgeConfig};

const PARTITIONS: i32 = 4;
const ALL: [i32; 4] = [0, 1, 2, 3];

fn options(shards: usize, per_shard: bool) -> BrokerOptions {
    let o = if per_shard {
        BrokerOptions::per_shard(shards)
    } else {
        BrokerOptions {
            cores: vec![0; shards],
            ..BrokerOptions::single()
        }
    };
    o.with_override("auto.create.topics.enable", "false")
}

/// `records` with a unique `id` header appended to each, so a record can
/// be recognised wherever it turns up.
fn tagged(tag: &str, count: usize, partitions: &[i32], base_timestamp: i64) -> Vec<Rec> {
    let mut recs = rdk::records(tag, count, partitions, base_timestamp);
    for (i, r) in recs.iter_mut().enumerate() {
        r.headers
            .push(("id".to_string(), Some(format!("{tag}/{i}").into_bytes())));
    }
    recs
}

fn id_of(r: &Rec) -> String {
    let (_, v) = r
        .headers
        .iter()
        .rev()
        .find(|(k, _)| k == "id")
        .expect("id header");
    String::from_utf8(v.clone().expect("id value")).expect("utf-8 id")
}

/// Reads every partition from 0 to its high watermark.
fn read_all(bootstrap: &str, topic: &str) -> (BTreeMap<i32, i64>, BTreeMap<i32, Vec<Got>>) {
    let c = rdk::consumer(bootstrap);
    let hw = rdk::high_watermarks(&c, topic, &ALL);
    let ranges = hw.iter().map(|(&p, &h)| (p, (0, h))).collect();
    let got = rdk::consume_ranges(bootstrap, topic, &ranges);
    for (p, gs) in &got {
        assert_eq!(
            gs.len() as i64,
            hw[p],
            "{topic}/{p}: records below the high watermark"
        );
    }
    (hw, got)
}

/// Every consumed record is one that was sent (by its id) and none
/// appears twice.
fn assert_known_and_unique(
    topic: &str,
    sent: &BTreeMap<String, Rec>,
    got: &BTreeMap<i32, Vec<Got>>,
) {
    let mut seen = BTreeSet::new();
    for (p, gs) in got {
        for g in gs {
            let id = id_of(&g.rec);
            let want = sent
                .get(&id)
                .unwrap_or_else(|| panic!("{topic}/{p}@{}: unknown record {id}", g.offset));
            assert_eq!(
                &g.rec, want,
                "{topic}/{p}@{}: record {id} altered",
                g.offset
            );
            assert!(
                seen.insert(id.clone()),
                "{topic}/{p}@{}: record {id} appears twice",
                g.offset
            );
        }
    }
}

/// A producer thread: sends `recs` with at most `window` unacknowledged,
/// reports the number acknowledged on `progress` after each delivery
/// report, and stops when `stop` is set or everything is sent; then purges
/// what is queued or in flight. Returns what the broker acknowledged.
fn spawn_producer(
    bootstrap: String,
    topic: String,
    recs: Vec<Rec>,
    window: usize,
    stop: Arc<AtomicBool>,
    progress: mpsc::Sender<usize>,
) -> thread::JoinHandle<Vec<Acked>> {
    thread::spawn(move || {
        let p = rdk::idempotent_producer(
            &bootstrap,
            &[
                ("linger.ms", "1"),
                ("message.timeout.ms", "60000"),
                ("reconnect.backoff.max.ms", "200"),
            ],
        );
        let mut acked = Vec::new();
        let mut sent = 0usize;
        let mut reported = 0usize;
        let collect = |p: &rdk::RecProducer, acked: &mut Vec<Acked>, reported: &mut usize| {
            for (i, r) in rdk::take_reports(p) {
                *reported += 1;
                if let Ok((partition, offset)) = r {
                    assert_eq!(partition, recs[i].partition);
                    acked.push(Acked {
                        rec: recs[i].clone(),
                        offset,
                    });
                    let _ = progress.send(acked.len());
                }
            }
        };
        while !stop.load(Ordering::SeqCst) && reported < recs.len() {
            if sent < recs.len() && sent - reported < window {
                rdk::send(&p, &topic, sent, &recs[sent]);
                sent += 1;
                p.poll(Duration::ZERO);
            } else {
                p.poll(Duration::from_millis(1));
            }
            collect(&p, &mut acked, &mut reported);
        }
        p.purge(PurgeConfig::default().queue().inflight());
        let _ = p.flush(rdk::TIMEOUT);
        collect(&p, &mut acked, &mut reported);
        assert_eq!(reported, sent, "a delivery report for every record sent");
        acked
    })
}

fn kill9_keeps_acknowledged_records(options: BrokerOptions) {
    let mut broker = Broker::start(options);
    let bootstrap = broker.bootstrap();
    let topic = "crash";
    {
        let admin = rdk::admin(&bootstrap);
        rdk::create_topic(&admin, topic, PARTITIONS, &[("retention.ms", "86400000")]);
    }
    let base = rdk::now_ms();
    let mut sent: BTreeMap<String, Rec> = BTreeMap::new();

    // Phase A: everything acknowledged before the crash.
    let recs_a = tagged("a", 1200, &ALL, base);
    sent.extend(recs_a.iter().map(|r| (id_of(r), r.clone())));
    let p = rdk::idempotent_producer(&bootstrap, &[]);
    let acked_a = rdk::produce_all(&p, topic, &recs_a);
    drop(p);
    rdk::assert_contiguous_in_order(&acked_a, &BTreeMap::new());

    // Phase B: the broker is killed while a producer is sending.
    let recs_b = tagged("b", 100_000, &[1, 2, 3], base + 10_000);
    sent.extend(recs_b.iter().map(|r| (id_of(r), r.clone())));
    let stop = Arc::new(AtomicBool::new(false));
    let (progress_tx, progress) = mpsc::channel();
    let producer = spawn_producer(
        bootstrap.clone(),
        topic.to_string(),
        recs_b,
        64,
        stop.clone(),
        progress_tx,
    );
    let deadline = Instant::now() + rdk::TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match progress.recv_timeout(left) {
            Ok(n) if n >= 300 => break,
            Ok(_) => {}
            Err(e) => panic!("the producer made no progress before the kill: {e}"),
        }
    }
    broker.kill9();
    stop.store(true, Ordering::SeqCst);
    let acked_b = producer.join().expect("producer thread");
    assert!(acked_b.len() >= 300);

    broker.restart();

    // Every acknowledged record is where the broker said it put it.
    let (hw, got) = read_all(&bootstrap, topic);
    let mut acked = acked_a.clone();
    acked.extend(acked_b.iter().cloned());
    rdk::assert_acked_present(topic, &acked, &got);
    assert_known_and_unique(topic, &sent, &got);
    // Partition 0 only had phase A records: nothing more, nothing less.
    assert_eq!(
        hw[&0],
        acked_a.iter().filter(|a| a.rec.partition == 0).count() as i64
    );

    // Phase C: offsets continue after the restart.
    let recs_c = tagged("c", 400, &ALL, base + 200_000);
    sent.extend(recs_c.iter().map(|r| (id_of(r), r.clone())));
    let p = rdk::idempotent_producer(&bootstrap, &[]);
    let acked_c = rdk::produce_all(&p, topic, &recs_c);
    drop(p);
    rdk::assert_contiguous_in_order(&acked_c, &hw);
    let (_, got) = read_all(&bootstrap, topic);
    acked.extend(acked_c);
    rdk::assert_acked_present(topic, &acked, &got);
    assert_known_and_unique(topic, &sent, &got);
}

#[test]
fn kill9_keeps_acknowledged_records_one_shard() {
    kill9_keeps_acknowledged_records(options(1, false));
}

#[test]
fn kill9_keeps_acknowledged_records_two_shards_one_port() {
    kill9_keeps_acknowledged_records(options(2, false));
}

#[test]
fn kill9_keeps_acknowledged_records_per_shard() {
    kill9_keeps_acknowledged_records(options(2, true));
}

fn describe_topic(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> BTreeMap<String, String> {
    let r = rdk::block(
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &rdk::admin_options()),
    )
    .expect("describe_configs");
    let r = r.into_iter().next().expect("one").expect("described");
    r.entries
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

fn sigterm_restart_keeps_data(options: BrokerOptions) {
    let mut broker = Broker::start(options);
    let bootstrap = broker.bootstrap();
    let admin = rdk::admin(&bootstrap);
    rdk::create_topic(
        &admin,
        "keep-a",
        PARTITIONS,
        &[("retention.ms", "86400000")],
    );
    rdk::create_topic(&admin, "keep-b", 1, &[("max.message.bytes", "500000")]);
    let base = rdk::now_ms();
    let p = rdk::idempotent_producer(&bootstrap, &[("compression.type", "zstd")]);
    let recs_a = tagged("keep-a", 600, &ALL, base);
    let acked_a = rdk::produce_all(&p, "keep-a", &recs_a);
    let recs_b = tagged("keep-b", 50, &[0], base);
    let acked_b = rdk::produce_all(&p, "keep-b", &recs_b);

    // The producer and admin client stay connected: shutdown must not wait
    // for idle clients to leave.
    let t = Instant::now();
    broker.terminate();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "clean shutdown took {took:?}"
    );
    assert!(
        broker.log().contains("shut down cleanly"),
        "{}",
        broker.log_tail()
    );
    drop(p);
    drop(admin);

    broker.restart();
    let admin = rdk::admin(&bootstrap);
    let c = rdk::consumer(&bootstrap);
    let mut names = rdk::topic_names(&c).expect("metadata");
    names.sort();
    assert_eq!(names, vec!["keep-a".to_string(), "keep-b".to_string()]);
    assert_eq!(
        rdk::partition_count(&c, "keep-a"),
        Some(PARTITIONS as usize)
    );
    assert_eq!(rdk::partition_count(&c, "keep-b"), Some(1));
    assert_eq!(describe_topic(&admin, "keep-a")["retention.ms"], "86400000");
    assert_eq!(
        describe_topic(&admin, "keep-b")["max.message.bytes"],
        "500000"
    );

    for (topic, acked) in [("keep-a", &acked_a), ("keep-b", &acked_b)] {
        let hw = rdk::high_watermarks(
            &c,
            topic,
            &rdk::full_ranges(acked).keys().copied().collect::<Vec<_>>(),
        );
        let want: BTreeMap<i32, i64> = rdk::full_ranges(acked)
            .into_iter()
            .map(|(p, (_, e))| (p, e))
            .collect();
        assert_eq!(hw, want, "{topic}: high watermarks after restart");
        let got = rdk::consume_ranges(&bootstrap, topic, &rdk::full_ranges(acked));
        rdk::assert_acked_present(topic, acked, &got);
        assert_eq!(got.values().map(Vec::len).sum::<usize>(), acked.len());

        // Offsets continue.
        let p = rdk::idempotent_producer(&bootstrap, &[]);
        let parts: Vec<i32> = want.keys().copied().collect();
        let more = tagged(&format!("{topic}-more"), 40, &parts, base + 50_000);
        let acked_more = rdk::produce_all(&p, topic, &more);
        rdk::assert_contiguous_in_order(&acked_more, &want);
        let mut all = acked.clone();
        all.extend(acked_more);
        let got = rdk::consume_ranges(&bootstrap, topic, &rdk::full_ranges(&all));
        rdk::assert_acked_present(topic, &all, &got);
        assert_eq!(got.values().map(Vec::len).sum::<usize>(), all.len());
    }
}

#[test]
fn sigterm_restart_keeps_data_one_shard() {
    sigterm_restart_keeps_data(options(1, false));
}

#[test]
fn sigterm_restart_keeps_data_per_shard() {
    sigterm_restart_keeps_data(options(2, true));
}

#[test]
fn second_broker_on_the_same_data_dir_is_refused() {
    let broker = Broker::start(options(2, false));
    let bootstrap = broker.bootstrap();
    let admin = rdk::admin(&bootstrap);
    rdk::create_topic(&admin, "locked", 2, &[]);
    let p = rdk::idempotent_producer(&bootstrap, &[]);
    let base = rdk::now_ms();
    let first = tagged("first", 100, &[0, 1], base);
    let mut acked = rdk::produce_all(&p, "locked", &first);

    // Another port, same data directory.
    let data_dir = broker.data_dir().display().to_string();
    let mut second = Command::new(binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir,
            "--cores",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second broker");
    let status = match wait_timeout(&mut second, Duration::from_secs(30)) {
        Some(s) => s,
        None => {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second broker on {data_dir} kept running");
        }
    };
    let mut output = String::new();
    for stream in [
        second.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
        second.stderr.take().map(|s| Box::new(s) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut s = stream;
        let _ = s.read_to_string(&mut output);
    }
    assert!(
        !status.success(),
        "the second broker exited with {status}: {output}"
    );
    assert!(
        output.contains("lock") && output.contains(&data_dir),
        "the second broker's message names neither the lock nor {data_dir}: {output}"
    );

    // The first one still serves: old records intact, new ones accepted.
    let more = tagged("after", 100, &[0, 1], base + 1000);
    let acked_more = rdk::produce_all(&p, "locked", &more);
    rdk::assert_contiguous_in_order(&acked_more, &BTreeMap::from([(0, 50), (1, 50)]));
    acked.extend(acked_more);
    let got = rdk::consume_ranges(&bootstrap, "locked", &rdk::full_ranges(&acked));
    rdk::assert_acked_present("locked", &acked, &got);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), acked.len());
}
