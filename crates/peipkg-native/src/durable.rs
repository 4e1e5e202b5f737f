//! Primitives for exclusive, crash-safe changes to a directory tree (`DECISIONS.md`, Repository
//! writes): an `flock(2)` on a directory, an atomic swap of two directories, fsync, and new files
//! written with early writeback and fsynced.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

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

/// Bytes written between two writeback kicks.
const WRITEBACK_STEP: u64 = 8 << 20;

/// A file being written that will be fsynced. With `early_writeback`, writeback of every finished
/// 8 MiB is started as it is written, so the fsync at the end waits for the tail only instead of
/// for the whole file (an 80 MB package here: 40–47 ms of fsync became 9–17 ms).
pub struct WritebackFile {
    file: File,
    early_writeback: bool,
    written: u64,
    kicked: u64,
}

impl WritebackFile {
    pub fn new(file: File, early_writeback: bool) -> WritebackFile {
        WritebackFile { file, early_writeback, written: 0, kicked: 0 }
    }

    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for WritebackFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.early_writeback && self.written - self.kicked >= WRITEBACK_STEP {
            sys::start_writeback(&self.file, self.kicked, self.written - self.kicked);
            self.kicked = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A new file (it must not exist) written front to back through a reused 1 MiB buffer, hashed as
/// it is written, and fsynced by `finish`: what the repository's documents are written with, so
/// that writing one costs no memory that grows with it.
pub struct NewFile {
    path: PathBuf,
    out: BufWriter<WritebackFile>,
    hasher: Sha256,
    size: usize,
}

impl NewFile {
    pub fn create(path: &Path) -> Result<NewFile> {
        let file =
            OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| Error::io("create", path, e))?;
        Ok(NewFile {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, WritebackFile::new(file, true)),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.size += bytes.len();
        self.out.write_all(bytes).map_err(|e| self.error(e))
    }

    /// The error of a failed write, naming the file.
    pub fn error(&self, e: std::io::Error) -> Error {
        Error::io("write", &self.path, e)
    }

    /// Flushes and fsyncs the file; the SHA-256 and size of what was written.
    pub fn finish(self) -> Result<([u8; 32], usize)> {
        let path = self.path;
        let file = self.out.into_inner().map_err(|e| Error::io("write", &path, e.into_error()))?.into_file();
        file.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
        Ok((self.hasher.finalize().into(), self.size))
    }
}

impl Write for NewFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len();
        self.out.write_all(buf).map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
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
