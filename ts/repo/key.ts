/**
 * `peipkg-repo key add`, `key retire` and `key revoke`: the key-list edits of a rotation (`repository.md` §10),
 * made without hand-editing `repo.json`.
 *
 * `add` reads a public key file (32 raw bytes or SPKI PEM, like `keys/<fp>.pub`), computes its
 * fingerprint, writes `keys/<fp>.pub` and inserts the key in fingerprint order (`active` by
 * default; `transitioning` needs `valid_until`). `revoke` sets a key's status to `revoked` — the
 * status §6.1.3 defines and verify skips — or, with `remove`, drops the entry (the last step of a
 * planned rotation). Duplicates, unknown fingerprints and an edit that breaks the key rules (the
 * ones `resign` enforces: sorted, unique, at least one active key, `valid_until` on transitioning
 * keys) are refused before anything is written.
 *
 * Only `repo.json` (replaced by rename) and the new key file change; the descriptor's signature is
 * then stale, so the user runs `peipkg-repo resign` next, as after a hand edit.
 */

import { join } from 'node:path';

import { pathExists } from '../fs.js';
import { InputError, PeipkgError, UsageError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';
import { timestampProblem } from '../format/timestamp.js';
import { DirLock, parsePublicKey, type PublicKeyInfo } from '../native.js';
import { descriptorKeyProblems, encodeDescriptor, keyUrl, type Descriptor, type DescriptorKey } from './descriptor.js';
import { loadStateAt } from './list.js';
import { DESCRIPTOR, KEYS_DIR, readSmallDocument } from './state.js';
import { makeDirs, removeLeftovers, replaceFile } from './write.js';

export interface KeyAddRequest {
  repoDir: string;
  publicKeyFile: string;
  status: 'active' | 'transitioning';
  /** Required for `transitioning`; '' otherwise. */
  validUntil: string;
  lockTimeoutMs: number;
}

export interface KeyRevokeRequest {
  repoDir: string;
  fingerprint: string;
  /** Drop the entry instead of marking it revoked. */
  remove: boolean;
  lockTimeoutMs: number;
}

export interface KeyEdit {
  fingerprint: string;
  /** The key's status after the edit; `removed` when the entry is gone. */
  status: string;
  validUntil: string;
  /** `keys/<fp>.pub`, when `add` wrote it (undefined when an identical file was there). */
  keyFileWritten: string | undefined;
  /** Keys that can sign the `resign` that must follow: active or transitioning. */
  signers: string[];
}

/** The `--fingerprint` value: 64 lowercase hex digits. */
export function fingerprintFlag(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) {
    throw new UsageError(`--fingerprint ${JSON.stringify(value)}: expected 64 lowercase hex digits (the SHA-256 of the raw public key, as repo.json lists it)`);
  }
  return value;
}

/** The `--valid-until` value: RFC 3339 ending in Z, the form §6.1.3 requires of transitioning keys. */
export function validUntilFlag(value: string): string {
  const problem = timestampProblem(value);
  if (problem) throw new UsageError(`--valid-until: ${problem}`);
  return value;
}

