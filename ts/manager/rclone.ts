/**
 * The rclone commands an upload runs, each through the step runner (own process group, timeout,
 * dies with the daemon). Outcomes are decided on rclone's documented exit codes — 3 "directory not
 * found", 4 "file not found" — never on its message text: rclone prints `Config file … not found`
 * on every run without an rclone.conf, so a text match turns a refused connection into "empty".
 *
 * Every command gets short network timeouts (`--contimeout`, `--timeout`: a remote that accepts
 * and never answers fails in minutes, not rclone's default 5 minutes per stalled operation) and
 * a single try (`--retries 1`): the uploader retries whole uploads itself, with back-off.
 */

import { StepError, runStep } from './subprocess.js';

export const RCLONE_DIRECTORY_NOT_FOUND = 3;
export const RCLONE_FILE_NOT_FOUND = 4;

const COMMON = ['--quiet', '--contimeout', '30s', '--timeout', '2m', '--retries', '1', '--low-level-retries', '3'];

export interface RcloneOptions {
  remote: string;
  /** Bounds each command (the whole upload is bounded by the caller). */
  timeoutMs: number;
  abort: AbortSignal;
  /** Added to the environment (tests point rclone at their own config). */
  env?: Record<string, string>;
}

export class Rclone {
  constructor(private readonly options: RcloneOptions) {}

  /** `<remote>/<path>` for a path relative to the remote's root. */
  path(relative: string): string {
    const { remote } = this.options;
    if (relative === '') return remote;
    return remote.endsWith(':') || remote.endsWith('/') ? `${remote}${relative}` : `${remote}/${relative}`;
  }

  private run(what: string, args: string[], capture = false): Promise<string> {
    const { timeoutMs, abort, env } = this.options;
    return runStep(what, 'rclone', [...args, ...COMMON], { timeoutMs, abort, captureStdout: capture, env });
  }

  /** Every file under the remote's root, relative; an empty set when the root does not exist yet. */
  async listFiles(): Promise<Set<string>> {
    try {
      const out = await this.run('rclone lsf (remote files)', ['lsf', '--recursive', '--files-only', '--fast-list', this.path('')], true);
      return new Set(out.split('\n').filter((line) => line !== ''));
    } catch (error) {
      if (error instanceof StepError && error.exitStatus === RCLONE_DIRECTORY_NOT_FOUND) return new Set();
      throw error;
    }
  }

  /** A remote file's bytes, or undefined when rclone says it (or its directory) does not exist. */
  async read(relative: string): Promise<string | undefined> {
    try {
      return await this.run(`rclone cat ${this.path(relative)}`, ['cat', this.path(relative)], true);
    } catch (error) {
      if (error instanceof StepError && (error.exitStatus === RCLONE_DIRECTORY_NOT_FOUND || error.exitStatus === RCLONE_FILE_NOT_FOUND)) return undefined;
      throw error;
    }
  }

  /** Copies the files listed (relative to `from`) to the same paths on the remote. */
  async copyListed(what: string, from: string, listFile: string): Promise<void> {
    await this.run(what, ['copy', '--files-from-raw', listFile, '--no-traverse', from, this.path('')]);
  }

  /**
   * Replaces one remote file so that readers see the old bytes or the new ones, never a partial
   * file: rclone writes in place on local and sftp remotes, so the bytes go to a temporary name
   * first and are moved over the target (a rename where the backend has one, a server-side copy
   * on object stores, whose objects change atomically anyway).
   */
  async replace(localFile: string, relative: string): Promise<void> {
    const temp = `${relative}.tmp-upload`;
    await this.run(`rclone copyto ${relative}`, ['copyto', localFile, this.path(temp)]);
    await this.run(`rclone moveto ${relative}`, ['moveto', this.path(temp), this.path(relative)]);
  }
}
