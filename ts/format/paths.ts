/**
 * Payload path rules, shared by the producer and the verifier:
 * - validity of every path and symlink target (`package-format.md` §5.1, §5.2);
 * - the layout rules `build` enforces (§5.3), worded as the reference words them
 *   (`recipes-and-farm.md` §4.7), so messages can be prefixed with `package <name>`.
 * Paths here are slash-separated, relative, and carry no trailing `/` (directories included).
 */

export const MAX_PATH_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
export const MAX_COMPONENTS = 256;

/** Top levels a file or symlink may live under (the reference adds `system/` to §3.4.1). */
export const PERMITTED_PREFIXES = ['usr/bin/', 'usr/lib/', 'usr/share/', 'usr/include/', 'etc/', 'var/', 'opt/', 'boot/', 'system/'];
/** Roots that may ship as explicit (empty) directories only. */
export const DIRECTORY_ONLY_ROOTS = ['dev', 'proc', 'run', 'sys', 'tmp'];

const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\]/u;

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Whether a JS string holds a lone surrogate (it would not encode as valid UTF-8). */
function hasLoneSurrogate(s: string): boolean {
  return !s.isWellFormed();
}

/** Character rules shared by paths and symlink targets; returns the reason or undefined. */
function characterProblem(s: string): string | undefined {
  if (hasLoneSurrogate(s)) return 'is not valid UTF-8';
  if (FORBIDDEN_CHARS.test(s)) return 'contains a control character or a backslash';
  if (s.normalize('NFC') !== s) return 'is not in Unicode NFC';
  return undefined;
}

/** §5.1: why `path` (no trailing slash) is not a valid payload path, or undefined. */
export function payloadPathProblem(path: string): string | undefined {
  if (path === '') return 'path is empty';
  if (byteLength(path) > MAX_PATH_BYTES) return `path is longer than ${MAX_PATH_BYTES} bytes`;
  if (path.startsWith('/')) return 'path is absolute';
  if (path === '.peipkg' || path.startsWith('.peipkg/')) return 'path is inside .peipkg/, which is reserved for metadata';
  const chars = characterProblem(path);
  if (chars) return `path ${chars}`;
  const parts = path.split('/');
  if (parts.length > MAX_COMPONENTS) return `path has more than ${MAX_COMPONENTS} components`;
  for (const part of parts) {
    if (part === '') return 'path has an empty component';
    if (part === '.' || part === '..') return `path has a "${part}" component`;
    if (byteLength(part) > MAX_COMPONENT_BYTES) return `path has a component longer than ${MAX_COMPONENT_BYTES} bytes`;
  }
  return undefined;
}

/** Go's `path.Clean`: a lexical tidy-up that never touches the disk. */
export function cleanPath(path: string): string {
  const rooted = path.startsWith('/');
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** The link's directory joined with its target, cleaned: where a relative symlink points. */
export function resolveSymlink(linkPath: string, target: string): string {
  const slash = linkPath.lastIndexOf('/');
  const dir = slash < 0 ? '' : linkPath.slice(0, slash);
  return cleanPath(dir === '' ? target : `${dir}/${target}`);
}

/** §5.2, the verifier's default check: relative, non-empty, valid characters, not climbing out. */
export function symlinkTargetProblem(linkPath: string, target: string): string | undefined {
  if (target === '') return 'symlink target is empty';
  if (target.startsWith('/')) return 'symlink target is absolute';
  const chars = characterProblem(target);
  if (chars) return `symlink target ${chars}`;
  const resolved = resolveSymlink(linkPath, target);
  if (resolved === '..' || resolved.startsWith('../')) return 'symlink target climbs above the package root';
  return undefined;
}

export function isUnderPermittedPrefix(path: string): boolean {
  return PERMITTED_PREFIXES.some((p) => path === p.slice(0, -1) || path.startsWith(p));
}

export type LeafKind = 'file' | 'symlink' | 'directory';

/**
 * §5.3 for one claimed leaf, worded as the reference does. The result is what follows
 * `package <name>` in the message (it starts with `:` or ` (architecture=…):`).
 */
export function layoutProblem(path: string, kind: LeafKind, architecture: string): string | undefined {
  if (kind === 'directory') {
    if (isUnderPermittedPrefix(path) || DIRECTORY_ONLY_ROOTS.includes(path)) return undefined;
    return `: directory ${path} is not under any §3.4.1 permitted top-level destination or permitted runtime mountpoint root`;
  }
  if (!isUnderPermittedPrefix(path)) return `: ${path} is not under any §3.4.1 permitted top-level destination`;
  if (path === 'var' || path.startsWith('var/')) {
    return `: ${path} installs populated content under /var/ (§3.4.4 forbids this; only empty directories are permitted under /var/)`;
  }
  if (path.startsWith('usr/lib/')) {
    const rest = path.slice('usr/lib/'.length).split('/');
    if (rest.length === 1) return `: ${path} sits directly under /usr/lib/ (§3.4.2 requires /usr/lib/<triplet>/<...>)`;
    if (architecture === 'noarch') {
      return `: noarch package contains arch-specific path ${path} (§3.4.2 forbids /usr/lib/<triplet>/ entries in noarch packages)`;
    }
    const triplet = rest[0] ?? '';
    if (triplet !== `${architecture}-linux-peios`) {
      return ` (architecture="${architecture}"): ${path} uses triplet "${triplet}", expected "${architecture}-linux-peios" (§3.4.2)`;
    }
  }
  return undefined;
}

/** The symlink-target rules `build` applies (§4.7), worded as the reference does (after `package <name>`). */
export function symlinkLayoutProblem(linkPath: string, target: string): string | undefined {
  const head = `: symlink ${linkPath}`;
  if (target === '') return `${head} has empty target`;
  if (target.startsWith('/')) return `${head} -> ${target}: absolute targets forbidden (§3.4 requires relative)`;
  if (characterProblem(target)) return `${head} -> ${JSON.stringify(target)}: target contains forbidden bytes (§3.4 path-validity)`;
  const resolved = resolveSymlink(linkPath, target);
  if (resolved === '..' || resolved.startsWith('../')) return `${head} -> ${target}: target escapes the peipkg-managed tree (§3.4)`;
  if (!isUnderPermittedPrefix(resolved)) {
    return `${head} -> ${target} resolves to "${resolved}", which is not under a §3.4.1 permitted destination`;
  }
  return undefined;
}
