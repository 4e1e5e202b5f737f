/**
 * Every kind of bad input to peipkg-repo: the message (the contract's, or verify's text prefixed
 * `load previous state: `), the exit code, and a state byte-for-byte unchanged on disk.
 */

import { readFile, writeFile, rm, mkdir, stat, symlink, truncate } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { signingKeyFromBytes } from '../../ts/native.js';
import { runTool, type ToolResult } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { initState, publishInPlace, snapshot, vectorSeedFile, VECTOR_FINGERPRINT } from '../helpers/repo.js';
import { peakRss } from '../helpers/memory.js';

interface Fixture {
  key: string;
  state: string;
  incoming: string;
}

/** A state with one package published, and an empty directory for the next publish's packages. */
async function fixture(t: ExecutionContext): Promise<Fixture> {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const first = await tempDir(t);
  await makePackage(first, { name: 'alpha', version: '1.0-1' });
  t.is((await publishInPlace(state, first, key, '2026-05-07T01:00:00Z')).exitCode, 0);
  return { key, state, incoming: await tempDir(t) };
}

/** Runs `attempt` and checks it fails with `code` and `message`, leaving `state` as it was. */
async function refused(t: ExecutionContext, state: string, attempt: () => Promise<ToolResult>, code: number, message: RegExp): Promise<void> {
  const before = await snapshot(state);
  const result = await attempt();
  t.is(result.exitCode, code, result.stderr);
  t.regex(result.stderr, message);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
  t.deepEqual(await snapshot(state), before, 'the state on disk is unchanged');
}

test('a package with one corrupted byte is refused, naming the file and the rule', async (t) => {
  const f = await fixture(t);
  const path = await makePackage(f.incoming, { name: 'beta', version: '1.0-1', content: 'x'.repeat(4000) });
  const bytes = await readFile(path);
  bytes[bytes.length - 20]! ^= 0xff;
  await writeFile(path, bytes);
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1, /beta_1\.0-1_noarch\.peipkg: not a valid package:\n {2}.*(zstd|SHA-256|checksum|differs)/);
});

test('a tampered index is refused by publish and reported by verify', async (t) => {
  const f = await fixture(t);
  const archive = join(f.state, 'index/archive.json');
  await writeFile(archive, (await readFile(archive, 'utf8')).replace('The alpha test package.', 'The alpha test package!'));
  await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1,
    /^peipkg-repo: load previous state: archive\.json: signature does not verify against the declared key\n$/);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', f.state, '--mode', 'metadata']);
  t.is(verify.exitCode, 1);
  t.regex(verify.stderr, /FAIL: archive\.json: signature does not verify against the declared key\npeipkg-repo: 1 issue\(s\) found/);
});

test('a missing .sig is refused by publish and fails verify', async (t) => {
  const f = await fixture(t);
  await rm(join(f.state, 'index/active.json.sig'));
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1,
    /load previous state: active\.json: no detached signature present/);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', f.state, '--mode', 'metadata', '--json']);
  t.is(verify.exitCode, 1);
  t.deepEqual((JSON.parse(verify.stdout) as { issues: string[] }).issues, ['active.json: no detached signature present (a signed repository needs active.json.sig)']);
});

test('a --sign-key the descriptor does not list is refused', async (t) => {
  const f = await fixture(t);
  const other = join(await tempDir(t), 'other.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', other]);
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, other, '2026-05-07T02:00:00Z'), 1, /--sign-key [0-9a-f]{64} is not listed in repo\.json/);
});

test('a package signed by a key the descriptor does not list is refused, naming the fingerprint', async (t) => {
  const f = await fixture(t);
  const stranger = signingKeyFromBytes(Buffer.alloc(32, 7));
  await makePackage(f.incoming, { name: 'beta', version: '1.0-1', signingKey: stranger });
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1,
    /beta_1\.0-1_noarch\.peipkg: not a valid package:\n {2}signed by key [0-9a-f]{64}, which is not a trusted key/);
});

