//! The metadata image: what the committed records of the metadata log say
//! about the cluster, rebuilt on every node by applying them in order.
//!
//! Records are shardlog's own (kafka-protocol has no KRaft metadata
//! records), JSON in the Raft entries' data, named after Kafka's:
//! `RegisterBroker`, `FenceBroker`, `UnfenceBroker`, and `Change`, a group
//! of topic changes (`CreateTopic`, `DeleteTopic`, `AddPartitions`,
//! configs, producer ids, the cluster id) applied together, and only if
//! the image is still at the version the controller computed them from (a
//! compare-and-set: two controllers' concurrent changes cannot interleave;
//! the loser sees its token missing and computes again). A broker's epoch
//! is the offset of its registration record, as in Kafka. Applying is a
//! pure function of the image and the record, so every node that applied
//! the same prefix holds the same image.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// One node a broker process serves clients as, on one of its client
/// listeners: in per-shard listener mode, one per shard (`node.id` +
/// shard), each on its own port; a node has one endpoint per listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    /// The listener's name; empty in registrations written before
    /// listeners were named (such an endpoint serves every listener).
    #[serde(default)]
    pub listener: String,
}

impl Endpoint {
    /// Whether clients of the listener named `name` are told this address.
    pub fn on_listener(&self, name: &str) -> bool {
        self.listener.is_empty() || self.listener == name
    }
}

/// A metadata log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker process (re)registers: a new incarnation replaces the old
    /// one and starts fenced, as in Kafka.
    RegisterBroker {
        /// The process's `node.id` (its first node).
        broker_id: i32,
        /// A fresh id per process start.
        incarnation: String,
        /// Its client nodes.
        endpoints: Vec<Endpoint>,
        /// broker.rack.
        rack: Option<String>,
    },
    /// The controller stopped hearing from it: it leads nothing.
    FenceBroker { broker_id: i32, epoch: i64 },
    /// It is back (or newly registered and caught up).
    UnfenceBroker { broker_id: i32, epoch: i64 },
    /// Topic changes made together, against image version
    /// `expected_version`; `token` names the attempt.
    Change {
        expected_version: u64,
        token: String,
        changes: Vec<TopicChange>,
    },
}

/// One change of the cluster's topics and settings. Partition owners are
/// node ids (in per-shard mode, a broker's shard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change")]
pub enum TopicChange {
    SetClusterId {
        cluster_id: String,
    },
    CreateTopic {
        name: String,
        id: String,
        owners: Vec<i32>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
        id: String,
    },
    AddPartitions {
        name: String,
        id: String,
        owners: Vec<i32>,
    },
    SetTopicConfigs {
        name: String,
        id: String,
        configs: BTreeMap<String, String>,
    },
    /// Cluster-wide dynamic broker defaults.
    SetBrokerConfigs {
        configs: BTreeMap<String, String>,
    },
    /// Producer ids below `next` have been handed out.
    ProducerIds {
        next: i64,
    },
    /// The node leading each `__consumer_offsets` partition (and so
    /// coordinating its groups); set once, when groups are first used.
    PlaceOffsets {
        owners: Vec<i32>,
    },
    /// A group's configs (none: the group has no configs of its own).
    SetGroupConfigs {
        group: String,
        configs: BTreeMap<String, String>,
    },
    /// One broker's own dynamic configs (AlterConfigs on BROKER resource
    /// `node`; none: it has none of its own).
    SetNodeConfigs {
        node: i32,
        configs: BTreeMap<String, String>,
    },
    /// The whole set of ACLs after a CreateAcls or DeleteAcls.
    SetAcls {
        acls: Vec<crate::security::acl::StoredAcl>,
    },
    /// Every SCRAM credential after an AlterUserScramCredentials (or a
    /// node's import of its formatted ones).
    SetScram {
        credentials: Vec<crate::security::credentials::ScramEntry>,
    },
}

/// A topic as the cluster knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub id: String,
    /// The node leading each partition.
    pub owners: Vec<i32>,
    pub configs: BTreeMap<String, String>,
}

/// Tokens of the last changes applied, to tell a controller whether its
/// change won.
const RECENT_TOKENS: usize = 256;

impl MetadataRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Option<MetadataRecord> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A registered broker process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub incarnation: String,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    /// The offset of its registration record.
    pub epoch: i64,
    pub fenced: bool,
}

