/**
 * The configuration of a farm of many machines: the coordinator's `[queue]`, `[build].local`,
 * `[[worker]]` and `[verify]` keys, and the worker's own `worker.toml`. Both are strict (an unknown
 * key is a typo, exit 2, naming it); every file they name is checked at start-up with a clear
 * message (exit 1); a worker that holds the farm's own package key refuses to start (exit 2).
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';
import { execa } from 'execa';

import { parseConfig } from '../../ts/manager/config.js';
import { parseWorkerConfig } from '../../ts/manager/workerConfig.js';
import { runTool } from '../helpers/cli.js';
import { makeFarm } from '../helpers/farm.js';
import { tempDir } from '../helpers/fs.js';
import { startRedis } from '../helpers/redis.js';

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);
const BASE = ['[manager]', 'id = "f"', 'recipes_dir = "/r"', 'state_dir = "/s"', '[repo]', 'name = "n"', '[signing]', 'key_file = "/k"', '[poll]', 'default_interval = "1h"'].join('\n');
const coordinator = (more: string): ReturnType<typeof parseConfig> => parseConfig(`${BASE}\n${more}\n`, '/etc/peipkg-manager/config.toml');

test('coordinator: the embedded queue is the default; a redis farm is read as written', (t) => {
  const plain = coordinator('');
  t.is(plain.queue.backend, 'embedded');
  t.true(plain.build.local);
  t.deepEqual(plain.workers, []);
  t.false(plain.verify.rebuild);
  const farm = coordinator('[queue]\nbackend = "redis"\nurl = "rediss://:pw@10.0.0.5:6380/2"\nlock_window = "90s"\nartifact_max_size = "2GiB"\n[build]\nlocal = false\n[http]\naddr = ":8080"\n[[worker]]\nid = "arm-1"\ntoken_file = "/etc/w/arm-1.token"\n[verify]\nrebuild = true');
  t.deepEqual(farm.queue, { backend: 'redis', url: 'rediss://:pw@10.0.0.5:6380/2', urlFile: '', lockWindowMs: 90_000, artifactMaxSize: 2 * 1024 ** 3 });
  t.false(farm.build.local);
  t.deepEqual(farm.workers, [{ id: 'arm-1', tokenFile: '/etc/w/arm-1.token' }]);
  t.true(farm.verify.rebuild);
});

const BAD_COORDINATOR: Array<[string, string, RegExp]> = [
  ['redis without a URL', '[queue]\nbackend = "redis"', /\[queue\]\.url: set url or url_file/],
  ['both url and url_file', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\nurl_file = "/etc/u"', /\[queue\]\.url: set url or url_file \(one of them\)/],
  ['a URL that is no Redis URL', '[queue]\nbackend = "redis"\nurl = "http://h:6379"', /\[queue\]\.url: scheme "http" not supported/],
  ['a database that is no number', '[queue]\nbackend = "redis"\nurl = "redis://h/farm"', /database "farm" is not a number/],
  ['an unknown backend', '[queue]\nbackend = "rabbitmq"', /\[queue\]\.backend: "rabbitmq" not recognised/],
  ['an unknown [queue] key', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\nurll = "x"', /\[queue\]\.urll: unknown key/],
  ['a lock window under 3s', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\nlock_window = "1s"', /\[queue\]\.lock_window: 1s is less than the 3s minimum/],
  ['local = false with the embedded queue', '[build]\nlocal = false', /\[build\]\.local: false needs \[queue\]\.backend = "redis"/],
  ['workers with the embedded queue', '[[worker]]\nid = "w"\ntoken_file = "/t"', /\[\[worker\]\]: workers need \[queue\]\.backend = "redis"/],
  ['a URL with the embedded queue', '[queue]\nurl = "redis://h/0"', /\[queue\]\.url: is used only with backend = "redis"/],
  ['local = false and no worker', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\n[build]\nlocal = false', /nothing would build/],
  ['workers but no [http].addr', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\n[[worker]]\nid = "w"\ntoken_file = "/t"', /\[http\]\.addr: is required with \[\[worker\]\]s/],
  ['a worker id with ":"', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\n[http]\naddr = ":1"\n[[worker]]\nid = "arm:1"\ntoken_file = "/t"', /\[\[worker\]\]\[0\]\.id: must be 1–64 letters/],
  ['two workers with one id', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\n[http]\naddr = ":1"\n[[worker]]\nid = "w"\ntoken_file = "/t"\n[[worker]]\nid = "w"\ntoken_file = "/u"', /\[\[worker\]\] w: duplicate id/],
  ['a relative token_file', '[queue]\nbackend = "redis"\nurl = "redis://h/0"\n[http]\naddr = ":1"\n[[worker]]\nid = "w"\ntoken_file = "w.token"', /\[\[worker\]\]\[0\]\.token_file: must be an absolute path/],
  ['an unknown [verify] key', '[verify]\nrebuilds = true', /\[verify\]\.rebuilds: unknown key/],
];

for (const [title, more, message] of BAD_COORDINATOR) {
  test(`coordinator: ${title} is refused, naming the key`, (t) => {
    t.throws(() => coordinator(more), { message });
  });
}

const WORKER = (more = '', worker = ''): string =>
  ['[worker]', 'id = "arm-1"', 'queue_url = "redis://10.0.0.5:6379/0"', 'coordinator = "http://10.0.0.5:8080/"', 'token_file = "/etc/peipkg-worker/token"', 'architectures = ["aarch64", "noarch"]', 'work_dir = "/var/lib/peipkg-worker"', worker, more].join('\n');

test('worker: worker.toml is read as written, with the coordinator\'s [build] keys', (t) => {
  const config = parseWorkerConfig(WORKER('[build]\nuser = "builder"\ntimeout = "1h"\nclone_timeout = "5m"\nzstd_level = 15\n[[signing_key]]\nname = "kernel"\nprivate = "/etc/keys/kernel.pem"'), '/etc/peipkg-worker/worker.toml');
  t.deepEqual(config.worker, {
    id: 'arm-1',
    queueUrl: 'redis://10.0.0.5:6379/0',
    coordinator: 'http://10.0.0.5:8080',
    tokenFile: '/etc/peipkg-worker/token',
    architectures: ['aarch64', 'noarch'],
    workDir: '/var/lib/peipkg-worker',
    concurrency: 1,
    drainTimeoutMs: 15 * 60_000,
    logFormat: 'logfmt',
  });
  t.deepEqual(config.build, { timeoutMs: 3_600_000, cloneTimeoutMs: 300_000, zstdLevel: 15, user: 'builder', sandbox: 'auto' });
  t.deepEqual(config.signingKeys, [{ name: 'kernel', private: '/etc/keys/kernel.pem', pubkeyEnv: '' }]);
});

const BAD_WORKER: Array<[string, string, RegExp]> = [
  ['the farm\'s [signing] table', '[signing]\nkey_file = "/etc/peipkg-manager/farm.key"', /signing: unknown key/],
  ['an unknown [worker] key', '', /concurency: unknown key/],
  ['an architecture no build has', '', /\[worker\]\.architectures\[0\]: "sparc" not recognised/],
  ['a coordinator that is no http URL', '', /\[worker\]\.coordinator: "ftp:\/\/h" is not an http/],
  ['the reserved id "local"', '', /\[worker\]\.id: is reserved/],
  ['a [build] key only the coordinator has', '[build]\nlocal = false', /\[build\]\.local: unknown key/],
];

const BAD_WORKER_TEXT: Record<string, string> = {
  'an unknown [worker] key': WORKER('', 'concurency = 2'),
  'an architecture no build has': WORKER().replace('["aarch64", "noarch"]', '["sparc"]'),
  'a coordinator that is no http URL': WORKER().replace('http://10.0.0.5:8080/', 'ftp://h'),
  'the reserved id "local"': WORKER().replace('id = "arm-1"', 'id = "local"'),
};

for (const [title, more, message] of BAD_WORKER) {
  test(`worker: ${title} is refused, naming the key`, (t) => {
    t.throws(() => parseWorkerConfig(BAD_WORKER_TEXT[title] ?? WORKER(more), '/etc/peipkg-worker/worker.toml'), { message });
  });
}

test('worker: a bad worker.toml exits 2 naming the key and creates nothing; a missing token file exits 1 naming it', async (t) => {
  const dir = await tempDir(t);
  const workDir = join(dir, 'work');
  const good = WORKER().replace('/var/lib/peipkg-worker', workDir).replace('/etc/peipkg-worker/token', join(dir, 'token'));
  await writeFile(join(dir, 'bad.toml'), `${good}\nqueue = "x"\n`);
  const bad = await runTool('peipkg-manager', ['worker', '--config', join(dir, 'bad.toml')]);
  t.is(bad.exitCode, 2, bad.stderr);
  t.regex(bad.stderr, /\[worker\]\.queue: unknown key/);
  t.false(await exists(workDir), 'work_dir not created');
  await writeFile(join(dir, 'good.toml'), good);
  const noToken = await runTool('peipkg-manager', ['worker', '--config', join(dir, 'good.toml')]);
  t.is(noToken.exitCode, 1, noToken.stderr);
  t.regex(noToken.stderr, new RegExp(`\\[worker\\]\\.token_file ${join(dir, 'token')}: cannot read it`));
  t.notRegex(noToken.stderr, /\n\s+at /, 'no stack trace');
});

test('worker: a [[signing_key]] that is the farm\'s package key refuses to start (exit 2), naming it', async (t) => {
  const redis = await startRedis(t);
  const farm = await makeFarm(t);
  // The coordinator publishes its key's fingerprint in Redis; computed here the way it does.
  const { signingKeyInfo, loadSigningKey } = await import('../../ts/native.js');
  const farmFingerprint = signingKeyInfo(loadSigningKey(farm.keyFile)).fingerprint;
  t.regex(farmFingerprint, /^[0-9a-f]{64}$/);
  await execa('redis-cli', ['-p', String(redis.port), 'hset', 'peipkg:farm:settings', 'lockWindowMs', '60000', 'farmFingerprint', farmFingerprint, 'farmId', 'test-farm']);
  const token = join(farm.root, 'token');
  await writeFile(token, randomBytes(24).toString('hex'), { mode: 0o600 });
  await mkdir(join(farm.root, 'work'));
  const config = join(farm.root, 'worker.toml');
  await writeFile(
    config,
    WORKER(`[[signing_key]]\nname = "stolen"\nprivate = ${JSON.stringify(farm.keyFile)}`)
      .replace('redis://10.0.0.5:6379/0', redis.url)
      .replace('/etc/peipkg-worker/token', token)
      .replace('/var/lib/peipkg-worker', join(farm.root, 'work')),
  );
  const result = await runTool('peipkg-manager', ['worker', '--config', config], { timeoutMs: 60_000 });
  t.is(result.exitCode, 2, result.stderr);
  t.regex(result.stderr, /\[\[signing_key\]\] stolen is the farm's package-signing key/);
});

test('coordinator: a [[worker]] token file that is missing or short stops the start (exit 1), naming it', async (t) => {
  const redis = await startRedis(t);
  const farm = await makeFarm(t);
  const tokenFile = join(farm.root, 'w.token');
  await farm.writeConfig(`[queue]\nbackend = "redis"\nurl = "${redis.url}"\n[[worker]]\nid = "w"\ntoken_file = ${JSON.stringify(tokenFile)}\n`, { http: '[http]\naddr = "127.0.0.1:0"' });
  const missing = await runTool('peipkg-manager', ['--config', farm.configPath, '--once'], { timeoutMs: 60_000 });
  t.is(missing.exitCode, 1, missing.stderr);
  t.regex(missing.stderr, new RegExp(`\\[\\[worker\\]\\] w: token_file ${tokenFile}: cannot read it`));
  await writeFile(tokenFile, 'short\n');
  const short = await runTool('peipkg-manager', ['--config', farm.configPath, '--once'], { timeoutMs: 60_000 });
  t.is(short.exitCode, 1, short.stderr);
  t.regex(short.stderr, /shorter than 16 characters; put a long random token in it/);
  t.is(await readFile(tokenFile, 'utf8'), 'short\n');
});
