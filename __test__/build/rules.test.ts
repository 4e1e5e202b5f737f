/**
 * One rule set for what a recipe puts into a manifest: every value `peipkg-build check` (and `build`
 * before build.sh runs) accepts for `[meta]`'s and a `[[package]]`'s fields is one the manifest
 * check accepts, and every value the manifest check refuses is refused before build.sh runs, by
 * `check` and by `build` alike, naming the recipe field.
 */

import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { parse as parseToml } from 'smol-toml';

import { stanzaManifest } from '../../ts/build/assemble.js';
import { parseRecipe, RecipeError, type Recipe, type RecipeRelation, type Stanza } from '../../ts/build/recipe.js';
import { manifestProblems, type Manifest } from '../../ts/format/manifest.js';
import { architectureProblem, BUILD_ARCHITECTURES } from '../../ts/format/names.js';
import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makeRecipe } from '../helpers/recipes.js';

/** Where a value goes: a line in `[meta]` or in the one `[[package]]`. */
type Place = 'meta' | 'package';

interface Case {
  /** The field as the manifest names it. */
  field: string;
  place: Place;
  /** The TOML line(s) that set the value. */
  toml: string;
  /** The recipe path the problem is reported at (`[meta].homepage`, `package[0].dependencies[1].name`). */
  at: string;
}

const meta = (toml: string, at = toml.split(' ')[0]!): Case => ({ field: at, place: 'meta', toml, at: `[meta].${at}` });
const pkg = (field: string, toml: string, at: string): Case => ({ field, place: 'package', toml, at: `package[0].${at}` });

/** Values the manifest check refuses, for every field a recipe supplies. */
const INVALID: Case[] = [
  meta('homepage = "https://a b"'),
  meta('homepage = "ftp://peios.org"'),
  meta('homepage = "peios.org"'),
  meta('homepage = "https://"'),
  meta('homepage = "javascript:alert(1)"'),
  pkg('name', 'name = "Bad Name"', 'name'),
  pkg('name', 'name = "x"', 'name'),
  pkg('description', 'description = "bell \\u0007"', 'description'),
  pkg('description', 'description = "two\\nlines"', 'description'),
  pkg('description', 'description = "tab\\there"', 'description'),
  pkg('description', 'description = "zero\\u200Bwidth"', 'description'),
  pkg('dependencies', 'dependencies = [{ name = "Libc" }]', 'dependencies[0].name'),
  pkg('dependencies', 'dependencies = [{ name = "libc", arch = "x86_64" }]', 'dependencies[0].arch'),
  pkg('dependencies', 'dependencies = [{ name = "libc", constraint = "=> 1.0" }]', 'dependencies[0].constraint'),
  pkg('dependencies', 'dependencies = [{ name = "libc", constraint = ">= 1.0," }]', 'dependencies[0].constraint'),
  pkg('dependencies', 'dependencies = [{ name = "libc", constraint = "~~garbage" }]', 'dependencies[0].constraint'),
  pkg('dependencies', 'dependencies = [{ name = "libc" }, { name = "libc" }]', 'dependencies[1].name'),
  pkg('optional_dependencies', 'optional_dependencies = [{ name = "-opt" }]', 'optional_dependencies[0].name'),
  pkg('optional_dependencies', 'optional_dependencies = [{ name = "opt", constraint = ">= :1.0" }]', 'optional_dependencies[0].constraint'),
  pkg('conflicts', 'conflicts = [{ name = "old", arch = "amd64" }]', 'conflicts[0].arch'),
  pkg('conflicts', 'conflicts = [{ name = "old", constraint = "! 1.0" }]', 'conflicts[0].constraint'),
  pkg('conflicts', 'conflicts = [{ name = "old" }, { name = "new" }, { name = "old" }]', 'conflicts[2].name'),
  pkg('provides', 'provides = [{ name = "Virtual" }]', 'provides[0].name'),
  pkg('provides', 'provides = [{ name = "virtual", version = "1.0" }]', 'provides[0].version'),
  pkg('provides', 'provides = [{ name = "virtual", version = "1.0-0" }]', 'provides[0].version'),
  pkg('provides', 'provides = [{ name = "virtual" }, { name = "virtual" }]', 'provides[1].name'),
  pkg('replaces', 'replaces = [{ name = "OLD" }]', 'replaces[0].name'),
  pkg('replaces', 'replaces = [{ name = "old", constraint = ">> 1.0" }]', 'replaces[0].constraint'),
  pkg('replaces', 'replaces = [{ name = "old" }, { name = "old" }]', 'replaces[1].name'),
  pkg('side_effects', 'side_effects = ["ldconfig-please"]', 'side_effects[0]'),
  pkg('side_effects', 'side_effects = ["ldconfig", "ldconfig"]', 'side_effects[1]'),
];

