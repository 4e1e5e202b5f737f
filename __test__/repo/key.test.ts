/**
 * `peipkg-repo key add`, `key retire` and `key revoke`: key rotation without hand-editing
 * repo.json, followed by `resign`; and every refusal, with its message and exit code, leaving the
 * state byte-for-byte as it was.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { loadSigningKey, sha256, signingKeyInfo } from '../../ts/native.js';
import { detachedSignature } from '../../ts/repo/signature.js';
import { runTool, type ToolResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { initState, publishInPlace, snapshot, vectorSeedFile, VECTOR_FINGERPRINT } from '../helpers/repo.js';

interface Key {
  fingerprint: string;
  url: string;
  status: string;
  valid_until?: string;
}

const keysOf = async (state: string): Promise<Key[]> =>
  (JSON.parse(await readFile(join(state, 'repo.json'), 'utf8')) as { repo: { signing: { keys: Key[] } } }).repo.signing.keys;

/** A new Ed25519 key made by openssl: the private PEM, its public PEM, and its fingerprint. */
async function newKey(t: ExecutionContext): Promise<{ priv: string; pub: string; fp: string }> {
  const dir = await tempDir(t);
  const priv = join(dir, 'new.pem');
  const pub = join(dir, 'new.pub');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', priv]);
  await execa('openssl', ['pkey', '-in', priv, '-pubout', '-out', pub]);
  return { priv, pub, fp: signingKeyInfo(loadSigningKey(priv)).fingerprint };
}

/** The public half of the §12 vector key, as a PEM file. */
async function vectorPublicKey(t: ExecutionContext, seed: string): Promise<string> {
  const path = join(await tempDir(t), 'old.pub');
  await writeFile(path, signingKeyInfo(loadSigningKey(seed)).publicKeyPem);
  return path;
}

const repo = (...args: string[]): Promise<ToolResult> => runTool('peipkg-repo', args);

/** A state with one package, signed by the vector key. */
async function fixture(t: ExecutionContext): Promise<{ oldKey: string; state: string }> {
  const oldKey = await vectorSeedFile(t);
  const state = await initState(t, oldKey);
  const pkgs = await tempDir(t);
  await makePackage(pkgs, { name: 'alpha', version: '1.0-1' });
  t.is((await publishInPlace(state, pkgs, oldKey, '2026-05-07T01:00:00Z')).exitCode, 0);
  return { oldKey, state };
}

test('key rotation with key add + key revoke + resign: the new key signs, the old key stops working', async (t) => {
  const { oldKey, state } = await fixture(t);
  const next = await newKey(t);

  const add = await repo('key', 'add', '--repo', state, '--public-key', next.pub);
  t.is(add.exitCode, 0, add.stderr);
  t.is(add.stdout.split('\n')[0], `added key ${next.fp} (active) to repo.json and wrote keys/${next.fp}.pub`);
  t.regex(add.stdout, new RegExp(`run \`peipkg-repo resign --repo ${state} --sign-key <private key>\``));
  t.is(await readFile(join(state, 'keys', `${next.fp}.pub`), 'utf8'), await readFile(next.pub, 'utf8'));
  const expected = [
    { fingerprint: VECTOR_FINGERPRINT, url: `/keys/${VECTOR_FINGERPRINT}.pub`, status: 'active' },
    { fingerprint: next.fp, url: `/keys/${next.fp}.pub`, status: 'active' },
  ].sort((a, b) => (a.fingerprint < b.fingerprint ? -1 : 1));
  t.deepEqual(await keysOf(state), expected, 'inserted in fingerprint order');
  const canonical = await readFile(join(state, 'repo.json'), 'utf8');
  t.regex(canonical, /^\{"schema_version":1,"repo":\{"name":"rt",.*\}\n$/, 'canonical, one line');
  const stale = await repo('verify', '--repo', state, '--mode', 'metadata');
  t.is(stale.exitCode, 1, 'the descriptor is unsigned for the change until resign');
  t.regex(stale.stderr, /FAIL: repo\.json: signature does not verify/);

  const revoke = await repo('key', 'revoke', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT);
  t.is(revoke.exitCode, 0, revoke.stderr);
  t.regex(revoke.stdout, new RegExp(`^revoked key ${VECTOR_FINGERPRINT} in repo\\.json\\n.*resign.*\\(${next.fp}\\)`));
  t.deepEqual(
    (await keysOf(state)).map((k) => [k.fingerprint, k.status]),
    expected.map((k) => [k.fingerprint, k.fingerprint === VECTOR_FINGERPRINT ? 'revoked' : 'active']),
  );

  const resign = await repo('resign', '--repo', state, '--sign-key', next.priv);
  t.is(resign.exitCode, 0, resign.stderr);
  t.is((await repo('verify', '--repo', state)).exitCode, 0);

  // The old key can no longer sign: publish refuses it ...
  const refused = await publishInPlace(state, await tempDir(t), oldKey, '2026-05-07T02:00:00Z');
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /--sign-key a18112b0.* is revoked in repo\.json/);
  // ... and a document it signs no longer verifies.
  const activeSig = join(state, 'index/active.json.sig');
  const goodSig = await readFile(activeSig);
  await writeFile(activeSig, detachedSignature(loadSigningKey(oldKey), sha256(await readFile(join(state, 'index/active.json')))));
  const forged = await repo('verify', '--repo', state, '--mode', 'metadata');
  t.is(forged.exitCode, 1);
  t.regex(forged.stderr, new RegExp(`FAIL: active\\.json: signing key fingerprint ${VECTOR_FINGERPRINT} is not declared in the descriptor`));
  await writeFile(activeSig, goodSig);

  // The new key publishes.
  const pkgs = await tempDir(t);
  await makePackage(pkgs, { name: 'beta', version: '1.0-1' });
  t.is((await publishInPlace(state, pkgs, next.priv, '2026-05-07T03:00:00Z')).exitCode, 0);
  const sig = JSON.parse(await readFile(join(state, 'index/archive.json.sig'), 'utf8')) as { key_fingerprint: string };
  t.is(sig.key_fingerprint, next.fp);
  t.is((await repo('verify', '--repo', state)).exitCode, 0);
});

