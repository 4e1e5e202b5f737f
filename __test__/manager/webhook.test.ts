/**
 * The daemon over HTTP on 127.0.0.1 (recipes-and-farm.md §8.10, §8.13, D-16, D-22, D-23, D-28):
 * a signed GitHub push webhook really builds the new tag; bad webhooks are refused without a
 * poll; `/healthz`, `/status` and `/builds/<id>/log`; SIGHUP reloads the roster; SIGTERM stops
 * cleanly; a second manager on the same state_dir is refused.
 *
 * Recipes poll every hour, so after the start-up poll only a webhook or a reload can cause a build.
 */

import { createHmac } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';

import test, { type ExecutionContext } from 'ava';

import { createLogger } from '../../ts/log.js';
import type { BuildRecord } from '../../ts/manager/history.js';
import { createHttpApp, listen, type HttpDeps } from '../../ts/manager/http.js';
import { runTool } from '../helpers/cli.js';
import { buildRecords, exitWithin, freePort, makeFarm, makeUpstream, publishedIn, startDaemon, waitFor, writeRecipe, type Farm, type Upstream } from '../helpers/farm.js';
import { rawRequest, sleep, streamBody, type RawReply } from '../helpers/rawhttp.js';

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
async function runningFarm(t: ExecutionContext, setup?: (farm: Farm) => Promise<void>, moreHttp = ''): Promise<Running> {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const secretFile = join(farm.root, 'webhook.secret');
  await writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"\nwebhook_secret_file = ${JSON.stringify(secretFile)}\n${moreHttp}` });
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

test.serial('a signed push for a repository whose recipe has not opted into webhooks is answered with the reason, naming the recipe', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t, async (farm) => {
    await writeRecipe(farm.recipesDir, { id: 'quiet', git: join(farm.root, 'quiet-upstream.git'), githubWebhook: false });
  });
  const quiet = pushBody('v1.0.0', join(r.farm.root, 'quiet-upstream.git'));
  const answer = await postWebhook(r.base, 'push', quiet, sign(quiet));
  t.is(answer.status, 200);
  t.deepEqual(await answer.json(), { triggered: [], reason: 'recipe quiet watches this repository but does not set [watch] github_webhook = true; it is polled on its interval' });
  const unknown = pushBody('v1.0.0', 'https://github.com/example/unknown');
  t.deepEqual(await (await postWebhook(r.base, 'push', unknown, sign(unknown))).json(), { triggered: [], reason: 'no recipe watches this repository' });
  const branch = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: r.upstream.dir } });
  t.deepEqual(await (await postWebhook(r.base, 'push', branch, sign(branch))).json(), { triggered: [], reason: 'not a tag push' });
});

test.serial('a signed push webhook for a new tag builds and publishes it within seconds', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t);
  await waitPublished(r, 'hello-peios 1.0.0-1');
  await waitIdle(r);

  await r.upstream.tag('v1.1.0');
  const body = pushBody('v1.1.0', r.upstream.dir);
  const started = Date.now();
  const response = await postWebhook(r.base, 'push', body, sign(body));
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { triggered: ['hello-peios'] }, 'the answer names what the push triggered');
  await waitPublished(r, 'hello-peios-doc 1.1.0-1', 30_000);
  const elapsed = Date.now() - started;
  t.log(`webhook → 1.1.0-1 published in ${elapsed} ms`);
  await waitIdle(r);
  t.deepEqual(await publishedIn(join(r.farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios 1.1.0-1', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.1.0-1']);
  const record = (await buildRecords(r.farm)).find((b) => b.version === '1.1.0-1');
  t.like(record, { recipe: 'hello-peios', tag: 'v1.1.0', source: 'webhook', state: 'succeeded' });
  t.regex(r.daemon.log(), /level=info msg="webhook accepted, triggering immediate poll" recipe=hello-peios/);
});

