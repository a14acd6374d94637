//! DescribeLogDirs against the real broker: the one log directory, as an
//! absolute path, with the size of every partition log in it (the offsets
//! log's partitions included), merged from every shard; named topics and
//! partitions narrow the answer and unknown ones are absent; v4 adds the
//! file system's size and free space. On a full disk (a loop-mounted ext4
//! image) the directory carries KAFKA_STORAGE_ERROR until space is freed.
//! kafka-python's admin client (3.x, installed by `tests/clients/install.sh`
//! on first use) reads the same through the version it negotiates.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::broker::{Broker, BrokerOptions};
use common::clients::{ensure_installed, run_with_timeout, CLIENT_TIMEOUT};
use common::loopfs::LoopFs;
use common::raw::{create_topic, produce_request, topic_name, value_batch, Conn};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, MetadataRequest, MetadataResponse,
    ProduceResponse,
};

const NONE: i16 = 0;
const KAFKA_STORAGE_ERROR: i16 = 56;
const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// offsets.topic.num.partitions in these tests.
const OFFSETS_PARTITIONS: i32 = 4;

/// DescribeLogDirs at `version` for `topics` (None: every partition).
fn describe(
    conn: &mut Conn,
    version: i16,
    topics: Option<&[(&str, &[i32])]>,
) -> DescribeLogDirsResponse {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, partitions)| {
                let mut t = DescribableLogDirTopic::default();
                t.topic = topic_name(name);
                t.partitions = partitions.to_vec();
                t
            })
            .collect()
    });
    conn.call(
        ApiKey::DescribeLogDirs,
        version,
        &DescribeLogDirsRequest::default().with_topics(topics),
    )
}

/// The one log directory of a response, checked to be the broker's.
fn the_dir<'a>(resp: &'a DescribeLogDirsResponse, data_dir: &Path) -> &'a DescribeLogDirsResult {
    assert_eq!(resp.results.len(), 1, "one log directory: {resp:?}");
    let dir = &resp.results[0];
    let want = std::path::absolute(data_dir).expect("absolute data dir");
    assert_eq!(dir.log_dir.as_str(), want.to_str().unwrap(), "log_dir");
    dir
}

/// (topic, partition) -> partition_size, checking the fields Kafka fixes
/// for a single replica (no lag, no future replica) and that nothing is
/// listed twice.
fn sizes(dir: &DescribeLogDirsResult) -> BTreeMap<(String, i32), i64> {
    let mut out = BTreeMap::new();
    for t in &dir.topics {
        assert!(!t.partitions.is_empty(), "topic {} listed empty", t.name.0);
        for p in &t.partitions {
            assert_eq!(p.offset_lag, 0);
            assert!(!p.is_future_key);
            assert!(p.partition_size >= 0);
            let key = (t.name.0.to_string(), p.partition_index);
            assert!(out.insert(key, p.partition_size).is_none(), "listed twice");
        }
    }
    out
}

fn size_of(sizes: &BTreeMap<(String, i32), i64>, topic: &str, partition: i32) -> i64 {
    *sizes
        .get(&(topic.to_string(), partition))
        .unwrap_or_else(|| panic!("{topic}-{partition} not listed: {sizes:?}"))
}

/// Produces one batch with acks=all; returns its error code.
fn produce(conn: &mut Conn, topic: &str, partition: i32, batch: bytes::Bytes) -> i16 {
    let resp: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request(topic, partition, batch, -1),
    );
    resp.responses[0].partition_responses[0].error_code
}

