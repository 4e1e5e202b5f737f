/**
 * The coordinator's side of the artifact hand-off. A worker's files arrive under
 * `state_dir/incoming/<job>/<attempt>/` — streamed to disk with their SHA-256 checked, never held
 * in memory — and only for an attempt that holds its job's lock right now: a zombie worker whose job
 * was handed to another is refused (`stale`), whatever it sends. The result then goes to the farm
 * (`accept`), which verifies, signs and publishes; the same attempt delivering twice (a retry after
 * a lost answer) gets the first answer again instead of a second publish.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { parsePackageFileName } from '../format/names.js';
import type { Logger } from '../log.js';
import { removeTree, sha256File } from '../native.js';
import { parseJobId } from './payload.js';
import { workerOfAttempt, type Registry, type RedisQueue } from './redisQueue.js';
import { DeliveryError, type AttemptRef, type FileFact, type ResultAnswer, type ResultBody } from './sink.js';
import type { Job } from 'bullmq';

/** A build log is capped by BuildLog at 16 + 4 MiB plus a note; anything larger is not one. */
export const MAX_LOG_BYTES = 32 * 1024 ** 2;
export const LOG_NAME = 'build.log';

/** An attempt's delivery, as the farm receives it. */
export interface Delivery {
  ref: AttemptRef;
  job: Job;
  recipe: string;
  version: string;
  replica: number;
  body: ResultBody;
  /** Where the attempt's files are (`<name>` for each package, and `build.log`). */
  dir: string;
}

export interface ReceiverDeps {
  incomingDir: string;
  queue: RedisQueue;
  registry: Registry;
  log: Logger;
  maxSize: number;
  /** Worker id → token (bytes); re-read on SIGHUP so a removed `[[worker]]` is revoked. */
  tokens(): ReadonlyMap<string, Buffer>;
  accept(delivery: Delivery): Promise<ResultAnswer>;
}

/** A refusal with its HTTP status. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retry = false,
    readonly stale = false,
  ) {
    super(message);
  }
}

/** Compared against when the worker is unknown, so that its answer takes as long as a wrong token's. */
const NO_TOKEN = Buffer.from('no such worker');
const digestOf = (bytes: Buffer | string): Buffer => createHash('sha256').update(bytes).digest();

export class Receiver {
  private readonly answers = new Map<string, Promise<ResultAnswer>>();

  constructor(private readonly deps: ReceiverDeps) {}

  /** Constant-time: both sides are hashed first, so neither length nor content leaks through timing. */
  authenticate(worker: string, token: string): boolean {
    const expected = this.deps.tokens().get(worker);
    const ok = timingSafeEqual(digestOf(token), digestOf(expected ?? NO_TOKEN));
    return ok && expected !== undefined;
  }

  /** The job `ref.jobId`, if `ref.attempt` holds its lock now; else a Refusal (409 stale, or 404). */
  private async currentJob(ref: AttemptRef): Promise<{ job: Job; recipe: string; version: string; replica: number }> {
    if (workerOfAttempt(ref.attempt) !== ref.worker) throw new Refusal(403, `attempt ${ref.attempt} is not one of worker ${ref.worker}'s`);
    const id = parseJobId(ref.jobId);
    if (!id) throw new Refusal(404, `no job ${ref.jobId}`);
    const found = await this.deps.queue.findJob(ref.jobId);
    if (!found) throw new Refusal(409, `job ${ref.jobId} is no longer queued (finished or removed)`, false, true);
    const holder = await this.deps.registry.lockHolder(found.queue, ref.jobId);
    if (holder !== ref.attempt) throw new Refusal(409, `attempt ${ref.attempt} no longer holds job ${ref.jobId}${holder ? ' (another attempt does)' : ''}`, false, true);
    return { job: found.job, ...id };
  }

  private attemptDir(ref: AttemptRef): string {
    return join(this.deps.incomingDir, encodeURIComponent(ref.jobId), ref.attempt);
  }

