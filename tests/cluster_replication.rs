//! Replication across real processes (three combined nodes on
//! 127.0.0.1-3): partitions with three replicas, followers fetching from
//! their leader and appending its batches byte for byte, acks=all answered
//! once the ISR has a batch, min.insync.replicas, and a leader killed with
//! kill -9 replaced by an in-sync follower with no acknowledged record
//! lost; the old leader comes back as a follower, cuts its log to the new
//! leader's and rejoins the ISR.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, ELECTION_TIMEOUT};
use common::raw::{produce_request, topic_name, value_batch, Conn};
use common::rdk;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, MetadataRequest, MetadataResponse, ProduceResponse,
};
use rdkafka::admin::{NewTopic, TopicReplication};

const NOT_ENOUGH_REPLICAS: i16 = 19;

/// (leader, ISR) of each partition of `topic` as node `asked` shows it.
fn layout(cluster: &Cluster, asked: i32, topic: &str) -> Vec<(i32, Vec<i32>)> {
    let mut c = Conn::open(&cluster.shard_address(asked));
    let request = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(topic_name(topic))),
    ]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &request);
    let mut parts: Vec<(i32, (i32, Vec<i32>))> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b: &BrokerId| b.0).collect();
            isr.sort();
            (p.partition_index, (p.leader_id.0, isr))
        })
        .collect();
    parts.sort_by_key(|(i, _)| *i);
    parts.into_iter().map(|(_, l)| l).collect()
}

