//! Wire layouts of the requests the guard knows, as kafka-protocol 0.18
//! decodes them: one `Struct` per message struct, each field with the
//! versions (inclusive) in which it is on the wire, in decode order.
//!
//! Derived from the crate's generated decoders (`src/messages/*_request.rs`):
//! field order and version conditions from `Decodable::decode`, nullability
//! from the Rust field type (`Option<..>` accepts null), compactness from the
//! message's flexible versions, known tagged fields from the `match tag` arms.
//! Version ranges are the crate's; the router's API table narrows them to
//! what the broker serves. `tests/protocol_guard.rs` checks every (api, version) against the
//! crate's encoder and decoder.

use super::{f, t, Elem, Kind, Layout, Struct};

/// `flexible` for a message that has no flexible versions.
const NEVER: i16 = i16::MAX;

// ApiVersionsRequest: crate versions 0-4, flexible from 3.
const API_VERSIONS_REQUEST: Struct = Struct {
    name: "ApiVersionsRequest",
    fields: &[
        f("client_software_name", Kind::String, 3, 4),
        f("client_software_version", Kind::String, 3, 4),
    ],
    tagged: &[],
};

// SaslHandshakeRequest: crate versions 0-1, never flexible.
const SASL_HANDSHAKE_REQUEST: Struct = Struct {
    name: "SaslHandshakeRequest",
    fields: &[f("mechanism", Kind::String, 0, 1)],
    tagged: &[],
};

// SaslAuthenticateRequest: crate versions 0-2, flexible from 2.
const SASL_AUTHENTICATE_REQUEST: Struct = Struct {
    name: "SaslAuthenticateRequest",
    fields: &[f("auth_bytes", Kind::Bytes, 0, 2)],
    tagged: &[],
};

// DescribeUserScramCredentialsRequest: crate version 0, flexible from 0.
const DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST: Struct = Struct {
    name: "DescribeUserScramCredentialsRequest",
    fields: &[f(
        "users",
        Kind::NullableArray(&Elem::Struct(&USER_NAME)),
        0,
        0,
    )],
    tagged: &[],
};
const USER_NAME: Struct = Struct {
    name: "UserName",
    fields: &[f("name", Kind::String, 0, 0)],
    tagged: &[],
};

// CreateAclsRequest: crate versions 1-3, flexible from 2.
const CREATE_ACLS_REQUEST: Struct = Struct {
    name: "CreateAclsRequest",
    fields: &[f(
        "creations",
        Kind::Array(&Elem::Struct(&ACL_CREATION)),
        1,
        3,
    )],
    tagged: &[],
};
const ACL_CREATION: Struct = Struct {
    name: "AclCreation",
    fields: &[
        f("resource_type", Kind::I8, 1, 3),
        f("resource_name", Kind::String, 1, 3),
        f("resource_pattern_type", Kind::I8, 1, 3),
        f("principal", Kind::String, 1, 3),
        f("host", Kind::String, 1, 3),
        f("operation", Kind::I8, 1, 3),
        f("permission_type", Kind::I8, 1, 3),
    ],
    tagged: &[],
};

// DescribeAclsRequest: crate versions 1-3, flexible from 2.
const DESCRIBE_ACLS_REQUEST: Struct = Struct {
    name: "DescribeAclsRequest",
    fields: ACL_FILTER_FIELDS,
    tagged: &[],
};
const ACL_FILTER_FIELDS: &[super::Field] = &[
    f("resource_type_filter", Kind::I8, 1, 3),
    f("resource_name_filter", Kind::NullableString, 1, 3),
    f("pattern_type_filter", Kind::I8, 1, 3),
    f("principal_filter", Kind::NullableString, 1, 3),
    f("host_filter", Kind::NullableString, 1, 3),
    f("operation", Kind::I8, 1, 3),
    f("permission_type", Kind::I8, 1, 3),
];

// DeleteAclsRequest: crate versions 1-3, flexible from 2.
const DELETE_ACLS_REQUEST: Struct = Struct {
    name: "DeleteAclsRequest",
    fields: &[f(
        "filters",
        Kind::Array(&Elem::Struct(&DELETE_ACLS_FILTER)),
        1,
        3,
    )],
    tagged: &[],
};
const DELETE_ACLS_FILTER: Struct = Struct {
    name: "DeleteAclsFilter",
    fields: ACL_FILTER_FIELDS,
    tagged: &[],
};

// AlterUserScramCredentialsRequest: crate version 0, flexible from 0.
const ALTER_USER_SCRAM_CREDENTIALS_REQUEST: Struct = Struct {
    name: "AlterUserScramCredentialsRequest",
    fields: &[
        f(
            "deletions",
            Kind::Array(&Elem::Struct(&SCRAM_CREDENTIAL_DELETION)),
            0,
            0,
        ),
        f(
            "upsertions",
            Kind::Array(&Elem::Struct(&SCRAM_CREDENTIAL_UPSERTION)),
            0,
            0,
        ),
    ],
    tagged: &[],
};
const SCRAM_CREDENTIAL_DELETION: Struct = Struct {
    name: "ScramCredentialDeletion",
    fields: &[
        f("name", Kind::String, 0, 0),
        f("mechanism", Kind::I8, 0, 0),
    ],
    tagged: &[],
};
const SCRAM_CREDENTIAL_UPSERTION: Struct = Struct {
    name: "ScramCredentialUpsertion",
    fields: &[
        f("name", Kind::String, 0, 0),
        f("mechanism", Kind::I8, 0, 0),
        f("iterations", Kind::I32, 0, 0),
        f("salt", Kind::Bytes, 0, 0),
        f("salted_password", Kind::Bytes, 0, 0),
    ],
    tagged: &[],
};

