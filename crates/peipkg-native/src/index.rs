//! Repository index documents (`repository.md` §5): parsing and canonical writing, in the core
//! because archives grow to 100,000 entries (65 MB), where JavaScript's JSON takes seconds.
//!
//! Entries are kept as their canonical bytes. A loaded document's entries are reused verbatim:
//! callers only build on documents whose signature verified, and every producer that holds a
//! repository key (this tool and the reference) writes entries canonically. New entries are
//! parsed into `Entry` and re-encoded, so what TypeScript hands over is normalised the way the
//! reference normalises (unknown members dropped, empty optional strings left out).
//!
//! It knows the document's shape and encoding, nothing else: ordering, active derivation and every
//! rule stay in TypeScript, which works from each entry's keys (name, version, architecture, hash, url).

use std::borrow::Cow;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::{Code, Error, Result};

fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Relation {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub constraint: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub arch: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Provide {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub version: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Replace {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub constraint: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct HashRef {
    #[serde(default, deserialize_with = "nullable")]
    pub algorithm: String,
    #[serde(default, deserialize_with = "nullable")]
    pub value: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct BuildRef {
    #[serde(default, deserialize_with = "nullable")]
    pub timestamp: String,
    #[serde(default, deserialize_with = "nullable")]
    pub farm_id: String,
}

/// One package entry: all 17 members, in the contract's order (§5.3).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Entry {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub license: String,
    #[serde(default, deserialize_with = "nullable")]
    pub homepage: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dependencies: Vec<Relation>,
    #[serde(default, deserialize_with = "nullable")]
    pub optional_dependencies: Vec<Relation>,
    #[serde(default, deserialize_with = "nullable")]
    pub conflicts: Vec<Relation>,
    #[serde(default, deserialize_with = "nullable")]
    pub provides: Vec<Provide>,
    #[serde(default, deserialize_with = "nullable")]
    pub replaces: Vec<Replace>,
    #[serde(default, deserialize_with = "nullable")]
    pub side_effects: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub size_compressed: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub size_installed: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub hash: HashRef,
    #[serde(default, deserialize_with = "nullable")]
    pub url: String,
    #[serde(default, deserialize_with = "nullable")]
    pub build: BuildRef,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Header {
    #[serde(default, deserialize_with = "nullable")]
    pub schema_version: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub repo: String,
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub index_version: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub generated_at: String,
}

/// A whole document: the header members, and `packages` read as `P` (raw JSON text per entry for
/// `load`, skipped for `inspect`). (Not `#[serde(flatten)]`-ed over `Header`, which would buffer
/// the document first.)
#[derive(Deserialize)]
#[serde(bound(deserialize = "P: Deserialize<'de> + Default"))]
struct Document<P> {
    #[serde(default, deserialize_with = "nullable")]
    schema_version: i64,
    #[serde(default, deserialize_with = "nullable")]
    repo: String,
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    index_version: i64,
    #[serde(default, deserialize_with = "nullable")]
    generated_at: String,
    #[serde(default)]
    packages: P,
}

impl<P> Document<P> {
    fn into_parts(self) -> (Header, P) {
        let header = Header {
            schema_version: self.schema_version,
            repo: self.repo,
            kind: self.kind,
            index_version: self.index_version,
            generated_at: self.generated_at,
        };
        (header, self.packages)
    }
}

/// A document's bytes: mapped from the page cache where the file system allows it, read otherwise.
pub struct Bytes(Held);

enum Held {
    Mapped(crate::ffi::sys::Mapped),
    Read(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Held::Mapped(m) => m,
            Held::Read(v) => v,
        }
    }
}

/// The bytes of the document at `path`. Mapped, so that a 56 MB archive costs no fresh memory (see
/// `Mapped`); read into one allocation of the right size where mapping fails (a file system without
/// mmap). Only a regular file is read (`open::open_regular`).
fn read_bytes(path: &Path) -> Result<Bytes> {
    let mut file = crate::open::open_regular(path).map_err(|e| Error::io("read", path, e))?;
    if let Ok(mapped) = crate::ffi::sys::Mapped::of(&file) {
        return Ok(Bytes(Held::Mapped(mapped)));
    }
    let len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut bytes = Vec::with_capacity(len + 1);
    file.read_to_end(&mut bytes).map_err(|e| Error::io("read", path, e))?;
    Ok(Bytes(Held::Read(bytes)))
}

fn parse_error(path: &Path, e: serde_json::Error) -> Error {
    Error::at(Code::Format, path, format!("parse {}: {e}", path.display()))
}

/// The members of an entry that rules work from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeysRef<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub architecture: &'a str,
    pub hash: &'a str,
    pub url: &'a str,
}

impl<'a> KeysRef<'a> {
    /// `name_version_architecture`, as problems name an entry.
    pub fn triple_text(&self) -> String {
        format!("{}_{}_{}", self.name, self.version, self.architecture)
    }

    pub fn triple(&self) -> (&'a str, &'a str, &'a str) {
        (self.name, self.version, self.architecture)
    }
}

/// Keys held as strings: those of new packages, and of the rare loaded entry whose key members
/// hold JSON escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub hash: String,
    pub url: String,
}

impl Keys {
    pub fn view(&self) -> KeysRef<'_> {
        KeysRef {
            name: &self.name,
            version: &self.version,
            architecture: &self.architecture,
            hash: &self.hash,
            url: &self.url,
        }
    }

    fn of(entry: &Entry) -> Keys {
        Keys {
            name: entry.name.clone(),
            version: entry.version.clone(),
            architecture: entry.architecture.clone(),
            hash: entry.hash.value.clone(),
            url: entry.url.clone(),
        }
    }
}

