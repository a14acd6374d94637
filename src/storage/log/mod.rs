//! `PartitionLog`: one partition's segments, write path, reads, recovery and
//! retention.
//!
//! Write path. An append is validated, given its offsets, copied once into a
//! per-partition arena (where its header is patched; the resulting `Bytes` is
//! what the cache serves) and once into the active segment's aligned tail
//! buffer. A writer task per log writes buffers with O_DIRECT in file order,
//! up to four at once when they do not overlap; whatever was appended while
//! writes were in flight goes out in the next one. The partially filled last
//! block is carried into the next buffer and rewritten (after the write that
//! holds it completes) until full. A syncer task runs
//! fdatasync when a durable waiter needs it, when flush.messages records are
//! unsynced, or flush.ms after the first unsynced write; appends written
//! while an fdatasync runs are covered by the next one (group commit).
//!
//! A `PartitionLog` and its two tasks live on the shard that owns the
//! partition; all state is in one `Rc<LogShared>`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use glommio::task::JoinHandle;

pub mod cleaner;
mod recovery;
pub mod truncate;
mod writer;
mod zero_ahead;

use recovery::recover;
use writer::*;
use zero_ahead::ZeroAhead;
pub use zero_ahead::ZeroBuffer;

use super::cache::{BatchCache, CacheKey, CachedBatch};
use super::clock::Clock;
use super::config::{DurableWrites, LogConfig, ShardStorageConfig};
use super::fsutil::{self, Durability};
use super::preallocation::{self, Preallocation};
use super::read_ahead::{Ahead, ReadAheads};
use super::segment::{self, round_up, Segment};
use super::waiters::{FifoSpace, OffsetWaiters, Signal};
use super::{AppendError, ReadError, StorageError};
use crate::record::batch::{BatchHeader, HEADER_BYTES};
use crate::record::records::decode_records;
use crate::record::{
    patch_base_offset_and_epoch, set_log_append_time, validate_producer_batch, TimestampType,
};

/// O_DIRECT alignment used for buffer positions and lengths.
const BLOCK_BYTES: u64 = 4096;
/// Largest aligned write buffer (the unit of a DMA write). Tail buffers
/// start small, so an idle partition holds little memory, and double up to
/// this size while appends keep filling them.
const WRITE_CHUNK_BYTES: usize = 1 << 20;
const TAIL_BYTES_MIN: usize = 16 << 10;
/// Size of the arena chunks that appended batches are copied into.
const ARENA_BYTES: usize = 64 << 10;
const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
const LOG_START_FILE: &str = "log-start-offset";

fn align_down(v: u64) -> u64 {
    v / BLOCK_BYTES * BLOCK_BYTES
}

/// Whether the block device holding `dir` takes FUA writes (its
/// `queue/fua` in sysfs); None when that cannot be told (not a block
/// device, no sysfs).
fn device_has_fua(dir: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(dir).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let mut sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    if sys.join("partition").exists() {
        sys = sys.parent()?.to_path_buf();
    }
    let fua = std::fs::read_to_string(sys.join("queue/fua")).ok()?;
    Some(fua.trim() == "1")
}

/// The median time of one durable 4 KiB overwrite, as write + fdatasync
/// and as one O_DSYNC write, over rounds that alternate the two (so both
/// see the same device state).
async fn durable_write_probe(
    probe: &DmaFile,
    path: &Path,
) -> std::io::Result<(Duration, Duration)> {
    const ROUNDS: usize = 15;
    let dsync = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .dma_open(path)
        .await?;
    let (mut with_sync, mut with_dsync) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        probe
            .write_at(probe.alloc_dma_buffer(BLOCK_BYTES as usize), 0)
            .await?;
        probe.fdatasync().await?;
        with_sync.push(start.elapsed());
        let start = Instant::now();
        dsync
            .write_at(dsync.alloc_dma_buffer(BLOCK_BYTES as usize), 0)
            .await?;
        with_dsync.push(start.elapsed());
    }
    dsync.close().await.ok();
    with_sync.sort();
    with_dsync.sort();
    Ok((with_sync[ROUNDS / 2], with_dsync[ROUNDS / 2]))
}

/// Storage shared by all partition logs of one shard: the batch cache, the
/// clock and the shard's storage limits. Lives on one shard.
#[derive(Clone)]
pub struct ShardStorage {
    pub config: ShardStorageConfig,
    pub cache: Rc<RefCell<BatchCache>>,
    pub clock: Rc<dyn Clock>,
    pub preallocation: Rc<Preallocation>,
    pub read_aheads: Rc<RefCell<ReadAheads>>,
    pub zeros: Rc<ZeroBuffer>,
    /// Durable appends are written O_DSYNC (`DurableWrites` resolved).
    pub dsync: bool,
    /// Write, fdatasync and cache statistics of every log of the shard.
    pub stats: Rc<crate::stats::StorageStats>,
}

impl ShardStorage {
    /// The size of the reads that scan a log (at least a block).
    pub fn read_chunk_bytes(&self) -> usize {
        self.config.read_chunk_bytes.max(BLOCK_BYTES as usize)
    }

