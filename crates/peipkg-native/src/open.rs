//! Opening a file that the rules read (a package, an index document, a package file to hash) when
//! somebody else chose what is at that path: a repository state copied from a mirror, a package
//! named on the command line.
//!
//! Only a regular file is read. A FIFO put where a document belongs would otherwise make the
//! command wait forever for a writer (opening one for reading blocks), and a device such as a
//! symlink to `/dev/zero` would be read without end; both are refused at once, naming what they
//! are. Symlinks are followed, as the spec says of package files (repository.md §8.6).

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a path is when it is not a regular file, in words for an error message.
pub fn non_file_kind(meta: &Metadata) -> Option<&'static str> {
    let kind = meta.file_type();
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("a device")
    }
}

/// Opens `path` for reading without waiting: `O_NONBLOCK` lets the open of a FIFO return instead
/// of blocking until a writer comes (it changes nothing for a regular file's reads). Follow with
/// `require_regular` before reading.
pub fn open_for_reading(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

/// Refuses `file` unless it is a regular file. A directory keeps its own error (`EISDIR`), as
/// reading one always gave; anything else is `is a FIFO, not a regular file` and the like.
pub fn require_regular(file: &File) -> io::Result<()> {
    match non_file_kind(&file.metadata()?) {
        None => Ok(()),
        Some("a directory") => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        Some(kind) => Err(io::Error::other(format!("is {kind}, not a regular file"))),
    }
}

/// `open_for_reading` then `require_regular`, where one error action names both.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = open_for_reading(path)?;
    require_regular(&file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("peipkg-open-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_and_a_symlink_to_one_open() {
        let dir = temp_dir("file");
        std::fs::write(dir.join("f"), b"bytes").unwrap();
        std::os::unix::fs::symlink(dir.join("f"), dir.join("l")).unwrap();
        assert!(open_regular(&dir.join("f")).is_ok());
        assert!(open_regular(&dir.join("l")).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = temp_dir("fifo");
        let fifo = dir.join("p");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let err = open_regular(&fifo).unwrap_err();
        assert_eq!(err.to_string(), "is a FIFO, not a regular file");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_device_and_a_directory_are_refused() {
        let err = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(err.to_string(), "is a device, not a regular file");
        let err = open_regular(Path::new("/")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
    }
}
