//! Zeros written ahead of the data, so data writes are pure overwrites.
//!
//! The active segment's space is fallocated ahead of its data (see
//! `storage::preallocation`), but fallocated blocks are *unwritten* extents:
//! on ext4 and XFS an O_DIRECT write into them cannot be issued without
//! blocking (io_uring hands it to a worker thread) and its completion
//! converts the extent in a kernel worker. Both run on whatever core is
//! free, which on a host with a core per shard is another shard's or the
//! client's.
//!
//! So while a busy log (see [`ZERO_FROM_STEP_BYTES`]) has nothing else to
//! write, it overwrites the allocated
//! space just past its data with zeros, one [`ZERO_CHUNK_BYTES`] write at a
//! time, up to `zero_ahead_bytes` ahead of the data. Data written there
//! later lands on written blocks. A log whose producers outrun the zeroing
//! simply writes into unwritten blocks, as without it.
//!
//! What keeps it safe: zeros are written only past the data's end (the
//! tail's last block, rounded up) and within the allocated size (so no zero
//! write extends the file), a data write that would overlap the zero write
//! in flight waits for it, and a segment is sealed (trimmed) or closed only
//! once no zero write is in flight. Zeros past the log end are what an
//! unwritten extent reads as: recovery stops at them as before, and a clean
//! close trims them.

use super::*;

/// Bytes of one zero write.
pub(super) const ZERO_CHUNK_BYTES: usize = 64 << 10;

/// A log zeroes ahead once its preallocation steps have grown to this (it
/// has written a few MiB): the many partitions that write little never
/// spend disk writes on zeros.
pub(super) const ZERO_FROM_STEP_BYTES: u64 = 1 << 20;

/// The log's progress zeroing its active segment.
#[derive(Debug, Default)]
pub(super) struct ZeroAhead {
    /// The segment the progress is for.
    segment_base: i64,
    /// Bytes from the segment's start known to be written (data or zeros).
    to: u64,
    /// The zero write in flight: segment, start and end.
    pub(super) in_flight: Option<(i64, u64, u64)>,
    /// A zero write failed: the log stops zeroing.
    off: bool,
}

impl ZeroAhead {
    /// Whether a data write of `[start, end)` in `segment_base` overlaps the
    /// zero write in flight.
    pub(super) fn overlaps(&self, segment_base: i64, start: u64, end: u64) -> bool {
        self.in_flight
            .is_some_and(|(base, s, e)| base == segment_base && start < e && end > s)
    }
}

/// The shard's buffer of zeros, shared by its logs' zero writes, and how
/// far ahead they zero.
pub struct ZeroBuffer {
    lead: u64,
    buf: RefCell<Option<Rc<DmaBuffer>>>,
}

impl ZeroBuffer {
    pub fn new(lead: u64) -> Self {
        ZeroBuffer {
            lead,
            buf: RefCell::new(None),
        }
    }

    /// Bytes of zeros a log keeps ahead of its data (0: off).
    pub fn lead(&self) -> u64 {
        self.lead
    }

    fn buffer(&self) -> Rc<DmaBuffer> {
        self.buf
            .borrow_mut()
            .get_or_insert_with(|| {
                let mut buf = glommio::allocate_dma_buffer(ZERO_CHUNK_BYTES);
                buf.as_bytes_mut().fill(0);
                Rc::new(buf)
            })
            .clone()
    }
}

/// A zero write the writer may start now.
pub(super) struct ZeroJob {
    segment_base: i64,
    start: u64,
    file: Rc<DmaFile>,
}

/// The next zero write for a log with nothing else to write, if one is due:
/// the next chunk past both the data and what is already zeroed, when it
/// lies within the allocated space and within `lead` of the data's end.
pub(super) fn next_zero_job(st: &mut LogState, lead: u64) -> Option<ZeroJob> {
    if lead == 0
        || st.preallocate_step < ZERO_FROM_STEP_BYTES
        || st.zero.off
        || st.zero.in_flight.is_some()
        || st.closing
        || st.stalled.is_some()
        || st.failed.is_some()
    {
        return None;
    }
    let base = st.tail.segment_base;
    let file = st.segment(base)?.file.clone()?;
    let allocated = st
        .allocated
        .iter()
        .find(|(b, _)| *b == base)
        .map_or(0, |(_, a)| *a);
    let data_end = align_down(st.tail.pos + st.tail.len as u64 + BLOCK_BYTES - 1);
    if st.zero.segment_base != base {
        st.zero.segment_base = base;
        st.zero.to = 0;
    }
    let start = st.zero.to.max(data_end);
    let end = start + ZERO_CHUNK_BYTES as u64;
    if end > allocated || end > data_end + lead {
        return None;
    }
    st.zero.in_flight = Some((base, start, end));
    Some(ZeroJob {
        segment_base: base,
        start,
        file,
    })
}

/// Writes one chunk of zeros, then wakes the writer (a data write may be
/// waiting for it, or the next chunk may be due).
pub(super) async fn write_zeros(shared: Rc<LogShared>, job: ZeroJob) {
    let buf = shared.zeros.buffer();
    let result = job.file.write_rc_at(buf, job.start).await;
    {
        let mut st = shared.state.borrow_mut();
        st.zero.in_flight = None;
        match result {
            Ok(n) if n == ZERO_CHUNK_BYTES => {
                if st.zero.segment_base == job.segment_base {
                    st.zero.to = st.zero.to.max(job.start + n as u64);
                }
                st.stats.zero_writes += 1;
            }
            other => {
                st.zero.off = true;
                tracing::warn!(
                    dir = %st.dir.display(),
                    result = ?other.map_err(|e| e.to_string()),
                    "writing zeros ahead of a segment's data failed; this log stops zeroing"
                );
            }
        }
    }
    shared.writer_wake.notify();
}
