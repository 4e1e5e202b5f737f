/**
 * A build worker's `worker.toml` (`peipkg-manager worker --config …`): strict like the farm's
 * config (an unknown key is a typo, exit 2). It has no `[signing]` table: a worker never holds the
 * farm's package key; its `[[signing_key]]`s are the binary-signing keys `[[grant]]`s may use.
 */

import { z } from 'zod';

import { BUILD_ARCHITECTURES } from '../format/names.js';
import {
  absolutePath,
  BUILD_FIELDS,
  ConfigError,
  duration,
  parseTomlFile,
  positive,
  readConfigText,
  redisUrlProblem,
  SIGNING_KEY,
  str,
  WORKER_ID,
  type SigningKeyConfig,
} from './config.js';
import type { SandboxMode } from '../build/sandbox.js';

export interface WorkerConfig {
  path: string;
  worker: {
    id: string;
    queueUrl: string;
    coordinator: string;
    tokenFile: string;
    architectures: string[];
    workDir: string;
    concurrency: number;
    drainTimeoutMs: number;
    logFormat: 'logfmt' | 'json';
  };
  build: { timeoutMs: number; cloneTimeoutMs: number; zstdLevel: number; user: string; sandbox: SandboxMode };
  signingKeys: SigningKeyConfig[];
}

const WorkerWire = z.strictObject({
  worker: z.strictObject({
    id: str.regex(WORKER_ID, 'must be 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit').refine((id) => id !== 'local', 'is reserved for the coordinator\'s own builds'),
    queue_url: str.superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    coordinator: str.superRefine((url, ctx) => {
      let parsed: URL | undefined;
      try {
        parsed = new URL(url);
      } catch {
        parsed = undefined;
      }
      if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hostname === '') {
        ctx.addIssue({ code: 'custom', message: `"${url}" is not an http:// or https:// URL (write the coordinator's [http].addr, e.g. http://10.0.0.5:8080)` });
      }
    }),
    token_file: absolutePath,
    architectures: z
      .array(z.enum(BUILD_ARCHITECTURES, { error: (i) => `${JSON.stringify(i.input)} not recognised (want some of: ${BUILD_ARCHITECTURES.join(', ')})` }))
      .min(1, 'name at least one architecture'),
    work_dir: absolutePath,
    concurrency: positive.default(1),
    drain_timeout: duration('15m'),
    log_format: z.enum(['logfmt', 'json']).default('logfmt'),
  }),
  build: z.strictObject(BUILD_FIELDS).prefault({}),
  signing_key: z.array(SIGNING_KEY).default([]),
});

const TABLES = new Set(['worker', 'build']);
const ARRAY_TABLES = new Set(['signing_key']);

export function parseWorkerConfig(text: string, path: string): WorkerConfig {
  const w = parseTomlFile(text, path, WorkerWire, TABLES, ARRAY_TABLES);
  const names = new Set<string>();
  const problems: string[] = [];
  for (const k of w.signing_key) {
    if (names.has(k.name)) problems.push(`[[signing_key]] ${k.name}: duplicate name`);
    names.add(k.name);
  }
  if (problems.length > 0) throw new ConfigError(`${path}: invalid configuration:\n${problems.map((l) => `  ${path}: ${l}`).join('\n')}`);
  return {
    path,
    worker: {
      id: w.worker.id,
      queueUrl: w.worker.queue_url,
      coordinator: w.worker.coordinator.replace(/\/+$/, ''),
      tokenFile: w.worker.token_file,
      architectures: [...new Set<string>(w.worker.architectures)],
      workDir: w.worker.work_dir,
      concurrency: w.worker.concurrency,
      drainTimeoutMs: w.worker.drain_timeout,
      logFormat: w.worker.log_format,
    },
    build: { timeoutMs: w.build.timeout, cloneTimeoutMs: w.build.clone_timeout, zstdLevel: w.build.zstd_level, user: w.build.user, sandbox: w.build.sandbox },
    signingKeys: w.signing_key.map((k) => ({ name: k.name, private: k.private, pubkeyEnv: k.pubkey_env })),
  };
}

export async function loadWorkerConfig(path: string): Promise<WorkerConfig> {
  return parseWorkerConfig(await readConfigText(path), path);
}
