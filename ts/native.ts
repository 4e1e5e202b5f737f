/**
 * Loads the native core (crates/peipkg-native) and exposes it as typed functions.
 *
 * Where the addon comes from, in order: `PEIPKG_NATIVE_PATH`; a local build in `native/` (from
 * `npm run build:native`); the platform package (`peipkg-linux-x64-gnu`, …) that npm installed as
 * an optional dependency. If none loads, the error lists every place tried and why it failed.
 *
 * Every function here converts the addon's errors into the typed errors of `errors.ts`.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { fromNative, InternalError, type PeipkgError } from './errors.js';

declare const handle: unique symbol;
/** An Ed25519 private key held in native memory; never exposed to JavaScript. */
export type SigningKey = { readonly [handle]: 'SigningKey' };
/** A counter native work advances and JavaScript polls. */
export type Progress = { readonly [handle]: 'Progress' };
type RawLock = { readonly [handle]: 'DirLock' };
type RawEncoder = { readonly [handle]: 'ZstdEncoder' };
type RawIndexStore = { readonly [handle]: 'IndexStore' };

export interface FileDigest {
  /** Lowercase hex. */
  sha256: string;
  size: number;
}

export interface ZstdParams {
  /** 1–22. */
  level: number;
  /** 0 (libzstd's choice) or 1–9. */
  overlapLog?: number;
  /** Input bytes per job: 0 (libzstd's choice, four windows) or 1 MiB–1 GiB. */
  jobSize?: number;
  /** Worker threads, at least 1 (the output does not depend on it). Default: all cores. */
  workers?: number;
}

export interface ZstdTotals {
  bytesIn: number;
  bytesOut: number;
}

export interface DecompressLimits {
  /** Refuse to produce more than this many bytes. */
  maxBytes: number;
  /** Largest window accepted, as a power of two (default 27 = 128 MiB). */
  windowLogMax?: number;
}

/** One tar entry. `name` is the wire name (directories end in `/`). */
export type PackEntry =
  | { name: string; type: 'file'; data: Uint8Array; sha256?: string }
  | { name: string; type: 'file'; source: string; size: number; sha256?: string }
  | { name: string; type: 'directory' }
  | { name: string; type: 'symlink'; target: string };

export interface PackSpec {
  /** Created exclusively; removed again if packing fails. */
  output: string;
  /** Unix seconds, the mtime of every entry. */
  mtime: number;
  /** Directory that `source` paths are relative to; opened without following symlinks. */
  root?: string;
  entries: PackEntry[];
  signingKey?: SigningKey;
  /** `null` writes the plain tar. */
  compression: ZstdParams | null;
  fsync?: boolean;
  progress?: Progress;
  /**
   * Write the unsigned package in the "signable" form: every entry in one zstd frame, the
   * 1024-byte end-of-archive trailer in a second one, so that `appendSignature` can sign it later
   * without recompressing. Needs `compression` and no `signingKey`. Default false (one frame).
   */
  deferredSignature?: boolean;
}

export interface PackOutcome {
  tarSize: number;
  outputSize: number;
  /** SHA-256 (hex) of the tar bytes before the signature entry. */
  signedDigest: string;
  signature?: Buffer;
  fingerprint?: string;
}

export interface AppendedSignature {
  /** The 64-byte Ed25519 signature over the signable digest. */
  signature: Buffer;
  fingerprint: string;
  /** The file's size after signing. */
  outputSize: number;
}

export interface PublicKeyInfo {
  /** The raw 32-byte key. */
  publicKey: Buffer;
  /** SPKI PEM, as `openssl pkey -pubout` writes it. */
  publicKeyPem: string;
  /** Lowercase hex SHA-256 of the raw key. */
  fingerprint: string;
}

/** One tar entry as read, fields as written (the verifier judges them). */
export interface TarEntryFact {
  /** Effective name: PAX `path`, else `prefix/name`, else `name`. */
  name: string;
  /** The typeflag byte as a one-character string (`'\0'` for an old-style regular file). */
  type: string;
  /** The size field (header-only types carry no content whatever it says). */
  size: number;
  linkname: string;
  /** False when the name or link target is not valid UTF-8 (then they are shown lossily). */
  validUtf8: boolean;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Magic `ustar\0` and version `00`. */
  ustar: boolean;
  /** Offset of the entry's own header block in the tar. */
  offset: number;
  /** Keys of the PAX records applied to this entry, in order. */
  paxKeys: string[];
  /** Lowercase hex SHA-256 of the content, for regular files. */
  sha256?: string;
}