// DescribeClientQuotasRequest: crate versions 0-1, flexible from 1.
const DESCRIBE_CLIENT_QUOTAS_REQUEST: Struct = Struct {
    name: "DescribeClientQuotasRequest",
    fields: &[
        f(
            "components",
            Kind::Array(&Elem::Struct(&COMPONENT_DATA)),
            0,
            1,
        ),
        f("strict", Kind::Bool, 0, 1),
    ],
    tagged: &[],
};
const COMPONENT_DATA: Struct = Struct {
    name: "ComponentData",
    fields: &[
        f("entity_type", Kind::String, 0, 1),
        f("match_type", Kind::I8, 0, 1),
        f("match", Kind::NullableString, 0, 1),
    ],
    tagged: &[],
};

// MetadataRequest: crate versions 0-13, flexible from 9.
const METADATA_REQUEST: Struct = Struct {
    name: "MetadataRequest",
    fields: &[
        f(
            "topics",
            Kind::NullableArray(&Elem::Struct(&METADATA_REQUEST_TOPIC)),
            0,
            13,
        ),
        f("allow_auto_topic_creation", Kind::Bool, 4, 13),
        f("include_cluster_authorized_operations", Kind::Bool, 8, 10),
        f("include_topic_authorized_operations", Kind::Bool, 8, 13),
    ],
    tagged: &[],
};
const METADATA_REQUEST_TOPIC: Struct = Struct {
    name: "MetadataRequestTopic",
    fields: &[
        f("topic_id", Kind::Uuid, 10, 13),
        f("name", Kind::NullableString, 0, 13),
    ],
    tagged: &[],
};

// CreateTopicsRequest: crate versions 2-7, flexible from 5.
const CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT: Struct = Struct {
    name: "CreatableReplicaAssignment",
    fields: &[
        f("partition_index", Kind::I32, 2, 7),
        f("broker_ids", Kind::Array(&Elem::Prim(Kind::I32)), 2, 7),
    ],
    tagged: &[],
};
const CREATE_TOPICS_CREATABLE_TOPIC: Struct = Struct {
    name: "CreatableTopic",
    fields: &[
        f("name", Kind::String, 2, 7),
        f("num_partitions", Kind::I32, 2, 7),
        f("replication_factor", Kind::I16, 2, 7),
        f(
            "assignments",
            Kind::Array(&Elem::Struct(&CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT)),
            2,
            7,
        ),
        f(
            "configs",
            Kind::Array(&Elem::Struct(&CREATE_TOPICS_CREATABLE_TOPIC_CONFIG)),
            2,
            7,
        ),
    ],
    tagged: &[],
};
const CREATE_TOPICS_CREATABLE_TOPIC_CONFIG: Struct = Struct {
    name: "CreatableTopicConfig",
    fields: &[
        f("name", Kind::String, 2, 7),
        f("value", Kind::NullableString, 2, 7),
    ],
    tagged: &[],
};
const CREATE_TOPICS_REQUEST: Struct = Struct {
    name: "CreateTopicsRequest",
    fields: &[
        f(
            "topics",
            Kind::Array(&Elem::Struct(&CREATE_TOPICS_CREATABLE_TOPIC)),
            2,
            7,
        ),
        f("timeout_ms", Kind::I32, 2, 7),
        f("validate_only", Kind::Bool, 2, 7),
    ],
    tagged: &[],
};

// DeleteTopicsRequest: crate versions 1-6, flexible from 4.
const DELETE_TOPICS_DELETE_TOPIC_STATE: Struct = Struct {
    name: "DeleteTopicState",
    fields: &[
        f("name", Kind::NullableString, 6, 6),
        f("topic_id", Kind::Uuid, 6, 6),
    ],
    tagged: &[],
};
const DELETE_TOPICS_REQUEST: Struct = Struct {
    name: "DeleteTopicsRequest",
    fields: &[
        f(
            "topics",
            Kind::Array(&Elem::Struct(&DELETE_TOPICS_DELETE_TOPIC_STATE)),
            6,
            6,
        ),
        f("topic_names", Kind::Array(&Elem::Prim(Kind::String)), 1, 5),
        f("timeout_ms", Kind::I32, 1, 6),
    ],
    tagged: &[],
};

// CreatePartitionsRequest: crate versions 0-3, flexible from 2.
const CREATE_PARTITIONS_ASSIGNMENT: Struct = Struct {
    name: "CreatePartitionsAssignment",
    fields: &[f("broker_ids", Kind::Array(&Elem::Prim(Kind::I32)), 0, 3)],
    tagged: &[],
};
const CREATE_PARTITIONS_REQUEST: Struct = Struct {
    name: "CreatePartitionsRequest",
    fields: &[
        f(
            "topics",
            Kind::Array(&Elem::Struct(&CREATE_PARTITIONS_TOPIC)),
            0,
            3,
        ),
        f("timeout_ms", Kind::I32, 0, 3),
        f("validate_only", Kind::Bool, 0, 3),
    ],
    tagged: &[],
};
const CREATE_PARTITIONS_TOPIC: Struct = Struct {
    name: "CreatePartitionsTopic",
    fields: &[
        f("name", Kind::String, 0, 3),
        f("count", Kind::I32, 0, 3),
        f(
            "assignments",
            Kind::NullableArray(&Elem::Struct(&CREATE_PARTITIONS_ASSIGNMENT)),
            0,
            3,
        ),
    ],
    tagged: &[],
};

