/**
 * Uploads are crash-safe (issue: farm hardening): an upload cut short at any point — the manager
 * SIGKILLed before any of its rclone commands, or rclone itself killed at any write, completed file
 * or rename it makes on the remote — never leaves the mirror with a package its index names missing
 * or damaged, nor an index that does not parse, and the next start brings the mirror to a state
 * that `peipkg-repo verify` accepts, equal to the local one.
 *
 * Between a document and its detached signature, a remote without renames across files cannot be
 * atomic: a reader there may see one signature not (yet) matching its document. That window is the
 * only failure allowed right after a kill, and only for one document.
 *
 * The kill points come from a recorded upload: an `rclone` first on PATH counts its calls and, at the
 * chosen call, either kills the manager (its parent) and then runs rclone — which dies with the
 * manager — or runs rclone under `strace -f -e inject=…:signal=KILL:when=N`, for each kind of change
 * and every N that a traced clean upload shows it making (`killPoints`). A kill that leaves the remote exactly as an earlier
 * one did is not recovered from twice (PEIPKG_CRASH_EVERY_KILL_POINT=1 does);
 * PEIPKG_CRASH_VERBOSE=1 logs every kill point.
 */

import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { z } from 'zod';

import { sha256 } from '../../ts/native.js';
import { runTool } from '../helpers/cli.js';
import { makeFarm, makeUpstream, publishedIn, runOnce, writeRecipe, type Farm } from '../helpers/farm.js';
import { tempDir } from '../helpers/fs.js';
import { snapshot } from '../helpers/repo.js';
import { killPoints, parseStraceLog, STRACE } from '../helpers/strace.js';

/**
 * What rclone does to a local remote: writes, sets a finished file's time, removes and renames
 * (moveto). One group per syscall: strace counts per syscall, so in one set `when=1` would always
 * hit the earliest kind (the removal) and never the rename after it.
 */
const RCLONE_CHANGES: ReadonlyArray<readonly string[]> = [['write'], ['utimensat'], ['unlinkat'], ['rename', 'renameat', 'renameat2']];
const TRACED = RCLONE_CHANGES.flat().join(',');
const VERBOSE = process.env.PEIPKG_CRASH_VERBOSE === '1';
/** Every kill point gets its own recovery, even when it leaves the remote as an earlier one did. */
const EVERY_KILL_POINT = process.env.PEIPKG_CRASH_EVERY_KILL_POINT === '1';

const Archive = z.object({
  index_version: z.number(),
  packages: z.array(z.object({ url: z.string(), hash: z.object({ value: z.string() }) })),
});

/** An `rclone` that records its calls and, at call KILL_CALL, kills as KILL_MODE says. */
async function killingRclone(t: ExecutionContext): Promise<{ dir: string; box: string }> {
  const dir = await tempDir(t, 'peipkg-killing-rclone-');
  const box = join(dir, 'box');
  const script = `#!/bin/sh
n=$(( $(cat ${box}.count 2>/dev/null || echo 0) + 1 ))
echo "$n" > ${box}.count
echo "$n $*" >> ${box}.calls
if [ "$KILL_MODE" = record ]; then
  exec ${STRACE} -f -qq -o ${box}.$n.strace -e trace=${TRACED} /usr/bin/rclone "$@"
fi
if [ "$n" = "\${KILL_CALL:-0}" ]; then
  case "$KILL_MODE" in
    manager) kill -KILL "$PPID"; exec /usr/bin/rclone "$@" ;;
    rclone) exec ${STRACE} -f -qq -o /dev/null -e trace=${TRACED} -e inject="$KILL_SYSCALLS":signal=KILL:when="$KILL_AT" /usr/bin/rclone "$@" ;;
  esac
fi
exec /usr/bin/rclone "$@"
`;
  await writeFile(join(dir, 'rclone'), script, { mode: 0o755 });
  return { dir, box };
}

