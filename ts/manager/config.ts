/**
 * The farm's `config.toml` (`recipes-and-farm.md` §7, DECISIONS.md Manager): TOML → a typed
 * `Config`, strict everywhere (an unknown key is a typo), with Go-style durations and listen
 * addresses and absolute paths (D-15). Every problem is reported at once as a `ConfigError`,
 * which exits 2 (D-13). It reads no other file: keys and secrets are checked at start-up.
 */

import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';

import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';

import { zstdLevelProblem } from '../build/compression.js';
import { SANDBOX_MODES, type SandboxMode } from '../build/sandbox.js';
import { ENV_NAME, RESERVED_ENV } from '../build/script.js';
import { DEFAULT_BUILD_USER } from '../build/user.js';
import { formatDuration, parseDuration } from '../duration.js';
import { InputError, UsageError } from '../errors.js';
import { adviceErrors, formatZodIssues, type IssuePath } from '../format/issues.js';
import { formatSize, parseSize } from '../size.js';

/** A config that does not parse or validate: exit 2, with every problem named by key. */
export class ConfigError extends UsageError {}

export interface ListenAddress {
  host: string | undefined;
  port: number;
}

export interface SigningKeyConfig {
  name: string;
  private: string;
  pubkeyEnv: string;
}

export interface GrantConfig {
  recipe: string;
  injectPubkey: string[];
  sign: string[];
  /** Sandbox grants: the network, and host paths bound at the same path. */
  network: boolean;
  binds: Array<{ path: string; writable: boolean }>;
}

export interface WorkerEntry {
  id: string;
  tokenFile: string;
}

export type QueueBackend = 'embedded' | 'redis';

export interface Config {
  path: string;
  manager: {
    id: string;
    recipesDir: string;
    stateDir: string;
    drainTimeoutMs: number;
    logFormat: 'logfmt' | 'json';
    historyKeep: number;
  };
  repo: { name: string; description: string };
  signing: { keyFile: string };
  upload: { backend: 'none' | 'rclone'; remote: string; retries: number; retryBackoffMs: number; timeoutMs: number };
  http: { addr: ListenAddress | undefined; webhookSecretFile: string; webhookMaxBody: number };
  poll: { defaultIntervalMs: number };
  build: { concurrency: number; timeoutMs: number; cloneTimeoutMs: number; zstdLevel: number; user: string; sandbox: SandboxMode; local: boolean };
  /** `redis`: jobs go through BullMQ, to `[[worker]]` machines (and this host unless `[build].local = false`). */
  queue: { backend: QueueBackend; url: string; urlFile: string; lockWindowMs: number; artifactMaxSize: number };
  workers: WorkerEntry[];
  verify: { rebuild: boolean };
  signingKeys: SigningKeyConfig[];
  grants: GrantConfig[];
}

const MINUTE = 60_000;

/** `[queue].lock_window`: how long a worker that stopped answering keeps its job before another capable worker gets it. */
export const DEFAULT_LOCK_WINDOW = '1m';
/** `[queue].artifact_max_size`: a package is at most 4 GiB of tar (the reader's bound), so never more compressed. */
export const DEFAULT_ARTIFACT_MAX_SIZE = 4 * 1024 ** 3;
/** Worker ids go into queue keys, job attempt ids and file names. */
export const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `[http].webhook_max_body`: GitHub sends at most 25 MiB; pushes are a few KiB, so 1 MiB by default. */
export const DEFAULT_WEBHOOK_MAX_BODY = 1024 ** 2;
export const WEBHOOK_MAX_BODY_CEILING = 25 * 1024 ** 2;
const WEBHOOK_MAX_BODY_FLOOR = 1024;

/** Go's `net.Listen` address forms: `:8080`, `127.0.0.1:8080`, `[::1]:8080`, `localhost:8080`. */
export function parseListenAddress(text: string): ListenAddress | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? match[2];
  return { host: host === '' ? undefined : host, port };
}

