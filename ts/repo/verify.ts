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

async function metadataIssues(state: LoadedState, keyProblems: string[], signatures: ReturnType<typeof checkSignatures>): Promise<string[]> {
  const issues = [...keyProblems, ...signatures.problems];
  const { active, archive } = state;
  // The walk over every entry (subset, hashes, unique names) runs in the native store.
  if (active.entries && archive.entries) issues.push(...(await state.store.checkActive(active.entries, archive.entries)));
  if (active.header.indexVersion < 1) issues.push(`active.index_version is ${active.header.indexVersion} (must be >= 1)`);
  if (archive.header.indexVersion < 1) issues.push(`archive.index_version is ${archive.header.indexVersion} (must be >= 1)`);
  return issues;
}

interface HashTarget {
  label: string;
  path: string;
  expected: string;
}

/** Every package the indexes name, once; the archive's hash wins where the two disagree. */
async function hashTargets(state: LoadedState, allPackagesDir: string | undefined, warnings: string[]): Promise<HashTarget[]> {
  const byTriple = new Map<string, IndexEntryKey>();
  for (const doc of [state.active.entries, state.archive.entries]) {
    if (doc) for (const e of await state.store.documentKeys(doc)) byTriple.set(entryTriple(e), e);
  }
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
    issues.push(...(await metadataIssues(state, problems, signatures)));
  }
  if (mode === 'hashes' || (mode === 'both' && issues.length === 0)) {
    issues.push(...(await hashIssues(await hashTargets(state, allPackagesDir, warnings))));
  } else if (mode === 'both') {
    warnings.push('skipping hash check because metadata check found issues');
  }
  return { issues, warnings };
}
