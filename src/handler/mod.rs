//! One module per Kafka API. Each takes the shard that read the request and
//! the parsed frame, decodes the body, does the work (on this shard or, for
//! partitions owned elsewhere, on their shards) and encodes the response.
//!
//! `Ok(None)` means no response is sent (Produce with acks=0). An `Err`
//! closes the connection: the body did not decode.

mod admin_configs;
mod api_versions;
mod create_partitions;
mod delete_groups;
mod delete_records;
mod describe_cluster;
mod describe_groups;
pub mod errors;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod topics;

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::protocol::{FrameError, RequestFrame};
use crate::shard::Shard;

pub use api_versions::api_versions_too_new;

/// A response frame as buffers to write in order (record batches are
/// referenced, not copied).
pub type Response = Vec<Bytes>;

/// Answers one request.
pub async fn handle(shard: &Rc<Shard>, req: RequestFrame) -> Result<Option<Response>, FrameError> {
    let out = match req.api_key {
        ApiKey::Produce => return Ok(produce::handle(shard, &req).await?.map(|b| vec![b])),
        ApiKey::Fetch => return Ok(Some(fetch::handle(shard, &req).await?)),
        ApiKey::ListOffsets => list_offsets::handle(shard, &req).await?,
        ApiKey::Metadata => metadata::handle(shard, &req).await?,
        ApiKey::ApiVersions => api_versions::handle(&req)?,
        ApiKey::FindCoordinator => find_coordinator::handle(shard, &req)?,
        ApiKey::CreateTopics => topics::create(shard, &req).await?,
        ApiKey::DeleteTopics => topics::delete(shard, &req).await?,
        ApiKey::CreatePartitions => create_partitions::handle(shard, &req).await?,
        ApiKey::DeleteRecords => delete_records::handle(shard, &req).await?,
        ApiKey::InitProducerId => init_producer_id::handle(shard, &req).await?,
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(shard, &req).await?,
        ApiKey::DescribeConfigs => admin_configs::describe(shard, &req)?,
        ApiKey::AlterConfigs => admin_configs::alter(shard, &req).await?,
        ApiKey::IncrementalAlterConfigs => admin_configs::incremental_alter(shard, &req).await?,
        ApiKey::DescribeCluster => describe_cluster::handle(shard, &req)?,
        ApiKey::JoinGroup => join_group::handle(shard, &req).await?,
        ApiKey::SyncGroup => sync_group::handle(shard, &req).await?,
        ApiKey::Heartbeat => heartbeat::handle(shard, &req).await?,
        ApiKey::LeaveGroup => leave_group::handle(shard, &req).await?,
        ApiKey::OffsetCommit => offset_commit::handle(shard, &req).await?,
        ApiKey::OffsetFetch => offset_fetch::handle(shard, &req).await?,
        ApiKey::DescribeGroups => describe_groups::handle(shard, &req).await?,
        ApiKey::ListGroups => list_groups::handle(shard, &req).await?,
        ApiKey::DeleteGroups => delete_groups::handle(shard, &req).await?,
        ApiKey::OffsetDelete => offset_delete::handle(shard, &req).await?,
        other => {
            // parse_request lets through only served APIs.
            return Err(FrameError::UnsupportedVersion {
                key: other,
                version: req.version,
                advertised: "none".to_string(),
            });
        }
    };
    Ok(Some(vec![out]))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

/// Runs `f` with the group coordinator of the shard that coordinates
/// `group_id` (this one or another); `None` if that shard has stopped.
pub(crate) async fn on_coordinator<T, F, Fut>(shard: &Rc<Shard>, group_id: &str, f: F) -> Option<T>
where
    F: FnOnce(Rc<crate::group::Coordinator>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    let target = shard.group_coordinator_shard(group_id);
    shard
        .run_on(target, move |s| f(s.groups.clone()))
        .await
        .ok()
}

/// The leader epoch of every partition: a single node never changes
/// leader, so it stays 0.
pub(crate) const LEADER_EPOCH: i32 = 0;

/// Kafka's check of a request's current_leader_epoch (-1: not given).
pub(crate) fn check_leader_epoch(current: i32) -> crate::error_code::ErrorCode {
    use crate::error_code::ErrorCode;
    if current == -1 || current == LEADER_EPOCH {
        ErrorCode::None
    } else if current > LEADER_EPOCH {
        ErrorCode::UnknownLeaderEpoch
    } else {
        ErrorCode::FencedLeaderEpoch
    }
}

/// Items of one owning shard, each with its position in the request.
pub(crate) type OwnerGroup<T> = (usize, Vec<(usize, String, i32, T)>);

/// A partition that does not exist, with its position in the request.
pub(crate) type Unknown = (usize, String, i32);

/// Groups items by the shard that owns their partition, keeping each
/// item's position in the request so answers can be put back in order.
/// Also returns the items of partitions that do not exist.
pub(crate) fn group_by_owner<T>(
    shard: &Shard,
    items: Vec<(String, i32, T)>,
) -> (Vec<OwnerGroup<T>>, Vec<Unknown>) {
    let mut groups: Vec<OwnerGroup<T>> = Vec::new();
    let mut unknown = Vec::new();
    for (pos, (topic, partition, item)) in items.into_iter().enumerate() {
        match shard.owner_of(&topic, partition) {
            Some(owner) => match groups.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, g)) => g.push((pos, topic, partition, item)),
                None => groups.push((owner, vec![(pos, topic, partition, item)])),
            },
            None => unknown.push((pos, topic, partition)),
        }
    }
    (groups, unknown)
}

