//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the
//! first offset at or after a timestamp.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::errors::ToErrorCode;
use super::{check_leader_epoch, per_partition, topic_name, LEADER_EPOCH};
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::{LocalPartition, Shard};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// (error, timestamp, offset)
type Found = (ErrorCode, i64, i64);

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: ListOffsetsRequest = req.decode()?;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .into_iter()
                .map(|p| (p.partition_index, (p.timestamp, p.current_leader_epoch)))
                .collect();
            (t.name.to_string(), parts)
        })
        .collect();
    let results = per_partition(shard, topics, lookup, |e| (e, -1, -1)).await;
    let version = req.version;
    let topics = results
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(index, (error, timestamp, offset))| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(error.code())
                        .with_timestamp(timestamp)
                        .with_offset(offset)
                        .with_leader_epoch(if error == ErrorCode::None && version >= 4 {
                            LEADER_EPOCH
                        } else {
                            -1
                        })
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    req.respond(&ListOffsetsResponse::default().with_topics(topics))
}

async fn lookup(p: Rc<LocalPartition>, (timestamp, epoch): (i64, i32)) -> Found {
    let error = check_leader_epoch(epoch);
    if error != ErrorCode::None {
        return (error, -1, -1);
    }
    let log = p.partition.log();
    let offsets = log.offsets();
    match timestamp {
        LATEST => (ErrorCode::None, -1, offsets.high_watermark),
        EARLIEST => (ErrorCode::None, -1, offsets.log_start_offset),
        MAX_TIMESTAMP => match log.max_timestamp() {
            Some(t) => (ErrorCode::None, t.timestamp, t.offset),
            None => (ErrorCode::None, -1, -1),
        },
        ts if ts < 0 => (ErrorCode::None, -1, -1),
        ts => match log.offset_for_timestamp(ts).await {
            Ok(Some(t)) if t.offset < offsets.high_watermark => {
                (ErrorCode::None, t.timestamp, t.offset)
            }
            Ok(_) => (ErrorCode::None, -1, -1),
            Err(e) => (e.error_code(), -1, -1),
        },
    }
}
