/**
 * Build history under `state_dir/history/` (DECISIONS.md, Manager): one record per attempt, with a
 * unique id (`<recipe>-<version>-<n>`) and a log file, the last `keep` attempts kept; and failure
 * records with their back-off, so a restart does not retry every failing version at once.
 * Files are replaced atomically; a build found `running` at start-up was interrupted.
 */

import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { z } from 'zod';

import type { Backoff } from './planner.js';

/**
 * `held`: built, but not published because the repository was damaged; published once it is repaired.
 * `verifying`: one build of a rebuild check (`[verify] rebuild`), kept until the other arrives.
 */
export type BuildState = 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted' | 'held' | 'verifying';

/** Where two builds of a rebuild check first differ. */
export interface Difference {
  file: string;
  member: string;
  digests: [string, string];
  workers: [string, string];
}

export interface BuildRecord {
  id: string;
  recipe: string;
  version: string;
  tag: string;
  source: string;
  commit?: string;
  state: BuildState;
  queuedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** fetch, build, publish: where a failure happened. */
  stage?: string;
  error?: string;
  outputs?: string[];
  quarantine?: string;
  /** The worker that built it (`local`: the coordinator itself). */
  worker?: string;
  /** The queue attempt (BullMQ lock token) that delivered it. */
  attempt?: string;
  /** Set by a rebuild check: both builds gave the same tars (true), or not (false, with `difference`). */
  reproducible?: boolean;
  difference?: Difference;
}

/**
 * A record as `/status` and the dashboard show it: snake_case keys like the rest of `/status`, how
 * long it took (seconds, once finished) and where its log is served.
 */
export function shownRecord(b: BuildRecord): Record<string, unknown> {
  const started = b.startedAt ? Date.parse(b.startedAt) : NaN;
  const finished = b.finishedAt ? Date.parse(b.finishedAt) : NaN;
  return {
    id: b.id,
    recipe: b.recipe,
    version: b.version,
    tag: b.tag,
    source: b.source,
    ...(b.commit ? { commit: b.commit } : {}),
    state: b.state,
    queued_at: b.queuedAt,
    ...(b.startedAt ? { started_at: b.startedAt } : {}),
    ...(b.finishedAt ? { finished_at: b.finishedAt } : {}),
    ...(Number.isFinite(started) && Number.isFinite(finished) ? { duration_s: Math.max(0, (finished - started) / 1000) } : {}),
    ...(b.stage ? { stage: b.stage } : {}),
    ...(b.error ? { error: b.error } : {}),
    ...(b.outputs ? { outputs: b.outputs } : {}),
    ...(b.quarantine ? { quarantine: b.quarantine } : {}),
    ...(b.worker ? { worker: b.worker } : {}),
    ...(b.attempt ? { attempt: b.attempt } : {}),
    ...(b.reproducible !== undefined ? { reproducible: b.reproducible } : {}),
    ...(b.difference ? { difference: b.difference } : {}),
    log_url: buildLogPath(b.id),
  };
}

/** Where the manager serves build `id`'s log (relative to its HTTP root). */
export const buildLogPath = (id: string): string => `/builds/${encodeURIComponent(id)}/log`;

const BuildRecordSchema = z.object({
  id: z.string(),
  recipe: z.string(),
  version: z.string(),
  tag: z.string(),
  source: z.string(),
  commit: z.string().optional(),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'interrupted', 'held', 'verifying']),
  queuedAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  stage: z.string().optional(),
  error: z.string().optional(),
  outputs: z.array(z.string()).optional(),
  quarantine: z.string().optional(),
  worker: z.string().optional(),
  attempt: z.string().optional(),
  reproducible: z.boolean().optional(),
  difference: z.object({ file: z.string(), member: z.string(), digests: z.tuple([z.string(), z.string()]), workers: z.tuple([z.string(), z.string()]) }).optional(),
});
const FailureSchema = z.object({ failures: z.number().int().positive(), nextRetry: z.string() });
const HistoryFile = z.object({ attempts: z.record(z.string(), z.number().int()).default({}), builds: z.array(BuildRecordSchema).default([]) });
const FailuresFile = z.record(z.string(), FailureSchema);

export interface FailureRecord {
  failures: number;
  nextRetry: string;
}

/** 1m, 5m, 15m, 1h, 6h, then 24h (`recipes-and-farm.md` §8.11). */
const BACKOFF_MS = [60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000];

export function backoffAfter(failures: number): number {
  return BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1] ?? BACKOFF_MS[BACKOFF_MS.length - 1]!;
}

async function readJson<T>(path: string, schema: z.ZodType<T>, fallback: T): Promise<T> {
  try {
    const parsed = schema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    return parsed.success ? parsed.data : fallback;
  } catch {
    return fallback;
  }
}

async function writeAtomically(path: string, value: unknown): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(temp, path);
}

