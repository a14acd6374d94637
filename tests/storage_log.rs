//! Storage engine tests on a real file system: round trips across segment
//! rolls, index lookups, recovery from torn and damaged tails, retention,
//! group commit and timestamps.

mod common;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::*;
use shardlog::error_code::ErrorCode;
use shardlog::handler::errors::ToErrorCode;
use shardlog::record::batch::BatchHeader;
use shardlog::record::records::BatchBuilder;
use shardlog::record::{Compression, TimestampType};
use shardlog::storage::{
    DurableWrites, LogConfig, PartitionLog, ReadError, ShardStorage, ShardStorageConfig,
    SystemClock,
};

fn small_segments(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 1024,
        preallocate_bytes: 64 << 10,
        ..LogConfig::default()
    }
}

/// Appends `count` batches of varying shape; returns them with their base
/// offsets.
async fn fill(log: &PartitionLog, count: u64, seed: u64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..count {
        let records = 1 + ((i * 7 + seed) % 5) as usize;
        let value = 10 + ((i * 131 + seed) % 900) as usize;
        let b = batch(seed * 100_000 + i, records, value, 1_000 + i as i64);
        let t = log.append(&b).await.expect("append");
        out.push((t.base_offset, b));
    }
    out
}

/// Reads every batch from `from` to the high watermark, one read at a time.
async fn read_all(log: &PartitionLog, from: i64, max_bytes: usize) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    let mut offset = from;
    let end = log.offsets().high_watermark;
    while offset < end {
        let r = log.read(offset, max_bytes).await.expect("read");
        assert!(
            !r.batches.is_empty(),
            "a read below the high watermark returns a batch"
        );
        for b in r.batches {
            let h = BatchHeader::parse(&b).unwrap();
            assert!(h.base_offset <= offset || h.base_offset == offset);
            offset = h.next_offset();
            out.push(b);
        }
    }
    out
}

fn assert_same(stored: &[bytes::Bytes], sent: &[(i64, Vec<u8>)]) {
    assert_eq!(stored.len(), sent.len(), "batch count");
    for (got, (base, want)) in stored.iter().zip(sent) {
        let h = BatchHeader::parse(got).unwrap();
        assert_eq!(h.base_offset, *base);
        assert_eq!(payload(got), payload(want), "batch at {base} differs");
    }
}

fn log_file(dir: &Path) -> PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

// Proves batches read back identically across many segment rolls, from the
// cache and from disk, and again after a clean reopen.
#[test]
fn round_trip_across_segment_rolls() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        for cache in [0usize, 64 << 20] {
            let shard = shard(&data, cache).await;
            let dir = data.join(format!("roll-{cache}"));
            let log = PartitionLog::open(&dir, small_segments(32 << 10), &shard)
                .await
                .unwrap();
            let sent = fill(&log, 300, 1).await;
            assert!(log.segment_count() > 10, "expected many rolls");
            for max in [1usize, 5000, 1 << 20] {
                assert_same(&read_all(&log, 0, max).await, &sent);
            }
            log.close().await.unwrap();
            let log = PartitionLog::open(&dir, small_segments(32 << 10), &shard)
                .await
                .unwrap();
            assert_eq!(
                log.offsets().log_end_offset,
                sent.last()
                    .map(|(b, v)| b + BatchHeader::parse(v).unwrap().record_count as i64)
                    .unwrap()
            );
            assert_same(&read_all(&log, 0, 7000).await, &sent);
            // Appends continue after the reopen, in a partly filled block.
            let more = fill(&log, 20, 2).await;
            let all: Vec<_> = sent.iter().chain(&more).cloned().collect();
            assert_same(&read_all(&log, 0, 1 << 20).await, &all);
            log.close().await.unwrap();
        }
    });
}

