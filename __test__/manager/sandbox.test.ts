/**
 * The farm's builds in the sandbox (issue: build sandbox): a survivor one build leaves cannot touch
 * the next; a state directory under a 0700 parent works; the network is a grant, and a build that
 * lacked it says which grant would allow it; where namespaces are unavailable the farm says so once
 * and builds as before, or refuses to start when the sandbox is required; `/status` says which
 * isolation builds get. Real bubblewrap throughout; "unavailable" is a bwrap on PATH that fails the
 * way a restricted container's does.
 */

import { chmod, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { buildRecords, exitWithin, freePort, makeFarm, makeUpstream, publishedIn, runOnce, startDaemon, verifyRepo, waitFor, writeRecipe, type Farm } from '../helpers/farm.js';
import { repoRoot } from '../helpers/fixtures.js';
import { forbiddingBwrap, listener, processesWith } from '../helpers/sandbox.js';

const EXAMPLE_BUILD_SH = await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8');
const scriptWith = (prelude: string): string => EXAMPLE_BUILD_SH.replace('set -eu\n', () => `set -eu\n${prelude}\n`);
const repoOf = (farm: Farm): string => join(farm.stateDir, 'repo');

const buildLogOf = (farm: Farm, id: string): Promise<string> => readFile(join(farm.stateDir, 'history', 'logs', `${id}.log`), 'utf8');

test('a survivor one build leaves is gone when it returns, and cannot change the next build\'s package', async (t) => {
  t.timeout(120_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0', { file: 'EVIL', content: 'leave a survivor\n' });
  await upstream.tag('v1.1.0', { file: 'EVIL', content: '' });
  const farm = await makeFarm(t);
  const nap = `${0.2 + Math.random() / 10}`.slice(0, 6); // recognisable among the machine's sleeps
  // The survivor appends to every file it can reach: this build's trees, and the farm's own state
  // (the path is known to an attacker who reads the farm's config in a public repository).
  const survivor = `while :; do for f in /build/source/* /build/destdir/usr/bin/* ${farm.stateDir}/sources/*/* ${farm.stateDir}/tmp/*/*/*; do [ -f "$f" ] && echo EVIL >> "$f"; done; sleep ${nap}; done`;
  await writeRecipe(farm.recipesDir, {
    git: upstream.dir,
    script: scriptWith(`if [ -s "$SOURCE_DIR/EVIL" ]; then setsid sh -c '${survivor}' > /dev/null 2>&1 & nohup sh -c '${survivor}' > /dev/null 2>&1 & sleep 1; fi`),
  });
  const result = await runOnce(farm);
  t.is(result.exitCode, 0, result.stderr);
  t.deepEqual(await processesWith(`sleep\0${nap}`), [], 'nothing the first build started is still running');
  t.deepEqual((await buildRecords(farm)).map((b) => [b.version, b.state]), [['1.0.0-1', 'succeeded'], ['1.1.0-1', 'succeeded']]);
  await verifyRepo(t, repoOf(farm));
  const pkg = join(repoOf(farm), 'p', 'hello-peios', '1.1.0-1', 'hello-peios_1.1.0-1_noarch.peipkg');
  const program = (await execa('tar', ['--zstd', '-xOf', pkg, 'usr/bin/hello-peios'])).stdout;
  t.notRegex(program, /EVIL/, 'the second build\'s package is its own work');
  t.is(program, (await readFile(join(upstream.dir, 'hello-peios.sh'), 'utf8')).trimEnd());
});

test('a state directory under a 0700 parent: builds work in the sandbox; without it, start-up refuses with the reason and the fix', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await chmod(farm.root, 0o700);
  const sandboxed = await runOnce(farm);
  t.is(sandboxed.exitCode, 0, sandboxed.stderr);
  t.deepEqual(await publishedIn(repoOf(farm)), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);

  const plain = await makeFarm(t, '[build]\nsandbox = "off"\n');
  await writeRecipe(plain.recipesDir, { git: upstream.dir });
  await chmod(plain.root, 0o700);
  const refused = await runOnce(plain);
  t.is(refused.exitCode, 1);
  t.true(refused.stderr.includes(`who cannot enter ${plain.root} (mode 700)`), refused.stderr);
  t.regex(refused.stderr, /put state_dir where other users can traverse/);
  t.deepEqual(await buildRecords(plain), [], 'no build was attempted');
});

test('the network is a grant: without it the build cannot reach the host\'s 127.0.0.1 and its error names the grant; with it, it connects', async (t) => {
  t.timeout(120_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const server = await listener(t);
  const connect = `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${server.port}'`;
  const [denied, granted] = await Promise.all(
    ['', `[[grant]]\nrecipe = "hello-peios"\nnetwork = true\n`].map(async (grant) => {
      const farm = await makeFarm(t, grant);
      await writeRecipe(farm.recipesDir, { git: upstream.dir, script: scriptWith(connect) });
      return { farm, result: await runOnce(farm) };
    }),
  );
  t.is(denied!.result.exitCode, 1);
  const [failed] = await buildRecords(denied!.farm);
  t.is(failed?.state, 'failed');
  const log = await buildLogOf(denied!.farm, failed!.id);
  t.regex(log, /build\.sh ran without network access/);
  t.regex(log, /\[\[grant\]\] recipe = "<name>" network = true/);
  t.deepEqual(await publishedIn(repoOf(denied!.farm)), []);

  t.is(granted!.result.exitCode, 0, granted!.result.stderr);
  t.deepEqual(await publishedIn(repoOf(granted!.farm)), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  t.is(server.connections(), 1, 'only the granted build connected');
});

test('where namespaces are unavailable the farm says so once and builds without the sandbox; require refuses to start', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  await upstream.tag('v1.1.0');
  const env = await forbiddingBwrap(t);
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const result = await runOnce(farm, ['--log-format', 'json'], env);
  t.is(result.exitCode, 0, result.stderr);
  const lines = result.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const isolation = lines.filter((l) => l.msg === 'build isolation');
  t.is(isolation.length, 1, result.stderr);
  t.is(isolation[0]?.level, 'warn');
  t.regex(String(isolation[0]?.isolation), /^no sandbox: namespaces are not available here \(.*No permissions to create new namespace/);
  t.deepEqual(await publishedIn(repoOf(farm)), ['hello-peios 1.0.0-1', 'hello-peios 1.1.0-1', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.1.0-1']);
  for (const build of await buildRecords(farm)) t.notRegex(await buildLogOf(farm, build.id), /sandbox/, 'builds do not repeat the warning');

  const strict = await makeFarm(t, '[build]\nsandbox = "require"\n');
  await writeRecipe(strict.recipesDir, { git: upstream.dir });
  const refused = await runOnce(strict, [], env);
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /the build sandbox is required \(\[build\]\.sandbox = "require"\), but namespaces are not available here/);
  t.deepEqual(await buildRecords(strict), []);
  t.deepEqual(await readdir(join(strict.stateDir, 'repo')).catch(() => []), [], 'no repository was made');
});

test('/status says which isolation builds get', async (t) => {
  const farm = await makeFarm(t);
  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"` });
  const daemon = startDaemon(t, farm.configPath);
  let status: { isolation?: { sandbox: boolean; description: string } } = {};
  await waitFor(
    async () => {
      const response = await fetch(`http://127.0.0.1:${port}/status`).catch(() => undefined);
      if (response?.ok) status = (await response.json()) as typeof status;
      return response?.ok === true;
    },
    30_000,
    'the daemon to answer',
  );
  t.is(status.isolation?.sandbox, true);
  t.regex(status.isolation?.description ?? '', /^bubblewrap sandbox/);
  daemon.child.kill('SIGTERM');
  t.is((await exitWithin(daemon, 30_000)).exitCode, 0);
});

test('sandbox settings that are wrong stop start-up, naming the key, and touch nothing', async (t) => {
  const cases: Array<[string, number, RegExp]> = [
    ['[build]\nsandbox = "maybe"\n', 2, /\[build\]\.sandbox: "maybe" not recognised \(want one of: auto, require, off\)/],
    ['[[grant]]\nrecipe = "hello-peios"\nbind = ["relative/cache"]\n', 2, /\[\[grant\]\]\[0\]\.bind\[0\]: must be an absolute path/],
    ['[[grant]]\nrecipe = "hello-peios"\nbind = ["/nonexistent/peipkg-cache"]\n', 1, /\[\[grant\]\] hello-peios: bind \/nonexistent\/peipkg-cache: no such file or directory/],
    ['[[grant]]\nrecipe = "hello-peios"\nro_bind = ["/usr/lib"]\n', 1, /\[\[grant\]\] hello-peios: ro_bind \/usr\/lib: the sandbox already shows this/],
    ['[[grant]]\nrecipe = "hello-peios"\nnetwork = "yes"\n', 2, /\[\[grant\]\]\[0\]\.network/],
  ];
  for (const [extra, code, message] of cases) {
    const farm = await makeFarm(t, extra);
    const result = await runOnce(farm);
    t.is(result.exitCode, code, `${extra}: ${result.stderr}`);
    t.regex(result.stderr, message);
    t.notRegex(result.stderr, /bug in peipkg|\n\s+at /);
    t.deepEqual(await buildRecords(farm), []);
  }
});
