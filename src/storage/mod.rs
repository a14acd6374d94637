//! The partition log storage engine.
//!
//! A partition log is a directory `<data>/<topic>-<partition>/` of segments
//! (`<20-digit base offset>.log`, `.index`, `.timeindex`) in Apache Kafka's
//! on-disk format. Writes go through glommio's `DmaFile` (O_DIRECT on
//! io_uring) from an aligned tail buffer; appends that arrive while a write or
//! an fdatasync is in flight share the next write and the next fdatasync
//! (group commit). Each append reports two moments: *appended* (written to
//! the file: it survives a process crash and is visible to readers) and
//! *durable* (covered by an fdatasync: it survives power loss).
//!
//! Everything here lives on the shard that owns the partition.

pub mod cache;
pub mod clock;
pub mod config;
pub mod fsutil;
pub mod index;
pub mod log;
pub mod preallocation;
pub mod read_ahead;
pub mod segment;
pub mod space;
pub mod waiters;

use std::io;

pub use cache::BatchCache;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, DurableWrites, LogConfig, ShardStorageConfig};
pub use log::cleaner::{CleanOutcome, CleanParams, StopAt, SwapStep};
pub use log::truncate::{truncate_files, TruncateStop};
pub use log::{
    AppendTicket, ClosingLog, LogOffsets, LogStats, PartitionLog, ReadBatches, Reservation,
    RetentionOutcome, ShardStorage, TimestampOffset,
};

use crate::record::BatchError;

/// An I/O failure of the log. Once a write or fdatasync fails the log stops
/// accepting appends (as Kafka takes a failed log directory offline); every
/// waiter receives a clone of the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("{context}: {message}")]
    Io {
        context: &'static str,
        kind: io::ErrorKind,
        message: String,
    },
    #[error("the log is closed")]
    Closed,
    #[error("damaged log data: {0}")]
    Corrupt(String),
    #[error("the data directory is unusable: {0}")]
    BadDirectory(String),
}

impl StorageError {
    pub fn io(context: &'static str, e: impl Into<io::Error>) -> Self {
        let e: io::Error = e.into();
        StorageError::Io {
            context,
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl From<glommio::GlommioError<()>> for StorageError {
    fn from(e: glommio::GlommioError<()>) -> Self {
        StorageError::io("glommio", e)
    }
}

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("invalid batch: {0}")]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a read was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        high_watermark: i64,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}
