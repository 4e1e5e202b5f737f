/**
 * `peipkg-repo` at archive scale (issue 14), against baselines measured in the same run:
 *
 *   - `verify --mode metadata` and the publish of one package into a state of 100,000 entries
 *     (25,000 names × 4 versions; 57 MB archive, 14 MB active): targets ≤ 0.45 s and ≤ 0.7 s, peak RSS ≤ 200 MB;
 *   - the same at 1,000,000 entries (567 MB archive): both finish, and peak RSS grows no faster
 *     than the index size (it counts the mapped index documents, which is most of it);
 *   - baselines: `node -e 0` (Node's start-up, which every command pays), `sha256sum` of the two
 *     index documents (reading and hashing the signed bytes: the least a metadata check does),
 *     copying them with `cp` and `sync` (the least a publish writes), and, for scale, `JSON.parse`
 *     of the 100,000-entry archive in this process.
 *
 * Each publish adds a new version of an existing name (the usual case), in place. Rounds interleave
 * the commands, and the index documents are read once before each command: this machine's memory
 * manager pages out file pages that have gone cold, so "warm cache" has to be made each time.
 * `verify --mode hashes` has its own benchmark, bench/hashes.ts.
 *
 * Run: node --import=tsx bench/repo.ts  (needs `npm run build`; ~1.5 GB in $TMPDIR, removed after
 * unless BENCH_KEEP=1; BENCH_ROUNDS, default 5; BENCH_MILLION=0 skips the 1,000,000-entry part,
 * which takes a few minutes to generate).
 * A benchmark, not a test: it prints numbers and never fails on them.
 */

import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { execa } from 'execa';

import { makePackage } from '../__test__/helpers/packages.js';
import { loadSigningKey } from '../ts/native.js';
import { loadAverage, median, timed, type Measured } from './measure.js';
import { syntheticState } from './repoState.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const repoCli = join(root, 'bin/peipkg-repo.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MILLION = process.env.BENCH_MILLION !== '0';

interface Scale {
  entries: number;
  indexMB: number;
  verify: Measured;
  publish: Measured;
}

const documents = (state: string): string[] => ['active.json', 'archive.json'].map((d) => join(state, 'index', d));
const warm = (state: string): Promise<unknown> => execa('sh', ['-c', 'cat "$@" > /dev/null', 'cat', ...documents(state)]);

/** The median run by wall time, with the largest peak RSS of all runs. */
function summary(runs: readonly Measured[]): Measured {
  return { seconds: median(runs.map((r) => r.seconds)), peakMB: Math.max(...runs.map((r) => r.peakMB)) };
}

