//! The metadata image: what the committed records of the metadata log say
//! about the cluster, rebuilt on every node by applying them in order.
//!
//! Records are shardlog's own (kafka-protocol has no KRaft metadata
//! records), JSON in the Raft entries' data, named after Kafka's:
//! `RegisterBroker`, `FenceBroker`, `UnfenceBroker`. A broker's epoch is
//! the offset of its registration record, as in Kafka. Applying is a pure
//! function of the image and the record, so every node that applied the
//! same prefix holds the same image.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node a broker process serves clients as: in per-shard listener
/// mode, one per shard (`node.id` + shard), each on its own port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
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
}

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
}

impl MetadataImage {
    pub fn new() -> Self {
        MetadataImage {
            brokers: BTreeMap::new(),
            offset: -1,
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
}
