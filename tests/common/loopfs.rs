//! A small ext4 file system on a loop device, for tests that fill a disk.
//! Needs root and `mkfs.ext4`; where either is missing, or the kernel
//! refuses the mount (a container without loop devices), `mount` says why
//! and the test skips.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LoopFs {
    image: PathBuf,
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// Creates and mounts an ext4 image of `mib` MiB, or says why it could
    /// not.
    pub fn mount(mib: u64) -> Result<LoopFs, String> {
        let dir = super::temp_dir();
        let image = dir.path().join("fs.img");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).map_err(|e| format!("mkdir: {e}"))?;
        let file = std::fs::File::create(&image).map_err(|e| format!("image: {e}"))?;
        file.set_len(mib << 20).map_err(|e| format!("image: {e}"))?;
        drop(file);
        // No reserved blocks: the whole file system is the broker's.
        run("mkfs.ext4", &["-q", "-F", "-m", "0", path_str(&image)])?;
        run("mount", &["-o", "loop", path_str(&image), path_str(&mount)])?;
        Ok(LoopFs {
            image,
            mount,
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Free bytes for an unprivileged writer.
    pub fn free_bytes(&self) -> u64 {
        free_bytes(&self.mount)
    }

    /// Fills the file system with a ballast file, then shrinks it so that
    /// about `leave` bytes are free. Returns the ballast's path.
    pub fn fill_leaving(&self, leave: u64) -> PathBuf {
        let ballast = self.mount.join("ballast");
        let mut f = std::fs::File::create(&ballast).expect("ballast");
        let chunk = vec![0xa5u8; 1 << 20];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the file system: {e}"),
            }
        }
        f.sync_all().ok();
        let len = f.metadata().expect("ballast size").len();
        f.set_len(len.saturating_sub(leave))
            .expect("shrink ballast");
        f.sync_all().expect("sync ballast");
        ballast
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = std::fs::remove_file(&self.image);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Bytes available on the file system holding `path` (from `df`).
pub fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail", path_str(path)])
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the available bytes")
}
