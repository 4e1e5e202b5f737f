/**
 * Uploading the repository with rclone (D-21), as its own step behind publishing: never a build
 * failure, retried with back-off, and never in the way of a publish — the state is captured in a
 * snapshot (outgoing.ts) while publishes are held off for a moment, and sent from there.
 *
 * Order, so that readers never see an index naming a missing file: new packages and their
 * sidecars; the keys and the site's root pages; each index; the descriptor last. Each index and
 * the descriptor are replaced whole (temporary name, then move), data before signature; a document
 * whose remote copy is already ours (its signature, or for the archive its bytes) is skipped.
 *
 * Published packages are immutable: a package the remote's index already lists is never sent
 * again, and every package that is sent must first match the signed index (outgoing.ts). A
 * package on the remote that its index does not list yet (left by an upload cut short) is sent
 * again whole. Nothing on the remote is deleted.
 *
 * Rollback guard: the remote's archive index is read on every upload, and a remote whose
 * `index_version` is higher than ours is refused, so a lost or restored `state_dir` cannot overwrite
 * a newer public repository. An empty remote is fine; a remote that cannot be read, or whose index
 * does not parse, is an error, never "empty".
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { z } from 'zod';

import { formatDuration } from '../duration.js';
import type { Logger } from '../log.js';
import { ACTIVE, ARCHIVE, DESCRIPTOR } from '../repo/state.js';
import { statePathOf } from '../repo/urlTemplate.js';
import { checkPackages, readSnapshot, sidecarsOf, takeSnapshot, UploadRefused, type OutgoingState } from './outgoing.js';
import { Rclone } from './rclone.js';

export interface UploadSettings {
  repoDir: string;
  /** Scratch for the snapshot and rclone's file lists (under state_dir). */
  workDir: string;
  remote: string;
  retries: number;
  retryBackoffMs: number;
  /** One attempt, every rclone command in it included. */
  timeoutMs: number;
  /** Stops a running rclone (the drain timeout, a second signal); the copy order keeps the remote consistent. */
  abort: AbortSignal;
}

export interface UploadStatus {
  state: 'idle' | 'running' | 'waiting' | 'failed' | 'disabled';
  last_success?: string;
  last_error?: string;
  attempts: number;
  pending: boolean;
  /** Since when the remote has been behind the local state (an upload was wanted and has not succeeded). */
  behind_since?: string;
}

/**
 * The documents replaced whole, in order; each is followed by its detached signature. The archive
 * goes before active: active is a subset of the archive, old or new, at every moment in between.
 */
const SIGNED_DOCUMENTS = [ARCHIVE, ACTIVE, DESCRIPTOR];

/** Only what the guard and the published set need of the remote's archive index. */
const RemoteArchive = z.object({
  index_version: z.number().int().nonnegative(),
  packages: z.array(z.object({ url: z.string() })),
});

