//! DescribeTopicPartitions (KIP-966, Kafka 3.8+): topics and their
//! partitions as Metadata shows them, in pages. Topics come in name order
//! (all of them when none is named, skipping those that cannot be
//! described, as Kafka does); at most `response_partition_limit`
//! partitions (capped at Kafka's `max.request.partition.size.limit`, 2000)
//! are answered, and `next_cursor` names the topic and partition the next
//! page starts at. A cursor whose topic is not among those asked for is
//! INVALID_REQUEST for every topic asked, as Kafka answers it.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};

use super::metadata::partition_views;
use super::{authorized, topic_name};
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::metadata::is_internal;
use crate::shard::Shard;

/// Kafka's `max.request.partition.size.limit` default.
pub const PARTITION_LIMIT_MAX: i32 = 2000;

pub fn handle(shard: &Rc<Shard>, req: &RequestFrame, auth: &ConnAuth) -> Result<Bytes, FrameError> {
    let request: DescribeTopicPartitionsRequest = req.decode()?;
    let md = shard.metadata();
    let mut asked: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    asked.sort();
    asked.dedup();
    let all = asked.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index.max(0)));
    if let Some((topic, _)) = &cursor {
        if !all && !asked.contains(topic) {
            let topics = asked
                .iter()
                .map(|name| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_name(Some(topic_name(name.clone())))
                        .with_topic_authorized_operations(authorized::NOT_REQUESTED)
                })
                .collect();
            return req.respond(&DescribeTopicPartitionsResponse::default().with_topics(topics));
        }
    }
    let names: Vec<String> = if all {
        md.topics.keys().cloned().collect()
    } else {
        asked
    };
    let mut left = request
        .response_partition_limit
        .clamp(1, PARTITION_LIMIT_MAX) as usize;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names
        .into_iter()
        .filter(|n| cursor.as_ref().is_none_or(|(c, _)| n >= c))
    {
        let denied = !auth.topic(Operation::Describe, &name);
        if denied && all {
            continue;
        }
        if denied {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                    .with_name(Some(topic_name(name)))
                    .with_topic_authorized_operations(authorized::NOT_REQUESTED),
            );
            continue;
        }
        let Some(meta) = md.topics.get(&name) else {
            if !all {
                topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                        .with_name(Some(topic_name(name)))
                        .with_topic_authorized_operations(authorized::NOT_REQUESTED),
                );
            }
            continue;
        };
        if left == 0 {
            next_cursor = Some(cursor_at(&name, 0));
            break;
        }
        let first = match &cursor {
            Some((c, p)) if *c == name => *p as usize,
            _ => 0,
        };
        let views = partition_views(shard, meta, auth.listener, ErrorCode::ListenerNotFound);
        let end = views.len().min(first + left);
        let partitions: Vec<_> = views
            .into_iter()
            .enumerate()
            .skip(first)
            .take(end.saturating_sub(first))
            .map(|(i, v)| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(v.error.code())
                    .with_partition_index(i as i32)
                    .with_leader_id(BrokerId(v.leader))
                    .with_leader_epoch(v.leader_epoch)
                    .with_replica_nodes(v.replicas)
                    .with_isr_nodes(v.isr)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(v.offline)
            })
            .collect();
        left -= partitions.len();
        let more_in_topic = end < meta.partitions.len();
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(name.clone())))
                .with_topic_id(meta.uuid())
                .with_is_internal(is_internal(&name))
                .with_partitions(partitions)
                .with_topic_authorized_operations(authorized::topic(auth, &name)),
        );
        if more_in_topic {
            next_cursor = Some(cursor_at(&name, end as i32));
            break;
        }
    }
    let response = DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor);
    req.respond(&response)
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(TopicName(super::str_bytes(topic.to_string())))
        .with_partition_index(partition)
}