// DescribeConfigsRequest: crate versions 1-4, flexible from 4.
const DESCRIBE_CONFIGS_REQUEST: Struct = Struct {
    name: "DescribeConfigsRequest",
    fields: &[
        f(
            "resources",
            Kind::Array(&Elem::Struct(&DESCRIBE_CONFIGS_RESOURCE)),
            1,
            4,
        ),
        f("include_synonyms", Kind::Bool, 1, 4),
        f("include_documentation", Kind::Bool, 3, 4),
    ],
    tagged: &[],
};
const DESCRIBE_CONFIGS_RESOURCE: Struct = Struct {
    name: "DescribeConfigsResource",
    fields: &[
        f("resource_type", Kind::I8, 1, 4),
        f("resource_name", Kind::String, 1, 4),
        f(
            "configuration_keys",
            Kind::NullableArray(&Elem::Prim(Kind::String)),
            1,
            4,
        ),
    ],
    tagged: &[],
};

// AlterConfigsRequest: crate versions 0-2, flexible from 2.
const ALTER_CONFIGS_REQUEST: Struct = Struct {
    name: "AlterConfigsRequest",
    fields: &[
        f(
            "resources",
            Kind::Array(&Elem::Struct(&ALTER_CONFIGS_RESOURCE)),
            0,
            2,
        ),
        f("validate_only", Kind::Bool, 0, 2),
    ],
    tagged: &[],
};
const ALTER_CONFIGS_RESOURCE: Struct = Struct {
    name: "AlterConfigsResource",
    fields: &[
        f("resource_type", Kind::I8, 0, 2),
        f("resource_name", Kind::String, 0, 2),
        f(
            "configs",
            Kind::Array(&Elem::Struct(&ALTER_CONFIGS_ALTERABLE_CONFIG)),
            0,
            2,
        ),
    ],
    tagged: &[],
};
const ALTER_CONFIGS_ALTERABLE_CONFIG: Struct = Struct {
    name: "AlterableConfig",
    fields: &[
        f("name", Kind::String, 0, 2),
        f("value", Kind::NullableString, 0, 2),
    ],
    tagged: &[],
};

// IncrementalAlterConfigsRequest: crate versions 0-1, flexible from 1.
const INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE: Struct = Struct {
    name: "AlterConfigsResource",
    fields: &[
        f("resource_type", Kind::I8, 0, 1),
        f("resource_name", Kind::String, 0, 1),
        f(
            "configs",
            Kind::Array(&Elem::Struct(&INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG)),
            0,
            1,
        ),
    ],
    tagged: &[],
};
const INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG: Struct = Struct {
    name: "AlterableConfig",
    fields: &[
        f("name", Kind::String, 0, 1),
        f("config_operation", Kind::I8, 0, 1),
        f("value", Kind::NullableString, 0, 1),
    ],
    tagged: &[],
};
const INCREMENTAL_ALTER_CONFIGS_REQUEST: Struct = Struct {
    name: "IncrementalAlterConfigsRequest",
    fields: &[
        f(
            "resources",
            Kind::Array(&Elem::Struct(
                &INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE,
            )),
            0,
            1,
        ),
        f("validate_only", Kind::Bool, 0, 1),
    ],
    tagged: &[],
};

// DescribeClusterRequest: crate versions 0-2, flexible from 0.
const DESCRIBE_CLUSTER_REQUEST: Struct = Struct {
    name: "DescribeClusterRequest",
    fields: &[
        f("include_cluster_authorized_operations", Kind::Bool, 0, 2),
        f("endpoint_type", Kind::I8, 1, 2),
        f("include_fenced_brokers", Kind::Bool, 2, 2),
    ],
    tagged: &[],
};

// ElectLeadersRequest: crate versions 0-2, flexible from 2.
const ELECT_LEADERS_REQUEST: Struct = Struct {
    name: "ElectLeadersRequest",
    fields: &[
        f("election_type", Kind::I8, 1, 2),
        f(
            "topic_partitions",
            Kind::NullableArray(&Elem::Struct(&ELECT_LEADERS_TOPIC)),
            0,
            2,
        ),
        f("timeout_ms", Kind::I32, 0, 2),
    ],
    tagged: &[],
};
const ELECT_LEADERS_TOPIC: Struct = Struct {
    name: "TopicPartitions",
    fields: &[
        f("topic", Kind::String, 0, 2),
        f("partitions", Kind::Array(&Elem::Prim(Kind::I32)), 0, 2),
    ],
    tagged: &[],
};

