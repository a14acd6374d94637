//! Sparse offset and time indexes of one segment, in Apache Kafka's file
//! formats.
//!
//! `.index`: 8-byte entries (4-byte offset relative to the segment's base
//! offset, 4-byte file position), one every index.interval.bytes, keyed like
//! Kafka by the *last* offset of the indexed batch.
//! `.timeindex`: 12-byte entries (8-byte timestamp, 4-byte relative offset),
//! appended when a batch raises the segment's max timestamp.
//!
//! Both are held in memory (a 1 GiB segment with the default 4 KiB interval
//! needs at most 2 MiB for its offset index) and written to disk when the
//! segment is rolled or the log is closed. Lives on the shard that owns the
//! partition.

pub const OFFSET_ENTRY_BYTES: usize = 8;
pub const TIME_ENTRY_BYTES: usize = 12;

/// Maps offsets to file positions within one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    base_offset: i64,
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn new(base_offset: i64) -> Self {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry for a batch whose last offset is `last_offset`, starting
    /// at `position`. Offsets and positions only grow.
    pub fn append(&mut self, last_offset: i64, position: u32) {
        let relative = u32::try_from(last_offset - self.base_offset)
            .expect("offset within 2^32 of the segment base");
        if let Some(&(prev_rel, prev_pos)) = self.entries.last() {
            assert!(
                relative > prev_rel && position > prev_pos,
                "index entries must grow"
            );
        }
        self.entries.push((relative, position));
    }

    /// The position to start scanning from for `target`: that of the last
    /// entry whose offset is below `target` (every batch before it ends
    /// before `target`), or 0.
    pub fn lookup(&self, target: i64) -> u32 {
        let relative = target - self.base_offset;
        let at = self
            .entries
            .partition_point(|&(rel, _)| i64::from(rel) < relative);
        if at == 0 {
            0
        } else {
            self.entries[at - 1].1
        }
    }

    /// Drops entries for batches at or after `position` (log truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        let keep = self.entries.partition_point(|&(_, pos)| pos < position);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_BYTES);
        for &(rel, pos) in &self.entries {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }

    /// Parses an index file, or `None` if it is damaged: a partial entry,
    /// entries that do not grow, or a position past the segment's end.
    pub fn decode(base_offset: i64, bytes: &[u8], segment_bytes: u64) -> Option<Self> {
        if !bytes.len().is_multiple_of(OFFSET_ENTRY_BYTES) {
            return None;
        }
        let mut index = OffsetIndex::new(base_offset);
        for entry in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
            let rel = u32::from_be_bytes(entry[0..4].try_into().ok()?);
            let pos = u32::from_be_bytes(entry[4..8].try_into().ok()?);
            if u64::from(pos) >= segment_bytes {
                return None;
            }
            if let Some(&(prev_rel, prev_pos)) = index.entries.last() {
                if rel <= prev_rel || pos <= prev_pos {
                    return None;
                }
            }
            index.entries.push((rel, pos));
        }
        Some(index)
    }
}

/// Maps timestamps to offsets within one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    base_offset: i64,
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn new(base_offset: i64) -> Self {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records that the segment's max timestamp reached `timestamp` at
    /// `offset`; ignored unless it raises the last entry's timestamp.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if timestamp < 0
            || offset < self.base_offset
            || self.entries.last().is_some_and(|&(ts, _)| timestamp <= ts)
        {
            return;
        }
        let relative =
            u32::try_from(offset - self.base_offset).expect("offset within 2^32 of the base");
        self.entries.push((timestamp, relative));
    }

    /// The offset to start scanning from for the first record with a
    /// timestamp at or after `timestamp`: every batch before the returned
    /// offset has a max timestamp below `timestamp`.
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let at = self.entries.partition_point(|&(ts, _)| ts < timestamp);
        if at == 0 {
            self.base_offset
        } else {
            // The entry's record itself is older than `timestamp`, so batches
            // up to and including its batch can be skipped by the scan.
            self.base_offset + i64::from(self.entries[at - 1].1)
        }
    }

    /// The newest entry as (timestamp, absolute offset).
    pub fn last(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(ts, rel)| (ts, self.base_offset + i64::from(rel)))
    }

    /// Drops entries at or after `offset` (log truncation).
    pub fn truncate_to_offset(&mut self, offset: i64) {
        let keep = self
            .entries
            .partition_point(|&(_, rel)| self.base_offset + i64::from(rel) < offset);
        self.entries.truncate(keep);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_ENTRY_BYTES);
        for &(ts, rel) in &self.entries {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }

    /// Parses a time index file, or `None` if it is damaged.
    pub fn decode(base_offset: i64, bytes: &[u8], next_offset: i64) -> Option<Self> {
        if !bytes.len().is_multiple_of(TIME_ENTRY_BYTES) {
            return None;
        }
        let mut index = TimeIndex::new(base_offset);
        for entry in bytes.chunks_exact(TIME_ENTRY_BYTES) {
            let ts = i64::from_be_bytes(entry[0..8].try_into().ok()?);
            let rel = u32::from_be_bytes(entry[8..12].try_into().ok()?);
            if base_offset + i64::from(rel) >= next_offset {
                return None;
            }
            if let Some(&(prev_ts, prev_rel)) = index.entries.last() {
                if ts <= prev_ts || rel < prev_rel {
                    return None;
                }
            }
            index.entries.push((ts, rel));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves lookups return the last entry strictly before the target, at
    // and around every entry boundary.
    #[test]
    fn offset_lookup_at_boundaries() {
        let mut index = OffsetIndex::new(100);
        index.append(109, 4096); // batch 100..=109 at 0 is unindexed; 105..=109 at 4096
        index.append(129, 8192);
        assert_eq!(index.lookup(100), 0);
        assert_eq!(index.lookup(109), 0);
        assert_eq!(index.lookup(110), 4096);
        assert_eq!(index.lookup(129), 4096);
        assert_eq!(index.lookup(130), 8192);
        assert_eq!(index.lookup(10_000), 8192);
        let decoded = OffsetIndex::decode(100, &index.encode(), 9000).unwrap();
        assert_eq!(decoded, index);
        assert!(OffsetIndex::decode(100, &index.encode(), 8000).is_none());
        assert!(OffsetIndex::decode(100, &index.encode()[..7], 9000).is_none());
        index.truncate_to_position(8192);
        assert_eq!(index.lookup(10_000), 4096);
    }

    // Proves the time index keeps only increasing timestamps and that a
    // lookup never skips a batch that could hold the target timestamp.
    #[test]
    fn time_lookup() {
        let mut index = TimeIndex::new(0);
        index.maybe_append(1000, 9);
        index.maybe_append(900, 19); // not an increase: ignored
        index.maybe_append(2000, 29);
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(500), 0);
        assert_eq!(index.lookup(1000), 0);
        assert_eq!(index.lookup(1001), 9);
        assert_eq!(index.lookup(2001), 29);
        let decoded = TimeIndex::decode(0, &index.encode(), 30).unwrap();
        assert_eq!(decoded, index);
        assert!(TimeIndex::decode(0, &index.encode(), 29).is_none());
    }
}
