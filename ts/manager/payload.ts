/**
 * What a job carries to a worker: everything needed to build exactly what the coordinator would
 * have built — the recipe directory as the coordinator has it (with its SHA-256, which the worker
 * checks before building), the upstream URL, tag and the commit the coordinator resolved, the farm
 * id, the route, and the grants (public keys to inject, the names of the binary-signing keys to
 * sign with, sandbox grants). Never a private key: workers hold their own `[[signing_key]]`s.
 *
 * Job ids are `<recipe>@<version>` (percent-encoded, as BullMQ ids may not hold `:` and versions
 * may have an epoch), so however many polls and webhooks trigger a version, it is queued once.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';

import { z } from 'zod';

import { InputError } from '../errors.js';
import type { Route } from './route.js';

/** A recipe directory larger than this is not sent through the queue (it lives in Redis's memory). */
export const MAX_RECIPE_BYTES = 8 * 1024 ** 2;

const RecipeFile = z.object({ path: z.string().min(1), executable: z.boolean(), data: z.string() });
export type RecipeFile = z.infer<typeof RecipeFile>;

export const JobPayload = z.object({
  schema: z.literal(1),
  farmId: z.string(),
  recipe: z.string().min(1),
  version: z.string().min(1),
  upstreamVersion: z.string(),
  tag: z.string().min(1),
  commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/),
  source: z.enum(['poll', 'webhook']),
  git: z.string().min(1),
  submodules: z.boolean(),
  recipeFiles: z.array(RecipeFile),
  recipeSha256: z.string().regex(/^[0-9a-f]{64}$/),
  route: z.object({ architectures: z.array(z.string()), keys: z.array(z.string()) }),
  grants: z.object({
    /** `NAME=value` pairs for `--build-env` (injected public keys). */
    env: z.array(z.string()),
    /** Binary-signing key names (`--binary-sign-key <name>=<worker's private key>`). */
    sign: z.array(z.string()),
    network: z.boolean(),
    binds: z.array(z.object({ path: z.string(), writable: z.boolean() })),
  }),
  /** 1, or 2 for the second build of a reproducibility check. */
  replica: z.number().int().min(1).max(2),
  replicas: z.number().int().min(1).max(2),
  queuedAt: z.string(),
  /** HMAC-SHA256 over the rest, with the coordinator's queue key: a job altered in Redis is never published. */
  mac: z.string().regex(/^[0-9a-f]{64}$/).optional(),
});
export type JobPayload = z.infer<typeof JobPayload>;

const canonical = (p: JobPayload): string => JSON.stringify(JobPayload.parse({ ...p, mac: undefined }));
const macOf = (p: JobPayload, key: Buffer): string => createHmac('sha256', key).update(canonical(p)).digest('hex');

/** The payload with its seal: anyone who can write to Redis can change a job, but not forge this. */
export function sealPayload(p: JobPayload, key: Buffer): JobPayload {
  return { ...p, mac: macOf(p, key) };
}

/** Whether `p` is a payload this coordinator sealed, unchanged (constant-time). */
export function isSealed(p: JobPayload, key: Buffer): boolean {
  if (p.mac === undefined) return false;
  return timingSafeEqual(Buffer.from(macOf(p, key), 'hex'), Buffer.from(p.mac, 'hex'));
}

/** `state_dir/queue.key`: the coordinator's key for sealing jobs, made on first use (0600). */
export async function queueKey(stateDir: string): Promise<Buffer> {
  const path = join(stateDir, 'queue.key');
  const existing = await readFile(path).catch(() => undefined);
  if (existing?.length === 32) return existing;
  const key = randomBytes(32);
  await writeFile(`${path}.tmp`, key, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return key;
}

/** `hello@1.0-1`, `tool@2%3A1.0-1`, and `…~2` for a second build. */
export function jobId(recipe: string, version: string, replica = 1): string {
  return `${encodeURIComponent(recipe)}@${encodeURIComponent(version)}${replica > 1 ? `~${replica}` : ''}`;
}

/** The version key (`recipe@version`) a job id belongs to. */
export function parseJobId(id: string): { recipe: string; version: string; replica: number } | undefined {
  const m = /^([^@~]+)@([^@~]+)(?:~(\d))?$/.exec(id);
  if (!m) return undefined;
  try {
    return { recipe: decodeURIComponent(m[1]!), version: decodeURIComponent(m[2]!), replica: m[3] ? Number(m[3]) : 1 };
  } catch {
    return undefined;
  }
}

/** SHA-256 over the files in path order: path, NUL, mode bit, NUL, length, NUL, bytes. */
export function recipeDigest(files: readonly RecipeFile[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const data = Buffer.from(f.data, 'base64');
    hash.update(`${f.path}\0${f.executable ? 'x' : '-'}\0${data.length}\0`);
    hash.update(data);
  }
  return hash.digest('hex');
}

/** Reads a recipe directory: regular files and directories only, at most MAX_RECIPE_BYTES. */
export async function snapshotRecipe(dir: string): Promise<RecipeFile[]> {
  const files: RecipeFile[] = [];
  let total = 0;
  const walk = async (at: string): Promise<void> => {
    for (const entry of (await readdir(at, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(at, entry.name);
      const rel = relative(dir, path).split(sep).join('/');
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) {
        const info = await lstat(path);
        total += info.size;
        if (total > MAX_RECIPE_BYTES) throw new InputError(`recipe ${dir} holds more than ${MAX_RECIPE_BYTES / 1024 ** 2} MiB; a recipe sent to workers must be smaller (keep sources upstream)`);
        files.push({ path: rel, executable: (info.mode & 0o111) !== 0, data: (await readFile(path)).toString('base64') });
      } else throw new InputError(`recipe ${dir}: ${rel} is not a regular file or directory; a recipe sent to workers holds only those`);
    }
  };
  await walk(dir);
  return files;
}

/** Writes a job's recipe into `dir` after checking it against its digest. */
export async function writeRecipe(payload: JobPayload, dir: string): Promise<void> {
  const digest = recipeDigest(payload.recipeFiles);
  if (digest !== payload.recipeSha256) throw new Error(`the recipe sent with the job does not match its SHA-256 (${digest}, job says ${payload.recipeSha256}); refusing to build it`);
  for (const f of payload.recipeFiles) {
    const parts = f.path.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`the recipe sent with the job holds an unsafe path ${JSON.stringify(f.path)}`);
    const target = join(dir, ...parts);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, Buffer.from(f.data, 'base64'), { mode: f.executable ? 0o755 : 0o644, flag: 'wx' });
  }
}

export type { Route };
