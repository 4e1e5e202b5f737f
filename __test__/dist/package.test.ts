/**
 * What the npm packages contain and declare: the root tarball holds what the installed commands
 * load and nothing else; each platform package is in @napi-rs/cli's layout with the os/cpu/libc
 * fields npm selects it by, under the name the loader in ts/native.ts asks for; and the built
 * addon needs no newer glibc than docs/distribution.md promises.
 */

import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { platformTriple } from '../../ts/native.js';
import { repoRoot } from '../helpers/fixtures.js';
import { exists } from './helpers.js';

interface PackageJson {
  name: string;
  version: string;
  main?: string;
  files?: string[];
  os?: string[];
  cpu?: string[];
  libc?: string[];
  engines?: { node: string };
  bin?: Record<string, string>;
  napi?: { binaryName: string; targets: string[] };
}

const readJson = async (path: string): Promise<PackageJson> => JSON.parse(await readFile(path, 'utf8')) as PackageJson;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(repoRoot, join(entry.parentPath, entry.name)));
  }
  return out;
}

test('npm pack of the root package: bin/, the compiled dist/ (no source maps), contrib/, and nothing else', async (t) => {
  const { stdout } = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot });
  const [report] = JSON.parse(stdout) as Array<{ files: Array<{ path: string }>; size: number }>;
  const packed = report!.files.map((f) => f.path).sort();
  const root = await readJson(join(repoRoot, 'package.json'));
  const expected = [
    'package.json',
    'README.md',
    ...Object.values(root.bin ?? {}),
    ...(await filesUnder(join(repoRoot, 'dist'))).filter((f) => f.endsWith('.js')),
    ...(await filesUnder(join(repoRoot, 'contrib'))),
  ].sort();
  t.deepEqual(packed, expected);
  t.deepEqual(Object.keys(root.bin ?? {}).sort(), ['peipkg-build', 'peipkg-manager', 'peipkg-repo']);
  t.log(`root tarball: ${(report!.size / 1024).toFixed(0)} KiB, ${packed.length} files`);
});

test('the platform packages: @napi-rs/cli layout, os/cpu/libc set, named as the loader looks them up', async (t) => {
  const root = await readJson(join(repoRoot, 'package.json'));
  const cpuOf: Record<string, string> = { 'x86_64-unknown-linux-gnu': 'x64', 'aarch64-unknown-linux-gnu': 'arm64' };
  const expectedDirs = (root.napi?.targets ?? []).map((target) => `linux-${cpuOf[target] ?? target}-gnu`).sort();
  // npm/thin/ holds the thin command packages (__test__/dist/npx.test.ts), not a platform.
  t.deepEqual((await readdir(join(repoRoot, 'npm'))).filter((dir) => dir !== 'thin').sort(), expectedDirs);
  for (const dir of expectedDirs) {
    const pkg = await readJson(join(repoRoot, 'npm', dir, 'package.json'));
    const file = `${root.napi?.binaryName}.${dir}.node`;
    t.like(pkg, { name: `peipkg-${dir}`, version: root.version, main: file, files: [file], os: ['linux'], cpu: [dir.split('-')[1]!], libc: ['glibc'] }, dir);
    t.is(pkg.engines?.node, root.engines?.node, `${dir}: same engines as peipkg`);
    t.true(await exists(join(repoRoot, 'npm', dir, 'README.md')));
  }
  // ts/native.ts requires `peipkg-${platformTriple()}` after native/: on this machine that is one of them.
  t.true(expectedDirs.includes(platformTriple()), platformTriple());
  const loader = await readFile(join(repoRoot, 'ts', 'native.ts'), 'utf8');
  t.regex(loader, /`peipkg-\$\{triple\}`/);
  t.regex(loader, new RegExp(`native/${root.napi?.binaryName}\\.\\$\\{triple\\}\\.node`));
  // The .node files are build outputs, never committed.
  const { stdout: tracked } = await execa('git', ['ls-files', 'npm', 'native'], { cwd: repoRoot });
  t.false(/\.node$/m.test(tracked), tracked);
});

test('the addons need glibc 2.34 at most and use no unversioned libc function (docs/distribution.md)', async (t) => {
  const addons = (await readdir(join(repoRoot, 'native'))).filter((f) => f.endsWith('.node'));
  t.true(addons.includes(`peipkg-native.${platformTriple()}.node`));
  const { stdout } = await execa(join(repoRoot, 'scripts/glibc-floor.sh'), addons.map((f) => join(repoRoot, 'native', f)));
  for (const line of stdout.trim().split('\n')) {
    t.log(line);
    const version = /GLIBC_(\d+)\.(\d+)/.exec(line);
    t.truthy(version, line);
    t.true(Number(version![1]) === 2 && Number(version![2]) <= 34, line);
    // An unversioned libc function would quietly raise the floor of a glibc-2.17 release build.
    t.false(line.includes('unversioned'), line);
  }
});