export const str = z.string();
export const duration = (fallback: string) =>
  str.default(fallback).transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < 0) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (write e.g. 90s, 15m, 1h30m)` });
      return z.NEVER;
    }
    return ms;
  });
/** A duration that bounds work: zero would fail every attempt, so it is refused. */
export const timeoutDuration = (fallback: string) =>
  duration(fallback).superRefine((ms, ctx) => {
    if (ms === 0) ctx.addIssue({ code: 'custom', message: 'must be longer than 0s (a zero timeout would stop every attempt at once)' });
  });
export const absolutePath = str.refine((p) => isAbsolute(p), { message: 'must be an absolute path' });
export const optionalPath = str.default('').refine((p) => p === '' || isAbsolute(p), { message: 'must be an absolute path' });
export const positive = z.number().int().positive();
const sizeProblem = (value: unknown): string => `${JSON.stringify(value)} is not a size (write e.g. "1MiB", "512KiB" or a number of bytes)`;
/** A size in bytes: a number, or a string such as "1MiB"; `check` says what is wrong with a parsed one. */
const size = (fallback: number, check: (bytes: number) => string | undefined) =>
  z
    .union([str, z.number()], { error: (i) => sizeProblem(i.input) })
    .default(fallback)
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined) {
        ctx.addIssue({ code: 'custom', message: sizeProblem(value) });
        return z.NEVER;
      }
      const problem = check(bytes);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
      return bytes;
    });

/** `[build]` keys a worker shares with the coordinator. */
export const BUILD_FIELDS = {
  timeout: timeoutDuration('2h'),
  clone_timeout: timeoutDuration('15m'),
  zstd_level: z
    .number()
    .int()
    .default(10)
    .superRefine((level, ctx) => {
      const problem = zstdLevelProblem(level);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  user: str.min(1).default(DEFAULT_BUILD_USER),
  sandbox: z.enum(SANDBOX_MODES, { error: (i) => `${JSON.stringify(i.input)} not recognised (want one of: ${SANDBOX_MODES.join(', ')})` }).default('auto'),
};

export const SIGNING_KEY = z.strictObject({
  name: str.min(1, 'is required'),
  private: absolutePath,
  pubkey_env: str.default('').superRefine((name, ctx) => {
    // It becomes a `--build-env` name: one peipkg-build would refuse would fail every granted build.
    if (name !== '' && !ENV_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `"${name}" is not a variable name (letters, digits and _, not starting with a digit)` });
    else if (RESERVED_ENV.includes(name)) ctx.addIssue({ code: 'custom', message: `"${name}" is reserved for the build and cannot carry a key` });
  }),
});

const ConfigWire = z.strictObject({
  manager: z.strictObject({
    id: str.min(1, 'is required'),
    recipes_dir: absolutePath,
    state_dir: absolutePath,
    drain_timeout: duration('15m'),
    log_format: z.enum(['logfmt', 'json']).default('logfmt'),
    history_keep: positive.default(1000),
  }),
  repo: z.strictObject({ name: str.min(1, 'is required'), description: str.default('') }),
  signing: z.strictObject({ key_file: absolutePath }),
  upload: z
    .strictObject({
      backend: z.enum(['', 'none', 'rclone'], { error: (i) => `${JSON.stringify(i.input)} not recognised (want one of: rclone, none, or empty)` }).default(''),
      remote: str.default(''),
      retries: z.number().int().nonnegative().default(5),
      retry_backoff: duration('30s'),
      timeout: timeoutDuration('30m'),
    })
    .prefault({}),
  http: z
    .strictObject({
      addr: str.default('').superRefine((addr, ctx) => {
        if (addr !== '' && !parseListenAddress(addr)) ctx.addIssue({ code: 'custom', message: `"${addr}" is not a listen address (write e.g. :8080 or 127.0.0.1:8080)` });
      }),
      webhook_secret_file: optionalPath,
      webhook_max_body: size(DEFAULT_WEBHOOK_MAX_BODY, (bytes) =>
        bytes > WEBHOOK_MAX_BODY_CEILING
          ? `${formatSize(bytes)} is more than the ${formatSize(WEBHOOK_MAX_BODY_CEILING)} GitHub ever sends`
          : bytes < WEBHOOK_MAX_BODY_FLOOR
            ? `${formatSize(bytes)} is less than the ${formatSize(WEBHOOK_MAX_BODY_FLOOR)} minimum (a number is bytes; write e.g. "1MiB")`
            : undefined,
      ),
    })
    .prefault({}),
  poll: z
    .strictObject({
      // 1h when unset, as the README says (the reference refuses a missing value; we accept more configs, not fewer).
      default_interval: duration('1h').superRefine((ms, ctx) => {
        if (ms < MINUTE) ctx.addIssue({ code: 'custom', message: `${formatDuration(ms)} is less than the 1-minute minimum (use 1m or greater)` });
      }),
    })
    .prefault({}),
  build: z
    .strictObject({
      concurrency: positive.default(1),
      ...BUILD_FIELDS,
      local: z.boolean().default(true),
    })
    .prefault({}),
  queue: z
    .strictObject({
      backend: z.enum(['embedded', 'redis'], { error: (i) => `${JSON.stringify(i.input)} not recognised (want one of: embedded, redis)` }).default('embedded'),
      url: str.default('').superRefine((url, ctx) => {
        const problem = redisUrlProblem(url);
        if (url !== '' && problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
      url_file: optionalPath,
      lock_window: timeoutDuration(DEFAULT_LOCK_WINDOW).superRefine((ms, ctx) => {
        if (ms > 0 && ms < 3_000) ctx.addIssue({ code: 'custom', message: `${formatDuration(ms)} is less than the 3s minimum (a worker's lock is a third of the window)` });
      }),
      artifact_max_size: size(DEFAULT_ARTIFACT_MAX_SIZE, (bytes) => (bytes < 1024 ** 2 ? `${formatSize(bytes)} is less than the 1MiB minimum` : undefined)),
    })
    .prefault({}),
  worker: z
    .array(
      z.strictObject({
        id: str.regex(WORKER_ID, 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit'),
        token_file: absolutePath,
      }),
    )
    .default([]),
  verify: z.strictObject({ rebuild: z.boolean().default(false) }).prefault({}),
  signing_key: z.array(SIGNING_KEY).default([]),
  grant: z
    .array(
      z.strictObject({
        recipe: str.min(1, 'is required'),
        inject_pubkey: z.array(str).default([]),
        sign: z.array(str).default([]),
        // Sandbox grants (sandbox.ts): the farm decides them, never the recipe.
        network: z.boolean().default(false),
        bind: z.array(absolutePath).default([]),
        ro_bind: z.array(absolutePath).default([]),
      }),
    )
    .default([]),
});

