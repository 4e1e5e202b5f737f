/**
 * Signing packages that were built unsigned in the "signable" form (`peipkg-build build
 * --deferred-signature`): a build farm's workers build without the key, the coordinator that holds
 * it signs. The cost is one verifying read (the same verifier `peipkg-repo publish` applies to
 * every incoming package) plus a constant: the native core replaces the last zstd frame, which
 * holds only the end-of-archive trailer, by one holding the signature entry and the trailer,
 * without decompressing or rewriting the rest (`crates/peipkg-native/src/deferred.rs`).
 */

import { CorruptDataError, FileChangedError, InputError } from '../errors.js';
import { appendSignature, type SigningKey } from '../native.js';
import { PackageRejectedError, verifyPackage } from './verify.js';

/** Why a package cannot be signed in place. */
export type DeferredSignatureRule = 'already-signed' | 'not-signable' | 'invalid' | 'changed';

/** A package `signDeferredPackage` refuses; the file is unchanged. */
export class DeferredSignatureError extends InputError {
  constructor(
    readonly path: string,
    readonly rule: DeferredSignatureRule,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: cannot sign in place (${rule}): ${detail}`, options);
  }
}

export interface DeferredSignOptions {
  /** Also apply the producer's layout and determinism rules (§8.6) before signing. */
  strict?: boolean;
}

export interface SignedPackage {
  path: string;
  name: string;
  version: string;
  architecture: string;
  /** SHA-256 (hex) of the tar bytes the signature covers (§4.2). */
  signedDigest: string;
  fingerprint: string;
  /** The 64-byte Ed25519 signature. */
  signature: Buffer;
  /** The file's size after signing. */
  size: number;
}

const TRAILER_BLOCKS = 2;

/**
 * Verifies the unsigned package at `path` and signs it with `key` in place. Refuses, with a
 * `DeferredSignatureError` and nothing changed, a package that fails verification, is already
 * signed, or is not in the signable form (one frame; a last frame that is not exactly the
 * trailer; skippable frames; data after the trailer).
 */
export async function signDeferredPackage(path: string, key: SigningKey, options: DeferredSignOptions = {}): Promise<SignedPackage> {
  let verified;
  try {
    verified = await verifyPackage(path, { strict: options.strict ?? false });
  } catch (error) {
    if (error instanceof PackageRejectedError) {
      throw new DeferredSignatureError(path, 'invalid', `it fails verification:\n${error.problems.map((p) => `  ${p}`).join('\n')}`, { cause: error });
    }
    throw error;
  }
  const { facts, manifest } = verified;
  if (verified.signature.state !== 'unsigned' || facts.signature !== undefined) {
    throw new DeferredSignatureError(path, 'already-signed', 'the package already has a .peipkg/signature entry');
  }
  if (facts.signableDigest === undefined || facts.zeroBlocks !== TRAILER_BLOCKS) {
    throw new DeferredSignatureError(
      path,
      'not-signable',
      `the tar must end in exactly ${TRAILER_BLOCKS} zero blocks right after the last entry (it ends in ${facts.zeroBlocks})`,
    );
  }
  const mtime = facts.entries[0]?.mtime;
  if (mtime === undefined) throw new DeferredSignatureError(path, 'invalid', 'the package has no entries');
  let appended;
  try {
    appended = await appendSignature(path, key, facts.signableDigest, { mtime, expectedSize: facts.compressedSize });
  } catch (error) {
    if (error instanceof CorruptDataError) throw new DeferredSignatureError(path, 'not-signable', error.message.replace(`${path}: `, ''), { cause: error });
    if (error instanceof FileChangedError) throw new DeferredSignatureError(path, 'changed', error.message.replace(`${path}: `, ''), { cause: error });
    throw error;
  }
  return {
    path,
    name: manifest.name,
    version: manifest.version,
    architecture: manifest.architecture,
    signedDigest: facts.signableDigest,
    fingerprint: appended.fingerprint,
    signature: appended.signature,
    size: appended.outputSize,
  };
}
