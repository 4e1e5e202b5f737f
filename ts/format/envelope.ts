/**
 * The `.peipkg/signature` envelope (`package-format.md` §3.4, §8.5): exactly four keys, an
 * Ed25519 signature in unpadded standard base64, always 229 bytes. Decoding is strict: anything
 * the producer would not write is refused.
 */

import { canonicalJson, parseStrictJson } from './json.js';

export interface SignatureEnvelope {
  fingerprint: string;
  signature: Buffer;
}

const KEYS = ['schema_version', 'algorithm', 'key_fingerprint', 'signature'];

export function encodeEnvelope(fingerprint: string, signature: Uint8Array): string {
  return canonicalJson({
    schema_version: 1,
    algorithm: 'ed25519',
    key_fingerprint: fingerprint,
    signature: Buffer.from(signature).toString('base64').replace(/=+$/, ''),
  });
}

/** The envelope, or the reason it is refused. */
export function decodeEnvelope(bytes: Uint8Array): SignatureEnvelope | { problem: string } {
  let doc: unknown;
  try {
    doc = parseStrictJson(bytes);
  } catch (error) {
    return { problem: `signature envelope is not valid JSON: ${(error as Error).message}` };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { problem: 'signature envelope is not a JSON object' };
  const record = doc as Record<string, unknown>;
  const keys = Object.keys(record);
  const unknown = keys.filter((k) => !KEYS.includes(k));
  if (unknown.length > 0) return { problem: `signature envelope has unknown keys ${unknown.join(', ')}` };
  const missing = KEYS.filter((k) => !keys.includes(k));
  if (missing.length > 0) return { problem: `signature envelope lacks ${missing.join(', ')}` };
  if (record.schema_version !== 1) return { problem: 'signature envelope schema_version must be 1' };
  if (record.algorithm !== 'ed25519') return { problem: 'signature envelope algorithm must be "ed25519"' };
  const fp = record.key_fingerprint;
  if (typeof fp !== 'string' || !/^[0-9a-f]{64}$/.test(fp)) {
    return { problem: 'signature envelope key_fingerprint must be 64 lowercase hex digits' };
  }
  const sig = record.signature;
  if (typeof sig !== 'string' || !/^[A-Za-z0-9+/]{86}$/.test(sig)) {
    return { problem: 'signature envelope signature must be 86 characters of unpadded standard base64' };
  }
  const decoded = Buffer.from(sig, 'base64');
  // Non-zero trailing bits decode to the same bytes; only the canonical spelling is accepted.
  if (decoded.length !== 64 || decoded.toString('base64').replace(/=+$/, '') !== sig) {
    return { problem: 'signature envelope signature is not the canonical base64 of 64 bytes' };
  }
  return { fingerprint: fp, signature: decoded };
}
