/**
 * A farm of many machines, end to end on loopback: a real redis-server, the coordinator and two
 * worker processes of different architectures. Routing, one repository holding both architectures,
 * the coordinator alone signing, and a package identical (decompressed) to the single-host farm's.
 */

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { makeFarm, makeUpstream, publishedIn, runOnce, waitFor, writeRecipe } from '../helpers/farm.js';
import { runTool } from '../helpers/cli.js';
import { makeScaleFarm, waitForStatus, writeArchRecipe } from '../helpers/scale.js';

const decompressed = async (path: string): Promise<Buffer> => Buffer.from((await execa('zstd', ['-d', '-c', '-q', path], { encoding: 'buffer' })).stdout);

test('routing by architecture: an aarch64 recipe waits until an aarch64 worker connects; one repository holds both, signed only by the coordinator', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'amd-1', architectures: ['x86_64', 'noarch'] },
    { id: 'arm-1', architectures: ['aarch64', 'noarch'] },
  ]);
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  await writeArchRecipe(s.farm.recipesDir, 'hello-arm', upstream.dir, 'aarch64');
  const coordinator = s.startCoordinator();
  const amd = s.startWorker('amd-1');
  const logs = (): string => `--- coordinator\n${coordinator.log()}\n--- amd-1\n${amd.log()}`;

  const waiting = await waitForStatus(s, (st) => st.history.some((h) => h.recipe === 'hello-peios' && h.state === 'succeeded') && st.queue.some((q) => q.recipe === 'hello-arm'), 90_000, 'the noarch build, and the aarch64 one waiting', logs);
  const arm = waiting.queue.find((q) => q.recipe === 'hello-arm')!;
  t.is(arm.waiting, 'waiting: no worker for aarch64');
  t.deepEqual(arm.architectures, ['aarch64']);
  t.deepEqual(waiting.queue_counts.aarch64, { waiting: 1, running: 0 });
  t.is(waiting.history.find((h) => h.recipe === 'hello-peios')?.worker, 'amd-1', 'history records the worker');
  t.deepEqual(waiting.workers.map((w) => [w.id, w.architectures]), [['amd-1', ['x86_64', 'noarch']]]);

  const armWorker = s.startWorker('arm-1');
  const done = await waitForStatus(s, (st) => st.history.some((h) => h.recipe === 'hello-arm' && h.state === 'succeeded'), 90_000, 'the aarch64 build', () => `${logs()}\n--- arm-1\n${armWorker.log()}`);
  t.is(done.history.find((h) => h.recipe === 'hello-arm')?.worker, 'arm-1');
  t.deepEqual(done.workers.map((w) => w.id), ['amd-1', 'arm-1']);

  const repo = join(s.farm.stateDir, 'repo');
  t.deepEqual(await publishedIn(repo), ['hello-arm 1.0.0-1', 'hello-arm-doc 1.0.0-1', 'hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  const verify = await runTool('peipkg-repo', ['verify', '--repo', repo, '--mode', 'both']);
  t.is(verify.exitCode, 0, verify.stderr);
  const files = (await readdir(repo, { recursive: true })).filter((f) => f.endsWith('.peipkg'));
  t.true(files.some((f) => f.endsWith('_aarch64.peipkg')) && files.some((f) => f.endsWith('_noarch.peipkg')));

  // No worker ever held the farm key: not in its config, not anywhere under its work directory.
  const key = await readFile(s.farm.keyFile, 'utf8');
  for (const id of ['amd-1', 'arm-1']) {
    t.false((await readFile(s.workerConfig(id), 'utf8')).includes(s.farm.keyFile), `${id}'s config names the farm key`);
    const grep = await execa('grep', ['-rlF', key.split('\n')[1]!, join(s.farm.root, 'workers', id)], { reject: false });
    t.is(grep.stdout, '', `${id}'s work directory holds the farm key`);
  }

  // The same inputs on a single-host farm (same key, same farm id): the decompressed tars are identical.
  const single = await makeFarm(t);
  await execa('cp', [s.farm.keyFile, single.keyFile]);
  await writeRecipe(single.recipesDir, { git: upstream.dir });
  const once = await runOnce(single);
  t.is(once.exitCode, 0, once.stderr);
  for (const name of ['hello-peios_1.0.0-1_noarch.peipkg', 'hello-peios-doc_1.0.0-1_noarch.peipkg']) {
    const rel = files.find((f) => f.endsWith(name))!;
    const singleRel = (await readdir(join(single.stateDir, 'repo'), { recursive: true })).find((f) => f.endsWith(name))!;
    const [a, b] = await Promise.all([decompressed(join(repo, rel)), decompressed(join(single.stateDir, 'repo', singleRel))]);
    t.true(a.equals(b), `${name}: the distributed build's tar differs from the single-host farm's`);
  }
  coordinator.child.kill('SIGTERM');
  amd.child.kill('SIGTERM');
  armWorker.child.kill('SIGTERM');
  t.is((await amd.child).exitCode, 0, amd.log());
});

