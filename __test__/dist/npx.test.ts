/**
 * The thin packages `peipkg-build`, `peipkg-repo` and `peipkg-manager` (npm/thin/), which make
 * `npx peipkg-build` work as users type it: packed by scripts/pack.sh at the root's version, each
 * depending on exactly that peipkg; run with npx offline from the packed tarballs, they print what
 * peipkg's own commands print and pass their exit codes through. scripts/pack.sh refuses a thin
 * package of another version.
 */

import { cp, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { platformTriple, removeTree } from '../../ts/native.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { npmCli, offlineCacheCopy, packTarballs, pathWithoutRust, THIN_PACKAGES, type Tarballs } from './helpers.js';

interface Manifest {
  name: string;
  version: string;
  license?: string;
  engines?: { node: string };
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  repository?: unknown;
}

const readJson = async (path: string): Promise<Manifest> => JSON.parse(await readFile(path, 'utf8')) as Manifest;

const platform = platformTriple();
let packDir = '';
let tarballs: Tarballs;

// Packed once for every test here: packing is most of their time.
test.before(async () => {
  packDir = await mkdtemp(join(tmpdir(), 'peipkg-pack-'));
  tarballs = await packTarballs(packDir, platform);
});

test.after.always(async () => {
  if (packDir) await removeTree(packDir);
});

interface Run {
  exitCode?: number;
  stdout: string;
  stderr: string;
}

/** The environment of a user's shell on a machine with Node and npm but no Rust or registry. */
async function userEnv(t: ExecutionContext): Promise<Record<string, string>> {
  return { PATH: await pathWithoutRust(t), HOME: await tempDir(t, 'peipkg-home-'), LANG: 'C.UTF-8' };
}

/**
 * `npx --offline <command> …` with every tarball a user would get from the registry for it. npx
 * installs the named packages, then runs `command` from their bins. (Both the thin package and peipkg
 * itself have a bin of that name; which one npm links is npm's choice, and either runs the same code.)
 */
async function npx(t: ExecutionContext, cache: string, command: string, args: string[]): Promise<Run> {
  const packages = [tarballs.thin[command as keyof Tarballs['thin']], tarballs.root, tarballs.platform].flatMap((file) => ['--package', file]);
  return await execa(process.execPath, [await npmCli(), 'exec', '--offline', '--yes', '--cache', cache, ...packages, '--', command, ...args], {
    env: await userEnv(t),
    extendEnv: false,
    cwd: await tempDir(t),
    reject: false,
  });
}

/** peipkg's own command, from the checkout: what the thin packages must reproduce. */
const direct = async (command: string, args: string[]): Promise<Run> =>
  execa(process.execPath, [join(repoRoot, 'bin', `${command}.js`), ...args], { cwd: repoRoot, reject: false });

test('the thin packages: one bin each, peipkg of exactly the root version, the root engines and license', async (t) => {
  const root = await readJson(join(repoRoot, 'package.json'));
  t.deepEqual((await readdir(join(repoRoot, 'npm', 'thin'))).sort(), [...THIN_PACKAGES].sort());
  for (const name of THIN_PACKAGES) {
    const tarball = tarballs.thin[name];
    t.true(tarball.endsWith(`/${name}-${root.version}.tgz`), tarball);
    const { stdout: files } = await execa('tar', ['-tzf', tarball]);
    t.deepEqual(files.split('\n').sort(), ['package/README.md', `package/bin/${name}.js`, 'package/package.json'], name);
    const manifest = JSON.parse((await execa('tar', ['-xzOf', tarball, 'package/package.json'])).stdout) as Manifest;
    t.like(manifest, { name, version: root.version, license: root.license, engines: root.engines }, name);
    t.deepEqual(manifest.bin, { [name]: `bin/${name}.js` }, name);
    t.deepEqual(manifest.dependencies, { peipkg: root.version }, `${name}: peipkg of the same version, exactly`);
    t.deepEqual(manifest.repository, root.repository, `${name}: the root's repository, which provenance checks`);
    // The command it runs is one the root package has.
    t.true(Object.keys(root.bin ?? {}).includes(name), name);
  }
});

test('npx --offline peipkg-build / peipkg-repo / peipkg-manager help print what peipkg prints, and exit 0', async (t) => {
  const cache = await offlineCacheCopy(t);
  for (const name of THIN_PACKAGES) {
    const [viaNpx, own] = [await npx(t, cache, name, ['help']), await direct(name, ['help'])];
    t.is(viaNpx.exitCode, 0, `${name}: ${viaNpx.stderr}`);
    t.is(own.exitCode, 0, own.stderr);
    t.regex(viaNpx.stdout, new RegExp(`^${name} `), name);
    t.is(viaNpx.stdout, own.stdout, name);
  }
});

test("a failing command's exit code passes through npx and through the thin package's own bin", async (t) => {
  const cache = await offlineCacheCopy(t);
  const cases: Array<[string, string[], number]> = [
    ['peipkg-build', ['no-such-command'], 2],
    ['peipkg-build', ['build'], 1], // the required flags are missing
    ['peipkg-repo', ['no-such-command'], 2],
    ['peipkg-manager', ['--config', '/nonexistent/peipkg-manager.toml', '--once'], 1],
  ];
  for (const [name, args, code] of cases) {
    const result = await npx(t, cache, name, args);
    t.is(result.exitCode, code, `npx ${name} ${args.join(' ')}: ${result.stderr}`);
    t.is(result.exitCode, (await direct(name, args)).exitCode, `${name} ${args.join(' ')}: the same as peipkg's own`);
  }

  // npx links one of the two same-named bins; the thin package's own must work as well (it is the
  // one on PATH after `npm install -g peipkg-build`). npx has installed each set of packages in a
  // directory of its own under the cache.
  const installed = await Promise.all((await readdir(join(cache, '_npx'))).map((d) => readdir(join(cache, '_npx', d, 'node_modules')).then((names) => ({ d, names }))));
  const thinBin = (name: string): string => {
    const at = installed.find(({ names }) => names.includes(name));
    if (!at) throw new Error(`npx installed no ${name} under ${cache}/_npx`);
    return join(cache, '_npx', at.d, 'node_modules', name, 'bin', `${name}.js`);
  };
  for (const name of THIN_PACKAGES) {
    const help = await execa(process.execPath, [thinBin(name), 'help'], { reject: false });
    t.is(help.exitCode, 0, `${thinBin(name)}: ${help.stderr}`);
    t.is(help.stdout, (await direct(name, ['help'])).stdout, name);
    const unknown = await execa(process.execPath, [thinBin(name), 'no-such-command'], { reject: false });
    t.is(unknown.exitCode, 2, `${name} no-such-command: ${unknown.stderr}`);
  }
  const missing = await execa(process.execPath, [thinBin('peipkg-build'), 'build'], { reject: false });
  t.is(missing.exitCode, 1, missing.stderr);
  t.regex(missing.stderr, /--recipe.* are required/);
});

/** The files scripts/pack.sh reads before it packs anything, copied so that their versions can be changed. */
async function packCopy(t: ExecutionContext): Promise<string> {
  const dir = await tempDir(t, 'peipkg-packcopy-');
  await mkdir(join(dir, 'scripts'));
  for (const file of ['scripts/pack.sh', 'scripts/copy-artifacts.sh', 'package.json']) await cp(join(repoRoot, file), join(dir, file));
  await cp(join(repoRoot, 'npm'), join(dir, 'npm'), { recursive: true, filter: (src) => !src.endsWith('.node') });
  return dir;
}

async function editManifest(path: string, edit: (manifest: Manifest) => void): Promise<void> {
  const manifest = await readJson(path);
  edit(manifest);
  await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`);
}

test('scripts/pack.sh refuses a thin package whose version or peipkg dependency is not the root version', async (t) => {
  const { version } = await readJson(join(repoRoot, 'package.json'));
  const versionCopy = await packCopy(t);
  await editManifest(join(versionCopy, 'npm/thin/peipkg-repo/package.json'), (m) => {
    m.version = '9.9.9';
  });
  const wrongVersion = await execa(join(versionCopy, 'scripts/pack.sh'), ['--out', join(versionCopy, 'out'), platform], { reject: false });
  t.is(wrongVersion.exitCode, 1);
  t.is(wrongVersion.stdout, '', 'nothing packed');
  t.is(
    wrongVersion.stderr.trim(),
    `pack: npm/thin/peipkg-repo is version 9.9.9 and depends on peipkg ${version}; both must be the root package's ${version} (run: scripts/thin-version.sh)`,
  );

  const dependencyCopy = await packCopy(t);
  await editManifest(join(dependencyCopy, 'npm/thin/peipkg-build/package.json'), (m) => {
    m.dependencies = { peipkg: `^${version}` };
  });
  const wrongDependency = await execa(join(dependencyCopy, 'scripts/pack.sh'), ['--out', join(dependencyCopy, 'out'), platform], { reject: false });
  t.is(wrongDependency.exitCode, 1);
  t.regex(wrongDependency.stderr, new RegExp(`npm/thin/peipkg-build is version ${version.replaceAll('.', '\\.')} and depends on peipkg \\^`));
});
