//! Produce: each partition's record batch is produced on its owning shard
//! (see [`Partition::produce`]: validation, producer state, append, and the
//! wait acks asks for: 0 no response, 1 once written to the log, -1 (all)
//! once durable).

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::errors::{Failure, Refusal, ToErrorCode};
use super::{Access, Answers, Decoded, Limits, PartitionApi, Reply, Topic};
use crate::partition::{Acks, Partition, Produced};
use crate::protocol::produce::{decode_produce, encode_produce_response, ProducePartitionOut};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;

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

    fn access(_: &i16) -> Access {
        Access::Topic(Operation::Write)
    }

    fn decode(req: &RequestFrame, _: &Limits) -> Result<Decoded<Self>, FrameError> {
        // One walk of the body, records left as slices of the frame.
        let request = decode_produce(&req.body, req.version)?;
        let topics = Topic::from_request(request.topics, |t| t, |p| p);
        let refusal = if request.transactional {
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
    let topics = Topic::to_response(
        answers,
        |index, answer| match answer {
            Ok(p) => ProducePartitionOut {
                index,
                error_code: 0,
                base_offset: p.base_offset,
                log_append_time_ms: p.log_append_time.unwrap_or(-1),
                log_start_offset: if version >= 5 { p.log_start_offset } else { -1 },
                error_message: None,
                record_errors: Vec::new(),
            },
            Err(e) => ProducePartitionOut {
                index,
                error_code: e.error_code().code(),
                base_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: -1,
                error_message: e.message().filter(|_| version >= 8),
                record_errors: match &e {
                    Failure::Partition(p) if version >= 8 => p.record_errors(),
                    _ => Vec::new(),
                },
            },
        },
        |name, partitions| (name, partitions),
    );
    Ok(Some(vec![encode_produce_response(
        version,
        req.correlation_id,
        &topics,
    )]))
}
