//! Cutting a log back to an offset, as a follower does before it fetches
//! from a new leader (KIP-101/KIP-279: to where the leader's copy of its
//! latest epoch ends) and as Kafka's `truncateTo` does: a batch is kept or
//! dropped whole, so the log then ends at the start of the batch that held
//! the offset.
//!
//! The log is closed first (its data written and synced, a clean-shutdown
//! marker), the files are cut with the log closed, and the log is opened
//! again, so recovery rebuilds every in-memory structure (indexes, tail
//! buffer, caches) from what is on disk. The cut runs in an order that
//! leaves a prefix of the log on disk after every step: the marker and
//! the owner's files keyed to the old end are emptied first (so a crash
//! from there on makes the next open scan the active segment), then the
//! segments above the cut go from the last one down, then the segment
//! holding the cut is shortened and its indexes removed. A crash anywhere
//! leaves a log that is the old one cut somewhere between the target and
//! the old end, which a follower's next truncation (it runs again on every
//! start) finishes.

use super::*;

/// How far [`truncate_files`] went before a test stops it (a crash there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncateStop {
    /// After the marker and the owner's files were emptied.
    Emptied,
    /// After `n` of the segments above the cut were removed.
    Removed(usize),
}

/// Where the cut falls: the segment holding `offset` and the byte
/// position of the first batch that ends at or after it.
struct Cut {
    /// Index into the sorted segment bases; None: below every segment.
    segment: Option<usize>,
    position: u64,
    /// The file's size: when `position` equals it, nothing of that
    /// segment goes.
    file_bytes: u64,
}

async fn find_cut(
    dir: &Path,
    bases: &[i64],
    offset: i64,
    read_chunk_bytes: usize,
) -> Result<Cut, StorageError> {
    let Some(i) = bases.iter().rposition(|&b| b <= offset) else {
        return Ok(Cut {
            segment: None,
            position: 0,
            file_bytes: 0,
        });
    };
    let file = OpenOptions::new()
        .read(true)
        .dma_open(segment::log_path(dir, bases[i]))
        .await
        .map_err(|e| StorageError::io("opening segment", e))?;
    let file_bytes = file
        .file_size()
        .await
        .map_err(|e| StorageError::io("sizing segment", e))?;
    let mut cut_at: Option<u64> = None;
    let outcome = segment::scan_file(
        &file,
        file_bytes,
        bases[i],
        bases.get(i + 1).copied(),
        read_chunk_bytes,
        |h, pos, _| {
            if cut_at.is_none() && h.base_offset + i64::from(h.last_offset_delta) >= offset {
                cut_at = Some(pos);
            }
        },
    )
    .await?;
    let _ = file.close().await;
    Ok(Cut {
        segment: Some(i),
        position: cut_at.unwrap_or(outcome.valid_bytes),
        file_bytes,
    })
}

