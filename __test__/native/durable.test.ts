import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { FileSystemError, LockedError } from '../../ts/errors.js';
import { DirLock, exchangePaths, fsyncPath } from '../../ts/native.js';
import { tempDir } from '../helpers/fs.js';
import { repoRoot } from '../helpers/fixtures.js';

/** Starts a separate process that takes the lock on `dir`, says so, and holds it for `holdMs`. */
function holderProcess(dir: string, holdMs: number) {
  const script = `import { DirLock } from ${JSON.stringify(join(repoRoot, 'ts/native.ts'))};
    const lock = DirLock.acquire(process.argv[1]);
    process.stdout.write('locked\\n');
    setTimeout(() => { lock.release(); process.stdout.write('released\\n'); setTimeout(() => {}, 60000); }, Number(process.argv[2]));`;
  const child = execa(process.execPath, ['--import=tsx', '--input-type=module', '-e', script, dir, String(holdMs)], { reject: false });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => (d.toString().includes('locked') ? resolve() : undefined));
    child.on('exit', () => reject(new Error('holder exited before locking')));
  });
  return { child, locked };
}

test('a lock held by another process excludes us until that process dies', async (t) => {
  const dir = await tempDir(t);
  const { child, locked } = holderProcess(dir, 600_000);
  t.teardown(() => child.kill('SIGKILL'));
  await locked;
  t.throws(() => DirLock.acquire(dir), { instanceOf: LockedError, message: /is locked by another process/ });
  await t.throwsAsync(DirLock.acquireWithin(dir, 200), { instanceOf: LockedError });
  child.kill('SIGKILL');
  await child;
  const lock = DirLock.acquire(dir);
  t.true(lock.held);
  lock.release();
  t.false(lock.held);
});

test('a waiting acquire succeeds once the holder releases', async (t) => {
  const dir = await tempDir(t);
  const { child, locked } = holderProcess(dir, 300);
  t.teardown(() => child.kill('SIGKILL'));
  await locked;
  const started = Date.now();
  const lock = await DirLock.acquireWithin(dir, 10_000);
  t.true(Date.now() - started >= 100);
  t.true(lock.held);
  lock.release();
});

test('two locks in one process exclude each other too', async (t) => {
  const dir = await tempDir(t);
  const first = DirLock.acquire(dir);
  t.throws(() => DirLock.acquire(dir), { instanceOf: LockedError });
  first.release();
  DirLock.acquire(dir).release();
});

test('locking something that is not a directory is an error naming it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'file'), 'x');
  t.throws(() => DirLock.acquire(join(dir, 'file')), { instanceOf: FileSystemError, message: /Not a directory/ });
  t.throws(() => DirLock.acquire(join(dir, 'missing')), { instanceOf: FileSystemError, message: /missing/ });
});

test('exchange swaps two directories atomically: a reader sees all old or all new, never a mix or nothing', async (t) => {
  const dir = await tempDir(t);
  const live = join(dir, 'index');
  const next = join(dir, 'index.tmp');
  await mkdir(live);
  await mkdir(next);
  for (let i = 0; i < 50; i++) {
    await writeFile(join(live, `old-${i}`), 'old');
    await writeFile(join(next, `new-${i}`), 'new');
  }
  const reader = `import { readdirSync } from 'node:fs';
    const seen = { old: 0, new: 0 };
    const end = Date.now() + 1500;
    while (Date.now() < end) {
      const names = readdirSync(process.argv[1]);
      const kinds = new Set(names.map((n) => n.split('-')[0]));
      if (names.length !== 50 || kinds.size !== 1) { console.log('MIX ' + names.length + ' ' + [...kinds]); process.exit(1); }
      seen[[...kinds][0]]++;
    }
    console.log(JSON.stringify(seen));`;
  const child = execa(process.execPath, ['--input-type=module', '-e', reader, live], { reject: false });
  let swaps = 0;
  const until = Date.now() + 1200;
  while (Date.now() < until) {
    exchangePaths(live, next);
    swaps++;
    await new Promise((r) => setImmediate(r));
  }
  const result = await child;
  t.is(result.exitCode, 0, result.stdout);
  const seen = JSON.parse(result.stdout) as { old: number; new: number };
  t.true(seen.old > 0 && seen.new > 0, `reader saw both generations over ${swaps} swaps: ${result.stdout}`);
  fsyncPath(dir);
  t.is((await readdir(live)).length, 50);
  t.throws(() => exchangePaths(live, join(dir, 'missing')), { instanceOf: FileSystemError, message: /No such file/ });
});
