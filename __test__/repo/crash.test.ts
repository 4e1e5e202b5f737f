/**
 * `peipkg-repo publish` is exclusive and crash-safe (DECISIONS.md, Repository writes): "a publish
 * killed at any instant leaves a state that verifies as either the old or the new one, with every
 * package its index names present, and the next publish succeeds without manual cleanup."
 *
 * Deterministic fault injection: the publish (and `init`) runs under
 * `strace -f -e inject=SET:signal=KILL:when=N` for every N across its `openat`, `rename`,
 * `renameat2`, `fsync` and `copy_file_range` calls from the moment it first touches the state
 * directory (Node opens hundreds of files while loading modules before that). A counting run
 * under plain strace says where each N lands (helpers/strace.ts: strace counts per thread and per
 * syscall; the runs use UV_THREADPOOL_SIZE=1 so those counts repeat). Every `write` into the state,
 * and every other changing call no N reaches, is killed at with `-P <its path>` instead; temporary
 * names repeat from run to run because `crypto.randomBytes` counts in these runs
 * (`COUNTING_RANDOM_BYTES`). Kill points that leave the same files as another (before an fsync or
 * a read-only open) run once; PEIPKG_CRASH_EVERY_KILL_POINT=1 runs them all, and
 * PEIPKG_CRASH_VERBOSE=1 logs every kill point with its outcome.
 *
 * After each kill: `verify --mode both` passes, every package the index names is there, the state
 * is the old or the new one, and a follow-up publish succeeds, verifies, and leaves no `*.tmp-*`.
 * A second pass starts from a state whose repo.json is re-encoded, so the publish also rewrites
 * repo.json and its signature (the pair that is not swapped as a unit).
 *
 * Then two publishes started at once, and `--lock-timeout` against a lock held by another process.
 */

import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { loadSigningKey, sha256 } from '../../ts/native.js';
import { detachedSignature } from '../../ts/repo/signature.js';
import { runTool } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { makePackage } from '../helpers/packages.js';
import { initState, publishInPlace, snapshot, vectorSeedFile } from '../helpers/repo.js';
import {
  COUNTING_RANDOM_BYTES,
  describeCall,
  isReadOnlyOpen,
  killedCall,
  killPoints,
  parseStraceLog,
  pathsOf,
  pinnedOrdinal,
  runUnderStrace,
  STRACE,
  type SyscallEvent,
} from '../helpers/strace.js';

const CLI = join(repoRoot, 'bin', 'peipkg-repo.js');
const T_FIRST = '2026-05-08T00:00:00Z';
const T_UNDER_TEST = '2026-05-09T00:00:00Z';
const T_FOLLOW_UP = '2026-05-10T00:00:00Z';
/** One libuv worker: Node's async fs calls all run on one thread, so `when=N` is reproducible. */
const STRACE_ENV = { UV_THREADPOOL_SIZE: '1' };
const TRACED = ['openat', 'write', 'rename', 'renameat', 'renameat2', 'fsync', 'fdatasync', 'copy_file_range'];
/**
 * strace counts per syscall, so `rename,renameat,renameat2:when=N` would always hit a plain
 * `rename` (there are ten) before the one `renameat2` exchange; the exchange gets its own group.
 */
const PUBLISH_GROUPS: ReadonlyArray<{ group: string; syscalls: readonly string[] }> = [
  { group: 'openat', syscalls: ['openat'] },
  { group: 'write', syscalls: ['write'] },
  { group: 'rename', syscalls: ['rename', 'renameat'] },
  { group: 'renameat2', syscalls: ['renameat2'] },
  { group: 'fsync', syscalls: ['fsync', 'fdatasync'] },
  { group: 'copy_file_range', syscalls: ['copy_file_range'] },
];
const INIT_GROUPS = PUBLISH_GROUPS.filter((g) => ['openat', 'write', 'rename', 'renameat2', 'fsync'].includes(g.group));
const PARALLEL_RUNS = 2;

interface ArchiveView {
  bytes: Buffer;
  indexVersion: number;
  packages: Array<{ name: string; url: string }>;
}

