/**
 * Deterministic fault injection with strace (DECISIONS.md, Repository writes): run a command
 * under `strace -f -e inject=SET:signal=KILL:when=N`, and read strace logs to know where each N
 * lands.
 *
 * strace counts injectable calls per syscall *and* per tracee (every thread is a tracee), so
 * `when=N` kills the process at the first moment any thread makes its N-th call of any one syscall
 * in the set. `killPoints` replays a log of an uninjected run with exactly those counters to
 * predict, for every N, which call is the one killed. Run the command with `UV_THREADPOOL_SIZE=1`
 * so that Node's asynchronous fs calls all happen on one worker thread: then the per-thread
 * sequences repeat from run to run and every N names one well-defined kill point.
 *
 * Two kinds of calls escape that: `write`, because libuv wakes its event loop with writes to an
 * eventfd a timing-dependent number of times (so a write's ordinal varies by dozens between runs),
 * and calls whose N-th rank some other thread reaches first. Those are singled out with `-P PATH`
 * (strace then counts only calls naming PATH), which needs temporary names that repeat from run
 * to run: `COUNTING_RANDOM_BYTES`.
 *
 * Note: strace 6.1 does not inject when `--seccomp-bpf` is given, so it is not used here.
 */

import { execa } from 'execa';

export const STRACE = '/usr/bin/strace';

/** One syscall as strace -f logs it (`<tid> name(args…`), in log order. */
export interface SyscallEvent {
  /** Position among the logged calls (0-based). */
  index: number;
  tid: number;
  name: string;
  /** Everything after `name(` on the line, up to the result or `<unfinished ...>`. */
  args: string;
  /** How many calls of `name` this thread had made, this one included (strace's `when=` count). */
  ordinal: number;
}

/** Parses an `strace -f -o LOG` log; resumptions (`<... resumed>`), signals and exits are skipped. */
export function parseStraceLog(text: string): SyscallEvent[] {
  const events: SyscallEvent[] = [];
  const counters = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(\d+)\s+([a-z0-9_]+)\((.*)$/.exec(line);
    if (!match) continue;
    const tid = Number(match[1]);
    const name = match[2]!;
    const key = `${tid}:${name}`;
    const ordinal = (counters.get(key) ?? 0) + 1;
    counters.set(key, ordinal);
    events.push({ index: events.length, tid, name, args: match[3]!, ordinal });
  }
  return events;
}

/**
 * For `inject=<syscalls>:when=N`, the call strace kills at: the earliest call in the set whose
 * per-thread, per-syscall ordinal is N. Returns every N that lands on a call, in order of N.
 */
export function killPoints(events: readonly SyscallEvent[], syscalls: readonly string[]): Array<{ n: number; event: SyscallEvent }> {
  const first = new Map<number, SyscallEvent>();
  for (const e of events) {
    if (syscalls.includes(e.name) && !first.has(e.ordinal)) first.set(e.ordinal, e);
  }
  return [...first].sort(([a], [b]) => a - b).map(([n, event]) => ({ n, event }));
}

/** The call strace killed in an injected run's log (traced with the same set it injected into). */
export function killedCall(events: readonly SyscallEvent[], syscalls: readonly string[], n: number): SyscallEvent | undefined {
  return events.find((e) => syscalls.includes(e.name) && e.ordinal === n);
}

/** Absolute paths a call names: quoted path arguments and (with `-y`) descriptor paths. */
export function pathsOf(e: SyscallEvent): string[] {
  return [...e.args.matchAll(/"(\/[^"]*)"|<(\/[^>]*)>/g)].map((m) => m[1] ?? m[2]!);
}

/** An `openat` that only reads (no O_WRONLY, O_RDWR or O_CREAT). */
export const isReadOnlyOpen = (e: SyscallEvent): boolean => e.name === 'openat' && !/O_WRONLY|O_RDWR|O_CREAT/.test(e.args);

/**
 * `when=` for `-P path -e inject=<e's syscall>`: strace then counts only calls naming `path`
 * (per thread, as always), so this is e's rank among its thread's calls of its syscall on `path`.
 */
export function pinnedOrdinal(events: readonly SyscallEvent[], e: SyscallEvent, path: string): number {
  return events.filter((x) => x.index <= e.index && x.tid === e.tid && x.name === e.name && pathsOf(x).includes(path)).length;
}

/**
 * A module for `node --import` that makes `crypto.randomBytes` count (1, 2, 3, …) instead of
 * drawing random bytes: the temporary names a writer picks (`*.tmp-<hex>`, staging files) are then
 * the same in every run, so `-P` can single out the calls on each of them.
 */
export const COUNTING_RANDOM_BYTES = `data:text/javascript,${encodeURIComponent(
  'import crypto from "node:crypto"; import { syncBuiltinESMExports } from "node:module"; let n = 0; ' +
    'crypto.randomBytes = (size) => { const b = Buffer.alloc(size); b.writeUIntBE(++n, Math.max(0, size - 6), Math.min(6, size)); return b; }; ' +
    'syncBuiltinESMExports();',
)}`;

/**
 * A short, run-independent description of a call (logged with `-y`): `dir` becomes `S`, random
 * names become `*`, descriptor numbers go (their paths stay).
 */
export function describeCall(e: SyscallEvent, dir: string): string {
  const args = e.args
    .split(dir)
    .join('S')
    .replace(/AT_FDCWD<[^>]*>/g, 'AT_FDCWD')
    .replace(/\b\d+</g, '<')
    .replace(/tmp-[0-9a-f]{12}/g, 'tmp-*')
    .replace(/\/[0-9a-f]{16}(?=["> ])/g, '/*')
    .replace(/(\s*<unfinished \.\.\.>|\)\s+= .*)$/, '');
  const short = args.length > 120 ? `${args.slice(0, 117)}...` : args;
  return `${e.name}(${short})`;
}

export interface StraceRun {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  /** The tracee was killed by an injected SIGKILL. */
  killed: boolean;
}

export interface StraceOptions {
  /** strace's log file (`-o`). */
  log: string;
  /** Syscalls to log (`-e trace=`). */
  trace: readonly string[];
  /** Kill at the `when`-th call (per thread, per syscall) of these syscalls. */
  inject?: { syscalls: readonly string[]; when: number };
  /**
   * `-P`: log, count and inject only calls that name one of these exact paths (as a path argument
   * or through a descriptor), to reach one call that per-thread counting cannot single out.
   */
  paths?: readonly string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Runs `command` under `strace -f`, optionally killing it with an injected SIGKILL. */
export async function runUnderStrace(command: readonly string[], options: StraceOptions): Promise<StraceRun> {
  const args = ['-f', '-y', '-o', options.log, '-e', `trace=${options.trace.join(',')}`];
  for (const path of options.paths ?? []) args.push('-P', path);
  if (options.inject) args.push('-e', `inject=${options.inject.syscalls.join(',')}:signal=KILL:when=${options.inject.when}`);
  const result = await execa(STRACE, [...args, ...command], {
    reject: false,
    env: options.env,
    timeout: options.timeoutMs ?? 60_000,
    stripFinalNewline: false,
  });
  // strace ends itself with the tracee's signal, so a killed run ends by SIGKILL.
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    stdout: result.stdout,
    stderr: result.stderr,
    killed: result.signal === 'SIGKILL' && !result.timedOut,
  };
}
