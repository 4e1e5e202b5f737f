//! Reads a package (zstd → tar) in one streaming pass and reports facts: every entry's header
//! fields as written, the metadata documents' bytes, each file's SHA-256, and the SHA-256 of the
//! bytes before the signature entry (`package-format.md` §4.2, §8).
//!
//! It decides nothing about validity beyond what is needed to keep reading: a bad header checksum,
//! a malformed PAX record or an exceeded bound stops the read with an error; everything else
//! (names, modes, order, types, which PAX keys appear) is reported for the TypeScript verifier to judge.

use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Code, Error, Result};
use crate::open::{open_for_reading, require_regular};
use crate::tar::BLOCK;
use crate::zstd::{unwrap_io, Decoder};

pub const MANIFEST_NAME: &str = ".peipkg/manifest.json";
pub const FILES_NAME: &str = ".peipkg/files.json";
pub const SIGNATURE_NAME: &str = ".peipkg/signature";
/// A PAX extended header larger than this is not one the format can produce.
const MAX_PAX_SIZE: u64 = 64 * 1024;

#[derive(Clone, Debug)]
pub struct Limits {
    /// Decompressed bytes (the whole tar).
    pub max_bytes: u64,
    pub window_log_max: i32,
    /// Entries, PAX headers excluded.
    pub max_entries: usize,
    pub max_manifest: u64,
    pub max_files_json: u64,
    pub max_signature: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 4 << 30,
            window_log_max: crate::zstd::DEFAULT_WINDOW_LOG_MAX,
            max_entries: 100_000 + 16,
            max_manifest: 16 << 20,
            max_files_json: 64 << 20,
            max_signature: 64 << 10,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct EntryFact {
    /// The effective name: PAX `path`, else `prefix/name` (ustar), else `name`.
    pub name: Vec<u8>,
    pub typeflag: u8,
    /// The size field as written (content follows only for regular files and unknown types).
    pub size: u64,
    pub linkname: Vec<u8>,
    pub mode: u64,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub devmajor: u64,
    pub devminor: u64,
    /// `ustar\0` + `00`.
    pub ustar: bool,
    /// Offset of this entry's own header block in the tar.
    pub offset: u64,
    /// Keys of the PAX records that applied to this entry, in order (duplicates kept).
    pub pax_keys: Vec<String>,
    /// SHA-256 of the content (regular files only).
    pub sha256: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
pub struct PackageFacts {
    pub entries: Vec<EntryFact>,
    pub manifest: Option<Vec<u8>>,
    pub files_json: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    /// SHA-256 of tar[0:S], S = offset of the signature entry's header; `None` when unsigned.
    pub signed_digest: Option<[u8; 32]>,
    /// For an unsigned package: SHA-256 of the tar bytes before the end-of-archive marker, which
    /// is exactly what a signature entry appended there would cover (§4.2). `None` when signed
    /// (or when the archive has no end-of-archive marker, or reading stopped early).
    pub signable_digest: Option<[u8; 32]>,
    /// Zero blocks at the end, and whether anything but zeros followed the first two.
    pub zero_blocks: u32,
    pub trailing_data: bool,
    /// True when the archive ended without two zero blocks.
    pub truncated: bool,
    pub tar_size: u64,
    pub compressed_size: u64,
    /// True when reading stopped after the metadata entries (`metadata_only`).
    pub partial: bool,
}

fn format_error(path: &Path, offset: u64, what: impl std::fmt::Display) -> Error {
    Error::at(Code::Format, path, format!("{}: tar offset {offset}: {what}", path.display()))
}

/// A NUL-terminated field.
fn field_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// An octal numeric field as Go's tar reader parses it: leading/trailing spaces and NULs are
/// ignored, empty means 0. Base-256 fields (high bit set) are refused: the format never needs them.
fn field_octal(b: &[u8]) -> std::result::Result<u64, String> {
    if b.first().map(|c| c & 0x80 != 0).unwrap_or(false) {
        return Err("base-256 numeric field".into());
    }
    let s = field_str(b);
    let t: Vec<u8> = s.iter().copied().skip_while(|c| *c == b' ').collect();
    let t: &[u8] = match t.iter().rposition(|c| *c != b' ' && *c != 0) {
        Some(i) => &t[..=i],
        None => return Ok(0),
    };
    let mut v: u64 = 0;
    for &c in t {
        if !(b'0'..=b'7').contains(&c) {
            return Err(format!("invalid octal digit {:?}", c as char));
        }
        v = v.checked_mul(8).and_then(|v| v.checked_add((c - b'0') as u64)).ok_or("numeric field overflows")?;
    }
    Ok(v)
}

fn checksum_ok(h: &[u8]) -> bool {
    let stored = match field_octal(&h[148..156]) {
        Ok(v) => v,
        Err(_) => return false,
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += (b as i8) as i64;
    }
    stored == unsigned || stored as i64 == signed
}

/// `"<len> <key>=<value>\n"` records, strictly (length prefixes must be exact).
fn parse_pax(data: &[u8]) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&c| c == b' ').ok_or("PAX record without a length")?;
        let len_text = std::str::from_utf8(&rest[..sp]).map_err(|_| "PAX record length is not decimal")?;
        if len_text.is_empty()
            || !len_text.bytes().all(|c| c.is_ascii_digit())
            || (len_text.len() > 1 && len_text.starts_with('0'))
        {
            return Err(format!("PAX record length {len_text:?} is not a decimal number"));
        }
        let len: usize = len_text.parse().map_err(|_| "PAX record length out of range")?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("PAX record length does not match its record".into());
        }
        let body = &rest[sp + 1..len - 1];
        let eq = body.iter().position(|&c| c == b'=').ok_or("PAX record without '='")?;
        let key = std::str::from_utf8(&body[..eq]).map_err(|_| "PAX record key is not UTF-8")?.to_string();
        if key.is_empty() {
            return Err("PAX record with an empty key".into());
        }
        records.push((key, body[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(records)
}

/// Reads exactly `buf.len()` bytes, or reports how many were there before the end.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Feeds every byte read to the running hash and counts the tar offset.
struct Tracked<R: Read> {
    inner: R,
    hasher: Sha256,
    offset: u64,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
}

pub struct ReadOptions {
    pub limits: Limits,
    /// The input is zstd (a `.peipkg`); otherwise a plain tar.
    pub compressed: bool,
    /// Stop after the leading `.peipkg/` entries (enough to read the manifest and files.json).
    pub metadata_only: bool,
}

fn limit_for(name: &[u8], limits: &Limits) -> Option<u64> {
    match name {
        n if n == MANIFEST_NAME.as_bytes() => Some(limits.max_manifest),
        n if n == FILES_NAME.as_bytes() => Some(limits.max_files_json),
        n if n == SIGNATURE_NAME.as_bytes() => Some(limits.max_signature),
        _ => None,
    }
}

fn walk(src: &mut Tracked<impl Read>, path: &Path, opts: &ReadOptions, facts: &mut PackageFacts) -> Result<()> {
    let io_err = |e: io::Error| unwrap_io(e, "read", path);
    let mut block = [0u8; BLOCK];
    let mut pending_pax: Option<Vec<(String, Vec<u8>)>> = None;
    let mut content = vec![0u8; 1 << 20];
    loop {
        let at = src.offset;
        let before = src.hasher.clone();
        let got = read_full(src, &mut block).map_err(io_err)?;
        if got == 0 {
            facts.truncated = true;
            return Ok(());
        }
        if got < BLOCK {
            return Err(format_error(path, at, "archive ends inside a header block"));
        }
        if block.iter().all(|&b| b == 0) {
            facts.zero_blocks = 1;
            if facts.signed_digest.is_none() {
                facts.signable_digest = Some(before.finalize().into());
            }
            // Count the zero blocks that follow and notice anything else after them.
            loop {
                let got = read_full(src, &mut block).map_err(io_err)?;
                if got == 0 {
                    break;
                }
                if got == BLOCK && block.iter().all(|&b| b == 0) {
                    facts.zero_blocks += 1;
                } else {
                    facts.trailing_data = true;
                    // Drain the rest so the sizes are complete.
                    while read_full(src, &mut content).map_err(io_err)? > 0 {}
                    break;
                }
            }
            if facts.zero_blocks < 2 {
                facts.truncated = true;
            }
            return Ok(());
        }
        if !checksum_ok(&block) {
            return Err(format_error(path, at, "header checksum does not match"));
        }
        let num = |range: std::ops::Range<usize>, what: &str| {
            field_octal(&block[range]).map_err(|e| format_error(path, at, format!("{what}: {e}")))
        };
        let typeflag = block[156];
        let size = num(124..136, "size")?;
        if typeflag == b'x' {
            if size > MAX_PAX_SIZE {
                return Err(format_error(path, at, format!("PAX header of {size} bytes is too large")));
            }
            let mut data = vec![0u8; size as usize];
            if read_full(src, &mut data).map_err(io_err)? < data.len() {
                return Err(format_error(path, at, "archive ends inside a PAX header"));
            }
            skip(src, crate::tar::padding(size) as u64, &mut content, path, at)?;
            let records = parse_pax(&data).map_err(|e| format_error(path, at, e))?;
            pending_pax.get_or_insert_with(Vec::new).extend(records);
            continue;
        }
        let ustar = &block[257..263] == b"ustar\0" && &block[263..265] == b"00";
        let mut name = field_str(&block[0..100]).to_vec();
        let prefix = field_str(&block[345..500]);
        if ustar && !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
        let mut fact = EntryFact {
            typeflag,
            size,
            linkname: field_str(&block[157..257]).to_vec(),
            mode: num(100..108, "mode")?,
            uid: num(108..116, "uid")?,
            gid: num(116..124, "gid")?,
            mtime: num(136..148, "mtime")?,
            uname: field_str(&block[265..297]).to_vec(),
            gname: field_str(&block[297..329]).to_vec(),
            devmajor: num(329..337, "devmajor")?,
            devminor: num(337..345, "devminor")?,
            ustar,
            offset: at,
            ..EntryFact::default()
        };
        for (key, value) in pending_pax.take().unwrap_or_default() {
            match key.as_str() {
                "path" => name = value,
                "linkpath" => fact.linkname = value,
                _ => {}
            }
            fact.pax_keys.push(key);
        }
        fact.name = name;
        if fact.name == SIGNATURE_NAME.as_bytes() && facts.signed_digest.is_none() {
            facts.signed_digest = Some(before.finalize().into());
        }
        if facts.entries.len() >= opts.limits.max_entries {
            return Err(Error::at(
                Code::Limit,
                path,
                format!("{}: more than {} entries", path.display(), opts.limits.max_entries),
            ));
        }
        // Go's reader gives header-only types no content, whatever their size field says.
        let header_only = matches!(typeflag, b'1' | b'2' | b'3' | b'4' | b'5' | b'6');
        if !header_only {
            let is_file = typeflag == b'0' || typeflag == 0;
            let keep = if is_file { limit_for(&fact.name, &opts.limits) } else { None };
            if let Some(max) = keep {
                if size > max {
                    return Err(Error::at(
                        Code::Limit,
                        path,
                        format!(
                            "{}: {} is {size} bytes, more than the {max} allowed",
                            path.display(),
                            String::from_utf8_lossy(&fact.name)
                        ),
                    ));
                }
            }
            let mut hasher = Sha256::new();
            let mut kept = Vec::new();
            let mut left = size;
            while left > 0 {
                let want = left.min(content.len() as u64) as usize;
                let n = read_full(src, &mut content[..want]).map_err(io_err)?;
                if n < want {
                    return Err(format_error(path, at, "archive ends inside an entry's content"));
                }
                hasher.update(&content[..n]);
                if keep.is_some() {
                    kept.extend_from_slice(&content[..n]);
                }
                left -= n as u64;
            }
            skip(src, crate::tar::padding(size) as u64, &mut content, path, at)?;
            if is_file {
                fact.sha256 = Some(hasher.finalize().into());
            }
            if keep.is_some() {
                match fact.name.as_slice() {
                    n if n == MANIFEST_NAME.as_bytes() && facts.manifest.is_none() => facts.manifest = Some(kept),
                    n if n == FILES_NAME.as_bytes() && facts.files_json.is_none() => facts.files_json = Some(kept),
                    n if n == SIGNATURE_NAME.as_bytes() && facts.signature.is_none() => facts.signature = Some(kept),
                    _ => {}
                }
            }
        }
        facts.entries.push(fact);
        // The first two entries must be manifest.json and files.json; the verifier judges whether they are.
        if opts.metadata_only && facts.entries.len() >= 2 {
            facts.partial = true;
            return Ok(());
        }
    }
}

fn skip(src: &mut impl Read, n: u64, buf: &mut [u8], path: &Path, at: u64) -> Result<()> {
    let mut left = n;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let got = read_full(src, &mut buf[..want]).map_err(|e| unwrap_io(e, "read", path))?;
        if got < want {
            return Err(format_error(path, at, "archive ends inside padding"));
        }
        left -= got as u64;
    }
    Ok(())
}

/// Reads the package at `path` and returns its facts.
pub fn read_package(path: &Path, opts: &ReadOptions) -> Result<PackageFacts> {
    let file = open_for_reading(path).map_err(|e| Error::io("open", path, e))?;
    require_regular(&file).map_err(|e| Error::io("read", path, e))?;
    let mut facts = PackageFacts::default();
    if opts.compressed {
        let decoder = Decoder::new(
            BufReader::with_capacity(1 << 17, file),
            opts.limits.max_bytes,
            opts.limits.window_log_max,
            path,
        )?;
        let mut src = Tracked { inner: decoder, hasher: Sha256::new(), offset: 0 };
        walk(&mut src, path, opts, &mut facts)?;
        facts.compressed_size = src.inner.totals().bytes_in;
        facts.tar_size = src.offset;
    } else {
        let mut src = Tracked {
            inner: BufReader::with_capacity(1 << 17, file.take(opts.limits.max_bytes + 1)),
            hasher: Sha256::new(),
            offset: 0,
        };
        walk(&mut src, path, opts, &mut facts)?;
        if src.offset > opts.limits.max_bytes {
            return Err(Error::at(
                Code::Limit,
                path,
                format!("{}: more than {} bytes", path.display(), opts.limits.max_bytes),
            ));
        }
        facts.tar_size = src.offset;
        facts.compressed_size = src.offset;
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_follow_go() {
        assert_eq!(field_octal(b"0000777\0").unwrap(), 0o777);
        assert_eq!(field_octal(b"\0\0\0\0\0\0\0\0").unwrap(), 0);
        assert_eq!(field_octal(b"  17 \0").unwrap(), 0o17);
        assert!(field_octal(b"0000779\0").is_err());
        assert!(field_octal(&[0x80, 0, 0, 0]).is_err());
    }

    #[test]
    fn pax_records_are_strict() {
        assert_eq!(parse_pax(b"11 path=ab\n").unwrap(), vec![("path".to_string(), b"ab".to_vec())]);
        assert!(parse_pax(b"12 path=ab\n").is_err());
        assert!(parse_pax(b"011 path=ab\n").is_err());
        assert!(parse_pax(b"10 pathab\n").is_err());
    }
}
