//! A partition's part in replication, around the sans-IO rules of
//! [`crate::replication`]: as the leader of followers it tracks their log
//! ends from their fetches ([`Leader`]), bounds the high watermark by the
//! ISR's smallest log end and answers acks=all once the ISR has the batch;
//! as a follower it appends its leader's batches byte for byte and takes
//! its high watermark from the leader's.
//!
//! The role follows the metadata image ([`Partition::take_role`]); the
//! fetching itself and the truncation before it are the shard's
//! ([`crate::replication::fetcher`]).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use super::{Partition, PartitionError, END_FILES};
use crate::replication::election::PartitionState;
use crate::replication::follower::Truncation;
use crate::replication::leader::{AcksRefused, AlterIsr, Leader, LeaderConfig};
use crate::replication::NodeId;
use crate::storage::log::ReadLimit;
use crate::storage::{ShardStorage, StorageError};

/// How often a waiting acks=all looks whether its replica still leads.
const STEP_DOWN_CHECK: Duration = Duration::from_millis(50);

/// What a partition replica does.
#[derive(Debug)]
pub enum Role {
    /// The only replica (a single node, or one replica in a cluster): the
    /// log's own durability policy sets the high watermark.
    Sole,
    /// Leads followers.
    Leader(Box<Leader>),
    /// Copies from the leader (or waits for one).
    Follower,
}

/// What the shard does after a role change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Nothing new.
    Same,
    /// It leads now (or in a new epoch).
    Leads,
    /// It follows `leader` (-1: none yet) in `epoch` now: truncate, then
    /// fetch.
    Follows { leader: NodeId, epoch: i32 },
}

impl Partition {
    /// Takes the role the metadata gives replica `node` of the partition:
    /// leader (in the state's epoch; with followers when it has more than
    /// one replica), or follower. The ISR the controller committed reaches
    /// a leader of the same epoch here.
    pub fn take_role(
        &self,
        node: NodeId,
        state: &PartitionState,
        replica_lag_max_ms: u64,
        now_ms: u64,
    ) -> RoleChange {
        let end = self.log.offsets().log_end_offset;
        let config = LeaderConfig {
            min_isr: self.topic.borrow().min_insync_replicas.max(1) as usize,
            replica_lag_max_ms,
            alter_retry_ms: crate::replication::fetcher::ALTER_RETRY_MS,
        };
        let mut role = self.role.borrow_mut();
        if state.leader != node {
            if !matches!(*role, Role::Follower) {
                self.stand_by_locked(&mut role);
            }
            self.leader_epoch.set(state.leader_epoch);
            return RoleChange::Follows {
                leader: state.leader,
                epoch: state.leader_epoch,
            };
        }
        let new_epoch = state.leader_epoch > self.leader_epoch.get()
            || !matches!(*role, Role::Leader(_) | Role::Sole);
        drop(role);
        self.lead_in(state.leader_epoch);
        let mut role = self.role.borrow_mut();
        if state.replicas.len() <= 1 {
            *role = Role::Sole;
            self.log.set_high_watermark_cap(None);
            return if new_epoch {
                RoleChange::Leads
            } else {
                RoleChange::Same
            };
        }
        match &mut *role {
            Role::Leader(l) if l.leader_epoch == state.leader_epoch => {
                l.config = config;
                l.on_isr_committed(&state.isr, state.partition_epoch, end);
                let hw = l.high_watermark();
                drop(role);
                self.log.set_high_watermark_cap(Some(hw));
                RoleChange::Same
            }
            _ => {
                let hw = self.log.offsets().high_watermark;
                let mut leader = Leader::new(
                    node,
                    state.leader_epoch,
                    state.partition_epoch,
                    &state.replicas,
                    &state.isr,
                    end,
                    hw,
                    config,
                    now_ms,
                );
                // Alone in its ISR, everything it has is committed.
                leader.update_high_watermark(end);
                let hw = leader.high_watermark();
                *role = Role::Leader(Box::new(leader));
                drop(role);
                self.log.set_high_watermark_cap(Some(hw));
                RoleChange::Leads
            }
        }
    }