async function measureScale(work: string, keyPath: string, entries: number, rounds: number): Promise<Scale> {
  const state = join(work, `state-${entries}`);
  const started = performance.now();
  await syntheticState(state, keyPath, { entryCount: entries, versionsPerName: 4 });
  const indexBytes = (await Promise.all(documents(state).map((d) => stat(d)))).reduce((sum, s) => sum + s.size, 0);
  console.log(`${entries.toLocaleString()} entries: indexes ${(indexBytes / 1e6).toFixed(0)} MB, made in ${((performance.now() - started) / 1000).toFixed(0)} s`);

  const key = loadSigningKey(keyPath);
  const copies = join(work, 'copies');
  const runs = new Map<string, Measured[]>();
  const record = (name: string, m: Measured): void => void runs.set(name, [...(runs.get(name) ?? []), m]);
  for (let round = 0; round < rounds; round++) {
    const incoming = join(work, `incoming-${entries}-${round}`);
    await makePackage(incoming, { name: 'pkg-0000005', version: `1.9.${round}-1`, signingKey: key });
    const timestamp = `2026-06-01T00:${String(round).padStart(2, '0')}:00Z`;
    await warm(state);
    record('node -e 0', await timed(process.execPath, ['-e', '0']));
    await warm(state);
    record('sha256sum of the indexes', await timed('sha256sum', documents(state)));
    await warm(state);
    record('verify', await timed(process.execPath, [repoCli, 'verify', '--repo', state, '--mode', 'metadata']));
    await rm(copies, { recursive: true, force: true });
    await mkdir(copies);
    await warm(state);
    record('cp + sync of the indexes', await timed('sh', ['-c', 'cp "$@" "$0" && sync "$0"/*', copies, ...documents(state)]));
    await warm(state);
    record('publish', await timed(process.execPath, [repoCli, 'publish', '--in', state, '--new', incoming, '--sign-key', keyPath, '--timestamp', timestamp, '--out', state]));
    await rm(incoming, { recursive: true, force: true });
  }
  await timed(process.execPath, [repoCli, 'verify', '--repo', state, '--mode', 'metadata']);

  const verify = summary(runs.get('verify')!);
  const publish = summary(runs.get('publish')!);
  const line = (name: string, m: Measured, against?: Measured): string =>
    `  ${name.padEnd(28)} ${m.seconds.toFixed(3)} s  peak ${m.peakMB.toFixed(0).padStart(4)} MB` +
    (against ? `   ours ${(m.seconds / against.seconds).toFixed(2)}× its time` : '');
  const baseline = (name: string): Measured => summary(runs.get(name)!);
  console.log(`  medians of ${rounds} rounds (peak RSS: the largest):`);
  console.log(line('node -e 0', baseline('node -e 0')));
  console.log(line('sha256sum of the indexes', baseline('sha256sum of the indexes')));
  console.log(line('verify --mode metadata', verify, baseline('sha256sum of the indexes')) + ' (vs sha256sum)');
  console.log(line('cp + sync of the indexes', baseline('cp + sync of the indexes')));
  console.log(line('publish of one package', publish, baseline('cp + sync of the indexes')) + ' (vs cp + sync)');
  console.log(`  all rounds (s): ${JSON.stringify(Object.fromEntries([...runs].map(([k, v]) => [k, v.map((m) => m.seconds)])))}`);
  if (entries <= 100_000) {
    // For scale: what parsing the archive alone costs JavaScript (a 540 MB one is past V8's string limit).
    const archive = await readFile(documents(state)[1]!, 'utf8');
    const parseStarted = performance.now();
    JSON.parse(archive);
    console.log(`  for scale, JSON.parse of the archive alone, in this process: ${((performance.now() - parseStarted) / 1000).toFixed(2)} s`);
  }
  console.log('');
  if (process.env.BENCH_KEEP !== '1') await rm(state, { recursive: true, force: true });
  return { entries, indexMB: indexBytes / 1e6, verify, publish };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'peipkg-bench-repo-'));
  try {
    const keyPath = join(work, 'key.pem');
    await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyPath]);
    console.log(`load average at start: ${loadAverage()}\n`);
    const small = await measureScale(work, keyPath, 100_000, ROUNDS);

    const targets = [
      `verify --mode metadata ${small.verify.seconds.toFixed(2)} s (target ≤ 0.45 s)`,
      `publish of one package ${small.publish.seconds.toFixed(2)} s (target ≤ 0.7 s)`,
      `peak RSS ${Math.max(small.verify.peakMB, small.publish.peakMB).toFixed(0)} MB (target ≤ 200 MB)`,
    ];
    console.log(`at 100,000 entries: ${targets.join('; ')}`);
    if (MILLION) {
      const large = await measureScale(work, keyPath, 1_000_000, Math.min(ROUNDS, 3));
      const times = (m: (s: Scale) => number): string => `${(m(large) / m(small)).toFixed(1)}×`;
      console.log(
        `at 1,000,000 entries: verify ${large.verify.seconds.toFixed(2)} s, publish ${large.publish.seconds.toFixed(2)} s; ` +
          `for an index ${times((s) => s.indexMB)} larger, peak RSS grew ${times((s) => s.verify.peakMB)} (verify) and ` +
          `${times((s) => s.publish.peakMB)} (publish): target no faster than the index`,
      );
    }
    console.log(`load average at end: ${loadAverage()}`);
  } finally {
    if (process.env.BENCH_KEEP === '1') console.log(`kept ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}

await main();
