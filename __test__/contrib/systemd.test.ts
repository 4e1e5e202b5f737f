/**
 * The systemd units: each passes `systemd-analyze verify` (with ExecStart pointed at this checkout's
 * launcher, since the npm-installed path does not exist here), stops by draining (KillMode=mixed)
 * and gives the drain longer than the default drain_timeout (15m, for the manager and the worker).
 */

import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { parseDuration } from '../../ts/duration.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';

const unitPath = join(repoRoot, 'contrib/systemd/peipkg-manager.service');
const workerUnitPath = join(repoRoot, 'contrib/systemd/peipkg-worker.service');
const hasAnalyze = await access('/usr/bin/systemd-analyze').then(() => true, () => false);

/** Runs `systemd-analyze verify` on a copy of the unit whose ExecStart is this checkout's launcher. */
async function analyze(t: ExecutionContext, path: string, name: string): Promise<void> {
  const unit = (await readFile(path, 'utf8')).replace('/usr/local/bin/peipkg-manager', join(repoRoot, 'bin/peipkg-manager.js'));
  const copy = join(await tempDir(t), name);
  await writeFile(copy, unit);
  const result = await execa('systemd-analyze', ['verify', copy], { reject: false });
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stderr.trim(), '');
}

const settingOf = (unit: string) => (key: string): string | undefined => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
const drainsLongerThanDefault = (t: ExecutionContext, value: string | undefined): void => {
  const stop = parseDuration((value ?? '').replace('min', 'm'));
  t.truthy(stop);
  t.true((stop ?? 0) > (parseDuration('15m') ?? Infinity), 'TimeoutStopSec exceeds the default drain_timeout');
};

(hasAnalyze ? test : test.skip)('the unit passes systemd-analyze verify', async (t) => {
  await analyze(t, unitPath, 'peipkg-manager.service');
});

test('the unit starts the npm-installed command and drains on stop', async (t) => {
  const setting = settingOf(await readFile(unitPath, 'utf8'));
  t.regex(setting('ExecStart') ?? '', /^\/usr\/local\/bin\/peipkg-manager --config \/etc\/peipkg-manager\/config\.toml$/);
  t.is(setting('KillMode'), 'mixed');
  drainsLongerThanDefault(t, setting('TimeoutStopSec'));
  t.is(setting('ReadWritePaths'), '/var/lib/peipkg-manager');
});

(hasAnalyze ? test : test.skip)('the worker unit passes systemd-analyze verify', async (t) => {
  await analyze(t, workerUnitPath, 'peipkg-worker.service');
});

test('the worker unit starts `peipkg-manager worker`, drains on stop and writes only its work directory', async (t) => {
  const unit = await readFile(workerUnitPath, 'utf8');
  const setting = settingOf(unit);
  t.is(setting('ExecStart'), '/usr/local/bin/peipkg-manager worker --config /etc/peipkg-worker/worker.toml');
  t.is(setting('KillMode'), 'mixed');
  drainsLongerThanDefault(t, setting('TimeoutStopSec'));
  t.is(setting('ReadWritePaths'), '/var/lib/peipkg-worker');
  t.is(setting('After'), 'network-online.target');
  t.is(setting('ProtectSystem'), 'strict');
  t.is(setting('NoNewPrivileges'), 'true');
  // A worker has no SIGHUP handler: a reload would kill it.
  t.is(setting('ExecReload'), undefined);
  t.is(setting('User'), undefined, 'runs as root, so that builds run as the build user');
});
