/**
 * Operating a farm day to day, without a browser: a failed build is one log URL from its log (every
 * line stamped) and one command from a retry (`peipkg-manager retry`, which only the operator —
 * whoever can read `state_dir/control.token` — or a caller with that token can do); `/status`
 * lists each recipe with its last result and polls, and history entries in snake_case with their
 * duration and log URL; a running build's log streams as Server-Sent Events.
 */

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { LineStamper } from '../../ts/manager/buildLog.js';
import { runTool } from '../helpers/cli.js';
import { buildRecords, freePort, makeFarm, makeUpstream, managerPath, publishedIn, startDaemon, waitFor, writeRecipe } from '../helpers/farm.js';
import { SLOW_BUILD } from '../helpers/scale.js';

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

/** Reads an SSE response until its `end` event (or `ms`), returning the events with when each arrived. */
async function readEvents(response: Response, ms: number): Promise<Array<{ event: string; data: string; id?: string; at: number }>> {
  const events: Array<{ event: string; data: string; id?: string; at: number }> = [];
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = Date.now() + ms;
  let buffer = '';
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const fields = new Map(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)] as const));
      if (!fields.has('event')) continue;
      events.push({ event: fields.get('event')!, data: fields.get('data') ?? '', ...(fields.has('id') ? { id: fields.get('id')! } : {}), at: Date.now() });
      if (fields.get('event') === 'end') {
        await reader.cancel();
        return events;
      }
    }
  }
  await reader.cancel();
  return events;
}

test('LineStamper stamps each line once, however the output is cut into chunks', (t) => {
  const stamper = new LineStamper(() => new Date('2026-12-04T10:00:00.000Z'));
  const out = ['one\ntw', 'o\n', '', 'three', '\nfour\n\nfive'].map((c) => stamper.stamp(Buffer.from(c)).toString()).join('');
  const p = '2026-12-04T10:00:00.000Z ';
  t.is(out, `${p}one\n${p}two\n${p}three\n${p}four\n${p}\n${p}five`);
});