/// The cluster as the metadata log describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// The offset of the last record applied, -1 before any.
    pub offset: i64,
    /// Empty until the first leader sets it.
    pub cluster_id: String,
    pub topics: BTreeMap<String, TopicImage>,
    pub broker_configs: BTreeMap<String, String>,
    pub next_producer_id: i64,
    /// The node leading each `__consumer_offsets` partition; empty until
    /// placed.
    #[serde(default)]
    pub offsets_owners: Vec<i32>,
    /// Group configs, by group id.
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Per-broker dynamic configs, by node id.
    #[serde(default)]
    pub node_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// The authorizer's ACLs, every broker's.
    #[serde(default)]
    pub acls: Vec<crate::security::acl::StoredAcl>,
    /// SCRAM credentials, every broker's.
    #[serde(default)]
    pub scram: Vec<crate::security::credentials::ScramEntry>,
    /// Topic changes applied (each `Change` record counts one).
    pub version: u64,
    pub recent_tokens: VecDeque<String>,
}

impl MetadataImage {
    pub fn new() -> Self {
        MetadataImage {
            offset: -1,
            ..MetadataImage::default()
        }
    }

    /// Whether the change named `token` was applied (among the recent).
    pub fn applied_token(&self, token: &str) -> bool {
        self.recent_tokens.iter().any(|t| t == token)
    }

    /// The broker whose nodes include `node_id`.
    pub fn broker_of_node(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers
            .values()
            .find(|b| b.endpoints.iter().any(|e| e.node_id == node_id))
    }

    fn apply_change(&mut self, change: &TopicChange) {
        match change {
            TopicChange::SetClusterId { cluster_id } => self.cluster_id = cluster_id.clone(),
            TopicChange::CreateTopic {
                name,
                id,
                owners,
                configs,
            } => {
                self.topics
                    .entry(name.clone())
                    .or_insert_with(|| TopicImage {
                        id: id.clone(),
                        owners: owners.clone(),
                        configs: configs.clone(),
                    });
            }
            TopicChange::DeleteTopic { name, id } => {
                if self.topics.get(name).is_some_and(|t| &t.id == id) {
                    self.topics.remove(name);
                }
            }
            TopicChange::AddPartitions { name, id, owners } => {
                if let Some(t) = self.topics.get_mut(name).filter(|t| &t.id == id) {
                    t.owners.extend(owners.iter().copied());
                }
            }
            TopicChange::SetTopicConfigs { name, id, configs } => {
                if let Some(t) = self.topics.get_mut(name).filter(|t| &t.id == id) {
                    t.configs = configs.clone();
                }
            }
            TopicChange::SetBrokerConfigs { configs } => self.broker_configs = configs.clone(),
            TopicChange::ProducerIds { next } => {
                self.next_producer_id = self.next_producer_id.max(*next)
            }
            TopicChange::PlaceOffsets { owners } => {
                if self.offsets_owners.is_empty() {
                    self.offsets_owners = owners.clone();
                }
            }
            TopicChange::SetGroupConfigs { group, configs } => {
                if configs.is_empty() {
                    self.group_configs.remove(group);
                } else {
                    self.group_configs.insert(group.clone(), configs.clone());
                }
            }
            TopicChange::SetNodeConfigs { node, configs } => {
                if configs.is_empty() {
                    self.node_configs.remove(node);
                } else {
                    self.node_configs.insert(*node, configs.clone());
                }
            }
            TopicChange::SetAcls { acls } => self.acls = acls.clone(),
            TopicChange::SetScram { credentials } => self.scram = credentials.clone(),
        }
    }

