/**
 * peipkg-manager under faults (`recipes-and-farm.md` §8.11, §8.13, DECISIONS.md "Manager"): a
 * failing build.sh, an upload that fails and then recovers, a remote that is ahead of us, SIGKILL in
 * the middle of a build, hostile tag names, a build script hunting for the signing key, and SIGTERM
 * during a build (drain, and drain timeout).
 *
 * The tests run as root, so nothing here relies on file permissions to make something fail: the
 * upload fails because its remote lies under a regular file, and the key probe fails because
 * build.sh runs as the unprivileged build user. Every farm, upstream and remote is made by the test.
 * (Bad recipes skipped alone — a bad tag_pattern, broken TOML — are covered by config.test.ts.)
 */

import { randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdir, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import type { FailureRecord } from '../../ts/manager/history.js';
import { DirLock } from '../../ts/native.js';
import { buildRecords, exitWithin, makeFarm, makeUpstream, publishedIn, runOnce, startDaemon, verifyRepo, waitFor, writeRecipe, type Farm } from '../helpers/farm.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';
import { snapshot } from '../helpers/repo.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const EXAMPLE_BUILD_SH = await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8');

/** The example build.sh with `prelude` run first (after `set -eu`). */
function scriptWith(prelude: string): string {
  return EXAMPLE_BUILD_SH.replace('set -eu\n', () => `set -eu\n${prelude}\n`);
}

/**
 * A directory the build user (build.sh runs as `peipkg-build`) can write to: the test's mailbox.
 * With `farm`, the recipe is granted it (`[[grant]] bind`): build.sh sees nothing else of the host.
 */
async function mailbox(t: ExecutionContext, farm?: Farm): Promise<string> {
  const dir = await tempDir(t, 'peipkg-faults-box-');
  await chmod(dir, 0o777);
  if (farm) await appendFile(farm.configPath, `\n[[grant]]\nrecipe = "hello-peios"\nbind = [${JSON.stringify(dir)}]\n`);
  return dir;
}

/** The line build.sh appends to the mailbox's `started`: its pid, and its PID namespace (the sandbox's). */
const reportStart = (box: string): string => `echo "$$ $(readlink /proc/$$/ns/pid)" >> ${box}/started`;

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

async function failures(stateDir: string): Promise<Record<string, FailureRecord>> {
  const text = await readFile(join(stateDir, 'history', 'failures.json'), 'utf8').catch(() => '{}');
  return JSON.parse(text) as Record<string, FailureRecord>;
}

const repoOf = (farm: Farm): string => join(farm.stateDir, 'repo');

/** The two packages of the example recipe, for each version, sorted as `publishedIn` sorts. */
const both = (id: string, ...versions: string[]): string[] => versions.flatMap((v) => [`${id}-doc ${v}`, `${id} ${v}`]).sort();

/** Every path under `dir` (relative), directories included; vanished entries are ignored. */
async function walk(dir: string, skip: (path: string) => boolean = () => false): Promise<string[]> {
  const found: string[] = [];
  async function visit(d: string, rel: string): Promise<void> {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(d, entry.name);
      if (skip(path)) continue;
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      found.push(relPath);
      if (entry.isDirectory()) await visit(path, relPath);
    }
  }
  await visit(dir, '');
  return found;
}

/** Rewrites one line of the farm's config.toml (makeFarm always writes `drain_timeout = "30s"`). */
async function patchConfig(farm: Farm, from: string, to: string): Promise<void> {
  const text = await readFile(farm.configPath, 'utf8');
  if (!text.includes(from)) throw new Error(`config.toml has no ${from}`);
  await writeFile(farm.configPath, text.replace(from, to));
}

/** Lines of a logfmt log whose msg is `msg`. */
const events = (log: string, msg: string): string[] => log.split('\n').filter((l) => l.includes(` msg=${JSON.stringify(msg)}`) || l.includes(` msg=${msg} `));

