/**
 * `peipkg-build pack`: one package from a hand-resolved manifest and a staged tree
 * (`package-format.md` §7.3, `recipes-and-farm.md` §5.4). The manifest input is decoded the way the
 * reference decodes it (keys matched case-insensitively, `null` = empty), but unlike the reference,
 * invalid input is refused (DECISIONS.md, Package format 2) instead of producing a package readers
 * reject: that includes unknown keys (a typo would otherwise be dropped silently) and SD overrides
 * naming no file or directory of the staged tree. There is no layout validation: `pack` is for trees the
 * recipe rules do not fit (kernels, boot trees).
 */

import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { InputError } from '../errors.js';
import { manifestProblems, manifestWarnings, type Manifest, type Relation } from '../format/manifest.js';
import { payloadPathProblem, symlinkTargetProblem } from '../format/paths.js';
import { timestampSeconds } from '../format/timestamp.js';
import { pack, sha256Files, type FileDigest, type SigningKey } from '../native.js';
import { packageEntries, payloadOf, type Payload } from './assemble.js';
import type { BuiltPackage } from './build.js';
import type { ZstdSettings } from './compression.js';
import { OutputBatch } from './output.js';
import { walkStaged } from './stage.js';

export interface PackRequest {
  manifestPath: string;
  stagedDir: string;
  outPath: string;
  signingKey: SigningKey | undefined;
  /** Write the unsigned package in the signable form (`PackSpec.deferredSignature`). */
  deferredSignature?: boolean;
  zstd: ZstdSettings;
  warn: (message: string) => void;
}

type JsonObject = Record<string, unknown>;

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Go's encoding/json field lookup: the last key that equals `name` ignoring case. */
function field(obj: JsonObject, name: string): unknown {
  let found: unknown;
  for (const key of Object.keys(obj)) if (key.toLowerCase() === name) found = obj[key];
  return found;
}

/** The keys a manifest input may have, at each level (matched ignoring case, as `field` reads them). */
const KEYS = {
  top: ['schema_version', 'name', 'version', 'architecture', 'description', 'license', 'homepage', 'dependencies', 'optional_dependencies',
    'conflicts', 'provides', 'replaces', 'side_effects', 'size_installed', 'sd_overrides', 'build'],
  relation: ['name', 'constraint', 'arch'],
  provides: ['name', 'version'],
  replaces: ['name', 'constraint'],
  sdOverride: ['path', 'sd'],
  build: ['timestamp', 'farm_id', 'source_ref'],
} as const;

/** Advice for keys people carry over from a recipe's `[[package]]` stanza. */
const RECIPE_KEYS: Record<string, string> = {
  files: 'pack packages every entry of --staged; a manifest lists no files',
  same_build: 'a recipe key; in a manifest write the constraint, e.g. "constraint": "= 1.2-1"',
};

class ManifestInput {
  readonly problems: string[] = [];

  /** Refuses keys the format does not have (the reference ignores them, so a typo is lost silently). */
  keys(obj: JsonObject, allowed: readonly string[], at: string): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key.toLowerCase())) continue;
      const advice = RECIPE_KEYS[key.toLowerCase()];
      this.problems.push(`${at}${key}: unknown key${advice ? ` (${advice})` : ''}`);
    }
  }

  str(obj: JsonObject, name: string, at: string): string {
    const v = field(obj, name);
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    this.problems.push(`${at}${name}: must be a string`);
    return '';
  }

  list(obj: JsonObject, name: string): JsonObject[] {
    const v = field(obj, name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every(isObject)) {
      this.problems.push(`${name}: must be an array of objects`);
      return [];
    }
    return v;
  }

  relations(obj: JsonObject, name: string): Relation[] {
    return this.list(obj, name).map((r, i) => (this.keys(r, KEYS.relation, `${name}[${i}].`), {
      name: this.str(r, 'name', `${name}[${i}].`),
      constraint: this.str(r, 'constraint', `${name}[${i}].`),
      arch: this.str(r, 'arch', `${name}[${i}].`),
    }));
  }

  integer(obj: JsonObject, name: string): void {
    const v = field(obj, name);
    if (v !== undefined && v !== null && !Number.isSafeInteger(v)) this.problems.push(`${name}: must be an integer`);
  }
}

