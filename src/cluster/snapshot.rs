//! Snapshots of the metadata image, and the Raft storage that serves them.
//!
//! A snapshot is the image at an applied index, kept as one file
//! (`__cluster_metadata-0/snapshot`, the `eraftpb::Snapshot` with the image
//! as JSON in its data), replaced atomically (written aside, synced,
//! renamed, directory synced). Once it is on disk the log before it is
//! dropped: from Raft's in-memory log ([`compact`]) and from the
//! write-ahead log (see `Wal::rebase`). A follower too far behind gets the
//! snapshot from the leader instead of entries.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage};

use crate::storage::fsutil;

pub const SNAPSHOT_FILE: &str = "snapshot";

/// raft-rs's in-memory log with the latest snapshot's data beside it
/// (`MemStorage` keeps only a snapshot's metadata).
#[derive(Clone)]
pub struct MetaStorage {
    pub mem: MemStorage,
    snapshot: Rc<RefCell<Snapshot>>,
}

impl MetaStorage {
    pub fn new(conf_state: ConfState) -> Self {
        MetaStorage {
            mem: MemStorage::new_with_conf_state(conf_state),
            snapshot: Rc::new(RefCell::new(Snapshot::default())),
        }
    }

    /// The latest snapshot (empty before any).
    pub fn latest(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Installs a snapshot received from the leader or read at start: the
    /// log before and at its index is dropped.
    pub fn install(&self, snapshot: Snapshot) -> raft::Result<()> {
        self.mem.wl().apply_snapshot(snapshot.clone())?;
        *self.snapshot.borrow_mut() = snapshot;
        Ok(())
    }

    /// The entries after `index`, to the end of the log.
    pub fn entries_after(&self, index: u64) -> raft::Result<Vec<Entry>> {
        let last = self.mem.last_index()?;
        if last <= index {
            return Ok(Vec::new());
        }
        self.mem
            .entries(index + 1, last + 1, None, GetEntriesContext::empty(false))
    }

    /// Records a snapshot taken here at `snapshot`'s index (which must be
    /// applied) and drops the log up to it, keeping the entries after it
    /// and the hard state.
    pub fn compact(&self, snapshot: Snapshot) -> raft::Result<()> {
        let index = snapshot.get_metadata().index;
        let after = self.entries_after(index)?;
        {
            let mut core = self.mem.wl();
            let hard_state = core.hard_state().clone();
            let mut meta_only = Snapshot::default();
            meta_only.set_metadata(snapshot.get_metadata().clone());
            core.apply_snapshot(meta_only)?;
            core.append(&after)?;
            core.set_hardstate(hard_state);
        }
        *self.snapshot.borrow_mut() = snapshot;
        Ok(())
    }
}

impl Storage for MetaStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.mem.initial_state()
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.mem.entries(low, high, max_size, context)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        self.mem.first_index()
    }

    fn last_index(&self) -> raft::Result<u64> {
        self.mem.last_index()
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let snapshot = self.snapshot.borrow();
        if snapshot.get_metadata().index < request_index || snapshot.get_metadata().index == 0 {
            return Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(snapshot.clone())
    }
}

/// A snapshot of `data` at `index`/`term`.
pub fn build(index: u64, term: u64, conf_state: ConfState, data: Vec<u8>) -> Snapshot {
    let mut meta = SnapshotMetadata {
        index,
        term,
        ..Default::default()
    };
    meta.set_conf_state(conf_state);
    let mut s = Snapshot::default();
    s.set_metadata(meta);
    s.data = data.into();
    s
}

/// Writes the snapshot file atomically.
pub async fn write(dir: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let bytes = snapshot
        .write_to_bytes()
        .expect("raft protobuf messages always encode");
    let dir = dir.to_path_buf();
    fsutil::blocking(move || -> std::io::Result<()> {
        let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        std::fs::write(&tmp, &bytes)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
        fsutil::sync_dir_blocking(&dir)
    })
    .await
}

/// Reads the snapshot file, if there is one.
pub async fn read(dir: &Path) -> Result<Option<Snapshot>, String> {
    let bytes = fsutil::read_file(dir, SNAPSHOT_FILE)
        .await
        .map_err(|e| e.to_string())?;
    match bytes {
        None => Ok(None),
        Some(b) => Snapshot::parse_from_bytes(&b).map(Some).map_err(|e| {
            format!(
                "metadata snapshot {}: {e}",
                dir.join(SNAPSHOT_FILE).display()
            )
        }),
    }
}

/// The hard state after installing a snapshot at `index`: its commit is
/// at least the snapshot's.
pub fn hard_state_after(mut hs: HardState, snapshot: &Snapshot) -> HardState {
    let meta = snapshot.get_metadata();
    hs.commit = hs.commit.max(meta.index);
    hs.term = hs.term.max(meta.term);
    hs
}
