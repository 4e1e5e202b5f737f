/**
 * A real `redis-server` (Debian's) for one test, on a free loopback port, configured as the README
 * asks a farm's Redis to be: append-only file, fsync every second, no eviction. It can be killed
 * (SIGKILL) and started again on the same port and data directory.
 */

import { join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';

import { freePort } from './farm.js';
import { tempDir } from './fs.js';

export interface TestRedis {
  url: string;
  port: number;
  kill(): Promise<void>;
  start(): Promise<void>;
}

async function waitForPing(port: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const ping = await execa('redis-cli', ['-p', String(port), 'ping'], { reject: false });
    if (ping.stdout.trim() === 'PONG') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis-server on port ${port} did not answer within 10 s`);
}

export async function startRedis(t: ExecutionContext): Promise<TestRedis> {
  const dir = await tempDir(t, 'peipkg-redis-');
  const port = await freePort();
  let child: ResultPromise | undefined;
  const redis: TestRedis = {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    async start() {
      child = execa('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
        '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction',
        '--logfile', join(dir, 'redis.log'),
      ], { reject: false });
      await waitForPing(port);
    },
    async kill() {
      child?.kill('SIGKILL');
      await child;
    },
  };
  await redis.start();
  t.teardown(() => {
    child?.kill('SIGKILL');
  });
  return redis;
}
