/**
 * `repo.json`, the repository descriptor (`repository.md` §4): its canonical encoding, a lenient
 * decoder (like the reference: unknown members dropped, `null` = empty), and the key rules of
 * PSD-009 §6.1.3 that `resign` enforces (sorted, unique fingerprints; at least one active key;
 * transitioning keys carry `valid_until`).
 */

import { z } from 'zod';

import { adviceErrors, formatZodIssues } from '../format/issues.js';
import { canonicalJson } from '../format/json.js';
import { compareUtf8 } from '../format/order.js';

export type KeyStatus = 'active' | 'transitioning' | 'revoked' | (string & {});

export interface DescriptorKey {
  fingerprint: string;
  url: string;
  status: KeyStatus;
  /** Omitted from the encoding when empty. */
  validUntil: string;
}

export interface Descriptor {
  name: string;
  description: string;
  keys: DescriptorKey[];
}

export const keyUrl = (fingerprint: string): string => `/keys/${fingerprint}.pub`;

export function encodeDescriptor(d: Descriptor): string {
  return canonicalJson({
    schema_version: 1,
    repo: {
      name: d.name,
      description: d.description,
      signing: {
        algorithm: 'ed25519',
        keys: d.keys.map((k) => ({
          fingerprint: k.fingerprint,
          url: k.url,
          status: k.status,
          ...(k.validUntil === '' ? {} : { valid_until: k.validUntil }),
        })),
      },
    },
    indexes: {
      active: { url: '/index/active.json', signature_url: '/index/active.json.sig' },
      archive: { url: '/index/archive.json', signature_url: '/index/archive.json.sig' },
    },
  });
}

const text = z.string().nullish().transform((v) => v ?? '');
const DescriptorWire = z.object({
  repo: z
    .object({
      name: text,
      description: text,
      signing: z
        .object({
          keys: z
            .array(z.object({ fingerprint: text, url: text, status: text, valid_until: text }))
            .nullish()
            .transform((v) => v ?? []),
        })
        .nullish(),
    })
    .nullish(),
});

/** The descriptor, or the schema problems (prefixed `repo.json`). */
export function decodeDescriptor(json: unknown): { descriptor: Descriptor } | { problems: string[] } {
  const parsed = DescriptorWire.safeParse(json, { error: adviceErrors });
  if (!parsed.success) return { problems: formatZodIssues('repo.json', parsed.error) };
  const repo = parsed.data.repo;
  return {
    descriptor: {
      name: repo?.name ?? '',
      description: repo?.description ?? '',
      keys: (repo?.signing?.keys ?? []).map((k) => ({ fingerprint: k.fingerprint, url: k.url, status: k.status, validUntil: k.valid_until })),
    },
  };
}

/** Keys whose signatures count: every listed key that is not revoked. */
export function trustedFingerprints(d: Descriptor): string[] {
  return d.keys.filter((k) => k.status !== 'revoked').map((k) => k.fingerprint);
}

/** §6.1.3, as the reference client enforces it; every problem. */
export function descriptorKeyProblems(d: Descriptor): string[] {
  const problems: string[] = [];
  const fps = d.keys.map((k) => k.fingerprint);
  for (const [i, k] of d.keys.entries()) {
    if (!/^[0-9a-f]{64}$/.test(k.fingerprint)) problems.push(`keys[${i}].fingerprint "${k.fingerprint}" is not 64 lowercase hex digits`);
    if (!['active', 'transitioning', 'revoked'].includes(k.status)) problems.push(`keys[${i}].status "${k.status}" is not active, transitioning or revoked`);
    if (k.status === 'transitioning' && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(k.validUntil)) {
      problems.push(`keys[${i}] (${k.fingerprint.slice(0, 12)}…) is transitioning and needs valid_until (RFC 3339, ending in Z)`);
    }
    if (i > 0 && compareUtf8(fps[i - 1]!, fps[i]!) >= 0) {
      problems.push(`keys must be sorted by fingerprint without duplicates (keys[${i}] comes after keys[${i - 1}] in byte order)`);
    }
  }
  if (!d.keys.some((k) => k.status === 'active')) problems.push('at least one key must be active');
  return problems;
}