export interface PackageFacts {
  entries: TarEntryFact[];
  manifest?: Buffer;
  filesJson?: Buffer;
  signature?: Buffer;
  /** SHA-256 (hex) of the tar bytes before the signature entry's header; absent when unsigned. */
  signedDigest?: string;
  /**
   * Unsigned packages only: SHA-256 (hex) of the tar bytes before the end-of-archive marker, i.e.
   * what a signature entry appended there would cover (§4.2). Computed in the same pass.
   */
  signableDigest?: string;
  zeroBlocks: number;
  trailingData: boolean;
  truncated: boolean;
  tarSize: number;
  compressedSize: number;
  /** Reading stopped after the first two entries (`metadataOnly`). */
  partial: boolean;
}

export interface ReadPackageOptions {
  /** The file is zstd-compressed (default) or a plain tar. */
  compressed?: boolean;
  /** Stop after the first two entries. */
  metadataOnly?: boolean;
  /** Decompressed-size bound (default 4 GiB). */
  maxBytes?: number;
  /** Entry-count bound (default 100,016). */
  maxEntries?: number;
}

/** The top-level members of an index document (`repository.md` §5.1). */
export interface IndexHeader {
  schemaVersion: number;
  repo: string;
  kind: string;
  indexVersion: number;
  generatedAt: string;
}

/** The fields of an index entry that rules work from; the rest stays in native memory. */
export interface IndexEntryKey {
  /** Position in the store. */
  id: number;
  name: string;
  version: string;
  architecture: string;
  /** `hash.value`. */
  hash: string;
  url: string;
}

/** A loaded index document in the store: its number, and the ids of its entries (`first`…). */
export interface IndexDocumentIds {
  doc: number;
  first: number;
  count: number;
}

/** What the store needs of a new package to make its index entry (`repository.md` §5.3). */
export interface NewIndexPackage {
  /** The package's manifest.json bytes. */
  manifest: Uint8Array;
  size: number;
  sha256: string;
  url: string;
}

export type IndexKind = 'active' | 'archive';

/** Entries of the same name in the order they are written (see `IndexStore.arrangeMerged`). */
export interface IndexGroup {
  name: string;
  ids: readonly number[];
}

type HeaderEntry =
  | { name: string; type: 'file'; size: number }
  | { name: string; type: 'directory' }
  | { name: string; type: 'symlink'; target: string };

interface RawError {
  code: string;
  message: string;
  path?: string;
  osError?: string;
}

