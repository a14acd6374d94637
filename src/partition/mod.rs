//! A partition: its log plus the state derived from it (idempotent
//! producers). The server's produce path calls [`Partition::append`]; reads,
//! offsets and retention go straight to [`Partition::log`].
//!
//! A `Partition` lives on the shard that owns it.

pub mod producer_state;

use std::cell::RefCell;
use std::path::Path;

use crate::storage::fsutil;
use crate::storage::{
    AppendError, AppendTicket, LogConfig, PartitionLog, ShardStorage, StorageError,
};
use producer_state::{ProducerError, ProducerStateTable, SequenceCheck};

const SNAPSHOT_FILE: &str = "producer-state.snapshot";

/// Why a produce to this partition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionAppendError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
}

impl From<StorageError> for PartitionAppendError {
    fn from(e: StorageError) -> Self {
        PartitionAppendError::Append(e.into())
    }
}

/// The outcome of a produce: where the batch is, and whether it was a
/// retry of a batch already in the log (then nothing new was appended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceOutcome {
    pub ticket: AppendTicket,
    pub duplicate: bool,
}

pub struct Partition {
    log: PartitionLog,
    producers: RefCell<ProducerStateTable>,
}

impl Partition {
    /// Opens the partition's log and rebuilds its producer state: from the
    /// snapshot written at the last clean close when it matches the log's
    /// end, otherwise by replaying every batch header in the log.
    pub async fn open(
        dir: &Path,
        config: LogConfig,
        shard: &ShardStorage,
    ) -> Result<Self, StorageError> {
        let log = PartitionLog::open(dir, config, shard).await?;
        let end = log.offsets().log_end_offset;
        let snapshot = fsutil::read_file(dir, SNAPSHOT_FILE)
            .await?
            .and_then(|bytes| decode_snapshot(&bytes, end));
        let producers = match snapshot {
            Some(table) => table,
            None => {
                let mut table = ProducerStateTable::default();
                let start = log.offsets().log_start_offset;
                log.scan_batch_headers(start, |h| table.record(h, h.base_offset))
                    .await?;
                table
            }
        };
        Ok(Partition {
            log,
            producers: RefCell::new(producers),
        })
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn producer_count(&self) -> usize {
        self.producers.borrow().len()
    }

    /// Validates and appends one producer batch, applying the idempotent
    /// producer rules: a retried batch gets its original offsets, a sequence
    /// gap or a stale epoch is refused. Returns once the batch has its
    /// offsets; the caller waits for `wait_appended` or `wait_durable`
    /// according to acks.
    pub async fn append(&self, batch: &[u8]) -> Result<ProduceOutcome, PartitionAppendError> {
        let header = self.log.validate(batch)?;
        let reservation = self.log.reserve(batch.len()).await?;
        // From here to the append nothing awaits, so the producer check and
        // the offset assignment see the same state.
        match self.producers.borrow().check(&header)? {
            SequenceCheck::Accept => {}
            SequenceCheck::Duplicate(original) => {
                drop(reservation);
                return Ok(ProduceOutcome {
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
        Ok(ProduceOutcome {
            ticket,
            duplicate: false,
        })
    }

    /// Closes the log cleanly and snapshots the producer state.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.log.close().await?;
        let end = self.log.offsets().log_end_offset;
        let bytes = encode_snapshot(&self.producers.borrow(), end);
        fsutil::write_file_durably(&self.log.dir(), SNAPSHOT_FILE, bytes).await
    }
}

/// Snapshot layout: log end offset (8 bytes), CRC32C of the table (4), table.
fn encode_snapshot(table: &ProducerStateTable, end_offset: i64) -> Vec<u8> {
    let body = table.encode();
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend_from_slice(&end_offset.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn decode_snapshot(bytes: &[u8], end_offset: i64) -> Option<ProducerStateTable> {
    if bytes.len() < 12 {
        return None;
    }
    let offset = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
    let crc = u32::from_be_bytes(bytes[8..12].try_into().ok()?);
    let body = &bytes[12..];
    if offset != end_offset || crc32c::crc32c(body) != crc {
        return None;
    }
    ProducerStateTable::decode(body)
}
