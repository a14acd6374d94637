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
use crate::partition::PartitionAppendError;
use crate::record::BatchError;
use crate::shard::ShardGone;
use crate::storage::{AppendError, ReadError, StorageError};

/// The Kafka error code a client receives for an internal error.
pub trait ToErrorCode {
    fn error_code(&self) -> ErrorCode;
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

impl ToErrorCode for PartitionAppendError {
    fn error_code(&self) -> ErrorCode {
        match self {
            PartitionAppendError::Append(e) => e.error_code(),
            PartitionAppendError::Producer(e) => e.error_code(),
        }
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
