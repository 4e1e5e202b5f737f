/**
 * peipkg-build against the spec's vectors: for the same inputs our packages decompress to the
 * reference producer's tar byte for byte, are reproducible, read with zstd | tar and verify with openssl.
 */

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { runTool } from '../helpers/cli.js';
import { testPublicKeyPath, vector } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { privateTestKey, stagedTree, tarOf } from '../helpers/vectors.js';

const TIMESTAMP = '2026-05-06T12:00:00Z';

async function build(t: ExecutionContext, name: string, version: string, signed: boolean): Promise<{ out: string; stdout: string }> {
  const out = join(await tempDir(t), 'out');
  const args = ['build', '--recipe', vector(`${name}/recipe/peipkg.toml`), '--source', await stagedTree(t, name), '--version', version,
    '--source-ref', `test://${name}`, '--farm-id', 'test-farm-1', '--timestamp', TIMESTAMP, '--out', out];
  if (signed) args.push('--sign-key', await privateTestKey(t));
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 0, result.stderr);
  return { out, stdout: result.stdout };
}

test('build: hello-noarch, unsigned and signed, equals the reference tars', async (t) => {
  for (const [signed, tarName] of [[false, 'unsigned.tar'], [true, 'signed.tar']] as const) {
    const { out, stdout } = await build(t, 'hello-noarch', '0.1-1', signed);
    const file = join(out, 'hello_0.1-1_noarch.peipkg');
    t.is(stdout, `${file}\n`, 'stdout holds exactly the output path');
    t.true((await tarOf(file)).equals(await readFile(vector(`hello-noarch/${tarName}`))), tarName);
  }
});

test('build: libfoo-multipackage gives the three reference packages (same_build, cross-package symlink, noarch)', async (t) => {
  const { out, stdout } = await build(t, 'libfoo-multipackage', '1.2.3-1', true);
  const names = ['libfoo_1.2.3-1_x86_64.peipkg', 'libfoo-dev_1.2.3-1_x86_64.peipkg', 'libfoo-doc_1.2.3-1_noarch.peipkg'];
  t.deepEqual(stdout.trim().split('\n'), names.map((n) => join(out, n)), 'printed in stanza order');
  t.deepEqual((await readdir(out)).sort(), [...names].sort(), 'nothing else in --out');
  for (const name of names) {
    t.true((await tarOf(join(out, name))).equals(await tarOf(vector(`libfoo-multipackage/${name}`))), name);
  }
});

for (const [name, tarName] of [
  ['edge-case', 'signed.tar'],
  ['fpu-collision', 'expected.tar'],
  ['hello-noarch', 'signed.tar'],
] as const) {
  test(`pack: ${name} equals the reference tar`, async (t) => {
    const out = join(await tempDir(t), `${name}.peipkg`);
    const result = await runTool('peipkg-build', ['pack', '--manifest', vector(`${name}/pack-manifest.json`), '--staged', await stagedTree(t, name),
      '--out', out, '--sign-key', await privateTestKey(t)]);
    t.is(result.exitCode, 0, result.stderr);
    t.true((await tarOf(out)).equals(await readFile(vector(`${name}/${tarName}`))));
  });
}

test('the same inputs twice give identical package bytes', async (t) => {
  const first = await build(t, 'libfoo-multipackage', '1.2.3-1', true);
  const second = await build(t, 'libfoo-multipackage', '1.2.3-1', true);
  for (const name of await readdir(first.out)) {
    t.true((await readFile(join(first.out, name))).equals(await readFile(join(second.out, name))), name);
  }
});

test('a built package lists with zstd -d | tar -tv and its signature verifies with openssl', async (t) => {
  const { out } = await build(t, 'hello-noarch', '0.1-1', true);
  const file = join(out, 'hello_0.1-1_noarch.peipkg');
  const listing = await execa('sh', ['-c', `zstd -dc "${file}" | tar -tvf -`]);
  t.regex(listing.stdout, /root\/root\s+14 2026-05-06 12:00 usr\/share\/hello\/MESSAGE/);
  const tar = await tarOf(file);
  // Find S, the signature entry's header, by walking headers (§4.4).
  let offset = 0;
  while (tar.subarray(offset, offset + 100).toString('latin1').replace(/\0.*$/s, '') !== '.peipkg/signature') {
    const size = parseInt(tar.subarray(offset + 124, offset + 136).toString('latin1'), 8);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  const dir = await tempDir(t);
  const envelope = JSON.parse(tar.subarray(offset + 512, offset + 512 + 229).toString()) as { signature: string };
  await writeFile(join(dir, 'prefix'), tar.subarray(0, offset));
  await execa('sh', ['-c', `openssl dgst -sha256 -binary "${dir}/prefix" > "${dir}/digest"`]);
  await writeFile(join(dir, 'sig'), Buffer.from(envelope.signature, 'base64'));
  const verify = await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', testPublicKeyPath, '-rawin', '-in', join(dir, 'digest'), '-sigfile', join(dir, 'sig')], { reject: false });
  t.is(verify.exitCode, 0, verify.stdout + verify.stderr);
  t.regex(verify.stdout, /Signature Verified Successfully/);
});

test('verify accepts the vectors, the legacy GNU-tar golden, and rejects the bare-path-ordered fpu package', async (t) => {
  const ok = await runTool('peipkg-build', ['verify', vector('hello-noarch/signed.peipkg'), vector('hello-noarch/legacy-gnutar.peipkg'),
    vector('edge-case/signed.peipkg'), '--public-key', testPublicKeyPath]);
  t.is(ok.exitCode, 0, ok.stdout + ok.stderr);
  t.regex(ok.stdout, /signed\.peipkg: valid, signed by 5a491c24f72d717f1f6c09620af2bbccc79513118c3919be7f86f64e825d0b68 \(signature verified\)/);
  t.regex(ok.stdout, /legacy-gnutar\.peipkg: valid, unsigned/);
  const bad = await runTool('peipkg-build', ['verify', vector('fpu-collision/peipkg-build-output.peipkg')]);
  t.is(bad.exitCode, 1);
  t.regex(bad.stdout, /usr\/include\/asm\/fpu\.h: payload entries are not sorted/);
});
