//! The log cleaner for one compacted partition log: which closed segments
//! to clean, the key map over the dirty section, rewriting each segment
//! with `crate::record::clean`'s rules, and swapping files crash-safely.
//! The active segment is never touched.
//!
//! A pass: the dirty section starts at the checkpoint
//! ([`CHECKPOINT_FILE`], the first offset not yet cleaned) and runs over
//! the closed segments up to the first one younger than
//! `min.compaction.lag.ms`. It is cleaned when it is at least
//! `min.cleanable.dirty.ratio` of the closed segments' bytes, or when its
//! oldest segment is older than `max.compaction.lag.ms`. The key map is
//! built over whole dirty segments until it is full (`map_end`); then
//! every closed segment below `map_end`, from the log's start, is
//! rewritten, and the checkpoint moves to `map_end`.
//!
//! Every closed segment below `map_end` is cleaned in groups (Kafka's
//! `groupSegmentsBySize`): consecutive segments whose sizes add up to at
//! most `segment.bytes` (and whose offsets fit the indexes' 32-bit relative
//! offsets) become one segment at the first one's base, so small cleaned
//! segments merge as keys thin out.
//!
//! Reading, filtering, writing and the file steps of the swap run on a
//! thread of the cleaner's own under SCHED_IDLE, throttled to the
//! configured bytes per second. The swap of a group [B, E) (E: the base of the segment after the group):
//!
//! 1. `B.log.cleaned` is written and fsynced;
//! 2. it is renamed to `B.E.swap` and the directory fsynced: the commit
//!    point. Before it the old segments stand (recovery removes a
//!    `.cleaned` file); from it on recovery finishes the swap, steps 3-4,
//!    which are idempotent;
//! 3. the index files of every segment in [B, E) and the log files of the
//!    segments in (B, E) are removed, and the directory fsynced;
//! 4. `B.E.swap` is renamed over `B.log` and the directory fsynced;
//! 5. the new indexes are written (a crash before leaves B without
//!    indexes, which recovery rebuilds by scanning), and the in-memory
//!    segments are replaced. Readers that started before keep reading the
//!    old files through their open handles.
//!
//! Retention (and DeleteRecords) and a swap exclude each other, so neither
//! removes files the other is about to replace.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::Arc;

use super::*;
use crate::record::batch::LOG_OVERHEAD_BYTES;
use crate::record::clean::{clean_batch, CleanClock, Cleaned, OffsetMap};
use crate::record::validate_stored_batch;

/// Per partition: the first offset the cleaner has not cleaned yet.
pub const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// Suffix of a segment being rewritten (see the module notes).
pub const CLEANED_SUFFIX: &str = ".cleaned";

/// Suffix of a committed swap (see the module notes).
pub const SWAP_SUFFIX: &str = ".swap";

/// `B.E.swap`: the cleaned segment replacing the segments in [B, E).
pub fn swap_file_name(base: i64, end: i64) -> String {
    format!(
        "{}.{}{SWAP_SUFFIX}",
        segment::file_stem(base),
        segment::file_stem(end)
    )
}

/// Parses `B.E.swap` into (B, E).
pub fn parse_swap_file_name(name: &str) -> Option<(i64, i64)> {
    let (base, end) = name.strip_suffix(SWAP_SUFFIX)?.split_once('.')?;
    let parse = |stem: &str| {
        (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
            .then(|| stem.parse::<i64>().ok())
            .flatten()
    };
    Some((parse(base)?, parse(end)?))
}

/// Steps of a swap after which [`PartitionLog::clean_stopping_at`] stops a
/// pass, leaving the files as a crash there would.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// The `.cleaned` file is written and fsynced (step 1).
    Written,
    /// Renamed to `.swap` (step 2, the commit point).
    Committed,
    /// The replaced segments' files are removed (step 3).
    OldRemoved,
    /// The swap file is renamed over the group's first segment (step 4).
    Renamed,
}

/// Where a test stops a pass: after `step` of the swap of the `group`-th
/// group the pass swaps (counting from 0).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopAt {
    pub group: usize,
    pub step: SwapStep,
}

/// Bytes read from a segment file at once by the cleaner.
const READ_CHUNK: usize = 4 << 20;

