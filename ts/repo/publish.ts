/**
 * `peipkg-repo publish` (`repository.md` §8.3–8.8, DECISIONS.md Repository): adds packages to a
 * state, or rebuilds it from every package ever published, exclusively and crash-safely.
 *
 * Order: lock; finish or remove what an interrupted writer left; load the previous state and
 * verify its signatures; check the signing key and the clock; verify every new package; order the
 * archive and derive active; then write — packages and sidecars first, the browse site, the two
 * indexes swapped in as one, the descriptor only if it changed. Entries already published are
 * never read again: their bytes stay in the native index store and are written back verbatim.
 */

import { mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

import { pathExists } from '../fs.js';
import { environmentError, InputError, InternalError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';
import { verifyPackage, type VerifiedPackage } from '../format/verify.js';
import { DirLock, fsyncPath, sha256, sha256File, signingKeyInfo, type IndexEntryKey, type IndexGroup, type PackageFacts, type SigningKey } from '../native.js';
import { duplicateError, entryTriple, firstDuplicate, orderArchive } from './archive.js';
import { encodeDescriptor } from './descriptor.js';
import { detachedSignature } from './signature.js';
import { filesScript, filesScriptPath, SITE_PACKAGES, siteFiles } from './site/site.js';
import { checkSignatures, KEYS_DIR, loadState, readTrustedKeys, StateLoadError, type LoadedState } from './state.js';
import { DEFAULT_URL_TEMPLATE, renderUrl, statePathOf, statePathProblem } from './urlTemplate.js';
import { ensureFile, removeLeftovers, Staging, swapInIndexes, writeDescriptor, writeIndexes } from './write.js';

export interface PublishRequest {
  inDir: string;
  /** New packages; ignored with `rebuild`. */
  newDir: string | undefined;
  rebuild: boolean;
  allPackagesDir: string | undefined;
  signingKey: SigningKey;
  timestamp: string;
  outDir: string;
  urlTemplate: string;
  requireSigned: boolean;
  lockTimeoutMs: number;
  warn: (message: string) => void;
}

export interface PublishResult {
  indexVersion: number;
  /** `<name>_<version>_<arch>.peipkg` of each added entry, sorted by bytes. */
  added: string[];
}

const prefixed = (error: unknown): unknown =>
  error instanceof StateLoadError ? new InputError(`load previous state: ${error.message}`, { cause: error }) : error;

/** What a failed write before the indexes are swapped in leaves: the staging is removed. */
const UNCHANGED = 'nothing was published, the state is as it was';

/**
 * Runs the write steps of a publish into `outDir`. A full disk, a read-only mount or a failing device
 * there is the machine's problem, not a bug: it is reported with the step's contract prefix (§8.10),
 * what the failure left, and advice.
 */
function writeStep(outDir: string) {
  return async <T>(what: string, work: () => Promise<T>, left: () => string = () => UNCHANGED): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      throw environmentError(error, { what, left: left(), on: outDir }) ?? error;
    }
  };
}

/** What a failed write after the indexes are swapped in leaves. */
const SWAPPED = 'the new indexes are already in place; run `peipkg-repo verify` on the state once this is fixed';

interface NewPackage {
  file: string;
  path: string;
  verified: VerifiedPackage;
  size: number;
  sha256: string;
}

/**
 * `*.peipkg` directly in `dir`, by byte order of name (symlinks followed). Anything else with that
 * name (a directory, a FIFO, a dangling symlink) is refused: skipping it would publish a batch
 * without a package the caller meant to include.
 */
async function listPackages(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new InputError(`read ${dir}: ${(error as Error).message}`);
  }
  const files = names.filter((n) => n.endsWith('.peipkg')).sort(compareUtf8);
  for (const name of files) {
    const path = join(dir, name);
    const kind = await stat(path).then(
      (s) => (s.isFile() ? undefined : s.isDirectory() ? 'a directory' : s.isFIFO() ? 'a FIFO' : s.isSocket() ? 'a socket' : 'a device'),
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return 'a dangling symlink';
        throw new InputError(`read ${path}: ${e.message}`);
      },
    );
    if (kind !== undefined) throw new InputError(`${path} is ${kind}, not a package file; move it out of ${dir} (nothing was published)`);
  }
  return files;
}

