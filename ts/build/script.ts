/**
 * Runs a recipe's build script exactly as the contract says (`recipes-and-farm.md` §3): `sh
 * <absolute script>` in an empty `work/` directory, stdin `/dev/null`, an environment made only of
 * the six documented variables plus `--build-env` pairs, stdout sent to our stderr (so stdout stays
 * clean for output paths and `--json`) and stderr streamed live.
 *
 * It runs in its own process group (D-4): a timeout or an abort (our caller's SIGINT/SIGTERM) sends
 * the group SIGTERM, then SIGKILL after a grace period; when the script ends, whatever it left running in
 * its group is killed, so nothing keeps writing to the staging tree while it is packed.
 */

import { spawn } from 'node:child_process';

import { InputError } from '../errors.js';
import { guardGroup } from '../processGroup.js';

export const RESERVED_ENV = ['SOURCE_DIR', 'DESTDIR', 'SOURCE_DATE_EPOCH', 'LC_ALL', 'TZ', 'PATH'];
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface BuildUser {
  name: string;
  uid: number;
  gid: number;
}

export interface ScriptRun {
  script: string;
  sourceDir: string;
  destDir: string;
  workDir: string;
  /** `SOURCE_DATE_EPOCH`. */
  epochSeconds: number;
  /** `--build-env` pairs. */
  buildEnv: ReadonlyMap<string, string>;
  /** Set when we run as root: the script runs as this user instead. */
  user?: BuildUser;
  timeoutMs?: number;
  /** Milliseconds between SIGTERM and SIGKILL when the script is stopped. */
  graceMs?: number;
  /** Stops the script (the reason becomes the error message). */
  signal?: AbortSignal;
}

export class BuildScriptError extends InputError {}

/** The script's environment, exactly (§3.4). */
export function scriptEnvironment(run: ScriptRun): Record<string, string> {
  const env: Record<string, string> = {
    SOURCE_DIR: run.sourceDir,
    DESTDIR: run.destDir,
    SOURCE_DATE_EPOCH: String(run.epochSeconds),
    LC_ALL: 'C',
    TZ: 'UTC',
    PATH: process.env.PATH ?? '',
  };
  for (const name of [...run.buildEnv.keys()].sort()) env[name] = run.buildEnv.get(name) ?? '';
  return env;
}

/** Runs the script to completion; throws `BuildScriptError` when it fails or is stopped. */
export async function runBuildScript(run: ScriptRun): Promise<void> {
  const child = spawn('sh', [run.script], {
    cwd: run.workDir,
    env: scriptEnvironment(run),
    stdio: ['ignore', process.stderr, process.stderr],
    detached: true,
    ...(run.user ? { uid: run.user.uid, gid: run.user.gid } : {}),
  });
  const guard = guardGroup(child.pid, {
    timeoutMs: run.timeoutMs,
    timeoutReason: `timed out after ${(run.timeoutMs ?? 0) / 1000}s`,
    abort: run.signal,
    graceMs: run.graceMs ?? 10_000,
  });
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (error) => reject(new BuildScriptError(`run build script: cannot start sh: ${error.message}`)));
      child.once('exit', (c, s) => resolve([c, s]));
    });
    const stoppedBy = guard.stoppedBy();
    if (stoppedBy) throw new BuildScriptError(`run build script: ${stoppedBy}`);
    if (signal) throw new BuildScriptError(`run build script: signal: ${signal}`);
    if (code !== 0) throw new BuildScriptError(`run build script: exit status ${code}`);
  } finally {
    // Background processes the script left behind must not touch the tree we are about to pack.
    guard.release();
  }
}
