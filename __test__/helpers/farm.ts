/**
 * Build farms made by code: a real upstream git repository with tags, a recipes directory, a
 * signing key and a config.toml, all in temporary directories; and the manager, run for real
 * (`--once`, or as a daemon on 127.0.0.1 with a free port).
 */

import { chmod, mkdir, readFile, writeFile, copyFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';

import type { BuildRecord } from '../../ts/manager/history.js';
import { runTool, type ToolResult } from './cli.js';
import { repoRoot } from './fixtures.js';
import { tempDir } from './fs.js';

export interface Upstream {
  dir: string;
  /** Commits a change and tags it (annotated when `annotated`), with a fixed committer date. */
  tag(name: string, options?: { date?: string; annotated?: boolean; file?: string; content?: string }): Promise<void>;
  git(...args: string[]): Promise<string>;
}

let commitCounter = 0;

/** A git repository holding the example upstream (examples/upstream/hello-peios). */
export async function makeUpstream(t: ExecutionContext): Promise<Upstream> {
  const dir = join(await tempDir(t, 'peipkg-upstream-'), 'hello-peios.git');
  await mkdir(dir);
  for (const name of ['hello-peios.sh', 'hello-peios.1', 'README']) {
    await copyFile(join(repoRoot, 'examples/upstream/hello-peios', name), join(dir, name));
  }
  await chmod(join(dir, 'hello-peios.sh'), 0o755);
  const env = { GIT_AUTHOR_NAME: 'Upstream', GIT_AUTHOR_EMAIL: 'up@example.org', GIT_COMMITTER_NAME: 'Upstream', GIT_COMMITTER_EMAIL: 'up@example.org' };
  const git = async (...args: string[]): Promise<string> => (await execa('git', args, { cwd: dir, env })).stdout;
  await git('init', '-q', '-b', 'main');
  await git('add', '.');
  await execa('git', ['commit', '-qm', 'initial'], { cwd: dir, env: { ...env, GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z', GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z' } });
  return {
    dir,
    git,
    async tag(name, options = {}) {
      const file = options.file ?? 'CHANGES';
      await writeFile(join(dir, file), options.content ?? `${name} ${++commitCounter}\n`);
      await git('add', '.');
      const date = options.date ?? '2026-02-01T00:00:00Z';
      await execa('git', ['commit', '-qm', `release ${name}`], { cwd: dir, env: { ...env, GIT_COMMITTER_DATE: date, GIT_AUTHOR_DATE: date } });
      if (options.annotated) await git('tag', '-a', '-m', `release ${name}`, name);
      else await git('tag', name);
    },
  };
}

export interface RecipeOptions {
  id?: string;
  git: string;
  tagPattern?: string;
  peiosRevision?: number;
  minVersion?: string;
  submodules?: boolean;
  githubWebhook?: boolean;
  pollInterval?: string;
  /** build.sh; default installs the example program (examples/recipes/hello-peios/build.sh). */
  script?: string;
  /** peipkg.toml; default is the example recipe with [upstream] pointing at `git`. */
  toml?: string;
}

/** Writes `<recipesDir>/<id>/{peipkg.toml,build.sh}` from the example recipe. */
export async function writeRecipe(recipesDir: string, options: RecipeOptions): Promise<string> {
  const id = options.id ?? 'hello-peios';
  const dir = join(recipesDir, id);
  await mkdir(dir, { recursive: true });
  let toml = options.toml ?? (await readFile(join(repoRoot, 'examples/recipes/hello-peios/peipkg.toml'), 'utf8'));
  if (!options.toml) {
    toml = toml.replace(/\[upstream\][\s\S]*$/, '');
    if (id !== 'hello-peios') toml = toml.replaceAll('hello-peios', id);
    toml += `[upstream]\ngit = ${JSON.stringify(options.git)}\ntag_pattern = ${JSON.stringify(options.tagPattern ?? '^v(\\d+\\.\\d+\\.\\d+)$')}\n`;
    toml += `peios_revision = ${options.peiosRevision ?? 1}\n`;
    if (options.minVersion) toml += `min_version = ${JSON.stringify(options.minVersion)}\n`;
    if (options.submodules) toml += 'submodules = true\n';
    toml += `\n[watch]\ngithub_webhook = ${options.githubWebhook ?? false}\npoll_interval = ${JSON.stringify(options.pollInterval ?? '1h')}\n`;
  }
  await writeFile(join(dir, 'peipkg.toml'), toml);
  const script = options.script ?? (await readFile(join(repoRoot, 'examples/recipes/hello-peios/build.sh'), 'utf8'));
  await writeFile(join(dir, 'build.sh'), script.replaceAll('hello-peios', id));
  return dir;
}

export interface Farm {
  root: string;
  recipesDir: string;
  stateDir: string;
  keyFile: string;
  configPath: string;
  /** Rewrites config.toml with `extra` TOML appended to the defaults. */
  writeConfig(extra?: string, overrides?: { http?: string; upload?: string; poll?: string }): Promise<void>;
}

/** A farm directory with a 0600 signing key and a config.toml (`extra` TOML appended). */
export async function makeFarm(t: ExecutionContext, extra = ''): Promise<Farm> {
  const root = await tempDir(t, 'peipkg-farm-');
  await chmod(root, 0o755);
  const recipesDir = join(root, 'recipes');
  const stateDir = join(root, 'state');
  const keyFile = join(root, 'farm.ed25519');
  await mkdir(recipesDir);
  await execa('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyFile]);
  await chmod(keyFile, 0o600);
  const configPath = join(root, 'config.toml');
  const farm: Farm = {
    root,
    recipesDir,
    stateDir,
    keyFile,
    configPath,
    async writeConfig(more = '', overrides = {}) {
      await writeFile(
        configPath,
        [
          '[manager]',
          'id = "test-farm"',
          `recipes_dir = ${JSON.stringify(recipesDir)}`,
          `state_dir = ${JSON.stringify(stateDir)}`,
          'drain_timeout = "30s"',
          '',
          '[repo]',
          'name = "test-repo"',
          'description = "A farm made by a test"',
          '',
          '[signing]',
          `key_file = ${JSON.stringify(keyFile)}`,
          '',
          overrides.poll ?? '[poll]\ndefault_interval = "1h"',
          '',
          overrides.http ?? '',
          '',
          overrides.upload ?? '',
          '',
          more,
        ].join('\n'),
      );
    },
  };
  await farm.writeConfig(extra);
  return farm;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export function managerPath(): string {
  return join(repoRoot, 'bin', 'peipkg-manager.js');
}

/** Starts the daemon (`env` added to the environment); its stderr (the structured log) is collected in `log()`. Killed at teardown. */
export function startDaemon(t: ExecutionContext, configPath: string, extraArgs: string[] = [], env?: Record<string, string>): { child: ResultPromise; log: () => string } {
  let log = '';
  // forceKillAfterDelay: execa would otherwise SIGKILL the manager 5 s after a test's SIGTERM, in
  // the middle of a drain that takes longer than that on a busy machine.
  const child = execa(process.execPath, [managerPath(), '--config', configPath, '--log-level', 'debug', ...extraArgs], {
    reject: false,
    all: false,
    env,
    forceKillAfterDelay: false,
  });
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return { child, log: () => log };
}

/**
 * Waits for a daemon from `startDaemon` to end; a timeout fails with its log. A death by signal
 * shows as the signal's name, so a failure says what killed the manager.
 */
export async function exitWithin(daemon: { child: ResultPromise; log: () => string }, ms: number): Promise<{ exitCode: number | string | undefined; elapsedMs: number }> {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the manager did not exit within ${ms} ms\n${daemon.log()}`)), ms);
  });
  try {
    const result = await Promise.race([daemon.child, timeout]);
    return { exitCode: result.exitCode ?? result.signal, elapsedMs: Date.now() - start };
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every 100 ms until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** `peipkg-manager --config <farm> --once` (debug log on stderr), with `env` added to the environment. */
export function runOnce(farm: Farm, extra: string[] = [], env?: Record<string, string>): Promise<ToolResult> {
  return runTool('peipkg-manager', ['--config', farm.configPath, '--once', '--log-level', 'debug', ...extra], { timeoutMs: 150_000, env });
}

/** `name version` of every package in `<repo>/index/archive.json`, sorted; none when there is no index yet. */
export async function publishedIn(repo: string): Promise<string[]> {
  const text = await readFile(join(repo, 'index', 'archive.json'), 'utf8').catch(() => '{"packages":[]}');
  const doc = JSON.parse(text) as { packages: Array<{ name: string; version: string }> };
  return doc.packages.map((p) => `${p.name} ${p.version}`).sort();
}

/** The farm's build history (`<state_dir>/history/builds.json`), oldest first; empty before the first build. */
export async function buildRecords(farm: Farm): Promise<BuildRecord[]> {
  const text = await readFile(join(farm.stateDir, 'history', 'builds.json'), 'utf8').catch(() => '{"builds":[]}');
  return (JSON.parse(text) as { builds: BuildRecord[] }).builds;
}

/** Fails the test unless `peipkg-repo verify` accepts the repository at `dir`. */
export async function verifyRepo(t: ExecutionContext, dir: string): Promise<void> {
  const result = await runTool('peipkg-repo', ['verify', '--repo', dir]);
  t.is(result.exitCode, 0, `peipkg-repo verify --repo ${dir}:\n${result.stdout}${result.stderr}`);
}
