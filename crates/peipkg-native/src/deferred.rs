//! Signing a package in place after it was built unsigned in the "signable" form
//! (`pack::Spec::split_trailer`): every entry in one or more zstd frames, then a last frame that
//! holds nothing but the 1024-byte end-of-archive trailer.
//!
//! The signature entry goes where the trailer was (§4.2: it covers every tar byte before its own
//! header, which is exactly the unsigned tar minus its trailer), so signing replaces the last
//! frame by one holding the signature entry and the trailer. The frames before it are walked by
//! their headers and block headers only — never decompressed, never read whole — so the cost does
//! not grow with the package beyond a few bytes per 128 KiB block. The caller supplies the digest
//! (from the verifying read it did anyway) and is responsible for it: this module checks the frame
//! structure, not the tar.
//!
//! Every check comes before the first write, so a refusal changes nothing. The write itself is in
//! place (the new frame over the old trailer frame, then the length, then fsync): a crash during it
//! can leave a damaged last frame, while the frames before it are never written. Coordinators that
//! cannot re-fetch the unsigned package should sign a copy and rename it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::ed25519::SigningKey;
use crate::error::{Code, Error, Result};
use crate::pack::{envelope, SIGNATURE_NAME};
use crate::tar::{self, Kind};
use crate::zstd::{decompress_bytes, Encoder, Params, DEFAULT_WINDOW_LOG_MAX};

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// A zstd block holds at most 128 KiB.
const MAX_BLOCK: u64 = 128 << 10;
/// The trailer frame is 1024 zero bytes: a few bytes compressed, 1024 + headers stored raw.
const MAX_TRAILER_FRAME: u64 = 4096;
/// The signature frame is tiny; its level only changes a few bytes. Fixed, so that the signed
/// file is a pure function of the unsigned file and the key.
const SIGNATURE_FRAME: Params = Params { level: 19, overlap_log: 0, job_size: 0, workers: 1 };

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Zstd,
    Skippable,
}

/// One frame of a file of concatenated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    /// Offset of the frame's magic number.
    pub offset: u64,
    /// Compressed length, headers, blocks and checksum included.
    pub length: u64,
    /// The frame content size field, when the header has one.
    pub content_size: Option<u64>,
}