test('a failed build: its log line links the stamped log, /status says what happened, and `retry` builds it now (the operator only)', async (t) => {
  t.timeout(240_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"` });
  const recipe = await writeRecipe(farm.recipesDir, { git: upstream.dir, pollInterval: '1h', script: '#!/bin/sh\necho "configure: error: libfoo not found" >&2\nexit 1\n' });
  const retry = (...args: string[]) => runTool('peipkg-manager', ['retry', '--config', farm.configPath, ...args]);

  // Before the daemon runs, retry says it is not there.
  const early = await retry('hello-peios');
  t.is(early.exitCode, 1);
  t.regex(early.stderr, /control\.token does not exist: the daemon makes it when it starts/);

  const daemon = startDaemon(t, farm.configPath);
  const failLog = (error: Error): never => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  };
  await waitFor(() => /msg="build failed"/.test(daemon.log()), 60_000, 'the failing build').catch(failLog);

  // The failure line: how long it took, where the log is, and its URL.
  const line = /msg="build failed" .*/.exec(daemon.log())![0];
  t.regex(line, /duration=\d/);
  const logPath = join(farm.stateDir, 'history', 'logs', 'hello-peios-1.0.0-1-1.log');
  t.true(line.includes(`log=${logPath}`), line);
  const url = /log_url=(\S+)/.exec(line)?.[1];
  t.is(url?.replace(/^http:\/\/[^/]+/, ''), '/builds/hello-peios-1.0.0-1-1/log', line);
  const log = await (await fetch(`${base}/builds/hello-peios-1.0.0-1-1/log`)).text();
  t.true(log.includes('configure: error: libfoo not found'), log);
  const lines = log.trimEnd().split('\n');
  t.true(lines.length > 3 && lines.every((l) => STAMP.test(l)), `every line stamped:\n${log}`);

  // /status: the recipe's last result and polls; history in snake_case with duration and log URL.
  const status = (await (await fetch(`${base}/status`)).json()) as { recipe_status: Array<Record<string, unknown>>; history: Array<Record<string, unknown>> };
  const mine = status.recipe_status.find((r) => r.recipe === 'hello-peios')!;
  t.like(mine, { watched: true, github_webhook: false, poll_interval_s: 3600, last_result: { build: 'hello-peios-1.0.0-1-1', version: '1.0.0-1', state: 'failed', log_url: '/builds/hello-peios-1.0.0-1-1/log' }, last_poll: { ok: true } });
  t.true(Date.parse(String(mine.next_poll)) > Date.now() + 50 * 60_000, `next poll in about an hour: ${String(mine.next_poll)}`);
  t.true(Date.parse(String(mine.next_retry)) > Date.now(), 'the back-off end is shown');
  const entry = status.history[0]!;
  t.like(entry, { id: 'hello-peios-1.0.0-1-1', state: 'failed', stage: 'build', log_url: '/builds/hello-peios-1.0.0-1-1/log' });
  t.true(typeof entry.duration_s === 'number' && entry.duration_s >= 0);
  for (const doc of [status.history, status.recipe_status]) for (const key of doc.flatMap((e) => Object.keys(e))) t.regex(key, /^[a-z0-9_]+$/, `snake_case: ${key}`);

  // Only the operator acts: no token, a wrong one, a malformed request, an unknown recipe.
  const post = (body: unknown, token?: string) =>
    fetch(`${base}/api/retry`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  const token = (await readFile(join(farm.stateDir, 'control.token'), 'utf8')).trim();
  t.is((await post({ recipe: 'hello-peios' })).status, 401);
  t.is((await post({ recipe: 'hello-peios' }, 'f'.repeat(token.length))).status, 401);
  t.is((await fetch(`${base}/api/retry`)).status, 405);
  const bad = await post({ recipe: 'hello-peios', versoin: '1' }, token);
  t.is(bad.status, 400);
  t.regex(((await bad.json()) as { error: string }).error, /versoin/);
  const unknown = await retry('no-such-recipe');
  t.is(unknown.exitCode, 1);
  t.regex(unknown.stderr, /no recipe "no-such-recipe" in the roster \(it has hello-peios\)/);
  const stranger = await execa('runuser', ['-u', 'nobody', '--', process.execPath, managerPath(), 'retry', '--config', farm.configPath, 'hello-peios'], { reject: false });
  t.is(stranger.exitCode, 1);
  t.regex(stranger.stderr, /cannot read .*control\.token \(EACCES\): retry is for the farm's operator/);
  t.is((await buildRecords(farm)).length, 1, 'none of those built anything');

  // The recipe is fixed (build.sh is read at each build) and the operator retries at once, not in a minute.
  await writeFile(join(recipe, 'build.sh'), SLOW_BUILD(0).replace('sleep 0\n', 'for i in 1 2 3 4 5 6; do echo "step $i"; sleep 1; done\n'));
  const asked = await retry('hello-peios');
  t.is(asked.exitCode, 0, asked.stderr);
  t.regex(asked.stdout, /^hello-peios: 1\.0\.0-1 \((building|queued)\); back-off cleared for 1\.0\.0-1\n$/);

  // Its log, live: lines arrive while it runs, each with its byte offset; a reconnect resumes after it.
  await waitFor(async () => ((await (await fetch(`${base}/status`)).json()) as { running: Array<{ build: string | null }> }).running.some((r) => r.build === 'hello-peios-1.0.0-1-2'), 30_000, 'the retried build running').catch(failLog);
  // Viewers who leave give their place back (at most 64 watch at once): 100 come and go, and one more still gets in.
  for (let i = 0; i < 100; i++) {
    const leaving = new AbortController();
    const response = await fetch(`${base}/builds/hello-peios-1.0.0-1-2/log/stream`, { signal: leaving.signal });
    t.is(response.status, 200, `viewer ${i}`);
    leaving.abort();
    await response.body?.cancel().catch(() => undefined);
  }
  const stream = await fetch(`${base}/builds/hello-peios-1.0.0-1-2/log/stream`);
  t.regex(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = await readEvents(stream, 90_000);
  const steps = events.filter((e) => e.event === 'line' && / step \d$/.test(e.data));
  t.deepEqual(steps.map((e) => e.data.slice(-6)), ['step 1', 'step 2', 'step 3', 'step 4', 'step 5', 'step 6']);
  t.true(steps.at(-1)!.at - steps[0]!.at > 3_000, 'the lines came as they were written, not at the end');
  t.is(events.at(-1)?.event, 'end');
  t.is(events.at(-1)?.data, 'succeeded');
  const full = await readFile(join(farm.stateDir, 'history', 'logs', 'hello-peios-1.0.0-1-2.log'));
  const third = steps[2]!;
  t.is(full.subarray(0, Number(third.id)).toString().split('\n').at(-2), third.data, 'an event id is the byte offset after its line');
  const resumed = await readEvents(await fetch(`${base}/builds/hello-peios-1.0.0-1-2/log/stream`, { headers: { 'Last-Event-ID': third.id! } }), 30_000);
  t.is(resumed.find((e) => e.event === 'line')?.data, steps[3]!.data, 'a reconnect starts after the last line it had');

  await waitFor(async () => (await publishedIn(join(farm.stateDir, 'repo'))).includes('hello-peios 1.0.0-1'), 60_000, 'the retried build published').catch(failLog);
  await waitFor(() => /msg="build \+ publish complete" .*duration=\d/.test(daemon.log()), 10_000, 'the completion line with its duration').catch(failLog);

  // The repository's browse site is served read-only under /repo/, and nothing else of state_dir is.
  const site = await fetch(`${base}/repo/`);
  t.is(site.status, 200);
  t.true((await site.text()).includes('test-repo'));
  t.is((await fetch(`${base}/repo/repo.json`)).status, 200);
  for (const path of ['/repo/../control.token', '/repo/%2e%2e/control.token', '/repo/..%2fcontrol.token', '/repo/%2e%2e%2fhistory/builds.json']) {
    const response = await fetch(`${base}${path}`);
    const text = await response.text();
    t.false(response.ok && (text.includes(token) || text.includes('"attempts"')), `${path} must not reach state_dir: ${response.status}`);
    t.false(text.includes(token), path);
  }

  // Nothing left to do: retry says why, and exits 1 for scripts.
  const again = await retry('hello-peios', '--json');
  t.is(again.exitCode, 1);
  t.like(JSON.parse(again.stdout), { recipe: 'hello-peios', queued: [], running: [], reason: 'nothing to build: every version hello-peios builds is published' });
  const published = await retry('hello-peios', '1.0.0-1');
  t.is(published.exitCode, 1);
  t.is(published.stdout, 'hello-peios: hello-peios 1.0.0-1 is already published\n');
  daemon.child.kill('SIGTERM');
});

test('retry without an HTTP interface, or with no daemon listening, says what to do', async (t) => {
  const farm = await makeFarm(t);
  const noHttp = await runTool('peipkg-manager', ['retry', '--config', farm.configPath, 'hello-peios']);
  t.is(noHttp.exitCode, 1);
  t.regex(noHttp.stderr, /\[http\]\.addr is not set/);
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = ":${port}"` });
  await mkdir(farm.stateDir, { recursive: true });
  await writeFile(join(farm.stateDir, 'control.token'), `${'a'.repeat(64)}\n`, { mode: 0o600 });
  const down = await runTool('peipkg-manager', ['retry', '--config', farm.configPath, 'hello-peios']);
  t.is(down.exitCode, 1);
  t.regex(down.stderr, new RegExp(`no peipkg-manager answers at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  const usage = await runTool('peipkg-manager', ['retry', '--config', farm.configPath]);
  t.is(usage.exitCode, 2);
  t.notRegex(usage.stderr, /internal error/);
});
