import { randomBytes } from 'node:crypto';
import { readFile, writeFile, access } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { CorruptDataError, LimitExceededError } from '../../ts/errors.js';
import { compressFile, decompress, decompressFile, zstdVersion, ZstdFileWriter } from '../../ts/native.js';
import { tempDir } from '../helpers/fs.js';
import { repoRoot } from '../helpers/fixtures.js';

/** ~40 MiB of mixed text and binary: three 16 MiB jobs at level 10, so workers really split it. */
async function sampleFile(dir: string): Promise<string> {
  const chunks: Buffer[] = [];
  const text = Buffer.from((await readFile(join(repoRoot, 'crates/peipkg-native/src/tar.rs'), 'utf8')).repeat(4));
  for (let size = 0; size < 40 << 20; ) {
    const part = chunks.length % 3 === 0 ? randomBytes(1 << 18) : text;
    chunks.push(part);
    size += part.length;
  }
  const path = join(dir, 'sample.bin');
  await writeFile(path, Buffer.concat(chunks));
  return path;
}

test('the bundled libzstd is 1.5.4', (t) => {
  t.is(zstdVersion(), '1.5.4');
});

test('output is identical at 1, 2 and 4 workers and on one or two cores, and the zstd CLI reads it', async (t) => {
  const dir = await tempDir(t);
  const input = await sampleFile(dir);
  const outputs: Buffer[] = [];
  for (const workers of [1, 2, 4]) {
    const out = join(dir, `w${workers}.zst`);
    await compressFile(input, out, { level: 10, overlapLog: 9, workers });
    outputs.push(await readFile(out));
  }
  // The same compression pinned to one core, in a separate process.
  const script = `import { compressFile } from ${JSON.stringify(join(repoRoot, 'ts/native.ts'))};
    await compressFile(process.argv[1], process.argv[2], { level: 10, overlapLog: 9, workers: 2 });`;
  const oneCore = join(dir, 'onecore.zst');
  await execa('taskset', ['-c', '0', process.execPath, '--import=tsx', '--input-type=module', '-e', script, input, oneCore]);
  outputs.push(await readFile(oneCore));
  for (const out of outputs.slice(1)) t.true(out.equals(outputs[0]!));

  const { stdout } = await execa('zstd', ['-dc', join(dir, 'w2.zst')], { encoding: 'buffer', maxBuffer: 1 << 27 });
  t.true(Buffer.from(stdout).equals(await readFile(input)));
  // No checksum: the frame header's checksum flag (bit 2) is clear.
  t.is(outputs[0]![4]! & 0x04, 0);
});

test('a set job size is honoured: equal bytes at 1 and 3 workers and in chunks, identical to the zstd CLI with -B', async (t) => {
  const dir = await tempDir(t);
  const input = await sampleFile(dir);
  const data = await readFile(input);
  const params = { level: 10, overlapLog: 9, jobSize: 8 << 20 };
  const one = join(dir, 'one.zst');
  await compressFile(input, one, { ...params, workers: 1 });
  const streamed = join(dir, 'streamed.zst');
  const writer = ZstdFileWriter.open(streamed, { ...params, workers: 3 }, data.length);
  const writes: Promise<void>[] = [];
  for (let at = 0; at < data.length; at += 300_007) writes.push(writer.write(data.subarray(at, at + 300_007)));
  await writer.finish();
  await Promise.all(writes);
  t.true((await readFile(streamed)).equals(await readFile(one)));
  const cli = join(dir, 'cli.zst');
  await execa('zstd', ['-q', '-T2', '-10', '--no-check', '--zstd=ovlog=9', `-B${8 << 20}`, input, '-o', cli]);
  t.true((await readFile(cli)).equals(await readFile(one)), 'the same bytes as zstd -10 --zstd=ovlog=9 -B8M');
  const defaultJobs = join(dir, 'default.zst');
  await compressFile(input, defaultJobs, { level: 10, overlapLog: 9, workers: 2 });
  t.false((await readFile(defaultJobs)).equals(await readFile(one)), 'the job size took effect');
});

test('a job size outside 1 MiB–1 GiB is refused with a message naming it', async (t) => {
  const dir = await tempDir(t);
  const input = join(dir, 'in');
  await writeFile(input, 'x');
  for (const jobSize of [1000, 2 ** 31]) {
    const error = await t.throwsAsync(compressFile(input, join(dir, `out-${jobSize}`), { level: 10, jobSize }));
    t.regex(error.message, /job size/);
  }
});

test('a stream written in chunks equals the file compressed at once', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(5 << 20, 'peipkg ')]);
  const whole = join(dir, 'whole.zst');
  const input = join(dir, 'in');
  await writeFile(input, data);
  await compressFile(input, whole, { level: 10, overlapLog: 9, workers: 2 });
  const streamed = join(dir, 'streamed.zst');
  const writer = ZstdFileWriter.open(streamed, { level: 10, overlapLog: 9, workers: 3 }, data.length);
  const writes: Promise<void>[] = [];
  for (let at = 0; at < data.length; at += 700_001) writes.push(writer.write(data.subarray(at, at + 700_001)));
  const totals = await writer.finish();
  await Promise.all(writes);
  t.is(totals.bytesIn, data.length);
  t.true((await readFile(streamed)).equals(await readFile(whole)));
});

test('decompression refuses to produce more than its bound, and leaves no output file', async (t) => {
  const dir = await tempDir(t);
  const input = join(dir, 'in');
  await writeFile(input, Buffer.alloc(1 << 20, 'a'));
  const packed = join(dir, 'in.zst');
  await compressFile(input, packed, { level: 3, workers: 1 });
  const out = join(dir, 'out');
  await t.throwsAsync(decompressFile(packed, out, { maxBytes: (1 << 20) - 1 }), {
    instanceOf: LimitExceededError,
    message: /exceeds the limit of 1048575 bytes/,
  });
  await t.throwsAsync(access(out));
  t.is((await decompressFile(packed, out, { maxBytes: 1 << 20 })).bytesOut, 1 << 20);
  const bytes = await readFile(packed);
  t.throws(() => decompress(bytes, { maxBytes: 1000 }), { instanceOf: LimitExceededError });
  t.throws(() => decompress(bytes.subarray(0, bytes.length - 4), { maxBytes: 1 << 21 }), { instanceOf: CorruptDataError });
  t.throws(() => decompress(Buffer.from('not a zstd frame'), { maxBytes: 100 }), { instanceOf: CorruptDataError });
});

test('compressFile refuses to overwrite and reports a missing input', async (t) => {
  const dir = await tempDir(t);
  const input = join(dir, 'in');
  await writeFile(input, 'x');
  await t.throwsAsync(compressFile(input, input, { level: 3 }), { message: /create .*File exists/ });
  await t.throwsAsync(compressFile(join(dir, 'nope'), join(dir, 'o'), { level: 3 }), { message: /open .*nope: No such file/ });
  await t.throwsAsync(access(join(dir, 'o')));
});