/// What one pass may do (the topic's and broker's settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanParams {
    /// `log.cleaner.dedupe.buffer.size`, this partition's share.
    pub dedupe_buffer_bytes: usize,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub delete_retention_ms: i64,
    /// `log.cleaner.io.max.bytes.per.second` (read and written together).
    pub io_bytes_per_second: f64,
}

/// What a pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    pub segments_cleaned: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The checkpoint after the pass.
    pub first_dirty_offset: i64,
    /// Segments replaced by groups of more than one.
    pub segments_merged: usize,
    /// Set when a test stopped the pass ([`StopAt`]).
    pub stopped_at: Option<SwapStep>,
}

/// A closed segment as the cleaner sees it.
#[derive(Debug, Clone)]
struct ClosedSegment {
    base: i64,
    size: u64,
    /// The next segment's base: this segment's offsets lie below it.
    end: i64,
    max_timestamp: i64,
}

/// Consecutive closed segments cleaned into one: [base, end).
#[derive(Debug, Clone)]
struct Group {
    base: i64,
    end: i64,
    members: Vec<ClosedSegment>,
}

/// Groups consecutive segments while their sizes add up to at most
/// `max_bytes` and their offsets stay within 32-bit relative offsets of
/// the first one's base (Kafka's `groupSegmentsBySize`). Every group holds
/// at least one segment.
fn group_segments(segments: &[ClosedSegment], max_bytes: u64) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for seg in segments {
        if let Some(g) = groups.last_mut() {
            let bytes: u64 = g.members.iter().map(|m| m.size).sum();
            let fits = bytes + seg.size <= max_bytes
                && seg.end - 1 - g.base <= i64::from(i32::MAX)
                && g.end == seg.base;
            if fits {
                g.end = seg.end;
                g.members.push(seg.clone());
                continue;
            }
        }
        groups.push(Group {
            base: seg.base,
            end: seg.end,
            members: vec![seg.clone()],
        });
    }
    groups
}

/// The CPUs the process may run on, as it started (before the shards'
/// executors pinned their threads); the cleaner's threads may use any of
/// them. `None` until [`remember_process_cpus`] ran (tests): the cleaner's
/// threads then keep the affinity they inherit.
static PROCESS_CPUS: std::sync::OnceLock<libc::cpu_set_t> = std::sync::OnceLock::new();

/// Notes the process's CPU affinity; called once at startup, on the main
/// thread.
#[allow(unsafe_code)]
pub fn remember_process_cpus() {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most
    // the size it is given into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) }
            == 0;
    if ok {
        let _ = PROCESS_CPUS.set(set);
    }
}

/// Makes the calling thread the cleaner's: Linux's SCHED_IDLE policy (it
/// runs only when nothing else on its CPU wants to, and a waking shard
/// preempts it at once, where a nice-19 thread could keep the CPU for the
/// rest of its slice), falling back to nice 19; on any of the process's
/// CPUs.
#[allow(unsafe_code)]
fn become_background_thread() {
    // SAFETY: plain syscalls on the calling thread with valid arguments.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
        if let Some(set) = PROCESS_CPUS.get() {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
        }
    }
}

/// Runs the cleaner's reading, filtering and writing on a thread of its
/// own at the lowest priority (see [`become_background_thread`]; glommio's blocking threads share the shard's
/// core at normal priority, which cost the foreground its tail). An
/// error if the thread cannot start or ends without an answer.
async fn in_background<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let (tx, rx) = futures_channel::oneshot::channel();
    std::thread::Builder::new()
        .name("log-cleaner".to_string())
        .spawn(move || {
            become_background_thread();
            let _ = tx.send(f());
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(std::io::Error::other(
            "the log cleaner's thread ended without an answer",
        ))
    })
}

/// Sleeps as needed to keep `bytes` within `per_second` since `start`.
fn throttle(start: std::time::Instant, bytes: u64, per_second: f64) {
    if !per_second.is_finite() || per_second <= 0.0 {
        return;
    }
    let due = Duration::from_secs_f64(bytes as f64 / per_second);
    if let Some(wait) = due.checked_sub(start.elapsed()) {
        std::thread::sleep(wait);
    }
}

