/**
 * peipkg-repo against the contract's vectors (`repository.md` §12) and its ordering rules, with the
 * real CLI: byte-identical T1/T2 states, archive and active order, multi-arch rules, repeatable
 * output, packages from our own peipkg-build, and publish in place.
 */

import { copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { sha256 } from '../../ts/native.js';
import { runTool } from '../helpers/cli.js';
import { vector } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { initState, publishInPlace, snapshot, vectorSeedFile, VECTOR_FINGERPRINT } from '../helpers/repo.js';

const sigOf = async (path: string): Promise<string> => (JSON.parse(await readFile(path, 'utf8')) as { signature: string }).signature;
const sha = async (path: string): Promise<string> => sha256(await readFile(path));
const packagesOf = async (path: string): Promise<Array<{ name: string; version: string; architecture: string }>> =>
  (JSON.parse(await readFile(path, 'utf8')) as { packages: Array<{ name: string; version: string; architecture: string }> }).packages;

test('T1: init writes the reference bytes and signatures', async (t) => {
  const key = await vectorSeedFile(t);
  const dir = join(await tempDir(t), 'v1');
  const result = await runTool('peipkg-repo', ['init', '--name', 'rt', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', dir]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `initialised repository "rt" at ${dir}\n`);
  t.is(await sha(join(dir, 'repo.json')), '041bacb67b45ee576c0ee758916050c9826f66b7d0541c1c0869ccb77e99e131');
  t.is(await sigOf(join(dir, 'repo.json.sig')), 'fwVAcEymTZtu3PVJZD1fvIkd9Dlq4BhgW8cg4n0OSUiCYslu8Lyd1RYtzVJP1c9Y+ek9fuOY/XOiS8HnQbCcAw');
  t.is(await sha(join(dir, 'index/active.json')), 'ba594041f5a7ada90ad63f0e1a309d05266221f3bc0ed0d0ab2fe9671aeac49e');
  t.is(await sigOf(join(dir, 'index/active.json.sig')), 'e6/iJf/cK+u8k7+6SUBaOH8TK08Jg6o7aUsZGNwXIgBr+lRhQdCHvF8wfl/GAwcw+8qZgBGlBpJI4dAFBlsjBA');
  t.is(await sha(join(dir, 'index/archive.json')), 'a07761773185366c7ab50b77da394e321558786d4420be6ff4538757939cde51');
  t.is(await sigOf(join(dir, 'index/archive.json.sig')), 'ZI0x1AkmUXf/pH9hRhbfjkqOkwU3o4cGZlDYbimeBCD0mvqO+uXPEqBtIsEwiXuOC9wAD+Cwh6ny827a8k0IAw');
  const pub = await readFile(join(dir, `keys/${VECTOR_FINGERPRINT}.pub`), 'utf8');
  t.is(pub, '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAT9CZzNR9eJPf6ewkQU7LDZtUICMqrTDZHEZb4zy+ZcQ=\n-----END PUBLIC KEY-----\n');
  for (const file of ['repo.json.sig', 'index/active.json.sig', 'index/archive.json.sig']) t.is((await readFile(join(dir, file))).length, 229);
});

test('T2: publishing the legacy hello package gives the reference indexes and signatures', async (t) => {
  const key = await vectorSeedFile(t);
  const v1 = await initState(t, key);
  const newDir = join(await tempDir(t), 'new');
  await mkdir(newDir);
  await copyFile(vector('hello-noarch/legacy-gnutar.peipkg'), join(newDir, 'hello_0.1-1_noarch.peipkg'));
  const v2 = join(await tempDir(t), 'v2');
  const result = await runTool('peipkg-repo', ['publish', '--in', v1, '--new', newDir, '--sign-key', key, '--timestamp', '2026-05-07T01:00:00Z', '--out', v2]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, 'published index_version 2 (1 new packages)\n  + hello_0.1-1_noarch.peipkg\n');
  t.regex(result.stderr, /unsigned package accepted/);
  t.is(await sha(join(v2, 'repo.json')), '041bacb67b45ee576c0ee758916050c9826f66b7d0541c1c0869ccb77e99e131');
  t.is(await sha(join(v2, 'index/active.json')), 'e26af291308302ae768dced890ac162a78664b7297e8ec5fdd005acb90e4b425');
  t.is(await sigOf(join(v2, 'index/active.json.sig')), 'SKraVA50RRLd/DqLp+wox5kMImiUHJTxjYxDLtnKZysu/WruXbA4VSw3vQo2w2B/G8vU6XNQbEiDRvEF08UfAQ');
  t.is(await sha(join(v2, 'index/archive.json')), '62164424cb8817fac62e2cac45b46a8e92df85b737534c4f673c0b8fa2cc4d33');
  t.is(await sigOf(join(v2, 'index/archive.json.sig')), 'sMMJ7rp4tcMDAWmZBXafhALISikyVLozBLt5asc3UCjTdx63aUlZvYm5or2/X2S9D7k7qBMEOBJcggXMOpiIAw');
  const pkg = await readFile(vector('hello-noarch/legacy-gnutar.peipkg'));
  t.true((await readFile(join(v2, 'p/hello/0.1-1/hello_0.1-1_noarch.peipkg'))).equals(pkg));
  t.regex(await readFile(join(v2, 'p/hello/0.1-1/manifest.json'), 'utf8'), /"source_ref":"test:\/\/hello-noarch"/);
  t.true((await readdir(join(v2, 'keys'))).includes(`${VECTOR_FINGERPRINT}.pub`), 'keys are carried to an out-of-place state');
  const verify = await runTool('peipkg-repo', ['verify', '--repo', v2, '--mode', 'both']);
  t.is(verify.exitCode, 0, verify.stderr);
  t.is(verify.stdout, 'OK\n');
});

test('archive order is version-descending per name, and active holds the highest', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const dir = await tempDir(t);
  for (const version of ['1.0~rc1-1', '1.0-1', '1.0~beta-1']) await makePackage(dir, { name: 'abc', version, architecture: 'x86_64' });
  const result = await publishInPlace(state, dir, key, '2026-05-07T01:00:00Z');
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual((await packagesOf(join(state, 'index/archive.json'))).map((p) => p.version), ['1.0-1', '1.0~rc1-1', '1.0~beta-1']);
  t.deepEqual((await packagesOf(join(state, 'index/active.json'))).map((p) => p.version), ['1.0-1']);
});

test('a top-version tie across architectures is refused, and nothing changes', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const dir = await tempDir(t);
  await makePackage(dir, { name: 'abc', version: '2.0-1', architecture: 'x86_64' });
  await makePackage(dir, { name: 'abc', version: '2.0-1', architecture: 'aarch64' });
  const before = await snapshot(state);
  const result = await publishInPlace(state, dir, key, '2026-05-07T01:00:00Z');
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /active index conflict: abc exists at version 2\.0-1 for both architectures "aarch64" and "x86_64"/);
  t.deepEqual(await snapshot(state), before);
});

