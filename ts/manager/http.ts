/**
 * The manager's HTTP interface (`recipes-and-farm.md` §8.10, D-22, D-23), built from its
 * dependencies so tests can start it on 127.0.0.1:0:
 *
 *   ANY  /healthz            200 "ok" — or 503 with the reason: stalled, repository damaged, upload failing
 *   ANY  /status             the contract's JSON, plus running jobs, queue, skipped recipes, history
 *   GET  /metrics            Prometheus text (metrics.ts)
 *   GET  /                   the dashboard (dashboard/), and its assets under /dashboard/
 *   GET  /builds             the history the manager keeps, newest first (JSON; ?recipe= ?state= ?limit=)
 *   GET  /builds/<id>/log    one build's log (text/plain)
 *   GET  /builds/<id>/log/stream   the same as Server-Sent Events, live while the build runs (logStream.ts)
 *   POST /api/retry          {recipe, version?} with `Authorization: Bearer <state_dir/control.token>`:
 *                            clears the back-off and polls the recipe now (control.ts)
 *   GET  /repo/…             the repository's files and browse site, read-only
 *   POST /webhooks/github    HMAC-SHA256 over the body as sent (X-Hub-Signature-256), 401 when missing
 *                            or wrong; `ping` → 200 "pong"; a push (or creation) of a tag polls
 *                            every opted-in recipe whose upstream is that repository, at once
 *   PUT/POST /farm/v1/…       the artifact hand-off from workers (artifactHttp.ts), with the Redis backend
 *
 * A webhook body is unauthenticated until its HMAC checks, so reading one is bounded before
 * anything is believed: a Content-Encoding is refused (415; GitHub never compresses, and nothing
 * is inflated), a Content-Length over `[http].webhook_max_body` is refused at once (413), a body
 * that grows past it is cut off (413), one that takes longer than 10 s is cut off (408), and at
 * most 16 are read at once (503 with Retry-After). A refusal before the whole body is read closes
 * the connection (the sender gets 3 s to read the answer first: on a loaded machine one second was
 * sometimes too little, and the reset took the unread answer with it). The HMAC is computed as the
 * bytes arrive; at most `webhook_max_body` × 16 bytes are held.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';

import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';

import type { Logger } from '../log.js';
import { authorised, RetryRequest, type RetryAnswer } from './control.js';
import { dashboardFiles } from './dashboard/dashboard.js';
import { buildLogPath } from './history.js';
import { streamLog } from './logStream.js';
import { formatSize } from '../size.js';
import { DEFAULT_WEBHOOK_MAX_BODY, type ListenAddress } from './config.js';

/** A webhook body not received within this long is refused (408): a slow sender holds no slot for long. */
export const WEBHOOK_BODY_TIMEOUT_MS = 10_000;
/** Unauthenticated webhook bodies read at once; more are refused (503) without being read. */
export const WEBHOOK_MAX_UNAUTHENTICATED = 16;
/** Live logs watched at once (each polls its file). */
const MAX_LOG_STREAMS = 64;
/** Seconds a refused (503) sender is asked to wait. */
const RETRY_AFTER_S = 5;
/** How long a refused sender has to read its answer before the connection is closed under it. */
const LINGER_MS = 3_000;

export interface HttpDeps {
  status(): Promise<Record<string, unknown>>;
  /** The history, newest first, as `/status` shows it. */
  builds?: () => Array<Record<string, unknown>>;
  /** Build `id`'s state (undefined: no such build), for the live log stream. */
  buildState?: (id: string) => string | undefined;
  /** The operator's token and what a retry does; absent: no operator actions. */
  control?: { token: Buffer; retry(request: RetryRequest): Promise<RetryAnswer | { status: number; code: string; error: string }> };
  /** The repository directory, served read-only under /repo/. */
  repoDir?: string;
  /** What is wrong (503 with this text), or undefined when healthy. */
  unhealthy(): string | undefined;
  /** The log file of build `id`, when `id` is a known build. */
  buildLog(id: string): string | undefined;
  /** Absent: webhooks are not enabled (no secret configured). */
  webhookSecret: Buffer | undefined;
  /** Polls the opted-in recipes whose upstream is one of `urls`; says which, and which watch it without opting in. */
  onRepositoryPush(urls: string[]): PushOutcome;
  log: Logger;
  /** `[http].webhook_max_body` (default 1 MiB). */
  webhookMaxBody?: number;
  /** The artifact hand-off from workers (artifactHttp.ts), with the Redis backend. */
  artifacts?: express.Router;
  /** `GET /metrics`: the Prometheus text and its content type. */
  metrics?: () => Promise<{ contentType: string; body: string }>;
  /** Counts each webhook delivery by how it was answered (metrics). */
  onWebhook?: (outcome: string) => void;
  /** Tests shorten these; the daemon keeps the defaults above. */
  webhookBodyTimeoutMs?: number;
  webhookMaxUnauthenticated?: number;
}

