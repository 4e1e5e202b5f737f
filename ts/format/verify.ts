/**
 * The package verifier (`package-format.md` §8): the rules, applied to the facts the native
 * reader reports. Used by `peipkg-build verify` and by `peipkg-repo publish` for every new package.
 * It reports every problem it finds at once; nothing is extracted or trusted before all pass.
 */

import { CorruptDataError, InputError, LimitExceededError } from '../errors.js';
import { readPackage, verifySignature, type PackageFacts, type TarEntryFact } from '../native.js';
import { decodeEnvelope, encodeEnvelope } from './envelope.js';
import { decodeFiles, encodeFiles, type FileRecord } from './files.js';
import { parseStrictJson } from './json.js';
import { decodeManifest, encodeManifest, manifestProblems, type Manifest } from './manifest.js';
import { compareUtf8 } from './order.js';
import { layoutProblem, payloadPathProblem, symlinkLayoutProblem, symlinkTargetProblem } from './paths.js';
import { timestampProblem, timestampSeconds } from './timestamp.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** §8.1: decompressed bytes, absolute and relative to what the manifest declares. */
const MAX_DECOMPRESSED = 4 * GiB;
const HEADER_ALLOWANCE = 320 * MiB;
const MAX_PAYLOAD_ENTRIES = 100_000;

const MANIFEST = '.peipkg/manifest.json';
const FILES = '.peipkg/files.json';
const SIGNATURE = '.peipkg/signature';

export type SignatureStatus =
  | { state: 'unsigned' }
  | { state: 'verified'; fingerprint: string }
  /** Signed, but no trusted keys were given to check it against. */
  | { state: 'unchecked'; fingerprint: string };

export interface VerifiedPackage {
  path: string;
  manifest: Manifest;
  files: FileRecord[];
  signature: SignatureStatus;
  facts: PackageFacts;
}

export interface VerifyOptions {
  /** Public keys (32 raw bytes) by fingerprint; a signature must verify against one of them. */
  trustedKeys?: ReadonlyMap<string, Uint8Array>;
  /** Refuse unsigned packages. */
  requireSigned?: boolean;
  /** §8.6: layout, symlink containment, header determinism, canonical metadata. */
  strict?: boolean;
}

