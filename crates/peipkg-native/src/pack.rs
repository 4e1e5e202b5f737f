//! Writes one package: entries → tar → (zstd) → file, with a running SHA-256 over the bytes the
//! package signature covers (`package-format.md` §2, §4.3).
//!
//! The caller decides everything about content and order (manifest, files.json, sorted payload);
//! this module only streams bytes. It re-hashes each staged file as it copies it and fails if the
//! file differs from what the caller recorded, so a file changed during a build cannot slip into
//! a package whose files.json says otherwise.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::durable::WritebackFile;
use crate::ed25519::{base64_unpadded, SigningKey};
use crate::error::{Code, Error, Result};
use crate::ffi::sys::open_beneath;
use crate::hash::{to_hex, READ_CHUNK};
use crate::progress::Progress;
use crate::tar::{self, Kind};
use crate::zstd::{Encoder, Params};

pub const SIGNATURE_NAME: &str = ".peipkg/signature";

#[derive(Debug)]
pub enum Content {
    /// Bytes held in memory (manifest.json, files.json).
    Inline(Vec<u8>),
    /// A file below `Spec::root`, opened without following symlinks.
    Staged(String),
}

#[derive(Debug)]
pub enum EntryKind {
    File { content: Content, size: u64, sha256: Option<[u8; 32]> },
    Directory,
    Symlink { target: String },
}

#[derive(Debug)]
pub struct Entry {
    /// The wire name: directories end in `/`.
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug)]
pub struct Spec {
    /// Created exclusively; removed again if packing fails.
    pub output: PathBuf,
    pub mtime: u64,
    pub root: Option<PathBuf>,
    pub entries: Vec<Entry>,
    pub key: Option<Arc<SigningKey>>,
    /// `None` writes the plain tar.
    pub compression: Option<Params>,
    pub fsync: bool,
    /// The "signable" form of an unsigned package: every entry in one zstd frame and the
    /// end-of-archive trailer in a second frame, which `sign::append_signature` can replace by a
    /// frame holding the signature entry and the trailer without touching the first. Needs
    /// compression and no key.
    pub split_trailer: bool,
}

#[derive(Debug)]
pub struct Outcome {
    pub tar_size: u64,
    pub output_size: u64,
    /// SHA-256 of the tar bytes before the signature entry (of the whole payload when unsigned).
    pub signed_digest: [u8; 32],
    pub signature: Option<[u8; 64]>,
    pub fingerprint: Option<String>,
}

/// The signature entry's content (§3.4): always 229 bytes.
pub fn envelope(fingerprint: &str, signature: &[u8; 64]) -> String {
    format!(
        "{{\"schema_version\":1,\"algorithm\":\"ed25519\",\"key_fingerprint\":\"{fingerprint}\",\"signature\":\"{}\"}}\n",
        base64_unpadded(signature)
    )
}

enum Sink {
    Raw(BufWriter<WritebackFile>),
    Zstd(Box<Encoder<BufWriter<WritebackFile>>>),
    /// Between two frames (only inside `TarStream::next_frame`).
    Gap,
}

struct TarStream<'a> {
    sink: Sink,
    path: &'a Path,
    hasher: Sha256,
    written: u64,
}

impl TarStream<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        match &mut self.sink {
            Sink::Raw(w) => w.write_all(bytes).map_err(|e| Error::io("write", self.path, e)),
            Sink::Zstd(z) => z.write(bytes),
            Sink::Gap => unreachable!("no frame is open"),
        }
    }

    /// Ends the current zstd frame and starts another, pledged to hold exactly `size` bytes.
    fn next_frame(&mut self, params: &Params, size: u64) -> Result<()> {
        let Sink::Zstd(z) = std::mem::replace(&mut self.sink, Sink::Gap) else {
            return Err(Error::argument("a second zstd frame needs compression"));
        };
        let writer = z.finish()?.0;
        self.sink = Sink::Zstd(Box::new(Encoder::new(writer, self.path, params, Some(size))?));
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        self.write(&[0u8; tar::BLOCK][..tar::padding(size)])
    }

    fn finish(self) -> Result<File> {
        let w = match self.sink {
            Sink::Raw(w) => w,
            Sink::Zstd(z) => z.finish()?.0,
            Sink::Gap => unreachable!("no frame is open"),
        };
        Ok(w.into_inner().map_err(|e| Error::io("write", self.path, e.into_error()))?.into_file())
    }
}

fn kind_of(kind: &EntryKind) -> (Kind, u64, &str) {
    match kind {
        EntryKind::File { size, content, .. } => {
            let size = match content {
                Content::Inline(b) => b.len() as u64,
                Content::Staged(_) => *size,
            };
            (Kind::File, size, "")
        }
        EntryKind::Directory => (Kind::Directory, 0, ""),
        EntryKind::Symlink { target } => (Kind::Symlink, 0, target.as_str()),
    }
}

fn header(entry: &Entry, mtime: u64) -> Result<Vec<u8>> {
    let (kind, size, link) = kind_of(&entry.kind);
    tar::entry_header(entry.name.as_bytes(), kind, size, link.as_bytes(), mtime)
        .map_err(|e| Error::new(e.code, format!("{}: {}", entry.name, e.message)))
}

/// The exact tar length, so that it can be pledged to zstd (and written into the frame header).
fn tar_size(spec: &Spec) -> Result<u64> {
    let mut total = 0u64;
    for entry in &spec.entries {
        let (_, size, _) = kind_of(&entry.kind);
        total += header(entry, spec.mtime)?.len() as u64 + size + tar::padding(size) as u64;
    }
    if spec.key.is_some() {
        total += 2 * tar::BLOCK as u64; // header + 229 bytes padded
    }
    Ok(total + tar::TRAILER.len() as u64)
}