/** What a push did: the recipes polled, and those that watch the repository but did not opt into webhooks. */
export interface PushOutcome {
  triggered: string[];
  optedOut: string[];
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

const BuildsQuery = z.object({
  recipe: z.string().optional(),
  state: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1_000),
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

/** The 32 bytes of a well-formed `sha256=<64 hex>` header, or undefined. */
function parseSignature(header: string | undefined): Buffer | undefined {
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header ?? '');
  return m ? Buffer.from(m[1]!, 'hex') : undefined;
}

type BodyResult = { kind: 'ok'; body: Buffer; digest: Buffer } | { kind: 'too_large' } | { kind: 'timeout' } | { kind: 'aborted' };

/**
 * Reads `req`'s body as sent, no more than `limit` bytes and for no longer than `timeoutMs`,
 * feeding each chunk to the HMAC as it arrives. On any outcome but `ok` the chunks are dropped and
 * the request is paused: the caller answers and closes the connection.
 */
function readSignedBody(req: IncomingMessage, secret: Buffer, limit: number, timeoutMs: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const hmac = createHmac('sha256', secret);
    let chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
      if (result.kind !== 'ok') {
        chunks = [];
        req.pause();
      }
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return finish({ kind: 'too_large' });
      hmac.update(chunk);
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ kind: 'ok', body: Buffer.concat(chunks, size), digest: hmac.digest() });
    // `close` before `end`: the sender went away mid-body.
    const onAbort = (): void => finish({ kind: 'aborted' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onAbort);
    req.once('close', onAbort);
  });
}

/**
 * Answers on the socket itself and half-closes it: no more is read, and the connection is closed
 * (reset, if the sender is still sending) LINGER_MS later, or as soon as the sender closes its end.
 * Node's own `Connection: close` closes the socket the moment the answer is flushed, which, with the
 * sender's unread bytes still queued, is a reset that loses the answer on its way (a legitimate
 * sender refused with 503 or 413 would see only "connection reset").
 */
export function answerAndClose(req: IncomingMessage, status: number, headers: Record<string, string>, body: string): void {
  const socket = req.socket;
  req.pause();
  if (socket.destroyed) return;
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    '',
  ].join('\r\n');
  socket.end(head + body);
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

const remoteOf = (req: IncomingMessage): string => `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? ''}`;

interface HttpErrorOptions {
  /** Close the connection after answering: the body was not (all) read, and is not wanted. */
  close?: boolean;
  headers?: Record<string, string>;
  /** A sender's mistake worth a warning (with its address) in the log. */
  warn?: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: HttpErrorOptions = {},
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

  app.get('/metrics', (_req, res, next) => {
    if (!deps.metrics) return next(new HttpError(404, 'not_found', '404 page not found'));
    deps.metrics().then(({ contentType, body }) => res.status(200).type(contentType).send(body), next);
  });

  let streams = 0;
  const dashboard = new Map(dashboardFiles().map((f) => [f.path, f]));
  app.get(['/', '/dashboard/:file'], (req, res, next) => {
    const file = dashboard.get(req.path === '/' ? 'index.html' : `dashboard/${String(req.params.file)}`);
    if (!file) return next(new HttpError(404, 'not_found', '404 page not found'));
    // Everything the page needs comes from this server: no inline script, nothing from elsewhere.
    res.set('Content-Security-Policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Cache-Control', 'no-cache');
    res.status(200).type(file.type).send(file.content);
  });