/** Processes whose command line contains `fragment` (never this test process). */
async function processesWith(fragment: string): Promise<Array<{ pid: number; cmdline: string }>> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(fragment)) found.push({ pid: Number(name), cmdline: cmdline.split('\0').join(' ').trim() });
  }
  return found;
}

/** Stops (SIGTERM, by pid) whatever a farm left running: peipkg-build then stops its build.sh group. */
async function stopLeftovers(fragment: string): Promise<void> {
  for (const { pid } of await processesWith(fragment)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Waits for build.sh to write its pid (first line of `<box>/started`) and returns it. */
/** The host pid of the first build script that reported its start (see `reportStart`). */
async function startedScript(box: string): Promise<number> {
  const file = join(box, 'started');
  await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('\n'), 60_000, 'the build script to start');
  const [pid, namespace] = (await readFile(file, 'utf8')).split('\n')[0]!.split(' ');
  // In the sandbox, $$ is the script's pid in its own PID namespace: find the same process as the host numbers it.
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const [link, status] = await Promise.all([readlink(`/proc/${entry}/ns/pid`).catch(() => ''), readFile(`/proc/${entry}/status`, 'utf8').catch(() => '')]);
    if (link === namespace && /^NSpid:.*\s(\d+)$/m.exec(status)?.[1] === pid) return Number(entry);
  }
  throw new Error(`no process ${pid} in ${namespace}`);
}

/** The scratch directory of the one running peipkg-build (its TMPDIR is state_dir/tmp). */
async function scratchOf(farm: Farm): Promise<string> {
  const tmp = join(farm.stateDir, 'tmp');
  const scratch = (await readdir(tmp)).filter((name) => name.startsWith('peipkg-build-'));
  if (scratch.length !== 1) throw new Error(`expected one peipkg-build scratch directory in ${tmp}, found ${JSON.stringify(scratch)}`);
  return join(tmp, scratch[0]!);
}

/**
 * A local rclone remote that cannot be created yet: it lies under a regular file, so uploads fail
 * without relying on permissions (tests run as root). `unblock` turns that file into a directory.
 */
async function blockedRemote(farm: Farm, uploadSettings: string): Promise<{ remote: string; unblock: () => Promise<void> }> {
  const blocker = join(farm.root, 'blocker');
  await writeFile(blocker, 'a regular file where the remote directory should be\n');
  const remote = join(blocker, 'remote');
  await farm.writeConfig('', { upload: `[upload]\nbackend = "rclone"\nremote = ${JSON.stringify(remote)}\n${uploadSettings}` });
  const unblock = async (): Promise<void> => {
    await rm(blocker);
    await mkdir(blocker);
  };
  return { remote, unblock };
}

// ---------------------------------------------------------------------------------------------
// 1. A failing build.sh

