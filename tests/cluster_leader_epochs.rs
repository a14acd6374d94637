//! Partition leadership in a cluster follows the metadata image, as in
//! Kafka's KRaft mode: each partition has replicas, an ISR, a leader and a
//! leader epoch; fencing a broker (kill -9) leaves what it led without a
//! leader in a new epoch, and its return elects it again in the next one.
//! The leader stamps that epoch into the batches it appends, checks
//! requests' current_leader_epoch against it, and answers
//! OffsetForLeaderEpoch from the epochs its log has seen. Three combined
//! nodes on 127.0.0.1-3, real processes.

mod common;

use bytes::Bytes;
use common::cluster::{Cluster, ELECTION_TIMEOUT};
use common::raw::{produce_request, topic_name, value_batch, Conn};
use common::rdk;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, MetadataRequest, MetadataResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceResponse,
};
use std::time::{Duration, Instant};

const LEADER_NOT_AVAILABLE: i16 = 5;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// One partition as Metadata v12 shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    error: i16,
    leader: i32,
    epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline: Vec<i32>,
}

fn shown(cluster: &Cluster, asked: i32, topic: &str) -> Vec<Shown> {
    let mut c = Conn::open(&cluster.shard_address(asked));
    let request = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(topic_name(topic))),
    ]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, 12, &request);
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut parts: Vec<(i32, Shown)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                Shown {
                    error: p.error_code,
                    leader: p.leader_id.0,
                    epoch: p.leader_epoch,
                    replicas: ids(&p.replica_nodes),
                    isr: ids(&p.isr_nodes),
                    offline: ids(&p.offline_replicas),
                },
            )
        })
        .collect();
    parts.sort_by_key(|(i, _)| *i);
    parts.into_iter().map(|(_, s)| s).collect()
}

