//! Deterministic ustar/PAX headers, byte for byte as the reference producer writes them
//! (Go's `archive/tar` with mode 0777, uid/gid 0, owner `root`): `package-format.md` §2.4–2.6.
//!
//! This module only formats headers. It does not read files, order entries or validate paths:
//! callers hand it validated wire names (directories end in `/`).

use crate::error::{Code, Error, Result};

pub const BLOCK: usize = 512;
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
/// Sizes of 8 GiB and more need a PAX `size` record; the format forbids them (§7.1).
pub const MAX_FILE_SIZE: u64 = (1 << 33) - 1;
/// The mtime field holds 11 octal digits.
pub const MAX_MTIME: u64 = (1 << 33) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Directory => b'5',
            Kind::Symlink => b'2',
        }
    }
}

/// Bytes of padding that follow `size` bytes of content.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

fn is_ascii(s: &[u8]) -> bool {
    s.iter().all(|&b| b != 0 && b < 0x80)
}

/// Go's `toASCII`: drops every byte of every non-ASCII character and every NUL.
fn to_ascii(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(|&b| b != 0 && b < 0x80).collect()
}

/// Go's `formatter.formatString`: copy what fits, NUL-terminate when shorter, and the
/// trailing-slash quirk for over-long names (§2.5 step 3).
fn put_string(field: &mut [u8], s: &[u8]) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s[..n]);
    if s.len() < field.len() {
        field[s.len()] = 0;
    }
    if s.len() > field.len() && field[field.len() - 1] == b'/' {
        let head = &s[..field.len() - 1];
        let trimmed = head.iter().rposition(|&b| b != b'/').map(|i| i + 1).unwrap_or(0);
        field[trimmed] = 0;
    }
}

/// Go's `formatter.formatOctal`: zero-padded to the field length minus one, then NUL.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:o}");
    let width = field.len() - 1;
    let s = if digits.len() < width { format!("{}{digits}", "0".repeat(width - digits.len())) } else { digits };
    put_string(field, s.as_bytes());
}

/// Go's `splitUSTARPath`.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut length = name.len();
    if length <= NAME_LEN || !is_ascii(name) {
        return None;
    }
    if length > PREFIX_LEN + 1 {
        length = PREFIX_LEN + 1;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|&b| b == b'/')?;
    let suffix_len = name.len() - i - 1;
    if i == 0 || suffix_len > NAME_LEN || suffix_len == 0 || i > PREFIX_LEN {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

struct Header([u8; BLOCK]);

impl Header {
    fn new() -> Header {
        Header([0u8; BLOCK])
    }
    fn field(&mut self, offset: usize, len: usize) -> &mut [u8] {
        &mut self.0[offset..offset + len]
    }
    fn name(&mut self) -> &mut [u8] {
        self.field(0, 100)
    }
    fn mode(&mut self) -> &mut [u8] {
        self.field(100, 8)
    }
    fn uid(&mut self) -> &mut [u8] {
        self.field(108, 8)
    }
    fn gid(&mut self) -> &mut [u8] {
        self.field(116, 8)
    }
    fn size(&mut self) -> &mut [u8] {
        self.field(124, 12)
    }
    fn mtime(&mut self) -> &mut [u8] {
        self.field(136, 12)
    }
    fn linkname(&mut self) -> &mut [u8] {
        self.field(157, 100)
    }
    fn uname(&mut self) -> &mut [u8] {
        self.field(265, 32)
    }
    fn gname(&mut self) -> &mut [u8] {
        self.field(297, 32)
    }
    fn devmajor(&mut self) -> &mut [u8] {
        self.field(329, 8)
    }
    fn devminor(&mut self) -> &mut [u8] {
        self.field(337, 8)
    }
    fn prefix(&mut self) -> &mut [u8] {
        self.field(345, 155)
    }

    /// Magic, version and checksum: Go's `setFormat` + `computeChecksum` (chksum counted as spaces).
    fn finish(mut self, typeflag: u8) -> [u8; BLOCK] {
        self.0[156] = typeflag;
        self.0[257..263].copy_from_slice(b"ustar\0");
        self.0[263..265].copy_from_slice(b"00");
        let sum: u64 =
            self.0.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u64 }).sum();
        put_octal(&mut self.0[148..155], sum);
        self.0[155] = b' ';
        self.0
    }

    /// The fields every entry header shares (Go's `templateV7Plus` with the reference's values).
    fn entry(name: &[u8], link: &[u8], size: u64, mtime: u64) -> Header {
        let mut h = Header::new();
        put_string(h.name(), name);
        put_string(h.linkname(), link);
        put_octal(h.mode(), 0o777);
        put_octal(h.uid(), 0);
        put_octal(h.gid(), 0);
        put_octal(h.size(), size);
        put_octal(h.mtime(), mtime);
        put_string(h.uname(), b"root");
        put_string(h.gname(), b"root");
        put_octal(h.devmajor(), 0);
        put_octal(h.devminor(), 0);
        h
    }
}

/// One PAX record, `"<n> <key>=<value>\n"`, with `n` counting its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut size = base + base.to_string().len();
    if (size.to_string().len() + base) != size {
        size = base + size.to_string().len();
    }
    let mut r = format!("{size} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    debug_assert_eq!(r.len(), size);
    r
}

