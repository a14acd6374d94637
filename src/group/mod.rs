//! The group coordinator: consumer groups as Kafka's classic protocol
//! defines them (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), and their
//! committed offsets (OffsetCommit, OffsetFetch, OffsetDelete).
//!
//! Placement. A group belongs to one partition of the internal offsets log,
//! `abs(javaHashCode(group id)) % offsets.topic.num.partitions` (Kafka's
//! rule), and offsets partition `p` belongs to shard `p % shards`. That
//! shard is the group's coordinator: it holds the group's state in plain
//! `Rc`/`RefCell` fields and runs its timers; handlers on other shards
//! forward group requests to it, and in per-shard listener mode
//! FindCoordinator sends clients to its node. Because the partition count is
//! fixed when the log is first created (it is recorded in the data
//! directory), a group's records stay in the same partition when the
//! broker restarts with a different number of shards; only the shard that
//! opens the partition changes.
//!
//! Durability. Commits and group metadata are records in the offsets log
//! (see [`records`]), written through the storage engine and acknowledged
//! only once fdatasync'd. Startup replays each partition from its log start
//! offset to rebuild the tables. Compaction keeps the replay short: when a
//! partition's appended bytes since the last compaction exceed the live
//! state, the live state (each group's last stored record and its committed
//! offsets) is appended again and the log start moves to the first copied
//! record, which deletes the whole segments behind it.
//!
//! Protocol. Members join with MEMBER_ID_REQUIRED on a first JoinGroup v4+
//! (they rejoin with the id handed out), static members (group.instance.id)
//! keep their place across restarts and fence older instances, the first
//! rebalance of an empty group waits group.initial.rebalance.delay.ms for
//! more members, a rebalance waits at most the members' largest
//! rebalance.timeout.ms for them to rejoin (then drops the dynamic ones that
//! did not), the leader's SyncGroup is stored before anyone receives an
//! assignment, members that do not sync within the rebalance timeout are
//! removed, and a member that stops heartbeating is removed after its
//! session.timeout.ms, which starts a rebalance that moves its partitions.
//! Incremental (cooperative) rebalancing needs nothing more from the
//! coordinator: the clients revoke only what moves and rejoin at once.
//!
//! Limits. group.max.size members per group (members still being given an
//! id count too), shardlog.groups.max groups per broker,
//! shardlog.group.metadata.max.bytes of protocol metadata per group, and
//! offset.metadata.max.bytes per commit. Each group's timers only touch
//! that group, so a member joining in a loop or never heartbeating costs
//! its own group a rebalance, never another group's progress.
//!
//! Files. `membership.rs` is the protocol's state machine, one group at a
//! time: given the time, it changes the group's state (`state.rs`) and
//! says what must happen (answers, timers, writes) without doing any of
//! it, so its tests step time by hand. `coordinator.rs` is the thin async
//! layer that runs it: the shard's groups, their parked requests, glommio
//! timers (`timers.rs`) and writes to the offsets log. `offsets.rs` holds
//! committed offsets (commit, fetch, delete, expiry); `persistence.rs` is
//! the offsets log (append, replay, compaction) and the only file here
//! that calls the storage engine. Refusals are [`GroupError`]s;
//! `handler/errors.rs` decides their Kafka error codes.

pub mod consumer_protocol;
mod coordinator;
mod error;
mod membership;
mod offsets;
mod persistence;
pub mod records;
mod state;
mod timers;
mod wire;

pub use coordinator::Coordinator;
pub use error::GroupError;
pub use persistence::{StoreError, OFFSETS_TOPIC};
pub use records::OffsetValue;
pub use state::GroupState;

use bytes::Bytes;

/// Longest group id accepted (INVALID_GROUP_ID beyond). Kafka has no
/// limit; group ids are held in memory and in every record of the group.
pub const GROUP_ID_BYTES_MAX: usize = 1024;

/// The file in the data directory that records the offsets log's
/// partition count once it exists.
pub const PARTITIONS_FILE: &str = "__consumer_offsets.partitions";

/// The offsets log partition of a group: Kafka's
/// `abs(groupId.hashCode()) % partitions`, with Java's String hash over
/// UTF-16 code units, so a group lands where Kafka would put it.
pub fn offsets_partition_for(group_id: &str, partitions: usize) -> usize {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs as usize % partitions.max(1)
}

/// The shard that owns offsets partition `partition`.
pub fn shard_for_offsets_partition(partition: usize, shards: usize) -> usize {
    partition % shards.max(1)
}