test.serial('bad webhooks are refused and poll nothing: wrong or missing signature 401, ping 200, GET 405, >1 MiB 413, unknown path 404', async (t) => {
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
  // Over the default [http].webhook_max_body (1 MiB): 413, and the connection closed under the sender.
  const big = Buffer.alloc(1024 * 1024 + 1, 0x20);
  const tooLarge = await rawRequest({
    port: Number(new URL(r.base).port),
    headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push', 'Content-Length': String(big.length), 'X-Hub-Signature-256': sign(big) },
    send: (write) => write(big).then(() => undefined),
  });
  t.is(tooLarge.status, 413, tooLarge.text);
  t.is(codeOf(tooLarge), 'too_large');
  t.true(tooLarge.closed);
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

// ---- Unauthenticated bodies are bounded (issue 10): the HTTP app itself, on 127.0.0.1 ----

const MiB = 1024 * 1024;
/** Well-formed, and wrong for any body: the body must be read before it can be refused. */
const BOGUS_SIGNATURE = `sha256=${'0'.repeat(64)}`;

interface App {
  port: number;
  pushes: string[][];
  log(): string;
}

/** createHttpApp with a secret, on 127.0.0.1:0, closed at teardown. */
async function startApp(t: ExecutionContext, options: Partial<HttpDeps> = {}): Promise<App> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const pushes: string[][] = [];
  const app = createHttpApp({
    status: () => Promise.resolve({ farm_id: 'test' }),
    unhealthy: () => undefined,
    buildLog: () => undefined,
    webhookSecret: Buffer.from(SECRET),
    onRepositoryPush: (urls) => {
      pushes.push(urls);
      return { triggered: ['hello-peios'], optedOut: [] };
    },
    log: createLogger({ level: 'debug', format: 'logfmt', out }),
    ...options,
  });
  const { server, port } = await listen(app, { host: '127.0.0.1', port: 0 });
  t.teardown(() => closeServer(server));
  return { port, pushes, log: () => text };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const codeOf = (reply: RawReply): unknown => {
  const body = reply.text.slice(reply.text.indexOf('\r\n\r\n') + 4);
  try {
    return (JSON.parse(body) as { code?: unknown }).code;
  } catch {
    return undefined;
  }
};

const webhookHeaders = (extra: Record<string, string>): Record<string, string> => ({ 'Content-Type': 'application/json', 'X-GitHub-Event': 'push', ...extra });

test('a gzip-encoded webhook is refused with 415 before its body is read, and nothing is inflated or polled', async (t) => {
  const app = await startApp(t);
  const payload = Buffer.from(pushBody('v1.1.0', '/srv/git/hello-peios.git'));
  for (const [what, body] of [
    ['a gzip bomb (16 MiB of zeros)', gzipSync(Buffer.alloc(16 * MiB))],
    ['a push, gzipped and signed over the compressed bytes', gzipSync(payload)],
    ['a body that is no gzip at all', Buffer.from('this is not gzip data')],
  ] as const) {
    const reply = await rawRequest({
      port: app.port,
      headers: webhookHeaders({ 'Content-Encoding': 'gzip', 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body) }),
      send: (write) => write(body).then(() => undefined),
    });
    t.is(reply.status, 415, `${what}: ${reply.text}`);
    t.is(codeOf(reply), 'unsupported_encoding', what);
    t.true(reply.closed, `${what}: the connection is closed`);
  }
  // Signed over the inflated payload: still 415, never inflated to check it.
  const inflatedSigned = await rawRequest({
    port: app.port,
    headers: webhookHeaders({ 'Content-Encoding': 'deflate', 'Content-Length': '2', 'X-Hub-Signature-256': sign(payload) }),
    send: (write) => write('xx').then(() => undefined),
  });
  t.is(inflatedSigned.status, 415);
  t.deepEqual(app.pushes, [], 'no poll');
  t.regex(app.log(), /level=warn msg="webhook refused" code=unsupported_encoding status=415 remote=127\.0\.0\.1:\d+/);
  t.false(app.log().includes('http handler failed'));
  // identity is no encoding at all.
  const identity = await rawRequest({
    port: app.port,
    headers: webhookHeaders({ 'Content-Encoding': 'identity', 'Content-Length': String(payload.length), 'X-Hub-Signature-256': sign(payload), Connection: 'close' }),
    send: (write) => write(payload).then(() => undefined),
  });
  t.is(identity.status, 200, identity.text);
});

test('a Content-Length over webhook_max_body is 413 at once, with the body unread and the connection closed', async (t) => {
  const app = await startApp(t, { webhookMaxBody: MiB });
  const started = Date.now();
  // Declares 16 MiB, then sends nothing: the answer cannot have waited for the body.
  const reply = await rawRequest({ port: app.port, headers: webhookHeaders({ 'Content-Length': String(16 * MiB), 'X-Hub-Signature-256': BOGUS_SIGNATURE }), waitMs: 5_000 });
  t.is(reply.status, 413, reply.text);
  t.is(codeOf(reply), 'too_large');
  t.regex(reply.text, /body larger than 1MiB/);
  t.true(reply.closed, 'the connection is closed');
  t.true(Date.now() - started < 2_000, 'answered without waiting for the body');
  // The limit is the configured one: 1 MiB + 1 is too much, 1 MiB exactly is read (and its signature checked).
  t.is((await rawRequest({ port: app.port, headers: webhookHeaders({ 'Content-Length': String(MiB + 1), 'X-Hub-Signature-256': BOGUS_SIGNATURE }) })).status, 413);
  const exact = await rawRequest({
    port: app.port,
    headers: webhookHeaders({ 'Content-Length': String(MiB), 'X-Hub-Signature-256': BOGUS_SIGNATURE, Connection: 'close' }),
    send: streamBody(MiB, false),
  });
  t.is(exact.status, 401, exact.text);
  t.is(codeOf(exact), 'invalid_signature');
});

test('a chunked body with no Content-Length is cut off at webhook_max_body with 413, and the sender cannot keep sending', async (t) => {
  const app = await startApp(t, { webhookMaxBody: MiB });
  const total = 256 * MiB;
  const reply = await rawRequest({ port: app.port, headers: webhookHeaders({ 'Transfer-Encoding': 'chunked', 'X-Hub-Signature-256': BOGUS_SIGNATURE }), send: streamBody(total, true), waitMs: 20_000 });
  t.is(reply.status, 413, reply.text.slice(0, 500));
  t.is(codeOf(reply), 'too_large');
  t.true(reply.closed, 'the connection is closed');
  t.log(`the sender got ${(reply.sent / MiB).toFixed(1)} MiB out before the connection closed`);
  t.true(reply.sent < 32 * MiB, `${reply.sent} bytes sent: the server stopped taking the body`);
  t.deepEqual(app.pushes, []);
  t.regex(app.log(), /level=warn msg="webhook refused" code=too_large status=413 remote=127\.0\.0\.1:\d+/);
});

test('the HMAC is over the bytes as sent: the same JSON in other bytes is 401, the exact bytes (any spelling) are accepted', async (t) => {
  const app = await startApp(t);
  // Unusual but valid JSON: escapes, spacing, a BOM-free UTF-8 name. Parsing and re-serialising would change its bytes.
  const exact = Buffer.from('{ "ref" : "refs/tags/v1.1.0",\n  "repository": {"clone_url": "/srv/git/h\\u00e9llo.git", "name": "héllo"} }\n');
  const reserialised = Buffer.from(JSON.stringify(JSON.parse(exact.toString()) as unknown));
  const post = (body: Buffer, signature: string): Promise<RawReply> =>
    rawRequest({ port: app.port, headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': signature, Connection: 'close' }), send: (write) => write(body).then(() => undefined) });
  const wrong = await post(exact, sign(reserialised));
  t.is(wrong.status, 401, wrong.text);
  t.is(codeOf(wrong), 'invalid_signature');
  t.deepEqual(app.pushes, []);
  const good = await post(exact, sign(exact));
  t.is(good.status, 200, good.text);
  t.deepEqual(app.pushes, [['/srv/git/héllo.git']]);
  // Missing or malformed signatures are refused before the body is read.
  const unsigned = await rawRequest({ port: app.port, headers: webhookHeaders({ 'Content-Length': String(MiB) }), waitMs: 5_000 });
  t.is(unsigned.status, 401);
  t.true(unsigned.closed);
});

test('at most webhookMaxUnauthenticated bodies are read at once: the next is 503 with Retry-After at once; the slots come back', async (t) => {
  const app = await startApp(t, { webhookMaxUnauthenticated: 2, webhookBodyTimeoutMs: 10_000 });
  const body = Buffer.from(pushBody('v1.1.0', '/srv/git/hello-peios.git'));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  // Two senders send half a body and wait.
  const slow = [0, 1].map(() =>
    rawRequest({
      port: app.port,
      headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body), Connection: 'close' }),
      send: async (write) => {
        await write(body.subarray(0, 10));
        await released;
        await write(body.subarray(10));
      },
    }),
  );
  await sleep(300);
  const started = Date.now();
  const refused = await rawRequest({ port: app.port, headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body) }), waitMs: 5_000 });
  t.is(refused.status, 503, refused.text);
  t.is(codeOf(refused), 'busy');
  t.regex(refused.text, /\r\nRetry-After: \d+\r\n/i);
  t.true(refused.closed, 'the connection is closed');
  t.true(Date.now() - started < 1_000, 'refused without reading the body');
  t.regex(app.log(), /level=warn msg="webhook refused" code=busy status=503 remote=127\.0\.0\.1:\d+/);

  release();
  for (const reply of await Promise.all(slow)) t.is(reply.status, 200, reply.text);
  const again = await rawRequest({
    port: app.port,
    headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body), Connection: 'close' }),
    send: (write) => write(body).then(() => undefined),
  });
  t.is(again.status, 200, again.text);
  t.is(app.pushes.length, 3);
});