interface RawAddon {
  zstdVersion(): string;
  sha256(data: Uint8Array): string;
  sha256File(path: string): Promise<FileDigest>;
  sha256Files(paths: string[], options?: { threads?: number; progress?: Progress }): Promise<Array<FileDigest | { error: RawError }>>;
  progressCreate(): Progress;
  progressRead(progress: Progress): { bytes: number; items: number; total: number };
  zstdCompressFile(input: string, output: string, params: ZstdParams, options?: { progress?: Progress }): Promise<ZstdTotals>;
  zstdEncoderOpen(output: string, params: ZstdParams, pledgedSize?: number): RawEncoder;
  zstdEncoderWrite(encoder: RawEncoder, data: Uint8Array): Promise<void>;
  zstdEncoderFinish(encoder: RawEncoder): Promise<ZstdTotals>;
  zstdDecompressFile(input: string, output: string, limits: DecompressLimits): Promise<ZstdTotals>;
  zstdDecompress(data: Uint8Array, limits: DecompressLimits): Buffer;
  tarEntryHeader(entry: HeaderEntry, mtime: number): Buffer;
  pack(spec: PackSpec): Promise<PackOutcome>;
  readPackage(path: string, options: ReadPackageOptions): Promise<PackageFacts>;
  appendSignature(path: string, key: SigningKey, signableDigest: string, mtime: number, expectedSize?: number): Promise<AppendedSignature>;
  indexStoreCreate(): RawIndexStore;
  indexRelease(store: RawIndexStore): void;
  indexLoad(store: RawIndexStore, path: string): Promise<{ header: IndexHeader; sha256: string; size: number; doc: number; first: number; count: number }>;
  indexInspect(path: string): Promise<{ header: IndexHeader; sha256: string; size: number }>;
  indexKeys(store: RawIndexStore, ids: Uint32Array): string;
  indexDocumentKeys(store: RawIndexStore, doc: number): Promise<string>;
  indexNamed(store: RawIndexStore, doc: number, names: string[]): number[];
  indexUrlHolders(store: RawIndexStore, doc: number, urls: string[]): number[];
  indexAddPackages(store: RawIndexStore, packages: NewIndexPackage[]): number;
  indexCheckActive(store: RawIndexStore, activeDoc: number, archiveDoc: number): Promise<string[]>;
  indexArrange(store: RawIndexStore, archive: Uint32Array, active: Uint32Array): void;
  indexArrangeMerged(store: RawIndexStore, doc: number | undefined, names: string[], ids: Uint32Array, lengths: Uint32Array): boolean;
  indexWrite(store: RawIndexStore, path: string, header: IndexHeader, kind: IndexKind): Promise<{ sha256: string; size: number }>;
  indexWriteSiteScript(store: RawIndexStore, path: string, indexVersion: number, generatedAt: string): Promise<void>;
  indexSiteRows(store: RawIndexStore, ids: Uint32Array, activeIds: Uint32Array): Promise<string>;
  signingKeyLoad(path: string): SigningKey;
  signingKeyFromBytes(bytes: Uint8Array): SigningKey;
  signingKeyInfo(key: SigningKey): PublicKeyInfo;
  ed25519Sign(key: SigningKey, message: Uint8Array): Buffer;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  publicKeyParse(bytes: Uint8Array): PublicKeyInfo;
  elfSign(path: string, key: SigningKey): Promise<void>;
  elfVerify(path: string, publicKey: Uint8Array): Promise<boolean>;
  dirLockTry(path: string): RawLock;
  dirLockWait(path: string, timeoutMs: number): Promise<RawLock>;
  dirLockRelease(lock: RawLock): void;
  dirLockHeld(lock: RawLock): boolean;
  renameExchange(a: string, b: string): void;
  fsyncPath(path: string): void;
  removeTree(path: string): Promise<void>;
  removeTreeSync(path: string): void;
  swappedOwnerView(path: string, uid: number, gid: number): number;
}

/** `linux-x64-gnu`, `linux-arm64-gnu`, … (the napi-rs naming of platform packages). */
export function platformTriple(): string {
  let libc = '';
  if (process.platform === 'linux') {
    libc = '-gnu';
    try {
      if (readFileSync('/usr/bin/ldd', 'latin1').includes('musl')) libc = '-musl';
    } catch {
      const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
      if (report && !report.header?.glibcVersionRuntime) libc = '-musl';
    }
  }
  return `${process.platform}-${process.arch}${libc}`;
}

const packageRoot = fileURLToPath(new URL('..', import.meta.url));

function loadAddon(): RawAddon {
  const require = createRequire(import.meta.url);
  const triple = platformTriple();
  const candidates = [
    process.env.PEIPKG_NATIVE_PATH,
    `${packageRoot}native/peipkg-native.${triple}.node`,
    `peipkg-${triple}`,
  ].filter((c): c is string => Boolean(c));
  const failures: string[] = [];
  for (const candidate of candidates) {
    try {
      return require(candidate) as RawAddon;
    } catch (error) {
      const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      failures.push(`  ${candidate}: ${reason}`);
    }
  }
  throw new InternalError(
    `peipkg: no native addon loads for ${triple}. Tried:\n${failures.join('\n')}\n` +
      `Install the package for this platform (npm installs peipkg-${triple} automatically), ` +
      `or build it from a checkout with \`npm run build:native\`.`,
  );
}

const addon = loadAddon();

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (error) {
    throw fromNative(error);
  }
}

async function callAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (error) {
    throw fromNative(error);
  }
}

/** The bundled libzstd's version (1.5.4). */
export const zstdVersion = (): string => call(() => addon.zstdVersion());

export const sha256 = (data: Uint8Array): string => call(() => addon.sha256(data));

export const sha256File = (path: string): Promise<FileDigest> => callAsync(() => addon.sha256File(path));

