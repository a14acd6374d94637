//! The one table from internal errors to Kafka error codes.
//!
//! Every layer below the handlers reports failures as its own enum and
//! knows nothing of Kafka's codes; this file decides which code a client
//! sees for each of them. Every mapping is an exhaustive `match` with no
//! catch-all arm, so a new internal error does not compile until someone
//! decides its code here. Apache Kafka's choice for the same fault is the
//! reference.

use crate::error_code::ErrorCode;
use crate::group::GroupError;
use crate::partition::producer_state::ProducerError;
use crate::partition::PartitionError;
use crate::record::BatchError;
use crate::shard::controller::{AdminError, AdminFault};
use crate::shard::routing_table::RouteError;
use crate::shard::ShardGone;
use crate::storage::{AppendError, ReadError, StorageError};

/// The Kafka error code a client receives for an internal error.
pub trait ToErrorCode {
    fn error_code(&self) -> ErrorCode;
}

/// Why one partition of a request failed. It travels as a value in the
/// response, never as an `Err` that would fail the whole request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Partition(#[from] PartitionError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// A request, or all of one partition API's partitions, refused by the
/// handler itself before any partition or coordinator saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A transactional id on Produce or InitProducerId.
    #[error("transactions are not supported")]
    Transactional,
    #[error("acks={0}")]
    InvalidAcks(i16),
    /// FindCoordinator for a transaction coordinator: refused with a
    /// fatal error, so a transactional producer fails at once instead of
    /// waiting for a coordinator until its timeout.
    #[error("transactions are not supported yet: no transaction coordinator")]
    NoTransactionCoordinator,
    /// FindCoordinator for another key type (share groups, unknown ones).
    #[error("no coordinator of key type {0} (share groups are not supported)")]
    UnknownCoordinatorType(i8),
    /// The controller that hands out producer ids could not be reached.
    #[error("no producer id could be allocated")]
    NoProducerId,
    /// A Fetch naming a fetch session: none is ever handed out.
    #[error("unknown fetch session")]
    UnknownFetchSession,
    /// DescribeCluster for controller endpoints.
    #[error("only broker endpoints are served")]
    UnsupportedEndpointType,
    /// ApiVersions newer than any served (answered in v0, KIP-511).
    #[error("ApiVersions version not supported")]
    ApiVersionsTooNew,
    /// DescribeQuorum on a node that runs no metadata quorum.
    #[error("this node runs no metadata quorum (process.roles is not set)")]
    NoQuorum,
}

impl ToErrorCode for Refusal {
    fn error_code(&self) -> ErrorCode {
        match self {
            Refusal::Transactional => ErrorCode::TransactionalIdAuthorizationFailed,
            Refusal::InvalidAcks(_) => ErrorCode::InvalidRequiredAcks,
            Refusal::NoTransactionCoordinator => ErrorCode::TransactionalIdAuthorizationFailed,
            Refusal::UnknownCoordinatorType(_) => ErrorCode::InvalidRequest,
            Refusal::NoProducerId => ErrorCode::CoordinatorNotAvailable,
            Refusal::UnknownFetchSession => ErrorCode::FetchSessionIdNotFound,
            Refusal::UnsupportedEndpointType => ErrorCode::UnsupportedVersion,
            Refusal::ApiVersionsTooNew => ErrorCode::UnsupportedVersion,
            Refusal::NoQuorum => ErrorCode::UnsupportedVersion,
        }
    }
}

/// A partition the router could not reach answers with a failure.
impl<T> From<RouteError> for Result<T, Failure> {
    fn from(e: RouteError) -> Self {
        Err(Failure::Route(e))
    }
}

impl Failure {
    /// The error message for responses that carry one (Produce v8+).
    /// Routing faults and timeouts go without one, as Kafka sends them.
    pub fn message(&self) -> Option<String> {
        match self {
            Failure::Route(_) | Failure::Partition(PartitionError::TimedOut) => None,
            other => Some(other.to_string()),
        }
    }
}