async function readArchive(dir: string): Promise<ArchiveView> {
  const bytes = await readFile(join(dir, 'index', 'archive.json'));
  const doc = JSON.parse(bytes.toString('utf8')) as { index_version: number; packages: Array<{ name: string; url: string }> };
  return { bytes, indexVersion: doc.index_version, packages: doc.packages.map((p) => ({ name: p.name, url: p.url })) };
}

/** Entries the index names whose file is not in the state (URLs here are `/p/...` paths). */
async function missingPackages(dir: string, archive: ArchiveView): Promise<string[]> {
  const missing: string[] = [];
  for (const { url } of archive.packages) {
    const present = url.startsWith('/') && (await stat(join(dir, url.slice(1))).then((s) => s.isFile(), () => false));
    if (!present) missing.push(url);
  }
  return missing;
}

/** `*.tmp-*` names at the top of the state and in index/. */
async function leftovers(dir: string): Promise<string[]> {
  const top = (await readdir(dir)).filter((n) => n.includes('.tmp-'));
  const index = (await readdir(join(dir, 'index')).catch(() => [] as string[])).filter((n) => n.includes('.tmp-')).map((n) => `index/${n}`);
  return [...top, ...index];
}

const verify = (dir: string) => runTool('peipkg-repo', ['verify', '--repo', dir, '--mode', 'both']);

const publishArgs = (dir: string, newDir: string, key: string, timestamp: string): string[] => [
  'publish',
  '--in',
  dir,
  '--new',
  newDir,
  '--sign-key',
  key,
  '--timestamp',
  timestamp,
  '--out',
  dir,
];

const copyState = async (from: string, to: string): Promise<void> => void (await execa('cp', ['-a', from, to]));

/** Runs `work` over `items`, `limit` at a time, keeping the order of results. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}

interface Plan {
  /** `openat`, `write`, … for `when=N` runs; `<syscall> -P` for runs pinned to one path. */
  group: string;
  syscalls: readonly string[];
  n: number;
  /** The killed call as the counting run predicts it (`describeCall`). */
  predicted: string;
  /** Count and inject only calls naming this path (strace -P), relative to the run's `base`. */
  pin?: string;
}

/** Calls that change files, traced in the counting runs but not injected into. */
const OTHER_CHANGES = ['mkdir', 'mkdirat', 'unlink', 'unlinkat', 'rmdir'];
/** Set to run every kill point, not one per distinct set of files left behind (PEIPKG_CRASH_VERBOSE=1 logs each). */
const EVERY_KILL_POINT = process.env.PEIPKG_CRASH_EVERY_KILL_POINT === '1';

const under = (base: string) => (p: string) => p === base || p.startsWith(`${base}/`);

/** A call that changes files under `base` (a read-only open or an fsync does not, for a process kill). */
const changes = (e: SyscallEvent, base: string): boolean =>
  !isReadOnlyOpen(e) && e.name !== 'fsync' && e.name !== 'fdatasync' && !/\)\s+= -1 /.test(e.args) && pathsOf(e).some(under(base));

/**
 * The kill points, from the counting run: every N of each group that kills at or after the first
 * call naming `marker`, then every other call under `base` that no N reaches, pinned to its path
 * (writes, whose counts drift with libuv's wake-ups; fsyncs of temporary files by the worker
 * thread; the main thread's fsyncs that another thread's count pre-empts). Read-only opens are
 * not pinned: the N of their group covers them.
 *
 * A SIGKILL leaves the files as they were after the last completed change: kills before an fsync
 * or a read-only open leave the same files as the kill before the next change. Unless
 * PEIPKG_CRASH_EVERY_KILL_POINT=1, only one kill point runs per distinct set of changes made
 * (the kill before the change itself where there is one), so each run tests a different state.
 * `from`: the first call (index in `events`) to consider.
 */