test.serial('a failing build.sh is reported with a back-off, the other recipe is still published, and --once exits 1', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  await upstream.tag('v1.1.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await writeRecipe(farm.recipesDir, { id: 'broken', git: upstream.dir, script: '#!/bin/sh\necho "broken: this build always fails" >&2\nexit 1\n' });

  const before = Date.now();
  const first = await runOnce(farm);
  const after = Date.now();
  t.is(first.exitCode, 1, first.stderr);

  // The healthy recipe is published in full; nothing of the broken one is.
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1', '1.1.0-1'));
  await verifyRepo(t, repoOf(farm));

  // History: every broken attempt failed at the build stage, every healthy one succeeded.
  const history = await buildRecords(farm);
  const broken = history.filter((b) => b.recipe === 'broken');
  t.deepEqual(broken.map((b) => b.version).sort(), ['1.0.0-1', '1.1.0-1']);
  for (const b of broken) {
    t.is(b.state, 'failed');
    t.is(b.stage, 'build');
    t.regex(b.error ?? '', /exit status/);
    // The script's own output went to the build's log.
    t.regex(await readFile(join(farm.stateDir, 'history', 'logs', `${b.id}.log`), 'utf8'), /broken: this build always fails/);
  }
  t.deepEqual(history.filter((b) => b.recipe === 'hello-peios').map((b) => b.state), ['succeeded', 'succeeded']);

  // failures.json: one failure each, retry after the first back-off step (1 minute).
  const failed = await failures(farm.stateDir);
  t.deepEqual(Object.keys(failed).sort(), ['broken@1.0.0-1', 'broken@1.1.0-1']);
  for (const record of Object.values(failed)) {
    t.is(record.failures, 1);
    const next = Date.parse(record.nextRetry);
    t.true(next >= before + 60_000 - 1000 && next <= after + 60_000 + 1000, `nextRetry ${record.nextRetry}`);
  }

  // The log line operators alert on.
  for (const version of ['1.0.0-1', '1.1.0-1']) {
    const line = events(first.stderr, 'build failed').find((l) => l.includes(`recipe=broken`) && l.includes(`version=${version}`));
    t.truthy(line, `no build-failed line for broken ${version}:\n${first.stderr}`);
    t.regex(line ?? '', /^time=\S+ level=error msg="build failed" /);
    t.regex(line ?? '', / next_retry_after=1m0s/);
  }
  t.is(events(first.stderr, 'build failed').length, 2);

  // The back-off survives a restart: a second sweep does not try the broken versions again.
  // Those versions wait: the sweep says so and exits 1 (a cron job must see work left undone).
  const second = await runOnce(farm);
  t.is(second.exitCode, 1, second.stderr);
  t.is((await buildRecords(farm)).filter((b) => b.recipe === 'broken').length, 2);
  t.true(events(second.stderr, 'trigger skipped (in failure backoff window)').length >= 2, second.stderr);
  t.regex(second.stderr, /msg="once complete" built=0 failed=0 waiting=2/);
  t.regex(first.stderr, /msg="once complete" built=2 failed=2 waiting=0/);
});

// ---------------------------------------------------------------------------------------------
// 2. Uploads

test.serial('an upload that fails twice is retried and then succeeds; the remote verifies and no build is marked failed', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const { remote, unblock } = await blockedRemote(farm, 'retries = 5\nretry_backoff = "1s"');

  const daemon = startDaemon(t, farm.configPath, ['--once']);
  const retrying = (): string[] => events(daemon.log(), 'upload failed; retrying');
  await waitFor(() => retrying().length >= 2, 60_000, 'two failed upload attempts').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  // Attempt 3 comes 2 s after attempt 2 (1s × 2^1): fix the remote's parent in between.
  await unblock();
  const { exitCode } = await exitWithin(daemon, 60_000);
  const log = daemon.log();
  t.is(exitCode, 0, log);
  t.true(retrying().length >= 2, log);
  t.is(events(log, 'upload failed; giving up until the next publish or restart').length, 0);
  t.true(events(log, 'upload complete').length >= 1, log);
  t.regex(retrying()[0] ?? '', /attempt=1 /);
  t.regex(retrying()[1] ?? '', /attempt=2 /);

  // The remote is a complete, verifiable copy of the local repository, without temporary files.
  await verifyRepo(t, remote);
  t.deepEqual(await publishedIn(remote), both('hello-peios', '1.0.0-1'));
  t.deepEqual(await readFile(join(remote, 'repo.json')), await readFile(join(repoOf(farm), 'repo.json')));
  t.deepEqual((await walk(remote)).filter((p) => p.includes('.tmp-')), []);

  // An upload problem is never a build failure.
  const history = await buildRecords(farm);
  t.is(history.length, 1);
  t.deepEqual(history.map((b) => b.state), ['succeeded']);
  t.deepEqual(await failures(farm.stateDir), {});
  t.is(events(log, 'build failed').length + events(log, 'publish failed').length, 0);
});

