//! A model-based property test of the log cleaner's batch rules
//! (`shardlog::record::clean`): random keyed writes, tombstones and keyless
//! records in random batches, cleaner passes over everything written so
//! far at advancing times, more writes between passes. After every pass,
//! reading the log from the start must give, for every key, its latest
//! value at its original offset, a tombstone until delete.retention.ms
//! after the first pass that kept it, offsets strictly increasing, every
//! record identical to the one written at its offset, one record per key
//! (each pass maps the whole log), and every batch's last offset
//! unchanged.

use std::collections::BTreeMap;

use proptest::prelude::*;
use shardlog::record::clean::{clean_batch, CleanClock, Cleaned, OffsetMap};
use shardlog::record::records::{decode_records, BatchBuilder, Record};
use shardlog::record::{BatchHeader, Compression};

const T0: i64 = 1_700_000_000_000;

/// Every record ever written, by offset: (key, value).
type Written = BTreeMap<i64, (Option<Vec<u8>>, Option<Vec<u8>>)>;
const DELETE_RETENTION_MS: i64 = 100;

#[derive(Debug, Clone)]
enum Step {
    /// A batch of (key, value) records; key None: keyless, value None: a
    /// tombstone.
    Write(Vec<(Option<u8>, Option<u16>)>, bool),
    /// A cleaner pass this many ms after the last.
    Clean(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (
            prop::collection::vec(
                (prop::option::weighted(0.95, 0u8..6), prop::option::weighted(0.8, any::<u16>())),
                1..6
            ),
            any::<bool>()
        )
            .prop_map(|(r, lz4)| Step::Write(r, lz4)),
        1 => (0i64..150).prop_map(Step::Clean),
    ]
}

fn build(base: i64, records: &[(Option<u8>, Option<u16>)], lz4: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(T0 + base).idempotent(1, 0, base as i32);
    for (k, v) in records {
        b.push(&Record {
            timestamp_delta: 0,
            key: k.map(|k| vec![b'k', k]),
            value: v.map(|v| v.to_be_bytes().to_vec()),
            headers: Vec::new(),
        });
    }
    let mut out = b.build_compressed(if lz4 {
        Compression::Lz4
    } else {
        Compression::None
    });
    let mut h = BatchHeader::parse(&out).unwrap();
    h.base_offset = base;
    h.write(&mut out);
    shardlog::record::records::rebuild_batch(&h, &decode_records(&out).unwrap(), None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn cleaning_keeps_the_latest_value_of_every_key(steps in prop::collection::vec(step(), 1..40)) {
        let mut log: Vec<Vec<u8>> = Vec::new();
        let mut written = Written::new();
        // Each batch's last offset, by base offset.
        let mut last_offsets: BTreeMap<i64, i64> = BTreeMap::new();
        // Tombstones: offset -> when the first pass kept it.
        let mut first_kept: BTreeMap<i64, i64> = BTreeMap::new();
        let mut next = 0i64;
        let mut now = T0;
        for step in steps {
            match step {
                Step::Write(records, lz4) => {
                    let b = build(next, &records, lz4);
                    for r in decode_records(&b).unwrap() {
                        written.insert(r.offset, (r.key, r.value));
                    }
                    last_offsets.insert(next, next + records.len() as i64 - 1);
                    next += records.len() as i64;
                    log.push(b);
                }
                Step::Clean(after) => {
                    now += after;
                    let mut map = OffsetMap::with_memory(1 << 20);
                    for b in &log {
                        prop_assert!(map.put_batch(b).unwrap());
                    }
                    let clock = CleanClock { now_ms: now, delete_retention_ms: DELETE_RETENTION_MS };
                    let n = log.len();
                    let mut cleaned = Vec::new();
                    for (i, b) in log.drain(..).enumerate() {
                        match clean_batch(&b, &map, clock, i == n - 1).unwrap() {
                            Cleaned::Unchanged => cleaned.push(b),
                            Cleaned::Rebuilt(r) => cleaned.push(r),
                            Cleaned::Removed => {}
                        }
                    }
                    log = cleaned;
                    for b in &log {
                        for r in decode_records(b).unwrap() {
                            if r.value.is_none() {
                                first_kept.entry(r.offset).or_insert(now);
                            }
                        }
                    }
                    check(&log, &written, &last_offsets, &first_kept, now)?;
                }
            }
        }
    }
}

fn check(
    log: &[Vec<u8>],
    written: &Written,
    last_offsets: &BTreeMap<i64, i64>,
    first_kept: &BTreeMap<i64, i64>,
    now: i64,
) -> Result<(), TestCaseError> {
    let mut read: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    let mut prev = -1;
    for b in log {
        let h = BatchHeader::parse(b).unwrap();
        prop_assert_eq!(Some(&h.last_offset()), last_offsets.get(&h.base_offset));
        for r in decode_records(b).unwrap() {
            prop_assert!(r.offset > prev, "offsets increase");
            prev = r.offset;
            let (k, v) = &written[&r.offset];
            prop_assert_eq!(&r.key, k);
            prop_assert_eq!(&r.value, v);
            let key = r.key.clone().expect("keyless records are cleaned away");
            // Every pass maps the whole log: one record per key is left.
            prop_assert!(
                read.insert(key, (r.offset, r.value)).is_none(),
                "a superseded record stayed"
            );
        }
    }
    // The model: each key's latest write.
    let mut latest: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    for (o, (k, v)) in written {
        if let Some(k) = k {
            latest.insert(k.clone(), (*o, v.clone()));
        }
    }
    for (key, (offset, value)) in &latest {
        match (value, read.get(key)) {
            (Some(_), got) => prop_assert_eq!(got, Some(&(*offset, value.clone()))),
            (None, Some(got)) => prop_assert_eq!(got, &(*offset, None)),
            (None, None) => {
                // Gone: only once a pass ran delete.retention.ms after the
                // first pass that kept it.
                let kept = first_kept.get(offset);
                prop_assert!(
                    kept.is_some_and(|t| now >= t + DELETE_RETENTION_MS),
                    "tombstone at {} gone too early (kept at {:?}, now {})",
                    offset,
                    kept,
                    now
                );
            }
        }
    }
    Ok(())
}
