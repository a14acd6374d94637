//! A partition's part in replication, on one machine without a network:
//! a leader of three replicas and a follower copying its batches. The
//! leader's high watermark waits for the ISR's log ends (reported by the
//! followers' fetch offsets), acks=all answers once the ISR has the batch
//! and is refused below min.insync.replicas, and the follower keeps the
//! leader's bytes, offsets and epochs exactly.

mod common;

use std::time::Duration;

use common::*;
use shardlog::partition::replica::RoleChange;
use shardlog::partition::{Acks, Partition, PartitionConfig, PartitionError};
use shardlog::record::records::BatchBuilder;
use shardlog::replication::election::PartitionState;
use shardlog::replication::follower::Truncation;

fn batch(records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000);
    for i in 0..records {
        b.push_value(i as i64, format!("v{i}").as_bytes());
    }
    b.build()
}

fn state(isr: &[i32], partition_epoch: i32) -> PartitionState {
    PartitionState {
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
        leader: 1,
        leader_epoch: 5,
        partition_epoch,
    }
}

const LAG_MS: u64 = 30_000;

// Proves the leader and follower halves together: the high watermark is
// the smallest log end over the ISR, acks=all waits for it (and times
// out without it), min.insync.replicas refuses acks=all before appending
// once the ISR shrinks, a follower takes no produce and holds the leader's
// batches byte for byte with their epoch.
#[test]
fn a_leader_waits_for_its_isr_and_a_follower_copies_it_exactly() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let config = PartitionConfig {
            min_insync_replicas: 2,
            ..PartitionConfig::default()
        };
        let leader = Partition::open(&data.join("t-0-leader"), config.clone(), &shard)
            .await
            .unwrap();
        let follower = Partition::open(&data.join("t-0-follower"), config, &shard)
            .await
            .unwrap();
        assert_eq!(
            leader.take_role(1, &state(&[1, 2, 3], 0), LAG_MS, 0),
            RoleChange::Leads
        );
        assert_eq!(
            follower.take_role(2, &state(&[1, 2, 3], 0), LAG_MS, 0),
            RoleChange::Follows {
                leader: 1,
                epoch: 5
            }
        );
        let second = Duration::from_secs(1);

        // acks=1: appended at once; consumers see nothing until the ISR
        // has it.
        let b = batch(10);
        let produced = leader
            .produce(Some(&b), Acks::Leader, second)
            .await
            .unwrap();
        assert_eq!(produced.base_offset, 0);
        assert_eq!(leader.offsets().high_watermark, 0);
        assert!(leader.read(0, 1 << 20).await.unwrap().batches.is_empty());
        assert_eq!(
            follower
                .produce(Some(&b), Acks::Leader, second)
                .await
                .unwrap_err(),
            PartitionError::NotLeader
        );

        // The follower copies what is written, past the high watermark.
        let copied = leader.replica_read(0, 1 << 20).await.unwrap();
        assert_eq!(copied.batches.len(), 1);
        follower.append_replica(&copied.batches, 0).await.unwrap();
        assert_eq!(follower.offsets().log_end_offset, 10);
        let back = follower.replica_read(0, 1 << 20).await.unwrap();
        assert_eq!(back.batches, copied.batches, "byte for byte");
        assert_eq!(follower.leader_epochs(), [(5, 0)]);

        // Both followers report log end 10: the high watermark moves.
        assert!(leader.on_replica_fetch(2, 10, 1));
        assert_eq!(leader.offsets().high_watermark, 0, "node 3 unknown yet");
        assert!(leader.on_replica_fetch(3, 10, 2));
        assert_eq!(leader.offsets().high_watermark, 10);
        assert!(!leader.on_replica_fetch(7, 10, 2), "not a replica");
        follower.append_replica(&[], 10).await.unwrap();
        assert_eq!(follower.offsets().high_watermark, 10);

        // acks=all: answered once both followers fetched past it.
        let b = batch(5);
        let ack = leader.produce(Some(&b), Acks::All, second);
        let fetches = async {
            glommio::timer::sleep(Duration::from_millis(50)).await;
            leader.on_replica_fetch(2, 15, 3);
            glommio::timer::sleep(Duration::from_millis(50)).await;
            leader.on_replica_fetch(3, 15, 4);
        };
        let (acked, ()) = futures_lite::future::zip(ack, fetches).await;
        assert_eq!(acked.unwrap().base_offset, 10);
        assert_eq!(leader.offsets().high_watermark, 15);

        // No fetch: acks=all times out (REQUEST_TIMED_OUT).
        let b = batch(1);
        let short = Duration::from_millis(200);
        assert_eq!(
            leader
                .produce(Some(&b), Acks::All, short)
                .await
                .unwrap_err(),
            PartitionError::TimedOut
        );

        // The controller shrinks the ISR to the leader: below
        // min.insync.replicas acks=all is refused before appending, and
        // what the leader has is committed (it alone is the ISR).
        assert_eq!(
            leader.take_role(1, &state(&[1], 1), LAG_MS, 5),
            RoleChange::Same
        );
        let end = leader.offsets().log_end_offset;
        assert_eq!(leader.offsets().high_watermark, end);
        assert_eq!(
            leader
                .produce(Some(&b), Acks::All, second)
                .await
                .unwrap_err(),
            PartitionError::NotEnoughReplicas {
                required: 2,
                in_sync: 1
            }
        );
        assert_eq!(leader.offsets().log_end_offset, end, "nothing appended");

        // A waiting acks=all is answered NOT_LEADER_OR_FOLLOWER as soon as
        // the replica stops leading (another leads in epoch 6), long before
        // its timeout.
        assert_eq!(
            leader.take_role(1, &state(&[1, 2], 2), LAG_MS, 6),
            RoleChange::Same
        );
        let started = std::time::Instant::now();
        let ack = leader.produce(Some(&b), Acks::All, Duration::from_secs(30));
        let demote = async {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            let moved = PartitionState {
                leader: 2,
                leader_epoch: 6,
                ..state(&[1, 2], 3)
            };
            leader.take_role(1, &moved, LAG_MS, 7)
        };
        let (acked, role) = futures_lite::future::zip(ack, demote).await;
        assert_eq!(
            role,
            RoleChange::Follows {
                leader: 2,
                epoch: 6
            }
        );
        assert_eq!(acked.unwrap_err(), PartitionError::NotLeader);
        assert!(started.elapsed() < Duration::from_secs(5));

        // Epoch 3 written, epoch 7 led without writing (it starts at the
        // log end), then another leads with epochs [(3, 0), (5, 4)]: asked
        // about 7 it answers for 5, which this replica never had, so it
        // cuts where its epoch 3 ends (4: no record goes) and must drop
        // epoch 7 from its cache, or it would ask about 7 forever and
        // never fetch. Then asked about 3, the leader answers 3 ending at
        // 4, and it is done.
        let third = Partition::open(&data.join("t-0-third"), PartitionConfig::default(), &shard)
            .await
            .unwrap();
        let led = |epoch: i32| PartitionState {
            leader_epoch: epoch,
            ..state(&[1, 2, 3], 0)
        };
        third.take_role(1, &led(3), LAG_MS, 0);
        third
            .produce(Some(&batch(4)), Acks::Leader, second)
            .await
            .unwrap();
        third.take_role(1, &led(7), LAG_MS, 0);
        assert_eq!(third.latest_epoch(), Some(7));
        let moved = PartitionState {
            leader: 2,
            ..led(8)
        };
        third.take_role(1, &moved, LAG_MS, 0);
        assert_eq!(
            third.truncation(5, 10),
            Truncation::To {
                offset: 4,
                done: false
            }
        );
        third.forget_epochs_from(4);
        assert_eq!(third.latest_epoch(), Some(3));
        assert_eq!(
            third.truncation(3, 4),
            Truncation::To {
                offset: 4,
                done: true
            }
        );
        third.close().await.unwrap();
        leader.close().await.unwrap();
        follower.close().await.unwrap();
    });
}

