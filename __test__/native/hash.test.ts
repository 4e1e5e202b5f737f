import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { FileSystemError } from '../../ts/errors.js';
import { createProgress, readProgress, sha256, sha256File, sha256Files } from '../../ts/native.js';
import { tempDir } from '../helpers/fs.js';

const nodeSha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

// 1 MiB is the core's read chunk: 3 MiB + 7 crosses it several times and ends mid-chunk.
const SIZES = [0, 1, 511, 512, 513, 1 << 20, 3 * (1 << 20) + 7];

test('SHA-256 of buffers and files equals node:crypto for every boundary size', async (t) => {
  const dir = await tempDir(t);
  for (const size of SIZES) {
    const data = randomBytes(size);
    const path = join(dir, `f${size}`);
    await writeFile(path, data);
    t.is(sha256(data), nodeSha256(data), `buffer of ${size} bytes`);
    t.deepEqual(await sha256File(path), { sha256: nodeSha256(data), size }, `file of ${size} bytes`);
  }
});

test('many files at once equal one by one, in input order, with per-file errors', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sub'));
  const paths: string[] = [];
  for (let i = 0; i < 40; i++) {
    const path = join(dir, `file-${i}`);
    await writeFile(path, randomBytes((i * 97_531) % (2 << 20)));
    paths.push(path);
  }
  paths.splice(7, 0, join(dir, 'missing'));
  paths.splice(20, 0, join(dir, 'sub'));
  const progress = createProgress();
  const many = await sha256Files(paths, { threads: 4, progress });
  t.is(many.length, paths.length);
  for (const [i, result] of many.entries()) {
    const path = paths[i]!;
    if (path.endsWith('missing') || path.endsWith('sub')) {
      t.true('error' in result, path);
      if ('error' in result) {
        t.true(result.error instanceof FileSystemError);
        t.true(result.error.message.includes(path));
      }
    } else {
      t.deepEqual(result, await sha256File(path), path);
    }
  }
  t.is(readProgress(progress).items, paths.length);
});

test('progress learns the total of the readable files before hashing, and ends there', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sub'));
  // Empty, below, at and above the 1 MiB read chunk, in no particular order of size.
  const sizes = [5, 0, 3 * (1 << 20) + 1, (1 << 20) - 1, 1 << 20];
  const paths = sizes.map((_, i) => join(dir, `f${i}`));
  for (const [i, size] of sizes.entries()) await writeFile(paths[i]!, randomBytes(size));
  const progress = createProgress();
  t.deepEqual(readProgress(progress), { bytes: 0, items: 0, total: 0 });
  const results = await sha256Files([...paths, join(dir, 'sub'), join(dir, 'missing')], { threads: 2, progress });
  const sum = sizes.reduce((a, b) => a + b, 0);
  t.deepEqual(readProgress(progress), { bytes: sum, items: paths.length + 2, total: sum });
  t.deepEqual(
    results.slice(0, paths.length),
    await Promise.all(paths.map((p) => sha256File(p))),
  );
  t.true('error' in results[paths.length]! && 'error' in results[paths.length + 1]!);
});

test('a missing file is a typed error naming it', async (t) => {
  const error = await t.throwsAsync(sha256File('/nonexistent/peipkg-test'), { instanceOf: FileSystemError });
  t.is(error?.osError, 'ENOENT');
  t.is(error?.path, '/nonexistent/peipkg-test');
  t.regex(error?.message ?? '', /No such file or directory/);
});
