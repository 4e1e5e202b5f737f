/**
 * Archive order and the active projection (`repository.md` §5.4, §5.5), with the one version
 * comparator (`format/version.ts`, DECISIONS.md Version comparison).
 *
 * Works on entry keys only; the entries' bytes stay in the native index store. The previous
 * archive is normally sorted already, and the sort is a stable merge sort, so an incremental
 * publish costs about one comparison per entry; versions are tokenised only when two entries of
 * the same name meet, once per distinct version string.
 */

import { InputError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';
import { compareSortKeys, parseVersion, versionProblem, versionSortKey, type VersionSortKey } from '../format/version.js';
import type { IndexEntryKey } from '../native.js';

export class ArchiveError extends InputError {}

export const entryTriple = (e: Pick<IndexEntryKey, 'name' | 'version' | 'architecture'>): string => `${e.name}_${e.version}_${e.architecture}`;

/** A package that may not be published: `added[index]` repeats an archive entry, or `added[earlier]`. */
export interface Duplicate {
  index: number;
  /** Set when the repeat is within the batch itself. */
  earlier?: number;
}

/**
 * The first entry of `added` whose (name, version, architecture) is already in `existing` or
 * earlier in `added`. `existing` is an archive a publish made, so it holds no duplicates itself;
 * only entries sharing a name with a new one are keyed, which keeps this cheap on 100,000 entries.
 */
export function firstDuplicate(existing: readonly IndexEntryKey[], added: readonly IndexEntryKey[]): Duplicate | undefined {
  const key = (e: IndexEntryKey): string => `${e.name}\0${e.version}\0${e.architecture}`;
  const names = new Set(added.map((e) => e.name));
  const archived = new Set<string>();
  for (const e of existing) if (names.has(e.name)) archived.add(key(e));
  const batch = new Map<string, number>();
  for (const [index, e] of added.entries()) {
    const k = key(e);
    if (archived.has(k)) return { index };
    const earlier = batch.get(k);
    if (earlier !== undefined) return { index, earlier };
    batch.set(k, index);
  }
  return undefined;
}

/** The refusal for `duplicate`; `files` names the batch's package files, in the order of `added`. */
export function duplicateError(added: readonly IndexEntryKey[], duplicate: Duplicate, files: readonly string[]): ArchiveError {
  const triple = entryTriple(added[duplicate.index]!);
  if (duplicate.earlier !== undefined) {
    return new ArchiveError(
      `package ${triple} is in the batch twice (${files[duplicate.earlier]} and ${files[duplicate.index]}); a name+version+architecture is published once (§6.3), so remove one of them`,
    );
  }
  return new ArchiveError(
    `package ${triple} already exists in the archive (§6.3 forbids re-publishing the same name+version+architecture)`,
  );
}

class VersionKeys {
  private readonly cache = new Map<string, VersionSortKey>();

  get(e: IndexEntryKey): VersionSortKey {
    let key = this.cache.get(e.version);
    if (!key) {
      const problem = versionProblem(e.version);
      if (problem) throw new ArchiveError(`sort archive: package ${e.name}: parse version "${e.version}": ${problem}`);
      key = versionSortKey(parseVersion(e.version));
      this.cache.set(e.version, key);
    }
    return key;
  }
}

export interface Ordered {
  archive: IndexEntryKey[];
  active: IndexEntryKey[];
}

/**
 * Sorts `entries` (input order: previous archive, then new packages by file name) into archive
 * order — name ascending by bytes, version descending, ties in input order — and derives active:
 * per name, the highest version. A top-version tie across architectures is refused.
 */
export function orderArchive(entries: readonly IndexEntryKey[]): Ordered {
  const versions = new VersionKeys();
  for (const e of entries) versions.get(e); // every version must parse, old ones included
  const archive = [...entries].sort((a, b) => compareUtf8(a.name, b.name) || compareSortKeys(versions.get(b), versions.get(a)));
  const active: IndexEntryKey[] = [];
  for (let i = 0; i < archive.length; i++) {
    const top = archive[i]!;
    if (i > 0 && archive[i - 1]!.name === top.name) continue;
    active.push(top);
    for (let j = i + 1; j < archive.length && archive[j]!.name === top.name; j++) {
      const other = archive[j]!;
      if (compareSortKeys(versions.get(other), versions.get(top)) !== 0) break;
      if (other.architecture !== top.architecture) {
        throw new ArchiveError(
          `active index conflict: ${top.name} exists at version ${other.version} for both architectures "${top.architecture}" and "${other.architecture}" ` +
            '(§6.2.7 forbids duplicate names in the active index — split multi-arch packages across separate repositories)',
        );
      }
    }
  }
  return { archive, active };
}
