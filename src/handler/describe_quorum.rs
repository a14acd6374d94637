//! DescribeQuorum: the metadata quorum's leader, epoch, high watermark and
//! voters, from this node's quorum member (`kafka-metadata-quorum
//! describe --status / --replication`).
//!
//! Only the leader knows how far each voter has come. As Kafka's brokers
//! forward this request to the active controller, a follower forwards it
//! to the leader's client listener (from the image's registration of the
//! leader's broker) and relays the answer; where it cannot (no leader, the
//! leader serves no clients, the leader unreachable, or the request was
//! itself forwarded) it answers as Kafka's raft client does, with
//! NOT_LEADER_OR_FOLLOWER for the partition (plus the leader and epoch it
//! knows). A node without a quorum (no `process.roles`) answers
//! UNSUPPORTED_VERSION, as a ZooKeeper-mode Kafka broker would refuse it.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};

use super::errors::{Refusal, ToErrorCode};
use super::str_bytes;
use crate::error_code::ErrorCode;
use crate::protocol::{FrameError, RequestFrame};
use crate::shard::Shard;

/// The metadata log's topic, as Kafka names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// How long a forwarded DescribeQuorum may take.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn handle(shard: &Rc<Shard>, req: &RequestFrame) -> Result<Bytes, FrameError> {
    let request: DescribeQuorumRequest = req.decode()?;
    let top_level = |code: ErrorCode, message: String| {
        DescribeQuorumResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
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
    let status = status.read().expect("quorum status lock").clone();
    let is_leader = status.leader_id == status.node_id;
    let forwarded = req
        .client_id
        .as_ref()
        .is_some_and(|c| c.as_str() == crate::cluster::forward::FORWARD_CLIENT_ID);
    if !is_leader && !forwarded && status.leader_id >= 0 {
        let leader = shard.image.get().and_then(|image| {
            let image = image.read().expect("image lock");
            let b = image.brokers.get(&status.leader_id).filter(|b| !b.fenced)?;
            let e = b.endpoints.first()?;
            Some(format!("{}:{}", e.host, e.port))
        });
        if let Some(addr) = leader {
            let answer: Result<DescribeQuorumResponse, String> = crate::cluster::forward::call(
                &addr,
                ApiKey::DescribeQuorum,
                req.version,
                &request,
                FORWARD_TIMEOUT,
            )
            .await;
            match answer {
                Ok(response) => return req.respond(&response),
                Err(e) => tracing::debug!("forwarding DescribeQuorum to the leader: {e}"),
            }
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
        .with_current_voters(status.voters.iter().map(replica).collect());
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
