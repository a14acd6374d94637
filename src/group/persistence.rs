//! Persistence of the group coordinator: one partition of the offsets log
//! (`<data>/__consumer_offsets-<n>/`) is a partition log of the storage
//! engine holding the records of [`super::records`]. This file appends
//! them, replays them at startup and compacts them; it is the only part of
//! `group/` that calls the storage engine. Lives on the shard that
//! coordinates the partition's groups.
//!
//! Writes are serialized by a lock held only from building the records to
//! queueing them in the log (never across the durable wait), so the order
//! of records in the log is the order in which they were built from the
//! coordinator's state, and concurrent commits still share one fdatasync.
//! A write counts as pending from its append until the caller has applied
//! it to memory; compaction runs only when nothing is pending, so the
//! state it copies forward is exactly what the log says.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::sync::Semaphore;
use tracing::{info, warn};

use super::records::{self, GroupValue, OffsetValue, Record};
use super::state::{Committed, Group};
use crate::config::GroupConfig;
use crate::partition::{Acks, Appended, Partition, PartitionConfig, PartitionError};
use crate::record::records::{decode_records, BatchBuilder, Record as BatchRecord};
use crate::storage::{LogConfig, ShardStorage, StorageError};

/// The internal topic's name; its partitions' directories are
/// `__consumer_offsets-<n>`, as in Kafka.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Records per batch are cut at about this many bytes.
const BATCH_BYTES_TARGET: usize = 256 << 10;

/// A key and its value (`None`: tombstone).
pub type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Why a write to the offsets log failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("record of {0} bytes is larger than the offsets log accepts")]
    TooLarge(usize),
    #[error("the offsets log is closed")]
    Closed,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A durable write not yet applied to memory; dropping it ends the pending
/// state.
pub struct Pending {
    log: Rc<OffsetsLog>,
    /// Offset of the first record written.
    pub base_offset: i64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.log.pending.set(self.log.pending.get() - 1);
    }
}

pub struct OffsetsLog {
    pub partition: usize,
    /// The offsets log partition, through the partition layer like any
    /// other partition's data.
    log: Partition,
    lock: Semaphore,
    pending: Cell<usize>,
    /// Bytes appended since the last compaction (or open).
    dirty_bytes: Cell<u64>,
    /// Bytes the last compaction wrote: the live state's size.
    live_bytes: Cell<u64>,
    now_ms: Rc<dyn crate::storage::Clock>,
}

/// Batches built here are valid by construction and carry no producer
/// id; any refusal means the log itself failed.
fn append_error(e: PartitionError) -> StoreError {
    match e {
        PartitionError::Storage(s) => StoreError::Storage(s),
        other => StoreError::Storage(StorageError::Corrupt(other.to_string())),
    }
}

pub fn partition_dir(data_dir: &Path, partition: usize) -> PathBuf {
    data_dir.join(format!("{OFFSETS_TOPIC}-{partition}"))
}

/// The storage settings of offsets log partitions.
pub fn log_config(config: &GroupConfig) -> LogConfig {
    let max_message = config.group_metadata_max_bytes + (64 << 10);
    LogConfig {
        segment_bytes: config.offsets_segment_bytes,
        retention_ms: -1,
        retention_bytes: -1,
        max_message_bytes: max_message,
        preallocate_bytes: 1 << 20,
        write_buffer_bytes_max: (8 << 20).max(2 * max_message),
        ..LogConfig::default()
    }
}

impl OffsetsLog {
    pub async fn open(
        data_dir: &Path,
        partition: usize,
        config: &GroupConfig,
        storage: &ShardStorage,
    ) -> Result<Rc<Self>, StorageError> {
        let dir = partition_dir(data_dir, partition);
        let d = dir.clone();
        crate::storage::fsutil::blocking(move || std::fs::create_dir_all(&d))
            .await
            .map_err(|e| StorageError::io("creating an offsets log directory", e))?;
        let config = PartitionConfig {
            log: log_config(config),
            ..PartitionConfig::internal()
        };
        let log = Partition::open(&dir, config, storage).await?;
        Ok(Rc::new(OffsetsLog {
            partition,
            log,
            lock: Semaphore::new(1),
            pending: Cell::new(0),
            dirty_bytes: Cell::new(0),
            live_bytes: Cell::new(0),
            now_ms: storage.clock.clone(),
        }))
    }

    /// The log start and end offsets.
    pub fn bounds(&self) -> (i64, i64) {
        let o = self.log.offsets();
        (o.log_start_offset, o.log_end_offset)
    }

    /// Bytes of the partition's segments (DescribeLogDirs).
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// The storage failure that keeps the partition from taking writes, if
    /// any (DescribeLogDirs reports it).
    pub fn storage_error(&self) -> Option<StorageError> {
        self.log.storage_error()
    }

    fn is_idle(&self) -> bool {
        self.pending.get() == 0
    }

