//! The group coordinator at the protocol level, with hand-made requests:
//! Kafka's error codes for bad generations, unknown members, fenced static
//! instances, bad session timeouts and protocols, group deletion and
//! offset deletion; a silent member removed after its session timeout;
//! the limits (members per group, groups per broker) holding while a
//! client joins in a loop without disturbing another group; and the
//! offsets log compacted, then replayed after kill -9 by a broker with a
//! different number of shards.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::broker::{Broker, BrokerOptions};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use shardlog::admin::client::Connection;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_MAX_SIZE_REACHED: i16 = 81;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

const SESSION_MS: i32 = 10_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn conn(broker: &Broker) -> Connection {
    Connection::open(&broker.bootstrap(), Duration::from_secs(30), "groups-test").expect("connect")
}

/// Consumer-protocol subscription metadata (version 0) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
    }
    b.put_i32(-1);
    b.freeze()
}

fn create_topics(broker: &Broker, names: &[&str]) {
    let admin = common::rdk::admin(&broker.bootstrap());
    for n in names {
        common::rdk::create_topic(&admin, n, 2, &[]);
    }
}

struct Join<'a> {
    group: &'a str,
    member: &'a str,
    instance: Option<&'a str>,
    session_ms: i32,
    rebalance_ms: i32,
    protocol_type: &'a str,
    topics: &'a [&'a str],
}

impl<'a> Join<'a> {
    fn new(group: &'a str, member: &'a str) -> Self {
        Join {
            group,
            member,
            instance: None,
            session_ms: SESSION_MS,
            rebalance_ms: 30_000,
            protocol_type: "consumer",
            topics: &["t1"],
        }
    }
}

fn join(c: &mut Connection, j: &Join) -> JoinGroupResponse {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(j.group)))
        .with_session_timeout_ms(j.session_ms)
        .with_rebalance_timeout_ms(j.rebalance_ms)
        .with_member_id(s(j.member))
        .with_group_instance_id(j.instance.map(s))
        .with_protocol_type(s(j.protocol_type))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(j.topics))]);
    c.call(ApiKey::JoinGroup, 5, &req).expect("JoinGroup")
}

/// Joins as a new dynamic member: MEMBER_ID_REQUIRED first, then the join
/// with the id handed out.
fn join_new(c: &mut Connection, group: &str) -> JoinGroupResponse {
    let first = join(c, &Join::new(group, ""));
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "first join");
    assert!(!first.member_id.is_empty(), "an id is handed out");
    assert_eq!(first.generation_id, -1);
    let r = join(c, &Join::new(group, &first.member_id));
    assert_eq!(r.error_code, NONE, "join with the id handed out");
    r
}

fn sync(
    c: &mut Connection,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
    assignments: &[(&str, &[u8])],
) -> SyncGroupResponse {
    let req = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        );
    c.call(ApiKey::SyncGroup, 3, &req).expect("SyncGroup")
}

fn heartbeat(
    c: &mut Connection,
    group: &str,
    generation: i32,
    member: &str,
    instance: Option<&str>,
) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s));
    let r: HeartbeatResponse = c.call(ApiKey::Heartbeat, 3, &req).expect("Heartbeat");
    r.error_code
}

/// OffsetCommit v7 of (topic, partition, offset, metadata); the error of
/// each partition in order.
fn commit(
    c: &mut Connection,
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(&str, i32, i64, &str)],
) -> Vec<i16> {
    let topics = offsets
        .iter()
        .map(|(t, p, o, m)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*o)
                    .with_committed_metadata(Some(s(m)))])
        })
        .collect();
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics);
    let r: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 7, &req).expect("OffsetCommit");
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// OffsetFetch v7 of one partition: (offset, metadata).
fn fetch(c: &mut Connection, group: &str, topic: &str, partition: i32) -> (i64, String) {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![partition])]));
    let r: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &req).expect("OffsetFetch");
    assert_eq!(r.error_code, NONE, "OffsetFetch error");
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, NONE);
    (
        p.committed_offset,
        p.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

fn describe(c: &mut Connection, group: &str) -> DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    let mut r: DescribeGroupsResponse = c
        .call(ApiKey::DescribeGroups, 5, &req)
        .expect("DescribeGroups");
    r.groups.remove(0)
}

