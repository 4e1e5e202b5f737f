/**
 * An index entry for a newly published package (`repository.md` §5.3): the manifest's members in
 * the contract's order, the package file's size and SHA-256, its URL, and `build` without
 * `source_ref`. Empty optional strings inside relation objects are left out.
 */

import { describingMembers, type Manifest } from '../format/manifest.js';

export interface PackageFile {
  size: number;
  sha256: string;
}

export function indexEntry(manifest: Manifest, file: PackageFile, url: string): Record<string, unknown> {
  return {
    ...describingMembers(manifest),
    size_compressed: file.size,
    size_installed: manifest.sizeInstalled,
    hash: { algorithm: 'sha256', value: file.sha256 },
    url,
    build: { timestamp: manifest.build.timestamp, farm_id: manifest.build.farmId },
  };
}
