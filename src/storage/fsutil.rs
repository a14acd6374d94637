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

/// When a file written here is on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the call returns: the file and its directory are fsynced.
    EachFile,
    /// Once the caller syncs the whole file system ([`sync_fs`]): for a
    /// shutdown writing thousands of small files, one sync instead of two
    /// per file. The file is rewritten in place, so no inode is allocated
    /// when it exists: a torn write must be detectable (a checksum), or the
    /// file must be vouched for by one written after the sync.
    Deferred,
}

/// Replaces `dir/name` atomically and durably: write a temporary file,
/// fsync it, rename it over the target, fsync the directory.
pub fn write_file_durably_blocking(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    write_file_blocking(dir, name, bytes, Durability::EachFile)
}

/// Replaces `dir/name`: atomically (a temporary file renamed over it) and
/// durably with [`Durability::EachFile`]; in place with
/// [`Durability::Deferred`].
pub fn write_file_blocking(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    durability: Durability,
) -> std::io::Result<()> {
    use std::io::Write;
    if durability == Durability::Deferred {
        // Overwritten in place and cut only when it shrinks: truncating to
        // zero first would free the file's block (a discard on some
        // mounts) just to allocate another.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(name))?;
        file.write_all(bytes)?;
        if file.metadata()?.len() > bytes.len() as u64 {
            file.set_len(bytes.len() as u64)?;
        }
        return Ok(());
    }
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durability == Durability::EachFile {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, dir.join(name))?;
    if durability == Durability::EachFile {
        sync_dir_blocking(dir)?;
    }
    Ok(())
}

/// Creates the empty files `names` in `dir` where missing (existing ones
/// are left as they are), so later in-place writes allocate no inode.
/// The names of the entries of `dir`.
pub fn list_names_blocking(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

pub fn create_missing_blocking(dir: &Path, names: &[&str]) -> std::io::Result<()> {
    for name in names {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(name))?;
    }
    Ok(())
}

/// Runs `f` on every item from `threads` threads at once and returns each
/// item's result in order. For file-system calls that mostly wait on the
/// disk (trims, small writes): their waits overlap. The threads inherit the
/// caller's CPU affinity, so a shard's blocking thread keeps them on the
/// shard's core.
pub fn for_each_parallel_blocking<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> std::io::Result<()> + Sync,
) -> Vec<std::io::Result<()>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut results: Vec<Option<std::io::Result<()>>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.clamp(1, items.len().max(1)))
            .map(|_| scope.spawn(work))
            .collect();
        let mut all = work();
        for helper in helpers {
            match helper.join() {
                Ok(done) => all.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        for (i, result) in all {
            results[i] = Some(result);
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every item was taken by one thread"))
        .collect()
}

/// Commits everything written to the file system holding `path` (data,
/// metadata, renames) to stable storage: syncfs(2).
pub fn sync_fs_blocking(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(path)?;
    // SAFETY: syncfs takes a file descriptor that stays open for the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub async fn sync_fs(path: &Path) -> Result<(), StorageError> {
    let path = path.to_path_buf();
    blocking(move || sync_fs_blocking(&path))
        .await
        .map_err(|e| StorageError::io("syncfs", e))
}

pub async fn write_file_durably(
    dir: &Path,
    name: &str,
    bytes: Vec<u8>,
) -> Result<(), StorageError> {
    write_file(dir, name, bytes, Durability::EachFile).await
}

pub async fn write_file(
    dir: &Path,
    name: &str,
    bytes: Vec<u8>,
    durability: Durability,
) -> Result<(), StorageError> {
    let dir = dir.to_path_buf();
    let name = name.to_string();
    blocking(move || write_file_blocking(&dir, &name, &bytes, durability))
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

#[cfg(test)]
mod tests {
    use super::*;

    // Proves every item runs exactly once, its result lands at its own
    // index, and one failure does not stop the others.
    #[test]
    fn parallel_results_in_order() {
        let items: Vec<u32> = (0..1000).collect();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let results = for_each_parallel_blocking(&items, 8, |&n| {
            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n % 7 == 3 {
                Err(std::io::Error::other(format!("item {n}")))
            } else {
                Ok(())
            }
        });
        assert_eq!(ran.into_inner(), items.len());
        assert_eq!(results.len(), items.len());
        for (n, result) in items.iter().zip(&results) {
            match result {
                Err(e) => assert_eq!(e.to_string(), format!("item {n}")),
                Ok(()) => assert_ne!(n % 7, 3),
            }
        }
        assert!(for_each_parallel_blocking(&[] as &[u32], 8, |_| Ok(())).is_empty());
    }
}
