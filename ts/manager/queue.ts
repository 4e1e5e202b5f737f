/**
 * The build queue. `BuildQueue` is the interface the daemon uses, so that a distributed backend
 * can replace `EmbeddedQueue` later; the embedded one is an in-memory FIFO served by `concurrency`
 * workers. A trigger for a (recipe, version) that is already queued or running is merged into it.
 */

import type { Trigger } from './planner.js';

export interface RunningJob {
  trigger: Trigger;
  startedAt: string;
}

export interface BuildQueue {
  /** Queues `trigger` unless the same recipe and version is queued or running; says whether it was added. */
  submit(trigger: Trigger): boolean;
  queued(): Trigger[];
  running(): RunningJob[];
  /** Stops starting queued work; resolves when the running jobs have finished. */
  drain(): Promise<void>;
  /** Resolves once nothing is queued or running. */
  idle(): Promise<void>;
}

const keyOf = (t: Trigger): string => `${t.recipe.id}@${t.version}`;

export class EmbeddedQueue implements BuildQueue {
  private readonly waiting: Trigger[] = [];
  private readonly active = new Map<string, RunningJob>();
  private readonly inflight = new Set<Promise<void>>();
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly work: (trigger: Trigger) => Promise<void>,
  ) {}

  submit(trigger: Trigger): boolean {
    const key = keyOf(trigger);
    if (this.draining || this.active.has(key) || this.waiting.some((t) => keyOf(t) === key)) return false;
    this.waiting.push(trigger);
    this.pump();
    return true;
  }

  queued(): Trigger[] {
    return [...this.waiting];
  }

  running(): RunningJob[] {
    return [...this.active.values()];
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

  private pump(): void {
    while (!this.draining && this.active.size < this.concurrency && this.waiting.length > 0) {
      const trigger = this.waiting.shift()!;
      const key = keyOf(trigger);
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
