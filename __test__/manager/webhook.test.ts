/**
 * The daemon over HTTP on 127.0.0.1 (recipes-and-farm.md §8.10, §8.13, D-16, D-22, D-23, D-28):
 * a signed GitHub push webhook really builds the new tag; bad webhooks are refused without a
 * poll; `/healthz`, `/status` and `/builds/<id>/log`; SIGHUP reloads the roster; SIGTERM stops
 * cleanly; a second manager on the same state_dir is refused.
 *
 * Recipes poll every hour, so after the start-up poll only a webhook or a reload can cause a build.
 */

import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import type { BuildRecord } from '../../ts/manager/history.js';
import { runTool } from '../helpers/cli.js';
import { buildRecords, exitWithin, freePort, makeFarm, makeUpstream, publishedIn, startDaemon, waitFor, writeRecipe, type Farm, type Upstream } from '../helpers/farm.js';

const SECRET = 'a-long-random-webhook-secret-for-tests';

const sign = (body: string | Buffer, secret = SECRET): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** A build script for a recipe not named hello-peios (writeRecipe renames every "hello-peios"). */
const otherScript = (id: string): string =>
  ['#!/bin/sh', 'set -eu', `for f in "$SOURCE_DIR"/*.sh; do install -D -m 0755 "$f" "$DESTDIR/usr/bin/${id}"; done`, `install -D -m 0644 "$SOURCE_DIR/README" "$DESTDIR/usr/share/doc/${id}/README"`, ''].join('\n');

interface Running {
  farm: Farm;
  upstream: Upstream;
  base: string;
  daemon: ReturnType<typeof startDaemon>;
}

/** A farm watching one upstream (tag v1.0.0) with webhooks on, its daemon started. */
async function runningFarm(t: ExecutionContext, setup?: (farm: Farm) => Promise<void>): Promise<Running> {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const secretFile = join(farm.root, 'webhook.secret');
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"\nwebhook_secret_file = ${JSON.stringify(secretFile)}` });
  await writeRecipe(farm.recipesDir, { git: upstream.dir, githubWebhook: true, pollInterval: '1h' });
  if (setup) await setup(farm);
  const daemon = startDaemon(t, farm.configPath);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(() => daemon.log().includes('msg="webhook server listening"'), 30_000, 'the HTTP server').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  return { farm, upstream, base, daemon };
}

async function waitPublished(r: Running, entry: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await publishedIn(join(r.farm.stateDir, 'repo'))).includes(entry), timeoutMs, `${entry} published`).catch((error: Error) => {
    throw new Error(`${error.message}\n${r.daemon.log()}`);
  });
}

/** Waits until nothing is queued or running (per /status). */
async function waitIdle(r: Running): Promise<void> {
  await waitFor(
    async () => {
      const doc = (await (await fetch(`${r.base}/status`)).json()) as { running: unknown[]; queue: unknown[] };
      return doc.running.length === 0 && doc.queue.length === 0;
    },
    60_000,
    'the farm to be idle',
  );
}

function postWebhook(base: string, event: string, body: string | Buffer, signature: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-GitHub-Event': event, 'X-GitHub-Delivery': 'test-delivery' };
  if (signature !== undefined) headers['X-Hub-Signature-256'] = signature;
  return fetch(`${base}/webhooks/github`, { method: 'POST', headers, body });
}

const pushBody = (tag: string, cloneUrl: string): string =>
  JSON.stringify({
    ref: `refs/tags/${tag}`,
    before: '0000000000000000000000000000000000000000',
    created: true,
    repository: { full_name: 'example/hello-peios', html_url: 'https://github.com/example/hello-peios', clone_url: cloneUrl },
  });

const count = (text: string, needle: string): number => text.split(needle).length - 1;