  app.get('/builds', (req, res, next) => {
    if (!deps.builds) return next(new HttpError(404, 'not_found', '404 page not found'));
    const query = BuildsQuery.safeParse(req.query);
    if (!query.success) return next(new HttpError(400, 'bad_query', `bad query: ${query.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`));
    const { recipe, state, limit } = query.data;
    const builds = deps.builds().filter((b) => (recipe === undefined || b.recipe === recipe) && (state === undefined || b.state === state));
    res.status(200).json({ builds: builds.slice(0, limit) });
  });

  app.get('/builds/:id/log/stream', (req, res, next) => {
    const id = String(req.params.id);
    const path = deps.buildLog(id);
    const state = deps.buildState;
    if (!path || !state) return next(new HttpError(404, 'unknown_build', `no build ${id}`));
    if (streams >= MAX_LOG_STREAMS) return next(new HttpError(503, 'busy', 'too many live logs are being watched; try again later', { headers: { 'Retry-After': String(RETRY_AFTER_S) } }));
    streams += 1;
    streamLog(req, res, { path, state: () => state(id), fullLogUrl: buildLogPath(id) })
      .catch((error: unknown) => deps.log.warn('log stream failed', { build: id, err: (error as Error).message }))
      .finally(() => (streams -= 1));
  });

  app.post('/api/retry', express.json({ limit: '16kb' }), (req, res, next) => {
    const control = deps.control;
    if (!control) return next(new HttpError(404, 'not_found', '404 page not found'));
    if (!authorised(req.get('Authorization'), control.token)) {
      deps.log.warn('retry refused: missing or wrong token', { remote: remoteOf(req) });
      return next(new HttpError(401, 'unauthorised', 'a retry needs the operator token: Authorization: Bearer <the contents of state_dir/control.token>'));
    }
    const body = RetryRequest.safeParse(req.body);
    if (!body.success) return next(new HttpError(400, 'bad_request', `expected {"recipe": "<id>", "version": "<version>" (optional)}: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`));
    control.retry(body.data).then((answer) => {
      if ('status' in answer) return next(new HttpError(answer.status, answer.code, answer.error));
      res.status(200).json(answer);
    }, next);
  });
  app.all('/api/retry', (_req, _res, next) => next(new HttpError(405, 'method_not_allowed', 'method not allowed')));

  if (deps.repoDir) {
    app.use('/repo', express.static(deps.repoDir, { dotfiles: 'deny', index: ['index.html'], redirect: true, fallthrough: true }));
  }

  app.get('/builds/:id/log', (req, res, next) => {
    const path = deps.buildLog(String(req.params.id));
    if (!path) return next(new HttpError(404, 'unknown_build', `no build ${String(req.params.id)}`));
    res.type('text/plain');
    createReadStream(path)
      .on('error', () => res.status(200).end(''))
      .pipe(res);
  });

  const maxBody = deps.webhookMaxBody ?? DEFAULT_WEBHOOK_MAX_BODY;
  const bodyTimeoutMs = deps.webhookBodyTimeoutMs ?? WEBHOOK_BODY_TIMEOUT_MS;
  const maxUnauthenticated = deps.webhookMaxUnauthenticated ?? WEBHOOK_MAX_UNAUTHENTICATED;
  const tooLarge = (): HttpError => new HttpError(413, 'too_large', `body larger than ${formatSize(maxBody)}`, { close: true, warn: true });
  let unauthenticated = 0;

  app.post('/webhooks/github', (req: Request, res: Response, next: NextFunction) => {
    // Everything that can be decided from the headers is decided before a byte of the body is read.
    const secret = deps.webhookSecret;
    if (!secret) return next(new HttpError(404, 'webhooks_disabled', 'webhooks are not enabled on this farm', { close: true }));
    const encoding = (req.get('Content-Encoding') ?? '').trim().toLowerCase();
    if (encoding !== '' && encoding !== 'identity') {
      return next(new HttpError(415, 'unsupported_encoding', `Content-Encoding ${JSON.stringify(encoding)} not accepted (send the body as GitHub does, uncompressed)`, { close: true, warn: true }));
    }
    const declared = req.get('Content-Length');
    if (declared !== undefined && Number(declared) > maxBody) return next(tooLarge());
    const signature = parseSignature(req.get('X-Hub-Signature-256'));
    if (!signature) {
      deps.log.warn('webhook signature invalid', { remote: remoteOf(req) });
      return next(new HttpError(401, 'invalid_signature', 'invalid signature', { close: true }));
    }
    if (unauthenticated >= maxUnauthenticated) {
      return next(new HttpError(503, 'busy', 'too many webhook bodies in flight; try again later', { close: true, warn: true, headers: { 'Retry-After': String(RETRY_AFTER_S) } }));
    }
    unauthenticated += 1;
    readSignedBody(req, secret, maxBody, bodyTimeoutMs)
      .finally(() => (unauthenticated -= 1))
      .then((result) => {
        if (result.kind === 'aborted') {
          deps.onWebhook?.('aborted');
          deps.log.warn('webhook body abandoned by the sender', { remote: remoteOf(req) });
          return void req.socket.destroy();
        }
        if (result.kind === 'too_large') return next(tooLarge());
        if (result.kind === 'timeout') return next(new HttpError(408, 'body_timeout', `body not received within ${bodyTimeoutMs / 1000}s`, { close: true, warn: true }));
        if (!timingSafeEqual(result.digest, signature)) {
          deps.log.warn('webhook signature invalid', { remote: remoteOf(req) });
          return next(new HttpError(401, 'invalid_signature', 'invalid signature'));
        }
        handleEvent(req, res, next, result.body);
      })
      .catch(next);
  });

