//! shardlog-disk-probe: what the disk under a data directory can do for the
//! log, measured the way the log writes.
//!
//! * Sequential O_DIRECT write bandwidth at queue depth 1, for each write
//!   size asked (default 1 MiB and 16 KiB), each into a fresh file (a log
//!   never overwrites; overwriting written blocks is faster on ext4).
//! * fdatasync latency: write N KiB (default 16 KiB) with O_DIRECT at the
//!   end of a fresh file, then fdatasync, repeatedly; percentiles of the
//!   fdatasync alone (what fio reports as sync latency) and of the write.
//!
//! Every test is bounded in time (`--seconds`) and size (`--max-mib`,
//! `--syncs-max`), and its file is deleted when the test ends, on errors
//! too. The numbers are next to fio's in tuning/baseline.sh; see
//! tuning/README.md.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

/// O_DIRECT needs buffers, offsets and lengths aligned to the device's
/// logical block size; 4 KiB covers 512-byte and 4 KiB devices.
const ALIGN_BYTES: usize = 4096;
/// Decimal megabytes, as fio and iperf3 report them.
const MB: f64 = 1e6;

#[derive(Parser, Debug)]
#[command(
    name = "shardlog-disk-probe",
    about = "O_DIRECT write bandwidth and fdatasync latency of a data directory"
)]
struct Args {
    /// Directory to probe: the broker's data directory. It must exist.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// Write sizes of the bandwidth tests, comma-separated, multiples of
    /// 4 KiB (suffixes k, m).
    #[arg(long, default_value = "1m,16k", value_delimiter = ',', value_parser = parse_size)]
    write_sizes: Vec<usize>,
    /// Bytes written before each fdatasync in the latency test (multiple
    /// of 4 KiB; suffixes k, m). 0 skips the test.
    #[arg(long, default_value = "16k", value_parser = parse_size_or_zero)]
    sync_write_size: usize,
    /// Time limit of each test, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Most MiB one bandwidth test writes.
    #[arg(long, default_value_t = 2048)]
    max_mib: u64,
    /// Most write+fdatasync rounds of the latency test.
    #[arg(long, default_value_t = 100_000)]
    syncs_max: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_size_or_zero(s: &str) -> Result<usize, String> {
    let s = s.trim().to_ascii_lowercase();
    let (digits, unit) = match s.strip_suffix(['k', 'm']) {
        Some(d) if s.ends_with('k') => (d, 1 << 10),
        Some(d) => (d, 1 << 20),
        None => (s.as_str(), 1),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("bad size {s:?}: expected e.g. 4096, 16k, 1m"))?;
    let bytes = n
        .checked_mul(unit)
        .filter(|b| *b <= 256 << 20)
        .ok_or_else(|| format!("size {s:?} is larger than 256 MiB"))?;
    if !bytes.is_multiple_of(ALIGN_BYTES) {
        return Err(format!(
            "size {s:?} is not a multiple of {ALIGN_BYTES} bytes (O_DIRECT)"
        ));
    }
    Ok(bytes)
}

fn parse_size(s: &str) -> Result<usize, String> {
    match parse_size_or_zero(s)? {
        0 => Err("a write size must be positive".to_string()),
        n => Ok(n),
    }
}

/// A buffer whose bytes start at an `ALIGN_BYTES` boundary, carved out of
/// a larger `Vec` (no allocator tricks, no unsafe).
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` bytes of pseudo-random data, so that a device or a virtual
    /// disk that compresses or deduplicates cannot shortcut the writes.
    fn random(len: usize) -> Self {
        let mut storage = vec![0u8; len + ALIGN_BYTES];
        let start = storage.as_ptr().align_offset(ALIGN_BYTES);
        assert!(start < ALIGN_BYTES, "cannot align a byte buffer");
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for chunk in storage[start..start + len].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

/// A fresh file opened with O_DIRECT, removed when dropped.
struct ProbeFile {
    file: File,
    path: PathBuf,
}

impl ProbeFile {
    fn create(dir: &Path, test: &str) -> io::Result<Self> {
        let path = dir.join(format!(
            ".shardlog-disk-probe-{}-{test}",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .map_err(|e| {
                let why = if e.raw_os_error() == Some(libc::EINVAL) {
                    " (the file system refuses O_DIRECT: tmpfs before Linux 6.6, some FUSE/network file systems)"
                } else {
                    ""
                };
                io::Error::new(
                    e.kind(),
                    format!("opening {} with O_DIRECT: {e}{why}", path.display()),
                )
            })?;
        Ok(ProbeFile { file, path })
    }
}

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Percentiles of a set of durations, in microseconds (nearest rank).
struct Percentiles {
    p50: f64,
    p99: f64,
    p99_9: f64,
    max: f64,
}

impl Percentiles {
    fn of(samples: &mut [Duration]) -> Self {
        assert!(!samples.is_empty(), "percentiles of no samples");
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1e6
        };
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
            p99_9: at(0.999),
            max: at(1.0),
        }
    }

    fn json(&self) -> Value {
        let r = |v: f64| (v * 10.0).round() / 10.0;
        json!({"p50": r(self.p50), "p99": r(self.p99), "p99_9": r(self.p99_9), "max": r(self.max)})
    }
}

struct WriteResult {
    write_bytes: usize,
    writes: usize,
    elapsed: Duration,
    latency: Percentiles,
}

impl WriteResult {
    fn bytes(&self) -> u64 {
        (self.write_bytes * self.writes) as u64
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes() as f64 / MB / self.elapsed.as_secs_f64()
    }
}

/// Sequential O_DIRECT writes of `size` bytes at queue depth 1 into a
/// fresh file, until the time or size limit.
fn write_test(args: &Args, size: usize) -> io::Result<WriteResult> {
    let probe = ProbeFile::create(&args.data_dir, &format!("write-{size}"))?;
    let buf = AlignedBuf::random(size);
    let max_bytes = args.max_mib.saturating_mul(1 << 20).max(size as u64);
    let limit = Duration::from_secs_f64(args.seconds);
    let mut latencies = Vec::new();
    let mut offset = 0u64;
    let start = Instant::now();
    while offset + size as u64 <= max_bytes && start.elapsed() < limit {
        let t = Instant::now();
        probe.file.write_all_at(buf.bytes(), offset)?;
        latencies.push(t.elapsed());
        offset += size as u64;
    }
    let elapsed = start.elapsed();
    Ok(WriteResult {
        write_bytes: size,
        writes: latencies.len(),
        elapsed,
        latency: Percentiles::of(&mut latencies),
    })
}

struct SyncResult {
    write_bytes: usize,
    samples: usize,
    elapsed: Duration,
    fdatasync: Percentiles,
    write: Percentiles,
}

/// Rounds of an O_DIRECT append of `size` bytes followed by fdatasync, as
/// a log does for a durable (acks=all) append, until the time or count
/// limit.
fn sync_test(args: &Args, size: usize) -> io::Result<SyncResult> {
    let probe = ProbeFile::create(&args.data_dir, "fdatasync")?;
    let buf = AlignedBuf::random(size);
    let limit = Duration::from_secs_f64(args.seconds);
    let rounds_max = args.syncs_max.max(1);
    let mut syncs = Vec::with_capacity(rounds_max.min(1 << 16));
    let mut writes = Vec::with_capacity(rounds_max.min(1 << 16));
    let mut offset = 0u64;
    let start = Instant::now();
    while syncs.len() < rounds_max && start.elapsed() < limit {
        let t = Instant::now();
        probe.file.write_all_at(buf.bytes(), offset)?;
        writes.push(t.elapsed());
        let t = Instant::now();
        probe.file.sync_data()?;
        syncs.push(t.elapsed());
        offset += size as u64;
    }
    Ok(SyncResult {
        write_bytes: size,
        samples: syncs.len(),
        elapsed: start.elapsed(),
        fdatasync: Percentiles::of(&mut syncs),
        write: Percentiles::of(&mut writes),
    })
}

/// "1 MiB", "16 KiB", "4096 B".
fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// The type of the file system holding `dir` (the longest mount point
/// above it in /proc/self/mounts), if it can be told.
fn file_system_of(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            // Spaces and tabs in mount points are written as octal escapes.
            let mount_point = fields.next()?.replace("\\040", " ").replace("\\011", "\t");
            let fs_type = fields.next()?;
            dir.starts_with(&mount_point)
                .then(|| (mount_point.len(), fs_type.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs_type)| fs_type)
}

fn run(args: &Args) -> io::Result<Value> {
    if !args.data_dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is not a directory (create it, or pass --data-dir)",
                args.data_dir.display()
            ),
        ));
    }
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--seconds must be in (0, 600]",
        ));
    }
    let file_system = file_system_of(&args.data_dir).unwrap_or_else(|| "unknown".to_string());
    if matches!(file_system.as_str(), "tmpfs" | "ramfs") {
        eprintln!(
            "shardlog-disk-probe: warning: {} is on {file_system}: O_DIRECT and fdatasync do nothing there, the numbers are memory's",
            args.data_dir.display()
        );
    }
    if !args.json {
        println!(
            "shardlog-disk-probe: {} on {file_system} (O_DIRECT, queue depth 1, a fresh file per test)",
            args.data_dir.display()
        );
    }
    let mut writes = Vec::new();
    for &size in &args.write_sizes {
        let r = write_test(args, size)?;
        if !args.json {
            println!(
                "write {:>8}: {:9.1} MB/s  ({:.1} MB in {:.2} s; per write p50 {:.0} us, p99 {:.0} us, max {:.0} us)",
                human(size),
                r.mb_per_s(),
                r.bytes() as f64 / MB,
                r.elapsed.as_secs_f64(),
                r.latency.p50,
                r.latency.p99,
                r.latency.max
            );
        }
        writes.push(json!({
            "write_bytes": r.write_bytes,
            "writes": r.writes,
            "bytes": r.bytes(),
            "seconds": r.elapsed.as_secs_f64(),
            "mb_per_s": r.mb_per_s(),
            "latency_us": r.latency.json(),
        }));
    }
    let mut out = json!({
        "data_dir": args.data_dir.display().to_string(),
        "file_system": file_system,
        "align_bytes": ALIGN_BYTES,
        "write": writes,
    });
    if args.sync_write_size > 0 {
        let r = sync_test(args, args.sync_write_size)?;
        if !args.json {
            println!(
                "fdatasync after a {} write: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us ({} rounds in {:.2} s; the write itself p50 {:.0} us)",
                human(r.write_bytes),
                r.fdatasync.p50,
                r.fdatasync.p99,
                r.fdatasync.p99_9,
                r.fdatasync.max,
                r.samples,
                r.elapsed.as_secs_f64(),
                r.write.p50
            );
        }
        out["fdatasync"] = json!({
            "write_bytes": r.write_bytes,
            "samples": r.samples,
            "seconds": r.elapsed.as_secs_f64(),
            "latency_us": r.fdatasync.json(),
            "write_latency_us": r.write.json(),
        });
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(out) => {
            if args.json {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardlog-disk-probe: {e}");
            ExitCode::from(1)
        }
    }
}