test.serial('a remote left behind by a failed upload catches up at the next start, with nothing new to build', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const { remote, unblock } = await blockedRemote(farm, 'retries = 0');
  const first = await runOnce(farm);
  t.is(first.exitCode, 1, 'the upload gave up');
  t.is(events(first.stderr, 'upload failed; giving up until the next publish or restart').length, 2, 'the start-up upload and the one after the publish');
  await unblock();
  const second = await runOnce(farm);
  t.is(second.exitCode, 0, second.stderr);
  t.is(events(second.stderr, 'starting build').length, 0, 'nothing new was built');
  t.is(events(second.stderr, 'upload complete').length, 1, second.stderr);
  await verifyRepo(t, remote);
  t.deepEqual(await publishedIn(remote), both('hello-peios', '1.0.0-1'));
});

test.serial('the rollback guard refuses a remote whose index_version is newer, and leaves it unchanged', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const remote = join(farm.root, 'remote');
  await farm.writeConfig('', { upload: `[upload]\nbackend = "rclone"\nremote = ${JSON.stringify(remote)}\nretries = 0\nretry_backoff = "1s"` });

  // First sweep: an empty remote is fine, and is filled.
  const first = await runOnce(farm);
  t.is(first.exitCode, 0, first.stderr);
  await verifyRepo(t, remote);

  // The remote moves ahead of us (another farm, or our state_dir restored from an old backup).
  const archivePath = join(remote, 'index', 'archive.json');
  const archive = await readFile(archivePath, 'utf8');
  const localVersion = Number(/"index_version":(\d+)/.exec(archive)?.[1]);
  t.true(localVersion > 0);
  await writeFile(archivePath, archive.replace(`"index_version":${localVersion}`, `"index_version":${localVersion + 100}`));
  const remoteBefore = await snapshot(remote);

  // A new tag is built and published locally, but the upload is refused.
  await upstream.tag('v1.1.0');
  const second = await runOnce(farm);
  t.regex(second.stderr, /index_version \d+ is newer than the local \d+; refusing to overwrite it/);
  t.is(events(second.stderr, 'upload complete').length, 0);
  t.deepEqual(await snapshot(remote), remoteBefore);
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1', '1.1.0-1'));
  t.deepEqual((await buildRecords(farm)).map((b) => b.state), ['succeeded', 'succeeded']);
  // The upload gave up, so the sweep did not fully succeed.
  t.is(second.exitCode, 1, second.stderr);
});

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL in the middle of a build, then a restart

