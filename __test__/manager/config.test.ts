/**
 * `peipkg-manager`'s command line and configuration (recipes-and-farm.md §6–7, D-13, D-15, D-16,
 * D-17, DECISIONS.md Manager): a bad config exits 2 naming every bad key at once and touches
 * nothing; a missing one exits 1; flags and help; bad recipes are skipped alone while the good ones
 * build; a recipe folder named after no package is only a warning.
 */

import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

import test from 'ava';

import { parseConfig } from '../../ts/manager/config.js';
import { runTool, type ToolResult } from '../helpers/cli.js';
import { exitWithin, makeFarm, makeUpstream, publishedIn, startDaemon, writeRecipe } from '../helpers/farm.js';

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

function once(configPath: string, extra: string[] = []): Promise<ToolResult> {
  return runTool('peipkg-manager', ['--config', configPath, '--once', ...extra], { timeoutMs: 150_000 });
}

interface BadConfig {
  title: string;
  /** Turns the good config into the bad one. */
  edit(config: string): string;
  /** Each must appear in the error output. */
  named: string[];
}

const append = (more: string) => (config: string) => `${config}\n${more}\n`;
const pollInterval = (value: string) => (config: string) => config.replace('default_interval = "1h"', `default_interval = ${JSON.stringify(value)}`);

const BAD: BadConfig[] = [
  { title: 'an unknown key', edit: (c) => c.replace('id = "test-farm"', 'idd = "test-farm"'), named: ['[manager].idd', 'unknown key'] },
  { title: 'an unknown upload backend', edit: append('[upload]\nbackend = "s3"'), named: ['[upload].backend', '"s3"'] },
  { title: 'a poll interval below 1m', edit: pollInterval('30s'), named: ['[poll].default_interval', '1-minute minimum'] },
  { title: 'a poll interval that is no duration', edit: pollInterval('soon'), named: ['[poll].default_interval', '"soon"'] },
  { title: 'a listen address that is none', edit: append('[http]\naddr = "nonsense"'), named: ['[http].addr', '"nonsense"'] },
  { title: 'a webhook_max_body above the 25 MiB GitHub sends', edit: append('[http]\nwebhook_max_body = "26MiB"'), named: ['[http].webhook_max_body', '26MiB is more than the 25MiB'] },
  { title: 'a webhook_max_body that is no size', edit: append('[http]\nwebhook_max_body = "lots"'), named: ['[http].webhook_max_body', '"lots" is not a size'] },
  { title: 'a webhook_max_body in decimal megabytes', edit: append('[http]\nwebhook_max_body = "1MB"'), named: ['[http].webhook_max_body', '"1MB" is not a size'] },
  { title: 'a webhook_max_body of a few bytes', edit: append('[http]\nwebhook_max_body = 1'), named: ['[http].webhook_max_body', 'less than the 1KiB minimum'] },
  { title: 'a webhook_max_body of the wrong type', edit: append('[http]\nwebhook_max_body = true'), named: ['[http].webhook_max_body', 'true is not a size'] },
  {
    title: 'a relative state_dir',
    edit: (c) => c.replace(/^state_dir = .*$/m, 'state_dir = "relative/state"'),
    named: ['[manager].state_dir', 'absolute'],
  },
  { title: 'a zstd level out of range', edit: append('[build]\nzstd_level = 99'), named: ['[build].zstd_level', '99'] },
  {
    title: 'zero build and clone timeouts (every build would fail)',
    edit: append('[build]\ntimeout = "0s"\nclone_timeout = "0"'),
    named: ['[build].timeout: must be longer than 0s', '[build].clone_timeout: must be longer than 0s'],
  },
  { title: 'a zero upload timeout', edit: append('[upload]\ntimeout = "0s"'), named: ['[upload].timeout: must be longer than 0s'] },
  {
    title: 'a grant naming an unknown signing key',
    edit: append('[[grant]]\nrecipe = "hello-peios"\nsign = ["tcb"]'),
    named: ['[[grant]] hello-peios: sign references unknown signing key "tcb"'],
  },
  {
    title: 'grants that inject keys wrongly, twice for one recipe',
    edit: append(
      '[[signing_key]]\nname = "tcb"\nprivate = "/etc/peipkg/tcb.pem"\n' +
        '[[signing_key]]\nname = "tcb"\nprivate = "/etc/peipkg/tcb2.pem"\n' +
        '[[grant]]\nrecipe = "kernel"\ninject_pubkey = ["tcb", "other"]\n[[grant]]\nrecipe = "kernel"',
    ),
    named: [
      '[[signing_key]] tcb: duplicate name',
      '[[grant]] kernel: inject_pubkey key "tcb" has no pubkey_env',
      '[[grant]] kernel: inject_pubkey references unknown signing key "other"',
      '[[grant]] kernel: duplicate recipe',
    ],
  },
  {
    title: 'a signing key with no name, a relative path and a pubkey_env no build can take',
    edit: append('[[signing_key]]\nprivate = "tcb.pem"\npubkey_env = "PATH"\n[[signing_key]]\nname = "x"\nprivate = "/k"\npubkey_env = "1X"'),
    named: ['[[signing_key]][0].name', '[[signing_key]][0].private: must be an absolute path', '[[signing_key]][0].pubkey_env: "PATH" is reserved', '[[signing_key]][1].pubkey_env: "1X" is not a variable name'],
  },
  { title: 'a misspelt key next to a good one', edit: (c) => c.replace('default_interval = "1h"', 'default_interval = "1h"\nintervall = "2h"'), named: ['[poll].intervall'] },
  { title: 'a TOML syntax error', edit: append('[build\nzstd_level = 3'), named: ['TOML syntax error at line'] },
  {
    title: 'two bad keys in two tables',
    edit: (c) => append('[build]\nzstd_level = 0\n[upload]\nbackend = "s3"')(pollInterval('30s')(c)),
    named: ['[build].zstd_level', '[upload].backend', '[poll].default_interval'],
  },
  {
    title: 'a table that does not exist and a bad value',
    edit: append('[uploads]\nbackend = "rclone"\n[http]\naddr = ":99999"'),
    named: ['bad.toml: uploads: unknown key', '[http].addr'],
  },
];

