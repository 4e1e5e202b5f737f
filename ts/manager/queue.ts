/**
 * The build queue. `BuildQueue` is what the farm uses; two backends implement it: `EmbeddedQueue`,
 * an in-memory FIFO served by `[build].concurrency` jobs in this process (the single-host farm),
 * and `RedisQueue` (redisQueue.ts), BullMQ on Redis, served by worker machines. On both, a trigger
 * for a (recipe, version) already queued or running is merged into it; the contract tests in
 * `__test__/manager/queue-contract.test.ts` run against both.
 */

import type { Trigger } from './planner.js';

export interface QueuedJob {
  recipe: string;
  version: string;
  tag: string;
  source: string;
  /** Why no worker has taken it (`no worker for aarch64`), when none can. */
  waiting?: string;
  /** The architectures it needs (`noarch` for any worker). */
  architectures: string[];
}

export interface RunningJob {
  recipe: string;
  version: string;
  tag: string;
  source: string;
  startedAt: string;
  /** The worker running it (`local` for this process). */
  worker: string;
  architectures: string[];
}

export interface BuildQueue {
  /** Queues `trigger` unless the same recipe and version is queued or running; says whether it was added. */
  submit(trigger: Trigger): Promise<boolean>;
  queued(): Promise<QueuedJob[]>;
  running(): Promise<RunningJob[]>;
  /** Stops starting queued work; resolves when the jobs this process runs have finished. */
  drain(): Promise<void>;
  /** Resolves once nothing is queued or running. */
  idle(): Promise<void>;
  /** Releases connections (after `drain`). */
  close(): Promise<void>;
}

export const versionKey = (recipe: string, version: string): string => `${recipe}@${version}`;

const architecturesOf = (t: Trigger): string[] => {
  const archs = [...new Set(t.recipe.packages.map((p) => p.architecture).filter((a) => a !== 'noarch'))].sort();
  return archs.length > 0 ? archs : ['noarch'];
};

export class EmbeddedQueue implements BuildQueue {
  private readonly waiting: Trigger[] = [];
  private readonly active = new Map<string, { trigger: Trigger; startedAt: string }>();
  private readonly inflight = new Set<Promise<void>>();
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly work: (trigger: Trigger) => Promise<void>,
  ) {}

  submit(trigger: Trigger): Promise<boolean> {
    const key = versionKey(trigger.recipe.id, trigger.version);
    if (this.draining || this.active.has(key) || this.waiting.some((t) => versionKey(t.recipe.id, t.version) === key)) return Promise.resolve(false);
    this.waiting.push(trigger);
    this.pump();
    return Promise.resolve(true);
  }

  queued(): Promise<QueuedJob[]> {
    return Promise.resolve(this.waiting.map((t) => ({ recipe: t.recipe.id, version: t.version, tag: t.tag, source: t.source, architectures: architecturesOf(t) })));
  }

  running(): Promise<RunningJob[]> {
    return Promise.resolve(
      [...this.active.values()].map(({ trigger: t, startedAt }) => ({
        recipe: t.recipe.id,
        version: t.version,
        tag: t.tag,
        source: t.source,
        startedAt,
        worker: 'local',
        architectures: architecturesOf(t),
      })),
    );
  }

  async drain(): Promise<void> {
    this.draining = true;
    this.waiting.length = 0;
    await Promise.all([...this.inflight]);
  }

  idle(): Promise<void> {
    if (this.waiting.length === 0 && this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private pump(): void {
    while (!this.draining && this.active.size < this.concurrency && this.waiting.length > 0) {
      const trigger = this.waiting.shift()!;
      const key = versionKey(trigger.recipe.id, trigger.version);
      this.active.set(key, { trigger, startedAt: new Date().toISOString() });
      const job = this.work(trigger)
        .catch(() => undefined) // the worker reports its own failures
        .finally(() => {
          this.active.delete(key);
          this.inflight.delete(job);
          this.pump();
          if (this.waiting.length === 0 && this.active.size === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            waiters.forEach((w) => w());
          }
        });
      this.inflight.add(job);
    }
  }
}