// Proves a read at every offset returns, first, the whole batch containing
// that offset, whether the index entry lands before, on or after it.
#[test]
fn index_lookup_at_every_offset() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir = data.join("idx-0");
        let log = PartitionLog::open(&dir, small_segments(16 << 10), &shard)
            .await
            .unwrap();
        let sent = fill(&log, 120, 3).await;
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, small_segments(16 << 10), &shard)
            .await
            .unwrap();
        let end = log.offsets().log_end_offset;
        for offset in 0..end {
            let r = log.read(offset, 1).await.unwrap();
            assert_eq!(
                r.batches.len(),
                1,
                "at least and at most one batch with max_bytes=1"
            );
            let h = BatchHeader::parse(&r.batches[0]).unwrap();
            assert!(
                h.base_offset <= offset && offset <= h.last_offset(),
                "offset {offset} not in {}..={}",
                h.base_offset,
                h.last_offset()
            );
            let (_, want) = sent.iter().find(|(b, _)| *b == h.base_offset).unwrap();
            assert_eq!(payload(&r.batches[0]), payload(want));
        }
        assert!(log.read(end, 1).await.unwrap().batches.is_empty());
        let err = log.read(end + 1, 1).await.unwrap_err();
        assert_eq!(err.error_code(), ErrorCode::OffsetOutOfRange);
        log.close().await.unwrap();
    });
}

/// Writes `batches` batches, closes the log cleanly and returns the last
/// batch's position and length within the active segment, and the batches.
async fn prepare_log(
    data: &Path,
    name: &str,
    batches: u64,
) -> (PathBuf, u64, u64, Vec<(i64, Vec<u8>)>) {
    let shard = shard(data, 0).await;
    let dir = data.join(name);
    let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
        .await
        .unwrap();
    let sent = fill(&log, batches, 4).await;
    log.close().await.unwrap();
    let last_len = sent.last().unwrap().1.len() as u64;
    let size = std::fs::metadata(log_file(&dir)).unwrap().len();
    (dir, size - last_len, last_len, sent)
}

/// Keeps a pristine copy of a partition directory to restore between cases.
fn snapshot_dir(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn restore_dir(dir: &Path, files: &[(PathBuf, Vec<u8>)]) {
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (p, bytes) in files {
        std::fs::write(p, bytes).unwrap();
    }
}

// Proves that after a crash that cut the active segment at any byte inside
// its last batch, recovery keeps every earlier batch, drops the torn one,
// and the log accepts new appends at the right offset.
#[test]
fn recovery_from_a_cut_at_every_byte_of_the_last_batch() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let (dir, last_pos, last_len, sent) = prepare_log(&data, "cut-0", 30).await;
        let pristine = snapshot_dir(&dir);
        let shard = shard(&data, 0).await;
        let torn_base = sent.last().unwrap().0;
        for cut in last_pos..last_pos + last_len {
            restore_dir(&dir, &pristine);
            // An unclean shutdown: no marker, the file ends mid-batch.
            std::fs::remove_file(dir.join("clean-shutdown")).unwrap();
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(log_file(&dir))
                .unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
                .await
                .unwrap();
            assert_eq!(log.offsets().log_end_offset, torn_base, "cut at {cut}");
            assert_same(&read_all(&log, 0, 1 << 20).await, &sent[..sent.len() - 1]);
            let again = batch(77, 2, 50, 5);
            let t = log.append(&again).await.unwrap();
            assert_eq!(t.base_offset, torn_base);
            log.close().await.unwrap();
        }
    });
}

// Proves a zero-padded tail (preallocated space after a crash) and a
// flipped byte anywhere in a batch are cut off: nothing before the damage
// is lost and nothing damaged is ever served.
#[test]
fn recovery_from_padding_and_flipped_bytes() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let (dir, last_pos, last_len, sent) = prepare_log(&data, "flip-0", 30).await;
        let pristine = snapshot_dir(&dir);
        let shard = shard(&data, 0).await;
        // Zero padding after the last batch.
        std::fs::remove_file(dir.join("clean-shutdown")).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(log_file(&dir))
            .unwrap();
        f.set_len(last_pos + last_len + 3 * 4096).unwrap();
        drop(f);
        let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
            .await
            .unwrap();
        assert_same(&read_all(&log, 0, 1 << 20).await, &sent);
        log.close().await.unwrap();

        // A flipped byte in batch k (every byte of the last batch, and a
        // few spots in a middle batch) loses batch k and what follows only.
        let middle = 12usize;
        let middle_pos: u64 = sent[..middle].iter().map(|(_, b)| b.len() as u64).sum();
        // partitionLeaderEpoch (bytes 12..16) is the one field Kafka's
        // format leaves outside the CRC without a continuity rule, so a
        // flip there cannot be told from the batch alone: it is skipped.
        let mut cases: Vec<(u64, usize)> = (last_pos..last_pos + last_len)
            .filter(|p| !(12..16).contains(&(p - last_pos)))
            .map(|p| (p, sent.len() - 1))
            .collect();
        for delta in [8u64, 16, 17, 21, 40, 61, 100] {
            cases.push((middle_pos + delta, middle));
        }
        for (pos, damaged) in cases {
            restore_dir(&dir, &pristine);
            std::fs::remove_file(dir.join("clean-shutdown")).unwrap();
            let path = log_file(&dir);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[pos as usize] ^= 0x41;
            std::fs::write(&path, &bytes).unwrap();
            let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
                .await
                .unwrap();
            let expected_end = sent[damaged].0;
            // A flip inside baseOffset of the damaged batch is outside the
            // CRC but breaks offset continuity, so it is caught too.
            assert_eq!(log.offsets().log_end_offset, expected_end, "flip at {pos}");
            assert_same(&read_all(&log, 0, 1 << 20).await, &sent[..damaged]);
            log.close().await.unwrap();
        }
    });
}

