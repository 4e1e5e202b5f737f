/**
 * `peipkg-repo resign` (DECISIONS.md, Keys): after a hand edit of `repo.json` for key rotation,
 * checks the edit and signs the descriptor and both indexes with the new key.
 *
 * The indexes are first verified with the key that signed them (found through each `.sig`'s
 * fingerprint in `keys/`), so a tampered index is never blessed with a fresh signature. The new
 * key must be active or transitioning in the edited descriptor, whose key rules must hold
 * (sorted, unique, at least one active, valid_until on transitioning keys). The index bytes do not
 * change; their signatures are swapped in with them as one, and repo.json follows.
 */

import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { pathExists } from '../fs.js';
import { InputError } from '../errors.js';
import { decodeEnvelope } from '../format/envelope.js';
import { DirLock, exchangePaths, fsyncPath, parsePublicKey, sha256, sha256File, signingKeyInfo, verifySignature, type SigningKey } from '../native.js';
import { descriptorKeyProblems, encodeDescriptor } from './descriptor.js';
import { detachedSignature } from './signature.js';
import { ACTIVE, ARCHIVE, KEYS_DIR, loadState, readSmallDocument, StateLoadError } from './state.js';
import { removeLeftovers, replaceFile, tempSuffix, writeDescriptor, writeDurable } from './write.js';

export interface ResignRequest {
  repoDir: string;
  signingKey: SigningKey;
  lockTimeoutMs: number;
}

/** The index's signature must verify with the key that made it, read from keys/<fingerprint>.pub. */
async function verifyWithSigner(repo: string, doc: string): Promise<void> {
  const envelope = decodeEnvelope(await readSmallDocument(join(repo, `${doc}.sig`)).catch(() => Buffer.alloc(0)));
  if ('problem' in envelope) throw new InputError(`${doc}.sig: ${envelope.problem}`);
  const keyFile = join(repo, KEYS_DIR, `${envelope.fingerprint}.pub`);
  const key = parsePublicKey(await readSmallDocument(keyFile).catch(() => {
    throw new InputError(`${doc} is signed by ${envelope.fingerprint}, whose key file ${keyFile} is missing`);
  }));
  const digest = Buffer.from((await sha256File(join(repo, doc))).sha256, 'hex');
  if (key.fingerprint !== envelope.fingerprint || !verifySignature(key.publicKey, digest, envelope.signature)) {
    throw new InputError(`${doc} does not verify with the key that signed it (${envelope.fingerprint}); refusing to re-sign it`);
  }
}

export async function resign(request: ResignRequest): Promise<{ fingerprint: string }> {
  const repo = request.repoDir;
  const lock = await DirLock.acquireWithin(repo, request.lockTimeoutMs);
  try {
    await removeLeftovers(repo);
    const state = await loadState(repo, { active: false, archive: false }).catch((e: unknown) => {
      throw e instanceof StateLoadError ? new InputError(`load state: ${e.message}`) : e;
    });
    const problems = descriptorKeyProblems(state.descriptor);
    if (problems.length > 0) throw new InputError(`repo.json: the key list breaks PSD-009 §6.1.3:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    const key = signingKeyInfo(request.signingKey);
    const listed = state.descriptor.keys.find((k) => k.fingerprint === key.fingerprint);
    if (!listed || (listed.status !== 'active' && listed.status !== 'transitioning')) {
      throw new InputError(`--sign-key ${key.fingerprint} must be listed as active or transitioning in repo.json (it is ${listed ? listed.status : 'not listed'})`);
    }
    for (const doc of [ACTIVE, ARCHIVE]) await verifyWithSigner(repo, doc);

    const keyFile = join(repo, KEYS_DIR, `${key.fingerprint}.pub`);
    if (!(await pathExists(keyFile))) {
      await mkdir(join(repo, KEYS_DIR), { recursive: true, mode: 0o755 });
      await replaceFile(keyFile, key.publicKeyPem);
    }

    // New signatures for the unchanged index bytes, swapped in together with them.
    const temp = join(repo, `index.${tempSuffix()}`);
    await mkdir(temp, { mode: 0o755 });
    for (const name of ['active.json', 'archive.json']) {
      await copyFile(join(repo, 'index', name), join(temp, name));
      fsyncPath(join(temp, name));
      const digest = (await sha256File(join(temp, name))).sha256;
      await writeDurable(join(temp, `${name}.sig`), detachedSignature(request.signingKey, digest));
    }
    fsyncPath(temp);
    exchangePaths(temp, join(repo, 'index'));
    fsyncPath(repo);
    await rm(temp, { recursive: true, force: true });
    const bytes = encodeDescriptor(state.descriptor);
    await writeDescriptor(repo, bytes, detachedSignature(request.signingKey, sha256(Buffer.from(bytes))));
    return { fingerprint: key.fingerprint };
  } finally {
    lock.release();
  }
}
