/**
 * The artifact hand-off over HTTP, on the coordinator's `[http].addr`:
 *
 *   PUT  /farm/v1/jobs/<job>/attempts/<attempt>/files/<name>   one package or the build log, streamed
 *   POST /farm/v1/jobs/<job>/attempts/<attempt>/result         JSON: built (with each file's SHA-256) or failed
 *
 * Every request carries `Authorization: Bearer <token>` and `X-Peipkg-Worker: <id>`; the token is the
 * worker's own (`[[worker]].token_file`), compared in constant time: 401 otherwise. A file also
 * carries `X-Peipkg-SHA256` and a Content-Length within the limit (413 before a byte is read).
 * An attempt that no longer holds its job is 409 (`stale`): the worker drops the job.
 */

import express, { type NextFunction, type Request, type Response } from 'express';

import type { Logger } from '../log.js';
import { answerAndClose } from './http.js';
import { Refusal, type Receiver } from './receiver.js';
import { ResultBody, type AttemptRef } from './sink.js';

export const WORKER_HEADER = 'X-Peipkg-Worker';
export const SHA256_HEADER = 'X-Peipkg-SHA256';
const RESULT_MAX_BODY = 256 * 1024;

function refOf(req: Request): AttemptRef {
  return { jobId: String(req.params.job), attempt: String(req.params.attempt), worker: req.get(WORKER_HEADER) ?? '' };
}

export function artifactRouter(receiver: Receiver, log: Logger): express.Router {
  const router = express.Router({ strict: true, caseSensitive: true });

  // Authentication first: nothing about a job is said, and no body is read, for a wrong token.
  router.use((req: Request, _res: Response, next: NextFunction) => {
    const worker = req.get(WORKER_HEADER) ?? '';
    const token = /^Bearer (.+)$/.exec(req.get('Authorization') ?? '')?.[1] ?? '';
    if (worker === '' || token === '' || !receiver.authenticate(worker, token)) {
      log.warn('worker refused: wrong token', { worker, remote: `${req.socket.remoteAddress ?? ''}` });
      return next(new Refusal(401, 'unknown worker or wrong token'));
    }
    next();
  });

  router.put('/jobs/:job/attempts/:attempt/files/:name', (req: Request, res: Response, next: NextFunction) => {
    const size = Number(req.get('Content-Length'));
    const sha256 = (req.get(SHA256_HEADER) ?? '').toLowerCase();
    if (!Number.isSafeInteger(size) || size < 0) return next(new Refusal(411, 'a Content-Length is required'));
    if (!/^[0-9a-f]{64}$/.test(sha256)) return next(new Refusal(400, `${SHA256_HEADER} must be the file's SHA-256 in hex`));
    const name = String(req.params.name);
    receiver
      .receiveFile(refOf(req), name, { name, sha256, size }, req)
      .then(() => res.status(201).json({ stored: name }), next);
  });

  router.post('/jobs/:job/attempts/:attempt/result', express.json({ limit: RESULT_MAX_BODY }), (req: Request, res: Response, next: NextFunction) => {
    const parsed = ResultBody.safeParse(req.body);
    if (!parsed.success) return next(new Refusal(400, `result: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`));
    receiver.result(refOf(req), parsed.data).then((answer) => res.status(200).json(answer), next);
  });

  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- express recognises error handlers by their four parameters
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const refusal = error instanceof Refusal ? error : undefined;
    const status = refusal?.status ?? ((error as { status?: number }).status && (error as { status: number }).status < 500 ? (error as { status: number }).status : 500);
    if (status >= 500) log.error('artifact hand-off failed', { err: (error as Error).message, path: req.path });
    else if (status !== 401) log.warn('artifact refused', { status, err: (error as Error).message, worker: req.get(WORKER_HEADER) ?? '' });
    if (res.headersSent) return void req.socket.destroy();
    const body = { error: status >= 500 ? 'internal error' : (error as Error).message, retry: refusal?.retry ?? status >= 500, stale: refusal?.stale ?? false };
    // The body of a refused upload is not wanted: answer, then close instead of reading it (with
    // time for the sender to read the answer before the close resets it).
    if (req.method === 'PUT' && !req.complete) return answerAndClose(req, status, {}, JSON.stringify(body));
    res.status(status).json(body);
  });
  return router;
}
