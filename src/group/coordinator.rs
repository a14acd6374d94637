//! The coordinator of one shard: the async layer around the membership
//! state machine (`membership.rs`). It holds the groups whose offsets
//! partitions this shard owns, runs each step of the state machine on a
//! group's state, and carries out what the step asks: it answers parked
//! requests, arms the glommio timers (`timers.rs`) and writes to the
//! offsets log (`persistence.rs`). It also runs the compaction and
//! offset-expiry loops. Every method runs on this shard; other shards
//! reach it through the handlers, which forward requests here.
//!
//! A step happens synchronously inside one `RefCell` borrow of the group
//! table. A request that must wait (JoinGroup for the rebalance, SyncGroup
//! for the leader's assignment) parks a oneshot sender in its group's slot
//! and awaits the receiver outside the borrow.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;
use tracing::{info, warn};

use super::error::GroupError;
use super::membership::{self, Effects, Step, StoreRequest, Timer, TimerOp};
use super::persistence::{self, Loaded, OffsetsLog, Pending, StoreError};
use super::state::{Group, GroupState, Ticket};
use super::timers::{self, Timers};
use super::{
    offsets_partition_for, shard_for_offsets_partition, GroupDescription, GroupView, JoinError,
    JoinParams, JoinResult, ListedGroup, SyncParams, SyncResult,
};
use crate::config::GroupConfig;
use crate::storage::{Clock, ShardStorage, StorageError};

pub struct Coordinator {
    pub(super) config: GroupConfig,
    /// Groups this shard may hold: its share of shardlog.groups.max.
    groups_max: usize,
    partitions: usize,
    clock: Rc<dyn Clock>,
    logs: BTreeMap<usize, Rc<OffsetsLog>>,
    pub(super) groups: RefCell<HashMap<String, Slot>>,
    closed: Cell<bool>,
    /// In a cluster: whether this node leads an offsets partition (and so
    /// coordinates its groups). None: every local partition is led here.
    leads: RefCell<Option<LeadsPartition>>,
}

/// Tells whether this node leads an offsets log partition.
pub type LeadsPartition = Rc<dyn Fn(usize) -> bool>;

/// A group on this shard: its state, which only the state machine
/// changes, and what the async layer keeps for it: its armed timers and
/// the reply channels of its parked requests. Dropping a slot cancels its
/// timers.
pub(super) struct Slot {
    pub group: Group,
    timers: Timers,
    joins: HashMap<Ticket, oneshot::Sender<JoinResult>>,
    syncs: HashMap<Ticket, oneshot::Sender<SyncResult>>,
    next_ticket: u64,
}

impl Slot {
    pub fn new(group: Group) -> Self {
        Slot {
            group,
            timers: Timers::default(),
            joins: HashMap::new(),
            syncs: HashMap::new(),
            next_ticket: 0,
        }
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    fn park_join(&mut self) -> (Ticket, oneshot::Receiver<JoinResult>) {
        let ticket = self.ticket();
        let (tx, rx) = oneshot::channel();
        self.joins.insert(ticket, tx);
        (ticket, rx)
    }

    fn park_sync(&mut self) -> (Ticket, oneshot::Receiver<SyncResult>) {
        let ticket = self.ticket();
        let (tx, rx) = oneshot::channel();
        self.syncs.insert(ticket, tx);
        (ticket, rx)
    }

    fn answer_join(&mut self, ticket: Ticket, result: JoinResult) {
        if let Some(tx) = self.joins.remove(&ticket) {
            let _ = tx.send(result);
        }
    }

    /// Hands a step's answers to the parked requests they are for.
    fn answer(&mut self, fx: &mut Effects) {
        for (ticket, result) in fx.joins.drain(..) {
            self.answer_join(ticket, result);
        }
        for (ticket, result) in fx.syncs.drain(..) {
            if let Some(tx) = self.syncs.remove(&ticket) {
                let _ = tx.send(result);
            }
        }
    }
}

impl Coordinator {
    /// Opens the offsets partitions this shard owns, replays them, and
    /// starts the compaction and offset-expiry loops.
    pub async fn start(
        config: GroupConfig,
        data_dir: &Path,
        shard_id: usize,
        shard_count: usize,
        storage: &ShardStorage,
    ) -> Result<Rc<Self>, StorageError> {
        let started = std::time::Instant::now();
        let partitions = config.offsets_partitions.max(1);
        let mut logs = BTreeMap::new();
        for p in
            (0..partitions).filter(|&p| shard_for_offsets_partition(p, shard_count) == shard_id)
        {
            logs.insert(p, OffsetsLog::open(data_dir, p, &config, storage).await?);
        }
        let groups_max = config.groups_max.div_ceil(shard_count.max(1));
        let this = Rc::new(Coordinator {
            config,
            groups_max,
            partitions,
            clock: storage.clock.clone(),
            logs,
            groups: RefCell::new(HashMap::new()),
            closed: Cell::new(false),
            leads: RefCell::new(None),
        });
        let mut records = 0;
        for log in this.logs.values() {
            let loaded = log.load().await?;
            records += loaded.records;
            this.restore(loaded);
        }
        info!(
            partitions = this.logs.len(),
            groups = this.groups.borrow().len(),
            records,
            ms = started.elapsed().as_millis() as u64,
            "consumer groups loaded"
        );
        this.spawn_maintenance();
        Ok(this)
    }