  /** An authenticated delivery. */
  const handleEvent = (req: Request, res: Response, next: NextFunction, body: Buffer): void => {
    const event = req.get('X-GitHub-Event') ?? '';
    if (event === 'ping') {
      deps.onWebhook?.('ping');
      return void res.status(200).type('text/plain').send('pong\n');
    }
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
    if (!isTag) {
      deps.onWebhook?.('not_a_tag');
      return void res.status(200).json({ triggered: [], reason: 'not a tag push' });
    }
    const urls = [repository?.html_url, repository?.clone_url, repository?.ssh_url, repository?.git_url].filter((u): u is string => !!u);
    const { triggered, optedOut } = deps.onRepositoryPush(urls);
    if (triggered.length === 0) {
      deps.onWebhook?.('no_recipe');
      deps.log.info('webhook for unrecognised or opted-out repo', { html_url: repository?.html_url ?? '', opted_out: optedOut.join(',') });
      // The sender (and GitHub's delivery log) is told why nothing happened.
      const reason =
        optedOut.length > 0
          ? optedOut.length === 1
            ? `recipe ${optedOut[0]!} watches this repository but does not set [watch] github_webhook = true; it is polled on its interval`
            : `recipes ${optedOut.join(', ')} watch this repository but do not set [watch] github_webhook = true; they are polled on their interval`
          : 'no recipe watches this repository';
      return void res.status(200).json({ triggered: [], reason });
    }
    deps.onWebhook?.('triggered');
    for (const recipe of triggered) deps.log.info('webhook accepted, triggering immediate poll', { recipe });
    res.status(200).json({ triggered });
  };
  app.all('/webhooks/github', (_req, _res, next) => next(new HttpError(405, 'method_not_allowed', 'method not allowed')));

  if (deps.artifacts) app.use('/farm/v1', deps.artifacts);

  app.use((_req, _res, next) => next(new HttpError(404, 'not_found', '404 page not found')));

  // One place decides statuses: typed errors map to theirs, as do the client errors express raises
  // itself (a malformed URL: 400); anything else is a 500. A sender's mistake is a warning with its
  // address, never a stack trace.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- express recognises error handlers by their four parameters
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = error instanceof HttpError ? error.status : (error as { status?: unknown }).status;
    const clientError = typeof status === 'number' && status >= 400 && status < 500;
    if (req.path === '/webhooks/github') deps.onWebhook?.(error instanceof HttpError ? error.code : clientError ? 'bad_request' : 'error');
    if (res.headersSent) return void req.socket.destroy();
    if (error instanceof HttpError) {
      if (error.options.warn) deps.log.warn('webhook refused', { code: error.code, status: error.status, remote: remoteOf(req) });
      const body = JSON.stringify({ error: error.message, code: error.code });
      if (error.options.close) return answerAndClose(req, error.status, error.options.headers ?? {}, body);
      if (error.options.headers) res.set(error.options.headers);
      return void res.status(error.status).json({ error: error.message, code: error.code });
    }
    if (clientError) {
      deps.log.warn('bad request', { status, err: (error as Error).message, remote: remoteOf(req) });
      return void res.status(status).json({ error: (error as Error).message, code: 'bad_request' });
    }
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
