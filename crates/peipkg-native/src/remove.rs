//! Removes a directory tree of any depth (`rm -rf`), for scratch and temporary folders.
//!
//! A build script controls what it stages, and a tree nested deeper than `PATH_MAX` (4,096 bytes)
//! defeats every remover that works with path strings, Node's `fs.rm` included: it fails with
//! `ENAMETOOLONG` and leaves the folder behind. This one never builds a path: it works relative to
//! directory descriptors (`openat`/`unlinkat`), so depth does not matter.
//!
//! - Symlinks are removed, never followed (every open is `O_NOFOLLOW | O_DIRECTORY`).
//! - At most `OPEN_LIMIT` directories are held open, whatever the depth: going down past the limit
//!   closes the shallowest one, and coming back up re-opens it through `..`, checked against the
//!   device and inode recorded on the way down, so a directory moved meanwhile is not mistaken.
//! - A directory the caller owns but may not read or change (mode 000, 0500) is given mode 0700
//!   first, as `rm -rf` would need; root needs no such help.
//! - A path that does not exist is already removed.
//!
//! It does not cross-check mount points or hold off concurrent writers: a file created in a
//! directory while it is being emptied fails the final `rmdir` with `ENOTEMPTY`.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ffi::sys::{self, Dir};

/// Directory descriptors held open at once (a few more are open for an instant: one to list a
/// directory, one to change its mode).
pub const OPEN_LIMIT: usize = 8;

struct Level {
    /// The directory's name in its parent (empty for the top).
    name: Vec<u8>,
    /// `(st_dev, st_ino)`, to recognise the directory when it is re-opened through `..`.
    id: (u64, u64),
    fd: Option<OwnedFd>,
    /// Names listed but not yet removed.
    pending: Vec<Vec<u8>>,
    /// Mode 0700 was already given to it (so an `EACCES` inside it is final).
    opened_up: bool,
}

/// What the walk keeps: the levels from the top down, and the index of the shallowest open one
/// (every level from there down is open).
struct Walk<'a> {
    top: &'a Path,
    levels: Vec<Level>,
    shallowest_open: usize,
}

fn is(err: &std::io::Error, errno: i32) -> bool {
    err.raw_os_error() == Some(errno)
}

