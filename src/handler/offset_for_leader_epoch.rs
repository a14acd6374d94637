//! OffsetForLeaderEpoch: the end offset of a leader epoch (see
//! [`Partition::end_offset_for_epoch`]).

use std::rc::Rc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::errors::{Failure, ToErrorCode};
use super::{Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;

pub struct OffsetForLeaderEpoch;

impl PartitionApi for OffsetForLeaderEpoch {
    /// Whether a replica sent it.
    type Request = bool;
    type Params = ();
    /// (current leader epoch, the epoch asked about)
    type Input = (i32, i32);
    /// (epoch, end offset); `None` for an epoch the partition does not know.
    type Output = Result<Option<(i32, i64)>, Failure>;

    /// A follower's request (replica_id >= 0) needs CLUSTER_ACTION, a
    /// client's DESCRIBE.
    fn access(follower: &bool) -> Access {
        if *follower {
            Access::Cluster(Operation::ClusterAction)
        } else {
            Access::Topic(Operation::Describe)
        }
    }

    fn decode(req: &RequestFrame, _: &Limits) -> Result<Decoded<Self>, FrameError> {
        let request: OffsetForLeaderEpochRequest = req.decode()?;
        let topics = Topic::from_request(
            request.topics,
            |t| (t.topic, t.partitions),
            |p| (p.partition, (p.current_leader_epoch, p.leader_epoch)),
        );
        Ok(Decoded::Route {
            request: request.replica_id.0 >= 0,
            params: (),
            topics,
        })
    }

    async fn serve(p: Rc<Partition>, _: (), (current, requested): (i32, i32)) -> Self::Output {
        p.check_leader_epoch(current)?;
        Ok(p.end_offset_for_epoch(requested))
    }

    fn respond(req: &RequestFrame, _: bool, answers: Answers<Self>) -> Reply {
        let topics = Topic::to_response(
            answers,
            |index, answer| {
                let r = EpochEndOffset::default().with_partition(index);
                match answer {
                    Ok(Some((epoch, end))) => r.with_leader_epoch(epoch).with_end_offset(end),
                    Ok(None) => r.with_leader_epoch(-1).with_end_offset(-1),
                    Err(e) => r
                        .with_error_code(e.error_code().code())
                        .with_leader_epoch(-1)
                        .with_end_offset(-1),
                }
            },
            |name, partitions| {
                OffsetForLeaderTopicResult::default()
                    .with_topic(name)
                    .with_partitions(partitions)
            },
        );
        let response = OffsetForLeaderEpochResponse::default().with_topics(topics);
        Ok(Some(vec![req.respond(&response)?]))
    }
}