impl ToErrorCode for Failure {
    fn error_code(&self) -> ErrorCode {
        match self {
            Failure::Route(e) => e.error_code(),
            Failure::Partition(e) => e.error_code(),
            Failure::Refused(e) => e.error_code(),
        }
    }
}

impl ToErrorCode for RouteError {
    fn error_code(&self) -> ErrorCode {
        match self {
            RouteError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            RouteError::NotServedHere => ErrorCode::NotLeaderOrFollower,
            RouteError::NotLeader => ErrorCode::NotLeaderOrFollower,
            RouteError::ShardGone => ErrorCode::KafkaStorageError,
            RouteError::Unauthorized => ErrorCode::TopicAuthorizationFailed,
        }
    }
}

impl ToErrorCode for PartitionError {
    fn error_code(&self) -> ErrorCode {
        match self {
            PartitionError::Batch(e) => e.error_code(),
            PartitionError::Storage(e) => e.error_code(),
            PartitionError::Producer(e) => e.error_code(),
            PartitionError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            PartitionError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            PartitionError::NotEnoughReplicasAfterAppend { .. } => {
                ErrorCode::NotEnoughReplicasAfterAppend
            }
            PartitionError::NotLeader => ErrorCode::NotLeaderOrFollower,
            PartitionError::NullRecords => ErrorCode::InvalidRecord,
            PartitionError::TimedOut => ErrorCode::RequestTimedOut,
            PartitionError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            PartitionError::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            PartitionError::KeylessRecords { .. } => ErrorCode::InvalidRecord,
            PartitionError::DeletionNotAllowed(_) => ErrorCode::PolicyViolation,
        }
    }
}

/// An outcome: success is NONE, a failure its error's code.
impl<E: ToErrorCode> ToErrorCode for Result<(), E> {
    fn error_code(&self) -> ErrorCode {
        match self {
            Ok(()) => ErrorCode::None,
            Err(e) => e.error_code(),
        }
    }
}

impl ToErrorCode for BatchError {
    fn error_code(&self) -> ErrorCode {
        match self {
            BatchError::TooShort(_) => ErrorCode::CorruptMessage,
            BatchError::LengthMismatch { .. } => ErrorCode::CorruptMessage,
            BatchError::UnsupportedMagic(_) => ErrorCode::InvalidRecord,
            BatchError::UnknownMagic(_) => ErrorCode::CorruptMessage,
            BatchError::NonZeroBaseOffset(_) => ErrorCode::InvalidRecord,
            BatchError::TooLarge { .. } => ErrorCode::MessageTooLarge,
            BatchError::CrcMismatch { .. } => ErrorCode::CorruptMessage,
            BatchError::UnknownCompression(_) => ErrorCode::CorruptMessage,
            BatchError::RecordCountMismatch { .. } => ErrorCode::InvalidRecord,
            BatchError::RecordCountImpossible { .. } => ErrorCode::CorruptMessage,
            BatchError::ControlBatchFromProducer => ErrorCode::InvalidRecord,
            BatchError::TimestampOutOfRange { .. } => ErrorCode::InvalidTimestamp,
            BatchError::UndecodableRecords(_) => ErrorCode::CorruptMessage,
            BatchError::NotAtLogEnd { .. } => ErrorCode::InvalidRecord,
        }
    }
}

impl ToErrorCode for StorageError {
    fn error_code(&self) -> ErrorCode {
        match self {
            StorageError::Io { .. } => ErrorCode::KafkaStorageError,
            StorageError::Closed => ErrorCode::KafkaStorageError,
            StorageError::Corrupt(_) => ErrorCode::KafkaStorageError,
            StorageError::BadDirectory(_) => ErrorCode::KafkaStorageError,
        }
    }
}

impl ToErrorCode for AppendError {
    fn error_code(&self) -> ErrorCode {
        match self {
            AppendError::Batch(e) => e.error_code(),
            AppendError::Storage(e) => e.error_code(),
        }
    }
}

impl ToErrorCode for ReadError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ReadError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            ReadError::Storage(e) => e.error_code(),
        }
    }
}