/// Go's `path.Join(path.Split(name).dir, "PaxHeaders.0", path.Split(name).file)` for a
/// validated wire name (no `.`/`..`/empty components).
fn pax_header_name(name: &[u8]) -> Vec<u8> {
    let cut = name.iter().rposition(|&b| b == b'/').map(|i| i + 1).unwrap_or(0);
    let (dir, file) = name.split_at(cut);
    let mut out: Vec<u8> = dir.strip_suffix(b"/").unwrap_or(dir).to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(b"PaxHeaders.0");
    if !file.is_empty() {
        out.push(b'/');
        out.extend_from_slice(file);
    }
    out
}

/// The header block(s) for one entry: a plain ustar header, or a PAX `x` entry (header and
/// records) followed by the entry's own header. Content and its padding are the caller's.
pub fn entry_header(name: &[u8], kind: Kind, size: u64, link: &[u8], mtime: u64) -> Result<Vec<u8>> {
    if name.is_empty() || name.contains(&0) || link.contains(&0) {
        return Err(Error::new(Code::Format, "tar entry name and link target must be non-empty and contain no NUL"));
    }
    if size > MAX_FILE_SIZE {
        return Err(Error::new(Code::Limit, "files of 8 GiB or more cannot be packed (PSD-009 §3.1.4)"));
    }
    if mtime > MAX_MTIME {
        return Err(Error::new(Code::Limit, "the timestamp does not fit the tar mtime field"));
    }
    let size = if kind == Kind::File { size } else { 0 };
    let name_plain = is_ascii(name) && name.len() <= NAME_LEN;
    let link_plain = is_ascii(link) && link.len() <= NAME_LEN;

    if link_plain && (name_plain || split_ustar(name).is_some()) {
        let (prefix, short) = if name_plain { (&b""[..], name) } else { split_ustar(name).unwrap() };
        let mut h = Header::entry(short, link, size, mtime);
        put_string(h.prefix(), prefix);
        return Ok(h.finish(kind.flag()).to_vec());
    }

    // PAX: records in key order ("linkpath" < "path"); Go records any over-long or non-ASCII
    // string, even a long name that could have been split, once PAX is needed at all.
    let mut records = Vec::new();
    if !link_plain {
        records.extend(pax_record("linkpath", link));
    }
    if !name_plain {
        records.extend(pax_record("path", name));
    }
    let mut xname = to_ascii(&pax_header_name(name));
    xname.truncate(NAME_LEN);
    while xname.last() == Some(&b'/') {
        xname.pop();
    }
    let mut x = Header::new();
    put_string(x.name(), &xname);
    put_octal(x.mode(), 0);
    put_octal(x.uid(), 0);
    put_octal(x.gid(), 0);
    put_octal(x.size(), records.len() as u64);
    put_octal(x.mtime(), 0);

    let mut out = Vec::with_capacity(3 * BLOCK + records.len());
    out.extend_from_slice(&x.finish(b'x'));
    out.extend_from_slice(&records);
    out.resize(out.len() + padding(records.len() as u64), 0);
    let own = Header::entry(&to_ascii(name), &to_ascii(link), size, mtime);
    out.extend_from_slice(&own.finish(kind.flag()));
    Ok(out)
}

/// The end-of-archive marker: two zero blocks.
pub const TRAILER: [u8; 2 * BLOCK] = [0u8; 2 * BLOCK];

#[cfg(test)]
mod tests {
    use super::*;

    const MTIME: u64 = 1_778_068_800; // 2026-05-06T12:00:00Z

    #[test]
    fn manifest_header_matches_the_hello_vector() {
        let h = entry_header(b".peipkg/manifest.json", Kind::File, 429, b"", MTIME).unwrap();
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[124..136], b"00000000655\0");
        assert_eq!(&h[136..148], b"15176626500\0");
        assert_eq!(&h[148..156], b"015137\0 ");
        assert_eq!(&h[329..345], b"0000000\x000000000\x00");
    }

    #[test]
    fn pax_record_length_counts_its_own_digits() {
        assert_eq!(
            pax_record("path", b"usr/share/edge/caf\xc3\xa9/"),
            b"30 path=usr/share/edge/caf\xc3\xa9/\n".to_vec()
        );
        // 9 + 1 digit would be 10 (two digits): the length must be recomputed.
        let r = pax_record("path", b"ab");
        assert_eq!(r, b"11 path=ab\n".to_vec());
    }

    #[test]
    fn pax_header_names_follow_go_path_join() {
        assert_eq!(
            pax_header_name(b"usr/share/edge/caf\xc3\xa9/"),
            b"usr/share/edge/caf\xc3\xa9/PaxHeaders.0".to_vec()
        );
        assert_eq!(pax_header_name(b"a/b/c"), b"a/b/PaxHeaders.0/c".to_vec());
        assert_eq!(pax_header_name(b"c"), b"PaxHeaders.0/c".to_vec());
    }

    #[test]
    fn split_follows_go() {
        let long = format!("usr/share/edge/{}/{}/", "d".repeat(60), "e".repeat(60));
        let (p, n) = split_ustar(long.as_bytes()).unwrap();
        assert_eq!(p, format!("usr/share/edge/{}", "d".repeat(60)).as_bytes());
        assert_eq!(n, format!("{}/", "e".repeat(60)).as_bytes());
        assert!(split_ustar(format!("a/{}", "x".repeat(120)).as_bytes()).is_none());
    }

    #[test]
    fn refuses_what_the_format_cannot_hold() {
        assert_eq!(entry_header(b"a", Kind::File, 1 << 33, b"", MTIME).unwrap_err().code, Code::Limit);
        assert_eq!(entry_header(b"a\0b", Kind::File, 0, b"", MTIME).unwrap_err().code, Code::Format);
        assert_eq!(entry_header(b"a", Kind::File, 0, b"", 1 << 33).unwrap_err().code, Code::Limit);
    }
}
