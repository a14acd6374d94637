//! OffsetForLeaderEpoch: the end offset of a leader epoch. A single node
//! never changes leader, so epoch 0 is the only epoch and it ends at the
//! log end offset.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{check_leader_epoch, per_partition, topic_name, LEADER_EPOCH};
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::{LocalPartition, Shard};

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: OffsetForLeaderEpochRequest = req.decode()?;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .into_iter()
                .map(|p| (p.partition, (p.current_leader_epoch, p.leader_epoch)))
                .collect();
            (t.topic.to_string(), parts)
        })
        .collect();
    let results = per_partition(shard, topics, end_of_epoch, |e| (e, -1, -1)).await;
    let topics = results
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(index, (error, epoch, end))| {
                    EpochEndOffset::default()
                        .with_partition(index)
                        .with_error_code(error.code())
                        .with_leader_epoch(epoch)
                        .with_end_offset(end)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    req.respond(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}

/// (error, epoch, end offset). As Kafka answers: the requested epoch or
/// an earlier one ends at the log end (there is no earlier epoch); a
/// later one is unknown (-1, -1).
async fn end_of_epoch(
    p: Rc<LocalPartition>,
    (current, requested): (i32, i32),
) -> (ErrorCode, i32, i64) {
    let error = check_leader_epoch(current);
    if error != ErrorCode::None {
        return (error, -1, -1);
    }
    if requested > LEADER_EPOCH {
        return (ErrorCode::None, -1, -1);
    }
    (
        ErrorCode::None,
        LEADER_EPOCH,
        p.partition.log().offsets().log_end_offset,
    )
}
