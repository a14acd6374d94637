//! Authorized-operation bit fields (Metadata, DescribeCluster,
//! DescribeGroups): each operation a resource type supports
//! (`AclEntry.supportedOperations`) that the connection's principal is
//! allowed sets the bit at its AclOperation code. Without an authorizer
//! every supported operation is set, as in Kafka.

use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::authz::ConnAuth;

/// Not asked for: Kafka's sentinel.
pub const NOT_REQUESTED: i32 = i32::MIN;

use Operation::*;

/// A topic's: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS.
const TOPIC: &[Operation] = &[
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    DescribeConfigs,
    AlterConfigs,
];

/// A group's: READ, DELETE, DESCRIBE, and since Kafka 4 (group configs)
/// DESCRIBE_CONFIGS and ALTER_CONFIGS.
const GROUP: &[Operation] = &[Read, Delete, Describe, DescribeConfigs, AlterConfigs];

/// The cluster's: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (seven, as
/// librdkafka's admin test expects).
const CLUSTER: &[Operation] = &[
    Create,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
];

pub fn topic(auth: &ConnAuth, name: &str) -> i32 {
    auth.operations(ResourceType::Topic, name, TOPIC)
}

pub fn group(auth: &ConnAuth, id: &str) -> i32 {
    auth.operations(ResourceType::Group, id, GROUP)
}

pub fn cluster(auth: &ConnAuth) -> i32 {
    auth.operations(ResourceType::Cluster, CLUSTER_NAME, CLUSTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_authorizer_every_supported_operation() {
        let open = ConnAuth::open();
        assert_eq!(topic(&open, "t").count_ones(), 8);
        assert_eq!(
            group(&open, "g"),
            (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11)
        );
        assert_eq!(cluster(&open).count_ones(), 7);
    }
}
