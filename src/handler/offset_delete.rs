//! OffsetDelete: removes a group's committed offsets for partitions it
//! does not consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does). Runs on
//! the group's coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::errors::ToErrorCode;
use super::{on_coordinator, topic_name};
use crate::group::GroupError;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

/// A topic as asked: its name, whether the principal may read it, and
/// each partition with whether it exists.
type AskedTopic = (String, bool, Vec<(i32, bool)>);

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: OffsetDeleteRequest = req.decode()?;
    let group_id = r.group_id.to_string();
    // Partitions that do not exist, or of topics the principal may not
    // read (Kafka asks READ on each topic), are answered here.
    let mut shape: Vec<AskedTopic> = Vec::with_capacity(r.topics.len());
    let mut known: Vec<(String, Vec<i32>)> = Vec::new();
    for t in r.topics {
        let name = t.name.to_string();
        let readable = auth.topic(Operation::Read, &name);
        let parts: Vec<(i32, bool)> = t
            .partitions
            .iter()
            .map(|p| {
                let i = p.partition_index;
                (i, shard.owner_of(&name, i).is_some())
            })
            .collect();
        let existing: Vec<i32> = parts.iter().filter(|(_, e)| *e).map(|(i, _)| *i).collect();
        if readable && !existing.is_empty() {
            known.push((name.clone(), existing));
        }
        shape.push((name, readable, parts));
    }
    let gid = group_id.clone();
    let outcome = if !auth.group(Operation::Delete, &group_id) {
        Err(GroupError::Unauthorized)
    } else {
        on_coordinator(shard, &group_id, move |c| async move {
            c.offset_delete(&gid, known).await
        })
        .await
        .unwrap_or(Err(GroupError::CoordinatorGone))
    };
    let response = match outcome {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.error_code().code()),
        Ok(answers) => {
            let topics = shape
                .into_iter()
                .map(|(name, readable, parts)| {
                    let answered = answers.iter().find(|(t, _)| *t == name);
                    let partitions = parts
                        .into_iter()
                        .map(|(i, exists)| {
                            let e = if !readable {
                                Err(GroupError::TopicUnauthorized)
                            } else if !exists {
                                Err(GroupError::UnknownTopicOrPartition)
                            } else {
                                answered
                                    .and_then(|(_, ps)| ps.iter().find(|(p, _)| *p == i))
                                    .map_or(Ok(()), |(_, e)| *e)
                            };
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(i)
                                .with_error_code(e.error_code().code())
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    };
    req.respond(&response)
}
