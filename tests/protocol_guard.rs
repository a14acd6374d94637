//! The request guard against kafka-protocol 0.18 itself.
//!
//! For every (api key, version) the guard knows, requests are built and
//! encoded with the crate's own encoder: the guard must accept them and
//! consume exactly the encoded bytes, and the crate must decode them back to
//! the same bytes. That pins the guard's layouts to the crate's. Then every
//! array count on the wire (found by encoding with 1 and 2 elements and
//! diffing) is patched to a huge value and must be rejected, every truncation
//! must be rejected, and random and mutated input goes through the guard and,
//! only where it accepts, through the crate's decoder.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_partitions_request::*;
use kafka_protocol::messages::create_topics_request::*;
use kafka_protocol::messages::delete_records_request::*;
use kafka_protocol::messages::delete_topics_request::*;
use kafka_protocol::messages::describe_configs_request::*;
use kafka_protocol::messages::describe_log_dirs_request::*;
use kafka_protocol::messages::fetch_request::*;
use kafka_protocol::messages::join_group_request::*;
use kafka_protocol::messages::leave_group_request::*;
use kafka_protocol::messages::list_offsets_request::*;
use kafka_protocol::messages::metadata_request::*;
use kafka_protocol::messages::offset_commit_request::*;
use kafka_protocol::messages::offset_delete_request::*;
use kafka_protocol::messages::offset_fetch_request::*;
use kafka_protocol::messages::offset_for_leader_epoch_request::*;
use kafka_protocol::messages::produce_request::*;
use kafka_protocol::messages::sync_group_request::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use proptest::prelude::*;
use shardlog::protocol::guard::GuardError;
use shardlog::protocol::FrameError;
use shardlog::record::records::BatchBuilder;
use shardlog::router::apis::{
    check_request_body, checked_body_len, decode_checked, fuzz_request_frame, inspect_request_body,
    supported_apis, supported_versions,
};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Building requests.

/// Element counts per array, by array path (`topics.partitions`); `NULL`
/// asks for null where the array is nullable (empty otherwise).
type Counts<'a> = &'a dyn Fn(&'static str) -> usize;
const NULL: usize = usize::MAX;

fn vec_of<T>(n: Counts, path: &'static str, f: impl Fn(usize) -> T) -> Vec<T> {
    let c = n(path);
    let c = if c == NULL { 0 } else { c };
    (0..c).map(f).collect()
}

fn opt_vec_of<T>(n: Counts, path: &'static str, f: impl Fn(usize) -> T) -> Option<Vec<T>> {
    let c = n(path);
    (c != NULL).then(|| (0..c).map(f).collect())
}

fn s(x: impl Into<String>) -> StrBytes {
    StrBytes::from_string(x.into())
}

fn topic(i: usize) -> TopicName {
    TopicName(s(format!("topic-{i}")))
}

fn group(i: usize) -> GroupId {
    GroupId(s(format!("group-{i}")))
}

fn uuid(i: usize) -> Uuid {
    Uuid::from_u128(0x1234_5678_9abc_def0_0fed_cba9_8765_4321 ^ i as u128)
}

/// Unknown tagged fields for a struct in flexible versions.
fn tags(v: i16, flexible: i16) -> BTreeMap<i32, Bytes> {
    let mut m = BTreeMap::new();
    if v >= flexible {
        m.insert(100, Bytes::from_static(b"tag-100"));
        m.insert(300, Bytes::new());
    }
    m
}

fn records(i: usize) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    b.push_value(0, format!("value-{i}-a").as_bytes());
    b.push_value(1, format!("value-{i}-b").as_bytes());
    Bytes::from(b.build())
}

fn api_versions(v: i16, _n: Counts) -> ApiVersionsRequest {
    let mut r = ApiVersionsRequest::default();
    if v >= 3 {
        r.client_software_name = s("shardlog-test");
        r.client_software_version = s("1.2.3");
    }
    r.unknown_tagged_fields = tags(v, 3);
    r
}

fn sasl_handshake(_v: i16, _n: Counts) -> SaslHandshakeRequest {
    let mut r = SaslHandshakeRequest::default();
    r.mechanism = s("SCRAM-SHA-256");
    r
}

fn sasl_authenticate(v: i16, _n: Counts) -> SaslAuthenticateRequest {
    let mut r = SaslAuthenticateRequest::default();
    r.auth_bytes = Bytes::from_static(b"n,,n=alice,r=nonce");
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn describe_user_scram_credentials(v: i16, n: Counts) -> DescribeUserScramCredentialsRequest {
    let mut r = DescribeUserScramCredentialsRequest::default();
    r.users = opt_vec_of(n, "users", |i| {
        let mut u = describe_user_scram_credentials_request::UserName::default();
        u.name = s(format!("user-{i}"));
        u.unknown_tagged_fields = tags(v, 0);
        u
    });
    r.unknown_tagged_fields = tags(v, 0);
    r
}

fn alter_user_scram_credentials(v: i16, n: Counts) -> AlterUserScramCredentialsRequest {
    use alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion};
    let mut r = AlterUserScramCredentialsRequest::default();
    r.deletions = vec_of(n, "deletions", |i| {
        let mut d = ScramCredentialDeletion::default();
        d.name = s(format!("gone-{i}"));
        d.mechanism = 1;
        d.unknown_tagged_fields = tags(v, 0);
        d
    });
    r.upsertions = vec_of(n, "upsertions", |i| {
        let mut u = ScramCredentialUpsertion::default();
        u.name = s(format!("user-{i}"));
        u.mechanism = 2;
        u.iterations = 8192;
        u.salt = Bytes::from_static(b"salt");
        u.salted_password = Bytes::from(vec![7u8; 64]);
        u.unknown_tagged_fields = tags(v, 0);
        u
    });
    r.unknown_tagged_fields = tags(v, 0);
    r
}

fn describe_client_quotas(v: i16, n: Counts) -> DescribeClientQuotasRequest {
    let mut r = DescribeClientQuotasRequest::default();
    r.components = vec_of(n, "components", |i| {
        let mut c = describe_client_quotas_request::ComponentData::default();
        c.entity_type = s("user");
        c.match_type = (i % 3) as i8;
        c._match = (i % 2 == 0).then(|| s(format!("user-{i}")));
        c.unknown_tagged_fields = tags(v, 1);
        c
    });
    r.strict = true;
    r.unknown_tagged_fields = tags(v, 1);
    r
}