fn delete_groups(c: &mut Connection, groups: &[&str]) -> Vec<i16> {
    let req = DeleteGroupsRequest::default()
        .with_groups_names(groups.iter().map(|g| GroupId(s(g))).collect());
    let r: DeleteGroupsResponse = c.call(ApiKey::DeleteGroups, 2, &req).expect("DeleteGroups");
    r.results.iter().map(|g| g.error_code).collect()
}

fn leave(c: &mut Connection, group: &str, members: &[(&str, Option<&str>)]) -> (i16, Vec<i16>) {
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_members(
            members
                .iter()
                .map(|(m, i)| {
                    MemberIdentity::default()
                        .with_member_id(s(m))
                        .with_group_instance_id(i.map(s))
                })
                .collect(),
        );
    let r: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, 3, &req).expect("LeaveGroup");
    (
        r.error_code,
        r.members.iter().map(|m| m.error_code).collect(),
    )
}

fn start(options: BrokerOptions) -> Broker {
    Broker::start(
        options
            .with_override("auto.create.topics.enable", "false")
            .with_override("group.initial.rebalance.delay.ms", 0),
    )
}

// Proves Kafka's error codes for each misuse of the group protocol and of
// commits, the rebalance a second member starts, and deletion rules.
#[test]
fn error_codes_follow_kafka() {
    let broker = start(BrokerOptions::single_shared(2));
    create_topics(&broker, &["t1", "other"]);
    let mut c = conn(&broker);
    let g = "g-errors";

    let bad = join(
        &mut c,
        &Join {
            session_ms: 1000,
            ..Join::new(g, "")
        },
    );
    assert_eq!(bad.error_code, INVALID_SESSION_TIMEOUT);
    let a = join_new(&mut c, g);
    let a_id = a.member_id.to_string();
    assert_eq!(a.generation_id, 1);
    assert_eq!(a.leader, a.member_id, "the only member leads");
    assert_eq!(a.members.len(), 1);
    assert_eq!(a.protocol_name.as_deref(), Some("range"));

    assert_eq!(
        sync(&mut c, g, 2, &a_id, None, &[]).error_code,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        sync(&mut c, g, 1, "nobody", None, &[]).error_code,
        UNKNOWN_MEMBER_ID
    );
    let synced = sync(&mut c, g, 1, &a_id, None, &[(&a_id, b"assignment-a")]);
    assert_eq!(synced.error_code, NONE);
    assert_eq!(&synced.assignment[..], b"assignment-a");

    assert_eq!(heartbeat(&mut c, g, 1, &a_id, None), NONE);
    assert_eq!(heartbeat(&mut c, g, 0, &a_id, None), ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut c, g, 1, "nobody", None), UNKNOWN_MEMBER_ID);
    assert_eq!(
        heartbeat(&mut c, "no-such-group", 1, &a_id, None),
        UNKNOWN_MEMBER_ID
    );

    assert_eq!(
        commit(&mut c, g, 1, &a_id, &[("t1", 0, 42, "m42")]),
        vec![NONE]
    );
    assert_eq!(
        commit(&mut c, g, 1, &a_id, &[("other", 1, 7, "o7")]),
        vec![NONE]
    );
    assert_eq!(
        commit(&mut c, g, 5, &a_id, &[("t1", 0, 1, "")]),
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit(&mut c, g, 1, "nobody", &[("t1", 0, 1, "")]),
        vec![UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        commit(&mut c, g, -1, "", &[("t1", 0, 1, "")]),
        vec![UNKNOWN_MEMBER_ID],
        "a group-less commit to a group with members"
    );
    let long = "x".repeat(5000);
    assert_eq!(
        commit(
            &mut c,
            g,
            1,
            &a_id,
            &[("t1", 1, 1, &long), ("nope", 0, 1, "")]
        ),
        vec![OFFSET_METADATA_TOO_LARGE, UNKNOWN_TOPIC_OR_PARTITION]
    );
    assert_eq!(fetch(&mut c, g, "t1", 0), (42, "m42".to_string()));
    assert_eq!(fetch(&mut c, g, "t1", 1), (-1, String::new()));
    assert_eq!(fetch(&mut c, "no-such-group", "t1", 0), (-1, String::new()));

    let other_type = join(
        &mut c,
        &Join {
            protocol_type: "connect",
            ..Join::new(g, "")
        },
    );
    assert_eq!(other_type.error_code, INCONSISTENT_GROUP_PROTOCOL);

    assert_eq!(
        delete_groups(&mut c, &[g, "no-such-group"]),
        vec![NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND]
    );

    // Offsets of a topic the group subscribes to stay; others can go.
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(g)))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t1")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("other")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(1)
                ]),
        ]);
    let r: OffsetDeleteResponse = c.call(ApiKey::OffsetDelete, 0, &req).expect("OffsetDelete");
    assert_eq!(r.error_code, NONE);
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        GROUP_SUBSCRIBED_TO_TOPIC
    );
    assert_eq!(r.topics[1].partitions[0].error_code, NONE);
    assert_eq!(fetch(&mut c, g, "other", 1), (-1, String::new()));
    let r: OffsetDeleteResponse = c
        .call(
            ApiKey::OffsetDelete,
            0,
            &OffsetDeleteRequest::default().with_group_id(GroupId(s("no-such-group"))),
        )
        .expect("OffsetDelete");
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);

    // A second member starts a rebalance: the first hears of it by
    // heartbeat, rejoins, and both get generation 2.
    let broker_addr = broker.bootstrap();
    let second = std::thread::spawn(move || {
        let mut c2 =
            Connection::open(&broker_addr, Duration::from_secs(30), "second").expect("connect");
        join_new(&mut c2, "g-errors")
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let e = heartbeat(&mut c, g, 1, &a_id, None);
        if e == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(e, NONE);
        assert!(Instant::now() < deadline, "no rebalance announced");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        commit(&mut c, g, 1, &a_id, &[("t1", 0, 43, "during")]),
        vec![NONE],
        "commits are accepted while members rejoin"
    );
    let a2 = join(&mut c, &Join::new(g, &a_id));
    let b = second.join().expect("second member");
    assert_eq!(a2.error_code, NONE);
    assert_eq!((a2.generation_id, b.generation_id), (2, 2));
    assert_eq!(a2.leader, a2.member_id, "the leader stays");
    assert_eq!(a2.members.len(), 2, "the leader gets both members");
    assert!(b.members.is_empty(), "followers get no member list");
    assert_eq!(heartbeat(&mut c, g, 1, &a_id, None), ILLEGAL_GENERATION);

    // ListGroups filters by state; OffsetFetch v8 answers several groups.
    let listed = |c: &mut Connection, states: &[&str]| -> Vec<(String, String)> {
        let req =
            ListGroupsRequest::default().with_states_filter(states.iter().map(|x| s(x)).collect());
        let r: ListGroupsResponse = c.call(ApiKey::ListGroups, 4, &req).expect("ListGroups");
        assert_eq!(r.error_code, NONE);
        r.groups
            .iter()
            .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
            .collect()
    };
    // Generation 2 waits for the leader's SyncGroup.
    assert!(listed(&mut c, &[]).contains(&(g.to_string(), "CompletingRebalance".to_string())));
    assert!(listed(&mut c, &["completingrebalance"])
        .iter()
        .any(|(id, _)| id == g));
    assert!(!listed(&mut c, &["Empty", "Stable"])
        .iter()
        .any(|(id, _)| id == g));
    let req = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s(g)))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("no-such-group")))
            .with_topics(None),
    ]);
    let r: OffsetFetchResponse = c
        .call(ApiKey::OffsetFetch, 8, &req)
        .expect("OffsetFetch v8");
    assert_eq!(r.groups.len(), 2);
    assert_eq!(r.groups[0].error_code, NONE);
    let t1 = r.groups[0]
        .topics
        .iter()
        .find(|t| t.name.as_str() == "t1")
        .expect("t1 committed");
    assert_eq!(
        (
            t1.partitions[0].partition_index,
            t1.partitions[0].committed_offset
        ),
        (0, 43)
    );
    assert!(r.groups[1].topics.is_empty());

    // Both leave: the group is empty, can be deleted, and is then gone
    // with its offsets.
    let (e, per) = leave(
        &mut c,
        g,
        &[
            (&a_id, None),
            (b.member_id.as_str(), None),
            ("nobody", None),
        ],
    );
    assert_eq!((e, per), (NONE, vec![NONE, NONE, UNKNOWN_MEMBER_ID]));
    let d = describe(&mut c, g);
    assert_eq!(d.group_state.as_str(), "Empty");
    assert!(d.members.is_empty());
    assert_eq!(delete_groups(&mut c, &[g]), vec![NONE]);
    assert_eq!(describe(&mut c, g).group_state.as_str(), "Dead");
    assert_eq!(fetch(&mut c, g, "t1", 0), (-1, String::new()));
}

