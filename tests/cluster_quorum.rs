//! The metadata quorum across real processes: three combined nodes
//! (`process.roles=broker,controller`), each its own `shardlog` with its
//! own data directory, on 127.0.0.1, 127.0.0.2 and 127.0.0.3, configured
//! with Kafka's KRaft keys. DescribeQuorum, asked of every node, shows one
//! leader that all agree on; kill -9 and SIGSTOP of the leader elect
//! another; a killed node rejoins and catches up; a whole-cluster kill -9
//! keeps the log (epochs and high watermark only grow). Brokers register
//! and are fenced; topics made through any node are spread over the
//! brokers and served by their leaders; a consumer group spans the cluster.
//! Bad cluster configuration stops startup with a message naming the key.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::broker::{reserve_ports, start_fails};
use common::cluster::{leaders, Cluster, ELECTION_TIMEOUT, NOT_LEADER_OR_FOLLOWER};
use common::raw::{str_bytes, Conn};
use common::rdk;
use kafka_protocol::messages::ApiKey;
use rdkafka::consumer::Consumer;

#[test]
fn three_controllers_elect_one_leader_that_all_follow() {
    let cluster = Cluster::start();
    let agreed = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    // A new leader's first entry commits in its epoch.
    assert!(agreed.high_watermark >= 1, "{agreed:?}");
    let r = cluster.describe(agreed.leader).unwrap();
    let p = &r.topics[0].partitions[0];
    let mut ids: Vec<i32> = p.current_voters.iter().map(|v| v.replica_id.0).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    for v in &p.current_voters {
        if v.replica_id.0 == agreed.leader {
            assert_eq!(v.last_fetch_timestamp, -1, "Kafka shows -1 for the leader");
        } else {
            assert!(
                v.last_fetch_timestamp > 0,
                "a follower was heard from: {v:?}"
            );
        }
    }
    // Once the leader's broker is registered, followers forward the
    // request to it (as Kafka's brokers forward it to the active
    // controller) and relay its answer.
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    for n in (1..=3).filter(|&n| n != agreed.leader) {
        let r = cluster.describe(n).unwrap();
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            p.error_code, 0,
            "node {n} relays the leader's answer: {r:?}"
        );
        assert_eq!(p.leader_id.0, agreed.leader);
        assert!(
            p.current_voters.iter().all(|v| v.log_end_offset >= 0),
            "{r:?}"
        );
    }
}

#[test]
fn kill9_of_the_leader_elects_another_and_the_node_rejoins() {
    let mut cluster = Cluster::start();
    let first = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    let killed = first.leader;
    cluster.node(killed).kill9();
    let killed_at = Instant::now();
    let rest = cluster.live();
    let second = cluster.agreed_leader(&rest, first.epoch, &rest);
    eprintln!(
        "leader {killed} killed; node {} leads epoch {} after {} ms",
        second.leader,
        second.epoch,
        killed_at.elapsed().as_millis()
    );
    assert_ne!(second.leader, killed);
    assert!(
        second.high_watermark > first.high_watermark,
        "{first:?} {second:?}"
    );
    cluster.node(killed).restart();
    let third = cluster.agreed_leader(&[1, 2, 3], first.epoch, &[1, 2, 3]);
    assert!(third.epoch >= second.epoch);
    assert!(third.high_watermark >= second.high_watermark);
}

#[test]
fn sigstop_of_the_leader_elects_another_and_it_steps_down_when_resumed() {
    let mut cluster = Cluster::start();
    let first = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    let stopped = first.leader;
    let pid = cluster.node(stopped).pid().expect("running") as libc::pid_t;
    signal(pid, libc::SIGSTOP);
    let rest: Vec<i32> = (1..=3).filter(|&n| n != stopped).collect();
    let second = cluster.agreed_leader(&rest, first.epoch, &rest);
    signal(pid, libc::SIGCONT);
    // The resumed node learns of the newer epoch and follows.
    let third = cluster.agreed_leader(&[1, 2, 3], first.epoch, &[1, 2, 3]);
    assert!(third.epoch >= second.epoch, "{second:?} {third:?}");
}

