/**
 * The manager's HTTP interface (`recipes-and-farm.md` §8.10, D-22, D-23), built from its
 * dependencies so tests can start it on 127.0.0.1:0:
 *
 *   ANY  /healthz            200 "ok" — or 503 with the reason: stalled, repository damaged, upload failing
 *   ANY  /status             the contract's JSON, plus running jobs, queue, skipped recipes, history
 *   GET  /builds/<id>/log    one build's log (text/plain)
 *   POST /webhooks/github    HMAC-SHA256 over the raw body (X-Hub-Signature-256), 401 when missing
 *                            or wrong; `ping` → 200 "pong"; a push (or creation) of a tag polls
 *                            every opted-in recipe whose upstream is that repository, at once
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Server } from 'node:http';

import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';

import type { Logger } from '../log.js';
import type { ListenAddress } from './config.js';

export const MAX_WEBHOOK_BODY = 16 * 1024 * 1024;

export interface HttpDeps {
  status(): Promise<Record<string, unknown>>;
  /** What is wrong (503 with this text), or undefined when healthy. */
  unhealthy(): string | undefined;
  /** The log file of build `id`, when `id` is a known build. */
  buildLog(id: string): string | undefined;
  /** Absent: webhooks are not enabled (no secret configured). */
  webhookSecret: Buffer | undefined;
  /** Polls the opted-in recipes whose upstream is one of `urls`; returns their ids. */
  onRepositoryPush(urls: string[]): string[];
  log: Logger;
}

/** Only what we use of GitHub's payload; everything else in it is ignored. */
const WebhookBody = z.object({
  ref: z.string().optional(),
  ref_type: z.string().optional(),
  repository: z
    .object({
      html_url: z.string().optional(),
      clone_url: z.string().optional(),
      ssh_url: z.string().optional(),
      git_url: z.string().optional(),
    })
    .optional(),
});

/** One spelling per repository: `github.com/owner/repo` from https, ssh, scp-like or git URLs; paths as given. */
export function normaliseRepoUrl(url: string): string {
  let u = url.trim().toLowerCase();
  u = u.replace(/^(?:https?|git|ssh|git\+ssh):\/\/(?:[^@/]+@)?/, '');
  u = u.replace(/^[^@/:]+@([^:/]+):/, '$1/'); // git@host:owner/repo
  u = u.replace(/^file:\/\//, '');
  u = u.replace(/\/$/, '').replace(/\.git$/, '');
  return u;
}

function signatureValid(secret: Buffer, body: Buffer, header: string | undefined): boolean {
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createHttpApp(deps: HttpDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Exact paths only (§8.10): `/status/` and `/STATUS` are 404, as in the reference.
  app.enable('strict routing');
  app.enable('case sensitive routing');

  // Any method, as the reference (§8.10.1–8.10.2).
  app.all('/healthz', (_req, res) => {
    const problem = deps.unhealthy();
    res.status(problem ? 503 : 200).type('text/plain').send(problem ? `${problem}\n` : 'ok\n');
  });

  app.all('/status', (_req, res, next) => {
    deps.status().then((doc) => res.status(200).type('application/json').send(`${JSON.stringify(doc, null, 2)}\n`), next);
  });

  app.get('/builds/:id/log', (req, res, next) => {
    const path = deps.buildLog(String(req.params.id));
    if (!path) return next(new HttpError(404, 'unknown_build', `no build ${String(req.params.id)}`));
    res.type('text/plain');
    createReadStream(path)
      .on('error', () => res.status(200).end(''))
      .pipe(res);
  });

  const raw = express.raw({ type: () => true, limit: MAX_WEBHOOK_BODY });
  app.post('/webhooks/github', raw, (req: Request, res: Response, next: NextFunction) => {
    if (!deps.webhookSecret) return next(new HttpError(404, 'webhooks_disabled', 'webhooks are not enabled on this farm'));
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!signatureValid(deps.webhookSecret, body, req.get('X-Hub-Signature-256'))) {
      deps.log.warn('webhook signature invalid', { remote: `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}` });
      return next(new HttpError(401, 'invalid_signature', 'invalid signature'));
    }
    const event = req.get('X-GitHub-Event') ?? '';
    if (event === 'ping') return void res.status(200).type('text/plain').send('pong\n');
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return next(new HttpError(400, 'bad_json', 'parse json'));
    }
    const parsed = WebhookBody.safeParse(json);
    if (!parsed.success || typeof json !== 'object' || json === null) return next(new HttpError(400, 'bad_json', 'parse json'));
    const { ref, ref_type: refType, repository } = parsed.data;
    const isTag = (event === 'push' && ref?.startsWith('refs/tags/')) || (event === 'create' && refType === 'tag');
    if (!isTag) return void res.status(200).type('text/plain').send('ignored: not a tag push\n');
    const urls = [repository?.html_url, repository?.clone_url, repository?.ssh_url, repository?.git_url].filter((u): u is string => !!u);
    const recipes = deps.onRepositoryPush(urls);
    if (recipes.length === 0) {
      deps.log.info('webhook for unrecognised or opted-out repo', { html_url: repository?.html_url ?? '' });
      return void res.status(200).end();
    }
    for (const recipe of recipes) deps.log.info('webhook accepted, triggering immediate poll', { recipe });
    res.status(200).end();
  });
  app.all('/webhooks/github', (_req, _res, next) => next(new HttpError(405, 'method_not_allowed', 'method not allowed')));

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', '404 page not found')));

  // One place decides statuses: typed errors map to theirs; a too-large body is 413; anything else is a 500.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- express recognises error handlers by their four parameters
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof HttpError) return void res.status(error.status).json({ error: error.message, code: error.code });
    const status = (error as { status?: number }).status;
    if (status === 413) return void res.status(413).json({ error: `body larger than ${MAX_WEBHOOK_BODY} bytes`, code: 'too_large' });
    deps.log.error('http handler failed', { err: (error as Error).message });
    res.status(500).json({ error: 'internal error', code: 'internal' });
  });
  return app;
}

/** Listens on `addr` (port 0 picks a free one); resolves to the server and its actual port. */
export function listen(app: express.Express, addr: ListenAddress): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(addr.port, addr.host ?? '0.0.0.0');
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : addr.port });
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
  });
}