    /// Prepares a shard's storage under `data_dir`. It writes and reads back
    /// a small probe file first: on some kernels the first O_DIRECT read a
    /// shard issues on a device fails if the first file it opened was
    /// empty, and the probe also proves the file system supports O_DIRECT.
    pub async fn start(
        data_dir: &Path,
        shard_id: usize,
        config: ShardStorageConfig,
        clock: Rc<dyn Clock>,
    ) -> Result<Self, StorageError> {
        let dir = data_dir.to_path_buf();
        fsutil::blocking(move || std::fs::create_dir_all(&dir))
            .await
            .map_err(|e| StorageError::io("creating the data directory", e))?;
        let probe_path = data_dir.join(format!(".dma-probe-{shard_id}"));
        // Written with a buffered write first: the first DmaFile a shard
        // opens on a device must not be empty, or glommio's O_DIRECT reads
        // on that device fail with EOPNOTSUPP.
        let pattern = vec![0x5au8; BLOCK_BYTES as usize];
        let (path, bytes) = (probe_path.clone(), pattern.clone());
        fsutil::blocking(move || std::fs::write(path, bytes))
            .await
            .map_err(|e| StorageError::io("writing the O_DIRECT probe", e))?;
        let probe = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&probe_path)
            .await
            .map_err(|e| {
                StorageError::BadDirectory(format!(
                    "{} does not support O_DIRECT files: {e}",
                    data_dir.display()
                ))
            })?;
        let back = probe
            .read_at_aligned(0, BLOCK_BYTES as usize)
            .await
            .map_err(|e| StorageError::io("reading the O_DIRECT probe", e))?;
        if *back != pattern[..] {
            return Err(StorageError::BadDirectory(
                "O_DIRECT probe read back different bytes".into(),
            ));
        }
        let buf = probe.alloc_dma_buffer(BLOCK_BYTES as usize);
        probe
            .write_at(buf, 0)
            .await
            .map_err(|e| StorageError::io("writing the O_DIRECT probe", e))?;
        let dsync = match config.durable_writes {
            DurableWrites::Fdatasync => false,
            DurableWrites::Dsync => true,
            DurableWrites::Auto if device_has_fua(data_dir) == Some(false) => {
                // Without FUA the kernel follows each O_DSYNC write with a
                // cache flush of its own, so concurrent durable writes pay
                // one flush each where fdatasync's group commit pays one
                // for all (measured: no gain, a worse tail).
                tracing::info!(
                    shard = shard_id,
                    "durable writes: write + fdatasync (the device has no FUA)"
                );
                false
            }
            DurableWrites::Auto => {
                let (with_sync, with_dsync) = durable_write_probe(&probe, &probe_path)
                    .await
                    .map_err(|e| StorageError::io("probing durable writes", e))?;
                tracing::info!(
                    shard = shard_id,
                    write_then_fdatasync_us = with_sync.as_micros() as u64,
                    dsync_write_us = with_dsync.as_micros() as u64,
                    "durable writes: {}",
                    if with_dsync < with_sync {
                        "O_DSYNC"
                    } else {
                        "write + fdatasync"
                    }
                );
                with_dsync < with_sync
            }
        };
        probe.close().await.ok();
        fsutil::remove_file(probe_path).await?;
        Ok(ShardStorage {
            cache: Rc::new(RefCell::new(BatchCache::new(config.cache_bytes_max))),
            preallocation: Rc::new(Preallocation::new(config.preallocate_bytes_max)),
            read_aheads: Rc::new(RefCell::new(ReadAheads::new(config.read_ahead_bytes_max))),
            zeros: Rc::new(ZeroBuffer::new(config.zero_ahead_bytes)),
            dsync,
            config,
            clock,
            stats: Rc::default(),
        })
    }
}

/// What an append was given. The batch's records occupy
/// `base_offset..=last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendTicket {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped on the batch for LogAppendTime topics.
    pub log_append_time: Option<i64>,
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadLimit {
    /// What consumers may see.
    HighWatermark,
    /// Everything written to the file: what a follower replicates.
    Written,
}

/// The offsets of a partition log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset the next appended record will get.
    pub log_end_offset: i64,
    /// Offsets below this are written to the file.
    pub written_offset: i64,
    /// Offsets below this are on stable storage.
    pub durable_offset: i64,
    /// Offsets below this are visible to consumers.
    pub high_watermark: i64,
}

/// Counters of one log's I/O, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    pub appends: u64,
    pub writes: u64,
    pub bytes_written: u64,
    pub fdatasyncs: u64,
    pub segments_rolled: u64,
    pub disk_reads: u64,
    /// Times the log ran out of space and waited for it.
    pub out_of_space_stalls: u64,
    /// Chunks of zeros written ahead of the data (see `zero_ahead`).
    pub zero_writes: u64,
    /// Writes made durable by O_DSYNC (`DurableWrites::Dsync`).
    pub dsync_writes: u64,
}

/// Batches returned by a read, in offset order.
#[derive(Debug, Clone, Default)]
pub struct ReadBatches {
    pub batches: Vec<Bytes>,
    pub from_cache: bool,
}

impl ReadBatches {
    pub fn total_bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// Result of a lookup by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub log_start_offset: i64,
}

/// Space in the write buffers, taken before an append and given back once
/// the append is written. Dropping an unused reservation returns it.
pub struct Reservation {
    shared: Rc<LogShared>,
    units: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.units > 0 {
            self.shared.space.release(self.units);
        }
    }
}

/// Writes of one log that may be in flight at once: enough to keep the
/// disk busy while the shard copies the next appends.
const WRITES_IN_FLIGHT_MAX: usize = 4;

/// A write handed to the kernel and not yet retired.
struct InFlightWrite {
    id: u64,
    segment_base: i64,
    end_pos: u64,
    complete_offset: i64,
    file: Rc<DmaFile>,
    /// Written through the O_DSYNC descriptor: durable once done.
    dsync: bool,
    done: bool,
}

/// A buffer of file data waiting to be written.
enum WriteJob {
    Data {
        segment_base: i64,
        pos: u64,
        buf: DmaBuffer,
        len: usize,
        complete_offset: i64,
    },
    /// Every byte of this segment has been queued: finish it once written.
    Seal { segment_base: i64 },
}

/// The in-memory end of the active segment: bytes from the aligned `pos`.
struct Tail {
    segment_base: i64,
    buf: DmaBuffer,
    pos: u64,
    len: usize,
    dirty: bool,
    /// Offset after the last batch wholly inside the buffers up to here.
    complete_offset: i64,
}

struct LogState {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset; the last is the active segment.
    segments: Vec<Segment>,
    /// Segments whose data is all on disk and whose indexes are written:
    /// retention may delete them. Count from the front of `segments`.
    finalized_segments: usize,
    allocated: Vec<(i64, u64)>,
    /// The last preallocation step (doubles with each allocation).
    preallocate_step: u64,
    /// Bytes charged to the shard's preallocation budget.
    preallocate_charged: u64,
    log_start_offset: i64,
    next_offset: i64,
    written_offset: i64,
    durable_offset: i64,
    high_watermark: i64,
    /// Replication's bound on the high watermark (the leader's: the
    /// smallest log end over its ISR; a follower's: its leader's high
    /// watermark); none for a partition with one replica.
    high_watermark_cap: Option<i64>,
    leader_epoch: i32,
    tail: Tail,
    queue: VecDeque<WriteJob>,
    in_flight: VecDeque<InFlightWrite>,
    next_write_id: u64,
    pool: Vec<DmaBuffer>,
    zero: ZeroAhead,
    arena: BytesMut,
    /// (last offset, units): reservations returned once written.
    releases: VecDeque<(i64, u64)>,
    /// Files written since the last fdatasync.
    unsynced_files: Vec<(i64, Rc<DmaFile>)>,
    first_unsynced_write_ms: Option<i64>,
    failed: Option<StorageError>,
    /// The filesystem is out of space (or quota): appends are refused and
    /// the writer retries on a back-off until a write goes through.
    stalled: Option<StorageError>,
    closing: bool,
    stats: LogStats,
}

