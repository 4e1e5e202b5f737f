/**
 * The coordinator's part of a farm of many machines: it turns triggers into jobs (payload.ts), and
 * takes what workers deliver — checking that a worker sent exactly the packages of the job's recipe
 * and version, verifying each fully and signing it in place (one verifying read; the signature goes
 * in a new last zstd frame), and publishing it as the single-host farm does. It is the only holder
 * of the farm's key and the only writer of the repository. With `[verify] rebuild`, the first build
 * of a version waits in `replicas/` for the second, and only identical tars are published.
 */

import { mkdir, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';

import { signDeferredPackage } from '../format/deferredSignature.js';
import { packageFileName } from '../format/names.js';
import type { Logger } from '../log.js';
import { removeTree, type SigningKey } from '../native.js';
import { BuildLog } from './buildLog.js';
import type { Config } from './config.js';
import { serialiser } from './serialiser.js';
import type { Grants } from './grants.js';
import type { BuildRecord, History } from './history.js';
import { publishOrHold, recordFailure, stateDirs, type JobContext } from './job.js';
import { isSealed, jobId, JobPayload, recipeDigest, sealPayload, snapshotRecipe } from './payload.js';
import type { Trigger } from './planner.js';
import { versionKey } from './queue.js';
import type { Delivery } from './receiver.js';
import { compareBuilds } from './reproducible.js';
import type { RedisQueue, Registry } from './redisQueue.js';
import type { RosterRecipe } from './roster.js';
import { routeOf } from './route.js';
import { REPORTED, type ResultAnswer } from './sink.js';

export interface CoordinatorDeps {
  config: Config;
  log: Logger;
  history: History;
  jobs: JobContext;
  farmKey: SigningKey;
  /** Seals jobs (payload.ts): a job changed in Redis is refused when its result arrives. */
  queueKey: Buffer;
  grants: Grants;
  registry: Registry;
  queue: () => RedisQueue;
  recipe(id: string): RosterRecipe | undefined;
  /** Counters and health, as for a local build. */
  onFinished(record: BuildRecord): void;
}

const answerOf = (record: BuildRecord): ResultAnswer => {
  const state = record.state === 'succeeded' || record.state === 'held' || record.state === 'failed' ? record.state : record.state === 'verifying' ? 'pending' : 'failed';
  return { state, build: record.id, ...(record.error ? { error: record.error } : {}) };
};

export class Coordinator {
  /** Rebuild checks decide one at a time: the two halves of a version may arrive together. */
  private readonly checks = serialiser();

  constructor(private readonly deps: CoordinatorDeps) {}

  /** The jobs a trigger becomes: one, or two for a rebuild check. */
  async payloads(trigger: Trigger): Promise<JobPayload[]> {
    const { config } = this.deps;
    const recipe = trigger.recipe;
    const upstream = recipe.upstream;
    if (!upstream) return [];
    const grants = this.deps.grants.payloadGrants(recipe.id);
    const files = await snapshotRecipe(join(config.manager.recipesDir, recipe.id));
    const replicas = config.verify.rebuild ? 2 : 1;
    const base = {
      schema: 1 as const,
      farmId: config.manager.id,
      recipe: recipe.id,
      version: trigger.version,
      upstreamVersion: trigger.upstreamVersion,
      tag: trigger.tag,
      commit: trigger.commit,
      source: trigger.source,
      git: upstream.git,
      submodules: upstream.submodules,
      recipeFiles: files,
      recipeSha256: recipeDigest(files),
      route: routeOf(recipe, grants.sign),
      grants,
      replicas,
      queuedAt: new Date().toISOString(),
    };
    return Array.from({ length: replicas }, (_, i) => sealPayload(JobPayload.parse({ ...base, replica: i + 1 }), this.deps.queueKey));
  }

  /** A worker's delivery: record it, then verify, sign and publish (or keep it for its rebuild check). */
  async accept(d: Delivery): Promise<ResultAnswer> {
    const { history } = this.deps;
    const prior = history.byAttempt(d.ref.attempt);
    if (prior) return answerOf(prior);
    const payload = JobPayload.safeParse(d.job.data);
    const record = await history.begin({
      recipe: d.recipe,
      version: d.version,
      tag: payload.success ? payload.data.tag : '',
      source: payload.success ? payload.data.source : 'poll',
      worker: d.ref.worker,
      attempt: d.ref.attempt,
    });
    await history.update(record.id, { state: 'running', startedAt: d.body.startedAt, ...(d.body.commit ? { commit: d.body.commit } : {}) });
    await rename(join(d.dir, 'build.log'), history.logPath(record.id)).catch(() => undefined);
    const log = this.deps.log.child({ job: record.id, worker: d.ref.worker });
    const buildLog = await BuildLog.open(history.logPath(record.id));
    try {
      const done = await this.settle(d, record, buildLog, log);
      this.deps.onFinished(done);
      return answerOf(done);
    } finally {
      await buildLog.close();
    }
  }

  private async settle(d: Delivery, record: BuildRecord, buildLog: BuildLog, log: Logger): Promise<BuildRecord> {
    const { jobs } = this.deps;
    const batchDir = join(stateDirs(this.deps.config.manager.stateDir).publish, record.id);
    const payload = JobPayload.safeParse(d.job.data);
    const sealed = payload.success && isSealed(payload.data, this.deps.queueKey);
    if (!sealed || payload.data.recipe !== d.recipe || payload.data.version !== d.version || payload.data.replica !== d.replica) {
      // Someone with access to Redis changed the job (its source, commit or recipe): whatever was built from it is not ours.
      return recordFailure(jobs, record, 'verify', `job ${d.ref.jobId} was altered in the queue (its seal does not match what this coordinator queued); nothing was published`, batchDir, log);
    }
    const rebuild = payload.data.replicas === 2;
    if (d.body.outcome === 'failed') {
      const failed = await recordFailure(jobs, record, d.body.stage, `${d.body.error} (on worker ${d.ref.worker})`, batchDir, log);
      if (rebuild) await this.checks(() => this.abandonCheck(d, `its other build failed on ${d.ref.worker}`));
      return failed;
    }
    const recipe = this.deps.recipe(d.recipe);
    if (!recipe) return recordFailure(jobs, record, 'verify', `recipe ${d.recipe} is no longer in the roster; its build was not published`, batchDir, log);
    const expected = recipe.packages.map((p) => packageFileName(p.name, d.version, p.architecture)).sort();
    const got = d.body.files.map((f) => f.name).sort();
    if (JSON.stringify(expected) !== JSON.stringify(got)) {
      return recordFailure(jobs, record, 'verify', `worker ${d.ref.worker} sent ${got.join(', ')}, but ${d.recipe} ${d.version} builds ${expected.join(', ')}; nothing was published`, batchDir, log);
    }
    await mkdir(batchDir, { recursive: true });
    for (const name of got) await rename(join(d.dir, name), join(batchDir, name));
    if (rebuild) return this.checks(() => this.rebuildCheck(d, record, batchDir, got, buildLog, log));
    return this.signAndPublish(record, batchDir, buildLog, log, d.body.timestamp);
  }

  /** Verifies and signs every package of the batch in place, then publishes it. */
  private async signAndPublish(record: BuildRecord, batchDir: string, buildLog: BuildLog, log: Logger, timestamp?: string): Promise<BuildRecord> {
    const { jobs, farmKey } = this.deps;
    try {
      for (const name of (await readdir(batchDir)).sort()) await signDeferredPackage(join(batchDir, name), farmKey);
    } catch (error) {
      await buildLog.note(`peipkg-manager: package refused: ${(error as Error).message}`);
      return recordFailure(jobs, record, 'verify', (error as Error).message, batchDir, log);
    }
    let done: BuildRecord;
    try {
      done = await publishOrHold(jobs, record, batchDir, buildLog, log, timestamp);
    } catch (error) {
      done = await recordFailure(jobs, record, 'publish', (error as Error).message, batchDir, log);
    }
    if (done.state !== 'held') await removeTree(batchDir);
    return done;
  }

  private replicaDir(recipe: string, version: string): string {
    return join(stateDirs(this.deps.config.manager.stateDir).replicas, encodeURIComponent(versionKey(recipe, version)));
  }

  private async rebuildCheck(d: Delivery, record: BuildRecord, batchDir: string, names: string[], buildLog: BuildLog, log: Logger): Promise<BuildRecord> {
    const { history } = this.deps;
    const keep = this.replicaDir(d.recipe, d.version);
    const first = history.verifying(d.recipe, d.version);
    if (!first) {
      await removeTree(join(keep, record.id));
      await mkdir(keep, { recursive: true });
      await rename(batchDir, join(keep, record.id));
      const verifying = { state: 'verifying' as const, finishedAt: new Date().toISOString() };
      await history.update(record.id, verifying);
      await buildLog.note(`peipkg-manager: built on ${d.ref.worker}; kept until the second build of the rebuild check arrives`);
      log.info('first build of a rebuild check kept', { recipe: d.recipe, version: d.version });
      return { ...record, ...verifying };
    }
    const firstDir = join(keep, first.id);
    const difference = await compareBuilds(firstDir, batchDir, names);
    await this.deps.registry.forgetReplicas(versionKey(d.recipe, d.version)).catch(() => undefined);
    if (!difference) {
      await history.update(record.id, { reproducible: true });
      await history.update(first.id, { reproducible: true });
      await buildLog.note(`peipkg-manager: reproducible: the same tars as build ${first.id} on ${first.worker ?? '?'}`);
      log.info('rebuild check passed: both builds are identical', { recipe: d.recipe, version: d.version, workers: `${first.worker ?? '?'},${d.ref.worker}` });
      await removeTree(keep);
      const done = await this.signAndPublish({ ...record, reproducible: true }, batchDir, buildLog, log, d.body.outcome === 'built' ? d.body.timestamp : undefined);
      await history.update(first.id, { state: done.state === 'held' ? 'succeeded' : done.state, finishedAt: new Date().toISOString(), ...(done.outputs ? { outputs: done.outputs } : {}), ...(done.error ? { error: done.error } : {}) });
      return { ...done, reproducible: true };
    }
    const workers: [string, string] = [first.worker ?? '?', d.ref.worker];
    const diff = { ...difference, workers };
    const message =
      `not reproducible: ${difference.file}: first differing member ${difference.member} ` +
      `(${difference.digests[0]} built on ${workers[0]}, ${difference.digests[1]} on ${workers[1]}); both builds are quarantined`;
    const quarantine = join(stateDirs(this.deps.config.manager.stateDir).quarantine, record.id);
    await mkdir(quarantine, { recursive: true });
    await rename(firstDir, join(quarantine, `${first.id}-${workers[0]}`));
    await rename(batchDir, join(quarantine, `${record.id}-${workers[1]}`));
    await removeTree(keep);
    await buildLog.note(`peipkg-manager: ${message}`);
    const { retryAfterMs } = await history.recordFailure(d.recipe, d.version, Date.now());
    const failed = { state: 'failed' as const, finishedAt: new Date().toISOString(), stage: 'verify', error: message, reproducible: false, difference: diff, quarantine };
    await history.update(record.id, failed);
    await history.update(first.id, failed);
    log.error('rebuild check failed: the two builds differ', { recipe: d.recipe, version: d.version, file: diff.file, member: diff.member, digests: diff.digests.join(','), workers: workers.join(','), quarantine, next_retry_after_ms: retryAfterMs });
    return { ...record, ...failed };
  }

  /** One build of a rebuild check failed: the other is not wanted any more. */
  private async abandonCheck(d: Delivery, why: string): Promise<void> {
    const { history } = this.deps;
    const first = history.verifying(d.recipe, d.version);
    if (first) await history.update(first.id, { state: 'failed', finishedAt: new Date().toISOString(), stage: 'verify', error: `not published: ${why}` });
    await removeTree(this.replicaDir(d.recipe, d.version));
    const other = d.replica === 1 ? 2 : 1;
    await this.deps.queue().cancel(jobId(d.recipe, d.version, other)).catch(() => undefined);
    await this.deps.registry.forgetReplicas(versionKey(d.recipe, d.version)).catch(() => undefined);
  }

  /** Jobs that failed in the queue without a report (they stalled too often): into the history, then out of Redis. */
  async reap(): Promise<void> {
    const { history, jobs, log } = this.deps;
    for (const failed of await this.deps.queue().failed()) {
      if (!failed.reason.startsWith(REPORTED) && failed.payload) {
        const p = failed.payload;
        const record = await history.begin({ recipe: p.recipe, version: p.version, tag: p.tag, source: p.source });
        const done = await recordFailure(jobs, record, 'queue', `the job failed in the queue: ${failed.reason}`, join(stateDirs(this.deps.config.manager.stateDir).publish, record.id), log);
        this.deps.onFinished(done);
      }
      await failed.remove().catch(() => undefined);
    }
  }
}
