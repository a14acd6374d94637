//! OffsetCommit: stores a group's consumed positions, answered once they
//! are durable. Partitions are checked against the metadata here; the
//! commit runs on the group's coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::errors::ToErrorCode;
use super::{on_coordinator, topic_name};
use crate::group::{CommitOffset, CommitParams, GroupError};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: OffsetCommitRequest = req.decode()?;
    let v = req.version;
    let group_id = r.group_id.to_string();
    let mut shape: Vec<(String, Vec<i32>)> = Vec::with_capacity(r.topics.len());
    let mut offsets = Vec::new();
    // READ on the group, then on each topic (Kafka's order): a refused
    // partition is answered here and never reaches the coordinator.
    let group_ok = auth.group(Operation::Read, &group_id);
    let mut refused: Vec<Option<GroupError>> = Vec::new();
    for t in r.topics {
        let name = t.name.to_string();
        let topic_ok = group_ok && auth.topic(Operation::Read, &name);
        let mut indexes = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            indexes.push(p.partition_index);
            if !group_ok {
                refused.push(Some(GroupError::Unauthorized));
                continue;
            } else if !topic_ok {
                refused.push(Some(GroupError::TopicUnauthorized));
                continue;
            }
            refused.push(None);
            offsets.push(CommitOffset {
                topic: name.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.map(|m| m.to_string()),
                exists: shard.owner_of(&name, p.partition_index).is_some(),
            });
        }
        shape.push((name, indexes));
    }
    let n = offsets.len();
    let params = CommitParams {
        group_id: group_id.clone(),
        generation_id: r.generation_id_or_member_epoch,
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.map(|s| s.to_string()),
        offsets,
    };
    let outcomes = if n == 0 && refused.iter().any(Option::is_some) {
        Vec::new()
    } else {
        on_coordinator(
            shard,
            &group_id,
            move |c| async move { c.commit(params).await },
        )
        .await
        .unwrap_or_else(|| vec![Err(GroupError::CoordinatorGone); n])
    };
    // The coordinator answers every partition it was sent, in order.
    debug_assert_eq!(outcomes.len(), n);
    let mut served = outcomes.into_iter();
    let mut outcomes = refused.into_iter().map(|r| match r {
        Some(e) => Err(e),
        None => served.next().unwrap_or(Err(GroupError::CoordinatorGone)),
    });
    let topics = shape
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .zip(outcomes.by_ref())
                .map(|(i, outcome)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(i)
                        .with_error_code(outcome.error_code().code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    req.respond(&OffsetCommitResponse::default().with_topics(topics))
}
