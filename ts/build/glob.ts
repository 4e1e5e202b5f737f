/**
 * The glob matcher for recipe `files` patterns (recipes-and-farm.md §4.3, §4.4).
 *
 * It answers exactly what the reference's `doublestar.Match(pattern, name)` (github.com/bmatcuk/doublestar
 * v4) answers, because that decides which package claims each staged path. It is a port of doublestar's
 * algorithm rather than picomatch or minimatch: those libraries disagree with the reference on `a/**`
 * against the file `a`, on `[!x]`, on `./` prefixes, and they give extglob (`+(a)`, `@(a|b)`, `!(x)`) and
 * a leading `!` meanings that doublestar does not (there they are literal characters). Porting the
 * algorithm also keeps its edge cases: only a few fixed pattern tails (ZERO_LENGTH_TAILS below) may match
 * an empty remainder of the name, so `a/**` matches `a` while `a/**` followed by `/**` does not, and a
 * `{…}` is tried by substituting each alternative and matching on.
 *
 * What it does: validate a pattern once when the recipe is loaded (D-5: every pattern, not only those
 * the reference happens to try), strip the trailing slashes of a directory pattern, and match a whole
 * slash-separated relative path, case-sensitively, one Unicode code point at a time.
 *
 * What it does not do: walk the tree, decide which entries are directories, claim leaves or report
 * orphans and overlaps (that is partitioning), or normalise paths (`./x` and `/x` patterns simply never
 * match, as in the reference). One deliberate choice: a character class never matches `/`, as the §4.3
 * table states.
 */

import { InputError } from '../errors.js';

/** A pattern doublestar would reject with `ErrBadPattern`. */
export class GlobSyntaxError extends InputError {}

export interface Glob {
  /** The pattern as written in the recipe. */
  readonly pattern: string;
  /**
   * True for patterns ending in `/` (trailing slashes removed before matching): they match
   * directories only.
   */
  readonly directoryOnly: boolean;
  /** Whether the slash-separated relative path (no leading slash, no trailing slash) matches. */
  matches(path: string): boolean;
}

/** A string split into Unicode code points, which is how doublestar steps through UTF-8. */
type Runes = readonly string[];

const SEP = '/';
/** utf8.MaxRune, doublestar's "no previous character" marker inside a class. */
const MAX_RUNE = 0x10ffff;
/** More brace alternatives than this (after expanding every `{…}`) is treated as a bad pattern. */
const MAX_EXPANSIONS = 10_000;
/** Pattern tails that match an empty remainder of the name (doublestar's isZeroLengthPattern). */
const ZERO_LENGTH_TAILS = new Set(['', '*', '**', '/**', '**/', '/**/']);

function codePoint(rune: string | undefined): number {
  return rune?.codePointAt(0) ?? -1;
}

/** doublestar's ValidatePattern: escapes complete, classes closed and non-empty, braces balanced. */
function isValid(p: Runes): boolean {
  let depth = 0;
  scan: for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (++i >= p.length) return false;
    } else if (c === '[') {
      if (++i >= p.length) return false;
      if (p[i] === '^' || p[i] === '!') i++;
      if (i >= p.length || p[i] === ']') return false;
      for (; i < p.length; i++) {
        if (p[i] === '\\') i++;
        else if (p[i] === ']') continue scan;
      }
      return false;
    } else if (c === '{') {
      depth++;
    } else if (c === '}') {
      if (depth === 0) return false;
      depth--;
    }
  }
  return depth === 0;
}

/** doublestar's indexMatchedClosingAlt: the `}` closing the `{` just before `from`, or -1. */
function closingBrace(p: Runes, from: number): number {
  let depth = 1;
  for (let i = from; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  return -1;
}

/** The alternatives in p[from, to), split at top-level commas (doublestar's indexNextAlt loop). */
function alternatives(p: Runes, from: number, to: number): Runes[] {
  const out: Runes[] = [];
  let depth = 1;
  let start = from;
  for (let i = from; i < to; i++) {
    const c = p[i];
    if (c === '\\') i++;
    else if (c === '{') depth++;
    else if (c === '}') depth--;
    else if (c === ',' && depth === 1) {
      out.push(p.slice(start, i));
      start = i + 1;
    }
  }
  out.push(p.slice(start, to));
  return out;
}

/** The pattern with the braces p[open..close] replaced by one alternative. */
function substitute(p: Runes, open: number, close: number, alt: Runes): Runes {
  return [...p.slice(0, open), ...alt, ...p.slice(close + 1)];
}

/**
 * Matches the class starting after its `[` at `from` against `rune`; returns the index after the
 * closing `]`, or -1 when it does not match. The pattern is already validated.
 */
function matchClass(p: Runes, from: number, rune: string): number {
  if (rune === SEP) return -1;
  const target = codePoint(rune);
  let i = from;
  const negate = p[i] === '!' || p[i] === '^';
  if (negate) i++;
  let matched = false;
  let last = MAX_RUNE;
  while (i < p.length && p[i] !== ']') {
    let c = p[i++];
    if (last < MAX_RUNE && c === '-' && i < p.length && p[i] !== ']') {
      if (p[i] === '\\') i++;
      const high = codePoint(p[i++]);
      if (last <= target && target <= high) {
        matched = true;
        break;
      }
      last = MAX_RUNE;
      continue;
    }
    if (c === '\\') c = p[i++];
    if (c === rune) {
      matched = true;
      break;
    }
    last = codePoint(c);
  }
  if (matched === negate) return -1;
  for (; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === ']') return i + 1;
  }
  return -1;
}

