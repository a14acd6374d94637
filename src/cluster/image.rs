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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::replication::election::{ElectRefused, ElectionKind, PartitionState};

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
        /// It asks to be unfenced itself (an `UnfenceBroker` of its own
        /// registration) once it holds this registration; the quorum
        /// leader unfences on liveness only brokers that registered
        /// without it (older versions).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        self_unfence: bool,
    },
    /// The controller stopped hearing from it: it leads nothing.
    FenceBroker { broker_id: i32, epoch: i64 },
    /// It is shutting down (SIGTERM, Kafka's controlled shutdown): fenced
    /// as by `FenceBroker`, its leadership moved to other in-sync
    /// replicas, and not unfenced again until it registers anew.
    ControlledShutdown { broker_id: i32, epoch: i64 },
    /// It is back (or newly registered and caught up).
    UnfenceBroker { broker_id: i32, epoch: i64 },
    /// A partition leader's ISR change (Kafka's AlterPartition), applied
    /// only if it comes from the current leader at the current leader and
    /// partition epochs and adds only live replicas.
    AlterPartition {
        topic: String,
        topic_id: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// ElectLeaders (an admin's request, or the quorum leader's automatic
    /// leader rebalancing): each named partition elects by Kafka's rules
    /// for `election` as it stands when the record applies; partitions
    /// where that elects nobody are left as they are.
    ElectLeaders {
        election: ElectionKind,
        partitions: Vec<ElectPartition>,
    },
    /// Topic changes made together, against image version
    /// `expected_version`; `token` names the attempt.
    Change {
        expected_version: u64,
        token: String,
        changes: Vec<TopicChange>,
    },
}

/// A partition named in an `ElectLeaders` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectPartition {
    pub topic: String,
    pub topic_id: String,
    pub partition: i32,
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
        /// Each partition's replicas (node ids, the preferred leader
        /// first); it starts led by the first, all in sync.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replicas: Vec<Vec<i32>>,
        /// Records written before replicas were listed: each partition's
        /// only replica.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        /// As in `CreateTopic`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        replicas: Vec<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
