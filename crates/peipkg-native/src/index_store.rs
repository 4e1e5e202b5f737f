//! The repository indexes a command works on, held in native memory (`repository.md` §5–§9): the
//! documents it loaded, kept as their bytes, the entries of new packages, and the order a publish
//! writes them in. One pass per command: documents are read and parsed once, the checks that walk
//! every entry run here, and the new documents and the browse site's `packages.js` are encoded from
//! here. TypeScript receives results and problems, and the keys of the few entries a rule needs.
//!
//! Entries are addressed by id (their position in the store). A loaded document's entries are
//! written back verbatim: callers only build on documents whose signature verified, and every
//! producer that holds a repository key writes entries canonically (`index.rs`).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use crate::durable::NewFile;
use crate::error::{Error, Result};
use crate::index::{self, Header, Keys, KeysRef, Loaded, NewPackage};

/// Entries of new packages, added together.
struct Batch {
    entries: Vec<(Box<[u8]>, Keys)>,
}

/// What a run of consecutive ids holds.
enum Part {
    Document(Loaded),
    New(Batch),
}

impl Part {
    fn len(&self) -> usize {
        match self {
            Part::Document(d) => d.len(),
            Part::New(b) => b.entries.len(),
        }
    }

    fn json(&self, i: usize) -> &[u8] {
        match self {
            Part::Document(d) => d.json(i),
            Part::New(b) => &b.entries[i].0,
        }
    }

    fn keys(&self, i: usize) -> KeysRef<'_> {
        match self {
            Part::Document(d) => d.entry_keys(i),
            Part::New(b) => b.entries[i].1.view(),
        }
    }
}

/// The documents and entries of one command, and the order of the documents it will write.
#[derive(Default)]
pub struct Store {
    /// Each part with the id of its first entry; ids are given out in order, so `first` ascends.
    parts: Vec<(usize, Part)>,
    /// The part of each loaded document, by document number.
    documents: Vec<usize>,
    archive: Vec<u32>,
    active: Vec<u32>,
}

/// Which written document: `active.json` or `archive.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Active,
    Archive,
}

/// A loaded document as the store knows it: its number and the ids of its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentIds {
    pub doc: usize,
    pub first: usize,
    pub count: usize,
}

/// A run of entries sharing a name, in the order TypeScript settled for them (`repo/archive.ts`).
pub struct Group {
    pub name: String,
    pub ids: Vec<u32>,
}

impl Store {
    fn next_id(&self) -> usize {
        self.parts.last().map_or(0, |(first, part)| first + part.len())
    }

    /// Keeps a loaded document; its entries get the next ids.
    pub fn add_document(&mut self, loaded: Loaded) -> DocumentIds {
        let (doc, first, count) = (self.documents.len(), self.next_id(), loaded.len());
        self.documents.push(self.parts.len());
        self.parts.push((first, Part::Document(loaded)));
        DocumentIds { doc, first, count }
    }

    /// Adds the index entries of new packages; returns the id of the first.
    pub fn add_packages(&mut self, packages: &[NewPackage]) -> Result<usize> {
        let entries = packages
            .iter()
            .map(|p| index::package_entry(p).map(|(json, keys)| (json.into_boxed_slice(), keys)))
            .collect::<Result<Vec<_>>>()?;
        let first = self.next_id();
        self.parts.push((first, Part::New(Batch { entries })));
        Ok(first)
    }

    fn locate(&self, id: u32) -> Result<(&Part, usize)> {
        let id = id as usize;
        let at = self.parts.partition_point(|(first, _)| *first <= id);
        match at.checked_sub(1).map(|i| &self.parts[i]) {
            Some((first, part)) if id - first < part.len() => Ok((part, id - first)),
            _ => Err(Error::argument(format!("no index entry {id}"))),
        }
    }

    /// An entry's canonical JSON.
    pub fn json(&self, id: u32) -> Result<&[u8]> {
        let (part, i) = self.locate(id)?;
        Ok(part.json(i))
    }