// Proves retention deletes whole closed segments by size and by time (with
// an injected clock), never the active segment, and advances the log start.
#[test]
fn retention_by_size_and_time() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let clock = manual_clock(1_000_000);
        let shard = shard_with_clock(&data, 1 << 20, Rc::new(clock.clone())).await;

        // By size: retention.bytes = 40 KiB over 8 KiB segments.
        let mut config = small_segments(8 << 10);
        config.retention_ms = -1;
        config.retention_bytes = 40 << 10;
        let dir = data.join("size-0");
        let log = PartitionLog::open(&dir, config, &shard).await.unwrap();
        fill(&log, 100, 5).await;
        let before = log.segment_count();
        assert!(log.size_bytes() > 80 << 10);
        let out = log.enforce_retention().await.unwrap();
        assert!(out.segments_deleted > 0);
        assert!(
            log.size_bytes() >= 40 << 10,
            "stops while the rest stays >= retention.bytes"
        );
        assert!(
            log.size_bytes() < (40 << 10) + (8 << 10) + 4096,
            "deletes down to about retention.bytes"
        );
        assert_eq!(log.segment_count(), before - out.segments_deleted);
        let start = log.offsets().log_start_offset;
        assert_eq!(start, log.segment_base_offsets()[0]);
        assert_eq!(out.log_start_offset, start);
        assert_eq!(
            log.read(start - 1, 1).await.unwrap_err().error_code(),
            ErrorCode::OffsetOutOfRange
        );
        assert!(!log.read(start, 1).await.unwrap().batches.is_empty());
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count();
        assert_eq!(
            files,
            log.segment_count(),
            "deleted segments' files are gone"
        );
        log.close().await.unwrap();

        // By time: retention.ms = 60 s; records stamped with the clock.
        let mut config = small_segments(8 << 10);
        config.retention_ms = 60_000;
        let log = PartitionLog::open(&data.join("time-0"), config, &shard)
            .await
            .unwrap();
        for i in 0..20u64 {
            log.append(&batch(i, 3, 500, 1_000_000)).await.unwrap();
        }
        let first_new = log.offsets().log_end_offset;
        clock.advance(30_000);
        for i in 0..20u64 {
            log.append(&batch(i, 3, 500, 1_030_000)).await.unwrap();
        }
        // Segments holding only the first, older records.
        let bases = log.segment_base_offsets();
        let old_segments = bases.windows(2).filter(|w| w[1] <= first_new).count();
        assert!(old_segments >= 2);
        let total = log.segment_count();
        assert_eq!(
            log.enforce_retention().await.unwrap().segments_deleted,
            0,
            "nothing is 60 s old yet"
        );
        clock.advance(31_000);
        let out = log.enforce_retention().await.unwrap();
        // A segment holding both old and new records stays: its newest
        // record is only 31 s old.
        assert_eq!(out.segments_deleted, old_segments);
        clock.advance(30_000);
        let out = log.enforce_retention().await.unwrap();
        assert_eq!(
            out.segments_deleted,
            total - old_segments - 1,
            "all but the active segment"
        );
        assert_eq!(log.segment_count(), 1);
        assert_eq!(
            log.offsets().log_start_offset,
            log.segment_base_offsets()[0]
        );
        log.close().await.unwrap();
    });
}

