/**
 * Faults in a farm of many machines, on loopback with a real redis-server: a worker killed
 * mid-build, a zombie's late upload, a wrong token, a mangled upload, a package the verifier
 * refuses, Redis killed and restarted, a worker drained by SIGTERM.
 */

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import test from 'ava';
import { Redis } from 'ioredis';

import { createLogger } from '../../ts/log.js';
import { JobSource, Registry } from '../../ts/manager/redisQueue.js';
import { makeUpstream, publishedIn, writeRecipe } from '../helpers/farm.js';
import { makeScaleFarm, SLOW_BUILD, waitForStatus, writeArchRecipe, type ScaleFarm } from '../helpers/scale.js';

const quietLog = createLogger({ level: 'error', format: 'logfmt' });

/** Sends one request of the artifact protocol as worker `worker`. */
async function put(s: ScaleFarm, job: string, attempt: string, name: string, body: Buffer, sha256: string, token: string, worker = 'fake-1'): Promise<{ status: number; body: { error?: string; stale?: boolean } }> {
  const response = await fetch(`${s.base}/farm/v1/jobs/${encodeURIComponent(job)}/attempts/${encodeURIComponent(attempt)}/files/${encodeURIComponent(name)}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'X-Peipkg-Worker': worker, 'X-Peipkg-SHA256': sha256, 'Content-Type': 'application/octet-stream' },
    body,
  });
  return { status: response.status, body: (await response.json()) as { error?: string; stale?: boolean } };
}

const sha = async (data: Buffer): Promise<string> => (await import('node:crypto')).createHash('sha256').update(data).digest('hex');

test('a worker SIGKILLed mid-build: its job runs again on the other worker within the lock window, and is published once', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'w1', architectures: ['x86_64', 'noarch'] },
    { id: 'w2', architectures: ['x86_64', 'noarch'] },
  ]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir, script: SLOW_BUILD(8) });
  const coordinator = s.startCoordinator();
  const w1 = s.startWorker('w1');
  await waitForStatus(s, (st) => st.running.some((r) => r.worker === 'w1'), 60_000, 'w1 building', coordinator.log);
  const w2 = s.startWorker('w2');
  await new Promise((r) => setTimeout(r, 1_000));
  w1.child.kill('SIGKILL');
  const killedAt = Date.now();
  const taken = await waitForStatus(s, (st) => st.running.some((r) => r.worker === 'w2'), 30_000, 'w2 taking the job', () => `${coordinator.log()}\n--- w2\n${w2.log()}\n--- w1\n${w1.log()}`);
  const after = Date.now() - killedAt;
  t.log(`w2 took the job ${after} ms after w1 was killed (lock window 6 s)`);
  t.true(after < 6_000 + 3_000, `taken after ${after} ms`);
  t.is(taken.running.length, 1);
  const done = await waitForStatus(s, (st) => st.history.some((h) => h.state === 'succeeded'), 60_000, 'the build on w2', () => `${coordinator.log()}\n--- w2\n${w2.log()}`);
  t.deepEqual(done.history.filter((h) => h.state === 'succeeded').map((h) => h.worker), ['w2']);
  t.deepEqual(await publishedIn(join(s.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
});

test('a wrong token is 401, a mangled upload 422, a package the verifier refuses is failed with the reason in history, a zombie attempt is 409', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'fake-1', architectures: ['noarch'] },
    { id: 'w2', architectures: ['x86_64', 'noarch'] },
  ], { lockWindow: '4s' });
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  await writeArchRecipe(s.farm.recipesDir, 'zombie', upstream.dir, 'noarch');
  const coordinator = s.startCoordinator();
  await waitForStatus(s, (st) => st.queue.length === 2, 30_000, 'two jobs queued', coordinator.log);

  // A worker of our own in this process: it takes both jobs by hand and never renews their locks.
  const redis = new Redis(s.redis.url, { maxRetriesPerRequest: null });
  t.teardown(() => redis.disconnect());
  const source = new JobSource(s.redis.url, new Registry(redis), { architectures: ['noarch'], keys: [] }, 30_000, quietLog);
  t.teardown(() => source.close());
  const first = await source.next(`fake-1.${randomUUID()}`);
  const second = await source.next(`fake-1.${randomUUID()}`);
  t.truthy(first && second);
  const byRecipe = new Map([first!, second!].map((j) => [j.payload.recipe, j]));
  const hello = byRecipe.get('hello-peios')!;
  const zombie = byRecipe.get('zombie')!;
  const token = s.tokens.get('fake-1')!;
  // The job delivered by hand keeps its lock, as a live worker's does; the zombie's runs out.
  const renew = setInterval(() => void hello.job.extendLock(hello.attempt, 10_000), 300);
  t.teardown(() => clearInterval(renew));
  await hello.job.extendLock(hello.attempt, 10_000);
  const body = Buffer.from('not a package at all');
  const name = 'hello-peios_1.0.0-1_noarch.peipkg';

  const wrong = await put(s, hello.job.id!, hello.attempt, name, body, await sha(body), 'not-the-token-0123456789');
  t.is(wrong.status, 401);
  const otherWorker = await put(s, hello.job.id!, hello.attempt, name, body, await sha(body), s.tokens.get('w2')!, 'w2');
  t.is(otherWorker.status, 403, 'w2 cannot deliver for an attempt of fake-1');
  const mangled = await put(s, hello.job.id!, hello.attempt, name, body, 'a'.repeat(64), token);
  t.is(mangled.status, 422);
  t.regex(mangled.body.error ?? '', /SHA-256/);

  // Right hashes, but not packages: the verifier refuses them and the history says why.
  for (const n of [name, 'hello-peios-doc_1.0.0-1_noarch.peipkg']) t.is((await put(s, hello.job.id!, hello.attempt, n, body, await sha(body), token)).status, 201);
  const result = await fetch(`${s.base}/farm/v1/jobs/${encodeURIComponent(hello.job.id!)}/attempts/${encodeURIComponent(hello.attempt)}/result`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'X-Peipkg-Worker': 'fake-1', 'Content-Type': 'application/json' },
    body: JSON.stringify({ outcome: 'built', files: [name, 'hello-peios-doc_1.0.0-1_noarch.peipkg'].map((n) => ({ name: n, sha256: '', size: body.length })).map((f) => ({ ...f, sha256: '0'.repeat(64) })), commit: hello.payload.commit, timestamp: '2026-02-01T00:00:00Z', startedAt: new Date().toISOString() }),
  });
  const answer = (await result.json()) as { state: string; error?: string };
  t.is(answer.state, 'failed');
  const refused = (await s.status()).history.find((h) => h.recipe === 'hello-peios')!;
  t.is(refused.state, 'failed');
  t.is(refused.stage, 'verify');
  t.is(refused.worker, 'fake-1');
  t.regex(refused.error ?? '', /hello-peios/);

  clearInterval(renew);
  // The zombie: its lock runs out, w2 takes the job and publishes it; the zombie's late upload is refused.
  const w2 = s.startWorker('w2');
  await waitForStatus(s, (st) => st.history.some((h) => h.recipe === 'zombie' && h.state === 'succeeded'), 60_000, 'w2 finishing the zombie\'s job', () => `${coordinator.log()}\n--- w2\n${w2.log()}`);
  const late = await put(s, zombie.job.id!, zombie.attempt, 'zombie_1.0.0-1_noarch.peipkg', body, await sha(body), token);
  t.is(late.status, 409);
  t.true(late.body.stale);
  const published = await publishedIn(join(s.farm.stateDir, 'repo'));
  t.true(published.includes('zombie 1.0.0-1') && published.includes('zombie-doc 1.0.0-1'), published.join(', '));
  t.deepEqual((await s.status()).history.filter((h) => h.recipe === 'zombie').map((h) => [h.state, h.worker]), [['succeeded', 'w2']]);
});

test('Redis SIGKILLed mid-build and restarted: coordinator and worker reconnect and carry on; the build is published once', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [{ id: 'w1', architectures: ['x86_64', 'noarch'] }], { lockWindow: '20s' });
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir, script: SLOW_BUILD(5) });
  const coordinator = s.startCoordinator();
  const w1 = s.startWorker('w1');
  const logs = (): string => `${coordinator.log()}\n--- w1\n${w1.log()}`;
  await waitForStatus(s, (st) => st.running.some((r) => r.worker === 'w1'), 60_000, 'w1 building', logs);
  // Give everyfsync a second to write the job's state, as a Redis with appendfsync everysec would have.
  await new Promise((r) => setTimeout(r, 1_500));
  await s.redis.kill();
  // The coordinator learns of the outage when its connection closes: a moment after the kill.
  let health = await fetch(`${s.base}/healthz`);
  for (let i = 0; i < 50 && health.status === 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    health = await fetch(`${s.base}/healthz`);
  }
  t.is(health.status, 503, 'healthz reports the queue unreachable');
  t.regex(await health.text(), /Redis is unreachable/);
  const during = await fetch(`${s.base}/status`, { signal: AbortSignal.timeout(10_000) });
  t.is(during.status, 200, '/status answers while Redis is down');
  t.regex(((await during.json()) as { queue_problem?: string }).queue_problem ?? '', /did not answer/);
  await new Promise((r) => setTimeout(r, 2_000));
  await s.redis.start();
  const done = await waitForStatus(s, (st) => st.history.some((h) => h.state === 'succeeded'), 90_000, 'the build after the restart', logs);
  t.deepEqual(await publishedIn(join(s.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  t.true(done.history.filter((h) => h.state === 'succeeded').length >= 1);
  t.regex(w1.log(), /redis unreachable|queue connection problem|cannot take jobs/);
  await waitForStatus(s, () => true, 5_000, '/status answering');
  t.is((await fetch(`${s.base}/healthz`)).status, 200);
});

test('SIGTERM on a worker drains it: the running build finishes and is delivered, then the worker exits 0', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [{ id: 'w1', architectures: ['x86_64', 'noarch'] }]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir, script: SLOW_BUILD(4) });
  const coordinator = s.startCoordinator();
  const w1 = s.startWorker('w1');
  await waitForStatus(s, (st) => st.running.some((r) => r.worker === 'w1'), 60_000, 'w1 building', coordinator.log);
  w1.child.kill('SIGTERM');
  const exit = await w1.child;
  t.is(exit.exitCode, 0, w1.log());
  t.regex(w1.log(), /draining/);
  const st = await waitForStatus(s, (x) => x.history.some((h) => h.state === 'succeeded'), 10_000, 'the drained build published', coordinator.log);
  t.is(st.workers.find((w) => w.id === 'w1')?.state, 'stopped');
  t.deepEqual(await publishedIn(join(s.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
});