/** The manifest input → a `Manifest` (size_installed is filled in later), or every problem. */
export function decodePackManifest(doc: unknown): { manifest: Manifest } | { problems: string[] } {
  if (!isObject(doc)) return { problems: ['the manifest must be a JSON object'] };
  const input = new ManifestInput();
  input.keys(doc, KEYS.top, '');
  input.integer(doc, 'schema_version');
  input.integer(doc, 'size_installed');
  const buildField = field(doc, 'build');
  const build = isObject(buildField) ? buildField : {};
  if (buildField !== undefined && buildField !== null && !isObject(buildField)) input.problems.push('build: must be an object');
  input.keys(build, KEYS.build, 'build.');
  const sideEffects = field(doc, 'side_effects');
  if (sideEffects !== undefined && sideEffects !== null && !(Array.isArray(sideEffects) && sideEffects.every((s) => typeof s === 'string'))) {
    input.problems.push('side_effects: must be an array of strings');
  }
  const manifest: Manifest = {
    name: input.str(doc, 'name', ''),
    version: input.str(doc, 'version', ''),
    architecture: input.str(doc, 'architecture', ''),
    description: input.str(doc, 'description', ''),
    license: input.str(doc, 'license', ''),
    homepage: input.str(doc, 'homepage', ''),
    dependencies: input.relations(doc, 'dependencies'),
    optionalDependencies: input.relations(doc, 'optional_dependencies'),
    conflicts: input.relations(doc, 'conflicts'),
    provides: input.list(doc, 'provides').map((p, i) => (input.keys(p, KEYS.provides, `provides[${i}].`), { name: input.str(p, 'name', `provides[${i}].`), version: input.str(p, 'version', `provides[${i}].`) })),
    replaces: input.list(doc, 'replaces').map((r, i) => (input.keys(r, KEYS.replaces, `replaces[${i}].`), { name: input.str(r, 'name', `replaces[${i}].`), constraint: input.str(r, 'constraint', `replaces[${i}].`) })),
    sideEffects: Array.isArray(sideEffects) ? sideEffects.filter((s): s is string => typeof s === 'string') : [],
    sizeInstalled: 0,
    sdOverrides: input.list(doc, 'sd_overrides').map((o, i) => (input.keys(o, KEYS.sdOverride, `sd_overrides[${i}].`), { path: input.str(o, 'path', `sd_overrides[${i}].`), sd: input.str(o, 'sd', `sd_overrides[${i}].`) })),
    build: { timestamp: input.str(build, 'timestamp', 'build.'), farmId: input.str(build, 'farm_id', 'build.'), sourceRef: input.str(build, 'source_ref', 'build.') },
  };
  return input.problems.length > 0 ? { problems: input.problems } : { manifest };
}

/** `--staged` must name a directory: said plainly, not as a failed directory walk. */
async function requireDirectory(path: string): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(`staged tree ${path} does not exist (--staged)`);
    throw new InputError(`staged tree ${path}: ${(error as Error).message}`);
  }
  if (!info.isDirectory()) throw new InputError(`staged tree ${path} is not a directory (--staged)`);
}

/** §6: an SD override names a file or directory entry of the payload, never a symlink or nothing. */
function sdOverrideProblems(manifest: Manifest, payload: Payload, staged: string): string[] {
  const kinds = new Map(payload.entries.map((e) => [e.name.replace(/\/$/, ''), e.type]));
  const problems: string[] = [];
  manifest.sdOverrides.forEach((o, i) => {
    const kind = kinds.get(o.path);
    if (kind === undefined) problems.push(`sd_overrides[${i}].path: ${o.path} is missing: no such file or directory in the staged tree ${staged}`);
    else if (kind === 'symlink') problems.push(`sd_overrides[${i}].path: ${o.path} is a symlink; an SD override names a file or directory`);
  });
  return problems;
}

export async function runPack(request: PackRequest): Promise<BuiltPackage> {
  let text: string;
  try {
    text = await readFile(request.manifestPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(`manifest ${request.manifestPath} does not exist (--manifest)`);
    throw new InputError(`read manifest ${request.manifestPath}: ${(error as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new InputError(`parse manifest ${request.manifestPath}: ${(error as Error).message}`);
  }
  const decoded = decodePackManifest(doc);
  if ('problems' in decoded) throw new InputError(`${request.manifestPath}: invalid manifest:\n${decoded.problems.map((p) => `  ${p}`).join('\n')}`);
  const staged = resolve(request.stagedDir);
  await requireDirectory(request.stagedDir);
  const leaves = walkStaged(staged).filter((e) => e.kind !== 'directory');
  const pathProblems: string[] = [];
  for (const leaf of leaves) {
    const problem = payloadPathProblem(leaf.path) ?? (leaf.kind === 'symlink' ? symlinkTargetProblem(leaf.path, leaf.target) : undefined);
    if (problem) pathProblems.push(`${leaf.path}: ${problem}`);
  }
  if (pathProblems.length > 0) throw new InputError(`staged tree ${staged} has invalid entries:\n${pathProblems.map((p) => `  ${p}`).join('\n')}`);
  const files = leaves.filter((e) => e.kind === 'file').map((e) => e.path);
  const digests = new Map<string, FileDigest>();
  (await sha256Files(files.map((p) => join(staged, p)))).forEach((r, i) => {
    if ('error' in r) throw r.error;
    digests.set(files[i]!, r);
  });
  const payload = payloadOf(leaves, digests);
  const manifest: Manifest = { ...decoded.manifest, sizeInstalled: payload.files.reduce((s, f) => s + f.size, 0) };
  const problems = [...manifestProblems(manifest, 'producer'), ...sdOverrideProblems(manifest, payload, staged)];
  if (problems.length > 0) throw new InputError(`${request.manifestPath}: invalid manifest:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  for (const warning of manifestWarnings(manifest)) request.warn(warning);

  const out = resolve(request.outPath);
  const batch = await OutputBatch.open(dirname(out));
  try {
    const outcome = await batch.write(basename(out), (output) =>
      pack({
        output,
        mtime: timestampSeconds(manifest.build.timestamp),
        root: staged,
        entries: packageEntries(manifest, payload),
        ...(request.signingKey ? { signingKey: request.signingKey } : {}),
        ...(request.deferredSignature ? { deferredSignature: true } : {}),
        compression: { level: request.zstd.level, overlapLog: request.zstd.overlapLog, jobSize: request.zstd.jobSize },
        fsync: true,
      }),
    );
    await batch.commit();
    return { path: out, name: manifest.name, version: manifest.version, architecture: manifest.architecture, size: outcome.outputSize, signed: outcome.signature !== undefined };
  } finally {
    await batch.discard();
  }
}
