/**
 * Walks a staged tree (`$DESTDIR`, or `pack --staged`) depth-first in byte order of names
 * (`recipes-and-farm.md` §4.2): files and symlinks are leaves (symlinks are never followed),
 * directories are reported so that directory patterns can claim them, anything else fails.
 */

import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

import { InputError } from '../errors.js';
import { compareUtf8 } from '../format/order.js';

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
 * Every entry below `root` (not `root` itself), in walk order. The calls are synchronous on
 * purpose: a walk is thousands of tiny syscalls, and a thread-pool round trip for each made it
 * take over a second on a 6,000-entry tree (about 20 ms this way); nothing else runs meanwhile.
 */
export function walkStaged(root: string): StagedEntry[] {
  const out: StagedEntry[] = [];
  function visit(dir: string, prefix: string): void {
    const names: string[] = [];
    for (const raw of readdirSync(dir, { encoding: 'buffer' })) {
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
      const full = join(dir, name);
      const info = lstatSync(full);
      if (info.isSymbolicLink()) out.push({ kind: 'symlink', path, target: readlinkSync(full), uid: info.uid });
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
