/**
 * The machine fails a publish: the filesystem holding the state fills up, or is mounted read-only.
 * That is not a bug in peipkg: the user gets the step that failed (the contract's prefix, §8.10),
 * what it means, what it left, and what to do, without a stack; the state stays as it was; and
 * once there is room, the same publish goes through. Each test mounts its own small tmpfs.
 */

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { runTool } from '../helpers/cli.js';
import { smallFilesystem, tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { publishInPlace, snapshot, vectorSeedFile } from '../helpers/repo.js';

/** A fresh state inside `fs`, with nothing published, and its signing key. */
async function stateOn(t: ExecutionContext, fs: string): Promise<{ key: string; state: string }> {
  const key = await vectorSeedFile(t);
  const state = join(fs, 'state');
  const init = await runTool('peipkg-repo', ['init', '--name', 'rt', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', state]);
  t.is(init.exitCode, 0, init.stderr);
  return { key, state };
}

const PREFIX = String.raw`(?:save state|write browse site|materialise sidecars: \S+|materialise \S+\.peipkg)`;

function expectFailure(t: ExecutionContext, result: { exitCode: number; stderr: string }, reason: RegExp): void {
  t.is(result.exitCode, 1, result.stderr);
  const last = result.stderr.trimEnd().split('\n').at(-1)!;
  t.regex(last, reason);
  t.notRegex(result.stderr, /internal error|\n\s+at |This is a bug/, 'reported as the machine\'s problem, not as a bug');
}

test('a package larger than the space left: the step, ENOSPC and advice; the state unchanged; the same publish after more space succeeds', async (t) => {
  const fs = await smallFilesystem(t, '1m');
  const { key, state } = await stateOn(t, fs);
  const incoming = await tempDir(t);
  // Random bytes do not compress: the package is ~1.5 MB, more than the filesystem holds.
  await makePackage(incoming, { name: 'big', version: '1.0-1', content: randomBytes(1_100_000).toString('base64') });
  const before = await snapshot(state);

  const failed = await publishInPlace(state, incoming, key, '2026-05-07T01:00:00Z');
  expectFailure(
    t,
    failed,
    new RegExp(
      String.raw`^peipkg-repo: materialise ${incoming}/big_1\.0-1_noarch\.peipkg: no space left on device \(ENOSPC\); ` +
        String.raw`nothing was published, the state is as it was; free space on the filesystem holding ${state} and run the command again$`,
    ),
  );
  t.deepEqual(await snapshot(state), before, 'nothing written or left behind (no staging, no temporary index)');

  await execa('mount', ['-o', 'remount,size=8m', fs]);
  const again = await publishInPlace(state, incoming, key, '2026-05-07T01:00:00Z');
  t.is(again.exitCode, 0, again.stderr);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', state]);
  t.is(verify.exitCode, 0, verify.stdout + verify.stderr);
});

test('a filesystem that fills at any point of the write: each time the state is unchanged, and the publish goes through once space is freed', async (t) => {
  const fs = await smallFilesystem(t, '1m');
  const incoming = await tempDir(t);
  await makePackage(incoming, { name: 'small', version: '1.0-1' });
  // A fresh state takes 28 KiB; its first publish writes ~48 KiB more (the package and its
  // sidecars, the browse site, the indexes), in 4 KiB pages: leave from none of it to all of it.
  const steps = new Set<string>();
  for (let free = 0; free <= 52; free += 4) {
    await rm(join(fs, 'state'), { recursive: true, force: true });
    const { key, state } = await stateOn(t, fs);
    const filler = join(fs, 'filler');
    await writeFile(filler, Buffer.alloc((1024 - 28 - free) * 1024));
    const before = await snapshot(state);
    const result = await publishInPlace(state, incoming, key, '2026-05-07T01:00:00Z');
    if (result.exitCode !== 0) {
      expectFailure(t, result, new RegExp(String.raw`^peipkg-repo: ${PREFIX}: no space left on device \(ENOSPC\); nothing was published, the state is as it was; free space on the filesystem holding ${state} and run the command again$`));
      steps.add(/^peipkg-repo: ([^:]+)/m.exec(result.stderr.split('\n').at(-2) ?? '')?.[1] ?? '?');
      t.deepEqual(await snapshot(state), before, `${free} KiB free: nothing written or left behind`);
      await rm(filler);
      const again = await publishInPlace(state, incoming, key, '2026-05-07T01:00:00Z');
      t.is(again.exitCode, 0, again.stderr);
    } else {
      await rm(filler);
    }
    const verify = await runTool('peipkg-repo', ['verify', '--repo', state]);
    t.is(verify.exitCode, 0, `${free} KiB free: ${verify.stdout}${verify.stderr}`);
  }
  t.log(`steps that failed: ${[...steps].join(', ')}`);
  t.true(steps.size >= 2, 'the filesystem filled in more than one step');
});

test('a state on a filesystem mounted read-only: EROFS with advice, no stack', async (t) => {
  const fs = await smallFilesystem(t, '4m');
  const { key, state } = await stateOn(t, fs);
  const incoming = await tempDir(t);
  await makePackage(incoming, { name: 'small', version: '1.0-1' });
  await execa('mount', ['-o', 'remount,ro', fs]);
  const before = await snapshot(state);
  const failed = await publishInPlace(state, incoming, key, '2026-05-07T01:00:00Z');
  expectFailure(t, failed, /: read-only file system \(EROFS\); .* is on a filesystem mounted read-only; write somewhere mounted read-write$/);
  t.deepEqual(await snapshot(state), before);
});
