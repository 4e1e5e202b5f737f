/**
 * `peipkg-manager --once` against real local upstreams (recipes-and-farm.md §8.3–8.8, DECISIONS.md
 * Manager): which tags become builds, what the published packages record, de-duplication across
 * sweeps, `peios_revision` bumps, `min_version` with named groups, annotated tags, the structured
 * log in both formats, and the rclone upload to a local-directory remote.
 */

import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { readPackage } from '../../ts/native.js';
import { runTool, type ToolResult } from '../helpers/cli.js';
import { buildRecords, makeFarm, makeUpstream, publishedIn, runOnce, verifyRepo, writeRecipe, type Farm } from '../helpers/farm.js';
import { repoRoot } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/fs.js';

interface ArchiveEntry {
  name: string;
  version: string;
  architecture: string;
  url: string;
}

async function archiveEntries(repo: string): Promise<ArchiveEntry[]> {
  return (JSON.parse(await readFile(join(repo, 'index', 'archive.json'), 'utf8')) as { packages: ArchiveEntry[] }).packages;
}

/** The manifest inside a published package (not the browse site's copy). */
async function manifestOf(repo: string, entry: ArchiveEntry): Promise<{ build: { timestamp: string; farm_id: string; source_ref: string } }> {
  const facts = await readPackage(join(repo, entry.url), { metadataOnly: true });
  if (!facts.manifest) throw new Error(`${entry.url} has no manifest`);
  return JSON.parse(facts.manifest.toString('utf8')) as { build: { timestamp: string; farm_id: string; source_ref: string } };
}

function once(farm: Farm, extra: string[] = []): Promise<ToolResult> {
  return runTool('peipkg-manager', ['--config', farm.configPath, '--once', ...extra], { timeoutMs: 150_000 });
}

/** Every file under `dir`, relative. */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function go(d: string): Promise<void> {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await go(path);
      else out.push(relative(dir, path));
    }
  }
  await go(dir);
  return out.sort();
}

const logLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.trim() !== '');

test('--once builds and publishes the release tags only; the manifest records the commit time and the tag; a second sweep builds nothing', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  // Committer dates with an offset: the manifest must carry them in UTC, whole seconds.
  await upstream.tag('v1.0.0', { date: '2026-03-04T10:30:00+02:00' });
  await upstream.tag('v1.1.0', { date: '2026-04-05T06:07:08-05:00' });
  await upstream.tag('v2.0.0-rc.1', { date: '2026-05-01T00:00:00Z' });
  // The default pattern ^v(\d+\.\d+\.\d+)$ does not match the pre-release.
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });

  const first = await once(farm);
  t.is(first.exitCode, 0, first.stderr);
  const repo = join(farm.stateDir, 'repo');
  t.deepEqual(await publishedIn(repo), ['hello-peios 1.0.0-1', 'hello-peios 1.1.0-1', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.1.0-1']);
  await verifyRepo(t, repo);

  const expected: Record<string, { tag: string; timestamp: string }> = {
    '1.0.0-1': { tag: 'v1.0.0', timestamp: '2026-03-04T08:30:00Z' },
    '1.1.0-1': { tag: 'v1.1.0', timestamp: '2026-04-05T11:07:08Z' },
  };
  for (const entry of await archiveEntries(repo)) {
    const want = expected[entry.version];
    if (!want) {
      t.fail(`unexpected version ${entry.version}`);
      continue;
    }
    const manifest = await manifestOf(repo, entry);
    t.is(manifest.build.timestamp, want.timestamp, `${entry.name} ${entry.version} build.timestamp`);
    t.is(manifest.build.source_ref, `git+${upstream.dir}#refs/tags/${want.tag}`, `${entry.name} ${entry.version} source_ref`);
    t.is(manifest.build.farm_id, 'test-farm');
    // And the commit time is what git itself says for the tagged commit.
    const ct = Number((await upstream.git('log', '-1', '--format=%ct', `${want.tag}^{commit}`)).trim());
    t.is(Date.parse(manifest.build.timestamp), ct * 1000);
  }

  // One successful attempt per version, with the commit recorded.
  const history = await buildRecords(farm);
  t.deepEqual(
    history.map((b) => `${b.version} ${b.tag} ${b.state}`).sort(),
    ['1.0.0-1 v1.0.0 succeeded', '1.1.0-1 v1.1.0 succeeded'],
  );
  for (const b of history) t.is(b.commit, (await upstream.git('rev-parse', `${b.tag}^{commit}`)).trim(), `${b.id} commit`);
  t.false(first.stderr.includes('2.0.0-rc.1'), 'the pre-release tag gave no build');

  // The structured log is logfmt, with the reference's message and fields.
  const lines = logLines(first.stderr);
  t.true(lines.length > 0);
  for (const line of lines) t.regex(line, /^time=\S+ level=(debug|info|warn|error) msg=/, line);
  for (const version of ['1.0.0-1', '1.1.0-1']) {
    t.true(
      lines.some((l) => /level=info msg="build \+ publish complete" /.test(l) && l.includes(' recipe=hello-peios ') && l.includes(` version=${version} `)),
      `a "build + publish complete" line for ${version}`,
    );
  }

  const archiveBefore = await readFile(join(repo, 'index', 'archive.json'));
  const second = await once(farm);
  t.is(second.exitCode, 0, second.stderr);
  t.deepEqual(await buildRecords(farm), history, 'no new history entries');
  t.deepEqual(await readFile(join(repo, 'index', 'archive.json')), archiveBefore, 'nothing published');
  t.false(second.stderr.includes('msg="starting build"'), second.stderr);
  t.regex(second.stderr, /msg="poll complete" recipe=hello-peios tags_seen=3 matches_emitted=0 /);
});

