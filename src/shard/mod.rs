//! A shard: one pinned glommio executor and everything it owns outright —
//! its partitions (logs, caches, producer state), its copy of the cluster
//! metadata, its request-memory budget. Other shards reach it only by
//! sending it a job over the channel mesh ([`Shard::run_on`]).
//!
//! Shard 0 is also the controller: it makes every metadata change, persists
//! it and broadcasts it (see [`controller`]). Every shard also coordinates
//! the consumer groups of the offsets log partitions it owns (see
//! [`crate::group`]).

pub mod budget;
pub mod controller;
pub mod latch;
pub mod metadata;
pub mod routing_table;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use glommio::channels::channel_mesh::{Receivers, Senders};
use tracing::{info, warn};

use crate::config::{partition_config_for, BrokerConfig, ListenerMode};
use crate::group;
use crate::partition::replica::RoleChange;
use crate::partition::Partition;
use crate::storage::fsutil::{self, Durability};
use crate::storage::{ClosingLog, ShardStorage, StorageError};
use budget::Budget;
use metadata::{ClusterMetadata, SharedMetadata, TopicMeta};
use routing_table::{PartitionId, RoutingTable};

/// A job sent to another shard: a closure run there with that shard.
pub type Job = Box<dyn FnOnce(Rc<Shard>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// The other shard stopped (shutdown) before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shard {0} is not available")]
pub struct ShardGone(pub usize);

/// A broker node as Metadata advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

/// The partitions of one topic that this shard owns.
struct LocalTopic {
    /// The topic id they were opened for: a topic deleted and created again
    /// under the same name has a new id.
    id: String,
    /// By partition index; `None` where another shard owns it.
    partitions: Vec<Option<Rc<Partition>>>,
}

pub struct Shard {
    pub id: usize,
    pub shard_count: usize,
    pub config: Arc<BrokerConfig>,
    pub storage: ShardStorage,
    /// This shard's routing table, built from the metadata version it last
    /// applied.
    routing: RefCell<Rc<RoutingTable>>,
    /// This shard's partitions by id in `routing`: the slots the router's
    /// ids index. `None` where another shard owns the partition.
    slots: RefCell<Vec<Option<Rc<Partition>>>>,
    /// This shard's partitions by topic, to open, reconfigure and delete
    /// them as metadata changes.
    topics: RefCell<HashMap<String, LocalTopic>>,
    mesh: Option<Senders<Job>>,
    /// Request bytes read and not yet answered on this shard's
    /// connections (queued.max.request.bytes).
    pub request_budget: Rc<Budget>,
    /// Response bytes built and not yet written on this shard's
    /// connections (shardlog.response.bytes.max).
    pub response_budget: Rc<Budget>,
    /// Producer ids handed to this shard by the controller: [next, end).
    producer_ids: Cell<(i64, i64)>,
    pub controller: Option<controller::Controller>,
    /// The consumer groups this shard coordinates.
    pub groups: Rc<group::Coordinator>,
    /// Set when the shard starts shutting down.
    pub shutdown: latch::Latch,
    /// Connections open on this shard.
    pub connections: Cell<usize>,
    /// The metadata quorum's view from this process, on controllers.
    pub quorum: std::cell::OnceCell<crate::cluster::SharedStatus>,
    /// The cluster's metadata image, in a cluster.
    pub image: std::cell::OnceCell<crate::cluster::SharedImage>,
    /// On shard 0 of a cluster node: proposes metadata records.
    pub proposer: std::cell::OnceCell<crate::cluster::Proposer>,
    /// Requests served on this shard's connections, by API.
    pub requests: crate::stats::RequestStats,
    /// Set once the shard listens for clients.
    pub serving: Cell<bool>,
    /// The follower replicas this shard fetches for, in a cluster.
    pub followers: crate::replication::fetcher::Followers,
    /// The share of the last second this shard's executor spent running
    /// tasks and polling I/O, and its total so far (see
    /// `crate::metrics::sample_busy`).
    pub busy: Cell<(f64, Duration)>,
}

/// The shard that makes metadata changes.
pub const CONTROLLER_SHARD: usize = 0;

/// The nodes this process serves clients as on `listener`: one for the
/// broker, or one per shard in per-shard mode (shard i is node
/// `node.id + i` on the listener's advertised port + 1 + i).
pub fn local_nodes(
    config: &BrokerConfig,
    listener: &crate::config::ClientListener,
    shard_count: usize,
) -> Vec<Node> {
    let (host, port) = &listener.advertise;
    match config.listener_mode {
        ListenerMode::Single => vec![Node {
            node_id: config.node_id,
            host: host.clone(),
            port: *port as i32,
        }],
        ListenerMode::PerShard => (0..shard_count)
            .map(|i| Node {
                node_id: config.node_id + i as i32,
                host: host.clone(),
                port: *port as i32 + 1 + i as i32,
            })
            .collect(),
    }
}

/// Producer ids the controller hands a shard at once.
const PRODUCER_ID_BLOCK: i64 = 1000;

impl Shard {
    /// Creates the shard, opens the partitions it owns and starts draining
    /// jobs from the other shards.
    pub async fn start(
        config: Arc<BrokerConfig>,
        storage: ShardStorage,
        metadata: ClusterMetadata,
        mesh: Option<(Senders<Job>, Receivers<Job>)>,
    ) -> Result<Rc<Shard>, StorageError> {
        let (id, shard_count, senders, receivers) = match mesh {
            Some((s, r)) => (s.peer_id(), s.nr_consumers(), Some(s), Some(r)),
            None => (0, 1, None, None),
        };
        let metadata = Arc::new(metadata);
        let controller =
            (id == CONTROLLER_SHARD).then(|| controller::Controller::new(metadata.clone()));
        let groups = group::Coordinator::start(
            config.groups.clone(),
            &config.data_dir,
            id,
            shard_count,
            &storage,
        )
        .await?;
        let shard = Rc::new(Shard {
            id,
            shard_count,
            request_budget: Budget::new(config.queued_max_request_bytes as u64),
            response_budget: Budget::new(config.response_bytes_max as u64),
            config,
            storage,
            routing: RefCell::new(Rc::new(RoutingTable::build(metadata.clone()))),
            slots: RefCell::new(Vec::new()),
            topics: RefCell::new(HashMap::new()),
            mesh: senders,
            producer_ids: Cell::new((0, 0)),
            controller,
            groups,
            shutdown: latch::Latch::default(),
            connections: Cell::new(0),
            quorum: std::cell::OnceCell::new(),
            image: std::cell::OnceCell::new(),
            proposer: std::cell::OnceCell::new(),
            requests: Default::default(),
            serving: Cell::new(false),
            followers: Default::default(),
            busy: Cell::new((0.0, Duration::ZERO)),
        });
        if let Some(mut receivers) = receivers {
            for (_, stream) in receivers.streams() {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    while let Some(job) = stream.recv().await {
                        glommio::spawn_local(job(shard.clone())).detach();
                    }
                })
                .detach();
            }
        }
        // With this node's follower replicas known (they serve consumers'
        // reads too).
        let routing = RoutingTable::build_with(metadata.clone(), &|n| shard.shard_of_node(n));
        *shard.routing.borrow_mut() = Rc::new(routing);
        shard.place_replicas(&metadata, true).await?;
        shard.fill_slots();
        shard.clone().spawn_retention();
        shard.clone().spawn_cleaner();
        if shard.config.kraft.roles.is_some() {
            glommio::spawn_local(crate::replication::fetcher::isr_loop(shard.clone())).detach();
        }
        Ok(shard)
    }

    /// The controller; only shard 0 has it (run there with
    /// `run_on(CONTROLLER_SHARD, ..)`).
    pub fn controller(&self) -> &controller::Controller {
        self.controller
            .as_ref()
            .expect("the controller runs on shard 0")
    }

    pub fn metadata(&self) -> SharedMetadata {
        self.routing.borrow().metadata().clone()
    }

    /// This shard's routing table (the current version's).
    pub fn routing(&self) -> Rc<RoutingTable> {
        self.routing.borrow().clone()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_set()
    }

    pub fn begin_shutdown(&self) {
        self.shutdown.set();
        self.groups.begin_shutdown();
    }

    /// The shard that coordinates consumer group `group_id`.
    pub fn group_coordinator_shard(&self, group_id: &str) -> usize {
        group::coordinator_shard(
            group_id,
            self.config.groups.offsets_partitions,
            self.shard_count,
        )
    }

    /// Runs `f` on shard `target` and returns its result: directly when the
    /// target is this shard, otherwise as a job over the mesh.
    pub async fn run_on<T, F, Fut>(self: &Rc<Self>, target: usize, f: F) -> Result<T, ShardGone>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if target == self.id {
            return Ok(f(self.clone()).await);
        }
        let mesh = self.mesh.as_ref().ok_or(ShardGone(target))?;
        let (tx, rx) = futures_channel::oneshot::channel();
        let job: Job = Box::new(move |shard| {
            Box::pin(async move {
                let _ = tx.send(f(shard).await);
            })
        });
        mesh.send_to(target, job)
            .await
            .map_err(|_| ShardGone(target))?;
        rx.await.map_err(|_| ShardGone(target))
    }

    /// The nodes Metadata advertises to a client of client listener
    /// `listener` (an index into the config's): this process's (one, or
    /// one per shard in per-shard mode) and, in a cluster, those of every
    /// other unfenced broker in the metadata image that has a listener of
    /// the same name (as Kafka, a broker without it is left out).
    pub fn nodes(&self, listener: usize) -> Vec<Node> {
        let Some(l) = self.config.client_listeners.get(listener) else {
            return Vec::new();
        };
        let mut nodes = local_nodes(&self.config, l, self.shard_count);
        if let Some(image) = self.image.get() {
            let image = image.read().expect("image lock");
            nodes.extend(
                image
                    .brokers
                    .values()
                    .filter(|b| !b.fenced && b.broker_id != self.config.node_id)
                    .flat_map(|b| &b.endpoints)
                    .filter(|e| e.on_listener(&l.name))
                    .map(|e| Node {
                        node_id: e.node_id,
                        host: e.host.clone(),
                        port: i32::from(e.port),
                    }),
            );
        }
        nodes
    }

    /// The node that leads partitions owned by `shard`.
    pub fn node_of_shard(&self, shard: usize) -> i32 {
        match self.config.listener_mode {
            ListenerMode::Single => self.config.node_id,
            ListenerMode::PerShard => self.config.node_id + shard as i32,
        }
    }

    /// The shard behind a node id, if it is one of ours.
    pub fn shard_of_node(&self, node: i32) -> Option<usize> {
        match self.config.listener_mode {
            ListenerMode::Single => (node == self.config.node_id).then_some(0),
            ListenerMode::PerShard => {
                let i = node.checked_sub(self.config.node_id)?;
                (i >= 0 && (i as usize) < self.shard_count).then_some(i as usize)
            }
        }
    }

    /// The shard owning `topic`/`partition`, if it exists.
    pub fn owner_of(&self, topic: &str, partition: i32) -> Option<usize> {
        let routing = self.routing.borrow();
        let id = routing.topic(topic)?.partition(partition)?;
        Some(routing.owner(id))
    }

    /// This shard's partition with id `id` in the current routing table.
    pub fn partition(&self, id: PartitionId) -> Option<Rc<Partition>> {
        self.slots.borrow().get(id.index()).cloned().flatten()
    }

    /// Every partition this shard owns.
    pub fn local_partitions(&self) -> Vec<(String, i32, Rc<Partition>)> {
        let topics = self.topics.borrow();
        let mut out = Vec::new();
        for (topic, local) in topics.iter() {
            for (i, p) in local.partitions.iter().enumerate() {
                if let Some(p) = p {
                    out.push((topic.clone(), i as i32, p.clone()));
                }
            }
        }
        out
    }

    /// Points each id of the current routing table at this shard's
    /// partition, after the table or the partitions changed.
    fn fill_slots(&self) {
        let routing = self.routing.borrow();
        let topics = self.topics.borrow();
        let mut slots = self.slots.borrow_mut();
        slots.clear();
        slots.resize(routing.len(), None);
        for (id, name, index) in routing.partitions() {
            // Follower replicas too: consumers may read from them.
            if routing.serving_shard(id, true) != Some(self.id) {
                continue;
            }
            slots[id.index()] = topics
                .get(name)
                .and_then(|t| t.partitions.get(index as usize))
                .cloned()
                .flatten();
        }
    }

    /// Broker-level topic defaults: static config, then the cluster-wide
    /// dynamic configs, then this shard's node's own (Kafka's order).
    pub fn broker_topic_defaults(&self) -> std::collections::BTreeMap<String, String> {
        broker_defaults_for(&self.config, &self.metadata(), self.node_of_shard(self.id))
    }

    fn partition_dir(&self, topic: &str, partition: usize) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// This shard's open partition `topic`/`index` (leader or follower).
    pub fn replica(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        self.topics
            .borrow()
            .get(topic)
            .and_then(|t| t.partitions.get(index as usize).cloned().flatten())
    }

    /// Opens the partitions this shard holds a replica of (on a single
    /// node, those it owns) and gives each the role the metadata names:
    /// a leader leads in its epoch, a follower fetches from its leader. At
    /// `start` a cluster node's replicas stand by (no produce) until the
    /// quorum's image says who leads: the metadata saved here may be old.
    async fn place_replicas(
        self: &Rc<Self>,
        md: &ClusterMetadata,
        start: bool,
    ) -> Result<(), StorageError> {
        let defaults = broker_defaults_for(&self.config, md, self.node_of_shard(self.id));
        let lag = self.config.replica_lag_time_max_ms;
        let now = crate::replication::now_ms();
        for (name, topic) in &md.topics {
            let config = partition_config_for(&defaults, &topic.configs);
            for i in 0..topic.partitions.len() {
                let replica = match topic.states.get(i) {
                    None if topic.partitions[i] == self.id => None,
                    None => continue,
                    Some(state) => match state
                        .replicas
                        .iter()
                        .copied()
                        .find(|&r| self.shard_of_node(r) == Some(self.id))
                    {
                        Some(node) => Some((node, state)),
                        None => continue,
                    },
                };
                let index = i as i32;
                if self.followers.is_truncating(name, index) {
                    continue;
                }
                let p = match self.replica(name, index) {
                    Some(p) => {
                        p.set_config(config.clone());
                        p
                    }
                    None => self.open_partition(name, topic, i, md).await?,
                };
                let Some((node, state)) = replica else {
                    p.lead_in(topic.leader_epoch(i));
                    continue;
                };
                if start {
                    p.stand_by();
                    continue;
                }
                if self.config.rack_aware_replica_selector {
                    p.set_read_racks(self.racks_of(&state.replicas));
                }
                match p.take_role(node, state, lag, now) {
                    RoleChange::Follows { leader, epoch } => {
                        if self.followers.follow(name, index, leader, epoch) {
                            crate::replication::fetcher::start(self, leader);
                        }
                    }
                    RoleChange::Leads | RoleChange::Same => self.followers.stop(name, index),
                }
            }
        }
        self.followers.retain(|t, i| self.replica(t, i).is_some());
        Ok(())
    }

    /// The racks (`broker.rack`) of the brokers of `nodes` that have one,
    /// as the cluster's image records them.
    fn racks_of(&self, nodes: &[i32]) -> Vec<(i32, String)> {
        let Some(image) = self.image.get() else {
            return Vec::new();
        };
        let image = image.read().expect("image lock");
        nodes
            .iter()
            .filter_map(|&n| Some((n, image.broker_of_node(n)?.rack.clone()?)))
            .collect()
    }

    /// Cuts follower replica `topic`/`index` at `offset` (before it
    /// fetches from a new leader): closes it, cuts its files, and opens it
    /// again in its role.
    pub async fn truncate_replica(
        self: &Rc<Self>,
        topic: &str,
        index: i32,
        offset: i64,
    ) -> Result<(), StorageError> {
        self.reopen_replica(topic, index, offset, false).await
    }

    /// Closes a follower replica, makes its log start afresh, empty, at
    /// `offset` (it is below its leader's log start), and opens it again
    /// in its role.
    pub async fn start_replica_at(
        self: &Rc<Self>,
        topic: &str,
        index: i32,
        offset: i64,
    ) -> Result<(), StorageError> {
        self.reopen_replica(topic, index, offset, true).await
    }

    async fn reopen_replica(
        self: &Rc<Self>,
        topic: &str,
        index: i32,
        offset: i64,
        start_over: bool,
    ) -> Result<(), StorageError> {
        self.followers.set_truncating(topic, index, true);
        let taken = self.topics.borrow_mut().get_mut(topic).and_then(|t| {
            t.partitions
                .get_mut(index as usize)
                .and_then(|slot| slot.take())
        });
        let cut = async {
            if let Some(p) = taken {
                p.close().await?;
            }
            let dir = self.partition_dir(topic, index as usize);
            if start_over {
                Partition::start_closed_at(&dir, offset).await
            } else {
                Partition::truncate_closed(&dir, offset, &self.storage)
                    .await
                    .map(drop)
            }
        }
        .await;
        self.followers.set_truncating(topic, index, false);
        let reopened = self.place_replicas(&self.metadata(), false).await;
        cut?;
        reopened
    }

    async fn open_partition(
        &self,
        name: &str,
        topic: &TopicMeta,
        index: usize,
        md: &ClusterMetadata,
    ) -> Result<Rc<Partition>, StorageError> {
        let dir = self.partition_dir(name, index);
        prepare_partition_dir(&dir, &topic.id).await?;
        let defaults = broker_defaults_for(&self.config, md, self.node_of_shard(self.id));
        let config = partition_config_for(&defaults, &topic.configs);
        let partition = Rc::new(Partition::open(&dir, config, &self.storage).await?);
        let mut topics = self.topics.borrow_mut();
        let local = topics
            .entry(name.to_string())
            .or_insert_with(|| LocalTopic {
                id: topic.id.clone(),
                partitions: Vec::new(),
            });
        if local.partitions.len() <= index {
            local.partitions.resize(index + 1, None);
        }
        local.partitions[index] = Some(partition.clone());
        Ok(partition)
    }

    /// Adopts a new metadata version: opens partitions newly placed here,
    /// applies config changes, closes and deletes partitions of deleted
    /// topics, and rebuilds the routing table.
    pub async fn apply_metadata(self: &Rc<Self>, next: SharedMetadata) -> Result<(), StorageError> {
        let prev = self.metadata();
        if next.version <= prev.version {
            return Ok(());
        }
        // Deleted topics (or recreated under a new id): close and remove.
        let gone: Vec<(String, LocalTopic)> = {
            let mut topics = self.topics.borrow_mut();
            let names: Vec<String> = topics
                .iter()
                .filter(|(name, local)| next.topics.get(*name).is_none_or(|t| t.id != local.id))
                .map(|(n, _)| n.clone())
                .collect();
            names
                .into_iter()
                .filter_map(|n| topics.remove(&n).map(|local| (n, local)))
                .collect()
        };
        // From here the router resolves against the new version; partitions
        // not opened yet are simply missing from their slots until they are.
        *self.routing.borrow_mut() = Rc::new(RoutingTable::build_with(next.clone(), &|n| {
            self.shard_of_node(n)
        }));
        self.fill_slots();
        for (name, local) in gone {
            for (i, p) in local.partitions.into_iter().enumerate() {
                let Some(p) = p else { continue };
                if let Err(e) = p.close().await {
                    warn!(topic = %name, partition = i, "closing a deleted partition: {e}");
                }
                drop(p);
                let dir = self.partition_dir(&name, i);
                remove_partition_dir(&dir).await;
                info!(topic = %name, partition = i, "deleted partition");
            }
        }
        self.place_replicas(&next, false).await?;
        self.fill_slots();
        Ok(())
    }

    /// Sends a metadata version to every shard and waits until each has
    /// applied it.
    pub async fn broadcast_metadata(self: &Rc<Self>, next: SharedMetadata) {
        let mut waits = Vec::new();
        for target in 0..self.shard_count {
            let md = next.clone();
            waits.push(self.run_on(target, move |s| async move {
                if let Err(e) = s.apply_metadata(md).await {
                    warn!("applying metadata: {e}");
                }
            }));
        }
        for w in waits {
            let _ = w.await;
        }
    }

    /// A new producer id, from this shard's block (refilled by the
    /// controller, which persists the high mark first).
    pub async fn new_producer_id(self: &Rc<Self>) -> Result<i64, ShardGone> {
        let (next, end) = self.producer_ids.get();
        if next < end {
            self.producer_ids.set((next + 1, end));
            return Ok(next);
        }
        let start = self
            .run_on(CONTROLLER_SHARD, |s| async move {
                s.controller()
                    .allocate_producer_ids(&s, PRODUCER_ID_BLOCK)
                    .await
            })
            .await??;
        self.producer_ids
            .set((start + 1, start + PRODUCER_ID_BLOCK));
        Ok(start)
    }

    /// Runs `pass` over every partition the shard owns, every `interval`,
    /// until shutdown (the retention and cleaner loops).
    fn every_partition<F, Fut>(self: Rc<Self>, interval: Duration, pass: F)
    where
        F: Fn(String, i32, Rc<Partition>) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(interval).await;
                for (topic, i, p) in self.local_partitions() {
                    if self.is_shutting_down() {
                        return;
                    }
                    pass(topic, i, p).await;
                }
                if self.is_shutting_down() {
                    return;
                }
            }
        })
        .detach();
    }

    fn spawn_retention(self: Rc<Self>) {
        let interval = Duration::from_millis(self.config.retention_check_interval_ms);
        self.every_partition(interval, |topic, i, p| async move {
            match p.enforce_retention().await {
                Ok(out) if out.segments_deleted > 0 => info!(
                    topic = %topic,
                    partition = i,
                    segments = out.segments_deleted,
                    bytes = out.bytes_deleted,
                    log_start_offset = out.log_start_offset,
                    "retention deleted segments"
                ),
                Ok(_) => {}
                Err(e) => warn!(topic = %topic, partition = i, "retention: {e}"),
            }
        });
    }

    /// The shard's log cleaner: every `log.cleaner.backoff.ms`, one pass
    /// over each compacted partition the shard owns, with the shard's share
    /// of `log.cleaner.dedupe.buffer.size`.
    fn spawn_cleaner(self: Rc<Self>) {
        if !self.config.cleaner_enable {
            return;
        }
        let interval = Duration::from_millis(self.config.cleaner_backoff_ms.max(10));
        let dedupe = (self.config.cleaner_dedupe_buffer_bytes / self.shard_count.max(1) as u64)
            .min(usize::MAX as u64) as usize;
        let io = self.config.cleaner_io_bytes_per_second;
        self.every_partition(interval, move |topic, i, p| async move {
            let started = std::time::Instant::now();
            match p.clean(dedupe, io).await {
                Ok(Some(out)) if out.segments_cleaned > 0 => info!(
                    topic = %topic,
                    partition = i,
                    segments = out.segments_cleaned,
                    bytes_read = out.bytes_read,
                    bytes_written = out.bytes_written,
                    first_dirty_offset = out.first_dirty_offset,
                    ms = started.elapsed().as_millis() as u64,
                    "log cleaner cleaned segments"
                ),
                Ok(_) => {}
                Err(e) => warn!(topic = %topic, partition = i, "log cleaner: {e}"),
            }
        });
    }

    /// Closes every partition cleanly (flush, indexes, producer snapshot,
    /// clean-shutdown marker), many at once: the logs stop concurrently,
    /// then one blocking call trims their segments and writes their small
    /// files from several threads without fsyncs, makes them all durable
    /// with one syncfs, writes the markers and syncs again. Two file-system
    /// syncs instead of five fsyncs per partition, and the disk waits of
    /// thousands of trims overlap.
    pub async fn close_partitions(&self) {
        let started = std::time::Instant::now();
        self.groups.close().await;
        self.slots.borrow_mut().clear();
        let topics: Vec<_> = self.topics.borrow_mut().drain().collect();
        let partitions: Vec<_> = topics
            .into_iter()
            .flat_map(|(topic, local)| {
                let topic = Rc::new(topic);
                local
                    .partitions
                    .into_iter()
                    .enumerate()
                    .filter_map(move |(i, p)| Some((topic.clone(), i, p?)))
            })
            .collect();
        let count = partitions.len();
        let closes = partitions.into_iter().map(|(topic, i, p)| async move {
            let result = p.close_deferred().await;
            if let Err(e) = &result {
                warn!(topic = %topic, partition = i, "close: {e}");
            }
            result.ok().flatten()
        });
        let closing: Vec<ClosingLog> = futures_util::stream::iter(closes)
            .buffer_unordered(PARTITION_CLOSES_IN_FLIGHT)
            .filter_map(|c| async move { c })
            .collect()
            .await;
        let stopped_ms = started.elapsed().as_millis() as u64;
        let data_dir = self.config.data_dir.clone();
        let finished = fsutil::blocking(move || finish_closes_blocking(&closing, &data_dir)).await;
        match finished {
            Ok(clean) => info!(
                partitions = count,
                clean,
                stopped_ms,
                ms = started.elapsed().as_millis() as u64,
                "partitions closed"
            ),
            Err(e) => warn!("closing partitions: syncing the data directory: {e}"),
        }
        if let Some(mesh) = &self.mesh {
            mesh.close();
        }
    }
}

