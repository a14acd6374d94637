//! FindCoordinator: the node that coordinates a consumer group. A group
//! lives on the shard that owns its offsets log partition (see
//! [`crate::group`]); in per-shard mode that shard's node is the
//! coordinator. In a cluster, the quorum's image names the node leading
//! each offsets log partition (placed over the brokers on the first
//! FindCoordinator, as Kafka creates `__consumer_offsets` then); a
//! coordinator whose broker is fenced gives COORDINATOR_NOT_AVAILABLE.
//!
//! Transactions are not served yet: a transaction coordinator is refused
//! with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal for the Java client
//! and librdkafka, so `initTransactions()` fails at once with a message
//! instead of retrying COORDINATOR_NOT_AVAILABLE until `max.block.ms`.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::errors::{Refusal, ToErrorCode};
use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::{Shard, CONTROLLER_SHARD};

/// Key types: 0 group, 1 transaction.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Where a group's coordinator is in a cluster for a client of the
/// listener named `listener`: (node id, host, port), or why there is none.
fn cluster_coordinator(
    shard: &Shard,
    key: &str,
    listener: &str,
) -> Result<(i32, String, i32), String> {
    let image = shard
        .image
        .get()
        .expect("a cluster node")
        .read()
        .expect("image lock");
    let owners = &image.offsets_owners;
    if owners.is_empty() {
        return Err("the offsets log is not placed yet".to_string());
    }
    if owners.len() != shard.config.groups.offsets_partitions {
        return Err(format!(
            "offsets.topic.num.partitions is {} here but {} in the cluster",
            shard.config.groups.offsets_partitions,
            owners.len()
        ));
    }
    let node = owners[crate::group::offsets_partition_for(key, owners.len())];
    let broker = image
        .broker_of_node(node)
        .filter(|b| !b.fenced)
        .ok_or_else(|| format!("the coordinator's broker (node {node}) is not available"))?;
    let endpoint = broker
        .endpoints
        .iter()
        .find(|e| e.node_id == node && e.on_listener(listener))
        .ok_or_else(|| {
            format!("the coordinator's broker (node {node}) has no listener named {listener}")
        })?;
    Ok((node, endpoint.host.clone(), i32::from(endpoint.port)))
}

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
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
    let cluster = shard.image.get().is_some();
    if cluster
        && request.key_type == KEY_TYPE_GROUP
        && shard
            .image
            .get()
            .expect("cluster")
            .read()
            .expect("image lock")
            .offsets_owners
            .is_empty()
    {
        let partitions = shard.config.groups.offsets_partitions;
        let placed = shard
            .run_on(CONTROLLER_SHARD, move |s| async move {
                s.controller().place_offsets(&s, partitions).await
            })
            .await;
        if let Ok(Err(e)) = placed {
            tracing::debug!("placing the offsets log: {e}");
        }
    }
    let nodes = shard.nodes(auth.listener);
    let listener = shard
        .config
        .client_listeners
        .get(auth.listener)
        .map_or("", |l| l.name.as_str());
    let answers: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| {
            if request.key_type != KEY_TYPE_GROUP {
                let refusal = if request.key_type == KEY_TYPE_TRANSACTION {
                    Refusal::NoTransactionCoordinator
                } else {
                    Refusal::UnknownCoordinatorType(request.key_type)
                };
                return Coordinator::default()
                    .with_key(str_bytes(key))
                    .with_node_id(BrokerId(-1))
                    .with_host(str_bytes(""))
                    .with_port(-1)
                    .with_error_code(refusal.error_code().code())
                    .with_error_message(Some(str_bytes(refusal.to_string())));
            }
            if !auth.group(Operation::Describe, &key) {
                return Coordinator::default()
                    .with_key(str_bytes(key))
                    .with_node_id(BrokerId(-1))
                    .with_host(str_bytes(""))
                    .with_port(-1)
                    .with_error_code(ErrorCode::GroupAuthorizationFailed.code());
            }
            if cluster {
                return match cluster_coordinator(shard, &key, listener) {
                    Ok((node, host, port)) => Coordinator::default()
                        .with_key(str_bytes(key))
                        .with_node_id(BrokerId(node))
                        .with_host(str_bytes(host))
                        .with_port(port),
                    Err(why) => Coordinator::default()
                        .with_key(str_bytes(key))
                        .with_node_id(BrokerId(-1))
                        .with_host(str_bytes(""))
                        .with_port(-1)
                        .with_error_code(ErrorCode::CoordinatorNotAvailable.code())
                        .with_error_message(Some(str_bytes(why))),
                };
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
