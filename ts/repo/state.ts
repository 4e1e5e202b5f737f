/**
 * Reading a repository state (`repository.md` §2, §9.5): the descriptor, the two indexes and their
 * detached signatures, and the public keys the descriptor lists. Loading checks only that the
 * documents exist and parse (with the reference's error texts, in its order); `checkSignatures`
 * then verifies them against the descriptor's keys, which publish requires before building on a
 * state (DECISIONS.md, Repository 4) and verify reports on.
 */

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { CorruptDataError, FileSystemError, InputError } from '../errors.js';
import { readRegularFile } from '../fs.js';
import { inspectIndex, IndexStore, parsePublicKey, sha256, type IndexDocumentIds, type IndexHeader } from '../native.js';
import { decodeDescriptor, type Descriptor } from './descriptor.js';
import { checkDetachedSignature } from './signature.js';

export const DESCRIPTOR = 'repo.json';
export const ACTIVE = 'index/active.json';
export const ARCHIVE = 'index/archive.json';
export const KEYS_DIR = 'keys';

/**
 * The most of `repo.json`, a detached signature or a key file that is read. Real ones are a few
 * KB; the bound keeps a hostile state (a sparse file of gigabytes) from taking the memory.
 */
export const SMALL_DOCUMENT_LIMIT = 16 << 20;

/** A descriptor, signature or key file of the state at `path`: regular files only (`readRegularFile`). */
export function readSmallDocument(path: string): Promise<Buffer> {
  return readRegularFile(path, SMALL_DOCUMENT_LIMIT);
}

/** A state that cannot be loaded; the message is the reference's, without the caller's prefix. */
export class StateLoadError extends InputError {}

export interface IndexDocument {
  header: IndexHeader;
  sha256: string;
  size: number;
  signature: Buffer | undefined;
  /** Where the entries are in the store, when they were loaded into it. */
  entries?: IndexDocumentIds;
}

export interface LoadedState {
  dir: string;
  descriptor: Descriptor;
  descriptorBytes: Buffer;
  descriptorSha256: string;
  descriptorSignature: Buffer | undefined;
  /** `repo.json.sig.tmp-*` files: a writer that died between its last two renames left the new signature here. */
  pendingDescriptorSignatures: Array<{ path: string; bytes: Buffer }>;
  active: IndexDocument;
  archive: IndexDocument;
  store: IndexStore;
}

