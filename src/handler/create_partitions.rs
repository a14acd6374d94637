//! CreatePartitions: grows topics; new partitions are placed on the
//! least-loaded shards, or where the assignment names them.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::errors::ToErrorCode;
use super::{str_bytes, topic_name};
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::controller::PartitionGrowth;
use crate::shard::controller::{refuse, AdminFault};
use crate::shard::{Shard, CONTROLLER_SHARD};

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: CreatePartitionsRequest = req.decode()?;
    // ALTER on each topic; refused ones never reach the controller.
    let allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| auth.topic(Operation::Alter, &t.name))
        .collect();
    let asks: Vec<PartitionGrowth> = request
        .topics
        .iter()
        .zip(&allowed)
        .filter(|(_, ok)| **ok)
        .map(|(t, _)| {
            let assignments = t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            (t.name.to_string(), t.count, assignments)
        })
        .collect();
    let names: Vec<String> = request.topics.iter().map(|t| t.name.to_string()).collect();
    let validate_only = request.validate_only;
    let results = shard
        .run_on(CONTROLLER_SHARD, move |s| async move {
            s.controller()
                .create_partitions(&s, asks, validate_only)
                .await
        })
        .await
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let mut served = results.into_iter();
    let results = names
        .into_iter()
        .zip(allowed)
        .map(|(name, ok)| {
            let r = if ok {
                served.next().expect("one result per allowed topic")
            } else {
                Err(refuse(
                    AdminFault::TopicUnauthorized,
                    "Authorization failed.",
                ))
            };
            let base = CreatePartitionsTopicResult::default().with_name(topic_name(name));
            match r {
                Ok(()) => base,
                Err(e) => base
                    .with_error_code(e.error_code().code())
                    .with_error_message(Some(str_bytes(e.message))),
            }
        })
        .collect();
    req.respond(&CreatePartitionsResponse::default().with_results(results))
}