/// Where a loaded entry's keys are: as (offset, length) pairs into the entry's own JSON text, for
/// members without escapes (eight bytes each, no allocation), or as strings.
#[derive(Clone, Debug)]
pub enum EntryKeys {
    InEntry([(u32, u32); 5]),
    Owned(Box<Keys>),
}

impl Default for EntryKeys {
    fn default() -> Self {
        EntryKeys::InEntry([(0, 0); 5])
    }
}

impl EntryKeys {
    /// The keys, given the entry's JSON text they were parsed from.
    pub fn get<'a>(&'a self, entry: &'a [u8]) -> KeysRef<'a> {
        match self {
            EntryKeys::Owned(keys) => keys.view(),
            EntryKeys::InEntry(at) => {
                // Each range held a string serde_json borrowed, so it is in bounds and UTF-8.
                let text = |(start, len): (u32, u32)| {
                    let (start, len) = (start as usize, len as usize);
                    entry.get(start..start + len).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default()
                };
                KeysRef {
                    name: text(at[0]),
                    version: text(at[1]),
                    architecture: text(at[2]),
                    hash: text(at[3]),
                    url: text(at[4]),
                }
            }
        }
    }

    fn parse(entry: &[u8]) -> std::result::Result<EntryKeys, serde_json::Error> {
        let raw: RawKeys = serde_json::from_slice(entry)?;
        let base = entry.as_ptr() as usize;
        // Each member borrowed from `entry` as (offset, length): the offset is the distance between
        // the two pointers. None when one was unescaped into a string of its own.
        let place = |text: &Text| -> Option<(u32, u32)> {
            match &text.0 {
                Cow::Borrowed("") => Some((0, 0)),
                Cow::Borrowed(s) => {
                    let start = (s.as_ptr() as usize).wrapping_sub(base);
                    let fits = start.checked_add(s.len()).is_some_and(|end| end <= entry.len());
                    Some((u32::try_from(start).ok().filter(|_| fits)?, u32::try_from(s.len()).ok()?))
                }
                Cow::Owned(_) => None,
            }
        };
        let placed = [&raw.name, &raw.version, &raw.architecture, &raw.hash, &raw.url].map(place);
        if placed.iter().all(Option::is_some) {
            return Ok(EntryKeys::InEntry(placed.map(Option::unwrap_or_default)));
        }
        Ok(EntryKeys::Owned(Box::new(raw.into_keys())))
    }
}

/// A string member as serde_json gives it: borrowed from the input when it holds no escapes. A
/// missing member or `null` reads as "" (the reference's zero value).
#[derive(Default)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s)))
            }
            fn visit_none<E>(self) -> std::result::Result<Text<'a>, E> {
                Ok(Text::default())
            }
            fn visit_unit<E>(self) -> std::result::Result<Text<'a>, E> {
                Ok(Text::default())
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Text<'a>, D::Error> {
                d.deserialize_str(self)
            }
        }
        d.deserialize_option(Visit(std::marker::PhantomData))
    }
}

#[derive(Default, Deserialize)]
struct RawHash<'a> {
    #[serde(borrow, default)]
    value: Text<'a>,
}

