//! InitProducerId for idempotent producers: a new producer id, epoch 0.
//! Transactions are not supported: a transactional id is refused.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::errors::{Refusal, ToErrorCode};
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: InitProducerIdRequest = req.decode()?;
    let response = if request.transactional_id.is_some() {
        InitProducerIdResponse::default()
            .with_error_code(Refusal::Transactional.error_code().code())
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
