//! Authorized-operation bit fields (Metadata, DescribeCluster,
//! DescribeGroups): without an authorizer Kafka allows every operation a
//! resource type supports (`AclEntry.supportedOperations`), each set at
//! its AclOperation code. READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7,
//! DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11,
//! IDEMPOTENT_WRITE 12.

/// Not asked for: Kafka's sentinel.
pub const NOT_REQUESTED: i32 = i32::MIN;

const fn bits(codes: &[u8]) -> i32 {
    let mut out = 0;
    let mut i = 0;
    while i < codes.len() {
        out |= 1 << codes[i];
        i += 1;
    }
    out
}

/// A topic: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub const TOPIC: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);

/// A group: READ, DELETE, DESCRIBE.
pub const GROUP: i32 = bits(&[3, 6, 8]);

/// The cluster: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (seven, as
/// librdkafka's admin test expects).
pub const CLUSTER: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_kafkas_supported_operations() {
        assert_eq!(TOPIC.count_ones(), 8);
        assert_eq!(GROUP.count_ones(), 3);
        assert_eq!(CLUSTER.count_ones(), 7);
        assert_eq!(GROUP, (1 << 3) | (1 << 6) | (1 << 8));
    }
}