#[derive(Deserialize)]
struct RawKeys<'a> {
    #[serde(borrow, default)]
    name: Text<'a>,
    #[serde(borrow, default)]
    version: Text<'a>,
    #[serde(borrow, default)]
    architecture: Text<'a>,
    #[serde(borrow, default, deserialize_with = "nullable_hash")]
    hash: Text<'a>,
    #[serde(borrow, default)]
    url: Text<'a>,
}

fn nullable_hash<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> std::result::Result<Text<'a>, D::Error> {
    Ok(Option::<RawHash<'a>>::deserialize(d)?.unwrap_or_default().value)
}

impl RawKeys<'_> {
    fn into_keys(self) -> Keys {
        Keys {
            name: self.name.0.into_owned(),
            version: self.version.0.into_owned(),
            architecture: self.architecture.0.into_owned(),
            hash: self.hash.0.into_owned(),
            url: self.url.0.into_owned(),
        }
    }
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    schema_version: i64,
    repo: &'a str,
    kind: &'a str,
    index_version: i64,
    generated_at: &'a str,
}

/// A document as read: its bytes, where each entry's JSON lies in them, and each entry's keys.
pub struct Loaded {
    pub header: Header,
    pub bytes: Bytes,
    pub spans: Vec<Range<usize>>,
    pub keys: Vec<EntryKeys>,
    /// SHA-256 of the file's bytes, as read (what a detached signature covers).
    pub sha256: [u8; 32],
}

impl Loaded {
    /// The JSON text of entry `i`.
    pub fn json(&self, i: usize) -> &[u8] {
        &self.bytes[self.spans[i].clone()]
    }

    pub fn entry_keys(&self, i: usize) -> KeysRef<'_> {
        self.keys[i].get(self.json(i))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The SHA-256 of `bytes`, hashed beside the parse; `None` once `abandon` is set (the parse failed),
/// so that a document that is not JSON from its first bytes, however large, fails at once instead of
/// after every byte is read and hashed.
fn digest_unless(bytes: &[u8], abandon: &AtomicBool) -> Option<[u8; 32]> {
    const STEP: usize = 4 << 20;
    let mut hasher = Sha256::new();
    for chunk in bytes.chunks(STEP) {
        if abandon.load(Ordering::Relaxed) {
            return None;
        }
        hasher.update(chunk);
    }
    Some(hasher.finalize().into())
}

/// Below this many entries, the keys are read on the calling thread alone.
const PARALLEL_KEYS: usize = 20_000;

/// Reads and parses the document at `path` once: the entries stay as spans of its bytes (written
/// back verbatim), and only their keys are decoded, across the machine's cores while another
/// thread hashes the bytes.
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = read_bytes(path)?;
    let parse_keys = |spans: &[Range<usize>], out: &mut [EntryKeys]| -> Result<()> {
        for (span, slot) in spans.iter().zip(out) {
            *slot = EntryKeys::parse(&bytes[span.clone()]).map_err(|e| parse_error(path, e))?;
        }
        Ok(())
    };
    let abandon = AtomicBool::new(false);
    let (sha256, parsed) = std::thread::scope(|outer| {
        let sha256 = outer.spawn(|| digest_unless(&bytes, &abandon));
        let parsed = (|| -> Result<(Header, Vec<Range<usize>>, Vec<EntryKeys>)> {
            let doc: Document<Option<Vec<&RawValue>>> =
                serde_json::from_slice(&bytes).map_err(|e| parse_error(path, e))?;
            let (header, packages) = doc.into_parts();
            let base = bytes.as_ptr() as usize;
            let spans: Vec<Range<usize>> = packages
                .unwrap_or_default()
                .into_iter()
                .map(|raw| {
                    // Borrowed from `bytes`: the offset is the distance between the two pointers.
                    let start = raw.get().as_ptr() as usize - base;
                    start..start + raw.get().len()
                })
                .collect();
            let mut keys = vec![EntryKeys::default(); spans.len()];
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
            if spans.len() < PARALLEL_KEYS || threads < 2 {
                parse_keys(&spans, &mut keys)?;
            } else {
                let chunk = spans.len().div_ceil(threads);
                std::thread::scope(|inner| {
                    let parts: Vec<_> = spans
                        .chunks(chunk)
                        .zip(keys.chunks_mut(chunk))
                        .map(|(part, out)| inner.spawn(move || parse_keys(part, out)))
                        .collect();
                    for part in parts {
                        part.join().unwrap_or_else(|_| Err(Error::argument("index keys: a thread panicked")))?;
                    }
                    Ok::<_, Error>(())
                })?;
            }
            Ok((header, spans, keys))
        })();
        abandon.store(parsed.is_err(), Ordering::Relaxed);
        (sha256.join(), parsed)
    });
    let (header, spans, keys) = parsed?;
    let sha256 = sha256.ok().flatten().ok_or_else(|| Error::argument("index hash: a thread panicked"))?;
    Ok(Loaded { header, bytes, spans, keys, sha256 })
}

