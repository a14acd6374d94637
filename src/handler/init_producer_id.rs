//! InitProducerId for idempotent producers: a new producer id, epoch 0.
//! Transactions are not supported: a transactional id is refused.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::errors::{Refusal, ToErrorCode};
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::{Operation, ResourceType};
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: InitProducerIdRequest = req.decode()?;
    let response = if request.transactional_id.is_some() {
        InitProducerIdResponse::default()
            .with_error_code(Refusal::Transactional.error_code().code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    } else if !auth.cluster(Operation::IdempotentWrite)
        && !auth.any_of(Operation::Write, ResourceType::Topic)
    {
        // An idempotent producer needs IDEMPOTENT_WRITE on the cluster or
        // WRITE on some topic (KIP-679).
        InitProducerIdResponse::default()
            .with_error_code(ErrorCode::ClusterAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    } else {
        // As Kafka does without a transactional id: always a fresh id, even
        // when the request names the producer's current id and epoch.
        match shard.new_producer_id().await {
            Ok(id) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            Err(_) => InitProducerIdResponse::default()
                .with_error_code(Refusal::NoProducerId.error_code().code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        }
    };
    req.respond(&response)
}
