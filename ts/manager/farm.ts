/**
 * The running farm: the roster, the queue and its worker, the poller, uploads, counters and
 * health, and the `/status` document. `daemon.ts` owns the lifecycle (start-up checks, signals,
 * HTTP); this module owns what happens to a trigger from the queue to the history.
 */

import { readdir, readFile } from 'node:fs/promises';

import type { Redis } from 'ioredis';

import type { Logger } from '../log.js';
import type { BuildUser } from '../build/script.js';
import { describeIsolation, type Isolation } from '../build/sandbox.js';
import type { Config } from './config.js';
import { Coordinator } from './coordinator.js';
import { serialiser } from './serialiser.js';
import { FarmWorker } from './farmWorker.js';
import type { Grants } from './grants.js';
import { asDelivery, Receiver } from './receiver.js';
import { JobSource, lockDurationFor, RedisQueue, Registry, LIVE_MS, type WorkerInfo } from './redisQueue.js';
import { FarmMetrics } from './metrics.js';
import { hostArchitecture } from './route.js';
import type { ResultSink } from './sink.js';
import { signingKeyInfo, type SigningKey } from '../native.js';
import { InputError } from '../errors.js';
import { buildLogPath, shownRecord, type BuildRecord, type History } from './history.js';
import type { RetryAnswer, RetryRequest } from './control.js';
import { normaliseRepoUrl, type PushOutcome } from './http.js';
import { publishHeld, runJob, stateDirs, type JobContext, type Tools } from './job.js';
import { decide, meetsMinVersion, type Decision, type Trigger } from './planner.js';
import { Poller } from './poller.js';
import { PublishedCache } from './published.js';
import { EmbeddedQueue, type BuildQueue } from './queue.js';
import type { Roster, RosterRecipe, SkippedRecipe } from './roster.js';
import { RepositoryHealth } from './repository.js';
import { Uploader } from './upload.js';

const MINUTE = 60_000;
/** How often a damaged repository is checked again. */
const REPOSITORY_RECHECK_MS = MINUTE;

const SKIPPED: Record<Exclude<Decision, 'build'>, string> = {
  published: 'trigger skipped (already published)',
  backoff: 'trigger skipped (in failure backoff window)',
  held: 'trigger skipped (built; held until the repository is repaired)',
};

export interface FarmDeps {
  config: Config;
  tools: Tools;
  log: Logger;
  history: History;
  buildUser: BuildUser | undefined;
  /** What isolation build scripts get on this host (found at start-up). */
  isolation: Isolation;
  grants: Grants;
  /** The farm's package key, loaded (the coordinator signs what workers build). */
  farmKey: SigningKey;
  /** Set with `[queue] backend = "redis"`: the URL (password included), a client for the farm's keys, the key jobs are sealed with. */
  redis?: { url: string; client: Redis; queueKey: Buffer };
}

/**
 * Redis commands wait through an outage (BullMQ needs that); `/status` must not, so what it asks
 * the queue is given up after a moment and reported as out of reach.
 */