// DescribeProducersRequest: version 0, flexible.
const DESCRIBE_PRODUCERS_REQUEST: Struct = Struct {
    name: "DescribeProducersRequest",
    fields: &[f(
        "topics",
        Kind::Array(&Elem::Struct(&DESCRIBE_PRODUCERS_TOPIC)),
        0,
        0,
    )],
    tagged: &[],
};
const DESCRIBE_PRODUCERS_TOPIC: Struct = Struct {
    name: "TopicRequest",
    fields: &[
        f("name", Kind::String, 0, 0),
        f(
            "partition_indexes",
            Kind::Array(&Elem::Prim(Kind::I32)),
            0,
            0,
        ),
    ],
    tagged: &[],
};

// DescribeTopicPartitionsRequest (KIP-966): version 0, flexible.
const DESCRIBE_TOPIC_PARTITIONS_REQUEST: Struct = Struct {
    name: "DescribeTopicPartitionsRequest",
    fields: &[
        f(
            "topics",
            Kind::Array(&Elem::Struct(&DESCRIBE_TOPIC_PARTITIONS_TOPIC)),
            0,
            0,
        ),
        f("response_partition_limit", Kind::I32, 0, 0),
        f(
            "cursor",
            Kind::NullableStruct(&DESCRIBE_TOPIC_PARTITIONS_CURSOR),
            0,
            0,
        ),
    ],
    tagged: &[],
};
const DESCRIBE_TOPIC_PARTITIONS_TOPIC: Struct = Struct {
    name: "TopicRequest",
    fields: &[f("name", Kind::String, 0, 0)],
    tagged: &[],
};
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: Struct = Struct {
    name: "Cursor",
    fields: &[
        f("topic_name", Kind::String, 0, 0),
        f("partition_index", Kind::I32, 0, 0),
    ],
    tagged: &[],
};

// DescribeQuorumRequest: crate versions 0-2, flexible from 0.
const DESCRIBE_QUORUM_REQUEST: Struct = Struct {
    name: "DescribeQuorumRequest",
    fields: &[f(
        "topics",
        Kind::Array(&Elem::Struct(&DESCRIBE_QUORUM_TOPIC)),
        0,
        2,
    )],
    tagged: &[],
};
const DESCRIBE_QUORUM_TOPIC: Struct = Struct {
    name: "TopicData",
    fields: &[
        f("topic_name", Kind::String, 0, 2),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(&DESCRIBE_QUORUM_PARTITION)),
            0,
            2,
        ),
    ],
    tagged: &[],
};
const DESCRIBE_QUORUM_PARTITION: Struct = Struct {
    name: "PartitionData",
    fields: &[f("partition_index", Kind::I32, 0, 2)],
    tagged: &[],
};

// ProduceRequest: crate versions 3-13, flexible from 9.
const PRODUCE_PARTITION_PRODUCE_DATA: Struct = Struct {
    name: "PartitionProduceData",
    fields: &[
        f("index", Kind::I32, 3, 13),
        f("records", Kind::Records, 3, 13),
    ],
    tagged: &[],
};
const PRODUCE_REQUEST: Struct = Struct {
    name: "ProduceRequest",
    fields: &[
        f("transactional_id", Kind::NullableString, 3, 13),
        f("acks", Kind::I16, 3, 13),
        f("timeout_ms", Kind::I32, 3, 13),
        f(
            "topic_data",
            Kind::Array(&Elem::Struct(&PRODUCE_TOPIC_PRODUCE_DATA)),
            3,
            13,
        ),
    ],
    tagged: &[],
};
const PRODUCE_TOPIC_PRODUCE_DATA: Struct = Struct {
    name: "TopicProduceData",
    fields: &[
        f("name", Kind::String, 3, 12),
        f("topic_id", Kind::Uuid, 13, 13),
        f(
            "partition_data",
            Kind::Array(&Elem::Struct(&PRODUCE_PARTITION_PRODUCE_DATA)),
            3,
            13,
        ),
    ],
    tagged: &[],
};

// InitProducerIdRequest: crate versions 0-5, flexible from 2.
const INIT_PRODUCER_ID_REQUEST: Struct = Struct {
    name: "InitProducerIdRequest",
    fields: &[
        f("transactional_id", Kind::NullableString, 0, 5),
        f("transaction_timeout_ms", Kind::I32, 0, 5),
        f("producer_id", Kind::I64, 3, 5),
        f("producer_epoch", Kind::I16, 3, 5),
    ],
    tagged: &[],
};

