//! One partition of the offsets log (`<data>/__consumer_offsets-<n>/`): a
//! partition log of the storage engine holding the records of
//! [`super::records`]. Lives on the shard that coordinates its groups.
//!
//! Writes are serialized by a lock held only from building the records to
//! queueing them in the log (never across the durable wait), so the order
//! of records in the log is the order in which they were built from the
//! coordinator's state, and concurrent commits still share one fdatasync.
//! A write counts as pending from its append until the caller has applied
//! it to memory; compaction runs only when nothing is pending, so the
//! state it copies forward is exactly what the log says.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::sync::Semaphore;
use tracing::warn;

use super::records::{self, Record};
use crate::config::GroupConfig;
use crate::error_code::ErrorCode;
use crate::record::records::{decode_records, BatchBuilder, Record as BatchRecord};
use crate::storage::{
    AppendError, AppendTicket, LogConfig, PartitionLog, ShardStorage, StorageError,
};

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

impl StoreError {
    /// The error an OffsetCommit gets (Kafka's mapping of append errors).
    pub fn commit_error_code(&self) -> ErrorCode {
        match self {
            StoreError::TooLarge(_) => ErrorCode::InvalidCommitOffsetSize,
            StoreError::Closed => ErrorCode::NotCoordinator,
            StoreError::Storage(_) => ErrorCode::CoordinatorNotAvailable,
        }
    }

    /// The error a SyncGroup (storing the group) gets.
    pub fn group_error_code(&self) -> ErrorCode {
        match self {
            StoreError::TooLarge(_) => ErrorCode::UnknownServerError,
            StoreError::Closed => ErrorCode::NotCoordinator,
            StoreError::Storage(_) => ErrorCode::CoordinatorNotAvailable,
        }
    }
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
    log: PartitionLog,
    lock: Semaphore,
    pending: Cell<usize>,
    /// Bytes appended since the last compaction (or open).
    pub dirty_bytes: Cell<u64>,
    /// Bytes the last compaction wrote: the live state's size.
    pub live_bytes: Cell<u64>,
    now_ms: Rc<dyn crate::storage::Clock>,
}

/// Batches built here are valid by construction; a refusal means the log
/// itself failed.
fn append_error(e: AppendError) -> StoreError {
    match e {
        AppendError::Storage(s) => StoreError::Storage(s),
        AppendError::Batch(b) => StoreError::Storage(StorageError::Corrupt(b.to_string())),
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
        let log = PartitionLog::open(&dir, log_config(config), storage).await?;
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

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn is_idle(&self) -> bool {
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
        self.log.wait_durable(&last).await?;
        Ok(Some(pending))
    }

    /// Appends `kvs` for a caller that holds the write lock (compaction)
    /// and waits until they are durable.
    pub async fn append_holding_lock(
        &self,
        _permit: &glommio::sync::Permit<'_>,
        kvs: &[KeyValue],
    ) -> Result<i64, StoreError> {
        let (first, last) = self.write(kvs).await?;
        self.log.wait_durable(&last).await?;
        Ok(first)
    }

    /// Queues `kvs` in the log as one or more batches that land back to
    /// back (the caller holds the write lock). Returns the first offset
    /// and the last batch's ticket.
    async fn write(&self, kvs: &[KeyValue]) -> Result<(i64, AppendTicket), StoreError> {
        let batches = self.batches(kvs);
        let max = self.log.config().max_message_bytes;
        if let Some(b) = batches.iter().find(|b| b.len() > max) {
            return Err(StoreError::TooLarge(b.len()));
        }
        let mut headers = Vec::with_capacity(batches.len());
        for b in &batches {
            headers.push(self.log.validate(b).map_err(append_error)?);
        }
        let mut reservations = Vec::with_capacity(batches.len());
        for b in &batches {
            reservations.push(self.log.reserve(b.len()).await?);
        }
        // From here to the last append nothing awaits.
        let mut first = None;
        let mut last = None;
        for ((b, r), header) in batches.iter().zip(reservations).zip(&headers) {
            let ticket = self
                .log
                .append_validated(r, b, header)
                .map_err(append_error)?;
            first.get_or_insert(ticket.base_offset);
            last = Some(ticket);
        }
        let bytes: usize = batches.iter().map(Vec::len).sum();
        self.dirty_bytes.set(self.dirty_bytes.get() + bytes as u64);
        Ok((
            first.expect("at least one batch"),
            last.expect("at least one batch"),
        ))
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
    pub async fn lock_for_compaction(&self) -> Option<glommio::sync::Permit<'_>> {
        let permit = self.lock.acquire_permit(1).await.ok()?;
        self.is_idle().then_some(permit)
    }

    /// Calls `apply` with every record from the log start on, in order.
    pub async fn replay(&self, mut apply: impl FnMut(i64, Record)) -> Result<u64, StorageError> {
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

    /// Drops everything before `offset` (the first record of a compacted
    /// copy): the log start moves there and whole segments below it go.
    pub async fn drop_before(&self, offset: i64) -> Result<(), StorageError> {
        self.log
            .delete_records_before(offset)
            .await
            .map_err(|e| StorageError::Corrupt(e.to_string()))?;
        Ok(())
    }

    pub async fn close(&self) -> Result<(), StorageError> {
        self.lock.close();
        self.log.close().await
    }
}
