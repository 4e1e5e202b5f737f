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

use crate::error::{Error, Result};
use crate::index::{self, Header, Keys, Loaded, NewPackage};

/// Where an entry's canonical JSON is.
enum Source {
    /// `documents[doc][span]`.
    Loaded {
        doc: usize,
        span: Range<usize>,
    },
    Owned(Box<[u8]>),
}

struct Stored {
    source: Source,
    keys: Keys,
}

/// The documents and entries of one command, and the order of the documents it will write.
#[derive(Default)]
pub struct Store {
    documents: Vec<Vec<u8>>,
    /// The entry ids of each loaded document, in document order.
    ranges: Vec<Range<usize>>,
    entries: Vec<Stored>,
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

fn triple(k: &Keys) -> (&String, &String, &String) {
    (&k.name, &k.version, &k.architecture)
}

fn triple_text(k: &Keys) -> String {
    format!("{}_{}_{}", k.name, k.version, k.architecture)
}

impl Store {
    /// Keeps a loaded document; its entries get the next ids.
    pub fn add_document(&mut self, loaded: Loaded) -> DocumentIds {
        let doc = self.documents.len();
        let first = self.entries.len();
        let count = loaded.spans.len();
        self.entries.extend(
            loaded
                .spans
                .into_iter()
                .zip(loaded.keys)
                .map(|(span, keys)| Stored { source: Source::Loaded { doc, span }, keys }),
        );
        self.documents.push(loaded.bytes);
        self.ranges.push(first..first + count);
        DocumentIds { doc, first, count }
    }

    /// Adds the index entries of new packages; returns the id of the first.
    pub fn add_packages(&mut self, packages: &[NewPackage]) -> Result<usize> {
        let made = packages.iter().map(index::package_entry).collect::<Result<Vec<_>>>()?;
        let first = self.entries.len();
        self.entries.extend(
            made.into_iter().map(|(json, keys)| Stored { source: Source::Owned(json.into_boxed_slice()), keys }),
        );
        Ok(first)
    }

    fn entry(&self, id: u32) -> Result<&Stored> {
        self.entries.get(id as usize).ok_or_else(|| Error::argument(format!("no index entry {id}")))
    }

    /// An entry's canonical JSON.
    pub fn json(&self, id: u32) -> Result<&[u8]> {
        Ok(self.bytes_of(self.entry(id)?))
    }

    fn bytes_of<'a>(&'a self, e: &'a Stored) -> &'a [u8] {
        match &e.source {
            Source::Loaded { doc, span } => &self.documents[*doc][span.clone()],
            Source::Owned(bytes) => bytes,
        }
    }

    pub fn keys(&self, id: u32) -> Result<&Keys> {
        Ok(&self.entry(id)?.keys)
    }

    fn range(&self, doc: usize) -> Result<Range<usize>> {
        self.ranges.get(doc).cloned().ok_or_else(|| Error::argument(format!("no index document {doc}")))
    }

    /// The ids of the entries of document `doc`, in its order.
    pub fn document_ids(&self, doc: usize) -> Result<Range<usize>> {
        self.range(doc)
    }

    /// The entries of `doc` named one of `names`, in document order.
    pub fn named(&self, doc: usize, names: &[String]) -> Result<Vec<u32>> {
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        Ok(self
            .range(doc)?
            .filter(|&i| wanted.contains(self.entries[i].keys.name.as_str()))
            .map(|i| i as u32)
            .collect())
    }

    /// For each of `urls`, the first entry of `doc` with that URL.
    pub fn url_holders(&self, doc: usize, urls: &[String]) -> Result<Vec<Option<u32>>> {
        let mut holders: HashMap<&str, Option<u32>> = urls.iter().map(|u| (u.as_str(), None)).collect();
        for i in self.range(doc)? {
            if let Some(slot @ None) = holders.get_mut(self.entries[i].keys.url.as_str()) {
                *slot = Some(i as u32);
            }
        }
        Ok(urls.iter().map(|u| holders[u.as_str()]).collect())
    }

