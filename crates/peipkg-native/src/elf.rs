//! Embedded binary signatures (`package-format.md` §7.5): a `.peios.sig` section appended to a
//! little-endian ELF64, holding `0x01` + Ed25519 over the SHA-256 of the whole signed file with
//! those 65 bytes still zero.
//!
//! The file is rewritten through `<path>.peios-sig.tmp` and a rename, keeping its permission bits.
//! A symlink is refused rather than followed: build scripts control the staged tree, and a link
//! to a file outside it must never make us rewrite that file.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::ed25519::{self, SigningKey};
use crate::error::{Code, Error, Result};

pub const SECTION_NAME: &[u8] = b".peios.sig";
pub const SECTION_SIZE: usize = 65;
const SIGNATURE_VERSION: u8 = 0x01;
const SHT_PROGBITS: u32 = 1;
const SHDR_SIZE: usize = 64;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[derive(Clone, Copy, Debug)]
struct SectionHeader {
    name: u32,
    offset: u64,
    size: u64,
}

struct Elf {
    shoff: usize,
    shnum: usize,
    shstrndx: usize,
    sections: Vec<SectionHeader>,
}

fn format_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::at(Code::Format, path, format!("{}: {what}", path.display()))
}

fn parse(bytes: &[u8], path: &Path) -> Result<Elf> {
    if bytes.len() < 64 || &bytes[0..4] != b"\x7fELF" {
        return Err(format_error(path, "not an ELF file"));
    }
    if bytes[4] != 2 {
        return Err(format_error(path, "is a 32-bit ELF; only little-endian ELF64 binaries can be signed"));
    }
    if bytes[5] != 1 {
        return Err(format_error(path, "is a big-endian ELF; only little-endian ELF64 binaries can be signed"));
    }
    let shoff = u64_at(bytes, 0x28) as usize;
    let shentsize = u16_at(bytes, 0x3a) as usize;
    let shnum = u16_at(bytes, 0x3c) as usize;
    let shstrndx = u16_at(bytes, 0x3e) as usize;
    if shnum == 0 || shoff == 0 {
        return Err(format_error(path, "has no section header table"));
    }
    if shentsize != SHDR_SIZE {
        return Err(format_error(path, format!("has section headers of {shentsize} bytes, not 64")));
    }
    if shstrndx >= shnum {
        return Err(format_error(path, "has no valid section-name string table (e_shstrndx)"));
    }
    if shoff.checked_add(shnum * SHDR_SIZE).map(|end| end > bytes.len()).unwrap_or(true) {
        return Err(format_error(path, "section header table runs past the end of the file"));
    }
    let sections = (0..shnum)
        .map(|i| {
            let at = shoff + i * SHDR_SIZE;
            SectionHeader { name: u32_at(bytes, at), offset: u64_at(bytes, at + 24), size: u64_at(bytes, at + 32) }
        })
        .collect::<Vec<_>>();
    let strtab = sections[shstrndx];
    if strtab.offset.checked_add(strtab.size).map(|end| end > bytes.len() as u64).unwrap_or(true) {
        return Err(format_error(path, "section-name string table runs past the end of the file"));
    }
    Ok(Elf { shoff, shnum, shstrndx, sections })
}

fn section_name<'a>(bytes: &'a [u8], elf: &Elf, s: &SectionHeader) -> &'a [u8] {
    let strtab = elf.sections[elf.shstrndx];
    let table = &bytes[strtab.offset as usize..(strtab.offset + strtab.size) as usize];
    let start = s.name as usize;
    if start >= table.len() {
        return b"";
    }
    let end = table[start..].iter().position(|&c| c == 0).map(|p| start + p).unwrap_or(table.len());
    &table[start..end]
}

fn find_signature(bytes: &[u8], elf: &Elf) -> Option<SectionHeader> {
    elf.sections.iter().copied().find(|s| section_name(bytes, elf, s) == SECTION_NAME)
}