/** Hashes many files across all cores; each result is a digest or the error for that file. */
export async function sha256Files(
  paths: string[],
  options: { threads?: number; progress?: Progress } = {},
): Promise<Array<FileDigest | { error: PeipkgError }>> {
  const results = await callAsync(() => addon.sha256Files(paths, options));
  return results.map((r) => ('error' in r ? { error: fromNative(r.error) } : r));
}

export const createProgress = (): Progress => call(() => addon.progressCreate());
/** `total` is the bytes the work expects, once it has learned that itself (`sha256Files` does); 0 before. */
export const readProgress = (progress: Progress): { bytes: number; items: number; total: number } => call(() => addon.progressRead(progress));

export const compressFile = (input: string, output: string, params: ZstdParams, options: { progress?: Progress } = {}): Promise<ZstdTotals> =>
  callAsync(() => addon.zstdCompressFile(input, output, params, options));

export const decompressFile = (input: string, output: string, limits: DecompressLimits): Promise<ZstdTotals> =>
  callAsync(() => addon.zstdDecompressFile(input, output, limits));

export const decompress = (data: Uint8Array, limits: DecompressLimits): Buffer => call(() => addon.zstdDecompress(data, limits));

/**
 * A zstd file written chunk by chunk. Writes are queued in call order, so callers may fire them
 * without awaiting each one; `finish` waits for all of them.
 */
export class ZstdFileWriter {
  private pending: Promise<void> = Promise.resolve();

  private constructor(private readonly encoder: RawEncoder) {}

  /** Creates `path` (which must not exist). `pledgedSize`, when known, goes into the frame header. */
  static open(path: string, params: ZstdParams, pledgedSize?: number): ZstdFileWriter {
    return new ZstdFileWriter(call(() => addon.zstdEncoderOpen(path, params, pledgedSize)));
  }

  write(chunk: Uint8Array): Promise<void> {
    const next = this.pending.then(() => callAsync(() => addon.zstdEncoderWrite(this.encoder, chunk)));
    this.pending = next.catch(() => undefined);
    return next;
  }

  async finish(): Promise<ZstdTotals> {
    await this.pending;
    return callAsync(() => addon.zstdEncoderFinish(this.encoder));
  }
}

/** The 512-byte header block(s) the core writes for one entry (PAX header included when needed). */
export const tarEntryHeader = (entry: HeaderEntry, mtime: number): Buffer => call(() => addon.tarEntryHeader(entry, mtime));

/** Streams entries → tar → zstd into `spec.output`, signing when a key is given. */
export const pack = (spec: PackSpec): Promise<PackOutcome> => callAsync(() => addon.pack(spec));

/** Reads a package in one streaming pass and reports what it holds (see `format/verify.ts`). */
export const readPackage = (path: string, options: ReadPackageOptions = {}): Promise<PackageFacts> =>
  callAsync(() => addon.readPackage(path, options));

/**
 * Signs, in place, an unsigned package written with `deferredSignature` (`crates/peipkg-native/src/deferred.rs`):
 * walks its zstd frames by their headers only, requires at least two and a last one holding
 * exactly the 1024 zero bytes of the end-of-archive trailer, and replaces that last frame by one
 * holding the `.peipkg/signature` entry (Ed25519 over `signableDigest`, entry mtime `mtime`) and
 * the trailer; then fsyncs. Anything else is refused with `CorruptDataError` (or
 * `FileChangedError` when `expectedSize` no longer matches) and the file is left as it was.
 * It trusts `signableDigest`: use `signDeferredPackage` (format/deferredSignature.ts), which verifies first.
 */
export const appendSignature = (path: string, key: SigningKey, signableDigest: string, options: { mtime: number; expectedSize?: number }): Promise<AppendedSignature> =>
  callAsync(() => addon.appendSignature(path, key, signableDigest, options.mtime, options.expectedSize));

/**
 * The repository indexes of one command, held in native memory (`crates/peipkg-native/src/index_store.rs`):
 * documents are read and parsed once, checked and written there; JavaScript gets keys only for the
 * entries a rule needs.
 */
export class IndexStore {
  private constructor(private readonly raw: RawIndexStore) {}

  static create(): IndexStore {
    return new IndexStore(call(() => addon.indexStoreCreate()));
  }