impl Walk<'_> {
    /// The path of `name` in the current directory, for messages; long paths keep their ends.
    fn shown(&self, name: Option<&[u8]>) -> PathBuf {
        let mut parts: Vec<&[u8]> = self.levels.iter().skip(1).map(|l| l.name.as_slice()).collect();
        parts.extend(name);
        let mut out = self.top.as_os_str().as_bytes().to_vec();
        let keep_head = 2;
        let keep_tail = 3;
        for (i, part) in parts.iter().enumerate() {
            if parts.len() > keep_head + keep_tail + 1 && i == keep_head {
                out.extend_from_slice(format!("/…({} more levels)…", parts.len() - keep_head - keep_tail).as_bytes());
            }
            if parts.len() <= keep_head + keep_tail + 1 || i < keep_head || i >= parts.len() - keep_tail {
                out.push(b'/');
                out.extend_from_slice(part);
            }
        }
        PathBuf::from(std::ffi::OsStr::from_bytes(&out))
    }

    fn fail(&self, action: &str, name: Option<&[u8]>, err: std::io::Error) -> Error {
        Error::io(action, &self.shown(name), err)
    }

    fn current(&self) -> &OwnedFd {
        self.levels.last().and_then(|l| l.fd.as_ref()).expect("the deepest level is open")
    }

    /// Opens the directory `name` in `dir`, giving it mode 0700 first if it cannot be read.
    fn open_child(&self, dir: Dir, name: &[u8]) -> std::io::Result<OwnedFd> {
        match sys::open_dir_at(dir, name) {
            Err(e) if is(&e, libc::EACCES) => {
                sys::chmod_dir_at(dir, name, 0o700)?;
                sys::open_dir_at(dir, name)
            }
            other => other,
        }
    }

    /// Goes down into the directory `name` of the current one (unless it vanished meanwhile).
    fn descend(&mut self, name: Vec<u8>) -> Result<()> {
        let fd = match self.open_child(Dir::Fd(self.current().as_fd()), &name) {
            Ok(fd) => fd,
            Err(e) if is(&e, libc::ENOENT) => return Ok(()),
            Err(e) => return Err(self.fail("open", Some(&name), e)),
        };
        let id = sys::file_id(fd.as_fd()).map_err(|e| self.fail("stat", Some(&name), e))?;
        let pending = sys::dir_names(fd.as_fd()).map_err(|e| self.fail("read", Some(&name), e))?;
        self.levels.push(Level { name, id, fd: Some(fd), pending, opened_up: false });
        if self.levels.len() - self.shallowest_open > OPEN_LIMIT {
            self.levels[self.shallowest_open].fd = None;
            self.shallowest_open += 1;
        }
        Ok(())
    }

    /// Leaves the (now empty) current directory and removes it from its parent.
    fn ascend(&mut self) -> Result<()> {
        let child = self.levels.pop().expect("not at the top");
        let p = self.levels.len() - 1;
        if p < self.shallowest_open {
            let fd = child.fd.as_ref().expect("the deepest level is open");
            let parent = sys::open_dir_at(Dir::Fd(fd.as_fd()), b"..").map_err(|e| self.fail("open", Some(b".."), e))?;
            let id = sys::file_id(parent.as_fd()).map_err(|e| self.fail("stat", None, e))?;
            if id != self.levels[p].id {
                return Err(self.fail(
                    "re-open",
                    None,
                    std::io::Error::other("the directory was moved while it was being removed"),
                ));
            }
            self.levels[p].fd = Some(parent);
            self.shallowest_open = p;
        }
        drop(child.fd);
        self.remove_dir(&child.name)
    }

    /// `unlinkat` in the current directory. A directory we may not change is given mode 0700
    /// once and the call retried. A name that is already gone counts as removed.
    fn unlink(&mut self, name: &[u8], directory: bool) -> std::io::Result<()> {
        let dir = Dir::Fd(self.current().as_fd());
        match sys::unlink_at(dir, name, directory) {
            Err(e) if is(&e, libc::ENOENT) => Ok(()),
            Err(e) if is(&e, libc::EACCES) && !self.levels.last().expect("a level").opened_up => {
                sys::fchmod(self.current().as_fd(), 0o700).map_err(|_| e)?;
                self.levels.last_mut().expect("a level").opened_up = true;
                self.unlink(name, directory)
            }
            other => other,
        }
    }

    fn remove_dir(&mut self, name: &[u8]) -> Result<()> {
        self.unlink(name, true).map_err(|e| self.fail("remove", Some(name), e))
    }

    /// Removes the current directory's entries and, going down and up, everything below them.
    fn empty(&mut self) -> Result<()> {
        loop {
            let next = self.levels.last_mut().expect("a level").pending.pop();
            match next {
                Some(name) => match self.unlink(&name, false) {
                    Ok(()) => {}
                    // Linux reports a directory as EISDIR: go down and empty it first.
                    Err(e) if is(&e, libc::EISDIR) => {
                        self.descend(name)?;
                    }
                    Err(e) => return Err(self.fail("remove", Some(&name), e)),
                },
                None if self.levels.len() > 1 => self.ascend()?,
                None => return Ok(()),
            }
        }
    }
}

