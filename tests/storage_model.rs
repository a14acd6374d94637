//! Model-based property test of the partition log: random sequences of
//! appends, reads, clean and crash reopens, leader-epoch changes, retention
//! and DeleteRecords, checked after every step against an in-memory model of
//! the batches and segments the log must hold.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use shardlog::storage::{
    LogConfig, ManualClock, PartitionLog, ReadError, ShardStorage, ShardStorageConfig,
};

/// Wall-clock time of the manual clock (and the batches' timestamps).
const NOW_MS: i64 = 1_700_000_000_000;
/// Any single storage call taking longer than this counts as a hang.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Time given to a dropped log's detached tasks to finish their last I/O,
/// so that a "crash" never overlaps the next open's recovery.
const CRASH_SETTLE: Duration = Duration::from_millis(30);
const LARGE_CACHE: usize = 64 << 20;

/// One producer batch to append: record count and value size.
#[derive(Debug, Clone)]
struct Shape {
    records: usize,
    value_bytes: usize,
}

#[derive(Debug, Clone)]
enum Op {
    /// `append().await` one batch.
    Append(Shape),
    /// Several appends queued back to back, then all awaited (group commit).
    Burst(Vec<Shape>),
    /// A read at an offset picked in `[start - 2, end + 2]`.
    Read {
        at: Index,
        max_bytes: usize,
    },
    /// DeleteRecords at an offset picked in `[start - 2, end + 2]`.
    DeleteRecords {
        at: Index,
    },
    EnforceRetention,
    SetEpoch(i32),
    /// close() and open again.
    ReopenClean,
    /// Drop without close (every acknowledged append must survive), open.
    Crash,
    /// Queue appends without waiting for them, let the writer run a little,
    /// then crash: each unacknowledged batch may or may not survive, but
    /// what survives is a prefix of whole batches.
    CrashUnacked {
        shapes: Vec<Shape>,
        settle: u8,
    },
}

/// Per-case configuration.
#[derive(Debug, Clone)]
struct Setup {
    segment_bytes: u64,
    index_interval_bytes: usize,
    preallocate_bytes: u64,
    write_buffer_bytes_max: usize,
    retention_bytes: i64,
    cache_bytes_max: usize,
    read_chunk_bytes: usize,
}

impl Setup {
    fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            index_interval_bytes: self.index_interval_bytes,
            preallocate_bytes: self.preallocate_bytes,
            write_buffer_bytes_max: self.write_buffer_bytes_max,
            retention_bytes: self.retention_bytes,
            retention_ms: -1,
            ..LogConfig::default()
        }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    (1usize..=20, prop_oneof![0usize..100, 0usize..3000]).prop_map(|(records, value_bytes)| Shape {
        records,
        value_bytes,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => shape().prop_map(Op::Append),
        2 => vec(shape(), 2..6).prop_map(Op::Burst),
        7 => (
            any::<Index>(),
            prop_oneof![1usize..200, 1usize..20_000, 1usize..200_000],
        )
            .prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        2 => any::<Index>().prop_map(|at| Op::DeleteRecords { at }),
        2 => Just(Op::EnforceRetention),
        1 => (0i32..1000).prop_map(Op::SetEpoch),
        1 => Just(Op::ReopenClean),
        1 => Just(Op::Crash),
        1 => (vec(shape(), 1..5), 0u8..6)
            .prop_map(|(shapes, settle)| Op::CrashUnacked { shapes, settle }),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        (8u64 << 10)..=(64 << 10),
        0usize..=4096,
        prop_oneof![Just(4096u64), Just(64 << 10), Just(32 << 20)],
        prop_oneof![Just(64usize << 10), Just(8 << 20)],
        prop_oneof![Just(-1i64), (16i64 << 10)..(256 << 10)],
        prop_oneof![Just(0usize), 4096usize..(128 << 10), Just(LARGE_CACHE)],
        prop_oneof![Just(4096usize), Just(16 << 10), Just(64 << 10)],
    )
        .prop_map(
            |(
                segment_bytes,
                index_interval_bytes,
                preallocate_bytes,
                write_buffer_bytes_max,
                retention_bytes,
                cache_bytes_max,
                read_chunk_bytes,
            )| Setup {
                segment_bytes,
                index_interval_bytes,
                preallocate_bytes,
                write_buffer_bytes_max,
                retention_bytes,
                cache_bytes_max,
                read_chunk_bytes,
            },
        )
}

