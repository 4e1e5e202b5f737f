/**
 * The build sandbox as `peipkg-build` users meet it (issue 11): real bubblewrap, real processes,
 * real sockets on 127.0.0.1. build.sh has no network unless granted; sees none of the host beyond
 * the system trees and what it is given; cannot change the source it builds in; leaves nothing
 * running; and where namespaces are unavailable the build falls back with one warning, or refuses
 * when the sandbox is required.
 */

import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, readlink, lstat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { runTool, type ToolResult } from '../helpers/cli.js';
import { repoRoot } from '../helpers/fixtures.js';
import { emptiedDir, tempDir } from '../helpers/fs.js';
import { forbiddingBwrap, listener, processesWith } from '../helpers/sandbox.js';
import { makeRecipe, simpleRecipe } from '../helpers/recipes.js';

const asRoot = process.getuid?.() === 0;
const PACKAGE = 'demo_1.0-1_noarch.peipkg';

interface Build {
  args: string[];
  out: string;
  source: string;
  work: string;
}

/** Flags for building `recipe` from a fresh source tree (`files`) into a fresh --out, all reachable by others. */
async function buildOf(t: ExecutionContext, recipe: string, files: Record<string, string> = { 'input.txt': 'source file\n' }, extra: string[] = []): Promise<Build> {
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const source = join(work, 'src');
  await mkdir(source);
  for (const [name, content] of Object.entries(files)) await writeFile(join(source, name), content);
  const out = join(work, 'out');
  return {
    args: ['build', '--recipe', recipe, '--source', source, '--version', '1.0-1', '--source-ref', 'test://sandbox', '--farm-id', 'f',
      '--timestamp', '2026-05-06T12:00:00Z', '--out', out, ...extra],
    out,
    source,
    work,
  };
}

/** A recipe whose build.sh runs `lines` and packages whatever it puts in $DESTDIR/usr/share/demo. */
const recipeOf = (t: ExecutionContext, lines: string[]): Promise<string> =>
  makeRecipe(t, simpleRecipe({ script: ['d="$DESTDIR/usr/share/demo"; mkdir -p "$d"', ...lines].join('\n') }));

async function extracted(t: ExecutionContext, out: string): Promise<string> {
  const dir = await tempDir(t);
  await execa('sh', ['-c', `zstd -dc "${join(out, PACKAGE)}" | tar -xf - -C "${dir}"`]);
  return join(dir, 'usr/share/demo');
}

const fileIn = async (dir: string, name: string): Promise<string> => (await readFile(join(dir, name), 'utf8')).trim();

/** Every path under `dir` with its type, mode, owner and content hash (or link target): what "unchanged" means. */
async function snapshot(dir: string): Promise<string[]> {
  const rows: string[] = [];
  const walk = async (path: string): Promise<void> => {
    const s = await lstat(path);
    let what = '';
    if (s.isFile()) what = createHash('sha256').update(await readFile(path)).digest('hex');
    else if (s.isSymbolicLink()) what = `-> ${await readlink(path)}`;
    rows.push(`${relative(dir, path) || '.'} ${s.mode.toString(8)} ${s.uid}:${s.gid} ${what}`);
    if (s.isDirectory()) for (const name of (await readdir(path)).sort()) await walk(join(path, name));
  };
  await walk(dir);
  return rows;
}

/** peipkg-build as the unprivileged build user (so the sandbox starts in a user namespace), its scratch in `tmp`. */
function asBuildUser(args: string[], tmp: string): Promise<ToolResult> {
  return execa('runuser', ['-u', 'peipkg-build', '--', 'env', `TMPDIR=${tmp}`, process.execPath, join(repoRoot, 'bin', 'peipkg-build.js'), ...args], {
    reject: false,
    cwd: '/',
    timeout: 120_000,
  }).then((r) => ({ exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr }));
}

type Runner = 'root' | 'the build user' | 'this user';
const RUNNERS: readonly Runner[] = asRoot ? ['root', 'the build user'] : ['this user'];

/**
 * Runs `build` as `who`, and checks that it left no scratch behind. The build user gets its
 * --out's parent (it may not create it otherwise).
 */
