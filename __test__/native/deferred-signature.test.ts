/**
 * Deferred signatures: `peipkg-build build|pack --deferred-signature` writes an unsigned package
 * whose trailer is a zstd frame of its own, and `signDeferredPackage` signs it in place. For the
 * vectors' inputs the result decompresses (zstd CLI and our reader) to the tar of a package signed
 * at build time, has exactly two frames, and its signature verifies (our verifier and openssl).
 * Every refusal leaves the file byte for byte as it was.
 */

import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { InputError } from '../../ts/errors.js';
import { DeferredSignatureError, signDeferredPackage } from '../../ts/format/deferredSignature.js';
import { verifyPackage } from '../../ts/format/verify.js';
import { appendSignature, decompressFile, loadSigningKey, readPackage, signingKeyInfo } from '../../ts/native.js';
import { runTool } from '../helpers/cli.js';
import { testKeyPath, testPublicKeyPath, vector } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { privateTestKey, stagedTree, tarOf } from '../helpers/vectors.js';

const TIMESTAMP = '2026-05-06T12:00:00Z';
const FINGERPRINT = '5a491c24f72d717f1f6c09620af2bbccc79513118c3919be7f86f64e825d0b68';
type Mode = 'signed' | 'unsigned' | 'deferred';

async function build(t: ExecutionContext, name: string, version: string, mode: Mode): Promise<string> {
  const out = join(await tempDir(t), 'out');
  const args = ['build', '--recipe', vector(`${name}/recipe/peipkg.toml`), '--source', await stagedTree(t, name), '--version', version,
    '--source-ref', `test://${name}`, '--farm-id', 'test-farm-1', '--timestamp', TIMESTAMP, '--out', out];
  if (mode === 'signed') args.push('--sign-key', await privateTestKey(t));
  if (mode === 'deferred') args.push('--deferred-signature');
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 0, result.stderr);
  return out;
}

/** Zstandard and skippable frames, as the zstd CLI counts them. */
async function frames(path: string): Promise<{ zstd: number; skippable: number }> {
  const { stdout } = await execa('zstd', ['-lv', path]);
  const count = (label: string): number => Number(new RegExp(`# ${label} Frames: (\\d+)`).exec(stdout)?.[1] ?? 0);
  return { zstd: count('Zstandard'), skippable: count('Skippable') };
}

const sha256Of = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');

/** The tar as our own reader decompresses it. */
async function ourTar(t: ExecutionContext, path: string): Promise<Buffer> {
  const out = join(await tempDir(t), 'ours.tar');
  await decompressFile(path, out, { maxBytes: 1 << 30 });
  return readFile(out);
}

/** §4.4 by hand: SHA-256 of the tar before the signature entry, checked with openssl pkeyutl. */
async function opensslVerifies(t: ExecutionContext, tar: Buffer): Promise<boolean> {
  let offset = 0;
  while (tar.subarray(offset, offset + 100).toString('latin1').replace(/\0.*$/s, '') !== '.peipkg/signature') {
    const size = parseInt(tar.subarray(offset + 124, offset + 136).toString('latin1'), 8);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (offset >= tar.length) return false;
  }
  const dir = await tempDir(t);
  const envelope = JSON.parse(tar.subarray(offset + 512, offset + 512 + 229).toString()) as { signature: string };
  await writeFile(join(dir, 'prefix'), tar.subarray(0, offset));
  await execa('sh', ['-c', `openssl dgst -sha256 -binary "${dir}/prefix" > "${dir}/digest"`]);
  await writeFile(join(dir, 'sig'), Buffer.from(envelope.signature, 'base64'));
  const verify = await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', testPublicKeyPath, '-rawin', '-in', join(dir, 'digest'), '-sigfile', join(dir, 'sig')], { reject: false });
  return verify.exitCode === 0 && /Signature Verified Successfully/.test(verify.stdout);
}

const trusted = (): Map<string, Uint8Array> => {
  const info = signingKeyInfo(loadSigningKey(testKeyPath));
  return new Map([[info.fingerprint, info.publicKey]]);
};

