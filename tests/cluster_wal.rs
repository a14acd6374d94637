//! The metadata quorum's write-ahead log on shardlog's own storage engine:
//! what Raft persisted replays as Raft left it, including suffixes Raft
//! replaced, after a crash (the log dropped without close), and after a
//! torn last write (the damaged batch is cut by recovery and the log
//! replays to the state persisted before it).

mod common;

use std::path::Path;

use common::{run, shard, temp_dir};
use raft::eraftpb::{Entry, HardState};
use shardlog::cluster::wal::{wal_dir, Wal};
use shardlog::record::batch::BatchHeader;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("{index}@{term}").into_bytes().into(),
        ..Default::default()
    }
}

fn hard_state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState {
        term,
        vote,
        commit,
        ..Default::default()
    }
}

fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.index, e.term)).collect()
}

/// The data bytes of the only segment (its batches end to end; the file
/// may be longer, preallocated).
fn segment_data_len(dir: &Path) -> (std::path::PathBuf, u64) {
    let path = dir.join(format!("{:020}.log", 0));
    let bytes = std::fs::read(&path).expect("segment");
    let mut at = 0usize;
    while let Some(h) = BatchHeader::parse(&bytes[at..]) {
        if h.total_bytes() == 0 || at + h.total_bytes() > bytes.len() {
            break;
        }
        at += h.total_bytes();
    }
    (path, at as u64)
}

#[test]
fn replay_keeps_what_raft_persisted_across_crashes_and_torn_writes() {
    let tmp = temp_dir();
    let data = tmp.path().to_path_buf();
    run(move || async move {
        let storage = shard(&data, 1 << 20).await;
        let wal = Wal::open(&data, &storage).await.unwrap();
        let first: Vec<Entry> = (1..=5).map(|i| entry(i, 1)).collect();
        wal.append(&first, Some(&hard_state(1, 1, 2)))
            .await
            .unwrap();
        // A new leader replaced entries 4 and 5 and added 6.
        let second: Vec<Entry> = (4..=6).map(|i| entry(i, 2)).collect();
        wal.append(&second, Some(&hard_state(2, 3, 5)))
            .await
            .unwrap();
        // A hard state alone (a vote in a later term).
        wal.append(&[], Some(&hard_state(3, 2, 5))).await.unwrap();
        drop(wal); // crash: no close

        let wal = Wal::open(&data, &storage).await.unwrap();
        let r = wal.replay().await.unwrap();
        assert_eq!(
            ids(&r.entries),
            vec![(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
        );
        assert_eq!(r.entries[3].data.as_ref(), b"4@2");
        assert_eq!(r.hard_state, hard_state(3, 2, 5));
        assert_eq!(r.records, 11);
        drop(wal); // crash again

        // Tear the last write (the hard state of term 3) in half: recovery
        // cuts the damaged batch and the state before it replays.
        let dir = wal_dir(&data);
        let (path, len) = segment_data_len(&dir);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 7).unwrap();
        drop(file);
        let wal = Wal::open(&data, &storage).await.unwrap();
        let r = wal.replay().await.unwrap();
        assert_eq!(ids(&r.entries).len(), 6);
        assert_eq!(r.hard_state, hard_state(2, 3, 5));
        // And the log goes on from there.
        wal.append(&[entry(7, 2)], Some(&hard_state(2, 3, 6)))
            .await
            .unwrap();
        wal.close().await.unwrap();
        let wal = Wal::open(&data, &storage).await.unwrap();
        let r = wal.replay().await.unwrap();
        assert_eq!(r.entries.last().map(|e| (e.index, e.term)), Some((7, 2)));
        assert_eq!(r.hard_state.commit, 6);
        wal.close().await.unwrap();
    });
}