/// Partitions a shard stops at once on shutdown: enough to overlap their
/// final writes, few enough that their flush buffers stay small.
const PARTITION_CLOSES_IN_FLIGHT: usize = 64;

/// Threads that trim segments and write small files on shutdown, all on
/// the shard's core: the work is waiting on the disk (a trim that frees
/// preallocated blocks issues a discard, one that ends mid-block reads the
/// block), and overlapping eight waits made 4,000 trims on this machine's
/// disk about five times faster than one at a time.
const SHUTDOWN_FILE_THREADS: usize = 8;

/// The disk half of closing many logs: each log's trim and files, one
/// file-system sync, the clean-shutdown markers of those that finished,
/// another sync. Returns how many logs closed cleanly.
fn finish_closes_blocking(closing: &[ClosingLog], data_dir: &Path) -> std::io::Result<usize> {
    let results = fsutil::for_each_parallel_blocking(closing, SHUTDOWN_FILE_THREADS, |c| {
        c.finish_blocking(Durability::Deferred)
    });
    let finished: Vec<&ClosingLog> = closing
        .iter()
        .zip(results)
        .filter_map(|(c, result)| match result {
            Ok(()) => Some(c),
            Err(e) => {
                warn!(dir = %c.dir().display(), "closing the log: {e}");
                None
            }
        })
        .collect();
    // Segments, indexes and snapshots first; the markers that vouch for
    // them after.
    fsutil::sync_fs_blocking(data_dir)?;
    let marked = fsutil::for_each_parallel_blocking(&finished, SHUTDOWN_FILE_THREADS, |c| {
        c.write_marker_blocking(Durability::Deferred)
    });
    let mut clean = 0;
    for (c, result) in finished.iter().zip(marked) {
        match result {
            Ok(()) => clean += 1,
            Err(e) => warn!(dir = %c.dir().display(), "writing the clean-shutdown marker: {e}"),
        }
    }
    fsutil::sync_fs_blocking(data_dir)?;
    Ok(clean)
}