test.serial('after SIGKILL mid-build, the build dies with the manager, and a restart on the same state_dir completes the missing versions without manual clean-up', async (t) => {
  t.timeout(120_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  await upstream.tag('v1.1.0');
  const farm = await makeFarm(t);
  t.teardown(() => stopLeftovers(farm.root));
  const box = await mailbox(t, farm);
  const slow = join(box, 'slow');
  await writeFile(slow, '');
  const nap = `${50 + Math.random()}`.slice(0, 8); // a sleep this test can recognise
  // Only builds that start while the `slow` marker exists take long: the first one.
  await writeRecipe(farm.recipesDir, {
    git: upstream.dir,
    script: scriptWith(`${reportStart(box)}\nif [ -e ${slow} ]; then sleep ${nap}; fi`),
  });

  const daemon = startDaemon(t, farm.configPath);
  const scriptPid = await startedScript(box);
  const running = (await buildRecords(farm)).filter((b) => b.state === 'running');
  t.deepEqual(running.map((b) => b.id), ['hello-peios-1.0.0-1-1']);
  const scratch = await scratchOf(farm);
  t.true(scratch.startsWith(join(farm.stateDir, 'tmp')), `peipkg-build's scratch ${scratch} lives under state_dir/tmp`);
  const builders = (await processesWith(farm.stateDir)).filter((p) => p.cmdline.includes('peipkg-build'));
  t.true(builders.length >= 1, 'peipkg-build was running');
  daemon.child.kill('SIGKILL');
  await exitWithin(daemon, 10_000);

  // Outside systemd nothing else would stop them: the build dies with the manager, script and all.
  await waitFor(
    async () => (await processesWith(farm.stateDir)).length === 0 && (await processesWith(`sleep\0${nap}`)).length === 0,
    20_000,
    'the killed manager\'s build to end',
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify([...(await processesWith(farm.stateDir)), ...(await processesWith(`sleep\0${nap}`))])}`);
  });
  t.false(alive(scriptPid));
  await rm(slow);

  // The restart needs no clean-up: the lock died with the process, the stale record is `interrupted`.
  const restart = await runOnce(farm);
  t.is(restart.exitCode, 0, restart.stderr);
  t.notRegex(restart.stderr, /in use by another peipkg-manager/);
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1', '1.1.0-1'));
  await verifyRepo(t, repoOf(farm));
  const history = await buildRecords(farm);
  t.deepEqual(
    history.map((b) => [b.id, b.state]).sort(([a], [b]) => (a! < b! ? -1 : 1)),
    [
      ['hello-peios-1.0.0-1-1', 'interrupted'],
      ['hello-peios-1.0.0-1-2', 'succeeded'],
      ['hello-peios-1.1.0-1-1', 'succeeded'],
    ],
  );
  t.deepEqual(await failures(farm.stateDir), {}, 'an interrupted build is no failure (no back-off)');
  t.deepEqual((await walk(repoOf(farm))).filter((p) => p.includes('.tmp-')), []);
  // Nothing of the killed build is left: its work areas and its scratch are gone.
  for (const dir of ['sources', 'stage', 'publish', 'tmp']) t.deepEqual(await readdir(join(farm.stateDir, dir)), [], dir);
  t.false(await exists(scratch), `the killed build's scratch ${scratch} was left behind`);
  // No stale lock: the state directory can be locked again right away.
  const lock = DirLock.acquire(farm.stateDir);
  lock.release();
});

// ---------------------------------------------------------------------------------------------
// 4. Hostile tag names

test.serial('hostile tag names never reach a path or a shell, and a normal tag beside them still builds', async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  const farm = await makeFarm(t);
  const marker = `peipkg-hostile-${randomBytes(6).toString('hex')}`;
  const markerPaths = [join(tmpdir(), marker), join(tmpdir(), `${marker}-bt`)];
  const hostile = [
    'v1.0.0;rm',
    'v1.0.0$(id)',
    'v1.0.0`id`',
    "v1'x",
    `v1.0.0$(touch\${IFS}${markerPaths[0]})`,
    `v1.0.0\`touch\${IFS}${markerPaths[1]}\``,
  ];
  await upstream.tag('v1.0.0');
  for (const name of hostile) await upstream.git('tag', name);
  await upstream.git('update-ref', 'refs/tags/-oops', 'HEAD');
  // A safe name whose version is invalid: dropped, not built.
  await upstream.git('tag', 'v1.0_beta');
  const listed = (await upstream.git('tag', '--list')).split('\n');
  for (const name of [...hostile, '-oops']) t.true(listed.includes(name), `git refused the tag ${name}`);

  await writeRecipe(farm.recipesDir, { git: upstream.dir, tagPattern: '^v?(.*)$' });
  const result = await runOnce(farm, ['--log-format', 'json']);
  t.is(result.exitCode, 0, result.stderr);
  const log = result.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

  // Only the normal tag was built and published.
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1'));
  const history = await buildRecords(farm);
  t.deepEqual(history.map((b) => [b.tag, b.state]), [['v1.0.0', 'succeeded']]);

  // Every hostile name was refused by name, in one summary line for the poll, and the invalid version dropped.
  const summaries = log.filter((e) => e.msg === 'tags ignored (unsafe names)');
  t.is(summaries.length, 1, 'one summary line per poll');
  t.is(summaries[0]?.count, hostile.length + 1);
  const ignored = JSON.parse(String(summaries[0]?.tags)) as string[];
  t.deepEqual(ignored.sort(), [...hostile, '-oops'].sort());
  const dropped = log.filter((e) => e.msg === 'trigger dropped (tag gives an invalid version)');
  t.deepEqual(dropped.map((e) => e.tag), ['v1.0_beta']);
  t.false(log.some((e) => e.msg === 'starting build' && e.tag !== 'v1.0.0'));

  // No command ran, and nothing was named after them, in the state directory or in /tmp.
  for (const path of markerPaths) t.false(await exists(path), `${path} was created: a tag reached a shell`);
  const fragments = [';rm', '$(', '`', "v1'x", '-oops', 'uid=0(', marker];
  const suspicious = (paths: string[]): string[] => paths.filter((p) => fragments.some((f) => p.includes(f)));
  t.deepEqual(suspicious(await walk(farm.stateDir)), []);
  // Upstream repositories (ours and other tests') hold such refs, of course; nothing else may.
  t.deepEqual(suspicious(await walk(tmpdir(), (p) => /\/peipkg-upstream-[^/]+$/.test(p))), []);
});

