//! The Linux calls the standard library lacks: `renameat2(RENAME_EXCHANGE)`, a symlink-refusing
//! walk with `openat`, and `sync_file_range` to start writeback early.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// `RENAME_EXCHANGE` from `<linux/fs.h>` (not exported by the libc crate for glibc targets).
const RENAME_EXCHANGE: libc::c_uint = 1 << 1;

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Atomically swaps two existing paths (both must exist; they may be directories).
pub fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
    let (ca, cb) = (c_path(a)?, c_path(b)?);
    // The raw system call rather than glibc's wrapper, which only glibc 2.28 has: this keeps the
    // prebuilt addon loadable down to glibc 2.17 (Linux itself has had renameat2 since 3.15).
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call; the arguments
    // match the kernel's renameat2(int, const char *, int, const char *, unsigned int).
    let ret = unsafe {
        libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), RENAME_EXCHANGE)
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn openat(dir: libc::c_int, name: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `dir` is an open descriptor (or AT_FDCWD) and `c` a valid C string.
    let fd = unsafe { libc::openat(dir, c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` (slash-separated, no `.`/`..`/empty components) below the directory `root` for
/// reading, refusing a symlink at every step. A build script that swaps a staged file or one of its
/// parent directories for a symlink (to the signing key, say) gets `ELOOP`/`ENOTDIR`, not the key.
pub fn open_beneath(root: &Path, rel: &[u8]) -> io::Result<File> {
    let mut dir = openat(libc::AT_FDCWD, root.as_os_str().as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY)?;
    let parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == b"." || *part == b".." {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if i + 1 == parts.len() {
            return Ok(File::from(openat(dir.as_raw_fd(), part, libc::O_RDONLY)?));
        }
        dir = openat(dir.as_raw_fd(), part, libc::O_RDONLY | libc::O_DIRECTORY)?;
    }
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

/// Starts writing `len` bytes of `file` from `offset` back to disk without waiting for them
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that a final fsync has little left to do. A hint:
/// errors are ignored, and the fsync that follows is what makes the data durable.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    // SAFETY: the descriptor is open for the duration of the call; the call only reads its args.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}