// Proves a static member's new instance takes the old one's place without
// a rebalance and fences the old instance.
#[test]
fn static_instances_fence_their_predecessors() {
    let broker = start(BrokerOptions::single());
    let mut c = conn(&broker);
    let g = "g-static";
    let first = join(
        &mut c,
        &Join {
            instance: Some("i1"),
            ..Join::new(g, "")
        },
    );
    assert_eq!(first.error_code, NONE, "static members need no second join");
    let old = first.member_id.to_string();
    assert_eq!(
        sync(&mut c, g, 1, &old, Some("i1"), &[(&old, b"p0")]).error_code,
        NONE
    );
    let again = join(
        &mut c,
        &Join {
            instance: Some("i1"),
            ..Join::new(g, "")
        },
    );
    assert_eq!(again.error_code, NONE);
    let new = again.member_id.to_string();
    assert_ne!(new, old);
    assert_eq!(again.generation_id, 1, "no new generation");
    assert_ne!(
        again.leader, again.member_id,
        "the rejoining leader is not asked to assign again"
    );
    assert_eq!(
        heartbeat(&mut c, g, 1, &old, Some("i1")),
        FENCED_INSTANCE_ID
    );
    assert_eq!(heartbeat(&mut c, g, 1, &new, Some("i1")), NONE);
    let synced = sync(&mut c, g, 1, &new, Some("i1"), &[]);
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (NONE, &b"p0"[..])
    );
    let (e, per) = leave(&mut c, g, &[(&old, Some("i1"))]);
    assert_eq!((e, per), (NONE, vec![FENCED_INSTANCE_ID]));
    let (e, per) = leave(&mut c, g, &[("", Some("i1"))]);
    assert_eq!((e, per), (NONE, vec![NONE]));
    assert_eq!(describe(&mut c, g).group_state.as_str(), "Empty");
}

