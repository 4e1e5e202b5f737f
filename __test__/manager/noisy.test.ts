/**
 * Noisy builds and upstreams (issue: farm hardening): a build that prints half a gigabyte succeeds
 * under the manager as it does alone, its log is capped (head and tail kept, the drop said), and the
 * manager's memory stays flat; an upstream with thousands of unsafe tag names costs one log line
 * per poll, not one per tag.
 */

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { LOG_HEAD_BYTES, LOG_TAIL_BYTES } from '../../ts/manager/buildLog.js';
import { buildRecords, exitWithin, makeFarm, makeUpstream, publishedIn, runOnce, startDaemon, writeRecipe } from '../helpers/farm.js';
import { repoRoot } from '../helpers/fixtures.js';
import { peakRss } from '../helpers/memory.js';

const EXAMPLE_BUILD_SH = await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8');

test.serial('a build.sh that writes 500 MB to stderr succeeds under the manager; the log keeps head and tail and says what it dropped; memory stays flat', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const noise = `yes 'a line of very verbose compiler output, repeated to fill half a gigabyte of build log' | head -c 500000000 >&2\necho 'EARLY-MARKER' >&2`;
  await writeRecipe(farm.recipesDir, {
    git: upstream.dir,
    script: EXAMPLE_BUILD_SH.replace('set -eu\n', () => `set -eu\necho 'FIRST-MARKER' >&2\n${noise}\n`).replace(/\s*$/, "\necho 'LAST-MARKER: the build is done' >&2\n"),
  });

  const daemon = startDaemon(t, farm.configPath, ['--once']);
  const pid = daemon.child.pid!;
  let peak = 0;
  const sampler = setInterval(() => void peakRss(pid).then((rss) => (peak = Math.max(peak, rss ?? 0))), 100);
  const { exitCode } = await exitWithin(daemon, 150_000).finally(() => clearInterval(sampler));
  t.is(exitCode, 0, daemon.log().slice(-4000));
  t.deepEqual((await buildRecords(farm)).map((b) => b.state), ['succeeded']);
  t.deepEqual(await publishedIn(join(farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);

  const logPath = join(farm.stateDir, 'history', 'logs', 'hello-peios-1.0.0-1-1.log');
  const size = (await stat(logPath)).size;
  t.true(size <= LOG_HEAD_BYTES + LOG_TAIL_BYTES + 1024, `log is ${size} bytes`);
  const log = await readFile(logPath, 'utf8');
  t.true(log.includes('FIRST-MARKER'), 'the head is kept');
  t.true(log.includes('LAST-MARKER: the build is done'), 'the tail is kept');
  t.true(log.includes('EARLY-MARKER'), 'the tail reaches back over the end of the noise');
  const notice = /\[peipkg-manager: (\d+) bytes of output dropped here; this log keeps the first (\d+) and the last (\d+) bytes\]/.exec(log);
  t.truthy(notice, 'the drop is said');
  t.true(Number(notice?.[1]) > 400_000_000, `dropped ${notice?.[1]}`);
  t.log(`manager peak RSS ${Math.round(peak / 1048576)} MiB; log ${Math.round(size / 1048576)} MiB`);
  t.true(peak > 0 && peak < 250 * 1048576, `peak RSS ${Math.round(peak / 1048576)} MiB`);
});

test.serial('3,000 unsafe tag names cost one summary line per poll', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const head = (await upstream.git('rev-parse', 'HEAD')).trim();
  const refs = Array.from({ length: 3000 }, (_, i) => `create refs/tags/v1.0.${i};rm ${head}\n`).join('');
  await execa('git', ['update-ref', '--stdin'], { cwd: upstream.dir, input: refs });
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const result = await runOnce(farm);
  t.is(result.exitCode, 0, result.stderr.slice(-3000));
  const lines = result.stderr.split('\n').filter((l) => l.includes('tags ignored'));
  t.is(lines.length, 1, lines.join('\n').slice(0, 2000));
  t.regex(lines[0] ?? '', /level=warn msg="tags ignored \(unsafe names\)" recipe=hello-peios count=3000 tags=.* not_shown=2980/);
  t.true(result.stderr.length < 20_000, `the whole log is ${result.stderr.length} bytes`);
  t.deepEqual(await publishedIn(join(farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
});