/// Cuts the closed log in `dir` so that no batch ending at or after
/// `offset` is left (see the module's notes); `forget` names files of the
/// log's owner that describe the old end (a producer snapshot), emptied
/// before anything is cut. Below every segment the log is emptied and
/// starts at `offset` (Kafka's truncateFullyAndStartAt). Nothing is done
/// when no batch reaches `offset`. `stop`: tests end it early there, as a
/// crash would. Returns whether anything was cut.
pub async fn truncate_files(
    dir: &Path,
    offset: i64,
    forget: &[&str],
    read_chunk_bytes: usize,
    stop: Option<TruncateStop>,
) -> Result<bool, StorageError> {
    let listed = dir.to_path_buf();
    let names = fsutil::blocking(move || fsutil::list_names_blocking(&listed))
        .await
        .map_err(|e| StorageError::io("listing partition directory", e))?;
    let bases = segment::segment_bases(&names);
    let cut = find_cut(dir, &bases, offset, read_chunk_bytes).await?;
    let above = match cut.segment {
        Some(i) => i + 1,
        None => 0,
    };
    let shortens = cut.segment.is_some() && cut.position < cut.file_bytes;
    if above == bases.len() && !shortens {
        return Ok(false);
    }

    fsutil::write_file_durably(dir, CLEAN_SHUTDOWN_FILE, Vec::new()).await?;
    for name in forget {
        if names.iter().any(|n| n == name) {
            fsutil::write_file_durably(dir, name, Vec::new()).await?;
        }
    }
    if cut.segment.is_none() {
        // Nothing below the offset survives: the log starts there.
        fsutil::write_file_durably(dir, LOG_START_FILE, offset.to_string().into_bytes()).await?;
    }
    if stop == Some(TruncateStop::Emptied) {
        return Ok(true);
    }
    for (n, &base) in bases[above..].iter().rev().enumerate() {
        fsutil::remove_file(segment::index_path(dir, base)).await?;
        fsutil::remove_file(segment::time_index_path(dir, base)).await?;
        fsutil::remove_file(segment::log_path(dir, base)).await?;
        fsutil::sync_dir(dir).await?;
        if stop == Some(TruncateStop::Removed(n + 1)) {
            return Ok(true);
        }
    }
    if let (Some(i), true) = (cut.segment, shortens) {
        let base = bases[i];
        let path = segment::log_path(dir, base);
        let at = cut.position;
        fsutil::blocking(move || -> std::io::Result<()> {
            let file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.set_len(at)?;
            file.sync_data()
        })
        .await
        .map_err(|e| StorageError::io("truncating segment", e))?;
        // It is the active segment now: recovery scans it and its indexes
        // are written again when it is sealed.
        fsutil::remove_file(segment::index_path(dir, base)).await?;
        fsutil::remove_file(segment::time_index_path(dir, base)).await?;
        fsutil::sync_dir(dir).await?;
    }
    Ok(true)
}

/// Makes the closed log in `dir` start afresh, empty, at `offset` (Kafka's
/// truncateFullyAndStartAt, for a follower whose log is below its
/// leader's log start): the owner's `forget` files are emptied and the
/// log start is written as `offset` first; the segments are removed
/// last, from the newest down, and the next open (which finds the start
/// past the log end) removes whatever a crash left of them.
pub async fn start_files_at(dir: &Path, offset: i64, forget: &[&str]) -> Result<(), StorageError> {
    let listed = dir.to_path_buf();
    let names = fsutil::blocking(move || fsutil::list_names_blocking(&listed))
        .await
        .map_err(|e| StorageError::io("listing partition directory", e))?;
    fsutil::write_file_durably(dir, CLEAN_SHUTDOWN_FILE, Vec::new()).await?;
    for name in forget {
        if names.iter().any(|n| n == name) {
            fsutil::write_file_durably(dir, name, Vec::new()).await?;
        }
    }
    fsutil::write_file_durably(dir, LOG_START_FILE, offset.to_string().into_bytes()).await?;
    for &base in segment::segment_bases(&names).iter().rev() {
        fsutil::remove_file(segment::index_path(dir, base)).await?;
        fsutil::remove_file(segment::time_index_path(dir, base)).await?;
        fsutil::remove_file(segment::log_path(dir, base)).await?;
    }
    fsutil::sync_dir(dir).await?;
    Ok(())
}

impl PartitionLog {
    /// Cuts the log so that it ends before the batch holding `offset`
    /// (nothing when the log ends at or below it): closes it, cuts its
    /// files with [`truncate_files`] (emptying the owner's `forget` files
    /// first) and opens it again with `config`, which is returned with
    /// the new log end. Appends and reads must have stopped (a follower
    /// truncates before it fetches).
    pub async fn truncate_to(
        self,
        offset: i64,
        forget: &[&str],
        config: LogConfig,
        shard: &ShardStorage,
    ) -> Result<PartitionLog, StorageError> {
        let dir = self.dir();
        let chunk = self.shared.read_chunk_bytes;
        self.close().await?;
        drop(self);
        truncate_files(&dir, offset, forget, chunk, None).await?;
        PartitionLog::open(&dir, config, shard).await
    }
}
