//! Metadata changes, made one at a time on shard 0: validate, build the
//! next metadata version, persist it durably, broadcast it to every shard
//! and wait until each has applied it (opened or deleted its partitions).

use crate::security::acl::{self, AclBinding};
use crate::security::credentials::ScramEntry;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::sync::Semaphore;

use super::metadata::{
    collides_with, is_internal, new_topic_id, validate_topic_name, ClusterMetadata, SharedMetadata,
    TopicMeta, METADATA_FILE, REMOTE,
};
use super::Shard;
use crate::cluster::{MetadataImage, MetadataRecord, Proposer, TopicChange, TopicImage};
use crate::config::{topic_config_def, validate_topic_config, BrokerConfigError};
use crate::replication::election::PartitionState;
use crate::storage::fsutil;

/// Most partitions one topic may have.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

/// What a metadata change (or one item of it) was refused for. The Kafka
/// code each maps to is decided in `handler::errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminFault {
    /// The principal may not do this to the topic (TOPIC_AUTHORIZATION_FAILED).
    TopicUnauthorized,
    /// Nor to the cluster (CLUSTER_AUTHORIZATION_FAILED).
    ClusterUnauthorized,
    /// Nor to the group (GROUP_AUTHORIZATION_FAILED).
    GroupUnauthorized,
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
    /// The metadata quorum did not commit the change in time.
    QuorumTimeout,
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
    /// The cluster-wide dynamic broker configs (resource name "").
    Broker,
    /// One broker's own dynamic configs (resource name = its node id).
    Node(i32),
    /// A group's configs (KIP-848).
    Group(String),
}

pub struct Controller {
    lock: Rc<Semaphore>,
    current: std::cell::RefCell<SharedMetadata>,
    /// Set once this node adopted the quorum's image since it started (its
    /// replicas stand by until then, whatever the saved metadata says).
    adopted: std::cell::Cell<bool>,
}

/// How long a cluster change may wait for the quorum to commit it.
const QUORUM_CHANGE_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts of a cluster change that keeps losing to concurrent ones.
const QUORUM_CHANGE_ATTEMPTS: usize = 8;

/// Where new partitions may go, and the owner a replica node id names.
pub struct Placement {
    /// Shards on a single node; the unfenced brokers' node ids in a cluster.
    pub candidates: Vec<usize>,
    owners: HashMap<i32, usize>,
    pub cluster: bool,
    /// In a cluster, each unfenced broker's node ids (by broker id).
    brokers: Vec<Vec<i32>>,
    /// And its broker.rack.
    racks: Vec<Option<String>>,
}

impl Placement {
    fn shards(shard: &Shard) -> Placement {
        let candidates: Vec<usize> = (0..shard.shard_count).collect();
        let owners = candidates
            .iter()
            .map(|&s| (shard.node_of_shard(s), s))
            .collect();
        Placement {
            candidates,
            owners,
            cluster: false,
            brokers: Vec::new(),
            racks: Vec::new(),
        }
    }

    fn cluster(image: &MetadataImage) -> Placement {
        let live: Vec<_> = image.brokers.values().filter(|b| !b.fenced).collect();
        let brokers: Vec<Vec<i32>> = live.iter().map(|b| b.node_ids()).collect();
        let racks = live.iter().map(|b| b.rack.clone()).collect();
        let mut nodes: Vec<i32> = brokers.iter().flatten().copied().collect();
        nodes.sort_unstable();
        Placement {
            candidates: nodes.iter().map(|&n| n as usize).collect(),
            owners: nodes.iter().map(|&n| (n, n as usize)).collect(),
            cluster: true,
            brokers,
            racks,
        }
    }

    /// The broker (index in `brokers`) that has node `node`.
    fn broker_of(&self, node: i32) -> Option<usize> {
        self.brokers.iter().position(|b| b.contains(&node))
    }

