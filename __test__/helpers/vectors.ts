/** Spec vectors unpacked into temporary directories, and a private copy of the test key. */

import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

import { testKeyPath, vector } from './fixtures.js';
import { tempDir } from './fs.js';

/** Unpacks `<name>/staged.tar` into a fresh directory and returns it. */
export async function stagedTree(t: ExecutionContext, name: string): Promise<string> {
  const dir = join(await tempDir(t), 'staged');
  await mkdir(dir);
  await execa('tar', ['-xf', vector(`${name}/staged.tar`), '-C', dir]);
  return dir;
}

/** The test signing key, copied with mode 0600 (what a real farm key has). */
export async function privateTestKey(t: ExecutionContext): Promise<string> {
  const path = join(await tempDir(t), 'test-signing.ed25519');
  await copyFile(testKeyPath, path);
  await chmod(path, 0o600);
  return path;
}

/** The decompressed tar of a package, via the real zstd CLI. */
export async function tarOf(packagePath: string): Promise<Buffer> {
  const { stdout } = await execa('zstd', ['-dc', packagePath], { encoding: 'buffer', maxBuffer: 1 << 28 });
  return Buffer.from(stdout);
}
