//! DescribeLogDirs: the broker's log directory (`log.dirs`, one here) as an
//! absolute path, with every partition log in it and the bytes of its
//! segments, as Kafka's ReplicaManager.describeLogDirs answers.
//!
//! Every shard owns some of the partitions in the one data directory (the
//! partitions of topics and those of the internal offsets log, which are
//! partition logs there too), so the request is asked of every shard at
//! once and their answers merged into the one directory's entry (with
//! per-shard listeners each shard is a node and answers for its own
//! partitions, as each Kafka broker answers for its replicas). Topics
//! null means every partition; named topics and partitions that do not
//! exist are simply absent, as in Kafka. A directory with a partition that
//! cannot take writes because of a storage failure (a failed write, or a
//! full disk being waited out) carries KAFKA_STORAGE_ERROR and still lists
//! its partitions; v4 adds the file system's size and usable bytes
//! (statvfs; -1 when they cannot be read).

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use tracing::warn;

use super::errors::ToErrorCode;
use super::{str_bytes, topic_name};
use crate::config::ListenerMode;
use crate::error_code::ErrorCode;
use crate::group::OFFSETS_TOPIC;
use crate::protocol::{FrameError, RequestFrame};
use crate::security::acl::Operation;
use crate::security::authz::ConnAuth;
use crate::shard::Shard;
use crate::storage::space::dir_space;
use crate::storage::StorageError;

/// The partitions a request names: topic -> partition indexes. `None`
/// (topics null) selects every partition. Each shard matches it by name
/// against its own partitions rather than the router resolving ids at the
/// door: the offsets log's partitions are not in the routing table, and
/// every shard walks all its partitions anyway for the directory's error.
type Selection = Option<BTreeMap<String, BTreeSet<i32>>>;

/// "Unknown" for total_bytes and usable_bytes (v4).
const SPACE_UNKNOWN: i64 = -1;

/// What one shard says of its partition logs.
#[derive(Default)]
struct ShardLogs {
    /// The selected partition logs: topic, partition index, bytes of the
    /// partition's segments.
    partitions: Vec<(String, i32, u64)>,
    /// The first storage failure among all of the shard's partition logs,
    /// selected or not: it is the directory's state, not a partition's.
    storage_error: Option<StorageError>,
}

impl ShardLogs {
    fn note(&mut self, selection: &Selection, topic: &str, index: i32, size: u64) {
        let selected = selection
            .as_ref()
            .is_none_or(|s| s.get(topic).is_some_and(|p| p.contains(&index)));
        if selected {
            self.partitions.push((topic.to_string(), index, size));
        }
    }

    fn note_error(&mut self, error: Option<StorageError>) {
        if self.storage_error.is_none() {
            self.storage_error = error;
        }
    }
}

pub async fn handle(
    shard: &Rc<Shard>,
    req: &RequestFrame,
    auth: &ConnAuth,
) -> Result<Bytes, FrameError> {
    let request: DescribeLogDirsRequest = req.decode()?;
    if !auth.cluster(Operation::Describe) {
        return req.respond(
            &DescribeLogDirsResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code()),
        );
    }
    let selection: Selection = request.topics.map(|topics| {
        let mut s: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for t in topics {
            s.entry(t.topic.to_string())
                .or_default()
                .extend(t.partitions);
        }
        s
    });

    // Every shard at once; each walks only its own partitions. With
    // per-shard listeners each shard is a node of its own (Metadata leads
    // its partitions from it), and Kafka's tools ask every node for its
    // replicas: this shard answers for its own.
    let targets = match shard.config.listener_mode {
        ListenerMode::Single => 0..shard.shard_count,
        ListenerMode::PerShard => shard.id..shard.id + 1,
    };
    let asks = targets.map(|target| {
        let selection = selection.clone();
        shard.run_on(target, move |s| async move { shard_logs(&s, &selection) })
    });
    let answers = futures_util::future::join_all(asks).await;

    let mut error = ErrorCode::None;
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for answer in answers {
        let logs = match answer {
            Ok(logs) => logs,
            Err(gone) => {
                // A shard stopping (shutdown) cannot vouch for its logs.
                error = gone.error_code();
                continue;
            }
        };
        if let (ErrorCode::None, Some(e)) = (error, &logs.storage_error) {
            error = e.error_code();
        }
        for (topic, index, size) in logs.partitions {
            topics.entry(topic).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(index)
                    .with_partition_size(size as i64)
                    // The log end offset's lag behind the high watermark,
                    // and whether this is a future replica being moved
                    // between directories: neither happens on one node
                    // with one directory.
                    .with_offset_lag(0)
                    .with_is_future_key(false),
            );
        }
    }
    let topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();

    // Kafka reports each log.dirs entry made absolute (not canonical).
    let data_dir = &shard.config.data_dir;
    let log_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.clone());
    let (total_bytes, usable_bytes) = if req.version >= 4 {
        match dir_space(&log_dir).await {
            Ok(space) => (
                i64::try_from(space.total_bytes).unwrap_or(i64::MAX),
                i64::try_from(space.usable_bytes).unwrap_or(i64::MAX),
            ),
            Err(e) => {
                warn!(dir = %log_dir.display(), "statvfs of the log directory: {e}");
                (SPACE_UNKNOWN, SPACE_UNKNOWN)
            }
        }
    } else {
        (SPACE_UNKNOWN, SPACE_UNKNOWN)
    };

    let result = DescribeLogDirsResult::default()
        .with_error_code(error.code())
        .with_log_dir(str_bytes(log_dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes);
    let response = DescribeLogDirsResponse::default()
        .with_error_code(ErrorCode::None.code())
        .with_results(vec![result]);
    req.respond(&response)
}

/// This shard's partition logs: those of topics, then those of the offsets
/// log it owns. Runs on the shard asked.
fn shard_logs(shard: &Shard, selection: &Selection) -> ShardLogs {
    let mut logs = ShardLogs::default();
    for (topic, index, partition) in shard.local_partitions() {
        logs.note_error(partition.storage_error());
        logs.note(selection, &topic, index, partition.size_bytes());
    }
    for (index, size, storage_error) in shard.groups.offsets_logs_usage() {
        logs.note_error(storage_error);
        logs.note(selection, OFFSETS_TOPIC, index as i32, size);
    }
    logs
}
