/**
 * Runs a recipe's build script exactly as the contract says (`recipes-and-farm.md` §3): `sh
 * <absolute script>` in an empty `work/` directory, stdin `/dev/null`, an environment made only of
 * the six documented variables plus `--build-env` pairs, stdout sent to our stderr (so stdout stays
 * clean for output paths and `--json`) and stderr streamed live.
 *
 * It runs in its own process group (D-4): a timeout or an abort (our caller's SIGINT/SIGTERM) sends
 * the group SIGTERM, then SIGKILL after a grace period; when the script ends, whatever it left running in
 * its group is killed, so nothing keeps writing to the staging tree while it is packed.
 *
 * In the sandbox (sandbox.ts) the group is bubblewrap's: stopping it ends the sandbox's PID
 * namespace, and with it everything the script started, whatever session or group it moved to.
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
  /** Runs the script in this sandbox (bwrap's command line); the paths above are the sandbox's. */
  /** `sourceView`: a descriptor the sandbox's command expects as its fd 4 (`SOURCE_VIEW_FD`). */
  sandbox?: { command: string[]; home: string; network: boolean; sourceView?: number };
}

export class BuildScriptError extends InputError {}

/** The sandbox could not be set up: the script never ran. */
export class SandboxUnavailableError extends InputError {}

/** Why a failure may be the sandbox's doing, and the grant that would allow it. */
const NO_NETWORK_HINT =
  'build.sh ran without network access (loopback only); if it downloads, grant it: peipkg-build build --network, or in the farm [[grant]] recipe = "<name>" network = true';

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
  if (run.sandbox) env.HOME = run.sandbox.home;
  for (const name of [...run.buildEnv.keys()].sort()) env[name] = run.buildEnv.get(name) ?? '';
  return env;
}

/** The last lines of what bubblewrap or the sandbox's shim said before the script started. */
function sandboxReason(stderr: string, code: number | null, signal: NodeJS.Signals | null): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.slice(-3).join('; ') || (signal ? `bubblewrap ended by ${signal}` : `bubblewrap exit status ${code ?? 'none'}`);
}

/** Runs the script to completion; throws `BuildScriptError` when it fails or is stopped. */
export async function runBuildScript(run: ScriptRun): Promise<void> {
  const [command, ...args] = run.sandbox ? run.sandbox.command : ['sh', run.script];
  // In the sandbox, stderr is ours until the shim says it is ready on fd 3: what bwrap prints
  // there is why the sandbox could not start. The shim then points the script's stderr at stdout.
  const child = spawn(command!, args, {
    cwd: run.sandbox ? '/' : run.workDir,
    env: scriptEnvironment(run),
    stdio: run.sandbox ? ['ignore', process.stderr, 'pipe', 'pipe', ...(run.sandbox.sourceView === undefined ? [] : [run.sandbox.sourceView])] : ['ignore', process.stderr, process.stderr],
    detached: true,
    ...(run.user && !run.sandbox ? { uid: run.user.uid, gid: run.user.gid } : {}),
  });
  let setupErrors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (started) process.stderr.write(chunk);
    else setupErrors = `${setupErrors}${chunk.toString()}`.slice(-4096);
  });
  let started = !run.sandbox;
  const ready = run.sandbox ? readyFlag(child.stdio[3] as NodeJS.ReadableStream, () => (started = true)) : Promise.resolve(true);
  const guard = guardGroup(child.pid, {
    timeoutMs: run.timeoutMs,
    timeoutReason: `timed out after ${(run.timeoutMs ?? 0) / 1000}s`,
    abort: run.signal,
    graceMs: run.graceMs ?? 10_000,
  });
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (error) => reject(new BuildScriptError(`run build script: cannot start ${command}: ${error.message}`)));
      child.once('close', (c, s) => resolve([c, s]));
    });
    const stoppedBy = guard.stoppedBy();
    if (stoppedBy) throw new BuildScriptError(`run build script: ${stoppedBy}`);
    if (!(await ready)) throw new SandboxUnavailableError(sandboxReason(setupErrors, code, signal));
    const hint = run.sandbox && !run.sandbox.network ? ` (${NO_NETWORK_HINT})` : '';
    if (signal) throw new BuildScriptError(`run build script: signal: ${signal}${hint}`);
    if (code !== 0) throw new BuildScriptError(`run build script: exit status ${code}${hint}`);
  } finally {
    // Background processes the script left behind must not touch the tree we are about to pack.
    guard.release();
  }
}

/** Resolves with whether `pipe` (the shim's fd 3) said "ready" before it closed; `onReady` as soon as it does. */
export function readyFlag(pipe: NodeJS.ReadableStream, onReady: () => void = () => undefined): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = false;
    pipe.on('data', () => {
      if (!seen) onReady();
      seen = true;
    });
    pipe.on('end', () => resolve(seen));
    pipe.on('close', () => resolve(seen));
    pipe.on('error', () => resolve(seen));
  });
}
