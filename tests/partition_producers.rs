//! Idempotent-producer behaviour of a partition, and the rebuild of
//! producer state after a clean close (snapshot) and after a crash (replay
//! of batch headers from the log).

mod common;

use common::*;
use shardlog::error_code::ErrorCode;
use shardlog::handler::errors::ToErrorCode;
use shardlog::partition::{Acks, Partition, PartitionConfig};
use shardlog::record::records::BatchBuilder;

/// How long a test waits for an append to be written.
const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn idempotent(pid: i64, epoch: i16, seq: i32, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000).idempotent(pid, epoch, seq);
    for i in 0..records {
        b.push_value(
            i as i64,
            format!("p{pid}-e{epoch}-s{}", seq + i as i32).as_bytes(),
        );
    }
    b.build()
}

// Proves a retried batch gets its original offsets without a second copy in
// the log, a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER and an old epoch
// INVALID_PRODUCER_EPOCH; and that this holds after a clean reopen and after
// a crash, when the state is rebuilt from the log.
#[test]
fn duplicates_gaps_and_fencing_survive_reopen_and_crash() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let shard = shard(&data, 1 << 20).await;
        let dir = data.join("idem-0");
        let p = Partition::open(&dir, PartitionConfig::default(), &shard)
            .await
            .unwrap();
        let mut seq = 0;
        let mut offsets = Vec::new();
        for _ in 0..8 {
            let out = p.append(&idempotent(42, 0, seq, 3)).await.unwrap();
            assert!(!out.duplicate);
            p.wait(&out, Acks::Leader, Some(WAIT)).await.unwrap();
            offsets.push(out.ticket.base_offset);
            seq += 3;
        }
        let end = p.offsets().log_end_offset;

        // Retry of the 7th batch (sequence 18..=20).
        let retry = p.append(&idempotent(42, 0, 18, 3)).await.unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.ticket.base_offset, offsets[6]);
        assert_eq!(p.offsets().log_end_offset, end);
        assert_eq!(
            p.append(&idempotent(42, 0, 30, 1))
                .await
                .unwrap_err()
                .error_code(),
            ErrorCode::OutOfOrderSequenceNumber
        );
        p.close().await.unwrap();

        // Clean reopen: state comes from the snapshot.
        let p = Partition::open(&dir, PartitionConfig::default(), &shard)
            .await
            .unwrap();
        assert_eq!(p.producer_count(), 1);
        let retry = p.append(&idempotent(42, 0, 21, 3)).await.unwrap();
        assert!(
            retry.duplicate,
            "the last batch is remembered across a clean reopen"
        );
        assert_eq!(retry.ticket.base_offset, offsets[7]);
        let next = p.append(&idempotent(42, 0, 24, 2)).await.unwrap();
        assert!(!next.duplicate);
        p.wait(&next, Acks::Leader, Some(WAIT)).await.unwrap();
        // Bump the epoch, then the old epoch is fenced.
        let bumped = p.append(&idempotent(42, 1, 0, 1)).await.unwrap();
        p.wait(&bumped, Acks::Leader, Some(WAIT)).await.unwrap();
        assert_eq!(
            p.append(&idempotent(42, 0, 26, 1))
                .await
                .unwrap_err()
                .error_code(),
            ErrorCode::InvalidProducerEpoch
        );
        let end = p.offsets().log_end_offset;
        drop(p); // crash: no snapshot matches the log end any more

        let p = Partition::open(&dir, PartitionConfig::default(), &shard)
            .await
            .unwrap();
        assert_eq!(p.offsets().log_end_offset, end);
        let retry = p.append(&idempotent(42, 1, 0, 1)).await.unwrap();
        assert!(
            retry.duplicate,
            "state rebuilt from batch headers after a crash"
        );
        assert_eq!(retry.ticket.base_offset, bumped.ticket.base_offset);
        assert_eq!(
            p.append(&idempotent(42, 0, 26, 1))
                .await
                .unwrap_err()
                .error_code(),
            ErrorCode::InvalidProducerEpoch
        );
        assert!(!p.append(&idempotent(42, 1, 1, 1)).await.unwrap().duplicate);
        p.close().await.unwrap();
    });
}
