//! DescribeProducers (`kafka-transactions describe-producers`): the
//! idempotent producers each partition holds state for, as its leader
//! knows them: producer id, epoch, the last sequence and the max timestamp
//! of its newest batch. Transactions are not served yet, so every producer
//! has no coordinator epoch (-1) and no open transaction (-1).

use std::rc::Rc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::errors::{Failure, ToErrorCode};
use super::{str_bytes, Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::producer_state::ProducerSummary;
use crate::partition::Partition;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;

pub struct DescribeProducers;

impl PartitionApi for DescribeProducers {
    type Request = ();
    type Params = ();
    type Input = ();
    type Output = Result<Vec<ProducerSummary>, Failure>;

    fn access(_: &()) -> Access {
        Access::Topic(Operation::Read)
    }

    fn decode(req: &RequestFrame, _: &Limits) -> Result<Decoded<Self>, FrameError> {
        let request: DescribeProducersRequest = req.decode()?;
        let topics = Topic::from_request(
            request.topics,
            |t| (t.name, t.partition_indexes),
            |p| (p, ()),
        );
        Ok(Decoded::partitions(topics))
    }

    async fn serve(p: Rc<Partition>, _: (), _: ()) -> Self::Output {
        Ok(p.producers())
    }

    fn respond(req: &RequestFrame, _: (), answers: Answers<Self>) -> Reply {
        let topics = Topic::to_response(
            answers,
            |index, answer| {
                let r = PartitionResponse::default().with_partition_index(index);
                match answer {
                    Ok(producers) => r.with_active_producers(
                        producers
                            .into_iter()
                            .map(|p| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(p.producer_id))
                                    .with_producer_epoch(i32::from(p.epoch))
                                    .with_last_sequence(p.last_sequence)
                                    .with_last_timestamp(p.last_timestamp)
                                    .with_coordinator_epoch(-1)
                                    .with_current_txn_start_offset(-1)
                            })
                            .collect(),
                    ),
                    Err(e) => r
                        .with_error_code(e.error_code().code())
                        .with_error_message(Some(str_bytes(e.to_string()))),
                }
            },
            |name, partitions| {
                TopicResponse::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        let response = DescribeProducersResponse::default().with_topics(topics);
        Ok(Some(vec![req.respond(&response)?]))
    }
}
