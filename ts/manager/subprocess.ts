/**
 * Every command the manager runs (git, peipkg-build, peipkg-repo, rclone) goes through here:
 * execa with an argv array (never a shell), in its own process group, with a timeout that stops
 * the whole group (SIGTERM, then SIGKILL after a grace period), and output appended to the build's
 * log file instead of the daemon's structured log (D-25).
 */

import { execa } from 'execa';

import { InputError } from '../errors.js';
import { guardGroup } from '../processGroup.js';

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
  const guard = guardGroup(child.pid, {
    timeoutMs: options.timeoutMs,
    timeoutReason: `timed out after ${Math.round(options.timeoutMs / 1000)}s`,
    abort: options.abort,
    graceMs: options.graceMs ?? 10_000,
  });
  try {
    const result = await child;
    const stoppedBy = guard.stoppedBy();
    if (stoppedBy) throw new StepError(`${what}: ${stoppedBy}`);
    if (result.failed) {
      const detail = result.exitCode !== undefined ? `exit status ${result.exitCode}` : `signal: ${result.signal ?? 'unknown'}`;
      const stderr = typeof result.stderr === 'string' && result.stderr.trim() !== '' ? `: ${result.stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
      throw new StepError(`${what}: ${detail}${stderr}`);
    }
    return typeof result.stdout === 'string' ? result.stdout : '';
  } finally {
    guard.release(); // nothing of the step outlives it
  }
}