for (const [name, version] of [['hello-noarch', '0.1-1'], ['libfoo-multipackage', '1.2.3-1']] as const) {
  test(`build --deferred-signature, then signDeferredPackage, equals build --sign-key: ${name}`, async (t) => {
    const [signedDir, unsignedDir, deferredDir] = await Promise.all([build(t, name, version, 'signed'), build(t, name, version, 'unsigned'), build(t, name, version, 'deferred')]);
    const files = (await readdir(signedDir)).sort();
    t.deepEqual((await readdir(deferredDir)).sort(), files);
    t.true(files.length >= 1);
    const key = loadSigningKey(testKeyPath);
    for (const file of files) {
      const [signed, unsigned, deferred] = [join(signedDir, file), join(unsignedDir, file), join(deferredDir, file)];
      t.deepEqual(await frames(signed), { zstd: 1, skippable: 0 }, `${file}: the default stays one frame`);
      t.deepEqual(await frames(unsigned), { zstd: 1, skippable: 0 });

      // Before signing: a valid unsigned package (the verifier publish uses), the unsigned tar.
      t.deepEqual(await frames(deferred), { zstd: 2, skippable: 0 }, `${file}: signable form`);
      t.true((await tarOf(deferred)).equals(await tarOf(unsigned)), `${file}: zstd -d gives the unsigned tar`);
      const before = await verifyPackage(deferred);
      t.is(before.signature.state, 'unsigned');
      const unsignedFacts = await readPackage(unsigned);
      t.is(before.facts.signableDigest, unsignedFacts.signableDigest);
      t.is(before.facts.signedDigest, undefined);
      const cli = await runTool('peipkg-build', ['verify', deferred, '--strict']);
      t.is(cli.exitCode, 0, cli.stdout + cli.stderr);

      const result = await signDeferredPackage(deferred, key);
      const signedFacts = await readPackage(signed);
      t.is(result.signedDigest, signedFacts.signedDigest ?? 'missing', `${file}: the digest signed at build time`);
      t.is(signedFacts.signableDigest, undefined, 'a signed package reports no signable digest');
      t.is(result.fingerprint, FINGERPRINT);
      t.is(result.size, (await readFile(deferred)).length);
      t.deepEqual([result.name, result.version], [before.manifest.name, before.manifest.version]);
      t.is(result.architecture, before.manifest.architecture);

      // After: byte-identical tars through zstd and through our reader; two frames; the signature verifies.
      const expected = await tarOf(signed);
      t.true((await tarOf(deferred)).equals(expected), `${file}: zstd -d output equals the signed build's`);
      t.true((await ourTar(t, deferred)).equals(await ourTar(t, signed)), `${file}: our reader's output equals the signed build's`);
      t.deepEqual((await readPackage(deferred)).entries, signedFacts.entries);
      t.deepEqual(await frames(deferred), { zstd: 2, skippable: 0 });
      const after = await verifyPackage(deferred, { trustedKeys: trusted(), requireSigned: true, strict: true });
      t.deepEqual(after.signature, { state: 'verified', fingerprint: FINGERPRINT });
      t.true(await opensslVerifies(t, expected), `${file}: openssl verifies`);
    }
  });
}

test('pack --deferred-signature, signed in place, equals pack --sign-key', async (t) => {
  const dir = await tempDir(t);
  const staged = await stagedTree(t, 'hello-noarch');
  const [signed, deferred] = [join(dir, 'signed.peipkg'), join(dir, 'deferred.peipkg')];
  const common = ['pack', '--manifest', vector('hello-noarch/pack-manifest.json'), '--staged', staged];
  t.is((await runTool('peipkg-build', [...common, '--out', signed, '--sign-key', await privateTestKey(t)])).exitCode, 0);
  const r = await runTool('peipkg-build', [...common, '--out', deferred, '--deferred-signature']);
  t.is(r.exitCode, 0, r.stderr);
  t.true((await tarOf(deferred)).equals(await readFile(vector('hello-noarch/unsigned.tar'))));
  await signDeferredPackage(deferred, loadSigningKey(testKeyPath));
  t.true((await tarOf(deferred)).equals(await readFile(vector('hello-noarch/signed.tar'))));
  t.true((await tarOf(signed)).equals(await tarOf(deferred)));
});

