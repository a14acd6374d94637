//! The membership state machine of the classic group protocol, one group
//! at a time: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, and the
//! deadlines between them.
//!
//! Nothing here spawns a task, sleeps, reads a clock or does I/O. A
//! [`Step`] is given the time it happens at; it changes the group's state
//! and collects [`Effects`]: answers to parked requests, timers to arm or
//! cancel, records to store. The async layer (`coordinator.rs`) carries
//! them out and calls back in when a timer fires or a record is stored, so
//! a test can drive a group through its deadlines by stepping time by hand.
//!
//! A request that must wait (JoinGroup for the rebalance, SyncGroup for the
//! leader's assignment) is parked under a [`Ticket`] in its member; its
//! answer comes out of a later step. Answers given at once come out of the
//! same step, so every JoinGroup and SyncGroup is answered the same way.

use std::collections::HashMap;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::error::GroupError;
use super::records::GroupValue;
use super::state::{Group, GroupState, Member, Ticket};
use super::{
    JoinError, JoinParams, JoinResult, Joined, SyncParams, SyncResult, Synced, GROUP_ID_BYTES_MAX,
};
use crate::config::GroupConfig;

/// Bytes of client id kept in generated member ids.
const CLIENT_ID_IN_MEMBER_ID_MAX: usize = 128;

/// A deadline of one group. Arming a timer replaces the one armed under the
/// same key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// A member's session: the member is removed once it has not been heard
    /// from for session.timeout.ms.
    Session(String),
    /// A member id handed out with MEMBER_ID_REQUIRED, forgotten if it is
    /// not used within the session timeout.
    PendingMember(String),
    /// The end of the join phase: the initial rebalance delay, or the
    /// rebalance timeout.
    Join,
    /// The members' SyncGroup deadline (the rebalance timeout).
    Sync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerOp {
    Arm { timer: Timer, after_ms: i64 },
    Cancel(Timer),
}

/// A write of the group's record that the async layer must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRequest {
    /// The record as it is when written (a rebalance left the group empty).
    Group,
    /// The record with the leader's assignment for `generation`. Once
    /// written (or not), [`Step::assignment_stored`] hands it out.
    Assignment {
        generation: i32,
        assignments: HashMap<String, Bytes>,
    },
    /// The record with a static member's new id. Once it is written,
    /// `ticket` gets `joined`; if it is not, the failure.
    Replacement { ticket: Ticket, joined: Joined },
}

/// What a step asks the async layer to do, each list in order.
#[derive(Debug, Default)]
pub struct Effects {
    pub joins: Vec<(Ticket, JoinResult)>,
    pub syncs: Vec<(Ticket, SyncResult)>,
    pub timers: Vec<TimerOp>,
    pub stores: Vec<StoreRequest>,
}

/// The checks of a JoinGroup that need no group, in Kafka's order.
pub fn check_join_request(config: &GroupConfig, p: &JoinParams) -> Result<(), GroupError> {
    if p.group_id.is_empty() || p.group_id.len() > GROUP_ID_BYTES_MAX {
        return Err(GroupError::InvalidGroupId);
    }
    if p.session_timeout_ms < config.min_session_timeout_ms
        || p.session_timeout_ms > config.max_session_timeout_ms
    {
        return Err(GroupError::InvalidSessionTimeout);
    }
    if p.metadata_bytes() > config.group_metadata_max_bytes {
        return Err(GroupError::GroupMetadataTooLarge);
    }
    Ok(())
}

/// Whether a JoinGroup for a group that does not exist may create it: a
/// first member names its protocols and has no member id yet.
pub fn check_join_creates(p: &JoinParams) -> Result<(), GroupError> {
    if p.protocol_type.is_empty() || p.protocols.is_empty() {
        return Err(GroupError::InconsistentProtocol);
    }
    if !p.member_id.is_empty() {
        return Err(GroupError::UnknownMember);
    }
    Ok(())
}

/// A new member's id: its client id (or group.instance.id), cut short,
/// and `fresh`, a value never used before (the coordinator's is a UUID).
fn new_member_id(prefix: &str, fresh: &str) -> String {
    let mut end = prefix.len().min(CLIENT_ID_IN_MEMBER_ID_MAX);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{fresh}", &prefix[..end])
}

/// The checks Heartbeat and OffsetCommit begin with: the group is not
/// being deleted, and no newer instance took the member's place.
fn check_live_instance(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), GroupError> {
    if group.state == GroupState::Dead {
        return Err(GroupError::GroupDeleting);
    }
    if group.is_fenced(instance_id, member_id) {
        return Err(GroupError::FencedInstance);
    }
    Ok(())
}

/// The member `member_id`, if it is one of generation `generation_id`.
fn generation_member<'g>(
    group: &'g mut Group,
    generation_id: i32,
    member_id: &str,
) -> Result<&'g mut Member, GroupError> {
    let generation = group.generation;
    let member = group
        .members
        .get_mut(member_id)
        .ok_or(GroupError::UnknownMember)?;
    if generation_id != generation {
        return Err(GroupError::IllegalGeneration);
    }
    Ok(member)
}

fn refuse(error: GroupError, member_id: &str) -> JoinResult {
    Err(JoinError::new(error, member_id))
}

/// One step of the state machine: the settings, the time it happens at,
/// and what it asks of the async layer.
pub struct Step<'a> {
    config: &'a GroupConfig,
    now_ms: i64,
    fx: Effects,
}

impl<'a> Step<'a> {
    pub fn new(config: &'a GroupConfig, now_ms: i64) -> Self {
        Step {
            config,
            now_ms,
            fx: Effects::default(),
        }
    }

    pub fn into_effects(self) -> Effects {
        self.fx
    }

    fn answer_join(&mut self, ticket: Ticket, result: JoinResult) {
        self.fx.joins.push((ticket, result));
    }

    fn answer_sync(&mut self, ticket: Ticket, result: SyncResult) {
        self.fx.syncs.push((ticket, result));
    }

    fn arm(&mut self, timer: Timer, after_ms: i64) {
        self.fx.timers.push(TimerOp::Arm { timer, after_ms });
    }

