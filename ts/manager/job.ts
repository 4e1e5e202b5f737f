/**
 * One build job (`recipes-and-farm.md` §8.6–8.7, D-24, D-25): fetch the tag, run `peipkg-build`,
 * publish the outputs as this job's own batch with `peipkg-repo`, and record the attempt. Every
 * step has a timeout and runs in its own process group; output goes to the build's log.
 *
 * A batch that fails to publish is moved to `quarantine/<build id>/` and never sent again
 * automatically, so one bad package cannot wedge later publishes. Outputs the archive already
 * holds (a stanza back-filled next to published ones) are dropped before publishing.
 */

import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { formatDuration } from '../duration.js';
import { parsePackageFileName } from '../format/names.js';
import { removeTree } from '../native.js';
import { formatTimestamp } from '../format/timestamp.js';
import type { Logger } from '../log.js';
import type { RepositoryHealth } from './repository.js';
import type { BuildUser } from '../build/script.js';
import type { Config } from './config.js';
import type { History, BuildRecord } from './history.js';
import type { Trigger } from './planner.js';
import type { PublishedCache } from './published.js';
import { BuildLog } from './buildLog.js';
import { removeGarbageIn } from '../build/scratch.js';
import { fetchSource, runBuild, sourceRef, stage, StageFailure, type Fetched } from './buildStep.js';
import { runStep } from './subprocess.js';

export interface Tools {
  peipkgBuild: string;
  peipkgRepo: string;
}

export interface JobContext {
  config: Config;
  tools: Tools;
  log: Logger;
  history: History;
  published: PublishedCache;
  /** Set when running as root: build scripts run as this user. */
  buildUser: BuildUser | undefined;
  /** Extra peipkg-build flags granted to a recipe (`[[grant]]`). */
  grantFlags(recipe: string): string[];
  /** `--sandbox` and `--hide` flags for every build. */
  sandboxFlags: string[];
  /** Builds run in the sandbox, which gives the source to the build user itself (copy-on-write). */
  sandboxed: boolean;
  /** Publishes run one at a time, whatever the build concurrency. */
  publishLock: <T>(work: () => Promise<T>) => Promise<T>;
  /** Called after every successful publish (uploads follow). */
  onPublished(): void;
  /** How long a publish took (metrics). */
  observePublish(seconds: number): void;
  /** Whether the repository can be published into (publishes are held while it is damaged). */
  repository: RepositoryHealth;
  abort: AbortSignal;
  /** Where build `id`'s log is served (absent without an HTTP server). */
  logUrl(id: string): string | undefined;
}

/** What a finished build's log line carries besides its outcome: how long it took, and where its log is. */
function finishedFields(ctx: JobContext, record: BuildRecord, finishedAt: string): Record<string, string> {
  const started = Date.parse(record.startedAt ?? record.queuedAt);
  const url = ctx.logUrl(record.id);
  return {
    ...(Number.isFinite(started) ? { duration: formatDuration(Math.max(0, Date.parse(finishedAt) - started)) } : {}),
    log: ctx.history.logPath(record.id),
    ...(url ? { log_url: url } : {}),
  };
}

export const stateDirs = (stateDir: string) => ({
  sources: join(stateDir, 'sources'),
  stage: join(stateDir, 'stage'),
  publish: join(stateDir, 'publish'),
  quarantine: join(stateDir, 'quarantine'),
  repo: join(stateDir, 'repo'),
  /** peipkg-build's scratch (its TMPDIR): emptied at start-up with the other work areas. */
  tmp: join(stateDir, 'tmp'),
  /** Builds held back from a damaged repository: kept across restarts, published once it verifies. */
  held: join(stateDir, 'held'),
  /** The uploader's snapshot and file lists. */
  upload: join(stateDir, 'upload'),
  /** Files workers are sending (one directory per attempt); emptied at start-up. */
  incoming: join(stateDir, 'incoming'),
  /** The first build of a rebuild check, kept until the second arrives. */
  replicas: join(stateDir, 'replicas'),
  /** The coordinator's own builds when jobs go through Redis (`[build].local`). */
  local: join(stateDir, 'local'),
});

/** UTC now, whole seconds; never earlier than the repository's current generated_at. */
export function publishTimestamp(previous: string): string {
  const now = formatTimestamp(new Date());
  const before = Date.parse(previous);
  return !Number.isNaN(before) && before > Date.parse(now) ? formatTimestamp(new Date(before)) : now;
}

async function fetch(ctx: JobContext, trigger: Trigger, sourceDir: string, log: BuildLog): Promise<Fetched> {
  const upstream = trigger.recipe.upstream!;
  return fetchSource(
    { git: upstream.git, tag: trigger.tag, submodules: upstream.submodules },
    sourceDir,
    { cloneTimeoutMs: ctx.config.build.cloneTimeoutMs, abort: ctx.abort, buildUser: ctx.buildUser, sandboxed: ctx.sandboxed },
    log,
  );
}

