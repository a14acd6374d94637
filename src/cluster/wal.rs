//! The metadata quorum's write-ahead log: Raft entries and hard states
//! kept in a partition log of shardlog's own storage engine
//! (`<data>/__cluster_metadata-0/`, Kafka batches on O_DIRECT segments).
//!
//! The log is append-only, as etcd's WAL is: each record is either an
//! entry (key `e`, value the `eraftpb::Entry`) or a hard state (key `h`,
//! value the `eraftpb::HardState`). When Raft replaces a follower's
//! uncommitted suffix, the new entries are simply appended; replay keeps,
//! for every index, the entry written last, and drops the entries after
//! it, exactly as Raft did in memory. So the log is never cut in place,
//! and a crash at any point leaves a prefix of what was written, which
//! replays to a state Raft had persisted. Each Raft `Ready` becomes one
//! append of contiguous batches, durable (fdatasync) before the messages
//! that depend on it are sent.

use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::{Entry, HardState, SnapshotMetadata};

use crate::partition::{Acks, Partition, PartitionConfig, PartitionError};
use crate::record::records::{decode_records, BatchBuilder, Record};
use crate::storage::{LogConfig, ShardStorage, StorageError};

/// The metadata log's directory name, Kafka's.
pub const METADATA_DIR: &str = "__cluster_metadata-0";

const KEY_ENTRY: &[u8] = b"e";
const KEY_HARD_STATE: &[u8] = b"h";
const KEY_SNAPSHOT: &[u8] = b"s";

/// Largest batch written; an append of more is split into several.
const BATCH_BYTES_MAX: usize = 1 << 20;

/// What replay found.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The last hard state written (default if none).
    pub hard_state: HardState,
    /// The surviving entries, contiguous and in index order.
    pub entries: Vec<Entry>,
    /// Records read.
    pub records: u64,
    /// The snapshot the log was last rebased on, if any: the entries
    /// follow it.
    pub snapshot: Option<SnapshotMetadata>,
}

/// Why the metadata log failed.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("metadata log: {0}")]
    Partition(#[from] PartitionError),
    #[error("metadata log: {0}")]
    Storage(#[from] StorageError),
    #[error("metadata log at offset {offset}: {what}")]
    Corrupt { offset: i64, what: String },
}

pub struct Wal {
    log: Partition,
    now_ms: std::rc::Rc<dyn crate::storage::Clock>,
}

pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(METADATA_DIR)
}

fn log_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        max_message_bytes: BATCH_BYTES_MAX + (64 << 10),
        preallocate_bytes: 1 << 20,
        write_buffer_bytes_max: 8 << 20,
        ..LogConfig::default()
    }
}

impl Wal {
    pub async fn open(data_dir: &Path, storage: &ShardStorage) -> Result<Self, WalError> {
        let dir = wal_dir(data_dir);
        let d = dir.clone();
        crate::storage::fsutil::blocking(move || std::fs::create_dir_all(&d))
            .await
            .map_err(|e| StorageError::io("creating the metadata log directory", e))?;
        let config = PartitionConfig {
            log: log_config(),
            ..PartitionConfig::internal()
        };
        let log = Partition::open(&dir, config, storage).await?;
        Ok(Wal {
            log,
            now_ms: storage.clock.clone(),
        })
    }

