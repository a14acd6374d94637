//! The log cleaner's rules for one batch, as Kafka's `LogCleaner` applies
//! them to a compacted topic, without I/O: a map from each key to the
//! offset of its latest record over the section being cleaned
//! ([`OffsetMap`], bounded in memory as `log.cleaner.dedupe.buffer.size`
//! bounds Kafka's), and what becomes of a batch below that section's end
//! ([`clean_batch`]):
//!
//! - a record survives if no later record has its key; records without a
//!   key (written before the topic was compacted) go;
//! - a tombstone (null value) that survives is kept until its batch's
//!   delete horizon (KIP-534): the first pass that keeps it stamps the
//!   batch with now + `delete.retention.ms`, a pass after that removes it;
//! - a batch that loses records is rebuilt with the same base and last
//!   offsets and producer fields ([`rebuild_batch`]); one that loses every
//!   record goes, unless it is the last batch of a producer whose state
//!   must survive (then Kafka keeps it as an empty batch);
//! - control batches are kept as they are.
//!
//! The storage layer decides which segments to clean and swaps files; this
//! module only says what a cleaned batch is.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::batch::{BatchError, BatchHeader};
use shardlog_wire::records::{decode_records, for_each_key, rebuild_batch, DECODED_BYTES_MAX};

/// Bytes one entry of the offset map stands for, as Kafka counts its own
/// (a 16-byte key hash and an 8-byte offset).
pub const OFFSET_MAP_ENTRY_BYTES: usize = 24;

/// Kafka's `log.cleaner.io.buffer.load.factor`: the share of the dedupe
/// buffer the map may fill.
pub const OFFSET_MAP_LOAD_FACTOR: f64 = 0.9;

/// A key's 128-bit hash: two SipHash passes with different prefixes, so
/// two keys collide with negligible probability (Kafka uses MD5's 16
/// bytes for the same purpose).
fn key_hash(key: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x5a)) << 64) | u128::from(half(0xa5))
}

/// The latest offset of each key in the section being cleaned, up to a
/// fixed number of keys.
#[derive(Debug, Clone)]
pub struct OffsetMap {
    latest: HashMap<u128, i64>,
    capacity: usize,
}

impl OffsetMap {
    /// A map in `memory_bytes` of dedupe buffer (at least one key).
    pub fn with_memory(memory_bytes: usize) -> OffsetMap {
        let capacity = ((memory_bytes as f64 * OFFSET_MAP_LOAD_FACTOR) as usize
            / OFFSET_MAP_ENTRY_BYTES)
            .max(1);
        OffsetMap {
            latest: HashMap::new(),
            capacity,
        }
    }

    /// Keys the map can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Notes `offset` as `key`'s latest. Returns false, changing nothing,
    /// when the key is new and the map is full: the caller stops mapping
    /// there (and cleans only below the last batch it mapped whole).
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let h = key_hash(key);
        if self.latest.len() >= self.capacity && !self.latest.contains_key(&h) {
            return false;
        }
        let e = self.latest.entry(h).or_insert(offset);
        *e = (*e).max(offset);
        true
    }

    /// The latest offset mapped for `key`.
    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(&key_hash(key)).copied()
    }

    /// Maps every keyed record of `batch`. Returns false (having mapped
    /// nothing of it) if the batch's new keys do not fit, so the map
    /// always covers whole batches.
    pub fn put_batch(&mut self, batch: &[u8]) -> Result<bool, BatchError> {
        let header = BatchHeader::parse(batch).ok_or(BatchError::TooShort(batch.len()))?;
        if header.is_control() {
            return Ok(true);
        }
        let mut keys: Vec<(u128, i64)> = Vec::with_capacity(header.record_count.max(0) as usize);
        for_each_key(batch, |offset, key, _| {
            if let Some(k) = key {
                keys.push((key_hash(k), offset));
            }
        })
        .ok_or(BatchError::UndecodableRecords(DECODED_BYTES_MAX))?;
        let new_keys = keys
            .iter()
            .filter(|(h, _)| !self.latest.contains_key(h))
            .count();
        if self.latest.len() + new_keys > self.capacity {
            return Ok(false);
        }
        for (h, offset) in keys {
            let e = self.latest.entry(h).or_insert(offset);
            *e = (*e).max(offset);
        }
        Ok(true)
    }
}