// Proves DeleteRecords moves the log start offset, refuses offsets past the
// high watermark, deletes wholly covered segments, and survives a reopen.
#[test]
fn delete_records_moves_log_start() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let dir = data.join("del-0");
        // Records are stamped in 1970: keep time retention out of the way.
        let mut config = small_segments(8 << 10);
        config.retention_ms = -1;
        let log = PartitionLog::open(&dir, config.clone(), &shard)
            .await
            .unwrap();
        let sent = fill(&log, 60, 6).await;
        let end = log.offsets().high_watermark;
        assert_eq!(
            log.delete_records_before(end + 1)
                .await
                .unwrap_err()
                .error_code(),
            ErrorCode::OffsetOutOfRange
        );
        let segments = log.segment_count();
        let target = sent[40].0 + 1; // inside batch 40
        assert_eq!(log.delete_records_before(target).await.unwrap(), target);
        assert!(log.segment_count() < segments);
        assert_eq!(log.offsets().log_start_offset, target);
        assert!(matches!(
            log.read(target - 1, 1).await,
            Err(ReadError::OffsetOutOfRange { .. })
        ));
        let r = log.read(target, 1).await.unwrap();
        assert_eq!(
            BatchHeader::parse(&r.batches[0]).unwrap().base_offset,
            sent[40].0
        );
        log.close().await.unwrap();
        let log = PartitionLog::open(&dir, config, &shard).await.unwrap();
        assert_eq!(log.offsets().log_start_offset, target);
        log.close().await.unwrap();
    });
}

// Proves concurrent acks=all appends share fdatasyncs (group commit) and
// every append acknowledged as durable is present after a crash (the log
// dropped without close) and reopen.
#[test]
fn group_commit_shares_fdatasyncs_and_survives_crash() {
    durable_appends_survive_crash(DurableWrites::Fdatasync);
}

// Proves the same with O_DSYNC writes: durable appends are made durable by
// the writes themselves (few or no fdatasyncs), and survive a crash.
#[test]
fn dsync_writes_make_appends_durable_and_survive_crash() {
    durable_appends_survive_crash(DurableWrites::Dsync);
}

fn durable_appends_survive_crash(mode: DurableWrites) {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let config = ShardStorageConfig {
            cache_bytes_max: 1 << 20,
            read_chunk_bytes: 64 << 10,
            durable_writes: mode,
            ..ShardStorageConfig::default()
        };
        let shard = ShardStorage::start(&data, 0, config, Rc::new(SystemClock))
            .await
            .unwrap();
        let dir = data.join("gc-0");
        let log = Rc::new(
            PartitionLog::open(&dir, LogConfig::default(), &shard)
                .await
                .unwrap(),
        );
        // First appends nobody waits durability for (written, not synced),
        // then one durable append: it cannot vouch for them by itself, an
        // fdatasync must.
        let plain = 50u64;
        let mut acked = Vec::new();
        for i in 0..=plain {
            let b = batch(1_000 + i, 2, 200, 10);
            let reservation = log.reserve(b.len()).await.unwrap();
            let h = log.validate(&b).unwrap();
            let t = log.append_validated(reservation, &b, &h).unwrap();
            if i < plain {
                log.wait_appended(&t).await.unwrap();
            } else {
                log.wait_durable(&t).await.unwrap();
            }
            acked.push((t.base_offset, b));
        }
        let before = log.stats();
        assert_eq!(log.offsets().durable_offset, 2 * (plain + 1) as i64);
        // Then concurrent durable appends, with everything before them
        // durable.
        let appenders = 400u64;
        let mut tasks = Vec::new();
        for i in 0..appenders {
            let log = log.clone();
            tasks.push(glommio::spawn_local(async move {
                let b = batch(i, 2, 200, 10);
                let reservation = log.reserve(b.len()).await.unwrap();
                let h = log.validate(&b).unwrap();
                let t = log.append_validated(reservation, &b, &h).unwrap();
                log.wait_durable(&t).await.unwrap();
                (t.base_offset, b)
            }));
        }
        for t in tasks {
            acked.push(t.await);
        }
        let stats = log.stats();
        let (syncs, dsyncs) = (
            stats.fdatasyncs - before.fdatasyncs,
            stats.dsync_writes - before.dsync_writes,
        );
        println!(
            "{mode:?}: first {plain} plain appends and one durable one: {} fdatasyncs, {} O_DSYNC writes; then {appenders} concurrent durable appends: {} writes, {syncs} fdatasyncs, {dsyncs} O_DSYNC writes",
            before.fdatasyncs, before.dsync_writes, stats.writes - before.writes
        );
        match mode {
            DurableWrites::Dsync => assert!(
                before.fdatasyncs >= 1 && dsyncs > 0 && syncs * 10 < appenders,
                "O_DSYNC: {} fdatasyncs for the plain appends, then {dsyncs} dsync writes, {syncs} fdatasyncs",
                before.fdatasyncs
            ),
            _ => assert!(
                stats.dsync_writes == 0 && syncs * 10 < appenders,
                "group commit: {syncs} fdatasyncs for {appenders} appends"
            ),
        }
        assert!(log.offsets().durable_offset >= 2 * (plain + 1 + appenders) as i64);
        // Crash: drop without close, so the marker stays empty (opening
        // emptied it) and vouches for nothing.
        drop(Rc::try_unwrap(log).ok().expect("only handle"));
        let marker = std::fs::read(dir.join("clean-shutdown")).unwrap_or_default();
        assert!(marker.is_empty(), "a crash left a marker: {marker:?}");
        let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
            .await
            .unwrap();
        acked.sort_by_key(|(o, _)| *o);
        assert_same(&read_all(&log, 0, 1 << 20).await, &acked);
        log.close().await.unwrap();
    });
}

