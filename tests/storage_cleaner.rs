//! The log cleaner on a real partition log (O_DIRECT segments, recovery):
//! a pass keeps every key's latest record at its offset and leaves one
//! record per key in the cleaned segments, the next pass merges small
//! cleaned segments, and a crash after each step of each group's swap
//! (the `.cleaned` file written, renamed to `.swap`, the replaced files
//! removed, renamed over the first segment), or with half a `.cleaned`
//! file, reopens to a log whose reads succeed across the offset gaps and
//! give every key's latest value.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use common::*;
use shardlog::record::batch::BatchHeader;
use shardlog::storage::{CleanParams, LogConfig, PartitionLog, StopAt, SwapStep};

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
    keyed_batch(round as i64, "")
}

async fn view(log: &PartitionLog) -> View {
    read_records(log, log.offsets().high_watermark)
        .await
        .into_iter()
        .map(|(o, k, v)| (o, k.unwrap(), v))
        .collect()
}

/// A read at each record's offset starts with the batch holding it (what
/// the offset index leads to).
async fn check_reads_at(log: &PartitionLog, v: &View) {
    for (o, _, _) in v {
        let r = log.read(*o, 1024).await.expect("read");
        let h = BatchHeader::parse(r.batches.first().expect("a batch")).unwrap();
        assert!(
            h.base_offset <= *o && *o <= h.last_offset(),
            "a read at {o} starts at batch {}..={}",
            h.base_offset,
            h.last_offset()
        );
    }
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

fn unclean(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("clean-shutdown"));
}

fn leftovers(dir: &Path) -> Vec<String> {
    dir_files(dir)
        .into_keys()
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

/// Time for a dropped log's detached tasks to finish their last I/O.
const CRASH_SETTLE: std::time::Duration = std::time::Duration::from_millis(30);

/// From the files `state`, runs a pass that stops after each step of each
/// group's swap in turn, drops the log there as a crash would, reopens:
/// every key's latest value is there, offsets increase, no `.cleaned` or
/// `.swap` file is left; a crash before the commit point leaves the log as
/// it was (`uncleaned`), and a pass after the reopen ends where an
/// uninterrupted pass does (`cleaned`). Returns how many crash points it
/// visited.
async fn crash_at_every_step(
    shard: &shardlog::storage::ShardStorage,
    dir: &Path,
    state: &BTreeMap<String, Vec<u8>>,
    uncleaned: &View,
    cleaned: &View,
    rounds: usize,
) -> usize {
    let steps = [
        SwapStep::Written,
        SwapStep::Committed,
        SwapStep::OldRemoved,
        SwapStep::Renamed,
    ];
    let mut visited = 0;
    for group in 0.. {
        let mut reached = false;
        for step in steps {
            restore_files(dir, state);
            let log = PartitionLog::open(dir, config(), shard).await.unwrap();
            let out = log
                .clean_stopping_at(&params(), HashSet::new(), StopAt { group, step })
                .await
                .unwrap();
            drop(log);
            glommio::timer::sleep(CRASH_SETTLE).await;
            if out.stopped_at.is_none() {
                break;
            }
            assert_eq!(out.stopped_at, Some(step));
            reached = true;
            visited += 1;
            let log = PartitionLog::open(dir, config(), shard).await.unwrap();
            let v = view(&log).await;
            check_latest(&v, rounds);
            check_reads_at(&log, &v).await;
            if group == 0 && step == SwapStep::Written {
                assert_eq!(&v, uncleaned, "group {group}: {step:?}");
            }
            assert!(leftovers(dir).is_empty(), "group {group}: {step:?}");
            log.clean(&params(), HashSet::new()).await.unwrap();
            assert_eq!(
                &view(&log).await,
                cleaned,
                "group {group}: {step:?}, then a pass"
            );
            log.close().await.unwrap();
        }
        if !reached {
            break;
        }
    }
    visited
}

// Proves a cleaner pass compacts the closed segments (one record per key
// left below the active segment) without losing any key's latest value, a
// second pass merges the small cleaned segments into one, and a crash at
// every step of every group's swap in both passes (and a half-written
// `.cleaned` file) reopens to a readable log with every key's latest
// value, no unfinished file left, the log unchanged by a crash before the
// commit point and cleaned to the same view by the next pass.
#[test]
fn cleaning_merging_and_crashes_during_swaps() {
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
        let before = dir_files(&dir);
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        let segments_before = log.segment_count();
        assert!(segments_before > 3, "{segments_before} segments");
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
        log.close().await.unwrap();
        let after_first = dir_files(&dir);

        // More writes make the log dirty again; the second pass merges what
        // the first left small.
        let more = 45;
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        for r in rounds..more {
            log.append(&round_batch(r)).await.unwrap();
        }
        log.close().await.unwrap();
        let dirty_again = dir_files(&dir);
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        let segments_dirty = log.segment_count();
        let unmerged = view(&log).await;
        let merge = log.clean(&params(), HashSet::new()).await.unwrap();
        assert!(merge.segments_merged >= 2, "{merge:?}");
        assert!(
            log.segment_count() < segments_dirty,
            "{} segments after {merge:?}, {segments_dirty} before",
            log.segment_count()
        );
        let merged = view(&log).await;
        check_latest(&merged, more);
        let active_base = *log.segment_base_offsets().last().unwrap();
        let below: Vec<_> = merged.iter().filter(|r| r.0 < active_base).collect();
        let keys: HashSet<_> = below.iter().map(|r| r.1.clone()).collect();
        assert_eq!(
            below.len(),
            keys.len(),
            "one record per key below {active_base}"
        );
        // A third pass has nothing left to do.
        let again = log.clean(&params(), HashSet::new()).await.unwrap();
        assert_eq!(again.segments_cleaned, 0, "{again:?}");
        log.close().await.unwrap();
        let reopened = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        assert_eq!(view(&reopened).await, merged, "after a clean reopen");
        reopened.close().await.unwrap();

        // A crash at every step of every swap of both passes.
        let first = crash_at_every_step(&shard, &dir, &before, &uncleaned, &cleaned, rounds).await;
        assert!(first >= 8, "{first} crash points in the first pass");
        let second =
            crash_at_every_step(&shard, &dir, &dirty_again, &unmerged, &merged, more).await;
        assert!(second >= 4, "{second} crash points in the second pass");
        eprintln!(
            "segments: {segments_before} written, {segments_dirty} before merging, \
             {merge:?}; crash points: {first} in the first pass, {second} in the second"
        );

        // A half-written `.cleaned` file beside the originals.
        let rewritten: Vec<String> = after_first
            .iter()
            .filter(|(n, b)| n.ends_with(".log") && before.get(*n) != Some(*b))
            .map(|(n, _)| n.clone())
            .collect();
        assert!(!rewritten.is_empty());
        for name in &rewritten {
            let new_log = &after_first[name];
            let mut s = before.clone();
            s.insert(
                format!("{name}.cleaned"),
                new_log[..new_log.len() / 2].to_vec(),
            );
            restore_files(&dir, &s);
            unclean(&dir);
            let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
            assert_eq!(view(&log).await, uncleaned, "{name}: half a .cleaned file");
            log.close().await.unwrap();
            assert!(leftovers(&dir).is_empty(), "{name}: {:?}", leftovers(&dir));
        }
    });
}