/// Random access to the bytes being walked (a file, or a slice in tests).
pub trait ReadAt {
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; the walker has checked that the range lies inside `size()`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        buf.copy_from_slice(&self[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
}

/// A file and its length when it was opened.
pub struct SizedFile<'a> {
    pub file: &'a File,
    pub size: u64,
}

impl ReadAt for SizedFile<'_> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

fn truncated(at: u64, what: &str) -> String {
    format!("the file ends inside {what} (offset {at})")
}

/// Reads `n` (≤ 8) bytes at `at` as a little-endian number, or says what was cut off.
fn le(src: &(impl ReadAt + ?Sized), at: u64, n: usize, what: &str) -> std::result::Result<u64, String> {
    if at.checked_add(n as u64).is_none_or(|end| end > src.size()) {
        return Err(truncated(at, what));
    }
    let mut buf = [0u8; 8];
    src.read_at(&mut buf[..n], at).map_err(|e| format!("read at offset {at}: {e}"))?;
    Ok(u64::from_le_bytes(buf))
}

/// Walks every frame from the start of `src` to its end by headers alone (RFC 8878 §3.1). An
/// error describes the first thing that is not a well-formed frame (bad magic, reserved bits,
/// a reserved block type, a block larger than 128 KiB, a cut-off header or body).
pub fn walk_frames(src: &(impl ReadAt + ?Sized)) -> std::result::Result<Vec<Frame>, String> {
    let end = src.size();
    let mut frames = Vec::new();
    let mut at = 0u64;
    while at < end {
        let start = at;
        let magic = le(src, at, 4, "a frame's magic number")? as u32;
        at += 4;
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let size = le(src, at, 4, "a skippable frame's size")?;
            at += 4;
            if size > end - at {
                return Err(truncated(at, "a skippable frame"));
            }
            at += size;
            frames.push(Frame { kind: FrameKind::Skippable, offset: start, length: at - start, content_size: None });
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Err(format!("offset {start}: bytes {magic:08x} are not a zstd frame (no frame magic number)"));
        }
        let fhd = le(src, at, 1, "a frame header")? as u8;
        at += 1;
        if fhd & 0x08 != 0 {
            return Err(format!("offset {start}: the frame header's reserved bit is set"));
        }
        let single_segment = fhd & 0x20 != 0;
        let checksum = fhd & 0x04 != 0;
        let dict_id_len = [0u64, 1, 2, 4][(fhd & 0x03) as usize];
        let fcs_len = match fhd >> 6 {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        if !single_segment {
            at += 1; // window descriptor
        }
        at += dict_id_len;
        let content_size = if fcs_len == 0 {
            None
        } else {
            let v = le(src, at, fcs_len as usize, "a frame header")?;
            Some(if fcs_len == 2 { v + 256 } else { v })
        };
        at += fcs_len;
        if at > end {
            return Err(truncated(start, "a frame header"));
        }
        loop {
            let header = le(src, at, 3, "a block header")?;
            let last = header & 1 != 0;
            let block_type = (header >> 1) & 3;
            let size = header >> 3;
            at += 3;
            let body = match block_type {
                0 | 2 => size,
                1 => 1,
                _ => return Err(format!("offset {}: reserved block type", at - 3)),
            };
            if size > MAX_BLOCK {
                return Err(format!("offset {}: block of {size} bytes is larger than 128 KiB", at - 3));
            }
            if body > end - at {
                return Err(truncated(at, "a block"));
            }
            at += body;
            if last {
                break;
            }
        }
        if checksum {
            if end - at < 4 {
                return Err(truncated(at, "a frame checksum"));
            }
            at += 4;
        }
        frames.push(Frame { kind: FrameKind::Zstd, offset: start, length: at - start, content_size });
    }
    Ok(frames)
}

#[derive(Debug)]
pub struct Appended {
    pub signature: [u8; 64],
    pub fingerprint: String,
    /// The file's size after signing.
    pub output_size: u64,
}

fn not_signable(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::at(
        Code::Format,
        path,
        format!(
            "{}: not in the signable form (a deferred-signature package: zstd frames whose last holds only the 1024-byte end-of-archive trailer): {why}",
            path.display()
        ),
    )
}

/// The last frame of the signed package: the signature entry (header, 229-byte envelope,
/// padding) and the trailer, as one zstd frame.
fn signature_frame(path: &Path, fingerprint: &str, signature: &[u8; 64], mtime: u64) -> Result<Vec<u8>> {
    let env = envelope(fingerprint, signature);
    let mut tail = tar::entry_header(SIGNATURE_NAME.as_bytes(), Kind::File, env.len() as u64, b"", mtime)?;
    tail.extend_from_slice(env.as_bytes());
    tail.resize(tail.len() + tar::padding(env.len() as u64), 0);
    tail.extend_from_slice(&tar::TRAILER);
    let mut enc = Encoder::new(Vec::new(), path, &SIGNATURE_FRAME, Some(tail.len() as u64))?;
    enc.write(&tail)?;
    Ok(enc.finish()?.0)
}

/// Signs the signable package at `path` in place: `digest` is the SHA-256 of its tar before the
/// trailer (the reader's `signable_digest`), `mtime` the mtime of its entries. When
/// `expected_size` is given, the file must still have that length (it is the one the caller
/// verified). Nothing is changed when it refuses.
pub fn append_signature(
    path: &Path,
    key: &SigningKey,
    digest: &[u8; 32],
    mtime: u64,
    expected_size: Option<u64>,
) -> Result<Appended> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(Error::at(Code::Format, path, format!("{}: not a regular file", path.display())));
    }
    let size = meta.len();
    if let Some(want) = expected_size {
        if want != size {
            return Err(Error::at(
                Code::Changed,
                path,
                format!("{}: is {size} bytes now, {want} when it was verified (it changed)", path.display()),
            ));
        }
    }
    let frames = walk_frames(&SizedFile { file: &file, size }).map_err(|e| not_signable(path, e))?;
    let last = match frames.as_slice() {
        [] => return Err(not_signable(path, "the file is empty")),
        [_] => return Err(not_signable(path, "it is a single zstd frame")),
        [.., last] => *last,
    };
    if last.kind != FrameKind::Zstd {
        return Err(not_signable(path, format!("its last frame (offset {}) is a skippable frame", last.offset)));
    }
    if frames.iter().any(|f| f.kind != FrameKind::Zstd) {
        return Err(not_signable(path, "it holds skippable frames"));
    }
    if last.length > MAX_TRAILER_FRAME {
        return Err(not_signable(
            path,
            format!("its last frame is {} bytes, too large to hold only the trailer", last.length),
        ));
    }
    let mut bytes = vec![0u8; last.length as usize];
    file.read_exact_at(&mut bytes, last.offset).map_err(|e| Error::io("read", path, e))?;
    let trailer = match decompress_bytes(&bytes, tar::TRAILER.len() as u64, DEFAULT_WINDOW_LOG_MAX) {
        Ok(t) => t,
        Err(e) if e.code == Code::Limit => {
            return Err(not_signable(path, "its last frame holds more than the 1024-byte trailer"))
        }
        Err(e) => return Err(not_signable(path, format!("its last frame does not decompress: {}", e.message))),
    };
    if trailer.len() != tar::TRAILER.len() || trailer.iter().any(|&b| b != 0) {
        return Err(not_signable(
            path,
            format!("its last frame holds {} bytes that are not the 1024 zero bytes of the trailer", trailer.len()),
        ));
    }

    let signature = key.sign(digest);
    let fingerprint = key.fingerprint();
    let frame = signature_frame(path, &fingerprint, &signature, mtime)?;
    // The new frame is longer than the trailer frame it replaces: write it over that frame, then
    // fix the length (a no-op unless the old frame was longer) and make it durable.
    file.write_all_at(&frame, last.offset).map_err(|e| Error::io("write", path, e))?;
    let output_size = last.offset + frame.len() as u64;
    file.set_len(output_size).map_err(|e| Error::io("truncate", path, e))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))?;
    Ok(Appended { signature, fingerprint, output_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compress(data: &[u8], checksum: bool) -> Vec<u8> {
        let params = Params { level: 3, overlap_log: 0, job_size: 0, workers: 1 };
        let mut enc = Encoder::new(Vec::new(), Path::new("<mem>"), &params, Some(data.len() as u64)).unwrap();
        enc.write(data).unwrap();
        let mut z = enc.finish().unwrap().0;
        if checksum {
            // Set the checksum flag and append a (wrong but well-placed) 4-byte checksum: the walker
            // only needs the layout.
            z[4] |= 0x04;
            z.extend_from_slice(&[0, 0, 0, 0]);
        }
        z
    }

    /// A hand-made frame: no FCS, window descriptor, the given blocks (type, size, body).
    fn raw_frame(blocks: &[(u8, u32, Vec<u8>)]) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58];
        for (i, (ty, size, body)) in blocks.iter().enumerate() {
            let last = (i + 1 == blocks.len()) as u32;
            let h = last | ((*ty as u32) << 1) | (size << 3);
            f.extend_from_slice(&h.to_le_bytes()[..3]);
            f.extend_from_slice(body);
        }
        f
    }

    fn skippable(n: usize) -> Vec<u8> {
        let mut f = 0x184D_2A53u32.to_le_bytes().to_vec();
        f.extend_from_slice(&(n as u32).to_le_bytes());
        f.extend(std::iter::repeat_n(7u8, n));
        f
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn walks_several_frames_of_every_shape() {
        let a = compress(&sample(300_000), false); // several blocks, raw (incompressible)
        let b = compress(&[0u8; 1024], false); // one small frame
        let c = compress(b"hello hello hello hello", true);
        let mut all = a.clone();
        all.extend(&b);
        all.extend(&c);
        let frames = walk_frames(all.as_slice()).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!((frames[0].offset, frames[0].length), (0, a.len() as u64));
        assert_eq!(frames[0].content_size, Some(300_000));
        assert_eq!((frames[1].offset, frames[1].length), (a.len() as u64, b.len() as u64));
        assert_eq!(frames[1].content_size, Some(1024));
        assert_eq!(frames[2].length, c.len() as u64);
        assert!(frames.iter().all(|f| f.kind == FrameKind::Zstd));
    }

    #[test]
    fn raw_and_rle_blocks_and_skippable_frames() {
        let f = raw_frame(&[(0, 5, b"abcde".to_vec()), (1, 1000, vec![0]), (0, 0, vec![])]);
        let mut all = skippable(10);
        all.extend(&f);
        all.extend(skippable(0));
        let frames = walk_frames(all.as_slice()).unwrap();
        let kinds: Vec<_> = frames.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FrameKind::Skippable, FrameKind::Zstd, FrameKind::Skippable]);
        assert_eq!(frames[1].length, f.len() as u64);
        assert_eq!(frames[1].content_size, None);
        assert_eq!(
            decompress_bytes(&f, 2000, DEFAULT_WINDOW_LOG_MAX).unwrap().len(),
            1005,
            "the hand-made frame is real zstd"
        );
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let mut all = compress(&sample(200_000), false);
        all.extend(compress(&[0u8; 1024], true));
        for cut in [1, 3, 4, 5, 7, 10, 1000, all.len() - 20, all.len() - 5, all.len() - 1] {
            let e = walk_frames(&all[..cut]).unwrap_err();
            assert!(e.contains("ends inside"), "cut {cut}: {e}");
        }
        let e = walk_frames(&skippable(10)[..12]).unwrap_err();
        assert!(e.contains("skippable"), "{e}");
    }

    #[test]
    fn garbage_reserved_bits_and_block_types_are_errors() {
        let mut all = compress(b"x", false);
        all.extend_from_slice(b"garbage!");
        assert!(walk_frames(all.as_slice()).unwrap_err().contains("not a zstd frame"));
        let mut reserved = compress(b"x", false);
        reserved[4] |= 0x08;
        assert!(walk_frames(reserved.as_slice()).unwrap_err().contains("reserved bit"));
        let bad_type = raw_frame(&[(3, 1, vec![0])]);
        assert!(walk_frames(bad_type.as_slice()).unwrap_err().contains("reserved block type"));
        let too_big = raw_frame(&[(0, (128 << 10) + 1, vec![0; (128 << 10) + 1])]);
        assert!(walk_frames(too_big.as_slice()).unwrap_err().contains("larger than 128 KiB"));
        assert_eq!(walk_frames(&[][..]).unwrap(), vec![]);
    }

    #[test]
    fn append_replaces_the_trailer_frame_and_refuses_everything_else() {
        let dir = std::env::temp_dir().join(format!("peipkg-deferred-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::from_seed(&[7u8; 32]).unwrap();
        let prefix = sample(5000);
        let mut body = compress(&prefix, false);
        body.extend(compress(&tar::TRAILER, false));
        let path = dir.join("ok.peipkg");
        std::fs::write(&path, &body).unwrap();
        let out = append_signature(&path, &key, &[1u8; 32], 1_778_068_800, Some(body.len() as u64)).unwrap();
        let signed = std::fs::read(&path).unwrap();
        assert_eq!(signed.len() as u64, out.output_size);
        assert_eq!(walk_frames(signed.as_slice()).unwrap().len(), 2);
        let tar = decompress_bytes(&signed, 1 << 20, DEFAULT_WINDOW_LOG_MAX).unwrap();
        assert_eq!(tar.len(), 5000 + 2048);
        assert_eq!(&tar[..5000], &prefix[..]);
        assert_eq!(&tar[5000..5017], SIGNATURE_NAME.as_bytes());
        assert!(tar[5000 + 1024..].iter().all(|&b| b == 0));

        let refused = |name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            let e = append_signature(&p, &key, &[1u8; 32], 0, None).unwrap_err();
            assert_eq!(std::fs::read(&p).unwrap(), bytes, "{name} unchanged");
            e
        };
        assert!(refused("single", &compress(&prefix, false)).message.contains("single zstd frame"));
        let mut extra = body.clone();
        extra.extend(compress(&[0u8; 512], false));
        assert!(refused("extra", &extra).message.contains("not the 1024 zero bytes"));
        let mut skip = body.clone();
        skip.extend(skippable(4));
        assert!(refused("skip", &skip).message.contains("skippable"));
        assert!(refused("truncated", &body[..body.len() - 2]).message.contains("ends inside"));
        let e = append_signature(&path, &key, &[1u8; 32], 0, Some(1)).unwrap_err();
        assert_eq!(e.code, Code::Changed);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pack_with_split_trailer_pledges_each_frame_and_refuses_a_key() {
        use crate::pack::{pack, Content, Entry, EntryKind, Spec};
        let dir = std::env::temp_dir().join(format!("peipkg-deferred-pack-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = |output: &str, split_trailer: bool, key: Option<std::sync::Arc<SigningKey>>| Spec {
            output: dir.join(output),
            mtime: 1_778_068_800,
            root: None,
            entries: vec![Entry {
                name: "a.txt".into(),
                kind: EntryKind::File { content: Content::Inline(sample(200_000)), size: 200_000, sha256: None },
            }],
            key,
            compression: Some(Params { level: 3, overlap_log: 0, job_size: 0, workers: 2 }),
            fsync: false,
            split_trailer,
        };
        let one = pack(&spec("one", false, None), None).unwrap();
        let two = pack(&spec("two", true, None), None).unwrap();
        assert_eq!(one.signed_digest, two.signed_digest);
        let single = std::fs::read(dir.join("one")).unwrap();
        let split = std::fs::read(dir.join("two")).unwrap();
        let sizes = |b: &[u8]| walk_frames(b).unwrap().iter().map(|f| f.content_size).collect::<Vec<_>>();
        assert_eq!(sizes(&single), [Some(one.tar_size)]);
        assert_eq!(sizes(&split), [Some(two.tar_size - 1024), Some(1024)]);
        let tar = |b: &[u8]| decompress_bytes(b, 1 << 20, DEFAULT_WINDOW_LOG_MAX).unwrap();
        assert_eq!(tar(&single), tar(&split));
        let key = std::sync::Arc::new(SigningKey::from_seed(&[7u8; 32]).unwrap());
        assert_eq!(pack(&spec("three", true, Some(key)), None).unwrap_err().code, Code::Argument);
        assert!(!dir.join("three").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
