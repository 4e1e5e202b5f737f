/**
 * The build sandbox: how `build.sh` is isolated from the host, with bubblewrap (`bwrap`, Debian's
 * `bubblewrap`), the way OBS, mock and Nix builders isolate theirs. In new mount, PID, IPC, UTS and
 * network namespaces the script sees:
 *
 *   /usr /etc /bin /lib* /sbin   the host's, read-only (keys and recipe folders in them masked)
 *   /proc /dev /tmp              its own (a fresh procfs, a minimal /dev, /tmp in the scratch)
 *   /build/source                a copy-on-write overlay of the source: in-tree builds work, writes
 *                                land in the scratch, the original never changes, nothing is copied
 *   /build/destdir /build/work   writable; /build/home is $HOME
 *   /build/recipe                the recipe folder, read-only
 *   granted paths                `--bind`/`--ro-bind` (a cache, a tool's socket), at the same path
 *
 * and nothing else: not the farm's state, keys or other recipes, nor another build's tree. There
 * is no network but loopback unless granted. The PID namespace ends with the script, so nothing it
 * started (setsid included) outlives it, and the sandbox dies with peipkg-build.
 *
 * As root, bwrap runs without a user namespace; a shim inside mounts the overlay, gives the tree to
 * the build user (an overlay with metacopy copies only metadata up), and drops to that user with
 * no capabilities. As anyone else, bwrap makes a user namespace whose root mounts the overlay, and
 * the script runs in a nested one as the invoking user: a laptop gets the same sandbox, no sudo.
 *
 * Hosts that forbid namespaces (some container runtimes) are found by a probe that runs this very
 * sandbox once; builds then fall back to the unsandboxed isolation (`--sandbox require` refuses).
 */

import { spawn } from 'node:child_process';
import { chown, lstat, mkdir, mkdtemp, readlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, sep } from 'node:path';

import { InputError } from '../errors.js';
import { executableOnPath } from '../fs.js';
import { removeTree } from '../native.js';
import { readyFlag, type BuildUser } from './script.js';

export type SandboxMode = 'auto' | 'require' | 'off';
export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'require', 'off'];

/** Where the script finds its trees inside the sandbox. */
export const INSIDE = {
  source: '/build/source',
  destDir: '/build/destdir',
  work: '/build/work',
  recipe: '/build/recipe',
  home: '/build/home',
} as const;

/** Extra access a farm grants a recipe (never the recipe itself). */
export interface SandboxGrants {
  network: boolean;
  binds: ReadonlyArray<{ path: string; writable: boolean }>;
}

export const NO_GRANTS: SandboxGrants = { network: false, binds: [] };

/** What builds get on this host. */
export type Isolation =
  | { kind: 'sandbox'; bwrap: string; rootless: boolean }
  | { kind: 'unsandboxed'; reason: string }
  | { kind: 'off' };

/** Where the script runner puts `SandboxRun.sourceView` in bwrap's descriptors. */
export const SOURCE_VIEW_FD = 4;

/** The host trees every sandbox sees, read-only: symlinks (merged /usr) are recreated as symlinks. */
const SYSTEM_TREES = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * Runs inside the sandbox, as (namespace) root: mounts the overlay, hides its layers, gives files
 * of the source the build user does not own to it (root mode; an overlay with metacopy copies only
 * their metadata up), then drops privileges and runs READY.
 * Arguments: overlay options or `-`, `uid:gid` or `-`, `--`, the privilege drop and READY.
 */
const SHIM = `set -eu
options=$1 owner=$2
shift 3
if [ "$options" != - ]; then
  mount -t overlay peipkg-source -o "$options" ${INSIDE.source}
  umount -l /build/.cow
  case $options in lowerdir=/build/.source,*) umount -l /build/.source ;; esac
  if [ "$owner" != - ]; then
    find ${INSIDE.source} \\( ! -user "\${owner%:*}" -o ! -group "\${owner#*:}" \\) -exec chown -h "$owner" {} +
  fi
fi
exec 4<&- "$@"
`;

/**
 * The last step, as the script's user: tells peipkg on fd 3 that the sandbox stands (so a failure
 * from here on is the script's), sends the script's stderr where its stdout goes, and becomes it.
 */
const READY = 'printf ready >&3; exec 3>&- 2>&1; exec sh "$0"';

export interface SandboxRun {
  bwrap: string;
  rootless: boolean;
  /** Host paths. `source` may be missing (the contract does not require it). */
  source: string | undefined;
  /**
   * Root mode: an open descriptor of an idmapped view of `source` (root's files shown as the
   * build user's), passed to bwrap as fd 4 and used as the overlay's lower layer instead of
   * `source`: then nothing of the tree needs to be given to the build user entry by entry.
   */
  sourceView?: number;
  destDir: string;
  workDir: string;
  homeDir: string;
  tmpDir: string;
  /** Empty directory for the overlay's upper and work layers. */
  cowDir: string;
  recipeDir: string;
  /** The script, relative to `recipeDir`. */
  script: string;
  /** Root mode: the script runs as this user. Without it, as the invoking user in a user namespace. */
  user: BuildUser | undefined;
  grants: SandboxGrants;
  /** Host paths to keep out of sight (key files, recipe folders) where they lie in a system tree. */
  hide: readonly string[];
}

