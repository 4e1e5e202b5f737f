/**
 * `peipkg-repo list`: the packages of a state, read from its indexes — the active index by
 * default (the latest version of each name), or the archive (every version ever published). Each
 * row carries what the index records: name, version, architecture, the package file's size, the
 * installed size, the build timestamp (`build.timestamp`; the index records no separate publish
 * time), the URL and the SHA-256.
 *
 * Filters: `--name` takes an exact package name or a pattern where `*` matches any run of
 * characters and `?` one character; `--arch` an exact architecture. Both may be repeated (a row
 * matches any of the values given). Listing reads; it checks the signatures only to warn, since
 * `verify` is the audit.
 */

import { stat } from 'node:fs/promises';

import { z } from 'zod';

import { InputError, UsageError } from '../errors.js';
import { architectureProblem } from '../format/names.js';
import type { IndexEntryKey } from '../native.js';
import { entryTriple } from './archive.js';
import { checkSignatures, loadState, readTrustedKeys, StateLoadError, type LoadedState } from './state.js';

export interface ListRequest {
  repoDir: string;
  /** The archive instead of the active index. */
  all: boolean;
  /** Name patterns (any may match); empty = every name. */
  names: readonly string[];
  /** Architectures (any may match); empty = every architecture. */
  architectures: readonly string[];
}

export interface ListedPackage {
  name: string;
  version: string;
  architecture: string;
  sizeCompressed: number;
  sizeInstalled: number;
  buildTimestamp: string;
  /** In the active index (always true without `all`). */
  active: boolean;
  url: string;
  sha256: string;
}

export interface Listing {
  indexVersion: number;
  generatedAt: string;
  /** Which index the rows come from. */
  index: 'active' | 'archive';
  packages: ListedPackage[];
  /** Signature problems found on the way (the listing is still made). */
  warnings: string[];
}

const PATTERN = /^[a-z0-9.+*?-]+$/;

/** A `--name` value as a matcher; malformed values are usage errors naming the flag. */
export function namePattern(value: string): (name: string) => boolean {
  if (!PATTERN.test(value)) {
    throw new UsageError(`--name ${JSON.stringify(value)}: a package name or a pattern of a-z 0-9 - . + with * (any characters) and ? (one character)`);
  }
  if (!/[*?]/.test(value)) return (name) => name === value;
  const source = value.replace(/[.+]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const re = new RegExp(`^${source}$`, 'u');
  return (name) => re.test(name);
}

export function checkArchitecture(value: string): string {
  const problem = architectureProblem(value);
  if (problem) throw new UsageError(`--arch: ${problem}`);
  return value;
}

async function checkRepoDir(dir: string): Promise<void> {
  let info;
  try {
    info = await stat(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`--repo ${dir}: ${code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : (error as Error).message}`);
  }
  if (!info.isDirectory()) throw new InputError(`--repo ${dir}: not a directory`);
}

/** Loads the state in `dir` for a read-only command; every failure names the directory. */
export async function loadStateAt(dir: string, entries: { active: boolean; archive: boolean }): Promise<LoadedState> {
  await checkRepoDir(dir);
  try {
    return await loadState(dir, entries);
  } catch (error) {
    if (error instanceof StateLoadError) {
      throw new InputError(`--repo ${dir} is not a readable repository state: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** The store's site rows: `columns` names the cells of every row (the one layout is native, `index.rs`). */
const SiteRows = z.object({ columns: z.array(z.string()), rows: z.array(z.array(z.unknown())) });
const SiteRow = z.object({
  name: z.string(),
  version: z.string(),
  architecture: z.string(),
  url: z.string(),
  size_compressed: z.number(),
  size_installed: z.number(),
  build_timestamp: z.string(),
  active: z.number(),
});

/** Each row as an object keyed by column name. */
function rowObjects(json: string): Array<z.infer<typeof SiteRow>> {
  const { columns, rows } = SiteRows.parse(JSON.parse(json));
  return rows.map((row) => SiteRow.parse(Object.fromEntries(columns.map((c, i) => [c, row[i]]))));
}

export async function listPackages(request: ListRequest): Promise<Listing> {
  const matchers = request.names.map(namePattern);
  const architectures = new Set(request.architectures.map(checkArchitecture));
  const state = await loadStateAt(request.repoDir, { active: true, archive: request.all });

  const warnings: string[] = [];
  const { keys, problems } = await readTrustedKeys(request.repoDir, state.descriptor);
  const signatures = checkSignatures(state, keys);
  if (problems.length + signatures.problems.length > 0) {
    warnings.push(`the state does not verify (${[...problems, ...signatures.problems].join('; ')}); run \`peipkg-repo verify --repo ${request.repoDir}\``);
  }

  const keysOf = async (doc: typeof state.active.entries): Promise<IndexEntryKey[]> => (doc ? state.store.documentKeys(doc) : []);
  const activeEntries = await keysOf(state.active.entries);
  const source = request.all ? await keysOf(state.archive.entries) : activeEntries;
  const wanted = (e: IndexEntryKey): boolean =>
    (matchers.length === 0 || matchers.some((m) => m(e.name))) && (architectures.size === 0 || architectures.has(e.architecture));
  const picked = source.filter(wanted);
  const activeTriples = new Set(activeEntries.map(entryTriple));
  const activeIds = picked.filter((e) => activeTriples.has(entryTriple(e))).map((e) => e.id);
  const rows = rowObjects(await state.store.siteRows(picked.map((e) => e.id), activeIds));
  const header = request.all ? state.archive.header : state.active.header;
  return {
    indexVersion: header.indexVersion,
    generatedAt: header.generatedAt,
    index: request.all ? 'archive' : 'active',
    packages: rows.map((row, i) => ({
      name: row.name,
      version: row.version,
      architecture: row.architecture,
      sizeCompressed: row.size_compressed,
      sizeInstalled: row.size_installed,
      buildTimestamp: row.build_timestamp,
      active: row.active === 1,
      url: row.url,
      sha256: picked[i]!.hash,
    })),
    warnings,
  };
}

/** The `--json` form: one object per package, snake_case keys. */
export function listingJson(listing: Listing): Array<Record<string, unknown>> {
  return listing.packages.map((p) => ({
    name: p.name,
    version: p.version,
    architecture: p.architecture,
    size_compressed: p.sizeCompressed,
    size_installed: p.sizeInstalled,
    build_timestamp: p.buildTimestamp,
    active: p.active,
    url: p.url,
    sha256: p.sha256,
  }));
}

/** `570 B`, `12.3 KiB`, `4.0 MiB`: for people; `--json` has the exact byte counts. */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The aligned table: NAME VERSION ARCH SIZE BUILT, and ACTIVE for the archive. */
export function listingTable(listing: Listing): string {
  const head = ['NAME', 'VERSION', 'ARCH', 'SIZE', 'BUILT', ...(listing.index === 'archive' ? ['ACTIVE'] : [])];
  const rows = listing.packages.map((p) => [
    p.name,
    p.version,
    p.architecture,
    humanSize(p.sizeCompressed),
    p.buildTimestamp,
    ...(listing.index === 'archive' ? [p.active ? 'yes' : '-'] : []),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const SIZE = 3;
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => (c === SIZE ? cell.padStart(widths[c]!) : c === cells.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].map((l) => `${l}\n`).join('');
}