test('planned rotation: key add, key retire (transitioning until), resign; later key revoke --remove', async (t) => {
  const { oldKey, state } = await fixture(t);
  const next = await newKey(t);
  t.is((await repo('key', 'add', '--repo', state, '--public-key', next.pub)).exitCode, 0);
  const retire = await repo('key', 'retire', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT, '--valid-until', '2026-08-01T00:00:00Z', '--json');
  t.is(retire.exitCode, 0, retire.stderr);
  t.deepEqual(JSON.parse(retire.stdout), {
    action: 'retire',
    repo: state,
    fingerprint: VECTOR_FINGERPRINT,
    status: 'transitioning',
    valid_until: '2026-08-01T00:00:00Z',
    key_file_written: null,
    resign_required: true,
    signers: [VECTOR_FINGERPRINT, next.fp].sort(),
  });
  t.deepEqual((await keysOf(state)).find((k) => k.fingerprint === VECTOR_FINGERPRINT), {
    fingerprint: VECTOR_FINGERPRINT, url: `/keys/${VECTOR_FINGERPRINT}.pub`, status: 'transitioning', valid_until: '2026-08-01T00:00:00Z',
  });
  // The transitioning key may still sign (repository.md §10 step 3).
  t.is((await repo('resign', '--repo', state, '--sign-key', oldKey)).exitCode, 0);
  t.is((await repo('verify', '--repo', state)).exitCode, 0);
  t.is((await publishInPlace(state, await tempDir(t), oldKey, '2026-05-07T02:00:00Z')).exitCode, 0);

  // Later: the farm signs with the new key, and the old entry goes.
  const remove = await repo('key', 'revoke', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT, '--remove');
  t.is(remove.exitCode, 0, remove.stderr);
  t.regex(remove.stdout, new RegExp(`^removed key ${VECTOR_FINGERPRINT} in repo\\.json\\n`));
  t.deepEqual(await keysOf(state), [{ fingerprint: next.fp, url: `/keys/${next.fp}.pub`, status: 'active' }]);
  t.is((await repo('resign', '--repo', state, '--sign-key', next.priv)).exitCode, 0);
  t.is((await repo('verify', '--repo', state)).exitCode, 0);
  const refused = await publishInPlace(state, await tempDir(t), oldKey, '2026-05-07T03:00:00Z');
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /--sign-key a18112b0.* is not listed in repo\.json/);
});

test('key add --status transitioning --valid-until, --json, and a raw 32-byte public key', async (t) => {
  const { state } = await fixture(t);
  const raw = join(await tempDir(t), 'raw.pub');
  const next = await newKey(t);
  const info = signingKeyInfo(loadSigningKey(next.priv));
  await writeFile(raw, info.publicKey);
  const add = await repo('key', 'add', '--repo', state, '--public-key', raw, '--status', 'transitioning', '--valid-until', '2026-09-01T00:00:00Z', '--json');
  t.is(add.exitCode, 0, add.stderr);
  t.deepEqual(JSON.parse(add.stdout), {
    action: 'add',
    repo: state,
    fingerprint: next.fp,
    status: 'transitioning',
    valid_until: '2026-09-01T00:00:00Z',
    key_file_written: `keys/${next.fp}.pub`,
    resign_required: true,
    signers: [VECTOR_FINGERPRINT, next.fp].sort(),
  });
  t.is(await readFile(join(state, 'keys', `${next.fp}.pub`), 'utf8'), info.publicKeyPem, 'the key file is written as PEM');
  t.deepEqual((await keysOf(state)).find((k) => k.fingerprint === next.fp)?.valid_until, '2026-09-01T00:00:00Z');
  const revoke = await repo('key', 'revoke', '--repo', state, '--fingerprint', next.fp, '--json');
  t.is(revoke.exitCode, 0, revoke.stderr);
  t.deepEqual(JSON.parse(revoke.stdout), {
    action: 'revoke', repo: state, fingerprint: next.fp, status: 'revoked', key_file_written: null, resign_required: true, signers: [VECTOR_FINGERPRINT],
  });
  t.deepEqual((await keysOf(state)).find((k) => k.fingerprint === next.fp), { fingerprint: next.fp, url: `/keys/${next.fp}.pub`, status: 'revoked' }, 'valid_until is dropped');
  t.is((await repo('resign', '--repo', state, '--sign-key', await vectorSeedFile(t))).exitCode, 0);
  t.is((await repo('verify', '--repo', state)).exitCode, 0);
});

