//! Truncating a real partition log (O_DIRECT segments, recovery) to an
//! offset, as a follower will before it fetches from a new leader
//! (KIP-101/KIP-279), Kafka's `truncateTo`: every batch that ends at or
//! after the offset goes, whole; segments above the cut go; the log takes
//! appends at its new end and reopens to the same records. A crash after
//! each step of a truncation leaves a prefix of the log at least as long
//! as the target, which truncating again cuts to the target.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use shardlog::storage::{truncate_files, LogConfig, PartitionLog, TruncateStop};

/// Every record read from the log's start: (offset, value without its
/// padding).
type View = Vec<(i64, String)>;

const BATCHES: i64 = 40;
const PER_BATCH: i64 = 10;
const END: i64 = BATCHES * PER_BATCH;
/// A file the log's owner keeps keyed to the log's end.
const OWNED: &str = "producer-state.snapshot";

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8192,
        index_interval_bytes: 1024,
        preallocate_bytes: 64 << 10,
        // The records are stamped in 1970: no time-based retention.
        retention_ms: -1,
        ..LogConfig::default()
    }
}

fn batch(round: i64, tag: &str) -> Vec<u8> {
    keyed_batch(round, tag)
}

async fn view(log: &PartitionLog) -> View {
    read_records(log, log.offsets().log_end_offset)
        .await
        .into_iter()
        .map(|(o, _, v)| {
            let value = String::from_utf8(v.unwrap()).unwrap();
            (o, value.trim_end_matches('.').to_string())
        })
        .collect()
}

/// Opens a log in `dir`, writes the BATCHES batches, closes it and puts
/// the owner's snapshot beside it; returns the records as read.
async fn written_log(shard: &shardlog::storage::ShardStorage, dir: &Path) -> View {
    let log = PartitionLog::open(dir, config(), shard).await.unwrap();
    for round in 0..BATCHES {
        log.append(&batch(round, "")).await.unwrap();
    }
    let full = view(&log).await;
    assert_eq!(full.len() as i64, END);
    log.close().await.unwrap();
    drop(log);
    std::fs::write(dir.join(OWNED), b"snapshot at the old end").unwrap();
    full
}

fn segment_bases(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = dir_files(dir)
        .keys()
        .filter_map(|n| n.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

/// Where a truncation to `target` leaves the log's end: the start of the
/// batch holding it, or the old end.
fn cut_end(target: i64) -> i64 {
    if target >= END {
        END
    } else {
        target / PER_BATCH * PER_BATCH
    }
}

// Proves truncation on a closed-and-reopened log at every kind of target:
// the start, a batch boundary, the middle of a batch (the batch goes
// whole), a segment's base, inside an earlier closed segment, the last
// record, the end and beyond (nothing changes): the log then ends at the
// cut, holds exactly the records below it, has no segment above it and no
// indexes of the cut segment on disk, its owner's snapshot emptied (or
// untouched when nothing was cut); it takes appends at the new end, and a
// clean reopen shows the same records.
#[test]
fn truncation_to_every_kind_of_offset() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir: PathBuf = data.join("t-0");
        let full = written_log(&shard, &dir).await;
        let state = dir_files(&dir);
        let bases = segment_bases(&dir);
        assert!(bases.len() >= 5, "{bases:?}");
        let targets = [
            0,
            10,
            55,
            bases[2],
            bases[2] + 3,
            bases[1] + 1,
            END - 1,
            END,
            END + 100,
        ];
        for target in targets {
            restore_files(&dir, &state);
            let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
            let log = log
                .truncate_to(target, &[OWNED], config(), &shard)
                .await
                .unwrap();
            let end = cut_end(target);
            assert_eq!(log.offsets().log_end_offset, end, "target {target}");
            let kept: View = full.iter().filter(|r| r.0 < end).cloned().collect();
            assert_eq!(view(&log).await, kept, "target {target}");
            let after = dir_files(&dir);
            if end < END {
                assert!(after[OWNED].is_empty(), "target {target}: snapshot emptied");
                let last = *segment_bases(&dir).last().unwrap();
                assert!(last <= end, "target {target}: segment {last} above the cut");
                assert!(
                    !after.contains_key(&format!("{last:020}.index")),
                    "target {target}: the cut segment's index is gone"
                );
            } else {
                assert_eq!(after[OWNED], state[OWNED], "target {target}: nothing cut");
            }
            // Appends go on at the new end; a clean reopen agrees.
            let t = log.append(&batch(1000, "after-")).await.unwrap();
            assert_eq!(t.base_offset, end, "target {target}");
            let mut expected = kept.clone();
            expected.extend(view(&log).await.into_iter().filter(|r| r.0 >= end));
            assert_eq!(expected.len(), kept.len() + PER_BATCH as usize);
            log.close().await.unwrap();
            drop(log);
            let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
            assert_eq!(view(&log).await, expected, "target {target}, reopened");
            log.close().await.unwrap();
        }
    });
}