    /// Replica lists for `n` new partitions with `rf` replicas each, on
    /// `rf` different brokers: the leader on the node leading the fewest
    /// partitions so far, each follower on the least loaded node of a
    /// broker in a rack not used yet by the partition where there is one
    /// (Kafka's rack-aware placement), taking brokers in turn after the
    /// leader's.
    fn replicas(
        &self,
        md: &ClusterMetadata,
        n: usize,
        rf: usize,
    ) -> Result<Vec<Vec<i32>>, AdminError> {
        if rf > self.brokers.len() {
            return Err(refuse(
                AdminFault::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                    self.brokers.len()
                ),
            ));
        }
        let mut leads: HashMap<i32, usize> = HashMap::new();
        let mut holds: HashMap<i32, usize> = HashMap::new();
        for t in md.topics.values() {
            for state in &t.states {
                *leads
                    .entry(state.replicas.first().copied().unwrap_or(-1))
                    .or_default() += 1;
                for &r in &state.replicas {
                    *holds.entry(r).or_default() += 1;
                }
            }
        }
        let nodes: Vec<i32> = self.brokers.iter().flatten().copied().collect();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let load = |node: &i32| {
                (
                    leads.get(node).copied().unwrap_or(0),
                    holds.get(node).copied().unwrap_or(0),
                    *node,
                )
            };
            let leader = *nodes.iter().min_by_key(|&n| load(n)).expect("brokers");
            let first = self.broker_of(leader).expect("a live node");
            let mut used = vec![first];
            let mut replicas = vec![leader];
            while replicas.len() < rf {
                let racks_used: Vec<&Option<String>> =
                    used.iter().map(|&b| &self.racks[b]).collect();
                let next = (1..self.brokers.len())
                    .map(|k| (first + k) % self.brokers.len())
                    .filter(|b| !used.contains(b))
                    .min_by_key(|&b| {
                        let rack = &self.racks[b];
                        let rack_used = rack.is_some() && racks_used.contains(&rack);
                        let k = (b + self.brokers.len() - first) % self.brokers.len();
                        (rack_used, k)
                    })
                    .expect("rf <= brokers");
                let node = *self.brokers[next]
                    .iter()
                    .min_by_key(|&n| (holds.get(n).copied().unwrap_or(0), *n))
                    .expect("a broker has a node");
                used.push(next);
                replicas.push(node);
            }
            *leads.entry(leader).or_default() += 1;
            for &r in &replicas {
                *holds.entry(r).or_default() += 1;
            }
            out.push(replicas);
        }
        Ok(out)
    }

    /// Checks a manual assignment's replica list: known nodes, each on its
    /// own broker.
    fn check_assignment(&self, replicas: &[i32]) -> Result<(), AdminError> {
        if replicas.is_empty() {
            return Err(refuse(
                AdminFault::InvalidReplicaAssignment,
                "The manual partition assignment includes an empty replica list.",
            ));
        }
        let mut brokers = Vec::new();
        for &node in replicas {
            let Some(b) = self.broker_of(node) else {
                return Err(refuse(
                    AdminFault::InvalidReplicaAssignment,
                    format!("Unknown broker {node} in the replica assignment"),
                ));
            };
            if brokers.contains(&b) {
                return Err(refuse(
                    AdminFault::InvalidReplicaAssignment,
                    format!(
                        "Duplicate replica assignment found: {replicas:?} (replicas of a partition must be on different brokers)"
                    ),
                ));
            }
            brokers.push(b);
        }
        Ok(())
    }

    /// The node for each of `partitions` offsets log partitions: broker
    /// `p % brokers`, and on it the node of the shard that hosts partition
    /// `p` there (`p % its shards`, as `group::shard_for_offsets_partition`
    /// places it).
    fn offsets_owners(&self, partitions: usize) -> Vec<i32> {
        (0..partitions)
            .map(|p| {
                let nodes = &self.brokers[p % self.brokers.len()];
                nodes[p % nodes.len()]
            })
            .collect()
    }

    fn owner_of_node(&self, node: i32) -> Option<usize> {
        self.owners.get(&node).copied()
    }
}

/// The cluster's topics as a controller edits them: owners are node ids.
fn cluster_view(image: &MetadataImage) -> ClusterMetadata {
    let mut md = ClusterMetadata::new();
    md.version = image.version;
    md.cluster_id = image.cluster_id.clone();
    md.next_producer_id = image.next_producer_id;
    md.broker_configs = image.broker_configs.clone();
    md.group_configs = image.group_configs.clone();
    md.node_configs = image.node_configs.clone();
    md.acls = image.acls.clone();
    md.scram = image.scram.clone();
    md.cluster = true;
    md.offsets_owners = image.offsets_owners.clone();
    md.topics = image
        .topics
        .iter()
        .map(|(name, t)| {
            let meta = TopicMeta {
                id: t.id.clone(),
                // The preferred replica: placement balances on it.
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| p.replicas.first().map_or(REMOTE, |&n| n as usize))
                    .collect(),
                states: t.partitions.clone(),
                configs: t.configs.clone(),
            };
            (name.clone(), meta)
        })
        .collect();
    md
}

/// The records that turn `base` into `next` (both cluster views).
fn diff(base: &ClusterMetadata, next: &ClusterMetadata) -> Vec<TopicChange> {
    // A partition planned in this change has its one replica in
    // `partitions`; one the image has keeps its replicas.
    let replicas = |t: &TopicMeta, from: usize| -> Vec<Vec<i32>> {
        (from..t.partitions.len())
            .map(|i| match t.states.get(i) {
                Some(state) => state.replicas.clone(),
                None => vec![t.partitions[i] as i32],
            })
            .collect()
    };
    let mut out = Vec::new();
    if base.cluster_id != next.cluster_id {
        out.push(TopicChange::SetClusterId {
            cluster_id: next.cluster_id.clone(),
        });
    }
    for (name, old) in &base.topics {
        if next.topics.get(name).is_none_or(|t| t.id != old.id) {
            out.push(TopicChange::DeleteTopic {
                name: name.clone(),
                id: old.id.clone(),
            });
        }
    }
    for (name, t) in &next.topics {
        match base.topics.get(name).filter(|old| old.id == t.id) {
            None => out.push(TopicChange::CreateTopic {
                name: name.clone(),
                id: t.id.clone(),
                replicas: replicas(t, 0),
                owners: Vec::new(),
                configs: t.configs.clone(),
            }),
            Some(old) => {
                if t.partitions.len() > old.partitions.len() {
                    out.push(TopicChange::AddPartitions {
                        name: name.clone(),
                        id: t.id.clone(),
                        replicas: replicas(t, old.partitions.len()),
                        owners: Vec::new(),
                    });
                }
                if t.configs != old.configs {
                    out.push(TopicChange::SetTopicConfigs {
                        name: name.clone(),
                        id: t.id.clone(),
                        configs: t.configs.clone(),
                    });
                }
            }
        }
    }
    if base.broker_configs != next.broker_configs {
        out.push(TopicChange::SetBrokerConfigs {
            configs: next.broker_configs.clone(),
        });
    }
    if base.next_producer_id != next.next_producer_id {
        out.push(TopicChange::ProducerIds {
            next: next.next_producer_id,
        });
    }
    if base.offsets_owners != next.offsets_owners {
        out.push(TopicChange::PlaceOffsets {
            owners: next.offsets_owners.clone(),
        });
    }
    for (node, configs) in changed_configs(&base.node_configs, &next.node_configs) {
        out.push(TopicChange::SetNodeConfigs { node, configs });
    }
    for (group, configs) in changed_configs(&base.group_configs, &next.group_configs) {
        out.push(TopicChange::SetGroupConfigs { group, configs });
    }
    if base.acls != next.acls {
        out.push(TopicChange::SetAcls {
            acls: next.acls.clone(),
        });
    }
    if base.scram != next.scram {
        out.push(TopicChange::SetScram {
            credentials: next.scram.clone(),
        });
    }
    out
}

