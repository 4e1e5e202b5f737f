/**
 * A build.sh that stages a tree nested deeper than PATH_MAX (issue 10, item 7): `peipkg-build
 * build` reports it as the script's fault (exit 1, a message naming where the tree starts, no
 * stack), writes nothing to `--out`, and leaves nothing of its scratch area behind — with the
 * sandbox and without it, run by root and (in a user namespace) by an unprivileged user. `fs.rm`
 * cannot remove such a tree (ENAMETOOLONG); `removeTree` can.
 */

import { chmod, mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { InputError } from '../../ts/errors.js';
import { StagedTooDeepError, walkStaged } from '../../ts/build/stage.js';
import { removeTree } from '../../ts/native.js';
import { runTool, type ToolResult } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixtures.js';
import { DEEP_NAME, emptiedDir, makeDeepTree, tempDir } from '../helpers/fs.js';
import { makeRecipe, simpleRecipe } from '../helpers/recipes.js';

/** 100 levels of `DEEP_NAME` (3,100 bytes: one relative path still reaches the end). */
const CHUNK = Array<string>(100).fill(DEEP_NAME).join('/');

/**
 * POSIX sh (under build.sh's `set -eu`): 300 nested directories below `dir` (about 9,300 bytes of
 * path, over twice PATH_MAX), with a file at the bottom. `cd -P` goes down relative to where it is.
 */
const deepTree = (dir: string): string => `(cd -P "${dir}"; for i in 1 2 3; do mkdir -p ${CHUNK}; cd -P ${CHUNK}; done; echo bottom > bottom)`;

const asRoot = process.getuid?.() === 0;

async function buildFlags(t: ExecutionContext, recipe: string, sandbox: string): Promise<{ args: string[]; out: string; scratchParent: string; work: string }> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const source = join(work, 'src');
  await mkdir(source);
  await writeFile(join(source, 'input.txt'), 'source file\n');
  // peipkg-build's scratch lives in TMPDIR: a directory of the test's own, to see that it is left empty.
  const scratchParent = join(work, 'tmp');
  await mkdir(scratchParent, { mode: 0o755 });
  const out = join(work, 'out');
  return {
    args: ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'test://deep', '--farm-id', 'f',
      '--timestamp', '2026-05-06T12:00:00Z', '--out', out, '--sandbox', sandbox],
    out,
    scratchParent,
    work,
  };
}

/** peipkg-build as the unprivileged build user (the sandbox starts in a user namespace; no root to remove the scratch). */
async function asBuildUser(work: string, scratchParent: string, args: string[]): Promise<ToolResult> {
  await execa('chown', ['peipkg-build', work, scratchParent]);
  const r = await execa('runuser', ['-u', 'peipkg-build', '--', 'env', `TMPDIR=${scratchParent}`, process.execPath, join(repoRoot, 'bin', 'peipkg-build.js'), ...args], {
    reject: false,
    cwd: '/',
    timeout: 120_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const CASES = [
  { sandbox: 'auto', who: asRoot ? 'root' : 'this user' },
  { sandbox: 'off', who: asRoot ? 'root' : 'this user' },
  ...(asRoot ? [{ sandbox: 'auto', who: 'the build user' }] : []),
] as const;

for (const { sandbox, who } of CASES) {
  test(`a staged tree deeper than PATH_MAX is the script's error, and its scratch is removed (--sandbox ${sandbox}, run by ${who})`, async (t) => {
    t.timeout(120_000);
    const recipe = await makeRecipe(t, simpleRecipe({
      script: [
        'd="$DESTDIR/usr/share/demo"; mkdir -p "$d"; echo ok > "$d/ok"',
        deepTree('$d'),
        // The work directory is scratch too.
        deepTree('$PWD'),
      ].join('\n'),
    }));
    const { args, out, scratchParent, work } = await buildFlags(t, recipe, sandbox);
    const result =
      who === 'the build user'
        ? await asBuildUser(work, scratchParent, args)
        : await runTool('peipkg-build', args, { env: { PATH: process.env.PATH ?? '', TMPDIR: scratchParent } });
    t.is(result.exitCode, 1, result.stderr);
    t.regex(
      result.stderr,
      new RegExp(`build.sh staged a tree nested at least \\d+ levels deep under \\$DESTDIR/usr/share/demo/(${DEEP_NAME.slice(0, 24)}…/){3}…: `),
    );
    t.regex(result.stderr, /paths in a package are limited to 4096 bytes\. Stage only what the packages ship/);
    t.notRegex(result.stderr, /internal error|bug in peipkg|ENAMETOOLONG: name too long/);
    t.notRegex(result.stderr, /^\s+at /m, 'no stack trace');
    t.deepEqual(await readdir(out).catch(() => []), [], 'nothing in --out');
    t.deepEqual(await emptiedDir(scratchParent), [], 'no scratch left in TMPDIR');
  });
}

test('removeTree removes a 2000-level tree that fs.rm cannot', async (t) => {
  const dir = join(await tempDir(t), 'deep');
  await mkdir(dir);
  await makeDeepTree(dir, 2000);
  const error = await t.throwsAsync(rm(dir, { recursive: true, force: true }));
  t.is((error as NodeJS.ErrnoException | undefined)?.code, 'ENAMETOOLONG', 'fs.rm fails on it (the reason for removeTree)');
  const started = process.hrtime.bigint();
  await removeTree(dir);
  t.log(`removeTree: 2000 levels in ${Number(process.hrtime.bigint() - started) / 1e6} ms`);
  t.deepEqual(await readdir(join(dir, '..')), []);
});

test('a staged path over the 4096 bytes a package allows, which the file system can still reach, is refused by name', async (t) => {
  const root = await tempDir(t);
  // 15 levels of 255-byte names and one of 30 (3,870 bytes), then a 255-byte file name: 4,126 bytes.
  const dir = join(root, ...Array<string>(15).fill('d'.repeat(255)), 'e'.repeat(30));
  await mkdir(dir, { recursive: true });
  // Through the directory's descriptor: the file's own path is too long to name.
  const handle = await open(dir, 'r');
  t.teardown(() => handle.close());
  await writeFile(`/proc/self/fd/${handle.fd}/${'f'.repeat(255)}`, 'x');
  const error = t.throws(() => walkStaged(root), { instanceOf: StagedTooDeepError });
  t.is(
    error?.message,
    `the staged tree ${root} holds a tree nested at least 17 levels deep under ${root}/${Array<string>(6).fill(`${'d'.repeat(24)}…`).join('/')}/…: ` +
      `a path there is 4126 bytes long, and paths in a package are limited to 4096 bytes. Stage only what the packages ship, ` +
      `and keep deeper trees (build directories, test data) out of ${root}`,
  );
  t.true(error instanceof InputError, 'a user error (exit 1, no stack)');
});