test('key commands refuse bad input, naming the flag or path, with nothing written', async (t) => {
  const { oldKey, state } = await fixture(t);
  const next = await newKey(t);
  const dir = await tempDir(t);
  const garbage = join(dir, 'garbage.pub');
  await writeFile(garbage, 'not a key\n');
  const oldPub = await vectorPublicKey(t, oldKey);
  const unknown = 'b'.repeat(64);
  const before = await snapshot(state);
  const repoJson = await readFile(join(state, 'repo.json'));

  const cases: Array<[string[], number, RegExp]> = [
    [['key'], 2, /a key command is required: add, retire or revoke/],
    [['key', 'rename'], 2, /Unknown argument: rename|unknown command/],
    [['key', 'add', '--public-key', next.pub], 1, /^peipkg-repo: --repo is required\n$/],
    [['key', 'add', '--repo', state], 1, /^peipkg-repo: --public-key is required\n$/],
    [['key', 'add', '--repo', state, '--public-key', join(dir, 'missing.pub')], 1, /^peipkg-repo: --public-key \S+missing\.pub: no such file\n$/],
    [['key', 'add', '--repo', state, '--public-key', dir], 1, /^peipkg-repo: --public-key \S+: is a directory\n$/],
    [['key', 'add', '--repo', state, '--public-key', garbage], 1, /^peipkg-repo: --public-key \S+garbage\.pub: .*\(expected an Ed25519 public key: SPKI PEM or 32 raw bytes\)\n$/],
    [['key', 'add', '--repo', state, '--public-key', next.priv], 1, /^peipkg-repo: --public-key \S+new\.pem is a private key; give its public half/],
    [['key', 'add', '--repo', state, '--public-key', oldPub], 1, new RegExp(`^peipkg-repo: key ${VECTOR_FINGERPRINT} \\(--public-key \\S+\\) is already listed in repo\\.json \\(status active\\); nothing changed\\n$`)],
    [['key', 'add', '--repo', state, '--public-key', next.pub, '--status', 'revoked'], 2, /^peipkg-repo: --status must be active or transitioning \(got "revoked"\)/],
    [['key', 'add', '--repo', state, '--public-key', next.pub, '--status', 'transitioning'], 2, /^peipkg-repo: --valid-until is required with --status transitioning/],
    [['key', 'add', '--repo', state, '--public-key', next.pub, '--valid-until', '2026-09-01T00:00:00Z'], 2, /^peipkg-repo: --valid-until applies only to --status transitioning/],
    [['key', 'add', '--repo', state, '--public-key', next.pub, '--status', 'transitioning', '--valid-until', 'next week'], 2, /^peipkg-repo: --valid-until: timestamp "next week" must be YYYY-MM-DDTHH:MM:SSZ/],
    [['key', 'add', '--repo', join(dir, 'nope'), '--public-key', next.pub], 1, /^peipkg-repo: --repo \S+nope: no such directory\n$/],
    [['key', 'add', '--repo', dir, '--public-key', next.pub], 1, /^peipkg-repo: --repo \S+ is not a readable repository state: read repo\.json: no such file or directory\n$/],
    [['key', 'revoke', '--repo', state], 1, /^peipkg-repo: --fingerprint is required\n$/],
    [['key', 'revoke', '--repo', state, '--fingerprint', 'A18112B0'], 2, /^peipkg-repo: --fingerprint "A18112B0": expected 64 lowercase hex digits/],
    [['key', 'revoke', '--repo', state, '--fingerprint', unknown], 1, new RegExp(`^peipkg-repo: --fingerprint ${unknown} is not listed in repo\\.json \\(listed: ${VECTOR_FINGERPRINT} \\(active\\)\\); nothing changed\\n$`)],
    [['key', 'revoke', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT], 1, /^peipkg-repo: revoking a18112b0\w+: the key list would break PSD-009 §6\.1\.3, so repo\.json is left as it was:\n {2}at least one key must be active\n$/],
    [['key', 'revoke', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT, '--remove'], 1, /^peipkg-repo: removing a18112b0\w+: .*\n {2}at least one key must be active\n$/],
    [['key', 'retire', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT], 1, /^peipkg-repo: --valid-until is required\n$/],
    [['key', 'retire', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT, '--valid-until', '2026-08-01'], 2, /^peipkg-repo: --valid-until: timestamp "2026-08-01"/],
    [['key', 'retire', '--repo', state, '--fingerprint', VECTOR_FINGERPRINT, '--valid-until', '2026-08-01T00:00:00Z'], 1, /^peipkg-repo: retiring a18112b0\w+: .*\n {2}at least one key must be active\n$/],
    [['key', 'retire', '--repo', state, '--fingerprint', unknown, '--valid-until', '2026-08-01T00:00:00Z'], 1, /is not listed in repo\.json/],
    [['key', 'add', '--repo', state, '--public-key', next.pub, '--lock-timeout', 'soon'], 2, /^peipkg-repo: --lock-timeout "soon": expected a positive duration/],
  ];
  for (const [args, code, message] of cases) {
    const result = await repo(...args);
    t.is(result.exitCode, code, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
    t.notRegex(result.stderr, /\n\s+at .*:\d+:\d+\)?\n/, 'no stack trace');
    t.is(result.stdout, '', args.join(' '));
  }
  t.deepEqual(await readFile(join(state, 'repo.json')), repoJson, 'repo.json bytes unchanged');
  t.deepEqual(await snapshot(state), before, 'nothing in the state changed');
});