for (const bad of BAD) {
  test(`config: ${bad.title} exits 2 naming it, and touches nothing`, async (t) => {
    const farm = await makeFarm(t);
    const good = await readFile(farm.configPath, 'utf8');
    const text = bad.edit(good);
    t.not(text, good, 'the edit changed the config');
    const path = join(farm.root, 'bad.toml');
    await writeFile(path, text);
    const result = await once(path);
    t.is(result.exitCode, 2, result.stderr);
    for (const name of bad.named) t.true(result.stderr.includes(name), `"${name}" named in:\n${result.stderr}`);
    t.false(result.stderr.includes('config.toml:'), 'problems name the file as given, not "config.toml"');
    t.true(result.stderr.includes(path));
    t.regex(result.stderr, /^peipkg-manager: /);
    t.false(await exists(farm.stateDir), 'state_dir not created');
  });
}

test('config: the unchanged config of these tests is valid (the cases above fail for their edit only)', async (t) => {
  const farm = await makeFarm(t);
  const result = await once(farm.configPath);
  t.is(result.exitCode, 0, result.stderr);
  t.true(await exists(join(farm.stateDir, 'repo', 'repo.json')), 'the repository was created');
});

test('config: without a [poll] table, or with an empty one, default_interval is 1h as the README says', (t) => {
  const base = ['[manager]', 'id = "f"', 'recipes_dir = "/r"', 'state_dir = "/s"', '[repo]', 'name = "n"', '[signing]', 'key_file = "/k"'].join('\n');
  t.is(parseConfig(`${base}\n`, '/etc/peipkg-manager/config.toml').poll.defaultIntervalMs, 3_600_000);
  t.is(parseConfig(`${base}\n[poll]\n`, '/etc/peipkg-manager/config.toml').poll.defaultIntervalMs, 3_600_000);
});