fn copy_staged(
    out: &mut TarStream,
    root: &Path,
    rel: &str,
    size: u64,
    expected: Option<[u8; 32]>,
    buf: &mut [u8],
    progress: Option<&Progress>,
) -> Result<()> {
    let shown = root.join(rel);
    let mut file = open_beneath(root, rel.as_bytes()).map_err(|e| Error::io("open", &shown, e))?;
    let meta = file.metadata().map_err(|e| Error::io("stat", &shown, e))?;
    if !meta.is_file() {
        return Err(Error::at(Code::Changed, &shown, format!("{rel} is no longer a regular file")));
    }
    let changed = || {
        Error::at(
            Code::Changed,
            &shown,
            format!("{rel} changed while it was packed (size or content differs from files.json)"),
        )
    };
    let mut hasher = Sha256::new();
    let mut left = size;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want]).map_err(|e| Error::io("read", &shown, e))?;
        if n == 0 {
            return Err(changed());
        }
        hasher.update(&buf[..n]);
        out.write(&buf[..n])?;
        left -= n as u64;
        if let Some(p) = progress {
            p.add_bytes(n as u64);
        }
    }
    if file.read(&mut buf[..1]).map_err(|e| Error::io("read", &shown, e))? != 0 {
        return Err(changed());
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if let Some(want) = expected {
        if want != digest {
            return Err(Error::at(
                Code::Changed,
                &shown,
                format!(
                    "{rel} changed while it was packed: SHA-256 {} differs from files.json's {}",
                    to_hex(&digest),
                    to_hex(&want)
                ),
            ));
        }
    }
    Ok(())
}

fn write_entries(spec: &Spec, out: &mut TarStream, progress: Option<&Progress>) -> Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    for entry in &spec.entries {
        out.write(&header(entry, spec.mtime)?)?;
        if let EntryKind::File { content, size, sha256 } = &entry.kind {
            match content {
                Content::Inline(bytes) => {
                    if let Some(want) = sha256 {
                        if *want != <[u8; 32]>::from(Sha256::digest(bytes)) {
                            return Err(Error::argument(format!(
                                "{}: inline content does not match its sha256",
                                entry.name
                            )));
                        }
                    }
                    out.write(bytes)?;
                    out.pad(bytes.len() as u64)?;
                }
                Content::Staged(rel) => {
                    let root =
                        spec.root.as_deref().ok_or_else(|| Error::argument("staged entries need a root directory"))?;
                    copy_staged(out, root, rel, *size, *sha256, &mut buf, progress)?;
                    out.pad(*size)?;
                }
            }
        }
        if let Some(p) = progress {
            p.add_item();
        }
    }
    Ok(())
}

fn pack_into(spec: &Spec, file: File, progress: Option<&Progress>) -> Result<Outcome> {
    let tar_size = tar_size(spec)?;
    let trailer = tar::TRAILER.len() as u64;
    // The first frame is pledged to hold everything but the trailer, the second exactly the trailer.
    let first_frame = if spec.split_trailer { tar_size - trailer } else { tar_size };
    let output = WritebackFile::new(file, spec.fsync);
    let writer = BufWriter::with_capacity(READ_CHUNK, output);
    let sink = match &spec.compression {
        Some(params) => Sink::Zstd(Box::new(Encoder::new(writer, &spec.output, params, Some(first_frame))?)),
        None => Sink::Raw(writer),
    };
    let mut out = TarStream { sink, path: &spec.output, hasher: Sha256::new(), written: 0 };
    write_entries(spec, &mut out, progress)?;

    // §4.2: the digest covers every byte before the signature entry's header.
    let signed_digest: [u8; 32] = std::mem::take(&mut out.hasher).finalize().into();
    let (mut signature, mut fingerprint) = (None, None);
    if let Some(key) = &spec.key {
        let sig = key.sign(&signed_digest);
        let fp = key.fingerprint();
        let env = envelope(&fp, &sig);
        out.write(&tar::entry_header(SIGNATURE_NAME.as_bytes(), Kind::File, env.len() as u64, b"", spec.mtime)?)?;
        out.write(env.as_bytes())?;
        out.pad(env.len() as u64)?;
        signature = Some(sig);
        fingerprint = Some(fp);
    }
    if spec.split_trailer {
        let params = spec.compression.as_ref().expect("checked by pack()");
        out.next_frame(params, trailer)?;
    }
    out.write(&tar::TRAILER)?;
    let written = out.written;
    debug_assert_eq!(written, tar_size);
    let file = out.finish()?;
    if spec.fsync {
        file.sync_all().map_err(|e| Error::io("fsync", &spec.output, e))?;
    }
    let output_size = file.metadata().map_err(|e| Error::io("stat", &spec.output, e))?.len();
    Ok(Outcome { tar_size: written, output_size, signed_digest, signature, fingerprint })
}

/// Writes the package to `spec.output` (which must not exist). On failure nothing is left there.
pub fn pack(spec: &Spec, progress: Option<&Progress>) -> Result<Outcome> {
    if spec.split_trailer && spec.key.is_some() {
        return Err(Error::argument("a deferred-signature (split trailer) package cannot also be signed"));
    }
    if spec.split_trailer && spec.compression.is_none() {
        return Err(Error::argument("a deferred-signature (split trailer) package needs zstd compression"));
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&spec.output)
        .map_err(|e| Error::io("create", &spec.output, e))?;
    let result = pack_into(spec, file, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(&spec.output);
    }
    result
}
