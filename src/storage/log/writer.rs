//! The write path of a partition log: the tail buffer, the writer task
//! (O_DIRECT writes in file order, several in flight when they do not
//! overlap), the syncer task (fdatasync and group commit), segment rolls and
//! sealing. Runs on the shard that owns the partition.

use super::*;

/// Rolls the active segment if this append would overflow segment.bytes,
/// the segment is older than segment.ms, or the batch's last offset would
/// not fit the index's 32-bit offsets relative to the segment base (a
/// compressed batch may claim up to 2^31 records; Kafka rolls likewise).
pub(super) fn maybe_roll(st: &mut LogState, batch: &BatchHeader, now_ms: i64) {
    let active = st.segments.last().expect("active segment");
    if active.is_empty() {
        return;
    }
    let full = active.size + batch.total_bytes() as u64 > st.config.segment_bytes;
    let old = active
        .first_append_ms
        .is_some_and(|t| now_ms - t >= st.config.segment_ms);
    let last_offset = st.next_offset + i64::from(batch.last_offset_delta);
    let offsets_overflow = last_offset - active.base_offset > i64::from(i32::MAX);
    if !full && !old && !offsets_overflow {
        return;
    }
    let next = st.next_offset;
    let base = active.base_offset;
    {
        let active = st.segments.last_mut().expect("active segment");
        active
            .time_index
            .maybe_append(active.max_timestamp, active.offset_of_max_timestamp);
    }
    if st.tail.dirty {
        let job = take_tail(st, false);
        st.queue.push_back(job);
    }
    st.queue.push_back(WriteJob::Seal { segment_base: base });
    st.segments.push(Segment::new(next));
    st.stats.segments_rolled += 1;
    let buf = tail_buffer(st, st.tail.buf.len());
    st.tail = Tail {
        segment_base: next,
        buf,
        pos: 0,
        len: 0,
        dirty: false,
        complete_offset: next,
    };
}

/// A tail buffer of about `bytes` (within [16 KiB, 1 MiB]), reusing a
/// written full-size buffer when one is free.
pub(super) fn tail_buffer(st: &mut LogState, bytes: usize) -> DmaBuffer {
    let size = round_up(bytes, BLOCK_BYTES as usize).clamp(TAIL_BYTES_MIN, WRITE_CHUNK_BYTES);
    if size == WRITE_CHUNK_BYTES {
        if let Some(buf) = st.pool.pop() {
            return buf;
        }
    }
    glommio::allocate_dma_buffer(size)
}

/// Copies stored batch bytes into the tail, queueing every buffer it fills.
pub(super) fn copy_into_tail(st: &mut LogState, mut bytes: &[u8], complete_offset_after: i64) {
    while !bytes.is_empty() {
        let capacity = st.tail.buf.len();
        if st.tail.len == capacity {
            let next_pos = st.tail.pos + capacity as u64;
            let buf = tail_buffer(st, 2 * capacity);
            let full = std::mem::replace(&mut st.tail.buf, buf);
            st.queue.push_back(WriteJob::Data {
                segment_base: st.tail.segment_base,
                pos: st.tail.pos,
                buf: full,
                len: capacity,
                complete_offset: st.tail.complete_offset,
            });
            st.tail.pos = next_pos;
            st.tail.len = 0;
        }
        let room = capacity - st.tail.len;
        let n = room.min(bytes.len());
        let at = st.tail.len;
        st.tail.buf.as_bytes_mut()[at..at + n].copy_from_slice(&bytes[..n]);
        st.tail.len += n;
        st.tail.dirty = true;
        bytes = &bytes[n..];
    }
    st.tail.complete_offset = complete_offset_after;
}

