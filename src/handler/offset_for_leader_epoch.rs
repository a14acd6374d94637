//! OffsetForLeaderEpoch: the end offset of a leader epoch (see
//! [`Partition::end_offset_for_epoch`]).

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::errors::{Failure, ToErrorCode};
use super::{Decoded, PartitionApi, Response, Topic};
use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::routing_table::RouteError;

pub struct OffsetForLeaderEpoch;

impl PartitionApi for OffsetForLeaderEpoch {
    type Request = ();
    type Params = ();
    /// (current leader epoch, the epoch asked about)
    type Input = (i32, i32);
    /// (epoch, end offset); `None` for an epoch the partition does not know.
    type Output = Result<Option<(i32, i64)>, Failure>;

    fn decode(req: &RequestFrame) -> Result<Decoded<Self>, FrameError> {
        let request: OffsetForLeaderEpochRequest = req.decode()?;
        let topics = request
            .topics
            .into_iter()
            .map(|t| Topic {
                name: t.topic,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| (p.partition, (p.current_leader_epoch, p.leader_epoch)))
                    .collect(),
            })
            .collect();
        Ok(Decoded::Route {
            request: (),
            params: (),
            topics,
        })
    }

    async fn serve(p: Rc<Partition>, _: (), (current, requested): (i32, i32)) -> Self::Output {
        p.check_leader_epoch(current)?;
        Ok(p.end_offset_for_epoch(requested))
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
                        let r = EpochEndOffset::default().with_partition(index);
                        let (epoch, end) = match &answer {
                            Ok(Some((epoch, end))) => (*epoch, *end),
                            Ok(None) | Err(_) => (-1, -1),
                        };
                        let r = r.with_leader_epoch(epoch).with_end_offset(end);
                        match answer {
                            Err(e) => r.with_error_code(e.error_code().code()),
                            Ok(_) => r,
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult::default()
                    .with_topic(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        let response = OffsetForLeaderEpochResponse::default().with_topics(topics);
        Ok(Some(vec![req.respond(&response)?]))
    }
}