function plan(
  events: readonly SyscallEvent[],
  marker: string,
  base: string,
  groups: typeof PUBLISH_GROUPS,
  from = 0,
): { plans: Plan[]; skipped: number; duplicates: number } {
  const touch = events.findIndex((e) => e.args.includes(marker));
  if (touch < 0) throw new Error(`the counting run never touched ${marker}`);
  const firstTouch = Math.max(touch, from);
  const candidates: Array<{ plan: Plan; event: SyscallEvent }> = [];
  const reached = new Set<number>();
  for (const { group, syscalls } of groups) {
    if (syscalls.includes('write')) continue; // pinned below: wake-ups make write counts drift
    for (const { n, event } of killPoints(events, syscalls)) {
      if (event.index < firstTouch) continue;
      reached.add(event.index);
      candidates.push({ plan: { group, syscalls, n, predicted: describeCall(event, base) }, event });
    }
  }
  let skipped = 0;
  for (const e of events.slice(firstTouch)) {
    if (reached.has(e.index) || isReadOnlyOpen(e) || OTHER_CHANGES.includes(e.name) || !TRACED.includes(e.name)) continue;
    const path = pathsOf(e).find(under(base));
    if (path === undefined) {
      skipped++; // event-loop wake-ups, stdout, stderr
      continue;
    }
    const pinned: Plan = { group: `${e.name} -P`, syscalls: [e.name], n: pinnedOrdinal(events, e, path), predicted: describeCall(e, base), pin: relative(base, path) };
    candidates.push({ plan: pinned, event: e });
  }
  if (EVERY_KILL_POINT) return { plans: candidates.map((c) => c.plan), skipped, duplicates: 0 };
  // Changes completed before each call; one kill point per count, preferring a change, then an fsync.
  const done = new Map<number, number>();
  let count = 0;
  for (const e of events) {
    done.set(e.index, count);
    if (changes(e, base)) count++;
  }
  const rank = (e: SyscallEvent): number => (changes(e, base) ? 0 : e.name === 'fsync' || e.name === 'fdatasync' ? 1 : 2);
  const chosen = new Map<number, { plan: Plan; event: SyscallEvent }>();
  for (const c of candidates) {
    const key = done.get(c.event.index)!;
    const current = chosen.get(key);
    if (!current || rank(c.event) < rank(current.event) || (rank(c.event) === rank(current.event) && c.event.index < current.event.index)) chosen.set(key, c);
  }
  const plans = [...chosen.values()].sort((a, b) => a.event.index - b.event.index).map((c) => c.plan);
  return { plans, skipped, duplicates: candidates.length - plans.length };
}

interface Outcome {
  group: string;
  n: number;
  predicted: string;
  /** `old` / `new` state for publish, `absent` / `complete` for init, or why the run did not count. */
  outcome: string;
  call: string;
  /** The killed call was not the one the counting run predicted. */
  drifted: boolean;
  problems: string[];
}

interface Injected {
  killed: boolean;
  call: string;
  drifted: boolean;
  exit: string;
}

/** The command line of a run: the CLI with temporary names that repeat from run to run. */
const cliCommand = (args: string[]): string[] => [process.execPath, '--import', COUNTING_RANDOM_BYTES, CLI, ...args];

/** Runs one injected command; says whether it was killed, and at which call (described relative to `base`). */
async function injected(args: string[], p: Plan, log: string, base: string): Promise<Injected> {
  const run = await runUnderStrace(cliCommand(args), {
    log,
    trace: p.syscalls,
    inject: { syscalls: p.syscalls, when: p.n },
    env: STRACE_ENV,
    ...(p.pin === undefined ? {} : { paths: [join(base, p.pin)] }),
  });
  const text = await readFile(log, 'utf8');
  const killed = run.killed && text.includes('+++ killed by SIGKILL +++');
  const hit = killedCall(parseStraceLog(text), p.syscalls, p.n);
  const call = hit ? describeCall(hit, base) : '(no call)';
  return { killed, call, drifted: call !== p.predicted, exit: `exit ${run.exitCode ?? '-'} signal ${run.signal ?? '-'}: ${run.stderr.trim().slice(-300)}` };
}

function summarise(outcomes: readonly Outcome[]): string[] {
  const lines: string[] = [];
  if (process.env.PEIPKG_CRASH_VERBOSE === '1') {
    for (const o of outcomes) lines.push(`${o.group} when=${o.n}: ${o.outcome} after a kill at ${o.call}`);
  }
  for (const group of [...new Set(outcomes.map((o) => o.group))]) {
    const mine = outcomes.filter((o) => o.group === group);
    const counts = new Map<string, number>();
    for (const o of mine) counts.set(o.outcome, (counts.get(o.outcome) ?? 0) + 1);
    const ns = mine.map((o) => o.n);
    const drifted = mine.filter((o) => o.drifted);
    lines.push(
      `${group}: ${mine.length} runs (when=${Math.min(...ns)}..${Math.max(...ns)}): ` +
        [...counts].map(([k, v]) => `${v} ${k}`).join(', ') +
        (drifted.length > 0 ? `; ${drifted.length} killed elsewhere than predicted, e.g. ${drifted[0]!.call} for ${drifted[0]!.predicted}` : ''),
    );
  }
  return lines;
}