/// The shard that coordinates `group_id`.
pub fn coordinator_shard(group_id: &str, partitions: usize, shards: usize) -> usize {
    shard_for_offsets_partition(offsets_partition_for(group_id, partitions), shards)
}

/// The offsets log's partition count: the one recorded in `data_dir` if
/// the log exists (Kafka never changes an existing topic's partition
/// count), else `configured`, which is recorded.
pub fn resolve_offsets_partitions(
    data_dir: &std::path::Path,
    configured: usize,
) -> Result<usize, String> {
    let path = data_dir.join(PARTITIONS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let n: usize = text
                .trim()
                .parse()
                .map_err(|_| format!("{}: not a partition count", path.display()))?;
            if n == 0 {
                return Err(format!("{}: zero partitions", path.display()));
            }
            if n != configured {
                tracing::warn!(
                    existing = n,
                    configured,
                    "offsets.topic.num.partitions differs from the existing offsets log; keeping {n}"
                );
            }
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::storage::fsutil::write_file_durably_blocking(
                data_dir,
                PARTITIONS_FILE,
                format!("{configured}\n").as_bytes(),
            )
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(configured)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A JoinGroup.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub group_id: String,
    /// Empty for a member's first join.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED and an id.
    pub require_known_member_id: bool,
}

impl JoinParams {
    /// The protocol names and metadata together, as the group's
    /// shardlog.group.metadata.max.bytes counts them.
    pub fn metadata_bytes(&self) -> usize {
        self.protocols.iter().map(|(n, m)| n.len() + m.len()).sum()
    }
}

/// A member as the leader's JoinGroup response lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A JoinGroup's answer: the generation joined, or why not.
pub type JoinResult = Result<Joined, JoinError>;

/// A generation as a JoinGroup response gives it to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
}

/// A refused JoinGroup: why, and the member id its response carries (the
/// id handed out with MEMBER_ID_REQUIRED, else the member's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    pub error: GroupError,
    pub member_id: String,
}

impl JoinError {
    pub fn new(error: GroupError, member_id: &str) -> Self {
        JoinError {
            error,
            member_id: member_id.to_string(),
        }
    }
}

/// A SyncGroup.
#[derive(Debug, Clone)]
pub struct SyncParams {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    /// SyncGroup v5+: checked against the group's when given.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup's answer: the member's assignment, or why not.
pub type SyncResult = Result<Synced, GroupError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// One partition of an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// Whether the partition exists (the handler checks the metadata).
    pub exists: bool,
}

/// An OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitParams {
    pub group_id: String,
    /// -1: a commit from outside group management (simple consumers,
    /// admin tools).
    pub generation_id: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub offsets: Vec<CommitOffset>,
}

/// Committed offsets by topic: (partition, committed offset if any).
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<OffsetValue>)>)>;

/// An OffsetDelete's outcome by topic: (partition, its outcome).
pub type DeletedOffsets = Vec<(String, Vec<(i32, Result<(), GroupError>)>)>;

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

impl GroupDescription {
    /// A group that does not exist: Kafka describes it as Dead.
    pub fn unknown(group_id: &str) -> Self {
        GroupDescription {
            group_id: group_id.to_string(),
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }
    }
}

/// A group as the metrics endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub group_id: String,
    pub state: &'static str,
    pub members: usize,
    /// Committed offsets as (topic, partition, offset), sorted.
    pub offsets: Vec<(String, i32, i64)>,
}

#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves the group-to-partition rule matches Kafka's (Java's
    // String.hashCode, abs, modulo), including a hash of i32::MIN.
    #[test]
    fn kafka_partition_rule() {
        // "a".hashCode() = 97; "Aa" and "BB" collide at 2112.
        assert_eq!(offsets_partition_for("a", 50), 97 % 50);
        assert_eq!(offsets_partition_for("Aa", 50), 2112 % 50);
        assert_eq!(offsets_partition_for("BB", 50), 2112 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(offsets_partition_for("polygenelubricants", 50), 0);
        // "hello world".hashCode() = 1794106052; "my-group" hashes to
        // -1906497762, whose absolute value is taken.
        assert_eq!(offsets_partition_for("my-group", 50), 12);
        assert_eq!(offsets_partition_for("hello world", 50), 1794106052 % 50);
        assert_eq!(shard_for_offsets_partition(7, 2), 1);
        assert_eq!(coordinator_shard("a", 50, 1), 0);
    }
}
