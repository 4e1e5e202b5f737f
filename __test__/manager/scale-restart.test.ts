/**
 * A farm of many machines across restarts and reconfiguration: the coordinator killed while a
 * worker builds (the worker keeps its job and delivers once the coordinator is back), a worker
 * revoked by removing its stanza (SIGHUP), and a job altered in Redis (never published).
 */

import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { Redis } from 'ioredis';

import { createLogger } from '../../ts/log.js';
import { JobSource, Registry } from '../../ts/manager/redisQueue.js';
import { makeUpstream, publishedIn, waitFor, writeRecipe } from '../helpers/farm.js';
import { makeScaleFarm, SLOW_BUILD, waitForStatus } from '../helpers/scale.js';

test('the coordinator killed mid-build: queued work survives in Redis, the worker that finished retries its upload with back-off, and it is published once the coordinator is back', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [{ id: 'w1', architectures: ['x86_64', 'noarch'] }], { lockWindow: '30s' });
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir, script: SLOW_BUILD(3) });
  const first = s.startCoordinator();
  const w1 = s.startWorker('w1');
  await waitForStatus(s, (st) => st.running.some((r) => r.worker === 'w1'), 60_000, 'w1 building', first.log);
  first.child.kill('SIGKILL');
  await first.child;
  // The build ends while no coordinator listens: the worker must keep trying (the build takes
  // 3 s and more on a loaded machine, so wait for the retry rather than for a fixed time).
  await waitFor(() => /delivery failed; retrying/.test(w1.log()), 60_000, 'the worker retrying its delivery').catch((error: unknown) => {
    throw new Error(`${String(error)}\n--- w1\n${w1.log()}`);
  });
  const second = s.startCoordinator();
  const done = await waitForStatus(s, (st) => st.history.some((h) => h.state === 'succeeded'), 90_000, 'the delivery after the restart', () => `${second.log()}\n--- w1\n${w1.log()}`);
  t.is(done.history.filter((h) => h.state === 'succeeded').length, 1);
  t.is(done.history.find((h) => h.state === 'succeeded')?.worker, 'w1');
  t.deepEqual(await publishedIn(join(s.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
});

test('a worker removed from the config is revoked on SIGHUP: its token is refused from then on', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'w1', architectures: ['noarch'] },
    { id: 'w2', architectures: ['noarch'] },
  ]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  const coordinator = s.startCoordinator();
  await waitForStatus(s, (st) => st.queue.length === 1, 30_000, 'the job queued', coordinator.log);
  const put = (worker: string): Promise<Response> =>
    fetch(`${s.base}/farm/v1/jobs/x@1/attempts/${worker}.1/files/build.log`, { method: 'PUT', headers: { Authorization: `Bearer ${s.tokens.get(worker)!}`, 'X-Peipkg-Worker': worker, 'X-Peipkg-SHA256': '0'.repeat(64) }, body: 'x' });
  t.not((await put('w2')).status, 401, 'w2 is known before the change');
  const config = await readFile(s.farm.configPath, 'utf8');
  await writeFile(s.farm.configPath, config.replace(/\[\[worker\]\]\nid = "w2"\ntoken_file = .*\n/, ''));
  coordinator.child.kill('SIGHUP');
  await waitForStatus(s, () => true, 5_000, 'the coordinator after SIGHUP');
  let status = 0;
  for (let i = 0; i < 50 && status !== 401; i++) {
    status = (await put('w2')).status;
    if (status !== 401) await new Promise((r) => setTimeout(r, 100));
  }
  t.is(status, 401, 'w2 is revoked');
  t.not((await put('w1')).status, 401, 'w1 still works');
});

test('a job altered in Redis (another upstream and commit) is built, but its result is refused and nothing is published', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [{ id: 'w1', architectures: ['x86_64', 'noarch'] }]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  const coordinator = s.startCoordinator();
  await waitForStatus(s, (st) => st.queue.length === 1, 30_000, 'the job queued', coordinator.log);
  // An attacker with Redis access points the job at another source before any worker takes it.
  const redis = new Redis(s.redis.url, { maxRetriesPerRequest: null });
  t.teardown(() => redis.disconnect());
  const log = createLogger({ level: 'error', format: 'logfmt' });
  const source = new JobSource(s.redis.url, new Registry(redis), { architectures: ['noarch'], keys: [] }, 30_000, log);
  t.teardown(() => source.close());
  const evil = await makeUpstream(t);
  await evil.tag('v1.0.0', { file: 'hello-peios.sh', content: '#!/bin/sh\necho pwned\n' });
  const evilCommit = (await evil.git('rev-parse', 'HEAD')).trim();
  const taken = await source.next(`w1.${randomUUID()}`);
  t.truthy(taken);
  await taken!.job.updateData({ ...taken!.payload, git: evil.dir, commit: evilCommit });
  await taken!.job.moveToWait(taken!.attempt);
  const w1 = s.startWorker('w1');
  const st = await waitForStatus(s, (x) => x.history.some((h) => h.state === 'failed'), 60_000, 'the altered job refused', () => `${coordinator.log()}\n--- w1\n${w1.log()}`);
  const refused = st.history.find((h) => h.state === 'failed')!;
  t.is(refused.stage, 'verify');
  t.regex(refused.error ?? '', /was altered in the queue/);
  await waitFor(() => /msg=delivered .*state=failed/.test(w1.log()), 10_000, 'the worker to log the refusal');
  t.deepEqual(await publishedIn(join(s.farm.stateDir, 'repo')), []);
});