fn create_acls(v: i16, n: Counts) -> CreateAclsRequest {
    let mut r = CreateAclsRequest::default();
    r.creations = vec_of(n, "creations", |i| {
        let mut c = create_acls_request::AclCreation::default();
        c.resource_type = 2;
        c.resource_name = s(format!("topic-{i}"));
        c.resource_pattern_type = 3;
        c.principal = s(format!("User:user-{i}"));
        c.host = s("*");
        c.operation = 3;
        c.permission_type = 3;
        c.unknown_tagged_fields = tags(v, 2);
        c
    });
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn describe_acls(v: i16, _: Counts) -> DescribeAclsRequest {
    let mut r = DescribeAclsRequest::default();
    r.resource_type_filter = 2;
    r.resource_name_filter = Some(s("topic"));
    r.pattern_type_filter = 1;
    r.principal_filter = Some(s("User:alice"));
    r.host_filter = None;
    r.operation = 1;
    r.permission_type = 1;
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn delete_acls(v: i16, n: Counts) -> DeleteAclsRequest {
    let mut r = DeleteAclsRequest::default();
    r.filters = vec_of(n, "filters", |i| {
        let mut f = delete_acls_request::DeleteAclsFilter::default();
        f.resource_type_filter = 2;
        f.resource_name_filter = (i % 2 == 0).then(|| s(format!("topic-{i}")));
        f.pattern_type_filter = 4;
        f.principal_filter = Some(s("User:alice"));
        f.host_filter = (i % 3 == 0).then(|| s("10.0.0.1"));
        f.operation = 2;
        f.permission_type = 3;
        f.unknown_tagged_fields = tags(v, 2);
        f
    });
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn metadata(v: i16, n: Counts) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = opt_vec_of(n, "topics", |i| {
        let mut t = MetadataRequestTopic::default();
        t.name = Some(topic(i));
        if v >= 10 {
            t.topic_id = uuid(i);
        }
        t.unknown_tagged_fields = tags(v, 9);
        t
    });
    if v >= 4 {
        r.allow_auto_topic_creation = false;
    }
    if (8..=10).contains(&v) {
        r.include_cluster_authorized_operations = true;
    }
    if v >= 8 {
        r.include_topic_authorized_operations = true;
    }
    r.unknown_tagged_fields = tags(v, 9);
    r
}

fn create_topics(v: i16, n: Counts) -> CreateTopicsRequest {
    let mut r = CreateTopicsRequest::default();
    r.topics = vec_of(n, "topics", |i| {
        let mut t = CreatableTopic::default();
        t.name = topic(i);
        t.num_partitions = -1;
        t.replication_factor = -1;
        t.assignments = vec_of(n, "topics.assignments", |p| {
            let mut a = CreatableReplicaAssignment::default();
            a.partition_index = p as i32;
            a.broker_ids = vec_of(n, "topics.assignments.broker_ids", |b| BrokerId(b as i32));
            a.unknown_tagged_fields = tags(v, 5);
            a
        });
        t.configs = vec_of(n, "topics.configs", |c| {
            let mut cfg = CreatableTopicConfig::default();
            cfg.name = s(format!("config.{c}"));
            cfg.value = (c % 2 == 0).then(|| s(format!("value-{c}")));
            cfg.unknown_tagged_fields = tags(v, 5);
            cfg
        });
        t.unknown_tagged_fields = tags(v, 5);
        t
    });
    r.timeout_ms = 30_000;
    r.validate_only = true;
    r.unknown_tagged_fields = tags(v, 5);
    r
}

fn delete_topics(v: i16, n: Counts) -> DeleteTopicsRequest {
    let mut r = DeleteTopicsRequest::default();
    if v >= 6 {
        r.topics = vec_of(n, "topics", |i| {
            let mut t = DeleteTopicState::default();
            t.name = (i % 2 == 0).then(|| topic(i));
            t.topic_id = uuid(i);
            t.unknown_tagged_fields = tags(v, 4);
            t
        });
    } else {
        r.topic_names = vec_of(n, "topic_names", topic);
    }
    r.timeout_ms = 15_000;
    r.unknown_tagged_fields = tags(v, 4);
    r
}

fn create_partitions(v: i16, n: Counts) -> CreatePartitionsRequest {
    let mut r = CreatePartitionsRequest::default();
    r.topics = vec_of(n, "topics", |i| {
        let mut t = CreatePartitionsTopic::default();
        t.name = topic(i);
        t.count = 6;
        t.assignments = opt_vec_of(n, "topics.assignments", |_| {
            let mut a = CreatePartitionsAssignment::default();
            a.broker_ids = vec_of(n, "topics.assignments.broker_ids", |b| BrokerId(b as i32));
            a.unknown_tagged_fields = tags(v, 2);
            a
        });
        t.unknown_tagged_fields = tags(v, 2);
        t
    });
    r.timeout_ms = 5_000;
    r.validate_only = true;
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn describe_configs(v: i16, n: Counts) -> DescribeConfigsRequest {
    let mut r = DescribeConfigsRequest::default();
    r.resources = vec_of(n, "resources", |i| {
        let mut res = DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = s(format!("topic-{i}"));
        res.configuration_keys =
            opt_vec_of(n, "resources.configuration_keys", |k| s(format!("key.{k}")));
        res.unknown_tagged_fields = tags(v, 4);
        res
    });
    r.include_synonyms = true;
    if v >= 3 {
        r.include_documentation = true;
    }
    r.unknown_tagged_fields = tags(v, 4);
    r
}

fn alter_configs(v: i16, n: Counts) -> AlterConfigsRequest {
    let mut r = AlterConfigsRequest::default();
    r.resources = vec_of(n, "resources", |i| {
        let mut res = alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = s(format!("topic-{i}"));
        res.configs = vec_of(n, "resources.configs", |c| {
            let mut cfg = alter_configs_request::AlterableConfig::default();
            cfg.name = s(format!("config.{c}"));
            cfg.value = (c % 2 == 0).then(|| s("1000"));
            cfg.unknown_tagged_fields = tags(v, 2);
            cfg
        });
        res.unknown_tagged_fields = tags(v, 2);
        res
    });
    r.validate_only = true;
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn incremental_alter_configs(v: i16, n: Counts) -> IncrementalAlterConfigsRequest {
    let mut r = IncrementalAlterConfigsRequest::default();
    r.resources = vec_of(n, "resources", |i| {
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = s(format!("topic-{i}"));
        res.configs = vec_of(n, "resources.configs", |c| {
            let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
            cfg.name = s(format!("config.{c}"));
            cfg.config_operation = (c % 4) as i8;
            cfg.value = (c % 2 == 0).then(|| s("1000"));
            cfg.unknown_tagged_fields = tags(v, 1);
            cfg
        });
        res.unknown_tagged_fields = tags(v, 1);
        res
    });
    r.validate_only = true;
    r.unknown_tagged_fields = tags(v, 1);
    r
}

fn describe_cluster(v: i16, _n: Counts) -> DescribeClusterRequest {
    let mut r = DescribeClusterRequest::default();
    r.include_cluster_authorized_operations = true;
    if v >= 1 {
        r.endpoint_type = 2;
    }
    r.unknown_tagged_fields = tags(v, 0);
    r
}

fn describe_log_dirs(v: i16, n: Counts) -> DescribeLogDirsRequest {
    let mut r = DescribeLogDirsRequest::default();
    r.topics = opt_vec_of(n, "topics", |i| {
        let mut t = DescribableLogDirTopic::default();
        t.topic = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| p as i32);
        t.unknown_tagged_fields = tags(v, 2);
        t
    });
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn elect_leaders(v: i16, n: Counts) -> ElectLeadersRequest {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    let mut r = ElectLeadersRequest::default();
    if v >= 1 {
        r.election_type = 1;
    }
    r.topic_partitions = opt_vec_of(n, "topic_partitions", |i| {
        let mut t = TopicPartitions::default();
        t.topic = topic(i);
        t.partitions = vec_of(n, "topic_partitions.partitions", |p| p as i32);
        t.unknown_tagged_fields = tags(v, 2);
        t
    });
    r.timeout_ms = 30_000;
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn describe_producers(v: i16, n: Counts) -> DescribeProducersRequest {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let mut r = DescribeProducersRequest::default();
    r.topics = vec_of(n, "topics", |i| {
        let mut t = TopicRequest::default();
        t.name = topic(i);
        t.partition_indexes = vec_of(n, "topics.partition_indexes", |p| p as i32);
        t.unknown_tagged_fields = tags(v, 0);
        t
    });
    r.unknown_tagged_fields = tags(v, 0);
    r
}

fn describe_topic_partitions(v: i16, n: Counts) -> DescribeTopicPartitionsRequest {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let mut r = DescribeTopicPartitionsRequest::default();
    r.topics = vec_of(n, "topics", |i| {
        let mut t = TopicRequest::default();
        t.name = topic(i);
        t.unknown_tagged_fields = tags(v, 0);
        t
    });
    r.response_partition_limit = 2000;
    // A nullable struct, present (its null marker is covered by the
    // single-byte mutations).
    let _ = n;
    let mut c = Cursor::default();
    c.topic_name = topic(0);
    c.partition_index = 7;
    c.unknown_tagged_fields = tags(v, 0);
    r.cursor = Some(c);
    r.unknown_tagged_fields = tags(v, 0);
    r
}

fn describe_quorum(v: i16, n: Counts) -> DescribeQuorumRequest {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    let mut r = DescribeQuorumRequest::default();
    r.topics = vec_of(n, "topics", |i| {
        let mut t = TopicData::default();
        t.topic_name = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut d = PartitionData::default();
            d.partition_index = p as i32;
            d.unknown_tagged_fields = tags(v, 0);
            d
        });
        t.unknown_tagged_fields = tags(v, 0);
        t
    });
    r.unknown_tagged_fields = tags(v, 0);
    r
}

fn produce(v: i16, n: Counts) -> ProduceRequest {
    let mut r = ProduceRequest::default();
    r.transactional_id = Some(TransactionalId(s("txn-1")));
    r.acks = -1;
    r.timeout_ms = 30_000;
    r.topic_data = vec_of(n, "topic_data", |i| {
        let mut t = TopicProduceData::default();
        t.name = topic(i);
        t.partition_data = vec_of(n, "topic_data.partition_data", |p| {
            let mut pd = PartitionProduceData::default();
            pd.index = p as i32;
            pd.records = (p != 2).then(|| records(p));
            pd.unknown_tagged_fields = tags(v, 9);
            pd
        });
        t.unknown_tagged_fields = tags(v, 9);
        t
    });
    r.unknown_tagged_fields = tags(v, 9);
    r
}

fn init_producer_id(v: i16, _n: Counts) -> InitProducerIdRequest {
    let mut r = InitProducerIdRequest::default();
    r.transactional_id = Some(TransactionalId(s("txn-7")));
    r.transaction_timeout_ms = 60_000;
    if v >= 3 {
        r.producer_id = ProducerId(42);
        r.producer_epoch = 3;
    }
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn fetch(v: i16, n: Counts) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.max_wait_ms = 500;
    r.min_bytes = 1;
    r.max_bytes = 52_428_800;
    r.isolation_level = 1;
    if v >= 7 {
        r.session_id = 7;
        r.session_epoch = 2;
    }
    r.topics = vec_of(n, "topics", |i| {
        let mut t = FetchTopic::default();
        t.topic = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut fp = FetchPartition::default();
            fp.partition = p as i32;
            fp.current_leader_epoch = 5;
            fp.fetch_offset = 1000 + p as i64;
            if v >= 12 {
                fp.last_fetched_epoch = 4;
            }
            fp.log_start_offset = 0;
            fp.partition_max_bytes = 1_048_576;
            fp.unknown_tagged_fields = tags(v, 12);
            fp
        });
        t.unknown_tagged_fields = tags(v, 12);
        t
    });
    if v >= 7 {
        r.forgotten_topics_data = vec_of(n, "forgotten_topics_data", |i| {
            let mut f = ForgottenTopic::default();
            f.topic = topic(10 + i);
            f.partitions = vec_of(n, "forgotten_topics_data.partitions", |p| p as i32);
            f.unknown_tagged_fields = tags(v, 12);
            f
        });
    }
    if v >= 11 {
        r.rack_id = s("rack-a");
    }
    if v >= 12 {
        // A known tagged field (tag 0).
        r.cluster_id = Some(s("cluster-xyz"));
    }
    r.unknown_tagged_fields = tags(v, 12);
    r
}

fn list_offsets(v: i16, n: Counts) -> ListOffsetsRequest {
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    if v >= 2 {
        r.isolation_level = 1;
    }
    r.topics = vec_of(n, "topics", |i| {
        let mut t = ListOffsetsTopic::default();
        t.name = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut lp = ListOffsetsPartition::default();
            lp.partition_index = p as i32;
            lp.current_leader_epoch = 3;
            lp.timestamp = -1 - (p as i64 % 2);
            lp.unknown_tagged_fields = tags(v, 6);
            lp
        });
        t.unknown_tagged_fields = tags(v, 6);
        t
    });
    r.unknown_tagged_fields = tags(v, 6);
    r
}