/// When the cleaner runs and how long tombstones live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanClock {
    pub now_ms: i64,
    /// `delete.retention.ms`.
    pub delete_retention_ms: i64,
}

/// What cleaning makes of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleaned {
    /// Kept byte for byte.
    Unchanged,
    /// Replaced by these bytes (fewer records, or a delete horizon set,
    /// or an empty batch kept for its producer).
    Rebuilt(Vec<u8>),
    /// Removed from the log.
    Removed,
}

/// Cleans one batch that lies below the end of the section `map` covers.
/// `last_of_producer`: the batch is the last one of a producer whose state
/// the log must keep, so it stays (empty if need be).
pub fn clean_batch(
    batch: &[u8],
    map: &OffsetMap,
    clock: CleanClock,
    last_of_producer: bool,
) -> Result<Cleaned, BatchError> {
    let header = BatchHeader::parse(batch).ok_or(BatchError::TooShort(batch.len()))?;
    if header.is_control() {
        return Ok(Cleaned::Unchanged);
    }
    let horizon = header.delete_horizon();
    let tombstones_expired = horizon.is_some_and(|h| clock.now_ms >= h);
    let keep = |offset: i64, key: Option<&[u8]>, has_value: bool| {
        let Some(key) = key else {
            return false;
        };
        let latest = map.latest(key).is_none_or(|o| offset >= o);
        latest && (has_value || !tombstones_expired)
    };
    // Decide from the keys read in place; decode the records only when the
    // batch must be rebuilt.
    let (mut all_kept, mut any_tombstone_kept, mut count) = (true, false, 0usize);
    for_each_key(batch, |offset, key, has_value| {
        count += 1;
        if keep(offset, key, has_value) {
            any_tombstone_kept |= !has_value;
        } else {
            all_kept = false;
        }
    })
    .ok_or(BatchError::UndecodableRecords(DECODED_BYTES_MAX))?;
    if count > 0 && all_kept && (!any_tombstone_kept || horizon.is_some()) {
        return Ok(Cleaned::Unchanged);
    }
    let records = decode_records(batch).ok_or(BatchError::UndecodableRecords(DECODED_BYTES_MAX))?;
    let total = records.len();
    let kept: Vec<_> = records
        .into_iter()
        .filter(|r| keep(r.offset, r.key.as_deref(), r.value.is_some()))
        .collect();
    let keeps_tombstones = kept.iter().any(|r| r.value.is_none());
    // The first pass that keeps a tombstone starts its delete.retention.ms.
    let new_horizon = (keeps_tombstones && horizon.is_none())
        .then(|| clock.now_ms.saturating_add(clock.delete_retention_ms));
    if kept.is_empty() {
        return Ok(if last_of_producer && header.has_producer_id() {
            if total == 0 {
                Cleaned::Unchanged
            } else {
                Cleaned::Rebuilt(rebuild_batch(&header, &[], None))
            }
        } else {
            Cleaned::Removed
        });
    }
    if kept.len() == total && new_horizon.is_none() {
        return Ok(Cleaned::Unchanged);
    }
    // A batch keeps a horizon it has while it still holds tombstones.
    let stamp = new_horizon.or(horizon.filter(|_| keeps_tombstones));
    Ok(Cleaned::Rebuilt(rebuild_batch(&header, &kept, stamp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardlog_wire::records::{BatchBuilder, Record};

    const T0: i64 = 1_700_000_000_000;

    /// A stored batch at `base_offset` of (key, value) records.
    fn batch(base_offset: i64, records: &[(Option<&str>, Option<&str>)]) -> Vec<u8> {
        let mut b = BatchBuilder::new(T0).idempotent(3, 0, base_offset as i32);
        for (i, (k, v)) in records.iter().enumerate() {
            b.push(&Record {
                timestamp_delta: i as i64,
                key: k.map(|k| k.as_bytes().to_vec()),
                value: v.map(|v| v.as_bytes().to_vec()),
                headers: Vec::new(),
            });
        }
        let mut out = b.build();
        let mut h = BatchHeader::parse(&out).unwrap();
        h.base_offset = base_offset;
        h.write(&mut out);
        shardlog_wire::batch::seal(&mut out);
        out
    }

    fn values(b: &[u8]) -> Vec<(i64, Option<String>, Option<String>)> {
        decode_records(b)
            .unwrap()
            .into_iter()
            .map(|r| {
                let s = |v: Option<Vec<u8>>| v.map(|v| String::from_utf8(v).unwrap());
                (r.offset, s(r.key), s(r.value))
            })
            .collect()
    }

    // Proves superseded and keyless records go, the latest stay at their
    // offsets, and an untouched batch stays byte for byte.
    #[test]
    fn keeps_the_latest_record_per_key() {
        let first = batch(
            0,
            &[
                (Some("a"), Some("1")),
                (None, Some("x")),
                (Some("b"), Some("2")),
            ],
        );
        let second = batch(3, &[(Some("a"), Some("3")), (Some("c"), Some("4"))]);
        let mut map = OffsetMap::with_memory(1 << 20);
        assert!(map.put_batch(&first).unwrap());
        assert!(map.put_batch(&second).unwrap());
        let clock = CleanClock {
            now_ms: T0,
            delete_retention_ms: 1000,
        };
        let Cleaned::Rebuilt(b) = clean_batch(&first, &map, clock, false).unwrap() else {
            panic!("rebuilt");
        };
        assert_eq!(values(&b), [(2, Some("b".into()), Some("2".into()))]);
        assert_eq!(BatchHeader::parse(&b).unwrap().last_offset(), 2);
        assert_eq!(
            clean_batch(&second, &map, clock, false).unwrap(),
            Cleaned::Unchanged
        );
    }

    // Proves a tombstone is kept with a delete horizon on the first pass
    // and removed by a pass after the horizon; a batch left with nothing
    // goes unless it is its producer's last.
    #[test]
    fn tombstones_live_for_delete_retention_ms() {
        let b = batch(10, &[(Some("k"), None)]);
        let mut map = OffsetMap::with_memory(1 << 20);
        map.put_batch(&b).unwrap();
        let at = |now_ms| CleanClock {
            now_ms,
            delete_retention_ms: 1000,
        };
        let Cleaned::Rebuilt(stamped) = clean_batch(&b, &map, at(T0), false).unwrap() else {
            panic!("stamped");
        };
        let h = BatchHeader::parse(&stamped).unwrap();
        assert_eq!(h.delete_horizon(), Some(T0 + 1000));
        assert_eq!(values(&stamped), [(10, Some("k".into()), None)]);
        assert_eq!(decode_records(&stamped).unwrap()[0].timestamp, T0);
        assert_eq!(
            clean_batch(&stamped, &map, at(T0 + 999), false).unwrap(),
            Cleaned::Unchanged
        );
        assert_eq!(
            clean_batch(&stamped, &map, at(T0 + 1000), false).unwrap(),
            Cleaned::Removed
        );
        let Cleaned::Rebuilt(empty) = clean_batch(&stamped, &map, at(T0 + 1000), true).unwrap()
        else {
            panic!("kept empty for its producer");
        };
        let h = BatchHeader::parse(&empty).unwrap();
        assert_eq!((h.record_count, h.base_offset, h.producer_id), (0, 10, 3));
    }

    // Proves the map refuses a batch whose new keys do not fit, whole.
    #[test]
    fn the_map_is_bounded() {
        let mut map = OffsetMap::with_memory(3 * OFFSET_MAP_ENTRY_BYTES);
        assert_eq!(map.capacity(), 2);
        assert!(map.put_batch(&batch(0, &[(Some("a"), Some("1"))])).unwrap());
        assert!(!map
            .put_batch(&batch(1, &[(Some("b"), Some("1")), (Some("c"), Some("1"))]))
            .unwrap());
        assert_eq!(map.len(), 1);
        assert!(map
            .put_batch(&batch(3, &[(Some("a"), Some("2")), (Some("b"), Some("1"))]))
            .unwrap());
        assert_eq!(map.latest(b"a"), Some(3));
        assert_eq!(map.latest(b"c"), None);
    }
}