/// The header, SHA-256 and size of a document, without keeping its entries (they are still
/// checked to be well-formed JSON).
pub fn inspect(path: &Path) -> Result<(Header, [u8; 32], u64)> {
    let bytes = read_bytes(path)?;
    let abandon = AtomicBool::new(false);
    let (doc, sha256) = std::thread::scope(|s| {
        let sha256 = s.spawn(|| digest_unless(&bytes, &abandon));
        let doc = serde_json::from_slice::<Document<IgnoredAny>>(&bytes);
        abandon.store(doc.is_err(), Ordering::Relaxed);
        (doc, sha256.join())
    });
    let doc = doc.map_err(|e| parse_error(path, e))?;
    let sha256 = sha256.ok().flatten().ok_or_else(|| Error::argument("index hash: a thread panicked"))?;
    Ok((doc.into_parts().0, sha256, bytes.len() as u64))
}

/// What publish knows of a new package: its manifest.json bytes and the facts of the file.
pub struct NewPackage {
    pub manifest: Vec<u8>,
    pub size: u64,
    pub sha256: String,
    pub url: String,
}

/// The index entry of a new package (§5.3): the manifest's members (unknown ones dropped, empty
/// optional strings left out), the file's size and SHA-256, its URL, and `build` without
/// `source_ref`. Returns the entry's canonical bytes and its keys.
pub fn package_entry(package: &NewPackage) -> Result<(Vec<u8>, Keys)> {
    let mut entry: Entry = serde_json::from_slice(&package.manifest)
        .map_err(|e| Error::new(Code::Format, format!("manifest.json: {e}")))?;
    entry.size_compressed = package.size;
    entry.hash = HashRef { algorithm: "sha256".into(), value: package.sha256.clone() };
    entry.url = package.url.clone();
    Ok((encode_entry(&entry)?, Keys::of(&entry)))
}

/// The browse site's columns: the one place that says what a row holds. Writers emit them with the
/// rows, and readers look columns up by name.
pub const SITE_COLUMNS: [&str; 9] = [
    "name",
    "version",
    "architecture",
    "description",
    "url",
    "size_compressed",
    "size_installed",
    "build_timestamp",
    "active",
];

#[derive(Deserialize)]
struct SiteFields {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    architecture: String,
    #[serde(default, deserialize_with = "nullable")]
    description: String,
    #[serde(default, deserialize_with = "nullable")]
    url: String,
    #[serde(default, deserialize_with = "nullable")]
    size_compressed: u64,
    #[serde(default, deserialize_with = "nullable")]
    size_installed: u64,
    #[serde(default, deserialize_with = "nullable")]
    build: BuildRef,
}

/// Appends one site row (see `SITE_COLUMNS`) for the entry `json` to `out`, as JSON text.
pub fn site_row(json: &[u8], active: bool, out: &mut Vec<u8>) -> Result<()> {
    let f: SiteFields = serde_json::from_slice(json).map_err(|e| Error::argument(format!("site rows: {e}")))?;
    let row = (
        f.name.as_str(),
        f.version.as_str(),
        f.architecture.as_str(),
        f.description.as_str(),
        f.url.as_str(),
        f.size_compressed,
        f.size_installed,
        f.build.timestamp.as_str(),
        u8::from(active),
    );
    serde_json::to_writer(out, &row).map_err(|e| Error::argument(format!("site rows: {e}")))
}