fn delete_records(v: i16, n: Counts) -> DeleteRecordsRequest {
    let mut r = DeleteRecordsRequest::default();
    r.topics = vec_of(n, "topics", |i| {
        let mut t = DeleteRecordsTopic::default();
        t.name = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut dp = DeleteRecordsPartition::default();
            dp.partition_index = p as i32;
            dp.offset = 77;
            dp.unknown_tagged_fields = tags(v, 2);
            dp
        });
        t.unknown_tagged_fields = tags(v, 2);
        t
    });
    r.timeout_ms = 1000;
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn offset_for_leader_epoch(v: i16, n: Counts) -> OffsetForLeaderEpochRequest {
    let mut r = OffsetForLeaderEpochRequest::default();
    if v >= 3 {
        r.replica_id = BrokerId(-1);
    }
    r.topics = vec_of(n, "topics", |i| {
        let mut t = OffsetForLeaderTopic::default();
        t.topic = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut op = OffsetForLeaderPartition::default();
            op.partition = p as i32;
            op.current_leader_epoch = 9;
            op.leader_epoch = 8;
            op.unknown_tagged_fields = tags(v, 4);
            op
        });
        t.unknown_tagged_fields = tags(v, 4);
        t
    });
    r.unknown_tagged_fields = tags(v, 4);
    r
}

fn find_coordinator(v: i16, n: Counts) -> FindCoordinatorRequest {
    let mut r = FindCoordinatorRequest::default();
    if v <= 3 {
        r.key = s("group-0");
    }
    if v >= 1 {
        r.key_type = 1;
    }
    if v >= 4 {
        r.coordinator_keys = vec_of(n, "coordinator_keys", |i| s(format!("group-{i}")));
    }
    r.unknown_tagged_fields = tags(v, 3);
    r
}

fn join_group(v: i16, n: Counts) -> JoinGroupRequest {
    let mut r = JoinGroupRequest::default();
    r.group_id = group(0);
    r.session_timeout_ms = 45_000;
    r.rebalance_timeout_ms = 300_000;
    r.member_id = s("member-1");
    if v >= 5 {
        r.group_instance_id = Some(s("instance-1"));
    }
    r.protocol_type = s("consumer");
    r.protocols = vec_of(n, "protocols", |i| {
        let mut p = JoinGroupRequestProtocol::default();
        p.name = s(["range", "roundrobin", "cooperative-sticky"][i % 3]);
        p.metadata = Bytes::from(vec![0, 3, 0, 0, 0, 1, 0, 5, b't', b'o', b'p', b'i', b'c']);
        p.unknown_tagged_fields = tags(v, 6);
        p
    });
    if v >= 8 {
        r.reason = Some(s("rebalance needed"));
    }
    r.unknown_tagged_fields = tags(v, 6);
    r
}