    /// Applies the record at `offset`. Records that no longer fit (a fence
    /// for an older epoch) change nothing.
    pub fn apply(&mut self, offset: i64, record: &MetadataRecord) {
        self.offset = offset;
        match record {
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation,
                endpoints,
                rack,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        incarnation: incarnation.clone(),
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        epoch: offset,
                        fenced: true,
                    },
                );
            }
            MetadataRecord::Change {
                expected_version,
                token,
                changes,
            } => {
                // Computed against another version: a concurrent change
                // won; the controller that made this one computes again.
                if *expected_version != self.version {
                    return;
                }
                for c in changes {
                    self.apply_change(c);
                }
                self.version += 1;
                self.recent_tokens.push_back(token.clone());
                while self.recent_tokens.len() > RECENT_TOKENS {
                    self.recent_tokens.pop_front();
                }
            }
            MetadataRecord::FenceBroker { broker_id, epoch }
            | MetadataRecord::UnfenceBroker { broker_id, epoch } => {
                let fence = matches!(record, MetadataRecord::FenceBroker { .. });
                if let Some(b) = self.brokers.get_mut(broker_id) {
                    if b.epoch == *epoch {
                        b.fenced = fence;
                    }
                }
            }
        }
    }

    /// Moves the offset past an entry with no record (a new leader's empty
    /// entry).
    pub fn skip(&mut self, offset: i64) {
        self.offset = offset;
    }

    /// The client nodes of unfenced brokers, by node id.
    pub fn live_endpoints(&self) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = self
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .flat_map(|b| b.endpoints.iter().cloned())
            .collect();
        out.sort_by_key(|e| e.node_id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(id: i32, inc: &str) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker_id: id,
            incarnation: inc.to_string(),
            endpoints: vec![Endpoint {
                node_id: id,
                host: "127.0.0.1".into(),
                port: 9092,
                listener: "PLAINTEXT".into(),
            }],
            rack: None,
        }
    }

    #[test]
    fn registrations_start_fenced_and_stale_fences_are_ignored() {
        let mut image = MetadataImage::new();
        image.apply(0, &register(1, "a"));
        assert!(image.brokers[&1].fenced);
        assert!(image.live_endpoints().is_empty());
        image.apply(
            1,
            &MetadataRecord::UnfenceBroker {
                broker_id: 1,
                epoch: 0,
            },
        );
        assert_eq!(image.live_endpoints().len(), 1);
        // Re-registration (a restart) makes a new epoch; a fence for the
        // old one no longer applies.
        image.apply(2, &register(1, "b"));
        image.apply(
            3,
            &MetadataRecord::UnfenceBroker {
                broker_id: 1,
                epoch: 2,
            },
        );
        image.apply(
            4,
            &MetadataRecord::FenceBroker {
                broker_id: 1,
                epoch: 0,
            },
        );
        assert!(!image.brokers[&1].fenced);
        assert_eq!(image.offset, 4);
        let r = register(7, "x");
        assert_eq!(MetadataRecord::decode(&r.encode()), Some(r));
    }

    fn change(expected: u64, token: &str, changes: Vec<TopicChange>) -> MetadataRecord {
        MetadataRecord::Change {
            expected_version: expected,
            token: token.into(),
            changes,
        }
    }

    #[test]
    fn group_configs_are_set_and_removed() {
        let mut image = MetadataImage::new();
        let set = |configs: &[(&str, &str)]| TopicChange::SetGroupConfigs {
            group: "g".into(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        image.apply(
            0,
            &change(
                0,
                "a",
                vec![set(&[("consumer.session.timeout.ms", "50000")])],
            ),
        );
        assert_eq!(
            image.group_configs["g"]["consumer.session.timeout.ms"],
            "50000"
        );
        image.apply(1, &change(1, "b", vec![set(&[])]));
        assert!(image.group_configs.is_empty());
    }

    #[test]
    fn changes_apply_only_at_the_version_they_were_computed_against() {
        let mut image = MetadataImage::new();
        let create = |name: &str, id: &str| TopicChange::CreateTopic {
            name: name.into(),
            id: id.into(),
            owners: vec![1, 2],
            configs: BTreeMap::new(),
        };
        image.apply(0, &change(0, "a", vec![create("t", "id1")]));
        // A concurrent change computed against version 0 loses.
        image.apply(1, &change(0, "b", vec![create("t", "id2")]));
        assert_eq!(image.topics["t"].id, "id1");
        assert!(image.applied_token("a") && !image.applied_token("b"));
        image.apply(
            2,
            &change(
                1,
                "c",
                vec![
                    TopicChange::AddPartitions {
                        name: "t".into(),
                        id: "id1".into(),
                        owners: vec![3],
                    },
                    TopicChange::ProducerIds { next: 1000 },
                ],
            ),
        );
        assert_eq!(image.topics["t"].owners, vec![1, 2, 3]);
        assert_eq!(image.next_producer_id, 1000);
        // A delete naming an old id of the topic does nothing.
        image.apply(
            3,
            &change(
                2,
                "d",
                vec![TopicChange::DeleteTopic {
                    name: "t".into(),
                    id: "id0".into(),
                }],
            ),
        );
        assert!(image.topics.contains_key("t"));
        assert_eq!(image.version, 3);
        let snapshot = serde_json::to_vec(&image).unwrap();
        let back: MetadataImage = serde_json::from_slice(&snapshot).unwrap();
        assert_eq!(back, image);
    }
}
