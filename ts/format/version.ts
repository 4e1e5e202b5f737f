/**
 * Peios version strings `[epoch:]upstream-revision`: validation and ordering.
 *
 * The ordering is the spec / reference-client rule (package-format.md §1.3; DECISIONS.md "Version
 * comparison"): a pre-release tail, once started by `~` or a recognised token, runs to the end of
 * the upstream, and numbers compare unbounded. It deliberately does NOT copy the reference repo
 * tool's `-` reset or int64 clamp (repository.md §7.3), so every command orders versions alike.
 * Equal here does not mean equal strings (`007-1` = `7-1`); callers that need identity compare text.
 */

import { InputError } from '../errors.js';

export interface Version {
  readonly text: string;
  readonly epoch: bigint;
  readonly upstream: string;
  readonly revision: bigint;
}

const INT64_MAX = 9223372036854775807n;
const DIGITS = /^[0-9]+$/;
const UPSTREAM_CHAR = /^[A-Za-z0-9.+~-]$/;
const ALNUM = /^[A-Za-z0-9]$/;

type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

/** A character quoted roughly the way Go's `%q` quotes a byte, so messages match §7.1's. */
function quoteChar(c: string): string {
  const escapes: Record<string, string> = { "'": "\\'", '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  const escaped = escapes[c];
  if (escaped !== undefined) return `'${escaped}'`;
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, '0')}'`;
  return `'${c}'`;
}

/** Canonical non-negative decimal that fits int64; `what` names the field in messages. */
function checkDecimal(what: 'epoch' | 'revision', digits: string): Checked<bigint> {
  if (digits === '') return { ok: false, problem: `empty ${what}` };
  if (!DIGITS.test(digits)) return { ok: false, problem: `${what} "${digits}" is not decimal digits` };
  if (digits.length > 1 && digits.startsWith('0')) {
    return { ok: false, problem: `${what} "${digits}" has leading zero` };
  }
  const value = BigInt(digits);
  if (value > INT64_MAX) return { ok: false, problem: `${what} "${digits}" is out of range` };
  return { ok: true, value };
}

/** Epoch rules of §1.2 step 1; shared with constraint.ts, whose operands take the same epoch. */
export function splitEpoch(text: string): Checked<{ readonly epoch: bigint; readonly rest: string }> {
  const colon = text.indexOf(':');
  if (colon < 0) return { ok: true, value: { epoch: 0n, rest: text } };
  const epoch = checkDecimal('epoch', text.slice(0, colon));
  if (!epoch.ok) return epoch;
  return { ok: true, value: { epoch: epoch.value, rest: text.slice(colon + 1) } };
}

/** Revision rules of §1.2 step 2 (canonical, >= 1, int64); shared with constraint.ts. */
export function checkRevision(digits: string): Checked<bigint> {
  const revision = checkDecimal('revision', digits);
  if (revision.ok && revision.value === 0n) {
    return { ok: false, problem: 'revision 0 (must be >= 1; revision 0 is reserved)' };
  }
  return revision;
}

/** The `upstream` grammar rule; shared with constraint.ts. */
export function upstreamProblem(upstream: string): string | undefined {
  if (upstream === '') return 'empty upstream';
  if (!ALNUM.test(upstream.charAt(0))) {
    return `upstream "${upstream}": first character must be a letter or digit`;
  }
  for (const c of upstream) {
    if (!UPSTREAM_CHAR.test(c)) return `upstream "${upstream}": forbidden character ${quoteChar(c)}`;
  }
  return undefined;
}

function analyse(text: string): Checked<Version> {
  const split = splitEpoch(text);
  if (!split.ok) return split;
  const { epoch, rest } = split.value;
  const dash = rest.lastIndexOf('-');
  if (dash < 0) return { ok: false, problem: "missing peios revision (expected '<upstream>-<revision>')" };
  const upstream = rest.slice(0, dash);
  if (upstream === '') return { ok: false, problem: 'empty upstream' };
  const revision = checkRevision(rest.slice(dash + 1));
  if (!revision.ok) return revision;
  const problem = upstreamProblem(upstream);
  if (problem !== undefined) return { ok: false, problem };
  return { ok: true, value: { text, epoch, upstream, revision: revision.value } };
}

/** Returns undefined when valid, else the reason (without the `version "<s>": ` prefix). */
export function versionProblem(text: string): string | undefined {
  const result = analyse(text);
  return result.ok ? undefined : result.problem;
}

/** Throws InputError(`version "<text>": <reason>`) when invalid. */
export function parseVersion(text: string): Version {
  const result = analyse(text);
  if (!result.ok) throw new InputError(`version "${text}": ${result.problem}`);
  return result.value;
}

export function isValidVersion(text: string): boolean {
  return analyse(text).ok;
}

// ---- comparison (package-format.md §1.3) ----

