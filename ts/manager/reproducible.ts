/**
 * The rebuild check's comparison (`[verify] rebuild`): two unsigned builds of the same inputs must
 * decompress to the same tar. The reader's SHA-256 over the tar before its trailer decides; when
 * it differs, the first differing member (by position: name, header fields or content; the payload
 * before the metadata that lists it) says where.
 */

import { join } from 'node:path';

import { readPackage, type PackageFacts, type TarEntryFact } from '../native.js';

export interface TarDifference {
  file: string;
  member: string;
  /** The member's content SHA-256 on each side, or the whole tar's when only a header differs. */
  digests: [string, string];
}

const HEADER_FIELDS: Array<keyof TarEntryFact> = ['name', 'type', 'size', 'linkname', 'mode', 'uid', 'gid', 'mtime', 'uname', 'gname', 'devmajor', 'devminor', 'paxKeys'];

/**
 * The first member that differs. The metadata entries come first in the tar but only follow from
 * the payload (files.json lists its digests), so the payload is searched first: the member it
 * names is the one whose build step is not reproducible.
 */
function firstDifference(a: PackageFacts, b: PackageFacts): { member: string; digests: [string, string] } {
  const payload = (f: PackageFacts): PackageFacts => ({ ...f, entries: f.entries.filter((e) => !e.name.startsWith('.peipkg/')) });
  const inPayload = firstDifferingEntry(payload(a), payload(b));
  return inPayload.member === END ? firstDifferingEntry(a, b) : inPayload;
}

const END = '(end of archive)';

function firstDifferingEntry(a: PackageFacts, b: PackageFacts): { member: string; digests: [string, string] } {
  const tarDigests: [string, string] = [a.signableDigest ?? '', b.signableDigest ?? ''];
  const n = Math.max(a.entries.length, b.entries.length);
  for (let i = 0; i < n; i++) {
    const x = a.entries[i];
    const y = b.entries[i];
    if (!x || !y) return { member: (x ?? y)!.name, digests: tarDigests };
    const header = HEADER_FIELDS.some((f) => JSON.stringify(x[f]) !== JSON.stringify(y[f]));
    if (header) return { member: x.name === y.name ? x.name : `${x.name} / ${y.name}`, digests: x.sha256 && y.sha256 && x.sha256 !== y.sha256 ? [x.sha256, y.sha256] : tarDigests };
    if (x.sha256 !== y.sha256) return { member: x.name, digests: [x.sha256 ?? '', y.sha256 ?? ''] };
  }
  return { member: END, digests: tarDigests };
}

/** Compares each package `names` in `dirA` with its namesake in `dirB`; undefined when all are the same tar. */
export async function compareBuilds(dirA: string, dirB: string, names: readonly string[]): Promise<TarDifference | undefined> {
  for (const file of [...names].sort()) {
    const [a, b] = await Promise.all([readPackage(join(dirA, file)), readPackage(join(dirB, file))]);
    if (a.signableDigest !== undefined && a.signableDigest === b.signableDigest && a.tarSize === b.tarSize) continue;
    return { file, ...firstDifference(a, b) };
  }
  return undefined;
}
