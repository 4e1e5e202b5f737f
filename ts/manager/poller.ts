/**
 * Watching upstreams (`recipes-and-farm.md` §8.3): each auto-built recipe is polled when watching
 * starts, then at its interval with ±10% jitter (so 200 recipes do not hit one host at once).
 * `pollNow` (webhooks) merges into a poll already running for the recipe: it runs once more
 * afterwards instead of twice in parallel. Polls run on the daemon's lifetime, not a request's.
 */

import type { Logger } from '../log.js';
import { planPoll, type Backoff, type PollStats, type TriggerSource } from './planner.js';
import type { PublishedCache } from './published.js';
import type { BuildQueue } from './queue.js';
import type { RosterRecipe } from './roster.js';
import { listTags } from './upstream.js';

export interface PollerDeps {
  log: Logger;
  published: PublishedCache;
  backoff: Backoff;
  queue: BuildQueue;
  lsRemoteTimeoutMs: number;
  /** Called after every finished poll (health tracking); `ok` is false when ls-remote failed. */
  onPolled(recipe: string, ok: boolean, stats?: PollStats): void;
}

/** How many refused tag names a poll's summary line shows. */
const UNSAFE_TAGS_SHOWN = 20;

interface PollState {
  running: Promise<boolean> | undefined;
  again: TriggerSource | undefined;
}

/** When a recipe was last polled (and whether ls-remote worked), and when it is polled next. */
export interface PollTimes {
  last?: { at: string; ok: boolean };
  next?: string;
}

export class Poller {
  private recipes = new Map<string, RosterRecipe>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly state = new Map<string, PollState>();
  private readonly times = new Map<string, PollTimes>();
  private stopped = false;

  constructor(private readonly deps: PollerDeps) {}

  /** Sets the recipes to poll without scheduling anything (`--once` polls them with `pollAll`). */
  setRecipes(recipes: readonly RosterRecipe[]): void {
    this.recipes = new Map(recipes.filter((r) => r.upstream).map((r) => [r.id, r]));
  }

  /** Starts watching `recipes` (replacing any earlier set); every one is polled at once. */
  watch(recipes: readonly RosterRecipe[]): void {
    this.unschedule();
    this.setRecipes(recipes);
    for (const recipe of this.recipes.values()) {
      void this.pollNow(recipe.id, 'poll');
      this.schedule(recipe);
    }
  }

  private schedule(recipe: RosterRecipe): void {
    const jitter = 1 + (Math.random() * 0.2 - 0.1);
    const delay = recipe.pollIntervalMs * jitter;
    this.timesOf(recipe.id).next = new Date(Date.now() + delay).toISOString();
    const timer = setTimeout(() => {
      if (this.stopped || this.recipes.get(recipe.id) !== recipe) return;
      void this.pollNow(recipe.id, 'poll');
      this.schedule(recipe);
    }, delay);
    timer.unref();
    this.timers.set(recipe.id, timer);
  }

  private unschedule(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const times of this.times.values()) delete times.next;
  }

  private timesOf(id: string): PollTimes {
    let times = this.times.get(id);
    if (!times) this.times.set(id, (times = {}));
    return times;
  }

  /** When `id` was last polled and is polled next (for `/status`). */
  pollTimes(id: string): PollTimes {
    return { ...this.times.get(id) };
  }

  /** Whether a poll of `id` is running now. */
  polling(id: string): boolean {
    return this.state.get(id)?.running !== undefined;
  }

  /** Polls `id` now, or once more after the poll already running. Resolves to whether ls-remote worked. */
  pollNow(id: string, source: TriggerSource): Promise<boolean> {
    const state = this.state.get(id) ?? { running: undefined, again: undefined };
    this.state.set(id, state);
    if (state.running) {
      state.again = source;
      return state.running;
    }
    const run = async (): Promise<boolean> => {
      let ok = true;
      let next: TriggerSource | undefined = source;
      while (next && !this.stopped) {
        state.again = undefined;
        ok = await this.pollOnce(id, next);
        next = state.again;
      }
      return ok;
    };
    state.running = run().finally(() => {
      state.running = undefined;
    });
    return state.running;
  }

  /** Polls every watched recipe once (`--once`); resolves to the ids whose ls-remote failed. */
  async pollAll(limit = 8): Promise<string[]> {
    const ids = [...this.recipes.keys()];
    const failed: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, ids.length) }, async () => {
        while (next < ids.length) {
          const id = ids[next++]!;
          if (!(await this.pollNow(id, 'poll'))) failed.push(id);
        }
      }),
    );
    return failed;
  }

  private async pollOnce(id: string, source: TriggerSource): Promise<boolean> {
    const recipe = this.recipes.get(id);
    if (!recipe?.upstream) return true;
    const ok = await this.pollUpstream(id, recipe, source);
    this.timesOf(id).last = { at: new Date().toISOString(), ok };
    return ok;
  }

  private async pollUpstream(id: string, recipe: RosterRecipe, source: TriggerSource): Promise<boolean> {
    if (!recipe.upstream) return true;
    const { log } = this.deps;
    log.info('polling upstream', { recipe: id, git: recipe.upstream.git });
    try {
      const listed = await listTags(recipe.upstream.git, this.deps.lsRemoteTimeoutMs);
      // One line per poll, however many there are: an upstream with thousands of odd tags must not flood the log.
      if (listed.refused.length > 0) {
        log.warn('tags ignored (unsafe names)', {
          recipe: id,
          count: listed.refused.length,
          tags: JSON.stringify(listed.refused.slice(0, UNSAFE_TAGS_SHOWN)),
          ...(listed.refused.length > UNSAFE_TAGS_SHOWN ? { not_shown: listed.refused.length - UNSAFE_TAGS_SHOWN } : {}),
        });
      }
      let published;
      try {
        published = await this.deps.published.current();
      } catch (error) {
        // Not the upstream's fault: say what is wrong instead of blaming ls-remote.
        log.error('poll skipped: the repository index cannot be read', { recipe: id, err: (error as Error).message });
        this.deps.onPolled(id, false);
        return false;
      }
      const { triggers, stats } = planPoll(recipe, listed.tags, source, published, this.deps.backoff, Date.now(), log);
      for (const trigger of triggers) {
        try {
          await this.deps.queue.submit(trigger);
        } catch (error) {
          // The queue is derived state: the next poll finds the version unpublished and queues it again.
          log.error('could not queue the build; the next poll tries again', { recipe: id, version: trigger.version, err: (error as Error).message });
          this.deps.onPolled(id, false);
          return false;
        }
      }
      log.info('poll complete', { recipe: id, ...stats });
      this.deps.onPolled(id, true, stats);
      return true;
    } catch (error) {
      log.warn('ls-remote failed', { recipe: id, err: (error as Error).message.trim().split('\n').pop() ?? '' });
      this.deps.onPolled(id, false);
      return false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unschedule();
    await Promise.all([...this.state.values()].map((s) => s.running ?? Promise.resolve(true)));
  }
}
