//! Replicated partitions seen from outside: each partition's leader and
//! ISR as Metadata shows them, the batches in each replica's files, and
//! a cluster with a replicated topic ready.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};
use rdkafka::admin::{NewTopic, TopicReplication};

use super::cluster::{Cluster, ELECTION_TIMEOUT};
use super::raw::{topic_name, Conn};
use super::rdk;

/// Three combined nodes with `topic` created on them: `partitions`
/// partitions of three replicas, `min.insync.replicas` = `min_isr`; returns
/// once every partition has a leader and all three replicas in its ISR.
pub fn with_topic(
    cluster: Cluster,
    topic: &str,
    partitions: i32,
    min_isr: i32,
) -> (Cluster, Vec<(i32, Vec<i32>)>) {
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let admin = rdk::admin(&cluster.bootstrap(1));
    let min_isr = min_isr.to_string();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(3))
        .set("min.insync.replicas", &min_isr);
    let created = rdk::block(admin.create_topics([&new], &rdk::admin_options())).unwrap();
    assert_eq!(created, vec![Ok(topic.to_string())]);
    let l = wait_layout(&cluster, 1, topic, "created", all_in_sync);
    (cluster, l)
}

/// (leader, ISR) of each partition of `topic` as node `asked` shows it.
pub fn layout(cluster: &Cluster, asked: i32, topic: &str) -> Vec<(i32, Vec<i32>)> {
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

pub fn wait_layout(
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
pub fn log_batches(dir: &Path) -> Vec<Vec<u8>> {
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
pub fn wait_identical(cluster: &mut Cluster, nodes: &[i32], topic: &str, partitions: i32) {
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

pub fn all_in_sync(l: &[(i32, Vec<i32>)]) -> bool {
    !l.is_empty()
        && l.iter()
            .all(|(leader, isr)| *leader > 0 && *isr == vec![1, 2, 3])
}

/// Reads `partitions` of `topic` through `bootstrap` from offset 0 for as
/// many records as were acknowledged there, and checks that every
/// acknowledged record is at its acknowledged offset and that nothing else
/// is there (no duplicates); returns the ranges read.
pub fn assert_acked_exactly_once(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    acked: &[rdk::Acked],
) -> BTreeMap<i32, (i64, i64)> {
    let ranges: BTreeMap<i32, (i64, i64)> = partitions
        .iter()
        .map(|&p| {
            let count = acked.iter().filter(|a| a.rec.partition == p).count();
            (p, (0, count as i64))
        })
        .collect();
    let got = rdk::consume_ranges(bootstrap, topic, &ranges);
    rdk::assert_acked_present(topic, acked, &got);
    for (p, records) in &got {
        assert_eq!(
            records.len() as i64,
            ranges[p].1,
            "partition {p}: no duplicates"
        );
    }
    ranges
}
