/**
 * The unprivileged account build scripts run as when peipkg runs as root (DECISIONS.md, Recipes
 * and build): looked up through NSS (`getent`), so LDAP/sssd accounts work too.
 */

import { execFile } from 'node:child_process';
import { chown, lstat, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { InputError } from '../errors.js';
import type { BuildUser } from './script.js';

export { DEFAULT_BUILD_USER } from './defaultUser.js';

/**
 * Runs a small helper (getent, cp) with node:child_process rather than execa: importing execa
 * costs ~90 ms, a fifth of peipkg-build's start-up, for two one-line commands.
 */
function run(command: string, args: string[]): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : undefined) : 0;
      resolve({ exitCode: code, stdout, stderr: error && code === undefined ? `${stderr}${error.message}` : stderr });
    });
  });
}

export function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

export async function lookupBuildUser(name: string): Promise<BuildUser> {
  const result = await run('getent', ['passwd', name]);
  const fields = result.exitCode === 0 ? result.stdout.split('\n')[0]?.split(':') : undefined;
  const uid = Number(fields?.[2]);
  const gid = Number(fields?.[3]);
  if (!fields || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new InputError(
      `build user "${name}" does not exist. peipkg runs build scripts as an unprivileged user when it runs as root; ` +
        `create it with \`useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin ${name}\` ` +
        `(the README's set-up does), or name another with --build-user`,
    );
  }
  if (uid === 0) throw new InputError(`build user "${name}" is root (uid 0); build scripts must run unprivileged`);
  return { name, uid, gid };
}

/** `chown -R` without following symlinks. */
export async function chownTree(path: string, user: BuildUser): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return;
  await chown(path, user.uid, user.gid);
  if (info.isDirectory()) {
    for (const name of await readdir(path)) await chownTree(join(path, name), user);
  }
}

/** `cp` of the tree `from` into `to` (made if missing) with `flags`; a failure says what the copy was `for`. */
async function copyTree(from: string, to: string, flags: string[], purpose: string): Promise<void> {
  await mkdir(to, { recursive: true });
  const copied = await run('cp', [...flags, '--reflink=auto', `${from}/.`, `${to}/`]);
  if (copied.exitCode !== 0) throw new InputError(`copy ${from}${purpose}: ${copied.stderr.trim() || `cp exit status ${copied.exitCode ?? 'none'}`}`);
}

/** Copies the tree `from` to `to` (symlinks kept as links, modes kept) and gives it to `user`. */
export async function privateCopy(from: string, to: string, user: BuildUser): Promise<void> {
  await copyTree(from, to, ['-a'], ' for the build user');
  await chownTree(to, user);
}

/** The first entry of the tree at `path` (itself included) not owned by both `uid` and `gid`, if any. */
export async function firstForeignOwned(path: string, uid: number, gid: number): Promise<string | undefined> {
  const info = await lstat(path);
  if (info.uid !== uid || info.gid !== gid) return path;
  if (!info.isDirectory()) return undefined;
  for (const name of await readdir(path)) {
    const found = await firstForeignOwned(join(path, name), uid, gid);
    if (found) return found;
  }
  return undefined;
}

/** Copies the tree `from` to `to` as the caller: modes, times and links kept, every entry ours. */
export async function ownCopy(from: string, to: string): Promise<void> {
  await copyTree(from, to, ['-R', '--preserve=mode,timestamps,links', '--no-preserve=ownership'], '');
}

/** The first directory above `path` that `user` cannot traverse (not theirs, no execute bit for others), if any. */
export async function blockingParent(path: string, user: BuildUser): Promise<{ dir: string; mode: number } | undefined> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const info = await stat(dir);
    if (info.uid !== user.uid && (info.mode & 0o001) === 0) return { dir, mode: info.mode & 0o777 };
    if (dir === dirname(dir)) return undefined;
  }
}