test('a body not received within the deadline is 408 and the connection closed; its slot is freed', async (t) => {
  const app = await startApp(t, { webhookMaxUnauthenticated: 1, webhookBodyTimeoutMs: 400 });
  const body = Buffer.from(pushBody('v1.1.0', '/srv/git/hello-peios.git'));
  const started = Date.now();
  // Slowloris: a byte now and then, never the whole body.
  const reply = await rawRequest({
    port: app.port,
    headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body) }),
    send: async (write) => {
      for (const byte of body) {
        if (!(await write(Buffer.from([byte])))) return;
        await sleep(100);
      }
    },
    waitMs: 5_000,
  });
  const elapsed = Date.now() - started;
  t.is(reply.status, 408, reply.text);
  t.is(codeOf(reply), 'body_timeout');
  t.true(reply.closed, 'the connection is closed');
  t.true(elapsed >= 350 && elapsed < 1_500, `answered after ${elapsed} ms`);
  t.regex(app.log(), /level=warn msg="webhook refused" code=body_timeout status=408 remote=127\.0\.0\.1:\d+/);
  // The only slot is free again.
  const next = await rawRequest({
    port: app.port,
    headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body), Connection: 'close' }),
    send: (write) => write(body).then(() => undefined),
  });
  t.is(next.status, 200, next.text);
});

