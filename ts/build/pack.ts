/**
 * `peipkg-build pack`: one package from a hand-resolved manifest and a staged tree
 * (`package-format.md` §7.3, `recipes-and-farm.md` §5.4). The manifest input is decoded the way the
 * reference decodes it (keys matched case-insensitively, unknown keys ignored, `null` = empty), but
 * unlike the reference, invalid input is refused (DECISIONS.md, Package format 2) instead of
 * producing a package readers reject. There is no layout validation: `pack` is for trees the
 * recipe rules do not fit (kernels, boot trees).
 */

import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { InputError } from '../errors.js';
import { manifestProblems, manifestWarnings, type Manifest, type Relation } from '../format/manifest.js';
import { payloadPathProblem, symlinkTargetProblem } from '../format/paths.js';
import { timestampSeconds } from '../format/timestamp.js';
import { pack, sha256Files, type FileDigest, type SigningKey } from '../native.js';
import { packageEntries, payloadOf } from './assemble.js';
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

class ManifestInput {
  readonly problems: string[] = [];

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
    return this.list(obj, name).map((r, i) => ({
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
  input.integer(doc, 'schema_version');
  input.integer(doc, 'size_installed');
  const buildField = field(doc, 'build');
  const build = isObject(buildField) ? buildField : {};
  if (buildField !== undefined && buildField !== null && !isObject(buildField)) input.problems.push('build: must be an object');
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
    provides: input.list(doc, 'provides').map((p, i) => ({ name: input.str(p, 'name', `provides[${i}].`), version: input.str(p, 'version', `provides[${i}].`) })),
    replaces: input.list(doc, 'replaces').map((r, i) => ({ name: input.str(r, 'name', `replaces[${i}].`), constraint: input.str(r, 'constraint', `replaces[${i}].`) })),
    sideEffects: Array.isArray(sideEffects) ? sideEffects.filter((s): s is string => typeof s === 'string') : [],
    sizeInstalled: 0,
    sdOverrides: input.list(doc, 'sd_overrides').map((o, i) => ({ path: input.str(o, 'path', `sd_overrides[${i}].`), sd: input.str(o, 'sd', `sd_overrides[${i}].`) })),
    build: { timestamp: input.str(build, 'timestamp', 'build.'), farmId: input.str(build, 'farm_id', 'build.'), sourceRef: input.str(build, 'source_ref', 'build.') },
  };
  return input.problems.length > 0 ? { problems: input.problems } : { manifest };
}

export async function runPack(request: PackRequest): Promise<BuiltPackage> {
  let text: string;
  try {
    text = await readFile(request.manifestPath, 'utf8');
  } catch (error) {
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
  const problems = manifestProblems(manifest, 'producer');
  if (problems.length > 0) throw new InputError(`${request.manifestPath}: invalid manifest:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  for (const warning of manifestWarnings(manifest)) request.warn(warning);

  const out = resolve(request.outPath);
  const batch = await OutputBatch.open(dirname(out));
  try {
    const outcome = await pack({
      output: batch.reserve(basename(out)),
      mtime: timestampSeconds(manifest.build.timestamp),
      root: staged,
      entries: packageEntries(manifest, payload),
      ...(request.signingKey ? { signingKey: request.signingKey } : {}),
      ...(request.deferredSignature ? { deferredSignature: true } : {}),
      compression: { level: request.zstd.level, overlapLog: request.zstd.overlapLog, jobSize: request.zstd.jobSize },
      fsync: true,
    });
    await batch.commit();
    return { path: out, name: manifest.name, version: manifest.version, architecture: manifest.architecture, size: outcome.outputSize, signed: outcome.signature !== undefined };
  } finally {
    await batch.discard();
  }
}