test('a multi-block package (3 MB of random bytes and text): signed in place equals signed at pack time', async (t) => {
  const dir = await tempDir(t);
  const staged = join(dir, 'staged');
  await mkdir(join(staged, 'usr/share/big'), { recursive: true });
  await writeFile(join(staged, 'usr/share/big/random.bin'), randomBytes(2 << 20));
  await writeFile(join(staged, 'usr/share/big/text.txt'), 'peipkg deferred signature '.repeat(40_000));
  const manifest = join(dir, 'manifest.json');
  await writeFile(manifest, JSON.stringify({ name: 'big', version: '1.0-1', architecture: 'noarch', build: { timestamp: TIMESTAMP, farm_id: 'f', source_ref: 'test://big' } }));
  const [signed, deferred] = [join(dir, 'signed.peipkg'), join(dir, 'deferred.peipkg')];
  const common = ['pack', '--manifest', manifest, '--staged', staged, '--zstd-level', '3'];
  t.is((await runTool('peipkg-build', [...common, '--out', signed, '--sign-key', await privateTestKey(t)])).exitCode, 0);
  t.is((await runTool('peipkg-build', [...common, '--out', deferred, '--deferred-signature'])).exitCode, 0);
  const result = await signDeferredPackage(deferred, loadSigningKey(testKeyPath));
  t.deepEqual([result.name, result.version, result.architecture], ['big', '1.0-1', 'noarch']);
  t.deepEqual(await frames(deferred), { zstd: 2, skippable: 0 });
  const expected = await tarOf(signed);
  t.true(expected.length > 3e6);
  t.true((await tarOf(deferred)).equals(expected));
  t.true((await ourTar(t, deferred)).equals(expected));
  t.is((await verifyPackage(deferred, { trustedKeys: trusted(), requireSigned: true, strict: true })).signature.state, 'verified');
});

test('--deferred-signature with --sign-key is a usage error naming both flags (build and pack)', async (t) => {
  const key = await privateTestKey(t);
  const dir = await tempDir(t);
  const out = join(dir, 'out');
  const b = await runTool('peipkg-build', ['build', '--recipe', vector('hello-noarch/recipe/peipkg.toml'), '--source', dir, '--version', '0.1-1',
    '--source-ref', 'x', '--farm-id', 'f', '--timestamp', TIMESTAMP, '--out', out, '--sign-key', key, '--deferred-signature']);
  const p = await runTool('peipkg-build', ['pack', '--manifest', vector('hello-noarch/pack-manifest.json'), '--staged', dir, '--out', join(dir, 'x.peipkg'),
    '--sign-key', key, '--deferred-signature']);
  for (const r of [b, p]) {
    t.is(r.exitCode, 2, r.stderr);
    t.regex(r.stderr, /--deferred-signature/);
    t.regex(r.stderr, /--sign-key/);
  }
  t.deepEqual(await readdir(dir), [], 'nothing was written');
  const help = await runTool('peipkg-build', ['build', '--help']);
  t.regex(help.stdout, /--deferred-signature/);
});

/** A deferred hello package in a fresh directory, and its tar. */
async function deferredHello(t: ExecutionContext): Promise<{ path: string; tar: Buffer }> {
  const out = await build(t, 'hello-noarch', '0.1-1', 'deferred');
  const path = join(out, 'hello_0.1-1_noarch.peipkg');
  return { path, tar: await tarOf(path) };
}

/** zstd frames (no checksum) of each piece, concatenated into `path`. */
async function framesOf(t: ExecutionContext, path: string, pieces: Buffer[]): Promise<void> {
  const dir = await tempDir(t);
  const parts: Buffer[] = [];
  for (const [i, piece] of pieces.entries()) {
    await writeFile(join(dir, `p${i}`), piece);
    const { stdout } = await execa('zstd', ['-q', '--no-check', '-c', join(dir, `p${i}`)], { encoding: 'buffer' });
    parts.push(Buffer.from(stdout));
  }
  await writeFile(path, Buffer.concat(parts));
}

async function refused(t: ExecutionContext, path: string, rule: RegExp, message: RegExp): Promise<void> {
  const before = await sha256Of(path);
  const error = await t.throwsAsync(signDeferredPackage(path, loadSigningKey(testKeyPath)), { instanceOf: DeferredSignatureError });
  t.true(error instanceof InputError);
  t.regex(error?.rule ?? '', rule);
  t.true(error?.message.startsWith(`${path}: cannot sign in place`), error?.message);
  t.regex(error?.message ?? '', message);
  t.is(await sha256Of(path), before, 'the file is unchanged');
}

test('refuses an already-signed package', async (t) => {
  const out = await build(t, 'hello-noarch', '0.1-1', 'signed');
  await refused(t, join(out, 'hello_0.1-1_noarch.peipkg'), /^already-signed$/, /already has a \.peipkg\/signature/);
});

