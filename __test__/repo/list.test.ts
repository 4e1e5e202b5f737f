/**
 * `peipkg-repo list`: the active index by default, the archive with `--all`, the `--name` and
 * `--arch` filters, the aligned table and `--json`; every bad input with its message and exit
 * code, the state untouched. Also `init --json` and `resign --json`.
 */

import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { initState, publishInPlace, snapshot, vectorSeedFile, VECTOR_FINGERPRINT } from '../helpers/repo.js';

interface Row {
  name: string;
  version: string;
  architecture: string;
  size_compressed: number;
  size_installed: number;
  build_timestamp: string;
  active: boolean;
  url: string;
  sha256: string;
}

/** A state with alpha 1.0-1 and 1.1-1 (noarch), libfoo 2.0-1 (x86_64) and libbar 0.5-1 (x86_64), in two publishes. */
async function fixture(t: ExecutionContext): Promise<{ key: string; state: string }> {
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const first = await tempDir(t);
  await makePackage(first, { name: 'alpha', version: '1.0-1', timestamp: '2026-05-01T10:00:00Z' });
  await makePackage(first, { name: 'libfoo', version: '2.0-1', architecture: 'x86_64', content: 'f'.repeat(5000) });
  t.is((await publishInPlace(state, first, key, '2026-05-07T01:00:00Z')).exitCode, 0);
  const second = await tempDir(t);
  await makePackage(second, { name: 'alpha', version: '1.1-1', timestamp: '2026-05-02T10:00:00Z' });
  await makePackage(second, { name: 'libbar', version: '0.5-1', architecture: 'x86_64' });
  t.is((await publishInPlace(state, second, key, '2026-05-07T02:00:00Z')).exitCode, 0);
  return { key, state };
}

async function listJson(t: ExecutionContext, state: string, ...extra: string[]): Promise<Row[]> {
  const result = await runTool('peipkg-repo', ['list', '--repo', state, '--json', ...extra]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stderr, '');
  return JSON.parse(result.stdout) as Row[];
}

const triples = (rows: Row[]): string[] => rows.map((r) => `${r.name}_${r.version}_${r.architecture}`);

test('list shows the active index as an aligned table: latest version of each name', async (t) => {
  const { state } = await fixture(t);
  const result = await runTool('peipkg-repo', ['list', '--repo', state]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stderr, '');
  const lines = result.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^NAME\s+VERSION\s+ARCH\s+SIZE\s+BUILT$/);
  t.is(lines.length, 4);
  t.regex(lines[1]!, /^alpha\s+1\.1-1\s+noarch\s+\d+(\.\d)? (B|KiB)\s+2026-05-02T10:00:00Z$/);
  t.regex(lines[2]!, /^libbar\s+0\.5-1\s+x86_64\s/);
  t.regex(lines[3]!, /^libfoo\s+2\.0-1\s+x86_64\s/);
  // Aligned: every column starts at the same offset on every line.
  for (const heading of ['VERSION', 'ARCH', 'BUILT']) {
    const column = lines[0]!.indexOf(heading);
    for (const line of lines.slice(1)) t.true(line[column - 1] === ' ' && line[column] !== ' ', `${heading} column in ${line}`);
  }
  const sizeEnd = lines[0]!.indexOf('SIZE') + 'SIZE'.length;
  for (const line of lines.slice(1)) t.regex(line.slice(0, sizeEnd), /(B|KiB)$/, 'SIZE is right-aligned under its heading');
  t.notRegex(result.stdout, /alpha\s+1\.0-1/, 'an archived version is not in the active listing');
});