test('the multi-architecture batch of the contract orders and projects as specified', async (t) => {
  // The contract's batch names packages y and z; names need two bytes (§1.1), so they are yy and zz here.
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const dir = await tempDir(t);
  const batch: Array<[string, string, string]> = [
    ['foo', '1.0-1', 'x86_64'], ['foo', '2.0-1', 'aarch64'], ['yy', '1.0-1', 'x86_64'], ['yy', '1.0-1', 'aarch64'],
    ['yy', '2.0-1', 'noarch'], ['zz', '1.0~alpha-1', 'noarch'], ['zz', '1.0~a-1', 'noarch'],
  ];
  for (const [name, version, architecture] of batch) await makePackage(dir, { name, version, architecture });
  const result = await publishInPlace(state, dir, key, '2026-05-07T01:00:00Z');
  t.is(result.exitCode, 0, result.stderr);
  const triple = (p: { name: string; version: string; architecture: string }): string => `${p.name} ${p.version} ${p.architecture}`;
  t.deepEqual((await packagesOf(join(state, 'index/active.json'))).map(triple), ['foo 2.0-1 aarch64', 'yy 2.0-1 noarch', 'zz 1.0~a-1 noarch']);
  t.deepEqual((await packagesOf(join(state, 'index/archive.json'))).map(triple), [
    'foo 2.0-1 aarch64', 'foo 1.0-1 x86_64', 'yy 2.0-1 noarch', 'yy 1.0-1 aarch64', 'yy 1.0-1 x86_64', 'zz 1.0~a-1 noarch', 'zz 1.0~alpha-1 noarch',
  ]);
  const manifest = JSON.parse(await readFile(join(state, 'p/yy/1.0-1/manifest.json'), 'utf8')) as { architecture: string };
  t.is(manifest.architecture, 'aarch64', 'two architectures share one sidecar; the first written wins');
});