/// A batch the log must hold.
#[derive(Debug)]
struct MBatch {
    base: i64,
    last: i64,
    epoch: i32,
    /// Byte position in its segment.
    pos: u64,
    /// The producer batch as appended (base offset 0, epoch -1).
    bytes: Vec<u8>,
}

/// A segment the log must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MSeg {
    base: i64,
    size: u64,
}

/// What the log must look like.
#[derive(Debug)]
struct Model {
    /// Batches from the first segment's base on, in offset order.
    batches: Vec<MBatch>,
    segments: Vec<MSeg>,
    start: i64,
    end: i64,
    epoch: i32,
    /// The log end offset when the log was last opened: a large cache holds
    /// exactly the batches appended since.
    session_start: i64,
    next_tag: u64,
}

impl Model {
    fn new() -> Self {
        Model {
            batches: Vec::new(),
            segments: vec![MSeg { base: 0, size: 0 }],
            start: 0,
            end: 0,
            epoch: 0,
            session_start: 0,
            next_tag: 0,
        }
    }

    fn make_batch(&mut self, shape: &Shape) -> Vec<u8> {
        let tag = self.next_tag;
        self.next_tag += 1;
        common::batch(tag, shape.records, shape.value_bytes, NOW_MS + tag as i64)
    }

    /// Appends as the log does: roll first if the active segment is not
    /// empty and the batch would take it past segment.bytes.
    fn push(&mut self, bytes: Vec<u8>, records: usize, segment_bytes: u64) {
        let len = bytes.len() as u64;
        let active = *self.segments.last().expect("active segment");
        if active.size > 0 && active.size + len > segment_bytes {
            self.segments.push(MSeg {
                base: self.end,
                size: 0,
            });
        }
        let active = self.segments.last_mut().expect("active segment");
        let pos = active.size;
        active.size += len;
        let base = self.end;
        let last = base + records as i64 - 1;
        self.end = last + 1;
        self.batches.push(MBatch {
            base,
            last,
            epoch: self.epoch,
            pos,
            bytes,
        });
    }

    /// Kafka's retention over closed segments, oldest first, stopping at the
    /// first one to keep: below the log start offset, or the rest of the
    /// log is still at least retention.bytes. Returns (segments, bytes).
    fn retain(&mut self, retention_bytes: i64) -> (usize, u64) {
        let mut total: u64 = self.segments.iter().map(|s| s.size).sum();
        let mut count = 0;
        for pair in self.segments.windows(2) {
            let (seg, next) = (pair[0], pair[1]);
            let below_start = next.base <= self.start;
            let too_big = retention_bytes >= 0 && total - seg.size >= retention_bytes as u64;
            if !(below_start || too_big) {
                break;
            }
            total -= seg.size;
            count += 1;
        }
        let bytes = self.segments[..count].iter().map(|s| s.size).sum();
        self.segments.drain(..count);
        let first_base = self.segments[0].base;
        self.start = self.start.max(first_base);
        self.batches.retain(|b| b.base >= first_base);
        (count, bytes)
    }