test('client mistakes elsewhere are 4xx warnings too, never a 500 or a stack trace', async (t) => {
  const app = await startApp(t);
  const reply = await rawRequest({ port: app.port, method: 'GET', path: '/builds/%E0%A4%A/log', headers: { Connection: 'close' } });
  t.is(reply.status, 400, reply.text);
  t.is(codeOf(reply), 'bad_request');
  t.regex(app.log(), /level=warn msg="bad request" status=400 .*remote=127\.0\.0\.1:\d+/);
  t.false(app.log().includes('http handler failed'));
  t.false(/\n\s+at /.test(app.log()), 'no stack trace');
});

// ---- The daemon under the attack ----

test.serial('the daemon reads webhook bodies up to [http].webhook_max_body as configured', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t, undefined, 'webhook_max_body = "2MiB"');
  const port = Number(new URL(r.base).port);
  // 1.5 MiB: over the default, within the configured 2 MiB, so it is read and its signature checked.
  const within = Buffer.alloc(1.5 * MiB, 0x20);
  const read = await rawRequest({ port, headers: webhookHeaders({ 'Content-Length': String(within.length), 'X-Hub-Signature-256': BOGUS_SIGNATURE, Connection: 'close' }), send: (write) => write(within).then(() => undefined) });
  t.is(read.status, 401, read.text.slice(0, 300));
  const over = await rawRequest({ port, headers: webhookHeaders({ 'Content-Length': String(2 * MiB + 1), 'X-Hub-Signature-256': BOGUS_SIGNATURE }) });
  t.is(over.status, 413, over.text);
  t.regex(over.text, /body larger than 2MiB/);
});

function vmRssKiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((text) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(text)?.[1] ?? NaN));
}

