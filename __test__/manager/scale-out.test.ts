/**
 * A farm of many machines, end to end on loopback: a real redis-server, the coordinator and two
 * worker processes of different architectures. Routing, one repository holding both architectures,
 * the coordinator alone signing, and a package identical (decompressed) to the single-host farm's.
 */

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { makeFarm, makeUpstream, publishedIn, runOnce, writeRecipe } from '../helpers/farm.js';
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
