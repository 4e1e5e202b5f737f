/**
 * The release workflow is never run here, so it is linted: actionlint 1.7.7 (WebAssembly build,
 * fetched by scripts/fetch-actionlint.sh, which setup.sh runs) over every workflow, plus the
 * promises the workflow makes that actionlint cannot know about.
 */

import { access, constants, readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import test from 'ava';

import { repoRoot } from '../helpers/fixtures.js';
import { cacheDir, exists } from './helpers.js';

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
interface Actionlint {
  runLint(source: string, path: string): Promise<LintResult[]>;
}

const workflowsDir = join(repoRoot, '.github', 'workflows');
const releasePath = join(workflowsDir, 'release.yml');

async function actionlint(): Promise<Actionlint> {
  const entry = cacheDir('tools', 'actionlint', 'build', 'run-lint.js');
  if (!(await exists(entry))) throw new Error(`${entry} is missing: run scripts/fetch-actionlint.sh (setup.sh does)`);
  return createRequire(import.meta.url)(entry) as Actionlint;
}

/**
 * Lints one workflow's text. The name given to actionlint is "<stdin>": for any other, actionlint
 * stats the path to find the project, and Go's WebAssembly file calls cannot complete inside this
 * synchronous call when Node's real fs is visible to it (it deadlocks).
 */
const lintText = (lint: Actionlint, source: string): Promise<LintResult[]> => lint.runLint(source, '<stdin>');

const show = (results: LintResult[]): string => results.map((r) => `${r.line}:${r.column} [${r.kind}] ${r.message}`).join('\n');

test('actionlint finds nothing in .github/workflows/', async (t) => {
  const lint = await actionlint();
  const files = (await readdir(workflowsDir)).filter((f) => /\.ya?ml$/.test(f));
  t.true(files.includes('release.yml'));
  for (const file of files) {
    const results = await lintText(lint, await readFile(join(workflowsDir, file), 'utf8'));
    t.deepEqual(results, [], `${file}:\n${show(results)}`);
  }
});

test('actionlint is live: a broken copy of the workflow is reported', async (t) => {
  const lint = await actionlint();
  const source = await readFile(releasePath, 'utf8');
  const broken = source.replace('id-token: write', 'id-token: wirte').replace('needs: build', 'needs: biuld');
  t.not(broken, source);
  const results = await lintText(lint, broken);
  t.true(results.some((r) => r.kind === 'permissions' && r.message.includes('wirte')), show(results));
  t.true(results.some((r) => r.kind === 'job-needs' && r.message.includes('biuld')), show(results));
});

test('release.yml: both platforms built and tested on every supported Node, published with provenance', async (t) => {
  const source = await readFile(releasePath, 'utf8');
  const engines = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  const majors = [...engines.matchAll(/(?:\^|>=)(\d+)/g)].map((m) => Number(m[1]));
  t.deepEqual(majors, [20, 22, 24], `engines: ${engines}`);
  t.regex(source, new RegExp(`node: \\[${majors.join(', ')}\\]`), 'the test matrix covers the Node versions of "engines"');
  for (const platform of (await readdir(join(repoRoot, 'npm'))).filter((dir) => dir !== 'thin')) {
    t.regex(source, new RegExp(`platform: ${platform}\\b`), `${platform} is in the matrices`);
  }
  t.regex(source, /target: x86_64-unknown-linux-gnu/);
  t.regex(source, /target: aarch64-unknown-linux-gnu/);
  t.regex(source, /runner: ubuntu-24\.04-arm/, 'arm64 is tested on arm64 hardware');
  t.regex(source, /tags: \['v\*'\]/);
  t.regex(source, /npm publish --provenance --access public/);
  // A thin package depends on peipkg of its own version, and peipkg on the platform packages.
  t.regex(source, /for tarball in "\$\{platforms\[@\]\}" "\$\{tarballs\[0\]\}" "\$\{thin\[@\]\}"; do/, 'published in dependency order');
  t.regex(source, /publish:[\s\S]*permissions:\s*\n\s*contents: read\s*\n\s*id-token: write/, 'only the publish job gets an OIDC token');
  t.is(source.match(/id-token: write/g)?.length, 1);
  // Every script the workflow runs exists and is executable.
  const scripts = new Set([...source.matchAll(/(?:^|[\s(])((?:\.\/)?(?:scripts\/)?[\w.-]+\.(?:sh|js))\b/gm)].map((m) => m[1]!));
  t.true(scripts.has('scripts/build-release.sh') && scripts.has('scripts/pack.sh') && scripts.has('./setup.sh'), [...scripts].join(' '));
  for (const script of scripts) {
    await t.notThrowsAsync(access(join(repoRoot, script), script.endsWith('.sh') ? constants.X_OK : constants.R_OK), script);
  }
});