async function runAs(t: ExecutionContext, who: Runner, build: Build): Promise<ToolResult> {
  const tmp = join(build.work, 'tmp');
  await mkdir(tmp, { recursive: true });
  if (who === 'the build user') await execa('chown', ['peipkg-build', build.work, tmp]);
  const result = who === 'the build user' ? await asBuildUser(build.args, tmp) : await runTool('peipkg-build', build.args, { env: { TMPDIR: tmp } });
  t.deepEqual(await emptiedDir(tmp), [], 'the build removed its scratch');
  return result;
}

for (const who of RUNNERS) {
test(`without a grant build.sh reaches no host port, not even on 127.0.0.1; --network lets it; a failing build says why (run by ${who})`, async (t) => {
  const server = await listener(t);
  const probe = `if curl -s -o /dev/null --max-time 5 http://127.0.0.1:${server.port}/; then echo reached; else echo blocked; fi > "$d/net"`;
  const recipe = await recipeOf(t, [probe, 'ip=$(cat /proc/net/dev | grep -c ":" || true); echo "$ip" > "$d/interfaces"']);

  const closed = await buildOf(t, recipe);
  const sealed = await runAs(t, who, closed);
  t.is(sealed.exitCode, 0, sealed.stderr);
  const inside = await extracted(t, closed.out);
  t.is(await fileIn(inside, 'net'), 'blocked');
  t.is(await fileIn(inside, 'interfaces'), '1', 'loopback is its only interface');
  t.is(server.connections(), 0);

  const open = await buildOf(t, recipe, undefined, ['--network']);
  const granted = await runAs(t, who, open);
  t.is(granted.exitCode, 0, granted.stderr);
  t.is(await fileIn(await extracted(t, open.out), 'net'), 'reached');
  t.is(server.connections(), 1);

  const downloader = await recipeOf(t, [`curl -s -f --max-time 5 http://127.0.0.1:${server.port}/ > "$d/page"`]);
  const failing = await buildOf(t, downloader);
  const failed = await runAs(t, who, failing);
  t.is(failed.exitCode, 1);
  t.regex(failed.stderr, /build\.sh ran without network access \(loopback only\); if it downloads, grant it: peipkg-build build --network/);
  t.notRegex(failed.stderr, /\n\s+at /, 'no stack trace');
});
}

for (const who of RUNNERS) {
test(`build.sh sees none of the host outside the system trees, and cannot write to it (run by ${who})`, async (t) => {
  // /var/tmp and the operator's files are on the host, readable by everyone, and not in the sandbox.
  const host = await execa('mktemp', ['-d', '/var/tmp/peipkg-sandbox-XXXXXX']).then((r) => r.stdout);
  t.teardown(() => execa('rm', ['-rf', host]));
  await chmod(host, 0o755);
  await writeFile(join(host, 'secret'), 'readable by all\n', { mode: 0o644 });
  const before = await snapshot('/etc');
  const recipe = await recipeOf(t, [
    `if [ -e ${host}/secret ]; then echo visible; else echo absent; fi > "$d/secret"`,
    'for p in /etc/peipkg-sandbox-test /usr/peipkg-sandbox-test /var/tmp/peipkg-sandbox-test /root/peipkg-sandbox-test; do',
    '  if (echo x > "$p") 2>/dev/null; then echo "wrote $p"; fi',
    'done > "$d/writes"',
    'ls / | tr "\\n" " " > "$d/root"',
    'echo ok > "$HOME/.probe"; echo "$HOME" > "$d/home"',
  ]);
  const build = await buildOf(t, recipe);
  const result = await runAs(t, who, build);
  t.is(result.exitCode, 0, result.stderr);
  const inside = await extracted(t, build.out);
  t.is(await fileIn(inside, 'secret'), 'absent');
  t.is(await fileIn(inside, 'writes'), '', 'no write outside DESTDIR reached anything');
  t.is(await fileIn(inside, 'home'), '/build/home');
  for (const name of (await fileIn(inside, 'root')).split(' ')) {
    t.true(['bin', 'build', 'dev', 'etc', 'lib', 'lib32', 'lib64', 'libx32', 'proc', 'sbin', 'tmp', 'usr'].includes(name), `/${name} is visible`);
  }
  for (const path of ['/etc/peipkg-sandbox-test', '/usr/peipkg-sandbox-test', '/var/tmp/peipkg-sandbox-test', '/root/peipkg-sandbox-test']) {
    t.is(await lstat(path).catch(() => undefined), undefined, `${path} was not created`);
  }
  t.deepEqual(await snapshot('/etc'), before, '/etc is unchanged');
});
}

