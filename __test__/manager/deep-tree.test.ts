/**
 * Trees deeper than PATH_MAX in the farm (issue 10, item 7): a build.sh that stages one fails as
 * the recipe's fault — an ordinary failed build with the reason, never an internal error — and
 * leaves nothing in state_dir's work areas, on the first attempt and on its retry; and such a tree
 * left in state_dir by a killed manager is removed at the next start. `fs.rm` fails on these trees
 * with ENAMETOOLONG and leaves them behind; `removeTree` works relative to directory descriptors.
 */

import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import type { FailureRecord } from '../../ts/manager/history.js';
import { buildRecords, makeFarm, makeUpstream, runOnce, writeRecipe, type Farm } from '../helpers/farm.js';
import { repoRoot } from '../helpers/fixtures.js';
import { DEEP_NAME, makeDeepTree } from '../helpers/fs.js';

const EXAMPLE_BUILD_SH = await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8');

/** 100 levels of `DEEP_NAME` (3,100 bytes: one relative path still reaches the end). */
const CHUNK = Array<string>(100).fill(DEEP_NAME).join('/');

/** POSIX sh, under `set -eu`: 300 nested directories below `dir` (over twice PATH_MAX), with a file at the bottom. */
const deepTree = (dir: string): string => `(cd -P "${dir}"; for i in 1 2 3; do mkdir -p ${CHUNK}; cd -P ${CHUNK}; done; echo bottom > bottom)`;

/** The example build.sh, then deep trees in $DESTDIR (where it installed), in $SOURCE_DIR and in its working directory. */
const DEEP_BUILD_SH = `${EXAMPLE_BUILD_SH}${deepTree('$DESTDIR/usr/share/doc/hello-peios')}\n${deepTree('$SOURCE_DIR')}\n${deepTree('$PWD')}\n`;

const WORK_AREAS = ['sources', 'stage', 'publish', 'tmp'];

async function workAreas(farm: Farm): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for (const dir of WORK_AREAS) found[dir] = await readdir(join(farm.stateDir, dir));
  return found;
}

const emptyAreas = Object.fromEntries(WORK_AREAS.map((d) => [d, [] as string[]]));

/** Moves every back-off in failures.json into the past: the next sweep retries at once. */
async function expireBackoff(farm: Farm): Promise<void> {
  const path = join(farm.stateDir, 'history', 'failures.json');
  const failures = JSON.parse(await readFile(path, 'utf8')) as Record<string, FailureRecord>;
  for (const record of Object.values(failures)) record.nextRetry = new Date(Date.now() - 1000).toISOString();
  await writeFile(path, JSON.stringify(failures));
}

for (const sandbox of ['auto', 'off'] as const) {
  test.serial(`a build.sh that stages a tree deeper than PATH_MAX fails as the recipe's fault, and leaves state_dir clean, also on the retry ([build] sandbox = "${sandbox}")`, async (t) => {
    t.timeout(180_000);
    const upstream = await makeUpstream(t);
    await upstream.tag('v1.0.0');
    const farm = await makeFarm(t, `[build]\nsandbox = "${sandbox}"\n`);
    await writeRecipe(farm.recipesDir, { git: upstream.dir, script: DEEP_BUILD_SH });

    for (const attempt of [1, 2]) {
      if (attempt === 2) await expireBackoff(farm);
      const run = await runOnce(farm);
      t.is(run.exitCode, 1, run.stderr);
      t.notRegex(run.stderr, /internal error|bug in peipkg|ENAMETOOLONG: name too long/, `attempt ${attempt}`);
      const records = await buildRecords(farm);
      t.is(records.length, attempt, `attempt ${attempt} ran: ${run.stderr}`);
      const record = records[attempt - 1]!;
      t.is(record.state, 'failed');
      t.is(record.stage, 'build');
      t.regex(record.error ?? '', /exit status 1: .*build\.sh staged a tree nested at least \d+ levels deep under \$DESTDIR\/usr\/share\/doc\/hello-peios\/a{24}…\/a{24}…\/…: /);
      const log = await readFile(join(farm.stateDir, 'history', 'logs', `${record.id}.log`), 'utf8');
      t.regex(log, /paths in a package are limited to 4096 bytes\. Stage only what the packages ship/);
      t.notRegex(log, /internal error|^\s+at /m, 'no stack trace in the build log');
      t.deepEqual(await workAreas(farm), emptyAreas, `attempt ${attempt}: nothing left in the work areas`);
    }
    const failures = JSON.parse(await readFile(join(farm.stateDir, 'history', 'failures.json'), 'utf8')) as Record<string, FailureRecord>;
    t.is(failures['hello-peios@1.0.0-1']?.failures, 2, 'an ordinary failure, with its back-off');
  });
}

test.serial('trees deeper than PATH_MAX left in state_dir by a killed manager are removed at start-up', async (t) => {
  t.timeout(120_000);
  const farm = await makeFarm(t);
  // What a manager killed mid-build leaves: peipkg-build's scratch, a clone build.sh wrote into, a half-made batch.
  const left = [
    join(farm.stateDir, 'tmp', 'peipkg-build-Xq3vZ1', 'destdir', 'usr', 'share'),
    join(farm.stateDir, 'tmp', 'peipkg-build-Xq3vZ1', 'work'),
    join(farm.stateDir, 'sources', 'hello-peios-1.0.0-1-1'),
    join(farm.stateDir, 'publish', 'hello-peios-1.0.0-1-1'),
  ];
  for (const dir of left) {
    await mkdir(dir, { recursive: true });
    await makeDeepTree(dir, 300);
  }
  const run = await runOnce(farm);
  t.is(run.exitCode, 0, run.stderr);
  t.regex(run.stderr, /removing work left by an earlier run/);
  t.deepEqual(await workAreas(farm), emptyAreas);
});