impl LogShared {
    /// The right to remove or replace segment files (retention, the
    /// cleaner's swaps).
    async fn maintenance_permit(&self) -> Result<glommio::sync::Permit<'_>, StorageError> {
        self.maintenance.acquire_permit(1).await.map_err(|e| {
            StorageError::io(
                "waiting to remove or replace segment files",
                std::io::Error::other(e.to_string()),
            )
        })
    }
}

impl LogState {
    /// The segment with this base offset, if still present.
    fn segment(&self, base_offset: i64) -> Option<&Segment> {
        let at = self
            .segments
            .partition_point(|s| s.base_offset < base_offset);
        self.segments
            .get(at)
            .filter(|s| s.base_offset == base_offset)
    }

    fn segment_mut(&mut self, base_offset: i64) -> Option<&mut Segment> {
        let at = self
            .segments
            .partition_point(|s| s.base_offset < base_offset);
        self.segments
            .get_mut(at)
            .filter(|s| s.base_offset == base_offset)
    }
}

struct LogShared {
    state: RefCell<LogState>,
    written_waiters: OffsetWaiters<StorageError>,
    durable_waiters: OffsetWaiters<StorageError>,
    hw_waiters: OffsetWaiters<StorageError>,
    writer_wake: Signal,
    syncer_wake: Signal,
    space: Rc<FifoSpace>,
    cache: Rc<RefCell<BatchCache>>,
    cache_key: CacheKey,
    clock: Rc<dyn Clock>,
    preallocation: Rc<Preallocation>,
    read_aheads: Rc<RefCell<ReadAheads>>,
    zeros: Rc<ZeroBuffer>,
    read_chunk_bytes: usize,
    /// Durable appends are written O_DSYNC (see `DurableWrites::Dsync`).
    dsync: bool,
    stats: Rc<crate::stats::StorageStats>,
    /// Held by retention and by the cleaner's swaps, which must not remove
    /// or replace segment files under each other.
    maintenance: glommio::sync::Semaphore,
}

/// One partition's log. Lives on the shard that owns the partition.
pub struct PartitionLog {
    shared: Rc<LogShared>,
    writer: Cell<Option<JoinHandle<()>>>,
    syncer: Cell<Option<JoinHandle<()>>>,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering it first: after an
    /// unclean shutdown the active segment is scanned and cut at the first
    /// damaged batch; missing or damaged indexes are rebuilt.
    pub async fn open(
        dir: &Path,
        config: LogConfig,
        shard: &ShardStorage,
    ) -> Result<Self, StorageError> {
        assert!(
            config.segment_bytes <= i32::MAX as u64,
            "segment.bytes must fit in 31 bits, as in Kafka"
        );
        let recovered = recover(dir, &config, shard).await?;
        let cache_key = shard.cache.borrow_mut().register();
        let next_offset = recovered
            .segments
            .last()
            .map_or(recovered.log_start_offset, |s| s.next_offset);
        let active = recovered.segments.last().expect("at least one segment");
        let tail = Tail {
            segment_base: active.base_offset,
            buf: recovered.tail_buf,
            pos: align_down(active.size),
            len: (active.size - align_down(active.size)) as usize,
            dirty: false,
            complete_offset: next_offset,
        };
        let finalized_segments = recovered.segments.len() - 1;
        let state = LogState {
            dir: dir.to_path_buf(),
            finalized_segments,
            allocated: recovered.allocated,
            preallocate_step: 0,
            preallocate_charged: 0,
            segments: recovered.segments,
            log_start_offset: recovered.log_start_offset,
            next_offset,
            written_offset: next_offset,
            durable_offset: next_offset,
            high_watermark: next_offset,
            high_watermark_cap: None,
            leader_epoch: 0,
            tail,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            next_write_id: 0,
            pool: Vec::new(),
            zero: ZeroAhead::default(),
            arena: BytesMut::new(),
            releases: VecDeque::new(),
            unsynced_files: Vec::new(),
            first_unsynced_write_ms: None,
            failed: None,
            stalled: None,
            closing: false,
            stats: LogStats::default(),
            config: config.clone(),
        };
        let shared = Rc::new(LogShared {
            state: RefCell::new(state),
            written_waiters: OffsetWaiters::default(),
            durable_waiters: OffsetWaiters::default(),
            hw_waiters: OffsetWaiters::default(),
            writer_wake: Signal::default(),
            syncer_wake: Signal::default(),
            space: FifoSpace::new(config.write_buffer_bytes_max as u64),
            cache: shard.cache.clone(),
            cache_key,
            clock: shard.clock.clone(),
            preallocation: shard.preallocation.clone(),
            read_aheads: shard.read_aheads.clone(),
            zeros: shard.zeros.clone(),
            read_chunk_bytes: shard.read_chunk_bytes(),
            dsync: shard.dsync,
            stats: shard.stats.clone(),
            maintenance: glommio::sync::Semaphore::new(1),
        });
        let writer = glommio::spawn_local(writer_loop(shared.clone())).detach();
        let syncer = glommio::spawn_local(syncer_loop(shared.clone())).detach();
        Ok(PartitionLog {
            shared,
            writer: Cell::new(Some(writer)),
            syncer: Cell::new(Some(syncer)),
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.shared.state.borrow().dir.clone()
    }

    pub fn config(&self) -> LogConfig {
        self.shared.state.borrow().config.clone()
    }

    /// Replaces the log's settings (a topic config change). Segment size,
    /// retention and flush settings apply from the next append, roll or
    /// retention pass; the write-buffer capacity stays as opened.
    /// The log's wall clock (milliseconds since the epoch).
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    pub fn set_config(&self, config: LogConfig) {
        self.shared.state.borrow_mut().config = config;
        self.shared.syncer_wake.notify();
    }

    pub fn offsets(&self) -> LogOffsets {
        let st = self.shared.state.borrow();
        LogOffsets {
            log_start_offset: st.log_start_offset,
            log_end_offset: st.next_offset,
            written_offset: st.written_offset,
            durable_offset: st.durable_offset,
            high_watermark: st.high_watermark,
        }
    }

    pub fn stats(&self) -> LogStats {
        self.shared.state.borrow().stats
    }

    /// Number of segments, the active one included.
    pub fn segment_count(&self) -> usize {
        self.shared.state.borrow().segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        let st = self.shared.state.borrow();
        st.segments.iter().map(|s| s.base_offset).collect()
    }

    /// Total bytes of the log's segments.
    pub fn size_bytes(&self) -> u64 {
        self.shared
            .state
            .borrow()
            .segments
            .iter()
            .map(|s| s.size)
            .sum()
    }

    /// The storage failure that keeps this log from taking appends, if
    /// any: a failed write or fdatasync, or a full disk it is waiting out.
    /// A log closed on purpose reports none.
    pub fn storage_error(&self) -> Option<StorageError> {
        let st = self.shared.state.borrow();
        st.failed
            .clone()
            .filter(|e| *e != StorageError::Closed)
            .or_else(|| st.stalled.clone())
    }

    /// Why appends are refused right now: the log failed, is out of space,
    /// or is closing.
    fn refusal(&self) -> Option<StorageError> {
        let st = self.shared.state.borrow();
        if let Some(e) = st.failed.as_ref().or(st.stalled.as_ref()) {
            return Some(e.clone());
        }
        st.closing.then_some(StorageError::Closed)
    }

    /// The leader epoch stamped into appended batches.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.shared.state.borrow_mut().leader_epoch = epoch;
    }

    /// Starts the high watermark over at `offset` (bounded there until
    /// replication raises the bound): a replica whose high watermark is
    /// not known at start shows nothing it cannot vouch for.
    pub fn restart_high_watermark(&self, offset: i64) {
        let mut st = self.shared.state.borrow_mut();
        st.high_watermark = offset.min(st.high_watermark);
        st.high_watermark_cap = Some(st.high_watermark);
    }

    /// Bounds the high watermark by what replication allows (`None`: the
    /// log's own durability policy alone). It never moves back.
    pub fn set_high_watermark_cap(&self, cap: Option<i64>) {
        self.shared.state.borrow_mut().high_watermark_cap = cap;
        writer::update_high_watermark(&self.shared);
    }

    /// Waits for room in the partition's write buffers. Reservations are
    /// granted in request order, so appends made right after their
    /// reservation keep that order.
    pub async fn reserve(&self, batch_bytes: usize) -> Result<Reservation, StorageError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let granted = self.shared.space.acquire(batch_bytes as u64).await;
        let Some(units) = granted else {
            return Err(self.refusal().unwrap_or(StorageError::Closed));
        };
        Ok(Reservation {
            shared: self.shared.clone(),
            units,
        })
    }

