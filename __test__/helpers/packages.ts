/**
 * Packages made by code with our own producer (manifest encoder + native packer): fast enough to
 * make dozens per test, and exactly what `peipkg-build pack` writes.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { packageEntries, payloadOf } from '../../ts/build/assemble.js';
import { DEFAULT_ZSTD } from '../../ts/build/compression.js';
import type { Manifest } from '../../ts/format/manifest.js';
import { packageFileName } from '../../ts/format/names.js';
import { timestampSeconds } from '../../ts/format/timestamp.js';
import { pack, sha256, type SigningKey } from '../../ts/native.js';

export interface PackageSpec {
  name: string;
  version: string;
  architecture?: string;
  description?: string;
  /** Content of the package's one file, usr/share/<name>/README. */
  content?: string;
  signingKey?: SigningKey;
  timestamp?: string;
}

export function manifestFor(spec: PackageSpec): Manifest {
  return {
    name: spec.name,
    version: spec.version,
    architecture: spec.architecture ?? 'noarch',
    description: spec.description ?? `The ${spec.name} test package.`,
    license: 'MIT',
    homepage: 'https://peios.org',
    dependencies: [],
    optionalDependencies: [],
    conflicts: [],
    provides: [],
    replaces: [],
    sideEffects: [],
    sizeInstalled: 0,
    sdOverrides: [],
    build: { timestamp: spec.timestamp ?? '2026-05-06T12:00:00Z', farmId: 'test-farm', sourceRef: `test://${spec.name}` },
  };
}

/** Writes `<dir>/<name>_<version>_<arch>.peipkg` and returns its path. */
export async function makePackage(dir: string, spec: PackageSpec): Promise<string> {
  await mkdir(dir, { recursive: true });
  const manifest = manifestFor(spec);
  const content = Buffer.from(spec.content ?? `${spec.name} ${spec.version}\n`);
  const path = `usr/share/${spec.name}/README`;
  const payload = payloadOf([{ kind: 'file', path, size: content.length, uid: 0 }], new Map([[path, { sha256: sha256(content), size: content.length }]]));
  manifest.sizeInstalled = content.length;
  const entries = packageEntries(manifest, payload).map((e) =>
    e.type === 'file' && 'source' in e ? { name: e.name, type: 'file' as const, data: content } : e,
  );
  const out = join(dir, packageFileName(manifest.name, manifest.version, manifest.architecture));
  await pack({
    output: out,
    mtime: timestampSeconds(manifest.build.timestamp),
    entries,
    ...(spec.signingKey ? { signingKey: spec.signingKey } : {}),
    compression: { level: 3, overlapLog: DEFAULT_ZSTD.overlapLog, workers: 1 },
  });
  return out;
}
