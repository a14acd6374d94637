//! Metadata: brokers (one node, or one per shard in per-shard mode) and
//! topics with each partition's leader; auto-creates topics when allowed.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::errors::ToErrorCode;
use super::{authorized, str_bytes, topic_name};
use crate::error_code::ErrorCode;
use crate::partition::LEADER_EPOCH;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::controller::{AdminFault, NewTopic};
use crate::shard::metadata::{is_internal, validate_topic_name, TopicMeta};
use crate::shard::{Shard, CONTROLLER_SHARD};

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: MetadataRequest = req.decode()?;
    // v0: an empty list means every topic; v1+: null means every topic.
    let requested: Option<Vec<(Option<String>, uuid::Uuid)>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && req.version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| (t.name.map(|n| n.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let auto_create =
        shard.config.auto_create_topics && (req.version < 4 || request.allow_auto_topic_creation);

    let mut topics = Vec::new();
    match requested {
        None => {
            let md = shard.metadata();
            // Only the topics the principal may describe.
            for (name, meta) in &md.topics {
                if auth.topic(Operation::Describe, name) {
                    topics.push(describe_topic(
                        shard,
                        name,
                        meta,
                        req.version,
                        auth.listener,
                    ));
                }
            }
        }
        Some(list) => {
            // Create the missing ones first, in one controller change.
            if auto_create {
                let md = shard.metadata();
                let missing: Vec<NewTopic> = list
                    .iter()
                    .filter_map(|(name, _)| name.clone())
                    .filter(|n| !md.topics.contains_key(n) && validate_topic_name(n).is_ok())
                    .filter(|n| !is_internal(n))
                    .filter(|n| {
                        auth.topic(Operation::Describe, n)
                            && (auth.cluster(Operation::Create) || auth.topic(Operation::Create, n))
                    })
                    .map(|name| NewTopic {
                        name,
                        num_partitions: -1,
                        replication_factor: -1,
                        assignments: Vec::new(),
                        configs: Vec::new(),
                    })
                    .collect();
                if !missing.is_empty() {
                    let results = shard
                        .run_on(CONTROLLER_SHARD, move |s| async move {
                            s.controller()
                                .create_topics(&s, missing, false)
                                .await
                                .into_iter()
                                .map(|r| r.map(|c| c.name).map_err(|e| e.message))
                                .collect::<Vec<_>>()
                        })
                        .await;
                    if let Ok(results) = results {
                        for r in results {
                            match r {
                                Ok(name) => tracing::info!(topic = %name, "auto-created topic"),
                                Err(e) => tracing::debug!("auto-create: {e}"),
                            }
                        }
                    }
                }
            }
            let md = shard.metadata();
            for (name, id) in list {
                let found = match &name {
                    Some(n) => md.topics.get(n).map(|m| (n.clone(), m)),
                    None => md
                        .topics
                        .iter()
                        .find(|(_, m)| m.uuid() == id)
                        .map(|(n, m)| (n.clone(), m)),
                };
                // Asked by name: refused when not describable; by id: an id
                // the principal may not describe stays unknown.
                let denied = |n: &str| !auth.topic(Operation::Describe, n);
                let found = found.filter(|(n, _)| name.is_some() || !denied(n));
                match found {
                    Some((n, _)) if denied(&n) => topics.push(
                        MetadataResponseTopic::default()
                            .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                            .with_name(Some(topic_name(n)))
                            .with_topic_authorized_operations(authorized::NOT_REQUESTED),
                    ),
                    Some((n, meta)) => {
                        topics.push(describe_topic(shard, &n, meta, req.version, auth.listener))
                    }
                    None => {
                        let error = match &name {
                            Some(n) if denied(n) => ErrorCode::TopicAuthorizationFailed,
                            // Not created: the principal may not create it.
                            Some(n)
                                if auto_create
                                    && !is_internal(n)
                                    && validate_topic_name(n).is_ok()
                                    && !auth.cluster(Operation::Create)
                                    && !auth.topic(Operation::Create, n) =>
                            {
                                ErrorCode::TopicAuthorizationFailed
                            }
                            None => AdminFault::UnknownTopicId.error_code(),
                            Some(n) if validate_topic_name(n).is_err() => {
                                AdminFault::InvalidTopic.error_code()
                            }
                            Some(_) => AdminFault::UnknownTopic.error_code(),
                        };
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_error_code(error.code())
                                .with_name(name.map(topic_name))
                                .with_topic_id(if req.version >= 10 {
                                    id
                                } else {
                                    uuid::Uuid::nil()
                                })
                                .with_topic_authorized_operations(authorized::NOT_REQUESTED),
                        );
                    }
                }
            }
        }
    }
    for t in &mut topics {
        if req.version >= 8
            && request.include_topic_authorized_operations
            && t.error_code == ErrorCode::None.code()
        {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            t.topic_authorized_operations = authorized::topic(auth, &name);
        }
    }

    let brokers = shard
        .nodes(auth.listener)
        .into_iter()
        .map(|n| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(n.node_id))
                .with_host(str_bytes(n.host))
                .with_port(n.port)
        })
        .collect();
    let md = shard.metadata();
    let response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id((req.version >= 2).then(|| str_bytes(md.cluster_id.clone())))
        .with_controller_id(BrokerId(if req.version >= 1 {
            shard.config.node_id
        } else {
            -1
        }))
        .with_topics(topics)
        .with_cluster_authorized_operations(
            if (8..=10).contains(&req.version) && request.include_cluster_authorized_operations {
                authorized::cluster(auth)
            } else {
                authorized::NOT_REQUESTED
            },
        );
    req.respond(&response)
}