    /// Validates a producer batch as [`validate_producer_batch`] does with
    /// this topic's max.message.bytes.
    pub fn validate(&self, batch: &[u8]) -> Result<BatchHeader, AppendError> {
        let max = self.shared.state.borrow().config.max_message_bytes;
        Ok(validate_producer_batch(batch, max)?)
    }

    /// Reserves space, validates and appends one producer batch, then
    /// waits until it is appended (written to the file).
    pub async fn append(&self, batch: &[u8]) -> Result<AppendTicket, AppendError> {
        let reservation = self.reserve(batch.len()).await?;
        let header = self.validate(batch)?;
        let ticket = self.append_validated(reservation, batch, &header)?;
        self.wait_appended(&ticket).await?;
        Ok(ticket)
    }

    /// Appends a batch already checked by [`PartitionLog::validate`]:
    /// assigns offsets, stamps LogAppendTime if configured, and queues it
    /// for writing. Does not wait; see [`PartitionLog::wait_appended`] and
    /// [`PartitionLog::wait_durable`].
    pub fn append_validated(
        &self,
        reservation: Reservation,
        batch: &[u8],
        header: &BatchHeader,
    ) -> Result<AppendTicket, AppendError> {
        self.append_stored(reservation, batch, header, true)
    }

    /// Appends a batch a follower copied from its leader, byte for byte
    /// (its offsets, leader epoch and timestamps are the leader's): it must
    /// start at the log end or past it, where the leader's log cleaner
    /// removed whole batches ([`validate_replica_batch`]).
    pub async fn append_replica(&self, batch: &[u8]) -> Result<AppendTicket, AppendError> {
        let reservation = self.reserve(batch.len()).await?;
        let end = self.shared.state.borrow().next_offset;
        let header = crate::record::batch::validate_replica_batch(batch, end)?;
        self.append_stored(reservation, batch, &header, false)
    }