    /// Appends `entries` and then `hard_state` (either may be empty) and
    /// waits until they are on stable storage.
    pub async fn append(
        &self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<(), WalError> {
        let mut records: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(entries.len() + 1);
        for e in entries {
            records.push((KEY_ENTRY, encode(e)));
        }
        if let Some(hs) = hard_state {
            records.push((KEY_HARD_STATE, encode(hs)));
        }
        if records.is_empty() {
            return Ok(());
        }
        let batches = self.batches(records);
        let (_, last) = self.log.append_batches(&batches).await?;
        self.log.wait(&last, Acks::All, None).await?;
        Ok(())
    }

    /// Starts the log over from a snapshot (already written): a marker
    /// naming it, the entries after it and the hard state, durable, and
    /// then everything before the marker is dropped. A crash in between
    /// leaves the older records, which replay discards at the marker.
    pub async fn rebase(
        &self,
        snapshot: &SnapshotMetadata,
        entries: &[Entry],
        hard_state: &HardState,
    ) -> Result<(), WalError> {
        let mut records: Vec<(&[u8], Vec<u8>)> = Vec::with_capacity(entries.len() + 2);
        records.push((KEY_SNAPSHOT, encode(snapshot)));
        for e in entries {
            records.push((KEY_ENTRY, encode(e)));
        }
        records.push((KEY_HARD_STATE, encode(hard_state)));
        let batches = self.batches(records);
        let (first, last) = self.log.append_batches(&batches).await?;
        self.log.wait(&last, Acks::All, None).await?;
        self.log.delete_records(first.ticket.base_offset).await?;
        Ok(())
    }

    /// The log's start and end offsets (records, not Raft indexes).
    pub fn offsets(&self) -> (i64, i64) {
        let o = self.log.offsets();
        (o.log_start_offset, o.log_end_offset)
    }

    fn batches(&self, records: Vec<(&[u8], Vec<u8>)>) -> Vec<Vec<u8>> {
        let now = self.now_ms.now_ms();
        let mut out = Vec::new();
        let mut builder = BatchBuilder::new(now);
        let mut bytes = 0;
        for (key, value) in records {
            if bytes > 0 && bytes + value.len() > BATCH_BYTES_MAX {
                out.push(builder.build());
                builder = BatchBuilder::new(now);
                bytes = 0;
            }
            bytes += value.len() + 16;
            builder.push(&Record {
                timestamp_delta: 0,
                key: Some(key.to_vec()),
                value: Some(value),
                headers: Vec::new(),
            });
        }
        out.push(builder.build());
        out
    }

    /// Reads the whole log: the last hard state, and the entries Raft had
    /// when it last wrote.
    pub async fn replay(&self) -> Result<Replayed, WalError> {
        let offsets = self.log.offsets();
        let mut offset = offsets.log_start_offset;
        let mut out = Replayed::default();
        while offset < offsets.high_watermark {
            let read = self.log.read(offset, 4 << 20).await?;
            if read.batches.is_empty() {
                break;
            }
            for batch in &read.batches {
                let header =
                    crate::record::batch::BatchHeader::parse(batch).ok_or(WalError::Corrupt {
                        offset,
                        what: "short batch".into(),
                    })?;
                let records = decode_records(batch).ok_or(WalError::Corrupt {
                    offset: header.base_offset,
                    what: "batch does not decode".into(),
                })?;
                offset = header.next_offset();
                for r in records {
                    let corrupt = |what: &str| WalError::Corrupt {
                        offset: r.offset,
                        what: what.to_string(),
                    };
                    let value = r.value.as_deref().ok_or_else(|| corrupt("null value"))?;
                    match r.key.as_deref() {
                        Some(KEY_ENTRY) => {
                            let e = Entry::parse_from_bytes(value)
                                .map_err(|_| corrupt("entry does not decode"))?;
                            push_entry(&mut out.entries, e).map_err(|w| corrupt(&w))?;
                        }
                        Some(KEY_SNAPSHOT) => {
                            let meta = SnapshotMetadata::parse_from_bytes(value)
                                .map_err(|_| corrupt("snapshot marker does not decode"))?;
                            out.entries.clear();
                            out.snapshot = Some(meta);
                        }
                        Some(KEY_HARD_STATE) => {
                            out.hard_state = HardState::parse_from_bytes(value)
                                .map_err(|_| corrupt("hard state does not decode"))?;
                        }
                        _ => return Err(corrupt("unknown record key")),
                    }
                    out.records += 1;
                }
            }
        }
        Ok(out)
    }

    pub async fn close(&self) -> Result<(), StorageError> {
        self.log.close().await
    }
}

/// Adds an entry read back from the log: an entry for an index already
/// held replaces it and everything after it (Raft overwrote that suffix).
fn push_entry(entries: &mut Vec<Entry>, e: Entry) -> Result<(), String> {
    if let Some(first) = entries.first() {
        let first = first.index;
        if e.index < first {
            // Older than anything kept: only a compaction (snapshot) could
            // have removed what came before, so start over from it.
            entries.clear();
        } else {
            let keep = (e.index - first) as usize;
            if keep > entries.len() {
                return Err(format!(
                    "entry {} leaves a gap after entry {}",
                    e.index,
                    first + entries.len() as u64 - 1
                ));
            }
            entries.truncate(keep);
        }
    }
    entries.push(e);
    Ok(())
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    m.write_to_bytes()
        .expect("raft protobuf messages always encode")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8, term as u8].into(),
            ..Default::default()
        }
    }

    #[test]
    fn later_entries_replace_the_suffix_they_overlap() {
        let mut v = Vec::new();
        for i in 1..=5 {
            push_entry(&mut v, entry(i, 1)).unwrap();
        }
        push_entry(&mut v, entry(3, 2)).unwrap();
        assert_eq!(
            v.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            vec![(1, 1), (2, 1), (3, 2)]
        );
        assert!(push_entry(&mut v, entry(9, 2)).is_err());
    }
}