/// Takes the dirty tail as a write job. With `carry`, a new tail continues
/// at the last partial block, carrying its bytes so the block can be
/// rewritten when more data arrives.
pub(super) fn take_tail(st: &mut LogState, carry: bool) -> WriteJob {
    let end = st.tail.pos + st.tail.len as u64;
    let new_pos = align_down(end);
    let keep = (end - new_pos) as usize;
    let mut buf = tail_buffer(st, 2 * st.tail.len);
    if carry && keep > 0 {
        let from = st.tail.len - keep;
        buf.as_bytes_mut()[..keep].copy_from_slice(&st.tail.buf.as_bytes()[from..st.tail.len]);
    }
    let mut old = std::mem::replace(&mut st.tail.buf, buf);
    let write_len = round_up(st.tail.len, BLOCK_BYTES as usize);
    old.as_bytes_mut()[st.tail.len..write_len].fill(0);
    let job = WriteJob::Data {
        segment_base: st.tail.segment_base,
        pos: st.tail.pos,
        buf: old,
        len: write_len,
        complete_offset: st.tail.complete_offset,
    };
    st.tail.pos = new_pos;
    st.tail.len = keep;
    st.tail.dirty = false;
    job
}

pub(super) fn fail(shared: &LogShared, error: StorageError) {
    tracing::error!(%error, "partition log failed; refusing further appends");
    shared.state.borrow_mut().failed = Some(error.clone());
    shared.written_waiters.fail_all(error.clone());
    shared.durable_waiters.fail_all(error.clone());
    shared.hw_waiters.fail_all(error);
    shared.space.close();
}