    /// Queues a batch: with `assign`, at the log end with this log's
    /// leader epoch (and LogAppendTime if configured); without, as it is.
    fn append_stored(
        &self,
        mut reservation: Reservation,
        batch: &[u8],
        header: &BatchHeader,
        assign: bool,
    ) -> Result<AppendTicket, AppendError> {
        let shared = &self.shared;
        let now_ms = shared.clock.now_ms();
        let mut st = shared.state.borrow_mut();
        if let Some(e) = st.failed.as_ref().or(st.stalled.as_ref()) {
            return Err(e.clone().into());
        }
        if st.closing {
            return Err(StorageError::Closed.into());
        }
        debug_assert_eq!(batch.len(), header.total_bytes());
        maybe_roll(&mut st, header, now_ms);

        // A replicated batch keeps its offset: at the log end, or past it
        // where the leader's cleaner dropped whole batches (a gap).
        let base_offset = if assign {
            st.next_offset
        } else if header.base_offset >= st.next_offset {
            header.base_offset
        } else {
            return Err(AppendError::Batch(
                crate::record::batch::BatchError::NotAtLogEnd {
                    expected: st.next_offset,
                    found: header.base_offset,
                },
            ));
        };
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let epoch = st.leader_epoch;
        let log_append_time =
            (assign && st.config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);

        // The one copy out of the request: into the cache arena, where the
        // header is patched. The cache and the write buffer share it.
        if st.arena.capacity() - st.arena.len() < batch.len() {
            // Reuses the chunk in place when every batch cut from it is
            // gone (evicted, or no cache); otherwise starts a new chunk.
            st.arena.reserve(ARENA_BYTES.max(batch.len()));
        }
        st.arena.extend_from_slice(batch);
        let mut stored = st.arena.split();
        if assign {
            patch_base_offset_and_epoch(&mut stored, base_offset, epoch);
        }
        if let Some(ts) = log_append_time {
            set_log_append_time(&mut stored, ts);
        }
        let stored = stored.freeze();
        let stored_header = BatchHeader::parse(&stored).expect("validated header");

        let position = st.segments.last().expect("active segment").size;
        let interval = st.config.index_interval_bytes;
        st.segments.last_mut().expect("active segment").note_batch(
            &stored_header,
            position,
            interval,
            now_ms,
        );
        copy_into_tail(&mut st, &stored, last_offset + 1);
        st.next_offset = last_offset + 1;
        st.stats.appends += 1;
        st.releases.push_back((last_offset, reservation.units));
        reservation.units = 0;
        drop(st);

        shared.cache.borrow_mut().insert(
            shared.cache_key,
            CachedBatch {
                base_offset,
                last_offset,
                bytes: stored,
            },
        );
        shared.writer_wake.notify();
        Ok(AppendTicket {
            base_offset,
            last_offset,
            log_append_time,
        })
    }

    /// Resolves once the ticket's batch is written to the file.
    pub async fn wait_appended(&self, ticket: &AppendTicket) -> Result<(), StorageError> {
        let shared = &self.shared;
        wait_beyond(
            shared,
            &shared.written_waiters,
            |st| st.written_offset,
            ticket.last_offset,
            true,
        )
        .await
    }

    /// Resolves once the ticket's batch is on stable storage.
    pub async fn wait_durable(&self, ticket: &AppendTicket) -> Result<(), StorageError> {
        let shared = &self.shared;
        // The syncer runs an fdatasync only when someone needs it.
        shared.syncer_wake.notify();
        wait_beyond(
            shared,
            &shared.durable_waiters,
            |st| st.durable_offset,
            ticket.last_offset,
            true,
        )
        .await
    }

    /// Resolves once something is written beyond `offset` (a follower at
    /// `offset` has something to copy).
    pub async fn wait_for_written_beyond(&self, offset: i64) -> Result<(), StorageError> {
        let shared = &self.shared;
        wait_beyond(
            shared,
            &shared.written_waiters,
            |st| st.written_offset,
            offset,
            false,
        )
        .await
    }

    /// Resolves once the high watermark is above `offset` (a consumer at
    /// `offset` has something to read), for long-polling fetches.
    pub async fn wait_for_data_beyond(&self, offset: i64) -> Result<(), StorageError> {
        let shared = &self.shared;
        wait_beyond(
            shared,
            &shared.hw_waiters,
            |st| st.high_watermark,
            offset,
            false,
        )
        .await
    }

