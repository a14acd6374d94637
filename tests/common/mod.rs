//! Helpers shared by the integration tests: a glommio executor to run each
//! storage test on, and batch builders; `broker`, the real broker process
//! for network tests; `clients`, real Kafka clients run as subprocesses.
#![allow(dead_code)]

pub mod broker;
pub mod clients;
pub mod kafka;
pub mod loopfs;
pub mod raw;
pub mod rdk;

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