test('list --json gives the index data with snake_case keys; --all adds archived versions', async (t) => {
  const { state } = await fixture(t);
  const active = await listJson(t, state);
  t.deepEqual(triples(active), ['alpha_1.1-1_noarch', 'libbar_0.5-1_x86_64', 'libfoo_2.0-1_x86_64']);
  const index = JSON.parse(await readFile(join(state, 'index/active.json'), 'utf8')) as { packages: Array<Record<string, unknown>> };
  const alpha = index.packages[0] as { size_compressed: number; size_installed: number; url: string; hash: { value: string }; build: { timestamp: string } };
  t.deepEqual(active[0], {
    name: 'alpha',
    version: '1.1-1',
    architecture: 'noarch',
    size_compressed: alpha.size_compressed,
    size_installed: alpha.size_installed,
    build_timestamp: '2026-05-02T10:00:00Z',
    active: true,
    url: '/p/alpha/1.1-1/alpha_1.1-1_noarch.peipkg',
    sha256: alpha.hash.value,
  });
  t.is(active[0]!.size_compressed, (await stat(join(state, 'p/alpha/1.1-1/alpha_1.1-1_noarch.peipkg'))).size);

  const all = await listJson(t, state, '--all');
  t.deepEqual(triples(all), ['alpha_1.1-1_noarch', 'alpha_1.0-1_noarch', 'libbar_0.5-1_x86_64', 'libfoo_2.0-1_x86_64']);
  t.deepEqual(all.map((r) => r.active), [true, false, true, true]);
  t.is(all[1]!.build_timestamp, '2026-05-01T10:00:00Z');

  const table = await runTool('peipkg-repo', ['list', '--repo', state, '--all']);
  t.is(table.exitCode, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^NAME\s+VERSION\s+ARCH\s+SIZE\s+BUILT\s+ACTIVE$/);
  t.regex(lines[1]!, /^alpha\s+1\.1-1 .* yes$/);
  t.regex(lines[2]!, /^alpha\s+1\.0-1 .* -$/);
});

test('list filters by --name (exact or * ? pattern, repeatable) and --arch', async (t) => {
  const { state } = await fixture(t);
  t.deepEqual(triples(await listJson(t, state, '--name', 'alpha')), ['alpha_1.1-1_noarch']);
  t.deepEqual(triples(await listJson(t, state, '--name', 'alpha', '--all')), ['alpha_1.1-1_noarch', 'alpha_1.0-1_noarch']);
  t.deepEqual(triples(await listJson(t, state, '--name', 'lib*')), ['libbar_0.5-1_x86_64', 'libfoo_2.0-1_x86_64']);
  t.deepEqual(triples(await listJson(t, state, '--name', 'lib?oo')), ['libfoo_2.0-1_x86_64']);
  t.deepEqual(triples(await listJson(t, state, '--name', 'alp')), [], 'a name without * or ? is exact');
  t.deepEqual(triples(await listJson(t, state, '--name', 'alpha', '--name', 'libbar')), ['alpha_1.1-1_noarch', 'libbar_0.5-1_x86_64']);
  t.deepEqual(triples(await listJson(t, state, '--arch', 'x86_64')), ['libbar_0.5-1_x86_64', 'libfoo_2.0-1_x86_64']);
  t.deepEqual(triples(await listJson(t, state, '--arch', 'noarch', '--all')), ['alpha_1.1-1_noarch', 'alpha_1.0-1_noarch']);
  t.deepEqual(triples(await listJson(t, state, '--arch', 'x86_64', '--name', '*bar')), ['libbar_0.5-1_x86_64']);
  t.deepEqual(await listJson(t, state, '--arch', 'aarch64'), []);
  const none = await runTool('peipkg-repo', ['list', '--repo', state, '--arch', 'aarch64']);
  t.is(none.exitCode, 0);
  t.is(none.stdout, 'no packages in the active index match\n');
});

test('list of a new, empty state', async (t) => {
  const state = await initState(t, await vectorSeedFile(t));
  t.deepEqual(await listJson(t, state), []);
  const result = await runTool('peipkg-repo', ['list', '--repo', state, '--all']);
  t.is(result.exitCode, 0);
  t.is(result.stdout, 'no packages in the archive index\n');
});

