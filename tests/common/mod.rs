//! Helpers shared by the integration tests: a glommio executor to run each
//! storage test on, and batch builders; `broker`, the real broker process
//! for network tests; `clients`, real Kafka clients run as subprocesses.
#![allow(dead_code)]

pub mod broker;
pub mod clients;
pub mod cluster;
pub mod kafka;
pub mod loopfs;
pub mod raw;
pub mod rdk;
pub mod replicas;

use std::future::Future;
use std::path::Path;
use std::rc::Rc;

use glommio::LocalExecutorBuilder;
use shardlog::record::records::BatchBuilder;
use shardlog::storage::{Clock, ManualClock, ShardStorage, ShardStorageConfig, SystemClock};

/// Runs `f` on a fresh single-shard glommio executor on this thread's own
/// OS thread, as a broker shard would.
pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::default()
        .io_memory(2 << 20)
        .spawn(f)
        .expect("start executor")
        .join()
        .expect("executor finished")
}

/// A temp dir on the real disk (O_DIRECT needs a real file system).
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("shardlog-test-")
        .tempdir_in(std::env::var_os("SHARDLOG_TEST_DIR").unwrap_or_else(|| "/var/tmp".into()))
        .expect("temp dir")
}

pub async fn shard(data: &Path, cache_bytes_max: usize) -> ShardStorage {
    shard_with_clock(data, cache_bytes_max, Rc::new(SystemClock)).await
}

pub async fn shard_with_clock(
    data: &Path,
    cache_bytes_max: usize,
    clock: Rc<dyn Clock>,
) -> ShardStorage {
    let config = ShardStorageConfig {
        cache_bytes_max,
        read_chunk_bytes: 64 << 10,
        ..ShardStorageConfig::default()
    };
    ShardStorage::start(data, 0, config, clock)
        .await
        .expect("shard storage")
}

pub fn manual_clock(now_ms: i64) -> ManualClock {
    ManualClock::new(now_ms)
}

/// An uncompressed producer batch of `records` records whose values encode
/// `tag` and the record index, `value_bytes` long each.
pub fn batch(tag: u64, records: usize, value_bytes: usize, timestamp: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(timestamp);
    for i in 0..records {
        let mut value = format!("{tag}:{i}:").into_bytes();
        value.resize(value_bytes.max(value.len()), b'x');
        b.push_value(i as i64, &value);
    }
    b.build()
}

/// The bytes of a stored batch that the broker does not rewrite (from the
/// CRC on), to compare with what was appended.
pub fn payload(batch: &[u8]) -> &[u8] {
    &batch[17..]
}

/// Byte ranges (start, length) of the file at `path` that the file system
/// reports as allocated but unwritten (FIEMAP's UNWRITTEN flag), in file
/// order. Syncs the file first, so pending extent conversions show.
#[allow(unsafe_code)]
pub fn unwritten_ranges(path: &Path) -> Vec<(u64, u64)> {
    use std::os::fd::AsRawFd;
    const FS_IOC_FIEMAP: u64 = 0xC020_660B;
    const FIEMAP_FLAG_SYNC: u32 = 0x1;
    const FIEMAP_EXTENT_LAST: u32 = 0x1;
    const FIEMAP_EXTENT_UNWRITTEN: u32 = 0x800;
    const EXTENTS: usize = 128;
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Extent {
        logical: u64,
        physical: u64,
        length: u64,
        reserved64: [u64; 2],
        flags: u32,
        reserved: [u32; 3],
    }
    #[repr(C)]
    struct Fiemap {
        start: u64,
        length: u64,
        flags: u32,
        mapped_extents: u32,
        extent_count: u32,
        reserved: u32,
        extents: [Extent; EXTENTS],
    }
    let file = std::fs::File::open(path).expect("open for FIEMAP");
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        // SAFETY: Fiemap is plain integers; all zeros is a valid value.
        let mut map: Box<Fiemap> = Box::new(unsafe { std::mem::zeroed() });
        map.start = start;
        map.length = u64::MAX - start;
        map.flags = FIEMAP_FLAG_SYNC;
        map.extent_count = EXTENTS as u32;
        // SAFETY: FS_IOC_FIEMAP reads and fills the struct it is given,
        // which has room for `extent_count` extents.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                FS_IOC_FIEMAP as _,
                &mut *map as *mut Fiemap,
            )
        };
        assert_eq!(rc, 0, "FIEMAP: {}", std::io::Error::last_os_error());
        let mapped = map.mapped_extents as usize;
        if mapped == 0 {
            break;
        }
        for e in &map.extents[..mapped] {
            if e.flags & FIEMAP_EXTENT_UNWRITTEN != 0 {
                out.push((e.logical, e.length));
            }
        }
        let last = map.extents[mapped - 1];
        if last.flags & FIEMAP_EXTENT_LAST != 0 {
            break;
        }
        start = last.logical + last.length;
    }
    out
}

/// Batch `round` of ten keyed records: keys k0..k9, values
/// `{tag}{round}:{key}:` padded with dots to 100 bytes, timestamps from
/// 1000 + round.
pub fn keyed_batch(round: i64, tag: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000 + round);
    for k in 0..10 {
        let mut value = format!("{tag}{round}:{k}:").into_bytes();
        value.resize(100, b'.');
        b.push(&shardlog::record::records::Record {
            timestamp_delta: k,
            key: Some(format!("k{k}").into_bytes()),
            value: Some(value),
            headers: Vec::new(),
        });
    }
    b.build()
}

/// A record as read back: (offset, key, value).
pub type ReadRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every record of `log` from its start up to `end`, read batch by batch
/// (each read must return a batch).
pub async fn read_records(log: &shardlog::storage::PartitionLog, end: i64) -> Vec<ReadRecord> {
    use shardlog::record::batch::BatchHeader;
    let mut out = Vec::new();
    let mut offset = log.offsets().log_start_offset;
    while offset < end {
        let r = log.read(offset, 64 << 10).await.expect("read");
        assert!(
            !r.batches.is_empty(),
            "a read at {offset} below {end} returns a batch"
        );
        for b in r.batches {
            let h = BatchHeader::parse(&b).unwrap();
            for rec in shardlog::record::records::decode_records(&b).unwrap() {
                if rec.offset >= offset {
                    out.push((rec.offset, rec.key, rec.value));
                }
            }
            offset = h.next_offset();
        }
    }
    out
}

/// Every file in `dir` by name, with its bytes.
pub fn dir_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Makes `dir` hold exactly `files` (from [`dir_files`]).
pub fn restore_files(dir: &Path, files: &std::collections::BTreeMap<String, Vec<u8>>) {
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
