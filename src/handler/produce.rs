//! Produce: each partition's record batch is validated from its header,
//! appended on the owning shard, and acknowledged per acks: 0 no response,
//! 1 once written to the log, -1 (all) once durable.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::errors::ToErrorCode;
use super::{scatter, str_bytes, topic_name};
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::Shard;

#[derive(Debug, Clone)]
struct Outcome {
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    log_append_time: i64,
    log_start_offset: i64,
}

impl Outcome {
    fn error(error: ErrorCode, message: Option<String>) -> Self {
        Outcome {
            error,
            message,
            base_offset: -1,
            log_append_time: -1,
            log_start_offset: -1,
        }
    }
}

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Option<Bytes>, FrameError> {
    let request: ProduceRequest = req.decode()?;
    let acks = request.acks;
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let refuse = if request.transactional_id.is_some() {
        Some((
            ErrorCode::TransactionalIdAuthorizationFailed,
            "transactions are not supported".to_string(),
        ))
    } else if !matches!(acks, -1..=1) {
        Some((ErrorCode::InvalidRequiredAcks, format!("acks={acks}")))
    } else {
        None
    };

    let mut shape: Vec<(String, Vec<i32>)> = Vec::with_capacity(request.topic_data.len());
    let mut items = Vec::new();
    for topic in request.topic_data {
        let name = topic.name.to_string();
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            parts.push(p.index);
            items.push((name.clone(), p.index, p.records));
        }
        shape.push((name, parts));
    }

    let outcomes: Vec<Outcome> = match refuse {
        Some((code, msg)) => items
            .iter()
            .map(|_| Outcome::error(code, Some(msg.clone())))
            .collect(),
        None => {
            scatter(
                shard,
                items,
                move |s, batch| produce_local(s, batch, acks, timeout),
                |code| Outcome::error(code, None),
            )
            .await
        }
    };
    if acks == 0 {
        return Ok(None);
    }

    let version = req.version;
    let mut outcomes = outcomes.into_iter();
    let responses = shape
        .into_iter()
        .map(|(name, parts)| {
            let partition_responses = parts
                .into_iter()
                .map(|index| {
                    let o = outcomes.next().expect("one outcome per partition");
                    PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(o.error.code())
                        .with_base_offset(o.base_offset)
                        .with_log_append_time_ms(o.log_append_time)
                        .with_log_start_offset(if version >= 5 { o.log_start_offset } else { -1 })
                        .with_error_message(o.message.filter(|_| version >= 8).map(str_bytes))
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic_name(name))
                .with_partition_responses(partition_responses)
        })
        .collect();
    let response = ProduceResponse::default().with_responses(responses);
    Ok(Some(req.respond(&response)?))
}

/// Appends each batch to its partition on this shard, then waits for all of
/// them per acks.
async fn produce_local(
    shard: Rc<Shard>,
    batch: Vec<(String, i32, Option<Bytes>)>,
    acks: i16,
    timeout: Duration,
) -> Vec<Outcome> {
    let mut appended = Vec::with_capacity(batch.len());
    for (topic, index, records) in batch {
        let Some(p) = shard.local_partition(&topic, index) else {
            let code = if shard.owner_of(&topic, index).is_some() {
                ErrorCode::NotLeaderOrFollower
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            appended.push(Err(Outcome::error(code, None)));
            continue;
        };
        let Some(records) = records else {
            appended.push(Err(Outcome::error(
                ErrorCode::InvalidRecord,
                Some("null records".to_string()),
            )));
            continue;
        };
        if acks == -1 && p.extras.get().min_insync_replicas > 1 {
            appended.push(Err(Outcome::error(
                ErrorCode::NotEnoughReplicas,
                Some(format!(
                    "min.insync.replicas={} but the partition has one replica",
                    p.extras.get().min_insync_replicas
                )),
            )));
            continue;
        }
        match p.partition.append(&records).await {
            Ok(outcome) => appended.push(Ok((p, outcome.ticket))),
            Err(e) => appended.push(Err(Outcome::error(e.error_code(), Some(e.to_string())))),
        }
    }
    let mut out = Vec::with_capacity(appended.len());
    for a in appended {
        out.push(match a {
            Err(o) => o,
            Ok((p, ticket)) => {
                let log = p.partition.log();
                let waited = match acks {
                    -1 => {
                        let wait = log.wait_durable(&ticket);
                        futures_lite::future::or(async { Some(wait.await) }, async {
                            glommio::timer::sleep(timeout).await;
                            None
                        })
                        .await
                    }
                    _ => Some(log.wait_appended(&ticket).await),
                };
                match waited {
                    Some(Ok(())) => Outcome {
                        error: ErrorCode::None,
                        message: None,
                        base_offset: ticket.base_offset,
                        log_append_time: ticket.log_append_time.unwrap_or(-1),
                        log_start_offset: log.offsets().log_start_offset,
                    },
                    Some(Err(e)) => Outcome::error(e.error_code(), Some(e.to_string())),
                    None => Outcome::error(ErrorCode::RequestTimedOut, None),
                }
            }
        });
    }
    out
}
