//! Model-based property test of log compaction on a real partition log
//! (O_DIRECT segments, recovery, the cleaner's file swaps): random keyed
//! writes, tombstones and keyless records in plain and lz4 batches, segment
//! rolls (small `segment.bytes`), time passing, cleaner passes, passes that
//! crash after a random step of a random group's swap, plain crashes and
//! clean reopens, and reads running while a pass swaps segments.
//!
//! After every step, reading the log from its start must give offsets
//! strictly increasing, every record identical to the one written at its
//! offset (never one the model does not hold), for every key whose latest
//! write is a value that value at its offset as the key's last record, and
//! for every key whose latest write is a tombstone either that tombstone or
//! no record at all. After a pass that completed, the cleaned section holds
//! one record per key and no keyless record.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use shardlog::record::batch::BatchHeader;
use shardlog::record::records::{decode_records, BatchBuilder, Record};
use shardlog::record::Compression;
use shardlog::storage::{
    CleanParams, Clock, LogConfig, ManualClock, PartitionLog, ShardStorage, StopAt, SwapStep,
};

const T0: i64 = 1_700_000_000_000;
const DELETE_RETENTION_MS: i64 = 100;
/// Time for a dropped log's detached tasks to finish their last I/O, so a
/// "crash" never overlaps the next open's recovery.
const CRASH_SETTLE: Duration = Duration::from_millis(30);

/// Every record written, by offset: (key, value).
type Written = BTreeMap<i64, (Option<Vec<u8>>, Option<Vec<u8>>)>;
/// Records read from the log's start: (offset, key, value).
type View = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

