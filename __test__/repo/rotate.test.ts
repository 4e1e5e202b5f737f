/**
 * Key rotation with `resign`, `--rebuild`, verify against a flat directory, and the out-of-place
 * publish that carries keys and packages forward.
 */

import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { loadSigningKey, signingKeyInfo } from '../../ts/native.js';
import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { initState, publishInPlace, vectorSeedFile, VECTOR_FINGERPRINT } from '../helpers/repo.js';

interface Descriptor {
  repo: { signing: { keys: Array<{ fingerprint: string; url: string; status: string; valid_until?: string }> } };
}

test('key rotation: edit repo.json, resign with the new key, publish with it; the old key stops working', async (t) => {
  const oldKey = await vectorSeedFile(t);
  const state = await initState(t, oldKey);
  const pkgs = await tempDir(t);
  await makePackage(pkgs, { name: 'alpha', version: '1.0-1' });
  t.is((await publishInPlace(state, pkgs, oldKey, '2026-05-07T01:00:00Z')).exitCode, 0);

  const newKey = join(await tempDir(t), 'new.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', newKey]);
  const newFp = signingKeyInfo(loadSigningKey(newKey)).fingerprint;
  const descriptorPath = join(state, 'repo.json');
  const descriptor = JSON.parse(await readFile(descriptorPath, 'utf8')) as Descriptor;
  const keys = [
    { fingerprint: VECTOR_FINGERPRINT, url: `/keys/${VECTOR_FINGERPRINT}.pub`, status: 'transitioning', valid_until: '2026-08-01T00:00:00Z' },
    { fingerprint: newFp, url: `/keys/${newFp}.pub`, status: 'active' },
  ].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  descriptor.repo.signing.keys = keys;
  await writeFile(descriptorPath, `${JSON.stringify(descriptor, null, 2)}\n`); // a hand edit, pretty-printed

  const resign = await runTool('peipkg-repo', ['resign', '--repo', state, '--sign-key', newKey]);
  t.is(resign.exitCode, 0, resign.stderr);
  t.regex(resign.stdout, new RegExp(`re-signed repo.json and both indexes with ${newFp}`));
  t.true((await readdir(join(state, 'keys'))).includes(`${newFp}.pub`), 'the new public key is written');
  t.notRegex(await readFile(descriptorPath, 'utf8'), /\n {2}/, 'the descriptor is canonical again');
  const verify = await runTool('peipkg-repo', ['verify', '--repo', state]);
  t.is(verify.exitCode, 0, verify.stderr);

  await makePackage(pkgs, { name: 'beta', version: '1.0-1' });
  await rm(join(pkgs, 'alpha_1.0-1_noarch.peipkg'));
  t.is((await publishInPlace(state, pkgs, newKey, '2026-05-07T02:00:00Z')).exitCode, 0);
  const sig = JSON.parse(await readFile(join(state, 'index/archive.json.sig'), 'utf8')) as { key_fingerprint: string };
  t.is(sig.key_fingerprint, newFp);

  // Revoke the old key: publishing with it is refused.
  const revoked = JSON.parse(await readFile(descriptorPath, 'utf8')) as Descriptor;
  revoked.repo.signing.keys = revoked.repo.signing.keys.map((k) => (k.fingerprint === VECTOR_FINGERPRINT ? { ...k, status: 'revoked' } : k));
  await writeFile(descriptorPath, JSON.stringify(revoked));
  t.is((await runTool('peipkg-repo', ['resign', '--repo', state, '--sign-key', newKey])).exitCode, 0);
  const refused = await publishInPlace(state, await tempDir(t), oldKey, '2026-05-07T03:00:00Z');
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /--sign-key a18112b0.* is revoked in repo\.json/);
});

test('resign refuses a descriptor that breaks the key rules, and a tampered index', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const descriptorPath = join(state, 'repo.json');
  const original = await readFile(descriptorPath, 'utf8');
  const descriptor = JSON.parse(original) as Descriptor;
  descriptor.repo.signing.keys[0]!.status = 'transitioning';
  await writeFile(descriptorPath, JSON.stringify(descriptor));
  const rules = await runTool('peipkg-repo', ['resign', '--repo', state, '--sign-key', key]);
  t.is(rules.exitCode, 1);
  t.regex(rules.stderr, /at least one key must be active/);
  t.regex(rules.stderr, /is transitioning and needs valid_until/);

  await writeFile(descriptorPath, original);
  const archive = join(state, 'index/archive.json');
  await writeFile(archive, (await readFile(archive, 'utf8')).replace('"index_version":1', '"index_version":7'));
  const tampered = await runTool('peipkg-repo', ['resign', '--repo', state, '--sign-key', key]);
  t.is(tampered.exitCode, 1);
  t.regex(tampered.stderr, /index\/archive\.json does not verify with the key that signed it/);
});

