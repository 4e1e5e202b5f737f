/**
 * The dashboard at `GET /`, in a real browser (Debian's chromium, driven by playwright-core): the
 * page loads from the manager alone, shows the recipes and a failed build with its log; the
 * operator saves the token, clicks "Build now" on a recipe with a new tag, and the build appears
 * under Running with its log lines arriving while it still runs (Server-Sent Events), then lands in
 * the history as succeeded. The screenshot in the README is taken here (PEIPKG_SCREENSHOT=path).
 */

import { existsSync } from 'node:fs';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { chromium, type Browser } from 'playwright-core';

import { tempDir } from '../helpers/fs.js';
import { buildRecords, freePort, makeFarm, makeUpstream, startDaemon, waitFor, writeRecipe } from '../helpers/farm.js';
import { SLOW_BUILD } from '../helpers/scale.js';

const CHROMIUM = '/usr/bin/chromium';

/** A build that prints a numbered line a second for `n` seconds, then installs the example program. */
const CHATTY_BUILD = (n: number): string =>
  SLOW_BUILD(0).replace('sleep 0\n', `i=1\nwhile [ $i -le ${n} ]; do echo "compiling part $i of ${n}"; sleep 1; i=$((i + 1)); done\n`);

test('the dashboard shows the farm, and a build started from it streams its log live', async (t) => {
  if (!existsSync(CHROMIUM)) return t.fail(`${CHROMIUM} is missing: setup.sh installs Debian's chromium`);
  t.timeout(240_000);
  const upstream = await makeUpstream(t);
  const broken = await makeUpstream(t);
  await broken.tag('v0.9.0');
  const farm = await makeFarm(t);
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"` });
  await writeRecipe(farm.recipesDir, { git: upstream.dir, script: CHATTY_BUILD(8) });
  await writeRecipe(farm.recipesDir, { id: 'broken', git: broken.dir, script: '#!/bin/sh\necho "configure: error: libfoo 2.0 not found" >&2\nexit 1\n' });
  const daemon = startDaemon(t, farm.configPath);
  const base = `http://127.0.0.1:${port}`;
  const failLog = (error: Error): never => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  };
  await waitFor(async () => (await buildRecords(farm)).some((b) => b.recipe === 'broken' && b.state === 'failed'), 60_000, 'the broken build to fail').catch(failLog);

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const elsewhere: string[] = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(`${base}/`)) elsewhere.push(request.url());
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // A Content-Security-Policy violation or a script error shows here.
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) pageErrors.push(`${response.status()} ${response.url()}`);
  });
  await page.goto(`${base}/`);

  // The farm, its recipes, and the failed build with its log one click away.
  await page.getByTestId('farm-id').filter({ hasText: 'test-farm' }).waitFor();
  const brokenRow = page.locator('#history tr[data-state="failed"]').first();
  await brokenRow.waitFor();
  t.regex((await brokenRow.textContent()) ?? '', /broken 0\.9\.0-1/);
  await brokenRow.getByRole('button', { name: 'Show log' }).click();
  await page.locator('#history tr.log-row pre').filter({ hasText: 'configure: error: libfoo 2.0 not found' }).waitFor();
  t.truthy(await page.locator('#history button[data-retry]').count(), 'a failed build offers Retry');
  t.regex((await page.locator('#recipes tr[data-recipe="hello-peios"]').textContent()) ?? '', /never built/);

  // Without the token a retry is refused in the page, and nothing is built.
  await page.locator('#recipes button[data-recipe="hello-peios"]').click();
  await page.getByTestId('message').filter({ hasText: 'needs the operator token' }).waitFor();

  // The operator saves the token and starts the build of a new tag from the page.
  await upstream.tag('v1.0.0');
  const token = (await readFile(join(farm.stateDir, 'control.token'), 'utf8')).trim();
  await page.getByTestId('token').fill(token);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#recipes button[data-recipe="hello-peios"]').click();
  await page.getByTestId('message').filter({ hasText: 'hello-peios: building 1.0.0-1' }).waitFor({ timeout: 60_000 });

  // Its log arrives line by line while it runs.
  const panel = page.locator('#running .build').filter({ hasText: 'hello-peios 1.0.0-1' });
  await panel.locator('pre').filter({ hasText: 'compiling part 2 of 8' }).waitFor({ timeout: 60_000 });
  const seenAt = Date.now();
  t.is(await panel.locator('.badge').textContent(), 'running', 'the line arrived while the build was running');
  const build = (await buildRecords(farm)).find((b) => b.recipe === 'hello-peios');
  t.is(build?.state, 'running');
  t.false((await panel.locator('pre').textContent())?.includes('compiling part 8 of 8'), 'the log is not all there yet');
  await page.screenshot({ path: join(await tempDir(t, 'peipkg-dashboard-'), 'running.png'), fullPage: true });

  // The end of the build: the panel says so, and the history shows it with its duration.
  await panel.locator('.badge').filter({ hasText: 'succeeded' }).waitFor({ timeout: 90_000 });
  t.regex((await panel.locator('pre').textContent()) ?? '', /compiling part 8 of 8/);
  const finished = (await buildRecords(farm)).find((b) => b.recipe === 'hello-peios');
  t.true(Date.parse(finished?.finishedAt ?? '') - seenAt > 2_000, 'the first lines were shown seconds before the build finished');
  const row = page.locator('#history tr[data-state="succeeded"]').first();
  await row.waitFor();
  t.regex((await row.textContent()) ?? '', /hello-peios 1\.0\.0-1.*\d+s/);
  t.regex((await page.locator('#recipes tr[data-recipe="hello-peios"]').textContent()) ?? '', /succeeded/);

  // Filters narrow the history.
  await page.getByTestId('filter-state').selectOption('failed');
  await waitFor(async () => (await page.locator('#history tr[data-build]').count()) === 1, 5_000, 'the failed filter');
  await page.getByTestId('filter-state').selectOption('');
  await page.getByTestId('filter-text').fill('1.0.0');
  await waitFor(async () => (await page.locator('#history tr[data-build]').count()) === 1, 5_000, 'the text filter');
  await page.getByTestId('filter-text').fill('');

  const shot = join(await tempDir(t, 'peipkg-dashboard-'), 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  if (process.env.PEIPKG_SCREENSHOT) await copyFile(shot, process.env.PEIPKG_SCREENSHOT);
  t.deepEqual(elsewhere, [], 'the page asks nothing of any other server');
  t.deepEqual(pageErrors, [], 'no script errors, nothing missing');
  daemon.child.kill('SIGTERM');
});
