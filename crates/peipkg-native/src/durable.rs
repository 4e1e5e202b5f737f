//! Primitives for exclusive, crash-safe changes to a directory tree (`DECISIONS.md`, Repository
//! writes): an `flock(2)` on a directory, an atomic swap of two directories, and fsync.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Code, Error, Result};
use crate::ffi::sys;

/// An exclusive `flock` held on a directory. The kernel drops it when the descriptor closes: on
/// `release`, on drop, or when the process dies, so a crash never leaves a stale lock behind.
#[derive(Debug)]
pub struct DirLock {
    file: Mutex<Option<File>>,
}

fn open_dir(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_dir() {
        return Err(Error::io("lock", path, std::io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(file)
}

fn locked(path: &Path) -> Error {
    Error::at(Code::Locked, path, format!("{} is locked by another process", path.display()))
}

impl DirLock {
    /// Takes the lock or fails at once with `Code::Locked`.
    pub fn try_lock(path: &Path) -> Result<DirLock> {
        let file = open_dir(path)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { file: Mutex::new(Some(file)) }),
            Err(TryLockError::WouldBlock) => Err(locked(path)),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
        }
    }

    /// Retries until the lock is free or `timeout` has passed (then `Code::Locked`). Polling keeps
    /// the waiting thread interruptible by the timeout, which a blocking `flock` is not.
    pub fn lock_within(path: &Path, timeout: Duration) -> Result<DirLock> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            match DirLock::try_lock(path) {
                Err(e) if e.code == Code::Locked && Instant::now() < deadline => {
                    std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    pub fn is_held(&self) -> bool {
        self.file.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    /// Releases the lock; later calls do nothing.
    pub fn release(&self) {
        if let Ok(mut f) = self.file.lock() {
            f.take();
        }
    }
}

/// Swaps two existing directories (or files) in one step: a reader sees one or the other, never a mix.
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    sys::rename_exchange(a, b).map_err(|e| Error::io("exchange", a, e)).map_err(|mut err| {
        err.message = format!("{} (with {})", err.message, b.display());
        err
    })
}

/// fsync of a file or a directory (making renames inside it durable).
pub fn fsync(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("peipkg-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn lock_excludes_a_second_holder_until_released() {
        let d = tmp("lock");
        let a = DirLock::try_lock(&d).unwrap();
        assert_eq!(DirLock::try_lock(&d).unwrap_err().code, Code::Locked);
        assert_eq!(DirLock::lock_within(&d, Duration::from_millis(30)).unwrap_err().code, Code::Locked);
        a.release();
        assert!(!a.is_held());
        let b = DirLock::try_lock(&d).unwrap();
        drop(b);
        DirLock::try_lock(&d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_refuses_a_file() {
        let d = tmp("lockfile");
        std::fs::write(d.join("f"), b"x").unwrap();
        assert_eq!(DirLock::try_lock(&d.join("f")).unwrap_err().errno, Some("ENOTDIR"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn exchange_swaps_directories() {
        let d = tmp("xchg");
        std::fs::create_dir(d.join("a")).unwrap();
        std::fs::create_dir(d.join("b")).unwrap();
        std::fs::write(d.join("a/one"), b"1").unwrap();
        std::fs::write(d.join("b/two"), b"2").unwrap();
        exchange(&d.join("a"), &d.join("b")).unwrap();
        assert!(d.join("a/two").exists() && d.join("b/one").exists());
        let e = exchange(&d.join("a"), &d.join("missing")).unwrap_err();
        assert_eq!(e.errno, Some("ENOENT"));
        fsync(&d).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