const failuresOf = (outcomes: readonly Outcome[]): string[] =>
  outcomes.filter((o) => o.problems.length > 0).map((o) => `${o.group} when=${o.n} at ${o.call}: ${o.problems.join(' | ')}`);

/**
 * Re-encodes repo.json with indentation (the same content, other bytes) and signs it: a valid
 * state whose next publish rewrites repo.json and repo.json.sig, the one pair that cannot be
 * swapped as a unit.
 */
async function reencodeDescriptor(dir: string, keyPath: string): Promise<Buffer> {
  const bytes = Buffer.from(`${JSON.stringify(JSON.parse(await readFile(join(dir, 'repo.json'), 'utf8')), null, 2)}\n`);
  await writeFile(join(dir, 'repo.json'), bytes);
  await writeFile(join(dir, 'repo.json.sig'), detachedSignature(loadSigningKey(keyPath), sha256(bytes)));
  return bytes;
}

/**
 * Test 1's body. With `rewriteDescriptor`, the state's repo.json is re-encoded first, so the
 * publish under test also rewrites it; kill points then start at the index exchange.
 */
async function killPublishEverywhere(t: ExecutionContext, rewriteDescriptor: boolean): Promise<void> {
  const started = Date.now();
  await stat(STRACE).catch(() => t.fail(`${STRACE} is missing: set-up installs strace`));
  const key = await vectorSeedFile(t);
  const base = await initState(t, key);
  const work = await tempDir(t, 'peipkg-crash-');
  const [first, second, third] = [join(work, 'new-1'), join(work, 'new-2'), join(work, 'new-3')];
  await makePackage(first, { name: 'alpha', version: '1.0-1' });
  await makePackage(second, { name: 'beta', version: '1.0-1' });
  await makePackage(second, { name: 'gamma', version: '2.0-1' });
  await makePackage(third, { name: 'delta', version: '1.0-1' });
  const published = await publishInPlace(base, first, key, T_FIRST);
  t.is(published.exitCode, 0, published.stderr);
  const canonical = await readFile(join(base, 'repo.json'));
  const reencoded = rewriteDescriptor ? await reencodeDescriptor(base, key) : canonical;
  t.is((await verify(base)).exitCode, 0);
  const old = await readArchive(base);
  t.is(old.indexVersion, 2);

  // The counting run: the same publish, uninjected, on a copy.
  const counting = join(work, 'count');
  await copyState(base, counting);
  const countLog = join(work, 'count.strace');
  const uninjected = await runUnderStrace(cliCommand(publishArgs(counting, second, key, T_UNDER_TEST)), { log: countLog, trace: [...TRACED, ...OTHER_CHANGES], env: STRACE_ENV });
  t.is(uninjected.exitCode, 0, uninjected.stderr);
  t.is((await readArchive(counting)).indexVersion, 3);
  t.deepEqual(await readFile(join(counting, 'repo.json')), canonical);
  const events = parseStraceLog(await readFile(countLog, 'utf8'));
  const exchange = events.findIndex((e) => e.name === 'renameat2');
  const { plans, skipped, duplicates } = plan(events, counting, counting, PUBLISH_GROUPS, rewriteDescriptor ? exchange : 0);
  const groups = rewriteDescriptor ? ['openat', 'write', 'rename', 'fsync'] : PUBLISH_GROUPS.map((g) => g.group);
  for (const group of groups) t.true(plans.some((p) => p.group.split(' ')[0] === group), `no ${group} call changes the state`);

  const runs = join(work, 'runs');
  await mkdir(runs);
  const outcomes = await pool(plans, PARALLEL_RUNS, async (p): Promise<Outcome> => {
    const dir = join(runs, `${p.group.replace(' -P', '-P')}-${p.n}-${plans.indexOf(p)}`);
    await copyState(base, dir);
    const problems: string[] = [];
    const run = await injected(publishArgs(dir, second, key, T_UNDER_TEST), p, `${dir}.strace`, dir);
    const outcome = (o: string): Outcome => ({ group: p.group, n: p.n, predicted: p.predicted, outcome: o, call: run.call, drifted: run.drifted, problems });
    // N past the end of this run's calls: not a kill point; note it and go on. A failed run is a failure.
    if (!run.killed && !run.exit.startsWith('exit 0 ')) problems.push(`the injected publish failed without being killed: ${run.exit}`);
    if (!run.killed) return outcome(`not killed (${run.exit.split(':')[0]})`);
    const checked = await verify(dir);
    if (checked.exitCode !== 0) problems.push(`verify after the kill: ${checked.stdout}${checked.stderr}`);
    let state = 'unreadable';
    let version = Number.NaN;
    try {
      const archive = await readArchive(dir);
      version = archive.indexVersion;
      const names = archive.packages.map((e) => e.name);
      if (archive.bytes.equals(old.bytes) || archive.indexVersion === 2) state = 'old';
      else if (archive.indexVersion === 3 && names.includes('beta') && names.includes('gamma')) state = 'new';
      else problems.push(`neither old nor new: index_version ${archive.indexVersion}, packages ${names.join(' ')}`);
      const missing = await missingPackages(dir, archive);
      if (missing.length > 0) problems.push(`the index names packages the state does not hold: ${missing.join(' ')}`);
    } catch (error) {
      problems.push(`read index/archive.json: ${(error as Error).message}`);
    }
    if (rewriteDescriptor) {
      const descriptor = await readFile(join(dir, 'repo.json'));
      const pending = (await readdir(dir)).some((n) => n.startsWith('repo.json.sig.tmp-'));
      const which = descriptor.equals(canonical) ? 'new' : descriptor.equals(reencoded) ? 'old' : 'other';
      if (which === 'other') problems.push(`repo.json is neither the old nor the new bytes: ${descriptor.toString('utf8').slice(0, 200)}`);
      state += `, repo.json ${which}${which === 'new' && pending ? ' (signature pending)' : ''}`;
    }
    const next = await runTool('peipkg-repo', publishArgs(dir, third, key, T_FOLLOW_UP));
    if (next.exitCode !== 0) problems.push(`follow-up publish: exit ${next.exitCode}: ${next.stderr}`);
    else {
      const again = await verify(dir);
      if (again.exitCode !== 0) problems.push(`verify after the follow-up: ${again.stdout}${again.stderr}`);
      const archive = await readArchive(dir);
      if (archive.indexVersion !== version + 1) problems.push(`follow-up wrote index_version ${archive.indexVersion}, expected ${version + 1}`);
      if (!archive.packages.some((e) => e.name === 'delta')) problems.push('follow-up did not list delta');
      const missing = await missingPackages(dir, archive);
      if (missing.length > 0) problems.push(`after the follow-up the index names missing packages: ${missing.join(' ')}`);
      const left = await leftovers(dir);
      if (left.length > 0) problems.push(`leftovers after the follow-up: ${left.join(' ')}`);
      if (!(await readFile(join(dir, 'repo.json'))).equals(canonical)) problems.push('after the follow-up repo.json is not the canonical encoding');
    }
    if (problems.length === 0) await rm(dir, { recursive: true, force: true });
    return outcome(state);
  });

  t.log(`${plans.length} injected publishes (${duplicates} kill points leaving the same files as another skipped; ${skipped} writes outside the state), ${((Date.now() - started) / 1000).toFixed(0)}s`);
  for (const line of summarise(outcomes)) t.log(line);
  t.deepEqual(failuresOf(outcomes), []);
  const killed = outcomes.filter((o) => !o.outcome.startsWith('not killed'));
  t.true(killed.length >= plans.length * 0.9, `the planned kills happen (${killed.length} of ${plans.length})`);
  t.true(outcomes.filter((o) => o.drifted).length <= plans.length / 10, 'kills land where the counting run says');
  t.true(killed.some((o) => o.outcome.startsWith('old')), 'some kill leaves the old state');
  t.true(killed.some((o) => o.outcome.startsWith('new')), 'some kill leaves the new state');
  t.true(killed.find((o) => o.group === 'renameat2')?.outcome.startsWith('old'), 'a kill just before the index exchange leaves the old state');
  if (rewriteDescriptor) {
    t.true(killed.some((o) => o.outcome.includes('signature pending')), 'some kill lands between the renames of repo.json and repo.json.sig');
  }
}

