/**
 * The running farm: the roster, the queue and its worker, the poller, uploads, counters and
 * health, and the `/status` document. `daemon.ts` owns the lifecycle (start-up checks, signals,
 * HTTP); this module owns what happens to a trigger from the queue to the history.
 */

import { readdir } from 'node:fs/promises';

import type { Logger } from '../log.js';
import type { BuildUser } from '../build/script.js';
import { describeIsolation, type Isolation } from '../build/sandbox.js';
import type { Config } from './config.js';
import type { BuildRecord, History } from './history.js';
import { normaliseRepoUrl } from './http.js';
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

/** Runs async work one piece at a time (publishes and uploads). */
export function serialiser(): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  };
}

export interface FarmDeps {
  config: Config;
  tools: Tools;
  log: Logger;
  history: History;
  buildUser: BuildUser | undefined;
  /** What isolation build scripts get on this host (found at start-up). */
  isolation: Isolation;
  grantFlags(recipe: string): string[];
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
  /** Set when a build or publish failed, or a recipe could not be watched (`--once` exits 1). */
  sweepFailed = false;

  constructor(private readonly deps: FarmDeps) {
    const { config, log } = deps;
    const dirs = stateDirs(config.manager.stateDir);
    const exclusive = serialiser();
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
      grantFlags: (id) => deps.grantFlags(id),
      sandboxFlags: sandboxFlags(config, deps.isolation),
      sandboxed: deps.isolation.kind === 'sandbox',
      publishLock: exclusive,
      onPublished: () => this.uploader?.request(),
      repository: this.repository,
      abort: this.abort.signal,
    };
    this.queue = new EmbeddedQueue(config.build.concurrency, (trigger) => this.work(trigger));
    this.poller = new Poller({
      log,
      published: this.published,
      backoff: deps.history,
      queue: this.queue,
      lsRemoteTimeoutMs: 2 * MINUTE,
      onPolled: (_recipe, ok) => {
        this.lastProgress = Date.now();
        if (!ok) this.sweepFailed = true;
      },
    });
  }

  setRoster(roster: Roster): void {
    this.roster = new Map(roster.recipes.map((r) => [r.id, r]));
    this.skipped = roster.skipped;
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
    const record = await history.begin({ recipe: trigger.recipe.id, version: trigger.version, tag: trigger.tag, source: trigger.source });
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
    if (record.state === 'succeeded') this.counters.succeeded++;
    else if (record.state === 'failed') this.sweepFailed = true;
    else if (record.state === 'held') this.watchRepository();
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

  /** Polls now every opted-in recipe whose upstream is one of `urls` (a webhook). */
  onRepositoryPush(urls: string[]): string[] {
    const wanted = new Set(urls.map(normaliseRepoUrl));
    const matched = this.recipes().filter((r) => r.upstream && r.githubWebhook && wanted.has(normaliseRepoUrl(r.upstream.git)));
    for (const r of matched) void this.poller.pollNow(r.id, 'webhook');
    return matched.map((r) => r.id);
  }

  /**
   * What is wrong, for `/healthz` (503 with this text), or undefined when all is well: work due
   * and nothing moved for 3 × the shortest poll interval (at least 5 minutes); a damaged
   * repository; an upload whose last attempt failed.
   */
  unhealthy(): string | undefined {
    const damage = this.repository.current();
    if (damage) return `repository damaged: ${damage.error} (builds are held until it verifies again)`;
    const watched = this.recipes().filter((r) => r.upstream);
    if (watched.length > 0) {
      const shortest = Math.min(...watched.map((r) => r.pollIntervalMs));
      if (Date.now() - this.lastProgress > Math.max(3 * shortest, 5 * MINUTE)) return 'stalled: work is due but no poll or build has made progress';
    }
    const upload = this.uploader?.degraded();
    return upload ? `degraded: ${upload}` : undefined;
  }

  async status(): Promise<Record<string, unknown>> {
    const { config, history } = this.deps;
    const running = this.queue.running().sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    const oldest = running[0];
    const failures = [...history.failures.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const quarantine = await readdir(stateDirs(config.manager.stateDir).quarantine).catch(() => [] as string[]);
    return {
      farm_id: config.manager.id,
      recipes: [...this.roster.keys()].sort(),
      builds_attempted: this.counters.attempted,
      builds_succeeded: this.counters.succeeded,
      ...(oldest ? { in_flight: { recipe: oldest.trigger.recipe.id, version: oldest.trigger.version, started_at: oldest.startedAt } } : {}),
      ...(failures.length > 0 ? { failures: Object.fromEntries(failures.map(([k, v]) => [k, { failures: v.failures, next_retry: v.nextRetry }])) } : {}),
      running: running.map((r) => ({
        build: this.buildIds.get(`${r.trigger.recipe.id}@${r.trigger.version}`) ?? null,
        recipe: r.trigger.recipe.id,
        version: r.trigger.version,
        tag: r.trigger.tag,
        source: r.trigger.source,
        started_at: r.startedAt,
      })),
      queue: this.queue.queued().map((t) => ({ recipe: t.recipe.id, version: t.version, tag: t.tag, source: t.source })),
      skipped_recipes: this.skipped.map((s) => ({ recipe: s.id, problems: s.problems })),
      history: history.recent(20),
      upload: this.uploader ? this.uploader.status() : { state: 'disabled', attempts: 0, pending: false },
      quarantine: quarantine.sort(),
      repository: this.repository.current() ? { state: 'damaged', ...this.repository.current() } : { state: 'ok' },
      isolation: { sandbox: this.deps.isolation.kind === 'sandbox', description: describeIsolation(this.deps.isolation, this.deps.buildUser) },
      held: history.heldBuilds().map((b) => ({ build: b.id, recipe: b.recipe, version: b.version })),
    };
  }
}