    /// Rebuilds the groups of one replayed offsets partition.
    fn restore(self: &Rc<Self>, loaded: Loaded) {
        let now = self.now_ms();
        let mut groups = self.groups.borrow_mut();
        for (name, lg) in loaded.groups {
            let mut group = Group::new(name.clone(), now);
            group.offsets = lg.offsets;
            let slot = groups.entry(name).or_insert(Slot::new(group));
            if let Some(v) = lg.stored {
                self.step_in(slot, |step, slot| step.restore(&mut slot.group, v));
            }
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(super) fn log_for(&self, group_id: &str) -> Option<Rc<OffsetsLog>> {
        self.logs
            .get(&offsets_partition_for(group_id, self.partitions))
            .cloned()
    }

    /// The offsets partition of `group_id`, if this shard coordinates the
    /// group and is serving.
    pub(super) fn serves(&self, group_id: &str) -> Result<Rc<OffsetsLog>, GroupError> {
        if self.closed.get() {
            return Err(GroupError::NotCoordinator);
        }
        let partition = offsets_partition_for(group_id, self.partitions);
        if let Some(leads) = self.leads.borrow().as_ref() {
            if !leads(partition) {
                return Err(GroupError::NotCoordinator);
            }
        }
        self.log_for(group_id).ok_or(GroupError::NotCoordinator)
    }

    /// In a cluster, groups are served only for the offsets partitions
    /// this node leads.
    pub fn set_leads(&self, leads: LeadsPartition) {
        *self.leads.borrow_mut() = Some(leads);
    }

    /// The slot of `group_id`, created (an Empty group) if this shard has
    /// room for another group.
    pub(super) fn slot_or_create<'g>(
        &self,
        groups: &'g mut HashMap<String, Slot>,
        group_id: &str,
    ) -> Result<&'g mut Slot, GroupError> {
        if !groups.contains_key(group_id) {
            if groups.len() >= self.groups_max {
                warn!(group = %group_id, limit = self.groups_max, "shardlog.groups.max reached on this shard");
                return Err(GroupError::GroupsMaxReached);
            }
            let group = Group::new(group_id.to_string(), self.now_ms());
            groups.insert(group_id.to_string(), Slot::new(group));
        }
        Ok(groups.get_mut(group_id).expect("present"))
    }

    // --- Stepping the state machine ------------------------------------------

    /// Runs one step of the state machine on `slot`, now, and carries out
    /// what it asks.
    pub(super) fn step_in<T>(
        self: &Rc<Self>,
        slot: &mut Slot,
        f: impl FnOnce(&mut Step, &mut Slot) -> T,
    ) -> T {
        let mut step = Step::new(&self.config, self.now_ms());
        let out = f(&mut step, slot);
        self.carry_out(slot, step.into_effects());
        out
    }

    /// Runs one step on the group `group_id`; `None` if there is no such
    /// group.
    pub(super) fn step<T>(
        self: &Rc<Self>,
        group_id: &str,
        f: impl FnOnce(&mut Step, &mut Slot) -> T,
    ) -> Option<T> {
        let mut groups = self.groups.borrow_mut();
        let slot = groups.get_mut(group_id)?;
        Some(self.step_in(slot, f))
    }

