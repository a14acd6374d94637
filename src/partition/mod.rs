//! A partition, and the one way into it. Everything that touches a
//! partition's data goes through [`Partition`]: producing (validation, the
//! idempotent-producer check, the append and the wait that acks asks for),
//! reading, offset lookups, DeleteRecords, retention and closing. Handlers,
//! the router and the group coordinator's offsets log never reach the
//! storage engine underneath.
//!
//! A `Partition` lives on the shard that owns it, in plain `Rc`/`RefCell`
//! state; other shards reach it only by sending that shard a job.

pub mod producer_state;
pub mod replica;

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use crate::record::{BatchError, BatchHeader, Compression, TimestampType};
use crate::replication::epochs::EpochCache;
use crate::storage::fsutil;
use crate::storage::{
    AppendError, AppendTicket, ClosingLog, LogConfig, PartitionLog, ReadError, RetentionOutcome,
    ShardStorage, StorageError,
};
use producer_state::{ProducerError, ProducerStateTable, SequenceCheck};

// The storage types callers of the partition see in its answers.
pub use crate::storage::{LogOffsets, TimestampOffset};

const SNAPSHOT_FILE: &str = "producer-state.snapshot";

/// The high watermark at the last clean close, with the log end it was
/// taken at (Kafka keeps it in `replication-offset-checkpoint`): a replica
/// that restarts shows it at once instead of starting over at its log
/// start. Emptied with the producer snapshot whenever the log is cut.
const HIGH_WATERMARK_FILE: &str = "high-watermark";

/// The files describing the log's end that a cut must forget.
const END_FILES: &[&str] = &[SNAPSHOT_FILE, HIGH_WATERMARK_FILE];

/// The leader epoch of every partition: a single node never changes leader,
/// so it stays 0. Replication will make this per partition.
pub const LEADER_EPOCH: i32 = 0;

/// What a producer asks to wait for before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: no answer; the append still completes before the request
    /// lets go of its memory.
    None,
    /// acks=1: written to the log (survives a process crash, visible).
    Leader,
    /// acks=all (-1): on stable storage, and enough in-sync replicas.
    All,
}

impl Acks {
    /// Kafka's wire value; `None` for anything but -1, 0 and 1.
    pub fn from_wire(acks: i16) -> Option<Acks> {
        match acks {
            0 => Some(Acks::None),
            1 => Some(Acks::Leader),
            -1 => Some(Acks::All),
            _ => None,
        }
    }
}

/// Settings of a partition: its log's, plus those of the topic that are not
/// storage settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionConfig {
    pub log: LogConfig,
    /// min.insync.replicas: acks=all needs this many in-sync replicas.
    pub min_insync_replicas: i32,
    /// compression.type: `None` keeps batches as the producer sent them;
    /// a codec recompresses batches in any other.
    pub compression: Option<Compression>,
    /// compression.gzip.level and compression.zstd.level (Kafka's KIP-390)
    /// for batches recompressed into those codecs.
    pub gzip_level: i32,
    pub zstd_level: i32,
    /// message.timestamp.before.max.ms and message.timestamp.after.max.ms:
    /// with CreateTime, how far a record's timestamp may be from the
    /// broker's clock.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// cleanup.policy: whether old segments are deleted by retention
    /// (`delete`) and whether records need keys and are compacted
    /// (`compact`); either, both, or neither.
    pub cleanup: CleanupPolicy,
    /// The log cleaner's topic settings (for `compact`).
    pub cleaner: CleanerTopicConfig,
}

/// delete.retention.ms, min.cleanable.dirty.ratio, min.compaction.lag.ms
/// and max.compaction.lag.ms, with Kafka's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerTopicConfig {
    pub delete_retention_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
}

