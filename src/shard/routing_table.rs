//! The routing table: for every partition of every topic, a compact
//! [`PartitionId`] and the shard that owns it (Redpanda's `shard_table`).
//!
//! Each shard builds its own copy from each metadata version it applies, so
//! a lookup touches only shard-local memory. Ids are dense: the partitions
//! of the topics in name order, numbered from 0. They index the owning
//! shard's partition slots directly, so after the one lookup by topic name
//! at the door nothing is looked up by string again.
//!
//! Ids are only meaningful within one metadata version (a new topic shifts
//! the ids of the topics after it). A job carries the metadata its ids were
//! resolved against; a shard on another version translates them through
//! the topic name ([`RoutingTable::translate`]), which is rare (a request
//! racing a topic change) and never wrong.

use std::collections::HashMap;

use super::metadata::{ClusterMetadata, SharedMetadata};

/// Why a partition named by a request could not be reached. The Kafka code
/// each one maps to is decided in `handler::errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No such topic, or no such partition of it.
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// The shard the table names does not hold the partition (it is being
    /// opened or deleted by a metadata change in flight).
    #[error("the partition is not served by the shard the routing table names")]
    NotServedHere,
    /// The owning shard stopped (shutdown) before answering.
    #[error("the owning shard has stopped")]
    ShardGone,
    /// Another broker of the cluster leads the partition.
    #[error("another broker leads the partition")]
    NotLeader,
    /// The connection's principal may not do this to the topic (or, for
    /// a follower's request, to the cluster).
    #[error("not authorized")]
    Unauthorized,
}

/// A partition, as an index into the routing table of one metadata
/// version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(u32);

impl PartitionId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A topic's partitions in the table: ids `first..first + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicRoute {
    first: u32,
    count: u32,
}

impl TopicRoute {
    /// The id of partition `partition` of this topic, if it has one.
    pub fn partition(self, partition: i32) -> Option<PartitionId> {
        let p = u32::try_from(partition).ok()?;
        (p < self.count).then_some(PartitionId(self.first + p))
    }

    /// The topic's compact id in this table (its first partition's).
    pub fn key(self) -> u32 {
        self.first
    }

    pub fn partition_count(self) -> u32 {
        self.count
    }
}

/// Lives on one shard; every shard has its own.
pub struct RoutingTable {
    metadata: SharedMetadata,
    topics: HashMap<String, TopicRoute>,
    /// Owning shard of each partition, by id.
    owners: Vec<u16>,
    /// For each partition another broker leads: the shard of this broker
    /// holding a follower replica of it (`REMOTE_OWNER`: none), which may
    /// serve consumers' reads (KIP-392).
    replica_owners: Vec<u16>,
}

// Owners are stored as u16: more shards than that in one process is not a
// configuration this broker runs. u16::MAX marks a partition another
// broker leads (`metadata::REMOTE`).
const _: () = assert!(u16::MAX as usize >= 4096);
const REMOTE_OWNER: u16 = u16::MAX;

impl RoutingTable {
    /// The table of a node that holds no follower replicas (a single
    /// node).
    pub fn build(metadata: SharedMetadata) -> Self {
        Self::build_with(metadata, &|_| None)
    }

    /// The table; `local_shard` tells which of this broker's shards a
    /// node id is (None: another broker's).
    pub fn build_with(
        metadata: SharedMetadata,
        local_shard: &dyn Fn(i32) -> Option<usize>,
    ) -> Self {
        let mut topics = HashMap::with_capacity(metadata.topics.len());
        let mut owners = Vec::with_capacity(metadata.partition_count());
        let mut replica_owners = Vec::with_capacity(metadata.partition_count());
        for (name, topic) in &metadata.topics {
            let first = owners.len() as u32;
            owners.extend(topic.partitions.iter().map(|&s| {
                if s == super::metadata::REMOTE {
                    REMOTE_OWNER
                } else {
                    s as u16
                }
            }));
            replica_owners.extend((0..topic.partitions.len()).map(|i| {
                topic
                    .states
                    .get(i)
                    .and_then(|st| st.replicas.iter().find_map(|&r| local_shard(r)))
                    .map_or(REMOTE_OWNER, |s| s as u16)
            }));
            topics.insert(
                name.clone(),
                TopicRoute {
                    first,
                    count: topic.partitions.len() as u32,
                },
            );
        }
        RoutingTable {
            metadata,
            topics,
            owners,
            replica_owners,
        }
    }

    /// The metadata this table was built from.
    pub fn metadata(&self) -> &SharedMetadata {
        &self.metadata
    }

    pub fn version(&self) -> u64 {
        self.metadata.version
    }

    /// The one lookup by name.
    pub fn topic(&self, name: &str) -> Option<TopicRoute> {
        self.topics.get(name).copied()
    }

