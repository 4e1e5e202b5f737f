/**
 * A farm of many machines on loopback: does throughput scale with workers? (issue: "20 recipes
 * whose build sleeps, with 1 and 2 workers: throughput scales").
 *
 * One local upstream (one tag, v1.0.0) and 20 noarch recipes, each one package, whose build.sh
 * sleeps S seconds (default 3; `--sleep S` or BENCH_SLEEP) and installs one small file. Each farm
 * starts from scratch (new Redis, new state directory, same recipes and farm key):
 *
 *   - baseline: the single-host embedded farm, `peipkg-manager --once` with [build] concurrency = 1;
 *   - a coordinator (`[queue] backend = "redis"`, `[build] local = false`) with 1 worker, then with
 *     2 workers (`peipkg-manager worker`, concurrency 1 each), on a real redis-server.
 *
 * The time is from starting the coordinator (and workers) to 20 `succeeded` builds in its GET
 * /status history (the coordinator records a build there once its package is signed and
 * published). The ideal is 20 × S / workers; per-build overhead = (time − 20 × S / workers) / 20.
 *
 * Run: node --import=tsx bench/scale.ts [--sleep S]  (needs `npm run build`; about 4 minutes at
 * S = 3; reaches only 127.0.0.1; BENCH_KEEP=1 keeps the scratch directory). A benchmark, not a
 * test: it prints numbers and never fails on them. It does not import from __test__/ (ava may not
 * be installed where it runs); the farm set-up mirrors __test__/helpers/{farm,redis,scale}.ts.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

const root = fileURLToPath(new URL('..', import.meta.url));
const managerCli = join(root, 'bin/peipkg-manager.js');
const RECIPES = 20;

function sleepSeconds(): number {
  const i = process.argv.indexOf('--sleep');
  const raw = i >= 0 ? process.argv[i + 1] : process.env.BENCH_SLEEP;
  const s = Number(raw ?? 3);
  if (!Number.isFinite(s) || s < 0) throw new Error(`--sleep / BENCH_SLEEP must be a number of seconds ≥ 0, not ${String(raw)}`);
  return s;
}
const SLEEP = sleepSeconds();

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every process this script started, so that the end (or a failure, or ^C) stops them all. */
interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  log: () => string;
}
const procs = new Set<Proc>();

/** Starts `command` in its own process group (so its build children can be signalled with it); stderr+stdout kept. */
function start(name: string, command: string, args: string[]): Proc {
  let log = '';
  const child = spawn(command, args, { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', (err) => {
      log += `\n${String(err)}`;
      resolve();
    });
  });
  const proc: Proc = { name, child, exited, log: () => log };
  procs.add(proc);
  void exited.then(() => procs.delete(proc));
  return proc;
}

