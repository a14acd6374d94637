//! Followers fetching from their leaders (Kafka's replica fetcher), shard
//! to shard: the shard holding a follower replica runs one task per leader
//! node it follows, over one connection to that node's own address (in
//! per-shard mode, the leading shard's port), so replication crosses no
//! core inside either broker.
//!
//! Each round a task first settles the partitions that are new to it (or
//! whose leader epoch moved): it asks the leader where its own latest
//! epoch ends (OffsetForLeaderEpoch) and cuts its log there
//! ([`super::follower::truncation`], KIP-101/279), closing and reopening
//! the partition around the cut. Then it sends one Fetch with its replica
//! id for all of them, from each log end, and appends what comes back
//! byte for byte ([`Partition::append_replica`]); the leader counts each
//! fetch offset as that follower's log end.
//!
//! The ISR side runs on the leaders: [`isr_loop`] proposes the ISR changes
//! each led partition's [`super::leader::Leader`] asks for as
//! AlterPartition records, through the node's metadata proposer.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tracing::{debug, info, warn};

use super::follower::Truncation;
use super::NodeId;
use crate::cluster::MetadataRecord;
use crate::partition::Partition;
use crate::protocol::client;
use crate::record::BatchHeader;
use crate::shard::Shard;

/// How long a follower's fetch waits at the leader for new data.
const FETCH_WAIT_MS: i32 = 500;
/// The pause after a failed round (no connection, the leader not ready).
const BACKOFF: Duration = Duration::from_millis(200);
/// Connecting, and each answer beyond the fetch's own wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often leaders look at their ISR.
const ISR_CHECK: Duration = Duration::from_millis(250);
/// An AlterPartition unanswered this long is proposed again.
pub const ALTER_RETRY_MS: u64 = 2_000;

/// A partition this shard follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Follow {
    leader: NodeId,
    epoch: i32,
    /// Cut to the leader's log (for this leader and epoch).
    truncated: bool,
}

/// This shard's follower replicas, by (topic, partition).
#[derive(Default)]
pub struct Followers {
    partitions: RefCell<BTreeMap<(String, i32), Follow>>,
    /// Leaders a fetch task runs for.
    tasks: RefCell<BTreeSet<NodeId>>,
    /// Partitions closed for a cut: not to be opened meanwhile.
    truncating: RefCell<BTreeSet<(String, i32)>>,
}

impl Followers {
    /// Follows `leader` in `epoch` (a leader of -1: none yet, nothing to
    /// fetch). Returns whether a fetch task must be started for it.
    pub fn follow(&self, topic: &str, partition: i32, leader: NodeId, epoch: i32) -> bool {
        let key = (topic.to_string(), partition);
        let mut parts = self.partitions.borrow_mut();
        let same = parts
            .get(&key)
            .is_some_and(|f| f.leader == leader && f.epoch == epoch);
        if !same {
            parts.insert(
                key,
                Follow {
                    leader,
                    epoch,
                    truncated: false,
                },
            );
        }
        leader >= 0 && self.tasks.borrow_mut().insert(leader)
    }

    /// No longer follows the partition (it leads it, or it is gone).
    pub fn stop(&self, topic: &str, partition: i32) {
        self.partitions
            .borrow_mut()
            .remove(&(topic.to_string(), partition));
    }

    /// Forgets the partitions of topics `keep` says are gone.
    pub fn retain(&self, keep: impl Fn(&str, i32) -> bool) {
        self.partitions.borrow_mut().retain(|(t, p), _| keep(t, *p));
    }

    pub fn set_truncating(&self, topic: &str, partition: i32, on: bool) {
        let key = (topic.to_string(), partition);
        let mut set = self.truncating.borrow_mut();
        if on {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }

    pub fn is_truncating(&self, topic: &str, partition: i32) -> bool {
        self.truncating
            .borrow()
            .contains(&(topic.to_string(), partition))
    }

    fn of(&self, leader: NodeId) -> Vec<((String, i32), Follow)> {
        self.partitions
            .borrow()
            .iter()
            .filter(|(_, f)| f.leader == leader)
            .map(|(k, f)| (k.clone(), f.clone()))
            .collect()
    }

    fn current(&self, key: &(String, i32)) -> Option<Follow> {
        self.partitions.borrow().get(key).cloned()
    }

    fn mark_truncated(&self, key: &(String, i32), as_of: &Follow) {
        if let Some(f) = self.partitions.borrow_mut().get_mut(key) {
            if f.leader == as_of.leader && f.epoch == as_of.epoch {
                f.truncated = true;
            }
        }
    }

    fn mark_untruncated(&self, key: &(String, i32)) {
        if let Some(f) = self.partitions.borrow_mut().get_mut(key) {
            f.truncated = false;
        }
    }

    /// The task for `leader` ends unless partitions came for it meanwhile.
    fn task_may_end(&self, leader: NodeId) -> bool {
        if self
            .partitions
            .borrow()
            .values()
            .any(|f| f.leader == leader)
        {
            return false;
        }
        self.tasks.borrow_mut().remove(&leader);
        true
    }
}

/// One connection to a leader node, speaking Kafka.
struct Peer {
    stream: TcpStream,
    correlation: i32,
    addr: String,
}

impl Peer {
    async fn connect(addr: &str) -> Result<Peer, String> {
        let stream = TcpStream::connect_timeout(addr, REQUEST_TIMEOUT)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Peer {
            stream,
            correlation: 0,
            addr: addr.to_string(),
        })
    }