// Proves a crash after each step of a truncation (the marker and the
// owner's snapshot emptied; each segment above the cut removed, from the
// last down) reopens to a prefix of the log that is no shorter than the
// cut, at a batch boundary, with every record it keeps as written; a
// truncation after the reopen then ends exactly at the cut.
#[test]
fn crashes_during_truncation_leave_a_prefix() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir: PathBuf = data.join("t-0");
        let full = written_log(&shard, &dir).await;
        let state = dir_files(&dir);
        let bases = segment_bases(&dir);
        let target = bases[1] + 15;
        let above = bases.iter().filter(|&&b| b > target).count();
        assert!(above >= 3, "{bases:?}");
        let mut stops = vec![TruncateStop::Emptied];
        stops.extend((1..=above).map(TruncateStop::Removed));
        let mut ends = Vec::new();
        for stop in stops {
            restore_files(&dir, &state);
            let cut = truncate_files(&dir, target, &[OWNED], 64 << 10, Some(stop))
                .await
                .unwrap();
            assert!(cut);
            assert!(dir_files(&dir)[OWNED].is_empty(), "{stop:?}");
            let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
            let end = log.offsets().log_end_offset;
            assert!(
                cut_end(target) <= end && end <= END && end % PER_BATCH == 0,
                "{stop:?}: end {end}"
            );
            let kept: View = full.iter().filter(|r| r.0 < end).cloned().collect();
            assert_eq!(view(&log).await, kept, "{stop:?}");
            ends.push(end);
            let log = log
                .truncate_to(target, &[OWNED], config(), &shard)
                .await
                .unwrap();
            assert_eq!(log.offsets().log_end_offset, cut_end(target), "{stop:?}");
            let kept: View = full
                .iter()
                .filter(|r| r.0 < cut_end(target))
                .cloned()
                .collect();
            assert_eq!(view(&log).await, kept, "{stop:?}, truncated again");
            log.close().await.unwrap();
        }
        // Each step removed more: the ends seen after the crashes shrink.
        assert!(ends.windows(2).all(|w| w[0] > w[1]), "{ends:?}");
    });
}

// Proves a truncation below every segment (the segments before it deleted
// by DeleteRecords) empties the log and starts it at the offset, Kafka's
// truncateFullyAndStartAt: start and end are the offset, a reopen agrees,
// and the next append lands there.
#[test]
fn truncation_below_every_segment_starts_afresh() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir: PathBuf = data.join("t-0");
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        for round in 0..BATCHES {
            log.append(&batch(round, "")).await.unwrap();
        }
        let bases = log.segment_base_offsets();
        log.delete_records_before(bases[2] + 5).await.unwrap();
        assert_eq!(log.segment_base_offsets()[0], bases[2]);
        let target = bases[1] + 2;
        let log = log
            .truncate_to(target, &[OWNED], config(), &shard)
            .await
            .unwrap();
        let offsets = log.offsets();
        assert_eq!(
            (offsets.log_start_offset, offsets.log_end_offset),
            (target, target)
        );
        assert!(view(&log).await.is_empty());
        log.close().await.unwrap();
        drop(log);
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        assert_eq!(log.offsets().log_start_offset, target);
        let t = log.append(&batch(1000, "after-")).await.unwrap();
        assert_eq!(t.base_offset, target);
        assert_eq!(view(&log).await.len(), PER_BATCH as usize);
        log.close().await.unwrap();
    });
}