// FetchRequest: crate versions 4-18, flexible from 12.
const FETCH_PARTITION: Struct = Struct {
    name: "FetchPartition",
    fields: &[
        f("partition", Kind::I32, 4, 18),
        f("current_leader_epoch", Kind::I32, 9, 18),
        f("fetch_offset", Kind::I64, 4, 18),
        f("last_fetched_epoch", Kind::I32, 12, 18),
        f("log_start_offset", Kind::I64, 5, 18),
        f("partition_max_bytes", Kind::I32, 4, 18),
    ],
    tagged: &[
        t(0, "replica_directory_id", Kind::Uuid, 17, 18),
        t(1, "high_watermark", Kind::I64, 18, 18),
    ],
};
const FETCH_REQUEST: Struct = Struct {
    name: "FetchRequest",
    fields: &[
        f("replica_id", Kind::I32, 4, 14),
        f("max_wait_ms", Kind::I32, 4, 18),
        f("min_bytes", Kind::I32, 4, 18),
        f("max_bytes", Kind::I32, 4, 18),
        f("isolation_level", Kind::I8, 4, 18),
        f("session_id", Kind::I32, 7, 18),
        f("session_epoch", Kind::I32, 7, 18),
        f("topics", Kind::Array(&Elem::Struct(&FETCH_TOPIC)), 4, 18),
        f(
            "forgotten_topics_data",
            Kind::Array(&Elem::Struct(&FETCH_FORGOTTEN_TOPIC)),
            7,
            18,
        ),
        f("rack_id", Kind::String, 11, 18),
    ],
    tagged: &[
        t(0, "cluster_id", Kind::NullableString, 12, 18),
        t(
            1,
            "replica_state",
            Kind::Struct(&FETCH_REPLICA_STATE),
            15,
            18,
        ),
    ],
};
const FETCH_TOPIC: Struct = Struct {
    name: "FetchTopic",
    fields: &[
        f("topic", Kind::String, 4, 12),
        f("topic_id", Kind::Uuid, 13, 18),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(&FETCH_PARTITION)),
            4,
            18,
        ),
    ],
    tagged: &[],
};
const FETCH_FORGOTTEN_TOPIC: Struct = Struct {
    name: "ForgottenTopic",
    fields: &[
        f("topic", Kind::String, 7, 12),
        f("topic_id", Kind::Uuid, 13, 18),
        f("partitions", Kind::Array(&Elem::Prim(Kind::I32)), 7, 18),
    ],
    tagged: &[],
};
const FETCH_REPLICA_STATE: Struct = Struct {
    name: "ReplicaState",
    fields: &[
        f("replica_id", Kind::I32, 15, 18),
        f("replica_epoch", Kind::I64, 15, 18),
    ],
    tagged: &[],
};

// ListOffsetsRequest: crate versions 1-10, flexible from 6.
const LIST_OFFSETS_PARTITION: Struct = Struct {
    name: "ListOffsetsPartition",
    fields: &[
        f("partition_index", Kind::I32, 1, 10),
        f("current_leader_epoch", Kind::I32, 4, 10),
        f("timestamp", Kind::I64, 1, 10),
    ],
    tagged: &[],
};
const LIST_OFFSETS_REQUEST: Struct = Struct {
    name: "ListOffsetsRequest",
    fields: &[
        f("replica_id", Kind::I32, 1, 10),
        f("isolation_level", Kind::I8, 2, 10),
        f(
            "topics",
            Kind::Array(&Elem::Struct(&LIST_OFFSETS_TOPIC)),
            1,
            10,
        ),
        f("timeout_ms", Kind::I32, 10, 10),
    ],
    tagged: &[],
};
const LIST_OFFSETS_TOPIC: Struct = Struct {
    name: "ListOffsetsTopic",
    fields: &[
        f("name", Kind::String, 1, 10),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(&LIST_OFFSETS_PARTITION)),
            1,
            10,
        ),
    ],
    tagged: &[],
};

// DeleteRecordsRequest: crate versions 0-2, flexible from 2.
const DELETE_RECORDS_PARTITION: Struct = Struct {
    name: "DeleteRecordsPartition",
    fields: &[
        f("partition_index", Kind::I32, 0, 2),
        f("offset", Kind::I64, 0, 2),
    ],
    tagged: &[],
};
const DELETE_RECORDS_REQUEST: Struct = Struct {
    name: "DeleteRecordsRequest",
    fields: &[
        f(
            "topics",
            Kind::Array(&Elem::Struct(&DELETE_RECORDS_TOPIC)),
            0,
            2,
        ),
        f("timeout_ms", Kind::I32, 0, 2),
    ],
    tagged: &[],
};
const DELETE_RECORDS_TOPIC: Struct = Struct {
    name: "DeleteRecordsTopic",
    fields: &[
        f("name", Kind::String, 0, 2),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(&DELETE_RECORDS_PARTITION)),
            0,
            2,
        ),
    ],
    tagged: &[],
};

// OffsetForLeaderEpochRequest: crate versions 2-4, flexible from 4.
const OFFSET_FOR_LEADER_EPOCH_REQUEST: Struct = Struct {
    name: "OffsetForLeaderEpochRequest",
    fields: &[
        f("replica_id", Kind::I32, 3, 4),
        f(
            "topics",
            Kind::Array(&Elem::Struct(
                &OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC,
            )),
            2,
            4,
        ),
    ],
    tagged: &[],
};
const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION: Struct = Struct {
    name: "OffsetForLeaderPartition",
    fields: &[
        f("partition", Kind::I32, 2, 4),
        f("current_leader_epoch", Kind::I32, 2, 4),
        f("leader_epoch", Kind::I32, 2, 4),
    ],
    tagged: &[],
};
const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC: Struct = Struct {
    name: "OffsetForLeaderTopic",
    fields: &[
        f("topic", Kind::String, 2, 4),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(
                &OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION,
            )),
            2,
            4,
        ),
    ],
    tagged: &[],
};

// FindCoordinatorRequest: crate versions 0-6, flexible from 3.
const FIND_COORDINATOR_REQUEST: Struct = Struct {
    name: "FindCoordinatorRequest",
    fields: &[
        f("key", Kind::String, 0, 3),
        f("key_type", Kind::I8, 1, 6),
        f(
            "coordinator_keys",
            Kind::Array(&Elem::Prim(Kind::String)),
            4,
            6,
        ),
    ],
    tagged: &[],
};