/**
 * `runBuild`, then the removal of its scratch, which it left in the shared `tmp` (buildStep.ts):
 * not awaited, so the job goes on to publish meanwhile. It needs no tracking: the pending removal
 * keeps this process alive until it is done, and what a killed manager leaves, the next one's
 * start-up removes (prepareStateDirs). Garbage locks keep concurrent jobs off each other's trees.
 */
async function runBuildThenCollect(...args: Parameters<typeof runBuild>): Promise<void> {
  try {
    await runBuild(...args);
  } finally {
    void removeGarbageIn(args[2].tmpDir);
  }
}

/** Runs one trigger to the end; resolves with the finished record (it never throws for a failed build). */
export async function runJob(ctx: JobContext, trigger: Trigger, record: BuildRecord): Promise<BuildRecord> {
  const { config, tools, history } = ctx;
  const dirs = stateDirs(config.manager.stateDir);
  // Per build, not per version: a build left running by a killed manager must never share a tree with its retry.
  const sourceDir = join(dirs.sources, record.id);
  const stageDir = join(dirs.stage, record.id);
  const batchDir = join(dirs.publish, record.id);
  const log = ctx.log.child({ job: record.id });
  log.info('starting build', { recipe: trigger.recipe.id, tag: trigger.tag, version: trigger.version, source: trigger.source });
  await history.update(record.id, { state: 'running', startedAt: new Date().toISOString() });
  const buildLog = await BuildLog.open(history.logPath(record.id));
  try {
    await removeTree(sourceDir);
    await removeTree(stageDir);
    await mkdir(sourceDir, { recursive: true });
    const fetched = await stage('fetch', () => fetch(ctx, trigger, sourceDir, buildLog));
    await history.update(record.id, { commit: fetched.commit });
    await stage('build', () =>
      runBuildThenCollect(
        tools.peipkgBuild,
        {
          recipeToml: join(config.manager.recipesDir, trigger.recipe.id, 'peipkg.toml'),
          sourceDir,
          version: trigger.version,
          sourceRef: sourceRef(trigger.recipe.upstream!.git, trigger.tag),
          farmId: config.manager.id,
          timestamp: fetched.timestamp,
          outDir: stageDir,
          signing: { keyFile: config.signing.keyFile },
          zstdLevel: config.build.zstdLevel,
          timeoutMs: config.build.timeoutMs,
          buildUser: ctx.buildUser?.name,
          sandboxFlags: ctx.sandboxFlags,
          grantFlags: ctx.grantFlags(trigger.recipe.id),
        },
        { log: buildLog, abort: ctx.abort, tmpDir: dirs.tmp, what: `peipkg-build ${trigger.recipe.id} ${trigger.version}` },
      ),
    );
    const outputs = (await readdir(stageDir).catch(() => [] as string[])).filter((n) => n.endsWith('.peipkg'));
    if (outputs.length === 0) throw new StageFailure('build', `peipkg-build succeeded but produced no .peipkg files in ${stageDir}`);
    await mkdir(batchDir, { recursive: true });
    for (const file of outputs) await rename(join(stageDir, file), join(batchDir, file));
    return await publishOrHold(ctx, record, batchDir, buildLog, log, fetched.timestamp);
  } catch (error) {
    const stageName = error instanceof StageFailure ? error.stage : 'build';
    const message = (error as Error).message;
    if (ctx.abort.aborted) {
      // Stopped by shutdown, not broken: no failure record, so no back-off after the restart.
      const interrupted = { state: 'interrupted' as const, finishedAt: new Date().toISOString(), stage: stageName, error: message };
      await history.update(record.id, interrupted);
      log.warn('build interrupted by shutdown', { recipe: trigger.recipe.id, version: trigger.version, stage: stageName });
      return { ...record, ...interrupted };
    }
    return recordFailure(ctx, record, stageName, message, batchDir, log);
  } finally {
    await buildLog.close();
    // Without the sandbox build.sh writes in sourceDir itself: removeTree takes a tree of any depth.
    await removeTree(sourceDir);
    await removeTree(stageDir);
    await removeTree(batchDir);
  }
}

/** A failed build or publish: back-off, quarantine for a batch that failed to publish, history, the log line. */
export async function recordFailure(ctx: JobContext, record: BuildRecord, stageName: string, message: string, batchDir: string, log: Logger): Promise<BuildRecord> {
  const { history } = ctx;
  const { retryAfterMs } = await history.recordFailure(record.recipe, record.version, Date.now());
  let quarantine: string | undefined;
  if (stageName === 'publish' || stageName === 'verify') quarantine = await quarantineBatch(batchDir, join(stateDirs(ctx.config.manager.stateDir).quarantine, record.id));
  const failed = { state: 'failed' as const, finishedAt: new Date().toISOString(), stage: stageName, error: message, ...(quarantine ? { quarantine } : {}) };
  await history.update(record.id, failed);
  log.error(stageName === 'publish' ? 'publish failed' : stageName === 'verify' ? 'package refused' : 'build failed', {
    recipe: record.recipe,
    version: record.version,
    err: message,
    next_retry_after: formatDuration(retryAfterMs),
    ...(quarantine ? { quarantine } : {}),
    ...finishedFields(ctx, record, failed.finishedAt),
  });
  return { ...record, ...failed };
}