test('re-publishing the same (name, version, architecture) is refused with the contract message', async (t) => {
  const f = await fixture(t);
  await makePackage(f.incoming, { name: 'alpha', version: '1.0-1', content: 'different bytes\n' });
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1,
    /package alpha_1\.0-1_noarch already exists in the archive \(§6\.3 forbids re-publishing the same name\+version\+architecture\)/);
});

test('the same (name, version, architecture) twice in one batch is refused, naming both files', async (t) => {
  const f = await fixture(t);
  const first = await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
  await execa('cp', [first, join(f.incoming, 'copy-of-beta.peipkg')]);
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1,
    /package beta_1\.0-1_noarch is in the batch twice \(beta_1\.0-1_noarch\.peipkg and copy-of-beta\.peipkg\)/);
});

for (const [kind, make] of [
  ['a directory', (path: string) => mkdir(path)],
  ['a FIFO', (path: string) => execa('mkfifo', [path])],
  ['a dangling symlink', (path: string) => execa('ln', ['-s', 'nowhere', path])],
] as const) {
  test(`a *.peipkg in --new that is ${kind} is refused, naming it, and nothing is published`, async (t) => {
    const f = await fixture(t);
    await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
    const odd = join(f.incoming, 'gamma_1.0-1_noarch.peipkg');
    await make(odd);
    await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1,
      new RegExp(`${odd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is ${kind}, not a package file`));
  });
}

test('conflicting active entries (a top-version tie across architectures) are refused', async (t) => {
  const f = await fixture(t);
  await makePackage(f.incoming, { name: 'alpha', version: '2.0-1', architecture: 'x86_64' });
  await makePackage(f.incoming, { name: 'alpha', version: '2.0-1', architecture: 'aarch64' });
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1, /active index conflict: alpha exists at version 2\.0-1/);
});

test('unsigned packages are refused with --require-signed', async (t) => {
  const f = await fixture(t);
  await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z', ['--require-signed']), 1,
    /the package is unsigned, and signed packages are required/);
});

test('a timestamp earlier than the current generated_at is refused', async (t) => {
  const f = await fixture(t);
  await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T00:30:00Z'), 1,
    /--timestamp 2026-05-07T00:30:00Z is earlier than the state's generated_at 2026-05-07T01:00:00Z/);
});