function osMessage(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file or directory';
  if (e.code === 'EISDIR') return 'is a directory';
  if (e.code === 'ENOTDIR') return 'not a directory';
  return e.message;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readSmallDocument(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function loadSignature(dir: string, doc: string): Promise<Buffer | undefined> {
  let bytes: Buffer | undefined;
  try {
    bytes = await readOptional(join(dir, `${doc}.sig`));
  } catch (error) {
    throw new StateLoadError(`load ${doc}.sig: ${osMessage(error)}`);
  }
  if (bytes === undefined) return undefined;
  try {
    JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new StateLoadError(`load ${doc}.sig: parse envelope: ${(error as Error).message}`);
  }
  return bytes;
}

async function loadIndex(dir: string, doc: string, store: IndexStore | undefined): Promise<IndexDocument> {
  const path = join(dir, doc);
  let loaded: { header: IndexHeader; sha256: string; size: number; entries?: IndexDocumentIds };
  try {
    if (store) {
      const { doc, first, count, ...rest } = await store.load(path);
      loaded = { ...rest, entries: { doc, first, count } };
    } else {
      loaded = await inspectIndex(path);
    }
  } catch (error) {
    if (error instanceof FileSystemError) {
      // The addon's message is `read <path>: <reason>`; the path is said once, as `doc`.
      const reason = error.osError === 'ENOENT' || error.osError === 'EISDIR' ? osMessage({ code: error.osError }) : error.message.replace(`read ${path}: `, '');
      throw new StateLoadError(`read ${doc}: ${reason}`);
    }
    if (error instanceof CorruptDataError) throw new StateLoadError(`parse ${doc}: ${error.message.replace(/^parse \S+: /, '')}`);
    throw error;
  }
  return { ...loaded, signature: await loadSignature(dir, doc) };
}

/**
 * Loads the state in `dir`. `entries` says which indexes to load into the store (`entries` then
 * says where); the others are only hashed and their headers read.
 */
export async function loadState(dir: string, entries: { active: boolean; archive: boolean }): Promise<LoadedState> {
  let descriptorBytes: Buffer;
  try {
    descriptorBytes = await readSmallDocument(join(dir, DESCRIPTOR));
  } catch (error) {
    throw new StateLoadError(`read ${DESCRIPTOR}: ${osMessage(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(descriptorBytes.toString('utf8'));
  } catch (error) {
    throw new StateLoadError(`parse ${DESCRIPTOR}: ${(error as Error).message}`);
  }
  const decoded = decodeDescriptor(json);
  if ('problems' in decoded) throw new StateLoadError(`parse ${DESCRIPTOR}: ${decoded.problems.join('; ')}`);
  const descriptorSignature = await loadSignature(dir, DESCRIPTOR);
  // Only a help in recovering: one that cannot be read (not a regular file, say) is no candidate.
  const pending = await Promise.all(
    (await readdir(dir))
      .filter((n) => n.startsWith(`${DESCRIPTOR}.sig.tmp-`))
      .map(async (n) => ({ path: join(dir, n), bytes: await readSmallDocument(join(dir, n)).catch(() => undefined) })),
  );
  const pendingDescriptorSignatures = pending.flatMap((p) => (p.bytes === undefined ? [] : [{ path: p.path, bytes: p.bytes }]));
  const store = IndexStore.create();
  // Both at once, each on its own thread of the pool.
  const [active, archive] = await Promise.all([
    loadIndex(dir, ACTIVE, entries.active ? store : undefined),
    loadIndex(dir, ARCHIVE, entries.archive ? store : undefined),
  ]);
  return {
    dir,
    descriptor: decoded.descriptor,
    descriptorBytes,
    descriptorSha256: sha256(descriptorBytes),
    descriptorSignature,
    pendingDescriptorSignatures,
    active,
    archive,
    store,
  };
}

/**
 * §9.2 step 1: the public key file of every key that is not revoked. Keys that fail are reported
 * and left out of the returned map, so their signatures do not count.
 */
export async function readTrustedKeys(dir: string, descriptor: Descriptor): Promise<{ keys: Map<string, Uint8Array>; problems: string[] }> {
  const keys = new Map<string, Uint8Array>();
  const problems: string[] = [];
  for (const key of descriptor.keys) {
    if (key.status === 'revoked') continue;
    const file = join(dir, KEYS_DIR, `${key.fingerprint}.pub`);
    let bytes: Buffer;
    try {
      bytes = await readSmallDocument(file);
    } catch (error) {
      problems.push(`descriptor key ${key.fingerprint}: read ${file}: ${osMessage(error)}`);
      continue;
    }
    try {
      const info = parsePublicKey(bytes);
      if (info.fingerprint !== key.fingerprint) {
        problems.push(`key file ${key.fingerprint}.pub fingerprints to ${info.fingerprint} (declared ${key.fingerprint})`);
        continue;
      }
      keys.set(key.fingerprint, info.publicKey);
    } catch (error) {
      problems.push(`descriptor key ${key.fingerprint}: parse: ${(error as Error).message}`);
    }
  }
  return { keys, problems };
}

export interface SignatureReport {
  /** Failures, worded as verify words them; a missing `.sig` is one too (DECISIONS.md, Repository 6). */
  problems: string[];
  /** A pending `repo.json.sig.tmp-*` that verifies `repo.json` where `repo.json.sig` does not. */
  pendingDescriptorSignature: string | undefined;
}

/** §9.2 step 2 for the three documents, in order; at most one problem per document. */
export function checkSignatures(state: LoadedState, keys: ReadonlyMap<string, Uint8Array>): SignatureReport {
  const report: SignatureReport = { problems: [], pendingDescriptorSignature: undefined };
  const documents: Array<[string, Buffer | undefined, string]> = [
    ['repo.json', state.descriptorSignature, state.descriptorSha256],
    ['active.json', state.active.signature, state.active.sha256],
    ['archive.json', state.archive.signature, state.archive.sha256],
  ];
  for (const [label, signature, digest] of documents) {
    const check =
      signature === undefined
        ? ({ ok: false, problem: `${label}: no detached signature present (a signed repository needs ${label}.sig)` } as const)
        : checkDetachedSignature(label, signature, digest, keys);
    if (check.ok) continue;
    const pending = label === 'repo.json' ? state.pendingDescriptorSignatures.find((p) => checkDetachedSignature(label, p.bytes, digest, keys).ok) : undefined;
    if (pending) report.pendingDescriptorSignature = pending.path;
    else report.problems.push(check.problem);
  }
  return report;
}