impl Default for CleanerTopicConfig {
    fn default() -> Self {
        CleanerTopicConfig {
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

/// A topic's cleanup.policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    /// Kafka's list value: `delete`, `compact`, both in any order, or
    /// empty (neither). Unknown items were refused when the value was set.
    pub fn parse(value: &str) -> CleanupPolicy {
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        CleanupPolicy {
            delete: items.contains(&"delete"),
            compact: items.contains(&"compact"),
        }
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl PartitionConfig {
    /// For the broker's own logs (the offsets log, the metadata log): the
    /// broker writes their timestamps, so they are not checked.
    pub fn internal() -> Self {
        PartitionConfig {
            timestamp_after_max_ms: i64::MAX,
            ..PartitionConfig::default()
        }
    }
}

impl Default for PartitionConfig {
    fn default() -> Self {
        PartitionConfig {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            compression: None,
            gzip_level: -1,
            zstd_level: 3,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            cleanup: CleanupPolicy::default(),
            cleaner: CleanerTopicConfig::default(),
        }
    }
}

/// Why an operation on a partition failed. The Kafka error code each one
/// maps to is decided in `handler::errors`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("invalid batch: {0}")]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
    #[error("offset {offset} is outside [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        high_watermark: i64,
    },
    #[error("min.insync.replicas={required} but the partition has {in_sync} in-sync replica(s)")]
    NotEnoughReplicas { required: i32, in_sync: i32 },
    #[error("appended, but the ISR shrank to {in_sync} below min.insync.replicas={required} before it was replicated")]
    NotEnoughReplicasAfterAppend { required: i32, in_sync: i32 },
    /// This replica does not lead the partition (any more).
    #[error("this replica does not lead the partition")]
    NotLeader,
    #[error("null records")]
    NullRecords,
    #[error("not durable within the request timeout")]
    TimedOut,
    #[error("leader epoch {requested} is older than the current epoch {current}")]
    FencedLeaderEpoch { requested: i32, current: i32 },
    #[error("leader epoch {requested} is newer than the current epoch {current}")]
    UnknownLeaderEpoch { requested: i32, current: i32 },
    /// A batch for a compacted topic holds records without a key (Kafka's
    /// KIP-467 record errors): nothing of the batch is appended.
    #[error("One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]", indexes.len(), first_record_errors(partition, indexes))]
    KeylessRecords {
        /// The topic partition, as `topic-index`.
        partition: String,
        /// Indexes within the batch of the records without a key.
        indexes: Vec<i32>,
    },
    /// DeleteRecords on a topic whose cleanup.policy lacks `delete`.
    #[error("Records of partition {0} can not be deleted due to the configured policy")]
    DeletionNotAllowed(String),
}

/// Kafka's message for a record without a key in a compacted topic.
pub fn keyless_record_message(partition: &str) -> String {
    format!("Compacted topic cannot accept message without key in topic partition {partition}")
}

/// The first three record errors as Kafka lists them in its message.
fn first_record_errors(partition: &str, indexes: &[i32]) -> String {
    indexes
        .iter()
        .take(3)
        .map(|i| {
            format!(
                "RecordError(batchIndex={i}, message='{}')",
                keyless_record_message(partition)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl PartitionError {
    /// KIP-467's per-record errors: (index in the batch, message).
    pub fn record_errors(&self) -> Vec<(i32, String)> {
        match self {
            PartitionError::KeylessRecords { partition, indexes } => indexes
                .iter()
                .map(|&i| (i, keyless_record_message(partition)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl From<AppendError> for PartitionError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Batch(b) => PartitionError::Batch(b),
            AppendError::Storage(s) => PartitionError::Storage(s),
        }
    }
}

impl From<ReadError> for PartitionError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::OffsetOutOfRange {
                offset,
                log_start_offset,
                high_watermark,
            } => PartitionError::OffsetOutOfRange {
                offset,
                log_start_offset,
                high_watermark,
            },
            ReadError::Storage(s) => PartitionError::Storage(s),
        }
    }
}

/// A batch in the log (or found there already), not yet waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub ticket: AppendTicket,
    /// A retry of a batch already in the log: nothing new was appended and
    /// the ticket holds the original offsets.
    pub duplicate: bool,
}

/// A produced batch, as the producer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub base_offset: i64,
    /// The broker time stamped on the batch for LogAppendTime topics.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
    pub duplicate: bool,
}

/// Whole batches read from a partition, with its offsets at the time.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub batches: Vec<Bytes>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// Which offset a ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    /// -1: the high watermark.
    Latest,
    /// -2: the log start offset.
    Earliest,
    /// -3: the record with the largest timestamp.
    MaxTimestamp,
    /// The first record at or after this timestamp.
    Timestamp(i64),
}

impl OffsetQuery {
    /// Kafka's wire encoding: -1, -2, -3 or a timestamp. Other negative
    /// values have no meaning; Kafka answers them with no offset.
    pub fn from_wire(timestamp: i64) -> Option<OffsetQuery> {
        match timestamp {
            -1 => Some(OffsetQuery::Latest),
            -2 => Some(OffsetQuery::Earliest),
            -3 => Some(OffsetQuery::MaxTimestamp),
            t if t >= 0 => Some(OffsetQuery::Timestamp(t)),
            _ => None,
        }
    }
}

pub struct Partition {
    log: PartitionLog,
    producers: RefCell<ProducerStateTable>,
    /// The leader-epoch cache (Kafka's `leader-epoch-checkpoint`): where
    /// each leader epoch's records start. Saved with the producer
    /// snapshot at a clean close, rebuilt from the batches' epochs
    /// otherwise.
    epochs: RefCell<EpochCache>,
    /// The topic settings other than the log's (whose own copy is in
    /// `log`).
    topic: RefCell<PartitionConfig>,
    /// The epoch this partition is led in: [`LEADER_EPOCH`] on a single
    /// node, the metadata image's in a cluster ([`Partition::lead_in`]).
    leader_epoch: std::cell::Cell<i32>,
    /// Its part in replication (see [`replica`]).
    role: RefCell<replica::Role>,
    /// The high watermark saved at the last clean close, while the log
    /// still ends where it did then; taken when the replica stands by at
    /// start.
    saved_high_watermark: std::cell::Cell<Option<i64>>,
    /// Its replicas' racks where consumers may be sent to read from a
    /// follower in their rack (KIP-392, `replica.selector.class`); empty
    /// otherwise.
    read_racks: RefCell<Vec<(crate::replication::NodeId, String)>>,
    /// Bytes and records in and out, for the metrics endpoint.
    pub counters: crate::stats::PartitionCounters,
}

impl Partition {
    /// Opens the partition's log and rebuilds its producer state and its
    /// leader-epoch cache: from the snapshot written at the last clean
    /// close when it matches the log's end, otherwise by replaying every
    /// batch header in the log. As a leader it holds [`LEADER_EPOCH`]
    /// from the log end on if no batch has it yet (Kafka assigns a new
    /// leader's epoch at its log end).
    pub async fn open(
        dir: &Path,
        config: PartitionConfig,
        shard: &ShardStorage,
    ) -> Result<Self, StorageError> {
        let log = PartitionLog::open(dir, config.log.clone(), shard).await?;
        Partition::over(log, dir, config).await
    }

    /// Cuts the partition's log so that it ends before the batch holding
    /// `offset` (Kafka's truncateTo, what a follower does before it
    /// fetches from a new leader; see [`PartitionLog::truncate_to`]): the
    /// producer snapshot is emptied first, and the producer state and the
    /// leader-epoch cache are rebuilt from what the log keeps.
    pub async fn truncate_to(
        self,
        offset: i64,
        shard: &ShardStorage,
    ) -> Result<Self, StorageError> {
        let dir = self.log.dir();
        let config = self.config();
        let epoch = self.leader_epoch();
        let Partition { log, .. } = self;
        let log = log
            .truncate_to(offset, END_FILES, config.log.clone(), shard)
            .await?;
        let partition = Partition::over(log, &dir, config).await?;
        partition.lead_in(epoch);
        Ok(partition)
    }

    /// The partition over its opened log: producer state and epochs from
    /// the snapshot that matches the log's end, or from a replay.
    async fn over(
        log: PartitionLog,
        dir: &Path,
        config: PartitionConfig,
    ) -> Result<Self, StorageError> {
        let end = log.offsets().log_end_offset;
        let found = fsutil::read_file(dir, SNAPSHOT_FILE).await?;
        let saved_hw = fsutil::read_file(dir, HIGH_WATERMARK_FILE).await?;
        if found.is_none() || saved_hw.is_none() {
            // Made now so that a shutdown rewrites them in place; an empty
            // file is no snapshot.
            let at = dir.to_path_buf();
            fsutil::blocking(move || fsutil::create_missing_blocking(&at, END_FILES))
                .await
                .map_err(|e| StorageError::io("creating the producer snapshot", e))?;
        }
        let saved_hw = saved_hw.and_then(|bytes| decode_high_watermark(&bytes, end));
        let snapshot = found.and_then(|bytes| decode_snapshot(&bytes, end));
        let (producers, mut epochs) = match snapshot {
            Some(saved) => saved,
            None => {
                let mut table = ProducerStateTable::default();
                let mut epochs = EpochCache::default();
                let start = log.offsets().log_start_offset;
                log.scan_batch_headers(start, |h| {
                    table.record(h, h.base_offset);
                    if h.partition_leader_epoch >= 0 {
                        epochs.assign(h.partition_leader_epoch, h.base_offset);
                    }
                })
                .await?;
                (table, epochs)
            }
        };
        epochs.assign(LEADER_EPOCH, end);
        Ok(Partition {
            log,
            producers: RefCell::new(producers),
            epochs: RefCell::new(epochs),
            topic: RefCell::new(config),
            leader_epoch: std::cell::Cell::new(LEADER_EPOCH),
            role: RefCell::new(replica::Role::Sole),
            saved_high_watermark: std::cell::Cell::new(saved_hw),
            read_racks: RefCell::new(Vec::new()),
            counters: Default::default(),
        })
    }

    /// Leads the partition in `epoch` (the metadata's, after an election):
    /// appended batches are stamped with it, requests are checked against
    /// it, and the epoch cache has it start at the log end, as Kafka's
    /// leader does when it takes over. An epoch below the current one
    /// changes nothing.
    pub fn lead_in(&self, epoch: i32) {
        if epoch <= self.leader_epoch.get() {
            return;
        }
        self.leader_epoch.set(epoch);
        self.log.set_leader_epoch(epoch);
        let end = self.log.offsets().log_end_offset;
        self.epochs.borrow_mut().assign(epoch, end);
    }

    pub fn config(&self) -> PartitionConfig {
        PartitionConfig {
            log: self.log.config(),
            ..self.topic.borrow().clone()
        }
    }

    /// Applies a topic config change (see [`PartitionLog::set_config`] for
    /// when storage settings take effect).
    pub fn set_config(&self, config: PartitionConfig) {
        if self.log.config() != config.log {
            self.log.set_config(config.log.clone());
        }
        *self.topic.borrow_mut() = config;
    }

    pub fn offsets(&self) -> LogOffsets {
        self.log.offsets()
    }

    pub fn producer_count(&self) -> usize {
        self.producers.borrow().len()
    }

    /// The producers this partition holds state for (DescribeProducers).
    pub fn producers(&self) -> Vec<producer_state::ProducerSummary> {
        self.producers.borrow().summaries()
    }

    /// Bytes of the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.log.size_bytes()
    }

    /// The storage failure that keeps the partition from taking writes, if
    /// any (see [`PartitionLog::storage_error`]); DescribeLogDirs reports it.
    pub fn storage_error(&self) -> Option<StorageError> {
        self.log.storage_error()
    }

    /// Checks a request's current_leader_epoch (-1: not given) against the
    /// partition's, as Kafka does for Fetch, ListOffsets and
    /// OffsetForLeaderEpoch.
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), PartitionError> {
        let current = self.leader_epoch();
        if requested == -1 || requested == current {
            Ok(())
        } else if requested > current {
            Err(PartitionError::UnknownLeaderEpoch { requested, current })
        } else {
            Err(PartitionError::FencedLeaderEpoch { requested, current })
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.get()
    }

    /// Produces one record batch as a producer sent it: checks
    /// min.insync.replicas for acks=all, validates, applies the idempotent
    /// producer rules (a retry gets its original offsets; a gap or a stale
    /// epoch is refused), appends, then waits for what `acks` asks, at most
    /// `timeout` for durability.
    pub async fn produce(
        &self,
        records: Option<&[u8]>,
        acks: Acks,
        timeout: Duration,
    ) -> Result<Produced, PartitionError> {
        let Some(records) = records else {
            return Err(PartitionError::NullRecords);
        };
        if self.is_follower() {
            return Err(PartitionError::NotLeader);
        }
        if acks == Acks::All {
            self.check_acks_all()?;
        }
        let appended = self.append(records).await?;
        if !appended.duplicate {
            let t = &appended.ticket;
            self.counters.bytes_in.add(records.len() as u64);
            self.counters
                .messages_in
                .add((t.last_offset - t.base_offset + 1).max(0) as u64);
        }
        let started = std::time::Instant::now();
        self.wait(&appended, acks, Some(timeout)).await?;
        if acks == Acks::All {
            let left = timeout.saturating_sub(started.elapsed());
            self.wait_replicated(appended.ticket.last_offset, left)
                .await?;
        }
        Ok(Produced {
            base_offset: appended.ticket.base_offset,
            log_append_time: appended.ticket.log_append_time,
            log_start_offset: self.log.offsets().log_start_offset,
            duplicate: appended.duplicate,
        })
    }

    /// The first half of [`Partition::produce`] for writers inside the
    /// broker that must queue several batches in order before waiting (the
    /// offsets log): validates, reserves space, applies the producer rules
    /// and queues the batch. Returns once it has its offsets.
    pub async fn append(&self, batch: &[u8]) -> Result<Appended, PartitionError> {
        let header = self.log.validate(batch)?;
        let (codec, level) = {
            let topic = self.topic.borrow();
            self.check_timestamps(batch, &header, &topic)?;
            if topic.cleanup.compact {
                let indexes = self.keyless_records(batch)?;
                if !indexes.is_empty() {
                    return Err(PartitionError::KeylessRecords {
                        partition: self.name(),
                        indexes,
                    });
                }
            }
            let level = match topic.compression {
                Some(Compression::Gzip) => Some(topic.gzip_level),
                Some(Compression::Zstd) => Some(topic.zstd_level),
                _ => None,
            };
            (topic.compression, level)
        };
        // A topic whose compression.type names a codec stores every batch
        // in it: one in another is rebuilt (off the fast path: a batch
        // already in the codec is stored as sent, byte for byte).
        let recompressed;
        let (batch, header) = match codec {
            Some(codec) if header.compression().ok() != Some(codec) => {
                recompressed = crate::record::recompress(batch, &header, codec, level)?;
                let header = self.log.validate(&recompressed)?;
                (&recompressed[..], header)
            }
            _ => (batch, header),
        };
        let reservation = self.log.reserve(batch.len()).await?;
        // From here to the append nothing awaits, so the producer check and
        // the offset assignment see the same state.
        match self.producers.borrow().check(&header)? {
            SequenceCheck::Accept => {}
            SequenceCheck::Duplicate(original) => {
                drop(reservation);
                return Ok(Appended {
                    ticket: AppendTicket {
                        base_offset: original.base_offset,
                        last_offset: original.last_offset,
                        log_append_time: None,
                    },
                    duplicate: true,
                });
            }
        }
        let ticket = self.log.append_validated(reservation, batch, &header)?;
        self.producers
            .borrow_mut()
            .record(&header, ticket.base_offset);
        self.appended_as_leader();
        Ok(Appended {
            ticket,
            duplicate: false,
        })
    }

    /// message.timestamp.before.max.ms and .after.max.ms, as Kafka applies
    /// them: with CreateTime, every record's timestamp (other than -1, no
    /// timestamp) must lie within [now - before, now + after]. The batch's
    /// maxTimestamp bounds its records from above; the lowest timestamp
    /// needs the records walked, which happens only when before.max.ms is
    /// set (Kafka's default is unlimited).
    fn check_timestamps(
        &self,
        batch: &[u8],
        header: &BatchHeader,
        topic: &PartitionConfig,
    ) -> Result<(), BatchError> {
        if self.log.config().timestamp_type != TimestampType::CreateTime {
            return Ok(());
        }
        let now = self.log.now_ms();
        let max = now.saturating_add(topic.timestamp_after_max_ms);
        let min = now.saturating_sub(topic.timestamp_before_max_ms);
        let out_of_range = |timestamp: i64| BatchError::TimestampOutOfRange {
            timestamp,
            min,
            max,
        };
        if header.max_timestamp > max {
            return Err(out_of_range(header.max_timestamp));
        }
        if topic.timestamp_before_max_ms == i64::MAX {
            return Ok(());
        }
        let lowest =
            if header.base_timestamp >= min && header.base_timestamp <= header.max_timestamp {
                // Deltas may be negative: walk the records unless the first
                // timestamp is already out of range.
                shardlog_wire::records::decode_records(batch)
                    .ok_or(BatchError::UndecodableRecords(
                        shardlog_wire::records::DECODED_BYTES_MAX,
                    ))?
                    .iter()
                    .map(|r| r.timestamp)
                    .filter(|&t| t != -1)
                    .min()
                    .unwrap_or(header.base_timestamp)
            } else {
                header.base_timestamp
            };
        if lowest != -1 && lowest < min {
            return Err(out_of_range(lowest));
        }
        Ok(())
    }

    /// Appends batches the broker built itself (the offsets log's records)
    /// back to back: all are validated and given space before the first is
    /// queued, and nothing awaits between the appends, so they land
    /// contiguously and either all or none are queued (unless the log
    /// fails in between). Returns the first and the last batch's tickets.
    pub async fn append_batches<B: AsRef<[u8]>>(
        &self,
        batches: &[B],
    ) -> Result<(Appended, Appended), PartitionError> {
        assert!(!batches.is_empty(), "at least one batch");
        let mut headers = Vec::with_capacity(batches.len());
        for b in batches {
            headers.push(self.log.validate(b.as_ref())?);
        }
        let mut reservations = Vec::with_capacity(batches.len());
        for b in batches {
            reservations.push(self.log.reserve(b.as_ref().len()).await?);
        }
        let mut first = None;
        let mut last = None;
        for ((b, reservation), header) in batches.iter().zip(reservations).zip(&headers) {
            // Batches built here carry no producer id: nothing to check or
            // record in the producer state.
            debug_assert!(!header.has_producer_id());
            let ticket = self.log.append_validated(reservation, b.as_ref(), header)?;
            let appended = Appended {
                ticket,
                duplicate: false,
            };
            first.get_or_insert(appended);
            last = Some(appended);
        }
        Ok((first.expect("one batch"), last.expect("one batch")))
    }

    /// The second half: waits until the batch is written (acks 0 and 1) or
    /// durable (acks=all, at most `timeout` when one is given).
    pub async fn wait(
        &self,
        appended: &Appended,
        acks: Acks,
        timeout: Option<Duration>,
    ) -> Result<(), PartitionError> {
        match (acks, timeout) {
            (Acks::None | Acks::Leader, _) => Ok(self.log.wait_appended(&appended.ticket).await?),
            (Acks::All, None) => Ok(self.log.wait_durable(&appended.ticket).await?),
            (Acks::All, Some(timeout)) => {
                let durable = async { Some(self.log.wait_durable(&appended.ticket).await) };
                let expired = async {
                    glommio::timer::sleep(timeout).await;
                    None
                };
                match futures_lite::future::or(durable, expired).await {
                    Some(r) => Ok(r?),
                    None => Err(PartitionError::TimedOut),
                }
            }
        }
    }

    /// Whole batches starting with the one that holds `offset`, up to
    /// `max_bytes` but at least one batch, never past the high watermark.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<Read, PartitionError> {
        let batches = self.log.read(offset, max_bytes).await?.batches;
        self.counters
            .bytes_out
            .add(batches.iter().map(|b| b.len() as u64).sum());
        let offsets = self.log.offsets();
        Ok(Read {
            batches,
            high_watermark: offsets.high_watermark,
            log_start_offset: offsets.log_start_offset,
        })
    }

