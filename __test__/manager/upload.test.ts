/**
 * Uploads under attack (issue: farm hardening): local corruption never reaches the public mirror,
 * a remote that hangs never holds up publishing and shows on `/healthz`, and the rollback guard
 * fails closed when the remote cannot be read. Real rclone against local directories and a real
 * TCP peer on 127.0.0.1 that accepts and never answers (as a stalled sftp server does).
 */

import { open, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';

import { buildRecords, exitWithin, freePort, makeFarm, makeUpstream, publishedIn, runOnce, startDaemon, verifyRepo, waitFor, writeRecipe, type Farm } from '../helpers/farm.js';
import { tempDir } from '../helpers/fs.js';
import { snapshot } from '../helpers/repo.js';
import { runTool } from '../helpers/cli.js';

const repoOf = (farm: Farm): string => join(farm.stateDir, 'repo');
const packagePath = (repo: string, name: string, version: string, arch = 'noarch'): string => join(repo, 'p', name, version, `${name}_${version}_${arch}.peipkg`);
const events = (log: string, msg: string): string[] => log.split('\n').filter((l) => l.includes(` msg=${JSON.stringify(msg)}`) || l.includes(` msg=${msg} `));

/** Flips one byte in the middle of `path`, in place (size kept). */
async function flipByte(path: string): Promise<void> {
  const size = (await stat(path)).size;
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, Math.floor(size / 2));
  } finally {
    await handle.close();
  }
}

async function uploadTo(farm: Farm, remote: string, more = ''): Promise<void> {
  await farm.writeConfig('', { upload: `[upload]\nbackend = "rclone"\nremote = ${JSON.stringify(remote)}\nretries = 0\nretry_backoff = "1s"\n${more}` });
}

/** A directory on PATH holding an `rclone` that records every call (one line of arguments each), then runs the real one. */
async function recordingRclone(t: ExecutionContext): Promise<{ path: string; calls: () => Promise<string[]> }> {
  const bin = await tempDir(t, 'peipkg-rclone-calls-');
  const log = join(bin, 'calls');
  await writeFile(join(bin, 'rclone'), `#!/bin/sh\necho "$*" >> ${log}\nexec /usr/bin/rclone "$@"\n`, { mode: 0o755 });
  return {
    path: `${bin}:${process.env.PATH ?? ''}`,
    calls: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
  };
}