/** Runs `work` over `items` with at most `limit` at a time, keeping the order of results. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  });
  await Promise.all(workers);
  return results;
}

async function readNewPackages(dir: string, trusted: ReadonlyMap<string, Uint8Array>, request: PublishRequest): Promise<NewPackage[]> {
  const files = await listPackages(dir);
  return mapLimited(files, Math.max(2, availableParallelism()), async (file) => {
    const path = join(dir, file);
    const verified = await verifyPackage(path, { trustedKeys: trusted, requireSigned: request.requireSigned });
    if (verified.signature.state === 'unsigned') {
      request.warn(`${path}: unsigned package accepted (publish --require-signed refuses unsigned packages)`);
    }
    const digest = await sha256File(path);
    return { file, path, verified, size: digest.size, sha256: digest.sha256 };
  });
}

/**
 * Runs `foreground` while `background` runs, then gives `background`'s result. When `foreground`
 * fails, waits for `background` to settle and `discard`s what it made before rethrowing, so that
 * nothing is still writing once the caller cleans up and unlocks.
 */
async function meanwhile<T>(background: Promise<T>, foreground: () => Promise<void>, discard: (made: T) => Promise<unknown>): Promise<T> {
  // Handled from the start: a failure while `foreground` runs is reported through the await below.
  background.catch(() => undefined);
  try {
    await foreground();
  } catch (error) {
    await background.then(discard, () => undefined);
    throw error;
  }
  return background;
}

/**
 * Both results, or the first failure once both have settled, having `discard`ed the second's
 * result when only it succeeded: neither writer is still running, and nothing it made is left.
 */
async function bothOrNeither<A, B>(first: Promise<A>, second: Promise<B>, discard: (made: B) => Promise<unknown>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'fulfilled' && b.status === 'fulfilled') return [a.value, b.value];
  if (b.status === 'fulfilled') await discard(b.value);
  throw a.status === 'rejected' ? a.reason : (b as PromiseRejectedResult).reason;
}

/** Locks `in` and, when different, `out` (in that order), waiting up to the timeout for each. */
async function lockDirs(dirs: string[], timeoutMs: number): Promise<DirLock[]> {
  const locks: DirLock[] = [];
  try {
    for (const dir of dirs) locks.push(await DirLock.acquireWithin(dir, timeoutMs));
  } catch (error) {
    locks.forEach((l) => l.release());
    throw new InputError(`${(error as Error).message}: another publish is running there; try again when it ends (waited ${timeoutMs / 1000}s)`);
  }
  return locks;
}

function checkClock(state: LoadedState, timestamp: string): void {
  const next = Date.parse(timestamp);
  for (const doc of [state.active, state.archive]) {
    const previous = Date.parse(doc.header.generatedAt);
    if (!Number.isNaN(previous) && next < previous) {
      throw new InputError(
        `--timestamp ${timestamp} is earlier than the state's generated_at ${doc.header.generatedAt}; ` +
          'clients refuse an index older than the last one they saw (PSD-009 §6.2.3)',
      );
    }
  }
}

