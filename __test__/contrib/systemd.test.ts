/**
 * The systemd unit: it passes `systemd-analyze verify` (with ExecStart pointed at this checkout's
 * launcher, since the npm-installed path does not exist here), stops by draining (KillMode=mixed)
 * and gives the drain longer than the manager's default drain_timeout.
 */

import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { parseDuration } from '../../ts/duration.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';

const unitPath = join(repoRoot, 'contrib/systemd/peipkg-manager.service');
const hasAnalyze = await access('/usr/bin/systemd-analyze').then(() => true, () => false);

(hasAnalyze ? test : test.skip)('the unit passes systemd-analyze verify', async (t) => {
  const unit = (await readFile(unitPath, 'utf8')).replace('/usr/local/bin/peipkg-manager', join(repoRoot, 'bin/peipkg-manager.js'));
  const copy = join(await tempDir(t), 'peipkg-manager.service');
  await writeFile(copy, unit);
  const result = await execa('systemd-analyze', ['verify', copy], { reject: false });
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stderr.trim(), '');
});

test('the unit starts the npm-installed command and drains on stop', async (t) => {
  const unit = await readFile(unitPath, 'utf8');
  const setting = (key: string): string | undefined => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
  t.regex(setting('ExecStart') ?? '', /^\/usr\/local\/bin\/peipkg-manager --config \/etc\/peipkg-manager\/config\.toml$/);
  t.is(setting('KillMode'), 'mixed');
  const stop = parseDuration((setting('TimeoutStopSec') ?? '').replace('min', 'm'));
  t.truthy(stop);
  t.true((stop ?? 0) > (parseDuration('15m') ?? Infinity), 'TimeoutStopSec exceeds the default drain_timeout');
  t.is(setting('ReadWritePaths'), '/var/lib/peipkg-manager');
});