// Proves DescribeLogDirs lists every partition log of every shard in the
// one directory with its exact size (the bytes of the batches appended),
// growing with writes and 0 for empty partitions; that a topic list narrows
// it, leaving unknown topics and partitions out; and that v4 reports the
// file system's size and free space, for versions 1 to 4.
#[test]
fn describe_log_dirs_lists_partition_sizes() {
    let broker = Broker::start(
        BrokerOptions::single_shared(2)
            .with_override("offsets.topic.num.partitions", OFFSETS_PARTITIONS),
    );
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "logdirs-a", 3);
    create_topic(&mut conn, "logdirs-b", 2);

    let batch = value_batch(10, 100);
    let batch_bytes = batch.len() as i64;
    for _ in 0..3 {
        assert_eq!(produce(&mut conn, "logdirs-a", 0, batch.clone()), NONE);
    }
    assert_eq!(produce(&mut conn, "logdirs-a", 2, batch.clone()), NONE);
    assert_eq!(produce(&mut conn, "logdirs-b", 1, batch.clone()), NONE);

    // Every partition, v4.
    let resp = describe(&mut conn, 4, None);
    assert_eq!(resp.error_code, NONE);
    let dir = the_dir(&resp, broker.data_dir());
    assert_eq!(dir.error_code, NONE);
    eprintln!(
        "log dir {}: total {} MiB, usable {} MiB",
        dir.log_dir.as_str(),
        dir.total_bytes >> 20,
        dir.usable_bytes >> 20
    );
    assert!(dir.usable_bytes > 0, "usable_bytes {}", dir.usable_bytes);
    assert!(dir.total_bytes >= dir.usable_bytes, "{dir:?}");
    let all = sizes(dir);
    eprintln!("every partition: {all:?}");
    assert_eq!(size_of(&all, "logdirs-a", 0), 3 * batch_bytes);
    assert_eq!(size_of(&all, "logdirs-a", 1), 0);
    assert_eq!(size_of(&all, "logdirs-a", 2), batch_bytes);
    assert_eq!(size_of(&all, "logdirs-b", 0), 0);
    assert_eq!(size_of(&all, "logdirs-b", 1), batch_bytes);
    // The offsets log's partitions are partition logs in the directory too.
    for p in 0..OFFSETS_PARTITIONS {
        size_of(&all, OFFSETS_TOPIC, p);
    }
    assert_eq!(all.len(), 5 + OFFSETS_PARTITIONS as usize, "{all:?}");

    // More writes: the size grows by exactly what was appended.
    let bigger = value_batch(50, 1000);
    assert_eq!(produce(&mut conn, "logdirs-a", 0, bigger.clone()), NONE);
    let resp = describe(&mut conn, 4, None);
    let grown = sizes(the_dir(&resp, broker.data_dir()));
    assert_eq!(
        size_of(&grown, "logdirs-a", 0),
        3 * batch_bytes + bigger.len() as i64
    );
    assert_eq!(size_of(&grown, "logdirs-a", 2), batch_bytes);

    // A topic list, v1: only what was named and exists.
    let named: &[(&str, &[i32])] = &[
        ("logdirs-a", &[0, 1, 7]),
        ("logdirs-b", &[1]),
        ("logdirs-missing", &[0]),
    ];
    let resp = describe(&mut conn, 1, Some(named));
    let dir = the_dir(&resp, broker.data_dir());
    assert_eq!(dir.error_code, NONE);
    let listed = sizes(dir);
    let keys: Vec<_> = listed.keys().cloned().collect();
    assert_eq!(
        keys,
        vec![
            ("logdirs-a".to_string(), 0),
            ("logdirs-a".to_string(), 1),
            ("logdirs-b".to_string(), 1),
        ]
    );
    assert_eq!(
        size_of(&listed, "logdirs-a", 0),
        3 * batch_bytes + bigger.len() as i64
    );

    // An empty list names nothing; only unknown topics, nothing either.
    let resp = describe(&mut conn, 4, Some(&[]));
    assert!(the_dir(&resp, broker.data_dir()).topics.is_empty());
    let resp = describe(&mut conn, 3, Some(&[("logdirs-missing", &[0, 1])]));
    assert!(the_dir(&resp, broker.data_dir()).topics.is_empty());

    // Every served version answers the same partitions.
    for v in 1..=4 {
        let resp = describe(&mut conn, v, None);
        assert_eq!(resp.error_code, NONE, "v{v}");
        let dir = the_dir(&resp, broker.data_dir());
        assert_eq!(dir.error_code, NONE, "v{v}");
        assert_eq!(sizes(dir).len(), all.len(), "v{v}");
    }
}

