mod common;
use common::*;
use shardlog::storage::{LogConfig, PartitionLog};

// Proves a basic append, read-back and clean reopen work end to end.
#[test]
fn append_read_reopen() {
    let dir = temp_dir();
    let path = dir.path().to_path_buf();
    run(move || async move {
        let shard = shard(&path, 1 << 20).await;
        let log_dir = path.join("t-0");
        let log = PartitionLog::open(&log_dir, LogConfig::default(), &shard).await.unwrap();
        let mut sent = Vec::new();
        for i in 0..10u64 {
            let b = batch(i, 3, 100, 1000 + i as i64);
            let t = log.append(&b).await.unwrap();
            assert_eq!(t.base_offset, i as i64 * 3);
            sent.push(b);
        }
        let r = log.read(0, 1 << 20).await.unwrap();
        assert!(r.from_cache);
        assert_eq!(r.batches.len(), 10);
        log.close().await.unwrap();
        let log = PartitionLog::open(&log_dir, LogConfig::default(), &shard).await.unwrap();
        assert_eq!(log.offsets().log_end_offset, 30);
        let r = log.read(4, 1 << 20).await.unwrap();
        assert!(!r.from_cache);
        assert_eq!(r.batches.len(), 9);
        for (got, want) in r.batches.iter().zip(&sent[1..]) {
            assert_eq!(payload(got), payload(want));
        }
        drop(log);
        let log = PartitionLog::open(&log_dir, LogConfig::default(), &shard).await.unwrap();
        assert_eq!(log.offsets().log_end_offset, 30);
        log.close().await.unwrap();
    });
}