    fn carry_out(self: &Rc<Self>, slot: &mut Slot, mut fx: Effects) {
        slot.answer(&mut fx);
        for op in fx.timers {
            match op {
                TimerOp::Arm { timer, after_ms } => {
                    let this = self.clone();
                    let (group_id, fired) = (slot.group.id.clone(), timer.clone());
                    let task = timers::after(after_ms, move || this.timer_fired(&group_id, fired));
                    slot.timers.arm(timer, task);
                }
                TimerOp::Cancel(timer) => slot.timers.cancel(&timer),
            }
        }
        for request in fx.stores {
            self.spawn_store(slot.group.id.clone(), request);
        }
    }

    fn timer_fired(self: &Rc<Self>, group_id: &str, timer: Timer) {
        if self.closed.get() {
            return;
        }
        self.step(group_id, |step, slot| {
            slot.timers.fired(&timer);
            step.timer_fired(&mut slot.group, timer);
        });
    }

    // --- Storing groups --------------------------------------------------------

    /// Makes a write the state machine asked for, and tells it (or the
    /// parked request) how it went.
    fn spawn_store(self: &Rc<Self>, group_id: String, request: StoreRequest) {
        let this = self.clone();
        timers::spawn_later(async move {
            match request {
                StoreRequest::Group => {
                    if let Err(e) = this.store_group(&group_id, None).await {
                        warn!(group = %group_id, "storing the group failed: {e}");
                    }
                }
                StoreRequest::Assignment {
                    generation,
                    assignments,
                } => {
                    let stored = this
                        .store_group(&group_id, Some((generation, &assignments)))
                        .await;
                    if let Err(e) = &stored {
                        warn!(group = %group_id, generation, "storing the group's assignment failed: {e}");
                    }
                    let outcome = stored
                        .as_ref()
                        .map(drop)
                        .map_err(GroupError::storing_group);
                    this.step(&group_id, |step, slot| {
                        step.assignment_stored(&mut slot.group, generation, &assignments, outcome)
                    });
                    // The write stays pending until memory reflects it.
                    drop(stored);
                }
                StoreRequest::Replacement { ticket, joined } => {
                    let result = match this.store_group(&group_id, None).await {
                        Ok(_) => Ok(joined),
                        Err(e) => Err(JoinError::new(
                            GroupError::storing_group(&e),
                            &joined.member_id,
                        )),
                    };
                    if let Some(slot) = this.groups.borrow_mut().get_mut(&group_id) {
                        slot.answer_join(ticket, result);
                    }
                }
            }
        })
        .detach();
    }

    /// Writes the group's record as it is when the write lock is taken
    /// (with `assignment` for its members if the generation still
    /// matches) and waits until it is durable.
    async fn store_group(
        self: &Rc<Self>,
        group_id: &str,
        assignment: Option<(i32, &HashMap<String, Bytes>)>,
    ) -> Result<Option<Pending>, StoreError> {
        let log = self.log_for(group_id).ok_or(StoreError::Closed)?;
        let limit = self.config.group_metadata_max_bytes + (32 << 10);
        log.append(|| match self.groups.borrow_mut().get_mut(group_id) {
            Some(slot) => persistence::group_record(&mut slot.group, assignment, limit),
            None => Ok(Vec::new()),
        })
        .await
    }

    // --- JoinGroup, SyncGroup, Heartbeat, LeaveGroup -----------------------------

    pub async fn join(self: &Rc<Self>, p: JoinParams) -> JoinResult {
        let member_id = p.member_id.clone();
        let rx = self
            .join_begin(p)
            .map_err(|e| JoinError::new(e, &member_id))?;
        rx.await
            .unwrap_or_else(|_| Err(JoinError::new(GroupError::RebalanceInProgress, &member_id)))
    }

