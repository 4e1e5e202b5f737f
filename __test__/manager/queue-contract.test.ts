/**
 * The build queue's contract, run against both backends: the embedded in-memory queue (the
 * single-host farm) and BullMQ on a real redis-server (a farm of many machines), each served by
 * a consumer — the embedded queue's own jobs, or a worker taking jobs by hand as `peipkg-manager
 * worker` does. Whatever the backend: a version is queued once however often it is triggered,
 * what waits and what runs is reported, and the queue says when it is idle.
 */

import { randomUUID } from 'node:crypto';

import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';

import { createLogger } from '../../ts/log.js';
import { JobPayload, recipeDigest } from '../../ts/manager/payload.js';
import type { Trigger } from '../../ts/manager/planner.js';
import { EmbeddedQueue, type BuildQueue } from '../../ts/manager/queue.js';
import { JobSource, RedisQueue, Registry } from '../../ts/manager/redisQueue.js';
import { loadRoster, type RosterRecipe } from '../../ts/manager/roster.js';
import { asTagName } from '../../ts/build/tagPattern.js';
import { writeRecipe } from '../helpers/farm.js';
import { tempDir } from '../helpers/fs.js';
import { startRedis } from '../helpers/redis.js';

const log = createLogger({ level: 'error', format: 'logfmt' });

interface Harness {
  queue: BuildQueue;
  /** Versions whose work has started, in order. */
  started: string[];
  /** Lets the work of `version` finish. */
  release(version: string): void;
}

/** A consumer's work: note the start, then wait until the test releases it. */
function gate(): { started: string[]; work(version: string): Promise<void>; release(version: string): void } {
  const started: string[] = [];
  const waiting = new Map<string, () => void>();
  const released = new Set<string>();
  return {
    started,
    work(version) {
      started.push(version);
      if (released.has(version)) return Promise.resolve();
      return new Promise((resolve) => waiting.set(version, resolve));
    },
    release(version) {
      released.add(version);
      waiting.get(version)?.();
    },
  };
}

async function recipe(t: ExecutionContext): Promise<RosterRecipe> {
  const dir = await tempDir(t);
  await writeRecipe(dir, { git: '/nonexistent/upstream.git' });
  return (await loadRoster(dir, 3_600_000)).recipes[0]!;
}

const trigger = (r: RosterRecipe, version: string): Trigger => ({
  recipe: r,
  tag: asTagName(`v${version}`)!,
  sha: 'a'.repeat(40),
  commit: 'a'.repeat(40),
  upstreamVersion: version,
  version: `${version}-1`,
  source: 'poll',
});

function payloadOf(t: Trigger): JobPayload {
  return JobPayload.parse({
    schema: 1, farmId: 'contract', recipe: t.recipe.id, version: t.version, upstreamVersion: t.upstreamVersion, tag: t.tag, commit: t.commit, source: t.source,
    git: '/nonexistent/upstream.git', submodules: false, recipeFiles: [], recipeSha256: recipeDigest([]), route: { architectures: [], keys: [] },
    grants: { env: [], sign: [], network: false, binds: [] }, replica: 1, replicas: 1, queuedAt: new Date().toISOString(),
  });
}

function embedded(): Promise<Harness> {
  const g = gate();
  return Promise.resolve({ queue: new EmbeddedQueue(1, (t) => g.work(t.version)), started: g.started, release: (v) => g.release(v) });
}

async function redis(t: ExecutionContext): Promise<Harness> {
  const server = await startRedis(t);
  const client = new Redis(server.url, { maxRetriesPerRequest: null });
  const registry = new Registry(client);
  const queue = new RedisQueue({ url: server.url, registry, log, lockWindowMs: 4_000, payloads: (tr) => Promise.resolve([payloadOf(tr)]) });
  await queue.start();
  const g = gate();
  // One consumer, one job at a time, as a worker with concurrency 1.
  const source = new JobSource(server.url, registry, { architectures: ['noarch'], keys: [] }, 2_000, log);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const attempt = `contract.${randomUUID()}`;
      const taken = await source.next(attempt);
      if (!taken) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const renew = setInterval(() => void taken.job.extendLock(attempt, 2_000), 500);
      await g.work(taken.payload.version);
      clearInterval(renew);
      await taken.job.moveToCompleted({ ok: true }, attempt, false);
    }
  })();
  t.teardown(async () => {
    stopped = true;
    for (const v of g.started) g.release(v);
    await loop.catch(() => undefined);
    await source.close();
    await queue.close();
    client.disconnect();
  });
  return { queue, started: g.started, release: (v) => g.release(v) };
}