/**
 * Publishes the batch in `batchDir` — unless the repository is damaged, in which case the batch is
 * moved to `held/<build id>/` and the build recorded `held`: the damage is not the build's fault,
 * so it gets no failure, no quarantine and no back-off, and `publishHeld` sends it once the
 * repository is repaired. A publish that fails while the repository verifies is the batch's fault.
 */
export async function publishOrHold(ctx: JobContext, record: BuildRecord, batchDir: string, buildLog: BuildLog, log: Logger, buildTimestamp?: string): Promise<BuildRecord> {
  const { history, repository } = ctx;
  const hold = async (error: string): Promise<BuildRecord> => {
    const target = join(stateDirs(ctx.config.manager.stateDir).held, record.id);
    if (batchDir !== target) {
      await removeTree(target);
      await rename(batchDir, target);
    }
    const held = { state: 'held' as const, finishedAt: new Date().toISOString(), stage: 'publish', error: `repository damaged: ${error}` };
    await history.update(record.id, held);
    await buildLog.note(`peipkg-manager: not published: the repository is damaged (${error}); the build is kept in ${target} and published once the repository verifies again`);
    log.warn('build held until the repository is repaired', { recipe: record.recipe, version: record.version, held: target, err: error });
    return { ...record, ...held };
  };
  if (repository.current()) {
    const damage = await repository.check();
    if (damage) return hold(damage.error);
  }
  let published: string[];
  try {
    published = await publishBatch(ctx, batchDir, buildLog);
  } catch (error) {
    const damage = ctx.abort.aborted ? undefined : await repository.check();
    if (damage) return hold(damage.error);
    throw new StageFailure('publish', (error as Error).message);
  }
  await history.clearFailure(record.recipe, record.version);
  const done = { state: 'succeeded' as const, finishedAt: new Date().toISOString(), outputs: published };
  await history.update(record.id, done);
  log.info('build + publish complete', {
    recipe: record.recipe,
    version: record.version,
    outputs: published.length,
    ...(buildTimestamp ? { build_timestamp: buildTimestamp } : {}),
    ...finishedFields(ctx, record, done.finishedAt),
  });
  ctx.onPublished();
  return { ...record, ...done };
}

/** Publishes a batch held back from a damaged repository (after it verifies again); it may be held again. */
export async function publishHeld(ctx: JobContext, record: BuildRecord): Promise<BuildRecord> {
  const batchDir = join(stateDirs(ctx.config.manager.stateDir).held, record.id);
  const log = ctx.log.child({ job: record.id });
  const buildLog = await BuildLog.open(ctx.history.logPath(record.id));
  let result: BuildRecord;
  try {
    log.info('publishing a held build', { recipe: record.recipe, version: record.version });
    result = await publishOrHold(ctx, record, batchDir, buildLog, log);
  } catch (error) {
    result = await recordFailure(ctx, record, 'publish', (error as Error).message, batchDir, log);
  } finally {
    await buildLog.close();
  }
  if (result.state !== 'held') await removeTree(batchDir);
  return result;
}

/** Drops from the batch what the archive already holds, then publishes the rest; returns what was sent. */
async function publishBatch(ctx: JobContext, batchDir: string, log: BuildLog): Promise<string[]> {
  const { config, tools } = ctx;
  const repo = stateDirs(config.manager.stateDir).repo;
  return ctx.publishLock(async () => {
    const view = await ctx.published.current();
    const sent: string[] = [];
    for (const file of (await readdir(batchDir)).filter((n) => n.endsWith('.peipkg')).sort()) {
      const id = parsePackageFileName(file);
      if (id && view.has(id.name, id.version, id.architecture)) await rm(join(batchDir, file));
      else sent.push(file);
    }
    if (sent.length === 0) return sent;
    const started = performance.now();
    await runStep('peipkg-repo publish', tools.peipkgRepo, [
      'publish', '--in', repo, '--new', batchDir, '--out', repo, '--sign-key', config.signing.keyFile, '--timestamp', publishTimestamp(view.generatedAt),
    ], { timeoutMs: 10 * 60_000, log });
    ctx.observePublish((performance.now() - started) / 1000);
    return sent;
  });
}

/** Keeps a batch that failed to publish for the operator; it is never re-sent automatically. */
async function quarantineBatch(batchDir: string, target: string): Promise<string | undefined> {
  const files = await readdir(batchDir).catch(() => [] as string[]);
  if (files.length === 0) return undefined;
  await mkdir(join(target, '..'), { recursive: true });
  await rename(batchDir, target);
  return target;
}
