/**
 * `.peipkg/files.json` (`package-format.md` §3.3, §8.4): one record per regular payload file,
 * sorted bytewise by path, with its size and lowercase hex SHA-256.
 */

import { z } from 'zod';

import { formatZodIssues } from './issues.js';
import { canonicalJson } from './json.js';
import { compareUtf8 } from './order.js';

export interface FileRecord {
  path: string;
  size: number;
  sha256: string;
}

export function encodeFiles(records: readonly FileRecord[]): string {
  return canonicalJson({
    schema_version: 1,
    algorithm: 'sha256',
    entries: records.map((r) => ({ path: r.path, size: r.size, hash: r.sha256 })),
  });
}

const FilesWire = z.object({
  schema_version: z.literal(1),
  algorithm: z.literal('sha256'),
  entries: z.array(
    z.object({
      path: z.string(),
      size: z.number().int().nonnegative(),
      hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    }),
  ),
});

/** Decodes a parsed files.json; the records, or every problem (schema and order). */
export function decodeFiles(json: unknown, source = 'files.json'): { files: FileRecord[] } | { problems: string[] } {
  const parsed = FilesWire.safeParse(json);
  if (!parsed.success) return { problems: formatZodIssues(source, parsed.error) };
  const files = parsed.data.entries.map((e) => ({ path: e.path, size: e.size, sha256: e.hash }));
  for (let i = 1; i < files.length; i++) {
    if (compareUtf8(files[i - 1]!.path, files[i]!.path) >= 0) {
      return { problems: [`${source}: entries[${i}].path: "${files[i]!.path}" is not strictly after "${files[i - 1]!.path}" (paths must be sorted bytewise, without duplicates)`] };
    }
  }
  return { files };
}