function signal(proc: Proc, sig: NodeJS.Signals): void {
  if (proc.child.pid === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  try {
    process.kill(-proc.child.pid, sig); // the group this script created for it
  } catch {
    try {
      proc.child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** SIGTERM, then SIGKILL whatever is left after `graceMs`. */
async function stop(list: Proc[], graceMs = 10_000): Promise<void> {
  for (const p of list) signal(p, 'SIGTERM');
  const all = Promise.all(list.map((p) => p.exited));
  const timedOut = await Promise.race([all.then(() => false), delay(graceMs).then(() => true)]);
  if (timedOut) {
    for (const p of list) signal(p, 'SIGKILL');
    await Promise.race([all, delay(5_000)]);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string, logs: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await delay(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${logs().slice(-8000)}`);
}

/** A real redis-server as the README asks a farm's Redis to be: append-only, fsync every second, no eviction. */
async function startRedis(dir: string): Promise<{ url: string; proc: Proc }> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const proc = start('redis-server', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction',
    '--logfile', join(dir, 'redis.log'),
  ]);
  await waitUntil(
    async () => (await execa('redis-cli', ['-p', String(port), 'ping'], { reject: false })).stdout.trim() === 'PONG',
    10_000,
    `redis-server on port ${port}`,
    proc.log,
  );
  return { url: `redis://127.0.0.1:${port}/0`, proc };
}

/** The upstream (one tag), the farm key and the 20 recipes, shared by every run. */
async function makeInputs(scratch: string): Promise<{ recipesDir: string; keyFile: string }> {
  const upstream = join(scratch, 'upstream.git');
  await mkdir(upstream);
  await writeFile(join(upstream, 'README'), 'bench/scale.ts upstream\n');
  const env = { ...process.env, GIT_AUTHOR_NAME: 'Upstream', GIT_AUTHOR_EMAIL: 'up@example.org', GIT_COMMITTER_NAME: 'Upstream', GIT_COMMITTER_EMAIL: 'up@example.org', GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };
  for (const args of [['init', '-q', '-b', 'main'], ['add', '.'], ['commit', '-qm', 'initial'], ['tag', 'v1.0.0']]) await execa('git', args, { cwd: upstream, env });

  const keyFile = join(scratch, 'farm.ed25519');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyFile]);
  await chmod(keyFile, 0o600);

  const recipesDir = join(scratch, 'recipes');
  for (let i = 1; i <= RECIPES; i++) {
    const id = `bench-sleep-${String(i).padStart(2, '0')}`;
    const dir = join(recipesDir, id);
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'peipkg.toml'),
      [
        '[meta]',
        'license = "MIT"',
        'build_script = "build.sh"',
        '',
        '[[package]]',
        `name = "${id}"`,
        'architecture = "noarch"',
        `description = "bench/scale.ts: a build that sleeps ${SLEEP} s."`,
        `files = ["usr/share/${id}/**"]`,
        '',
        '[upstream]',
        `git = ${JSON.stringify(upstream)}`,
        'tag_pattern = "^v(\\\\d+\\\\.\\\\d+\\\\.\\\\d+)$"',
        'peios_revision = 1',
        '',
        '[watch]',
        'poll_interval = "1h"',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'build.sh'),
      `#!/bin/sh\nset -eu\nsleep ${SLEEP}\nmkdir -p "$DESTDIR/usr/share/${id}"\necho "${id}" > "$DESTDIR/usr/share/${id}/README"\n`,
      { mode: 0o755 },
    );
  }
  return { recipesDir, keyFile };
}

function baseConfig(recipesDir: string, stateDir: string, keyFile: string): string {
  return [
    '[manager]',
    'id = "bench-farm"',
    `recipes_dir = ${JSON.stringify(recipesDir)}`,
    `state_dir = ${JSON.stringify(stateDir)}`,
    'drain_timeout = "30s"',
    '',
    '[repo]',
    'name = "bench-repo"',
    'description = "bench/scale.ts"',
    '',
    '[signing]',
    `key_file = ${JSON.stringify(keyFile)}`,
    '',
    '[poll]',
    'default_interval = "1h"',
    '',
  ].join('\n');
}

/** Names in `<repo>/index/archive.json` (the published packages). */
async function published(stateDir: string): Promise<number> {
  const text = await readFile(join(stateDir, 'repo', 'index', 'archive.json'), 'utf8').catch(() => '{"packages":[]}');
  return (JSON.parse(text) as { packages: unknown[] }).packages.length;
}

/** Baseline: the embedded single-host farm, `--once`, [build] concurrency = 1. Seconds. */
async function embedded(scratch: string, recipesDir: string, keyFile: string): Promise<number> {
  const dir = join(scratch, 'embedded');
  await mkdir(dir);
  const stateDir = join(dir, 'state');
  const config = join(dir, 'config.toml');
  await writeFile(config, `${baseConfig(recipesDir, stateDir, keyFile)}\n[build]\nconcurrency = 1\n`);
  const t0 = performance.now();
  const p = start('peipkg-manager --once', process.execPath, [managerCli, '--config', config, '--once', '--log-level', 'debug']);
  await p.exited;
  const s = (performance.now() - t0) / 1000;
  await writeFile(join(dir, 'once.log'), p.log());
  if (p.child.exitCode !== 0) throw new Error(`--once exited ${String(p.child.exitCode ?? p.child.signalCode)}\n${p.log().slice(-8000)}`);
  const n = await published(stateDir);
  if (n !== RECIPES) throw new Error(`--once published ${n} packages, not ${RECIPES}\n${p.log().slice(-8000)}`);
  return s;
}

interface History {
  builds_succeeded?: number;
  history: Array<{ recipe: string; state: string; worker?: string; startedAt?: string; finishedAt?: string }>;
}

/** A coordinator and `workers` workers from scratch; seconds from starting them to 20 succeeded builds. */
async function distributed(scratch: string, recipesDir: string, keyFile: string, workers: number): Promise<{ seconds: number; perWorker: Record<string, number>; history: History['history']; coordinatorLog: string }> {
  const dir = join(scratch, `farm-${workers}w`);
  await mkdir(dir);
  const stateDir = join(dir, 'state');
  const redis = await startRedis(join(dir, 'redis'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let stanzas = '';
  const ids: string[] = [];
  for (let w = 1; w <= workers; w++) {
    const id = `w${w}`;
    ids.push(id);
    const tokenFile = join(dir, `${id}.token`);
    await writeFile(tokenFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    stanzas += `[[worker]]\nid = "${id}"\ntoken_file = ${JSON.stringify(tokenFile)}\n\n`;
    const workDir = join(dir, 'workers', id);
    await mkdir(workDir, { recursive: true });
    await writeFile(
      join(dir, `${id}.toml`),
      [
        '[worker]',
        `id = "${id}"`,
        `queue_url = "${redis.url}"`,
        `coordinator = "${base}"`,
        `token_file = ${JSON.stringify(tokenFile)}`,
        'architectures = ["x86_64", "noarch"]',
        `work_dir = ${JSON.stringify(workDir)}`,
        'concurrency = 1',
        'drain_timeout = "20s"',
        '',
        '[build]',
        'timeout = "5m"',
        '',
      ].join('\n'),
    );
  }
  const config = join(dir, 'farm.toml');
  await writeFile(
    config,
    [baseConfig(recipesDir, stateDir, keyFile), '[http]', `addr = "127.0.0.1:${port}"`, '', '[queue]', 'backend = "redis"', `url = "${redis.url}"`, '', '[build]', 'local = false', '', stanzas].join('\n'),
  );

  const t0 = performance.now();
  const coordinator = start('coordinator', process.execPath, [managerCli, '--config', config, '--log-level', 'debug']);
  const workerProcs = ids.map((id) => start(`worker ${id}`, process.execPath, [managerCli, 'worker', '--config', join(dir, `${id}.toml`), '--log-level', 'debug']));
  const logs = (): string => [coordinator, ...workerProcs].map((p) => `--- ${p.name}\n${p.log().slice(-3000)}`).join('\n');
  let last: History | undefined;
  try {
    await waitUntil(
      async () => {
        if (coordinator.child.exitCode !== null) throw new Error(`the coordinator exited ${coordinator.child.exitCode}\n${logs()}`);
        last = (await fetch(`${base}/status`).then((r) => r.json()).catch(() => undefined)) as History | undefined;
        const done = Math.max(last?.builds_succeeded ?? 0, last?.history.filter((h) => h.state === 'succeeded').length ?? 0);
        const failed = last?.history.filter((h) => h.state === 'failed') ?? [];
        if (failed.length > 0) throw new Error(`a build failed: ${JSON.stringify(failed[0])}\n${logs()}`);
        return done >= RECIPES;
      },
      RECIPES * (SLEEP + 30) * 1000,
      `${RECIPES} succeeded builds with ${workers} worker(s)`,
      logs,
    );
    const seconds = (performance.now() - t0) / 1000;
    const n = await published(stateDir);
    if (n !== RECIPES) console.error(`   (note: the index lists ${n} packages when /status shows ${RECIPES} succeeded)`);
    const perWorker: Record<string, number> = {};
    for (const h of last?.history ?? []) perWorker[h.worker ?? '?'] = (perWorker[h.worker ?? '?'] ?? 0) + 1;
    return { seconds, perWorker, history: last?.history ?? [], coordinatorLog: coordinator.log() };
  } finally {
    await stop([...workerProcs, coordinator]);
    await stop([redis.proc]);
    // The debug logs (millisecond timestamps per step), for BENCH_KEEP=1.
    for (const p of [coordinator, ...workerProcs]) await writeFile(join(dir, `${p.name.replace(' ', '-')}.log`), p.log());
  }
}

/** Median gap between one build's finish and the next build's start on the same worker, from the history's timestamps, if present. */
function handOffGap(history: History['history']): string {
  const byWorker = new Map<string, Array<{ s: number; f: number }>>();
  for (const h of history) {
    if (!h.startedAt || !h.finishedAt) continue;
    const list = byWorker.get(h.worker ?? '?') ?? [];
    list.push({ s: Date.parse(h.startedAt), f: Date.parse(h.finishedAt) });
    byWorker.set(h.worker ?? '?', list);
  }
  const gaps: number[] = [];
  const durations: number[] = [];
  for (const list of byWorker.values()) {
    list.sort((a, b) => a.s - b.s);
    for (let i = 0; i < list.length; i++) {
      durations.push(list[i]!.f - list[i]!.s);
      if (i > 0) gaps.push(list[i]!.s - list[i - 1]!.f);
    }
  }
  if (durations.length === 0) return 'n/a (no startedAt/finishedAt in /status history)';
  const med = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
  return `recorded build ${(med(durations) / 1000).toFixed(2)} s median (sleep ${SLEEP} s), gap between builds on one worker ${(med(gaps) / 1000).toFixed(2)} s median`;
}

const scratch = await mkdtemp(join(tmpdir(), 'peipkg-bench-scale-'));
const onSignal = (sig: NodeJS.Signals): void => {
  void (async () => {
    await stop([...procs], 3_000);
    if (!process.env.BENCH_KEEP) await rm(scratch, { recursive: true, force: true });
    process.kill(process.pid, sig);
  })();
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

try {
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`peipkg farm scale-out benchmark  (node ${process.version}, load average ${load}; ${RECIPES} recipes, build sleeps ${SLEEP} s)`);
  const { recipesDir, keyFile } = await makeInputs(scratch);
  const ideal = RECIPES * SLEEP;

  const once = await embedded(scratch, recipesDir, keyFile);
  console.log(`\n  single-host embedded farm, --once, concurrency 1: ${once.toFixed(2)} s  (ideal serial ${ideal.toFixed(0)} s; overhead ${((once - ideal) / RECIPES).toFixed(2)} s per build)`);

  const results: Array<{ workers: number; seconds: number }> = [];
  for (const workers of [1, 2]) {
    const r = await distributed(scratch, recipesDir, keyFile, workers);
    results.push({ workers, seconds: r.seconds });
    const share = Object.entries(r.perWorker).map(([w, n]) => `${w} ${n}`).join(', ');
    console.log(`  coordinator + ${workers} worker(s): ${r.seconds.toFixed(2)} s  (ideal ${(ideal / workers).toFixed(0)} s; overhead ${((r.seconds - ideal / workers) / RECIPES).toFixed(2)} s per build; builds: ${share})`);
    console.log(`      ${handOffGap(r.history)}`);
  }
  const one = results[0]!.seconds;
  const two = results[1]!.seconds;
  console.log('\n  | | wall s | ideal s | overhead per build s |');
  console.log('  |---|---:|---:|---:|');
  console.log(`  | embedded --once, concurrency 1 | ${once.toFixed(2)} | ${ideal.toFixed(0)} | ${((once - ideal) / RECIPES).toFixed(2)} |`);
  for (const r of results) console.log(`  | coordinator + ${r.workers} worker${r.workers > 1 ? 's' : ''} | ${r.seconds.toFixed(2)} | ${(ideal / r.workers).toFixed(0)} | ${((r.seconds - ideal / r.workers) / RECIPES).toFixed(2)} |`);
  console.log(`\n  speed-up, 1 worker / 2 workers: ${(one / two).toFixed(2)}x  (ideal 2.00x)`);
  console.log(`  1 worker / embedded --once: ${(one / once).toFixed(2)}x`);
  console.log(`  load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  await stop([...procs]);
  if (process.env.BENCH_KEEP) console.log(`(kept ${scratch})`);
  else await rm(scratch, { recursive: true, force: true });
}