test.serial('publish killed at every openat, write, rename, fsync and copy_file_range leaves the old or the new state, and the next publish succeeds', async (t) => {
  t.timeout(240_000);
  await killPublishEverywhere(t, false);
});

test.serial('publish that rewrites repo.json, killed at every point from the index exchange on, leaves a state that verifies and the next publish completes', async (t) => {
  t.timeout(120_000);
  await killPublishEverywhere(t, true);
});

test.serial('init killed at every openat, write, rename and fsync leaves no state or a complete one', async (t) => {
  t.timeout(180_000);
  const key = await vectorSeedFile(t);
  const work = await tempDir(t, 'peipkg-crash-init-');
  const initArgs = (out: string): string[] => ['init', '--name', 'rt', '--sign-key', key, '--timestamp', '2026-05-07T00:00:00Z', '--out', out];

  // The state goes to <parent>/state, assembled in <parent>/state.tmp-*: calls are described, and
  // pinned, relative to <parent>.
  const countParent = join(work, 'count');
  await mkdir(countParent);
  const countLog = join(work, 'count.strace');
  const uninjected = await runUnderStrace(cliCommand(initArgs(join(countParent, 'state'))), { log: countLog, trace: [...TRACED, ...OTHER_CHANGES], env: STRACE_ENV });
  t.is(uninjected.exitCode, 0, uninjected.stderr);
  const events = parseStraceLog(await readFile(countLog, 'utf8'));
  const { plans, skipped, duplicates } = plan(events, join(countParent, 'state'), countParent, INIT_GROUPS);
  for (const group of ['rename', 'fsync', 'write']) t.true(plans.some((p) => p.group.startsWith(group)), `no ${group} call in init`);

  const outcomes = await pool(plans, PARALLEL_RUNS, async (p): Promise<Outcome> => {
    const parent = join(work, `${p.group.replace(' -P', '-P')}-${p.n}-${plans.indexOf(p)}`);
    await mkdir(parent); // strace -P wants the paths it pins to exist or to be under one that does
    const out = join(parent, 'state');
    const problems: string[] = [];
    const run = await injected(initArgs(out), p, `${parent}.strace`, parent);
    const outcome = (o: string): Outcome => ({ group: p.group, n: p.n, predicted: p.predicted, outcome: o, call: run.call, drifted: run.drifted, problems });
    if (!run.killed && !run.exit.startsWith('exit 0 ')) problems.push(`the injected init failed without being killed: ${run.exit}`);
    if (!run.killed) return outcome(`not killed (${run.exit.split(':')[0]})`);
    const entries = await readdir(out).catch(() => [] as string[]);
    let state: string;
    if (entries.length === 0) {
      state = 'absent';
      const again = await runTool('peipkg-repo', initArgs(out));
      if (again.exitCode !== 0) problems.push(`init again: exit ${again.exitCode}: ${again.stderr}`);
      else if ((await verify(out)).exitCode !== 0) problems.push('the state of the second init does not verify');
    } else {
      state = 'complete';
      const checked = await verify(out);
      if (checked.exitCode !== 0) problems.push(`--out holds ${entries.join(' ')}, which does not verify: ${checked.stdout}${checked.stderr}`);
      else {
        const archive = await readArchive(out);
        if (archive.indexVersion !== 1 || archive.packages.length !== 0) problems.push(`index_version ${archive.indexVersion} with ${archive.packages.length} packages`);
      }
    }
    return outcome(state);
  });

  t.log(`${plans.length} injected inits (${duplicates} kill points leaving the same files as another skipped; ${skipped} writes outside the state)`);
  for (const line of summarise(outcomes)) t.log(line);
  t.deepEqual(failuresOf(outcomes), []);
  const killed = outcomes.filter((o) => !o.outcome.startsWith('not killed')).length;
  t.true(killed >= plans.length * 0.9, `the planned kills happen (${killed} of ${plans.length})`);
  t.true(outcomes.some((o) => o.outcome === 'absent'));
  t.true(outcomes.some((o) => o.outcome === 'complete'), 'a kill after the rename into place (at the fsync of the parent) leaves a complete state');
});

