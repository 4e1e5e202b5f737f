/**
 * The cross-built linux-arm64-gnu addon, run under qemu-aarch64 with Debian's arm64 Node, computes
 * exactly what the x64 addon computes: hashes, zstd output at 1 and 2 workers, Ed25519 signatures
 * and a signed package (scripts/smoke-native.js). setup.sh provides qemu, the arm64 Node
 * (scripts/fetch-arm64-node.sh) and the addon (scripts/build-arm64.sh); without them this test is
 * registered as skipped, with the reason in its title.
 */

import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { repoRoot } from '../helpers/fixtures.js';
import { cacheDir, exists } from './helpers.js';

const sysroot = cacheDir('arm64-node', 'root');
const arm64Node = join(sysroot, 'usr/bin/node');
const arm64Addon = join(repoRoot, 'native/peipkg-native.linux-arm64-gnu.node');
const x64Addon = join(repoRoot, 'native/peipkg-native.linux-x64-gnu.node');
const smoke = join(repoRoot, 'scripts/smoke-native.js');

const qemu = (await execa('sh', ['-c', 'command -v qemu-aarch64'], { reject: false })).stdout.trim();
const missing = [
  qemu ? '' : 'qemu-aarch64 is not on PATH (apt-get install qemu-user)',
  (await exists(arm64Addon)) ? '' : 'native/peipkg-native.linux-arm64-gnu.node is not built (scripts/build-arm64.sh)',
  (await exists(arm64Node)) ? '' : 'no arm64 Node in .cache/arm64-node (scripts/fetch-arm64-node.sh)',
  process.arch === 'x64' ? '' : `the reference run needs an x64 host (this is ${process.arch})`,
].filter(Boolean);

const title = 'arm64 addon under qemu-aarch64: loads, hashes, compresses and signs exactly like x64';

if (missing.length > 0) {
  const reason = missing.join('; ');
  process.stderr.write(`arm64 smoke test skipped: ${reason}\n`);
  test.skip(`${title} (skipped: ${reason})`, () => undefined);
} else {
  test(title, async (t) => {
    const x64 = await execa(process.execPath, [smoke, x64Addon]);
    const arm64 = await execa(qemu, ['-L', sysroot, arm64Node, smoke, arm64Addon], { reject: false, timeout: 240_000 });
    t.is(arm64.exitCode, 0, arm64.stderr);
    const expected: unknown = JSON.parse(x64.stdout);
    const actual: unknown = JSON.parse(arm64.stdout);
    t.deepEqual(actual, expected);
    const node = await execa(qemu, ['-L', sysroot, arm64Node, '-p', '`${process.arch} ${process.version}`']);
    t.log(`arm64 run on Node ${node.stdout}`);
    t.regex(node.stdout, /^arm64 v\d+/);
  });
}