test.serial('a byte flipped in an uploaded package never reaches the mirror: published packages are not sent again, and the remote still verifies', async (t) => {
  t.timeout(120_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const remote = join(farm.root, 'remote');
  await uploadTo(farm, remote);
  const first = await runOnce(farm);
  t.is(first.exitCode, 0, first.stderr);
  await verifyRepo(t, remote);

  const local = packagePath(repoOf(farm), 'hello-peios', '1.0.0-1');
  const mirrored = packagePath(remote, 'hello-peios', '1.0.0-1');
  const good = await readFile(mirrored);
  await flipByte(local);
  t.notDeepEqual(await readFile(local), good);

  await upstream.tag('v1.1.0');
  const second = await runOnce(farm);
  t.is(second.exitCode, 0, second.stderr);
  t.is(events(second.stderr, 'upload complete').length >= 1, true, second.stderr);
  t.deepEqual(await readFile(mirrored), good, 'the mirror kept its good copy');
  await verifyRepo(t, remote);
  t.deepEqual(await publishedIn(remote), ['hello-peios 1.0.0-1', 'hello-peios 1.1.0-1', 'hello-peios-doc 1.0.0-1', 'hello-peios-doc 1.1.0-1']);
});

test.serial('a package that does not match the signed index stops the upload with its name, and nothing reaches the remote', async (t) => {
  t.timeout(120_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  // Publish locally while the remote cannot be written (its parent is a regular file).
  const blocker = join(farm.root, 'blocker');
  await writeFile(blocker, 'not a directory\n');
  const remote = join(blocker, 'remote');
  await uploadTo(farm, remote);
  const first = await runOnce(farm);
  t.is(first.exitCode, 1, 'the upload failed');
  t.deepEqual(await publishedIn(repoOf(farm)), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);

  const corrupted = packagePath(repoOf(farm), 'hello-peios-doc', '1.0.0-1');
  await flipByte(corrupted);
  await rm(blocker);
  await mkdir(blocker);
  const second = await runOnce(farm);
  t.is(second.exitCode, 1, second.stderr);
  const failure = events(second.stderr, 'upload failed; giving up until the next publish or restart').join('\n');
  t.regex(failure, /do not match the signed index/);
  t.true(failure.includes('p/hello-peios-doc/1.0.0-1/hello-peios-doc_1.0.0-1_noarch.peipkg'), failure);
  t.regex(failure, /restore it from the mirror or a backup/);
  t.deepEqual(await readdir(remote).catch(() => []), [], 'nothing was sent');
});

test.serial('a remote that accepts and never answers does not hold up publishing; /healthz says the upload is degraded; the attempt times out', async (t) => {
  t.timeout(120_000);
  // A TCP peer that accepts and says nothing: an ssh client waits for its banner forever.
  const held: Socket[] = [];
  const server = createServer((socket) => void held.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    held.forEach((s) => s.destroy());
    server.close();
  });
  const address = server.address();
  const sftpPort = typeof address === 'object' && address ? address.port : 0;

  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  await upstream.tag('v1.1.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const port = await freePort();
  await farm.writeConfig('', {
    http: `[http]\naddr = "127.0.0.1:${port}"`,
    upload: '[upload]\nbackend = "rclone"\nremote = "stalled:repo"\nretries = 5\nretry_backoff = "1s"\ntimeout = "3s"',
  });
  const daemon = startDaemon(t, farm.configPath, [], {
    RCLONE_CONFIG_STALLED_TYPE: 'sftp',
    RCLONE_CONFIG_STALLED_HOST: '127.0.0.1',
    RCLONE_CONFIG_STALLED_PORT: String(sftpPort),
    RCLONE_CONFIG_STALLED_USER: 'peipkg',
    // A password, so that rclone connects instead of asking for an ssh agent.
    RCLONE_CONFIG_STALLED_PASS: (await execa('rclone', ['obscure', 'secret'])).stdout.trim(),
  });
  const base = `http://127.0.0.1:${port}`;

  // Both versions are published locally while every upload attempt hangs.
  const done = async (): Promise<boolean> => (await buildRecords(farm)).filter((b) => b.state === 'succeeded').length === 2;
  await waitFor(done, 90_000, 'both versions built and published').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  t.is((await publishedIn(repoOf(farm))).length, 4);
  t.true(held.length >= 1, 'rclone did connect to the stalled peer');

  // Our own attempt timeout ends each hung attempt; /healthz reports it.
  await waitFor(async () => (await fetch(`${base}/healthz`)).status === 503, 30_000, '/healthz to report the upload').catch((error: Error) => {
    throw new Error(`${error.message}\n${daemon.log()}`);
  });
  const health = await fetch(`${base}/healthz`);
  const text = await health.text();
  t.regex(text, /^degraded: upload to stalled:repo has been failing/);
  t.regex(text, /timed out after 3s \(\[upload\]\.timeout\)/);
  const status = (await (await fetch(`${base}/status`)).json()) as { upload: { state: string; last_error?: string; behind_since?: string } };
  t.true(['waiting', 'running'].includes(status.upload.state), JSON.stringify(status.upload));
  t.truthy(status.upload.behind_since);
  t.regex(status.upload.last_error ?? '', /timed out/);
  t.true(events(daemon.log(), 'upload failed; retrying').length >= 1, daemon.log());

  daemon.child.kill('SIGTERM');
  const { exitCode, elapsedMs } = await exitWithin(daemon, 30_000);
  t.is(exitCode, 0, daemon.log());
  t.true(elapsedMs < 15_000, `exited ${elapsedMs} ms after SIGTERM`);
});

test.serial('the rollback guard fails closed: a remote that cannot be read is an error, never "empty", and nothing is copied to it', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  // Connection refused, with no rclone.conf: rclone then says "Config file … not found" on every run.
  const closed = await freePort();
  await uploadTo(farm, 'refused:repo');
  const rclone = await recordingRclone(t);
  const result = await runOnce(farm, [], {
    PATH: rclone.path,
    RCLONE_CONFIG: join(farm.root, 'no-such-rclone.conf'),
    RCLONE_CONFIG_REFUSED_TYPE: 'sftp',
    RCLONE_CONFIG_REFUSED_HOST: '127.0.0.1',
    RCLONE_CONFIG_REFUSED_PORT: String(closed),
    RCLONE_CONFIG_REFUSED_USER: 'peipkg',
    RCLONE_CONFIG_REFUSED_PASS: (await execa('rclone', ['obscure', 'secret'])).stdout.trim(),
  });
  t.is(result.exitCode, 1, result.stderr);
  t.deepEqual(await publishedIn(repoOf(farm)), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1'], 'published locally');
  const failure = events(result.stderr, 'upload failed; giving up until the next publish or restart');
  t.true(failure.length >= 1, result.stderr);
  t.regex(failure[0] ?? '', /rclone lsf \(remote files\): exit status 1/);
  const calls = await rclone.calls();
  t.true(calls.length >= 1, 'rclone was run');
  t.deepEqual(calls.filter((c) => /^(copy|copyto|moveto|sync) /.test(c)), [], `rclone wrote nothing: ${calls.join('\n')}`);
});

test.serial('a remote index that does not parse stops the upload instead of being overwritten', async (t) => {
  t.timeout(90_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  const remote = join(farm.root, 'remote');
  await mkdir(join(remote, 'index'), { recursive: true });
  await writeFile(join(remote, 'index', 'archive.json'), '{"index_version": 7, "packa');
  const before = await snapshot(remote);
  await uploadTo(farm, remote);
  const result = await runOnce(farm);
  t.is(result.exitCode, 1, result.stderr);
  t.regex(result.stderr, /remote's index\/archive\.json .* is not a readable index/);
  t.deepEqual(await snapshot(remote), before);
  // The operator's fix: remove it; the next run uploads.
  await rm(join(remote, 'index'), { recursive: true });
  const again = await runOnce(farm);
  t.is(again.exitCode, 0, again.stderr);
  const verified = await runTool('peipkg-repo', ['verify', '--repo', remote]);
  t.is(verified.exitCode, 0, verified.stderr);
});