// JoinGroupRequest: crate versions 0-9, flexible from 6.
const JOIN_GROUP_REQUEST: Struct = Struct {
    name: "JoinGroupRequest",
    fields: &[
        f("group_id", Kind::String, 0, 9),
        f("session_timeout_ms", Kind::I32, 0, 9),
        f("rebalance_timeout_ms", Kind::I32, 1, 9),
        f("member_id", Kind::String, 0, 9),
        f("group_instance_id", Kind::NullableString, 5, 9),
        f("protocol_type", Kind::String, 0, 9),
        f(
            "protocols",
            Kind::Array(&Elem::Struct(&JOIN_GROUP_REQUEST_PROTOCOL)),
            0,
            9,
        ),
        f("reason", Kind::NullableString, 8, 9),
    ],
    tagged: &[],
};
const JOIN_GROUP_REQUEST_PROTOCOL: Struct = Struct {
    name: "JoinGroupRequestProtocol",
    fields: &[
        f("name", Kind::String, 0, 9),
        f("metadata", Kind::Bytes, 0, 9),
    ],
    tagged: &[],
};

// SyncGroupRequest: crate versions 0-5, flexible from 4.
const SYNC_GROUP_REQUEST: Struct = Struct {
    name: "SyncGroupRequest",
    fields: &[
        f("group_id", Kind::String, 0, 5),
        f("generation_id", Kind::I32, 0, 5),
        f("member_id", Kind::String, 0, 5),
        f("group_instance_id", Kind::NullableString, 3, 5),
        f("protocol_type", Kind::NullableString, 5, 5),
        f("protocol_name", Kind::NullableString, 5, 5),
        f(
            "assignments",
            Kind::Array(&Elem::Struct(&SYNC_GROUP_REQUEST_ASSIGNMENT)),
            0,
            5,
        ),
    ],
    tagged: &[],
};
const SYNC_GROUP_REQUEST_ASSIGNMENT: Struct = Struct {
    name: "SyncGroupRequestAssignment",
    fields: &[
        f("member_id", Kind::String, 0, 5),
        f("assignment", Kind::Bytes, 0, 5),
    ],
    tagged: &[],
};

// HeartbeatRequest: crate versions 0-4, flexible from 4.
const HEARTBEAT_REQUEST: Struct = Struct {
    name: "HeartbeatRequest",
    fields: &[
        f("group_id", Kind::String, 0, 4),
        f("generation_id", Kind::I32, 0, 4),
        f("member_id", Kind::String, 0, 4),
        f("group_instance_id", Kind::NullableString, 3, 4),
    ],
    tagged: &[],
};

// LeaveGroupRequest: crate versions 0-5, flexible from 4.
const LEAVE_GROUP_REQUEST: Struct = Struct {
    name: "LeaveGroupRequest",
    fields: &[
        f("group_id", Kind::String, 0, 5),
        f("member_id", Kind::String, 0, 2),
        f(
            "members",
            Kind::Array(&Elem::Struct(&LEAVE_GROUP_MEMBER_IDENTITY)),
            3,
            5,
        ),
    ],
    tagged: &[],
};
const LEAVE_GROUP_MEMBER_IDENTITY: Struct = Struct {
    name: "MemberIdentity",
    fields: &[
        f("member_id", Kind::String, 3, 5),
        f("group_instance_id", Kind::NullableString, 3, 5),
        f("reason", Kind::NullableString, 5, 5),
    ],
    tagged: &[],
};

// OffsetCommitRequest: crate versions 2-9, flexible from 8.
const OFFSET_COMMIT_REQUEST: Struct = Struct {
    name: "OffsetCommitRequest",
    fields: &[
        f("group_id", Kind::String, 2, 9),
        f("generation_id_or_member_epoch", Kind::I32, 2, 9),
        f("member_id", Kind::String, 2, 9),
        f("group_instance_id", Kind::NullableString, 7, 9),
        f("retention_time_ms", Kind::I64, 2, 4),
        f(
            "topics",
            Kind::Array(&Elem::Struct(&OFFSET_COMMIT_REQUEST_TOPIC)),
            2,
            9,
        ),
    ],
    tagged: &[],
};
const OFFSET_COMMIT_REQUEST_PARTITION: Struct = Struct {
    name: "OffsetCommitRequestPartition",
    fields: &[
        f("partition_index", Kind::I32, 2, 9),
        f("committed_offset", Kind::I64, 2, 9),
        f("committed_leader_epoch", Kind::I32, 6, 9),
        f("committed_metadata", Kind::NullableString, 2, 9),
    ],
    tagged: &[],
};
const OFFSET_COMMIT_REQUEST_TOPIC: Struct = Struct {
    name: "OffsetCommitRequestTopic",
    fields: &[
        f("name", Kind::String, 2, 9),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(&OFFSET_COMMIT_REQUEST_PARTITION)),
            2,
            9,
        ),
    ],
    tagged: &[],
};