    pub fn keys(&self, id: u32) -> Result<KeysRef<'_>> {
        let (part, i) = self.locate(id)?;
        Ok(part.keys(i))
    }

    /// The loaded document number `doc` and the id of its first entry.
    fn document(&self, doc: usize) -> Result<(usize, &Loaded)> {
        match self.documents.get(doc).map(|&p| &self.parts[p]) {
            Some((first, Part::Document(d))) => Ok((*first, d)),
            _ => Err(Error::argument(format!("no index document {doc}"))),
        }
    }

    /// The ids of the entries of document `doc`, in its order.
    pub fn document_ids(&self, doc: usize) -> Result<Range<usize>> {
        let (first, d) = self.document(doc)?;
        Ok(first..first + d.len())
    }

    /// The entries of `doc` named one of `names`, in document order.
    pub fn named(&self, doc: usize, names: &[String]) -> Result<Vec<u32>> {
        let (first, d) = self.document(doc)?;
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        Ok((0..d.len()).filter(|&i| wanted.contains(d.entry_keys(i).name)).map(|i| (first + i) as u32).collect())
    }

    /// For each of `urls`, the first entry of `doc` with that URL.
    pub fn url_holders(&self, doc: usize, urls: &[String]) -> Result<Vec<Option<u32>>> {
        let (first, d) = self.document(doc)?;
        let mut holders: HashMap<&str, Option<u32>> = urls.iter().map(|u| (u.as_str(), None)).collect();
        for i in 0..d.len() {
            if let Some(slot @ None) = holders.get_mut(d.entry_keys(i).url) {
                *slot = Some((first + i) as u32);
            }
        }
        Ok(urls.iter().map(|u| holders[u.as_str()]).collect())
    }

    /// `verify --mode metadata`'s walk over every entry (§9.3): each active entry has an archive
    /// entry of the same (name, version, architecture) and hash (§6.3.5), and no name is active
    /// twice (§6.2.7). Problems are worded as `peipkg-repo verify` prints them.
    pub fn check_active(&self, active_doc: usize, archive_doc: usize) -> Result<Vec<String>> {
        let (_, active) = self.document(active_doc)?;
        let (_, archive) = self.document(archive_doc)?;
        let mut problems = Vec::new();
        // Active is a projection of the archive in archive order, so one forward walk finds each
        // entry; an index out of that order (the walk runs off the end) falls back to a map.
        let mut next = 0;
        let mut by_triple: Option<HashMap<(&str, &str, &str), KeysRef>> = None;
        for a in 0..active.len() {
            let e = active.entry_keys(a);
            let found = match &by_triple {
                None => loop {
                    if next >= archive.len() {
                        let map = by_triple.insert(
                            (0..archive.len()).map(|i| archive.entry_keys(i)).map(|k| (k.triple(), k)).collect(),
                        );
                        break map.get(&e.triple()).copied();
                    }
                    let candidate = archive.entry_keys(next);
                    next += 1;
                    if candidate.triple() == e.triple() {
                        break Some(candidate);
                    }
                },
                Some(map) => map.get(&e.triple()).copied(),
            };
            match found {
                None => {
                    problems.push(format!("active entry {} has no matching archive entry (§6.3.5)", e.triple_text()))
                }
                Some(m) if m.hash != e.hash => problems.push(format!(
                    "active entry {} hash {} differs from archive entry hash {}",
                    e.triple_text(),
                    e.hash,
                    m.hash
                )),
                Some(_) => {}
            }
        }
        let mut names = HashSet::new();
        for a in 0..active.len() {
            let name = active.entry_keys(a).name;
            if !names.insert(name) {
                problems.push(format!("active index has duplicate name \"{name}\" (§6.2.7)"));
            }
        }
        Ok(problems)
    }

    /// Sets the order of the documents to write, as TypeScript computed it whole.
    pub fn arrange(&mut self, archive: Vec<u32>, active: Vec<u32>) -> Result<()> {
        for &id in archive.iter().chain(&active) {
            self.locate(id)?;
        }
        self.archive = archive;
        self.active = active;
        Ok(())
    }

    /// Sets the order of the documents to write from the archive `doc` and `groups`: each group
    /// replaces the entries of its name in the archive, or goes where its name sorts (by bytes)
    /// among the archive's names. Active is the first entry of each name. Returns false, arranging
    /// nothing, when the archive's names are not in byte order: then the caller orders everything.
    pub fn arrange_merged(&mut self, doc: Option<usize>, mut groups: Vec<Group>) -> Result<bool> {
        for g in &groups {
            for &id in &g.ids {
                if self.keys(id)?.name != g.name {
                    return Err(Error::argument(format!("group {}: entry {id} is named otherwise", g.name)));
                }
            }
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        if groups.windows(2).any(|w| w[0].name == w[1].name) {
            return Err(Error::argument("two groups share a name"));
        }
        let previous = match doc {
            Some(doc) => Some(self.document(doc)?),
            None => None,
        };
        let count = previous.map_or(0, |(_, d)| d.len());
        let mut archive = Vec::with_capacity(count + groups.iter().map(|g| g.ids.len()).sum::<usize>());
        let mut active = Vec::new();
        let mut pending = groups.iter().peekable();
        let mut last: Option<&str> = None;
        if let Some((first, d)) = previous {
            for i in 0..d.len() {
                let id = (first + i) as u32;
                let name = d.entry_keys(i).name;
                if let Some(prev) = last {
                    if name < prev {
                        return Ok(false);
                    }
                    if name == prev {
                        if !pending_replaced(&groups, name) {
                            archive.push(id);
                        }
                        continue;
                    }
                }
                last = Some(name);
                while let Some(g) = pending.next_if(|g| g.name.as_str() <= name) {
                    push_group(g, &mut archive, &mut active);
                }
                if !pending_replaced(&groups, name) {
                    archive.push(id);
                    active.push(id);
                }
            }
        }
        for g in pending {
            push_group(g, &mut archive, &mut active);
        }
        self.archive = archive;
        self.active = active;
        Ok(true)
    }

    /// The ids of a written document, in order.
    pub fn order(&self, kind: Kind) -> &[u32] {
        match kind {
            Kind::Active => &self.active,
            Kind::Archive => &self.archive,
        }
    }

    /// The entries of the document `kind` as arranged, in order.
    fn arranged(&self, kind: Kind) -> Result<Vec<&[u8]>> {
        self.order(kind).iter().map(|&id| self.json(id)).collect()
    }

    /// The canonical bytes of the document `kind` as arranged.
    pub fn encode(&self, header: &Header, kind: Kind) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        index::encode_to(&mut out, header, &self.arranged(kind)?)
            .map_err(|e| Error::argument(format!("encode index: {e}")))?;
        Ok(out)
    }

    /// The browse site's rows (`index::SITE_COLUMNS`) of `ids` as a JSON array, each marked active
    /// when it is in `active`.
    pub fn site_rows(&self, ids: &[u32], active: &HashSet<u32>) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(ids.len() * 200 + 2);
        out.push(b'[');
        for (n, &id) in ids.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            index::site_row(self.json(id)?, active.contains(&id), &mut out)?;
        }
        out.push(b']');
        Ok(out)
    }

    /// Writes the browse site's `assets/packages.js` for the arranged archive to a new file at
    /// `path` (fsynced): a script that hands the page every archived entry's row, in archive order
    /// (read by `ts/repo/site/clientApp.ts`). Rows are made across the machine's cores in blocks
    /// and streamed out, so no buffer grows with the archive.
    pub fn write_site_script(&self, path: &Path, index_version: i64, generated_at: &str) -> Result<()> {
        let active: HashSet<u32> = self.active.iter().copied().collect();
        let head = serde_json::json!({ "indexVersion": index_version, "generatedAt": generated_at, "columns": index::SITE_COLUMNS });
        let head = serde_json::to_vec(&head).map_err(|e| Error::argument(format!("site script: {e}")))?;
        let mut out = NewFile::create(path)?;
        let mut text = Vec::with_capacity(1 << 16);
        text.extend_from_slice(
            b"/* peipkg browse data: every archived entry, in archive order. Unsigned; the client checks the indexes. */\n",
        );
        text.extend_from_slice(b"if (window.peipkgSite) window.peipkgSite.packages(");
        index::script_json(&head[..head.len() - 1], &mut text);
        text.extend_from_slice(b",\"rows\":[");
        out.write(&text)?;
        let row_text = |ids: &[u32], offset: usize, buf: &mut Vec<u8>, scratch: &mut Vec<u8>| -> Result<()> {
            buf.clear();
            for (n, &id) in ids.iter().enumerate() {
                scratch.clear();
                if offset + n > 0 {
                    scratch.push(b',');
                }
                index::site_row(self.json(id)?, active.contains(&id), scratch)?;
                index::script_json(scratch, buf);
            }
            Ok(())
        };
        let threads = crate::hash::available_threads().clamp(1, 8);
        let mut buffers: Vec<(Vec<u8>, Vec<u8>)> = (0..threads).map(|_| (Vec::new(), Vec::new())).collect();
        for (b, block) in self.archive.chunks(SITE_BLOCK * threads).enumerate() {
            let base = b * SITE_BLOCK * threads;
            std::thread::scope(|s| {
                let work: Vec<_> = block
                    .chunks(SITE_BLOCK)
                    .zip(buffers.iter_mut())
                    .enumerate()
                    .map(|(t, (ids, (buf, scratch)))| {
                        s.spawn(move || row_text(ids, base + t * SITE_BLOCK, buf, scratch))
                    })
                    .collect();
                work.into_iter()
                    .try_for_each(|w| w.join().unwrap_or_else(|_| Err(Error::argument("site rows: a thread panicked"))))
            })?;
            for (buf, _) in buffers.iter().take(block.len().div_ceil(SITE_BLOCK)) {
                out.write(buf)?;
            }
        }
        out.write(b"]});\n")?;
        out.finish()?;
        Ok(())
    }

    /// Writes the document `kind` to a new file at `path` (fsynced), hashing it as it goes; its
    /// SHA-256 and size.
    pub fn write(&self, path: &Path, header: &Header, kind: Kind) -> Result<([u8; 32], usize)> {
        let mut out = NewFile::create(path)?;
        index::encode_to(&mut out, header, &self.arranged(kind)?).map_err(|e| out.error(e))?;
        out.finish()
    }
}