// ---------------------------------------------------------------------------------------------
// 5. build.sh hunting for the signing key

for (const sandbox of ['auto', 'off'] as const) {
test.serial(`a build.sh hunting for the key path on its parents' command lines cannot open the key, and the build succeeds ([build] sandbox = "${sandbox}")`, async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  if (sandbox === 'off') await patchConfig(farm, '[signing]', '[build]\nsandbox = "off"\n\n[signing]');
  const probe = String.raw`
report="$DESTDIR/usr/share/doc/hello-peios/key-probe.txt"
mkdir -p "$(dirname "$report")"
echo "uid $(id -u)" > "$report"
pid=$PPID
while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
  if tr '\0' '\n' < "/proc/$pid/cmdline" > args.txt 2>/dev/null; then
    prev=""
    while IFS= read -r arg; do
      key=""
      case "$arg" in --sign-key=*) key="${'$'}{arg#--sign-key=}" ;; esac
      if [ "$prev" = "--sign-key" ]; then key="$arg"; fi
      if [ -n "$key" ]; then
        if out=$(cat "$key" 2>&1); then echo "OPENED pid=$pid $key" >> "$report"; else echo "REFUSED pid=$pid $key: $out" >> "$report"; fi
      fi
      prev="$arg"
    done < args.txt
  fi
  pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
done
echo "probe done" >> "$report"
cat "$report" >&2
`;
  await writeRecipe(farm.recipesDir, { git: upstream.dir, script: scriptWith(probe) });

  const result = await runOnce(farm);
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual((await buildRecords(farm)).map((b) => b.state), ['succeeded']);
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1'));

  // Read the probe's findings out of the published package.
  const pkg = join(repoOf(farm), 'p', 'hello-peios-doc', '1.0.0-1', 'hello-peios-doc_1.0.0-1_noarch.peipkg');
  const report = (await execa('tar', ['--zstd', '-xOf', pkg, 'usr/share/doc/hello-peios/key-probe.txt'])).stdout;
  t.log(report);
  const lines = report.split('\n');
  t.is(lines[0], `uid ${(await execa('id', ['-u', 'peipkg-build'])).stdout.trim()}`, 'build.sh ran as the build user');
  t.is(lines.at(-1), 'probe done');
  const refused = lines.filter((l) => l.startsWith('REFUSED '));
  // In the sandbox the script's PID namespace holds only the sandbox: no parent names the key.
  if (sandbox === 'auto') t.is(refused.length, 0, report);
  else t.true(refused.length >= 1, report);
  for (const line of refused) {
    t.true(line.includes(` ${farm.keyFile}: `), line);
    t.regex(line, /Permission denied/);
  }
  t.false(lines.some((l) => l.startsWith('OPENED ')), report);
});
}

// ---------------------------------------------------------------------------------------------
// 6. SIGTERM during a build