// OffsetFetchRequest: crate versions 1-9, flexible from 6.
const OFFSET_FETCH_REQUEST: Struct = Struct {
    name: "OffsetFetchRequest",
    fields: &[
        f("group_id", Kind::String, 1, 7),
        f(
            "topics",
            Kind::NullableArray(&Elem::Struct(&OFFSET_FETCH_REQUEST_TOPIC)),
            1,
            7,
        ),
        f(
            "groups",
            Kind::Array(&Elem::Struct(&OFFSET_FETCH_REQUEST_GROUP)),
            8,
            9,
        ),
        f("require_stable", Kind::Bool, 7, 9),
    ],
    tagged: &[],
};
const OFFSET_FETCH_REQUEST_GROUP: Struct = Struct {
    name: "OffsetFetchRequestGroup",
    fields: &[
        f("group_id", Kind::String, 8, 9),
        f("member_id", Kind::NullableString, 9, 9),
        f("member_epoch", Kind::I32, 9, 9),
        f(
            "topics",
            Kind::NullableArray(&Elem::Struct(&OFFSET_FETCH_REQUEST_TOPICS)),
            8,
            9,
        ),
    ],
    tagged: &[],
};
const OFFSET_FETCH_REQUEST_TOPIC: Struct = Struct {
    name: "OffsetFetchRequestTopic",
    fields: &[
        f("name", Kind::String, 1, 7),
        f(
            "partition_indexes",
            Kind::Array(&Elem::Prim(Kind::I32)),
            1,
            7,
        ),
    ],
    tagged: &[],
};
const OFFSET_FETCH_REQUEST_TOPICS: Struct = Struct {
    name: "OffsetFetchRequestTopics",
    fields: &[
        f("name", Kind::String, 8, 9),
        f(
            "partition_indexes",
            Kind::Array(&Elem::Prim(Kind::I32)),
            8,
            9,
        ),
    ],
    tagged: &[],
};

// DescribeGroupsRequest: crate versions 0-6, flexible from 5.
const DESCRIBE_GROUPS_REQUEST: Struct = Struct {
    name: "DescribeGroupsRequest",
    fields: &[
        f("groups", Kind::Array(&Elem::Prim(Kind::String)), 0, 6),
        f("include_authorized_operations", Kind::Bool, 3, 6),
    ],
    tagged: &[],
};

// ListGroupsRequest: crate versions 0-5, flexible from 3.
const LIST_GROUPS_REQUEST: Struct = Struct {
    name: "ListGroupsRequest",
    fields: &[
        f(
            "states_filter",
            Kind::Array(&Elem::Prim(Kind::String)),
            4,
            5,
        ),
        f("types_filter", Kind::Array(&Elem::Prim(Kind::String)), 5, 5),
    ],
    tagged: &[],
};

// DeleteGroupsRequest: crate versions 0-2, flexible from 2.
const DELETE_GROUPS_REQUEST: Struct = Struct {
    name: "DeleteGroupsRequest",
    fields: &[f(
        "groups_names",
        Kind::Array(&Elem::Prim(Kind::String)),
        0,
        2,
    )],
    tagged: &[],
};

// OffsetDeleteRequest: crate versions 0-0, flexible from None.
const OFFSET_DELETE_REQUEST: Struct = Struct {
    name: "OffsetDeleteRequest",
    fields: &[
        f("group_id", Kind::String, 0, 0),
        f(
            "topics",
            Kind::Array(&Elem::Struct(&OFFSET_DELETE_REQUEST_TOPIC)),
            0,
            0,
        ),
    ],
    tagged: &[],
};
const OFFSET_DELETE_REQUEST_PARTITION: Struct = Struct {
    name: "OffsetDeleteRequestPartition",
    fields: &[f("partition_index", Kind::I32, 0, 0)],
    tagged: &[],
};
const OFFSET_DELETE_REQUEST_TOPIC: Struct = Struct {
    name: "OffsetDeleteRequestTopic",
    fields: &[
        f("name", Kind::String, 0, 0),
        f(
            "partitions",
            Kind::Array(&Elem::Struct(&OFFSET_DELETE_REQUEST_PARTITION)),
            0,
            0,
        ),
    ],
    tagged: &[],
};

// DescribeLogDirsRequest: crate versions 1-4, flexible from 2.
const DESCRIBE_LOG_DIRS_REQUEST: Struct = Struct {
    name: "DescribeLogDirsRequest",
    fields: &[f(
        "topics",
        Kind::NullableArray(&Elem::Struct(&DESCRIBE_LOG_DIRS_TOPIC)),
        1,
        4,
    )],
    tagged: &[],
};
const DESCRIBE_LOG_DIRS_TOPIC: Struct = Struct {
    name: "DescribableLogDirTopic",
    fields: &[
        f("topic", Kind::String, 1, 4),
        f("partitions", Kind::Array(&Elem::Prim(Kind::I32)), 1, 4),
    ],
    tagged: &[],
};

// The body layouts of the requests the broker serves, each with the first
// version that is flexible (compact encodings, tagged fields). The router's
// API table names which layout guards which API.

pub const PRODUCE: Layout = Layout {
    flexible: 9,
    body: &PRODUCE_REQUEST,
};

pub const FETCH: Layout = Layout {
    flexible: 12,
    body: &FETCH_REQUEST,
};

pub const LIST_OFFSETS: Layout = Layout {
    flexible: 6,
    body: &LIST_OFFSETS_REQUEST,
};

pub const METADATA: Layout = Layout {
    flexible: 9,
    body: &METADATA_REQUEST,
};