impl ToErrorCode for ProducerError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ProducerError::FencedEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            ProducerError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        }
    }
}

impl ToErrorCode for AdminFault {
    fn error_code(&self) -> ErrorCode {
        match self {
            AdminFault::InvalidConfig => ErrorCode::InvalidConfig,
            AdminFault::InvalidRequest => ErrorCode::InvalidRequest,
            AdminFault::TopicUnauthorized => ErrorCode::TopicAuthorizationFailed,
            AdminFault::ClusterUnauthorized => ErrorCode::ClusterAuthorizationFailed,
            AdminFault::GroupUnauthorized => ErrorCode::GroupAuthorizationFailed,
            AdminFault::TopicDeletionDisabled => ErrorCode::TopicDeletionDisabled,
            AdminFault::UnknownTopic => ErrorCode::UnknownTopicOrPartition,
            AdminFault::UnknownTopicId => ErrorCode::UnknownTopicId,
            AdminFault::InvalidPartitions => ErrorCode::InvalidPartitions,
            AdminFault::InvalidReplicaAssignment => ErrorCode::InvalidReplicaAssignment,
            AdminFault::TopicAlreadyExists => ErrorCode::TopicAlreadyExists,
            AdminFault::InvalidTopic => ErrorCode::InvalidTopicException,
            AdminFault::InvalidReplicationFactor => ErrorCode::InvalidReplicationFactor,
            AdminFault::Storage => ErrorCode::KafkaStorageError,
            AdminFault::ControllerClosed => ErrorCode::UnknownServerError,
            AdminFault::QuorumTimeout => ErrorCode::RequestTimedOut,
        }
    }
}

impl ToErrorCode for AdminError {
    fn error_code(&self) -> ErrorCode {
        self.fault.error_code()
    }
}

/// The group coordinator's refusals, as Kafka's GroupCoordinator answers
/// the same faults. Storage failures of the offsets log are
/// COORDINATOR_NOT_AVAILABLE (clients retry, finding the coordinator
/// again); records too large are INVALID_COMMIT_OFFSET_SIZE for commits but
/// UNKNOWN_SERVER_ERROR for a group's record, as in Kafka's
/// GroupMetadataManager.
impl ToErrorCode for GroupError {
    fn error_code(&self) -> ErrorCode {
        match self {
            GroupError::NotCoordinator => ErrorCode::NotCoordinator,
            GroupError::CoordinatorGone => ErrorCode::CoordinatorNotAvailable,
            GroupError::Unauthorized => ErrorCode::GroupAuthorizationFailed,
            GroupError::TopicUnauthorized => ErrorCode::TopicAuthorizationFailed,
            GroupError::GroupsMaxReached => ErrorCode::CoordinatorNotAvailable,
            GroupError::GroupDeleting => ErrorCode::CoordinatorNotAvailable,
            GroupError::StoreFailed => ErrorCode::CoordinatorNotAvailable,
            GroupError::InvalidGroupId => ErrorCode::InvalidGroupId,
            GroupError::InvalidSessionTimeout => ErrorCode::InvalidSessionTimeout,
            GroupError::GroupMetadataTooLarge => ErrorCode::GroupMaxSizeReached,
            GroupError::GroupFull => ErrorCode::GroupMaxSizeReached,
            GroupError::InconsistentProtocol => ErrorCode::InconsistentGroupProtocol,
            GroupError::MemberIdRequired => ErrorCode::MemberIdRequired,
            GroupError::UnknownMember => ErrorCode::UnknownMemberId,
            GroupError::FencedInstance => ErrorCode::FencedInstanceId,
            GroupError::IllegalGeneration => ErrorCode::IllegalGeneration,
            GroupError::RebalanceInProgress => ErrorCode::RebalanceInProgress,
            GroupError::GroupNotFound => ErrorCode::GroupIdNotFound,
            GroupError::NonEmptyGroup => ErrorCode::NonEmptyGroup,
            GroupError::SubscribedToTopic => ErrorCode::GroupSubscribedToTopic,
            GroupError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
            GroupError::OffsetMetadataTooLarge => ErrorCode::OffsetMetadataTooLarge,
            GroupError::OffsetRecordsTooLarge => ErrorCode::InvalidCommitOffsetSize,
            GroupError::GroupRecordTooLarge => ErrorCode::UnknownServerError,
        }
    }
}

