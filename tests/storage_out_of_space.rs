//! A partition log on a file system that fills up: appends are refused with
//! a storage error while the disk is full, nothing acknowledged is lost, and
//! writes resume by themselves once space is freed, with no reopen. Runs on
//! a small loop-mounted ext4 image (root and mkfs.ext4 needed; skipped with
//! the reason printed otherwise).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::loopfs::{free_bytes, LoopFs};
use common::*;
use shardlog::error_code::ErrorCode;
use shardlog::handler::errors::ToErrorCode;
use shardlog::record::batch::BatchHeader;
use shardlog::storage::{AppendError, LogConfig, PartitionLog, StorageError};

const BATCH_VALUE_BYTES: usize = 1000;
const RECORDS_PER_BATCH: usize = 30;

fn config() -> LogConfig {
    LogConfig {
        // Small segments, so rolls, seals and index writes meet the full
        // disk too.
        segment_bytes: 1 << 20,
        preallocate_bytes: 256 << 10,
        ..LogConfig::default()
    }
}

/// One acks=all append: queued, then durable.
async fn append_durable(log: &PartitionLog, b: &[u8]) -> Result<i64, AppendError> {
    let ticket = log.append(b).await?;
    log.wait_durable(&ticket).await?;
    Ok(ticket.base_offset)
}

/// Every batch in the log, by base offset, checked contiguous.
async fn all_batches(log: &PartitionLog) -> Vec<(i64, bytes::Bytes)> {
    let mut out = Vec::new();
    let mut offset = log.offsets().log_start_offset;
    let end = log.offsets().high_watermark;
    while offset < end {
        let r = log.read(offset, 1 << 20).await.expect("read");
        for b in r.batches {
            let h = BatchHeader::parse(&b).expect("whole batch");
            assert_eq!(h.base_offset, offset, "batches are contiguous");
            offset = h.next_offset();
            out.push((h.base_offset, b));
        }
    }
    out
}

// Proves that a log whose disk fills up refuses appends with
// KAFKA_STORAGE_ERROR (not a hang), serves what it has, keeps every
// acknowledged batch, and takes appends again after space is freed without
// being reopened; the log reopens clean afterwards.
#[test]
fn full_disk_refuses_then_resumes() {
    let fs = match LoopFs::mount(48) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!(
                "SKIPPED full_disk_refuses_then_resumes: cannot mount a loop file system: {why}"
            );
            return;
        }
    };
    let data = fs.path().join("data");
    let ballast = fs.fill_leaving(3 << 20);
    eprintln!("free before the log: {} KiB", fs.free_bytes() >> 10);
    let free_mount = fs.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 8 << 20).await;
        let dir = data.join("full-0");
        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        let mut acked: HashMap<i64, Vec<u8>> = HashMap::new();
        let tag = std::cell::Cell::new(0u64);
        let next = || {
            tag.set(tag.get() + 1);
            let t = tag.get();
            batch(t, RECORDS_PER_BATCH, BATCH_VALUE_BYTES, 1_000 + t as i64)
        };

        // Fill: acks=all appends until the disk refuses one.
        let refused = loop {
            assert!(tag.get() < 10_000, "the disk never filled");
            let b = next();
            match append_durable(&log, &b).await {
                Ok(base) => {
                    acked.insert(base, b);
                }
                Err(e) => break e,
            }
        };
        eprintln!("refused after {} acked batches: {refused}", acked.len());
        let AppendError::Storage(e) = &refused else {
            panic!("expected a storage error, got {refused}");
        };
        assert_eq!(e.error_code(), ErrorCode::KafkaStorageError);
        assert!(
            matches!(e, StorageError::Io { kind, .. } if *kind == std::io::ErrorKind::StorageFull),
            "the error says the disk is full: {e}"
        );
        assert!(log.storage_error().is_some(), "the log reports its failure");

        // While full: appends are answered at once with the same error,
        // and everything acknowledged is readable.
        let started = Instant::now();
        let again = log.append(&next()).await;
        assert!(
            matches!(&again, Err(AppendError::Storage(StorageError::Io { .. }))),
            "{again:?}"
        );
        eprintln!("a refused append answered in {:?}", started.elapsed());
        let during = all_batches(&log).await;
        for (base, b) in &acked {
            let found = during
                .iter()
                .find(|(o, _)| o == base)
                .expect("acked batch readable");
            assert_eq!(payload(&found.1), payload(b));
        }

        // Free the space: appends come back without a reopen.
        std::fs::remove_file(&ballast).unwrap();
        eprintln!("freed: {} KiB free", free_bytes(&free_mount) >> 10);
        let freed = Instant::now();
        let deadline = freed + Duration::from_secs(30);
        loop {
            let b = next();
            match append_durable(&log, &b).await {
                Ok(base) => {
                    acked.insert(base, b);
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "no recovery within 30 s: {e}");
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        eprintln!(
            "appends resumed {:?} after space was freed",
            freed.elapsed()
        );
        assert!(log.storage_error().is_none());
        assert!(log.stats().out_of_space_stalls >= 1);
        // Past a few more segment rolls.
        for _ in 0..100 {
            let b = next();
            let base = append_durable(&log, &b)
                .await
                .expect("append after recovery");
            acked.insert(base, b);
        }

        let check = |batches: &[(i64, bytes::Bytes)]| {
            for (base, b) in &acked {
                let found = batches
                    .iter()
                    .find(|(o, _)| o == base)
                    .unwrap_or_else(|| panic!("acked batch at {base} lost"));
                assert_eq!(payload(&found.1), payload(b), "batch at {base}");
            }
        };
        let after = all_batches(&log).await;
        check(&after);
        eprintln!(
            "{} batches in the log, {} acknowledged",
            after.len(),
            acked.len()
        );
        log.close().await.expect("clean close");
        drop(log);

        let log = PartitionLog::open(&dir, config(), &shard).await.unwrap();
        let reopened = all_batches(&log).await;
        assert_eq!(reopened.len(), after.len(), "the same log after reopening");
        check(&reopened);
        log.close().await.unwrap();
    });
}
