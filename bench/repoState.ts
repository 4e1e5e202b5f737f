/**
 * Synthetic signed repository states for the repository benchmarks: `entryCount` index entries
 * (every one in archive and active), of which the first `files` exist on disk with real bytes.
 */

import { createHash, randomBytes } from 'node:crypto';
import { open, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { loadSigningKey, sha256, signingKeyInfo } from '../ts/native.js';
import { encodeDescriptor, keyUrl } from '../ts/repo/descriptor.js';
import { detachedSignature } from '../ts/repo/signature.js';

export interface StateShape {
  entryCount: number;
  /** How many of the first entries get a package file of `fileBytes` bytes. */
  files?: number;
  fileBytes?: number;
  /** Versions per name (the archive then holds entryCount / versionsPerName names). */
  versionsPerName?: number;
}

/** One entry's canonical JSON, members in the contract's order. */
function entryJson(name: string, version: string, hash: string, size: number): string {
  const url = `/p/${name}/${version}/${name}_${version}_x86_64.peipkg`;
  return (
    `{"name":"${name}","version":"${version}","architecture":"x86_64","description":"A synthetic package for the repository benchmark.",` +
    `"license":"MIT","homepage":"https://peios.org","dependencies":[{"name":"libc"}],"optional_dependencies":[],"conflicts":[],"provides":[],` +
    `"replaces":[],"side_effects":[],"size_compressed":${size},"size_installed":${size * 3},"hash":{"algorithm":"sha256","value":"${hash}"},` +
    `"url":"${url}","build":{"timestamp":"2026-05-06T12:00:00Z","farm_id":"bench"}}`
  );
}

/** Writes one index document entry by entry, so a million entries never sit in one string. */
async function writeIndex(path: string, kind: string, entries: Iterable<string>): Promise<Buffer> {
  const handle = await open(path, 'w');
  const hash = createHash('sha256');
  let pending = `{"schema_version":1,"repo":"bench","kind":"${kind}","index_version":7,"generated_at":"2026-05-07T00:00:00Z","packages":[`;
  let first = true;
  const flush = async (): Promise<void> => {
    hash.update(pending);
    await handle.write(pending);
    pending = '';
  };
  for (const e of entries) {
    pending += (first ? '' : ',') + e;
    first = false;
    if (pending.length > 1 << 20) await flush();
  }
  pending += ']}\n';
  await flush();
  await handle.close();
  return hash.digest();
}

export async function syntheticState(dir: string, keyPath: string, shape: StateShape): Promise<{ packagesBytes: number }> {
  const key = loadSigningKey(keyPath);
  const fp = signingKeyInfo(key).fingerprint;
  await mkdir(join(dir, 'index'), { recursive: true });
  await mkdir(join(dir, 'keys'), { recursive: true });
  await writeFile(join(dir, 'keys', `${fp}.pub`), signingKeyInfo(key).publicKeyPem);
  const perName = shape.versionsPerName ?? 1;
  const files = shape.files ?? 0;
  const fileBytes = shape.fileBytes ?? 0;
  const chunk = randomBytes(1 << 20);
  const archive: string[] = [];
  const active: string[] = [];
  let packagesBytes = 0;
  for (let i = 0; i < shape.entryCount; i++) {
    const name = `pkg-${String(Math.floor(i / perName)).padStart(7, '0')}`;
    // Versions descend within a name, as archive order wants.
    const version = `1.${perName - 1 - (i % perName)}-1`;
    let hash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    let size = 0;
    if (i < files) {
      const file = join(dir, `p/${name}/${version}/${name}_${version}_x86_64.peipkg`);
      await mkdir(join(file, '..'), { recursive: true });
      const parts: Buffer[] = [];
      for (let m = 0; m < fileBytes / (1 << 20); m++) parts.push(chunk);
      parts.push(Buffer.from(name));
      const bytes = Buffer.concat(parts);
      await writeFile(file, bytes);
      hash = createHash('sha256').update(bytes).digest('hex');
      size = bytes.length;
      packagesBytes += size;
    }
    const json = entryJson(name, version, hash, size);
    archive.push(json);
    if (i % perName === 0) active.push(json);
  }
  for (const [kind, entries] of [['active', active], ['archive', archive]] as const) {
    const digest = await writeIndex(join(dir, 'index', `${kind}.json`), kind, entries);
    await writeFile(join(dir, 'index', `${kind}.json.sig`), detachedSignature(key, digest.toString('hex')));
  }
  const descriptor = encodeDescriptor({ name: 'bench', description: '', keys: [{ fingerprint: fp, url: keyUrl(fp), status: 'active', validUntil: '' }] });
  await writeFile(join(dir, 'repo.json'), descriptor);
  await writeFile(join(dir, 'repo.json.sig'), detachedSignature(key, sha256(Buffer.from(descriptor))));
  return { packagesBytes };
}