test('[verify] rebuild: a deterministic recipe is built on both workers and published as reproducible; a non-deterministic one is quarantined with the first differing member', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'w1', architectures: ['x86_64', 'noarch'] },
    { id: 'w2', architectures: ['x86_64', 'noarch'] },
  ], { extra: '[verify]\nrebuild = true\n' });
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  // Writes random bytes into its README: never the same twice.
  const noisy = '#!/bin/sh\nset -eu\ninstall -D -m 0755 "$SOURCE_DIR/hello-peios.sh" "$DESTDIR/usr/bin/noisy"\nmkdir -p "$DESTDIR/usr/share/doc/noisy"\nod -An -tx1 -N16 /dev/urandom > "$DESTDIR/usr/share/doc/noisy/README"\n';
  await writeArchRecipe(s.farm.recipesDir, 'noisy', upstream.dir, 'noarch', noisy);
  const coordinator = s.startCoordinator();
  const w1 = s.startWorker('w1');
  const w2 = s.startWorker('w2');
  const logs = (): string => `${coordinator.log()}\n--- w1\n${w1.log()}\n--- w2\n${w2.log()}`;
  const st = await waitForStatus(
    s,
    (x) => x.history.some((h) => h.recipe === 'hello-peios' && h.state === 'succeeded' && h.reproducible === true) && x.history.filter((h) => h.recipe === 'noisy' && h.state === 'failed').length === 2,
    120_000,
    'both rebuild checks',
    logs,
  );
  const hello = st.history.filter((h) => h.recipe === 'hello-peios');
  t.deepEqual(hello.map((h) => h.state), ['succeeded', 'succeeded']);
  t.true(hello.every((h) => h.reproducible === true));
  t.deepEqual(hello.map((h) => h.worker).sort(), ['w1', 'w2'], 'built on two different workers');
  const noisyBuild = st.history.find((h) => h.recipe === 'noisy')!;
  t.is(noisyBuild.stage, 'verify');
  t.false(noisyBuild.reproducible);
  t.is(noisyBuild.difference?.member, 'usr/share/doc/noisy/README');
  t.is(noisyBuild.difference?.digests.length, 2);
  t.not(noisyBuild.difference?.digests[0], noisyBuild.difference?.digests[1]);
  t.regex(noisyBuild.error ?? '', /not reproducible: .*first differing member usr\/share\/doc\/noisy\/README/);
  const published = await publishedIn(join(s.farm.stateDir, 'repo'));
  t.deepEqual(published, ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1'], 'the non-reproducible version is not published');
  t.is((await readdir(join(s.farm.stateDir, 'quarantine'))).length, 1);
});

test('[build] local = true with the redis queue (its URL in url_file): the coordinator builds through the queue itself, and its builds are recorded as local', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [], { local: true });
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  // The URL (with the password, where there is one) from a file instead of the config.
  const urlFile = join(s.farm.root, 'redis-url');
  await writeFile(urlFile, `${s.redis.url}\n`, { mode: 0o600 });
  const config = await readFile(s.farm.configPath, 'utf8');
  await writeFile(s.farm.configPath, config.replace(`url = "${s.redis.url}"`, `url_file = ${JSON.stringify(urlFile)}`));
  const coordinator = s.startCoordinator();
  const st = await waitForStatus(s, (x) => x.history.some((h) => h.state === 'succeeded'), 90_000, 'the coordinator\'s own build', coordinator.log);
  t.is(st.history[0]?.worker, 'local');
  t.true(st.workers.some((w) => w.id === 'local'));
  const verify = await runTool('peipkg-repo', ['verify', '--repo', join(s.farm.stateDir, 'repo'), '--mode', 'both']);
  t.is(verify.exitCode, 0, verify.stderr);
  coordinator.child.kill('SIGTERM');
  t.is((await coordinator.child).exitCode, 0, coordinator.log());
});

test('[verify] rebuild: the second build handed back by the worker that built the first goes to the other worker once it is free, not back to the same one', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const s = await makeScaleFarm(t, [
    { id: 'w1', architectures: ['x86_64', 'noarch'] },
    { id: 'w2', architectures: ['x86_64', 'noarch'] },
  ], { extra: '[verify]\nrebuild = true\n' });
  await writeRecipe(s.farm.recipesDir, { git: upstream.dir });
  // w1 registers, then is frozen: alive to the farm (its heartbeat is recent), but taking nothing,
  // so w2 builds the first half and must hand the second back.
  const w1 = s.startWorker('w1');
  await waitFor(() => w1.log().includes('worker starting'), 30_000, 'w1 to start');
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.kill(w1.child.pid!, 'SIGSTOP');
  t.teardown(() => void w1.child.kill('SIGCONT'));
  const w2 = s.startWorker('w2');
  const coordinator = s.startCoordinator();
  const logs = (): string => `${coordinator.log()}\n--- w1\n${w1.log()}\n--- w2\n${w2.log()}`;
  const handedBack = (): number => w2.log().split('\n').filter((l) => l.includes('handing back the second build')).length;
  await waitFor(() => handedBack() > 0, 60_000, 'w2 to hand back the second build').catch((error: Error) => t.fail(`${error.message}\n${logs()}`));
  process.kill(w1.child.pid!, 'SIGCONT');

  // Before, w2 asked for it again exactly when the hand-back ended, every time, and kept it from w1.
  const st = await waitForStatus(s, (x) => x.history.filter((h) => h.recipe === 'hello-peios' && h.state === 'succeeded').length === 2, 60_000, 'the rebuild check', logs);
  const hello = st.history.filter((h) => h.recipe === 'hello-peios');
  t.deepEqual(hello.map((h) => h.worker).sort(), ['w1', 'w2'], 'the second build went to w1');
  t.true(hello.every((h) => h.reproducible === true));
  t.true(handedBack() <= 2, `w2 handed it back ${handedBack()} times`);
});