test('config: [http].webhook_max_body is 1 MiB by default and takes sizes up to 25 MiB, in bytes or KiB/MiB', (t) => {
  const base = ['[manager]', 'id = "f"', 'recipes_dir = "/r"', 'state_dir = "/s"', '[repo]', 'name = "n"', '[signing]', 'key_file = "/k"', '[poll]', 'default_interval = "1h"', '[http]', 'addr = "127.0.0.1:8080"'].join('\n');
  const maxBody = (line: string): number => parseConfig(`${base}\n${line}\n`, '/etc/peipkg-manager/config.toml').http.webhookMaxBody;
  t.is(maxBody(''), 1024 * 1024);
  t.is(maxBody('webhook_max_body = "25MiB"'), 25 * 1024 * 1024);
  t.is(maxBody('webhook_max_body = "512KiB"'), 512 * 1024);
  t.is(maxBody('webhook_max_body = "1.5MiB"'), 1.5 * 1024 * 1024);
  t.is(maxBody('webhook_max_body = 2097152'), 2 * 1024 * 1024);
  t.is(maxBody('webhook_max_body = "65536B"'), 65536);
  t.is(maxBody('webhook_max_body = 26214400'), 25 * 1024 * 1024, 'exactly 25 MiB in bytes');
  t.throws(() => maxBody('webhook_max_body = 26214401'), { message: /\[http\]\.webhook_max_body: 26214401B is more than the 25MiB/ });
  t.throws(() => maxBody('webhook_max_body = "26MiB"'), { message: /\[http\]\.webhook_max_body: 26MiB is more than the 25MiB GitHub ever sends/ });
  t.throws(() => maxBody('webhook_max_body = "-1MiB"'), { message: /\[http\]\.webhook_max_body: "-1MiB" is not a size/ });
  t.throws(() => maxBody('webhook_max_body = 0'), { message: /\[http\]\.webhook_max_body: 0B is less than the 1KiB minimum/ });
});

test('a state_dir that is a file, or lies under one, exits 1 saying so (not "a bug in peipkg"), and changes nothing', async (t) => {
  const farm = await makeFarm(t);
  const good = await readFile(farm.configPath, 'utf8');
  const file = join(farm.root, 'a-file');
  await writeFile(file, 'not a directory\n');
  for (const stateDir of [file, join(file, 'state')]) {
    const path = join(farm.root, 'file-state.toml');
    await writeFile(path, good.replace(/^state_dir = .*$/m, `state_dir = ${JSON.stringify(stateDir)}`));
    const result = await once(path);
    t.is(result.exitCode, 1, result.stderr);
    t.true(result.stderr.includes(`[manager].state_dir ${stateDir}`), result.stderr);
    t.regex(result.stderr, /is a file|is not a directory/);
    t.notRegex(result.stderr, /internal error|bug in peipkg/);
    t.is(await readFile(file, 'utf8'), 'not a directory\n');
  }
});

test('an [http].addr in use or not on this machine exits 1 naming the key and what is wrong (not "a bug in peipkg")', async (t) => {
  const farm = await makeFarm(t);
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const port = (taken.address() as AddressInfo).port;
  // 192.0.2.0/24 is TEST-NET-1: no interface here has it, and binding fails without any traffic.
  const cases: Array<[string, RegExp]> = [
    [`127.0.0.1:${port}`, /already in use/],
    ['192.0.2.7:8080', /no network interface of this machine has that address/],
  ];
  for (const [addr, problem] of cases) {
    await farm.writeConfig('', { http: `[http]\naddr = "${addr}"` });
    const daemon = startDaemon(t, farm.configPath);
    const { exitCode } = await exitWithin(daemon, 60_000);
    t.is(exitCode, 1, daemon.log());
    t.true(daemon.log().includes(`peipkg-manager: [http].addr ${addr}: cannot listen there: `), daemon.log());
    t.regex(daemon.log(), problem);
    t.notRegex(daemon.log(), /internal error|bug in peipkg|\n\s+at /);
  }
});

test('a missing config file exits 1 and names it', async (t) => {
  const farm = await makeFarm(t);
  const path = join(farm.root, 'no-such-config.toml');
  const result = await once(path);
  t.is(result.exitCode, 1, result.stderr);
  t.true(result.stderr.includes(`read config ${path}`), result.stderr);
});

test('an unknown --log-level or --log-format, or an unknown flag, exits 2', async (t) => {
  const farm = await makeFarm(t);
  const loud = await once(farm.configPath, ['--log-level', 'loud']);
  t.is(loud.exitCode, 2);
  t.true(loud.stderr.includes('unknown log level "loud" (want one of: debug, info, warn, error)'), loud.stderr);
  const yaml = await once(farm.configPath, ['--log-format', 'yaml']);
  t.is(yaml.exitCode, 2);
  t.regex(yaml.stderr, /--log-format/);
  const bogus = await once(farm.configPath, ['--bogus']);
  t.is(bogus.exitCode, 2);
  t.regex(bogus.stderr, /bogus/);
  t.false(await exists(farm.stateDir), 'nothing ran');
});