fn sync_group(v: i16, n: Counts) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = group(1);
    r.generation_id = 4;
    r.member_id = s("member-1");
    if v >= 3 {
        r.group_instance_id = Some(s("instance-1"));
    }
    if v >= 5 {
        r.protocol_type = Some(s("consumer"));
        r.protocol_name = Some(s("range"));
    }
    r.assignments = vec_of(n, "assignments", |i| {
        let mut a = SyncGroupRequestAssignment::default();
        a.member_id = s(format!("member-{i}"));
        a.assignment = Bytes::from(vec![0, 3, 0, 0, 0, 1, i as u8]);
        a.unknown_tagged_fields = tags(v, 4);
        a
    });
    r.unknown_tagged_fields = tags(v, 4);
    r
}

fn heartbeat(v: i16, _n: Counts) -> HeartbeatRequest {
    let mut r = HeartbeatRequest::default();
    r.group_id = group(2);
    r.generation_id = 9;
    r.member_id = s("member-2");
    if v >= 3 {
        r.group_instance_id = Some(s("instance-2"));
    }
    r.unknown_tagged_fields = tags(v, 4);
    r
}

fn leave_group(v: i16, n: Counts) -> LeaveGroupRequest {
    let mut r = LeaveGroupRequest::default();
    r.group_id = group(3);
    if v <= 2 {
        r.member_id = s("member-3");
    } else {
        r.members = vec_of(n, "members", |i| {
            let mut m = MemberIdentity::default();
            m.member_id = s(format!("member-{i}"));
            m.group_instance_id = (i % 2 == 0).then(|| s(format!("instance-{i}")));
            if v >= 5 {
                m.reason = Some(s("shutting down"));
            }
            m.unknown_tagged_fields = tags(v, 4);
            m
        });
    }
    r.unknown_tagged_fields = tags(v, 4);
    r
}

fn offset_commit(v: i16, n: Counts) -> OffsetCommitRequest {
    let mut r = OffsetCommitRequest::default();
    r.group_id = group(4);
    r.generation_id_or_member_epoch = 6;
    r.member_id = s("member-4");
    if v >= 7 {
        r.group_instance_id = Some(s("instance-4"));
    }
    if v <= 4 {
        r.retention_time_ms = 86_400_000;
    }
    r.topics = vec_of(n, "topics", |i| {
        let mut t = OffsetCommitRequestTopic::default();
        t.name = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut op = OffsetCommitRequestPartition::default();
            op.partition_index = p as i32;
            op.committed_offset = 500 + p as i64;
            if v >= 6 {
                op.committed_leader_epoch = 2;
            }
            op.committed_metadata = (p % 2 == 0).then(|| s("meta"));
            op.unknown_tagged_fields = tags(v, 8);
            op
        });
        t.unknown_tagged_fields = tags(v, 8);
        t
    });
    r.unknown_tagged_fields = tags(v, 8);
    r
}

fn offset_fetch(v: i16, n: Counts) -> OffsetFetchRequest {
    let mut r = OffsetFetchRequest::default();
    if v <= 7 {
        r.group_id = group(5);
        r.topics = opt_vec_of(n, "topics", |i| {
            let mut t = OffsetFetchRequestTopic::default();
            t.name = topic(i);
            t.partition_indexes = vec_of(n, "topics.partition_indexes", |p| p as i32);
            t.unknown_tagged_fields = tags(v, 6);
            t
        });
    } else {
        r.groups = vec_of(n, "groups", |g| {
            let mut grp = OffsetFetchRequestGroup::default();
            grp.group_id = group(g);
            if v >= 9 {
                grp.member_id = Some(s("member-5"));
                grp.member_epoch = 11;
            }
            grp.topics = opt_vec_of(n, "groups.topics", |i| {
                let mut t = OffsetFetchRequestTopics::default();
                t.name = topic(i);
                t.partition_indexes = vec_of(n, "groups.topics.partition_indexes", |p| p as i32);
                t.unknown_tagged_fields = tags(v, 6);
                t
            });
            grp.unknown_tagged_fields = tags(v, 6);
            grp
        });
    }
    if v >= 7 {
        r.require_stable = true;
    }
    r.unknown_tagged_fields = tags(v, 6);
    r
}

fn describe_groups(v: i16, n: Counts) -> DescribeGroupsRequest {
    let mut r = DescribeGroupsRequest::default();
    r.groups = vec_of(n, "groups", group);
    if v >= 3 {
        r.include_authorized_operations = true;
    }
    r.unknown_tagged_fields = tags(v, 5);
    r
}

fn list_groups(v: i16, n: Counts) -> ListGroupsRequest {
    let mut r = ListGroupsRequest::default();
    if v >= 4 {
        r.states_filter = vec_of(
            n,
            "states_filter",
            |i| s(["Stable", "Empty", "Dead"][i % 3]),
        );
    }
    if v >= 5 {
        r.types_filter = vec_of(n, "types_filter", |i| s(["classic", "consumer"][i % 2]));
    }
    r.unknown_tagged_fields = tags(v, 3);
    r
}

fn delete_groups(v: i16, n: Counts) -> DeleteGroupsRequest {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names = vec_of(n, "groups_names", group);
    r.unknown_tagged_fields = tags(v, 2);
    r
}

fn offset_delete(_v: i16, n: Counts) -> OffsetDeleteRequest {
    let mut r = OffsetDeleteRequest::default();
    r.group_id = group(6);
    r.topics = vec_of(n, "topics", |i| {
        let mut t = OffsetDeleteRequestTopic::default();
        t.name = topic(i);
        t.partitions = vec_of(n, "topics.partitions", |p| {
            let mut op = OffsetDeleteRequestPartition::default();
            op.partition_index = p as i32;
            op
        });
        t
    });
    r
}

// ---------------------------------------------------------------------------
// The table of APIs under test.

/// Bytes read by the crate and the request re-encoded, or the crate's error.
type Decoded = Result<(usize, Vec<u8>), String>;

#[derive(Clone, Copy)]
struct Api {
    name: &'static str,
    key: i16,
    min: i16,
    max: i16,
    /// First flexible version (i16::MAX: none).
    flexible: i16,
    /// Builds with the given counts and encodes at the version.
    build: fn(i16, Counts) -> Vec<u8>,
    /// Encodes `Default::default()` at the version.
    default: fn(i16) -> Vec<u8>,
    /// Decodes with the crate; returns the bytes it read and the request
    /// re-encoded.
    decode: fn(i16, &[u8]) -> Decoded,
}

fn encode<R: Encodable>(r: &R, v: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    r.encode(&mut buf, v)
        .unwrap_or_else(|e| panic!("encoding at v{v}: {e:#}"));
    buf.to_vec()
}

fn decode_reencode<R: Decodable + Encodable>(v: i16, body: &[u8]) -> Decoded {
    let mut b = Bytes::copy_from_slice(body);
    let r = R::decode(&mut b, v).map_err(|e| format!("{e:#}"))?;
    let read = body.len() - b.len();
    let mut out = BytesMut::new();
    r.encode(&mut out, v).map_err(|e| format!("{e:#}"))?;
    Ok((read, out.to_vec()))
}

macro_rules! api {
    ($name:literal, $ty:ty, $build:ident, $min:literal, $max:literal, $flex:expr) => {
        Api {
            name: $name,
            key: <$ty as Request>::KEY,
            min: $min,
            max: $max,
            flexible: $flex,
            build: |v, n| encode(&$build(v, n), v),
            default: |v| encode(&<$ty>::default(), v),
            decode: decode_reencode::<$ty>,
        }
    };
}

const NEVER: i16 = i16::MAX;

