/**
 * Every command the manager runs (git, peipkg-build, peipkg-repo, rclone) goes through here: an
 * argv array (never a shell), its own process group, a timeout that stops the whole group
 * (SIGTERM, then SIGKILL after a grace period), and output streamed into the build's log (D-25) —
 * never collected in memory, so a step that prints gigabytes costs the daemon nothing. A step
 * also dies with the daemon: if the manager is killed outright, its steps get SIGTERM
 * (`diesWithParent`) instead of running on beside the next manager's retry.
 */

import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';

import { InputError } from '../errors.js';
import { diesWithParent, guardGroup } from '../processGroup.js';
import { ByteRing, type BuildLog } from './buildLog.js';

export class StepError extends InputError {
  constructor(
    message: string,
    /** The step's exit status, when it exited (rather than being stopped or failing to start). */
    readonly exitStatus?: number,
  ) {
    super(message);
  }
}

export interface StepOptions {
  cwd?: string;
  /** Added to the daemon's environment. */
  env?: Record<string, string>;
  timeoutMs: number;
  /** Where stdout and stderr go. Without it, the end of stderr is kept for the error message. */
  log?: BuildLog;
  /** Capture stdout (up to `MAX_CAPTURED_BYTES`) and return it; it is then not logged. */
  captureStdout?: boolean;
  /** Stops the step early (drain timeout, shutdown). */
  abort?: AbortSignal;
  graceMs?: number;
}

/** More than any `git ls-remote` or `git log` we run prints; a step past it fails. */
const MAX_CAPTURED_BYTES = 256 * 1024 * 1024;

/** Runs `command args…`; resolves with stdout exactly as printed (when captured), throws `StepError` naming the step. */
export async function runStep(what: string, command: string, args: string[], options: StepOptions): Promise<string> {
  const [program, argv] = diesWithParent(command, args, 'SIGTERM');
  const child = spawn(program, argv, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const guard = guardGroup(child.pid, {
    timeoutMs: options.timeoutMs,
    timeoutReason: `timed out after ${Math.round(options.timeoutMs / 1000)}s`,
    abort: options.abort,
    graceMs: options.graceMs ?? 10_000,
  });
  const stderrEnd = new ByteRing(4096);
  const stdout: Buffer[] = [];
  let captured = 0;
  let overflow = false;
  if (options.captureStdout) {
    child.stdout.on('data', (chunk: Buffer) => {
      captured += chunk.length;
      if (captured > MAX_CAPTURED_BYTES) {
        overflow = true;
        child.stdout.destroy();
      } else stdout.push(chunk);
    });
  } else if (options.log) child.stdout.pipe(options.log.sink(), { end: false });
  else child.stdout.resume();
  if (options.log) child.stderr.pipe(options.log.sink(), { end: false });
  else child.stderr.on('data', (chunk: Buffer) => stderrEnd.push(chunk));
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', (error) => reject(new StepError(`${what}: cannot run ${command}: ${error.message}`)));
      child.once('exit', (c, s) => resolve([c, s]));
    });
    // The log should hold everything the step printed, but a process it left behind outside its
    // group (setsid) may hold the pipes open for hours: kill the group, then wait briefly.
    guard.release();
    await outputEnded([child.stdout, child.stderr], OUTPUT_GRACE_MS);
    const stoppedBy = guard.stoppedBy();
    if (stoppedBy) throw new StepError(`${what}: ${stoppedBy}`);
    if (overflow) throw new StepError(`${what}: printed more than ${MAX_CAPTURED_BYTES} bytes on stdout`);
    if (code !== 0) {
      const detail = code !== null ? `exit status ${code}` : `signal: ${signal ?? 'unknown'}`;
      const last = options.log ? options.log.lastLines(3) : lastLines(stderrEnd.contents().toString('utf8'), 3);
      throw new StepError(`${what}: ${detail}${last.length > 0 ? `: ${last.join(' | ')}` : ''}`, code ?? undefined);
    }
    return Buffer.concat(stdout).toString('utf8');
  } finally {
    guard.release(); // nothing of the step outlives it
  }
}

/** How long output may keep arriving after a step has exited. */
const OUTPUT_GRACE_MS = 2000;

/** Resolves when every stream has ended, or after `ms` (the rest is then cut off). */
async function outputEnded(streams: Readable[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  const ended = Promise.all(streams.map((s) => (s.readableEnded || s.destroyed ? Promise.resolve() : new Promise<void>((resolve) => s.once('close', resolve)))));
  await Promise.race([ended, late]);
  clearTimeout(timer);
  for (const s of streams) s.destroy();
}

function lastLines(text: string, n: number): string[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : trimmed.split('\n').slice(-n);
}