/// Calls `visit` with every whole, valid batch of the segment file at
/// `path` (its first `size` bytes), reading in bounded chunks. Stops at
/// the first invalid batch (recovery decides what is valid; the cleaner
/// only skips what it cannot read).
fn for_each_batch(
    path: &Path,
    size: u64,
    mut visit: impl FnMut(&[u8]) -> std::io::Result<bool>,
) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut pending: Vec<u8> = Vec::new();
    let mut left = size;
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut read = 0u64;
    loop {
        let mut at = 0;
        while pending.len() - at >= LOG_OVERHEAD_BYTES {
            let len = i32::from_be_bytes(pending[at + 8..at + 12].try_into().expect("4 bytes"));
            if len <= 0 {
                return Ok(read);
            }
            let total = LOG_OVERHEAD_BYTES + len as usize;
            if pending.len() - at < total {
                break;
            }
            if !visit(&pending[at..at + total])? {
                return Ok(read);
            }
            at += total;
        }
        pending.drain(..at);
        if left == 0 {
            return Ok(read);
        }
        let want = (left as usize).min(READ_CHUNK);
        let n = file.read(&mut chunk[..want])?;
        if n == 0 {
            return Ok(read);
        }
        pending.extend_from_slice(&chunk[..n]);
        left -= n as u64;
        read += n as u64;
    }
}

/// A group rewritten into its `.cleaned` file: where its batches lie.
struct Rewritten {
    size: u64,
    batches: Vec<(BatchHeader, u64)>,
    bytes_read: u64,
}

fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    segment::log_path(dir, base).with_extension(format!("log{CLEANED_SUFFIX}"))
}

/// Rewrites a group of segments into `<base>.log.cleaned` on a blocking
/// thread, batch by batch (memory: one read chunk and one batch); `None`
/// when cleaning would change nothing (a single segment keeping every
/// batch as it is; no file is left then).
#[allow(clippy::too_many_arguments)]
fn rewrite_blocking(
    dir: &Path,
    group: &Group,
    map: &OffsetMap,
    clock: CleanClock,
    last_batches: &HashSet<(i64, i64)>,
    start: std::time::Instant,
    io_done: &mut u64,
    per_second: f64,
) -> std::io::Result<Option<Rewritten>> {
    let cleaned = cleaned_path(dir, group.base);
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&cleaned)?);
    let mut batches = Vec::new();
    let mut pos = 0u64;
    let mut changed = group.members.len() > 1;
    let mut failure = None;
    let mut bytes_read = 0u64;
    let mut done = Ok(());
    for seg in &group.members {
        let path = segment::log_path(dir, seg.base);
        let read = for_each_batch(&path, seg.size, |batch| {
            let cleaned = validate_stored_batch(batch).and_then(|header| {
                let last = last_batches.contains(&(header.producer_id, header.last_offset()));
                clean_batch(batch, map, clock, last)
            });
            let kept: Option<std::borrow::Cow<'_, [u8]>> = match cleaned {
                Ok(Cleaned::Unchanged) => Some(batch.into()),
                Ok(Cleaned::Rebuilt(b)) => Some(b.into()),
                Ok(Cleaned::Removed) => None,
                Err(e) => {
                    failure = Some(format!("segment {}: {e}", path.display()));
                    return Ok(false);
                }
            };
            changed |= kept.as_deref() != Some(batch);
            *io_done += batch.len() as u64;
            if let Some(bytes) = kept {
                file.write_all(&bytes)?;
                batches.push((BatchHeader::parse(&bytes).expect("a whole batch"), pos));
                pos += bytes.len() as u64;
                *io_done += bytes.len() as u64;
            }
            throttle(start, *io_done, per_second);
            Ok(true)
        });
        match read {
            Ok(n) => bytes_read += n,
            Err(e) => done = Err(e),
        }
        if done.is_err() || failure.is_some() {
            break;
        }
    }
    let done = done.and_then(|()| file.flush());
    if !changed || failure.is_some() || done.is_err() {
        drop(file);
        let _ = std::fs::remove_file(&cleaned);
        done?;
        if let Some(reason) = failure {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, reason));
        }
        return Ok(None);
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(Some(Rewritten {
        size: pos,
        batches,
        bytes_read,
    }))
}