test.serial('a signed push webhook for a new tag builds and publishes it within seconds', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t);
  await waitPublished(r, 'hello-peios 1.0.0-1');
  await waitIdle(r);

  await r.upstream.tag('v1.1.0');
  const body = pushBody('v1.1.0', r.upstream.dir);
  const started = Date.now();
  const response = await postWebhook(r.base, 'push', body, sign(body));
  t.is(response.status, 200, await response.text());
  await waitPublished(r, 'hello-peios-doc 1.1.0-1', 30_000);
  const elapsed = Date.now() - started;
  t.log(`webhook → 1.1.0-1 published in ${elapsed} ms`);
  await waitIdle(r);
  t.deepEqual(await publishedIn(join(r.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios 1.1.0-1', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.1.0-1']);
  const record = (await buildRecords(r.farm)).find((b) => b.version === '1.1.0-1');
  t.like(record, { recipe: 'hello-peios', tag: 'v1.1.0', source: 'webhook', state: 'succeeded' });
  t.regex(r.daemon.log(), /level=info msg="webhook accepted, triggering immediate poll" recipe=hello-peios/);
});

test.serial('bad webhooks are refused and poll nothing: wrong or missing signature 401, ping 200, GET 405, >16 MiB 413, unknown path 404', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t);
  await waitPublished(r, 'hello-peios 1.0.0-1');
  await waitIdle(r);
  // A new tag is waiting upstream: any poll now would build it.
  await r.upstream.tag('v1.1.0');
  const historyBefore = await buildRecords(r.farm);
  const pollsBefore = count(r.daemon.log(), 'msg="polling upstream"');
  t.is(pollsBefore, 1, 'only the start-up poll so far');

  const body = pushBody('v1.1.0', r.upstream.dir);
  for (const [what, signature] of [
    ['wrong secret', sign(body, 'not-the-secret')],
    ['signature of another body', sign(`${body} `)],
    ['missing', undefined],
    ['not sha256=', `sha1=${createHmac('sha1', SECRET).update(body).digest('hex')}`],
  ] as const) {
    const response = await postWebhook(r.base, 'push', body, signature);
    t.is(response.status, 401, what);
    const doc = (await response.json()) as { error?: unknown; code?: unknown };
    t.is(doc.code, 'invalid_signature', what);
    t.is(typeof doc.error, 'string', what);
  }
  t.regex(r.daemon.log(), /level=warn msg="webhook signature invalid" remote=127\.0\.0\.1:\d+/);

  // ping, signed (upper-case hex is accepted too): 200 and no poll, even with a body that would
  // poll if the event type were ignored (as the reference does).
  const ping = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1, ref: 'refs/tags/v1.1.0', ref_type: 'tag', repository: { clone_url: r.upstream.dir } });
  const pong = await postWebhook(r.base, 'ping', ping, `sha256=${createHmac('sha256', SECRET).update(ping).digest('hex').toUpperCase()}`);
  t.is(pong.status, 200, await pong.text());

  // Signed, but not a tag push, or another repository: 200 and no poll.
  const branch = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: r.upstream.dir } });
  t.is((await postWebhook(r.base, 'push', branch, sign(branch))).status, 200);
  const other = pushBody('v1.1.0', '/srv/git/some-other-project.git');
  t.is((await postWebhook(r.base, 'push', other, sign(other))).status, 200);
  // Signed, but not JSON: 400.
  const notJson = await postWebhook(r.base, 'push', 'payload=%7B%7D', sign('payload=%7B%7D'));
  t.is(notJson.status, 400);

  const get = await fetch(`${r.base}/webhooks/github`);
  t.is(get.status, 405);
  const big = Buffer.alloc(16 * 1024 * 1024 + 1, 0x20);
  const tooLarge = await postWebhook(r.base, 'push', big, sign(big));
  t.is(tooLarge.status, 413);
  t.is(((await tooLarge.json()) as { code?: unknown }).code, 'too_large');
  const unknown = await fetch(`${r.base}/webhooks/gitlab`, { method: 'POST', body: '{}' });
  t.is(unknown.status, 404);
  for (const path of ['/status/', '/webhooks/github/', '/STATUS']) t.is((await fetch(`${r.base}${path}`)).status, 404, `${path}: routes match the exact path`);

  await new Promise((resolve) => setTimeout(resolve, 2_000));
  t.deepEqual(await buildRecords(r.farm), historyBefore, 'no new build');
  t.deepEqual(await publishedIn(join(r.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  t.is(count(r.daemon.log(), 'msg="polling upstream"'), pollsBefore, 'no poll');
  t.false(r.daemon.log().includes('webhook accepted'));

  // The same push, correctly signed, does build: the refusals above were the signatures'.
  const accepted = await postWebhook(r.base, 'push', body, sign(body));
  t.is(accepted.status, 200);
  await waitPublished(r, 'hello-peios 1.1.0-1', 30_000);
});

test.serial('/healthz, /status (contract keys in order, while building and after a failure) and /builds/<id>/log', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t, async (farm) => {
    // A second recipe whose build script fails, slowly enough to be seen in flight.
    const broken = await makeUpstream(t);
    await broken.tag('v0.9.0');
    await writeRecipe(farm.recipesDir, {
      id: 'broken',
      git: broken.dir,
      githubWebhook: true,
      script: '#!/bin/sh\necho "broken: the build script ran and gave up" >&2\nsleep 3\nexit 1\n',
    });
  });

  const health = await fetch(`${r.base}/healthz`);
  t.is(health.status, 200);
  t.is(await health.text(), 'ok\n');
  // Any method, as the reference.
  const postHealth = await fetch(`${r.base}/healthz`, { method: 'POST' });
  t.is(postHealth.status, 200);
  t.is(await postHealth.text(), 'ok\n');
  const postStatus = await fetch(`${r.base}/status`, { method: 'POST' });
  t.is(postStatus.status, 200);
  t.is(((await postStatus.json()) as { farm_id?: unknown }).farm_id, 'test-farm');

  // While a build runs: in_flight right after the counters.
  let seen: Record<string, unknown> | undefined;
  await waitFor(
    async () => {
      const doc = (await (await fetch(`${r.base}/status`)).json()) as Record<string, unknown>;
      if ('in_flight' in doc) seen = doc;
      return seen !== undefined;
    },
    30_000,
    'a build in flight in /status',
  );
  if (!seen) return;
  const busyKeys = Object.keys(seen);
  t.deepEqual(busyKeys.slice(0, 5), ['farm_id', 'recipes', 'builds_attempted', 'builds_succeeded', 'in_flight']);
  const inFlight = seen.in_flight as { recipe: string; version: string; started_at: string };
  const running = seen.running as Array<{ recipe: string; version: string; build: string | null }>;
  t.true(running.some((j) => j.recipe === inFlight.recipe && j.version === inFlight.version), 'in_flight is one of the running jobs');
  t.false(Number.isNaN(Date.parse(inFlight.started_at)));

  await waitPublished(r, 'hello-peios-doc 1.0.0-1');
  await waitFor(async () => (await buildRecords(r.farm)).some((b) => b.recipe === 'broken' && b.state === 'failed'), 60_000, 'the broken build to fail');
  await waitIdle(r);

  const response = await fetch(`${r.base}/status`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const text = await response.text();
  t.true(text.startsWith('{\n  "farm_id"'), 'indented by two spaces');
  t.true(text.endsWith('}\n'));
  const doc = JSON.parse(text) as Record<string, unknown>;
  const keys = Object.keys(doc);
  // Idle, with a failure: in_flight left out, failures right after the counters.
  t.deepEqual(keys.slice(0, 5), ['farm_id', 'recipes', 'builds_attempted', 'builds_succeeded', 'failures']);
  for (const key of ['running', 'queue', 'skipped_recipes', 'history', 'upload']) t.true(keys.indexOf(key) > 4, `${key} after the contract keys`);
  t.like(doc, { farm_id: 'test-farm', recipes: ['broken', 'hello-peios'], builds_attempted: 2, builds_succeeded: 1, running: [], queue: [], skipped_recipes: [] });
  const failures = doc.failures as Record<string, { failures: number; next_retry: string }>;
  t.deepEqual(Object.keys(failures), ['broken@0.9.0-1']);
  t.is(failures['broken@0.9.0-1']?.failures, 1);
  t.true(Date.parse(failures['broken@0.9.0-1']?.next_retry ?? '') > Date.now(), 'next_retry is in the future');
  const history = doc.history as BuildRecord[];
  t.deepEqual(history.map((b) => `${b.id} ${b.state}`).sort(), ['broken-0.9.0-1-1 failed', 'hello-peios-1.0.0-1-1 succeeded']);
  t.like(doc.upload, { state: 'disabled' });

  const okLog = await fetch(`${r.base}/builds/hello-peios-1.0.0-1-1/log`);
  t.is(okLog.status, 200);
  t.regex(okLog.headers.get('content-type') ?? '', /^text\/plain/);
  const okText = await okLog.text();
  t.true(okText.includes('hello-peios_1.0.0-1_noarch.peipkg'), okText);
  t.regex(okText, /published index_version \d+ \(2 new packages\)/);
  const badLog = await (await fetch(`${r.base}/builds/broken-0.9.0-1-1/log`)).text();
  t.true(badLog.includes('broken: the build script ran and gave up'), badLog);
  t.false(badLog.includes('hello-peios_1.0.0-1'), "one build's log only");

  const missing = await fetch(`${r.base}/builds/hello-peios-9.9.9-1-1/log`);
  t.is(missing.status, 404);
  t.is(((await missing.json()) as { code?: unknown }).code, 'unknown_build');
  t.is((await fetch(`${r.base}/builds/..%2F..%2Fbuilds.json/log`)).status, 404);
});