/// Entries per thread and block when making site rows: big enough to keep threads busy, small
/// enough that the buffers stay a few megabytes.
const SITE_BLOCK: usize = 4096;

fn pending_replaced(groups: &[Group], name: &str) -> bool {
    groups.binary_search_by(|g| g.name.as_str().cmp(name)).is_ok()
}

fn push_group(g: &Group, archive: &mut Vec<u32>, active: &mut Vec<u32>) {
    archive.extend_from_slice(&g.ids);
    if let Some(&top) = g.ids.first() {
        active.push(top);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str) -> String {
        format!(
            r#"{{"name":"{name}","version":"{version}","architecture":"noarch","hash":{{"algorithm":"sha256","value":"h-{name}-{version}"}},"url":"/p/{name}/{version}"}}"#
        )
    }

    fn add(store: &mut Store, packages: &[(&str, &str)]) -> u32 {
        let packages: Vec<NewPackage> = packages
            .iter()
            .map(|(name, version)| NewPackage {
                manifest: format!(r#"{{"name":"{name}","version":"{version}","architecture":"noarch"}}"#).into_bytes(),
                size: 1,
                sha256: format!("h-{name}-{version}"),
                url: format!("/p/{name}/{version}"),
            })
            .collect();
        store.add_packages(&packages).unwrap() as u32
    }

    fn store_with(archive: &[(&str, &str)]) -> Store {
        let mut store = Store::default();
        let json = format!("[{}]", archive.iter().map(|(n, v)| entry(n, v)).collect::<Vec<_>>().join(","));
        let bytes = format!(r#"{{"schema_version":1,"packages":{json}}}"#);
        // Tests run in parallel: each store gets a directory of its own.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("peipkg-store-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("archive.json");
        std::fs::write(&path, bytes).unwrap();
        store.add_document(index::load(&path).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        store
    }

    fn names(store: &Store, kind: Kind) -> Vec<String> {
        store
            .order(kind)
            .iter()
            .map(|&id| format!("{}@{}", store.keys(id).unwrap().name, store.keys(id).unwrap().version))
            .collect()
    }

    #[test]
    fn a_merge_replaces_touched_names_and_inserts_new_ones_in_byte_order() {
        let mut store = store_with(&[("b", "2-1"), ("b", "1-1"), ("d", "1-1")]);
        let first = add(&mut store, &[("a", "1-1"), ("b", "3-1")]);
        let groups =
            vec![Group { name: "b".into(), ids: vec![first + 1, 0, 1] }, Group { name: "a".into(), ids: vec![first] }];
        assert!(store.arrange_merged(Some(0), groups).unwrap());
        assert_eq!(names(&store, Kind::Archive), ["a@1-1", "b@3-1", "b@2-1", "b@1-1", "d@1-1"]);
        assert_eq!(names(&store, Kind::Active), ["a@1-1", "b@3-1", "d@1-1"]);
    }

    #[test]
    fn a_merge_appends_names_after_the_last_and_refuses_an_unsorted_archive() {
        let mut store = store_with(&[("a", "1-1"), ("c", "1-1")]);
        let first = add(&mut store, &[("z", "1-1")]);
        assert!(store.arrange_merged(Some(0), vec![Group { name: "z".into(), ids: vec![first] }]).unwrap());
        assert_eq!(names(&store, Kind::Archive), ["a@1-1", "c@1-1", "z@1-1"]);

        let mut unsorted = store_with(&[("c", "1-1"), ("a", "1-1")]);
        assert!(!unsorted.arrange_merged(Some(0), vec![]).unwrap());
    }

    #[test]
    fn streamed_documents_match_the_documents_made_whole() {
        // More entries than one block of site rows per thread, so rows cross block boundaries.
        let count = SITE_BLOCK * 2 * crate::hash::available_threads().clamp(1, 8) + 17;
        let names: Vec<(String, String)> = (0..count).map(|i| (format!("p{i:06}"), format!("1.{}-1", i % 3))).collect();
        let refs: Vec<(&str, &str)> = names.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let mut store = store_with(&refs);
        let first = add(&mut store, &[("p000001", "9-1"), ("\u{e9}<z>", "1-1")]);
        let groups = vec![
            Group { name: "p000001".into(), ids: vec![first, 1] },
            Group { name: "\u{e9}<z>".into(), ids: vec![first + 1] },
        ];
        assert!(store.arrange_merged(Some(0), groups).unwrap());
        let dir = std::env::temp_dir().join(format!("peipkg-store-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let header = Header {
            schema_version: 1,
            repo: "r".into(),
            kind: "archive".into(),
            index_version: 2,
            generated_at: "t".into(),
        };
        let (sha256, size) = store.write(&dir.join("archive.json"), &header, Kind::Archive).unwrap();
        let written = std::fs::read(dir.join("archive.json")).unwrap();
        assert_eq!(written, store.encode(&header, Kind::Archive).unwrap());
        assert_eq!((sha256, size), (crate::hash::sha256(&written), written.len()));

        store.write_site_script(&dir.join("packages.js"), 2, "t").unwrap();
        let script = String::from_utf8(std::fs::read(dir.join("packages.js")).unwrap()).unwrap();
        let active: HashSet<u32> = store.order(Kind::Active).iter().copied().collect();
        let mut rows = Vec::new();
        index::script_json(&store.site_rows(store.order(Kind::Archive), &active).unwrap(), &mut rows);
        let rows = String::from_utf8(rows).unwrap();
        assert!(script.ends_with(&format!(",\"rows\":{rows}}});\n")), "rows differ");
        assert!(script.contains(r"\u00e9\u003cz\u003e"), "escaped for a script");
        assert_eq!(script.matches("\"p000001\"").count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn active_must_be_a_subset_of_the_archive_with_unique_names() {
        let mut store = store_with(&[("a", "2-1"), ("a", "1-1"), ("b", "1-1")]);
        let bytes = format!(
            r#"{{"packages":[{},{},{}]}}"#,
            entry("a", "2-1"),
            entry("b", "9-1"),
            entry("a", "1-1").replace("h-a-1-1", "other")
        );
        let dir = std::env::temp_dir().join(format!("peipkg-store-active-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("active.json"), bytes).unwrap();
        let active = store.add_document(index::load(&dir.join("active.json")).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            store.check_active(active.doc, 0).unwrap(),
            [
                "active entry b_9-1_noarch has no matching archive entry (§6.3.5)",
                "active entry a_1-1_noarch hash other differs from archive entry hash h-a-1-1",
                "active index has duplicate name \"a\" (§6.2.7)",
            ]
        );
    }
}