    /// Index of the batch holding `offset` (which must be in the log).
    fn batch_at(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last < offset)
    }

    fn is_segment_base(&self, offset: i64) -> bool {
        self.segments.iter().any(|s| s.base == offset)
    }

    /// An offset in `[start - 2, end + 2]`.
    fn pick_offset(&self, at: &Index) -> i64 {
        self.start - 2 + at.index((self.end - self.start + 5) as usize) as i64
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Runs `fut`, failing if it takes longer than [`OP_TIMEOUT`].
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> Result<T, String> {
    futures_lite::future::or(async { Ok(fut.await) }, async {
        glommio::timer::sleep(OP_TIMEOUT).await;
        Err(format!(
            "{what} did not finish within {OP_TIMEOUT:?} (hang)"
        ))
    })
    .await
}

struct Harness {
    setup: Setup,
    config: LogConfig,
    shard: ShardStorage,
    dir: PathBuf,
    log: Option<PartitionLog>,
    model: Model,
}

impl Harness {
    fn log(&self) -> &PartitionLog {
        self.log.as_ref().expect("log is open")
    }

    async fn open(&mut self) -> Result<(), String> {
        let log = within(
            "open",
            PartitionLog::open(&self.dir, self.config.clone(), &self.shard),
        )
        .await?
        .map_err(|e| format!("open failed: {e}"))?;
        self.log = Some(log);
        self.model.epoch = 0;
        self.model.session_start = self.model.end;
        Ok(())
    }

    /// Drops the log without closing it, then waits for its detached tasks
    /// to finish whatever I/O they had in flight.
    async fn crash(&mut self) {
        drop(self.log.take());
        glommio::timer::sleep(CRASH_SETTLE).await;
    }

    /// Offsets and segment layout match the model.
    fn check_state(&self) -> Result<(), String> {
        let log = self.log();
        let m = &self.model;
        let o = log.offsets();
        ensure!(
            o.log_start_offset == m.start,
            "log start offset {} != model {}",
            o.log_start_offset,
            m.start
        );
        ensure!(
            o.log_end_offset == m.end,
            "log end offset {} != model {}",
            o.log_end_offset,
            m.end
        );
        ensure!(
            o.written_offset == m.end,
            "written offset {} != end {} with every append complete",
            o.written_offset,
            m.end
        );
        ensure!(
            o.high_watermark == m.end,
            "high watermark {} != end {} with every append complete",
            o.high_watermark,
            m.end
        );
        ensure!(
            o.durable_offset <= o.written_offset,
            "durable offset {} beyond written offset {}",
            o.durable_offset,
            o.written_offset
        );
        let bases = log.segment_base_offsets();
        let want: Vec<i64> = m.segments.iter().map(|s| s.base).collect();
        ensure!(bases == want, "segment bases {bases:?} != model {want:?}");
        let size: u64 = m.segments.iter().map(|s| s.size).sum();
        ensure!(
            log.size_bytes() == size,
            "log size {} != model {size}",
            log.size_bytes()
        );
        Ok(())
    }

    /// Reads at `offset` and checks the answer against the model; returns
    /// the offset after the last batch returned.
    async fn check_read(&self, offset: i64, max_bytes: usize) -> Result<i64, String> {
        let m = &self.model;
        let result = within("read", self.log().read(offset, max_bytes)).await?;
        if offset < m.start || offset > m.end {
            return match result {
                Err(ReadError::OffsetOutOfRange { .. }) => Ok(offset),
                other => Err(format!(
                    "read at {offset} outside [{}, {}] gave {other:?}, not OffsetOutOfRange",
                    m.start, m.end
                )),
            };
        }
        let read = result.map_err(|e| format!("read at {offset} failed: {e}"))?;
        if offset == m.end {
            ensure!(
                read.batches.is_empty(),
                "read at the end {offset} returned {} batches",
                read.batches.len()
            );
            return Ok(offset);
        }
        let n = read.batches.len();
        ensure!(n > 0, "read at {offset} < end {} returned nothing", m.end);
        let first = m.batch_at(offset);
        ensure!(
            first + n <= m.batches.len(),
            "read at {offset} returned {n} batches, only {} exist from there",
            m.batches.len() - first
        );
        for (k, got) in read.batches.iter().enumerate() {
            let want = &m.batches[first + k];
            ensure!(
                got.len() == want.bytes.len(),
                "read at {offset}: batch {k} (base {}) is {} bytes, appended {}",
                want.base,
                got.len(),
                want.bytes.len()
            );
            let base = i64::from_be_bytes(got[0..8].try_into().expect("8 bytes"));
            ensure!(
                base == want.base,
                "read at {offset}: batch {k} has base offset {base}, expected {}",
                want.base
            );
            let epoch = i32::from_be_bytes(got[12..16].try_into().expect("4 bytes"));
            ensure!(
                epoch == want.epoch,
                "read at {offset}: batch at {} has leader epoch {epoch}, expected {}",
                want.base,
                want.epoch
            );
            ensure!(
                got[8..12] == want.bytes[8..12]
                    && common::payload(got) == common::payload(&want.bytes),
                "read at {offset}: batch at {} differs from what was appended",
                want.base
            );
        }
        let total = read.total_bytes();
        ensure!(
            n == 1 || total <= max_bytes,
            "read at {offset} returned {n} batches, {total} bytes > max_bytes {max_bytes}"
        );
        // Whole batches are returned while they fit. A disk read may also
        // stop at the end of the segment it started in, or before a batch
        // that runs past the aligned read_chunk_bytes window it read; that
        // window holds at least the segment's first read_chunk_bytes.
        if let Some(next) = m.batches.get(first + n) {
            let fits = total + next.bytes.len() <= max_bytes;
            let segment_end = m.is_segment_base(next.base);
            let past_first_chunk =
                next.pos + next.bytes.len() as u64 > self.setup.read_chunk_bytes as u64;
            ensure!(
                !fits || (!read.from_cache && (segment_end || past_first_chunk)),
                "read at {offset} (max_bytes {max_bytes}, from_cache {}) stopped after {n} \
                 batches ({total} bytes) although the batch at {} ({} bytes) fits",
                read.from_cache,
                next.base,
                next.bytes.len()
            );
        }
        let cache = self.setup.cache_bytes_max;
        if cache == 0 {
            ensure!(
                !read.from_cache,
                "read at {offset} served from a 0-byte cache"
            );
        }
        if cache == LARGE_CACHE {
            let cached = offset >= m.session_start;
            ensure!(
                read.from_cache == cached,
                "read at {offset}: from_cache {} but the large cache holds [{}, {})",
                read.from_cache,
                m.session_start,
                m.end
            );
        }
        Ok(m.batches[first + n - 1].last + 1)
    }

    /// Reads the whole log from its start offset and checks every batch.
    async fn check_everything(&self) -> Result<(), String> {
        let mut offset = self.model.start;
        while offset < self.model.end {
            let next = self.check_read(offset, 1 << 20).await?;
            ensure!(next > offset, "read at {offset} made no progress");
            offset = next;
        }
        self.check_read(self.model.end, 1 << 20).await?;
        Ok(())
    }

    async fn append(&mut self, shape: &Shape) -> Result<(), String> {
        let bytes = self.model.make_batch(shape);
        let ticket = within("append", self.log().append(&bytes))
            .await?
            .map_err(|e| format!("append failed: {e}"))?;
        self.expect_ticket(ticket.base_offset, ticket.last_offset, shape)?;
        self.model
            .push(bytes, shape.records, self.setup.segment_bytes);
        Ok(())
    }

    fn expect_ticket(&self, base: i64, last: i64, shape: &Shape) -> Result<(), String> {
        let want_base = self.model.end;
        let want_last = want_base + shape.records as i64 - 1;
        ensure!(
            (base, last) == (want_base, want_last),
            "append got offsets {base}..={last}, expected {want_base}..={want_last}"
        );
        Ok(())
    }

    /// Queues one append without waiting for it to be written.
    async fn append_unwaited(
        &mut self,
        shape: &Shape,
    ) -> Result<(Vec<u8>, shardlog::storage::AppendTicket), String> {
        let bytes = self.model.make_batch(shape);
        let log = self.log();
        let reservation = within("reserve", log.reserve(bytes.len()))
            .await?
            .map_err(|e| format!("reserve failed: {e}"))?;
        let header = log
            .validate(&bytes)
            .map_err(|e| format!("validate failed: {e}"))?;
        let ticket = log
            .append_validated(reservation, &bytes, &header)
            .map_err(|e| format!("append failed: {e}"))?;
        Ok((bytes, ticket))
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Append(shape) => self.append(shape).await?,
            Op::Burst(shapes) => {
                let mut queued = Vec::new();
                for shape in shapes {
                    let (bytes, ticket) = self.append_unwaited(shape).await?;
                    // The model's end moves with each queued batch.
                    self.expect_ticket(ticket.base_offset, ticket.last_offset, shape)?;
                    self.model
                        .push(bytes, shape.records, self.setup.segment_bytes);
                    queued.push(ticket);
                }
                for ticket in &queued {
                    within("wait_appended", self.log().wait_appended(ticket))
                        .await?
                        .map_err(|e| format!("wait_appended failed: {e}"))?;
                }
            }
            Op::Read { at, max_bytes } => {
                let offset = self.model.pick_offset(at);
                self.check_read(offset, *max_bytes).await?;
            }
            Op::DeleteRecords { at } => {
                let offset = self.model.pick_offset(at);
                let result = within(
                    "delete_records_before",
                    self.log().delete_records_before(offset),
                )
                .await?;
                let m = &mut self.model;
                if offset < 0 || offset > m.end {
                    ensure!(
                        matches!(result, Err(ReadError::OffsetOutOfRange { .. })),
                        "DeleteRecords at {offset} outside [0, {}] gave {result:?}",
                        m.end
                    );
                } else {
                    let start = result.map_err(|e| format!("DeleteRecords at {offset}: {e}"))?;
                    if offset > m.start {
                        m.start = offset;
                        m.retain(self.setup.retention_bytes);
                    }
                    // The log start offset itself is checked by check_state;
                    // when retention.bytes removes more segments in the same
                    // call the log returns the requested offset, not the
                    // (higher) resulting start.
                    ensure!(
                        start == m.start || (start == offset && offset < m.start),
                        "DeleteRecords at {offset} returned start {start}, expected {}",
                        m.start
                    );
                }
                if self.model.start > 0 {
                    let below = self.model.start - 1;
                    self.check_read(below, 1 << 20).await?;
                }
            }
            Op::EnforceRetention => {
                let outcome = within("enforce_retention", self.log().enforce_retention())
                    .await?
                    .map_err(|e| format!("enforce_retention failed: {e}"))?;
                let (segments, bytes) = self.model.retain(self.setup.retention_bytes);
                ensure!(
                    (
                        outcome.segments_deleted,
                        outcome.bytes_deleted,
                        outcome.log_start_offset
                    ) == (segments, bytes, self.model.start),
                    "retention outcome {outcome:?}, expected {segments} segments, {bytes} \
                     bytes, start {}",
                    self.model.start
                );
            }
            Op::SetEpoch(epoch) => {
                self.log().set_leader_epoch(*epoch);
                self.model.epoch = *epoch;
            }
            Op::ReopenClean => {
                let log = self.log.take().expect("log is open");
                within("close", log.close())
                    .await?
                    .map_err(|e| format!("close failed: {e}"))?;
                drop(log);
                self.open().await?;
                self.check_state()?;
                self.check_everything().await?;
            }
            Op::Crash => {
                self.crash().await;
                self.open().await?;
                self.check_state()?;
                self.check_everything().await?;
            }
            Op::CrashUnacked { shapes, settle } => {
                let mut queued = Vec::new();
                let mut end = self.model.end;
                for shape in shapes {
                    let (bytes, ticket) = self.append_unwaited(shape).await?;
                    ensure!(
                        ticket.base_offset == end,
                        "unacknowledged append got base {}, expected {end}",
                        ticket.base_offset
                    );
                    end = ticket.last_offset + 1;
                    queued.push((bytes, shape.records, end));
                }
                for _ in 0..*settle {
                    futures_lite::future::yield_now().await;
                    glommio::timer::sleep(Duration::from_micros(100)).await;
                }
                let epoch = self.model.epoch;
                self.crash().await;
                self.open().await?;
                let recovered = self.log().offsets().log_end_offset;
                let acked = self.model.end;
                let survivors = queued.iter().take_while(|q| q.2 <= recovered).count();
                let on_boundary = recovered == acked || queued.iter().any(|q| q.2 == recovered);
                ensure!(
                    recovered >= acked && on_boundary,
                    "after a crash with batches ending at {:?} unacknowledged, the log \
                     ends at {recovered}; acknowledged end {acked}",
                    queued.iter().map(|q| q.2).collect::<Vec<_>>()
                );
                // Survivors keep the epoch they were appended under.
                self.model.epoch = epoch;
                for (bytes, records, _) in queued.into_iter().take(survivors) {
                    self.model.push(bytes, records, self.setup.segment_bytes);
                }
                self.model.epoch = 0;
                // A segment rolled for a lost batch may leave its (empty)
                // file behind: it becomes the active segment, at the end.
                let bases = self.log().segment_base_offsets();
                let m = &mut self.model;
                if bases.len() == m.segments.len() + 1 && bases.last() == Some(&m.end) {
                    m.segments.push(MSeg {
                        base: m.end,
                        size: 0,
                    });
                }
                self.model.session_start = self.model.end;
                self.check_state()?;
                self.check_everything().await?;
            }
        }
        Ok(())
    }
}