test.serial('SIGHUP reloads the roster and builds the new recipe; SIGTERM stops the daemon with exit 0', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t);
  await waitPublished(r, 'hello-peios-doc 1.0.0-1');
  await waitIdle(r);

  const second = await makeUpstream(t);
  await second.tag('v5.0.0');
  await writeRecipe(r.farm.recipesDir, { id: 'second', git: second.dir, script: otherScript('second') });
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.deepEqual(await publishedIn(join(r.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1'], 'not picked up before the SIGHUP');

  r.daemon.child.kill('SIGHUP');
  await waitPublished(r, 'second-doc 5.0.0-1');
  t.deepEqual(await publishedIn(join(r.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1', 'second 5.0.0-1', 'second-doc 5.0.0-1']);
  t.regex(r.daemon.log(), /msg="received SIGHUP; reloading recipes"/);
  t.regex(r.daemon.log(), /msg="recipes reloaded" count=2 /);
  const status = (await (await fetch(`${r.base}/status`)).json()) as { recipes: string[] };
  t.deepEqual(status.recipes, ['hello-peios', 'second']);
  // The already-published recipe was polled again but not rebuilt.
  t.deepEqual((await buildRecords(r.farm)).map((b) => b.id).sort(), ['hello-peios-1.0.0-1-1', 'second-5.0.0-1-1']);

  r.daemon.child.kill('SIGTERM');
  const { exitCode } = await exitWithin(r.daemon, 30_000);
  t.is(exitCode, 0, r.daemon.log());
  t.regex(r.daemon.log(), /level=info msg="peipkg-manager stopped"/);
});

test.serial('a second manager on the same state_dir is refused while the first runs', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t);
  await waitPublished(r, 'hello-peios 1.0.0-1');
  await waitIdle(r);
  await r.upstream.tag('v1.1.0');
  const historyBefore = await buildRecords(r.farm);

  const second = await runTool('peipkg-manager', ['--config', r.farm.configPath, '--once']);
  t.is(second.exitCode, 1, second.stderr);
  t.true(second.stderr.includes(r.farm.stateDir), second.stderr);
  t.regex(second.stderr, /in use by another peipkg-manager/);
  t.deepEqual(await buildRecords(r.farm), historyBefore, 'the refused manager built nothing');
  t.deepEqual(await publishedIn(join(r.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  // The first one is unaffected.
  t.is((await fetch(`${r.base}/healthz`)).status, 200);
});