// Proves LogAppendTime topics get the broker's time stamped into the batch
// with a valid CRC, and lookups by timestamp find the first matching record.
#[test]
fn timestamps_and_lookup_by_time() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let clock = manual_clock(5_000_000);
        let shard = shard_with_clock(&data, 0, Rc::new(clock.clone())).await;
        let mut config = small_segments(4 << 10);
        config.timestamp_type = TimestampType::LogAppendTime;
        let log = PartitionLog::open(&data.join("lat-0"), config, &shard)
            .await
            .unwrap();
        let t = log.append(&batch(1, 3, 10, 42)).await.unwrap();
        assert_eq!(t.log_append_time, Some(5_000_000));
        let r = log.read(0, 1 << 20).await.unwrap();
        let stored =
            shardlog::record::validate_stored_batch(&r.batches[0]).expect("CRC recomputed");
        assert_eq!(stored.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(stored.max_timestamp, 5_000_000);
        log.close().await.unwrap();

        // CreateTime: batch i has records at 10_000 + 100*i + j.
        let log = PartitionLog::open(&data.join("ct-0"), small_segments(4 << 10), &shard)
            .await
            .unwrap();
        for i in 0..50i64 {
            log.append(&batch(i as u64, 4, 200, 10_000 + 100 * i))
                .await
                .unwrap();
        }
        assert!(log.segment_count() > 3);
        let found = log
            .offset_for_timestamp(10_000 + 100 * 20 + 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.offset, found.timestamp),
            (20 * 4 + 2, 10_000 + 100 * 20 + 2)
        );
        let found = log
            .offset_for_timestamp(10_000 + 100 * 20 + 50)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found.offset,
            21 * 4,
            "between batches: the next batch's first record"
        );
        assert_eq!(
            log.offset_for_timestamp(0).await.unwrap().unwrap().offset,
            0
        );
        assert!(log.offset_for_timestamp(1_000_000).await.unwrap().is_none());
        let max = log.max_timestamp().await.unwrap().unwrap();
        assert_eq!(max.timestamp, 10_000 + 100 * 49 + 3);
        assert_eq!(max.offset, 50 * 4 - 1);
        // The maximum inside a batch (timestamps 100, 400, 250 after the
        // base): its own record, as Kafka 3.8+ answers, not the batch's last;
        // compressed too.
        for (i, codec) in [Compression::None, Compression::Lz4]
            .into_iter()
            .enumerate()
        {
            let mut b = BatchBuilder::new(20_000 + i as i64);
            for delta in [100, 400, 250] {
                b.push_value(delta, b"v");
            }
            let appended = log.append(&b.build_compressed(codec)).await.unwrap();
            let max = log.max_timestamp().await.unwrap().unwrap();
            assert_eq!(
                (max.offset, max.timestamp),
                (appended.base_offset + 1, 20_400 + i as i64),
                "{codec:?}"
            );
            assert_eq!(
                log.max_timestamp_batch().unwrap().offset,
                appended.base_offset + 2
            );
        }
        log.close().await.unwrap();
        let log = PartitionLog::open(&data.join("ct-0"), small_segments(4 << 10), &shard)
            .await
            .unwrap();
        assert_eq!(
            log.max_timestamp().await.unwrap().unwrap().timestamp,
            20_401
        );
        let found = log
            .offset_for_timestamp(10_000 + 100 * 33)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.offset, 33 * 4);
        log.close().await.unwrap();
    });
}

