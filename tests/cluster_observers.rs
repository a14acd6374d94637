//! Broker-only nodes (`process.roles=broker`) beside controller-only
//! voters, Kafka's usual split: three `shardlog` processes that only vote
//! (127.0.0.1-3) and two that only serve clients (127.0.0.4-5), each with
//! its own data directory. The brokers follow the quorum as observers:
//! they register, fetch the metadata log from its leader, and are fenced
//! when their fetches stop.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    leaders, replication_statuses, Cluster, BROKER, CONTROLLER, ELECTION_TIMEOUT, NONE,
};
use common::raw::{str_bytes, Conn};
use common::rdk;
use kafka_protocol::messages::ApiKey;

/// The quorum's leader as broker `asked` sees it (through DescribeQuorum).
fn quorum_leader(cluster: &Cluster, asked: i32) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(r) = cluster.describe(asked) {
            let leader = r.topics[0].partitions[0].leader_id.0;
            if (1..=3).contains(&leader) {
                return leader;
            }
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "no leader seen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until brokers 4 and 5 both see `topic` with `count` partitions
/// and the same leaders; returns them.
fn placed(cluster: &Cluster, topic: &str, count: usize) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let views: Vec<Vec<i32>> = [4, 5].iter().map(|&n| leaders(cluster, n, topic)).collect();
        if views.iter().all(|v| v.len() == count && *v == views[0]) {
            return views[0].clone();
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "views {views:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn broker_only_nodes_follow_controller_only_voters() {
    let roles = [CONTROLLER, CONTROLLER, CONTROLLER, BROKER, BROKER];
    // A snapshot after every record: the log before each is dropped at
    // once, so a broker that starts (or returns) is sent the leader's
    // image, then the records after it.
    let mut cluster = Cluster::start_roles(
        &roles,
        &[("metadata.log.max.record.bytes.between.snapshots", "1")],
    );
    // Both brokers register and list each other; the controllers are no
    // brokers.
    let listed = cluster.wait_listed(&[4, 5], &[4, 5]);
    eprintln!(
        "brokers registered and listed after {} ms",
        listed.as_millis()
    );
    cluster.wait_log(4, "broker registered with the metadata quorum");
    let leader = quorum_leader(&cluster, 4);
    // DescribeQuorum through a broker answers with the leader's view (asked
    // over its CONTROLLER listener): three voters, both brokers observers.
    let describe = cluster.describe(5).expect("broker 5 answers");
    let p = &describe.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_id.0), (NONE, leader), "{p:?}");
    let mut observers: Vec<i32> = p.observers.iter().map(|o| o.replica_id.0).collect();
    observers.sort();
    assert_eq!(observers, vec![4, 5], "{p:?}");
    let (statuses, replication) = replication_statuses(&cluster.bootstrap(4));
    for (status, count) in [("Leader", 1), ("Follower", 2), ("Observer", 2)] {
        assert_eq!(
            statuses.iter().filter(|s| **s == status).count(),
            count,
            "{replication}"
        );
    }

    // A topic created through broker 4 is spread over both brokers, and
    // broker 5 learns it from the quorum.
    let topic = "observed";
    let admin = rdk::admin(&cluster.bootstrap(4));
    rdk::create_topic(&admin, topic, 4, &[]);
    let before = placed(&cluster, topic, 4);
    let mut sorted = before.clone();
    sorted.sort();
    assert_eq!(sorted, vec![4, 4, 5, 5], "{before:?}");
    let partitions: Vec<i32> = (0..4).collect();
    let recs = rdk::records(topic, 80, &partitions, rdk::now_ms());
    let producer = rdk::producer(&cluster.bootstrap(5), &[]);
    let acked = rdk::produce_all(&producer, topic, &recs);
    let ranges = partitions
        .iter()
        .map(|&p| {
            let n = acked.iter().filter(|a| a.rec.partition == p).count() as i64;
            (p, (0, n))
        })
        .collect();
    let got = rdk::consume_ranges(&cluster.bootstrap(4), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);

    // Group and broker configs set through one broker (proposed to the
    // quorum's leader by an observer) are described by the other.
    configs_through_the_quorum(&cluster);

    // kill -9 of the quorum's leader: the brokers find the new one and
    // admin requests through them succeed again.
    cluster.node(leader).kill9();
    let start = Instant::now();
    let admin = rdk::admin(&cluster.bootstrap(5));
    rdk::create_topic(&admin, "after-failover", 2, &[]);
    eprintln!(
        "CreateTopics through a broker succeeded {} ms after kill -9 of the quorum leader {leader}",
        start.elapsed().as_millis()
    );
    assert_eq!(placed(&cluster, "after-failover", 2).len(), 2);
    assert_ne!(quorum_leader(&cluster, 4), leader);
    cluster.node(leader).restart();

    // kill -9 of a broker: fenced once its fetches stop for
    // broker.session.timeout.ms, its partitions without a leader; back
    // with its data after a restart.
    cluster.node(5).kill9();
    let fenced = cluster.wait_listed(&[4], &[4]);
    eprintln!("broker 5 unlisted {} ms after kill -9", fenced.as_millis());
    let without = leaders(&cluster, 4, topic);
    for (i, &l) in before.iter().enumerate() {
        assert_eq!(without[i], if l == 5 { -1 } else { l }, "{without:?}");
    }
    cluster.node(5).restart();
    cluster.wait_listed(&[4, 5], &[4, 5]);
    assert!(cluster
        .node(5)
        .log()
        .contains("metadata image taken from the leader's snapshot"));
    let after = placed(&cluster, topic, 4);
    assert_eq!(
        after,
        before,
        "leaders after broker 5 returned; broker 5's log:\n{}",
        cluster.node(5).log_tail()
    );
    let got = rdk::consume_ranges(&cluster.bootstrap(5), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);
}

