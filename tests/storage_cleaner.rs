//! The log cleaner on a real partition log (O_DIRECT segments, recovery):
//! a pass keeps every key's latest record at its offset and leaves one
//! record per key in the cleaned segments; and a crash at each step of a
//! segment swap (a partial or whole `.cleaned` file, the old indexes
//! removed, the new file renamed in without indexes) reopens to a log
//! whose reads succeed across the offset gaps and give every key's latest
//! value.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use common::*;
use shardlog::record::batch::BatchHeader;
use shardlog::record::records::{decode_records, BatchBuilder, Record};
use shardlog::storage::{CleanParams, LogConfig, PartitionLog};

/// Every record read from the log's start: (offset, key, value).
type View = Vec<(i64, Vec<u8>, Option<Vec<u8>>)>;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8192,
        index_interval_bytes: 1024,
        preallocate_bytes: 64 << 10,
        ..LogConfig::default()
    }
}

fn params() -> CleanParams {
    CleanParams {
        dedupe_buffer_bytes: 1 << 20,
        min_cleanable_dirty_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: 0,
        io_bytes_per_second: f64::MAX,
    }
}

/// Round `round`'s batch: keys k0..k9, value `round:key` padded to 100
/// bytes.
fn round_batch(round: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000 + round as i64);
    for k in 0..10 {
        let mut value = format!("{round}:{k}:").into_bytes();
        value.resize(100, b'.');
        b.push(&Record {
            timestamp_delta: k,
            key: Some(format!("k{k}").into_bytes()),
            value: Some(value),
            headers: Vec::new(),
        });
    }
    b.build()
}

async fn view(log: &PartitionLog) -> View {
    let mut out = Vec::new();
    let mut offset = log.offsets().log_start_offset;
    let end = log.offsets().high_watermark;
    while offset < end {
        let r = log.read(offset, 64 << 10).await.expect("read");
        assert!(
            !r.batches.is_empty(),
            "a read at {offset} below {end} returns a batch"
        );
        for b in r.batches {
            let h = BatchHeader::parse(&b).unwrap();
            for rec in decode_records(&b).unwrap() {
                if rec.offset >= offset {
                    out.push((rec.offset, rec.key.unwrap(), rec.value));
                }
            }
            offset = h.next_offset();
        }
    }
    out
}

/// Checks a view: offsets strictly increase and every key's last record is
/// its latest write (round `rounds - 1`, at the offsets rounds were
/// written).
fn check_latest(v: &View, rounds: usize) {
    let offsets: Vec<i64> = v.iter().map(|r| r.0).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    let mut latest = BTreeMap::new();
    for (o, k, val) in v {
        latest.insert(k.clone(), (*o, val.clone()));
    }
    for k in 0..10 {
        let (o, val) = &latest[&format!("k{k}").into_bytes()];
        let last = rounds - 1;
        assert_eq!(*o, (last * 10 + k) as i64, "k{k}");
        assert!(val
            .as_ref()
            .unwrap()
            .starts_with(format!("{last}:{k}:").as_bytes()));
    }
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn restore(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn unclean(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("clean-shutdown"));
}

// Proves a cleaner pass compacts the closed segments (one record per key
// left below the active segment) without losing any key's latest value,
// and that a crash at every step of a segment swap reopens to a readable
// log with every key's latest value, the unfinished `.cleaned` file gone.
#[test]
fn cleaning_and_crashes_during_swaps() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir: PathBuf = data.join("t-0");
        let rounds = 30;
        {
            let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
            for r in 0..rounds {
                log.append(&round_batch(r)).await.unwrap();
            }
            log.close().await.unwrap();
        }
        let before = files(&dir);
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        assert!(log.segment_count() > 3, "{} segments", log.segment_count());
        let uncleaned = view(&log).await;
        check_latest(&uncleaned, rounds);
        let out = log.clean(&params(), HashSet::new()).await.unwrap();
        assert!(out.segments_cleaned >= 2, "{out:?}");
        let cleaned = view(&log).await;
        check_latest(&cleaned, rounds);
        let active_base = *log.segment_base_offsets().last().unwrap();
        let below: Vec<_> = cleaned.iter().filter(|r| r.0 < active_base).collect();
        let keys: HashSet<_> = below.iter().map(|r| r.1.clone()).collect();
        assert_eq!(
            below.len(),
            keys.len(),
            "one record per key below {active_base}"
        );
        assert!(cleaned.len() < uncleaned.len());
        // A second pass has nothing left to do.
        let again = log.clean(&params(), HashSet::new()).await.unwrap();
        assert_eq!(again.segments_cleaned, 0, "{again:?}");
        log.close().await.unwrap();
        let after = files(&dir);
        let reopened = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        assert_eq!(view(&reopened).await, cleaned, "after a clean reopen");
        reopened.close().await.unwrap();

        // Crash states, segment by segment among those the pass rewrote.
        let rewritten: Vec<String> = after
            .iter()
            .filter(|(n, b)| n.ends_with(".log") && before.get(*n) != Some(*b))
            .map(|(n, _)| n.clone())
            .collect();
        assert!(!rewritten.is_empty());
        for name in &rewritten {
            let stem = name.trim_end_matches(".log");
            let indexes = [format!("{stem}.index"), format!("{stem}.timeindex")];
            let new_log = after[name].clone();
            let mut states: Vec<(&str, BTreeMap<String, Vec<u8>>)> = Vec::new();
            // 1. A .cleaned file, partly or wholly written.
            for cut in [new_log.len() / 2, new_log.len()] {
                let mut s = before.clone();
                s.insert(format!("{name}.cleaned"), new_log[..cut].to_vec());
                states.push(("cleaned file written", s));
            }
            // 2. The old indexes removed.
            let mut s = before.clone();
            s.insert(format!("{name}.cleaned"), new_log.clone());
            for i in &indexes {
                s.remove(i);
            }
            states.push(("old indexes removed", s));
            // 3. Renamed in, no new indexes yet.
            let mut s = before.clone();
            s.insert(name.clone(), new_log.clone());
            for i in &indexes {
                s.remove(i);
            }
            states.push(("renamed in", s));
            for (step, state) in states {
                restore(&dir, &state);
                unclean(&dir);
                let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
                let v = view(&log).await;
                check_latest(&v, rounds);
                if step != "renamed in" {
                    assert_eq!(v, uncleaned, "{name}: {step}");
                }
                log.close().await.unwrap();
                let left: Vec<String> = files(&dir)
                    .into_keys()
                    .filter(|n| n.ends_with(".cleaned"))
                    .collect();
                assert!(left.is_empty(), "{name}: {step}: {left:?}");
            }
        }
    });
}
