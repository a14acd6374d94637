//! Produce: each partition's record batch is produced on its owning shard
//! (see [`Partition::produce`]: validation, producer state, append, and the
//! wait acks asks for: 0 no response, 1 once written to the log, -1 (all)
//! once durable).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::errors::{Failure, Refusal, ToErrorCode};
use super::{str_bytes, Answers, Decoded, PartitionApi, Reply, Topic};
use crate::partition::{Acks, Partition, Produced};
use crate::protocol::{FrameError, RequestFrame};

pub struct Produce;

#[derive(Debug, Clone, Copy)]
pub struct Params {
    acks: Acks,
    timeout: Duration,
}

impl PartitionApi for Produce {
    /// The acks field as sent: acks=0 gets no response.
    type Request = i16;
    type Params = Params;
    type Input = Option<Bytes>;
    type Output = Result<Produced, Failure>;

    fn decode(req: &RequestFrame) -> Result<Decoded<Self>, FrameError> {
        let request: ProduceRequest = req.decode()?;
        let topics = Topic::from_request(
            request.topic_data,
            |t| (t.name, t.partition_data),
            |p| (p.index, p.records),
        );
        let refusal = if request.transactional_id.is_some() {
            Some(Refusal::Transactional)
        } else if Acks::from_wire(request.acks).is_none() {
            Some(Refusal::InvalidAcks(request.acks))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // Every partition gets the refusal; no partition is touched.
            let answers = refuse_all(topics, refusal);
            return Ok(Decoded::Answer(respond(req, request.acks, answers)?));
        }
        let acks = Acks::from_wire(request.acks).expect("checked above");
        Ok(Decoded::Route {
            request: request.acks,
            params: Params {
                acks,
                timeout: Duration::from_millis(request.timeout_ms.max(0) as u64),
            },
            topics,
        })
    }

    async fn serve(
        partition: Rc<Partition>,
        params: Params,
        records: Option<Bytes>,
    ) -> Self::Output {
        Ok(partition
            .produce(records.as_deref(), params.acks, params.timeout)
            .await?)
    }

    fn respond(req: &RequestFrame, acks: i16, answers: Answers<Self>) -> Reply {
        respond(req, acks, answers)
    }
}

fn refuse_all(
    topics: Vec<Topic<Option<Bytes>>>,
    refusal: Refusal,
) -> Vec<Topic<Result<Produced, Failure>>> {
    Topic::to_response(
        topics,
        |index, _| (index, Err(Failure::Refused(refusal))),
        |name, partitions| Topic { name, partitions },
    )
}

/// The response (`None` for acks=0, whose producers expect no answer).
fn respond(req: &RequestFrame, acks: i16, answers: Answers<Produce>) -> Reply {
    if acks == 0 {
        return Ok(None);
    }
    let version = req.version;
    let responses = Topic::to_response(
        answers,
        |index, answer| {
            let r = PartitionProduceResponse::default().with_index(index);
            match answer {
                Ok(p) => r
                    .with_base_offset(p.base_offset)
                    .with_log_append_time_ms(p.log_append_time.unwrap_or(-1))
                    .with_log_start_offset(if version >= 5 { p.log_start_offset } else { -1 }),
                Err(e) => r
                    .with_error_code(e.error_code().code())
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1)
                    .with_error_message(e.message().filter(|_| version >= 8).map(str_bytes)),
            }
        },
        |name, partition_responses| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partition_responses)
        },
    );
    let response = ProduceResponse::default().with_responses(responses);
    Ok(Some(vec![req.respond(&response)?]))
}