    /// Resolves once a consumer at `offset` has something to read.
    pub async fn wait_for_data_beyond(&self, offset: i64) -> Result<(), PartitionError> {
        Ok(self.log.wait_for_data_beyond(offset).await?)
    }

    /// ListOffsets for one partition: the offset (and its record's
    /// timestamp, -1 when the answer has none) that `query` names, or
    /// `None` when there is no such record.
    pub async fn list_offset(
        &self,
        query: OffsetQuery,
    ) -> Result<Option<TimestampOffset>, PartitionError> {
        let offsets = self.log.offsets();
        let found = match query {
            OffsetQuery::Latest => Some(TimestampOffset {
                offset: offsets.high_watermark,
                timestamp: -1,
            }),
            OffsetQuery::Earliest => Some(TimestampOffset {
                offset: offsets.log_start_offset,
                timestamp: -1,
            }),
            OffsetQuery::MaxTimestamp => self.log.max_timestamp().await?,
            OffsetQuery::Timestamp(ts) => self
                .log
                .offset_for_timestamp(ts)
                .await?
                // Records past the high watermark are not visible yet.
                .filter(|t| t.offset < offsets.high_watermark),
        };
        Ok(found)
    }

    /// The end offset of leader epoch `requested` (OffsetForLeaderEpoch),
    /// from the leader-epoch cache as Kafka's leader answers: the largest
    /// epoch at or below it and where that epoch ends; `None` (Kafka's
    /// UNDEFINED_EPOCH and offset) for an undefined epoch or one above
    /// every epoch the log has.
    pub fn end_offset_for_epoch(&self, requested: i32) -> Option<(i32, i64)> {
        let end = self.log.offsets().log_end_offset;
        let (epoch, offset) = self.epochs.borrow().end_offset_for(requested, end);
        (epoch != crate::replication::UNDEFINED_EPOCH).then_some((epoch, offset))
    }