#[test]
fn whole_cluster_kill9_and_restart_keeps_the_metadata_log() {
    let mut cluster = Cluster::start();
    let before = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    for n in 1..=3 {
        cluster.node(n).kill9();
    }
    for n in 1..=3 {
        cluster.node(n).restart();
        let log = cluster.node(n).log();
        assert!(
            log.contains("metadata log replayed"),
            "node {n} replays its metadata log"
        );
    }
    let after = cluster.agreed_leader(&[1, 2, 3], before.epoch, &[1, 2, 3]);
    // Terms survive (a voter never votes twice in one), and every entry
    // committed before survives: the new leader's own entry comes after.
    assert!(after.epoch > before.epoch, "{before:?} {after:?}");
    assert!(
        after.high_watermark > before.high_watermark,
        "{before:?} {after:?}"
    );
}

#[test]
fn brokers_register_and_a_dead_broker_is_fenced_until_it_returns() {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    // Every node's Metadata (librdkafka) lists all three brokers.
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    // A killed broker is fenced after broker.session.timeout.ms (2 s here)
    // and leaves every other node's Metadata.
    let victim = 3;
    cluster.node(victim).kill9();
    let fenced_after = cluster.wait_listed(&[1, 2], &[1, 2]);
    eprintln!(
        "broker {victim} fenced and unlisted {} ms after kill -9",
        fenced_after.as_millis()
    );
    let leader = cluster.agreed_leader(&[1, 2], 0, &[1, 2]).leader;
    cluster.wait_log(leader, "fencing a broker");
    // Back with a new incarnation: registered, unfenced, listed again.
    cluster.node(victim).restart();
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    // Its own registration task notices within its 500 ms poll.
    let start = Instant::now();
    while !cluster
        .node(victim)
        .log()
        .contains("broker registered with the metadata quorum")
    {
        assert!(
            start.elapsed() < ELECTION_TIMEOUT,
            "the node logs its registration"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn snapshots_bound_the_log_and_bring_a_returning_node_up_to_date() {
    // A snapshot after every record: the log before each is dropped at
    // once, so a node that was away must be sent a snapshot.
    let mut cluster =
        Cluster::start_with(&[("metadata.log.max.record.bytes.between.snapshots", "1")]);
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let leader = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]).leader;
    let victim = if leader == 3 { 2 } else { 3 };
    cluster.node(victim).kill9();
    let rest: Vec<i32> = (1..=3).filter(|&n| n != victim).collect();
    // The fence is a new record, snapshotted past the victim's log end.
    cluster.wait_listed(&rest, &rest);
    let leader = cluster.agreed_leader(&rest, 0, &rest).leader;
    assert!(cluster
        .node(leader)
        .log()
        .contains("metadata snapshot taken"));
    cluster.node(victim).restart();
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    assert!(
        cluster
            .node(victim)
            .log()
            .contains("installed a metadata snapshot from the leader"),
        "the returning node was sent a snapshot"
    );
    // The whole cluster restarts from snapshots plus what follows them.
    for n in 1..=3 {
        cluster.node(n).kill9();
    }
    for n in 1..=3 {
        cluster.node(n).restart();
    }
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    for n in 1..=3 {
        let log = cluster.node(n).log();
        let restart = log.rsplit("=== start #").next().unwrap();
        assert!(
            restart.contains("metadata log replayed") && !restart.contains("snapshot_index=0 "),
            "node {n} started from its snapshot:\n{restart}"
        );
    }
}

/// Each partition's leader as node `asked`'s Metadata (librdkafka) names
/// it (-1: none), in partition order.
#[test]
fn topics_created_through_any_node_are_spread_and_served_by_their_leaders() {
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    // Created through node 2, whichever node leads the quorum.
    let topic = "spread";
    let admin = rdk::admin(&cluster.bootstrap(2));
    rdk::create_topic(&admin, topic, 6, &[]);
    // Every node knows it at once (the change is committed and adopted
    // before CreateTopics is answered on node 2; others follow within the
    // commit's propagation); each broker leads two of the six.
    let start = Instant::now();
    let placed = loop {
        let views: Vec<Vec<i32>> = (1..=3).map(|n| leaders(&cluster, n, topic)).collect();
        if views.iter().all(|v| v.len() == 6 && *v == views[0]) {
            break views[0].clone();
        }
        assert!(
            start.elapsed() < ELECTION_TIMEOUT,
            "placement views {views:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for node in 1..=3 {
        assert_eq!(
            placed.iter().filter(|&&l| l == node).count(),
            2,
            "{placed:?}"
        );
    }
    // A producer bootstrapped at node 3 and a consumer at node 1 reach
    // every leader.
    let partitions: Vec<i32> = (0..6).collect();
    let recs = rdk::records("spread", 120, &partitions, rdk::now_ms());
    let producer = rdk::producer(&cluster.bootstrap(3), &[]);
    let acked = rdk::produce_all(&producer, topic, &recs);
    let ranges = partitions
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
    let got = rdk::consume_ranges(&cluster.bootstrap(1), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);
    // A partition asked of a broker that does not lead it:
    // NOT_LEADER_OR_FOLLOWER, so clients re-route.
    let p = placed.iter().position(|&l| l != 2).unwrap() as i32;
    let mut conn = Conn::open(&cluster.shard_address(2));
    let request = common::raw::produce_request(topic, p, common::raw::value_batch(1, 10), 1);
    let response: kafka_protocol::messages::ProduceResponse =
        conn.call(ApiKey::Produce, 9, &request);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        NOT_LEADER_OR_FOLLOWER
    );
    // A broker that dies leads nothing once fenced: its partitions have no
    // leader (LEADER_NOT_AVAILABLE) until it returns.
    cluster.node(3).kill9();
    cluster.wait_listed(&[1, 2], &[1, 2]);
    let without = leaders(&cluster, 1, topic);
    for (i, &l) in placed.iter().enumerate() {
        assert_eq!(without[i], if l == 3 { -1 } else { l }, "{without:?}");
    }
    cluster.node(3).restart();
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    assert_eq!(leaders(&cluster, 1, topic), placed);
    // Its data survived: everything acknowledged is still there.
    let got = rdk::consume_ranges(&cluster.bootstrap(2), topic, &ranges);
    rdk::assert_acked_present(topic, &acked, &got);
    // Deleted through node 1: gone everywhere.
    let admin = rdk::admin(&cluster.bootstrap(1));
    let deleted = rdk::block(admin.delete_topics(&[topic], &rdk::admin_options())).unwrap();
    assert_eq!(deleted, vec![Ok(topic.to_string())]);
    let start = Instant::now();
    while (1..=3).any(|n| {
        let c = rdk::consumer(&cluster.bootstrap(n));
        let md = c.fetch_metadata(None, rdk::TIMEOUT).expect("metadata");
        md.topics().iter().any(|t| t.name() == topic)
    }) {
        assert!(start.elapsed() < ELECTION_TIMEOUT, "the topic stays listed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn group_member(bootstrap: &str, group: &str, topic: &str) -> rdkafka::consumer::BaseConsumer {
    let mut c = rdk::base_config(bootstrap);
    c.set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100");
    let c: rdkafka::consumer::BaseConsumer = c.create().expect("group consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

/// FindCoordinator for `group` asked of node `asked`: (error, node id).
fn find_coordinator(cluster: &Cluster, asked: i32, group: &str) -> (i16, i32) {
    let mut conn = Conn::open(&cluster.bootstrap(asked));
    let request =
        kafka_protocol::messages::FindCoordinatorRequest::default().with_key(str_bytes(group));
    let r: kafka_protocol::messages::FindCoordinatorResponse =
        conn.call(ApiKey::FindCoordinator, 2, &request);
    (r.error_code, r.node_id.0)
}

#[test]
fn a_consumer_group_spans_the_cluster_with_one_coordinator() {
    use rdkafka::consumer::CommitMode;
    use rdkafka::Message;
    let cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let topic = "grouped";
    let admin = rdk::admin(&cluster.bootstrap(1));
    rdk::create_topic(&admin, topic, 6, &[]);
    let partitions: Vec<i32> = (0..6).collect();
    let recs = rdk::records("grouped", 60, &partitions, rdk::now_ms());
    let producer = rdk::producer(&cluster.bootstrap(2), &[]);
    let acked = rdk::produce_all(&producer, topic, &recs);
    // Every node names the same coordinator (the first FindCoordinator
    // places the offsets log over the brokers).
    let group = "spanning";
    let first = find_coordinator(&cluster, 3, group);
    assert_eq!(first.0, 0, "{first:?}");
    for n in 1..=3 {
        assert_eq!(find_coordinator(&cluster, n, group), first);
    }
    // Two members bootstrapped at different nodes share the partitions and
    // read every record between them (a record may be read twice when
    // its partition moves in a rebalance before any commit).
    let members = [
        group_member(&cluster.bootstrap(1), group, topic),
        group_member(&cluster.bootstrap(3), group, topic),
    ];
    let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    let start = Instant::now();
    let assigned = |members: &[rdkafka::consumer::BaseConsumer]| -> Vec<usize> {
        members
            .iter()
            .map(|m| m.assignment().expect("assignment").count())
            .collect()
    };
    while seen.len() < acked.len() || assigned(&members).contains(&0) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "read {} of {}; assignments {:?}",
            seen.len(),
            acked.len(),
            assigned(&members)
        );
        for m in &members {
            if let Some(Ok(msg)) = m.poll(Duration::from_millis(50)) {
                *seen.entry((msg.partition(), msg.offset())).or_default() += 1;
            }
        }
    }
    for a in &acked {
        assert!(
            seen.contains_key(&(a.rec.partition, a.offset)),
            "{a:?} was read"
        );
    }
    assert_eq!(assigned(&members).iter().sum::<usize>(), 6);
    for m in &members {
        m.commit_consumer_state(CommitMode::Sync).expect("commit");
    }
    drop(members);
    // The commits are at the coordinator: a new member at node 2 resumes
    // at the end.
    let late = rdk::base_config(&cluster.bootstrap(2))
        .set("group.id", group)
        .create::<rdkafka::consumer::BaseConsumer>()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition(topic, p);
    }
    let committed = late
        .committed_offsets(tpl, rdk::TIMEOUT)
        .expect("committed");
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => o,
            other => panic!("partition {} not committed: {other:?}", e.partition()),
        })
        .sum();
    assert_eq!(total, acked.len() as i64);
    // Group requests sent to a node that does not coordinate the group get
    // NOT_COORDINATOR.
    let other = (1..=3).find(|&n| n != first.1).unwrap();
    let mut conn = Conn::open(&cluster.shard_address(other));
    let request = kafka_protocol::messages::OffsetFetchRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(str_bytes(group)))
        .with_topics(None);
    let r: kafka_protocol::messages::OffsetFetchResponse =
        conn.call(ApiKey::OffsetFetch, 5, &request);
    assert_eq!(r.error_code, 16, "NOT_COORDINATOR: {r:?}");
}

