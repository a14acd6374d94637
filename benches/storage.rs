//! Storage micro-benchmarks, each next to the baseline it is judged against.
//!
//! * `validate`: producer-batch validation plus the in-place offset patch,
//!   against a bare CRC32C over the same bytes.
//! * `append`: `PartitionLog` appends (written, and durable with group
//!   commit), against raw O_DIRECT `DmaFile` writes of the same size (queue
//!   depth 1 and 4, into fallocated space, and with an fdatasync per write).
//! * `read`: reads by offset from the shard cache and from the segment file.
//!
//! No network. Disk benchmarks run in a fresh glommio executor per
//! `iter_custom` call, in a temp dir on the real disk (`SHARDLOG_BENCH_DIR`,
//! default `/var/tmp`) that is deleted when the call returns. See
//! `benches/README.md` for the ratio targets.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::io::OpenOptions;
use glommio::{LocalExecutorBuilder, Placement};
use shardlog::record::records::BatchBuilder;
use shardlog::record::{patch_base_offset_and_epoch, validate_producer_batch};
use shardlog::storage::{
    LogConfig, LogStats, PartitionLog, ShardStorage, ShardStorageConfig, SystemClock,
};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Bytes of not-yet-written appends kept in flight by `append_no_fsync`.
const NO_FSYNC_WINDOW_BYTES: usize = 4 * MIB;
/// Bytes of not-yet-durable appends kept in flight by `append_durable`
/// (one concurrent appender task per batch).
const DURABLE_WINDOW_BYTES: usize = 16 * MIB;
const DURABLE_APPENDERS_MAX: usize = 1024;
/// Size of the log the `read` benchmarks read from.
const READ_LOG_BYTES: usize = 64 * MIB;
const READ_BATCH_BYTES: usize = 4 * KIB;
const READ_MAX_BYTES: usize = MIB;

// ---------------------------------------------------------------------------
// Batches

/// An uncompressed producer batch of exactly `total` bytes (log overhead
/// included), made of records with `value_bytes`-byte values; the last
/// record's value is sized to hit `total`.
fn batch_of(total: usize, value_bytes: usize) -> Vec<u8> {
    let build = |records: usize, last: usize| {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        let value = vec![b'v'; value_bytes.max(last)];
        for i in 0..records {
            let len = if i + 1 == records { last } else { value_bytes };
            b.push_value(i as i64, &value[..len]);
        }
        b.build()
    };
    let mut records = ((total.saturating_sub(61)) / (value_bytes + 12)).max(1);
    for _ in 0..16 {
        let mut last = value_bytes as isize;
        for _ in 0..8 {
            let built = build(records, last as usize);
            let diff = total as isize - built.len() as isize;
            if diff == 0 {
                return built;
            }
            last += diff;
            if last < 0 {
                break;
            }
        }
        // The last record's length field changed width or went negative:
        // try with a different record count.
        records = if last < 0 { records - 1 } else { records + 1 };
    }
    panic!("cannot build a batch of exactly {total} bytes");
}

fn size_label(bytes: usize) -> String {
    if bytes >= MIB {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{}KiB", bytes / KIB)
    }
}

// ---------------------------------------------------------------------------
// Executor and temp dirs

/// The first CPU this process may run on, to pin the bench executor to.
fn first_allowed_cpu() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
        .trim();
    list.split([',', '-']).next()?.trim().parse().ok()
}

/// glommio registers `io_memory` with three rings; as a normal user keep it
/// under RLIMIT_MEMLOCK (8 MiB here) / 3. Root has CAP_IPC_LOCK.
fn io_memory() -> usize {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false);
    if root {
        32 * MIB
    } else {
        2 * MIB
    }
}

/// Runs `f` on a fresh glommio executor (pinned when possible) and returns
/// its result.
fn on_executor<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let placement = first_allowed_cpu().map_or(Placement::Unbound, Placement::Fixed);
    LocalExecutorBuilder::new(placement)
        .name("storage-bench")
        .io_memory(io_memory())
        .spawn(f)
        .expect("start executor")
        .join()
        .expect("executor finished")
}

/// A temp dir on the real disk (O_DIRECT does not work on tmpfs).
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shardlog-bench-")
        .tempdir_in(std::env::var_os("SHARDLOG_BENCH_DIR").unwrap_or_else(|| "/var/tmp".into()))
        .expect("temp dir")
}

async fn start_shard(dir: &Path, cache_bytes_max: usize) -> ShardStorage {
    let config = ShardStorageConfig {
        cache_bytes_max,
        read_chunk_bytes: MIB,
        ..ShardStorageConfig::default()
    };
    // Also writes and reads the O_DIRECT probe file, so the first DmaFile
    // this executor opens on the device is not empty (os error 95).
    ShardStorage::start(dir, 0, config, Rc::new(SystemClock))
        .await
        .expect("shard storage")
}

