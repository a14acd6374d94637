//! The coordinator of one shard: the groups whose offsets partitions this
//! shard owns, their state machines and timers, and those partitions' logs.
//! Every method runs on this shard; other shards reach it through the
//! handlers, which forward requests here.
//!
//! State changes happen synchronously inside one `RefCell` borrow; a
//! request that must wait (JoinGroup for the rebalance, SyncGroup for the
//! leader's assignment) parks a oneshot sender in its member and awaits the
//! receiver outside the borrow. Timers are tasks owned by their group or
//! member (see "Timers" below).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::oneshot;
use glommio::Task;
use tracing::{debug, info, warn};

use super::records::{self, GroupValue, OffsetValue, Record};
use super::state::{Committed, Group, GroupState, Member};
use super::store::{KeyValue, OffsetsLog, Pending, StoreError};
use super::{
    offsets_partition_for, shard_for_offsets_partition, CommitParams, DescribedMember,
    FetchedOffsets, GroupDescription, JoinParams, JoinResult, JoinedMember, ListedGroup,
    SyncParams, SyncResult, GROUP_ID_BYTES_MAX,
};
use crate::config::GroupConfig;
use crate::error_code::ErrorCode;
use crate::storage::{Clock, ShardStorage, StorageError};

/// Bytes of client id kept in generated member ids.
const CLIENT_ID_IN_MEMBER_ID_MAX: usize = 128;

pub struct Coordinator {
    config: GroupConfig,
    /// Groups this shard may hold: its share of shardlog.groups.max.
    groups_max: usize,
    partitions: usize,
    clock: Rc<dyn Clock>,
    logs: BTreeMap<usize, Rc<OffsetsLog>>,
    groups: RefCell<HashMap<String, Group>>,
    closed: Cell<bool>,
}

/// Spawns `f` on this shard to run after the current task yields; the
/// task is cancelled if the returned handle is dropped (`detach` it to
/// let it run on its own). glommio's `spawn_local` starts running a new
/// task at once, which would be inside the caller's borrow of the group
/// table: every task spawned here yields first.
fn spawn_later(f: impl std::future::Future<Output = ()> + 'static) -> Task<()> {
    glommio::spawn_local(async move {
        futures_lite::future::yield_now().await;
        f.await;
    })
}

/// A state change's verdict: go on, or answer now with this error.
type Gate = Result<(), ErrorCode>;

