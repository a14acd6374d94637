//! ACLs (the security issue): CreateAcls, DescribeAcls and DeleteAcls with
//! Kafka's semantics, and the authorizer consulted on every request, on a
//! broker configured with Kafka's keys (`authorizer.class.name` naming
//! StandardAuthorizer, `super.users`, `allow.everyone.if.no.acl.found`)
//! and a SASL_PLAINTEXT listener whose PLAIN users are the principals.
//!
//! Raw connections, one per principal, check a matrix of requests with and
//! without the ACL each needs (literal and prefixed, ALLOW and DENY,
//! implied DESCRIBE), each refusal with Kafka's code; ACL changes apply
//! to connections already open (their cached decisions are dropped);
//! bindings survive a restart. Kafka's own `kafka-acls` adds, lists and
//! removes ACLs against shardlog, and a broker without an authorizer
//! answers the ACL APIs with SECURITY_DISABLED.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::broker::{Broker, BrokerOptions};
use common::raw::{create_topic, produce_request, str_bytes, topic_name, value_batch, Conn};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

// Kafka's codes.
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_REQUEST: i16 = 42;
const SECURITY_DISABLED: i16 = 54;

// Kafka's enum codes (ResourceType, PatternType, AclOperation,
// AclPermissionType).
const ANY: i8 = 1;
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const MATCH: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const ALTER: i8 = 7;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

fn users_file(dir: &Path) -> std::path::PathBuf {
    let users = dir.join("plain-users");
    std::fs::write(
        &users,
        "admin=admin-secret\nalice=alice-secret\nbob=bob-secret\n",
    )
    .unwrap();
    users
}

fn acl_broker(dir: &Path, data: &Path) -> Broker {
    let users = users_file(dir);
    Broker::start_with_data_dir(
        BrokerOptions::single()
            .with_override("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT")
            .with_override("sasl.enabled.mechanisms", "PLAIN")
            .with_override("shardlog.sasl.plain.users.file", users.display())
            .with_override("connection.failed.authentication.delay.ms", 0)
            .with_override("authorizer.class.name", STANDARD_AUTHORIZER)
            .with_override("super.users", "User:admin")
            .with_override("allow.everyone.if.no.acl.found", "false"),
        data,
    )
}

/// A connection authenticated with PLAIN as `user`.
fn login(broker: &Broker, user: &str) -> Conn {
    let mut c = Conn::open(&broker.bootstrap());
    let hs: SaslHandshakeResponse = c.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(str_bytes("PLAIN")),
    );
    assert_eq!(hs.error_code, 0);
    let token = format!("\0{user}\0{user}-secret");
    let r: SaslAuthenticateResponse = c.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
    );
    assert_eq!(r.error_code, 0, "{user}: {:?}", r.error_message);
    c
}

fn creation(kind: i8, name: &str, pattern: i8, principal: &str, op: i8, perm: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(kind)
        .with_resource_name(str_bytes(name))
        .with_resource_pattern_type(pattern)
        .with_principal(str_bytes(principal))
        .with_host(str_bytes("*"))
        .with_operation(op)
        .with_permission_type(perm)
}

fn create_acls(c: &mut Conn, creations: Vec<AclCreation>) -> Vec<i16> {
    let r: CreateAclsResponse = c.call(
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(creations),
    );
    r.results.iter().map(|x| x.error_code).collect()
}

fn describe_acls(c: &mut Conn, kind: i8, name: Option<&str>, pattern: i8) -> DescribeAclsResponse {
    c.call(
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(kind)
            .with_resource_name_filter(name.map(str_bytes))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY),
    )
}

fn acl_count(r: &DescribeAclsResponse) -> usize {
    r.resources.iter().map(|x| x.acls.len()).sum()
}

fn produce(c: &mut Conn, topic: &str) -> i16 {
    let r: ProduceResponse = c.call(
        ApiKey::Produce,
        9,
        &produce_request(topic, 0, value_batch(2, 10), 1),
    );
    r.responses[0].partition_responses[0].error_code
}

fn fetch(c: &mut Conn, topic: &str) -> i16 {
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &req);
    r.responses[0].partitions[0].error_code
}