    /// Whole batches starting with the one containing `offset`, up to
    /// `max_bytes` but always at least one batch, never past the high
    /// watermark. Recent data comes from the shard cache without copying;
    /// older data from the segment file in large aligned reads.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadBatches, ReadError> {
        self.read_upto(offset, max_bytes, ReadLimit::HighWatermark)
            .await
    }

    /// [`PartitionLog::read`] up to `limit`. An offset past the log end
    /// (or before its start) is out of range; one between the limit and
    /// the log end reads nothing, as in Kafka.
    pub async fn read_upto(
        &self,
        offset: i64,
        max_bytes: usize,
        limit: ReadLimit,
    ) -> Result<ReadBatches, ReadError> {
        let (hw, start, log_end, visible) = {
            let st = self.shared.state.borrow();
            let hw = match limit {
                ReadLimit::HighWatermark => st.high_watermark,
                ReadLimit::Written => st.written_offset,
            };
            (hw, st.log_start_offset, st.next_offset, st.high_watermark)
        };
        if offset < start || offset > log_end {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                log_start_offset: start,
                high_watermark: visible,
            });
        }
        if offset >= hw {
            return Ok(ReadBatches::default());
        }
        let cached =
            self.shared
                .cache
                .borrow_mut()
                .read(self.shared.cache_key, offset, hw, max_bytes);
        if let Some(batches) = cached {
            self.shared.stats.cache_hits.add(1);
            return Ok(ReadBatches {
                batches,
                from_cache: true,
            });
        }
        self.shared.stats.cache_misses.add(1);
        let mut at = offset;
        let batches = loop {
            let batches = self.read_from_disk(at, hw, max_bytes).await?;
            // Nothing at or after `at` in its segment (the log cleaner
            // removed the segment's last records): go on with the next.
            let next_base = {
                let st = self.shared.state.borrow();
                st.segments.iter().map(|s| s.base_offset).find(|&b| b > at)
            };
            match next_base {
                Some(b) if batches.is_empty() && b < hw => at = b,
                _ => break batches,
            }
        };
        Ok(ReadBatches {
            batches,
            from_cache: false,
        })
    }

    async fn read_from_disk(
        &self,
        offset: i64,
        end_offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let (file, segment_base, mut pos, seg_size, index_slack) = {
            let st = self.shared.state.borrow();
            let at = st.segments.partition_point(|s| s.base_offset <= offset);
            let Some(seg) = at.checked_sub(1).map(|i| &st.segments[i]) else {
                return Ok(Vec::new());
            };
            let Some(file) = seg.file.clone() else {
                return Ok(Vec::new());
            };
            let index_slack = 2 * st.config.index_interval_bytes;
            (
                file,
                seg.base_offset,
                u64::from(seg.index.lookup(offset)),
                seg.size,
                index_slack,
            )
        };
        let mut ahead =
            self.shared
                .read_aheads
                .borrow_mut()
                .take(self.shared.cache_key, segment_base, offset);
        let chunk = self.read_chunk_for(max_bytes);
        let mut out: Vec<Bytes> = Vec::new();
        let mut taken = 0usize;
        let mut expected_next: Option<i64> = None;
        // Where the last batch returned ends, and the offset after it.
        let mut returned_end: Option<(u64, i64)> = None;
        if let Some(a) = &ahead {
            // The chunk starts at the batch holding `offset` exactly.
            pos = a.pos;
            expected_next = Some(offset);
        }
        while pos < seg_size {
            // The chunk read ahead for this offset, else a read now. A
            // chunk read ahead is trusted for batches that start below
            // its `visible_end` and continue the offsets exactly.
            let from_ahead = match ahead.take() {
                Some(a) => a.data.await.ok().map(|d| (a.aligned, d, a.visible_end)),
                None => None,
            };
            let reread_from = from_ahead.as_ref().map(|_| pos);
            let (aligned, data, trusted_end) = match from_ahead {
                Some(got) => got,
                None => {
                    let aligned = align_down(pos);
                    // Always cover at least the header at `pos`, so every
                    // pass makes progress whatever the chunk size. The index
                    // points up to about two intervals before the target:
                    // read that much more so one read usually holds the
                    // whole answer.
                    let need = (pos - aligned) as usize
                        + HEADER_BYTES.max(max_bytes.min(64 << 20) + index_slack);
                    let want = round_up(
                        chunk.max(need).min((seg_size - aligned) as usize),
                        BLOCK_BYTES as usize,
                    );
                    let data = file
                        .read_at_aligned(aligned, want)
                        .await
                        .map_err(|e| StorageError::io("reading segment", e))?;
                    self.shared.state.borrow_mut().stats.disk_reads += 1;
                    let valid = data.len().min((seg_size - aligned) as usize);
                    (aligned, Bytes::copy_from_slice(&data[..valid]), i64::MAX)
                }
            };
            let mut at = (pos - aligned) as usize;
            // Walk the batches in this chunk; `next_pos` says where the
            // next read starts, or `None` when the read is complete.
            let next_pos = loop {
                let rest = data.get(at..).unwrap_or_default();
                let Some(header) = BatchHeader::parse(rest) else {
                    // A header split by the chunk end (or the segment end).
                    break (at > 0 && rest.len() < data.len()).then_some(aligned + at as u64);
                };
                let total = header.total_bytes();
                let sound = header.magic == 2
                    && total >= HEADER_BYTES
                    && expected_next.is_none_or(|next| header.base_offset >= next);
                if reread_from.is_some() && (!sound || header.base_offset >= trusted_end) {
                    // Written after the chunk was read: read it again.
                    break Some(aligned + at as u64);
                }
                if !sound {
                    // Past the written data there are only zeros; anything
                    // else unsound below the high watermark is damage.
                    if out.is_empty() {
                        return Err(StorageError::Corrupt(format!(
                            "no valid batch at byte {} of the segment holding offset {offset}",
                            aligned + at as u64
                        )));
                    }
                    break None;
                }
                if header.base_offset >= end_offset {
                    break None;
                }
                expected_next = Some(header.next_offset());
                if header.last_offset() < offset {
                    // Before the target (the index points a little early).
                    if rest.len() < total {
                        break Some(aligned + (at + total) as u64);
                    }
                    at += total;
                    continue;
                }
                if !out.is_empty() && taken + total > max_bytes {
                    break None;
                }
                if rest.len() < total {
                    if !out.is_empty() {
                        // The next batch continues past this chunk: return
                        // what fits; the consumer's next fetch starts there.
                        break None;
                    }
                    // The first batch is larger than the chunk: read it whole.
                    let start = aligned + at as u64;
                    let whole = file
                        .read_at(start, total)
                        .await
                        .map_err(|e| StorageError::io("reading segment", e))?;
                    if whole.len() < total {
                        return Err(StorageError::io(
                            "reading segment",
                            std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                        ));
                    }
                    out.push(Bytes::copy_from_slice(&whole[..total]));
                    return Ok(out);
                }
                out.push(data.slice(at..at + total));
                taken += total;
                at += total;
                returned_end = Some((aligned + at as u64, header.next_offset()));
                if taken + HEADER_BYTES > max_bytes {
                    break None; // no further batch can fit
                }
            };
            match next_pos {
                // A position the chunk read ahead could not vouch for is
                // read again from the file, once.
                Some(next) if next > pos || reread_from == Some(next) => pos = next,
                _ => break,
            }
        }
        if let Some((end, next_offset)) = returned_end {
            self.read_ahead(file, segment_base, end, next_offset, seg_size, max_bytes);
        }
        Ok(out)
    }

    /// Bytes of one read from a segment for a fetch of `max_bytes`.
    fn read_chunk_for(&self, max_bytes: usize) -> usize {
        self.shared
            .read_chunk_bytes
            .max(round_up(max_bytes.min(64 << 20), BLOCK_BYTES as usize))
    }

    /// Starts reading the chunk a sequential reader will fetch next: from
    /// `pos` (where the batch starting at `next_offset` lies in the segment
    /// `segment_base`), as much as a fetch of `max_bytes` reads, unless the
    /// data is in the cache, not yet written, past the segment, or the
    /// shard's read-ahead budget has no room (see `storage::read_ahead`).
    fn read_ahead(
        &self,
        file: Rc<DmaFile>,
        segment_base: i64,
        pos: u64,
        next_offset: i64,
        seg_size: u64,
        max_bytes: usize,
    ) {
        let shared = &self.shared;
        let visible_end = shared.state.borrow().written_offset;
        if pos >= seg_size || next_offset >= visible_end {
            return;
        }
        if shared.cache.borrow().holds(shared.cache_key, next_offset) {
            return;
        }
        let aligned = align_down(pos);
        let need = (pos - aligned) as usize + HEADER_BYTES.max(max_bytes.min(64 << 20));
        let want = round_up(
            self.read_chunk_for(max_bytes)
                .max(need)
                .min((seg_size - aligned) as usize),
            BLOCK_BYTES as usize,
        );
        let valid = want.min((seg_size - aligned) as usize);
        let now = Instant::now();
        let mut set = shared.read_aheads.borrow_mut();
        if !set.make_room(shared.cache_key, want, now) {
            return;
        }
        shared.state.borrow_mut().stats.disk_reads += 1;
        let data = glommio::spawn_local(async move {
            let read = file.read_at_aligned(aligned, want).await?;
            Ok(Bytes::copy_from_slice(&read[..read.len().min(valid)]))
        });
        let ahead = Ahead {
            next_offset,
            segment_base,
            pos,
            aligned,
            visible_end,
            data,
        };
        set.insert(shared.cache_key, want, now, ahead);
    }

    /// The first offset whose record timestamp is at or after `timestamp`
    /// (ListOffsets by time): the time index finds where to start, batch
    /// headers skip to the first batch whose max timestamp qualifies, and
    /// that batch alone is decoded (decompressed if need be) for the exact
    /// record.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, ReadError> {
        let start = {
            let st = self.shared.state.borrow();
            let Some(seg) = st
                .segments
                .iter()
                .find(|s| s.next_offset > st.log_start_offset && s.max_timestamp >= timestamp)
            else {
                return Ok(None);
            };
            seg.time_index
                .lookup(timestamp)
                .max(st.log_start_offset)
                .max(seg.base_offset)
        };
        let mut offset = start;
        loop {
            let read = match self.read(offset, 1 << 20).await {
                Ok(read) => read,
                Err(ReadError::OffsetOutOfRange { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            if read.batches.is_empty() {
                return Ok(None);
            }
            for batch in &read.batches {
                let header = BatchHeader::parse(batch).expect("stored batch");
                offset = header.next_offset();
                if header.max_timestamp < timestamp {
                    continue;
                }
                let log_start = self.offsets().log_start_offset;
                // Decoding (and decompressing) the one batch that holds the
                // answer gives the exact record, as Kafka answers.
                if let Some(records) = decode_records(batch) {
                    if let Some(r) = records
                        .iter()
                        .find(|r| r.timestamp >= timestamp && r.offset >= log_start)
                    {
                        return Ok(Some(TimestampOffset {
                            offset: r.offset,
                            timestamp: r.timestamp,
                        }));
                    }
                    continue;
                }
                // Undecodable (over the decode limit): answer with the batch.
                return Ok(Some(TimestampOffset {
                    offset: header.base_offset.max(log_start),
                    timestamp: header.max_timestamp,
                }));
            }
        }
    }

    /// The largest timestamp in the log and the offset of the first record
    /// that holds it (ListOffsets MAX_TIMESTAMP, as Kafka answers since
    /// 3.8), or `None` for an empty log. The segments know only the batch
    /// (see [`PartitionLog::max_timestamp_batch`]); the record is found by
    /// time, decoding that one batch.
    pub async fn max_timestamp(&self) -> Result<Option<TimestampOffset>, ReadError> {
        let Some(batch) = self.max_timestamp_batch() else {
            return Ok(None);
        };
        Ok(Some(
            self.offset_for_timestamp(batch.timestamp)
                .await?
                .unwrap_or(batch),
        ))
    }

    /// The largest timestamp in the log and the last offset of its batch,
    /// from the segments' metadata, or `None` for an empty log.
    pub fn max_timestamp_batch(&self) -> Option<TimestampOffset> {
        let st = self.shared.state.borrow();
        st.segments
            .iter()
            .filter(|s| s.next_offset > st.log_start_offset && s.max_timestamp >= 0)
            .max_by_key(|s| s.max_timestamp)
            .map(|s| TimestampOffset {
                offset: s.offset_of_max_timestamp,
                timestamp: s.max_timestamp,
            })
    }

    /// Moves the log start offset forward (DeleteRecords). Offsets beyond
    /// the high watermark are refused as Kafka does. Whole segments below
    /// the new start are deleted; the new start is persisted.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, ReadError> {
        let (dir, new_start) = {
            let mut st = self.shared.state.borrow_mut();
            if offset < 0 || offset > st.high_watermark {
                return Err(ReadError::OffsetOutOfRange {
                    offset,
                    log_start_offset: st.log_start_offset,
                    high_watermark: st.high_watermark,
                });
            }
            if offset <= st.log_start_offset {
                return Ok(st.log_start_offset);
            }
            st.log_start_offset = offset;
            (st.dir.clone(), offset)
        };
        fsutil::write_file_durably(&dir, LOG_START_FILE, new_start.to_string().into_bytes())
            .await?;
        // Retention may move the start further (whole segments below it).
        let outcome = self.enforce_retention().await?;
        Ok(outcome.log_start_offset.max(new_start))
    }

    /// Deletes the oldest closed segments that are past retention.ms, make
    /// the log exceed retention.bytes, or lie wholly below the log start
    /// offset. The active segment is never deleted.
    pub async fn enforce_retention(&self) -> Result<RetentionOutcome, StorageError> {
        let _permit = self.shared.maintenance_permit().await?;
        let now = self.shared.clock.now_ms();
        let (dir, doomed, outcome) = {
            let mut st = self.shared.state.borrow_mut();
            let mut total: u64 = st.segments.iter().map(|s| s.size).sum();
            let mut count = 0;
            let retention_ms = st.config.retention_ms;
            let retention_bytes = st.config.retention_bytes;
            for seg in st.segments.iter().take(st.finalized_segments) {
                let below_start = seg.next_offset <= st.log_start_offset;
                // A closed segment the log cleaner emptied holds nothing to
                // keep (and no timestamp to judge by once reopened).
                let too_old = retention_ms >= 0
                    && ((seg.max_timestamp >= 0 && now - seg.max_timestamp > retention_ms)
                        || seg.size == 0);
                let too_big = retention_bytes >= 0 && total - seg.size >= retention_bytes as u64;
                if !(below_start || too_old || too_big) {
                    break;
                }
                total -= seg.size;
                count += 1;
            }
            let doomed: Vec<Segment> = st.segments.drain(..count).collect();
            st.finalized_segments -= count;
            let first_base = st
                .segments
                .first()
                .expect("active segment stays")
                .base_offset;
            st.log_start_offset = st.log_start_offset.max(first_base);
            let bytes_deleted = doomed.iter().map(|s| s.size).sum();
            st.allocated.retain(|(base, _)| *base >= first_base);
            let outcome = RetentionOutcome {
                segments_deleted: count,
                bytes_deleted,
                log_start_offset: st.log_start_offset,
            };
            (st.dir.clone(), doomed, outcome)
        };
        if doomed.is_empty() {
            return Ok(outcome);
        }
        for seg in doomed {
            if let Some(file) = seg.file {
                drop(file);
            }
            fsutil::remove_file(segment::log_path(&dir, seg.base_offset)).await?;
            fsutil::remove_file(segment::index_path(&dir, seg.base_offset)).await?;
            fsutil::remove_file(segment::time_index_path(&dir, seg.base_offset)).await?;
        }
        fsutil::sync_dir(&dir).await?;
        Ok(outcome)
    }

    /// Calls `visit` with the header of every batch at or after
    /// `from_offset`, oldest first, reading the segment files. Used at open
    /// to rebuild state derived from the log (idempotent producers).
    pub async fn scan_batch_headers(
        &self,
        from_offset: i64,
        mut visit: impl FnMut(&BatchHeader),
    ) -> Result<(), StorageError> {
        let targets: Vec<(Rc<DmaFile>, u64, i64, Option<i64>)> = {
            let st = self.shared.state.borrow();
            let bases: Vec<i64> = st.segments.iter().map(|s| s.base_offset).collect();
            st.segments
                .iter()
                .enumerate()
                .filter(|(_, s)| s.next_offset > from_offset && s.size > 0)
                .filter_map(|(i, s)| {
                    let next = bases.get(i + 1).copied();
                    s.file.clone().map(|f| (f, s.size, s.base_offset, next))
                })
                .collect()
        };
        let written = self.offsets().written_offset;
        for (file, size, base, next_base) in targets {
            segment::scan_file(
                &file,
                size,
                base,
                next_base,
                self.shared.read_chunk_bytes,
                |h, _, _| {
                    if h.last_offset() >= from_offset && h.base_offset < written {
                        visit(h);
                    }
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Writes everything out, fdatasyncs, trims the active segment, writes
    /// its indexes and the clean-shutdown marker, and stops the log's tasks.
    pub async fn close(&self) -> Result<(), StorageError> {
        match self.close_deferred().await? {
            Some(closing) => closing.finish().await,
            None => Ok(()),
        }
    }

    /// [`PartitionLog::close`] for a shutdown of many logs: stops the
    /// log's tasks and returns what is left to do on disk, for the caller
    /// to run on blocking threads (many logs at once) with one file-system
    /// sync before the markers. `None` when the log was already closed.
    pub async fn close_deferred(&self) -> Result<Option<ClosingLog>, StorageError> {
        if self.shared.state.borrow().closing {
            // Closed, or being closed by another caller, or dropped.
            return Ok(None);
        }
        self.shared.state.borrow_mut().closing = true;
        self.shared.writer_wake.notify();
        self.shared.syncer_wake.notify();
        if let Some(writer) = self.writer.take() {
            writer.await;
        }
        if let Some(syncer) = self.syncer.take() {
            syncer.await;
        }
        self.shared
            .cache
            .borrow_mut()
            .remove_partition(self.shared.cache_key);
        self.shared
            .read_aheads
            .borrow_mut()
            .forget(self.shared.cache_key);
        self.shared.space.close();
        if let Some(e) = self.shared.state.borrow().failed.clone() {
            return Err(e);
        }
        Ok(Some(closing_active_segment(&self.shared)))
    }
}

/// What is left of a log's close once its tasks have stopped, as plain
/// data: trim the active segment to its data, write its indexes (and any
/// file the log's owner adds), and after those are durable the
/// clean-shutdown marker that vouches for them. A shutdown runs thousands
/// of these on blocking threads at once.
#[derive(Debug)]
pub struct ClosingLog {
    dir: PathBuf,
    /// The active segment's file and the size to trim it to (none when the
    /// segment was never written).
    trim: Option<(PathBuf, u64)>,
    files: Vec<(String, Vec<u8>)>,
    marker: String,
}

impl ClosingLog {
    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds a file to write with the indexes (a producer snapshot).
    pub fn add_file(&mut self, name: &str, bytes: Vec<u8>) {
        self.files.push((name.to_string(), bytes));
    }

    /// Finishes the close at once, each file made durable before the marker.
    pub async fn finish(self) -> Result<(), StorageError> {
        fsutil::blocking(move || {
            self.finish_blocking(Durability::EachFile)?;
            self.write_marker_blocking(Durability::EachFile)
        })
        .await
        .map_err(|e| StorageError::io("closing the log", e))
    }

    /// Trims the segment and writes the files; with
    /// [`Durability::EachFile`] each is made durable on its own.
    pub fn finish_blocking(&self, durability: Durability) -> std::io::Result<()> {
        if let Some((path, size)) = &self.trim {
            let file = std::fs::OpenOptions::new().write(true).open(path)?;
            file.set_len(*size)?;
            if durability == Durability::EachFile {
                file.sync_data()?;
            }
        }
        for (name, bytes) in &self.files {
            fsutil::write_file_blocking(&self.dir, name, bytes, durability)?;
        }
        Ok(())
    }

    /// Writes the clean-shutdown marker: only once what it vouches for is
    /// durable.
    pub fn write_marker_blocking(&self, durability: Durability) -> std::io::Result<()> {
        fsutil::write_file_blocking(
            &self.dir,
            CLEAN_SHUTDOWN_FILE,
            self.marker.as_bytes(),
            durability,
        )
    }
}

/// Waits until the offset `current` reads is above `target`, or the log
/// fails (or, for appends being waited for, runs out of space).
async fn wait_beyond(
    shared: &LogShared,
    waiters: &OffsetWaiters<StorageError>,
    current: impl Fn(&LogState) -> i64,
    target: i64,
    refused_while_stalled: bool,
) -> Result<(), StorageError> {
    let wait = {
        let st = shared.state.borrow();
        if current(&st) > target {
            return Ok(());
        }
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        if let Some(e) = st.stalled.as_ref().filter(|_| refused_while_stalled) {
            return Err(e.clone());
        }
        waiters.wait_beyond(target)
    };
    wait.await
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        // Without close(), stop the tasks; what was not written is lost as
        // in a crash, and the next open recovers.
        let mut st = self.shared.state.borrow_mut();
        if st.failed.is_none() {
            st.failed = Some(StorageError::Closed);
        }
        st.closing = true;
        self.shared
            .preallocation
            .release(&mut st.preallocate_charged);
        drop(st);
        self.shared.writer_wake.notify();
        self.shared.syncer_wake.notify();
    }
}
