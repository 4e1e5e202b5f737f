/**
 * The end of `peipkg-build build`'s scratch tree (ts/build/scratch.ts): the command returns once its
 * packages are complete, with the scratch renamed to a garbage name in TMPDIR, and a detached
 * remover takes it away; a remover's leftovers (killed, or never started) go with the next build,
 * except a tree a live remover holds. PEIPKG_SCRATCH_REMOVAL=wait and =caller change who removes it.
 */

import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { GARBAGE_PREFIX, removeGarbageIn } from '../../ts/build/scratch.js';
import { DirLock } from '../../ts/native.js';
import { runTool, type ToolResult } from '../helpers/cli.js';
import { testPublicKeyPath } from '../helpers/fixtures.js';
import { emptiedDir, makeDeepTree, tempDir } from '../helpers/fs.js';
import { makeRecipe, simpleRecipe } from '../helpers/recipes.js';
import { privateTestKey } from '../helpers/vectors.js';

const PACKAGE = 'demo_1.0-1_noarch.peipkg';

interface Build extends ToolResult {
  out: string;
  tmp: string;
}

/** A private TMPDIR, reachable by the build user build.sh runs as. */
async function privateTmp(t: ExecutionContext): Promise<string> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const tmp = join(work, 'tmp');
  await mkdir(tmp, { mode: 0o755 });
  return tmp;
}

/** A signed build of a few hundred files, with `tmp` as TMPDIR and `env` added. */
async function build(t: ExecutionContext, tmp: string, env: Record<string, string> = {}, script?: string): Promise<Build> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const source = join(work, 'src');
  await mkdir(source);
  const recipe = await makeRecipe(t, simpleRecipe({
    script: script ?? 'd="$DESTDIR/usr/share/demo"; mkdir -p "$d"; for i in $(seq 1 300); do echo "file $i" > "$d/f$i"; done',
  }));
  const out = join(work, 'out');
  const result = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'test://scratch',
    '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', out, '--sign-key', await privateTestKey(t)], { env: { TMPDIR: tmp, ...env } });
  return { ...result, out, tmp };
}

const garbageOnly = (names: string[]): boolean => names.every((name) => name.startsWith(GARBAGE_PREFIX));

test('the command returns with its package complete and verified; the scratch, renamed as garbage, is gone soon after', async (t) => {
  const tmp = await privateTmp(t);
  const result = await build(t, tmp);
  t.is(result.exitCode, 0, result.stderr);
  // Right at the return: the package is whole (it verifies, signature and all), and the scratch is
  // no longer a peipkg-build-* tree, whatever the remover has done so far.
  const left = await readdir(tmp);
  t.true(garbageOnly(left), JSON.stringify(left));
  t.is(result.stdout, `${join(result.out, PACKAGE)}\n`);
  const verify = await runTool('peipkg-build', ['verify', join(result.out, PACKAGE), '--public-key', testPublicKeyPath, '--require-signed']);
  t.is(verify.exitCode, 0, verify.stderr);
  t.deepEqual(await readdir(result.out), [PACKAGE], 'nothing but the package in --out');
  t.deepEqual(await emptiedDir(tmp), [], 'the background remover took the scratch away');
});

test('a failed build leaves no scratch either, and its exit code is the failure', async (t) => {
  const tmp = await privateTmp(t);
  const result = await build(t, tmp, {}, 'mkdir -p "$DESTDIR/usr/share/demo"; echo half > "$DESTDIR/usr/share/demo/x"; exit 3');
  t.is(result.exitCode, 1, result.stderr);
  t.regex(result.stderr, /exit status 3/);
  t.deepEqual(await emptiedDir(tmp), []);
});

test("a remover's leftovers (killed midway, or never run) are removed by the next build", async (t) => {
  const tmp = await privateTmp(t);
  // What a remover killed midway leaves: part of a tree, deeper than PATH_MAX, one directory shut (mode 000).
  const killed = join(tmp, `${GARBAGE_PREFIX}build-Killed1-0badc0de`);
  await mkdir(join(killed, 'destdir', 'shut', 'inner'), { recursive: true });
  await writeFile(join(killed, 'destdir', 'shut', 'inner', 'file'), 'x');
  await chmod(join(killed, 'destdir', 'shut'), 0o000);
  await mkdir(join(killed, 'work'));
  await makeDeepTree(join(killed, 'work'), 200);
  // A remover that never ran: the scratch as a build with PEIPKG_SCRATCH_REMOVAL=caller leaves it.
  const first = await build(t, tmp, { PEIPKG_SCRATCH_REMOVAL: 'caller' });
  t.is(first.exitCode, 0, first.stderr);
  const before = await readdir(tmp);
  t.is(before.length, 2, JSON.stringify(before));
  t.true(garbageOnly(before), JSON.stringify(before));

  const next = await build(t, tmp);
  t.is(next.exitCode, 0, next.stderr);
  t.deepEqual(await emptiedDir(tmp), [], "the next build's remover took all three");
});

test('a garbage tree a live remover holds is left to it; once released, the next build removes it', async (t) => {
  const tmp = await privateTmp(t);
  const held = join(tmp, `${GARBAGE_PREFIX}build-Held01-00000001`);
  await mkdir(join(held, 'destdir'), { recursive: true });
  await writeFile(join(held, 'destdir', 'file'), 'x');
  const lock = DirLock.acquire(held);
  t.teardown(() => {
    if (lock.held) lock.release();
  });
  const result = await build(t, tmp);
  t.is(result.exitCode, 0, result.stderr);
  // Its own scratch goes; the held tree stays whole (a second remover on it would race the first).
  const deadline = Date.now() + 60_000;
  let names = await readdir(tmp);
  while (names.length > 1 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    names = await readdir(tmp);
  }
  t.deepEqual(names, [`${GARBAGE_PREFIX}build-Held01-00000001`]);
  t.deepEqual(await readdir(join(held, 'destdir')), ['file']);

  lock.release();
  const next = await build(t, tmp);
  t.is(next.exitCode, 0, next.stderr);
  t.deepEqual(await emptiedDir(tmp), []);
});

test('PEIPKG_SCRATCH_REMOVAL=wait removes the scratch before returning; =caller leaves it to removeGarbageIn', async (t) => {
  const waited = await privateTmp(t);
  const wait = await build(t, waited, { PEIPKG_SCRATCH_REMOVAL: 'wait' });
  t.is(wait.exitCode, 0, wait.stderr);
  t.deepEqual(await readdir(waited), [], 'gone at the return');

  const left = await privateTmp(t);
  const caller = await build(t, left, { PEIPKG_SCRATCH_REMOVAL: 'caller' });
  t.is(caller.exitCode, 0, caller.stderr);
  const names = await readdir(left);
  t.is(names.length, 1, JSON.stringify(names));
  t.true(garbageOnly(names), JSON.stringify(names));
  // No remover was started for it: it is still whole, and the caller removes it.
  t.true((await readdir(join(left, names[0]!, 'destdir', 'usr', 'share', 'demo'))).length === 300);
  await removeGarbageIn(left);
  t.deepEqual(await readdir(left), []);
});

test('an unknown PEIPKG_SCRATCH_REMOVAL is said, and the scratch is removed in the background', async (t) => {
  const tmp = await privateTmp(t);
  const result = await build(t, tmp, { PEIPKG_SCRATCH_REMOVAL: 'later' });
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stderr, /PEIPKG_SCRATCH_REMOVAL="later" is not one of background, wait, caller/);
  t.deepEqual(await emptiedDir(tmp), []);
});
