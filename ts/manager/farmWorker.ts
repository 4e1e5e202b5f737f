/**
 * A build worker's job loop: take a job from a route queue this worker can serve, keep its lock
 * while building, build with `peipkg-build --deferred-signature` (unsigned: the coordinator signs),
 * deliver the packages and the log, then complete or fail the job as the coordinator answers. Remote
 * workers (`worker.ts`) and the coordinator's own builds (`[build].local`) run this same loop.
 *
 * The lock is renewed every quarter of its duration; when a renewal finds the lock gone (the worker
 * was cut off and the job handed to another), the build is stopped: the job is not ours any more,
 * and the coordinator would refuse the upload anyway. On drain, running jobs finish; after the drain
 * timeout they are stopped and handed back to the queue for another worker.
 */

import { randomUUID } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { BuildUser } from '../build/script.js';
import type { Logger } from '../log.js';
import { removeTree, sha256Files } from '../native.js';
import { BuildLog } from './buildLog.js';
import { fetchSource, runBuild, sourceRef, stage, StageFailure } from './buildStep.js';
import { writeRecipe, type JobPayload } from './payload.js';
import { versionKey } from './queue.js';
import { HEARTBEAT_MS, thisHost, type JobSource, type Registry, type TakenJob, type WorkerInfo } from './redisQueue.js';
import { canTake, type Capabilities } from './route.js';
import { DeliveryError, REPORTED, type AttemptRef, type FileFact, type ResultAnswer, type ResultBody, type ResultSink } from './sink.js';

export interface FarmWorkerDeps {
  id: string;
  capabilities: Capabilities;
  concurrency: number;
  source: JobSource;
  registry: Registry;
  sink: ResultSink;
  log: Logger;
  workDir: string;
  peipkgBuild: string;
  build: {
    timeoutMs: number;
    cloneTimeoutMs: number;
    zstdLevel: number;
    buildUser: BuildUser | undefined;
    sandboxFlags: string[];
    sandboxed: boolean;
  };
  /** Binary-signing keys this worker holds: name → private key path. */
  signKeys: ReadonlyMap<string, string>;
  /** How long idle slots wait before looking for work again. */
  pollMs?: number;
}

interface Running {
  taken: TakenJob;
  since: string;
  abort: AbortController;
  done: Promise<void>;
  /** Set when the job is to be handed back instead of reported (drain timeout). */
  handBack: boolean;
}

/** The second build of a rebuild check waits this long for another worker before taking it anyway. */
const REPLICA_PATIENCE_MS = 10 * 60_000;
/** How long a handed-back replica waits before another worker may take it. */
const HAND_BACK_MS = 5_000;
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

export class FarmWorker {
  private readonly running = new Map<string, Running>();
  private readonly stop = new AbortController();
  private state: WorkerInfo['state'] = 'running';
  private slots: Promise<void>[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: FarmWorkerDeps) {}

  start(): void {
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
    void this.heartbeat();
    this.slots = Array.from({ length: this.deps.concurrency }, () => this.slot());
  }

  /** Jobs running now, for the log and tests. */
  current(): string[] {
    return [...this.running.values()].map((r) => r.taken.job.id ?? '');
  }

  private async heartbeat(): Promise<void> {
    const info: WorkerInfo = {
      id: this.deps.id,
      host: thisHost(),
      architectures: [...this.deps.capabilities.architectures],
      keys: [...this.deps.capabilities.keys],
      concurrency: this.deps.concurrency,
      state: this.state,
      current: [...this.running.values()].map((r) => ({ job: r.taken.job.id ?? '', recipe: r.taken.payload.recipe, version: r.taken.payload.version, since: r.since })),
      lastSeen: new Date().toISOString(),
    };
    await this.deps.registry.heartbeat(info).catch(() => undefined);
  }

  private async slot(): Promise<void> {
    let failures = 0;
    while (!this.stop.signal.aborted) {
      let taken: TakenJob | undefined;
      try {
        taken = await this.deps.source.next(`${this.deps.id}.${randomUUID()}`);
        failures = 0;
      } catch (error) {
        failures++;
        if (failures === 1) this.deps.log.warn('cannot take jobs from the queue; retrying', { err: (error as Error).message });
        await sleep(Math.min(1_000 * 2 ** failures, 30_000), this.stop.signal);
        continue;
      }
      if (!taken) {
        await sleep(this.deps.pollMs ?? 1_000, this.stop.signal);
        continue;
      }
      if (this.stop.signal.aborted) {
        await taken.job.moveToWait(taken.attempt).catch(() => undefined);
        return;
      }
      if (await this.declineReplica(taken)) {
        // Wait out the hand-back and two polls of the other workers before asking again. Asking
        // every poll, as they do, locked into the same phase as one of them and took the job back
        // first every time: the other worker never saw it.
        await sleep(HAND_BACK_MS + 2 * (this.deps.pollMs ?? 1_000), this.stop.signal);
        continue;
      }
      const run: Running = { taken, since: new Date().toISOString(), abort: new AbortController(), done: Promise.resolve(), handBack: false };
      run.done = this.runAttempt(run);
      this.running.set(taken.attempt, run);
      void this.heartbeat();
      await run.done;
      this.running.delete(taken.attempt);
      void this.heartbeat();
    }
  }