#[test]
fn sigstop_of_a_follower_fences_its_broker_until_it_resumes() {
    let mut cluster = Cluster::start();
    let leader = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]).leader;
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let admin = rdk::admin(&cluster.bootstrap(leader));
    rdk::create_topic(&admin, "paused", 3, &[]);
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let rest: Vec<i32> = (1..=3).filter(|&n| n != follower).collect();
    let pid = cluster.node(follower).pid().expect("running") as libc::pid_t;
    signal(pid, libc::SIGSTOP);
    // Fenced after broker.session.timeout.ms: unlisted, and the partition
    // it leads has no leader; the others are served as before.
    cluster.wait_listed(&rest, &rest);
    let placed = leaders(&cluster, leader, "paused");
    assert!(placed.contains(&-1), "{placed:?}");
    assert_eq!(placed.iter().filter(|&&l| l == -1).count(), 1, "{placed:?}");
    signal(pid, libc::SIGCONT);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let mut back = leaders(&cluster, leader, "paused");
    back.sort();
    assert_eq!(back, vec![1, 2, 3]);
}

#[allow(unsafe_code)]
fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill(2) on a child of this test that has not been reaped.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

fn combined(node: i32, voters: &str, listeners: &str) -> Vec<(&'static str, String)> {
    vec![
        ("process.roles", "broker,controller".to_string()),
        ("node.id", node.to_string()),
        ("controller.quorum.voters", voters.to_string()),
        ("listeners", listeners.to_string()),
        ("controller.listener.names", "CONTROLLER".to_string()),
    ]
}