    /// The shard that owns `id` (meaningless where [`Self::is_remote`]).
    pub fn owner(&self, id: PartitionId) -> usize {
        usize::from(self.owners[id.index()])
    }

    /// Whether another broker of the cluster leads `id`.
    pub fn is_remote(&self, id: PartitionId) -> bool {
        self.owners[id.index()] == REMOTE_OWNER
    }

    /// The shard holding a follower replica of `id`, which another broker
    /// leads.
    pub fn replica_owner(&self, id: PartitionId) -> Option<usize> {
        let s = self.replica_owners[id.index()];
        (self.is_remote(id) && s != REMOTE_OWNER).then_some(usize::from(s))
    }

    /// The shard that serves `id` for a request that a follower replica
    /// may serve (`replica_reads`) or not: the owner, or else the local
    /// follower replica's shard; None: another broker's.
    pub fn serving_shard(&self, id: PartitionId, replica_reads: bool) -> Option<usize> {
        if !self.is_remote(id) {
            return Some(self.owner(id));
        }
        if replica_reads {
            self.replica_owner(id)
        } else {
            None
        }
    }

    /// Number of partition ids (all topics).
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Every id with its topic name and partition index, in id order.
    pub fn partitions(&self) -> impl Iterator<Item = (PartitionId, &str, i32)> + '_ {
        self.metadata
            .topics
            .iter()
            .scan(0u32, |next, (name, t)| {
                let first = *next;
                *next += t.partitions.len() as u32;
                Some(
                    (0..t.partitions.len() as u32)
                        .map(move |p| (PartitionId(first + p), name.as_str(), p as i32)),
                )
            })
            .flatten()
    }

    /// The id in this table of the partition that `id` names in `from`
    /// (another metadata version): `None` if that partition is gone.
    pub fn translate(&self, from: &ClusterMetadata, id: PartitionId) -> Option<PartitionId> {
        if from.version == self.version() {
            return Some(id);
        }
        let (name, partition) = locate(from, id)?;
        self.topic(name)?.partition(partition)
    }
}

/// The topic name and partition index of `id` in `metadata`.
fn locate(metadata: &ClusterMetadata, id: PartitionId) -> Option<(&str, i32)> {
    let mut first = 0u32;
    for (name, t) in &metadata.topics {
        let count = t.partitions.len() as u32;
        if id.0 < first + count {
            return Some((name, (id.0 - first) as i32));
        }
        first += count;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::shard::metadata::{new_topic_id, TopicMeta};

    fn with_topics(version: u64, topics: &[(&str, &[usize])]) -> ClusterMetadata {
        let mut md = ClusterMetadata::new();
        md.version = version;
        for (name, owners) in topics {
            md.topics.insert(
                name.to_string(),
                TopicMeta {
                    id: new_topic_id(),
                    partitions: owners.to_vec(),
                    states: Vec::new(),
                    configs: BTreeMap::new(),
                },
            );
        }
        md
    }

    // Proves ids are dense in topic-name order, index the owners, and
    // refuse partitions past the topic's count.
    #[test]
    fn ids_are_dense_and_name_ordered() {
        let t = RoutingTable::build(Arc::new(with_topics(1, &[("b", &[1, 0]), ("a", &[0])])));
        let a = t.topic("a").unwrap();
        let b = t.topic("b").unwrap();
        assert_eq!(a.partition(0), Some(PartitionId(0)));
        assert_eq!(b.partition(1), Some(PartitionId(2)));
        assert_eq!(b.partition(2), None);
        assert_eq!(b.partition(-1), None);
        assert_eq!(t.owner(PartitionId(1)), 1);
        assert_eq!(t.owner(PartitionId(2)), 0);
        assert!(t.topic("c").is_none());
        let all: Vec<_> = t.partitions().collect();
        assert_eq!(
            all,
            vec![
                (PartitionId(0), "a", 0),
                (PartitionId(1), "b", 0),
                (PartitionId(2), "b", 1)
            ]
        );
    }

    // Proves an id resolved against an older version is translated to the
    // same topic partition in a newer one, and a deleted one to nothing.
    #[test]
    fn translation_between_versions() {
        let old = with_topics(1, &[("b", &[0, 0]), ("c", &[0])]);
        let new = RoutingTable::build(Arc::new(with_topics(
            2,
            &[("a", &[0, 0, 0]), ("b", &[0, 0])],
        )));
        // b-1 was id 1, is now id 4.
        assert_eq!(new.translate(&old, PartitionId(1)), Some(PartitionId(4)));
        // c-0 was deleted.
        assert_eq!(new.translate(&old, PartitionId(2)), None);
        // Same version: unchanged.
        let same = with_topics(2, &[]);
        assert_eq!(new.translate(&same, PartitionId(7)), Some(PartitionId(7)));
    }
}
