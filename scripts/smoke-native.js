#!/usr/bin/env node
// Smoke test of one built addon, for comparing builds across architectures:
//
//   node scripts/smoke-native.js native/peipkg-native.linux-x64-gnu.node
//   qemu-aarch64 -L .cache/arm64-node/root .cache/arm64-node/root/usr/bin/node \
//     scripts/smoke-native.js native/peipkg-native.linux-arm64-gnu.node
//
// Loads the addon directly (no dist/, no TypeScript: Debian's arm64 Node is 18), runs hashing,
// zstd, Ed25519 signing and a signed pack over fixed inputs, checks the round trips it can check
// by itself, and prints the results as one JSON object. Two builds are equivalent when they print
// the same JSON (__test__/dist/arm64.test.ts compares them). Plain JavaScript on purpose.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [addonPath] = process.argv.slice(2);
if (!addonPath) {
  process.stderr.write('usage: smoke-native.js <addon.node>\n');
  process.exit(2);
}
const addon = createRequire(import.meta.url)(resolve(addonPath));
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const check = (ok, what) => {
  if (!ok) throw new Error(`smoke-native: ${what}`);
};

/** 3 MiB that compress like real files: text lines mixed with pseudo-random runs (an LCG). */
function sample() {
  const out = Buffer.alloc(3 << 20);
  let x = 12345;
  for (let i = 0; i < out.length; ) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    if (x % 3 === 0) {
      i += out.write(`line ${i} of the peipkg smoke sample: ${x.toString(36)}\n`, i, 'latin1');
    } else {
      for (let n = 0; n < 64 && i < out.length; n++, i++) out[i] = (x >>> (n % 24)) & 0xff;
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'peipkg-smoke-'));
try {
  const data = sample();
  const input = join(dir, 'sample.bin');
  writeFileSync(input, data);
  const result = { zstdVersion: addon.zstdVersion() };

  result.sha256 = addon.sha256(data);
  check(result.sha256 === sha256(data), 'sha256 differs from node:crypto');
  result.sha256File = await addon.sha256File(input);

  for (const workers of [1, 2]) {
    const output = join(dir, `sample.${workers}.zst`);
    const totals = await addon.zstdCompressFile(input, output, { level: 10, workers });
    const compressed = readFileSync(output);
    check(addon.zstdDecompress(compressed, { maxBytes: data.length }).equals(data), 'zstd round trip');
    result[`zstdLevel10Workers${workers}`] = { ...totals, sha256: sha256(compressed) };
  }

  const keyPath = join(dir, 'key.pem');
  writeFileSync(keyPath, '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPrT8zkVivQ1/emvNoI8ibn1BZnTr/Og/5O+AuX/MQ6S\n-----END PRIVATE KEY-----\n');
  const key = addon.signingKeyLoad(keyPath);
  const info = addon.signingKeyInfo(key);
  const message = Buffer.from(result.sha256, 'hex');
  const signature = addon.ed25519Sign(key, message);
  check(verify(null, message, createPublicKey(info.publicKeyPem), signature), 'node:crypto rejects the signature');
  check(addon.ed25519Verify(info.publicKey, message, signature), 'the addon rejects its own signature');
  result.ed25519 = { fingerprint: info.fingerprint, signature: signature.toString('hex') };

  mkdirSync(join(dir, 'tree/usr/share/smoke'), { recursive: true });
  writeFileSync(join(dir, 'tree/usr/share/smoke/sample.bin'), data);
  const packed = join(dir, 'smoke.peipkg');
  const outcome = await addon.pack({
    output: packed,
    mtime: 1778068800,
    root: join(dir, 'tree'),
    entries: [
      { name: '.peipkg/manifest.json', type: 'file', data: Buffer.from('{"name":"smoke"}\n') },
      { name: 'usr/', type: 'directory' },
      { name: 'usr/share/', type: 'directory' },
      { name: 'usr/share/smoke/', type: 'directory' },
      { name: 'usr/share/smoke/sample.bin', type: 'file', source: 'usr/share/smoke/sample.bin', size: data.length, sha256: result.sha256 },
      { name: 'usr/share/smoke/link', type: 'symlink', target: 'sample.bin' },
    ],
    signingKey: key,
    compression: { level: 3, workers: 2 },
  });
  const facts = await addon.readPackage(packed, {});
  check(facts.signedDigest === outcome.signedDigest, 'readPackage disagrees with pack on the signed digest');
  result.pack = {
    sha256: sha256(readFileSync(packed)),
    tarSize: outcome.tarSize,
    signedDigest: outcome.signedDigest,
    signature: outcome.signature.toString('hex'),
    entries: facts.entries.map((e) => `${e.type === '\0' ? '0' : e.type} ${e.name} ${e.size}`),
  };

  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
