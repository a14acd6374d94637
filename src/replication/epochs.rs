//! The leader-epoch cache of one replica (Kafka's
//! `leader-epoch-checkpoint`): the offset at which each leader epoch's
//! first record sits, in ascending order of both. It answers
//! OffsetForLeaderEpoch (KIP-101, KIP-279) and drives a follower's
//! truncation.

use super::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};

/// One epoch and the offset of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Epochs in ascending order, their start offsets ascending too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<EpochEntry>,
}

impl EpochCache {
    /// A cache of `(epoch, start offset)` assignments made in order.
    pub fn from_assignments(assignments: &[(i32, i64)]) -> Self {
        let mut c = EpochCache::default();
        for &(epoch, start) in assignments {
            c.assign(epoch, start);
        }
        c
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The latest epoch, [`UNDEFINED_EPOCH`] for an empty cache.
    pub fn latest_epoch(&self) -> i32 {
        self.latest().map_or(UNDEFINED_EPOCH, |e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset`: a leader taking a new
    /// epoch (at its log end) or a follower appending the first record of
    /// one. An epoch not above the latest changes nothing; entries at or
    /// after `start_offset` (left by a log that was since truncated) are
    /// dropped first, as Kafka does.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if self.latest().is_some_and(|l| epoch <= l.epoch) {
            return;
        }
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }

    /// OffsetForLeaderEpoch as Kafka's leader answers it: the largest epoch
    /// at or below `requested` and the offset where it ends (the start of
    /// the next epoch, or `log_end` for the latest). A requested epoch below
    /// every known one ends where the first known starts (with the
    /// requested epoch); one above the latest, or undefined, is
    /// ([`UNDEFINED_EPOCH`], [`UNDEFINED_OFFSET`]).
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        if self.latest_epoch() == requested {
            return (requested, log_end);
        }
        let higher = self.entries.iter().position(|e| e.epoch > requested);
        match higher {
            None => (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            Some(0) => (requested, self.entries[0].start_offset),
            Some(i) => (self.entries[i - 1].epoch, self.entries[i].start_offset),
        }
    }

    /// The log was cut at `end`: epochs that start there or later go.
    pub fn truncate_from_end(&mut self, end: i64) {
        self.entries.retain(|e| e.start_offset < end);
    }

    /// The epoch of the record at `offset` (None before the first epoch).
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        EpochCache::from_assignments(entries)
    }

    #[test]
    fn end_offsets_follow_kafkas_rules() {
        let c = cache(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(c.end_offset_for(4, 30), (4, 30));
        assert_eq!(c.end_offset_for(3, 30), (3, 25));
        // An epoch this replica never saw: the one below it, ending where
        // the next starts.
        assert_eq!(c.end_offset_for(2, 30), (1, 10));
        assert_eq!(c.end_offset_for(0, 30), (0, 0));
        assert_eq!(c.end_offset_for(5, 30), (UNDEFINED_EPOCH, UNDEFINED_OFFSET));
        assert_eq!(
            c.end_offset_for(UNDEFINED_EPOCH, 30),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
        assert_eq!(c.epoch_at(9), Some(1));
        assert_eq!(c.epoch_at(10), Some(3));
        assert_eq!(c.epoch_at(99), Some(4));
    }

    #[test]
    fn assignments_ignore_old_epochs_and_replace_truncated_ones() {
        let mut c = cache(&[(1, 0), (2, 5)]);
        c.assign(2, 7);
        c.assign(1, 9);
        assert_eq!(c, cache(&[(1, 0), (2, 5)]));
        // Epoch 3 at 3: the log was truncated below epoch 2's start.
        c.assign(3, 3);
        assert_eq!(c, cache(&[(1, 0), (3, 3)]));
        c.truncate_from_end(3);
        assert_eq!(c, cache(&[(1, 0)]));
        c.truncate_from_end(0);
        assert_eq!(c.latest_epoch(), UNDEFINED_EPOCH);
    }
}