    fn join_begin(
        self: &Rc<Self>,
        p: JoinParams,
    ) -> Result<oneshot::Receiver<JoinResult>, GroupError> {
        self.serves(&p.group_id)?;
        membership::check_join_request(&self.config, &p)?;
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(&p.group_id) {
            membership::check_join_creates(&p)?;
        }
        let slot = self.slot_or_create(&mut groups, &p.group_id)?;
        let fresh = uuid::Uuid::new_v4().to_string();
        Ok(self.step_in(slot, |step, slot| {
            let (ticket, rx) = slot.park_join();
            step.join(&mut slot.group, p, ticket, &fresh);
            rx
        }))
    }

    pub async fn sync(self: &Rc<Self>, p: SyncParams) -> SyncResult {
        let rx = self.sync_begin(p)?;
        rx.await.unwrap_or(Err(GroupError::RebalanceInProgress))
    }

    fn sync_begin(
        self: &Rc<Self>,
        p: SyncParams,
    ) -> Result<oneshot::Receiver<SyncResult>, GroupError> {
        self.serves(&p.group_id)?;
        if p.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let group_id = p.group_id.clone();
        self.step(&group_id, |step, slot| {
            let (ticket, rx) = slot.park_sync();
            step.sync(&mut slot.group, p, ticket);
            rx
        })
        .ok_or(GroupError::UnknownMember)
    }

    pub fn heartbeat(
        self: &Rc<Self>,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        self.serves(group_id)?;
        self.step(group_id, |step, slot| {
            step.heartbeat(&mut slot.group, generation_id, member_id, instance_id)
        })
        .unwrap_or(Err(GroupError::UnknownMember))
    }

    /// LeaveGroup: (member id, instance id) per leaving member; returns
    /// each member's outcome, or the request's error.
    pub fn leave(
        self: &Rc<Self>,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        self.serves(group_id)?;
        Ok(self
            .step(group_id, |step, slot| step.leave(&mut slot.group, leaving))
            .unwrap_or_else(|| vec![Err(GroupError::UnknownMember); leaving.len()]))
    }

    // --- Describe, list, delete ------------------------------------------------

    pub fn describe(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        self.serves(group_id)?;
        Ok(match self.groups.borrow().get(group_id) {
            Some(slot) => slot.group.describe(),
            None => GroupDescription::unknown(group_id),
        })
    }