/// The owners (groups, nodes) whose configs differ between two versions,
/// with their new configs (empty: none left).
fn changed_configs<K: Ord + Clone>(
    base: &BTreeMap<K, BTreeMap<String, String>>,
    next: &BTreeMap<K, BTreeMap<String, String>>,
) -> Vec<(K, BTreeMap<String, String>)> {
    let owners: std::collections::BTreeSet<&K> = base.keys().chain(next.keys()).collect();
    owners
        .into_iter()
        .filter_map(|k| {
            let configs = next.get(k).cloned().unwrap_or_default();
            (base.get(k).cloned().unwrap_or_default() != configs).then(|| (k.clone(), configs))
        })
        .collect()
}

/// This node's metadata from the cluster's image: every topic, each
/// partition owned by the local shard that is its leader or [`REMOTE`].
fn local_view(current: &ClusterMetadata, image: &MetadataImage, shard: &Shard) -> ClusterMetadata {
    let mut md = current.clone();
    if !image.cluster_id.is_empty() {
        md.cluster_id = image.cluster_id.clone();
    }
    md.next_producer_id = image.next_producer_id;
    md.broker_configs = image.broker_configs.clone();
    md.group_configs = image.group_configs.clone();
    md.node_configs = image.node_configs.clone();
    md.acls = image.acls.clone();
    md.scram = image.scram.clone();
    md.cluster = true;
    md.image_version = image.version;
    md.image_leadership_version = image.leadership_version;
    md.offsets_owners = image.offsets_owners.clone();
    md.topics = image
        .topics
        .iter()
        .map(|(name, t): (&String, &TopicImage)| {
            let meta = TopicMeta {
                id: t.id.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| shard.shard_of_node(p.leader).unwrap_or(REMOTE))
                    .collect(),
                states: t.partitions.clone(),
                configs: t.configs.clone(),
            };
            (name.clone(), meta)
        })
        .collect();
    md
}

/// The longest a shutting-down broker waits for its leadership to move.
pub const HAND_OFF_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's controlled shutdown (`controlled.shutdown.enable`, default
/// true), run on shard 0 of a cluster broker when it is asked to stop:
/// proposes a `ControlledShutdown` of this broker (fenced, its leadership
/// moved to other in-sync replicas, not unfenced again until it registers
/// anew) and waits until the quorum applied it and this node adopted it,
/// so that its clients are sent to the new leaders before it stops
/// serving. At most [`HAND_OFF_TIMEOUT`]; a broker that cannot reach the
/// quorum stops anyway (and is fenced when its session expires).
pub async fn controlled_shutdown(shard: &Rc<Shard>) {
    let Some(proposer) = shard.proposer.get() else {
        return;
    };
    let enabled = shard
        .config
        .kafka_static
        .get("controlled.shutdown.enable")
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    if !enabled || shard.config.kraft.roles.is_none_or(|r| !r.broker) {
        return;
    }
    let me = shard.config.node_id;
    let started = Instant::now();
    let deadline = started + HAND_OFF_TIMEOUT;
    let mut proposed_at: Option<Instant> = None;
    loop {
        let (registered, offset) = {
            let image = proposer.image.read().expect("image lock");
            let b = image.brokers.get(&me).map(|b| (b.epoch, b.shutting_down));
            (b, image.offset)
        };
        let Some((epoch, done)) = registered else {
            return;
        };
        if done {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                "controlled shutdown: the quorum did not take it in time; stopping anyway"
            );
            return;
        }
        // Proposed again while unanswered (a proposal may be lost).
        if proposed_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            proposer.propose(&MetadataRecord::ControlledShutdown {
                broker_id: me,
                epoch,
            });
            proposed_at = Some(Instant::now());
        }
        futures_lite::future::or(proposer.applied_beyond(offset), async {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        })
        .await;
    }
    // This node's own metadata says so: its replicas answer
    // NOT_LEADER_OR_FOLLOWER and its clients look up the new leaders.
    while Instant::now() < deadline {
        let md = shard.metadata();
        let leads = md.topics.values().any(|t| {
            t.states
                .iter()
                .any(|s| shard.shard_of_node(s.leader).is_some())
        });
        if !leads {
            break;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "controlled shutdown: leadership moved to the other in-sync replicas"
    );
}

