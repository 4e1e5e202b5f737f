/**
 * Every command the manager runs (git, peipkg-build, peipkg-repo, rclone) goes through here:
 * execa with an argv array (never a shell), in its own process group, with a timeout that stops
 * the whole group (SIGTERM, then SIGKILL after a grace period), and output appended to the build's
 * log file instead of the daemon's structured log (D-25).
 */

import { execa } from 'execa';

import { InputError } from '../errors.js';

export class StepError extends InputError {}

export interface StepOptions {
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs: number;
  /** Where stdout and stderr go (appended). Without it, stderr is kept for the error message. */
  logFile?: string;
  /** Capture stdout and return it (it is then not logged). */
  captureStdout?: boolean;
  /** Stops the step early (drain timeout, shutdown). */
  abort?: AbortSignal;
  graceMs?: number;
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Runs `command args…`; resolves with stdout (when captured), throws `StepError` naming the step. */
export async function runStep(what: string, command: string, args: string[], options: StepOptions): Promise<string> {
  const out = options.logFile ? { file: options.logFile, append: true } : 'pipe';
  const child = execa(command, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: true,
    detached: true,
    stdin: 'ignore',
    stdout: options.captureStdout ? 'pipe' : out,
    stderr: out,
    reject: false,
    stripFinalNewline: true,
  });
  const grace = options.graceMs ?? 10_000;
  let stoppedBy: string | undefined;
  const stop = (why: string): void => {
    if (stoppedBy) return;
    stoppedBy = why;
    killGroup(child.pid, 'SIGTERM');
    setTimeout(() => killGroup(child.pid, 'SIGKILL'), grace).unref();
  };
  const timer = setTimeout(() => stop(`timed out after ${Math.round(options.timeoutMs / 1000)}s`), options.timeoutMs);
  const onAbort = (): void => stop(String(options.abort?.reason ?? 'stopped'));
  options.abort?.addEventListener('abort', onAbort);
  if (options.abort?.aborted) onAbort();
  try {
    const result = await child;
    if (stoppedBy) throw new StepError(`${what}: ${stoppedBy}`);
    if (result.failed) {
      const detail = result.exitCode !== undefined ? `exit status ${result.exitCode}` : `signal: ${result.signal ?? 'unknown'}`;
      const stderr = typeof result.stderr === 'string' && result.stderr.trim() !== '' ? `: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
      throw new StepError(`${what}: ${detail}${stderr}`);
    }
    return typeof result.stdout === 'string' ? result.stdout : '';
  } finally {
    clearTimeout(timer);
    options.abort?.removeEventListener('abort', onAbort);
    killGroup(child.pid, 'SIGKILL'); // nothing of the step outlives it
  }
}
