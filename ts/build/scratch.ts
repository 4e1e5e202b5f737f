/**
 * How a build's scratch tree goes away. Removing it costs 0.4–0.7 s on a 230 MB build: time the
 * caller should not wait for, since nothing in it matters once the packages are durable. So the
 * scratch is renamed, at once and in its own directory, to a name marked as garbage, and a detached
 * child process removes it; the command's output and exit code do not wait for that.
 *
 * Leftovers: a remover that is killed (or a machine that goes down) leaves a garbage tree behind.
 * Every remover first removes its own tree, then every other garbage tree in the same directory
 * that no live remover holds, so the next build cleans up after the last one. A remover holds an
 * `flock` on the tree it is removing; the kernel drops it when the remover dies. That is how two
 * removers never work on one tree at once (remove.rs does not expect company on deep trees).
 *
 * `PEIPKG_SCRATCH_REMOVAL` chooses:
 *   background (default)  as above;
 *   wait                  remove it before the command returns, as before (for measuring);
 *   caller                rename it and leave it: the caller removes the garbage trees in its
 *                         TMPDIR with `removeGarbageIn` (peipkg-manager does, with no child process
 *                         outliving it).
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, rename } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DirLock, removeTree } from '../native.js';

/** Scratch trees waiting for removal are named so in their TMPDIR. */
export const GARBAGE_PREFIX = 'peipkg-garbage-';

export const SCRATCH_REMOVAL_MODES = ['background', 'wait', 'caller'] as const;
export type ScratchRemoval = (typeof SCRATCH_REMOVAL_MODES)[number];

/** The mode `PEIPKG_SCRATCH_REMOVAL` asks for; an unknown value is the default, said once. */
export function scratchRemovalMode(env: NodeJS.ProcessEnv, warn: (message: string) => void): ScratchRemoval {
  const value = env.PEIPKG_SCRATCH_REMOVAL;
  if (value === undefined || value === '') return 'background';
  if ((SCRATCH_REMOVAL_MODES as readonly string[]).includes(value)) return value as ScratchRemoval;
  warn(`PEIPKG_SCRATCH_REMOVAL="${value}" is not one of ${SCRATCH_REMOVAL_MODES.join(', ')}; removing the scratch in the background`);
  return 'background';
}

/**
 * Removes the garbage tree at `path` unless another process holds it (a live remover), or it is not
 * ours to open (another user's). Resolves false when it left the tree alone.
 */
export async function removeGarbage(path: string): Promise<boolean> {
  let lock: DirLock;
  try {
    lock = DirLock.acquire(path);
  } catch {
    return false;
  }
  try {
    await removeTree(path);
    return true;
  } finally {
    lock.release();
  }
}

/** Removes every garbage tree in `dir` that no live remover holds; `first` goes first. Never throws. */
export async function removeGarbageIn(dir: string, first?: string): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.startsWith(GARBAGE_PREFIX));
  } catch {
    return;
  }
  if (first !== undefined) names = [first, ...names.filter((name) => name !== first)];
  for (const name of names) await removeGarbage(join(dir, name)).catch(() => false);
}

/** The remover's entry point next to this module: .js when compiled, .ts under tsx (tests). */
function removerCommand(dir: string, garbage: string): string[] {
  const self = fileURLToPath(import.meta.url);
  const ext = extname(self);
  return [...(ext === '.ts' ? ['--import', 'tsx'] : []), join(dirname(self), `removeGarbage${ext}`), dir, garbage];
}

/**
 * Disposes of the scratch tree `scratch` as `mode` says. Called once the outputs are durable (or
 * the build has failed): never throws, and says through `warn` what it could not remove.
 */
export async function discardScratch(scratch: string, mode: ScratchRemoval, warn: (message: string) => void): Promise<void> {
  const removeNow = (path: string): Promise<void> =>
    removeTree(path).catch((error: unknown) => warn(`could not remove the scratch area ${path}: ${(error as Error).message}`));
  if (mode === 'wait') return removeNow(scratch);
  const dir = dirname(scratch);
  const name = `${GARBAGE_PREFIX}${basename(scratch).replace(/^peipkg-/, '')}-${randomBytes(4).toString('hex')}`;
  try {
    // Same directory, so same file system: a rename, however large the tree.
    await rename(scratch, join(dir, name));
  } catch {
    return removeNow(scratch);
  }
  if (mode === 'caller') return;
  await new Promise<void>((resolve) => {
    // Its own session, no stdio: neither the caller's terminal nor a parent reading our output (or
    // killing our process group) waits for it or stops it. cwd / keeps it out of every tree.
    const child = spawn(process.execPath, removerCommand(dir, name), { detached: true, stdio: 'ignore', cwd: '/' });
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
    // No child (no memory for one, a process limit): remove it here, which only costs the wait.
    child.once('error', () => void removeNow(join(dir, name)).then(resolve));
  });
}
