//! DeleteRecords: moves each partition's log start offset forward (-1:
//! to the high watermark).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::ToErrorCode;
use super::{per_partition, topic_name};
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::{LocalPartition, Shard};

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: DeleteRecordsRequest = req.decode()?;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .into_iter()
                .map(|p| (p.partition_index, p.offset))
                .collect();
            (t.name.to_string(), parts)
        })
        .collect();
    let results = per_partition(shard, topics, delete_before, |e| (e, -1)).await;
    let topics = results
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(index, (error, low))| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error.code())
                        .with_low_watermark(low)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    req.respond(&DeleteRecordsResponse::default().with_topics(topics))
}

async fn delete_before(p: Rc<LocalPartition>, offset: i64) -> (ErrorCode, i64) {
    let log = p.partition.log();
    let offset = if offset == -1 {
        log.offsets().high_watermark
    } else {
        offset
    };
    match log.delete_records_before(offset).await {
        Ok(low) => (ErrorCode::None, low),
        Err(e) => (e.error_code(), -1),
    }
}
