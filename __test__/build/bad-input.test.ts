/**
 * Every kind of bad input to `peipkg-build build`: the exit code, a message naming the culprit,
 * and proof that nothing was written — no package or temporary file in --out, nothing left in TMPDIR.
 */

import { chmod, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { runTool, type ToolResult } from '../helpers/cli.js';
import { emptiedDir, tempDir } from '../helpers/fs.js';
import { makeRecipe, simpleRecipe, type RecipeFiles } from '../helpers/recipes.js';

const MESSAGE = 'mkdir -p "$DESTDIR/usr/share/demo" && echo hi > "$DESTDIR/usr/share/demo/MESSAGE"';

interface Attempt extends ToolResult {
  out: string;
}

/** Runs a build with valid defaults, `changes` applied to the flags, and a private TMPDIR. */
async function attempt(t: ExecutionContext, recipe: RecipeFiles, changes: Record<string, string | null> = {}): Promise<Attempt> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const tmp = join(work, 'tmp');
  const source = join(work, 'src');
  await mkdir(tmp, { mode: 0o1777 });
  await chmod(tmp, 0o1777);
  await mkdir(source);
  const out = join(work, 'out');
  const flags: Record<string, string | null> = {
    recipe: await makeRecipe(t, recipe),
    source,
    version: '1.0-1',
    'source-ref': 'test://demo',
    'farm-id': 'test-farm',
    timestamp: '2026-05-06T12:00:00Z',
    out,
    ...changes,
  };
  const args = ['build', ...Object.entries(flags).flatMap(([k, v]) => (v === null ? [] : [`--${k}`, v]))];
  const result = await runTool('peipkg-build', args, { env: { TMPDIR: tmp } });
  t.deepEqual(await emptiedDir(tmp), [], 'nothing is left in TMPDIR');
  const left = await readdir(out).catch(() => [] as string[]);
  t.deepEqual(left, [], 'nothing is written to --out');
  return { ...result, out };
}

function expectFailure(t: ExecutionContext, result: ToolResult, code: number, message: RegExp): void {
  t.is(result.exitCode, code, result.stderr);
  t.regex(result.stderr, message);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace for a user mistake');
  t.is(result.stdout, '');
}

test('a typo key in [meta] is named', async (t) => {
  const recipe = simpleRecipe({ script: MESSAGE });
  recipe.toml = recipe.toml.replace('license = "MIT"', 'license = "MIT"\nhomepag = "https://x.org"');
  expectFailure(t, await attempt(t, recipe), 1, /\[meta\]\.homepag: unknown key/);
});

test('a typo key in [[package]] is named with its index', async (t) => {
  const recipe = simpleRecipe({ script: MESSAGE, extraToml: 'fles = ["x"]\n' });
  expectFailure(t, await attempt(t, recipe), 1, /package\[0\]\.fles: unknown key/);
});

test('unknown top-level sections pass', async (t) => {
  const recipe = simpleRecipe({ script: MESSAGE, extraToml: '\n[something_else]\nanything = 1\n' });
  const work = await tempDir(t);
  const result = await runTool('peipkg-build', ['build', '--recipe', await makeRecipe(t, recipe), '--source', work, '--version', '1.0-1',
    '--source-ref', 'x', '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', join(work, 'out')]);
  t.is(result.exitCode, 0, result.stderr);
});

test('an orphan path is named', async (t) => {
  const recipe = simpleRecipe({ script: `${MESSAGE}\necho x > "$DESTDIR/usr/share/demo/EXTRA"`, files: ['usr/share/demo/MESSAGE'] });
  expectFailure(t, await attempt(t, recipe), 1, /staged paths claimed by no package:\n {2}usr\/share\/demo\/EXTRA\n/);
});

test('an overlap names the path and both stanzas', async (t) => {
  const recipe = simpleRecipe({ name: 'alpha', script: MESSAGE });
  recipe.toml += '\n[[package]]\nname = "beta"\narchitecture = "noarch"\nfiles = ["usr/share/demo/*"]\n';
  expectFailure(t, await attempt(t, recipe), 1, /path "usr\/share\/demo\/MESSAGE" matches multiple packages \[alpha beta\]/);
});

test('a failing build.sh shows its stderr and exit status', async (t) => {
  const recipe = simpleRecipe({ script: 'echo "widget.c:12: error: expected ;" >&2\nexit 3' });
  const result = await attempt(t, recipe);
  expectFailure(t, result, 1, /widget\.c:12: error: expected ;/);
  t.regex(result.stderr, /run build script: exit status 3/);
});