type Segment =
  | { readonly kind: 'number'; readonly digits: string }
  | { readonly kind: 'alpha'; readonly text: string; readonly rank: number; readonly pre: boolean };

const TOKEN_RANKS: ReadonlyMap<string, number> = new Map([
  ['dev', 0],
  ['alpha', 1],
  ['a', 1],
  ['beta', 2],
  ['b', 2],
  ['pre', 3],
  ['rc', 4],
]);
const OTHER_RANK = 5;

const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isLetter = (c: string): boolean => (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');

/**
 * Segments of an upstream. Anything that is neither a digit, a letter nor `~` separates segments
 * without touching the pre flag: for valid upstreams that is `.`, `+`, `-`; for other text it
 * keeps the comparator total instead of throwing.
 */
function tokenise(upstream: string): Segment[] {
  const segments: Segment[] = [];
  let pre = false;
  let i = 0;
  while (i < upstream.length) {
    const c = upstream.charAt(i);
    if (isDigit(c) || isLetter(c)) {
      const same = isDigit(c) ? isDigit : isLetter;
      let end = i + 1;
      while (end < upstream.length && same(upstream.charAt(end))) end++;
      const run = upstream.slice(i, end);
      if (same === isDigit) {
        segments.push({ kind: 'number', digits: run.replace(/^0+/, '') });
      } else {
        const rank = TOKEN_RANKS.get(run.toLowerCase()) ?? OTHER_RANK;
        if (rank !== OTHER_RANK) pre = true;
        segments.push({ kind: 'alpha', text: run, rank, pre });
      }
      i = end;
    } else {
      if (c === '~') pre = true;
      i++;
    }
  }
  return segments;
}

function sign(n: number): -1 | 0 | 1 {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Byte order; upstream text is ASCII, where UTF-16 unit order equals byte order. */
function compareText(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareSegments(a: Segment, b: Segment): -1 | 0 | 1 {
  // Number against letters: a pre-release word sorts below any number, any other word above.
  if (a.kind === 'number') {
    if (b.kind === 'alpha') return b.pre ? 1 : -1;
    // Leading zeros are already stripped: longer is larger, then digit by digit.
    if (a.digits.length !== b.digits.length) return sign(a.digits.length - b.digits.length);
    return compareText(a.digits, b.digits);
  }
  if (b.kind === 'number') return a.pre ? -1 : 1;
  if (a.rank !== b.rank) return sign(a.rank - b.rank);
  // Recognised tokens of equal rank are aliases (`a` = `alpha`, any case); other words are bytes.
  return a.rank === OTHER_RANK ? compareText(a.text, b.text) : 0;
}

/** The sign for "the longer side, whose next segment is `next`, versus the shorter side". */
function extensionSign(next: Segment): -1 | 1 {
  return next.kind === 'alpha' && next.pre ? -1 : 1;
}

/** Upstream-only comparison (exported for the manager's min_version filter and for tests). */
export function compareUpstreams(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  return compareSegmentLists(tokenise(a), tokenise(b));
}

function compareSegmentLists(left: readonly Segment[], right: readonly Segment[]): -1 | 0 | 1 {
  const common = Math.min(left.length, right.length);
  for (let i = 0; i < common; i++) {
    const result = compareSegments(left[i]!, right[i]!);
    if (result !== 0) return result;
  }
  const leftNext = left[common];
  if (leftNext !== undefined) return extensionSign(leftNext);
  const rightNext = right[common];
  if (rightNext !== undefined) return extensionSign(rightNext) === 1 ? -1 : 1;
  return 0;
}

function compareIntegers(a: bigint, b: bigint): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** -1, 0, 1. Accepts parsed versions or strings (strings are parsed; invalid throws). */
export function compareVersions(a: Version | string, b: Version | string): -1 | 0 | 1 {
  const left = typeof a === 'string' ? parseVersion(a) : a;
  const right = typeof b === 'string' ? parseVersion(b) : b;
  return (
    compareIntegers(left.epoch, right.epoch) ||
    compareUpstreams(left.upstream, right.upstream) ||
    compareIntegers(left.revision, right.revision)
  );
}

/** A version tokenised once, for sorting many versions (an archive) without re-tokenising. */
export interface VersionSortKey {
  readonly epoch: bigint;
  readonly segments: readonly Segment[];
  readonly revision: bigint;
}

export function versionSortKey(v: Version): VersionSortKey {
  return { epoch: v.epoch, segments: tokenise(v.upstream), revision: v.revision };
}

/** The same order as `compareVersions`, over precomputed keys. */
export function compareSortKeys(a: VersionSortKey, b: VersionSortKey): -1 | 0 | 1 {
  return compareIntegers(a.epoch, b.epoch) || compareSegmentLists(a.segments, b.segments) || compareIntegers(a.revision, b.revision);
}
