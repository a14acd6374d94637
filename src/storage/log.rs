//! `PartitionLog`: one partition's segments, write path, reads, recovery and
//! retention.
//!
//! Write path. An append is validated, given its offsets, copied once into a
//! per-partition arena (where its header is patched; the resulting `Bytes` is
//! what the cache serves) and once into the active segment's aligned tail
//! buffer. A writer task per log writes buffers with O_DIRECT in file order,
//! one write in flight at a time; whatever was appended while a write was in
//! flight goes out in the next one. The partially filled last block is
//! carried into the next buffer and rewritten until full. A syncer task runs
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
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use glommio::sync::Semaphore;
use glommio::task::JoinHandle;

use super::cache::{BatchCache, CacheKey, CachedBatch};
use super::clock::Clock;
use super::config::{LogConfig, ShardStorageConfig};
use super::fsutil;
use super::segment::{self, round_up, Segment};
use super::waiters::{OffsetWaiters, Signal};
use super::{AppendError, ReadError, StorageError};
use crate::record::batch::{BatchHeader, HEADER_BYTES};
use crate::record::records::decode_records;
use crate::record::{
    patch_base_offset_and_epoch, set_log_append_time, validate_producer_batch, Compression,
    TimestampType,
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

/// Storage shared by all partition logs of one shard: the batch cache, the
/// clock and the shard's storage limits. Lives on one shard.
#[derive(Clone)]
pub struct ShardStorage {
    pub config: ShardStorageConfig,
    pub cache: Rc<RefCell<BatchCache>>,
    pub clock: Rc<dyn Clock>,
}

impl ShardStorage {
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
        probe.close().await.ok();
        fsutil::remove_file(probe_path).await?;
        Ok(ShardStorage {
            cache: Rc::new(RefCell::new(BatchCache::new(config.cache_bytes_max))),
            config,
            clock,
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
            self.shared.space.signal(self.units);
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
    log_start_offset: i64,
    next_offset: i64,
    written_offset: i64,
    durable_offset: i64,
    high_watermark: i64,
    leader_epoch: i32,
    tail: Tail,
    queue: VecDeque<WriteJob>,
    in_flight: VecDeque<InFlightWrite>,
    next_write_id: u64,
    pool: Vec<DmaBuffer>,
    arena: BytesMut,
    /// (last offset, units): reservations returned once written.
    releases: VecDeque<(i64, u64)>,
    /// Files written since the last fdatasync.
    unsynced_files: Vec<(i64, Rc<DmaFile>)>,
    first_unsynced_write_ms: Option<i64>,
    failed: Option<StorageError>,
    closing: bool,
    stats: LogStats,
}

struct LogShared {
    state: RefCell<LogState>,
    written_waiters: OffsetWaiters<StorageError>,
    durable_waiters: OffsetWaiters<StorageError>,
    hw_waiters: OffsetWaiters<StorageError>,
    writer_wake: Signal,
    syncer_wake: Signal,
    space: Semaphore,
    cache: Rc<RefCell<BatchCache>>,
    cache_key: CacheKey,
    clock: Rc<dyn Clock>,
    read_chunk_bytes: usize,
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
            segments: recovered.segments,
            log_start_offset: recovered.log_start_offset,
            next_offset,
            written_offset: next_offset,
            durable_offset: next_offset,
            high_watermark: next_offset,
            leader_epoch: 0,
            tail,
            queue: VecDeque::new(),
            in_flight: VecDeque::new(),
            next_write_id: 0,
            pool: Vec::new(),
            arena: BytesMut::new(),
            releases: VecDeque::new(),
            unsynced_files: Vec::new(),
            first_unsynced_write_ms: None,
            failed: None,
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
            space: Semaphore::new(config.write_buffer_bytes_max as u64),
            cache: shard.cache.clone(),
            cache_key,
            clock: shard.clock.clone(),
            read_chunk_bytes: shard.config.read_chunk_bytes.max(BLOCK_BYTES as usize),
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

    /// The leader epoch stamped into appended batches.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.shared.state.borrow_mut().leader_epoch = epoch;
    }

    /// Waits for room in the partition's write buffers. Reservations are
    /// granted in request order, so appends made right after their
    /// reservation keep that order.
    pub async fn reserve(&self, batch_bytes: usize) -> Result<Reservation, StorageError> {
        let units =
            batch_bytes.min(self.shared.state.borrow().config.write_buffer_bytes_max) as u64;
        self.shared
            .space
            .acquire(units)
            .await
            .map_err(|_| StorageError::Closed)?;
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
        mut reservation: Reservation,
        batch: &[u8],
        header: &BatchHeader,
    ) -> Result<AppendTicket, AppendError> {
        let shared = &self.shared;
        let now_ms = shared.clock.now_ms();
        let mut st = shared.state.borrow_mut();
        if let Some(e) = &st.failed {
            return Err(e.clone().into());
        }
        if st.closing {
            return Err(StorageError::Closed.into());
        }
        debug_assert_eq!(batch.len(), header.total_bytes());
        maybe_roll(&mut st, batch.len() as u64, now_ms);

        let base_offset = st.next_offset;
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let epoch = st.leader_epoch;
        let log_append_time =
            (st.config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);

        // The one copy out of the request: into the cache arena, where the
        // header is patched. The cache and the write buffer share it.
        if st.arena.capacity() - st.arena.len() < batch.len() {
            // Reuses the chunk in place when every batch cut from it is
            // gone (evicted, or no cache); otherwise starts a new chunk.
            st.arena.reserve(ARENA_BYTES.max(batch.len()));
        }
        st.arena.extend_from_slice(batch);
        let mut stored = st.arena.split();
        patch_base_offset_and_epoch(&mut stored, base_offset, epoch);
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
        let wait = {
            let st = self.shared.state.borrow();
            if st.written_offset > ticket.last_offset {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            self.shared.written_waiters.wait_beyond(ticket.last_offset)
        };
        wait.await
    }

    /// Resolves once the ticket's batch is on stable storage.
    pub async fn wait_durable(&self, ticket: &AppendTicket) -> Result<(), StorageError> {
        let wait = {
            let st = self.shared.state.borrow();
            if st.durable_offset > ticket.last_offset {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            self.shared.durable_waiters.wait_beyond(ticket.last_offset)
        };
        self.shared.syncer_wake.notify();
        wait.await
    }

    /// Resolves once the high watermark is above `offset` (a consumer at
    /// `offset` has something to read), for long-polling fetches.
    pub async fn wait_for_data_beyond(&self, offset: i64) -> Result<(), StorageError> {
        let wait = {
            let st = self.shared.state.borrow();
            if st.high_watermark > offset {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(e.clone());
            }
            self.shared.hw_waiters.wait_beyond(offset)
        };
        wait.await
    }

    /// Whole batches starting with the one containing `offset`, up to
    /// `max_bytes` but always at least one batch, never past the high
    /// watermark. Recent data comes from the shard cache without copying;
    /// older data from the segment file in large aligned reads.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadBatches, ReadError> {
        let (hw, start) = {
            let st = self.shared.state.borrow();
            (st.high_watermark, st.log_start_offset)
        };
        if offset < start || offset > hw {
            return Err(ReadError::OffsetOutOfRange {
                offset,
                log_start_offset: start,
                high_watermark: hw,
            });
        }
        if offset == hw {
            return Ok(ReadBatches::default());
        }
        let cached =
            self.shared
                .cache
                .borrow_mut()
                .read(self.shared.cache_key, offset, hw, max_bytes);
        if let Some(batches) = cached {
            return Ok(ReadBatches {
                batches,
                from_cache: true,
            });
        }
        let batches = self.read_from_disk(offset, hw, max_bytes).await?;
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
        let (file, mut pos, seg_size, index_slack) = {
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
                u64::from(seg.index.lookup(offset)),
                seg.size,
                index_slack,
            )
        };
        let chunk = self
            .shared
            .read_chunk_bytes
            .max(round_up(max_bytes.min(64 << 20), BLOCK_BYTES as usize));
        let mut out: Vec<Bytes> = Vec::new();
        let mut taken = 0usize;
        let mut expected_next: Option<i64> = None;
        while pos < seg_size {
            let aligned = align_down(pos);
            // Always cover at least the header at `pos`, so every pass
            // makes progress whatever the chunk size.
            // The index points up to about two intervals before the target:
            // read that much more so one read usually holds the whole answer.
            let need =
                (pos - aligned) as usize + HEADER_BYTES.max(max_bytes.min(64 << 20) + index_slack);
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
            let data = Bytes::copy_from_slice(&data[..valid]);
            let mut at = (pos - aligned) as usize;
            // Walk the batches in this chunk; `next_pos` says where the
            // next read starts, or `None` when the read is complete.
            let next_pos = loop {
                let rest = &data[at..];
                let Some(header) = BatchHeader::parse(rest) else {
                    // A header split by the chunk end (or the segment end).
                    break (at > 0 && rest.len() < data.len()).then_some(aligned + at as u64);
                };
                let total = header.total_bytes();
                if header.base_offset >= end_offset {
                    break None;
                }
                if let Some(next) = expected_next {
                    assert_eq!(header.base_offset, next, "offsets read back are contiguous");
                }
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
                expected_next = Some(header.next_offset());
                out.push(data.slice(at..at + total));
                taken += total;
                at += total;
                if taken + HEADER_BYTES > max_bytes {
                    break None; // no further batch can fit
                }
            };
            match next_pos {
                Some(next) if next > pos => pos = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// The first offset whose record timestamp is at or after `timestamp`
    /// (ListOffsets by time). Uncompressed batches are resolved to the exact
    /// record; for a compressed batch the batch's first offset is returned
    /// with the batch's max timestamp.
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
                if header.compression() == Ok(Compression::None)
                    && header.timestamp_type() == TimestampType::CreateTime
                {
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
                }
                return Ok(Some(TimestampOffset {
                    offset: header.base_offset.max(log_start),
                    timestamp: header.max_timestamp,
                }));
            }
        }
    }

    /// The largest timestamp in the log and the last offset of its batch
    /// (ListOffsets MAX_TIMESTAMP), or `None` for an empty log.
    pub fn max_timestamp(&self) -> Option<TimestampOffset> {
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
        let now = self.shared.clock.now_ms();
        let (dir, doomed, outcome) = {
            let mut st = self.shared.state.borrow_mut();
            let mut total: u64 = st.segments.iter().map(|s| s.size).sum();
            let mut count = 0;
            let retention_ms = st.config.retention_ms;
            let retention_bytes = st.config.retention_bytes;
            for seg in st.segments.iter().take(st.finalized_segments) {
                let below_start = seg.next_offset <= st.log_start_offset;
                let too_old = retention_ms >= 0
                    && seg.max_timestamp >= 0
                    && now - seg.max_timestamp > retention_ms;
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
        let targets: Vec<(Rc<DmaFile>, u64, i64)> = {
            let st = self.shared.state.borrow();
            st.segments
                .iter()
                .filter(|s| s.next_offset > from_offset && s.size > 0)
                .filter_map(|s| s.file.clone().map(|f| (f, s.size, s.base_offset)))
                .collect()
        };
        let written = self.offsets().written_offset;
        for (file, size, base) in targets {
            segment::scan_file(
                &file,
                size,
                base,
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
        self.shared.space.close();
        if let Some(e) = self.shared.state.borrow().failed.clone() {
            return Err(e);
        }
        finish_active_segment(&self.shared).await
    }
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
        drop(st);
        self.shared.writer_wake.notify();
        self.shared.syncer_wake.notify();
    }
}

/// Rolls the active segment if this append would overflow segment.bytes or
/// the segment is older than segment.ms.
fn maybe_roll(st: &mut LogState, batch_bytes: u64, now_ms: i64) {
    let active = st.segments.last().expect("active segment");
    if active.is_empty() {
        return;
    }
    let full = active.size + batch_bytes > st.config.segment_bytes;
    let old = active
        .first_append_ms
        .is_some_and(|t| now_ms - t >= st.config.segment_ms);
    if !full && !old {
        return;
    }
    let next = st.next_offset;
    let base = active.base_offset;
    {
        let active = st.segments.last_mut().expect("active segment");
        active
            .time_index
            .maybe_append(active.max_timestamp, active.offset_of_max_timestamp);
    }
    if st.tail.dirty {
        let job = take_tail(st, false);
        st.queue.push_back(job);
    }
    st.queue.push_back(WriteJob::Seal { segment_base: base });
    st.segments.push(Segment::new(next));
    st.stats.segments_rolled += 1;
    let buf = tail_buffer(st, st.tail.buf.len());
    st.tail = Tail {
        segment_base: next,
        buf,
        pos: 0,
        len: 0,
        dirty: false,
        complete_offset: next,
    };
}

/// A tail buffer of about `bytes` (within [16 KiB, 1 MiB]), reusing a
/// written full-size buffer when one is free.
fn tail_buffer(st: &mut LogState, bytes: usize) -> DmaBuffer {
    let size = round_up(bytes, BLOCK_BYTES as usize).clamp(TAIL_BYTES_MIN, WRITE_CHUNK_BYTES);
    if size == WRITE_CHUNK_BYTES {
        if let Some(buf) = st.pool.pop() {
            return buf;
        }
    }
    glommio::allocate_dma_buffer(size)
}

/// Copies stored batch bytes into the tail, queueing every buffer it fills.
fn copy_into_tail(st: &mut LogState, mut bytes: &[u8], complete_offset_after: i64) {
    while !bytes.is_empty() {
        let capacity = st.tail.buf.len();
        if st.tail.len == capacity {
            let next_pos = st.tail.pos + capacity as u64;
            let buf = tail_buffer(st, 2 * capacity);
            let full = std::mem::replace(&mut st.tail.buf, buf);
            st.queue.push_back(WriteJob::Data {
                segment_base: st.tail.segment_base,
                pos: st.tail.pos,
                buf: full,
                len: capacity,
                complete_offset: st.tail.complete_offset,
            });
            st.tail.pos = next_pos;
            st.tail.len = 0;
        }
        let room = capacity - st.tail.len;
        let n = room.min(bytes.len());
        let at = st.tail.len;
        st.tail.buf.as_bytes_mut()[at..at + n].copy_from_slice(&bytes[..n]);
        st.tail.len += n;
        st.tail.dirty = true;
        bytes = &bytes[n..];
    }
    st.tail.complete_offset = complete_offset_after;
}

/// Takes the dirty tail as a write job. With `carry`, a new tail continues
/// at the last partial block, carrying its bytes so the block can be
/// rewritten when more data arrives.
fn take_tail(st: &mut LogState, carry: bool) -> WriteJob {
    let end = st.tail.pos + st.tail.len as u64;
    let new_pos = align_down(end);
    let keep = (end - new_pos) as usize;
    let mut buf = tail_buffer(st, 2 * st.tail.len);
    if carry && keep > 0 {
        let from = st.tail.len - keep;
        buf.as_bytes_mut()[..keep].copy_from_slice(&st.tail.buf.as_bytes()[from..st.tail.len]);
    }
    let mut old = std::mem::replace(&mut st.tail.buf, buf);
    let write_len = round_up(st.tail.len, BLOCK_BYTES as usize);
    old.as_bytes_mut()[st.tail.len..write_len].fill(0);
    let job = WriteJob::Data {
        segment_base: st.tail.segment_base,
        pos: st.tail.pos,
        buf: old,
        len: write_len,
        complete_offset: st.tail.complete_offset,
    };
    st.tail.pos = new_pos;
    st.tail.len = keep;
    st.tail.dirty = false;
    job
}

fn fail(shared: &LogShared, error: StorageError) {
    tracing::error!(%error, "partition log failed; refusing further appends");
    shared.state.borrow_mut().failed = Some(error.clone());
    shared.written_waiters.fail_all(error.clone());
    shared.durable_waiters.fail_all(error.clone());
    shared.hw_waiters.fail_all(error);
    shared.space.close();
}

/// Raises the high watermark to what the durability policy allows.
fn update_high_watermark(shared: &LogShared) {
    let hw = {
        let mut st = shared.state.borrow_mut();
        let hw = if st.config.visible_only_when_durable() {
            st.durable_offset
        } else {
            st.written_offset
        };
        if hw <= st.high_watermark {
            return;
        }
        st.high_watermark = hw;
        hw
    };
    shared.hw_waiters.advance_to(hw);
}

/// What the writer does next.
enum WriterStep {
    Issue(WriteJob),
    Seal(i64),
    Wait,
    Exit,
}

/// Picks the writer's next step. Writes go out in file order, up to
/// `WRITES_IN_FLIGHT_MAX` at once, but never one that overlaps a write still
/// in flight (the carried partial block), and a segment is sealed only once
/// all its writes are done.
fn next_writer_step(st: &mut LogState) -> WriterStep {
    if st.failed.is_some() {
        return WriterStep::Exit;
    }
    let busy = st.in_flight.len() >= WRITES_IN_FLIGHT_MAX;
    let last = st.in_flight.back().map(|w| (w.segment_base, w.end_pos));
    let overlaps = |segment_base: i64, pos: u64| {
        last.is_some_and(|(base, end)| base == segment_base && pos < end)
    };
    match st.queue.front() {
        Some(WriteJob::Seal { segment_base }) => {
            if st.in_flight.is_empty() {
                let base = *segment_base;
                st.queue.pop_front();
                WriterStep::Seal(base)
            } else {
                WriterStep::Wait
            }
        }
        Some(WriteJob::Data {
            segment_base, pos, ..
        }) => {
            if busy || overlaps(*segment_base, *pos) {
                WriterStep::Wait
            } else {
                WriterStep::Issue(st.queue.pop_front().expect("front exists"))
            }
        }
        None if st.tail.dirty => {
            if busy || overlaps(st.tail.segment_base, st.tail.pos) {
                WriterStep::Wait
            } else {
                WriterStep::Issue(take_tail(st, true))
            }
        }
        None if st.closing && st.in_flight.is_empty() => WriterStep::Exit,
        None => WriterStep::Wait,
    }
}

async fn writer_loop(shared: Rc<LogShared>) {
    loop {
        let step = next_writer_step(&mut shared.state.borrow_mut());
        let result = match step {
            WriterStep::Exit => return,
            WriterStep::Wait => {
                shared.writer_wake.wait().await;
                Ok(())
            }
            WriterStep::Seal(segment_base) => seal_segment(&shared, segment_base).await,
            WriterStep::Issue(WriteJob::Data {
                segment_base,
                pos,
                buf,
                len,
                complete_offset,
            }) => match segment_file(&shared, segment_base, pos + len as u64).await {
                Ok(file) => {
                    let id = {
                        let mut st = shared.state.borrow_mut();
                        st.next_write_id += 1;
                        let id = st.next_write_id;
                        st.in_flight.push_back(InFlightWrite {
                            id,
                            segment_base,
                            end_pos: pos + len as u64,
                            complete_offset,
                            file: file.clone(),
                            done: false,
                        });
                        id
                    };
                    glommio::spawn_local(write_one(shared.clone(), id, file, buf, pos, len))
                        .detach();
                    Ok(())
                }
                Err(e) => Err(e),
            },
            WriterStep::Issue(WriteJob::Seal { .. }) => unreachable!("seals are not issued"),
        };
        if let Err(e) = result {
            fail(&shared, e);
            return;
        }
    }
}

/// The open file of a segment, creating and preallocating it on first use.
async fn segment_file(
    shared: &LogShared,
    segment_base: i64,
    end: u64,
) -> Result<Rc<DmaFile>, StorageError> {
    let (existing, dir, allocated, step, limit) = {
        let st = shared.state.borrow();
        let seg = st
            .segments
            .iter()
            .find(|s| s.base_offset == segment_base)
            .expect("a segment being written is not deleted");
        let allocated = st
            .allocated
            .iter()
            .find(|(b, _)| *b == segment_base)
            .map_or(0, |(_, a)| *a);
        (
            seg.file.clone(),
            st.dir.clone(),
            allocated,
            st.config.preallocate_bytes,
            round_up(st.config.segment_bytes as usize, BLOCK_BYTES as usize) as u64,
        )
    };
    let file = match existing {
        Some(file) => file,
        None => {
            let path = segment::log_path(&dir, segment_base);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .dma_open(&path)
                .await
                .map_err(|e| StorageError::io("creating segment", e))?;
            fsutil::sync_dir(&dir).await?;
            let file = Rc::new(file);
            let mut st = shared.state.borrow_mut();
            if let Some(seg) = st
                .segments
                .iter_mut()
                .find(|s| s.base_offset == segment_base)
            {
                seg.file = Some(file.clone());
            }
            file
        }
    };
    if end > allocated {
        let target = (allocated + step).min(limit).max(end);
        file.pre_allocate(target, false)
            .await
            .map_err(|e| StorageError::io("preallocating segment", e))?;
        let mut st = shared.state.borrow_mut();
        match st.allocated.iter_mut().find(|(b, _)| *b == segment_base) {
            Some(entry) => entry.1 = target,
            None => st.allocated.push((segment_base, target)),
        }
    }
    Ok(file)
}

/// One O_DIRECT write, running beside the writer loop. Completions may
/// arrive out of order; the written offset advances only over the prefix of
/// writes that are all done.
async fn write_one(
    shared: Rc<LogShared>,
    id: u64,
    file: Rc<DmaFile>,
    mut buf: DmaBuffer,
    pos: u64,
    len: usize,
) {
    buf.trim_to_size(len);
    let buf = Rc::new(buf);
    let result = match file.write_rc_at(buf.clone(), pos).await {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(StorageError::io(
            "short O_DIRECT write",
            std::io::Error::from(std::io::ErrorKind::WriteZero),
        )),
        Err(e) => Err(StorageError::io("writing segment", e)),
    };
    if let Err(e) = result {
        fail(&shared, e);
        shared.writer_wake.notify();
        return;
    }
    {
        let mut st = shared.state.borrow_mut();
        st.stats.writes += 1;
        st.stats.bytes_written += len as u64;
        if let Ok(buf) = Rc::try_unwrap(buf) {
            if st.pool.len() < WRITES_IN_FLIGHT_MAX && buf.len() == WRITE_CHUNK_BYTES {
                st.pool.push(buf);
            }
        }
        if let Some(w) = st.in_flight.iter_mut().find(|w| w.id == id) {
            w.done = true;
        }
    }
    complete_writes(&shared);
    shared.writer_wake.notify();
}

/// Retires the writes at the front of the in-flight queue that are done:
/// advances the written offset, returns buffer space, wakes waiters.
fn complete_writes(shared: &LogShared) {
    let now = shared.clock.now_ms();
    let mut released = 0u64;
    let advanced = {
        let mut st = shared.state.borrow_mut();
        let mut advanced = None;
        while st.in_flight.front().is_some_and(|w| w.done) {
            let w = st.in_flight.pop_front().expect("front exists");
            if !st.unsynced_files.iter().any(|(b, _)| *b == w.segment_base) {
                st.unsynced_files.push((w.segment_base, w.file.clone()));
            }
            st.first_unsynced_write_ms.get_or_insert(now);
            assert!(
                w.complete_offset >= st.written_offset,
                "written offset only grows"
            );
            st.written_offset = w.complete_offset;
            advanced = Some(w.complete_offset);
        }
        let written = st.written_offset;
        while st.releases.front().is_some_and(|(o, _)| *o < written) {
            released += st.releases.pop_front().expect("front").1;
        }
        advanced
    };
    if released > 0 {
        shared.space.signal(released);
    }
    if let Some(written) = advanced {
        shared.written_waiters.advance_to(written);
        update_high_watermark(shared);
        shared.syncer_wake.notify();
    }
}

/// Finishes a rolled segment once all its data is written: fdatasync, trim
/// the preallocated tail, write its indexes.
async fn seal_segment(shared: &LogShared, segment_base: i64) -> Result<(), StorageError> {
    let (file, size, dir, index, time_index) = {
        let st = shared.state.borrow();
        let seg = st
            .segments
            .iter()
            .find(|s| s.base_offset == segment_base)
            .expect("sealed segment exists");
        (
            seg.file.clone(),
            seg.size,
            st.dir.clone(),
            seg.index.encode(),
            seg.time_index.encode(),
        )
    };
    if let Some(file) = &file {
        // Trim first so one fdatasync makes both the data and the final
        // size durable before the index files vouch for the segment.
        file.truncate(size)
            .await
            .map_err(|e| StorageError::io("trimming rolled segment", e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync of rolled segment", e))?;
    }
    write_indexes(&dir, segment_base, index, time_index).await?;
    let mut st = shared.state.borrow_mut();
    st.stats.fdatasyncs += 1;
    st.allocated.retain(|(b, _)| *b != segment_base);
    let at = st
        .segments
        .iter()
        .position(|s| s.base_offset == segment_base)
        .expect("sealed segment exists");
    st.finalized_segments = st.finalized_segments.max(at + 1);
    Ok(())
}

async fn write_indexes(
    dir: &Path,
    base: i64,
    index: Vec<u8>,
    time_index: Vec<u8>,
) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    fsutil::blocking(move || -> std::io::Result<()> {
        let index_name = segment::index_path(&dir, base);
        let time_name = segment::time_index_path(&dir, base);
        let index_name = index_name
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let time_name = time_name
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        fsutil::write_file_durably_blocking(&dir, &index_name, &index)?;
        fsutil::write_file_durably_blocking(&dir, &time_name, &time_index)
    })
    .await
    .map_err(|e| StorageError::io("writing segment indexes", e))
}

async fn syncer_loop(shared: Rc<LogShared>) {
    loop {
        let (files, target, wait_for) = {
            let st = shared.state.borrow();
            if st.failed.is_some() {
                return;
            }
            let unsynced = st.written_offset > st.durable_offset;
            let waiter_needs = shared
                .durable_waiters
                .lowest_target()
                .is_some_and(|t| t < st.written_offset);
            let durable = st.durable_offset;
            let written = st.written_offset;
            // Offsets are record numbers without gaps, so the unsynced
            // record count is the distance between the two offsets.
            let count_due = written - durable >= st.config.flush_messages;
            let interval = st.config.flush_interval();
            let now = shared.clock.now_ms();
            let (time_due, wait_for) = match (interval, st.first_unsynced_write_ms) {
                (Some(iv), Some(first)) if unsynced => {
                    let due_at = first + iv.as_millis() as i64;
                    (
                        now >= due_at,
                        Some(Duration::from_millis((due_at - now).max(1) as u64)),
                    )
                }
                _ => (false, None),
            };
            if unsynced && (waiter_needs || count_due || time_due || st.closing) {
                let files: Vec<Rc<DmaFile>> =
                    st.unsynced_files.iter().map(|(_, f)| f.clone()).collect();
                (Some(files), written, None)
            } else if st.closing && !unsynced && written == st.next_offset {
                return;
            } else {
                (None, written, wait_for)
            }
        };
        let Some(files) = files else {
            match wait_for {
                Some(d) => {
                    futures_lite::future::or(shared.syncer_wake.wait(), glommio::timer::sleep(d))
                        .await;
                }
                None => shared.syncer_wake.wait().await,
            }
            continue;
        };
        {
            let mut st = shared.state.borrow_mut();
            st.unsynced_files.clear();
            st.first_unsynced_write_ms = None;
        }
        for file in &files {
            if let Err(e) = file.fdatasync().await {
                fail(&shared, StorageError::io("fdatasync", e));
                return;
            }
        }
        {
            let mut st = shared.state.borrow_mut();
            st.stats.fdatasyncs += 1;
            assert!(target >= st.durable_offset, "durable offset only grows");
            st.durable_offset = target;
            if st.written_offset > target && st.first_unsynced_write_ms.is_none() {
                st.first_unsynced_write_ms = Some(shared.clock.now_ms());
            }
        }
        shared.durable_waiters.advance_to(target);
        update_high_watermark(&shared);
    }
}

/// After the tasks stopped on close: trim the active segment, write its
/// indexes and the clean-shutdown marker.
async fn finish_active_segment(shared: &LogShared) -> Result<(), StorageError> {
    let (file, size, dir, base, index, time_index, next_offset) = {
        let mut st = shared.state.borrow_mut();
        let dir = st.dir.clone();
        let next_offset = st.next_offset;
        let active = st.segments.last_mut().expect("active segment");
        active
            .time_index
            .maybe_append(active.max_timestamp, active.offset_of_max_timestamp);
        (
            active.file.clone(),
            active.size,
            dir,
            active.base_offset,
            active.index.encode(),
            active.time_index.encode(),
            next_offset,
        )
    };
    if let Some(file) = file {
        file.truncate(size)
            .await
            .map_err(|e| StorageError::io("trimming active segment", e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync on close", e))?;
    }
    write_indexes(&dir, base, index, time_index).await?;
    let marker = format!("{next_offset} {size}\n");
    fsutil::write_file_durably(&dir, CLEAN_SHUTDOWN_FILE, marker.into_bytes()).await
}

/// What recovery hands to `open`.
struct Recovered {
    segments: Vec<Segment>,
    log_start_offset: i64,
    allocated: Vec<(i64, u64)>,
    tail_buf: DmaBuffer,
}

async fn recover(
    dir: &Path,
    config: &LogConfig,
    shard: &ShardStorage,
) -> Result<Recovered, StorageError> {
    let dir_owned = dir.to_path_buf();
    let names: Vec<String> = fsutil::blocking(move || -> std::io::Result<Vec<String>> {
        std::fs::create_dir_all(&dir_owned)?;
        if let Some(parent) = dir_owned.parent() {
            fsutil::sync_dir_blocking(parent)?;
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir_owned)? {
            names.push(entry?.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    })
    .await
    .map_err(|e| StorageError::io("listing partition directory", e))?;

    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| segment::parse_log_file_name(n))
        .collect();
    bases.sort_unstable();

    // A clean-shutdown marker vouches for the active segment's size and
    // indexes. It is removed before anything else is written, so a crash
    // from here on triggers a scan at the next open.
    let marker = fsutil::read_file(dir, CLEAN_SHUTDOWN_FILE).await?;
    let clean: Option<(i64, u64)> = marker.as_ref().and_then(|m| {
        let text = std::str::from_utf8(m).ok()?;
        let mut parts = text.split_whitespace();
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    });
    if marker.is_some() {
        fsutil::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).await?;
        fsutil::sync_dir(dir).await?;
    }
    let persisted_start: Option<i64> = fsutil::read_file(dir, LOG_START_FILE)
        .await?
        .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok());

    let mut segments: Vec<Segment> = Vec::new();
    let mut allocated = Vec::new();
    let count = bases.len();
    for (i, &base) in bases.iter().enumerate() {
        let is_active = i + 1 == count;
        let path = segment::log_path(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|e| StorageError::io("opening segment", e))?;
        let file_bytes = file
            .file_size()
            .await
            .map_err(|e| StorageError::io("sizing segment", e))?;
        let next_base = bases.get(i + 1).copied();
        let trusted_size = if is_active {
            clean.map(|(_, size)| size).filter(|&s| s <= file_bytes)
        } else {
            Some(file_bytes)
        };
        let trusted_next = if is_active {
            clean.map(|(next, _)| next)
        } else {
            next_base
        };
        let mut current_bytes = file_bytes;
        let mut seg = Segment::new(base);
        let loaded = match (trusted_size, trusted_next) {
            (Some(size), Some(next)) => load_indexes(dir, base, size, next, &mut seg).await?,
            _ => false,
        };
        if loaded {
            seg.size = trusted_size.expect("checked");
            seg.next_offset = trusted_next.expect("checked");
        } else {
            // Scan: rebuild indexes from the log and cut at the first
            // damaged batch.
            let interval = config.index_interval_bytes;
            let now = shard.clock.now_ms();
            let outcome = segment::scan_file(
                &file,
                file_bytes,
                base,
                shard.config.read_chunk_bytes,
                |h, pos, _| seg.note_batch(h, pos, interval, now),
            )
            .await?;
            seg.first_append_ms = None;
            if let Some(reason) = &outcome.stopped_by {
                tracing::warn!(
                    segment = %path.display(),
                    valid_bytes = outcome.valid_bytes,
                    reason = %reason,
                    "truncating damaged segment tail"
                );
            }
            if outcome.valid_bytes < file_bytes {
                current_bytes = outcome.valid_bytes;
                file.truncate(outcome.valid_bytes)
                    .await
                    .map_err(|e| StorageError::io("truncating damaged segment", e))?;
                file.fdatasync()
                    .await
                    .map_err(|e| StorageError::io("fdatasync after truncation", e))?;
            }
            seg.time_index
                .maybe_append(seg.max_timestamp, seg.offset_of_max_timestamp);
            if !is_active {
                write_indexes(dir, base, seg.index.encode(), seg.time_index.encode()).await?;
            }
            if !is_active && outcome.stopped_by.is_some() {
                // Damage inside a closed segment: nothing after it can be
                // trusted to follow on, so later segments go too.
                seg.file = Some(Rc::new(file));
                segments.push(seg);
                for &later in &bases[i + 1..] {
                    tracing::warn!(base = later, "removing segment after damaged one");
                    fsutil::remove_file(segment::log_path(dir, later)).await?;
                    fsutil::remove_file(segment::index_path(dir, later)).await?;
                    fsutil::remove_file(segment::time_index_path(dir, later)).await?;
                }
                fsutil::sync_dir(dir).await?;
                break;
            }
        }
        if is_active {
            allocated.push((base, current_bytes.max(seg.size)));
        }
        seg.file = Some(Rc::new(file));
        segments.push(seg);
    }
    // Remove index files whose segment is gone.
    for name in &names {
        if let Some(stem) = name
            .strip_suffix(".index")
            .or_else(|| name.strip_suffix(".timeindex"))
        {
            let orphan = stem
                .parse::<i64>()
                .map(|b| !segments.iter().any(|s| s.base_offset == b))
                .unwrap_or(false);
            if orphan {
                fsutil::remove_file(dir.join(name)).await?;
            }
        }
    }

    let first_base = segments.first().map(|s| s.base_offset);
    let log_start_offset = match (first_base, persisted_start) {
        (Some(base), Some(p)) => base.max(p),
        (Some(base), None) => base,
        (None, Some(p)) => p,
        (None, None) => 0,
    };
    if segments.is_empty() {
        segments.push(Segment::new(log_start_offset));
    }
    // The active segment may have been cut: make sure its file ends where
    // its data does before new writes extend it, and reload the partial
    // last block into the tail buffer.
    let mut tail_buf = glommio::allocate_dma_buffer(TAIL_BYTES_MIN);
    let active = segments.last().expect("one segment");
    let partial_at = align_down(active.size);
    let keep = (active.size - partial_at) as usize;
    if keep > 0 {
        let file = active.file.as_ref().expect("non-empty segment has a file");
        let block = file
            .read_at_aligned(partial_at, BLOCK_BYTES as usize)
            .await
            .map_err(|e| StorageError::io("reading the last block", e))?;
        assert!(
            block.len() >= keep,
            "the last block holds the segment's tail"
        );
        tail_buf.as_bytes_mut()[..keep].copy_from_slice(&block[..keep]);
    }
    Ok(Recovered {
        segments,
        log_start_offset,
        allocated,
        tail_buf,
    })
}

/// Loads a segment's index files if present and sound.
async fn load_indexes(
    dir: &Path,
    base: i64,
    size: u64,
    next_offset: i64,
    seg: &mut Segment,
) -> Result<bool, StorageError> {
    let index_name = format!("{}.index", segment::file_stem(base));
    let time_name = format!("{}.timeindex", segment::file_stem(base));
    let (Some(index), Some(time)) = (
        fsutil::read_file(dir, &index_name).await?,
        fsutil::read_file(dir, &time_name).await?,
    ) else {
        return Ok(false);
    };
    let (Some(index), Some(time_index)) = (
        super::index::OffsetIndex::decode(base, &index, size.max(1)),
        super::index::TimeIndex::decode(base, &time, next_offset),
    ) else {
        return Ok(false);
    };
    if let Some((ts, offset)) = time_index.last() {
        seg.max_timestamp = ts;
        seg.offset_of_max_timestamp = offset;
    }
    seg.index = index;
    seg.time_index = time_index;
    Ok(true)
}