for (const args of [['help'], ['--help'], ['-h']]) {
  test(`${args.join(' ')} exits 0 and prints the flags`, async (t) => {
    const result = await runTool('peipkg-manager', args);
    t.is(result.exitCode, 0, result.stderr);
    const text = result.stdout + result.stderr;
    for (const flag of ['--config', '--once', '--log-level', '--log-format']) t.true(text.includes(flag), `${flag} in:\n${text}`);
  });
}

test('webhooks without a usable secret refuse to start (D-16): no secret file, or an empty one, exits 1', async (t) => {
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir, githubWebhook: true });
  await farm.writeConfig('', { http: '[http]\naddr = "127.0.0.1:0"' });
  const none = await once(farm.configPath);
  t.is(none.exitCode, 1, none.stderr);
  t.regex(none.stderr, /webhook_secret_file is not set/);

  const secret = join(farm.root, 'secret');
  await writeFile(secret, ' \n\n');
  await farm.writeConfig('', { http: `[http]\naddr = "127.0.0.1:0"\nwebhook_secret_file = ${JSON.stringify(secret)}` });
  const empty = await once(farm.configPath);
  t.is(empty.exitCode, 1, empty.stderr);
  t.true(empty.stderr.includes(`webhook secret ${secret} is empty`), empty.stderr);
  t.false(await exists(join(farm.stateDir, 'repo', 'repo.json')), 'nothing published, no repository created');
});

test('bad recipes (look-ahead tag_pattern, no capture group, broken TOML) are skipped alone; the good one is published; --once exits 1', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await writeRecipe(farm.recipesDir, { id: 'lookahead', git: upstream.dir, tagPattern: '^v(?=x)(.*)$' });
  await writeRecipe(farm.recipesDir, { id: 'nogroup', git: upstream.dir, tagPattern: '^v\\d+\\.\\d+\\.\\d+$' });
  await writeRecipe(farm.recipesDir, { id: 'brokentoml', git: upstream.dir, toml: '[meta\nlicense = "MIT"\n' });

  const result = await once(farm.configPath);
  t.is(result.exitCode, 1, result.stderr);
  t.deepEqual(await publishedIn(join(farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  t.regex(result.stderr, /level=info msg="recipe roster loaded" count=1 .*skipped=3/);
  const skipped = (id: string): string => result.stderr.split('\n').find((l) => l.includes('msg="recipe skipped"') && l.includes(` recipe=${id} `)) ?? '';
  t.regex(skipped('lookahead'), /level=error .*invalid or unsupported Perl syntax/);
  t.regex(skipped('nogroup'), /level=error .*must have at least one capture group/);
  t.regex(skipped('brokentoml'), /level=error .*err="[^"]*TOML syntax error at line 1/);
  t.regex(result.stderr, /level=info msg="build \+ publish complete" .*recipe=hello-peios version=1\.0\.0-1 /);
  for (const id of ['lookahead', 'nogroup', 'brokentoml']) t.false(result.stderr.includes(`msg="polling upstream" recipe=${id} `), `${id} not polled`);
});

test('a recipe folder named after none of its packages is a warning, and still builds', async (t) => {
  t.timeout(180_000);
  const upstream = await makeUpstream(t);
  await upstream.tag('v1.0.0');
  const farm = await makeFarm(t);
  const dir = await writeRecipe(farm.recipesDir, { git: upstream.dir });
  await rename(dir, join(farm.recipesDir, 'misnamed'));

  const result = await once(farm.configPath);
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stderr, /level=warn msg="recipe warning" recipe=misnamed warning="recipe folder \\"misnamed\\" matches none of its packages/);
  t.deepEqual(await publishedIn(join(farm.stateDir, 'repo')), ['hello-peios 1.0.0-1', 'hello-peios-doc 1.0.0-1']);
  const history = JSON.parse(await readFile(join(farm.stateDir, 'history', 'builds.json'), 'utf8')) as { builds: Array<{ id: string; state: string }> };
  t.deepEqual(history.builds.map((b) => `${b.id} ${b.state}`), ['misnamed-1.0.0-1-1 succeeded']);

  // And a second sweep knows it is published (de-duplication on the packages, not the folder).
  const again = await once(farm.configPath);
  t.is(again.exitCode, 0, again.stderr);
  t.false(again.stderr.includes('msg="starting build"'), again.stderr);
});
