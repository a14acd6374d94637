//! OffsetFetch: a group's committed offsets (-1 where none), for the
//! partitions asked or, with a null topic list, all of them. v8+ asks for
//! several groups at once; each is answered by its coordinator shard.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};

use super::errors::ToErrorCode;
use super::{on_coordinator, str_bytes, topic_name};
use crate::error_code::ErrorCode;
use crate::group::{FetchedOffsets, GroupError, OffsetValue};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

/// Offset, leader epoch and metadata as the response carries them.
fn committed(v: Option<OffsetValue>) -> (i64, i32, String) {
    match v {
        Some(v) => (v.offset, v.leader_epoch, v.metadata),
        None => (-1, -1, String::new()),
    }
}

/// A topic's committed offsets; `true` where the principal may not
/// describe the topic (its partitions answer TOPIC_AUTHORIZATION_FAILED).
type Answered = Vec<(String, bool, Vec<(i32, Option<OffsetValue>)>)>;

/// DESCRIBE on the group, then the offsets; of all a group's topics only
/// those the principal may describe are listed, and a topic asked for by
/// name that it may not describe is refused (Kafka's rules).
async fn fetch_group(
    shard: &Rc<Shard>,
    auth: &ConnAuth,
    group_id: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Answered, GroupError> {
    if !auth.group(Operation::Describe, &group_id) {
        return Err(GroupError::Unauthorized);
    }
    let all = topics.is_none();
    let gid = group_id.clone();
    let fetched: FetchedOffsets =
        on_coordinator(
            shard,
            &group_id,
            move |c| async move { c.fetch(&gid, topics) },
        )
        .await
        .unwrap_or(Err(GroupError::CoordinatorGone))?;
    Ok(fetched
        .into_iter()
        .filter_map(|(name, parts)| {
            let denied = !auth.topic(Operation::Describe, &name);
            if denied && all {
                return None;
            }
            Some((name, denied, parts))
        })
        .collect())
}

fn partition_error(denied: bool, otherwise: i16) -> i16 {
    if denied {
        ErrorCode::TopicAuthorizationFailed.code()
    } else {
        otherwise
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let r: OffsetFetchRequest = req.decode()?;
    let v = req.version;
    if v >= 8 {
        let mut groups = Vec::with_capacity(r.groups.len());
        for g in r.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect::<Vec<_>>()
            });
            let group_id = g.group_id.to_string();
            let (error, fetched) = match fetch_group(shard, auth, group_id.clone(), topics).await {
                Ok(f) => (Ok(()), f),
                Err(e) => (Err(e), Vec::new()),
            };
            let topics = fetched
                .into_iter()
                .map(|(name, denied, parts)| {
                    let partitions = parts
                        .into_iter()
                        .map(|(i, c)| {
                            let (offset, epoch, metadata) = committed(c);
                            OffsetFetchResponsePartitions::default()
                                .with_partition_index(i)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(str_bytes(metadata)))
                                .with_error_code(partition_error(denied, 0))
                        })
                        .collect();
                    OffsetFetchResponseTopics::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect();
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(str_bytes(group_id)))
                    .with_topics(topics)
                    .with_error_code(error.error_code().code()),
            );
        }
        return req.respond(&OffsetFetchResponse::default().with_groups(groups));
    }
    let topics = r.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect::<Vec<_>>()
    });
    // v1 has no null topic list: an empty one is what was sent.
    let asked = topics.clone();
    let (error, fetched) = match fetch_group(shard, auth, r.group_id.to_string(), topics).await {
        Ok(f) => (Ok(()), f),
        // Without a top-level error field (v1), each partition carries it.
        Err(e) => (
            Err(e),
            asked
                .unwrap_or_default()
                .into_iter()
                .map(|(t, ps)| (t, false, ps.into_iter().map(|p| (p, None)).collect()))
                .collect(),
        ),
    };
    let group_error = if v < 2 { error } else { Ok(()) };
    let topics = fetched
        .into_iter()
        .map(|(name, denied, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(i, c)| {
                    let (offset, epoch, metadata) = committed(c);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(i)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(if v >= 5 { epoch } else { -1 })
                        .with_metadata(Some(str_bytes(metadata)))
                        .with_error_code(partition_error(denied, group_error.error_code().code()))
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default()
        .with_topics(topics)
        .with_error_code(if v >= 2 { error.error_code().code() } else { 0 });
    req.respond(&response)
}