export async function publish(request: PublishRequest): Promise<PublishResult> {
  let inDir: string;
  try {
    inDir = await realpath(request.inDir);
  } catch {
    throw new InputError(`load previous state: read ${join(request.inDir, 'repo.json')}: no such file or directory`);
  }
  await mkdir(request.outDir, { recursive: true, mode: 0o755 });
  const outDir = await realpath(request.outDir);
  const inPlace = inDir === outDir;
  const locks = await lockDirs(inPlace ? [inDir] : [inDir, outDir], request.lockTimeoutMs);
  try {
    const state = await loadState(inDir, { active: false, archive: !request.rebuild }).catch((e: unknown) => {
      throw prefixed(e);
    });
    const { keys, problems: keyProblems } = await readTrustedKeys(inDir, state.descriptor);
    const signatures = checkSignatures(state, keys);
    const problem = keyProblems[0] ?? signatures.problems[0];
    if (problem) throw new InputError(`load previous state: ${problem}`);
    if (signatures.pendingDescriptorSignature && inPlace) {
      // A writer died between its last two renames; its signature verifies: finish its work.
      await rename(signatures.pendingDescriptorSignature, join(inDir, 'repo.json.sig'));
      fsyncPath(inDir);
    }
    await removeLeftovers(outDir);

    const signer = signingKeyInfo(request.signingKey).fingerprint;
    const listed = state.descriptor.keys.find((k) => k.fingerprint === signer);
    if (!listed || listed.status === 'revoked') {
      throw new InputError(
        `--sign-key ${signer} is ${listed ? 'revoked' : 'not listed'} in repo.json; sign with a key the descriptor lists ` +
          `(${state.descriptor.keys.map((k) => `${k.fingerprint.slice(0, 16)}… ${k.status}`).join(', ') || 'none'}), or add this one and run \`peipkg-repo resign\``,
      );
    }
    checkClock(state, request.timestamp);

    const sourceDir = request.rebuild ? request.allPackagesDir : request.newDir;
    if (sourceDir === undefined) throw new InputError(request.rebuild ? '--rebuild requires --all-packages-dir' : '--new is required (or use --rebuild + --all-packages-dir)');
    const fresh = await readNewPackages(sourceDir, keys, request);
    const newKeys = addEntries(state, fresh, request.urlTemplate);
    const archiveDoc = request.rebuild ? undefined : state.archive.entries;
    // Only the names the new packages bring are ordered here; the native store keeps every
    // other entry where the previous archive has it.
    const touched = archiveDoc ? state.store.named(archiveDoc, [...new Set(newKeys.map((e) => e.name))]) : [];
    const duplicate = firstDuplicate(touched, newKeys);
    if (duplicate) throw duplicateError(newKeys, duplicate, fresh.map((p) => p.file));
    checkPackageUrls(archiveDoc ? state.store.urlHolders(archiveDoc, newKeys.map((e) => e.url)) : [], newKeys, request.urlTemplate);
    const { archive: touchedOrder } = orderArchive([...touched, ...newKeys]);
    if (!state.store.arrangeMerged(archiveDoc, groupByName(touchedOrder))) {
      // The previous archive's names are out of byte order, which neither this tool nor the
      // reference writes: order every entry instead.
      const { archive, active } = orderArchive([...(await state.store.documentKeys(archiveDoc!)), ...newKeys]);
      state.store.arrange(archive.map((e) => e.id), active.map((e) => e.id));
    }
    const indexVersion = Math.max(state.active.header.indexVersion, state.archive.header.indexVersion) + 1;

    const header = (kind: 'active' | 'archive') => ({ schemaVersion: 1, repo: state.descriptor.name, kind, indexVersion, generatedAt: request.timestamp });
    const signature = (sha: string) => detachedSignature(request.signingKey, sha);

    const step = writeStep(outDir);
    const staging = await step('save state', () => Staging.open(outDir));
    // Until the indexes are swapped in, a failure leaves the state as it was: what was placed is
    // removed again, and no index names it. Once they are, the packages they name stay.
    let swapped = false;
    let indexDir: string | undefined;
    try {
      // The new documents are written (on the addon's threads) while the package files are
      // staged; none becomes visible before it is placed below, after the packages.
      const documents = bothOrNeither(
        step('write browse site', () => staging.make((path) => state.store.writeSiteScript(path, indexVersion, request.timestamp))),
        step('save state', () => writeIndexes(outDir, state.store, { header: header('active'), signature }, { header: header('archive'), signature })),
        (dir) => rm(dir, { recursive: true, force: true }),
      );
      let browseData: string;
      [browseData, indexDir] = await meanwhile(documents, async () => {
        for (const [i, p] of fresh.entries()) {
          const target = statePathOf(newKeys[i]!.url);
          if (target !== undefined && (await realpath(p.path)) !== join(outDir, target)) await step(`materialise ${p.path}`, () => staging.copy(p.path, target));
        }
        // Sidecars in archive order; packages sharing a directory share them, and the first one wins (§8.8).
        const freshById = new Map(newKeys.map((k, i) => [k.id, fresh[i]!]));
        for (const entry of touchedOrder) {
          const p = freshById.get(entry.id);
          if (!p) continue;
          const target = statePathOf(entry.url);
          if (target === undefined) continue;
          await step(`materialise sidecars: ${target}`, () => writeSidecars(staging, outDir, target, entry.url, p.verified.facts));
        }
        if (!inPlace && archiveDoc) await step('carry-forward packages', async () => carryForward(staging, inDir, outDir, await state.store.documentKeys(archiveDoc)));
        const site = siteFiles({ repo: { name: state.descriptor.name, description: state.descriptor.description }, indexVersion, generatedAt: request.timestamp });
        await step('write browse site', async () => {
          for (const file of site) await ensureFile(staging, outDir, file.path, file.content);
        });
      }, ([, dir]) => rm(dir, { recursive: true, force: true }));
      await step('write browse site', () => staging.place(browseData, SITE_PACKAGES));
      const swapping = indexDir;
      await step('save state', () => swapInIndexes(outDir, swapping, () => (swapped = true)), () => (swapped ? SWAPPED : UNCHANGED));
      const descriptorBytes = encodeDescriptor(state.descriptor);
      const signed = detachedSignature(request.signingKey, sha256(Buffer.from(descriptorBytes)));
      await step('save state', () => writeDescriptor(outDir, descriptorBytes, signed), () => SWAPPED);
    } catch (error) {
      if (!swapped) {
        if (indexDir !== undefined) await rm(indexDir, { recursive: true, force: true });
        await staging.abandon();
      }
      throw error;
    } finally {
      await staging.close();
    }
    fsyncPath(outDir);
    return { indexVersion, added: newKeys.map((e) => `${entryTriple(e)}.peipkg`).sort(compareUtf8) };
  } finally {
    locks.forEach((l) => l.release());
  }
}

