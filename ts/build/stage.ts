/**
 * Walks a staged tree (`$DESTDIR`, or `pack --staged`) depth-first in byte order of names
 * (`recipes-and-farm.md` §4.2): files and symlinks are leaves (symlinks are never followed),
 * directories are reported so that directory patterns can claim them, anything else fails.
 */

import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

import { InputError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';
import { MAX_PATH_BYTES } from '../format/paths.js';

export interface StagedFile {
  kind: 'file';
  path: string;
  size: number;
  uid: number;
}
export interface StagedSymlink {
  kind: 'symlink';
  path: string;
  target: string;
  uid: number;
}
export interface StagedDirectory {
  kind: 'directory';
  path: string;
  uid: number;
}
export type StagedEntry = StagedFile | StagedSymlink | StagedDirectory;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A staged entry that is neither a regular file, a directory nor a symlink. */
export class UnsupportedEntryError extends InputError {}

function typeName(mode: number): string {
  const type = mode & 0o170000;
  if (type === 0o010000) return 'FIFO';
  if (type === 0o140000) return 'socket';
  if (type === 0o020000) return 'character device';
  if (type === 0o060000) return 'block device';
  return `mode ${mode.toString(8)}`;
}

/**
 * A staged tree nested too deep to pack: a path longer than a package allows (`package-format.md`
 * §5.1), or one the file system cannot even reach by name (`ENAMETOOLONG`). The build script's
 * doing, so an `InputError`: the message names where the tree starts and what to do.
 */
export class StagedTooDeepError extends InputError {}

/** How the walk's root is named in messages. */
export interface StagedTreeLabel {
  /** Who staged it, for the message's subject: `build.sh staged` or `the staged tree ${dir} holds`. */
  subject: string;
  /** How the root is written in front of a relative path: `$DESTDIR` or the directory itself. */
  root: string;
}

const defaultLabel = (root: string): StagedTreeLabel => ({ subject: `the staged tree ${root} holds`, root });

/** `usr/share/demo/aaaa…/…`: the first six components of a deep path, each cut short, then an ellipsis. */
function shortPrefix(path: string): string {
  const parts = path.split('/');
  const head = parts.slice(0, 6).map((p) => (p.length > 24 ? `${p.slice(0, 24)}…` : p));
  return parts.length > head.length ? `${head.join('/')}/…` : head.join('/');
}

function tooDeep(label: StagedTreeLabel, path: string, why: string): StagedTooDeepError {
  const depth = path.split('/').length;
  return new StagedTooDeepError(
    `${label.subject} a tree nested at least ${depth} levels deep under ${label.root}/${shortPrefix(path)}: ${why}, ` +
      `and paths in a package are limited to ${MAX_PATH_BYTES} bytes. Stage only what the packages ship, and keep deeper trees ` +
      `(build directories, test data) out of ${label.root}`,
  );
}

const isNameTooLong = (error: unknown): boolean => (error as NodeJS.ErrnoException | undefined)?.code === 'ENAMETOOLONG';

/**
 * Every entry below `root` (not `root` itself), in walk order. A path over the package limit, or
 * one the file system cannot reach by name, stops the walk with `StagedTooDeepError`. The calls are synchronous on
 * purpose: a walk is thousands of tiny syscalls, and a thread-pool round trip for each made it
 * take over a second on a 6,000-entry tree (about 20 ms this way); nothing else runs meanwhile.
 */
export function walkStaged(root: string, label: StagedTreeLabel = defaultLabel(root)): StagedEntry[] {
  const out: StagedEntry[] = [];
  /** `f()` on the staged `path`, with `ENAMETOOLONG` reported as the tree's fault. */
  function reach<T>(path: string, f: () => T): T {
    try {
      return f();
    } catch (error) {
      if (!isNameTooLong(error)) throw error;
      throw tooDeep(label, path, `deeper than this system lets a path reach (ENAMETOOLONG: at most ${MAX_PATH_BYTES - 1} bytes, the staging directory's own path included)`);
    }
  }
  function visit(dir: string, prefix: string): void {
    const names: string[] = [];
    for (const raw of reach(prefix, () => readdirSync(dir, { encoding: 'buffer' }))) {
      try {
        names.push(UTF8.decode(raw));
      } catch {
        const shown = prefix === '' ? raw.toString('latin1') : `${prefix}/${raw.toString('latin1')}`;
        throw new InputError(`walk staged tree: ${JSON.stringify(shown)}: file name is not valid UTF-8 (PSD-009 §3.2.6)`);
      }
    }
    names.sort(compareUtf8);
    for (const name of names) {
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const bytes = Buffer.byteLength(path);
      if (bytes > MAX_PATH_BYTES) throw tooDeep(label, path, `a path there is ${bytes} bytes long`);
      const full = join(dir, name);
      const info = reach(path, () => lstatSync(full));
      if (info.isSymbolicLink()) out.push({ kind: 'symlink', path, target: reach(path, () => readlinkSync(full)), uid: info.uid });
      else if (info.isFile()) out.push({ kind: 'file', path, size: info.size, uid: info.uid });
      else if (info.isDirectory()) {
        out.push({ kind: 'directory', path, uid: info.uid });
        visit(full, path);
      } else {
        throw new UnsupportedEntryError(
          `walk staged tree: ${path}: unsupported entry type ${typeName(info.mode)} (PSD-009 §3.4 permits regular files, directories, and symlinks only)`,
        );
      }
    }
  }
  visit(root, '');
  return out;
}

/** Every proper ancestor directory of `path` (`a/b/c` → `a`, `a/b`). */
export function ancestors(path: string): string[] {
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}
