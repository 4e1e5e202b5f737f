/** Repository states made with the real CLI, and snapshots to prove a state did not change. */

import { lstat, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import type { ExecutionContext } from 'ava';

import { sha256 } from '../../ts/native.js';
import { runTool } from './cli.js';
import { tempDir } from './fs.js';

/** The key of repository.md §12: the 32-byte seed with byte i = 0xa0 XOR i. */
export async function vectorSeedFile(t: ExecutionContext): Promise<string> {
  const path = join(await tempDir(t), 'seed.bin');
  await writeFile(path, Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 ^ i)), { mode: 0o600 });
  return path;
}

export const VECTOR_FINGERPRINT = 'a18112b0b7b4225ff30527e0f7cf7a1e3742f632b03b65f4542703c3a5654dc9';

/** `peipkg-repo init` into a fresh directory; returns the state directory. */
export async function initState(t: ExecutionContext, key: string, timestamp = '2026-05-07T00:00:00Z', name = 'rt'): Promise<string> {
  const dir = join(await tempDir(t), 'state');
  const result = await runTool('peipkg-repo', ['init', '--name', name, '--sign-key', key, '--timestamp', timestamp, '--out', dir]);
  t.is(result.exitCode, 0, result.stderr);
  return dir;
}

/** `peipkg-repo publish` in place; returns the tool's result. */
export function publishInPlace(state: string, newDir: string, key: string, timestamp: string, extra: string[] = []) {
  return runTool('peipkg-repo', ['publish', '--in', state, '--new', newDir, '--sign-key', key, '--timestamp', timestamp, '--out', state, ...extra]);
}

/**
 * A file's SHA-256; for a symlink, also where it points; for a FIFO or device, only what it is
 * (reading those would wait or never end).
 */
async function fingerprint(path: string): Promise<string> {
  const link = (await lstat(path)).isSymbolicLink() ? `-> ${await readlink(path)} ` : '';
  const target = await stat(path).catch(() => undefined);
  if (target === undefined) return `${link}(dangling)`;
  if (!target.isFile()) return `${link}(${target.isFIFO() ? 'FIFO' : 'not a file'})`;
  return `${link}${sha256(await readFile(path))}`;
}

/** Relative path → SHA-256 of every file under `dir` (directories implied; see `fingerprint`). */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  async function walk(d: string): Promise<void> {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else files.set(relative(dir, path), await fingerprint(path));
    }
  }
  await walk(dir);
  return files;
}
