/**
 * A farm of many machines on loopback: a real redis-server, the coordinator (`peipkg-manager`
 * with `[queue] backend = "redis"`, building nothing itself) and worker processes
 * (`peipkg-manager worker`), each with its own token, work directory and architectures.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';

import { freePort, makeFarm, managerPath, writeRecipe, type Farm } from './farm.js';
import { repoRoot } from './fixtures.js';
import { startRedis, type TestRedis } from './redis.js';

export interface WorkerSpec {
  id: string;
  architectures: string[];
  /** Extra TOML for the worker's config (e.g. `[[signing_key]]`). */
  extra?: string;
  /** `[worker].drain_timeout` (default 20s). */
  drainTimeout?: string;
}

export interface Daemon {
  child: ResultPromise;
  log: () => string;
}

export interface ScaleFarm {
  farm: Farm;
  redis: TestRedis;
  base: string;
  tokens: Map<string, string>;
  workerConfig(id: string): string;
  startCoordinator(): Daemon;
  startWorker(id: string): Daemon;
  status(): Promise<FarmStatus>;
}

export interface FarmStatus {
  workers: Array<{ id: string; architectures: string[]; keys: string[]; state: string; current_job: { job: string; recipe: string } | null; last_seen: string }>;
  queue: Array<{ recipe: string; version: string; waiting?: string; architectures: string[] }>;
  running: Array<{ recipe: string; version: string; worker: string }>;
  queue_counts: Record<string, { waiting: number; running: number }>;
  history: Array<{ id: string; recipe: string; version: string; state: string; worker?: string; error?: string; stage?: string; reproducible?: boolean; difference?: { file: string; member: string; digests: string[]; workers: string[] } }>;
}

function spawnManager(t: ExecutionContext, args: string[]): Daemon {
  let log = '';
  const child = execa(process.execPath, [managerPath(), ...args, '--log-level', 'debug'], { reject: false, forceKillAfterDelay: false });
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return { child, log: () => log };
}

/** The example's build.sh, after sleeping `seconds` (a build long enough to be interrupted). */
export const SLOW_BUILD = (seconds: number): string =>
  `#!/bin/sh\nset -eu\nsleep ${seconds}\ninstall -D -m 0755 "$SOURCE_DIR/hello-peios.sh" "$DESTDIR/usr/bin/hello-peios"\nmkdir -p "$DESTDIR/usr/share/man/man1" "$DESTDIR/usr/share/doc/hello-peios"\ngzip -9 -n -c "$SOURCE_DIR/hello-peios.1" > "$DESTDIR/usr/share/man/man1/hello-peios.1.gz"\ncp "$SOURCE_DIR/README" "$DESTDIR/usr/share/doc/hello-peios/README"\n`;

/** A recipe whose packages are all `architecture` (a copy of the example recipe, so it builds anywhere). */
export async function writeArchRecipe(recipesDir: string, id: string, git: string, architecture: string, script?: string): Promise<void> {
  await writeRecipe(recipesDir, { id, git });
  // The example's build.sh, installing the example program under this recipe's names.
  const example = await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8');
  await writeFile(join(recipesDir, id, 'build.sh'), script ?? example.replaceAll('DESTDIR/usr/bin/hello-peios', `DESTDIR/usr/bin/${id}`).replaceAll('man1/hello-peios.1.gz', `man1/${id}.1.gz`).replaceAll('doc/hello-peios', `doc/${id}`));
  const path = join(recipesDir, id, 'peipkg.toml');
  await writeFile(path, (await readFile(path, 'utf8')).replaceAll('architecture = "noarch"', `architecture = "${architecture}"`));
}

export async function makeScaleFarm(t: ExecutionContext, workers: WorkerSpec[], options: { extra?: string; local?: boolean; lockWindow?: string } = {}): Promise<ScaleFarm> {
  const redis = await startRedis(t);
  const farm = await makeFarm(t);
  const port = await freePort();
  const tokens = new Map<string, string>();
  let stanzas = '';
  for (const w of workers) {
    const token = randomBytes(24).toString('hex');
    tokens.set(w.id, token);
    const file = join(farm.root, `${w.id}.token`);
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    stanzas += `[[worker]]\nid = "${w.id}"\ntoken_file = ${JSON.stringify(file)}\n\n`;
    const workDir = join(farm.root, 'workers', w.id);
    await mkdir(workDir, { recursive: true });
    await writeFile(
      join(farm.root, `${w.id}.toml`),
      [
        '[worker]',
        `id = "${w.id}"`,
        `queue_url = "${redis.url}"`,
        `coordinator = "http://127.0.0.1:${port}"`,
        `token_file = ${JSON.stringify(file)}`,
        `architectures = ${JSON.stringify(w.architectures)}`,
        `work_dir = ${JSON.stringify(workDir)}`,
        'concurrency = 1',
        `drain_timeout = "${w.drainTimeout ?? '20s'}"`,
        '',
        '[build]',
        'timeout = "5m"',
        '',
        w.extra ?? '',
      ].join('\n'),
    );
  }
  await farm.writeConfig(
    [
      '[queue]',
      'backend = "redis"',
      `url = "${redis.url}"`,
      `lock_window = "${options.lockWindow ?? '6s'}"`,
      '',
      `[build]\nlocal = ${options.local ?? false}\n`,
      stanzas,
      options.extra ?? '',
    ].join('\n'),
    { http: `[http]\naddr = "127.0.0.1:${port}"` },
  );
  const base = `http://127.0.0.1:${port}`;
  return {
    farm,
    redis,
    base,
    tokens,
    workerConfig: (id) => join(farm.root, `${id}.toml`),
    startCoordinator: () => spawnManager(t, ['--config', farm.configPath]),
    startWorker: (id) => spawnManager(t, ['worker', '--config', join(farm.root, `${id}.toml`)]),
    async status() {
      const response = await fetch(`${base}/status`);
      return (await response.json()) as FarmStatus;
    },
  };
}

/** Waits for `check` on the coordinator's /status (which may not be up yet). */
export async function waitForStatus(farm: ScaleFarm, check: (s: FarmStatus) => boolean, timeoutMs: number, what: string, logs: () => string = () => ''): Promise<FarmStatus> {
  const end = Date.now() + timeoutMs;
  let last: FarmStatus | undefined;
  while (Date.now() < end) {
    last = await farm.status().catch(() => undefined);
    if (last && check(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nlast /status: ${JSON.stringify(last, null, 1)?.slice(0, 4000)}\n${logs().slice(-6000)}`);
}

export { repoRoot };