export class Uploader {
  private current: UploadStatus = { state: 'idle', attempts: 0, pending: false };
  private running: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Ends the wait before the next attempt early (`stop`). */
  private wakeRetry: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly settings: UploadSettings,
    private readonly log: Logger,
    /** Held while the snapshot is taken, so that it never mixes two publishes. */
    private readonly exclusive: <T>(work: () => Promise<T>) => Promise<T>,
  ) {
    settings.abort.addEventListener('abort', () => this.wakeRetry?.());
  }

  status(): UploadStatus {
    return { ...this.current };
  }

  /** Why the upload counts as stuck (its last attempt failed, or it gave up), or undefined. */
  degraded(): string | undefined {
    const { state, last_error: error, behind_since: since } = this.current;
    if (state !== 'waiting' && state !== 'failed' && !(state === 'running' && error !== undefined)) return undefined;
    const behind = since ? ` for ${formatDuration(Date.now() - Date.parse(since))}` : '';
    return `upload to ${this.settings.remote} has been failing${behind}${state === 'failed' ? ' and gave up until the next publish or restart' : ''}: ${error ?? 'unknown error'}`;
  }

  /** Asks for an upload; several requests while one runs collapse into one more run. */
  request(): void {
    if (this.stopped) return;
    this.current.pending = true;
    this.current.behind_since ??= new Date().toISOString();
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Waits for a running upload (cut short by `abort`); no new one starts afterwards. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Clearing the timer alone would leave the retry wait pending forever, and `running` with it.
    this.wakeRetry?.();
    await this.running;
  }

  /** Resolves when no upload is running or pending (tests and `--once`). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    while (this.current.pending && !this.stopped) {
      this.current.pending = false;
      await this.withRetries();
    }
  }

  private async withRetries(): Promise<void> {
    for (let attempt = 0; attempt <= this.settings.retries && !this.stopped && !this.settings.abort.aborted; attempt++) {
      this.current.state = 'running';
      this.current.attempts++;
      try {
        await this.once();
        this.current = { state: 'idle', attempts: 0, pending: this.current.pending, last_success: new Date().toISOString() };
        if (this.current.pending) this.current.behind_since = this.current.last_success;
        this.log.info('upload complete', { remote: this.settings.remote });
        return;
      } catch (error) {
        const err = (error as Error).message;
        this.current.last_error = err;
        if (this.settings.abort.aborted) {
          this.current.state = 'idle';
          this.log.warn('upload stopped by shutdown; the next start uploads again', { remote: this.settings.remote });
          return;
        }
        const wait = this.settings.retryBackoffMs * 2 ** attempt;
        const last = attempt === this.settings.retries;
        this.log.warn(last ? 'upload failed; giving up until the next publish or restart' : 'upload failed; retrying', {
          remote: this.settings.remote,
          err,
          attempt: attempt + 1,
          ...(last ? {} : { retry_in_ms: wait }),
        });
        if (last) {
          this.current.state = 'failed';
          return;
        }
        this.current.state = 'waiting';
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          this.retryTimer = setTimeout(resolve, wait);
        });
        this.wakeRetry = undefined;
      }
    }
  }

  /** One attempt, bounded by the attempt timeout as a whole. */
  private async once(): Promise<void> {
    const { repoDir, workDir, remote, timeoutMs, abort } = this.settings;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([abort, deadline]);
    const snapshotDir = join(workDir, 'snapshot');
    await this.exclusive(() => takeSnapshot(repoDir, snapshotDir));
    const outgoing = await readSnapshot(snapshotDir);
    const rclone = new Rclone({ remote, timeoutMs, abort: signal });
    try {
      await this.send(outgoing, rclone);
    } catch (error) {
      if (deadline.aborted && !abort.aborted) throw new Error(`upload attempt timed out after ${formatDuration(timeoutMs)} ([upload].timeout)`);
      throw error;
    }
  }

  private async send(outgoing: OutgoingState, rclone: Rclone): Promise<void> {
    const { repoDir, workDir } = this.settings;
    const remoteFiles = await rclone.listFiles();
    const remoteArchive = remoteFiles.has(ARCHIVE) ? await rclone.read(ARCHIVE) : undefined;
    const published = this.remotePublished(outgoing, rclone, remoteArchive);
    const fresh = outgoing.packages.filter((p) => !published.has(p.path) || !remoteFiles.has(p.path));
    if (fresh.length > 0) {
      await checkPackages(repoDir, fresh);
      const listed = new Set<string>();
      for (const p of fresh) for (const path of [p.path, ...(await sidecarsOf(repoDir, p))]) listed.add(path);
      const list = join(workDir, 'packages.list');
      await writeFile(list, `${[...listed].join('\n')}\n`);
      await rclone.copyListed(`rclone copy (${fresh.length} package(s) and their sidecars)`, repoDir, list);
    }
    if (outgoing.siteAndKeys.length > 0) {
      const list = join(workDir, 'site.list');
      await writeFile(list, `${outgoing.siteAndKeys.join('\n')}\n`);
      await rclone.copyListed('rclone copy (keys and site)', outgoing.dir, list);
    }
    for (const doc of SIGNED_DOCUMENTS) {
      // Data goes before its signature, so a remote signature equal to ours means the data arrived
      // too; the archive, read anyway, is also compared byte for byte (a hand-edited remote copy).
      const signed = remoteFiles.has(doc) && remoteFiles.has(`${doc}.sig`) && (await rclone.read(`${doc}.sig`)) === (await readFile(join(outgoing.dir, `${doc}.sig`), 'utf8'));
      if (signed && (doc !== ARCHIVE || remoteArchive === (await readFile(join(outgoing.dir, doc), 'utf8')))) continue;
      await rclone.replace(join(outgoing.dir, doc), doc);
      await rclone.replace(join(outgoing.dir, `${doc}.sig`), `${doc}.sig`);
    }
  }

  /** The rollback guard, then the state paths the remote's archive index lists (its published packages). */
  private remotePublished(outgoing: OutgoingState, rclone: Rclone, remoteArchive: string | undefined): Set<string> {
    if (remoteArchive === undefined) return new Set();
    let parsed;
    try {
      parsed = RemoteArchive.safeParse(JSON.parse(remoteArchive));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) {
      throw new UploadRefused(
        `the remote's ${ARCHIVE} (${rclone.path(ARCHIVE)}) is not a readable index, so the rollback guard cannot compare versions; ` +
          'refusing to overwrite it — inspect the remote, and remove or restore that file by hand',
      );
    }
    const remoteVersion = parsed.data.index_version;
    if (remoteVersion > outgoing.indexVersion) {
      throw new UploadRefused(
        `the remote's index_version ${remoteVersion} is newer than the local ${outgoing.indexVersion}; refusing to overwrite it ` +
          '(was state_dir lost or restored from an old backup? restore it, or publish past the remote first)',
      );
    }
    const published = new Set<string>();
    for (const p of parsed.data.packages) {
      const path = statePathOf(p.url);
      if (path !== undefined) published.add(path);
    }
    return published;
  }
}