    pub fn list(&self) -> Vec<ListedGroup> {
        let mut out: Vec<ListedGroup> = self
            .groups
            .borrow()
            .values()
            .filter(|s| s.group.state != GroupState::Dead)
            .map(|s| s.group.listed())
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// Every live group this node coordinates, for the metrics endpoint:
    /// its state, member count and committed offsets, in group order.
    pub fn views(&self) -> Vec<GroupView> {
        let groups = self.groups.borrow();
        let mut out: Vec<GroupView> = groups
            .values()
            .filter(|s| s.group.state != GroupState::Dead && self.serves(&s.group.id).is_ok())
            .map(|s| {
                let g = &s.group;
                let mut offsets: Vec<(String, i32, i64)> = g
                    .offsets
                    .iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.value.offset))
                    .collect();
                offsets.sort();
                GroupView {
                    group_id: g.id.clone(),
                    state: g.state.name(),
                    members: g.members.len(),
                    offsets,
                }
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DeleteGroups for one group: only an empty group can go; its
    /// record and offsets get tombstones.
    pub async fn delete(self: &Rc<Self>, group_id: &str) -> Result<(), GroupError> {
        let log = self.serves(group_id)?;
        let kvs = self
            .step(group_id, |step, slot| {
                step.begin_delete(&mut slot.group)?;
                let mut kvs = persistence::offset_tombstones(group_id, slot.group.offsets.keys());
                kvs.insert(0, persistence::group_tombstone(group_id));
                Ok(kvs)
            })
            .unwrap_or(Err(GroupError::GroupNotFound))?;
        let stored = log.append(move || Ok(kvs)).await;
        let mut groups = self.groups.borrow_mut();
        match stored {
            Ok(pending) => {
                if groups
                    .get(group_id)
                    .is_some_and(|s| s.group.state == GroupState::Dead)
                {
                    groups.remove(group_id);
                }
                drop(pending);
                info!(group = %group_id, "group deleted");
                Ok(())
            }
            Err(e) => {
                warn!(group = %group_id, "deleting the group failed: {e}");
                if let Some(slot) = groups.get_mut(group_id) {
                    self.step_in(slot, |step, slot| step.delete_failed(&mut slot.group));
                }
                Err(GroupError::storing_group(&e))
            }
        }
    }

    // --- Maintenance -------------------------------------------------------------

    fn spawn_maintenance(self: &Rc<Self>) {
        self.every_while_open(
            self.config.offsets_compaction_interval_ms,
            |this| async move { this.compact_due().await },
        );
        self.every_while_open(
            self.config.offsets_retention_check_interval_ms,
            |this| async move { this.expire_offsets().await },
        );
    }

    /// Runs `pass` every `interval_ms` until the coordinator closes.
    fn every_while_open<Fut>(
        self: &Rc<Self>,
        interval_ms: u64,
        pass: impl Fn(Rc<Self>) -> Fut + 'static,
    ) where
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let this = self.clone();
        timers::every(Duration::from_millis(interval_ms), move || {
            let this = this.clone();
            // The pass is a future that has not started: it runs only if
            // the coordinator is still open when the interval ends.
            let run = pass(this.clone());
            async move {
                if this.closed.get() {
                    return false;
                }
                run.await;
                true
            }
        });
    }

    /// Compacts the offsets partitions whose appends since their last
    /// compaction outgrew shardlog.offsets.compaction.min.bytes and their
    /// live state.
    async fn compact_due(&self) {
        for log in self.logs.values() {
            if !log.compaction_due(self.config.offsets_compaction_min_bytes) {
                continue;
            }
            if let Err(e) = self.compact(log).await {
                warn!(partition = log.partition, "compacting the offsets log: {e}");
            }
        }
    }

    /// Copies the live state of one offsets partition to its end and drops
    /// everything before the copy. Returns whether it ran (it does not
    /// while writes are pending).
    async fn compact(&self, log: &OffsetsLog) -> Result<bool, StoreError> {
        log.compact(|| {
            let groups = self.groups.borrow();
            let of_partition = groups
                .values()
                .map(|s| &s.group)
                .filter(|g| offsets_partition_for(&g.id, self.partitions) == log.partition);
            persistence::live_records(of_partition)
        })
        .await
    }

    /// Compacts every offsets partition of this shard now.
    pub async fn compact_all(self: &Rc<Self>) -> Result<usize, StoreError> {
        let mut n = 0;
        for log in self.logs.values() {
            if self.compact(log).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    // --- Shutdown ------------------------------------------------------------------

    /// Stops serving: waiting JoinGroup and SyncGroup requests are answered
    /// NOT_COORDINATOR so that connections can drain.
    pub fn begin_shutdown(&self) {
        self.closed.set(true);
        let now = self.now_ms();
        for slot in self.groups.borrow_mut().values_mut() {
            let mut step = Step::new(&self.config, now);
            step.shutdown(&mut slot.group);
            // Shutting down only answers parked requests: no timer is armed
            // and nothing is stored, so no task outlives the coordinator.
            slot.answer(&mut step.into_effects());
        }
    }

    /// Closes the offsets logs cleanly.
    pub async fn close(&self) {
        self.begin_shutdown();
        for log in self.logs.values() {
            if let Err(e) = log.close().await {
                warn!(partition = log.partition, "closing the offsets log: {e}");
            }
        }
    }

    /// Groups held by this shard (for tests and the log).
    pub fn group_count(&self) -> usize {
        self.groups.borrow().len()
    }

    /// The offsets partitions this shard owns.
    pub fn offsets_partitions(&self) -> Vec<usize> {
        self.logs.keys().copied().collect()
    }

    /// The log start and end offsets of an offsets partition of this shard.
    pub fn offsets_log_bounds(&self, partition: usize) -> Option<(i64, i64)> {
        self.logs.get(&partition).map(|l| l.bounds())
    }

    /// Each offsets partition of this shard with its log's size in bytes
    /// and the storage failure that keeps it from taking writes, if any
    /// (DescribeLogDirs: they are partition logs in the data directory).
    pub fn offsets_logs_usage(&self) -> Vec<(usize, u64, Option<StorageError>)> {
        self.logs
            .iter()
            .map(|(&p, log)| (p, log.size_bytes(), log.storage_error()))
            .collect()
    }
}