export class History implements Backoff {
  /** Saves run one after another: concurrent jobs update the same files. */
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly keep: number,
    private attempts: Record<string, number>,
    private builds: BuildRecord[],
    readonly failures: Map<string, FailureRecord>,
  ) {}

  static async open(stateDir: string, keep: number): Promise<History> {
    const dir = join(stateDir, 'history');
    await mkdir(join(dir, 'logs'), { recursive: true });
    const file = await readJson(join(dir, 'builds.json'), HistoryFile, { attempts: {}, builds: [] });
    const failures = await readJson(join(dir, 'failures.json'), FailuresFile, {});
    const history = new History(dir, keep, file.attempts, file.builds, new Map(Object.entries(failures)));
    let changed = false;
    for (const b of history.builds) {
      if (b.state === 'running' || b.state === 'queued') {
        b.state = 'interrupted';
        b.finishedAt ??= new Date().toISOString();
        changed = true;
      }
    }
    if (changed) await history.save();
    return history;
  }

  logPath(id: string): string {
    return join(this.dir, 'logs', `${id}.log`);
  }

  /** A new attempt of `<recipe>@<version>`, with its unique id. */
  async begin(record: Omit<BuildRecord, 'id' | 'state' | 'queuedAt'>): Promise<BuildRecord> {
    const key = `${record.recipe}@${record.version}`;
    const n = (this.attempts[key] ?? 0) + 1;
    this.attempts[key] = n;
    const build: BuildRecord = { ...record, id: `${record.recipe}-${record.version}-${n}`, state: 'queued', queuedAt: new Date().toISOString() };
    this.builds.push(build);
    await this.prune();
    await this.save();
    return build;
  }

  async update(id: string, patch: Partial<BuildRecord>): Promise<void> {
    const build = this.builds.find((b) => b.id === id);
    if (!build) return;
    Object.assign(build, patch);
    await this.save();
  }

  get(id: string): BuildRecord | undefined {
    return this.builds.find((b) => b.id === id);
  }

  /** The most recent attempts, newest first. */
  recent(n: number): BuildRecord[] {
    return this.builds.slice(-n).reverse();
  }

  /** The newest attempt of `recipe` (any version), if the history still holds one. */
  latest(recipe: string): BuildRecord | undefined {
    for (let i = this.builds.length - 1; i >= 0; i--) if (this.builds[i]!.recipe === recipe) return this.builds[i];
    return undefined;
  }

  /** Builds held back from a damaged repository, oldest first. */
  heldBuilds(): BuildRecord[] {
    return this.builds.filter((b) => b.state === 'held');
  }

  /** Built and waiting: for a repaired repository (`held`) or for the other build of a rebuild check (`verifying`). */
  held(recipe: string, version: string): boolean {
    return this.builds.some((b) => (b.state === 'held' || b.state === 'verifying') && b.recipe === recipe && b.version === version);
  }

  /** The build a queue attempt delivered, if it was recorded. */
  byAttempt(attempt: string): BuildRecord | undefined {
    return this.builds.find((b) => b.attempt === attempt);
  }

  /** The build of a rebuild check waiting for its other half. */
  verifying(recipe: string, version: string): BuildRecord | undefined {
    return this.builds.find((b) => b.state === 'verifying' && b.recipe === recipe && b.version === version);
  }

  nextRetry(recipe: string, version: string): number | undefined {
    const record = this.failures.get(`${recipe}@${version}`);
    return record ? Date.parse(record.nextRetry) : undefined;
  }

  async recordFailure(recipe: string, version: string, now: number): Promise<{ failures: number; retryAfterMs: number }> {
    const key = `${recipe}@${version}`;
    const failures = (this.failures.get(key)?.failures ?? 0) + 1;
    const retryAfterMs = backoffAfter(failures);
    this.failures.set(key, { failures, nextRetry: new Date(now + retryAfterMs).toISOString() });
    await this.saveFailures();
    return { failures, retryAfterMs };
  }

  async clearFailure(recipe: string, version: string): Promise<void> {
    if (this.failures.delete(`${recipe}@${version}`)) await this.saveFailures();
  }

  private async prune(): Promise<void> {
    if (this.builds.length <= this.keep) return;
    const dropped = this.builds.splice(0, this.builds.length - this.keep);
    for (const b of dropped) await rm(this.logPath(b.id), { force: true });
  }

  private serialise(write: () => Promise<void>): Promise<void> {
    this.writes = this.writes.then(write, write);
    return this.writes;
  }

  private save(): Promise<void> {
    return this.serialise(() => writeAtomically(join(this.dir, 'builds.json'), { attempts: this.attempts, builds: this.builds }));
  }

  private saveFailures(): Promise<void> {
    return this.serialise(() => writeAtomically(join(this.dir, 'failures.json'), Object.fromEntries(this.failures)));
  }

  /** Logs of builds no longer in the history (left by a crash between prune and save). */
  async removeOrphanLogs(): Promise<void> {
    const known = new Set(this.builds.map((b) => `${b.id}.log`));
    for (const name of await readdir(join(this.dir, 'logs'))) if (!known.has(name)) await rm(join(this.dir, 'logs', name), { force: true });
  }
}