// Proves invalid producer batches are refused with Kafka's error codes and
// leave the log unchanged.
#[test]
fn invalid_batches_get_kafka_error_codes() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let config = LogConfig {
            max_message_bytes: 2000,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&data.join("bad-0"), config, &shard)
            .await
            .unwrap();
        let good = batch(1, 2, 100, 1);
        let mut corrupt = good.clone();
        corrupt[70] ^= 1;
        let big = batch(2, 10, 300, 1);
        let mut truncated = good.clone();
        truncated.pop();
        let mut old_magic = good.clone();
        old_magic[16] = 1;
        for (bytes, code) in [
            (corrupt, ErrorCode::CorruptMessage),
            (big, ErrorCode::MessageTooLarge),
            (truncated, ErrorCode::CorruptMessage),
            (old_magic, ErrorCode::InvalidRecord),
        ] {
            assert_eq!(log.append(&bytes).await.unwrap_err().error_code(), code);
        }
        assert_eq!(log.offsets().log_end_offset, 0);
        assert_eq!(log.append(&good).await.unwrap().base_offset, 0);
        log.close().await.unwrap();
    });
}

// Proves a read from disk stops at the high watermark while later appends
// are still unwritten, rather than reading their unwritten bytes.
#[test]
fn disk_read_while_appends_are_unwritten() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir = data.join("pending-0");
        let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
            .await
            .unwrap();
        let a = batch(1, 3, 100, 1);
        let ta = log.append(&a).await.unwrap();
        let b = batch(2, 3, 100, 1);
        let reservation = log.reserve(b.len()).await.unwrap();
        let hb = log.validate(&b).unwrap();
        let tb = log.append_validated(reservation, &b, &hb).unwrap();
        // B is queued but not yet written: only A is visible.
        let r = log.read(ta.base_offset, 1 << 20).await.unwrap();
        assert_eq!(r.batches.len(), 1);
        assert_eq!(payload(&r.batches[0]), payload(&a));
        log.wait_appended(&tb).await.unwrap();
        assert_eq!(log.read(0, 1 << 20).await.unwrap().batches.len(), 2);
        log.close().await.unwrap();
    });
}

/// A gzip-flagged batch claiming `i32::MAX` records (compressed records are
/// never decoded, so only the header speaks for them).
fn huge_claim_batch() -> Vec<u8> {
    let mut b = batch(9, 1, 50, 1);
    b[22] |= 0x01; // attributes: gzip
    b[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes()); // lastOffsetDelta
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes()); // recordCount
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

// Proves batches whose offsets would overflow a segment's 32-bit relative
// offsets start a new segment, and the log reopens after a crash.
#[test]
fn offsets_beyond_32_bits_roll_the_segment() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir = data.join("wide-0");
        let config = LogConfig {
            index_interval_bytes: 0,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(&dir, config.clone(), &shard)
            .await
            .unwrap();
        let mut bases = Vec::new();
        for _ in 0..3 {
            bases.push(log.append(&huge_claim_batch()).await.unwrap().base_offset);
        }
        assert_eq!(bases, vec![0, i32::MAX as i64, 2 * i32::MAX as i64]);
        assert_eq!(log.segment_count(), 3, "each batch needs its own segment");
        drop(log); // crash
        let log = PartitionLog::open(&dir, config, &shard).await.unwrap();
        assert_eq!(log.offsets().log_end_offset, 3 * i32::MAX as i64);
        let r = log.read(2 * i32::MAX as i64 + 5, 1).await.unwrap();
        assert_eq!(
            BatchHeader::parse(&r.batches[0]).unwrap().base_offset,
            bases[2]
        );
        log.close().await.unwrap();
    });
}