#[derive(Debug, Clone)]
enum Op {
    /// A batch of (key, value) records: key None is keyless, value None a
    /// tombstone; lz4 or not; values padded by this many bytes.
    Write(Vec<(Option<u8>, Option<u16>)>, bool, u8),
    /// The clock moves on this many ms.
    Advance(i64),
    /// A cleaner pass.
    Clean,
    /// A cleaner pass while a reader walks the log from its start.
    CleanWhileReading,
    /// A pass stopped after `step` of the `group`-th swap, then a crash
    /// (drop without close) and a reopen.
    CrashInClean(usize, SwapStep),
    /// Drop without close, reopen.
    Crash,
    /// Close, reopen.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        Just(SwapStep::Written),
        Just(SwapStep::Committed),
        Just(SwapStep::OldRemoved),
        Just(SwapStep::Renamed),
    ];
    prop_oneof![
        8 => (
            prop::collection::vec(
                (
                    prop::option::weighted(0.95, 0u8..8),
                    prop::option::weighted(0.85, any::<u16>())
                ),
                1..8
            ),
            any::<bool>(),
            0u8..200
        )
            .prop_map(|(r, lz4, pad)| Op::Write(r, lz4, pad)),
        2 => (0i64..150).prop_map(Op::Advance),
        2 => Just(Op::Clean),
        1 => Just(Op::CleanWhileReading),
        2 => (0usize..4, step).prop_map(|(g, s)| Op::CrashInClean(g, s)),
        1 => Just(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

fn params() -> CleanParams {
    CleanParams {
        dedupe_buffer_bytes: 1 << 20,
        min_cleanable_dirty_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: DELETE_RETENTION_MS,
        io_bytes_per_second: f64::MAX,
    }
}

fn build(records: &[(Option<u8>, Option<u16>)], lz4: bool, pad: u8, now: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(now);
    for (k, v) in records {
        b.push(&Record {
            timestamp_delta: 0,
            key: k.map(|k| vec![b'k', k]),
            value: v.map(|v| {
                let mut value = v.to_be_bytes().to_vec();
                value.resize(2 + pad as usize, b'.');
                value
            }),
            headers: Vec::new(),
        });
    }
    b.build_compressed(if lz4 {
        Compression::Lz4
    } else {
        Compression::None
    })
}

/// Reads the log from its start to its high watermark. A read in a gap at
/// the log's end (records the cleaner removed) returns nothing: the view
/// ends there.
async fn view(log: &PartitionLog) -> Result<View, String> {
    let mut out = Vec::new();
    let mut offset = log.offsets().log_start_offset;
    let end = log.offsets().high_watermark;
    while offset < end {
        let r = log
            .read(offset, 4096)
            .await
            .map_err(|e| format!("read at {offset}: {e:?}"))?;
        if r.batches.is_empty() {
            break;
        }
        for b in r.batches {
            let h = BatchHeader::parse(&b).ok_or("a batch header")?;
            for rec in decode_records(&b).ok_or("decodable records")? {
                if rec.offset >= offset {
                    out.push((rec.offset, rec.key, rec.value));
                }
            }
            offset = h.next_offset();
        }
    }
    Ok(out)
}

/// The checks every view passes (see the module notes); `settled`: no pass
/// ran concurrently, so a tombstoned key shows its tombstone or nothing.
fn check(v: &View, written: &Written, settled: bool) -> Result<(), TestCaseError> {
    let mut last: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    let mut prev = -1;
    for (o, k, val) in v {
        prop_assert!(*o > prev, "offsets increase: {} after {}", o, prev);
        prev = *o;
        let w = written.get(o);
        prop_assert_eq!(w, Some(&(k.clone(), val.clone())), "record at {}", o);
        if let Some(k) = k {
            last.insert(k.clone(), (*o, val.clone()));
        }
    }
    let mut latest: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    for (o, (k, val)) in written {
        if let Some(k) = k {
            latest.insert(k.clone(), (*o, val.clone()));
        }
    }
    for (key, (o, val)) in &latest {
        let got = last.get(key);
        match val {
            Some(_) => prop_assert_eq!(got, Some(&(*o, val.clone())), "key {:?}", key),
            None if settled => prop_assert!(
                got.is_none() || got == Some(&(*o, None)),
                "key {:?}: tombstone at {} but {:?}",
                key,
                o,
                got
            ),
            None => {}
        }
    }
    Ok(())
}

/// After a completed pass: below its end, one record per key, no keyless.
fn check_cleaned(v: &View, cleaned_end: i64) -> Result<(), TestCaseError> {
    let mut keys = HashSet::new();
    for (o, k, _) in v.iter().filter(|r| r.0 < cleaned_end) {
        let k = k.as_ref();
        prop_assert!(k.is_some(), "a keyless record at {} stayed", o);
        prop_assert!(
            keys.insert(k.cloned()),
            "a superseded record at {} stayed",
            o
        );
    }
    Ok(())
}

struct Harness {
    shard: ShardStorage,
    config: LogConfig,
    dir: PathBuf,
    log: Option<PartitionLog>,
    clock: ManualClock,
    written: Written,
    crash_points: usize,
}

impl Harness {
    fn log(&self) -> &PartitionLog {
        self.log.as_ref().expect("open")
    }

    async fn open(&mut self) -> Result<(), TestCaseError> {
        let log = PartitionLog::open(&self.dir, self.config.clone(), &self.shard)
            .await
            .map_err(|e| TestCaseError::fail(format!("open: {e}")))?;
        self.log = Some(log);
        Ok(())
    }

    async fn crash(&mut self) -> Result<(), TestCaseError> {
        drop(self.log.take());
        glommio::timer::sleep(CRASH_SETTLE).await;
        self.open().await
    }

    async fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let fail = |e: shardlog::storage::StorageError| TestCaseError::fail(e.to_string());
        match op {
            Op::Write(records, lz4, pad) => {
                let b = build(records, *lz4, *pad, self.clock.now_ms());
                let t = self
                    .log()
                    .append(&b)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("append: {e:?}")))?;
                for (i, r) in decode_records(&b).unwrap().into_iter().enumerate() {
                    self.written
                        .insert(t.base_offset + i as i64, (r.key, r.value));
                }
            }
            Op::Advance(ms) => self.clock.advance(*ms),
            Op::Clean => {
                let out = self
                    .log()
                    .clean(&params(), HashSet::new())
                    .await
                    .map_err(fail)?;
                let v = view(self.log()).await.map_err(TestCaseError::fail)?;
                check_cleaned(&v, out.first_dirty_offset)?;
            }
            Op::CleanWhileReading => {
                let log = self.log();
                let (out, v) =
                    futures_lite::future::zip(log.clean(&params(), HashSet::new()), view(log))
                        .await;
                out.map_err(fail)?;
                check(&v.map_err(TestCaseError::fail)?, &self.written, false)?;
            }
            Op::CrashInClean(group, step) => {
                let stop = StopAt {
                    group: *group,
                    step: *step,
                };
                let out = self
                    .log()
                    .clean_stopping_at(&params(), HashSet::new(), stop)
                    .await
                    .map_err(fail)?;
                if out.stopped_at.is_some() {
                    self.crash_points += 1;
                }
                self.crash().await?;
                let left: Vec<_> = std::fs::read_dir(&self.dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
                    .collect();
                prop_assert!(left.is_empty(), "left after recovery: {:?}", left);
            }
            Op::Crash => self.crash().await?,
            Op::Reopen => {
                let log = self.log.take().expect("open");
                log.close().await.map_err(fail)?;
                self.open().await?;
            }
        }
        let v = view(self.log()).await.map_err(TestCaseError::fail)?;
        check(&v, &self.written, true)
    }
}