    /// The leader-epoch cache's entries: (epoch, start offset).
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.epochs
            .borrow()
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    /// Moves the log start offset to `offset` (DeleteRecords; -1: the high
    /// watermark) and returns the new low watermark.
    pub async fn delete_records(&self, offset: i64) -> Result<i64, PartitionError> {
        if !self.topic.borrow().cleanup.delete {
            return Err(PartitionError::DeletionNotAllowed(self.name()));
        }
        let offset = if offset == -1 {
            self.log.offsets().high_watermark
        } else {
            offset
        };
        Ok(self.log.delete_records_before(offset).await?)
    }

    /// Deletes segments past retention.ms or retention.bytes.
    pub async fn enforce_retention(&self) -> Result<RetentionOutcome, PartitionError> {
        if !self.topic.borrow().cleanup.delete {
            return Ok(RetentionOutcome::default());
        }
        Ok(self.log.enforce_retention().await?)
    }

    /// One log cleaner pass over a compacted partition (see
    /// `storage::log::cleaner`); `None` for a topic without `compact`.
    /// `dedupe_buffer_bytes` and `io_bytes_per_second` are the shard's
    /// cleaner's.
    pub async fn clean(
        &self,
        dedupe_buffer_bytes: usize,
        io_bytes_per_second: f64,
    ) -> Result<Option<crate::storage::CleanOutcome>, PartitionError> {
        let topic = self.topic.borrow().clone();
        if !topic.cleanup.compact {
            return Ok(None);
        }
        let params = crate::storage::CleanParams {
            dedupe_buffer_bytes,
            min_cleanable_dirty_ratio: topic.cleaner.min_cleanable_dirty_ratio,
            min_compaction_lag_ms: topic.cleaner.min_compaction_lag_ms,
            max_compaction_lag_ms: topic.cleaner.max_compaction_lag_ms,
            delete_retention_ms: topic.cleaner.delete_retention_ms,
            io_bytes_per_second,
        };
        let last_batches = self.producers.borrow().last_batch_ends();
        Ok(Some(self.log.clean(&params, last_batches).await?))
    }