async fn open_log(dir: &Path, shard: &ShardStorage) -> PartitionLog {
    let config = LogConfig {
        segment_bytes: 1 << 30,
        ..LogConfig::default()
    };
    PartitionLog::open(&dir.join("bench-0"), config, shard)
        .await
        .expect("open log")
}

// ---------------------------------------------------------------------------
// validate

fn bench_validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (size, value_bytes) in [(KIB, 100), (MIB, 1000)] {
        let mut buf = batch_of(size, value_bytes);
        let label = size_label(size);
        group.throughput(Throughput::Bytes(size as u64));

        let mut next_offset = 0i64;
        group.bench_function(BenchmarkId::new("validate_and_patch", &label), |b| {
            b.iter(|| {
                let header =
                    validate_producer_batch(black_box(&buf), usize::MAX).expect("valid batch");
                next_offset += i64::from(header.record_count);
                patch_base_offset_and_epoch(black_box(&mut buf), next_offset, 0);
                // Put the producer's baseOffset 0 and epoch -1 back so the
                // next iteration validates the same bytes.
                patch_base_offset_and_epoch(black_box(&mut buf), 0, -1);
                header
            })
        });

        group.bench_function(BenchmarkId::new("crc32c_baseline", &label), |b| {
            b.iter(|| crc32c::crc32c(black_box(&buf)))
        });
        // What validation must checksum: the batch from its attributes on
        // (offset 21, so not 8-byte aligned), per Kafka's format.
        group.bench_function(BenchmarkId::new("crc32c_of_crc_range", &label), |b| {
            b.iter(|| crc32c::crc32c(black_box(&buf[21..])))
        });
    }
    group.finish();
}