/** doublestar's isZeroLengthPattern: whether the rest of the pattern matches the empty rest of a name. */
function isZeroLength(p: Runes): boolean {
  if (ZERO_LENGTH_TAILS.has(p.join(''))) return true;
  if (p[0] !== '{') return false;
  const close = closingBrace(p, 1);
  if (close < 0) return false;
  return alternatives(p, 1, close).some((alt) => isZeroLength([...alt, ...p.slice(close + 1)]));
}

/**
 * doublestar's doMatchWithSeparator: a single pass that remembers the last `*` and the last `**`
 * component to backtrack to. A `{` recurses once per alternative, carrying the backtracking state along.
 */
function doMatch(
  p: Runes,
  n: Runes,
  dsPat: number,
  dsName: number,
  starPat: number,
  starName: number,
  pi: number,
  ni: number,
): boolean {
  let startOfSegment = true;
  match: while (ni < n.length) {
    if (pi < p.length) {
      const c = p[pi];
      if (c === '*') {
        pi++;
        if (p[pi] === '*') {
          pi++;
          if (startOfSegment) {
            if (pi >= p.length) return true; // pattern ends in `/**` (or is `**`)
            if (p[pi] === SEP) {
              pi++;
              dsPat = pi;
              dsName = ni;
              starPat = -1;
              starName = -1;
              continue;
            }
          }
        }
        startOfSegment = false;
        starPat = pi;
        starName = ni;
        continue;
      } else if (c === '?') {
        startOfSegment = false;
        if (n[ni] !== SEP) {
          pi++;
          ni++;
          continue;
        }
      } else if (c === '[') {
        startOfSegment = false;
        const end = matchClass(p, pi + 1, n[ni] ?? '');
        if (end >= 0) {
          pi = end;
          ni++;
          continue;
        }
      } else if (c === '{') {
        const close = closingBrace(p, pi + 1);
        if (close < 0) return false;
        const open = pi;
        const from = ni;
        return alternatives(p, pi + 1, close).some((alt) =>
          doMatch(substitute(p, open, close, alt), n, dsPat, dsName, starPat, starName, open, from),
        );
      } else {
        const escaped = c === '\\';
        const literal = escaped ? p[pi + 1] : c;
        if (literal === n[ni]) {
          pi += escaped ? 2 : 1;
          ni++;
          startOfSegment = literal === SEP;
          continue;
        }
      }
    }
    // Mismatch: let the last `*` take one more character, if that is not a separator...
    if (starPat >= 0 && n[starName] !== SEP) {
      starName++;
      pi = starPat;
      ni = starName;
      startOfSegment = false;
      continue;
    }
    // ...or let the last `**/` take one more whole component.
    if (dsPat >= 0) {
      ni = dsName;
      while (ni < n.length) {
        if (n[ni++] === SEP) {
          dsName = ni;
          pi = dsPat;
          startOfSegment = true;
          continue match;
        }
      }
    }
    return false;
  }
  return isZeroLength(p.slice(pi));
}

/** The index of the first `{` outside escapes and classes, where the matcher would meet it, or -1. */
function firstBrace(p: Runes): number {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') i++;
    else if (p[i] === '{') return i;
    else if (p[i] === '[') {
      i++;
      if (p[i] === '!' || p[i] === '^') i++;
      for (; i < p.length && p[i] !== ']'; i++) if (p[i] === '\\') i++;
    }
  }
  return -1;
}

/**
 * Checks every brace expansion of a valid pattern, since an alternative can still be malformed
 * (`{[,]}` yields `[`). Returns false for a bad expansion or too many of them.
 */
function expansionsValid(p: Runes, budget: { left: number }): boolean {
  const open = firstBrace(p);
  if (open < 0) return --budget.left >= 0 && isValid(p);
  const close = closingBrace(p, open + 1);
  if (close < 0) return false;
  return alternatives(p, open + 1, close).every((alt) =>
    expansionsValid(substitute(p, open, close, alt), budget),
  );
}

/** Compiles and validates; throws GlobSyntaxError(`invalid glob "<pattern>": syntax error in pattern`). */
export function compileGlob(pattern: string): Glob {
  let stripped = pattern;
  while (stripped.endsWith(SEP)) stripped = stripped.slice(0, -1);
  const runes: Runes = Array.from(stripped);
  if (!isValid(runes) || !expansionsValid(runes, { left: MAX_EXPANSIONS })) {
    throw new GlobSyntaxError(`invalid glob "${pattern}": syntax error in pattern`);
  }
  return {
    pattern,
    directoryOnly: stripped.length !== pattern.length,
    matches: (path: string): boolean => doMatch(runes, Array.from(path), -1, -1, -1, -1, 0, 0),
  };
}
