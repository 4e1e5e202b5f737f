/**
 * `peipkg-repo verify --mode hashes` with a warm page cache, against baselines measured in the same
 * run (issue 14: target ≥ 2.2 GB/s on 2 cores):
 *
 *   - `sha256sum` over the same files, one process;
 *   - two `sha256sum` processes in parallel, each on half of the files (what two cores give a tool
 *     that is no smarter than splitting the list);
 *   - for scale, in this process: SHA-256 of 100 MB already in memory on one core (the ceiling per
 *     core), and the addon's `sha256Files` on the same files with 1 and 2 threads (the ceiling for
 *     the command, without Node's start-up and the state's loading).
 *
 * Rounds interleave the commands so that load from elsewhere hits them all alike; the report gives
 * medians. The machine is shared: the load average is printed at start and end.
 *
 * Run: node --import=tsx bench/hashes.ts  (needs `npm run build`; ~2.3 GB in $TMPDIR, removed after
 * unless BENCH_KEEP=1; BENCH_STATE=<dir kept before> reuses that state; BENCH_ROUNDS, default 5;
 * BENCH_BASELINE=<other checkout>/bin/peipkg-repo.js adds that build's verify to the same rounds,
 * for a before/after).
 * A benchmark, not a test: it prints numbers and never fails on them.
 */

import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { canonicalJson } from '../ts/format/json.js';
import { loadSigningKey, sha256, sha256Files, signingKeyInfo } from '../ts/native.js';
import { encodeDescriptor, keyUrl } from '../ts/repo/descriptor.js';
import { detachedSignature } from '../ts/repo/signature.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const repoCli = join(root, 'bin/peipkg-repo.js');
const PACKAGE_COUNT = 22;
/** 96 MiB: 22 of them make ~2.2 GB, as in bench/repo.ts. */
const PACKAGE_MIB = 96;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/**
 * A signed state whose indexes name `PACKAGE_COUNT` package files, all present (the part of
 * bench/repo.ts's state building that the hash check needs). Returns the files.
 */