test('init refuses a non-empty --out', async (t) => {
  const key = await vectorSeedFile(t);
  const out = await tempDir(t);
  await writeFile(join(out, 'keep-me'), 'data');
  await refused(t, out, () => runTool('peipkg-repo', ['init', '--name', 'rt', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', out]), 1,
    /is not empty \(Init refuses to overwrite existing state; use a fresh directory\)/);
});

test('a relative or .. URL template is a usage error', async (t) => {
  const f = await fixture(t);
  await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
  for (const template of ['{filename}', 'p/{name}/{filename}', '/p/../../{filename}', '//cdn.example/{filename}']) {
    await refused(t, f.state, () => publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z', ['--package-url-template', template]), 2,
      /--package-url-template: /);
  }
});

test('a package URL inside the repository\'s own files, on a temporary name, or on another package\'s URL is refused', async (t) => {
  const cases: Array<{ name: string; template: string; message: RegExp }> = [
    { name: 'index', template: '/{name}/{filename}', message: /package index_1\.0-1_noarch: its URL \/index\/index_1\.0-1_noarch\.peipkg .* is inside the repository's own index\//u },
    { name: 'index.html', template: '/{name}', message: /its URL \/index\.html .* is inside the repository's own index\.html/u },
    { name: 'x.tmp-y', template: '/{name}/{filename}', message: /starts with "x\.tmp-y", a name publish keeps for its temporary files/u },
    { name: 'alpha', template: '/pool/{name}.peipkg', message: /alpha_2\.0-1_noarch: its URL \/pool\/alpha\.peipkg .* is already the URL of alpha_1\.0-1_noarch/u },
    { name: 'beta', template: '/p/{name}/manifest.json', message: /is named manifest\.json, which publish writes beside every package/u },
  ];
  for (const c of cases) {
    const key = await vectorSeedFile(t);
    const state = await initState(t, key);
    const first = await tempDir(t);
    await makePackage(first, { name: 'alpha', version: '1.0-1' });
    t.is((await publishInPlace(state, first, key, '2026-05-07T01:00:00Z', ['--package-url-template', '/pool/{name}.peipkg'])).exitCode, 0);
    const incoming = await tempDir(t);
    await makePackage(incoming, { name: c.name, version: c.name === 'alpha' ? '2.0-1' : '1.0-1' });
    await refused(t, state, () => publishInPlace(state, incoming, key, '2026-05-07T02:00:00Z', ['--package-url-template', c.template]), 1, c.message);
    t.is((await runTool('peipkg-repo', ['verify', '--repo', state])).exitCode, 0, `${c.name}: the state still verifies`);
  }
});

test('publish removes only what interrupted writers leave, never a published path that merely contains .tmp-', async (t) => {
  const f = await fixture(t);
  // A state made elsewhere may hold such a path; it must survive our clean-up.
  const kept = join(f.state, 'mirror.tmp-keep');
  await mkdir(kept);
  await writeFile(join(kept, 'note'), 'published by hand\n');
  const leftovers = ['staging.tmp-0123456789ab', 'index.tmp-0123456789ab', 'repo.json.tmp-0123456789ab'];
  for (const name of leftovers) await mkdir(join(f.state, name));
  await writeFile(join(f.state, 'keys', `${'0'.repeat(64)}.pub.tmp-0123456789ab`), 'half a key');
  await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
  t.is((await publishInPlace(f.state, f.incoming, f.key, '2026-05-07T02:00:00Z')).exitCode, 0);
  const after = await snapshot(f.state);
  t.is(after.get('mirror.tmp-keep/note') !== undefined, true, 'the hand-published file is kept');
  t.deepEqual([...after.keys()].filter((p) => /\.tmp-[0-9a-f]{12}/.test(p)), [], 'every writer leftover is gone');
  for (const name of leftovers) t.false(await stat(join(f.state, name)).then(() => true, () => false), name);
});

test('a malformed --mode and a missing --repo', async (t) => {
  const f = await fixture(t);
  await refused(t, f.state, () => runTool('peipkg-repo', ['verify', '--repo', f.state, '--mode', 'fast']), 2, /--mode must be one of metadata, hashes, both \(got "fast"\)/);
  await refused(t, f.state, () => runTool('peipkg-repo', ['verify']), 1, /--repo is required/);
  const missing = join(await tempDir(t), 'nothing');
  await mkdir(missing);
  const load = await runTool('peipkg-repo', ['verify', '--repo', missing]);
  t.is(load.exitCode, 1);
  t.regex(load.stderr, /^peipkg-repo: load state: read repo\.json: no such file or directory\n$/);
});

/**
 * A state copied from a mirror decides what sits at each path. A FIFO there used to make verify
 * and publish wait forever for a writer, and a symlink to /dev/zero read without end: each is
 * refused at once, naming the document, and publish leaves the state as it was.
 */
const STATE_DOCUMENTS = ['repo.json', 'repo.json.sig', 'index/active.json', 'index/archive.json', 'index/archive.json.sig', `keys/${VECTOR_FINGERPRINT}.pub`];

for (const [kind, make, said] of [
  ['a FIFO', (path: string) => execa('mkfifo', [path]), 'a FIFO'],
  ['a symlink to /dev/zero', (path: string) => symlink('/dev/zero', path), 'a device'],
] as const) {
  test(`${kind} in place of any document of a state is refused at once by verify and publish, naming it`, async (t) => {
    const f = await fixture(t);
    await makePackage(f.incoming, { name: 'beta', version: '1.0-1' });
    for (const doc of STATE_DOCUMENTS) {
      const state = join(await tempDir(t), 'state');
      await execa('cp', ['-a', f.state, state]);
      await rm(join(state, doc));
      await make(join(state, doc));
      const named = new RegExp(`${doc.replace(/[.]/g, '\\.')}: is ${said}, not a regular file`);
      const verify = await runTool('peipkg-repo', ['verify', '--repo', state, '--mode', 'both'], { timeoutMs: 20_000 });
      t.is(verify.exitCode, 1, `verify, ${doc}: ${verify.stderr}`);
      t.regex(verify.stderr, named, doc);
      t.notRegex(verify.stderr, /\n\s+at /, 'no stack trace');
      await refused(t, state, () => publishInPlace(state, f.incoming, f.key, '2026-05-07T02:00:00Z'), 1, named);
    }
  });
}

test('a package file of the state that is a FIFO fails the hash check instead of waiting for a writer', async (t) => {
  const f = await fixture(t);
  const [published] = (await execa('find', [join(f.state, 'p'), '-name', '*.peipkg'])).stdout.split('\n');
  await rm(published!);
  await execa('mkfifo', [published!]);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', f.state, '--mode', 'hashes'], { timeoutMs: 20_000 });
  t.is(verify.exitCode, 1, verify.stderr);
  t.regex(verify.stdout + verify.stderr, /alpha_1\.0-1_noarch\.peipkg: is a FIFO, not a regular file/);
  const inspect = await runTool('peipkg-build', ['verify', published!], { timeoutMs: 20_000 });
  t.is(inspect.exitCode, 1, inspect.stderr);
  t.regex(inspect.stderr, /alpha_1\.0-1_noarch\.peipkg: is a FIFO, not a regular file/);
});

test('a repo.json larger than any real one (a sparse 20 MiB file) is refused without being read whole', async (t) => {
  const f = await fixture(t);
  await truncate(join(f.state, 'repo.json'), 20 << 20);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', f.state]);
  t.is(verify.exitCode, 1);
  t.regex(verify.stderr, /^peipkg-repo: load state: read repo\.json: is larger than 16MiB, more than such a file ever holds\n$/);
});

test('an index that stops being JSON after its first bytes (a sparse 4 GiB archive.json) fails at the parse error without being read whole', async (t) => {
  const f = await fixture(t);
  const repoJson = await readFile(join(f.state, 'repo.json'), 'utf8');
  // The real document, then 4 GiB of holes: NUL bytes, which no JSON may hold.
  await truncate(join(f.state, 'index', 'archive.json'), 4 * 2 ** 30);
  for (const args of [['verify', '--repo', f.state, '--mode', 'metadata'], ['publish', '--in', f.state, '--new', f.incoming, '--sign-key', f.key, '--timestamp', '2026-05-07T02:00:00Z', '--out', f.state]]) {
    const run = execa(process.execPath, [join(repoRoot, 'bin', 'peipkg-repo.js'), ...args], { reject: false, timeout: 120_000, stripFinalNewline: false });
    let peak = 0;
    const sampler = setInterval(() => void peakRss(run.pid!).then((rss) => (peak = Math.max(peak, rss ?? 0))), 20);
    const result = await run.finally(() => clearInterval(sampler));
    t.is(result.exitCode, 1, `${args[0]}: ${result.stderr}`);
    t.regex(result.stderr, /^peipkg-repo: load (previous )?state: parse index\/archive\.json: trailing characters at line \d+ column \d+\n$/, args[0]);
    // Reading the holes to hash them (or mapping them up front) made the process 4 GiB large.
    t.true(peak < 512 << 20, `${args[0]}: peak RSS ${Math.round(peak / 1048576)} MiB`);
  }
  t.is((await stat(join(f.state, 'index', 'archive.json'))).size, 4 * 2 ** 30, 'publish left the index as it was');
  t.deepEqual(JSON.parse(await readFile(join(f.state, 'repo.json'), 'utf8')), JSON.parse(repoJson), 'and repo.json');
});