/// Metadata of every topic: the names listed.
fn listed_topics(c: &mut Conn) -> Vec<String> {
    let r: MetadataResponse = c.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    let mut names: Vec<String> = r
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    names.sort();
    names
}

/// Metadata of one topic by name: its error code and authorized operations.
fn topic_metadata(c: &mut Conn, topic: &str) -> (i16, i32) {
    let r: MetadataResponse = c.call(
        ApiKey::Metadata,
        10,
        &MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
            ]))
            .with_allow_auto_topic_creation(false)
            .with_include_topic_authorized_operations(true),
    );
    (
        r.topics[0].error_code,
        r.topics[0].topic_authorized_operations,
    )
}

fn join_group(c: &mut Conn, group: &str) -> i16 {
    let r: JoinGroupResponse = c.call(
        ApiKey::JoinGroup,
        5,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(str_bytes("consumer")),
    );
    r.error_code
}

fn find_coordinator(c: &mut Conn, group: &str) -> i16 {
    let r: FindCoordinatorResponse = c.call(
        ApiKey::FindCoordinator,
        2,
        &FindCoordinatorRequest::default().with_key(str_bytes(group)),
    );
    r.error_code
}

fn init_producer_id(c: &mut Conn) -> i16 {
    let r: InitProducerIdResponse = c.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    r.error_code
}

fn create_topic_code(c: &mut Conn, name: &str) -> i16 {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = 1;
    t.replication_factor = 1;
    let r: CreateTopicsResponse = c.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![t])
            .with_timeout_ms(30_000),
    );
    r.topics[0].error_code
}