    /// The racks of the replicas consumers may be sent to (KIP-392); empty
    /// turns the selection off.
    pub fn set_read_racks(&self, racks: Vec<(NodeId, String)>) {
        *self.read_racks.borrow_mut() = racks;
    }

    /// Kafka's RackAwareReplicaSelector, on a leader, for a consumer in
    /// `client_rack` fetching from `offset`: a follower in that rack
    /// (the one furthest along) if it is in the ISR and has `offset`
    /// (its log end is past it); None when the leader is in that rack
    /// or no such follower exists (the consumer reads here).
    pub fn preferred_read_replica(&self, client_rack: &str, offset: i64) -> Option<NodeId> {
        if client_rack.is_empty() {
            return None;
        }
        let racks = self.read_racks.borrow();
        if racks.is_empty() {
            return None;
        }
        let role = self.role.borrow();
        let Role::Leader(l) = &*role else {
            return None;
        };
        let same_rack = |n: NodeId| racks.iter().any(|(r, rack)| *r == n && rack == client_rack);
        if same_rack(l.node) {
            return None;
        }
        let start = self.log.offsets().log_start_offset;
        l.isr()
            .iter()
            .copied()
            .filter(|&n| n != l.node && same_rack(n))
            .filter_map(|n| l.follower(n).map(|f| (f.log_end, n)))
            .filter(|&(end, _)| end >= offset && offset >= start)
            .max()
            .map(|(_, n)| n)
    }

