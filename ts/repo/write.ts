/**
 * Crash-safe changes to a state directory (DECISIONS.md, Repository writes). Everything is written
 * under a temporary name (`*.tmp-*`), fsynced, and renamed into place; the two indexes and their
 * signatures change together by swapping a fresh `index.tmp-<random>` directory with `index/` in one
 * `renameat2(RENAME_EXCHANGE)`. Whatever instant a writer dies at, the live names show the old
 * state or the new one, and the next writer removes the leftovers (`removeLeftovers`).
 *
 * The one pair that cannot be swapped as a unit is `repo.json` with `repo.json.sig` (fixed names
 * at the root). It is written only when its bytes change, and the signature goes in last; a
 * writer that dies between the two renames leaves `repo.json.sig.tmp-*`, which the next writer
 * moves into place when it verifies.
 */

import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { pathExists, readRegularFile } from '../fs.js';
import { exchangePaths, fsyncPath, type IndexHeader, type IndexStore } from '../native.js';

/** The suffix of every temporary name in a state; `removeLeftovers` matches exactly this shape. */
export const tempSuffix = (): string => `tmp-${randomBytes(6).toString('hex')}`;

/** Writes bytes to a new file and fsyncs it (mode 0644 before the umask). */
export async function writeDurable(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Replaces `path` with `data` by rename; the parent directory is fsynced afterwards. */
export async function replaceFile(path: string, data: string | Uint8Array): Promise<void> {
  const temp = `${path}.${tempSuffix()}`;
  await writeDurable(temp, data);
  await rename(temp, path);
  fsyncPath(dirname(path));
}

/**
 * What interrupted writers leave at the top of a state: exactly the temporary names this module
 * makes, so nothing a user published can match (package URLs may not start with these names, see
 * `statePathProblem`).
 */
const LEFTOVER = /^(?:staging|index|repo\.json|repo\.json\.sig)\.tmp-[0-9a-f]{12}$/;

/** A key file `replaceFile` did not finish (resign). */
const KEY_LEFTOVER = /\.pub\.tmp-[0-9a-f]{12}$/;

/**
 * Removes what interrupted writers left in `dir`: `staging.tmp-*`, `index.tmp-*`,
 * `repo.json.tmp-*` (pending signatures are rolled forward first) and `keys/*.pub.tmp-*`.
 */
export async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (LEFTOVER.test(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
  for (const name of await readdir(join(dir, 'keys')).catch(() => [] as string[])) {
    if (KEY_LEFTOVER.test(name)) await rm(join(dir, 'keys', name), { force: true });
  }
}

/**
 * `mkdir -p` that fsyncs the parent of every directory it creates, so new paths survive a crash;
 * the directories it created, outermost first.
 */
export async function makeDirs(root: string, relativeDir: string): Promise<string[]> {
  const created: string[] = [];
  let current = root;
  for (const part of relativeDir.split('/').filter(Boolean)) {
    const next = join(current, part);
    try {
      await mkdir(next, { mode: 0o755 });
      created.push(next);
      fsyncPath(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    current = next;
  }
  return created;
}

/**
 * Files copied into the state through one staging directory inside it (same filesystem, so the
 * final step is a rename), each fsynced before it is moved.
 */
export class Staging {
  /** Paths this staging placed where nothing was, and the directories it made for them, in order. */
  private readonly created: Array<{ path: string; directory: boolean }> = [];

  private constructor(
    private readonly root: string,
    private readonly dir: string,
  ) {}

  static async open(root: string): Promise<Staging> {
    const dir = join(root, `staging.${tempSuffix()}`);
    await mkdir(dir, { mode: 0o700 });
    return new Staging(root, dir);
  }

  private next(): string {
    return join(this.dir, randomBytes(8).toString('hex'));
  }

  /** Copies `source` to `<root>/<target>` (copy_file_range where possible), replacing what is there. */
  async copy(source: string, target: string): Promise<void> {
    const temp = this.next();
    await copyFile(source, temp);
    fsyncPath(temp);
    await this.place(temp, target);
  }

  async write(target: string, data: string | Uint8Array): Promise<void> {
    await this.produce(target, (temp) => writeDurable(temp, data));
  }

  /** Places at `<root>/<target>` the file `make` writes (new, fsynced) at the path it is given. */
  async produce(target: string, make: (path: string) => Promise<void>): Promise<void> {
    await this.place(await this.make(make), target);
  }

  /** The staged path of the file `make` writes (new, fsynced) there, for `place` to move in later. */
  async make(make: (path: string) => Promise<void>): Promise<string> {
    const temp = this.next();
    await make(temp);
    return temp;
  }

  /** Moves a staged file to `<root>/<target>`, replacing what is there, and makes that durable. */
  async place(temp: string, target: string): Promise<void> {
    const dir = dirname(target);
    if (dir !== '.') this.created.push(...(await makeDirs(this.root, dir)).map((path) => ({ path, directory: true })));
    const path = join(this.root, target);
    const fresh = !(await pathExists(path));
    await rename(temp, path);
    if (fresh) this.created.push({ path, directory: false });
    fsyncPath(join(this.root, dir));
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /**
   * Removes what this staging placed where nothing was (new package files, their sidecars, the
   * directories made for them), newest first, for a publish that failed before its indexes were
   * swapped in: no index names those files yet. A file it replaced stays replaced (publish only
   * replaces the site's own files, which it rewrites every time). Best effort: the failure being
   * reported matters more than a file this cannot remove, which the next publish overwrites.
   */
  async abandon(): Promise<void> {
    for (const { path, directory } of this.created.reverse()) {
      await (directory ? rmdir(path) : rm(path, { force: true })).catch(() => undefined);
    }
    this.created.length = 0;
  }
}

export interface IndexDocumentOut {
  header: IndexHeader;
  signature: (sha256: string) => string;
}

/**
 * Writes active.json, archive.json (as arranged in `store`) and their signatures into a fresh
 * `index.tmp-*` directory and swaps it with `index/` atomically (or renames it in when there is no
 * `index/` yet).
 */
export async function swapIndexes(root: string, store: IndexStore, active: IndexDocumentOut, archive: IndexDocumentOut): Promise<void> {
  await swapInIndexes(root, await writeIndexes(root, store, active, archive));
}

/**
 * Writes active.json, archive.json (as arranged in `store`) and their signatures into a fresh
 * `index.tmp-*` directory in `root`, fsynced; its path. Nothing reads it until `swapInIndexes`.
 */
export async function writeIndexes(root: string, store: IndexStore, active: IndexDocumentOut, archive: IndexDocumentOut): Promise<string> {
  const temp = join(root, `index.${tempSuffix()}`);
  await mkdir(temp, { mode: 0o755 });
  // Both documents at once: each is encoded and written on its own thread of the pool.
  const written = await Promise.allSettled(
    ([['active', active], ['archive', archive]] as const).map(async ([kind, doc]) => {
      const name = `${kind}.json`;
      const written = await store.write(join(temp, name), doc.header, kind);
      await writeDurable(join(temp, `${name}.sig`), doc.signature(written.sha256));
    }),
  );
  const failed = written.find((w) => w.status === 'rejected');
  if (failed) {
    // Both writers have stopped: nothing writes into the directory any more.
    await rm(temp, { recursive: true, force: true });
    throw failed.reason;
  }
  fsyncPath(temp);
  return temp;
}

/**
 * Swaps the directory `writeIndexes` wrote with `index/` atomically (or renames it in); `swapped` is
 * called the moment the new indexes are live, before anything after it can fail.
 */
export async function swapInIndexes(root: string, temp: string, swapped: () => void = () => undefined): Promise<void> {
  const live = join(root, 'index');
  const exists = await pathExists(live);
  if (exists) {
    exchangePaths(temp, live);
    swapped();
    fsyncPath(root);
    await rm(temp, { recursive: true, force: true });
  } else {
    await rename(temp, live);
    swapped();
    fsyncPath(root);
  }
}

/**
 * Writes `repo.json` and its signature when they differ from what is there. The signature is
 * renamed in last; see `completeDescriptor` for the moment in between.
 */
export async function writeDescriptor(root: string, bytes: string, signature: string): Promise<boolean> {
  const path = join(root, 'repo.json');
  const [current, currentSig] = await Promise.all([
    textIfAtMost(path, Buffer.byteLength(bytes)),
    textIfAtMost(`${path}.sig`, Buffer.byteLength(signature)),
  ]);
  if (current === bytes && currentSig === signature) return false;
  const t = tempSuffix();
  await writeDurable(`${path}.${t}`, bytes);
  await writeDurable(`${path}.sig.${t}`, signature);
  await rename(`${path}.${t}`, path);
  fsyncPath(root);
  await rename(`${path}.sig.${t}`, `${path}.sig`);
  fsyncPath(root);
  return true;
}

/**
 * The text at `path` when it is a regular file of at most `limit` bytes; otherwise (missing, larger,
 * a FIFO) undefined, which differs from any text of at most `limit` bytes the caller compares with.
 */
async function textIfAtMost(path: string, limit: number): Promise<string | undefined> {
  return readRegularFile(path, limit).then(
    (b) => b.toString('utf8'),
    () => undefined,
  );
}

/** Writes bytes at `<root>/<target>` only when they differ (sidecars and site files). */
export async function ensureFile(staging: Staging, root: string, target: string, data: string | Uint8Array): Promise<void> {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  const current = await textIfAtMost(join(root, target), Buffer.byteLength(text));
  if (current !== text) await staging.write(target, data);
}