    /// Appends the records `build` returns (called once the write lock is
    /// held, so it sees the state in log order) and waits until they are
    /// durable. `Ok(None)`: `build` had nothing to write.
    pub async fn append(
        self: &Rc<Self>,
        build: impl FnOnce() -> Result<Vec<KeyValue>, StoreError>,
    ) -> Result<Option<Pending>, StoreError> {
        let permit = self
            .lock
            .acquire_permit(1)
            .await
            .map_err(|_| StoreError::Closed)?;
        let kvs = build()?;
        if kvs.is_empty() {
            return Ok(None);
        }
        let (first, last) = self.write(&kvs).await?;
        // No await since the last append: the pending count covers the
        // records from the moment they are in the log.
        self.pending.set(self.pending.get() + 1);
        let pending = Pending {
            log: self.clone(),
            base_offset: first,
        };
        drop(permit);
        self.wait_durable(&last).await?;
        Ok(Some(pending))
    }

    /// Queues `kvs` in the log as one or more batches that land back to
    /// back (the caller holds the write lock). Returns the first offset
    /// and the last batch.
    async fn write(&self, kvs: &[KeyValue]) -> Result<(i64, Appended), StoreError> {
        let batches = self.batches(kvs);
        let max = self.log.config().log.max_message_bytes;
        if let Some(b) = batches.iter().find(|b| b.len() > max) {
            return Err(StoreError::TooLarge(b.len()));
        }
        let (first, last) = self
            .log
            .append_batches(&batches)
            .await
            .map_err(append_error)?;
        let bytes: usize = batches.iter().map(Vec::len).sum();
        self.dirty_bytes.set(self.dirty_bytes.get() + bytes as u64);
        Ok((first.ticket.base_offset, last))
    }

    /// Waits until `appended` is on stable storage: a commit is answered
    /// only then.
    async fn wait_durable(&self, appended: &Appended) -> Result<(), StoreError> {
        self.log
            .wait(appended, Acks::All, None)
            .await
            .map_err(append_error)
    }

    fn batches(&self, kvs: &[KeyValue]) -> Vec<Vec<u8>> {
        let now = self.now_ms.now_ms();
        let mut out = Vec::new();
        let mut builder = BatchBuilder::new(now);
        let mut bytes = 0;
        for (k, v) in kvs {
            let size = k.len() + v.as_ref().map_or(0, Vec::len) + 16;
            if builder.record_count() > 0 && bytes + size > BATCH_BYTES_TARGET {
                out.push(builder.build());
                builder = BatchBuilder::new(now);
                bytes = 0;
            }
            builder.push(&BatchRecord {
                timestamp_delta: 0,
                key: Some(k.clone()),
                value: v.clone(),
                headers: Vec::new(),
            });
            bytes += size;
        }
        if builder.record_count() > 0 {
            out.push(builder.build());
        }
        out
    }

    /// Holds the write lock for a compaction; `None` while writes are
    /// pending (they would be missing from the copied state).
    async fn lock_for_compaction(&self) -> Option<glommio::sync::Permit<'_>> {
        let permit = self.lock.acquire_permit(1).await.ok()?;
        self.is_idle().then_some(permit)
    }

    /// Replays the partition into the live state its records leave.
    pub async fn load(&self) -> Result<Loaded, StorageError> {
        let mut groups: HashMap<String, LoadedGroup> = HashMap::new();
        let records = self
            .replay(|at, record| match record {
                Record::Offset(g, t, p, Some(value)) => {
                    let committed = Committed {
                        value,
                        log_offset: at,
                    };
                    groups
                        .entry(g)
                        .or_default()
                        .offsets
                        .insert((t, p), committed);
                }
                Record::Offset(g, t, p, None) => {
                    if let Some(lg) = groups.get_mut(&g) {
                        lg.offsets.remove(&(t, p));
                    }
                }
                Record::Group(g, Some(v)) => groups.entry(g).or_default().stored = Some(v),
                Record::Group(g, None) => {
                    if let Some(lg) = groups.get_mut(&g) {
                        lg.stored = None;
                    }
                }
            })
            .await?;
        groups.retain(|_, lg| !lg.offsets.is_empty() || lg.stored.is_some());
        // Whatever is in the log now counts as appended since the last
        // compaction, so a long log is compacted soon after a start.
        self.dirty_bytes.set(self.log.size_bytes());
        Ok(Loaded { groups, records })
    }

    /// Calls `apply` with every record from the log start on, in order.
    async fn replay(&self, mut apply: impl FnMut(i64, Record)) -> Result<u64, StorageError> {
        let offsets = self.log.offsets();
        let start = offsets.log_start_offset;
        let mut offset = start;
        let mut count = 0;
        while offset < offsets.high_watermark {
            let read = self.log.read(offset, 1 << 20).await.map_err(|e| {
                StorageError::Corrupt(format!("reading the offsets log at {offset}: {e}"))
            })?;
            if read.batches.is_empty() {
                break;
            }
            for batch in &read.batches {
                let header = crate::record::batch::BatchHeader::parse(batch)
                    .ok_or_else(|| StorageError::Corrupt("short batch".into()))?;
                offset = header.next_offset();
                let Some(recs) = decode_records(batch) else {
                    warn!(
                        partition = self.partition,
                        base_offset = header.base_offset,
                        "offsets log batch does not decode; skipped"
                    );
                    continue;
                };
                for r in recs {
                    if r.offset < start {
                        continue;
                    }
                    let Some(key) = r.key.as_deref() else {
                        continue;
                    };
                    match records::decode(key, r.value.as_deref()) {
                        Some(rec) => {
                            apply(r.offset, rec);
                            count += 1;
                        }
                        None => warn!(
                            partition = self.partition,
                            offset = r.offset,
                            "offsets log record does not decode; skipped"
                        ),
                    }
                }
            }
        }
        Ok(count)
    }

    /// Whether what was appended since the last compaction outgrew both
    /// `min_bytes` and the live state.
    pub fn compaction_due(&self, min_bytes: u64) -> bool {
        self.dirty_bytes.get() >= min_bytes.max(self.live_bytes.get())
    }

    /// Copies the live state (the records `live` returns, built once the
    /// write lock is held) to the end of the partition and drops everything
    /// before the copy. Returns whether it ran (it does not while writes
    /// are pending).
    pub async fn compact(&self, live: impl FnOnce() -> Vec<KeyValue>) -> Result<bool, StoreError> {
        let Some(permit) = self.lock_for_compaction().await else {
            return Ok(false);
        };
        let start = self.log.offsets().log_end_offset;
        let kvs = live();
        let bytes: u64 = kvs
            .iter()
            .map(|(k, v)| (k.len() + v.as_ref().map_or(0, Vec::len)) as u64)
            .sum();
        let before = self.log.size_bytes();
        if !kvs.is_empty() {
            let (_, last) = self.write(&kvs).await?;
            self.wait_durable(&last).await?;
        }
        drop(permit);
        self.drop_before(start).await?;
        self.dirty_bytes.set(0);
        self.live_bytes.set(bytes);
        info!(
            partition = self.partition,
            records = kvs.len(),
            live_bytes = bytes,
            log_bytes_before = before,
            log_bytes_after = self.log.size_bytes(),
            log_start_offset = start,
            "offsets log compacted"
        );
        Ok(true)
    }

    /// Drops everything before `offset` (the first record of a compacted
    /// copy): the log start moves there and whole segments below it go.
    async fn drop_before(&self, offset: i64) -> Result<(), StorageError> {
        self.log
            .delete_records(offset)
            .await
            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
        Ok(())
    }

    pub async fn close(&self) -> Result<(), StorageError> {
        self.lock.close();
        self.log.close().await
    }
}