/// Removes `path` and everything below it without following symlinks. A symlink or file at
/// `path` itself is removed as such; a missing `path` is not an error.
pub fn remove_tree(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("stat", path, e)),
    };
    let top = path.as_os_str().as_bytes();
    if !meta.is_dir() {
        return match sys::unlink_at(Dir::Cwd, top, false) {
            Err(e) if !is(&e, libc::ENOENT) => Err(Error::io("remove", path, e)),
            _ => Ok(()),
        };
    }
    let mut walk = Walk { top: path, levels: Vec::new(), shallowest_open: 0 };
    let fd = match walk.open_child(Dir::Cwd, top) {
        Ok(fd) => fd,
        Err(e) if is(&e, libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let id = sys::file_id(fd.as_fd()).map_err(|e| Error::io("stat", path, e))?;
    let pending = sys::dir_names(fd.as_fd()).map_err(|e| Error::io("read", path, e))?;
    walk.levels.push(Level { name: Vec::new(), id, fd: Some(fd), pending, opened_up: false });
    walk.empty()?;
    drop(walk.levels);
    match sys::unlink_at(Dir::Cwd, top, true) {
        Err(e) if !is(&e, libc::ENOENT) => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::io::AsRawFd;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("peipkg-remove-{name}-{}", std::process::id()));
        if d.exists() {
            remove_tree(&d).unwrap();
        }
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A chain of `depth` directories named `name` below `top`, made through descriptors (the full
    /// path soon exceeds PATH_MAX), with a file at the bottom. Returns the path's length in bytes.
    fn deep_chain(top: &Path, name: &str, depth: usize) -> usize {
        let mut dir = sys::open_dir_at(Dir::Cwd, top.as_os_str().as_bytes()).unwrap();
        for _ in 0..depth {
            std::fs::create_dir(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd())).unwrap();
            dir = sys::open_dir_at(Dir::Fd(dir.as_fd()), name.as_bytes()).unwrap();
        }
        std::fs::write(format!("/proc/self/fd/{}/bottom", dir.as_raw_fd()), b"x").unwrap();
        top.as_os_str().len() + depth * (name.len() + 1)
    }

    #[test]
    fn removes_a_tree_deeper_than_path_max() {
        let d = tmp("deep");
        let bytes = deep_chain(&d, "aaaaaaaaaaaaaaaaaaaa", 2000);
        assert!(bytes > 40_000);
        let bottom = d.join("aaaaaaaaaaaaaaaaaaaa/".repeat(2000)).join("bottom");
        let err = std::fs::symlink_metadata(bottom).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENAMETOOLONG), "no path reaches the bottom");
        remove_tree(&d).unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn removes_a_wide_and_deep_tree() {
        let d = tmp("wide");
        for i in 0..20 {
            let sub = d.join(format!("d{i}"));
            std::fs::create_dir(&sub).unwrap();
            for j in 0..30 {
                std::fs::write(sub.join(format!("f{j}")), b"x").unwrap();
            }
            deep_chain(&sub, "n", 3 * OPEN_LIMIT + i);
        }
        remove_tree(&d).unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn does_not_follow_symlinks() {
        let d = tmp("links");
        let outside = tmp("links-outside");
        std::fs::write(outside.join("keep"), b"precious").unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, d.join("sub/to-dir")).unwrap();
        std::os::unix::fs::symlink(outside.join("keep"), d.join("to-file")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/dangling", d.join("dangling")).unwrap();
        remove_tree(&d).unwrap();
        assert!(!d.exists());
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"precious");
        // A symlink given as the top is removed, its target kept.
        let link = std::env::temp_dir().join(format!("peipkg-remove-toplink-{}", std::process::id()));
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(std::fs::symlink_metadata(&link).is_err());
        assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"precious");
        remove_tree(&outside).unwrap();
    }

    #[test]
    fn removes_directories_without_permission_bits() {
        let d = tmp("modes");
        for (name, mode) in [("none", 0o000), ("read-only", 0o500), ("write-only", 0o300)] {
            std::fs::create_dir(d.join(name)).unwrap();
            std::fs::write(d.join(name).join("f"), b"x").unwrap();
            std::fs::create_dir(d.join(name).join("inner")).unwrap();
            std::fs::set_permissions(d.join(name).join("inner"), std::fs::Permissions::from_mode(0o000)).unwrap();
            std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&d).unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn a_missing_path_or_a_file_is_fine() {
        let d = tmp("missing");
        remove_tree(&d.join("nothing/here")).unwrap();
        std::fs::write(d.join("file"), b"x").unwrap();
        remove_tree(&d.join("file")).unwrap();
        assert!(!d.join("file").exists());
        remove_tree(&d).unwrap();
        remove_tree(&d).unwrap();
    }

    #[test]
    fn a_file_in_the_way_of_a_path_is_an_error_naming_it() {
        let d = tmp("notdir");
        std::fs::write(d.join("file"), b"x").unwrap();
        let err = remove_tree(&d.join("file/below")).unwrap_err();
        assert_eq!(err.errno, Some("ENOTDIR"));
        assert!(err.message.contains("file/below"), "{}", err.message);
        remove_tree(&d).unwrap();
    }

    #[test]
    fn long_paths_in_messages_keep_their_ends() {
        let top = Path::new("/t");
        let mut walk = Walk { top, levels: Vec::new(), shallowest_open: 0 };
        for name in ["", "a", "b", "c", "d", "e", "f", "g"] {
            walk.levels.push(Level { name: name.into(), id: (0, 0), fd: None, pending: Vec::new(), opened_up: false });
        }
        assert_eq!(walk.shown(Some(b"x")), Path::new("/t/a/b/…(3 more levels)…/f/g/x"));
        walk.levels.truncate(3);
        assert_eq!(walk.shown(None), Path::new("/t/a/b"));
    }
}
