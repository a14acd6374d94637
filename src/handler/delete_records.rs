//! DeleteRecords: moves each partition's log start offset forward (-1:
//! to the high watermark).

use std::rc::Rc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::{Failure, ToErrorCode};
use super::{Decoded, PartitionApi, Response, Topic};
use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::routing_table::RouteError;

pub struct DeleteRecords;

impl PartitionApi for DeleteRecords {
    type Request = ();
    type Params = ();
    /// The offset to delete before.
    type Input = i64;
    /// The new low watermark.
    type Output = Result<i64, Failure>;

    fn decode(req: &RequestFrame) -> Result<Decoded<Self>, FrameError> {
        let request: DeleteRecordsRequest = req.decode()?;
        let topics = request
            .topics
            .into_iter()
            .map(|t| Topic {
                name: t.name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| (p.partition_index, p.offset))
                    .collect(),
            })
            .collect();
        Ok(Decoded::Route {
            request: (),
            params: (),
            topics,
        })
    }

    async fn serve(p: Rc<Partition>, _: (), offset: i64) -> Self::Output {
        Ok(p.delete_records(offset).await?)
    }

    fn unrouted(error: RouteError) -> Self::Output {
        Err(error.into())
    }

    fn respond(
        req: &RequestFrame,
        _: (),
        answers: Vec<Topic<Self::Output>>,
    ) -> Result<Option<Response>, FrameError> {
        let topics = answers
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|(index, answer)| {
                        let r = DeleteRecordsPartitionResult::default().with_partition_index(index);
                        match answer {
                            Ok(low) => r.with_low_watermark(low),
                            Err(e) => r
                                .with_error_code(e.error_code().code())
                                .with_low_watermark(-1),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        let response = DeleteRecordsResponse::default().with_topics(topics);
        Ok(Some(vec![req.respond(&response)?]))
    }
}
