/**
 * Operator actions on a running daemon (today: retry). They change what the farm does, so unlike
 * `/status` they need a token: `state_dir/control.token`, made by the daemon on its first start
 * (mode 0600, kept across restarts). Whoever can read the state directory — the local operator —
 * can act; anyone else must be given the token (the dashboard asks for it once per browser).
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { z } from 'zod';

import { InputError } from '../errors.js';
import type { Config, ListenAddress } from './config.js';

export const controlTokenPath = (stateDir: string): string => join(stateDir, 'control.token');

/** The daemon's token: read, or made on the first start. */
export async function ensureControlToken(stateDir: string): Promise<Buffer> {
  const path = controlTokenPath(stateDir);
  const existing = await readFile(path, 'utf8').catch(() => '');
  if (existing.trim().length >= 32) return Buffer.from(existing.trim());
  const token = randomBytes(32).toString('hex');
  // A temporary file left by a crash may have other permissions: never reuse it.
  await rm(`${path}.tmp`, { force: true });
  await writeFile(`${path}.tmp`, `${token}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return Buffer.from(token);
}

/** Whether an `Authorization` header carries `token` (compared in constant time). */
export function authorised(header: string | undefined, token: Buffer): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  return given.length === token.length && timingSafeEqual(given, token);
}

/** `POST /api/retry`'s body. */
export const RetryRequest = z.strictObject({
  recipe: z.string().min(1).max(200),
  version: z.string().min(1).max(200).optional(),
});
export type RetryRequest = z.infer<typeof RetryRequest>;

/** What a retry did: back-off records cleared, and the versions of the recipe queued or building after its poll. */
export const RetryAnswer = z.object({
  recipe: z.string(),
  version: z.string().optional(),
  cleared: z.array(z.string()),
  polled: z.boolean(),
  queued: z.array(z.string()),
  running: z.array(z.string()),
  /** Set when nothing was queued: why. */
  reason: z.string().optional(),
});
export type RetryAnswer = z.infer<typeof RetryAnswer>;

const ErrorAnswer = z.object({ error: z.string(), code: z.string() });

/** Where this host reaches the daemon's HTTP server: its listen address, with "every interface" as loopback. */
export function localBase(addr: ListenAddress): string {
  const host = addr.host === undefined || addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host === '::' ? '::1' : addr.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
}

/** `peipkg-manager retry`: asks the daemon `config` describes to build `recipe` (or one version of it) now. */
export async function requestRetry(config: Config, request: RetryRequest): Promise<RetryAnswer> {
  if (!config.http.addr) throw new InputError(`${config.path}: [http].addr is not set, so the daemon has no HTTP interface to ask; set it (e.g. "127.0.0.1:8080") and restart the daemon`);
  const tokenPath = controlTokenPath(config.manager.stateDir);
  const token = (
    await readFile(tokenPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new InputError(
        e.code === 'ENOENT'
          ? `${tokenPath} does not exist: the daemon makes it when it starts; is peipkg-manager running with this config?`
          : `cannot read ${tokenPath} (${e.code ?? e.message}): retry is for the farm's operator; run it as the user the daemon runs as (or root)`,
      );
    })
  ).trim();
  const base = localBase(config.http.addr);
  let response: Response;
  try {
    response = await fetch(`${base}/api/retry`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(180_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new InputError(`no peipkg-manager answers at ${base} (${cause}); is the daemon running with ${config.path}?`);
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (response.ok) {
    const answer = RetryAnswer.safeParse(body);
    if (answer.success) return answer.data;
    throw new InputError(`${base}/api/retry answered with something that is not a retry result; is that a peipkg-manager?`);
  }
  const error = ErrorAnswer.safeParse(body);
  throw new InputError(error.success ? error.data.error : `${base}/api/retry answered ${response.status}`);
}