test.serial('two publishes started at once: one waits for the other, and the state stays valid', async (t) => {
  t.timeout(120_000);
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const work = await tempDir(t);
  await makePackage(join(work, 'first'), { name: 'alpha', version: '1.0-1' });
  t.is((await publishInPlace(state, join(work, 'first'), key, T_FIRST)).exitCode, 0);
  await makePackage(join(work, 'a'), { name: 'beta', version: '1.0-1' });
  await makePackage(join(work, 'b'), { name: 'gamma', version: '1.0-1' });
  // The same timestamp for both, so that whichever goes second is not refused for its clock.
  const results = await Promise.all([
    publishInPlace(state, join(work, 'a'), key, T_UNDER_TEST),
    publishInPlace(state, join(work, 'b'), key, T_UNDER_TEST),
  ]);
  const published: string[] = [];
  const versions: string[] = [];
  for (const [i, result] of results.entries()) {
    const name = i === 0 ? 'beta' : 'gamma';
    if (result.exitCode === 0) {
      published.push(name);
      versions.push(/published index_version (\d+)/.exec(result.stdout)?.[1] ?? '?');
    } else {
      t.is(result.exitCode, 1, result.stderr);
      t.regex(result.stderr, /locked|another publish/);
    }
  }
  t.log(`published: ${published.join(', ') || 'none'}; index versions reported: ${versions.join(', ')}`);
  t.true(published.length >= 1);
  const checked = await verify(state);
  t.is(checked.exitCode, 0, checked.stderr);
  const archive = await readArchive(state);
  t.is(archive.indexVersion, 2 + published.length);
  const names = archive.packages.map((e) => e.name);
  for (const name of ['alpha', ...published]) t.true(names.includes(name), `${name} is in the archive`);
  t.is(archive.packages.length, 1 + published.length);
  if (published.length === 2) t.deepEqual(versions.sort(), ['3', '4']);
  t.deepEqual(await missingPackages(state, archive), []);
  t.deepEqual(await leftovers(state), []);
});