#[test]
fn bad_cluster_configuration_stops_startup_naming_the_key() {
    let (port, _locks) = reserve_ports(8);
    let listeners = format!(
        "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}",
        port + 4
    );
    let voters = format!("1@127.0.0.1:{},2@127.0.0.2:{}", port + 4, port + 4);
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            combined(3, &voters, &listeners),
            "the node id 3 must be included in the set of voters controller.quorum.voters",
        ),
        (
            combined(1, &format!("1@127.0.0.1:{},1@127.0.0.2:1", port + 4), &listeners),
            "controller.quorum.voters names voter id 1 twice",
        ),
        (
            combined(1, &voters, &format!("PLAINTEXT://127.0.0.1:{port}")),
            "controller.listener.names must contain at least one value appearing in the 'listeners' configuration",
        ),
        (
            // Per-shard mode puts shard 0 on the client port + 1.
            combined(
                1,
                &format!("1@127.0.0.1:{},2@127.0.0.2:1", port + 1),
                &format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}", port + 1),
            ),
            "listeners: the controller listener",
        ),
        (
            // Two shards in per-shard mode are nodes 1 and 2; 2 is a voter.
            {
                let mut c = combined(1, &voters, &listeners);
                c.push(("shardlog.cores", "0,0".to_string()));
                c
            },
            "controller.quorum.voters: voter id 2 falls among this node's ids 1..=2",
        ),
        (
            {
                let mut c = combined(1, &voters, &listeners);
                c.retain(|(k, _)| *k != "node.id");
                c
            },
            "Missing configuration `node.id`",
        ),
        (
            vec![("controller.quorum.voters", voters.clone())],
            "controller.quorum.voters is set but process.roles is not",
        ),
    ];
    for (overrides, want) in cases {
        let (code, stderr) = start_fails(&overrides);
        assert!(
            matches!(code, Some(1) | Some(2)),
            "{overrides:?}: exit {code:?}, stderr {stderr}"
        );
        assert!(
            stderr.contains(want),
            "{overrides:?}: wanted {want:?} in stderr:\n{stderr}"
        );
    }
}

