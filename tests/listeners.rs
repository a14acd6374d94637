//! Several client listeners at once, as Kafka names them in `listeners`,
//! `advertised.listeners` and `listener.security.protocol.map`: every
//! shard accepts on each, and a client is told the brokers' addresses on
//! the listener it came in on (Metadata, DescribeCluster,
//! FindCoordinator), in per-shard mode each listener with its own
//! per-shard ports, and in a cluster from every broker's registration.
//! A broker without the listener is left out of that client's view, and
//! partitions it leads get Kafka's LISTENER_NOT_FOUND. The security of
//! each listener (TLS, SASL, their keys per listener) is tested with the
//! TLS tests.

mod common;

use std::time::{Duration, Instant};

use common::broker::{reserve_ports, start_fails, Broker, BrokerOptions};
use common::cluster::{Cluster, COMBINED, ELECTION_TIMEOUT};
use common::raw::{create_topic, str_bytes, topic_name, Conn};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DescribeClusterRequest,
    DescribeClusterResponse, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest,
    MetadataResponse,
};

const LISTENER_NOT_FOUND: i16 = 72;
const LEADER_NOT_AVAILABLE: i16 = 5;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// The brokers a Metadata v12 request on `addr` lists: (id, host:port).
fn metadata_brokers(addr: &str) -> Vec<(i32, String)> {
    let r: MetadataResponse = Conn::open(addr).call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(Vec::new())),
    );
    let mut out: Vec<(i32, String)> = r
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    out.sort();
    out
}

/// Each partition of `topic` as Metadata v`version` on `addr` shows it:
/// (error code, leader).
fn partitions(addr: &str, version: i16, topic: &str) -> Vec<(i16, i32)> {
    let r: MetadataResponse = Conn::open(addr).call(
        ApiKey::Metadata,
        version,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
            ]))
            .with_allow_auto_topic_creation(false),
    );
    let mut out: Vec<(i32, i16, i32)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code, p.leader_id.0))
        .collect();
    out.sort();
    out.into_iter().map(|(_, e, l)| (e, l)).collect()
}

/// FindCoordinator v4 for group `group` on `addr`: (error, node, host:port).
fn coordinator(addr: &str, group: &str) -> (i16, i32, String) {
    let r: FindCoordinatorResponse = Conn::open(addr).call(
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![str_bytes(group)]),
    );
    let c = &r.coordinators[0];
    (c.error_code, c.node_id.0, format!("{}:{}", c.host, c.port))
}

