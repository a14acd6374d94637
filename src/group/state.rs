//! A group's state as the classic protocol defines it: members, generation,
//! the chosen protocol and leader, committed offsets. Plain data plus the
//! rules that need no I/O (protocol choice, join completeness, what
//! DescribeGroups shows); the state machine in `membership.rs` drives the
//! transitions. Lives on the coordinating shard.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;

use super::records::{GroupValue, OffsetValue, StoredMember};
use super::{DescribedMember, GroupDescription, Joined, JoinedMember, ListedGroup, Synced};

/// A request parked until its group gets there (a JoinGroup waiting for
/// the rebalance, a SyncGroup for the leader's assignment). The async
/// layer keeps the request's reply channel under this number, so the
/// state itself holds no channels and can be stepped in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Kafka's group states, with the names DescribeGroups and ListGroups use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join before the next generation.
    PreparingRebalance,
    /// The generation is chosen; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Being deleted.
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Set while the member's JoinGroup waits for the rebalance.
    pub join_waiter: Option<Ticket>,
    /// Set while the member's SyncGroup waits for the leader's assignment.
    pub sync_waiter: Option<Ticket>,
    pub last_heartbeat_ms: i64,
}

impl Member {
    pub fn metadata_bytes(&self) -> usize {
        self.protocols.iter().map(|(n, m)| n.len() + m.len()).sum()
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }
}

/// A committed offset and where its record is in the offsets log (a
/// later record for the same partition always wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub value: OffsetValue,
    pub log_offset: i64,
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub state_since_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// By member id; BTreeMap so choices (a new leader) are deterministic.
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    /// Ordered sets here and below, so that a step's effects come out in
    /// the same order every time.
    pub pending_members: BTreeSet<String>,
    /// Members of the current generation that have not sent SyncGroup.
    pub pending_sync: BTreeSet<String>,
    /// While the first rebalance of an empty group waits
    /// group.initial.rebalance.delay.ms (extended while members arrive):
    /// how much of the rebalance timeout is left for further extensions.
    pub initial_delay: Option<i64>,
    pub new_member_added: bool,
    /// Topics the members subscribe to (consumer protocol), if known.
    pub subscribed_topics: Option<HashSet<String>>,
    pub offsets: HashMap<(String, i32), Committed>,
    /// The group record last written to the offsets log; compaction copies
    /// it forward.
    pub stored: Option<GroupValue>,
}

impl Group {
    pub fn new(id: String, now_ms: i64) -> Self {
        Group {
            id,
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: BTreeSet::new(),
            pending_sync: BTreeSet::new(),
            initial_delay: None,
            new_member_added: false,
            subscribed_topics: None,
            offsets: HashMap::new(),
            stored: None,
        }
    }

    pub fn transition(&mut self, to: GroupState, now_ms: i64) {
        self.state = to;
        self.state_since_ms = now_ms;
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Whether `instance_id` belongs to a member other than `member_id`.
    pub fn is_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|i| self.static_members.get(i))
            .is_some_and(|owner| owner != member_id)
    }

    /// Summed protocol metadata of the members.
    pub fn metadata_bytes(&self) -> usize {
        self.members.values().map(Member::metadata_bytes).sum()
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut out: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in members {
            out.retain(|p| m.protocols.iter().any(|(n, _)| n == p));
        }
        out
    }

    /// Whether a member with these protocols may join (Kafka's
    /// supportsProtocols): same protocol type, and at least one protocol
    /// in common with every member.
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    /// The protocol for the next generation: among those every member
    /// supports, the one most members list first (ties: the earliest in
    /// the candidates' order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let best = votes.iter().enumerate().max_by(|a, b| {
            a.1.cmp(b.1).then(b.0.cmp(&a.0)) // more votes, then earlier
        })?;
        candidates.get(best.0).cloned()
    }

    /// Every member has rejoined and no member id handed out is still
    /// to be used: the rebalance can complete.
    pub fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(Member::is_awaiting_join)
    }

    /// The largest rebalance timeout of the members.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// The record of this group as of now.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol_name.clone();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Recomputes the subscribed topics from the members' metadata for the
    /// chosen protocol (consumer protocol only).
    pub fn refresh_subscribed_topics(&mut self) {
        self.subscribed_topics = match (&self.protocol_type, &self.protocol_name) {
            (Some(t), Some(p)) if t == "consumer" => {
                let mut all = HashSet::new();
                let mut known = true;
                for m in self.members.values() {
                    match super::consumer_protocol::subscribed_topics(&m.metadata_for(p)) {
                        Some(ts) => all.extend(ts),
                        None => known = false,
                    }
                }
                known.then_some(all)
            }
            _ => None,
        };
    }

    /// The members as the leader's JoinGroup response lists them.
    pub fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    /// The current generation as a JoinGroup response gives it to
    /// `member_id`, with `members` (the leader's list, or none).
    pub fn joined(&self, member_id: &str, members: Vec<JoinedMember>) -> Joined {
        Joined {
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    /// A SyncGroup response handing out `assignment`.
    pub fn synced(&self, assignment: Bytes) -> Synced {
        Synced {
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The group as DescribeGroups shows it: metadata and assignments
    /// only once Stable, as in Kafka.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let shown = |b: &Bytes| if stable { b.clone() } else { Bytes::new() };
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state.name(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: self
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: shown(&m.metadata_for(&protocol)),
                    assignment: shown(&m.assignment),
                })
                .collect(),
        }
    }

    /// The group as ListGroups shows it.
    pub fn listed(&self) -> ListedGroup {
        ListedGroup {
            group_id: self.id.clone(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            state: self.state.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            last_heartbeat_ms: 0,
        }
    }

    // Proves protocol choice follows Kafka's vote among the protocols all
    // members support, and that a member sharing none is refused.
    #[test]
    fn protocol_vote_and_support() {
        let mut g = Group::new("g".into(), 0);
        assert!(g.supports("consumer", &[("range".into(), Bytes::new())]));
        assert!(!g.supports("", &[("range".into(), Bytes::new())]));
        g.protocol_type = Some("consumer".into());
        g.members
            .insert("a".into(), member("a", &["cooperative-sticky", "range"]));
        g.members
            .insert("b".into(), member("b", &["range", "roundrobin"]));
        g.members
            .insert("c".into(), member("c", &["range", "cooperative-sticky"]));
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
        assert!(!g.supports("consumer", &[("roundrobin".into(), Bytes::new())]));
        assert!(!g.supports("connect", &[("range".into(), Bytes::new())]));
        assert!(g.supports("consumer", &[("range".into(), Bytes::new())]));
        assert!(!g.all_joined());
    }
}