const backends: Array<[string, (t: ExecutionContext) => Promise<Harness>]> = [
  ['embedded', embedded],
  ['redis', redis],
];

const until = async (check: () => boolean | Promise<boolean>, what: string): Promise<void> => {
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

for (const [name, make] of backends) {
  test(`${name}: a version triggered 50 times at once is queued and run once`, async (t) => {
    const h = await make(t);
    const r = await recipe(t);
    const added = await Promise.all(Array.from({ length: 50 }, () => h.queue.submit(trigger(r, '1.0.0'))));
    t.is(added.filter(Boolean).length, 1);
    await until(() => h.started.length === 1, 'the job to start');
    t.false(await h.queue.submit(trigger(r, '1.0.0')), 'a running version is not queued again');
    h.release('1.0.0-1');
    await h.queue.idle();
    t.deepEqual(h.started, ['1.0.0-1']);
  });

  test(`${name}: queued() and running() say what waits and what runs; idle() waits for both`, async (t) => {
    const h = await make(t);
    const r = await recipe(t);
    for (const v of ['1.0.0', '1.1.0', '1.2.0']) t.true(await h.queue.submit(trigger(r, v)));
    await until(() => h.started.length === 1, 'the first job to start');
    const running = await h.queue.running();
    t.deepEqual(running.map((j) => [j.recipe, j.version, j.tag]), [['hello-peios', h.started[0], `v${h.started[0]!.replace(/-1$/, '')}`]]);
    t.false(Number.isNaN(Date.parse(running[0]!.startedAt)));
    t.deepEqual(running[0]!.architectures, ['noarch']);
    const queued = await h.queue.queued();
    t.is(queued.length, 2);
    t.deepEqual([...queued.map((j) => j.version), h.started[0]].sort(), ['1.0.0-1', '1.1.0-1', '1.2.0-1']);
    let idle = false;
    const waiting = h.queue.idle().then(() => (idle = true));
    for (const v of ['1.0.0-1', '1.1.0-1', '1.2.0-1']) {
      await until(() => h.started.includes(v), `${v} to start`);
      t.false(idle, 'idle before every job ran');
      h.release(v);
    }
    await waiting;
    t.deepEqual([...h.started].sort(), ['1.0.0-1', '1.1.0-1', '1.2.0-1']);
    t.deepEqual(await h.queue.queued(), []);
    t.deepEqual(await h.queue.running(), []);
  });

  test(`${name}: a version that ran can be queued again (a retry after its back-off)`, async (t) => {
    const h = await make(t);
    const r = await recipe(t);
    h.release('1.0.0-1');
    t.true(await h.queue.submit(trigger(r, '1.0.0')));
    await h.queue.idle();
    await until(() => h.started.length === 1, 'the first run');
    t.true(await h.queue.submit(trigger(r, '1.0.0')));
    await h.queue.idle();
    await until(() => h.started.length === 2, 'the second run');
    t.deepEqual(h.started, ['1.0.0-1', '1.0.0-1']);
  });
}

test('job ids hold no ":" (BullMQ refuses them), even for a version with an epoch', async (t) => {
  const { jobId, parseJobId } = await import('../../ts/manager/payload.js');
  const id = jobId('tool', '2:1.0-1');
  t.false(id.includes(':'));
  t.deepEqual(parseJobId(id), { recipe: 'tool', version: '2:1.0-1', replica: 1 });
  t.deepEqual(parseJobId(jobId('a@b', '1.0-1', 2)), { recipe: 'a@b', version: '1.0-1', replica: 2 });
});