#[test]
fn kafka_python_round_trips_through_a_cluster() {
    use common::clients::{mixed_records, ClientRun};
    let mut cluster = Cluster::start();
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    // kafka-python bootstrapped at node 2 creates the topic (through the
    // quorum), produces to its three partitions (one per broker) and reads
    // each back, everything compared byte for byte.
    let topic = "py-cluster";
    ClientRun::python("kafka-python").round_trip(cluster.node(2), topic, &mixed_records(3, 150));
    let mut placed = leaders(&cluster, 1, topic);
    placed.sort();
    assert_eq!(placed, vec![1, 2, 3], "one partition per broker");
}

#[test]
fn kafkas_metadata_quorum_tool_describes_the_quorum() {
    let cluster = Cluster::start();
    let agreed = cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    // Through a follower: the admin client sends DescribeQuorum to any
    // broker, which forwards it to the leader.
    let follower = (1..=3).find(|&n| n != agreed.leader).unwrap();
    let bootstrap = cluster.bootstrap(follower);
    let status = common::kafka::tool_ok(
        "kafka-metadata-quorum",
        &["--bootstrap-server", &bootstrap, "describe", "--status"],
    );
    let field = |name: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in:\n{status}"))
    };
    assert_eq!(field("LeaderId:"), agreed.leader.to_string(), "{status}");
    assert!(field("LeaderEpoch:").parse::<i32>().unwrap() >= agreed.epoch);
    assert!(field("HighWatermark:").parse::<i64>().unwrap() >= agreed.high_watermark);
    let voters = field("CurrentVoters:");
    for id in 1..=3 {
        assert!(voters.contains(&format!("\"id\": {id}")), "{voters}");
    }
    let (statuses, replication) = common::cluster::replication_statuses(&bootstrap);
    assert_eq!(
        statuses.iter().filter(|s| **s == "Leader").count(),
        1,
        "{replication}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == "Follower").count(),
        2,
        "{replication}"
    );
    // kafka-topics creates through one node and describes through another:
    // one partition led by each broker.
    common::kafka::tool_ok(
        "kafka-topics",
        &[
            "--bootstrap-server",
            &bootstrap,
            "--create",
            "--topic",
            "via-cli",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
    );
    let other = (1..=3).find(|&n| n != follower).unwrap();
    let start = Instant::now();
    loop {
        let described = common::kafka::tool_ok(
            "kafka-topics",
            &[
                "--bootstrap-server",
                &cluster.bootstrap(other),
                "--describe",
                "--topic",
                "via-cli",
            ],
        );
        let mut leaders: Vec<&str> = described
            .split_whitespace()
            .zip(described.split_whitespace().skip(1))
            .filter(|(k, _)| *k == "Leader:")
            .map(|(_, v)| v)
            .collect();
        leaders.sort();
        if leaders == ["1", "2", "3"] {
            break;
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "{described}");
    }
}

