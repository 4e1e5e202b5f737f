/**
 * The npm packages as a user gets them: scripts/pack.sh's tarballs, installed globally into an
 * empty prefix with no registry (`--offline`, from the cache scripts/prime-offline-cache.sh filled)
 * and no Rust toolchain on PATH, must give three working commands; npx with the same tarballs too.
 */

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { platformTriple } from '../../ts/native.js';
import { repoRoot, testPublicKeyPath, vector } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { privateTestKey, stagedTree, tarOf } from '../helpers/vectors.js';
import { exists, npmCli, offlineCacheCopy, pathWithoutRust } from './helpers.js';

const platform = platformTriple();
let packDir = '';
let tarballs = { root: '', platform: '' };

test.before(async () => {
  packDir = await mkdtemp(join(tmpdir(), 'peipkg-pack-'));
  const { stdout } = await execa(join(repoRoot, 'scripts/pack.sh'), ['--out', packDir, platform], { cwd: repoRoot });
  const [root, platformTarball] = stdout.trim().split('\n');
  tarballs = { root: root ?? '', platform: platformTarball ?? '' };
});

test.after.always(async () => {
  if (packDir) await rm(packDir, { recursive: true, force: true });
});

/** The environment of a user's shell on a machine with Node and npm but no Rust. */
async function userEnv(t: ExecutionContext, prefix?: string): Promise<Record<string, string>> {
  const bin = await pathWithoutRust(t);
  return {
    PATH: prefix ? `${join(prefix, 'bin')}:${bin}` : bin,
    HOME: await tempDir(t, 'peipkg-home-'),
    LANG: 'C.UTF-8',
  };
}

test('the tarballs: root package plus the platform package with its addon', async (t) => {
  t.regex(tarballs.root, /\/peipkg-\d+\.\d+\.\d+\.tgz$/);
  const { version } = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  t.true(tarballs.platform.endsWith(`/peipkg-${platform}-${version}.tgz`), tarballs.platform);
  const { stdout: rootFiles } = await execa('tar', ['-tzf', tarballs.root]);
  t.false(rootFiles.includes('package/native/'), 'the addon comes from the platform package, not native/');
  const manifest = JSON.parse((await execa('tar', ['-xzOf', tarballs.root, 'package/package.json'])).stdout) as { optionalDependencies?: Record<string, string> };
  t.deepEqual(Object.keys(manifest.optionalDependencies ?? {}).sort(), ['peipkg-linux-arm64-gnu', 'peipkg-linux-x64-gnu']);
  const { stdout: platformFiles } = await execa('tar', ['-tzf', tarballs.platform]);
  t.deepEqual(platformFiles.split('\n').sort(), ['package/README.md', 'package/package.json', `package/peipkg-native.${platform}.node`].sort());
});

test('npm install -g --offline of the two tarballs, with no cargo or rustc on PATH, gives three working commands', async (t) => {
  const prefix = join(await tempDir(t, 'peipkg-prefix-'), 'prefix');
  const env = await userEnv(t, prefix);
  const rust = await execa('sh', ['-c', 'command -v cargo || command -v rustc'], { env, extendEnv: false, reject: false });
  t.is(rust.stdout, '', 'no Rust toolchain is reachable');

  const cache = await offlineCacheCopy(t);
  const started = Date.now();
  const install = await execa(
    process.execPath,
    [await npmCli(), 'install', '--global', '--offline', '--no-audit', '--no-fund', '--cache', cache, '--prefix', prefix, tarballs.root, tarballs.platform],
    { env, extendEnv: false, reject: false },
  );
  t.is(install.exitCode, 0, install.stderr);
  t.log(`offline global install: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const lib = join(prefix, 'lib', 'node_modules');
  t.deepEqual((await readdir(lib)).sort(), ['peipkg', `peipkg-${platform}`], 'the other platform package is skipped');
  t.false(await exists(join(lib, 'peipkg', 'native')));

  // peipkg-build: the hello vector, signed, decompresses to the reference tar.
  const out = join(await tempDir(t), 'out');
  const build = await execa(
    'peipkg-build',
    ['build', '--recipe', vector('hello-noarch/recipe/peipkg.toml'), '--source', await stagedTree(t, 'hello-noarch'), '--version', '0.1-1',
      '--source-ref', 'test://hello-noarch', '--farm-id', 'test-farm-1', '--timestamp', '2026-05-06T12:00:00Z', '--out', out,
      '--sign-key', await privateTestKey(t)],
    { env, extendEnv: false, reject: false },
  );
  t.is(build.exitCode, 0, build.stderr);
  const file = join(out, 'hello_0.1-1_noarch.peipkg');
  t.is(build.stdout, file);
  t.true((await tarOf(file)).equals(await readFile(vector('hello-noarch/signed.tar'))), 'decompresses to hello-noarch/signed.tar');
  const verify = await execa('peipkg-build', ['verify', file, '--public-key', testPublicKeyPath, '--require-signed'], { env, extendEnv: false, reject: false });
  t.is(verify.exitCode, 0, verify.stderr);

  // peipkg-repo: a repository with that package, and its audit.
  const state = join(await tempDir(t), 'state');
  const key = await privateTestKey(t);
  const init = await execa('peipkg-repo', ['init', '--name', 'installed', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', state],
    { env, extendEnv: false, reject: false });
  t.is(init.exitCode, 0, init.stderr);
  const publish = await execa('peipkg-repo', ['publish', '--in', state, '--new', out, '--sign-key', key, '--timestamp', '2026-05-07T00:00:01Z', '--out', state],
    { env, extendEnv: false, reject: false });
  t.is(publish.exitCode, 0, publish.stderr);
  t.regex(publish.stdout, /published index_version \d+ \(1 new packages\)\n  \+ hello_0\.1-1_noarch\.peipkg/);
  const audit = await execa('peipkg-repo', ['verify', '--repo', state], { env, extendEnv: false, reject: false });
  t.is(audit.exitCode, 0, audit.stderr);
  t.is(audit.stdout, 'OK');

  // peipkg-manager: loads completely (help), and reports a missing config as an error of its own.
  const help = await execa('peipkg-manager', ['help'], { env, extendEnv: false, reject: false });
  t.is(help.exitCode, 0, help.stderr);
  t.regex(help.stdout, /--once/);
  const noConfig = await execa('peipkg-manager', ['--config', join(out, 'missing.toml'), '--once'], { env, extendEnv: false, reject: false });
  t.is(noConfig.exitCode, 1, noConfig.stderr);
  t.regex(noConfig.stderr, /missing\.toml/);
  t.notRegex(noConfig.stderr, /internal error/);
});

test('npx --offline with the root and platform tarballs runs peipkg-build help', async (t) => {
  const env = await userEnv(t);
  const cwd = await tempDir(t);
  const result = await execa(
    process.execPath,
    [await npmCli(), 'exec', '--offline', '--yes', '--cache', await offlineCacheCopy(t), '--package', tarballs.root, '--package', tarballs.platform,
      '--', 'peipkg-build', 'help'],
    { env, extendEnv: false, cwd, reject: false },
  );
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /^peipkg-build <command> \[flags\]/);
  for (const command of ['build', 'pack', 'check', 'binary-sign', 'verify', 'completion']) t.regex(result.stdout, new RegExp(`peipkg-build ${command}\\b`));
});