    /// `verify --mode metadata`'s walk over every entry (§9.3): each active entry has an archive
    /// entry of the same (name, version, architecture) and hash (§6.3.5), and no name is active
    /// twice (§6.2.7). Problems are worded as `peipkg-repo verify` prints them.
    pub fn check_active(&self, active_doc: usize, archive_doc: usize) -> Result<Vec<String>> {
        let active = self.range(active_doc)?;
        let archive = self.range(archive_doc)?;
        let mut problems = Vec::new();
        // Active is a projection of the archive in archive order, so one forward walk finds each
        // entry; an index out of that order (the walk runs off the end) falls back to a map.
        let mut next = archive.start;
        let mut by_triple: Option<HashMap<(&String, &String, &String), &Keys>> = None;
        for a in active.clone() {
            let e = &self.entries[a].keys;
            let found = match &by_triple {
                None => loop {
                    if next >= archive.end {
                        let map = by_triple.insert(
                            archive.clone().map(|i| (triple(&self.entries[i].keys), &self.entries[i].keys)).collect(),
                        );
                        break map.get(&triple(e)).copied();
                    }
                    let candidate = &self.entries[next].keys;
                    next += 1;
                    if triple(candidate) == triple(e) {
                        break Some(candidate);
                    }
                },
                Some(map) => map.get(&triple(e)).copied(),
            };
            match found {
                None => {
                    problems.push(format!("active entry {} has no matching archive entry (§6.3.5)", triple_text(e)))
                }
                Some(m) if m.hash() != e.hash() => problems.push(format!(
                    "active entry {} hash {} differs from archive entry hash {}",
                    triple_text(e),
                    e.hash(),
                    m.hash()
                )),
                Some(_) => {}
            }
        }
        let mut names = HashSet::new();
        for a in active {
            let name = self.entries[a].keys.name.as_str();
            if !names.insert(name) {
                problems.push(format!("active index has duplicate name \"{name}\" (§6.2.7)"));
            }
        }
        Ok(problems)
    }

    /// Sets the order of the documents to write, as TypeScript computed it whole.
    pub fn arrange(&mut self, archive: Vec<u32>, active: Vec<u32>) -> Result<()> {
        for &id in archive.iter().chain(&active) {
            self.entry(id)?;
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
        let previous = match doc {
            Some(doc) => self.range(doc)?,
            None => 0..0,
        };
        for g in &groups {
            for &id in &g.ids {
                if self.entry(id)?.keys.name != g.name {
                    return Err(Error::argument(format!("group {}: entry {id} is named otherwise", g.name)));
                }
            }
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        if groups.windows(2).any(|w| w[0].name == w[1].name) {
            return Err(Error::argument("two groups share a name"));
        }
        let mut archive = Vec::with_capacity(previous.len() + groups.iter().map(|g| g.ids.len()).sum::<usize>());
        let mut active = Vec::new();
        let mut pending = groups.iter().peekable();
        let mut last: Option<&str> = None;
        for i in previous {
            let name = self.entries[i].keys.name.as_str();
            if let Some(prev) = last {
                if name < prev {
                    return Ok(false);
                }
                if name == prev {
                    if pending_replaced(&groups, name) {
                        continue;
                    }
                    archive.push(i as u32);
                    continue;
                }
            }
            last = Some(name);
            while let Some(g) = pending.next_if(|g| g.name.as_str() <= name) {
                push_group(g, &mut archive, &mut active);
            }
            if pending_replaced(&groups, name) {
                continue;
            }
            archive.push(i as u32);
            active.push(i as u32);
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

    /// The canonical bytes of the document `kind` as arranged.
    pub fn encode(&self, header: &Header, kind: Kind) -> Result<Vec<u8>> {
        let ids = self.order(kind);
        index::encode(header, ids.iter().map(|&id| self.bytes_of(&self.entries[id as usize])))
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

    /// The browse site's `assets/packages.js` for the arranged archive: a script that hands the
    /// page every archived entry's row, in archive order (read by `ts/repo/site/clientApp.ts`).
    pub fn site_script(&self, index_version: i64, generated_at: &str) -> Result<Vec<u8>> {
        let active: HashSet<u32> = self.active.iter().copied().collect();
        let rows = self.site_rows(&self.archive, &active)?;
        let head = serde_json::json!({ "indexVersion": index_version, "generatedAt": generated_at, "columns": index::SITE_COLUMNS });
        let head = serde_json::to_vec(&head).map_err(|e| Error::argument(format!("site script: {e}")))?;
        let mut out = Vec::with_capacity(rows.len() + 512);
        out.extend_from_slice(
            b"/* peipkg browse data: every archived entry, in archive order. Unsigned; the client checks the indexes. */\n",
        );
        out.extend_from_slice(b"if (window.peipkgSite) window.peipkgSite.packages(");
        index::script_json(&head[..head.len() - 1], &mut out);
        out.extend_from_slice(b",\"rows\":");
        index::script_json(&rows, &mut out);
        out.extend_from_slice(b"});\n");
        Ok(out)
    }

    /// Writes the document `kind` to a new file at `path` (fsynced); its SHA-256 and size.
    pub fn write(&self, path: &Path, header: &Header, kind: Kind) -> Result<([u8; 32], usize)> {
        let bytes = self.encode(header, kind)?;
        index::write_new(path, &bytes)?;
        Ok((crate::hash::sha256(&bytes), bytes.len()))
    }
}

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
        let dir = std::env::temp_dir().join(format!("peipkg-store-{}-{}", std::process::id(), archive.len()));
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