for (const who of RUNNERS) {
test(`an in-tree build changes, adds and removes files in $SOURCE_DIR; the source itself stays byte-identical (run by ${who})`, async (t) => {
  const recipe = await recipeOf(t, [
    'cd "$SOURCE_DIR"',
    'echo "configured" >> input.txt',
    'rm remove-me.txt',
    'mkdir -p build/obj && echo object > build/obj/a.o',
    'chmod 0600 keep.txt',
    'mv rename-me.txt renamed.txt',
    'cat input.txt > "$d/input"; ls | tr "\\n" " " > "$d/listing"; id -u > "$d/uid"',
  ]);
  const build = await buildOf(t, recipe, { 'input.txt': 'source\n', 'remove-me.txt': 'x\n', 'keep.txt': 'k\n', 'rename-me.txt': 'r\n' });
  await mkdir(join(build.source, 'sub'));
  await writeFile(join(build.source, 'sub', 'deep.txt'), 'deep\n');
  // The tree is root's, as a farm's clone is: the build user may not write it, and need not.
  const before = await snapshot(build.source);
  const result = await runAs(t, who, build);
  t.is(result.exitCode, 0, result.stderr);
  const inside = await extracted(t, build.out);
  t.is(await readFile(join(inside, 'input'), 'utf8'), 'source\nconfigured\n', 'the script saw its own writes');
  t.is(await fileIn(inside, 'listing'), 'build input.txt keep.txt renamed.txt sub');
  if (asRoot) t.not(await fileIn(inside, 'uid'), '0', 'build.sh does not run as root');
  t.deepEqual(await snapshot(build.source), before, 'the source tree is exactly as it was');
  // Without root, files of other users cannot be copied up, so that tree was copied (and said so);
  // a tree of one's own is not.
  if (who === 'the build user') {
    t.regex(result.stderr, /belongs to another user or group, which the sandbox cannot give build\.sh without root, so \$SOURCE_DIR is a copy of /);
    await execa('chown', ['-R', 'peipkg-build:peipkg-build', build.source]);
    await execa('rm', ['-rf', build.out]);
    const own = await runAs(t, who, build);
    t.is(own.exitCode, 0, own.stderr);
    t.notRegex(own.stderr, /is a copy of/);
    t.is(await readFile(join(await extracted(t, build.out), 'input'), 'utf8'), 'source\nconfigured\n');
    t.is(await readFile(join(build.source, 'input.txt'), 'utf8'), 'source\n');
  } else t.notRegex(result.stderr, /is a copy of|private copy/, 'as root nothing is copied up front');
});
}

const survivorScript = (tag: string): string[] => [
  `setsid sh -c 'exec sleep 3${tag}1' < /dev/null > /dev/null 2>&1 &`,
  `nohup sleep 3${tag}2 < /dev/null > /dev/null 2>&1 &`,
  `(trap "" HUP TERM; exec sleep 3${tag}3) < /dev/null > /dev/null 2>&1 &`,
  // As in the issue: the script waits a second, so its children are surely running and detached.
  'sleep 1',
  'echo started > "$d/started"',
];

for (const who of RUNNERS) {
  test(`nothing build.sh starts outlives it (setsid, nohup, ignored signals), run by ${who}`, async (t) => {
    const tag = String(process.pid * 10 + (who === 'root' ? 1 : 2)).slice(-5);
    const recipe = await recipeOf(t, survivorScript(tag));
    const build = await buildOf(t, recipe);
    t.teardown(async () => {
      for (const pid of await processesWith(`sleep\u00003${tag}`)) process.kill(pid, 'SIGKILL');
    });
    const result = await runAs(t, who, build);
    t.is(result.exitCode, 0, result.stderr);
    t.is(await fileIn(await extracted(t, build.out), 'started'), 'started');
    t.deepEqual(await processesWith(`sleep\u00003${tag}`), [], 'no process of the build is left');
  });
}