function within<T>(work: Promise<T>, ms = 2_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the queue did not answer within ${ms / 1000}s (is Redis reachable?)`)), ms);
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** `[queue].url`, or the first line of `[queue].url_file` (so the password stays out of the config). */
export async function redisUrl(config: Config): Promise<string> {
  if (config.queue.url !== '') return config.queue.url;
  const text = await readFile(config.queue.urlFile, 'utf8').catch((e: Error) => {
    throw new InputError(`[queue].url_file ${config.queue.urlFile}: cannot read it: ${e.message}`);
  });
  const url = text.split('\n')[0]?.trim() ?? '';
  if (url === '') throw new InputError(`[queue].url_file ${config.queue.urlFile} is empty; put the Redis URL in it (redis://:password@host:6379/0)`);
  return url;
}

/** Each `[[worker]]`'s token, read at start-up (and on SIGHUP): a missing or empty one stops the start. */
export async function readWorkerTokens(config: Config): Promise<Map<string, Buffer>> {
  const tokens = new Map<string, Buffer>();
  for (const worker of config.workers) {
    const text = await readFile(worker.tokenFile, 'utf8').catch((e: Error) => {
      throw new InputError(`[[worker]] ${worker.id}: token_file ${worker.tokenFile}: cannot read it: ${e.message}`);
    });
    const token = text.trim();
    if (token.length < 16) throw new InputError(`[[worker]] ${worker.id}: token_file ${worker.tokenFile} holds ${token.length === 0 ? 'nothing' : 'a token shorter than 16 characters'}; put a long random token in it (openssl rand -hex 32)`);
    tokens.set(worker.id, Buffer.from(token));
  }
  return tokens;
}

/** The coordinator's own builds hand their files to its receiver directly. */
class DirectSink implements ResultSink {
  constructor(private readonly receiver: Receiver) {}

  async sendFile(...args: Parameters<ResultSink['sendFile']>): Promise<void> {
    await this.receiver.receiveLocalFile(args[0], args[1], args[2], args[3]).catch((e: unknown) => {
      throw asDelivery(e);
    });
  }

  async sendResult(...args: Parameters<ResultSink['sendResult']>): ReturnType<ResultSink['sendResult']> {
    return this.receiver.result(args[0], args[1]).catch((e: unknown) => {
      throw asDelivery(e);
    });
  }
}

/**
 * peipkg-build's sandbox flags for every build: where the start-up probe found the sandbox, it is
 * required (a build never quietly loses it); where it did not, builds go without it (said once, at
 * start-up). Files that matter to the farm are hidden from scripts where the sandbox shows them.
 */
function sandboxFlags(config: Config, isolation: Isolation): string[] {
  if (isolation.kind !== 'sandbox') return ['--sandbox', 'off'];
  const secrets = [config.path, config.signing.keyFile, config.http.webhookSecretFile, config.manager.stateDir, config.manager.recipesDir];
  for (const key of config.signingKeys) secrets.push(key.private);
  return ['--sandbox', 'require', ...secrets.filter((p) => p !== '').flatMap((p) => ['--hide', p])];
}

export class Farm {
  readonly published: PublishedCache;
  readonly queue: BuildQueue;
  readonly poller: Poller;
  readonly uploader: Uploader | undefined;
  readonly abort = new AbortController();
  private roster = new Map<string, RosterRecipe>();
  private skipped: SkippedRecipe[] = [];
  private counters = { attempted: 0, succeeded: 0 };
  private readonly buildIds = new Map<string, string>();
  private lastProgress = Date.now();
  private readonly jobs: JobContext;
  private recheck: NodeJS.Timeout | undefined;
  private publishingHeld: Promise<void> | undefined;
  readonly repository: RepositoryHealth;
  /** Set with the Redis backend. */
  private readonly redisQueue: RedisQueue | undefined;
  private readonly registry: Registry | undefined;
  readonly receiver: Receiver | undefined;
  private coordinator: Coordinator | undefined;
  private localWorker: FarmWorker | undefined;
  private localSource: JobSource | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private workerTokens = new Map<string, Buffer>();
  readonly metrics: FarmMetrics;
  /** Set when a build or publish failed, or a recipe could not be watched (`--once` exits 1). */
  sweepFailed = false;
  /** What this run built, failed and left waiting (`--once` ends with it). */
  readonly sweep = { built: 0, failed: 0, waiting: 0 };
  /** `http://host:port` of this manager's HTTP server, once it listens (log lines link build logs there). */
  httpBase: string | undefined;
  /** Set on SIGTERM: `/healthz` says so while running builds finish (the HTTP server stays up meanwhile). */
  draining = false;

  constructor(private readonly deps: FarmDeps) {
    const { config, log } = deps;
    const dirs = stateDirs(config.manager.stateDir);
    const exclusive = serialiser();
    this.metrics = new FarmMetrics({
      queue: async () => {
        const counts = Object.values(await within(this.queueCounts()));
        return { waiting: counts.reduce((a, c) => a + c.waiting, 0), running: counts.reduce((a, c) => a + c.running, 0) };
      },
      lastUpload: () => this.uploader?.status().last_success,
    });
    this.published = new PublishedCache(dirs.repo);
    this.repository = new RepositoryHealth(dirs.repo, log);
    this.uploader =
      config.upload.backend === 'rclone'
        ? new Uploader(
            {
              repoDir: dirs.repo,
              workDir: dirs.upload,
              remote: config.upload.remote,
              retries: config.upload.retries,
              retryBackoffMs: config.upload.retryBackoffMs,
              timeoutMs: config.upload.timeoutMs,
              abort: this.abort.signal,
            },
            log,
            exclusive,
          )
        : undefined;
    this.jobs = {
      config,
      tools: deps.tools,
      log,
      history: deps.history,
      published: this.published,
      buildUser: deps.buildUser,
      grantFlags: (id) => deps.grants.flagsFor(id),
      sandboxFlags: sandboxFlags(config, deps.isolation),
      sandboxed: deps.isolation.kind === 'sandbox',
      publishLock: exclusive,
      onPublished: () => this.uploader?.request(),
      observePublish: (seconds) => this.metrics.published(seconds),
      repository: this.repository,
      abort: this.abort.signal,
      logUrl: (id) => (this.httpBase ? `${this.httpBase}${buildLogPath(id)}` : undefined),
    };
    if (deps.redis) {
      const registry = new Registry(deps.redis.client);
      this.registry = registry;
      const coordinator = new Coordinator({
        config,
        log,
        history: deps.history,
        jobs: this.jobs,
        farmKey: deps.farmKey,
        queueKey: deps.redis.queueKey,
        grants: deps.grants,
        registry,
        queue: () => this.redisQueue!,
        recipe: (id) => this.roster.get(id),
        onFinished: (record) => {
          this.counters.attempted++;
          this.lastProgress = Date.now();
          this.finished(record);
        },
      });
      this.coordinator = coordinator;
      this.redisQueue = new RedisQueue({ url: deps.redis.url, registry, log, lockWindowMs: config.queue.lockWindowMs, payloads: (t) => coordinator.payloads(t) });
      this.queue = this.redisQueue;
      this.receiver = new Receiver({
        incomingDir: dirs.incoming,
        queue: this.redisQueue,
        registry,
        log,
        maxSize: config.queue.artifactMaxSize,
        tokens: () => this.workerTokens,
        accept: (delivery) => coordinator.accept(delivery),
      });
    } else {
      this.queue = new EmbeddedQueue(config.build.concurrency, (trigger) => this.work(trigger));
    }
    this.poller = new Poller({
      log,
      published: this.published,
      backoff: deps.history,
      queue: this.queue,
      lsRemoteTimeoutMs: 2 * MINUTE,
      onPolled: (_recipe, ok, stats) => {
        this.lastProgress = Date.now();
        this.sweep.waiting += stats?.waiting ?? 0;
        if (!ok) {
          this.sweepFailed = true;
          this.metrics.pollFailed();
        }
      },
    });
  }

  setRoster(roster: Roster): void {
    this.roster = new Map(roster.recipes.map((r) => [r.id, r]));
    this.skipped = roster.skipped;
  }

  /** Redis backend: opens the route queues, publishes the farm's settings, starts the reaper and this host's own builds. */
  async startQueue(workerTokens: Map<string, Buffer>): Promise<void> {
    const { config, log } = this.deps;
    this.workerTokens = workerTokens;
    if (!this.redisQueue || !this.registry || !this.receiver || !this.deps.redis) return;
    await this.receiver.reset();
    await this.registry.writeSettings({ lockWindowMs: config.queue.lockWindowMs, farmFingerprint: signingKeyInfo(this.deps.farmKey).fingerprint, farmId: config.manager.id });
    await this.redisQueue.start();
    this.reaper = setInterval(() => void this.coordinator?.reap().catch((e: Error) => log.warn('could not collect failed jobs from the queue', { err: e.message })), 5_000);
    this.reaper.unref();
    if (!config.build.local) return;
    const arch = hostArchitecture();
    const capabilities = { architectures: arch ? [arch, 'noarch'] : ['noarch'], keys: config.signingKeys.map((k) => k.name) };
    const lockMs = lockDurationFor(config.queue.lockWindowMs);
    this.localSource = new JobSource(this.deps.redis.url, this.registry, capabilities, lockMs, log);
    this.localWorker = new FarmWorker({
      id: 'local',
      capabilities,
      concurrency: config.build.concurrency,
      source: this.localSource,
      registry: this.registry,
      sink: new DirectSink(this.receiver),
      log: log.child({ worker: 'local' }),
      workDir: stateDirs(config.manager.stateDir).local,
      peipkgBuild: this.deps.tools.peipkgBuild,
      build: {
        timeoutMs: config.build.timeoutMs,
        cloneTimeoutMs: config.build.cloneTimeoutMs,
        zstdLevel: config.build.zstdLevel,
        buildUser: this.deps.buildUser,
        sandboxFlags: this.jobs.sandboxFlags,
        sandboxed: this.jobs.sandboxed,
      },
      signKeys: new Map(config.signingKeys.map((k) => [k.name, k.private])),
    });
    this.localWorker.start();
  }

  /** SIGHUP: a `[[worker]]` removed from the config is revoked at once. */
  setWorkerTokens(tokens: Map<string, Buffer>): void {
    this.workerTokens = tokens;
  }

  /** Stops this host's own builds (finishing them, or handing them back after `timeoutMs`) and closes the queue. */
  async stopQueue(timeoutMs: number): Promise<void> {
    if (this.reaper) clearInterval(this.reaper);
    await this.localWorker?.drain(timeoutMs);
    await this.localSource?.close();
    await this.queue.close();
  }

  /** Hands this host's running builds back at once (a second signal). */
  stopLocalNow(): void {
    void this.localWorker?.drain(0);
  }

  recipes(): RosterRecipe[] {
    return [...this.roster.values()];
  }

  skippedRecipes(): SkippedRecipe[] {
    return this.skipped;
  }

  /** The queue's worker: re-check the trigger against the current state, then run the job. */
  private async work(trigger: Trigger): Promise<void> {
    const { log, history } = this.deps;
    const key = `${trigger.recipe.id}@${trigger.version}`;
    const current = this.roster.get(trigger.recipe.id);
    if (!current) {
      log.debug('trigger dropped (recipe removed from roster)', { recipe: trigger.recipe.id, tag: trigger.tag });
      return;
    }
    if (!meetsMinVersion(current, trigger.upstreamVersion)) {
      log.debug('trigger dropped (current recipe min_version forbids)', { recipe: trigger.recipe.id, version: trigger.version, min_version: current.upstream?.minVersion ?? '' });
      return;
    }
    const decision = decide(trigger.recipe, trigger.version, await this.published.current(), history, Date.now());
    if (decision !== 'build') {
      log.debug(SKIPPED[decision], { recipe: trigger.recipe.id, version: trigger.version, source: trigger.source });
      return;
    }
    const record = await history.begin({ recipe: trigger.recipe.id, version: trigger.version, tag: trigger.tag, source: trigger.source, worker: 'local' });
    this.buildIds.set(key, record.id);
    this.counters.attempted++;
    this.lastProgress = Date.now();
    try {
      const done = await runJob(this.jobs, trigger, record);
      this.finished(done);
    } finally {
      this.buildIds.delete(key);
      this.lastProgress = Date.now();
    }
  }

  private finished(record: BuildRecord): void {
    this.metrics.buildFinished(record);
    if (record.state === 'succeeded') {
      this.counters.succeeded++;
      this.sweep.built++;
    } else if (record.state === 'failed') {
      this.sweepFailed = true;
      this.sweep.failed++;
      this.retryAt(record.recipe, record.version);
    } else if (record.state === 'held') this.watchRepository();
  }

  /**
   * A failed version is tried again when its back-off ends, as the "build failed" line announces:
   * its recipe is polled then (not only at its next poll, which may be an hour later).
   */
  private retryAt(recipe: string, version: string): void {
    const at = this.deps.history.nextRetry(recipe, version);
    if (at === undefined || this.abort.signal.aborted) return;
    this.deps.log.debug('retry scheduled', { recipe, version, at: new Date(at).toISOString() });
    const timer = setTimeout(() => {
      if (!this.abort.signal.aborted && this.roster.has(recipe)) void this.poller.pollNow(recipe, 'poll');
    }, Math.max(at - Date.now(), 0) + 1_000);
    timer.unref();
  }

  /**
   * Checks the repository (at start-up, and every minute while it is damaged) and publishes the
   * builds held back from it once it verifies. Resolves when that round is done.
   */
  checkRepository(): Promise<void> {
    this.publishingHeld ??= (async () => {
      try {
        const damage = await this.repository.check();
        if (damage) return this.watchRepository();
        for (const record of this.deps.history.heldBuilds()) {
          if (this.abort.signal.aborted) return;
          this.finished(await publishHeld(this.jobs, record));
        }
      } finally {
        this.publishingHeld = undefined;
      }
    })();
    return this.publishingHeld;
  }

  private watchRepository(): void {
    if (this.recheck || this.abort.signal.aborted) return;
    this.recheck = setTimeout(() => {
      this.recheck = undefined;
      void this.checkRepository();
    }, REPOSITORY_RECHECK_MS);
    this.recheck.unref();
  }

  /** Stops re-checking a damaged repository and waits for a round of held publishes to end. */
  async stopRepositoryWatch(): Promise<void> {
    if (this.recheck) clearTimeout(this.recheck);
    this.recheck = undefined;
    await this.publishingHeld;
  }

  /**
   * An operator's retry (`peipkg-manager retry`, the dashboard): forgets the back-off of `recipe`'s
   * failed versions (only `version`'s, when given) and polls it now, so what is unpublished is
   * queued at once. Resolves to what that queued, or why nothing was.
   */
  async retry(request: RetryRequest): Promise<RetryAnswer | { status: number; code: string; error: string }> {
    const { history, log } = this.deps;
    const recipe = this.roster.get(request.recipe);
    if (!recipe) {
      const known = [...this.roster.keys()].sort();
      return { status: 404, code: 'unknown_recipe', error: `no recipe "${request.recipe}" in the roster${known.length > 0 ? ` (it has ${known.join(', ')})` : ''}` };
    }
    if (!recipe.upstream) return { status: 409, code: 'not_watched', error: `recipe ${recipe.id} has no [upstream] table, so the farm never builds it` };
    if (this.draining) return { status: 503, code: 'draining', error: 'the manager is draining (stopping); retry after it restarts' };
    const cleared: string[] = [];
    for (const key of [...history.failures.keys()]) {
      const [name, version] = [key.slice(0, key.lastIndexOf('@')), key.slice(key.lastIndexOf('@') + 1)];
      if (name !== recipe.id || (request.version !== undefined && version !== request.version)) continue;
      await history.clearFailure(name, version);
      cleared.push(version);
    }
    log.info('retry requested', { recipe: recipe.id, ...(request.version ? { version: request.version } : {}), cleared: cleared.join(',') });
    const polled = await this.poller.pollNow(recipe.id, 'poll');
    const mine = <T extends { recipe: string; version: string }>(jobs: T[]): string[] =>
      jobs.filter((j) => j.recipe === recipe.id && (request.version === undefined || j.version === request.version)).map((j) => j.version);
    const queued = mine(await within(this.queue.queued()).catch(() => []));
    const running = mine(await within(this.queue.running()).catch(() => []));
    const answer: RetryAnswer = { recipe: recipe.id, ...(request.version ? { version: request.version } : {}), cleared, polled, queued, running };
    if (queued.length > 0 || running.length > 0) return answer;
    const published = await this.published.current().catch(() => undefined);
    const reason = !polled
      ? `the poll of ${recipe.upstream.git} failed (see the log); nothing was queued`
      : request.version !== undefined && published && recipe.packages.every((p) => published.has(p.name, request.version!, p.architecture))
        ? `${recipe.id} ${request.version} is already published`
        : request.version !== undefined
          ? `no tag of ${recipe.upstream.git} gives ${recipe.id} version ${request.version} (or its recipe does not build it, e.g. min_version)`
          : `nothing to build: every version ${recipe.id} builds is published`;
    return { ...answer, reason };
  }

  /** Polls now every opted-in recipe whose upstream is one of `urls` (a webhook). */
  onRepositoryPush(urls: string[]): PushOutcome {
    const wanted = new Set(urls.map(normaliseRepoUrl));
    const watching = this.recipes().filter((r) => r.upstream && wanted.has(normaliseRepoUrl(r.upstream.git)));
    const matched = watching.filter((r) => r.githubWebhook);
    for (const r of matched) void this.poller.pollNow(r.id, 'webhook');
    return { triggered: matched.map((r) => r.id), optedOut: watching.filter((r) => !r.githubWebhook).map((r) => r.id) };
  }

  /**
   * What is wrong, for `/healthz` (503 with this text), or undefined when all is well: work due
   * and nothing moved for 3 × the shortest poll interval (at least 5 minutes); a damaged
   * repository; an upload whose last attempt failed.
   */
  unhealthy(): string | undefined {
    if (this.draining) return 'draining: finishing running builds before exit';
    const damage = this.repository.current();
    if (damage) return `repository damaged: ${damage.error} (builds are held until it verifies again)`;
    const watched = this.recipes().filter((r) => r.upstream);
    if (watched.length > 0) {
      const shortest = Math.min(...watched.map((r) => r.pollIntervalMs));
      if (Date.now() - this.lastProgress > Math.max(3 * shortest, 5 * MINUTE)) return 'stalled: work is due but no poll or build has made progress';
    }
    const redis = this.deps.redis?.client.status;
    if (redis !== undefined && redis !== 'ready') return `degraded: the queue's Redis is unreachable (${redis}); builds resume when it is back`;
    const upload = this.uploader?.degraded();
    return upload ? `degraded: ${upload}` : undefined;
  }

  /** Each recipe in the roster with its newest build, its last and next poll, and how it is triggered. */
  private recipeStatus(): Array<Record<string, unknown>> {
    const { history } = this.deps;
    return [...this.roster.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((r) => {
        const last = history.latest(r.id);
        const times = this.poller.pollTimes(r.id);
        const retries = [...history.failures.entries()].filter(([key]) => key.startsWith(`${r.id}@`)).map(([, f]) => f.nextRetry).sort();
        return {
          recipe: r.id,
          watched: r.upstream !== undefined,
          ...(r.upstream ? { git: r.upstream.git, poll_interval_s: r.pollIntervalMs / 1000, github_webhook: r.githubWebhook } : {}),
          last_result: last ? { build: last.id, version: last.version, state: last.state, ...(last.finishedAt ? { finished_at: last.finishedAt } : {}), log_url: buildLogPath(last.id) } : null,
          last_poll: times.last ? { at: times.last.at, ok: times.last.ok } : null,
          polling: this.poller.polling(r.id),
          next_poll: times.next ?? null,
          ...(retries.length > 0 ? { next_retry: retries[0] } : {}),
        };
      });
  }

  /** Workers for `/status`: from their heartbeats (Redis), or this process alone (embedded). */
  private async workers(): Promise<Array<Record<string, unknown>>> {
    const now = Date.now();
    const shown = (w: WorkerInfo): Record<string, unknown> => ({
      id: w.id,
      host: w.host,
      architectures: w.architectures,
      keys: w.keys,
      state: now - Date.parse(w.lastSeen) < LIVE_MS ? w.state : 'gone',
      current_job: w.current[0] ? { job: w.current[0].job, recipe: w.current[0].recipe, version: w.current[0].version, since: w.current[0].since } : null,
      jobs: w.current.length,
      last_seen: w.lastSeen,
    });
    if (this.registry) return (await this.registry.workers().catch(() => [] as WorkerInfo[])).map(shown);
    const running = await this.queue.running();
    const arch = hostArchitecture();
    return [
      shown({
        id: 'local',
        host: '',
        architectures: arch ? [arch, 'noarch'] : ['noarch'],
        keys: this.deps.config.signingKeys.map((k) => k.name),
        concurrency: this.deps.config.build.concurrency,
        state: 'running',
        current: running.map((r) => ({ job: `${r.recipe}@${r.version}`, recipe: r.recipe, version: r.version, since: r.startedAt })),
        lastSeen: new Date().toISOString(),
      }),
    ];
  }

  private async queueCounts(): Promise<Record<string, { waiting: number; running: number }>> {
    if (this.redisQueue) return this.redisQueue.counts();
    const counts: Record<string, { waiting: number; running: number }> = {};
    for (const [jobs, field] of [[await this.queue.queued(), 'waiting'], [await this.queue.running(), 'running']] as const) {
      for (const job of jobs) for (const arch of job.architectures) (counts[arch] ??= { waiting: 0, running: 0 })[field]++;
    }
    return counts;
  }

  async status(): Promise<Record<string, unknown>> {
    const { config, history } = this.deps;
    // The queue may be out of reach (Redis restarting): /status still answers, and says so.
    const unreachable = (e: Error): never[] => {
      queueProblem = e.message;
      return [];
    };
    let queueProblem: string | undefined;
    const running = (await within(this.queue.running()).catch(unreachable)).sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    const queued = await within(this.queue.queued()).catch(unreachable);
    const oldest = running[0];
    const failures = [...history.failures.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const quarantine = await readdir(stateDirs(config.manager.stateDir).quarantine).catch(() => [] as string[]);
    return {
      farm_id: config.manager.id,
      recipes: [...this.roster.keys()].sort(),
      builds_attempted: this.counters.attempted,
      builds_succeeded: this.counters.succeeded,
      ...(oldest ? { in_flight: { recipe: oldest.recipe, version: oldest.version, started_at: oldest.startedAt } } : {}),
      ...(failures.length > 0 ? { failures: Object.fromEntries(failures.map(([k, v]) => [k, { failures: v.failures, next_retry: v.nextRetry }])) } : {}),
      queue_backend: config.queue.backend,
      ...(queueProblem ? { queue_problem: queueProblem } : {}),
      workers: await within(this.workers()).catch(() => []),
      queue_counts: await within(this.queueCounts()).catch(() => ({})),
      running: running.map((r) => ({
        build: this.buildIds.get(`${r.recipe}@${r.version}`) ?? null,
        recipe: r.recipe,
        version: r.version,
        tag: r.tag,
        source: r.source,
        started_at: r.startedAt,
        worker: r.worker,
      })),
      queue: queued.map((t) => ({ recipe: t.recipe, version: t.version, tag: t.tag, source: t.source, architectures: t.architectures, ...(t.waiting ? { waiting: t.waiting } : {}) })),
      skipped_recipes: this.skipped.map((s) => ({ recipe: s.id, problems: s.problems })),
      recipe_status: this.recipeStatus(),
      history: history.recent(20).map(shownRecord),
      upload: this.uploader ? this.uploader.status() : { state: 'disabled', attempts: 0, pending: false },
      quarantine: quarantine.sort(),
      repository: this.repository.current() ? { state: 'damaged', ...this.repository.current() } : { state: 'ok' },
      isolation: { sandbox: this.deps.isolation.kind === 'sandbox', description: describeIsolation(this.deps.isolation, this.deps.buildUser) },
      held: history.heldBuilds().map((b) => ({ build: b.id, recipe: b.recipe, version: b.version })),
    };
  }
}