/** Values both accept; the build succeeds with each. */
const VALID: Case[] = [
  meta('homepage = "https://peios.org/edge?a=1&b=2"'),
  meta('homepage = "http://localhost:8080"'),
  meta('homepage = "https://peios.org/a%20b/"'),
  pkg('description', 'description = "Busybox — tiny utilities"', 'description'),
  pkg('description', 'description = ""', 'description'),
  pkg('dependencies', 'dependencies = [{ name = "zlib" }, { name = "libc", constraint = ">= 1.0, < 2.0", arch = "any" }, { name = "demo", same_build = true }]', 'dependencies'),
  pkg('optional_dependencies', 'optional_dependencies = [{ name = "libstdc++", constraint = "1:2.3-4" }]', 'optional_dependencies'),
  pkg('conflicts', 'conflicts = [{ name = "old-demo", constraint = "< 1.0-1" }]', 'conflicts'),
  pkg('provides', 'provides = [{ name = "demo-virtual", version = "1.0~rc.1-1" }, { name = "another" }]', 'provides'),
  pkg('replaces', 'replaces = [{ name = "demo-legacy", constraint = "!= 0.9" }]', 'replaces'),
  pkg('side_effects', 'side_effects = ["man-db", "ldconfig", "depmod"]', 'side_effects'),
];

/** A one-stanza recipe with `c`'s line in its place; build.sh touches `marker/ran` and stages one file. */
function recipeToml(c: Case | undefined): string {
  const metaLine = c?.place === 'meta' ? `${c.toml}\n` : '';
  const packageLine = c?.place === 'package' ? `${c.toml}\n` : '';
  const name = packageLine.startsWith('name =') ? '' : 'name = "demo"\n';
  return `[meta]\nlicense = "MIT"\nbuild_script = "build.sh"\n${metaLine}\n[[package]]\n${name}architecture = "noarch"\nfiles = ["usr/share/**"]\n${packageLine}`;
}

const SCRIPT = (marker: string): string => `#!/bin/sh\nset -eu\ntouch "${marker}/ran"\nmkdir -p "$DESTDIR/usr/share/demo"\necho hi > "$DESTDIR/usr/share/demo/MESSAGE"\n`;

/** Runs `check` and `build` on a recipe with `c`; returns both results and whether build.sh ran. */
async function attempt(t: ExecutionContext, c: Case): Promise<{ check: Awaited<ReturnType<typeof runTool>>; build: Awaited<ReturnType<typeof runTool>>; ran: boolean; out: string }> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const marker = join(work, 'marker');
  const source = join(work, 'src');
  await mkdir(marker);
  await chmod(marker, 0o777); // build.sh may run as the unprivileged build user
  await mkdir(source);
  const out = join(work, 'out');
  const recipe = await makeRecipe(t, { id: 'demo', toml: recipeToml(c), script: SCRIPT(marker) });
  const buildArgs = ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'test://demo', '--farm-id', 'test-farm', '--timestamp', '2026-05-06T12:00:00Z', '--out', out, '--sandbox', 'off'];
  const [check, build] = await Promise.all([runTool('peipkg-build', ['check', '--recipe', recipe]), runTool('peipkg-build', buildArgs)]);
  const ran = (await readdir(marker)).includes('ran');
  return { check, build, ran, out };
}

const escaped = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

for (const c of INVALID) {
  test(`${c.at}: ${c.toml} is refused by check, and by build before build.sh runs`, async (t) => {
    const { check, build, ran, out } = await attempt(t, c);
    t.is(check.exitCode, 1, check.stderr);
    t.regex(check.stderr, new RegExp(`peipkg\\.toml: ${escaped(c.at)}: `), check.stderr);
    t.is(build.exitCode, 1, build.stderr);
    t.regex(build.stderr, new RegExp(`peipkg\\.toml: ${escaped(c.at)}: `), build.stderr);
    t.notRegex(build.stderr, /\n\s+at /, 'no stack trace for a recipe mistake');
    t.false(ran, 'build.sh never ran');
    t.deepEqual(await readdir(out).catch(() => [] as string[]), [], 'nothing was written');
  });
}