type Wire = z.infer<typeof ConfigWire>;

const TABLES = new Set(['manager', 'repo', 'signing', 'upload', 'http', 'poll', 'build', 'queue', 'verify']);
const ARRAY_TABLES = new Set(['signing_key', 'grant', 'worker']);

/** `[upload].backend`, `[[grant]][1].recipe`. */
export function tablePath(path: IssuePath, tables: ReadonlySet<string>, arrayTables: ReadonlySet<string>): string {
  let out = '';
  for (const [i, part] of path.entries()) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (i === 0) {
      // An unknown top-level key is named as written: it is neither a known table nor an array of tables.
      const name = String(part);
      out += tables.has(name) ? `[${name}]` : arrayTables.has(name) ? `[[${name}]]` : name;
    }
    else out += `.${String(part)}`;
  }
  return out;
}

/** Checks across keys (§7.2–7.10); checks of one value live in the schema, so they are all reported together. */
function crossProblems(w: Wire): string[] {
  const problems: string[] = [];
  if (w.upload.backend === 'rclone' && w.upload.remote === '') problems.push('[upload].remote: is required when backend is rclone');
  problems.push(...queueProblems(w));
  // Worded as the reference words them (§7.7), so farms moving over recognise them.
  const keys = new Map<string, Wire['signing_key'][number]>();
  for (const k of w.signing_key) {
    if (keys.has(k.name)) problems.push(`[[signing_key]] ${k.name}: duplicate name`);
    keys.set(k.name, k);
  }
  const recipes = new Set<string>();
  for (const g of w.grant) {
    if (recipes.has(g.recipe)) problems.push(`[[grant]] ${g.recipe}: duplicate recipe`);
    recipes.add(g.recipe);
    for (const name of g.inject_pubkey) {
      const key = keys.get(name);
      if (!key) problems.push(`[[grant]] ${g.recipe}: inject_pubkey references unknown signing key "${name}"`);
      else if (key.pubkey_env === '') problems.push(`[[grant]] ${g.recipe}: inject_pubkey key "${name}" has no pubkey_env`);
    }
    for (const name of g.sign) if (!keys.has(name)) problems.push(`[[grant]] ${g.recipe}: sign references unknown signing key "${name}"`);
  }
  return problems;
}

/** `[queue]`, `[build].local` and `[[worker]]` together: who builds, and how jobs reach them. */
function queueProblems(w: Wire): string[] {
  const problems: string[] = [];
  const { queue } = w;
  if (queue.backend === 'embedded') {
    if (queue.url !== '' || queue.url_file !== '') problems.push('[queue].url: is used only with backend = "redis" (the embedded queue lives in this process)');
    if (w.worker.length > 0) problems.push('[[worker]]: workers need [queue].backend = "redis"');
    if (!w.build.local) problems.push('[build].local: false needs [queue].backend = "redis" and workers; with the embedded queue nothing would build');
    return problems;
  }
  if ((queue.url === '') === (queue.url_file === '')) problems.push('[queue].url: set url or url_file (one of them) with backend = "redis"');
  if (!w.build.local && w.worker.length === 0) problems.push('[build].local: false needs at least one [[worker]]; nothing would build');
  if (w.worker.length > 0 && w.http.addr === '') problems.push('[http].addr: is required with [[worker]]s (workers send their packages there)');
  const ids = new Set<string>();
  for (const worker of w.worker) {
    if (ids.has(worker.id)) problems.push(`[[worker]] ${worker.id}: duplicate id`);
    ids.add(worker.id);
  }
  return problems;
}