// Proves a disk that fills up shows in DescribeLogDirs: once a partition
// refuses an acks=all produce with KAFKA_STORAGE_ERROR, the directory
// carries that error (and still lists its partitions, with little usable
// space), and once space is freed and produce succeeds again the error is
// gone. Runs the broker on a small loop-mounted ext4 image (root and
// mkfs.ext4 needed; skipped with the reason printed otherwise).
// Proves that with per-shard listeners, where each shard is a node of its
// own, each node answers for exactly the partitions Metadata says it
// leads: asking every node (as Kafka's tools do) lists each partition
// once.
#[test]
fn per_shard_nodes_describe_their_own_partitions() {
    let broker = Broker::start(
        BrokerOptions::per_shard(2)
            .with_override("offsets.topic.num.partitions", OFFSETS_PARTITIONS),
    );
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "logdirs-nodes", 6);
    let metadata: MetadataResponse = conn.call(
        ApiKey::Metadata,
        9,
        &MetadataRequest::default().with_topics(None),
    );
    let nodes: BTreeMap<i32, usize> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.port as usize - broker.port() as usize - 1))
        .collect();
    assert_eq!(nodes.len(), 2, "one node per shard: {:?}", metadata.brokers);
    let mut leaders = BTreeMap::new();
    for t in &metadata.topics {
        let name = t.name.as_ref().expect("topic name").0.to_string();
        for p in &t.partitions {
            leaders.insert((name.clone(), p.partition_index), nodes[&p.leader_id.0]);
        }
    }

    let mut listed = BTreeMap::new();
    for shard in 0..2 {
        let mut node = Conn::open(&broker.shard_address(shard));
        let resp = describe(&mut node, 4, None);
        let dir = the_dir(&resp, broker.data_dir());
        assert_eq!(dir.error_code, NONE);
        for key in sizes(dir).into_keys() {
            if key.0 == OFFSETS_TOPIC {
                continue;
            }
            assert_eq!(
                leaders.get(&key),
                Some(&shard),
                "{key:?} listed by shard {shard}"
            );
            assert!(listed.insert(key, shard).is_none(), "listed by two nodes");
        }
    }
    let topic_leaders: BTreeMap<_, _> = leaders
        .into_iter()
        .filter(|(key, _)| key.0 != OFFSETS_TOPIC)
        .collect();
    assert_eq!(
        listed, topic_leaders,
        "every partition listed by its leader"
    );
    assert!(listed.values().any(|&s| s == 0) && listed.values().any(|&s| s == 1));
}

#[test]
fn describe_log_dirs_reports_a_full_disk() {
    let fs = match LoopFs::mount(48) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "SKIPPED describe_log_dirs_reports_a_full_disk: cannot mount a loop file system: {why}"
            );
            return;
        }
    };
    let data_dir = fs.path().join("data");
    let broker = Broker::start_with_data_dir(
        BrokerOptions::single().with_override("offsets.topic.num.partitions", 1),
        &data_dir,
    );
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "full", 1);
    create_topic(&mut conn, "idle", 1);
    let batch = value_batch(30, 1000);
    assert_eq!(produce(&mut conn, "full", 0, batch.clone()), NONE);

    let resp = describe(&mut conn, 4, None);
    let dir = the_dir(&resp, &data_dir);
    assert_eq!(dir.error_code, NONE);
    // The file system of the image, not the one the test runs on.
    assert!(dir.total_bytes <= 48 << 20, "{dir:?}");

    let ballast = fs.fill_leaving(2 << 20);
    eprintln!("free after filling: {} KiB", fs.free_bytes() >> 10);

    // Produce until the disk refuses, bounded in count and time.
    let started = Instant::now();
    let mut acked = 0;
    loop {
        assert!(
            acked < 2_000 && started.elapsed() < Duration::from_secs(60),
            "the disk never filled ({acked} batches acknowledged)"
        );
        match produce(&mut conn, "full", 0, batch.clone()) {
            NONE => acked += 1,
            KAFKA_STORAGE_ERROR => break,
            other => panic!("produce answered error {other}"),
        }
    }
    eprintln!(
        "refused with KAFKA_STORAGE_ERROR after {acked} batches ({:?})",
        started.elapsed()
    );

    let resp = describe(&mut conn, 4, None);
    assert_eq!(resp.error_code, NONE, "the request itself succeeds");
    let dir = the_dir(&resp, &data_dir);
    assert_eq!(dir.error_code, KAFKA_STORAGE_ERROR, "{dir:?}");
    let listed = sizes(dir);
    assert!(size_of(&listed, "full", 0) >= (acked + 1) * batch.len() as i64);
    assert_eq!(size_of(&listed, "idle", 0), 0);
    size_of(&listed, OFFSETS_TOPIC, 0);
    assert!(dir.usable_bytes < 2 << 20, "usable {}", dir.usable_bytes);
    eprintln!("while full: usable {} KiB", dir.usable_bytes >> 10);
    // v1 reports it too.
    let resp = describe(&mut conn, 1, Some(&[("idle", &[0])]));
    let dir = the_dir(&resp, &data_dir);
    assert_eq!(dir.error_code, KAFKA_STORAGE_ERROR);
    assert_eq!(sizes(dir).len(), 1);

    // Free the space: produce recovers by itself, then the error is gone.
    std::fs::remove_file(&ballast).expect("remove the ballast");
    let freed = Instant::now();
    loop {
        match produce(&mut conn, "full", 0, batch.clone()) {
            NONE => break,
            KAFKA_STORAGE_ERROR => {
                assert!(
                    freed.elapsed() < Duration::from_secs(10),
                    "produce did not recover within 10 s of freeing space"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("produce answered error {other}"),
        }
    }
    eprintln!("produce recovered {:?} after freeing", freed.elapsed());
    let resp = describe(&mut conn, 4, None);
    let dir = the_dir(&resp, &data_dir);
    assert_eq!(dir.error_code, NONE, "{dir:?}");
    assert!(dir.usable_bytes > 16 << 20, "usable {}", dir.usable_bytes);
    drop(conn);
    drop(broker);
}

/// What `py_log_dirs.py` printed for the one broker node: the client's
/// version and its log directories, as the client decoded them.
fn kafka_python_log_dirs(broker: &Broker, topics: &[&str]) -> (String, Vec<serde_json::Value>) {
    let c = ensure_installed();
    let mut cmd = Command::new(&c.venv_python);
    cmd.arg(c.scripts.join("py_log_dirs.py"))
        .args(["--bootstrap", &broker.bootstrap()])
        .args(["--timeout", "60"])
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for t in topics {
        cmd.args(["--topic", t]);
    }
    let run = run_with_timeout(cmd, CLIENT_TIMEOUT);
    run.assert_success();
    let mut version = String::new();
    let mut brokers = Vec::new();
    for line in run.stdout_text().lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("py_log_dirs.py printed {line:?}: {e}"));
        match v["type"].as_str() {
            Some("client") => version = v["version"].as_str().unwrap_or("?").to_string(),
            Some("broker") => brokers.push(v),
            _ => panic!("py_log_dirs.py printed {line:?}"),
        }
    }
    assert_eq!(brokers.len(), 1, "one broker node:\n{}", run.output_text());
    let dirs = brokers[0]["log_dirs"]
        .as_array()
        .unwrap_or_else(|| panic!("no log_dirs:\n{}", run.output_text()))
        .clone();
    (version, dirs)
}