  /**
   * The second build of a rebuild check belongs on another worker: one that built the first half
   * hands the second back while another capable worker is alive (for up to REPLICA_PATIENCE_MS).
   */
  private async declineReplica(taken: TakenJob): Promise<boolean> {
    const { payload, job, attempt } = taken;
    if (payload.replicas < 2) return false;
    const key = versionKey(payload.recipe, payload.version);
    const other = await this.deps.registry.tookReplica(key, payload.replica, this.deps.id);
    if (other !== this.deps.id || Date.now() - Date.parse(payload.queuedAt) > REPLICA_PATIENCE_MS) return false;
    const others = (await this.deps.registry.liveWorkers()).filter((w) => w.id !== this.deps.id && canTake(w, taken.route));
    if (others.length === 0) return false;
    this.deps.log.info('handing back the second build of a rebuild check: this worker built the first', { job: job.id, others: others.map((w) => w.id).join(',') });
    await job.moveToDelayed(Date.now() + HAND_BACK_MS, attempt).catch(() => job.moveToWait(attempt).catch(() => undefined));
    return true;
  }

  private grantFlags(payload: JobPayload): string[] {
    const flags: string[] = [];
    for (const env of payload.grants.env) flags.push('--build-env', env);
    for (const name of payload.grants.sign) {
      const path = this.deps.signKeys.get(name);
      if (!path) throw new StageFailure('build', `this worker holds no [[signing_key]] "${name}", which the recipe's grant signs with`);
      flags.push('--binary-sign-key', `${name}=${path}`);
    }
    if (payload.grants.network) flags.push('--network');
    for (const bind of payload.grants.binds) flags.push(bind.writable ? '--bind' : '--ro-bind', bind.path);
    return flags;
  }

  private async runAttempt(run: Running): Promise<void> {
    const { job, attempt, payload } = run.taken;
    const { deps } = this;
    const ref: AttemptRef = { jobId: job.id ?? '', attempt, worker: deps.id };
    const log = deps.log.child({ job: ref.jobId, attempt });
    const dir = join(deps.workDir, 'attempts', attempt);
    let lost = false;
    const renew = setInterval(() => {
      job.extendLock(attempt, deps.source.lockMs).then(
        (ok) => {
          if (ok || lost) return;
          lost = true;
          log.warn('lost the job (another worker has it now); stopping the build', { recipe: payload.recipe, version: payload.version });
          run.abort.abort('lock lost');
        },
        () => undefined, // Redis unreachable: keep building; the lock may outlive the outage
      );
    }, Math.max(Math.floor(deps.source.lockMs / 4), 250));
    const startedAt = new Date().toISOString();
    log.info('starting build', { recipe: payload.recipe, version: payload.version, tag: payload.tag, replica: payload.replica });
    try {
      await removeTree(dir);
      await mkdir(join(dir, 'source'), { recursive: true });
      await mkdir(join(dir, 'out'), { recursive: true });
      await mkdir(join(dir, 'tmp'), { recursive: true });
      const buildLog = await BuildLog.open(join(dir, 'build.log'));
      let body: ResultBody;
      let files: Array<{ path: string; fact: FileFact }> = [];
      try {
        await stage('fetch', () => writeRecipe(payload, join(dir, 'recipe')));
        const fetched = await stage('fetch', () =>
          fetchSource(
            { git: payload.git, tag: payload.tag, submodules: payload.submodules, commit: payload.commit },
            join(dir, 'source'),
            { cloneTimeoutMs: deps.build.cloneTimeoutMs, abort: run.abort.signal, buildUser: deps.build.buildUser, sandboxed: deps.build.sandboxed },
            buildLog,
          ),
        );
        await stage('build', () =>
          runBuild(
            deps.peipkgBuild,
            {
              recipeToml: join(dir, 'recipe', 'peipkg.toml'),
              sourceDir: join(dir, 'source'),
              version: payload.version,
              sourceRef: sourceRef(payload.git, payload.tag),
              farmId: payload.farmId,
              timestamp: fetched.timestamp,
              outDir: join(dir, 'out'),
              signing: 'deferred',
              zstdLevel: deps.build.zstdLevel,
              timeoutMs: deps.build.timeoutMs,
              buildUser: deps.build.buildUser?.name,
              sandboxFlags: deps.build.sandboxFlags,
              grantFlags: this.grantFlags(payload),
            },
            { log: buildLog, abort: run.abort.signal, tmpDir: join(dir, 'tmp'), what: `peipkg-build ${payload.recipe} ${payload.version}` },
          ),
        );
        const names = (await readdir(join(dir, 'out'))).filter((n) => n.endsWith('.peipkg')).sort();
        if (names.length === 0) throw new StageFailure('build', 'peipkg-build succeeded but produced no .peipkg files');
        const digests = await sha256Files(names.map((n) => join(dir, 'out', n)));
        files = names.map((name, i) => {
          const d = digests[i]!;
          if ('error' in d) throw new StageFailure('build', `${name}: ${d.error.message}`);
          return { path: join(dir, 'out', name), fact: { name, sha256: d.sha256, size: d.size } };
        });
        body = { outcome: 'built', files: files.map((f) => f.fact), commit: fetched.commit, timestamp: fetched.timestamp, startedAt };
      } catch (error) {
        body = { outcome: 'failed', stage: error instanceof StageFailure ? error.stage : 'build', error: (error as Error).message, startedAt };
      } finally {
        await buildLog.close();
      }
      if (lost) return;
      if (run.handBack) {
        log.warn('handing the job back to the queue (drain timeout)', { recipe: payload.recipe, version: payload.version });
        await job.moveToWait(attempt).catch(() => undefined);
        return;
      }
      const answer = await this.deliver(ref, dir, files, body, () => lost || run.handBack, log);
      if (!answer) {
        if (run.handBack) await job.moveToWait(attempt).catch(() => undefined);
        return;
      }
      await this.finish(run.taken, answer, log);
    } catch (error) {
      log.error('job loop failed', { err: (error as Error).message });
    } finally {
      clearInterval(renew);
      await removeTree(dir).catch(() => undefined);
    }
  }