/// Kafka's `partition.metadata` file: ties a partition directory to its
/// topic id, so a directory left from a deleted topic is never mistaken for
/// a new topic of the same name.
const PARTITION_METADATA: &str = "partition.metadata";

fn partition_metadata_text(topic_id: &str) -> String {
    format!("version: 0\ntopic_id: {topic_id}\n")
}

fn topic_id_in(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .map(str::trim)
}

/// Makes `dir` a directory of the topic with id `topic_id`: a directory of
/// another topic id (a deleted topic of the same name) is removed first.
async fn prepare_partition_dir(dir: &Path, topic_id: &str) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    let id = topic_id.to_string();
    fsutil::blocking(move || -> std::io::Result<()> {
        if let Ok(text) = std::fs::read_to_string(dir.join(PARTITION_METADATA)) {
            if topic_id_in(&text) == Some(id.as_str()) {
                return Ok(());
            }
            warn!(dir = %dir.display(), "removing the directory of a deleted topic");
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        fsutil::write_file_durably_blocking(
            &dir,
            PARTITION_METADATA,
            partition_metadata_text(&id).as_bytes(),
        )?;
        if let Some(parent) = dir.parent() {
            fsutil::sync_dir_blocking(parent)?;
        }
        Ok(())
    })
    .await
    .map_err(|e| StorageError::io("preparing a partition directory", e))
}