/// The first wait after the filesystem reports it is out of space; each
/// further failed try doubles it, up to [`RETRY_BACKOFF_MAX`].
pub(super) const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);
pub(super) const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether a storage error is the filesystem out of space or quota: the log
/// waits that out instead of failing for good.
pub(super) fn out_of_space(e: &StorageError) -> bool {
    matches!(
        e,
        StorageError::Io { kind, .. }
            if matches!(kind, std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
    )
}

/// Enters (or stays in) the out-of-space state: appends are refused with
/// the error, and those waiting to be written or synced are answered with
/// it now (their data stays queued and is written once space is back, so a
/// retry of an idempotent producer finds it; nothing is acknowledged before
/// it is on disk).
pub(super) fn stall(shared: &LogShared, error: StorageError) {
    let first = {
        let mut st = shared.state.borrow_mut();
        let first = st.stalled.is_none();
        if first {
            st.stats.out_of_space_stalls += 1;
            tracing::warn!(
                dir = %st.dir.display(),
                %error,
                "partition log out of space: refusing appends, retrying writes until space is freed"
            );
        }
        st.stalled = Some(error.clone());
        first
    };
    if first {
        shared.written_waiters.fail_all(error.clone());
        shared.durable_waiters.fail_all(error);
        shared.space.refuse_waiting();
    }
}

/// Leaves the out-of-space state after a write, allocation or sync went
/// through.
pub(super) fn resume(shared: &LogShared) {
    let mut st = shared.state.borrow_mut();
    if st.stalled.take().is_some() {
        tracing::info!(dir = %st.dir.display(), "partition log has space again: taking appends");
    }
}

/// After an out-of-space failure: waits `backoff` and doubles it. Returns
/// false once the log is closing, so the caller gives up and fails the log:
/// a shutdown does not wait for space. (Several tasks back off at once, so
/// this polls the closing flag rather than taking a task's wake signal.)
pub(super) async fn back_off(shared: &LogShared, backoff: &mut Duration) -> bool {
    const CLOSING_CHECK: Duration = Duration::from_millis(50);
    let mut left = *backoff;
    *backoff = (*backoff * 2).min(RETRY_BACKOFF_MAX);
    loop {
        if shared.state.borrow().closing {
            return false;
        }
        if left.is_zero() {
            return true;
        }
        let slice = left.min(CLOSING_CHECK);
        glommio::timer::sleep(slice).await;
        left -= slice;
    }
}

/// Raises the high watermark to what the durability policy allows.
pub(super) fn update_high_watermark(shared: &LogShared) {
    let hw = {
        let mut st = shared.state.borrow_mut();
        let local = if st.config.visible_only_when_durable() {
            st.durable_offset
        } else {
            st.written_offset
        };
        let hw = st.high_watermark_cap.map_or(local, |cap| cap.min(local));
        if hw <= st.high_watermark {
            return;
        }
        st.high_watermark = hw;
        hw
    };
    shared.hw_waiters.advance_to(hw);
}

/// What the writer does next.
enum WriterStep {
    Issue(WriteJob),
    Zero(zero_ahead::ZeroJob),
    Seal(i64),
    Wait,
    Exit,
}

/// Picks the writer's next step. Writes go out in file order, up to
/// `WRITES_IN_FLIGHT_MAX` at once, but never one that overlaps a write still
/// in flight (the carried partial block), and a segment is sealed only once
/// all its writes are done.
fn next_writer_step(st: &mut LogState, zero_lead: u64) -> WriterStep {
    if st.failed.is_some() {
        return WriterStep::Exit;
    }
    let busy = st.in_flight.len() >= WRITES_IN_FLIGHT_MAX;
    let last = st.in_flight.back().map(|w| (w.segment_base, w.end_pos));
    let zero = &st.zero;
    let overlaps = |segment_base: i64, pos: u64, end: u64| {
        last.is_some_and(|(base, last_end)| base == segment_base && pos < last_end)
            || zero.overlaps(segment_base, pos, end)
    };
    let zeroing = zero.in_flight.is_some();
    match st.queue.front() {
        Some(WriteJob::Seal { segment_base }) => {
            if st.in_flight.is_empty() && !zeroing {
                let base = *segment_base;
                st.queue.pop_front();
                WriterStep::Seal(base)
            } else {
                WriterStep::Wait
            }
        }
        Some(WriteJob::Data {
            segment_base,
            pos,
            len,
            ..
        }) => {
            if busy || overlaps(*segment_base, *pos, *pos + *len as u64) {
                WriterStep::Wait
            } else {
                WriterStep::Issue(st.queue.pop_front().expect("front exists"))
            }
        }
        None if st.tail.dirty => {
            let end = st.tail.pos + round_up(st.tail.len, BLOCK_BYTES as usize) as u64;
            if busy || overlaps(st.tail.segment_base, st.tail.pos, end) {
                WriterStep::Wait
            } else {
                WriterStep::Issue(take_tail(st, true))
            }
        }
        None if st.closing && st.in_flight.is_empty() && !zeroing => WriterStep::Exit,
        None => match zero_ahead::next_zero_job(st, zero_lead) {
            Some(job) => WriterStep::Zero(job),
            None => WriterStep::Wait,
        },
    }
}

pub(super) async fn writer_loop(shared: Rc<LogShared>) {
    let mut backoff = RETRY_BACKOFF_MIN;
    loop {
        let step = next_writer_step(&mut shared.state.borrow_mut(), shared.zeros.lead());
        let result = match step {
            WriterStep::Exit => return,
            WriterStep::Zero(job) => {
                glommio::spawn_local(zero_ahead::write_zeros(shared.clone(), job)).detach();
                Ok(())
            }
            WriterStep::Wait => {
                shared.writer_wake.wait().await;
                Ok(())
            }
            WriterStep::Seal(segment_base) => match seal_segment(&shared, segment_base).await {
                Err(e) if out_of_space(&e) => {
                    // Sealing again is harmless: trim, sync, rewrite indexes.
                    let seal = WriteJob::Seal { segment_base };
                    shared.state.borrow_mut().queue.push_front(seal);
                    stall(&shared, e.clone());
                    if back_off(&shared, &mut backoff).await {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
                Err(e) => Err(e),
                Ok(()) => {
                    backoff = RETRY_BACKOFF_MIN;
                    resume(&shared);
                    Ok(())
                }
            },
            WriterStep::Issue(WriteJob::Data {
                segment_base,
                pos,
                buf,
                len,
                complete_offset,
            }) => match segment_file(&shared, segment_base, pos + len as u64).await {
                Err(e) if out_of_space(&e) => {
                    // The job goes back to the front, to be issued again
                    // once the segment could be allocated.
                    let job = WriteJob::Data {
                        segment_base,
                        pos,
                        buf,
                        len,
                        complete_offset,
                    };
                    shared.state.borrow_mut().queue.push_front(job);
                    stall(&shared, e.clone());
                    if back_off(&shared, &mut backoff).await {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
                Ok(file) => {
                    backoff = RETRY_BACKOFF_MIN;
                    resume(&shared);
                    // While appends wait for durability, their data goes
                    // through the O_DSYNC descriptor: durable when written.
                    let durable_wanted =
                        shared.dsync && shared.durable_waiters.lowest_target().is_some();
                    let (file, dsync) = if durable_wanted {
                        match dsync_file(&shared, segment_base).await {
                            Ok(f) => (f, true),
                            Err(e) => {
                                fail(&shared, e);
                                return;
                            }
                        }
                    } else {
                        (file, false)
                    };
                    let id = {
                        let mut st = shared.state.borrow_mut();
                        st.next_write_id += 1;
                        let id = st.next_write_id;
                        st.in_flight.push_back(InFlightWrite {
                            id,
                            segment_base,
                            end_pos: pos + len as u64,
                            complete_offset,
                            file: file.clone(),
                            dsync,
                            done: false,
                        });
                        id
                    };
                    glommio::spawn_local(write_one(shared.clone(), id, file, buf, pos, len))
                        .detach();
                    Ok(())
                }
                Err(e) => Err(e),
            },
            WriterStep::Issue(WriteJob::Seal { .. }) => unreachable!("seals are not issued"),
        };
        if let Err(e) = result {
            fail(&shared, e);
            return;
        }
    }
}

/// The open file of a segment, creating and preallocating it on first use.
pub(super) async fn segment_file(
    shared: &LogShared,
    segment_base: i64,
    end: u64,
) -> Result<Rc<DmaFile>, StorageError> {
    let (existing, dir, allocated, step_max, limit) = {
        let st = shared.state.borrow();
        let seg = st
            .segment(segment_base)
            .expect("a segment being written is not deleted");
        let allocated = st
            .allocated
            .iter()
            .find(|(b, _)| *b == segment_base)
            .map_or(0, |(_, a)| *a);
        (
            seg.file.clone(),
            st.dir.clone(),
            allocated,
            st.config.preallocate_bytes,
            round_up(st.config.segment_bytes as usize, BLOCK_BYTES as usize) as u64,
        )
    };
    let file = match existing {
        Some(file) => file,
        None => {
            let path = segment::log_path(&dir, segment_base);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .dma_open(&path)
                .await
                .map_err(|e| StorageError::io("creating segment", e))?;
            // Its index files too, empty, as Kafka does: a shutdown then
            // rewrites them in place instead of creating thousands of files.
            let (index, time_index) = segment::index_file_names(segment_base);
            let at = dir.clone();
            fsutil::blocking(move || -> std::io::Result<()> {
                fsutil::create_missing_blocking(&at, &[&index, &time_index])?;
                fsutil::sync_dir_blocking(&at)
            })
            .await
            .map_err(|e| StorageError::io("creating segment index files", e))?;
            let file = Rc::new(file);
            let mut st = shared.state.borrow_mut();
            if let Some(seg) = st.segment_mut(segment_base) {
                seg.file = Some(file.clone());
            }
            file
        }
    };
    // A busy log that writes zeros ahead allocates at least their lead
    // ahead of its data while the shard's budget has room.
    let lead = shared.zeros.lead();
    let early = lead > 0
        && end + lead > allocated
        && allocated < limit
        && shared.state.borrow().preallocate_step >= zero_ahead::ZERO_FROM_STEP_BYTES;
    if end > allocated || early {
        // Ahead of this write by the partition's next step, as far as the
        // shard's budget allows; never past the segment's size limit.
        let target = {
            let mut st = shared.state.borrow_mut();
            let step = preallocation::next_step(st.preallocate_step, step_max);
            let wanted = (allocated + step).min(limit).max(end) - end;
            if end <= allocated && shared.preallocation.room() + st.preallocate_charged < wanted {
                // Early, and the shard's budget cannot cover the whole
                // step: allocate when the data needs it.
                return Ok(file);
            }
            st.preallocate_step = step;
            let ahead = shared
                .preallocation
                .charge(&mut st.preallocate_charged, wanted);
            end + ahead
        };
        file.pre_allocate(target, false)
            .await
            .map_err(|e| StorageError::io("preallocating segment", e))?;
        let mut st = shared.state.borrow_mut();
        match st.allocated.iter_mut().find(|(b, _)| *b == segment_base) {
            Some(entry) => entry.1 = target,
            None => st.allocated.push((segment_base, target)),
        }
    }
    Ok(file)
}

/// The segment's file opened a second time with O_DSYNC (the first
/// descriptor, from [`segment_file`], has created and allocated it).
async fn dsync_file(shared: &LogShared, segment_base: i64) -> Result<Rc<DmaFile>, StorageError> {
    let (existing, dir) = {
        let st = shared.state.borrow();
        let seg = st
            .segment(segment_base)
            .expect("a segment being written is not deleted");
        (seg.dsync_file.clone(), st.dir.clone())
    };
    if let Some(file) = existing {
        return Ok(file);
    }
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .dma_open(segment::log_path(&dir, segment_base))
        .await
        .map_err(|e| StorageError::io("opening segment O_DSYNC", e))?;
    let file = Rc::new(file);
    let mut st = shared.state.borrow_mut();
    if let Some(seg) = st.segment_mut(segment_base) {
        seg.dsync_file = Some(file.clone());
    }
    Ok(file)
}

/// One O_DIRECT write, running beside the writer loop. Completions may
/// arrive out of order; the written offset advances only over the prefix of
/// writes that are all done.
pub(super) async fn write_one(
    shared: Rc<LogShared>,
    id: u64,
    file: Rc<DmaFile>,
    mut buf: DmaBuffer,
    pos: u64,
    len: usize,
) {
    buf.trim_to_size(len);
    let buf = Rc::new(buf);
    let mut backoff = RETRY_BACKOFF_MIN;
    let result = loop {
        let started = std::time::Instant::now();
        let written = file.write_rc_at(buf.clone(), pos).await;
        shared.stats.write.record(started.elapsed());
        let result = match written {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(StorageError::io(
                "short O_DIRECT write",
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            )),
            Err(e) => Err(StorageError::io("writing segment", e)),
        };
        match result {
            // The same bytes at the same place: a retry is idempotent.
            Err(e) if out_of_space(&e) => {
                stall(&shared, e.clone());
                if !back_off(&shared, &mut backoff).await {
                    break Err(e);
                }
            }
            other => break other,
        }
    };
    if let Err(e) = result {
        fail(&shared, e);
        shared.writer_wake.notify();
        return;
    }
    resume(&shared);
    {
        let mut st = shared.state.borrow_mut();
        st.stats.writes += 1;
        st.stats.bytes_written += len as u64;
        if let Ok(buf) = Rc::try_unwrap(buf) {
            if st.pool.len() < WRITES_IN_FLIGHT_MAX && buf.len() == WRITE_CHUNK_BYTES {
                st.pool.push(buf);
            }
        }
        if let Some(w) = st.in_flight.iter_mut().find(|w| w.id == id) {
            w.done = true;
        }
    }
    complete_writes(&shared);
    shared.writer_wake.notify();
}

/// Retires the writes at the front of the in-flight queue that are done:
/// advances the written offset, returns buffer space, wakes waiters.
pub(super) fn complete_writes(shared: &LogShared) {
    let now = shared.clock.now_ms();
    let mut released = 0u64;
    let mut durable = None;
    let advanced = {
        let mut st = shared.state.borrow_mut();
        let mut advanced = None;
        while st.in_flight.front().is_some_and(|w| w.done) {
            let w = st.in_flight.pop_front().expect("front exists");
            assert!(
                w.complete_offset >= st.written_offset,
                "written offset only grows"
            );
            // An O_DSYNC write makes durable what it wrote; everything up
            // to it is durable only if nothing before it waits for a sync
            // (none pending, none running).
            let all_before_durable = st.written_offset == st.durable_offset
                && st.unsynced_files.is_empty()
                && st.first_unsynced_write_ms.is_none();
            if w.dsync && all_before_durable {
                st.durable_offset = w.complete_offset;
                st.stats.dsync_writes += 1;
                durable = Some(w.complete_offset);
            } else {
                if !st.unsynced_files.iter().any(|(b, _)| *b == w.segment_base) {
                    st.unsynced_files.push((w.segment_base, w.file.clone()));
                }
                st.first_unsynced_write_ms.get_or_insert(now);
            }
            st.written_offset = w.complete_offset;
            advanced = Some(w.complete_offset);
        }
        let written = st.written_offset;
        while st.releases.front().is_some_and(|(o, _)| *o < written) {
            released += st.releases.pop_front().expect("front").1;
        }
        advanced
    };
    if released > 0 {
        shared.space.release(released);
    }
    if let Some(durable) = durable {
        shared.durable_waiters.advance_to(durable);
    }
    if let Some(written) = advanced {
        shared.written_waiters.advance_to(written);
        update_high_watermark(shared);
        shared.syncer_wake.notify();
    }
}

/// Finishes a rolled segment once all its data is written: fdatasync, trim
/// the preallocated tail, write its indexes.
pub(super) async fn seal_segment(
    shared: &LogShared,
    segment_base: i64,
) -> Result<(), StorageError> {
    let (file, size, dir, index, time_index) = {
        let st = shared.state.borrow();
        let seg = st.segment(segment_base).expect("sealed segment exists");
        (
            seg.file.clone(),
            seg.size,
            st.dir.clone(),
            seg.index.encode(),
            seg.time_index.encode(),
        )
    };
    finish_segment_files(
        file.as_deref(),
        size,
        &dir,
        segment_base,
        (index, time_index),
    )
    .await?;
    let mut st = shared.state.borrow_mut();
    st.stats.fdatasyncs += 1;
    st.allocated.retain(|(b, _)| *b != segment_base);
    if let Some(seg) = st.segment_mut(segment_base) {
        seg.dsync_file = None;
    }
    // Trimmed: what it held ahead is free again.
    shared.preallocation.release(&mut st.preallocate_charged);
    let at = st
        .segments
        .iter()
        .position(|s| s.base_offset == segment_base)
        .expect("sealed segment exists");
    st.finalized_segments = st.finalized_segments.max(at + 1);
    Ok(())
}

/// Trims a sealed segment file to its data, makes data and size durable
/// with one fdatasync, then writes the index files that vouch for it.
async fn finish_segment_files(
    file: Option<&DmaFile>,
    size: u64,
    dir: &Path,
    base: i64,
    (index, time_index): (Vec<u8>, Vec<u8>),
) -> Result<(), StorageError> {
    if let Some(file) = file {
        file.truncate(size)
            .await
            .map_err(|e| StorageError::io("trimming segment", e))?;
        file.fdatasync()
            .await
            .map_err(|e| StorageError::io("fdatasync of finished segment", e))?;
    }
    write_indexes(dir, base, index, time_index, Durability::EachFile).await
}

pub(super) async fn write_indexes(
    dir: &Path,
    base: i64,
    index: Vec<u8>,
    time_index: Vec<u8>,
    durability: Durability,
) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    fsutil::blocking(move || -> std::io::Result<()> {
        let (index_name, time_name) = segment::index_file_names(base);
        fsutil::write_file_blocking(&dir, &index_name, &index, durability)?;
        fsutil::write_file_blocking(&dir, &time_name, &time_index, durability)
    })
    .await
    .map_err(|e| StorageError::io("writing segment indexes", e))
}

pub(super) async fn syncer_loop(shared: Rc<LogShared>) {
    loop {
        let (files, target, wait_for) = {
            let st = shared.state.borrow();
            if st.failed.is_some() {
                return;
            }
            let unsynced = st.written_offset > st.durable_offset;
            let waiter_needs = shared
                .durable_waiters
                .lowest_target()
                .is_some_and(|t| t < st.written_offset);
            let durable = st.durable_offset;
            let written = st.written_offset;
            // Offsets are record numbers without gaps, so the unsynced
            // record count is the distance between the two offsets.
            let count_due = written - durable >= st.config.flush_messages;
            let interval = st.config.flush_interval();
            let now = shared.clock.now_ms();
            let (time_due, wait_for) = match (interval, st.first_unsynced_write_ms) {
                (Some(iv), Some(first)) if unsynced => {
                    let due_at = first + iv.as_millis() as i64;
                    (
                        now >= due_at,
                        Some(Duration::from_millis((due_at - now).max(1) as u64)),
                    )
                }
                _ => (false, None),
            };
            if unsynced && (waiter_needs || count_due || time_due || st.closing) {
                let files: Vec<Rc<DmaFile>> =
                    st.unsynced_files.iter().map(|(_, f)| f.clone()).collect();
                (Some(files), written, None)
            } else if st.closing && !unsynced && written == st.next_offset {
                return;
            } else {
                (None, written, wait_for)
            }
        };
        let Some(files) = files else {
            match wait_for {
                Some(d) => {
                    futures_lite::future::or(shared.syncer_wake.wait(), glommio::timer::sleep(d))
                        .await;
                }
                None => shared.syncer_wake.wait().await,
            }
            continue;
        };
        {
            let mut st = shared.state.borrow_mut();
            st.unsynced_files.clear();
            st.first_unsynced_write_ms = None;
        }
        let mut backoff = RETRY_BACKOFF_MIN;
        let mut stalled_here = false;
        for file in &files {
            loop {
                let started = std::time::Instant::now();
                let synced = file.fdatasync().await;
                shared.stats.fsync.record(started.elapsed());
                match synced {
                    Ok(()) => break,
                    Err(e) => {
                        // O_DIRECT data is not in the page cache, so an
                        // fdatasync refused for space can simply be retried.
                        let e = StorageError::io("fdatasync", e);
                        if out_of_space(&e) {
                            stalled_here = true;
                            stall(&shared, e.clone());
                            if back_off(&shared, &mut backoff).await {
                                continue;
                            }
                        }
                        fail(&shared, e);
                        return;
                    }
                }
            }
        }
        if stalled_here {
            resume(&shared);
        }
        {
            let mut st = shared.state.borrow_mut();
            st.stats.fdatasyncs += 1;
            assert!(target >= st.durable_offset, "durable offset only grows");
            st.durable_offset = target;
            if st.written_offset > target && st.first_unsynced_write_ms.is_none() {
                st.first_unsynced_write_ms = Some(shared.clock.now_ms());
            }
        }
        shared.durable_waiters.advance_to(target);
        update_high_watermark(&shared);
    }
}

/// After the tasks stopped on close: what is left to do on disk (trim the
/// active segment, write its indexes, then the clean-shutdown marker), as
/// plain data for a blocking thread. What the log held ahead is released.
pub(super) fn closing_active_segment(shared: &LogShared) -> ClosingLog {
    let mut st = shared.state.borrow_mut();
    let dir = st.dir.clone();
    let next_offset = st.next_offset;
    let active = st.segments.last_mut().expect("active segment");
    active
        .time_index
        .maybe_append(active.max_timestamp, active.offset_of_max_timestamp);
    let base = active.base_offset;
    let size = active.size;
    let trim = active.file.is_some().then(|| segment::log_path(&dir, base));
    let (index_name, time_name) = segment::index_file_names(base);
    let files = vec![
        (index_name, active.index.encode()),
        (time_name, active.time_index.encode()),
    ];
    shared.preallocation.release(&mut st.preallocate_charged);
    ClosingLog {
        dir,
        trim: trim.map(|path| (path, size)),
        files,
        marker: format!("{next_offset} {size}\n"),
    }
}
