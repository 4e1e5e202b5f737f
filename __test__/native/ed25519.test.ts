import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { KeyError, InternalError } from '../../ts/errors.js';
import { loadSigningKey, parsePublicKey, sha256, sign, signingKeyFromBytes, signingKeyInfo, verifySignature } from '../../ts/native.js';
import { tempDir } from '../helpers/fs.js';
import { testKeyPath, testPublicKeyPath } from '../helpers/fixtures.js';

test('the test key gives the spec public key, PEM and fingerprint', async (t) => {
  const info = signingKeyInfo(loadSigningKey(testKeyPath));
  t.is(info.publicKey.toString('hex'), '5fb53bcb248936467a1db5163d18d8403cec776e4f9ed4ff7584ff84be6256f5');
  t.is(info.fingerprint, '5a491c24f72d717f1f6c09620af2bbccc79513118c3919be7f86f64e825d0b68');
  t.is(info.publicKeyPem, await readFile(testPublicKeyPath, 'utf8'));
  t.deepEqual(parsePublicKey(await readFile(testPublicKeyPath)), info);
  t.deepEqual(parsePublicKey(info.publicKey), info);
});

test('a raw 32-byte seed is the same key as its PKCS#8 PEM', (t) => {
  const seed = Buffer.from('fad3f339158af435fde9af36823c89b9f50599d3aff3a0ff93be02e5ff310e92', 'hex');
  t.deepEqual(signingKeyInfo(signingKeyFromBytes(seed)), signingKeyInfo(loadSigningKey(testKeyPath)));
});

test('signatures verify with node:crypto and with openssl pkeyutl; a wrong key or a flipped bit fails', async (t) => {
  const dir = await tempDir(t);
  const fresh = join(dir, 'fresh.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', fresh]);
  const key = loadSigningKey(fresh);
  const info = signingKeyInfo(key);
  const digest = Buffer.from(sha256(Buffer.from('peipkg')), 'hex');
  const signature = sign(key, digest);
  t.is(signature.length, 64);

  t.true(nodeVerify(null, digest, createPublicKey(info.publicKeyPem), signature));
  t.true(verifySignature(info.publicKey, digest, signature));
  t.true(verifySignature(Buffer.from(info.publicKeyPem), digest, signature));

  const pub = join(dir, 'pub.pem');
  await execa('openssl', ['pkey', '-in', fresh, '-pubout', '-out', pub]);
  t.is(await readFile(pub, 'utf8'), info.publicKeyPem);
  await writeFile(join(dir, 'msg'), digest);
  await writeFile(join(dir, 'sig'), signature);
  const ok = await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', join(dir, 'msg'), '-sigfile', join(dir, 'sig')], { reject: false });
  t.is(ok.exitCode, 0, ok.stdout + ok.stderr);

  const other = signingKeyInfo(loadSigningKey(testKeyPath));
  t.false(verifySignature(other.publicKey, digest, signature));
  t.false(nodeVerify(null, digest, createPublicKey(other.publicKeyPem), signature));
  const flipped = Buffer.from(signature);
  flipped[10]! ^= 0x01;
  t.false(verifySignature(info.publicKey, digest, flipped));
  await writeFile(join(dir, 'sig'), flipped);
  const bad = await execa('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', join(dir, 'msg'), '-sigfile', join(dir, 'sig')], { reject: false });
  t.not(bad.exitCode, 0);
});

test('bad key files are errors with a reason, never a crash', async (t) => {
  const dir = await tempDir(t);
  const ec = join(dir, 'ec.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ec]);
  t.throws(() => loadSigningKey(ec), { instanceOf: KeyError, message: /not Ed25519/ });
  const rsa = join(dir, 'rsa.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'rsa', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', rsa]);
  t.throws(() => loadSigningKey(rsa), { instanceOf: KeyError, message: /not Ed25519/ });
  t.throws(() => loadSigningKey(dir), { instanceOf: KeyError, message: /is a directory, not a key/ });
  t.throws(() => loadSigningKey(join(dir, 'missing')), { message: /open key .*missing: No such file/ });
  t.throws(() => loadSigningKey(testPublicKeyPath), { instanceOf: KeyError, message: /expected "PRIVATE KEY"/ });
  const junk = join(dir, 'junk');
  await writeFile(junk, 'not a key at all\n');
  t.throws(() => loadSigningKey(junk), { instanceOf: KeyError, message: /neither a 32-byte raw seed nor a PEM/ });
  t.throws(() => parsePublicKey(Buffer.from('nope')), { instanceOf: KeyError });
  // Values TypeScript would refuse reach the addon only through a bug; they still must not crash.
  t.throws(() => sign('key' as never, Buffer.alloc(32)), { instanceOf: InternalError, message: /key must be a SigningKey/ });
});