fn run_case(segment_bytes: u64, ops: Vec<Op>) -> Result<usize, TestCaseError> {
    let tmp = common::temp_dir();
    let data = tmp.path().to_path_buf();
    common::run(move || async move {
        let clock = ManualClock::new(T0);
        let shard = common::shard_with_clock(&data, 1 << 20, Rc::new(clock.clone())).await;
        let config = LogConfig {
            segment_bytes,
            index_interval_bytes: 256,
            preallocate_bytes: 64 << 10,
            ..LogConfig::default()
        };
        let mut h = Harness {
            shard,
            config,
            dir: data.join("t-0"),
            log: None,
            clock,
            written: Written::new(),
            crash_points: 0,
        };
        h.open().await?;
        for op in &ops {
            h.step(op).await?;
        }
        if let Some(log) = h.log.take() {
            log.close()
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        Ok(h.crash_points)
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=2000 runs a deeper search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48),
        failure_persistence: None,
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    })]

    // Proves compaction on a real log keeps every key's latest value and
    // never shows a record the model does not hold, through random writes,
    // rolls, passes, crashes at every swap step, reopens and reads during
    // passes (see the module notes).
    #[test]
    fn compacted_log_matches_model(
        segment_bytes in prop_oneof![Just(512u64), Just(1024), Just(4096)],
        ops in prop::collection::vec(op(), 10..60),
    ) {
        run_case(segment_bytes, ops)?;
    }
}

// Proves the random cases above do reach the swap's crash points: a fixed
// sequence that writes enough to roll many segments, then crashes after
// each step of the first groups' swaps, reaches every one of them.
#[test]
fn crash_points_are_reached() {
    let mut ops = Vec::new();
    let mut round = 0u16;
    for group in 0..2 {
        for step in [
            SwapStep::Written,
            SwapStep::Committed,
            SwapStep::OldRemoved,
            SwapStep::Renamed,
        ] {
            // Fresh writes of every key make the older segments dirty.
            for _ in 0..12 {
                ops.push(Op::Write(
                    (0..4u8).map(|k| (Some(k), Some(round))).collect(),
                    round.is_multiple_of(2),
                    100,
                ));
                round += 1;
            }
            ops.push(Op::CrashInClean(group, step));
        }
    }
    let reached = run_case(512, ops).unwrap();
    assert_eq!(reached, 8, "every crash point reached");
}
