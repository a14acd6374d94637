//! Idempotent-producer state of one partition, as Apache Kafka keeps it
//! (`ProducerStateManager`): per producer id, the current epoch and the
//! metadata of the last five batches, enough to recognise a retried batch
//! and answer it with its original offsets.
//!
//! The state is derived from batch headers only, so it can be rebuilt from
//! the log at open. Lives on the shard that owns the partition.

use std::collections::{HashMap, VecDeque};

use crate::record::batch::{increment_sequence, BatchHeader};

/// How many recent batches per producer are remembered for duplicate
/// detection (Kafka's `NUM_BATCHES_TO_RETAIN`, which also bounds
/// max.in.flight.requests.per.connection for idempotent producers).
pub const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// The max timestamp of its last batch (Kafka's lastTimestamp).
    last_timestamp: i64,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    pub producer_id: i64,
    pub epoch: i16,
    /// The last sequence of its newest batch (-1: none kept).
    pub last_sequence: i32,
    pub last_timestamp: i64,
}

/// The version byte that starts an encoded table.
const ENCODING_VERSION: u8 = 2;

/// What the producer state says about an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Accept,
    /// A retry of a batch already in the log: answer with its offsets and
    /// do not append it again.
    Duplicate(BatchMetadata),
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    FencedEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id}: sequence {first_sequence} does not follow {last_sequence}")]
    OutOfOrderSequence {
        producer_id: i64,
        first_sequence: i32,
        last_sequence: i32,
    },
}

/// All producers of one partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == increment_sequence(last, 1)
}