/// The shard that owns the work stopped (shutdown) before answering.
impl ToErrorCode for ShardGone {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::KafkaStorageError
    }
}

impl From<ShardGone> for ErrorCode {
    fn from(e: ShardGone) -> Self {
        e.error_code()
    }
}

impl ToErrorCode for crate::replication::election::ElectRefused {
    fn error_code(&self) -> ErrorCode {
        use crate::replication::election::ElectRefused;
        match self {
            ElectRefused::NotNeeded => ErrorCode::ElectionNotNeeded,
            ElectRefused::PreferredNotAvailable => ErrorCode::PreferredLeaderNotAvailable,
            ElectRefused::EligibleNotAvailable => ErrorCode::EligibleLeadersNotAvailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::batch::{
        batch_crc, sample_batch as sample, ATTRIBUTES_AT, BATCH_LENGTH_AT, CRC_AT,
        LAST_OFFSET_DELTA_AT, MAGIC_AT, RECORD_COUNT_AT,
    };
    use crate::record::validate_producer_batch;

    // Proves each malformed header is refused with Kafka's error code.
    #[test]
    fn malformed_batches_map_to_kafka_codes() {
        let good = sample();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            validate_producer_batch(&b, 1 << 20)
                .map(|_| ())
                .unwrap_err()
        };
        let recrc = |b: &mut Vec<u8>| {
            let crc = batch_crc(b);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        };
        assert_eq!(
            with(&|b| b.truncate(60)).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(
            with(&|b| b[MAGIC_AT] = 1).error_code(),
            ErrorCode::InvalidRecord
        );
        assert_eq!(
            with(&|b| b[MAGIC_AT] = 3).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(with(&|b| b[7] = 1).error_code(), ErrorCode::InvalidRecord);
        assert_eq!(
            with(&|b| b[BATCH_LENGTH_AT + 3] ^= 1).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(
            with(&|b| *b.last_mut().unwrap() ^= 1).error_code(),
            ErrorCode::CorruptMessage
        );
        assert_eq!(
            with(&|b| {
                b[ATTRIBUTES_AT + 1] |= 0x20;
                recrc(b)
            }),
            BatchError::ControlBatchFromProducer
        );
        assert_eq!(
            with(&|b| {
                b[ATTRIBUTES_AT + 1] |= 0x07;
                recrc(b)
            }),
            BatchError::UnknownCompression(7)
        );
        assert_eq!(
            with(&|b| {
                b[RECORD_COUNT_AT + 3] = 3;
                recrc(b)
            })
            .error_code(),
            ErrorCode::InvalidRecord
        );
        assert!(matches!(
            with(&|b| {
                b[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&1000i32.to_be_bytes());
                b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
                    .copy_from_slice(&999i32.to_be_bytes());
                recrc(b)
            }),
            BatchError::RecordCountImpossible { .. }
        ));
        let size = good.len();
        assert_eq!(
            validate_producer_batch(&good, size - 1)
                .unwrap_err()
                .error_code(),
            ErrorCode::MessageTooLarge
        );
    }

    // Proves idempotent-producer refusals get Kafka's codes.
    #[test]
    fn producer_refusals_map_to_kafka_codes() {
        let gap = ProducerError::OutOfOrderSequence {
            producer_id: 7,
            first_sequence: 22,
            last_sequence: 20,
        };
        assert_eq!(gap.error_code(), ErrorCode::OutOfOrderSequenceNumber);
        let fenced = ProducerError::FencedEpoch {
            producer_id: 7,
            epoch: 0,
            current: 1,
        };
        assert_eq!(fenced.error_code(), ErrorCode::InvalidProducerEpoch);
    }
}