for (const c of VALID) {
  test(`${c.field}: ${c.toml} is accepted by check and built`, async (t) => {
    const { check, build, ran, out } = await attempt(t, c);
    t.is(check.exitCode, 0, check.stderr);
    t.is(build.exitCode, 0, build.stderr);
    t.true(ran, 'build.sh ran');
    t.deepEqual(await readdir(out), ['demo_1.0-1_noarch.peipkg']);
  });
}

interface TomlRelation {
  name: string;
  constraint?: string;
  arch?: string;
  same_build?: boolean;
}

/**
 * The manifest `build` would write for the recipe, made without the recipe loader's checks (the
 * TOML read as is, then the build's own `stanzaManifest`), for the manifest check to judge.
 */
function unvalidatedManifest(c: Case): Manifest {
  const doc = parseToml(recipeToml(c)) as {
    meta: { license?: string; homepage?: string };
    package: Array<Record<string, unknown> & { name: string; architecture: string }>;
  };
  const s = doc.package[0]!;
  const relations = (key: string): RecipeRelation[] =>
    ((s[key] ?? []) as TomlRelation[]).map((r) => ({ name: r.name, constraint: r.constraint ?? '', arch: r.arch ?? '', sameBuild: r.same_build ?? false }));
  const stanza: Stanza = {
    name: s.name,
    architecture: s.architecture,
    description: (s.description as string | undefined) ?? '',
    dependencies: relations('dependencies'),
    optionalDependencies: relations('optional_dependencies'),
    conflicts: relations('conflicts'),
    provides: ((s.provides ?? []) as Array<{ name: string; version?: string }>).map((p) => ({ name: p.name, version: p.version ?? '' })),
    replaces: ((s.replaces ?? []) as Array<{ name: string; constraint?: string }>).map((r) => ({ name: r.name, constraint: r.constraint ?? '' })),
    sideEffects: (s.side_effects ?? []) as string[],
    files: [],
  };
  const info = { version: '1.0-1', timestamp: '2026-05-06T12:00:00Z', farmId: 'test-farm', sourceRef: 'test://demo', license: doc.meta.license ?? '', homepage: doc.meta.homepage ?? '' };
  return stanzaManifest(stanza, info, []);
}

/** The recipe's problems, or the recipe when it loads (with a real build.sh, so only the value can fail it). */
async function load(t: ExecutionContext, c: Case): Promise<{ problems: string[] } | { recipe: Recipe }> {
  const path = await makeRecipe(t, { id: 'demo', toml: recipeToml(c), script: 'true\n' });
  try {
    return { recipe: (await parseRecipe(recipeToml(c), path)).recipe };
  } catch (error) {
    if (error instanceof RecipeError) return { problems: error.problems };
    throw error;
  }
}

/**
 * The guarantee itself, in-process and for every case: the recipe loader refuses a value exactly
 * when the manifest check refuses the manifest the build would write from it, for the same field.
 */
test('the recipe loader and the manifest check agree on every value in the tables', async (t) => {
  for (const c of [...INVALID, ...VALID]) {
    const loaded = await load(t, c);
    const manifestIssues = manifestProblems(unvalidatedManifest(c), 'producer');
    if (INVALID.includes(c)) {
      t.true('problems' in loaded && loaded.problems.some((p) => p.includes(`${c.at}: `)), `${c.toml}: the recipe is refused at ${c.at}`);
      t.true(manifestIssues.some((p) => p.startsWith(c.field)), `${c.toml}: the manifest is refused at ${c.field}: ${JSON.stringify(manifestIssues)}`);
    } else {
      t.true('recipe' in loaded, `${c.toml}: ${'problems' in loaded ? loaded.problems.join('; ') : ''}`);
      t.deepEqual(manifestIssues, [], `${c.toml}: the manifest passes`);
      if ('recipe' in loaded) {
        const { recipe } = loaded;
        const built = stanzaManifest(recipe.packages[0]!, { version: '1.0-1', timestamp: '2026-05-06T12:00:00Z', farmId: 'f', sourceRef: 's', license: recipe.license, homepage: recipe.homepage }, []);
        t.deepEqual(manifestProblems(built, 'producer'), []);
      }
    }
  }
});

test('every architecture build accepts passes the manifest\'s architecture rule', (t) => {
  for (const architecture of BUILD_ARCHITECTURES) t.is(architectureProblem(architecture), undefined, architecture);
});