impl ProducerStateTable {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks an incoming batch against the producer's state, following
    /// Kafka's `ProducerAppendInfo.checkSequence` and duplicate lookup.
    /// Batches without a producer id are always accepted.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        if !header.has_producer_id() {
            return Ok(SequenceCheck::Accept);
        }
        let producer_id = header.producer_id;
        let epoch = header.producer_epoch;
        let first = header.base_sequence;
        let last = header.last_sequence();
        let Some(entry) = self.producers.get(&producer_id) else {
            // An unknown producer (new, or its state expired with the log)
            // may start at any sequence, as in Kafka since KIP-360.
            return Ok(SequenceCheck::Accept);
        };
        if epoch < entry.epoch {
            return Err(ProducerError::FencedEpoch {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            if first != 0 {
                return Err(ProducerError::OutOfOrderSequence {
                    producer_id,
                    first_sequence: first,
                    last_sequence: -1,
                });
            }
            return Ok(SequenceCheck::Accept);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
        {
            return Ok(SequenceCheck::Duplicate(*dup));
        }
        let last_sequence = entry.batches.back().map_or(-1, |b| b.last_sequence);
        if last_sequence >= 0 && !in_sequence(last_sequence, first) {
            return Err(ProducerError::OutOfOrderSequence {
                producer_id,
                first_sequence: first,
                last_sequence,
            });
        }
        Ok(SequenceCheck::Accept)
    }

    /// Records a batch that was appended at `base_offset` (stored header
    /// fields, so recovery can replay headers read back from the log).
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                batches: VecDeque::new(),
                last_timestamp: -1,
            });
        entry.last_timestamp = header.max_timestamp;
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(header.last_offset_delta),
        });
    }

    /// The producer's current epoch and its newest batch, if known.
    pub fn last_batch(&self, producer_id: i64) -> Option<(i16, BatchMetadata)> {
        let entry = self.producers.get(&producer_id)?;
        Some((entry.epoch, *entry.batches.back()?))
    }

    /// (producer id, last offset) of each producer's newest batch: the
    /// batches the log cleaner keeps, emptied if need be.
    pub fn last_batch_ends(&self) -> std::collections::HashSet<(i64, i64)> {
        self.producers
            .iter()
            .filter_map(|(&id, e)| Some((id, e.batches.back()?.last_offset)))
            .collect()
    }

    /// Every producer, by id.
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        let mut out: Vec<ProducerSummary> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ProducerSummary {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp: e.last_timestamp,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Serialises the table for a snapshot: a version byte, the producer
    /// count, then per producer id, epoch, last timestamp, batch count and
    /// each batch's four fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![ENCODING_VERSION];
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[&id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.last_timestamp.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        out
    }

    /// Parses [`ProducerStateTable::encode`] output; `None` if malformed or
    /// of another version (an older snapshot: the caller rebuilds the
    /// table from the log).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if bytes.len() < n {
                return None;
            }
            let (head, rest) = bytes.split_at(n);
            *bytes = rest;
            Some(head)
        }
        let mut rest = bytes;
        if take(&mut rest, 1)? != [ENCODING_VERSION] {
            return None;
        }
        let count = u32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?);
        let mut table = ProducerStateTable::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
            let epoch = i16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
            let last_timestamp = i64::from_be_bytes(take(&mut rest, 8)?.try_into().ok()?);
            let n = take(&mut rest, 1)?[0] as usize;
            if n > BATCHES_PER_PRODUCER {
                return None;
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                let b = take(&mut rest, 24)?;
                batches.push_back(BatchMetadata {
                    first_sequence: i32::from_be_bytes(b[0..4].try_into().ok()?),
                    last_sequence: i32::from_be_bytes(b[4..8].try_into().ok()?),
                    base_offset: i64::from_be_bytes(b[8..16].try_into().ok()?),
                    last_offset: i64::from_be_bytes(b[16..24].try_into().ok()?),
                });
            }
            table.producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                },
            );
        }
        rest.is_empty().then_some(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::records::BatchBuilder;

    fn header(pid: i64, epoch: i16, seq: i32, records: usize) -> BatchHeader {
        let mut b = BatchBuilder::new(0).idempotent(pid, epoch, seq);
        for _ in 0..records {
            b.push_value(0, b"v");
        }
        BatchHeader::parse(&b.build()).unwrap()
    }

    // Proves in-order batches are accepted, retries of any of the last five
    // batches are recognised with their original offsets, and gaps, stale
    // epochs and new epochs not starting at 0 are refused as Kafka does.
    #[test]
    fn kafka_sequence_rules() {
        let mut table = ProducerStateTable::default();
        let mut offset = 0;
        for i in 0..7 {
            let h = header(7, 0, i * 3, 3);
            assert_eq!(table.check(&h), Ok(SequenceCheck::Accept));
            table.record(&h, offset);
            offset += 3;
        }
        // The last five batches (sequences 6..=20) are remembered.
        let retry = header(7, 0, 18, 3);
        match table.check(&retry) {
            Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.base_offset, b.last_offset), (18, 20)),
            other => panic!("expected duplicate, got {other:?}"),
        }
        let too_old = header(7, 0, 0, 3);
        assert!(matches!(
            table.check(&too_old),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        let gap = header(7, 0, 22, 1);
        // Kafka's code for each refusal is checked in handler::errors.
        assert!(matches!(
            table.check(&gap),
            Err(ProducerError::OutOfOrderSequence { .. })
        ));
        let next = header(7, 0, 21, 1);
        assert_eq!(table.check(&next), Ok(SequenceCheck::Accept));
        let bumped_bad = header(7, 1, 5, 1);
        assert!(table.check(&bumped_bad).is_err());
        let bumped = header(7, 1, 0, 1);
        assert_eq!(table.check(&bumped), Ok(SequenceCheck::Accept));
        table.record(&bumped, offset);
        let fenced = header(7, 0, 21, 1);
        assert!(matches!(
            table.check(&fenced),
            Err(ProducerError::FencedEpoch { .. })
        ));
        let unknown = header(99, 3, 1234, 1);
        assert_eq!(table.check(&unknown), Ok(SequenceCheck::Accept));
        assert_eq!(ProducerStateTable::decode(&table.encode()), Some(table));
    }

    // Proves DescribeProducers' view: each producer's epoch, last sequence
    // and its last batch's max timestamp, kept across a snapshot; a table
    // in the older encoding (no version byte) is not read (the partition
    // rebuilds it from the log).
    #[test]
    fn summaries_and_versioned_snapshots() {
        let mut table = ProducerStateTable::default();
        let mut b = BatchBuilder::new(1_000).idempotent(5, 2, 0);
        b.push_value(0, b"a");
        b.push_value(70, b"b");
        table.record(&BatchHeader::parse(&b.build()).unwrap(), 0);
        table.record(&header(3, 0, 0, 4), 2);
        let want = vec![
            ProducerSummary {
                producer_id: 3,
                epoch: 0,
                last_sequence: 3,
                last_timestamp: 0,
            },
            ProducerSummary {
                producer_id: 5,
                epoch: 2,
                last_sequence: 1,
                last_timestamp: 1_070,
            },
        ];
        assert_eq!(table.summaries(), want);
        let encoded = table.encode();
        let back = ProducerStateTable::decode(&encoded).unwrap();
        assert_eq!(back.summaries(), want);
        assert_eq!(ProducerStateTable::decode(&encoded[1..]), None);
    }

    // Proves sequence numbers wrap from i32::MAX to 0 as in Kafka.
    #[test]
    fn sequence_wraps() {
        let mut table = ProducerStateTable::default();
        let h = header(1, 0, i32::MAX - 1, 2);
        assert_eq!(h.last_sequence(), i32::MAX);
        table.record(&h, 0);
        assert_eq!(table.check(&header(1, 0, 0, 1)), Ok(SequenceCheck::Accept));
    }
}
