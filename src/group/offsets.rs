//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete, and their
//! expiry (offsets.retention.minutes). A request is checked against the
//! group, its records are written to the offsets log, and memory changes
//! only once they are durable. Runs on the coordinating shard.
//!
//! The offsets log orders the writes: each committed offset remembers
//! where its record is, and a deletion written before a newer commit of the
//! same partition does not remove that commit.

use std::collections::BTreeMap;
use std::rc::Rc;

use tracing::{info, warn};

use super::coordinator::{Coordinator, Slot};
use super::error::GroupError;
use super::persistence::{self, OffsetsLog};
use super::records::OffsetValue;
use super::state::{Committed, Group, GroupState};
use super::{CommitOffset, CommitParams, DeletedOffsets, FetchedOffsets, GROUP_ID_BYTES_MAX};

/// An offset accepted for a commit: its (topic, partition) and value.
type Accepted = ((String, i32), OffsetValue);

/// An expiry pass's work for one group.
struct Expiry {
    group_id: String,
    /// Offsets whose retention ran out.
    offsets: Vec<(String, i32)>,
    /// Whether the group goes too: it is empty and keeps no offsets.
    drop_group: bool,
}

impl Coordinator {
    /// OffsetCommit: each offset's outcome, in order. Answered once the
    /// accepted offsets are durable.
    pub async fn commit(self: &Rc<Self>, p: CommitParams) -> Vec<Result<(), GroupError>> {
        let n = p.offsets.len();
        let log = match self.admit_commit(&p) {
            Ok(log) => log,
            Err(e) => return vec![Err(e); n],
        };
        let now = self.now_ms();
        let metadata_max = self.config.offset_metadata_max_bytes;
        let mut outcomes = Vec::with_capacity(n);
        let mut accepted: Vec<(usize, Accepted)> = Vec::new();
        for (i, o) in p.offsets.into_iter().enumerate() {
            match accept(o, metadata_max, now) {
                Ok(a) => {
                    accepted.push((i, a));
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if accepted.is_empty() {
            return outcomes;
        }
        let kvs: Vec<_> = accepted
            .iter()
            .map(|(_, ((topic, partition), value))| {
                persistence::offset_record(&p.group_id, topic, *partition, value)
            })
            .collect();
        match log.append(move || Ok(kvs)).await {
            Ok(pending) => {
                let base = pending.as_ref().map_or(0, |p| p.base_offset);
                let mut groups = self.groups.borrow_mut();
                // A group deleted while the commit was written comes back.
                let slot = groups
                    .entry(p.group_id.clone())
                    .or_insert_with(|| Slot::new(Group::new(p.group_id.clone(), now)));
                record_commits(&mut slot.group, accepted.into_iter().map(|(_, a)| a), base);
                drop(pending);
            }
            Err(e) => {
                warn!(group = %p.group_id, "storing offsets failed: {e}");
                let error = GroupError::storing_offsets(&e);
                for (i, _) in accepted {
                    outcomes[i] = Err(error);
                }
            }
        }
        outcomes
    }

    /// Kafka's checks of an OffsetCommit as a whole; returns the group's
    /// offsets partition.
    fn admit_commit(self: &Rc<Self>, p: &CommitParams) -> Result<Rc<OffsetsLog>, GroupError> {
        let log = self.serves(&p.group_id)?;
        if p.group_id.len() > GROUP_ID_BYTES_MAX {
            return Err(GroupError::InvalidGroupId);
        }
        let checked = self.step(&p.group_id, |step, slot| {
            step.check_commit(
                &mut slot.group,
                p.generation_id,
                &p.member_id,
                p.instance_id.as_deref(),
            )
        });
        match checked {
            Some(checked) => checked.map(|()| log),
            None if p.generation_id >= 0 => Err(GroupError::IllegalGeneration),
            None => {
                // Offsets stored for a group that does not use group
                // management: the group exists from now on, Empty.
                self.slot_or_create(&mut self.groups.borrow_mut(), &p.group_id)?;
                Ok(log)
            }
        }
    }

    /// OffsetFetch: the committed offsets of `topics` (all of the group's
    /// when `None`).
    pub fn fetch(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchedOffsets, GroupError> {
        self.serves(group_id)?;
        let groups = self.groups.borrow();
        Ok(committed_offsets(
            groups.get(group_id).map(|s| &s.group),
            topics,
        ))
    }

    /// OffsetDelete: removes committed offsets of partitions the group
    /// does not consume. Fails as a whole, or answers each partition.
    pub async fn offset_delete(
        self: &Rc<Self>,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<DeletedOffsets, GroupError> {
        let log = self.serves(group_id)?;
        let (answer, doomed) = {
            let groups = self.groups.borrow();
            plan_deletion(groups.get(group_id).map(|s| &s.group), topics)?
        };
        if doomed.is_empty() {
            return Ok(answer);
        }
        let kvs = persistence::offset_tombstones(group_id, &doomed);
        let pending = log
            .append(move || Ok(kvs))
            .await
            .map_err(|e| GroupError::storing_offsets(&e))?;
        let base = pending.as_ref().map_or(0, |p| p.base_offset);
        if let Some(slot) = self.groups.borrow_mut().get_mut(group_id) {
            forget_offsets(&mut slot.group, &doomed, base);
        }
        drop(pending);
        Ok(answer)
    }

    /// offsets.retention.minutes: offsets of a group empty for that long
    /// (by commit time for group-less commits, and for topics a stable
    /// consumer group no longer subscribes to) are deleted; an empty group
    /// left without offsets is deleted.
    pub(super) async fn expire_offsets(self: &Rc<Self>) {
        let now = self.now_ms();
        let retention_ms = self.config.offsets_retention_ms;
        let plans: Vec<Expiry> = self
            .groups
            .borrow()
            .values()
            .filter_map(|s| expiry(&s.group, now, retention_ms))
            .collect();
        for plan in plans {
            let Some(log) = self.log_for(&plan.group_id) else {
                continue;
            };
            let mut kvs = persistence::offset_tombstones(&plan.group_id, &plan.offsets);
            if plan.drop_group {
                kvs.push(persistence::group_tombstone(&plan.group_id));
            }
            match log.append(move || Ok(kvs)).await {
                Ok(pending) => {
                    let base = pending.as_ref().map_or(0, |p| p.base_offset);
                    let mut groups = self.groups.borrow_mut();
                    if let Some(slot) = groups.get_mut(&plan.group_id) {
                        let g = &mut slot.group;
                        forget_offsets(g, &plan.offsets, base);
                        info!(group = %plan.group_id, offsets = plan.offsets.len(), "committed offsets expired");
                        if plan.drop_group
                            && g.state == GroupState::Empty
                            && g.members.is_empty()
                            && g.offsets.is_empty()
                        {
                            groups.remove(&plan.group_id);
                            info!(group = %plan.group_id, "empty group without offsets removed");
                        }
                    }
                    drop(pending);
                }
                Err(e) => warn!(group = %plan.group_id, "expiring offsets: {e}"),
            }
        }
    }
}

/// One offset of a commit: refused if its partition does not exist or its
/// metadata is too long, else the value to store.
fn accept(o: CommitOffset, metadata_max: usize, now_ms: i64) -> Result<Accepted, GroupError> {
    if !o.exists {
        return Err(GroupError::UnknownTopicOrPartition);
    }
    let metadata = o.metadata.unwrap_or_default();
    if metadata.len() > metadata_max {
        return Err(GroupError::OffsetMetadataTooLarge);
    }
    let value = OffsetValue {
        offset: o.offset,
        leader_epoch: o.leader_epoch,
        metadata,
        commit_timestamp_ms: now_ms,
    };
    Ok(((o.topic, o.partition), value))
}

/// Applies commits whose records were written from `base` on, one record
/// each, unless a later record of the same partition is applied already.
fn record_commits(group: &mut Group, accepted: impl Iterator<Item = Accepted>, base: i64) {
    for (k, (key, value)) in accepted.enumerate() {
        let at = base + k as i64;
        if group.offsets.get(&key).is_none_or(|c| c.log_offset < at) {
            group.offsets.insert(
                key,
                Committed {
                    value,
                    log_offset: at,
                },
            );
        }
    }
}

/// Removes offsets whose tombstones were written from `base` on; a commit
/// made after the tombstone was written stays.
fn forget_offsets(group: &mut Group, offsets: &[(String, i32)], base: i64) {
    for tp in offsets {
        if group.offsets.get(tp).is_some_and(|c| c.log_offset < base) {
            group.offsets.remove(tp);
        }
    }
}

/// The committed offsets of `topics`, or all of the group's (by topic
/// name, then partition) when `None`. A group that does not exist has none.
fn committed_offsets(
    group: Option<&Group>,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> FetchedOffsets {
    let committed = |t: &str, p: i32| {
        group
            .and_then(|g| g.offsets.get(&(t.to_string(), p)))
            .map(|c| c.value.clone())
    };
    if let Some(topics) = topics {
        return topics
            .into_iter()
            .map(|(t, parts)| {
                let ps = parts.into_iter().map(|p| (p, committed(&t, p))).collect();
                (t, ps)
            })
            .collect();
    }
    let mut by_topic: BTreeMap<String, Vec<(i32, Option<OffsetValue>)>> = BTreeMap::new();
    for ((t, p), c) in group.iter().flat_map(|g| &g.offsets) {
        by_topic
            .entry(t.clone())
            .or_default()
            .push((*p, Some(c.value.clone())));
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_by_key(|(p, _)| *p);
            (t, ps)
        })
        .collect()
}

/// Kafka's rules for an OffsetDelete: the group must exist; only an empty
/// group, or a consumer group for topics it does not subscribe to, gives
/// offsets up. Returns each partition's answer and the offsets to delete.
fn plan_deletion(
    group: Option<&Group>,
    topics: Vec<(String, Vec<i32>)>,
) -> Result<(DeletedOffsets, Vec<(String, i32)>), GroupError> {
    let group = match group {
        Some(g) if g.state != GroupState::Dead => g,
        _ => return Err(GroupError::GroupNotFound),
    };
    let consumer = group.protocol_type.as_deref() == Some("consumer");
    if group.state != GroupState::Empty && !consumer {
        return Err(GroupError::NonEmptyGroup);
    }
    let subscribed = |topic: &str| match &group.subscribed_topics {
        Some(ts) => ts.contains(topic),
        None => true,
    };
    let mut doomed = Vec::new();
    let answer = topics
        .into_iter()
        .map(|(t, parts)| {
            let blocked = group.state != GroupState::Empty && subscribed(&t);
            let ps = parts
                .into_iter()
                .map(|p| {
                    if blocked {
                        return (p, Err(GroupError::SubscribedToTopic));
                    }
                    if group.offsets.contains_key(&(t.clone(), p)) {
                        doomed.push((t.clone(), p));
                    }
                    (p, Ok(()))
                })
                .collect();
            (t, ps)
        })
        .collect();
    Ok((answer, doomed))
}

/// What an expiry pass at `now_ms` removes from `group`, if anything.
fn expiry(group: &Group, now_ms: i64, retention_ms: i64) -> Option<Expiry> {
    // When an offset's retention starts: once the group is empty (by commit
    // time for a group-less commit); never while the group is active.
    let retained_since = |c: &Committed| -> Option<i64> {
        match (group.state, group.protocol_type.as_deref()) {
            (GroupState::Empty, Some(_)) => {
                Some(group.state_since_ms.max(c.value.commit_timestamp_ms))
            }
            (GroupState::Empty, None) => Some(c.value.commit_timestamp_ms),
            (
                GroupState::PreparingRebalance
                | GroupState::CompletingRebalance
                | GroupState::Stable
                | GroupState::Dead,
                _,
            ) => None,
        }
    };
    let offsets: Vec<(String, i32)> = group
        .offsets
        .iter()
        .filter(|((t, _), c)| {
            let stale_topic = group.state == GroupState::Stable
                && group
                    .subscribed_topics
                    .as_ref()
                    .is_some_and(|s| !s.contains(t))
                && c.value.commit_timestamp_ms + retention_ms <= now_ms;
            stale_topic || retained_since(c).is_some_and(|b| b + retention_ms <= now_ms)
        })
        .map(|(tp, _)| tp.clone())
        .collect();
    let drop_group = group.state == GroupState::Empty
        && group.members.is_empty()
        && group.pending_members.is_empty()
        && offsets.len() == group.offsets.len();
    (!offsets.is_empty() || drop_group).then(|| Expiry {
        group_id: group.id.clone(),
        offsets,
        drop_group,
    })
}