  /** Sends the log, the packages and the result, retrying with back-off; undefined when the job was lost meanwhile. */
  private async deliver(ref: AttemptRef, dir: string, files: Array<{ path: string; fact: FileFact }>, body: ResultBody, gone: () => boolean, log: Logger): Promise<ResultAnswer | undefined> {
    const { sink } = this.deps;
    const logFacts = await sha256Files([join(dir, 'build.log')]);
    const logFact = logFacts[0] && !('error' in logFacts[0]) ? { name: 'build.log', ...logFacts[0] } : undefined;
    for (let attempt = 0; ; attempt++) {
      if (gone()) return undefined;
      try {
        if (logFact) await sink.sendFile(ref, 'build.log', join(dir, 'build.log'), logFact);
        for (const f of files) await sink.sendFile(ref, f.fact.name, f.path, f.fact);
        const answer = await sink.sendResult(ref, body);
        log.info('delivered', { state: answer.state, ...(answer.build ? { build: answer.build } : {}), ...(answer.error ? { err: answer.error } : {}) });
        return answer;
      } catch (error) {
        if (error instanceof DeliveryError && error.stale) {
          log.warn('the coordinator says this attempt no longer holds the job; dropping it', { err: error.message });
          return { state: 'stale' };
        }
        const retry = !(error instanceof DeliveryError) || error.retry;
        if (!retry) return { state: 'failed', error: `delivery refused: ${(error as Error).message}` };
        const wait = Math.min(1_000 * 2 ** attempt, 30_000);
        log.warn('delivery failed; retrying', { err: (error as Error).message, retry_in_ms: wait });
        await sleep(wait);
      }
    }
  }

  private async finish(taken: TakenJob, answer: ResultAnswer, log: Logger): Promise<void> {
    const { job, attempt } = taken;
    try {
      if (answer.state === 'stale') return;
      // A failure the coordinator recorded (it names the build) is marked so; one it never heard of
      // (a delivery it refused) is left for it to find in the queue and record.
      if (answer.state === 'failed') await job.moveToFailed(new Error(`${answer.build ? REPORTED : ''}${answer.error ?? 'failed'}`), attempt, false);
      else await job.moveToCompleted({ state: answer.state, build: answer.build ?? null }, attempt, false);
    } catch (error) {
      // The lock ran out meanwhile: the coordinator has the result; the job's next attempt finds it published.
      log.warn('could not close the job in the queue', { err: (error as Error).message });
    }
  }

  /**
   * Stops taking jobs and waits for the running ones up to `timeoutMs`; then stops them and hands
   * them back to the queue. A second call stops them at once.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.state !== 'running') {
      this.handBackAll();
      return;
    }
    this.state = 'draining';
    this.stop.abort();
    void this.heartbeat();
    const timer = setTimeout(() => this.handBackAll(), timeoutMs);
    await Promise.all([...this.running.values()].map((r) => r.done));
    // An idle slot may be waiting on an unreachable Redis: it takes nothing once stopped, so do not wait for it long.
    await Promise.race([Promise.all(this.slots), sleep(2_000)]);
    clearTimeout(timer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.state = 'stopped';
    await this.heartbeat();
  }

  private handBackAll(): void {
    for (const run of this.running.values()) {
      run.handBack = true;
      run.abort.abort('drain timeout');
    }
  }
}