/** Starts a separate process that takes the lock on `dir` and holds it until killed. */
function holderProcess(dir: string) {
  const script = `import { DirLock } from ${JSON.stringify(join(repoRoot, 'ts/native.ts'))};
    const lock = DirLock.acquire(process.argv[1]);
    process.stdout.write('locked\\n');
    setTimeout(() => lock.release(), 600000);`;
  const child = execa(process.execPath, ['--import=tsx', '--input-type=module', '-e', script, dir], { reject: false, cwd: repoRoot });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => (d.toString().includes('locked') ? resolve() : undefined));
    void child.then((r) => reject(new Error(`holder exited before locking: ${r.stderr}`)));
  });
  return { child, locked };
}

test.serial('publish --lock-timeout 1s gives up on a lock another process holds, naming it, and changes nothing', async (t) => {
  t.timeout(60_000);
  const key = await vectorSeedFile(t);
  const state = await initState(t, key);
  const work = await tempDir(t);
  await makePackage(join(work, 'new'), { name: 'alpha', version: '1.0-1' });
  const { child, locked } = holderProcess(state);
  t.teardown(() => void child.kill('SIGKILL'));
  await locked;
  const before = await snapshot(state);
  const started = Date.now();
  const result = await publishInPlace(state, join(work, 'new'), key, T_FIRST, ['--lock-timeout', '1s']);
  const elapsed = Date.now() - started;
  t.is(result.exitCode, 1, result.stderr);
  t.true(elapsed >= 1000 && elapsed < 8000, `gave up after ${elapsed} ms`);
  t.true(result.stderr.includes(state), result.stderr);
  t.regex(result.stderr, /locked by another process/);
  t.regex(result.stderr, /another publish is running/);
  t.deepEqual(await snapshot(state), before);
  // The kernel drops the lock with its holder: the same publish then goes through.
  child.kill('SIGKILL');
  await child;
  const retried = await publishInPlace(state, join(work, 'new'), key, T_FIRST, ['--lock-timeout', '1s']);
  t.is(retried.exitCode, 0, retried.stderr);
  t.is((await verify(state)).exitCode, 0);
});