/// Escapes JSON text for a script (what `scriptJson` in `ts/repo/site/escape.ts` does): `<`, `>`,
/// `&` and every UTF-16 unit from U+007F up become `\uxxxx`, so the text cannot close a `<script>`
/// element and stays ASCII. In valid JSON those characters only occur inside strings, where the
/// escape means the same character.
pub fn script_json(json: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let unit = |u: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((u >> shift) & 0xf)]);
        }
    };
    let mut rest = json;
    while let Some(i) = rest.iter().position(|&b| b == b'<' || b == b'>' || b == b'&' || b >= 0x7f) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        if b < 0x80 {
            unit(u16::from(b), out);
            rest = &rest[i + 1..];
            continue;
        }
        // A UTF-8 sequence (the caller's JSON is valid UTF-8): its code point, as UTF-16 units.
        let len = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        let seq = &rest[i..(i + len).min(rest.len())];
        let c = std::str::from_utf8(seq).ok().and_then(|s| s.chars().next()).unwrap_or('\u{fffd}');
        let mut buf = [0u16; 2];
        for u in c.encode_utf16(&mut buf) {
            unit(*u, out);
        }
        rest = &rest[i + seq.len()..];
    }
    out.extend_from_slice(rest);
}

/// serde_json writes U+2028 and U+2029 raw; the canonical encoding escapes them (§3).
fn escape_line_separators(json: Vec<u8>) -> Vec<u8> {
    if !json.windows(3).any(|w| w[0] == 0xe2 && w[1] == 0x80 && (w[2] == 0xa8 || w[2] == 0xa9)) {
        return json;
    }
    let mut out = Vec::with_capacity(json.len() + 64);
    let mut i = 0;
    while i < json.len() {
        if i + 2 < json.len() && json[i] == 0xe2 && json[i + 1] == 0x80 && (json[i + 2] == 0xa8 || json[i + 2] == 0xa9)
        {
            out.extend_from_slice(if json[i + 2] == 0xa8 { b"\\u2028" } else { b"\\u2029" });
            i += 3;
        } else {
            out.push(json[i]);
            i += 1;
        }
    }
    out
}

/// Writes the canonical bytes of an index document with `entries` (each an entry's canonical JSON)
/// in the given order, newline included.
pub fn encode_to(out: &mut impl Write, header: &Header, entries: &[&[u8]]) -> std::io::Result<()> {
    let head = HeaderOut {
        schema_version: header.schema_version,
        repo: &header.repo,
        kind: &header.kind,
        index_version: header.index_version,
        generated_at: &header.generated_at,
    };
    let head = escape_line_separators(serde_json::to_vec(&head)?);
    out.write_all(&head[..head.len() - 1])?; // without the header object's closing brace
    out.write_all(b",\"packages\":[")?;
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(entry)?;
    }
    out.write_all(b"]}\n")
}