  /** Drops (unmaps) every document now; the store is empty afterwards and its ids are void. */
  release(): void {
    call(() => addon.indexRelease(this.raw));
  }

  /** Adds a document; returns its header, the SHA-256 of its bytes, and where its entries are. */
  load(path: string): Promise<{ header: IndexHeader; sha256: string; size: number } & IndexDocumentIds> {
    return callAsync(() => addon.indexLoad(this.raw, path));
  }

  private decodeKeys(ids: readonly number[], text: string): IndexEntryKey[] {
    const fields = text.split('\0');
    return ids.map((id, i) => {
      const f = i * 5;
      return { id, name: fields[f]!, version: fields[f + 1]!, architecture: fields[f + 2]!, hash: fields[f + 3]!, url: fields[f + 4]! };
    });
  }

  /** The keys of the entries `ids`. */
  keys(ids: readonly number[]): IndexEntryKey[] {
    return this.decodeKeys(ids, call(() => addon.indexKeys(this.raw, Uint32Array.from(ids))));
  }

  /** The keys of every entry of a loaded document, in its order (for the rare whole-archive walks). */
  async documentKeys(doc: IndexDocumentIds): Promise<IndexEntryKey[]> {
    const text = await callAsync(() => addon.indexDocumentKeys(this.raw, doc.doc));
    return this.decodeKeys(Array.from({ length: doc.count }, (_, i) => doc.first + i), text);
  }

  /** The keys of the entries of `doc` named one of `names`, in document order. */
  named(doc: IndexDocumentIds, names: readonly string[]): IndexEntryKey[] {
    return this.keys(call(() => addon.indexNamed(this.raw, doc.doc, [...names])));
  }

  /** For each URL, the keys of the first entry of `doc` that has it. */
  urlHolders(doc: IndexDocumentIds, urls: readonly string[]): Array<IndexEntryKey | undefined> {
    const ids = call(() => addon.indexUrlHolders(this.raw, doc.doc, [...urls]));
    const keys = this.keys(ids.filter((id) => id >= 0));
    let next = 0;
    return ids.map((id) => (id >= 0 ? keys[next++] : undefined));
  }

  /** Makes the index entries of new packages (the one encoder of entries is native); their ids. */
  addPackages(packages: readonly NewIndexPackage[]): number[] {
    const first = call(() => addon.indexAddPackages(this.raw, [...packages]));
    return packages.map((_, i) => first + i);
  }

  /** Active ⊆ archive with equal hashes, and unique active names: the problems, as verify words them. */
  checkActive(active: IndexDocumentIds, archive: IndexDocumentIds): Promise<string[]> {
    return callAsync(() => addon.indexCheckActive(this.raw, active.doc, archive.doc));
  }

  /** Sets the order of the documents `write` writes. */
  arrange(archive: readonly number[], active: readonly number[]): void {
    call(() => addon.indexArrange(this.raw, Uint32Array.from(archive), Uint32Array.from(active)));
  }

  /**
   * Sets the order of the documents `write` writes from the archive `doc` (in archive order) and
   * `groups`: each group replaces the archive's entries of its name, or joins where its name sorts;
   * active is the first entry of each name. False, arranging nothing, when the archive's names are
   * not in byte order (the caller then orders every entry).
   */
  arrangeMerged(doc: IndexDocumentIds | undefined, groups: readonly IndexGroup[]): boolean {
    return call(() =>
      addon.indexArrangeMerged(
        this.raw,
        doc?.doc,
        groups.map((g) => g.name),
        Uint32Array.from(groups.flatMap((g) => g.ids)),
        Uint32Array.from(groups.map((g) => g.ids.length)),
      ),
    );
  }

  /** Writes the arranged document `kind` canonically to a new file (fsynced). */
  write(path: string, header: IndexHeader, kind: IndexKind): Promise<{ sha256: string; size: number }> {
    return callAsync(() => addon.indexWrite(this.raw, path, header, kind));
  }

  /** Writes the browse site's `assets/packages.js` for the arranged archive to a new file (fsynced). */
  writeSiteScript(path: string, indexVersion: number, generatedAt: string): Promise<void> {
    return callAsync(() => addon.indexWriteSiteScript(this.raw, path, indexVersion, generatedAt));
  }