test('a peios_revision bump rebuilds existing versions at the new revision; --log-format json logs one JSON object per line', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const first = await once(farm);
  t.is(first.exitCode, 0, first.stderr);
  const repo = join(farm.stateDir, 'repo');
  t.deepEqual(await publishedIn(repo), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);

  await writeRecipe(farm.recipesDir, { git: upstream.dir, peiosRevision: 2 });
  const second = await once(farm, ['--log-format', 'json']);
  t.is(second.exitCode, 0, second.stderr);
  t.deepEqual(await publishedIn(repo), ['hello-peios 1.0.0-1', 'hello-peios 1.0.0-2', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.0.0-2']);
  await verifyRepo(t, repo);
  t.deepEqual(
    (await buildRecords(farm)).map((b) => `${b.version} ${b.state}`),
    ['1.0.0-1 succeeded', '1.0.0-2 succeeded'],
  );

  const lines = logLines(second.stderr);
  t.true(lines.length > 0);
  const events: Array<Record<string, unknown>> = [];
  for (const line of lines) {
    let event: unknown;
    t.notThrows(() => {
      event = JSON.parse(line) as unknown;
    }, `not JSON: ${line}`);
    t.true(typeof event === 'object' && event !== null && typeof (event as { msg?: unknown }).msg === 'string', `no msg: ${line}`);
    if (typeof event === 'object' && event !== null) events.push(event as Record<string, unknown>);
  }
  const done = events.find((e) => e.msg === 'build + publish complete');
  t.like(done, { level: 'info', recipe: 'hello-peios', version: '1.0.0-2', outputs: 2 });
});

test('min_version and named capture groups: 1_36_1 is below the minimum, 1_37_0 becomes 1.37.0-1', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('1_36_1');
  await upstream.tag('1_37_0');
  await upstream.tag('v1_38_0'); // does not match the anchored pattern
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, {
    git: upstream.dir,
    tagPattern: '^(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<patch>[0-9]+)$',
    minVersion: '1.37.0',
  });
  const result = await once(farm);
  t.is(result.exitCode, 0, result.stderr);
  const repo = join(farm.stateDir, 'repo');
  t.deepEqual(await publishedIn(repo), ['hello-peios 1.37.0-1', 'hello-peios-doc 1.37.0-1']);
  t.deepEqual((await buildRecords(farm)).map((b) => `${b.tag} ${b.version} ${b.state}`), ['1_37_0 1.37.0-1 succeeded']);
  t.regex(result.stderr, /msg="poll complete" recipe=hello-peios tags_seen=3 matches_emitted=1 skipped_below_min_version=1/);
  const entry = (await archiveEntries(repo)).find((e) => e.name === 'hello-peios');
  t.truthy(entry);
  if (entry) t.is((await manifestOf(repo, entry)).build.source_ref, `git+${upstream.dir}#refs/tags/1_37_0`);
});

