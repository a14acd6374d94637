//! Read-ahead for partitions read in sequence from their segment files.
//!
//! A consumer catching up on a backlog fetches, waits for the response,
//! and fetches again from where the last response ended. Served one round
//! at a time, the disk sits idle while the response is sent and the client
//! handles it, and the client waits while the disk reads. After a fetch
//! that read from disk, the log starts reading the next chunk (from the end
//! of the last batch it returned, as large as this fetch read) in the
//! background; the next fetch from that offset takes the chunk instead of
//! issuing its own read.
//!
//! A shard keeps these chunks here, bounded in bytes over all its
//! partitions (`shardlog.read.ahead.bytes`): a chunk is started only when
//! it fits, after evicting chunks nobody took within [`STALE_AFTER`] and,
//! for one partition, all but its newest [`PER_PARTITION_MAX`] chunks (one
//! per consumer group reading it in sequence). A chunk that is evicted
//! while its read is in flight is cancelled.
//!
//! What a chunk may be trusted with: it was read when the log had written
//! offsets up to `visible_end`, so only batches that start below that are
//! sure to be whole in it; past that (or at any batch that does not
//! continue the offsets exactly) the reader goes back to the file.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::Task;

use super::cache::CacheKey;

/// A chunk nobody took in this long is let go when room is needed.
pub const STALE_AFTER: Duration = Duration::from_secs(2);

/// Chunks kept for one partition (one per sequential reader).
pub const PER_PARTITION_MAX: usize = 4;

/// A chunk being read (or read) ahead of a sequential reader.
pub struct Ahead {
    /// The offset the next fetch will ask for: the chunk is for it only.
    pub next_offset: i64,
    /// The segment the chunk was read from.
    pub segment_base: i64,
    /// The file position of the batch holding `next_offset`.
    pub pos: u64,
    /// Where the chunk starts in the file (block-aligned, at or before `pos`).
    pub aligned: u64,
    /// The log's written offset when the read was issued: batches from
    /// here on may be incomplete in the chunk.
    pub visible_end: i64,
    /// The read, copied out of the DMA buffer once it completes.
    pub data: Task<io::Result<Bytes>>,
}

struct Entry {
    key: CacheKey,
    len: usize,
    issued: Instant,
    ahead: Ahead,
}

/// The shard's read-ahead chunks, bounded in bytes.
pub struct ReadAheads {
    bytes_max: usize,
    bytes_used: usize,
    /// Oldest first.
    entries: VecDeque<Entry>,
    pub started: u64,
    pub taken: u64,
    pub dropped: u64,
}

impl ReadAheads {
    pub fn new(bytes_max: usize) -> Self {
        ReadAheads {
            bytes_max,
            bytes_used: 0,
            entries: VecDeque::new(),
            started: 0,
            taken: 0,
            dropped: 0,
        }
    }

    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    /// The chunk read ahead for a fetch of `key` at `offset` in the segment
    /// `segment_base`, if there is one; it leaves the set either way.
    pub fn take(&mut self, key: CacheKey, segment_base: i64, offset: i64) -> Option<Ahead> {
        let at = self.entries.iter().position(|e| {
            e.key == key && e.ahead.next_offset == offset && e.ahead.segment_base == segment_base
        })?;
        let entry = self.entries.remove(at).expect("found above");
        self.bytes_used -= entry.len;
        self.taken += 1;
        Some(entry.ahead)
    }

    /// Whether a chunk of `len` bytes for `key` may start now: true once
    /// room is made for it within the budget.
    pub fn make_room(&mut self, key: CacheKey, len: usize, now: Instant) -> bool {
        if len > self.bytes_max {
            return false;
        }
        // All but the partition's newest chunks go first.
        let mine = self.entries.iter().filter(|e| e.key == key).count();
        if mine >= PER_PARTITION_MAX {
            let mut excess = mine + 1 - PER_PARTITION_MAX;
            self.drop_where(|e| {
                let drop = excess > 0 && e.key == key;
                excess -= usize::from(drop);
                drop
            });
        }
        if self.bytes_used + len > self.bytes_max {
            self.drop_where(|e| now.duration_since(e.issued) >= STALE_AFTER);
        }
        self.bytes_used + len <= self.bytes_max
    }

    /// Keeps a chunk that [`ReadAheads::make_room`] made room for.
    pub fn insert(&mut self, key: CacheKey, len: usize, now: Instant, ahead: Ahead) {
        self.bytes_used += len;
        self.started += 1;
        self.entries.push_back(Entry {
            key,
            len,
            issued: now,
            ahead,
        });
    }

    /// Drops every chunk of a partition (log closed or truncated).
    pub fn forget(&mut self, key: CacheKey) {
        self.drop_where(|e| e.key == key);
    }

    fn drop_where(&mut self, mut drop: impl FnMut(&Entry) -> bool) {
        let mut freed = 0;
        let mut count = 0;
        self.entries.retain(|e| {
            let gone = drop(e);
            if gone {
                freed += e.len;
                count += 1;
            }
            !gone
        });
        self.bytes_used -= freed;
        self.dropped += count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ahead(next_offset: i64, segment_base: i64) -> Ahead {
        Ahead {
            next_offset,
            segment_base,
            pos: 0,
            aligned: 0,
            visible_end: i64::MAX,
            data: glommio::spawn_local(async { Ok(Bytes::new()) }),
        }
    }

    // Proves chunks stay within the byte budget, stale chunks make room for
    // new ones and fresh ones do not, a partition keeps at most its newest
    // PER_PARTITION_MAX chunks, and a chunk is handed out only for the
    // exact offset and segment it was read for.
    #[test]
    fn bounded_and_matched() {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(async {
                let t0 = Instant::now();
                let mut set = ReadAheads::new(100);
                assert!(set.make_room(1, 60, t0));
                set.insert(1, 60, t0, ahead(10, 0));
                // A fresh chunk is not evicted for another partition's.
                assert!(!set.make_room(2, 60, t0));
                assert!(set.make_room(2, 40, t0));
                set.insert(2, 40, t0, ahead(5, 0));
                assert_eq!(set.bytes_used(), 100);
                // Once stale, it is.
                let later = t0 + STALE_AFTER;
                assert!(set.make_room(3, 60, later));
                assert_eq!(set.bytes_used(), 0);
                assert!(!set.make_room(3, 101, later));

                for i in 0..(PER_PARTITION_MAX as i64 + 2) {
                    assert!(set.make_room(7, 10, later));
                    set.insert(7, 10, later, ahead(100 + i, 0));
                }
                assert_eq!(set.bytes_used(), 10 * PER_PARTITION_MAX);
                // The oldest two went; the newest are there, matched exactly.
                assert!(set.take(7, 0, 100).is_none());
                assert!(set.take(7, 0, 101).is_none());
                assert!(set.take(7, 1, 102).is_none());
                let got = set.take(7, 0, 102).expect("kept");
                assert_eq!(got.data.await.unwrap(), Bytes::new());
                assert_eq!(set.taken, 1);
                set.forget(7);
                assert_eq!(set.bytes_used(), 0);
            });
    }
}