async fn remove_partition_dir(dir: &Path) {
    let dir = dir.to_path_buf();
    let result = fsutil::blocking(move || -> std::io::Result<()> {
        // Renamed first so a crash mid-delete leaves a name recovery removes.
        let doomed = PathBuf::from(format!(
            "{}.{}-delete",
            dir.display(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::rename(&dir, &doomed)?;
        if let Some(parent) = dir.parent() {
            fsutil::sync_dir_blocking(parent)?;
        }
        std::fs::remove_dir_all(&doomed)
    })
    .await;
    if let Err(e) = result {
        warn!("removing partition directory: {e}");
    }
}

/// Startup clean-up of the data directory, before shards open partitions:
/// removes `*-delete` directories and partition directories whose topic id
/// is no longer in the metadata (a delete interrupted by a crash).
pub fn clean_data_dir(data_dir: &Path, md: &ClusterMetadata) -> std::io::Result<()> {
    let ids: std::collections::HashSet<&str> = md.topics.values().map(|t| t.id.as_str()).collect();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with("-delete") {
            info!(dir = %path.display(), "removing a deleted partition directory");
            std::fs::remove_dir_all(&path)?;
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(path.join(PARTITION_METADATA)) {
            if let Some(id) = topic_id_in(&text) {
                if !ids.contains(id) {
                    info!(dir = %path.display(), "removing the directory of a deleted topic");
                    std::fs::remove_dir_all(&path)?;
                }
            }
        }
    }
    Ok(())
}

/// Broker-level values for node `node`: static config, then the
/// cluster-wide dynamic configs, then the node's own.
fn broker_defaults_for(
    config: &BrokerConfig,
    md: &ClusterMetadata,
    node: i32,
) -> std::collections::BTreeMap<String, String> {
    let mut d = config.topic_defaults.clone();
    d.extend(md.broker_configs.clone());
    if let Some(own) = md.node_configs.get(&node) {
        d.extend(own.clone());
    }
    d
}
