//! DescribeCluster: the cluster id, the controller and the broker nodes.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::errors::{Refusal, ToErrorCode};
use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

/// endpoint_type 1: brokers (2, controllers, is not served).
const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(shard: &Rc<Shard>, req: &RequestFrame, auth: &ConnAuth) -> Result<Bytes, FrameError> {
    let request: DescribeClusterRequest = req.decode()?;
    if req.version >= 1 && request.endpoint_type != ENDPOINT_BROKERS {
        let response = DescribeClusterResponse::default()
            .with_error_code(Refusal::UnsupportedEndpointType.error_code().code())
            .with_error_message(Some(str_bytes(
                Refusal::UnsupportedEndpointType.to_string(),
            )));
        return req.respond(&response);
    }
    if !auth.cluster(Operation::Describe) {
        return req.respond(
            &DescribeClusterResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code()),
        );
    }
    let brokers = shard
        .nodes(auth.listener)
        .into_iter()
        .map(|n| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(n.node_id))
                .with_host(str_bytes(n.host))
                .with_port(n.port)
        })
        .collect();
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKERS)
        .with_cluster_id(str_bytes(shard.metadata().cluster_id.clone()))
        .with_controller_id(BrokerId(shard.config.node_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            super::authorized::cluster(auth)
        } else {
            super::authorized::NOT_REQUESTED
        });
    req.respond(&response)
}
