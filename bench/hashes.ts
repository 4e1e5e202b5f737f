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

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { sha256Files } from '../ts/native.js';
import { loadAverage as load, median } from './measure.js';
import { syntheticState } from './repoState.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const repoCli = join(root, 'bin/peipkg-repo.js');
const PACKAGE_COUNT = 22;
/** 96 MiB: 22 of them make ~2.2 GB. */
const PACKAGE_MIB = 96;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** A signed state whose indexes name `PACKAGE_COUNT` package files, all present; the files. */
async function hashState(dir: string): Promise<string[]> {
  const keyPath = join(dir, 'key.pem');
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyPath]);
  await syntheticState(join(dir, 'state'), keyPath, { entryCount: PACKAGE_COUNT, files: PACKAGE_COUNT, fileBytes: PACKAGE_MIB << 20 });
  return packageFiles(dir);
}

async function packageFiles(dir: string): Promise<string[]> {
  return (await execa('find', [join(dir, 'state', 'p'), '-name', '*.peipkg'])).stdout.split('\n').sort();
}

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const reuse = process.env.BENCH_STATE;
  const work = reuse ?? (await mkdtemp(join(tmpdir(), 'peipkg-bench-hashes-')));
  try {
    let files: string[];
    if (reuse && existsSync(join(reuse, 'state', 'repo.json'))) {
      files = await packageFiles(reuse);
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