fn apis() -> Vec<Api> {
    vec![
        api!("ApiVersions", ApiVersionsRequest, api_versions, 0, 4, 3),
        api!(
            "SaslHandshake",
            SaslHandshakeRequest,
            sasl_handshake,
            0,
            1,
            i16::MAX
        ),
        api!(
            "SaslAuthenticate",
            SaslAuthenticateRequest,
            sasl_authenticate,
            0,
            2,
            2
        ),
        api!(
            "DescribeUserScramCredentials",
            DescribeUserScramCredentialsRequest,
            describe_user_scram_credentials,
            0,
            0,
            0
        ),
        api!(
            "DescribeClientQuotas",
            DescribeClientQuotasRequest,
            describe_client_quotas,
            0,
            1,
            1
        ),
        api!(
            "AlterUserScramCredentials",
            AlterUserScramCredentialsRequest,
            alter_user_scram_credentials,
            0,
            0,
            0
        ),
        api!("CreateAcls", CreateAclsRequest, create_acls, 1, 3, 2),
        api!("DescribeAcls", DescribeAclsRequest, describe_acls, 1, 3, 2),
        api!("DeleteAcls", DeleteAclsRequest, delete_acls, 1, 3, 2),
        api!("Metadata", MetadataRequest, metadata, 0, 12, 9),
        api!("CreateTopics", CreateTopicsRequest, create_topics, 2, 7, 5),
        api!("DeleteTopics", DeleteTopicsRequest, delete_topics, 1, 6, 4),
        api!(
            "CreatePartitions",
            CreatePartitionsRequest,
            create_partitions,
            0,
            3,
            2
        ),
        api!(
            "DescribeConfigs",
            DescribeConfigsRequest,
            describe_configs,
            1,
            4,
            4
        ),
        api!("AlterConfigs", AlterConfigsRequest, alter_configs, 0, 2, 2),
        api!(
            "IncrementalAlterConfigs",
            IncrementalAlterConfigsRequest,
            incremental_alter_configs,
            0,
            1,
            1
        ),
        api!(
            "DescribeCluster",
            DescribeClusterRequest,
            describe_cluster,
            0,
            1,
            0
        ),
        api!(
            "DescribeLogDirs",
            DescribeLogDirsRequest,
            describe_log_dirs,
            1,
            4,
            2
        ),
        api!(
            "DescribeQuorum",
            DescribeQuorumRequest,
            describe_quorum,
            0,
            2,
            0
        ),
        api!("ElectLeaders", ElectLeadersRequest, elect_leaders, 0, 2, 2),
        api!(
            "DescribeProducers",
            DescribeProducersRequest,
            describe_producers,
            0,
            0,
            0
        ),
        api!(
            "DescribeTopicPartitions",
            DescribeTopicPartitionsRequest,
            describe_topic_partitions,
            0,
            0,
            0
        ),
        api!("Produce", ProduceRequest, produce, 3, 12, 9),
        api!(
            "InitProducerId",
            InitProducerIdRequest,
            init_producer_id,
            0,
            4,
            2
        ),
        api!("Fetch", FetchRequest, fetch, 4, 12, 12),
        api!("ListOffsets", ListOffsetsRequest, list_offsets, 1, 7, 6),
        api!(
            "DeleteRecords",
            DeleteRecordsRequest,
            delete_records,
            0,
            2,
            2
        ),
        api!(
            "OffsetForLeaderEpoch",
            OffsetForLeaderEpochRequest,
            offset_for_leader_epoch,
            2,
            4,
            4
        ),
        api!(
            "FindCoordinator",
            FindCoordinatorRequest,
            find_coordinator,
            0,
            4,
            3
        ),
        api!("JoinGroup", JoinGroupRequest, join_group, 0, 9, 6),
        api!("SyncGroup", SyncGroupRequest, sync_group, 0, 5, 4),
        api!("Heartbeat", HeartbeatRequest, heartbeat, 0, 4, 4),
        api!("LeaveGroup", LeaveGroupRequest, leave_group, 0, 5, 4),
        api!("OffsetCommit", OffsetCommitRequest, offset_commit, 2, 9, 8),
        api!("OffsetFetch", OffsetFetchRequest, offset_fetch, 1, 9, 6),
        api!(
            "DescribeGroups",
            DescribeGroupsRequest,
            describe_groups,
            0,
            5,
            5
        ),
        api!("ListGroups", ListGroupsRequest, list_groups, 0, 5, 3),
        api!("DeleteGroups", DeleteGroupsRequest, delete_groups, 0, 2, 2),
        api!(
            "OffsetDelete",
            OffsetDeleteRequest,
            offset_delete,
            0,
            0,
            NEVER
        ),
    ]
}

fn every_version() -> Vec<(Api, i16)> {
    apis()
        .into_iter()
        .flat_map(|a| (a.min..=a.max).map(move |v| (a, v)))
        .collect()
}

fn api(name: &str) -> Api {
    apis().into_iter().find(|a| a.name == name).unwrap()
}

fn all(c: usize) -> impl Fn(&'static str) -> usize {
    move |_| c
}

/// The guard must accept `body`, consume all of it, and the crate must
/// decode it back to the same bytes.
fn assert_roundtrip(api: &Api, v: i16, body: &[u8], what: &str) {
    let len = checked_body_len(api.key, v, body)
        .unwrap_or_else(|e| panic!("{} v{v} {what}: guard rejected a valid body: {e}", api.name));
    assert_eq!(
        len,
        body.len(),
        "{} v{v} {what}: guard consumed {len} of {} bytes",
        api.name,
        body.len()
    );
    let (read, again) = (api.decode)(v, body)
        .unwrap_or_else(|e| panic!("{} v{v} {what}: crate failed to decode: {e}", api.name));
    assert_eq!(read, body.len(), "{} v{v} {what}: crate read", api.name);
    assert_eq!(again, body, "{} v{v} {what}: re-encoding differs", api.name);
}

// ---------------------------------------------------------------------------
// Layouts match the crate.

#[test]
fn supported_apis_are_exactly_the_listed_ones() {
    let want: BTreeSet<(i16, i16, i16)> = apis().iter().map(|a| (a.key, a.min, a.max)).collect();
    let got: BTreeSet<(i16, i16, i16)> = supported_apis().collect();
    assert_eq!(got, want);
    for api in apis() {
        assert_eq!(supported_versions(api.key), Some((api.min, api.max)));
        for v in [api.min - 1, api.max + 1, -1, i16::MAX] {
            assert_eq!(
                check_request_body(api.key, v, &[0; 64]),
                Err(GuardError::UnsupportedApi {
                    key: api.key,
                    version: v
                }),
                "{} v{v}",
                api.name
            );
        }
    }
    // Known to the crate, not to the guard.
    for key in [4, 5, 6, 7, 24, 25, 26, 49, 68, -1, 1000] {
        assert_eq!(supported_versions(key), None);
        assert!(matches!(
            check_request_body(key, 0, &[]),
            Err(GuardError::UnsupportedApi { .. })
        ));
    }
}

#[test]
fn every_version_roundtrips_with_filled_requests() {
    let mut checked = 0;
    for (api, v) in every_version() {
        for c in [1, 2, 3] {
            let body = (api.build)(v, &all(c));
            assert_roundtrip(&api, v, &body, &format!("{c} elements"));
            checked += 1;
        }
    }
    assert_eq!(checked, 3 * every_version().len());
}

#[test]
fn every_version_roundtrips_with_empty_null_and_default_requests() {
    for (api, v) in every_version() {
        assert_roundtrip(&api, v, &(api.build)(v, &all(0)), "empty arrays");
        assert_roundtrip(&api, v, &(api.build)(v, &all(NULL)), "null arrays");
        assert_roundtrip(&api, v, &(api.default)(v), "default");
        // Nested arrays empty under filled outer ones.
        let outer_only = |p: &'static str| if p.contains('.') { 0 } else { 2 };
        assert_roundtrip(&api, v, &(api.build)(v, &outer_only), "outer arrays only");
        let inner_null = |p: &'static str| if p.contains('.') { NULL } else { 2 };
        assert_roundtrip(&api, v, &(api.build)(v, &inner_null), "inner null arrays");
    }
}

