//! DescribeQuorum: the metadata quorum's leader, epoch, high watermark and
//! voters, from this node's quorum member (`kafka-metadata-quorum
//! describe --status / --replication`).
//!
//! Only the leader knows how far each voter and observer has come. As
//! Kafka's brokers forward this request to the active controller, any
//! other node (a follower, a broker-only node) asks the leader for its view
//! over the leader's CONTROLLER listener and answers with it; where it
//! cannot (no leader, the leader unreachable or no longer leading) it
//! answers as Kafka's raft client does, with NOT_LEADER_OR_FOLLOWER for
//! the partition (plus the leader and epoch it knows). A node without a
//! quorum (no `process.roles`) answers
//! UNSUPPORTED_VERSION, as a ZooKeeper-mode Kafka broker would refuse it.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};

use super::errors::{Refusal, ToErrorCode};
use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;

/// The metadata log's topic, as Kafka names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// How long asking the leader may take.
const ASK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DescribeQuorumRequest = req.decode()?;
    let top_level = |code: ErrorCode, message: String| {
        DescribeQuorumResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if !auth.cluster(Operation::Describe) {
        return req.respond(
            &DescribeQuorumResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code()),
        );
    }
    let Some(status) = shard.quorum.get() else {
        let refusal = Refusal::NoQuorum;
        return req.respond(&top_level(refusal.error_code(), refusal.to_string()));
    };
    let asks_for_metadata_log = matches!(request.topics.as_slice(),
        [t] if t.topic_name.0.as_str() == METADATA_TOPIC
            && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0));
    if !asks_for_metadata_log {
        return req.respond(&top_level(
            ErrorCode::UnknownTopicOrPartition,
            format!("only {METADATA_TOPIC} partition 0 has a quorum"),
        ));
    }
    let mut status = status.read().expect("quorum status lock").clone();
    let mut is_leader = status.leader_id == status.node_id;
    let leader_addr = shard
        .config
        .kraft
        .voters
        .iter()
        .find(|v| v.id == status.leader_id)
        .map(|v| format!("{}:{}", v.host, v.port));
    if let (false, Some(addr)) = (is_leader, leader_addr) {
        match crate::cluster::observer::describe(&addr, ASK_TIMEOUT).await {
            Ok(answer) if answer.leader_id == answer.node_id => {
                status = answer;
                is_leader = true;
            }
            Ok(answer) => tracing::debug!(
                leader = answer.leader_id,
                "asked for DescribeQuorum, the former leader no longer leads"
            ),
            Err(e) => tracing::debug!("asking the quorum leader for DescribeQuorum: {e}"),
        }
    }
    let replica = |v: &crate::cluster::VoterState| {
        ReplicaState::default()
            .with_replica_id(BrokerId(v.node_id))
            .with_log_end_offset(v.log_end_offset)
            .with_last_fetch_timestamp(v.last_fetch_ms)
            .with_last_caught_up_timestamp(v.last_caught_up_ms)
    };
    let mut partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(status.leader_id))
        .with_leader_epoch(status.epoch as i32)
        .with_high_watermark(status.high_watermark)
        .with_current_voters(status.voters.iter().map(replica).collect())
        .with_observers(status.observers.iter().map(replica).collect());
    if !is_leader {
        let code = ErrorCode::NotLeaderOrFollower;
        partition = partition
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(format!(
                "node {} is not the metadata quorum's leader (leader: {})",
                status.node_id, status.leader_id
            ))));
    }
    let response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC.to_string())))
        .with_partitions(vec![partition])]);
    req.respond(&response)
}
