/**
 * Uploading the repository with rclone (D-21), as its own step after publishing: never a build
 * failure, retried with back-off, and ordered so readers never see an index that points at missing
 * files — packages, keys and the site first, then `index/`, then `repo.json` last; temporary
 * `*.tmp-*` entries are never uploaded. Nothing on the remote is deleted.
 *
 * Rollback guard: before copying, the remote's `index/archive.json` is read; a remote whose
 * `index_version` is higher than ours is refused, so a lost or restored `state_dir` cannot
 * overwrite a newer public repository. An empty remote is fine.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { execa } from 'execa';

import type { Logger } from '../log.js';
import { runStep } from './subprocess.js';

export interface UploadSettings {
  repoDir: string;
  remote: string;
  retries: number;
  retryBackoffMs: number;
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
}

const remotePath = (remote: string, path: string): string => (remote.endsWith(':') || remote.endsWith('/') ? `${remote}${path}` : `${remote}/${path}`);

const indexVersionOf = (text: string): number | undefined => {
  const m = /"index_version"\s*:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
};

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
    /** Uploads and publishes exclude each other, so an upload never mixes two states. */
    private readonly exclusive: <T>(work: () => Promise<T>) => Promise<T>,
  ) {
    settings.abort.addEventListener('abort', () => this.wakeRetry?.());
  }

  status(): UploadStatus {
    return { ...this.current };
  }

  /** Asks for an upload; several requests while one runs collapse into one more run. */
  request(): void {
    if (this.stopped) return;
    this.current.pending = true;
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
        await this.exclusive(() => this.once());
        this.current = { state: 'idle', attempts: 0, pending: this.current.pending, last_success: new Date().toISOString() };
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

  private async once(): Promise<void> {
    const { repoDir, remote, timeoutMs, abort } = this.settings;
    await this.guard();
    const rclone = (what: string, args: string[]): Promise<string> => runStep(what, 'rclone', args, { timeoutMs, abort });
    const noTemp = ['--exclude', '*.tmp-*', '--exclude', '*.tmp-*/**'];
    await rclone('rclone copy (packages, keys, site)', ['copy', repoDir, remote, ...noTemp, '--exclude', '/index/**', '--exclude', '/repo.json', '--exclude', '/repo.json.sig']);
    await rclone('rclone copy (indexes)', ['copy', join(repoDir, 'index'), remotePath(remote, 'index'), ...noTemp]);
    await rclone('rclone copy (descriptor)', ['copy', repoDir, remote, '--include', '/repo.json', '--include', '/repo.json.sig']);
  }

  /** Refuses to overwrite a remote that is ahead of us. */
  private async guard(): Promise<void> {
    const local = indexVersionOf(await readFile(join(this.settings.repoDir, 'index', 'archive.json'), 'utf8')) ?? 0;
    const result = await execa('rclone', ['cat', remotePath(this.settings.remote, 'index/archive.json')], {
      reject: false,
      timeout: this.settings.timeoutMs,
      cancelSignal: this.settings.abort,
    });
    if (result.exitCode !== 0) {
      // rclone exits 3 (directory not found) or 4 (file not found) for an empty remote.
      if (result.exitCode === 3 || result.exitCode === 4 || /not found/i.test(result.stderr)) return;
      throw new Error(`rclone cat ${remotePath(this.settings.remote, 'index/archive.json')}: ${result.stderr.trim().split('\n').pop() ?? `exit status ${result.exitCode}`}`);
    }
    const remoteVersion = indexVersionOf(result.stdout);
    if (remoteVersion !== undefined && remoteVersion > local) {
      throw new Error(
        `the remote's index_version ${remoteVersion} is newer than the local ${local}; refusing to overwrite it ` +
          '(was state_dir lost or restored from an old backup? restore it, or publish past the remote first)',
      );
    }
  }
}