/// A request answered at once, or once the group gets there.
enum Answer<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// An expiry pass for one group: offsets to delete, and whether the group
/// goes too.
type ExpiryPlan = (String, Vec<(String, i32)>, bool);

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
        });
        let mut records = 0;
        for log in this.logs.values() {
            records += this.load(log).await?;
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

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn log_for(&self, group_id: &str) -> Option<Rc<OffsetsLog>> {
        self.logs
            .get(&offsets_partition_for(group_id, self.partitions))
            .cloned()
    }

    /// Whether this shard coordinates `group_id` and is serving.
    fn serves(&self, group_id: &str) -> Gate {
        if self.closed.get() || self.log_for(group_id).is_none() {
            return Err(ErrorCode::NotCoordinator);
        }
        Ok(())
    }

    // --- Loading -----------------------------------------------------------

    async fn load(self: &Rc<Self>, log: &Rc<OffsetsLog>) -> Result<u64, StorageError> {
        let mut offsets: HashMap<String, HashMap<(String, i32), Committed>> = HashMap::new();
        let mut stored: HashMap<String, GroupValue> = HashMap::new();
        let count = log
            .replay(|at, record| match record {
                Record::Offset(g, t, p, Some(value)) => {
                    offsets.entry(g).or_default().insert(
                        (t, p),
                        Committed {
                            value,
                            log_offset: at,
                        },
                    );
                }
                Record::Offset(g, t, p, None) => {
                    if let Some(m) = offsets.get_mut(&g) {
                        m.remove(&(t, p));
                    }
                }
                Record::Group(g, Some(v)) => {
                    stored.insert(g, v);
                }
                Record::Group(g, None) => {
                    stored.remove(&g);
                }
            })
            .await?;
        let now = self.now_ms();
        let names: HashSet<String> = offsets
            .iter()
            .filter(|(_, o)| !o.is_empty())
            .map(|(g, _)| g.clone())
            .chain(stored.keys().cloned())
            .collect();
        {
            let mut groups = self.groups.borrow_mut();
            for name in names {
                let mut group = Group::new(name.clone(), now);
                group.offsets = offsets.remove(&name).unwrap_or_default();
                if let Some(v) = stored.remove(&name) {
                    self.restore(&mut group, v, now);
                }
                let ids: Vec<String> = group.members.keys().cloned().collect();
                for id in ids {
                    self.watch_session(&mut group, &id);
                }
                groups.insert(name, group);
            }
        }
        // Whatever is in the log now counts as appended since the last
        // compaction, so a long log is compacted soon after a start.
        log.dirty_bytes.set(log.log().size_bytes());
        Ok(count)
    }

    /// A group as its last stored record describes it: Stable with its
    /// members and their assignments (they continue heartbeating in the
    /// same generation), or Empty.
    fn restore(&self, group: &mut Group, v: GroupValue, now: i64) {
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
                    last_heartbeat_ms: now,
                    session_task: None,
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
    }

    // --- Timers ------------------------------------------------------------
    //
    // A timer is a task whose handle its group (or member) keeps: re-arming
    // or removing it drops the old handle, which cancels the task, so a
    // client that makes the group rebalance in a loop, or members come and
    // go, leaves no sleeping tasks behind. A timer that fires detaches its
    // own handle first, so that what it does (re-arming, removing the
    // member) cannot cancel it midway.

    /// Runs `f` on this shard after `ms`, unless the coordinator closed.
    fn after(self: &Rc<Self>, ms: i64, f: impl FnOnce(&Rc<Self>) + 'static) -> Task<()> {
        let this = self.clone();
        spawn_later(async move {
            glommio::timer::sleep(Duration::from_millis(ms.max(0) as u64)).await;
            if !this.closed.get() {
                f(&this);
            }
        })
    }

    /// Watches one member's session: removes it once it has not been
    /// heard from for session.timeout.ms. A member waiting in JoinGroup or
    /// for its SyncGroup is kept (the rebalance and sync timeouts bound
    /// those waits), as in Kafka.
    fn watch_session(self: &Rc<Self>, group: &mut Group, member_id: &str) {
        let this = self.clone();
        let (group_id, id) = (group.id.clone(), member_id.to_string());
        let task = spawn_later(async move {
            let mut wait_ms: i64 = 0;
            loop {
                if wait_ms > 0 {
                    glommio::timer::sleep(Duration::from_millis(wait_ms as u64)).await;
                }
                if this.closed.get() {
                    return;
                }
                let mut groups = this.groups.borrow_mut();
                let Some(group) = groups.get_mut(&group_id) else {
                    return;
                };
                let Some(m) = group.members.get_mut(&id) else {
                    return;
                };
                let session = i64::from(m.session_timeout_ms.max(1));
                if m.is_awaiting_join() || group.pending_sync.contains(&id) {
                    wait_ms = session;
                    continue;
                }
                let now = this.now_ms();
                let deadline = m.last_heartbeat_ms + session;
                if now < deadline {
                    wait_ms = deadline - now;
                    continue;
                }
                if let Some(own) = m.session_task.take() {
                    own.detach();
                }
                info!(group = %group_id, member = %id, session_ms = session, "session expired");
                this.remove_member(group, &id);
                return;
            }
        });
        if let Some(m) = group.members.get_mut(member_id) {
            m.session_task = Some(task);
        }
    }

    /// A member id handed out with MEMBER_ID_REQUIRED that is not used
    /// within the session timeout is forgotten.
    fn add_pending(self: &Rc<Self>, group: &mut Group, member_id: String, session_ms: i64) {
        let (group_id, id) = (group.id.clone(), member_id.clone());
        let task = self.after(session_ms, move |this| {
            let mut groups = this.groups.borrow_mut();
            let Some(group) = groups.get_mut(&group_id) else {
                return;
            };
            if let Some(own) = group.pending_members.remove(&id) {
                own.detach();
                debug!(group = %group_id, member = %id, "pending member expired");
                this.check_join(group);
            }
        });
        group.pending_members.insert(member_id, task);
    }

    fn arm_rebalance(self: &Rc<Self>, group: &mut Group, timeout_ms: i64) {
        let id = group.id.clone();
        group.rebalance_timer = Some(self.after(timeout_ms, move |this| {
            let mut groups = this.groups.borrow_mut();
            let Some(group) = groups.get_mut(&id) else {
                return;
            };
            if let Some(own) = group.rebalance_timer.take() {
                own.detach();
            }
            if group.state == GroupState::PreparingRebalance {
                this.complete_join(group);
            }
        }));
    }

    /// The first rebalance of an empty group: wait the initial delay, and
    /// again (within the rebalance timeout) while new members keep coming.
    fn arm_initial_delay(self: &Rc<Self>, group: &mut Group, delay_ms: i64, remaining_ms: i64) {
        let id = group.id.clone();
        group.rebalance_timer = Some(self.after(delay_ms, move |this| {
            let mut groups = this.groups.borrow_mut();
            let Some(group) = groups.get_mut(&id) else {
                return;
            };
            if let Some(own) = group.rebalance_timer.take() {
                own.detach();
            }
            if group.state != GroupState::PreparingRebalance {
                return;
            }
            if group.new_member_added && remaining_ms > 0 {
                group.new_member_added = false;
                let delay = i64::from(this.config.initial_rebalance_delay_ms).min(remaining_ms);
                this.arm_initial_delay(group, delay, remaining_ms - delay);
            } else {
                group.initial_delay = false;
                this.complete_join(group);
            }
        }));
    }

    fn arm_sync(self: &Rc<Self>, group: &mut Group, timeout_ms: i64) {
        let id = group.id.clone();
        group.sync_timer = Some(self.after(timeout_ms, move |this| {
            let mut groups = this.groups.borrow_mut();
            let Some(group) = groups.get_mut(&id) else {
                return;
            };
            if let Some(own) = group.sync_timer.take() {
                own.detach();
            }
            if !matches!(
                group.state,
                GroupState::CompletingRebalance | GroupState::Stable
            ) || group.pending_sync.is_empty()
            {
                return;
            }
            let late: Vec<String> = group.pending_sync.iter().cloned().collect();
            info!(group = %id, members = ?late, "members did not sync in time");
            for m in late {
                this.remove_member(group, &m);
            }
        }));
    }

    // --- Transitions ---------------------------------------------------------

    /// Starts a rebalance: members awaiting an assignment are told to
    /// rejoin; the join phase waits for every member (bounded by the
    /// rebalance timeout, or the initial delay for an empty group).
    fn prepare_rebalance(self: &Rc<Self>, group: &mut Group, reason: &str) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(ErrorCode::RebalanceInProgress));
                }
            }
        }
        group.pending_sync.clear();
        group.sync_timer = None;
        let initial = group.state == GroupState::Empty;
        group.transition(GroupState::PreparingRebalance, self.now_ms());
        group.new_member_added = false;
        group.initial_delay = initial;
        info!(group = %group.id, generation = group.generation, "preparing to rebalance: {reason}");
        if initial {
            let delay = i64::from(self.config.initial_rebalance_delay_ms);
            let remaining = (group.rebalance_timeout_ms() - delay).max(0);
            self.arm_initial_delay(group, delay, remaining);
        } else {
            let timeout = group.rebalance_timeout_ms();
            self.arm_rebalance(group, timeout);
        }
    }

    fn maybe_prepare_rebalance(self: &Rc<Self>, group: &mut Group, reason: &str) {
        if matches!(
            group.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(group, reason);
        }
    }

    /// Completes the join phase now if every member has rejoined.
    fn check_join(self: &Rc<Self>, group: &mut Group) {
        if group.state == GroupState::PreparingRebalance
            && !group.initial_delay
            && group.all_joined()
        {
            self.complete_join(group);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are
    /// removed, the next generation starts, and every waiting JoinGroup is
    /// answered (the leader with the members and their metadata).
    fn complete_join(self: &Rc<Self>, group: &mut Group) {
        let now = self.now_ms();
        group.rebalance_timer = None;
        let gone: Vec<String> = group
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            group.members.remove(id);
            info!(group = %group.id, member = %id, "member did not rejoin in time; removed");
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
                        self.arm_rebalance(group, timeout);
                        return;
                    }
                }
            }
        }
        group.generation += 1;
        group.pending_sync.clear();
        group.sync_timer = None;
        group.initial_delay = false;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader = None;
            group.subscribed_topics = None;
            group.transition(GroupState::Empty, now);
            info!(group = %group.id, generation = group.generation, "group is empty");
            self.spawn_store_group(group.id.clone());
            return;
        }
        group.protocol_name = group.select_protocol();
        group.refresh_subscribed_topics();
        group.transition(GroupState::CompletingRebalance, now);
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let leader = group.leader.clone().unwrap_or_default();
        let listed: Vec<JoinedMember> = group
            .members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect();
        info!(
            group = %group.id,
            generation = group.generation,
            members = group.members.len(),
            protocol = %protocol,
            leader = %leader,
            "rebalance: members joined"
        );
        for m in group.members.values_mut() {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult {
                    error: ErrorCode::None,
                    generation_id: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader {
                        listed.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
            m.last_heartbeat_ms = now;
        }
        group.pending_sync = group.members.keys().cloned().collect();
        let timeout = group.rebalance_timeout_ms();
        self.arm_sync(group, timeout);
    }

    /// Removes a member (it left, or its session or a rebalance deadline
    /// expired) and rebalances the rest.
    fn remove_member(self: &Rc<Self>, group: &mut Group, member_id: &str) {
        let Some(mut m) = group.members.remove(member_id) else {
            return;
        };
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(ErrorCode::UnknownMemberId, member_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(ErrorCode::UnknownMemberId));
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

    // --- JoinGroup -----------------------------------------------------------

    pub async fn join(self: &Rc<Self>, p: JoinParams) -> JoinResult {
        let member_id = p.member_id.clone();
        match self.join_begin(p) {
            Answer::Later(rx) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(ErrorCode::RebalanceInProgress, &member_id)),
            Answer::Now(result) => result,
        }
    }

    fn join_begin(self: &Rc<Self>, p: JoinParams) -> Answer<JoinResult> {
        let fail = |code: ErrorCode| JoinResult::error(code, &p.member_id);
        if let Err(code) = self.serves(&p.group_id) {
            return Answer::Now(fail(code));
        }
        if p.group_id.is_empty() || p.group_id.len() > GROUP_ID_BYTES_MAX {
            return Answer::Now(fail(ErrorCode::InvalidGroupId));
        }
        if p.session_timeout_ms < self.config.min_session_timeout_ms
            || p.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Answer::Now(fail(ErrorCode::InvalidSessionTimeout));
        }
        let metadata: usize = p.protocols.iter().map(|(n, m)| n.len() + m.len()).sum();
        if metadata > self.config.group_metadata_max_bytes {
            return Answer::Now(fail(ErrorCode::GroupMaxSizeReached));
        }
        let mut groups = self.groups.borrow_mut();
        if !groups.contains_key(&p.group_id) {
            if p.protocol_type.is_empty() || p.protocols.is_empty() {
                return Answer::Now(fail(ErrorCode::InconsistentGroupProtocol));
            }
            if !p.member_id.is_empty() {
                return Answer::Now(fail(ErrorCode::UnknownMemberId));
            }
            if groups.len() >= self.groups_max {
                warn!(group = %p.group_id, limit = self.groups_max, "shardlog.groups.max reached on this shard");
                return Answer::Now(fail(ErrorCode::CoordinatorNotAvailable));
            }
            groups.insert(
                p.group_id.clone(),
                Group::new(p.group_id.clone(), self.now_ms()),
            );
        }
        let group = groups.get_mut(&p.group_id).expect("present");
        if group.state == GroupState::Dead {
            return Answer::Now(fail(ErrorCode::CoordinatorNotAvailable));
        }
        if !group.supports(&p.protocol_type, &p.protocols) {
            return Answer::Now(fail(ErrorCode::InconsistentGroupProtocol));
        }
        let known = group.members.contains_key(&p.member_id);
        let old_bytes = group
            .members
            .get(&p.member_id)
            .map_or(0, Member::metadata_bytes);
        if group.metadata_bytes() - old_bytes + metadata > self.config.group_metadata_max_bytes {
            return Answer::Now(fail(ErrorCode::GroupMaxSizeReached));
        }
        if p.member_id.is_empty() {
            self.join_new_member(group, p)
        } else if group.pending_members.contains_key(&p.member_id) {
            group.pending_members.remove(&p.member_id);
            Answer::Later(self.add_member(group, p.member_id.clone(), p))
        } else if group.is_fenced(p.instance_id.as_deref(), &p.member_id) {
            Answer::Now(fail(ErrorCode::FencedInstanceId))
        } else if !known {
            Answer::Now(fail(ErrorCode::UnknownMemberId))
        } else {
            self.join_known_member(group, p)
        }
    }

    fn size_ok(&self, group: &Group) -> bool {
        group.members.len() + group.pending_members.len() < self.config.max_size
    }

    fn new_member_id(prefix: &str) -> String {
        let mut end = prefix.len().min(CLIENT_ID_IN_MEMBER_ID_MAX);
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}-{}", &prefix[..end], uuid::Uuid::new_v4())
    }

    /// A JoinGroup without a member id.
    fn join_new_member(self: &Rc<Self>, group: &mut Group, p: JoinParams) -> Answer<JoinResult> {
        if let Some(instance) = p.instance_id.clone() {
            let new_id = Self::new_member_id(&instance);
            if let Some(old_id) = group.static_members.get(&instance).cloned() {
                return self.replace_static_member(group, old_id, new_id, p);
            }
            if !self.size_ok(group) {
                return Answer::Now(JoinResult::error(ErrorCode::GroupMaxSizeReached, ""));
            }
            return Answer::Later(self.add_member(group, new_id, p));
        }
        if !self.size_ok(group) {
            return Answer::Now(JoinResult::error(ErrorCode::GroupMaxSizeReached, ""));
        }
        let new_id = Self::new_member_id(&p.client_id);
        if p.require_known_member_id {
            self.add_pending(group, new_id.clone(), i64::from(p.session_timeout_ms));
            return Answer::Now(JoinResult::error(ErrorCode::MemberIdRequired, &new_id));
        }
        Answer::Later(self.add_member(group, new_id, p))
    }

    fn add_member(
        self: &Rc<Self>,
        group: &mut Group,
        member_id: String,
        p: JoinParams,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
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
                join_waiter: Some(tx),
                sync_waiter: None,
                last_heartbeat_ms: self.now_ms(),
                session_task: None,
            },
        );
        if group.state == GroupState::PreparingRebalance {
            group.new_member_added = true;
        }
        self.watch_session(group, &member_id);
        self.maybe_prepare_rebalance(group, &format!("member {member_id} joined"));
        self.check_join(group);
        rx
    }

    /// A JoinGroup from a member of the group.
    fn join_known_member(self: &Rc<Self>, group: &mut Group, p: JoinParams) -> Answer<JoinResult> {
        let member = group.members.get(&p.member_id).expect("known member");
        let same = member.same_protocols(&p.protocols);
        let current = |group: &Group, with_members: bool| {
            let protocol = group.protocol_name.clone().unwrap_or_default();
            JoinResult {
                error: ErrorCode::None,
                generation_id: group.generation,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                leader: group.leader.clone().unwrap_or_default(),
                member_id: p.member_id.clone(),
                members: if with_members {
                    group
                        .members
                        .values()
                        .map(|m| JoinedMember {
                            member_id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            metadata: m.metadata_for(&protocol),
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            }
        };
        match group.state {
            GroupState::CompletingRebalance if same => {
                // A resent JoinGroup: the generation it asked for is ready.
                Answer::Now(current(group, group.is_leader(&p.member_id)))
            }
            GroupState::Stable if same && !group.is_leader(&p.member_id) => {
                Answer::Now(current(group, false))
            }
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => Answer::Later(self.update_member_and_rebalance(group, p)),
            GroupState::Empty | GroupState::Dead => {
                Answer::Now(JoinResult::error(ErrorCode::UnknownMemberId, &p.member_id))
            }
        }
    }

    fn update_member_and_rebalance(
        self: &Rc<Self>,
        group: &mut Group,
        p: JoinParams,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let member = group.members.get_mut(&p.member_id).expect("known member");
        member.protocols = p.protocols;
        member.session_timeout_ms = p.session_timeout_ms;
        member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.client_id = p.client_id;
        member.last_heartbeat_ms = self.now_ms();
        if let Some(old) = member.join_waiter.replace(tx) {
            // The client gave up on its earlier JoinGroup and sent another.
            let _ = old.send(JoinResult::error(
                ErrorCode::RebalanceInProgress,
                &p.member_id,
            ));
        }
        self.maybe_prepare_rebalance(group, &format!("member {} rejoined", p.member_id));
        self.check_join(group);
        rx
    }

    /// A static member's new instance (no member id, known instance id)
    /// takes over the old member's place: the old one is fenced. In a
    /// Stable group whose protocol does not change, it resumes the current
    /// generation and assignment without a rebalance (KIP-345).
    fn replace_static_member(
        self: &Rc<Self>,
        group: &mut Group,
        old_id: String,
        new_id: String,
        p: JoinParams,
    ) -> Answer<JoinResult> {
        let Some(mut member) = group.members.remove(&old_id) else {
            return Answer::Now(JoinResult::error(ErrorCode::UnknownMemberId, ""));
        };
        if let Some(w) = member.join_waiter.take() {
            let _ = w.send(JoinResult::error(ErrorCode::FencedInstanceId, &old_id));
        }
        if let Some(w) = member.sync_waiter.take() {
            let _ = w.send(SyncResult::error(ErrorCode::FencedInstanceId));
        }
        let leader_before = group.leader.clone().unwrap_or_default();
        if group.is_leader(&old_id) {
            group.leader = Some(new_id.clone());
        }
        if group.pending_sync.remove(&old_id) {
            group.pending_sync.insert(new_id.clone());
        }
        let instance = p.instance_id.clone().expect("static member");
        group
            .static_members
            .insert(instance.clone(), new_id.clone());
        member.id = new_id.clone();
        member.protocols = p.protocols;
        member.session_timeout_ms = p.session_timeout_ms;
        member.rebalance_timeout_ms = p.rebalance_timeout_ms;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        member.last_heartbeat_ms = self.now_ms();
        group.members.insert(new_id.clone(), member);
        // Replaces (and so cancels) the old id's session timer.
        self.watch_session(group, &new_id);
        info!(group = %group.id, instance = %instance, old = %old_id, new = %new_id, "static member replaced");
        let (tx, rx) = oneshot::channel();
        match group.state {
            GroupState::Stable if group.select_protocol() == group.protocol_name => {
                // Persist the new member id, then answer with the current
                // generation. The old leader id is returned so that a
                // rejoining leader does not redo the assignment of a
                // stable group.
                let this = self.clone();
                let id = group.id.clone();
                let generation = group.generation;
                let protocol_type = group.protocol_type.clone();
                let protocol_name = group.protocol_name.clone();
                spawn_later(async move {
                    let result = match this.store_group(&id, None).await {
                        Ok(_) => JoinResult {
                            error: ErrorCode::None,
                            generation_id: generation,
                            protocol_type,
                            protocol_name,
                            leader: leader_before,
                            member_id: new_id,
                            members: Vec::new(),
                        },
                        Err(e) => JoinResult::error(e.group_error_code(), &new_id),
                    };
                    let _ = tx.send(result);
                })
                .detach();
            }
            GroupState::Stable
            | GroupState::CompletingRebalance
            | GroupState::PreparingRebalance => {
                let m = group.members.get_mut(&new_id).expect("inserted");
                m.join_waiter = Some(tx);
                self.maybe_prepare_rebalance(group, &format!("static member {instance} rejoined"));
                self.check_join(group);
            }
            GroupState::Empty | GroupState::Dead => {
                return Answer::Now(JoinResult::error(ErrorCode::UnknownMemberId, ""));
            }
        }
        Answer::Later(rx)
    }

    // --- SyncGroup -----------------------------------------------------------

    pub async fn sync(self: &Rc<Self>, p: SyncParams) -> SyncResult {
        match self.sync_begin(p) {
            Answer::Later(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(ErrorCode::RebalanceInProgress)),
            Answer::Now(result) => result,
        }
    }

    fn sync_begin(self: &Rc<Self>, p: SyncParams) -> Answer<SyncResult> {
        let fail = SyncResult::error;
        if let Err(code) = self.serves(&p.group_id) {
            return Answer::Now(fail(code));
        }
        if p.group_id.is_empty() {
            return Answer::Now(fail(ErrorCode::InvalidGroupId));
        }
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(&p.group_id) else {
            return Answer::Now(fail(ErrorCode::UnknownMemberId));
        };
        if group.is_fenced(p.instance_id.as_deref(), &p.member_id) {
            return Answer::Now(fail(ErrorCode::FencedInstanceId));
        }
        if !group.members.contains_key(&p.member_id) {
            return Answer::Now(fail(ErrorCode::UnknownMemberId));
        }
        if p.generation_id != group.generation {
            return Answer::Now(fail(ErrorCode::IllegalGeneration));
        }
        let type_differs = p
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != group.protocol_type.as_ref());
        let name_differs = p
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != group.protocol_name.as_ref());
        if type_differs || name_differs {
            return Answer::Now(fail(ErrorCode::InconsistentGroupProtocol));
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Answer::Now(fail(ErrorCode::UnknownMemberId)),
            GroupState::PreparingRebalance => Answer::Now(fail(ErrorCode::RebalanceInProgress)),
            GroupState::Stable => {
                group.pending_sync.remove(&p.member_id);
                if group.pending_sync.is_empty() {
                    group.sync_timer = None;
                }
                let m = group.members.get_mut(&p.member_id).expect("member");
                m.last_heartbeat_ms = self.now_ms();
                Answer::Now(SyncResult {
                    error: ErrorCode::None,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                })
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                group.pending_sync.remove(&p.member_id);
                if group.pending_sync.is_empty() {
                    group.sync_timer = None;
                }
                let m = group.members.get_mut(&p.member_id).expect("member");
                m.last_heartbeat_ms = self.now_ms();
                if let Some(old) = m.sync_waiter.replace(tx) {
                    let _ = old.send(SyncResult::error(ErrorCode::RebalanceInProgress));
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
                    let this = self.clone();
                    let id = group.id.clone();
                    let generation = group.generation;
                    spawn_later(async move {
                        this.finish_leader_sync(id, generation, assignments).await
                    })
                    .detach();
                }
                Answer::Later(rx)
            }
        }
    }

    /// Stores the leader's assignment and only then hands every member
    /// its part; the group becomes Stable.
    async fn finish_leader_sync(
        self: Rc<Self>,
        group_id: String,
        generation: i32,
        assignments: HashMap<String, Bytes>,
    ) {
        let stored = self
            .store_group(&group_id, Some((generation, &assignments)))
            .await;
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(&group_id) else {
            return;
        };
        if group.state != GroupState::CompletingRebalance || group.generation != generation {
            return;
        }
        match stored {
            Ok(_pending) => {
                for m in group.members.values_mut() {
                    m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncResult {
                            error: ErrorCode::None,
                            protocol_type: group.protocol_type.clone(),
                            protocol_name: group.protocol_name.clone(),
                            assignment: m.assignment.clone(),
                        });
                    }
                }
                group.transition(GroupState::Stable, self.now_ms());
                info!(group = %group_id, generation, "group is stable");
            }
            Err(e) => {
                warn!(group = %group_id, generation, "storing the group's assignment failed: {e}");
                let code = e.group_error_code();
                for m in group.members.values_mut() {
                    m.assignment = Bytes::new();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncResult::error(code));
                    }
                }
                self.prepare_rebalance(group, "storing the assignment failed");
                self.check_join(group);
            }
        }
    }

    // --- Heartbeat, LeaveGroup -----------------------------------------------

    pub fn heartbeat(
        self: &Rc<Self>,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> ErrorCode {
        if let Err(code) = self.serves(group_id) {
            return code;
        }
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if group.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if group.is_fenced(instance_id, member_id) {
            return ErrorCode::FencedInstanceId;
        }
        let now = self.now_ms();
        let generation = group.generation;
        let state = group.state;
        let Some(member) = group.members.get_mut(member_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if generation_id != generation {
            return ErrorCode::IllegalGeneration;
        }
        match state {
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.last_heartbeat_ms = now;
                ErrorCode::None
            }
            GroupState::PreparingRebalance => {
                member.last_heartbeat_ms = now;
                ErrorCode::RebalanceInProgress
            }
        }
    }

    /// LeaveGroup: (member id, instance id) per leaving member; returns
    /// the request's error and each member's.
    pub fn leave(
        self: &Rc<Self>,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> (ErrorCode, Vec<ErrorCode>) {
        if let Err(code) = self.serves(group_id) {
            return (code, vec![code; leaving.len()]);
        }
        let mut groups = self.groups.borrow_mut();
        let Some(group) = groups.get_mut(group_id) else {
            return (
                ErrorCode::None,
                vec![ErrorCode::UnknownMemberId; leaving.len()],
            );
        };
        let mut out = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            let code = match instance_id {
                Some(instance) => match group.static_members.get(instance).cloned() {
                    None => ErrorCode::UnknownMemberId,
                    Some(owner) if !member_id.is_empty() && owner != *member_id => {
                        ErrorCode::FencedInstanceId
                    }
                    Some(owner) => {
                        info!(group = %group_id, member = %owner, instance = %instance, "static member left");
                        self.remove_member(group, &owner);
                        ErrorCode::None
                    }
                },
                None if group.pending_members.remove(member_id).is_some() => {
                    self.check_join(group);
                    ErrorCode::None
                }
                None if group.members.contains_key(member_id) => {
                    info!(group = %group_id, member = %member_id, "member left");
                    self.remove_member(group, member_id);
                    ErrorCode::None
                }
                None => ErrorCode::UnknownMemberId,
            };
            out.push(code);
        }
        (ErrorCode::None, out)
    }

    // --- Offsets -----------------------------------------------------------------

    /// OffsetCommit: the error of each offset, in order. Answered once the
    /// accepted offsets are durable.
    pub async fn commit(self: &Rc<Self>, p: CommitParams) -> Vec<ErrorCode> {
        let n = p.offsets.len();
        if let Err(code) = self.serves(&p.group_id) {
            return vec![code; n];
        }
        if p.group_id.len() > GROUP_ID_BYTES_MAX {
            return vec![ErrorCode::InvalidGroupId; n];
        }
        if let Err(code) = self.commit_gate(&p) {
            return vec![code; n];
        }
        let now = self.now_ms();
        let mut results = vec![ErrorCode::None; n];
        let mut kvs: Vec<KeyValue> = Vec::new();
        let mut accepted = Vec::new();
        for (i, o) in p.offsets.into_iter().enumerate() {
            if !o.exists {
                results[i] = ErrorCode::UnknownTopicOrPartition;
                continue;
            }
            let metadata = o.metadata.unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                results[i] = ErrorCode::OffsetMetadataTooLarge;
                continue;
            }
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp_ms: now,
            };
            kvs.push((
                records::offset_key(&p.group_id, &o.topic, o.partition),
                Some(records::offset_value(&value)),
            ));
            accepted.push((i, o.topic, o.partition, value));
        }
        if kvs.is_empty() {
            return results;
        }
        let log = self.log_for(&p.group_id).expect("served above");
        match log.append(move || Ok(kvs)).await {
            Ok(pending) => {
                let base = pending.as_ref().map_or(0, |p| p.base_offset);
                let mut groups = self.groups.borrow_mut();
                let group = groups
                    .entry(p.group_id.clone())
                    .or_insert_with(|| Group::new(p.group_id.clone(), now));
                for (k, (_, topic, partition, value)) in accepted.into_iter().enumerate() {
                    let at = base + k as i64;
                    let slot = group.offsets.entry((topic, partition));
                    match slot {
                        std::collections::hash_map::Entry::Occupied(mut e) => {
                            if e.get().log_offset < at {
                                e.insert(Committed {
                                    value,
                                    log_offset: at,
                                });
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(Committed {
                                value,
                                log_offset: at,
                            });
                        }
                    }
                }
                drop(pending);
            }
            Err(e) => {
                warn!(group = %p.group_id, "storing offsets failed: {e}");
                let code = e.commit_error_code();
                for (i, ..) in accepted {
                    results[i] = code;
                }
            }
        }
        results
    }

    /// Kafka's checks of an OffsetCommit against the group.
    fn commit_gate(self: &Rc<Self>, p: &CommitParams) -> Gate {
        let mut groups = self.groups.borrow_mut();
        let count = groups.len();
        let Some(group) = groups.get_mut(&p.group_id) else {
            if p.generation_id >= 0 {
                return Err(ErrorCode::IllegalGeneration);
            }
            // Offsets stored for a group that does not use group
            // management: the group exists from now on, Empty.
            if count >= self.groups_max {
                warn!(group = %p.group_id, limit = self.groups_max, "shardlog.groups.max reached on this shard");
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
            groups.insert(
                p.group_id.clone(),
                Group::new(p.group_id.clone(), self.now_ms()),
            );
            return Ok(());
        };
        if group.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if group.is_fenced(p.instance_id.as_deref(), &p.member_id) {
            return Err(ErrorCode::FencedInstanceId);
        }
        if p.generation_id < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        let generation = group.generation;
        let state = group.state;
        let Some(member) = group.members.get_mut(&p.member_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        if p.generation_id != generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        match state {
            GroupState::CompletingRebalance => Err(ErrorCode::RebalanceInProgress),
            _ => {
                member.last_heartbeat_ms = self.now_ms();
                Ok(())
            }
        }
    }

    /// OffsetFetch: the committed offsets of `topics` (all of the group's
    /// when `None`).
    pub fn fetch(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchedOffsets, ErrorCode> {
        self.serves(group_id)?;
        let groups = self.groups.borrow();
        let group = groups.get(group_id);
        let committed = |t: &str, p: i32| {
            group
                .and_then(|g| g.offsets.get(&(t.to_string(), p)))
                .map(|c| c.value.clone())
        };
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(t, parts)| {
                    let ps = parts.into_iter().map(|p| (p, committed(&t, p))).collect();
                    (t, ps)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetValue>)>> =
                    BTreeMap::new();
                if let Some(g) = group {
                    for ((t, p), c) in &g.offsets {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, Some(c.value.clone())));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(t, mut ps)| {
                        ps.sort_by_key(|(p, _)| *p);
                        (t, ps)
                    })
                    .collect()
            }
        })
    }

    /// OffsetDelete: removes committed offsets of partitions the group
    /// does not consume. Errors: the request's, or each partition's.
    pub async fn offset_delete(
        self: &Rc<Self>,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<Vec<(String, Vec<(i32, ErrorCode)>)>, ErrorCode> {
        self.serves(group_id)?;
        let mut doomed: Vec<(String, i32)> = Vec::new();
        let answer: Vec<(String, Vec<(i32, ErrorCode)>)> = {
            let groups = self.groups.borrow();
            let group = match groups.get(group_id) {
                Some(g) if g.state != GroupState::Dead => g,
                _ => return Err(ErrorCode::GroupIdNotFound),
            };
            let consumer = group.protocol_type.as_deref() == Some("consumer");
            let subscribed = |topic: &str| match &group.subscribed_topics {
                Some(ts) => ts.contains(topic),
                None => true,
            };
            if group.state != GroupState::Empty && !consumer {
                return Err(ErrorCode::NonEmptyGroup);
            }
            topics
                .into_iter()
                .map(|(t, parts)| {
                    let blocked = group.state != GroupState::Empty && subscribed(&t);
                    let ps = parts
                        .into_iter()
                        .map(|p| {
                            if blocked {
                                (p, ErrorCode::GroupSubscribedToTopic)
                            } else {
                                if group.offsets.contains_key(&(t.clone(), p)) {
                                    doomed.push((t.clone(), p));
                                }
                                (p, ErrorCode::None)
                            }
                        })
                        .collect();
                    (t, ps)
                })
                .collect()
        };
        if doomed.is_empty() {
            return Ok(answer);
        }
        let log = self.log_for(group_id).expect("served above");
        let kvs: Vec<KeyValue> = doomed
            .iter()
            .map(|(t, p)| (records::offset_key(group_id, t, *p), None))
            .collect();
        let pending = log
            .append(move || Ok(kvs))
            .await
            .map_err(|e| e.commit_error_code())?;
        let base = pending.as_ref().map_or(0, |p| p.base_offset);
        if let Some(group) = self.groups.borrow_mut().get_mut(group_id) {
            for tp in doomed {
                // A commit made after the deletion was written stays.
                if group.offsets.get(&tp).is_some_and(|c| c.log_offset < base) {
                    group.offsets.remove(&tp);
                }
            }
        }
        drop(pending);
        Ok(answer)
    }

    // --- Describe, list, delete --------------------------------------------------

    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let mut d = GroupDescription {
            error: ErrorCode::None,
            group_id: group_id.to_string(),
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        if let Err(code) = self.serves(group_id) {
            d.error = code;
            return d;
        }
        let groups = self.groups.borrow();
        let Some(group) = groups.get(group_id) else {
            return d;
        };
        d.state = group.state.name();
        d.protocol_type = group.protocol_type.clone().unwrap_or_default();
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        if stable {
            d.protocol = protocol.clone();
        }
        d.members = group
            .members
            .values()
            .map(|m| DescribedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        d
    }

    pub fn list(&self) -> Vec<ListedGroup> {
        let mut out: Vec<ListedGroup> = self
            .groups
            .borrow()
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DeleteGroups for one group: only an empty group can go; its
    /// record and offsets get tombstones.
    pub async fn delete(self: &Rc<Self>, group_id: &str) -> ErrorCode {
        if let Err(code) = self.serves(group_id) {
            return code;
        }
        let kvs: Vec<KeyValue> = {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(group_id) else {
                return ErrorCode::GroupIdNotFound;
            };
            match group.state {
                GroupState::Dead => return ErrorCode::GroupIdNotFound,
                GroupState::Empty if group.members.is_empty() => {}
                _ => return ErrorCode::NonEmptyGroup,
            }
            group.transition(GroupState::Dead, self.now_ms());
            std::iter::once((records::group_key(group_id), None))
                .chain(
                    group
                        .offsets
                        .keys()
                        .map(|(t, p)| (records::offset_key(group_id, t, *p), None)),
                )
                .collect()
        };
        let log = self.log_for(group_id).expect("served above");
        let stored = log.append(move || Ok(kvs)).await;
        let mut groups = self.groups.borrow_mut();
        match stored {
            Ok(pending) => {
                if groups
                    .get(group_id)
                    .is_some_and(|g| g.state == GroupState::Dead)
                {
                    groups.remove(group_id);
                }
                drop(pending);
                info!(group = %group_id, "group deleted");
                ErrorCode::None
            }
            Err(e) => {
                warn!(group = %group_id, "deleting the group failed: {e}");
                if let Some(g) = groups.get_mut(group_id) {
                    g.transition(GroupState::Empty, self.now_ms());
                }
                e.group_error_code()
            }
        }
    }

    // --- Storing groups ------------------------------------------------------------

    fn spawn_store_group(self: &Rc<Self>, group_id: String) {
        let this = self.clone();
        spawn_later(async move {
            if let Err(e) = this.store_group(&group_id, None).await {
                warn!(group = %group_id, "storing the group failed: {e}");
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
        log.append(|| {
            let mut groups = self.groups.borrow_mut();
            let Some(group) = groups.get_mut(group_id) else {
                return Ok(Vec::new());
            };
            let mut value = group.to_value();
            if let Some((generation, asg)) = assignment {
                if generation == group.generation {
                    for m in &mut value.members {
                        m.assignment = asg.get(&m.member_id).cloned().unwrap_or_default();
                    }
                }
            }
            let bytes = records::group_value(&value);
            if bytes.len() > limit {
                return Err(StoreError::TooLarge(bytes.len()));
            }
            group.stored = Some(value);
            Ok(vec![(records::group_key(group_id), Some(bytes))])
        })
        .await
    }

    // --- Maintenance -------------------------------------------------------------

    fn spawn_maintenance(self: &Rc<Self>) {
        let this = self.clone();
        spawn_later(async move {
            let interval = Duration::from_millis(this.config.offsets_compaction_interval_ms);
            loop {
                glommio::timer::sleep(interval).await;
                if this.closed.get() {
                    return;
                }
                for log in this.logs.values() {
                    let dirty = log.dirty_bytes.get();
                    let threshold = this
                        .config
                        .offsets_compaction_min_bytes
                        .max(log.live_bytes.get());
                    if dirty < threshold {
                        continue;
                    }
                    if let Err(e) = this.compact(log).await {
                        warn!(partition = log.partition, "compacting the offsets log: {e}");
                    }
                }
            }
        })
        .detach();
        let this = self.clone();
        spawn_later(async move {
            let interval = Duration::from_millis(this.config.offsets_retention_check_interval_ms);
            loop {
                glommio::timer::sleep(interval).await;
                if this.closed.get() {
                    return;
                }
                this.expire_offsets().await;
            }
        })
        .detach();
    }

    /// Copies the live state of one offsets partition to its end and drops
    /// everything before the copy. Returns whether it ran (it does not
    /// while writes are pending).
    pub async fn compact(self: &Rc<Self>, log: &Rc<OffsetsLog>) -> Result<bool, StoreError> {
        let Some(permit) = log.lock_for_compaction().await else {
            return Ok(false);
        };
        let start = log.log().offsets().log_end_offset;
        let kvs: Vec<KeyValue> = {
            let groups = self.groups.borrow();
            let mut kvs = Vec::new();
            for g in groups.values() {
                if offsets_partition_for(&g.id, self.partitions) != log.partition {
                    continue;
                }
                if let Some(v) = &g.stored {
                    kvs.push((records::group_key(&g.id), Some(records::group_value(v))));
                }
                let mut offsets: Vec<_> = g.offsets.iter().collect();
                offsets.sort_by_key(|(_, c)| c.log_offset);
                for ((t, p), c) in offsets {
                    kvs.push((
                        records::offset_key(&g.id, t, *p),
                        Some(records::offset_value(&c.value)),
                    ));
                }
            }
            kvs
        };
        let bytes: u64 = kvs
            .iter()
            .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
            .sum();
        let before = log.log().size_bytes();
        if !kvs.is_empty() {
            log.append_holding_lock(&permit, &kvs).await?;
        }
        drop(permit);
        log.drop_before(start).await?;
        log.dirty_bytes.set(0);
        log.live_bytes.set(bytes);
        info!(
            partition = log.partition,
            records = kvs.len(),
            live_bytes = bytes,
            log_bytes_before = before,
            log_bytes_after = log.log().size_bytes(),
            log_start_offset = start,
            "offsets log compacted"
        );
        Ok(true)
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

    /// offsets.retention.minutes: offsets of a group empty for that long
    /// (by commit time for group-less commits, and for topics a stable
    /// consumer group no longer subscribes to) are deleted; an empty group
    /// left without offsets is deleted.
    async fn expire_offsets(self: &Rc<Self>) {
        let now = self.now_ms();
        let retention = self.config.offsets_retention_ms;
        let plans: Vec<ExpiryPlan> = {
            let groups = self.groups.borrow();
            groups
                .values()
                .filter_map(|g| {
                    let base = |c: &Committed| -> Option<i64> {
                        match (g.state, g.protocol_type.as_deref()) {
                            (GroupState::Empty, Some(_)) => {
                                Some(g.state_since_ms.max(c.value.commit_timestamp_ms))
                            }
                            (GroupState::Empty, None) => Some(c.value.commit_timestamp_ms),
                            _ => None,
                        }
                    };
                    let expired: Vec<(String, i32)> = g
                        .offsets
                        .iter()
                        .filter(|((t, _), c)| {
                            let stale_topic = g.state == GroupState::Stable
                                && g.subscribed_topics.as_ref().is_some_and(|s| !s.contains(t))
                                && c.value.commit_timestamp_ms + retention <= now;
                            stale_topic || base(c).is_some_and(|b| b + retention <= now)
                        })
                        .map(|(tp, _)| tp.clone())
                        .collect();
                    let drop_group = g.state == GroupState::Empty
                        && g.members.is_empty()
                        && g.pending_members.is_empty()
                        && expired.len() == g.offsets.len();
                    (!expired.is_empty() || drop_group).then(|| (g.id.clone(), expired, drop_group))
                })
                .collect()
        };
        for (group_id, expired, drop_group) in plans {
            let Some(log) = self.log_for(&group_id) else {
                continue;
            };
            let mut kvs: Vec<KeyValue> = expired
                .iter()
                .map(|(t, p)| (records::offset_key(&group_id, t, *p), None))
                .collect();
            if drop_group {
                kvs.push((records::group_key(&group_id), None));
            }
            match log.append(move || Ok(kvs)).await {
                Ok(pending) => {
                    let base = pending.as_ref().map_or(0, |p| p.base_offset);
                    let mut groups = self.groups.borrow_mut();
                    if let Some(g) = groups.get_mut(&group_id) {
                        for tp in &expired {
                            if g.offsets.get(tp).is_some_and(|c| c.log_offset < base) {
                                g.offsets.remove(tp);
                            }
                        }
                        info!(group = %group_id, offsets = expired.len(), "committed offsets expired");
                        if drop_group
                            && g.state == GroupState::Empty
                            && g.members.is_empty()
                            && g.offsets.is_empty()
                        {
                            groups.remove(&group_id);
                            info!(group = %group_id, "empty group without offsets removed");
                        }
                    }
                    drop(pending);
                }
                Err(e) => warn!(group = %group_id, "expiring offsets: {e}"),
            }
        }
    }

    // --- Shutdown ------------------------------------------------------------------

    /// Stops serving: waiting JoinGroup and SyncGroup requests are answered
    /// NOT_COORDINATOR so that connections can drain.
    pub fn begin_shutdown(&self) {
        self.closed.set(true);
        for g in self.groups.borrow_mut().values_mut() {
            for m in g.members.values_mut() {
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(JoinResult::error(ErrorCode::NotCoordinator, &m.id));
                }
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(ErrorCode::NotCoordinator));
                }
            }
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
        self.logs.get(&partition).map(|l| {
            let o = l.log().offsets();
            (o.log_start_offset, o.log_end_offset)
        })
    }
}