// Proves that when a power loss takes back data that DeleteRecords had
// already moved the log start past, the log reopens empty at that start and
// keeps serving from there.
#[test]
fn log_start_past_recovered_end_starts_afresh() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let dir = data.join("start-0");
        let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
            .await
            .unwrap();
        let sent = fill(&log, 10, 8).await;
        let end = log.offsets().high_watermark;
        assert_eq!(log.delete_records_before(end).await.unwrap(), end);
        log.close().await.unwrap();
        // Emulate the power loss: the last four batches never reached the
        // disk, and there was no clean shutdown.
        std::fs::remove_file(dir.join("clean-shutdown")).unwrap();
        let keep: u64 = sent[..6].iter().map(|(_, b)| b.len() as u64).sum();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(log_file(&dir))
            .unwrap();
        f.set_len(keep).unwrap();
        drop(f);
        let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
            .await
            .unwrap();
        let offsets = log.offsets();
        assert_eq!(
            (offsets.log_start_offset, offsets.log_end_offset),
            (end, end)
        );
        let t = log.append(&batch(3, 2, 10, 1)).await.unwrap();
        assert_eq!(t.base_offset, end);
        assert_eq!(log.read(end, 1).await.unwrap().batches.len(), 1);
        log.close().await.unwrap();
    });
}

// Proves lookups by timestamp find the exact record inside compressed
// batches of every codec, as Kafka does, not just the batch.
#[test]
fn lookup_by_time_inside_compressed_batches() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let log = PartitionLog::open(&data.join("z-0"), small_segments(16 << 10), &shard)
            .await
            .unwrap();
        let codecs = [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        // Batch i: 10 records at 1_000 * i + 10 * j.
        for i in 0..12i64 {
            let mut b = BatchBuilder::new(1_000 * i);
            for j in 0..10 {
                b.push_value(10 * j, format!("batch {i} record {j}").as_bytes());
            }
            let bytes = b.build_compressed(codecs[i as usize % 4]);
            assert_eq!(log.append(&bytes).await.unwrap().base_offset, 10 * i);
        }
        for i in 0..12i64 {
            for j in [0i64, 3, 9] {
                let found = log
                    .offset_for_timestamp(1_000 * i + 10 * j - 5)
                    .await
                    .unwrap()
                    .unwrap();
                // Record j of batch i is the first at or after its time - 5.
                assert_eq!(found.offset, 10 * i + j, "batch {i} record {j}");
                assert_eq!(found.timestamp, 1_000 * i + 10 * j);
            }
        }
        log.close().await.unwrap();
    });
}

// Proves a consumer reading older data in sequence is served from chunks
// read ahead (every chunk started is taken, and the batches are the ones
// appended), and that a chunk read while later batches were still unwritten
// is trusted only for what was written then: the rest is read again.
#[test]
fn read_ahead_serves_sequential_readers() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 0).await;
        let log = PartitionLog::open(&data.join("ahead-0"), LogConfig::default(), &shard)
            .await
            .unwrap();
        let sent = fill(&log, 400, 3).await;
        let got = read_all(&log, 0, 16 << 10).await;
        assert_same(&got, &sent);
        let (started, taken) = {
            let set = shard.read_aheads.borrow();
            (set.started, set.taken)
        };
        assert!(taken > 10, "only {taken} reads took a chunk read ahead");
        assert_eq!(started, taken, "a sequential reader takes every chunk");
        assert_eq!(shard.read_aheads.borrow().bytes_used(), 0);

        // A chunk read while B is appended but not yet written.
        let log = PartitionLog::open(&data.join("ahead-1"), LogConfig::default(), &shard)
            .await
            .unwrap();
        let mut sent = fill(&log, 5, 4).await;
        let b = batch(9, 4, 300, 1);
        let reservation = log.reserve(b.len()).await.unwrap();
        let hb = log.validate(&b).unwrap();
        let tb = log.append_validated(reservation, &b, &hb).unwrap();
        let first = log.read(0, 1).await.unwrap();
        assert_eq!(first.batches.len(), 1);
        let next = BatchHeader::parse(&first.batches[0]).unwrap().next_offset();
        log.wait_appended(&tb).await.unwrap();
        sent.push((tb.base_offset, b));
        sent.extend(fill(&log, 3, 5).await);
        let taken_before = shard.read_aheads.borrow().taken;
        let mut got = first.batches;
        got.extend(read_all(&log, next, 1 << 20).await);
        assert_eq!(shard.read_aheads.borrow().taken, taken_before + 1);
        assert_same(&got, &sent);
        log.close().await.unwrap();
    });
}

