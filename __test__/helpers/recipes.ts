/** Recipes made by code: a directory with peipkg.toml, build.sh and any other files. */

import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import type { ExecutionContext } from 'ava';

import { tempDir } from './fs.js';

export interface RecipeFiles {
  toml: string;
  script?: string;
  /** Extra files, relative to the recipe directory. */
  files?: Record<string, string>;
  /** The recipe directory's name (the recipe id). */
  id?: string;
}

/** Writes the recipe and returns the path of its peipkg.toml. */
export async function makeRecipe(t: ExecutionContext, recipe: RecipeFiles): Promise<string> {
  const dir = join(await tempDir(t, 'peipkg-recipe-'), recipe.id ?? 'recipe');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'peipkg.toml'), recipe.toml);
  if (recipe.script !== undefined) await writeFile(join(dir, 'build.sh'), recipe.script);
  for (const [name, content] of Object.entries(recipe.files ?? {})) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  // Build scripts may run as an unprivileged user: let it reach the recipe.
  await chmod(dirname(dir), 0o755);
  return join(dir, 'peipkg.toml');
}

/** A one-stanza recipe whose build.sh runs `script` (POSIX sh, with `set -eu`). */
export function simpleRecipe(options: { name?: string; architecture?: string; files?: string[]; script: string; extraToml?: string }): RecipeFiles {
  const files = (options.files ?? ['usr/share/**']).map((f) => JSON.stringify(f)).join(', ');
  return {
    id: options.name ?? 'demo',
    toml: `[meta]\nlicense = "MIT"\nbuild_script = "build.sh"\n\n[[package]]\nname = "${options.name ?? 'demo'}"\narchitecture = "${options.architecture ?? 'noarch'}"\nfiles = [${files}]\n${options.extraToml ?? ''}`,
    script: `#!/bin/sh\nset -eu\n${options.script}\n`,
  };
}