/// Runs `work` on each owning shard with its group of items and returns
/// every result at its request position. Items of unknown partitions and
/// of unreachable shards get `missing(topic, partition)`.
pub(crate) async fn scatter<T, R, F, Fut>(
    shard: &Rc<Shard>,
    items: Vec<(String, i32, T)>,
    work: F,
    missing: impl Fn(crate::error_code::ErrorCode) -> R,
) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<Shard>, Vec<(String, i32, T)>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<R>> + 'static,
{
    use crate::error_code::ErrorCode;
    let total = items.len();
    let (mut groups, unknown) = group_by_owner(shard, items);
    let mut results: Vec<Option<R>> = (0..total).map(|_| None).collect();
    let unknown_count = unknown.len();
    for (pos, _, _) in unknown {
        results[pos] = Some(missing(ErrorCode::UnknownTopicOrPartition));
    }
    // The common case, every partition on this shard: run it here, without
    // a task or a copy of the items.
    if unknown_count == 0 && groups.len() == 1 && groups[0].0 == shard.id {
        let (_, group) = groups.pop().expect("one group");
        let batch = group.into_iter().map(|(_, t, p, x)| (t, p, x)).collect();
        return work(shard.clone(), batch).await;
    }
    // Every owner works concurrently; answers are awaited in turn.
    let mut tasks = Vec::with_capacity(groups.len());
    for (owner, group) in groups {
        let positions: Vec<usize> = group.iter().map(|(p, ..)| *p).collect();
        let batch: Vec<(String, i32, T)> =
            group.into_iter().map(|(_, t, p, x)| (t, p, x)).collect();
        let work = work.clone();
        let s = shard.clone();
        let task = glommio::spawn_local(async move {
            s.run_on(owner, move |target| work(target, batch)).await
        });
        tasks.push((positions, task));
    }
    for (positions, task) in tasks {
        match task.await {
            Ok(answers) => {
                for (pos, r) in positions.into_iter().zip(answers) {
                    results[pos] = Some(r);
                }
            }
            Err(_) => {
                for pos in positions {
                    results[pos] = Some(missing(ErrorCode::KafkaStorageError));
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| missing(ErrorCode::UnknownServerError)))
        .collect()
}

/// A request's topics, each with its partitions and per-partition input.
pub(crate) type Nested<T> = Vec<(String, Vec<(i32, T)>)>;

/// Runs `op` for every partition of `topics` on the shard that owns it and
/// returns the results in the request's shape. Partitions that do not
/// exist get `missing(UNKNOWN_TOPIC_OR_PARTITION)`.
pub(crate) async fn per_partition<T, R, F, Fut>(
    shard: &Rc<Shard>,
    topics: Nested<T>,
    op: F,
    missing: impl Fn(crate::error_code::ErrorCode) -> R + Clone + Send + 'static,
) -> Nested<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<crate::shard::LocalPartition>, T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = R> + 'static,
{
    let mut shape = Vec::with_capacity(topics.len());
    let mut items = Vec::new();
    for (name, parts) in topics {
        let mut indexes = Vec::with_capacity(parts.len());
        for (index, input) in parts {
            indexes.push(index);
            items.push((name.clone(), index, input));
        }
        shape.push((name, indexes));
    }
    let missing_remote = missing.clone();
    let results = scatter(
        shard,
        items,
        move |s, batch| {
            let op = op.clone();
            let missing = missing_remote.clone();
            async move {
                let mut out = Vec::with_capacity(batch.len());
                for (topic, index, input) in batch {
                    match s.local_partition(&topic, index) {
                        Some(p) => out.push(op(p, input).await),
                        None => {
                            out.push(missing(crate::error_code::ErrorCode::NotLeaderOrFollower))
                        }
                    }
                }
                out
            }
        },
        missing,
    )
    .await;
    let mut results = results.into_iter();
    shape
        .into_iter()
        .map(|(name, indexes)| {
            let rs = indexes
                .into_iter()
                .map(|i| (i, results.next().expect("one result per partition")))
                .collect();
            (name, rs)
        })
        .collect()
}
