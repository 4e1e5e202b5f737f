/**
 * The build.sh contract (`recipes-and-farm.md` §3) and its isolation: exactly the documented
 * environment, an empty work directory, empty stdin, `sh` with an absolute `$0`, stdout kept off
 * our stdout, a timeout that stops the whole process group, and — as root — an unprivileged user
 * that cannot open the signing key even when it reads the key's path from our command line.
 */

import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makeRecipe, simpleRecipe } from '../helpers/recipes.js';
import { privateTestKey } from '../helpers/vectors.js';

const asRoot = process.getuid?.() === 0;

async function buildFlags(t: ExecutionContext, recipe: string, extra: string[] = []): Promise<{ args: string[]; out: string; source: string }> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const source = join(work, 'src');
  await mkdir(source);
  await writeFile(join(source, 'input.txt'), 'source file\n');
  const out = join(work, 'out');
  return {
    args: ['build', '--recipe', recipe, '--source', source, '--version', '2:1.0~rc1-3', '--source-ref', 'test://script', '--farm-id', 'f',
      '--timestamp', '2026-05-06T12:00:00Z', '--out', out, ...extra],
    out,
    source,
  };
}

/** The files a package holds, read back with the real tools. */
async function extract(t: ExecutionContext, packagePath: string): Promise<string> {
  const dir = await tempDir(t);
  await execa('sh', ['-c', `zstd -dc "${packagePath}" | tar -xf - -C "${dir}"`]);
  return dir;
}

for (const sandbox of ['auto', 'off'] as const) {
test(`build.sh sees exactly the documented environment, cwd, stdin and $0 (--sandbox ${sandbox})`, async (t) => {
  const recipe = await makeRecipe(t, simpleRecipe({
    script: [
      'd="$DESTDIR/usr/share/demo"; mkdir -p "$d"',
      'env | grep -v -E "^(PWD|SHLVL|_|OLDPWD)=" | sort > "$d/env"',
      'pwd > "$d/cwd"; ls -A > "$d/cwd-listing"',
      'cat > "$d/stdin"',
      'echo "$0" > "$d/argv0"; echo "$#" > "$d/argc"',
      'echo "this line goes to stdout"',
      'cp "$SOURCE_DIR/input.txt" "$d/"',
    ].join('\n'),
  }));
  const { args, out, source } = await buildFlags(t, recipe, ['--build-env', 'ZED=last', '--build-env', 'ALPHA=a=b', '--sandbox', sandbox]);
  const result = await runTool('peipkg-build', args, { env: { PATH: process.env.PATH ?? '' } });
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `${join(out, 'demo_2:1.0~rc1-3_noarch.peipkg')}\n`, 'the script\'s stdout does not reach ours');
  t.regex(result.stderr, /this line goes to stdout/);
  const d = join(await extract(t, join(out, 'demo_2:1.0~rc1-3_noarch.peipkg')), 'usr/share/demo');
  const env = (await readFile(join(d, 'env'), 'utf8')).trim().split('\n');
  const names = env.map((line) => line.slice(0, line.indexOf('=')));
  // The sandbox adds HOME, a private writable directory (programs such as git and go want one).
  const home = sandbox === 'auto' ? ['HOME'] : [];
  t.deepEqual(names, ['ALPHA', 'DESTDIR', ...home, 'LC_ALL', 'PATH', 'SOURCE_DATE_EPOCH', 'SOURCE_DIR', 'TZ', 'ZED']);
  t.true(env.includes('ALPHA=a=b'), 'the value keeps everything after the first =');
  t.true(env.includes('SOURCE_DATE_EPOCH=1778068800'));
  t.true(env.includes('LC_ALL=C') && env.includes('TZ=UTC'));
  t.true(env.includes(`PATH=${process.env.PATH ?? ''}`));
  const cwd = (await readFile(join(d, 'cwd'), 'utf8')).trim();
  if (sandbox === 'auto') {
    t.is(cwd, '/build/work');
    t.true(env.includes('SOURCE_DIR=/build/source') && env.includes('DESTDIR=/build/destdir') && env.includes('HOME=/build/home'));
  } else t.regex(cwd, /\/peipkg-build-[^/]+\/work$/);
  t.is(await readFile(join(d, 'cwd-listing'), 'utf8'), '', 'the work directory starts empty');
  t.is(await readFile(join(d, 'stdin'), 'utf8'), '', 'stdin is empty');
  t.regex((await readFile(join(d, 'argv0'), 'utf8')).trim(), /^\/.*\/build\.sh$/);
  t.is((await readFile(join(d, 'argc'), 'utf8')).trim(), '0');
  t.is(await readFile(join(d, 'input.txt'), 'utf8'), 'source file\n');
  const sourceLine = env.find((l) => l.startsWith('SOURCE_DIR='));
  if (!asRoot && sandbox === 'off') t.is(sourceLine, `SOURCE_DIR=${source}`);
});
}

