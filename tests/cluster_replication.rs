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
use common::replicas::{
    all_in_sync, assert_acked_exactly_once, layout, wait_identical, wait_layout, with_topic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ElectLeadersRequest, ElectLeadersResponse, FetchResponse, MetadataRequest,
    MetadataResponse, ProduceResponse,
};

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
    let ranges = assert_acked_exactly_once(&cluster.bootstrap(asked), topic, &partitions, &acked);

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
    assert_acked_exactly_once(&cluster.bootstrap(3), topic, &[0, 1], &acked);
    eprintln!(
        "{} records acknowledged through three restarts",
        acked.len()
    );
}

/// Each partition's preferred replica (the first listed) as `asked` shows
/// it.
fn preferred(cluster: &Cluster, asked: i32, topic: &str) -> Vec<i32> {
    let mut c = Conn::open(&cluster.shard_address(asked));
    let request = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(common::raw::topic_name(topic))),
    ]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &request);
    let mut out: Vec<(i32, i32)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.replica_nodes[0].0))
        .collect();
    out.sort();
    out.into_iter().map(|(_, r)| r).collect()
}

/// ElectLeaders through `asked` for `partitions` of `topic` (None: every
/// partition): (partition, error code) by topic.
fn elect(
    cluster: &Cluster,
    asked: i32,
    election_type: i8,
    topics: Option<&[(&str, &[i32])]>,
) -> Vec<(String, i32, i16)> {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let mut c = Conn::open(&cluster.shard_address(asked));
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_topic_partitions(topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic(common::raw::topic_name(t))
                        .with_partitions(ps.to_vec())
                })
                .collect()
        }));
    let r: ElectLeadersResponse = c.call(ApiKey::ElectLeaders, 2, &request);
    assert_eq!(r.error_code, 0);
    let mut out: Vec<(String, i32, i16)> = r
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.to_string(), p.partition_id, p.error_code))
        })
        .collect();
    out.sort();
    out
}

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;
const ELECTION_NOT_NEEDED: i16 = 84;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// Kills partition 0's leader (its preferred replica), waits until
/// another leads, restarts it and waits until it is back in every ISR;
/// returns it.
fn move_leadership_off_preferred(cluster: &mut Cluster, topic: &str) -> i32 {
    let victim = layout(cluster, 1, topic)[0].0;
    assert_eq!(preferred(cluster, 1, topic)[0], victim);
    cluster.node(victim).kill9();
    let asked = (1..=3).find(|&n| n != victim).unwrap();
    wait_layout(cluster, asked, topic, "failed over", |l| {
        l.iter().all(|(leader, _)| *leader > 0 && *leader != victim)
    });
    cluster.node(victim).restart();
    wait_layout(cluster, asked, topic, "back in sync", all_in_sync);
    victim
}