/// A harness with the log open on a fresh shard under `data`.
async fn start(data: &Path, setup: Setup) -> Result<Harness, String> {
    let clock = ManualClock::new(NOW_MS);
    let shard_config = ShardStorageConfig {
        cache_bytes_max: setup.cache_bytes_max,
        read_chunk_bytes: setup.read_chunk_bytes,
        ..ShardStorageConfig::default()
    };
    let shard = ShardStorage::start(data, 0, shard_config, Rc::new(clock))
        .await
        .map_err(|e| format!("shard storage: {e}"))?;
    let mut h = Harness {
        config: setup.log_config(),
        setup,
        shard,
        dir: data.join("model-0"),
        log: None,
        model: Model::new(),
    };
    h.open().await?;
    h.check_state()?;
    Ok(h)
}

async fn close(mut h: Harness) -> Result<(), String> {
    let log = h.log.take().expect("log is open");
    within("close", log.close())
        .await?
        .map_err(|e| format!("final close failed: {e}"))
}

async fn run_case(data: PathBuf, setup: Setup, ops: Vec<Op>) -> Result<(), String> {
    let mut h = start(&data, setup).await?;
    for (i, op) in ops.iter().enumerate() {
        h.step(op)
            .await
            .and_then(|()| h.check_state())
            .map_err(|e| format!("op #{i} {op:?}: {e}"))?;
    }
    close(h).await
}

