/**
 * `peipkg-build check`: a complete validation without building — exit 0 when valid, 1 with every
 * problem listed; tags shown with the versions they would produce.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import test from 'ava';

import { runTool } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { makeRecipe } from '../helpers/recipes.js';

const recipe = (upstream: string, extraPackage = ''): string =>
  `[meta]\nlicense = "MIT"\nbuild_script = "build.sh"\n\n[[package]]\nname = "busybox"\narchitecture = "x86_64"\nfiles = ["usr/bin/**"]\n${extraPackage}\n${upstream}`;

test('a valid recipe passes and shows the versions its tags give', async (t) => {
  const path = await makeRecipe(t, {
    id: 'busybox',
    toml: recipe('[upstream]\ngit = "https://git.busybox.net/busybox"\ntag_pattern = "^(?P<major>[0-9]+)_(?P<minor>[0-9]+)_(?P<patch>[0-9]+)$"\npeios_revision = 2\nmin_version = "1.37.0"\n'),
    script: 'true\n',
  });
  const result = await runTool('peipkg-build', ['check', '--recipe', path, '--tags', '1_37_0', '1_36_1', 'v1.0', 'x;rm', '--json']);
  t.is(result.exitCode, 0, result.stderr);
  const report = JSON.parse(result.stdout) as { valid: boolean; tags: Array<{ tag: string; version?: string; result: string }> };
  t.true(report.valid);
  t.deepEqual(report.tags, [
    { tag: '1_37_0', version: '1.37.0-2', result: 'builds' },
    { tag: '1_36_1', version: '1.36.1-2', result: 'skipped: below min_version 1.37.0' },
    { tag: 'v1.0', result: 'no match' },
    { tag: 'x;rm', result: 'refused: not a safe tag name (the farm ignores it)' },
  ]);
  const human = await runTool('peipkg-build', ['check', '--recipe', path, '--tags', '1_37_0']);
  t.regex(human.stdout, /tag 1_37_0 → 1\.37\.0-2: builds/);
  t.regex(human.stdout, /valid\n$/);
});

for (const [name, upstream, message] of [
  ['a tag_pattern without a capture group', 'tag_pattern = "^v[0-9.]+$"', /must have at least one capture group/],
  ['an invalid regex', 'tag_pattern = "^v(?=x)(.*)$"', /invalid tag_pattern "\^v\(\?=x\)\(\.\*\)\$": error parsing regexp: invalid or unsupported Perl syntax/],
  ['an unknown named group', 'tag_pattern = "^v(?P<version>.*)$"', /unknown named group "version"/],
  ['an unknown [upstream] key', 'tag_pattern = "^v(.*)$"\nmin_verison = "1.0"', /\[upstream\]\.min_verison: unknown key/],
  ['an invalid min_version', 'tag_pattern = "^v(.*)$"\nmin_version = "_1"', /\[upstream\]\.min_version: "_1" is not an upstream version/],
] as const) {
  test(`check refuses ${name}`, async (t) => {
    const path = await makeRecipe(t, { id: 'busybox', toml: recipe(`[upstream]\ngit = "https://x.org/r"\n${upstream}\n`), script: 'true\n' });
    const result = await runTool('peipkg-build', ['check', '--recipe', path]);
    t.is(result.exitCode, 1);
    t.regex(result.stderr, message);
    t.regex(result.stderr, /: \d+ problem\(s\):/);
  });
}

test('check lists every problem at once, and an unknown build key', async (t) => {
  const path = await makeRecipe(t, {
    id: 'busybox',
    toml: recipe('[upstream]\ngit = "https://x.org/r"\ntag_pattern = "^v[0-9]+$"\n', '\n[[package]]\nname = "Bad Name"\narchitecture = "sparc"\nfiles = ["[oops"]\n'),
    script: 'true\n',
  });
  const result = await runTool('peipkg-build', ['check', '--recipe', path, '--json']);
  t.is(result.exitCode, 1);
  const report = JSON.parse(result.stdout) as { problems: string[] };
  t.true(report.problems.some((p) => /package\[1\]\.name: package name "Bad Name"/.test(p)));
  t.true(report.problems.some((p) => /package\[1\]\.architecture: "sparc" is not one of x86_64, aarch64, noarch/.test(p)));
  t.true(report.problems.some((p) => /package\[1\]\.files\[0\]: invalid glob "\[oops": syntax error in pattern/.test(p)));
  const typo = await makeRecipe(t, { id: 'busybox', toml: recipe('').replace('license', 'licence'), script: 'true\n' });
  const typoResult = await runTool('peipkg-build', ['check', '--recipe', typo]);
  t.is(typoResult.exitCode, 1);
  t.regex(typoResult.stderr, /\[meta\]\.licence: unknown key/);
});

test('a typo in a [[package]] and one in [watch] are reported together, by check and in the farm\'s skipped recipes', async (t) => {
  const path = await makeRecipe(t, {
    id: 'busybox',
    toml: recipe('[upstream]\ngit = "https://x.org/r"\ntag_pattern = "^v([0-9]+)$"\n[watch]\npol_interval = "2h"\n').replace('files = ["usr/bin/**"]', 'filez = ["usr/bin/**"]'),
    script: 'true\n',
  });
  const result = await runTool('peipkg-build', ['check', '--recipe', path, '--json']);
  t.is(result.exitCode, 1);
  const report = JSON.parse(result.stdout) as { problems: string[] };
  t.true(report.problems.some((p) => /package\[0\]\.filez: unknown key/.test(p)), report.problems.join('\n'));
  t.true(report.problems.some((p) => /\[watch\]\.pol_interval: unknown key/.test(p)), report.problems.join('\n'));
  const { loadRosterRecipe } = await import('../../ts/manager/roster.js');
  const entry = await loadRosterRecipe(join(path, '..'), 'busybox', 3_600_000);
  t.true('problems' in entry);
  const problems = 'problems' in entry ? entry.problems : [];
  t.true(problems.some((p) => p.includes('filez')) && problems.some((p) => p.includes('pol_interval')), problems.join('\n'));
});

test('with --staged, a glob that matches nothing is an error (a warning in build)', async (t) => {
  const path = await makeRecipe(t, { id: 'busybox', toml: recipe('').replace('files = ["usr/bin/**"]', 'files = ["usr/bin/**", "usr/share/man/**"]'), script: 'true\n' });
  const staged = await tempDir(t);
  await mkdir(join(staged, 'usr/bin'), { recursive: true });
  await writeFile(join(staged, 'usr/bin/busybox'), 'ELF');
  const result = await runTool('peipkg-build', ['check', '--recipe', path, '--staged', staged]);
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /package busybox: files\[1\] "usr\/share\/man\/\*\*" matches nothing/);
  await writeFile(join(staged, 'orphan'), 'x');
  const orphan = await runTool('peipkg-build', ['check', '--recipe', path, '--staged', staged]);
  t.regex(orphan.stderr, /staged paths claimed by no package:\n {4}orphan/);
});

test('check --tags reports, for every tag, the version the manager\'s planner builds (one tag → version function)', async (t) => {
  const path = await makeRecipe(t, {
    id: 'busybox',
    toml: recipe('[upstream]\ngit = "https://github.com/peios/busybox"\ntag_pattern = "^v?([0-9][^/]*)$"\npeios_revision = 3\nmin_version = "1.2"\n'),
    script: 'true\n',
  });
  const tags = ['v1.2', '1.10.0', 'v1.1.9', 'v2.0.rc1', 'v2.0_beta', 'release/1.3', 'v1.3-beta', '1:2.0', 'x;rm'];
  const result = await runTool('peipkg-build', ['check', '--recipe', path, '--tags', ...tags, '--json']);
  t.is(result.exitCode, 0, result.stderr);
  const report = JSON.parse(result.stdout) as { tags: Array<{ tag: string; version?: string; result: string }> };
  const checked = new Map(report.tags.map((r) => [r.tag, r]));

  const { loadRosterRecipe } = await import('../../ts/manager/roster.js');
  const { planPoll } = await import('../../ts/manager/planner.js');
  const { PublishedView } = await import('../../ts/manager/published.js');
  const { asTagName } = await import('../../ts/build/tagPattern.js');
  const { createLogger } = await import('../../ts/log.js');
  const entry = await loadRosterRecipe(join(path, '..'), 'busybox', 3_600_000);
  if ('problems' in entry) return t.fail(entry.problems.join('\n'));
  const listed = tags.flatMap((tag) => {
    const name = asTagName(tag); // the upstream lister drops unsafe names before the planner sees them
    return name ? [{ name, sha: 'a'.repeat(40), commit: 'b'.repeat(40) }] : [];
  });
  const never = { nextRetry: () => undefined, held: () => false };
  const { triggers, stats } = planPoll(entry, listed, 'poll', PublishedView.empty(), never, Date.now(), createLogger({ level: 'error', format: 'logfmt' }));
  const planned = new Map(triggers.map((tr) => [tr.tag as string, tr.version]));
  for (const tag of tags) {
    const c = checked.get(tag);
    t.truthy(c, tag);
    t.is(c!.result === 'builds' ? c!.version : undefined, planned.get(tag), `${tag}: check says "${c!.result}"`);
  }
  t.true(planned.size >= 3, 'some tags build');
  t.deepEqual(Object.fromEntries(planned), { 'v1.2': '1.2-3', '1.10.0': '1.10.0-3', 'v2.0.rc1': '2.0.rc1-3', 'v1.3-beta': '1.3-beta-3' });
  t.is(stats.skipped_below_min_version, report.tags.filter((r) => r.result.startsWith('skipped: below min_version')).length);
  t.regex(checked.get('v2.0_beta')!.result, /^dropped: invalid version/);
});

for (const [name, watch, line, enabled, active] of [
  ['enabled', '[watch]\ngithub_webhook = true\n', /webhook: enabled \(github_webhook = true\): a signed tag push to https:\/\/github\.com\/peios\/busybox polls this recipe at once/, true, true],
  ['off in a [watch] table', '[watch]\npoll_interval = "2h"\n', /webhook: off \(set \[watch\] github_webhook = true to build on pushes; until then tags are found by polling\)/, false, false],
  ['off without a [watch] table', '', /webhook: off \(set \[watch\] github_webhook = true to build on pushes/, false, false],
] as const) {
  test(`check shows whether GitHub webhooks wake the recipe: ${name}`, async (t) => {
    const path = await makeRecipe(t, {
      id: 'busybox',
      toml: recipe(`[upstream]\ngit = "https://github.com/peios/busybox"\ntag_pattern = "^v(.*)$"\n${watch}`),
      script: 'true\n',
    });
    const [human, json] = await Promise.all([runTool('peipkg-build', ['check', '--recipe', path]), runTool('peipkg-build', ['check', '--recipe', path, '--json'])]);
    t.is(human.exitCode, 0, human.stderr);
    t.regex(human.stdout, line);
    const report = JSON.parse(json.stdout) as { webhook?: { enabled: boolean; active: boolean; line: string } };
    t.like(report.webhook, { enabled, active });
    t.regex(report.webhook!.line, line);
  });
}

test('check says a webhook without [upstream] does nothing, and shows no webhook line for a hand-built recipe', async (t) => {
  const path = await makeRecipe(t, { id: 'busybox', toml: recipe('[watch]\ngithub_webhook = true\n'), script: 'true\n' });
  const result = await runTool('peipkg-build', ['check', '--recipe', path]);
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /webhook: enabled \(github_webhook = true\), but no push can trigger it: the recipe has no \[upstream\] git and tag_pattern/);
  t.regex(result.stderr, /warning: \[watch\]\.github_webhook = true does nothing without \[upstream\] git and tag_pattern/);
  const plain = await makeRecipe(t, { id: 'busybox', toml: recipe(''), script: 'true\n' });
  const quiet = await runTool('peipkg-build', ['check', '--recipe', plain, '--json']);
  t.is(quiet.exitCode, 0, quiet.stderr);
  t.is((JSON.parse(quiet.stdout) as { webhook?: unknown }).webhook, undefined);
});
