/**
 * All-or-nothing outputs (D-9): packages are written into a private temporary directory inside
 * the destination (same filesystem), and renamed into place only when every one of them is
 * complete. A run that fails leaves nothing; a run that was killed leaves a temporary directory
 * that the next run removes (its name carries the pid, so a live run's is never touched).
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { environmentError, InputError, NativeError } from '../errors.js';
import { fsyncPath, removeTree, removeTreeSync } from '../native.js';

const PREFIX = '.peipkg-build.tmp-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary directories left in `dir` by runs that no longer exist. */
async function removeStale(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) await removeTree(join(dir, name));
  }
}

export class OutputBatch {
  private readonly pending: Array<{ temp: string; final: string }> = [];

  private constructor(
    readonly dir: string,
    private readonly tempDir: string,
  ) {}

  /** Creates `dir` if needed and a temporary directory inside it. */
  static async open(dir: string): Promise<OutputBatch> {
    try {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      await removeStale(dir);
      const temp = join(dir, `${PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
      await mkdir(temp, { mode: 0o700 });
      return new OutputBatch(dir, temp);
    } catch (error) {
      throw new InputError(`cannot write to output directory ${dir}: ${(error as Error).message}`);
    }
  }

  /** Where to write the file that will become `<dir>/<name>`. */
  reserve(name: string): string {
    const temp = join(this.tempDir, name);
    this.pending.push({ temp, final: join(this.dir, name) });
    return temp;
  }

  /**
   * Has `make` write the file that will become `<dir>/<name>`. A full disk or a read-only mount
   * under the output directory is reported as writing that file (not as the temporary name nobody
   * will see), with advice.
   */
  async write<T>(name: string, make: (path: string) => Promise<T>): Promise<T> {
    const path = this.reserve(name);
    try {
      return await make(path);
    } catch (error) {
      const at = error instanceof NativeError ? error.path : (error as NodeJS.ErrnoException).path;
      const ours = at !== undefined && at.startsWith(`${this.tempDir}/`);
      throw (ours && environmentError(error, { what: `write ${join(this.dir, name)}`, left: 'no package was written', on: this.dir })) || error;
    }
  }

  /** Moves every reserved file into place; if one rename fails, the ones already moved are removed again. */
  async commit(): Promise<string[]> {
    const done: string[] = [];
    try {
      for (const { temp, final } of this.pending) {
        await rename(temp, final);
        done.push(final);
      }
      fsyncPath(this.dir);
    } catch (error) {
      await Promise.all(done.map((f) => rm(f, { force: true })));
      throw new InputError(`cannot move outputs into ${this.dir}: ${(error as Error).message}`);
    } finally {
      await this.discard();
    }
    return done;
  }

  async discard(): Promise<void> {
    await removeTree(this.tempDir);
  }

  /** For signal handlers, which cannot wait. */
  discardNow(): void {
    removeTreeSync(this.tempDir);
  }
}