/** What is wrong with a Redis URL, or undefined. */
export function redisUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL (write e.g. redis://127.0.0.1:6379/0 or rediss://:password@host:6380/0)';
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') return `scheme "${parsed.protocol.replace(/:$/, '')}" not supported (use redis:// or rediss:// for TLS)`;
  if (parsed.hostname === '') return 'names no host';
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d{1,2}$/.test(parsed.pathname)) return `database "${parsed.pathname.slice(1)}" is not a number`;
  return undefined;
}

/** TOML → the schema's type, every problem named by key (ConfigError, exit 2). Shared with the worker's config. */
export function parseTomlFile<S extends z.ZodType>(text: string, path: string, schema: S, tables: ReadonlySet<string>, arrayTables: ReadonlySet<string>): z.output<S> {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    throw new ConfigError(`${path}: TOML syntax error at line ${error.line}, column ${error.column}: ${error.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '')}`);
  }
  const parsed = schema.safeParse(doc, { error: adviceErrors });
  if (!parsed.success) {
    // Each line names the file as given, so that it reads right wherever the config lives.
    const lines = formatZodIssues(path, parsed.error, (p) => tablePath(p, tables, arrayTables), 'unknown key (typo?)');
    throw new ConfigError(`${path}: invalid configuration:\n${lines.map((l) => `  ${l}`).join('\n')}`);
  }
  return parsed.data;
}

/** Reads a config file; one that cannot be read is a runtime failure (exit 1), not a malformed one. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`read config ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
}

export function parseConfig(text: string, path: string): Config {
  const w = parseTomlFile(text, path, ConfigWire, TABLES, ARRAY_TABLES);
  const problems = crossProblems(w);
  if (problems.length > 0) throw new ConfigError(`${path}: invalid configuration:\n${problems.map((l) => `  ${path}: ${l}`).join('\n')}`);
  return {
    path,
    manager: {
      id: w.manager.id,
      recipesDir: w.manager.recipes_dir,
      stateDir: w.manager.state_dir,
      drainTimeoutMs: w.manager.drain_timeout,
      logFormat: w.manager.log_format,
      historyKeep: w.manager.history_keep,
    },
    repo: { name: w.repo.name, description: w.repo.description },
    signing: { keyFile: w.signing.key_file },
    upload: {
      backend: w.upload.backend === 'rclone' ? 'rclone' : 'none',
      remote: w.upload.remote,
      retries: w.upload.retries,
      retryBackoffMs: w.upload.retry_backoff,
      timeoutMs: w.upload.timeout,
    },
    http: { addr: w.http.addr === '' ? undefined : parseListenAddress(w.http.addr), webhookSecretFile: w.http.webhook_secret_file, webhookMaxBody: w.http.webhook_max_body },
    poll: { defaultIntervalMs: w.poll.default_interval },
    build: {
      concurrency: w.build.concurrency,
      timeoutMs: w.build.timeout,
      cloneTimeoutMs: w.build.clone_timeout,
      zstdLevel: w.build.zstd_level,
      user: w.build.user,
      sandbox: w.build.sandbox,
      local: w.build.local,
    },
    queue: { backend: w.queue.backend, url: w.queue.url, urlFile: w.queue.url_file, lockWindowMs: w.queue.lock_window, artifactMaxSize: w.queue.artifact_max_size },
    workers: w.worker.map((k) => ({ id: k.id, tokenFile: k.token_file })),
    verify: { rebuild: w.verify.rebuild },
    signingKeys: w.signing_key.map((k) => ({ name: k.name, private: k.private, pubkeyEnv: k.pubkey_env })),
    grants: w.grant.map((g) => ({
      recipe: g.recipe,
      injectPubkey: g.inject_pubkey,
      sign: g.sign,
      network: g.network,
      binds: [...g.bind.map((path) => ({ path, writable: true })), ...g.ro_bind.map((path) => ({ path, writable: false }))],
    })),
  };
}

export async function loadConfig(path: string): Promise<Config> {
  return parseConfig(await readConfigText(path), path);
}
