/**
 * The two steps every farm build runs, wherever it runs: fetching the tag (`git clone` of one
 * commit, submodules when the recipe asks, `.git` removed) and running `peipkg-build build`. The
 * single-host farm (`job.ts`) and a remote worker (`worker.ts`) call the same code, so a package
 * built on a worker is the package this host would have built from the same inputs.
 */

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { chownTree } from '../build/user.js';
import type { BuildUser } from '../build/script.js';
import { formatTimestamp } from '../format/timestamp.js';
import { removeTree } from '../native.js';
import type { BuildLog } from './buildLog.js';
import { runStep } from './subprocess.js';
import { GIT_ENV } from './upstream.js';

export interface SourceSpec {
  git: string;
  tag: string;
  submodules: boolean;
  /** The commit the tag must still name (a worker checks what the coordinator resolved). */
  commit?: string;
}

export interface FetchOptions {
  cloneTimeoutMs: number;
  abort: AbortSignal;
  /** Set when running as root: without the sandbox, build.sh (as this user) needs a source it owns. */
  buildUser: BuildUser | undefined;
  sandboxed: boolean;
}

export interface Fetched {
  commit: string;
  /** The commit's time, the packages' timestamp. */
  timestamp: string;
}

async function removeGitDirs(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name === '.git') await removeTree(path);
    else if (entry.isDirectory()) await removeGitDirs(path);
  }
}

/** Clones `source.tag` into `sourceDir` (which must be empty) and returns its commit and time. */
export async function fetchSource(source: SourceSpec, sourceDir: string, options: FetchOptions, log: BuildLog): Promise<Fetched> {
  const git = (what: string, args: string[], capture = false): Promise<string> =>
    runStep(what, 'git', args, { timeoutMs: options.cloneTimeoutMs, log, captureStdout: capture, env: GIT_ENV, abort: options.abort });
  // No detached-HEAD advice in build logs; set with -c so the operator's own GIT_CONFIG_* still apply.
  await git('git clone', ['-c', 'advice.detachedHead=false', 'clone', '--depth', '1', '--branch', source.tag, '--single-branch', '--no-tags', '--', source.git, sourceDir]);
  const [seconds, commit] = (await git('git log', ['-C', sourceDir, 'log', '-1', '--format=%ct %H', 'HEAD'], true)).trim().split(' ');
  if (source.commit !== undefined && commit !== source.commit) {
    throw new Error(`tag ${source.tag} of ${source.git} now names commit ${commit ?? '?'}, not ${source.commit} as when it was queued; the tag was moved, so the next poll queues it again`);
  }
  if (source.submodules) await git('git submodule update', ['-C', sourceDir, 'submodule', 'update', '--init', '--recursive', '--depth', '1']);
  const timestamp = formatTimestamp(new Date(Number(seconds) * 1000));
  await removeGitDirs(sourceDir);
  if (options.buildUser && !options.sandboxed) await chownTree(sourceDir, options.buildUser);
  return { commit: commit ?? '', timestamp };
}

export interface BuildInvocation {
  recipeToml: string;
  sourceDir: string;
  version: string;
  sourceRef: string;
  farmId: string;
  timestamp: string;
  outDir: string;
  /** The farm's package key (single host), or `deferred`: unsigned, for the coordinator to sign. */
  signing: { keyFile: string } | 'deferred';
  zstdLevel: number;
  timeoutMs: number;
  buildUser: string | undefined;
  /** `--sandbox` and `--hide` flags. */
  sandboxFlags: string[];
  /** The recipe's grants: injected public keys, binary-signing keys, sandbox grants. */
  grantFlags: string[];
}

export function buildArgs(b: BuildInvocation): string[] {
  return [
    'build',
    '--recipe', b.recipeToml,
    '--source', b.sourceDir,
    '--version', b.version,
    '--source-ref', b.sourceRef,
    '--farm-id', b.farmId,
    '--timestamp', b.timestamp,
    '--out', b.outDir,
    ...(b.signing === 'deferred' ? ['--deferred-signature'] : ['--sign-key', b.signing.keyFile]),
    '--zstd-level', String(b.zstdLevel),
    '--timeout', `${Math.round(b.timeoutMs / 1000)}s`,
    ...(b.buildUser ? ['--build-user', b.buildUser] : []),
    ...b.sandboxFlags,
    ...b.grantFlags,
  ];
}

/**
 * Runs `peipkg-build` with its scratch in `tmpDir`; its output goes to the build log. The scratch
 * is left in `tmpDir` under a garbage name (`PEIPKG_SCRATCH_REMOVAL=caller`, build/scratch.ts) for
 * the caller to remove with `removeGarbageIn`: a remover process of the build's own would outlive
 * the step, and could meet the caller's own removal of `tmpDir` in the same tree.
 */
export async function runBuild(peipkgBuild: string, b: BuildInvocation, options: { log: BuildLog; abort: AbortSignal; tmpDir: string; what: string }): Promise<void> {
  await runStep(options.what, peipkgBuild, buildArgs(b), {
    timeoutMs: b.timeoutMs + 60_000,
    log: options.log,
    abort: options.abort,
    env: { TMPDIR: options.tmpDir, PEIPKG_SCRATCH_REMOVAL: 'caller' },
  });
}

/** `git+<url>#refs/tags/<tag>`, the manifest's source reference. */
export const sourceRef = (git: string, tag: string): string => `git+${git}#refs/tags/${tag}`;

/** A failure and the step it happened in (fetch, build, publish, verify), for the history. */
export class StageFailure extends Error {
  constructor(
    readonly stage: string,
    message: string,
  ) {
    super(message);
  }
}

/** Runs `work`, labelling any failure with the step `name`. */
export async function stage<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new StageFailure(name, (error as Error).message);
  }
}