test.serial('SIGTERM during a build drains: the build finishes and is published, then the daemon exits 0', async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const box = await mailbox(t, farm);
  await writeRecipe(farm.recipesDir, { git: upstream.dir, script: scriptWith(`${reportStart(box)}\nsleep 3`) });

  const daemon = startDaemon(t, farm.configPath);
  await startedScript(box);
  daemon.child.kill('SIGTERM');
  const { exitCode } = await exitWithin(daemon, 30_000);
  const log = daemon.log();
  t.is(exitCode, 0, log);
  const draining = log.indexOf('msg="draining: finishing running builds before exit"');
  const complete = log.indexOf('msg="build + publish complete"');
  const stopped = log.indexOf('msg="peipkg-manager stopped"');
  t.true(draining >= 0 && complete > draining && stopped > complete, log);
  t.is(events(log, 'drain timeout reached: stopping running builds').length, 0);
  t.deepEqual((await buildRecords(farm)).map((b) => b.state), ['succeeded']);
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1'));
  await verifyRepo(t, repoOf(farm));
});

test.serial('SIGTERM with a short drain_timeout stops a long build, records it interrupted, and exits 0 promptly', async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await patchConfig(farm, 'drain_timeout = "30s"', 'drain_timeout = "2s"');
  const box = await mailbox(t, farm);
  const nap = `${57 + Math.random()}`.slice(0, 8); // a sleep this test can recognise
  await writeRecipe(farm.recipesDir, { git: upstream.dir, script: scriptWith(`${reportStart(box)}\nsleep ${nap}`) });

  const daemon = startDaemon(t, farm.configPath);
  const scriptPid = await startedScript(box);
  t.true(scriptPid > 1 && alive(scriptPid), `build script pid ${scriptPid}`);
  const scratch = await scratchOf(farm);
  t.regex(scratch, /\/peipkg-build-[^/]+$/);
  daemon.child.kill('SIGTERM');
  const { exitCode, elapsedMs } = await exitWithin(daemon, 30_000);
  const log = daemon.log();
  t.is(exitCode, 0, log);
  t.true(elapsedMs >= 1500 && elapsedMs < 15_000, `exited ${elapsedMs} ms after SIGTERM`);
  t.is(events(log, 'drain timeout reached: stopping running builds').length, 1, log);
  t.is(events(log, 'build interrupted by shutdown').length, 1, log);
  t.is(events(log, 'peipkg-manager stopped').length, 1, log);

  const history = await buildRecords(farm);
  t.deepEqual(history.map((b) => [b.state, b.stage]), [['interrupted', 'build']]);
  t.deepEqual(await failures(farm.stateDir), {}, 'a build stopped by shutdown gets no back-off');
  // Nothing half-published, nothing left running, no scratch left in the state directory.
  t.deepEqual(await publishedIn(repoOf(farm)), []);
  await verifyRepo(t, repoOf(farm));
  t.deepEqual((await walk(repoOf(farm))).filter((p) => p.includes('.tmp-')), []);
  for (const dir of ['sources', 'stage', 'publish', 'quarantine']) t.deepEqual(await readdir(join(farm.stateDir, dir)), [], dir);
  await waitFor(async () => !alive(scriptPid) && (await processesWith(`sleep\0${nap}`)).length === 0, 5000, 'the build script to be gone');
  t.deepEqual(await processesWith(farm.stateDir), []);
  t.false(await exists(scratch), `peipkg-build left its scratch directory ${scratch}`);
});