fn configs_through_the_quorum(cluster: &Cluster) {
    const GROUP: i8 = 32;
    const BROKER: i8 = 4;
    let config = |resource_type, name: &str, key: &str, value: &str| Config {
        resource_type,
        name: name.to_string(),
        key: key.to_string(),
        value: value.to_string(),
    };
    let group = config(
        GROUP,
        "observed-group",
        "consumer.heartbeat.interval.ms",
        "7000",
    );
    set_config(cluster, 4, &group);
    assert_eq!(
        described_config(cluster, 5, &group, "7000"),
        8,
        "DYNAMIC_GROUP_CONFIG"
    );
    // A cluster-wide broker config (resource "") set through broker 4.
    let cluster_wide = config(BROKER, "", "log.retention.ms", "3600000");
    set_config(cluster, 4, &cluster_wide);
    let on_5 = config(BROKER, "5", "log.retention.ms", "");
    assert_eq!(
        described_config(cluster, 5, &on_5, "3600000"),
        3,
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    );
    // A per-broker config of broker 5, set there: broker 4 keeps Kafka's
    // default.
    let own = config(BROKER, "5", "log.cleaner.threads", "3");
    set_config(cluster, 5, &own);
    assert_eq!(
        described_config(cluster, 5, &own, "3"),
        2,
        "DYNAMIC_BROKER_CONFIG"
    );
    let on_4 = config(BROKER, "4", "log.cleaner.threads", "");
    assert_eq!(
        described_config(cluster, 4, &on_4, "1"),
        5,
        "DEFAULT_CONFIG"
    );
}

struct Config {
    resource_type: i8,
    name: String,
    key: String,
    value: String,
}

/// IncrementalAlterConfigs SET of one config through broker `via`.
fn set_config(cluster: &Cluster, via: i32, c: &Config) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    let mut conn = Conn::open(&cluster.bootstrap(via));
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(c.resource_type)
            .with_resource_name(str_bytes(&c.name))
            .with_configs(vec![AlterableConfig::default()
                .with_name(str_bytes(&c.key))
                .with_config_operation(0)
                .with_value(Some(str_bytes(&c.value)))]),
    ]);
    let r: IncrementalAlterConfigsResponse =
        conn.call(ApiKey::IncrementalAlterConfigs, 1, &request);
    assert_eq!(r.responses[0].error_code, NONE, "{r:?}");
}

/// Waits until broker `via` describes the config with value `want`;
/// returns its source.
fn described_config(cluster: &Cluster, via: i32, c: &Config, want: &str) -> i8 {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
    let mut conn = Conn::open(&cluster.bootstrap(via));
    let describe =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(c.resource_type)
            .with_resource_name(str_bytes(&c.name))
            .with_configuration_keys(Some(vec![str_bytes(&c.key)]))]);
    let start = Instant::now();
    loop {
        let r: DescribeConfigsResponse = conn.call(ApiKey::DescribeConfigs, 4, &describe);
        let entry = &r.results[0].configs[0];
        if entry.value.as_ref().map(|v| v.to_string()).as_deref() == Some(want) {
            return entry.config_source;
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "{r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