    async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
        wait: Duration,
    ) -> Result<Resp, String> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let frame = client::request_frame(key, version, correlation, "shardlog-replica", req)?;
        let addr = self.addr.clone();
        let exchange = async {
            self.stream
                .write_all(&frame)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            self.stream
                .flush()
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            let mut size = [0u8; 4];
            self.stream
                .read_exact(&mut size)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            let mut body = vec![0u8; client::response_size(size, key)?];
            self.stream
                .read_exact(&mut body)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            client::decode_response(Bytes::from(body), key, version, correlation)
        };
        let expired = async {
            glommio::timer::sleep(wait + REQUEST_TIMEOUT).await;
            Err(format!("{}: no answer to {key:?}", self.addr))
        };
        futures_lite::future::or(exchange, expired).await
    }
}

/// The listener replicas fetch over: `inter.broker.listener.name`, else
/// PLAINTEXT, else the first client listener.
fn replication_listener(shard: &Shard) -> Option<&crate::config::ClientListener> {
    let listeners = &shard.config.client_listeners;
    let named = shard
        .config
        .kafka_static
        .get("inter.broker.listener.name")
        .map(String::as_str)
        .unwrap_or("PLAINTEXT");
    listeners
        .iter()
        .find(|l| l.name == named)
        .or_else(|| listeners.first())
}

/// The address of node `leader` on the replication listener.
fn leader_address(shard: &Shard, leader: NodeId) -> Option<String> {
    let name = replication_listener(shard)?.name.clone();
    let image = shard.image.get()?.read().expect("image lock");
    let broker = image.broker_of_node(leader)?;
    let e = broker
        .endpoints
        .iter()
        .find(|e| e.node_id == leader && e.on_listener(&name))?;
    Some(format!("{}:{}", e.host, e.port))
}

/// Starts the fetch task for `leader` on this shard.
pub fn start(shard: &Rc<Shard>, leader: NodeId) {
    let shard = shard.clone();
    glommio::spawn_local(async move { follow_leader(shard, leader).await }).detach();
}