test.serial('the daemon under attack: 100 streamed 16 MiB bodies and 150 gzip bombs leave its memory flat and /healthz fast', async (t) => {
  t.timeout(180_000);
  const r = await runningFarm(t);
  await waitPublished(r, 'hello-peios-doc 1.0.0-1');
  await waitIdle(r);
  const pid = r.daemon.child.pid;
  if (pid === undefined) return t.fail('no daemon pid');
  const port = Number(new URL(r.base).port);
  await sleep(500);
  const before = await vmRssKiB(pid);

  const bomb = gzipSync(Buffer.alloc(16 * MiB));
  const attack: Array<Promise<RawReply>> = [];
  for (let i = 0; i < 100; i++) {
    // Half declare 16 MiB; half stream it chunked with a signature that must be checked; neither is signed for real.
    const chunked = i % 2 === 1;
    const headers = chunked ? webhookHeaders({ 'Transfer-Encoding': 'chunked', 'X-Hub-Signature-256': BOGUS_SIGNATURE }) : webhookHeaders({ 'Content-Length': String(16 * MiB) });
    attack.push(rawRequest({ port, headers, send: streamBody(16 * MiB, chunked), waitMs: 60_000 }));
  }
  for (let i = 0; i < 150; i++) {
    const headers = webhookHeaders({ 'Content-Encoding': 'gzip', 'Content-Length': String(bomb.length), 'X-Hub-Signature-256': BOGUS_SIGNATURE });
    attack.push(rawRequest({ port, headers, send: (write) => write(bomb).then(() => undefined), waitMs: 60_000 }));
  }

  let peak = before;
  let done = false;
  const healthz: number[] = [];
  const sampler = (async () => {
    while (!done) {
      peak = Math.max(peak, await vmRssKiB(pid));
      const started = Date.now();
      const response = await fetch(`${r.base}/healthz`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      healthz.push(response?.status === 200 ? Date.now() - started : Infinity);
      await sleep(50);
    }
  })();
  const replies = await Promise.all(attack);
  done = true;
  await sampler;
  await sleep(500);
  const after = await vmRssKiB(pid);

  const statuses = new Map<string, number>();
  for (const [i, reply] of replies.entries()) {
    const key = `${i >= 100 ? 'gzip' : i % 2 === 1 ? 'chunked' : 'declared'} ${reply.status ?? 'reset'}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  }
  const sentMiB = replies.reduce((sum, reply) => sum + reply.sent, 0) / MiB;
  t.log(`VmRSS before ${(before / 1024).toFixed(0)} MiB, peak ${(peak / 1024).toFixed(0)} MiB, after ${(after / 1024).toFixed(0)} MiB`);
  t.log(`/healthz during the attack: ${healthz.length} probes, slowest ${Math.max(...healthz)} ms`);
  t.log(`statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${sentMiB.toFixed(0)} MiB got out of the senders`);
  t.true(peak - before < 150 * 1024, `RSS grew by ${((peak - before) / 1024).toFixed(0)} MiB`);
  t.true(healthz.length > 0);
  t.true(Math.max(...healthz) < 1_000, `slowest /healthz ${Math.max(...healthz)} ms`);
  t.true(replies.every((reply) => reply.closed), 'every attack connection was closed by the daemon');
  t.true(replies.slice(0, 100).every((reply) => reply.status === 413 || reply.status === 503), 'every 16 MiB body is answered 413 (or 503 when 16 are being read), not reset');
  t.true(replies.slice(100).every((reply) => reply.status === 415), 'every gzip body is 415');
  t.false(r.daemon.log().includes('http handler failed'));
  t.false(/\n\s+at /.test(r.daemon.log()), 'no stack traces');
  // And it still takes a real webhook.
  const body = pushBody('v1.1.0', '/srv/git/elsewhere.git');
  t.is((await postWebhook(r.base, 'push', body, sign(body))).status, 200);
});

test.serial('the daemon under slow senders: 16 bodies are read at once, the rest get 503 at once, the 16 get 408 after 10 s, /healthz stays fast', async (t) => {
  t.timeout(120_000);
  const r = await runningFarm(t);
  const port = Number(new URL(r.base).port);
  const body = Buffer.from(pushBody('v1.1.0', '/srv/git/elsewhere.git'));
  const started = Date.now();
  // Each sends a byte every half second, forever.
  const slow = Array.from({ length: 24 }, () =>
    rawRequest({
      port,
      headers: webhookHeaders({ 'Content-Length': String(body.length), 'X-Hub-Signature-256': sign(body) }),
      send: async (write) => {
        for (const byte of body) {
          if (!(await write(Buffer.from([byte])))) return;
          await sleep(500);
        }
      },
      waitMs: 30_000,
    }).then((reply) => ({ reply, ms: Date.now() - started })),
  );
  let done = false;
  const healthz: number[] = [];
  const prober = (async () => {
    while (!done) {
      const at = Date.now();
      const response = await fetch(`${r.base}/healthz`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      healthz.push(response?.status === 200 ? Date.now() - at : Infinity);
      await sleep(200);
    }
  })();
  const replies = await Promise.all(slow);
  done = true;
  await prober;
  const busy = replies.filter(({ reply }) => reply.status === 503);
  const late = replies.filter(({ reply }) => reply.status === 408);
  t.log(`503 ×${busy.length} (slowest after ${Math.max(...busy.map((b) => b.ms))} ms), 408 ×${late.length} (after ${Math.min(...late.map((b) => b.ms))}–${Math.max(...late.map((b) => b.ms))} ms); /healthz ${healthz.length} probes, slowest ${Math.max(...healthz)} ms`);
  t.is(late.length, 16);
  t.is(busy.length, 8);
  t.true(busy.every((b) => b.ms < 2_000 && b.reply.closed), '503s come at once, and close');
  t.true(late.every((b) => b.ms >= 9_500 && b.ms < 13_000 && b.reply.closed), '408s come after 10 s, and close');
  t.true(Math.max(...healthz) < 1_000, `slowest /healthz ${Math.max(...healthz)} ms`);
  // The slots are free again: a signed delivery is read and accepted.
  t.is((await postWebhook(r.base, 'push', body, sign(body))).status, 200);
});
