/** Paths to the spec's test vectors (copied from ../shared/spec/vectors) and the test key. */

import { fileURLToPath } from 'node:url';

export const vectorsDir = fileURLToPath(new URL('../fixtures/vectors/', import.meta.url));
export const vector = (relative: string): string => `${vectorsDir}${relative}`;
export const testKeyPath = vector('keys/test-signing.ed25519');
export const testPublicKeyPath = vector('keys/test-signing.pub');
/** 2026-05-06T12:00:00Z, the timestamp of every vector. */
export const VECTOR_MTIME = 1_778_068_800;
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
