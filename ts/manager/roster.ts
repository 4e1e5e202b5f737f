/**
 * The recipe roster (`recipes-and-farm.md` §8.2): every direct subdirectory of `recipes_dir` that
 * holds a `peipkg.toml`, checked completely by the same code as `peipkg-build` (DECISIONS.md:
 * recipes are validated at load) plus the manager's own rules — tag_pattern, min_version, poll
 * interval. A bad recipe, TOML syntax errors included, is left out on its own and reported (D-17);
 * a folder name that matches none of its packages is a warning.
 */

import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { loadRecipe, RecipeError, type Recipe } from '../build/recipe.js';
import { checkWatch, type WatchedUpstream } from '../build/watch.js';
import { InputError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';

export interface RosterRecipe {
  id: string;
  recipe: Recipe;
  /** Present when the recipe is auto-built (both `git` and `tag_pattern` set). */
  upstream: WatchedUpstream | undefined;
  githubWebhook: boolean;
  pollIntervalMs: number;
  /** Every stanza's (name, architecture): de-duplication checks them all (D-20). */
  packages: Array<{ name: string; architecture: string }>;
  warnings: string[];
}

export interface SkippedRecipe {
  id: string;
  problems: string[];
}

export interface Roster {
  recipes: RosterRecipe[];
  skipped: SkippedRecipe[];
}

/** The manager's checks on a recipe that peipkg-build accepts; returns the entry or its problems. */
export function rosterEntry(id: string, recipe: Recipe, managerProblems: string[], defaultIntervalMs: number): RosterRecipe | SkippedRecipe {
  const watch = checkWatch(id, recipe, managerProblems);
  if (watch.problems.length > 0) return { id, problems: watch.problems };
  return {
    id,
    recipe,
    upstream: watch.upstream,
    githubWebhook: recipe.watch?.githubWebhook ?? false,
    pollIntervalMs: recipe.watch?.pollIntervalMs ?? defaultIntervalMs,
    packages: recipe.packages.map((p) => ({ name: p.name, architecture: p.architecture })),
    warnings: watch.warnings,
  };
}

/** Loads one recipe directory; never throws for a bad recipe, only reports it. */
export async function loadRosterRecipe(dir: string, id: string, defaultIntervalMs: number): Promise<RosterRecipe | SkippedRecipe> {
  try {
    const { recipe, managerProblems } = await loadRecipe(join(dir, 'peipkg.toml'));
    return rosterEntry(id, recipe, managerProblems, defaultIntervalMs);
  } catch (error) {
    if (error instanceof RecipeError) return { id, problems: [...error.problems, ...error.managerProblems] };
    if (error instanceof InputError) return { id, problems: [error.message] };
    throw error;
  }
}

export async function loadRoster(recipesDir: string, defaultIntervalMs: number): Promise<Roster> {
  let names: string[];
  try {
    names = await readdir(recipesDir);
  } catch (error) {
    throw new InputError(`read recipes_dir ${recipesDir}: ${(error as Error).message}`);
  }
  const roster: Roster = { recipes: [], skipped: [] };
  for (const name of names.sort(compareUtf8)) {
    const dir = join(recipesDir, name);
    // Symlinked folders are skipped, as the reference does: the roster is what the directory holds.
    const info = await lstat(dir).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    if (!(await stat(join(dir, 'peipkg.toml')).then((s) => s.isFile(), () => false))) continue;
    const entry = await loadRosterRecipe(dir, name, defaultIntervalMs);
    if ('problems' in entry) roster.skipped.push(entry);
    else roster.recipes.push(entry);
  }
  return roster;
}
