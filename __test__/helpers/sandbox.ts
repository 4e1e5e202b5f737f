/** What the sandbox tests of peipkg-build and of the farm both need: a host port, a failing bwrap, a process search. */

import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';

import { tempDir } from './fs.js';

/** pids of processes (other than this one) whose command line contains `needle` (NUL-separated arguments). */
export async function processesWith(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    if ((await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).includes(needle)) found.push(Number(entry));
  }
  return found;
}

/** A bwrap first on PATH that fails as it does where a container runtime forbids namespaces. */
export async function forbiddingBwrap(t: ExecutionContext): Promise<Record<string, string>> {
  const bin = await tempDir(t, 'peipkg-no-userns-');
  await writeFile(
    join(bin, 'bwrap'),
    '#!/bin/sh\necho "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces." >&2\nexit 1\n',
    { mode: 0o755 },
  );
  return { PATH: `${bin}:${process.env.PATH ?? ''}` };
}

/** A TCP server on the host's 127.0.0.1 that counts connections and answers each with a tiny HTTP response. */
export async function listener(t: ExecutionContext): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A client that resets (a build killed mid-request) is an ECONNRESET here: without a listener it would crash the test run.
    socket.on('error', () => undefined);
    socket.end('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // A client the test let go of may still hold its connection: close drops it rather than wait.
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, connections: () => connections };
}
