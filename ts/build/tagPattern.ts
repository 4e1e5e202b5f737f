/**
 * `[upstream].tag_pattern` (`recipes-and-farm.md` §8.4): RE2 syntax, as the reference's Go regexp
 * (re2js is a port of RE2, so the same patterns compile and fail, with the same messages). A tag
 * matches by search, leftmost first; the version is capture group 1, or, in the named style,
 * `<major>.<minor>[.<patch>][-<prerelease>]`.
 *
 * Also tag names: only a `TagName` — a name that cannot be mistaken for an option or a path — is
 * ever handed to git or written into a manifest (`source_ref`).
 */

import { RE2JS } from 're2js';

const NAMED = ['major', 'minor', 'patch', 'prerelease'];

export interface TagPattern {
  source: string;
  /** Unnamed groups besides group 1 are ignored; `check` warns about them. */
  unnamedGroups: number;
  named: boolean;
  /** The upstream version a tag yields, or undefined when the tag does not match. */
  versionOf(tag: string): string | undefined;
}

export type Compiled = { pattern: TagPattern } | { problem: string };

export function compileTagPattern(source: string): Compiled {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (error) {
    return { problem: `invalid tag_pattern "${source}": ${(error as Error).message}` };
  }
  const groups = re.groupCount();
  if (groups < 1) return { problem: `tag_pattern "${source}" must have at least one capture group (the version string)` };
  const names = Object.keys(re.namedGroups());
  const unknown = names.find((n) => !NAMED.includes(n));
  if (unknown) return { problem: `tag_pattern uses unknown named group "${unknown}" (allowed: major, minor, patch, prerelease)` };
  // re2js keeps one number per name; a repeated name shows as more groups than names.
  if (names.length > 0 && groups !== names.length) {
    const repeated = names.find((n) => source.split(new RegExp(`\\(\\?P?<${n}>`)).length > 2);
    if (repeated) return { problem: `tag_pattern repeats named group "${repeated}"` };
    return { problem: 'tag_pattern mixes named and unnamed capture groups — use one style' };
  }
  if (names.length > 0 && !(names.includes('major') && names.includes('minor'))) {
    return { problem: `tag_pattern with named groups requires both 'major' and 'minor' (got [${[...names].sort().join(' ')}])` };
  }
  const named = names.length > 0;
  return {
    pattern: {
      source,
      unnamedGroups: named ? 0 : groups,
      named,
      versionOf(tag: string): string | undefined {
        const m = re.matcher(tag);
        if (!m.find()) return undefined;
        if (!named) return m.group(1) ?? '';
        const part = (n: string): string => (names.includes(n) ? (m.group(n) ?? '') : '');
        let version = `${part('major')}.${part('minor')}`;
        if (part('patch') !== '') version += `.${part('patch')}`;
        if (part('prerelease') !== '') version += `-${part('prerelease')}`;
        return version;
      },
    },
  };
}

declare const tagBrand: unique symbol;
/** A tag name safe to pass to git and to record: checked by `asTagName`. */
export type TagName = string & { readonly [tagBrand]: true };

/**
 * Tags are untrusted (anyone who can push to an upstream names them). Accepted: git-valid names made
 * of letters, digits and `. _ + - /`, not starting with `-`, `.` or `/` (so never an option or an
 * absolute path), without `..`, `//` or a trailing `/` or `.lock`. Names like `v1.0.0;rm`,
 * `v1.0.0$(id)` or `-oops` are refused.
 */
export function asTagName(name: string): TagName | undefined {
  if (name.length === 0 || name.length > 200) return undefined;
  if (!/^[A-Za-z0-9_+][A-Za-z0-9._+/-]*$/.test(name)) return undefined;
  if (name.includes('..') || name.includes('//') || name.endsWith('/') || name.endsWith('.lock') || name.endsWith('.')) return undefined;
  return name as TagName;
}
