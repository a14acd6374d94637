//! The cluster metadata every shard holds a copy of: topics, their
//! partitions' owning shards, topic config overrides, dynamic broker
//! configs. Shard 0 (the controller) changes it, persists it as JSON in the
//! data directory, and broadcasts the new version to every shard.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::controller::{refuse, AdminError, AdminFault};
use crate::replication::election::PartitionState;

pub const METADATA_FILE: &str = "shardlog-metadata.json";

/// Kafka's longest topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// The owner of a partition another broker of the cluster leads.
pub const REMOTE: usize = usize::MAX;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Kafka's topic id (a UUID), as 32 hex digits.
    pub id: String,
    /// partitions[i] is the shard that owns partition i ([`REMOTE`] where
    /// another broker of the cluster leads it). In the cluster-wide view a
    /// controller changes, the leader's node id.
    pub partitions: Vec<usize>,
    /// In a cluster, each partition's replicas, ISR, leader (a node id,
    /// -1 for none) and epochs, as the metadata image has them; empty on a
    /// single node, where the owning shard leads at
    /// [`crate::partition::LEADER_EPOCH`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<PartitionState>,
    /// Topic config overrides, by Kafka topic config name.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::parse_str(&self.id).unwrap_or_default()
    }

    /// Partition `index`'s leader epoch: the cluster's, or on a single
    /// node [`crate::partition::LEADER_EPOCH`].
    pub fn leader_epoch(&self, index: usize) -> i32 {
        self.states
            .get(index)
            .map_or(crate::partition::LEADER_EPOCH, |s| s.leader_epoch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    /// Bumped on every change.
    pub version: u64,
    pub cluster_id: String,
    /// Producer ids below this have been handed out.
    pub next_producer_id: i64,
    pub topics: BTreeMap<String, TopicMeta>,
    /// Cluster-wide dynamic broker configs (AlterConfigs on BROKER
    /// resource ""): topic defaults by topic config name (retention.ms for
    /// log.retention.ms), other keys by their broker key.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, String>,
    /// Set once this node takes its topics from a cluster's metadata
    /// quorum; the version of the quorum's image they came from.
    #[serde(default)]
    pub cluster: bool,
    #[serde(default)]
    pub image_version: u64,
    /// And its leadership version (elections since).
    #[serde(default)]
    pub image_leadership_version: u64,
    /// In a cluster, the node leading each `__consumer_offsets` partition
    /// (empty until placed, and on a single node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offsets_owners: Vec<i32>,
    /// Group configs (IncrementalAlterConfigs on GROUP resources), by
    /// group id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Per-broker dynamic configs (AlterConfigs on BROKER resource "N"),
    /// by node id, keyed as `broker_configs` is.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// The authorizer's ACLs (CreateAcls/DeleteAcls), in the set's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<crate::security::acl::StoredAcl>,
    /// SCRAM credentials (salted; never passwords), from
    /// `shardlog format --add-scram` and AlterUserScramCredentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scram: Vec<crate::security::credentials::ScramEntry>,
}

impl ClusterMetadata {
    pub fn new() -> Self {
        ClusterMetadata {
            version: 0,
            cluster_id: new_cluster_id(),
            next_producer_id: 0,
            topics: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
            cluster: false,
            image_version: 0,
            image_leadership_version: 0,
            offsets_owners: Vec::new(),
            group_configs: BTreeMap::new(),
            node_configs: BTreeMap::new(),
            acls: Vec::new(),
            scram: Vec::new(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("metadata serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Loads the metadata from `data_dir`, or starts new metadata.
    pub fn load(data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join(METADATA_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Self::decode(&bytes).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Total partitions over all topics.
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// Picks owners for `n` new partitions among `candidates` (shards, or
    /// node ids in a cluster): each goes to the candidate owning the fewest
    /// partitions so far (the earliest on ties).
    pub fn place(&self, candidates: &[usize], n: usize) -> Vec<usize> {
        assert!(!candidates.is_empty(), "at least one candidate");
        let mut counts = vec![0usize; candidates.len()];
        for t in self.topics.values() {
            for owner in &t.partitions {
                if let Some(i) = candidates.iter().position(|c| c == owner) {
                    counts[i] += 1;
                }
            }
        }
        (0..n)
            .map(|_| {
                let (i, _) = counts
                    .iter()
                    .enumerate()
                    .min_by_key(|&(i, c)| (*c, i))
                    .expect("at least one candidate");
                counts[i] += 1;
                candidates[i]
            })
            .collect()
    }

    /// Remaps owners past the shard count (the broker restarted with fewer
    /// shards than it had).
    pub fn fit_to_shards(&mut self, shards: usize) -> bool {
        let mut changed = false;
        for t in self.topics.values_mut() {
            for s in &mut t.partitions {
                if *s >= shards && *s != REMOTE {
                    *s %= shards;
                    changed = true;
                }
            }
        }
        changed
    }
}

impl Default for ClusterMetadata {
    fn default() -> Self {
        Self::new()
    }
}

/// Kafka's cluster id: 16 random bytes in URL-safe base64 without padding.
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

pub fn new_topic_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Kafka's topic name rules: 1-249 characters of `[a-zA-Z0-9._-]`, not `.`
/// or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let fail = |why: String| Err(refuse(AdminFault::InvalidTopic, why));
    if name.is_empty() {
        return fail("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return fail("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return fail(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return fail(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Kafka refuses a topic whose name differs from an existing one only by
/// '.' versus '_' (their metric names would collide).
pub fn collides_with(existing: &str, name: &str) -> bool {
    existing != name && existing.replace('.', "_") == name.replace('.', "_")
}

/// Internal topics (none yet; consumer offsets arrive with groups).
pub fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

pub type SharedMetadata = Arc<ClusterMetadata>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(collides_with("a.b", "a_b"));
        assert!(!collides_with("a.b", "a.b"));
    }

    #[test]
    fn balanced_placement_and_round_trip() {
        let mut m = ClusterMetadata::new();
        assert_eq!(m.cluster_id.len(), 22);
        let p = m.place(&[0, 1, 2], 4);
        assert_eq!(p, vec![0, 1, 2, 0]);
        m.topics.insert(
            "t".into(),
            TopicMeta {
                id: new_topic_id(),
                partitions: p,
                states: Vec::new(),
                configs: BTreeMap::new(),
            },
        );
        assert_eq!(m.place(&[0, 1, 2], 2), vec![1, 2]);
        // Node ids as candidates (a cluster): the least loaded first.
        assert_eq!(m.place(&[1000, 0, 2000], 3), vec![1000, 2000, 1000]);
        let back = ClusterMetadata::decode(&m.encode()).unwrap();
        assert_eq!(back, m);
        assert!(m.fit_to_shards(2));
        assert_eq!(m.topics["t"].partitions, vec![0, 1, 0, 0]);
    }
}