/** A package that breaks the format; `problems` lists every rule it breaks. */
export class PackageRejectedError extends InputError {
  constructor(
    readonly path: string,
    readonly problems: string[],
  ) {
    super(`${path}: not a valid package:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

const isFile = (e: TarEntryFact): boolean => e.type === '0' || e.type === '\0';

function parseJson(bytes: Buffer | undefined, name: string, problems: string[]): unknown {
  if (bytes === undefined) return undefined;
  try {
    return parseStrictJson(bytes);
  } catch (error) {
    problems.push(`${name}: ${(error as Error).message}`);
    return undefined;
  }
}

function headerProblems(e: TarEntryFact, strict: boolean, mtime: number | undefined): string[] {
  const out: string[] = [];
  const at = `${e.name} (tar offset ${e.offset})`;
  if (!e.ustar) out.push(`${at}: header magic is not "ustar\\0" version "00"`);
  if ((e.mode & 0o7777) !== 0o777) out.push(`${at}: mode ${(e.mode & 0o7777).toString(8)} is not 0777`);
  if (!e.validUtf8) out.push(`${at}: name or link target is not valid UTF-8`);
  const unknownPax = e.paxKeys.filter((k) => k !== 'path' && k !== 'linkpath');
  if (unknownPax.length > 0) out.push(`${at}: PAX records other than path and linkpath (${unknownPax.join(', ')})`);
  for (const key of ['path', 'linkpath']) {
    if (e.paxKeys.filter((k) => k === key).length > 1) out.push(`${at}: PAX record ${key} appears more than once`);
  }
  if (strict) {
    if (e.uid !== 0 || e.gid !== 0 || e.uname !== 'root' || e.gname !== 'root') out.push(`${at}: owner is not root:root (0:0)`);
    if (mtime !== undefined && e.mtime !== mtime) out.push(`${at}: mtime ${e.mtime} is not build.timestamp (${mtime})`);
    if (e.devmajor !== 0 || e.devminor !== 0) out.push(`${at}: device numbers are not 0`);
    if ((e.type === '5' || e.type === '2') && e.size !== 0) out.push(`${at}: size of a ${e.type === '5' ? 'directory' : 'symlink'} is not 0`);
    if (e.type === '5' && !e.name.endsWith('/')) out.push(`${at}: directory name does not end in /`);
  }
  return out;
}

/** The checks of §8.2 (and §8.6 when strict) over facts, with manifest and files.json decoded. */
function checkEntries(facts: PackageFacts, manifest: Manifest, files: FileRecord[], strict: boolean, problems: string[]): void {
  const mtime = timestampProblem(manifest.build.timestamp) === undefined ? timestampSeconds(manifest.build.timestamp) : undefined;
  const records = new Map(files.map((f) => [f.path, f]));
  const matched = new Set<string>();
  let previous: string | undefined;
  let payloadCount = 0;
  let signatureSeen = false;
  for (const [i, e] of facts.entries.entries()) {
    problems.push(...headerProblems(e, strict, mtime));
    if (i < 2) continue;
    if (signatureSeen) {
      problems.push(`${e.name}: entry after .peipkg/signature (nothing but the end-of-archive marker may follow it)`);
      continue;
    }
    if (e.name === SIGNATURE) {
      signatureSeen = true;
      if (!isFile(e)) problems.push(`${SIGNATURE}: not a regular file`);
      if (e.paxKeys.length > 0) problems.push(`${SIGNATURE}: has a PAX header (the signed range would be ambiguous)`);
      continue;
    }
    if (e.name.startsWith('.peipkg/')) {
      if (previous !== undefined) problems.push(`${e.name}: metadata entry after payload entries`);
      continue;
    }
    payloadCount++;
    if (!['0', '\0', '5', '2'].includes(e.type)) {
      problems.push(`${e.name}: entry type ${JSON.stringify(e.type)} is not a file, directory or symlink`);
      continue;
    }
    const path = e.type === '5' && e.name.endsWith('/') ? e.name.slice(0, -1) : e.name;
    const pathProblem = payloadPathProblem(path);
    if (pathProblem) problems.push(`${e.name}: ${pathProblem}`);
    if (previous !== undefined && compareUtf8(previous, e.name) >= 0) {
      problems.push(`${e.name}: payload entries are not sorted (it must come after ${previous})`);
    }
    previous = e.name;
    if (isFile(e)) {
      const record = records.get(e.name);
      if (!record) problems.push(`${e.name}: regular file missing from files.json`);
      else {
        matched.add(e.name);
        if (record.size !== e.size) problems.push(`${e.name}: size ${e.size} differs from files.json (${record.size})`);
        if (record.sha256 !== e.sha256) problems.push(`${e.name}: SHA-256 ${e.sha256 ?? '?'} differs from files.json (${record.sha256})`);
      }
    } else if (e.type === '2') {
      const target = symlinkTargetProblem(path, e.linkname);
      if (target) problems.push(`${e.name}: ${target}`);
    }
    if (strict && !pathProblem) {
      const kind = isFile(e) ? 'file' : e.type === '5' ? 'directory' : 'symlink';
      // Derived ancestor directories are not layout-checked by the producer; only leaves are.
      const layout = kind === 'directory' ? undefined : layoutProblem(path, kind, manifest.architecture);
      if (layout) problems.push(`layout${layout}`);
      if (kind === 'symlink') {
        const containment = symlinkLayoutProblem(path, e.linkname);
        if (containment) problems.push(`layout${containment}`);
      }
    }
  }
  if (payloadCount > MAX_PAYLOAD_ENTRIES) problems.push(`more than ${MAX_PAYLOAD_ENTRIES} payload entries`);
  for (const f of files) if (!matched.has(f.path)) problems.push(`files.json lists ${f.path}, which the payload does not contain`);
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total !== manifest.sizeInstalled) problems.push(`manifest size_installed ${manifest.sizeInstalled} is not the sum of files.json sizes (${total})`);
  if (facts.truncated) problems.push('the archive does not end with two zero blocks');
  if (facts.trailingData) problems.push('data follows the end-of-archive marker');
  if (strict && facts.zeroBlocks !== 2) problems.push(`the archive ends with ${facts.zeroBlocks} zero blocks, not exactly 2`);
}

function checkSignature(facts: PackageFacts, options: VerifyOptions, strict: boolean, problems: string[]): SignatureStatus {
  if (facts.signature === undefined) {
    if (options.requireSigned) problems.push('the package is unsigned, and signed packages are required');
    return { state: 'unsigned' };
  }
  const envelope = decodeEnvelope(facts.signature);
  if ('problem' in envelope) {
    problems.push(`${SIGNATURE}: ${envelope.problem}`);
    return { state: 'unsigned' };
  }
  if (strict && encodeEnvelope(envelope.fingerprint, envelope.signature) !== facts.signature.toString('utf8')) {
    problems.push(`${SIGNATURE}: envelope is not in canonical form`);
  }
  if (options.trustedKeys === undefined) return { state: 'unchecked', fingerprint: envelope.fingerprint };
  const key = options.trustedKeys.get(envelope.fingerprint);
  if (!key) {
    problems.push(`signed by key ${envelope.fingerprint}, which is not a trusted key`);
    return { state: 'unchecked', fingerprint: envelope.fingerprint };
  }
  const digest = Buffer.from(facts.signedDigest ?? '', 'hex');
  if (!verifySignature(key, digest, envelope.signature)) {
    problems.push(`the signature by key ${envelope.fingerprint} does not verify (the package was changed after signing)`);
  }
  return { state: 'verified', fingerprint: envelope.fingerprint };
}

async function read(path: string, options: { metadataOnly?: boolean; maxBytes?: number }): Promise<PackageFacts> {
  try {
    return await readPackage(path, options);
  } catch (error) {
    if (error instanceof CorruptDataError || error instanceof LimitExceededError) throw new PackageRejectedError(path, [error.message]);
    throw error;
  }
}

/** Verifies the package at `path`; throws `PackageRejectedError` listing every problem. */
export async function verifyPackage(path: string, options: VerifyOptions = {}): Promise<VerifiedPackage> {
  const strict = options.strict ?? false;
  const problems: string[] = [];
  // Pass 1: the metadata alone, to bound pass 2 by what the manifest declares (§8.1).
  const head = await read(path, { metadataOnly: true, maxBytes: MAX_DECOMPRESSED });
  const [first, second] = head.entries;
  if (!first || first.name !== MANIFEST || !isFile(first)) problems.push(`the first entry must be the regular file ${MANIFEST}`);
  if (!second || second.name !== FILES || !isFile(second)) problems.push(`the second entry must be the regular file ${FILES}`);
  if (problems.length > 0) throw new PackageRejectedError(path, problems);
  const manifestDoc = parseJson(head.manifest, 'manifest.json', problems);
  const filesDoc = parseJson(head.filesJson, 'files.json', problems);
  const decodedManifest = manifestDoc === undefined ? undefined : decodeManifest(manifestDoc);
  const decodedFiles = filesDoc === undefined ? undefined : decodeFiles(filesDoc);
  if (decodedManifest && 'problems' in decodedManifest) problems.push(...decodedManifest.problems);
  if (decodedFiles && 'problems' in decodedFiles) problems.push(...decodedFiles.problems);
  if (!decodedManifest || 'problems' in decodedManifest || !decodedFiles || 'problems' in decodedFiles) {
    throw new PackageRejectedError(path, problems);
  }
  const { manifest } = decodedManifest;
  const { files } = decodedFiles;
  problems.push(...manifestProblems(manifest, 'reader').map((p) => `manifest.json: ${p}`));
  if (strict) {
    if (encodeManifest(manifest) !== head.manifest?.toString('utf8')) problems.push('manifest.json is not in canonical form');
    if (encodeFiles(files) !== head.filesJson?.toString('utf8')) problems.push('files.json is not in canonical form');
  }

  // Pass 2: everything, bounded by size_installed plus room for headers and padding.
  const facts = await read(path, { maxBytes: Math.min(MAX_DECOMPRESSED, manifest.sizeInstalled + HEADER_ALLOWANCE) });
  checkEntries(facts, manifest, files, strict, problems);
  const signature = checkSignature(facts, options, strict, problems);
  if (problems.length > 0) throw new PackageRejectedError(path, problems);
  return { path, manifest, files, signature, facts };
}
