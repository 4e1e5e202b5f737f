/**
 * The zstd settings packages are written with. Level 10 with overlapLog 9 (DECISIONS.md, zstd),
 * confirmed by `bench/build.sh`: output no larger than the reference producer's on a 229 MB tree
 * of libraries and docs, in a fraction of its time. overlapLog 9 makes every job first load a
 * whole window (4 MiB at level 10) of the input before it; with libzstd's default 16 MiB jobs that
 * costs about 10% more CPU than plain `zstd -10`. 32 MiB jobs halve that share: the same CPU as
 * plain `zstd -10`, sizes within 0.003% of 16 MiB jobs, for ~100 MiB more memory at the peak.
 * The output never depends on the number of worker threads, so packages are reproducible on any
 * machine.
 */

export interface ZstdSettings {
  level: number;
  overlapLog: number;
  /** Input bytes per compression job. */
  jobSize: number;
}

export const DEFAULT_ZSTD: ZstdSettings = { level: 10, overlapLog: 9, jobSize: 32 << 20 };

export function zstdLevelProblem(level: number): string | undefined {
  return Number.isInteger(level) && level >= 1 && level <= 22 ? undefined : `must be an integer from 1 to 22, got ${level}`;
}
