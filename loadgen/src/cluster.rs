//! Finding the cluster: the topic's partitions and their leaders
//! (Metadata), creating the topic (CreateTopics), and where consumers start
//! (ListOffsets). All of it on the control plane, before the run starts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::{kafka_error_name, Error};
use crate::wire::control::Connection;

const METADATA_KEY: i16 = 3;
const LIST_OFFSETS_KEY: i16 = 2;
const CREATE_TOPICS_KEY: i16 = 19;
/// How long a created topic may take to show leaders for every partition.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC_ALREADY_EXISTS: i16 = 36;
const NOT_CONTROLLER: i16 = 41;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;

/// ListOffsets' special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// The topic as the run sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Broker node id -> HOST:PORT.
    pub brokers: BTreeMap<i32, String>,
    /// Leader node of each partition (index = partition).
    pub leaders: Vec<i32>,
    /// Where consumers start, per partition (empty when nothing consumes).
    pub start_offsets: Vec<i64>,
}

impl Plan {
    pub fn partitions(&self) -> usize {
        self.leaders.len()
    }

    pub fn address(&self, node: i32) -> &str {
        &self.brokers[&node]
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

async fn metadata(conn: &mut Connection, topic: &str) -> Result<MetadataResponse, Error> {
    let version = conn.version(METADATA_KEY, "Metadata", (1, 12))?;
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(str_bytes(topic)));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    conn.call(&req, version).await
}

/// Leaders of every partition, or None while some partition has none (a
/// topic being created). Errors if the topic is missing.
fn leaders(md: &MetadataResponse, topic: &str) -> Result<Option<Vec<i32>>, i16> {
    let Some(t) = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| &*n.0) == Some(topic))
    else {
        return Err(UNKNOWN_TOPIC_OR_PARTITION);
    };
    if t.error_code == LEADER_NOT_AVAILABLE {
        return Ok(None);
    }
    if t.error_code != 0 {
        return Err(t.error_code);
    }
    if t.partitions.is_empty() {
        return Ok(None);
    }
    let mut leaders = vec![-1; t.partitions.len()];
    for p in &t.partitions {
        let i = p.partition_index as usize;
        if i >= leaders.len() {
            return Ok(None);
        }
        leaders[i] = p.leader_id.0;
    }
    if leaders
        .iter()
        .any(|&l| l < 0 || !md.brokers.iter().any(|b| b.node_id.0 == l))
    {
        return Ok(None);
    }
    Ok(Some(leaders))
}

async fn create_topic(
    conn: &mut Connection,
    cfg: &crate::Config,
    controller: Option<String>,
) -> Result<(), Error> {
    let mut target;
    let conn = match controller {
        Some(addr) if addr != conn.addr => {
            target = Connection::connect(&addr, &cfg.client_id, cfg.request_timeout()).await?;
            &mut target
        }
        _ => conn,
    };
    let version = conn.version(CREATE_TOPICS_KEY, "CreateTopics", (2, 7))?;
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(str_bytes(&cfg.topic));
    topic.num_partitions = cfg.partitions;
    // -1 (the broker's default) needs CreateTopics v4.
    topic.replication_factor = if cfg.replication_factor < 0 && version < 4 {
        1
    } else {
        cfg.replication_factor
    };
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![topic];
    req.timeout_ms = cfg.request_timeout_ms.min(i32::MAX as u64) as i32;
    let resp = conn.call(&req, version).await?;
    for t in &resp.topics {
        match t.error_code {
            0 | TOPIC_ALREADY_EXISTS => {}
            NOT_CONTROLLER => return Err(Error::Broker("CreateTopics: NOT_CONTROLLER".into())),
            code => {
                return Err(Error::Broker(format!(
                    "creating topic {}: {} {}",
                    cfg.topic,
                    kafka_error_name(code),
                    t.error_message.as_deref().unwrap_or("")
                )))
            }
        }
    }
    Ok(())
}