    fn cancel(&mut self, timer: Timer) {
        self.fx.timers.push(TimerOp::Cancel(timer));
    }

    // --- JoinGroup -----------------------------------------------------------

    /// A JoinGroup (its request checks passed) for an existing group; its
    /// answer goes to `ticket`, now or once the rebalance completes.
    /// `fresh` makes a new member's id unique.
    pub fn join(&mut self, group: &mut Group, p: JoinParams, ticket: Ticket, fresh: &str) {
        if let Err(error) = self.admit_join(group, &p) {
            self.answer_join(ticket, refuse(error, &p.member_id));
        } else if p.member_id.is_empty() {
            self.join_new_member(group, p, ticket, fresh);
        } else if group.pending_members.remove(&p.member_id) {
            self.cancel(Timer::PendingMember(p.member_id.clone()));
            let id = p.member_id.clone();
            self.add_member(group, id, p, ticket);
        } else if group.is_fenced(p.instance_id.as_deref(), &p.member_id) {
            self.answer_join(ticket, refuse(GroupError::FencedInstance, &p.member_id));
        } else if !group.members.contains_key(&p.member_id) {
            self.answer_join(ticket, refuse(GroupError::UnknownMember, &p.member_id));
        } else {
            self.join_known_member(group, p, ticket);
        }
    }

    /// Whether the group can take this member at all.
    fn admit_join(&self, group: &Group, p: &JoinParams) -> Result<(), GroupError> {
        if group.state == GroupState::Dead {
            return Err(GroupError::GroupDeleting);
        }
        if !group.supports(&p.protocol_type, &p.protocols) {
            return Err(GroupError::InconsistentProtocol);
        }
        let old_bytes = group
            .members
            .get(&p.member_id)
            .map_or(0, Member::metadata_bytes);
        if group.metadata_bytes() - old_bytes + p.metadata_bytes()
            > self.config.group_metadata_max_bytes
        {
            return Err(GroupError::GroupMetadataTooLarge);
        }
        Ok(())
    }

    /// A JoinGroup without a member id: a static member's new instance
    /// takes its predecessor's place; anyone else needs room in the group,
    /// and (v4+, dynamic members) must first come back with the id handed
    /// out.
    fn join_new_member(&mut self, group: &mut Group, p: JoinParams, ticket: Ticket, fresh: &str) {
        let instance = p.instance_id.clone();
        if let Some(instance) = &instance {
            if let Some(old_id) = group.static_members.get(instance).cloned() {
                let new_id = new_member_id(instance, fresh);
                return self.replace_static_member(group, instance, old_id, new_id, p, ticket);
            }
        }
        if group.members.len() + group.pending_members.len() >= self.config.max_size {
            return self.answer_join(ticket, refuse(GroupError::GroupFull, ""));
        }
        let new_id = new_member_id(instance.as_deref().unwrap_or(&p.client_id), fresh);
        if instance.is_none() && p.require_known_member_id {
            group.pending_members.insert(new_id.clone());
            self.arm(
                Timer::PendingMember(new_id.clone()),
                i64::from(p.session_timeout_ms),
            );
            return self.answer_join(ticket, refuse(GroupError::MemberIdRequired, &new_id));
        }
        self.add_member(group, new_id, p, ticket);
    }

    fn add_member(&mut self, group: &mut Group, member_id: String, p: JoinParams, ticket: Ticket) {
        if group.members.is_empty() {
            group.protocol_type = Some(p.protocol_type.clone());
        }
        if group.leader.is_none() {
            group.leader = Some(member_id.clone());
        }
        if let Some(i) = &p.instance_id {
            group.static_members.insert(i.clone(), member_id.clone());
        }
        group.members.insert(
            member_id.clone(),
            Member {
                id: member_id.clone(),
                instance_id: p.instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                session_timeout_ms: p.session_timeout_ms,
                rebalance_timeout_ms: p.rebalance_timeout_ms,
                protocols: p.protocols,
                assignment: Bytes::new(),
                join_waiter: Some(ticket),
                sync_waiter: None,
                last_heartbeat_ms: self.now_ms,
            },
        );
        if group.state == GroupState::PreparingRebalance {
            group.new_member_added = true;
        }
        self.watch_session(group, &member_id);
        self.maybe_prepare_rebalance(group, &format!("member {member_id} joined"));
        self.check_join(group);
    }

    /// A JoinGroup from a member of the group.
    fn join_known_member(&mut self, group: &mut Group, p: JoinParams, ticket: Ticket) {
        let member = group.members.get(&p.member_id).expect("known member");
        let same = member.same_protocols(&p.protocols);
        let leader = group.is_leader(&p.member_id);
        match group.state {
            GroupState::CompletingRebalance if same => {
                // A resent JoinGroup: the generation it asked for is ready.
                let members = if leader {
                    group.joined_members()
                } else {
                    Vec::new()
                };
                self.answer_join(ticket, Ok(group.joined(&p.member_id, members)));
            }
            GroupState::Stable if same && !leader => {
                self.answer_join(ticket, Ok(group.joined(&p.member_id, Vec::new())));
            }
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => self.update_member_and_rebalance(group, p, ticket),
            GroupState::Empty | GroupState::Dead => {
                self.answer_join(ticket, refuse(GroupError::UnknownMember, &p.member_id));
            }
        }
    }

    fn update_member_and_rebalance(&mut self, group: &mut Group, p: JoinParams, ticket: Ticket) {
        let member = group.members.get_mut(&p.member_id).expect("known member");
        member.protocols = p.protocols;
        member.session_timeout_ms = p.session_timeout_ms;
        member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.client_id = p.client_id;
        member.last_heartbeat_ms = self.now_ms;
        if let Some(old) = member.join_waiter.replace(ticket) {
            // The client gave up on its earlier JoinGroup and sent another.
            self.answer_join(old, refuse(GroupError::RebalanceInProgress, &p.member_id));
        }
        self.maybe_prepare_rebalance(group, &format!("member {} rejoined", p.member_id));
        self.check_join(group);
    }