#[test]
fn version_count_matches_the_brief() {
    let per_api = [
        5, 2, 3, 1, 2, 1, 3, 3, 3, 13, 6, 6, 4, 4, 3, 2, 2, 4, 10, 5, 9, 7, 3, 3, 5, 10, 6, 5, 6,
        8, 9, 6, 6, 3, 1, 3, 1, 1, 3,
    ];
    assert_eq!(apis().len(), 39);
    assert_eq!(every_version().len(), per_api.iter().sum::<usize>());
    assert_eq!(every_version().len(), 177);
}

#[test]
fn array_elements_are_counted() {
    let body = encode(&produce(9, &all(2)), 9);
    let stats = inspect_request_body(0, 9, &body).unwrap();
    assert_eq!(stats.body_len, body.len());
    assert_eq!(stats.array_elements, 2 + 2 * 2);
    // Two unknown tagged fields in the request, each topic and partition.
    assert_eq!(stats.tagged_fields, 2 * (1 + 2 + 2 * 2));
    let body = encode(&create_topics(5, &all(3)), 5);
    // 3 topics, each 3 assignments of 3 brokers and 3 configs.
    let stats = inspect_request_body(19, 5, &body).unwrap();
    assert_eq!(stats.array_elements, 3 + 3 * (3 + 3 * 3 + 3));
}

#[test]
fn trailing_bytes_are_allowed_and_reported() {
    for (api, v) in every_version() {
        let mut body = (api.build)(v, &all(2));
        let len = body.len();
        body.extend_from_slice(b"trailing");
        assert_eq!(
            checked_body_len(api.key, v, &body),
            Ok(len),
            "{} v{v}",
            api.name
        );
    }
}

#[test]
fn known_tagged_field_is_walked_inside_its_size() {
    let n = all(1);
    let body = encode(&fetch(12, &n), 12);
    assert_eq!(checked_body_len(1, 12, &body), Ok(body.len()));
    // The request's tagged section is at the end: count 3 (cluster_id, 100,
    // 300), then tag 0, size 12, compact string of 11 bytes ...
    let cid = body
        .windows(3)
        .rposition(|w| w == [0, 12, 12])
        .expect("cluster_id tag");
    assert_eq!(&body[cid + 3..cid + 14], b"cluster-xyz");
    // A size that does not match the string's own length is rejected (the
    // crate would read the string and lose step with the size).
    let mut bad = body.clone();
    bad[cid + 1] = 13;
    assert!(matches!(
        check_request_body(1, 12, &bad),
        Err(GuardError::TaggedFieldSize { tag: 0, .. }) | Err(GuardError::LengthTooLong { .. })
    ));
    let mut bad = body.clone();
    bad[cid + 2] = 13; // the string claims one more byte than the tag holds
    assert!(check_request_body(1, 12, &bad).is_err());
    // Tag 1 (replica_state) is only valid from v15: the crate rejects it.
    let mut bad = body.clone();
    bad[cid] = 1;
    assert!(matches!(
        check_request_body(1, 12, &bad),
        Err(GuardError::TaggedFieldNotValid {
            tag: 1,
            version: 12,
            ..
        })
    ));
    assert!(FetchRequest::decode(&mut Bytes::from(bad), 12).is_err());
}

// ---------------------------------------------------------------------------
// Array counts.

/// Array paths the builder fills for this version.
fn array_paths(api: &Api, v: i16) -> BTreeSet<&'static str> {
    let seen = RefCell::new(BTreeSet::new());
    let record = |p: &'static str| {
        seen.borrow_mut().insert(p);
        2
    };
    (api.build)(v, &record);
    seen.into_inner()
}

/// Offset of the first instance of array `path`'s count, found by encoding
/// with 1 and 2 elements there (2 everywhere else) and diffing.
fn count_offset(api: &Api, v: i16, path: &'static str) -> usize {
    let one = (api.build)(v, &|p| if p == path { 1 } else { 2 });
    let two = (api.build)(v, &all(2));
    let diff = one
        .iter()
        .zip(&two)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| panic!("{} v{v}: {path} is not on the wire", api.name));
    if v >= api.flexible {
        assert_eq!((one[diff], two[diff]), (2, 3), "{} v{v} {path}", api.name);
        diff
    } else {
        let at = diff - 3;
        assert_eq!(&one[at..at + 4], &[0, 0, 0, 1], "{} v{v} {path}", api.name);
        assert_eq!(&two[at..at + 4], &[0, 0, 0, 2], "{} v{v} {path}", api.name);
        at
    }
}

/// Replaces the count at `at` (as found in the 2-element body) by `count`.
fn patch_count(body: &[u8], at: usize, flexible: bool, count: u32) -> Vec<u8> {
    let mut out = body[..at].to_vec();
    let rest = if flexible {
        assert_eq!(body[at], 3);
        let mut v = count.wrapping_add(1);
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        &body[at + 1..]
    } else {
        out.put_i32(count as i32);
        &body[at + 4..]
    };
    out.extend_from_slice(rest);
    out
}

fn assert_array_too_long(api: &Api, v: i16, body: &[u8], path: &str, what: &str) {
    let leaf = path.rsplit('.').next().unwrap();
    match check_request_body(api.key, v, body) {
        Err(GuardError::ArrayTooLong { field, .. }) => assert!(
            field.ends_with(leaf) && field.contains(path.split('.').next().unwrap()),
            "{} v{v} {path} {what}: error names {field}",
            api.name
        ),
        other => panic!(
            "{} v{v} {path} {what}: expected ArrayTooLong, got {other:?}",
            api.name
        ),
    }
}

#[test]
fn huge_array_counts_are_rejected_for_every_array_in_every_version() {
    let mut patched = 0;
    for (api, v) in every_version() {
        let flexible = v >= api.flexible;
        let body = (api.build)(v, &all(2));
        for path in array_paths(&api, v) {
            let at = count_offset(&api, v, path);
            let bad = patch_count(&body, at, flexible, 0x7fff_ffff);
            assert_array_too_long(&api, v, &bad, path, "0x7fffffff");
            if flexible {
                // The largest compact count: varint 0xffffffff.
                let bad = patch_count(&body, at, flexible, u32::MAX - 1);
                assert_array_too_long(&api, v, &bad, path, "u32::MAX - 1");
            }
            // Just one element more than there are bytes left.
            let remaining = (body.len() - at - if flexible { 1 } else { 4 }) as u32;
            let bad = patch_count(&body, at, flexible, remaining + 1);
            assert_array_too_long(&api, v, &bad, path, "remaining + 1");
            // Negative counts other than null.
            if !flexible {
                let bad = patch_count(&body, at, false, -2i32 as u32);
                assert!(
                    matches!(
                        check_request_body(api.key, v, &bad),
                        Err(GuardError::NegativeLength { length: -2, .. })
                    ),
                    "{} v{v} {path}",
                    api.name
                );
            }
            patched += 1;
        }
    }
    // Every API but ApiVersions, DescribeCluster, Heartbeat,
    // InitProducerId and the SASL ones has arrays.
    eprintln!("patched {patched} array counts");
    assert!(patched > 200, "{patched}");
}