/// Looks the topic up (creating it when asked), then, if the workload
/// consumes, where each partition's consumer starts.
pub async fn prepare(cfg: &crate::Config) -> Result<Plan, Error> {
    let mut conn =
        Connection::connect(&cfg.bootstrap, &cfg.client_id, cfg.request_timeout()).await?;
    let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
    let mut created = false;
    let (md, leaders) = loop {
        let md = metadata(&mut conn, &cfg.topic).await?;
        match leaders(&md, &cfg.topic) {
            Ok(Some(l)) => break (md, l),
            Ok(None) => {}
            Err(UNKNOWN_TOPIC_OR_PARTITION) if cfg.create && !created => {
                let controller = md
                    .brokers
                    .iter()
                    .find(|b| b.node_id == md.controller_id && md.controller_id != BrokerId(-1))
                    .map(|b| format!("{}:{}", b.host, b.port));
                match create_topic(&mut conn, cfg, None).await {
                    Err(Error::Broker(m)) if m.contains("NOT_CONTROLLER") => {
                        create_topic(&mut conn, cfg, controller).await?
                    }
                    other => other?,
                }
                created = true;
            }
            Err(UNKNOWN_TOPIC_OR_PARTITION) if !created => {
                return Err(Error::Broker(format!(
                    "topic {} does not exist (use --create)",
                    cfg.topic
                )))
            }
            Err(UNKNOWN_TOPIC_OR_PARTITION) => {}
            Err(code) => {
                return Err(Error::Broker(format!(
                    "metadata for {}: {}",
                    cfg.topic,
                    kafka_error_name(code)
                )))
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Broker(format!(
                "topic {} has no leader for every partition after {TOPIC_READY_TIMEOUT:?}",
                cfg.topic
            )));
        }
        glommio::timer::sleep(Duration::from_millis(100)).await;
    };
    let brokers: BTreeMap<i32, String> = md
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let mut plan = Plan {
        brokers,
        leaders,
        start_offsets: Vec::new(),
    };
    if cfg.consumes() {
        let at = match (cfg.workload, cfg.from) {
            (crate::Workload::Consume, crate::config::StartFrom::Earliest) => EARLIEST,
            _ => LATEST,
        };
        plan.start_offsets = list_offsets(&plan, cfg, at).await?;
    }
    Ok(plan)
}

/// Each partition's offset at `timestamp` (LATEST or EARLIEST), asking
/// each partition's leader.
pub async fn list_offsets(
    plan: &Plan,
    cfg: &crate::Config,
    timestamp: i64,
) -> Result<Vec<i64>, Error> {
    let mut offsets = vec![-1i64; plan.partitions()];
    for (&node, addr) in &plan.brokers {
        let parts: Vec<i32> = (0..plan.partitions() as i32)
            .filter(|&p| plan.leaders[p as usize] == node)
            .collect();
        if parts.is_empty() {
            continue;
        }
        let mut conn = Connection::connect(addr, &cfg.client_id, cfg.request_timeout()).await?;
        let version = conn.version(LIST_OFFSETS_KEY, "ListOffsets", (1, 7))?;
        let mut topic = ListOffsetsTopic::default();
        topic.name = TopicName(str_bytes(&cfg.topic));
        topic.partitions = parts
            .iter()
            .map(|&p| {
                let mut lp = ListOffsetsPartition::default();
                lp.partition_index = p;
                lp.timestamp = timestamp;
                lp
            })
            .collect();
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![topic];
        let resp = conn.call(&req, version).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(Error::Broker(format!(
                        "ListOffsets {}-{}: {}",
                        cfg.topic,
                        p.partition_index,
                        kafka_error_name(p.error_code)
                    )));
                }
                if let Some(o) = offsets.get_mut(p.partition_index as usize) {
                    *o = p.offset;
                }
            }
        }
    }
    if let Some(p) = offsets.iter().position(|&o| o < 0) {
        return Err(Error::Broker(format!(
            "ListOffsets gave no offset for partition {p}"
        )));
    }
    Ok(offsets)
}
