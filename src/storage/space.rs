//! The size of the file system holding a data directory and what of it is
//! free, as DescribeLogDirs v4 reports them (Kafka's `FileStore`
//! `getTotalSpace` / `getUsableSpace`). statvfs(2) may block on a sick
//! disk, so it runs on glommio's blocking thread pool.

use std::path::{Path, PathBuf};

use super::fsutil;

/// The space of one file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirSpace {
    /// The file system's size.
    pub total_bytes: u64,
    /// What an unprivileged writer may still take (blocks free to
    /// non-root users: root's reserved blocks are not counted).
    pub usable_bytes: u64,
}

/// statvfs(2) of the file system holding `path`.
pub fn dir_space_blocking(path: &Path) -> std::io::Result<DirSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string alive for the call, and
    // `st` points to writable memory of the struct's size, which statvfs
    // fills completely when it returns 0.
    #[allow(unsafe_code)]
    let st = unsafe {
        let rc = libc::statvfs(c_path.as_ptr(), st.as_mut_ptr());
        (rc == 0).then(|| st.assume_init())
    };
    match st {
        Some(st) => {
            // All three are 64-bit on the 64-bit Linux targets served.
            let fragment = st.f_frsize;
            Ok(DirSpace {
                total_bytes: st.f_blocks.saturating_mul(fragment),
                usable_bytes: st.f_bavail.saturating_mul(fragment),
            })
        }
        // errno is still statvfs's: nothing ran since.
        None => Err(std::io::Error::last_os_error()),
    }
}

/// [`dir_space_blocking`] off the executor thread.
pub async fn dir_space(path: &Path) -> std::io::Result<DirSpace> {
    let path: PathBuf = path.to_path_buf();
    fsutil::blocking(move || dir_space_blocking(&path)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves statvfs reports a file system with some space, never more
    // usable than its size, and fails for a path that does not exist.
    #[test]
    fn reports_the_file_system_of_a_directory() {
        let space = dir_space_blocking(&std::env::temp_dir()).expect("statvfs");
        assert!(space.total_bytes > 0);
        assert!(space.usable_bytes <= space.total_bytes);
        let missing = std::env::temp_dir().join("shardlog-no-such-dir/x");
        assert!(dir_space_blocking(&missing).is_err());
    }
}
