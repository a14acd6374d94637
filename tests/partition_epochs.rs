//! A partition's leader-epoch cache (Kafka's `leader-epoch-checkpoint`,
//! KIP-101/KIP-279): rebuilt from the epochs stamped in the log's batches,
//! kept in the producer snapshot across a clean close, rebuilt again after
//! a crash, and answering OffsetForLeaderEpoch as Kafka's leader does.

mod common;

use common::*;
use shardlog::partition::{Partition, PartitionConfig, LEADER_EPOCH};
use shardlog::record::records::BatchBuilder;
use shardlog::storage::PartitionLog;

/// A plain batch of `records` records (no producer id).
fn batch(records: usize) -> Vec<u8> {
    records_batch(BatchBuilder::new(1_000), 0, records)
}

/// `records` values `s<seq>`, `s<seq + 1>`, ... in `b`.
fn records_batch(mut b: BatchBuilder, seq: i32, records: usize) -> Vec<u8> {
    for i in 0..records {
        b.push_value(i as i64, format!("s{}", seq + i as i32).as_bytes());
    }
    b.build()
}

// Proves the cache: a log written under epochs 0, 3 and 7 (10 records
// each) opens to entries (0, 0), (3, 10), (7, 20); OffsetForLeaderEpoch
// gets Kafka's answers (an epoch ends where the next starts, a missing
// epoch answers for the largest one below it, the latest ends at the log
// end, one above every epoch and the undefined epoch are unknown); the
// same after a clean close and reopen (from the snapshot) and with no
// snapshot to trust (as after a crash that followed more appends: replayed
// from the log). An empty log holds the leader's epoch from offset 0.
#[test]
fn epochs_from_the_log_the_snapshot_and_a_replay() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let dir = data.join("epochs-0");
        let config = PartitionConfig::default();
        let log = PartitionLog::open(&dir, config.log.clone(), &shard)
            .await
            .unwrap();
        for epoch in [0, 3, 7] {
            log.set_leader_epoch(epoch);
            log.append(&batch(10)).await.unwrap();
        }
        log.close().await.unwrap();
        drop(log);

        let check = |p: &Partition, when: &str| {
            assert_eq!(p.leader_epochs(), [(0, 0), (3, 10), (7, 20)], "{when}");
            assert_eq!(p.end_offset_for_epoch(0), Some((0, 10)), "{when}");
            assert_eq!(p.end_offset_for_epoch(3), Some((3, 20)), "{when}");
            assert_eq!(p.end_offset_for_epoch(5), Some((3, 20)), "{when}");
            assert_eq!(p.end_offset_for_epoch(7), Some((7, 30)), "{when}");
            assert_eq!(p.end_offset_for_epoch(8), None, "{when}");
            assert_eq!(p.end_offset_for_epoch(-1), None, "{when}");
        };
        let p = Partition::open(&dir, config.clone(), &shard).await.unwrap();
        check(&p, "replayed from the log");
        p.close().await.unwrap();
        drop(p);
        let p = Partition::open(&dir, config.clone(), &shard).await.unwrap();
        check(&p, "from the snapshot");
        drop(p); // a crash
        glommio::timer::sleep(std::time::Duration::from_millis(30)).await;
        std::fs::write(dir.join("producer-state.snapshot"), b"").unwrap();
        let p = Partition::open(&dir, config.clone(), &shard).await.unwrap();
        check(&p, "replayed without a snapshot");
        p.close().await.unwrap();

        let empty = Partition::open(&data.join("epochs-1"), config, &shard)
            .await
            .unwrap();
        assert_eq!(empty.leader_epochs(), [(LEADER_EPOCH, 0)]);
        assert_eq!(
            empty.end_offset_for_epoch(LEADER_EPOCH),
            Some((LEADER_EPOCH, 0))
        );
        empty.close().await.unwrap();
    });
}

/// An idempotent batch of producer 42, epoch 0, from sequence `seq`.
fn idempotent(seq: i32, records: usize) -> Vec<u8> {
    records_batch(
        BatchBuilder::new(1_000).idempotent(42, 0, seq),
        seq,
        records,
    )
}

// Proves a partition's truncation cuts its leader-epoch cache and its
// producer state with the log: after a cut at offset 15 of a log written
// under epochs 0, 3 and 7, the cache holds only epoch 0 and the log ends
// at 10; an idempotent producer's batch that was cut is taken again as
// new (not answered as a duplicate of a record that is gone), the batch
// before it is still a duplicate, and after a clean reopen its retry is a
// duplicate at the offset it got.
#[test]
fn truncation_cuts_epochs_and_producer_state() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let dir = data.join("cut-0");
        let config = PartitionConfig::default();
        let log = PartitionLog::open(&dir, config.log.clone(), &shard)
            .await
            .unwrap();
        log.set_leader_epoch(0);
        log.append(&idempotent(0, 5)).await.unwrap();
        log.append(&idempotent(5, 5)).await.unwrap();
        for epoch in [3, 7] {
            log.set_leader_epoch(epoch);
            log.append(&idempotent(epoch * 10, 10)).await.unwrap();
        }
        log.close().await.unwrap();
        drop(log);
        let p = Partition::open(&dir, config.clone(), &shard).await.unwrap();
        assert_eq!(p.leader_epochs(), [(0, 0), (3, 10), (7, 20)]);
        let p = p.truncate_to(15, &shard).await.unwrap();
        assert_eq!(p.offsets().log_end_offset, 10);
        assert_eq!(p.leader_epochs(), [(0, 0)]);
        assert_eq!(p.end_offset_for_epoch(0), Some((0, 10)));
        assert_eq!(p.end_offset_for_epoch(3), None);

        let kept = p.append(&idempotent(5, 5)).await.unwrap();
        assert!(kept.duplicate, "the batch at 5..=9 is still there");
        assert_eq!(kept.ticket.base_offset, 5);
        let again = p.append(&idempotent(10, 10)).await.unwrap();
        assert!(!again.duplicate, "the cut batch is new again");
        assert_eq!(again.ticket.base_offset, 10);
        p.close().await.unwrap();
        drop(p);
        let p = Partition::open(&dir, config, &shard).await.unwrap();
        let retry = p.append(&idempotent(10, 10)).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.ticket.base_offset, 10);
        p.close().await.unwrap();
    });
}
