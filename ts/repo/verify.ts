/**
 * `peipkg-repo verify` (`repository.md` §9): a read-only audit. `metadata` checks key files,
 * detached signatures (a missing `.sig` fails: DECISIONS.md, Repository 6), that active is a
 * subset of archive, and unique names in active; `hashes` re-hashes every package the indexes
 * name — across all cores — where the state itself holds it, or in `--all-packages-dir`.
 */

import { join } from 'node:path';

import { InputError } from '../errors.js';
import { sha256Files, type IndexEntryKey } from '../native.js';
import { startProgress } from '../progress.js';
import { entryTriple } from './archive.js';
import { checkSignatures, loadState, readTrustedKeys, StateLoadError, type LoadedState } from './state.js';
import { statePathOf } from './urlTemplate.js';

export type VerifyMode = 'metadata' | 'hashes' | 'both';

export interface VerifyReport {
  issues: string[];
  warnings: string[];
}

/**
 * Finds active entries in the archive. Active is a projection of the archive in archive order, so
 * one forward walk finds each entry without keying 100,000 of them; an index that is out of
 * order (which the walk runs off the end of) falls back to a map.
 */
function archiveLookup(archive: readonly IndexEntryKey[]): (e: IndexEntryKey) => IndexEntryKey | undefined {
  let next = 0;
  let byTriple: Map<string, IndexEntryKey> | undefined;
  return (e) => {
    if (byTriple === undefined) {
      while (next < archive.length) {
        const a = archive[next++]!;
        if (a.name === e.name && a.version === e.version && a.architecture === e.architecture) return a;
      }
      byTriple = new Map(archive.map((a) => [entryTriple(a), a]));
    }
    return byTriple.get(entryTriple(e));
  };
}

function metadataIssues(state: LoadedState, keyProblems: string[], signatures: ReturnType<typeof checkSignatures>): string[] {
  const issues = [...keyProblems, ...signatures.problems];
  const active = state.active.entries ?? [];
  const archiveEntry = archiveLookup(state.archive.entries ?? []);
  for (const e of active) {
    const match = archiveEntry(e);
    if (!match) issues.push(`active entry ${entryTriple(e)} has no matching archive entry (§6.3.5)`);
    else if (match.hash !== e.hash) issues.push(`active entry ${entryTriple(e)} hash ${e.hash} differs from archive entry hash ${match.hash}`);
  }
  const names = new Set<string>();
  for (const e of active) {
    if (names.has(e.name)) issues.push(`active index has duplicate name "${e.name}" (§6.2.7)`);
    names.add(e.name);
  }
  if (state.active.header.indexVersion < 1) issues.push(`active.index_version is ${state.active.header.indexVersion} (must be >= 1)`);
  if (state.archive.header.indexVersion < 1) issues.push(`archive.index_version is ${state.archive.header.indexVersion} (must be >= 1)`);
  return issues;
}

interface HashTarget {
  label: string;
  path: string;
  expected: string;
}

/** Every package the indexes name, once; the archive's hash wins where the two disagree. */
function hashTargets(state: LoadedState, allPackagesDir: string | undefined, warnings: string[]): HashTarget[] {
  const byTriple = new Map<string, IndexEntryKey>();
  for (const e of state.active.entries ?? []) byTriple.set(entryTriple(e), e);
  for (const e of state.archive.entries ?? []) byTriple.set(entryTriple(e), e);
  const targets: HashTarget[] = [];
  for (const [triple, e] of [...byTriple].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const file = `${triple}.peipkg`;
    if (allPackagesDir !== undefined) {
      targets.push({ label: file, path: join(allPackagesDir, file), expected: e.hash });
      continue;
    }
    const inside = statePathOf(e.url);
    if (inside === undefined) warnings.push(`${file}: not checked: hosted outside the state at ${e.url} (give --all-packages-dir to check it)`);
    else targets.push({ label: inside, path: join(state.dir, inside), expected: e.hash });
  }
  return targets;
}

async function hashIssues(targets: HashTarget[]): Promise<string[]> {
  // The total comes from the native side, which stats the files in parallel to order them anyway.
  const bar = await startProgress('verify hashes');
  try {
    const results = await sha256Files(targets.map((t) => t.path), { progress: bar.counter });
    const issues: string[] = [];
    results.forEach((r, i) => {
      const t = targets[i]!;
      if ('error' in r) issues.push(`hash check: read ${t.label}: ${r.error.message}`);
      else if (r.sha256 !== t.expected) issues.push(`hash mismatch: ${t.label} computed ${r.sha256}, index claimed ${t.expected}`);
    });
    return issues;
  } finally {
    bar.stop();
  }
}

export async function verifyRepository(dir: string, mode: VerifyMode, allPackagesDir: string | undefined): Promise<VerifyReport> {
  let state: LoadedState;
  try {
    state = await loadState(dir, { active: true, archive: true });
  } catch (error) {
    if (error instanceof StateLoadError) throw new InputError(`load state: ${error.message}`, { cause: error });
    throw error;
  }
  const warnings: string[] = [];
  const issues: string[] = [];
  if (mode !== 'hashes') {
    const { keys, problems } = await readTrustedKeys(dir, state.descriptor);
    const signatures = checkSignatures(state, keys);
    if (signatures.pendingDescriptorSignature) {
      warnings.push(`repo.json: its signature is in ${signatures.pendingDescriptorSignature}; the next publish moves it to repo.json.sig`);
    }
    issues.push(...metadataIssues(state, problems, signatures));
  }
  if (mode === 'hashes' || (mode === 'both' && issues.length === 0)) {
    issues.push(...(await hashIssues(hashTargets(state, allPackagesDir, warnings))));
  } else if (mode === 'both') {
    warnings.push('skipping hash check because metadata check found issues');
  }
  return { issues, warnings };
}
