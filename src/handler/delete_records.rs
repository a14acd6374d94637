//! DeleteRecords: moves each partition's log start offset forward (-1:
//! to the high watermark). On a leader of several replicas the answer
//! waits (up to the request's timeout) until the in-sync followers' log
//! starts have followed, and gives the low watermark, the smallest of
//! them, as Kafka does.

use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::{Failure, ToErrorCode};
use super::{Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::{Partition, PartitionError};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;

pub struct DeleteRecords;

/// How often a DeleteRecords looks whether the followers have followed.
const FOLLOW_CHECK: Duration = Duration::from_millis(20);

impl PartitionApi for DeleteRecords {
    type Request = ();
    /// The request's timeout.
    type Params = Duration;
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
        Ok(Decoded::Route {
            request: (),
            params: Duration::from_millis(request.timeout_ms.max(0) as u64),
            topics,
        })
    }

    async fn serve(p: Rc<Partition>, timeout: Duration, offset: i64) -> Self::Output {
        let start = p.delete_records(offset).await?;
        let deadline = Instant::now() + timeout;
        loop {
            let low = p.low_watermark();
            if low >= start {
                return Ok(low);
            }
            if Instant::now() >= deadline {
                return Err(PartitionError::TimedOut.into());
            }
            glommio::timer::sleep(FOLLOW_CHECK).await;
        }
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