fn wait_layout(
    cluster: &Cluster,
    asked: i32,
    topic: &str,
    what: &str,
    ok: impl Fn(&[(i32, Vec<i32>)]) -> bool,
) -> Vec<(i32, Vec<i32>)> {
    let start = Instant::now();
    loop {
        let l = layout(cluster, asked, topic);
        if ok(&l) {
            eprintln!("{what} after {} ms: {l:?}", start.elapsed().as_millis());
            return l;
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "{what}: {l:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The batches in a partition directory's segments, in order (the bytes
/// after the last batch of a segment are preallocated zeros).
fn log_batches(dir: &Path) -> Vec<Vec<u8>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".log"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let mut at = 0;
        while at + 12 <= bytes.len() {
            let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            if len <= 0 || at + 12 + len as usize > bytes.len() {
                break;
            }
            out.push(bytes[at..at + 12 + len as usize].to_vec());
            at += 12 + len as usize;
        }
    }
    out
}

/// Waits until every node's copy of each partition holds the same
/// batches (at least one).
fn wait_identical(cluster: &mut Cluster, nodes: &[i32], topic: &str, partitions: i32) {
    let start = Instant::now();
    loop {
        let mut same = true;
        let mut summary = BTreeMap::new();
        for p in 0..partitions {
            let copies: Vec<Vec<Vec<u8>>> = nodes
                .iter()
                .map(|&n| log_batches(&cluster.node(n).data_dir().join(format!("{topic}-{p}"))))
                .collect();
            summary.insert(p, copies.iter().map(Vec::len).collect::<Vec<_>>());
            same &= copies.iter().all(|c| *c == copies[0]) && !copies[0].is_empty();
        }
        if same {
            eprintln!(
                "replicas identical after {} ms: {summary:?}",
                start.elapsed().as_millis()
            );
            return;
        }
        assert!(
            start.elapsed() < ELECTION_TIMEOUT,
            "replicas differ (batches per node): {summary:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn all_in_sync(l: &[(i32, Vec<i32>)]) -> bool {
    !l.is_empty()
        && l.iter()
            .all(|(leader, isr)| *leader > 0 && *isr == vec![1, 2, 3])
}

#[test]
fn acks_all_survives_the_leaders_kill9_and_the_old_leader_catches_up() {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let topic = "replicated";
    let admin = rdk::admin(&cluster.bootstrap(1));
    let new = NewTopic::new(topic, 2, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    let created = rdk::block(admin.create_topics([&new], &rdk::admin_options())).unwrap();
    assert_eq!(created, vec![Ok(topic.to_string())]);
    let before = wait_layout(&cluster, 1, topic, "created", all_in_sync);
    // Leaders spread: the two partitions lead on different nodes.
    assert_ne!(before[0].0, before[1].0, "{before:?}");

    // An idempotent acks=all producer: every record acknowledged is on
    // the ISR's replicas.
    let partitions = [0, 1];
    let first = rdk::records("a", 200, &partitions, rdk::now_ms());
    let producer = rdk::idempotent_producer(&cluster.bootstrap(2), &[]);
    let mut acked = rdk::produce_all(&producer, topic, &first);
    wait_identical(&mut cluster, &[1, 2, 3], topic, 2);

    // kill -9 of partition 0's leader: once its broker is fenced an
    // in-sync follower leads, in a new epoch.
    let victim = before[0].0;
    let rest: Vec<i32> = (1..=3).filter(|&n| n != victim).collect();
    let killed = Instant::now();
    cluster.node(victim).kill9();
    let asked = rest[0];
    let after = wait_layout(&cluster, asked, topic, "failed over", |l| {
        l.iter().all(|(leader, _)| *leader > 0 && *leader != victim)
    });
    eprintln!(
        "kill -9 to a new leader for every partition: {} ms",
        killed.elapsed().as_millis()
    );
    for (leader, isr) in &after {
        assert!(rest.contains(leader), "{after:?}");
        assert!(!isr.contains(&victim), "{after:?}");
    }
    // The producer keeps going through the new leaders.
    let second = rdk::records("b", 200, &partitions, rdk::now_ms());
    acked.extend(rdk::produce_all(&producer, topic, &second));
    drop(producer);
    let ranges: BTreeMap<i32, (i64, i64)> = partitions
        .iter()
        .map(|&p| {
            (
                p,
                (
                    0,
                    acked.iter().filter(|a| a.rec.partition == p).count() as i64,
                ),
            )
        })
        .collect();
    let got = rdk::consume_ranges(&cluster.bootstrap(asked), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);
    for (p, records) in &got {
        assert_eq!(
            records.len() as i64,
            ranges[p].1,
            "partition {p}: no duplicates"
        );
    }

    // The old leader returns as a follower: it cuts what it had beyond the
    // new leader's log, catches up and rejoins every ISR.
    cluster.node(victim).restart();
    wait_layout(&cluster, asked, topic, "back in sync", all_in_sync);
    wait_identical(&mut cluster, &[1, 2, 3], topic, 2);
    let got = rdk::consume_ranges(&cluster.bootstrap(victim), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);
}

#[test]
fn acks_all_below_min_insync_replicas_is_refused() {
    // replica.fetch.max.bytes 64 KiB: what one follower fetch may take of
    // a partition (at least one batch).
    let mut cluster = Cluster::start_with(&[("replica.fetch.max.bytes", "65536")]);
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let topic = "guarded";
    let admin = rdk::admin(&cluster.bootstrap(1));
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "3");
    rdk::block(admin.create_topics([&new], &rdk::admin_options())).unwrap();
    let l = wait_layout(&cluster, 1, topic, "created", all_in_sync);
    let leader = l[0].0;
    let mut conn = Conn::open(&cluster.shard_address(leader));
    let produce = |conn: &mut Conn, acks: i16| -> i16 {
        let r: ProduceResponse = conn.call(
            ApiKey::Produce,
            9,
            &produce_request(topic, 0, value_batch(3, 10), acks),
        );
        r.responses[0].partition_responses[0].error_code
    };
    assert_eq!(produce(&mut conn, -1), 0);
    // Twenty 32 KiB batches: a follower's fetch asking for 50 MB of the
    // partition gets 64 KiB (plus at most the batch that crosses it), and
    // the followers still copy all of it.
    for _ in 0..20 {
        let r: ProduceResponse = conn.call(
            ApiKey::Produce,
            9,
            &produce_request(topic, 0, value_batch(1, 32 << 10), -1),
        );
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let follower_fetch = common::raw::fetch_request(topic, 0, 0, -1, 50 << 20)
        .with_replica_id(BrokerId((1..=3).find(|&n| n != leader).unwrap()));
    let r: FetchResponse = conn.call(ApiKey::Fetch, 12, &follower_fetch);
    let got = r.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |b| b.len());
    assert!(got > 0 && got <= (64 << 10) + (33 << 10), "{got} bytes");
    // A follower killed: out of the ISR once fenced; acks=all is refused
    // before appending, acks=1 still goes through.
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    cluster.node(follower).kill9();
    wait_layout(&cluster, leader, topic, "shrunk", |l| l[0].1.len() == 2);
    assert_eq!(produce(&mut conn, -1), NOT_ENOUGH_REPLICAS);
    assert_eq!(produce(&mut conn, 1), 0);
    // Back and caught up: acks=all works again.
    cluster.node(follower).restart();
    wait_layout(&cluster, leader, topic, "back", all_in_sync);
    assert_eq!(produce(&mut conn, -1), 0);
}

// Proves controlled shutdown: each node in turn is stopped with SIGTERM
// (it moves its leadership to the other in-sync replicas before it stops
// serving) and started again (it catches up and rejoins every ISR), while
// an idempotent acks=all producer keeps writing: no produce fails, and
// every acknowledged record is there exactly once.
#[test]
fn a_rolling_restart_under_load_fails_no_produce() {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let topic = "rolling";
    let admin = rdk::admin(&cluster.bootstrap(1));
    let new = NewTopic::new(topic, 2, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    rdk::block(admin.create_topics([&new], &rdk::admin_options())).unwrap();
    wait_layout(&cluster, 1, topic, "created", all_in_sync);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let bootstrap = format!("{},{}", cluster.bootstrap(1), cluster.bootstrap(2));
        std::thread::spawn(move || {
            let producer = rdk::idempotent_producer(&bootstrap, &[]);
            let mut acked = Vec::new();
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let recs = rdk::records(&format!("r{round}"), 50, &[0, 1], rdk::now_ms());
                // Panics on any failed delivery.
                acked.extend(rdk::produce_all(&producer, topic, &recs));
                round += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            acked
        })
    };
    for n in 1..=3 {
        std::thread::sleep(Duration::from_millis(500));
        let stopped = Instant::now();
        cluster.node(n).terminate();
        eprintln!(
            "node {n} stopped {} ms after SIGTERM",
            stopped.elapsed().as_millis()
        );
        assert!(
            cluster
                .node(n)
                .log()
                .contains("controlled shutdown: leadership moved to the other in-sync replicas"),
            "node {n} handed its leadership over"
        );
        let l = layout(&cluster, if n == 1 { 2 } else { 1 }, topic);
        assert!(
            l.iter().all(|(leader, _)| *leader > 0 && *leader != n),
            "{l:?}"
        );
        cluster.node(n).restart();
        wait_layout(
            &cluster,
            if n == 1 { 2 } else { 1 },
            topic,
            "back in sync",
            all_in_sync,
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = writer.join().expect("no produce failed");
    assert!(acked.len() >= 100, "{} records", acked.len());
    let ranges: BTreeMap<i32, (i64, i64)> = [0, 1]
        .iter()
        .map(|&p| {
            (
                p,
                (
                    0,
                    acked.iter().filter(|a| a.rec.partition == p).count() as i64,
                ),
            )
        })
        .collect();
    let got = rdk::consume_ranges(&cluster.bootstrap(3), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);
    for (p, records) in &got {
        assert_eq!(
            records.len() as i64,
            ranges[p].1,
            "partition {p}: no duplicates"
        );
    }
    eprintln!(
        "{} records acknowledged through three restarts",
        acked.len()
    );
}
