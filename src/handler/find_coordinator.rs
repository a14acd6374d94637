//! FindCoordinator: the node that coordinates a consumer group. A group
//! lives on the shard that owns its offsets log partition (see
//! [`crate::group`]); in per-shard mode that shard's node is the
//! coordinator.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::errors::{Refusal, ToErrorCode};
use super::str_bytes;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::Shard;

/// Key types: 0 group, 1 transaction.
const KEY_TYPE_GROUP: i8 = 0;

pub fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: FindCoordinatorRequest = req.decode()?;
    let keys: Vec<String> = if req.version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let nodes = shard.nodes();
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            if request.key_type != KEY_TYPE_GROUP {
                return Coordinator::default()
                    .with_key(str_bytes(key))
                    .with_node_id(BrokerId(-1))
                    .with_host(str_bytes(""))
                    .with_port(-1)
                    .with_error_code(Refusal::NoTransactionCoordinator.error_code().code())
                    .with_error_message(Some(str_bytes(
                        Refusal::NoTransactionCoordinator.to_string(),
                    )));
            }
            let node_id = shard.node_of_shard(shard.group_coordinator_shard(&key));
            let node = nodes
                .iter()
                .find(|n| n.node_id == node_id)
                .unwrap_or(&nodes[0]);
            Coordinator::default()
                .with_key(str_bytes(key))
                .with_node_id(BrokerId(node.node_id))
                .with_host(str_bytes(node.host.clone()))
                .with_port(node.port)
        })
        .collect();
    let response = if req.version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(answers)
    } else {
        let c = answers.into_iter().next().expect("one key");
        FindCoordinatorResponse::default()
            .with_error_code(c.error_code)
            .with_error_message(c.error_message.filter(|_| req.version >= 1))
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port)
    };
    req.respond(&response)
}
