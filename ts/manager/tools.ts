/**
 * The programs the manager runs, found once at start-up and pinned by absolute path, so that a
 * later change of PATH cannot redirect a build: `peipkg-build` and `peipkg-repo` from this package
 * first (the same version as the manager), then from PATH; `git` and `rclone` from PATH.
 */

import { fileURLToPath } from 'node:url';

import { InputError } from '../errors.js';
import { executable, executableOnPath } from '../fs.js';
import type { Tools } from './job.js';

export interface FoundTools extends Tools {
  /** Where each came from, for the start-up log. */
  origin: Record<string, string>;
}

/** Next to this module's package (`bin/<name>.js`), else on PATH. */
async function sibling(name: string): Promise<{ path: string; origin: string } | undefined> {
  const own = fileURLToPath(new URL(`../../bin/${name}.js`, import.meta.url));
  if (await executable(own)) return { path: own, origin: 'package' };
  const path = await executableOnPath(name);
  return path ? { path, origin: 'PATH' } : undefined;
}

export async function findTools(): Promise<FoundTools> {
  const build = await sibling('peipkg-build');
  const repo = await sibling('peipkg-repo');
  const missing = [!build && 'peipkg-build', !repo && 'peipkg-repo', !(await executableOnPath('git')) && 'git'].filter(Boolean);
  if (!build || !repo || missing.length > 0) {
    throw new InputError(`cannot find ${missing.join(', ')} (looked next to peipkg-manager, then on PATH); install them and start again`);
  }
  return { peipkgBuild: build.path, peipkgRepo: repo.path, origin: { 'peipkg-build': build.origin, 'peipkg-repo': repo.origin } };
}
