//! The per-shard cache of recently appended batches.
//!
//! Each entry is a refcounted `Bytes` holding one whole batch exactly as
//! stored (offsets patched). A fetch clones the `Bytes` (a refcount bump) and
//! hands it to the socket writer, so no payload byte is copied between the
//! cache and the socket. Memory is bounded by `cache_bytes_max` over all
//! partitions of the shard; the oldest insertions are evicted first.
//!
//! Lives on one shard, shared by that shard's partitions through `Rc`.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

/// Identifies one partition log within a shard's cache.
pub type CacheKey = u64;

#[derive(Clone)]
pub struct CachedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
}

pub struct BatchCache {
    bytes_max: usize,
    bytes_used: usize,
    partitions: HashMap<CacheKey, VecDeque<CachedBatch>>,
    /// Insertion order across partitions: (partition, base offset).
    /// Entries whose batch was already removed are skipped on eviction.
    fifo: VecDeque<(CacheKey, i64)>,
    next_key: CacheKey,
    pub hits: u64,
    pub misses: u64,
}

impl BatchCache {
    pub fn new(bytes_max: usize) -> Self {
        BatchCache {
            bytes_max,
            bytes_used: 0,
            partitions: HashMap::new(),
            fifo: VecDeque::new(),
            next_key: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// A key for a newly opened partition log.
    pub fn register(&mut self) -> CacheKey {
        self.next_key += 1;
        self.next_key
    }

    pub fn bytes_used(&self) -> usize {
        self.bytes_used
    }

    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// Adds the next batch of a partition. Batches of one partition must be
    /// inserted in offset order, without gaps, so each partition's entries
    /// cover one contiguous offset range ending at its log end.
    pub fn insert(&mut self, key: CacheKey, batch: CachedBatch) {
        if batch.bytes.len() > self.bytes_max {
            // Too big to ever fit: keep the range contiguous by dropping
            // what is cached for this partition.
            self.remove_partition(key);
            return;
        }
        let entries = self.partitions.entry(key).or_default();
        if let Some(last) = entries.back() {
            if last.last_offset + 1 != batch.base_offset {
                // A gap (truncation, reopen) breaks contiguity: start over.
                let dropped: usize = entries.iter().map(|b| b.bytes.len()).sum();
                entries.clear();
                self.bytes_used -= dropped;
            }
        }
        self.bytes_used += batch.bytes.len();
        self.fifo.push_back((key, batch.base_offset));
        entries.push_back(batch);
        self.evict();
    }

    fn evict(&mut self) {
        while self.bytes_used > self.bytes_max {
            let Some((key, base)) = self.fifo.pop_front() else {
                break;
            };
            if let Some(entries) = self.partitions.get_mut(&key) {
                if entries.front().is_some_and(|b| b.base_offset == base) {
                    let batch = entries.pop_front().expect("front exists");
                    self.bytes_used -= batch.bytes.len();
                }
            }
        }
        if self.fifo.len() > 2 * self.entry_count() + 1024 {
            // Compact stale FIFO entries left by removed partitions.
            let partitions = &self.partitions;
            self.fifo.retain(|(key, base)| {
                partitions
                    .get(key)
                    .is_some_and(|e| e.front().is_some_and(|f| f.base_offset <= *base))
            });
        }
    }

    fn entry_count(&self) -> usize {
        self.partitions.values().map(VecDeque::len).sum()
    }

    /// Whole batches starting with the one that contains `offset`, up to
    /// `max_bytes` (at least one batch) and below `end_offset`. `None` when
    /// the cache does not hold `offset`.
    pub fn read(
        &mut self,
        key: CacheKey,
        offset: i64,
        end_offset: i64,
        max_bytes: usize,
    ) -> Option<Vec<Bytes>> {
        let Some(entries) = self.partitions.get(&key) else {
            self.misses += 1;
            return None;
        };
        let first = entries.partition_point(|b| b.last_offset < offset);
        match entries.get(first) {
            Some(b) if b.base_offset <= offset => {}
            _ => {
                self.misses += 1;
                return None;
            }
        }
        self.hits += 1;
        let mut out = Vec::new();
        let mut taken = 0usize;
        for batch in entries.range(first..) {
            if batch.base_offset >= end_offset {
                break;
            }
            if !out.is_empty() && taken + batch.bytes.len() > max_bytes {
                break;
            }
            taken += batch.bytes.len();
            out.push(batch.bytes.clone());
        }
        Some(out)
    }

    /// Whether the cache holds `offset` of the partition (without counting
    /// a hit or a miss).
    pub fn holds(&self, key: CacheKey, offset: i64) -> bool {
        self.partitions.get(&key).is_some_and(|entries| {
            entries.front().is_some_and(|f| f.base_offset <= offset)
                && entries.back().is_some_and(|b| b.last_offset >= offset)
        })
    }

    /// Forgets a partition's batches that end below `offset` (the log
    /// cleaner rewrote the segments they came from); what is left still
    /// runs contiguously to the log end.
    pub fn remove_below(&mut self, key: CacheKey, offset: i64) {
        if let Some(entries) = self.partitions.get_mut(&key) {
            while entries.front().is_some_and(|b| b.last_offset < offset) {
                let b = entries.pop_front().expect("front exists");
                self.bytes_used -= b.bytes.len();
            }
        }
    }

    /// Forgets every batch of a partition (log closed or truncated).
    pub fn remove_partition(&mut self, key: CacheKey) {
        if let Some(entries) = self.partitions.remove(&key) {
            self.bytes_used -= entries.iter().map(|b| b.bytes.len()).sum::<usize>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, last: i64, len: usize) -> CachedBatch {
        CachedBatch {
            base_offset: base,
            last_offset: last,
            bytes: Bytes::from(vec![0u8; len]),
        }
    }

    // Proves the cache stays within its byte budget across partitions by
    // evicting the oldest insertions, and serves only contiguous ranges.
    #[test]
    fn evicts_oldest_and_stays_bounded() {
        let mut cache = BatchCache::new(1000);
        let a = cache.register();
        let b = cache.register();
        for i in 0..10 {
            cache.insert(a, batch(i * 10, i * 10 + 9, 100));
            cache.insert(b, batch(i, i, 100));
            assert!(cache.bytes_used() <= 1000);
        }
        // Only the newest 10 inserts remain: a 50.. and b 5..
        assert!(cache.read(a, 49, 100, 1 << 20).is_none());
        assert_eq!(cache.read(a, 55, 100, 1 << 20).unwrap().len(), 5);
        assert_eq!(cache.read(a, 55, 100, 150).unwrap().len(), 1);
        assert_eq!(cache.read(b, 7, 9, 1 << 20).unwrap().len(), 2);
        assert!(cache.read(b, 10, 100, 1 << 20).is_none());
        cache.remove_partition(a);
        assert_eq!(cache.bytes_used(), 500);
    }
}