  /** The browse site's rows for `ids`: JSON text of `{columns, rows}`, columns naming each row's cells. */
  siteRows(ids: readonly number[], activeIds: readonly number[]): Promise<string> {
    return callAsync(() => addon.indexSiteRows(this.raw, Uint32Array.from(ids), Uint32Array.from(activeIds)));
  }
}

/** An index document's header, SHA-256 and size, without keeping its entries. */
export const inspectIndex = (path: string): Promise<{ header: IndexHeader; sha256: string; size: number }> =>
  callAsync(() => addon.indexInspect(path));

export const loadSigningKey = (path: string): SigningKey => call(() => addon.signingKeyLoad(path));
export const signingKeyFromBytes = (bytes: Uint8Array): SigningKey => call(() => addon.signingKeyFromBytes(bytes));
export const signingKeyInfo = (key: SigningKey): PublicKeyInfo => call(() => addon.signingKeyInfo(key));
export const sign = (key: SigningKey, message: Uint8Array): Buffer => call(() => addon.ed25519Sign(key, message));

/** `publicKey`: 32 raw bytes or the bytes of an SPKI PEM. */
export const verifySignature = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean =>
  call(() => addon.ed25519Verify(publicKey, message, signature));

/** Reads a public key file's bytes (32 raw bytes or SPKI PEM). */
export const parsePublicKey = (bytes: Uint8Array): PublicKeyInfo => call(() => addon.publicKeyParse(bytes));

/**
 * Appends a `.peios.sig` section to the little-endian ELF64 at `path` (`package-format.md` §7.5),
 * in place, keeping its mode. Refuses symlinks, other ELF classes, and files already signed.
 */
export const signElf = (path: string, key: SigningKey): Promise<void> => callAsync(() => addon.elfSign(path, key));

/** Whether the `.peios.sig` of the ELF at `path` verifies with `publicKey` (raw or SPKI PEM). */
export const verifyElf = (path: string, publicKey: Uint8Array): Promise<boolean> => callAsync(() => addon.elfVerify(path, publicKey));

/** An exclusive `flock` on a directory, dropped by `release()` or when the process ends. */
export class DirLock {
  private constructor(private readonly raw: RawLock) {}

  /** Takes the lock or throws `LockedError` at once. */
  static acquire(path: string): DirLock {
    return new DirLock(call(() => addon.dirLockTry(path)));
  }

  /** Waits up to `timeoutMs` for the lock, then throws `LockedError`. */
  static async acquireWithin(path: string, timeoutMs: number): Promise<DirLock> {
    return new DirLock(await callAsync(() => addon.dirLockWait(path, timeoutMs)));
  }

  get held(): boolean {
    return call(() => addon.dirLockHeld(this.raw));
  }

  release(): void {
    call(() => addon.dirLockRelease(this.raw));
  }
}

/** Swaps two existing paths atomically (`renameat2(RENAME_EXCHANGE)`). */
export const exchangePaths = (a: string, b: string): void => call(() => addon.renameExchange(a, b));

/** fsync of a file, or of a directory to make renames inside it durable. */
export const fsyncPath = (path: string): void => call(() => addon.fsyncPath(path));

/**
 * Removes `path` and everything below it, like `rm -rf` (`crates/peipkg-native/src/remove.rs`):
 * relative to directory descriptors, so a tree nested deeper than PATH_MAX — which `fs.rm` fails on
 * with `ENAMETOOLONG`, leaving it behind — goes too. Symlinks are removed, never followed;
 * directories without permission bits are opened up first; a missing `path` is already removed.
 * Use it for every tree a build script could have filled.
 */
export const removeTree = (path: string): Promise<void> => callAsync(() => addon.removeTree(path));

/** `removeTree` for signal handlers and other places that cannot wait. */
export const removeTreeSync = (path: string): void => call(() => addon.removeTreeSync(path));
/**
 * A descriptor of a read-only, detached, idmapped view of `path` in which root's files belong to
 * `uid`:`gid` (and theirs to root); the caller closes it. Root only; throws where the kernel lacks
 * idmapped mounts.
 */
export const swappedOwnerView = (path: string, uid: number, gid: number): number => call(() => addon.swappedOwnerView(path, uid, gid));

/** The raw addon, for tests that check how it treats values TypeScript would not allow. */
export const rawAddonForTests: unknown = addon;
