/**
 * Where a worker delivers what it built: the coordinator, over HTTP with the worker's token
 * (remote workers), or straight into the coordinator's receiver (its own builds). Both speak the
 * same small protocol: each file with its SHA-256, then the result; the answer says what became of it.
 */

import { z } from 'zod';

export interface AttemptRef {
  jobId: string;
  /** The lock token the worker took the job with: one per attempt. */
  attempt: string;
  worker: string;
}

export const FileFact = z.object({ name: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), size: z.number().int().nonnegative() });
export type FileFact = z.infer<typeof FileFact>;

export const ResultBody = z.discriminatedUnion('outcome', [
  z.object({ outcome: z.literal('built'), files: z.array(FileFact).min(1).max(64), commit: z.string(), timestamp: z.string(), startedAt: z.string() }),
  z.object({ outcome: z.literal('failed'), stage: z.string().max(64), error: z.string().max(64 * 1024), commit: z.string().optional(), startedAt: z.string() }),
]);
export type ResultBody = z.infer<typeof ResultBody>;

/**
 * `succeeded`/`held`: published (or kept for a damaged repository); `pending`: kept until the
 * other build of a rebuild check arrives; `failed`: refused or failed, with the reason in history;
 * `stale`: the attempt no longer holds the job (it was handed to another worker) and nothing was taken.
 */
export const ResultAnswer = z.object({
  state: z.enum(['succeeded', 'held', 'pending', 'failed', 'stale']),
  build: z.string().optional(),
  error: z.string().optional(),
});
export type ResultAnswer = z.infer<typeof ResultAnswer>;

/** A delivery that did not happen; `retry` when sending again may work (a network error, a restart, a mangled byte). */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    readonly stale = false,
  ) {
    super(message);
  }
}

export interface ResultSink {
  /** Sends one file; throws DeliveryError. */
  sendFile(ref: AttemptRef, name: string, path: string, fact: FileFact): Promise<void>;
  sendResult(ref: AttemptRef, body: ResultBody): Promise<ResultAnswer>;
}

/** A failed job's reason starts with this when the coordinator already recorded it. */
export const REPORTED = 'reported: ';
