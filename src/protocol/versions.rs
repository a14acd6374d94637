//! The APIs and versions this broker implements: exactly what ApiVersions
//! advertises.

use kafka_protocol::messages::ApiKey;

/// (API, lowest version, highest version) served by this broker.
///
/// Produce is advertised from v0 because librdkafka turns compression off
/// against brokers whose Produce minimum is above 0, but only v3+ (record
/// batch v2) is accepted: older requests close the connection, as Kafka 4
/// does. Produce and Fetch stop at v12 until topic ids are supported in
/// them. FindCoordinator is advertised because librdkafka ties its LZ4
/// support to it. The consumer group APIs cover what the tested clients
/// send (librdkafka 2.0-2.16, kafka-python 2.0/3.0, aiokafka, KafkaJS), up
/// to the versions the request guard has layouts for; OffsetCommit v0-1
/// (ZooKeeper-era) are not served.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

/// Lowest Produce version whose records are v2 batches.
pub const PRODUCE_MIN_ACCEPTED: i16 = 3;

/// The advertised version range of `key`, if the broker serves it.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, lo, hi)| (lo, hi))
}

/// Whether requests of `key` at `version` are decoded and answered.
pub fn accepts(key: ApiKey, version: i16) -> bool {
    match supported(key) {
        Some((lo, hi)) => {
            let lo = if key == ApiKey::Produce {
                PRODUCE_MIN_ACCEPTED
            } else {
                lo
            };
            (lo..=hi).contains(&version)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_versions_are_decodable_by_the_codec() {
        for &(key, lo, hi) in SUPPORTED {
            let range = key.valid_versions();
            let lo = if key == ApiKey::Produce {
                PRODUCE_MIN_ACCEPTED
            } else {
                lo
            };
            assert!(range.min <= lo && hi <= range.max, "{key:?} {lo}-{hi}");
        }
    }
}