/// A topic's compression.type against storing as sent: an lz4 batch of
/// sixteen 1 KiB records (text-like, compressible) recompressed to zstd
/// (decode, decompress, rebuild, compress, then validate the result),
/// next to validating and patching the same batch as sent. Throughput is
/// the records' uncompressed bytes.
fn bench_recompress(c: &mut Criterion) {
    use shardlog::record::{recompress, Compression};
    let mut group = c.benchmark_group("recompress");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut b = BatchBuilder::new(1_700_000_000_000).idempotent(7, 0, 0);
    for i in 0..16 {
        let value: Vec<u8> = format!("record {i}: the quick brown fox jumps over the lazy dog; ")
            .repeat(20)
            .into_bytes()[..1024]
            .to_vec();
        b.push_value(i, &value);
    }
    let mut sent = b.build_compressed(Compression::Lz4);
    group.throughput(Throughput::Bytes(16 * 1024));
    group.bench_function("store_as_sent/lz4", |bench| {
        bench.iter(|| {
            let header = validate_producer_batch(black_box(&sent), usize::MAX).expect("valid");
            patch_base_offset_and_epoch(black_box(&mut sent), 0, -1);
            header
        })
    });
    // compression.zstd.level: 3 is Kafka's default, 1 the fastest
    // positive level.
    for level in [3, 1] {
        group.bench_function(format!("lz4_to_zstd/level{level}"), |bench| {
            bench.iter(|| {
                let header = validate_producer_batch(black_box(&sent), usize::MAX).expect("valid");
                let rebuilt = recompress(&sent, &header, Compression::Zstd, Some(level))
                    .expect("recompressed");
                validate_producer_batch(black_box(&rebuilt), usize::MAX).expect("valid");
                rebuilt
            })
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// append

/// Appends `iters` copies of `batch`, keeping up to `window` appends in
/// flight, and waits until all are written to the file.
async fn append_written(log: &PartitionLog, batch: &[u8], iters: u64, window: usize) -> Duration {
    let mut pending = VecDeque::with_capacity(window);
    let start = Instant::now();
    for _ in 0..iters {
        if pending.len() >= window {
            let ticket = pending.pop_front().expect("non-empty");
            log.wait_appended(&ticket).await.expect("appended");
        }
        let reservation = log.reserve(batch.len()).await.expect("reserve");
        let header = log.validate(batch).expect("valid batch");
        let ticket = log
            .append_validated(reservation, batch, &header)
            .expect("append");
        pending.push_back(ticket);
    }
    // The written offset only grows: the last ticket covers all the others.
    if let Some(last) = pending.back() {
        log.wait_appended(last).await.expect("appended");
    }
    start.elapsed()
}

/// Appends `iters` copies of `batch` from `appenders` concurrent tasks, each
/// waiting for its append to be durable before the next.
async fn append_durable(
    log: Rc<PartitionLog>,
    batch: Rc<Vec<u8>>,
    iters: u64,
    appenders: usize,
) -> Duration {
    let remaining = Rc::new(Cell::new(iters));
    let start = Instant::now();
    let tasks: Vec<_> = (0..appenders.min(iters as usize).max(1))
        .map(|_| {
            let (log, batch, remaining) = (log.clone(), batch.clone(), remaining.clone());
            glommio::spawn_local(async move {
                while remaining.get() > 0 {
                    remaining.set(remaining.get() - 1);
                    let reservation = log.reserve(batch.len()).await.expect("reserve");
                    let header = log.validate(&batch).expect("valid batch");
                    let ticket = log
                        .append_validated(reservation, &batch, &header)
                        .expect("append");
                    log.wait_durable(&ticket).await.expect("durable");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    start.elapsed()
}

#[derive(Clone, Copy)]
enum LogMode {
    Written { window: usize },
    Durable { appenders: usize },
}

/// One `iter_custom` call of a log benchmark: a fresh executor, shard, log
/// and temp dir; returns the measured time and the log's counters.
fn run_log_append(size: usize, iters: u64, mode: LogMode) -> (Duration, LogStats) {
    let dir = temp_dir();
    let path = dir.path().to_path_buf();
    let result = on_executor(move || async move {
        let batch = Rc::new(batch_of(size, if size < 64 * KIB { 100 } else { 1000 }));
        let shard = start_shard(&path, 256 * MIB).await;
        let log = Rc::new(open_log(&path, &shard).await);
        let elapsed = match mode {
            LogMode::Written { window } => append_written(&log, &batch, iters, window).await,
            LogMode::Durable { appenders } => {
                append_durable(log.clone(), batch.clone(), iters, appenders).await
            }
        };
        let stats = log.stats();
        log.close().await.expect("close log");
        (elapsed, stats)
    });
    drop(dir);
    result
}

/// Raw O_DIRECT sequential writes of one preallocated aligned buffer of
/// `size` bytes, `depth` writes in flight, optionally an fdatasync after
/// each write, and optionally into space fallocated 32 MiB ahead as the log
/// does (`prealloc`: ext4 then converts unwritten extents on every write).
fn run_raw_writes(
    size: usize,
    iters: u64,
    depth: usize,
    fdatasync: bool,
    prealloc: bool,
) -> Duration {
    let dir = temp_dir();
    let path: PathBuf = dir.path().to_path_buf();
    let elapsed = on_executor(move || async move {
        let _shard = start_shard(&path, 0).await;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(path.join("raw.log"))
            .await
            .expect("open raw file");
        let file = Rc::new(file);
        let mut buf = file.alloc_dma_buffer(size);
        buf.as_bytes_mut().fill(0x5a);
        let buf = Rc::new(buf);
        let next = Rc::new(Cell::new(0u64));
        let allocated = Rc::new(Cell::new(0u64));
        let start = Instant::now();
        let tasks: Vec<_> = (0..depth)
            .map(|_| {
                let (file, buf, next) = (file.clone(), buf.clone(), next.clone());
                let allocated = allocated.clone();
                glommio::spawn_local(async move {
                    loop {
                        let i = next.get();
                        if i >= iters {
                            break;
                        }
                        next.set(i + 1);
                        let end = (i + 1) * size as u64;
                        if prealloc && end > allocated.get() {
                            // As the log does: fallocate 32 MiB steps ahead.
                            let target = allocated.get() + (32 << 20).max(size as u64);
                            allocated.set(target);
                            file.pre_allocate(target, false).await.expect("fallocate");
                        }
                        let n = file
                            .write_rc_at(buf.clone(), i * size as u64)
                            .await
                            .expect("write");
                        assert_eq!(n, size, "short O_DIRECT write");
                        if fdatasync {
                            file.fdatasync().await.expect("fdatasync");
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let elapsed = start.elapsed();
        drop(buf);
        file.close_rc().await.expect("close raw file");
        elapsed
    });
    drop(dir);
    elapsed
}

#[derive(Default)]
struct Totals {
    appends: u64,
    writes: u64,
    bytes_written: u64,
    fdatasyncs: u64,
}

impl Totals {
    fn add(&mut self, s: &LogStats) {
        self.appends += s.appends;
        self.writes += s.writes;
        self.bytes_written += s.bytes_written;
        self.fdatasyncs += s.fdatasyncs;
    }

    fn print(&self, name: &str) {
        if self.appends == 0 {
            return; // filtered out
        }
        let appends = self.appends.max(1) as f64;
        println!(
            "{name}: {} appends, {} writes (avg {:.0} KiB), {} fdatasyncs \
             = {:.4} fdatasyncs/append ({:.1} appends/fdatasync)",
            self.appends,
            self.writes,
            self.bytes_written as f64 / self.writes.max(1) as f64 / 1024.0,
            self.fdatasyncs,
            self.fdatasyncs as f64 / appends,
            appends / self.fdatasyncs.max(1) as f64,
        );
    }
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for size in [4 * KIB, 64 * KIB, MIB] {
        let label = size_label(size);
        group.throughput(Throughput::Bytes(size as u64));

        let window = (NO_FSYNC_WINDOW_BYTES / size).max(1);
        let mut totals = Totals::default();
        group.bench_function(BenchmarkId::new("append_no_fsync", &label), |b| {
            b.iter_custom(|iters| {
                let (elapsed, stats) = run_log_append(size, iters, LogMode::Written { window });
                totals.add(&stats);
                elapsed
            })
        });
        totals.print(&format!("append/append_no_fsync/{label} (window {window})"));

        let appenders = (DURABLE_WINDOW_BYTES / size).clamp(8, DURABLE_APPENDERS_MAX);
        let mut totals = Totals::default();
        group.bench_function(BenchmarkId::new("append_durable", &label), |b| {
            b.iter_custom(|iters| {
                let (elapsed, stats) = run_log_append(size, iters, LogMode::Durable { appenders });
                totals.add(&stats);
                elapsed
            })
        });
        totals.print(&format!(
            "append/append_durable/{label} ({appenders} appenders)"
        ));

        group.bench_function(BenchmarkId::new("raw_odirect_write", &label), |b| {
            b.iter_custom(|iters| run_raw_writes(size, iters, 1, false, false))
        });
        group.bench_function(
            BenchmarkId::new("raw_odirect_write_prealloc", &label),
            |b| b.iter_custom(|iters| run_raw_writes(size, iters, 1, false, true)),
        );
        group.bench_function(BenchmarkId::new("raw_odirect_write_qd4", &label), |b| {
            b.iter_custom(|iters| run_raw_writes(size, iters, 4, false, false))
        });
        group.bench_function(
            BenchmarkId::new("raw_odirect_write_fdatasync", &label),
            |b| b.iter_custom(|iters| run_raw_writes(size, iters, 1, true, false)),
        );
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// read

/// One `iter_custom` call of a read benchmark: fills a fresh log with
/// `READ_LOG_BYTES` of 4 KiB batches, then times `iters` reads of up to
/// 1 MiB at pseudo-random offsets. Returns the time and disk reads made.
fn run_reads(iters: u64, from_cache: bool) -> (Duration, u64) {
    let dir = temp_dir();
    let path = dir.path().to_path_buf();
    let result = on_executor(move || async move {
        let cache_bytes_max = if from_cache { 2 * READ_LOG_BYTES } else { 0 };
        let shard = start_shard(&path, cache_bytes_max).await;
        let log = open_log(&path, &shard).await;
        let batch = batch_of(READ_BATCH_BYTES, 100);
        let header = validate_producer_batch(&batch, usize::MAX).expect("valid batch");
        let records = i64::from(header.record_count);
        let batches = (READ_LOG_BYTES / READ_BATCH_BYTES) as u64;
        append_written(
            &log,
            &batch,
            batches,
            NO_FSYNC_WINDOW_BYTES / READ_BATCH_BYTES,
        )
        .await;
        let end = log.offsets().high_watermark;
        assert_eq!(end, batches as i64 * records);
        // Leave room for a full READ_MAX_BYTES after every start offset.
        let span = end - (READ_MAX_BYTES / READ_BATCH_BYTES) as i64 * records;
        let disk_reads_before = log.stats().disk_reads;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let start = Instant::now();
        for _ in 0..iters {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let offset = (rng % span as u64) as i64;
            let read = log.read(offset, READ_MAX_BYTES).await.expect("read");
            assert_eq!(read.from_cache, from_cache);
            assert_eq!(read.total_bytes(), READ_MAX_BYTES);
            black_box(read);
        }
        let elapsed = start.elapsed();
        let disk_reads = log.stats().disk_reads - disk_reads_before;
        log.close().await.expect("close log");
        (elapsed, disk_reads)
    });
    drop(dir);
    result
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(READ_MAX_BYTES as u64));
    for (name, from_cache) in [("read_1MiB_cache", true), ("read_1MiB_disk", false)] {
        let (mut reads, mut disk_reads) = (0u64, 0u64);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (elapsed, d) = run_reads(iters, from_cache);
                reads += iters;
                disk_reads += d;
                elapsed
            })
        });
        if reads == 0 {
            continue; // filtered out
        }
        println!(
            "read/{name}: {reads} reads, {disk_reads} disk reads of up to {} KiB \
             ({:.2} per read)",
            READ_MAX_BYTES / KIB,
            disk_reads as f64 / reads.max(1) as f64
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_validate,
    bench_recompress,
    bench_append,
    bench_read
);
criterion_main!(benches);