/// One partition as Metadata and DescribeTopicPartitions show it.
pub(super) struct PartitionView {
    /// NONE, LEADER_NOT_AVAILABLE when it has no leader (its leader's
    /// broker was fenced and no other in-sync replica is alive), or
    /// LISTENER_NOT_FOUND when the leader's broker has no listener of the
    /// name the client came in on (Kafka's answer from Metadata v6 and in
    /// DescribeTopicPartitions; LEADER_NOT_AVAILABLE before).
    pub error: ErrorCode,
    /// -1 without a leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    /// Replicas whose broker is fenced or gone.
    pub offline: Vec<BrokerId>,
}

/// Every partition of a topic. In a cluster, as the metadata image has it
/// (replicas, ISR, leader and its epoch, the replicas whose broker is
/// fenced or gone offline), a leader whose broker lacks client listener
/// `listener` answered with `no_listener`; on a single node, one replica
/// each, on the shard that owns it.
pub(super) fn partition_views(
    shard: &Shard,
    meta: &TopicMeta,
    listener: usize,
    no_listener: ErrorCode,
) -> Vec<PartitionView> {
    let ids = |nodes: &[i32]| nodes.iter().map(|&n| BrokerId(n)).collect::<Vec<_>>();
    let image = shard.image.get().map(|i| i.read().expect("image lock"));
    let Some(image) = image.filter(|_| !meta.states.is_empty()) else {
        return meta
            .partitions
            .iter()
            .map(|&owner| {
                let node = BrokerId(shard.node_of_shard(owner));
                PartitionView {
                    error: ErrorCode::None,
                    leader: node.0,
                    leader_epoch: LEADER_EPOCH,
                    replicas: vec![node],
                    isr: vec![node],
                    offline: Vec::new(),
                }
            })
            .collect();
    };
    let name = shard
        .config
        .client_listeners
        .get(listener)
        .map_or("", |l| l.name.as_str());
    meta.states
        .iter()
        .map(|p| {
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|&r| image.broker_of_node(r).is_none_or(|b| b.fenced))
                .collect();
            let error = if p.leader == crate::replication::NO_LEADER || offline.contains(&p.leader)
            {
                ErrorCode::LeaderNotAvailable
            } else if image.broker_of_node(p.leader).is_some_and(|b| {
                b.endpoints
                    .iter()
                    .any(|e| e.node_id == p.leader && e.on_listener(name))
            }) {
                ErrorCode::None
            } else {
                no_listener
            };
            PartitionView {
                error,
                leader: if error == ErrorCode::None {
                    p.leader
                } else {
                    -1
                },
                leader_epoch: p.leader_epoch,
                replicas: ids(&p.replicas),
                isr: ids(&p.isr),
                offline: ids(&offline),
            }
        })
        .collect()
}

fn describe_topic(
    shard: &Shard,
    name: &str,
    meta: &TopicMeta,
    version: i16,
    listener: usize,
) -> MetadataResponseTopic {
    let no_listener = if version >= 6 {
        ErrorCode::ListenerNotFound
    } else {
        ErrorCode::LeaderNotAvailable
    };
    let partitions = partition_views(shard, meta, listener, no_listener)
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            MetadataResponsePartition::default()
                .with_partition_index(i as i32)
                .with_leader_epoch(if version >= 7 { v.leader_epoch } else { -1 })
                .with_error_code(v.error.code())
                .with_leader_id(BrokerId(v.leader))
                .with_replica_nodes(v.replicas)
                .with_isr_nodes(v.isr)
                .with_offline_replicas(if version >= 5 { v.offline } else { Vec::new() })
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_topic_id(if version >= 10 {
            meta.uuid()
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && is_internal(name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized::NOT_REQUESTED)
}
