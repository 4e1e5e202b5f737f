/**
 * The farm on BullMQ + Redis. Redis holds derived state only — the signed repository is the truth,
 * and a lost queue is rebuilt by the next poll — so nothing here is ever the only copy of a result.
 *
 * Keys (one farm per Redis database): BullMQ's queues under `peipkg:build.<route>` (route.ts), and
 * the farm's own `peipkg:farm:routes` (every route queue ever used), `peipkg:farm:workers` (each
 * worker's last heartbeat), `peipkg:farm:settings` (the lock window and the farm key's fingerprint,
 * written by the coordinator) and `peipkg:farm:replicas` (who built which half of a rebuild check).
 *
 * Jobs are taken by hand (`getNextJob` with the attempt id as the lock token) rather than by a
 * BullMQ processor: a worker serves several route queues under one concurrency limit, and the lock
 * token doubles as the attempt id the coordinator checks an upload against. BullMQ has no job
 * timeout; `[build].timeout` bounds every build.
 */

import { hostname } from 'node:os';

import { Queue, Worker as BullWorker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';

import type { Logger } from '../log.js';
import { jobId, JobPayload, parseJobId } from './payload.js';
import type { Trigger } from './planner.js';
import type { BuildQueue, QueuedJob, RunningJob } from './queue.js';
import { serialiser } from './serialiser.js';
import { architectureLabels, canTake, queueName, whyWaiting, type Capabilities, type Route } from './route.js';

export const PREFIX = 'peipkg';
const ROUTES_KEY = `${PREFIX}:farm:routes`;
const WORKERS_KEY = `${PREFIX}:farm:workers`;
const SETTINGS_KEY = `${PREFIX}:farm:settings`;
const REPLICAS_KEY = `${PREFIX}:farm:replicas`;
/** How often workers say they are alive; one not heard from for LIVE_MS is shown as gone. */
export const HEARTBEAT_MS = 5_000;
export const LIVE_MS = 4 * HEARTBEAT_MS;
/** A job stalled more often than this (its workers died under it again and again) fails. */
const MAX_STALLED = 10;

/**
 * A third of `[queue].lock_window` for the lock and a third for each of the two passes BullMQ's
 * stalled-job check needs (one marks, the next moves): a dead worker's job is waiting again within the window.
 */
export const lockDurationFor = (lockWindowMs: number): number => Math.max(Math.floor(lockWindowMs / 3), 1_000);

/** ioredis options: commands wait through an outage (BullMQ needs that) while reconnecting with back-off. */
export function connectionOptions(url: string): { url: string; maxRetriesPerRequest: null; connectTimeout: number; retryStrategy: (times: number) => number } {
  return { url, maxRetriesPerRequest: null, connectTimeout: 10_000, retryStrategy: (times) => Math.min(250 * 2 ** Math.min(times, 5), 5_000) };
}

/** A plain client; an outage is logged once when it starts and once when it ends. */
export function createRedis(url: string, log: Logger, role: string): Redis {
  const { maxRetriesPerRequest, connectTimeout, retryStrategy } = connectionOptions(url);
  const client = new Redis(url, { maxRetriesPerRequest, connectTimeout, retryStrategy });
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn('redis unreachable; retrying with back-off', { role, err: error.message });
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log.info('redis reachable again', { role });
  });
  return client;
}

/** BullMQ objects log their connection errors through this (else they print stack traces). */
function quiet(emitter: { on(event: 'error', listener: (error: Error) => void): unknown }, log: Logger, role: string): void {
  let last = 0;
  emitter.on('error', (error) => {
    if (Date.now() - last < 30_000) return;
    last = Date.now();
    log.warn('queue connection problem; retrying', { role, err: error.message });
  });
}

const RouteSchema = z.object({ architectures: z.array(z.string()), keys: z.array(z.string()) });

export const WorkerInfo = z.object({
  id: z.string(),
  host: z.string(),
  architectures: z.array(z.string()),
  keys: z.array(z.string()),
  concurrency: z.number(),
  state: z.enum(['running', 'draining', 'stopped']),
  current: z.array(z.object({ job: z.string(), recipe: z.string(), version: z.string(), since: z.string() })),
  lastSeen: z.string(),
});
export type WorkerInfo = z.infer<typeof WorkerInfo>;

