import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { FileChangedError } from '../../ts/errors.js';
import { loadSigningKey, pack, tarEntryHeader, type PackEntry } from '../../ts/native.js';
import { tempDir } from '../helpers/fs.js';
import { testKeyPath, VECTOR_MTIME, vector } from '../helpers/fixtures.js';

/**
 * Unpacks a vector tar with GNU tar and lists its entries in archive order, so that the core can be
 * fed the same entries: metadata from `.peipkg/`, payload from the unpacked tree.
 */
async function entriesOf(t: Parameters<typeof tempDir>[0], tarPath: string): Promise<{ root: string; entries: PackEntry[] }> {
  const root = await tempDir(t);
  await execa('tar', ['-xf', tarPath, '-C', root]);
  const { stdout } = await execa('tar', ['-tf', tarPath]);
  const entries: PackEntry[] = [];
  for (const name of stdout.split('\n')) {
    if (name === '.peipkg/signature') continue;
    const path = join(root, name);
    const info = await lstat(path);
    if (name.startsWith('.peipkg/')) entries.push({ name, type: 'file', data: await readFile(path) });
    else if (info.isDirectory()) entries.push({ name, type: 'directory' });
    else if (info.isSymbolicLink()) entries.push({ name, type: 'symlink', target: await readlink(path) });
    else entries.push({ name, type: 'file', source: name, size: info.size });
  }
  return { root, entries };
}

for (const [label, tarName, signed] of [
  ['hello (unsigned)', 'hello-noarch/unsigned.tar', false],
  ['hello (signed)', 'hello-noarch/signed.tar', true],
  ['edge-case: prefix split, PAX path/linkpath, non-ASCII, empty file (signed)', 'edge-case/signed.tar', true],
  ['fpu-collision: wire-name order (signed)', 'fpu-collision/expected.tar', true],
] as const) {
  test(`tar bytes from the core equal the vector: ${label}`, async (t) => {
    const expected = await readFile(vector(tarName));
    const { root, entries } = await entriesOf(t, vector(tarName));
    const out = join(await tempDir(t), 'out.tar');
    const result = await pack({
      output: out,
      mtime: VECTOR_MTIME,
      root,
      entries,
      compression: null,
      ...(signed ? { signingKey: loadSigningKey(testKeyPath) } : {}),
    });
    const ours = await readFile(out);
    t.is(ours.length, expected.length);
    t.true(ours.equals(expected));
    t.is(result.tarSize, expected.length);
  });
}

test('the signed hello package has the spec digest and signature, and zstd -d | tar -tv reads it', async (t) => {
  const { root, entries } = await entriesOf(t, vector('hello-noarch/signed.tar'));
  const out = join(await tempDir(t), 'hello.peipkg');
  const result = await pack({
    output: out,
    mtime: VECTOR_MTIME,
    root,
    entries,
    signingKey: loadSigningKey(testKeyPath),
    compression: { level: 10, overlapLog: 9 },
  });
  t.is(result.signedDigest, 'f72cbf8c9ec9586cdd7c3877f0c00ee444d73c0d89b4b3bb7543effae118e44c');
  t.is(result.signature?.toString('base64').replace(/=+$/, ''), 'wS3ZuRDK5qJDLN10eZKjqF+5+82tOpkVFmbPp1slHGlaViqt//Tiqu78BNgSyPcekI52c+hBqeNWFKHOtx6ICw');
  t.is(result.fingerprint, '5a491c24f72d717f1f6c09620af2bbccc79513118c3919be7f86f64e825d0b68');
  const { stdout: tarBytes } = await execa('zstd', ['-dc', out], { encoding: 'buffer' });
  t.true(Buffer.from(tarBytes).equals(await readFile(vector('hello-noarch/signed.tar'))));
  const { stdout: listing } = await execa('sh', ['-c', `zstd -dc "${out}" | tar -tvf -`]);
  t.regex(listing, /usr\/share\/hello\/MESSAGE/);
  t.regex(listing, /\.peipkg\/signature/);
});

test('a staged file that differs from its recorded hash fails the pack and leaves nothing', async (t) => {
  const { root, entries } = await entriesOf(t, vector('hello-noarch/unsigned.tar'));
  const tampered = entries.map((e) =>
    e.type === 'file' && 'source' in e ? { ...e, sha256: '0'.repeat(64) } : e,
  );
  const out = join(await tempDir(t), 'x.peipkg');
  const error = await t.throwsAsync(pack({ output: out, mtime: VECTOR_MTIME, root, entries: tampered, compression: { level: 3 } }), {
    instanceOf: FileChangedError,
  });
  t.regex(error?.message ?? '', /usr\/share\/hello\/MESSAGE changed while it was packed/);
  await t.throwsAsync(lstat(out));
  const grown = entries.map((e) => (e.type === 'file' && 'source' in e ? { ...e, size: e.size - 1 } : e));
  await t.throwsAsync(pack({ output: out, mtime: VECTOR_MTIME, root, entries: grown, compression: null }), { instanceOf: FileChangedError });
  await t.throwsAsync(lstat(out));
});

test('a staged path through a symlink is refused instead of followed', async (t) => {
  const root = await tempDir(t);
  await execa('sh', ['-c', `mkdir -p ${root}/usr && ln -s /etc ${root}/usr/share && ln -s /etc/hostname ${root}/usr/h`]);
  const out = join(root, 'x.tar');
  const via = (source: string): Promise<unknown> =>
    pack({ output: out, mtime: 0, root, entries: [{ name: source, type: 'file', source, size: 1 }], compression: null });
  await t.throwsAsync(via('usr/share/hostname'), { message: /open .*: Not a directory|Too many levels/ });
  await t.throwsAsync(via('usr/h'), { message: /Too many levels of symbolic links/ });
  await t.throwsAsync(lstat(out));
});

test('tarEntryHeader writes the manifest header of the hello vector', async (t) => {
  const expected = (await readFile(vector('hello-noarch/unsigned.tar'))).subarray(0, 512);
  t.true(tarEntryHeader({ name: '.peipkg/manifest.json', type: 'file', size: 429 }, VECTOR_MTIME).equals(expected));
});