test('build.sh runs with sh, ignoring its shebang', async (t) => {
  const recipe = await makeRecipe(t, {
    ...simpleRecipe({ script: '' }),
    script: '#!/bin/false\nset -eu\nmkdir -p "$DESTDIR/usr/share/demo"\nreadlink /proc/$$/exe > "$DESTDIR/usr/share/demo/shell"\n',
  });
  const { args, out } = await buildFlags(t, recipe);
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 0, result.stderr);
  const dir = await extract(t, join(out, 'demo_2:1.0~rc1-3_noarch.peipkg'));
  t.regex(await readFile(join(dir, 'usr/share/demo/shell'), 'utf8'), /\/(dash|sh|bash)\n$/);
});

test('a build.sh that outlives --timeout is stopped with its whole process group', async (t) => {
  const marker = join(await tempDir(t), 'survivor');
  await chmod(join(marker, '..'), 0o777);
  const recipe = await makeRecipe(t, simpleRecipe({ script: `(sleep 3; touch ${marker}) &\nsleep 60` }));
  const { args, out } = await buildFlags(t, recipe, ['--timeout', '1s']);
  const started = Date.now();
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /run build script: timed out after 1s/);
  t.true(Date.now() - started < 20_000);
  await new Promise((r) => setTimeout(r, 3500));
  await t.throwsAsync(readFile(marker), undefined, 'the background child was killed too');
  await t.throwsAsync(readFile(out));
});

(asRoot ? test : test.skip)('as root without the sandbox, build.sh runs unprivileged and cannot open the signing key named on our command line', async (t) => {
  const key = await privateTestKey(t);
  await chmod(join(key, '..'), 0o755); // only the key file's own mode protects it
  const recipe = await makeRecipe(t, simpleRecipe({
    script: [
      'd="$DESTDIR/usr/share/demo"; mkdir -p "$d"',
      'id -u > "$d/uid"',
      // The parent is peipkg-build; its command line names the key.
      'key=$(tr "\\0" "\\n" < /proc/$PPID/cmdline | grep -A1 -x -- --sign-key | tail -n 1)',
      'echo "$key" > "$d/key-path"',
      'if cat "$key" > "$d/stolen" 2>/dev/null; then echo opened > "$d/result"; else echo denied > "$d/result"; rm -f "$d/stolen"; fi',
    ].join('\n'),
  }));
  const { args, out } = await buildFlags(t, recipe, ['--sign-key', key, '--sandbox', 'off']);
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 0, result.stderr);
  const dir = await extract(t, join(out, 'demo_2:1.0~rc1-3_noarch.peipkg'));
  t.is((await readFile(join(dir, 'usr/share/demo/key-path'), 'utf8')).trim(), key, 'the script did find the key path');
  t.is((await readFile(join(dir, 'usr/share/demo/result'), 'utf8')).trim(), 'denied');
  t.not((await readFile(join(dir, 'usr/share/demo/uid'), 'utf8')).trim(), '0');
});

test('in the sandbox, build.sh sees neither peipkg-build\'s command line nor the signing key file, even one it could read', async (t) => {
  const key = await privateTestKey(t);
  await chmod(join(key, '..'), 0o755);
  const recipe = await makeRecipe(t, simpleRecipe({
    script: [
      'd="$DESTDIR/usr/share/demo"; mkdir -p "$d"',
      'cat /proc/*/cmdline 2>/dev/null | tr "\\0" "\\n" | grep -c -x -e "--sign-ke[y]" > "$d/found" || true',
      'if [ -e "$KEY" ]; then echo visible > "$d/result"; else echo absent > "$d/result"; fi',
    ].join('\n'),
  }));
  const { args, out } = await buildFlags(t, recipe, ['--sign-key', key, '--build-env', `KEY=${key}`]);
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 0, result.stderr);
  const dir = await extract(t, join(out, 'demo_2:1.0~rc1-3_noarch.peipkg'));
  t.is((await readFile(join(dir, 'usr/share/demo/found'), 'utf8')).trim(), '0', 'no process in its view names the key');
  t.is((await readFile(join(dir, 'usr/share/demo/result'), 'utf8')).trim(), 'absent');
});

(asRoot ? test : test.skip)('as root, a signing key readable by others is refused before anything runs', async (t) => {
  const key = await privateTestKey(t);
  await chmod(key, 0o644);
  const recipe = await makeRecipe(t, simpleRecipe({ script: 'touch /tmp/should-not-run' }));
  const { args } = await buildFlags(t, recipe, ['--sign-key', key]);
  const result = await runTool('peipkg-build', args);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /is readable by group or others \(mode 0644\); run `chmod 600/);
});