const under = (path: string, tree: string): boolean => path === tree || path.startsWith(`${tree}${sep}`);

async function systemTreeArgs(): Promise<string[]> {
  const args: string[] = [];
  for (const tree of SYSTEM_TREES) {
    const info = await lstat(tree).catch(() => undefined);
    if (!info) continue;
    if (info.isSymbolicLink()) args.push('--symlink', await readlink(tree), tree);
    else if (info.isDirectory()) args.push('--ro-bind', tree, tree);
  }
  return args;
}

async function hideArgs(hide: readonly string[]): Promise<string[]> {
  const args: string[] = [];
  for (const path of hide) {
    if (!SYSTEM_TREES.some((tree) => under(path, tree))) continue;
    const info = await lstat(path).catch(() => undefined);
    if (info?.isDirectory()) args.push('--tmpfs', path);
    else if (info) args.push('--ro-bind', '/dev/null', path);
  }
  return args;
}

/** The bwrap command line for `run`: namespaces, the file system above, the shim, the script. */
export async function sandboxCommand(run: SandboxRun): Promise<string[]> {
  const args = ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--hostname', 'peipkg-build'];
  if (!run.grants.network) args.push('--unshare-net');
  if (run.rootless) args.push('--unshare-user', '--uid', '0', '--gid', '0', '--cap-add', 'ALL');
  else args.push('--cap-add', 'CAP_SYS_ADMIN', '--cap-add', 'CAP_CHOWN', '--cap-add', 'CAP_DAC_OVERRIDE', '--cap-add', 'CAP_FOWNER', '--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID');
  args.push(...(await systemTreeArgs()), ...(await hideArgs(run.hide)));
  // bwrap would make /build with the mode of the first directory bound under it.
  args.push('--proc', '/proc', '--dev', '/dev', '--bind', run.tmpDir, '/tmp', '--perms', '0755', '--dir', '/build');
  args.push('--bind', run.destDir, INSIDE.destDir, '--bind', run.workDir, INSIDE.work, '--bind', run.homeDir, INSIDE.home);
  args.push('--ro-bind', run.recipeDir, INSIDE.recipe);
  let overlay = '-';
  if (run.source !== undefined) {
    const lower = run.sourceView === undefined ? '/build/.source' : `/proc/self/fd/${SOURCE_VIEW_FD}`;
    if (run.sourceView === undefined) args.push('--ro-bind', run.source, '/build/.source');
    args.push('--bind', run.cowDir, '/build/.cow', '--dir', INSIDE.source);
    // volatile: the upper layer is scratch, thrown away after the build, so it is never synced
    // (that halves the cost of the metadata copy-up a root-owned source needs).
    overlay = `lowerdir=${lower},upperdir=/build/.cow/upper,workdir=/build/.cow/work,volatile,${run.rootless ? 'userxattr' : 'metacopy=on,redirect_dir=on'}`;
  } else args.push('--dir', INSIDE.source);
  for (const bind of run.grants.binds) args.push(bind.writable ? '--bind' : '--ro-bind', bind.path, bind.path);
  args.push('--chdir', INSIDE.work);
  const owner = run.user && run.source !== undefined ? `${run.user.uid}:${run.user.gid}` : '-';
  const drop = run.user
    ? ['setpriv', `--reuid=${run.user.uid}`, `--regid=${run.user.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--']
    : [
        'unshare', '--user', `--map-user=${process.getuid?.() ?? 0}`, `--map-group=${process.getgid?.() ?? 0}`, '--',
        'setpriv', '--inh-caps=-all', '--no-new-privs', '--',
      ];
  args.push('--', 'sh', '-c', SHIM, 'peipkg-sandbox', overlay, owner, '--', ...drop, 'sh', '-c', READY, join(INSIDE.recipe, run.script));
  return [run.bwrap, ...args];
}

/** The directories a sandboxed build needs in its scratch: made here, owned by the script's user. */
export async function sandboxDirs(scratch: string, user: BuildUser | undefined): Promise<Pick<SandboxRun, 'homeDir' | 'tmpDir' | 'cowDir'>> {
  const dirs = { homeDir: join(scratch, 'home'), tmpDir: join(scratch, 'tmp'), cowDir: join(scratch, 'cow') };
  for (const dir of Object.values(dirs)) await mkdir(dir, { mode: 0o700 });
  await mkdir(join(dirs.cowDir, 'upper'));
  await mkdir(join(dirs.cowDir, 'work'));
  if (user) for (const dir of [dirs.homeDir, dirs.tmpDir]) await chown(dir, user.uid, user.gid);
  return dirs;
}

let probed: Promise<Isolation> | undefined;

/**
 * What isolation builds get here, found once per process by running the sandbox for real (an
 * overlay and a trivial command). `off` skips it; `require` turns unavailability into an error.
 */
export async function detectIsolation(mode: SandboxMode, user: BuildUser | undefined, scratchParent: string, requiredBy = '--sandbox require'): Promise<Isolation> {
  if (mode === 'off') return { kind: 'off' };
  probed ??= probe(user, scratchParent);
  const isolation = await probed;
  if (isolation.kind === 'unsandboxed' && mode === 'require') {
    throw new InputError(`the build sandbox is required (${requiredBy}), but ${isolation.reason}`);
  }
  return isolation;
}

async function probe(user: BuildUser | undefined, scratchParent: string): Promise<Isolation> {
  const bwrap = await executableOnPath('bwrap');
  if (!bwrap) return { kind: 'unsandboxed', reason: 'bubblewrap is not installed (Debian: apt-get install bubblewrap)' };
  const rootless = user === undefined;
  const scratch = await mkdtemp(join(scratchParent, 'peipkg-sandbox-probe-'));
  try {
    const dirs = { source: join(scratch, 'source'), destDir: join(scratch, 'destdir'), workDir: join(scratch, 'work'), recipeDir: join(scratch, 'recipe') };
    for (const dir of Object.values(dirs)) await mkdir(dir);
    if (user) for (const dir of [dirs.destDir, dirs.workDir]) await chown(dir, user.uid, user.gid);
    await writeFile(join(dirs.recipeDir, 'probe.sh'), `touch ${INSIDE.source}/written ${INSIDE.destDir}/written\n`);
    const command = await sandboxCommand({
      bwrap,
      rootless,
      ...dirs,
      ...(await sandboxDirs(scratch, user)),
      script: 'probe.sh',
      user,
      grants: NO_GRANTS,
      hide: [],
    });
    const outcome = await runQuiet(command);
    if (outcome.ok) return { kind: 'sandbox', bwrap, rootless };
    const why = outcome.stderr.trim().split('\n').filter((l) => l !== '').slice(-2).join('; ') || `exit status ${outcome.code ?? 'none'}`;
    return { kind: 'unsandboxed', reason: `namespaces are not available here (${why})` };
  } finally {
    // overlayfs leaves `cow/work/work` at mode 000, not always empty: removeTree opens it up.
    await removeTree(scratch);
  }
}

function runQuiet(command: string[]): Promise<{ ok: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = `${stderr}${d.toString()}`.slice(-4096)));
    const ready = readyFlag(child.stdio[3] as NodeJS.ReadableStream);
    child.once('error', (error) => resolve({ ok: false, code: null, stderr: error.message }));
    child.once('close', (code) => void ready.then((started) => resolve({ ok: started && code === 0, code, stderr })));
  });
}

/** One line for `check`, `/status` and logs: which isolation build scripts get here. */
export function describeIsolation(isolation: Isolation, user: BuildUser | undefined): string {
  switch (isolation.kind) {
    case 'sandbox':
      return isolation.rootless
        ? 'bubblewrap sandbox in a user namespace, as the invoking user (no network unless granted; host read-only; source copy-on-write)'
        : `bubblewrap sandbox, as the build user ${user?.name ?? ''} (no network unless granted; host read-only; source copy-on-write)`.replace('  ', ' ');
    case 'unsandboxed':
      return `no sandbox: ${isolation.reason}; build scripts run ${user ? `as the build user ${user.name}` : 'as the invoking user'} with the whole host visible`;
    case 'off':
      return `no sandbox (turned off); build scripts run ${user ? `as the build user ${user.name}` : 'as the invoking user'} with the whole host visible`;
  }
}

/** Paths the sandbox makes itself: a grant cannot replace them. */
const SANDBOX_OWN = ['/build', '/proc', '/dev'];

/** A granted path: absolute, existing (a missing one would fail every build), and not one the sandbox already decides. */
export async function checkGrantPath(path: string, what: string): Promise<void> {
  if (!isAbsolute(path)) throw new InputError(`${what} ${path}: must be an absolute path`);
  if (!(await lstat(path).catch(() => undefined))) throw new InputError(`${what} ${path}: no such file or directory`);
  if (path === dirname(path) || path === '/tmp' || SYSTEM_TREES.some((tree) => under(path, tree))) {
    throw new InputError(`${what} ${path}: the sandbox already shows this (system trees read-only, a private /tmp); grant a directory of your own, such as /var/cache/go-mod`);
  }
  if (SANDBOX_OWN.some((tree) => under(path, tree))) throw new InputError(`${what} ${path}: ${path} is made by the sandbox itself and cannot be granted`);
}
