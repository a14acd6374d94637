//! Why the group coordinator refused a request. The coordinator names the
//! cause; `handler/errors.rs` decides which Kafka error code each cause
//! becomes, so nothing under `group/` knows the codes.

use super::persistence::StoreError;

/// A refusal of a group request, or of one partition or member of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// This shard does not coordinate the group, or it is shutting down.
    #[error("this shard does not coordinate the group")]
    NotCoordinator,
    /// The principal may not do this to the group (its ACLs).
    #[error("not authorized for the group")]
    Unauthorized,
    /// The principal may not do this to the topic (its ACLs).
    #[error("not authorized for the topic")]
    TopicUnauthorized,
    /// The coordinating shard stopped before it answered. The handlers
    /// report this when the request could not reach the coordinator.
    #[error("the coordinating shard is gone")]
    CoordinatorGone,
    /// This shard holds its share of shardlog.groups.max already.
    #[error("shardlog.groups.max reached")]
    GroupsMaxReached,
    /// The group is being deleted.
    #[error("the group is being deleted")]
    GroupDeleting,
    /// Writing to the offsets log failed.
    #[error("the offsets log failed")]
    StoreFailed,
    /// The group id is empty or too long.
    #[error("invalid group id")]
    InvalidGroupId,
    /// The session timeout is outside group.{min,max}.session.timeout.ms.
    #[error("session timeout out of bounds")]
    InvalidSessionTimeout,
    /// The group's protocol metadata would exceed
    /// shardlog.group.metadata.max.bytes.
    #[error("group metadata too large")]
    GroupMetadataTooLarge,
    /// The group has group.max.size members already.
    #[error("group.max.size reached")]
    GroupFull,
    /// The protocol type or protocols do not match the group's.
    #[error("inconsistent group protocol")]
    InconsistentProtocol,
    /// A first JoinGroup (v4+): rejoin with the member id handed out.
    #[error("member id required")]
    MemberIdRequired,
    /// The member id is not (or no longer) a member of the group.
    #[error("unknown member id")]
    UnknownMember,
    /// A newer instance with the same group.instance.id took the place.
    #[error("fenced instance id")]
    FencedInstance,
    /// The request is for another generation than the group's.
    #[error("illegal generation")]
    IllegalGeneration,
    /// The group is rebalancing: rejoin.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// No such group.
    #[error("group id not found")]
    GroupNotFound,
    /// Only a group without members can be deleted.
    #[error("the group has members")]
    NonEmptyGroup,
    /// OffsetDelete of a topic the group consumes.
    #[error("the group is subscribed to the topic")]
    SubscribedToTopic,
    /// A commit (or offset deletion) for a partition that does not exist.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// Commit metadata longer than offset.metadata.max.bytes.
    #[error("offset metadata too large")]
    OffsetMetadataTooLarge,
    /// Committed offsets whose records the offsets log cannot take.
    #[error("offset records too large")]
    OffsetRecordsTooLarge,
    /// A group record the offsets log cannot take.
    #[error("group record too large")]
    GroupRecordTooLarge,
}

impl GroupError {
    /// A failed write of committed offsets (or of their tombstones).
    pub fn storing_offsets(e: &StoreError) -> Self {
        match e {
            StoreError::TooLarge(_) => GroupError::OffsetRecordsTooLarge,
            StoreError::Closed => GroupError::NotCoordinator,
            StoreError::Storage(_) => GroupError::StoreFailed,
        }
    }

    /// A failed write of a group's record (or of its tombstone).
    pub fn storing_group(e: &StoreError) -> Self {
        match e {
            StoreError::TooLarge(_) => GroupError::GroupRecordTooLarge,
            StoreError::Closed => GroupError::NotCoordinator,
            StoreError::Storage(_) => GroupError::StoreFailed,
        }
    }
}
