/** Temporary directories that clean themselves up when the test ends, and trees deeper than PATH_MAX. */

import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

import { removeTree } from '../../ts/native.js';

/** A fresh directory, removed at teardown whatever a test left in it (removeTree: any depth, any mode). */
export async function tempDir(t: ExecutionContext, prefix = 'peipkg-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => removeTree(dir));
  return dir;
}

/**
 * A tmpfs of `size` (mount's syntax: `1m`) at a fresh directory, unmounted when the test ends: a
 * filesystem to fill up or remount read-only (the suite runs as root).
 */
export async function smallFilesystem(t: ExecutionContext, size: string): Promise<string> {
  const dir = join(await tempDir(t), 'fs');
  await mkdir(dir);
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'peipkg-test', dir]);
  t.teardown(() => execa('umount', ['-l', dir]).then(() => undefined));
  return dir;
}

/**
 * What is in `dir` once it is empty, or when `timeoutMs` has passed. For a build's TMPDIR:
 * peipkg-build leaves its scratch to a background remover (build/scratch.ts), so it may still be
 * there, under a garbage name, for a moment after the command exits.
 */
export async function emptiedDir(dir: string, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const names = await readdir(dir);
    if (names.length === 0 || Date.now() > deadline) return names;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The directory name deep trees are made of: 30 bytes, so 300 levels are about 9,300 bytes of path. */
export const DEEP_NAME = 'a'.repeat(30);

/**
 * Makes `levels` nested directories named `DEEP_NAME` in the existing directory `dir`, with a file
 * `bottom` in the deepest: a child process goes down with relative `chdir`s, as no path reaches there.
 */
export async function makeDeepTree(dir: string, levels: number): Promise<void> {
  const script =
    "const fs = require('node:fs'); const [dir, name, levels] = process.argv.slice(1); process.chdir(dir);" +
    'for (let i = 0; i < Number(levels); i++) { fs.mkdirSync(name); process.chdir(name); }' +
    "fs.writeFileSync('bottom', 'bottom\\n');";
  await execa(process.execPath, ['-e', script, dir, DEEP_NAME, String(levels)]);
}