    /// The topic partition as Kafka names it in messages (`topic-index`):
    /// its directory's name.
    pub fn name(&self) -> String {
        self.log
            .dir()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// KIP-467: the indexes of a batch's records without a key (a null
    /// key; an empty one is a key), for a compacted topic.
    fn keyless_records(&self, batch: &[u8]) -> Result<Vec<i32>, BatchError> {
        let records = shardlog_wire::records::decode_records(batch).ok_or(
            BatchError::UndecodableRecords(shardlog_wire::records::DECODED_BYTES_MAX),
        )?;
        Ok(records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.key.is_none())
            .map(|(i, _)| i as i32)
            .collect())
    }

    /// Closes the log cleanly and snapshots the producer state.
    pub async fn close(&self) -> Result<(), StorageError> {
        match self.close_deferred().await? {
            Some(closing) => closing.finish().await,
            None => Ok(()),
        }
    }

    /// [`Partition::close`] for a shutdown of many partitions: stops the
    /// log and returns what is left to write (the producer snapshot among
    /// it) for the caller to run with many others (see
    /// [`PartitionLog::close_deferred`]).
    pub async fn close_deferred(&self) -> Result<Option<ClosingLog>, StorageError> {
        let Some(mut closing) = self.log.close_deferred().await? else {
            return Ok(None);
        };
        let end = self.log.offsets().log_end_offset;
        closing.add_file(
            SNAPSHOT_FILE,
            encode_snapshot(&self.producers.borrow(), &self.epochs.borrow(), end),
        );
        let hw = self.log.offsets().high_watermark;
        closing.add_file(HIGH_WATERMARK_FILE, encode_high_watermark(hw, end));
        Ok(Some(closing))
    }
}

