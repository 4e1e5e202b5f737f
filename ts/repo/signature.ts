/**
 * Detached signatures over repository documents (`repository.md` §6.1): the package-signature
 * envelope, with Ed25519 over the SHA-256 of the document's exact bytes — the scheme the reference
 * client verifies (DECISIONS.md, Repository 1).
 */

import { decodeEnvelope, encodeEnvelope } from '../format/envelope.js';
import { sign, signingKeyInfo, verifySignature, type SigningKey } from '../native.js';

/** The `.sig` file's text for a document whose bytes hash to `sha256Hex`. */
export function detachedSignature(key: SigningKey, sha256Hex: string): string {
  const digest = Buffer.from(sha256Hex, 'hex');
  return encodeEnvelope(signingKeyInfo(key).fingerprint, sign(key, digest));
}

export type SignatureCheck =
  | { ok: true; fingerprint: string }
  | { ok: false; problem: string };

/**
 * Checks a detached signature against the descriptor's trusted keys, with the reference's wording
 * (§9.2 step 2). `keys` maps fingerprint → raw public key, for keys that are listed and usable.
 */
export function checkDetachedSignature(label: string, envelope: Buffer, sha256Hex: string, keys: ReadonlyMap<string, Uint8Array>): SignatureCheck {
  const decoded = decodeEnvelope(envelope);
  if ('problem' in decoded) return { ok: false, problem: `${label}: ${decoded.problem}` };
  const key = keys.get(decoded.fingerprint);
  if (!key) return { ok: false, problem: `${label}: signing key fingerprint ${decoded.fingerprint} is not declared in the descriptor` };
  if (!verifySignature(key, Buffer.from(sha256Hex, 'hex'), decoded.signature)) {
    return { ok: false, problem: `${label}: signature does not verify against the declared key` };
  }
  return { ok: true, fingerprint: decoded.fingerprint };
}