test('list warns, on stderr, about a state whose signatures do not verify, and still lists it', async (t) => {
  const { state } = await fixture(t);
  const archive = join(state, 'index/archive.json');
  await writeFile(archive, (await readFile(archive, 'utf8')).replace('The alpha test package.', 'The alpha test package!'));
  const result = await runTool('peipkg-repo', ['list', '--repo', state, '--json', '--all']);
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stderr, /^peipkg-repo: warning: the state does not verify \(archive\.json: signature does not verify against the declared key\); run `peipkg-repo verify --repo /);
  t.is((JSON.parse(result.stdout) as Row[]).length, 4);
});

test('list refuses bad input with a message naming the flag or path, the right exit code, no stack, and writes nothing', async (t) => {
  const { state } = await fixture(t);
  const before = await snapshot(state);
  const dir = await tempDir(t);
  const file = join(dir, 'file');
  await writeFile(file, 'x');
  const cases: Array<[string[], number, RegExp]> = [
    [['list'], 1, /^peipkg-repo: --repo is required\n$/],
    [['list', '--repo', join(dir, 'missing')], 1, /^peipkg-repo: --repo \S+missing: no such directory\n$/],
    [['list', '--repo', file], 1, /^peipkg-repo: --repo \S+file: not a directory\n$/],
    [['list', '--repo', dir], 1, /^peipkg-repo: --repo \S+ is not a readable repository state: read repo\.json: no such file or directory\n$/],
    [['list', '--repo', state, '--name', 'Alpha'], 2, /^peipkg-repo: --name "Alpha": a package name or a pattern of a-z 0-9/],
    [['list', '--repo', state, '--name', 'al/pha'], 2, /^peipkg-repo: --name "al\/pha":/],
    [['list', '--repo', state, '--arch', 'X86'], 2, /^peipkg-repo: --arch: architecture "X86" must match/],
    [['list', '--repo', state, '--arch'], 2, /Not enough arguments following: arch/],
    [['list', '--repo', state, '--colour'], 2, /Unknown argument: colour/],
    [['list', '--repo', state, '--repo', state], 2, /--repo was given more than once/],
  ];
  for (const [args, code, message] of cases) {
    const result = await runTool('peipkg-repo', args);
    t.is(result.exitCode, code, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
    t.notRegex(result.stderr, /\n\s+at /, 'no stack trace');
    t.is(result.stdout, '', args.join(' '));
  }
  await writeFile(join(dir, 'repo.json'), '{"schema_version":');
  const broken = await runTool('peipkg-repo', ['list', '--repo', dir]);
  t.is(broken.exitCode, 1);
  t.regex(broken.stderr, /^peipkg-repo: --repo \S+ is not a readable repository state: parse repo\.json: /);
  t.deepEqual(await snapshot(state), before, 'list writes nothing');
});

test('help list describes the flags', async (t) => {
  const result = await runTool('peipkg-repo', ['help', 'list']);
  t.is(result.exitCode, 0, result.stderr);
  for (const flag of ['--repo', '--all', '--name', '--arch', '--json']) t.true(result.stdout.includes(flag), flag);
  t.is((await runTool('peipkg-repo', ['list', '--help'])).stdout, result.stdout);
});

test('init --json and resign --json print result objects with snake_case keys', async (t) => {
  const key = await vectorSeedFile(t);
  const out = join(await tempDir(t), 'state');
  const init = await runTool('peipkg-repo', ['init', '--name', 'rt', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', out, '--json']);
  t.is(init.exitCode, 0, init.stderr);
  t.deepEqual(JSON.parse(init.stdout), {
    name: 'rt',
    out,
    fingerprint: VECTOR_FINGERPRINT,
    key_file: `keys/${VECTOR_FINGERPRINT}.pub`,
    index_version: 1,
    generated_at: '2026-05-07T00:00:00Z',
  });
  const resign = await runTool('peipkg-repo', ['resign', '--repo', out, '--sign-key', key, '--json']);
  t.is(resign.exitCode, 0, resign.stderr);
  t.deepEqual(JSON.parse(resign.stdout), { repo: out, fingerprint: VECTOR_FINGERPRINT, signed: ['repo.json', 'index/active.json', 'index/archive.json'] });
  // A refused init with --json prints nothing on stdout.
  const again = await runTool('peipkg-repo', ['init', '--name', 'rt', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', out, '--json']);
  t.is(again.exitCode, 1);
  t.is(again.stdout, '');
  t.regex(again.stderr, /is not empty/);
});