/**
 * The index entries of the new packages, made in the native store from each package's
 * manifest.json and file facts; their keys.
 */
function addEntries(state: LoadedState, fresh: readonly NewPackage[], urlTemplate: string): IndexEntryKey[] {
  return fresh.map((p) => {
    const m = p.verified.manifest;
    const url = renderUrl(urlTemplate, { name: m.name, version: m.version, arch: m.architecture, filename: p.file });
    const manifest = p.verified.facts.manifest;
    if (manifest === undefined) throw new InternalError(`${p.path}: verified, yet its manifest.json bytes are missing`);
    let id: number;
    try {
      [id] = state.store.addPackages([{ manifest, size: p.size, sha256: p.sha256, url }]) as [number];
    } catch (error) {
      throw new InputError(`${p.path}: cannot make its index entry: ${(error as Error).message} (nothing was published)`, { cause: error });
    }
    return { id, name: m.name, version: m.version, architecture: m.architecture, hash: p.sha256, url };
  });
}

/** Consecutive entries of one name (archive order keeps them together) as the store's groups. */
function groupByName(ordered: readonly IndexEntryKey[]): IndexGroup[] {
  const groups: Array<{ name: string; ids: number[] }> = [];
  for (const e of ordered) {
    const last = groups[groups.length - 1];
    if (last?.name === e.name) last.ids.push(e.id);
    else groups.push({ name: e.name, ids: [e.id] });
  }
  return groups;
}

/**
 * New packages must land where nothing else is written and no other package lives: a URL inside
 * `index/` would be swapped away with the old indexes, and two packages on one URL would leave only
 * the last one's bytes, so the archive would name a file whose hash no longer matches.
 */
function checkPackageUrls(holders: ReadonlyArray<IndexEntryKey | undefined>, fresh: readonly IndexEntryKey[], template: string): void {
  // `holders[i]`: the archive entry that already has the URL of `fresh[i]`, found natively.
  const taken = new Map<string, IndexEntryKey>();
  holders.forEach((h, i) => {
    if (h && !taken.has(fresh[i]!.url)) taken.set(fresh[i]!.url, h);
  });
  for (const entry of fresh) {
    const path = statePathOf(entry.url);
    const problem = path === undefined ? undefined : statePathProblem(path);
    const other = taken.get(entry.url);
    if (problem || other) {
      throw new InputError(
        `package ${entryTriple(entry)}: its URL ${entry.url} (from --package-url-template ${template}) ` +
          `${problem ?? `is already the URL of ${entryTriple(other!)}`}; ` +
          `use a template that gives every package its own path outside the repository's files, such as the default ${DEFAULT_URL_TEMPLATE}`,
      );
    }
    taken.set(entry.url, entry);
  }
}

/** manifest.json, files.json and the site's files.js beside a package, unless both sidecars are there already. */
async function writeSidecars(staging: Staging, outDir: string, target: string, url: string, facts: PackageFacts): Promise<void> {
  const dir = target.includes('/') ? target.slice(0, target.lastIndexOf('/')) : '.';
  const exists = (name: string): Promise<boolean> => pathExists(join(outDir, dir, name));
  if ((await exists('manifest.json')) && (await exists('files.json'))) return;
  if (facts.manifest) await staging.write(join(dir, 'manifest.json'), facts.manifest);
  if (facts.filesJson) await staging.write(join(dir, 'files.json'), facts.filesJson);
  const script = filesScriptPath(url);
  if (script && facts.filesJson) await staging.write(script, filesScript(url, facts.filesJson.toString('utf8')));
}

/** Out-of-place publish: the key files, and every earlier package the new state does not hold yet. */
async function carryForward(staging: Staging, inDir: string, outDir: string, previous: readonly IndexEntryKey[]): Promise<void> {
  for (const name of await readdir(join(inDir, KEYS_DIR)).catch(() => [] as string[])) {
    const source = join(inDir, KEYS_DIR, name);
    if ((await stat(source)).isFile()) await staging.copy(source, `${KEYS_DIR}/${name}`);
  }
  for (const entry of previous) {
    const target = statePathOf(entry.url);
    if (target === undefined) continue;
    const exists = await pathExists(join(outDir, target));
    const source = join(inDir, target);
    if (!exists && (await stat(source).then((s) => s.isFile(), () => false))) await staging.copy(source, target);
  }
}