fn describe_cluster(c: &mut Conn) -> (i16, i32) {
    let r: DescribeClusterResponse = c.call(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    (r.error_code, r.cluster_authorized_operations)
}

// Proves the matrix: without ACLs a principal is refused everything with
// Kafka's code for the resource (topic, group, cluster) and sees no topic;
// ACLs created by the super user grant exactly what they name (WRITE
// implies DESCRIBE, not READ; a prefixed READ covers every topic under the
// prefix; a DENY wins over it), on connections already open; bad bindings
// are refused one by one with INVALID_REQUEST; describe filters (ANY,
// MATCH, by pattern) and deletions match Kafka's; the principal loses what
// a deleted ACL gave at once; and the bindings survive a restart.
#[test]
fn acl_matrix() {
    let dir = common::temp_dir();
    let data = dir.path().join("data");
    let mut broker = acl_broker(dir.path(), &data);
    let mut admin = login(&broker, "admin");
    for t in ["orders", "logs-app", "logs-secret", "payroll"] {
        create_topic(&mut admin, t, 1);
    }
    assert_eq!(
        produce(&mut admin, "orders"),
        0,
        "a super user may do anything"
    );

    let mut alice = login(&broker, "alice");
    assert_eq!(produce(&mut alice, "orders"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(fetch(&mut alice, "orders"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(
        produce(&mut alice, "no-such-topic"),
        TOPIC_AUTHORIZATION_FAILED,
        "an unknown topic is unauthorized first, as in Kafka"
    );
    assert!(listed_topics(&mut alice).is_empty(), "no topic is visible");
    assert_eq!(
        topic_metadata(&mut alice, "orders").0,
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(
        create_topic_code(&mut alice, "alice-new"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(join_group(&mut alice, "g1"), GROUP_AUTHORIZATION_FAILED);
    assert_eq!(
        find_coordinator(&mut alice, "g1"),
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(init_producer_id(&mut alice), CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(describe_cluster(&mut alice).0, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(
        describe_acls(&mut alice, ANY, None, ANY).error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert_eq!(
        create_acls(
            &mut alice,
            vec![creation(
                TOPIC,
                "orders",
                LITERAL,
                "User:alice",
                WRITE,
                ALLOW
            )]
        ),
        [CLUSTER_AUTHORIZATION_FAILED]
    );

    // The super user grants, one binding refused among valid ones.
    let codes = create_acls(
        &mut admin,
        vec![
            creation(TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW),
            creation(TOPIC, "logs-", PREFIXED, "User:alice", READ, ALLOW),
            creation(TOPIC, "logs-secret", LITERAL, "User:alice", READ, DENY),
            creation(GROUP, "g1", LITERAL, "User:alice", READ, ALLOW),
            creation(
                CLUSTER,
                "not-the-cluster",
                LITERAL,
                "User:alice",
                ALTER,
                ALLOW,
            ),
            creation(TOPIC, "x", LITERAL, "alice-without-type", READ, ALLOW),
            creation(
                CLUSTER,
                "kafka-cluster",
                LITERAL,
                "User:bob",
                DESCRIBE,
                ALLOW,
            ),
        ],
    );
    assert_eq!(codes, [0, 0, 0, 0, INVALID_REQUEST, INVALID_REQUEST, 0]);

    // Alice's open connection sees the change.
    assert_eq!(produce(&mut alice, "orders"), 0, "WRITE granted");
    assert_eq!(
        fetch(&mut alice, "orders"),
        TOPIC_AUTHORIZATION_FAILED,
        "WRITE is not READ"
    );
    assert_eq!(fetch(&mut alice, "logs-app"), 0, "prefixed READ");
    assert_eq!(
        fetch(&mut alice, "logs-secret"),
        TOPIC_AUTHORIZATION_FAILED,
        "DENY wins"
    );
    assert_eq!(
        listed_topics(&mut alice),
        ["logs-app", "logs-secret", "orders"],
        "READ and WRITE imply DESCRIBE (a DENY of READ does not deny DESCRIBE); payroll stays hidden"
    );
    let (code, ops) = topic_metadata(&mut alice, "orders");
    assert_eq!(code, 0);
    assert_eq!(
        ops,
        (1 << WRITE) | (1 << DESCRIBE),
        "authorized operations of orders"
    );
    assert_eq!(
        init_producer_id(&mut alice),
        0,
        "WRITE on a topic allows idempotence"
    );
    assert_eq!(
        find_coordinator(&mut alice, "g1"),
        0,
        "READ on the group implies DESCRIBE"
    );
    assert_eq!(join_group(&mut alice, "g2"), GROUP_AUTHORIZATION_FAILED);

    let mut bob = login(&broker, "bob");
    let (code, ops) = describe_cluster(&mut bob);
    assert_eq!(
        (code, ops),
        (0, 1 << DESCRIBE),
        "bob may describe the cluster, only"
    );
    assert_eq!(acl_count(&describe_acls(&mut bob, ANY, None, ANY)), 5);
    assert_eq!(produce(&mut bob, "orders"), TOPIC_AUTHORIZATION_FAILED);

    // Filters: MATCH finds what applies to a name; by pattern type.
    let matched = describe_acls(&mut admin, TOPIC, Some("logs-secret"), MATCH);
    assert_eq!(
        acl_count(&matched),
        2,
        "the prefixed ALLOW and the literal DENY"
    );
    assert_eq!(
        acl_count(&describe_acls(&mut admin, TOPIC, None, PREFIXED)),
        1
    );
    assert_eq!(acl_count(&describe_acls(&mut admin, GROUP, None, ANY)), 1);

    // Deleting alice's WRITE: her connection loses it at once.
    let deleted: DeleteAclsResponse = admin.call(
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(str_bytes("orders")))
            .with_pattern_type_filter(LITERAL)
            .with_principal_filter(Some(str_bytes("User:alice")))
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY)]),
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert_eq!(deleted.filter_results[0].matching_acls[0].operation, WRITE);
    assert_eq!(produce(&mut alice, "orders"), TOPIC_AUTHORIZATION_FAILED);

    // The bindings are stored.
    drop((admin, alice, bob));
    broker.restart();
    let mut admin = login(&broker, "admin");
    assert_eq!(acl_count(&describe_acls(&mut admin, ANY, None, ANY)), 4);
    let mut alice = login(&broker, "alice");
    assert_eq!(fetch(&mut alice, "logs-app"), 0);
    assert_eq!(fetch(&mut alice, "logs-secret"), TOPIC_AUTHORIZATION_FAILED);
    broker.terminate();
}

// Proves a broker without an authorizer answers the ACL APIs with
// SECURITY_DISABLED and serves everything else as before.
#[test]
fn without_an_authorizer_acl_apis_are_disabled() {
    let mut broker = Broker::start(BrokerOptions::single());
    let mut c = Conn::open(&broker.bootstrap());
    let r = describe_acls(&mut c, ANY, None, ANY);
    assert_eq!(r.error_code, SECURITY_DISABLED);
    assert_eq!(
        create_acls(
            &mut c,
            vec![creation(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW)]
        ),
        [SECURITY_DISABLED]
    );
    let (code, ops) = describe_cluster(&mut c);
    assert_eq!(code, 0);
    assert_eq!(
        ops.count_ones(),
        7,
        "every cluster operation without an authorizer"
    );
    broker.terminate();
}

// Proves Kafka's own kafka-acls works against shardlog: it adds ACLs for a
// principal (producer and consumer shortcuts), lists them and removes
// them, authenticated as the super user over SASL_PLAINTEXT.
#[test]
fn kafka_acls_tool() {
    let dir = common::temp_dir();
    let data = dir.path().join("data");
    let mut broker = acl_broker(dir.path(), &data);
    let props = dir.path().join("admin.properties");
    std::fs::write(
        &props,
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n\
         sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
         required username=\"admin\" password=\"admin-secret\";\n",
    )
    .unwrap();
    let bootstrap = broker.bootstrap();
    let base = [
        "--bootstrap-server",
        bootstrap.as_str(),
        "--command-config",
        props.to_str().unwrap(),
    ];
    let run = |extra: &[&str]| common::kafka::tool_ok("kafka-acls", &[&base[..], extra].concat());
    run(&[
        "--add",
        "--allow-principal",
        "User:alice",
        "--producer",
        "--topic",
        "orders",
    ]);
    run(&[
        "--add",
        "--allow-principal",
        "User:alice",
        "--consumer",
        "--topic",
        "events-",
        "--resource-pattern-type",
        "prefixed",
        "--group",
        "app",
    ]);
    let listed = run(&["--list"]);
    for want in [
        "name=orders, patternType=LITERAL",
        "name=events-, patternType=PREFIXED",
        "resourceType=GROUP, name=app, patternType=PREFIXED",
        "principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW",
        "operation=READ",
    ] {
        assert!(
            listed.contains(want),
            "kafka-acls --list lacks {want:?}:\n{listed}"
        );
    }
    // The producer shortcut gave alice WRITE: she produces (auto-creation
    // of orders is CREATE, also given by --producer).
    let mut admin = login(&broker, "admin");
    create_topic(&mut admin, "orders", 1);
    let mut alice = login(&broker, "alice");
    assert_eq!(produce(&mut alice, "orders"), 0);
    run(&[
        "--remove",
        "--force",
        "--allow-principal",
        "User:alice",
        "--producer",
        "--topic",
        "orders",
    ]);
    assert_eq!(produce(&mut alice, "orders"), TOPIC_AUTHORIZATION_FAILED);
    let listed = run(&["--list", "--topic", "orders"]);
    assert!(!listed.contains("User:alice"), "{listed}");
    broker.terminate();
}

/// One API of the matrix: the ACLs it needs on its own resources (topic
/// `t`, group `g`) and some that do not suffice, how to call it, and the
/// code it is refused with.
struct Case {
    api: &'static str,
    needs: Vec<AclCreation>,
    not_enough: Vec<AclCreation>,
    denied: i16,
    call: Box<dyn Fn(&mut Conn) -> i16>,
}

fn alice(kind: i8, name: &str, pattern: i8, op: i8) -> AclCreation {
    creation(kind, name, pattern, "User:alice", op, ALLOW)
}

fn topic_case(
    api: &'static str,
    t: &str,
    needs: i8,
    not_enough: i8,
    call: impl Fn(&mut Conn, String) -> i16 + 'static,
) -> Case {
    let name = t.to_string();
    Case {
        api,
        needs: vec![alice(TOPIC, t, LITERAL, needs)],
        not_enough: vec![alice(TOPIC, t, LITERAL, not_enough)],
        denied: TOPIC_AUTHORIZATION_FAILED,
        call: Box::new(move |c| call(c, name.clone())),
    }
}

fn group_case(
    api: &'static str,
    g: &str,
    needs: i8,
    not_enough: i8,
    call: impl Fn(&mut Conn, String) -> i16 + 'static,
) -> Case {
    let name = g.to_string();
    Case {
        api,
        needs: vec![alice(GROUP, g, LITERAL, needs)],
        not_enough: vec![alice(GROUP, g, LITERAL, not_enough)],
        denied: GROUP_AUTHORIZATION_FAILED,
        call: Box::new(move |c| call(c, name.clone())),
    }
}

fn cluster_case(api: &'static str, needs: i8, call: impl Fn(&mut Conn) -> i16 + 'static) -> Case {
    Case {
        api,
        needs: vec![alice(CLUSTER, "kafka-cluster", LITERAL, needs)],
        // CREATE on the cluster implies neither DESCRIBE nor
        // DESCRIBE_CONFIGS.
        not_enough: vec![alice(CLUSTER, "kafka-cluster", LITERAL, 5)],
        denied: CLUSTER_AUTHORIZATION_FAILED,
        call: Box::new(call),
    }
}

const DELETE: i8 = 6;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;

fn matrix_cases() -> Vec<Case> {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    vec![
        topic_case("ListOffsets", "m-list-offsets", DESCRIBE, 5, |c, t| {
            let r: ListOffsetsResponse = c.call(
                ApiKey::ListOffsets,
                7,
                &ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                        .with_name(topic_name(&t))
                        .with_partitions(vec![
                            list_offsets_request::ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(-1),
                        ])]),
            );
            r.topics[0].partitions[0].error_code
        }),
        topic_case("OffsetForLeaderEpoch", "m-epoch", DESCRIBE, 5, |c, t| {
            let r: OffsetForLeaderEpochResponse = c.call(
                ApiKey::OffsetForLeaderEpoch,
                4,
                &OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                            .with_topic(topic_name(&t))
                            .with_partitions(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(
                                )
                                .with_partition(0)
                                .with_current_leader_epoch(-1)
                                .with_leader_epoch(0),
                            ]),
                    ]),
            );
            r.topics[0].partitions[0].error_code
        }),
        topic_case("DescribeProducers", "m-producers", READ, WRITE, |c, t| {
            let r: DescribeProducersResponse = c.call(
                ApiKey::DescribeProducers,
                0,
                &DescribeProducersRequest::default().with_topics(vec![
                    describe_producers_request::TopicRequest::default()
                        .with_name(topic_name(&t))
                        .with_partition_indexes(vec![0]),
                ]),
            );
            r.topics[0].partitions[0].error_code
        }),
        topic_case(
            "DeleteRecords",
            "m-delete-records",
            DELETE,
            WRITE,
            |c, t| {
                let r: DeleteRecordsResponse = c.call(
                    ApiKey::DeleteRecords,
                    2,
                    &DeleteRecordsRequest::default()
                        .with_timeout_ms(10_000)
                        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                            .with_name(topic_name(&t))
                            .with_partitions(vec![
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(0),
                            ])]),
                );
                r.topics[0].partitions[0].error_code
            },
        ),
        topic_case(
            "CreatePartitions",
            "m-create-partitions",
            ALTER,
            WRITE,
            |c, t| {
                let r: CreatePartitionsResponse = c.call(
                    ApiKey::CreatePartitions,
                    3,
                    &CreatePartitionsRequest::default()
                        .with_timeout_ms(10_000)
                        .with_validate_only(true)
                        .with_topics(vec![
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(topic_name(&t))
                                .with_count(2)
                                .with_assignments(None),
                        ]),
                );
                r.results[0].error_code
            },
        ),
        topic_case(
            "DescribeConfigs",
            "m-describe-configs",
            DESCRIBE_CONFIGS,
            DESCRIBE,
            |c, t| {
                let r: DescribeConfigsResponse = c.call(
                    ApiKey::DescribeConfigs,
                    4,
                    &DescribeConfigsRequest::default().with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(str_bytes(&t))
                            .with_configuration_keys(None),
                    ]),
                );
                r.results[0].error_code
            },
        ),
        topic_case(
            "IncrementalAlterConfigs",
            "m-alter-configs",
            ALTER_CONFIGS,
            DESCRIBE_CONFIGS,
            |c, t| {
                let r: IncrementalAlterConfigsResponse = c.call(
                    ApiKey::IncrementalAlterConfigs,
                    1,
                    &IncrementalAlterConfigsRequest::default().with_resources(vec![
                        incremental_alter_configs_request::AlterConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(str_bytes(&t))
                            .with_configs(vec![
                                incremental_alter_configs_request::AlterableConfig::default()
                                    .with_name(str_bytes("retention.ms"))
                                    .with_config_operation(0)
                                    .with_value(Some(str_bytes("3600000"))),
                            ]),
                    ]),
                );
                r.responses[0].error_code
            },
        ),
        topic_case(
            "DescribeTopicPartitions",
            "m-describe-partitions",
            DESCRIBE,
            5,
            |c, t| {
                let r: DescribeTopicPartitionsResponse = c.call(
                    ApiKey::DescribeTopicPartitions,
                    0,
                    &DescribeTopicPartitionsRequest::default()
                        .with_response_partition_limit(100)
                        .with_topics(vec![
                            describe_topic_partitions_request::TopicRequest::default()
                                .with_name(topic_name(&t)),
                        ]),
                );
                r.topics[0].error_code
            },
        ),
        topic_case("DeleteTopics", "m-delete-topics", DELETE, WRITE, |c, t| {
            let r: DeleteTopicsResponse = c.call(
                ApiKey::DeleteTopics,
                6,
                &DeleteTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(topic_name(&t)))]),
            );
            r.responses[0].error_code
        }),
        group_case("Heartbeat", "m-heartbeat", READ, DESCRIBE, |c, g| {
            let r: HeartbeatResponse = c.call(
                ApiKey::Heartbeat,
                4,
                &HeartbeatRequest::default()
                    .with_group_id(GroupId(str_bytes(&g)))
                    .with_generation_id(1)
                    .with_member_id(str_bytes("m")),
            );
            r.error_code
        }),
        group_case(
            "DescribeGroups",
            "m-describe-groups",
            DESCRIBE,
            5,
            |c, g| {
                let r: DescribeGroupsResponse = c.call(
                    ApiKey::DescribeGroups,
                    5,
                    &DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(&g))]),
                );
                r.groups[0].error_code
            },
        ),
        group_case("DeleteGroups", "m-delete-groups", DELETE, READ, |c, g| {
            let r: DeleteGroupsResponse = c.call(
                ApiKey::DeleteGroups,
                2,
                &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(&g))]),
            );
            r.results[0].error_code
        }),
        group_case("OffsetFetch", "m-offset-fetch", DESCRIBE, 5, |c, g| {
            let r: OffsetFetchResponse = c.call(
                ApiKey::OffsetFetch,
                7,
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(str_bytes(&g)))
                    .with_topics(None),
            );
            r.error_code
        }),
        Case {
            api: "OffsetCommit",
            needs: vec![
                alice(GROUP, "m-offset-commit", LITERAL, READ),
                alice(TOPIC, "m-offset-commit", LITERAL, READ),
            ],
            not_enough: vec![
                alice(GROUP, "m-offset-commit", LITERAL, DESCRIBE),
                alice(TOPIC, "m-offset-commit", LITERAL, WRITE),
            ],
            denied: GROUP_AUTHORIZATION_FAILED,
            call: Box::new(|c| {
                let r: OffsetCommitResponse = c.call(
                    ApiKey::OffsetCommit,
                    8,
                    &OffsetCommitRequest::default()
                        .with_group_id(GroupId(str_bytes("m-offset-commit")))
                        .with_generation_id_or_member_epoch(-1)
                        .with_member_id(str_bytes(""))
                        .with_group_instance_id(None)
                        .with_topics(vec![OffsetCommitRequestTopic::default()
                            .with_name(topic_name("m-offset-commit"))
                            .with_partitions(vec![OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1)
                                .with_committed_metadata(None)])]),
                );
                r.topics[0].partitions[0].error_code
            }),
        },
        Case {
            api: "OffsetDelete",
            needs: vec![
                alice(GROUP, "m-offset-delete", LITERAL, DELETE),
                alice(TOPIC, "m-offset-delete", LITERAL, READ),
            ],
            not_enough: vec![
                alice(GROUP, "m-offset-delete", LITERAL, READ),
                alice(TOPIC, "m-offset-delete", LITERAL, READ),
            ],
            denied: GROUP_AUTHORIZATION_FAILED,
            call: Box::new(|c| {
                let r: OffsetDeleteResponse = c.call(
                    ApiKey::OffsetDelete,
                    0,
                    &OffsetDeleteRequest::default()
                        .with_group_id(GroupId(str_bytes("m-offset-delete")))
                        .with_topics(vec![
                            offset_delete_request::OffsetDeleteRequestTopic::default()
                                .with_name(topic_name("m-offset-delete"))
                                .with_partitions(vec![
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(0),
                                ]),
                        ]),
                );
                match r.topics.first() {
                    Some(t) if r.error_code == 0 => t.partitions[0].error_code,
                    _ => r.error_code,
                }
            }),
        },
        cluster_case("DescribeLogDirs", DESCRIBE, |c| {
            let r: DescribeLogDirsResponse = c.call(
                ApiKey::DescribeLogDirs,
                4,
                &DescribeLogDirsRequest::default().with_topics(None),
            );
            r.error_code
        }),
        cluster_case("DescribeUserScramCredentials", DESCRIBE, |c| {
            let r: DescribeUserScramCredentialsResponse = c.call(
                ApiKey::DescribeUserScramCredentials,
                0,
                &DescribeUserScramCredentialsRequest::default().with_users(None),
            );
            r.error_code
        }),
        cluster_case("ElectLeaders", ALTER, |c| {
            let r: ElectLeadersResponse = c.call(
                ApiKey::ElectLeaders,
                2,
                &ElectLeadersRequest::default().with_topic_partitions(None),
            );
            r.error_code
        }),
        cluster_case("DescribeClientQuotas", DESCRIBE_CONFIGS, |c| {
            let r: DescribeClientQuotasResponse = c.call(
                ApiKey::DescribeClientQuotas,
                1,
                &DescribeClientQuotasRequest::default(),
            );
            r.error_code
        }),
        cluster_case("ListGroups (every group)", DESCRIBE, |c| {
            let r: ListGroupsResponse =
                c.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
            // A group it may not describe is left out, not refused.
            let listed = r
                .groups
                .iter()
                .any(|g| g.group_id.0.as_str() == "m-listed-group");
            if listed {
                r.error_code
            } else {
                CLUSTER_AUTHORIZATION_FAILED
            }
        }),
    ]
}