#[serde(from = "StoredTopic")]
pub struct TopicImage {
    pub id: String,
    /// Each partition's replicas, ISR, leader and epochs.
    pub partitions: Vec<PartitionState>,
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    /// The node leading each partition (-1: none).
    pub fn leaders(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.leader).collect()
    }

    /// Whether an out-of-sync replica may be elected
    /// (`unclean.leader.election.enable`: the topic's, else the cluster's
    /// dynamic default, else Kafka's default, false). Taken only from the
    /// metadata so that every node applying a fence elects alike.
    fn unclean(&self, broker_configs: &BTreeMap<String, String>) -> bool {
        let key = "unclean.leader.election.enable";
        self.configs
            .get(key)
            .or_else(|| broker_configs.get(key))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// A topic as images are stored: snapshots written before replicas were
/// recorded hold each partition's only replica in `owners`.
#[derive(Deserialize)]
struct StoredTopic {
    id: String,
    #[serde(default)]
    partitions: Vec<PartitionState>,
    #[serde(default)]
    owners: Vec<i32>,
    configs: BTreeMap<String, String>,
}

impl From<StoredTopic> for TopicImage {
    fn from(t: StoredTopic) -> Self {
        let partitions = if t.partitions.is_empty() {
            new_partitions(&[], &t.owners)
        } else {
            t.partitions
        };
        TopicImage {
            id: t.id,
            partitions,
            configs: t.configs,
        }
    }
}

/// New partitions from a record's replica lists, or from its owners (one
/// replica each) when it was written before replicas were listed.
fn new_partitions(replicas: &[Vec<i32>], owners: &[i32]) -> Vec<PartitionState> {
    if replicas.is_empty() {
        owners
            .iter()
            .map(|&o| PartitionState::new(vec![o]))
            .collect()
    } else {
        replicas
            .iter()
            .map(|r| PartitionState::new(r.clone()))
            .collect()
    }
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
    /// In controlled shutdown: stays fenced until a new registration.
    #[serde(default)]
    pub shutting_down: bool,
    /// It asks to be unfenced itself (see `RegisterBroker`).
    #[serde(default)]
    pub self_unfence: bool,
}

impl BrokerRegistration {
    /// Its client nodes' ids (one endpoint per node and listener).
    pub fn node_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.endpoints.iter().map(|e| e.node_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
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
    /// Records whose elections changed a partition's leader or ISR (a
    /// fence, an unfence, a re-registration): nodes adopt the image when
    /// this or `version` moves.
    #[serde(default)]
    pub leadership_version: u64,
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
                replicas,
                owners,
                configs,
            } => {
                self.topics
                    .entry(name.clone())
                    .or_insert_with(|| TopicImage {
                        id: id.clone(),
                        partitions: new_partitions(replicas, owners),
                        configs: configs.clone(),
                    });
            }
            TopicChange::DeleteTopic { name, id } => {
                if self.topics.get(name).is_some_and(|t| &t.id == id) {
                    self.topics.remove(name);
                }
            }
            TopicChange::AddPartitions {
                name,
                id,
                replicas,
                owners,
            } => {
                if let Some(t) = self.topics.get_mut(name).filter(|t| &t.id == id) {
                    t.partitions.extend(new_partitions(replicas, owners));
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
                self_unfence,
            } => {
                // The same incarnation again (a registration proposed twice
                // while the first was in flight) changes nothing.
                if self
                    .brokers
                    .get(broker_id)
                    .is_some_and(|b| &b.incarnation == incarnation)
                {
                    return;
                }
                let replaced = self.brokers.insert(
                    *broker_id,
                    BrokerRegistration {
                        broker_id: *broker_id,
                        incarnation: incarnation.clone(),
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        epoch: offset,
                        fenced: true,
                        shutting_down: false,
                        self_unfence: *self_unfence,
                    },
                );
                // A new incarnation of a running broker fences the old one
                // (Kafka's re-registration): what it led elects anew.
                if let Some(old) = replaced.filter(|b| !b.fenced) {
                    self.elect_after(&old.node_ids(), true);
                }
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
            MetadataRecord::AlterPartition {
                topic,
                topic_id,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let alive = self.live_nodes();
                let Some(state) = self
                    .topics
                    .get_mut(topic)
                    .filter(|t| &t.id == topic_id)
                    .and_then(|t| t.partitions.get_mut(*partition as usize))
                else {
                    return;
                };
                let request = crate::replication::leader::AlterIsr {
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                    isr: isr.iter().copied().collect(),
                };
                if state.alter_isr(&request, &|n| alive.contains(&n)).is_ok() {
                    self.leadership_version += 1;
                }
            }
            MetadataRecord::ElectLeaders {
                election,
                partitions,
            } => {
                let alive = self.live_nodes();
                let mut changed = false;
                for e in partitions {
                    if let Some(state) = self
                        .topics
                        .get_mut(&e.topic)
                        .filter(|t| t.id == e.topic_id)
                        .and_then(|t| t.partitions.get_mut(e.partition as usize))
                    {
                        changed |= state
                            .elect_leader(*election, &|n| alive.contains(&n))
                            .is_ok();
                    }
                }
                if changed {
                    self.leadership_version += 1;
                }
            }
            MetadataRecord::ControlledShutdown { broker_id, epoch } => {
                let Some(b) = self.brokers.get_mut(broker_id) else {
                    return;
                };
                if b.epoch != *epoch || b.shutting_down {
                    return;
                }
                b.shutting_down = true;
                let was_fenced = std::mem::replace(&mut b.fenced, true);
                let nodes = b.node_ids();
                if !was_fenced {
                    self.elect_after(&nodes, true);
                }
            }
            MetadataRecord::FenceBroker { broker_id, epoch }
            | MetadataRecord::UnfenceBroker { broker_id, epoch } => {
                let fence = matches!(record, MetadataRecord::FenceBroker { .. });
                let Some(b) = self.brokers.get_mut(broker_id) else {
                    return;
                };
                if b.epoch != *epoch || b.fenced == fence || (!fence && b.shutting_down) {
                    return;
                }
                b.fenced = fence;
                let nodes = b.node_ids();
                self.elect_after(&nodes, fence);
            }
        }
    }

    /// What an election of `kind` would do to `topic`'s `partition` now
    /// (the record may still find it changed when it applies); None: no
    /// such partition.
    pub fn try_elect(
        &self,
        kind: ElectionKind,
        topic: &str,
        partition: i32,
    ) -> Option<Result<(), ElectRefused>> {
        let mut state = usize::try_from(partition)
            .ok()
            .and_then(|i| self.topics.get(topic)?.partitions.get(i))?
            .clone();
        let alive = self.live_nodes();
        Some(state.elect_leader(kind, &|n| alive.contains(&n)))
    }

    /// The partitions led by another than their preferred replica while
    /// that one is live and in sync, as (topic, partition), by name.
    pub fn imbalanced(&self) -> Vec<ElectPartition> {
        let alive = self.live_nodes();
        let alive = |n: i32| alive.contains(&n);
        self.topics
            .iter()
            .flat_map(|(name, t)| {
                t.partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.imbalanced(&alive))
                    .map(|(i, _)| ElectPartition {
                        topic: name.clone(),
                        topic_id: t.id.clone(),
                        partition: i as i32,
                    })
            })
            .collect()
    }

    /// The node ids of unfenced brokers.
    fn live_nodes(&self) -> BTreeSet<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .flat_map(|b| b.node_ids())
            .collect()
    }

    /// A broker's nodes were fenced (`fenced`) or are back: fenced nodes
    /// leave the ISRs (all but a last member) and the partitions they led
    /// elect another leader; once back, partitions left without a leader
    /// elect one. Kafka's controller writes these elections as
    /// partition-change records in the fence's batch; here the fence
    /// record implies them, computed by the same pure rule on every node
    /// that applies it.
    fn elect_after(&mut self, nodes: &[i32], fenced: bool) {
        let alive = self.live_nodes();
        let alive = |n: i32| alive.contains(&n);
        let mut changed = false;
        for t in self.topics.values_mut() {
            let unclean = t.unclean(&self.broker_configs);
            for p in &mut t.partitions {
                for &n in nodes {
                    changed |= if fenced {
                        p.on_fenced(n, &alive, unclean)
                    } else {
                        p.on_unfenced(n, &alive, unclean)
                    };
                }
            }
        }
        if changed {
            self.leadership_version += 1;
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
            self_unfence: true,
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
        // The same incarnation registering again changes nothing.
        image.apply(2, &register(1, "a"));
        assert!(!image.brokers[&1].fenced);
        assert_eq!(image.brokers[&1].epoch, 0);
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

    fn unfence(id: i32, epoch: i64) -> MetadataRecord {
        MetadataRecord::UnfenceBroker {
            broker_id: id,
            epoch,
        }
    }

    fn fence(id: i32, epoch: i64) -> MetadataRecord {
        MetadataRecord::FenceBroker {
            broker_id: id,
            epoch,
        }
    }

    /// Topic "t" created (as the image's first change) with these replicas.
    fn create_t(replicas: Vec<Vec<i32>>, configs: BTreeMap<String, String>) -> MetadataRecord {
        change(
            0,
            "c",
            vec![TopicChange::CreateTopic {
                name: "t".into(),
                id: "id".into(),
                replicas,
                owners: Vec::new(),
                configs,
            }],
        )
    }

    /// (leader, leader epoch, partition epoch, ISR) of partition `p` of
    /// topic "t".
    fn state(image: &MetadataImage, p: usize) -> (i32, i32, i32, Vec<i32>) {
        let s = &image.topics["t"].partitions[p];
        (s.leader, s.leader_epoch, s.partition_epoch, s.isr.clone())
    }

    #[test]
    fn fencing_a_broker_elects_leaders_for_what_it_led() {
        let mut image = MetadataImage::new();
        image.apply(0, &register(1, "a"));
        image.apply(1, &register(2, "a"));
        image.apply(2, &unfence(1, 0));
        image.apply(3, &unfence(2, 1));
        image.apply(
            4,
            &create_t(vec![vec![1], vec![2], vec![2, 1]], BTreeMap::new()),
        );
        assert_eq!(image.topics["t"].leaders(), vec![1, 2, 2]);
        assert_eq!(state(&image, 2), (2, 0, 0, vec![2, 1]));
        // Broker 2 fenced: its only replica keeps the ISR and has no
        // leader; the two-replica partition fails over to 1.
        image.apply(5, &fence(2, 1));
        assert_eq!(state(&image, 1), (-1, 1, 1, vec![2]));
        assert_eq!(state(&image, 2), (1, 1, 1, vec![1]));
        assert_eq!(state(&image, 0), (1, 0, 0, vec![1]));
        assert_eq!(image.leadership_version, 1);
        // The same fence again changes nothing.
        image.apply(6, &fence(2, 1));
        assert_eq!(state(&image, 1), (-1, 1, 1, vec![2]));
        assert_eq!(image.leadership_version, 1);
        // Back: it leads its own partition again in a new epoch; the other
        // stays with 1 (2 is out of its ISR until the leader adds it).
        image.apply(7, &unfence(2, 1));
        assert_eq!(state(&image, 1), (2, 2, 2, vec![2]));
        assert_eq!(state(&image, 2), (1, 1, 1, vec![1]));
        // A restart (a new registration while unfenced) fences the old
        // incarnation; the new one is unfenced by its own epoch.
        image.apply(8, &register(1, "b"));
        assert_eq!(state(&image, 0), (-1, 1, 1, vec![1]));
        assert_eq!(state(&image, 2), (-1, 2, 2, vec![1]));
        image.apply(9, &unfence(1, 0));
        assert_eq!(state(&image, 0).0, -1, "a stale unfence is ignored");
        image.apply(10, &unfence(1, 8));
        assert_eq!(state(&image, 0), (1, 2, 2, vec![1]));
        assert_eq!(state(&image, 2), (1, 3, 3, vec![1]));
        let snapshot = serde_json::to_vec(&image).unwrap();
        let back: MetadataImage = serde_json::from_slice(&snapshot).unwrap();
        assert_eq!(back, image);
    }

    #[test]
    fn a_controlled_shutdown_moves_leadership_and_stays_fenced_until_a_new_registration() {
        let mut image = MetadataImage::new();
        image.apply(0, &register(1, "a"));
        image.apply(1, &register(2, "a"));
        image.apply(2, &unfence(1, 0));
        image.apply(3, &unfence(2, 1));
        image.apply(4, &create_t(vec![vec![1, 2], vec![1]], BTreeMap::new()));
        let shutdown = MetadataRecord::ControlledShutdown {
            broker_id: 1,
            epoch: 0,
        };
        assert_eq!(
            MetadataRecord::decode(&shutdown.encode()),
            Some(shutdown.clone())
        );
        image.apply(5, &shutdown);
        assert_eq!(state(&image, 0), (2, 1, 1, vec![2]));
        assert_eq!(state(&image, 1), (-1, 1, 1, vec![1]));
        assert!(image.brokers[&1].fenced && image.brokers[&1].shutting_down);
        // Still heard from while it stops: not unfenced.
        image.apply(6, &unfence(1, 0));
        assert!(image.brokers[&1].fenced);
        // Restarted: a new registration, unfenced as usual.
        image.apply(7, &register(1, "b"));
        image.apply(8, &unfence(1, 7));
        assert!(!image.brokers[&1].fenced && !image.brokers[&1].shutting_down);
        assert_eq!(state(&image, 1).0, 1);
    }

    #[test]
    fn elect_leaders_moves_leadership_back_to_the_preferred_replica() {
        let mut image = MetadataImage::new();
        for (i, id) in [1, 2].iter().enumerate() {
            image.apply(2 * i as i64, &register(*id, "a"));
            image.apply(2 * i as i64 + 1, &unfence(*id, 2 * i as i64));
        }
        image.apply(4, &create_t(vec![vec![1, 2], vec![2, 1]], BTreeMap::new()));
        assert!(image.imbalanced().is_empty());
        // 1 fenced and back: 2 leads both, 1 rejoins the ISR.
        image.apply(5, &fence(1, 0));
        image.apply(6, &unfence(1, 0));
        assert!(image.imbalanced().is_empty(), "1 is not in sync yet");
        let t = &image.topics["t"];
        let alter = MetadataRecord::AlterPartition {
            topic: "t".into(),
            topic_id: t.id.clone(),
            partition: 0,
            leader: 2,
            leader_epoch: 1,
            partition_epoch: t.partitions[0].partition_epoch,
            isr: vec![1, 2],
        };
        image.apply(7, &alter);
        let imbalanced = image.imbalanced();
        assert_eq!(imbalanced.len(), 1);
        assert_eq!(
            image.try_elect(ElectionKind::Preferred, "t", 0),
            Some(Ok(()))
        );
        assert_eq!(
            image.try_elect(ElectionKind::Preferred, "t", 1),
            Some(Err(ElectRefused::NotNeeded))
        );
        assert_eq!(image.try_elect(ElectionKind::Preferred, "t", 2), None);
        let elect = MetadataRecord::ElectLeaders {
            election: ElectionKind::Preferred,
            partitions: imbalanced,
        };
        assert_eq!(MetadataRecord::decode(&elect.encode()), Some(elect.clone()));
        let version = image.leadership_version;
        image.apply(8, &elect);
        assert_eq!(state(&image, 0), (1, 2, 3, vec![1, 2]));
        assert_eq!(image.leadership_version, version + 1);
        // Applied again: nothing to do.
        image.apply(9, &elect);
        assert_eq!(state(&image, 0), (1, 2, 3, vec![1, 2]));
        assert_eq!(image.leadership_version, version + 1);
    }

    #[test]
    fn unclean_election_follows_the_topic_config() {
        let mut image = MetadataImage::new();
        for (i, id) in [1, 2].iter().enumerate() {
            image.apply(2 * i as i64, &register(*id, "a"));
            image.apply(2 * i as i64 + 1, &unfence(*id, 2 * i as i64));
        }
        let configs: BTreeMap<String, String> =
            [("unclean.leader.election.enable".to_string(), "true".into())].into();
        image.apply(4, &create_t(vec![vec![1, 2]], configs));
        // 2 leaves the ISR when fenced; once back, 1 fails: with unclean
        // election 2 leads, alone in the ISR.
        image.apply(5, &fence(2, 2));
        image.apply(6, &unfence(2, 2));
        assert_eq!(state(&image, 0), (1, 0, 1, vec![1]));
        image.apply(7, &fence(1, 0));
        assert_eq!(state(&image, 0), (2, 1, 2, vec![2]));
    }

    #[test]
    fn images_and_records_from_before_replicas_read_as_one_replica_each() {
        let old_record = r#"{"type":"Change","expected_version":0,"token":"a","changes":[
            {"change":"CreateTopic","name":"t","id":"x","owners":[3,4],"configs":{}},
            {"change":"AddPartitions","name":"t","id":"x","owners":[5]}]}"#;
        let mut image = MetadataImage::new();
        image.apply(0, &MetadataRecord::decode(old_record.as_bytes()).unwrap());
        assert_eq!(image.topics["t"].leaders(), vec![3, 4, 5]);
        assert_eq!(image.topics["t"].partitions[2].replicas, vec![5]);
        // A registration from before brokers asked to be unfenced: the
        // quorum leader unfences it on liveness.
        let old_register = r#"{"type":"RegisterBroker","broker_id":9,"incarnation":"i","endpoints":[],"rack":null}"#;
        image.apply(1, &MetadataRecord::decode(old_register.as_bytes()).unwrap());
        assert!(!image.brokers[&9].self_unfence);
        image.apply(2, &register(8, "j"));
        assert!(image.brokers[&8].self_unfence);
        let old_topic = r#"{"id":"x","owners":[7],"configs":{"a":"b"}}"#;
        let t: TopicImage = serde_json::from_str(old_topic).unwrap();
        assert_eq!(t.partitions, vec![PartitionState::new(vec![7])]);
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
            replicas: vec![vec![1], vec![2]],
            owners: Vec::new(),
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
                        replicas: vec![vec![3]],
                        owners: Vec::new(),
                    },
                    TopicChange::ProducerIds { next: 1000 },
                ],
            ),
        );
        assert_eq!(image.topics["t"].leaders(), vec![1, 2, 3]);
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
