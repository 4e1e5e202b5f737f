/**
 * What the benchmarks measure with: medians, the load average, and a command's wall time and peak
 * RSS under GNU time.
 */

import { loadavg } from 'node:os';

import { execa } from 'execa';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The 1, 5 and 15 minute load averages, for the report: times mean little on a busy machine. */
export const loadAverage = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export interface Measured {
  seconds: number;
  peakMB: number;
}

/** Runs a command under GNU time (`apt-get install time`); its wall seconds and peak RSS. Fails if it does. */
export async function timed(command: string, args: readonly string[]): Promise<Measured> {
  const result = await execa('/usr/bin/time', ['-f', '%e %M', command, ...args], { reject: false, all: true });
  const [seconds, kb] = (result.stderr.trim().split('\n').pop() ?? '').split(' ').map(Number);
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.all ?? ''}`);
  return { seconds: seconds ?? NaN, peakMB: (kb ?? 0) / 1024 };
}