/// Steps 2-4 of the swap of [base, end) whose `.cleaned` file is written
/// (see the module notes); stops after `stop` when given. Returns the step
/// it stopped after, if it did.
fn swap_blocking(
    dir: &Path,
    base: i64,
    end: i64,
    stop: Option<SwapStep>,
) -> std::io::Result<Option<SwapStep>> {
    std::fs::rename(cleaned_path(dir, base), dir.join(swap_file_name(base, end)))?;
    fsutil::sync_dir_blocking(dir)?;
    if stop == Some(SwapStep::Committed) {
        return Ok(stop);
    }
    finish_swap_blocking(dir, base, end, stop)
}

/// Steps 3-4 of a committed swap of [base, end): at runtime after the
/// commit, and at recovery for a `.swap` file found. Idempotent.
pub(super) fn finish_swap_blocking(
    dir: &Path,
    base: i64,
    end: i64,
    stop: Option<SwapStep>,
) -> std::io::Result<Option<SwapStep>> {
    let in_group = |b: i64| b >= base && b < end;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let doomed = match segment::parse_log_file_name(&name) {
            Some(b) => b != base && in_group(b),
            None => name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
                .and_then(|stem| stem.parse::<i64>().ok())
                .is_some_and(in_group),
        };
        if doomed {
            match std::fs::remove_file(dir.join(&name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    fsutil::sync_dir_blocking(dir)?;
    if stop == Some(SwapStep::OldRemoved) {
        return Ok(stop);
    }
    std::fs::rename(
        dir.join(swap_file_name(base, end)),
        segment::log_path(dir, base),
    )?;
    fsutil::sync_dir_blocking(dir)?;
    Ok(stop.filter(|s| *s == SwapStep::Renamed))
}

impl PartitionLog {
    /// One cleaner pass (see the module notes). `last_batches`: the (producer
    /// id, last offset) of each live producer's newest batch, which stays
    /// even when emptied so the producer's state survives.
    pub async fn clean(
        &self,
        params: &CleanParams,
        last_batches: HashSet<(i64, i64)>,
    ) -> Result<CleanOutcome, StorageError> {
        self.clean_pass(params, last_batches, None).await
    }

    /// A pass that stops after a step of one group's swap, leaving the
    /// files as a crash there would: for crash tests, which then drop the
    /// log without closing it and reopen it.
    #[doc(hidden)]
    pub async fn clean_stopping_at(
        &self,
        params: &CleanParams,
        last_batches: HashSet<(i64, i64)>,
        stop: StopAt,
    ) -> Result<CleanOutcome, StorageError> {
        self.clean_pass(params, last_batches, Some(stop)).await
    }

    async fn clean_pass(
        &self,
        params: &CleanParams,
        last_batches: HashSet<(i64, i64)>,
        stop: Option<StopAt>,
    ) -> Result<CleanOutcome, StorageError> {
        let now = self.shared.clock.now_ms();
        let (dir, closed, log_start, segment_bytes) = {
            let st = self.shared.state.borrow();
            let closed: Vec<ClosedSegment> = st
                .segments
                .iter()
                .take(st.finalized_segments)
                .zip(st.segments.iter().skip(1))
                .filter(|(s, _)| s.file.is_some())
                .map(|(s, next)| ClosedSegment {
                    base: s.base_offset,
                    size: s.size,
                    end: next.base_offset,
                    max_timestamp: s.max_timestamp,
                })
                .collect();
            (
                st.dir.clone(),
                closed,
                st.log_start_offset,
                st.config.segment_bytes,
            )
        };
        let checkpoint: i64 = fsutil::read_file(&dir, CHECKPOINT_FILE)
            .await?
            .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse().ok())
            .unwrap_or(log_start)
            .max(log_start);
        let mut outcome = CleanOutcome {
            first_dirty_offset: checkpoint,
            ..CleanOutcome::default()
        };
        // The cleanable dirty section: closed segments from the checkpoint
        // up to the first one still within min.compaction.lag.ms.
        let dirty: Vec<&ClosedSegment> = closed
            .iter()
            .filter(|s| s.end > checkpoint)
            .take_while(|s| {
                params.min_compaction_lag_ms <= 0
                    || s.max_timestamp < 0
                    || now - s.max_timestamp >= params.min_compaction_lag_ms
            })
            .collect();
        if dirty.is_empty() {
            return Ok(outcome);
        }
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size).sum();
        let clean_bytes: u64 = closed
            .iter()
            .filter(|s| s.end <= checkpoint)
            .map(|s| s.size)
            .sum();
        let ratio = dirty_bytes as f64 / (dirty_bytes + clean_bytes).max(1) as f64;
        let overdue = dirty[0].max_timestamp >= 0
            && now - dirty[0].max_timestamp >= params.max_compaction_lag_ms;
        if ratio < params.min_cleanable_dirty_ratio && !overdue {
            return Ok(outcome);
        }

        // The key map, over whole dirty segments while they fit.
        let started = std::time::Instant::now();
        let per_second = params.io_bytes_per_second;
        let memory = params.dedupe_buffer_bytes;
        let to_map: Vec<ClosedSegment> = dirty.iter().map(|s| (*s).clone()).collect();
        let map_dir = dir.clone();
        let (map, map_end, mapped_bytes) = in_background(move || -> std::io::Result<_> {
            let mut map = OffsetMap::with_memory(memory);
            let mut map_end = None;
            let mut read = 0u64;
            // A segment that does not fit whole ends the mapped section;
            // the keys it did add point at records past the section's end,
            // which stay, so cleaning below the end with them is sound.
            for seg in &to_map {
                let mut fits = true;
                read += for_each_batch(&segment::log_path(&map_dir, seg.base), seg.size, |b| {
                    fits = map.put_batch(b).unwrap_or(false);
                    Ok(fits)
                })?;
                throttle(started, read, per_second);
                if !fits {
                    break;
                }
                map_end = Some(seg.end);
            }
            Ok((map, map_end, read))
        })
        .await
        .map_err(|e| StorageError::io("building the cleaner's key map", e))?;
        outcome.bytes_read += mapped_bytes;
        let Some(map_end) = map_end else {
            tracing::warn!(
                dir = %dir.display(),
                "log cleaner: the first dirty segment's keys do not fit log.cleaner.dedupe.buffer.size; not cleaning"
            );
            return Ok(outcome);
        };

        // Rewrite every closed segment below map_end, group by group.
        let map = Arc::new(map);
        let last_batches = Arc::new(last_batches);
        let clock = CleanClock {
            now_ms: now,
            delete_retention_ms: params.delete_retention_ms,
        };
        let below: Vec<ClosedSegment> = closed
            .iter()
            .filter(|s| s.end <= map_end)
            .cloned()
            .collect();
        let mut io_done = mapped_bytes;
        let mut swapped = 0usize;
        for group in group_segments(&below, segment_bytes) {
            let (g_dir, g, m, l) = (
                dir.clone(),
                group.clone(),
                map.clone(),
                last_batches.clone(),
            );
            let done = io_done;
            let (rewritten, done) = in_background(move || {
                let mut done = done;
                let r =
                    rewrite_blocking(&g_dir, &g, &m, clock, &l, started, &mut done, per_second)?;
                Ok((r, done))
            })
            .await
            .map_err(|e| StorageError::io("rewriting segments", e))?;
            io_done = done;
            let Some(rewritten) = rewritten else {
                continue;
            };
            outcome.bytes_read += rewritten.bytes_read;
            outcome.bytes_written += rewritten.size;
            let step = stop.filter(|s| s.group == swapped).map(|s| s.step);
            swapped += 1;
            if step == Some(SwapStep::Written) {
                outcome.stopped_at = step;
                return Ok(outcome);
            }
            match self.swap_in(&group, rewritten, step).await? {
                Swapped::Done => {
                    outcome.segments_cleaned += group.members.len();
                    if group.members.len() > 1 {
                        outcome.segments_merged += group.members.len();
                    }
                }
                Swapped::Stopped(at) => {
                    outcome.stopped_at = Some(at);
                    return Ok(outcome);
                }
                Swapped::Abandoned => {}
            }
        }
        fsutil::write_file_durably(&dir, CHECKPOINT_FILE, map_end.to_string().into_bytes()).await?;
        outcome.first_dirty_offset = map_end;
        Ok(outcome)
    }

    /// Steps 2-5 of the swap of a group whose `.cleaned` file is written.
    async fn swap_in(
        &self,
        group: &Group,
        rewritten: Rewritten,
        stop: Option<SwapStep>,
    ) -> Result<Swapped, StorageError> {
        let _permit = self.shared.maintenance_permit().await?;
        let (dir, interval) = {
            let st = self.shared.state.borrow();
            (st.dir.clone(), st.config.index_interval_bytes)
        };
        let (base, end) = (group.base, group.end);
        // Retention may have removed segments of the group meanwhile (the
        // rewrite ran without the lock): then the group no longer stands
        // as read, and its cleaned file goes.
        let intact = {
            let st = self.shared.state.borrow();
            let at = st.segments.partition_point(|s| s.base_offset < base);
            let n = group.members.len();
            at + n < st.segments.len()
                && at + n <= st.finalized_segments
                && st.segments[at..at + n]
                    .iter()
                    .zip(&group.members)
                    .all(|(s, m)| s.base_offset == m.base && s.size == m.size)
                && st.segments[at + n].base_offset == end
        };
        if !intact {
            fsutil::remove_file(cleaned_path(&dir, base)).await?;
            return Ok(Swapped::Abandoned);
        }
        let mut fresh = Segment::new(base);
        let now = self.shared.clock.now_ms();
        for (header, pos) in &rewritten.batches {
            fresh.note_batch(header, *pos, interval, now);
        }
        fresh
            .time_index
            .maybe_append(fresh.max_timestamp, fresh.offset_of_max_timestamp);
        let (index, time_index) = (fresh.index.encode(), fresh.time_index.encode());
        let swap_dir = dir.clone();
        // Steps 2-5 on the cleaner's thread: the shard's core only opens
        // the new file and updates its segment list.
        let stopped = in_background(move || {
            let stopped = swap_blocking(&swap_dir, base, end, stop)?;
            if stopped.is_none() {
                let (index_name, time_name) = segment::index_file_names(base);
                fsutil::write_file_blocking(&swap_dir, &index_name, &index, Durability::EachFile)?;
                fsutil::write_file_blocking(
                    &swap_dir,
                    &time_name,
                    &time_index,
                    Durability::EachFile,
                )?;
            }
            Ok(stopped)
        })
        .await
        .map_err(|e| StorageError::io("swapping in a cleaned segment", e))?;
        if let Some(at) = stopped {
            return Ok(Swapped::Stopped(at));
        }
        let log = segment::log_path(&dir, base);
        let file = OpenOptions::new()
            .read(true)
            .dma_open(&log)
            .await
            .map_err(|e| StorageError::io("opening a cleaned segment", e))?;
        {
            let mut st = self.shared.state.borrow_mut();
            let at = st.segments.partition_point(|s| s.base_offset < base);
            let n = group.members.len();
            let replaced: Vec<Segment> = st.segments.drain(at..at + n).collect();
            let last = replaced.last().expect("a group has a segment");
            fresh.file = Some(Rc::new(file));
            fresh.size = rewritten.size;
            fresh.next_offset = last.next_offset;
            fresh.first_append_ms = None;
            if fresh.max_timestamp < 0 {
                // Emptied: keep the newest time the group had, for
                // retention.ms.
                let newest = replaced.iter().max_by_key(|s| s.max_timestamp);
                if let Some(s) = newest {
                    fresh.max_timestamp = s.max_timestamp;
                    fresh.offset_of_max_timestamp = s.offset_of_max_timestamp;
                }
            }
            st.segments.insert(at, fresh);
            st.finalized_segments -= n - 1;
        }
        // Chunks read ahead from the old files no longer match positions,
        // and cached batches of the group are the uncleaned ones.
        self.shared
            .read_aheads
            .borrow_mut()
            .forget(self.shared.cache_key);
        self.shared
            .cache
            .borrow_mut()
            .remove_below(self.shared.cache_key, end);
        Ok(Swapped::Done)
    }
}

/// How a group's swap ended.
enum Swapped {
    Done,
    /// A test stopped it after this step.
    Stopped(SwapStep),
    /// Retention removed part of the group first; nothing was swapped.
    Abandoned,
}
