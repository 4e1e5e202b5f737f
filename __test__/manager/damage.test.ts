/**
 * A damaged repository (issue: farm hardening): a truncated `repo.json` must not make every good
 * build "publish failed", quarantined and backed off. The farm checks the state, holds finished
 * builds while it is damaged, names the damaged file on `/healthz` and `/status`, and publishes the
 * held builds once the operator has repaired it — in the daemon (SIGHUP checks at once) and across
 * `--once` runs.
 */

import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { buildRecords, freePort, makeFarm, makeUpstream, publishedIn, runOnce, startDaemon, verifyRepo, waitFor, writeRecipe } from '../helpers/farm.js';

const both = (...versions: string[]): string[] => versions.flatMap((v) => [`hello-peios-doc ${v}`, `hello-peios ${v}`]).sort();

interface Status {
  repository: { state: string; file?: string; error?: string };
  held: Array<{ build: string; recipe: string; version: string }>;
}

test.serial('with repo.json truncated, a good build is held (not failed, quarantined or backed off), named on /healthz and /status, and published once the repository is repaired', async (t) => {
  t.timeout(150_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const first = await runOnce(farm);
  t.is(first.exitCode, 0, first.stderr);

  const repo = join(farm.stateDir, 'repo');
  const descriptor = join(repo, 'repo.json');
  const backup = join(farm.root, 'repo.json.backup');
  await copyFile(descriptor, backup);
  const text = await readFile(descriptor, 'utf8');
  await writeFile(descriptor, text.slice(0, Math.floor(text.length / 2)));
  await upstream.tag('v1.1.0');

  const port = await freePort();
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:${port}"` });
  const daemon = startDaemon(t, farm.configPath);
  const base = `http://127.0.0.1:${port}`;
  const fail = (error: Error): never => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  };
  const record = async () => (await buildRecords(farm)).find((b) => b.version === '1.1.0-1');
  await waitFor(async () => (await record())?.state === 'held', 60_000, 'the build to be held').catch(fail);

  const held = (await record())!;
  t.is(held.stage, 'publish');
  t.regex(held.error ?? '', /^repository damaged: .*repo\.json/);
  t.deepEqual((await readdir(join(farm.stateDir, 'held', held.id))).sort(), ['hello-peios-doc_1.1.0-1_noarch.peipkg', 'hello-peios_1.1.0-1_noarch.peipkg']);
  t.deepEqual(await readdir(join(farm.stateDir, 'quarantine')), [], 'nothing quarantined');
  t.deepEqual(JSON.parse(await readFile(join(farm.stateDir, 'history', 'failures.json'), 'utf8').catch(() => '{}')), {}, 'no back-off');
  t.is(daemon.log().split('\n').filter((l) => l.includes('msg="publish failed"') || l.includes('msg="build failed"')).length, 0, daemon.log());
  t.regex(daemon.log(), /level=error msg="repository damaged; publishing stops until it is repaired" .*file=repo\.json/);

  const health = await fetch(`${base}/healthz`);
  t.is(health.status, 503);
  t.regex(await health.text(), /^repository damaged: .*repo\.json/);
  const status = (await (await fetch(`${base}/status`)).json()) as Status;
  t.is(status.repository.state, 'damaged');
  t.is(status.repository.file, 'repo.json');
  t.deepEqual(status.held, [{ build: held.id, recipe: 'hello-peios', version: '1.1.0-1' }]);

  // A reload polls again: the held version is not built a second time.
  daemon.child.kill('SIGHUP');
  await waitFor(() => daemon.log().split('msg="recipes reloaded"').length > 1, 30_000, 'the reload').catch(fail);
  await waitFor(() => daemon.log().includes('trigger skipped (built; held until the repository is repaired)'), 30_000, 'the re-poll').catch(fail);
  t.is((await buildRecords(farm)).filter((b) => b.version === '1.1.0-1').length, 1);

  // The operator restores repo.json and sends SIGHUP: the held build is published at once.
  await copyFile(backup, descriptor);
  daemon.child.kill('SIGHUP');
  await waitFor(async () => (await record())?.state === 'succeeded', 60_000, 'the held build to be published').catch(fail);
  t.deepEqual(await publishedIn(repo), both('1.0.0-1', '1.1.0-1'));
  await verifyRepo(t, repo);
  t.deepEqual(await readdir(join(farm.stateDir, 'held')), []);
  t.is((await fetch(`${base}/healthz`)).status, 200);
  const after = (await (await fetch(`${base}/status`)).json()) as Status;
  t.deepEqual(after.repository, { state: 'ok' });
  t.deepEqual(after.held, []);
  t.regex(daemon.log(), /msg="repository repaired; publishing resumes"/);
});

test.serial('--once with a damaged index holds the build and exits 1; the next run after the repair publishes it and exits 0', async (t) => {
  t.timeout(120_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  t.is((await runOnce(farm)).exitCode, 0);

  const active = join(farm.stateDir, 'repo', 'index', 'active.json');
  const good = await readFile(active);
  await writeFile(active, good.subarray(0, 40));
  await upstream.tag('v1.1.0');
  const damaged = await runOnce(farm);
  t.is(damaged.exitCode, 1, damaged.stderr);
  t.regex(damaged.stderr, /msg="build held until the repository is repaired"/);
  t.regex(damaged.stderr, /msg="sweep ended with the repository damaged.* err="[^"]*active\.json/);
  t.deepEqual((await buildRecords(farm)).map((b) => [b.version, b.state]), [['1.0.0-1', 'succeeded'], ['1.1.0-1', 'held']]);

  await writeFile(active, good);
  const repaired = await runOnce(farm);
  t.is(repaired.exitCode, 0, repaired.stderr);
  t.false(repaired.stderr.includes('msg="starting build"'), 'the held build was published, not rebuilt');
  t.deepEqual((await buildRecords(farm)).map((b) => [b.version, b.state]), [['1.0.0-1', 'succeeded'], ['1.1.0-1', 'succeeded']]);
  t.deepEqual(await publishedIn(join(farm.stateDir, 'repo')), both('1.0.0-1', '1.1.0-1'));
  await verifyRepo(t, join(farm.stateDir, 'repo'));
});

test.serial('an unreadable archive index is reported as such: no build starts blind, and upstreams are not blamed', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  t.is((await runOnce(farm)).exitCode, 0);
  const archive = join(farm.stateDir, 'repo', 'index', 'archive.json');
  await writeFile(archive, (await readFile(archive)).subarray(0, 40));
  await upstream.tag('v1.1.0');
  const result = await runOnce(farm);
  t.is(result.exitCode, 1, result.stderr);
  t.regex(result.stderr, /level=error msg="poll skipped: the repository index cannot be read" recipe=hello-peios err="cannot tell what the repository holds: [^"]*archive\.json/);
  t.false(result.stderr.includes('msg="ls-remote failed"'), result.stderr);
  t.false(result.stderr.includes('msg="starting build"'), result.stderr);
  t.regex(result.stderr, /msg="repository damaged; publishing stops until it is repaired" .*file=index\/archive\.json/);
});