/// Appends `count` batches of about 64 KiB, each waited for.
async fn fill_large(log: &PartitionLog, count: u64, tag: u64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..count {
        let b = batch(tag * 1000 + i, 4, 16 << 10, 1);
        let t = log.append(&b).await.expect("append");
        out.push((t.base_offset, b));
    }
    out
}

/// Waits (up to a generous bound, never as a timing assertion) until the
/// idle log has stopped writing zeros ahead: the count stays put for 100 ms.
async fn wait_for_zeroing_to_settle(log: &PartitionLog) -> u64 {
    let mut last = log.stats().zero_writes;
    let mut still = 0;
    for _ in 0..1000 {
        glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        let now = log.stats().zero_writes;
        still = if now == last { still + 1 } else { 0 };
        last = now;
        if still >= 10 {
            break;
        }
    }
    last
}

fn overlapping(ranges: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    ranges
        .iter()
        .copied()
        .filter(|&(s, len)| s < to && s + len > from)
        .collect()
}

// Proves a busy log overwrites the allocated space past its data with
// zeros while it is idle, so the data written there later lands on written
// extents, not unwritten ones (FIEMAP; with zeroing off the same writes
// leave unwritten extents past the data, which shows the check can fail);
// that the zeros never read as batches, after a crash image too; and that a
// clean close trims them.
#[test]
fn zeros_ahead_make_data_writes_overwrites() {
    const LEAD: u64 = 4 << 20;
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        // Control: zeroing off.
        let config = ShardStorageConfig {
            zero_ahead_bytes: 0,
            ..ShardStorageConfig::default()
        };
        let off = ShardStorage::start(&data.join("off"), 0, config, Rc::new(SystemClock))
            .await
            .unwrap();
        let dir = data.join("off").join("plain-0");
        let log = PartitionLog::open(&dir, LogConfig::default(), &off)
            .await
            .unwrap();
        let sent = fill_large(&log, 48, 1).await;
        let end: u64 = sent.iter().map(|(_, b)| b.len() as u64).sum();
        assert_eq!(log.stats().zero_writes, 0);
        let past = overlapping(&unwritten_ranges(&log_file(&dir)), end + 4096, u64::MAX);
        assert!(
            !past.is_empty(),
            "without zeroing, the space allocated past the data is unwritten"
        );
        log.close().await.unwrap();

        let shard = shard(&data, 0).await;
        let dir = data.join("zeros-0");
        let log = PartitionLog::open(&dir, LogConfig::default(), &shard)
            .await
            .unwrap();
        // Enough data for the preallocation steps to reach 1 MiB.
        let mut sent = fill_large(&log, 48, 2).await;
        let end: u64 = sent.iter().map(|(_, b)| b.len() as u64).sum();
        let zeroed = wait_for_zeroing_to_settle(&log).await;
        assert!(
            zeroed >= LEAD / (64 << 10),
            "only {zeroed} zero writes while idle"
        );
        let file = log_file(&dir);
        // Zeroed to within one chunk of the lead.
        let ahead = overlapping(&unwritten_ranges(&file), 0, end + LEAD - (64 << 10));
        assert!(
            ahead.is_empty(),
            "unwritten extents below the zeroed lead: {ahead:?} (data ends at {end})"
        );
        // A crash image now: zeros past the data, recovered as nothing.
        let image = snapshot_dir(&dir);
        // More data lands on the zeroed space.
        sent.extend(fill_large(&log, 32, 3).await);
        let end: u64 = sent.iter().map(|(_, b)| b.len() as u64).sum();
        let unwritten = overlapping(&unwritten_ranges(&file), 0, end);
        assert!(
            unwritten.is_empty(),
            "data landed on unwritten extents: {unwritten:?}"
        );
        assert_same(&read_all(&log, 0, 1 << 20).await, &sent);
        log.close().await.unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().len(), end);

        let crashed = data.join("zeros-1");
        std::fs::create_dir_all(&crashed).unwrap();
        for (p, bytes) in &image {
            std::fs::write(crashed.join(p.file_name().unwrap()), bytes).unwrap();
        }
        let log = PartitionLog::open(&crashed, LogConfig::default(), &shard)
            .await
            .unwrap();
        assert_eq!(log.offsets().high_watermark, sent[48].0);
        assert_same(&read_all(&log, 0, 1 << 20).await, &sent[..48]);
        log.close().await.unwrap();
    });
}
