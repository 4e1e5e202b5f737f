/**
 * `peipkg-repo init` (`repository.md` §8.2): a new state with one active key and empty indexes
 * (index_version 1). The state is assembled in a sibling temporary directory and renamed into
 * place, so an interrupted init leaves nothing behind but that temporary directory.
 */

import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

import { InputError } from '../errors.js';
import { fsyncPath, IndexStore, sha256, signingKeyInfo, type SigningKey } from '../native.js';
import { encodeDescriptor, keyUrl, type Descriptor } from './descriptor.js';
import { detachedSignature } from './signature.js';
import { KEYS_DIR } from './state.js';
import { swapIndexes, writeDurable } from './write.js';

export interface InitRequest {
  name: string;
  description: string;
  signingKey: SigningKey;
  timestamp: string;
  outDir: string;
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    throw new InputError(`read ${dir}: ${code === 'ENOTDIR' ? 'not a directory' : (error as Error).message}`);
  }
}

export async function init(request: InitRequest): Promise<void> {
  const out = resolve(request.outDir);
  if (!(await isEmptyOrMissing(out))) {
    throw new InputError(`${request.outDir} is not empty (Init refuses to overwrite existing state; use a fresh directory)`);
  }
  const key = signingKeyInfo(request.signingKey);
  const descriptor: Descriptor = {
    name: request.name,
    description: request.description,
    keys: [{ fingerprint: key.fingerprint, url: keyUrl(key.fingerprint), status: 'active', validUntil: '' }],
  };
  await mkdir(dirname(out), { recursive: true });
  const temp = join(dirname(out), `${basename(out)}.tmp-${randomBytes(6).toString('hex')}`);
  await mkdir(temp, { mode: 0o755 });
  try {
    await mkdir(join(temp, KEYS_DIR), { mode: 0o755 });
    await writeDurable(join(temp, KEYS_DIR, `${key.fingerprint}.pub`), key.publicKeyPem);
    const signature = (sha: string): string => detachedSignature(request.signingKey, sha);
    const header = (kind: string) => ({ schemaVersion: 1, repo: request.name, kind, indexVersion: 1, generatedAt: request.timestamp });
    await swapIndexes(temp, IndexStore.create(), { header: header('active'), signature }, { header: header('archive'), signature });
    const bytes = encodeDescriptor(descriptor);
    await writeDurable(join(temp, 'repo.json'), bytes);
    await writeDurable(join(temp, 'repo.json.sig'), signature(sha256(Buffer.from(bytes))));
    fsyncPath(join(temp, KEYS_DIR));
    fsyncPath(temp);
    await rename(temp, out); // replaces an empty directory, if there is one
    fsyncPath(dirname(out));
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}
