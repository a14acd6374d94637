//! Small file-system helpers. Blocking syscalls run on glommio's blocking
//! thread pool so they never stall the shard's executor.

use std::path::{Path, PathBuf};

use super::StorageError;

/// Runs a blocking closure off the executor thread.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(f).await
}

/// fsyncs a directory so that entries created, renamed or deleted in it
/// survive a crash.
pub fn sync_dir_blocking(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

pub async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    blocking(move || sync_dir_blocking(&dir))
        .await
        .map_err(|e| StorageError::io("fsync of directory", e))
}

/// Replaces `dir/name` atomically and durably: write a temporary file,
/// fsync it, rename it over the target, fsync the directory.
pub fn write_file_durably_blocking(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir_blocking(dir)
}

pub async fn write_file_durably(
    dir: &Path,
    name: &str,
    bytes: Vec<u8>,
) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    let name = name.to_string();
    blocking(move || write_file_durably_blocking(&dir, &name, &bytes))
        .await
        .map_err(|e| StorageError::io("writing file", e))
}

/// Reads `dir/name`, or `None` if it does not exist.
pub async fn read_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let path: PathBuf = dir.join(name);
    blocking(move || match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await
    .map_err(|e| StorageError::io("reading file", e))
}

/// Removes `dir/name` if present.
pub async fn remove_file(path: PathBuf) -> Result<(), StorageError> {
    blocking(move || match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    })
    .await
    .map_err(|e| StorageError::io("removing file", e))
}