#[test]
fn a_controller_only_node_votes_and_serves_no_clients() {
    let mut cluster = Cluster::start_with_controller_only(3);
    // Nodes 1 and 2 agree on a leader, which may be node 3.
    let start = Instant::now();
    loop {
        let views: Vec<(i32, i32)> = [1, 2]
            .iter()
            .filter_map(|&n| cluster.describe(n))
            .map(|r| {
                let p = &r.topics[0].partitions[0];
                (p.leader_id.0, p.leader_epoch)
            })
            .collect();
        if views.len() == 2 && views[0] == views[1] && views[0].0 >= 1 {
            break;
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "{views:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It registers no broker and opens no client port.
    cluster.wait_listed(&[1, 2], &[1, 2]);
    assert!(std::net::TcpStream::connect(cluster.bootstrap(3)).is_err());
    assert!(cluster
        .node(3)
        .log()
        .contains("metadata quorum: new leader"));
    // Topics go to the brokers only, committed with its vote.
    let admin = rdk::admin(&cluster.bootstrap(1));
    rdk::create_topic(&admin, "brokers-only", 4, &[]);
    let start = Instant::now();
    let placed = loop {
        let placed = leaders(&cluster, 2, "brokers-only");
        if placed.len() == 4 {
            break placed;
        }
        assert!(start.elapsed() < ELECTION_TIMEOUT, "{placed:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut sorted = placed.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 1, 2, 2], "{placed:?}");
}