test('a worker drained by SIGTERM past its drain_timeout hands its job back to the queue and exits 0; another worker finishes it', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'w1', architectures: ['noarch'], drainTimeout: '1s' },
    { id: 'w2', architectures: ['noarch'] },
  ]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir, script: SLOW_BUILD(6) });
  const coordinator = s.startCoordinator();
  const w1 = s.startWorker('w1');
  await waitForStatus(s, (st) => st.running.some((r) => r.worker === 'w1'), 60_000, 'w1 building', coordinator.log);
  w1.child.kill('SIGTERM');
  const exit = await w1.child;
  t.is(exit.exitCode, 0, w1.log());
  t.regex(w1.log(), /handing the job back to the queue/);
  const back = await waitForStatus(s, (st) => st.queue.length === 1, 10_000, 'the job back in the queue', coordinator.log);
  t.deepEqual(back.running, []);
  const w2 = s.startWorker('w2');
  const done = await waitForStatus(s, (st) => st.history.some((h) => h.state === 'succeeded'), 60_000, 'w2 finishing it', () => `${coordinator.log()}\n--- w2\n${w2.log()}`);
  t.is(done.history.find((h) => h.state === 'succeeded')?.worker, 'w2');
});

test('a tag moved after it was queued: the worker refuses to build another commit than the coordinator resolved', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [{ id: 'w1', architectures: ['noarch'] }]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  const coordinator = s.startCoordinator();
  await waitForStatus(s, (st) => st.queue.length === 1, 30_000, 'the job queued', coordinator.log);
  await writeFile(join(upstream.dir, 'CHANGES'), 'moved\n');
  await upstream.git('commit', '-qam', 'moved');
  await upstream.git('tag', '-f', 'v1.0.0');
  const w1 = s.startWorker('w1');
  const st = await waitForStatus(s, (x) => x.history.some((h) => h.state === 'failed'), 60_000, 'the refusal', () => `${coordinator.log()}\n--- w1\n${w1.log()}`);
  const failed = st.history.find((h) => h.state === 'failed')!;
  t.is(failed.stage, 'fetch');
  t.regex(failed.error ?? '', /tag v1\.0\.0 of .* now names commit [0-9a-f]{40}, not [0-9a-f]{40} as when it was queued/);
  t.deepEqual(await publishedIn(join(s.farm.stateDir, 'repo')), []);
});

test('an upload larger than artifact_max_size is refused with 413 before its body is read', async (t) => {
  const s = await makeScaleFarm(t, [{ id: 'w1', architectures: ['noarch'] }], { extra: '' });
  const config = await readFile(s.farm.configPath, 'utf8');
  await writeFile(s.farm.configPath, config.replace('[queue]\n', '[queue]\nartifact_max_size = "1MiB"\n'));
  const coordinator = s.startCoordinator();
  await waitForStatus(s, () => true, 30_000, 'the coordinator', coordinator.log);
  const { request } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${s.base}/farm/v1/jobs/hello-peios@1.0.0-1/attempts/w1.1/files/hello-peios_1.0.0-1_noarch.peipkg`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${s.tokens.get('w1')!}`, 'X-Peipkg-Worker': 'w1', 'X-Peipkg-SHA256': '0'.repeat(64), 'Content-Length': String(5 * 1024 ** 3) },
    });
    req.on('response', (res) => resolve(res.statusCode ?? 0));
    req.on('error', reject);
    req.write(Buffer.alloc(1024)); // a few bytes of the 5 GiB announced, and no more
  });
  t.is(status, 413);
  await waitFor(() => /artifact refused.*status=413/.test(coordinator.log()), 10_000, 'the refusal in the log');
});