(asRoot ? test : test.skip)('as root, an in-tree build may change files of any owner in a root-owned source: root\'s, the build user\'s, another user\'s', async (t) => {
  const recipe = await recipeOf(t, [
    'cd "$SOURCE_DIR"',
    'for f in root.txt builder.txt stranger.txt sub/root.txt; do echo changed >> "$f"; done',
    'touch sub/new; rm sub/root.txt',
    'stat -c "%n %U" root.txt builder.txt stranger.txt sub sub/new | tr "\n" ";" > "$d/owners"',
    'cat root.txt builder.txt stranger.txt | tr "\n" " " > "$d/content"',
  ]);
  const build = await buildOf(t, recipe, { 'root.txt': 'r\n', 'builder.txt': 'b\n', 'stranger.txt': 's\n' });
  await mkdir(join(build.source, 'sub'));
  await writeFile(join(build.source, 'sub', 'root.txt'), 'r\n');
  await execa('chown', ['peipkg-build:peipkg-build', join(build.source, 'builder.txt')]);
  await execa('chown', ['4321:4321', join(build.source, 'stranger.txt')]);
  const before = await snapshot(build.source);
  const result = await runTool('peipkg-build', build.args);
  t.is(result.exitCode, 0, result.stderr);
  const inside = await extracted(t, build.out);
  t.is(await fileIn(inside, 'content'), 'r changed b changed s changed');
  t.is(await fileIn(inside, 'owners'), 'root.txt peipkg-build;builder.txt peipkg-build;stranger.txt peipkg-build;sub peipkg-build;sub/new peipkg-build;');
  t.deepEqual(await snapshot(build.source), before, 'the source tree is exactly as it was');
});

test('--sandbox off leaves such processes running (the control for the test above)', async (t) => {
  const tag = String(process.pid * 10 + 3).slice(-5);
  const recipe = await recipeOf(t, [`setsid sh -c 'exec sleep 3${tag}1' < /dev/null > /dev/null 2>&1 &`, 'sleep 1', 'echo started > "$d/started"']);
  const build = await buildOf(t, recipe, undefined, ['--sandbox', 'off']);
  t.teardown(async () => {
    for (const pid of await processesWith(`sleep\u00003${tag}`)) process.kill(pid, 'SIGKILL');
  });
  const result = await runTool('peipkg-build', build.args);
  t.is(result.exitCode, 0, result.stderr);
  t.is((await processesWith(`sleep\u00003${tag}1`)).length, 1, 'without the sandbox the setsid child survives');
});

test('source, --out and TMPDIR under 0700 directories build fine in the sandbox', async (t) => {
  const locked = await tempDir(t);
  await chmod(locked, 0o700);
  const recipe = await recipeOf(t, ['cp "$SOURCE_DIR/input.txt" "$d/"', 'echo scratch > /tmp/x']);
  const build = await buildOf(t, recipe);
  const source = join(locked, 'src');
  const out = join(locked, 'out');
  const tmp = join(locked, 'tmp');
  await mkdir(tmp);
  await execa('cp', ['-a', build.source, source]);
  const args = build.args.map((a) => (a === build.source ? source : a === build.out ? out : a));
  const result = await runTool('peipkg-build', args, { env: { TMPDIR: tmp } });
  t.is(result.exitCode, 0, result.stderr);
  t.is(await readFile(join(await extracted(t, out), 'input.txt'), 'utf8'), 'source file\n');
  t.deepEqual(await emptiedDir(tmp), [], 'the build cleaned its scratch out of TMPDIR');
});