test('repeat publishes with identical inputs give identical bytes', async (t) => {
  const key = await vectorSeedFile(t);
  const dir = await tempDir(t);
  await makePackage(dir, { name: 'alpha', version: '1.0-1' });
  await makePackage(dir, { name: 'beta', version: '0.9-2', architecture: 'x86_64' });
  const states: string[] = [];
  for (let i = 0; i < 2; i++) {
    const state = await initState(t, key);
    t.is((await publishInPlace(state, dir, key, '2026-05-07T01:00:00Z')).exitCode, 0);
    states.push(state);
  }
  const [a, b] = await Promise.all(states.map(snapshot));
  t.deepEqual([...a!.entries()], [...b!.entries()]);
});

test('packages from our peipkg-build round-trip: signed ones verify against the descriptor key', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const work = await tempDir(t);
  const out = join(work, 'out');
  const build = await runTool('peipkg-build', ['build', '--recipe', vector('libfoo-multipackage/recipe/peipkg.toml'), '--source', work,
    '--version', '1.2.3-1', '--source-ref', 'test://x', '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', out, '--sign-key', key]);
  // The recipe's build.sh copies $SOURCE_DIR; an empty source gives empty stanzas but real signed packages.
  t.is(build.exitCode, 0, build.stderr);
  const result = await publishInPlace(state, out, key, '2026-05-07T01:00:00Z', ['--require-signed']);
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /published index_version 2 \(3 new packages\)/);
  t.notRegex(result.stderr, /unsigned/);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', state]);
  t.is(verify.exitCode, 0, verify.stderr);
});

test('--in s --out s/ is a publish in place that keeps every key file', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const keyFile = join(state, `keys/${VECTOR_FINGERPRINT}.pub`);
  const before = await readFile(keyFile);
  const dir = await tempDir(t);
  await makePackage(dir, { name: 'alpha', version: '1.0-1' });
  const result = await runTool('peipkg-repo', ['publish', '--in', state, '--new', dir, '--sign-key', key, '--timestamp', '2026-05-07T01:00:00Z', '--out', `${state}/`]);
  t.is(result.exitCode, 0, result.stderr);
  t.true((await readFile(keyFile)).equals(before));
  t.is(before.length, 113);
  t.is((await runTool('peipkg-repo', ['verify', '--repo', state])).exitCode, 0);
});

test('an empty publish bumps index_version and re-signs', async (t) => {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const empty = await tempDir(t);
  const result = await publishInPlace(state, empty, key, '2026-05-08T00:00:00Z', ['--json']);
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual(JSON.parse(result.stdout), { indexVersion: 2, added: [] });
  const header = JSON.parse(await readFile(join(state, 'index/active.json'), 'utf8')) as { index_version: number; generated_at: string };
  t.is(header.index_version, 2);
  t.is(header.generated_at, '2026-05-08T00:00:00Z');
});
