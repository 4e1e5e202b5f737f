//! The Linux calls the standard library lacks: `renameat2(RENAME_EXCHANGE)`, a symlink-refusing
//! walk with `openat`, `sync_file_range` to start writeback early, and the descriptor-relative
//! calls (`openat`, `unlinkat`, `fdopendir`, `fchmod`) that `remove.rs` removes trees with, and
//! the new mount API calls (`open_tree`, `mount_setattr`) for `idmap.rs`.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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

/// The directory descriptor calls are relative to: an open directory, or the working directory.
#[derive(Clone, Copy)]
pub enum Dir<'a> {
    Cwd,
    Fd(BorrowedFd<'a>),
}

impl Dir<'_> {
    fn raw(self) -> RawFd {
        match self {
            Dir::Cwd => libc::AT_FDCWD,
            Dir::Fd(fd) => fd.as_raw_fd(),
        }
    }
}

/// Opens the directory `name` in `dir` for reading, refusing a symlink (`ELOOP`) or a non-directory
/// (`ENOTDIR`). `name` may be `..`.
pub fn open_dir_at(dir: Dir, name: &[u8]) -> io::Result<OwnedFd> {
    openat(dir.raw(), name, libc::O_RDONLY | libc::O_DIRECTORY)
}

/// `unlinkat(2)`: removes the file, symlink or (with `directory`) empty directory `name` in `dir`.
/// Without `directory`, a directory fails with `EISDIR`.
pub fn unlink_at(dir: Dir, name: &[u8], directory: bool) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = if directory { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `dir` is an open descriptor (or AT_FDCWD) and `c` a valid C string.
    if unsafe { libc::unlinkat(dir.raw(), c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The device and inode numbers of an open file: what identifies a directory across re-opens.
pub fn file_id(fd: BorrowedFd) -> io::Result<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open and `st` is writable memory of the right size.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// Sets the permission bits of an open file.
pub fn fchmod(fd: BorrowedFd, mode: u32) -> io::Result<()> {
    // SAFETY: `fd` is open; fchmod only reads its arguments.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets the permission bits of the directory `name` in `dir` without following a symlink: the
/// directory is pinned with an `O_PATH` descriptor (which needs no permission on it), then changed
/// through `/proc/self/fd`, since `fchmod` refuses `O_PATH` descriptors and `fchmodat` has no
/// working `AT_SYMLINK_NOFOLLOW` on Linux.
pub fn chmod_dir_at(dir: Dir, name: &[u8], mode: u32) -> io::Result<()> {
    let pinned = openat(dir.raw(), name, libc::O_PATH | libc::O_DIRECTORY)?;
    let proc = CString::new(format!("/proc/self/fd/{}", pinned.as_raw_fd())).expect("no NUL in a number");
    // SAFETY: `proc` is a valid C string; `pinned` stays open until after the call.
    if unsafe { libc::chmod(proc.as_ptr(), mode as libc::mode_t) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The names in an open directory, without `.` and `..`, in the order the file system gives them.
/// Reads through a descriptor of its own, so `dir` keeps its offset and stays open.
pub fn dir_names(dir: BorrowedFd) -> io::Result<Vec<Vec<u8>>> {
    let own = openat(dir.as_raw_fd(), b".", libc::O_RDONLY | libc::O_DIRECTORY)?;
    // SAFETY: `own` is an open directory descriptor; on success the stream owns it (closedir
    // closes it), so it is released from the OwnedFd first.
    let stream = unsafe { libc::fdopendir(own.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(own);
    let mut names = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; readdir signals the end and errors with NULL, told apart by errno.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is a valid open DIR*.
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            let err = io::Error::last_os_error();
            break if err.raw_os_error() == Some(0) { Ok(()) } else { Err(err) };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated and lives until
        // the next readdir call; the bytes are copied out before that.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    };
    // SAFETY: `stream` is valid and closed exactly once.
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

// --- idmapped mounts (`idmap.rs`) -------------------------------------------------------------

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` from `<linux/mount.h>` (size version 0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Starts `program` with `args` (it must wait to be killed) in a new user namespace of its own.
pub fn spawn_in_new_user_namespace(program: &str, args: &[&str]) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command.args(args);
    command.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and calls only unshare(2), which is
    // async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
    command.spawn()
}

/// A detached, read-only, nosuid, nodev copy of the mount tree at `path`, its owners shown through the user
/// namespace `userns` (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_IDMAP)`). It is
/// attached nowhere: it exists while the returned descriptor (or a mount made from it) does.
pub fn idmapped_clone(path: &Path, userns: BorrowedFd) -> io::Result<OwnedFd> {
    let c = c_path(path)?;
    // SAFETY: plain syscalls with a valid C string and a struct of the kernel's documented layout;
    // the descriptor returned is new and owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        // A file the build user owns is root's in the view: set-uid and device files mean nothing in it.
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(tree)
}

/// Gives up ownership of `fd`: the caller (JavaScript) closes it.
pub fn into_raw(fd: OwnedFd) -> RawFd {
    use std::os::unix::io::IntoRawFd;
    fd.into_raw_fd()
}

/// Tells the kernel that `file` will be read once, front to back (`posix_fadvise(SEQUENTIAL)`): it
/// doubles the read-ahead window, which keeps a cold read ahead of the hashing. A hint: errors are
/// ignored, and a warm page cache makes it a no-op.
pub fn advise_sequential(file: &File) {
    // SAFETY: the descriptor is open for the duration of the call; the call only reads its args.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
    }
}

/// A file's bytes mapped read-only (`mmap(MAP_PRIVATE)`), unmapped on drop.
///
/// Mapping shares the page cache's pages instead of copying them into fresh memory, which on these
/// virtual machines costs about 2.7 ms per MB in first-touch page faults (a 56 MB index: 150 ms
/// read, 2–4 ms mapped). Pages come in as they are first read, not up front (`MAP_POPULATE`): that
/// measured no faster, and it read a hostile 3 GB sparse index whole (3 GB resident) before the
/// parser could see its first bad byte. The mapping assumes the file is not truncated while it is
/// held (the process would get `SIGBUS`): repository documents are only ever replaced by renaming
/// new files over them, never rewritten in place, and the manager releases its mapping as soon as
/// it has read it.
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value; sharing `&[u8]` views across threads is
// as safe as sharing any immutable slice.
unsafe impl Send for Mapped {}
// SAFETY: as above: nothing mutates the mapped bytes through this value.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps the whole of `file` as it is now.
    pub fn of(file: &File) -> io::Result<Mapped> {
        let len = usize::try_from(file.metadata()?.len()).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        if len == 0 {
            // mmap refuses a length of 0; an empty file has no bytes to map.
            return Ok(Mapped { ptr: std::ptr::null_mut(), len: 0 });
        }
        // SAFETY: a fresh private read-only mapping of an open descriptor; the kernel chooses the
        // address, and nothing else refers to the range until `Mapped` is dropped.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives (see `of`).
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `ptr`/`len` are exactly what mmap returned, and no view outlives `self`.
            unsafe {
                libc::munmap(self.ptr, self.len);
            }
        }
    }
}
