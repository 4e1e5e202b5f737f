/**
 * The addon is called with values TypeScript's types would refuse: every one must come back as an
 * Error with a message, never a crash (Node 18 aborts on napi_get_buffer_info with a non-Buffer).
 */

import test from 'ava';

import { rawAddonForTests } from '../../ts/native.js';

type Fn = (...args: unknown[]) => unknown;
const addon = rawAddonForTests as Record<string, Fn>;
const call = (name: string, ...args: unknown[]): unknown => addon[name]!(...args);

const wrongValues: unknown[] = [undefined, null, 42, 'text', {}, [], Symbol('s'), () => 1, 10n, new Map()];

for (const [name, argCount] of Object.entries({
  sha256: 1,
  signingKeyFromBytes: 1,
  signingKeyInfo: 1,
  ed25519Sign: 2,
  ed25519Verify: 3,
  publicKeyParse: 1,
  zstdDecompress: 2,
  tarEntryHeader: 2,
  dirLockTry: 1,
  dirLockRelease: 1,
  renameExchange: 2,
  fsyncPath: 1,
  progressRead: 1,
})) {
  test(`${name} turns wrong argument types into errors`, (t) => {
    for (const value of wrongValues) {
      const args = Array.from({ length: argCount }, () => value);
      const error = t.throws(() => call(name, ...args));
      t.true(error instanceof Error, `${name}(${String(typeof value)})`);
      t.true((error?.message ?? '').length > 5);
    }
  });
}

// Strings and arrays are valid arguments of some of these; every other kind is wrong everywhere.
const wrongForAll = wrongValues.filter((v) => typeof v !== 'string' && !Array.isArray(v));

for (const name of ['sha256File', 'sha256Files', 'pack', 'zstdCompressFile', 'zstdDecompressFile', 'dirLockWait']) {
  test(`${name} rejects wrong argument types before starting work`, (t) => {
    for (const value of wrongForAll) {
      t.throws(() => call(name, value, value, value), undefined, `${name}(${typeof value})`);
    }
  });
}

test('a handle of one kind is refused where another is expected', (t) => {
  const progress = call('progressCreate');
  t.throws(() => call('ed25519Sign', progress, Buffer.alloc(32)), { message: /key must be a SigningKey/ });
  t.throws(() => call('dirLockRelease', progress), { message: /lock must be a DirLock/ });
});

test('errors carry a code', (t) => {
  const error = t.throws<Error & { code?: string }>(() => call('sha256', 'not a buffer'));
  t.is(error?.code, 'ERR_ARGUMENT');
  t.regex(error?.message ?? '', /data must be a Buffer, got a string/);
});
