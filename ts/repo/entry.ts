/**
 * An index entry for a newly published package (`repository.md` §5.3): the manifest's members in
 * the contract's order, the package file's size and SHA-256, its URL, and `build` without
 * `source_ref`. Empty optional strings inside relation objects are left out.
 */

import type { Manifest, Relation } from '../format/manifest.js';

const relation = (r: Relation): Record<string, string> => ({
  name: r.name,
  ...(r.constraint ? { constraint: r.constraint } : {}),
  ...(r.arch ? { arch: r.arch } : {}),
});

export interface PackageFile {
  size: number;
  sha256: string;
}

export function indexEntry(manifest: Manifest, file: PackageFile, url: string): Record<string, unknown> {
  return {
    name: manifest.name,
    version: manifest.version,
    architecture: manifest.architecture,
    description: manifest.description,
    license: manifest.license,
    homepage: manifest.homepage,
    dependencies: manifest.dependencies.map(relation),
    optional_dependencies: manifest.optionalDependencies.map(relation),
    conflicts: manifest.conflicts.map(relation),
    provides: manifest.provides.map((p) => ({ name: p.name, ...(p.version ? { version: p.version } : {}) })),
    replaces: manifest.replaces.map((r) => ({ name: r.name, ...(r.constraint ? { constraint: r.constraint } : {}) })),
    side_effects: manifest.sideEffects,
    size_compressed: file.size,
    size_installed: manifest.sizeInstalled,
    hash: { algorithm: 'sha256', value: file.sha256 },
    url,
    build: { timestamp: manifest.build.timestamp, farm_id: manifest.build.farmId },
  };
}