/// The file with an empty (zeroed) `.peios.sig` section appended, and the section's offset.
fn with_empty_section(original: &[u8], elf: &Elf) -> (Vec<u8>, usize) {
    let strtab = elf.sections[elf.shstrndx];
    let old_names = &original[strtab.offset as usize..(strtab.offset + strtab.size) as usize];
    let mut out = original.to_vec();
    let sig_offset = out.len();
    out.extend_from_slice(&[0u8; SECTION_SIZE]);
    let names_offset = out.len();
    out.extend_from_slice(old_names);
    out.extend_from_slice(SECTION_NAME);
    out.push(0);
    let names_size = out.len() - names_offset;
    out.resize(out.len().next_multiple_of(8), 0);
    let new_shoff = out.len();
    for i in 0..elf.shnum {
        let at = elf.shoff + i * SHDR_SIZE;
        let mut header = original[at..at + SHDR_SIZE].to_vec();
        if i == elf.shstrndx {
            header[24..32].copy_from_slice(&(names_offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(names_size as u64).to_le_bytes());
        }
        out.extend_from_slice(&header);
    }
    let mut sig = [0u8; SHDR_SIZE];
    sig[0..4].copy_from_slice(&(old_names.len() as u32).to_le_bytes());
    sig[4..8].copy_from_slice(&SHT_PROGBITS.to_le_bytes());
    sig[24..32].copy_from_slice(&(sig_offset as u64).to_le_bytes());
    sig[32..40].copy_from_slice(&(SECTION_SIZE as u64).to_le_bytes());
    sig[48..56].copy_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&sig);
    out[0x28..0x30].copy_from_slice(&(new_shoff as u64).to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&((elf.shnum + 1) as u16).to_le_bytes());
    (out, sig_offset)
}

fn read_regular(path: &Path) -> Result<(Vec<u8>, u32)> {
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            format_error(path, "is a symlink; only regular files are signed")
        } else {
            Error::io("open", path, e)
        }
    })?;
    let meta = file.metadata().map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(format_error(path, "is not a regular file"));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(|e| Error::io("read", path, e))?;
    Ok((bytes, meta.permissions().mode() & 0o7777))
}

/// Signs the ELF at `path` in place with `key`.
pub fn sign(path: &Path, key: &SigningKey) -> Result<()> {
    let (original, mode) = read_regular(path)?;
    let elf = parse(&original, path)?;
    if find_signature(&original, &elf).is_some() {
        return Err(format_error(path, "already carries a .peios.sig section; sign a fresh build"));
    }
    let (mut signed, at) = with_empty_section(&original, &elf);
    let digest: [u8; 32] = Sha256::digest(&signed).into();
    signed[at] = SIGNATURE_VERSION;
    signed[at + 1..at + SECTION_SIZE].copy_from_slice(&key.sign(&digest));
    if !ed25519::verify(&key.public_key(), &digest, &signed[at + 1..at + SECTION_SIZE]) {
        return Err(Error::new(Code::Key, "the binary signature does not verify with the key's public half"));
    }
    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(".peios-sig.tmp");
    let temp = std::path::PathBuf::from(temp_name);
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode)
            .open(&temp)
            .map_err(|e| Error::io("create", &temp, e))?;
        out.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io("chmod", &temp, e))?;
        out.write_all(&signed).map_err(|e| Error::io("write", &temp, e))?;
        out.sync_all().map_err(|e| Error::io("fsync", &temp, e))?;
        std::fs::rename(&temp, path).map_err(|e| Error::io("rename", &temp, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Checks the `.peios.sig` of the ELF at `path` against `public_key`: `Ok(false)` when it does not
/// verify; an error when the file is not a signed ELF64.
pub fn verify(path: &Path, public_key: &[u8; 32]) -> Result<bool> {
    let (mut bytes, _) = read_regular(path)?;
    let elf = parse(&bytes, path)?;
    let section = find_signature(&bytes, &elf).ok_or_else(|| format_error(path, "has no .peios.sig section"))?;
    let at = section.offset as usize;
    if section.size as usize != SECTION_SIZE || at + SECTION_SIZE > bytes.len() {
        return Err(format_error(path, "has a malformed .peios.sig section"));
    }
    let content: Vec<u8> = bytes[at..at + SECTION_SIZE].to_vec();
    if content[0] != SIGNATURE_VERSION {
        return Ok(false);
    }
    bytes[at..at + SECTION_SIZE].fill(0);
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    Ok(ed25519::verify(public_key, &digest, &content[1..]))
}