test.serial('a hung upload does not hold up publishing; SIGTERM during it: the drain timeout stops rclone too, and the daemon exits 0 promptly', async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await farm.writeConfig('', { upload: `[upload]\nbackend = "rclone"\nremote = ${JSON.stringify(join(farm.root, 'remote'))}` });
  await patchConfig(farm, 'drain_timeout = "30s"', 'drain_timeout = "2s"');
  // An rclone that hangs, as one does on a stalled network: it records that it started, then waits.
  const bin = await tempDir(t, 'peipkg-hung-rclone-');
  const box = await mailbox(t);
  await writeFile(join(bin, 'rclone'), `#!/bin/sh\necho "$$" >> ${box}/rclone\nexec sleep 300\n`, { mode: 0o755 });
  const daemon = startDaemon(t, farm.configPath, [], { PATH: `${bin}:${process.env.PATH ?? ''}` });
  await waitFor(() => exists(join(box, 'rclone')), 60_000, 'the upload to start');
  const rclonePid = Number((await readFile(join(box, 'rclone'), 'utf8')).split('\n')[0]);
  // The start-up upload hangs from the beginning; the build is published locally all the same.
  await waitFor(async () => (await publishedIn(repoOf(farm))).length === 2, 60_000, 'the local publish').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  t.true(alive(rclonePid), 'the upload was still hanging while the build was published');
  daemon.child.kill('SIGTERM');
  const { exitCode, elapsedMs } = await exitWithin(daemon, 30_000);
  const log = daemon.log();
  t.is(exitCode, 0, log);
  t.true(elapsedMs < 15_000, `exited ${elapsedMs} ms after SIGTERM`);
  t.is(events(log, 'peipkg-manager stopped').length, 1, log);
  await waitFor(() => !alive(rclonePid), 5000, 'the hung rclone to be stopped');
  t.deepEqual(await publishedIn(repoOf(farm)), both('hello-peios', '1.0.0-1'), 'the local publish is complete; only the upload was cut short');
});

test.serial('SIGTERM to --once mid-build cancels the sweep: the build is stopped and recorded interrupted, and the exit status is 0', async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  await upstream.tag('v1.1.0');
  const farm = await makeFarm(t);
  t.teardown(() => stopLeftovers(farm.root));
  const box = await mailbox(t, farm);
  await writeRecipe(farm.recipesDir, { git: upstream.dir, script: scriptWith(`${reportStart(box)}\nsleep 40`) });

  const once = startDaemon(t, farm.configPath, ['--once']);
  const scriptPid = await startedScript(box);
  const scratch = await scratchOf(farm);
  once.child.kill('SIGTERM');
  const { exitCode, elapsedMs } = await exitWithin(once, 30_000);
  const log = once.log();
  t.is(exitCode, 0, log);
  t.true(elapsedMs < 15_000, `exited ${elapsedMs} ms after SIGTERM`);
  // The running build was stopped, not left behind; the queued version never started.
  t.deepEqual((await buildRecords(farm)).map((b) => [b.version, b.state]), [['1.0.0-1', 'interrupted']]);
  t.deepEqual(await failures(farm.stateDir), {});
  await waitFor(async () => !alive(scriptPid) && (await processesWith(farm.stateDir)).length === 0, 5000, 'the build to be gone');
  t.false(await exists(scratch), `peipkg-build left its scratch directory ${scratch}`);
  t.deepEqual(await publishedIn(repoOf(farm)), []);
  await verifyRepo(t, repoOf(farm));
  for (const dir of ['sources', 'stage', 'publish']) t.deepEqual(await readdir(join(farm.stateDir, dir)), [], dir);
});

test.serial('SIGTERM while an upload waits to retry: the daemon stops at once, with no further attempt', async (t) => {
  t.timeout(60_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await blockedRemote(farm, 'retries = 5\nretry_backoff = "60s"');

  const daemon = startDaemon(t, farm.configPath);
  await waitFor(() => events(daemon.log(), 'upload failed; retrying').length === 1, 40_000, 'a failed upload attempt').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  daemon.child.kill('SIGTERM');
  const { exitCode, elapsedMs } = await exitWithin(daemon, 20_000);
  const log = daemon.log();
  t.is(exitCode, 0, log);
  t.true(elapsedMs < 10_000, `exited ${elapsedMs} ms after SIGTERM`);
  t.is(events(log, 'peipkg-manager stopped').length, 1, log);
  t.is(events(log, 'upload failed; retrying').length, 1, log);
  t.deepEqual((await buildRecords(farm)).map((b) => b.state), ['succeeded']);
});