#[test]
fn representative_apis_have_the_expected_arrays() {
    let expect = [
        (
            "Produce",
            3,
            &["topic_data", "topic_data.partition_data"][..],
        ),
        (
            "Produce",
            9,
            &["topic_data", "topic_data.partition_data"][..],
        ),
        (
            "Produce",
            12,
            &["topic_data", "topic_data.partition_data"][..],
        ),
        ("Fetch", 4, &["topics", "topics.partitions"][..]),
        (
            "Fetch",
            12,
            &[
                "forgotten_topics_data",
                "forgotten_topics_data.partitions",
                "topics",
                "topics.partitions",
            ][..],
        ),
        ("Metadata", 1, &["topics"][..]),
        ("Metadata", 12, &["topics"][..]),
        (
            "CreateTopics",
            5,
            &[
                "topics",
                "topics.assignments",
                "topics.assignments.broker_ids",
                "topics.configs",
            ][..],
        ),
        ("OffsetCommit", 8, &["topics", "topics.partitions"][..]),
        ("JoinGroup", 6, &["protocols"][..]),
    ];
    for (name, v, paths) in expect {
        let got: Vec<_> = array_paths(&api(name), v).into_iter().collect();
        assert_eq!(got, paths, "{name} v{v}");
    }
}

#[test]
fn null_only_where_the_crate_accepts_it() {
    // Produce topic_data is not nullable: count -1 (or compact 0) is rejected.
    for v in [3, 8, 9, 12] {
        let flexible = v >= 9;
        let body = encode(&produce(v, &all(2)), v);
        let at = count_offset(&api("Produce"), v, "topic_data");
        let mut bad = body[..at].to_vec();
        if flexible {
            bad.push(0);
            bad.extend_from_slice(&body[at + 1..]);
        } else {
            bad.put_i32(-1);
            bad.extend_from_slice(&body[at + 4..]);
        }
        assert!(
            matches!(
                check_request_body(0, v, &bad),
                Err(GuardError::UnexpectedNull { .. })
            ),
            "v{v}"
        );
        assert!(ProduceRequest::decode(&mut Bytes::from(bad), v).is_err());
    }
    // Metadata topics is nullable.
    for v in 0..=12 {
        let body = encode(&metadata(v, &all(NULL)), v);
        assert_eq!(checked_body_len(3, v, &body), Ok(body.len()));
    }
}

// ---------------------------------------------------------------------------
// Truncation.

#[test]
fn every_truncation_is_rejected() {
    let mut cuts = 0;
    for (api, v) in every_version() {
        for c in [1, 2] {
            let body = (api.build)(v, &all(c));
            for len in 0..body.len() {
                let cut = &body[..len];
                match check_request_body(api.key, v, cut) {
                    Err(GuardError::Truncated { .. })
                    | Err(GuardError::LengthTooLong { .. })
                    | Err(GuardError::ArrayTooLong { .. }) => {}
                    Err(e) => panic!("{} v{v} cut at {len}: unexpected {e}", api.name),
                    Ok(()) => panic!("{} v{v}: accepted a body cut at {len}", api.name),
                }
                crate_agrees_with_rejection(&api, v, cut);
                cuts += 1;
            }
        }
    }
    eprintln!("{cuts} truncations rejected");
    assert!(cuts > 10_000, "{cuts}");
}