/// High-watermark file layout: the log end it was taken at (8 bytes), the
/// high watermark (8), CRC32C of both (4).
fn encode_high_watermark(hw: i64, end_offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend_from_slice(&end_offset.to_be_bytes());
    out.extend_from_slice(&hw.to_be_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The saved high watermark if the file is whole and was taken at log end
/// `end_offset`.
fn decode_high_watermark(bytes: &[u8], end_offset: i64) -> Option<i64> {
    if bytes.len() != 20 {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
    if crc32c::crc32c(&bytes[..16]) != crc {
        return None;
    }
    let end = i64::from_be_bytes(bytes[..8].try_into().ok()?);
    let hw = i64::from_be_bytes(bytes[8..16].try_into().ok()?);
    (end == end_offset && (0..=end).contains(&hw)).then_some(hw)
}

/// Snapshot layout: log end offset (8 bytes), CRC32C of the rest (4),
/// then `SNAPSHOT_MAGIC`, the producer table's length (4) and the table,
/// the leader-epoch count (4) and each epoch (4) with its start offset
/// (8). A snapshot of another layout is no snapshot (the log is replayed).
fn encode_snapshot(table: &ProducerStateTable, epochs: &EpochCache, end_offset: i64) -> Vec<u8> {
    let encoded = table.encode();
    let mut body = Vec::with_capacity(12 + encoded.len() + 12 * epochs.entries().len());
    body.extend_from_slice(SNAPSHOT_MAGIC);
    body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    body.extend_from_slice(&encoded);
    body.extend_from_slice(&(epochs.entries().len() as u32).to_be_bytes());
    for e in epochs.entries() {
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.start_offset.to_be_bytes());
    }
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&end_offset.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Marks the snapshot layout with the leader epochs.
const SNAPSHOT_MAGIC: &[u8; 4] = b"SLP2";

fn decode_snapshot(bytes: &[u8], end_offset: i64) -> Option<(ProducerStateTable, EpochCache)> {
    if bytes.len() < 12 {
        return None;
    }
    let offset = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
    let crc = u32::from_be_bytes(bytes[8..12].try_into().ok()?);
    let body = &bytes[12..];
    if offset != end_offset || crc32c::crc32c(body) != crc {
        return None;
    }
    let rest = body.strip_prefix(SNAPSHOT_MAGIC)?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let table = ProducerStateTable::decode(rest.get(4..4 + len)?)?;
    let mut rest = rest.get(4 + len..)?;
    let count = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest = &rest[4..];
    if rest.len() != count.checked_mul(12)? {
        return None;
    }
    let assignments: Vec<(i32, i64)> = rest
        .chunks_exact(12)
        .map(|c| {
            (
                i32::from_be_bytes(c[..4].try_into().expect("4 bytes")),
                i64::from_be_bytes(c[4..].try_into().expect("8 bytes")),
            )
        })
        .collect();
    Some((table, EpochCache::from_assignments(&assignments)))
}