// Proves two named listeners in per-shard mode: each takes its port and
// one per shard above it, and a client of either listener (on its shared
// port or one of its shard ports) is told that listener's advertised
// addresses by Metadata, DescribeCluster and FindCoordinator; librdkafka
// bootstrapped on the second listener follows them to both shards and
// round-trips records.
#[test]
fn two_listeners_in_per_shard_mode() {
    let (p, locks) = reserve_ports(8);
    let e = p + 4;
    let dir = common::temp_dir();
    let data = dir.path().join("data");
    let options = BrokerOptions::per_shard(2)
        .with_override(
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{p},EXTERNAL://127.0.0.1:{e}"),
        )
        .with_override(
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{p},EXTERNAL://localhost:{e}"),
        )
        .with_override(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
        );
    let mut broker = Broker::start_on(options, dir, data, [127, 0, 0, 1].into(), p, locks);
    let internal = vec![
        (0, format!("127.0.0.1:{}", p + 1)),
        (1, format!("127.0.0.1:{}", p + 2)),
    ];
    let external = vec![
        (0, format!("localhost:{}", e + 1)),
        (1, format!("localhost:{}", e + 2)),
    ];
    assert_eq!(metadata_brokers(&format!("127.0.0.1:{p}")), internal);
    assert_eq!(metadata_brokers(&format!("127.0.0.1:{}", p + 2)), internal);
    for port in [e, e + 1, e + 2] {
        assert_eq!(
            metadata_brokers(&format!("127.0.0.1:{port}")),
            external,
            "Metadata on the EXTERNAL listener's port {port}"
        );
    }
    let r: DescribeClusterResponse = Conn::open(&format!("127.0.0.1:{}", e + 1)).call(
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_endpoint_type(1),
    );
    let mut described: Vec<(i32, String)> = r
        .brokers
        .iter()
        .map(|b| (b.broker_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    described.sort();
    assert_eq!(described, external);
    for group in ["g-a", "g-b", "g-c", "g-d"] {
        let (error, node, at) = coordinator(&format!("127.0.0.1:{e}"), group);
        assert_eq!(error, 0);
        assert!(external.contains(&(node, at.clone())), "{node} {at}");
        let (_, same_node, inside) = coordinator(&format!("127.0.0.1:{p}"), group);
        assert_eq!(same_node, node);
        assert!(
            internal.contains(&(node, inside.clone())),
            "{node} {inside}"
        );
    }
    create_topic(&mut Conn::open(&format!("127.0.0.1:{p}")), "outside", 2);
    common::clients::kcat_round_trip(&format!("localhost:{e}"), "outside", &[], 20);
    broker.terminate();
}

// Proves listener settings that cannot work stop the start with a message
// naming them: per-shard ports of one listener running into another's,
// and a listener's own key for a listener `listeners` does not have.
#[test]
fn listener_mistakes_stop_the_start() {
    let (p, _locks) = reserve_ports(8);
    let two_shards = [
        ("shardlog.cores", "0,0".to_string()),
        ("shardlog.listener.mode", "per-shard".to_string()),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT".to_string(),
        ),
        ("shardlog.metrics.listen", String::new()),
    ];
    // Each case: its keys beside those, and what the message must say.
    let cases: [(Overrides, &[&str]); 3] = [
        (
            vec![(
                "listeners",
                format!("PLAINTEXT://127.0.0.1:{p},EXTERNAL://127.0.0.1:{}", p + 2),
            )],
            &["both need", "EXTERNAL://127.0.0.1"],
        ),
        (
            vec![
                (
                    "listeners",
                    format!("PLAINTEXT://127.0.0.1:{p},EXTERNAL://127.0.0.1:{}", p + 4),
                ),
                ("listener.name.outside.ssl.client.auth", "required".into()),
            ],
            &["listener.name.outside", "OUTSIDE"],
        ),
        (
            vec![
                ("listeners", format!("PLAINTEXT://127.0.0.1:{p}")),
                (
                    "advertised.listeners",
                    format!("PLAINTEXT://127.0.0.1:{p},EXTERNAL://127.0.0.1:{}", p + 4),
                ),
            ],
            &["advertised.listeners listener names must be equal to or a subset of the ones defined in listeners. Found PLAINTEXT,EXTERNAL."],
        ),
    ];
    for (keys, wants) in cases {
        let mut overrides = two_shards.to_vec();
        overrides.extend(keys);
        let (code, err) = start_fails(&overrides);
        assert_ne!(code, Some(0), "{err}");
        assert!(wants.iter().all(|w| err.contains(w)), "{wants:?}: {err}");
    }
}

/// Broker keys and values for a start.
type Overrides = Vec<(&'static str, String)>;

/// Creates `topic` with one partition on node `node` (a manual
/// assignment) through `addr`.
fn create_on_node(addr: &str, topic: &str, node: i32) {
    let mut t = CreatableTopic::default();
    t.name = topic_name(topic);
    t.num_partitions = -1;
    t.replication_factor = -1;
    t.assignments = vec![CreatableReplicaAssignment::default()
        .with_partition_index(0)
        .with_broker_ids(vec![BrokerId(node)])];
    let r: CreateTopicsResponse = Conn::open(addr).call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(60_000),
    );
    assert_eq!(r.topics[0].error_code, 0, "create {topic} on node {node}");
}

// Proves listeners in a cluster: nodes 1 and 2 have a second client
// listener, EXTERNAL, and node 3 has not. Every broker's registration
// carries its listeners, so a client of EXTERNAL on node 1 or 2 is told
// nodes 1 and 2 at their EXTERNAL addresses and not node 3 (as Kafka
// leaves out a broker without the listener); partitions node 3 leads get
// LISTENER_NOT_FOUND (LEADER_NOT_AVAILABLE before Metadata v6), a group
// it coordinates COORDINATOR_NOT_AVAILABLE; clients of PLAINTEXT see all
// three. librdkafka bootstrapped on node 1's EXTERNAL listener reaches a
// partition on node 2 through node 2's EXTERNAL address.
#[test]
fn a_cluster_advertises_each_listener() {
    let (x, _locks) = reserve_ports(2);
    let cluster = Cluster::start_each(
        &[COMBINED; 3],
        &[(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
        )],
        &|n, h, port| {
            if n == 3 {
                return Vec::new();
            }
            vec![
                (
                    "listeners".to_string(),
                    format!(
                        "PLAINTEXT://{h}:{port},EXTERNAL://{h}:{x},CONTROLLER://{h}:{}",
                        port + 2
                    ),
                ),
                (
                    "advertised.listeners".to_string(),
                    format!("PLAINTEXT://{h}:{port},EXTERNAL://{h}:{x}"),
                ),
            ]
        },
    );
    // Raw Metadata until every node lists all three (librdkafka's would
    // ask for its group's coordinator, which places the offsets log over
    // the brokers registered by then).
    let plain: Vec<(i32, String)> = (1..=3).map(|n| (n, cluster.shard_address(n))).collect();
    let start = Instant::now();
    while !(1..=3).all(|n| metadata_brokers(&cluster.bootstrap(n)) == plain) {
        assert!(
            start.elapsed() < ELECTION_TIMEOUT,
            "the cluster did not form"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let external = |n: i32| format!("127.0.0.{n}:{x}");
    let want: Vec<(i32, String)> = vec![
        (1, format!("127.0.0.1:{}", x + 1)),
        (2, format!("127.0.0.2:{}", x + 1)),
    ];
    for n in [1, 2] {
        assert_eq!(metadata_brokers(&external(n)), want, "EXTERNAL on node {n}");
    }

    create_topic(&mut Conn::open(&cluster.bootstrap(1)), "spread", 3);
    let seen_plain = partitions(&cluster.bootstrap(1), 12, "spread");
    let leaders: Vec<i32> = seen_plain.iter().map(|&(_, l)| l).collect();
    assert!(
        leaders.contains(&3) && seen_plain.iter().all(|&(e, _)| e == 0),
        "{seen_plain:?}"
    );
    for (version, missing) in [(12, LISTENER_NOT_FOUND), (5, LEADER_NOT_AVAILABLE)] {
        let seen = partitions(&external(1), version, "spread");
        for (i, &(error, leader)) in seen.iter().enumerate() {
            if leaders[i] == 3 {
                assert_eq!((error, leader), (missing, -1), "v{version} {seen:?}");
            } else {
                assert_eq!((error, leader), (0, leaders[i]), "v{version} {seen:?}");
            }
        }
    }

    let mut on_three = 0;
    for g in 0..30 {
        let group = format!("group-{g}");
        let (_, node, _) = coordinator(&cluster.bootstrap(2), &group);
        let (error, external_node, at) = coordinator(&external(2), &group);
        if node == 3 {
            on_three += 1;
            assert_eq!(error, COORDINATOR_NOT_AVAILABLE, "{group}");
        } else {
            assert_eq!(error, 0, "{group}");
            assert_eq!(external_node, node);
            assert_eq!(at, format!("127.0.0.{node}:{}", x + 1), "{group}");
        }
    }
    assert!(
        on_three > 0 && on_three < 30,
        "{on_three} of 30 groups on node 3"
    );

    create_on_node(&cluster.bootstrap(1), "via-external", 2);
    common::clients::kcat_round_trip(&external(1), "via-external", &[], 20);
}