/** Remote paths of the packages the remote's archive names, with their digests; undefined without an index. */
async function remoteArchive(remote: string): Promise<z.infer<typeof Archive> | undefined> {
  const text = await readFile(join(remote, 'index', 'archive.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : Archive.parse(JSON.parse(text));
}

/**
 * The one document being replaced when verify's only complaints are about it: its signature does
 * not match it yet, or one of the two is missing for a moment (rclone's move on a local or sftp
 * remote removes the target, then renames). Undefined for any other failure.
 */
function replacementWindow(problems: readonly string[]): string | undefined {
  const failures = problems.filter((l) => /^FAIL: |^peipkg-repo: load state: /.test(l));
  const documents = new Set<string>();
  for (const line of failures) {
    const m =
      /^FAIL: (repo\.json|active\.json|archive\.json): (signature does not verify|no detached signature present)/.exec(line) ??
      /^peipkg-repo: load state: read (?:index\/)?(repo\.json|active\.json|archive\.json)(?:\.sig)?: no such file or directory$/.exec(line);
    if (!m) return undefined;
    documents.add(m[1]!);
  }
  return documents.size === 1 ? [...documents][0] : undefined;
}

async function verifyProblems(remote: string): Promise<string[]> {
  const result = await runTool('peipkg-repo', ['verify', '--repo', remote]);
  return result.exitCode === 0 ? [] : [...result.stdout.split('\n'), ...result.stderr.split('\n')].filter((l) => l.trim() !== '');
}

test.serial('an upload killed at any point leaves a mirror whose packages match its index, and the next start completes it', async (t) => {
  t.timeout(900_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm: Farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const remote = join(farm.root, 'remote');
  const upload = (to: string): Promise<void> =>
    farm.writeConfig('', { upload: `[upload]\nbackend = "rclone"\nremote = ${JSON.stringify(to)}\nretries = 0\nretry_backoff = "1s"` });
  await upload(remote);
  t.is((await runOnce(farm)).exitCode, 0);
  // The mirror at 1.0.0; locally 1.1.0 is published too (its upload fails: the remote lies under a file).
  const before = join(farm.root, 'remote.before');
  await cp(remote, before, { recursive: true });
  await upstream.tag('v1.1.0');
  await writeFile(join(farm.root, 'blocker'), 'a file\n');
  await upload(join(farm.root, 'blocker', 'remote'));
  t.is((await runOnce(farm)).exitCode, 1);
  await upload(remote);
  const local = join(farm.stateDir, 'repo');
  const oldVersion = (await remoteArchive(before))!.index_version;
  const newVersion = (await remoteArchive(local))!.index_version;
  t.true(newVersion > oldVersion);

  const rclone = await killingRclone(t);
  const env = (extra: Record<string, string>) => ({ PATH: `${rclone.dir}:${process.env.PATH ?? ''}`, ...extra });
  const reset = async (): Promise<void> => {
    await rm(remote, { recursive: true, force: true });
    await cp(before, remote, { recursive: true });
    await rm(`${rclone.box}.count`, { force: true });
    await rm(`${rclone.box}.calls`, { force: true });
  };
  const calls = async (): Promise<string[]> => (await readFile(`${rclone.box}.calls`, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');

  // A clean upload, to learn its rclone calls and the changes each makes.
  await reset();
  const clean = await runOnce(farm, [], env({ KILL_MODE: 'record' }));
  t.is(clean.exitCode, 0, clean.stderr);
  const recorded = await calls();
  t.true(recorded.length >= 5, recorded.join('\n'));
  t.log(`a clean upload runs rclone ${recorded.length} times:\n${recorded.join('\n')}`);

  let points = 0;
  /** Remote states already checked and recovered from, by content: another kill that leaves the same files needs no second recovery. */
  const seen = new Map<string, string>();
  const afterKill = async (label: string, outcome: { exitCode: number; stderr: string }): Promise<void> => {
    points++;
    const key = JSON.stringify([...(await snapshot(remote))].sort());
    const same = seen.get(key);
    if (same !== undefined && !EVERY_KILL_POINT) {
      if (VERBOSE) t.log(`${label}: leaves the remote as ${same} did`);
      return;
    }
    seen.set(key, label);
    // Right after the kill: the index parses, names only packages that are there and intact.
    const archive = await remoteArchive(remote);
    if (archive) {
      t.true([oldVersion, newVersion].includes(archive.index_version), `${label}: index_version ${archive.index_version}`);
      for (const p of archive.packages) {
        const bytes = await readFile(join(remote, p.url.replace(/^\//, ''))).catch(() => undefined);
        t.truthy(bytes, `${label}: ${p.url} is named by the index but missing`);
        if (bytes) t.is(sha256(bytes), p.hash.value, `${label}: ${p.url} does not match the index`);
      }
    }
    const problems = await verifyProblems(remote);
    const window = replacementWindow(problems);
    t.true(problems.length === 0 || window !== undefined, `${label}: right after the kill:\n${problems.join('\n')}\n${outcome.stderr.slice(-2000)}`);
    // The next start completes the upload.
    const recovery = await runOnce(farm);
    t.is(recovery.exitCode, 0, `${label}: recovery:\n${recovery.stderr.slice(-3000)}`);
    t.deepEqual(await verifyProblems(remote), [], `${label}: after recovery`);
    t.deepEqual(await readFile(join(remote, 'index', 'archive.json')), await readFile(join(local, 'index', 'archive.json')), `${label}: the mirror is the local state`);
    if (VERBOSE) t.log(`${label}: ${problems.length === 0 ? 'verified' : `${window ?? ''} mid-replacement`}; recovered`);
  };

  for (let call = 1; call <= recorded.length; call++) {
    const command = recorded[call - 1]!.split(' ')[1] ?? '';
    await reset();
    const killed = await runOnce(farm, [], env({ KILL_CALL: String(call), KILL_MODE: 'manager' }));
    t.not(killed.exitCode, 0, `manager killed at rclone call ${call}`);
    await afterKill(`manager killed before rclone call ${call} (${command})`, killed);

    if (!['copy', 'copyto', 'moveto'].includes(command)) continue; // lsf and cat change nothing
    const events = parseStraceLog(await readFile(`${rclone.box}.${call}.strace`, 'utf8'));
    for (const syscalls of RCLONE_CHANGES) {
      for (const { n } of killPoints(events, syscalls)) {
        await reset();
        const run = await runOnce(farm, [], env({ KILL_CALL: String(call), KILL_MODE: 'rclone', KILL_SYSCALLS: syscalls.join(','), KILL_AT: String(n) }));
        // rclone's threads share out its work differently from run to run: a point may not come again.
        if (run.exitCode === 0) continue;
        t.regex(run.stderr, /signal: SIGKILL/, `rclone call ${call} (${command}), ${syscalls[0]} ${n}`);
        await afterKill(`rclone call ${call} (${command}) killed at ${syscalls[0]} ${n}`, run);
      }
    }
  }
  t.log(`${points} kill points, ${seen.size} distinct remote states, every one recovered`);
  t.deepEqual(await publishedIn(remote), await publishedIn(local));
});