/// Puts the credentials `shardlog format --add-scram` left into the
/// metadata (the users already there keep theirs unless the file names
/// them again), then moves the file aside.
pub async fn import_scram(shard: &Rc<Shard>, controller: &Controller) {
    let Some(users) = shard.config.users.clone() else {
        return;
    };
    let pending = users.pending();
    if pending.is_empty() {
        return;
    }
    let added = pending.clone();
    let changed = controller
        .change_scram(shard, move |all| {
            crate::security::credentials::apply_changes(all, &[], &added)
        })
        .await;
    match changed {
        Ok(()) => {
            let moved = crate::storage::fsutil::blocking(move || users.imported()).await;
            match moved {
                Ok(()) => tracing::info!(
                    credentials = pending.len(),
                    "formatted SCRAM credentials imported into the metadata"
                ),
                Err(e) => tracing::warn!("moving the imported SCRAM file aside: {e}"),
            }
        }
        Err(e) => tracing::warn!("importing formatted SCRAM credentials: {}", e.message),
    }
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
            adopted: std::cell::Cell::new(false),
        }
    }

    /// Runs one change: `f` edits a copy of the metadata and returns the
    /// per-item results; if it changed anything the new version is
    /// persisted and applied on every shard before this returns. In a
    /// cluster the change goes through the metadata quorum first (see
    /// [`Controller::change_in_cluster`]).
    async fn change<R>(
        &self,
        shard: &Rc<Shard>,
        mut f: impl FnMut(&mut ClusterMetadata, &Placement) -> R,
    ) -> Result<R, AdminError> {
        let _permit = self.lock.acquire_permit(1).await.map_err(|_| {
            refuse(
                AdminFault::ControllerClosed,
                "controller closed".to_string(),
            )
        })?;
        if let Some(proposer) = shard.proposer.get() {
            return self.change_in_cluster(shard, proposer, f).await;
        }
        let current = self.current.borrow().clone();
        let mut next = (*current).clone();
        let result = f(&mut next, &Placement::shards(shard));
        if next != *current {
            self.install(shard, next).await?;
        }
        Ok(result)
    }

    /// Changes the ACLs: `f` edits the set of bindings (in a cluster, of
    /// the quorum's image: the change applies on every broker); the new
    /// set is durable and the authorizer follows it before this returns.
    pub async fn change_acls<R>(
        &self,
        shard: &Rc<Shard>,
        mut f: impl FnMut(&mut std::collections::BTreeSet<AclBinding>) -> R,
    ) -> Result<R, AdminError> {
        self.change(shard, |md, _| {
            let mut set = acl::to_set(&md.acls);
            let result = f(&mut set);
            md.acls = acl::to_stored(&set);
            result
        })
        .await
    }

    /// Changes the SCRAM credentials: `f` edits the list (in a cluster,
    /// the quorum image's: the change applies on every broker); durable,
    /// and followed by new authentications, before this returns.
    pub async fn change_scram<R>(
        &self,
        shard: &Rc<Shard>,
        mut f: impl FnMut(&mut Vec<ScramEntry>) -> R,
    ) -> Result<R, AdminError> {
        self.change(shard, |md, _| f(&mut md.scram)).await
    }

    /// Persists `next` as the following version and applies it on every
    /// shard (the caller holds the lock).
    async fn install(
        &self,
        shard: &Rc<Shard>,
        mut next: ClusterMetadata,
    ) -> Result<(), AdminError> {
        let current = self.current.borrow().clone();
        next.version = current.version + 1;
        fsutil::write_file_durably(&shard.config.data_dir, METADATA_FILE, next.encode())
            .await
            .map_err(|e| refuse(AdminFault::Storage, e.to_string()))?;
        // The process's authorizer and users follow each version (they
        // already hold the current one: only a change is re-derived).
        if let Some(authorizer) = shard
            .config
            .authorizer
            .as_ref()
            .filter(|_| next.acls != current.acls)
        {
            authorizer.sync(&next.acls);
        }
        if let Some(users) = shard
            .config
            .users
            .as_ref()
            .filter(|_| next.scram != current.scram)
        {
            users.sync(&next.scram);
        }
        let next = Arc::new(next);
        *self.current.borrow_mut() = next.clone();
        shard.broadcast_metadata(next).await;
        Ok(())
    }

    /// A change in a cluster: `f` edits the cluster-wide view (owners are
    /// node ids) of the quorum's image; the difference is proposed as one
    /// `Change` record that applies only at the image version it was
    /// computed from. Once the image shows it applied, this node adopts
    /// the image. A change that lost to a concurrent one is computed
    /// again; one the quorum does not commit within
    /// [`QUORUM_CHANGE_TIMEOUT`] fails.
    async fn change_in_cluster<R>(
        &self,
        shard: &Rc<Shard>,
        proposer: &Proposer,
        mut f: impl FnMut(&mut ClusterMetadata, &Placement) -> R,
    ) -> Result<R, AdminError> {
        for _ in 0..QUORUM_CHANGE_ATTEMPTS {
            let (base, placement) = {
                let image = proposer.image.read().expect("image lock");
                (cluster_view(&image), Placement::cluster(&image))
            };
            let mut next = base.clone();
            let result = f(&mut next, &placement);
            let changes = diff(&base, &next);
            if changes.is_empty() {
                return Ok(result);
            }
            let token = uuid::Uuid::new_v4().to_string();
            let record = MetadataRecord::Change {
                expected_version: base.version,
                token: token.clone(),
                changes,
            };
            let deadline = Instant::now() + QUORUM_CHANGE_TIMEOUT;
            let mut proposed_at: Option<Instant> = None;
            let mut proposed_to = -1;
            loop {
                let (offset, version, won) = {
                    let image = proposer.image.read().expect("image lock");
                    (image.offset, image.version, image.applied_token(&token))
                };
                if won {
                    self.adopt_image(shard, proposer).await?;
                    return Ok(result);
                }
                if version > base.version {
                    break; // lost to a concurrent change: compute again
                }
                if Instant::now() >= deadline {
                    return Err(refuse(
                        AdminFault::QuorumTimeout,
                        format!(
                            "the metadata quorum did not commit the change within {} s",
                            QUORUM_CHANGE_TIMEOUT.as_secs()
                        ),
                    ));
                }
                // Proposed again while unanswered: a proposal made without
                // a leader, or forwarded to one that died, is lost. At once
                // when a new leader is known, else every second.
                let leader = proposer.status.read().expect("status lock").leader_id;
                let new_leader = leader >= 0 && leader != proposed_to;
                if new_leader || proposed_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    proposer.propose(&record);
                    proposed_at = Some(Instant::now());
                    proposed_to = leader;
                }
                futures_lite::future::or(proposer.applied_beyond(offset), async {
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                })
                .await;
            }
        }
        Err(refuse(
            AdminFault::QuorumTimeout,
            "concurrent metadata changes kept superseding this one".to_string(),
        ))
    }

    /// Adopts the quorum image's topics on this node if it is newer than
    /// what this node has (the caller holds the lock).
    async fn adopt_image(&self, shard: &Rc<Shard>, proposer: &Proposer) -> Result<(), AdminError> {
        let current = self.current.borrow().clone();
        let next = {
            let image = proposer.image.read().expect("image lock");
            if self.adopted.get()
                && current.cluster
                && image.version <= current.image_version
                && image.leadership_version <= current.image_leadership_version
            {
                return Ok(());
            }
            // Not before the image holds this process's registration: until
            // then it may be older than what the node saw before it
            // restarted, and it has not yet fenced the previous incarnation
            // (whose leadership it must not take up again).
            if !crate::cluster::quorum::registered_in(&image, shard.config.node_id) {
                return Ok(());
            }
            local_view(&current, &image, shard)
        };
        self.install(shard, next).await?;
        self.adopted.set(true);
        Ok(())
    }

    /// Adopts the quorum's image now if it is newer (after a change made
    /// through records of its own, such as an election), so that this
    /// node answers with it at once.
    pub async fn adopt_latest(&self, shard: &Rc<Shard>) {
        let Some(proposer) = shard.proposer.get() else {
            return;
        };
        let Ok(_permit) = self.lock.acquire_permit(1).await else {
            return;
        };
        if self.adopt_image(shard, proposer).await.is_err() {
            tracing::warn!("adopting the cluster metadata failed; the image follower retries");
        }
    }

    /// Keeps this node's metadata in step with the quorum's image (run on
    /// shard 0 of a cluster node): adopts every newer version, and on the
    /// quorum's leader gives the cluster its id if it has none (this node's
    /// own).
    pub async fn follow_image(shard: Rc<Shard>, proposer: Proposer) {
        let this = shard.controller();
        // A controller-only node serves no partitions: it keeps no topics.
        let broker = shard.config.kraft.roles.is_none_or(|r| r.broker);
        let mut seen = i64::MIN;
        while !shard.is_shutting_down() {
            futures_lite::future::or(proposer.applied_beyond(seen), async {
                glommio::timer::sleep(Duration::from_secs(1)).await;
            })
            .await;
            seen = proposer.image.read().expect("image lock").offset;
            let adopted = async {
                if !broker {
                    return Some(());
                }
                let _permit = this.lock.acquire_permit(1).await.ok()?;
                this.adopt_image(&shard, &proposer).await.ok()
            };
            if adopted.await.is_none() {
                tracing::warn!("adopting the cluster metadata failed; retrying");
            }
            let (no_id, leading) = {
                let image = proposer.image.read().expect("image lock");
                let status = proposer.status.read().expect("status lock");
                (
                    image.cluster_id.is_empty(),
                    status.leader_id == status.node_id,
                )
            };
            if no_id && leading {
                let own = this.current.borrow().cluster_id.clone();
                let _ = this
                    .change(&shard, |md, _| {
                        if md.cluster_id.is_empty() {
                            md.cluster_id = own.clone();
                        }
                    })
                    .await;
            }
            // This node's formatted SCRAM credentials go into the metadata
            // log once (every node formatted alike proposes the same ones;
            // a later `format --add-scram` adds its users at the next start).
            if broker && !no_id {
                import_scram(&shard, this).await;
            }
        }
    }

    /// In a cluster, places the `__consumer_offsets` partitions on the
    /// unfenced brokers if they are not placed yet (on the first
    /// FindCoordinator, as Kafka creates the topic then).
    pub async fn place_offsets(
        &self,
        shard: &Rc<Shard>,
        partitions: usize,
    ) -> Result<(), AdminError> {
        self.change(shard, |md, placement| {
            if md.offsets_owners.is_empty() && placement.cluster && !placement.brokers.is_empty() {
                md.offsets_owners = placement.offsets_owners(partitions);
                tracing::info!(
                    partitions,
                    brokers = ?placement.brokers,
                    "placing the offsets log over the brokers"
                );
            }
        })
        .await
    }

    pub async fn allocate_producer_ids(
        &self,
        shard: &Rc<Shard>,
        count: i64,
    ) -> Result<i64, super::ShardGone> {
        self.change(shard, |md, _| {
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
        let config = shard.config.clone();
        let outcome = self
            .change(shard, |md, placement| {
                let mut out = Vec::with_capacity(topics.len());
                for t in &topics {
                    let r = plan_topic(md, t, &config, placement);
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
            .change(shard, |md, _| {
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
        let outcome = self
            .change(shard, |md, placement| {
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
                        let rf = topic.states.first().map_or(1, |s| s.replicas.len());
                        let replicas: Vec<Vec<i32>> = match assignments {
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
                                if placement.cluster {
                                    for r in a {
                                        placement.check_assignment(r)?;
                                    }
                                    a.clone()
                                } else {
                                    a.iter()
                                        .map(|r| {
                                            owner_from_replicas(r, placement)
                                                .map(|o| vec![o as i32])
                                        })
                                        .collect::<Result<Vec<_>, _>>()?
                                }
                            }
                            None if placement.cluster => placement.replicas(md, added, rf)?,
                            None => {
                                no_brokers(placement)?;
                                md.place(&placement.candidates, added)
                                    .into_iter()
                                    .map(|o| vec![o as i32])
                                    .collect()
                            }
                        };
                        if !validate_only {
                            let (owners, states) = planned(replicas, placement);
                            let t = md.topics.get_mut(name).expect("checked above");
                            t.partitions.extend(owners);
                            t.states.extend(states);
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
            .change(shard, |md, _| {
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
                            ConfigResource::Node(node) => {
                                md.node_configs.get(node).cloned().unwrap_or_default()
                            }
                            ConfigResource::Group(group) => {
                                md.group_configs.get(group).cloned().unwrap_or_default()
                            }
                        };
                        let next = apply_config_ops(resource, current, ops)?;
                        if !validate_only {
                            match resource {
                                ConfigResource::Topic(name) => {
                                    md.topics.get_mut(name).expect("checked").configs = next
                                }
                                ConfigResource::Broker => md.broker_configs = next,
                                ConfigResource::Node(node) => {
                                    if next.is_empty() {
                                        md.node_configs.remove(node);
                                    } else {
                                        md.node_configs.insert(*node, next);
                                    }
                                }
                                ConfigResource::Group(group) => {
                                    if next.is_empty() {
                                        md.group_configs.remove(group);
                                    } else {
                                        md.group_configs.insert(group.clone(), next);
                                    }
                                }
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

/// The name a config is stored under: a topic key, a group key, or for the
/// broker the topic config a broker key sets (retention.ms for
/// log.retention.ms), else the broker key itself. Refuses what Kafka
/// refuses: unknown topic and group keys, broker keys that cannot change
/// at runtime or not at this level (Kafka's InvalidRequest and messages).
/// Broker keys Kafka does not know are stored, as Kafka stores them.
fn config_name(resource: &ConfigResource, key: &str) -> Result<String, AdminError> {
    use crate::config::registry::{registry, Mode};
    let known = match resource {
        ConfigResource::Topic(_) => topic_config_def(key).map(|d| d.name),
        ConfigResource::Group(_) => crate::config::group::group_config_def(key).map(|d| d.name),
        ConfigResource::Broker | ConfigResource::Node(_) => {
            let cluster_level = matches!(resource, ConfigResource::Broker);
            let cannot = |why: &str| {
                Err(refuse(
                    AdminFault::InvalidRequest,
                    format!("{why}: Set({key})"),
                ))
            };
            let mode = match registry().broker_key(key) {
                Some(k) => k.mode,
                None if key.starts_with("shardlog.") => Mode::ReadOnly,
                None => return Ok(key.to_string()),
            };
            if key.starts_with("ssl.") && mode != Mode::ReadOnly {
                // Kafka's answer comes first for TLS keys (shardlog reads
                // them at startup and reloads their files).
                return Err(refuse(
                    AdminFault::InvalidRequest,
                    format!("These security configs can be dynamically updated only per-listener using the listener prefix: HashSet({key})"),
                ));
            }
            if mode != Mode::ReadOnly && crate::config::BrokerConfig::reads_key(key) {
                // Kafka can change these at runtime; shardlog reads them
                // once, at startup (listeners, max.connections, ...).
                return Err(refuse(
                    AdminFault::InvalidRequest,
                    format!("Cannot update these configs dynamically: Set({key}) (shardlog reads them at startup: set them in server.properties)"),
                ));
            }
            match mode {
                Mode::ReadOnly => return cannot("Cannot update these configs dynamically"),
                Mode::PerBroker if cluster_level => {
                    return cannot(
                        "Cannot update these configs at default cluster level, broker id must be specified",
                    )
                }
                _ => {}
            }
            return Ok(crate::config::topic_def_for_broker_key(key)
                .map_or(key, |d| d.name)
                .to_string());
        }
    };
    known.map(str::to_string).ok_or_else(|| {
        let message = match resource {
            ConfigResource::Group(_) => format!("Unknown group config name: {key}"),
            _ => format!("Unknown topic config name: {key}"),
        };
        refuse(AdminFault::InvalidConfig, message)
    })
}

/// A config value checked by its resource's rules: Kafka's type and range
/// checks, then shardlog's (tiered storage is refused, ...).
/// Broker values that fail are InvalidRequest, as Kafka answers them.
fn validate_config(
    resource: &ConfigResource,
    key: &str,
    name: &str,
    value: &str,
) -> Result<(), AdminError> {
    match resource {
        ConfigResource::Group(_) => {
            crate::config::group::validate_group_config(name, value).map_err(bad_config)
        }
        ConfigResource::Topic(_) => validate_topic_config(name, value).map_err(bad_config),
        ConfigResource::Broker | ConfigResource::Node(_) => {
            let bad = |e: BrokerConfigError| {
                let message = match e {
                    BrokerConfigError::InvalidValue { reason, .. } => {
                        format!("Invalid value {value} for configuration {key}: {reason}")
                    }
                    other => other.to_string(),
                };
                refuse(AdminFault::InvalidRequest, message)
            };
            if let Some(k) = crate::config::registry::registry().broker_key(key) {
                k.check(value).map_err(|reason| {
                    bad(BrokerConfigError::InvalidValue {
                        key: key.to_string(),
                        value: value.to_string(),
                        reason,
                    })
                })?;
            }
            if name != key || topic_config_def(name).is_some_and(|d| d.broker_key == key) {
                validate_topic_config(name, value).map_err(bad)?;
            }
            Ok(())
        }
    }
}

/// APPEND (or SUBTRACT) of `value`'s comma-separated items to (from) a
/// list config's current value, or its default when it has none here, as
/// Kafka does: items are added once, in order; only list configs take
/// these operations.
fn list_op(
    resource: &ConfigResource,
    key: &str,
    name: &str,
    current: &BTreeMap<String, String>,
    append: bool,
    value: &str,
) -> Result<String, AdminError> {
    use crate::config::registry::registry;
    use crate::config::ConfigKind;
    let (kind, default) = match resource {
        ConfigResource::Topic(_) => (
            registry().topic_key(key).map(|k| k.kind),
            topic_config_def(key).map(|d| d.default.to_string()),
        ),
        ConfigResource::Broker | ConfigResource::Node(_) => {
            let k = registry().broker_key(key);
            (
                k.map(|k| k.kind),
                k.and_then(|k| k.default).map(str::to_string),
            )
        }
        ConfigResource::Group(_) => (None, None),
    };
    if kind != Some(ConfigKind::List) {
        let what = if append { "APPEND" } else { "SUBTRACT" };
        return Err(refuse(
            AdminFault::InvalidConfig,
            format!("Can't {what} to key {key} because its type is not LIST."),
        ));
    }
    let items = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut list = items(
        current
            .get(name)
            .cloned()
            .or(default)
            .as_deref()
            .unwrap_or(""),
    );
    for item in items(value) {
        if append {
            if !list.contains(&item) {
                list.push(item);
            }
        } else {
            list.retain(|i| *i != item);
        }
    }
    Ok(list.join(","))
}

/// A value as Kafka stores it: booleans in lower case.
fn stored_value(resource: &ConfigResource, key: &str, value: &str) -> String {
    use crate::config::registry::registry;
    let kind = match resource {
        ConfigResource::Topic(_) => registry().topic_key(key).map(|k| k.kind),
        ConfigResource::Broker | ConfigResource::Node(_) => {
            registry().broker_key(key).map(|k| k.kind)
        }
        ConfigResource::Group(_) => None,
    };
    match kind {
        Some(crate::config::ConfigKind::Boolean) => value.trim().to_ascii_lowercase(),
        _ => value.to_string(),
    }
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
                    validate_config(resource, key, &name, v)?;
                    next.insert(name, stored_value(resource, key, v));
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
                        validate_config(resource, key, &name, &v)?;
                        next.insert(name, stored_value(resource, key, &v));
                    }
                    1 => {
                        next.remove(&name);
                    }
                    2 | 3 => {
                        let v = value.clone().ok_or_else(|| {
                            refuse(AdminFault::InvalidRequest, format!("null value for {key}"))
                        })?;
                        let list = list_op(resource, key, &name, &next, *op == 2, &v)?;
                        validate_config(resource, key, &name, &list)?;
                        next.insert(name, list);
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

/// New partitions' owners (on a single node, the owning shard; in a
/// cluster, the preferred replica's node id) and, in a cluster, their
/// registrations (all replicas in sync, the first leading).
fn planned(replicas: Vec<Vec<i32>>, placement: &Placement) -> (Vec<usize>, Vec<PartitionState>) {
    let owners = replicas.iter().map(|r| r[0] as usize).collect();
    let states = if placement.cluster {
        replicas.into_iter().map(PartitionState::new).collect()
    } else {
        Vec::new()
    };
    (owners, states)
}

/// Refuses placement when a cluster has no unfenced broker.
fn no_brokers(placement: &Placement) -> Result<(), AdminError> {
    if placement.candidates.is_empty() {
        return Err(refuse(
            AdminFault::InvalidReplicationFactor,
            "Unable to replicate the partition 1 time(s): The target replication factor of 1 cannot be reached because only 0 broker(s) are registered.",
        ));
    }
    Ok(())
}

fn owner_from_replicas(replicas: &[i32], placement: &Placement) -> Result<usize, AdminError> {
    match replicas {
        [node] => placement.owner_of_node(*node).ok_or_else(|| {
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
    placement: &Placement,
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
    let replicas: Vec<Vec<i32>> = if !t.assignments.is_empty() {
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
        if placement.cluster {
            let lists: Vec<Vec<i32>> = by_index.iter().map(|(_, r)| (*r).clone()).collect();
            for r in &lists {
                placement.check_assignment(r)?;
            }
            lists
        } else {
            by_index
                .iter()
                .map(|(_, r)| owner_from_replicas(r, placement).map(|o| vec![o as i32]))
                .collect::<Result<Vec<_>, _>>()?
        }
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
        if placement.cluster {
            placement.replicas(md, partitions as usize, rf as usize)?
        } else {
            if rf > 1 {
                return Err(refuse(
                    AdminFault::InvalidReplicationFactor,
                    format!("Replication factor: {rf} larger than available brokers: 1."),
                ));
            }
            no_brokers(placement)?;
            md.place(&placement.candidates, partitions as usize)
                .into_iter()
                .map(|o| vec![o as i32])
                .collect()
        }
    };
    let (owners, states) = planned(replicas, placement);
    let replication_factor = states.first().map_or(1, |s| s.replicas.len() as i16);
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
        let stored = stored_value(&ConfigResource::Topic(String::new()), key, value);
        configs.insert(key.clone(), stored);
    }
    let meta = TopicMeta {
        id: new_topic_id(),
        partitions: owners,
        states,
        configs,
    };
    let created = CreatedTopic {
        name: t.name.clone(),
        topic_id: meta.id.clone(),
        num_partitions: meta.partitions.len() as i32,
        replication_factor,
    };
    Ok((meta, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(brokers: &[(&[i32], Option<&str>)]) -> Placement {
        let nodes: Vec<i32> = brokers
            .iter()
            .flat_map(|(n, _)| n.iter().copied())
            .collect();
        Placement {
            candidates: nodes.iter().map(|&n| n as usize).collect(),
            owners: nodes.iter().map(|&n| (n, n as usize)).collect(),
            cluster: true,
            brokers: brokers.iter().map(|(n, _)| n.to_vec()).collect(),
            racks: brokers.iter().map(|(_, r)| r.map(str::to_string)).collect(),
        }
    }

    #[test]
    fn replicas_go_to_different_brokers_and_leaders_are_spread() {
        // Three brokers of two shards each (per-shard node ids).
        let p = placement(&[
            (&[1000, 1001], None),
            (&[2000, 2001], None),
            (&[3000, 3001], None),
        ]);
        let md = ClusterMetadata::new();
        let lists = p.replicas(&md, 6, 3).unwrap();
        let mut leaders: Vec<i32> = lists.iter().map(|r| r[0]).collect();
        leaders.sort();
        assert_eq!(leaders, vec![1000, 1001, 2000, 2001, 3000, 3001]);
        for r in &lists {
            let mut brokers: Vec<i32> = r.iter().map(|n| n / 1000).collect();
            brokers.sort();
            assert_eq!(brokers, vec![1, 2, 3], "{r:?}");
        }
        let e = p.replicas(&md, 1, 4).unwrap_err();
        assert_eq!(e.fault, AdminFault::InvalidReplicationFactor);
        assert!(e.message.contains("only 3 broker(s) are registered"), "{e}");
        // Manual lists: known nodes on distinct brokers.
        assert!(p.check_assignment(&[1000, 2001]).is_ok());
        assert_eq!(
            p.check_assignment(&[1000, 1001]).unwrap_err().fault,
            AdminFault::InvalidReplicaAssignment
        );
        assert!(p.check_assignment(&[1000, 9]).is_err());
        assert!(p.check_assignment(&[]).is_err());
    }

    #[test]
    fn followers_prefer_racks_the_partition_does_not_use() {
        // Brokers 1 and 2 in rack a, 3 and 4 in rack b: each partition's
        // two replicas span both racks.
        let p = placement(&[
            (&[1], Some("a")),
            (&[2], Some("a")),
            (&[3], Some("b")),
            (&[4], Some("b")),
        ]);
        let md = ClusterMetadata::new();
        for r in p.replicas(&md, 8, 2).unwrap() {
            let racks: Vec<bool> = r.iter().map(|&n| n <= 2).collect();
            assert_ne!(racks[0], racks[1], "{r:?}");
        }
    }
}