async function readPublicKey(path: string): Promise<PublicKeyInfo> {
  let bytes: Buffer;
  try {
    bytes = await readSmallDocument(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new InputError(`--public-key ${path}: ${reason}`);
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(bytes.toString('latin1'))) {
    throw new InputError(`--public-key ${path} is a private key; give its public half (\`openssl pkey -in ${path} -pubout -out new.pub\`): private keys never go into a repository`);
  }
  try {
    return parsePublicKey(bytes);
  } catch (error) {
    if (!(error instanceof PeipkgError)) throw error;
    throw new InputError(`--public-key ${path}: ${error.message} (expected an Ed25519 public key: SPKI PEM or 32 raw bytes)`, { cause: error });
  }
}

function checkRules(descriptor: Descriptor, what: string): void {
  const problems = descriptorKeyProblems(descriptor);
  if (problems.length > 0) {
    throw new InputError(`${what}: the key list would break PSD-009 §6.1.3, so repo.json is left as it was:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

const signersOf = (d: Descriptor): string[] => d.keys.filter((k) => k.status === 'active' || k.status === 'transitioning').map((k) => k.fingerprint);

/** Runs `edit` on the loaded descriptor under the state's lock and writes the result. */
async function editDescriptor(repoDir: string, lockTimeoutMs: number, edit: (d: Descriptor) => { next: Descriptor; after?: () => Promise<void> }): Promise<Descriptor> {
  await loadStateAt(repoDir, { active: false, archive: false }); // a state, before we lock the directory
  const lock = await DirLock.acquireWithin(repoDir, lockTimeoutMs);
  try {
    await removeLeftovers(repoDir);
    // Read again under the lock: a publish may have finished while we waited.
    const current = await loadStateAt(repoDir, { active: false, archive: false });
    const { next, after } = edit(current.descriptor);
    await after?.();
    await replaceFile(join(repoDir, DESCRIPTOR), encodeDescriptor(next));
    return next;
  } finally {
    lock.release();
  }
}

export async function keyAdd(request: KeyAddRequest): Promise<KeyEdit> {
  if (request.status === 'transitioning' && request.validUntil === '') {
    throw new UsageError('--valid-until is required with --status transitioning (§6.1.3: a transitioning key carries valid_until)');
  }
  if (request.status === 'active' && request.validUntil !== '') {
    throw new UsageError('--valid-until applies only to --status transitioning');
  }
  const key = await readPublicKey(request.publicKeyFile);
  let keyFileWritten: string | undefined;
  const next = await editDescriptor(request.repoDir, request.lockTimeoutMs, (descriptor) => {
    const listed = descriptor.keys.find((k) => k.fingerprint === key.fingerprint);
    if (listed) throw new InputError(`key ${key.fingerprint} (--public-key ${request.publicKeyFile}) is already listed in repo.json (status ${listed.status}); nothing changed`);
    checkRules(descriptor, 'repo.json as it is');
    const entry: DescriptorKey = { fingerprint: key.fingerprint, url: keyUrl(key.fingerprint), status: request.status, validUntil: request.validUntil };
    const keys = [...descriptor.keys, entry].sort((a, b) => compareUtf8(a.fingerprint, b.fingerprint));
    const edited = { ...descriptor, keys };
    checkRules(edited, `adding ${key.fingerprint}`);
    return {
      next: edited,
      // The key file first: a crash before repo.json changes leaves only an unlisted key file.
      after: async () => {
        const file = join(request.repoDir, KEYS_DIR, `${key.fingerprint}.pub`);
        if (await pathExists(file)) {
          const present = await readSmallDocument(file).then((b) => parsePublicKey(b).fingerprint, () => undefined);
          if (present === key.fingerprint) return;
        }
        await makeDirs(request.repoDir, KEYS_DIR);
        await replaceFile(file, key.publicKeyPem);
        keyFileWritten = `${KEYS_DIR}/${key.fingerprint}.pub`;
      },
    };
  });
  return { fingerprint: key.fingerprint, status: request.status, validUntil: request.validUntil, keyFileWritten, signers: signersOf(next) };
}

export async function keyRevoke(request: KeyRevokeRequest): Promise<KeyEdit> {
  const fingerprint = fingerprintFlag(request.fingerprint);
  const next = await editDescriptor(request.repoDir, request.lockTimeoutMs, (descriptor) => {
    const listed = descriptor.keys.find((k) => k.fingerprint === fingerprint);
    if (!listed) {
      const known = descriptor.keys.map((k) => `${k.fingerprint} (${k.status})`).join(', ') || 'none';
      throw new InputError(`--fingerprint ${fingerprint} is not listed in repo.json (listed: ${known}); nothing changed`);
    }
    if (listed.status === 'revoked' && !request.remove) throw new InputError(`--fingerprint ${fingerprint} is already revoked in repo.json; nothing changed`);
    checkRules(descriptor, 'repo.json as it is');
    const keys = request.remove
      ? descriptor.keys.filter((k) => k.fingerprint !== fingerprint)
      : descriptor.keys.map((k) => (k.fingerprint === fingerprint ? { ...k, status: 'revoked', validUntil: '' } : k));
    const edited = { ...descriptor, keys };
    checkRules(edited, `${request.remove ? 'removing' : 'revoking'} ${fingerprint}`);
    return { next: edited };
  });
  return { fingerprint, status: request.remove ? 'removed' : 'revoked', validUntil: '', keyFileWritten: undefined, signers: signersOf(next) };
}

export interface KeyRetireRequest {
  repoDir: string;
  fingerprint: string;
  validUntil: string;
  lockTimeoutMs: number;
}

/**
 * `key retire`: an active key becomes `transitioning` until `validUntil` — step 1 of the planned
 * rotation of §10, once the new key is added: clients keep accepting the old key's signatures
 * while they pick up the new descriptor.
 */
export async function keyRetire(request: KeyRetireRequest): Promise<KeyEdit> {
  const fingerprint = fingerprintFlag(request.fingerprint);
  const validUntil = validUntilFlag(request.validUntil);
  const next = await editDescriptor(request.repoDir, request.lockTimeoutMs, (descriptor) => {
    const listed = descriptor.keys.find((k) => k.fingerprint === fingerprint);
    if (!listed) {
      const known = descriptor.keys.map((k) => `${k.fingerprint} (${k.status})`).join(', ') || 'none';
      throw new InputError(`--fingerprint ${fingerprint} is not listed in repo.json (listed: ${known}); nothing changed`);
    }
    if (listed.status !== 'active') throw new InputError(`--fingerprint ${fingerprint} is ${listed.status} in repo.json, not active; nothing changed`);
    checkRules(descriptor, 'repo.json as it is');
    const edited = { ...descriptor, keys: descriptor.keys.map((k) => (k.fingerprint === fingerprint ? { ...k, status: 'transitioning', validUntil } : k)) };
    checkRules(edited, `retiring ${fingerprint}`);
    return { next: edited };
  });
  return { fingerprint, status: 'transitioning', validUntil, keyFileWritten: undefined, signers: signersOf(next) };
}

/** The `--json` form of an edit, snake_case. */
export function keyEditJson(action: 'add' | 'retire' | 'revoke', repoDir: string, edit: KeyEdit): Record<string, unknown> {
  return {
    action,
    repo: repoDir,
    fingerprint: edit.fingerprint,
    status: edit.status,
    ...(edit.validUntil === '' ? {} : { valid_until: edit.validUntil }),
    key_file_written: edit.keyFileWritten ?? null,
    resign_required: true,
    signers: edit.signers,
  };
}

/** What to run next, for people. */
export function resignAdvice(repoDir: string, edit: KeyEdit): string {
  return (
    `repo.json is not signed for this change yet: run \`peipkg-repo resign --repo ${repoDir} --sign-key <private key>\` with the private key of ` +
    `an active or transitioning key (${edit.signers.join(', ')}); until then publish and verify refuse the state\n`
  );
}
