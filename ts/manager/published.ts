/**
 * What the repository already holds, for de-duplication (D-20): every (name, version,
 * architecture) in `repo/index/archive.json`, read through the native index store and reloaded
 * only when the file changes.
 */

import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import { InputError } from '../errors.js';
import { pathExists } from '../fs.js';
import { compareVersions, isValidVersion } from '../format/version.js';
import { IndexStore } from '../native.js';

export class PublishedView {
  private constructor(
    private readonly byName: Map<string, Map<string, Set<string>>>,
    readonly indexVersion: number,
    readonly generatedAt: string,
  ) {}

  static empty(): PublishedView {
    return new PublishedView(new Map(), 0, '');
  }

  static async load(repoDir: string): Promise<PublishedView> {
    const path = join(repoDir, 'index', 'archive.json');
    if (!(await pathExists(path))) return PublishedView.empty();
    const store = IndexStore.create();
    try {
      const loaded = await store.load(path);
      const byName = new Map<string, Map<string, Set<string>>>();
      for (const e of await store.documentKeys(loaded)) {
        const versions = byName.get(e.name) ?? new Map<string, Set<string>>();
        versions.set(e.version, (versions.get(e.version) ?? new Set()).add(e.architecture));
        byName.set(e.name, versions);
      }
      return new PublishedView(byName, loaded.header.indexVersion, loaded.header.generatedAt);
    } finally {
      // The daemon lives for months: the mapped archive goes now, not at some later collection.
      store.release();
    }
  }

  has(name: string, version: string, architecture: string): boolean {
    return this.byName.get(name)?.get(version)?.has(architecture) ?? false;
  }

  /** The highest published version of `name`, by the one comparator. */
  newest(name: string): string | undefined {
    let best: string | undefined;
    for (const version of this.byName.get(name)?.keys() ?? []) {
      if (!isValidVersion(version)) continue;
      if (best === undefined || compareVersions(version, best) > 0) best = version;
    }
    return best;
  }
}

/** The archive index cannot be read, and there is no earlier view to go on. */
export class PublishedUnreadable extends InputError {}

/**
 * A `PublishedView` that reloads when `archive.json` changes on disk. When a reload fails (the
 * index was damaged), the last good view stands in — what was published then is still published —
 * and the next call tries again.
 */
export class PublishedCache {
  private view: PublishedView | undefined;
  private stamp = '';

  constructor(private readonly repoDir: string) {}

  async current(): Promise<PublishedView> {
    const info = await stat(join(this.repoDir, 'index', 'archive.json')).catch(() => undefined);
    const stamp = info ? `${info.ino}:${info.size}:${info.mtimeMs}` : 'none';
    if (stamp !== this.stamp || !this.view) {
      try {
        this.view = await PublishedView.load(this.repoDir);
        this.stamp = stamp;
      } catch (error) {
        if (this.view) return this.view;
        throw new PublishedUnreadable(`cannot tell what the repository holds: ${(error as Error).message}`);
      }
    }
    return this.view;
  }
}