/// A partition's live state as its records leave it.
pub struct Loaded {
    /// Groups with committed offsets or a stored record.
    pub groups: HashMap<String, LoadedGroup>,
    /// Records replayed.
    pub records: u64,
}

#[derive(Default)]
pub struct LoadedGroup {
    pub offsets: HashMap<(String, i32), Committed>,
    /// The group's last stored record.
    pub stored: Option<GroupValue>,
}

/// A committed offset's record.
pub fn offset_record(group_id: &str, topic: &str, partition: i32, value: &OffsetValue) -> KeyValue {
    (
        records::offset_key(group_id, topic, partition),
        Some(records::offset_value(value)),
    )
}

/// Tombstones of committed offsets.
pub fn offset_tombstones<'a>(
    group_id: &str,
    partitions: impl IntoIterator<Item = &'a (String, i32)>,
) -> Vec<KeyValue> {
    partitions
        .into_iter()
        .map(|(t, p)| (records::offset_key(group_id, t, *p), None))
        .collect()
}

/// The tombstone of a group's record.
pub fn group_tombstone(group_id: &str) -> KeyValue {
    (records::group_key(group_id), None)
}

/// The record of `group` as it is now, with `assignment` for its members
/// if it is the assignment of the group's generation. It becomes the
/// group's stored record, which compaction copies forward; a record longer
/// than `limit` bytes is refused.
pub fn group_record(
    group: &mut Group,
    assignment: Option<(i32, &HashMap<String, Bytes>)>,
    limit: usize,
) -> Result<Vec<KeyValue>, StoreError> {
    let mut value = group.to_value();
    if let Some((generation, asg)) = assignment {
        if generation == group.generation {
            for m in &mut value.members {
                m.assignment = asg.get(&m.member_id).cloned().unwrap_or_default();
            }
        }
    }
    let bytes = records::group_value(&value);
    if bytes.len() > limit {
        return Err(StoreError::TooLarge(bytes.len()));
    }
    group.stored = Some(value);
    Ok(vec![(records::group_key(&group.id), Some(bytes))])
}

/// The live state of `groups`: each one's stored record and its committed
/// offsets, in the order they were committed.
pub fn live_records<'a>(groups: impl Iterator<Item = &'a Group>) -> Vec<KeyValue> {
    let mut kvs = Vec::new();
    for g in groups {
        if let Some(v) = &g.stored {
            kvs.push((records::group_key(&g.id), Some(records::group_value(v))));
        }
        let mut offsets: Vec<_> = g.offsets.iter().collect();
        offsets.sort_by_key(|(_, c)| c.log_offset);
        for ((t, p), c) in offsets {
            kvs.push(offset_record(&g.id, t, *p, &c.value));
        }
    }
    kvs
}