const Settings = z.object({ lockWindowMs: z.coerce.number().int().positive().optional(), farmFingerprint: z.string().optional(), farmId: z.string().optional() });
export type FarmSettings = z.infer<typeof Settings>;

/** The farm's own keys in Redis. */
export class Registry {
  constructor(readonly redis: Redis) {}

  async routes(): Promise<Route[]> {
    const routes: Route[] = [];
    for (const text of await this.redis.smembers(ROUTES_KEY)) {
      const parsed = RouteSchema.safeParse(safeJson(text));
      if (parsed.success) routes.push(parsed.data);
    }
    return routes;
  }

  async addRoute(route: Route): Promise<void> {
    await this.redis.sadd(ROUTES_KEY, JSON.stringify({ architectures: route.architectures, keys: route.keys }));
  }

  async heartbeat(info: WorkerInfo): Promise<void> {
    await this.redis.hset(WORKERS_KEY, info.id, JSON.stringify(info));
  }

  async workers(): Promise<WorkerInfo[]> {
    const all = await this.redis.hgetall(WORKERS_KEY);
    return Object.values(all)
      .map((text) => WorkerInfo.safeParse(safeJson(text)))
      .filter((p) => p.success)
      .map((p) => p.data)
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Workers heard from within LIVE_MS and not stopped. */
  async liveWorkers(now = Date.now()): Promise<WorkerInfo[]> {
    return (await this.workers()).filter((w) => w.state !== 'stopped' && now - Date.parse(w.lastSeen) < LIVE_MS);
  }

  async settings(): Promise<FarmSettings> {
    const parsed = Settings.safeParse(await this.redis.hgetall(SETTINGS_KEY));
    return parsed.success ? parsed.data : {};
  }

  async writeSettings(settings: Required<FarmSettings>): Promise<void> {
    await this.redis.hset(SETTINGS_KEY, { lockWindowMs: String(settings.lockWindowMs), farmFingerprint: settings.farmFingerprint, farmId: settings.farmId });
  }

  /** The attempt id holding `id`'s lock in `queue`, or null. */
  lockHolder(queue: string, id: string): Promise<string | null> {
    return this.redis.get(`${PREFIX}:${queue}:${id}:lock`);
  }

  /** Notes that `worker` took half `replica` of a rebuild check; returns who took the other half. */
  async tookReplica(version: string, replica: number, worker: string): Promise<string | null> {
    await this.redis.hset(REPLICAS_KEY, `${version}~${replica}`, worker);
    return this.redis.hget(REPLICAS_KEY, `${version}~${replica === 1 ? 2 : 1}`);
  }

  async forgetReplicas(version: string): Promise<void> {
    await this.redis.hdel(REPLICAS_KEY, `${version}~1`, `${version}~2`);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The worker a lock token (attempt id `<worker>.<uuid>`) belongs to. */
export const workerOfAttempt = (attempt: string): string => attempt.slice(0, Math.max(attempt.lastIndexOf('.'), 0));

export interface FailedJob {
  queue: string;
  id: string;
  payload: JobPayload | undefined;
  reason: string;
  remove(): Promise<void>;
}

export interface RedisQueueDeps {
  url: string;
  registry: Registry;
  log: Logger;
  /** The jobs a trigger becomes (two for a rebuild check); throws when it cannot be sent. */
  payloads(trigger: Trigger): Promise<JobPayload[]>;
  /** `[queue].lock_window`: a dead worker's job is taken again within it. */
  lockWindowMs: number;
}

/** The coordinator's side: queues jobs, watches for stalled ones, reports what is queued and running. */
export class RedisQueue implements BuildQueue {
  private readonly queues = new Map<string, { queue: Queue; checker: BullWorker; route: Route }>();

  constructor(private readonly deps: RedisQueueDeps) {}

  private stallTimer: NodeJS.Timeout | undefined;

  /** Opens every route queue known from earlier runs (their jobs survive a restart) and starts the stalled-job check. */
  async start(): Promise<void> {
    for (const route of await this.deps.registry.routes()) this.queueFor(route);
    this.stallTimer = setInterval(() => void this.checkStalled(), lockDurationFor(this.deps.lockWindowMs));
    this.stallTimer.unref();
  }

  /**
   * BullMQ's own check, run here on a timer of ours: a job whose lock ran out (its worker died or was
   * cut off) goes back to waiting. (The checker's built-in loop did not run for workers that take
   * jobs by hand; calling the same script ourselves does.)
   */
  private async checkStalled(): Promise<void> {
    for (const [name, { checker }] of this.queues) {
      try {
        await (checker as unknown as { moveStalledJobsToWait(): Promise<void> }).moveStalledJobsToWait();
      } catch (error) {
        this.deps.log.debug('stalled-job check failed', { queue: name, err: (error as Error).message });
      }
    }
  }

  private queueFor(route: Route): Queue {
    const name = queueName(route);
    const known = this.queues.get(name);
    if (known) return known.queue;
    const connection = connectionOptions(this.deps.url);
    const queue = new Queue(name, { connection, prefix: PREFIX });
    quiet(queue, this.deps.log, 'queue');
    // Moves the jobs of workers that stopped renewing their lock back to waiting (checkStalled).
    const third = lockDurationFor(this.deps.lockWindowMs);
    const checker = new BullWorker(name, null, { connection, prefix: PREFIX, autorun: false, lockDuration: third, stalledInterval: third, maxStalledCount: MAX_STALLED });
    quiet(checker, this.deps.log, 'stalled-check');
    this.queues.set(name, { queue, checker, route });
    return queue;
  }

  /**
   * BullMQ itself keeps one job per id; submits run one at a time here as well, so that of many
   * triggers of one version exactly one is told it was added (only the coordinator submits).
   */
  submit(trigger: Trigger): Promise<boolean> {
    return this.submits(() => this.add(trigger));
  }

  private readonly submits = serialiser();

  private async add(trigger: Trigger): Promise<boolean> {
    let added = false;
    for (const payload of await this.deps.payloads(trigger)) {
      await this.deps.registry.addRoute(payload.route);
      const queue = this.queueFor(payload.route);
      const id = jobId(payload.recipe, payload.version, payload.replica);
      if (await queue.getJob(id)) continue;
      // No BullMQ retries: a failed build is retried by the farm's own back-off, on a fresh poll.
      await queue.add('build', payload, { jobId: id, attempts: 1, removeOnComplete: true, removeOnFail: false });
      added = true;
    }
    return added;
  }

  /** The job `id` and the queue holding it. */
  async findJob(id: string): Promise<{ queue: string; job: Job } | undefined> {
    for (const [name, { queue }] of this.queues) {
      const job = await queue.getJob(id);
      if (job) return { queue: name, job: job as Job };
    }
    return undefined;
  }

  async queued(): Promise<QueuedJob[]> {
    const live = await this.deps.registry.liveWorkers();
    const out: QueuedJob[] = [];
    for (const { queue, route } of this.queues.values()) {
      const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed']);
      const waiting = whyWaiting(route, live);
      for (const job of jobs) {
        const p = JobPayload.safeParse(job.data);
        if (!p.success) continue;
        out.push({ recipe: p.data.recipe, version: p.data.version, tag: p.data.tag, source: p.data.source, architectures: architectureLabels(route), ...(waiting ? { waiting: `waiting: ${waiting}` } : {}) });
      }
    }
    return out;
  }

  async running(): Promise<RunningJob[]> {
    const out: RunningJob[] = [];
    for (const [name, { queue, route }] of this.queues) {
      for (const job of await queue.getJobs(['active'])) {
        const p = JobPayload.safeParse(job.data);
        if (!p.success || !job.id) continue;
        const holder = await this.deps.registry.lockHolder(name, job.id);
        out.push({
          recipe: p.data.recipe,
          version: p.data.version,
          tag: p.data.tag,
          source: p.data.source,
          startedAt: new Date(job.processedOn ?? Date.now()).toISOString(),
          worker: holder ? workerOfAttempt(holder) : '(lock lost; being handed to another worker)',
          architectures: architectureLabels(route),
        });
      }
    }
    return out;
  }

  /** Waiting and running jobs per architecture label. */
  async counts(): Promise<Record<string, { waiting: number; running: number }>> {
    const counts: Record<string, { waiting: number; running: number }> = {};
    for (const { queue, route } of this.queues.values()) {
      const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      for (const label of architectureLabels(route)) {
        const entry = (counts[label] ??= { waiting: 0, running: 0 });
        entry.waiting += (c.waiting ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
        entry.running += c.active ?? 0;
      }
    }
    return counts;
  }

  /** Jobs that ended failed (a worker reported it, or they stalled too often), for the history. */
  async failed(): Promise<FailedJob[]> {
    const out: FailedJob[] = [];
    for (const [name, { queue }] of this.queues) {
      for (const job of await queue.getJobs(['failed'])) {
        if (!job.id) continue;
        const p = JobPayload.safeParse(job.data);
        out.push({ queue: name, id: job.id, payload: p.success ? p.data : undefined, reason: job.failedReason ?? 'failed', remove: () => (job as Job).remove() });
      }
    }
    return out;
  }

  /** Removes the job of the other half of a rebuild check (it is no longer wanted). */
  async cancel(id: string): Promise<void> {
    const found = await this.findJob(id);
    if (!found) return;
    const state = await found.job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'completed' || state === 'failed') await found.job.remove().catch(() => undefined);
  }

  async idle(): Promise<void> {
    while (!this.draining) {
      let busy = 0;
      for (const { queue } of this.queues.values()) {
        const c = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
        busy += Object.values(c).reduce((a, b) => a + b, 0);
      }
      if (busy === 0) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private draining = false;

  /** Remote workers run the jobs; nothing runs here to wait for. A sweep waiting in `idle` stops waiting. */
  drain(): Promise<void> {
    this.draining = true;
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.stallTimer) clearInterval(this.stallTimer);
    for (const { queue, checker } of this.queues.values()) {
      await checker.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
    }
    this.queues.clear();
  }
}

/** A job a worker took: the BullMQ job, its queue and route, and the attempt id that locks it. */
export interface TakenJob {
  job: Job;
  queue: string;
  route: Route;
  attempt: string;
  payload: JobPayload;
}

/** The worker's side: takes jobs from every route queue it can serve, one at a time per call. */
export class JobSource {
  private readonly workers = new Map<string, { worker: BullWorker; route: Route }>();
  private turn = 0;

  constructor(
    private readonly url: string,
    readonly registry: Registry,
    private readonly capabilities: Capabilities,
    /** Used until the coordinator has published the farm's lock window. */
    private lockDuration: number,
    private readonly log: Logger,
  ) {}

  /** The lock duration jobs are taken with: a third of the coordinator's `[queue].lock_window`. */
  get lockMs(): number {
    return this.lockDuration;
  }

  private async refresh(): Promise<void> {
    // The coordinator may have started after this worker, or changed its lock window since.
    const window = (await this.registry.settings()).lockWindowMs;
    const wanted = window ? lockDurationFor(window) : this.lockDuration;
    if (wanted !== this.lockDuration) {
      this.lockDuration = wanted;
      for (const { worker } of this.workers.values()) await worker.close(true).catch(() => undefined);
      this.workers.clear();
    }
    for (const route of await this.registry.routes()) {
      const name = queueName(route);
      if (this.workers.has(name) || !canTake(this.capabilities, route)) continue;
      const worker = new BullWorker(name, null, {
        connection: connectionOptions(this.url),
        prefix: PREFIX,
        autorun: false,
        lockDuration: this.lockDuration,
        stalledInterval: this.lockDuration,
        maxStalledCount: MAX_STALLED,
      });
      quiet(worker, this.log, 'worker');
      this.workers.set(name, { worker, route });
    }
  }

  /** The next job this worker can take, locked with `attempt`, or undefined when none waits. */
  async next(attempt: string): Promise<TakenJob | undefined> {
    await this.refresh();
    const entries = [...this.workers.entries()];
    for (let i = 0; i < entries.length; i++) {
      const [queue, { worker, route }] = entries[(this.turn + i) % entries.length]!;
      const job = (await worker.getNextJob(attempt, { block: false })) as Job | undefined;
      if (!job) continue;
      this.turn = (this.turn + i + 1) % entries.length;
      const parsed = JobPayload.safeParse(job.data);
      if (!parsed.success || !job.id || !parseJobId(job.id)) {
        await job.moveToFailed(new Error(`malformed job: ${parsed.success ? 'bad id' : parsed.error.issues[0]?.message ?? 'bad data'}`), attempt, false).catch(() => undefined);
        continue;
      }
      return { job, queue, route, attempt, payload: parsed.data };
    }
    return undefined;
  }

  async close(): Promise<void> {
    for (const { worker } of this.workers.values()) await worker.close(true).catch(() => undefined);
    this.workers.clear();
  }
}

export const thisHost = (): string => hostname();