/// A 5-record batch at `base` in leader epoch 3, as a leader's log (after
/// its cleaner dropped what came before) holds it.
fn batch_at(base: i64) -> bytes::Bytes {
    let mut b = batch(5);
    shardlog::record::batch::patch_base_offset_and_epoch(&mut b, base, 3);
    bytes::Bytes::from(b)
}

// Proves a follower takes the leader's offset gaps (whole batches its log
// cleaner removed) as they are, refuses a batch from before its log end,
// and reads and recovers the gapped log.
#[test]
fn a_follower_keeps_the_leaders_offset_gaps() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let dir = data.join("t-0");
        let follower = Partition::open(&dir, PartitionConfig::default(), &shard)
            .await
            .unwrap();
        follower.take_role(2, &state(&[1, 2, 3], 0), LAG_MS, 0);
        follower
            .append_replica(&[batch_at(0), batch_at(20), batch_at(40)], 45)
            .await
            .unwrap();
        assert_eq!(follower.offsets().log_end_offset, 45);
        let err = follower.append_replica(&[batch_at(30)], 45).await;
        assert!(err.is_err(), "before the log end: {err:?}");
        let from_gap = follower.replica_read(7, 1 << 20).await.unwrap();
        let bases: Vec<i64> = from_gap
            .batches
            .iter()
            .map(|b| i64::from_be_bytes(b[..8].try_into().unwrap()))
            .collect();
        assert_eq!(bases, [20, 40]);
        follower.close().await.unwrap();
        drop(follower);
        let again = Partition::open(&dir, PartitionConfig::default(), &shard)
            .await
            .unwrap();
        assert_eq!(again.offsets().log_end_offset, 45);
        let all = again.replica_read(0, 1 << 20).await.unwrap();
        assert_eq!(all.batches.len(), 3);
        assert_eq!(all.batches[1], batch_at(20));
        again.close().await.unwrap();
    });
}

// Proves the high watermark survives a clean close (Kafka checkpoints
// it): a replica that stands by at its next start shows it at once, not
// its log start, while its log ends where it did; once the log is cut the
// saved one is forgotten.
#[test]
fn a_clean_close_keeps_the_high_watermark_for_the_restart() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let dir = data.join("t-0");
        let open = || Partition::open(&dir, PartitionConfig::default(), &shard);
        let leader = open().await.unwrap();
        leader.take_role(1, &state(&[1, 2, 3], 0), LAG_MS, 0);
        let second = Duration::from_secs(1);
        leader
            .produce(Some(&batch(10)), Acks::Leader, second)
            .await
            .unwrap();
        leader.on_replica_fetch(2, 10, 1);
        leader.on_replica_fetch(3, 10, 2);
        leader
            .produce(Some(&batch(5)), Acks::Leader, second)
            .await
            .unwrap();
        assert_eq!(leader.offsets().high_watermark, 10);
        leader.close().await.unwrap();
        drop(leader);

        let again = open().await.unwrap();
        again.stand_by();
        let offsets = again.offsets();
        assert_eq!((offsets.high_watermark, offsets.log_end_offset), (10, 15));
        again.close().await.unwrap();
        drop(again);

        // Cut: the saved high watermark goes with the old end.
        Partition::truncate_closed(&dir, 12, &shard).await.unwrap();
        let cut = open().await.unwrap();
        cut.stand_by();
        let offsets = cut.offsets();
        assert_eq!((offsets.high_watermark, offsets.log_end_offset), (0, 10));
        cut.close().await.unwrap();
    });
}
