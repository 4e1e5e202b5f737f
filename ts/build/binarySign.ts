/**
 * `peipkg-build binary-sign --verify FILE`: checks the `.peios.sig` section of an ELF binary
 * (`package-format.md` §7.5: `0x01` + Ed25519 over the SHA-256 of the whole file with those 65
 * bytes zeroed). The section carries no key id, so the candidate public keys are given
 * (`--public-key`, repeatable) and the result names the one that verifies.
 */

import { CorruptDataError } from '../errors.js';
import { verifyElf } from '../native.js';

export type BinarySignatureResult =
  | { path: string; valid: true; fingerprint: string }
  | { path: string; valid: false; problem: string; fingerprints: string[] };

/** Checks `path` against every key in `keys` (public key bytes by fingerprint). */
export async function verifyBinarySignature(path: string, keys: ReadonlyMap<string, Uint8Array>): Promise<BinarySignatureResult> {
  const fingerprints = [...keys.keys()];
  for (const [fingerprint, key] of keys) {
    let verified: boolean;
    try {
      verified = await verifyElf(path, key);
    } catch (error) {
      // Not an ELF64, no `.peios.sig`, a malformed section: an answer about the file, not a failure to look.
      if (!(error instanceof CorruptDataError)) throw error;
      const problem = error.message.startsWith(`${path}: `) ? error.message.slice(path.length + 2) : error.message;
      const hint = /no \.peios\.sig section/.test(problem) ? ' (it was not signed with binary-sign or a [[sign]] stanza)' : '';
      return { path, valid: false, problem: `${problem}${hint}`, fingerprints };
    }
    if (verified) return { path, valid: true, fingerprint };
  }
  const by = fingerprints.length === 1 ? `the key ${fingerprints[0]}` : `any of the keys ${fingerprints.join(', ')}`;
  return { path, valid: false, problem: `the .peios.sig signature does not verify with ${by} (signed with another key, or the file was changed after signing)`, fingerprints };
}

export function describeBinarySignature(r: BinarySignatureResult): string {
  return r.valid ? `${r.path}: valid .peios.sig, signed by ${r.fingerprint}` : `${r.path}: INVALID: ${r.problem}`;
}
