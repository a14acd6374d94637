//! DeleteRecords: moves each partition's log start offset forward (-1:
//! to the high watermark).

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::{Failure, ToErrorCode};
use super::{Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;

pub struct DeleteRecords;

impl PartitionApi for DeleteRecords {
    type Request = ();
    type Params = ();
    /// The offset to delete before.
    type Input = i64;
    /// The new low watermark.
    type Output = Result<i64, Failure>;

    fn access(_: &()) -> Access {
        Access::Topic(Operation::Delete)
    }

    fn decode(req: &RequestFrame, _: &Limits) -> Result<Decoded<Self>, FrameError> {
        let request: DeleteRecordsRequest = req.decode()?;
        let topics = Topic::from_request(
            request.topics,
            |t| (t.name, t.partitions),
            |p| (p.partition_index, p.offset),
        );
        Ok(Decoded::partitions(topics))
    }

    async fn serve(p: Rc<Partition>, _: (), offset: i64) -> Self::Output {
        Ok(p.delete_records(offset).await?)
    }

    fn respond(req: &RequestFrame, _: (), answers: Answers<Self>) -> Reply {
        let topics = Topic::to_response(
            answers,
            |index, answer| {
                let r = DeleteRecordsPartitionResult::default().with_partition_index(index);
                match answer {
                    Ok(low) => r.with_low_watermark(low),
                    Err(e) => r
                        .with_error_code(e.error_code().code())
                        .with_low_watermark(-1),
                }
            },
            |name, partitions| {
                DeleteRecordsTopicResult::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        let response = DeleteRecordsResponse::default().with_topics(topics);
        Ok(Some(vec![req.respond(&response)?]))
    }
}
