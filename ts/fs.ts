/** File-system questions asked in several places. */

import type { Stats } from 'node:fs';
import { access, constants, open, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

import { formatSize } from './size.js';

/** Whether `path` exists (following symlinks); any error counts as no. */
export function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The first executable `name` in `$PATH`, as the shell would find it. */
export async function executableOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (await executable(candidate)) return candidate;
  }
  return undefined;
}

/** What `info` is when it is not a regular file, in words for a message. */
export function nonFileKind(info: Stats): string | undefined {
  if (info.isFile()) return undefined;
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  return 'a device';
}

/**
 * Why `readRegularFile` refused a path. `code` is `EISDIR` for a directory (so callers that word
 * `EISDIR` keep doing so), `ENOTREG` for a FIFO, socket or device, `EFBIG` past the limit; the
 * message reads after the path (`is a FIFO, not a regular file`).
 */
export class UnreadableFileError extends Error {
  constructor(
    readonly code: 'EISDIR' | 'ENOTREG' | 'EFBIG',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The bytes of the regular file at `path`, at most `limit` of them, for files at paths somebody
 * else filled (a repository state copied from a mirror). A plain read would wait forever for a
 * writer on a FIFO (opening one blocks; `O_NONBLOCK` makes the open return) and read a symlink to
 * `/dev/zero` without end; both are refused at once, as is a file larger than `limit`. Symlinks to
 * regular files are followed. Errors from the system (`ENOENT`, `EACCES`) pass through unchanged.
 */
export async function readRegularFile(path: string, limit: number): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    const kind = nonFileKind(info);
    if (kind === 'a directory') throw new UnreadableFileError('EISDIR', 'is a directory');
    if (kind !== undefined) throw new UnreadableFileError('ENOTREG', `is ${kind}, not a regular file`);
    // Read to the end rather than trust the size stat gave: the file may change under us, and one
    // byte past `limit` is enough to know it is too large.
    let buffer = Buffer.allocUnsafe(Math.min(info.size, limit) + 1);
    let filled = 0;
    for (;;) {
      if (filled === buffer.length) {
        if (filled > limit) throw new UnreadableFileError('EFBIG', `is larger than ${formatSize(limit)}, more than such a file ever holds`);
        buffer = Buffer.concat([buffer, Buffer.allocUnsafe(Math.min(buffer.length, limit + 1 - filled))]);
      }
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) return buffer.subarray(0, filled);
      filled += bytesRead;
    }
  } finally {
    await handle.close();
  }
}