/// Runs `body` on a harness in a fresh temp dir and executor.
fn with_harness<F, Fut>(setup: Setup, body: F) -> Result<(), String>
where
    F: FnOnce(Harness) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Harness, String>> + 'static,
{
    let tmp = common::temp_dir();
    let data = tmp.path().to_path_buf();
    common::run(move || async move { close(body(start(&data, setup).await?).await?).await })
}

/// Settings of the smallest read chunk the shard accepts, every read from
/// disk and an index entry for every batch.
fn small_chunk_setup() -> Setup {
    Setup {
        segment_bytes: 64 << 10,
        index_interval_bytes: 0,
        preallocate_bytes: 4096,
        write_buffer_bytes_max: 64 << 10,
        retention_bytes: -1,
        cache_bytes_max: 0,
        read_chunk_bytes: 4096,
    }
}

// Proves (regression, found by the property on an earlier revision) that a
// disk read of a batch that runs past a 4 KiB read chunk finishes instead of
// re-reading the same chunk forever.
#[test]
fn read_of_batch_crossing_the_read_chunk_finishes() {
    let setup = Setup {
        segment_bytes: 8745,
        ..small_chunk_setup()
    };
    with_harness(setup, |mut h| async move {
        for (records, value_bytes) in [(7, 336), (7, 64), (15, 58)] {
            h.append(&Shape {
                records,
                value_bytes,
            })
            .await?;
        }
        for offset in -1..=h.model.end + 1 {
            for max_bytes in [1, 4096, 1 << 20] {
                h.check_read(offset, max_bytes).await?;
            }
        }
        Ok(h)
    })
    .unwrap();
}

