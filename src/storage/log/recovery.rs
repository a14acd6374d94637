//! Opening a partition log: listing segments, trusting a clean shutdown's
//! marker or scanning the active segment (and any segment whose indexes are
//! missing or damaged), cutting the log at the first damaged batch, and
//! rebuilding indexes. Runs on the shard that owns the partition.

use super::*;
/// What recovery hands to `open`.
pub(super) struct Recovered {
    pub(super) segments: Vec<Segment>,
    pub(super) log_start_offset: i64,
    pub(super) allocated: Vec<(i64, u64)>,
    pub(super) tail_buf: DmaBuffer,
}

pub(super) async fn recover(
    dir: &Path,
    config: &LogConfig,
    shard: &ShardStorage,
) -> Result<Recovered, StorageError> {
    let list = |create: bool| {
        let dir_owned = dir.to_path_buf();
        fsutil::blocking(move || -> std::io::Result<Vec<String>> {
            if create {
                std::fs::create_dir_all(&dir_owned)?;
                if let Some(parent) = dir_owned.parent() {
                    fsutil::sync_dir_blocking(parent)?;
                }
            }
            fsutil::list_names_blocking(&dir_owned)
        })
    };
    let mut names: Vec<String> = list(true)
        .await
        .map_err(|e| StorageError::io("listing partition directory", e))?;

    // Segments the log cleaner was rewriting when the process stopped: a
    // `.cleaned` file's swap never committed, so the originals stand; a
    // `.swap` file's did, so the swap is finished (see `cleaner`).
    for name in names
        .iter()
        .filter(|n| n.ends_with(super::cleaner::CLEANED_SUFFIX))
    {
        tracing::info!(file = %name, "removing an unfinished cleaned segment");
        fsutil::remove_file(dir.join(name)).await?;
    }
    let swaps: Vec<(i64, i64)> = names
        .iter()
        .filter_map(|n| super::cleaner::parse_swap_file_name(n))
        .collect();
    if !swaps.is_empty() {
        for (base, end) in swaps {
            tracing::info!(base, end, "finishing a committed log cleaner swap");
            let at = dir.to_path_buf();
            fsutil::blocking(move || super::cleaner::finish_swap_blocking(&at, base, end, None))
                .await
                .map_err(|e| StorageError::io("finishing a log cleaner swap", e))?;
        }
        names = list(false)
            .await
            .map_err(|e| StorageError::io("listing partition directory", e))?;
    }
    let bases = segment::segment_bases(&names);

    // A clean-shutdown marker vouches for the active segment's size and
    // indexes. It is emptied (durably) before anything else is written, so
    // a crash from here on triggers a scan at the next open; it stays as an
    // empty file so that a shutdown rewrites it in place.
    let marker = fsutil::read_file(dir, CLEAN_SHUTDOWN_FILE).await?;
    let clean: Option<(i64, u64)> = marker.as_ref().and_then(|m| {
        let text = std::str::from_utf8(m).ok()?;
        let mut parts = text.split_whitespace();
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    });
    if marker.as_ref().is_none_or(|m| !m.is_empty()) {
        let at = dir.to_path_buf();
        fsutil::blocking(move || -> std::io::Result<()> {
            let created = !at.join(CLEAN_SHUTDOWN_FILE).exists();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(at.join(CLEAN_SHUTDOWN_FILE))?;
            file.sync_data()?;
            if created {
                fsutil::sync_dir_blocking(&at)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageError::io("emptying the clean-shutdown marker", e))?;
    }
    let persisted_start: Option<i64> = fsutil::read_file(dir, LOG_START_FILE)
        .await?
        .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok());

    let mut segments: Vec<Segment> = Vec::new();
    let mut allocated = Vec::new();
    let count = bases.len();
    for (i, &base) in bases.iter().enumerate() {
        let is_active = i + 1 == count;
        let path = segment::log_path(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(|e| StorageError::io("opening segment", e))?;
        let file_bytes = file
            .file_size()
            .await
            .map_err(|e| StorageError::io("sizing segment", e))?;
        let next_base = bases.get(i + 1).copied();
        let trusted_size = if is_active {
            clean.map(|(_, size)| size).filter(|&s| s <= file_bytes)
        } else {
            Some(file_bytes)
        };
        let trusted_next = if is_active {
            clean.map(|(next, _)| next)
        } else {
            next_base
        };
        let mut current_bytes = file_bytes;
        let mut seg = Segment::new(base);
        let loaded = match (trusted_size, trusted_next) {
            (Some(size), Some(next)) => load_indexes(dir, base, size, next, &mut seg).await?,
            _ => false,
        };
        if loaded {
            seg.size = trusted_size.expect("checked");
            seg.next_offset = trusted_next.expect("checked");
        } else {
            // Scan: rebuild indexes from the log and cut at the first
            // damaged batch.
            let interval = config.index_interval_bytes;
            let now = shard.clock.now_ms();
            let outcome = segment::scan_file(
                &file,
                file_bytes,
                base,
                next_base,
                shard.config.read_chunk_bytes,
                |h, pos, _| seg.note_batch(h, pos, interval, now),
            )
            .await?;
            seg.first_append_ms = None;
            if let Some(reason) = &outcome.stopped_by {
                tracing::warn!(
                    segment = %path.display(),
                    valid_bytes = outcome.valid_bytes,
                    reason = %reason,
                    "truncating damaged segment tail"
                );
            }
            if outcome.valid_bytes < file_bytes {
                current_bytes = outcome.valid_bytes;
                file.truncate(outcome.valid_bytes)
                    .await
                    .map_err(|e| StorageError::io("truncating damaged segment", e))?;
            }
            // What a scan keeps is reported durable from now on (the durable
            // offset starts at the log end), so make it so: the crash may
            // have come between a write and its fdatasync.
            file.fdatasync()
                .await
                .map_err(|e| StorageError::io("fdatasync after recovery", e))?;
            seg.time_index
                .maybe_append(seg.max_timestamp, seg.offset_of_max_timestamp);
            let damaged_closed_segment = !is_active && outcome.stopped_by.is_some();
            if damaged_closed_segment {
                // Nothing after the damage can be trusted to follow on, so
                // later segments go, durably, before this segment's new
                // indexes vouch for its shortened end.
                for &later in &bases[i + 1..] {
                    tracing::warn!(base = later, "removing segment after damaged one");
                    fsutil::remove_file(segment::log_path(dir, later)).await?;
                    fsutil::remove_file(segment::index_path(dir, later)).await?;
                    fsutil::remove_file(segment::time_index_path(dir, later)).await?;
                }
                fsutil::sync_dir(dir).await?;
            }
            if !is_active {
                write_indexes(
                    dir,
                    base,
                    seg.index.encode(),
                    seg.time_index.encode(),
                    Durability::EachFile,
                )
                .await?;
            }
            if damaged_closed_segment {
                seg.file = Some(Rc::new(file));
                segments.push(seg);
                break;
            }
        }
        if is_active {
            allocated.push((base, current_bytes.max(seg.size)));
        }
        seg.file = Some(Rc::new(file));
        segments.push(seg);
    }
    // Remove index files whose segment is gone.
    for name in &names {
        if let Some(stem) = name
            .strip_suffix(".index")
            .or_else(|| name.strip_suffix(".timeindex"))
        {
            let orphan = stem
                .parse::<i64>()
                .map(|b| !segments.iter().any(|s| s.base_offset == b))
                .unwrap_or(false);
            if orphan {
                fsutil::remove_file(dir.join(name)).await?;
            }
        }
    }

    let first_base = segments.first().map(|s| s.base_offset);
    let log_start_offset = match (first_base, persisted_start) {
        (Some(base), Some(p)) => base.max(p),
        (Some(base), None) => base,
        (None, Some(p)) => p,
        (None, None) => 0,
    };
    let log_end = segments.last().map_or(log_start_offset, |s| s.next_offset);
    if log_start_offset > log_end {
        // DeleteRecords moved the start past data that a power loss then
        // took back: nothing below the start is readable, so start afresh
        // there (Kafka's truncateFullyAndStartAt).
        tracing::warn!(
            log_start_offset,
            log_end,
            "log start is past the recovered end; starting an empty log at the start"
        );
        for seg in segments.drain(..) {
            fsutil::remove_file(segment::log_path(dir, seg.base_offset)).await?;
            fsutil::remove_file(segment::index_path(dir, seg.base_offset)).await?;
            fsutil::remove_file(segment::time_index_path(dir, seg.base_offset)).await?;
        }
        allocated.clear();
        fsutil::sync_dir(dir).await?;
    }
    if segments.is_empty() {
        segments.push(Segment::new(log_start_offset));
    }
    // The active segment may have been cut: make sure its file ends where
    // its data does before new writes extend it, and reload the partial
    // last block into the tail buffer.
    let mut tail_buf = glommio::allocate_dma_buffer(TAIL_BYTES_MIN);
    let active = segments.last().expect("one segment");
    let partial_at = align_down(active.size);
    let keep = (active.size - partial_at) as usize;
    if keep > 0 {
        let file = active.file.as_ref().expect("non-empty segment has a file");
        let block = file
            .read_at_aligned(partial_at, BLOCK_BYTES as usize)
            .await
            .map_err(|e| StorageError::io("reading the last block", e))?;
        assert!(
            block.len() >= keep,
            "the last block holds the segment's tail"
        );
        tail_buf.as_bytes_mut()[..keep].copy_from_slice(&block[..keep]);
    }
    Ok(Recovered {
        segments,
        log_start_offset,
        allocated,
        tail_buf,
    })
}

/// Loads a segment's index files if present and sound.
pub(super) async fn load_indexes(
    dir: &Path,
    base: i64,
    size: u64,
    next_offset: i64,
    seg: &mut Segment,
) -> Result<bool, StorageError> {
    let index_name = format!("{}.index", segment::file_stem(base));
    let time_name = format!("{}.timeindex", segment::file_stem(base));
    let (Some(index), Some(time)) = (
        fsutil::read_file(dir, &index_name).await?,
        fsutil::read_file(dir, &time_name).await?,
    ) else {
        return Ok(false);
    };
    let (Some(index), Some(time_index)) = (
        crate::storage::index::OffsetIndex::decode(base, &index, size.max(1)),
        crate::storage::index::TimeIndex::decode(base, &time, next_offset),
    ) else {
        return Ok(false);
    };
    if let Some((ts, offset)) = time_index.last() {
        seg.max_timestamp = ts;
        seg.offset_of_max_timestamp = offset;
    }
    seg.index = index;
    seg.time_index = time_index;
    Ok(true)
}