/// Canonical bytes of one entry (for cross-checks with the TypeScript encoder).
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(entry).map_err(|e| Error::argument(format!("encode entry: {e}")))?;
    Ok(escape_line_separators(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries from JSON text (an array of entry objects), normalised to canonical bytes.
    fn parse_entries(json: &str) -> Result<Vec<Vec<u8>>> {
        let entries: Vec<Entry> =
            serde_json::from_str(json).map_err(|e| Error::argument(format!("index entries: {e}")))?;
        entries.iter().map(encode_entry).collect()
    }

    const HELLO: &str = r#"{"schema_version":1,"repo":"rt","kind":"active","index_version":2,"generated_at":"2026-05-07T01:00:00Z","packages":[{"name":"hello","version":"0.1-1","architecture":"noarch","description":"Smallest legal peipkg test fixture.","license":"CC0-1.0","homepage":"https://peios.org","dependencies":[],"optional_dependencies":[],"conflicts":[],"provides":[],"replaces":[],"side_effects":[],"size_compressed":570,"size_installed":14,"hash":{"algorithm":"sha256","value":"64840dab60cebcd13387aaf7cd4a1be3ee756698077476aeeaafdaf2256c8abf"},"url":"/p/hello/0.1-1/hello_0.1-1_noarch.peipkg","build":{"timestamp":"2026-05-06T12:00:00Z","farm_id":"test-farm-1"}}]}
"#;

    #[test]
    fn the_t2_active_index_round_trips_byte_for_byte() {
        let dir = std::env::temp_dir().join(format!("peipkg-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("active.json");
        std::fs::write(&path, HELLO).unwrap();
        let loaded = load(&path).unwrap();
        let keys = loaded.entry_keys(0);
        assert_eq!(keys.name, "hello");
        assert_eq!(keys.hash, "64840dab60cebcd13387aaf7cd4a1be3ee756698077476aeeaafdaf2256c8abf");
        assert!(matches!(loaded.keys[0], EntryKeys::InEntry(_)));
        let raw = loaded.json(0);
        let mut out = Vec::new();
        encode_to(&mut out, &loaded.header, &[raw]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), HELLO);
        // Re-encoding the parsed entry gives the same bytes as reusing them.
        let reparsed = parse_entries(&format!("[{}]", std::str::from_utf8(raw).unwrap())).unwrap();
        assert_eq!(reparsed[0], raw);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_are_borrowed_from_the_entry_unless_escaped_and_null_reads_as_empty() {
        let plain = br#"{"name":"a","version":"1-1","architecture":"noarch","hash":{"value":"h"},"url":"/p/a"}"#;
        let keys = EntryKeys::parse(plain).unwrap();
        assert!(matches!(keys, EntryKeys::InEntry(_)));
        assert_eq!(
            keys.get(plain),
            KeysRef { name: "a", version: "1-1", architecture: "noarch", hash: "h", url: "/p/a" }
        );

        let escaped = br#"{"name":"a","version":"1-1","url":"/p/a?x=1\u0026y=\"2\"","hash":null,"architecture":null}"#;
        let keys = EntryKeys::parse(escaped).unwrap();
        assert!(matches!(keys, EntryKeys::Owned(_)));
        assert_eq!(
            keys.get(escaped),
            KeysRef { name: "a", version: "1-1", architecture: "", hash: "", url: "/p/a?x=1&y=\"2\"" }
        );

        let sparse = br#"{"hash":{"algorithm":"sha256"},"extra":[1,{"name":"not this"}]}"#;
        assert_eq!(EntryKeys::parse(sparse).unwrap().get(sparse), KeysRef::default());
        assert!(EntryKeys::parse(br#"{"name":7}"#).is_err());
    }

    #[test]
    fn an_empty_or_unmappable_document_reads_like_before() {
        let dir = std::env::temp_dir().join(format!("peipkg-index-empty-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("empty.json"), b"").unwrap();
        let empty = load(&dir.join("empty.json")).err().unwrap();
        assert!(empty.message.contains("EOF while parsing"), "{}", empty.message);
        let directory = load(&dir.join("sub")).err().unwrap();
        assert!(directory.message.contains("Is a directory"), "{}", directory.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn normalises_like_the_reference() {
        let text = r#"[{"name":"z","dependencies":[{"name":"a","constraint":"","arch":"any","extra":1}],"description":"A \"tool\" <b>&\u2028</b> é","side_effects":null,"unknown":{"x":[1]}}]"#;
        let entries = parse_entries(text).unwrap();
        let out = String::from_utf8(entries[0].clone()).unwrap();
        assert!(out.contains(r#""dependencies":[{"name":"a","arch":"any"}]"#), "{out}");
        assert!(out.contains(r#""description":"A \"tool\" <b>&\u2028</b> é""#), "{out}");
        assert!(out.contains(r#""side_effects":[]"#));
        assert!(!out.contains("unknown"));
    }

    #[test]
    fn a_package_entry_takes_the_manifest_members_and_the_file_facts() {
        let manifest = br#"{"schema_version":1,"name":"a","version":"1.0-1","architecture":"noarch","description":"d","license":"MIT","homepage":"","dependencies":[{"name":"b","constraint":">= 1"}],"optional_dependencies":[],"conflicts":[],"provides":[{"name":"c","version":""}],"replaces":[],"side_effects":[],"size_installed":5,"sd_overrides":[],"build":{"timestamp":"2026-01-01T00:00:00Z","farm_id":"f","source_ref":"git"}}"#;
        let package = NewPackage { manifest: manifest.to_vec(), size: 9, sha256: "ab".into(), url: "/p/a".into() };
        let (json, keys) = package_entry(&package).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"name":"a","version":"1.0-1","architecture":"noarch","description":"d","license":"MIT","homepage":"","dependencies":[{"name":"b","constraint":">= 1"}],"optional_dependencies":[],"conflicts":[],"provides":[{"name":"c"}],"replaces":[],"side_effects":[],"size_compressed":9,"size_installed":5,"hash":{"algorithm":"sha256","value":"ab"},"url":"/p/a","build":{"timestamp":"2026-01-01T00:00:00Z","farm_id":"f"}}"#
        );
        assert_eq!((keys.name.as_str(), keys.hash.as_str(), keys.url.as_str()), ("a", "ab", "/p/a"));
    }

    #[test]
    fn script_json_escapes_like_the_site_module() {
        let mut out = Vec::new();
        script_json("[\"</script>&\u{7f}é\u{2028}😀\"]".as_bytes(), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"["\u003c/script\u003e\u0026\u007f\u00e9\u2028\ud83d\ude00"]"#);
    }
}
