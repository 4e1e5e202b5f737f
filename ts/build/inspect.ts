/**
 * `peipkg-build verify FILE…`: runs the package verifier on each file and prints its manifest, or
 * with `--list` its payload entries.
 * Signatures are checked against the `--public-key` files given; without any, a signature is
 * reported as present but unchecked (a fingerprint cannot be turned back into a key).
 */

import { readFile } from 'node:fs/promises';

import { InputError } from '../errors.js';
import { PackageRejectedError, verifyPackage, type SignatureStatus } from '../format/verify.js';
import { parsePublicKey, type TarEntryFact } from '../native.js';

export interface InspectRequest {
  files: string[];
  publicKeys: string[];
  requireSigned: boolean;
  strict: boolean;
  /** Also list each valid package's payload entries (`--list`). */
  list?: boolean;
}

/** One payload entry of a package, as `verify --list` shows it (snake_case for `--json`). */
export interface ListedEntry {
  /** The payload path; a directory's has no trailing `/`. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** Content bytes: a file's size, 0 for directories and symlinks. */
  size: number;
  /** The tar header's permission bits in octal, `"0777"` in every valid package (§3.4.6). */
  mode: string;
  /** Lowercase hex SHA-256, for files. */
  sha256?: string;
  /** A symlink's target, as stored. */
  link_target?: string;
}

export type InspectResult =
  | { path: string; valid: true; signature: SignatureStatus; manifest: unknown; files?: ListedEntry[] }
  | { path: string; valid: false; problems: string[] };

/** The payload entries of a verified package, in archive order (sorted by path). */
export function listEntries(entries: readonly TarEntryFact[]): ListedEntry[] {
  const listed: ListedEntry[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.peipkg/')) continue;
    const mode = (e.mode & 0o7777).toString(8).padStart(4, '0');
    if (e.type === '5') listed.push({ path: e.name.replace(/\/$/, ''), type: 'directory', size: 0, mode });
    else if (e.type === '2') listed.push({ path: e.name, type: 'symlink', size: 0, mode, link_target: e.linkname });
    else listed.push({ path: e.name, type: 'file', size: e.size, mode, ...(e.sha256 === undefined ? {} : { sha256: e.sha256 }) });
  }
  return listed;
}

const TYPE_CHAR = { file: '-', directory: 'd', symlink: 'l' } as const;

/** `tar -tv`-like lines: type and permission bits, size, path (`/` after a directory), `-> target`. */
export function formatListing(entries: readonly ListedEntry[]): string {
  const width = Math.max(1, ...entries.map((e) => String(e.size).length));
  return entries
    .map((e) => {
      const bits = parseInt(e.mode, 8);
      const perms = [6, 3, 0].map((shift) => ['r', 'w', 'x'].map((c, i) => ((bits >> (shift + 2 - i)) & 1 ? c : '-')).join('')).join('');
      const name = e.type === 'directory' ? `${e.path}/` : e.type === 'symlink' ? `${e.path} -> ${e.link_target ?? ''}` : e.path;
      return `${TYPE_CHAR[e.type]}${perms} ${String(e.size).padStart(width)} ${name}`;
    })
    .join('\n');
}

/** The public keys in `paths` (SPKI PEM or 32 raw bytes), by fingerprint; `undefined` for none. */
export async function trustedKeys(paths: string[]): Promise<Map<string, Uint8Array> | undefined> {
  if (paths.length === 0) return undefined;
  const keys = new Map<string, Uint8Array>();
  for (const path of paths) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new InputError(`--public-key ${path}: ${(error as Error).message}`);
    }
    const info = parsePublicKey(bytes);
    keys.set(info.fingerprint, info.publicKey);
  }
  return keys;
}

export async function inspectPackages(request: InspectRequest): Promise<InspectResult[]> {
  const keys = await trustedKeys(request.publicKeys);
  const results: InspectResult[] = [];
  for (const path of request.files) {
    try {
      const verified = await verifyPackage(path, {
        ...(keys ? { trustedKeys: keys } : {}),
        requireSigned: request.requireSigned,
        strict: request.strict,
      });
      const manifest: unknown = JSON.parse(verified.facts.manifest?.toString('utf8') ?? 'null');
      results.push({ path, valid: true, signature: verified.signature, manifest, ...(request.list ? { files: listEntries(verified.facts.entries) } : {}) });
    } catch (error) {
      if (!(error instanceof PackageRejectedError)) throw error;
      results.push({ path, valid: false, problems: error.problems });
    }
  }
  return results;
}

export function describeSignature(s: SignatureStatus): string {
  switch (s.state) {
    case 'unsigned':
      return 'unsigned';
    case 'verified':
      return `signed by ${s.fingerprint} (signature verified)`;
    case 'unchecked':
      return `signed by ${s.fingerprint} (signature not checked: give --public-key)`;
  }
}