// ElectLeaders (Kafka's rules and errors, through the raw API and through
// Kafka's own kafka-leader-election tool): leadership moved off the
// preferred replica by a failure goes back to it when asked, not before
// (automatic rebalancing off).
#[test]
fn elect_leaders_moves_leadership_back_to_the_preferred_replica() {
    let topic = "elect";
    let cluster = Cluster::start_with(&[("auto.leader.rebalance.enable", "false")]);
    let (mut cluster, _) = with_topic(cluster, topic, 2, 2);
    let victim = move_leadership_off_preferred(&mut cluster, topic);
    std::thread::sleep(Duration::from_secs(2));
    assert_ne!(
        layout(&cluster, victim, topic)[0].0,
        victim,
        "no rebalancing"
    );

    // Unclean elections are for partitions without a leader; unknown
    // partitions are named.
    assert_eq!(
        elect(&cluster, 2, UNCLEAN, Some(&[(topic, &[0]), ("nope", &[0])])),
        vec![
            ("elect".to_string(), 0, ELECTION_NOT_NEEDED),
            ("nope".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    // Every partition, through Kafka's tool: partition 0 elects its
    // preferred replica again; those it leads already are not listed.
    let out = common::kafka::tool_ok(
        "kafka-leader-election",
        &[
            "--bootstrap-server",
            &cluster.bootstrap(1),
            "--election-type",
            "PREFERRED",
            "--all-topic-partitions",
        ],
    );
    eprintln!("kafka-leader-election: {out}");
    assert!(
        out.contains("Successfully completed leader election (PREFERRED) for partitions")
            && out.contains(&format!("{topic}-0")),
        "{out}"
    );
    wait_layout(&cluster, 3, topic, "preferred leader", |l| l[0].0 == victim);
    // By name through the raw API: nothing to do now.
    assert_eq!(
        elect(&cluster, 2, PREFERRED, Some(&[(topic, &[0, 7])])),
        vec![
            ("elect".to_string(), 0, ELECTION_NOT_NEEDED),
            ("elect".to_string(), 7, UNKNOWN_TOPIC_OR_PARTITION)
        ]
    );
    assert_eq!(elect(&cluster, 2, PREFERRED, None), vec![]);
    let l = wait_layout(&cluster, 1, topic, "all preferred", |l| {
        l.iter()
            .zip(preferred(&cluster, 1, topic))
            .all(|((leader, _), p)| *leader == p)
    });
    assert!(all_in_sync(&l));
    // The preferred replica down: not available.
    let p0 = preferred(&cluster, 1, topic)[0];
    cluster.node(p0).kill9();
    let asked = (1..=3).find(|&n| n != p0).unwrap();
    wait_layout(&cluster, asked, topic, "failed over", |l| {
        l.iter().all(|(leader, _)| *leader > 0 && *leader != p0)
    });
    assert_eq!(
        elect(&cluster, asked, PREFERRED, Some(&[(topic, &[0])])),
        vec![("elect".to_string(), 0, PREFERRED_LEADER_NOT_AVAILABLE)]
    );
}

// Automatic leader rebalancing (auto.leader.rebalance.enable, checked
// every leader.imbalance.check.interval.seconds): once the preferred
// replica is back in sync, the quorum leader elects it again.
#[test]
fn automatic_rebalancing_returns_leadership_to_the_preferred_replica() {
    let topic = "rebalanced";
    let cluster = Cluster::start_with(&[("leader.imbalance.check.interval.seconds", "1")]);
    let (mut cluster, _) = with_topic(cluster, topic, 2, 2);
    let victim = move_leadership_off_preferred(&mut cluster, topic);
    wait_layout(&cluster, 1, topic, "rebalanced", |l| {
        l[0].0 == victim && all_in_sync(l)
    });
    let logs: String = (1..=3).map(|n| cluster.node(n).log()).collect();
    assert!(logs.contains("leader rebalance: electing the preferred replicas"));
}

/// The largest number in `out` on the line starting with `prefix`
/// (`prefix: N ms`).
fn millis_after(out: &str, prefix: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.trim().trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
}

// The Java client (kafka-clients 4.x: an idempotent acks=all producer and
// a consumer, tests/clients/JavaFailover.java) and a librdkafka consumer
// keep producing and consuming while partition 0's leader is killed with
// kill -9 and comes back: every record the Java producer had
// acknowledged is consumed exactly once at its offset, and the longest
// pause of each is printed and bounded.
#[test]
fn java_and_librdkafka_clients_go_on_through_a_leader_failover() {
    use rdkafka::consumer::Consumer;
    use rdkafka::{Offset, TopicPartitionList};
    let topic = "failover";
    let (mut cluster, l) = with_topic(Cluster::start(), topic, 2, 2);
    let bootstrap = (1..=3)
        .map(|n| cluster.bootstrap(n))
        .collect::<Vec<_>>()
        .join(",");
    let dir = common::temp_dir();
    let ready = dir.path().join("ready");
    let java = {
        let source = common::clients::repo_dir().join("tests/clients/JavaFailover.java");
        let (bootstrap, ready) = (bootstrap.clone(), ready.clone());
        std::thread::spawn(move || {
            common::kafka::java(&[
                source.to_str().unwrap(),
                &bootstrap,
                topic,
                "15",
                ready.to_str().unwrap(),
            ])
        })
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (bootstrap, stop, read) = (bootstrap.clone(), stop.clone(), read.clone());
        std::thread::spawn(move || {
            let c = rdk::consumer(&bootstrap);
            let mut tpl = TopicPartitionList::new();
            for p in [0, 1] {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .unwrap();
            }
            c.assign(&tpl).unwrap();
            let (mut gap, mut last) = (Duration::ZERO, None::<Instant>);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match c.poll(Duration::from_millis(100)) {
                    Some(Ok(_)) => {
                        let now = Instant::now();
                        if let Some(t) = last {
                            gap = gap.max(now - t);
                        }
                        last = Some(now);
                        read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Some(Err(e)) => eprintln!("librdkafka consumer: {e}"),
                    None => {}
                }
            }
            gap
        })
    };
    let start = Instant::now();
    while !ready.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the Java producer did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let victim = l[0].0;
    let observer = (1..=3).find(|&n| n != victim).unwrap();
    cluster.node(victim).kill9();
    wait_layout(&cluster, observer, topic, "failed over", |l| {
        l.iter().all(|(leader, _)| *leader > 0 && *leader != victim)
    });
    std::thread::sleep(Duration::from_secs(3));
    cluster.node(victim).restart();
    wait_layout(&cluster, observer, topic, "back in sync", all_in_sync);
    let run = java.join().unwrap();
    run.assert_success();
    let out = run.stdout_text();
    eprintln!("{out}");
    let acked: u64 = out
        .lines()
        .find_map(|l| l.split(", acknowledged ").nth(1))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in:\n{out}"));
    let java_produce = millis_after(&out, "longest without an acknowledgement:");
    let java_consume = millis_after(&out, "longest without a consumed record:");
    // The librdkafka consumer reads at least what was acknowledged.
    let start = Instant::now();
    while read.load(std::sync::atomic::Ordering::SeqCst) < acked
        && start.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rdk_gap = reader.join().unwrap();
    let count = read.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "kill -9 of node {victim}: Java producer's longest pause {java_produce} ms, Java consumer's \
         {java_consume} ms, librdkafka consumer's {} ms ({count} records)",
        rdk_gap.as_millis()
    );
    assert!(count >= acked, "librdkafka read {count} of {acked}");
    // Bounded by the failure detection (broker.session.timeout.ms, 2 s
    // here) and the clients' metadata refresh, far below their timeouts.
    for (who, ms) in [
        ("Java producer", java_produce),
        ("Java consumer", java_consume),
        ("librdkafka consumer", rdk_gap.as_millis() as u64),
    ] {
        assert!(ms < 20_000, "{who} paused {ms} ms");
    }
}

/// The log start offset a replica's directory records (0: none written).
fn replica_log_start(cluster: &mut Cluster, node: i32, dir: &str) -> i64 {
    std::fs::read_to_string(
        cluster
            .node(node)
            .data_dir()
            .join(dir)
            .join("log-start-offset"),
    )
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

// Followers follow their leader's log start (DeleteRecords there, which
// answers once the in-sync ones have), and
// one that was away while the leader's log start passed its log end
// starts its log afresh at the batch holding that start (Kafka's
// truncateFullyAndStartAt) instead of being stuck, catches up and
// rejoins the ISR.
#[test]
fn followers_follow_the_leaders_log_start_and_start_over_below_it() {
    let topic = "starts";
    let (mut cluster, l) = with_topic(Cluster::start(), topic, 1, 2);
    let leader = l[0].0;
    let followers: Vec<i32> = (1..=3).filter(|&n| n != leader).collect();
    let mut conn = Conn::open(&cluster.shard_address(leader));
    let produce_tens = |conn: &mut Conn, batches: usize| {
        for _ in 0..batches {
            let r: ProduceResponse = conn.call(
                ApiKey::Produce,
                9,
                &produce_request(topic, 0, value_batch(10, 100), -1),
            );
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        }
    };
    produce_tens(&mut conn, 10);
    wait_identical(&mut cluster, &[1, 2, 3], topic, 1);
    let away = followers[0];
    cluster.node(away).kill9();
    wait_layout(&cluster, leader, topic, "shrunk", |l| l[0].1.len() == 2);
    produce_tens(&mut conn, 10);
    assert_eq!(common::raw::delete_records(&mut conn, topic, 155), (0, 155));
    // Answered (as Kafka) once the follower in sync had followed.
    let dir = format!("{topic}-0");
    assert_eq!(replica_log_start(&mut cluster, followers[1], &dir), 155);
    // The one away (its log ends at 100) starts over at 150, the base of
    // the batch holding 155, follows the start to 155 and catches up.
    cluster.node(away).restart();
    wait_layout(&cluster, leader, topic, "back in sync", all_in_sync);
    let start = Instant::now();
    loop {
        let theirs: Vec<Vec<u8>> =
            common::replicas::log_batches(&cluster.node(leader).data_dir().join(&dir))
                .into_iter()
                .filter(|b| i64::from_be_bytes(b[..8].try_into().unwrap()) >= 150)
                .collect();
        let ours = common::replicas::log_batches(&cluster.node(away).data_dir().join(&dir));
        if ours == theirs && replica_log_start(&mut cluster, away, &dir) == 155 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the returning follower has {} batches, the leader {} from 150 on",
            ours.len(),
            theirs.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cluster
        .node(away)
        .log()
        .contains("the follower is below the leader's log start; starting its log there"));
}

// KIP-392: with Kafka's RackAwareReplicaSelector, the leader sends a
// consumer that gives its rack to an in-sync follower in that rack (an
// empty answer naming it), the follower serves consumers' v11+ fetches up
// to the high watermark with the leader's bytes, older fetches still get
// NOT_LEADER_OR_FOLLOWER there, and librdkafka with client.rack reads
// everything through it.
#[test]
fn consumers_read_from_a_follower_in_their_rack() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let topic = "racks";
    // Each node's metrics on its own address, at one reserved port.
    let (mport, _lock) = common::broker::reserve_ports(1);
    let racks = move |n: i32, host: std::net::Ipv4Addr, _: u16| {
        vec![
            ("broker.rack".to_string(), format!("rack-{n}")),
            (
                "shardlog.metrics.listen".to_string(),
                format!("{host}:{mport}"),
            ),
        ]
    };
    let cluster = Cluster::start_each(
        &[common::cluster::COMBINED; 3],
        &[(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        )],
        &racks,
    );
    let (cluster, l) = with_topic(cluster, topic, 1, 2);
    let leader = l[0].0;
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let mut to_leader = Conn::open(&cluster.shard_address(leader));
    for _ in 0..10 {
        let r: ProduceResponse = to_leader.call(
            ApiKey::Produce,
            9,
            &produce_request(topic, 0, value_batch(10, 100), -1),
        );
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let fetch = |conn: &mut Conn, version: i16, rack: &str| -> (i16, i32, usize, i64) {
        let request = common::raw::fetch_request(topic, 0, 0, -1, 1 << 20)
            .with_rack_id(common::raw::str_bytes(rack));
        let r: FetchResponse = conn.call(ApiKey::Fetch, version, &request);
        let p = &r.responses[0].partitions[0];
        (
            p.error_code,
            p.preferred_read_replica.0,
            p.records.as_ref().map_or(0, |b| b.len()),
            p.high_watermark,
        )
    };
    // The leader: to the follower for its rack, itself for its own.
    let (code, preferred, bytes, _) = fetch(&mut to_leader, 12, &format!("rack-{follower}"));
    assert_eq!((code, preferred, bytes), (0, follower, 0));
    let (code, preferred, from_leader, hw) = fetch(&mut to_leader, 12, &format!("rack-{leader}"));
    assert_eq!((code, preferred, hw), (0, -1, 100));
    assert!(from_leader > 0);
    let (_, preferred, _, _) = fetch(&mut to_leader, 12, "");
    assert_eq!(preferred, -1, "no rack, no redirection");
    // The follower serves v11+ consumers once it has the high watermark.
    let mut to_follower = Conn::open(&cluster.shard_address(follower));
    let start = Instant::now();
    loop {
        let (code, preferred, bytes, hw) = fetch(&mut to_follower, 12, "");
        assert_eq!((code, preferred), (0, -1));
        if hw == 100 {
            assert_eq!(bytes, from_leader, "the leader's batches");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "hw {hw}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(fetch(&mut to_follower, 10, "").0, 6, "v10: leader only");
    // librdkafka in the follower's rack: it reads from the follower (the
    // bytes its fetches returned grow by the whole log there, not on the
    // leader).
    let bytes_out = |node: i32| -> u64 {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect((cluster.host(node), mport)).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "shardlog_topic_bytes_out_total{{topic=\"{topic}\"}} "
                ))
            })
            .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
    };
    let (leader_before, follower_before) = (bytes_out(leader), bytes_out(follower));
    let c: BaseConsumer = rdk::base_config(&cluster.bootstrap(leader))
        .set("group.id", "racks")
        .set("client.rack", format!("rack-{follower}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let ends: BTreeMap<i32, i64> = [(0, 100)].into();
    let got = rdk::poll_until(&c, topic, &ends);
    assert_eq!(got[&0].len(), 100);
    assert!(got[&0]
        .iter()
        .enumerate()
        .all(|(i, g)| g.offset == i as i64));
    let (leader_after, follower_after) = (bytes_out(leader), bytes_out(follower));
    eprintln!(
        "bytes out: leader {leader_before} -> {leader_after}, follower {follower_before} -> {follower_after}"
    );
    assert!(follower_after >= follower_before + from_leader as u64);
    assert!(leader_after < leader_before + from_leader as u64);
}