pub const OFFSET_COMMIT: Layout = Layout {
    flexible: 8,
    body: &OFFSET_COMMIT_REQUEST,
};

pub const OFFSET_FETCH: Layout = Layout {
    flexible: 6,
    body: &OFFSET_FETCH_REQUEST,
};

pub const FIND_COORDINATOR: Layout = Layout {
    flexible: 3,
    body: &FIND_COORDINATOR_REQUEST,
};

pub const JOIN_GROUP: Layout = Layout {
    flexible: 6,
    body: &JOIN_GROUP_REQUEST,
};

pub const HEARTBEAT: Layout = Layout {
    flexible: 4,
    body: &HEARTBEAT_REQUEST,
};

pub const LEAVE_GROUP: Layout = Layout {
    flexible: 4,
    body: &LEAVE_GROUP_REQUEST,
};

pub const SYNC_GROUP: Layout = Layout {
    flexible: 4,
    body: &SYNC_GROUP_REQUEST,
};

pub const DESCRIBE_GROUPS: Layout = Layout {
    flexible: 5,
    body: &DESCRIBE_GROUPS_REQUEST,
};

pub const LIST_GROUPS: Layout = Layout {
    flexible: 3,
    body: &LIST_GROUPS_REQUEST,
};

pub const SASL_HANDSHAKE: Layout = Layout {
    flexible: NEVER,
    body: &SASL_HANDSHAKE_REQUEST,
};

pub const SASL_AUTHENTICATE: Layout = Layout {
    flexible: 2,
    body: &SASL_AUTHENTICATE_REQUEST,
};

pub const DESCRIBE_USER_SCRAM_CREDENTIALS: Layout = Layout {
    flexible: 0,
    body: &DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST,
};

pub const ALTER_USER_SCRAM_CREDENTIALS: Layout = Layout {
    flexible: 0,
    body: &ALTER_USER_SCRAM_CREDENTIALS_REQUEST,
};

pub const CREATE_ACLS: Layout = Layout {
    flexible: 2,
    body: &CREATE_ACLS_REQUEST,
};

pub const DESCRIBE_ACLS: Layout = Layout {
    flexible: 2,
    body: &DESCRIBE_ACLS_REQUEST,
};

pub const DELETE_ACLS: Layout = Layout {
    flexible: 2,
    body: &DELETE_ACLS_REQUEST,
};

pub const DESCRIBE_CLIENT_QUOTAS: Layout = Layout {
    flexible: 1,
    body: &DESCRIBE_CLIENT_QUOTAS_REQUEST,
};

pub const API_VERSIONS: Layout = Layout {
    flexible: 3,
    body: &API_VERSIONS_REQUEST,
};

pub const CREATE_TOPICS: Layout = Layout {
    flexible: 5,
    body: &CREATE_TOPICS_REQUEST,
};

pub const DELETE_TOPICS: Layout = Layout {
    flexible: 4,
    body: &DELETE_TOPICS_REQUEST,
};

pub const DELETE_RECORDS: Layout = Layout {
    flexible: 2,
    body: &DELETE_RECORDS_REQUEST,
};

pub const INIT_PRODUCER_ID: Layout = Layout {
    flexible: 2,
    body: &INIT_PRODUCER_ID_REQUEST,
};

pub const OFFSET_FOR_LEADER_EPOCH: Layout = Layout {
    flexible: 4,
    body: &OFFSET_FOR_LEADER_EPOCH_REQUEST,
};

pub const DESCRIBE_CONFIGS: Layout = Layout {
    flexible: 4,
    body: &DESCRIBE_CONFIGS_REQUEST,
};

pub const ALTER_CONFIGS: Layout = Layout {
    flexible: 2,
    body: &ALTER_CONFIGS_REQUEST,
};

pub const ELECT_LEADERS: Layout = Layout {
    flexible: 2,
    body: &ELECT_LEADERS_REQUEST,
};

pub const CREATE_PARTITIONS: Layout = Layout {
    flexible: 2,
    body: &CREATE_PARTITIONS_REQUEST,
};

pub const DELETE_GROUPS: Layout = Layout {
    flexible: 2,
    body: &DELETE_GROUPS_REQUEST,
};

pub const INCREMENTAL_ALTER_CONFIGS: Layout = Layout {
    flexible: 1,
    body: &INCREMENTAL_ALTER_CONFIGS_REQUEST,
};

pub const OFFSET_DELETE: Layout = Layout {
    flexible: NEVER,
    body: &OFFSET_DELETE_REQUEST,
};

pub const DESCRIBE_CLUSTER: Layout = Layout {
    flexible: 0,
    body: &DESCRIBE_CLUSTER_REQUEST,
};

pub const DESCRIBE_PRODUCERS: Layout = Layout {
    flexible: 0,
    body: &DESCRIBE_PRODUCERS_REQUEST,
};

pub const DESCRIBE_TOPIC_PARTITIONS: Layout = Layout {
    flexible: 0,
    body: &DESCRIBE_TOPIC_PARTITIONS_REQUEST,
};

pub const DESCRIBE_QUORUM: Layout = Layout {
    flexible: 0,
    body: &DESCRIBE_QUORUM_REQUEST,
};

pub const DESCRIBE_LOG_DIRS: Layout = Layout {
    flexible: 2,
    body: &DESCRIBE_LOG_DIRS_REQUEST,
};
