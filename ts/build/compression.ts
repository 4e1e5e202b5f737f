/**
 * The zstd settings packages are written with. Level 10 with overlapLog 9 came out of
 * `bench/build.ts` (DECISIONS.md, zstd): output no larger than the reference producer's on a
 * 225 MB tree of libraries and docs, in a fraction of its time. The output never depends on the
 * number of worker threads, so packages are reproducible on any machine.
 */

export interface ZstdSettings {
  level: number;
  overlapLog: number;
}

export const DEFAULT_ZSTD: ZstdSettings = { level: 10, overlapLog: 9 };

export function zstdLevelProblem(level: number): string | undefined {
  return Number.isInteger(level) && level >= 1 && level <= 22 ? undefined : `must be an integer from 1 to 22, got ${level}`;
}
