//! One segment of a partition log: `<20-digit base offset>.log` holding v2
//! batches back to back exactly as Kafka stores them, with its indexes.
//!
//! A `Segment` lives on the shard that owns its partition.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::DmaFile;

use super::index::{OffsetIndex, TimeIndex};
use super::StorageError;
use crate::record::batch::{BatchHeader, LOG_OVERHEAD_BYTES};
use crate::record::validate_stored_batch;

/// File name stem of a segment: the base offset, zero-padded to 20 digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log", file_stem(base_offset)))
}

pub fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(index_file_names(base_offset).0)
}

pub fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(index_file_names(base_offset).1)
}

/// The names of a segment's offset and time index files.
pub fn index_file_names(base_offset: i64) -> (String, String) {
    let stem = file_stem(base_offset);
    (format!("{stem}.index"), format!("{stem}.timeindex"))
}

/// Parses `<20 digits>.log` into a base offset.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The base offsets of the segments among directory entry `names`, in
/// ascending order.
pub fn segment_bases(names: &[String]) -> Vec<i64> {
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_log_file_name(n))
        .collect();
    bases.sort_unstable();
    bases
}

/// The in-memory state of one segment.
pub struct Segment {
    pub base_offset: i64,
    /// Open once the file exists on disk; the active segment's file is
    /// created by the writer task when its first bytes are written.
    pub file: Option<Rc<DmaFile>>,
    /// The same file opened O_DSYNC, for durable writes (see
    /// `DurableWrites::Dsync`); opened on first use, closed when the
    /// segment is sealed.
    pub dsync_file: Option<Rc<DmaFile>>,
    /// Logical size: bytes of whole batches appended (written or not).
    pub size: u64,
    /// The offset after the last batch appended.
    pub next_offset: i64,
    /// Largest batch max timestamp, and the last offset of that batch.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    pub bytes_since_index_entry: usize,
    /// Clock time of the first append, for segment.ms.
    pub first_append_ms: Option<i64>,
}

impl Segment {
    pub fn new(base_offset: i64) -> Self {
        Segment {
            base_offset,
            file: None,
            dsync_file: None,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            index: OffsetIndex::new(base_offset),
            time_index: TimeIndex::new(base_offset),
            bytes_since_index_entry: 0,
            first_append_ms: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Records a batch appended at `position` in the in-memory metadata and
    /// the indexes, as Kafka's `LogSegment.append` does.
    pub fn note_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
        index_interval_bytes: usize,
        now_ms: i64,
    ) {
        assert_eq!(position, self.size, "batches are appended at the end");
        assert!(
            header.base_offset >= self.next_offset,
            "offsets only grow within a segment"
        );
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_index_entry > index_interval_bytes {
            let pos = u32::try_from(position).expect("segment positions fit in 32 bits");
            self.index.append(header.last_offset(), pos);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_index_entry = 0;
        }
        let total = header.total_bytes();
        self.bytes_since_index_entry += total;
        self.size = position + total as u64;
        self.next_offset = header.next_offset();
        self.first_append_ms.get_or_insert(now_ms);
    }
}

/// Result of scanning a segment file batch by batch.
pub struct ScanOutcome {
    /// Bytes of valid batches from the start of the file.
    pub valid_bytes: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stopped_by: Option<String>,
}

/// Reads a segment file from the start in large aligned reads, validating
/// every batch (length, magic, CRC, and offsets: baseOffset lies outside
/// the CRC, so in the active segment, which appends fill without gaps,
/// each batch must start exactly where the previous one ended; a closed
/// segment, `end_bound` being the next segment's base offset, may hold
/// gaps where the log cleaner removed records, so there a batch must start
/// at or after the previous one's end and end below the bound) and calling
/// `visit` for each valid one with its position. Stops at the first invalid batch or at zero padding;
/// everything from there on is not part of the log.
pub async fn scan_file(
    file: &DmaFile,
    file_bytes: u64,
    base_offset: i64,
    end_bound: Option<i64>,
    read_chunk_bytes: usize,
    mut visit: impl FnMut(&BatchHeader, u64, &[u8]),
) -> Result<ScanOutcome, StorageError> {
    let mut pending: Vec<u8> = Vec::new(); // bytes from `pending_at` onwards
    let mut pending_at: u64 = 0;
    let mut read_pos: u64 = 0;
    let mut expected_next = base_offset;
    loop {
        // Parse as many whole batches as `pending` holds.
        let mut consumed = 0usize;
        let mut need = LOG_OVERHEAD_BYTES;
        while pending.len() - consumed >= LOG_OVERHEAD_BYTES {
            let rest = &pending[consumed..];
            let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
            let position = pending_at + consumed as u64;
            if length == 0 {
                return Ok(ScanOutcome {
                    valid_bytes: position,
                    stopped_by: None,
                });
            }
            if length < 49 || position + LOG_OVERHEAD_BYTES as u64 + length as u64 > file_bytes {
                return Ok(ScanOutcome {
                    valid_bytes: position,
                    stopped_by: Some(format!("batch length {length} at position {position}")),
                });
            }
            let total = LOG_OVERHEAD_BYTES + length as usize;
            if rest.len() < total {
                need = total;
                break;
            }
            let batch = &rest[..total];
            match validate_stored_batch(batch) {
                Ok(header)
                    if (header.base_offset == expected_next
                        || (end_bound.is_some() && header.base_offset > expected_next))
                        && header.last_offset_delta >= 0
                        && header.last_offset() - base_offset <= i64::from(i32::MAX)
                        && end_bound.is_none_or(|end| header.last_offset() < end) =>
                {
                    expected_next = header.next_offset();
                    visit(&header, position, batch);
                }
                Ok(header) => {
                    return Ok(ScanOutcome {
                        valid_bytes: position,
                        stopped_by: Some(format!(
                            "offset {} at position {position} does not follow {expected_next}",
                            header.base_offset
                        )),
                    });
                }
                Err(e) => {
                    return Ok(ScanOutcome {
                        valid_bytes: position,
                        stopped_by: Some(format!("{e} at position {position}")),
                    });
                }
            }
            consumed += total;
        }
        pending.drain(..consumed);
        pending_at += consumed as u64;
        if read_pos >= file_bytes {
            let tail = pending_at;
            return Ok(ScanOutcome {
                valid_bytes: tail,
                stopped_by: (!pending.is_empty())
                    .then(|| format!("{} trailing bytes at position {tail}", pending.len())),
            });
        }
        let want = read_chunk_bytes.max(need - pending.len().min(need));
        let chunk = file
            .read_at_aligned(read_pos, round_up(want, 4096))
            .await
            .map_err(|e| StorageError::io("reading segment", e))?;
        let usable = chunk.len().min((file_bytes - read_pos) as usize);
        pending.extend_from_slice(&chunk[..usable]);
        read_pos += chunk.len() as u64;
        if chunk.is_empty() {
            read_pos = file_bytes;
        }
    }
}

pub fn round_up(v: usize, to: usize) -> usize {
    v.div_ceil(to) * to
}
