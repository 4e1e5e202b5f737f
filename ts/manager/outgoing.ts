/**
 * What an upload may send, and the proof that it may leave the host. The mutable part of the
 * repository (descriptor, indexes, keys, the site's root pages) is captured in a snapshot of hard
 * links while publishing is held off for a moment — every writer replaces files by rename, so the
 * linked inodes never change — and the upload then runs from the snapshot while publishing goes on.
 * Packages are immutable and only ever added, so they are read from the live repository.
 *
 * Before anything leaves: the snapshot's descriptor and indexes must verify against the keys the
 * descriptor lists (as `peipkg-repo verify --mode metadata` checks them), and every package about to
 * be sent must have the SHA-256 the signed index gives it. A flipped byte in a
 * local package stops the upload with the file's name; it never reaches the public mirror.
 */

import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { InputError } from '../errors.js';
import { sha256Files } from '../native.js';
import { entryTriple } from '../repo/archive.js';
import { filesScriptPath } from '../repo/site/site.js';
import { checkSignatures, DESCRIPTOR, KEYS_DIR, loadState, readTrustedKeys, StateLoadError } from '../repo/state.js';
import { statePathOf } from '../repo/urlTemplate.js';

/** An upload that must not happen: the local state is damaged or does not match its signatures. */
export class UploadRefused extends InputError {}

/** Directories of the state captured whole; every other directory holds immutable package files. */
const SNAPSHOT_DIRS = ['index', 'assets', KEYS_DIR];
/** Root files captured: the descriptor, its signature (and a pending one), the site's page. */
const isSnapshotRootFile = (name: string): boolean => name === DESCRIPTOR || name.startsWith(`${DESCRIPTOR}.sig`) || name === 'index.html';

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
  }
}

async function regularFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isFile() && !entry.name.includes('.tmp-')) names.push(entry.name);
  }
  return names;
}

/** Replaces `snapshotDir` with hard links to the state's mutable files. Run it with publishing held off. */
export async function takeSnapshot(repoDir: string, snapshotDir: string): Promise<void> {
  await rm(snapshotDir, { recursive: true, force: true });
  await mkdir(snapshotDir, { recursive: true });
  for (const entry of await readdir(repoDir, { withFileTypes: true })) {
    if (entry.isFile() && isSnapshotRootFile(entry.name)) await linkOrCopy(join(repoDir, entry.name), join(snapshotDir, entry.name));
  }
  for (const dir of SNAPSHOT_DIRS) {
    const files = await regularFiles(join(repoDir, dir));
    if (files.length === 0) continue;
    await mkdir(join(snapshotDir, dir));
    for (const name of files) await linkOrCopy(join(repoDir, dir, name), join(snapshotDir, dir, name));
  }
}

export interface OutgoingPackage {
  /** Relative to the state root (and to the remote's root). */
  path: string;
  sha256: string;
  /** `name_version_arch`, for messages. */
  triple: string;
  url: string;
}

export interface OutgoingState {
  dir: string;
  indexVersion: number;
  /** Every archived package the state holds itself (packages hosted elsewhere are not uploaded). */
  packages: OutgoingPackage[];
  /** Snapshot files sent before the indexes: the public keys and the site's root pages. */
  siteAndKeys: string[];
}

/** Verifies the snapshot's signatures (completing a descriptor signature a crashed publish left pending) and lists what it holds. */
export async function readSnapshot(snapshotDir: string): Promise<OutgoingState> {
  let state;
  try {
    state = await loadState(snapshotDir, { active: false, archive: true });
  } catch (error) {
    if (error instanceof StateLoadError) throw new UploadRefused(`the local repository is damaged (${error.message}); nothing was uploaded`);
    throw error;
  }
  const { keys, problems } = await readTrustedKeys(snapshotDir, state.descriptor);
  const signatures = checkSignatures(state, keys);
  const problem = problems[0] ?? signatures.problems[0];
  if (problem) throw new UploadRefused(`the local repository does not verify (${problem}); nothing was uploaded`);
  // The publish that wrote it died before its last rename; its signature verifies, so send that one.
  if (signatures.pendingDescriptorSignature) {
    await rename(signatures.pendingDescriptorSignature, join(snapshotDir, `${DESCRIPTOR}.sig`));
  }
  const packages: OutgoingPackage[] = [];
  for (const e of state.archive.entries ? await state.store.documentKeys(state.archive.entries) : []) {
    const path = statePathOf(e.url);
    if (path !== undefined) packages.push({ path, sha256: e.hash, triple: entryTriple(e), url: e.url });
  }
  const siteAndKeys = [
    ...(await regularFiles(join(snapshotDir, KEYS_DIR))).map((n) => `${KEYS_DIR}/${n}`),
    ...(await regularFiles(join(snapshotDir, 'assets'))).map((n) => `assets/${n}`),
    ...((await stat(join(snapshotDir, 'index.html')).catch(() => undefined)) ? ['index.html'] : []),
  ];
  return { dir: snapshotDir, indexVersion: Math.max(state.archive.header.indexVersion, state.active.header.indexVersion), packages, siteAndKeys };
}

/** Fails, naming the files, unless every package has the digest the signed index records for it. */
export async function checkPackages(repoDir: string, packages: readonly OutgoingPackage[]): Promise<void> {
  const results = await sha256Files(packages.map((p) => join(repoDir, p.path)));
  const bad: string[] = [];
  results.forEach((r, i) => {
    const p = packages[i]!;
    if ('error' in r) bad.push(`${p.path}: ${r.error.message}`);
    else if (r.sha256 !== p.sha256) bad.push(`${p.path}: SHA-256 ${r.sha256}, but the signed index says ${p.sha256}`);
  });
  if (bad.length === 0) return;
  const shown = bad.slice(0, 5).map((b) => `  ${b}`);
  if (bad.length > 5) shown.push(`  … and ${bad.length - 5} more`);
  throw new UploadRefused(
    `${bad.length} local package(s) do not match the signed index, so nothing was uploaded:\n${shown.join('\n')}\n` +
      'The local copy is damaged: restore it from the mirror or a backup (peipkg-repo verify --mode hashes checks the whole state).',
  );
}

/** A package's sidecars (manifest.json, files.json, the site's files.js) that exist locally. */
export async function sidecarsOf(repoDir: string, pkg: OutgoingPackage): Promise<string[]> {
  const dir = pkg.path.includes('/') ? pkg.path.slice(0, pkg.path.lastIndexOf('/')) : '';
  const candidates = ['manifest.json', 'files.json'].map((n) => (dir === '' ? n : `${dir}/${n}`));
  const script = filesScriptPath(pkg.url);
  if (script) candidates.push(script);
  const present: string[] = [];
  for (const path of candidates) if ((await stat(join(repoDir, path)).catch(() => undefined))?.isFile()) present.push(path);
  return present;
}