test('a missing required flag is named, exit 1', async (t) => {
  expectFailure(t, await attempt(t, simpleRecipe({ script: MESSAGE }), { 'farm-id': null }), 1, /--farm-id is required/);
});

test('a zstd level out of range is a usage error, exit 2, like every other malformed value', async (t) => {
  expectFailure(t, await attempt(t, simpleRecipe({ script: MESSAGE }), { 'zstd-level': '30' }), 2, /--zstd-level: must be an integer from 1 to 22, got 30/);
});

test('check --staged with a path that does not exist is a user error naming it, exit 1, no stack trace', async (t) => {
  const recipe = await makeRecipe(t, simpleRecipe({ script: MESSAGE }));
  const missing = join(await tempDir(t), 'nonexistent');
  const result = await runTool('peipkg-build', ['check', '--recipe', recipe, '--staged', missing]);
  t.is(result.exitCode, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`--staged ${missing}: no such directory`));
  t.notRegex(result.stderr, /internal error|\n\s+at /);
});

test('a malformed timestamp is a usage error, exit 2', async (t) => {
  for (const bad of ['2026-05-06T12:00:00+00:00', '2026-05-06T12:00:00.5Z', '2026-02-30T00:00:00Z', 'yesterday']) {
    expectFailure(t, await attempt(t, simpleRecipe({ script: MESSAGE }), { timestamp: bad }), 2, /--timestamp: timestamp .* must be|not a valid date/);
  }
});

test('a version with / or .. is refused before anything is written', async (t) => {
  for (const bad of ['../../evil/1.0-1', '1.0/../x-1', '..-1']) {
    const result = await attempt(t, simpleRecipe({ script: MESSAGE }), { version: bad });
    expectFailure(t, result, 1, /--version ".*": /);
    t.deepEqual(await readdir(join(result.out, '..')).then((names) => names.filter((n) => n === 'evil')), []);
  }
});

test('a path outside the permitted layout is refused', async (t) => {
  const recipe = simpleRecipe({ script: 'mkdir -p "$DESTDIR/home/user" && echo x > "$DESTDIR/home/user/file"', files: ['home/**'] });
  expectFailure(t, await attempt(t, recipe), 1, /payload validation failed:\n {2}package demo: home\/user\/file is not under any §3\.4\.1 permitted top-level destination/);
});

test('a symlink escaping the root is refused', async (t) => {
  const recipe = simpleRecipe({ script: 'mkdir -p "$DESTDIR/usr/share/demo" && ln -s ../../../../etc/passwd "$DESTDIR/usr/share/demo/link"' });
  expectFailure(t, await attempt(t, recipe), 1, /symlink usr\/share\/demo\/link -> \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd: target escapes the peipkg-managed tree/);
});

test('a stanza with no files key is refused with advice', async (t) => {
  const recipe = simpleRecipe({ script: MESSAGE });
  recipe.toml = recipe.toml.replace(/files = .*\n/, '');
  expectFailure(t, await attempt(t, recipe), 1, /package\[0\]\.files: is required \(write `files = \[\]` for a package with no payload\)/);
});

test('a build_script outside the recipe folder is refused', async (t) => {
  for (const script of ['../build.sh', '/bin/true']) {
    const recipe = simpleRecipe({ script: MESSAGE });
    recipe.toml = recipe.toml.replace('build_script = "build.sh"', `build_script = ${JSON.stringify(script)}`);
    expectFailure(t, await attempt(t, recipe), 1, /\[meta\]\.build_script: .* outside the recipe directory/);
  }
});

test('an unknown or malformed flag is a usage error, exit 2', async (t) => {
  expectFailure(t, await attempt(t, simpleRecipe({ script: MESSAGE }), { bogus: 'x' }), 2, /Unknown argument: bogus/);
  expectFailure(t, await attempt(t, simpleRecipe({ script: MESSAGE }), { 'build-env': 'NOEQUALS' }), 2, /--build-env "NOEQUALS": expected NAME=VALUE/);
  expectFailure(t, await attempt(t, simpleRecipe({ script: MESSAGE }), { 'build-env': 'PATH=/x' }), 1, /"PATH" is reserved and cannot be overridden/);
});
