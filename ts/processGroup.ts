/**
 * How peipkg stops a child it started in its own process group (`detached`), for build scripts
 * (D-4) and every step the manager runs: a timeout or an abort sends the whole group SIGTERM, then
 * SIGKILL after a grace period; when the child has ended, whatever it left running in its group is
 * killed, so nothing of it outlives the step.
 */

import { spawnSync } from 'node:child_process';

/** Signals the process group `pid` leads; a group that is already gone is not an error. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

export interface GroupGuardOptions {
  /** Stop the group after this long, with `timeoutReason` as the reason. */
  timeoutMs?: number;
  timeoutReason?: string;
  /** Stop the group when this aborts, with its reason. */
  abort?: AbortSignal;
  /** Milliseconds between SIGTERM and SIGKILL. */
  graceMs: number;
}

export interface GroupGuard {
  /** Why the group was stopped, if it was. */
  readonly stoppedBy: () => string | undefined;
  /** Call once the child has ended: clears the timer and kills what is left of the group. */
  readonly release: () => void;
}

/** Watches the group led by `pid` (a child spawned with `detached: true`) until `release`. */
export function guardGroup(pid: number | undefined, options: GroupGuardOptions): GroupGuard {
  let stoppedBy: string | undefined;
  const stop = (why: string): void => {
    if (stoppedBy !== undefined || pid === undefined) return;
    stoppedBy = why;
    killGroup(pid, 'SIGTERM');
    setTimeout(() => killGroup(pid, 'SIGKILL'), options.graceMs).unref();
  };
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => stop(options.timeoutReason ?? 'timed out'), options.timeoutMs);
  const onAbort = (): void => stop(String(options.abort?.reason ?? 'stopped'));
  options.abort?.addEventListener('abort', onAbort);
  if (options.abort?.aborted) onAbort();
  return {
    stoppedBy: () => stoppedBy,
    release: () => {
      if (timer) clearTimeout(timer);
      options.abort?.removeEventListener('abort', onAbort);
      killGroup(pid, 'SIGKILL');
    },
  };
}

const SETPRIV = '/usr/bin/setpriv';
let setprivWorks: boolean | undefined;

/**
 * `command args…` prefixed so that the child gets `signal` when we die, however we die (SIGKILL
 * included): util-linux's `setpriv --pdeathsig` sets PR_SET_PDEATHSIG, which survives its exec of
 * the command. Without it (no util-linux ≥ 2.33), the command runs as given.
 */
export function diesWithParent(command: string, args: readonly string[], signal: 'SIGTERM' | 'SIGKILL'): [string, string[]] {
  return parentDeathSignalAvailable() ? [SETPRIV, ['--pdeathsig', signal, '--', command, ...args]] : [command, [...args]];
}

/** Whether `diesWithParent` can do its job on this host (checked once). */
export function parentDeathSignalAvailable(): boolean {
  setprivWorks ??= spawnSync(SETPRIV, ['--pdeathsig', 'SIGTERM', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return setprivWorks;
}