test('--rebuild re-reads every package, re-renders URLs, and verify checks a flat directory', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const all = await tempDir(t);
  await makePackage(all, { name: 'alpha', version: '1.0-1' });
  await makePackage(all, { name: 'alpha', version: '1.1-1' });
  await makePackage(all, { name: 'beta', version: '2:0.1-3', architecture: 'x86_64' });
  t.is((await publishInPlace(state, all, key, '2026-05-07T01:00:00Z')).exitCode, 0);
  const rebuild = await runTool('peipkg-repo', ['publish', '--in', state, '--rebuild', '--all-packages-dir', all, '--sign-key', key,
    '--timestamp', '2026-05-07T02:00:00Z', '--out', state, '--package-url-template', '/pool/{name}/{filename}']);
  t.is(rebuild.exitCode, 0, rebuild.stderr);
  t.regex(rebuild.stdout, /published index_version 3 \(3 new packages\)/);
  const archive = JSON.parse(await readFile(join(state, 'index/archive.json'), 'utf8')) as { packages: Array<{ url: string }> };
  t.deepEqual(archive.packages.map((p) => p.url), ['/pool/alpha/alpha_1.1-1_noarch.peipkg', '/pool/alpha/alpha_1.0-1_noarch.peipkg', '/pool/beta/beta_2:0.1-3_x86_64.peipkg']);
  const flat = await runTool('peipkg-repo', ['verify', '--repo', state, '--all-packages-dir', all]);
  t.is(flat.exitCode, 0, flat.stderr);
  await rm(join(all, 'beta_2:0.1-3_x86_64.peipkg'));
  const missing = await runTool('peipkg-repo', ['verify', '--repo', state, '--mode', 'hashes', '--all-packages-dir', all]);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /FAIL: hash check: read beta_2:0\.1-3_x86_64\.peipkg: open .*No such file or directory/);
});

test('verify finds a package that changed on disk', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const pkgs = await tempDir(t);
  await makePackage(pkgs, { name: 'alpha', version: '1.0-1' });
  t.is((await publishInPlace(state, pkgs, key, '2026-05-07T01:00:00Z')).exitCode, 0);
  const file = join(state, 'p/alpha/1.0-1/alpha_1.0-1_noarch.peipkg');
  const bytes = await readFile(file);
  bytes[0]! ^= 1;
  await writeFile(file, bytes);
  const result = await runTool('peipkg-repo', ['verify', '--repo', state]);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /FAIL: hash mismatch: p\/alpha\/1\.0-1\/alpha_1\.0-1_noarch\.peipkg computed [0-9a-f]{64}, index claimed [0-9a-f]{64}/);
});

test('an out-of-place publish carries keys and earlier packages into a new directory', async (t) => {
  const key = await vectorSeedFile(t);
  const v1 = await initState(t, key);
  const first = await tempDir(t);
  await makePackage(first, { name: 'alpha', version: '1.0-1' });
  t.is((await publishInPlace(v1, first, key, '2026-05-07T01:00:00Z')).exitCode, 0);
  const second = await tempDir(t);
  await makePackage(second, { name: 'beta', version: '1.0-1' });
  const v2 = join(await tempDir(t), 'v2');
  await mkdir(v2);
  const result = await runTool('peipkg-repo', ['publish', '--in', v1, '--new', second, '--sign-key', key, '--timestamp', '2026-05-07T02:00:00Z', '--out', v2]);
  t.is(result.exitCode, 0, result.stderr);
  t.true((await readFile(join(v2, 'p/alpha/1.0-1/alpha_1.0-1_noarch.peipkg'))).length > 0);
  t.is((await runTool('peipkg-repo', ['verify', '--repo', v2])).exitCode, 0);
  t.is((await runTool('peipkg-repo', ['verify', '--repo', v1])).exitCode, 0, 'the previous state is untouched');
});