test('where namespaces are unavailable: auto warns once and builds; require exits 1 and writes nothing; off says nothing', async (t) => {
  const env = await forbiddingBwrap(t);
  const recipe = await recipeOf(t, ['cp "$SOURCE_DIR/input.txt" "$d/"']);

  const auto = await buildOf(t, recipe);
  const fallback = await runTool('peipkg-build', auto.args, { env });
  t.is(fallback.exitCode, 0, fallback.stderr);
  t.is(fallback.stderr.match(/the build sandbox is not available: /g)?.length, 1, fallback.stderr);
  t.regex(fallback.stderr, /No permissions to create new namespace/);
  t.is(await readFile(join(await extracted(t, auto.out), 'input.txt'), 'utf8'), 'source file\n');

  const required = await buildOf(t, recipe, undefined, ['--sandbox', 'require']);
  const refused = await runTool('peipkg-build', required.args, { env });
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /the build sandbox is required \(--sandbox require\), but /);
  t.notRegex(refused.stderr, /\n\s+at /, 'no stack trace');
  t.is(await lstat(required.out).catch(() => undefined), undefined, 'nothing was written');

  const off = await buildOf(t, recipe, undefined, ['--sandbox', 'off']);
  const quiet = await runTool('peipkg-build', off.args, { env });
  t.is(quiet.exitCode, 0, quiet.stderr);
  t.notRegex(quiet.stderr, /sandbox/);

  const bad = await runTool('peipkg-build', [...off.args.slice(0, -2), '--sandbox', 'maybe']);
  t.is(bad.exitCode, 2);
  t.regex(bad.stderr, /--sandbox "maybe": want one of auto, require, off/);
});

test('--bind gives a writable host directory at its own path, --ro-bind a readable one; bad grants are refused before anything runs', async (t) => {
  const cache = await tempDir(t, 'peipkg-cache-');
  const tools = await tempDir(t, 'peipkg-tools-');
  await chmod(cache, 0o777);
  await chmod(tools, 0o755);
  await writeFile(join(tools, 'tool.txt'), 'a tool\n', { mode: 0o644 });
  const recipe = await recipeOf(t, [
    `echo filled > ${cache}/entry`,
    `cat ${tools}/tool.txt > "$d/tool"`,
    `if (echo x > ${tools}/tool.txt) 2>/dev/null; then echo wrote; else echo read-only; fi > "$d/ro"`,
  ]);
  const build = await buildOf(t, recipe, undefined, ['--bind', cache, '--ro-bind', tools]);
  const result = await runTool('peipkg-build', build.args);
  t.is(result.exitCode, 0, result.stderr);
  const inside = await extracted(t, build.out);
  t.is(await readFile(join(cache, 'entry'), 'utf8'), 'filled\n', 'the write reached the host');
  t.is(await fileIn(inside, 'tool'), 'a tool');
  t.is(await fileIn(inside, 'ro'), 'read-only');
  t.is(await readFile(join(tools, 'tool.txt'), 'utf8'), 'a tool\n');

  const marker = await tempDir(t);
  const watcher = await recipeOf(t, [`touch ${marker}/ran`]);
  for (const [flag, path, message] of [
    ['--bind', 'relative/cache', /--bind relative\/cache: must be an absolute path/],
    ['--bind', join(cache, 'missing'), /no such file or directory/],
    ['--ro-bind', '/usr/lib', /the sandbox already shows this/],
    ['--bind', '/tmp', /the sandbox already shows this/],
    ['--bind', '/', /the sandbox already shows this/],
    ['--bind', '/proc/self', /is made by the sandbox itself/],
  ] as const) {
    const attempt = await buildOf(t, watcher, undefined, [flag, path]);
    const refused = await runTool('peipkg-build', attempt.args);
    t.is(refused.exitCode, 1, `${flag} ${path}`);
    t.regex(refused.stderr, message);
    t.is(await lstat(attempt.out).catch(() => undefined), undefined, 'nothing was written');
  }
  t.deepEqual(await readdir(marker), [], 'build.sh never ran');
});

test('the same recipe packs the same bytes in the sandbox and out of it', async (t) => {
  const recipe = await recipeOf(t, ['cp "$SOURCE_DIR/input.txt" "$d/"', 'mkdir -p "$d/sub"; echo two > "$d/sub/two"; ln -s ../input.txt "$d/sub/link"']);
  const inside = await buildOf(t, recipe);
  const outside = await buildOf(t, recipe, undefined, ['--sandbox', 'off']);
  t.is((await runTool('peipkg-build', inside.args)).exitCode, 0);
  t.is((await runTool('peipkg-build', outside.args)).exitCode, 0);
  t.true((await readFile(join(inside.out, PACKAGE))).equals(await readFile(join(outside.out, PACKAGE))));
});
