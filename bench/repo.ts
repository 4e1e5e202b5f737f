/**
 * peipkg-repo speed and memory, against baselines measured in the same run (issue 4):
 *
 *   1. `verify --mode hashes` on a state holding ≥ 2 GB of packages (warm page cache), beside
 *      `sha256sum` on one core — target ≥ 1.5 GB/s on 2 cores (the docs quote ~0.2 GB/s);
 *   2. `verify --mode metadata` on an archive of 100,000 entries — target < 1 s;
 *   3. incremental `publish` of one package into that state — target < 2 s, without reading
 *      the packages already published (they are not even present);
 *   4. `JSON.parse` of the 65 MB index alone, for scale;
 * with the peak RSS of each command (GNU time).
 *
 * Run: node --import=tsx bench/repo.ts  (needs `npm run build`; uses ~2.5 GB in $TMPDIR, removed after
 * unless BENCH_KEEP=1).
 * A benchmark, not a test: it prints numbers and never fails on them.
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { canonicalJson } from '../ts/format/json.js';
import { loadSigningKey, sha256, signingKeyInfo } from '../ts/native.js';
import { encodeDescriptor, keyUrl } from '../ts/repo/descriptor.js';
import { detachedSignature } from '../ts/repo/signature.js';
import { makePackage } from '../__test__/helpers/packages.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const repoCli = join(root, 'bin/peipkg-repo.js');
const ENTRIES = 100_000;
const PACKAGE_BYTES = 2.2e9;
const PACKAGE_COUNT = 22;

interface Measured {
  seconds: number;
  peakMB: number;
  output: string;
}

/** Runs a command under GNU time; returns wall seconds, peak RSS and output. */
async function timed(command: string, args: string[]): Promise<Measured> {
  const result = await execa('/usr/bin/time', ['-f', '%e %M', command, ...args], { reject: false, all: true });
  const last = result.stderr.trim().split('\n').pop() ?? '';
  const [seconds, kb] = last.split(' ').map(Number);
  if (result.exitCode !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.all ?? ''}`);
  return { seconds: seconds ?? NaN, peakMB: (kb ?? 0) / 1024, output: result.stdout };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function best(times: number, run: () => Promise<Measured>): Promise<Measured> {
  const runs: Measured[] = [];
  for (let i = 0; i < times; i++) runs.push(await run());
  const m = median(runs.map((r) => r.seconds));
  return runs.find((r) => r.seconds === m)!;
}

/**
 * A state whose indexes name `entryCount` packages; the first `PACKAGE_COUNT` of them exist on disk
 * with real bytes when `withFiles` (the others are only index entries).
 */
async function syntheticState(dir: string, keyPath: string, entryCount: number, withFiles: boolean): Promise<{ packagesBytes: number }> {
  const key = loadSigningKey(keyPath);
  const fp = signingKeyInfo(key).fingerprint;
  await mkdir(join(dir, 'index'), { recursive: true });
  await mkdir(join(dir, 'keys'));
  await writeFile(join(dir, 'keys', `${fp}.pub`), signingKeyInfo(key).publicKeyPem);
  const entries: Array<Record<string, unknown>> = [];
  let packagesBytes = 0;
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < entryCount; i++) {
    const name = `pkg-${String(i).padStart(6, '0')}`;
    const url = `/p/${name}/1.0-1/${name}_1.0-1_x86_64.peipkg`;
    let hash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    let size = 0;
    if (withFiles && i < PACKAGE_COUNT) {
      // Real bytes for the hash benchmark: ~100 MB each, different in every file.
      const file = join(dir, url);
      await mkdir(join(file, '..'), { recursive: true });
      const parts: Buffer[] = [];
      for (let m = 0; m < PACKAGE_BYTES / PACKAGE_COUNT / (1 << 20); m++) parts.push(chunk);
      parts.push(Buffer.from(name));
      const bytes = Buffer.concat(parts);
      await writeFile(file, bytes);
      hash = createHash('sha256').update(bytes).digest('hex');
      size = bytes.length;
      packagesBytes += size;
    }
    entries.push({
      name, version: '1.0-1', architecture: 'x86_64', description: 'A synthetic package for the repository benchmark.', license: 'MIT',
      homepage: 'https://peios.org', dependencies: [{ name: 'libc' }], optional_dependencies: [], conflicts: [], provides: [], replaces: [],
      side_effects: [], size_compressed: size, size_installed: size * 3, hash: { algorithm: 'sha256', value: hash }, url,
      build: { timestamp: '2026-05-06T12:00:00Z', farm_id: 'bench' },
    });
  }
  for (const kind of ['active', 'archive']) {
    const text = canonicalJson({ schema_version: 1, repo: 'bench', kind, index_version: 7, generated_at: '2026-05-07T00:00:00Z', packages: entries });
    await writeFile(join(dir, 'index', `${kind}.json`), text);
    await writeFile(join(dir, 'index', `${kind}.json.sig`), detachedSignature(key, sha256(Buffer.from(text))));
  }
  const descriptor = encodeDescriptor({ name: 'bench', description: '', keys: [{ fingerprint: fp, url: keyUrl(fp), status: 'active', validUntil: '' }] });
  await writeFile(join(dir, 'repo.json'), descriptor);
  await writeFile(join(dir, 'repo.json.sig'), detachedSignature(key, sha256(Buffer.from(descriptor))));
  return { packagesBytes };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'peipkg-bench-repo-'));
  try {
    const keyPath = join(work, 'key.pem');
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyPath]);
    // Two states: one whose index names the package files that are really there (for hashing),
    // and one with 100,000 index entries and no package files (metadata and publish).
    const hashState = join(work, 'hash-state');
    console.log(`building a state with ${PACKAGE_COUNT} package files, and one with ${ENTRIES.toLocaleString()} archive entries…`);
    const { packagesBytes } = await syntheticState(hashState, keyPath, PACKAGE_COUNT, true);
    const state = join(work, 'state');
    await syntheticState(state, keyPath, ENTRIES, false);
    const indexBytes = (await readFile(join(state, 'index/archive.json'))).length;
    console.log(`  packages: ${(packagesBytes / 1e9).toFixed(2)} GB; index/archive.json of the large state: ${(indexBytes / 1e6).toFixed(1)} MB\n`);

    // Warm the page cache, then verify hashes (ours) against sha256sum (one core).
    await execa('sh', ['-c', `cat $(find "${hashState}/p" -name '*.peipkg') > /dev/null`]);
    const files = (await execa('find', [join(hashState, 'p'), '-name', '*.peipkg'])).stdout.split('\n');
    const sum = await best(3, () => timed('sha256sum', files));
    const hashes = await best(3, () => timed(process.execPath, [repoCli, 'verify', '--repo', hashState, '--mode', 'hashes']));
    const gb = packagesBytes / 1e9;
    console.log('verify --mode hashes (warm cache)');
    console.log(`  peipkg-repo: ${hashes.seconds.toFixed(2)} s = ${(gb / hashes.seconds).toFixed(2)} GB/s, peak ${hashes.peakMB.toFixed(0)} MB  (target ≥ 1.5 GB/s)`);
    console.log(`  sha256sum:   ${sum.seconds.toFixed(2)} s = ${(gb / sum.seconds).toFixed(2)} GB/s  → ratio ${(sum.seconds / hashes.seconds).toFixed(2)}× faster\n`);
    await rm(hashState, { recursive: true, force: true });

    // Metadata only: signatures, active ⊆ archive, unique names. Packages are not read.
    const metadata = await best(3, () => timed(process.execPath, [repoCli, 'verify', '--repo', state, '--mode', 'metadata']));
    console.log(`verify --mode metadata, ${ENTRIES.toLocaleString()} entries: ${metadata.seconds.toFixed(2)} s, peak ${metadata.peakMB.toFixed(0)} MB  (target < 1 s)`);

    const started = performance.now();
    JSON.parse(await readFile(join(state, 'index/archive.json'), 'utf8'));
    console.log(`  for scale, JSON.parse of the ${(indexBytes / 1e6).toFixed(0)} MB archive alone: ${((performance.now() - started) / 1000).toFixed(2)} s\n`);

    // Incremental publish of one package; the 100,000 earlier packages are not on disk at all.
    const incoming = join(work, 'incoming');
    await makePackage(incoming, { name: 'newcomer', version: '1.0-1', signingKey: loadSigningKey(keyPath) });
    const runs: Measured[] = [];
    for (let i = 0; i < 3; i++) {
      runs.push(await timed(process.execPath, [repoCli, 'publish', '--in', state, '--new', incoming, '--sign-key', keyPath, '--timestamp', `2026-05-${String(8 + i).padStart(2, '0')}T00:00:00Z`, '--out', state]));
      await rm(join(state, 'p'), { recursive: true, force: true });
      // The next run publishes a different version of the package.
      await rm(incoming, { recursive: true, force: true });
      await makePackage(incoming, { name: 'newcomer', version: `1.${i + 1}-1`, signingKey: loadSigningKey(keyPath) });
    }
    const publish = runs.sort((a, b) => a.seconds - b.seconds)[1]!;
    console.log(`incremental publish of 1 package into ${ENTRIES.toLocaleString()} entries: ${publish.seconds.toFixed(2)} s, peak ${publish.peakMB.toFixed(0)} MB  (target < 2 s)`);
  } finally {
    if (process.env.BENCH_KEEP === '1') console.log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