// Proves a member that stops heartbeating is removed after its session
// timeout, that group.max.size holds against a client joining in a loop
// while another group goes on undisturbed, and that shardlog.groups.max
// bounds the groups.
#[test]
fn sessions_expire_and_limits_hold() {
    let broker = start(
        BrokerOptions::single()
            .with_override("group.min.session.timeout.ms", 1000)
            .with_override("group.max.size", 2)
            .with_override("shardlog.groups.max", 4)
            .with_override("shardlog.group.metadata.max.bytes", 4096),
    );
    let mut c = conn(&broker);
    let long_topic = "t".repeat(5000);
    let oversized = join(
        &mut c,
        &Join {
            topics: &[long_topic.as_str()],
            ..Join::new("calm", "")
        },
    );
    assert_eq!(
        oversized.error_code, GROUP_MAX_SIZE_REACHED,
        "metadata beyond shardlog.group.metadata.max.bytes"
    );

    // A calm group whose member keeps heartbeating.
    let calm = join_new(&mut c, "calm");
    let calm_id = calm.member_id.to_string();
    assert_eq!(
        sync(&mut c, "calm", 1, &calm_id, None, &[]).error_code,
        NONE
    );

    // A silent member: joins with a 1.5 s session and never heartbeats.
    let silent = join(
        &mut c,
        &Join {
            session_ms: 1500,
            instance: Some("silent"),
            ..Join::new("quiet", "")
        },
    );
    assert_eq!(silent.error_code, NONE);
    let silent_id = silent.member_id.to_string();
    assert_eq!(
        sync(&mut c, "quiet", 1, &silent_id, Some("silent"), &[]).error_code,
        NONE
    );
    let joined_at = Instant::now();

    // Meanwhile a client joins "loop" over and over without ever using the
    // member ids it is given.
    let mut codes = Vec::new();
    let mut loop_conn = conn(&broker);
    let mut worst_heartbeat = Duration::ZERO;
    for i in 0..200 {
        codes.push(join(&mut loop_conn, &Join::new("loop", "")).error_code);
        if i % 20 == 0 {
            let t = Instant::now();
            assert_eq!(heartbeat(&mut c, "calm", 1, &calm_id, None), NONE);
            worst_heartbeat = worst_heartbeat.max(t.elapsed());
        }
    }
    assert_eq!(&codes[..2], &[MEMBER_ID_REQUIRED, MEMBER_ID_REQUIRED]);
    assert!(
        codes[2..].iter().all(|&c| c == GROUP_MAX_SIZE_REACHED),
        "joins beyond group.max.size: {:?}",
        &codes[2..6]
    );
    assert!(
        worst_heartbeat < Duration::from_millis(500),
        "the calm group's heartbeat took {worst_heartbeat:?}"
    );

    // The silent member is gone within its session timeout (plus the time
    // to notice).
    let deadline = joined_at + Duration::from_millis(1500 + 2000);
    loop {
        if describe(&mut c, "quiet").group_state.as_str() == "Empty" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the silent member was not removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(joined_at.elapsed() >= Duration::from_millis(1400));
    assert_eq!(
        heartbeat(&mut c, "quiet", 1, &silent_id, Some("silent")),
        UNKNOWN_MEMBER_ID
    );

    // calm, quiet, loop exist; one more group fits, the next does not.
    assert_eq!(
        join(&mut c, &Join::new("fourth", "")).error_code,
        MEMBER_ID_REQUIRED
    );
    assert_eq!(
        join(&mut c, &Join::new("fifth", "")).error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(heartbeat(&mut c, "calm", 1, &calm_id, None), NONE);
}

// Proves the offsets log is compacted (its log start moves past the
// superseded records) and that the committed offsets and metadata are
// replayed after kill -9 by a broker with a different number of shards.
#[test]
fn compacted_offsets_survive_kill9_and_a_new_shard_count() {
    let mut broker = start(
        BrokerOptions::single_shared(2)
            .with_override("offsets.topic.num.partitions", 4)
            .with_override("shardlog.offsets.compaction.min.bytes", 32 << 10)
            .with_override("shardlog.offsets.compaction.interval.ms", 200),
    );
    create_topics(&broker, &["busy", "t1"]);
    let mut c = conn(&broker);
    for round in 0..300i64 {
        let offsets: Vec<(&str, i32, i64, String)> = (0..2)
            .map(|p| {
                (
                    "busy",
                    p,
                    round * 10 + i64::from(p),
                    format!("round {round} ✓"),
                )
            })
            .collect();
        let refs: Vec<(&str, i32, i64, &str)> = offsets
            .iter()
            .map(|(t, p, o, m)| (*t, *p, *o, m.as_str()))
            .collect();
        assert_eq!(commit(&mut c, "busy", -1, "", &refs), vec![NONE, NONE]);
    }
    // A consumer group with members too, so its record is compacted.
    let member = join_new(&mut c, "members");
    let member_id = member.member_id.to_string();
    assert_eq!(
        sync(
            &mut c,
            "members",
            1,
            &member_id,
            None,
            &[(&member_id, b"x")]
        )
        .error_code,
        NONE
    );
    assert_eq!(
        commit(&mut c, "members", 1, &member_id, &[("t1", 0, 5, "five")]),
        vec![NONE]
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !broker.log().contains("offsets log compacted") {
        assert!(Instant::now() < deadline, "no compaction happened");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The partition holding "busy" starts past its first records now.
    let start_files: Vec<String> = std::fs::read_dir(broker.data_dir())
        .expect("data dir")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("__consumer_offsets-")
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("log-start-offset")).ok())
        .collect();
    assert!(
        start_files
            .iter()
            .any(|s| s.trim().parse::<i64>().unwrap_or(0) > 0),
        "a log start offset moved: {start_files:?}"
    );
    broker.kill9();
    broker.restart_with(
        BrokerOptions::single()
            .with_override("auto.create.topics.enable", "false")
            .with_override("offsets.topic.num.partitions", 50),
    );
    let mut c = conn(&broker);
    assert_eq!(
        fetch(&mut c, "busy", "busy", 0),
        (2990, "round 299 ✓".to_string())
    );
    assert_eq!(
        fetch(&mut c, "busy", "busy", 1),
        (2991, "round 299 ✓".to_string())
    );
    assert_eq!(fetch(&mut c, "members", "t1", 0), (5, "five".to_string()));
    let d = describe(&mut c, "members");
    assert_eq!(d.group_state.as_str(), "Stable", "the member was restored");
    assert_eq!(d.members.len(), 1);
    assert_eq!(&d.members[0].member_assignment[..], b"x");
    assert_eq!(heartbeat(&mut c, "members", 1, &member_id, None), NONE);
    assert!(
        broker.log().contains("existing=4"),
        "the recorded partition count wins over the configured one"
    );
}

/// (records replayed, slowest shard's load time in ms) reported by the
/// broker's latest start, once all `shards` have reported (the fixture's
/// readiness check can be answered by one shard while another still
/// replays).
fn replay_figures(broker: &Broker, shards: usize) -> (u64, u64) {
    let field = |line: &str, name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = broker.log();
        let latest = log.rsplit("=== start #").next().unwrap_or_default();
        let lines: Vec<&str> = latest
            .lines()
            .filter(|l| l.contains("consumer groups loaded"))
            .collect();
        if lines.len() >= shards {
            return lines.iter().fold((0, 0), |(r, ms), l| {
                (r + field(l, "records="), ms.max(field(l, "ms=")))
            });
        }
        assert!(Instant::now() < deadline, "the shards did not all load");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Proves compaction bounds the replay: after many commits of few offsets,
// a restart replays every record until compaction has run, and afterwards
// little more than the live offsets, which come back intact.
#[test]
fn compaction_keeps_the_replay_short() {
    const GROUPS: usize = 8;
    const ROUNDS: i64 = 100;
    let options = |compact: bool| {
        BrokerOptions::single_shared(2)
            .with_override("auto.create.topics.enable", "false")
            .with_override(
                "shardlog.offsets.compaction.interval.ms",
                if compact { 100 } else { 3_600_000 },
            )
            .with_override("shardlog.offsets.compaction.min.bytes", 64 << 10)
    };
    let mut broker = Broker::start(options(false));
    let admin = common::rdk::admin(&broker.bootstrap());
    common::rdk::create_topic(&admin, "wide", 50, &[]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for g in 0..GROUPS {
            let broker = &broker;
            scope.spawn(move || {
                let mut c = conn(broker);
                let group = format!("wide-{g}");
                for round in 0..ROUNDS {
                    let offsets: Vec<(&str, i32, i64, &str)> =
                        (0..50).map(|p| ("wide", p, round, "m")).collect();
                    assert!(commit(&mut c, &group, -1, "", &offsets)
                        .iter()
                        .all(|&e| e == NONE));
                }
            });
        }
    });
    let written = GROUPS as u64 * ROUNDS as u64 * 50;
    eprintln!(
        "{written} offset records committed by {GROUPS} clients in {:?}",
        started.elapsed()
    );
    broker.kill9();
    broker.restart();
    let (full, full_ms) = replay_figures(&broker, 2);
    eprintln!("uncompacted replay: {full} records in {full_ms} ms");
    assert!(full >= written, "every record replayed before compaction");
    broker.restart_with(options(true));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let latest = broker.log();
        let latest = latest.rsplit("=== start #").next().unwrap_or_default();
        if latest.matches("offsets log compacted").count() >= GROUPS.min(2) {
            break;
        }
        assert!(Instant::now() < deadline, "no compaction happened");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the remaining partitions' compactions finish.
    std::thread::sleep(Duration::from_millis(500));
    broker.kill9();
    broker.restart();
    let (compacted, compacted_ms) = replay_figures(&broker, 2);
    eprintln!("compacted replay: {compacted} records in {compacted_ms} ms");
    let live = GROUPS as u64 * 50;
    assert!(
        compacted <= 2 * live,
        "after compaction {compacted} records were replayed for {live} live offsets"
    );
    let mut c = conn(&broker);
    for g in 0..GROUPS {
        for p in [0, 49] {
            assert_eq!(
                fetch(&mut c, &format!("wide-{g}"), "wide", p),
                (ROUNDS - 1, "m".to_string())
            );
        }
    }
}

/// A join with a 2 s rebalance timeout.
fn quick<'a>(group: &'a str, member: &'a str) -> Join<'a> {
    Join {
        rebalance_ms: 2000,
        ..Join::new(group, member)
    }
}

// Proves rebalance.timeout.ms is enforced: a member that does not rejoin
// in time is dropped from the next generation, and a member that does not
// send SyncGroup in time is removed, which starts another rebalance.
#[test]
fn rebalance_and_sync_timeouts_drop_laggards() {
    let broker = start(BrokerOptions::single().with_override("group.min.session.timeout.ms", 1000));
    let g = "g-laggards";
    let mut c = conn(&broker);
    let first = join(&mut c, &quick(g, ""));
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    let a = join(&mut c, &quick(g, &first.member_id));
    assert_eq!(a.error_code, NONE);
    let a_id = a.member_id.to_string();
    assert_eq!(sync(&mut c, g, 1, &a_id, None, &[]).error_code, NONE);

    // B joins; A hears of the rebalance but never rejoins (it keeps
    // heartbeating, which does not save it).
    let addr = broker.bootstrap();
    let b_thread = std::thread::spawn(move || {
        let mut c = Connection::open(&addr, Duration::from_secs(30), "b").expect("connect");
        let first = join(&mut c, &quick("g-laggards", ""));
        assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
        let started = Instant::now();
        let r = join(&mut c, &quick("g-laggards", &first.member_id));
        (r, started.elapsed(), c)
    });
    let mut saw_rebalance = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match heartbeat(&mut c, g, 1, &a_id, None) {
            REBALANCE_IN_PROGRESS => saw_rebalance = true,
            UNKNOWN_MEMBER_ID => break,
            e => assert_eq!(e, NONE),
        }
        assert!(Instant::now() < deadline, "A was never dropped");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(saw_rebalance);
    let (b, waited, mut cb) = b_thread.join().expect("B");
    assert_eq!(b.error_code, NONE);
    assert_eq!(b.generation_id, 2);
    assert_eq!(b.leader, b.member_id, "B leads the generation without A");
    assert_eq!(b.members.len(), 1);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "the join waited {waited:?} for A (rebalance timeout 2 s)"
    );
    let b_id = b.member_id.to_string();
    assert_eq!(sync(&mut cb, g, 2, &b_id, None, &[]).error_code, NONE);

    // C joins; B rejoins; C never sends SyncGroup and is removed after the
    // rebalance timeout, which makes B rebalance alone again.
    let addr = broker.bootstrap();
    let c_thread = std::thread::spawn(move || {
        let mut c = Connection::open(&addr, Duration::from_secs(30), "c").expect("connect");
        let first = join(&mut c, &quick("g-laggards", ""));
        join(&mut c, &quick("g-laggards", &first.member_id))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut cb, g, 2, &b_id, None) != REBALANCE_IN_PROGRESS {
        assert!(Instant::now() < deadline, "no rebalance for C");
        std::thread::sleep(Duration::from_millis(100));
    }
    let b3 = join(&mut cb, &quick(g, &b_id));
    let c3 = c_thread.join().expect("C");
    assert_eq!((b3.generation_id, c3.generation_id), (3, 3));
    let leader_is_b = b3.leader == b3.member_id;
    assert!(leader_is_b, "B stays leader");
    let synced = Instant::now();
    assert_eq!(
        sync(&mut cb, g, 3, &b_id, None, &[(&b_id, b"b")]).error_code,
        NONE
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut cb, g, 3, &b_id, None) != REBALANCE_IN_PROGRESS {
        assert!(
            Instant::now() < deadline,
            "C was never removed for not syncing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let removed_after = synced.elapsed();
    assert!(
        removed_after >= Duration::from_millis(1000),
        "C removed after {removed_after:?}, before the rebalance timeout"
    );
    let b4 = join(&mut cb, &quick(g, &b_id));
    assert_eq!(
        (b4.error_code, b4.generation_id, b4.members.len()),
        (NONE, 4, 1)
    );
}

// Proves FindCoordinator names the node of the shard that owns the group's
// offsets partition in per-shard mode, and that group requests sent there
// are served.
#[test]
fn per_shard_mode_sends_each_group_to_its_shard() {
    let broker = start(BrokerOptions::per_shard(2));
    let mut c = conn(&broker);
    let mut seen = [false; 2];
    for i in 0..20 {
        let group = format!("placed-{i}");
        let shard = shardlog::group::coordinator_shard(&group, 50, 2);
        seen[shard] = true;
        let req = FindCoordinatorRequest::default()
            .with_key(s(&group))
            .with_key_type(0);
        let r: FindCoordinatorResponse = c
            .call(ApiKey::FindCoordinator, 3, &req)
            .expect("FindCoordinator");
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.node_id.0, shard as i32, "{group}");
        let addr = format!("{}:{}", r.host, r.port);
        assert_eq!(addr, broker.shard_address(shard), "{group}");
        let mut at = Connection::open(&addr, Duration::from_secs(30), "placed").expect("connect");
        let joined = join_new(&mut at, &group);
        assert_eq!(joined.generation_id, 1);
    }
    assert!(seen[0] && seen[1], "groups landed on both shards");
}