async function hashState(dir: string): Promise<string[]> {
  const keyPath = join(dir, 'key.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyPath]);
  const key = loadSigningKey(keyPath);
  const fp = signingKeyInfo(key).fingerprint;
  const state = join(dir, 'state');
  await mkdir(join(state, 'index'), { recursive: true });
  await mkdir(join(state, 'keys'));
  await writeFile(join(state, 'keys', `${fp}.pub`), signingKeyInfo(key).publicKeyPem);
  const entries: Array<Record<string, unknown>> = [];
  const files: string[] = [];
  const chunk = randomBytes(1 << 20);
  for (let i = 0; i < PACKAGE_COUNT; i++) {
    const name = `pkg-${String(i).padStart(6, '0')}`;
    const url = `/p/${name}/1.0-1/${name}_1.0-1_x86_64.peipkg`;
    const file = join(state, url);
    await mkdir(join(file, '..'), { recursive: true });
    // The name at the end makes every file's digest different.
    const bytes = Buffer.concat([...Array<Buffer>(PACKAGE_MIB).fill(chunk), Buffer.from(name)]);
    await writeFile(file, bytes);
    files.push(file);
    entries.push({
      name, version: '1.0-1', architecture: 'x86_64', description: 'A synthetic package for the hash benchmark.', license: 'MIT',
      homepage: 'https://peios.org', dependencies: [], optional_dependencies: [], conflicts: [], provides: [], replaces: [],
      side_effects: [], size_compressed: bytes.length, size_installed: bytes.length * 3,
      hash: { algorithm: 'sha256', value: createHash('sha256').update(bytes).digest('hex') }, url,
      build: { timestamp: '2026-05-06T12:00:00Z', farm_id: 'bench' },
    });
  }
  for (const kind of ['active', 'archive']) {
    const text = canonicalJson({ schema_version: 1, repo: 'bench', kind, index_version: 7, generated_at: '2026-05-07T00:00:00Z', packages: entries });
    await writeFile(join(state, 'index', `${kind}.json`), text);
    await writeFile(join(state, 'index', `${kind}.json.sig`), detachedSignature(key, sha256(Buffer.from(text))));
  }
  const descriptor = encodeDescriptor({ name: 'bench', description: '', keys: [{ fingerprint: fp, url: keyUrl(fp), status: 'active', validUntil: '' }] });
  await writeFile(join(state, 'repo.json'), descriptor);
  await writeFile(join(state, 'repo.json.sig'), detachedSignature(key, sha256(Buffer.from(descriptor))));
  return files;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const reuse = process.env.BENCH_STATE;
  const work = reuse ?? (await mkdtemp(join(tmpdir(), 'peipkg-bench-hashes-')));
  try {
    let files: string[];
    if (reuse && existsSync(join(reuse, 'state', 'repo.json'))) {
      files = (await execa('find', [join(reuse, 'state', 'p'), '-name', '*.peipkg'])).stdout.split('\n').sort();
    } else {
      console.log(`building a state with ${PACKAGE_COUNT} package files of ${PACKAGE_MIB} MiB…`);
      files = await hashState(work);
    }
    const state = join(work, 'state');
    let bytes = 0;
    for (const f of files) bytes += (await stat(f)).size;
    const gb = bytes / 1e9;
    const halves = [files.filter((_, i) => i % 2 === 0), files.filter((_, i) => i % 2 === 1)];

    // Warm the page cache, and check once that the command passes (a failed check is no result).
    await execa('sh', ['-c', 'cat "$@" > /dev/null', 'cat', ...files]);
    await execa(process.execPath, [repoCli, 'verify', '--repo', state, '--mode', 'hashes']);
    if (process.env.BENCH_BASELINE) await execa(process.execPath, [process.env.BENCH_BASELINE, 'verify', '--repo', state, '--mode', 'hashes']);

    console.log(`${files.length} files, ${gb.toFixed(3)} GB, warm cache; ${ROUNDS} interleaved rounds; load average at start ${load()}`);
    const commands: Array<[string, () => Promise<unknown>]> = [
      ['peipkg-repo verify --mode hashes', () => execa(process.execPath, [repoCli, 'verify', '--repo', state, '--mode', 'hashes'])],
      ...(process.env.BENCH_BASELINE
        ? [['baseline verify --mode hashes', () => execa(process.execPath, [process.env.BENCH_BASELINE!, 'verify', '--repo', state, '--mode', 'hashes'])] as [string, () => Promise<unknown>]]
        : []),
      ['sha256sum, 1 process', () => execa('sha256sum', files)],
      ['sha256sum, 2 processes', () => Promise.all(halves.map((h) => execa('sha256sum', h)))],
      ['in-process sha256Files, 2 threads', () => sha256Files(files, { threads: 2 })],
      ['in-process sha256Files, 1 thread', () => sha256Files(files, { threads: 1 })],
    ];
    const times = new Map<string, number[]>(commands.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, run] of commands) times.get(name)!.push(await seconds(run));
    }

    // One core's ceiling: hashing bytes already in memory (no reads, no page faults).
    const inMemory = await readFile(files[0]!);
    const memory: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      memory.push(await seconds(() => Promise.resolve(createHash('sha256').update(inMemory).digest())));
    }

    const ours = median(times.get(commands[0]![0])!);
    console.log('\nmedians (wall):');
    for (const [name] of commands) {
      const s = median(times.get(name)!);
      const ratio = name === commands[0]![0] ? '' : `  ours is ${(s / ours).toFixed(2)}× faster`;
      console.log(`  ${name.padEnd(36)} ${s.toFixed(3)} s = ${(gb / s).toFixed(2)} GB/s${ratio}`);
    }
    console.log(`  ${'1 core, 100 MB in memory (node:crypto)'.padEnd(36)} ${(inMemory.length / 1e9 / median(memory)).toFixed(2)} GB/s per core`);
    console.log(`\npeipkg-repo verify --mode hashes: ${(gb / ours).toFixed(2)} GB/s (target ≥ 2.2 GB/s); load average at end ${load()}`);
    console.log(`all rounds (s): ${JSON.stringify(Object.fromEntries([...times].map(([k, v]) => [k, v.map((x) => Number(x.toFixed(3)))])))}`);
  } finally {
    if (process.env.BENCH_KEEP === '1' || reuse) console.log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