  /** The limit for a file called `name`, or a Refusal for a name no worker sends. */
  private limitFor(name: string): number {
    if (name === LOG_NAME) return MAX_LOG_BYTES;
    if (!name.endsWith('.peipkg') || !parsePackageFileName(name) || name.includes('/')) throw new Refusal(400, `"${name}" is not a package file name`);
    return this.deps.maxSize;
  }

  /** Streams `body` to the attempt's directory, checking size and SHA-256 as it arrives. */
  async receiveFile(ref: AttemptRef, name: string, fact: FileFact, body: Readable): Promise<void> {
    const limit = this.limitFor(name);
    if (fact.size > limit) throw new Refusal(413, `${name}: ${fact.size} bytes is more than the ${limit}-byte limit ([queue].artifact_max_size)`);
    await this.currentJob(ref);
    const dir = this.attemptDir(ref);
    await mkdir(dir, { recursive: true });
    const part = join(dir, `${name}.part`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > fact.size) throw new Refusal(400, `${name}: more bytes than the ${fact.size} announced`);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(part),
      );
    } catch (error) {
      await rm(part, { force: true });
      throw error instanceof Refusal ? error : new Refusal(400, `${name}: upload cut short (${(error as Error).message})`, true);
    }
    const sha256 = hash.digest('hex');
    if (size !== fact.size || sha256 !== fact.sha256) {
      await rm(part, { force: true });
      throw new Refusal(422, `${name}: received ${size} bytes with SHA-256 ${sha256}, but the worker announced ${fact.size} bytes with ${fact.sha256}; send it again`, true);
    }
    await rename(part, join(dir, name));
  }

  /** The coordinator's own builds hand their files over by path. */
  async receiveLocalFile(ref: AttemptRef, name: string, path: string, fact: FileFact): Promise<void> {
    this.limitFor(name);
    await this.currentJob(ref);
    const dir = this.attemptDir(ref);
    await mkdir(dir, { recursive: true });
    const target = join(dir, name);
    await rm(target, { force: true });
    // A link, not a move: a delivery that is retried still finds its file.
    await link(path, target).catch(() => copyFile(path, target));
    const got = await sha256File(target);
    if (got.sha256 !== fact.sha256) throw new Refusal(422, `${name}: SHA-256 ${got.sha256} differs from ${fact.sha256}`, true);
  }

  /** Takes an attempt's result; delivering the same attempt again returns the first answer. */
  result(ref: AttemptRef, body: ResultBody): Promise<ResultAnswer> {
    const known = this.answers.get(ref.attempt);
    if (known) return known;
    const answer = this.accept(ref, body);
    this.answers.set(ref.attempt, answer);
    // Keep answers for a while: a worker that lost one asks again within its retry back-off.
    void answer.finally(() => setTimeout(() => this.answers.delete(ref.attempt), 60 * 60_000).unref()).catch(() => undefined);
    answer.catch(() => this.answers.delete(ref.attempt));
    return answer;
  }

  private async accept(ref: AttemptRef, body: ResultBody): Promise<ResultAnswer> {
    const { job, recipe, version, replica } = await this.currentJob(ref);
    const dir = this.attemptDir(ref);
    if (body.outcome === 'built') {
      for (const f of body.files) {
        this.limitFor(f.name);
        const info = await stat(join(dir, f.name)).catch(() => undefined);
        if (!info?.isFile() || info.size !== f.size) throw new Refusal(400, `${f.name} was not received; send the files before the result`, true);
      }
    }
    try {
      return await this.deps.accept({ ref, job, recipe, version, replica, body, dir });
    } finally {
      await removeTree(dir);
    }
  }

  /** Empties the incoming area (start-up: whatever is there belongs to attempts of an earlier run). */
  async reset(): Promise<void> {
    await removeTree(this.deps.incomingDir);
    await mkdir(this.deps.incomingDir, { recursive: true });
  }
}

/** Turns a Refusal into what the worker's sink throws (for the coordinator's own builds). */
export function asDelivery(error: unknown): DeliveryError {
  if (error instanceof Refusal) return new DeliveryError(error.message, error.retry, error.stale);
  return new DeliveryError((error as Error).message, true);
}
