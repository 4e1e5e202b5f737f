/**
 * Turns what a stanza claims into what the packer writes (`recipes-and-farm.md` §4.9, §4.10):
 * the manifest (relations resolved and sorted), files.json, and the payload entries — claimed
 * leaves plus their ancestor directories, in on-wire name order (`package-format.md` §2.3).
 */

import { encodeFiles, type FileRecord } from '../format/files.js';
import { encodeManifest, type Manifest, type Relation } from '../format/manifest.js';
import { compareUtf8 } from '../format/order.js';
import type { FileDigest, PackEntry } from '../native.js';
import type { RecipeRelation, Stanza } from './recipe.js';
import { ancestors, type StagedEntry } from './stage.js';

export interface BuildInfo {
  version: string;
  timestamp: string;
  farmId: string;
  sourceRef: string;
  license: string;
  homepage: string;
}

const byName = <T extends { name: string }>(a: T, b: T): number => compareUtf8(a.name, b.name);

/** `same_build` becomes `= <version>` (§2.6); the list is sorted by name (§4.9). */
export function resolveRelations(list: readonly RecipeRelation[], version: string): Relation[] {
  return list
    .map((r) => ({ name: r.name, constraint: r.sameBuild ? `= ${version}` : r.constraint, arch: r.arch }))
    .sort(byName);
}

export function stanzaManifest(stanza: Stanza, info: BuildInfo, files: readonly FileRecord[]): Manifest {
  return {
    name: stanza.name,
    version: info.version,
    architecture: stanza.architecture,
    description: stanza.description,
    license: info.license,
    homepage: info.homepage,
    dependencies: resolveRelations(stanza.dependencies, info.version),
    optionalDependencies: resolveRelations(stanza.optionalDependencies, info.version),
    conflicts: resolveRelations(stanza.conflicts, info.version),
    provides: [...stanza.provides].sort(byName),
    replaces: [...stanza.replaces].sort(byName),
    sideEffects: [...stanza.sideEffects],
    sizeInstalled: files.reduce((sum, f) => sum + f.size, 0),
    sdOverrides: [],
    build: { timestamp: info.timestamp, farmId: info.farmId, sourceRef: info.sourceRef },
  };
}

export interface Payload {
  /** Payload entries in wire-name order; file sources are relative to the staged root. */
  entries: PackEntry[];
  /** files.json records, sorted by path. */
  files: FileRecord[];
}

/**
 * The payload of one package: `leaves` plus every ancestor directory. `digests` maps each file's
 * path to its hash, which the packer checks again as it copies the file.
 */
export function payloadOf(leaves: readonly StagedEntry[], digests: ReadonlyMap<string, FileDigest>): Payload {
  const byWireName = new Map<string, PackEntry>();
  const files: FileRecord[] = [];
  for (const leaf of leaves) {
    for (const dir of ancestors(leaf.path)) byWireName.set(`${dir}/`, { name: `${dir}/`, type: 'directory' });
    if (leaf.kind === 'directory') byWireName.set(`${leaf.path}/`, { name: `${leaf.path}/`, type: 'directory' });
    else if (leaf.kind === 'symlink') byWireName.set(leaf.path, { name: leaf.path, type: 'symlink', target: leaf.target });
    else {
      const digest = digests.get(leaf.path);
      if (!digest) throw new Error(`no digest for ${leaf.path}`);
      byWireName.set(leaf.path, { name: leaf.path, type: 'file', source: leaf.path, size: digest.size, sha256: digest.sha256 });
      files.push({ path: leaf.path, size: digest.size, sha256: digest.sha256 });
    }
  }
  const entries = [...byWireName.values()].sort((a, b) => compareUtf8(a.name, b.name));
  files.sort((a, b) => compareUtf8(a.path, b.path));
  return { entries, files };
}

/** The full entry list: manifest.json, files.json, then the payload (§2.2). */
export function packageEntries(manifest: Manifest, payload: Payload): PackEntry[] {
  return [
    { name: '.peipkg/manifest.json', type: 'file', data: Buffer.from(encodeManifest(manifest)) },
    { name: '.peipkg/files.json', type: 'file', data: Buffer.from(encodeFiles(payload.files)) },
    ...payload.entries,
  ];
}
