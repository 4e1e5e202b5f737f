/**
 * Rough edges of the command lines, through the real CLIs: every missing required flag named in
 * one message (all three tools), unknown commands called unknown commands (peipkg-manager's
 * default command included), `verify --list`, and `pack` refusing unknown manifest keys and naming
 * missing objects as missing. Each refusal checks the exit code, the message, that there is no
 * stack trace, and that nothing was written.
 */

import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { parsePublicKey } from '../../ts/native.js';
import { runTool, type Tool, type ToolResult } from '../helpers/cli.js';
import { testPublicKeyPath, vector } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { privateTestKey, stagedTree } from '../helpers/vectors.js';

function refused(t: ExecutionContext, result: ToolResult, code: number, message: RegExp): void {
  t.is(result.exitCode, code, result.stderr);
  t.regex(result.stderr, message);
  t.notRegex(result.stderr, /\n\s+at /, 'no stack trace for a user mistake');
  t.notRegex(result.stderr, /internal error/);
  t.is(result.stdout, '');
}

async function exists(path: string): Promise<boolean> {
  return (await execa('test', ['-e', path], { reject: false })).exitCode === 0;
}

// ── 1. Every missing required flag, at once ────────────────────────────────────────────────────

const missingFlags: Array<[Tool, string[], string]> = [
  ['peipkg-build', ['build'], '--recipe, --source, --version, --source-ref, --farm-id, --timestamp and --out are required'],
  ['peipkg-build', ['build', '--recipe', 'r.toml', '--version', '1.0-1', '--farm-id', 'f'], '--source, --source-ref, --timestamp and --out are required'],
  ['peipkg-build', ['pack', '--sign-key', 'k'], '--manifest, --staged and --out are required'],
  ['peipkg-build', ['pack', '--staged', 'tree'], '--manifest and --out are required'],
  ['peipkg-build', ['check'], '--recipe is required'],
  ['peipkg-build', ['binary-sign'], '--in and --key are required'],
  ['peipkg-repo', ['init'], '--name, --sign-key, --timestamp and --out are required'],
  ['peipkg-repo', ['publish', '--timestamp', '2026-05-07T00:00:00Z'], '--in, --sign-key and --out are required'],
  ['peipkg-repo', ['verify'], '--repo is required'],
  ['peipkg-repo', ['resign'], '--repo and --sign-key are required'],
];

for (const [tool, args, message] of missingFlags) {
  test(`${tool} ${args.join(' ')}: one message names every missing flag, exit 1`, async (t) => {
    const cwd = await tempDir(t);
    const result = await runTool(tool, args, { cwd });
    refused(t, result, 1, new RegExp(`^${tool}: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
    t.deepEqual(await readdir(cwd), [], 'nothing is written');
  });
}

test('a missing flag is reported before any file is touched (build: the --out directory is not made)', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'out');
  const result = await runTool('peipkg-build', ['build', '--out', out, '--sign-key', join(dir, 'no-such-key')]);
  refused(t, result, 1, /--recipe, --source, --version, --source-ref, --farm-id and --timestamp are required/);
  t.false(await exists(out));
});

test('peipkg-repo init with only --out: the missing flags are named and --out is not created', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'state');
  refused(t, await runTool('peipkg-repo', ['init', '--out', out]), 1, /--name, --sign-key and --timestamp are required/);
  t.false(await exists(out));
});

// ── 2. Unknown commands ────────────────────────────────────────────────────────────────────────

for (const tool of ['peipkg-build', 'peipkg-repo', 'peipkg-manager'] as const) {
  test(`${tool} frobnicate: unknown command, exit 2, with the hint to run help`, async (t) => {
    const cwd = await tempDir(t);
    for (const args of [['frobnicate'], ['frobnicate', '--json'], ['frobnicate', 'build']]) {
      const result = await runTool(tool, args, { cwd });
      t.is(result.exitCode, 2, args.join(' '));
      t.is(result.stderr, `${tool}: unknown command "frobnicate"\nRun \`${tool} help\` for the list of commands.\n`, args.join(' '));
      t.is(result.stdout, '');
    }
    t.deepEqual(await readdir(cwd), []);
  });
}

