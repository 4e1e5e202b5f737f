/**
 * Signing deferred-signature packages (`peipkg-build pack --deferred-signature`, then
 * `signDeferredPackage`), against a baseline measured in the same run:
 *
 *   1. `signDeferredPackage` (one verifying read + the in-place append) on a ~2 MB and a ~200 MB
 *      package, beside `zstd -d -c FILE > /dev/null` on the same file — the verifying read should
 *      cost about one decompression, whatever the size;
 *   2. `appendSignature` alone (frame walk + one small frame + fsync) on both — should be ~flat:
 *      it reads the frame and block headers only, never the compressed data; and the frame walk
 *      alone (3 bytes read per 128 KiB block).
 *
 * The staged trees are one file made by bench/gen-data.ts (1 MiB blocks taking turns: random bytes
 * and English-like text), plus a small text file. Page cache warm; medians of BENCH_RUNS (default 5).
 *
 * Run: node --import=tsx bench/sign.ts  (needs `npm run build`; ~450 MB in $TMPDIR, removed after
 * unless BENCH_KEEP=1). A benchmark, not a test: it prints numbers and never fails on them.
 */

import { appendFile, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { signDeferredPackage } from '../ts/format/deferredSignature.js';
import { verifyPackage } from '../ts/format/verify.js';
import { appendSignature, fsyncPath, loadSigningKey, readPackage } from '../ts/native.js';
import { median } from './measure.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const buildCli = join(root, 'bin/peipkg-build.js');
const keyPath = join(root, '__test__/fixtures/vectors/keys/test-signing.ed25519');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SIZES_MIB = [2, 200];

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return (performance.now() - start) / 1000;
}

/** A deferred-signature package of a `mib` MiB staged file (plus a small one). */
async function makePackage(dir: string, mib: number): Promise<string> {
  const staged = join(dir, `staged-${mib}`);
  await mkdir(join(staged, 'usr/share/bench'), { recursive: true });
  await execa(process.execPath, ['--import=tsx', join(root, 'bench/gen-data.ts'), String(mib), join(staged, 'usr/share/bench/data.bin')], { cwd: root });
  await writeFile(join(staged, 'usr/share/bench/README'), 'deferred-signature benchmark\n');
  const manifest = join(dir, `manifest-${mib}.json`);
  await writeFile(manifest, JSON.stringify({
    name: `bench-${mib}`, version: '1.0-1', architecture: 'noarch', description: 'Deferred-signature benchmark.', license: 'CC0-1.0',
    build: { timestamp: '2026-05-06T12:00:00Z', farm_id: 'bench', source_ref: 'bench://sign' },
  }));
  const out = join(dir, `bench-${mib}.peipkg`);
  await execa(process.execPath, [buildCli, 'pack', '--manifest', manifest, '--staged', staged, '--out', out, '--deferred-signature']);
  await rm(staged, { recursive: true });
  return out;
}

interface Row {
  mib: number;
  packageMB: number;
  sign: number;
  append: number;
  walk: number;
  verify: number;
  zstd: number;
}

async function measure(dir: string, template: string, mib: number): Promise<Row> {
  const key = loadSigningKey(keyPath);
  const work = join(dir, `work-${mib}.peipkg`);
  const facts = await readPackage(template);
  const sign: number[] = [];
  const append: number[] = [];
  const zstd: number[] = [];
  const walk: number[] = [];
  const verify: number[] = [];
  // The frame walk alone: a copy ending in a skippable frame is walked header by header, then
  // refused before anything is written.
  const walked = join(dir, `walk-${mib}.peipkg`);
  await copyFile(template, walked);
  const skippable = Buffer.alloc(8);
  skippable.writeUInt32LE(0x184d2a50, 0);
  await appendFile(walked, skippable);
  // Each run signs a fresh copy, synced first: the fsync at the end of signing must wait for the
  // signature frame only, not for the copy's dirty pages.
  const fresh = async (): Promise<void> => {
    await copyFile(template, work);
    fsyncPath(work);
  };
  for (let i = 0; i < RUNS; i++) {
    await fresh();
    zstd.push(await seconds(() => execa('sh', ['-c', `zstd -q -d -c "${work}" > /dev/null`])));
    verify.push(await seconds(() => verifyPackage(work)));
    sign.push(await seconds(() => signDeferredPackage(work, key)));
    await fresh();
    append.push(await seconds(() => appendSignature(work, key, facts.signableDigest!, { mtime: facts.entries[0]!.mtime, expectedSize: facts.compressedSize })));
    walk.push(await seconds(() => appendSignature(walked, key, facts.signableDigest!, { mtime: 0 }).then(
      () => { throw new Error('the walk-only copy was signed'); },
      (error: unknown) => { if (!/skippable/.test(String(error))) throw error; },
    )));
  }
  return { mib, packageMB: facts.compressedSize / 1e6, sign: median(sign), append: median(append), walk: median(walk), verify: median(verify), zstd: median(zstd) };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'peipkg-bench-sign-'));
  try {
    console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs each, medians`);
    const rows: Row[] = [];
    for (const mib of SIZES_MIB) rows.push(await measure(dir, await makePackage(dir, mib), mib));
    const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;
    console.log('| staged | package | signDeferredPackage | verifyPackage alone | zstd -d -c > /dev/null | sign / zstd -d | appendSignature alone | of which frame walk |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.mib} MiB | ${r.packageMB.toFixed(1)} MB | ${ms(r.sign)} | ${ms(r.verify)} | ${ms(r.zstd)} | ${(r.sign / r.zstd).toFixed(2)} | ${ms(r.append)} | ${ms(r.walk)} |`);
    }
    const [small, big] = rows;
    if (small && big) console.log(`appendSignature, ${big.mib} MiB vs ${small.mib} MiB: ${(big.append / small.append).toFixed(2)}× (flat = 1)`);
    console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    if (process.env.BENCH_KEEP !== '1') await rm(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

await main();
