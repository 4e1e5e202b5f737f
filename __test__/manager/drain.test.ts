/** A draining daemon keeps answering: `/healthz` says it is draining (503) and `/status` still works, until it exits. */

import test from 'ava';

import { exitWithin, freePort, makeFarm, makeUpstream, startDaemon, waitFor, writeRecipe } from '../helpers/farm.js';
import { SLOW_BUILD } from '../helpers/scale.js';

test('during a drain /healthz is 503 "draining" and /status answers; the daemon then exits 0', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"` });
  await writeRecipe(farm.recipesDir, { git: upstream.dir, script: SLOW_BUILD(4) });
  const daemon = startDaemon(t, farm.configPath);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    const status = (await (await fetch(`${base}/status`).catch(() => undefined))?.json().catch(() => undefined)) as { running?: unknown[] } | undefined;
    return (status?.running?.length ?? 0) === 1;
  }, 60_000, 'the build to run');
  daemon.child.kill('SIGTERM');
  await waitFor(() => daemon.log().includes('draining: finishing running builds'), 10_000, 'the drain to start');
  const health = await fetch(`${base}/healthz`);
  t.is(health.status, 503);
  t.regex(await health.text(), /^draining: finishing running builds before exit/);
  const status = await fetch(`${base}/status`);
  t.is(status.status, 200);
  t.is(((await status.json()) as { running: unknown[] }).running.length, 1, 'the running build is still shown');
  const { exitCode } = await exitWithin(daemon, 30_000);
  t.is(exitCode, 0, daemon.log());
  t.regex(daemon.log(), /build \+ publish complete/);
});