test('an annotated tag builds like a lightweight one, stamped with the commit time (not the tagger time)', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v3.0.0', { date: '2026-06-07T08:09:10Z', annotated: true });
  t.is((await upstream.git('cat-file', '-t', 'v3.0.0')).trim(), 'tag', 'the fixture really is an annotated tag');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const result = await once(farm);
  t.is(result.exitCode, 0, result.stderr);
  const repo = join(farm.stateDir, 'repo');
  t.deepEqual(await publishedIn(repo), ['hello-peios 3.0.0-1', 'hello-peios-doc 3.0.0-1']);
  // The peeled ^{} entry is not a second tag.
  t.regex(result.stderr, /msg="poll complete" recipe=hello-peios tags_seen=1 matches_emitted=1 /);
  for (const entry of await archiveEntries(repo)) {
    const manifest = await manifestOf(repo, entry);
    t.is(manifest.build.timestamp, '2026-06-07T08:09:10Z');
    t.is(manifest.build.source_ref, `git+${upstream.dir}#refs/tags/v3.0.0`);
  }
  const [build] = await buildRecords(farm);
  t.is(build?.commit, (await upstream.git('rev-parse', 'v3.0.0^{commit}')).trim(), 'the commit, not the tag object');
});

test('submodules = true clones the upstream\'s submodules, and their files reach the package', async (t) => {
  t.timeout(180_000);
  const sub = await makeUpstream(t);
  await sub.tag('sub-1', { file: 'data.txt', content: 'from the submodule\n' });
  const upstream = await makeUpstream(t);
  // Local submodules need file transport, which git refuses by default; the operator allows it the usual way.
  const allowFile = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'protocol.file.allow', GIT_CONFIG_VALUE_0: 'always' };
  await execa('git', ['submodule', 'add', '-q', sub.dir, 'vendor/sub'], { cwd: upstream.dir, env: allowFile });
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const script = (await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8')) +
    'install -D -m 0644 "$SOURCE_DIR/vendor/sub/data.txt" "$DESTDIR/usr/share/doc/hello-peios/data.txt"\n';
  await writeRecipe(farm.recipesDir, { git: upstream.dir, submodules: true, script });
  const result = await runOnce(farm, [], allowFile);
  t.is(result.exitCode, 0, result.stderr);
  const repo = join(farm.stateDir, 'repo');
  const doc = (await archiveEntries(repo)).find((e) => e.name === 'hello-peios-doc');
  const facts = await readPackage(join(repo, doc?.url ?? ''));
  const files = JSON.parse(facts.filesJson?.toString('utf8') ?? '{"entries":[]}') as { entries: Array<{ path: string }> };
  t.true(files.entries.some((f) => f.path === 'usr/share/doc/hello-peios/data.txt'), 'the submodule\'s file is packaged');
  t.false(files.entries.some((f) => f.path.includes('.git')), 'no git metadata is packaged');
});

test('the rclone upload to a local-directory remote gives a repository that verifies, without *.tmp-* files', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  await upstream.tag('v1.1.0');
  const remote = join(await tempDir(t, 'peipkg-remote-'), 'public');
  const farm = await makeFarm(t);
  await farm.writeConfig('', { upload: `[upload]\nbackend = "rclone"\nremote = ${JSON.stringify(remote)}\nretries = 0` });
  await writeRecipe(farm.recipesDir, { git: upstream.dir });

  // Create the repository first and leave temporary entries in it where publishing does not clean
  // up (an interrupted writer's leftovers); the upload must not send them.
  const repo = join(farm.stateDir, 'repo');
  await mkdir(farm.stateDir, { recursive: true });
  const init = await runTool('peipkg-repo', ['init', '--name', 'test-repo', '--sign-key', farm.keyFile, '--timestamp', '2026-01-01T00:00:00Z', '--out', repo]);
  t.is(init.exitCode, 0, init.stderr);
  const planted = ['assets/app.js.tmp-0123456789ab', 'p/junk.tmp-feedface0000/stray.peipkg'];
  for (const file of planted) {
    await mkdir(join(repo, file, '..'), { recursive: true });
    await writeFile(join(repo, file), 'half-written\n');
  }

  const result = await once(farm);
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stderr, /msg="upload complete"/);
  for (const file of planted) t.true(await stat(join(repo, file)).then(() => true, () => false), `${file} is still in the local repository`);

  await verifyRepo(t, remote);
  t.deepEqual(await publishedIn(remote), ['hello-peios 1.0.0-1', 'hello-peios 1.1.0-1', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.1.0-1']);
  const files = await walk(remote);
  t.deepEqual(files.filter((f) => f.includes('.tmp-')), [], 'no temporary files uploaded');
  for (const entry of await archiveEntries(remote)) t.true(files.includes(entry.url.replace(/^\//, '')), `${entry.url} uploaded`);
  // The remote holds the same indexes as the local repository.
  for (const file of ['repo.json', 'repo.json.sig', 'index/archive.json', 'index/archive.json.sig', 'index/active.json']) {
    t.deepEqual(await readFile(join(remote, file)), await readFile(join(repo, file)), file);
  }
});