    /// The latest leader epoch in the log (none for an empty one).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.borrow().latest().map(|e| e.epoch)
    }

    /// Where a follower cuts its log, given the leader's answer to
    /// OffsetForLeaderEpoch for the latest local epoch.
    pub fn truncation(&self, leader_epoch: i32, leader_end: i64) -> Truncation {
        let end = self.log.offsets().log_end_offset;
        crate::replication::follower::truncation(
            &self.epochs.borrow(),
            end,
            leader_epoch,
            leader_end,
        )
    }

    /// Takes no produce until the metadata says what it is (a cluster
    /// node at start), with the high watermark it had at its last clean
    /// close (Kafka's checkpoint) if its log still ends where it did then,
    /// else at its log start (learnt again from the leader, or as leader
    /// from the ISR's log ends).
    pub fn stand_by(&self) {
        let mut role = self.role.borrow_mut();
        *role = Role::Follower;
        // The high watermark saved at the last clean close, when the log
        // still ends there; else nothing past the log start is vouched for.
        let start = self.log.offsets().log_start_offset;
        let known = self
            .saved_high_watermark
            .take()
            .map_or(start, |hw| hw.max(start));
        self.log.restart_high_watermark(known);
    }

    fn stand_by_locked(&self, role: &mut Role) {
        let hw = self.log.offsets().high_watermark;
        self.log.set_high_watermark_cap(Some(hw));
        *role = Role::Follower;
    }

    /// Drops the epochs that start at `offset` or later from the epoch
    /// cache (a follower's cut that removes no record).
    pub fn forget_epochs_from(&self, offset: i64) {
        self.epochs.borrow_mut().truncate_from_end(offset);
    }

    /// Whether this replica follows (it takes no produce).
    pub fn is_follower(&self) -> bool {
        matches!(*self.role.borrow(), Role::Follower)
    }

    /// The ISR as this leader counts it (None unless it leads followers).
    pub fn in_sync(&self) -> Option<Vec<NodeId>> {
        match &*self.role.borrow() {
            Role::Leader(l) => Some(l.isr().iter().copied().collect()),
            _ => None,
        }
    }

    /// acks=all may be appended: the ISR is at least min.insync.replicas.
    pub(super) fn check_acks_all(&self) -> Result<(), PartitionError> {
        let required = self.topic.borrow().min_insync_replicas;
        match &*self.role.borrow() {
            Role::Sole if required > 1 => Err(PartitionError::NotEnoughReplicas {
                required,
                in_sync: 1,
            }),
            Role::Sole => Ok(()),
            Role::Follower => Err(PartitionError::NotLeader),
            Role::Leader(l) => l
                .check_acks_all()
                .map_err(|_| PartitionError::NotEnoughReplicas {
                    required,
                    in_sync: l.isr().len() as i32,
                }),
        }
    }

    /// A leader's log grew: with no follower in its ISR the high
    /// watermark may follow it at once.
    pub(super) fn appended_as_leader(&self) {
        if let Role::Leader(l) = &mut *self.role.borrow_mut() {
            let end = self.log.offsets().log_end_offset;
            if l.update_high_watermark(end) {
                self.log.set_high_watermark_cap(Some(l.high_watermark()));
            }
        }
    }

    /// acks=all, once the batch ending at `last_offset` is durable here:
    /// waits (at most `timeout`) until the ISR has it, then answers as
    /// Kafka does when the ISR shrank below min.insync.replicas meanwhile.
    pub(super) async fn wait_replicated(
        &self,
        last_offset: i64,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        match &*self.role.borrow() {
            Role::Sole => return Ok(()),
            // It stopped leading while the batch became durable: the new
            // leader may not have it (Kafka answers such a request
            // NOT_LEADER_OR_FOLLOWER too).
            Role::Follower => return Err(PartitionError::NotLeader),
            Role::Leader(_) => {}
        }
        let replicated = async { Ok(self.log.wait_for_data_beyond(last_offset).await) };
        let expired = async {
            glommio::timer::sleep(timeout).await;
            Err(PartitionError::TimedOut)
        };
        // Kafka answers a waiting acks=all as soon as the replica stops
        // leading; here a look every STEP_DOWN_CHECK.
        let stepped_down = async {
            loop {
                glommio::timer::sleep(STEP_DOWN_CHECK).await;
                if !matches!(*self.role.borrow(), Role::Leader(_)) {
                    return Err(PartitionError::NotLeader);
                }
            }
        };
        let waited = futures_lite::future::or(replicated, expired);
        if let Err(e) = futures_lite::future::or(waited, stepped_down).await? {
            // The log closed under it: a follower cutting its log.
            if !matches!(*self.role.borrow(), Role::Leader(_)) {
                return Err(PartitionError::NotLeader);
            }
            return Err(e.into());
        }
        let required = self.topic.borrow().min_insync_replicas;
        match &*self.role.borrow() {
            Role::Leader(l) => match l.acks_all_done(last_offset + 1) {
                Some(Err(AcksRefused::NotEnoughReplicasAfterAppend)) => {
                    Err(PartitionError::NotEnoughReplicasAfterAppend {
                        required,
                        in_sync: l.isr().len() as i32,
                    })
                }
                _ => Ok(()),
            },
            // Leadership moved while waiting: not known to be replicated.
            _ => Err(PartitionError::NotLeader),
        }
    }

    /// A follower `node` fetched from `offset` (its log end): the leader
    /// counts it, moving the high watermark. Returns false if `node` is
    /// not a follower of this leader.
    pub fn on_replica_fetch(&self, node: NodeId, offset: i64, now_ms: u64) -> bool {
        let end = self.log.offsets().log_end_offset;
        let mut role = self.role.borrow_mut();
        let Role::Leader(l) = &mut *role else {
            return false;
        };
        if l.follower(node).is_none() {
            return false;
        }
        if l.on_fetch(node, offset, end, now_ms) {
            let hw = l.high_watermark();
            drop(role);
            self.log.set_high_watermark_cap(Some(hw));
        }
        true
    }

    /// A follower's fetch gave its log start (DeleteRecords waits for the
    /// in-sync replicas' to pass its offset).
    pub fn on_replica_log_start(&self, node: NodeId, log_start: i64) {
        if let Role::Leader(l) = &mut *self.role.borrow_mut() {
            l.on_follower_log_start(node, log_start);
        }
    }

    /// Kafka's low watermark: on a leader of several replicas the
    /// smallest log start over it and its in-sync followers, else its own.
    pub fn low_watermark(&self) -> i64 {
        let own = self.log.offsets().log_start_offset;
        match &*self.role.borrow() {
            Role::Leader(l) => l.low_watermark(own),
            _ => own,
        }
    }

    /// The ISR change this leader should propose now, if any.
    pub fn isr_change(&self, now_ms: u64) -> Option<AlterIsr> {
        match &mut *self.role.borrow_mut() {
            Role::Leader(l) => l.isr_change(now_ms),
            _ => None,
        }
    }

    /// Whole batches from `offset` up to what is written (not only what
    /// consumers may see): a follower's read.
    pub async fn replica_read(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<super::Read, PartitionError> {
        let batches = self
            .log
            .read_upto(offset, max_bytes, ReadLimit::Written)
            .await?
            .batches;
        let offsets = self.log.offsets();
        Ok(super::Read {
            batches,
            high_watermark: offsets.high_watermark,
            log_start_offset: offsets.log_start_offset,
        })
    }

    /// Resolves once something is written beyond `offset` (a follower's
    /// long poll).
    pub async fn wait_for_written_beyond(&self, offset: i64) -> Result<(), PartitionError> {
        Ok(self.log.wait_for_written_beyond(offset).await?)
    }

    /// A follower appends its leader's batches as they are, records their
    /// producers and epochs, and waits until they are written (so that
    /// the log end it reports next is on its disk), then takes the
    /// leader's high watermark.
    pub async fn append_replica(
        &self,
        batches: &[Bytes],
        leader_high_watermark: i64,
    ) -> Result<(), PartitionError> {
        let mut last = None;
        for b in batches {
            let ticket = self.log.append_replica(b).await?;
            if let Some(h) = crate::record::BatchHeader::parse(b) {
                self.producers.borrow_mut().record(&h, h.base_offset);
                if h.partition_leader_epoch >= 0 {
                    self.epochs
                        .borrow_mut()
                        .assign(h.partition_leader_epoch, h.base_offset);
                }
            }
            last = Some(ticket);
        }
        if let Some(t) = last {
            self.log.wait_appended(&t).await?;
        }
        let end = self.log.offsets().log_end_offset;
        self.log
            .set_high_watermark_cap(Some(leader_high_watermark.min(end)));
        Ok(())
    }

    /// Makes a closed partition's log start afresh, empty, at `offset`
    /// (Kafka's truncateFullyAndStartAt: a follower below its leader's log
    /// start); the producer snapshot is forgotten.
    pub async fn start_closed_at(dir: &Path, offset: i64) -> Result<(), StorageError> {
        crate::storage::log::truncate::start_files_at(dir, offset, END_FILES).await
    }

    /// A follower's log start follows its leader's (DeleteRecords and
    /// retention there), as far as its own high watermark; returns the
    /// new start.
    pub async fn follow_log_start(&self, leader_log_start: i64) -> Result<i64, PartitionError> {
        let offsets = self.log.offsets();
        let to = leader_log_start.min(offsets.high_watermark);
        if to <= offsets.log_start_offset {
            return Ok(offsets.log_start_offset);
        }
        Ok(self.log.delete_records_before(to).await?)
    }

    /// Cuts a closed partition's files at `offset` as
    /// [`Partition::truncate_to`] does (the producer snapshot is
    /// forgotten), for a partition the shard has closed and will open
    /// again. Returns whether anything was cut.
    pub async fn truncate_closed(
        dir: &Path,
        offset: i64,
        storage: &ShardStorage,
    ) -> Result<bool, StorageError> {
        crate::storage::log::truncate::truncate_files(
            dir,
            offset,
            END_FILES,
            storage.read_chunk_bytes(),
            None,
        )
        .await
    }
}
