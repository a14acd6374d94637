//! Replication across real processes (three combined nodes on
//! 127.0.0.1-3): partitions with three replicas, followers fetching from
//! their leader and appending its batches byte for byte, acks=all answered
//! once the ISR has a batch, min.insync.replicas, and a leader killed with
//! kill -9 replaced by an in-sync follower with no acknowledged record
//! lost; the old leader comes back as a follower, cuts its log to the new
//! leader's and rejoins the ISR.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::raw::{produce_request, value_batch, Conn};
use common::rdk;
use common::replicas::{all_in_sync, layout, wait_identical, wait_layout, with_topic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ProduceResponse};

const NOT_ENOUGH_REPLICAS: i16 = 19;

#[test]
fn acks_all_survives_the_leaders_kill9_and_the_old_leader_catches_up() {
    let topic = "replicated";
    let (mut cluster, before) = with_topic(Cluster::start(), topic, 2, 2);
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
    let topic = "guarded";
    let cluster = Cluster::start_with(&[("replica.fetch.max.bytes", "65536")]);
    let (mut cluster, l) = with_topic(cluster, topic, 1, 3);
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
    let topic = "rolling";
    let (mut cluster, _) = with_topic(Cluster::start(), topic, 2, 2);

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
