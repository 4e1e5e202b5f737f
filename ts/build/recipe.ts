/**
 * `peipkg.toml` (`recipes-and-farm.md` §2): TOML text → a typed `Recipe`, with every problem
 * reported at once. `[meta]`, `[[package]]` and `[[sign]]` belong to peipkg-build and are strict
 * (an unknown key is a typo); `[upstream]` and `[watch]` belong to the manager, which rejects
 * unknown keys there too (D-2); any other top-level table belongs to someone else and passes.
 *
 * This module checks what can be checked without building; it does not run anything.
 */

import { realpath, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';

import { parseDuration } from '../duration.js';
import { InputError } from '../errors.js';
import { adviceErrors, formatZodIssues, type IssuePath } from '../format/issues.js';
import { describingProblems, RELATION_FIELDS, type Provide, type Relation, type Replacement } from '../format/manifest.js';
import { BUILD_ARCHITECTURES } from '../format/names.js';
import { cleanPath } from '../format/paths.js';
import { compileGlob, GlobSyntaxError, type Glob } from './glob.js';

export interface RecipeRelation extends Relation {
  /** Resolved to `= <version>` at build time (§2.6). */
  sameBuild: boolean;
}

export interface Stanza {
  name: string;
  architecture: string;
  description: string;
  dependencies: RecipeRelation[];
  optionalDependencies: RecipeRelation[];
  conflicts: RecipeRelation[];
  provides: Provide[];
  replaces: Replacement[];
  sideEffects: string[];
  files: Glob[];
}

export interface SignRule {
  /** Relative to `$DESTDIR`, cleaned. */
  path: string;
  /** A key name given with `--binary-sign-key NAME=PATH`. */
  key: string;
}

export interface Upstream {
  git: string;
  tagPattern: string;
  peiosRevision: number;
  submodules: boolean;
  minVersion: string;
}

export interface Watch {
  githubWebhook: boolean;
  /** Milliseconds; undefined means the manager's default. */
  pollIntervalMs: number | undefined;
}

export interface Recipe {
  /** The `peipkg.toml` path and its directory; the directory's name is the recipe id. */
  path: string;
  dir: string;
  id: string;
  license: string;
  homepage: string;
  /** Absolute path of the build script, inside the recipe directory. */
  buildScript: string;
  packages: Stanza[];
  signs: SignRule[];
  upstream: Upstream | undefined;
  watch: Watch | undefined;
}

/** Problems found in a recipe, every one of them; `manager` ones do not stop `peipkg-build build`. */
export class RecipeError extends InputError {
  constructor(
    readonly recipePath: string,
    readonly problems: string[],
    /** The manager's problems with `[upstream]`/`[watch]`, found in the same pass (not a build's concern, so not in the message). */
    readonly managerProblems: string[] = [],
  ) {
    super(`${recipePath}: invalid recipe:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

const str = z.string();
const relation = z.strictObject({
  name: str.min(1, 'is required'),
  constraint: str.default(''),
  arch: str.default(''),
  same_build: z.boolean().default(false),
});
const stanzaSchema = z.strictObject({
  name: str,
  architecture: str,
  description: str.default(''),
  dependencies: z.array(relation).default([]),
  optional_dependencies: z.array(relation).default([]),
  conflicts: z.array(relation).default([]),
  provides: z.array(z.strictObject({ name: str.min(1, 'is required'), version: str.default('') })).default([]),
  replaces: z.array(z.strictObject({ name: str.min(1, 'is required'), constraint: str.default('') })).default([]),
  side_effects: z.array(str).default([]),
  files: z.array(str, { error: (i) => (i.input === undefined ? 'is required (write `files = []` for a package with no payload)' : undefined) }),
});
const buildSections = z.object({
  meta: z.strictObject({ license: str.default(''), homepage: str.default(''), source: str.default(''), build_script: str }),
  package: z.array(stanzaSchema).min(1, 'a recipe needs at least one [[package]]'),
  sign: z.array(z.strictObject({ path: str, key: str })).default([]),
});
const managerSections = z.object({
  upstream: z
    .strictObject({
      git: str.default(''),
      tag_pattern: str.default(''),
      peios_revision: z.number().int().default(0),
      submodules: z.boolean().default(false),
      min_version: str.default(''),
    })
    .optional(),
  watch: z.strictObject({ github_webhook: z.boolean().default(false), poll_interval: str.optional() }).optional(),
});

const TABLES: Record<string, string> = { meta: '[meta]', upstream: '[upstream]', watch: '[watch]' };

/** `[meta].homepag`, `package[1].files[0]`, `sign[0].key`. */
function recipePath(path: IssuePath): string {
  let out = '';
  for (const [i, part] of path.entries()) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (i === 0) out += TABLES[String(part)] ?? String(part);
    else out += `.${String(part)}`;
  }
  return out;
}

const UNKNOWN_KEY = 'unknown key (a typo? unknown keys in [meta], [[package]], [[sign]], [upstream] and [watch] are rejected; other top-level tables are left to other tools)';

function relationsOf(list: z.infer<typeof relation>[]): RecipeRelation[] {
  return list.map((r) => ({ name: r.name, constraint: r.constraint, arch: r.arch, sameBuild: r.same_build }));
}

/**
 * Checks on one stanza that the schema cannot express (§2.5, §2.6, D-5, D-6, D-8). Every field the
 * stanza and `[meta]` put into the manifest is judged by the manifest's own rules
 * (`describingProblems`), so a recipe that passes here cannot have its manifest refused after
 * build.sh has run; only the recipe's own rules (architectures `build` accepts, `same_build`) are
 * checked here besides.
 */
function stanzaProblems(s: Stanza, i: number, meta: { license: string; homepage: string }, allNames: Set<string>): string[] {
  const at = `package[${i}]`;
  const out: string[] = [];
  for (const { field, problem } of describingProblems({ ...s, ...meta }, 'any')) {
    out.push(`${field in meta ? `[meta]` : at}.${field}: ${problem}`);
  }
  // Stricter than the manifest's architecture rule, which every one of these passes.
  if (!(BUILD_ARCHITECTURES as readonly string[]).includes(s.architecture)) {
    out.push(`${at}.architecture: "${s.architecture}" is not one of ${BUILD_ARCHITECTURES.join(', ')}`);
  }
  for (const [key, wire] of RELATION_FIELDS) {
    s[key].forEach((r, j) => {
      const where = `${at}.${wire}[${j}]`;
      if (r.sameBuild && r.constraint !== '') out.push(`${where}: same_build conflicts with explicit constraint "${r.constraint}"`);
      if (r.sameBuild && !allNames.has(r.name)) out.push(`${where}: same_build set but no [[package]] named "${r.name}" exists`);
    });
  }
  return out;
}

function compileGlobs(patterns: string[], at: string, problems: string[]): Glob[] {
  const globs: Glob[] = [];
  patterns.forEach((pattern, j) => {
    try {
      globs.push(compileGlob(pattern));
    } catch (error) {
      if (!(error instanceof GlobSyntaxError)) throw error;
      problems.push(`${at}.files[${j}]: ${error.message}`);
    }
  });
  return globs;
}

/** Resolves `[meta].build_script` and refuses one outside the recipe directory (symlinks followed). */
async function resolveBuildScript(dir: string, script: string, problems: string[]): Promise<string> {
  const where = '[meta].build_script';
  if (script === '') {
    problems.push(`${where}: must name the build script`);
    return '';
  }
  const lexical = resolve(dir, script);
  const inside = (p: string, root: string): boolean => p !== root && !relative(root, p).startsWith('..') && !isAbsolute(relative(root, p));
  if (isAbsolute(script) || !inside(lexical, dir)) {
    problems.push(`${where}: "${script}" is outside the recipe directory; give a path relative to ${dir}`);
    return lexical;
  }
  try {
    const [real, realDir] = await Promise.all([realpath(lexical), realpath(dir)]);
    if (!inside(real, realDir)) problems.push(`${where}: "${script}" resolves to ${real}, outside the recipe directory`);
  } catch {
    problems.push(`${where}: "${script}" does not exist in ${dir}`);
  }
  return lexical;
}

export interface LoadedRecipe {
  recipe: Recipe;
  /** Problems in the sections the manager owns; `peipkg-build build` ignores them. */
  managerProblems: string[];
}

/** Reads and checks a recipe. Throws `RecipeError` with every build-section problem. */
export async function loadRecipe(path: string): Promise<LoadedRecipe> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read recipe ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory; give the path of peipkg.toml' : String(error)}`);
  }
  return parseRecipe(text, file);
}

/** `[upstream]` and `[watch]`, and what is wrong with them (the manager's business; a build ignores them). */
function managerSectionsOf(doc: unknown): { upstream: Upstream | undefined; watch: Watch | undefined; problems: string[] } {
  const problems: string[] = [];
  const manager = managerSections.safeParse(doc, { error: adviceErrors });
  let upstream: Upstream | undefined;
  let watch: Watch | undefined;
  if (!manager.success) problems.push(...formatZodIssues('peipkg.toml', manager.error, recipePath, UNKNOWN_KEY));
  else {
    const u = manager.data.upstream;
    if (u) upstream = { git: u.git, tagPattern: u.tag_pattern, peiosRevision: Math.max(1, u.peios_revision), submodules: u.submodules, minVersion: u.min_version };
    const w = manager.data.watch;
    if (w) {
      const interval = w.poll_interval === undefined ? undefined : parseDuration(w.poll_interval);
      if (w.poll_interval !== undefined && interval === undefined) {
        problems.push(`peipkg.toml: [watch].poll_interval: "${w.poll_interval}" is not a duration (write e.g. 15m, 1h, 1h30m)`);
      } else if (interval !== undefined && interval < 60_000) {
        problems.push(`peipkg.toml: [watch].poll_interval: "${w.poll_interval}" is below the 1m minimum`);
      }
      watch = { githubWebhook: w.github_webhook, pollIntervalMs: interval };
    }
  }
  return { upstream, watch, problems };
}

export async function parseRecipe(text: string, file: string): Promise<LoadedRecipe> {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = error.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'syntax error';
    throw new RecipeError(file, [`TOML syntax error at line ${error.line}, column ${error.column}: ${reason}`]);
  }
  const dir = dirname(file);
  const problems: string[] = [];
  // The manager's sections first, so that their problems are reported with a broken build section's.
  const { upstream, watch, problems: managerProblems } = managerSectionsOf(doc);
  const build = buildSections.safeParse(doc, { error: adviceErrors });
  if (!build.success) throw new RecipeError(file, formatZodIssues('peipkg.toml', build.error, recipePath, UNKNOWN_KEY), managerProblems);
  const data = build.data;
  const names = new Set<string>();
  data.package.forEach((s, i) => {
    if (names.has(s.name)) problems.push(`package[${i}].name: duplicate package name "${s.name}"`);
    names.add(s.name);
  });
  const packages = data.package.map((s, i): Stanza => {
    const stanza: Stanza = {
      name: s.name,
      architecture: s.architecture,
      description: s.description,
      dependencies: relationsOf(s.dependencies),
      optionalDependencies: relationsOf(s.optional_dependencies),
      conflicts: relationsOf(s.conflicts),
      provides: s.provides.map((p) => ({ name: p.name, version: p.version })),
      replaces: s.replaces.map((r) => ({ name: r.name, constraint: r.constraint })),
      sideEffects: s.side_effects,
      files: compileGlobs(s.files, `package[${i}]`, problems),
    };
    problems.push(...stanzaProblems(stanza, i, { license: data.meta.license, homepage: data.meta.homepage }, names));
    return stanza;
  });
  const signs = data.sign.map((rule, i): SignRule => {
    const cleaned = cleanPath(rule.path);
    if (rule.path === '') problems.push(`sign[${i}].path: is required`);
    else if (cleaned.startsWith('/') || cleaned === '..' || cleaned.startsWith('../')) problems.push(`sign[${i}].path: "${rule.path}" escapes $DESTDIR`);
    if (rule.key === '') problems.push(`sign[${i}].key: is required`);
    return { path: cleaned, key: rule.key };
  });
  const buildScript = await resolveBuildScript(dir, data.meta.build_script, problems);

  // Every stanza's manifest gets [meta]'s fields, so a bad one is found once per stanza: say it once.
  if (problems.length > 0) throw new RecipeError(file, [...new Set(problems)].map((p) => `peipkg.toml: ${p}`), managerProblems);
  const recipe: Recipe = {
    path: file,
    dir,
    id: basename(dir),
    license: data.meta.license,
    homepage: data.meta.homepage,
    buildScript,
    packages,
    signs,
    upstream,
    watch,
  };
  return { recipe, managerProblems };
}

/** A recipe-relative path for messages. */
export function shownPath(recipe: Recipe, path: string): string {
  return path.startsWith(recipe.dir + sep) ? join(basename(recipe.dir), relative(recipe.dir, path)) : path;
}
