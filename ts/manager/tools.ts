/**
 * The programs the manager runs, found once at start-up and pinned by absolute path, so that a
 * later change of PATH cannot redirect a build: `peipkg-build` and `peipkg-repo` from this package
 * first (the same version as the manager), then from PATH; `git` and `rclone` from PATH.
 */

import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { InputError } from '../errors.js';
import type { Tools } from './job.js';

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(() => true, () => false);
}

export async function onPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await executable(candidate)) return candidate;
  }
  return undefined;
}

export interface FoundTools extends Tools {
  /** Where each came from, for the start-up log. */
  origin: Record<string, string>;
}

/** Next to this module's package (`bin/<name>.js`), else on PATH. */
async function sibling(name: string): Promise<{ path: string; origin: string } | undefined> {
  const own = fileURLToPath(new URL(`../../bin/${name}.js`, import.meta.url));
  if (await executable(own)) return { path: own, origin: 'package' };
  const path = await onPath(name);
  return path ? { path, origin: 'PATH' } : undefined;
}

export async function findTools(): Promise<FoundTools> {
  const build = await sibling('peipkg-build');
  const repo = await sibling('peipkg-repo');
  const missing = [!build && 'peipkg-build', !repo && 'peipkg-repo', !(await onPath('git')) && 'git'].filter(Boolean);
  if (!build || !repo || missing.length > 0) {
    throw new InputError(`cannot find ${missing.join(', ')} (looked next to peipkg-manager, then on PATH); install them and start again`);
  }
  return { peipkgBuild: build.path, peipkgRepo: repo.path, origin: { 'peipkg-build': build.origin, 'peipkg-repo': repo.origin } };
}
