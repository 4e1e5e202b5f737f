/**
 * A failed build is tried again when its back-off ends, as announced (`next_retry_after=1m0s`),
 * not only at the recipe's next poll an hour later — by a daemon with no HTTP server, which must
 * stay up while idle (it used to exit 13 once nothing was left to do).
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { repoRoot } from '../helpers/fixtures.js';
import { buildRecords, makeFarm, makeUpstream, publishedIn, startDaemon, waitFor, writeRecipe } from '../helpers/farm.js';

test('a build that failed is retried when its 1-minute back-off ends, though the recipe polls hourly', async (t) => {
  t.timeout(150_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const recipe = await writeRecipe(farm.recipesDir, { git: upstream.dir, pollInterval: '1h', script: '#!/bin/sh\necho "broken for now" >&2\nexit 1\n' });
  const daemon = startDaemon(t, farm.configPath);
  await waitFor(async () => (await buildRecords(farm)).some((b) => b.state === 'failed'), 60_000, 'the first, failing build');
  t.regex(daemon.log(), /msg="build failed" .*next_retry_after=1m0s/);
  const failedAt = Date.now();
  await new Promise((r) => setTimeout(r, 5_000));
  t.is(daemon.child.exitCode, null, `the idle daemon is still running:\n${daemon.log()}`);
  // The recipe is fixed meanwhile (build.sh is read at each build).
  await writeFile(join(recipe, 'build.sh'), await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh')));
  await waitFor(async () => (await publishedIn(join(farm.stateDir, 'repo'))).includes('hello-peios 1.0.0-1'), 100_000, 'the retry').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  const after = (Date.now() - failedAt) / 1000;
  t.log(`retried and published ${after.toFixed(1)} s after the failure`);
  t.true(after >= 55 && after < 90, `${after} s`);
  // The package is in the index a moment before the history records the build as done.
  await waitFor(async () => (await buildRecords(farm)).at(-1)?.state === 'succeeded', 10_000, 'the history to record the retry');
  t.deepEqual((await buildRecords(farm)).map((b) => b.state), ['failed', 'succeeded']);
  daemon.child.kill('SIGTERM');
});