// Proves Kafka's operation-per-API table, API by API, each on resources of
// its own: without ACLs each request is refused with the code Kafka puts
// there; with ACLs that do not imply the operation it needs (READ is not
// WRITE, DESCRIBE is not READ, CREATE implies nothing, ALTER_CONFIGS is not
// ALTER...) it is still refused; with the one it needs it is served.
#[test]
fn operation_per_api_matrix() {
    let dir = common::temp_dir();
    let data = dir.path().join("data");
    let mut broker = acl_broker(dir.path(), &data);
    let mut admin = login(&broker, "admin");
    for t in [
        "m-list-offsets",
        "m-epoch",
        "m-producers",
        "m-delete-records",
        "m-create-partitions",
        "m-describe-configs",
        "m-alter-configs",
        "m-describe-partitions",
        "m-delete-topics",
        "m-offset-commit",
        "m-offset-delete",
    ] {
        create_topic(&mut admin, t, 1);
    }
    // A group for ListGroups to list: one committed offset creates it.
    let r: OffsetCommitResponse = admin.call(
        ApiKey::OffsetCommit,
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes("m-listed-group")))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(str_bytes(""))
            .with_group_instance_id(None)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name("m-list-offsets"))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(0)
                            .with_committed_metadata(None),
                    ]),
            ]),
    );
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let cases = matrix_cases();
    let mut alice_conn = login(&broker, "alice");
    for case in &cases {
        assert_eq!(
            (case.call)(&mut alice_conn),
            case.denied,
            "{}: no ACLs",
            case.api
        );
    }
    let wrong: Vec<AclCreation> = cases.iter().flat_map(|c| c.not_enough.clone()).collect();
    assert!(create_acls(&mut admin, wrong).iter().all(|&c| c == 0));
    for case in &cases {
        assert_eq!(
            (case.call)(&mut alice_conn),
            case.denied,
            "{}: refused with ACLs that do not grant what it needs",
            case.api
        );
    }
    let right: Vec<AclCreation> = cases.iter().flat_map(|c| c.needs.clone()).collect();
    assert!(create_acls(&mut admin, right).iter().all(|&c| c == 0));
    for case in &cases {
        let code = (case.call)(&mut alice_conn);
        assert!(
            ![
                TOPIC_AUTHORIZATION_FAILED,
                GROUP_AUTHORIZATION_FAILED,
                CLUSTER_AUTHORIZATION_FAILED
            ]
            .contains(&code),
            "{}: served once it has the ACL it needs (got {code})",
            case.api
        );
    }
    broker.terminate();
}

