//! Metadata changes, made one at a time on shard 0: validate, build the
//! next metadata version, persist it durably, broadcast it to every shard
//! and wait until each has applied it (opened or deleted its partitions).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use glommio::sync::Semaphore;

use super::metadata::{
    collides_with, is_internal, new_topic_id, validate_topic_name, ClusterMetadata, SharedMetadata,
    TopicMeta, METADATA_FILE,
};
use super::Shard;
use crate::config::{topic_config_def, validate_topic_config, BrokerConfigError};
use crate::storage::fsutil;

/// Most partitions one topic may have.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

/// What a metadata change (or one item of it) was refused for. The Kafka
/// code each maps to is decided in `handler::errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminFault {
    InvalidConfig,
    InvalidRequest,
    TopicDeletionDisabled,
    UnknownTopic,
    UnknownTopicId,
    InvalidPartitions,
    InvalidReplicaAssignment,
    TopicAlreadyExists,
    InvalidTopic,
    InvalidReplicationFactor,
    /// The metadata could not be persisted.
    Storage,
    /// The controller is shutting down.
    ControllerClosed,
}

/// A refused metadata change, with the message its response carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AdminError {
    pub fault: AdminFault,
    pub message: String,
}

pub fn refuse(fault: AdminFault, message: impl Into<String>) -> AdminError {
    AdminError {
        fault,
        message: message.into(),
    }
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: num.partitions.
    pub num_partitions: i32,
    /// -1: default.replication.factor.
    pub replication_factor: i16,
    /// Manual assignment: replica node ids per partition.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone)]
pub struct CreatedTopic {
    pub name: String,
    pub topic_id: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// CreatePartitions for one topic: its name, the new partition count, and
/// optionally the replica node ids of each added partition.
pub type PartitionGrowth = (String, i32, Option<Vec<Vec<i32>>>);

/// A config change of AlterConfigs (replace) or IncrementalAlterConfigs.
#[derive(Debug, Clone)]
pub enum ConfigOps {
    /// Every key not listed goes back to its default.
    Replace(Vec<(String, Option<String>)>),
    /// (key, op, value): op 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    Incremental(Vec<(String, i8, Option<String>)>),
}

#[derive(Debug, Clone)]
pub enum ConfigResource {
    Topic(String),
    /// The broker's dynamic topic defaults (cluster-wide or our node id).
    Broker,
}

pub struct Controller {
    lock: Rc<Semaphore>,
    current: std::cell::RefCell<SharedMetadata>,
}

/// The per-item results of a change, or its one failure for every item.
fn per_item<T: Clone>(
    outcome: Result<Vec<Result<T, AdminError>>, AdminError>,
    n: usize,
) -> Vec<Result<T, AdminError>> {
    outcome.unwrap_or_else(|e| vec![Err(e); n])
}

fn bad_config(e: BrokerConfigError) -> AdminError {
    refuse(AdminFault::InvalidConfig, e.to_string())
}

impl Controller {
    pub fn new(initial: SharedMetadata) -> Self {
        Controller {
            lock: Rc::new(Semaphore::new(1)),
            current: std::cell::RefCell::new(initial),
        }
    }

    /// Runs one change: `f` edits a copy of the metadata and returns the
    /// per-item results; if it changed anything the new version is
    /// persisted and applied on every shard before this returns.
    async fn change<R>(
        &self,
        shard: &Rc<Shard>,
        f: impl FnOnce(&mut ClusterMetadata) -> R,
    ) -> Result<R, AdminError> {
        let _permit = self.lock.acquire_permit(1).await.map_err(|_| {
            refuse(
                AdminFault::ControllerClosed,
                "controller closed".to_string(),
            )
        })?;
        let current = self.current.borrow().clone();
        let mut next = (*current).clone();
        let result = f(&mut next);
        if next != *current {
            next.version = current.version + 1;
            fsutil::write_file_durably(&shard.config.data_dir, METADATA_FILE, next.encode())
                .await
                .map_err(|e| refuse(AdminFault::Storage, e.to_string()))?;
            let next = Arc::new(next);
            *self.current.borrow_mut() = next.clone();
            shard.broadcast_metadata(next).await;
        }
        Ok(result)
    }

    pub async fn allocate_producer_ids(
        &self,
        shard: &Rc<Shard>,
        count: i64,
    ) -> Result<i64, super::ShardGone> {
        self.change(shard, |md| {
            let start = md.next_producer_id;
            md.next_producer_id += count;
            start
        })
        .await
        .map_err(|_| super::ShardGone(0))
    }

    pub async fn create_topics(
        &self,
        shard: &Rc<Shard>,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<CreatedTopic, AdminError>> {
        let n = topics.len();
        let shards = shard.shard_count;
        let config = shard.config.clone();
        let nodes_to_shard = |node: i32| shard.shard_of_node(node);
        let outcome = self
            .change(shard, |md| {
                let mut out = Vec::with_capacity(topics.len());
                for t in &topics {
                    let r = plan_topic(md, t, &config, shards, &nodes_to_shard);
                    let r = r.map(|(meta, created)| {
                        if !validate_only {
                            md.topics.insert(t.name.clone(), meta);
                        }
                        created
                    });
                    out.push(r);
                }
                out
            })
            .await;
        per_item(outcome, n)
    }

    pub async fn delete_topics(
        &self,
        shard: &Rc<Shard>,
        names: Vec<String>,
    ) -> Vec<Result<String, AdminError>> {
        let n = names.len();
        let enabled = shard.config.delete_topic_enable;
        let outcome = self
            .change(shard, |md| {
                names
                    .iter()
                    .map(|name| {
                        if !enabled {
                            return Err(refuse(
                                AdminFault::TopicDeletionDisabled,
                                "delete.topic.enable is false".to_string(),
                            ));
                        }
                        match md.topics.remove(name) {
                            Some(t) => Ok(t.id),
                            None => Err(refuse(
                                AdminFault::UnknownTopic,
                                format!("topic {name} does not exist"),
                            )),
                        }
                    })
                    .collect()
            })
            .await;
        per_item(outcome, n)
    }

    /// CreatePartitions: grows `name` to `count` partitions.
    pub async fn create_partitions(
        &self,
        shard: &Rc<Shard>,
        requests: Vec<PartitionGrowth>,
        validate_only: bool,
    ) -> Vec<Result<(), AdminError>> {
        let n = requests.len();
        let shards = shard.shard_count;
        let to_shard = |node: i32| shard.shard_of_node(node);
        let outcome = self
            .change(shard, |md| {
                let mut out = Vec::with_capacity(requests.len());
                for (name, count, assignments) in &requests {
                    let r = (|| {
                        let topic = md.topics.get(name).ok_or_else(|| {
                            refuse(
                                AdminFault::UnknownTopic,
                                format!("topic {name} does not exist"),
                            )
                        })?;
                        let have = topic.partitions.len() as i32;
                        if *count <= have {
                            return Err(refuse(
                                AdminFault::InvalidPartitions,
                                format!(
                                    "Topic currently has {have} partitions, which is higher than or equal to the requested {count}."
                                ),
                            ));
                        }
                        if *count > MAX_PARTITIONS_PER_TOPIC {
                            return Err(refuse(
                                AdminFault::InvalidPartitions,
                                format!("at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic"),
                            ));
                        }
                        let added = (*count - have) as usize;
                        let owners = match assignments {
                            Some(a) => {
                                if a.len() != added {
                                    return Err(refuse(
                                        AdminFault::InvalidReplicaAssignment,
                                        format!(
                                            "Increasing the number of partitions by {added} but {} assignments provided.",
                                            a.len()
                                        ),
                                    ));
                                }
                                a.iter()
                                    .map(|replicas| owner_from_replicas(replicas, &to_shard))
                                    .collect::<Result<Vec<_>, _>>()?
                            }
                            None => md.place(shards, added),
                        };
                        if !validate_only {
                            md.topics
                                .get_mut(name)
                                .expect("checked above")
                                .partitions
                                .extend(owners);
                        }
                        Ok(())
                    })();
                    out.push(r);
                }
                out
            })
            .await;
        per_item(outcome, n)
    }

    /// AlterConfigs / IncrementalAlterConfigs on topics and the broker.
    pub async fn alter_configs(
        &self,
        shard: &Rc<Shard>,
        changes: Vec<(ConfigResource, ConfigOps)>,
        validate_only: bool,
    ) -> Vec<Result<(), AdminError>> {
        let n = changes.len();
        let outcome = self
            .change(shard, |md| {
                changes
                    .iter()
                    .map(|(resource, ops)| {
                        let current = match resource {
                            ConfigResource::Topic(name) => match md.topics.get(name) {
                                Some(t) => t.configs.clone(),
                                None => {
                                    return Err(refuse(
                                        AdminFault::UnknownTopic,
                                        format!("topic {name} does not exist"),
                                    ))
                                }
                            },
                            ConfigResource::Broker => md.broker_configs.clone(),
                        };
                        let next = apply_config_ops(resource, current, ops)?;
                        if !validate_only {
                            match resource {
                                ConfigResource::Topic(name) => {
                                    md.topics.get_mut(name).expect("checked").configs = next
                                }
                                ConfigResource::Broker => md.broker_configs = next,
                            }
                        }
                        Ok(())
                    })
                    .collect()
            })
            .await;
        per_item(outcome, n)
    }
}

/// Maps a broker key (for broker resources) or topic key to the topic
/// config name it sets.
fn config_name(resource: &ConfigResource, key: &str) -> Result<&'static str, AdminError> {
    let def = match resource {
        ConfigResource::Topic(_) => topic_config_def(key),
        ConfigResource::Broker => crate::config::TOPIC_CONFIGS
            .iter()
            .find(|d| d.broker_key == key),
    };
    def.map(|d| d.name).ok_or_else(|| {
        let what = match resource {
            ConfigResource::Topic(_) => "topic config",
            ConfigResource::Broker => "dynamically updatable broker config",
        };
        refuse(
            AdminFault::InvalidConfig,
            format!("Unknown or unsupported {what} {key}"),
        )
    })
}

fn apply_config_ops(
    resource: &ConfigResource,
    current: BTreeMap<String, String>,
    ops: &ConfigOps,
) -> Result<BTreeMap<String, String>, AdminError> {
    let mut next = current;
    match ops {
        ConfigOps::Replace(entries) => {
            next.clear();
            for (key, value) in entries {
                let name = config_name(resource, key)?;
                if let Some(v) = value {
                    validate_topic_config(name, v).map_err(bad_config)?;
                    next.insert(name.to_string(), v.clone());
                }
            }
        }
        ConfigOps::Incremental(entries) => {
            for (key, op, value) in entries {
                let name = config_name(resource, key)?;
                match op {
                    0 => {
                        let v = value.clone().ok_or_else(|| {
                            refuse(AdminFault::InvalidRequest, format!("null value for {key}"))
                        })?;
                        validate_topic_config(name, &v).map_err(bad_config)?;
                        next.insert(name.to_string(), v);
                    }
                    1 => {
                        next.remove(name);
                    }
                    2 | 3 => {
                        // cleanup.policy is the only list config; "delete" is
                        // its only value, so APPEND/SUBTRACT can only keep or
                        // empty it.
                        return Err(refuse(
                            AdminFault::InvalidConfig,
                            format!("APPEND and SUBTRACT are not supported for {key}"),
                        ));
                    }
                    _ => {
                        return Err(refuse(
                            AdminFault::InvalidRequest,
                            format!("unknown config operation {op}"),
                        ))
                    }
                }
            }
        }
    }
    Ok(next)
}

fn owner_from_replicas(
    replicas: &[i32],
    to_shard: &impl Fn(i32) -> Option<usize>,
) -> Result<usize, AdminError> {
    match replicas {
        [node] => to_shard(*node).ok_or_else(|| {
            refuse(
                AdminFault::InvalidReplicaAssignment,
                format!("Unknown broker {node} in the replica assignment"),
            )
        }),
        _ => Err(refuse(
            AdminFault::InvalidReplicaAssignment,
            format!(
                "Replica assignment {replicas:?} must name exactly one broker: this is a single-node cluster"
            ),
        )),
    }
}

fn plan_topic(
    md: &ClusterMetadata,
    t: &NewTopic,
    config: &crate::config::BrokerConfig,
    shards: usize,
    to_shard: &impl Fn(i32) -> Option<usize>,
) -> Result<(TopicMeta, CreatedTopic), AdminError> {
    validate_topic_name(&t.name)?;
    if md.topics.contains_key(&t.name) {
        return Err(refuse(
            AdminFault::TopicAlreadyExists,
            format!("Topic '{}' already exists.", t.name),
        ));
    }
    if let Some(other) = md.topics.keys().find(|n| collides_with(n, &t.name)) {
        return Err(refuse(
            AdminFault::InvalidTopic,
            format!("Topic '{}' collides with existing topic: {other}", t.name),
        ));
    }
    if is_internal(&t.name) {
        return Err(refuse(
            AdminFault::InvalidTopic,
            format!("Topic '{}' is reserved for internal use", t.name),
        ));
    }
    let owners = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(refuse(
                AdminFault::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".to_string(),
            ));
        }
        let mut by_index: Vec<(i32, &Vec<i32>)> =
            t.assignments.iter().map(|(i, r)| (*i, r)).collect();
        by_index.sort_by_key(|(i, _)| *i);
        if by_index
            .iter()
            .enumerate()
            .any(|(k, (i, _))| *i != k as i32)
        {
            return Err(refuse(
                AdminFault::InvalidReplicaAssignment,
                "Partitions in the assignment must be 0..n-1, each once".to_string(),
            ));
        }
        by_index
            .iter()
            .map(|(_, r)| owner_from_replicas(r, to_shard))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let partitions = if t.num_partitions == -1 {
            config.num_partitions
        } else {
            t.num_partitions
        };
        if partitions <= 0 {
            return Err(refuse(
                AdminFault::InvalidPartitions,
                "Number of partitions must be larger than 0.".to_string(),
            ));
        }
        if partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(refuse(
                AdminFault::InvalidPartitions,
                format!("at most {MAX_PARTITIONS_PER_TOPIC} partitions per topic"),
            ));
        }
        let rf = if t.replication_factor == -1 {
            config.default_replication_factor
        } else {
            t.replication_factor
        };
        if rf <= 0 {
            return Err(refuse(
                AdminFault::InvalidReplicationFactor,
                "Replication factor must be larger than 0.".to_string(),
            ));
        }
        if rf > 1 {
            return Err(refuse(
                AdminFault::InvalidReplicationFactor,
                format!("Replication factor: {rf} larger than available brokers: 1."),
            ));
        }
        md.place(shards, partitions as usize)
    };
    let mut configs = BTreeMap::new();
    for (key, value) in &t.configs {
        let Some(value) = value else {
            return Err(refuse(
                AdminFault::InvalidConfig,
                format!("Null value not supported for topic configs: {key}"),
            ));
        };
        if topic_config_def(key).is_none() {
            return Err(refuse(
                AdminFault::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            ));
        }
        validate_topic_config(key, value).map_err(bad_config)?;
        configs.insert(key.clone(), value.clone());
    }
    let meta = TopicMeta {
        id: new_topic_id(),
        partitions: owners,
        configs,
    };
    let created = CreatedTopic {
        name: t.name.clone(),
        topic_id: meta.id.clone(),
        num_partitions: meta.partitions.len() as i32,
        replication_factor: 1,
    };
    Ok((meta, created))
}