    /// A static member's new instance (no member id, known instance id)
    /// takes over the old member's place: the old one is fenced. In a
    /// Stable group whose protocol does not change, it resumes the current
    /// generation and assignment without a rebalance (KIP-345), once the
    /// new member id is stored.
    fn replace_static_member(
        &mut self,
        group: &mut Group,
        instance: &str,
        old_id: String,
        new_id: String,
        p: JoinParams,
        ticket: Ticket,
    ) {
        let Some(mut member) = group.members.remove(&old_id) else {
            return self.answer_join(ticket, refuse(GroupError::UnknownMember, ""));
        };
        self.cancel(Timer::Session(old_id.clone()));
        if let Some(t) = member.join_waiter.take() {
            self.answer_join(t, refuse(GroupError::FencedInstance, &old_id));
        }
        if let Some(t) = member.sync_waiter.take() {
            self.answer_sync(t, Err(GroupError::FencedInstance));
        }
        let leader_before = group.leader.clone().unwrap_or_default();
        if group.is_leader(&old_id) {
            group.leader = Some(new_id.clone());
        }
        if group.pending_sync.remove(&old_id) {
            group.pending_sync.insert(new_id.clone());
        }
        group
            .static_members
            .insert(instance.to_string(), new_id.clone());
        member.id = new_id.clone();
        member.protocols = p.protocols;
        member.session_timeout_ms = p.session_timeout_ms;
        member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.last_heartbeat_ms = self.now_ms;
        group.members.insert(new_id.clone(), member);
        self.watch_session(group, &new_id);
        info!(group = %group.id, instance = %instance, old = %old_id, new = %new_id, "static member replaced");
        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol_name => {
                // The old leader id is returned so that a rejoining leader
                // does not redo the assignment of a stable group.
                let joined = Joined {
                    leader: leader_before,
                    ..group.joined(&new_id, Vec::new())
                };
                self.fx
                    .stores
                    .push(StoreRequest::Replacement { ticket, joined });
            }
            GroupState::Stable
            | GroupState::CompletingRebalance
            | GroupState::PreparingRebalance => {
                let m = group.members.get_mut(&new_id).expect("inserted");
                m.join_waiter = Some(ticket);
                self.maybe_prepare_rebalance(group, &format!("static member {instance} rejoined"));
                self.check_join(group);
            }
            GroupState::Empty | GroupState::Dead => {
                self.answer_join(ticket, refuse(GroupError::UnknownMember, ""));
            }
        }
    }

    // --- SyncGroup -----------------------------------------------------------

    /// A SyncGroup for an existing group; its answer goes to `ticket`, now
    /// or once the leader's assignment is stored.
    pub fn sync(&mut self, group: &mut Group, p: SyncParams, ticket: Ticket) {
        if let Err(error) = self.sync_member(group, p, ticket) {
            self.answer_sync(ticket, Err(error));
        }
    }

    fn sync_member(
        &mut self,
        group: &mut Group,
        p: SyncParams,
        ticket: Ticket,
    ) -> Result<(), GroupError> {
        if group.is_fenced(p.instance_id.as_deref(), &p.member_id) {
            return Err(GroupError::FencedInstance);
        }
        generation_member(group, p.generation_id, &p.member_id)?;
        let type_differs = p
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != group.protocol_type.as_ref());
        let name_differs = p
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != group.protocol_name.as_ref());
        if type_differs || name_differs {
            return Err(GroupError::InconsistentProtocol);
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMember),
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                self.member_synced(group, &p.member_id);
                let assignment = group.members[&p.member_id].assignment.clone();
                self.answer_sync(ticket, Ok(group.synced(assignment)));
                Ok(())
            }
            GroupState::CompletingRebalance => {
                self.member_synced(group, &p.member_id);
                let m = group.members.get_mut(&p.member_id).expect("member");
                if let Some(old) = m.sync_waiter.replace(ticket) {
                    self.answer_sync(old, Err(GroupError::RebalanceInProgress));
                }
                if group.is_leader(&p.member_id) {
                    let assignments: HashMap<String, Bytes> = p
                        .assignments
                        .into_iter()
                        .filter(|(id, _)| group.members.contains_key(id))
                        .collect();
                    let missing = group
                        .members
                        .keys()
                        .filter(|id| !assignments.contains_key(*id))
                        .count();
                    if missing > 0 {
                        warn!(group = %group.id, missing, "leader's assignment leaves members without one");
                    }
                    self.fx.stores.push(StoreRequest::Assignment {
                        generation: group.generation,
                        assignments,
                    });
                }
                Ok(())
            }
        }
    }

    /// A member sent its SyncGroup: it no longer holds the sync deadline
    /// up, and it counts as heard from.
    fn member_synced(&mut self, group: &mut Group, member_id: &str) {
        group.pending_sync.remove(member_id);
        if group.pending_sync.is_empty() {
            self.cancel(Timer::Sync);
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.last_heartbeat_ms = self.now_ms;
        }
    }

    /// The leader's assignment for `generation` was stored (or not). If the
    /// group still waits for it, every member gets its part and the group
    /// is Stable; a failure is every waiting member's answer and starts
    /// another rebalance.
    pub fn assignment_stored(
        &mut self,
        group: &mut Group,
        generation: i32,
        assignments: &HashMap<String, Bytes>,
        stored: Result<(), GroupError>,
    ) {
        if group.state != GroupState::CompletingRebalance || group.generation != generation {
            return;
        }
        match stored {
            Ok(()) => {
                let template = group.synced(Bytes::new());
                for m in group.members.values_mut() {
                    m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
                    if let Some(t) = m.sync_waiter.take() {
                        let synced = Synced {
                            assignment: m.assignment.clone(),
                            ..template.clone()
                        };
                        self.answer_sync(t, Ok(synced));
                    }
                }
                group.transition(GroupState::Stable, self.now_ms);
                info!(group = %group.id, generation, "group is stable");
            }
            Err(error) => {
                for m in group.members.values_mut() {
                    m.assignment = Bytes::new();
                    if let Some(t) = m.sync_waiter.take() {
                        self.answer_sync(t, Err(error));
                    }
                }
                self.prepare_rebalance(group, "storing the assignment failed");
                self.check_join(group);
            }
        }
    }

    // --- Heartbeat, LeaveGroup, OffsetCommit ---------------------------------

    pub fn heartbeat(
        &mut self,
        group: &mut Group,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        check_live_instance(group, member_id, instance_id)?;
        let state = group.state;
        let member = generation_member(group, generation_id, member_id)?;
        match state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMember),
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.last_heartbeat_ms = self.now_ms;
                Ok(())
            }
            GroupState::PreparingRebalance => {
                member.last_heartbeat_ms = self.now_ms;
                Err(GroupError::RebalanceInProgress)
            }
        }
    }

    /// LeaveGroup: (member id, instance id) per leaving member; each one's
    /// outcome, in order.
    pub fn leave(
        &mut self,
        group: &mut Group,
        leaving: &[(String, Option<String>)],
    ) -> Vec<Result<(), GroupError>> {
        let mut out = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            let outcome = match instance_id {
                Some(instance) => match group.static_members.get(instance).cloned() {
                    None => Err(GroupError::UnknownMember),
                    Some(owner) if !member_id.is_empty() && owner != *member_id => {
                        Err(GroupError::FencedInstance)
                    }
                    Some(owner) => {
                        info!(group = %group.id, member = %owner, instance = %instance, "static member left");
                        self.remove_member(group, &owner);
                        Ok(())
                    }
                },
                None if group.pending_members.remove(member_id) => {
                    self.cancel(Timer::PendingMember(member_id.clone()));
                    self.check_join(group);
                    Ok(())
                }
                None if group.members.contains_key(member_id) => {
                    info!(group = %group.id, member = %member_id, "member left");
                    self.remove_member(group, member_id);
                    Ok(())
                }
                None => Err(GroupError::UnknownMember),
            };
            out.push(outcome);
        }
        out
    }

    /// Kafka's checks of an OffsetCommit against an existing group; a
    /// member's commit counts as hearing from it.
    pub fn check_commit(
        &mut self,
        group: &mut Group,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        check_live_instance(group, member_id, instance_id)?;
        if generation_id < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        let state = group.state;
        let member = generation_member(group, generation_id, member_id)?;
        match state {
            GroupState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Empty
            | GroupState::PreparingRebalance
            | GroupState::Stable
            | GroupState::Dead => {
                member.last_heartbeat_ms = self.now_ms;
                Ok(())
            }
        }
    }

    // --- DeleteGroups ----------------------------------------------------------

    /// DeleteGroups: only a group without members can go; it is Dead while
    /// its tombstones are written.
    pub fn begin_delete(&mut self, group: &mut Group) -> Result<(), GroupError> {
        match group.state {
            GroupState::Dead => return Err(GroupError::GroupNotFound),
            GroupState::Empty if group.members.is_empty() => {}
            GroupState::Empty
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => return Err(GroupError::NonEmptyGroup),
        }
        group.transition(GroupState::Dead, self.now_ms);
        Ok(())
    }

    /// The tombstones of a deletion could not be written: the group stays.
    pub fn delete_failed(&mut self, group: &mut Group) {
        group.transition(GroupState::Empty, self.now_ms);
    }

    // --- Timers, loading, shutdown ---------------------------------------------

    /// `timer` fired.
    pub fn timer_fired(&mut self, group: &mut Group, timer: Timer) {
        match timer {
            Timer::Session(id) => self.watch_session(group, &id),
            Timer::PendingMember(id) => {
                if group.pending_members.remove(&id) {
                    debug!(group = %group.id, member = %id, "pending member expired");
                    self.check_join(group);
                }
            }
            Timer::Join => self.join_deadline(group),
            Timer::Sync => self.sync_deadline(group),
        }
    }

    /// The end of the join phase. The first rebalance of an empty group
    /// waits the initial delay again (within the rebalance timeout) while
    /// new members keep coming; otherwise the generation completes with
    /// whoever rejoined.
    fn join_deadline(&mut self, group: &mut Group) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        match group.initial_delay {
            Some(remaining) if group.new_member_added && remaining > 0 => {
                group.new_member_added = false;
                let delay = i64::from(self.config.initial_rebalance_delay_ms).min(remaining);
                group.initial_delay = Some(remaining - delay);
                self.arm(Timer::Join, delay);
            }
            Some(_) => {
                group.initial_delay = None;
                self.complete_join(group);
            }
            None => self.complete_join(group),
        }
    }

    /// Members that have not sent SyncGroup by the rebalance timeout are
    /// removed.
    fn sync_deadline(&mut self, group: &mut Group) {
        if !matches!(
            group.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || group.pending_sync.is_empty()
        {
            return;
        }
        let late: Vec<String> = group.pending_sync.iter().cloned().collect();
        info!(group = %group.id, members = ?late, "members did not sync in time");
        for m in late {
            self.remove_member(group, &m);
        }
    }

    /// Arms a member's session timer for the time its session has left,
    /// or removes the member if none is left. A member waiting in JoinGroup
    /// or for its SyncGroup is kept (the rebalance and sync timeouts bound
    /// those waits), as in Kafka.
    fn watch_session(&mut self, group: &mut Group, member_id: &str) {
        let Some(m) = group.members.get(member_id) else {
            return;
        };
        let session = i64::from(m.session_timeout_ms.max(1));
        let left = if m.is_awaiting_join() || group.pending_sync.contains(member_id) {
            session
        } else {
            m.last_heartbeat_ms + session - self.now_ms
        };
        if left > 0 {
            return self.arm(Timer::Session(member_id.to_string()), left);
        }
        info!(group = %group.id, member = %member_id, session_ms = session, "session expired");
        self.remove_member(group, member_id);
    }

    /// A group as its last stored record describes it: Stable with its
    /// members and their assignments (they continue heartbeating in the
    /// same generation, their sessions starting now), or Empty.
    pub fn restore(&mut self, group: &mut Group, v: GroupValue) {
        group.generation = v.generation;
        group.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
        group.protocol_name = v.protocol.clone();
        group.leader = v.leader.clone();
        group.state_since_ms = v.state_timestamp_ms;
        for sm in &v.members {
            let protocols = match &v.protocol {
                Some(p) => vec![(p.clone(), sm.subscription.clone())],
                None => Vec::new(),
            };
            if let Some(i) = &sm.instance_id {
                group.static_members.insert(i.clone(), sm.member_id.clone());
            }
            group.members.insert(
                sm.member_id.clone(),
                Member {
                    id: sm.member_id.clone(),
                    instance_id: sm.instance_id.clone(),
                    client_id: sm.client_id.clone(),
                    client_host: sm.client_host.clone(),
                    session_timeout_ms: sm.session_timeout_ms,
                    rebalance_timeout_ms: sm.rebalance_timeout_ms,
                    protocols,
                    assignment: sm.assignment.clone(),
                    join_waiter: None,
                    sync_waiter: None,
                    last_heartbeat_ms: self.now_ms,
                },
            );
        }
        group.state = if group.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        if group
            .leader
            .as_ref()
            .is_some_and(|l| !group.members.contains_key(l))
        {
            group.leader = group.members.keys().next().cloned();
        }
        group.refresh_subscribed_topics();
        group.stored = Some(v);
        let ids: Vec<String> = group.members.keys().cloned().collect();
        for id in ids {
            self.watch_session(group, &id);
        }
    }

    /// The coordinator stops serving: parked requests are answered
    /// NOT_COORDINATOR so that connections can drain.
    pub fn shutdown(&mut self, group: &mut Group) {
        for m in group.members.values_mut() {
            if let Some(t) = m.join_waiter.take() {
                self.answer_join(t, refuse(GroupError::NotCoordinator, &m.id));
            }
            if let Some(t) = m.sync_waiter.take() {
                self.answer_sync(t, Err(GroupError::NotCoordinator));
            }
        }
    }

    // --- Transitions -----------------------------------------------------------

    /// Starts a rebalance: members awaiting an assignment are told to
    /// rejoin; the join phase waits for every member (bounded by the
    /// rebalance timeout, or the initial delay for an empty group).
    fn prepare_rebalance(&mut self, group: &mut Group, reason: &str) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(t) = m.sync_waiter.take() {
                    self.answer_sync(t, Err(GroupError::RebalanceInProgress));
                }
            }
        }
        group.pending_sync.clear();
        self.cancel(Timer::Sync);
        let initial = group.state == GroupState::Empty;
        group.transition(GroupState::PreparingRebalance, self.now_ms);
        group.new_member_added = false;
        info!(group = %group.id, generation = group.generation, "preparing to rebalance: {reason}");
        if initial {
            let delay = i64::from(self.config.initial_rebalance_delay_ms);
            group.initial_delay = Some((group.rebalance_timeout_ms() - delay).max(0));
            self.arm(Timer::Join, delay);
        } else {
            group.initial_delay = None;
            let timeout = group.rebalance_timeout_ms();
            self.arm(Timer::Join, timeout);
        }
    }

    fn maybe_prepare_rebalance(&mut self, group: &mut Group, reason: &str) {
        if matches!(
            group.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(group, reason);
        }
    }

    /// Completes the join phase now if every member has rejoined.
    fn check_join(&mut self, group: &mut Group) {
        if group.state == GroupState::PreparingRebalance
            && group.initial_delay.is_none()
            && group.all_joined()
        {
            self.complete_join(group);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are
    /// removed, the next generation starts, and every waiting JoinGroup is
    /// answered (the leader with the members and their metadata).
    fn complete_join(&mut self, group: &mut Group) {
        self.cancel(Timer::Join);
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            group.members.remove(&id);
            info!(group = %group.id, member = %id, "member did not rejoin in time; removed");
            self.cancel(Timer::Session(id));
        }
        if !group.members.is_empty() {
            let leader_rejoined = group
                .leader
                .as_ref()
                .and_then(|l| group.members.get(l))
                .is_some_and(Member::is_awaiting_join);
            if !leader_rejoined {
                match group.members.values().find(|m| m.is_awaiting_join()) {
                    Some(m) => group.leader = Some(m.id.clone()),
                    None => {
                        // Only static members that have not rejoined yet:
                        // give them another rebalance timeout; their
                        // sessions remove them if they are gone.
                        let timeout = group.rebalance_timeout_ms();
                        return self.arm(Timer::Join, timeout);
                    }
                }
            }
        }
        group.generation += 1;
        group.pending_sync.clear();
        self.cancel(Timer::Sync);
        group.initial_delay = None;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader = None;
            group.subscribed_topics = None;
            group.transition(GroupState::Empty, self.now_ms);
            info!(group = %group.id, generation = group.generation, "group is empty");
            self.fx.stores.push(StoreRequest::Group);
            return;
        }
        group.protocol_name = group.select_protocol();
        group.refresh_subscribed_topics();
        group.transition(GroupState::CompletingRebalance, self.now_ms);
        let listed = group.joined_members();
        let template = group.joined("", Vec::new());
        info!(
            group = %group.id,
            generation = template.generation_id,
            members = group.members.len(),
            protocol = %template.protocol_name.as_deref().unwrap_or_default(),
            leader = %template.leader,
            "rebalance: members joined"
        );
        for m in group.members.values_mut() {
            if let Some(t) = m.join_waiter.take() {
                let joined = Joined {
                    member_id: m.id.clone(),
                    members: if m.id == template.leader {
                        listed.clone()
                    } else {
                        Vec::new()
                    },
                    ..template.clone()
                };
                self.answer_join(t, Ok(joined));
            }
            m.last_heartbeat_ms = self.now_ms;
        }
        group.pending_sync = group.members.keys().cloned().collect();
        let timeout = group.rebalance_timeout_ms();
        self.arm(Timer::Sync, timeout);
    }

    /// Removes a member (it left, or its session or a rebalance deadline
    /// expired) and rebalances the rest.
    fn remove_member(&mut self, group: &mut Group, member_id: &str) {
        let Some(mut m) = group.members.remove(member_id) else {
            return;
        };
        self.cancel(Timer::Session(member_id.to_string()));
        if let Some(t) = m.join_waiter.take() {
            self.answer_join(t, refuse(GroupError::UnknownMember, member_id));
        }
        if let Some(t) = m.sync_waiter.take() {
            self.answer_sync(t, Err(GroupError::UnknownMember));
        }
        if let Some(i) = &m.instance_id {
            if group.static_members.get(i).map(String::as_str) == Some(member_id) {
                group.static_members.remove(i);
            }
        }
        group.pending_sync.remove(member_id);
        if group.is_leader(member_id) {
            group.leader = group.members.keys().next().cloned();
        }
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, &format!("member {member_id} left"));
                self.check_join(group);
            }
            GroupState::PreparingRebalance => self.check_join(group),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::group::state::GroupState;

    const DELAY_MS: i64 = 3000;

    /// One group driven by hand: the async layer's bookkeeping (timers by
    /// deadline, answers by ticket, writes asked for) without tasks, sleeps
    /// or a clock.
    struct Sim {
        config: GroupConfig,
        group: Group,
        now_ms: i64,
        next_ticket: u64,
        armed: BTreeMap<Timer, i64>,
        joins: HashMap<Ticket, JoinResult>,
        syncs: HashMap<Ticket, SyncResult>,
        stores: Vec<StoreRequest>,
    }

    impl Sim {
        fn new() -> Self {
            Sim {
                config: GroupConfig {
                    initial_rebalance_delay_ms: DELAY_MS as i32,
                    ..GroupConfig::default()
                },
                group: Group::new("g".into(), 0),
                now_ms: 0,
                next_ticket: 0,
                armed: BTreeMap::new(),
                joins: HashMap::new(),
                syncs: HashMap::new(),
                stores: Vec::new(),
            }
        }

        /// Runs one step now and carries out its effects as the async
        /// layer would.
        fn step<T>(&mut self, f: impl FnOnce(&mut Step, &mut Group) -> T) -> T {
            let mut step = Step::new(&self.config, self.now_ms);
            let out = f(&mut step, &mut self.group);
            let fx = step.into_effects();
            for (t, r) in fx.joins {
                assert!(self.joins.insert(t, r).is_none(), "{t:?} answered twice");
            }
            for (t, r) in fx.syncs {
                assert!(self.syncs.insert(t, r).is_none(), "{t:?} answered twice");
            }
            for op in fx.timers {
                match op {
                    TimerOp::Arm { timer, after_ms } => {
                        self.armed.insert(timer, self.now_ms + after_ms);
                    }
                    TimerOp::Cancel(timer) => {
                        self.armed.remove(&timer);
                    }
                }
            }
            self.stores.extend(fx.stores);
            out
        }

        fn ticket(&mut self) -> Ticket {
            self.next_ticket += 1;
            Ticket(self.next_ticket)
        }

        fn join(&mut self, p: JoinParams) -> Ticket {
            let ticket = self.ticket();
            let fresh = format!("u{}", ticket.0);
            self.step(|s, g| s.join(g, p, ticket, &fresh));
            ticket
        }

        fn sync(&mut self, member_id: &str, generation_id: i32, assignments: &[String]) -> Ticket {
            let ticket = self.ticket();
            let p = SyncParams {
                group_id: "g".into(),
                generation_id,
                member_id: member_id.into(),
                instance_id: self
                    .group
                    .members
                    .get(member_id)
                    .and_then(|m| m.instance_id.clone()),
                protocol_type: None,
                protocol_name: None,
                assignments: assignments
                    .iter()
                    .map(|id| (id.clone(), Bytes::from(format!("for {id}"))))
                    .collect(),
            };
            self.step(|s, g| s.sync(g, p, ticket));
            ticket
        }

        fn heartbeat(
            &mut self,
            member_id: &str,
            instance_id: Option<&str>,
        ) -> Result<(), GroupError> {
            let generation = self.group.generation;
            self.step(|s, g| s.heartbeat(g, generation, member_id, instance_id))
        }

        /// The answer `ticket` got, if any yet.
        fn joined(&mut self, ticket: Ticket) -> Option<JoinResult> {
            self.joins.remove(&ticket)
        }

        fn synced(&mut self, ticket: Ticket) -> Option<SyncResult> {
            self.syncs.remove(&ticket)
        }

        /// Moves the clock to `to_ms`, firing every timer due by then in
        /// deadline order.
        fn advance_to(&mut self, to_ms: i64) {
            loop {
                let next = self.armed.iter().map(|(t, at)| (*at, t.clone())).min();
                let Some((at, timer)) = next.filter(|(at, _)| *at <= to_ms) else {
                    break;
                };
                self.armed.remove(&timer);
                self.now_ms = at;
                self.step(|s, g| s.timer_fired(g, timer));
            }
            self.now_ms = to_ms;
        }

        /// Completes every write asked for, successfully.
        fn store_all(&mut self) {
            for request in std::mem::take(&mut self.stores) {
                match request {
                    StoreRequest::Group => {}
                    StoreRequest::Assignment {
                        generation,
                        assignments,
                    } => self.step(|s, g| s.assignment_stored(g, generation, &assignments, Ok(()))),
                    StoreRequest::Replacement { ticket, joined } => {
                        self.joins.insert(ticket, Ok(joined));
                    }
                }
            }
        }

        /// Lets time run until the join phase ends.
        fn end_join_phase(&mut self) {
            while self.group.state == GroupState::PreparingRebalance {
                let deadline = self.armed[&Timer::Join];
                self.advance_to(deadline);
            }
        }

        /// Joins members (their JoinGroup answered once the initial delay
        /// ends), has every member sync and the leader hand out
        /// assignments, and returns the members' ids in join order; the
        /// group is then Stable.
        fn stable_group(&mut self, joins: Vec<JoinParams>) -> Vec<String> {
            let tickets: Vec<Ticket> = joins.into_iter().map(|p| self.join(p)).collect();
            self.end_join_phase();
            let joined: Vec<Joined> = tickets
                .iter()
                .map(|t| self.joined(*t).expect("answered").expect("joined"))
                .collect();
            let ids: Vec<String> = joined.iter().map(|j| j.member_id.clone()).collect();
            let generation = joined[0].generation_id;
            let leader = joined[0].leader.clone();
            let mut syncs: Vec<Ticket> = ids
                .iter()
                .filter(|id| **id != leader)
                .map(|id| self.sync(id, generation, &[]))
                .collect();
            syncs.push(self.sync(&leader, generation, &ids));
            self.store_all();
            for t in syncs {
                self.synced(t).expect("answered").expect("synced");
            }
            assert_eq!(self.group.state, GroupState::Stable);
            ids
        }
    }

    /// A JoinGroup v3 (no MEMBER_ID_REQUIRED round) from a dynamic member.
    fn join_params(member_id: &str) -> JoinParams {
        JoinParams {
            group_id: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "client".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"subscription"))],
            require_known_member_id: false,
        }
    }

    // Proves a first JoinGroup v4+ gets MEMBER_ID_REQUIRED with a fresh id,
    // that rejoining with it completes generation 1 after the initial
    // delay, and that an id never used is forgotten after the session
    // timeout.
    #[test]
    fn member_id_required_then_join() {
        let mut sim = Sim::new();
        let first = JoinParams {
            require_known_member_id: true,
            ..join_params("")
        };
        let t1 = sim.join(first.clone());
        let t2 = sim.join(first);
        let e1 = sim
            .joined(t1)
            .expect("answered at once")
            .expect_err("refused");
        let e2 = sim
            .joined(t2)
            .expect("answered at once")
            .expect_err("refused");
        assert_eq!(
            (e1.error, e1.member_id.as_str()),
            (GroupError::MemberIdRequired, "client-u1")
        );
        assert_eq!(e2.member_id, "client-u2");
        assert_eq!(sim.group.state, GroupState::Empty, "no member joined yet");
        assert_eq!(sim.armed[&Timer::PendingMember("client-u2".into())], 10_000);

        sim.advance_to(100);
        let t3 = sim.join(join_params("client-u1"));
        assert!(!sim
            .armed
            .contains_key(&Timer::PendingMember("client-u1".into())));
        assert_eq!(sim.group.state, GroupState::PreparingRebalance);
        sim.advance_to(100 + DELAY_MS - 1);
        assert!(sim.joined(t3).is_none(), "the initial delay holds the join");
        sim.advance_to(100 + DELAY_MS);
        let joined = sim.joined(t3).expect("answered").expect("joined");
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader, "client-u1");
        assert_eq!(joined.members.len(), 1, "the leader gets the members");
        assert_eq!(joined.protocol_name.as_deref(), Some("range"));
        assert_eq!(sim.group.state, GroupState::CompletingRebalance);

        sim.advance_to(10_000);
        assert!(sim.group.pending_members.is_empty());
        let late = sim.join(join_params("client-u2"));
        let e = sim.joined(late).expect("answered").expect_err("refused");
        assert_eq!(e.error, GroupError::UnknownMember);
    }

    // Proves the first rebalance of an empty group waits the initial delay
    // again while new members keep arriving, but no longer in all than the
    // rebalance timeout.
    #[test]
    fn initial_delay_extends_within_the_rebalance_timeout() {
        let mut sim = Sim::new();
        let p = JoinParams {
            rebalance_timeout_ms: 10_000,
            ..join_params("")
        };
        let mut tickets = vec![sim.join(p.clone())];
        assert_eq!(sim.armed[&Timer::Join], DELAY_MS);
        // Members arrive at 1 s, 5 s and 8 s: each time the delay ends, it
        // starts again, for the delay or what is left of the 10 s timeout.
        for (join_at, fire_at, next_deadline) in
            [(1000, 3000, 6000), (5000, 6000, 9000), (8000, 9000, 10_000)]
        {
            sim.advance_to(join_at);
            tickets.push(sim.join(p.clone()));
            sim.advance_to(fire_at);
            assert_eq!(sim.armed[&Timer::Join], next_deadline, "at {fire_at}");
        }
        // A member arriving after that does not extend it any further.
        sim.advance_to(9500);
        tickets.push(sim.join(p.clone()));
        sim.advance_to(9999);
        assert!(tickets.iter().all(|t| !sim.joins.contains_key(t)));
        sim.advance_to(10_000);
        let joined: Vec<Joined> = tickets
            .iter()
            .map(|t| sim.joined(*t).expect("answered").expect("joined"))
            .collect();
        assert!(joined.iter().all(|j| j.generation_id == 1));
        assert_eq!(
            joined[0].leader, joined[0].member_id,
            "the first member leads"
        );
        assert_eq!(joined[0].members.len(), 5);
        assert!(joined[1..].iter().all(|j| j.members.is_empty()));
    }

    // Proves a rebalance waits at most the rebalance timeout for members
    // to rejoin, then drops the dynamic member that did not (heartbeating
    // does not save it) and completes the generation with the others.
    #[test]
    fn rebalance_timeout_drops_a_member_that_did_not_rejoin() {
        let mut sim = Sim::new();
        let ids = sim.stable_group(vec![join_params(""), join_params("")]);
        let (a, b) = (ids[0].clone(), ids[1].clone());
        assert_eq!(sim.group.leader.as_deref(), Some(a.as_str()));

        sim.advance_to(10_000);
        let c = sim.join(join_params(""));
        assert_eq!(sim.group.state, GroupState::PreparingRebalance);
        assert_eq!(sim.armed[&Timer::Join], 10_000 + 30_000);
        assert_eq!(
            sim.heartbeat(&a, None),
            Err(GroupError::RebalanceInProgress)
        );
        let a2 = sim.join(join_params(&a));
        for at in (15_000..40_000).step_by(5000) {
            sim.advance_to(at);
            assert_eq!(
                sim.heartbeat(&b, None),
                Err(GroupError::RebalanceInProgress)
            );
        }
        sim.advance_to(39_999);
        assert!(sim.joins.is_empty(), "the join phase waits for B");
        sim.advance_to(40_000);
        let a2 = sim.joined(a2).expect("answered").expect("joined");
        let c = sim.joined(c).expect("answered").expect("joined");
        assert_eq!((a2.generation_id, c.generation_id), (2, 2));
        assert_eq!(a2.leader, a, "the leader that rejoined stays leader");
        assert_eq!(a2.members.len(), 2, "B is not in generation 2");
        assert!(!sim.group.members.contains_key(&b));
        assert!(!sim.armed.contains_key(&Timer::Session(b.clone())));
        assert_eq!(sim.heartbeat(&b, None), Err(GroupError::UnknownMember));
    }

    // Proves a member is removed once it has not been heard from for its
    // session timeout, each heartbeat pushing the deadline, and that the
    // removal starts a rebalance for the others.
    #[test]
    fn session_expiry_removes_a_silent_member() {
        let mut sim = Sim::new();
        let ids = sim.stable_group(vec![join_params(""), join_params("")]);
        let (a, b) = (ids[0].clone(), ids[1].clone());
        let start = sim.now_ms;
        for (at, member) in [(4000, &a), (5000, &b), (8000, &a), (12_000, &a)] {
            sim.advance_to(start + at);
            assert_eq!(sim.heartbeat(member, None), Ok(()));
        }
        sim.advance_to(start + 5000 + 10_000 - 1);
        assert!(
            sim.group.members.contains_key(&b),
            "B's session has 1 ms left"
        );
        sim.advance_to(start + 5000 + 10_000);
        assert!(!sim.group.members.contains_key(&b), "B's session expired");
        assert!(sim.group.members.contains_key(&a), "A kept heartbeating");
        assert_eq!(sim.group.state, GroupState::PreparingRebalance);
        assert_eq!(
            sim.heartbeat(&a, None),
            Err(GroupError::RebalanceInProgress)
        );
    }

    // Proves a static member's new instance takes the old one's place in a
    // Stable group without a rebalance once its new id is stored, and that
    // the old instance is fenced from then on.
    #[test]
    fn static_member_replacement_fences_the_old_instance() {
        let mut sim = Sim::new();
        let static_join = |member_id: &str| JoinParams {
            instance_id: Some("i1".into()),
            require_known_member_id: true,
            ..join_params(member_id)
        };
        let ids = sim.stable_group(vec![static_join(""), join_params("")]);
        let (old, other) = (ids[0].clone(), ids[1].clone());
        assert!(
            old.starts_with("i1-"),
            "a static member's id names its instance"
        );

        sim.advance_to(sim.now_ms + 1000);
        let t = sim.join(static_join(""));
        assert!(
            sim.joined(t).is_none(),
            "answered once the new id is stored"
        );
        sim.store_all();
        let joined = sim.joined(t).expect("answered").expect("joined");
        let new = joined.member_id.clone();
        assert_ne!(new, old);
        assert_eq!(joined.generation_id, 1, "no new generation");
        assert_eq!(
            joined.leader, old,
            "the old leader id, so it does not reassign"
        );
        assert_eq!(sim.group.state, GroupState::Stable);
        assert_eq!(sim.group.leader.as_deref(), Some(new.as_str()));

        assert_eq!(
            sim.heartbeat(&old, Some("i1")),
            Err(GroupError::FencedInstance)
        );
        assert_eq!(sim.heartbeat(&new, Some("i1")), Ok(()));
        assert_eq!(sim.heartbeat(&other, None), Ok(()), "the others go on");
        let synced = sim.sync(&new, 1, &[]);
        let synced = sim.synced(synced).expect("answered").expect("synced");
        assert_eq!(synced.assignment, Bytes::from(format!("for {old}")));
        assert!(!sim.armed.contains_key(&Timer::Session(old.clone())));
        assert!(sim.armed.contains_key(&Timer::Session(new.clone())));
        let left = sim.step(|s, g| s.leave(g, &[(old.clone(), Some("i1".into()))]));
        assert_eq!(left, vec![Err(GroupError::FencedInstance)]);
        let left = sim.step(|s, g| s.leave(g, &[(String::new(), Some("i1".into()))]));
        assert_eq!(left, vec![Ok(())]);
        assert!(!sim.group.members.contains_key(&new));
    }

    // Proves members that do not send SyncGroup within the rebalance
    // timeout are removed, which starts another rebalance, while the
    // leader's stored assignment was handed out on time.
    #[test]
    fn sync_timeout_removes_a_member_that_does_not_sync() {
        let mut sim = Sim::new();
        let p = JoinParams {
            rebalance_timeout_ms: 20_000,
            ..join_params("")
        };
        let (ta, tb) = (sim.join(p.clone()), sim.join(p));
        sim.end_join_phase();
        let joined_at = sim.now_ms;
        let a = sim.joined(ta).expect("answered").expect("joined").member_id;
        let b = sim.joined(tb).expect("answered").expect("joined").member_id;
        let deadline = joined_at + 20_000;
        assert_eq!(sim.armed[&Timer::Sync], deadline);

        sim.advance_to(joined_at + 1000);
        let synced = sim.sync(&a, 1, &[a.clone(), b.clone()]);
        assert!(sim.synced(synced).is_none(), "answered once stored");
        sim.store_all();
        let synced = sim.synced(synced).expect("answered").expect("synced");
        assert_eq!(synced.assignment, Bytes::from(format!("for {a}")));
        assert_eq!(sim.group.state, GroupState::Stable);

        // A heartbeats meanwhile; B, waiting to sync, needs not.
        for at in (joined_at + 5000..deadline).step_by(5000) {
            sim.advance_to(at);
            assert_eq!(sim.heartbeat(&a, None), Ok(()));
        }
        sim.advance_to(deadline - 1);
        assert!(
            sim.group.members.contains_key(&b),
            "B still has time to sync"
        );
        sim.advance_to(deadline);
        assert!(!sim.group.members.contains_key(&b), "B never synced");
        assert_eq!(sim.group.state, GroupState::PreparingRebalance);
        assert_eq!(
            sim.heartbeat(&a, None),
            Err(GroupError::RebalanceInProgress)
        );
    }
}