// Proves a disk read returns the batch holding the offset when that batch's
// 61-byte header straddles the end of a 4 KiB read chunk.
#[test]
fn read_of_batch_whose_header_crosses_the_read_chunk() {
    with_harness(small_chunk_setup(), |mut h| async move {
        // A first batch of 4050 bytes puts the second batch's header at
        // bytes 4050..4111 of the segment, across the first 4 KiB block.
        let value_bytes = (0..4096)
            .find(|&v| common::batch(0, 1, v, NOW_MS).len() == 4050)
            .expect("a one-record batch of 4050 bytes");
        h.append(&Shape {
            records: 1,
            value_bytes,
        })
        .await?;
        h.append(&Shape {
            records: 1,
            value_bytes: 10,
        })
        .await?;
        h.check_read(1, 4096).await?;
        Ok(h)
    })
    .unwrap();
}

fn run_in_executor(data: &Path, setup: Setup, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let data = data.to_path_buf();
    common::run(move || run_case(data, setup, ops)).map_err(TestCaseError::fail)
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=1000 runs a deeper search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
        failure_persistence: None,
        max_shrink_iters: 256,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    // Proves the partition log behaves like the in-memory model under random
    // appends, reads, clean and crash reopens, epochs, retention and
    // DeleteRecords, across segment sizes, index intervals, caches and read
    // chunk sizes.
    #[test]
    fn partition_log_matches_model((setup, ops) in (setup(), vec(op(), 4..40))) {
        let tmp = common::temp_dir();
        run_in_executor(tmp.path(), setup, ops)?;
    }
}
