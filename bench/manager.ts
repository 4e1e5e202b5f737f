/**
 * peipkg-manager speed, against baselines measured in the same run (issue 5):
 *
 *   1. From a signed webhook arriving to the build starting (target < 1 s), beside one
 *      `git ls-remote` of the same upstream — the part of the path the manager cannot skip;
 *   2. one `--once` sweep over 50, 100 and 200 recipes whose upstreams are local repositories
 *      (nothing new to build, so the time is the sweep itself), beside `git ls-remote` run over
 *      the same upstreams one after another; the per-recipe cost shows whether growth is linear.
 *
 * Run: node --import=tsx bench/manager.ts  (needs `npm run build`; reaches only 127.0.0.1).
 * A benchmark, not a test: it prints numbers and never fails on them.
 */

import { createHmac } from 'node:crypto';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa } from 'execa';

import { freePort, makeFarm, makeUpstream, runOnce, startDaemon, waitFor, writeRecipe, type Farm } from '../__test__/helpers/farm.js';

const SECRET = 'bench-webhook-secret';
const WEBHOOK_ROUNDS = 7;
const SWEEP_SIZES = [50, 100, 200];

/** The farm helpers clean up through ava's teardown; a benchmark collects the same clean-ups itself. */
const cleanups: Array<() => unknown> = [];
const context = { teardown: (fn: () => unknown) => cleanups.push(fn) } as unknown as ExecutionContext;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/** Wall milliseconds of `git ls-remote --tags` on `dir`. */
async function lsRemote(dir: string): Promise<number> {
  const start = performance.now();
  await execa('git', ['ls-remote', '--tags', '--', dir]);
  return performance.now() - start;
}

/** The `time=` of the first log line holding `needle`, in ms since the epoch. */
function loggedAt(log: string, needle: string): number | undefined {
  const line = log.split('\n').find((l) => l.includes(needle));
  const time = line && /^time=(\S+)/.exec(line)?.[1];
  return time ? Date.parse(time) : undefined;
}

async function webhookLatency(): Promise<void> {
  const upstream = await makeUpstream(context);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(context);
  const secretFile = join(farm.root, 'webhook.secret');
  await writeFile(secretFile, SECRET, { mode: 0o600 });
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"\nwebhook_secret_file = ${JSON.stringify(secretFile)}` });
  await writeRecipe(farm.recipesDir, { git: upstream.dir, githubWebhook: true, pollInterval: '1h' });
  const daemon = startDaemon(context, farm.configPath);
  const idle = async (): Promise<boolean> => {
    const doc = (await (await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined))?.json().catch(() => undefined)) as
      | { running: unknown[]; queue: unknown[]; history: Array<{ state: string }> }
      | undefined;
    return doc !== undefined && doc.running.length === 0 && doc.queue.length === 0 && doc.history.length > 0;
  };
  await waitFor(idle, 60_000, 'the first sweep');

  const latencies: number[] = [];
  const baselines: number[] = [];
  for (let i = 1; i <= WEBHOOK_ROUNDS; i++) {
    const tag = `v1.${i}.0`;
    await upstream.tag(tag);
    baselines.push(await lsRemote(upstream.dir));
    const body = JSON.stringify({ ref: `refs/tags/${tag}`, created: true, repository: { clone_url: upstream.dir } });
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const sent = Date.now();
    const response = await fetch(`http://127.0.0.1:${port}/webhooks/github`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': signature },
      body,
    });
    if (response.status !== 200) throw new Error(`webhook answered ${response.status}: ${await response.text()}`);
    const needle = `msg="starting build" job=hello-peios-1.${i}.0-1-1`;
    await waitFor(() => daemon.log().includes(needle), 30_000, `the build of ${tag} to start`);
    latencies.push(loggedAt(daemon.log(), needle)! - sent);
    await waitFor(idle, 60_000, `the build of ${tag} to finish`);
  }
  daemon.child.kill('SIGTERM');
  await daemon.child;

  const m = median(latencies);
  const b = median(baselines);
  console.log(`\n1. Signed webhook → build started (${WEBHOOK_ROUNDS} rounds; the log's millisecond timestamps)`);
  console.log(`   median ${seconds(m)} s, max ${seconds(Math.max(...latencies))} s   (target < 1 s)`);
  console.log(`   git ls-remote of the same upstream: median ${seconds(b)} s;  webhook path / ls-remote = ${(m / b).toFixed(2)}x`);
}

/** `count` recipes, each watching its own copy of one upstream whose tags the pattern never matches. */
async function sweepFarm(count: number, template: string): Promise<{ farm: Farm; upstreams: string[] }> {
  const farm = await makeFarm(context);
  const upstreams: string[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(farm.root, 'upstreams', `u${i}.git`);
    await cp(template, dir, { recursive: true });
    upstreams.push(dir);
    await writeRecipe(farm.recipesDir, { id: `r${i}`, git: dir, tagPattern: '^release-(\\d+\\.\\d+\\.\\d+)$' });
  }
  return { farm, upstreams };
}

async function sweeps(): Promise<void> {
  const upstream = await makeUpstream(context);
  for (const tag of ['v1.0.0', 'v1.1.0', 'v2.0.0']) await upstream.tag(tag);
  console.log('\n2. One --once sweep over N recipes with local upstreams (nothing to build), medians of 3');
  console.log('       N   sweep s   per recipe ms   ls-remote loop s   sweep / loop');
  for (const count of SWEEP_SIZES) {
    const { farm, upstreams } = await sweepFarm(count, upstream.dir);
    const sweepMs: number[] = [];
    const loopMs: number[] = [];
    for (let round = 0; round < 3; round++) {
      const start = performance.now();
      const result = await runOnce(farm);
      sweepMs.push(performance.now() - start);
      if (result.exitCode !== 0) throw new Error(`--once failed:\n${result.stderr}`);
      const loopStart = performance.now();
      for (const dir of upstreams) await execa('git', ['ls-remote', '--tags', '--', dir]);
      loopMs.push(performance.now() - loopStart);
    }
    const s = median(sweepMs);
    const l = median(loopMs);
    console.log(`    ${String(count).padStart(4)}   ${seconds(s).padStart(7)}   ${(s / count).toFixed(1).padStart(13)}   ${seconds(l).padStart(16)}   ${(s / l).toFixed(2).padStart(12)}x`);
  }
  console.log('   (the sweep includes start-up and the repository check; "per recipe" falling or flat as N grows means linear or better)');
}

try {
  const load = (await execa('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ');
  console.log(`peipkg-manager benchmark  (node ${process.version}, load average ${load}; numbers mean something only on an idle machine)`);
  await webhookLatency();
  await sweeps();
} finally {
  for (const fn of cleanups.reverse()) await fn();
}
