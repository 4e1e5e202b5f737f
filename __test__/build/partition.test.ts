/**
 * Partitioning and payload validation (`recipes-and-farm.md` §4.4, §4.5, §4.7), on staged entries
 * made in memory, plus one real build with directory patterns and an empty stanza.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { partition, PartitionError, payloadProblems } from '../../ts/build/partition.js';
import { compileGlob } from '../../ts/build/glob.js';
import type { Stanza } from '../../ts/build/recipe.js';
import type { StagedEntry } from '../../ts/build/stage.js';
import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makeRecipe } from '../helpers/recipes.js';

function stanza(name: string, files: string[], architecture = 'x86_64'): Stanza {
  return {
    name,
    architecture,
    description: '',
    dependencies: [],
    optionalDependencies: [],
    conflicts: [],
    provides: [],
    replaces: [],
    sideEffects: [],
    files: files.map(compileGlob),
  };
}

const file = (path: string): StagedEntry => ({ kind: 'file', path, size: 1, uid: 0 });
const dir = (path: string): StagedEntry => ({ kind: 'directory', path, uid: 0 });
const link = (path: string, target: string): StagedEntry => ({ kind: 'symlink', path, target, uid: 0 });

test('each leaf goes to the one stanza that claims it; ancestors are not leaves', (t) => {
  const stanzas = [stanza('lib', ['usr/lib/x86_64-linux-peios/*.so.*']), stanza('dev', ['usr/include/**', 'usr/lib/x86_64-linux-peios/*.so'])];
  const staged = [dir('usr'), dir('usr/include'), file('usr/include/a.h'), dir('usr/lib'), dir('usr/lib/x86_64-linux-peios'),
    link('usr/lib/x86_64-linux-peios/libx.so', 'libx.so.1'), file('usr/lib/x86_64-linux-peios/libx.so.1')];
  const { claims, unmatched } = partition(stanzas, staged);
  t.deepEqual(claims[0]!.map((e) => e.path), ['usr/lib/x86_64-linux-peios/libx.so.1']);
  t.deepEqual(claims[1]!.map((e) => e.path), ['usr/include/a.h', 'usr/lib/x86_64-linux-peios/libx.so']);
  t.deepEqual(unmatched, []);
});

test('orphans are collected, sorted bytewise, and reported together', (t) => {
  const error = t.throws(() => partition([stanza('a', ['usr/bin/a'])], [file('usr/bin/z'), file('usr/bin/a'), file('usr/bin/B'), file('usr/bin/é')]), {
    instanceOf: PartitionError,
  });
  t.is(error?.message, 'staged paths claimed by no package:\n  usr/bin/B\n  usr/bin/z\n  usr/bin/é');
});

test('an overlap stops at once and names the stanzas in declaration order', (t) => {
  const stanzas = [stanza('b', ['usr/**']), stanza('a', ['usr/bin/*']), stanza('c', ['etc/x'])];
  t.throws(() => partition(stanzas, [file('usr/bin/tool'), file('nothing/claims/this')]), {
    instanceOf: PartitionError,
    message: 'path "usr/bin/tool" matches multiple packages [b a]; package file globs must be disjoint',
  });
});

test('a directory pattern makes a directory claimable, and then every pattern is tried on it', (t) => {
  const stanzas = [stanza('base', ['var/log/']), stanza('other', ['var/**'])];
  t.throws(() => partition(stanzas, [dir('var'), dir('var/log')]), { message: /path "var\/log" matches multiple packages \[base other\]/ });
  // Without a directory pattern, directories are never leaves (and never orphans).
  t.deepEqual(partition([stanza('x', ['usr/bin/x'])], [dir('usr'), dir('usr/bin'), dir('usr/share'), file('usr/bin/x')]).claims[0]!.map((e) => e.path), ['usr/bin/x']);
});

test('patterns that claim nothing are reported, for a warning', (t) => {
  const { unmatched } = partition([stanza('x', ['usr/bin/x', 'usr/share/man/**'])], [file('usr/bin/x')]);
  t.deepEqual(unmatched, ['package x: files[1] "usr/share/man/**" matches nothing']);
});

test('every §4.7 layout rule, worded as the reference words it', (t) => {
  const stanzas = [stanza('bin', ['**'], 'x86_64'), stanza('docs', ['nothing'], 'noarch')];
  const claims: StagedEntry[][] = [
    [
      file('home/u/x'),
      file('var/lib/state'),
      link('var/run', '../run'),
      file('usr/lib/libc.so'),
      file('usr/lib/aarch64-linux-peios/libz.so.1'),
      dir('dev'),
      dir('dev/pts'),
      dir('tmp'),
      link('usr/bin/a', ''),
      link('usr/bin/b', '/usr/bin/c'),
      link('usr/bin/c', 'x\\y'),
      link('usr/bin/d', '../../../etc/passwd'),
      link('usr/bin/e', '../../home/u/x'),
      file('boot/vmlinuz'),
      file('system/x'),
    ],
    [file('usr/lib/modules/x.ko'), file('usr/share/doc/ok')],
  ];
  // boot/vmlinuz, system/x, dev, tmp and usr/share/doc/ok are allowed; every other leaf breaks one rule.
  t.deepEqual(payloadProblems(stanzas, claims), [
    'package bin: directory dev/pts is not under any §3.4.1 permitted top-level destination or permitted runtime mountpoint root',
    'package bin: home/u/x is not under any §3.4.1 permitted top-level destination',
    'package bin: symlink usr/bin/a has empty target',
    'package bin: symlink usr/bin/b -> /usr/bin/c: absolute targets forbidden (§3.4 requires relative)',
    'package bin: symlink usr/bin/c -> "x\\\\y": target contains forbidden bytes (§3.4 path-validity)',
    'package bin: symlink usr/bin/d -> ../../../etc/passwd: target escapes the peipkg-managed tree (§3.4)',
    'package bin: symlink usr/bin/e -> ../../home/u/x resolves to "home/u/x", which is not under a §3.4.1 permitted destination',
    'package bin (architecture="x86_64"): usr/lib/aarch64-linux-peios/libz.so.1 uses triplet "aarch64-linux-peios", expected "x86_64-linux-peios" (§3.4.2)',
    'package bin: usr/lib/libc.so sits directly under /usr/lib/ (§3.4.2 requires /usr/lib/<triplet>/<...>)',
    'package bin: var/lib/state installs populated content under /var/ (§3.4.4 forbids this; only empty directories are permitted under /var/)',
    'package bin: var/run installs populated content under /var/ (§3.4.4 forbids this; only empty directories are permitted under /var/)',
    'package bin: symlink var/run -> ../run resolves to "run", which is not under a §3.4.1 permitted destination',
    'package docs: noarch package contains arch-specific path usr/lib/modules/x.ko (§3.4.2 forbids /usr/lib/<triplet>/ entries in noarch packages)',
  ]);
});

test('build: directory patterns ship empty directories, and an empty stanza gives an empty package', async (t) => {
  const recipe = await makeRecipe(t, {
    id: 'fsbase',
    toml: `[meta]\nbuild_script = "build.sh"\n\n[[package]]\nname = "fsbase"\narchitecture = "noarch"\nfiles = ["dev/", "proc/", "run/", "sys/", "tmp/", "var/"]\n\n[[package]]\nname = "fsbase-empty"\narchitecture = "noarch"\nfiles = []\n`,
    script: 'set -eu\ncd "$DESTDIR" && mkdir dev proc run sys tmp var\n',
  });
  const work = await tempDir(t);
  const out = join(work, 'out');
  const result = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', work, '--version', '1-1', '--source-ref', 'x',
    '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', out]);
  t.is(result.exitCode, 0, result.stderr);
  const listing = await execa('sh', ['-c', `zstd -dc "${join(out, 'fsbase_1-1_noarch.peipkg')}" | tar -tf -`]);
  t.deepEqual(listing.stdout.split('\n'), ['.peipkg/manifest.json', '.peipkg/files.json', 'dev/', 'proc/', 'run/', 'sys/', 'tmp/', 'var/']);
  const empty = await execa('sh', ['-c', `zstd -dc "${join(out, 'fsbase-empty_1-1_noarch.peipkg')}" | tar -xOf - .peipkg/files.json`]);
  t.is(empty.stdout, '{"schema_version":1,"algorithm":"sha256","entries":[]}');
  t.true((await readFile(join(out, 'fsbase-empty_1-1_noarch.peipkg'))).length > 0);
});

test('build: a FIFO in the staged tree is refused with the reference message', async (t) => {
  const recipe = await makeRecipe(t, { toml: `[meta]\nbuild_script = "build.sh"\n\n[[package]]\nname = "fifo"\narchitecture = "noarch"\nfiles = ["**"]\n`, script: 'mkdir -p "$DESTDIR/usr/share" && mkfifo "$DESTDIR/usr/share/pipe"\n' });
  const work = await tempDir(t);
  const result = await runTool('peipkg-build', ['build', '--recipe', recipe, '--source', work, '--version', '1-1', '--source-ref', 'x',
    '--farm-id', 'f', '--timestamp', '2026-05-06T12:00:00Z', '--out', join(work, 'out')]);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /walk staged tree: usr\/share\/pipe: unsupported entry type FIFO \(PSD-009 §3\.4 permits regular files, directories, and symlinks only\)/);
});