test('refuses a single-frame unsigned package', async (t) => {
  const out = await build(t, 'hello-noarch', '0.1-1', 'unsigned');
  await refused(t, join(out, 'hello_0.1-1_noarch.peipkg'), /^not-signable$/, /single zstd frame/);
});

test('refuses a last frame that is not exactly the trailer', async (t) => {
  const { tar } = await deferredHello(t);
  const dir = await tempDir(t);
  const prefix = tar.subarray(0, tar.length - 1024);
  const zeros = (n: number): Buffer => Buffer.alloc(n);
  // prefix | trailer | one more zero block: a valid tar (3 zero blocks), but not the signable form.
  const extra = join(dir, 'extra.peipkg');
  await framesOf(t, extra, [prefix, zeros(1024), zeros(512)]);
  await verifyPackage(extra);
  await refused(t, extra, /^not-signable$/, /exactly 2 zero blocks/);
  // prefix + half the trailer | the other half: two zero blocks, but the last frame holds 512 bytes.
  const split = join(dir, 'split.peipkg');
  await framesOf(t, split, [Buffer.concat([prefix, zeros(512)]), zeros(512)]);
  await verifyPackage(split);
  await refused(t, split, /^not-signable$/, /holds 512 bytes that are not the 1024 zero bytes/);
  // prefix | trailer + a non-zero byte past the trailer's 1024 (the verifier sees trailing data).
  const tail = join(dir, 'tail.peipkg');
  await framesOf(t, tail, [prefix, Buffer.concat([zeros(1024), Buffer.from([1])])]);
  await refused(t, tail, /^invalid$/, /fails verification/);
});

test('refuses a truncated package', async (t) => {
  const { path } = await deferredHello(t);
  const bytes = await readFile(path);
  await writeFile(path, bytes.subarray(0, bytes.length - 3));
  await refused(t, path, /^invalid$/, /fails verification/);
});

test('refuses a package with a corrupted byte in the first frame', async (t) => {
  // hello's first frame: magic (0–3), FHD 0x60 (4), 2-byte content size (5–6), first block header (7–9).
  for (const [offset, what] of [[5, 'content size'], [9, 'block header']] as const) {
    const { path } = await deferredHello(t);
    const bytes = await readFile(path);
    t.is(bytes[4], 0x60, 'single-segment frame with a 2-byte content size');
    bytes[offset]! ^= 0x5a;
    await writeFile(path, bytes);
    await refused(t, path, /^invalid$/, /fails verification/);
    t.log(`${what}: refused`);
  }
});

test('refuses garbage after the last frame', async (t) => {
  const { path } = await deferredHello(t);
  await appendFile(path, 'garbage after the trailer frame\n');
  await refused(t, path, /^(invalid|not-signable)$/, /.+/);
});

test('refuses a skippable frame at the end (the verifier itself accepts it)', async (t) => {
  const { path } = await deferredHello(t);
  const skippable = Buffer.alloc(12);
  skippable.writeUInt32LE(0x184d2a50, 0);
  skippable.writeUInt32LE(4, 4);
  await appendFile(path, skippable);
  t.deepEqual(await frames(path), { zstd: 2, skippable: 1 });
  t.is((await verifyPackage(path)).signature.state, 'unsigned');
  await refused(t, path, /^not-signable$/, /skippable frame/);
});

test('appendSignature refuses a file that changed since it was verified, and checks its arguments', async (t) => {
  const { path } = await deferredHello(t);
  const facts = await readPackage(path);
  const before = await sha256Of(path);
  const key = loadSigningKey(testKeyPath);
  const digest = facts.signableDigest ?? '';
  await t.throwsAsync(appendSignature(path, key, digest, { mtime: 0, expectedSize: facts.compressedSize + 1 }), { message: /changed/ });
  await t.throwsAsync(appendSignature(path, key, 'ABC', { mtime: 0 }), { message: /64 lowercase hex/ });
  t.is(await sha256Of(path), before);
  const done = await appendSignature(path, key, digest, { mtime: facts.entries[0]!.mtime, expectedSize: facts.compressedSize });
  t.is(done.fingerprint, FINGERPRINT);
  t.is(done.signature.length, 64);
  t.true((await tarOf(path)).equals(await readFile(vector('hello-noarch/signed.tar'))));
});
