//! SHA-256 of one file, of many files spread over all cores, and of bytes in memory.
//! `sha2` uses SHA-NI / ARMv8 SHA instructions when the CPU has them (about 1.5 GB/s per core).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ffi::sys;
use crate::open::{open_for_reading, require_regular};
use crate::progress::Progress;

/// Large enough to amortise syscalls, small enough to stay in L2 on most cores.
pub const READ_CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub sha256: [u8; 32],
    pub size: u64,
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Hashes everything `reader` yields, reusing `buf`.
pub fn sha256_reader(mut reader: impl Read, buf: &mut [u8], progress: Option<&Progress>) -> io::Result<FileDigest> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        if let Some(p) = progress {
            p.add_bytes(n as u64);
        }
    }
    Ok(FileDigest { sha256: hasher.finalize().into(), size })
}

pub fn sha256_file(path: &Path) -> Result<FileDigest> {
    let mut buf = vec![0u8; READ_CHUNK];
    sha256_file_with(path, &mut buf, None)
}

fn sha256_file_with(path: &Path, buf: &mut [u8], progress: Option<&Progress>) -> Result<FileDigest> {
    let file = open_for_reading(path).map_err(|e| Error::io("open", path, e))?;
    require_regular(&file).map_err(|e| Error::io("read", path, e))?;
    sys::advise_sequential(&file);
    sha256_reader(&file, buf, progress).map_err(|e| Error::io("read", path, e))
}

/// Runs `work(i, buf)` for every `i < count` on `threads` threads, each taking the next index as it
/// becomes free (so a slow item never holds up the others), each with its own reused buffer.
fn for_each_index<T: Send>(
    count: usize,
    threads: usize,
    buf_len: usize,
    work: impl Fn(usize, &mut [u8]) -> T + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, count.max(1));
    let next = AtomicUsize::new(0);
    let done: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; buf_len];
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            break;
                        }
                        done.push((i, work(i, &mut buf)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("hash worker panicked")).collect()
    });
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for (i, r) in done.into_iter().flatten() {
        results[i] = Some(r);
    }
    results.into_iter().map(|r| r.expect("every index done")).collect()
}

/// Hashes `paths` on up to `threads` threads. Results keep the input order; each file fails or
/// succeeds on its own. `progress` learns the total size before any byte is hashed.
///
/// One SHA-256 cannot be split across cores, so cores share the work by whole files, largest
/// first: taken in input order, a large file that comes last is hashed by one core while the
/// others have nothing left to do (longest-processing-time-first scheduling bounds that tail by
/// the smallest files). The sizes are learned up front, in parallel; a file that cannot be
/// stat'ed or is no regular file
/// sorts last, counts nothing in the total, and fails when it is opened, as before.
pub fn sha256_files(paths: &[PathBuf], threads: usize, progress: Option<&Progress>) -> Vec<Result<FileDigest>> {
    let sizes = for_each_index(paths.len(), threads, 0, |i, _| {
        std::fs::metadata(&paths[i]).ok().filter(|m| m.is_file()).map(|m| m.len())
    });
    if let Some(p) = progress {
        p.add_total(sizes.iter().flatten().sum());
    }
    let mut order: Vec<usize> = (0..paths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let hashed = for_each_index(order.len(), threads, READ_CHUNK, |k, buf| {
        let r = sha256_file_with(&paths[order[k]], buf, progress);
        if let Some(p) = progress {
            p.add_item();
        }
        r
    });
    let mut results: Vec<Option<Result<FileDigest>>> = (0..paths.len()).map(|_| None).collect();
    for (k, r) in hashed.into_iter().enumerate() {
        results[order[k]] = Some(r);
    }
    results.into_iter().map(|r| r.expect("every file hashed")).collect()
}

pub fn available_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(to_hex(&sha256(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(
            to_hex(&sha256(b"Hello, Peios!\n")),
            "4f91e7c17054930fd12bf2de72f8f31eb44090052475b88dc2338163d642e7ac"
        );
    }

    #[test]
    fn many_equals_one_by_one_and_keeps_errors_in_place() {
        let dir = std::env::temp_dir().join(format!("peipkg-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut paths = Vec::new();
        for i in 0..37usize {
            let p = dir.join(format!("f{i}"));
            std::fs::write(&p, vec![i as u8; i * 1000 + (i % 3) * READ_CHUNK]).unwrap();
            paths.push(p);
        }
        paths.insert(5, dir.join("missing"));
        let many = sha256_files(&paths, 4, None);
        for (p, r) in paths.iter().zip(&many) {
            match r {
                Ok(d) => assert_eq!(*d, sha256_file(p).unwrap()),
                Err(e) => {
                    assert!(p.ends_with("missing"));
                    assert_eq!(e.errno, Some("ENOENT"));
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn progress_total_counts_what_exists_and_errors_stay_in_place_whatever_the_order() {
        let dir = std::env::temp_dir().join(format!("peipkg-hash-order-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        // Sizes out of order, around the read chunk, with an empty file, a directory and a missing one.
        let sizes = [7usize, READ_CHUNK + 1, 0, 3 * READ_CHUNK, READ_CHUNK - 1, READ_CHUNK, 1];
        let mut paths: Vec<PathBuf> = Vec::new();
        for (i, n) in sizes.iter().enumerate() {
            let p = dir.join(format!("f{i}"));
            std::fs::write(&p, vec![i as u8 + 1; *n]).unwrap();
            paths.push(p);
        }
        paths.insert(2, dir.join("missing"));
        paths.insert(5, dir.join("sub"));
        let progress = Progress::default();
        let many = sha256_files(&paths, 2, Some(&progress));
        let files: u64 = sizes.iter().map(|n| *n as u64).sum();
        assert_eq!(progress.total(), files);
        assert_eq!(progress.bytes(), files);
        assert_eq!(progress.items(), paths.len() as u64);
        for (p, r) in paths.iter().zip(&many) {
            if p.ends_with("missing") {
                assert_eq!(r.as_ref().unwrap_err().errno, Some("ENOENT"));
            } else if p.ends_with("sub") {
                assert_eq!(r.as_ref().unwrap_err().errno, Some("EISDIR"));
            } else {
                assert_eq!(*r.as_ref().unwrap(), sha256_file(p).unwrap());
                assert_eq!(r.as_ref().unwrap().sha256, sha256(&std::fs::read(p).unwrap()));
            }
        }
        assert!(sha256_files(&[], 2, None).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
