/**
 * Writes the memory benchmark's large file (bench/build.sh): `MIB` mebibytes that are the same on
 * every run and every machine. The file is 1 MiB blocks taking turns: pseudo-random bytes
 * (incompressible) and English-like text (words drawn from a fixed list, which compresses several
 * times over), so the compressor does real work on both kinds of input and the package is neither
 * trivially small nor as large as the file.
 *
 * Usage: node --import=tsx bench/gen-data.ts MIB OUT
 */

import { open } from 'node:fs/promises';

const BLOCK = 1 << 20;

const WORDS = (
  'package build recipe source version stanza manifest payload library shared object symbol ' +
  'section header archive signature digest compress window level worker thread memory stream ' +
  'frame block literal sequence offset match length table entry directory file symlink target ' +
  'prefix layout release mirror index publish farm upstream tag revision epoch timestamp license ' +
  'homepage depends provides replaces conflicts architecture triplet noarch doc man info locale'
)
  .split(' ')
  .map((w) => Buffer.from(w));

/** xoshiro128** with a fixed seed: fast, and the same sequence everywhere. */
class Rng {
  private s = new Uint32Array([0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x6a09e667]);

  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function randomBlock(rng: Rng, block: Buffer): void {
  const words = new Uint32Array(block.buffer, block.byteOffset, block.length / 4);
  for (let i = 0; i < words.length; i++) words[i] = rng.next();
}

function textBlock(rng: Rng, block: Buffer): void {
  let at = 0;
  while (at < block.length) {
    const r = rng.next();
    const word = WORDS[r % WORDS.length]!;
    at += word.copy(block, at);
    if (at < block.length) block[at++] = (r >>> 24) % 11 === 0 ? 0x0a : 0x20;
  }
}

async function main(): Promise<void> {
  const [mibArg, out] = process.argv.slice(2);
  const mib = Number(mibArg);
  if (!Number.isSafeInteger(mib) || mib < 1 || out === undefined) {
    console.error('usage: node --import=tsx bench/gen-data.ts MIB OUT');
    process.exit(2);
  }
  const rng = new Rng();
  const block = Buffer.alloc(BLOCK);
  const file = await open(out, 'w');
  try {
    for (let i = 0; i < mib; i++) {
      if (i % 2 === 0) randomBlock(rng, block);
      else textBlock(rng, block);
      await file.write(block, 0, block.length);
    }
  } finally {
    await file.close();
  }
}

await main();