/// Waits until node `asked` shows partition `p` as `want` says.
fn wait_shown(cluster: &Cluster, asked: i32, topic: &str, p: usize, want: impl Fn(&Shown) -> bool) {
    let start = Instant::now();
    loop {
        let parts = shown(cluster, asked, topic);
        if parts.get(p).is_some_and(&want) {
            return;
        }
        assert!(
            start.elapsed() < ELECTION_TIMEOUT,
            "partition {p}: {parts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn produce(conn: &mut Conn, topic: &str, partition: i32, records: usize) -> (i16, i64) {
    let r: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request(topic, partition, value_batch(records, 10), 1),
    );
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// (error, record bytes) of a fetch from offset 0 naming
/// `current_leader_epoch`.
fn fetch(conn: &mut Conn, topic: &str, partition: i32, current_epoch: i32) -> (i16, Bytes) {
    let req = common::raw::fetch_request(topic, partition, 0, current_epoch, 1 << 20);
    let r: FetchResponse = conn.call(ApiKey::Fetch, 12, &req);
    let p = &r.responses[0].partitions[0];
    (p.error_code, p.records.clone().unwrap_or_default())
}

/// (base offset, partition leader epoch) of each batch in `records`.
fn batch_epochs(mut records: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    while records.len() >= 61 {
        let base = i64::from_be_bytes(records[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        let epoch = i32::from_be_bytes(records[12..16].try_into().unwrap());
        out.push((base, epoch));
        records = &records[(12 + len).min(records.len())..];
    }
    out
}

/// OffsetForLeaderEpoch as a consumer asks it: (error, epoch, end offset).
fn end_of_epoch(conn: &mut Conn, topic: &str, partition: i32, epoch: i32) -> (i16, i32, i64) {
    let r: OffsetForLeaderEpochResponse = conn.call(
        ApiKey::OffsetForLeaderEpoch,
        4,
        &OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(epoch)])]),
    );
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[test]
fn a_fenced_leader_loses_its_partitions_and_leads_them_again_in_a_new_epoch() {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let topic = "epochs";
    let admin = rdk::admin(&cluster.bootstrap(1));
    rdk::create_topic(&admin, topic, 3, &[]);
    let start = Instant::now();
    let before = loop {
        let parts = shown(&cluster, 1, topic);
        if parts.len() == 3 {
            break parts;
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "{parts:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    // A new topic: each partition on one broker, leading in epoch 0.
    for s in &before {
        assert_eq!(
            (s.error, s.epoch, s.isr.clone(), s.offline.clone()),
            (0, 0, vec![s.leader], vec![]),
            "{before:?}"
        );
        assert_eq!(s.replicas, vec![s.leader]);
    }
    let p = before
        .iter()
        .position(|s| s.leader == 3)
        .expect("node 3 leads one") as i32;
    let mut conn = Conn::open(&cluster.shard_address(3));
    // Node 1 shows the new topic; node 3 may not have adopted it yet
    // (NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION until then, as
    // a Kafka client sees after creating a topic).
    let start = Instant::now();
    loop {
        match produce(&mut conn, topic, p, 5) {
            (0, base) => {
                assert_eq!(base, 0);
                break;
            }
            (error, _) => assert!(
                (error == 6 || error == 3) && start.elapsed() < ELECTION_TIMEOUT,
                "produce: {error}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // kill -9: once fenced the partition has no leader, in epoch 1; its
    // only replica stays the ISR (its data is nowhere else) and is
    // offline. The other partitions keep their leaders and epochs.
    cluster.node(3).kill9();
    drop(conn);
    wait_shown(&cluster, 1, topic, p as usize, |s| s.leader == -1);
    let during = shown(&cluster, 2, topic);
    assert_eq!(
        during[p as usize],
        Shown {
            error: LEADER_NOT_AVAILABLE,
            leader: -1,
            epoch: 1,
            replicas: vec![3],
            isr: vec![3],
            offline: vec![3],
        }
    );
    for (i, s) in during.iter().enumerate() {
        if i != p as usize {
            assert_eq!(s, &before[i]);
        }
    }
    // Back with a new incarnation: it leads again, in the next epoch, 2.
    // Only its new registration is unfenced, at its own request: the
    // quorum's leader hears the new process before its registration lands
    // (Raft messages carry no incarnation) and must not take that for the
    // old registration coming back (which would elect it in epoch 2, fence
    // it again in 3 when the new registration replaces it, and elect it
    // in 4).
    // Node 3 says so once it has adopted the quorum's image (until then
    // it answers from the metadata it saved, epoch 0, and takes no
    // produce); the other nodes agree.
    cluster.node(3).restart();
    wait_shown(&cluster, 3, topic, p as usize, |s| {
        s.leader == 3 && s.epoch >= 2
    });
    let epoch = shown(&cluster, 3, topic)[p as usize].epoch;
    assert_eq!(epoch, 2);
    wait_shown(&cluster, 1, topic, p as usize, |s| {
        s.leader == 3 && s.epoch == epoch
    });
    let mut conn = Conn::open(&cluster.shard_address(3));
    let start = Instant::now();
    loop {
        let (error, base) = produce(&mut conn, topic, p, 5);
        if error == 0 {
            assert_eq!(base, 5);
            break;
        }
        // The node may answer before it has adopted the election.
        assert!(start.elapsed() < ELECTION_TIMEOUT, "produce: {error}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The batches carry the epoch they were written in.
    let (error, records) = fetch(&mut conn, topic, p, epoch);
    assert_eq!(error, 0);
    assert_eq!(batch_epochs(&records), vec![(0, 0), (5, epoch)]);
    // A client that knows an older epoch is fenced; one ahead of the
    // leader is told it does not know that epoch yet.
    assert_eq!(fetch(&mut conn, topic, p, 0).0, FENCED_LEADER_EPOCH);
    assert_eq!(
        fetch(&mut conn, topic, p, epoch + 1).0,
        UNKNOWN_LEADER_EPOCH
    );
    // Epoch 0 ends where the new epoch starts; epoch 1 (led by nobody)
    // is answered with the epoch below it; the new one ends at the log
    // end.
    assert_eq!(end_of_epoch(&mut conn, topic, p, 0), (0, 0, 5));
    assert_eq!(end_of_epoch(&mut conn, topic, p, 1), (0, 0, 5));
    assert_eq!(end_of_epoch(&mut conn, topic, p, epoch), (0, epoch, 10));
    // librdkafka (which tracks leader epochs from Metadata v9+) reads all
    // ten records through another node.
    let got = rdk::consume_ranges(&cluster.bootstrap(1), topic, &[(p, (0, 10))].into());
    let offsets: Vec<i64> = got[&p].iter().map(|g| g.offset).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
}
