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

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

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

/// The bytes of the document at `path`, and their SHA-256 (what a detached signature covers).
fn read_document(path: &Path) -> Result<(Vec<u8>, [u8; 32])> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| Error::io("read", path, e))?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    Ok((bytes, sha256))
}

fn parse_error(path: &Path, e: serde_json::Error) -> Error {
    Error::at(Code::Format, path, format!("parse {}: {e}", path.display()))
}

#[derive(Default, Deserialize)]
struct HashKey {
    #[serde(default, deserialize_with = "nullable")]
    value: String,
}

/// The members of an entry that rules work from.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Keys {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable", rename = "hash")]
    hash_ref: HashKeyWrapper,
    #[serde(default, deserialize_with = "nullable")]
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct HashKeyWrapper(String);

impl<'de> Deserialize<'de> for HashKeyWrapper {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(HashKeyWrapper(HashKey::deserialize(d)?.value))
    }
}

impl Keys {
    pub fn hash(&self) -> &str {
        &self.hash_ref.0
    }
}

/// One entry: its canonical JSON bytes and its keys.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub json: Box<[u8]>,
    pub keys: Keys,
}

impl RawEntry {
    fn from_entry(entry: &Entry) -> Result<RawEntry> {
        let json = encode_entry(entry)?.into_boxed_slice();
        let keys = Keys {
            name: entry.name.clone(),
            version: entry.version.clone(),
            architecture: entry.architecture.clone(),
            hash_ref: HashKeyWrapper(entry.hash.value.clone()),
            url: entry.url.clone(),
        };
        Ok(RawEntry { json, keys })
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

pub struct Loaded {
    pub header: Header,
    pub entries: Vec<RawEntry>,
    /// SHA-256 and length of the file's bytes, as read (what a detached signature covers).
    pub sha256: [u8; 32],
    pub size: u64,
}

pub fn load(path: &Path) -> Result<Loaded> {
    let (bytes, sha256) = read_document(path)?;
    let doc: Document<Option<Vec<&RawValue>>> = serde_json::from_slice(&bytes).map_err(|e| parse_error(path, e))?;
    let (header, packages) = doc.into_parts();
    let entries = packages
        .unwrap_or_default()
        .into_iter()
        .map(|raw| {
            let keys: Keys = serde_json::from_str(raw.get()).map_err(|e| parse_error(path, e))?;
            Ok(RawEntry { json: raw.get().as_bytes().into(), keys })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Loaded { header, entries, sha256, size: bytes.len() as u64 })
}

/// The header, SHA-256 and size of a document, without keeping its entries (they are still
/// checked to be well-formed JSON).
pub fn inspect(path: &Path) -> Result<(Header, [u8; 32], u64)> {
    let (bytes, sha256) = read_document(path)?;
    let doc: Document<IgnoredAny> = serde_json::from_slice(&bytes).map_err(|e| parse_error(path, e))?;
    Ok((doc.into_parts().0, sha256, bytes.len() as u64))
}

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

/// The browse site's rows: `[name, version, architecture, description, url, size_compressed,
/// size_installed, build timestamp, active]` per entry, as JSON text.
pub fn site_rows(entries: &[&RawEntry], active: &[bool]) -> Result<String> {
    let mut rows = Vec::with_capacity(entries.len());
    for (entry, is_active) in entries.iter().zip(active) {
        let f: SiteFields =
            serde_json::from_slice(&entry.json).map_err(|e| Error::argument(format!("site rows: {e}")))?;
        rows.push(serde_json::json!([
            f.name,
            f.version,
            f.architecture,
            f.description,
            f.url,
            f.size_compressed,
            f.size_installed,
            f.build.timestamp,
            u8::from(*is_active)
        ]));
    }
    serde_json::to_string(&rows).map_err(|e| Error::argument(format!("site rows: {e}")))
}

/// Entries from JSON text (an array of entry objects), normalised to canonical bytes.
pub fn parse_entries(json: &str) -> Result<Vec<RawEntry>> {
    let entries: Vec<Entry> = serde_json::from_str(json).map_err(|e| Error::argument(format!("index entries: {e}")))?;
    entries.iter().map(RawEntry::from_entry).collect()
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

/// The canonical bytes of an index document with `entries` in the given order, newline included.
pub fn encode(header: &Header, entries: &[&RawEntry]) -> Result<Vec<u8>> {
    let head = HeaderOut {
        schema_version: header.schema_version,
        repo: &header.repo,
        kind: &header.kind,
        index_version: header.index_version,
        generated_at: &header.generated_at,
    };
    let mut out =
        escape_line_separators(serde_json::to_vec(&head).map_err(|e| Error::argument(format!("encode index: {e}")))?);
    out.reserve(entries.iter().map(|e| e.json.len() + 1).sum::<usize>() + 16);
    out.pop(); // the header object's closing brace
    out.extend_from_slice(b",\"packages\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&entry.json);
    }
    out.extend_from_slice(b"]}\n");
    Ok(out)
}

/// Canonical bytes of one entry (for cross-checks with the TypeScript encoder).
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(entry).map_err(|e| Error::argument(format!("encode entry: {e}")))?;
    Ok(escape_line_separators(json))
}

/// Writes `bytes` to a new file (it must not exist) and fsyncs it.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(bytes).map_err(|e| Error::io("write", path, e))?;
    let file = w.into_inner().map_err(|e| Error::io("write", path, e.into_error()))?;
    file.sync_all().map_err(|e| Error::io("fsync", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"{"schema_version":1,"repo":"rt","kind":"active","index_version":2,"generated_at":"2026-05-07T01:00:00Z","packages":[{"name":"hello","version":"0.1-1","architecture":"noarch","description":"Smallest legal peipkg test fixture.","license":"CC0-1.0","homepage":"https://peios.org","dependencies":[],"optional_dependencies":[],"conflicts":[],"provides":[],"replaces":[],"side_effects":[],"size_compressed":570,"size_installed":14,"hash":{"algorithm":"sha256","value":"64840dab60cebcd13387aaf7cd4a1be3ee756698077476aeeaafdaf2256c8abf"},"url":"/p/hello/0.1-1/hello_0.1-1_noarch.peipkg","build":{"timestamp":"2026-05-06T12:00:00Z","farm_id":"test-farm-1"}}]}
"#;

    #[test]
    fn the_t2_active_index_round_trips_byte_for_byte() {
        let dir = std::env::temp_dir().join(format!("peipkg-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("active.json");
        std::fs::write(&path, HELLO).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.entries[0].keys.name, "hello");
        assert_eq!(loaded.entries[0].keys.hash(), "64840dab60cebcd13387aaf7cd4a1be3ee756698077476aeeaafdaf2256c8abf");
        let out = encode(&loaded.header, &loaded.entries.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), HELLO);
        // Re-encoding the parsed entry gives the same bytes as reusing them.
        let reparsed = parse_entries(&format!("[{}]", std::str::from_utf8(&loaded.entries[0].json).unwrap())).unwrap();
        assert_eq!(reparsed[0].json, loaded.entries[0].json);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn normalises_like_the_reference() {
        let text = r#"[{"name":"z","dependencies":[{"name":"a","constraint":"","arch":"any","extra":1}],"description":"A \"tool\" <b>&\u2028</b> é","side_effects":null,"unknown":{"x":[1]}}]"#;
        let entries = parse_entries(text).unwrap();
        let out = String::from_utf8(entries[0].json.to_vec()).unwrap();
        assert!(out.contains(r#""dependencies":[{"name":"a","arch":"any"}]"#), "{out}");
        assert!(out.contains(r#""description":"A \"tool\" <b>&\u2028</b> é""#), "{out}");
        assert!(out.contains(r#""side_effects":[]"#));
        assert!(!out.contains("unknown"));
    }
}
