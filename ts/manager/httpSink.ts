/**
 * A remote worker's delivery to the coordinator over HTTP (artifactHttp.ts): files streamed from
 * disk with their SHA-256, then the result. Network errors and 5xx are retryable (the coordinator
 * may be restarting); 409 means the attempt lost its job; other 4xx say what is wrong.
 */

import { createReadStream } from 'node:fs';
import { request } from 'node:http';
import { request as requestTls } from 'node:https';

import { SHA256_HEADER, WORKER_HEADER } from './artifactHttp.js';
import { DeliveryError, ResultAnswer, type AttemptRef, type FileFact, type ResultBody, type ResultSink } from './sink.js';

/** A request that makes no progress for this long is abandoned (and retried). */
const IDLE_TIMEOUT_MS = 60_000;
/** Verifying, signing and publishing a large package takes a while: the result's answer may be slow. */
const RESULT_TIMEOUT_MS = 30 * 60_000;

interface Answer {
  status: number;
  body: string;
}

export class HttpSink implements ResultSink {
  constructor(
    private readonly coordinator: string,
    private readonly token: string,
  ) {}

  private url(ref: AttemptRef, tail: string): URL {
    return new URL(`${this.coordinator}/farm/v1/jobs/${encodeURIComponent(ref.jobId)}/attempts/${encodeURIComponent(ref.attempt)}/${tail}`);
  }

  private send(url: URL, method: string, headers: Record<string, string>, body: (req: NodeJS.WritableStream) => void, timeoutMs: number): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? requestTls : request)(url, { method, headers, timeout: IDLE_TIMEOUT_MS });
      const overall = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs);
      req.on('timeout', () => req.destroy(new Error(`no progress for ${IDLE_TIMEOUT_MS / 1000}s`)));
      req.on('error', (error) => {
        clearTimeout(overall);
        reject(new DeliveryError(`${method} ${url.pathname}: ${error.message}`, true));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(overall);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (error) => reject(new DeliveryError(error.message, true)));
      });
      body(req);
    });
  }

  private check(answer: Answer, what: string): void {
    if (answer.status < 300) return;
    let message = answer.body;
    let retry = answer.status >= 500;
    try {
      const parsed = JSON.parse(answer.body) as { error?: unknown; retry?: unknown };
      if (typeof parsed.error === 'string') message = parsed.error;
      if (typeof parsed.retry === 'boolean') retry = parsed.retry;
    } catch {
      // not JSON: keep the text
    }
    throw new DeliveryError(`${what}: ${answer.status} ${message}`, retry || answer.status === 503, answer.status === 409);
  }

  private headers(ref: AttemptRef): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, [WORKER_HEADER]: ref.worker };
  }

  async sendFile(ref: AttemptRef, name: string, path: string, fact: FileFact): Promise<void> {
    const answer = await this.send(
      this.url(ref, `files/${encodeURIComponent(name)}`),
      'PUT',
      { ...this.headers(ref), 'Content-Type': 'application/octet-stream', 'Content-Length': String(fact.size), [SHA256_HEADER]: fact.sha256 },
      (req) => {
        const file = createReadStream(path);
        file.on('error', (error) => (req as unknown as { destroy(e: Error): void }).destroy(error));
        file.pipe(req);
      },
      RESULT_TIMEOUT_MS,
    );
    this.check(answer, `send ${name}`);
  }

  async sendResult(ref: AttemptRef, body: ResultBody): Promise<ResultAnswer> {
    const text = JSON.stringify(body);
    const answer = await this.send(
      this.url(ref, 'result'),
      'POST',
      { ...this.headers(ref), 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) },
      (req) => req.end(text),
      RESULT_TIMEOUT_MS,
    );
    this.check(answer, 'send result');
    const parsed = ResultAnswer.safeParse(JSON.parse(answer.body));
    if (!parsed.success) throw new DeliveryError(`the coordinator's answer is not understood: ${answer.body.slice(0, 200)}`, true);
    return parsed.data;
  }
}
