/**
 * `peipkg-build verify FILE…`: runs the package verifier on each file and prints its manifest.
 * Signatures are checked against the `--public-key` files given; without any, a signature is
 * reported as present but unchecked (a fingerprint cannot be turned back into a key).
 */

import { readFile } from 'node:fs/promises';

import { InputError } from '../errors.js';
import { PackageRejectedError, verifyPackage, type SignatureStatus } from '../format/verify.js';
import { parsePublicKey } from '../native.js';

export interface InspectRequest {
  files: string[];
  publicKeys: string[];
  requireSigned: boolean;
  strict: boolean;
}

export type InspectResult =
  | { path: string; valid: true; signature: SignatureStatus; manifest: unknown }
  | { path: string; valid: false; problems: string[] };

async function trustedKeys(paths: string[]): Promise<Map<string, Uint8Array> | undefined> {
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
      results.push({ path, valid: true, signature: verified.signature, manifest });
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