async fn follow_leader(shard: Rc<Shard>, leader: NodeId) {
    let me = shard.node_of_shard(shard.id);
    if replication_listener(&shard)
        .is_some_and(|l| l.protocol != crate::config::kraft::SecurityProtocol::Plaintext)
    {
        warn!(
            leader,
            "replication needs a PLAINTEXT listener for brokers to fetch over (inter.broker.listener.name); none here: followers stay behind"
        );
    }
    let mut peer: Option<Peer> = None;
    let mut backoff = false;
    loop {
        if shard.is_shutting_down() {
            return;
        }
        if backoff {
            glommio::timer::sleep(BACKOFF).await;
        }
        backoff = true;
        let follows = shard.followers.of(leader);
        if follows.is_empty() {
            if shard.followers.task_may_end(leader) {
                debug!(leader, "no partitions left to follow");
                return;
            }
            continue;
        }
        if peer.is_none() {
            let Some(addr) = leader_address(&shard, leader) else {
                continue;
            };
            match Peer::connect(&addr).await {
                Ok(p) => peer = Some(p),
                Err(e) => {
                    debug!(leader, "connecting to the leader: {e}");
                    continue;
                }
            }
        }
        let p = peer.as_mut().expect("connected");
        let unsettled: Vec<_> = follows.iter().filter(|(_, f)| !f.truncated).collect();
        let round = if unsettled.is_empty() {
            fetch_round(&shard, p, me, &follows).await
        } else {
            truncate_round(&shard, p, me, &unsettled).await
        };
        match round {
            Ok(progress) => backoff = !progress,
            Err(e) => {
                debug!(leader, "replica fetch: {e}");
                peer = None;
            }
        }
    }
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// The local partition `key`, unless it is closed for a cut.
fn local(shard: &Shard, key: &(String, i32)) -> Option<Rc<Partition>> {
    shard.replica(&key.0, key.1)
}

/// Asks the leader where each partition's latest local epoch ends and cuts
/// there. Returns whether every answer was usable.
async fn truncate_round(
    shard: &Rc<Shard>,
    peer: &mut Peer,
    me: NodeId,
    follows: &[&((String, i32), Follow)],
) -> Result<bool, String> {
    let mut asked = Vec::new();
    let mut topics: BTreeMap<String, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for (key, follow) in follows {
        let Some(p) = local(shard, key) else {
            continue;
        };
        let Some(latest) = p.latest_epoch() else {
            // An empty log has nothing to cut.
            shard.followers.mark_truncated(key, follow);
            continue;
        };
        topics.entry(key.0.clone()).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(key.1)
                .with_current_leader_epoch(follow.epoch)
                .with_leader_epoch(latest),
        );
        asked.push((key.clone(), follow.clone()));
    }
    if asked.is_empty() {
        return Ok(true);
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(me))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(topic_name(&t))
                        .with_partitions(parts)
                })
                .collect(),
        );
    let response: OffsetForLeaderEpochResponse = peer
        .call(ApiKey::OffsetForLeaderEpoch, 4, &request, Duration::ZERO)
        .await?;
    let mut all = true;
    for t in response.topics {
        let name = t.topic.0.to_string();
        for r in t.partitions {
            let key = (name.clone(), r.partition);
            let Some((_, follow)) = asked.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            if shard.followers.current(&key).as_ref() != Some(follow) || r.error_code != 0 {
                all = false;
                continue;
            }
            let Some(p) = local(shard, &key) else {
                continue;
            };
            match p.truncation(r.leader_epoch, r.end_offset) {
                Truncation::Retry => all = false,
                Truncation::To { offset, done } => {
                    let end = p.offsets().log_end_offset;
                    if offset >= end {
                        // Nothing to cut, but an epoch this replica led
                        // without writing (it starts at the log end) goes,
                        // or it would be asked about again and again.
                        p.forget_epochs_from(offset);
                    }
                    drop(p);
                    if offset < end {
                        info!(
                            topic = %key.0,
                            partition = key.1,
                            from = end,
                            to = offset,
                            leader_epoch = follow.epoch,
                            "truncating the follower's log to the leader's"
                        );
                        if let Err(e) = shard.truncate_replica(&key.0, key.1, offset).await {
                            warn!(topic = %key.0, partition = key.1, "truncating: {e}");
                            all = false;
                            continue;
                        }
                    }
                    if done {
                        shard.followers.mark_truncated(&key, follow);
                    }
                }
            }
        }
    }
    Ok(all)
}