test('key edits refuse a descriptor that already breaks the key rules, and an already revoked key', async (t) => {
  const { state } = await fixture(t);
  const next = await newKey(t);
  const other = await newKey(t);
  t.is((await repo('key', 'add', '--repo', state, '--public-key', next.pub)).exitCode, 0);
  t.is((await repo('key', 'revoke', '--repo', state, '--fingerprint', next.fp)).exitCode, 0);
  const revokedBefore = await snapshot(state);
  const again = await repo('key', 'revoke', '--repo', state, '--fingerprint', next.fp);
  t.is(again.exitCode, 1);
  t.is(again.stderr, `peipkg-repo: --fingerprint ${next.fp} is already revoked in repo.json; nothing changed\n`);
  const readd = await repo('key', 'add', '--repo', state, '--public-key', next.pub);
  t.is(readd.exitCode, 1);
  t.regex(readd.stderr, /is already listed in repo\.json \(status revoked\)/);
  const retire = await repo('key', 'retire', '--repo', state, '--fingerprint', next.fp, '--valid-until', '2026-08-01T00:00:00Z');
  t.is(retire.exitCode, 1);
  t.regex(retire.stderr, /is revoked in repo\.json, not active/);
  t.deepEqual(await snapshot(state), revokedBefore);

  // A hand edit that put the keys out of order: key edits refuse until it is fixed.
  const path = join(state, 'repo.json');
  const descriptor = JSON.parse(await readFile(path, 'utf8')) as { repo: { signing: { keys: Key[] } } };
  descriptor.repo.signing.keys.reverse();
  await writeFile(path, JSON.stringify(descriptor));
  const bytes = await readFile(path);
  const before = await snapshot(state);
  const add = await repo('key', 'add', '--repo', state, '--public-key', other.pub);
  t.is(add.exitCode, 1);
  t.regex(add.stderr, /^peipkg-repo: repo\.json as it is: the key list would break PSD-009 §6\.1\.3, so repo\.json is left as it was:\n {2}keys must be sorted by fingerprint/);
  t.deepEqual(await readFile(path), bytes);
  t.deepEqual(await snapshot(state), before, 'no key file written either');
});

test('help key and key add/retire/revoke --help', async (t) => {
  const help = await repo('help', 'key');
  t.is(help.exitCode, 0, help.stderr);
  for (const sub of ['add', 'retire', 'revoke']) t.regex(help.stdout, new RegExp(`peipkg-repo key ${sub}`));
  t.is((await repo('key', '--help')).stdout, help.stdout);
  const add = await repo('key', 'add', '--help');
  t.is(add.exitCode, 0);
  for (const flag of ['--repo', '--public-key', '--status', '--valid-until', '--json']) t.true(add.stdout.includes(flag), flag);
  const revoke = await repo('key', 'revoke', '--help');
  for (const flag of ['--repo', '--fingerprint', '--remove', '--json']) t.true(revoke.stdout.includes(flag), flag);
  const retire = await repo('key', 'retire', '--help');
  for (const flag of ['--fingerprint', '--valid-until']) t.true(retire.stdout.includes(flag), flag);
});