#[test]
fn error_messages_name_the_field() {
    let body = encode(&produce(9, &all(2)), 9);
    // The last 39 bytes are three tagged sections (request, topic 1,
    // partition 1; 13 bytes each): cutting 40 ends inside partition 1's records.
    let cut = &body[..body.len() - 40];
    let msg = check_request_body(0, 9, cut).unwrap_err().to_string();
    assert!(
        msg.starts_with("ProduceRequest.topic_data[1].partition_data[1].records: length "),
        "{msg}"
    );
    let at = count_offset(&api("Produce"), 9, "topic_data.partition_data");
    let bad = patch_count(&body, at, true, 0x7fff_ffff);
    let msg = check_request_body(0, 9, &bad).unwrap_err().to_string();
    assert!(
        msg.starts_with("ProduceRequest.topic_data[0].partition_data: array of 2147483647"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------
// Varints and lengths.

#[test]
fn overlong_varints_and_lengths_are_rejected() {
    // Produce v9: compact nullable transactional_id first.
    let mut body = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    body.extend_from_slice(&[0; 32]);
    assert!(matches!(
        check_request_body(0, 9, &body),
        Err(GuardError::MalformedVarint { .. })
    ));
    // String longer than what is left.
    let body = [0x7f, 0xff, b'a'];
    assert!(matches!(
        check_request_body(0, 3, &body),
        Err(GuardError::LengthTooLong { length: 32767, .. })
    ));
    // Negative string length other than null.
    let body = [0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        check_request_body(0, 3, &body),
        Err(GuardError::NegativeLength { length: -2, .. })
    ));
    // Non-nullable string null: JoinGroup group_id.
    let body = [0xff, 0xff, 0, 0, 0, 0];
    assert!(matches!(
        check_request_body(11, 0, &body),
        Err(GuardError::UnexpectedNull { .. })
    ));
    // A tagged field count far beyond the body, each entry cut short.
    let body = [0x01, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(check_request_body(60, 0, &body).is_err());
    // Tagged field size past the end.
    let body = [0x01, 0x01, 0x05, 0x7f, 0x00];
    assert!(matches!(
        check_request_body(60, 0, &body),
        Err(GuardError::LengthTooLong { length: 127, .. })
    ));
}

// ---------------------------------------------------------------------------
// Frames: header + body through the fuzz target's logic.

fn frame(key: i16, v: i16, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.put_i16(key);
    f.put_i16(v);
    f.put_i32(12345);
    f.put_i16(6);
    f.extend_from_slice(b"client");
    if flexible_header {
        f.push(0);
    }
    f.extend_from_slice(body);
    f
}

#[test]
fn frames_decode_through_the_fuzz_logic() {
    for (api, v) in every_version() {
        let body = (api.build)(v, &all(2));
        let f = frame(api.key, v, v >= api.flexible, &body);
        assert_eq!(fuzz_request_frame(&f), Ok(api.key), "{} v{v}", api.name);
        let at = array_paths(&api, v)
            .into_iter()
            .next()
            .map(|p| count_offset(&api, v, p));
        if let Some(at) = at {
            let bad = patch_count(&body, at, v >= api.flexible, 0x7fff_ffff);
            let f = frame(api.key, v, v >= api.flexible, &bad);
            assert!(matches!(
                fuzz_request_frame(&f),
                Err(FrameError::Guard(GuardError::ArrayTooLong { .. }))
            ));
        }
    }
    for short in [&[][..], &[0], &[0, 0, 0]] {
        assert_eq!(
            fuzz_request_frame(short),
            Err(FrameError::TooShort(short.len()))
        );
    }
    assert_eq!(
        fuzz_request_frame(&[0x7f, 0, 0, 0]),
        Err(FrameError::UnknownApiKey(0x7f00))
    );
    // Known to the crate, not served (no entry in the API table): never
    // decoded.
    let f = frame(24, 1, false, &[0xff; 16]);
    assert!(matches!(
        fuzz_request_frame(&f),
        Err(FrameError::UnsupportedVersion {
            key: ApiKey::AddPartitionsToTxn,
            ..
        })
    ));
}

/// Writes a seed corpus for the fuzz target: one valid frame per (api,
/// version) and element count. Run with
/// `SHARDLOG_FUZZ_SEEDS=fuzz/corpus/request_frame cargo test --test
/// protocol_guard write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes files; run by hand to seed the fuzzer"]
fn write_fuzz_seeds() {
    let dir = std::env::var("SHARDLOG_FUZZ_SEEDS").expect("SHARDLOG_FUZZ_SEEDS");
    std::fs::create_dir_all(&dir).unwrap();
    for (api, v) in every_version() {
        for c in [0, 1, 2] {
            let body = (api.build)(v, &all(c));
            let f = frame(api.key, v, v >= api.flexible, &body);
            let name = format!("{dir}/{}-v{v}-{c}", api.name);
            std::fs::write(name, f).unwrap();
        }
    }
}

/// Found by the fuzz target in seconds with the guard switched off: a
/// 14-byte DeleteGroups v0 frame whose group count (0x20640030) made the
/// crate ask for a 17 GB allocation.
#[test]
fn fuzzer_found_oom_frame_is_rejected() {
    let f = [
        0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x64, 0x00, 0x30,
    ];
    match fuzz_request_frame(&f) {
        Err(FrameError::Guard(GuardError::ArrayTooLong { field, count, .. })) => {
            assert_eq!(field, "DeleteGroupsRequest.groups_names");
            assert_eq!(count, 0x2064_0030);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decode_checked_is_zero_copy_for_records() {
    let body = Bytes::from(encode(&produce(9, &all(2)), 9));
    let mut b = body.clone();
    let req: ProduceRequest = decode_checked(9, &mut b).unwrap();
    let recs = req.topic_data[0].partition_data[0]
        .records
        .as_ref()
        .unwrap();
    let start = recs.as_ptr() as usize - body.as_ptr() as usize;
    assert!(start < body.len(), "records are a slice of the body");
    let bad = {
        let at = count_offset(&api("Produce"), 9, "topic_data");
        patch_count(&body, at, true, 0x7fff_ffff)
    };
    assert!(matches!(
        decode_checked::<ProduceRequest>(9, &mut Bytes::from(bad)),
        Err(FrameError::Guard(GuardError::ArrayTooLong { .. }))
    ));
}

// ---------------------------------------------------------------------------
// Property tests: random and mutated input never reaches the crate unless
// the guard accepts it, and then the crate decodes without panicking.

/// Guard, then (only if accepted) the crate. Where both accept, they must
/// agree on where the body ends. Returns whether the guard accepted.
fn guard_then_decode(api: &Api, v: i16, body: &[u8]) -> bool {
    match checked_body_len(api.key, v, body) {
        Ok(len) => {
            assert!(len <= body.len());
            if let Ok((read, _)) = (api.decode)(v, body) {
                assert_eq!(
                    read, len,
                    "{} v{v}: guard and crate disagree on the end",
                    api.name
                );
            }
            true
        }
        Err(_) => false,
    }
}

/// The crate reads a known tagged field's value without regard for its
/// declared size, so the guard's errors inside one (bounded by the size), or
/// about a size past the end (which may be a known tag's), have no
/// counterpart in the crate.
fn inside_known_tagged_field(e: &GuardError) -> bool {
    match e {
        GuardError::LengthTooLong { field, .. } if field.ends_with("<tagged fields>") => true,
        _ => e.to_string().contains("<tagged fields>."),
    }
}

/// Where the guard rejects for a reason the crate also checks (and stops at
/// before reaching any array the guard has not bounded), the crate must
/// reject too: the guard is not stricter than the crate there.
fn crate_agrees_with_rejection(api: &Api, v: i16, body: &[u8]) {
    match check_request_body(api.key, v, body) {
        Err(
            e @ (GuardError::Truncated { .. }
            | GuardError::LengthTooLong { .. }
            | GuardError::UnexpectedNull { .. }
            | GuardError::NegativeLength { .. }
            | GuardError::TaggedFieldNotValid { .. }),
        ) if !inside_known_tagged_field(&e) => {
            assert!(
                (api.decode)(v, body).is_err(),
                "{} v{v}: guard rejected ({e}) what the crate decodes",
                api.name
            );
        }
        // Stricter than the crate on purpose (huge arrays, 5-byte varints
        // with a continuation bit, known tagged fields whose value does not
        // fill their size), or accepted.
        _ => {}
    }
}

#[test]
fn every_single_byte_mutation_is_rejected_or_decodes() {
    let (mut tried, mut accepted) = (0, 0);
    for (api, v) in every_version() {
        let body = (api.build)(v, &all(2));
        for i in 0..body.len() {
            for b in [0x00, 0x01, 0x7f, 0x80, 0xff, body[i] ^ 0x01, body[i] ^ 0x40] {
                let mut m = body.clone();
                m[i] = b;
                tried += 1;
                if guard_then_decode(&api, v, &m) {
                    accepted += 1;
                } else {
                    crate_agrees_with_rejection(&api, v, &m);
                }
            }
            // -1 as i16 and i32 (null lengths and counts).
            for w in [2, 4] {
                if i + w <= body.len() {
                    let mut m = body.clone();
                    m[i..i + w].fill(0xff);
                    tried += 1;
                    if guard_then_decode(&api, v, &m) {
                        accepted += 1;
                    } else {
                        crate_agrees_with_rejection(&api, v, &m);
                    }
                }
            }
        }
    }
    eprintln!("{accepted} of {tried} single-byte mutations accepted and decoded");
    assert!(accepted > 0 && accepted < tried);
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Big(usize, [u8; 4]),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let big = prop_oneof![
        Just([0x7f, 0xff, 0xff, 0xff]),
        Just([0xff, 0xff, 0xff, 0xff]),
        Just([0xff, 0xff, 0xff, 0x0f]),
        Just([0x80, 0x80, 0x80, 0x80]),
        any::<[u8; 4]>(),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..6).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<usize>(), big).prop_map(|(i, b)| Mutation::Big(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(body: &mut Vec<u8>, m: &Mutation) {
    if body.is_empty() {
        if let Mutation::Insert(_, b) = m {
            body.extend_from_slice(b);
        }
        return;
    }
    let len = body.len();
    match m {
        Mutation::Set(i, b) => body[i % len] = *b,
        Mutation::Flip(i, bit) => body[i % len] ^= 1 << bit,
        Mutation::Insert(i, b) => {
            let at = i % (len + 1);
            body.splice(at..at, b.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i % len;
            body.drain(at..(at + n).min(len));
        }
        Mutation::Big(i, b) => {
            let at = i % len;
            for (k, x) in b.iter().enumerate() {
                if at + k < len {
                    body[at + k] = *x;
                }
            }
        }
        Mutation::Truncate(i) => body.truncate(i % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bodies_never_reach_the_crate_unbounded(
        which in any::<prop::sample::Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let cases = every_version();
        let (api, v) = which.get(&cases);
        if !guard_then_decode(api, *v, &body) {
            crate_agrees_with_rejection(api, *v, &body);
        }
    }

    #[test]
    fn mutated_bodies_never_reach_the_crate_unbounded(
        which in any::<prop::sample::Index>(),
        count in 0usize..4,
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let cases = every_version();
        let (api, v) = which.get(&cases);
        let mut body = (api.build)(*v, &all(count));
        for m in &mutations {
            apply(&mut body, m);
        }
        if !guard_then_decode(api, *v, &body) {
            crate_agrees_with_rejection(api, *v, &body);
        }
        // The same through the frame path (header + body).
        let f = frame(api.key, *v, *v >= api.flexible, &body);
        let _ = fuzz_request_frame(&f);
    }

    #[test]
    fn random_frames_never_panic(
        key in prop_oneof![0i16..70, any::<i16>()],
        v in prop_oneof![0i16..14, any::<i16>()],
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut f = Vec::new();
        f.put_i16(key);
        f.put_i16(v);
        f.extend_from_slice(&rest);
        let _ = fuzz_request_frame(&f);
        let _ = fuzz_request_frame(&rest);
    }
}
