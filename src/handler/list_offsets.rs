//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), or the
//! first offset at or after a timestamp.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::errors::{Failure, ToErrorCode};
use super::{Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::TimestampOffset;
use crate::partition::{OffsetQuery, Partition};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;

pub struct ListOffsets;

/// What a partition answers: the offset found (if any) and the leader
/// epoch it was found under.
pub type Found = (Option<TimestampOffset>, i32);

impl PartitionApi for ListOffsets {
    type Request = ();
    type Params = ();
    /// (timestamp or -1/-2/-3, current leader epoch)
    type Input = (i64, i32);
    type Output = Result<Found, Failure>;

    fn access(_: &()) -> Access {
        Access::Topic(Operation::Describe)
    }

    fn decode(req: &RequestFrame, _: &Limits) -> Result<Decoded<Self>, FrameError> {
        let request: ListOffsetsRequest = req.decode()?;
        let topics = Topic::from_request(
            request.topics,
            |t| (t.name, t.partitions),
            |p| (p.partition_index, (p.timestamp, p.current_leader_epoch)),
        );
        Ok(Decoded::partitions(topics))
    }

    async fn serve(p: Rc<Partition>, _: (), (timestamp, epoch): (i64, i32)) -> Self::Output {
        p.check_leader_epoch(epoch)?;
        let found = match OffsetQuery::from_wire(timestamp) {
            Some(query) => p.list_offset(query).await?,
            None => None,
        };
        Ok((found, p.leader_epoch()))
    }

    fn respond(req: &RequestFrame, _: (), answers: Answers<Self>) -> Reply {
        let version = req.version;
        let topics = Topic::to_response(
            answers,
            |index, answer| {
                let r = ListOffsetsPartitionResponse::default()
                    .with_partition_index(index)
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1);
                match answer {
                    Ok((found, epoch)) => {
                        let r = match found {
                            Some(t) => r.with_timestamp(t.timestamp).with_offset(t.offset),
                            None => r,
                        };
                        r.with_leader_epoch(if version >= 4 { epoch } else { -1 })
                    }
                    Err(e) => r.with_error_code(e.error_code().code()),
                }
            },
            |name, partitions| {
                ListOffsetsTopicResponse::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        let response = ListOffsetsResponse::default().with_topics(topics);
        Ok(Some(vec![req.respond(&response)?]))
    }
}