/// (topic, partition) -> partition_size from the client's dicts.
fn client_sizes(dir: &serde_json::Value) -> BTreeMap<(String, i64), i64> {
    let mut out = BTreeMap::new();
    for t in dir["topics"].as_array().expect("topics") {
        let name = t["name"].as_str().expect("topic name").to_string();
        for p in t["partitions"].as_array().expect("partitions") {
            let index = p["partition_index"].as_i64().expect("partition_index");
            let size = p["partition_size"].as_i64().expect("partition_size");
            out.insert((name.clone(), index), size);
        }
    }
    out
}

// Proves a real admin client, kafka-python 3's KafkaAdminClient, describes
// the log directory through the version it negotiates from ApiVersions
// (v4: it gets total and usable bytes) and sees the sizes the raw protocol
// sees, for every topic and for a topic it names.
#[test]
fn kafka_python_describes_log_dirs() {
    let broker = Broker::start(
        BrokerOptions::single_shared(2)
            .with_override("offsets.topic.num.partitions", OFFSETS_PARTITIONS),
    );
    let mut conn = Conn::open(&broker.bootstrap());
    create_topic(&mut conn, "py-logdirs", 2);
    create_topic(&mut conn, "py-other", 1);
    let batch = value_batch(20, 200);
    assert_eq!(produce(&mut conn, "py-logdirs", 1, batch.clone()), NONE);
    assert_eq!(produce(&mut conn, "py-logdirs", 1, batch.clone()), NONE);

    let (version, dirs) = kafka_python_log_dirs(&broker, &[]);
    eprintln!("kafka-python {version}: {dirs:?}");
    assert_eq!(dirs.len(), 1, "one log directory");
    let dir = &dirs[0];
    let want = std::path::absolute(broker.data_dir()).unwrap();
    assert_eq!(dir["log_dir"].as_str(), want.to_str());
    assert_eq!(dir["error_code"].as_i64(), Some(0));
    let total = dir["total_bytes"].as_i64().expect("total_bytes");
    let usable = dir["usable_bytes"].as_i64().expect("usable_bytes");
    assert!(total >= usable && usable > 0, "v4 space: {total} {usable}");
    let sizes = client_sizes(dir);
    assert_eq!(
        sizes.get(&("py-logdirs".to_string(), 1)),
        Some(&(2 * batch.len() as i64))
    );
    assert_eq!(sizes.get(&("py-logdirs".to_string(), 0)), Some(&0));
    assert_eq!(sizes.get(&("py-other".to_string(), 0)), Some(&0));

    // One topic by name: the client lists its partitions from Metadata.
    let (_, dirs) = kafka_python_log_dirs(&broker, &["py-other"]);
    let keys: Vec<_> = client_sizes(&dirs[0]).into_keys().collect();
    assert_eq!(keys, vec![("py-other".to_string(), 0)]);
}
