//! The one error type of the core. It carries a stable `code` that the TypeScript side branches on,
//! a message written for a person, and, where a file is involved, the path and the OS error name.

use std::fmt;
use std::io;
use std::path::Path;

/// Stable error codes; `ts/native.ts` maps each to a typed error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// A JavaScript caller passed the wrong type or an out-of-range value.
    Argument,
    /// An operating-system call failed (see `errno`).
    Io,
    /// A key file is missing, malformed or not Ed25519.
    Key,
    /// zstd refused a parameter or the compressed data is corrupt.
    Zstd,
    /// A size bound was exceeded (bounded decompression, tar field limits).
    Limit,
    /// A file's size or content differs from what the caller declared (it changed under us).
    Changed,
    /// Bytes that do not follow the format (tar headers, PEM, base64).
    Format,
    /// A directory lock is held by someone else.
    Locked,
    /// A bug: a Rust panic caught at the boundary.
    Panic,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Argument => "ERR_ARGUMENT",
            Code::Io => "ERR_IO",
            Code::Key => "ERR_KEY",
            Code::Zstd => "ERR_ZSTD",
            Code::Limit => "ERR_LIMIT",
            Code::Changed => "ERR_CHANGED",
            Code::Format => "ERR_FORMAT",
            Code::Locked => "ERR_LOCKED",
            Code::Panic => "ERR_PANIC",
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub path: Option<String>,
    /// The symbolic OS error (`ENOENT`), for `Code::Io`.
    pub errno: Option<&'static str>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), path: None, errno: None }
    }

    pub fn at(code: Code, path: &Path, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), path: Some(path.display().to_string()), errno: None }
    }

    /// `open /x: No such file or directory (os error 2)`, with `path` and `errno` set.
    pub fn io(action: &str, path: &Path, err: io::Error) -> Self {
        Error {
            code: Code::Io,
            message: format!("{action} {}: {err}", path.display()),
            path: Some(path.display().to_string()),
            errno: err.raw_os_error().map(errno_name),
        }
    }

    pub fn argument(message: impl Into<String>) -> Self {
        Error::new(Code::Argument, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EDQUOT => "EDQUOT",
        _ => "EUNKNOWN",
    }
}
