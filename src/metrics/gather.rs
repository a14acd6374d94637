//! Copies every shard's statistics out, one job per shard over the mesh:
//! the shards keep plain `Cell`s and never share them, and a scrape costs
//! each shard one short job.

use std::rc::Rc;
use std::time::Duration;

use crate::group::GroupView;
use crate::shard::Shard;
use crate::stats::{ApiSnapshot, HistogramSnapshot};

/// A shard that does not answer within this long counts as not serving.
const SHARD_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// One partition, as its shard sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    pub shard: usize,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub size_bytes: u64,
    pub bytes_in: u64,
    pub messages_in: u64,
    pub bytes_out: u64,
}

/// One shard's statistics at the moment it was asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardView {
    pub shard: usize,
    pub serving: bool,
    pub connections: usize,
    pub request_memory_bytes: u64,
    pub request_memory_limit: u64,
    pub busy_ratio: f64,
    pub busy_seconds: f64,
    pub requests: Vec<ApiSnapshot>,
    pub storage_write: HistogramSnapshot,
    pub storage_fsync: HistogramSnapshot,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub partitions: Vec<PartitionView>,
    pub groups: Vec<GroupView>,
}

/// What the endpoint knows of the broker as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerView {
    pub node_id: i32,
    /// By shard; `None` for a shard that did not answer.
    pub shards: Vec<Option<ShardView>>,
    /// Why the broker is not healthy, if it is not.
    pub unhealthy: Option<String>,
    /// Whether this process serves clients (not a controller-only node).
    pub broker_role: bool,
}

impl ShardView {
    /// Takes this shard's statistics (run on the shard itself).
    pub fn of(shard: &Shard) -> ShardView {
        let mut partitions: Vec<PartitionView> = shard
            .local_partitions()
            .into_iter()
            .map(|(topic, partition, p)| {
                let o = p.offsets();
                PartitionView {
                    topic,
                    partition,
                    shard: shard.id,
                    high_watermark: o.high_watermark,
                    log_start_offset: o.log_start_offset,
                    log_end_offset: o.log_end_offset,
                    size_bytes: p.size_bytes(),
                    bytes_in: p.counters.bytes_in.get(),
                    messages_in: p.counters.messages_in.get(),
                    bytes_out: p.counters.bytes_out.get(),
                }
            })
            .collect();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let (busy_ratio, busy) = shard.busy.get();
        let storage = &shard.storage.stats;
        ShardView {
            shard: shard.id,
            serving: shard.serving.get() && !shard.is_shutting_down(),
            connections: shard.connections.get(),
            request_memory_bytes: shard.request_budget.used(),
            request_memory_limit: shard.request_budget.capacity(),
            busy_ratio,
            busy_seconds: busy.as_secs_f64(),
            requests: shard.requests.snapshot(),
            storage_write: storage.write.snapshot(),
            storage_fsync: storage.fsync.snapshot(),
            cache_hits: storage.cache_hits.get(),
            cache_misses: storage.cache_misses.get(),
            partitions,
            groups: shard.groups.views(),
        }
    }
}

/// Asks every shard for its view, at most [`SHARD_ANSWER_TIMEOUT`] each,
/// and judges the broker's health.
pub async fn gather(shard: &Rc<Shard>) -> BrokerView {
    let asks = (0..shard.shard_count).map(|target| {
        let ask = shard.run_on(target, |s| async move { ShardView::of(&s) });
        async move {
            let timeout = async {
                glommio::timer::sleep(SHARD_ANSWER_TIMEOUT).await;
                None
            };
            futures_lite::future::or(async { ask.await.ok() }, timeout).await
        }
    });
    let shards = futures_util::future::join_all(asks).await;
    let broker_role = shard.config.kraft.roles.is_none_or(|r| r.broker);
    let mut view = BrokerView {
        node_id: shard.config.node_id,
        shards,
        unhealthy: None,
        broker_role,
    };
    view.unhealthy = judge(shard, &view);
    view
}

/// Why the broker is not healthy: a shard that does not answer or does not
/// serve yet, or, in a cluster, a broker the quorum has fenced (or not yet
/// registered), or a controller-only node that knows no quorum leader.
fn judge(shard: &Shard, view: &BrokerView) -> Option<String> {
    let mut reasons = Vec::new();
    for (i, s) in view.shards.iter().enumerate() {
        match s {
            None => reasons.push(format!("shard {i} did not answer")),
            Some(s) if !s.serving && view.broker_role => {
                reasons.push(format!("shard {i} is not serving"))
            }
            Some(_) => {}
        }
    }
    if let Some(image) = shard.image.get() {
        if view.broker_role {
            let image = image.read().expect("image lock");
            match image.brokers.get(&shard.config.node_id) {
                None => reasons.push("the broker is not registered with the quorum".to_string()),
                Some(b) if b.fenced => reasons.push("the broker is fenced".to_string()),
                Some(_) => {}
            }
        }
    }
    if let Some(status) = shard.quorum.get() {
        if !view.broker_role {
            let status = status.read().expect("quorum status lock");
            if status.leader_id < 0 {
                reasons.push("no metadata quorum leader is known".to_string());
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}