/// One Fetch for every settled partition; appends what comes back.
/// Returns whether the round went through without a partition error.
async fn fetch_round(
    shard: &Rc<Shard>,
    peer: &mut Peer,
    me: NodeId,
    follows: &[((String, i32), Follow)],
) -> Result<bool, String> {
    let mut topics: BTreeMap<String, Vec<FetchPartition>> = BTreeMap::new();
    let mut sent = Vec::new();
    for (key, follow) in follows {
        let Some(p) = local(shard, key) else {
            continue;
        };
        let offsets = p.offsets();
        topics.entry(key.0.clone()).or_default().push(
            FetchPartition::default()
                .with_partition(key.1)
                .with_current_leader_epoch(follow.epoch)
                .with_fetch_offset(offsets.log_end_offset)
                .with_log_start_offset(offsets.log_start_offset)
                .with_partition_max_bytes(shard.config.replica_fetch_max_bytes as i32),
        );
        sent.push((key.clone(), follow.clone(), offsets.log_end_offset));
    }
    if sent.is_empty() {
        return Ok(false);
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(shard.config.replica_fetch_response_max_bytes as i32)
        .with_isolation_level(0)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    FetchTopic::default()
                        .with_topic(topic_name(&t))
                        .with_partitions(parts)
                })
                .collect(),
        );
    let wait = Duration::from_millis(FETCH_WAIT_MS as u64);
    let response: FetchResponse = peer.call(ApiKey::Fetch, 12, &request, wait).await?;
    if response.error_code != 0 {
        return Ok(false);
    }
    let mut clean = true;
    for t in response.responses {
        let name = t.topic.0.to_string();
        for r in t.partitions {
            let key = (name.clone(), r.partition_index);
            let Some((_, follow, asked_at)) = sent.iter().find(|(k, _, _)| *k == key) else {
                continue;
            };
            // The partition's leader or epoch moved while the fetch was
            // out: what came back is for a past arrangement.
            if shard.followers.current(&key).as_ref() != Some(follow) {
                continue;
            }
            let Some(p) = local(shard, &key) else {
                continue;
            };
            match r.error_code {
                0 => {
                    let offsets = p.offsets();
                    if offsets.log_end_offset != *asked_at {
                        continue;
                    }
                    let batches = split_batches(r.records.unwrap_or_default());
                    // An empty log started at the leader's log start, which
                    // falls inside the first batch sent: it starts at that
                    // batch instead (as Kafka's follower does).
                    let p = match batches.first().and_then(|b| BatchHeader::parse(b)) {
                        Some(h)
                            if offsets.log_end_offset == offsets.log_start_offset
                                && h.base_offset < offsets.log_end_offset =>
                        {
                            if let Err(e) =
                                shard.start_replica_at(&key.0, key.1, h.base_offset).await
                            {
                                warn!(topic = %key.0, partition = key.1, "restarting the replica's log: {e}");
                                clean = false;
                                continue;
                            }
                            let Some(p) = local(shard, &key) else {
                                continue;
                            };
                            p
                        }
                        _ => p,
                    };
                    if let Err(e) = p.append_replica(&batches, r.high_watermark).await {
                        warn!(topic = %key.0, partition = key.1, "appending replicated batches: {e}");
                        clean = false;
                        continue;
                    }
                    if let Err(e) = p.follow_log_start(r.log_start_offset).await {
                        debug!(topic = %key.0, partition = key.1, "following the leader's log start: {e}");
                    }
                }
                1 if *asked_at < r.log_start_offset => {
                    // OFFSET_OUT_OF_RANGE below the leader's log start
                    // (retention or DeleteRecords there while this
                    // replica was away): nothing here is of use any more;
                    // the log starts afresh at the leader's start.
                    info!(
                        topic = %key.0,
                        partition = key.1,
                        offset = asked_at,
                        leader_log_start = r.log_start_offset,
                        "the follower is below the leader's log start; starting its log there"
                    );
                    if let Err(e) = shard
                        .start_replica_at(&key.0, key.1, r.log_start_offset)
                        .await
                    {
                        warn!(topic = %key.0, partition = key.1, "restarting the replica's log: {e}");
                    }
                    clean = false;
                }
                1 => {
                    // OFFSET_OUT_OF_RANGE past the leader's log end: cut
                    // again by epochs.
                    shard.followers.mark_untruncated(&key);
                    clean = false;
                }
                code => {
                    debug!(topic = %key.0, partition = key.1, code, "replica fetch refused");
                    clean = false;
                }
            }
        }
    }
    Ok(clean)
}

/// The batches of a Fetch response's records, whole ones only.
fn split_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while records.len() >= 12 {
        let len = i32::from_be_bytes(records[8..12].try_into().expect("4 bytes"));
        let total = 12 + len.max(0) as usize;
        if len <= 0 || total > records.len() {
            break;
        }
        out.push(records.split_to(total));
    }
    out
}

/// Every `ISR_CHECK`, proposes the ISR changes this shard's leaders ask
/// for (AlterPartition through the metadata proposer on shard 0).
pub async fn isr_loop(shard: Rc<Shard>) {
    while !shard.is_shutting_down() {
        glommio::timer::sleep(ISR_CHECK).await;
        let now = super::now_ms();
        let md = shard.metadata();
        for (topic, index, p) in shard.local_partitions() {
            let Some(change) = p.isr_change(now) else {
                continue;
            };
            let Some(meta) = md.topics.get(&topic) else {
                continue;
            };
            let before = p.in_sync().unwrap_or_default();
            let after: Vec<NodeId> = change.isr.iter().copied().collect();
            if after.len() < before.len() {
                warn!(topic = %topic, partition = index, ?before, ?after, "shrinking the ISR: the partition is under-replicated");
            } else {
                info!(topic = %topic, partition = index, ?before, ?after, "expanding the ISR");
            }
            let record = MetadataRecord::AlterPartition {
                topic: topic.clone(),
                topic_id: meta.id.clone(),
                partition: index,
                leader: change.leader,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                isr: after,
            };
            let _ = shard
                .run_on(crate::shard::CONTROLLER_SHARD, move |s| async move {
                    if let Some(proposer) = s.proposer.get() {
                        proposer.propose(&record);
                    }
                })
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_batches_only() {
        let mut records = Vec::new();
        for len in [49i32, 60] {
            records.extend_from_slice(&0i64.to_be_bytes());
            records.extend_from_slice(&len.to_be_bytes());
            records.extend(std::iter::repeat_n(7u8, len as usize));
        }
        // A cut-off third batch is left out.
        records.extend_from_slice(&0i64.to_be_bytes());
        records.extend_from_slice(&100i32.to_be_bytes());
        records.extend_from_slice(&[1, 2, 3]);
        let batches = split_batches(Bytes::from(records));
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            vec![61, 72]
        );
    }
}