/// Polls `f` on node `node` until it returns `want` (bounded).
fn eventually(what: &str, want: i16, mut f: impl FnMut() -> i16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = f();
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {got}, want {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

// Proves ACLs live in the cluster's metadata log: a DENY created through
// node 1 is listed by every node and refuses the topic on every node (the
// check comes before leadership), and deleting it through node 3 lifts it
// everywhere; a restarted node keeps them (its metadata is the log's).
#[test]
fn acls_apply_on_every_broker_of_a_cluster() {
    let mut cluster = common::cluster::Cluster::start_with(&[
        ("authorizer.class.name", STANDARD_AUTHORIZER),
        ("allow.everyone.if.no.acl.found", "true"),
    ]);
    cluster.agreed_leader(&[1, 2, 3], 0, &[1, 2, 3]);
    cluster.wait_listed(&[1, 2, 3], &[1, 2, 3]);
    let mut one = Conn::open(&cluster.bootstrap(1));
    create_topic(&mut one, "guarded", 3);
    let codes = create_acls(
        &mut one,
        vec![creation(
            TOPIC,
            "guarded",
            LITERAL,
            "User:ANONYMOUS",
            WRITE,
            DENY,
        )],
    );
    assert_eq!(codes, [0]);
    for node in 1..=3 {
        let addr = cluster.bootstrap(node);
        eventually(&format!("node {node} lists the ACL"), 1, || {
            let mut c = Conn::open(&addr);
            acl_count(&describe_acls(&mut c, ANY, None, ANY)) as i16
        });
        let mut c = Conn::open(&addr);
        assert_eq!(
            produce(&mut c, "guarded"),
            TOPIC_AUTHORIZATION_FAILED,
            "node {node} refuses the topic"
        );
    }
    let mut three = Conn::open(&cluster.bootstrap(3));
    let deleted: DeleteAclsResponse = three.call(
        ApiKey::DeleteAcls,
        3,
        &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(ANY)
            .with_resource_name_filter(None)
            .with_pattern_type_filter(ANY)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY)]),
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    for node in 1..=3 {
        let addr = cluster.bootstrap(node);
        eventually(&format!("node {node} lifted the DENY"), 0, || {
            let mut c = Conn::open(&addr);
            acl_count(&describe_acls(&mut c, ANY, None, ANY)) as i16
        });
        let mut c = Conn::open(&addr);
        assert_ne!(produce(&mut c, "guarded"), TOPIC_AUTHORIZATION_FAILED);
    }
    // A node restarted after a new ACL keeps it.
    assert_eq!(
        create_acls(
            &mut three,
            vec![creation(
                TOPIC,
                "guarded",
                LITERAL,
                "User:ANONYMOUS",
                READ,
                DENY
            )]
        ),
        [0]
    );
    eventually("node 2 lists the new ACL", 1, || {
        let mut c = Conn::open(&cluster.bootstrap(2));
        acl_count(&describe_acls(&mut c, ANY, None, ANY)) as i16
    });
    cluster.node(2).restart();
    let addr = cluster.bootstrap(2);
    eventually("node 2 after a restart", 1, || {
        match Conn::try_open(&addr) {
            Ok(mut c) => acl_count(&describe_acls(&mut c, ANY, None, ANY)) as i16,
            Err(_) => -1,
        }
    });
}