test('peipkg-manager: a stray word after the daemon\'s flags is an unknown command; the daemon does not start', async (t) => {
  const dir = await tempDir(t);
  // A configuration that does not exist: were the daemon started, it would say so (exit 1).
  const config = join(dir, 'missing.toml');
  for (const args of [
    ['--config', config, 'frobnicate'],
    ['--config', config, '--once', 'frobnicate'],
    ['--once', '--log-format', 'json', 'frobnicate'],
    ['--config=' + config, 'frobnicate', '--once'],
    ['--', 'frobnicate'],
  ]) {
    const result = await runTool('peipkg-manager', args);
    t.is(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
    t.regex(result.stderr, /^peipkg-manager: unknown command "frobnicate"\nRun `peipkg-manager help` for the list of commands\.\n$/, args.join(' '));
    t.notRegex(result.stderr, /read config/);
  }
  t.deepEqual(await readdir(dir), []);
});

test('peipkg-manager: the default command, worker, help and completion still work', async (t) => {
  const dir = await tempDir(t);
  const config = join(dir, 'missing.toml');
  // The daemon (default command) runs and reads its configuration.
  for (const args of [['--config', config, '--once'], ['--once', '--config', config], ['--log-level', 'debug', '--config', config, '--once']]) {
    const daemon = await runTool('peipkg-manager', args);
    t.is(daemon.exitCode, 1, args.join(' '));
    t.regex(daemon.stderr, /read config .*missing\.toml/, args.join(' '));
  }
  // worker is dispatched (its own refusal of --once proves it ran).
  const worker = await runTool('peipkg-manager', ['worker', '--once']);
  t.is(worker.exitCode, 2);
  t.regex(worker.stderr, /--once is for the coordinator/);
  const workerConfig = await runTool('peipkg-manager', ['--config', config, 'worker']);
  t.is(workerConfig.exitCode, 1, workerConfig.stderr);
  t.regex(workerConfig.stderr, /missing\.toml/);
  for (const args of [['help'], ['help', 'worker'], ['--help'], ['worker', '--help'], ['completion']]) {
    const result = await runTool('peipkg-manager', args);
    t.is(result.exitCode, 0, `${args.join(' ')}: ${result.stderr}`);
    t.not(result.stdout, '');
  }
  refused(t, await runTool('peipkg-manager', ['help', 'frobnicate']), 2, /unknown command "frobnicate"/);
});

test('peipkg-build and peipkg-repo: known commands, help and completion are unaffected; a stray word after a command is an unknown argument', async (t) => {
  for (const [tool, args] of [
    ['peipkg-build', ['help']],
    ['peipkg-build', ['help', 'verify']],
    ['peipkg-build', ['pack', '--help']],
    ['peipkg-build', ['completion']],
    ['peipkg-repo', ['help', 'publish']],
    ['peipkg-repo', ['-h']],
  ] as const) {
    const result = await runTool(tool, [...args]);
    t.is(result.exitCode, 0, `${tool} ${args.join(' ')}: ${result.stderr}`);
  }
  const stray = await runTool('peipkg-build', ['pack', 'stray']);
  refused(t, stray, 2, /Unknown argument: stray/);
  t.notRegex(stray.stderr, /unknown command/);
  refused(t, await runTool('peipkg-build', []), 2, /a command is required/);
});

// ── 3. verify --list ───────────────────────────────────────────────────────────────────────────

const LIBFOO_DEV = vector('libfoo-multipackage/libfoo-dev_1.2.3-1_x86_64.peipkg');

test('verify --list shows each file: type and mode, size, path, and a symlink\'s target', async (t) => {
  const { fingerprint } = parsePublicKey(await readFile(testPublicKeyPath));
  const result = await runTool('peipkg-build', ['verify', '--list', LIBFOO_DEV, '--public-key', testPublicKeyPath]);
  t.is(result.exitCode, 0, result.stderr);
  t.is(
    result.stdout,
    [
      `${LIBFOO_DEV}: valid, signed by ${fingerprint} (signature verified)`,
      'drwxrwxrwx   0 usr/',
      'drwxrwxrwx   0 usr/include/',
      '-rwxrwxrwx 122 usr/include/foo.h',
      'drwxrwxrwx   0 usr/lib/',
      'drwxrwxrwx   0 usr/lib/x86_64-linux-peios/',
      '-rwxrwxrwx  66 usr/lib/x86_64-linux-peios/libfoo.a',
      'lrwxrwxrwx   0 usr/lib/x86_64-linux-peios/libfoo.so -> libfoo.so.1',
      'drwxrwxrwx   0 usr/lib/x86_64-linux-peios/pkgconfig/',
      '-rwxrwxrwx 236 usr/lib/x86_64-linux-peios/pkgconfig/foo.pc',
      '',
    ].join('\n'),
  );
  t.notRegex(result.stdout, /\.peipkg\//, 'metadata entries are not payload');
});

test('verify --list --json: a JSON array of results, each valid one with its files (snake_case keys)', async (t) => {
  const hello = vector('hello-noarch/signed.peipkg');
  const result = await runTool('peipkg-build', ['verify', '--list', '--json', LIBFOO_DEV, hello]);
  t.is(result.exitCode, 0, result.stderr);
  const parsed = JSON.parse(result.stdout) as Array<{ path: string; valid: boolean; files: Array<Record<string, unknown>> }>;
  t.true(Array.isArray(parsed));
  t.deepEqual(parsed.map((r) => [r.path, r.valid]), [[LIBFOO_DEV, true], [hello, true]]);
  const files = parsed[0]!.files;
  t.deepEqual(files.find((f) => f.path === 'usr/lib/x86_64-linux-peios/libfoo.so'), { path: 'usr/lib/x86_64-linux-peios/libfoo.so', type: 'symlink', size: 0, mode: '0777', link_target: 'libfoo.so.1' });
  t.deepEqual(files.find((f) => f.path === 'usr/include'), { path: 'usr/include', type: 'directory', size: 0, mode: '0777' });
  const header = files.find((f) => f.path === 'usr/include/foo.h')!;
  t.like(header, { type: 'file', size: 122, mode: '0777' });
  t.regex(String(header.sha256), /^[0-9a-f]{64}$/);
  for (const f of parsed.flatMap((r) => r.files)) for (const key of Object.keys(f)) t.regex(key, /^[a-z0-9_]+$/);
  // The file records agree with the package's own files.json.
  const { stdout } = await execa('sh', ['-c', `zstd -dc "${LIBFOO_DEV}" | tar -xOf - .peipkg/files.json`]);
  const records = (JSON.parse(stdout) as { entries: Array<{ path: string; size: number; hash: string }> }).entries;
  t.deepEqual(
    files.filter((f) => f.type === 'file').map((f) => ({ path: f.path, size: f.size, hash: f.sha256 })),
    records,
  );
  // Without --list, no files key: the output is as before.
  const plain = JSON.parse((await runTool('peipkg-build', ['verify', '--json', LIBFOO_DEV])).stdout) as Array<Record<string, unknown>>;
  t.false('files' in plain[0]!);
});

test('verify --list of an invalid package lists nothing and exits 1', async (t) => {
  const dir = await tempDir(t);
  const broken = join(dir, 'broken.peipkg');
  await writeFile(broken, 'not a package');
  const result = await runTool('peipkg-build', ['verify', '--list', broken]);
  t.is(result.exitCode, 1);
  t.regex(result.stdout, /broken\.peipkg: INVALID/);
  t.notRegex(result.stdout, /rwx/);
});

// ── 5. pack: unknown manifest keys, missing objects ────────────────────────────────────────────

const MANIFEST = { name: 'hello', version: '0.1-1', architecture: 'noarch', description: 'd', license: 'MIT', homepage: '',
  build: { timestamp: '2026-05-06T12:00:00Z', farm_id: 'f', source_ref: 'test://hello' } };

interface PackAttempt extends ToolResult {
  manifest: string;
  staged: string;
  out: string;
}

/** Runs pack with `manifest` written to a file, the hello vector's staged tree, and --out in a fresh directory. */
async function packWith(t: ExecutionContext, manifest: unknown, options: { staged?: string; manifestPath?: string } = {}): Promise<PackAttempt> {
  const dir = await tempDir(t);
  const path = options.manifestPath ?? join(dir, 'manifest.json');
  if (options.manifestPath === undefined) await writeFile(path, JSON.stringify(manifest));
  const staged = options.staged ?? (await stagedTree(t, 'hello-noarch'));
  const out = join(dir, 'out', 'hello_0.1-1_noarch.peipkg');
  const result = await runTool('peipkg-build', ['pack', '--manifest', path, '--staged', staged, '--out', out, '--sign-key', await privateTestKey(t)]);
  return { ...result, manifest: path, staged, out };
}

async function nothingWritten(t: ExecutionContext, attempt: PackAttempt): Promise<void> {
  t.false(await exists(attempt.out), 'no package');
  t.deepEqual(await readdir(join(attempt.out, '..')).catch(() => [] as string[]), [], 'no temporary files');
}

test('pack refuses unknown manifest keys, naming each key and the manifest', async (t) => {
  const attempt = await packWith(t, {
    ...MANIFEST,
    homepag: 'https://x.org',
    files: ['usr/share/hello/missing'],
    build: { ...MANIFEST.build, farmid: 'f' },
    dependencies: [{ name: 'libc', same_build: true }],
    provides: [{ name: 'hi', versoin: '1.0-1' }],
  });
  refused(t, attempt, 1, new RegExp(`^peipkg-build: ${attempt.manifest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid manifest:\\n`));
  for (const line of [
    /\n {2}homepag: unknown key\n/,
    /\n {2}files: unknown key \(pack packages every entry of --staged; a manifest lists no files\)\n/,
    /\n {2}build\.farmid: unknown key\n/,
    /\n {2}dependencies\[0\]\.same_build: unknown key \(a recipe key; in a manifest write the constraint/,
    /\n {2}provides\[0\]\.versoin: unknown key\n/,
  ]) t.regex(attempt.stderr, line);
  await nothingWritten(t, attempt);
});

test('pack still matches known keys ignoring case, as the reference does', async (t) => {
  const { version, ...rest } = MANIFEST;
  const attempt = await packWith(t, { ...rest, Version: version, BUILD: MANIFEST.build });
  t.is(attempt.exitCode, 0, attempt.stderr);
  t.true(await exists(attempt.out));
});

test('pack: a missing staged tree or manifest is named as missing, without a stack trace', async (t) => {
  const dir = await tempDir(t);
  const noTree = await packWith(t, MANIFEST, { staged: join(dir, 'no-such-tree') });
  refused(t, noTree, 1, /^peipkg-build: staged tree \S+no-such-tree does not exist \(--staged\)\n$/);
  await nothingWritten(t, noTree);
  await writeFile(join(dir, 'a-file'), 'x');
  const notDir = await packWith(t, MANIFEST, { staged: join(dir, 'a-file') });
  refused(t, notDir, 1, /staged tree \S+a-file is not a directory/);
  await nothingWritten(t, notDir);
  const noManifest = await packWith(t, undefined, { manifestPath: join(dir, 'no-such.json') });
  refused(t, noManifest, 1, /^peipkg-build: manifest \S+no-such\.json does not exist \(--manifest\)\n$/);
  await nothingWritten(t, noManifest);
});

test('pack: an SD override naming a path the staged tree lacks is named as missing; one naming a symlink is refused', async (t) => {
  const sd = 'AQAAgA';
  const missing = await packWith(t, { ...MANIFEST, sd_overrides: [{ path: 'usr/share/hello', sd }, { path: 'usr/share/hello/missing.txt', sd }] });
  refused(t, missing, 1, /sd_overrides\[1\]\.path: usr\/share\/hello\/missing\.txt is missing: no such file or directory in the staged tree /);
  t.notRegex(missing.stderr, /sd_overrides\[0\]/, 'a directory of the payload may carry an override');
  await nothingWritten(t, missing);

  const staged = await stagedTree(t, 'hello-noarch');
  const [first] = (await execa('find', [staged, '-type', 'f'])).stdout.split('\n');
  const relative = first!.slice(staged.length + 1);
  await symlink(relative.split('/').at(-1)!, join(staged, `${relative}.link`));
  const link = await packWith(t, { ...MANIFEST, sd_overrides: [{ path: `${relative}.link`, sd }] }, { staged });
  refused(t, link, 1, /sd_overrides\[0\]\.path: \S+\.link is a symlink; an SD override names a file or directory/);
  await nothingWritten(t, link);

  const ok = await packWith(t, { ...MANIFEST, sd_overrides: [{ path: relative, sd }] });
  t.is(ok.exitCode, 0, ok.stderr);
});
